-- Diffusion samplers against the truth, no training: for Gaussian data
-- N(μ, Σ) the smoothed score is exact (VP: x_t ~ N(√ᾱ μ, ᾱΣ + (1 − ᾱ)I);
-- VE: N(μ, Σ + σ²I)), so every sampler driven by it must return samples
-- whose mean and covariance match μ and Σ within sampling error (4 standard
-- errors at 10,000 samples; step counts are chosen so that discretisation
-- bias stays below about one standard error).  For the 0.8/0.2 mixture of
-- Song & Ermon the mass in each mode must be right within 0.035.
local sc = require "scorch"
local param = require "scorch.param"
local schedules = require "scorch.schedules"
local samplers = require "scorch.samplers"

local N = 10000
local MU = { 1.0, -2.0 }
local SIGMA = { { 2.0, 0.6 }, { 0.6, 0.5 } }
local gaussian = sc.data.gaussian_mixture { means = { MU }, covs = { SIGMA } }
local D = param.from_distribution(gaussian)

-- Seed 2: its 10,000 initial draws have sample moments within 1 SE of N(0, I).
local function gen(seed) return sc.Generator(seed or 2) end

-- The new form sampler(model, x_init, levels, opts), the start drawn by
-- samplers.prior(levels, shape) from the generator the sampler then uses.
local function sample(name, model, levels, n, opts)
  opts = opts or {}
  local shape = type(n) == "number" and { n, 2 } or n
  local x = opts.x_init or samplers.prior(levels, shape, { generator = opts.generator, dtype = opts.dtype })
  local o = {}
  for k, v in pairs(opts) do
    if k ~= "x_init" and k ~= "dtype" then o[k] = v end
  end
  return samplers[name](model, x, levels, o)
end
local function karras(n) return (schedules.karras_sigmas(n)) end

-- Sample mean and covariance of x [n, 2] (Lua tables).
local function moments(x)
  local n = x:size(1)
  local m = x:double():mean(1, true)
  local c = x:double() - m
  local cov = (sc.matmul(c:t(), c) / (n - 1)):totable()
  return m:values(), cov
end

-- Asserts mean and covariance within 4 standard errors of the truth:
-- se(mean_i) = √(Σ_ii/n), se(cov_ij) = √((Σ_ii Σ_jj + Σ_ij²)/n) (Gaussian data).
local function assert_gaussian(x, info, name)
  local n = x:size(1)
  assert.are.equal(N, n)
  local m, cov = moments(x)
  for i = 1, 2 do
    local se = math.sqrt(SIGMA[i][i] / n)
    assert(math.abs(m[i] - MU[i]) < 4 * se,
      ("%s: mean[%d] = %.4f, expected %.4f ± %.4f"):format(name, i, m[i], MU[i], 4 * se))
    for j = 1, 2 do
      local se_c = math.sqrt((SIGMA[i][i] * SIGMA[j][j] + SIGMA[i][j] ^ 2) / n)
      assert(math.abs(cov[i][j] - SIGMA[i][j]) < 4 * se_c,
        ("%s: cov[%d][%d] = %.4f, expected %.4f ± %.4f"):format(name, i, j, cov[i][j], SIGMA[i][j], 4 * se_c))
    end
  end
  assert(info and math.type(info.nfe) == "integer" and info.nfe > 0, name .. ": info.nfe missing")
end

describe("DDPM-schedule samplers on a Gaussian with its exact ε", function()
  local sched = schedules.ddpm {}
  local eps = D   -- the exact ε through D: model:eps(x, t, sched)

  it("ddpm, variance β, 1000 steps", function()
    local x, info = sample("ddpm", eps, sched, N, { generator = gen() })
    assert.are.equal(1000, info.nfe)
    assert_gaussian(x, info, "ddpm β")
  end)

  it("ddpm, variance β̃, respaced to 500 steps", function()
    local x, info = sample("ddpm", eps, sched, N, { generator = gen(), variance = "beta_tilde", steps = 500 })
    assert.are.equal(500, info.nfe)
    assert_gaussian(x, info, "ddpm β̃")
  end)

  it("ddpm with a model predicting x₀ or v (prediction option)", function()
    -- networks receive the timestep as a column; the batch shares one here
    local function step(t) return math.tointeger(t:max():item()) end
    local x0_model = param.wrap(function(x, t)
      local a, s = sched:marginal(step(t))
      return param.convert(D:eps(x, step(t), sched), "eps", "x0", x, a, s)
    end, { kind = "x0", process = sched })
    local v_model = param.wrap(function(x, t)
      local a, s = sched:marginal(step(t))
      return param.convert(D:eps(x, step(t), sched), "eps", "v", x, a, s)
    end, { kind = "v", process = sched })
    local ref = sample("ddpm", eps, sched, 200, { generator = gen(3), steps = 100 })
    local xa = sample("ddpm", x0_model, sched, 200, { generator = gen(3), steps = 100 })
    local xb = sample("ddpm", v_model, sched, 200, { generator = gen(3), steps = 100 })
    assert((xa - ref):abs():max():item() < 2e-3)
    assert((xb - ref):abs():max():item() < 2e-3)
  end)

  it("ddpm with x₀ clipping: the posterior mean μ̃(x_t, x₀) equals Algorithm 2's mean", function()
    -- a bound no sample reaches changes nothing; a tight one confines the samples
    local a = sample("ddpm", eps, sched, 200, { generator = gen(4), steps = 100, dtype = "float64" })
    local b = sample("ddpm", eps, sched, 200, { generator = gen(4), steps = 100, dtype = "float64", clip_x0 = 100 })
    assert((a - b):abs():max():item() < 1e-9)
    local c = sample("ddpm", eps, sched, 200, { generator = gen(4), steps = 100, clip_x0 = 1 })
    assert(c:abs():max():item() <= 1 + 1e-5)
    local d = sample("ddim", eps, sched, 200, { generator = gen(4), steps = 50, clip_x0 = true })
    assert(d:abs():max():item() <= 1 + 1e-5)
  end)

  it("ddim, η = 0, 500 steps", function()
    local x, info = sample("ddim", eps, sched, N, { generator = gen(), steps = 500 })
    assert.are.equal(500, info.nfe)
    assert_gaussian(x, info, "ddim η=0")
  end)

  it("ddim, η = 0, trailing spacing, 500 steps", function()
    local x, info = sample("ddim", eps, sched, N, { generator = gen(), steps = 500, spacing = "trailing" })
    assert.are.equal(1000, info.timesteps[1])
    assert_gaussian(x, info, "ddim trailing")
  end)

  it("ddim with η = 1 and every step equals ddpm with β̃ (same noise draws)", function()
    local sched64 = schedules.ddpm {}
    local e64 = D
    local a = sample("ddim", e64, sched64, 300, { generator = gen(11), eta = 1, steps = 1000, dtype = "float64" })
    local b = sample("ddpm", e64, sched64, 300, { generator = gen(11), variance = "beta_tilde", dtype = "float64" })
    assert((a - b):abs():max():item() < 1e-8)
    -- and not with variance β: the test can fail
    local c = sample("ddpm", e64, sched64, 300, { generator = gen(11), variance = "beta", dtype = "float64" })
    assert((a - c):abs():max():item() > 1e-3)
  end)
end)

describe("reverse-SDE samplers on a Gaussian with its exact score", function()
  local sdes = {
    vp = schedules.vp_sde(),
    subvp = schedules.subvp_sde(),
    -- σ_max well above the data scale, so N(0, σ_max²) is the prior
    ve = schedules.ve_sde { sigma_min = 0.01, sigma_max = 100 },
  }
  for _, kind in ipairs { "vp", "ve", "subvp" } do
    local sde = sdes[kind]
    local score = D   -- the exact score through D: model:score(x, t, sde)
    it(kind .. ": euler_maruyama, 500 steps", function()
      local x, info = sample("euler_maruyama", score, sde, N, { generator = gen(), steps = 500 })
      assert.are.equal(500, info.nfe)
      assert_gaussian(x, info, kind .. " EM")
    end)
    it(kind .. ": predictor_corrector (reverse diffusion + Langevin), 200 steps", function()
      local x, info = sample("predictor_corrector", score, sde, N, { generator = gen(), steps = 200 })
      assert.are.equal(400, info.nfe)
      assert_gaussian(x, info, kind .. " PC")
    end)
    it(kind .. ": probability_flow, RK45", function()
      local x, info = sample("probability_flow", score, sde, N, { generator = gen() })
      assert(info.nfe < 400, "RK45 took " .. info.nfe .. " evaluations")
      assert_gaussian(x, info, kind .. " PF RK45")
    end)
  end

  it("vp: probability_flow, Heun, 50 steps", function()
    local sde = sdes.vp
    local x, info = sample("probability_flow", D, sde, N,
      { generator = gen(), method = "heun", steps = 50 })
    assert.are.equal(100, info.nfe)
    assert_gaussian(x, info, "vp PF Heun")
  end)

  it("vp: predictor_corrector with an Euler–Maruyama predictor, model predicting ε", function()
    local sde = sdes.vp
    local eps_model = param.wrap(function(x, t)
      return D:eps(x, t:max():item(), sde)
    end, { kind = "eps", process = sde })
    local x, info = sample("predictor_corrector", eps_model, sde, N,
      { generator = gen(), steps = 200, predictor = "euler_maruyama" })
    assert_gaussian(x, info, "vp PC EM/eps")
  end)
end)

describe("denoiser samplers on a Gaussian with its exact D(x, σ)", function()
  it("naive_backward, deterministic, 500 Karras levels", function()
    local x, info = sample("naive_backward", D, karras(500), N, { generator = gen() })
    assert.are.equal(500, info.nfe)
    assert_gaussian(x, info, "naive deterministic")
  end)

  it("naive_backward, stochastic, 500 Karras levels", function()
    local x, info = sample("naive_backward", D, karras(500), N, { generator = gen(), method = "ancestral" })
    assert_gaussian(x, info, "naive stochastic")
  end)

  it("heun (EDM Algorithm 2), deterministic, 40 levels = 79 evaluations", function()
    local x, info = sample("heun", D, karras(40), N, { generator = gen() })
    assert.are.equal(79, info.nfe)
    assert_gaussian(x, info, "heun")
  end)

  it("heun with churn", function()
    local x, info = sample("heun", D, karras(40), N, { generator = gen(), S_churn = 10,
      S_min = 0.05, S_max = 50, S_noise = 1 })
    assert_gaussian(x, info, "heun churn")
  end)

  it("dpmpp_2m, 40 Karras levels", function()
    local x, info = sample("dpmpp_2m", D, karras(40), N, { generator = gen() })
    assert.are.equal(40, info.nfe)
    assert_gaussian(x, info, "dpmpp_2m")
  end)

  it("first-order samplers converge in steps, Heun at second order", function()
    -- variance error of the deterministic samplers on a 1-D Gaussian, from
    -- their linear maps: halving the step must halve (Euler) or quarter (Heun) it.
    local v = 2.0
    local lin = param.wrap(function(x, s) return x * ((s * s + v) ^ -1 * v) end, { kind = "denoiser" })
    local function err(sampler, steps)
      local x0 = sc.ones(1, 1, { dtype = "float64" })
      local levels = schedules.karras_sigmas(steps)
      local x = sampler(lin, x0, levels)
      return math.abs(x:item() ^ 2 * (v + levels[1] ^ 2) / v - 1)
    end
    local e1, e2 = err(samplers.naive_backward, 100), err(samplers.naive_backward, 200)
    assert(e1 / e2 > 1.8 and e1 / e2 < 2.2, ("naive ratio %.3f"):format(e1 / e2))
    local h1, h2 = err(samplers.heun, 40), err(samplers.heun, 80)
    assert(h1 / h2 > 3.5 and h1 / h2 < 4.5, ("heun ratio %.3f"):format(h1 / h2))
  end)
end)

describe("samplers on the 0.8/0.2 mixture with its exact score", function()
  local M = 5000
  local mix = sc.data.two_gaussians()   -- 0.8·N((5,5), I) + 0.2·N((−5,−5), I)
  local Dm = param.from_distribution(mix)
  local sched = schedules.ddpm {}
  local vp, ve = schedules.vp_sde(), schedules.ve_sde { sigma_max = 50 }

  local function mass_near_first_mode(x)
    local s = x:sum(2, false):gt(0):double():mean():item()
    return s
  end
  local cases = {
    { "ddpm 1000", function() return sample("ddpm", Dm, sched, M, { generator = gen(5) }) end },
    { "ddim 100", function()
      return sample("ddim", Dm, sched, M, { generator = gen(5), steps = 100 }) end },
    { "vp euler_maruyama 500", function()
      return sample("euler_maruyama", Dm, vp, M, { generator = gen(5), steps = 500 }) end },
    { "ve predictor_corrector 200", function()
      return sample("predictor_corrector", Dm, ve, M, { generator = gen(5), steps = 200 }) end },
    { "vp probability_flow rk45", function()
      return sample("probability_flow", Dm, vp, M, { generator = gen(5) }) end },
    { "naive_backward 100", function()
      return sample("naive_backward", Dm, karras(100), M, { generator = gen(5) }) end },
    { "naive_backward stochastic 200", function()
      return sample("naive_backward", Dm, karras(200), M, { generator = gen(5), method = "ancestral" }) end },
    { "heun 18", function() return sample("heun", Dm, karras(18), M, { generator = gen(5) }) end },
    { "dpmpp_2m 20", function() return sample("dpmpp_2m", Dm, karras(20), M, { generator = gen(5) }) end },
  }
  for _, c in ipairs(cases) do
    it(c[1] .. ": mode masses 0.8 / 0.2 within 0.035", function()
      local x = c[2]()
      local frac = mass_near_first_mode(x)
      assert(math.abs(frac - 0.8) < 0.035, ("%s: mass at (5, 5) = %.4f"):format(c[1], frac))
    end)
  end
end)

describe("sampler arguments", function()
  local sched = schedules.ddpm { T = 10 }
  local eps = param.wrap(function(x) return x * 0 end, { kind = "eps", process = sched })
  local x4 = sc.randn(4, 2)
  it("reject what cannot be sampled", function()
    assert.has_error(function() samplers.ddpm(param.wrap(42), x4, sched) end)
    assert.has_error(function() samplers.ddpm(eps, x4, schedules.vp_sde()) end)
    assert.has_error(function() samplers.ddpm(eps, x4, sched, { variance = "big" }) end)
    assert.has_error(function() samplers.ddim(eps, x4, sched, { timesteps = { 3, 5 } }) end)
    assert.has_error(function() samplers.ddim(eps, x4, { 3, 5 }) end)
    assert.has_error(function() samplers.ddim(eps, x4, sched, { eta = -1 }) end)
    assert.has_error(function() samplers.euler_maruyama(eps, x4, sched) end)
    assert.has_error(function() samplers.probability_flow(eps, x4, schedules.vp_sde(), { method = "rk4" }) end)
    assert.has_error(function() samplers.heun(eps, x4, { 1, 2 }) end)
    assert.has_error(function() samplers.dpmpp_2m(eps, x4, { 1 }) end)
    assert.has_error(function() samplers.ddpm(eps, "x", sched) end)
    assert.has_error(function() samplers.ddim(eps, x4, sched, { prediction = "x0" }) end,
      "scorch.samplers.ddim: unknown option 'prediction'"
        .. " (valid: callback, clip_x0, eta, generator, spacing, steps, timesteps)")
  end)
  it("start from x_init and keep its shape", function()
    local x0 = sc.randn(3, 2)
    local x, info = samplers.ddim(eps, x0, sched, { steps = 10 })
    assert.are.same({ 3, 2 }, x:shape())
    assert.are.equal(10, info.nfe)
    local y = samplers.ddpm(eps, samplers.prior(sched, { 4, 3 }, { generator = gen() }), sched)
    assert.are.same({ 4, 3 }, y:shape())
  end)
  it("records no graph", function()
    local w = sc.ones(1, 2):requires_grad(true)
    local model = param.wrap(function(x) return x * w end, { kind = "eps", process = sched })
    local x = samplers.ddim(model, sc.randn(5, 2), sched, { steps = 5 })
    assert.is_false(x:requires_grad())
  end)
end)

describe("predictor_corrector on a VP SDE with few steps", function()
  -- β(t)·Δt ≥ 1 made √(1 − β(t)Δt) and the corrector's α = 1 − β(t)Δt
  -- negative: NaN samples without a word (β_max = 20: below 20 steps)
  local vp = schedules.vp_sde()
  local model = param.wrap(sc.data.toy("two_gaussians"), { process = vp })
  it("is an error naming the step size, not NaN", function()
    local ok, msg = pcall(samplers.predictor_corrector, model, sc.randn(8, 2), vp, { steps = 10 })
    assert.is_false(ok)
    assert.matches("scorch.samplers.predictor_corrector: the VP discretisation needs", msg, 1, true)
    assert.matches("1.998 at t = 1 with 10 steps", msg, 1, true)
  end)
  it("runs at 25 steps, and at 10 with Euler–Maruyama and no corrector", function()
    local x = samplers.predictor_corrector(model, sc.randn(8, 2), vp, { steps = 25 })
    assert.are.equal(x:sum():item(), x:sum():item()) -- not NaN
    local y = samplers.predictor_corrector(model, sc.randn(8, 2), vp,
      { steps = 10, predictor = "euler_maruyama", corrector = "none" })
    assert.are.equal(y:sum():item(), y:sum():item())
  end)
end)
