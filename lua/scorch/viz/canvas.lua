-- A small raster canvas in Lua: one flat array of RGB floats in [0, 1],
-- stored plane by plane (all reds, then greens, then blues), so it becomes a
-- 3×H×W tensor with one sc.tensor call.  Points, anti-aliased lines (Wu),
-- arrows, rectangles, heat maps through a colormap and 3×5 pixel text.
-- Pixel coordinates: x to the right from 1, y downwards from 1.
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

-- Canvas.new(width, height [, background]) — background a colour (white).
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

-- colormap(name) -> function(t) returning r, g, b for t in [0, 1].
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

-- 3×5 glyphs, rows top to bottom, as bit strings.
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

-- Width in pixels of a string drawn at the given scale.
function M.text_width(s, scale)
  scale = scale or 1
  return math.max(0, #s * 4 * scale - scale)
end

-- Draws s with its top-left corner at (x, y); letters are lower-cased,
-- unknown characters leave a blank.
function Canvas:text(x, y, s, color, scale)
  local c = color_of(color)
  scale = scale or 1
  s = tostring(s):lower()
  for k = 1, #s do
    local glyph = FONT[s:sub(k, k)]
    if glyph then
      for r = 1, 5 do
        local bits = glyph[r]
        for q = 1, 3 do
          if bits:sub(q, q) == "1" then
            local px = x + ((k - 1) * 4 + q - 1) * scale
            local py = y + (r - 1) * scale
            for dy = 0, scale - 1 do
              for dx = 0, scale - 1 do self:blend(px + dx, py + dy, c, 1) end
            end
          end
        end
      end
    end
  end
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
-- else the PNG written (its folder created first).
-- @param cv the canvas
-- @param path string or nil
-- @return cv, or path, or nil and a message
-- @usage return canvas.finish(cv, path)
function M.finish(cv, path)
  if path == nil then return cv end
  local dir = path:match("^(.*)/[^/]*$")
  if dir and dir ~= "" then require("scorch.util").mkdir(dir) end
  return cv:save(path)
end

M.new_canvas = M.new
return M
