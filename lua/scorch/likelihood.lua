--- Exact likelihoods of score-based models through the probability-flow ODE
-- (Song et al. 2021, §4.3 and App. D.2; Chen et al. 2018, instantaneous
-- change of variables):
--   log p_ε(x(ε)) = log p_T(x(T)) + ∫_ε^T ∇·f̃(x(t), t) dt,  f̃ = f − ½ g² s_θ,
-- with x(t) solving dx/dt = f̃ from the data point at t = ε.  The divergence
-- is exact (one backward pass per dimension) or Hutchinson's estimate
-- E[vᵀ ∇f̃ v] with Rademacher or Gaussian v fixed along each trajectory
-- (Grathwohl et al. 2019, FFJORD).
-- @module scorch.likelihood
local sc = require "scorch"
local param = require "scorch.param"
local schedules = require "scorch.schedules.diffusion"
local ode = require "scorch.samplers.ode"
local util = require "scorch.util"

local M = {}

local LN2 = math.log(2)

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
-- means), nfe, steps, prior_logp [N], delta_logp [N], z (the point at T).
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
  }
end

--- bits_per_dim(nll, d): nats per example to bits per dimension.
function M.bits_per_dim(nll, d)
  if sc.is_tensor(nll) then return nll / (d * LN2) end
  return nll / (d * LN2)
end

return M
