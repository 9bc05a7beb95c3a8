--- Diffusion noise schedules: DDPM's discrete β schedules (linear, cosine)
-- with ᾱ, the VE / VP / sub-VP SDEs of Song et al. 2021, Karras σ levels
-- and timestep spacings for few-step sampling.
--
-- Every noising process here writes its marginal as x_t = α_t x₀ + s_t ε
-- (α_t the mean coefficient, s_t the std).  σ̂_t = s_t / α_t is the same
-- level in the variance-exploding ("EDM") view x̂ = x / α = x₀ + σ̂ ε; that
-- shared coordinate is what lets any model be sampled by any sampler
-- (see scorch.param).  Times and levels are numbers or tensors throughout:
-- samplers pass numbers, losses pass [N, 1] tensors.
-- @module scorch.schedules.diffusion
local sc = require "scorch"
local util = require "scorch.util"

local M = {}

local LOG_2PI = math.log(2 * math.pi)

-- ---- numbers or tensors --------------------------------------------------------

local function is_num(v) return type(v) == "number" end
local function sqrt(v) if is_num(v) then return math.sqrt(v) end return v:sqrt() end
local function exp(v) if is_num(v) then return math.exp(v) end return v:exp() end
local function log(v) if is_num(v) then return math.log(v) end return v:log() end
local function expm1(v)
  if is_num(v) then
    if math.abs(v) < 1e-5 then return v + 0.5 * v * v end
    return math.exp(v) - 1
  end
  return v:expm1()
end
local function log1p(v)
  if is_num(v) then
    if math.abs(v) < 1e-5 then return v - 0.5 * v * v end
    return math.log(1 + v)
  end
  return v:log1p()
end

local function check_positive(v, name, fn)
  if type(v) ~= "number" or v ~= v or v <= 0 then
    error(("scorch.schedules.%s: %s must be a positive number"):format(fn, name), 3)
  end
end

local function check_count(n, name, fn)
  if type(n) == "number" and n == math.floor(n) then n = math.tointeger(n) end
  if math.type(n) ~= "integer" or n < 1 then
    error(("scorch.schedules.%s: %s must be a positive integer"):format(fn, name), 3)
  end
  return n
end

local function as_tensor(list, opts)
  return sc.tensor(list, { dtype = opts and opts.dtype or "float32" })
end

-- ---- discrete β schedules ------------------------------------------------------------

--- Ho, Jain & Abbeel 2020, §4: β_t linear from β_1 = 10⁻⁴ to β_T = 0.02.
-- linear_betas(T [, {beta_start=, beta_end=, dtype=}]) -> Lua array, [T] tensor
function M.linear_betas(T, opts)
  T = check_count(T, "T", "linear_betas")
  opts = util.check_options(opts, { "beta_start", "beta_end", "dtype" }, "scorch.schedules.linear_betas")
  local b0, b1 = opts.beta_start or 1e-4, opts.beta_end or 0.02
  check_positive(b0, "beta_start", "linear_betas")
  check_positive(b1, "beta_end", "linear_betas")
  if b0 >= 1 or b1 >= 1 then error("scorch.schedules.linear_betas: betas must be below 1", 2) end
  local out = {}
  for t = 1, T do out[t] = T == 1 and b0 or b0 + (t - 1) * (b1 - b0) / (T - 1) end
  return out, as_tensor(out, opts)
end

--- Nichol & Dhariwal 2021, eq. 17: ᾱ_t = f(t)/f(0), f(t) = cos²(((t/T + s)/(1 + s))·π/2),
-- β_t = 1 − ᾱ_t/ᾱ_{t−1} clipped at 0.999.
-- cosine_betas(T [, {s=0.008, max_beta=0.999, dtype=}]) -> Lua array, [T] tensor
function M.cosine_betas(T, opts)
  T = check_count(T, "T", "cosine_betas")
  opts = util.check_options(opts, { "s", "max_beta", "dtype" }, "scorch.schedules.cosine_betas")
  local s, clip = opts.s or 0.008, opts.max_beta or 0.999
  local function f(t) return math.cos((t / T + s) / (1 + s) * math.pi / 2) ^ 2 end
  local out = {}
  for t = 1, T do out[t] = math.min(1 - f(t) / f(t - 1), clip) end
  return out, as_tensor(out, opts)
end

--- ᾱ_t = ∏_{s ≤ t} (1 − β_s) (Ho et al. 2020, eq. 4).
-- alpha_bars(betas) -> Lua array (betas a Lua array or a 1-D tensor)
function M.alpha_bars(betas)
  if sc.is_tensor(betas) then betas = betas:double():values() end
  if type(betas) ~= "table" or #betas == 0 then
    error("scorch.schedules.alpha_bars: expected a non-empty list of betas", 2)
  end
  local out, acc = {}, 1
  for t, b in ipairs(betas) do
    if type(b) ~= "number" or not (b > 0 and b < 1) then
      error(("scorch.schedules.alpha_bars: beta %d is not in (0, 1)"):format(t), 2)
    end
    acc = acc * (1 - b)
    out[t] = acc
  end
  return out
end

-- ---- the DDPM schedule object -----------------------------------------------------------

local DDPM = { kind = "ddpm" }
DDPM.__index = DDPM
M.DDPMSchedule = DDPM

--- ddpm{betas= | kind="linear"|"cosine", T=1000, beta_start=, beta_end=, s=}
--   -> a discrete schedule: fields T, betas, alphas, alpha_bars, sigmas
--   (σ̂_t = √((1 − ᾱ_t)/ᾱ_t)), all Lua arrays indexed 1..T; timesteps are
--   1-based as in Ho et al. (t = 1 is the least noisy, ᾱ_0 = 1).
function M.ddpm(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("scorch.schedules.ddpm: expected an options table", 2) end
  util.check_options(opts, { "betas", "kind", "T", "beta_start", "beta_end", "s", "max_beta" }, "scorch.schedules.ddpm")
  local betas = opts.betas
  if sc.is_tensor(betas) then betas = betas:double():values() end
  if betas == nil then
    local kind, T = opts.kind or "linear", opts.T or 1000
    if kind == "linear" then betas = M.linear_betas(T, { beta_start = opts.beta_start, beta_end = opts.beta_end })
    elseif kind == "cosine" then betas = M.cosine_betas(T, { s = opts.s, max_beta = opts.max_beta })
    else error(("scorch.schedules.ddpm: unknown kind '%s' (linear, cosine)"):format(tostring(kind)), 2) end
  end
  local ab = M.alpha_bars(betas)
  local self = setmetatable({ T = #betas, betas = {}, alphas = {}, alpha_bars = ab, sigmas = {},
    log_sigmas = {}, _cache = {} }, DDPM)
  for t = 1, self.T do
    self.betas[t] = betas[t]
    self.alphas[t] = 1 - betas[t]
    self.sigmas[t] = math.sqrt((1 - ab[t]) / ab[t])
    self.log_sigmas[t] = math.log(self.sigmas[t])
  end
  self.sigma_min, self.sigma_max = self.sigmas[1], self.sigmas[self.T]
  return self
end

function DDPM:__tostring()
  return ("scorch.schedules.ddpm(T=%d, beta %.3g..%.3g)"):format(self.T, self.betas[1], self.betas[self.T])
end

-- Lua arrays as tensors of one dtype, built once.
function DDPM:_tensors(dtype)
  local c = self._cache[dtype]
  if c then return c end
  local sa, s1 = {}, {}
  for t = 1, self.T do
    sa[t] = math.sqrt(self.alpha_bars[t])
    s1[t] = math.sqrt(1 - self.alpha_bars[t])
  end
  c = { sqrt_ab = sc.tensor(sa, { dtype = dtype }), sqrt_1mab = sc.tensor(s1, { dtype = dtype }) }
  self._cache[dtype] = c
  return c
end

-- log β_t and the clipped log β̃_t of reverse_log_variance as [T] tensors, built once.
function DDPM:_log_variance_tensors(dtype)
  local c = self:_tensors(dtype)
  if not c.log_beta then
    local lb, lbt = {}, {}
    for t = 1, self.T do
      lb[t] = self:reverse_log_variance(t, "beta")
      lbt[t] = self:reverse_log_variance(t, "beta_tilde")
    end
    c.log_beta, c.log_beta_tilde = sc.tensor(lb, { dtype = dtype }), sc.tensor(lbt, { dtype = dtype })
  end
  return c
end

local function check_step(self, t, fn)
  if math.type(t) ~= "integer" then
    if type(t) == "number" and t == math.floor(t) then t = math.tointeger(t) end
  end
  if math.type(t) ~= "integer" or t < 0 or t > self.T then
    error(("scorch.schedules.ddpm:%s: timestep must be an integer in 0..%d (got %s)")
      :format(fn, self.T, tostring(t)), 3)
  end
  return t
end

-- ᾱ_t, with ᾱ_0 = 1.
function DDPM:alpha_bar(t)
  t = check_step(self, t, "alpha_bar")
  return t == 0 and 1 or self.alpha_bars[t]
end

-- β̃_t = (1 − ᾱ_{t−1})/(1 − ᾱ_t) β_t (Ho et al. 2020, eq. 7).
function DDPM:beta_tilde(t)
  t = check_step(self, t, "beta_tilde")
  if t == 0 then return 0 end
  local prev = t == 1 and 1 or self.alpha_bars[t - 1]
  return (1 - prev) / (1 - self.alpha_bars[t]) * self.betas[t]
end

--- The forward posterior q(x_{t−1} | x_t, x₀) = N(c₀ x₀ + c_t x_t, β̃_t I)
-- (Ho et al. 2020, eqs. 6–7): c₀ = √ᾱ_{t−1} β_t/(1 − ᾱ_t), c_t = √α_t (1 − ᾱ_{t−1})/(1 − ᾱ_t).
-- @param t integer timestep in 1..T
-- @return c0, ct, beta_tilde (numbers)
-- @usage local c0, ct, var = sched:posterior(500)
function DDPM:posterior(t)
  t = check_step(self, t, "posterior")
  if t == 0 then error("scorch.schedules.ddpm:posterior: timestep must be in 1..T (got 0)", 2) end
  local ab, prev = self.alpha_bars[t], t == 1 and 1 or self.alpha_bars[t - 1]
  local b = self.betas[t]
  return math.sqrt(prev) * b / (1 - ab), math.sqrt(1 - b) * (1 - prev) / (1 - ab), self:beta_tilde(t)
end

--- Nichol & Dhariwal 2021, eq. 15: log Σ = v log β + (1 − v) log β̃, the
-- learned interpolation between the two fixed variances (v = 0 gives β̃, v = 1 gives β).
-- @param v number or tensor: the network's interpolation output
-- @param beta number: β of the step
-- @param beta_tilde number: β̃ of the step (> 0)
-- @return log Σ, a number or a tensor like v
-- @usage local logvar = sc.schedules.interpolated_log_variance(v, 0.02, 0.019)
function M.interpolated_log_variance(v, beta, beta_tilde)
  if not (type(beta) == "number" and beta > 0 and type(beta_tilde) == "number" and beta_tilde > 0) then
    error(("scorch.schedules.interpolated_log_variance: beta (%s) and beta_tilde (%s) must be positive numbers")
      :format(tostring(beta), tostring(beta_tilde)), 2)
  end
  local lb, lbt = math.log(beta), math.log(beta_tilde)
  if is_num(v) then return v * lb + (1 - v) * lbt end
  if not sc.is_tensor(v) then
    error("scorch.schedules.interpolated_log_variance: v must be a number or a tensor", 2)
  end
  return v * (lb - lbt) + lbt
end

M.reverse_variances = { beta = true, beta_tilde = true, learned = true }

--- log σ_t² of the reverse step p_θ(x_{t−1} | x_t) = N(μ_θ, σ_t² I): "beta" (log β_t,
-- Ho et al. 2020 §3.2), "beta_tilde" (log β̃_t) or "learned" (Nichol & Dhariwal 2021, eq. 15,
-- with the network's v).  β̃_1 = 0 (ᾱ_0 = 1) has no logarithm, so at t = 1 β̃_2 stands
-- in for it, as in Nichol & Dhariwal's code (β_1 when T = 1); "beta" keeps β_1.
-- @param t integer timestep in 1..T, or a tensor of them (an [N, 1] column: one per example)
-- @param variance "beta" | "beta_tilde" | "learned"
-- @param v number or tensor: the interpolation (only for "learned"; broadcasting with t)
-- @return log σ_t²: a number for a number t and fixed variance, else a tensor
-- @usage local lv = sched:reverse_log_variance(10, "learned", v)
function DDPM:reverse_log_variance(t, variance, v)
  if not M.reverse_variances[variance] then
    error(("scorch.schedules.ddpm:reverse_log_variance: variance must be \"beta\", \"beta_tilde\" or"
      .. " \"learned\" (got %s)"):format(tostring(variance)), 2)
  end
  if variance == "learned" and v == nil then
    error("scorch.schedules.ddpm:reverse_log_variance: \"learned\" needs the network's v", 2)
  end
  if sc.is_tensor(t) then
    local c = self:_log_variance_tensors(t:dtype())
    local shape, flat = t:shape(), t:reshape(-1)
    local lb = c.log_beta:index_select(1, flat):view(shape)
    if variance == "beta" then return lb end
    local lbt = c.log_beta_tilde:index_select(1, flat):view(shape)
    if variance == "beta_tilde" then return lbt end
    return v * (lb - lbt) + lbt
  end
  t = check_step(self, t, "reverse_log_variance")
  if t == 0 then error("scorch.schedules.ddpm:reverse_log_variance: timestep must be in 1..T (got 0)", 2) end
  local b = self.betas[t]
  if variance == "beta" then return math.log(b) end
  local bt = t > 1 and self:beta_tilde(t) or (self.T > 1 and self:beta_tilde(2) or b)
  if variance == "beta_tilde" then return math.log(bt) end
  return M.interpolated_log_variance(v, b, bt)
end

-- marginal(t) -> √ᾱ_t, √(1 − ᾱ_t): q(x_t | x₀) = N(√ᾱ_t x₀, (1 − ᾱ_t) I).  t is an
-- integer, or a tensor of integer-valued timesteps (any shape; results alike).
function DDPM:marginal(t)
  if is_num(t) then
    local ab = self:alpha_bar(t)
    return math.sqrt(ab), math.sqrt(1 - ab)
  end
  local c = self:_tensors(t:dtype())
  local shape, flat = t:shape(), t:reshape(-1)
  return c.sqrt_ab:index_select(1, flat):view(shape), c.sqrt_1mab:index_select(1, flat):view(shape)
end
DDPM.alpha_sigma = DDPM.marginal

-- σ̂_t = √((1 − ᾱ_t)/ᾱ_t): the level of x_t/√ᾱ_t in the VE view.
function DDPM:sigma(t)
  t = check_step(self, t, "sigma")
  return t == 0 and 0 or self.sigmas[t]
end

-- The (fractional) timestep at level σ̂, by linear interpolation of log σ̂_t
-- (k-diffusion's sigma_to_t); clamped to [1, T].
function DDPM:t_of_sigma(sigma)
  if not is_num(sigma) then
    local v, out = sigma:double():values(), {}
    for i, s in ipairs(v) do out[i] = self:t_of_sigma(s) end
    return sc.tensor(out, { dtype = sigma:dtype() }):view(sigma:shape())
  end
  if sigma <= self.sigmas[1] then return 1.0 end
  if sigma >= self.sigmas[self.T] then return self.T + 0.0 end
  local ls = math.log(sigma)
  local lo, hi = 1, self.T
  while hi - lo > 1 do
    local mid = (lo + hi) // 2
    if self.log_sigmas[mid] <= ls then lo = mid else hi = mid end
  end
  local w = (ls - self.log_sigmas[lo]) / (self.log_sigmas[hi] - self.log_sigmas[lo])
  return lo + w
end

-- The network's conditioning (the timestep) and input scale α = 1/√(1 + σ̂²)
-- at level σ̂: what scorch.param needs to call a DDPM-trained network anywhere.
function DDPM:cond_of_sigma(sigma)
  return self:t_of_sigma(sigma), 1 / sqrt(sigma * sigma + 1)
end

-- timesteps(n [, spacing]) -> descending Lua array of n timesteps for
-- few-step sampling; see M.timesteps.
function DDPM:timesteps(n, spacing)
  return M.timesteps(self.T, n or self.T, spacing)
end

-- ---- timestep spacings ----------------------------------------------------------------------

--- Lin et al. 2024 ("Common diffusion noise schedules and sample steps are
-- flawed"), Table 2: which n of the T training steps a few-step sampler
-- visits, 1-based and descending.
--   linspace  round(linspace(1, T, n))          (DDIM / iDDPM)
--   leading   1 + k·⌊T/n⌋, k = 0..n−1            (Stable Diffusion)
--   trailing  round(T − k·T/n), k = 0..n−1       (always starts at T)
-- timesteps(T, n [, spacing="linspace"]) -> Lua array
function M.timesteps(T, n, spacing)
  T = check_count(T, "T", "timesteps")
  n = check_count(n, "n", "timesteps")
  if n > T then error("scorch.schedules.timesteps: more steps than timesteps", 2) end
  spacing = spacing or "linspace"
  local asc = {}
  if spacing == "linspace" then
    for k = 0, n - 1 do
      asc[k + 1] = n == 1 and T or math.floor(1 + k * (T - 1) / (n - 1) + 0.5)
    end
  elseif spacing == "leading" then
    local stride = T // n
    for k = 0, n - 1 do asc[k + 1] = 1 + k * stride end
  elseif spacing == "trailing" then
    for k = 0, n - 1 do asc[n - k] = math.max(1, math.floor(T - k * T / n + 0.5)) end
  else
    error(("scorch.schedules.timesteps: unknown spacing '%s' (leading, linspace, trailing)")
      :format(tostring(spacing)), 2)
  end
  local out = {}
  for i = n, 1, -1 do out[#out + 1] = math.tointeger(asc[i]) end
  return out
end

-- ---- Karras σ ---------------------------------------------------------------------------------

--- Karras et al. 2022, eq. 5: σ_i = (σ_max^{1/ρ} + i/(N−1)·(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ,
-- i = 0..N−1, followed by σ_N = 0.
-- karras_sigmas(N [, {sigma_min=0.002, sigma_max=80, rho=7, append_zero=true, dtype=}])
--   -> Lua array (N + 1 levels, or N without the zero), tensor
function M.karras_sigmas(n, opts)
  n = check_count(n, "N", "karras_sigmas")
  opts = util.check_options(opts, { "sigma_min", "sigma_max", "rho", "append_zero", "dtype" },
    "scorch.schedules.karras_sigmas")
  local smin, smax, rho = opts.sigma_min or 0.002, opts.sigma_max or 80, opts.rho or 7
  check_positive(smin, "sigma_min", "karras_sigmas")
  check_positive(smax, "sigma_max", "karras_sigmas")
  check_positive(rho, "rho", "karras_sigmas")
  if smin > smax then error("scorch.schedules.karras_sigmas: sigma_min above sigma_max", 2) end
  local a, b = smax ^ (1 / rho), smin ^ (1 / rho)
  local out = {}
  for i = 0, n - 1 do out[i + 1] = n == 1 and smax or (a + i / (n - 1) * (b - a)) ^ rho end
  if opts.append_zero ~= false then out[n + 1] = 0 end
  return out, as_tensor(out, opts)
end

-- ---- SDEs ------------------------------------------------------------------------------------------

-- Shared by the three SDEs: dx = f(x, t) dt + g(t) dw on t ∈ [0, T], T = 1.
local SDE = {}
SDE.__index = SDE
M.SDE = SDE

-- Mean coefficient and std of p_0t(x_t | x₀) = N(α_t x₀, s_t² I).
function SDE:marginal_mean(x0, t)
  local a = self:marginal(t)
  return x0 * a
end

function SDE:marginal_std(t)
  local _, s = self:marginal(t)
  return s
end
SDE.alpha_sigma = function(self, t) return self:marginal(t) end

-- σ̂(t) = s_t / α_t, the level in the VE view.
function SDE:sigma(t)
  local a, s = self:marginal(t)
  return s / a
end

-- The network's conditioning (t) and input scale α_t at level σ̂.
function SDE:cond_of_sigma(sigma)
  local t = self:t_of_sigma(sigma)
  local a = self:marginal(t)
  return t, a
end

-- prior_sample(shape [, {generator=, dtype=}]) -> x_T ~ p_T
function SDE:prior_sample(shape, opts)
  opts = util.check_options(opts, { "generator", "dtype" }, "scorch.schedules.SDE:prior_sample")
  local z = sc.randn(shape, { generator = opts.generator, dtype = opts.dtype })
  if self.prior_std ~= 1 then z = z * self.prior_std end
  return z
end

-- prior_log_prob(z) -> [N] log N(z; 0, prior_std² I), summed over all but dim 1
function SDE:prior_log_prob(z)
  local n = z:size(1)
  local d = z:numel() // math.max(n, 1)
  local flat = z:reshape(n, d)
  local s2 = self.prior_std * self.prior_std
  return flat:square():sum(2, false) * (-0.5 / s2) - 0.5 * d * (LOG_2PI + math.log(s2))
end

-- Euler–Maruyama discretisation of the forward SDE over a step dt:
-- x_{t+dt} ≈ x + f dt + G z with f dt, G = g √dt (Song et al. 2021, App. E).
-- discretize(x, t, dt) -> f·dt, G
function SDE:discretize(x, t, dt)
  return self:drift(x, t) * dt, self:diffusion(t) * math.sqrt(dt)
end

-- Drift and diffusion of the probability-flow ODE dx/dt = f − ½ g² ∇log p_t
-- given a score value (Song et al. 2021, eq. 13).
function SDE:ode_drift(x, t, score)
  local g = self:diffusion(t)
  return self:drift(x, t) - score * (0.5 * g * g)
end

-- A class deriving from parent (SDE methods are looked up last).
local function class(parent)
  local c = setmetatable({}, { __index = parent })
  c.__index = c
  c.__tostring = function(self) return self:describe() end
  return c
end

-- Song et al. 2021, eq. 11 (VP SDE, continuous DDPM):
--   dx = −½ β(t) x dt + √β(t) dw,  β(t) = β_min + t(β_max − β_min);
--   α_t = exp(−¼ t²(β_max − β_min) − ½ t β_min), s_t² = 1 − α_t².
-- vp_sde{beta_min=0.1, beta_max=20, eps=1e-3}
local VP = class(SDE)
M.VP = VP

--- The VP SDE (Song et al. 2021, eq. 11), the continuous DDPM; also sc.schedules.VPSDE.
-- @param opts table: beta_min = 0.1; beta_max = 20; eps = 1e-3 (the smallest time)
-- @return SDE with drift, diffusion, marginal, prior_std, T, eps
-- @usage local sde = sc.schedules.vp_sde{beta_max = 20}
function M.vp_sde(opts)
  opts = util.check_options(opts, { "beta_min", "beta_max", "eps" }, "scorch.schedules.vp_sde")
  local bmin, bmax = opts.beta_min or 0.1, opts.beta_max or 20
  check_positive(bmin, "beta_min", "vp_sde")
  check_positive(bmax, "beta_max", "vp_sde")
  return setmetatable({ kind = "vp", T = 1, beta_min = bmin, beta_max = bmax,
    eps = opts.eps or 1e-3, prior_std = 1 }, VP)
end

function VP:beta(t) return self.beta_min + t * (self.beta_max - self.beta_min) end
-- ∫₀ᵗ β(s) ds
function VP:beta_integral(t)
  return t * self.beta_min + (t * t) * (0.5 * (self.beta_max - self.beta_min))
end
function VP:drift(x, t) return x * (self:beta(t) * -0.5) end
function VP:diffusion(t) return sqrt(self:beta(t)) end
function VP:marginal(t)
  local B = self:beta_integral(t)
  local a = exp(B * -0.5)
  return a, sqrt(-expm1(-B))
end
-- t with σ̂(t) = σ: ∫β = log(1 + σ²), a quadratic in t.
function VP:t_of_sigma(sigma)
  local B = log1p(sigma * sigma)
  local k = self.beta_max - self.beta_min
  -- ½ k t² + β_min t − B = 0, written to avoid cancellation
  return (B * 2) / (sqrt(B * (2 * k) + self.beta_min * self.beta_min) + self.beta_min)
end
-- Song et al. 2021, App. B: β_i = β̄_min/N + (i−1)/(N(N−1))·(β̄_max − β̄_min), the DDPM
-- betas the VP SDE discretises to; discrete_betas(N) -> Lua array
function VP:discrete_betas(N)
  N = check_count(N, "N", "vp_sde:discrete_betas")
  local out = {}
  for i = 1, N do
    out[i] = self.beta_min / N + (N == 1 and 0 or (i - 1) / (N * (N - 1)) * (self.beta_max - self.beta_min))
  end
  return out
end
-- DDPM's ancestral step as the discretisation (Song et al. 2021, App. E):
-- f = (√(1 − β_i) − 1) x, G = √β_i with β_i = β(t)·dt.
function VP:discretize(x, t, dt)
  local b = self:beta(t) * dt
  return x * (sqrt(1 - b) - 1), sqrt(b)
end
function VP:describe()
  return ("scorch.schedules.vp_sde(beta_min=%g, beta_max=%g)"):format(self.beta_min, self.beta_max)
end

-- Song et al. 2021, eq. 12 (sub-VP SDE):
--   dx = −½ β(t) x dt + √(β(t)(1 − e^{−2∫₀ᵗβ})) dw;  α_t as VP, s_t = 1 − α_t².
-- subvp_sde{beta_min=0.1, beta_max=20, eps=1e-3}
local SubVP = class(VP)
M.SubVP = SubVP

--- The sub-VP SDE (Song et al. 2021, eq. 12); also sc.schedules.subVPSDE.
-- @param opts table: beta_min = 0.1; beta_max = 20; eps = 1e-3
-- @return SDE
-- @usage local sde = sc.schedules.subvp_sde{}
function M.subvp_sde(opts)
  opts = util.check_options(opts, { "beta_min", "beta_max", "eps" }, "scorch.schedules.subvp_sde")
  local bmin, bmax = opts.beta_min or 0.1, opts.beta_max or 20
  check_positive(bmin, "beta_min", "subvp_sde")
  check_positive(bmax, "beta_max", "subvp_sde")
  return setmetatable({ kind = "subvp", T = 1, beta_min = bmin, beta_max = bmax,
    eps = opts.eps or 1e-3, prior_std = 1 }, SubVP)
end

function SubVP:diffusion(t)
  local B = self:beta_integral(t)
  return sqrt(self:beta(t) * -expm1(B * -2))
end
function SubVP:marginal(t)
  local B = self:beta_integral(t)
  return exp(B * -0.5), -expm1(-B)
end
-- σ̂ = (1 − α²)/α  ⇒  α = (√(σ̂² + 4) − σ̂)/2, ∫β = −2 log α.
function SubVP:t_of_sigma(sigma)
  local a = (sqrt(sigma * sigma + 4) - sigma) * 0.5
  local B = log(a) * -2
  local k = self.beta_max - self.beta_min
  return (B * 2) / (sqrt(B * (2 * k) + self.beta_min * self.beta_min) + self.beta_min)
end
SubVP.discretize = SDE.discretize
function SubVP:describe()
  return ("scorch.schedules.subvp_sde(beta_min=%g, beta_max=%g)"):format(self.beta_min, self.beta_max)
end

-- Song et al. 2021, eq. 9 (VE SDE, continuous SMLD):
--   σ(t) = σ_min (σ_max/σ_min)^t,  dx = σ(t) √(2 log(σ_max/σ_min)) dw;
--   α_t = 1, s_t = σ(t); prior N(0, σ_max² I).
-- ve_sde{sigma_min=0.01, sigma_max=50, eps=1e-5}
local VE = class(SDE)
M.VE = VE

--- The VE SDE (Song et al. 2021, eq. 9), σ(t) = σ_min (σ_max/σ_min)^t; also sc.schedules.VESDE.
-- @param opts table: sigma_min = 0.01; sigma_max = 50; eps = 1e-5
-- @return SDE
-- @usage local sde = sc.schedules.ve_sde{sigma_max = 20}
function M.ve_sde(opts)
  opts = util.check_options(opts, { "sigma_min", "sigma_max", "eps" }, "scorch.schedules.ve_sde")
  local smin, smax = opts.sigma_min or 0.01, opts.sigma_max or 50
  check_positive(smin, "sigma_min", "ve_sde")
  check_positive(smax, "sigma_max", "ve_sde")
  if smin >= smax then error("scorch.schedules.ve_sde: sigma_min must be below sigma_max", 2) end
  return setmetatable({ kind = "ve", T = 1, sigma_min = smin, sigma_max = smax,
    eps = opts.eps or 1e-5, prior_std = smax, log_ratio = math.log(smax / smin) }, VE)
end

function VE:sigma(t) return exp(t * self.log_ratio) * self.sigma_min end
function VE.drift(_, x) return x * 0 end
function VE:diffusion(t) return self:sigma(t) * math.sqrt(2 * self.log_ratio) end
function VE:marginal(t)
  local s = self:sigma(t)
  if is_num(s) then return 1, s end
  return s * 0 + 1, s
end
function VE:t_of_sigma(sigma) return log(sigma / self.sigma_min) * (1 / self.log_ratio) end
-- SMLD's step between adjacent levels (Song et al. 2021, App. E):
-- f = 0, G = √(σ(t)² − σ(t − dt)²), with σ = 0 below t = 0.
function VE:discretize(x, t, dt)
  local s = self:sigma(t)
  local prev = t - dt > 0 and self:sigma(t - dt) or 0
  return x * 0, math.sqrt(s * s - prev * prev)
end
function VE:describe()
  return ("scorch.schedules.ve_sde(sigma_min=%g, sigma_max=%g)"):format(self.sigma_min, self.sigma_max)
end

-- Aliases in the papers' spelling.
M.VPSDE, M.VESDE, M.subVPSDE = M.vp_sde, M.ve_sde, M.subvp_sde

--- is_sde(v): a noising SDE made here
function M.is_sde(v)
  return type(v) == "table" and (v.kind == "vp" or v.kind == "ve" or v.kind == "subvp")
end

return M
