-- sc.losses.cross_entropy against hand-computed log-softmax values and
-- finite differences; sc.models.Classifier's shapes, its save/load round
-- trip, the cache's error for a missing file, and a small training run on
-- shapes that must end far above chance.
local sc = require "scorch"

local function close(a, b, tol) return math.abs(a - b) <= tol end

local function f64(t) return sc.tensor(t, { dtype = "float64" }) end

describe("sc.losses.cross_entropy", function()
  -- Row 1: z = (1, 2, 3), y = 3: −log p = log(1 + e⁻¹ + e⁻²) = 0.4076059644443803.
  -- Row 2: z = (0, 0, 0), y = 1: −log p = log 3 = 1.0986122886681098.
  -- Row 3: z = (−1, 4, 0.5), y = 1: 5 + log(e⁻⁵ + 1 + e^−3.5) = 5.03687392...
  local logits = { { 1, 2, 3 }, { 0, 0, 0 }, { -1, 4, 0.5 } }
  local labels = { 3, 1, 1 }
  local expected = {
    math.log(1 + math.exp(-1) + math.exp(-2)),
    math.log(3),
    5 + math.log(math.exp(-5) + 1 + math.exp(-3.5)),
  }

  it("is −log softmax(z)_y per row, averaged or summed", function()
    assert.is_true(close(expected[1], 0.4076059644443803, 1e-15))
    local per = sc.losses.cross_entropy(f64(logits), labels, { reduction = "none" }):values()
    for i = 1, 3 do assert.is_true(close(per[i], expected[i], 1e-12), ("row %d: %g"):format(i, per[i])) end
    local mean = (expected[1] + expected[2] + expected[3]) / 3
    assert.is_true(close(sc.losses.cross_entropy(f64(logits), labels):item(), mean, 1e-12))
    assert.is_true(close(sc.losses.cross_entropy(f64(logits), labels, { reduction = "sum" }):item(),
      3 * mean, 1e-12))
    -- labels as a float tensor (as data sets hand them out) give the same value
    assert.is_true(close(sc.losses.cross_entropy(f64(logits), sc.tensor(labels)):item(), mean, 1e-12))
    -- float32 logits agree to single precision
    assert.is_true(close(sc.losses.cross_entropy(sc.tensor(logits), labels):item(), mean, 1e-6))
  end)

  it("stays finite for huge logits", function()
    local v = sc.losses.cross_entropy(sc.tensor { { 1000, 0 }, { 0, 1000 } }, { 2, 2 })
    assert.is_true(close(v:item(), 500, 1e-3))
  end)

  it("has gradient (softmax(z) − onehot(y)) / N, and passes gradcheck", function()
    local z = f64(logits):requires_grad(true)
    sc.losses.cross_entropy(z, labels):backward()
    local g = z.grad:totable()
    for i = 1, 3 do
      local m, s = -math.huge, 0
      for k = 1, 3 do m = math.max(m, logits[i][k]) end
      for k = 1, 3 do s = s + math.exp(logits[i][k] - m) end
      for k = 1, 3 do
        local want = (math.exp(logits[i][k] - m) / s - (k == labels[i] and 1 or 0)) / 3
        assert.is_true(close(g[i][k], want, 1e-12), ("[%d][%d]: %g vs %g"):format(i, k, g[i][k], want))
      end
    end
    local x = sc.randn({ 5, 4 }, { generator = sc.Generator(3), dtype = "float64" }):requires_grad(true)
    local ok, msg = sc.gradcheck(function(a) return sc.losses.cross_entropy(a, { 4, 1, 2, 2, 3 }) end, { x })
    assert.is_true(ok, msg)
    ok, msg = sc.gradcheck(function(a)
      return sc.losses.cross_entropy(a, { 1, 1, 3, 4, 2 }, { reduction = "none" })
    end, { x })
    assert.is_true(ok, msg)
  end)

  it("names the function and the argument on bad input", function()
    local z = sc.zeros(2, 3)
    local cases = {
      { function() sc.losses.cross_entropy(z, { 1 }) end, "labels must have N = 2 entries, got 1" },
      { function() sc.losses.cross_entropy(z, sc.tensor { 1, 2, 3 }) end, "labels must have N = 2 entries" },
      { function() sc.losses.cross_entropy(z, { 1, 4 }) end, "label 2 is 4, expected an integer class in 1..3" },
      { function() sc.losses.cross_entropy(z, { 0, 1 }) end, "label 1 is 0" },
      { function() sc.losses.cross_entropy(z, { 1.5, 1 }) end, "label 1 is 1.5" },
      { function() sc.losses.cross_entropy(z, "cat") end, "labels must be a tensor or a table" },
      { function() sc.losses.cross_entropy(sc.zeros(3), { 1, 2, 3 }) end, "logits must be a tensor [N, K]" },
      { function() sc.losses.cross_entropy(z, { 1, 2 }, { reduction = "max" }) end, "reduction must be" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(c[1])
      assert.is_false(ok)
      assert.truthy(tostring(err):find("scorch.losses.cross_entropy: " .. c[2], 1, true), tostring(err))
    end
  end)
end)

describe("sc.models.Classifier", function()
  local g = sc.Generator(11)
  local model = sc.models.Classifier { classes = 4, channels = { 8, 16 }, size = 16, features = 24, generator = g }
  local x = sc.rand({ 6, 1, 16, 16 }, { generator = g }) * 2 - 1

  it("gives logits [N, K], features [N, F], labels and probabilities", function()
    assert.are.same({ 6, 4 }, model(x):shape())
    assert.are.same({ 6, 24 }, model:features(x):shape())
    local labels, probs = model:predict(x, { batch = 4 })   -- two batches
    assert.are.equal(6, #labels)
    assert.are.same({ 6, 4 }, probs:shape())
    assert.is_false(probs:requires_grad())
    local p, want = probs:totable(), sc.softmax(model(x), 2):totable()
    for i = 1, 6 do
      local s, best = 0, 1
      for k = 1, 4 do
        s = s + p[i][k]
        assert.is_true(close(p[i][k], want[i][k], 1e-6))
        if p[i][k] > p[i][best] then best = k end
      end
      assert.is_true(close(s, 1, 1e-5))
      assert.are.equal(best, labels[i])
    end
  end)

  it("is seeded by its generator", function()
    local a = sc.models.Classifier { classes = 3, channels = { 8 }, size = 8, generator = sc.Generator(5) }
    local b = sc.models.Classifier { classes = 3, channels = { 8 }, size = 8, generator = sc.Generator(5) }
    local z = sc.rand(2, 1, 8, 8)
    assert.are.same(a(z):totable(), b(z):totable())
  end)

  it("rejects bad options and inputs, naming them", function()
    local bad = {
      { { classes = 0 }, "classes must be a positive integer" },
      { { classes = 3, size = 30, channels = { 8, 8 } }, "size 30 is not divisible by 2^2" },
      { { classes = 3, channels = {} }, "channels must be a non-empty list" },
      { { classes = 3, channels = { 8, 0 } }, "channels[2] must be a positive integer" },
    }
    for _, c in ipairs(bad) do
      local ok, err = pcall(sc.models.Classifier, c[1])
      assert.is_false(ok)
      assert.truthy(tostring(err):find(c[2], 1, true), tostring(err))
    end
    local ok, err = pcall(model.forward, model, sc.zeros(2, 1, 28, 28))
    assert.is_false(ok)
    assert.truthy(tostring(err):find("x must be images [N, 1, 16, 16], got [2,1,28,28]", 1, true), tostring(err))
  end)

  it("saves and loads back the same network with its metadata", function()
    local path = os.tmpname()
    assert.is_true(model:save(path, { data = "shapes", class_names = { "a", "b c", "d/e", "f" },
      test_accuracy = 0.875 }))
    local back, info = sc.models.load_classifier("shapes", path)
    os.remove(path)
    assert.are.same(model(x):totable(), back(x):totable())
    assert.are.same(model:features(x):totable(), back:features(x):totable())
    assert.is_false(back.training)
    assert.are.same({ 8, 16 }, back.channels)
    assert.are.same({ "a", "b c", "d/e", "f" }, info.class_names)
    assert.are.equal(0.875, info.test_accuracy)
    assert.are.equal("shapes", info.data)
  end)

  it("with pool = \"flatten\" feeds the whole last map to the features, and reloads so", function()
    local flat = sc.models.Classifier { classes = 3, channels = { 4, 8 }, size = 8, features = 10, pool = "flatten",
      generator = sc.Generator(2) }
    assert.are.same({ 10, 8 * 2 * 2 }, flat.feature.weight:shape())
    assert.are.same({ 5, 3 }, flat(sc.zeros(5, 1, 8, 8)):shape())
    local path = os.tmpname()
    assert.is_true(flat:save(path))
    local back = sc.models.load_classifier("any", path)
    os.remove(path)
    assert.are.equal("flatten", back.pool)
    local z = sc.rand({ 2, 1, 8, 8 }, { generator = sc.Generator(4) })
    assert.are.same(flat(z):totable(), back(z):totable())
    local ok, err = pcall(sc.models.Classifier, { classes = 3, pool = "max" })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("pool must be \"global\" or \"flatten\", got max", 1, true), tostring(err))
  end)

  it("says which command trains a missing classifier", function()
    local path = sc.models.classifier_path("fashion_mnist")
    assert.truthy(path:find("/classifiers/fashion_mnist.safetensors$"), path)
    local ok, err = pcall(sc.models.load_classifier, "shapes", "/nonexistent/dir/shapes.safetensors")
    assert.is_false(ok)
    assert.truthy(tostring(err):find("no trained shapes classifier at /nonexistent/dir/shapes.safetensors", 1, true))
    assert.truthy(tostring(err):find("bin/scorch scripts/train_classifier.lua --data shapes", 1, true))
    ok, err = pcall(sc.models.load_classifier, "../etc")
    assert.is_false(ok)
    assert.truthy(tostring(err):find("scorch.models.load_classifier: data must be", 1, true))
  end)
end)

describe("training a classifier on shapes", function()
  it("learns four 16x16 shape classes far above chance (25%)", function()
    local x, y = sc.data.shapes { n = 512, size = 16, generator = sc.Generator(1) }
    local xt, yt = sc.data.shapes { n = 512, size = 16, generator = sc.Generator(2) }
    local g = sc.Generator(0)
    local model = sc.models.Classifier { classes = 4, channels = { 16, 32 }, size = 16, features = 32, generator = g }
    local opt = sc.optim.Adam(model, { lr = 3e-3 })
    local loader = sc.data.image_loader(x, { labels = y, batch_size = 64, shuffle = true, generator = g })
    local batches = loader:forever()
    for _ = 1, 400 do
      local xb, yb = batches()
      local loss = sc.losses.cross_entropy(model(xb), yb)
      opt:zero_grad()
      loss:backward()
      opt:step()
    end
    local pred = model:predict(xt * 2 - 1)
    local truth, hits = yt:values(), 0
    for i, p in ipairs(pred) do if p == truth[i] then hits = hits + 1 end end
    assert.is_true(hits / #pred >= 0.95, ("held-out accuracy %.3f"):format(hits / #pred))
  end)
end)
