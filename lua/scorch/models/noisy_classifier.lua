--- A noise-conditional classifier for low-dimensional data, p_φ(c | x̂, σ̂):
-- the classifier of classifier guidance (Dhariwal & Nichol 2021, §4, train
-- it on noisy data at every level the sampler visits).  An MLP on the
-- input scaled by c_in = 1/√(σ² + σ_d²) (Karras et al. 2022, Table 1) and
-- the features of ln σ, giving K logits.  sc.param.guided calls it as
-- clf(x̂, σ̂) in the VE view of any sampler.
-- @module scorch.models.noisy_classifier
local sc = require "scorch"
local nn = sc.nn
local util = require "scorch.util"
local param = require "scorch.param"

local NoisyClassifier = nn.Module:extend("NoisyClassifier")

-- NoisyClassifier{dim=2, classes=K, hidden={128, 128}, sigma_data=1, act="silu", dtype=, generator=}
-- clf(x [N, dim], σ (number or column)) -> logits [N, K].
function NoisyClassifier:init(opts)
  opts = util.check_options(opts, { "dim", "classes", "hidden", "sigma_data", "act", "dtype", "generator" },
    "scorch.models.NoisyClassifier", 4)
  local dim, K = opts.dim or 2, opts.classes
  if math.type(dim) ~= "integer" or dim < 1 then
    error("scorch.models.NoisyClassifier: dim must be a positive integer", 3)
  end
  if math.type(K) ~= "integer" or K < 2 then
    error(("scorch.models.NoisyClassifier: classes must be an integer >= 2 (got %s)"):format(tostring(K)), 3)
  end
  self.dim, self.classes, self.sigma_data = dim, K, opts.sigma_data or 1
  self.net = nn.MLP { ["in"] = dim + 1, out = K, hidden = opts.hidden or { 128, 128 }, act = opts.act or "silu",
    dtype = opts.dtype, generator = opts.generator }
end

function NoisyClassifier:forward(x, sigma)
  if not sc.is_tensor(x) or x:dim() ~= 2 or x:size(2) ~= self.dim then
    error(("scorch.models.NoisyClassifier: x must be points [N, %d], got %s")
      :format(self.dim, util.shape_str(x)), 2)
  end
  if sigma == nil then error("scorch.models.NoisyClassifier: call as clf(x, sigma)", 2) end
  local s = param.level(sigma, x)
  local c_in = (s * s + self.sigma_data ^ 2):rsqrt()
  return self.net(sc.cat({ x * c_in, s:log() * 0.25 }, 2))
end

--- The training loss of a noise-conditional classifier: cross-entropy on noised points.
-- σ is drawn log-uniformly on [sigma_min, sigma_max] per point and x̂ = x + σ z,
-- so the classifier learns p(c | x̂, σ) at every level the sampler visits.
-- @param x tensor [N, dim]: clean points
-- @param labels Lua list or tensor of N classes 1..K
-- @param opts table: sigma_min = 0.01; sigma_max = 20; generator
-- @return scalar tensor: the mean cross-entropy
-- @usage local loss = clf:noisy_loss(x, labels, {generator = g}); loss:backward()
function NoisyClassifier:noisy_loss(x, labels, opts)
  opts = util.check_options(opts, { "sigma_min", "sigma_max", "generator" },
    "scorch.models.NoisyClassifier:noisy_loss")
  local lo, hi = opts.sigma_min or 0.01, opts.sigma_max or 20
  if type(lo) ~= "number" or type(hi) ~= "number" or not (lo > 0 and hi > lo) then
    error("scorch.models.NoisyClassifier:noisy_loss: need 0 < sigma_min < sigma_max", 2)
  end
  local n, gen = x:size(1), opts.generator
  local u = sc.rand({ n, 1 }, { generator = gen, dtype = x:dtype() })
  local sigma = (u * math.log(hi / lo) + math.log(lo)):exp()
  local noisy = x:detach() + sc.randn(x:shape(), { generator = gen, dtype = x:dtype() }) * sigma
  return sc.losses.cross_entropy(self(noisy, sigma), labels)
end

function NoisyClassifier:extra_repr()
  return ("dim=%d, classes=%d, sigma_data=%g"):format(self.dim, self.classes, self.sigma_data)
end

return NoisyClassifier
