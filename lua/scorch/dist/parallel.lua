--- Data-parallel training: every rank holds the whole model and a shard of
-- each global batch; after backward the gradients are summed over ranks in
-- buckets of a few MB (one collective per bucket, as Horovod's fusion
-- buffer and PyTorch DDP's buckets do), each rank's share weighted by its
-- part of the global batch, so that every rank steps with the gradient of
-- the mean loss over the global batch and the parameters stay identical.
--
--   local dp = sc.dist.DataParallel(net, {config = cfg})   -- checks, then broadcasts from rank 0
--   local shard = sc.dist.ShardedSampler(n, 64, {seed = 1})
--   for step = 1, steps do
--     local idx, weight = shard:indices(step)               -- this rank's rows of global batch `step`
--     local loss = loss_fn(net, x:index_select(1, idx))     -- mean over the local rows
--     opt:zero_grad(); loss:backward()
--     dp:sync_gradients(weight)
--     opt:step()
--   end
-- @module scorch.dist.parallel
local sc = require "scorch"
local util = require "scorch.util"
local coll = require "scorch.dist.collectives"
local randperm = require("scorch.data.loader").randperm

local M = {}

-- ---- seeds -------------------------------------------------------------------------------

--- A seed for item k of a seed (SplitMix64 of the pair): the permutation
-- of epoch k, the noise of sample k.  The same on every rank and world size.
-- @tparam integer seed
-- @tparam integer k
-- @treturn integer
-- @usage local g = sc.Generator(sc.dist.seed_for(1234, 7))
function M.seed_for(seed, k)
  if math.type(seed) ~= "integer" or math.type(k) ~= "integer" then
    error(("scorch.dist.seed_for: seed and k must be integers (got %s, %s)"):format(type(seed), type(k)), 2)
  end
  return require("scorch.samplers.common").seed_mix(seed, k)
end

-- ---- the same set-up on every rank ------------------------------------------------------

-- FNV-1a, 64 bits, over the lines joined by newlines.
local function fnv1a(lines)
  local h = 0xcbf29ce484222325
  for _, line in ipairs(lines) do
    for i = 1, #line do h = (h ~ line:byte(i)) * 0x100000001b3 end
    h = (h ~ 10) * 0x100000001b3
  end
  return h
end

-- Every rank's text, through two all-gathers (lengths, then padded bytes).
local function gather_text(text)
  local size = coll.size()
  local lens = coll.all_gather(sc.tensor({ #text }, { dtype = "float64" })):values()
  local max = 1
  for _, l in ipairs(lens) do max = math.max(max, math.tointeger(l)) end
  local bytes = { text:byte(1, -1) }
  for i = #bytes + 1, max do bytes[i] = 0 end
  local all = coll.all_gather(sc.tensor(bytes, { dtype = "float64" })):values()
  local out = {}
  for r = 1, size do
    local chars = {}
    for i = 1, math.tointeger(lens[r]) do chars[i] = string.char(math.tointeger(all[(r - 1) * max + i])) end
    out[r] = table.concat(chars)
  end
  return out
end

local function split_lines(s)
  local out = {}
  for line in (s .. "\n"):gmatch("(.-)\n") do out[#out + 1] = line end
  return out
end

--- Checks that every rank describes its set-up with the same lines (the
-- config, the parameters' names and shapes): a checksum of them is
-- gathered from every rank and, when one differs, the lines themselves, so
-- that every rank raises the same error naming the first mismatch.
-- @tparam {string,...} lines this rank's description, one item a line
-- @tparam[opt="scorch.dist.check_consistent"] string who the caller's name for the error
-- @return true when every rank has the same lines
-- @usage sc.dist.check_consistent({"lr = 0.001", "w [4,2] float32"}, "my_train")
function M.check_consistent(lines, who)
  who = who or "scorch.dist.check_consistent"
  if type(lines) ~= "table" then
    error(("%s: lines must be a list of strings (got %s)"):format(who, type(lines)), 2)
  end
  for i, l in ipairs(lines) do
    if type(l) ~= "string" then
      error(("%s: line %d is a %s, not a string"):format(who, i, type(l)), 2)
    end
  end
  local h = fnv1a(lines)
  local mine = sc.tensor({ (h >> 32) & 0xffffffff, h & 0xffffffff, #lines }, { dtype = "float64" })
  local all = coll.all_gather(mine):values()
  local same = true
  for r = 2, #all // 3 do
    for k = 1, 3 do
      if all[(r - 1) * 3 + k] ~= all[k] then same = false end
    end
  end
  if same then return true end
  local texts = gather_text(table.concat(lines, "\n"))
  local ref = split_lines(texts[1])
  for r = 2, #texts do
    local other = split_lines(texts[r])
    for i = 1, math.max(#ref, #other) do
      if ref[i] ~= other[i] then
        error(("%s: rank %d's set-up differs from rank 0's at line %d: rank 0 has %s, rank %d has %s")
          :format(who, r - 1, i, ref[i] and ("'" .. ref[i] .. "'") or "nothing", r - 1,
            other[i] and ("'" .. other[i] .. "'") or "nothing"), 2)
      end
    end
  end
  -- same lines but a hash that differs cannot happen; say so if it does
  error(who .. ": ranks disagree on the set-up checksum but not on its lines", 2)
end

-- "key = value" lines of a config table, sorted, nested keys dotted.
-- Functions and other values that print an address are written by type.
local function config_lines(v, prefix, out)
  local tv = type(v)
  if sc.is_tensor(v) then
    out[#out + 1] = ("%s = tensor %s %s"):format(prefix, util.shape_str(v), v:dtype())
  elseif tv == "table" then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(keys) do
      config_lines(v[k], prefix == "" and tostring(k) or prefix .. "." .. tostring(k), out)
    end
  elseif tv == "number" then
    out[#out + 1] = ("%s = %s"):format(prefix, math.type(v) == "integer" and ("%d"):format(v) or ("%.17g"):format(v))
  elseif tv == "string" or tv == "boolean" or tv == "nil" then
    out[#out + 1] = ("%s = %s"):format(prefix, tostring(v))
  else
    out[#out + 1] = ("%s = <%s>"):format(prefix, tv)
  end
  return out
end

-- ---- DataParallel ------------------------------------------------------------------------

local DataParallel = {}
DataParallel.__index = DataParallel
DataParallel.__name = "scorch.dist.DataParallel"

local DEFAULT_BUCKET_MB = 4

-- Buckets of consecutive parameters of one dtype, each at most cap bytes
-- (a larger parameter gets a bucket of its own), each with its flat buffer.
local function make_buckets(params, cap)
  local buckets, cur = {}, nil
  for i, p in ipairs(params) do
    local bytes = p:numel() * (p:dtype() == "float64" and 8 or 4)
    if not cur or cur.dtype ~= p:dtype() or (cur.bytes + bytes > cap and cur.bytes > 0) then
      cur = { dtype = p:dtype(), bytes = 0, numel = 0, params = {}, index = {} }
      buckets[#buckets + 1] = cur
    end
    cur.params[#cur.params + 1] = p
    cur.index[#cur.index + 1] = i
    cur.bytes, cur.numel = cur.bytes + bytes, cur.numel + p:numel()
  end
  for _, b in ipairs(buckets) do b.flat = sc.empty({ math.max(b.numel, 1) }, { dtype = b.dtype }) end
  return buckets
end

--- Data-parallel training of a model over all ranks.  At construction it
-- checks that every rank has the same config and the same parameter and
-- buffer names and shapes (an error naming the first mismatch otherwise),
-- then copies rank 0's parameters and buffers to every rank.
-- @param model a module (its parameters() and buffers()) or a list of parameter tensors
-- @tparam[opt] table opts `{bucket_mb = 4, config = table or string compared across ranks,
--   buffers = list of tensors (default the module's buffers()), broadcast = true}`
-- @return a DataParallel with `:sync_gradients(weight)`, `:broadcast_parameters()`,
--   `:in_sync()`, `:parameters()`
-- @usage local dp = sc.dist.DataParallel(net, {config = cfg, bucket_mb = 4})
function M.DataParallel(model, opts)
  local fn = "scorch.dist.DataParallel"
  opts = util.check_options(opts, { "bucket_mb", "config", "buffers", "broadcast" }, fn)
  local params, names = {}, {}
  if type(model) == "table" and type(model.named_parameters) == "function" then
    for i, nt in ipairs(model:named_parameters()) do names[i], params[i] = nt[1], nt[2] end
  elseif type(model) == "table" and type(model.parameters) == "function" then
    params = model:parameters()
  elseif type(model) == "table" then
    params = model
  else
    error(("%s: expected a module or a list of parameter tensors (got %s)"):format(fn, type(model)), 2)
  end
  if #params == 0 then error(fn .. ": the model has no parameters", 2) end
  for i, p in ipairs(params) do
    if not sc.is_tensor(p) then error(("%s: parameter %d is a %s, not a tensor"):format(fn, i, type(p)), 2) end
    if not p:is_contiguous() then error(("%s: parameter %d is not contiguous"):format(fn, i), 2) end
    names[i] = names[i] or ("parameter " .. i)
  end
  local buffers = opts.buffers
  if buffers == nil and type(model.buffers) == "function" then buffers = model:buffers() end
  buffers = buffers or {}
  for i, b in ipairs(buffers) do
    if not sc.is_tensor(b) then error(("%s: buffer %d is a %s, not a tensor"):format(fn, i, type(b)), 2) end
  end
  local mb = opts.bucket_mb or DEFAULT_BUCKET_MB
  if type(mb) ~= "number" or not (mb > 0) then
    error(("%s: bucket_mb must be a positive number (got %s)"):format(fn, tostring(mb)), 2)
  end

  -- the same set-up everywhere, or an error on every rank
  local lines = {}
  if opts.config ~= nil then config_lines(opts.config, "config", lines) end
  for i, p in ipairs(params) do
    lines[#lines + 1] = ("parameter %s %s %s"):format(names[i], util.shape_str(p), p:dtype())
  end
  for i, b in ipairs(buffers) do lines[#lines + 1] = ("buffer %d %s %s"):format(i, util.shape_str(b), b:dtype()) end
  M.check_consistent(lines, fn)

  local self = setmetatable({
    params = params, names = names, buffers = buffers,
    buckets = make_buckets(params, mb * 1024 * 1024), bucket_mb = mb,
    world = coll._backend(),
  }, DataParallel)
  if opts.broadcast ~= false then self:broadcast_parameters() end
  return self
end

--- Copies rank 0's parameters and buffers to every rank (done at
-- construction; again after rank 0 alone has changed them).
-- @return self
-- @usage dp:broadcast_parameters()
function DataParallel:broadcast_parameters()
  sc.no_grad(function()
    for _, p in ipairs(self.params) do coll.broadcast(p, 0) end
    for _, b in ipairs(self.buffers) do coll.broadcast(b, 0) end
  end)
  return self
end

--- The parameters, in the model's order.
-- @return list of tensors
-- @usage local opt = sc.optim.Adam(dp:parameters())
function DataParallel:parameters() return self.params end

--- Sums the gradients over ranks after backward, in buckets of at most
-- `bucket_mb`: each rank's gradient is multiplied by its weight, its share
-- of the global batch, before the sum, so that with every rank's loss the
-- mean over its own rows the result is the gradient of the mean over the
-- global batch.  A parameter without a gradient counts as zero (and gets
-- one).  Afterwards every rank holds the same gradients, bit for bit.
-- @tparam[opt] number weight this rank's rows / the global batch (default 1 / size(): even shards)
-- @return self
-- @usage loss:backward(); dp:sync_gradients(); opt:step()
function DataParallel:sync_gradients(weight)
  local w = self.world
  weight = weight or 1 / w.size()
  if type(weight) ~= "number" or weight ~= weight then
    error(("scorch.dist.DataParallel:sync_gradients: weight must be a number (got %s)"):format(tostring(weight)), 2)
  end
  -- every gradient first, as a contiguous tensor of its own: autograd may
  -- hand two leaves the same tensor, which would otherwise be summed twice
  local all, seen = {}, {}
  for bi, b in ipairs(self.buckets) do
    local grads = {}
    for i, p in ipairs(b.params) do
      local g = p.grad
      if g == nil then
        g = sc.zeros(p:shape(), { dtype = p:dtype() })
        p.grad = g
      elseif not g:is_contiguous() then
        g = g:contiguous()
        p.grad = g
      end
      grads[i] = g
    end
    for i, k in ipairs(w.storage_keys(grads)) do
      if seen[k] then
        grads[i] = grads[i]:clone()
        b.params[i].grad = grads[i]
      else
        seen[k] = true
      end
    end
    all[bi] = grads
  end
  for bi, b in ipairs(self.buckets) do
    local grads = all[bi]
    w.reduce_bucket(grads, b.flat, weight)
  end
  return self
end

--- Whether every rank holds the same parameters, bit for bit (two
-- all-reduces, max and min, per parameter; for checks, not every step).
-- @treturn boolean
-- @treturn string or nil the name of the first parameter that differs
-- @usage assert(dp:in_sync())
function DataParallel:in_sync()
  local bad
  sc.no_grad(function()
    for i, p in ipairs(self.params) do
      local hi = coll.all_reduce(p:detach():clone(), { op = "max" })
      local lo = coll.all_reduce(p:detach():clone(), { op = "min" })
      if not bad and (hi:ne(p):sum():item() ~= 0 or lo:ne(p):sum():item() ~= 0) then bad = self.names[i] end
    end
  end)
  return bad == nil, bad
end

--- The buckets' layout: a list of `{dtype =, bytes =, params = count}`.
-- @return list of tables
-- @usage for _, b in ipairs(dp:bucket_sizes()) do print(b.bytes) end
function DataParallel:bucket_sizes()
  local out = {}
  for i, b in ipairs(self.buckets) do out[i] = { dtype = b.dtype, bytes = b.bytes, params = #b.params } end
  return out
end

-- ---- shards of a seeded permutation -------------------------------------------------------

local ShardedSampler = {}
ShardedSampler.__index = ShardedSampler
ShardedSampler.__name = "scorch.dist.ShardedSampler"

--- Global batches drawn from a seeded permutation of 1..n per epoch (the
-- same on every rank), each split into contiguous, disjoint shards, one per
-- rank in rank order.  A global batch that the world size does not divide
-- is an error unless `uneven` is set: then the first (batch mod size)
-- ranks take one row more, and `indices` returns each rank's weight.
-- Epochs drop the last partial batch.
-- @tparam integer n number of rows of the data
-- @tparam integer global_batch rows per step over all ranks
-- @tparam[opt] table opts `{seed = 0, uneven = false, rank = this rank, size = world size}`
--   (rank and size are for looking at another rank's shard)
-- @return a sampler with `:indices(step)`, `:global_indices(step)`, `:steps_per_epoch()`
-- @usage local s = sc.dist.ShardedSampler(60000, 64, {seed = 1}); local idx, w = s:indices(1)
function M.ShardedSampler(n, global_batch, opts)
  local fn = "scorch.dist.ShardedSampler"
  opts = util.check_options(opts, { "seed", "uneven", "rank", "size" }, fn)
  if math.type(n) ~= "integer" or n < 1 then
    error(("%s: n must be a positive integer (got %s)"):format(fn, tostring(n)), 2)
  end
  if math.type(global_batch) ~= "integer" or global_batch < 1 or global_batch > n then
    error(("%s: global_batch must be an integer from 1 to n = %d (got %s)"):format(fn, n, tostring(global_batch)), 2)
  end
  local size = opts.size or coll.size()
  local rank = opts.rank or (opts.size and 0 or coll.rank())
  if math.type(size) ~= "integer" or size < 1 or math.type(rank) ~= "integer" or rank < 0 or rank >= size then
    error(("%s: rank %s is not a rank of a world of %s"):format(fn, tostring(rank), tostring(size)), 2)
  end
  if global_batch < size then
    error(("%s: a global batch of %d leaves some of the %d ranks without a row"):format(fn, global_batch, size), 2)
  end
  if global_batch % size ~= 0 and not opts.uneven then
    error(("%s: a global batch of %d does not split evenly over %d ranks; pick a multiple of %d, "
      .. "or pass {uneven = true} (the first %d ranks then take %d rows, the others %d)")
      :format(fn, global_batch, size, size, global_batch % size, global_batch // size + 1, global_batch // size), 2)
  end
  local seed = opts.seed or 0
  if math.type(seed) ~= "integer" then error(("%s: seed must be an integer (got %s)"):format(fn, tostring(seed)), 2) end
  -- rank r's rows of a global batch: [first, last] (1-based within the batch)
  local base, extra = global_batch // size, global_batch % size
  local first = rank * base + math.min(rank, extra) + 1
  local count = base + (rank < extra and 1 or 0)
  return setmetatable({ n = n, batch = global_batch, seed = seed, rank = rank, size = size,
    first = first, count = count, perm_epoch = nil, perm = nil }, ShardedSampler)
end

--- Global batches per epoch (n // global_batch).
-- @treturn integer
-- @usage print(s:steps_per_epoch())
function ShardedSampler:steps_per_epoch() return self.n // self.batch end

-- The permutation of epoch e (1-based), cached.
function ShardedSampler:_perm(e)
  if self.perm_epoch ~= e then
    self.perm = randperm(self.n, sc.Generator(M.seed_for(self.seed, e)))
    self.perm_epoch = e
  end
  return self.perm
end

local function check_step(step, fn)
  if math.type(step) ~= "integer" or step < 1 then
    error(("scorch.dist.ShardedSampler:%s: step must be a positive integer (got %s)"):format(fn, tostring(step)), 3)
  end
end

--- The data rows of global batch `step` over all ranks (1-based rows).
-- @tparam integer step 1, 2, ... (epochs follow one another)
-- @return list of global_batch row indices, rank 0's shard first
-- @usage local rows = s:global_indices(3)
function ShardedSampler:global_indices(step)
  check_step(step, "global_indices")
  local spe = self:steps_per_epoch()
  local e, b = (step - 1) // spe + 1, (step - 1) % spe
  local perm = self:_perm(e)
  return table.move(perm, b * self.batch + 1, (b + 1) * self.batch, 1, {})
end

--- This rank's rows of global batch `step`, and its weight for
-- DataParallel:sync_gradients (its rows / the global batch).
-- @tparam integer step 1, 2, ...
-- @return list of row indices (1-based), and the weight
-- @usage local idx, w = s:indices(step); local xb = x:index_select(1, idx)
function ShardedSampler:indices(step)
  check_step(step, "indices")
  local all = self:global_indices(step)
  return table.move(all, self.first, self.first + self.count - 1, 1, {}), self.count / self.batch
end

--- How many rows of the run come before this rank's first row of global
-- batch `step` ((step - 1) x global_batch plus the rows of lower ranks):
-- with sample_noise(offset + 1, count, ...) every row gets noise from its
-- own seed, so a run draws the same noise on any world size.
-- @tparam integer step 1, 2, ...
-- @treturn integer
-- @usage local z = sc.dist.sample_noise(s:offset(step) + 1, #idx, {2}, seed)
function ShardedSampler:offset(step)
  check_step(step, "offset")
  return (step - 1) * self.batch + self.first - 1
end

-- ---- the training runtime's hook ----------------------------------------------------------

--- What a training loop needs to run data-parallel, in one table: the
-- DataParallel of its model (set-up checked, parameters broadcast), a
-- ShardedSampler, whether this rank writes logs and checkpoints, and a
-- seed for this rank's own noise stream.
-- @param model a module or a list of parameters
-- @tparam table opts `{n = rows of data, batch = global batch, seed = integer,
--   config = table compared across ranks, bucket_mb = 4, uneven = false}`
-- @return `{dp =, sampler =, rank =, size =, writer = boolean, noise_seed = integer,
--   after_backward = function(step) syncing gradients with this rank's weight}`
-- @usage local h = sc.dist.training_hook(net, {n = 60000, batch = 64, seed = cfg.seed, config = cfg})
function M.training_hook(model, opts)
  local fn = "scorch.dist.training_hook"
  opts = util.check_options(opts, { "n", "batch", "seed", "config", "bucket_mb", "uneven" }, fn)
  local seed = opts.seed or 0
  local sampler = M.ShardedSampler(opts.n, opts.batch, { seed = seed, uneven = opts.uneven })
  local dp = M.DataParallel(model, { config = opts.config, bucket_mb = opts.bucket_mb })
  local rank, size = coll.rank(), coll.size()
  local weight = sampler.count / sampler.batch
  return {
    dp = dp, sampler = sampler, rank = rank, size = size, writer = rank == 0,
    noise_seed = M.seed_for(seed, 1000003 + rank),
    after_backward = function() dp:sync_gradients(weight) end,
  }
end

return M
