-- sc.viz image figures: grids, denoising strips and class histograms,
-- written as PNGs and read back byte by byte (sc.image.load_png).
local sc = require "scorch"
local images = require "scorch.viz.image_figures"

local tmp = os.tmpname()
os.remove(tmp)
local dir = tmp .. "_viz_images"

-- save_png's quantisation of a value in [0, 1]
local function byte(v) return math.floor(v * 255 + 0.5) end

-- the written picture as a [C][H][W] table of bytes
local function read(path)
  local t = assert(sc.image.load_png(path))
  local px = t:totable()
  for _, plane in ipairs(px) do
    for _, row in ipairs(plane) do
      for x, v in ipairs(row) do row[x] = math.floor(v * 255 + 0.5) end
    end
  end
  return px, t:shape()
end

local read_bytes = require("helpers").read_bytes

-- the grey value of pixel (x, y), checking the three channels agree
local function grey(px, x, y)
  local v = px[1][y][x]
  assert.are.equal(v, px[2][y][x])
  assert.are.equal(v, px[3][y][x])
  return v
end

describe("sc.viz.image_grid", function()
  setup(function() os.execute("mkdir -p '" .. dir .. "'") end)
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

  it("reads values in [0, 1] unless given a range, as the data sets and save_png do", function()
    local x = sc.tensor { { { { 0, 0.5 }, { 1, 0.25 } } } }
    local px = read(assert(sc.viz.image_grid(dir .. "/d.png", x, { pad = 1, scale = 1 })))
    assert.are.equal(0, grey(px, 2, 2))
    assert.are.equal(byte(0.5), grey(px, 3, 2))
    assert.are.equal(255, grey(px, 2, 3))
    assert.are.equal(byte(0.25), grey(px, 3, 3))
  end)

  it("places each image at make_grid's offsets with values mapped from the range", function()
    local x = sc.tensor {
      { { { -1, 0 }, { 1, 0.5 } } },
      { { { -0.5, -0.5 }, { -0.5, -0.5 } } },
      { { { 2, -3 }, { 0 / 0, 0.2 } } },
    }
    local path = assert(sc.viz.image_grid(dir .. "/g.png", x, { nrow = 2, pad = 1, scale = 1, range = { -1, 1 } }))
    local px, shape = read(path)
    -- width pad + 2·(2 + pad), height pad + 2 rows·(2 + pad)
    assert.are.same({ 3, 7, 7 }, shape)
    -- image 1 at (2, 2): −1 → 0, 0 → ½, 1 → 1, 0.5 → ¾
    assert.are.equal(0, grey(px, 2, 2))
    assert.are.equal(byte(0.5), grey(px, 3, 2))
    assert.are.equal(255, grey(px, 2, 3))
    assert.are.equal(byte(0.75), grey(px, 3, 3))
    -- image 2 beside it at (5, 2); image 3 below image 1, clamped, NaN as 0
    assert.are.equal(byte(0.25), grey(px, 5, 2))
    assert.are.equal(byte(0.25), grey(px, 6, 3))
    assert.are.equal(255, grey(px, 2, 5))
    assert.are.equal(0, grey(px, 3, 5))
    assert.are.equal(0, grey(px, 2, 6))
    assert.are.equal(byte(0.6), grey(px, 3, 6))
    -- padding and the empty fourth slot keep the white background
    assert.are.equal(255, grey(px, 1, 1))
    assert.are.equal(255, grey(px, 4, 3))
    assert.are.equal(255, grey(px, 5, 5))
  end)

  it("scales pixels to blocks, keeps colour, and makes room for a title and labels", function()
    -- one RGB image, 2x1: a red and a blue pixel, range [0, 1]
    local x = sc.tensor { { { { 1, 0 } }, { { 0, 0 } }, { { 0, 1 } } } }
    local path = assert(sc.viz.image_grid(dir .. "/rgb.png", x, { pad = 2, scale = 3, range = { 0, 1 },
      title = "t", labels = { "a" } }))
    local px, shape = read(path)
    -- width 2 + 6 + 2; height title band + 2 + 3 + label band + 2
    local band = images.title_band()
    local title_w = math.floor(sc.viz.text_width("t", 13) + 0.5) + 2 * 2 + 1
    assert.are.same({ 3, band + 2 + 3 + images.label_band() + 2, math.max(10, title_w) }, shape)
    local y0 = band + 2 + 1
    for dy = 0, 2 do
      for dx = 0, 2 do
        assert.are.same({ 255, 0, 0 }, { px[1][y0 + dy][3 + dx], px[2][y0 + dy][3 + dx], px[3][y0 + dy][3 + dx] })
        assert.are.same({ 0, 0, 255 }, { px[1][y0 + dy][6 + dx], px[2][y0 + dy][6 + dx], px[3][y0 + dy][6 + dx] })
      end
    end
    -- the row below the image is background, the title band holds black text
    assert.are.equal(255, grey(px, 3, y0 + 3))
    local ink = 0
    for y = 1, band do for xx = 1, 10 do if grey(px, xx, y) < 128 then ink = ink + 1 end end end
    assert.is_true(ink > 0)
    -- a title wider than the grid widens the canvas to fit it
    local long = "σ = 0.01, 1000 steps of Langevin dynamics"
    local wide = assert(sc.viz.image_grid(nil, x, { pad = 2, scale = 3, title = long }))
    assert.is_true(wide.w >= sc.viz.text_width(long, 13) + 4)
    assert.has_error(function() sc.viz.image_grid(nil, sc.zeros(1, 1, 2, 2), { rnage = { 0, 1 } }) end,
      "scorch.viz.image_grid: unknown option 'rnage' (valid: background, labels, nrow, pad, range, scale, title)")
    assert.has_error(function() sc.viz.image_grid(nil, sc.zeros(1, 1, 2, 2), { range = { 1, 0 } }) end,
      "scorch.viz.image_grid: range must be {lo, hi} with lo < hi")
    assert.has_error(function() sc.viz.image_grid(nil, sc.zeros(2, 2)) end)
    assert.has_error(function() sc.viz.image_grid(nil, sc.zeros(1, 2, 4, 4)) end)
    assert.has_error(function() sc.viz.image_grid(nil, sc.zeros(1, 1, 4, 4), { nrow = 0 }) end)
  end)
end)

describe("sc.viz.denoising_strip", function()
  setup(function() os.execute("mkdir -p '" .. dir .. "'") end)
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

  it("puts sample j at step f in row j, column f, under a header of labels", function()
    local frames = {}
    for f = 1, 3 do
      -- sample j of frame f is a constant (f + 3(j − 1))/10
      frames[f] = sc.tensor { { { { f / 10, f / 10 }, { f / 10, f / 10 } } },
        { { { (f + 3) / 10, (f + 3) / 10 }, { (f + 3) / 10, (f + 3) / 10 } } } }
    end
    local path = assert(sc.viz.denoising_strip(dir .. "/s.png", frames, { labels = { "a", "b", "c" },
      pad = 1, scale = 1, range = { 0, 1 } }))
    local px, shape = read(path)
    -- width 1 + 3·3; height label band + 1 + 2·3
    local band = images.label_band()
    assert.are.same({ 3, band + 7, 10 }, shape)
    for f = 1, 3 do
      for j = 1, 2 do
        local x0, y0 = 1 + (f - 1) * 3 + 1, band + 1 + (j - 1) * 3 + 1
        assert.are.equal(byte((f + 3 * (j - 1)) / 10), grey(px, x0 + 1, y0 + 1))
      end
    end
    -- every header label leaves ink in the band
    for f = 1, 3 do
      local ink = 0
      for y = 1, band do for x = 2 + (f - 1) * 3, 3 + (f - 1) * 3 do
        if grey(px, x, y) < 128 then ink = ink + 1 end
      end end
      assert.is_true(ink > 0, "no label over column " .. f)
    end
    assert.has_error(function() sc.viz.denoising_strip(nil, { frames[1], sc.zeros(3, 1, 2, 2) }) end)
    assert.has_error(function() sc.viz.denoising_strip(nil, {}) end)
  end)
end)

describe("sc.viz.class_histogram", function()
  setup(function() os.execute("mkdir -p '" .. dir .. "'") end)
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

  local L = images.histogram_layout
  local function rgb(name)
    local c = sc.viz.colors[name]
    return { byte(c[1]), byte(c[2]), byte(c[3]) }
  end
  -- the tallest vertical run of colour c inside class slot k
  local function bar_height(px, k, c)
    local best = 0
    for x = L.left + (k - 1) * L.slot, L.left + k * L.slot - 1 do
      local run = 0
      for y = 1, #px[1] do
        if px[1][y][x] == c[1] and px[2][y][x] == c[2] and px[3][y][x] == c[3] then
          run = run + 1
          if run > best then best = run end
        else
          run = 0
        end
      end
    end
    return best
  end

  it("draws bars proportional to the fractions beside the reference mix", function()
    local names = { "square", "circle" }
    local a = assert(sc.viz.class_histogram(dir .. "/counts.png", names, { 30, 10 }, { reference = { 0.5, 0.5 } }))
    local b = assert(sc.viz.class_histogram(dir .. "/fracs.png", names, { 0.75, 0.25 }, { reference = { 5, 5 } }))
    -- counts are normalised: the two pictures are the same bytes
    assert.are.equal(read_bytes(a), read_bytes(b))
    local px, shape = read(a)
    assert.are.same({ 3, L.top + L.height + L.bottom, L.left + 2 * L.slot + L.right }, shape)
    -- the y axis runs to 0.8, the first tick of 0.2 steps above 0.75:
    -- bars of round(f / 0.8 · height) pixels
    local blue, gray = rgb("blue"), rgb("gray")
    assert.are.equal(math.floor(0.75 / 0.8 * L.height + 0.5), bar_height(px, 1, blue))
    assert.are.equal(math.floor(0.25 / 0.8 * L.height + 0.5), bar_height(px, 2, blue))
    assert.are.equal(math.floor(0.5 / 0.8 * L.height + 0.5), bar_height(px, 1, gray))
    assert.are.equal(math.floor(0.5 / 0.8 * L.height + 0.5), bar_height(px, 2, gray))
  end)

  it("works without a reference and rejects mismatched or negative input", function()
    local path = assert(sc.viz.class_histogram(dir .. "/one.png", { "a", "b", "c" }, { 0.2, 0.2, 0.6 }))
    local px = read(path)
    local blue, gray = rgb("blue"), rgb("gray")
    -- axis to 0.6 exactly: the tallest bar fills the plot
    assert.are.equal(L.height, bar_height(px, 3, blue))
    assert.are.equal(math.floor(0.2 / 0.6 * L.height + 0.5), bar_height(px, 1, blue))
    assert.are.equal(0, bar_height(px, 1, gray))
    assert.has_error(function() sc.viz.class_histogram(nil, { "a" }, { 0.5, 0.5 }) end)
    assert.has_error(function() sc.viz.class_histogram(nil, { "a", "b" }, { 0.5, -0.5 }) end)
    assert.has_error(function() sc.viz.class_histogram(nil, { "a", "b" }, { 1, 1 }, { reference = { 1 } }) end)
  end)
end)
