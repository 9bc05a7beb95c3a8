-- The DDPM's own likelihood bound on toy 2-D data, with fixed and learned
-- reverse variances.
--
-- Two noise predictors are trained on the same data from the same start:
-- one with L_simple (Ho et al. 2020, Algorithm 1), one with learned
-- variances and the hybrid loss L_simple + λ L_vlb, λ = 0.001 (Nichol &
-- Dhariwal 2021, §3.1).  On held-out points the script evaluates the
-- negative ELBO of Ho et al.'s eq. 5 term by term (sc.likelihood.ddpm_bound:
-- the prior term L_T, Σ_{t≥2} L_{t−1}, the Gaussian decoder L_0; the exact
-- sum over all T steps, one draw of x_t per point and step) with σ_t² = β̃_t,
-- β_t, or the learned interpolation, next to the data's entropy (the floor no
-- model beats) and the probability-flow ODE NLL of the same networks under
-- the VP SDE their schedule discretises.  It then samples each model
-- ancestrally (1000 steps) and reports mode statistics and MMD, and prints
-- the prior-mismatch term L_T = KL(p_0T(x_T | x₀) ‖ p_T) of several VP and VE
-- processes on the same points.
--
-- Writes OUT/terms.png (L_{t−1} per t in bits/dim for each model and
-- variance), OUT/cumulative.png (L_0 + … + L_{t−1}: where the bounds part),
-- OUT/samples.png, OUT/loss.png and OUT/vlb.png (the hybrid's L_vlb).
--
--   scorch examples/ddpm_bound_2d.lua [--quick] [--threads 1] [--data eight_gaussians] [--T 1000]
--
-- Options: --steps, --batch, --lr, --width, --blocks, --ema, --n-test,
-- --n-samples, --pf (0 skips the probability-flow NLL), --seed, --out.
local sc = require "scorch"
local util = sc.util
local likelihood = sc.likelihood

local defaults = {
  data = "eight_gaussians", schedule = "linear", T = 1000, steps = 20000, batch = 512, lr = 1e-3, width = 128,
  blocks = 3, ema = 0.999, n_test = 10000, n_samples = 4000, pf = 1, seed = 0, threads = 0, out = "out/ddpm_bound_2d",
}
local opts = util.example_args(arg, { defaults = defaults,
  -- a smaller network, fewer steps and points: under five minutes at one thread
  presets = { quick = { steps = 4000, width = 64, lr = 2e-3, n_test = 1000, n_samples = 2000 } },
  usage = "usage: scorch examples/ddpm_bound_2d.lua [options]\nThe DDPM bound with fixed and learned variances.\n" })
local int = math.tointeger
local T, steps, seed = int(opts.T), int(opts.steps), int(opts.seed)
assert(util.mkdir(opts.out))
local function out(name) return opts.out .. "/" .. name end
local t_start = sc.time()

local data = sc.data[opts.data]()
local sched = sc.schedules.ddpm { kind = opts.schedule, T = T }
print(("DDPM bound on %s: %s schedule, T = %d, residual MLP %d×%d, %d steps of %d"):format(opts.data, opts.schedule,
  T, int(opts.blocks), int(opts.width), steps, int(opts.batch)))

-- ---- training: L_simple, and the hybrid loss with learned variances -------------------------------
local function train(learn, label)
  local net = sc.models.DiffusionMLP { dim = 2, width = int(opts.width), blocks = int(opts.blocks),
    learn_variance = learn, generator = sc.Generator(seed) }   -- the same start for the mean part
  local gen = sc.Generator(seed + 1)
  local vlb = {}
  local t0 = sc.time()
  local losses = util.train(net, function(step)
    local x = data:sample(int(opts.batch), { generator = gen })
    local loss, parts = sc.losses.ddpm(net, x, { schedule = sched, generator = gen })
    if parts then vlb[step] = parts.vlb end
    return loss
  end, { steps = steps, lr = opts.lr, ema = opts.ema, desc = label })
  net:eval()
  return net, losses, vlb, sc.time() - t0
end
local fixed_net, fixed_losses, _, fixed_s = train(false, "L_simple")
local learned_net, hybrid_losses, vlb_values, learned_s = train(true, "hybrid")
print(("trained in %.0fs (L_simple) and %.0fs (hybrid)"):format(fixed_s, learned_s))
local fixed = sc.param.wrap(fixed_net, { kind = "eps", process = sched })
local learned = sc.param.wrap(learned_net, { kind = "eps", process = sched })

-- ---- the bound, term by term ------------------------------------------------------------------------
local test = data:sample(int(opts.n_test), { generator = sc.Generator(1000) })
local entropy, entropy_se = sc.metrics.mean_se(-data:log_prob(test))
local runs = {
  { name = "L_simple, beta~", model = fixed, variance = "beta_tilde" },
  { name = "L_simple, beta", model = fixed, variance = "beta" },
  { name = "hybrid, beta~", model = learned, variance = "beta_tilde" },
  { name = "hybrid, beta", model = learned, variance = "beta" },
  { name = "hybrid, learned", model = learned, variance = "learned" },
}
local bits = 1 / (2 * math.log(2))
print(("\nthe bound on %d test points (beta~ = the posterior variance β̃_t):"):format(test:size(1)))
print(("%-16s %9s %9s %10s %18s %9s %17s %6s"):format("model, variance", "L_T", "L_0", "sum L_{t-1}", "bound (nats)",
  "bits/dim", "bound - (-log p)", "time"))
local series, cumulative = {}, {}
local neg_logp = -data:log_prob(test)
for _, r in ipairs(runs) do
  local t0 = sc.time()
  -- the same draws of x_t for every row
  local nll, info = likelihood.ddpm_bound(r.model, test, { variance = r.variance, generator = sc.Generator(7) })
  r.nll, r.info = nll, info
  local m, se = sc.metrics.mean_se(nll)
  -- paired with the data's own −log p on each point: KL(p_data ‖ p_θ) + the bound's gap, ≥ 0 in expectation
  local gm, gse = sc.metrics.mean_se(nll - neg_logp)
  print(("%-16s %9.4f %9.4f %10.4f %9.4f ± %.4f %9.4f %9.4f ± %.4f %5.1fs"):format(r.name, info.prior_nats,
    info.decoder_nats, info.diffusion_nats, m, se, info.bpd_mean, gm, gse, sc.time() - t0))
  -- L_{t−1} for t ≥ 2 (positive KLs, drawn on a log axis); L_0 is a density and can be negative
  series[r.name] = info.terms_bpd:narrow(1, 2, T - 1):values()
  -- L_0 + L_1 + ... + L_{t−1}: where along t the bounds part
  local acc, sum = {}, 0
  for t, v in ipairs(info.terms_bpd:values()) do
    sum = sum + v
    acc[t] = sum
  end
  cumulative[r.name] = acc
end
print(("%-16s %40s %9.4f ± %.4f %9.4f"):format("data entropy H", "", entropy, entropy_se, entropy * bits))
-- paired differences: the same test points and the same draws of x_t
for _, pair in ipairs { { 5, 1 }, { 5, 3 }, { 5, 4 }, { 2, 1 } } do
  local a, b = runs[pair[1]], runs[pair[2]]
  local dm, dse = sc.metrics.mean_se(a.nll - b.nll)
  print(("  %-16s − %-16s %+8.4f ± %.4f nats  (%+.4f bits/dim)"):format(a.name, b.name, dm, dse, dm * bits))
end

-- ---- the probability-flow ODE NLL of the same networks -------------------------------------------------
-- Song et al. 2021, App. B: DDPM's linear betas discretise the VP SDE with β_min = T β_1, β_max = T β_T.
if opts.pf ~= 0 and opts.schedule == "linear" then
  local vp = sc.schedules.vp_sde { beta_min = sched.betas[1] * T, beta_max = sched.betas[T] * T }
  local n_pf = math.min(int(opts.n_test), 500)
  local pts = test:narrow(1, 1, n_pf)
  print(("\nprobability-flow NLL of the same networks (VP SDE, RK45 at 1e-4, exact divergence, first %d test points)")
    :format(n_pf))
  for _, pair in ipairs { { "L_simple", runs[2] }, { "hybrid", runs[5] } } do
    local t0 = sc.time()
    local pf = likelihood.nll(pair[2].model, vp, pts, { rtol = 1e-4, atol = 1e-4 })
    local m, se = sc.metrics.mean_se(pf)
    local b, bse = sc.metrics.mean_se(pair[2].nll:narrow(1, 1, n_pf))
    print(("  %-9s PF NLL %.4f ± %.4f nats; bound (%s) on the same points %.4f ± %.4f   (%.1fs)"):format(pair[1], m, se,
      pair[2].variance, b, bse, sc.time() - t0))
  end
end

-- ---- ancestral samples with each variance -----------------------------------------------------------
print(("\n%-16s %8s %7s %10s %10s %8s"):format("sampler", "TV", "modes", "MMD²", "real-real", "time"))
local panels = { { title = "data", x = test:narrow(1, 1, math.min(2000, test:size(1))) } }
for _, r in ipairs(runs) do
  local g = sc.Generator(seed + 7)
  local t0 = sc.time()
  local x = sc.samplers.ddpm(r.model, sc.samplers.prior(sched, { int(opts.n_samples), 2 }, { generator = g }), sched,
    { variance = r.variance, generator = g })
  local secs = sc.time() - t0
  local row = sc.metrics.likelihood_row(data, test, nil, x, { bandwidth = 0.1 })
  print(("%-16s %8s %7s %10.2e %10.2e %7.1fs"):format(r.name, row.tv and ("%.4f"):format(row.tv) or "-",
    row.modes and ("%d/%d"):format(row.covered, row.modes) or "-", row.mmd, row.base, secs))
  panels[#panels + 1] = { title = r.name, x = x:narrow(1, 1, math.min(2000, x:size(1))) }
end

-- ---- the prior-mismatch term of VP and VE processes -----------------------------------------------------
print("\nprior term L_T = KL(p_0T(x_T | x0) || p_T) on the test points:")
local processes = {
  { "DDPM linear, T = " .. T, sched },
  { "DDPM cosine, T = " .. T, sc.schedules.ddpm { kind = "cosine", T = T } },
  { "DDPM linear, T = 100", sc.schedules.ddpm { T = 100 } },
  { "VP SDE, beta_max = 20", sc.schedules.vp_sde {} },
  { "VP SDE, beta_max = 5", sc.schedules.vp_sde { beta_max = 5 } },
  { "sub-VP SDE", sc.schedules.subvp_sde {} },
  { "VE SDE, sigma_max = 50", sc.schedules.ve_sde { sigma_max = 50 } },
  { "VE SDE, sigma_max = 10", sc.schedules.ve_sde { sigma_max = 10 } },
  { "VE SDE, sigma_max = 1", sc.schedules.ve_sde { sigma_max = 1 } },
}
for _, p in ipairs(processes) do
  local kl = likelihood.prior_kl(p[2], test:double()):mean():item()
  print(("  %-24s %12.3e nats  %12.3e bits/dim"):format(p[1], kl, kl * bits))
end

-- ---- pictures -----------------------------------------------------------------------------------------
local files = {}
local function save(path) if path then files[#files + 1] = path end end
save(sc.viz.loss_curve(out("terms.png"), series, { title = ("L_{t-1} per t on %s, bits/dim (L_0 left out)"):format(
  opts.data), xlabel = "t", ylabel = "bits/dim (log scale)", smooth = 1, log = true }))
save(sc.viz.loss_curve(out("cumulative.png"), cumulative, { title = "L_0 + L_1 + ... + L_{t-1}, bits/dim",
  xlabel = "t", ylabel = "bits/dim", smooth = 1, log = false }))
save(sc.viz.sample_panels(out("samples.png"), panels, { density = data, size = 320, radius = 1 }))
save(sc.viz.loss_curve(out("loss.png"), { ["L_simple model"] = fixed_losses, ["hybrid model (L_simple + λ L_vlb)"] =
  hybrid_losses }, { title = "training losses", log = false }))
save(sc.viz.loss_curve(out("vlb.png"), vlb_values, { name = "L_vlb", title = "hybrid model: L_vlb = T·L_{t-1}"
  .. " (bits/dim) per batch", log = false, smooth = 0.01 }))
print(("\nwrote %s (%.0fs in all; the machine's cores were shared with other jobs)"):format(table.concat(files, ", "),
  sc.time() - t_start))
