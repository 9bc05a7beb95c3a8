--- Synthetic grey-scale shape images: squares, filled circles, concentric
-- rings and triangles at random position, scale, rotation and brightness.
--
-- Rasterised with tensor ops: every image is drawn on a supersampled
-- coordinate grid as an inside/outside mask (a union or intersection of
-- half-planes and discs in the shape's rotated frame), then box-filtered
-- down, which anti-aliases the edges.  Images of one class are drawn
-- together, in chunks, so a thousand 28x28 images take a few tens of ms.
-- @module scorch.data.shapes
local sc = require "scorch"
local util = require "scorch.util"

local M = {}

local CLASSES = { "square", "circle", "rings", "triangle" }
local CHUNK = 512 -- images drawn in one set of tensor ops

-- Inside masks on rotated coordinates u, v (shape [n, H, W]) for shapes of
-- circumradius r ([n, 1, 1]): every shape fits in the disc of radius r.
local draw = {}

function draw.square(u, v, r)
  local half = r * (1 / math.sqrt(2))
  return u:abs():le(half) * v:abs():le(half)
end

function draw.circle(u, v, r)
  return (u:square() + v:square()):le(r:square())
end

-- Two concentric annuli and an empty centre: radii (0.3, 0.55) and
-- (0.75, 1) of r.
function draw.rings(u, v, r)
  local d = (u:square() + v:square()):sqrt() / r
  return d:ge(0.3) * d:le(0.55) + d:ge(0.75) * d:le(1.0)
end

-- Equilateral triangle with a vertex at angle 90° in the shape's frame:
-- inside all three edges, whose outward normals point at −90°, 30° and
-- 150° at distance r/2 (the inradius).
function draw.triangle(u, v, r)
  local m, inr = nil, r * 0.5
  for _, deg in ipairs { -90, 30, 150 } do
    local a = math.rad(deg)
    local side = (u * math.cos(a) + v * math.sin(a)):le(inr)
    m = m and m * side or side
  end
  return m
end

M.shape_classes = CLASSES

-- Draws k images of one class from parameter tensors of shape [k, 1, 1].
local function render(kind, p, grid, size, ss)
  local X, Y = grid.X, grid.Y                     -- [1, S, S]
  local dx, dy = X - p.cx, Y - p.cy
  local c, s = p.theta:cos(), p.theta:sin()
  local u = dx * c + dy * s                       -- rotate by −θ
  local v = dy * c - dx * s
  local mask = draw[kind](u, v, p.r) * p.level    -- [k, S, S]
  local k = mask:size(1)
  local img = mask:reshape(k, 1, size * ss, size * ss)
  if ss > 1 then img = sc.avg_pool2d(img, ss) end
  return img
end

local categorical = require("scorch.data.categorical").categorical_from_uniforms

local function check_opts(opts)
  if type(opts) ~= "table" then error("scorch.data.shapes: expected an options table", 3) end
  util.check_options(opts, { "n", "size", "classes", "weights", "generator", "supersample", "scale", "level" },
    "scorch.data.shapes", 4)
  local n = opts.n or 1000
  if math.type(n) ~= "integer" or n < 1 then error("scorch.data.shapes: n must be a positive integer", 3) end
  local size = opts.size or 28
  if math.type(size) ~= "integer" or size < 4 then
    error("scorch.data.shapes: size must be an integer >= 4", 3)
  end
  local classes = opts.classes or CLASSES
  for i, name in ipairs(classes) do
    if not draw[name] then
      error(("scorch.data.shapes: unknown class '%s' at %d (known: %s)")
        :format(tostring(name), i, table.concat(CLASSES, ", ")), 3)
    end
  end
  if #classes == 0 then error("scorch.data.shapes: classes is empty", 3) end
  local w = opts.weights
  if w == nil then
    w = {}
    for i = 1, #classes do w[i] = 1 end
  end
  if #w ~= #classes then
    error(("scorch.data.shapes: %d weights for %d classes"):format(#w, #classes), 3)
  end
  local total = 0
  for i, x in ipairs(w) do
    if type(x) ~= "number" or x < 0 then
      error(("scorch.data.shapes: weight %d must be a non-negative number"):format(i), 3)
    end
    total = total + x
  end
  if total <= 0 then error("scorch.data.shapes: weights sum to zero", 3) end
  local ss = opts.supersample or 3
  if math.type(ss) ~= "integer" or ss < 1 then
    error("scorch.data.shapes: supersample must be a positive integer", 3)
  end
  return n, size, classes, w, ss
end

--- shapes{n=1000, size=28, classes={"square","circle","rings","triangle"},
--        weights={1,1,1,1}, generator=, supersample=3,
--        scale={0.35, 0.75}, level={0.6, 1.0}}
--   → images [n, 1, size, size] float32 in [0, 1], labels [n] float32
--     (1-based indices into classes), and the class names.
-- scale is the circumradius as a fraction of the half-width; level the
-- grey value of the shape on a black background.
function M.shapes(opts)
  local n, size, classes, w, ss = check_opts(opts or {})
  local gen = opts and opts.generator
  local rlo, rhi = table.unpack(opts.scale or { 0.35, 0.75 })
  local llo, lhi = table.unpack(opts.level or { 0.6, 1.0 })
  -- One draw of 6 uniforms per image, in a fixed order, so a seed fixes
  -- the data set whatever the class mix.
  local U = sc.rand({ n, 6 }, { generator = gen, dtype = "float64" })
  local cls = categorical(U:select(2, 1):values(), w)
  local r = U:select(2, 2) * (rhi - rlo) + rlo
  local room = (r * -1 + 1):clamp(0, 1)        -- centre keeps the shape inside
  local params = {
    r = r,
    cx = (U:select(2, 3) * 2 - 1) * room,
    cy = (U:select(2, 4) * 2 - 1) * room,
    theta = U:select(2, 5) * (2 * math.pi),
    level = U:select(2, 6) * (lhi - llo) + llo,
  }
  -- Supersampled pixel centres in [−1, 1]; y grows downwards as in images.
  local S = size * ss
  local half = 1 - 1 / S
  local lin = sc.linspace(-half, half, S)
  local grid = { X = lin:view(1, 1, S), Y = lin:view(1, S, 1) }

  local by_class = {}
  for c = 1, #classes do by_class[c] = {} end
  for i = 1, n do table.insert(by_class[cls[i]], i) end
  local parts, order = {}, {}
  for c, idx in ipairs(by_class) do
    for start = 1, #idx, CHUNK do
      local sub = table.move(idx, start, math.min(start + CHUNK - 1, #idx), 1, {})
      local p = {}
      for k, t in pairs(params) do p[k] = t:index_select(1, sub):float():view(#sub, 1, 1) end
      parts[#parts + 1] = render(classes[c], p, grid, size, ss)
      table.move(sub, 1, #sub, #order + 1, order)
    end
  end
  local all = #parts == 1 and parts[1] or sc.cat(parts, 1)
  -- order[j] is the image drawn j-th; invert it to restore 1..n.
  local inverse = {}
  for j, i in ipairs(order) do inverse[i] = j end
  local images = all:index_select(1, inverse):clamp(0, 1)
  local labels = sc.tensor(cls)
  return images, labels, classes
end

return M
