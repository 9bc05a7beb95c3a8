--- Mini-batches of images for generative models: seeded shuffles, scaling
-- from [0, 1] to [−1, 1], optional uniform dequantisation and random
-- horizontal flips.  Built on sc.data.loader, so batching and shuffling
-- behave exactly as there.
-- @module scorch.data.image_loader
local sc = require "scorch"
local util = require "scorch.util"
local loader = require "scorch.data.loader"

local M = {}

local ImageLoader = {}
ImageLoader.__index = ImageLoader

--- image_loader(images [, {labels=, batch_size=128, shuffle=false,
--   generator=, drop_last=false, scale=true, dequantize=false, levels=256,
--   flip=false}])
-- images: [n, C, H, W] in [0, 1].  Each batch is x (and labels when given):
--   dequantize: x ← (x·(L−1) + u)/L with u ~ U[0, 1), turning the L
--     discrete levels k/(L−1) (8-bit pixels / 255) into a continuous
--     density on [0, 1] (Theis et al. 2016);
--   flip: each image mirrored left-right with probability 1/2;
--   scale: x ← 2x − 1, so data lie in [−1, 1] as diffusion models expect.
-- One generator drives the shuffle, the noise and the flips, so a seed
-- fixes every batch.
function M.image_loader(images, opts)
  opts = util.check_options(opts, { "batch_size", "shuffle", "generator", "drop_last", "labels", "levels",
    "dequantize", "flip", "scale" }, "scorch.data.image_loader")
  if not sc.is_tensor(images) or images:dim() ~= 4 then
    error("scorch.data.image_loader: expected images of shape [n, C, H, W]", 2)
  end
  local levels = opts.levels or 256
  if math.type(levels) ~= "integer" or levels < 2 then
    error("scorch.data.image_loader: levels must be an integer >= 2", 2)
  end
  local data = opts.labels and { images, opts.labels } or images
  local base = loader.loader(data, { batch_size = opts.batch_size, shuffle = opts.shuffle,
    generator = opts.generator, drop_last = opts.drop_last })
  return setmetatable({ base = base, labeled = opts.labels ~= nil,
    scale = opts.scale ~= false, dequantize = opts.dequantize and true or false,
    levels = levels, flip = opts.flip and true or false, generator = opts.generator,
    width = images:size(4) }, ImageLoader)
end

function ImageLoader:num_batches() return self.base:num_batches() end
ImageLoader.__len = ImageLoader.num_batches

-- The augmentations of one batch x of [0, 1] images.
function ImageLoader:transform(x)
  local gen = self.generator
  if self.dequantize then
    local L = self.levels
    local u = sc.rand(x:shape(), { generator = gen, dtype = x:dtype() })
    x = (x * (L - 1) + u) / L
  end
  if self.flip then
    local n, W = x:size(1), self.width
    local rev = {}
    for j = 1, W do rev[j] = W - j + 1 end
    local m = sc.rand({ n, 1, 1, 1 }, { generator = gen, dtype = x:dtype() }):lt(0.5)
    x = sc.where(m, x:index_select(4, rev), x)
  end
  if self.scale then x = x * 2 - 1 end
  return x
end

-- for x [, y] in image_loader:iter() do ... end   (one epoch)
function ImageLoader:iter()
  local it = self.base:iter()
  return function()
    local x, y = it()
    if x == nil then return nil end
    x = self:transform(x)
    if self.labeled then return x, y end
    return x
  end
end

-- An endless stream of batches.
function ImageLoader:forever()
  local it = self:iter()
  return function()
    local x, y = it()
    if x == nil then
      it = self:iter()
      x, y = it()
    end
    return x, y
  end
end

M.ImageLoader = ImageLoader
return M
