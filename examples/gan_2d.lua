-- GANs on 2-D data: the minimax GAN and the non-saturating GAN (Goodfellow
-- et al. 2014), the WGAN with weight clipping (Arjovsky et al. 2017) and
-- WGAN-GP (Gulrajani et al. 2017), each trained on 8 Gaussians and on the
-- imbalanced 0.8/0.2 two-mode mixture.  It shows the mode-collapse picture
-- (modes covered and the mass of each mode against training steps), the
-- oscillation picture (both losses against steps), samples over the true
-- density, and final TV and MMD² against the real-vs-real baseline.
--
--   bin/scorch examples/gan_2d.lua --quick        # 2,500 steps each: 563 s at 1 thread (loaded machine)
--   bin/scorch examples/gan_2d.lua                # the full run
--   bin/scorch examples/gan_2d.lua --data eight_gaussians --losses wgan_gp,ns
--
-- Options: --data (eight_gaussians, two_gaussians or both), --losses (comma
-- list of minimax, ns, wgan, wgan_gp), --steps, --batch, --eval-every,
-- --samples, --seed, --threads, --out DIR (default out/gan_2d).
--
-- Each training is a run of the scorch.run runtime (configs/gan_2d.lua
-- with these options over it) in OUT/run-DATA-LOSS-KEY, KEY 8 hex digits
-- naming the training options: config.lua, metrics.jsonl (both losses,
-- and the modes covered and each mode's mass at every evaluation),
-- checkpoints holding both optimisers, a Ctrl-C that checkpoints before it
-- exits.  Running the script again with the same options resumes the runs
-- (finished ones go straight to the report); other options train in
-- folders of their own.
local sc = require "scorch"
local runtime = require "scorch.run"
local util = sc.util

local defaults = {
  data = "both", losses = "minimax,ns,wgan,wgan_gp", out = "out/gan_2d", quick = false, seed = 0,
  threads = 0, steps = 0, batch = 256, eval_every = 0, samples = 5000,
}
local opts = util.parse_args(arg, defaults, "usage: scorch examples/gan_2d.lua [options]\n")
if opts.threads > 0 then sc.set_num_threads(math.tointeger(opts.threads)) end
local steps = math.tointeger(opts.steps ~= 0 and opts.steps or (opts.quick and 2500 or 20000))
local eval_every = math.tointeger(opts.eval_every ~= 0 and opts.eval_every or math.max(steps // 25, 1))
local batch, n_samples = math.tointeger(opts.batch), math.tointeger(opts.samples)
assert(util.mkdir(opts.out))
local function out(name) return opts.out .. "/" .. name end

local datasets = opts.data == "both" and { "eight_gaussians", "two_gaussians" } or { opts.data }
local kinds = {}
for k in tostring(opts.losses):gmatch("[^,]+") do kinds[#kinds + 1] = k end

-- The papers' optimisers: Adam with β₁ = 0.5 for the GAN losses (Radford et
-- al. 2016), RMSProp for the clipped WGAN (Arjovsky et al. 2017, lr raised
-- from 5e-5 for 2-D; clip 0.05), Adam with β = (0, 0.9) and n_critic = 5 for
-- WGAN-GP; every one at a constant learning rate, an EMA (0.999) of the
-- weights for the samples.
local optimisers = {
  wgan = { lr = 3e-4 },
  wgan_gp = { lr = 1e-4, beta1 = 0.0, beta2 = 0.9 },
  minimax = { lr = 2e-4, beta1 = 0.5, beta2 = 0.999 },
  ns = { lr = 2e-4, beta1 = 0.5, beta2 = 0.999 },
}

local function gcd(a, b)
  while b ~= 0 do a, b = b, a % b end
  return a
end

-- The generator's samples from the run's EMA weights, at fixed noise z.
local function ema_samples(job, z)
  return job.ema:with_average(job.params, function() return sc.no_grad(function() return job.net.G(z) end) end)
end

local files, summary = {}, {}
local function save(name, path)
  if path then files[#files + 1] = path else print("could not write " .. name) end
end

local int = math.tointeger
for _, dname in ipairs(datasets) do
  local data = sc.data.toy(dname)
  local gen = sc.Generator(int(opts.seed))
  -- MMD bandwidth as in ncsn_2d.lua: 0.1 for the narrow modes of 8 Gaussians
  local mmd_h = dname == "two_gaussians" and nil or 0.1
  local real = data:sample(n_samples, { generator = gen })
  local baseline = sc.metrics.mmd_baseline(data, n_samples, { generator = gen, bandwidth = mmd_h, repeats = 2 })
  local panels = {}
  for _, kind in ipairs(kinds) do
    local o = optimisers[kind] or error(("unknown loss %s (minimax, ns, wgan, wgan_gp)"):format(kind))
    -- every eval_every steps (and at the end): the modes covered by 2000 samples of the EMA generator
    -- and each mode's mass, into the metrics log (noise of its own, fixed, so training is untouched)
    local z_eval = sc.randn({ 2000, 2 }, { generator = sc.Generator(int(opts.seed) + 11) })
    local function evaluate(job)
      if job.step % eval_every ~= 0 and job.step ~= steps then return nil end
      local rep = sc.metrics.mode_report(ema_samples(job, z_eval), data)
      local fields = { modes = rep.covered }
      for k, f in ipairs(rep.fractions) do fields["mode_" .. k] = f end
      return fields
    end
    local job = runtime.example.train { script = "examples/gan_2d.lua", config = "gan_2d",
      out = out(("run-%s-%s"):format(dname, kind)), on_log = evaluate,
      fields = {
        seed = int(opts.seed), threads = int(opts.threads), data = { name = dname },
        objective = { loss = kind }, batch = batch, steps = steps,
        optim = { lr = o.lr, beta1 = o.beta1 or 0.9, beta2 = o.beta2 or 0.999, warmup = 0, schedule = "constant" },
        -- a metrics line at every evaluation, and between them
        log = { every = gcd(eval_every, math.max(1, steps // 100)) },
      } }
    local curves = { loss_d = select(2, runtime.example.metric(job, "loss_d")),
      loss_g = select(2, runtime.example.metric(job, "loss_g")) }
    local _, covered = runtime.example.metric(job, "modes")
    local mass = {}
    for k = 1, data.K or 0 do
      local _, m = runtime.example.metric(job, "mode_" .. k)
      mass[("mode %d"):format(k)] = m
    end
    local x = ema_samples(job, sc.randn({ n_samples, 2 }, { generator = sc.Generator(int(opts.seed) + 7) }))
    local rep = sc.metrics.mode_report(x, data)
    local mmd = sc.metrics.mmd(x, real, { bandwidth = mmd_h })
    summary[#summary + 1] = { data = dname, kind = kind, tv = rep.tv, covered = rep.covered, n = rep.n_modes,
      mmd = mmd, baseline = baseline, secs = runtime.example.seconds(job), fractions = rep.fractions }
    panels[#panels + 1] = { title = kind, x = x }
    local tag = dname .. "_" .. kind
    save("losses", sc.viz.loss_curve(out(tag .. "_losses.png"), curves,
      { title = ("%s: both losses, every %d steps"):format(tag, job.cfg.log.every), xlabel = "log line",
        smooth = 0.3 }))
    save("mode mass", sc.viz.loss_curve(out(tag .. "_mode_mass.png"), mass,
      { title = ("%s: mass per mode every %d steps"):format(tag, eval_every), log = false,
        xlabel = "evaluation", ylabel = "fraction of samples", smooth = 1 }))
    save("modes covered", sc.viz.loss_curve(out(tag .. "_modes_covered.png"), covered,
      { title = tag .. ": modes covered", name = "covered", log = false, xlabel = "evaluation", ylabel = "modes",
        smooth = 1 }))
  end
  save("samples", sc.viz.sample_panels(out(dname .. "_samples.png"), panels,
    { density = data, size = 320, radius = 1 }))
end

print(("\n%-16s %-8s %6s %7s %10s %10s %8s  %s"):format("data", "loss", "TV", "modes", "MMD²",
  "real-real", "time", "mode fractions"))
for _, s in ipairs(summary) do
  local fr = {}
  for k, f in ipairs(s.fractions) do fr[k] = ("%.2f"):format(f) end
  print(("%-16s %-8s %6.3f %3d/%-3d %10.2e %10.2e %7.1fs  %s"):format(s.data, s.kind, s.tv, s.covered, s.n,
    s.mmd, s.baseline, s.secs, table.concat(fr, " ")))
end
print("pictures: " .. table.concat(files, ", "))
