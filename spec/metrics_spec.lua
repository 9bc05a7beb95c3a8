-- sc.metrics for toy data: per-mode statistics, MMD against a brute-force
-- computation, score errors against known offsets.
local sc = require "scorch"

local function close(a, b, tol) return math.abs(a - b) <= tol end

describe("sc.metrics mode statistics", function()
  local d = sc.data.eight_gaussians()

  it("assigns exact samples to the component they came from", function()
    local x, labels = d:sample(2000, { generator = sc.Generator(1) })
    local fr, counts, assigned = sc.metrics.mode_fractions(x, d)
    assert.are.same(labels, assigned)
    local _, _, post = sc.metrics.mode_fractions(x, d, { assign = "posterior" })
    assert.are.same(labels, post)
    local total = 0
    for k = 1, 8 do
      total = total + counts[k]
      assert.is_true(close(fr[k], counts[k] / 2000, 1e-15))
    end
    assert.are.equal(2000, total)
  end)

  it("nearest mean and a distance cut-off; means as rows or a tensor", function()
    local x = sc.tensor { { 0.1, 0 }, { 3, 3 }, { -0.2, 0.1 }, { 10, 0 } }
    local fr, counts, labels = sc.metrics.mode_fractions(x, { { 0, 0 }, { 3, 3 } }, { max_distance = 1 })
    assert.are.same({ 1, 2, 1, 0 }, labels)
    assert.are.same({ 2, 1 }, counts)
    assert.are.same({ 0.5, 0.25 }, fr)
    local _, c2 = sc.metrics.mode_fractions(x, sc.tensor { { 0, 0 }, { 3, 3 } })
    assert.are.same({ 2, 2 }, c2)
    assert.has_error(function() sc.metrics.mode_fractions(x, { { 0, 0 } }, { assign = "posterior" }) end)
    assert.has_error(function() sc.metrics.mode_fractions(sc.zeros(3), d) end)
  end)

  it("total variation and coverage", function()
    assert.is_true(close(sc.metrics.tv_distance({ 0.5, 0.5, 0 }, { 0.25, 0.25, 0.5 }), 0.5, 1e-15))
    assert.are.equal(0, sc.metrics.tv_distance({ 0.2, 0.8 }, { 0.2, 0.8 }))
    assert.has_error(function() sc.metrics.tv_distance({ 1 }, { 0.5, 0.5 }) end)
    local covered, flags = sc.metrics.mode_coverage({ 0.5, 0.49, 0.01 }, { 0.4, 0.4, 0.2 })
    assert.are.equal(2, covered)
    assert.are.same({ true, true, false }, flags)
    assert.are.equal(3, (sc.metrics.mode_coverage({ 0.5, 0.49, 0.01 }, { 0.4, 0.4, 0.2 }, { threshold = 0.04 })))
  end)

  it("mode_report: a sample from the imbalanced mixture", function()
    local two = sc.data.two_gaussians()
    local x = two:sample(5000, { generator = sc.Generator(2) })
    local r = sc.metrics.mode_report(x, two)
    assert.are.equal(2, r.covered)
    assert.is_true(r.tv < 0.02)
    assert.is_true(close(r.fractions[1], 0.8, 0.02))
    -- all in one mode: TV = 0.2, one mode missed
    local r2 = sc.metrics.mode_report(x:abs(), two)
    assert.is_true(close(r2.tv, 0.2, 1e-12))
    assert.are.equal(1, r2.covered)
  end)
end)

describe("sc.metrics.mmd", function()
  -- brute force over all pairs, in plain Lua
  local function brute(x, y, h, biased)
    local a, b = sc.util.rows(x), sc.util.rows(y)
    local function k(p, q) return math.exp(-((p[1] - q[1]) ^ 2 + (p[2] - q[2]) ^ 2) / (2 * h * h)) end
    local sxx, syy, sxy = 0, 0, 0
    for i = 1, #a do for j = 1, #a do if biased or i ~= j then sxx = sxx + k(a[i], a[j]) end end end
    for i = 1, #b do for j = 1, #b do if biased or i ~= j then syy = syy + k(b[i], b[j]) end end end
    for i = 1, #a do for j = 1, #b do sxy = sxy + k(a[i], b[j]) end end
    local m, n = #a, #b
    if biased then return sxx / (m * m) + syy / (n * n) - 2 * sxy / (m * n) end
    return sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2 * sxy / (m * n)
  end

  local x = sc.randn(30, 2, { generator = sc.Generator(3) })
  local y = sc.randn(45, 2, { generator = sc.Generator(4) }) * 1.3 + 0.4

  it("matches the unbiased and biased estimators computed pair by pair", function()
    for _, h in ipairs { 0.3, 1.0, 4.0 } do
      local u = sc.metrics.mmd(x, y, { bandwidth = h, block = 7 })
      assert.is_true(close(u, brute(x, y, h), 1e-6), ("h=%g: %g vs %g"):format(h, u, brute(x, y, h)))
      local b = sc.metrics.mmd(x, y, { bandwidth = h, biased = true })
      assert.is_true(close(b, brute(x, y, h, true), 1e-6))
    end
  end)

  it("uses the median pairwise distance as bandwidth by default", function()
    local _, h = sc.metrics.mmd(x, y)
    local pool = sc.util.rows(sc.cat({ x, y }, 1))
    local ds = {}
    for i = 1, #pool do
      for j = i + 1, #pool do
        ds[#ds + 1] = math.sqrt((pool[i][1] - pool[j][1]) ^ 2 + (pool[i][2] - pool[j][2]) ^ 2)
      end
    end
    table.sort(ds)
    assert.is_true(close(h, ds[(#ds + 1) // 2], 1e-4))
  end)

  it("separates a wrong mode width from the real-versus-real baseline", function()
    local d = sc.data.eight_gaussians()
    local g = sc.Generator(5)
    local real = d:sample(2000, { generator = g })
    local wide = sc.data.eight_gaussians { std = 0.1 }:sample(2000, { generator = g })
    local base = sc.metrics.mmd_baseline(d, 2000, { bandwidth = 0.1, generator = g })
    local same = sc.metrics.mmd(real, d:sample(2000, { generator = g }), { bandwidth = 0.1 })
    local off = sc.metrics.mmd(real, wide, { bandwidth = 0.1 })
    assert.is_true(math.abs(same) < 4 * base + 1e-4, ("real %g, baseline %g"):format(same, base))
    assert.is_true(off > 10 * base, ("wide %g, baseline %g"):format(off, base))
  end)
end)

describe("sc.metrics score errors", function()
  local d = sc.data.two_gaussians()
  local x = d:sample(500, { generator = sc.Generator(6) })

  it("is zero for the exact score and ‖c‖² for a constant offset", function()
    assert.are.equal(0, (sc.metrics.score_error(d, d, x)))
    local off = function(z) return d:score(z) + sc.tensor { 0.3, -0.4 } end
    local e, per = sc.metrics.score_error(off, d, x)
    assert.is_true(close(e, 0.25, 1e-5))
    assert.are.same({ 500 }, per:shape())
    -- at a noise level, distributions use their smoothed score
    local off_at = function(z, s) return d:score_at(z, s) + 1 end
    assert.is_true(close((sc.metrics.score_error(off_at, d, x, { sigma = 2 })), 2, 1e-5))
  end)

  it("on a grid: uniform or density-weighted mean, row 1 at the top", function()
    local zero = function(z) return z * 0 end
    local mean, grid = sc.metrics.score_error_grid(zero, d, { n = 8, range = { -1, 1, -1, 1 }, sigma = 1 })
    assert.are.same({ 8, 8 }, grid:shape())
    -- the score of the smoothed mixture at (x, y) is known in closed form
    local pts = sc.metrics.grid({ -1, 1, -1, 1 }, 8)
    assert.is_true(close(mean, d:score_at(pts, 1):square():sum(2, false):mean():item(), 1e-5))
    assert.are.same({ -0.875, 0.875 }, sc.util.rows(pts:narrow(1, 1, 1))[1])
    local wmean = sc.metrics.score_error_grid(zero, d, { n = 8, range = { -1, 1, -1, 1 }, sigma = 1, weight = d })
    assert.is_true(wmean > 0 and wmean ~= mean)
  end)
end)

describe("sc.metrics.class_mix", function()
  it("counts labels, and with probabilities the per-class and overall confidence", function()
    local probs = sc.tensor({ { 0.95, 0.05, 0 }, { 0.2, 0.7, 0.1 }, { 0.1, 0.1, 0.8 }, { 0.05, 0.92, 0.03 } })
    local r = sc.metrics.class_mix({ 1, 2, 3, 2 }, 3, { probs = probs })
    assert.are.same({ 1, 2, 1 }, r.count)
    assert.are.same({ 0.25, 0.5, 0.25 }, r.frac)
    assert.is_true(math.abs(r.conf[2] - (0.7 + 0.92) / 2) < 1e-6)
    assert.is_true(math.abs(r.mean_conf - (0.95 + 0.7 + 0.8 + 0.92) / 4) < 1e-6)
    assert.are.equal(2, r.confident_count) -- 0.95 and 0.92 reach 0.9
    local plain = sc.metrics.class_mix(sc.tensor({ 3, 3, 1 }), 4)
    assert.are.same({ 1, 0, 2, 0 }, plain.count)
    assert.is_nil(plain.mean_conf)
    assert.has_error(function() sc.metrics.class_mix({ 5 }, 4) end)
    assert.has_error(function() sc.metrics.class_mix({ 1, 2 }, 2, { probs = probs }) end)
  end)
end)

describe("likelihood rows of the 2-D examples", function()
  it("mean_se is the mean and √(var/N)", function()
    local m, se = sc.metrics.mean_se(sc.tensor({ 1, 2, 3, 4 }, { dtype = "float64" }))
    assert.are.equal(2.5, m)
    assert.is_true(math.abs(se - math.sqrt((5 / 3) / 4)) < 1e-12)
  end)

  it("a model that is the data scores its entropy and the real-vs-real MMD", function()
    local data = sc.data.toy("eight_gaussians")
    local test = data:sample(2000, { generator = sc.Generator(1) })
    local x = data:sample(2000, { generator = sc.Generator(2) })
    local row, real = sc.metrics.likelihood_row(data, test, -data:log_prob(test), x, { bandwidth = 0.1 })
    assert.are.equal(row.nll, row.ent)
    assert.are.same({ 2000, 2 }, real:shape())
    assert.are.equal(8, row.covered)
    assert.is_true(row.tv < 0.05, "tv " .. row.tv)
    -- the samples are real data: their MMD² is of the order of the baseline
    assert.is_true(math.abs(row.mmd) < 10 * row.base + 1e-3, ("mmd %g, baseline %g"):format(row.mmd, row.base))
    assert.has_error(function() sc.metrics.likelihood_row(data, test, nil, x, { bw = 1 }) end,
      "scorch.metrics.likelihood_row: unknown option 'bw' (valid: bandwidth)")
  end)
end)

describe("log_partition", function()
  it("gives log Z of a Gaussian energy and of the eight Gaussians' own density", function()
    -- E(x) = |x − m|²/(2s²): Z = 2π s²
    local s2, m = 0.5, sc.tensor({ 0.3, -0.2 }, { dtype = "float64" })
    local energy = function(p) return (p:to("float64") - m):square():sum(2) / (2 * s2) end
    local logz = sc.metrics.log_partition(energy, { -3, 3, -3, 3 }, 300)
    assert.is_true(math.abs(logz - math.log(2 * math.pi * s2)) < 1e-6, logz)
    -- E = −log p of a normalised density: log Z = 0 up to quadrature
    local data = sc.data.toy("eight_gaussians")
    local lz = sc.metrics.log_partition(function(p) return -data:log_prob(p) end, data.range, 400)
    assert.is_true(math.abs(lz) < 2e-3, lz)
  end)

  it("rejects bad arguments by name", function()
    assert.has_error(function() sc.metrics.log_partition(42, { 0, 1, 0, 1 }) end,
      "scorch.metrics.log_partition: argument energy must be callable (an energy model)")
    assert.has_error(function() sc.metrics.log_partition(function(p) return p end, { 1, 0, 0, 1 }) end)
    assert.has_error(function() sc.metrics.log_partition(function(p) return p end, { 0, 1, 0, 1 }, 1) end,
      "scorch.metrics.log_partition: argument m must be an integer >= 2 (got 1)")
  end)
end)
