-- NCSN on 2-D data (Song & Ermon 2019): train a noise-conditional score
-- network with denoising score matching over geometric noise levels, then
-- sample with plain and with annealed Langevin dynamics — with the learned
-- score and with the exact one — and check the result against the truth.
--
--   bin/scorch examples/ncsn_2d.lua                 # 0.8/0.2 two-mode mixture (§3.2)
--   bin/scorch examples/ncsn_2d.lua --quick         # a shorter run
--   bin/scorch examples/ncsn_2d.lua --data eight_gaussians   # modes, TV, MMD
--
-- Options: --out DIR (default out/ncsn_2d), --steps, --batch, --lr,
-- --hidden, --layers, --levels, --sigma-max, --sigma-min, --eps, --T,
-- --samples, --seed, --threads, --scale-by-sigma, --denoise.  Pictures go
-- to the output directory; the script prints where.
--
-- The training is a run of the scorch.run runtime (configs/ncsn_2d.lua
-- with these options over it; `scorch train configs/ncsn_2d.lua` is the
-- eight_gaussians one) in OUT/run-KEY, KEY 8 hex digits naming the
-- training options: config.lua, metrics.jsonl, checkpoints, a Ctrl-C that
-- checkpoints before it exits.  Running the script again with the same
-- options resumes that run (a finished one goes straight to sampling);
-- other options train in a folder of their own.
local sc = require "scorch"
local runtime = require "scorch.run"
local util = sc.util

local defaults = {
  data = "two_gaussians", out = "out/ncsn_2d", quick = false, seed = 0, threads = 0,
  steps = 0, batch = 0, lr = 1e-3, hidden = 128, layers = 3,
  levels = 0, sigma_max = 0, sigma_min = 0, eps = 0, T = 100, samples = 0,
  plain_steps = 1000, scale_by_sigma = false, denoise = false, trajectories = 24,
}

-- Per data set: noise levels, step size, sample count, starting law.
-- two_gaussians follows the paper's toy experiment; eight_gaussians has
-- modes of std 0.05, so its levels run from the spread of the data (about
-- the largest distance between modes, Song & Ermon 2020) down to below the
-- mode width, with the final denoising step.  Langevin at level i is stable
-- only while its step α_i = ε σ_i²/σ_L² stays below about σ_i² (the
-- curvature of a Gaussian of variance σ_i²), so ε must be a small fraction
-- of σ_L²: the paper's ε = 2e-5 for σ_L = 0.01.
local presets = {
  two_gaussians = { sigma_max = 20, sigma_min = 1, eps = 0.1, samples = 1280, steps = 3000,
    start = "uniform", box = 8, levels = 10, batch = 256 },
  -- 20 levels (neighbouring p_σ overlap more, Song & Ermon 2020) and
  -- batch 1024: with 10 levels and batch 256 the mode fractions were off
  -- by TV 0.03-0.04 and MMD² was 30x the real-vs-real baseline.
  eight_gaussians = { sigma_max = 4, sigma_min = 0.01, eps = 2e-5, samples = 10000, steps = 20000,
    start = "gaussian", denoise = true, scale_by_sigma = true, levels = 20, batch = 1024 },
}

local opts = util.parse_args(arg, defaults, "usage: scorch examples/ncsn_2d.lua [options]\n")
local preset = presets[opts.data] or { sigma_max = 4, sigma_min = 0.01, eps = 2e-5, samples = 5000,
  steps = 20000, start = "gaussian", denoise = true, scale_by_sigma = true, levels = 20, batch = 1024 }
local function pick(key) return (opts[key] ~= 0 and opts[key]) or preset[key] end
local steps = opts.steps ~= 0 and opts.steps or (opts.quick and preset.steps // 3 or preset.steps)
local n_samples = pick("samples")
local denoise = opts.denoise or preset.denoise or false
if opts.threads > 0 then sc.set_num_threads(math.tointeger(opts.threads)) end

local data = sc.data.toy(opts.data)
local gen = sc.Generator(math.tointeger(opts.seed))
local sigmas = sc.schedules.geometric_sigmas(pick("sigma_max"), pick("sigma_min"), math.tointeger(pick("levels")))
local batch = math.tointeger(pick("batch"))
assert(util.mkdir(opts.out))
local function out(name) return opts.out .. "/" .. name end

print(("ncsn_2d: %s, σ %g → %g (L = %d), %d training steps, batch %d"):format(opts.data, sigmas[1],
  sigmas[#sigmas], #sigmas, steps, batch))

-- ---- training: DSM over the levels, λ(σ) = σ² (Song & Ermon 2019, eq. 6), as a run ----
-- s(x, σ) = net(x, σ)/σ (Song & Ermon 2020, technique 3) for narrow modes:
-- without it the net must output scores of size 1/σ_L² and the score error
-- at σ_L = 0.01 was ten times larger.  Fresh samples each step; the
-- learning rate is constant, then annealed linearly to 0 over the last 30%.
local int = math.tointeger
local job, trained = runtime.example.train { script = "examples/ncsn_2d.lua", config = "ncsn_2d", out = out("run"),
  fields = {
    seed = int(opts.seed), threads = int(opts.threads), data = { name = opts.data },
    model = { width = int(opts.hidden), layers = int(opts.layers),
      scale_by_sigma = opts.scale_by_sigma or preset.scale_by_sigma or false },
    objective = { sigma_max = pick("sigma_max"), sigma_min = pick("sigma_min"), levels = int(pick("levels")) },
    optim = { lr = opts.lr + 0.0 }, batch = batch, steps = int(steps),
    -- the run's own figure: annealed Langevin as below, from N(0, σ_1²I)
    sample = { step_size = pick("eps") + 0.0, steps = int(opts.T), denoise = denoise },
  } }
local model = job.net -- the trained weights (not the run's EMA, which the run's figures use)
local losses = runtime.example.losses(job)
if trained.steps > 0 then
  -- ms/step from the run's log: the steps alone, without checkpoint writes and the run's figures
  print(("trained %d steps in %.1f s (%.2f ms/step), final loss %.4f (mean of the last %d steps)"):format(
    trained.steps, trained.seconds, 1000 * runtime.example.seconds(job) / job.step, losses[#losses],
    job.cfg.log.every))
else
  print(("%s is trained (%d steps): nothing to train; final loss %.4f (mean of the last %d steps)"):format(job.dir,
    job.step, losses[#losses], job.cfg.log.every))
end

-- ---- sampling -------------------------------------------------------------------------

local function start_points()
  local g = sc.Generator(math.tointeger(opts.seed) + 1)
  if preset.start == "uniform" then
    return sc.rand(n_samples, 2, { generator = g }) * (2 * preset.box) - preset.box
  end
  return sc.randn(n_samples, 2, { generator = g }) * sigmas[1]
end
local x0 = start_points()
local eps, T = pick("eps"), math.tointeger(opts.T)
local sigma_L = sigmas[#sigmas]

-- Each run records which law it targets: the data, or p_σL (the data
-- convolved with N(0, σ_L²I)), which annealed Langevin without the final
-- denoising step and plain Langevin on the model at σ_L sample from.
local results = {}
local function run(name, smoothed, fn)
  local t = sc.time()
  local x = fn(sc.Generator(math.tointeger(opts.seed) + 2))
  results[#results + 1] = { name = name, x = x, time = sc.time() - t, smoothed = smoothed }
  return x
end

local recorder, paths = sc.samplers.trajectory_recorder(math.tointeger(opts.trajectories), 5, x0)
local learned = sc.param.wrap(model, { kind = "score" })   -- s_θ(x, σ)
local exact = sc.param.wrap(data)                          -- the exact ∇log p_σ
run("learned, annealed", not denoise, function(g)
  return sc.samplers.annealed_langevin(learned, x0, sigmas, { step_size = eps, steps_per_level = T, generator = g,
    denoise = denoise, callback = recorder })
end)
run("learned, plain", true, function(g)
  -- plain Langevin needs one score: the model at the smallest level
  return sc.samplers.langevin(learned, x0, sigma_L, { step_size = eps, steps = math.tointeger(opts.plain_steps),
    generator = g })
end)
run("exact, annealed", not denoise, function(g)
  return sc.samplers.annealed_langevin(exact, x0, sigmas, { step_size = eps, steps_per_level = T, generator = g,
    denoise = denoise })
end)
run("exact, plain", false, function(g)
  return sc.samplers.langevin(exact, x0, nil, { step_size = eps, steps = math.tointeger(opts.plain_steps),
    generator = g })
end)

-- ---- checks against the truth ------------------------------------------------------------

local err_data = sc.metrics.score_error(function(x, s) return model(x, s) end, data,
  data:sample(2000, { generator = gen }), { sigma = sigma_L })
local err_grid = sc.metrics.score_error_grid(function(x, s) return model(x, s) end, data,
  { sigma = sigma_L, n = 40, weight = data })
print(("score error at σ_L = %g: %.4g on data, %.4g on a density-weighted grid (exact smoothed score)")
  :format(sigma_L, err_data, err_grid))

local start_report = sc.metrics.mode_report(x0, data)
print(("%-20s %s   (start: %s)"):format("sampler", "mode fractions", table.concat((function()
  local t = {}
  for k, f in ipairs(start_report.fractions) do t[k] = ("%.3f"):format(f) end
  return t
end)(), " ")))
-- MMD: median-heuristic bandwidth for the wide two-mode data, 0.1 (about
-- twice the mode width) for narrow modes, where the median distance would
-- not see the modes' shape.  The baseline is real against real.
local real = data:sample(n_samples, { generator = gen })
local real_smoothed = real + sc.randn(n_samples, 2, { generator = gen }) * sigma_L
local mmd_h = opts.data == "two_gaussians" and nil or 0.1
local baseline = sc.metrics.mmd_baseline(data, n_samples, { generator = gen, bandwidth = mmd_h, repeats = 3 })
for _, r in ipairs(results) do
  local rep = sc.metrics.mode_report(r.x, data)
  local fr = {}
  for k, f in ipairs(rep.fractions) do fr[k] = ("%.3f"):format(f) end
  local mmd = sc.metrics.mmd(r.x, r.smoothed and real_smoothed or real, { bandwidth = mmd_h })
  print(("%-20s %s   TV %.3f, modes %d/%d, MMD² %.2e vs %s (real-vs-real %.2e), %.1f s"):format(r.name,
    table.concat(fr, " "), rep.tv, rep.covered, rep.n_modes, mmd, r.smoothed and "p_σL" or "data",
    baseline, r.time))
  r.report, r.mmd = rep, mmd
end
if opts.data == "two_gaussians" then
  for _, r in ipairs(results) do
    print(("mass in the heavy mode (5, 5), %s: %.3f (true 0.8)"):format(r.name, r.report.fractions[1]))
  end
end

-- ---- pictures ----------------------------------------------------------------------------

local files = {}
local function save(name, path)
  if path then files[#files + 1] = path else print("could not write " .. name) end
end
local panels = {}
for i, r in ipairs(results) do panels[i] = { title = r.name, x = r.x } end
save("samples", sc.viz.sample_panels(out("samples.png"), panels, { density = data, size = 320, radius = 1 }))
local mid = sigmas[(#sigmas + 1) // 2]
for _, s in ipairs { sigma_L, mid } do
  save("score field", sc.viz.score_fields(out(("score_field_sigma_%g.png"):format(s)), {
    { title = ("model s=%g"):format(s), score = model },
    { title = ("truth s=%g"):format(s), score = data },
  }, { sigma = s, background = data, size = 384, n = 22 }))
end
save("trajectories", sc.viz.trajectories(out("trajectories.png"), paths,
  { density = data, title = "annealed langevin" }))
save("loss", sc.viz.loss_curve(out("loss.png"), losses, { title = ("dsm loss, mean per %d steps"):format(
  job.cfg.log.every) }))
save("density", sc.viz.density(out("density.png"), data, { title = opts.data }))
print("pictures: " .. table.concat(files, ", "))

-- The run as one static page beside the pictures (open it from disk).
local metrics = { score_error_data = err_data, score_error_grid = err_grid, mmd_real_vs_real = baseline }
for _, r in ipairs(results) do
  metrics[r.name] = { tv = r.report.tv, modes = r.report.covered, mmd = r.mmd, seconds = r.time }
end
print("report: " .. assert(sc.viz.report(opts.out,
  { title = "NCSN on " .. opts.data, config = opts, metrics = metrics })))
