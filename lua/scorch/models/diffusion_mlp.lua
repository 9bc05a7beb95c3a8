--- A time-conditional residual MLP for low-dimensional diffusion models: the
-- network F(x, c) of the diffusion samplers and losses, where c is whatever
-- the model is conditioned on (a DDPM timestep, an SDE time t, EDM's c_noise).
-- c enters through sinusoidal features (Vaswani et al. 2017, Ho et al. 2020's
-- time embedding), projected and added inside every residual block — on 8
-- Gaussians this trains far better than concatenating c to the input.  The
-- output has x's size and is read as ε, x₀, v or a score by the loss and
-- sampler it is used with.  With learn_variance = true a second head gives
-- the per-dimension v of Nichol & Dhariwal 2021 (eq. 15: log Σ = v log β_t +
-- (1 − v) log β̃_t); forward still returns the mean output alone, so every
-- loss and sampler takes the network as before, and forward_variance gives both.
-- @module scorch.models.diffusion_mlp
local sc = require "scorch"
local nn = sc.nn
local param = require "scorch.param"
local cond = require "scorch.models.conditioning"

local DiffusionMLP = nn.Module:extend("DiffusionMLP")

-- DiffusionMLP{dim=2, width=128, blocks=3, embed=32, cond_scale=1,
--              max_period=10000, classes=, p_uncond=0.1, dtype=, generator=}
-- h ← W_in x;  each block: h ← h + W_b silu(h + U_b e);  out = W_out silu(h),
-- with e = silu(W_e features(c)).  cond_scale multiplies c before the
-- features: 1 for timesteps 1..1000, 1000 for t ∈ [0, 1], about 250 for
-- EDM's c_noise = ¼ ln σ.
-- classes = K makes it class-conditional, F(x, c, y): a learned class
-- embedding is added to W_e features(c) before the SiLU, with a null class
-- ∅ (label 0) when p_uncond > 0 (see scorch.models.conditioning).
-- learn_variance = true adds the head v = W_v silu(h), zero at the start
-- (so v = 0: the reverse variance starts at β̃_t).
function DiffusionMLP:init(opts)
  opts = require("scorch.util").check_options(opts, {
      "dim", "width", "blocks", "embed", "cond_scale", "max_period", "classes", "p_uncond", "dtype",
      "generator", "learn_variance" },
      "scorch.models.DiffusionMLP", 4)
  local dim, width, blocks, embed = opts.dim or 2, opts.width or 128, opts.blocks or 3, opts.embed or 32
  for name, v in pairs { dim = dim, width = width, blocks = blocks } do
    if math.type(v) ~= "integer" or v < 1 then
      error(("scorch.models.DiffusionMLP: %s must be a positive integer"):format(name), 3)
    end
  end
  if math.type(embed) ~= "integer" or embed < 2 or embed % 2 ~= 0 then
    error("scorch.models.DiffusionMLP: embed must be an even integer >= 2", 3)
  end
  self.dim, self.width, self.n_blocks, self.embed = dim, width, blocks, embed
  self.cond_scale = opts.cond_scale or 1
  local half, period = embed // 2, opts.max_period or 10000
  local freqs = {}
  for k = 0, half - 1 do freqs[k + 1] = math.exp(-math.log(period) * k / half) end
  self:register_buffer("freqs", sc.tensor({ freqs }, { dtype = opts.dtype or "float32" }))
  local lin = { dtype = opts.dtype, generator = opts.generator }
  self.embed_proj = nn.Linear(embed, width, lin)
  self.input = nn.Linear(dim, width, lin)
  self.blocks = nn.ModuleList {}
  self.cond = nn.ModuleList {}
  for _ = 1, blocks do
    self.blocks:append(nn.Linear(width, width, lin))
    self.cond:append(nn.Linear(width, width, lin))
  end
  self.output = nn.Linear(width, dim, lin)
  cond.setup(self, opts, width, "scorch.models.DiffusionMLP")
  if opts.learn_variance ~= nil and type(opts.learn_variance) ~= "boolean" then
    error("scorch.models.DiffusionMLP: learn_variance must be true or false", 3)
  end
  if opts.learn_variance then
    -- made last, so the other weights draw the same numbers as without it
    self.learned_variance = true
    self.variance_output = nn.Linear(width, dim, lin)
    local head = self.variance_output
    sc.no_grad(function() head.weight:zero_(); head.bias:zero_() end)
  end
end

-- [N, embed] features [sin(c·s·ω_k), cos(c·s·ω_k)] of the conditioning
-- ([1, embed] when the batch shares one level: embedded once, broadcast).
function DiffusionMLP:features(c, n, dtype)
  if type(c) == "number" then
    c = sc.full({ 1, 1 }, c, { dtype = dtype })
  elseif sc.is_tensor(c) then
    if param.is_shared_level(c) then c = c:narrow(1, 1, 1) end
    c = c:reshape(-1, 1)
    if c:size(1) ~= 1 and c:size(1) ~= n then
      error(("scorch.models.DiffusionMLP: %d conditioning values for %d points"):format(c:size(1), n), 3)
    end
  else
    error("scorch.models.DiffusionMLP: the conditioning must be a number or a tensor", 3)
  end
  local arg = c * self.freqs * self.cond_scale
  return sc.cat({ arg:sin(), arg:cos() }, 2)
end

-- The last hidden layer silu(h), shared by the output heads; level is the
-- error level for a missing c.
local function trunk(self, x, c, y, level)
  if c == nil then
    error("scorch.models.DiffusionMLP: call as model(x, c) with the conditioning c", level)
  end
  local e = self.embed_proj(self:features(c, x:size(1), x:dtype()))
  local ce = cond.embed(self, y, x:size(1), "scorch.models.DiffusionMLP")
  if ce then e = e + ce end
  e = e:silu()
  local h = self.input(x)
  for i = 1, self.n_blocks do
    h = h + self.blocks[i]((h + self.cond[i](e)):silu())
  end
  return h:silu()
end

--- F(x, c): the network's output for x at the conditioning c (a shared level
-- is embedded once and broadcast over the batch).
-- @param x tensor [N, dim]
-- @param c the level column of sc.param.level ([N, 1]); a number or an [N] tensor is also accepted
-- @param y the class labels of a class-conditional network (N labels or one number, 0 = ∅; nil = ∅)
-- @return tensor [N, dim]
-- @usage local out = net(x, sc.param.level(10, x))
function DiffusionMLP:forward(x, c, y)
  return self.output(trunk(self, x, c, y, 3))
end

--- The mean output and the variance interpolation v of a network made with
-- learn_variance = true, from one pass (Nichol & Dhariwal 2021, §3.1).
-- @param x tensor [N, dim]
-- @param c the conditioning, as for forward (an [N, 1] level column, a number or an [N] tensor)
-- @param y class labels of a class-conditional network (nil = ∅)
-- @return out [N, dim] (what forward returns), v [N, dim]
-- @usage local eps, v = net:forward_variance(x, sc.param.level(10, x))
function DiffusionMLP:forward_variance(x, c, y)
  if not self.learned_variance then
    error("scorch.models.DiffusionMLP:forward_variance: the network was made without learn_variance = true", 2)
  end
  local h = trunk(self, x, c, y, 3)
  return self.output(h), self.variance_output(h)
end

function DiffusionMLP:extra_repr()
  return ("dim=%d, width=%d, blocks=%d, embed=%d, cond_scale=%g%s%s"):format(self.dim, self.width,
    self.n_blocks, self.embed, self.cond_scale, cond.repr(self), self.learned_variance and ", learn_variance" or "")
end

return DiffusionMLP
