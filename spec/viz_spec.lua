-- sc.viz: the Lua raster canvas pixel by pixel, and the figures written as
-- PNG files of the right size.
local sc = require "scorch"

local function close(a, b, tol) return math.abs(a - b) <= tol end

local function same_color(c, e, tol)
  tol = tol or 1e-9
  return close(c[1], e[1], tol) and close(c[2], e[2], tol) and close(c[3], e[3], tol)
end

-- width and height from a PNG's IHDR chunk
local function png_size(path)
  local f = assert(io.open(path, "rb"))
  local head = f:read(24)
  f:close()
  assert.are.equal("\137PNG\r\n\26\n", head:sub(1, 8))
  assert.are.equal("IHDR", head:sub(13, 16))
  local w = (">I4"):unpack(head, 17)
  local h = (">I4"):unpack(head, 21)
  return w, h
end

local tmp = os.tmpname()
os.remove(tmp)
local dir = tmp .. "_viz"

describe("sc.viz canvas", function()
  it("starts filled with the background and becomes a 3×H×W tensor", function()
    local cv = sc.viz.canvas(7, 5, { 0.1, 0.2, 0.3 })
    local t = cv:to_tensor()
    assert.are.same({ 3, 5, 7 }, t:shape())
    assert.is_true(close(t[1]:mean():item(), 0.1, 1e-6) and close(t[3]:mean():item(), 0.3, 1e-6))
    cv:blend(7, 5, { 1, 1, 1 }, 0.5)
    assert.is_true(same_color(cv:get(7, 5), { 0.55, 0.6, 0.65 }))
    -- (x, y) = column x, row y of the image
    local t2 = cv:to_tensor()
    assert.is_true(close(t2[1][5][7]:item(), 0.55, 1e-6))
    cv:blend(0, 1, { 1, 1, 1 }) -- outside: ignored
    cv:blend(8, 1, { 1, 1, 1 })
    assert.has_error(function() sc.viz.canvas(0, 5) end)
  end)

  it("draws discs, Wu lines with one unit of ink per column, and rectangles", function()
    local cv = sc.viz.canvas(40, 40, "white")
    cv:point(10, 10, "black", 2)
    assert.is_true(same_color(cv:get(10, 10), { 0, 0, 0 }))
    assert.is_true(same_color(cv:get(10, 13), { 1, 1, 1 }))
    local lc = sc.viz.canvas(40, 40, "black")
    lc:line(2, 5.3, 30, 17.9, "white")
    for x = 3, 29 do
      local ink = 0
      for y = 1, 40 do ink = ink + lc:get(x, y)[1] end
      assert.is_true(close(ink, 1, 1e-9), ("column %d holds %g"):format(x, ink))
    end
    -- steep lines: one unit per row
    local sl = sc.viz.canvas(40, 40, "black")
    sl:line(5, 2, 12, 35, "white")
    for y = 3, 34 do
      local ink = 0
      for x = 1, 40 do ink = ink + sl:get(x, y)[1] end
      assert.is_true(close(ink, 1, 1e-9))
    end
    cv:rect(20, 20, 30, 25, "red")
    assert.is_true(same_color(cv:get(25, 20), sc.viz.colors.red))
    assert.is_true(same_color(cv:get(25, 22), { 1, 1, 1 }))
    cv:arrow(5, 35, 35, 35, "blue")
    assert.is_true(same_color(cv:get(20, 35), sc.viz.colors.blue))
  end)

  it("heat maps through the colormap's end colours; nearest or bilinear", function()
    local vir = sc.viz.colormaps.viridis
    local cv = sc.viz.canvas(4, 2)
    local vmin, vmax = cv:heatmap({ 0, 1, 2, 3 }, 1, 4, 1, 1, 4, 2, { smooth = false })
    assert.are.equal(0, vmin)
    assert.are.equal(3, vmax)
    assert.is_true(same_color(cv:get(1, 1), vir[1], 1e-3))
    assert.is_true(same_color(cv:get(4, 2), vir[#vir], 1e-3))
    local cmap = sc.viz.colormap("viridis")
    local r, g, b = cmap(1 / 3)
    assert.is_true(same_color(cv:get(2, 1), { r, g, b }, 2e-3))
    -- -inf and NaN take the lowest colour
    cv:heatmap({ -math.huge, 0 / 0, 1, 2 }, 2, 2, 1, 1, 4, 2, { smooth = false })
    assert.is_true(same_color(cv:get(1, 1), vir[1], 1e-3) and same_color(cv:get(4, 1), vir[1], 1e-3))
    -- bilinear between cell centres (pixels 2.5 and 6.5 of 8): pixel 4 is
    -- 3/8 of the way, pixel 5 is 5/8; outside the centres it is flat
    local wide = sc.viz.canvas(8, 1)
    wide:heatmap({ 0, 1 }, 1, 2, 1, 1, 8, 1)
    assert.is_true(same_color(wide:get(4, 1), { cmap(0.375) }, 2e-3))
    assert.is_true(same_color(wide:get(5, 1), { cmap(0.625) }, 2e-3))
    assert.is_true(same_color(wide:get(1, 1), vir[1], 1e-3))
    assert.has_error(function() sc.viz.colormap("nope") end)
  end)

  it("writes 3×5 digits", function()
    local cv = sc.viz.canvas(12, 7)
    cv:text(2, 2, "10", "black")
    -- "1" is 010/110/010/010/111 at columns 2..4
    assert.is_true(same_color(cv:get(3, 2), { 0, 0, 0 }) and same_color(cv:get(2, 2), { 1, 1, 1 }))
    assert.is_true(same_color(cv:get(2, 6), { 0, 0, 0 }) and same_color(cv:get(4, 6), { 0, 0, 0 }))
    -- "0" starts 4 pixels later with a hollow middle
    assert.is_true(same_color(cv:get(6, 2), { 0, 0, 0 }) and same_color(cv:get(7, 4), { 1, 1, 1 }))
    assert.are.equal(7, sc.viz.text_width("10"))
  end)

  it("saves a PNG of its size", function()
    local cv = sc.viz.canvas(33, 21, "light")
    local path = assert(cv:save(tmp .. ".png"))
    assert.are.same({ 33, 21 }, { png_size(path) })
    os.remove(path)
    local ok, msg = cv:save("/nonexistent-dir/x.png")
    assert.is_nil(ok)
    assert.is_string(msg)
  end)

  it("draws a 512×512 density and 5000 points on one panel", function()
    local d = sc.data.eight_gaussians()
    local cv, axes = sc.viz.panels(1, 512, d.range)
    axes[1]:density(d)
    axes[1]:points(d:sample(5000, { generator = sc.Generator(1) }), "red")
    axes[1]:frame { title = "8 gaussians" }
    local t = cv:to_tensor()
    assert.are.equal(512 + 24 + 18, t:size(2))
  end)
end)

describe("sc.viz axes and figures", function()
  it("maps data coordinates to pixels, y upwards", function()
    local cv = sc.viz.canvas(100, 100)
    local ax = sc.viz.axes(cv, 11, 21, 90, 80, { -1, 1, 0, 3 })
    local px, py = ax:to_px(-1, 0)
    assert.are.same({ 11, 80 }, { px, py })
    px, py = ax:to_px(1, 3)
    assert.are.same({ 90, 21 }, { px, py })
    assert.are.same({ -1, -0.5, 0, 0.5, 1 }, sc.viz.ticks(-1, 1, 4))
    assert.are.same({ 0, 1, 2, 3 }, sc.viz.ticks(0, 3, 3))
  end)

  it("writes every figure as a PNG of the expected size", function()
    local d = sc.data.two_gaussians()
    local g = sc.Generator(1)
    local x = d:sample(300, { generator = g })
    local w, h = png_size(assert(sc.viz.scatter(dir .. "/scatter.png", x, { density = d, size = 200 })))
    assert.are.same({ 200 + 44, 200 + 42 }, { w, h })
    w = png_size(assert(sc.viz.sample_panels(dir .. "/panels.png",
      { { title = "a", x = x }, { title = "b", x = x } }, { density = d, size = 100 })))
    assert.are.equal(2 * 144, w)
    assert(sc.viz.density(dir .. "/density.png", d, { size = 100, scale = "log" }))
    w = png_size(assert(sc.viz.score_fields(dir .. "/field.png",
      { { title = "truth", score = d }, { title = "zero", score = function(z) return z * 0 end } },
      { sigma = 1, background = d, size = 120, n = 10 })))
    assert.are.equal(2 * 164, w)
    local cb, paths = sc.samplers.trajectory_recorder(5, 10, x)
    sc.samplers.langevin(sc.param.wrap(d), x, nil, { step = 0.1, n_steps = 50, callback = cb, generator = g })
    assert(sc.viz.trajectories(dir .. "/traj.png", paths, { density = d, size = 150 }))
    local losses = {}
    for i = 1, 100 do losses[i] = 5 * math.exp(-i / 20) + 0.01 end
    assert(sc.viz.loss_curve(dir .. "/loss.png", losses, { size = 150 }))
    assert(sc.viz.loss_curve(dir .. "/losses.png", { a = losses, b = { 1, -1, 2 } }, { size = 150 }))
    os.execute("rm -rf '" .. dir .. "'")
  end)
end)
