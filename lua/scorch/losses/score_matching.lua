--- Score-matching objectives.  Each is loss(model, x, opts) -> scalar tensor,
-- where x is an [N, D] batch and the model is called as model(x) or
-- model(x, sigma) with sigma the [N, 1] column of scorch.param.level (see scorch.util.as_score_fn:
-- a function, a callable module or an object with :score, such as an energy
-- model whose score is -∇ₓE).
-- @module scorch.losses.score_matching
local sc = require "scorch"
local util = require "scorch.util"
local param = require "scorch.param"

local M = {}

local function check_batch(x, fn)
  if not sc.is_tensor(x) or x:dim() ~= 2 then
    error(("scorch.losses.%s: expected a batch of shape [N, D]"):format(fn), 3)
  end
end

--- Random projection vectors with E[v vᵀ] = I.
local function projections(shape, kind, gen, dtype)
  if kind == nil or kind == "gaussian" then
    return sc.randn(shape, { generator = gen, dtype = dtype })
  elseif kind == "rademacher" then
    return sc.rand(shape, { generator = gen, dtype = dtype }):gt(0.5) * 2 - 1
  end
  error(("scorch.losses: unknown projection '%s' (gaussian or rademacher)"):format(tostring(kind)), 3)
end
M.projections = projections

-- The batch repeated n times along dim 1 ([n*N, D]), for several projections.
local function repeat_rows(x, n)
  if n == 1 then return x end
  local N, D = x:size(1), x:size(2)
  return x:unsqueeze(1):expand(n, N, D):reshape(n * N, D)
end

local function squared_norm(t) return t:square():sum(2, false) end

--- Hyvärinen 2005, eq. 2 (Fisher divergence): ½ E_p ‖s_θ(x) − ∇ₓ log p(x)‖².
-- opts: score = function(x [, sigma]) or data = distribution (its :score, or
-- :score_at(x, sigma) when sigma is given), target = precomputed [N, D]
-- scores; sigma = number or [N, 1] tensor, passed to the model and the target.
function M.esm(model, x, opts)
  check_batch(x, "esm")
  opts = util.check_options(opts, {
      "score", "data", "target", "sigma" }, "scorch.losses.esm")
  local s_fn = util.as_score_fn(model)
  local sigma = opts.sigma
  if sigma ~= nil then sigma = param.level(sigma, x) end
  local target = opts.target
  if not target then
    local fn
    if opts.score then
      fn = function(z) return opts.score(z, sigma) end
    elseif opts.data then
      fn = sigma and function(z) return opts.data:score_at(z, sigma) end
        or function(z) return opts.data:score(z) end
    else
      error("scorch.losses.esm: give the true score as opts.score, opts.data or opts.target", 2)
    end
    target = sc.no_grad(fn, x)
  end
  local s = s_fn(x, sigma)
  return (squared_norm(s - target:detach()) * 0.5):mean()
end

-- tr(∇ₓ s) per row, exactly: one backward pass per dimension (create_graph).
local function exact_trace(s, x)
  local tr
  for d = 1, x:size(2) do
    local g = sc.grad(s:select(2, d):sum(), { x }, { create_graph = true, retain_graph = true })[1]
    local col = g:select(2, d)
    tr = tr and tr + col or col
  end
  return tr
end

--- Hyvärinen 2005, eq. 4 (implicit score matching): E_p[tr(∇ₓ s_θ(x)) + ½‖s_θ(x)‖²].
-- opts: estimator = "exact" (D backward passes, default) or "hutchinson"
-- (E_v[vᵀ(∇ₓ s)v], Hutchinson 1989) with n_projections, projection
-- ("gaussian" | "rademacher", default rademacher), generator; sigma as in esm.
function M.ism(model, x, opts)
  check_batch(x, "ism")
  opts = util.check_options(opts, {
      "estimator", "n_projections", "projection", "generator", "sigma" }, "scorch.losses.ism")
  local s_fn = util.as_score_fn(model)
  return util.enable_grad(function()
    local xr = x:detach():requires_grad(true)
    local sigma = opts.sigma ~= nil and param.level(opts.sigma, x) or nil
    local s = s_fn(xr, sigma)
    local trace
    local est = opts.estimator or "exact"
    if est == "exact" then
      trace = exact_trace(s, xr)
    elseif est == "hutchinson" then
      local n = opts.n_projections or 1
      for _ = 1, n do
        local v = projections(x:shape(), opts.projection or "rademacher", opts.generator, x:dtype())
        local g = sc.grad((s * v):sum(), { xr }, { create_graph = true, retain_graph = true })[1]
        local t = (g * v):sum(2, false)
        trace = trace and trace + t or t
      end
      trace = trace / n
    else
      error(("scorch.losses.ism: unknown estimator '%s' (exact or hutchinson)"):format(tostring(est)), 0)
    end
    return (trace + squared_norm(s) * 0.5):mean()
  end)
end

--- Song, Garg, Shi & Ermon 2019, eq. 7 (sliced score matching):
--   E_v E_p[vᵀ∇ₓ(vᵀ s_θ(x)) + ½ (vᵀ s_θ(x))²];
-- with variance_reduction (SSM-VR, eq. 9) the second term is ½‖s_θ(x)‖².
-- opts: projection = "gaussian" (default) | "rademacher", n_projections (M,
-- default 1), variance_reduction, generator; sigma as in esm.
function M.ssm(model, x, opts)
  check_batch(x, "ssm")
  opts = util.check_options(opts, {
      "projection", "n_projections", "variance_reduction", "generator", "sigma" }, "scorch.losses.ssm")
  local s_fn = util.as_score_fn(model)
  local n = opts.n_projections or 1
  return util.enable_grad(function()
    local xr = repeat_rows(x:detach(), n):detach():requires_grad(true)
    local sigma = opts.sigma
    if sc.is_tensor(sigma) and sigma:numel() == x:size(1) then
      sigma = repeat_rows(sigma:reshape(x:size(1), 1), n)
    end
    if sigma ~= nil then sigma = param.level(sigma, xr) end
    local v = projections(xr:shape(), opts.projection or "gaussian", opts.generator, x:dtype())
    local s = s_fn(xr, sigma)
    local sv = (s * v):sum(2, false)
    -- rows are independent, so the gradient of Σ_n vₙᵀsₙ holds each ∇ₓ(vᵀs)
    local g = sc.grad(sv:sum(), { xr }, { create_graph = true, retain_graph = true })[1]
    local first = (g * v):sum(2, false)
    local second = opts.variance_reduction and squared_norm(s) * 0.5 or sv:square() * 0.5
    return (first + second):mean()
  end)
end

--- Song, Garg, Shi & Ermon 2019, eq. 9 (SSM-VR): E[vᵀ∇ₓ(vᵀ s_θ) + ½‖s_θ‖²].
function M.ssm_vr(model, x, opts)
  local o = {}
  opts = util.check_options(opts, {
      "projection", "n_projections", "generator", "sigma" }, "scorch.losses.ssm_vr")
  for k, v in pairs(opts) do o[k] = v end
  o.variance_reduction = true
  return M.ssm(model, x, o)
end

-- λ(σ) for dsm: "sigma2" (σ², Song & Ermon 2019), "none" (1), or a
-- function of the [N, 1] sigma tensor returning [N, 1] or [N].
local function weights_for(weighting, sig)
  if weighting == "sigma2" then return sig:square():reshape(sig:size(1)) end
  if weighting == "none" or weighting == nil then return nil end
  if type(weighting) == "function" then return weighting(sig):reshape(sig:size(1)) end
  error(("scorch.losses.dsm: unknown weighting '%s'"):format(tostring(weighting)), 3)
end

-- Models already checked for ignoring σ (weak keys: checking holds no model alive).
local sigma_checked = setmetatable({}, { __mode = "k" })

-- On the first dsm call with several levels (before the loss's own call, so
-- the model sees that last), whether the model's output changes at all when
-- every σ doubles; a model that ignores σ cannot learn a
-- noise-conditional score, so say so once on stderr (training goes on).
local function warn_if_sigma_ignored(model, s_fn, x_noisy, sig)
  if sigma_checked[model] then return end
  sigma_checked[model] = true
  local k = math.min(x_noisy:size(1), 8)
  local rng = sc.get_rng_state() -- a model drawing noise (dropout) must not shift the run's numbers
  local ok, same = pcall(sc.no_grad, function()
    local xk, sk = x_noisy:narrow(1, 1, k), sig:narrow(1, 1, k)
    return (s_fn(xk, sk * 2) - s_fn(xk, sk)):abs():max():item() == 0
  end)
  sc.set_rng_state(rng)
  if not ok then error(same, 0) end
  if same then
    io.stderr:write("scorch.losses.dsm: warning: the model's output does not change with sigma "
      .. "(sigma and 2*sigma gave the same scores on the first batch); a noise-conditional score "
      .. "model should use its second argument, sigma\n")
  end
end

--- Vincent 2011, eq. 11 and Song & Ermon 2019, eqs. 5–6 (denoising score
-- matching): x̃ = x + σz, ℓ(θ; σ) = ½ E‖s_θ(x̃, σ) + (x̃ − x)/σ²‖²; over levels
-- {σ_i}: (1/L) Σ_i λ(σ_i) ℓ(θ; σ_i), one level drawn uniformly per example.
-- opts: sigma = one level (number or [N, 1] tensor of per-example levels), or
-- sigmas = Lua array / tensor of levels; weighting = "sigma2" (default with
-- sigmas) | "none" (default with one sigma) | function(sigma) ; generator.
function M.dsm(model, x, opts)
  check_batch(x, "dsm")
  opts = util.check_options(opts, {
      "sigma", "sigmas", "weighting", "generator" }, "scorch.losses.dsm")
  local s_fn = util.as_score_fn(model)
  local N, dt, gen = x:size(1), x:dtype(), opts.generator
  local sig, weighting
  if opts.sigmas ~= nil then
    local levels = opts.sigmas
    if sc.is_tensor(levels) then levels = levels:values() end
    if type(levels) ~= "table" or #levels == 0 then
      error("scorch.losses.dsm: sigmas must be a non-empty list or tensor", 2)
    end
    local u = sc.rand(N, { generator = gen, dtype = "float64" }):values()
    local per = {}
    for i = 1, N do per[i] = levels[math.min(#levels, math.floor(u[i] * #levels) + 1)] end
    sig = sc.tensor(per, { dtype = dt }):view(N, 1)
    weighting = opts.weighting or "sigma2"
  elseif opts.sigma ~= nil then
    sig = param.level(opts.sigma, x)
    weighting = opts.weighting or "none"
  else
    error("scorch.losses.dsm: give a noise level (opts.sigma) or levels (opts.sigmas)", 2)
  end
  local z = sc.randn(N, x:size(2), { generator = gen, dtype = dt })
  local x_noisy = x:detach() + sig * z
  -- target −(x̃ − x)/σ² = −z/σ
  if opts.sigmas ~= nil then warn_if_sigma_ignored(model, s_fn, x_noisy, sig) end
  local s = s_fn(x_noisy, sig)
  local per_example = squared_norm(s + z / sig) * 0.5
  local w = weights_for(weighting, sig)
  if w then per_example = per_example * w end
  return per_example:mean()
end

return M
