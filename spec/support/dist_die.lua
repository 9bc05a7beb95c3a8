-- Run by spec/dist_spec.lua under `mpirun -np 2`: rank 1 dies or hangs
-- before an all-reduce that rank 0 waits in.
--   dist_die.lua MODE [timeout]   MODE: exit (os.exit(1)) | error (a Lua
--   error: the state closes and says goodbye) | stuck (busy for 30 s) |
--   late (no failure: rank 0 works alone for 3 s after the all-reduce,
--   longer than the timeout, while rank 1 waits to finalize)
local sc = require "scorch"
sc.set_num_threads(1)
local mode, timeout = arg[1], tonumber(arg[2] or "300")
local rank = sc.dist.init({ timeout = timeout })
sc.dist.barrier()
if rank == 1 then
  if mode == "exit" then os.exit(1) end
  if mode == "error" then error("rank 1 fails on purpose") end
  if mode == "stuck" then
    local t0 = sc.time()
    while sc.time() - t0 < 30 do end
  end
end
sc.dist.all_reduce(sc.ones(10))
print("rank " .. rank .. " finished the all-reduce")
if mode == "late" and rank == 0 then
  local t0 = sc.time()
  while sc.time() - t0 < 3 do end
  print("rank 0 finished its work alone")
end
