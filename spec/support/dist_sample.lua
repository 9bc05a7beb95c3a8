-- Run by spec/dist_spec.lua alone and under `mpirun -np 2`: 50 samples in
-- chunks of 8 from a small random network (a chunk's noise from its own
-- generator, plus per-sample noise), gathered on every rank; feature
-- statistics of each rank's chunks merged across ranks.  Rank 0 writes
-- the samples (%a) and the merged statistics to the file named by arg[1].
local sc = require "scorch"
sc.set_num_threads(1)
local d = sc.dist
local rank = d.init()
local net = sc.nn.MLP { ["in"] = 3, out = 4, hidden = { 16 }, generator = sc.Generator(5) }
local drawn = 0
local x = d.sample(50, function(m, gen, first)
  drawn = drawn + m
  local z = sc.randn({ m, 3 }, { generator = gen }) + d.sample_noise(first, m, { 3 }, 11)
  return sc.no_grad(function() return net(z) end)
end, { chunk = 8, seed = 42 })

-- features: each rank adds its own rows (rank r: rows r+1, r+1+size, ...)
local acc = sc.metrics.stats_accumulator(4)
local mine = {}
for i = rank + 1, 50, d.size() do mine[#mine + 1] = i end
acc:add(x:index_select(1, mine))
local merged = d.merge_stats(acc):result()
print(("rank %d drew %d of %d rows, shape %s, merged n %d"):format(rank, drawn, x:size(1),
  table.concat(x:shape(), "x"), merged.n))
if rank == 0 then
  local f = assert(io.open(arg[1], "w"))
  for _, v in ipairs(x:values()) do f:write(("%a\n"):format(v)) end
  f:write("stats\n")
  for _, v in ipairs(merged.mean:values()) do f:write(("%a\n"):format(v)) end
  for _, v in ipairs(merged.cov:values()) do f:write(("%a\n"):format(v)) end
  f:close()
end
