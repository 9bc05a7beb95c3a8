-- A VAE (Kingma & Welling 2014) on 2-D data with exact densities: a 2-D
-- latent, MLP encoder and decoder, a Gaussian decoder with learned variance.
-- Reports the test NLL bound by IWAE (Burda et al. 2016, K samples) and the
-- ELBO beside the data's entropy (the floor; −mean log p on the same test
-- points), per-mode mass and TV on mixtures, MMD against the real-vs-real
-- baseline, and the model's density (exp of the IWAE bound on a grid) beside
-- the truth.
--
--   bin/scorch examples/vae_2d.lua [--quick] [--data eight_gaussians,two_gaussians]
--
-- Options: --steps, --batch, --lr, --latent, --hidden, --layers, --k (IWAE
-- samples), --beta, --seed, --threads, --out.
--
-- Each data set's training is a run of the scorch.run runtime
-- (configs/vae_2d.lua with these options over it) in OUT/run-DATA-KEY,
-- KEY 8 hex digits naming the training options: config.lua,
-- metrics.jsonl, checkpoints, a Ctrl-C that checkpoints before it exits.
-- Running the script again with the same options resumes the runs
-- (finished ones go straight to the report); other options train in
-- folders of their own.
local sc = require "scorch"
local runtime = require "scorch.run"
local util = sc.util

local defaults = {
  data = "eight_gaussians,two_gaussians,checkerboard", out = "out/vae_2d", seed = 0, threads = 0,
  steps = 8000, batch = 512, lr = 1e-3, latent = 2, hidden = 128, layers = 3, k = 256, beta = 1.0,
  n_test = 5000, n_samples = 10000,
}
local opts = util.example_args(arg, { defaults = defaults, presets = { quick = { steps = 2000, k = 64 } },
  usage = "usage: scorch examples/vae_2d.lua [options]\n" })
local steps, batch, k = math.tointeger(opts.steps), math.tointeger(opts.batch), math.tointeger(opts.k)
assert(util.mkdir(opts.out))
local function out(name) return opts.out .. "/" .. name end

-- the IWAE bound per point, 500 points at a time (K·500 decoder calls each)
local function iwae_bound(vae, x, g)
  return sc.no_grad(function()
    return util.in_chunks(x:size(1), 500, function(first, m)
      local _, info = sc.losses.iwae(vae, x:narrow(1, first, m), { k = k, generator = g })
      return info.bound
    end)
  end)
end

local files, rows = {}, {}
local function save(path) if path then files[#files + 1] = path end end

for dname in opts.data:gmatch("[%w_]+") do
  -- the negative ELBO on fresh batches; Adam, its learning rate constant and then annealed
  -- linearly to 0 over the last 30% of the steps; a non-finite loss stops the run
  local int = math.tointeger
  local job = runtime.example.train { script = "examples/vae_2d.lua", config = "vae_2d", out = out("run-" .. dname),
    fields = {
      seed = int(opts.seed), threads = int(opts.threads), data = { name = dname },
      model = { latent = int(opts.latent), width = int(opts.hidden), layers = int(opts.layers) },
      objective = { beta = opts.beta + 0.0 }, optim = { lr = opts.lr + 0.0 }, batch = batch, steps = steps,
    } }
  local vae, data, losses = job.net, job.data.density, runtime.example.losses(job) -- the trained weights
  local train_s = runtime.example.seconds(job)

  local test = data:sample(math.tointeger(opts.n_test), { generator = sc.Generator(1000) })
  local test_nll = -iwae_bound(vae, test, sc.Generator(5))
  local _, info = sc.no_grad(function() return sc.losses.elbo(vae, test, { generator = sc.Generator(6) }) end)
  local t1 = sc.time()
  local x = vae:sample(math.tointeger(opts.n_samples), { generator = sc.Generator(7), mean = false })
  local sample_s = sc.time() - t1
  local row, real = sc.metrics.likelihood_row(data, test, test_nll, x,
    { bandwidth = 0.1 })
  row.data, row.nelbo, row.train_s, row.sample_s = dname, -info.elbo:mean():item(), train_s, sample_s
  local nll, ent = row.nll, row.ent
  rows[#rows + 1] = row

  save(sc.viz.density(out(dname .. "_truth.png"), data, { title = dname .. ": exact density", size = 320 }))
  save(sc.viz.density(out(dname .. "_vae.png"), function(p) return iwae_bound(vae, p, sc.Generator(3)) end,
    { range = data.range, resolution = 96, title = ("VAE: IWAE-%d NLL %.3f (H %.3f)"):format(k, nll, ent),
      size = 320 }))
  save(sc.viz.sample_panels(out(dname .. "_samples.png"),
    { { title = "data", x = real:narrow(1, 1, math.min(2000, real:size(1))) },
    { title = "VAE", x = x:narrow(1, 1, math.min(2000, x:size(1))) } }, { density = data, size = 320, radius = 1 }))
  save(sc.viz.loss_curve(out(dname .. "_neg_elbo.png"), losses, { title = ("%s: −ELBO, mean per %d steps"):format(
    dname, job.cfg.log.every), log = false }))
end

print(("\n%-16s %17s %10s %16s %8s %7s %10s %10s %8s %8s"):format("data", "IWAE NLL (nats)", "−ELBO",
  "entropy H", "TV", "modes", "MMD²", "real-real", "train", "sample"))
for _, r in ipairs(rows) do
  print(("%-16s %10.4f±%.4f %10.4f %9.4f±%.4f %8s %7s %10.2e %10.2e %7.1fs %7.2fs"):format(r.data, r.nll,
    r.nll_se, r.nelbo, r.ent, r.ent_se, r.tv and ("%.3f"):format(r.tv) or "-",
    r.modes and ("%d/%d"):format(r.covered, r.modes) or "-", r.mmd, r.base, r.train_s, r.sample_s))
end
print(("(IWAE with K = %d on %d test points; samples x ~ p(x|z), z ~ N(0, I), %d points; train: the steps'"
  .. " wall time from the run's log)"):format(k, math.tointeger(opts.n_test), math.tointeger(opts.n_samples)))
print("pictures: " .. table.concat(files, ", "))
