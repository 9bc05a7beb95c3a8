-- Run by spec/dist_spec.lua under `mpirun -np 2` (and alone): each
-- collective on values whose result is known in closed form; every rank
-- prints "rank R NAME value" lines that the spec compares.
local sc = require "scorch"
sc.set_num_threads(1)
local d = sc.dist
local rank, size = d.init()
local function say(name, v) print(("rank %d %s %s"):format(rank, name, v)) end
local function csv(t) return table.concat(t:values(), ",") end

say("size", size)
say("backend", d.backend())

-- sum of (r + 1) * [1..7] over ranks: 7 elements split unevenly by the ring
local t = sc.arange(1, 8) * (rank + 1)
d.all_reduce(t)
say("sum7", csv(t))
-- float64, and a large buffer (many ring chunks of 250,001 elements)
local big = sc.full({ 1000003 }, rank + 0.5, { dtype = "float64" })
d.all_reduce(big)
say("sumbig", ("%s %s %s"):format(big:min():item(), big:max():item(), big:dtype()))
-- max and min
local m = sc.tensor({ rank, -rank, 5 })
d.all_reduce(m, { op = "max" })
say("max", csv(m))
d.all_reduce(m:fill_(rank), { op = "min" })
say("min", csv(m))
-- non-contiguous tensors go through a copy and come back in place
local nc = (sc.arange(0, 6):view(2, 3) + rank):t()
d.all_reduce(nc)
say("noncontig", csv(nc:contiguous()))
-- broadcast from the last rank
local b = sc.full({ 2, 2 }, rank * 10 + 1)
d.broadcast(b, size - 1)
say("bcast", csv(b))
-- all_gather: [2, 2] per rank, rank order
local g = d.all_gather(sc.tensor({ { rank, rank + 0.25 }, { -rank, 100 } }))
say("gather", ("%s %s"):format(table.concat(g:shape(), "x"), csv(g)))
local g0 = d.all_gather(sc.tensor(rank * 3, { dtype = "float64" }))
say("gather0d", ("%s %s"):format(table.concat(g0:shape(), "x"), csv(g0)))
-- a rank with another shape: every rank gets an error naming it
local ok, err = pcall(d.all_gather, sc.zeros(rank == size - 1 and 3 or 2))
say("gather_mismatch", ok and "no error" or err)
-- the backend's own error for a root out of range: MPI's error string
local raw = d._backend()
ok, err = pcall(raw.broadcast, sc.zeros(2), size + 3)
say("bad_root", ok and "no error" or err)
d.barrier()
say("done", "ok")
