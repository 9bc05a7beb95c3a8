-- Where a W9v step's time goes (bench/scorch/workloads.lua's W9v step,
-- timed part by part): the negative ELBO (forward), zero_grad, backward
-- and Adam.  Not a paired workload: a profile of scorch alone.
--
--   bin/scorch bench/scorch/w9v_parts.lua [--steps 1000] [--threads 1]
--
-- Prints milliseconds per step for each part and their sum, after 50
-- warm-up steps.
local sc = require "scorch"

local HERE = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local A = dofile(HERE .. "args.lua")({ steps = 1000, threads = 1 }, "w9v_parts.lua")
sc.set_num_threads(A.threads)
sc.manual_seed(0)
local steps = dofile(HERE .. "steps.lua")
local IMAGES, BATCH = steps.W9V_IMAGES, steps.W9V_BATCH
local images, vae, opt = steps.w9v_setup()
local T = { fwd = 0, zero = 0, bwd = 0, adam = 0 }
local i = 0
local function step(acc)
  local x = images:narrow(1, i * BATCH + 1, BATCH)
  i = (i + 1) % (IMAGES // BATCH)
  local t0 = sc.time()
  local loss = sc.losses.elbo(vae, x)
  local t1 = sc.time()
  opt:zero_grad()
  local t2 = sc.time()
  loss:backward()
  local t3 = sc.time()
  opt:step()
  local t4 = sc.time()
  if acc then
    T.fwd, T.zero = T.fwd + t1 - t0, T.zero + t2 - t1
    T.bwd, T.adam = T.bwd + t3 - t2, T.adam + t4 - t3
  end
end
for _ = 1, 50 do step(false) end
for _ = 1, A.steps do step(true) end
local ms = function(v) return v / A.steps * 1e3 end
print(("W9v, %d thread(s), ms per step: forward %.3f  zero_grad %.3f  backward %.3f  Adam %.3f  sum %.3f")
  :format(A.threads, ms(T.fwd), ms(T.zero), ms(T.bwd), ms(T.adam), ms(T.fwd + T.zero + T.bwd + T.adam)))
