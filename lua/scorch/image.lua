--- scorch.image: writing and reading images.
--
--   sc.image.save_png(path, t [, opts])  t: HxW, CxHxW (C = 1 or 3) or
--       NxCxHxW (laid out with make_grid, opts as there); values in [0, 1]
--       are clamped and written as 8-bit gray or RGB.  Returns true, or
--       nil and a message when the file cannot be written; a tensor of the
--       wrong shape raises.
--   sc.image.make_grid(t [, {nrow=, padding=, pad_value=}])  NxCxHxW →
--       CxHxW, the images in rows of `nrow`, `padding` pixels of
--       `pad_value` around each (torchvision's make_grid, without its
--       normalisation and without turning gray into RGB).
--   sc.image.load_png(path)  → CxHxW float32 tensor in [0, 1] (stored value
--       / 255, or / 65535 at 16 bits), C the channels as stored (1 gray,
--       2 gray+alpha, 3 RGB, 4 RGBA; a palette gives 3 or 4), decoded by
--       stb_image; nil and a message for a missing, truncated or corrupt
--       file (chunk CRCs are checked).
-- @module scorch.image
local core = require "scorch.core"
local sc = require "scorch"

local image = {}

local shape_str = require("scorch.util").shape_str

local function opt_int(opts, key, default, min, fn)
  local v = opts[key]
  if v == nil then return default end
  if type(v) ~= "number" or math.tointeger(v) == nil or v < min then
    error(string.format("scorch.image.%s: option %s must be an integer >= %d, got %s",
      fn, key, min, tostring(v)), 3)
  end
  return math.tointeger(v)
end

--- Lays out a batch of images as one image (torchvision's make_grid, without
-- its normalisation).
-- @param t tensor NxCxHxW (or CxHxW, returned as is)
-- @param opts table: nrow = ⌈√N⌉ images per row; padding = 2 pixels; pad_value = 0
-- @return tensor CxH'xW'
-- @usage local grid = sc.image.make_grid(x, {nrow = 8})
function image.make_grid(t, opts)
  if not sc.is_tensor(t) then
    error("scorch.image.make_grid: expected a tensor, got a " .. type(t), 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("scorch.image.make_grid: options must be a table, got a " .. type(opts), 2)
  end
  opts = require("scorch.util").check_options(opts, { "nrow", "padding", "pad_value" }, "scorch.image.make_grid")
  if t:dim() == 3 then t = t:unsqueeze(1) end
  if t:dim() ~= 4 or t:size(1) < 1 then
    error("scorch.image.make_grid: expected NxCxHxW (N >= 1) or CxHxW, got shape "
      .. shape_str(t), 2)
  end
  local n, c, h, w = t:size(1), t:size(2), t:size(3), t:size(4)
  -- near-square by default: ceil(sqrt(n)) images per row
  local nrow = opt_int(opts, "nrow", math.ceil(math.sqrt(n) - 1e-9), 1, "make_grid")
  local padding = opt_int(opts, "padding", 2, 0, "make_grid")
  local pad_value = opts.pad_value or 0
  if type(pad_value) ~= "number" then
    error("scorch.image.make_grid: option pad_value must be a number, got "
      .. tostring(pad_value), 2)
  end
  -- torchvision returns a single image as it is, without padding
  if n == 1 then return t:select(1, 1):detach() end
  local xmaps = math.min(nrow, n)
  local ymaps = (n + xmaps - 1) // xmaps
  local cell_h, cell_w = h + padding, w + padding
  local grid = sc.full({c, cell_h * ymaps + padding, cell_w * xmaps + padding},
    pad_value, {dtype = t:dtype()})
  local src = t:detach()
  sc.no_grad(function()
    for k = 0, n - 1 do
      local y, x = k // xmaps, k % xmaps
      grid:narrow(2, y * cell_h + padding + 1, h)
          :narrow(3, x * cell_w + padding + 1, w)
          :copy_(src:select(1, k + 1))
    end
  end)
  return grid
end

--- Writes a tensor as an 8-bit gray or RGB PNG; values in [0, 1] (clamped).
-- @param path file name
-- @param t tensor HxW, CxHxW (C = 1 or 3), or NxCxHxW (laid out by make_grid)
-- @param opts table: make_grid's options for a batch
-- @return true, or nil and a message when the file cannot be written
-- @usage sc.image.save_png("samples.png", (x + 1) / 2)
function image.save_png(path, t, opts)
  if type(path) ~= "string" then
    error("scorch.image.save_png: path must be a string, got a " .. type(path), 2)
  end
  if not sc.is_tensor(t) then
    error("scorch.image.save_png: expected a tensor, got a " .. type(t), 2)
  end
  require("scorch.util").check_options(opts, { "nrow", "padding", "pad_value" }, "scorch.image.save_png")
  local img = t
  if t:dim() == 2 then
    img = t:unsqueeze(1)
  elseif t:dim() == 4 and t:size(1) >= 1 then
    img = image.make_grid(t, opts)
  end
  if img:dim() ~= 3 or (img:size(1) ~= 1 and img:size(1) ~= 3)
      or img:size(2) < 1 or img:size(3) < 1 then
    error("scorch.image.save_png: expected HxW, CxHxW (C = 1 or 3) or NxCxHxW "
      .. "with H, W >= 1, got shape " .. shape_str(t), 2)
  end
  return core._save_png(path, img)
end

--- Reads a PNG file.
-- @param path string
-- @return CxHxW float32 tensor in [0, 1], or nil and a message
-- @usage local img = assert(sc.image.load_png("out/ncsn_2d/samples.png"))
function image.load_png(path)
  if type(path) ~= "string" then
    error("scorch.image.load_png: path must be a string, got a " .. type(path), 2)
  end
  return core._png_read(path)
end

return image
