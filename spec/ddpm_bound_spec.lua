-- The DDPM bound against closed forms: for Gaussian data N(μ, s² I) the
-- optimal ε-predictor is E[ε | x_t] = √(1 − ᾱ_t)(x_t − √ᾱ_t μ)/(ᾱ_t s² + 1 − ᾱ_t), and
-- the expected negative ELBO of that model is computed here term by term from
-- β and ᾱ alone (Ho et al. 2020, eqs. 5 and 12); it must match the library's
-- sampled bound, lie above the true NLL ½ D log(2πe s²), and reach it for
-- large T.  Gaussian KLs against quadrature of ∫ p log(p/q), the decoder's bin
-- masses against quadrature and their sum (1), the prior term against its
-- closed form and a Monte-Carlo KL, the learned-variance interpolation at its
-- ends, the hybrid loss's gradients against finite differences and the
-- stop-gradient it promises.
local sc = require "scorch"
local likelihood = require "scorch.likelihood"
local schedules = require "scorch.schedules"

local F64 = { dtype = "float64" }
local LOG_2PI = math.log(2 * math.pi)

local function near(a, b, tol, what)
  assert(math.abs(a - b) <= tol, ("%s: %.10g vs %.10g (tol %g)"):format(what or "value", a, b, tol))
end

-- Simpson's rule for ∫_a^b f with n (even) intervals.
local function simpson(f, a, b, n)
  local h, acc = (b - a) / n, f(a) + f(b)
  for i = 1, n - 1 do acc = acc + (i % 2 == 1 and 4 or 2) * f(a + i * h) end
  return acc * h / 3
end

local function normal_pdf(x, m, v) return math.exp(-(x - m) ^ 2 / (2 * v)) / math.sqrt(2 * math.pi * v) end

-- ---- the Gaussian data and its optimal model ---------------------------------------------

-- ε̂ = E[ε | x_t] for x₀ ~ N(mu, sd² I), as a network net(x, level) on sched
local function optimal_net(sched, mu, sd)
  return function(x, c)
    local a, s = sched:marginal(c)
    return (x - a * mu) * s / (a * a * (sd * sd) + s * s)
  end
end

-- The same with a constant variance interpolation v (a "network with learned variances").
local function optimal_learned(sched, mu, sd, v)
  local eps = optimal_net(sched, mu, sd)
  return setmetatable({ learned_variance = true,
    forward_variance = function(_, x, c) return eps(x, c), x * 0 + v end },
    { __call = function(_, x, c) return eps(x, c) end })
end

-- E over x₀ ~ N(mu, sd² I_D) and the forward process of the negative ELBO of the optimal
-- model with reverse variance σ_t² ("beta", "beta_tilde", or learned with constant v):
--   L_T: ½ D[(1 − ᾱ_T) + ᾱ_T(μ² + s²) − 1 − log(1 − ᾱ_T)]
--   L_{t−1}: ½ D[log(σ_t²/β̃_t) + β̃_t/σ_t² − 1] + β_t²/(α_t(1 − ᾱ_t)) D Var(ε | x_t)/(2σ_t²)
--   L_0: ½ D log(2πσ_1²) + (β_1/α_1) D Var(ε | x_1)/(2σ_1²)
-- with Var(ε | x_t) = 1 − (1 − ᾱ_t)/(ᾱ_t s² + 1 − ᾱ_t).  Returns the total and the terms.
local function expected_bound(sched, mu, sd, D, variance, v)
  local T, ab, b = sched.T, sched.alpha_bars, sched.betas
  local function var_eps(t) return 1 - (1 - ab[t]) / (ab[t] * sd * sd + 1 - ab[t]) end
  local function post(t) return (1 - ab[t - 1]) / (1 - ab[t]) * b[t] end
  local function sigma2(t)
    local bt = t > 1 and post(t) or (T > 1 and post(2) or b[1])
    if variance == "beta" then return b[t] end
    if variance == "beta_tilde" then return bt end
    return math.exp(v * math.log(b[t]) + (1 - v) * math.log(bt))
  end
  local terms = {}
  local prior = D / 2 * ((1 - ab[T]) + ab[T] * (mu * mu + sd * sd) - 1 - math.log(1 - ab[T]))
  local s1 = sigma2(1)
  terms[1] = D / 2 * math.log(2 * math.pi * s1) + D * b[1] / (1 - b[1]) * var_eps(1) / (2 * s1)
  local total = prior + terms[1]
  for t = 2, T do
    local s2, q = sigma2(t), post(t)
    terms[t] = D / 2 * (math.log(s2 / q) + q / s2 - 1) + b[t] ^ 2 / ((1 - b[t]) * (1 - ab[t])) * D * var_eps(t) / (2 * s2)
    total = total + terms[t]
  end
  return total, terms, prior
end

local function gaussian_data(n, D, mu, sd, seed)
  return sc.randn({ n, D }, { generator = sc.Generator(seed), dtype = "float64" }) * sd + mu
end

-- mean and standard error of the mean of a [N] tensor
local function mean_se(v)
  local n = v:size(1)
  local m = v:mean():item()
  return m, math.sqrt(((v - m):square():sum():item()) / (n - 1) / n)
end

local function schedule(T) return schedules.ddpm { T = T, beta_end = math.min(0.5, 0.02 * 1000 / T) } end

describe("the closed form used here", function()
  it("gives the exact NLL of N(0, I) for every T with σ² = β (the model's reverse chain is the true one)",
    function()
      for _, T in ipairs { 1, 2, 10, 1000 } do
        local total = expected_bound(schedule(T), 0, 1, 3, "beta")
        near(total, 1.5 * math.log(2 * math.pi * math.exp(1)), 1e-9, "T = " .. T)
      end
    end)

  it("lies above the NLL of N(0.5, 0.3²) and closes the gap as T grows (σ² = β)", function()
    local truth = math.log(2 * math.pi * math.exp(1) * 0.09)
    local last = math.huge
    for _, T in ipairs { 10, 100, 1000, 4000 } do
      local total = expected_bound(schedule(T), 0.5, 0.3, 2, "beta")
      local gap = total - truth
      assert(gap > 0 and gap < last, ("T = %d: gap %.5f after %.5f"):format(T, gap, last))
      last = gap
    end
    assert(last < 0.02, "gap at T = 4000: " .. last)
  end)
end)

describe("likelihood.ddpm_bound of the optimal model of Gaussian data", function()
  local D = 2

  for _, case in ipairs {
    { T = 10, mu = 0.5, sd = 0.3, variance = "beta" },
    { T = 10, mu = 0.5, sd = 0.3, variance = "beta_tilde" },
    { T = 10, mu = -0.2, sd = 0.8, variance = "learned", v = 0.3 },
    { T = 1, mu = 0.5, sd = 0.3, variance = "beta" },
    { T = 300, mu = 0.5, sd = 0.3, variance = "beta" },
  } do
    it(("matches the expected bound within 4 standard errors (T = %d, %s)"):format(case.T, case.variance), function()
      local sched = schedule(case.T)
      local n = 3000
      local x = gaussian_data(n, D, case.mu, case.sd, 10 + case.T)
      local model = case.v and optimal_learned(sched, case.mu, case.sd, case.v) or optimal_net(sched, case.mu, case.sd)
      local nll, info = likelihood.ddpm_bound(model, x, { schedule = sched, variance = case.variance,
        generator = sc.Generator(3) })
      assert.are.equal(case.variance, info.variance)
      local want, terms, prior = expected_bound(sched, case.mu, case.sd, D, case.variance, case.v)
      local m, se = mean_se(nll)
      assert(math.abs(m - want) < 4 * se and se < 0.02 * math.abs(want) + 0.05,
        ("bound %.5f ± %.5f, closed form %.5f"):format(m, se, want))
      -- the prior term (exact per point), against its expectation
      local pm, pse = mean_se(info.prior)
      assert(math.abs(pm - prior) < 4 * pse + 1e-12, ("prior term %.6f ± %.6f, closed form %.6f"):format(pm, pse, prior))
      near(pm, info.prior_nats, 1e-12, "prior_nats")
      -- the parts add up, in nats and in bits per dimension
      near(info.nats, info.prior_nats + info.decoder_nats + info.diffusion_nats, 1e-9, "parts")
      near(info.terms:sum():item(), info.steps_nats, 1e-9, "Σ terms")
      near(info.terms:values()[1], info.decoder_nats, 1e-12, "L0 is terms[1]")
      near(info.bpd_mean, info.nats / (D * math.log(2)), 1e-12, "bits per dimension")
      assert.are.same({ case.T }, info.terms:shape())
      assert.are.equal(case.T, info.nfe)
      -- the decoder term alone, against its own expectation
      local dm, dse = mean_se(info.decoder)
      assert(math.abs(dm - terms[1]) < 4 * dse, ("L0 %.5f ± %.5f, closed form %.5f"):format(dm, dse, terms[1]))
    end)
  end

  it("at T = 1000 matches the closed form, which is above the true NLL and within 0.03 nats (σ² = β)", function()
    local sched = schedule(1000)
    local x = gaussian_data(2000, D, 0.5, 0.3, 5)
    local nll = likelihood.ddpm_bound(optimal_net(sched, 0.5, 0.3), x, { schedule = sched, variance = "beta",
      generator = sc.Generator(4) })
    local truth = math.log(2 * math.pi * math.exp(1) * 0.09)
    local want = expected_bound(sched, 0.5, 0.3, D, "beta")
    local m, se = mean_se(nll)
    assert(math.abs(m - want) < 4 * se and se < 0.05, ("bound %.4f ± %.4f, closed form %.4f"):format(m, se, want))
    assert(want > truth and want < truth + 0.03, ("closed form %.4f, NLL %.4f"):format(want, truth))
  end)

  it("the Monte-Carlo estimate over t agrees with the exact sum in expectation", function()
    local sched = schedule(10)
    local x = gaussian_data(2000, D, 0.5, 0.3, 6)
    local nll, info = likelihood.ddpm_bound(optimal_net(sched, 0.5, 0.3), x, { schedule = sched, variance = "beta",
      estimator = "mc", t_samples = 50, generator = sc.Generator(8) })
    local want = expected_bound(sched, 0.5, 0.3, D, "beta")
    local m, se = mean_se(nll)
    assert(math.abs(m - want) < 4 * se and se < 0.1, ("mc %.4f ± %.4f, closed form %.4f"):format(m, se, want))
    assert.is_nil(info.terms)
    assert.are.equal(50, info.nfe)
  end)

  it("a worse model has a larger bound", function()
    local sched = schedule(20)
    local x = gaussian_data(500, D, 0.5, 0.3, 7)
    local good = likelihood.ddpm_bound(optimal_net(sched, 0.5, 0.3), x, { schedule = sched, generator = sc.Generator(1) })
    local bad = likelihood.ddpm_bound(optimal_net(sched, 0.3, 0.3), x, { schedule = sched, generator = sc.Generator(1) })
    assert(bad:mean():item() > good:mean():item() + 0.1)
  end)

  it("takes a wrapped model, and v = 0 / v = 1 give the β̃ / β bounds", function()
    local sched = schedule(10)
    local x = gaussian_data(200, D, 0.5, 0.3, 9)
    local function bound(m, o)
      o.schedule, o.generator = sched, sc.Generator(2)
      return likelihood.ddpm_bound(m, x, o)
    end
    local base = bound(optimal_net(sched, 0.5, 0.3), { variance = "beta_tilde" })
    local wrapped = likelihood.ddpm_bound(sc.param.wrap(optimal_net(sched, 0.5, 0.3), { kind = "eps", process = sched }),
      x, { generator = sc.Generator(2) })
    assert((wrapped - base):abs():max():item() < 1e-12)
    local v0 = bound(optimal_learned(sched, 0.5, 0.3, 0), {})
    local v1 = bound(optimal_learned(sched, 0.5, 0.3, 1), {})
    local beta = bound(optimal_net(sched, 0.5, 0.3), { variance = "beta" })
    assert((v0 - base):abs():max():item() < 1e-10)
    assert((v1 - beta):abs():max():item() < 1e-10)
  end)

  it("for 8-bit data the discretised decoder gives a bound above the data's entropy", function()
    -- each coordinate: N(0.1, 0.2²) rounded to the 256 levels k/127.5 − 1; entropy from the bin masses
    local mu, sd = 0.1, 0.2
    local function cdf(z) return 0.5 * (1 + (z >= 0 and 1 or -1) * (1 - sc.erfc(sc.tensor(math.abs(z) / math.sqrt(2),
      F64)):item())) end
    local H = 0
    for k = 0, 255 do
      local c = k / 127.5 - 1
      local lo = k == 0 and 0 or cdf((c - 1 / 255 - mu) / sd)
      local hi = k == 255 and 1 or cdf((c + 1 / 255 - mu) / sd)
      if hi > lo then H = H - (hi - lo) * math.log(hi - lo) end
    end
    local x = gaussian_data(2000, D, mu, sd, 11)
    x = sc.clamp(x, -1, 1)
    local v = x:values()
    for i = 1, #v do v[i] = math.floor((v[i] + 1) * 127.5 + 0.5) / 127.5 - 1 end
    x = sc.tensor(v, F64):view(2000, D)
    local sched = schedule(100)
    local nll, info = likelihood.ddpm_bound(optimal_net(sched, mu, sd), x, { schedule = sched, decoder = "discretized",
      variance = "beta", generator = sc.Generator(12) })
    local m, se = mean_se(nll)
    assert(m > D * H - 4 * se, ("bound %.4f ± %.4f, entropy %.4f"):format(m, se, D * H))
    assert(m < D * H + 0.5, ("bound %.4f far above the entropy %.4f"):format(m, D * H))
    assert(info.decoder:min():item() >= 0, "a discrete decoder's −log p is never negative")
  end)
end)

describe("pieces of the bound", function()
  it("normal_kl equals ∫ p log(p/q) by quadrature, for numbers and tensors", function()
    for _, c in ipairs { { 0, 1, 0, 1 }, { 0.3, 0.5, -0.2, 2 }, { 1, 0.01, 0.9, 0.02 }, { -1, 3, 2, 0.7 } } do
      local m1, v1, m2, v2 = c[1], c[2], c[3], c[4]
      local sd = math.sqrt(v1)
      local direct = simpson(function(x)
        local p = normal_pdf(x, m1, v1)
        return p * (math.log(p) - math.log(normal_pdf(x, m2, v2)))
      end, m1 - 12 * sd, m1 + 12 * sd, 4000)
      local kl = likelihood.normal_kl(m1, math.log(v1), m2, math.log(v2))
      near(kl, direct, 1e-9, "KL")
      local t = likelihood.normal_kl(sc.tensor({ m1, m1 }, F64), math.log(v1), sc.tensor({ m2, m2 }, F64),
        sc.tensor({ math.log(v2), math.log(v2) }, F64))
      near(t:values()[2], direct, 1e-9, "KL of tensors")
    end
  end)

  it("the discretised decoder's bin masses sum to 1 and match quadrature of the density", function()
    local levels = {}
    for k = 0, 255 do levels[k + 1] = k / 127.5 - 1 end
    local x = sc.tensor(levels, F64):view(1, 256)
    for _, c in ipairs { { 0.13, 0.05 }, { -0.99, 0.003 }, { 1.3, 0.2 }, { 0.0, 1e-4 }, { 0.5, 2.0 } } do
      local mean = x * 0 + c[1]
      local lp = likelihood.discretized_gaussian_log_likelihood(x, mean, math.log(c[2] ^ 2))
      local p = lp:exp():values()
      local sum = 0
      for i = 1, 256 do sum = sum + p[i] end
      near(sum, 1, 1e-6, ("Σ masses for μ = %g, σ = %g"):format(c[1], c[2]))
      -- interior bins against Simpson on [x − 1/255, x + 1/255]
      for _, k in ipairs { 20, 128, 145, 200 } do
        local centre = levels[k + 1]
        local want = simpson(function(u) return normal_pdf(u, c[1], c[2] ^ 2) end, centre - 1 / 255, centre + 1 / 255, 400)
        if want > 1e-10 then near(p[k + 1] / want, 1, 1e-6, ("bin %d, μ = %g, σ = %g"):format(k, c[1], c[2])) end
      end
    end
  end)

  it("the prior term equals its closed form, a Monte-Carlo KL, and ‖x₀‖²/(2σ_max²) for VE", function()
    local x = sc.tensor({ { 2.0, -1.0 }, { 0.3, 0.1 }, { -4, 4 } }, F64)
    local pts = x:totable()
    local sched = schedules.ddpm { T = 1000 }
    local ab = sched.alpha_bars[1000]
    local kl = likelihood.prior_kl(sched, x):values()
    for i, p in ipairs(pts) do
      local want = 0
      for _, xi in ipairs(p) do want = want + 0.5 * ((1 - ab) + ab * xi * xi - 1 - math.log(1 - ab)) end
      near(kl[i], want, 1e-12, "DDPM prior term")
    end
    -- VE: the marginal at T is N(x₀, σ_max²), the prior N(0, σ_max²)
    for _, smax in ipairs { 1, 3, 50 } do
      local v = likelihood.prior_kl(schedules.ve_sde { sigma_max = smax, sigma_min = 0.01 }, x):values()
      for i, p in ipairs(pts) do near(v[i], (p[1] ^ 2 + p[2] ^ 2) / (2 * smax ^ 2), 1e-12, "VE prior term") end
    end
    -- VP: against a Monte-Carlo estimate of E_q[log q − log p]
    local vp = schedules.vp_sde { beta_max = 2 }   -- a short VP process: a visible mismatch
    local a, s = vp:marginal(1)
    local n = 200000
    local z = sc.randn({ n, 2 }, { generator = sc.Generator(1), dtype = "float64" })
    local xT = z * s + sc.tensor({ { 2.0, -1.0 } }, F64) * a
    local logq = z:square():sum(2) * -0.5 - 2 * math.log(s)
    local logp = xT:square():sum(2) * -0.5
    local mc, se = mean_se(logq - logp)
    local exact = likelihood.prior_kl(vp, sc.tensor({ { 2.0, -1.0 } }, F64)):item()
    assert(math.abs(mc - exact) < 4 * se, ("VP prior term %.5f, Monte Carlo %.5f ± %.5f"):format(exact, mc, se))
    assert(exact > 0.5)
  end)

  it("a VE process whose σ_max is too small shows a large prior term; nll reports it", function()
    local data = sc.data.eight_gaussians()
    local x = data:sample(500, { generator = sc.Generator(2), dtype = "float64" })
    local small = likelihood.prior_kl(schedules.ve_sde { sigma_max = 1 }, x):mean():item()
    local wide = likelihood.prior_kl(schedules.ve_sde { sigma_max = 50 }, x):mean():item()
    local r2 = x:square():sum(2):mean():item()
    near(small, r2 / 2, 1e-9, "σ_max = 1")
    assert(small > 1 and wide < 1e-2, ("%g, %g"):format(small, wide))
    local gauss = sc.data.gaussian_mixture { means = { { 1.0, -2.0 } }, covs = { { { 0.5, 0 }, { 0, 0.5 } } } }
    local xs = x:narrow(1, 1, 5)
    local sde = schedules.ve_sde { sigma_max = 2 }
    local _, info = likelihood.nll(gauss, sde, xs)
    assert((info.prior_kl - likelihood.prior_kl(sde, xs)):abs():max():item() == 0)
  end)

  it("the posterior q(x_{t−1} | x_t, x₀) is the product of the two Gaussians (Bayes)", function()
    local sched = schedules.ddpm { T = 50 }
    for _, t in ipairs { 1, 2, 17, 50 } do
      local c0, ct, var = sched:posterior(t)
      local prev = t > 1 and sched.alpha_bars[t - 1] or 1
      local b = sched.betas[t]
      -- x_{t−1} ~ N(√ᾱ_{t−1} x₀, 1 − ᾱ_{t−1}), x_t | x_{t−1} ~ N(√α_t x_{t−1}, β_t)
      if t > 1 then
        local prec = 1 / (1 - prev) + (1 - b) / b
        near(var, 1 / prec, 1e-15, "variance")
        near(c0, math.sqrt(prev) / (1 - prev) / prec, 1e-13, "x0 coefficient")
        near(ct, math.sqrt(1 - b) / b / prec, 1e-13, "xt coefficient")
      else
        near(var, 0, 0, "β̃_1")
        near(c0, 1, 1e-10, "x0 coefficient at t = 1")
      end
    end
  end)

  it("learned variances interpolate log β̃ (v = 0) and log β (v = 1); t = 1 uses β̃_2", function()
    local sched = schedules.ddpm { T = 100 }
    for _, t in ipairs { 2, 50, 100 } do
      near(sched:reverse_log_variance(t, "learned", 0), math.log(sched:beta_tilde(t)), 1e-15, "v = 0")
      near(sched:reverse_log_variance(t, "learned", 1), math.log(sched.betas[t]), 1e-15, "v = 1")
      near(sched:reverse_log_variance(t, "learned", 0.25),
        0.25 * math.log(sched.betas[t]) + 0.75 * math.log(sched:beta_tilde(t)), 1e-14, "v = 0.25")
    end
    near(sched:reverse_log_variance(1, "beta_tilde"), math.log(sched:beta_tilde(2)), 1e-15, "t = 1")
    near(sched:reverse_log_variance(1, "beta"), math.log(sched.betas[1]), 1e-15, "β_1")
    near(schedules.ddpm { T = 1 }:reverse_log_variance(1, "beta_tilde"), math.log(1e-4), 1e-15, "T = 1")
    -- a column of timesteps gives the same numbers, row by row
    local ts = sc.tensor({ { 1 }, { 2 }, { 50 }, { 100 } }, F64)
    local v = sc.tensor({ { 0.3 }, { -0.5 }, { 1.2 }, { 0.7 } }, F64)
    local got = sched:reverse_log_variance(ts, "learned", v):values()
    local vs = v:values()
    for i, t in ipairs { 1, 2, 50, 100 } do
      near(got[i], sched:reverse_log_variance(t, "learned", vs[i]), 1e-14, "column row " .. i)
    end
  end)
end)

describe("the hybrid loss (Nichol & Dhariwal 2021)", function()
  local sched = schedules.ddpm { T = 40 }
  local function net()
    local m = sc.models.DiffusionMLP { width = 16, blocks = 1, embed = 8, learn_variance = true, dtype = "float64",
      generator = sc.Generator(5) }
    -- a non-zero variance head, so v varies
    sc.no_grad(function()
      m.variance_output.weight:copy_(sc.randn({ 2, 16 }, { generator = sc.Generator(6), dtype = "float64" }) * 0.1)
    end)
    return m
  end
  local x = gaussian_data(64, 2, 0.5, 0.3, 13)
  local function loss(m, lambda)
    return sc.losses.ddpm(m, x, { schedule = sched, generator = sc.Generator(21), vlb_weight = lambda })
  end

  it("L_vlb reaches only the variance head, L_simple only the mean head", function()
    local m = net()
    local simple = loss(m, 0)
    local g0 = sc.grad({ simple }, { m.output.weight, m.variance_output.weight }, { allow_unused = true })
    local hybrid, parts = loss(m, 0.001)
    local g1 = sc.grad({ hybrid }, { m.output.weight, m.variance_output.weight })
    near(parts.simple, simple:item(), 1e-14, "L_simple part")
    near(hybrid:item(), parts.simple + 0.001 * parts.vlb, 1e-12, "L_simple + λ L_vlb")
    assert((g1[1] - g0[1]):abs():max():item() < 1e-14, "the mean head's gradient changed")
    assert(g0[2] == nil or g0[2]:abs():max():item() == 0, "L_simple reached the variance head")
    assert(g1[2]:abs():max():item() > 1e-6, "L_vlb did not reach the variance head")
  end)

  it("its gradient in the variance head matches finite differences", function()
    local m = net()
    local bias = m.variance_output.bias
    local g = sc.grad({ (loss(m, 0.001)) }, { bias })[1]:values()
    local h = 1e-6
    for i = 1, 2 do
      local function at(delta)
        sc.no_grad(function()
          local b = bias:detach():values()
          b[i] = b[i] + delta
          bias:copy_(sc.tensor(b, F64))
        end)
        return loss(m, 0.001):item()
      end
      local up, down = at(h), at(-2 * h)
      at(h)
      near(g[i], (up - down) / (2 * h), 1e-6 * math.max(1, math.abs(g[i])), "∂loss/∂b_" .. i)
    end
  end)

  it("L_vlb is T times the sampled term, in bits per dimension", function()
    local m = net()
    local _, parts = loss(m, 0.001)
    -- redo the loss's draws: t then ε, from the same generator
    local gen = sc.Generator(21)
    local t = sc.randint(1, sched.T + 1, { 64, 1 }, { generator = gen, dtype = "float64" })
    local eps = sc.randn({ 64, 2 }, { generator = gen, dtype = "float64" })
    local a, s = sched:marginal(t)
    local xt = x * a + eps * s
    local out, v = m:forward_variance(xt, sc.param.level(t, xt))
    local term = likelihood.ddpm_term(sched, x, xt, t, out, sched:reverse_log_variance(t, "learned", v))
    near(parts.vlb, term:mean():item() * sched.T / (2 * math.log(2)), 1e-10, "L_vlb")
  end)
end)

describe("ancestral sampling with learned variances", function()
  local sched = schedules.ddpm { T = 30 }
  local function sample(m, variance, steps)
    local w = sc.param.wrap(m, { kind = "eps", process = sched })
    local g = sc.Generator(3)
    return sc.samplers.ddpm(w, sc.samplers.prior(sched, { 50, 2 }, { generator = g, dtype = "float64" }), sched,
      { variance = variance, generator = g, steps = steps })
  end

  it("v = 0 samples as β̃ and v = 1 as β, also on respaced steps", function()
    local m = sc.models.DiffusionMLP { width = 8, blocks = 1, embed = 4, learn_variance = true, dtype = "float64",
      generator = sc.Generator(1) }
    for _, steps in ipairs { 30, 7 } do
      local v0 = sample(m, "learned", steps)
      assert((v0 - sample(m, "beta_tilde", steps)):abs():max():item() < 1e-12)
      sc.no_grad(function() m.variance_output.bias:fill_(1) end)
      local v1 = sample(m, "learned", steps)
      assert((v1 - sample(m, "beta", steps)):abs():max():item() < 1e-12)
      assert((v1 - v0):abs():max():item() > 1e-3)
      sc.no_grad(function() m.variance_output.bias:fill_(0) end)
    end
  end)

  it("needs a network that learns its variances", function()
    local m = sc.models.DiffusionMLP { width = 8, blocks = 1, embed = 4, generator = sc.Generator(1) }
    assert.has_error(function() sample(m, "learned") end,
      "scorch.samplers.ddpm: variance \"learned\" needs a model whose network learns its variances"
      .. " (e.g. sc.param.wrap(DiffusionMLP{learn_variance = true}, ...))")
  end)
end)

describe("bad input", function()
  local sched = schedule(5)
  local net = optimal_net(sched, 0, 1)
  local x = gaussian_data(4, 2, 0, 1, 1)

  it("names the function and the problem", function()
    local function fails(pattern, f)
      local ok, err = pcall(f)
      assert(not ok, "no error for " .. pattern)
      assert(tostring(err):find(pattern, 1, true), tostring(err))
    end
    fails("scorch.likelihood.ddpm_bound: x0 must be a batch [N, ...] (got [8])",
      function() likelihood.ddpm_bound(net, sc.zeros(8), { schedule = sched }) end)
    fails("scorch.likelihood.ddpm_bound: x0 holds NaN or infinite values",
      function() likelihood.ddpm_bound(net, x / 0, { schedule = sched }) end)
    fails("the discretized decoder needs 8-bit data scaled to [-1, 1]",
      function() likelihood.ddpm_bound(net, x, { schedule = sched, decoder = "discretized" }) end)
    fails("scorch.likelihood.ddpm_bound: unknown option",
      function() likelihood.ddpm_bound(net, x, { schedule = sched, steps = 3 }) end)
    fails("variance \"learned\" needs a network with learned variances",
      function() likelihood.ddpm_bound(net, x, { schedule = sched, variance = "learned" }) end)
    fails("needs a DDPM schedule", function() likelihood.ddpm_bound(net, x) end)
    fails("t_samples is for estimator = \"mc\"",
      function() likelihood.ddpm_bound(net, x, { schedule = sched, t_samples = 3 }) end)
    fails("scorch.likelihood.prior_kl: process must be a DDPM schedule or an SDE",
      function() likelihood.prior_kl({}, x) end)
    fails("scorch.likelihood.normal_kl: the arguments do not broadcast (shapes [3], number, [2], number)",
      function() likelihood.normal_kl(sc.zeros(3), 0, sc.zeros(2), 0) end)
    fails("scorch.likelihood.discretized_gaussian_log_likelihood: x [4,2] and mean [4,1] must have one shape",
      function() likelihood.discretized_gaussian_log_likelihood(x, sc.zeros(4, 1), 0) end)
    fails("scorch.losses.ddpm: vlb_weight needs a network with learned variances",
      function() sc.losses.ddpm(net, x, { schedule = sched, vlb_weight = 0.001 }) end)
    fails("scorch.schedules.ddpm:reverse_log_variance: variance must be",
      function() sched:reverse_log_variance(2, "small") end)
    fails("scorch.models.DiffusionMLP: learn_variance must be true or false",
      function() sc.models.DiffusionMLP { learn_variance = 1 } end)
  end)
end)
