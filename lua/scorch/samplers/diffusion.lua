-- Diffusion samplers: DDPM ancestral sampling, DDIM, the reverse SDE
-- (Euler–Maruyama, predictor–corrector), the probability-flow ODE, and the
-- denoiser samplers of the EDM view (naive backward steps, EDM's Heun,
-- DPM-Solver++ 2M).
--
-- Each sampler fits one view of a model (see scorch.param to move a model
-- between views):
--   ddpm, ddim                         eps(x, t) on a DDPM schedule, t = 1..T
--   euler_maruyama, predictor_corrector,
--   probability_flow                   score(x, t) of an SDE, t ∈ [ε, T]
--   naive_backward, heun, dpmpp_2m     D(x̂, σ) on decreasing levels σ
-- The time or level reaches the model as a number.  `prediction` (where
-- offered) reads the model's output as "eps", "x0", "v" or "score" instead.
--
-- sampler(model, schedule, n, opts) -> x, info.  n is a number of points
-- (of opts.dim = 2 coordinates) or a shape table; opts.x_init starts from a
-- given tensor instead of prior noise.  Other common options: generator,
-- dtype, callback(i, x, level).  info.nfe counts model evaluations.  All run
-- with gradient recording off.
local sc = require "scorch"
local param = require "scorch.param"
local schedules = require "scorch.schedules.diffusion"
local ode = require "scorch.samplers.ode"

local M = {}

M.ode = ode

-- ---- shared pieces ------------------------------------------------------------------

local function check_model(m, fn)
  local t = type(m)
  if t == "function" then return end
  if (t == "table" or t == "userdata") and getmetatable(m) and getmetatable(m).__call then return end
  error(("scorch.samplers.%s: expected a callable model (got %s)"):format(fn, t), 3)
end

-- The starting point: opts.x_init, or scale · N(0, I) of the requested shape.
local function initial(n, opts, scale, fn)
  if opts.x_init ~= nil then
    if not sc.is_tensor(opts.x_init) then
      error(("scorch.samplers.%s: x_init must be a tensor"):format(fn), 3)
    end
    return opts.x_init:detach()
  end
  local shape
  if type(n) == "number" and n >= 1 and n == math.floor(n) then
    shape = { math.tointeger(n), opts.dim or 2 }
  elseif type(n) == "table" and #n >= 1 then
    shape = n
  else
    error(("scorch.samplers.%s: n must be a positive number of points or a shape"):format(fn), 3)
  end
  local z = sc.randn(shape, { generator = opts.generator, dtype = opts.dtype })
  if scale ~= 1 then z = z * scale end
  return z
end

local function noise_like(x, opts)
  return sc.randn(x:shape(), { generator = opts.generator, dtype = x:dtype() })
end

-- Model output as ε for x = α x₀ + s ε.
local function eps_of(model, kind, x, t, alpha, s)
  local y = model(x, t)
  if kind == "eps" then return y end
  return param.convert(y, kind, "eps", x, alpha, s)
end

local function check_ddpm(schedule, fn)
  if type(schedule) ~= "table" or schedule.kind ~= "ddpm" then
    error(("scorch.samplers.%s: expected a DDPM schedule (sc.schedules.ddpm)"):format(fn), 3)
  end
end

-- Timesteps to visit: opts.timesteps, or opts.steps spaced by opts.spacing.
local function visit(schedule, opts, default_steps, fn)
  local ts = opts.timesteps
  if ts == nil then
    return schedule:timesteps(opts.steps or default_steps, opts.spacing)
  end
  if type(ts) ~= "table" or #ts == 0 then
    error(("scorch.samplers.%s: timesteps must be a non-empty list"):format(fn), 3)
  end
  for i = 1, #ts do
    if math.type(ts[i]) ~= "integer" or ts[i] < 1 or ts[i] > schedule.T or (i > 1 and ts[i] >= ts[i - 1]) then
      error(("scorch.samplers.%s: timesteps must be decreasing integers in 1..%d"):format(fn, schedule.T), 3)
    end
  end
  return ts
end

local function clip_x0(x0, clip)
  if not clip then return x0 end
  local c = clip == true and 1 or clip
  return sc.clamp(x0, -c, c)
end

local function prediction_of(opts, default, fn)
  local kind = opts.prediction or default
  if not param.predictions[kind] then
    error(("scorch.samplers.%s: unknown prediction '%s' (eps, x0, v, score)"):format(fn, tostring(kind)), 3)
  end
  return kind
end

-- ---- DDPM and DDIM ------------------------------------------------------------------------

-- Ho, Jain & Abbeel 2020, Algorithm 2:
--   x_T ~ N(0, I);  x_{t−1} = (x_t − β_t/√(1 − ᾱ_t) ε_θ(x_t, t))/√α_t + σ_t z,  z = 0 at t = 1,
-- σ_t² = β_t ("beta") or β̃_t = (1 − ᾱ_{t−1})/(1 − ᾱ_t) β_t ("beta_tilde", eq. 7).
-- ddpm(eps_model, schedule, n, {variance="beta", clip_x0=false, prediction="eps",
--      timesteps=, steps=, spacing=, generator=, dtype=, x_init=, callback=})
-- clip_x0 (true = ±1, or a bound) predicts x₀, clips it, and steps with the
-- posterior mean μ̃_t(x_t, x₀) (eq. 7) instead.  A subset of timesteps uses the
-- respaced betas 1 − ᾱ_t/ᾱ_prev (Nichol & Dhariwal 2021, App. B).
function M.ddpm(model, schedule, n, opts)
  check_model(model, "ddpm")
  check_ddpm(schedule, "ddpm")
  opts = opts or {}
  local variance = opts.variance or "beta"
  if variance ~= "beta" and variance ~= "beta_tilde" then
    error("scorch.samplers.ddpm: variance must be \"beta\" or \"beta_tilde\"", 2)
  end
  local kind = prediction_of(opts, "eps", "ddpm")
  local ts = visit(schedule, opts, schedule.T, "ddpm")
  return sc.no_grad(function()
    local x = initial(n, opts, 1, "ddpm")
    for i, t in ipairs(ts) do
      local ab = schedule.alpha_bars[t]
      local ab_prev = i < #ts and schedule.alpha_bars[ts[i + 1]] or 1
      local beta = 1 - ab / ab_prev
      local alpha = 1 - beta
      local s = math.sqrt(1 - ab)
      local eps = eps_of(model, kind, x, t, math.sqrt(ab), s)
      local mean
      if opts.clip_x0 then
        local x0 = clip_x0((x - eps * s) / math.sqrt(ab), opts.clip_x0)
        mean = x0 * (math.sqrt(ab_prev) * beta / (1 - ab)) + x * (math.sqrt(alpha) * (1 - ab_prev) / (1 - ab))
      else
        mean = (x - eps * (beta / s)) / math.sqrt(alpha)
      end
      if i < #ts then
        local var = variance == "beta" and beta or (1 - ab_prev) / (1 - ab) * beta
        x = mean + noise_like(x, opts) * math.sqrt(var)
      else
        x = mean
      end
      if opts.callback then opts.callback(i, x, t) end
    end
    return x, { nfe = #ts, steps = #ts, timesteps = ts }
  end)
end

-- Song, Meng & Ermon 2021, eq. 12 (DDIM), with σ_t(η) of eq. 16:
--   x_prev = √ᾱ_prev x̂₀ + √(1 − ᾱ_prev − σ_t²) ε_θ + σ_t z,
--   σ_t = η √((1 − ᾱ_prev)/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ_prev).
-- η = 0 is deterministic; η = 1 with every step is DDPM with β̃.
-- ddim(eps_model, schedule, n, {eta=0, steps=50, spacing="linspace", timesteps=,
--      clip_x0=false, prediction="eps", generator=, dtype=, x_init=, callback=})
function M.ddim(model, schedule, n, opts)
  check_model(model, "ddim")
  check_ddpm(schedule, "ddim")
  opts = opts or {}
  local eta = opts.eta or 0
  if type(eta) ~= "number" or eta < 0 then error("scorch.samplers.ddim: eta must be >= 0", 2) end
  local kind = prediction_of(opts, "eps", "ddim")
  local ts = visit(schedule, opts, math.min(50, schedule.T), "ddim")
  return sc.no_grad(function()
    local x = initial(n, opts, 1, "ddim")
    for i, t in ipairs(ts) do
      local ab = schedule.alpha_bars[t]
      local ab_prev = i < #ts and schedule.alpha_bars[ts[i + 1]] or 1
      local a, s = math.sqrt(ab), math.sqrt(1 - ab)
      local eps = eps_of(model, kind, x, t, a, s)
      local x0 = (x - eps * s) / a
      if opts.clip_x0 then
        x0 = clip_x0(x0, opts.clip_x0)
        eps = (x - x0 * a) / s
      end
      local sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev))
      local dir = math.sqrt(math.max(0, 1 - ab_prev - sigma * sigma))
      x = x0 * math.sqrt(ab_prev) + eps * dir
      if sigma > 0 then x = x + noise_like(x, opts) * sigma end
      if opts.callback then opts.callback(i, x, t) end
    end
    return x, { nfe = #ts, steps = #ts, timesteps = ts }
  end)
end

-- ---- reverse SDE -----------------------------------------------------------------------------

local function check_sde(sde, fn)
  if not schedules.is_sde(sde) then
    error(("scorch.samplers.%s: expected an SDE (sc.schedules.vp_sde, ve_sde, subvp_sde)"):format(fn), 3)
  end
end

-- The model as a score function of (x, t) for this SDE.
local function score_of(model, sde, kind)
  if kind == "score" then return model end
  return function(x, t)
    local a, s = sde:marginal(t)
    return param.convert(model(x, t), kind, "score", x, a, s)
  end
end

-- N steps from T down to ε: a Lua array t_0 = T > … > t_N = ε.
local function time_grid(sde, steps, eps)
  local T, out = sde.T, {}
  for i = 0, steps do out[i + 1] = T - i * (T - eps) / steps end
  return out
end

local function steps_of(opts, default, fn)
  local n = opts.steps or default
  if math.type(n) ~= "integer" then
    if type(n) == "number" and n == math.floor(n) then n = math.tointeger(n) end
  end
  if math.type(n) ~= "integer" or n < 1 then
    error(("scorch.samplers.%s: steps must be a positive integer"):format(fn), 3)
  end
  return n
end

-- Song et al. 2021, eq. 6 (reverse SDE) by Euler–Maruyama:
--   x ← x − [f(x, t) − g(t)² s_θ(x, t)] Δt + g(t) √Δt z, from t = T to ε;
-- the last step adds no noise (Song et al.'s "noise removal").
-- euler_maruyama(score_model, sde, n, {steps=1000, eps=sde.eps, prediction="score",
--                generator=, dtype=, x_init=, callback=})
function M.euler_maruyama(model, sde, n, opts)
  check_model(model, "euler_maruyama")
  check_sde(sde, "euler_maruyama")
  opts = opts or {}
  local steps = steps_of(opts, 1000, "euler_maruyama")
  local score = score_of(model, sde, prediction_of(opts, "score", "euler_maruyama"))
  local ts = time_grid(sde, steps, opts.eps or sde.eps)
  return sc.no_grad(function()
    local x = initial(n, opts, sde.prior_std, "euler_maruyama")
    for i = 1, steps do
      local t, dt = ts[i], ts[i] - ts[i + 1]
      local g = sde:diffusion(t)
      local mean = x - (sde:drift(x, t) - score(x, t) * (g * g)) * dt
      if i < steps then x = mean + noise_like(x, opts) * (g * math.sqrt(dt)) else x = mean end
      if opts.callback then opts.callback(i, x, ts[i + 1]) end
    end
    return x, { nfe = steps, steps = steps }
  end)
end

-- Song et al. 2021, App. E, eq. 47 (reverse-diffusion predictor): with the
-- forward discretisation x_{i+1} = x_i + f_i + G_i z,
--   x ← x − f_i + G_i² s_θ(x, t) + G_i z.
local function reverse_diffusion(sde, score, x, t, dt)
  local f, G = sde:discretize(x, t, dt)
  return x - f + score(x, t) * (G * G), G
end

-- One Euler–Maruyama predictor step; returns the mean and the noise scale.
local function em_predictor(sde, score, x, t, dt)
  local g = sde:diffusion(t)
  return x - (sde:drift(x, t) - score(x, t) * (g * g)) * dt, g * math.sqrt(dt)
end

local function batch_norm_mean(v)
  local n = v:size(1)
  return v:reshape(n, -1):square():sum(2, false):sqrt():mean():item()
end

-- Song et al. 2021, Algorithm 2 (PC sampling) with the corrector of
-- Algorithms 4/5 (Langevin, step ε = 2α(r‖z‖/‖s_θ‖)², α = 1 − β_i for VP and 1
-- otherwise), run as in their code: at each t_i the corrector first, then the
-- predictor to t_{i+1}; the last predictor step adds no noise.
-- predictor_corrector(score_model, sde, n, {steps=1000, predictor="reverse_diffusion"
--   | "euler_maruyama" | "none", corrector="langevin" | "none", snr=0.16,
--   corrector_steps=1, eps=sde.eps, prediction="score", generator=, dtype=,
--   x_init=, callback=})
function M.predictor_corrector(model, sde, n, opts)
  check_model(model, "predictor_corrector")
  check_sde(sde, "predictor_corrector")
  opts = opts or {}
  local steps = steps_of(opts, 1000, "predictor_corrector")
  local score = score_of(model, sde, prediction_of(opts, "score", "predictor_corrector"))
  local predictor = opts.predictor or "reverse_diffusion"
  local corrector = opts.corrector or "langevin"
  local pstep = ({ reverse_diffusion = reverse_diffusion, euler_maruyama = em_predictor })[predictor]
  if predictor ~= "none" and not pstep then
    error(("scorch.samplers.predictor_corrector: unknown predictor '%s'"):format(tostring(predictor)), 2)
  end
  if corrector ~= "langevin" and corrector ~= "none" then
    error(("scorch.samplers.predictor_corrector: unknown corrector '%s'"):format(tostring(corrector)), 2)
  end
  local snr, m = opts.snr or 0.16, opts.corrector_steps or 1
  if corrector == "none" then m = 0 end
  local ts = time_grid(sde, steps, opts.eps or sde.eps)
  return sc.no_grad(function()
    local x = initial(n, opts, sde.prior_std, "predictor_corrector")
    local nfe = 0
    for i = 1, steps do
      local t, dt = ts[i], ts[i] - ts[i + 1]
      -- corrector: Langevin steps towards p_t
      local alpha = sde.kind == "vp" and (1 - sde:beta(t) * dt) or 1
      for _ = 1, m do
        local g = score(x, t)
        nfe = nfe + 1
        local z = noise_like(x, opts)
        local ratio = snr * batch_norm_mean(z) / batch_norm_mean(g)
        local e = 2 * alpha * ratio * ratio
        x = x + g * e + z * math.sqrt(2 * e)
      end
      -- predictor: one step of the reverse SDE to t_{i+1}
      if pstep then
        local mean, G = pstep(sde, score, x, t, dt)
        nfe = nfe + 1
        if i < steps then x = mean + noise_like(x, opts) * G else x = mean end
      end
      if opts.callback then opts.callback(i, x, ts[i + 1]) end
    end
    return x, { nfe = nfe, steps = steps }
  end)
end

-- ---- probability-flow ODE --------------------------------------------------------------

-- Song et al. 2021, eq. 13 (probability-flow ODE): dx/dt = f(x, t) − ½ g(t)² s_θ(x, t),
-- integrated from T to ε by Heun or Euler on a uniform grid, or by
-- Dormand–Prince RK45 with rtol/atol (Song et al. use scipy's RK45, 1e-5).
-- probability_flow(score_model, sde, n, {method="rk45" | "heun" | "euler", steps=100,
--   rtol=1e-5, atol=1e-5, eps=sde.eps, denoise=false, prediction="score",
--   generator=, dtype=, x_init=, callback=})
-- denoise = true ends with Tweedie's formula at ε, x₀ = (x + s² s_θ)/α (one
-- more evaluation).
function M.probability_flow(model, sde, n, opts)
  check_model(model, "probability_flow")
  check_sde(sde, "probability_flow")
  opts = opts or {}
  local score = score_of(model, sde, prediction_of(opts, "score", "probability_flow"))
  local method = opts.method or "rk45"
  local eps = opts.eps or sde.eps
  local function drift(x, t) return sde:ode_drift(x, t, score(x, t)) end
  return sc.no_grad(function()
    local x = initial(n, opts, sde.prior_std, "probability_flow")
    local nfe, steps
    if method == "rk45" or method == "dopri5" then
      x, nfe, steps = ode.dopri5(drift, x, sde.T, eps,
        { rtol = opts.rtol, atol = opts.atol, callback = opts.callback })
    elseif method == "heun" or method == "euler" then
      steps = steps_of(opts, 100, "probability_flow")
      x, nfe = ode.fixed(drift, x, time_grid(sde, steps, eps), method, opts.callback)
    else
      error(("scorch.samplers.probability_flow: unknown method '%s' (rk45, heun, euler)")
        :format(tostring(method)), 2)
    end
    if opts.denoise then
      local a, s = sde:marginal(eps)
      x = (x + score(x, eps) * (s * s)) / a
      nfe = nfe + 1
    end
    return x, { nfe = nfe, steps = steps }
  end)
end

-- ---- denoiser samplers (the EDM view) -----------------------------------------------------

-- Levels as a Lua array: given (array or tensor), or opts.steps Karras levels.
local function levels_of(sigmas, opts, default_steps, fn)
  if sigmas == nil then
    sigmas = schedules.karras_sigmas(opts.steps or default_steps, opts)
  elseif sc.is_tensor(sigmas) then
    sigmas = sigmas:double():values()
  end
  if type(sigmas) ~= "table" or #sigmas < 2 then
    error(("scorch.samplers.%s: sigmas must list at least two levels"):format(fn), 3)
  end
  for i = 2, #sigmas do
    if sigmas[i] >= sigmas[i - 1] or sigmas[i] ~= sigmas[i] or sigmas[i] < 0 then
      error(("scorch.samplers.%s: sigmas must be decreasing and non-negative"):format(fn), 3)
    end
  end
  return sigmas
end

-- The naive backward sampler for a denoiser (the course notes' two variants).
-- Deterministic: x_{i+1} = x_i + (σ_{i+1} − σ_i)(x_i − D(x_i, σ_i))/σ_i, an Euler step
-- of dx/dσ = (x − D(x, σ))/σ (Karras et al. 2022, eq. 3 with σ(t) = t).
-- Stochastic: the same step only down to σ_down, then fresh noise σ_up to
-- reach the next level, σ_down² + σ_up² = σ_{i+1}²; with
-- σ_up = min(σ_{i+1}, η σ_{i+1} √(1 − σ_{i+1}²/σ_i²)) η = 1 is DDPM's posterior step
-- in the VE view, and η = math.huge denoises fully (x = D) and re-noises to σ_{i+1}.
-- naive_backward(denoiser, sigmas, n, {stochastic=false, eta=1, steps=, sigma_min=,
--                sigma_max=, rho=, generator=, dtype=, x_init=, callback=})
-- sigmas: decreasing levels (array or tensor, usually ending at 0), or nil for
-- opts.steps (default 100) Karras levels.
function M.naive_backward(denoiser, sigmas, n, opts)
  check_model(denoiser, "naive_backward")
  opts = opts or {}
  sigmas = levels_of(sigmas, opts, 100, "naive_backward")
  local eta = opts.stochastic and (opts.eta or 1) or 0
  return sc.no_grad(function()
    local x = initial(n, opts, sigmas[1], "naive_backward")
    local steps = #sigmas - 1
    for i = 1, steps do
      local s, s_next = sigmas[i], sigmas[i + 1]
      local d = (x - denoiser(x, s)) / s
      local up = 0
      if eta > 0 and s_next > 0 then
        up = math.min(s_next, eta * s_next * math.sqrt(1 - (s_next * s_next) / (s * s)))
      end
      local down = math.sqrt(s_next * s_next - up * up)
      x = x + d * (down - s)
      if up > 0 then x = x + noise_like(x, opts) * up end
      if opts.callback then opts.callback(i, x, s_next) end
    end
    return x, { nfe = steps, steps = steps }
  end)
end

-- Karras et al. 2022, Algorithm 2 (stochastic Heun sampler): at each level
-- raise σ_i to σ̂ = σ_i(1 + γ_i), γ_i = min(S_churn/N, √2 − 1) on [S_min, S_max],
-- adding noise of std S_noise √(σ̂² − σ_i²); an Euler step to σ_{i+1}, then a
-- Heun (trapezoidal) correction unless σ_{i+1} = 0.  NFE = 2N − 1.
-- heun(denoiser, sigmas, n, {S_churn=0, S_min=0, S_max=inf, S_noise=1, steps=18,
--      sigma_min=0.002, sigma_max=80, rho=7, generator=, dtype=, x_init=, callback=})
-- S_churn = 0 is the deterministic Algorithm 1.
function M.heun(denoiser, sigmas, n, opts)
  check_model(denoiser, "heun")
  opts = opts or {}
  sigmas = levels_of(sigmas, opts, 18, "heun")
  local churn, smin = opts.S_churn or 0, opts.S_min or 0
  local smax, snoise = opts.S_max or math.huge, opts.S_noise or 1
  return sc.no_grad(function()
    local x = initial(n, opts, sigmas[1], "heun")
    local steps, nfe = #sigmas - 1, 0
    for i = 1, steps do
      local s, s_next = sigmas[i], sigmas[i + 1]
      local gamma = (s >= smin and s <= smax) and math.min(churn / steps, math.sqrt(2) - 1) or 0
      local s_hat = s * (1 + gamma)
      if gamma > 0 then
        x = x + noise_like(x, opts) * (snoise * math.sqrt(s_hat * s_hat - s * s))
      end
      local d = (x - denoiser(x, s_hat)) / s_hat
      nfe = nfe + 1
      local x_next = x + d * (s_next - s_hat)
      if s_next > 0 then
        local d2 = (x_next - denoiser(x_next, s_next)) / s_next
        nfe = nfe + 1
        x_next = x + (d + d2) * (0.5 * (s_next - s_hat))
      end
      x = x_next
      if opts.callback then opts.callback(i, x, s_next) end
    end
    return x, { nfe = nfe, steps = steps }
  end)
end

-- Lu et al. 2022 (DPM-Solver++), Algorithm 2 (multistep second order, "2M"),
-- in σ with λ = −log σ, h_i = λ_{i+1} − λ_i, r = h_{i−1}/h_i:
--   D̄ = (1 + 1/(2r)) D_i − (1/(2r)) D_{i−1}  (D̄ = D_i at the first step),
--   x_{i+1} = (σ_{i+1}/σ_i) x_i − (e^{−h_i} − 1) D̄;   x = D at σ = 0.  NFE = N.
-- dpmpp_2m(denoiser, sigmas, n, {steps=20, sigma_min=0.002, sigma_max=80, rho=7,
--          generator=, dtype=, x_init=, callback=}) — Karras levels by default.
function M.dpmpp_2m(denoiser, sigmas, n, opts)
  check_model(denoiser, "dpmpp_2m")
  opts = opts or {}
  sigmas = levels_of(sigmas, opts, 20, "dpmpp_2m")
  return sc.no_grad(function()
    local x = initial(n, opts, sigmas[1], "dpmpp_2m")
    local steps = #sigmas - 1
    local old
    for i = 1, steps do
      local s, s_next = sigmas[i], sigmas[i + 1]
      local d = denoiser(x, s)
      if s_next == 0 then
        x = d
      else
        local h = math.log(s / s_next)
        local dbar = d
        if old then
          local r = math.log(sigmas[i - 1] / s) / h
          dbar = d * (1 + 1 / (2 * r)) - old * (1 / (2 * r))
        end
        x = x * (s_next / s) - dbar * (math.exp(-h) - 1)
      end
      old = d
      if opts.callback then opts.callback(i, x, s_next) end
    end
    return x, { nfe = steps, steps = steps }
  end)
end

return M
