-- W3 (unet28_train_step, see /work/shared/WORKLOADS.md and
-- bench/scorch/workloads.lua, whose model this copies line for line) or W7t
-- (the Fashion-MNIST DDPM U-Net's training step, from the weights file of
-- bench/scorch/workloads.lua's W7) trained data-parallel at a fixed global
-- batch: each rank takes its rows of the batch, backward,
-- sc.dist.DataParallel sums the gradients (one bucket), Adam steps.  One
-- thread per rank.  Run alone (1 rank) or under mpirun:
--
--   bin/scorch bench/dist/w3_dist.lua [--workload W3|W7t] [--steps 20] [--warmup 3] [--batch 64]
--   mpirun -np 2 bin/scorch bench/dist/w3_dist.lua
--
-- Rank 0 prints one JSON line: median and mean seconds per step, and per
-- step the all-reduce's seconds, the bytes this rank sent, and the seconds
-- it waited for the slower rank.  That wait is split off by a barrier just
-- before the gradients' all-reduce (the all-reduce would wait as long
-- without it): on two vCPUs of a shared host one rank can run 20% slower
-- than the other for minutes, which is load imbalance, not the cost of
-- moving the gradients.
local sc = require "scorch"

local A = { steps = 20, warmup = 3, batch = 64, workload = "W3" }
do
  local i = 1
  while i <= #arg do
    local k = arg[i]:match("^%-%-(%w+)$")
    if not k or A[k] == nil then io.stderr:write("unknown argument " .. arg[i] .. "\n"); os.exit(2) end
    A[k] = k == "workload" and arg[i + 1] or math.tointeger(tonumber(arg[i + 1]))
    if A[k] == nil then io.stderr:write("bad value for --" .. k .. "\n"); os.exit(2) end
    i = i + 2
  end
  if A.workload ~= "W3" and A.workload ~= "W7t" then
    io.stderr:write("--workload: W3 or W7t, not " .. A.workload .. "\n"); os.exit(2)
  end
end
sc.set_num_threads(1)
local rank, size = sc.dist.init()
local B = A.batch // size
if B * size ~= A.batch then error("the world size must divide the global batch") end

local HERE = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local steps = dofile(HERE .. "../scorch/steps.lua")

local params, step, dp
-- the gradients' all-reduce, after a barrier whose time is the wait for
-- the slower rank (its own cost is a few microseconds)
local wait_s = 0
local function sync()
  local s0 = sc.dist.stats().seconds
  sc.dist.barrier()
  wait_s = wait_s + sc.dist.stats().seconds - s0
  dp:sync_gradients()
end
if A.workload == "W3" then
  -- the W3 network, as bench/scorch/workloads.lua builds it
  local UNet28 = dofile(HERE .. "../scorch/unet28.lua")
  sc.manual_seed(0)
  local model = UNet28()
  params = model.parameters()
  dp = sc.dist.DataParallel(params, { bucket_mb = 4 })
  local opt = sc.optim.Adam(params, { lr = 2e-4 })
  local x0 = (sc.rand(A.batch, 1, 28, 28) * 2.0 - 1.0):narrow(1, rank * B + 1, B):contiguous()
  sc.manual_seed(1 + rank) -- each rank its own noise
  step = steps.w3(model, opt, x0, sync)
else
  -- W7t: the U-Net of examples/ddpm_fashion_mnist.lua's full preset, with
  -- the weights bench/scorch/workloads.lua --workload make-w7-weights wrote
  local sd = assert(sc.load("build/bench/w7_unet.safetensors"))
  local net = sc.models.UNet { channels = 24, mults = { 1, 2, 2 }, attention = { false, false, false },
    blocks = 1, mid_attention = false, out = "eps", cond = "t" }:load_state_dict(sd)
  params = net:parameters()
  dp = sc.dist.DataParallel(params, { bucket_mb = 4 })
  local opt = sc.optim.Adam(params, { lr = 2e-4 })
  local sched = sc.schedules.ddpm { kind = "linear", T = 1000 }
  sc.manual_seed(0)
  local x0 = (sc.rand(A.batch, 1, 28, 28) * 2.0 - 1.0):narrow(1, rank * B + 1, B):contiguous()
  sc.manual_seed(1 + rank)
  step = steps.w7t(net, opt, sched, x0, sync)
end

for _ = 1, A.warmup do step() end
sc.dist.barrier()
sc.dist.reset_stats()
wait_s = 0
local times = {}
local t_all = sc.time()
for i = 1, A.steps do
  local t0 = sc.time()
  step()
  times[i] = sc.time() - t0
end
t_all = sc.time() - t_all
local st = sc.dist.stats()
-- the slowest rank's step is the step: take the max over ranks
local mine = sc.tensor(times, { dtype = "float64" })
sc.dist.all_reduce(mine, { op = "max" })
times = mine:values()
table.sort(times)
local nparams = 0
for _, p in ipairs(params) do nparams = nparams + p:numel() end
if rank == 0 then
  print(("{\"impl\": \"scorch\", \"ranks\": %d, \"threads\": 1, \"global_batch\": %d, \"steps\": %d, "
    .. "\"median_s\": %.6f, \"mean_s\": %.6f, \"allreduce_s_per_step\": %.6f, \"bytes_sent_per_step\": %d, "
    .. "\"wait_s_per_step\": %.6f, \"gradient_bytes\": %d, \"buckets\": %d}")
    :format(size, A.batch, A.steps, times[(#times + 1) // 2], t_all / A.steps,
      (st.seconds - wait_s) / A.steps, st.bytes // A.steps, wait_s / A.steps, nparams * 4,
      #dp:bucket_sizes()))
end
