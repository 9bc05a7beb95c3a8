--- A noise-conditional score network for low-dimensional data: an MLP on
-- cat(x, log σ) (Song & Ermon 2019 condition on σ; for toy data the level
-- enters as one extra input), optionally divided by σ at the output
-- (Song & Ermon 2020, NCSNv2 §4.2: s_θ(x, σ) = s_θ(x)/σ).
-- @module scorch.models.score_mlp
local sc = require "scorch"
local nn = sc.nn
local param = require "scorch.param"
local cond = require "scorch.models.conditioning"

local ScoreMLP = nn.Module:extend("ScoreMLP")

-- ScoreMLP{dim=2, hidden={128, 128, 128}, act="silu", conditional=true,
--          scale_by_sigma=false, classes=, p_uncond=0.1, class_dim=8, dtype=, generator=}
-- conditional = false makes an unconditional s(x) (sigma is then ignored).
-- classes = K makes it class-conditional, s(x, σ, y): the network has no
-- noise embedding to add to (log σ is one input), so a learned class
-- embedding of class_dim values joins log σ in the input; with p_uncond > 0
-- one more row is the null class ∅ (label 0; scorch.models.conditioning).
function ScoreMLP:init(opts)
  opts = require("scorch.util").check_options(opts, {
      "dim", "conditional", "scale_by_sigma", "hidden", "act", "classes", "p_uncond", "class_dim", "dtype",
      "generator" }, "scorch.models.ScoreMLP", 4)
  local dim = opts.dim or 2
  if math.type(dim) ~= "integer" or dim < 1 then
    error("scorch.models.ScoreMLP: dim must be a positive integer", 3)
  end
  self.dim = dim
  self.conditional = opts.conditional ~= false
  self.scale_by_sigma = opts.scale_by_sigma and true or false
  if self.scale_by_sigma and not self.conditional then
    error("scorch.models.ScoreMLP: scale_by_sigma needs a conditional model", 3)
  end
  local class_dim = opts.class_dim or 8
  if opts.classes ~= nil and (math.type(class_dim) ~= "integer" or class_dim < 1) then
    error("scorch.models.ScoreMLP: class_dim must be a positive integer", 3)
  end
  self.net = nn.MLP { ["in"] = dim + (self.conditional and 1 or 0) + (opts.classes and class_dim or 0), out = dim,
    hidden = opts.hidden or { 128, 128, 128 }, act = opts.act or "silu",
    dtype = opts.dtype, generator = opts.generator }
  cond.setup(self, opts, class_dim, "scorch.models.ScoreMLP")
end

-- s_θ(x, σ) for x [N, D] and σ the level column of sc.param.level (a number
-- is made one) -> [N, D]; y the class labels of a class-conditional network
-- (N labels or one number, 0 = ∅; nil = ∅).
function ScoreMLP:forward(x, sigma, y)
  local ce = cond.embed(self, y, x:size(1), "scorch.models.ScoreMLP")
  if not self.conditional then
    if ce then return self.net(sc.cat({ x, ce }, 2)) end
    return self.net(x)
  end
  if sigma == nil then
    error("scorch.models.ScoreMLP: this model is noise-conditional; call it as model(x, sigma)", 2)
  end
  local sig = param.level(sigma, x)
  local inputs = { x, sig:log() }
  if ce then inputs[3] = ce end
  local out = self.net(sc.cat(inputs, 2))
  if self.scale_by_sigma then out = out / sig end
  return out
end

function ScoreMLP:extra_repr()
  return ("dim=%d, conditional=%s, scale_by_sigma=%s%s"):format(self.dim,
    tostring(self.conditional), tostring(self.scale_by_sigma), cond.repr(self))
end

return ScoreMLP
