-- Score-based generative modelling through SDEs on toy 2-D data
-- (Song, Sohl-Dickstein, Kingma, Kumar, Ermon & Poole 2021).
--
-- Noising is an SDE (VP by default; --sde ve | subvp); a network trained by
-- continuous-time denoising score matching (eq. 7, σ²- or likelihood
-- weighting) gives the score of every marginal.  Samples come from the
-- reverse SDE (Euler–Maruyama; predictor–corrector with a Langevin
-- corrector) and the probability-flow ODE (RK45), and the same ODE gives
-- exact likelihoods: the NLL of held-out points is printed next to the
-- data's true entropy (ln 32 = 3.466 nats for the default checkerboard on
-- [−4, 4]²).  Writes out/sde_2d/{samples,density,loss}.png.
--
--   scorch examples/sde_2d.lua [--quick] [--sde vp|ve|subvp] [--data eight_gaussians]
--                             [--weighting sigma2|likelihood]
--
-- The training is a run of the scorch.run runtime (configs/sde_2d.lua with
-- these options over it) in OUT/run-KEY, KEY 8 hex digits naming the
-- training options: config.lua, metrics.jsonl, checkpoints, a Ctrl-C that
-- checkpoints before it exits.  Running the script again with the same
-- options resumes that run (a finished one goes straight to sampling);
-- other options train in a folder of their own.
local sc = require "scorch"
local likelihood = require "scorch.likelihood"
local runtime = require "scorch.run"
local util = sc.util
local viz = sc.viz

local defaults = {
  data = "checkerboard", half_width = 4, sde = "vp", weighting = "sigma2",
  steps = 20000, batch = 512, lr = 1e-3, width = 128, blocks = 3, ema = 0.999,
  n = 10000, n_test = 2000, sample_steps = 1000, grid = 64, seed = 0, threads = 0, out = "out/sde_2d",
}
local opts = util.example_args(arg, { defaults = defaults,
  presets = { quick = { steps = 3000, width = 64, lr = 2e-3, n = 3000, n_test = 500, sample_steps = 300,
    grid = 40 } },
  usage = "usage: scorch examples/sde_2d.lua [options]\nScore SDEs (Song et al. 2021) on toy 2-D data.\n" })
if opts.sde ~= "vp" and opts.sde ~= "subvp" and opts.sde ~= "ve" then error("--sde must be vp, ve or subvp") end

-- ---- training, as a run ------------------------------------------------------------------------
-- ε_θ(x, t): the network sees x scaled to unit variance, 1/√(α_t² Var x₀ + s_t²),
-- and t ∈ [0, 1] through its time features (cond_scale 1000); the VE SDE's σ_max is
-- about the largest distance between data points (Song & Ermon 2020, technique 1).
-- Song et al. 2021, eq. 7, with the network predicting ε (score = −ε/s_t); Adam with
-- warm-up and cosine decay, an EMA of the weights.
local int = math.tointeger
local t0 = sc.time()
local job = runtime.example.train { script = "examples/sde_2d.lua", config = "sde_2d", out = opts.out .. "/run",
  fields = {
    seed = int(opts.seed), threads = int(opts.threads),
    data = { name = opts.data, half_width = opts.data == "checkerboard" and opts.half_width + 0.0 or 0.0 },
    model = { width = int(opts.width), blocks = int(opts.blocks), cond_scale = 1000 },
    objective = { sde = opts.sde, weighting = opts.weighting },
    optim = { lr = opts.lr + 0.0 }, ema = { decay = opts.ema + 0.0 }, batch = int(opts.batch), steps = int(opts.steps),
    sample = { steps = int(opts.sample_steps) }, -- the run's own figure (Euler–Maruyama)
  } }
job.ema:copy_to(job.params) -- sample with the average, as the run's figures do
local net, sde, model, data = job.net, job.fam.sde, job.fam.eps, job.data.density
local gen = sc.Generator(opts.seed + 1)
local losses = runtime.example.losses(job)
print(("%s on %s, DSM with %s weighting, %d steps"):format(tostring(sde), data.name, opts.weighting, opts.steps))

-- ---- sampling ------------------------------------------------------------------------------------
local S = sc.samplers
local eps_model = sc.param.wrap(model, { kind = "eps", process = sde })
-- sampler(model, x_init, sde, opts), x_init from the prior by the sampler's generator
local function run(name, o)
  local g = sc.Generator(opts.seed + 7)
  o.generator = g
  return S[name](eps_model, S.prior(sde, { opts.n, 2 }, { generator = g }), sde, o)
end
local runs = {
  { "euler_maruyama", function() return run("euler_maruyama", { steps = opts.sample_steps }) end },
  { "pc rd+langevin", function()
    return run("predictor_corrector", { steps = opts.sample_steps // 2, snr = 0.16 }) end },
  { "prob. flow rk45", function() return run("probability_flow", {}) end },
}
local real = data:sample(opts.n, { generator = sc.Generator(opts.seed + 3) })
local function quality(x)
  if data.K then
    local rep = sc.metrics.mode_report(x, data)
    return ("TV %.4f, %d/%d modes"):format(rep.tv, rep.covered, rep.n_modes)
  end
  local v, inside = x:values(), 0
  for i = 1, x:size(1) do
    if data:inside(v[2 * i - 1], v[2 * i]) then inside = inside + 1 end
  end
  return ("%.1f%% on the black squares"):format(100 * inside / x:size(1))
end
print(("\n%-18s %6s  %-28s %10s"):format("sampler", "NFE", "quality", "MMD²(h=.2)"))
print(("%-18s %6s  %-28s %10s"):format("(fresh data)", "-", quality(data:sample(opts.n, { generator = gen })), "-"))
local panels = { { title = "data", x = real:narrow(1, 1, math.min(opts.n, 3000)) } }
for _, r in ipairs(runs) do
  local x, info = r[2]()
  local m = math.min(opts.n, 3000)
  local mmd = sc.metrics.mmd(x:narrow(1, 1, m), real:narrow(1, 1, m), { bandwidth = 0.2 })
  print(("%-18s %6d  %-28s %10.2e"):format(r[1], info.nfe, quality(x), mmd))
  panels[#panels + 1] = { title = ("%s (%d NFE)"):format(r[1], info.nfe), x = x:narrow(1, 1, m) }
end

-- ---- likelihood by the probability-flow ODE ----------------------------------------------------------
local test = data:sample(opts.n_test, { generator = sc.Generator(opts.seed + 4242) }):double()
net:double()
local entropy = data.log_density and -data.log_density
  or -data:log_prob(data:sample(20000, { generator = gen }):double()):mean():item()
print(("\nheld-out NLL of %d points (probability-flow ODE, RK45 rtol = atol = 1e-5):"):format(opts.n_test))
for _, est in ipairs { "exact", "rademacher" } do
  local ts = sc.time()
  local _, info = likelihood.nll(model, sde, test,
    { prediction = "eps", estimator = est, generator = sc.Generator(5) })
  print(("  %-10s divergence: %.4f nats (%.4f bits/dim), %d NFE, %.0fs"):format(est, info.nats, info.bpd_mean,
    info.nfe, sc.time() - ts))
end
print(("  true entropy of the data: %.4f nats (%.4f bits/dim)"):format(entropy, entropy / (2 * math.log(2))))

-- ---- pictures -------------------------------------------------------------------------------------------
util.mkdir(opts.out)
viz.sample_panels(opts.out .. "/samples.png", panels, { density = data, size = 320, radius = 0.9 })
viz.loss_curve(opts.out .. "/loss.png", losses, { title = ("DSM loss, mean per %d steps"):format(job.cfg.log.every) })
-- the model's density exp(−NLL) on a grid, next to the truth
local cv, axs = viz.panels(2, 320, data.range)
axs[1]:density(data, { resolution = opts.grid })
axs[1]:frame { title = "true density" }
axs[2]:density(function(x)
  local nll = likelihood.nll(model, sde, x:double(), { prediction = "eps", rtol = 1e-4, atol = 1e-4 })
  return -nll
end, { resolution = opts.grid })
axs[2]:frame { title = "model density (PF ODE)" }
cv:save(opts.out .. "/density.png")
print(("\nwrote %s/samples.png, density.png, loss.png (%.0fs in all)"):format(opts.out, sc.time() - t0))
