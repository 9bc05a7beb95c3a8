-- Sampling a 2-D DDPM in bfloat16: does matmul precision "medium" change
-- what the sampler draws?
--
-- Trains (or resumes) the DDPM of configs/ddpm_2d.lua on eight Gaussians,
-- then draws the same samples twice per seed, once with float32 products
-- (sc.set_matmul_precision "highest") and once with bfloat16 ones
-- ("medium": AVX512-BF16, smallgemm.c), from the same x_T and the same
-- noise.  Prints each seed's TV of the mode fractions, modes covered and
-- MMD² against held-out data, then the means, the seed-to-seed spread of
-- float32 sampling (the noise any change is judged against) and the paired
-- differences, and the sampling times.  Writes out/mixed_precision_2d/
-- samples.png (seed 1 at both precisions beside the data).
--
-- On a CPU without AVX512-BF16 "medium" gives the float32 numbers, and the
-- script says so.
--
--   scorch examples/mixed_precision_2d.lua [--quick] [--seeds 5] [--threads 1]
local sc = require "scorch"
local run = require "scorch.run"
local util = sc.util

local defaults = { steps = 6000, width = 128, n = 10000, seeds = 5, threads = 1, seed = 0,
  out = "out/mixed_precision_2d" }
local opts = util.example_args(arg, { defaults = defaults,
  -- fewer training steps and seeds: about two minutes on one core
  presets = { quick = { steps = 1500, seeds = 3, n = 4000 } },
  usage = "usage: scorch examples/mixed_precision_2d.lua [options]\n" ..
    "A 2-D DDPM sampled with float32 and with bfloat16 products, compared.\n" })
local int = math.tointeger
sc.set_num_threads(int(opts.threads))

-- ---- the model: configs/ddpm_2d.lua's run, shorter ----------------------------------------------
local job = run.example.train { script = "examples/mixed_precision_2d.lua", config = "ddpm_2d",
  out = opts.out .. "/run", fields = { seed = int(opts.seed), threads = int(opts.threads), steps = int(opts.steps),
    model = { width = int(opts.width) }, sample = { every = 0 } } }
local cfg = job.cfg
local net, sched, data = job.net, job.fam.process, job.data.density
job.ema:copy_to(job.params)
net:eval()
local eps = sc.param.wrap(net, { kind = "eps", process = sched })

-- ---- the same draws at both precisions ----------------------------------------------------------
local n = int(opts.n)
local real = data:sample(n, { generator = sc.Generator(int(opts.seed) + 1000) })
local m = math.min(n, 4000)
local function stats(x)
  local rep = sc.metrics.mode_report(x, data)
  local mmd = sc.metrics.mmd(x:narrow(1, 1, m), real:narrow(1, 1, m), { bandwidth = 0.1 })
  return { tv = rep.tv, covered = rep.covered, mmd = mmd }
end
local function draw(precision, seed)
  local before = sc.set_matmul_precision(precision)
  local g = sc.Generator(seed)
  local t0 = sc.time()
  local x = sc.samplers.ddpm(eps, sc.samplers.prior(sched, { n, 2 }, { generator = g }), sched,
    { generator = g })
  local secs = sc.time() - t0
  sc.set_matmul_precision(before)
  return x, secs
end

-- one untimed network call at each precision first (the pool's first allocations)
for _, p in ipairs({ "highest", "medium" }) do
  local before = sc.set_matmul_precision(p)
  sc.no_grad(function() return eps:eps(sc.randn(n, 2), 500, sched) end)
  sc.set_matmul_precision(before)
end

print(("\nDDPM, residual MLP %d×%d, %d ancestral steps, %d samples per draw, %d thread(s); AVX512-BF16: %s")
  :format(cfg.model.blocks, cfg.model.width, cfg.objective.T, n, sc.get_num_threads(),
    sc.core.cpu_has_bf16() and "yes" or "no (\"medium\" is float32 here)"))
print(("%-5s  %-9s %8s %6s %10s %8s"):format("seed", "precision", "TV", "modes", "MMD²", "time"))
local rows, first = { highest = {}, medium = {} }, {}
for s = 1, int(opts.seeds) do
  for _, p in ipairs({ "highest", "medium" }) do
    local x, secs = draw(p, int(opts.seed) + s)
    local r = stats(x)
    r.secs = secs
    rows[p][s] = r
    if s == 1 then first[p] = x end
    print(("%-5d  %-9s %8.4f %3d/%-2d %10.2e %7.2fs"):format(s, p, r.tv, r.covered, data.K, r.mmd, secs))
  end
end

local function mean_sd(list, key)
  local k, sum, sq = #list, 0, 0
  for _, r in ipairs(list) do sum = sum + r[key] end
  local mu = sum / k
  for _, r in ipairs(list) do sq = sq + (r[key] - mu) ^ 2 end
  return mu, k > 1 and math.sqrt(sq / (k - 1)) or 0
end
print(("\n%-6s %22s %22s %22s %s"):format("", "float32 mean (sd)", "bfloat16 mean (sd)",
  "paired diff mean (sd)", "|diff| / (sd/sqrt(seeds))"))
for _, key in ipairs({ "tv", "mmd", "secs" }) do
  local a, sa = mean_sd(rows.highest, key)
  local b, sb = mean_sd(rows.medium, key)
  local d = {}
  for s, r in ipairs(rows.medium) do d[s] = { v = r[key] - rows.highest[s][key] } end
  local dm, ds = mean_sd(d, "v")
  local z = key ~= "secs" and sa > 0 and ("%.2f"):format(math.abs(b - a) / (sa / math.sqrt(#d))) or "-"
  print(("%-6s %12.4g (%8.2g) %12.4g (%8.2g) %12.3g (%8.2g) %s"):format(key, a, sa, b, sb, dm, ds, z))
end

util.mkdir(opts.out)
local k = math.min(2000, n)
sc.viz.sample_panels(opts.out .. "/samples.png", {
  { title = "data", x = real:narrow(1, 1, k) },
  { title = "float32 products", x = first.highest:narrow(1, 1, k) },
  { title = "bfloat16 products", x = first.medium:narrow(1, 1, k) },
}, { density = data, size = 320, radius = 1 })
print(("\nwrote %s/samples.png"):format(opts.out))
