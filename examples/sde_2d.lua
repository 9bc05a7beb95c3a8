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
local sc = require "scorch"
local likelihood = require "scorch.likelihood"
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

sc.manual_seed(opts.seed)
local gen = sc.Generator(opts.seed + 1)
local data
if opts.data == "checkerboard" then
  data = sc.data.checkerboard { half_width = opts.half_width }
else
  data = sc.data.toy(opts.data)
end
local probe = data:sample(20000, { generator = gen })
local data_var = probe:var():item()                 -- per coordinate, for input scaling

local sde
if opts.sde == "vp" then sde = sc.schedules.vp_sde()
elseif opts.sde == "subvp" then sde = sc.schedules.subvp_sde()
elseif opts.sde == "ve" then
  -- σ_max about the largest distance between data points (Song & Ermon 2020, technique 1)
  local r = data.range
  sde = sc.schedules.ve_sde { sigma_min = 0.01, sigma_max = math.sqrt((r[2] - r[1]) ^ 2 + (r[4] - r[3]) ^ 2) }
else
  error("--sde must be vp, ve or subvp")
end

-- ε_θ(x, t): the network sees x scaled to unit variance, 1/√(α_t² Var x₀ + s_t²),
-- and t ∈ [0, 1] through its time features.
local net = sc.models.DiffusionMLP { dim = 2, width = opts.width, blocks = opts.blocks, cond_scale = 1000 }
local function model(x, t)
  local a, s = sde:marginal(t)
  return net(x * ((a * a * data_var + s * s) ^ -0.5), t)
end

print(("%s on %s, DSM with %s weighting, %d steps"):format(tostring(sde), data.name, opts.weighting, opts.steps))
local t0 = sc.time()
-- Song et al. 2021, eq. 7, with the network predicting ε (score = −ε/s_t)
local losses = util.train(net, function()
  return sc.losses.sde_dsm(model, data:sample(opts.batch, { generator = gen }),
    { sde = sde, prediction = "eps", weighting = opts.weighting, generator = gen })
end, { steps = opts.steps, lr = opts.lr, ema = opts.ema, log_every = math.max(1, opts.steps // 5), t0 = t0 })

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
viz.loss_curve(opts.out .. "/loss.png", losses, { title = "DSM loss" })
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
