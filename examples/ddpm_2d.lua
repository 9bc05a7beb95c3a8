-- DDPM on toy 2-D data (Ho, Jain & Abbeel 2020).
--
-- Train a noise predictor ε_θ(x_t, t) with Algorithm 1 (L_simple: t uniform,
-- ‖ε − ε_θ(√ᾱ_t x₀ + √(1 − ᾱ_t) ε, t)‖²), then sample with Algorithm 2
-- (1000 ancestral steps, variance β_t or β̃_t) and with DDIM (50 steps) from
-- the same network.  Prints the per-mode statistics of each sampler and
-- writes out/ddpm_2d/{samples,loss,trajectories}.png.
--
-- The training is a run of the scorch.run runtime (the one behind
-- `scorch train configs/ddpm_2d.lua`) in OUT/run: metrics.jsonl,
-- checkpoints, a Ctrl-C that checkpoints before it exits.  Running the
-- script again resumes that run (a finished one goes straight to sampling);
-- other training options need another --out.
--
--   scorch examples/ddpm_2d.lua [--quick] [--data eight_gaussians] [--schedule cosine]
local sc = require "scorch"
local run = require "scorch.run"
local util = sc.util

local defaults = {
  data = "eight_gaussians", schedule = "linear", T = 1000,
  steps = 20000, batch = 512, lr = 1e-3, width = 128, blocks = 3, ema = 0.999,
  n = 10000, seed = 0, threads = 0, out = "out/ddpm_2d",
}
local opts = util.example_args(arg, { defaults = defaults,
  -- a smaller network and fewer steps: about a minute on two cores
  presets = { quick = { steps = 3000, width = 64, lr = 2e-3, n = 4000 } },
  usage = "usage: scorch examples/ddpm_2d.lua [options]\nDDPM (Ho et al. 2020) on toy 2-D data.\n" })

-- ---- training: Algorithm 1, as a run ---------------------------------------------------------
local int = math.tointeger
local cfg = run.config.resolve({
  name = "ddpm_2d", family = "ddpm", out = opts.out .. "/run", seed = int(opts.seed), threads = int(opts.threads),
  data = { name = opts.data }, model = { width = int(opts.width), blocks = int(opts.blocks) },
  objective = { schedule = opts.schedule, T = int(opts.T) }, optim = { lr = opts.lr + 0.0 },
  ema = { decay = opts.ema + 0.0 }, batch = int(opts.batch), steps = int(opts.steps),
  checkpoint = { every = math.max(1, int(opts.steps) // 10), keep = 2 },
  log = { every = math.max(1, int(opts.steps) // 100) },
}, "examples/ddpm_2d.lua")
print(("DDPM on %s: %s schedule, T = %d, residual MLP %d×%d, %d steps of %d"):format(opts.data,
  opts.schedule, cfg.objective.T, opts.blocks, opts.width, opts.steps, opts.batch))
local t0 = sc.time()
local ok, job = pcall(run.trainer.open, cfg, { resume = true })
if not ok then
  io.stderr:write(("examples/ddpm_2d.lua: %s\n(pass --out DIR to train a new run elsewhere)\n"):format(job))
  os.exit(1)
end
local status = run.trainer.train(job)
if status ~= 0 then os.exit(status, true) end -- stopped by a signal, after its checkpoint
local net, sched, data = job.net, job.fam.process, job.data.density
job.ema:copy_to(job.params) -- sample with the average, as the trainer's figures do
net:eval()
local gen = sc.Generator(opts.seed + 1)
local _, losses = run.trainer.read_losses(job.dir .. "/metrics.jsonl")

-- ---- sampling: Algorithm 2 and DDIM -----------------------------------------------------------
local eps = sc.param.wrap(net, { kind = "eps", process = sched })
local real = data:sample(opts.n, { generator = gen })
-- x_T ~ N(0, I) drawn by the generator the sampler then uses
local function start(o, n) return sc.samplers.prior(sched, { n or opts.n, 2 }, { generator = o.generator }) end
local runs = {
  { "DDPM, var beta", "DDPM beta", function(o) return sc.samplers.ddpm(eps, start(o), sched, o) end },
  { "DDPM, var beta~", "DDPM beta-tilde", function(o)
    o.variance = "beta_tilde"
    return sc.samplers.ddpm(eps, start(o), sched, o)
  end },
  { "DDIM, eta 0", "DDIM eta=0", function(o)
    o.steps = 50
    return sc.samplers.ddim(eps, start(o), sched, o)
  end },
}
local panels = { { title = "data", x = real:narrow(1, 1, math.min(2000, opts.n)) } }
print(("\n%-16s %5s %8s %8s %9s %10s"):format("sampler", "NFE", "TV", "modes", "off-mode", "MMD²(h=.1)"))
local is_mixture = data.K ~= nil
for _, r in ipairs(runs) do
  local ts = sc.time()
  local x, info = r[3]({ generator = sc.Generator(opts.seed + 7) })
  local secs = sc.time() - ts
  local tv, modes, off = "-", "-", "-"
  if is_mixture then
    local rep = sc.metrics.mode_report(x, data)
    local far = sc.metrics.mode_report(x, data, { max_distance = 4 * math.sqrt(data.lam[1][1]) })
    tv, modes = ("%.4f"):format(rep.tv), ("%d/%d"):format(rep.covered, rep.n_modes)
    off = ("%.2f%%"):format(100 * far.unassigned / opts.n)
  end
  local m = math.min(opts.n, 4000)
  local mmd = sc.metrics.mmd(x:narrow(1, 1, m), real:narrow(1, 1, m), { bandwidth = 0.1 })
  print(("%-16s %5d %8s %8s %9s %10.2e   (%.1fs)"):format(r[1], info.nfe, tv, modes, off, mmd, secs))
  panels[#panels + 1] = { title = ("%s, %d NFE"):format(r[2], info.nfe), x = x:narrow(1, 1, math.min(2000, opts.n)) }
end

-- ---- pictures -----------------------------------------------------------------------------------
util.mkdir(opts.out)
sc.viz.sample_panels(opts.out .. "/samples.png", panels, { density = data, size = 320, radius = 1 })
sc.viz.loss_curve(opts.out .. "/loss.png", losses, { title = ("L_simple, mean per %d steps"):format(cfg.log.every) })
-- a few reverse trajectories x_T -> x_0
local paths = {}
local k = 24
local traj_gen = sc.Generator(opts.seed + 11)
sc.samplers.ddpm(eps, start({ generator = traj_gen }, k), sched, {
  generator = traj_gen,
  callback = function(s)
    if s.i % 10 == 0 or s.from == 1 then
      local v = s.x:values()
      for j = 1, k do
        paths[j] = paths[j] or {}
        paths[j][#paths[j] + 1] = { v[2 * j - 1], v[2 * j] }
      end
    end
  end,
})
sc.viz.trajectories(opts.out .. "/trajectories.png", paths, { density = data, range = { -4, 4, -4, 4 } })
print(("\nwrote %s/samples.png, loss.png, trajectories.png (%.0fs in all)"):format(opts.out, sc.time() - t0))
