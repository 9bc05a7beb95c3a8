--- Distributed sampling and evaluation: N samples drawn in fixed chunks
-- spread over the ranks and gathered, so that sample i is the same whatever
-- the world size; feature statistics (for FID) merged across ranks.
-- @module scorch.dist.sampling
local sc = require "scorch"
local util = require "scorch.util"
local coll = require "scorch.dist.collectives"
local seed_for = require("scorch.dist.parallel").seed_for

local M = {}

local DTYPES = { "float32", "float64" }
local DTYPE_CODE = { float32 = 1, float64 = 2 }

--- Initial noise whose row i comes from sample i's own seed: rows
-- first .. first + count - 1 of the same infinite sequence, however the
-- samples are split into batches or over ranks.
-- @tparam integer first the first sample's index (1-based)
-- @tparam integer count rows
-- @tparam table shape one sample's shape, e.g. `{1, 28, 28}`
-- @tparam integer seed
-- @treturn Tensor [count, ...shape] float32, N(0, 1)
-- @usage local x = sc.dist.sample_noise(first, 64, {1, 28, 28}, 1234)
function M.sample_noise(first, count, shape, seed)
  local fn = "scorch.dist.sample_noise"
  if math.type(first) ~= "integer" or first < 1 or math.type(count) ~= "integer" or count < 0 then
    error(("%s: first must be a positive integer and count a non-negative one (got %s, %s)")
      :format(fn, tostring(first), tostring(count)), 2)
  end
  if type(shape) ~= "table" or math.type(seed) ~= "integer" then
    error(fn .. ": expected a shape table and an integer seed", 2)
  end
  local full = { count }
  for i, s in ipairs(shape) do full[i + 1] = s end
  if count == 0 then return sc.zeros(full) end
  local rows = {}
  for i = 1, count do
    rows[i] = sc.randn(shape, { generator = sc.Generator(seed_for(seed, first + i - 1)) })
  end
  return sc.stack(rows, 1)
end

--- Draws n samples over all ranks and gathers them on every rank, rank 0
-- included.  The samples are drawn in chunks of `chunk` rows: chunk k
-- (rows k·chunk + 1 ...) by rank k mod size, with a generator seeded from
-- (seed, k).  Chunks do not depend on the world size, so neither does any
-- sample, as long as `draw` takes its randomness from the generator (or
-- from sample_noise with `first`).
-- @tparam integer n number of samples
-- @tparam function draw `draw(count, generator, first)` returning a tensor [count, ...]
--   (first: the chunk's first sample, 1-based)
-- @tparam[opt] table opts `{chunk = 64, seed = 0}`
-- @treturn Tensor [n, ...] on every rank, in sample order
-- @usage local x = sc.dist.sample(1000, function(m, g) return sampler(model, sc.randn(m, 2, {generator = g})) end)
function M.sample(n, draw, opts)
  local fn = "scorch.dist.sample"
  opts = util.check_options(opts, { "chunk", "seed" }, fn)
  if math.type(n) ~= "integer" or n < 1 then
    error(("%s: n must be a positive integer (got %s)"):format(fn, tostring(n)), 2)
  end
  if not util.is_callable(draw) then error(fn .. ": draw must be a function", 2) end
  local chunk, seed = opts.chunk or 64, opts.seed or 0
  if math.type(chunk) ~= "integer" or chunk < 1 then
    error(("%s: chunk must be a positive integer (got %s)"):format(fn, tostring(chunk)), 2)
  end
  if math.type(seed) ~= "integer" then error(("%s: seed must be an integer (got %s)"):format(fn, tostring(seed)), 2) end
  local rank, size = coll.rank(), coll.size()
  local nchunks = (n + chunk - 1) // chunk
  local per_rank = (nchunks + size - 1) // size

  -- this rank's chunks
  local mine = {}
  for k = rank, nchunks - 1, size do
    local first = k * chunk + 1
    local m = math.min(chunk, n - first + 1)
    local x = draw(m, sc.Generator(seed_for(seed, k)), first)
    if not sc.is_tensor(x) or x:dim() < 1 or x:size(1) ~= m then
      error(("%s: draw(%d, generator, %d) must return a tensor with %d rows (got %s)")
        :format(fn, m, first, m, util.shape_str(x)), 2)
    end
    mine[#mine + 1] = x:detach()
  end

  -- one sample's shape and dtype, from rank 0 (which always draws chunk 0)
  local meta = sc.zeros(10, { dtype = "float64" })
  if rank == 0 then
    local x = mine[1]
    if x:dim() > 9 then error(fn .. ": samples may have at most 8 dims", 2) end
    local v = { DTYPE_CODE[x:dtype()], x:dim() - 1 }
    for d = 2, x:dim() do v[#v + 1] = x:size(d) end
    for i = #v + 1, 10 do v[i] = 0 end
    meta = sc.tensor(v, { dtype = "float64" })
  end
  coll.broadcast(meta, 0)
  local mv = meta:values()
  local dtype = DTYPES[math.tointeger(mv[1])]
  local tail = {}
  for i = 1, math.tointeger(mv[2]) do tail[i] = math.tointeger(mv[2 + i]) end

  -- every rank sends per_rank whole chunks (zeros past its last one)
  local shape = { per_rank * chunk, table.unpack(tail) }
  local buf = sc.zeros(shape, { dtype = dtype })
  for j, x in ipairs(mine) do
    if x:dtype() ~= dtype or util.shape_str(x:narrow(1, 1, 1)) ~= util.shape_str(buf:narrow(1, 1, 1)) then
      error(("%s: rank %d drew samples of shape %s %s, rank 0 of shape [%d,%s] %s"):format(fn, rank,
        util.shape_str(x), x:dtype(), chunk, table.concat(tail, ","), dtype), 2)
    end
    buf:narrow(1, (j - 1) * chunk + 1, x:size(1)):copy_(x)
  end
  local all = coll.all_gather(buf)
  local parts = {}
  for k = 0, nchunks - 1 do
    local r, j = k % size, k // size
    local first = k * chunk + 1
    parts[#parts + 1] = all:narrow(1, (r * per_rank + j) * chunk + 1, math.min(chunk, n - first + 1))
  end
  return #parts == 1 and parts[1]:clone() or sc.cat(parts, 1)
end

--- Merges every rank's feature statistics (sc.metrics.stats_accumulator)
-- into one accumulator over all ranks' features, on every rank: the
-- (count, mean, scatter) of each rank are gathered and combined in rank
-- order with the accumulator's own :merge (Chan et al.'s formula).
-- @param acc this rank's accumulator (of the same dimension on every rank)
-- @return a new accumulator holding every rank's features
-- @usage local stats = sc.dist.merge_stats(acc):result()
function M.merge_stats(acc)
  local fn = "scorch.dist.merge_stats"
  local metrics = require "scorch.metrics"
  if type(acc) ~= "table" or math.type(acc.dim) ~= "integer" or math.type(acc.n) ~= "integer"
      or type(acc.merge) ~= "function" then
    error(fn .. ": expected an accumulator from sc.metrics.stats_accumulator", 2)
  end
  local D = acc.dim
  local flat = sc.zeros(1 + D + D * D, { dtype = "float64" })
  if acc.n > 0 then
    flat = sc.cat({ sc.tensor({ acc.n }, { dtype = "float64" }), acc.mean:double():reshape(D),
      acc.m2:double():reshape(D * D) }, 1)
  end
  local all = coll.all_gather(flat):view(coll.size(), 1 + D + D * D)
  local merged = metrics.stats_accumulator(D, { extractor = acc.extractor })
  for r = 1, coll.size() do
    local row = all:select(1, r)
    local n = math.tointeger(row:narrow(1, 1, 1):item())
    if n > 0 then
      -- a part as :add would have made it (count, mean, scatter)
      local part = metrics.stats_accumulator(D)
      part.n, part.mean, part.m2 = n, row:narrow(1, 2, D):clone(), row:narrow(1, 2 + D, D * D):reshape(D, D):clone()
      merged:merge(part)
    end
  end
  return merged
end

return M
