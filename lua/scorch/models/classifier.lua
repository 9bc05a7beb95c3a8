--- A small convolutional image classifier, trained by
-- scripts/train_classifier.lua on shapes and Fashion-MNIST.  It labels
-- generated samples (class mix and confidence), and its features() are the
-- embedding of sc.metrics.extractor (lua/scorch/metrics/features.lua): the
-- feature space in which sc.metrics computes FID, FID∞, KID and precision/
-- recall, named by data set and a hash of these weights.
--
-- Layout for channels = {32, 64} on 28x28 inputs:
--   [conv3x3 → GroupNorm → SiLU → avg-pool 2]  per entry of channels (28 → 14 → 7)
--   conv3x3 → GroupNorm → SiLU                 once more at the coarsest size
--   global average pool → Linear → SiLU       the features (128-d by default);
--     pool = "flatten" feeds the whole C×7×7 map to that Linear instead,
--     which keeps where things are (Fashion-MNIST needs it, see below)
--   Linear                                     the logits
--
-- Trained weights live in a cache directory; Classifier.path(data) says
-- where, Classifier.load(data) rebuilds the network from the metadata saved
-- beside the weights.
-- @module scorch.models.classifier
local sc = require "scorch"
local nn = sc.nn

local FORMAT = "scorch.classifier/1"

-- Largest divisor of c that is at most 8: the GroupNorm group count.
local function groups_for(c)
  local g = math.min(8, c)
  while c % g ~= 0 do g = g - 1 end
  return g
end

local function posint(v, name)
  if math.type(v) ~= "integer" or v < 1 then
    error(("scorch.models.Classifier: %s must be a positive integer, got %s"):format(name, tostring(v)), 4)
  end
end

-- conv3x3 → GroupNorm → SiLU, the one block the network is built from.
local function conv_block(cin, cout, o)
  return nn.Sequential {
    nn.Conv2d(cin, cout, 3, { padding = 1, dtype = o.dtype, generator = o.generator }),
    nn.GroupNorm(groups_for(cout), cout, { dtype = o.dtype }),
    nn.SiLU(),
  }
end

local Classifier = nn.Module:extend("Classifier")

-- Classifier{classes=K, channels={32, 64}, size=28, in_channels=1,
--            features=128, pool="global"|"flatten", dropout=0, dtype=, generator=}
-- size must be divisible by 2^#channels (each stage halves it).
function Classifier:init(opts)
  if type(opts) ~= "table" then error("scorch.models.Classifier: expected an options table", 3) end
  require("scorch.util").check_options(opts, {
      "classes", "size", "in_channels", "channels", "features", "pool", "dropout", "dtype", "generator" },
      "scorch.models.Classifier", 4)
  local K, size, cin = opts.classes, opts.size or 28, opts.in_channels or 1
  local channels, fdim = opts.channels or { 32, 64 }, opts.features or 128
  posint(K, "classes")
  posint(size, "size")
  posint(cin, "in_channels")
  posint(fdim, "features")
  if type(channels) ~= "table" or #channels == 0 then
    error("scorch.models.Classifier: channels must be a non-empty list of positive integers", 3)
  end
  for i, c in ipairs(channels) do posint(c, ("channels[%d]"):format(i)) end
  local pool = opts.pool or "global"
  if pool ~= "global" and pool ~= "flatten" then
    error(("scorch.models.Classifier: pool must be \"global\" or \"flatten\", got %s"):format(tostring(pool)), 3)
  end
  if size % (1 << #channels) ~= 0 then
    error(("scorch.models.Classifier: size %d is not divisible by 2^%d (one halving per entry of channels)")
      :format(size, #channels), 3)
  end
  self.classes, self.size, self.in_channels, self.feature_dim = K, size, cin, fdim
  self.channels, self.pool = table.move(channels, 1, #channels, 1, {}), pool

  local o = { dtype = opts.dtype, generator = opts.generator }
  local layers, prev = {}, cin
  for _, c in ipairs(channels) do
    layers[#layers + 1] = conv_block(prev, c, o)
    layers[#layers + 1] = nn.AvgPool2d(2)
    prev = c
  end
  layers[#layers + 1] = conv_block(prev, prev, o)
  self.body = nn.Sequential(layers)
  local side = size >> #channels
  self.feature = nn.Linear(pool == "global" and prev or prev * side * side, fdim, o)
  if (opts.dropout or 0) > 0 then self.drop = nn.Dropout(opts.dropout, { generator = opts.generator }) end
  self.head = nn.Linear(fdim, K, o)
end

function Classifier:extra_repr()
  return ("classes=%d, channels={%s}, size=%d, features=%d, pool=%s"):format(self.classes,
    table.concat(self.channels, ", "), self.size, self.feature_dim, self.pool)
end

local function check_input(self, x, fn)
  if not sc.is_tensor(x) or x:dim() ~= 4 or x:size(2) ~= self.in_channels
      or x:size(3) ~= self.size or x:size(4) ~= self.size then
    local got = sc.is_tensor(x) and "[" .. table.concat(x:shape(), ",") .. "]" or type(x)
    error(("scorch.models.Classifier:%s: x must be images [N, %d, %d, %d], got %s")
      :format(fn, self.in_channels, self.size, self.size, got), 3)
  end
end

-- features(x) → [N, features]: the penultimate layer (after its SiLU).
-- x: images [N, C, size, size] scaled to [−1, 1] (2·pixel − 1), as in
-- training; images in [0, 1] give poor features.
local function features(self, x)
  local h = self.body(x)
  if self.pool == "global" then
    h = h:mean({ 3, 4 })                  -- global average pool → [N, C]
  else
    h = h:reshape(h:size(1), -1)          -- [N, C·side²]
  end
  return self.feature(h):silu()
end

--- The penultimate layer's features (what sc.metrics' FID, KID and
-- precision/recall use).
-- @param x tensor [N, 1, 28, 28] of images in [0, 1]
-- @return tensor [N, features]
-- @usage local f = clf:features(images)
function Classifier:features(x)
  check_input(self, x, "features")
  return features(self, x)
end

-- forward(x) → logits [N, classes] for images x in [−1, 1].
function Classifier:forward(x)
  check_input(self, x, "forward")
  local h = features(self, x)
  if self.drop then h = self.drop(h) end
  return self.head(h)
end

-- predict(x [, {batch=256}]) → labels (Lua array, 1-based), probabilities
-- [N, classes]; runs under sc.no_grad, in batches, in the current mode
-- (call :eval() first when dropout is on).
function Classifier:predict(x, opts)
  check_input(self, x, "predict")
  opts = require("scorch.util").check_options(opts, { "batch" }, "scorch.models.Classifier:predict")
  local bs = opts.batch or 256
  local parts, labels = {}, {}
  sc.no_grad(function()
    for start = 1, x:size(1), bs do
      local len = math.min(bs, x:size(1) - start + 1)
      local p = sc.softmax(self:forward(x:narrow(1, start, len)), 2)
      local _, idx = p:max(2, false)
      for _, v in ipairs(idx:values()) do labels[#labels + 1] = math.tointeger(v) end
      parts[#parts + 1] = p
    end
  end)
  return labels, #parts == 1 and parts[1] or sc.cat(parts, 1)
end

-- ---- the weight cache -------------------------------------------------------------

-- The cache directory: $SCORCH_CACHE, else $XDG_CACHE_HOME/scorch, else
-- ~/.cache/scorch.
function Classifier.cache_dir()
  local dir = os.getenv("SCORCH_CACHE")
  if dir and dir ~= "" then return dir end
  local xdg = os.getenv("XDG_CACHE_HOME")
  if xdg and xdg ~= "" then return xdg .. "/scorch" end
  return (os.getenv("HOME") or ".") .. "/.cache/scorch"
end

local function check_data_name(data, fn)
  if type(data) ~= "string" or not data:match("^[%w_%-]+$") then
    error(("scorch.models.%s: data must be a data set name such as \"shapes\", got %s")
      :format(fn, tostring(data)), 3)
  end
end

--- path(data) → <cache>/classifiers/<data>.safetensors
function Classifier.path(data)
  check_data_name(data, "classifier_path")
  return Classifier.cache_dir() .. "/classifiers/" .. data .. ".safetensors"
end

-- model:save(path [, meta]): the weights and, as metadata, everything the
-- constructor needs plus the caller's extra fields (accuracy, data, names).
-- Creates the directory.  Returns true, or nil and a message.
function Classifier:save(path, meta)
  if type(path) ~= "string" then error("scorch.models.Classifier:save: path must be a string", 2) end
  local m = {}
  for k, v in pairs(meta or {}) do
    m[k] = type(v) == "table" and table.concat(v, "\n") or tostring(v)
  end
  m.format, m.classes, m.size = FORMAT, tostring(self.classes), tostring(self.size)
  m.in_channels, m.features = tostring(self.in_channels), tostring(self.feature_dim)
  m.channels, m.pool = table.concat(self.channels, ","), self.pool
  m.dropout = tostring(self.drop and self.drop.p or 0)
  local dir = path:match("^(.*)/[^/]*$")
  if dir and dir ~= "" then
    local ok, err = sc.util.mkdir(dir)
    if not ok then return nil, err end
  end
  return sc.save(path, self:state_dict(), m)
end

local function int_field(meta, key, path)
  local v = math.tointeger(tonumber(meta[key]))
  if not v then
    error(("scorch.models.load_classifier: %s has no valid '%s' in its metadata"):format(path, key), 3)
  end
  return v
end

-- from_file(path) → model (eval mode), metadata; nil and a message when the
-- file cannot be read.  class_names come back as a list.
function Classifier.from_file(path)
  local sd, meta = sc.load(path)
  if not sd then return nil, meta end
  if meta.format ~= FORMAT then
    error(("scorch.models.load_classifier: %s is not a saved classifier (format %s)")
      :format(path, tostring(meta.format)), 2)
  end
  local channels = {}
  for c in tostring(meta.channels):gmatch("%d+") do channels[#channels + 1] = math.tointeger(tonumber(c)) end
  local model = Classifier {
    classes = int_field(meta, "classes", path), size = int_field(meta, "size", path),
    in_channels = int_field(meta, "in_channels", path), features = int_field(meta, "features", path),
    channels = channels, dropout = tonumber(meta.dropout) or 0, pool = meta.pool or "global",
  }
  model:load_state_dict(sd)
  model:eval()
  local info = {}
  for k, v in pairs(meta) do info[k] = v end
  if meta.class_names then
    info.class_names = {}
    for name in (meta.class_names .. "\n"):gmatch("(.-)\n") do info.class_names[#info.class_names + 1] = name end
  end
  info.test_accuracy = tonumber(meta.test_accuracy)
  model.info = info
  return model, info
end

--- load(data [, path]) → model in eval mode, metadata.  A missing file
-- raises an error naming the command that trains it.
function Classifier.load(data, path)
  check_data_name(data, "load_classifier")
  path = path or Classifier.path(data)
  local f = io.open(path, "rb")
  if not f then
    error(("scorch.models.load_classifier: no trained %s classifier at %s; train it with "
      .. "`bin/scorch scripts/train_classifier.lua --data %s`"):format(data, path, data), 2)
  end
  f:close()
  local model, info = Classifier.from_file(path)
  if not model then error("scorch.models.load_classifier: " .. info, 2) end
  return model, info
end

return Classifier
