-- One trained model, every sampler: model evaluations versus quality.
--
-- A DDPM ε-network is trained once on 8 Gaussians (Ho et al. 2020,
-- Algorithm 1).  scorch.param then shows it to each sampler in the view it
-- needs: ε(x, t) on the DDPM schedule for DDPM and DDIM; the score of the
-- VP SDE (β 0.1..20, the schedule's continuous limit) for Euler–Maruyama,
-- predictor–corrector and the probability-flow ODE; the denoiser D(x̂, σ)
-- for the naive backward sampler, EDM's Heun and DPM-Solver++ 2M.  Each
-- sampler's samples are scored against the data: total variation of mode
-- fractions (nearest mode), modes covered, mass off the modes (> 4 std from
-- every mean) and MMD² with a narrow Gaussian kernel.
--
-- Writes out/sampler_zoo_2d/{panel.png,table.md,loss.png}.
--   scorch examples/sampler_zoo_2d.lua [--quick]
local sc = require "scorch"
local param = require "scorch.param"
local util = sc.util
local viz = sc.viz

local defaults = {
  steps = 20000, batch = 512, lr = 1e-3, width = 128, blocks = 3, ema = 0.999,
  n = 10000, seed = 0, threads = 0, out = "out/sampler_zoo_2d", only = "",
}
local opts = util.example_args(arg, { defaults = defaults,
  presets = { quick = { steps = 3000, width = 64, lr = 2e-3, n = 4000 } },
  usage = "usage: scorch examples/sampler_zoo_2d.lua [options]\nEvery diffusion sampler on one DDPM model.\n" })

sc.manual_seed(opts.seed)
local gen = sc.Generator(opts.seed + 1)
local data = sc.data.eight_gaussians()
local sched = sc.schedules.ddpm { T = 1000 }
local vp = sc.schedules.vp_sde { beta_min = 0.1, beta_max = 20 }
local net = sc.models.DiffusionMLP { dim = 2, width = opts.width, blocks = opts.blocks }
local t0 = sc.time()

-- ---- train once: DDPM, Algorithm 1 --------------------------------------------------------
do
  local losses = util.train(net, function()
    return sc.losses.ddpm(net, data:sample(opts.batch, { generator = gen }), { schedule = sched, generator = gen })
  end, { steps = opts.steps, lr = opts.lr, ema = opts.ema })
  util.mkdir(opts.out)
  viz.loss_curve(opts.out .. "/loss.png", losses, { title = "DDPM L_simple" })
  print(("trained a %d×%d residual MLP for %d steps in %.0fs"):format(opts.blocks, opts.width, opts.steps,
    sc.time() - t0))
end

-- ---- the one model in every view --------------------------------------------------------------
-- one wrapped model: ε on its DDPM schedule (t = 1..T), the score of the VP
-- SDE (t ∈ [ε, 1]) and D(x̂, σ) at any σ, each asked for by the sampler
local eps = param.wrap(net, { kind = "eps", process = sched })
local D, score = eps, eps
local karras = function(n)
  return (sc.schedules.karras_sigmas(n, { sigma_min = sched.sigma_min, sigma_max = 80 }))
end

local N = opts.n
-- sampler(model, x_init, levels, opts): the start drawn from the prior of
-- the levels by the generator the sampler then uses
local function draw(name, model, levels, g, o)
  o = o or {}
  o.generator = g
  return sc.samplers[name](model, sc.samplers.prior(levels, { N, 2 }, { generator = g }), levels, o)
end
local zoo = {
  { "ddpm beta 1000", function(g) return draw("ddpm", eps, sched, g) end },
  { "ddpm beta-t 1000", function(g) return draw("ddpm", eps, sched, g, { variance = "beta_tilde" }) end },
  { "ddpm beta-t 100", function(g)
    return draw("ddpm", eps, sched, g, { variance = "beta_tilde", steps = 100 }) end },
  { "ddim 100", function(g) return draw("ddim", eps, sched, g, { steps = 100 }) end },
  { "ddim 50", function(g) return draw("ddim", eps, sched, g, { steps = 50 }) end },
  { "ddim 20 trailing", function(g)
    return draw("ddim", eps, sched, g, { steps = 20, spacing = "trailing" }) end },
  { "ddim eta=1 100", function(g) return draw("ddim", eps, sched, g, { steps = 100, eta = 1 }) end },
  { "euler_maruyama 1000", function(g) return draw("euler_maruyama", score, vp, g, { steps = 1000 }) end },
  { "euler_maruyama 200", function(g) return draw("euler_maruyama", score, vp, g, { steps = 200 }) end },
  { "pc rd+langevin 500", function(g)
    return draw("predictor_corrector", score, vp, g, { steps = 500, snr = 0.16 }) end },
  { "prob. flow rk45", function(g) return draw("probability_flow", score, vp, g) end },
  { "prob. flow heun 50", function(g)
    return draw("probability_flow", score, vp, g, { method = "heun", steps = 50 }) end },
  { "naive det. 100", function(g) return draw("naive_backward", D, karras(100), g) end },
  { "naive stoch. 100", function(g)
    return draw("naive_backward", D, karras(100), g, { method = "ancestral" }) end },
  { "edm heun 18", function(g) return draw("heun", D, karras(18), g) end },
  { "edm heun churn 18", function(g)
    return draw("heun", D, karras(18), g, { S_churn = 20, S_min = 0.01, S_max = 10, S_noise = 1 }) end },
  { "dpm++ 2m 20", function(g) return draw("dpmpp_2m", D, karras(20), g) end },
  { "dpm++ 2m 10", function(g) return draw("dpmpp_2m", D, karras(10), g) end },
}

-- ---- run and score ------------------------------------------------------------------------------
local std = math.sqrt(data.lam[1][1])
local real = data:sample(N, { generator = sc.Generator(opts.seed + 99) })
local m = math.min(N, 4000)
local function score_samples(x)
  local rep = sc.metrics.mode_report(x, data)
  local far = sc.metrics.mode_report(x, data, { max_distance = 4 * std })
  local mmd = sc.metrics.mmd(x:narrow(1, 1, m), real:narrow(1, 1, m), { bandwidth = 0.1 })
  return rep.tv, rep.covered, far.unassigned / x:size(1), mmd
end

local rows, panels = {}, {}
local ref_tv, ref_covered, ref_off, ref_mmd = score_samples(data:sample(N, { generator = sc.Generator(opts.seed + 5) }))
print(("\n%-20s %6s %7s %6s %8s %10s %7s"):format("sampler", "NFE", "TV", "modes", "off-mode", "MMD²", "time"))
print(("%-20s %6s %7.4f %4d/8 %7.2f%% %10.2e %7s"):format("(fresh data)", "-", ref_tv, ref_covered,
  100 * ref_off, ref_mmd, "-"))
for _, z in ipairs(zoo) do
  if opts.only == "" or z[1]:find(opts.only, 1, true) then
    local ts = sc.time()
    local x, info = z[2](sc.Generator(opts.seed + 7))
    local secs = sc.time() - ts
    local tv, covered, off, mmd = score_samples(x)
    rows[#rows + 1] = { name = z[1], nfe = info.nfe, tv = tv, covered = covered, off = off, mmd = mmd, secs = secs }
    print(("%-20s %6d %7.4f %4d/8 %7.2f%% %10.2e %6.1fs"):format(z[1], info.nfe, tv, covered, 100 * off, mmd, secs))
    panels[#panels + 1] = { title = ("%s (%d)"):format(z[1], info.nfe), x = x:narrow(1, 1, math.min(N, 2000)) }
  end
end

-- ---- the acceptance comparison ----------------------------------------------------------------
local by = {}
for _, r in ipairs(rows) do by[r.name] = r end
local ref = by["ddpm beta 1000"]
if ref then
  print(("\nDDPM 1000 steps: TV %.4f, %d/8 modes"):format(ref.tv, ref.covered))
  for _, name in ipairs { "dpm++ 2m 20", "edm heun 18" } do
    local r = by[name]
    if r then
      print(("%-14s %3d NFE: TV %.4f (%+.4f vs DDPM 1000; acceptance: <= +0.02)"):format(name, r.nfe, r.tv,
        r.tv - ref.tv))
    end
  end
end

-- ---- table and picture ----------------------------------------------------------------------------
local md = { "| sampler | NFE | TV (mode fractions) | modes | off-mode | MMD² (h = 0.1) | seconds |",
  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ("| fresh data | – | %.4f | %d/8 | %.2f%% | %.2e | – |"):format(ref_tv, ref_covered, 100 * ref_off, ref_mmd) }
for _, r in ipairs(rows) do
  md[#md + 1] = ("| %s | %d | %.4f | %d/8 | %.2f%% | %.2e | %.1f |"):format(r.name, r.nfe, r.tv, r.covered,
    100 * r.off, r.mmd, r.secs)
end
local f = assert(io.open(opts.out .. "/table.md", "w"))
f:write(("%d samples per sampler; model trained %d steps (%s).\n\n"):format(N, opts.steps,
  opts.quick and "--quick" or "full"), table.concat(md, "\n"), "\n")
f:close()

-- a grid of panels, six to a row
local size, pad_l, pad_t, cols = 220, 30, 22, 6
local nrows = (#panels + cols - 1) // cols
local cv = viz.canvas(cols * (size + pad_l + 8), nrows * (size + pad_t + 16) + 4)
local range = { -2.6, 2.6, -2.6, 2.6 }
for i, p in ipairs(panels) do
  local c, r = (i - 1) % cols, (i - 1) // cols
  local x0, y0 = c * (size + pad_l + 8) + pad_l, r * (size + pad_t + 16) + pad_t
  local ax = viz.axes(cv, x0, y0, x0 + size - 1, y0 + size - 1, range)
  ax:points(p.x, "red", 0.9, 0.5)
  ax:frame { title = p.title }
end
cv:save(opts.out .. "/panel.png")
print(("\nwrote %s/panel.png, table.md, loss.png (%.0fs in all)"):format(opts.out, sc.time() - t0))
