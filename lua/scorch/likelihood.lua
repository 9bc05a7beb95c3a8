--- Exact likelihoods of score-based models through the probability-flow ODE
-- (Song et al. 2021, §4.3 and App. D.2; Chen et al. 2018, instantaneous
-- change of variables):
--   log p_ε(x(ε)) = log p_T(x(T)) + ∫_ε^T ∇·f̃(x(t), t) dt,  f̃ = f − ½ g² s_θ,
-- with x(t) solving dx/dt = f̃ from the data point at t = ε.  The divergence
-- is exact (one backward pass per dimension) or Hutchinson's estimate
-- E[vᵀ ∇f̃ v] with Rademacher or Gaussian v fixed along each trajectory
-- (Grathwohl et al. 2019, FFJORD).
--
-- A DDPM's own bound sits beside it: the negative ELBO of Ho et al. 2020,
-- eq. 5 (Sohl-Dickstein et al. 2015), written out term by term —
--   L = KL(q(x_T | x₀) ‖ N(0, I)) + Σ_{t=2}^T KL(q(x_{t−1} | x_t, x₀) ‖ p_θ(x_{t−1} | x_t))
--       − log p_θ(x₀ | x₁),
-- with fixed (β, β̃) or learned (Nichol & Dhariwal 2021) reverse variances,
-- and the prior-mismatch term KL(p_0T(x_T | x₀) ‖ p_T) of any process.
-- @module scorch.likelihood
local sc = require "scorch"
local param = require "scorch.param"
local schedules = require "scorch.schedules.diffusion"
local ode = require "scorch.samplers.ode"
local util = require "scorch.util"

local M = {}

local LN2 = math.log(2)
local LOG_2PI = math.log(2 * math.pi)

local function probe(shape, kind, gen, dtype)
  if kind == "gaussian" then return sc.randn(shape, { generator = gen, dtype = dtype }) end
  if kind == "rademacher" then
    return sc.rand(shape, { generator = gen, dtype = dtype }):gt(0.5) * 2 - 1
  end
  error(("scorch.likelihood: unknown estimator '%s' (exact, hutchinson, rademacher, gaussian)")
    :format(tostring(kind)), 4)
end

-- The score function of score_or_model for this SDE: a wrapped model, a function or callable
-- model s(x, t), optionally read as another prediction kind, or an object
-- with score_at (a distribution: its exact smoothed score).
local function score_fn_of(m, sde, kind)
  -- a wrapped model (sc.param.wrap) answers for any SDE
  if param.is_model(m) then return function(x, t) return m:score(x, t, sde) end end
  if type(m) == "table" and type(m.score_at) == "function" then
    return param.score_fn(param.from_distribution(m), sde)
  end
  if not util.is_callable(m) then
    error("scorch.likelihood.nll: expected a score function, a callable model or a distribution", 3)
  end
  if kind == "score" then return m end
  return function(x, t)
    local a, s = sde:marginal(t)
    return param.convert(m(x, t), kind, "score", x, a, s)
  end
end

--- nll(score_or_model, sde, x, {estimator="exact" | "rademacher" | "gaussian"
--     ("hutchinson" = rademacher), rtol=1e-5, atol=1e-5, eps=1e-5,
--     prediction="score", generator=}) -> nll [N] in nats, info
-- info: bpd [N] (bits per dimension, nll/(d ln 2)), nats and bpd (batch
-- means), nfe, steps, prior_logp [N], delta_logp [N], z (the point at T),
-- prior_kl [N] (the prior-mismatch term KL(p_0T(x_T | x) ‖ p_T) at the data, see prior_kl).
-- x is [N, D...]; the ODE runs in x's dtype (float64 for tight tolerances).
-- Exact divergence costs D backward passes per evaluation: for low dimension.
function M.nll(model, sde, x, opts)
  if not schedules.is_sde(sde) then error("scorch.likelihood.nll: expected an SDE", 2) end
  if not sc.is_tensor(x) or x:dim() < 2 then
    error("scorch.likelihood.nll: x must be a batch of points [N, D...]", 2)
  end
  opts = util.check_options(opts, { "prediction", "estimator", "eps", "generator", "rtol", "atol" },
    "scorch.likelihood.nll")
  local score = score_fn_of(model, sde, opts.prediction or "score")
  local est = opts.estimator or "exact"
  if est == "hutchinson" then est = "rademacher" end
  local n = x:size(1)
  local shape = x:shape()
  local d = x:numel() // n
  local eps = opts.eps or 1e-5
  local v = est ~= "exact" and probe({ n, d }, est, opts.generator, x:dtype()) or nil

  -- f̃ and its divergence at flat points xf [N, D]
  local function drift_and_div(xf, t)
    return util.enable_grad(function()
      local leaf = xf:detach():requires_grad(true)
      local xs = leaf:reshape(shape)
      local f = sde:ode_drift(xs, t, score(xs, t)):reshape(n, d)
      local div
      if v then
        local g = sc.grad({ (f * v):sum() }, { leaf })[1]
        div = (g * v):sum(2, true)
      else
        for i = 1, d do
          local g = sc.grad({ f:narrow(2, i, 1):sum() }, { leaf }, { retain_graph = i < d })[1]
          local gi = g:narrow(2, i, 1)
          div = div and div + gi or gi
        end
      end
      return f:detach(), div:detach()
    end)
  end

  -- augmented state [N, D + 1]: the point and the integrated divergence
  local function F(y, t)
    local f, div = drift_and_div(y:narrow(2, 1, d), t)
    return sc.cat({ f, div }, 2)
  end
  local y0 = sc.cat({ x:detach():reshape(n, d), sc.zeros({ n, 1 }, { dtype = x:dtype() }) }, 2)
  local y, nfe, steps = ode.dopri5(F, y0, eps, sde.T, { rtol = opts.rtol, atol = opts.atol })
  local z = y:narrow(2, 1, d):contiguous()
  local delta = y:narrow(2, d + 1, 1):reshape(n)
  local prior = sde:prior_log_prob(z)
  local nll = -(prior + delta)
  local bpd = nll / (d * LN2)
  return nll, {
    bpd = bpd, nats = nll:mean():item(), bpd_mean = bpd:mean():item(),
    nats_per_dim = nll:mean():item() / d, nfe = nfe, steps = steps,
    prior_logp = prior, delta_logp = delta, z = z:reshape(shape),
    prior_kl = M.prior_kl(sde, x:detach()),
  }
end

-- ---- the DDPM bound ---------------------------------------------------------------------------

local function is_num(v) return type(v) == "number" end
local function exp(v) if is_num(v) then return math.exp(v) end return v:exp() end
local function square(v) if is_num(v) then return v * v end return v:square() end

-- Per-example sum over all but the first dimension.
local function per_example(t)
  local n = t:size(1)
  return t:reshape(n, -1):sum(2, false)
end

--- KL(N(μ₁, e^{lv₁}) ‖ N(μ₂, e^{lv₂})) elementwise, in nats:
-- ½(lv₂ − lv₁ − 1 + e^{lv₁ − lv₂} + (μ₁ − μ₂)² e^{−lv₂}).
-- Arguments are numbers or tensors that broadcast together.
-- @param mean1 number or tensor: μ₁
-- @param logvar1 number or tensor: log σ₁²
-- @param mean2 number or tensor: μ₂
-- @param logvar2 number or tensor: log σ₂²
-- @return the KL per element (a number when every argument is one)
-- @usage local kl = sc.likelihood.normal_kl(mu, math.log(0.1), mu_hat, logvar)
function M.normal_kl(mean1, logvar1, mean2, logvar2)
  for i, v in ipairs { mean1, logvar1, mean2, logvar2 } do
    if not (is_num(v) or sc.is_tensor(v)) then
      error(("scorch.likelihood.normal_kl: argument #%d must be a number or a tensor (got %s)"):format(i, type(v)), 2)
    end
  end
  local ok, out = pcall(function()
    return ((logvar2 - logvar1 - 1) + exp(logvar1 - logvar2) + square(mean1 - mean2) * exp(-logvar2)) * 0.5
  end)
  if not ok then
    error(("scorch.likelihood.normal_kl: the arguments do not broadcast (shapes %s, %s, %s, %s)")
      :format(util.shape_str(mean1), util.shape_str(logvar1), util.shape_str(mean2), util.shape_str(logvar2)), 2)
  end
  return out
end

--- log p(x | μ, σ²) of Ho et al. 2020's discretised Gaussian decoder (§3.3, eq. 13) for 8-bit
-- data scaled to [−1, 1]: the mass N(μ, σ²) gives the pixel's bin [x − 1/255, x + 1/255],
-- with the bins at −1 and 1 reaching out to ∓∞.  Each difference of normal CDFs is taken on
-- the side of its tail, where it does not cancel; the mass is floored at 10⁻¹² (as in
-- Nichol & Dhariwal's code).
-- @param x tensor [N, ...] of values k/127.5 − 1, k = 0..255
-- @param mean tensor like x: μ
-- @param logvar number or tensor broadcasting with x: log σ²
-- @return tensor like x: log-probabilities per element (nats)
-- @usage local lp = sc.likelihood.discretized_gaussian_log_likelihood(x0, mu, logvar)
function M.discretized_gaussian_log_likelihood(x, mean, logvar)
  local fn = "scorch.likelihood.discretized_gaussian_log_likelihood"
  if not sc.is_tensor(x) or not sc.is_tensor(mean) then
    error(fn .. ": x and mean must be tensors", 2)
  end
  if util.shape_str(x) ~= util.shape_str(mean) then
    error(("%s: x %s and mean %s must have one shape"):format(fn, util.shape_str(x), util.shape_str(mean)), 2)
  end
  if not (is_num(logvar) or sc.is_tensor(logvar)) then error(fn .. ": logvar must be a number or a tensor", 2) end
  local inv_std = exp(logvar * -0.5)
  local centred = x - mean
  local r2 = 1 / math.sqrt(2)
  local up = (centred + 1 / 255) * inv_std * r2     -- u₊/√2
  local lo = (centred - 1 / 255) * inv_std * r2     -- u₋/√2
  -- Φ(u) = ½ erfc(−u/√2); 1 − Φ(u) = ½ erfc(u/√2)
  local upper_tail = (sc.erfc(lo) - sc.erfc(up)) * 0.5   -- accurate when u₋ > 0
  local lower_tail = (sc.erfc(-up) - sc.erfc(-lo)) * 0.5 -- accurate when u₊ < 0
  local mid = sc.where(lo:gt(0), upper_tail, lower_tail)
  local first = sc.erfc(-up) * 0.5   -- bin k = 0: Φ(u₊)
  local last = sc.erfc(lo) * 0.5     -- bin k = 255: 1 − Φ(u₋)
  local p = sc.where(x:lt(-0.999), first, sc.where(x:gt(0.999), last, mid))
  return sc.clamp(p, 1e-12, math.huge):log()
end

-- Per-timestep coefficients as [T] tensors of one dtype, built once per schedule.
local coef_cache = setmetatable({}, { __mode = "k" })

local function coef_lists(sched)
  local T = sched.T
  local l = { sqrt_alpha = {}, beta = {}, s = {}, c0 = {}, ct = {}, log_post = {} }
  for t = 1, T do
    local c0, ct = sched:posterior(t)
    l.sqrt_alpha[t] = math.sqrt(sched.alphas[t])
    l.beta[t] = sched.betas[t]
    l.s[t] = math.sqrt(1 - sched.alpha_bars[t])
    l.c0[t], l.ct[t] = c0, ct
    -- β̃_1 = 0: L_0 is the decoder, so this entry is never a KL's; the clipped one keeps it finite
    l.log_post[t] = sched:reverse_log_variance(t, "beta_tilde")
  end
  return l
end

-- The coefficients at t: numbers for a number t, [N, 1] columns for a column of timesteps.
local function coefs(sched, t, dtype)
  local c = coef_cache[sched]
  if not c then
    c = { lists = coef_lists(sched) }
    coef_cache[sched] = c
  end
  if is_num(t) then
    local out = {}
    for k, list in pairs(c.lists) do out[k] = list[t] end
    return out
  end
  local tens = c[dtype]
  if not tens then
    tens = {}
    for k, list in pairs(c.lists) do tens[k] = sc.tensor(list, { dtype = dtype }) end
    c[dtype] = tens
  end
  local shape, flat = t:shape(), t:reshape(-1)
  local out = {}
  for k, v in pairs(tens) do out[k] = v:index_select(1, flat):view(shape) end
  return out
end

local function check_ddpm(sched, fn)
  if type(sched) ~= "table" or sched.kind ~= "ddpm" then
    error(("scorch.likelihood.%s: the schedule must be a DDPM schedule (sc.schedules.ddpm)"):format(fn), 3)
  end
end

local decoders = { gaussian = true, discretized = true }

--- One term of the DDPM bound, per example (nats): L_{t−1} = KL(q(x_{t−1} | x_t, x₀) ‖
-- p_θ(x_{t−1} | x_t)) for t ≥ 2, and the decoder L₀ = −log p_θ(x₀ | x₁) at t = 1 (Ho et al.
-- 2020, eqs. 5, 11–13), with μ_θ = (x_t − β_t/√(1 − ᾱ_t) ε̂)/√α_t and σ_t² = e^{logvar}.
-- The decoder is "gaussian" (N(x₀; μ_θ, σ_1²), a density, for continuous data) or
-- "discretized" (8-bit data in [−1, 1]).  t is one timestep or an [N, 1] column of them
-- (the losses' draw), so a batch may mix decoder and KL terms.
-- @param schedule DDPM schedule
-- @param x0 tensor [N, ...]: the data
-- @param xt tensor like x0: the noised point √ᾱ_t x₀ + √(1 − ᾱ_t) ε
-- @param t integer in 1..T, or an [N, 1] tensor of them
-- @param eps tensor like x0: the model's ε̂(x_t, t)
-- @param logvar number or tensor broadcasting with x0: log σ_t² (sc.schedules.ddpm:reverse_log_variance)
-- @param decoder "gaussian" (default) | "discretized"
-- @return tensor [N]: the term in nats per example (summed over dimensions)
-- @usage local l = sc.likelihood.ddpm_term(sched, x0, xt, 10, eps, sched:reverse_log_variance(10, "beta"))
function M.ddpm_term(schedule, x0, xt, t, eps, logvar, decoder)
  local sched = schedule
  check_ddpm(sched, "ddpm_term")
  for name, v in pairs { x0 = x0, xt = xt, eps = eps } do
    if not sc.is_tensor(v) then error(("scorch.likelihood.ddpm_term: %s must be a tensor"):format(name), 2) end
  end
  if x0:dim() < 2 or util.shape_str(x0) ~= util.shape_str(xt) or util.shape_str(x0) ~= util.shape_str(eps) then
    error(("scorch.likelihood.ddpm_term: x0 %s, xt %s and eps %s must be batches [N, ...] of one shape")
      :format(util.shape_str(x0), util.shape_str(xt), util.shape_str(eps)), 2)
  end
  decoder = decoder or "gaussian"
  if not decoders[decoder] then
    error(("scorch.likelihood.ddpm_term: decoder must be \"gaussian\" or \"discretized\" (got %s)")
      :format(tostring(decoder)), 2)
  end
  if is_num(t) then
    if math.type(t) ~= "integer" and t == math.floor(t) then t = math.tointeger(t) end
    if math.type(t) ~= "integer" or t < 1 or t > sched.T then
      error(("scorch.likelihood.ddpm_term: t must be an integer in 1..%d (got %s)"):format(sched.T, tostring(t)), 2)
    end
  elseif not (sc.is_tensor(t) and t:numel() == x0:size(1)) then
    error(("scorch.likelihood.ddpm_term: t must be a timestep or a column of %d timesteps"):format(x0:size(1)), 2)
  end
  local c = coefs(sched, t, x0:dtype())
  local mean = (xt - eps * (c.beta / c.s)) / c.sqrt_alpha
  local function decoder_nll()
    if decoder == "discretized" then
      return -per_example(M.discretized_gaussian_log_likelihood(x0, mean, logvar))
    end
    return per_example(((x0 - mean):square() * exp(-logvar) + logvar + LOG_2PI) * 0.5)
  end
  local function kl()
    return per_example(M.normal_kl(x0 * c.c0 + xt * c.ct, c.log_post, mean, logvar))
  end
  if is_num(t) then return t == 1 and decoder_nll() or kl() end
  return sc.where(t:reshape(-1):eq(1), decoder_nll(), kl())
end

--- The prior-mismatch term KL(p_0T(x_T | x₀) ‖ p_T) per example (nats): how far the
-- forward process at its last time is from the prior the sampler starts from (Ho et al.
-- 2020's L_T; Song et al. 2021's ε-free gap).  p_0T = N(α_T x₀, s_T² I) and p_T = N(0, p² I)
-- with p the process's prior_std (1 for DDPM, VP, sub-VP; σ_max for VE), so per dimension
-- ½(s_T²/p² + α_T² x₀²/p² − 1 − log(s_T²/p²)).  A VE SDE with σ_max well below the data's
-- spread shows it large (for VE it is ‖x₀‖²/(2σ_max²)).
-- @param process DDPM schedule or SDE (sc.schedules.vp_sde, ve_sde, subvp_sde)
-- @param x0 tensor [N, ...]
-- @return tensor [N] in nats (bits per dimension: sc.likelihood.bits_per_dim(kl, d))
-- @usage local kl = sc.likelihood.prior_kl(sc.schedules.ve_sde{sigma_max = 1}, x)
function M.prior_kl(process, x0)
  local is_ddpm = type(process) == "table" and process.kind == "ddpm"
  if not (is_ddpm or schedules.is_sde(process)) then
    error("scorch.likelihood.prior_kl: process must be a DDPM schedule or an SDE", 2)
  end
  if not sc.is_tensor(x0) or x0:dim() < 2 then
    error(("scorch.likelihood.prior_kl: x0 must be a batch [N, ...] (got %s)"):format(util.shape_str(x0)), 2)
  end
  local a, s = process:marginal(process.T)
  local p2 = (process.prior_std or 1) ^ 2
  -- r − 1 − log r with r = s_T²/p² = 1 + m, m near 0 for DDPM and VP: its series where it cancels
  local m = (s * s - p2) / p2
  local gap = math.abs(m) < 1e-3 and m * m * (1 / 2 - m / 3 + m * m / 4 - m * m * m / 5) or m - math.log(1 + m)
  local d = x0:numel() // x0:size(1)
  return per_example(x0:square()) * (0.5 * a * a / p2) + 0.5 * d * gap
end

-- The model as ε̂(x, t) [, v]: a wrapped model (sc.param.wrap), or a network called as
-- the losses call it, net(x, level(t, x)), its output read as opts.prediction.
local function predictor(model, opts, fn)
  local sched, net, cond, kind, eps_of
  if param.is_model(model) then
    if opts.prediction then error(fn .. ": prediction is for a bare network; a wrapped model knows its kind", 3) end
    sched = opts.schedule or model.process
    net, cond, kind = model.net, model.cond, model.kind
    eps_of = function(x, t) return model:eps(x, t, sched) end
  elseif util.is_callable(model) then
    sched, net, kind = opts.schedule, model, opts.prediction or "eps"
    if not param.predictions[kind] then
      error(("%s: prediction must be eps, x0, v or score (got %s)"):format(fn, tostring(kind)), 3)
    end
  else
    error(("%s: expected a wrapped model (sc.param.wrap) or a network (got %s)"):format(fn, type(model)), 3)
  end
  if type(sched) ~= "table" or sched.kind ~= "ddpm" then
    error(fn .. ": needs a DDPM schedule (opts.schedule, or the process of a wrapped model)", 3)
  end
  local learns = type(net) == "table" and net.learned_variance == true and type(net.forward_variance) == "function"
  local variance = opts.variance or (learns and "learned" or "beta_tilde")
  if not schedules.reverse_variances[variance] then
    error(("%s: variance must be \"beta\", \"beta_tilde\" or \"learned\" (got %s)"):format(fn, tostring(variance)), 3)
  end
  if variance == "learned" then
    if not learns then
      error(fn .. ": variance \"learned\" needs a network with learned variances (e.g. DiffusionMLP{learn_variance = true})", 3)
    end
    if param.is_model(model) and (model.modify or model.process ~= sched) then
      error(fn .. ": a learned variance is read on the model's own schedule, unguided", 3)
    end
    return sched, variance, function(x, t)
      local a, s = sched:marginal(t)
      local out, v = net:forward_variance(x, param.level(t, x), cond)
      return param.convert(out, kind, "eps", x, a, s), v
    end
  end
  return sched, variance, eps_of or function(x, t)
    local a, s = sched:marginal(t)
    return param.convert(net(x, param.level(t, x)), kind, "eps", x, a, s)
  end
end

local function check_data(x0, decoder, fn)
  if not sc.is_tensor(x0) or x0:dim() < 2 then
    error(("%s: x0 must be a batch [N, ...] (got %s)"):format(fn, util.shape_str(x0)), 3)
  end
  local big = x0:abs():max():item()
  if big ~= big or big == math.huge then error(fn .. ": x0 holds NaN or infinite values", 3) end
  if decoder == "discretized" then
    -- 8-bit data scaled to [−1, 1]: (x + 1)·127.5 an integer 0..255, i.e. sin(π(x + 1)·127.5) = 0
    local off = ((x0 + 1) * (127.5 * math.pi)):sin():abs():max():item()
    if big > 1 + 1e-6 or off > 1e-2 then
      error(("%s: the discretized decoder needs 8-bit data scaled to [-1, 1] (k/127.5 - 1, k = 0..255);"
        .. " x0 %s reaches %g"):format(fn, util.shape_str(x0), big), 3)
    end
  end
end

--- The DDPM negative ELBO of x₀, term by term (Ho et al. 2020, eq. 5; Sohl-Dickstein et al. 2015):
--   L = L_T + Σ_{t=2}^T L_{t−1} + L₀,  L_T = KL(q(x_T | x₀) ‖ N(0, I)),
--   L_{t−1} = KL(q(x_{t−1} | x_t, x₀) ‖ p_θ(x_{t−1} | x_t)),  L₀ = −log p_θ(x₀ | x₁),
-- an upper bound on −log p_θ(x₀) in nats (and bits per dimension).  Each L_{t−1} is a
-- Gaussian KL in closed form at one draw x_t ~ q(x_t | x₀) per example; estimator "exact"
-- sums every t = 1..T (T network evaluations), "mc" estimates the sum over t as
-- T·mean_k L_{t_k−1} with t_k uniform on 1..T, t_samples draws per example.  The reverse
-- variance is β_t, β̃_t or learned (Nichol & Dhariwal 2021, eq. 15; see
-- sc.schedules.ddpm:reverse_log_variance for t = 1).  The decoder is a Gaussian density
-- for continuous data or Ho et al.'s discretised Gaussian for 8-bit data in [−1, 1].
-- Runs with recording off.
-- @param model wrapped model (sc.param.wrap with a DDPM schedule) or a network net(x, level)
-- @param x0 tensor [N, ...]: the data (in the model's scale; 8-bit data in [−1, 1])
-- @param opts table: schedule (default the wrapped model's); prediction = "eps" (bare network);
--   variance = "learned" for a network with learned variances, else "beta_tilde" | "beta";
--   decoder = "gaussian" | "discretized"; estimator = "exact" | "mc"; t_samples = 1 (mc);
--   generator; progress = true (a bar on a terminal)
-- @return nll [N] (nats), info {bpd [N], nats, bpd_mean, prior [N], prior_nats, prior_bpd,
--   steps [N] (Σ_{t=1}^T L_{t−1}), decoder [N] and diffusion [N] (Σ_{t≥2}; exact only),
--   terms and terms_bpd ([T] float64 batch means, index t holds L_{t−1}; exact only),
--   and the *_nats / *_bpd batch means of each, d, T, nfe, variance, decoder_kind, estimator}
-- @usage local nll, info = sc.likelihood.ddpm_bound(sc.param.wrap(net, {kind = "eps", process = sched}), x)
function M.ddpm_bound(model, x0, opts)
  local fn = "scorch.likelihood.ddpm_bound"
  opts = util.check_options(opts, { "schedule", "prediction", "variance", "decoder", "estimator", "t_samples",
    "generator", "progress" }, fn)
  local decoder = opts.decoder or "gaussian"
  if not decoders[decoder] then
    error(("%s: decoder must be \"gaussian\" or \"discretized\" (got %s)"):format(fn, tostring(decoder)), 2)
  end
  check_data(x0, decoder, fn)
  local sched, variance, predict = predictor(model, opts, fn)
  local estimator = opts.estimator or "exact"
  if estimator ~= "exact" and estimator ~= "mc" then
    error(("%s: estimator must be \"exact\" or \"mc\" (got %s)"):format(fn, tostring(estimator)), 2)
  end
  local K = opts.t_samples or 1
  if math.type(K) ~= "integer" or K < 1 then error(fn .. ": t_samples must be a positive integer", 2) end
  if opts.t_samples and estimator ~= "mc" then error(fn .. ": t_samples is for estimator = \"mc\"", 2) end
  local n, T, dt, gen = x0:size(1), sched.T, x0:dtype(), opts.generator
  local d = x0:numel() // n
  local to_bpd = 1 / (d * LN2)
  local column = { n }
  for i = 2, x0:dim() do column[i] = 1 end
  return sc.no_grad(function()
    x0 = x0:detach()
    local prior = M.prior_kl(sched, x0)
    local info = { d = d, T = T, variance = variance, decoder_kind = decoder, estimator = estimator }
    local evals = estimator == "exact" and T or K
    local bar_opts = { desc = "DDPM bound" }
    if opts.progress == false then bar_opts.enabled = false end   -- otherwise: a bar on a terminal
    local bar = util.progress.new(evals, bar_opts)
    local function term_at(t)
      local eps = sc.randn(x0:shape(), { generator = gen, dtype = dt })
      local a, s = sched:marginal(t)
      local xt = x0 * a + eps * s
      local eps_hat, v = predict(xt, t)
      local out = M.ddpm_term(sched, x0, xt, t, eps_hat, sched:reverse_log_variance(t, variance, v), decoder)
      bar:update(1)
      return out
    end
    local steps
    if estimator == "exact" then
      local terms, diffusion = {}, nil
      for t = 1, T do
        local l = term_at(t)
        terms[t] = l:double():mean():item()
        if t == 1 then info.decoder = l else diffusion = diffusion and diffusion + l or l end
      end
      info.diffusion = diffusion or prior * 0
      steps = info.decoder + info.diffusion
      info.terms = sc.tensor(terms, { dtype = "float64" })
      info.terms_bpd = info.terms * to_bpd
      info.decoder_nats, info.diffusion_nats = info.decoder:mean():item(), info.diffusion:mean():item()
      info.decoder_bpd, info.diffusion_bpd = info.decoder_nats * to_bpd, info.diffusion_nats * to_bpd
    else
      for _ = 1, K do
        local t = sc.randint(1, T + 1, column, { generator = gen, dtype = dt })
        local l = term_at(t) * (T / K)
        steps = steps and steps + l or l
      end
    end
    bar:close()
    local nll = prior + steps
    info.prior, info.steps, info.nfe = prior, steps, evals
    info.prior_nats, info.steps_nats = prior:mean():item(), steps:mean():item()
    info.prior_bpd, info.steps_bpd = info.prior_nats * to_bpd, info.steps_nats * to_bpd
    info.bpd = nll * to_bpd
    info.nats = nll:mean():item()
    info.bpd_mean = info.nats * to_bpd
    return nll, info
  end)
end

--- bits_per_dim(nll, d): nats per example to bits per dimension.
function M.bits_per_dim(nll, d)
  if sc.is_tensor(nll) then return nll / (d * LN2) end
  return nll / (d * LN2)
end

return M
