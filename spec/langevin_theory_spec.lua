-- Langevin theory against closed forms: the unadjusted Langevin algorithm's
-- stationary variance on a Gaussian, s²/(1 − η/(2s²)); the stationary
-- covariance of the BAOAB and OBABO kinetic-Langevin chains (computed here
-- from the linear recursion) and their samples; one integrator step written
-- out by hand; bad input; determinism.
local sc = require "scorch"
local H = require "helpers"

local S = sc.samplers
local sqrt = math.sqrt

-- The score of N(m, s² I) (m a number or a row), as a wrapped model.
local function gaussian(m, s2)
  local mean = m
  if type(m) == "table" then
    mean = { float32 = sc.tensor(m):view(1, #m), float64 = sc.tensor(m, { dtype = "float64" }):view(1, #m) }
  end
  return sc.param.wrap(function(x)
    return (x - (type(mean) == "table" and mean[x:dtype()] or mean)) * (-1 / s2)
  end, { kind = "score" })
end

-- Mean and variance of each column of x [N, D] (variance with the 1/(N−1) rule).
local function moments(x)
  return x:mean(1, false):values(), x:var(1, false):values()
end

-- Stationary covariance (Var x, Var v, Cov(x, v)) of a kinetic-Langevin
-- splitting on N(0, s²): the chain is linear, so Σ ← M Σ Mᵀ (+ noise) per
-- sub-step, iterated to its fixed point.
local function stationary(scheme, h, gamma, s)
  local w2 = 1 / (s * s)
  local a, b, d = s * s, 0, 1 -- Var x, Cov(x, v), Var v
  local function B(t) local k = -t * w2; a, b, d = a, b + k * a, d + 2 * k * b + k * k * a end
  local function A(t) a, b, d = a + 2 * t * b + t * t * d, b + t * d, d end
  local function O(t) local c = math.exp(-gamma * t); a, b, d = a, c * b, c * c * d + (1 - c * c) end
  for _ = 1, 5000 do
    if scheme == "baoab" then B(h / 2) A(h / 2) O(h) A(h / 2) B(h / 2)
    else O(h / 2) B(h / 2) A(h) B(h / 2) O(h / 2) end
  end
  return a, d, b
end

describe("the unadjusted Langevin algorithm on N(m, s²)", function()
  -- ULA: x' = x + η ∇log p(x) + √(2η) ξ (sc.samplers.langevin with step_size ε = 2η).
  -- With ∇log p(x) = −(x − m)/s², x' − m = a (x − m) + √(2η) ξ, a = 1 − η/s²: an AR(1)
  -- chain, stable for η < 2s², whose stationary variance solves v = a² v + 2η:
  -- v = 2η / (1 − a²) = 2η / (2η/s² − η²/s⁴) = s² / (1 − η/(2s²)).
  local s2, m, N = 1.0, 0.5, 40000
  for _, eta in ipairs { 0.1, 0.5, 1.0 } do
    it(("has variance s²/(1 − η/(2s²)) at η = %g, over %d chains"):format(eta, N), function()
      local v = s2 / (1 - eta / (2 * s2))
      local x0 = sc.randn({ N, 1 }, { generator = sc.Generator(11), dtype = "float64" }) * sqrt(s2) + m
      -- a^(2T) < 1e-9 for T = 100 at these η (a = 0.9, 0.5, 0)
      local x = S.langevin(gaussian(m, s2), x0, nil,
        { step_size = 2 * eta, steps = 100, generator = sc.Generator(12), progress = false })
      local mean, var = moments(x)
      -- Monte-Carlo tolerance: 4 standard errors of a sample variance, v √(2/(N−1)), and of a mean
      local tol_v, tol_m = 4 * v * sqrt(2 / (N - 1)), 4 * sqrt(v / N)
      assert.is_true(math.abs(var[1] - v) < tol_v, ("var %.5f vs closed form %.5f (±%.4f)"):format(var[1], v, tol_v))
      assert.is_true(math.abs(mean[1] - m) < tol_m, ("mean %.5f vs %g"):format(mean[1], m))
      -- and the bias is visible: the exact target's variance s² is outside the tolerance
      assert.is_true(math.abs(var[1] - s2) > tol_v, ("var %.5f should differ from s² = %g"):format(var[1], s2))
    end)
  end

  it("has W₂ = s(1/√(1 − η/(2s²)) − 1) per dimension, between η/(4s) and η/(2s) for η ≤ s²", function()
    -- W₂(N(0, v), N(0, s²)) = |√v − s|; with u = η/(2s²), 1/√(1−u) − 1 = u / (√(1−u)(1 + √(1−u))),
    -- whose denominator lies in [1.2, 2] for u ≤ 1/2: hence the linear band, and the limit η/(4s)
    for _, s in ipairs { 0.3, 1, 2.5 } do
      for _, r in ipairs { 1e-4, 0.01, 0.2, 0.6, 1 } do
        local eta = r * s * s
        local w2 = s * (1 / sqrt(1 - eta / (2 * s * s)) - 1)
        assert.is_true(w2 >= eta / (4 * s) * (1 - 1e-12) and w2 <= eta / (2 * s), ("s %g η %g"):format(s, eta))
        if r == 1e-4 then assert.is_true(math.abs(w2 / (eta / (4 * s)) - 1) < 1e-4) end
      end
    end
  end)
end)

describe("sc.samplers.underdamped_langevin on N(m, s²)", function()
  local s, h = 0.8, 0.6
  local m = { 1, -2 }
  local target = gaussian(m, s * s)
  local N, r = 20000, h * h / (4 * s * s)

  it("the chains' stationary covariances have the closed forms the sampler states", function()
    for _, gamma in ipairs { 0.5, 2 / s, 10 } do
      local a, d, b = stationary("baoab", h, gamma, s)
      assert.is_true(math.abs(a - s * s) < 1e-12 and math.abs(d - (1 - r)) < 1e-12 and math.abs(b) < 1e-12)
      a, d, b = stationary("obabo", h, gamma, s)
      assert.is_true(math.abs(a - s * s / (1 - r)) < 1e-12 and math.abs(d - 1) < 1e-12 and math.abs(b) < 1e-12)
    end
  end)

  for _, scheme in ipairs { "baoab", "obabo" } do
    it(scheme .. " reaches the mean m and the chain's stationary variances", function()
      local vx, vv = stationary(scheme, h, 2 / s, s)
      local x, info = S.underdamped_langevin(target, sc.zeros({ N, 2 }, { dtype = "float64" }), nil,
        { step_size = h, steps = 150, friction = 2 / s, scheme = scheme, generator = sc.Generator(21),
          progress = false })
      assert.are.equal(151, info.nfe)
      assert.are.equal(scheme, info.scheme)
      local mean, var = moments(x)
      local vmean, vvar = moments(info.velocity)
      local n = N - 1
      for k = 1, 2 do
        assert.is_true(math.abs(mean[k] - m[k]) < 4 * sqrt(vx / N), ("mean %g vs %g"):format(mean[k], m[k]))
        assert.is_true(math.abs(var[k] - vx) < 4 * vx * sqrt(2 / n), ("Var x %g vs %g"):format(var[k], vx))
        assert.is_true(math.abs(vmean[k]) < 4 * sqrt(vv / N))
        assert.is_true(math.abs(vvar[k] - vv) < 4 * vv * sqrt(2 / n), ("Var v %g vs %g"):format(vvar[k], vv))
      end
      if scheme == "baoab" then
        -- exact positions: the sample variance is near s² and far from OBABO's s²/(1 − h²/(4s²))
        assert.is_true(math.abs(var[1] - s * s / (1 - r)) > 8 * vx * sqrt(2 / n))
      end
    end)
  end

  it("takes the score at the level given: stationary variance s² + σ²", function()
    local s2, sigma = 0.25, 0.5
    local model = sc.param.wrap(function(x, c) return -x / (c * c + s2) end, { kind = "score" })
    local seen
    local x = S.underdamped_langevin(model, sc.zeros({ N, 1 }, { dtype = "float64" }), sigma,
      { step_size = 0.3, steps = 100, friction = 3, generator = sc.Generator(4), progress = false,
        callback = function(t) seen = t end })
    local _, var = moments(x)
    local v = s2 + sigma * sigma
    assert.is_true(math.abs(var[1] - v) < 4 * v * sqrt(2 / (N - 1)), ("var %g vs %g"):format(var[1], v))
    assert.are.equal(sigma, seen.level)
    -- denoised = x + σ² s(x, σ) at the returned x (Tweedie)
    local want = seen.x + (-seen.x / (sigma * sigma + s2)) * (sigma * sigma)
    assert.is_true((seen.denoised - want):abs():max():item() < 1e-12)
  end)
end)

describe("sc.samplers.underdamped_langevin mechanics", function()
  local target = gaussian({ 0.3, -0.2 }, 0.7)
  local score = function(x) return (x - sc.tensor({ 0.3, -0.2 }, { dtype = "float64" }):view(1, 2)) * (-1 / 0.7) end

  it("does one BAOAB and one OBABO step as written", function()
    local x0 = sc.randn({ 4, 2 }, { generator = sc.Generator(1), dtype = "float64" })
    local v0 = sc.randn({ 4, 2 }, { generator = sc.Generator(2), dtype = "float64" })
    local h, gamma = 0.4, 1.3
    local g = sc.Generator(3)
    local xi1 = sc.randn({ 4, 2 }, { generator = g, dtype = "float64" })
    local xi2 = sc.randn({ 4, 2 }, { generator = g, dtype = "float64" })
    -- BAOAB
    local c = math.exp(-gamma * h)
    local v = v0 + score(x0) * (h / 2)
    local x = x0 + v * (h / 2)
    v = v * c + xi1 * sqrt(1 - c * c)
    x = x + v * (h / 2)
    v = v + score(x) * (h / 2)
    local gx, info = S.underdamped_langevin(target, x0, nil,
      { step_size = h, steps = 1, friction = gamma, velocity = v0, generator = sc.Generator(3) })
    assert.is_true((gx - x):abs():max():item() < 1e-14)
    assert.is_true((info.velocity - v):abs():max():item() < 1e-14)
    -- OBABO: half-step O's with c = e^{−γh/2}, two draws
    c = math.exp(-gamma * h / 2)
    v = v0 * c + xi1 * sqrt(1 - c * c)
    v = v + score(x0) * (h / 2)
    x = x0 + v * h
    v = v + score(x) * (h / 2)
    v = v * c + xi2 * sqrt(1 - c * c)
    gx, info = S.underdamped_langevin(target, x0, nil,
      { step_size = h, steps = 1, friction = gamma, velocity = v0, scheme = "obabo", generator = sc.Generator(3) })
    assert.is_true((gx - x):abs():max():item() < 1e-14)
    assert.is_true((info.velocity - v):abs():max():item() < 1e-14)
  end)

  it("without a velocity draws v ~ N(0, I) first; steps = 0 returns the start", function()
    local x0 = sc.randn({ 3, 2 }, { generator = sc.Generator(5), dtype = "float64" })
    local x, info = S.underdamped_langevin(target, x0, nil, { step_size = 0.1, steps = 0, generator = sc.Generator(6) })
    local want = sc.randn({ 3, 2 }, { generator = sc.Generator(6), dtype = "float64" })
    assert.are.equal(0, (x - x0):abs():max():item())
    assert.are.equal(0, (info.velocity - want):abs():max():item())
    assert.are.equal(1, info.nfe)
  end)

  it("calls back after every step with x and v, and the same seed gives the same numbers", function()
    local x0 = sc.randn({ 6, 2 }, { generator = sc.Generator(7) })
    local calls = {}
    local o = { step_size = 0.2, steps = 9, friction = 2, generator = sc.Generator(8),
      callback = function(t) calls[#calls + 1] = t end }
    local a, ia = S.underdamped_langevin(target, x0, nil, o)
    assert.are.equal(9, #calls)
    for i, t in ipairs(calls) do
      assert.are.equal(i, t.i)
      assert.are.same({ 6, 2 }, t.v:shape())
      assert.is_nil(t.level)
    end
    assert.are.equal(0, (calls[9].x - a):abs():max():item())
    assert.are.equal(0, (calls[9].v - ia.velocity):abs():max():item())
    local b, ib = S.underdamped_langevin(target, x0, nil, { step_size = 0.2, steps = 9, friction = 2,
      generator = sc.Generator(8) })
    assert.are.equal(0, (a - b):abs():max():item())
    assert.are.equal(0, (ia.velocity - ib.velocity):abs():max():item())
    local c = S.underdamped_langevin(target, x0, nil, { step_size = 0.2, steps = 9, friction = 2,
      generator = sc.Generator(9) })
    assert.is_true((a - c):abs():max():item() > 1e-3)
    assert.are.equal("float32", a:dtype())
  end)

  it("with row_noise a sample does not depend on the batch it is drawn in", function()
    local x0 = sc.randn({ 8, 2 }, { generator = sc.Generator(10) })
    local o = function(first) return { step_size = 0.2, steps = 5, generator = S.row_noise(42, first) } end
    local all = S.underdamped_langevin(target, x0, nil, o(1))
    local head = S.underdamped_langevin(target, x0:narrow(1, 1, 3), nil, o(1))
    local tail = S.underdamped_langevin(target, x0:narrow(1, 4, 5), nil, o(4))
    assert.are.equal(0, (all:narrow(1, 1, 3) - head):abs():max():item())
    assert.are.equal(0, (all:narrow(1, 4, 5) - tail):abs():max():item())
  end)

  it("rejects bad input, naming the function and the argument", function()
    local x0 = sc.zeros(4, 2)
    local function err(opts, model, x, levels)
      local ok, e = pcall(S.underdamped_langevin, model or target, x or x0, levels, opts)
      assert.is_false(ok)
      e = tostring(e)
      assert.is_truthy(e:find("scorch.samplers.underdamped_langevin", 1, true), e)
      return e
    end
    assert.is_truthy(err({}):find("step_size (h) must be a positive finite number (got nil)", 1, true))
    assert.is_truthy(err({ step_size = -1 }):find("step_size", 1, true))
    assert.is_truthy(err({ step_size = 0 / 0 }):find("step_size", 1, true))
    assert.is_truthy(err({ step_size = 0.1, steps = 2.5 }):find("steps must be a non-negative integer", 1, true))
    assert.is_truthy(err({ step_size = 0.1, steps = -1 }):find("steps must be", 1, true))
    assert.is_truthy(err({ step_size = 0.1, friction = 0 }):find("friction (γ) must be a positive number", 1, true))
    assert.is_truthy(err({ step_size = 0.1, friction = "high" }):find("friction", 1, true))
    assert.is_truthy(err({ step_size = 0.1, scheme = "euler" }):find('scheme must be "baoab" or "obabo" (got euler)',
      1, true))
    assert.is_truthy(err({ step_size = 0.1, velocity = sc.zeros(4, 3) })
      :find("velocity has shape [4,3], x_init [4,2]; they must match", 1, true))
    assert.is_truthy(err({ step_size = 0.1, velocity = 1 }):find("velocity must be a tensor", 1, true))
    assert.is_truthy(err({ step_size = 0.1, gamma = 1 }):find("unknown option 'gamma' (valid: callback, friction, "
      .. "generator, progress, scheme, step_size, steps, velocity)", 1, true))
    assert.is_truthy(err({ step_size = 0.1 }, function() end):find("expected a wrapped model", 1, true))
    assert.is_truthy(err({ step_size = 0.1 }, nil, "x")
      :find("x_init must be a tensor of points (bad argument #2)", 1, true))
    assert.is_truthy(err({ step_size = 0.1 }, nil, nil, { 1, 2 }):find("levels must be nil or one level σ", 1, true))
  end)

  it("leaves the overdamped sampler's numbers as they were: ULA written out", function()
    local x0 = sc.randn({ 5, 2 }, { generator = sc.Generator(13), dtype = "float64" })
    local eps = 0.3
    local z = sc.randn({ 5, 2 }, { generator = sc.Generator(14), dtype = "float64" })
    local want = x0 + score(x0) * (eps / 2) + z * sqrt(eps)
    local got = S.langevin(target, x0, nil, { step_size = eps, steps = 1, generator = sc.Generator(14) })
    assert.is_true((got - want):abs():max():item() < 1e-14)
  end)
end)

describe("examples/langevin_bias.lua", function()
  local EXE = H.host()
  local q, sh = H.quote, H.sh
  local tmp
  setup(function()
    local p = io.popen("mktemp -d /tmp/scorch_langevin_bias.XXXXXX")
    tmp = p:read("l")
    p:close()
  end)
  teardown(function()
    if tmp and tmp:match("^/tmp/scorch_langevin_bias%.") then os.execute("rm -rf " .. q(tmp)) end
  end)

  it("measures ULA's variance at η = 1 near 2s² and writes the figure and the table", function()
    local status, out = sh(("SCORCH_PROGRESS=0 %s examples/langevin_bias.lua --threads 1 --chains 3000 --etas 0.3,1"
      .. " --measure 4 --out %s"):format(q(EXE), q(tmp .. "/o")))
    assert.are.equal(0, status, out)
    -- | 1 | v̂ ± se | 2.00000 | ...: the ULA column against the closed form s²/(1 − η/(2s²)) = 2
    local v, se, closed = out:match("\n| 1 | ([%d.]+) ± ([%d.]+) | ([%d.]+) |")
    assert.is_truthy(v, out)
    assert.are.equal(2, tonumber(closed))
    assert.is_true(math.abs(tonumber(v) - 2) < 4 * tonumber(se), out)
    assert.is_true(tonumber(se) > 0 and tonumber(se) < 0.05)
    local f = io.open(tmp .. "/o/w2_vs_step.png", "rb")
    assert.is_truthy(f)
    assert.are.equal("\137PNG", f:read(4))
    f:close()
    assert.is_truthy(io.open(tmp .. "/o/table.md", "r"))
  end)

  it("refuses a step where a sampler is unstable, with exit status 2", function()
    local status, out = sh(("%s examples/langevin_bias.lua --etas 0.1,2.5 --out %s"):format(q(EXE), q(tmp .. "/bad")))
    assert.are.equal(2, status, out)
    assert.is_truthy(out:find("--etas: 2.5 is not a step in (0, 2)", 1, true), out)
  end)
end)
