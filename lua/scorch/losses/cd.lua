-- Maximum-likelihood training of energy-based models p(x) = e^−E(x)/Z by
-- contrastive divergence: the gradient of the NLL is
--   ∇θ E_data[E(x)] − ∇θ E_model[E(x)]
-- (Hinton 2002), the second expectation estimated on negatives drawn by
-- short-run Langevin dynamics on −∇ₓE, optionally continued from a replay
-- buffer of earlier chains (Du & Mordatch 2019, §3.1–3.3).
local sc = require "scorch"
-- a Generator, or sc.samplers.row_noise (noise that follows each sample)
local noise_like = require("scorch.samplers.common").noise_like
local util = require "scorch.util"

local M = {}

local shape_str = util.shape_str

local function check_energy(energy, fn)
  if not util.is_callable(energy) then
    error(("scorch.losses.%s: argument energy must be callable, E(x) -> [N] (got %s)"):format(fn, type(energy)), 3)
  end
end

local function check_points(x, fn, arg)
  if not sc.is_tensor(x) or x:dim() < 2 then
    error(("scorch.losses.%s: argument %s must be a batch [N, ...] (got %s)"):format(fn, arg, shape_str(x)), 3)
  end
  local s = x:detach():sum():item()
  if s ~= s or s == math.huge or s == -math.huge then
    error(("scorch.losses.%s: argument %s %s holds non-finite values"):format(fn, arg, shape_str(x)), 3)
  end
end

-- E(x) as [N], whatever the network's trailing singleton dims.
local function energies(energy, x)
  return energy(x):reshape(x:size(1))
end

--- The contrastive-divergence loss mean E(x⁺) − mean E(x⁻) + α (mean E(x⁺)² + mean E(x⁻)²):
-- its θ-gradient is the NLL gradient when x⁻ are exact model samples; α > 0 is
-- Du & Mordatch's (2019, §3.3) energy-magnitude regulariser.  x⁻ is detached.
-- @param energy callable E(x) -> [N] (e.g. sc.models.EnergyMLP)
-- @param x_pos tensor [N, ...]: data
-- @param x_neg tensor [M, ...]: negatives (model samples)
-- @param opts table: alpha (0)
-- @return scalar loss, info {e_pos = mean E(x⁺), e_neg = mean E(x⁻)} (numbers)
-- @usage local loss = sc.losses.cd(ebm, x, negatives, {alpha = 1})
function M.cd(energy, x_pos, x_neg, opts)
  check_energy(energy, "cd")
  opts = util.check_options(opts, { "alpha" }, "scorch.losses.cd")
  check_points(x_pos, "cd", "x_pos")
  check_points(x_neg, "cd", "x_neg")
  if x_pos:dim() ~= x_neg:dim() or x_pos:numel() // x_pos:size(1) ~= x_neg:numel() // x_neg:size(1) then
    error(("scorch.losses.cd: x_pos %s and x_neg %s must hold points of one shape")
      :format(shape_str(x_pos), shape_str(x_neg)), 2)
  end
  local alpha = opts.alpha or 0
  local ep = energies(energy, x_pos)
  local en = energies(energy, x_neg:detach())
  local mp, mn = ep:mean(), en:mean()
  local loss = mp - mn
  if alpha ~= 0 then loss = loss + (ep:square():mean() + en:square():mean()) * alpha end
  return loss, { e_pos = mp:item(), e_neg = mn:item() }
end

--- Short-run Langevin negatives on −∇ₓE (Du & Mordatch 2019, eq. 2):
-- x_{k+1} = x_k − (ε/2)·clip(∇ₓE(x_k)) + ω z_k, z_k ~ N(0, I), with ω = √ε
-- (exact Langevin) unless a smaller noise is given, and each gradient element
-- clipped to [−c, c] when clip = c; with bounds = {lo, hi} each step ends by
-- clamping x to [lo, hi] (the image range, as Du & Mordatch's chains do).
-- Runs without recording parameter gradients.
-- @param energy callable E(x) -> [N]
-- @param x_init tensor [N, ...]: chain starts
-- @param opts table: steps (60), step_size ε (required, > 0), noise ω (√ε), clip (none),
--   bounds ({lo, hi} with lo < hi; none), generator
-- @return x tensor [N, ...] (detached), info {steps =, grad_norm = mean ‖∇ₓE‖ at the last step}
-- @usage local xn = sc.losses.langevin_negatives(ebm, sc.rand(128, 2) * 8 - 4, {step_size = 0.01})
function M.langevin_negatives(energy, x_init, opts)
  local fn = "scorch.losses.langevin_negatives"
  check_energy(energy, "langevin_negatives")
  opts = util.check_options(opts, { "steps", "step_size", "noise", "clip", "bounds", "generator" }, fn)
  check_points(x_init, "langevin_negatives", "x_init")
  local eps = opts.step_size
  if type(eps) ~= "number" or eps <= 0 then
    error(("%s: option step_size must be a positive number (got %s)"):format(fn, tostring(eps)), 2)
  end
  local steps = opts.steps or 60
  if math.type(steps) ~= "integer" or steps < 0 then
    error(("%s: option steps must be a non-negative integer (got %s)"):format(fn, tostring(steps)), 2)
  end
  local noise = opts.noise or math.sqrt(eps)
  local clip = opts.clip
  local bounds = opts.bounds
  if bounds ~= nil and (type(bounds) ~= "table" or type(bounds[1]) ~= "number" or type(bounds[2]) ~= "number"
      or not (bounds[1] < bounds[2])) then
    error(("%s: option bounds must be {lo, hi} with lo < hi (got %s)"):format(fn,
      type(bounds) == "table" and ("{%s, %s}"):format(tostring(bounds[1]), tostring(bounds[2])) or tostring(bounds)), 2)
  end
  local x = x_init:detach()
  local gnorm = 0
  for _ = 1, steps do
    local g = util.enable_grad(function()
      local leaf = x:detach():requires_grad(true)
      return sc.grad(energies(energy, leaf):sum(), { leaf })[1]
    end)
    if clip then g = sc.clamp(g, -clip, clip) end
    x = x - g * (eps / 2) + noise_like(x, opts.generator) * noise
    if bounds then x = sc.clamp(x, bounds[1], bounds[2]) end
    gnorm = g:reshape(g:size(1), -1):square():sum(2):sqrt():mean():item()
  end
  return x:detach(), { steps = steps, grad_norm = gnorm }
end

-- ---- replay buffer --------------------------------------------------------------

local ReplayBuffer = {}
ReplayBuffer.__index = ReplayBuffer

--- A replay buffer of persistent chains (Du & Mordatch 2019, §3.1): sample(n)
-- draws chain starts, a fraction `reinit` of them fresh from `init`, the rest
-- from earlier chains; push(x) stores finished chains first-in first-out.
-- @param opts table: init (function(n) -> tensor [n, ...], required), size (10000),
--   reinit (0.05), generator
-- @return buffer with sample(n) -> x and push(x)
-- @usage local buf = sc.losses.ReplayBuffer{init = function(n) return sc.rand(n, 2) * 8 - 4 end}
function M.ReplayBuffer(opts)
  local fn = "scorch.losses.ReplayBuffer"
  opts = util.check_options(opts, { "init", "size", "reinit", "generator" }, fn)
  if not util.is_callable(opts.init) then
    error(fn .. ": option init must be a function n -> tensor [n, ...]", 2)
  end
  local size = opts.size or 10000
  if math.type(size) ~= "integer" or size < 1 then
    error(("%s: option size must be a positive integer (got %s)"):format(fn, tostring(size)), 2)
  end
  local reinit = opts.reinit or 0.05
  if type(reinit) ~= "number" or reinit < 0 or reinit > 1 then
    error(("%s: option reinit must be in [0, 1] (got %s)"):format(fn, tostring(reinit)), 2)
  end
  local self = setmetatable({ init = opts.init, size = size, reinit = reinit, generator = opts.generator,
    count = 0, pos = 0 }, ReplayBuffer)
  self.data = opts.init(size):detach():contiguous()
  return self
end

--- Starting points for n persistent chains: a fraction `reinit` drawn fresh
-- from `init` (all of them while the buffer is empty), the rest uniformly
-- from the buffer (Du & Mordatch 2019).
-- @param n integer: how many points
-- @return tensor [n, ...] (detached)
-- @usage local x0 = buf:sample(128)
function ReplayBuffer:sample(n)
  if math.type(n) ~= "integer" or n < 1 then
    error(("scorch.losses.ReplayBuffer.sample: argument n must be a positive integer (got %s)"):format(tostring(n)), 2)
  end
  local filled = math.max(self.count, 0)
  local fresh = filled == 0 and n or math.min(n, math.floor(n * self.reinit + 0.5))
  local parts = {}
  if fresh > 0 then parts[#parts + 1] = self.init(fresh):detach() end
  if n - fresh > 0 then
    local idx = sc.randint(1, filled + 1, { n - fresh }, { generator = self.generator })
    parts[#parts + 1] = self.data:index_select(1, idx)
  end
  return #parts == 1 and parts[1] or sc.cat(parts, 1)
end

--- Stores the chains' end points, overwriting the oldest when full.
-- @param x tensor [n, ...] of the buffer's point shape
-- @usage buf:push(negatives)
function ReplayBuffer:push(x)
  local n = x:size(1)
  x = x:detach()
  local first = 1
  while first <= n do
    local len = math.min(n - first + 1, self.size - self.pos)
    self.data:narrow(1, self.pos + 1, len):copy_(x:narrow(1, first, len))
    self.pos = (self.pos + len) % self.size
    first = first + len
  end
  self.count = math.min(self.count + n, self.size)
end

return M
