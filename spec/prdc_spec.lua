-- sc.metrics precision/recall, k-NN radii and KID against brute-force
-- float64 computations on small sets, and known cases (identical sets,
-- one of two separated clusters); tiles give the same bits at 1 and 2 threads.
local sc = require "scorch"

-- Brute force in Lua doubles: squared distances between rows.
local function rows(x)
  local n, d, v, out = x:size(1), x:size(2), x:double():values(), {}
  for i = 1, n do
    out[i] = {}
    for j = 1, d do out[i][j] = v[(i - 1) * d + j] end
  end
  return out
end
local function d2(a, b)
  local s = 0
  for j = 1, #a do s = s + (a[j] - b[j]) ^ 2 end
  return s
end
local function kth_radius2(pts, i, k)
  local ds = {}
  for j = 1, #pts do if j ~= i then ds[#ds + 1] = d2(pts[i], pts[j]) end end
  table.sort(ds)
  return ds[k]
end

describe("sc.metrics.precision_recall", function()
  it("matches a brute-force float64 computation, radii, coverage and realism", function()
    sc.manual_seed(11)
    local real, fake = sc.randn(150, 10), sc.randn(120, 10) * 1.2 + 0.3
    local R, F = rows(real), rows(fake)
    local k = 3
    local rr, rf = {}, {}
    for i = 1, #R do rr[i] = kth_radius2(R, i, k) end
    for j = 1, #F do rf[j] = kth_radius2(F, j, k) end
    local pr = sc.metrics.precision_recall(real, fake, { k = k })
    for i, r in ipairs(pr.real_radii:values()) do assert.is_true(math.abs(r - math.sqrt(rr[i])) < 1e-5) end
    for j, r in ipairs(pr.fake_radii:values()) do assert.is_true(math.abs(r - math.sqrt(rf[j])) < 1e-5) end
    local med = {}
    for i = 1, #rr do med[i] = rr[i] end
    table.sort(med)
    local cut = 0.5 * (med[75] + med[76])
    local prec, margin = 0, math.huge
    local realism = pr.realism:values()
    for j = 1, #F do
      local inside, best = false, 0
      for i = 1, #R do
        local dd = d2(F[j], R[i])
        margin = math.min(margin, math.abs(dd - rr[i]) / rr[i])
        if dd <= rr[i] then inside = true end
        if rr[i] <= cut then best = math.max(best, math.sqrt(rr[i] / dd)) end
      end
      if inside then prec = prec + 1 end
      assert.is_true(math.abs(realism[j] - best) <= 1e-4 * best)
    end
    local rec = 0
    for i = 1, #R do
      local inside = false
      for j = 1, #F do if d2(F[j], R[i]) <= rf[j] then inside = true end end
      if inside then rec = rec + 1 end
    end
    assert.is_true(margin > 1e-6, tostring(margin)) -- no point within float32 rounding of a ball's edge
    assert.are.equal(prec / #F, pr.precision)
    assert.are.equal(rec / #R, pr.recall)
    assert.is_true(pr.precision > 0.3 and pr.precision < 1)
  end)

  it("gives 1 and 1 for identical sets, and recall 0.5, precision 1 for one of two clusters", function()
    sc.manual_seed(12)
    local x = sc.randn(500, 16)
    local same = sc.metrics.precision_recall(x, x:clone())
    assert.are.equal(1, same.precision)
    assert.are.equal(1, same.recall)
    -- in 2-D, where 1,000 points fill their k-NN balls (in 16-D with k = 3
    -- even identical distributions give precision ~0.8)
    local a, b = sc.randn(1000, 2), sc.randn(1000, 2) + 20
    local real = sc.cat({ a, b }, 1)
    local fake = sc.randn(1000, 2)         -- covers cluster a only
    local pr = sc.metrics.precision_recall(real, fake, { k = 3 })
    assert.is_true(pr.precision > 0.97, tostring(pr.precision))
    assert.is_true(math.abs(pr.recall - 0.5) < 0.03, tostring(pr.recall))
    local far = sc.metrics.precision_recall(real, fake + 100)
    assert.are.equal(0, far.precision)
    assert.are.equal(0, far.recall)
  end)

  it("is the same at 1 and 2 threads across several tiles (1,100 points)", function()
    sc.manual_seed(13)
    local real, fake = sc.randn(1100, 32), sc.randn(1000, 32) * 1.1
    local prev = sc.get_num_threads()
    sc.set_num_threads(1)
    local p1 = sc.metrics.precision_recall(real, fake)
    sc.set_num_threads(2)
    local p2 = sc.metrics.precision_recall(real, fake)
    sc.set_num_threads(prev)
    assert.are.equal(p1.precision, p2.precision)
    assert.are.equal(p1.recall, p2.recall)
    assert.are.equal(1100, p1.real_radii:eq(p2.real_radii):sum():item())
    assert.are.equal(1000, p1.realism:eq(p2.realism):sum():item())
    -- radii across tiles against brute force for a few points
    local R = rows(real)
    for _, i in ipairs({ 1, 480, 481, 1100 }) do
      assert.is_true(math.abs(p1.real_radii:values()[i] - math.sqrt(kth_radius2(R, i, 3))) < 1e-4)
    end
  end)

  it("rejects bad arguments with messages", function()
    local x = sc.randn(10, 3)
    assert.has_error(function() sc.metrics.precision_recall(x, sc.randn(10, 4)) end)
    assert.has_error(function() sc.metrics.precision_recall(x, sc.randn(3, 3)) end)
    assert.has_error(function() sc.metrics.precision_recall(x, x, { K = 3 }) end,
      "scorch.metrics.precision_recall: unknown option 'K' (valid: k, realism)")
    assert.has_error(function() sc.metrics.precision_recall(x, x, { k = 0 }) end)
    assert.has_error(function() sc.metrics.knn_radii(sc.randn(3, 2), 3) end)
  end)
end)

describe("sc.metrics.kid", function()
  it("equals the unbiased cubic-kernel MMD² computed by brute force (whole sets)", function()
    sc.manual_seed(14)
    local x, y = sc.randn(40, 6), sc.randn(30, 6) * 0.8 + 0.2
    local X, Y = rows(x), rows(y:narrow(1, 1, 30))
    local m = 30
    local Xs = {}
    -- subset_size 30 of x's 40 rows is a random subset; use 30 rows of each instead
    x = x:narrow(1, 1, 30)
    for i = 1, 30 do Xs[i] = X[i] end
    local function k(a, b)
      local s = 0
      for j = 1, 6 do s = s + a[j] * b[j] end
      return (s / 6 + 1) ^ 3
    end
    local kxx, kyy, kxy = 0, 0, 0
    for i = 1, m do
      for j = 1, m do
        if i ~= j then kxx, kyy = kxx + k(Xs[i], Xs[j]), kyy + k(Y[i], Y[j]) end
        kxy = kxy + k(Xs[i], Y[j])
      end
    end
    local want = (kxx + kyy) / (m * (m - 1)) - 2 * kxy / (m * m)
    local mean, std, info = sc.metrics.kid(x, y, { subsets = 3, subset_size = 30 })
    assert.is_true(math.abs(mean - want) < 1e-5 * math.abs(want) + 1e-9, mean .. " vs " .. want)
    assert.is_true(std < 1e-9)               -- every subset is the whole set
    assert.are.equal(3, #info.values)
    -- near 0 for two samples of one distribution, positive for different ones
    local same = sc.metrics.kid(sc.randn(500, 8), sc.randn(500, 8), { subsets = 10, subset_size = 200 })
    local diff = sc.metrics.kid(sc.randn(500, 8), sc.randn(500, 8) + 0.5, { subsets = 10, subset_size = 200 })
    assert.is_true(math.abs(same) < 0.05 and diff > 0.2, same .. " " .. diff)
    assert.has_error(function() sc.metrics.kid(x, y, { subset_size = 31 }) end)
  end)
end)

describe("sc.metrics.mmd in chunks", function()
  it("gives the numbers of the full kernel matrix, whatever the block", function()
    sc.manual_seed(15)
    local x, y = sc.randn(700, 2), sc.randn(500, 2) + 0.3
    local full = sc.metrics.mmd(x, y, { bandwidth = 1.0, block = 100000 })
    for _, b in ipairs({ 1, 64, 333 }) do
      local v = sc.metrics.mmd(x, y, { bandwidth = 1.0, block = b })
      assert.is_true(math.abs(v - full) < 1e-6, v .. " vs " .. full)
    end
    -- and against the formula in doubles for a small pair
    local a, b = rows(x:narrow(1, 1, 20)), rows(y:narrow(1, 1, 15))
    local function kk(p, q) return math.exp(-d2(p, q) / 2) end
    local sxx, syy, sxy = 0, 0, 0
    for i = 1, 20 do for j = 1, 20 do if i ~= j then sxx = sxx + kk(a[i], a[j]) end end end
    for i = 1, 15 do for j = 1, 15 do if i ~= j then syy = syy + kk(b[i], b[j]) end end end
    for i = 1, 20 do for j = 1, 15 do sxy = sxy + kk(a[i], b[j]) end end
    local want = sxx / 380 + syy / 210 - 2 * sxy / 300
    local got = sc.metrics.mmd(x:narrow(1, 1, 20), y:narrow(1, 1, 15), { bandwidth = 1.0, block = 7 })
    assert.is_true(math.abs(got - want) < 1e-5)
  end)
end)
