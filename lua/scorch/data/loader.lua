--- Mini-batches over tensors that share their first dimension, shuffled per
-- epoch with a seeded generator (so a run is reproducible).
-- @module scorch.data.loader
local sc = require "scorch"
local util = require "scorch.util"

local M = {}

local Loader = {}
Loader.__index = Loader

--- A random permutation of 1..n (Fisher–Yates on the generator's uniforms).
function M.randperm(n, gen)
  local perm = {}
  for i = 1, n do perm[i] = i end
  if n < 2 then return perm end
  local u = sc.rand(n, { generator = gen, dtype = "float64" }):values()
  for i = n, 2, -1 do
    local j = math.floor(u[i] * i) + 1
    if j > i then j = i end
    perm[i], perm[j] = perm[j], perm[i]
  end
  return perm
end

--- loader(data, {batch_size=128, shuffle=false, generator=, drop_last=false})
-- data is a tensor or a list of tensors with the same first dimension; a
-- batch is a tensor, or as many tensors as the list holds.
function M.loader(data, opts)
  opts = util.check_options(opts, { "batch_size", "shuffle", "generator", "drop_last" }, "scorch.data.loader")
  local list = sc.is_tensor(data) and { data } or data
  if type(list) ~= "table" or #list == 0 then
    error("scorch.data.loader: expected a tensor or a list of tensors", 2)
  end
  local n
  for i, t in ipairs(list) do
    if not sc.is_tensor(t) or t:dim() == 0 then
      error(("scorch.data.loader: element %d is not a tensor with a batch dimension"):format(i), 2)
    end
    if n and t:size(1) ~= n then
      error(("scorch.data.loader: tensors have %d and %d rows"):format(n, t:size(1)), 2)
    end
    n = t:size(1)
  end
  local bs = opts.batch_size or 128
  if math.type(bs) ~= "integer" or bs < 1 then
    error("scorch.data.loader: batch_size must be a positive integer", 2)
  end
  return setmetatable({ tensors = list, single = sc.is_tensor(data), n = n, batch_size = bs,
    shuffle = opts.shuffle and true or false, generator = opts.generator,
    drop_last = opts.drop_last and true or false, epoch = 0 }, Loader)
end

-- Number of batches per epoch.
function Loader:num_batches()
  if self.drop_last then return self.n // self.batch_size end
  return (self.n + self.batch_size - 1) // self.batch_size
end
Loader.__len = Loader.num_batches

-- for batch in loader:iter() do ... end   (one epoch)
function Loader:iter()
  self.epoch = self.epoch + 1
  local perm = self.shuffle and M.randperm(self.n, self.generator) or nil
  local nb, bs, n = self:num_batches(), self.batch_size, self.n
  local b = 0
  return function()
    b = b + 1
    if b > nb then return nil end
    local start = (b - 1) * bs + 1
    local len = math.min(bs, n - start + 1)
    local out = {}
    if perm then
      local idx = table.move(perm, start, start + len - 1, 1, {})
      for i, t in ipairs(self.tensors) do out[i] = t:index_select(1, idx) end
    else
      for i, t in ipairs(self.tensors) do out[i] = t:narrow(1, start, len) end
    end
    return table.unpack(out, 1, #self.tensors)
  end
end

-- An endless stream of batches over as many epochs as needed.
function Loader:forever()
  local it = self:iter()
  return function()
    local first = table.pack(it())
    if first[1] == nil then
      it = self:iter()
      first = table.pack(it())
    end
    return table.unpack(first, 1, first.n)
  end
end

M.Loader = Loader
return M
