-- scorch side of the benchmark workloads (see shared/WORKLOADS.md).
--
-- Usage:
--   bin/scorch bench/scorch/workloads.lua --workload W1 --threads 1 [--quick]
--
-- Cases (one process = one case = one JSON line on stdout):
--   W1 W2 W3 W4, W2b (W2 with matmul precision "medium": bfloat16
--   products), W5 (plain inputs), W5g (requires_grad inputs),
--   W6_1024, W6_256 (sgemm via sc.matmul), W8 (FID + precision/recall),
--   W9f (RealNVP step), W9v (VAE step),
--   W10 (WGAN-GP critic + generator step),
--   W7t, W7s (the Fashion-MNIST DDPM example's U-Net: training step,
--   sampling step; weights from build/bench/w7_unet.safetensors)
--
-- Not benchmarks: make-w7-weights writes that file (the U-Net's initial
-- parameters at seed 0; bench/run.py runs it once), and w7-forward --in F
-- --out G is the scorch half of bench/torch/check_w7.py.
--
-- Every definition mirrors bench/torch/workloads.py line for line: same
-- shapes, same math, same init distributions.  Change both or neither.

local sc = require "scorch"

---------------------------------------------------------------------------
-- arguments
---------------------------------------------------------------------------
local argv = {}
if type(arg) == "table" and #arg > 0 then
  for i = 1, #arg do argv[i] = arg[i] end
else
  argv = { ... }
end

local A = { threads = 1, quick = false }
do
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--workload" then A.workload = argv[i + 1]; i = i + 2
    elseif a == "--threads" then A.threads = math.tointeger(tonumber(argv[i + 1])); i = i + 2
    elseif a == "--quick" then A.quick = true; i = i + 1
    elseif a == "--min-iters" then A.min_iters = math.tointeger(tonumber(argv[i + 1])); i = i + 2
    elseif a == "--min-time" then A.min_time = tonumber(argv[i + 1]); i = i + 2
    elseif a == "--in" then A.input = argv[i + 1]; i = i + 2
    elseif a == "--out" then A.output = argv[i + 1]; i = i + 2
    elseif A.workload == nil and not a:match("^%-%-") then A.workload = a; i = i + 1
    else
      io.stderr:write("unknown argument: " .. tostring(a) .. "\n"); os.exit(2)
    end
  end
end
if not A.workload then
  io.stderr:write("usage: workloads.lua --workload W1|W2|W2b|W3|W4|W5|W5g|W6_1024|W6_256|W7t|W7s|W8|W9f|W9v|W10 --threads N [--quick]\n")
  os.exit(2)
end

sc.set_num_threads(A.threads)

---------------------------------------------------------------------------
-- clocks, memory, JSON
---------------------------------------------------------------------------
local now, clock_name
if type(sc.time) == "function" then
  now, clock_name = sc.time, "sc.time"
else
  -- os.clock is *process CPU time*: wrong for wall time with >1 thread.
  now, clock_name = os.clock, "os.clock"
end

local function vm_hwm_kb()
  local f = io.open("/proc/self/status", "r")
  if not f then return nil end
  for line in f:lines() do
    local v = line:match("^VmHWM:%s*(%d+)")
    if v then f:close(); return math.tointeger(tonumber(v)) end
  end
  f:close()
  return nil
end

local function json_value(v)
  local t = type(v)
  if t == "number" then
    if math.type(v) == "integer" then return string.format("%d", v) end
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    return string.format("%.9g", v)
  elseif t == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c)
      if c == '"' then return '\\"' elseif c == "\\" then return "\\\\"
      else return string.format("\\u%04x", c:byte()) end
    end) .. '"'
  elseif t == "boolean" then
    return tostring(v)
  elseif v == nil then
    return "null"
  end
  return '"' .. tostring(v) .. '"'
end

-- ordered object: list of {key, value}
local function json_line(pairs_list)
  local parts = {}
  for _, kv in ipairs(pairs_list) do
    parts[#parts + 1] = json_value(kv[1]) .. ": " .. json_value(kv[2])
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

---------------------------------------------------------------------------
-- timing rules (identical to bench/torch/workloads.py and sgemm_openblas.c)
--   normal: warm-up, then >= 20 iterations AND >= 2 s
--   slow  : (W2, or any workload whose warm-up iteration took >= 1 s)
--           >= 5 iterations OR >= 30 s, whichever comes first
--   --quick: normal >= 3 iterations and >= 0.2 s; slow: 1 iteration
---------------------------------------------------------------------------
local SLOW_WARMUP_S = 1.0

local function timing_rule(slow)
  local n, t, mode
  if A.quick then
    if slow then n, t, mode = 1, 0.0, "or" else n, t, mode = 3, 0.2, "and" end
  else
    if slow then n, t, mode = 5, 30.0, "or" else n, t, mode = 20, 2.0, "and" end
  end
  if A.min_iters then n = A.min_iters end
  if A.min_time then t = A.min_time end
  return n, t, mode
end

-- opts: warmup (function), declared_slow (bool), extra (function(out) -> list of {k, v})
local function run_bench(name, step, opts)
  opts = opts or {}
  collectgarbage(); collectgarbage()
  local w0 = now()
  ;(opts.warmup or step)()
  local wt = now() - w0
  local slow = opts.declared_slow or wt >= SLOW_WARMUP_S
  local n_min, t_min, mode = timing_rule(slow)
  collectgarbage(); collectgarbage()
  local times = {}
  local cpu0 = os.clock()
  local start = now()
  while true do
    local t0 = now()
    step()
    local t1 = now()
    times[#times + 1] = t1 - t0
    local elapsed = t1 - start
    if mode == "and" then
      if #times >= n_min and elapsed >= t_min then break end
    else
      if #times >= n_min or elapsed >= t_min then break end
    end
  end
  local cpu_s = os.clock() - cpu0
  local wall = now() - start
  local srt = {}
  for i, v in ipairs(times) do srt[i] = v end
  table.sort(srt)
  local k = #srt
  local median
  if k % 2 == 1 then median = srt[(k + 1) // 2]
  else median = 0.5 * (srt[k // 2] + srt[k // 2 + 1]) end
  local out = {
    { "workload", name }, { "impl", "scorch" }, { "threads", A.threads },
    { "median_s", median }, { "min_s", srt[1] }, { "iters", k },
    { "peak_rss_kb", vm_hwm_kb() }, { "cpu_s", cpu_s }, { "wall_s", wall },
    { "slow_rule", slow and true or false }, { "warmup_s", wt }, { "clock", clock_name },
  }
  if opts.extra then
    for _, kv in ipairs(opts.extra(median, srt[1])) do out[#out + 1] = kv end
  end
  io.stdout:write(json_line(out), "\n")
  io.stdout:flush()
end

---------------------------------------------------------------------------
-- shared pieces
---------------------------------------------------------------------------
-- the models and steps of W1, W3, W7t and W9v, the 8-Gaussians data and
-- log σ ~ U[log 0.01, log 1), shared with bench/dist/w3_dist.lua and the
-- profiles beside this file
local HERE = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local steps = dofile(HERE .. "steps.lua")
local mlp, gauss8 = steps.mlp, steps.gauss8

---------------------------------------------------------------------------
-- W1 mlp2d_train_step
---------------------------------------------------------------------------
local function w1()
  sc.manual_seed(0)
  local model = mlp(3, 2)
  local opt = sc.optim.Adam(model:parameters(), { lr = 1e-3 })
  local step = steps.w1(model, opt, 1024)

  run_bench("W1", step)
end

---------------------------------------------------------------------------
-- W2 mlp2d_sample_ddpm
---------------------------------------------------------------------------
local W2_T = 1000

-- β linear 1e-4…0.02, computed in double precision on the host
local function ddpm_schedule(T)
  local betas, alphas, abar = {}, {}, {}
  local prod = 1.0
  for i = 0, T - 1 do
    local b = 1e-4 + (0.02 - 1e-4) * i / (T - 1)
    prod = prod * (1.0 - b)
    betas[i + 1] = b; alphas[i + 1] = 1.0 - b; abar[i + 1] = prod
  end
  return betas, alphas, abar
end

-- bf16: W2b, the same sampler with matmul precision "medium" (the network's
-- products in bfloat16, sc.set_matmul_precision), against PyTorch's own
-- bfloat16 autocast on the CPU
local function w2(bf16)
  if bf16 then sc.set_matmul_precision("medium") end
  sc.manual_seed(0)
  local n = 10000
  local T = W2_T
  local model = mlp(3, 2)
  local betas, alphas, abar = ddpm_schedule(T)

  local function sample(steps)
    return sc.no_grad(function()
      local x = sc.randn(n, 2)
      for t = T, T - steps + 1, -1 do          -- t = T … 1
        local b = betas[t]
        local c_eps = b / math.sqrt(1.0 - abar[t])
        local inv_sqrt_a = 1.0 / math.sqrt(alphas[t])
        local tt = sc.full({ n, 1 }, t / T)
        local eps = model(sc.cat({ x, tt }, 2))
        x = (x - eps * c_eps) * inv_sqrt_a
        if t > 1 then
          x = x + sc.randn(n, 2) * math.sqrt(b)
        end
      end
      return x
    end)
  end

  -- warm-up: the first 100 of the 1000 steps (a full iteration is ~15 s)
  run_bench(bf16 and "W2b" or "W2", function() return sample(T) end,
            { warmup = function() return sample(100) end, declared_slow = true })
end

---------------------------------------------------------------------------
-- W3 unet28_train_step
---------------------------------------------------------------------------
-- the network, shared with bench/dist/w3_dist.lua
local UNet28 = dofile(HERE .. "unet28.lua")

local function w3()
  sc.manual_seed(0)
  local B = 64
  local model = UNet28()
  local opt = sc.optim.Adam(model.parameters(), { lr = 2e-4 })
  local x0 = sc.rand(B, 1, 28, 28) * 2.0 - 1.0      -- fixed, U[-1, 1)
  run_bench("W3", steps.w3(model, opt, x0))
end

---------------------------------------------------------------------------
-- W4 ssm_mlp2d_step (sliced score matching, double backward)
---------------------------------------------------------------------------
local function w4()
  sc.manual_seed(0)
  local n = 1024
  local model = mlp(2, 2)
  local opt = sc.optim.Adam(model:parameters(), { lr = 1e-3 })

  local function step()
    local x = gauss8(n):requires_grad(true)
    local v = sc.randn(n, 2)
    local s = model(x)
    local sv = (s * v):sum(2, true)
    local g = sc.grad({ sv:sum() }, { x }, { create_graph = true })[1]
    local loss = ((g * v):sum(2, true) + sv * sv * 0.5):mean()
    opt:zero_grad()
    loss:backward()
    opt:step()
  end

  run_bench("W4", step)
end

---------------------------------------------------------------------------
-- W5 small_ops_overhead: one iteration = 10,000 chains
---------------------------------------------------------------------------
local W5_CHAINS = 10000

local function w5(requires_grad)
  sc.manual_seed(0)
  local a = sc.randn(16)
  local b = sc.randn(16)
  local c = sc.randn(16)
  if requires_grad then
    a:requires_grad(true); b:requires_grad(true); c:requires_grad(true)
  end

  local function step()
    local y
    for _ = 1, W5_CHAINS do
      y = (a * b + c):tanh()
    end
    return y
  end

  run_bench(requires_grad and "W5g" or "W5", step, {
    extra = function(median, min)
      return { { "chains_per_iter", W5_CHAINS },
               { "us_per_chain_min", min / W5_CHAINS * 1e6 },
               { "us_per_chain_median", median / W5_CHAINS * 1e6 } }
    end,
  })
end

---------------------------------------------------------------------------
-- W6 sgemm
---------------------------------------------------------------------------
local function w6(n)
  sc.manual_seed(0)
  local a = sc.randn(n, n)
  local b = sc.randn(n, n)

  local function step()
    return sc.matmul(a, b)
  end

  run_bench("W6_" .. n, step, {
    extra = function(median, min)
      return { { "n", n }, { "gflops", 2.0 * n ^ 3 / median / 1e9 },
               { "gflops_best", 2.0 * n ^ 3 / min / 1e9 } }
    end,
  })
end

---------------------------------------------------------------------------
-- W8 eval_fid_pr: FID + improved precision/recall, 10,000 vs 10,000 x 256
-- (features from build/bench/w8_features.safetensors, written once by
-- bench/torch/workloads.py --workload make-w8-data; bench/run.py does it)
---------------------------------------------------------------------------
local function w8()
  sc.manual_seed(0)
  local t = assert(sc.load("build/bench/w8_features.safetensors"))
  local real, fake = t.real, t.fake

  local function step()
    local sa = sc.metrics.feature_stats(real)
    local sb = sc.metrics.feature_stats(fake)
    local f = sc.metrics.fid(sa, sb)
    local pr = sc.metrics.precision_recall(real, fake, { k = 3, realism = false })
    return f, pr.precision, pr.recall
  end

  run_bench("W8", step, {
    extra = function()
      local f, p, r = step()
      return { { "fid", f }, { "precision", p }, { "recall", r } }
    end,
  })
end

---------------------------------------------------------------------------
-- W10 wgan_gp_step: one WGAN-GP critic step (penalty's double backward) and
-- one generator step of the DCGAN pair at batch 64; the library's models
-- (sc.models.DCGenerator / DCCritic are W10's G and D) and penalty
---------------------------------------------------------------------------
local function w10()
  sc.manual_seed(0)
  local B = 64
  local G = sc.models.DCGenerator { z_dim = 64, channels = 64 }
  local D = sc.models.DCCritic { channels = 32 }
  local gan = sc.losses.gan
  local opt_g = sc.optim.Adam(G:parameters(), { lr = 1e-4, betas = { 0.0, 0.9 } })
  local opt_d = sc.optim.Adam(D:parameters(), { lr = 1e-4, betas = { 0.0, 0.9 } })
  local real = sc.rand(B, 1, 28, 28) * 2.0 - 1.0     -- fixed, U[-1, 1)

  local function step()
    -- critic: D(fake) - D(real) + 10 (||grad D(x_hat)|| - 1)^2
    local fake = sc.no_grad(function() return G(sc.randn(B, 64)) end)
    local loss_d = gan.wgan_d(D(real), D(fake)) + gan.gradient_penalty(D, real, fake, { weight = 10 })
    opt_d:zero_grad()
    loss_d:backward()
    opt_d:step()
    -- generator: -D(G(z))
    local loss_g = gan.wgan_g(D(G(sc.randn(B, 64))))
    opt_g:zero_grad()
    loss_g:backward()
    opt_g:step()
  end

  run_bench("W10", step)
end

---------------------------------------------------------------------------
-- W9 likelihood_steps.  W9f: RealNVP on 8gauss, batch 1024, 8 affine
-- couplings with alternating half/half masks, each coupling's (log-scale,
-- shift) from one mlp(1, 2) with tanh on the log-scale, no normalisation
-- layers; loss = −mean log p(x); Adam lr 1e-3.  W9v: VAE on Fashion-MNIST,
-- batch 128 (the first 8192 training images, batches taken in order,
-- cycling): encoder 784→512→256→(μ, log σ²) of 32, decoder 32→256→512→784
-- logits, ReLU, Bernoulli likelihood on intensities in [0, 1], analytic KL;
-- loss = −ELBO (mean over the batch); Adam lr 1e-3.  Both use the library
-- (sc.models.RealNVP, sc.models.VAE, sc.losses.elbo).
---------------------------------------------------------------------------
local function w9f()
  sc.manual_seed(0)
  local n = 1024
  local flow = sc.models.RealNVP { dim = 2, couplings = 8, norm = "none",
    hidden = { 128, 128, 128 }, act = "silu" }
  local opt = sc.optim.Adam(flow:parameters(), { lr = 1e-3 })

  local function step()
    local x = gauss8(n)
    local loss = -flow:log_prob(x):mean()
    opt:zero_grad()
    loss:backward()
    opt:step()
  end

  run_bench("W9f", step)
end

local function w9v()
  sc.manual_seed(0)
  local step = steps.w9v(steps.w9v_setup())
  run_bench("W9v", step)
end

---------------------------------------------------------------------------
-- W7 unet_fmnist_ddpm: the U-Net of examples/ddpm_fashion_mnist.lua's full
-- preset (channels 24, mults 1,2,2, one block per level, no attention,
-- sinusoidal t embedding), its weights read from one safetensors file that
-- bench/torch/workloads.py loads too.  W7t: one training step at batch 64
-- (Ho et al. 2020, Algorithm 1: t ~ U{1..T}, ε-loss, Adam lr 2e-4).  W7s:
-- one ancestral step (Algorithm 2) at batch 250 and t = 500, no gradients.
---------------------------------------------------------------------------
local W7_FILE = "build/bench/w7_unet.safetensors"
local W7_T, W7S_STEP = 1000, 500

local w7_net = steps.w7_net

local function w7_load()
  local sd, err = sc.load(W7_FILE)
  if not sd then
    io.stderr:write(("%s: %s (bench/run.py writes it; or --workload make-w7-weights)\n")
      :format(W7_FILE, tostring(err)))
    os.exit(1)
  end
  return w7_net():load_state_dict(sd)
end

-- the initial parameters at seed 0, written once for both sides
local function make_w7_weights()
  sc.manual_seed(0)
  assert(sc.util.mkdir("build/bench"))
  local tmp = W7_FILE .. ".tmp"
  assert(sc.save(tmp, w7_net():state_dict(), { model = "scorch.models.UNet", channels = "24",
    mults = "1,2,2", blocks = "1", seed = "0" }))
  assert(os.rename(tmp, W7_FILE))
  print(W7_FILE)
end

local function w7t()
  sc.manual_seed(0)
  local B = 64
  local net = w7_load()
  local sched = sc.schedules.ddpm { kind = "linear", T = W7_T }
  local opt = sc.optim.Adam(net:parameters(), { lr = 2e-4 })
  local x0 = sc.rand(B, 1, 28, 28) * 2.0 - 1.0      -- fixed, U[-1, 1)

  run_bench("W7t", steps.w7t(net, opt, sched, x0))
end

local function w7s()
  sc.manual_seed(0)
  local B, t = 250, W7S_STEP
  local net = w7_load():eval()
  local sched = sc.schedules.ddpm { kind = "linear", T = W7_T }
  local beta, ab = sched.betas[t], sched.alpha_bars[t]
  local c_eps, inv_sqrt_a, sigma = beta / math.sqrt(1.0 - ab), 1.0 / math.sqrt(1.0 - beta), math.sqrt(beta)
  local x = sc.randn(B, 1, 28, 28)                       -- fixed x_t

  -- x_{t-1} = (x_t − β_t/√(1 − ᾱ_t) ε_θ(x_t, t))/√α_t + √β_t z
  local function step()
    return sc.no_grad(function()
      local eps = net(x, t)
      return (x - eps * c_eps) * inv_sqrt_a + sc.randn(B, 1, 28, 28) * sigma
    end)
  end

  run_bench("W7s", step)
end

-- bench/torch/check_w7.py: the network on its inputs (x, t per example;
-- xs at the shared step ts), the ε-loss's parameter gradients, all saved
local function w7_forward()
  local inp = assert(sc.load((assert(A.input, "--in FILE"))))
  local net = w7_load()
  local out = net(inp.x, inp.t)
  local loss = (out - inp.eps):square():mean()
  loss:backward()
  local res = { out = out:detach(), loss = loss:detach():reshape(1) }
  for _, nt in ipairs(net:named_parameters()) do res["grad." .. nt[1]] = nt[2].grad end
  res.out_shared = sc.no_grad(function() return net(inp.xs, inp.ts:item()) end)
  assert(sc.save((assert(A.output, "--out FILE")), res))
end

local CASES = {
  W1 = w1, W2 = function() w2(false) end, W2b = function() w2(true) end, W3 = w3, W4 = w4,
  W5 = function() w5(false) end,
  W5g = function() w5(true) end,
  W6_1024 = function() w6(1024) end,
  W6_256 = function() w6(256) end,
  W8 = w8,
  W9f = w9f, W9v = w9v,
  W10 = w10,
  W7t = w7t, W7s = w7s,
  ["make-w7-weights"] = make_w7_weights,
  ["w7-forward"] = w7_forward,
}

local f = CASES[A.workload]
if not f then
  io.stderr:write("unknown workload " .. tostring(A.workload) ..
                  "; known: W1 W2 W3 W4 W5 W5g W6_1024 W6_256 W7t W7s W8 W9f W9v W10\n")
  os.exit(2)
end
f()
