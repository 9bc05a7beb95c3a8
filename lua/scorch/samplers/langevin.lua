--- Langevin samplers driven by a score: plain (unadjusted, overdamped)
-- Langevin dynamics, underdamped (kinetic) Langevin dynamics with a
-- velocity, and annealed Langevin dynamics over a sequence of noise levels.
--
-- sampler(model, x_init, levels, opts) -> x, info, with model a wrapped
-- model (sc.param.wrap) asked for model:score_sigma(x, σ), the score of the
-- data smoothed at level σ.  The level reaches the model as the column of
-- sc.param.level, built once per level.  The loop runs with recording off;
-- an energy model computes its own gradient inside.
-- @module scorch.samplers.langevin
local sc = require "scorch"
local util = require "scorch.util"
local param = require "scorch.param"
local common = require "scorch.samplers.common"

local M = {}

-- The Langevin samplers' option names before they were made one set (issue
-- 21): still accepted, with one warning per old name and process.
local OLD_NAMES = {
  langevin = { step = "step_size", n_steps = "steps" },
  annealed_langevin = { eps = "step_size", T = "steps_per_level" },
}
local warned = {}

-- A copy of opts with deprecated names turned into the current ones.
local function renamed(opts, fn)
  if type(opts) ~= "table" or sc.is_tensor(opts) then return opts end
  local map, out = OLD_NAMES[fn], {}
  for k, v in pairs(opts) do
    local new = map[k]
    if new then
      if opts[new] ~= nil then
        error(("scorch.samplers.%s: give %s or its old name %s, not both"):format(fn, new, k), 3)
      end
      if not warned[fn .. "." .. k] then
        warned[fn .. "." .. k] = true
        io.stderr:write(("scorch.samplers.%s: option %s is deprecated, use %s\n"):format(fn, k, new))
      end
      k = new
    end
    out[k] = v
  end
  return out
end
M._old_option_warned = warned -- for the spec, which starts from a clean slate

-- Progress bar for loops long enough to want one (opts.progress = false
-- turns it off, true forces it).
local function bar(total, opts, desc)
  local p = opts.progress
  if p == false then return nil end
  return util.progress(total, { desc = desc, force = p == true })
end

-- levels of the single-level samplers: nil (an unconditional score) or one σ.
local function one_level(levels, fn)
  local sigma = levels
  if sigma ~= nil and type(sigma) ~= "number" then
    local list = common.as_list(sigma)
    if not list or #list ~= 1 then
      error(("scorch.samplers.%s: levels must be nil or one level σ (bad argument #3)"):format(fn), 3)
    end
    sigma = list[1]
  end
  return sigma
end

--- Langevin dynamics (Welling & Teh 2011; Song & Ermon 2019, eq. 4):
-- x_t = x_{t−1} + (ε/2) ∇ₓ log p(x_{t−1}) + √ε z_t,  z_t ~ N(0, I).
-- @param model wrapped model (sc.param.wrap), asked for model:score_sigma(x, σ)
-- @param x_init tensor [N, ...]: the start
-- @param levels nil (an unconditional score), or one level σ (number, or a tensor or list of one
--   value) at which the model's score is taken
-- @param opts table: step_size = ε (required, > 0); steps = 1000; generator; callback; progress
--   (false hides the bar).  callback{i =, x =, level =, denoised =} after each step (denoised =
--   x + σ² s, Tweedie's estimate, when a level is given)
-- @return x [N, ...], info {nfe =, steps =, levels = {σ} or {}}
--   The old names step and n_steps still work, with a warning.
-- @usage local x = sc.samplers.langevin(sc.param.wrap(dist), sc.randn(500, 2), nil, {step_size = 0.01})
function M.langevin(model, x_init, levels, opts)
  common.check_model(model, "langevin")
  local x0 = common.check_start(x_init, "langevin")
  opts = common.options(renamed(opts, "langevin"), { "step_size", "steps", "generator", "callback", "progress" },
    "langevin")
  local sigma = one_level(levels, "langevin")
  local eps, n = opts.step_size, opts.steps or 1000
  if type(eps) ~= "number" or eps <= 0 then
    error("scorch.samplers.langevin: step_size (ε) must be a positive number", 2)
  end
  local gen, cb = opts.generator, opts.callback
  local sig = sigma ~= nil and param.level(sigma, x0) or nil
  local sq = math.sqrt(eps)
  local progress = bar(n, opts, "langevin")
  local x = sc.no_grad(function()
    local x = x0
    for t = 1, n do
      local s = model:score_sigma(x, sig)
      local denoised = (cb and sigma) and x + s * (sigma * sigma) or nil
      x = x + s * (eps / 2) + common.noise_like(x, gen) * sq
      if cb then cb { i = t, x = x, level = sigma, denoised = denoised } end
      if progress then progress:update() end
    end
    return x
  end)
  if progress then progress:close() end
  return x, { nfe = n, steps = n, levels = sigma and { sigma } or {} }
end

local SCHEMES = { baoab = true, obabo = true }

--- Underdamped (kinetic) Langevin dynamics, unit mass and unit temperature:
--   dx = v dt,   dv = ∇ₓ log p(x) dt − γ v dt + √(2γ) dW,
-- whose stationary law in (x, v) is p(x) ⊗ N(0, I): the positions follow p,
-- the velocities are standard normal.  A step of size h is a splitting of
-- the flow into B (v ← v + τ ∇log p(x)), A (x ← x + τ v) and the exact
-- Ornstein–Uhlenbeck solve O (v ← c v + √(1 − c²) ξ, c = e^{−γτ}):
--   "baoab" (Leimkuhler & Matthews 2013, Appl. Math. Res. Express): B(h/2) A(h/2) O(h) A(h/2) B(h/2).
--     For a Gaussian target N(m, s²) it is stable for h < 2s, its positions' stationary law is
--     exact at every such h, and the velocities at the end of a step have variance 1 − h²/(4s²).
--   "obabo" (Bussi & Parrinello 2007, Phys. Rev. E 75, 056707): O(h/2) B(h/2) A(h) B(h/2) O(h/2),
--     velocity Verlet between two half OU steps; for N(m, s²) its positions have variance
--     s²/(1 − h²/(4s²)) and its velocities variance 1 (both facts: the stationary covariance of
--     the linear chain, spec/langevin_theory_spec.lua).
-- Both evaluate the score once per step (the last B's score is the next
-- step's first), so nfe = steps + 1.  Large γ approaches overdamped
-- Langevin in time γt; γ = 2/s is critical damping for N(0, s²).
-- @param model wrapped model (sc.param.wrap), asked for model:score_sigma(x, σ)
-- @param x_init tensor [N, ...]: the start of the positions
-- @param levels nil (an unconditional score), or one level σ at which the model's score is taken
-- @param opts table: step_size = h (required, > 0); steps = 1000; friction = γ = 1 (> 0, math.huge
--   refreshes the velocity fully each O); scheme = "baoab" | "obabo"; velocity = tensor shaped like
--   x_init (default: drawn from N(0, I), the stationary velocities, as the first draw of the noise);
--   generator (a sc.Generator or sc.samplers.row_noise); callback; progress (false hides the bar).
--   callback{i =, x =, v =, level =, denoised =} after each step (denoised = x + σ² s at the new x
--   when a level is given)
-- @return x [N, ...], info {nfe =, steps =, levels = {σ} or {}, velocity = the final v [N, ...],
--   scheme =, friction =}
-- @usage local x, info = sc.samplers.underdamped_langevin(m, sc.randn(500, 2), nil, {step_size = 0.1, friction = 2})
function M.underdamped_langevin(model, x_init, levels, opts)
  local fn = "underdamped_langevin"
  common.check_model(model, fn)
  local x0 = common.check_start(x_init, fn)
  opts = common.options(opts, { "step_size", "steps", "friction", "scheme", "velocity", "generator",
    "callback", "progress" }, fn)
  local sigma = one_level(levels, fn)
  local h, n, gamma = opts.step_size, opts.steps or 1000, opts.friction or 1
  if type(h) ~= "number" or not (h > 0) or h == math.huge then
    error(("scorch.samplers.%s: step_size (h) must be a positive finite number (got %s)"):format(fn, tostring(h)), 2)
  end
  if type(n) ~= "number" or n ~= math.floor(n) or n < 0 or n == math.huge then
    error(("scorch.samplers.%s: steps must be a non-negative integer (got %s)"):format(fn, tostring(n)), 2)
  end
  n = math.tointeger(n)
  if type(gamma) ~= "number" or not (gamma > 0) then
    error(("scorch.samplers.%s: friction (γ) must be a positive number (got %s)"):format(fn, tostring(gamma)), 2)
  end
  local scheme = opts.scheme or "baoab"
  if not SCHEMES[scheme] then
    error(("scorch.samplers.%s: scheme must be \"baoab\" or \"obabo\" (got %s)"):format(fn, tostring(scheme)), 2)
  end
  local v0 = opts.velocity
  if v0 ~= nil then
    if not sc.is_tensor(v0) then
      error(("scorch.samplers.%s: velocity must be a tensor shaped like x_init (got %s)"):format(fn, type(v0)), 2)
    end
    local a, b = table.concat(v0:shape(), ","), table.concat(x0:shape(), ",")
    if a ~= b then
      error(("scorch.samplers.%s: velocity has shape [%s], x_init [%s]; they must match"):format(fn, a, b), 2)
    end
    v0 = v0:detach()
    if v0:dtype() ~= x0:dtype() then v0 = x0:dtype() == "float64" and v0:double() or v0:float() end
  end
  local gen, cb = opts.generator, opts.callback
  local sig = sigma ~= nil and param.level(sigma, x0) or nil
  -- the O step over a time τ: c = e^{−γτ} and the noise scale √(1 − c²)
  local tau = scheme == "baoab" and h or h / 2
  local c = math.exp(-gamma * tau)
  local cn = math.sqrt(math.max(0, 1 - c * c))
  local half = h / 2
  local progress = bar(n, opts, "underdamped langevin")
  local x, v = sc.no_grad(function()
    local x = x0
    local v = v0 or common.noise_like(x, gen)
    local s = model:score_sigma(x, sig)
    local function O(w) return w * c + common.noise_like(w, gen) * cn end
    for t = 1, n do
      if scheme == "baoab" then
        v = v + s * half
        x = x + v * half
        v = O(v)
        x = x + v * half
        s = model:score_sigma(x, sig)
        v = v + s * half
      else
        v = O(v)
        v = v + s * half
        x = x + v * h
        s = model:score_sigma(x, sig)
        v = v + s * half
        v = O(v)
      end
      if cb then
        cb { i = t, x = x, v = v, level = sigma, denoised = sigma and x + s * (sigma * sigma) or nil }
      end
      if progress then progress:update() end
    end
    return x, v
  end)
  if progress then progress:close() end
  return x, { nfe = n + 1, steps = n, levels = sigma and { sigma } or {}, velocity = v, scheme = scheme,
    friction = gamma }
end

--- Step sizes of Song & Ermon 2019, Algorithm 1: α_i = ε σ_i² / σ_L².
-- @param sigmas Lua array of levels σ_1 > … > σ_L
-- @param eps number ε
-- @return Lua array of α_i
-- @usage local a = sc.samplers.annealed_step_sizes({4, 2, 1}, 0.1)   -- {1.6, 0.4, 0.1}
function M.annealed_step_sizes(sigmas, eps)
  local out, last = {}, sigmas[#sigmas]
  for i, s in ipairs(sigmas) do out[i] = eps * (s / last) ^ 2 end
  return out
end

--- Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1): for each σ_i,
-- α_i = ε σ_i²/σ_L², T steps of x ← x + (α_i/2) s_θ(x, σ_i) + √α_i z.
-- convention = "paper" is that update; "reference" is the authors' code
-- (ermongroup/ncsn, anneal_Langevin_dynamics): x ← x + α_i s_θ + √(2α_i) z,
-- the same dynamics with ε doubled.  denoise = true adds the final step
-- x ← x + σ_L² s_θ(x, σ_L) (Tweedie's formula, Efron 2011; as in NCSNv2).
-- @param model wrapped model (sc.param.wrap), asked for model:score_sigma(x, σ)
-- @param x_init tensor [N, ...]: the start (e.g. sc.samplers.prior(levels, {N, 2}))
-- @param levels strictly decreasing positive levels σ_1 > … > σ_L (Lua list or 1-D tensor);
--   ascending or repeated levels are an error
-- @param opts table: step_size = ε = 2e-5; steps_per_level = T = 100; convention = "paper" | "reference";
--   denoise = false; generator; progress; callback{i =, x =, level =, denoised =,
--   level_index =, step =} after each step (i counts all steps; denoised = x + σ_i² s).
--   The old names eps and T still work, with a warning.
-- @return x, info {nfe =, steps =, levels = the σ visited}
-- @usage local x = sc.samplers.annealed_langevin(m, x0, {1, 0.5, 0.1}, {step_size = 1e-3, steps_per_level = 50})
function M.annealed_langevin(model, x_init, levels, opts)
  common.check_model(model, "annealed_langevin")
  local x0 = common.check_start(x_init, "annealed_langevin")
  opts = common.options(renamed(opts, "annealed_langevin"), { "step_size", "steps_per_level", "convention",
    "denoise", "generator", "callback", "progress" }, "annealed_langevin")
  local sigmas = levels
  if sc.is_tensor(sigmas) then sigmas = sigmas:values() end
  if type(sigmas) ~= "table" or #sigmas == 0 then
    error("scorch.samplers.annealed_langevin: levels must be a non-empty list or tensor of σ (bad argument #3)", 2)
  end
  for i = 1, #sigmas do
    local v = sigmas[i]
    if type(v) ~= "number" or not (v > 0) or (i > 1 and v >= sigmas[i - 1]) then
      error(("scorch.samplers.annealed_langevin: levels must be positive and strictly decreasing,"
        .. " σ_1 > … > σ_L (bad argument #3: %s at %d after %s)")
        :format(tostring(v), i, tostring(sigmas[i - 1])), 2)
    end
  end
  local eps, T = opts.step_size or 2e-5, opts.steps_per_level or 100
  if type(eps) ~= "number" or eps <= 0 then
    error("scorch.samplers.annealed_langevin: step_size (ε) must be a positive number", 2)
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
  local nfe, count = 0, 0
  local x = sc.no_grad(function()
    local x = x0
    for i = 1, L do
      local sig = param.level(sigmas[i], x)
      local a = alphas[i]
      local sq = noise_scale * math.sqrt(a)
      for t = 1, T do
        local s = model:score_sigma(x, sig)
        nfe, count = nfe + 1, count + 1
        local denoised = cb and x + s * (sigmas[i] * sigmas[i]) or nil
        x = x + s * (drift * a) + common.noise_like(x, gen) * sq
        if cb then cb { i = count, x = x, level = sigmas[i], denoised = denoised, level_index = i, step = t } end
        if progress then progress:update() end
      end
    end
    if opts.denoise then
      local sL = sigmas[L]
      x = x + model:score_sigma(x, param.level(sL, x)) * (sL * sL)
      nfe, count = nfe + 1, count + 1
      if cb then cb { i = count, x = x, level = sL, denoised = x, level_index = L + 1, step = 1 } end
    end
    return x
  end)
  if progress then progress:close() end
  return x, { nfe = nfe, steps = count, levels = sigmas }
end

--- A callback that records the trajectories of the first k points every `every` steps.
-- Works with every sampler: it reads the points from the callback table's x
-- (or, for older callbacks, from the last argument).
-- @param k number of points to follow
-- @param every record every `every` calls (default 1)
-- @param start optional [N, D] tensor recorded first
-- @return callback, paths (paths[j] = list of {x, y, ...})
-- @usage local cb, paths = sc.samplers.trajectory_recorder(5, 10, x0)
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
    if type(x) == "table" and not sc.is_tensor(x) then x = x.x end
    count = count + 1
    if count % every == 0 then add(x) end
  end
  return callback, paths
end

return M
