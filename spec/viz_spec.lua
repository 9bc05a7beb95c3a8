-- sc.viz: the Lua raster canvas pixel by pixel, text rasterised from the
-- TrueType font (ink where the glyphs are, boxes that grow with the text)
-- and the bitmap fallback pixel by pixel, and the figures written as PNG
-- files of the size their layout says.
local sc = require "scorch"
local canvas = require "scorch.viz.canvas"
local plots = require "scorch.viz.plots"
local H = require "helpers"

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

  it("falls back to 3×5 digits without a font", function()
    canvas.use_font("bitmap")
    local ok, err = pcall(function()
      local cv = sc.viz.canvas(12, 7)
      cv:text(2, 2, "10", "black", 10)
      -- "1" is 010/110/010/010/111 at columns 2..4
      assert.is_true(same_color(cv:get(3, 2), { 0, 0, 0 }) and same_color(cv:get(2, 2), { 1, 1, 1 }))
      assert.is_true(same_color(cv:get(2, 6), { 0, 0, 0 }) and same_color(cv:get(4, 6), { 0, 0, 0 }))
      -- "0" starts 4 pixels later with a hollow middle
      assert.is_true(same_color(cv:get(6, 2), { 0, 0, 0 }) and same_color(cv:get(7, 4), { 1, 1, 1 }))
      assert.are.equal(7, sc.viz.text_width("10", 10))
      -- σ has no bitmap glyph: a blank of one character's width
      assert.are.equal(11, sc.viz.text_width("1σ1", 10))
    end)
    canvas.use_font()
    assert(ok, err)
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
    assert.are.equal(512 + plots.margins.top + plots.margins.bottom, t:size(2))
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
    local m = plots.margins
    local across, down = m.left + m.right, m.top + m.bottom
    local w, h = png_size(assert(sc.viz.scatter(dir .. "/scatter.png", x, { density = d, size = 200 })))
    assert.are.same({ 200 + across, 200 + down }, { w, h })
    w = png_size(assert(sc.viz.sample_panels(dir .. "/panels.png",
      { { title = "a", x = x }, { title = "b", x = x } }, { density = d, size = 100 })))
    assert.are.equal(2 * (100 + across), w)
    assert(sc.viz.density(dir .. "/density.png", d, { size = 100, scale = "log" }))
    w = png_size(assert(sc.viz.score_fields(dir .. "/field.png",
      { { title = "truth", score = d }, { title = "zero", score = function(z) return z * 0 end } },
      { sigma = 1, background = d, size = 120, n = 10 })))
    assert.are.equal(2 * (120 + across), w)
    local cb, paths = sc.samplers.trajectory_recorder(5, 10, x)
    sc.samplers.langevin(sc.param.wrap(d), x, nil, { step_size = 0.1, steps = 50, callback = cb, generator = g })
    assert(sc.viz.trajectories(dir .. "/traj.png", paths, { density = d, size = 150 }))
    local losses = {}
    for i = 1, 100 do losses[i] = 5 * math.exp(-i / 20) + 0.01 end
    assert(sc.viz.loss_curve(dir .. "/loss.png", losses, { size = 150 }))
    assert(sc.viz.loss_curve(dir .. "/losses.png", { a = losses, b = { 1, -1, 2 } }, { size = 150 }))
    os.execute("rm -rf '" .. dir .. "'")
  end)
end)

-- Dark pixels (red channel below 0.5) of a canvas inside [x0, x1] × [y0, y1].
local function ink(cv, x0, y0, x1, y1)
  local n = 0
  for y = math.max(1, y0), math.min(cv.h, y1) do
    for x = math.max(1, x0), math.min(cv.w, x1) do
      if cv.data[(y - 1) * cv.w + x] < 0.5 then n = n + 1 end
    end
  end
  return n
end

-- Pixels where two canvases of one size differ, inside a rectangle.
local function changed(a, b, x0, y0, x1, y1)
  local n = 0
  for y = math.max(1, y0), math.min(a.h, y1) do
    for x = math.max(1, x0), math.min(a.w, x1) do
      local i = (y - 1) * a.w + x
      if math.abs(a.data[i] - b.data[i]) > 0.1 then n = n + 1 end
    end
  end
  return n
end

describe("sc.viz text from a TrueType font", function()
  local font_path = canvas.font_path()
  local core_font = font_path and sc.core.font.load(font_path)
  if not font_path then
    print("viz_spec: no TrueType font installed (fonts-dejavu-core); TrueType text specs skipped")
  end
  local tt = font_path and it or pending

  tt("has the glyphs of σ, ε, ∇ and subscripts, with ink where the glyph is", function()
    for _, cp in ipairs { 0x3C3, 0x3B5, 0x2207, 0x2081, 0x2212, 0x2070 } do
      assert.is_true(core_font:has_glyph(cp), ("U+%04X"):format(cp))
    end
    local bits, w, h, origin, baseline = core_font:render("σ", 20)
    assert.are.equal(w * h, #bits)
    local sum, rows = 0, {}
    for y = 0, h - 1 do
      for x = 0, w - 1 do
        local v = bits:byte(y * w + x + 1)
        sum = sum + v
        if v > 0 then rows[y] = true end
      end
    end
    assert.is_true(sum > 255 * 20, "σ has too little ink: " .. sum)
    -- σ sits on the baseline and has no descender or capital height
    assert.is_nil(rows[baseline + 2])
    assert.is_true(rows[baseline - 1])
    assert.is_nil(rows[0])
    assert.are.equal(0, origin)
  end)

  tt("renders capitals at the font's cap height: sizes are em sizes", function()
    -- DejaVu Sans: cap height 1493 of 2048 units per em
    local bits, w, h, _, baseline = core_font:render("I", 100)
    local top, bottom = math.huge, -1
    for y = 0, h - 1 do
      for x = 0, w - 1 do
        if bits:byte(y * w + x + 1) > 127 then top, bottom = math.min(top, y), math.max(bottom, y) end
      end
    end
    if font_path:match("DejaVuSans%.ttf$") then
      assert.is_true(math.abs((bottom - top + 1) - 100 * 1493 / 2048) <= 1.5, ("I is %d rows"):format(bottom - top + 1))
    end
    assert.are.equal(baseline - 1, bottom)
    -- ink area grows as the square of the size
    local function area(px)
      local b = core_font:render("σ∇", px)
      local s = 0
      for k = 1, #b do s = s + b:byte(k) end
      return s / 255
    end
    local ratio = area(60) / area(30)
    assert.is_true(ratio > 3.6 and ratio < 4.4, "area ratio " .. ratio)
  end)

  tt("draws text inside the box it returns; the box grows with the string", function()
    local cv = sc.viz.canvas(300, 40)
    local x0, y0, x1, y1 = cv:text(10, 8, "Annealed Langevin, σ = 0.01", "black", 13)
    local inside = ink(cv, x0, y0, x1, y1)
    assert.is_true(inside > 100, "ink " .. inside)
    assert.are.equal(inside, ink(cv, 1, 1, 300, 40))
    local w_short = sc.viz.text_width("σ", 13)
    local w_title = sc.viz.text_width("σ = 0.01", 13)
    assert.is_true(w_short > 4 and w_title > 3 * w_short)
    assert.is_true(math.abs((x1 - x0 + 1) - sc.viz.text_width("Annealed Langevin, σ = 0.01", 13)) <= 1)
    local lh, ascent = sc.viz.text_height(13)
    assert.are.equal(lh, y1 - y0 + 1)
    assert.is_true(ascent > 0.8 * 13 and ascent < lh)
    -- "g" is not "3" (the old font drew langevin as lan3evin)
    assert.are_not.equal(core_font:render("g", 11), core_font:render("3", 11))
  end)

  tt("anchors, centres and rotates", function()
    local a = sc.viz.canvas(120, 120)
    local x0, y0, x1, y1 = a:text(60, 60, "σ_max", "black", { size = 14, anchor = "center", valign = "middle" })
    assert.is_true(math.abs((x0 + x1) / 2 - 60) <= 1 and y0 < 60 and y1 > 60)
    local r = sc.viz.canvas(120, 120)
    local rx0, ry0, rx1, ry1 = r:text(60, 60, "σ_max", "black",
      { size = 14, rotate = 90, anchor = "center", valign = "middle" })
    -- the same ink, in a box with its sides swapped
    assert.are.equal(x1 - x0, ry1 - ry0)
    assert.are.equal(y1 - y0, rx1 - rx0)
    assert.are.equal(ink(a, 1, 1, 120, 120), ink(r, 1, 1, 120, 120))
    assert.are.equal(0, ink(r, 1, 1, 120, ry0 - 1) + ink(r, 1, ry1 + 1, 120, 120))
    local t = sc.viz.canvas(60, 30)
    -- anchored right at 50: the box ends just left of column 50
    local _, _, rx = t:text(50, 5, "x₁", "black", { anchor = "right" })
    assert.are.equal(49, rx)
  end)

  tt("reads malformed UTF-8 as U+FFFD and refuses what it cannot draw", function()
    assert.are.equal(core_font:render("\u{FFFD}", 12), core_font:render("\xff", 12))
    assert.are.equal(core_font:render("a\u{FFFD}b", 12), core_font:render("a\xc3b", 12))
    local bits, w = core_font:render("", 12)
    assert.are.equal(0, w)
    assert.are.equal("", bits)
    assert.has_error(function() core_font:render("x", 0) end)
    assert.has_error(function() core_font:render("x", 1000) end)
    assert.has_error(function() core_font:render(string.rep("x", 5000), 10) end,
      "scorch.font: text longer than 1024 characters")
    assert.has_error(function() core_font:render({}, 10) end)
    assert.has_error(function() sc.viz.canvas(10, 10):text(1, 1, {}, "black") end)
    assert.has_error(function() sc.viz.text_width("x", 0) end)
    local closed
    do
      local f <close> = sc.core.font.load(font_path)
      closed = f
    end
    assert.has_error(function() closed:render("x", 10) end, "calling 'render' on bad self (font is closed)")
    assert.are.equal("scorch.Font (closed)", tostring(closed))
    local missing, msg = sc.core.font.load("/nonexistent/font.ttf")
    assert.is_nil(missing)
    assert.matches("cannot open", msg)
    local not_font, msg2 = sc.core.font.load("spec/viz_spec.lua")
    assert.is_nil(not_font)
    assert.matches("not a TrueType", msg2)
    assert.is_nil(rawget(sc, "font"))
  end)

  tt("labels every chart's axes", function()
    local d = sc.data.two_gaussians()
    local x = d:sample(100, { generator = sc.Generator(2) })
    local losses = {}
    for i = 1, 50 do losses[i] = 1 / i end
    local none = { xlabel = "", ylabel = "" }
    local function with(o, extra)
      local t = {}
      for k, v in pairs(o or {}) do t[k] = v end
      for k, v in pairs(extra or {}) do t[k] = v end
      return t
    end
    local size = 100
    local charts = {
      scatter = function(o) return sc.viz.scatter(nil, x, with({ size = size }, o)) end,
      density = function(o) return sc.viz.density(nil, d, with({ size = size }, o)) end,
      fields = function(o)
        return sc.viz.score_fields(nil, { { title = "s", score = d } }, with({ size = size, n = 6, sigma = 1 }, o))
      end,
      trajectories = function(o)
        return sc.viz.trajectories(nil, { { { 0, 0 }, { 1, 1 } } }, with({ size = size }, o))
      end,
      loss = function(o) return sc.viz.loss_curve(nil, losses, with({ size = size }, o)) end,
      panels = function(o) return sc.viz.sample_panels(nil, { { title = "a", x = x } }, with({ size = size }, o)) end,
    }
    local m = plots.margins
    for name, draw in pairs(charts) do
      local labelled, bare = draw(), draw(none)
      -- x label: below the tick labels; y label: in the left margin
      local ticks_end = m.top + size + 4 + sc.viz.text_height(canvas.sizes.tick)
      local below = changed(labelled, bare, m.left, ticks_end, m.left + size, labelled.h)
      local left = changed(labelled, bare, 1, m.top, m.left - 1, m.top + size)
      assert.is_true(below > 10, name .. ": no x label")
      assert.is_true(left > 10, name .. ": no y label")
      -- tick labels left of the axis in both
      assert.is_true(ink(bare, m.left - 30, m.top, m.left - 4, m.top + size) > 10, name .. ": no tick labels")
    end
    local L = require("scorch.viz.image_figures").histogram_layout
    local hist = sc.viz.class_histogram(nil, { "a", "b" }, { 0.5, 0.5 })
    local hist_bare = sc.viz.class_histogram(nil, { "a", "b" }, { 0.5, 0.5 }, none)
    assert.is_true(changed(hist, hist_bare, 1, L.top, L.left - 1, L.top + L.height) > 10)
    assert.is_true(changed(hist, hist_bare, L.left, L.top + L.height + 1, hist.w, hist.h) > 10)
  end)

  tt("labels a log axis with powers of ten", function()
    assert.are.equal("10⁻²", plots.log_tick_label(-2))
    assert.are.equal("10³", plots.log_tick_label(3))
    assert.are.equal("3.2", plots.log_tick_label(0.5))
    assert.are.equal("−0.5", plots.tick_label(-0.5))
  end)
end)

-- Runs code in a fresh interpreter under an environment prefix; returns
-- its output (stdout and stderr) after checking it exited cleanly.
local function run_child(code, env)
  local file = os.tmpname()
  local f = assert(io.open(file, "w"))
  f:write(code)
  f:close()
  -- this tree's modules, as H.run_lua finds them
  local root = os.getenv("PWD") or "."
  local paths = ("LUA_PATH=%s LUA_CPATH=%s"):format(
    H.quote(os.getenv("LUA_PATH") or (root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;;")),
    H.quote(os.getenv("LUA_CPATH") or (root .. "/lib/?.so;;")))
  local p = assert(io.popen(("%s %s %s %s 2>&1"):format(paths, env, H.quote(H.lua()), H.quote(file))))
  local out = p:read("a")
  local ok = p:close()
  os.remove(file)
  assert.is_true(ok, out)
  return out
end

describe("sc.viz without a font", function()
  it("warns once and draws with the bitmap font", function()
    local code = [[
      local sc = require "scorch"
      local canvas = require "scorch.viz.canvas"
      canvas.font_paths = { "/nonexistent/a.ttf" }
      local cv = sc.viz.canvas(60, 20)
      cv:text(1, 1, "σ 12", "black")
      cv:text(1, 10, "ab", "black")
      assert(sc.viz.scatter(nil, sc.zeros(3, 2), { size = 40 }))
      io.stdout:write("font=", tostring(canvas.font_path()), "\n")
    ]]
    local out = run_child(code, "env -u SCORCH_FONT")
    local _, warnings = out:gsub("no TrueType font found", "")
    assert.are.equal(1, warnings, out)
    assert.matches("font=nil", out)
  end)

  it("takes $SCORCH_FONT, says when it cannot, and accepts 'bitmap'", function()
    local code = [[
      local canvas = require "scorch.viz.canvas"
      io.stdout:write("font=", tostring(canvas.font_path()), "\n")
    ]]
    local out = run_child(code, "SCORCH_FONT=/nonexistent/b.ttf")
    assert.matches("SCORCH_FONT: scorch.font: cannot open /nonexistent/b.ttf", out, 1, true)
    -- then the usual places: the font the parent found, or none
    local usual = canvas.font_path()
    assert.truthy(out:find("font=" .. tostring(usual), 1, true), out)
    out = run_child(code, "SCORCH_FONT=bitmap")
    assert.are.equal("font=nil\n", out)
  end)
end)
