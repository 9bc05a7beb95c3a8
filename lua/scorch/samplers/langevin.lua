-- Langevin samplers driven by a score function: plain (unadjusted) Langevin
-- dynamics and annealed Langevin dynamics over a sequence of noise levels.
--
-- score may be a function score(x [, sigma]), a callable model or an object
-- with :score (an energy model, a distribution's score_at).  The loop runs
-- with recording off; an energy model computes its own gradient inside.
local sc = require "scorch"
local util = require "scorch.util"

local M = {}

local function check_start(x0, fn)
  if not sc.is_tensor(x0) or x0:dim() < 1 then
    error(("scorch.samplers.%s: x0 must be a tensor of points"):format(fn), 3)
  end
end

local function noise_like(x, gen)
  return sc.randn(x:shape(), { generator = gen, dtype = x:dtype() })
end

-- Progress bar for loops long enough to want one (opts.progress = false
-- turns it off, true forces it).
local function bar(total, opts, desc)
  local p = opts.progress
  if p == false then return nil end
  return util.progress(total, { desc = desc, force = p == true })
end

-- Welling & Teh 2011; Song & Ermon 2019, eq. 4 (Langevin dynamics):
--   x_t = x_{t−1} + (ε/2) ∇ₓ log p(x_{t−1}) + √ε z_t,  z_t ~ N(0, I).
-- langevin(score, x0, {step=ε, n_steps=T, generator=, callback=, sigma=,
--                      progress=}) -> x_T
-- callback(t, x) is called after each step (t = 1..T; x must not be kept
-- mutable — the sampler makes a new tensor each step, so storing it is
-- safe).  sigma, when given, is passed to the score as a [N, 1] tensor.
function M.langevin(score, x0, opts)
  check_start(x0, "langevin")
  opts = opts or {}
  local s_fn = util.as_score_fn(score)
  local eps, n = opts.step or opts.eps, opts.n_steps or 1000
  if type(eps) ~= "number" or eps <= 0 then
    error("scorch.samplers.langevin: step (ε) must be a positive number", 2)
  end
  local gen, cb = opts.generator, opts.callback
  local sigma = opts.sigma ~= nil and util.sigma_column(opts.sigma, x0) or nil
  local sq = math.sqrt(eps)
  local progress = bar(n, opts, "langevin")
  local x = sc.no_grad(function()
    local x = x0:detach()
    for t = 1, n do
      local s = s_fn(x, sigma)
      x = x + s * (eps / 2) + noise_like(x, gen) * sq
      if cb then cb(t, x) end
      if progress then progress:update() end
    end
    return x
  end)
  if progress then progress:close() end
  return x
end

-- Step sizes of Song & Ermon 2019, Algorithm 1: α_i = ε σ_i² / σ_L².
function M.annealed_step_sizes(sigmas, eps)
  local out, last = {}, sigmas[#sigmas]
  for i, s in ipairs(sigmas) do out[i] = eps * (s / last) ^ 2 end
  return out
end

-- Song & Ermon 2019, Algorithm 1 (annealed Langevin dynamics): for each
-- σ_i, α_i = ε σ_i²/σ_L², T steps of x ← x + (α_i/2) s_θ(x, σ_i) + √α_i z.
-- convention = "paper" (default) is that update; "reference" is the
-- authors' code (ermongroup/ncsn, anneal_Langevin_dynamics):
-- x ← x + α_i s_θ(x, σ_i) + √(2α_i) z — the same dynamics with ε doubled.
-- denoise = true adds the final step x ← x + σ_L² s_θ(x, σ_L) (Tweedie's
-- formula, Efron 2011; as in Song & Ermon 2020, NCSNv2).
-- annealed_langevin(score, x0, sigmas, {eps=, T=, convention=, denoise=,
--   generator=, callback=, progress=}) -> x
-- sigmas: descending Lua array or tensor; callback(i, t, x) after each step
-- (level i, step t), and callback(L + 1, 1, x) after the denoising step.
function M.annealed_langevin(score, x0, sigmas, opts)
  check_start(x0, "annealed_langevin")
  opts = opts or {}
  if sc.is_tensor(sigmas) then sigmas = sigmas:values() end
  if type(sigmas) ~= "table" or #sigmas == 0 then
    error("scorch.samplers.annealed_langevin: sigmas must be a non-empty list", 2)
  end
  local s_fn = util.as_score_fn(score)
  local eps, T = opts.eps or 2e-5, opts.T or opts.n_steps_each or 100
  if type(eps) ~= "number" or eps <= 0 then
    error("scorch.samplers.annealed_langevin: eps must be a positive number", 2)
  end
  local conv = opts.convention or "paper"
  local drift, noise_scale
  if conv == "paper" then
    drift, noise_scale = 0.5, 1
  elseif conv == "reference" then
    drift, noise_scale = 1, math.sqrt(2)
  else
    error(("scorch.samplers.annealed_langevin: convention must be \"paper\" or \"reference\" (got %s)")
      :format(tostring(conv)), 2)
  end
  local gen, cb, L = opts.generator, opts.callback, #sigmas
  local alphas = M.annealed_step_sizes(sigmas, eps)
  local progress = bar(L * T, opts, "annealed langevin")
  local x = sc.no_grad(function()
    local x = x0:detach()
    for i = 1, L do
      local sig = util.sigma_column(sigmas[i], x)
      local a = alphas[i]
      local sq = noise_scale * math.sqrt(a)
      for t = 1, T do
        local s = s_fn(x, sig)
        x = x + s * (drift * a) + noise_like(x, gen) * sq
        if cb then cb(i, t, x) end
        if progress then progress:update() end
      end
    end
    if opts.denoise then
      local sL = sigmas[L]
      x = x + s_fn(x, util.sigma_column(sL, x)) * (sL * sL)
      if cb then cb(L + 1, 1, x) end
    end
    return x
  end)
  if progress then progress:close() end
  return x
end

-- A callback that records the trajectories of the first k points every
-- `every` steps: returns callback, paths (paths[j] = list of {x, y, ...}).
-- Works with both samplers (it uses its last argument as the points).
function M.trajectory_recorder(k, every, start)
  every = every or 1
  local paths, count = {}, 0
  local function add(x)
    local n = math.min(k, x:size(1))
    local rows = util.rows(x:narrow(1, 1, n))
    for j = 1, n do
      paths[j] = paths[j] or {}
      local p = paths[j]
      p[#p + 1] = rows[j]
    end
  end
  if start then add(start) end
  local function callback(...)
    local x = select(select("#", ...), ...)
    count = count + 1
    if count % every == 0 then add(x) end
  end
  return callback, paths
end

return M
