-- sc.losses: score-matching objectives.  Values against hand-written
-- formulas, training a Gaussian score model s(x) = −P(x − μ) to the known
-- optimum with each loss, and gradcheck of every loss in its parameters.
local sc = require "scorch"

local function close(a, b, tol) return math.abs(a - b) <= tol end

-- s(x) = −(x − μ) Pᵀ, the score family of Gaussians N(μ, P⁻¹)
local function gaussian_model(mu, P)
  return function(x) return -sc.matmul(x - mu, P:t()) end
end

local function inv2(C)
  local det = C[1][1] * C[2][2] - C[1][2] * C[2][1]
  return { { C[2][2] / det, -C[1][2] / det }, { -C[2][1] / det, C[1][1] / det } }
end

describe("sc.losses values", function()
  local g = sc.Generator(1)
  local x = sc.randn(64, 2, { generator = g, dtype = "float64" })
  local mu = sc.tensor({ 0.3, -0.2 }, { dtype = "float64" })
  local P = sc.tensor({ { 1.5, 0.2 }, { -0.4, 0.8 } }, { dtype = "float64" })
  local model = gaussian_model(mu, P)
  local s = model(x)
  local half_sq = (s:square():sum(2, false) * 0.5):mean():item()

  it("esm is ½ mean ‖s − s*‖²", function()
    local target = sc.randn(64, 2, { generator = g, dtype = "float64" })
    local v = sc.losses.esm(model, x, { target = target }):item()
    assert.is_true(close(v, ((s - target):square():sum() * (0.5 / 64)):item(), 1e-12))
    local d = sc.data.two_gaussians()
    local v2 = sc.losses.esm(model, x, { data = d }):item()
    assert.is_true(close(v2, ((s - d:score(x)):square():sum() * (0.5 / 64)):item(), 1e-12))
    local v3 = sc.losses.esm(model, x, { score = function(z) return d:score(z) end }):item()
    assert.is_true(close(v2, v3, 1e-12))
  end)

  it("ism with the exact trace: −tr P + ½‖s‖² for the linear model", function()
    local v = sc.losses.ism(model, x):item()
    assert.is_true(close(v, -(1.5 + 0.8) + half_sq, 1e-10))
  end)

  it("Hutchinson's trace is exact with Rademacher vectors and a diagonal Jacobian", function()
    local D = sc.tensor({ { 2, 0 }, { 0, 0.5 } }, { dtype = "float64" })
    local m = gaussian_model(mu, D)
    local exact = sc.losses.ism(m, x):item()
    local hutch = sc.losses.ism(m, x, { estimator = "hutchinson", generator = g }):item()
    assert.is_true(close(exact, hutch, 1e-10))
    -- and unbiased in general: many Gaussian probes approach the exact value
    local big = x:narrow(1, 1, 4):unsqueeze(1):expand(2000, 4, 2):reshape(8000, 2)
    local e = sc.losses.ism(model, big):item()
    local h = sc.losses.ism(model, big, { estimator = "hutchinson", projection = "gaussian", generator = g }):item()
    assert.is_true(close(e, h, 0.08), ("exact %g, hutchinson %g"):format(e, h))
  end)

  it("ssm and ssm_vr estimate the ism objective (many projections)", function()
    local exact = sc.losses.ism(model, x):item()
    for _, proj in ipairs { "gaussian", "rademacher" } do
      local a = sc.losses.ssm(model, x, { n_projections = 400, projection = proj, generator = g }):item()
      local b = sc.losses.ssm_vr(model, x, { n_projections = 400, projection = proj, generator = g }):item()
      assert.is_true(close(a, exact, 0.05), ("%s ssm %g vs %g"):format(proj, a, exact))
      assert.is_true(close(b, exact, 0.05), ("%s ssm_vr %g vs %g"):format(proj, b, exact))
    end
    -- with one projection: ssm = mean(vᵀ(−P)v + ½(vᵀs)²), checked by hand
    local v = sc.losses.projections({ 64, 2 }, "gaussian", sc.Generator(3), "float64")
    local a = sc.losses.ssm(model, x, { generator = sc.Generator(3) }):item()
    local first = (sc.matmul(v, P:t()) * v):sum(2, false) * -1
    local second = (s * v):sum(2, false):square() * 0.5
    assert.is_true(close(a, (first + second):mean():item(), 1e-10))
  end)

  it("dsm at one σ is ½ mean ‖s(x + σz, σ) + z/σ‖², the model seeing σ as [N, 1]", function()
    local seen
    local m = function(xt, sigma)
      seen = sigma
      return model(xt)
    end
    local v = sc.losses.dsm(m, x, { sigma = 0.5, generator = sc.Generator(4) }):item()
    local z = sc.randn(64, 2, { generator = sc.Generator(4), dtype = "float64" })
    local expect = ((model(x + z * 0.5) + z / 0.5):square():sum(2, false) * 0.5):mean():item()
    assert.is_true(close(v, expect, 1e-10))
    assert.are.same({ 64, 1 }, seen:shape())
    assert.is_true(close(seen:min():item(), 0.5, 0) and close(seen:max():item(), 0.5, 0))
  end)

  it("dsm over levels draws one level per example and weights by σ²", function()
    local levels = { 4, 2, 1, 0.5 }
    local seen
    local m = function(xt, sigma)
      seen = sigma
      return sc.zeros(xt:shape(), { dtype = "float64" })
    end
    -- with s = 0 the per-example loss is ½σ²‖z/σ‖² = ½‖z‖²: weighting by σ² cancels σ
    local v = sc.losses.dsm(m, x, { sigmas = levels, generator = sc.Generator(5) }):item()
    local used = {}
    for _, lvl in ipairs(seen:values()) do used[lvl] = true end
    local n = 0
    for _, l in ipairs(levels) do if used[l] then n = n + 1 end end
    assert.are.equal(4, n)
    -- the same draws as the loss: levels first, then the noise
    local gen = sc.Generator(5)
    sc.rand(64, { generator = gen, dtype = "float64" })
    local z = sc.randn(64, 2, { generator = gen, dtype = "float64" })
    assert.is_true(close(v, (z:square():sum(2, false) * 0.5):mean():item(), 1e-10))
    local none = sc.losses.dsm(m, x, { sigmas = levels, weighting = "none", generator = sc.Generator(5) }):item()
    local expect = ((z / seen):square():sum(2, false) * 0.5):mean():item()
    assert.is_true(close(none, expect, 1e-9))
  end)

  it("rejects missing targets, noise levels and bad options", function()
    assert.has_error(function() sc.losses.esm(model, x) end)
    assert.has_error(function() sc.losses.dsm(model, x) end)
    assert.has_error(function() sc.losses.ism(model, x, { estimator = "magic" }) end)
    assert.has_error(function() sc.losses.ssm(model, x, { projection = "uniform" }) end)
    assert.has_error(function() sc.losses.esm(model, sc.zeros(3), { target = sc.zeros(3) }) end)
    assert.has_error(function() sc.losses.dsm(model, x, { sigmas = {} }) end)
  end)
end)

describe("sc.losses train a Gaussian score model to the known optimum", function()
  -- data N(μ*, Σ*); on a fixed sample the exact optima are: esm → (μ*, Σ*⁻¹);
  -- ism, ssm, ssm_vr → (x̄, S⁻¹) with S the (1/N) sample covariance;
  -- dsm at σ → (x̄, (S + σ²I)⁻¹)
  local mu_star = { 1.0, -0.5 }
  local Sigma = { { 1.0, 0.6 }, { 0.6, 0.8 } }
  local data = sc.data.gaussian_mixture { means = { mu_star }, covs = { Sigma } }
  local N = 4000
  local X = data:sample(N, { generator = sc.Generator(7) })
  local xbar = X:mean(1, false):values()
  local C = X - X:mean(1, true)
  local S = (sc.matmul(C:t(), C) / N):totable()
  local sigma = 0.2

  local function train(loss_fn, steps)
    local mu = sc.zeros(2):requires_grad(true)
    local P = sc.tensor({ { 1, 0 }, { 0, 1 } }):requires_grad(true)
    local model = gaussian_model(mu, P)
    local opt = sc.optim.Adam({ mu, P }, { lr = 0.05 })
    local g = sc.Generator(8)
    for step = 1, steps do
      -- constant, then linearly decaying learning rate
      local frac = step / steps
      opt.lr = frac < 0.5 and 0.05 or 0.05 * (1 - frac) * 2 + 1e-4
      opt:zero_grad()
      loss_fn(model, X, g):backward()
      opt:step()
    end
    return mu:values(), P:totable()
  end

  local function check(name, mu, P, mu_ref, P_ref, tol)
    for i = 1, 2 do
      assert.is_true(close(mu[i], mu_ref[i], tol), ("%s: μ[%d] = %g, expected %g"):format(name, i, mu[i], mu_ref[i]))
      for j = 1, 2 do
        assert.is_true(close(P[i][j], P_ref[i][j], tol * 2),
          ("%s: P[%d][%d] = %g, expected %g"):format(name, i, j, P[i][j], P_ref[i][j]))
      end
    end
  end

  local P_true = inv2(Sigma)
  local P_emp = inv2(S)
  local P_dsm = inv2 { { S[1][1] + sigma ^ 2, S[1][2] }, { S[2][1], S[2][2] + sigma ^ 2 } }
  local P_dsm_true = inv2 { { Sigma[1][1] + sigma ^ 2, Sigma[1][2] }, { Sigma[2][1], Sigma[2][2] + sigma ^ 2 } }

  local cases = {
    { "esm", function(m, x) return sc.losses.esm(m, x, { data = data }) end, mu_star, P_true, 1e-3, 400 },
    { "ism (exact trace)", function(m, x) return sc.losses.ism(m, x) end, xbar, P_emp, 1e-3, 400 },
    { "ism (hutchinson)", function(m, x, g)
      return sc.losses.ism(m, x, { estimator = "hutchinson", generator = g })
    end, xbar, P_emp, 0.01, 400 },
    { "ssm (gaussian)", function(m, x, g) return sc.losses.ssm(m, x, { generator = g }) end, xbar, P_emp, 0.02, 600 },
    { "ssm (rademacher)", function(m, x, g)
      return sc.losses.ssm(m, x, { generator = g, projection = "rademacher" })
    end, xbar, P_emp, 0.02, 600 },
    { "ssm_vr", function(m, x, g) return sc.losses.ssm_vr(m, x, { generator = g }) end, xbar, P_emp, 0.02, 400 },
    { "dsm", function(m, x, g) return sc.losses.dsm(m, x, { sigma = sigma, generator = g }) end,
      xbar, P_dsm, 0.03, 600 },
  }
  for _, c in ipairs(cases) do
    it(c[1], function()
      local mu, P = train(c[2], c[6])
      check(c[1], mu, P, c[3], c[4], c[5])
      -- and the true parameters, within the sampling error of N = 4000
      -- (about 0.07 here: the fixed sample's S⁻¹ is that far from Σ*⁻¹)
      local P_ref = c[1] == "dsm" and P_dsm_true or P_true
      check(c[1] .. " vs truth", mu, P, mu_star, P_ref, 0.15)
    end)
  end
end)

describe("sc.losses gradients pass gradcheck (float64, small MLP)", function()
  local g = sc.Generator(21)
  local x = sc.randn(5, 2, { generator = g, dtype = "float64" })
  local function param(...)
    return (sc.randn({ ... }, { generator = g, dtype = "float64" }) * 0.7):requires_grad(true)
  end
  -- s(x, σ) = tanh([x, log σ] W1 + b1) W2 + b2 (σ input only when given)
  local W1, W1c, b1, W2, b2 = param(2, 4), param(3, 4), param(4), param(4, 2), param(2)
  local function mlp(w1, bb1, w2, bb2)
    return function(xx, sigma)
      local input = sigma and sc.cat({ xx, sigma:log() }, 2) or xx
      return sc.matmul(sc.matmul(input, w1):add(bb1):tanh(), w2) + bb2
    end
  end
  local data = sc.data.two_gaussians()
  local cases = {
    esm = function(w1, bb1, w2, bb2) return sc.losses.esm(mlp(w1, bb1, w2, bb2), x, { data = data }) end,
    ism = function(w1, bb1, w2, bb2) return sc.losses.ism(mlp(w1, bb1, w2, bb2), x) end,
    ism_hutchinson = function(w1, bb1, w2, bb2)
      return sc.losses.ism(mlp(w1, bb1, w2, bb2), x, { estimator = "hutchinson", generator = sc.Generator(1) })
    end,
    ssm = function(w1, bb1, w2, bb2)
      return sc.losses.ssm(mlp(w1, bb1, w2, bb2), x, { generator = sc.Generator(2), n_projections = 2 })
    end,
    ssm_vr = function(w1, bb1, w2, bb2)
      return sc.losses.ssm_vr(mlp(w1, bb1, w2, bb2), x, { generator = sc.Generator(3), projection = "rademacher" })
    end,
  }
  for name, fn in pairs(cases) do
    it(name, function()
      local ok, msg = sc.gradcheck(fn, { W1, b1, W2, b2 }, { atol = 1e-6, rtol = 1e-4 })
      assert.is_true(ok, msg)
    end)
  end
  it("dsm (noise-conditional, several levels)", function()
    local ok, msg = sc.gradcheck(function(w1, bb1, w2, bb2)
      return sc.losses.dsm(mlp(w1, bb1, w2, bb2), x, { sigmas = { 1, 0.5, 0.1 }, generator = sc.Generator(4) })
    end, { W1c, b1, W2, b2 }, { atol = 1e-6, rtol = 1e-4 })
    assert.is_true(ok, msg)
  end)
  it("ism of an energy model (score = −∇ₓE by autograd), first order", function()
    local ok, msg = sc.gradcheck(function(w1, bb1, w2)
      local energy = {
        score = function(_, xx)
          local leaf = xx
          local e = sc.matmul(sc.matmul(leaf, w1):add(bb1):tanh(), w2):sum()
          return -sc.grad(e, { leaf }, { create_graph = true })[1]
        end,
      }
      return sc.losses.ism(energy, x)
    end, { W1, b1, W2 }, { atol = 1e-6, rtol = 1e-4, second_order = false })
    assert.is_true(ok, msg)
  end)
end)

describe("sc.models with the losses", function()
  it("EnergyMLP: score is −∇ₓE (finite differences) and every loss reaches its parameters", function()
    local m = sc.models.EnergyMLP { dim = 2, hidden = { 8 }, dtype = "float64", generator = sc.Generator(1) }
    local x = sc.randn(4, 2, { generator = sc.Generator(2), dtype = "float64" })
    local s = sc.no_grad(function() return m:score(x) end):totable()
    local xv = x:totable()
    for i = 1, 4 do
      for j = 1, 2 do
        local a, b = { xv[i][1], xv[i][2] }, { xv[i][1], xv[i][2] }
        a[j], b[j] = a[j] + 1e-6, b[j] - 1e-6
        local ea = m(sc.tensor({ a }, { dtype = "float64" })):item()
        local eb = m(sc.tensor({ b }, { dtype = "float64" })):item()
        assert.is_true(close(s[i][j], -(ea - eb) / 2e-6, 1e-6))
      end
    end
    local data = sc.data.two_gaussians()
    local losses = {
      sc.losses.esm(m, x, { data = data }), sc.losses.ism(m, x), sc.losses.ssm(m, x),
      sc.losses.ssm_vr(m, x), sc.losses.dsm(m, x, { sigma = 0.3 }),
    }
    for i, l in ipairs(losses) do
      local grads = sc.grad(l, m:parameters(), { allow_unused = true })
      local total = 0
      for _, gr in pairs(grads) do total = total + gr:abs():sum():item() end
      assert.is_true(total > 0, "loss " .. i .. " has no gradient")
    end
  end)

  it("ScoreMLP: conditional on log σ, optional 1/σ output scaling", function()
    local m = sc.models.ScoreMLP { dim = 2, hidden = { 16 }, generator = sc.Generator(3) }
    local scaled = sc.models.ScoreMLP { dim = 2, hidden = { 16 }, generator = sc.Generator(3), scale_by_sigma = true }
    local x = sc.randn(6, 2, { generator = sc.Generator(4) })
    local a = m(x, 0.5)
    local b = scaled(x, 0.5)
    assert.are.same({ 6, 2 }, a:shape())
    assert.is_true(((a / 0.5) - b):abs():max():item() < 1e-5)
    assert.is_true((m(x, 0.5) - m(x, 2.0)):abs():max():item() > 0)
    assert.has_error(function() m(x) end)
    local u = sc.models.ScoreMLP { dim = 2, hidden = { 16 }, conditional = false }
    assert.are.same({ 6, 2 }, u(x):shape())
    local loss = sc.losses.dsm(m, x, { sigmas = { 1, 0.1 } })
    loss:backward()
    for _, p in ipairs(m:parameters()) do assert.is_not_nil(p.grad) end
  end)
end)
