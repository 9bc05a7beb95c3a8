-- EDM on toy 2-D data (Karras, Aittala, Aila & Laine 2022, "Elucidating the
-- design space of diffusion-based generative models").
--
-- The denoiser D(x, σ) = c_skip x + c_out F(c_in x, c_noise) (preconditioning,
-- Table 1) is trained with the EDM loss (ln σ ~ N(−1.2, 1.2²), weight
-- (σ² + σ_d²)/(σ σ_d)²), then sampled on Karras levels (eq. 5) by the naive
-- backward sampler (deterministic and stochastic), EDM's Heun sampler
-- (Algorithm 2, without and with churn) and DPM-Solver++ 2M — and, through
-- scorch.param, by the VP probability-flow ODE as well.  Writes
-- out/edm_2d/{samples,loss}.png.
--
--   scorch examples/edm_2d.lua [--quick] [--data eight_gaussians] [--sigma_data 0]
--
-- The training is a run of the scorch.run runtime (configs/edm_2d.lua with
-- these options over it) in OUT/run-KEY, KEY 8 hex digits naming the
-- training options: config.lua, metrics.jsonl, checkpoints, a Ctrl-C that
-- checkpoints before it exits.  Running the script again with the same
-- options resumes that run (a finished one goes straight to sampling);
-- other options train in a folder of their own.
local sc = require "scorch"
local runtime = require "scorch.run"
local util = sc.util

local defaults = {
  data = "eight_gaussians", sigma_data = 0, P_mean = -1.2, P_std = 1.2,
  steps = 20000, batch = 512, lr = 1e-3, width = 128, blocks = 3, ema = 0.999,
  n = 10000, seed = 0, threads = 0, out = "out/edm_2d",
}
local opts = util.example_args(arg, { defaults = defaults,
  presets = { quick = { steps = 3000, width = 64, lr = 2e-3, n = 4000 } },
  usage = "usage: scorch examples/edm_2d.lua [options]\nEDM (Karras et al. 2022) on toy 2-D data.\n" ..
  "--sigma_data 0 measures it from the data.\n" })

-- ---- training, as a run: Adam with warm-up and cosine decay, an EMA of the weights -------------
-- F sees c_noise = ¼ ln σ ∈ [−1.6, 1.1]; its time features take 100·c_noise.
local int = math.tointeger
print(("EDM on %s: ln σ ~ N(%g, %g²), residual MLP %d×%d, %d steps"):format(opts.data, opts.P_mean, opts.P_std,
  opts.blocks, opts.width, opts.steps))
local t0 = sc.time()
local job = runtime.example.train { script = "examples/edm_2d.lua", config = "edm_2d", out = opts.out .. "/run",
  fields = {
    seed = int(opts.seed), threads = int(opts.threads), data = { name = opts.data },
    model = { width = int(opts.width), blocks = int(opts.blocks), cond_scale = 100 },
    objective = { sigma_data = opts.sigma_data + 0.0, P_mean = opts.P_mean + 0.0, P_std = opts.P_std + 0.0 },
    optim = { lr = opts.lr + 0.0 }, ema = { decay = opts.ema + 0.0 }, batch = int(opts.batch), steps = int(opts.steps),
  } }
job.ema:copy_to(job.params) -- sample with the average, as the run's figures do
local D, data, losses = job.fam.model, job.data.density, runtime.example.losses(job)
print(("σ_data = %.3f%s"):format(job.fam.sigma_data, opts.sigma_data > 0 and "" or " (measured from the data)"))

-- ---- sampling on Karras levels --------------------------------------------------------------------
local N = opts.n
local function karras(n) return (sc.schedules.karras_sigmas(n)) end
local vp = sc.schedules.vp_sde()
-- sampler(model, x_init, levels, opts): the start drawn from the prior of
-- the levels by the generator the sampler then uses
local function draw(name, model, levels, g, o)
  o = o or {}
  o.generator = g
  return sc.samplers[name](model, sc.samplers.prior(levels, { N, 2 }, { generator = g }), levels, o)
end
local runs = {
  { "naive det. 100", function(g) return draw("naive_backward", D, karras(100), g) end },
  { "naive stoch. 100", function(g)
    return draw("naive_backward", D, karras(100), g, { method = "ancestral" }) end },
  { "heun 18", function(g) return draw("heun", D, karras(18), g) end },
  { "heun churn 18", function(g)
    return draw("heun", D, karras(18), g, { S_churn = 20, S_min = 0.01, S_max = 10, S_noise = 1 }) end },
  { "dpm++ 2m 20", function(g) return draw("dpmpp_2m", D, karras(20), g) end },
  { "dpm++ 2m 10", function(g) return draw("dpmpp_2m", D, karras(10), g) end },
  -- the same denoiser as the score of the VP SDE
  { "VP prob. flow rk45", function(g) return draw("probability_flow", D, vp, g) end },
}
local real = data:sample(N, { generator = sc.Generator(opts.seed + 3) })
local m = math.min(N, 4000)
print(("\n%-20s %5s %8s %7s %9s %10s"):format("sampler", "NFE", "TV", "modes", "off-mode", "MMD²(h=.1)"))
local panels = { { title = "data", x = real:narrow(1, 1, math.min(N, 2000)) } }
for _, r in ipairs(runs) do
  local ts = sc.time()
  local x, info = r[2](sc.Generator(opts.seed + 7))
  local secs = sc.time() - ts
  local tv, modes, off = "-", "-", "-"
  if data.K then
    local rep = sc.metrics.mode_report(x, data)
    local far = sc.metrics.mode_report(x, data, { max_distance = 4 * math.sqrt(data.lam[1][1]) })
    tv, modes = ("%.4f"):format(rep.tv), ("%d/%d"):format(rep.covered, rep.n_modes)
    off = ("%.2f%%"):format(100 * far.unassigned / N)
  end
  local mmd = sc.metrics.mmd(x:narrow(1, 1, m), real:narrow(1, 1, m), { bandwidth = 0.1 })
  print(("%-20s %5d %8s %7s %9s %10.2e  (%.1fs)"):format(r[1], info.nfe, tv, modes, off, mmd, secs))
  panels[#panels + 1] = { title = ("%s (%d)"):format(r[1], info.nfe), x = x:narrow(1, 1, math.min(N, 2000)) }
end

util.mkdir(opts.out)
sc.viz.sample_panels(opts.out .. "/samples.png", panels, { size = 240, radius = 0.9,
  range = data.range })
sc.viz.loss_curve(opts.out .. "/loss.png", losses, { title = ("EDM loss, mean per %d steps"):format(
  job.cfg.log.every) })
print(("\nwrote %s/samples.png, loss.png (%.0fs in all)"):format(opts.out, sc.time() - t0))
