--- A noise-conditional score network for low-dimensional data: an MLP on
-- cat(x, log σ) (Song & Ermon 2019 condition on σ; for toy data the level
-- enters as one extra input), optionally divided by σ at the output
-- (Song & Ermon 2020, NCSNv2 §4.2: s_θ(x, σ) = s_θ(x)/σ).
-- @module scorch.models.score_mlp
local sc = require "scorch"
local nn = sc.nn
local param = require "scorch.param"

local ScoreMLP = nn.Module:extend("ScoreMLP")

-- ScoreMLP{dim=2, hidden={128, 128, 128}, act="silu", conditional=true,
--          scale_by_sigma=false, dtype=, generator=}
-- conditional = false makes an unconditional s(x) (sigma is then ignored).
function ScoreMLP:init(opts)
  opts = require("scorch.util").check_options(opts, {
      "dim", "conditional", "scale_by_sigma", "hidden", "act", "dtype", "generator" }, "scorch.models.ScoreMLP", 4)
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
  self.net = nn.MLP { ["in"] = dim + (self.conditional and 1 or 0), out = dim,
    hidden = opts.hidden or { 128, 128, 128 }, act = opts.act or "silu",
    dtype = opts.dtype, generator = opts.generator }
end

-- s_θ(x, σ) for x [N, D] and σ the level column of sc.param.level (a number
-- is made one) -> [N, D]
function ScoreMLP:forward(x, sigma)
  if not self.conditional then return self.net(x) end
  if sigma == nil then
    error("scorch.models.ScoreMLP: this model is noise-conditional; call it as model(x, sigma)", 2)
  end
  local sig = param.level(sigma, x)
  local out = self.net(sc.cat({ x, sig:log() }, 2))
  if self.scale_by_sigma then out = out / sig end
  return out
end

function ScoreMLP:extra_repr()
  return ("dim=%d, conditional=%s, scale_by_sigma=%s"):format(self.dim,
    tostring(self.conditional), tostring(self.scale_by_sigma))
end

return ScoreMLP
