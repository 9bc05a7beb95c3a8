-- sc.data: toy distributions checked against closed forms, autograd and
-- finite differences; the loader's batching and seeded shuffling.
local sc = require "scorch"

local function close(a, b, tol)
  return math.abs(a - b) <= tol
end

-- log N(x; m, C) for a 2-D point, written out by hand
local function log_normal2(x, m, C)
  local det = C[1][1] * C[2][2] - C[1][2] * C[2][1]
  local dx, dy = x[1] - m[1], x[2] - m[2]
  local q = (C[2][2] * dx * dx - 2 * C[1][2] * dx * dy + C[1][1] * dy * dy) / det
  return -0.5 * q - 0.5 * math.log(det) - math.log(2 * math.pi)
end

local function autograd_score(f, x)
  return sc.data.score_from_log_prob(f)(x)
end

local function max_abs_diff(a, b)
  return (a - b):abs():max():item()
end

describe("sc.data gaussian_mixture", function()
  local spec = {
    means = { { 1, 0 }, { -1, 2 }, { 0, -2 } },
    covs = { { { 1, 0.5 }, { 0.5, 2 } }, { { 0.3, 0 }, { 0, 0.3 } }, { { 2, -0.7 }, { -0.7, 0.5 } } },
    weights = { 0.2, 0.5, 0.3 },
  }
  local gm = sc.data.gaussian_mixture(spec)
  local pts = { { 0.3, -0.2 }, { -1.5, 1.0 }, { 2.0, 2.0 }, { -4, -3 } }
  local x = sc.tensor(pts, { dtype = "float64" })

  it("log_prob matches the formula with full covariances", function()
    local lp = gm:log_prob(x):values()
    for i, p in ipairs(pts) do
      local s = 0
      for k = 1, 3 do s = s + spec.weights[k] * math.exp(log_normal2(p, spec.means[k], spec.covs[k])) end
      assert.is_true(close(lp[i], math.log(s), 1e-10), ("point %d: %g vs %g"):format(i, lp[i], math.log(s)))
    end
  end)

  it("score and score_at equal autograd through log_prob and log_prob_at", function()
    assert.is_true(max_abs_diff(gm:score(x), autograd_score(function(z) return gm:log_prob(z) end, x)) < 1e-10)
    local sig = sc.tensor({ { 0.1 }, { 0.5 }, { 1.0 }, { 3.0 } }, { dtype = "float64" })
    local auto = autograd_score(function(z) return gm:log_prob_at(z, sig) end, x)
    assert.is_true(max_abs_diff(gm:score_at(x, sig), auto) < 1e-10)
  end)

  it("score_at(x, σ) is the score of the mixture with covariances Σ + σ²I", function()
    local s2 = 0.7 ^ 2
    local covs = {}
    for k, C in ipairs(spec.covs) do
      covs[k] = { { C[1][1] + s2, C[1][2] }, { C[2][1], C[2][2] + s2 } }
    end
    local wider = sc.data.gaussian_mixture { means = spec.means, covs = covs, weights = spec.weights }
    assert.is_true(max_abs_diff(gm:score_at(x, 0.7), wider:score(x)) < 1e-10)
    assert.is_true(max_abs_diff(gm:log_prob_at(x, 0.7), wider:log_prob(x)) < 1e-10)
  end)

  it("samples have the mixture's mean, covariance and weights", function()
    local g = sc.Generator(11)
    local n = 40000
    local s, labels = gm:sample(n, { generator = g, dtype = "float64" })
    assert.are.same({ n, 2 }, s:shape())
    local mean, cov = gm:moments()
    local m = s:mean(1, false):values()
    assert.is_true(close(m[1], mean[1], 0.03) and close(m[2], mean[2], 0.03))
    local c = s - s:mean(1, true)
    local emp = (sc.matmul(c:t(), c) / (n - 1)):totable()
    for i = 1, 2 do
      for j = 1, 2 do assert.is_true(close(emp[i][j], cov[i][j], 0.06), ("cov %d%d"):format(i, j)) end
    end
    local counts = { 0, 0, 0 }
    for _, l in ipairs(labels) do counts[l] = counts[l] + 1 end
    for k = 1, 3 do assert.is_true(close(counts[k] / n, spec.weights[k], 0.01)) end
  end)

  it("the same generator seed gives the same samples", function()
    local a = gm:sample(100, { generator = sc.Generator(5) })
    local b = gm:sample(100, { generator = sc.Generator(5) })
    local c = gm:sample(100, { generator = sc.Generator(6) })
    assert.are.equal(0, max_abs_diff(a, b))
    assert.is_true(max_abs_diff(a, c) > 0)
  end)

  it("rejects bad specifications and points", function()
    assert.has_error(function() sc.data.gaussian_mixture { means = {} } end)
    assert.has_error(function() sc.data.gaussian_mixture { means = { { 0, 0 } }, stds = { -1 } } end)
    assert.has_error(function() sc.data.gaussian_mixture { means = { { 0, 0 } }, weights = { 1, 2 } } end)
    assert.has_error(function()
      sc.data.gaussian_mixture { means = { { 0, 0 } }, covs = { { { 1, 2 }, { 0, 1 } } } }
    end)
    assert.has_error(function() gm:log_prob(sc.zeros(3)) end)
    assert.has_error(function() gm:score(sc.zeros(3, 3)) end)
    assert.has_error(function() gm:score_at(sc.zeros(3, 2), sc.ones(2)) end)
    assert.has_error(function() gm:sample(-1) end)
  end)
end)

describe("sc.data.sym_eig (LAPACK dsyevd)", function()
  it("gives A V = V diag(vals), orthonormal V, ascending values, against closed forms", function()
    -- [[2, 1], [1, 2]]: eigenvalues 1 and 3, vectors (1, -1)/√2 and (1, 1)/√2
    local vals, V = sc.data.sym_eig { { 2, 1 }, { 1, 2 } }
    assert.is_true(close(vals[1], 1, 1e-14) and close(vals[2], 3, 1e-14))
    assert.is_true(close(math.abs(V[1][2]), math.sqrt(0.5), 1e-14) and close(V[1][2], V[2][2], 1e-14))
    assert.is_true(close(V[1][1], -V[2][1], 1e-14))
    local A = { { 4, 1, -2 }, { 1, 2, 0.5 }, { -2, 0.5, 3 } }
    vals, V = sc.data.sym_eig(A)
    assert.is_true(vals[1] <= vals[2] and vals[2] <= vals[3])
    for i = 1, 3 do
      for j = 1, 3 do
        local av, vtv = 0, 0
        for k = 1, 3 do
          av = av + A[i][k] * V[k][j]
          vtv = vtv + V[k][i] * V[k][j]
        end
        assert.is_true(close(av, V[i][j] * vals[j], 1e-12), ("(AV)[%d][%d]"):format(i, j))
        assert.is_true(close(vtv, i == j and 1 or 0, 1e-12), ("(VᵀV)[%d][%d]"):format(i, j))
      end
    end
    -- the trace and determinant are the sum and product of the eigenvalues
    assert.is_true(close(vals[1] + vals[2] + vals[3], 9, 1e-12))
    local det = 4 * (2 * 3 - 0.25) - 1 * (3 + 1) + (-2) * (0.5 + 4)
    assert.is_true(close(vals[1] * vals[2] * vals[3], det, 1e-11))
  end)

  it("keeps a diagonal matrix as it is, so an axis-aligned covariance stays axis-aligned", function()
    local vals, V = sc.data.sym_eig { { 3, 0 }, { 0, 0.5 } }
    assert.are.same({ 3, 0.5 }, vals)
    assert.are.same({ { 1, 0 }, { 0, 1 } }, V)
    assert.is_true(sc.data.gaussian_mixture { means = { { 0, 0 } }, covs = { { { 3, 0 }, { 0, 0.5 } } } }.axis_aligned)
  end)
end)

describe("sc.data named distributions", function()
  it("eight_gaussians: 8 unit-weight modes on the circle of radius 2", function()
    local d = sc.data.eight_gaussians()
    assert.are.equal(8, d.K)
    for k = 1, 8 do
      assert.is_true(close(math.sqrt(d.means[k][1] ^ 2 + d.means[k][2] ^ 2), 2, 1e-12))
      assert.is_true(close(d.weights[k], 1 / 8, 1e-15))
      assert.is_true(close(d.lam[k][1], 0.05 ^ 2, 1e-15))
    end
    -- at a mode centre the density is ≈ (1/8) N(0; 0, 0.05² I)
    local lp = d:log_prob(sc.tensor({ { 2, 0 } }, { dtype = "float64" })):item()
    assert.is_true(close(lp, math.log(1 / 8) - math.log(2 * math.pi * 0.0025), 1e-6))
  end)

  it("two_gaussians: NCSN's 0.8 N((5,5), I) + 0.2 N((-5,-5), I)", function()
    local d = sc.data.two_gaussians()
    assert.are.same({ 0.8, 0.2 }, d.weights)
    local x = sc.tensor({ { 5, 5 }, { -5, -5 } }, { dtype = "float64" })
    local s = d:score(x):values()
    for _, v in ipairs(s) do assert.is_true(math.abs(v) < 1e-9) end
    -- far from both modes the score points to the nearer mean
    local sa = d:score_at(sc.tensor({ { 5, 4 } }, { dtype = "float64" }), 1):values()
    assert.is_true(close(sa[1], 0, 1e-9) and close(sa[2], 0.5, 1e-9))
  end)

  for _, name in ipairs { "two_moons", "swiss_roll", "rings" } do
    it(name .. ": curve mixture with exact scores and finite log_prob", function()
      local d = sc.data.toy(name)
      local x = d:sample(300, { generator = sc.Generator(3), dtype = "float64" })
      local lp = d:log_prob(x)
      assert.is_true(lp:min():item() > -50)
      assert.is_true(max_abs_diff(d:score(x), autograd_score(function(z) return d:log_prob(z) end, x)) < 1e-8)
      local auto = autograd_score(function(z) return d:log_prob_at(z, 0.4) end, x)
      assert.is_true(max_abs_diff(d:score_at(x, 0.4), auto) < 1e-8)
    end)
  end

  it("two_moons: samples lie on the moons (density check)", function()
    local d = sc.data.two_moons()
    local x = d:sample(2000, { generator = sc.Generator(4), dtype = "float64" })
    -- distance to the nearest centre along the curve is about the noise
    local mu = sc.tensor(d.means, { dtype = "float64" })
    local d2 = (x:unsqueeze(2) - mu:unsqueeze(1)):square():sum(3, false):min(2, false)
    assert.is_true(close(d2:mean():item(), 0.01, 0.005))
  end)

  it("checkerboard: uniform on the 8 black squares of [-2, 2]²", function()
    local d = sc.data.checkerboard()
    local x = d:sample(4000, { generator = sc.Generator(9), dtype = "float64" })
    local v = x:values()
    local cells = {}
    for i = 1, 4000 do
      local px, py = v[2 * i - 1], v[2 * i]
      assert.is_true(d:inside(px, py), ("sample %d (%g, %g) is on a white square"):format(i, px, py))
      local key = math.floor(px + 2) * 4 + math.floor(py + 2)
      cells[key] = (cells[key] or 0) + 1
    end
    local n = 0
    for _, c in pairs(cells) do
      n = n + 1
      assert.is_true(close(c / 4000, 1 / 8, 0.025))
    end
    assert.are.equal(8, n)
    local lp = d:log_prob(sc.tensor({ { -1.5, -1.5 }, { -1.5, -0.5 } }, { dtype = "float64" })):values()
    assert.is_true(close(lp[1], -math.log(8), 1e-12))
    assert.are.equal(-math.huge, lp[2])
    assert.are.equal(0, d:score(x):abs():max():item())
  end)

  it("checkerboard: score_at is the gradient of log_prob_at (finite differences)", function()
    local d = sc.data.checkerboard()
    local pts = { { 0.1, 0.2 }, { -1.9, 1.7 }, { 2.5, -2.5 }, { 0.99, 0.01 }, { 6, 6 } }
    local x = sc.tensor(pts, { dtype = "float64" })
    for _, sigma in ipairs { 0.05, 0.3, 1.0 } do
      local s = d:score_at(x, sigma):totable()
      for i, p in ipairs(pts) do
        for j = 1, 2 do
          local h = 1e-6
          local a = { p[1], p[2] }
          local b = { p[1], p[2] }
          a[j], b[j] = a[j] + h, b[j] - h
          local fa = d:log_prob_at(sc.tensor({ a }, { dtype = "float64" }), sigma):item()
          local fb = d:log_prob_at(sc.tensor({ b }, { dtype = "float64" }), sigma):item()
          local fd = (fa - fb) / (2 * h)
          assert.is_true(close(s[i][j], fd, 1e-7 * (1 + math.abs(fd))),
            ("σ=%g point %d dim %d: %g vs %g"):format(sigma, i, j, s[i][j], fd))
        end
      end
    end
    -- the smoothed density integrates to one (Riemann sum over a wide box)
    local n, lo, hi = 120, -5, 5
    local h = (hi - lo) / n
    local grid = {}
    for r = 1, n do
      for c = 1, n do grid[#grid + 1] = { lo + (c - 0.5) * h, lo + (r - 0.5) * h } end
    end
    local p = d:log_prob_at(sc.tensor(grid, { dtype = "float64" }), 0.5):exp():sum():item() * h * h
    assert.is_true(close(p, 1, 1e-3), "mass " .. p)
  end)

  it("toy(name) knows every name and rejects others", function()
    for _, name in ipairs(sc.data.names) do
      local d = sc.data.toy(name)
      assert.are.equal(2, d.dim)
      assert.are.equal(4, #d.range)
    end
    assert.has_error(function() sc.data.toy("nope") end)
  end)
end)

describe("sc.data.loader", function()
  local x = sc.arange(1, 11):view(10, 1)
  local y = sc.arange(101, 111)

  it("batches in order without shuffling; drop_last drops the tail", function()
    local l = sc.data.loader(x, { batch_size = 4 })
    assert.are.equal(3, l:num_batches())
    local seen = {}
    for b in l:iter() do seen[#seen + 1] = b:values() end
    assert.are.same({ { 1, 2, 3, 4 }, { 5, 6, 7, 8 }, { 9, 10 } }, seen)
    local d = sc.data.loader(x, { batch_size = 4, drop_last = true })
    local n = 0
    for b in d:iter() do
      n = n + 1
      assert.are.equal(4, b:size(1))
    end
    assert.are.equal(2, n)
  end)

  it("shuffles with the generator: a permutation, reproducible, new each epoch", function()
    local function epoch(l)
      local out = {}
      for a, b in l:iter() do
        local av, bv = a:values(), b:values()
        for i = 1, #av do
          assert.are.equal(av[i] + 100, bv[i]) -- rows stay paired
          out[#out + 1] = av[i]
        end
      end
      return out
    end
    local l1 = sc.data.loader({ x, y }, { batch_size = 3, shuffle = true, generator = sc.Generator(1) })
    local l2 = sc.data.loader({ x, y }, { batch_size = 3, shuffle = true, generator = sc.Generator(1) })
    local e1, e2 = epoch(l1), epoch(l2)
    assert.are.same(e1, e2)
    local sorted = table.move(e1, 1, #e1, 1, {})
    table.sort(sorted)
    assert.are.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, sorted)
    local again = epoch(l1)
    assert.are_not.same(e1, again)
  end)

  it("randperm is uniform over positions", function()
    local g = sc.Generator(2)
    local hits = 0
    for _ = 1, 2000 do
      if sc.data.randperm(5, g)[1] == 3 then hits = hits + 1 end
    end
    assert.is_true(close(hits / 2000, 0.2, 0.03))
  end)

  it("rejects mismatched tensors and bad sizes", function()
    assert.has_error(function() sc.data.loader({ x, sc.zeros(3) }) end)
    assert.has_error(function() sc.data.loader(x, { batch_size = 0 }) end)
    assert.has_error(function() sc.data.loader({}) end)
  end)
end)

describe("categorical draws", function()
  it("invert the cumulative weights at the boundaries", function()
    -- w = {2, 3}: u·5 below 2 is label 1, from 2 on label 2
    assert.are.same({ 1, 1, 2, 2 },
      sc.data.categorical_from_uniforms({ 0, 0.39999, 0.4, 0.99 }, { 2, 3 }))
    -- a zero weight is never drawn
    assert.are.same({ 1, 3, 3 }, sc.data.categorical_from_uniforms({ 0.2, 0.5, 0.9 }, { 1, 0, 1 }))
  end)

  it("follow the weights (binomial bounds on 20,000 draws)", function()
    local g = sc.Generator(7)
    local labels = sc.data.categorical(20000, { 0.7, 0.2, 0.1 }, g)
    local count = { 0, 0, 0 }
    for _, k in ipairs(labels) do count[k] = count[k] + 1 end
    for k, p in ipairs({ 0.7, 0.2, 0.1 }) do
      local sd = math.sqrt(20000 * p * (1 - p))
      assert.is_true(math.abs(count[k] - 20000 * p) < 4 * sd, ("label %d: %d"):format(k, count[k]))
    end
  end)
end)
