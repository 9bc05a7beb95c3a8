-- Class conditioning in the networks, against the definitions: a network
-- built with classes draws the same base parameters as one without (the
-- class embedding comes last), its output depends on the label exactly
-- through the embedding row (label 0 = the null row), label dropout drops
-- a fraction p of labels (binomial tolerance), and a loss reaches the class
-- embedding through sc.param.bind.
local sc = require "scorch"

local function fails(pattern, f)
  local ok, err = pcall(f)
  assert.is_false(ok)
  assert(tostring(err):find(pattern, 1, true), "message: " .. tostring(err))
end

local x2 = sc.randn({ 6, 2 }, { generator = sc.Generator(1) })
local img = sc.randn({ 3, 1, 8, 8 }, { generator = sc.Generator(2) })

local NETS = {
  { "DiffusionMLP", function(o)
    o.width, o.blocks = 16, 2
    return sc.models.DiffusionMLP(o)
  end, x2, 10 },
  { "ScoreMLP", function(o)
    o.hidden = { 16 }
    return sc.models.ScoreMLP(o)
  end, x2, 0.5 },
  { "NCSN", function(o)
    o.channels = 4
    return sc.models.NCSN(o)
  end, img, 0.5 },
  { "UNet", function(o)
    -- 16 channels: with 8, GroupNorm has one channel per group and removes any added embedding
    o.channels, o.mults, o.attention, o.mid_attention = 16, { 1 }, { false }, false
    return sc.models.UNet(o)
  end, img, 10 },
}

for _, case in ipairs(NETS) do
  local name, make, x, c = case[1], case[2], case[3], case[4]
  local n = x:size(1)
  describe(name .. " with classes", function()
    it("keeps the unconditional network's parameters and adds the class table last", function()
      local plain = make { generator = sc.Generator(7) }
      local cond = make { classes = 3, generator = sc.Generator(7) }
      local a, b = plain:named_parameters(), cond:named_parameters()
      assert.are.equal(#a + 1, #b)
      for i = 1, #a do
        assert.are.equal(a[i][1], b[i][1])
        if name ~= "ScoreMLP" or i > 1 then   -- ScoreMLP's first layer takes the class embedding as input
          assert.are.same(a[i][2]:shape(), b[i][2]:shape())
        end
      end
      assert.are.equal("class_embed.table.weight", b[#b][1])
      assert.are.same({ 4, name == "ScoreMLP" and 8 or b[#b][2]:size(2) }, b[#b][2]:shape())
    end)

    it("answers per label: equal labels give equal rows, and 0 is the null class", function()
      local net = make { classes = 3, generator = sc.Generator(7) }
      local lv = sc.param.level(c, x)
      local ones = net(x, lv, 1)
      local mixed = net(x, lv, (function()
        local l = {}
        for i = 1, n do l[i] = (i % 2 == 1) and 1 or 0 end
        return l
      end)())
      local null = net(x, lv, 0)
      assert.are.same(null:values(), net(x, lv):values())             -- nil is ∅
      assert.is_true((ones - null):abs():max():item() > 1e-4)
      assert.are.same(ones:narrow(1, 1, 1):values(), mixed:narrow(1, 1, 1):values())
      assert.are.same(null:narrow(1, 2, 1):values(), mixed:narrow(1, 2, 1):values())
    end)

    it("rejects a bad label, a wrong count, and labels for an unconditional net", function()
      local net = make { classes = 3, generator = sc.Generator(7) }
      local lv = sc.param.level(c, x)
      fails(("scorch.models.%s: labels[1] = 4 is out of range (classes 1..3"):format(name), function()
        net(x, lv, 4)
      end)
      fails(("scorch.models.%s: labels has 2 values for a batch of %d"):format(name, n), function()
        net(x, lv, { 1, 2 })
      end)
      local strict = make { classes = 3, p_uncond = 0, generator = sc.Generator(7) }
      fails("this model has no null class", function() strict(x, lv, 0) end)
      fails("labels missing and this model has no null class", function() strict(x, lv) end)
      fails(("scorch.models.%s: labels (argument #3) given to a model built without classes"):format(name), function()
        make {}(x, lv, 1)
      end)
      fails("p_uncond must be a number in [0, 1)", function() make { classes = 3, p_uncond = 1 } end)
      fails("classes must be a positive integer", function() make { classes = 0 } end)
    end)
  end)
end

describe("label dropout", function()
  it("replaces a fraction p_uncond of the labels by 0, reproducibly", function()
    local y = {}
    for i = 1, 20000 do y[i] = (i % 4) + 1 end
    local d = sc.models.drop_labels(y, 0.15, { generator = sc.Generator(3) })
    local dropped = 0
    for i = 1, #y do
      if d[i] == 0 then dropped = dropped + 1 else assert.are.equal(y[i], d[i]) end
    end
    -- binomial: sd = sqrt(0.15 · 0.85 / 20000) = 0.0025
    assert.is_true(math.abs(dropped / #y - 0.15) < 0.01)
    assert.are.same(d, sc.models.drop_labels(y, 0.15, { generator = sc.Generator(3) }))
    assert.are.same(y, sc.models.drop_labels(y, 0))
    fails("scorch.models.drop_labels: p (argument #2) must be a number in [0, 1)", function()
      sc.models.drop_labels(y, 1)
    end)
  end)

  it("trains through any loss with the labels bound (the class table gets a gradient)", function()
    local net = sc.models.DiffusionMLP { classes = 2, width = 8, blocks = 1, generator = sc.Generator(4) }
    local sched = sc.schedules.ddpm { T = 100 }
    local y = sc.models.drop_labels({ 1, 2, 1, 2, 1, 2 }, 0.5, { generator = sc.Generator(2) })
    local loss = sc.losses.ddpm(sc.param.bind(net, y), x2, { schedule = sched, generator = sc.Generator(5) })
    loss:backward()
    local g = net.class_embed.table.weight.grad
    assert.is_not_nil(g)
    -- rows of used labels get a gradient, unused rows none (row 3 is ∅)
    local used = {}
    for _, l in ipairs(y) do used[l == 0 and 3 or l] = true end
    for r = 1, 3 do
      local norm = g:select(1, r):abs():sum():item()
      if used[r] then assert.is_true(norm > 0) else assert.are.equal(0, norm) end
    end
  end)
end)

describe("conditional sampling", function()
  it("passes the model's condition through a sampler untouched", function()
    local net = sc.models.DiffusionMLP { classes = 3, width = 8, blocks = 1, generator = sc.Generator(4) }
    local sched = sc.schedules.ddpm { T = 20 }
    local m = sc.param.wrap(net, { kind = "eps", process = sched })
    local seen = {}
    local spy = setmetatable({ classes = 3, null_class = true }, { __call = function(_, x, c, y)
      seen[#seen + 1] = y
      return net(x, c, y)
    end })
    local ms = sc.param.wrap(spy, { kind = "eps", process = sched }):with_cond(2)
    local g = sc.Generator(1)
    local a = sc.samplers.ddim(ms, sc.samplers.prior(sched, { 4, 2 }, { generator = g }), sched, { steps = 5 })
    g = sc.Generator(1)
    local b = sc.samplers.ddim(m:with_cond(2), sc.samplers.prior(sched, { 4, 2 }, { generator = g }), sched,
      { steps = 5 })
    assert.are.equal(5, #seen)
    for _, y in ipairs(seen) do assert.are.equal(2, y) end
    assert.are.same(a:values(), b:values())
    assert.is_nil(m.cond)                                   -- with_cond copies
  end)

  it("refuses a condition for a distribution's exact score, which would ignore it", function()
    local ok, err = pcall(function() sc.param.wrap(sc.data.two_gaussians()):with_cond(1) end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("scorch.param.Model:with_cond: a distribution's exact score takes no condition",
      1, true))
  end)
end)
