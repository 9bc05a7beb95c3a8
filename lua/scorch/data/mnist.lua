--- MNIST-style image data sets stored as IDX file pairs (images, labels),
-- Fashion-MNIST first.  Debian ships Fashion-MNIST in the package
-- dataset-fashion-mnist, under /usr/share/datasets/fashion-mnist.
-- @module scorch.data.mnist
local sc = require "scorch"
local util = require "scorch.util"

local M = {}

M.FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
M.fashion_mnist_classes = { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot" }

local FILES = {
  train = { "train-images-idx3-ubyte", "train-labels-idx1-ubyte" },
  test = { "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte" },
}

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

-- The plain or gzip-compressed variant of dir/name, or nil.
local function find(dir, name)
  for _, p in ipairs { dir .. "/" .. name, dir .. "/" .. name .. ".gz" } do
    if exists(p) then return p end
  end
  return nil
end

--- idx_dataset(images_path, labels_path [, {limit=}]) → images [n, 1, h, w]
-- float32 in [0, 1], labels [n] float32 as 1-based class indices (IDX
-- stores 0-based bytes).  nil and a message when a file is missing or
-- malformed, or the two files disagree.
function M.idx_dataset(images_path, labels_path, opts)
  opts = util.check_options(opts, { "limit" }, "scorch.data.idx_dataset")
  -- with a limit only the first images are read: a few thousand of 60,000
  -- cost their own memory, not the whole file's
  local first = opts.limit
  if first ~= nil and (math.type(first) ~= "integer" or first < 0) then
    error(("scorch.data.idx_dataset: option limit must be an integer >= 0 (got %s)"):format(tostring(first)), 2)
  end
  local x, err = sc.io.read_idx(images_path, first)
  if not x then return nil, err end
  local y, err2 = sc.io.read_idx(labels_path, first)
  if not y then return nil, err2 end
  if x:dim() ~= 3 and x:dim() ~= 4 then
    return nil, ("%s: expected [n, h, w] images, got %d dims"):format(images_path, x:dim())
  end
  if y:dim() ~= 1 or y:size(1) ~= x:size(1) then
    return nil, ("%s: %d labels for %d images"):format(labels_path,
      y:dim() == 1 and y:size(1) or -1, x:size(1))
  end
  if x:dim() == 3 then x = x:unsqueeze(2) end
  return (x / 255):contiguous(), (y + 1):contiguous()
end

--- fashion_mnist(split="train"|"test" [, {path=dir, limit=n}]) → images
-- [n, 1, 28, 28] in [0, 1], labels [n] (1..10; see fashion_mnist_classes).
-- Raises an error naming the Debian package when the files are absent.
function M.fashion_mnist(split, opts)
  split = split or "train"
  opts = util.check_options(opts, { "path", "limit" }, "scorch.data.fashion_mnist")
  local names = FILES[split]
  if not names then
    error(("scorch.data.fashion_mnist: split must be \"train\" or \"test\", got %s")
      :format(tostring(split)), 2)
  end
  local dir = opts.path or os.getenv("SCORCH_FASHION_MNIST") or M.FASHION_MNIST_DIR
  local ip, lp = find(dir, names[1]), find(dir, names[2])
  if not ip or not lp then
    error(("scorch.data.fashion_mnist: %s(.gz) not found in %s; install Debian package "
      .. "dataset-fashion-mnist (apt-get install dataset-fashion-mnist, or "
      .. "scripts/bootstrap.sh --data) or pass {path=dir}")
      :format(ip and names[2] or names[1], dir), 2)
  end
  local x, y = M.idx_dataset(ip, lp, { limit = opts.limit })
  if not x then error("scorch.data.fashion_mnist: " .. y, 2) end
  return x, y
end

return M
