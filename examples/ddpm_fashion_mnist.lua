-- DDPM on Fashion-MNIST (Ho, Jain & Abbeel 2020): a U-Net trained to predict
-- the noise ε of x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε, then ancestral sampling on a
-- respaced subset of the timesteps.  Writes checkpoints, a sample grid, a
-- denoising strip, the samples (samples.safetensors, pixels in [0, 1]) and,
-- when the Fashion-MNIST classifier is trained, the report of
-- sc.metrics.image_report: FID, FID∞, KID, precision and recall (k = 3),
-- overall and per class, against 10,000 training images in the
-- classifier's feature space, beside the real-versus-real floor (as many
-- test images as samples).  The table is printed and written to
-- report.json; numbers name the extractor (data set + weight hash) and
-- the sample counts, and are comparable only between equal counts.
--
--   bin/scorch examples/ddpm_fashion_mnist.lua --quick    # a few minutes, rough samples, 500 of them
--   bin/scorch examples/ddpm_fashion_mnist.lua            # about an hour at 1 thread: 3,000 steps
--                                                       # of 64, a wider U-Net, 1,000 samples
--
-- Options: --out DIR (default out/ddpm_fashion_mnist), --steps, --batch, --lr,
-- --channels, --mults (e.g. 1,2,2), --blocks, --T (training timesteps),
-- --sample-steps, --samples, --limit (training images), --ema,
-- --sample-batch (images sampled at once), --save-every (checkpoint period
-- in steps), --seed, --threads.
local sc = require "scorch"
local util = sc.util

-- The defaults are the full run: a larger U-Net, longer.
local defaults = {
  out = "out/ddpm_fashion_mnist", seed = 0, threads = 0,
  steps = 3000, batch = 64, lr = 2e-3, channels = 24, mults = "1,2,2", blocks = 1, T = 1000,
  sample_steps = 100, samples = 1000, limit = 60000, ema = 0.999, save_every = 0, strip = 8, sample_batch = 250,
}
-- quick: a small U-Net briefly trained, with a short EMA window (a long one
-- would average in the first, poor weights)
local opts = util.example_args(arg, { defaults = defaults,
  presets = { quick = { steps = 700, batch = 32, channels = 16, sample_steps = 50, samples = 500,
    limit = 10000, ema = 0.99 } },
  usage = "usage: scorch examples/ddpm_fashion_mnist.lua [options]\n" })
local function int(v) return math.tointeger(v) or error("expected an integer, got " .. tostring(v)) end
local steps, batch, n_samples = int(opts.steps), int(opts.batch), int(opts.samples)
local mults = {}
for m in tostring(opts.mults):gmatch("[^,]+") do mults[#mults + 1] = int(tonumber(m)) end
assert(util.mkdir(opts.out))
local function out(name) return opts.out .. "/" .. name end
local gen = sc.Generator(int(opts.seed))

-- ---- data ----------------------------------------------------------------------------------

local images = sc.data.fashion_mnist("train", { limit = int(opts.limit) })
local names = sc.data.fashion_mnist_classes
local loader = sc.data.image_loader(images, { batch_size = batch, shuffle = true, generator = gen,
  drop_last = true, dequantize = true }):forever()

-- ---- model and training: L_simple (Ho et al. 2020, eq. 14) ------------------------------------

local sched = sc.schedules.ddpm { kind = "linear", T = int(opts.T) }
local attention = {}
for i = 1, #mults do attention[i] = false end
local net_opts = { channels = int(opts.channels), mults = mults, attention = attention, blocks = int(opts.blocks),
  mid_attention = false, out = "eps", cond = "t", generator = gen }
local net = sc.models.UNet(net_opts)
local n_params = 0
for _, p in ipairs(net:parameters()) do n_params = n_params + p:numel() end
print(("ddpm_fashion_mnist: %d training images, U-Net channels %d mults {%s} (%d parameters), %d steps of batch %d")
  :format(images:size(1), net_opts.channels, table.concat(mults, ","), n_params, steps, batch))

local optimizer = sc.optim.Adam(net, { lr = opts.lr })
local ema = sc.optim.EMA(net, { decay = opts.ema })
local meta = { model = "UNet", channels = tostring(net_opts.channels), mults = table.concat(mults, ","),
  blocks = tostring(net_opts.blocks), T = tostring(sched.T), schedule = "linear", prediction = "eps" }
local function checkpoint(name, step)
  local sd = {}
  for k, v in pairs(net:state_dict()) do sd["model." .. k] = v end
  ema:store(net)
  ema:copy_to(net)
  for k, v in pairs(net:state_dict()) do sd["ema." .. k] = v:clone() end
  ema:restore(net)
  meta.step = tostring(step)
  local path = out(name)
  assert(sc.save(path, sd, meta))
  return path
end

local losses = {}
local bar = util.progress(steps, { desc = "train" })
local t0 = sc.time()
for step = 1, steps do
  local x0 = loader()
  local loss = sc.losses.ddpm(net, x0, { schedule = sched, generator = gen })
  optimizer:zero_grad()
  loss:backward()
  optimizer:step()
  ema:update()
  local frac = step / steps
  if frac > 0.8 then optimizer.lr = opts.lr * (1 - frac) / 0.2 + 1e-6 end
  losses[step] = loss:item()
  bar:update { loss = losses[step] }
  if opts.save_every > 0 and step % int(opts.save_every) == 0 and step < steps then
    checkpoint(("ddpm_step%d.safetensors"):format(step), step)
  end
end
bar:close()
local train_time = sc.time() - t0
local ckpt = checkpoint("ddpm.safetensors", steps)
local tail = 0
for i = math.max(1, steps - 49), steps do tail = tail + losses[i] / (steps - math.max(1, steps - 49) + 1) end
print(("trained in %.1f s (%.2f s/step, %.1f images/s), loss over the last 50 steps %.4f"):format(train_time,
  train_time / steps, steps * batch / train_time, tail))
print("checkpoint (raw and EMA weights): " .. ckpt)

-- ---- sampling: ancestral DDPM steps on a respaced schedule (Ho et al. 2020, Alg. 2) ----------

ema:copy_to(net)
net:eval()
local k_strip = math.min(int(opts.strip), n_samples, int(opts.sample_batch))
local sample_steps = int(opts.sample_steps)
local frames, frame_labels = {}, {}
local record_every = math.max(1, sample_steps // 7)
t0 = sc.time()
local x_init = sc.randn({ n_samples, 1, 28, 28 }, { generator = sc.Generator(int(opts.seed) + 2) })
frames[1], frame_labels[1] = x_init:narrow(1, 1, k_strip), ("t=%d"):format(sched.T)
-- sample in chunks of --sample-batch so memory stays bounded; one generator
-- runs through all chunks, so a seed gives the same images every run
local sample_gen = sc.Generator(int(opts.seed) + 1)
local eps_model = sc.param.wrap(net, { kind = "eps", process = sched })
local samples, info = util.in_chunks(n_samples, int(opts.sample_batch), function(first, m)
  return sc.samplers.ddpm(eps_model, x_init:narrow(1, first, m), sched, {
    steps = sample_steps, generator = sample_gen, clip_x0 = true,
    callback = first == 1 and function(s)
      if s.i % record_every == 0 or s.i == sample_steps then
        frames[#frames + 1] = s.x:narrow(1, 1, k_strip)
        frame_labels[#frame_labels + 1] = s.i == sample_steps and "x0" or ("t=%d"):format(s.from)
      end
    end or nil,
  })
end)
local sample_time = sc.time() - t0
samples = sc.clamp(samples, -1, 1)
print(("sampled %d images with %d DDPM steps in %.1f s: %.2f samples/s (%d network evaluations)"):format(
  n_samples, sample_steps, sample_time, n_samples / sample_time, info and info.nfe or sample_steps))

-- ---- the report: FID, FID∞, KID, precision and recall, overall and per class ------------------

-- against Fashion-MNIST's reference statistics (10,000 training images in the
-- classifier's feature space), beside the real-versus-real floor (as many
-- test images as samples); written as JSON beside the pictures
local samples01 = (samples + 1) / 2
assert(sc.save(out("samples.safetensors"), { images = samples01 }, { model = "ddpm", steps = tostring(steps) }))
local has_classifier, ext = pcall(sc.metrics.extractor, "fashion_mnist")
if has_classifier then
  t0 = sc.time()
  -- the floor: the first n test images, through the same report (per class too)
  local rep = sc.metrics.image_report(samples01, "fashion_mnist", { generator = sc.Generator(int(opts.seed) + 3) })
  local report_time = sc.time() - t0
  print()
  print(sc.metrics.format_report(rep, { reference = "train" }))
  print(("report in %.1f s"):format(report_time))
  local json = assert(sc.metrics.write_json(out("report.json"), sc.metrics.report_doc(rep, {
    example = "ddpm_fashion_mnist", quick = opts.quick, steps = steps, batch = batch, sample_steps = sample_steps,
    nfe = info and info.nfe, train_seconds = train_time, sample_seconds = sample_time, seed = int(opts.seed) })))
  print("report: " .. json)
  sc.viz.class_histogram(out("classes.png"), names, rep.class_mix.frac,
    { reference = rep.ref_mix.frac, title = "ddpm samples by classifier" })
else
  print("\nno Fashion-MNIST classifier (" .. tostring(ext):gsub("\n.*", "") .. ")")
  print("  train it with: bin/scorch scripts/train_classifier.lua --data fashion_mnist — report skipped")
end

-- ---- pictures ---------------------------------------------------------------------------------

local files = {}
local function save(path, err)
  if path then files[#files + 1] = path else print("could not write a picture: " .. tostring(err)) end
end
-- the grids show the first 100 images at most, ten to a row
local shown = math.min(n_samples, 100)
save(sc.viz.image_grid(out("samples.png"), samples:narrow(1, 1, shown), { nrow = 10, range = { -1, 1 },
  title = ("ddpm samples (%d of %d)"):format(shown, n_samples) }))
save(sc.viz.image_grid(out("data.png"), images:narrow(1, 1, shown), { nrow = 10,
  title = "fashion-mnist" }))
save(sc.viz.denoising_strip(out("denoising.png"), frames, { labels = frame_labels, title = "ddpm x_t",
  range = { -1, 1 } }))
save(sc.viz.loss_curve(out("loss.png"), losses, { title = "l_simple" }))
if has_classifier then files[#files + 1] = out("classes.png") end
print("pictures: " .. table.concat(files, ", "))
