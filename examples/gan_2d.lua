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
local sc = require "scorch"
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
-- from 5e-5 for 2-D), Adam with β = (0, 0.9) and n_critic = 5 for WGAN-GP.
local function trainer(kind, G, D, gen)
  local o = { G = G, D = D, loss = kind, generator = gen, ema = 0.999 }
  if kind == "wgan" then
    o.opt_g = sc.optim.RMSprop(G:parameters(), { lr = 3e-4 })
    o.opt_d = sc.optim.RMSprop(D:parameters(), { lr = 3e-4 })
    o.clip = 0.05
  elseif kind == "wgan_gp" then
    o.opt_g = sc.optim.Adam(G:parameters(), { lr = 1e-4, betas = { 0, 0.9 } })
    o.opt_d = sc.optim.Adam(D:parameters(), { lr = 1e-4, betas = { 0, 0.9 } })
  else
    o.opt_g = sc.optim.Adam(G:parameters(), { lr = 2e-4, betas = { 0.5, 0.999 } })
    o.opt_d = sc.optim.Adam(D:parameters(), { lr = 2e-4, betas = { 0.5, 0.999 } })
  end
  return sc.models.gan.Trainer(o)
end

local files, summary = {}, {}
local function save(name, path)
  if path then files[#files + 1] = path else print("could not write " .. name) end
end

for _, dname in ipairs(datasets) do
  local data = sc.data.toy(dname)
  local gen = sc.Generator(math.tointeger(opts.seed))
  -- MMD bandwidth as in ncsn_2d.lua: 0.1 for the narrow modes of 8 Gaussians
  local mmd_h = dname == "two_gaussians" and nil or 0.1
  local real = data:sample(n_samples, { generator = gen })
  local baseline = sc.metrics.mmd_baseline(data, n_samples, { generator = gen, bandwidth = mmd_h, repeats = 2 })
  local panels = {}
  for _, kind in ipairs(kinds) do
    local G = sc.models.MLPGenerator { z_dim = 2, dim = 2, generator = gen }
    local D = sc.models.MLPDiscriminator { dim = 2, generator = gen }
    local tr = trainer(kind, G, D, gen)
    local curves = { loss_d = {}, loss_g = {} }
    local covered, mass = {}, {}
    local bar = util.progress(steps, { desc = dname .. " " .. kind })
    local t0 = sc.time()
    for step = 1, steps do
      local row = tr:step(function() return data:sample(batch, { generator = gen }) end)
      curves.loss_d[step], curves.loss_g[step] = row.loss_d, row.loss_g
      if step % eval_every == 0 or step == steps then
        local rep = sc.metrics.mode_report(tr:sample(2000), data)
        covered[#covered + 1] = rep.covered
        for k, f in ipairs(rep.fractions) do
          local key = ("mode %d"):format(k)
          mass[key] = mass[key] or {}
          mass[key][#mass[key] + 1] = f
        end
        bar:update { d = row.loss_d, g = row.loss_g, modes = rep.covered }
      else
        bar:update()
      end
    end
    bar:close()
    local secs = sc.time() - t0
    local x = tr:sample(n_samples)
    local rep = sc.metrics.mode_report(x, data)
    local mmd = sc.metrics.mmd(x, real, { bandwidth = mmd_h })
    local last = tr.history[#tr.history]
    summary[#summary + 1] = { data = dname, kind = kind, tv = rep.tv, covered = rep.covered, n = rep.n_modes,
      mmd = mmd, baseline = baseline, secs = secs, fractions = rep.fractions, w = last.wasserstein }
    panels[#panels + 1] = { title = kind, x = x }
    local tag = dname .. "_" .. kind
    save("losses", sc.viz.loss_curve(out(tag .. "_losses.png"), curves,
      { title = tag .. ": both losses", xlabel = "step" }))
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
