-- Not a paired workload: what reading operands in place (gemm512.c) and
-- orienting the Winograd weight gradient's products (wino.c) save, timed
-- in one process with both switched off and on in turn, so the host's
-- slow and fast phases fall on both alike.  Off is the packing every
-- product did before (csrc/core/gemm512.c's g512_run; wino.c's dU = Z V^T).
--
--   bin/scorch bench/scorch/inplace_ab.lua [--rounds 8] [--steps 4] [--threads 1]
--
-- Runs W1's step (its network and loss), W3's and W7t's training steps (bench/scorch/steps.lua, W7t's net
-- from random weights: the step's time does not depend on them) and W9v's
-- VAE step, each setting for `steps` steps per round; prints the median
-- and fastest round of each, in ms per step, and their ratio.
local sc = require "scorch"
local core = require "scorch.core"

local A = { rounds = 8, steps = 4, threads = 1 }
do
  local i = 1
  while i <= #arg do
    local k = arg[i]:match("^%-%-(%w+)$")
    local v = k and A[k] ~= nil and math.tointeger(tonumber(arg[i + 1]))
    if not v or v < 1 then
      io.stderr:write("usage: inplace_ab.lua [--rounds N] [--steps N] [--threads N] (bad: " .. arg[i] .. ")\n")
      os.exit(2)
    end
    A[k] = v
    i = i + 2
  end
end
sc.set_num_threads(A.threads)
local HERE = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local steps = dofile(HERE .. "steps.lua")
local UNet28 = dofile(HERE .. "unet28.lua")

local function set(on)
  core._set_gemm_inplace(on)
  core._set_wino_wgrad_transposed(on and -1 or 0)
end

local cases = {}

cases[#cases + 1] = { "W1", function()
  sc.manual_seed(0)
  local nn = sc.nn
  local model = nn.Sequential { nn.Linear(3, 128), nn.SiLU(), nn.Linear(128, 128), nn.SiLU(),
    nn.Linear(128, 128), nn.SiLU(), nn.Linear(128, 2) }
  local opt = sc.optim.Adam(model:parameters(), { lr = 1e-3 })
  local n = 1024
  return function()
    local k = sc.randint(0, 8, { n }):float() * (2 * math.pi / 8)
    local x0 = sc.stack({ k:cos() * 2.0, k:sin() * 2.0 }, 2) + sc.randn(n, 2) * 0.05
    local ls = steps.log_sigma(n)
    local sig = ls:exp()
    local z = sc.randn(n, 2)
    local s = model(sc.cat({ x0 + sig * z, ls }, 2))
    local r = s + z / sig
    local loss = ((r * r):sum(2, true) * (sig * sig * 0.5)):mean()
    opt:zero_grad()
    loss:backward()
    opt:step()
  end
end }

cases[#cases + 1] = { "W3", function()
  sc.manual_seed(0)
  local model = UNet28()
  local opt = sc.optim.Adam(model.parameters(), { lr = 2e-4 })
  return steps.w3(model, opt, sc.rand(64, 1, 28, 28) * 2.0 - 1.0)
end }

cases[#cases + 1] = { "W7t", function()
  sc.manual_seed(0)
  local net = sc.models.UNet { channels = 24, mults = { 1, 2, 2 }, attention = { false, false, false },
    blocks = 1, mid_attention = false, out = "eps", cond = "t" }
  local opt = sc.optim.Adam(net:parameters(), { lr = 2e-4 })
  local sched = sc.schedules.ddpm { kind = "linear", T = 1000 }
  return steps.w7t(net, opt, sched, sc.rand(64, 1, 28, 28) * 2.0 - 1.0)
end }

cases[#cases + 1] = { "W9v", function()
  sc.manual_seed(0)
  local images = sc.data.fashion_mnist("train", { limit = 8192 }):reshape(8192, 784)
  local vae = sc.models.VAE { x_dim = 784, latent = 32, hidden = { 512, 256 }, act = "relu",
    likelihood = "bernoulli" }
  local opt = sc.optim.Adam(vae:parameters(), { lr = 1e-3 })
  local i = 0
  return function()
    local x = images:narrow(1, i * 128 + 1, 128)
    i = (i + 1) % 64
    local loss = sc.losses.elbo(vae, x)
    opt:zero_grad()
    loss:backward()
    opt:step()
  end
end }

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  return n % 2 == 1 and s[(n + 1) // 2] or (s[n // 2] + s[n // 2 + 1]) / 2
end

print(("%d thread(s), %d rounds of %d steps per setting; ms per step"):format(A.threads, A.rounds, A.steps))
print(("%-5s %17s %17s %8s"):format("", "packed: median", "in place: median", "ratio"))
for _, c in ipairs(cases) do
  local step = c[2]()
  local reps = (c[1] == "W9v" or c[1] == "W1") and A.steps * 25 or A.steps
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
