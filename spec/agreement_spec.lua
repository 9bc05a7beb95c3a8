-- The agreement score against hand-counted cases and against a closed form:
-- for two unit Gaussians at ±1 with equal weights, the Bayes classifier
-- labels a draw of either component correctly with probability Φ(1) = 0.8413.
local sc = require "scorch"

describe("sc.metrics.agreement", function()
  it("counts arg-max hits and averages the requested class's probability, per class", function()
    local probs = sc.tensor({ { 0.7, 0.2, 0.1 }, { 0.4, 0.5, 0.1 }, { 0.1, 0.1, 0.8 }, { 0.3, 0.6, 0.1 } })
    local r = sc.metrics.agreement(probs, { 1, 1, 3, 2 }, { names = { "a", "b", "c" } })
    assert.are.equal(4, r.n)
    assert.are.equal(0.75, r.agreement)
    assert.is_true(math.abs(r.confidence - (0.7 + 0.4 + 0.8 + 0.6) / 4) < 1e-6)
    assert.are.equal(2, r.per_class[1].n)
    assert.are.equal(0.5, r.per_class[1].agreement)
    assert.is_true(math.abs(r.per_class[1].confidence - 0.55) < 1e-6)
    assert.are.equal(1, r.per_class[2].agreement)
    assert.are.equal("c", r.per_class[3].name)
    local none = sc.metrics.agreement(probs, 3)
    assert.are.equal(0, none.per_class[1].n)
    assert.is_nil(none.per_class[1].agreement)
    assert.are.equal(0.25, none.agreement)
  end)

  it("is the Bayes accuracy Φ(1) for true draws of two unit Gaussians at ±1", function()
    local gm = sc.data.gaussian_mixture { means = { { -1, 0 }, { 1, 0 } }, stds = 1 }
    local clf = sc.models.mixture_classifier(gm)
    local x, labels = gm:sample(40000, { generator = sc.Generator(8) })
    local r = sc.metrics.agreement(sc.softmax(clf(x), 2), labels)
    -- binomial sd: sqrt(0.84 · 0.16 / 40000) = 0.0018
    assert(math.abs(r.agreement - 0.8413) < 0.008, ("agreement %.4f, truth 0.8413"):format(r.agreement))
    for k = 1, 2 do assert.is_true(math.abs(r.per_class[k].agreement - 0.8413) < 0.012) end
  end)

  it("rejects bad input, naming the argument and the shapes", function()
    local function fails(pattern, f)
      local ok, err = pcall(f)
      assert.is_false(ok)
      assert(tostring(err):find(pattern, 1, true), "message: " .. tostring(err))
    end
    local probs = sc.tensor({ { 0.5, 0.5 }, { 0.1, 0.9 } })
    fails("scorch.metrics.agreement: probs (argument #1) must be a tensor [N, K]", function()
      sc.metrics.agreement(sc.zeros(4), { 1 })
    end)
    fails("scorch.metrics.agreement: requested has 3 classes for 2 rows of probs [2,2]", function()
      sc.metrics.agreement(probs, { 1, 2, 1 })
    end)
    fails("scorch.metrics.agreement: requested[2] = 3 is not a class 1..2", function()
      sc.metrics.agreement(probs, { 1, 3 })
    end)
    fails("scorch.metrics.agreement: unknown option 'K'", function() sc.metrics.agreement(probs, 1, { K = 2 }) end)
  end)
end)
