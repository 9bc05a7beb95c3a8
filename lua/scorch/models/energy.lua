--- An energy-based model: an MLP E_θ(x) (or E_θ(x, σ)) whose score is
-- s_θ = −∇ₓE_θ, obtained by autograd (score matching for EBMs: Hyvärinen
-- 2005; noise-conditional energies: Song & Ermon 2019, Saremi et al. 2018).
-- Calling the model returns the energy; every loss and sampler uses :score.
-- @module scorch.models.energy
local sc = require "scorch"
local nn = sc.nn
local util = require "scorch.util"
local param = require "scorch.param"

local EnergyMLP = nn.Module:extend("EnergyMLP")

-- The score needs autograd even while sampling (samplers check this flag).
EnergyMLP.needs_grad = true

-- EnergyMLP{dim=2, hidden={128, 128}, act="silu", conditional=false,
--           dtype=, generator=}.  The activation must be smooth (silu,
-- softplus, tanh) for score-matching losses, which differentiate the score.
function EnergyMLP:init(opts)
  opts = util.check_options(opts, { "dim", "conditional", "hidden", "act", "dtype", "generator" },
    "scorch.models.EnergyMLP", 4)
  local dim = opts.dim or 2
  self.dim = dim
  self.conditional = opts.conditional and true or false
  self.net = nn.MLP { ["in"] = dim + (self.conditional and 1 or 0), out = 1,
    hidden = opts.hidden or { 128, 128 }, act = opts.act or "silu",
    dtype = opts.dtype, generator = opts.generator }
end

-- E_θ(x [, σ]) -> [N]
function EnergyMLP:forward(x, sigma)
  local input = x
  if self.conditional then
    if sigma == nil then error("scorch.models.EnergyMLP: conditional model called without sigma", 2) end
    input = sc.cat({ x, param.level(sigma, x):log() }, 2)
  end
  return self.net(input):reshape(x:size(1))
end
EnergyMLP.energy = EnergyMLP.forward

-- s_θ(x) = −∇ₓ E_θ(x).  When recording is on the result stays in the graph
-- (create_graph), so losses can differentiate it again and reach the
-- parameters; under no_grad (sampling) it is computed and returned detached.
-- A point set that already requires grad is used as is, so callers that
-- differentiate through x (implicit and sliced score matching) see the path.
function EnergyMLP:score(x, sigma)
  local recording = sc.is_grad_enabled()
  return util.enable_grad(function()
    local leaf = x
    if not (recording and x:requires_grad()) then leaf = x:detach():requires_grad(true) end
    local e = self:energy(leaf, sigma)
    local g = sc.grad(e:sum(), { leaf }, { create_graph = recording, retain_graph = recording })[1]
    if not recording then return -(g:detach()) end
    return -g
  end)
end

function EnergyMLP:extra_repr()
  return ("dim=%d, conditional=%s"):format(self.dim, tostring(self.conditional))
end

return EnergyMLP
