-- WGAN-GP on Fashion-MNIST (Gulrajani et al. 2017, Algorithm 1): the
-- DCGAN-style generator and critic of sc.models (WORKLOADS.md W10), Adam
-- with lr 1e-4 and β = (0, 0.9), n_critic = 5 critic updates per generator
-- update, penalty weight λ = 10, as in the paper; an EMA of the generator's
-- weights makes the samples.  Grids of the EMA generator at fixed noise are
-- written at --grids points during training (grid_stepN.png), then the
-- report of sc.metrics.image_report, printed as the diffusion examples
-- print theirs: FID, FID∞, KID, precision and recall (k = 3), overall and
-- per class, against --ref-n training images in the Fashion-MNIST
-- classifier's feature space, beside the real-versus-real floor (as many
-- test images as samples).  With the same sample count the numbers stand
-- beside examples/ddpm_fashion_mnist.lua's: the GAN/diffusion trade-off
-- between precision and recall is the point.
--
--   bin/scorch examples/gan_fashion_mnist.lua --quick --threads 2   # 1,500 steps, 500 samples: 4 min 23 s
--                                                                  # at --threads 1 (shared machine)
--   bin/scorch examples/gan_fashion_mnist.lua --threads 2           # 10,000 steps, 1,000 samples: 31 min
--                                                                  # at --threads 1 (shared machine)
--
-- Options: --out DIR (default out/gan_fashion_mnist), --steps (generator
-- updates), --batch, --lr, --n-critic, --gp-weight, --z-dim, --g-channels,
-- --d-channels, --ema (decay), --grids (training grids), --samples,
-- --sample-batch, --limit (training images), --ref-n (reference images of
-- the report), --seed, --threads.
local sc = require "scorch"
local util = sc.util

local defaults = {
  out = "out/gan_fashion_mnist", seed = 0, threads = 0,
  steps = 10000, batch = 64, lr = 1e-4, n_critic = 5, gp_weight = 10, z_dim = 64, g_channels = 64,
  d_channels = 32, ema = 0.999, grids = 5, samples = 1000, sample_batch = 250, limit = 60000, ref_n = 10000,
}
-- quick: a short run; its EMA window is short too, since a long one would
-- average in the first, poor weights
local opts = util.example_args(arg, { defaults = defaults,
  presets = { quick = { steps = 1500, samples = 500, limit = 10000, ema = 0.99 } },
  usage = "usage: scorch examples/gan_fashion_mnist.lua [options]\nWGAN-GP on Fashion-MNIST.\n" })
local function int(v) return math.tointeger(v) or error("expected an integer, got " .. tostring(v)) end
local steps, batch, n_samples = int(opts.steps), int(opts.batch), int(opts.samples)
assert(util.mkdir(opts.out))
local function out(name) return opts.out .. "/" .. name end
local gen = sc.Generator(int(opts.seed))

-- ---- data and networks ---------------------------------------------------------------------

local images = sc.data.fashion_mnist("train", { limit = int(opts.limit) })
local names = sc.data.fashion_mnist_classes
-- batches in [−1, 1], the range of the generator's tanh
local loader = sc.data.image_loader(images, { batch_size = batch, shuffle = true, generator = gen,
  drop_last = true }):forever()
local G = sc.models.DCGenerator { z_dim = int(opts.z_dim), channels = int(opts.g_channels), generator = gen }
local D = sc.models.DCCritic { channels = int(opts.d_channels), generator = gen }
local function count(net)
  local n = 0
  for _, p in ipairs(net:parameters()) do n = n + p:numel() end
  return n
end
print(("gan_fashion_mnist: %d training images, generator %d parameters, critic %d, %d steps (n_critic %d) of %d")
  :format(images:size(1), count(G), count(D), steps, int(opts.n_critic), batch))

-- ---- training: WGAN-GP (Gulrajani et al. 2017, Algorithm 1) ----------------------------------

local adam = { lr = opts.lr, betas = { 0, 0.9 } }
local tr = sc.models.gan.Trainer { G = G, D = D, loss = "wgan_gp", n_critic = int(opts.n_critic),
  gp_weight = opts.gp_weight, ema = opts.ema, generator = gen,
  opt_g = sc.optim.Adam(G:parameters(), adam), opt_d = sc.optim.Adam(D:parameters(), adam) }

-- The EMA generator at noise z, without gradients; the training weights are
-- put back even when the call fails.
local function ema_images(z)
  return tr.ema:with_average(G, function() return sc.no_grad(function() return G(z) end) end)
end

local files = {}
local function save(path, err)
  if path then files[#files + 1] = path else print("could not write a picture: " .. tostring(err)) end
end
-- the grids' noise is a stream of its own, so writing them leaves training untouched
local z_grid = sc.randn({ 100, G.z_dim }, { generator = sc.Generator(int(opts.seed) + 1) })
local n_grids = math.max(int(opts.grids), 1)
local grid_at = {}
for k = 1, n_grids do grid_at[math.max(1, (steps * k) // n_grids)] = true end

local wasserstein, penalty = {}, {}
local bar = util.progress(steps, { desc = "train" })
local t0 = sc.time()
for step = 1, steps do
  local row = tr:step(loader)
  wasserstein[step], penalty[step] = row.wasserstein, row.gp
  bar:update { W = row.wasserstein, gp = row.gp }
  if grid_at[step] then
    save(sc.viz.image_grid(out(("grid_step%d.png"):format(step)), ema_images(z_grid),
      { nrow = 10, range = { -1, 1 }, title = ("wgan-gp, EMA generator, step %d"):format(step) }))
  end
end
bar:close()
local train_time = sc.time() - t0
local tail, from = 0, math.max(1, steps - 99)
for i = from, steps do tail = tail + wasserstein[i] / (steps - from + 1) end
print(("trained in %.1f s (%.3f s/step); critic's Wasserstein estimate over the last %d steps %.4f")
  :format(train_time, train_time / steps, steps - from + 1, tail))

local sd = {}
for k, v in pairs(G:state_dict()) do sd["G." .. k] = v end
for k, v in pairs(D:state_dict()) do sd["D." .. k] = v end
tr.ema:with_average(G, function()
  for k, v in pairs(G:state_dict()) do sd["ema.G." .. k] = v:clone() end
end)
local ckpt = out("gan.safetensors")
assert(sc.save(ckpt, sd, { model = "DCGenerator+DCCritic", loss = "wgan_gp", step = tostring(steps),
  z_dim = tostring(G.z_dim), g_channels = tostring(G.channels), d_channels = tostring(D.channels) }))
print("checkpoint (generator, critic, EMA generator): " .. ckpt)

-- ---- samples: the EMA generator, one noise stream through every chunk ---------------------------

local sample_gen = sc.Generator(int(opts.seed) + 2)
t0 = sc.time()
local samples = util.in_chunks(n_samples, int(opts.sample_batch), function(_, m)
  return ema_images(sc.randn({ m, G.z_dim }, { generator = sample_gen }))
end)
local sample_time = sc.time() - t0
print(("sampled %d images in %.2f s (one generator call each)"):format(n_samples, sample_time))
local samples01 = (sc.clamp(samples, -1, 1) + 1) / 2
assert(sc.save(out("samples.safetensors"), { images = samples01 }, { model = "wgan_gp", steps = tostring(steps) }))

-- ---- the report: FID, FID∞, KID, precision and recall, overall and per class ------------------

local has_classifier, ext = pcall(sc.metrics.extractor, "fashion_mnist")
if has_classifier then
  t0 = sc.time()
  -- the floor: the first n test images, through the same report (per class too)
  local rep = sc.metrics.image_report(samples01, "fashion_mnist", { ref_n = int(opts.ref_n),
    generator = sc.Generator(int(opts.seed) + 3) })
  local report_time = sc.time() - t0
  print()
  print(sc.metrics.format_report(rep, { reference = "train" }))
  print(("report in %.1f s"):format(report_time))
  local json = assert(sc.metrics.write_json(out("report.json"), sc.metrics.report_doc(rep, {
    example = "gan_fashion_mnist", quick = opts.quick, steps = steps, batch = batch, n_critic = int(opts.n_critic),
    gp_weight = opts.gp_weight, ema = opts.ema, train_seconds = train_time, sample_seconds = sample_time,
    seed = int(opts.seed) })))
  print("report: " .. json)
  save(sc.viz.class_histogram(out("classes.png"), names, rep.class_mix.frac,
    { reference = rep.ref_mix.frac, title = "wgan-gp samples by classifier" }))
else
  print("\nno Fashion-MNIST classifier (" .. tostring(ext):gsub("\n.*", "") .. ")")
  print("  train it with: bin/scorch scripts/train_classifier.lua --data fashion_mnist — report skipped")
end

-- ---- pictures ---------------------------------------------------------------------------------

local shown = math.min(n_samples, 100)
save(sc.viz.image_grid(out("samples.png"), samples:narrow(1, 1, shown), { nrow = 10, range = { -1, 1 },
  title = ("wgan-gp samples (%d of %d)"):format(shown, n_samples) }))
save(sc.viz.image_grid(out("data.png"), images:narrow(1, 1, math.min(shown, images:size(1))), { nrow = 10,
  title = "fashion-mnist" }))
save(sc.viz.loss_curve(out("wasserstein.png"), { wasserstein = wasserstein, penalty = penalty },
  { log = false, smooth = 0.3, title = "critic: E D(x) − E D(G(z)) and the gradient penalty", xlabel = "step",
    ylabel = "critic" }))
print(("time: training %.1f s, sampling %.1f s"):format(train_time, sample_time))
print("pictures: " .. table.concat(files, ", "))
