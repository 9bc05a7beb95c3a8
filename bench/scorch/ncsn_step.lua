-- One training step of examples/ncsn_shapes.lua's quick network, timed on
-- its own (not a PyTorch-paired workload): NCSN, 16 channels, DSM over 50
-- geometric levels, Adam and EMA, batches of 32 shapes.  Used to measure
-- the thread pool's effect on small image kernels.
--
--   bin/scorch bench/scorch/ncsn_step.lua [threads [steps [channels]]] [--json]
--
-- With --json the last line is one JSON object (median and minimum seconds
-- per step, as bench/run.py reads them); bench/run.py --beside-busy runs it.
local sc = require "scorch"
local json = false
for i = #arg, 1, -1 do
  if arg[i] == "--json" then json = true; table.remove(arg, i) end
end
local nthreads = tonumber(arg[1] or "1")
local steps = tonumber(arg[2] or "100")
sc.set_num_threads(nthreads)
local gen = sc.Generator(0)
local pool01 = sc.data.shapes { n = 2000, weights = {0.4,0.3,0.2,0.1}, generator = gen }
local loader = sc.data.image_loader(pool01, { batch_size = 32, shuffle = true, generator = gen,
  drop_last = true }):forever()
local sigmas = sc.schedules.geometric_sigmas(39, 0.02, 50)
local net = sc.models.NCSN { channels = tonumber(arg[3] or "16"), blocks = 1, generator = gen }
local function score(x, sigma) local n = x:size(1); return net(x:view(n, 1, 28, 28), sigma):view(n, 784) end
local opt = sc.optim.Adam(net, { lr = 2e-3 })
local ema = sc.optim.EMA(net, { decay = 0.99 })
local function step()
  local x = loader()
  local loss = sc.losses.dsm(score, x:view(x:size(1), -1), { sigmas = sigmas, generator = gen })
  opt:zero_grad(); loss:backward(); opt:step(); ema:update()
  return loss:item()
end
for _ = 1, 10 do step() end
local times = {}
local t0 = sc.time()
for i = 1, steps do
  local t = sc.time()
  step()
  times[i] = sc.time() - t
end
local dt = sc.time() - t0
table.sort(times)
print(("%d threads: %.2f ms/step, %.2f steps/s"):format(nthreads, dt / steps * 1000, steps / dt))
if json then
  -- (builds before the pool's load check have no pool_stats)
  local st = sc.core.pool_stats and sc.core.pool_stats() or { contended = "null", switches = -1 }
  print(('{"workload": "NCSN", "impl": "scorch", "threads": %d, "median_s": %.9g, "min_s": %.9g, '
    .. '"mean_s": %.9g, "iters": %d, "pool_contended": %s, "pool_switches": %d}'):format(
    nthreads, times[(#times + 1) // 2], times[1], dt / steps, steps, tostring(st.contended),
    st.switches))
end
