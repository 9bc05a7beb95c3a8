--- The data of a run: a toy 2-D distribution (fresh points every batch) or
-- an image set (shapes, fashion_mnist) read in epochs, each shuffled by a
-- generator seeded from the run's seed and the epoch's number, so the data
-- order position — (epoch, next image) — is two integers a checkpoint can
-- hold and a resumed run continues from exactly.
--
-- A source has sample(n, {generator =}) -> a batch ([n, 2] points, or
-- [n, C, H, W] images in [−1, 1] with uniform dequantisation drawn by the
-- generator), shape (one example's shape), is_images (boolean), the
-- distribution itself as density for toy data (figures), std() (the
-- data's standard deviation, for EDM's σ_data), and position() /
-- set_position(p).
-- @module scorch.run.data
local sc = require "scorch"
local loader = require "scorch.data.loader"

local M = {}

M.image_sets = { shapes = true, fashion_mnist = true }

-- ---- toy 2-D data -----------------------------------------------------------------------------

local Toy = {}
Toy.__index = Toy

function Toy:sample(n, opts) return self.density:sample(n, opts) end
function Toy.position() return {} end -- fresh points every batch: no order to keep
function Toy.set_position() end
-- measured on 20,000 points drawn by a generator of its own
function Toy:std(seed) return math.sqrt(self.density:sample(20000, { generator = sc.Generator(seed) }):var():item()) end

-- ---- image sets ----------------------------------------------------------------------------------

local Images = {}
Images.__index = Images

-- The order of epoch e: a permutation drawn by a generator of its own.
function Images:order(e)
  return loader.randperm(self.n, sc.Generator(require("scorch.run.trainer").stream_seed(self.seed, 1000 + e)))
end

function Images:sample(n, opts)
  if n > self.n then
    error(("scorch.run.data: a batch of %d is larger than the %d training images"):format(n, self.n), 0)
  end
  if not self.perm or self.perm_epoch ~= self.epoch then
    self.perm, self.perm_epoch = self:order(self.epoch), self.epoch
  end
  if self.next + n - 1 > self.n then -- the rest of the epoch is dropped, as drop_last does
    self.epoch, self.next = self.epoch + 1, 1
    self.perm, self.perm_epoch = self:order(self.epoch), self.epoch
  end
  local idx = table.move(self.perm, self.next, self.next + n - 1, 1, {})
  self.next = self.next + n
  local shard = opts and opts.shard
  if shard then -- this rank's rows of the global batch: {rank (0-based), ranks}
    local per = n // shard[2]
    idx = table.move(idx, shard[1] * per + 1, (shard[1] + 1) * per, 1, {})
  end
  local x = self.images:index_select(1, idx)
  if self.dequantize then -- (x·255 + u)/256, u ~ U[0, 1) (Theis et al. 2016)
    x = (x * 255 + sc.rand(x:shape(), { generator = opts and opts.generator })) / 256
  end
  return x * 2 - 1
end

function Images:position() return { epoch = self.epoch, next = self.next } end

function Images:set_position(p)
  if math.type(p.epoch) ~= "integer" or math.type(p.next) ~= "integer" or p.next < 1 or p.next > self.n + 1 then
    error("scorch.run.data: bad data position " .. require("scorch.run.config").serialize(p), 0)
  end
  self.epoch, self.next, self.perm = p.epoch, p.next, nil
end

function Images:std() return (self.images * 2 - 1):var():sqrt():item() end

--- Opens a run's data from its config.
-- @param cfg a resolved config (uses data.name, data.size, data.dequantize, data.half_width, seed)
-- @return a source (see the module's description)
-- @usage local src = require("scorch.run.data").open(cfg)
function M.open(cfg)
  local d = cfg.data
  if not M.image_sets[d.name] then
    local density = sc.data.toy(d.name, d.half_width > 0 and { half_width = d.half_width } or nil)
    return setmetatable({ density = density, shape = { 2 }, is_images = false }, Toy)
  end
  local images
  if d.name == "shapes" then
    -- the set itself is drawn by a generator of its own, so it is the same on every start
    images = sc.data.shapes { n = d.size > 0 and d.size or 10000, size = d.image_size > 0 and d.image_size or 28,
      generator = sc.Generator(require("scorch.run.trainer").stream_seed(cfg.seed, 4)) }
  else
    if d.image_size > 0 and d.image_size ~= 28 then
      error("scorch.run.data: fashion_mnist images are 28×28 (data.image_size = 0 or 28)", 0)
    end
    images = sc.data.fashion_mnist("train", { limit = d.size > 0 and d.size or nil })
  end
  return setmetatable({ is_images = true, images = images, n = images:size(1),
    shape = { images:size(2), images:size(3), images:size(4) }, dequantize = d.dequantize, seed = cfg.seed,
    epoch = 1, next = 1 }, Images)
end

return M
