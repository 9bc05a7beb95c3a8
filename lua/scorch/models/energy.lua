--- Energy-based models: an MLP E_θ(x) (or E_θ(x, σ)) for points and a
-- convolutional E_θ(x) for images, whose score is s_θ = −∇ₓE_θ, obtained by
-- autograd (score matching for EBMs: Hyvärinen 2005; noise-conditional
-- energies: Song & Ermon 2019, Saremi et al. 2018; contrastive divergence:
-- sc.losses.cd).  Calling a model returns the energy; every loss and sampler
-- uses :score.  The module returns EnergyMLP; EnergyMLP.ConvEnergy is the
-- image model (sc.models.ConvEnergy).
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

--- The score s_θ(x) = −∇ₓ E_θ(x) (both models).  When recording is on the
-- result stays in the graph (create_graph), so losses can differentiate it
-- again and reach the parameters; under no_grad (sampling) it is computed and
-- returned detached.  A point set that already requires grad is used as is,
-- so callers that differentiate through x (implicit and sliced score
-- matching) see the path.
-- @param x tensor [N, dim] (EnergyMLP) or images [N, C, H, W] (ConvEnergy)
-- @param sigma noise level for a conditional EnergyMLP (number or [N]), else nil
-- @return tensor shaped as x
-- @usage local s = ebm:score(x)
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

-- ---- convolutional energy for images ------------------------------------------------

local ConvEnergy = nn.Module:extend("ConvEnergy")
ConvEnergy.needs_grad = true

-- Smooth activations only: Langevin chains and the spec differentiate the
-- energy in x, and a kink (relu) makes ∇ₓE jump.
local ACTS = { silu = "silu", swish = "silu", softplus = "softplus", tanh = "tanh" }

local function posint(v, name)
  if math.type(v) ~= "integer" or v < 1 then
    error(("scorch.models.ConvEnergy: option %s must be a positive integer (got %s)"):format(name, tostring(v)), 4)
  end
end

--- A convolutional energy E_θ(x) for images, [N, C, H, W] → [N]: a 3×3 stem
-- convolution, then one 3×3 stride-2 convolution per entry of channels
-- (each halves the size, rounding up: 28 → 14 → 7 → 4), a smooth activation
-- after each, and a linear map of the flattened last map to one number.  No
-- normalisation layer, so each image's energy depends on that image only.
-- In the manner of the short-run EBM nets (Nijkamp et al. 2019) and of Du &
-- Mordatch 2019, with SiLU (Swish) because Langevin needs ∇ₓE to be smooth.
-- @param opts table: channels ({16, 32, 64}: widths of the stride-2 stages; the stem has
--   channels[1]), in_channels (1), size (28: H = W of the inputs, ≥ 2), act ("silu";
--   also "swish", "softplus", "tanh"), dtype ("float32"), generator (initial weights)
-- @return module: `E(x)` maps images [N, in_channels, size, size] to energies [N];
--   `E:score(x)` is −∇ₓE [N, C, H, W]
-- @usage local E = sc.models.ConvEnergy{channels = {16, 32, 64}}; local e = E(sc.rand(8, 1, 28, 28))
function ConvEnergy:init(opts)
  local fn = "scorch.models.ConvEnergy"
  if opts ~= nil and type(opts) ~= "table" then error(fn .. ": expected an options table", 3) end
  opts = util.check_options(opts, { "channels", "in_channels", "size", "act", "dtype", "generator" }, fn, 4)
  local channels = opts.channels or { 16, 32, 64 }
  if type(channels) ~= "table" or #channels == 0 then
    error(fn .. ": option channels must be a non-empty list of positive integers", 3)
  end
  for i, c in ipairs(channels) do posint(c, ("channels[%d]"):format(i)) end
  local cin, size = opts.in_channels or 1, opts.size or 28
  posint(cin, "in_channels")
  posint(size, "size")
  if size < 2 then error(("%s: option size must be at least 2 (got %d)"):format(fn, size), 3) end
  local act = ACTS[opts.act or "silu"]
  if not act then
    error(("%s: option act must be a smooth activation, one of silu, swish, softplus, tanh (got %s)")
      :format(fn, tostring(opts.act)), 3)
  end
  self.channels, self.in_channels, self.size, self.act = table.move(channels, 1, #channels, 1, {}), cin, size, act
  local o = { dtype = opts.dtype, generator = opts.generator }
  self.stem = nn.Conv2d(cin, channels[1], 3, { padding = 1, dtype = o.dtype, generator = o.generator })
  local convs, prev, s = {}, channels[1], size
  for i, c in ipairs(channels) do
    convs[i] = nn.Conv2d(prev, c, 3, { stride = 2, padding = 1, dtype = o.dtype, generator = o.generator })
    prev, s = c, (s + 1) // 2
  end
  self.convs = nn.ModuleList(convs)
  self.final_size = s
  self.out = nn.Linear(prev * s * s, 1, o)
end

--- E_θ(x): the energy of each image.
-- @param x tensor [N, in_channels, size, size], finite
-- @return tensor [N]
-- @usage local e = E(x)
function ConvEnergy:forward(x)
  local c, s = self.in_channels, self.size
  if not sc.is_tensor(x) or x:dim() ~= 4 or x:size(2) ~= c or x:size(3) ~= s or x:size(4) ~= s then
    error(("scorch.models.ConvEnergy: argument x must be images [N, %d, %d, %d] (got %s)")
      :format(c, s, s, util.shape_str(x)), 3)
  end
  local act = self.act
  local h = self.stem(x)
  h = h[act](h)
  for i = 1, #self.convs do
    h = self.convs[i](h)
    h = h[act](h)
  end
  return self.out(h:reshape(x:size(1), -1)):reshape(x:size(1))
end
ConvEnergy.energy = ConvEnergy.forward
ConvEnergy.score = EnergyMLP.score

function ConvEnergy:extra_repr()
  return ("channels={%s}, in_channels=%d, size=%d, act=%s"):format(table.concat(self.channels, ","),
    self.in_channels, self.size, self.act)
end

EnergyMLP.ConvEnergy = ConvEnergy
return EnergyMLP
