--- ODE integrators on tensors for the probability-flow ODE and likelihoods:
-- fixed-grid Euler and Heun, and the adaptive Dormand–Prince RK45 pair.
-- f(y, t) -> dy/dt with y a tensor and t a number; integration may run
-- backwards (t1 < t0).  Each returns the final state and the number of
-- evaluations of f.  Not a sampler itself: sc.samplers.ode holds these.
-- @module scorch.samplers.ode
local sc = require "scorch"

local M = {}

-- Euler / Heun on the grid ts (a Lua array of times, in integration order).
-- Heun's method (explicit trapezoidal rule; Karras et al. 2022, Alg. 1 uses
-- it for the same ODE) costs two evaluations per step.
-- fixed(f, y, ts [, "heun"|"euler" [, callback(i, y, t)]]) -> y, nfe
function M.fixed(f, y, ts, method, callback)
  method = method or "heun"
  if method ~= "heun" and method ~= "euler" then
    error(("scorch.samplers.ode.fixed: unknown method '%s' (euler, heun)"):format(tostring(method)), 2)
  end
  local nfe = 0
  for i = 1, #ts - 1 do
    local t, h = ts[i], ts[i + 1] - ts[i]
    local d = f(y, t)
    nfe = nfe + 1
    local y_next = y + d * h
    if method == "heun" then
      local d2 = f(y_next, ts[i + 1])
      nfe = nfe + 1
      y_next = y + (d + d2) * (0.5 * h)
    end
    y = y_next
    if callback then callback(i, y, ts[i + 1]) end
  end
  return y, nfe
end

-- Dormand & Prince 1980, the RK5(4)7M tableau (as scipy's RK45 and
-- torchdiffeq's dopri5): 5th-order solution, embedded 4th-order error.
local C = { 0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1 }
local A = {
  {},
  { 1 / 5 },
  { 3 / 40, 9 / 40 },
  { 44 / 45, -56 / 15, 32 / 9 },
  { 19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729 },
  { 9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656 },
}
local B = { 35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84 }
-- b − b̂ (5th minus 4th order), the last entry weighting k7 = f(y_new)
local E = { 71 / 57600, 0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40 }

local function combo(y, ks, coeffs, h)
  local acc = y
  for j, c in ipairs(coeffs) do
    if c ~= 0 then acc = acc + ks[j] * (c * h) end
  end
  return acc
end

-- RMS norm of v / scale (Hairer, Nørsett & Wanner, II.4).
local function rms(v, scale)
  return math.sqrt((v / scale):square():mean():item())
end

-- dopri5(f, y0, t0, t1 [, {rtol=1e-5, atol=1e-5, h0=, max_steps=10000,
--        callback(step, y, t)}]) -> y(t1), nfe, accepted steps
-- Step-size control as scipy's solve_ivp: err = RMS(e/(atol + rtol·max(|y|, |y'|))),
-- accept when err ≤ 1, h ← h·clip(0.9·err^(−1/5), 0.2, 10); the first step
-- by Hairer et al.'s starting-step heuristic.  One step size for the whole
-- batch, as Song et al. integrate the flattened batch with scipy.
function M.dopri5(f, y, t0, t1, opts)
  opts = require("scorch.util").check_options(opts, { "rtol", "atol", "h", "max_steps", "callback" },
    "scorch.samplers.ode.dopri5")
  local rtol, atol = opts.rtol or 1e-5, opts.atol or 1e-5
  local max_steps = opts.max_steps or 10000
  local dir = t1 >= t0 and 1 or -1
  local span = math.abs(t1 - t0)
  if span == 0 then return y, 0, 0 end
  local nfe = 0
  local function F(yy, tt)
    nfe = nfe + 1
    return f(yy, tt)
  end
  local k1 = F(y, t0)
  local h = opts.h0
  if not h then
    local scale = y:abs() * rtol + atol
    local d0, d1 = rms(y, scale), rms(k1, scale)
    local h0 = (d0 < 1e-5 or d1 < 1e-5) and 1e-6 or 0.01 * d0 / d1
    h0 = math.min(h0, span)
    local k2 = F(y + k1 * (dir * h0), t0 + dir * h0)
    local d2 = rms(k2 - k1, scale) / h0
    local h1
    if math.max(d1, d2) <= 1e-15 then h1 = math.max(1e-6, h0 * 1e-3)
    else h1 = (0.01 / math.max(d1, d2)) ^ (1 / 5) end
    h = math.min(100 * h0, h1, span)
  end
  local t, attempts, steps = t0, 0, 0
  while dir * (t1 - t) > 1e-12 * span do
    attempts = attempts + 1
    if attempts > max_steps then
      error(("scorch.samplers.ode.dopri5: more than %d steps (stiff problem or tolerances too tight?)")
        :format(max_steps), 2)
    end
    h = math.min(h, math.abs(t1 - t))
    local hs = dir * h
    local ks = { k1 }
    for i = 2, 6 do ks[i] = F(combo(y, ks, A[i], hs), t + C[i] * hs) end
    local y_new = combo(y, ks, B, hs)
    local t_new = (math.abs(t1 - (t + hs)) <= 1e-12 * span) and t1 or t + hs
    ks[7] = F(y_new, t_new)
    local err_vec = ks[1] * E[1]
    for i = 2, 7 do
      if E[i] ~= 0 then err_vec = err_vec + ks[i] * E[i] end
    end
    local scale = sc.maximum(y:abs(), y_new:abs()) * rtol + atol
    local err = rms(err_vec * hs, scale)
    if err <= 1 then
      t, y, k1 = t_new, y_new, ks[7]
      steps = steps + 1
      if opts.callback then opts.callback(steps, y, t) end
      local factor = err == 0 and 10 or math.min(10, 0.9 * err ^ (-1 / 5))
      h = h * factor
    else
      h = h * math.max(0.2, 0.9 * err ^ (-1 / 5))
    end
  end
  return y, nfe, steps
end

return M
