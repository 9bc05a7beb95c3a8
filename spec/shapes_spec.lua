-- sc.data.shapes: synthetic shape images checked against closed-form areas,
-- the multinomial law of the class mix, and seeded determinism.
local sc = require "scorch"

-- Counts of each label 1..k in a label tensor.
local function counts(labels, k)
  local c = {}
  for i = 1, k do c[i] = 0 end
  for _, y in ipairs(labels:values()) do c[y] = c[y] + 1 end
  return c
end

describe("sc.data.shapes", function()
  it("returns [n,1,size,size] images in [0,1] and 1-based labels", function()
    local x, y, names = sc.data.shapes { n = 50, size = 32, generator = sc.Generator(3) }
    assert.same({ 50, 1, 32, 32 }, x:shape())
    assert.equal("float32", x:dtype())
    assert.same({ 50 }, y:shape())
    assert.same({ "square", "circle", "rings", "triangle" }, names)
    assert.is_true(x:min():item() >= 0)
    assert.is_true(x:max():item() <= 1)
    assert.is_true(x:max():item() > 0.55) -- shapes are drawn at level >= 0.6
    for _, v in ipairs(y:values()) do
      assert.is_true(v == 1 or v == 2 or v == 3 or v == 4)
    end
    -- anti-aliased: some pixels are strictly between background and level
    local frac = x:gt(0.02):mul(x:lt(0.55)):mean():item()
    assert.is_true(frac > 0.002, "no partial-coverage pixels: " .. frac)
  end)

  it("draws classes with the given weights (multinomial, 4 sd)", function()
    local n, w = 4000, { 0.7, 0.1, 0.15, 0.05 }
    local _, y = sc.data.shapes { n = n, size = 8, supersample = 1, weights = w,
                                  generator = sc.Generator(11) }
    local c = counts(y, 4)
    for i, p in ipairs(w) do
      local sd = math.sqrt(n * p * (1 - p))
      assert.is_true(math.abs(c[i] - n * p) < 4 * sd,
        ("class %d: %d draws, expected %.0f ± %.0f"):format(i, c[i], n * p, sd))
    end
    -- a zero weight never appears
    local _, y0 = sc.data.shapes { n = 300, size = 8, weights = { 0, 1, 0, 1 },
                                   generator = sc.Generator(2) }
    local c0 = counts(y0, 4)
    assert.equal(0, c0[1]); assert.equal(0, c0[3])
    assert.equal(300, c0[2] + c0[4])
  end)

  it("is deterministic for a seed and differs across seeds", function()
    local a, ya = sc.data.shapes { n = 20, generator = sc.Generator(5) }
    local b, yb = sc.data.shapes { n = 20, generator = sc.Generator(5) }
    local c = sc.data.shapes { n = 20, generator = sc.Generator(6) }
    assert.equal(0, (a - b):abs():max():item())
    assert.same(ya:values(), yb:values())
    assert.is_true((a - c):abs():max():item() > 0.5)
  end)

  it("covers the closed-form area of each shape", function()
    -- r fixed, so each image's ink / level = area in units of the half-width
    -- times (size/2)^2 pixels per unit area.
    local r, size, n = 0.6, 28, 40
    local area = {
      square = 2 * r * r,                                   -- side r√2
      circle = math.pi * r * r,
      rings = math.pi * r * r * ((1 - 0.75 ^ 2) + (0.55 ^ 2 - 0.3 ^ 2)),
      triangle = 3 * math.sqrt(3) / 4 * r * r,
    }
    for _, name in ipairs(sc.data.shape_classes) do
      local x = sc.data.shapes { n = n, size = size, classes = { name }, scale = { r, r },
                                 level = { 1, 1 }, generator = sc.Generator(7) }
      local ink = x:sum():item() / n / (size / 2) ^ 2
      assert.is_true(math.abs(ink - area[name]) < 0.04 * area[name],
        ("%s: ink %.4f, area %.4f"):format(name, ink, area[name]))
    end
  end)

  it("gives each class a distinct mean image; rings have a hole", function()
    -- large shapes stay near the centre (room = 1 − r), so means are sharp
    local size, c = 28, {}
    for i, name in ipairs(sc.data.shape_classes) do
      c[i] = sc.data.shapes { n = 200, size = size, classes = { name }, scale = { 0.9, 0.9 },
                              generator = sc.Generator(i) }:mean(1):reshape(size, size)
    end
    for i = 1, 4 do
      for j = i + 1, 4 do
        local d = (c[i] - c[j]):abs():mean():item()
        assert.is_true(d > 0.03, ("classes %d and %d differ by only %.4f"):format(i, j, d))
      end
    end
    local rings, circle = c[3], c[2]
    local centre = rings:narrow(1, 14, 2):narrow(2, 14, 2):mean():item()
    -- a pixel column 0.87 r from the centre: inside the outer annulus
    local on_ring = rings:narrow(1, 14, 2):narrow(2, 14 + 11, 1):mean():item()
    assert.is_true(centre < 0.1, "rings centre " .. centre)
    assert.is_true(on_ring > centre + 0.3, ("ring %.3f vs centre %.3f"):format(on_ring, centre))
    assert.is_true(circle:narrow(1, 14, 2):narrow(2, 14, 2):mean():item() > 0.6)
  end)

  it("rejects bad options", function()
    assert.has_error(function() sc.data.shapes { n = 0 } end)
    assert.has_error(function() sc.data.shapes { n = 5, classes = { "hexagon" } } end)
    assert.has_error(function() sc.data.shapes { n = 5, weights = { 1, 2 } } end)
    assert.has_error(function() sc.data.shapes { n = 5, weights = { 0, 0, 0, 0 } } end)
    assert.has_error(function() sc.data.shapes { n = 5, size = 2.5 } end)
  end)
end)
