--- Pictures of toy experiments on the Lua canvas: samples over the true
-- density, density heat maps, score vector fields side by side, Langevin
-- trajectories and loss curves.  Each figure function writes a PNG and
-- returns its path (or nil and a message); the Axes underneath can be used
-- to compose other figures.
-- @module scorch.viz.plots
local sc = require "scorch"
local canvas = require "scorch.viz.canvas"
local util = require "scorch.util"
local param = require "scorch.param"

local M = {}

local floor = math.floor

-- ---- axes ----------------------------------------------------------------------------

local Axes = {}
Axes.__index = Axes
M.Axes = Axes

--- Axes over the pixel rectangle (x0, y0)-(x1, y1) of canvas cv showing
-- range = {xmin, xmax, ymin, ymax}.
function M.axes(cv, x0, y0, x1, y1, range)
  return setmetatable({ cv = cv, x0 = x0, y0 = y0, x1 = x1, y1 = y1,
    xmin = range[1], xmax = range[2], ymin = range[3], ymax = range[4] }, Axes)
end

function Axes:to_px(x, y)
  local px = self.x0 + (x - self.xmin) / (self.xmax - self.xmin) * (self.x1 - self.x0)
  local py = self.y1 - (y - self.ymin) / (self.ymax - self.ymin) * (self.y1 - self.y0)
  return px, py
end

function Axes:inside(px, py)
  return px >= self.x0 and px <= self.x1 and py >= self.y0 and py <= self.y1
end

--- "Nice" tick positions (1, 2, 5 × 10^k) covering [lo, hi].
function M.ticks(lo, hi, n)
  n = n or 5
  local span = hi - lo
  if span <= 0 then return { lo } end
  local raw = span / n
  local mag = 10 ^ floor(math.log(raw, 10))
  local step = mag
  for _, m in ipairs { 1, 2, 5, 10 } do
    if m * mag >= raw then
      step = m * mag
      break
    end
  end
  local out = {}
  local t = math.ceil(lo / step - 1e-9) * step
  while t <= hi + 1e-9 * span do
    out[#out + 1] = math.abs(t) < 1e-12 * step and 0 or t
    t = t + step
  end
  return out
end

-- A tick value as text: integers plainly, others with 3 significant
-- digits; the minus sign is U+2212, as typeset.
local function tick_label(v)
  local s
  if v == floor(v) and math.abs(v) < 1e6 then s = ("%d"):format(floor(v)) else s = ("%.3g"):format(v) end
  return (s:gsub("^%-", "\u{2212}"))
end
M.tick_label = tick_label

local SUPERSCRIPT = { ["0"] = "⁰", ["1"] = "¹", ["2"] = "²", ["3"] = "³", ["4"] = "⁴", ["5"] = "⁵",
  ["6"] = "⁶", ["7"] = "⁷", ["8"] = "⁸", ["9"] = "⁹", ["-"] = "⁻" }

-- A tick of a log10 axis (v is the exponent): "10⁻²" at whole exponents,
-- the value itself between them.
function M.log_tick_label(v)
  if math.abs(v - floor(v + 0.5)) < 1e-9 then
    return "10" .. (("%d"):format(floor(v + 0.5)):gsub(".", SUPERSCRIPT))
  end
  return tick_label(tonumber(("%.2g"):format(10 ^ v)))
end

-- Box, ticks with their labels, and the optional title (above), xlabel
-- (below the tick labels) and ylabel (left of them, reading upwards).
-- opts.format (or xformat, yformat) turns a tick value into its label; opts.nticks; opts.yticks
-- lists the y ticks instead.
function Axes:frame(opts)
  opts = opts or {}
  local cv = self.cv
  local sizes = canvas.sizes
  cv:rect(self.x0, self.y0, self.x1, self.y1, "black")
  local xfmt = opts.xformat or opts.format or tick_label
  local yfmt = opts.yformat or opts.format or tick_label
  local tick_h = canvas.text_height(sizes.tick)
  for _, t in ipairs(M.ticks(self.xmin, self.xmax, opts.nticks)) do
    local px = floor(self:to_px(t, self.ymin) + 0.5)
    cv:line(px, self.y1, px, self.y1 + 3, "black")
    cv:text(px, self.y1 + 5, xfmt(t), "black", { size = sizes.tick, anchor = "center" })
  end
  local widest = 0
  for _, t in ipairs(opts.yticks or M.ticks(self.ymin, self.ymax, opts.nticks)) do
    local _, py = self:to_px(self.xmin, t)
    py = floor(py + 0.5)
    cv:line(self.x0 - 3, py, self.x0, py, "black")
    local s = yfmt(t)
    widest = math.max(widest, canvas.text_width(s, sizes.tick))
    cv:text(self.x0 - 5, py, s, "black", { size = sizes.tick, anchor = "right", valign = "middle" })
  end
  local mid_x, mid_y = (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2
  if opts.xlabel then
    cv:text(mid_x, self.y1 + 6 + tick_h, opts.xlabel, "black", { size = sizes.label, anchor = "center" })
  end
  if opts.ylabel then
    -- left of the widest tick label, kept on the canvas
    local right = math.max(canvas.text_height(sizes.label), floor(self.x0 - 8 - widest))
    cv:text(right, mid_y, opts.ylabel, "black",
      { size = sizes.label, rotate = 90, anchor = "right", valign = "middle" })
  end
  if opts.title then
    cv:text(mid_x, self.y0 - 5, opts.title, "black", { size = sizes.title, anchor = "center", valign = "bottom" })
  end
end

-- Scatter of points (an [N, 2] tensor or rows) as small discs.
function Axes:points(x, color, radius, alpha)
  local c = canvas.color_of(color or "blue")
  local r = radius or 1.2
  local v, n
  if sc.is_tensor(x) then
    v, n = x:values(), x:size(1)
  else
    v, n = {}, #x
    for i, p in ipairs(x) do v[2 * i - 1], v[2 * i] = p[1], p[2] end
  end
  for i = 1, n do
    local px, py = self:to_px(v[2 * i - 1], v[2 * i])
    if px == px and py == py and self:inside(px, py) then self.cv:point(px, py, c, r, alpha or 0.6) end
  end
end

-- A polyline through rows {{x, y}, ...}, clipped to the axes.
function Axes:polyline(rows, color, alpha)
  local c = canvas.color_of(color or "black")
  for i = 2, #rows do
    local ax, ay = self:to_px(rows[i - 1][1], rows[i - 1][2])
    local bx, by = self:to_px(rows[i][1], rows[i][2])
    if self:inside(ax, ay) and self:inside(bx, by) then self.cv:line(ax, ay, bx, by, c, alpha) end
  end
end

-- Grid of n_h × n_w cell centres over the axes' range, row 1 at the top.
function Axes:grid(nw, nh)
  local pts = {}
  for r = 1, nh do
    local y = self.ymax - (r - 0.5) * (self.ymax - self.ymin) / nh
    for c = 1, nw do
      pts[#pts + 1] = self.xmin + (c - 0.5) * (self.xmax - self.xmin) / nw
      pts[#pts + 1] = y
    end
  end
  return sc.tensor(pts):view(nw * nh, 2)
end

-- log-density of a distribution (or a function x -> log p) on points
local function log_density(dist, x, sigma)
  return sc.no_grad(function()
    if type(dist) == "function" then return dist(x) end
    if sigma and sigma > 0 then return dist:log_prob_at(x, sigma) end
    return dist:log_prob(x)
  end)
end

-- Heat map of a density over the axes: opts.scale = "linear" (default) or
-- "log" (clipped at max − opts.log_floor, default 10); opts.sigma smooths;
-- opts.resolution caps the grid (default 128 cells a side, interpolated).
function Axes:density(dist, opts)
  opts = opts or {}
  local pw, ph = self.x1 - self.x0 - 1, self.y1 - self.y0 - 1
  local res = opts.resolution or 128
  local nw, nh = math.min(pw, res), math.min(ph, res)
  local lp = log_density(dist, self:grid(nw, nh), opts.sigma):values()
  local vals, top = {}, -math.huge
  for i = 1, #lp do if lp[i] > top then top = lp[i] end end
  if opts.scale == "log" then
    local floor_v = top - (opts.log_floor or 10)
    for i = 1, #lp do vals[i] = math.max(lp[i], floor_v) end
  else
    for i = 1, #lp do vals[i] = math.exp(lp[i] - top) end
  end
  self.cv:heatmap(vals, nh, nw, self.x0 + 1, self.y0 + 1, self.x1 - 1, self.y1 - 1,
    { colormap = opts.colormap or "viridis", vmin = opts.vmin, vmax = opts.vmax })
end

-- Score vectors on an n×n grid as arrows.  Arrow length is proportional to
-- |s| up to opts.scale (a magnitude drawn as one cell; default the 90th
-- percentile of the magnitudes), longer vectors are capped at one cell.
-- Returns the scale used, so panels can share it.
function Axes:quiver(score, opts)
  opts = opts or {}
  local n = opts.n or 20
  local pts = self:grid(n, n)
  local f = util.as_score_fn(score)
  local s = sc.no_grad(function()
    if opts.sigma then return f(pts, param.level(opts.sigma, pts)) end
    return f(pts)
  end):values()
  local p = pts:values()
  local mags = {}
  for i = 1, n * n do mags[i] = math.sqrt(s[2 * i - 1] ^ 2 + s[2 * i] ^ 2) end
  local scale = opts.scale
  if not scale then
    local sorted = table.move(mags, 1, #mags, 1, {})
    table.sort(sorted, function(a, b)
      if a ~= a then return false end
      if b ~= b then return true end
      return a < b
    end)
    scale = sorted[math.max(1, floor(0.9 * #sorted))]
    if not (scale and scale > 0) then scale = 1 end
  end
  local cell = math.min(self.x1 - self.x0, self.y1 - self.y0) / n * 0.9
  local color = opts.color or "white"
  for i = 1, n * n do
    local m = mags[i]
    if m == m and m > 0 then
      local len = cell * math.min(1, m / scale)
      local x0, y0 = self:to_px(p[2 * i - 1], p[2 * i])
      local ux, uy = s[2 * i - 1] / m, -s[2 * i] / m -- y grows downwards on screen
      self.cv:arrow(x0 - ux * len / 2, y0 - uy * len / 2, x0 + ux * len / 2, y0 + uy * len / 2,
        color, math.max(2.5, 0.35 * len))
    end
  end
  return scale
end

-- ---- figures ---------------------------------------------------------------------------

-- Room around each panel: the y label and tick labels on the left, the
-- title above, tick labels and the x label below (at canvas.sizes).
M.margins = { left = 60, right = 16, top = 26, bottom = 38 }

--- A canvas of `count` square plot panels side by side, for custom figures.
-- @param count number of panels
-- @param size pixels per panel side
-- @param range {xmin, xmax, ymin, ymax} of every panel
-- @param opts table: background = "white"; titles
-- @return canvas, list of axes
-- @usage local cv, axes = sc.viz.panels(2, 256, {-4, 4, -4, 4})
function M.panels(count, size, range, opts)
  opts = opts or {}
  local m = M.margins
  local w = count * (size + m.left + m.right)
  local h = size + m.top + m.bottom
  local cv = canvas.new(w, h, opts.background or "white")
  local list = {}
  for i = 1, count do
    local x0 = (i - 1) * (size + m.left + m.right) + m.left
    list[i] = M.axes(cv, x0, m.top, x0 + size - 1, m.top + size - 1, range)
  end
  return cv, list
end

local function range_of(opts, dist)
  return opts.range or (type(dist) == "table" and dist.range) or { -3, 3, -3, 3 }
end

local finish = canvas.finish

--- scatter(path, x, {density=dist, sigma=, range=, size=512, color=, radius=,
--                   alpha=, title=})  samples over the (true) density
function M.scatter(path, x, opts)
  opts = util.check_options(opts, {
      "density", "sigma", "range", "size", "color", "colormap", "radius", "alpha", "title", "xlabel", "ylabel" },
      "scorch.viz.scatter")
  local cv, ax = M.panels(1, opts.size or 512, range_of(opts, opts.density))
  ax = ax[1]
  if opts.density then ax:density(opts.density, { sigma = opts.sigma, colormap = opts.colormap or "blues" }) end
  ax:points(x, opts.color or "red", opts.radius, opts.alpha)
  ax:frame { title = opts.title, xlabel = opts.xlabel or "x₁", ylabel = opts.ylabel or "x₂" }
  return finish(cv, path)
end

--- sample_panels(path, {{title=, x=}, ...}, {density=, range=, size=}) —
-- several sample sets side by side over the same density.
function M.sample_panels(path, panels, opts)
  opts = util.check_options(opts, {
      "density", "sigma", "range", "size", "color", "colormap", "radius", "alpha", "xlabel", "ylabel" },
      "scorch.viz.sample_panels")
  local cv, axs = M.panels(#panels, opts.size or 384, range_of(opts, opts.density))
  for i, p in ipairs(panels) do
    local ax = axs[i]
    if opts.density then ax:density(opts.density, { sigma = opts.sigma, colormap = opts.colormap or "blues" }) end
    ax:points(p.x, p.color or opts.color or "red", opts.radius, opts.alpha)
    ax:frame { title = p.title, xlabel = opts.xlabel or "x₁", ylabel = i == 1 and (opts.ylabel or "x₂") or nil }
  end
  return finish(cv, path)
end

--- density(path, dist, {sigma=, range=, size=512, scale="linear"|"log",
--                      colormap=, title=})
function M.density(path, dist, opts)
  opts = util.check_options(opts, {
      "sigma", "range", "size", "scale", "log_floor", "resolution", "colormap", "vmin", "vmax", "title", "xlabel",
      "ylabel" }, "scorch.viz.density")
  local cv, ax = M.panels(1, opts.size or 512, range_of(opts, dist))
  ax = ax[1]
  ax:density(dist, opts)
  ax:frame { title = opts.title, xlabel = opts.xlabel or "x₁", ylabel = opts.ylabel or "x₂" }
  return finish(cv, path)
end

--- score_fields(path, {{title=, score=}, ...}, {range=, sigma=, n=20,
--   background=dist, size=384}) — vector fields side by side on one scale
-- (the first panel's), over the smoothed density when background is given.
function M.score_fields(path, panels, opts)
  opts = util.check_options(opts, {
      "background", "sigma", "range", "size", "n", "scale", "xlabel", "ylabel" }, "scorch.viz.score_fields")
  local cv, axs = M.panels(#panels, opts.size or 384, range_of(opts, opts.background))
  local scale = opts.scale
  for i, p in ipairs(panels) do
    local ax = axs[i]
    if opts.background then
      ax:density(opts.background, { sigma = opts.sigma, colormap = "viridis" })
    else
      ax.cv:fill_rect(ax.x0, ax.y0, ax.x1, ax.y1, { 0.15, 0.15, 0.2 })
    end
    scale = ax:quiver(p.score, { n = opts.n, sigma = opts.sigma, scale = scale, color = p.color })
    ax:frame { title = p.title, xlabel = opts.xlabel or "x₁", ylabel = i == 1 and (opts.ylabel or "x₂") or nil }
  end
  return finish(cv, path)
end

--- trajectories(path, paths, {density=, sigma=, range=, size=512, title=})
-- paths[j] = list of {x, y}; drawn as lines fading from gray to the end
-- point in red, start points in blue.
function M.trajectories(path, paths, opts)
  opts = util.check_options(opts, {
      "density", "sigma", "range", "size", "alpha", "title", "xlabel", "ylabel" }, "scorch.viz.trajectories")
  local cv, ax = M.panels(1, opts.size or 512, range_of(opts, opts.density))
  ax = ax[1]
  if opts.density then ax:density(opts.density, { sigma = opts.sigma, colormap = "blues" }) end
  for j, p in ipairs(paths) do
    local col = canvas.colors[canvas.cycle[(j - 1) % #canvas.cycle + 1]]
    ax:polyline(p, col, opts.alpha or 0.5)
    local sx, sy = ax:to_px(p[1][1], p[1][2])
    if ax:inside(sx, sy) then cv:point(sx, sy, "black", 2, 1) end
    local ex, ey = ax:to_px(p[#p][1], p[#p][2])
    if ax:inside(ex, ey) then cv:point(ex, ey, "red", 2.2, 1) end
  end
  ax:frame { title = opts.title, xlabel = opts.xlabel or "x₁", ylabel = opts.ylabel or "x₂" }
  return finish(cv, path)
end

--- loss_curve(path, series, {log=auto, size=, title=, smooth=0.05})
-- series: a Lua array of losses, or {name = array, ...} (drawn in the colour
-- cycle, with names as a legend).  An exponential moving average (smooth)
-- is drawn over the raw values.
function M.loss_curve(path, series, opts)
  opts = util.check_options(opts, {
      "name", "log", "size", "smooth", "title", "xlabel", "ylabel" }, "scorch.viz.loss_curve")
  local named = {}
  if #series > 0 then
    named[1] = { name = opts.name or "loss", values = series }
  else
    local names = {}
    for k in pairs(series) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do named[#named + 1] = { name = k, values = series[k] } end
  end
  local lo, hi, n, positive = math.huge, -math.huge, 1, true
  for _, s in ipairs(named) do
    n = math.max(n, #s.values)
    for _, v in ipairs(s.values) do
      if v == v and math.abs(v) < math.huge then
        lo, hi = math.min(lo, v), math.max(hi, v)
        if v <= 0 then positive = false end
      end
    end
  end
  if lo > hi then lo, hi = 0, 1 end
  local use_log = opts.log
  if use_log == nil then use_log = positive and hi / lo > 50 end
  if use_log and not positive then use_log = false end
  local tf = use_log and function(v) return math.log(v, 10) end or function(v) return v end
  local ylo, yhi = tf(lo), tf(hi)
  if yhi - ylo < 1e-12 then ylo, yhi = ylo - 1, yhi + 1 end
  local pad = 0.05 * (yhi - ylo)
  local size = opts.size or 512
  local cv, ax = M.panels(1, size, { 1, math.max(n, 2), ylo - pad, yhi + pad })
  ax = ax[1]
  -- a log axis spanning decades is ticked at powers of ten only
  local yticks
  if use_log and yhi - ylo >= 1.5 then
    yticks = {}
    local every = math.ceil((yhi - ylo) / 6)
    for k = math.ceil(ylo - pad), floor(yhi + pad) do
      if k % every == 0 then yticks[#yticks + 1] = k end
    end
  end
  ax:frame { title = opts.title, xlabel = opts.xlabel or "step",
    ylabel = opts.ylabel or (use_log and "loss (log scale)" or "loss"),
    yformat = use_log and M.log_tick_label or nil, yticks = yticks }
  local smooth = opts.smooth or 0.05
  for si, s in ipairs(named) do
    local col = canvas.colors[canvas.cycle[(si - 1) % #canvas.cycle + 1]]
    local raw, ema, avg = {}, {}, nil
    for i, v in ipairs(s.values) do
      if v == v and math.abs(v) < math.huge then
        local t = tf(v)
        raw[#raw + 1] = { i, t }
        avg = avg and avg + smooth * (t - avg) or t
        ema[#ema + 1] = { i, avg }
      end
    end
    ax:polyline(raw, col, 0.25)
    ax:polyline(ema, col, 1)
    if #named > 1 then
      -- legend: a swatch and the name, right-aligned in the top corner
      local lh = canvas.text_height(canvas.sizes.tick) + 2
      local ly = ax.y0 + 5 + (si - 1) * lh
      local tx = ax.x1 - 6 - canvas.text_width(s.name, canvas.sizes.tick)
      cv:fill_rect(floor(tx) - 14, ly + 3, floor(tx) - 4, ly + lh - 6, col)
      cv:text(ax.x1 - 6, ly, s.name, "black", { size = canvas.sizes.tick, anchor = "right" })
    end
  end
  return finish(cv, path)
end

return M
