-- Run by spec/dist_spec.lua, alone or under `mpirun -np 2`: a small MLP
-- trained data-parallel on a fixed regression set, 100 steps of one global
-- batch of 32 split over the ranks.  Rank 0 writes every parameter value
-- (%a, exact) to the file named by arg[1]; every rank prints one line.
--   dist_train.lua OUT [steps] [mode]
-- mode: normal | shape (rank 1's hidden layer is 16 wide) | config (rank 1's
-- lr differs) | batch33 (33 rows per step, not split evenly: an error) |
-- uneven (33 rows with {uneven = true}: 17 on rank 0, 16 on rank 1)
local sc = require "scorch"
local out, steps, mode = arg[1], math.tointeger(tonumber(arg[2] or "100")), arg[3] or "normal"
sc.set_num_threads(1)
local rank, size = sc.dist.init()

-- the data: the same on every rank
local g = sc.Generator(1)
local N = 256
local x = sc.randn({ N, 4 }, { generator = g })
local w = sc.randn({ 4, 2 }, { generator = g })
local y = sc.matmul(x, w):sin()

-- ranks start from different weights: DataParallel copies rank 0's
local hidden = (mode == "shape" and rank == 1) and { 32, 16 } or { 32, 32 }
local net = sc.nn.MLP { ["in"] = 4, out = 2, hidden = hidden, generator = sc.Generator(rank == 0 and 7 or 99 + rank) }
local cfg = { lr = 0.05, batch = 32, model = { hidden = 32 } }
if mode == "config" and rank == 1 then cfg.lr = 0.02 end
local batch = (mode == "batch33" or mode == "uneven") and 33 or cfg.batch
local ok, err = pcall(function()
  local dp = sc.dist.DataParallel(net, { config = cfg, bucket_mb = 0.002 }) -- 2 KB: several buckets
  local shard = sc.dist.ShardedSampler(N, batch, { seed = 3, uneven = mode == "uneven" })
  local opt = sc.optim.SGD(dp:parameters(), { lr = cfg.lr, momentum = 0.9 })
  sc.dist.reset_stats()
  for step = 1, steps do
    local idx, weight = shard:indices(step)
    local xb, yb = x:index_select(1, idx), y:index_select(1, idx)
    local loss = ((net(xb) - yb) ^ 2):mean()
    opt:zero_grad()
    loss:backward()
    dp:sync_gradients(weight)
    opt:step()
  end
  local st = sc.dist.stats()
  local same = dp:in_sync()
  print(("rank %d size %d in_sync %s buckets %d calls/step %.1f bytes/step %d"):format(rank, size,
    tostring(same), #dp:bucket_sizes(), st.calls / steps, st.bytes // steps))
end)
if not ok then
  print(("rank %d error: %s"):format(rank, tostring(err)))
  os.exit(3, true)
end
if rank == 0 then
  local f = assert(io.open(out, "w"))
  for _, p in ipairs(net:parameters()) do
    for _, v in ipairs(p:values()) do f:write(("%a\n"):format(v)) end
  end
  f:close()
end
