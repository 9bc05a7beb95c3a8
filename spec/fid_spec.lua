-- sc.metrics statistics and FID against SciPy (spec/fixtures/fid_scipy.lua,
-- pytorch-fid's formula with scipy.linalg.sqrtm), closed forms for Gaussians,
-- and the parallel (Chan) merge against one pass in float64.
local sc = require "scorch"
local core = require "scorch.core"

-- The LCG feature sets of spec/fixtures/make_fid_fixture.py, bit for bit.
local function lcg_features(n, d, seed, which)
  local s, z = seed, {}
  for i = 1, n * d do
    local acc = 0.0
    for _ = 1, 3 do
      s = (1103515245 * s + 12345) % 2147483648
      acc = acc + s / 2147483648.0
    end
    z[i] = (acc - 1.5) * 2.0
  end
  local x = {}
  for i = 0, n - 1 do
    local z0 = z[i * d + 1]
    for j = 0, d - 1 do
      local scale = which == 0 and 1.0 / (1.0 + j) or 1.0 / (1.0 + 0.5 * j)
      local v = z[i * d + j + 1] * scale + 0.5 * z0
      if which == 1 and j % 2 == 0 then v = v + 0.1 end
      x[i * d + j + 1] = v
    end
  end
  return sc.tensor(x, { dtype = "float64" }):view(n, d)
end

describe("sc.metrics.fid", function()
  it("agrees with SciPy's sqrtm formula to 1e-6 relative, dimensions 2 to 512, and beats it when N < D", function()
    local cases = dofile("spec/fixtures/fid_scipy.lua")
    assert.is_true(#cases >= 8)
    local deficient = 0
    for _, c in ipairs(cases) do
      local a = sc.metrics.feature_stats(lcg_features(c.na, c.d, c.seed_a, 0), { chunk = 97 })
      local b = sc.metrics.feature_stats(lcg_features(c.nb, c.d, c.seed_b, 1))
      local f, info = sc.metrics.fid(a, b)
      local where = ("d = %d, N = %d/%d: fid %.12g, SciPy %.12g, SVD route %.12g"):format(c.d, c.na, c.nb,
        f, c.fid, c.fid_svd)
      assert.are.equal(c.na, info.n_a)
      -- against the singular-value route, which stays exact for singular covariances
      assert(math.abs(f - c.fid_svd) <= 1e-7 * c.fid_svd, where)
      assert(math.abs(info.trace_sqrt - c.trace_sqrt_svd) <= 1e-9 * c.trace_sqrt_svd, where)
      if c.na > c.d and c.nb > c.d then
        assert(math.abs(f - c.fid) <= 1e-6 * c.fid, where)
      else
        -- sqrtm of a singular product loses digits (3e-5 relative at d = 512,
        -- N = 300): scorch must be nearer the exact value than SciPy is
        deficient = deficient + 1
        assert(math.abs(f - c.fid_svd) <= math.abs(c.fid - c.fid_svd) + 1e-12, where)
        assert(math.abs(f - c.fid) <= 1e-4 * c.fid, where)
      end
    end
    assert.is_true(deficient >= 3)
  end)

  it("is exactly 0 for identical statistics, positive for a shift, and symmetric", function()
    sc.manual_seed(3)
    local x = sc.randn(400, 32)
    local s = sc.metrics.feature_stats(x)
    assert.are.equal(0, (sc.metrics.fid(s, s)))
    assert.are.equal(0, (sc.metrics.fid(s, sc.metrics.feature_stats(x:clone()))))
    local t = sc.metrics.feature_stats(x + 0.5)
    -- a pure shift: the covariances are equal, FID = ‖δ‖² = 32 · 0.25 up to rounding
    assert.is_true(math.abs(sc.metrics.fid(s, t) - 8) < 1e-4)
    local u = sc.metrics.feature_stats(sc.randn(300, 32) * 2)
    assert.is_true(math.abs(sc.metrics.fid(s, u) - sc.metrics.fid(u, s)) < 1e-9)
  end)

  it("matches the closed form for diagonal Gaussians", function()
    -- N(0, diag(a)) vs N(m, diag(b)): FID = ‖m‖² + Σ (√a − √b)²
    local D = 5
    local a, b, m = { 1, 4, 9, 0.25, 2 }, { 4, 1, 1, 0.25, 8 }, { 1, 0, -1, 0, 0.5 }
    local ca, cb = sc.zeros({ D, D }, { dtype = "float64" }), sc.zeros({ D, D }, { dtype = "float64" })
    local want = 0
    for i = 1, D do
      ca:narrow(1, i, 1):narrow(2, i, 1):fill_(a[i])
      cb:narrow(1, i, 1):narrow(2, i, 1):fill_(b[i])
      want = want + m[i] ^ 2 + (math.sqrt(a[i]) - math.sqrt(b[i])) ^ 2
    end
    local sa = { mean = sc.zeros({ D }, { dtype = "float64" }), cov = ca, n = 10 }
    local sb = { mean = sc.tensor(m, { dtype = "float64" }), cov = cb, n = 10 }
    assert.is_true(math.abs(sc.metrics.fid(sa, sb) - want) < 1e-12)
  end)

  it("refuses statistics of different extractors or dimensions", function()
    local s = sc.metrics.feature_stats(sc.randn(20, 3), { extractor = "a" })
    local t = sc.metrics.feature_stats(sc.randn(20, 3), { extractor = "b" })
    assert.has_error(function() sc.metrics.fid(s, t) end,
      "scorch.metrics.fid: statistics from different extractors (a and b) are not comparable")
    assert.has_error(function() sc.metrics.fid(s, sc.metrics.feature_stats(sc.randn(20, 4))) end)
    assert.has_error(function() sc.metrics.fid(s, {}) end)
  end)
end)

describe("sc.metrics streaming statistics", function()
  it("chunks merged by Chan's formula equal one float64 pass", function()
    sc.manual_seed(5)
    local x = sc.randn(1000, 24) * 3 + 100   -- a large mean: the naive formula loses digits
    local xd = x:double()
    local mean = xd:mean(1, false)
    local xc = xd - mean
    local cov = sc.matmul(xc:t(), xc) / 999
    for _, chunk in ipairs({ 1000, 333, 64, 7 }) do
      local s = sc.metrics.feature_stats(x, { chunk = chunk })
      assert.are.equal(1000, s.n)
      assert.is_true((s.mean - mean):abs():max():item() < 1e-12)
      assert.is_true((s.cov - cov):abs():max():item() < 1e-10)
    end
    -- two accumulators of two halves, merged
    local a = sc.metrics.stats_accumulator(24):add(x:narrow(1, 1, 400))
    local b = sc.metrics.stats_accumulator(24):add(x:narrow(1, 401, 600))
    local s = a:merge(b):result()
    assert.is_true((s.cov - cov):abs():max():item() < 1e-10)
    assert.has_error(function() sc.metrics.stats_accumulator(24):add(sc.randn(3, 5)) end)
    assert.has_error(function() sc.metrics.stats_accumulator(24):result() end)
  end)

  it("moments are the same bits at 1 and 2 threads", function()
    sc.manual_seed(6)
    local x = sc.randn(3000, 200)
    local prev = sc.get_num_threads()
    sc.set_num_threads(1)
    local m1, s1 = core.linalg_moments(x)
    sc.set_num_threads(2)
    local m2, s2 = core.linalg_moments(x)
    sc.set_num_threads(prev)
    assert.are.equal(m1:numel(), m1:eq(m2):sum():item())
    assert.are.equal(s1:numel(), s1:eq(s2):sum():item())
    -- exactly symmetric
    assert.are.equal(s1:numel(), s1:eq(s1:t()):sum():item())
  end)

  it("round-trips through a safetensors file with extractor and count", function()
    local path = os.tmpname()
    local s = sc.metrics.feature_stats(sc.randn(50, 6), { extractor = "shapes-classifier@0123456789ab" })
    assert.is_true(sc.metrics.save_stats(path, s))
    local t = assert(sc.metrics.load_stats(path))
    os.remove(path)
    assert.are.equal(50, t.n)
    assert.are.equal("shapes-classifier@0123456789ab", t.extractor)
    assert.are.equal(0, (t.cov - s.cov):abs():max():item())
    assert.are.equal(0, (sc.metrics.fid(s, t)))
    local none, msg = sc.metrics.load_stats("/nonexistent/ref.safetensors")
    assert.is_nil(none)
    assert.is_string(msg)
  end)
end)

describe("sc.metrics.fid_infinity", function()
  it("fits FID = FID∞ + slope/N through 5 counts from N/5 to N and removes the 1/N bias", function()
    -- reference N(0, I) exactly, fakes N(0.1, I): the true FID is D · 0.01;
    -- the bias of FID_N is about (D + D²/4)/N (the mean's variance, and the
    -- spread of the sample covariance's eigenvalues under the square root)
    sc.manual_seed(8)
    local D = 64
    local cov = sc.zeros({ D, D }, { dtype = "float64" })
    for i = 1, D do cov:narrow(1, i, 1):narrow(2, i, 1):fill_(1) end
    local ref = { mean = sc.zeros({ D }, { dtype = "float64" }), cov = cov, n = 1000000 }
    local fake = sc.randn(5000, D) + 0.1
    local finf, info = sc.metrics.fid_infinity(ref, fake, { generator = sc.Generator(1) })
    assert.are.same({ 1000, 2000, 3000, 4000, 5000 }, info.counts)
    assert.is_true(info.fids[5] > 0.8)                         -- FID at N = 5000 is biased
    assert.is_true(math.abs(finf - 0.64) < 0.04, tostring(finf))
    assert.is_true(math.abs(info.slope / (D + D * D / 4) - 1) < 0.2, tostring(info.slope))
    -- the intercept and slope are the least-squares line through the points
    local r = 0
    for i, n in ipairs(info.counts) do r = r + (info.fids[i] - finf - info.slope / n) / n end
    assert.is_true(math.abs(r) < 1e-12)
    assert.has_error(function() sc.metrics.fid_infinity(ref, fake, { counts = 4 }) end)
    assert.has_error(function() sc.metrics.fid_infinity(ref, fake, { count = 5 }) end,
      "scorch.metrics.fid_infinity: unknown option 'count' (valid: counts, extractor, generator, min_n)")
  end)
end)
