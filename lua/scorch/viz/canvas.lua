--- A small raster canvas in Lua: one flat array of RGB floats in [0, 1],
-- stored plane by plane (all reds, then greens, then blues), so it becomes a
-- 3×H×W tensor with one sc.tensor call.  Points, anti-aliased lines (Wu),
-- arrows, rectangles, heat maps through a colormap and anti-aliased text
-- from a TrueType font.
-- Pixel coordinates: x to the right from 1, y downwards from 1.
-- @module scorch.viz.canvas
local sc = require "scorch"

local M = {}

local Canvas = {}
Canvas.__index = Canvas
M.Canvas = Canvas

local floor, max, min, abs = math.floor, math.max, math.min, math.abs

-- Named colours; a colour is {r, g, b} in [0, 1].
M.colors = {
  black = { 0, 0, 0 }, white = { 1, 1, 1 }, gray = { 0.6, 0.6, 0.6 },
  light = { 0.88, 0.88, 0.88 }, red = { 0.84, 0.15, 0.16 }, blue = { 0.12, 0.47, 0.71 },
  orange = { 1.0, 0.5, 0.05 }, green = { 0.17, 0.63, 0.17 }, purple = { 0.58, 0.4, 0.74 },
  brown = { 0.55, 0.34, 0.29 }, pink = { 0.89, 0.47, 0.76 }, olive = { 0.74, 0.74, 0.13 },
  cyan = { 0.09, 0.75, 0.81 },
}
-- The tab10 cycle, for series and modes.
M.cycle = { "blue", "orange", "green", "red", "purple", "brown", "pink", "gray", "olive", "cyan" }

local function color_of(c)
  if type(c) == "string" then
    local v = M.colors[c]
    if not v then error(("scorch.viz: unknown colour '%s'"):format(c), 3) end
    return v
  end
  return c or M.colors.black
end
M.color_of = color_of

--- Canvas.new(width, height [, background]) — background a colour (white).
function M.new(w, h, background)
  if math.type(w) ~= "integer" or math.type(h) ~= "integer" or w < 1 or h < 1 then
    error("scorch.viz.canvas: width and height must be positive integers", 2)
  end
  local bg = color_of(background or "white")
  local n = w * h
  -- values() builds the array at its full size in C, much faster than
  -- growing a Lua table pixel by pixel
  local data = sc.tensor(bg, { dtype = "float64" }):view(3, 1):expand(3, n):values()
  return setmetatable({ w = w, h = h, n = n, data = data }, Canvas)
end

-- Blends colour c with opacity a into pixel (x, y); outside pixels are ignored.
function Canvas:blend(x, y, c, a)
  if x < 1 or y < 1 or x > self.w or y > self.h then return end
  local i = (y - 1) * self.w + x
  local d, n = self.data, self.n
  a = a or 1
  if a >= 1 then
    d[i], d[n + i], d[2 * n + i] = c[1], c[2], c[3]
  elseif a > 0 then
    local b = 1 - a
    d[i] = d[i] * b + c[1] * a
    d[n + i] = d[n + i] * b + c[2] * a
    d[2 * n + i] = d[2 * n + i] * b + c[3] * a
  end
end

function Canvas:get(x, y)
  local i = (y - 1) * self.w + x
  return { self.data[i], self.data[self.n + i], self.data[2 * self.n + i] }
end

-- A filled disc of radius r centred at (x, y) (real coordinates), with
-- anti-aliased edge.
function Canvas:point(x, y, color, r, alpha)
  local c = color_of(color)
  r, alpha = r or 1.5, alpha or 1
  local x0, x1 = floor(x - r), floor(x + r + 1)
  local y0, y1 = floor(y - r), floor(y + r + 1)
  for py = max(1, y0), min(self.h, y1) do
    for px = max(1, x0), min(self.w, x1) do
      local d = math.sqrt((px - x) ^ 2 + (py - y) ^ 2)
      local cov = r + 0.5 - d
      if cov > 0 then self:blend(px, py, c, alpha * min(1, cov)) end
    end
  end
end

-- Xiaolin Wu's anti-aliased line from (x0, y0) to (x1, y1).
function Canvas:line(x0, y0, x1, y1, color, alpha)
  local c = color_of(color)
  alpha = alpha or 1
  local steep = abs(y1 - y0) > abs(x1 - x0)
  if steep then x0, y0, x1, y1 = y0, x0, y1, x1 end
  if x0 > x1 then x0, x1, y0, y1 = x1, x0, y1, y0 end
  local dx, dy = x1 - x0, y1 - y0
  local grad = dx == 0 and 1 or dy / dx
  local function plot(px, py, a)
    if steep then self:blend(py, px, c, a * alpha) else self:blend(px, py, c, a * alpha) end
  end
  local xs, xe = floor(x0 + 0.5), floor(x1 + 0.5)
  local yi = y0 + grad * (xs - x0)
  for px = xs, xe do
    local py = floor(yi)
    local f = yi - py
    plot(px, py, 1 - f)
    plot(px, py + 1, f)
    yi = yi + grad
  end
end

-- A thicker line: parallel Wu lines offset across the direction.
function Canvas:thick_line(x0, y0, x1, y1, color, width, alpha)
  width = width or 1
  if width <= 1 then return self:line(x0, y0, x1, y1, color, alpha) end
  local dx, dy = x1 - x0, y1 - y0
  local len = math.sqrt(dx * dx + dy * dy)
  if len == 0 then return self:point(x0, y0, color, width / 2, alpha) end
  local nx, ny = -dy / len, dx / len
  local k = floor(width)
  for j = 0, k - 1 do
    local o = j - (k - 1) / 2
    self:line(x0 + nx * o, y0 + ny * o, x1 + nx * o, y1 + ny * o, color, alpha)
  end
end

-- An arrow from (x0, y0) to (x1, y1) with a head of the given length.
function Canvas:arrow(x0, y0, x1, y1, color, head, alpha)
  local dx, dy = x1 - x0, y1 - y0
  local len = math.sqrt(dx * dx + dy * dy)
  if len < 0.5 then return self:point(x0, y0, color, 0.8, alpha) end
  self:line(x0, y0, x1, y1, color, alpha)
  head = min(head or max(3, 0.35 * len), 0.6 * len)
  local ux, uy = dx / len, dy / len
  local spread = 0.45
  for _, sgn in ipairs { 1, -1 } do
    local ca, sa = math.cos(spread), sgn * math.sin(spread)
    local hx = -(ux * ca - uy * sa)
    local hy = -(ux * sa + uy * ca)
    self:line(x1, y1, x1 + hx * head, y1 + hy * head, color, alpha)
  end
end

-- Outline of the rectangle with corners (x0, y0), (x1, y1) (integers).
function Canvas:rect(x0, y0, x1, y1, color)
  local c = color_of(color)
  for x = x0, x1 do
    self:blend(x, y0, c, 1)
    self:blend(x, y1, c, 1)
  end
  for y = y0, y1 do
    self:blend(x0, y, c, 1)
    self:blend(x1, y, c, 1)
  end
end

function Canvas:fill_rect(x0, y0, x1, y1, color, alpha)
  local c = color_of(color)
  for y = max(1, y0), min(self.h, y1) do
    for x = max(1, x0), min(self.w, x1) do self:blend(x, y, c, alpha or 1) end
  end
end

-- ---- colormaps -----------------------------------------------------------------------

-- Anchor colours, interpolated linearly.
M.colormaps = {
  viridis = {
    { 0.267, 0.005, 0.329 }, { 0.283, 0.141, 0.458 }, { 0.254, 0.265, 0.530 },
    { 0.207, 0.372, 0.553 }, { 0.164, 0.471, 0.558 }, { 0.128, 0.567, 0.551 },
    { 0.135, 0.659, 0.518 }, { 0.267, 0.749, 0.441 }, { 0.478, 0.821, 0.318 },
    { 0.741, 0.873, 0.150 }, { 0.993, 0.906, 0.144 },
  },
  magma = {
    { 0.001, 0.000, 0.014 }, { 0.170, 0.042, 0.357 }, { 0.448, 0.123, 0.506 },
    { 0.716, 0.215, 0.475 }, { 0.945, 0.376, 0.365 }, { 0.996, 0.665, 0.457 },
    { 0.987, 0.991, 0.750 },
  },
  blues = { { 0.97, 0.98, 1.0 }, { 0.78, 0.86, 0.94 }, { 0.42, 0.68, 0.84 }, { 0.13, 0.44, 0.71 },
    { 0.03, 0.19, 0.42 } },
  gray = { { 0, 0, 0 }, { 1, 1, 1 } },
}

--- colormap(name) -> function(t) returning r, g, b for t in [0, 1].
function M.colormap(name)
  local anchors = type(name) == "table" and name or M.colormaps[name or "viridis"]
  if not anchors then error(("scorch.viz: unknown colormap '%s'"):format(tostring(name)), 2) end
  local n = #anchors - 1
  return function(t)
    if t ~= t then t = 0 end
    t = t < 0 and 0 or (t > 1 and 1 or t)
    local s = t * n
    local i = floor(s)
    if i >= n then i = n - 1 end
    local f = s - i
    local a, b = anchors[i + 1], anchors[i + 2]
    return a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f, a[3] + (b[3] - a[3]) * f
  end
end

-- Fills the pixel rectangle [x0, x1] × [y0, y1] from a gh×gw grid of values
-- (a flat row-major Lua array, row 1 at the top, or a [gh, gw] tensor)
-- through the colormap over [vmin, vmax] (default the finite range of the
-- values).  opts.smooth = true (default) interpolates bilinearly between
-- cell centres; false paints each cell flat.
function Canvas:heatmap(values, gh, gw, x0, y0, x1, y1, opts)
  opts = opts or {}
  if sc.is_tensor(values) then
    local shape = values:shape()
    gh, gw = shape[1], shape[2]
    values = values:values()
  end
  local vmin, vmax = opts.vmin, opts.vmax
  if not vmin or not vmax then
    local lo, hi = math.huge, -math.huge
    for i = 1, gh * gw do
      local v = values[i]
      if v == v and v > -math.huge and v < math.huge then
        if v < lo then lo = v end
        if v > hi then hi = v end
      end
    end
    if lo > hi then lo, hi = 0, 1 end
    vmin, vmax = vmin or lo, vmax or hi
  end
  local span = vmax - vmin
  if span <= 0 then span = 1 end
  -- normalised, with NaN and -inf at 0
  local t = {}
  for i = 1, gh * gw do
    local v = (values[i] - vmin) / span
    t[i] = (v == v) and (v < 0 and 0 or (v > 1 and 1 or v)) or 0
  end
  -- the colormap as a lookup table
  local cmap, LUT = M.colormap(opts.colormap), 1024
  local lr, lg, lb = {}, {}, {}
  for k = 0, LUT do lr[k], lg[k], lb[k] = cmap(k / LUT) end
  local smooth = opts.smooth ~= false
  local d, n, w = self.data, self.n, self.w
  local pw, ph = x1 - x0 + 1, y1 - y0 + 1
  for py = max(1, y0), min(self.h, y1) do
    -- position in cell units, cell centres at 0.5, 1.5, ...
    local fy = (py - y0 + 0.5) * gh / ph
    local r0, wy
    if smooth then
      fy = fy - 0.5
      r0 = floor(fy)
      wy = fy - r0
      if r0 < 0 then r0, wy = 0, 0 end
      if r0 >= gh - 1 then r0, wy = gh - 1, 0 end
    else
      r0, wy = min(gh - 1, floor(fy)), 0
    end
    local r1 = min(gh - 1, r0 + 1)
    local base0, base1 = r0 * gw, r1 * gw
    for px = max(1, x0), min(w, x1) do
      local fx = (px - x0 + 0.5) * gw / pw
      local c0, wx
      if smooth then
        fx = fx - 0.5
        c0 = floor(fx)
        wx = fx - c0
        if c0 < 0 then c0, wx = 0, 0 end
        if c0 >= gw - 1 then c0, wx = gw - 1, 0 end
      else
        c0, wx = min(gw - 1, floor(fx)), 0
      end
      local c1 = min(gw - 1, c0 + 1)
      local top = t[base0 + c0 + 1] * (1 - wx) + t[base0 + c1 + 1] * wx
      local bot = t[base1 + c0 + 1] * (1 - wx) + t[base1 + c1 + 1] * wx
      local k = floor((top * (1 - wy) + bot * wy) * LUT + 0.5)
      local i = (py - 1) * w + px
      d[i], d[n + i], d[2 * n + i] = lr[k], lg[k], lb[k]
    end
  end
  return vmin, vmax
end

-- ---- text ------------------------------------------------------------------------------

-- Text is rasterised from a TrueType font by the C core (stb_truetype);
-- the font is $SCORCH_FONT, else DejaVu Sans or another sans found in the
-- usual places.  Without one, a 3×5 bitmap font (ASCII digits and lower
-- case only) stands in, after a one-time warning.  SCORCH_FONT=bitmap asks
-- for the bitmap font.

-- Sizes are em sizes in pixels (CSS's font-size).
M.sizes = { tick = 10, label = 12, title = 13 }
M.default_size = M.sizes.label

M.font_paths = {
  "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", -- Debian, Ubuntu (fonts-dejavu-core)
  "/usr/share/fonts/TTF/DejaVuSans.ttf",             -- Arch
  "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf", -- Fedora
  "/usr/share/fonts/dejavu/DejaVuSans.ttf",
  "/usr/local/share/fonts/DejaVuSans.ttf",
  "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
  "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
  "/System/Library/Fonts/Supplemental/Arial Unicode.ttf",
}

local font_state = { loaded = false } -- .font (a core font) or nil; .path

local function warn_once(msg)
  if not font_state.warned then
    font_state.warned = true
    io.stderr:write("scorch.viz: ", msg, "\n")
  end
end

-- use_font(path) loads that font; use_font("bitmap") selects the bitmap
-- font; use_font() searches again ($SCORCH_FONT, then M.font_paths).
-- Returns the path in use, or nil (bitmap) and why.
function M.use_font(path)
  local fonts = require("scorch.core").font
  font_state.loaded, font_state.font, font_state.path = true, nil, nil
  font_state.cache, font_state.cached = {}, 0
  if path == "bitmap" then return nil, "bitmap font asked for" end
  if path then
    local f, err = fonts.load(path)
    if not f then return nil, err end
    font_state.font, font_state.path = f, path
    return path
  end
  local env = os.getenv("SCORCH_FONT")
  if env == "bitmap" then return nil, "SCORCH_FONT=bitmap" end
  local tried = {}
  if env and env ~= "" then
    local f, err = fonts.load(env)
    if f then
      font_state.font, font_state.path = f, env
      return env
    end
    warn_once(("SCORCH_FONT: %s; looking in the usual places"):format(err))
    tried[1] = env
  end
  for _, p in ipairs(M.font_paths) do
    local f = fonts.load(p)
    if f then
      font_state.font, font_state.path = f, p
      return p
    end
    tried[#tried + 1] = p
  end
  warn_once("no TrueType font found (install fonts-dejavu-core or set SCORCH_FONT); "
    .. "plot text falls back to a 3×5 bitmap font without capitals or symbols")
  return nil, "no font in " .. table.concat(tried, ", ")
end

local function font()
  if not font_state.loaded then M.use_font() end
  return font_state.font
end

-- The font in use: its path, or nil when the bitmap font stands in.
function M.font_path()
  font()
  return font_state.path
end

-- 3×5 glyphs, rows top to bottom, as bit strings: the fallback font.
local FONT = {
  ["0"] = { "111", "101", "101", "101", "111" }, ["1"] = { "010", "110", "010", "010", "111" },
  ["2"] = { "111", "001", "111", "100", "111" }, ["3"] = { "111", "001", "111", "001", "111" },
  ["4"] = { "101", "101", "111", "001", "001" }, ["5"] = { "111", "100", "111", "001", "111" },
  ["6"] = { "111", "100", "111", "101", "111" }, ["7"] = { "111", "001", "010", "010", "010" },
  ["8"] = { "111", "101", "111", "101", "111" }, ["9"] = { "111", "101", "111", "001", "111" },
  ["-"] = { "000", "000", "111", "000", "000" }, ["."] = { "000", "000", "000", "000", "010" },
  ["+"] = { "000", "010", "111", "010", "000" }, ["e"] = { "000", "111", "111", "100", "111" },
  [" "] = { "000", "000", "000", "000", "000" }, [":"] = { "000", "010", "000", "010", "000" },
  ["="] = { "000", "111", "000", "111", "000" }, ["/"] = { "001", "001", "010", "100", "100" },
  ["%"] = { "101", "001", "010", "100", "101" }, ["("] = { "010", "100", "100", "100", "010" },
  [")"] = { "010", "001", "001", "001", "010" }, [","] = { "000", "000", "000", "010", "100" },
  a = { "000", "011", "101", "101", "011" }, b = { "100", "110", "101", "101", "110" },
  c = { "000", "011", "100", "100", "011" }, d = { "001", "011", "101", "101", "011" },
  f = { "011", "100", "110", "100", "100" }, g = { "011", "101", "011", "001", "110" },
  h = { "100", "110", "101", "101", "101" }, i = { "010", "000", "010", "010", "010" },
  j = { "001", "000", "001", "001", "110" }, k = { "100", "101", "110", "110", "101" },
  l = { "110", "010", "010", "010", "111" }, m = { "000", "111", "111", "101", "101" },
  n = { "000", "110", "101", "101", "101" }, o = { "000", "010", "101", "101", "010" },
  p = { "000", "110", "101", "110", "100" }, q = { "000", "011", "101", "011", "001" },
  r = { "000", "011", "100", "100", "100" }, s = { "000", "011", "110", "011", "110" },
  t = { "010", "111", "010", "010", "011" }, u = { "000", "101", "101", "101", "011" },
  v = { "000", "101", "101", "101", "010" }, w = { "000", "101", "101", "111", "111" },
  x = { "000", "101", "010", "010", "101" }, y = { "000", "101", "011", "001", "110" },
  z = { "000", "111", "011", "110", "111" }, ["_"] = { "000", "000", "000", "000", "111" },
}
M.font = FONT

-- The bitmap font's scale for an em size: 1 (5 pixels tall) up to 11 px.
local function bitmap_scale(size) return math.max(1, floor(size / 10 + 0.4)) end

-- The bitmap font's coverage of s: lower-cased, "−" as "-", other
-- characters it lacks left blank.  Same shape as the core's render.
local function bitmap_render(s, size)
  local scale = bitmap_scale(size)
  s = s:gsub("\u{2212}", "-"):lower()
  local chars = {}
  for _, cp in utf8.codes(s, true) do chars[#chars + 1] = cp < 128 and string.char(cp) or "?" end
  local w = math.max(0, #chars * 4 * scale - scale)
  local h = 6 * scale -- the 5 drawn rows and a blank one below
  local px = {}
  for k = 1, w * h do px[k] = 0 end
  for k, ch in ipairs(chars) do
    local glyph = FONT[ch]
    if glyph then
      for r = 1, 5 do
        for q = 1, 3 do
          if glyph[r]:sub(q, q) == "1" then
            local x0, y0 = ((k - 1) * 4 + q - 1) * scale, (r - 1) * scale
            for dy = 0, scale - 1 do
              for dx = 0, scale - 1 do px[(y0 + dy) * w + x0 + dx + 1] = 255 end
            end
          end
        end
      end
    end
  end
  return px, w, h, 0, 5 * scale
end

-- Coverage of s at an em size: an array of bytes (a string from the core
-- or a table from the bitmap font), w, h, the pen's column and the
-- baseline's row (from 0).  Renders are cached.
local function render(s, size)
  local f = font()
  local key = size .. "\0" .. s
  local hit = font_state.cache[key]
  if hit then return table.unpack(hit, 1, 5) end
  local out
  if f then
    out = table.pack(f:render(s, size))
  else
    out = table.pack(bitmap_render(s, size))
  end
  if font_state.cached > 2000 then font_state.cache, font_state.cached = {}, 0 end
  font_state.cache[key], font_state.cached = out, font_state.cached + 1
  return table.unpack(out, 1, 5)
end

local function check_text(s, size, fn)
  if type(s) ~= "string" and type(s) ~= "number" then
    error(("scorch.viz.%s: text must be a string or a number, got a %s"):format(fn, type(s)), 3)
  end
  if size ~= nil and (type(size) ~= "number" or not (size >= 4 and size <= 256)) then
    error(("scorch.viz.%s: size must be a number of pixels in [4, 256], got %s"):format(fn, tostring(size)), 3)
  end
  return tostring(s), size or M.default_size
end

--- Advance width in pixels of s at an em size (default M.default_size).
function M.text_width(s, size)
  s, size = check_text(s, size, "text_width")
  local f = font()
  if f then return f:width(s, size) end
  local scale = bitmap_scale(size)
  return math.max(0, utf8.len(s, 1, -1, true) * 4 * scale - scale)
end

-- Line height (ascent + descent) in pixels at an em size, and the ascent.
function M.text_height(size)
  local _, s = check_text("", size, "text_height")
  local f = font()
  if f then
    local a, d = f:line(s)
    return a + d, a
  end
  local scale = bitmap_scale(s)
  return 6 * scale, 5 * scale
end

local function byte_at(px, k)
  if type(px) == "string" then return px:byte(k) end
  return px[k]
end

-- Draws s.  (x, y) is the top-left corner of its line box unless opts say
-- otherwise.  opts: a size, or {size = em pixels (M.default_size),
-- anchor = "left" | "center" | "right" (of x), valign = "top" | "middle" |
-- "baseline" | "bottom" (of y; "middle" centres digits and capitals),
-- alpha = 1, rotate = 90 (reads upwards; x, y then anchor the rotated box
-- the same way)}.  Returns the box drawn: x0, y0, x1, y1.
function Canvas:text(x, y, s, color, opts)
  if type(opts) ~= "table" then opts = { size = opts } end
  local size
  s, size = check_text(s, opts.size, "canvas:text")
  local c = color_of(color)
  local px, w, h, origin, baseline = render(s, size)
  local adv = floor(M.text_width(s, size) + 0.5)
  local line_h, ascent = M.text_height(size)
  -- the line box: pen origin at its left, baseline `ascent` below its top
  local bx, by = adv, line_h
  local rotate = opts.rotate == 90
  if rotate then bx, by = line_h, adv end
  local anchor, valign = opts.anchor or "left", opts.valign or "top"
  local left = anchor == "center" and x - bx / 2 or anchor == "right" and x - bx or x
  local top
  if valign == "middle" then
    top = rotate and y - by / 2 or y - ascent + 0.36 * size
  elseif valign == "baseline" then
    top = y - ascent
  elseif valign == "bottom" then
    top = y - by
  else
    top = y
  end
  left, top = floor(left + 0.5), floor(top + 0.5)
  local alpha = opts.alpha or 1
  -- bitmap pixel (i, j) (from 0) relative to the line box's top-left
  local dx, dy = -origin, ascent - baseline
  for j = 0, h - 1 do
    for i = 0, w - 1 do
      local v = byte_at(px, j * w + i + 1)
      if v > 0 then
        local u, t = i + dx, j + dy
        if rotate then u, t = t, adv - 1 - u end
        self:blend(left + u, top + t, c, alpha * v / 255)
      end
    end
  end
  return left, top, left + bx - 1, top + by - 1
end

-- ---- output ---------------------------------------------------------------------------

-- The image as a 3×H×W float32 tensor.
function Canvas:to_tensor()
  return sc.tensor(self.data):view(3, self.h, self.w)
end

-- Writes a PNG; returns path, or nil and a message when the file cannot be
-- written (sc.image.save_png's convention).
function Canvas:save(path)
  local ok, err = sc.image.save_png(path, self:to_tensor())
  if not ok then return nil, err end
  return path
end

--- The end of every figure function: the canvas itself when path is nil,
-- else the PNG written; its own folder is created when its parent exists
-- (util.make_parent), a deeper missing path is an error.
-- @param cv the canvas
-- @param path string or nil
-- @return cv, or path, or nil and a message
-- @usage return canvas.finish(cv, path)
function M.finish(cv, path)
  if path == nil then return cv end
  -- a figure creates at most its own folder, and only inside an existing one
  local ok, err = require("scorch.util").make_parent(path, "scorch.viz")
  if not ok then return nil, err end
  return cv:save(path)
end

M.new_canvas = M.new
return M
