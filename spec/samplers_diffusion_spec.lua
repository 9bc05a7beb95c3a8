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
  local eps = param.eps_fn(D, sched)

  it("ddpm, variance β, 1000 steps", function()
    local x, info = samplers.ddpm(eps, sched, N, { generator = gen() })
    assert.are.equal(1000, info.nfe)
    assert_gaussian(x, info, "ddpm β")
  end)

  it("ddpm, variance β̃, respaced to 500 steps", function()
    local x, info = samplers.ddpm(eps, sched, N, { generator = gen(), variance = "beta_tilde", steps = 500 })
    assert.are.equal(500, info.nfe)
    assert_gaussian(x, info, "ddpm β̃")
  end)

  it("ddpm with a model predicting x₀ or v (prediction option)", function()
    local x0_model = function(x, t)
      local a, s = sched:marginal(t)
      return param.convert(eps(x, t), "eps", "x0", x, a, s)
    end
    local v_model = function(x, t)
      local a, s = sched:marginal(t)
      return param.convert(eps(x, t), "eps", "v", x, a, s)
    end
    local ref = samplers.ddpm(eps, sched, 200, { generator = gen(3), steps = 100 })
    local xa = samplers.ddpm(x0_model, sched, 200, { generator = gen(3), steps = 100, prediction = "x0" })
    local xb = samplers.ddpm(v_model, sched, 200, { generator = gen(3), steps = 100, prediction = "v" })
    assert((xa - ref):abs():max():item() < 2e-3)
    assert((xb - ref):abs():max():item() < 2e-3)
  end)

  it("ddpm with x₀ clipping: the posterior mean μ̃(x_t, x₀) equals Algorithm 2's mean", function()
    -- a bound no sample reaches changes nothing; a tight one confines the samples
    local a = samplers.ddpm(eps, sched, 200, { generator = gen(4), steps = 100, dtype = "float64" })
    local b = samplers.ddpm(eps, sched, 200, { generator = gen(4), steps = 100, dtype = "float64", clip_x0 = 100 })
    assert((a - b):abs():max():item() < 1e-9)
    local c = samplers.ddpm(eps, sched, 200, { generator = gen(4), steps = 100, clip_x0 = 1 })
    assert(c:abs():max():item() <= 1 + 1e-5)
    local d = samplers.ddim(eps, sched, 200, { generator = gen(4), steps = 50, clip_x0 = true })
    assert(d:abs():max():item() <= 1 + 1e-5)
  end)

  it("ddim, η = 0, 500 steps", function()
    local x, info = samplers.ddim(eps, sched, N, { generator = gen(), steps = 500 })
    assert.are.equal(500, info.nfe)
    assert_gaussian(x, info, "ddim η=0")
  end)

  it("ddim, η = 0, trailing spacing, 500 steps", function()
    local x, info = samplers.ddim(eps, sched, N, { generator = gen(), steps = 500, spacing = "trailing" })
    assert.are.equal(1000, info.timesteps[1])
    assert_gaussian(x, info, "ddim trailing")
  end)

  it("ddim with η = 1 and every step equals ddpm with β̃ (same noise draws)", function()
    local sched64 = schedules.ddpm {}
    local e64 = param.eps_fn(D, sched64)
    local a = samplers.ddim(e64, sched64, 300, { generator = gen(11), eta = 1, steps = 1000, dtype = "float64" })
    local b = samplers.ddpm(e64, sched64, 300, { generator = gen(11), variance = "beta_tilde", dtype = "float64" })
    assert((a - b):abs():max():item() < 1e-8)
    -- and not with variance β: the test can fail
    local c = samplers.ddpm(e64, sched64, 300, { generator = gen(11), variance = "beta", dtype = "float64" })
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
    local score = param.score_fn(D, sde)
    it(kind .. ": euler_maruyama, 500 steps", function()
      local x, info = samplers.euler_maruyama(score, sde, N, { generator = gen(), steps = 500 })
      assert.are.equal(500, info.nfe)
      assert_gaussian(x, info, kind .. " EM")
    end)
    it(kind .. ": predictor_corrector (reverse diffusion + Langevin), 200 steps", function()
      local x, info = samplers.predictor_corrector(score, sde, N, { generator = gen(), steps = 200 })
      assert.are.equal(400, info.nfe)
      assert_gaussian(x, info, kind .. " PC")
    end)
    it(kind .. ": probability_flow, RK45", function()
      local x, info = samplers.probability_flow(score, sde, N, { generator = gen() })
      assert(info.nfe < 400, "RK45 took " .. info.nfe .. " evaluations")
      assert_gaussian(x, info, kind .. " PF RK45")
    end)
  end

  it("vp: probability_flow, Heun, 50 steps", function()
    local sde = sdes.vp
    local x, info = samplers.probability_flow(param.score_fn(D, sde), sde, N,
      { generator = gen(), method = "heun", steps = 50 })
    assert.are.equal(100, info.nfe)
    assert_gaussian(x, info, "vp PF Heun")
  end)

  it("vp: predictor_corrector with an Euler–Maruyama predictor, model predicting ε", function()
    local sde = sdes.vp
    local eps_model = param.eps_fn(D, sde)
    local x, info = samplers.predictor_corrector(eps_model, sde, N,
      { generator = gen(), steps = 200, predictor = "euler_maruyama", prediction = "eps" })
    assert_gaussian(x, info, "vp PC EM/eps")
  end)
end)

describe("denoiser samplers on a Gaussian with its exact D(x, σ)", function()
  it("naive_backward, deterministic, 500 Karras levels", function()
    local x, info = samplers.naive_backward(D, nil, N, { generator = gen(), steps = 500 })
    assert.are.equal(500, info.nfe)
    assert_gaussian(x, info, "naive deterministic")
  end)

  it("naive_backward, stochastic, 500 Karras levels", function()
    local x, info = samplers.naive_backward(D, nil, N, { generator = gen(), steps = 500, stochastic = true })
    assert_gaussian(x, info, "naive stochastic")
  end)

  it("heun (EDM Algorithm 2), deterministic, 40 levels = 79 evaluations", function()
    local x, info = samplers.heun(D, nil, N, { generator = gen(), steps = 40 })
    assert.are.equal(79, info.nfe)
    assert_gaussian(x, info, "heun")
  end)

  it("heun with churn", function()
    local x, info = samplers.heun(D, nil, N, { generator = gen(), steps = 40, S_churn = 10,
      S_min = 0.05, S_max = 50, S_noise = 1 })
    assert_gaussian(x, info, "heun churn")
  end)

  it("dpmpp_2m, 40 Karras levels", function()
    local x, info = samplers.dpmpp_2m(D, nil, N, { generator = gen(), steps = 40 })
    assert.are.equal(40, info.nfe)
    assert_gaussian(x, info, "dpmpp_2m")
  end)

  it("first-order samplers converge in steps, Heun at second order", function()
    -- variance error of the deterministic samplers on a 1-D Gaussian, from
    -- their linear maps: halving the step must halve (Euler) or quarter (Heun) it.
    local v = 2.0
    local lin = function(x, s) return x * (v / (v + s * s)) end
    local function err(sampler, steps)
      local x0 = sc.ones(1, 1, { dtype = "float64" })
      local levels = schedules.karras_sigmas(steps)
      local x = sampler(lin, levels, nil, { x_init = x0 })
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
    { "ddpm 1000", function() return samplers.ddpm(param.eps_fn(Dm, sched), sched, M, { generator = gen(5) }) end },
    { "ddim 100", function()
      return samplers.ddim(param.eps_fn(Dm, sched), sched, M, { generator = gen(5), steps = 100 }) end },
    { "vp euler_maruyama 500", function()
      return samplers.euler_maruyama(param.score_fn(Dm, vp), vp, M, { generator = gen(5), steps = 500 }) end },
    { "ve predictor_corrector 200", function()
      return samplers.predictor_corrector(param.score_fn(Dm, ve), ve, M, { generator = gen(5), steps = 200 }) end },
    { "vp probability_flow rk45", function()
      return samplers.probability_flow(param.score_fn(Dm, vp), vp, M, { generator = gen(5) }) end },
    { "naive_backward 100", function()
      return samplers.naive_backward(Dm, nil, M, { generator = gen(5), steps = 100 }) end },
    { "naive_backward stochastic 200", function()
      return samplers.naive_backward(Dm, nil, M, { generator = gen(5), steps = 200, stochastic = true }) end },
    { "heun 18", function() return samplers.heun(Dm, nil, M, { generator = gen(5) }) end },
    { "dpmpp_2m 20", function() return samplers.dpmpp_2m(Dm, nil, M, { generator = gen(5) }) end },
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
  local eps = function(x) return x * 0 end
  it("reject what cannot be sampled", function()
    assert.has_error(function() samplers.ddpm(42, sched, 4) end)
    assert.has_error(function() samplers.ddpm(eps, schedules.vp_sde(), 4) end)
    assert.has_error(function() samplers.ddpm(eps, sched, 4, { variance = "big" }) end)
    assert.has_error(function() samplers.ddim(eps, sched, 4, { timesteps = { 3, 5 } }) end)
    assert.has_error(function() samplers.ddim(eps, sched, 4, { eta = -1 }) end)
    assert.has_error(function() samplers.euler_maruyama(eps, sched, 4) end)
    assert.has_error(function() samplers.probability_flow(eps, schedules.vp_sde(), 4, { method = "rk4" }) end)
    assert.has_error(function() samplers.heun(eps, { 1, 2 }, 4) end)
    assert.has_error(function() samplers.dpmpp_2m(eps, { 1 }, 4) end)
    assert.has_error(function() samplers.ddpm(eps, sched, 0) end)
  end)
  it("start from x_init and take shapes", function()
    local x0 = sc.randn(3, 2)
    local x, info = samplers.ddim(eps, sched, nil, { x_init = x0, steps = 10 })
    assert.are.same({ 3, 2 }, x:shape())
    assert.are.equal(10, info.nfe)
    local y = samplers.ddpm(eps, sched, { 4, 3 }, { generator = gen() })
    assert.are.same({ 4, 3 }, y:shape())
  end)
  it("records no graph", function()
    local w = sc.ones(1, 2):requires_grad(true)
    local model = function(x) return x * w end
    local x = samplers.ddim(model, sched, 5, { steps = 5 })
    assert.is_false(x:requires_grad())
  end)
end)
