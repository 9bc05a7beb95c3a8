-- Not a paired workload: what reading operands in place (gemm512.c) and
-- orienting the Winograd weight gradient's products (wino.c) save, timed
-- in one process with both switched off and on in turn, so the host's
-- slow and fast phases fall on both alike.  Off is the packing every
-- product did before (csrc/core/gemm512.c's g512_run; wino.c's dU = Z V^T).
-- With --tile 1, the switch is Winograd's tiling instead: off is F(2x2,
-- 3x3) everywhere, on is wino.c's rule (F(4x2, 3x3) where it is cheaper).
-- With --thin 1, the switch is thinconv.c: off, 3x3 convolutions with one
-- channel on a side (W3's first and last, W7t's too) take conv.c's other
-- paths; on, thinconv.c's direct kernels.
--
--   bin/scorch bench/scorch/inplace_ab.lua [--rounds 8] [--steps 4] [--threads 1] [--tile 1] [--thin 1]
--
-- Runs the steps of W1, W3, W7t and W9v (bench/scorch/steps.lua; W7t's net
-- from random weights: the step's time does not depend on them), each
-- setting for `steps` steps per round (25 times as many for the small W1
-- and W9v); prints the median and fastest round of each, in ms per step,
-- and their ratio.
local sc = require "scorch"
local core = require "scorch.core"

local HERE = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local A = dofile(HERE .. "args.lua")({ rounds = 8, steps = 4, threads = 1, tile = 0, thin = 0 }, "inplace_ab.lua")
sc.set_num_threads(A.threads)
local steps = dofile(HERE .. "steps.lua")
local UNet28 = dofile(HERE .. "unet28.lua")

local function set(on)
  if A.thin > 0 then
    core._set_thin_conv(on)
  elseif A.tile > 0 then
    core._set_wino_tile(on and 0 or 2)
  else
    core._set_gemm_inplace(on)
    core._set_wino_wgrad_transposed(on and -1 or 0)
  end
end

-- name, steps per round as a multiple of A.steps, and the step's maker
local cases = {
  { "W1", 25, function()
    local model = steps.mlp(3, 2)
    return steps.w1(model, sc.optim.Adam(model:parameters(), { lr = 1e-3 }), 1024)
  end },
  { "W3", 1, function()
    local model = UNet28()
    return steps.w3(model, sc.optim.Adam(model.parameters(), { lr = 2e-4 }),
      sc.rand(64, 1, 28, 28) * 2.0 - 1.0)
  end },
  { "W7t", 1, function()
    local net = steps.w7_net()
    return steps.w7t(net, sc.optim.Adam(net:parameters(), { lr = 2e-4 }),
      sc.schedules.ddpm { kind = "linear", T = 1000 }, sc.rand(64, 1, 28, 28) * 2.0 - 1.0)
  end },
  { "W9v", 25, function() return steps.w9v(steps.w9v_setup()) end },
}

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  return n % 2 == 1 and s[(n + 1) // 2] or (s[n // 2] + s[n // 2 + 1]) / 2
end

print(("%d thread(s), %d rounds of %d steps per setting; ms per step"):format(A.threads, A.rounds, A.steps))
local off, on = "packed", "in place"
if A.thin > 0 then off, on = "conv.c", "thinconv" elseif A.tile > 0 then off, on = "F(2x2)", "rule" end
print(("%-5s %17s %17s %8s"):format("", off .. ": median", on .. ": median", "ratio"))
for _, c in ipairs(cases) do
  sc.manual_seed(0)
  local step = c[3]()
  local reps = A.steps * c[2]
  for _ = 1, 2 do set(false); step(); set(true); step() end
  local T = { [false] = {}, [true] = {} }
  for _ = 1, A.rounds do
    for _, on in ipairs({ false, true }) do
      set(on)
      local t0 = sc.time()
      for _ = 1, reps do step() end
      T[on][#T[on] + 1] = (sc.time() - t0) / reps * 1e3
    end
  end
  set(true)
  local m0, m1 = median(T[false]), median(T[true])
  print(("%-5s %8.2f (min %6.2f) %8.2f (min %6.2f) %8.3f"):format(c[1], m0, math.min(table.unpack(T[false])),
    m1, math.min(table.unpack(T[true])), m1 / m0))
end
