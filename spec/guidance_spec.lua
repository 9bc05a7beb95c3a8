-- Guidance against the truth of a labelled 2-D Gaussian mixture, whose
-- conditional scores ∇ log N(x; μ_k, Σ_k + σ²I) and Bayes classifier are
-- exact: classifier-free guidance at w = 0 samples each component (mean
-- and covariance), the exact classifier's guidance of the unconditional
-- score is the conditional score (pointwise and in samples), guidance
-- with w > 0 shrinks each class's spread, CFG is one batched call, and
-- every sampler takes a guided model.
local sc = require "scorch"
local S = sc.samplers

-- Three overlapping components with full covariances (the classes 1..3).
local MEANS = { { -1, 0 }, { 1, 0 }, { 0, 1.5 } }
local COVS = { { { 0.25, 0.1 }, { 0.1, 0.16 } }, { { 0.16, 0 }, { 0, 0.3 } }, { { 0.2, -0.05 }, { -0.05, 0.1 } } }
local gm = sc.data.gaussian_mixture { means = MEANS, covs = COVS, weights = { 0.5, 0.3, 0.2 } }
local exact = sc.param.wrap(sc.models.mixture_score(gm), { kind = "score" })   -- label 0: the marginal
local marginal = sc.param.wrap(gm)                                             -- an unconditional model
local bayes = sc.models.mixture_classifier(gm)

local function moments(x)
  local mu = x:mean(1, true)
  local d = x - mu
  return mu:values(), (sc.matmul(d:t(), d) / (x:size(1) - 1)):values()
end

local SIGMAS = sc.schedules.karras_sigmas(25, { sigma_max = 20 })
local SCHED = sc.schedules.ddpm {}
local function heun(m, n, seed)
  local g = sc.Generator(seed)
  return S.heun(m, S.prior(SIGMAS, { n, 2 }, { generator = g }), SIGMAS, { generator = g })
end
local function ddpm(m, n, seed)
  local g = sc.Generator(seed)
  return S.ddpm(m, S.prior(SCHED, { n, 2 }, { generator = g }), SCHED, { generator = g, steps = 200 })
end

describe("classifier-free guidance at w = 0 with exact conditional scores", function()
  for _, case in ipairs { { "heun (25 levels)", heun }, { "ddpm (200 ancestral steps)", ddpm } } do
    it("samples each component's mean and covariance, " .. case[1], function()
      for k = 1, 3 do
        local x = case[2](sc.param.guided(exact, { cond = k, w = 0 }), 3000, 10 + k)
        local mu, C = moments(x)
        for d = 1, 2 do
          assert(math.abs(mu[d] - MEANS[k][d]) < 0.05, ("class %d: mean[%d] %.4f, truth %.4f"):format(k, d, mu[d],
            MEANS[k][d]))
        end
        local truth = { COVS[k][1][1], COVS[k][1][2], COVS[k][2][1], COVS[k][2][2] }
        for i = 1, 4 do
          assert(math.abs(C[i] - truth[i]) < 0.04, ("class %d: cov[%d] %.4f, truth %.4f"):format(k, i, C[i], truth[i]))
        end
      end
    end)
  end
end)

describe("classifier guidance with the exact classifier", function()
  local x = sc.randn({ 64, 2 }, { generator = sc.Generator(3) }) * 1.5
  local vp = sc.schedules.vp_sde()
  it("at scale 1 turns the unconditional score into the conditional one, in every view", function()
    for k = 1, 3 do
      local g = sc.param.guided(marginal, { cond = k, classifier = bayes })
      local c = exact:with_cond(k)
      local lv = sc.param.level(0.7, x)
      local diffs = {
        (g:denoise(x, 0.7) - c:denoise(x, 0.7)):abs():max():item(),
        (g:score_sigma(x, lv) - c:score_sigma(x, lv)):abs():max():item(),
        (g:score(x, 0.3, vp) - c:score(x, 0.3, vp)):abs():max():item(),
        (g:eps(x, 300, SCHED) - c:eps(x, 300, SCHED)):abs():max():item(),
      }
      for i, d in ipairs(diffs) do assert(d < 2e-5, ("class %d, view %d: max |difference| %g"):format(k, i, d)) end
      -- the scale matters: at 2 the answer moves by the classifier's gradient again
      local g2 = sc.param.guided(marginal, { cond = k, classifier = bayes, classifier_scale = 2 })
      assert.is_true((g2:denoise(x, 0.7) - c:denoise(x, 0.7)):abs():max():item() > 0.05)
    end
  end)

  it("at scale 1 draws the same samples as exact conditional sampling (same seed)", function()
    local a = heun(sc.param.guided(marginal, { cond = 3, classifier = bayes }), 2000, 7)
    local b = heun(exact:with_cond(3), 2000, 7)
    assert.is_true((a - b):abs():max():item() < 1e-3)
    local mu = moments(a)
    assert.is_true(math.abs(mu[1] - 0) < 0.05 and math.abs(mu[2] - 1.5) < 0.05)
  end)

  it("on a conditional network's null class with w = -1 is the same construction", function()
    local g = sc.param.guided(exact, { cond = 2, w = -1, classifier = bayes })
    assert.is_true((g:denoise(x, 1.3) - exact:with_cond(2):denoise(x, 1.3)):abs():max():item() < 2e-5)
  end)
end)

describe("a noise-conditional classifier trained on noisy data", function()
  local clf = sc.models.NoisyClassifier { classes = 3, hidden = { 64, 64 }, generator = sc.Generator(1) }
  local g = sc.Generator(2)
  sc.util.train(clf, function()
    local x, y = gm:sample(256, { generator = g })
    return clf:noisy_loss(x, y, { generator = g })
  end, { steps = 1500, lr = 3e-3 })
  clf:eval()

  it("approaches the Bayes posterior p(k | x, σ) at every level", function()
    -- measured: mean |difference| 0.006, 0.008, 0.013, 0.007
    for _, s in ipairs { 0.05, 0.5, 2, 8 } do
      local x = gm:sample(4000, { generator = g }) + sc.randn({ 4000, 2 }, { generator = g }) * s
      local diff = (sc.softmax(bayes(x, s), 2) - sc.softmax(clf(x, s), 2)):abs():mean():item()
      assert(diff < 0.03, ("σ = %g: mean |p − p_Bayes| = %.4f"):format(s, diff))
    end
  end)

  it("guides the unconditional score to each class", function()
    for k = 1, 3 do
      local mu = moments(heun(sc.param.guided(marginal, { cond = k, classifier = clf }), 2000, 40 + k))
      for d = 1, 2 do
        assert(math.abs(mu[d] - MEANS[k][d]) < 0.08, ("class %d: mean[%d] %.4f, truth %.4f"):format(k, d, mu[d],
          MEANS[k][d]))
      end
    end
  end)
end)

describe("guidance strength", function()
  -- trace of the sample covariance per class and w; measured (1500 points), class 1:
  -- heun 0.417, 0.263, 0.189, 0.152 at w = 0, 1, 3, 6; ddpm 0.432, 0.350, 0.336 at w = 0, 1, 3
  -- (truth at w = 0: 0.41).  The stochastic sampler saturates sooner, so it stops at w = 3.
  local function trace(x)
    local _, C = moments(x)
    return C[1] + C[4]
  end
  for _, case in ipairs { { "heun", heun, { 0, 1, 3, 6 } }, { "ddpm", ddpm, { 0, 0.5, 1, 3 } } } do
    it("w > 0 shrinks each class's spread monotonically (" .. case[1] .. ")", function()
      for k = 1, 3 do
        local prev, spreads = math.huge, {}
        for _, w in ipairs(case[3]) do
          local t = trace(case[2](sc.param.guided(exact, { cond = k, w = w }), 1500, 20 + k))
          spreads[#spreads + 1] = ("%.3f"):format(t)
          assert(t < prev, ("class %d: spreads %s not decreasing"):format(k, table.concat(spreads, ", ")))
          prev = t
        end
        local truth = COVS[k][1][1] + COVS[k][2][2]
        assert(tonumber(spreads[1]) < 1.1 * truth + 0.02 and tonumber(spreads[#spreads]) < 0.85 * truth,
          ("class %d: spreads %s, truth at w = 0 %.3f"):format(k, table.concat(spreads, ", "), truth))
      end
    end)
  end
end)

describe("the classifier-free construction", function()
  local x = sc.randn({ 32, 2 }, { generator = sc.Generator(4) })
  it("is ε̃ = (1 + w) ε(x, c) − w ε(x, ∅) from one network call on the stacked batch", function()
    local calls, rows = 0, 0
    local net = sc.models.mixture_score(gm)
    local counting = setmetatable({ classes = 3, null_class = true, prediction = "score" }, {
      __call = function(_, xx, c, y)
        calls, rows = calls + 1, rows + xx:size(1)
        return net(xx, c, y)
      end })
    local m = sc.param.wrap(counting, { kind = "score" })
    local labels = {}
    for i = 1, 32 do labels[i] = (i - 1) % 3 + 1 end
    local g = sc.param.guided(m, { cond = labels, w = 2 })
    local e = g:eps(x, 400, SCHED)
    assert.are.equal(1, calls)
    assert.are.equal(64, rows)
    local y = g.guidance.cond
    local want = exact:with_cond(y):eps(x, 400, SCHED) * 3 - exact:eps(x, 400, SCHED) * 2
    assert.is_true((e - want):abs():max():item() < 1e-5)
  end)

  it("takes w as a schedule over noise levels (guidance on an interval)", function()
    local w = sc.param.guidance_interval(3, 0.5, 2)
    local g = sc.param.guided(exact, { cond = 1, w = w })
    local g3 = sc.param.guided(exact, { cond = 1, w = 3 })
    local c = exact:with_cond(1)
    assert.is_true((g:denoise(x, 1) - g3:denoise(x, 1)):abs():max():item() < 1e-6)
    assert.is_true((g:denoise(x, 5) - c:denoise(x, 5)):abs():max():item() < 1e-6)
    assert.is_true((g3:denoise(x, 5) - c:denoise(x, 5)):abs():max():item() > 1e-3)
    -- per-point levels: each row guided by w at its own σ
    local lv = sc.tensor({ { 1 }, { 5 } })
    local two = x:narrow(1, 1, 2)
    local mixed = g:denoise(two, lv)
    assert.is_true((mixed:narrow(1, 1, 1) - g3:denoise(two, 1):narrow(1, 1, 1)):abs():max():item() < 1e-6)
    assert.is_true((mixed:narrow(1, 2, 1) - c:denoise(two, 5):narrow(1, 2, 1)):abs():max():item() < 1e-6)
  end)

  it("is reproducible: the same seed gives the same samples", function()
    local g = sc.param.guided(exact, { cond = 2, w = 1.5 })
    assert.are.same(ddpm(g, 50, 9):values(), ddpm(g, 50, 9):values())
  end)
end)

describe("every sampler takes a guided model", function()
  local N = 1000
  local lv = sc.schedules.geometric_sigmas(20, 0.01, 10)
  local vp = sc.schedules.vp_sde()
  local runs = {
    ddpm = function(m, g)
      return S.ddpm(m, S.prior(SCHED, { N, 2 }, { generator = g }), SCHED, { generator = g, steps = 100 })
    end,
    ddim = function(m, g) return S.ddim(m, S.prior(SCHED, { N, 2 }, { generator = g }), SCHED, { steps = 100 }) end,
    heun = function(m, g)
      return S.heun(m, S.prior(SIGMAS, { N, 2 }, { generator = g }), SIGMAS, { generator = g })
    end,
    dpmpp_2m = function(m, g) return S.dpmpp_2m(m, S.prior(SIGMAS, { N, 2 }, { generator = g }), SIGMAS) end,
    naive_backward = function(m, g)
      return S.naive_backward(m, S.prior(SIGMAS, { N, 2 }, { generator = g }), SIGMAS, { generator = g,
        method = "ancestral" })
    end,
    euler_maruyama = function(m, g)
      return S.euler_maruyama(m, S.prior(vp, { N, 2 }, { generator = g }), vp, { generator = g, steps = 200 })
    end,
    probability_flow = function(m, g)
      return S.probability_flow(m, S.prior(vp, { N, 2 }, { generator = g }), vp, { method = "heun", steps = 50 })
    end,
    annealed_langevin = function(m, g)
      return S.annealed_langevin(m, S.prior(lv, { N, 2 }, { generator = g }), lv, { generator = g,
        step_size = 5e-5, steps_per_level = 30, progress = false })
    end,
  }
  for name, run in pairs(runs) do
    it(name .. ": w = 0 lands on the class mean, w = 2 moves away from the other classes", function()
      local x0 = run(sc.param.guided(exact, { cond = 3, w = 0 }), sc.Generator(31))
      local x2 = run(sc.param.guided(exact, { cond = 3, w = 2 }), sc.Generator(31))
      local m0, m2 = moments(x0), moments(x2)
      assert(math.abs(m0[1]) < 0.06 and math.abs(m0[2] - 1.5) < 0.06, ("mean %.3f, %.3f"):format(m0[1], m0[2]))
      -- the other classes sit below (y = 0): guidance pushes class 3 up
      assert(m2[2] > m0[2] + 0.05, ("mean y %.3f at w = 2, %.3f at w = 0"):format(m2[2], m0[2]))
    end)
  end
end)

describe("bad input", function()
  local x = sc.randn(5, 2)
  local function fails(pattern, f)
    local ok, err = pcall(f)
    assert.is_false(ok)
    assert(tostring(err):find(pattern, 1, true), "message: " .. tostring(err))
  end
  it("names the function and the argument", function()
    fails("scorch.param.guided: cond = 4 is out of range", function() sc.param.guided(exact, { cond = 4, w = 1 }) end)
    fails("scorch.param.guided: cond has 3 values for a batch of 5", function()
      sc.param.guided(exact, { cond = { 1, 2, 3 }, w = 1 }):denoise(x, 1)
    end)
    fails("cond[2] = 7 is out of range", function()
      sc.param.guided(exact, { cond = { 1, 7, 1, 1, 1 } }):denoise(x, 1)
    end)
    fails("scorch.param.guided: w must be a finite number", function()
      sc.param.guided(exact, { cond = 1, w = math.huge })
    end)
    fails("scorch.param.guided: w must be a finite number", function()
      sc.param.guided(exact, { cond = 1, w = 0 / 0 })
    end)
    fails("is not a finite number", function()
      sc.param.guided(exact, { cond = 1, w = function() return 0 / 0 end }):denoise(x, 1)
    end)
    fails("scorch.param.guided: classifier_scale must be a finite number", function()
      sc.param.guided(marginal, { cond = 1, classifier = bayes, classifier_scale = -math.huge })
    end)
    fails("classifier-free guidance (w) needs a class-conditional model", function()
      sc.param.guided(marginal, { cond = 1, w = 2 })
    end)
    local no_null = sc.models.DiffusionMLP { classes = 3, p_uncond = 0, width = 8, generator = sc.Generator(1) }
    fails("needs a null class; this model was built with p_uncond = 0", function()
      sc.param.guided(sc.param.wrap(no_null, { kind = "eps", process = SCHED }), { cond = 1, w = 2 })
    end)
    fails("scorch.param.guided: model (argument #1) must be a wrapped model", function()
      sc.param.guided(no_null, { cond = 1 })
    end)
    fails("scorch.param.guided: unknown option 'scale'", function()
      sc.param.guided(exact, { cond = 1, scale = 2 })
    end)
    fails("scorch.param.guided: cond (the requested classes) is required", function()
      sc.param.guided(exact, { w = 1 })
    end)
  end)
end)
