--- Figures for image experiments on the Lua canvas: a labelled grid of
-- images, the denoising trajectory of a batch as a strip (one row per
-- sample, one column per recorded step), and a bar chart of the class mix
-- of generated images beside the training mix.  Each writes a PNG and
-- returns its path (or nil and a message); with path = nil the canvas is
-- returned instead.
-- @module scorch.viz.image_figures
local canvas = require "scorch.viz.canvas"
local plots = require "scorch.viz.plots"
local util = require "scorch.util"
local sc = require "scorch"

local M = {}

local floor, max, min = math.floor, math.max, math.min

-- Heights of the text bands, from the font in use: a title line above a
-- figure, and a line of labels (under tiles, over strip columns).
function M.title_band() return canvas.text_height(canvas.sizes.title) + 6 end
function M.label_band() return canvas.text_height(canvas.sizes.tick) + 3 end

local finish = canvas.finish

local function check_images(x, fn)
  if not sc.is_tensor(x) or x:dim() ~= 4 or (x:size(2) ~= 1 and x:size(2) ~= 3) then
    error(("scorch.viz.%s: expected images [N, C, H, W] with C = 1 or 3"):format(fn), 3)
  end
end

local function positive_int(v, default, name, fn)
  v = v == nil and default or v
  if math.type(v) ~= "integer" or v < 0 or (name ~= "pad" and v == 0) then
    error(("scorch.viz.%s: %s must be a %s integer"):format(fn, name, name == "pad" and "non-negative"
      or "positive"), 3)
  end
  return v
end

-- Copies image i of x (its values already fetched as a flat array `vals`)
-- into the canvas with its top-left pixel at (x0, y0), each pixel as a
-- scale×scale block; values map linearly from [lo, hi] to [0, 1], clamped.
local function paste(cv, vals, i, C, H, W, x0, y0, scale, lo, hi)
  local d, n, cw = cv.data, cv.n, cv.w
  local base = (i - 1) * C * H * W
  local span = hi - lo
  for c = 1, 3 do
    local src = base + (C == 1 and 0 or (c - 1) * H * W)
    local plane = (c - 1) * n
    for y = 1, H do
      for xx = 1, W do
        local v = (vals[src + (y - 1) * W + xx] - lo) / span
        if v ~= v then v = 0 end
        v = v < 0 and 0 or (v > 1 and 1 or v)
        local px, py = x0 + (xx - 1) * scale, y0 + (y - 1) * scale
        for dy = 0, scale - 1 do
          local row = plane + (py + dy - 1) * cw + px
          for dx = 0, scale - 1 do d[row + dx] = v end
        end
      end
    end
  end
end

-- Text centred on column cx with its top at row y (tick size by default).
local function centred(cv, cx, y, s, color, size)
  cv:text(cx, y, s, color or "black", { size = size or canvas.sizes.tick, anchor = "center" })
end

-- A figure's title in its band, left-aligned after the padding.
local function title(cv, x, s)
  cv:text(x, 3, s, "black", canvas.sizes.title)
end

-- The canvas width that fits a title as well as the content.
local function fit_title(w, s, pad)
  if not s then return w end
  -- the title starts at column pad + 1
  return max(w, floor(canvas.text_width(tostring(s), canvas.sizes.title) + 0.5) + 2 * pad + 1)
end

-- The value range of images: [0, 1] unless told otherwise, the convention
-- of sc.data's image sets and of sc.image.save_png.  Images in a model's
-- [−1, 1] space are drawn with range = {-1, 1}.
local function check_range(range, fn)
  if range == nil then return 0, 1 end
  if type(range) ~= "table" or type(range[1]) ~= "number" or type(range[2]) ~= "number"
      or not (range[1] < range[2]) then
    error(("scorch.viz.%s: range must be {lo, hi} with lo < hi"):format(fn), 3)
  end
  return range[1], range[2]
end

--- A grid of images as a PNG (or a canvas when path is nil).
-- Images fill rows of nrow, pad pixels apart and around the edge
-- (torchvision's make_grid layout), each pixel drawn scale×scale; values map
-- linearly from range to black..white, clamped, NaN drawn black.
-- @param path string, or nil for the canvas
-- @param x [N, C, H, W] tensor, C = 1 or 3
-- @param opts table: nrow (8), pad (2), scale (2), range ({0, 1}; {-1, 1} for
--   a model's [−1, 1] images), title (a line above), labels (one short string
--   per image, under its tile), background ("white")
-- @return the path written (or the canvas), or nil and a message
-- @usage sc.viz.image_grid("out/samples.png", samples, {nrow = 10, range = {-1, 1}})
function M.image_grid(path, x, opts)
  check_images(x, "image_grid")
  opts = util.check_options(opts, { "nrow", "pad", "scale", "range", "title", "labels", "background" },
    "scorch.viz.image_grid")
  local N, C, H, W = x:size(1), x:size(2), x:size(3), x:size(4)
  local nrow = positive_int(opts.nrow, 8, "nrow", "image_grid")
  local pad = positive_int(opts.pad, 2, "pad", "image_grid")
  local scale = positive_int(opts.scale, 2, "scale", "image_grid")
  local lo, hi = check_range(opts.range, "image_grid")
  local cols = min(nrow, N)
  local rows = (N + nrow - 1) // nrow
  local tw, th = W * scale, H * scale
  local label_h = opts.labels and M.label_band() or 0
  local top = opts.title and M.title_band() or 0
  local cv = canvas.new(fit_title(pad + cols * (tw + pad), opts.title, pad), top + pad + rows * (th + label_h + pad),
    opts.background or "white")
  local vals = x:contiguous():values()
  for i = 1, N do
    local r, c = (i - 1) // nrow, (i - 1) % nrow
    local x0 = pad + c * (tw + pad) + 1
    local y0 = top + pad + r * (th + label_h + pad) + 1
    paste(cv, vals, i, C, H, W, x0, y0, scale, lo, hi)
    if opts.labels and opts.labels[i] then
      centred(cv, x0 + tw / 2, y0 + th + 1, tostring(opts.labels[i]))
    end
  end
  if opts.title then title(cv, pad + 1, opts.title) end
  return finish(cv, path)
end

--- The denoising trajectory of k images as a PNG: row j shows image j
-- through the recorded steps from left to right.
-- @param path string, or nil for the canvas
-- @param frames list of [k, C, H, W] tensors, the same k images at
--   successive recorded steps of a sampler
-- @param opts table: labels (one per frame, e.g. "t=500", heading the
--   columns), title, range ({0, 1}; {-1, 1} for a model's space), scale (2),
--   pad (2), background ("white")
-- @return the path written (or the canvas), or nil and a message
-- @usage sc.viz.denoising_strip("out/strip.png", frames, {range = {-1, 1}})
function M.denoising_strip(path, frames, opts)
  if type(frames) ~= "table" or #frames == 0 then
    error("scorch.viz.denoising_strip: expected a non-empty list of [k, C, H, W] tensors", 2)
  end
  opts = util.check_options(opts, { "labels", "title", "range", "scale", "pad", "background" },
    "scorch.viz.denoising_strip")
  for f = 1, #frames do check_images(frames[f], "denoising_strip") end
  local k, C, H, W = frames[1]:size(1), frames[1]:size(2), frames[1]:size(3), frames[1]:size(4)
  for f = 2, #frames do
    local s = frames[f]:shape()
    if s[1] ~= k or s[2] ~= C or s[3] ~= H or s[4] ~= W then
      error(("scorch.viz.denoising_strip: frame %d has shape [%s], frame 1 [%d,%d,%d,%d]")
        :format(f, table.concat(s, ","), k, C, H, W), 2)
    end
  end
  local pad = positive_int(opts.pad, 2, "pad", "denoising_strip")
  local scale = positive_int(opts.scale, 2, "scale", "denoising_strip")
  local lo, hi = check_range(opts.range, "denoising_strip")
  local tw, th = W * scale, H * scale
  local band = M.label_band()
  local top = (opts.title and M.title_band() or 0) + (opts.labels and band or 0)
  local cv = canvas.new(fit_title(pad + #frames * (tw + pad), opts.title, pad), top + pad + k * (th + pad),
    opts.background or "white")
  for f, fr in ipairs(frames) do
    local vals = fr:contiguous():values()
    local x0 = pad + (f - 1) * (tw + pad) + 1
    for j = 1, k do
      paste(cv, vals, j, C, H, W, x0, top + pad + (j - 1) * (th + pad) + 1, scale, lo, hi)
    end
    if opts.labels and opts.labels[f] then
      centred(cv, x0 + tw / 2, top - band + 1, tostring(opts.labels[f]))
    end
  end
  if opts.title then title(cv, pad + 1, opts.title) end
  return finish(cv, path)
end

-- Values as fractions: counts (any value above 1, or an explicit
-- counts = true) are divided by their total; fractions pass unchanged.
local function as_fractions(v, counts, fn)
  if sc.is_tensor(v) then v = v:values() end
  if type(v) ~= "table" or #v == 0 then
    error(("scorch.viz.%s: expected a list of counts or fractions"):format(fn), 3)
  end
  local total, big = 0, false
  for i = 1, #v do
    if type(v[i]) ~= "number" or v[i] < 0 then
      error(("scorch.viz.%s: entry %d is not a non-negative number"):format(fn, i), 3)
    end
    total = total + v[i]
    if v[i] > 1 then big = true end
  end
  local out = {}
  for i = 1, #v do out[i] = ((counts or big) and total > 0) and v[i] / total or v[i] end
  return out
end

-- Layout of the histogram, shared with the spec: bar width, gap between a
-- class's bars, class slot width and margins.
M.histogram_layout = { bar = 18, slot = 64, left = 56, right = 16, top = 36, bottom = 56, height = 200 }

--- class_histogram(path, names, values, {reference=, title=, counts=,
--   labels={"samples", "training"}, colors={"blue", "gray"}, xlabel="class",
--   ylabel="fraction"})
-- One group of bars per class: values (counts or fractions) and, when
-- given, the reference mix (training fractions) beside them.  Bars share a
-- y axis from 0 to the largest fraction (rounded up to a tick); each bar is
-- labelled with its fraction.
function M.class_histogram(path, names, values, opts)
  opts = util.check_options(opts, { "reference", "title", "counts", "labels", "colors", "xlabel", "ylabel" },
    "scorch.viz.class_histogram")
  if type(names) ~= "table" or #names == 0 then
    error("scorch.viz.class_histogram: expected a list of class names", 2)
  end
  local fr = as_fractions(values, opts.counts, "class_histogram")
  local ref = opts.reference and as_fractions(opts.reference, opts.counts, "class_histogram")
  if #fr ~= #names or (ref and #ref ~= #names) then
    error(("scorch.viz.class_histogram: %d names but %d values%s"):format(#names, #fr,
      ref and (" and " .. #ref .. " reference values") or ""), 2)
  end
  local L = M.histogram_layout
  local K = #names
  local top_v = 0
  for k = 1, K do top_v = max(top_v, fr[k], ref and ref[k] or 0) end
  if top_v <= 0 then top_v = 1 end
  local ticks = plots.ticks(0, top_v, 4)
  if ticks[#ticks] < top_v - 1e-12 then ticks[#ticks + 1] = ticks[#ticks] + (ticks[2] or top_v) - ticks[1] end
  local ymax = ticks[#ticks]
  local w = L.left + K * L.slot + L.right
  local h = L.top + L.height + L.bottom
  local cv = canvas.new(w, h, "white")
  local x_axis = L.top + L.height            -- pixel row of y = 0
  local function ypix(v) return x_axis - floor(v / ymax * L.height + 0.5) end
  -- grid lines and tick labels
  for _, t in ipairs(ticks) do
    local py = ypix(t)
    for x = L.left, w - L.right do cv:blend(x, py, canvas.colors.light, 1) end
    cv:line(L.left - 3, py, L.left, py, "black")
    cv:text(L.left - 5, py, plots.tick_label(t), "black",
      { size = canvas.sizes.tick, anchor = "right", valign = "middle" })
  end
  local colors = opts.colors or { "blue", "gray" }
  local series = { fr, ref }
  local nser = ref and 2 or 1
  for k = 1, K do
    local slot_x = L.left + (k - 1) * L.slot
    local group = nser * L.bar + (nser - 1) * 4
    local gx = slot_x + floor((L.slot - group) / 2)
    for s = 1, nser do
      local v = series[s][k]
      local x0 = gx + (s - 1) * (L.bar + 4)
      local y0 = ypix(v)
      if y0 < x_axis then cv:fill_rect(x0, y0, x0 + L.bar - 1, x_axis - 1, colors[s]) end
      cv:text(x0 + L.bar / 2, y0 - 2, ("%.2f"):format(v), "black",
        { size = canvas.sizes.tick - 1, anchor = "center", valign = "bottom" })
    end
    centred(cv, slot_x + L.slot / 2, x_axis + 5, tostring(names[k]))
  end
  -- axes on top of the bars
  for x = L.left, w - L.right do cv:blend(x, x_axis, canvas.colors.black, 1) end
  for y = L.top, x_axis do cv:blend(L.left, y, canvas.colors.black, 1) end
  -- axis labels, legend (a swatch and a name per series) and title
  local tick_h = canvas.text_height(canvas.sizes.tick)
  local mid = L.left + K * L.slot / 2
  cv:text(mid, x_axis + 7 + tick_h, opts.xlabel or "class", "black", { size = canvas.sizes.label, anchor = "center" })
  cv:text(canvas.text_height(canvas.sizes.label) + 2, L.top + L.height / 2, opts.ylabel or "fraction", "black",
    { size = canvas.sizes.label, rotate = 90, anchor = "right", valign = "middle" })
  local labels = opts.labels or { "samples", "training" }
  local ly, lx = h - tick_h - 2, L.left + 4
  for s = 1, nser do
    cv:fill_rect(lx, ly + 3, lx + 9, ly + tick_h - 5, colors[s])
    cv:text(lx + 13, ly, labels[s], "black", canvas.sizes.tick)
    lx = lx + 24 + floor(canvas.text_width(labels[s], canvas.sizes.tick))
  end
  if opts.title then
    -- above the line of values over the tallest bars
    cv:text(mid, L.top - 15, opts.title, "black", { size = canvas.sizes.title, anchor = "center", valign = "bottom" })
  end
  return finish(cv, path)
end

return M
