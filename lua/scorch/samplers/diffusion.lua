--- Diffusion samplers: DDPM ancestral sampling, DDIM, the reverse SDE
-- (Euler–Maruyama, predictor–corrector), the probability-flow ODE, and the
-- denoiser samplers of the EDM view (naive backward steps, EDM's Heun,
-- DPM-Solver++ 2M).
--
-- Every sampler is sampler(model, x_init, levels, opts) -> x, info (the
-- form of k-diffusion): model a wrapped model (sc.param.wrap) that answers
-- in whichever view the sampler needs, so every sampler drives every model:
--   ddpm, ddim                         model:eps(x, t, schedule), t = 1..T
--   euler_maruyama, predictor_corrector,
--   probability_flow                   model:score(x, t, sde), t ∈ [ε, T]
--   naive_backward, heun, dpmpp_2m     model:denoise(x̂, σ) on decreasing σ
-- The level of a step reaches the model as a number; the model hands its
-- network the column of sc.param.level.  levels is the schedule (a DDPM
-- schedule, an SDE) or the list / tensor of levels to visit (timesteps,
-- times, σ).  x_init is the start: sc.samplers.prior draws it.
-- opts.callback{i =, x =, level =, denoised =} runs after step i with the
-- new state x, the level it is now at, and the x₀ estimate the step used
-- (nil where a sampler has none: predictor_corrector, probability_flow).
-- info = {nfe =, steps =, levels =} always.  All run with recording off.
-- @module scorch.samplers.diffusion
local sc = require "scorch"
local param = require "scorch.param"
local schedules = require "scorch.schedules.diffusion"
local ode = require "scorch.samplers.ode"
local common = require "scorch.samplers.common"

local M = {}

M.ode = ode

local noise_like = common.noise_like
local report = common.report
local to_d = param.to_d

-- ---- DDPM and DDIM ------------------------------------------------------------------------

local function is_ddpm(v) return type(v) == "table" and v.kind == "ddpm" end

-- The schedule and the descending timesteps to visit: levels a DDPM schedule
-- (opts.timesteps, or opts.steps spaced by opts.spacing), or a list / tensor
-- of timesteps on the model's own schedule.
local function ddpm_levels(model, levels, opts, default_steps, fn)
  local sched, ts
  if is_ddpm(levels) then
    sched, ts = levels, opts.timesteps
    if ts == nil then
      return sched, sched:timesteps(opts.steps or math.min(default_steps, sched.T), opts.spacing)
    end
  else
    sched, ts = model.process, common.as_list(levels)
    if not is_ddpm(sched) or ts == nil then
      error(("scorch.samplers.%s: levels must be a DDPM schedule (sc.schedules.ddpm),"
        .. " or timesteps for a model wrapped with one (bad argument #3)"):format(fn), 3)
    end
    if opts.timesteps or opts.steps or opts.spacing then
      error(("scorch.samplers.%s: timesteps given twice (levels and opts)"):format(fn), 3)
    end
    for i = 1, #ts do ts[i] = math.tointeger(ts[i]) or ts[i] end
  end
  if type(ts) ~= "table" or #ts == 0 then
    error(("scorch.samplers.%s: timesteps must be a non-empty list"):format(fn), 3)
  end
  for i = 1, #ts do
    if math.type(ts[i]) ~= "integer" or ts[i] < 1 or ts[i] > sched.T or (i > 1 and ts[i] >= ts[i - 1]) then
      error(("scorch.samplers.%s: timesteps must be decreasing integers in 1..%d"):format(fn, sched.T), 3)
    end
  end
  return sched, ts
end

local function clip_x0(x0, clip)
  if not clip then return x0 end
  local c = clip == true and 1 or clip
  return sc.clamp(x0, -c, c)
end

--- DDPM ancestral sampling (Ho, Jain & Abbeel 2020, Algorithm 2):
-- x_{t−1} = (x_t − β_t/√(1 − ᾱ_t) ε_θ(x_t, t))/√α_t + σ_t z,  z = 0 at the last step,
-- σ_t² = β_t ("beta") or β̃_t = (1 − ᾱ_{t−1})/(1 − ᾱ_t) β_t ("beta_tilde", eq. 7), or
-- learned ("learned": Nichol & Dhariwal 2021, eq. 15, σ_t² = exp(v log β_t + (1 − v) log β̃_t)
-- with v from the network's forward_variance, e.g. DiffusionMLP{learn_variance = true}).
-- clip_x0 (true = ±1, or a bound) predicts x₀, clips it, and steps with the
-- posterior mean μ̃_t(x_t, x₀) (eq. 7) instead.  A subset of timesteps uses the
-- respaced betas 1 − ᾱ_t/ᾱ_prev (Nichol & Dhariwal 2021, App. B), and a learned
-- variance interpolates between the respaced β and β̃ (as they do).
-- @param model wrapped model, asked for model:eps(x, t, schedule)
-- @param x_init tensor [N, ...] (sc.samplers.prior(schedule, shape))
-- @param levels DDPM schedule, or descending timesteps (list / tensor) on the model's schedule
-- @param opts table: variance = "beta" | "beta_tilde" | "learned"; clip_x0 = false; steps = T;
--   spacing = "linspace" | "leading" | "trailing"; timesteps (explicit list); generator; callback
-- @return x, info {nfe =, steps =, levels = timesteps visited, timesteps =}
-- @usage local x = sc.samplers.ddpm(m, sc.samplers.prior(sched, {500, 2}), sched, {steps = 100})
function M.ddpm(model, x_init, levels, opts)
  common.check_model(model, "ddpm")
  local x = common.check_start(x_init, "ddpm")
  opts = common.options(opts, { "variance", "clip_x0", "steps", "spacing", "timesteps", "generator",
    "callback" }, "ddpm")
  local variance = opts.variance or "beta"
  if variance ~= "beta" and variance ~= "beta_tilde" and variance ~= "learned" then
    error("scorch.samplers.ddpm: variance must be \"beta\", \"beta_tilde\" or \"learned\"", 2)
  end
  local sched, ts = ddpm_levels(model, levels, opts, math.huge, "ddpm")
  local learned = variance == "learned"
  if learned then
    local net = model.net
    if not (type(net) == "table" and net.learned_variance == true and type(net.forward_variance) == "function") then
      error("scorch.samplers.ddpm: variance \"learned\" needs a model whose network learns its variances"
        .. " (e.g. sc.param.wrap(DiffusionMLP{learn_variance = true}, ...))", 2)
    end
    if model.modify or model.process ~= sched then
      error("scorch.samplers.ddpm: a learned variance is read on the model's own schedule, unguided", 2)
    end
  end
  local cb, gen = opts.callback, opts.generator
  return sc.no_grad(function()
    for i, t in ipairs(ts) do
      local ab = sched.alpha_bars[t]
      local ab_prev = i < #ts and sched.alpha_bars[ts[i + 1]] or 1
      local beta = 1 - ab / ab_prev
      local alpha = 1 - beta
      local s = math.sqrt(1 - ab)
      local eps, v
      if learned then
        local out
        out, v = model.net:forward_variance(x, param.level(t, x), model.cond)
        eps = param.convert(out, model.kind, "eps", x, math.sqrt(ab), s)
      else
        eps = model:eps(x, t, sched)
      end
      local mean, x0
      if opts.clip_x0 then
        x0 = clip_x0((x - eps * s) / math.sqrt(ab), opts.clip_x0)
        mean = x0 * (math.sqrt(ab_prev) * beta / (1 - ab)) + x * (math.sqrt(alpha) * (1 - ab_prev) / (1 - ab))
      else
        if cb then x0 = (x - eps * s) / math.sqrt(ab) end
        mean = (x - eps * (beta / s)) / math.sqrt(alpha)
      end
      if i < #ts then
        if learned then
          local logvar = schedules.interpolated_log_variance(v, beta, (1 - ab_prev) / (1 - ab) * beta)
          x = mean + noise_like(x, gen) * (logvar * 0.5):exp()
        else
          local var = variance == "beta" and beta or (1 - ab_prev) / (1 - ab) * beta
          x = mean + noise_like(x, gen) * math.sqrt(var)
        end
      else
        x = mean
      end
      report(cb, { i = i, x = x, level = ts[i + 1] or 0, from = t, denoised = x0 })
    end
    return x, { nfe = #ts, steps = #ts, levels = ts, timesteps = ts }
  end)
end

--- DDIM (Song, Meng & Ermon 2021, eq. 12) with σ_t(η) of eq. 16:
-- x_prev = √ᾱ_prev x̂₀ + √(1 − ᾱ_prev − σ_t²) ε_θ + σ_t z,
-- σ_t = η √((1 − ᾱ_prev)/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ_prev).
-- η = 0 is deterministic; η = 1 with every step is DDPM with β̃.
-- @param model wrapped model, asked for model:eps(x, t, schedule)
-- @param x_init tensor [N, ...]
-- @param levels DDPM schedule, or descending timesteps on the model's schedule
-- @param opts table: eta = 0; steps = min(50, T); spacing = "linspace"; timesteps; clip_x0 = false;
--   generator; callback
-- @return x, info {nfe =, steps =, levels =, timesteps =}
-- @usage local x = sc.samplers.ddim(m, sc.samplers.prior(sched, {500, 2}), sched, {steps = 50})
function M.ddim(model, x_init, levels, opts)
  common.check_model(model, "ddim")
  local x = common.check_start(x_init, "ddim")
  opts = common.options(opts, { "eta", "steps", "spacing", "timesteps", "clip_x0", "generator", "callback" },
    "ddim")
  local eta = opts.eta or 0
  if type(eta) ~= "number" or eta < 0 then error("scorch.samplers.ddim: eta must be >= 0", 2) end
  local sched, ts = ddpm_levels(model, levels, opts, 50, "ddim")
  local cb, gen = opts.callback, opts.generator
  return sc.no_grad(function()
    for i, t in ipairs(ts) do
      local ab = sched.alpha_bars[t]
      local ab_prev = i < #ts and sched.alpha_bars[ts[i + 1]] or 1
      local a, s = math.sqrt(ab), math.sqrt(1 - ab)
      local eps = model:eps(x, t, sched)
      local x0 = (x - eps * s) / a
      if opts.clip_x0 then
        x0 = clip_x0(x0, opts.clip_x0)
        eps = (x - x0 * a) / s
      end
      local sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev))
      local dir = math.sqrt(math.max(0, 1 - ab_prev - sigma * sigma))
      x = x0 * math.sqrt(ab_prev) + eps * dir
      if sigma > 0 then x = x + noise_like(x, gen) * sigma end
      report(cb, { i = i, x = x, level = ts[i + 1] or 0, from = t, denoised = x0 })
    end
    return x, { nfe = #ts, steps = #ts, levels = ts, timesteps = ts }
  end)
end

-- ---- reverse SDE -----------------------------------------------------------------------------

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

-- N steps from T down to ε: a Lua array t_0 = T > … > t_N = ε.
local function time_grid(sde, steps, eps)
  local T, out = sde.T, {}
  for i = 0, steps do out[i + 1] = T - i * (T - eps) / steps end
  return out
end

-- The SDE and the times to visit: levels an SDE (opts.steps from T to
-- opts.eps), or a decreasing list / tensor of times on the model's own SDE.
-- need_grid = false leaves the grid to the caller (adaptive RK45).
local function sde_levels(model, levels, opts, default_steps, fn, need_grid)
  if schedules.is_sde(levels) then
    if need_grid == false then return levels, nil end
    return levels, time_grid(levels, steps_of(opts, default_steps, fn), opts.eps or levels.eps)
  end
  local sde, ts = model.process, common.as_list(levels)
  if not schedules.is_sde(sde) or ts == nil then
    error(("scorch.samplers.%s: levels must be an SDE (sc.schedules.vp_sde, ve_sde, subvp_sde),"
      .. " or times for a model wrapped with one (bad argument #3)"):format(fn), 3)
  end
  if opts.steps or opts.eps then error(("scorch.samplers.%s: times given twice (levels and opts)"):format(fn), 3) end
  return sde, common.decreasing(ts, 2, "times", fn)
end

--- The reverse SDE (Song et al. 2021, eq. 6) by Euler–Maruyama:
-- x ← x − [f(x, t) − g(t)² s_θ(x, t)] Δt + g(t) √Δt z, from t = T to ε;
-- the last step adds no noise (Song et al.'s "noise removal").
-- @param model wrapped model, asked for model:score(x, t, sde)
-- @param x_init tensor [N, ...] (sc.samplers.prior(sde, shape))
-- @param levels SDE, or decreasing times on the model's SDE
-- @param opts table: steps = 1000; eps = sde.eps (last time); generator; callback
--   (denoised = (x + s² score)/α at the step's start time)
-- @return x, info {nfe =, steps =, levels = times}
-- @usage local x = sc.samplers.euler_maruyama(m, sc.samplers.prior(vp, {500, 2}), vp, {steps = 500})
function M.euler_maruyama(model, x_init, levels, opts)
  common.check_model(model, "euler_maruyama")
  local x = common.check_start(x_init, "euler_maruyama")
  opts = common.options(opts, { "steps", "eps", "generator", "callback" }, "euler_maruyama")
  local sde, ts = sde_levels(model, levels, opts, 1000, "euler_maruyama")
  local steps, cb, gen = #ts - 1, opts.callback, opts.generator
  return sc.no_grad(function()
    for i = 1, steps do
      local t, dt = ts[i], ts[i] - ts[i + 1]
      local g = sde:diffusion(t)
      local score = model:score(x, t, sde)
      local denoised
      if cb then
        local a, s = sde:marginal(t)
        denoised = (x + score * (s * s)) / a
      end
      local mean = x - (sde:drift(x, t) - score * (g * g)) * dt
      if i < steps then x = mean + noise_like(x, gen) * (g * math.sqrt(dt)) else x = mean end
      report(cb, { i = i, x = x, level = ts[i + 1], denoised = denoised })
    end
    return x, { nfe = steps, steps = steps, levels = ts }
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

--- Predictor–corrector sampling (Song et al. 2021, Algorithm 2) with the corrector
-- of Algorithms 4/5 (Langevin, step ε = 2α(r‖z‖/‖s_θ‖)², α = 1 − β_i for VP and
-- 1 otherwise), run as in their code: at each t_i the corrector first, then the
-- predictor to t_{i+1}; the last predictor step adds no noise.
-- @param model wrapped model, asked for model:score(x, t, sde)
-- @param x_init tensor [N, ...]
-- @param levels SDE, or decreasing times on the model's SDE
-- @param opts table: steps = 1000; predictor = "reverse_diffusion" | "euler_maruyama" | "none";
--   corrector = "langevin" | "none"; snr = 0.16; corrector_steps = 1; eps = sde.eps;
--   generator; callback (denoised = nil)
-- @return x, info {nfe =, steps =, levels = times}
-- @usage local x = sc.samplers.predictor_corrector(m, sc.samplers.prior(ve, {500, 2}), ve, {steps = 200})
function M.predictor_corrector(model, x_init, levels, opts)
  common.check_model(model, "predictor_corrector")
  local x = common.check_start(x_init, "predictor_corrector")
  opts = common.options(opts, { "steps", "predictor", "corrector", "snr", "corrector_steps", "eps",
    "generator", "callback" }, "predictor_corrector")
  local sde, ts = sde_levels(model, levels, opts, 1000, "predictor_corrector")
  local function score(y, t) return model:score(y, t, sde) end
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
  local steps, cb, gen = #ts - 1, opts.callback, opts.generator
  -- The VP discretisation (the reverse-diffusion predictor's √(1 − β_i) and
  -- the corrector's α = 1 − β_i, β_i = β(t)Δt) needs β_i < 1: with fewer
  -- steps than about β_max it would take square roots of negative numbers.
  if sde.beta and (predictor == "reverse_diffusion" or (m > 0 and sde.kind == "vp")) then
    for i = 1, steps do
      local b = sde:beta(ts[i]) * (ts[i] - ts[i + 1])
      if b >= 1 then
        error(("scorch.samplers.predictor_corrector: the VP discretisation needs β(t)·Δt < 1 at every"
          .. " step, but it is %.4g at t = %.4g with %d steps; use more steps (about %d or more), or"
          .. " predictor = 'euler_maruyama' with corrector = 'none'"):format(b, ts[i], steps,
          math.floor(b * steps) + 1), 2)
      end
    end
  end
  return sc.no_grad(function()
    local nfe = 0
    for i = 1, steps do
      local t, dt = ts[i], ts[i] - ts[i + 1]
      -- corrector: Langevin steps towards p_t
      local alpha = sde.kind == "vp" and (1 - sde:beta(t) * dt) or 1
      for _ = 1, m do
        local g = score(x, t)
        nfe = nfe + 1
        local z = noise_like(x, gen)
        local ratio = snr * batch_norm_mean(z) / batch_norm_mean(g)
        local e = 2 * alpha * ratio * ratio
        x = x + g * e + z * math.sqrt(2 * e)
      end
      -- predictor: one step of the reverse SDE to t_{i+1}
      if pstep then
        local mean, G = pstep(sde, score, x, t, dt)
        nfe = nfe + 1
        if i < steps then x = mean + noise_like(x, gen) * G else x = mean end
      end
      report(cb, { i = i, x = x, level = ts[i + 1] })
    end
    return x, { nfe = nfe, steps = steps, levels = ts }
  end)
end

-- ---- probability-flow ODE --------------------------------------------------------------

--- The probability-flow ODE (Song et al. 2021, eq. 13): dx/dt = f(x, t) − ½ g(t)² s_θ(x, t),
-- integrated from T to ε by Heun or Euler on a grid, or by Dormand–Prince
-- RK45 with rtol/atol (Song et al. use scipy's RK45, 1e-5).  denoise = true
-- ends with Tweedie's formula at ε, x₀ = (x + s² s_θ)/α (one more evaluation).
-- @param model wrapped model, asked for model:score(x, t, sde)
-- @param x_init tensor [N, ...]
-- @param levels SDE, or decreasing times on the model's SDE (RK45 integrates from the first to the last)
-- @param opts table: method = "rk45" | "heun" | "euler"; steps = 100 (grid methods); rtol = 1e-5;
--   atol = 1e-5; eps = sde.eps; denoise = false; callback (denoised = nil)
-- @return x, info {nfe =, steps =, levels = times (the grid, or the accepted RK45 times)}
-- @usage local x = sc.samplers.probability_flow(m, sc.samplers.prior(vp, {500, 2}), vp)
function M.probability_flow(model, x_init, levels, opts)
  common.check_model(model, "probability_flow")
  local x = common.check_start(x_init, "probability_flow")
  opts = common.options(opts, { "method", "steps", "rtol", "atol", "eps", "denoise", "generator", "callback" },
    "probability_flow")
  local method = opts.method or "rk45"
  local adaptive = method == "rk45" or method == "dopri5"
  if not adaptive and method ~= "heun" and method ~= "euler" then
    error(("scorch.samplers.probability_flow: unknown method '%s' (rk45, heun, euler)")
      :format(tostring(method)), 2)
  end
  local sde, ts = sde_levels(model, levels, opts, 100, "probability_flow", not adaptive)
  local t0, t1
  if ts then t0, t1 = ts[1], ts[#ts] else t0, t1 = sde.T, opts.eps or sde.eps end
  local cb = opts.callback
  local function drift(y, t) return sde:ode_drift(y, t, model:score(y, t, sde)) end
  return sc.no_grad(function()
    local nfe, steps
    local visited = { t0 }
    local function record(i, y, t)
      visited[#visited + 1] = t
      report(cb, { i = i, x = y, level = t })
    end
    if adaptive then
      x, nfe, steps = ode.dopri5(drift, x, t0, t1, { rtol = opts.rtol, atol = opts.atol, callback = record })
    else
      steps = #ts - 1
      x, nfe = ode.fixed(drift, x, ts, method, record)
    end
    if opts.denoise then
      local a, s = sde:marginal(t1)
      x = (x + model:score(x, t1, sde) * (s * s)) / a
      nfe = nfe + 1
    end
    return x, { nfe = nfe, steps = steps, levels = visited }
  end)
end

-- ---- denoiser samplers (the EDM view) -----------------------------------------------------

local function sigma_levels(levels, fn)
  return common.decreasing(common.as_list(levels), 2, "levels σ", fn)
end

--- The naive backward samplers for a denoiser D, from σ to the next level σ' < σ.
-- The deck is not in this repository; issue 13 names its variant with noise
-- √(σ² − σ'²) "Algorithm 3" and the stochastic one this sampler already had
-- "Algorithm 4".  The methods say what they do:
--   "score_step" (Algorithm 3 of issue 13): x ← x + (σ² − σ'²) s(x, σ) + √(σ² − σ'²) z,
--     s = (D − x)/σ²: the reverse of the VE step that adds variance σ² − σ'².
--   "ancestral" (Algorithm 4 of issue 13, the earlier `stochastic = true`): the Euler
--     step down to σ_down, then fresh noise σ_up, σ_down² + σ_up² = σ'²,
--     σ_up = min(σ', η σ' √(1 − σ'²/σ²)); η = 1 is DDPM's posterior step in the VE view.
--   "denoise_renoise": x ← D(x, σ) + σ' z, denoise fully and add the next level's
--     noise (ancestral with η = ∞, written out).
--   "euler" (default, deterministic, the earlier default): x ← x + (σ' − σ)(x − D(x, σ))/σ,
--     an Euler step of dx/dσ = (x − D)/σ (Karras et al. 2022, eq. 3 with σ(t) = t).
-- No noise is added on a step to σ' = 0.
-- @param model wrapped model, asked for model:denoise(x, σ)
-- @param x_init tensor [N, ...] (sc.samplers.prior(levels, shape): σ_1 · N(0, I))
-- @param levels strictly decreasing σ (list / tensor), usually ending at 0
-- @param opts table: method = "euler" | "denoise_renoise" | "score_step" | "ancestral";
--   eta = 1 (ancestral); generator; callback
-- @return x, info {nfe =, steps =, levels =}
-- @usage local x = sc.samplers.naive_backward(m, x0, sc.schedules.karras_sigmas(100), {method = "score_step"})
function M.naive_backward(model, x_init, levels, opts)
  common.check_model(model, "naive_backward")
  local x = common.check_start(x_init, "naive_backward")
  opts = common.options(opts, { "method", "eta", "generator", "callback" }, "naive_backward")
  local sigmas = sigma_levels(levels, "naive_backward")
  local method = opts.method or "euler"
  local methods = { euler = true, denoise_renoise = true, score_step = true, ancestral = true }
  if not methods[method] then
    error(("scorch.samplers.naive_backward: unknown method '%s' (ancestral, denoise_renoise, euler, score_step)")
      :format(tostring(method)), 2)
  end
  local eta = method == "ancestral" and (opts.eta or 1) or 0
  local cb, gen = opts.callback, opts.generator
  return sc.no_grad(function()
    local steps = #sigmas - 1
    for i = 1, steps do
      local s, s_next = sigmas[i], sigmas[i + 1]
      local denoised = model:denoise(x, s)
      if method == "denoise_renoise" then
        -- Algorithm 3
        x = denoised
        if s_next > 0 then x = x + noise_like(x, gen) * s_next end
      elseif method == "score_step" then
        -- Algorithm 4: s(x, σ) = (D − x)/σ²
        local dv = s * s - s_next * s_next
        x = x + (denoised - x) * (dv / (s * s))
        if s_next > 0 then x = x + noise_like(x, gen) * math.sqrt(dv) end
      else
        local d = to_d(x, s, denoised)
        local up = 0
        if eta > 0 and s_next > 0 then
          up = math.min(s_next, eta * s_next * math.sqrt(1 - (s_next * s_next) / (s * s)))
        end
        local down = math.sqrt(s_next * s_next - up * up)
        x = x + d * (down - s)
        if up > 0 then x = x + noise_like(x, gen) * up end
      end
      report(cb, { i = i, x = x, level = s_next, denoised = denoised })
    end
    return x, { nfe = steps, steps = steps, levels = sigmas }
  end)
end

--- EDM's stochastic Heun sampler (Karras et al. 2022, Algorithm 2): at each level
-- raise σ_i to σ̂ = σ_i(1 + γ_i), γ_i = min(S_churn/N, √2 − 1) on [S_min, S_max],
-- adding noise of std S_noise √(σ̂² − σ_i²); an Euler step to σ_{i+1}, then a
-- Heun (trapezoidal) correction unless σ_{i+1} = 0.  NFE = 2N − 1.
-- S_churn = 0 is the deterministic Algorithm 1.
-- @param model wrapped model, asked for model:denoise(x, σ)
-- @param x_init tensor [N, ...]
-- @param levels strictly decreasing σ (list / tensor), e.g. sc.schedules.karras_sigmas(18)
-- @param opts table: S_churn = 0; S_min = 0; S_max = inf; S_noise = 1; generator; callback
-- @return x, info {nfe =, steps =, levels =}
-- @usage local x = sc.samplers.heun(D, sc.samplers.prior(lv, {500, 2}), lv)
function M.heun(model, x_init, levels, opts)
  common.check_model(model, "heun")
  local x = common.check_start(x_init, "heun")
  opts = common.options(opts, { "S_churn", "S_min", "S_max", "S_noise", "generator", "callback" }, "heun")
  local sigmas = sigma_levels(levels, "heun")
  local churn, smin = opts.S_churn or 0, opts.S_min or 0
  local smax, snoise = opts.S_max or math.huge, opts.S_noise or 1
  local cb, gen = opts.callback, opts.generator
  return sc.no_grad(function()
    local steps, nfe = #sigmas - 1, 0
    for i = 1, steps do
      local s, s_next = sigmas[i], sigmas[i + 1]
      local gamma = (s >= smin and s <= smax) and math.min(churn / steps, math.sqrt(2) - 1) or 0
      local s_hat = s * (1 + gamma)
      if gamma > 0 then
        x = x + noise_like(x, gen) * (snoise * math.sqrt(s_hat * s_hat - s * s))
      end
      local denoised = model:denoise(x, s_hat)
      local d = to_d(x, s_hat, denoised)
      nfe = nfe + 1
      local x_next = x + d * (s_next - s_hat)
      if s_next > 0 then
        local d2 = to_d(x_next, s_next, model:denoise(x_next, s_next))
        nfe = nfe + 1
        x_next = x + (d + d2) * (0.5 * (s_next - s_hat))
      end
      x = x_next
      report(cb, { i = i, x = x, level = s_next, denoised = denoised })
    end
    return x, { nfe = nfe, steps = steps, levels = sigmas }
  end)
end

--- DPM-Solver++ 2M (Lu et al. 2022, Algorithm 2, multistep second order), in σ
-- with λ = −log σ, h_i = λ_{i+1} − λ_i, r = h_{i−1}/h_i:
--   D̄ = (1 + 1/(2r)) D_i − (1/(2r)) D_{i−1}  (D̄ = D_i at the first step),
--   x_{i+1} = (σ_{i+1}/σ_i) x_i − (e^{−h_i} − 1) D̄;   x = D at σ = 0.  NFE = N.
-- @param model wrapped model, asked for model:denoise(x, σ)
-- @param x_init tensor [N, ...]
-- @param levels strictly decreasing σ (list / tensor)
-- @param opts table: generator (unused: deterministic); callback
-- @return x, info {nfe =, steps =, levels =}
-- @usage local x = sc.samplers.dpmpp_2m(D, x0, sc.schedules.karras_sigmas(20))
function M.dpmpp_2m(model, x_init, levels, opts)
  common.check_model(model, "dpmpp_2m")
  local x = common.check_start(x_init, "dpmpp_2m")
  opts = common.options(opts, { "generator", "callback" }, "dpmpp_2m")
  local sigmas = sigma_levels(levels, "dpmpp_2m")
  local cb = opts.callback
  return sc.no_grad(function()
    local steps = #sigmas - 1
    local old
    for i = 1, steps do
      local s, s_next = sigmas[i], sigmas[i + 1]
      local d = model:denoise(x, s)
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
      report(cb, { i = i, x = x, level = s_next, denoised = d })
    end
    return x, { nfe = steps, steps = steps, levels = sigmas }
  end)
end

return M
