-- RealNVP (Dinh, Sohl-Dickstein & Bengio 2017) on Fashion-MNIST: the
-- multi-scale flow of sc.models.RealNVP (per scale 3 checkerboard couplings,
-- a squeeze, 3 channel-wise couplings and a split; 4 checkerboard couplings
-- at the last scale; ActNorm before every coupling; log-scales bounded by
-- b·tanh(h/b)) trained by maximum likelihood on uniformly dequantised pixels
-- u = (x + v)/256, v ~ U[0, 1) (Theis et al. 2016), seen through the logit
-- transform y = logit(α + (1 − 2α)u) with its Jacobian (Dinh et al. 2017,
-- §4.1, α = 0.05).  Reports the test bits/dim (the dequantised bound on the
-- 8-bit likelihood, one dequantisation draw per test image, on the test
-- split), then the report of sc.metrics.image_report on samples at
-- temperature 1 (FID, FID∞, KID, precision and recall, overall and per
-- class, against --ref-n training images in the Fashion-MNIST classifier's
-- feature space, beside the real-versus-real floor), as the other
-- Fashion-MNIST examples print it.  Writes sample grids at temperatures 1
-- and 0.7, the data, the loss curve (bits/dim per step) as PNG, the
-- weights and the samples.
--
--   bin/scorch examples/realnvp_fashion_mnist.lua --quick --threads 2   # 1,500 steps of 32, 32-channel
--                                                                     # couplings, 2,000 test images,
--                                                                     # 500 samples
--   bin/scorch examples/realnvp_fashion_mnist.lua --threads 2           # 2,000 steps of 32, 64-channel
--                                                                     # couplings, 10,000 test images,
--                                                                     # 1,000 samples
--
-- Measured at seed 0 on a machine shared with other jobs: quick, 2 min 51 s at --threads 1
-- (11 min 3 s while other jobs held the cores), 2 min 29 s at --threads 2, test 3.559 ± 0.020
-- bits/dim, FID 369.9 (500 samples; floor 17.4), precision 0.466, recall 0.111; full, 12 min
-- 35 s at --threads 1, test 3.4423 ± 0.0086 bits/dim (1,870.6 nats per image), FID 372.5
-- (1,000 samples; floor 7.6), precision 0.474, recall 0.126.  Temperature-1 samples are noisy:
-- a likelihood as good as the VAE's (examples/vae_fashion_mnist.lua) with a far worse FID, the
-- point of Theis et al. 2016.
--
-- Options: --out DIR (default out/realnvp_fashion_mnist), --steps, --batch,
-- --lr, --hidden (coupling channels), --scales, --bound (log-scale bound b),
-- --clip (gradient-norm clip, 0: none), --limit (training images), --test-n
-- (test images for bits/dim), --samples, --sample-batch, --ref-n (reference
-- images of the report), --seed, --threads.
local sc = require "scorch"
local flows = require "scorch.flows"
local util = sc.util

local NAME = "realnvp_fashion_mnist"
local defaults = {
  out = "out/realnvp_fashion_mnist", seed = 0, threads = 0,
  steps = 2000, batch = 32, lr = 1e-3, hidden = 64, scales = 2, bound = 1, clip = 100, limit = 60000,
  test_n = 10000, samples = 1000, sample_batch = 250, ref_n = 10000,
}
local opts = util.example_args(arg, { defaults = defaults,
  presets = { quick = { steps = 1500, hidden = 32, limit = 10000, test_n = 2000, samples = 500 } },
  usage = "usage: scorch examples/realnvp_fashion_mnist.lua [options]\nRealNVP on Fashion-MNIST.\n" })

-- A bad value: the message and status 2, as the option parser gives for a bad name.
local function bad(msg)
  io.stderr:write(("%s: %s\n"):format(NAME, msg))
  os.exit(2)
end
local function positive_int(key)
  local v = math.tointeger(opts[key])
  if not v or v < 1 then bad(("--%s must be a positive integer (got %s)"):format(key:gsub("_", "-"), opts[key])) end
  return v
end
local steps, batch, hidden, scales = positive_int("steps"), positive_int("batch"), positive_int("hidden"),
  positive_int("scales")
local limit, test_n, n_samples = positive_int("limit"), positive_int("test_n"), positive_int("samples")
local sample_batch, ref_n, seed = positive_int("sample_batch"), positive_int("ref_n"), math.tointeger(opts.seed)
if not seed then bad("--seed must be an integer (got " .. opts.seed .. ")") end
if not (opts.lr > 0) then bad("--lr must be positive (got " .. opts.lr .. ")") end
if not (opts.bound > 0) then bad("--bound must be positive (got " .. opts.bound .. ")") end
if not (opts.clip >= 0) then bad("--clip must be >= 0 (got " .. opts.clip .. ")") end
if 28 % (1 << (scales - 1)) ~= 0 or 28 // (1 << (scales - 1)) < 2 then
  bad(("--scales %d: 28 must be divisible by 2^(scales-1) (scales 1, 2 or 3)"):format(scales))
end
assert(util.mkdir(opts.out))
local function out(name) return opts.out .. "/" .. name end
local gen = sc.Generator(seed)

-- ---- data: 8-bit values 0..255 -------------------------------------------------------------

-- the loader returns x/255; back to the byte values the dequantisation expects
local function bytes(x) return sc.clamp(x * 255, 0, 255) end
local images = sc.data.fashion_mnist("train", { limit = limit })
local test_images = sc.data.fashion_mnist("test", { limit = test_n })
local names = sc.data.fashion_mnist_classes
local loader = sc.data.image_loader(images, { batch_size = math.min(batch, images:size(1)), shuffle = true,
  generator = gen, drop_last = true, scale = false }):forever()

-- ---- the flow and training: −log p(u) in bits/dim ------------------------------------------

local D = 28 * 28
local flow = sc.models.RealNVP { shape = { 1, 28, 28 }, scales = scales, hidden = hidden,
  log_scale_bound = opts.bound, generator = gen }
local n_params = 0
for _, p in ipairs(flow:parameters()) do n_params = n_params + p:numel() end
print(("%s: %d training images, RealNVP %d scales, %d couplings of %d channels (%d parameters), %d steps of %d")
  :format(NAME, images:size(1), scales, #flow.layers:children() // 2, hidden, n_params, steps, batch))

local params = flow:parameters()
local optimizer = sc.optim.Adam(params, { lr = opts.lr })
local losses = {}
local bar = util.progress(steps, { desc = "train" })
local t0 = sc.time()
for step = 1, steps do
  -- the loss is the mean bits/dim of the batch: −log p(u)/(D log 2) + 8
  local _, bpd = flows.image_log_prob(flow, bytes(loader()), { generator = gen })
  local loss = bpd:mean()
  optimizer:zero_grad()
  loss:backward()
  if opts.clip > 0 then sc.optim.clip_grad_norm(params, opts.clip) end
  optimizer:step()
  -- the learning rate falls linearly to 0 over the last 20% of the steps
  local frac = step / steps
  if frac > 0.8 then optimizer.lr = opts.lr * (1 - frac) / 0.2 + 1e-6 end
  losses[step] = loss:item()
  if losses[step] ~= losses[step] or losses[step] == math.huge then
    error(("%s: the loss is %s at step %d; try a smaller --lr or --clip"):format(NAME, losses[step], step))
  end
  bar:update { bpd = losses[step] }
end
bar:close()
local train_time = sc.time() - t0
local tail, from = 0, math.max(1, steps - 99)
for i = from, steps do tail = tail + losses[i] / (steps - from + 1) end
print(("trained in %.1f s (%.3f s/step); training bits/dim over the last %d steps %.4f"):format(train_time,
  train_time / steps, steps - from + 1, tail))
flow:eval()
local ckpt = out("realnvp.safetensors")
assert(sc.save(ckpt, flow:state_dict(), { model = "RealNVP", scales = tostring(scales), hidden = tostring(hidden),
  bound = tostring(opts.bound), steps = tostring(steps) }))
print("checkpoint: " .. ckpt)

-- ---- test bits/dim: one dequantisation draw per test image -----------------------------------

t0 = sc.time()
local test_gen = sc.Generator(seed + 4)
local test_bar = util.progress(test_images:size(1), { desc = "test" })
local test_bpd = sc.no_grad(function()
  return util.in_chunks(test_images:size(1), 250, function(first, m)
    local _, bpd = flows.image_log_prob(flow, bytes(test_images:narrow(1, first, m)), { generator = test_gen })
    test_bar:update(m)
    return bpd
  end)
end)
test_bar:close()
local bpd_mean = test_bpd:mean():item()
local bpd_se = math.sqrt(test_bpd:var():item() / test_bpd:size(1))
local test_time = sc.time() - t0
-- the same bound on −log P(x) of the 8-bit images in nats, bits/dim·D·ln 2, is the unit of
-- the VAE's NLL (examples/vae_fashion_mnist.lua)
print(("test bits/dim (dequantised, %d test images): %.4f ± %.4f   (NLL bound %.2f nats per image)")
  :format(test_bpd:size(1), bpd_mean, bpd_se, bpd_mean * D * math.log(2)))

-- ---- samples: z ~ N(0, T²I), x = f⁻¹(z), back through the logit ------------------------------

-- u = (k + v)/256 for byte k; the pixel's intensity k/255 at v = ½
local function to_images(y)
  local u = flows.logit_inverse(y)
  return sc.clamp((u * 256 - 0.5) / 255, 0, 1)
end
local function draw(n, temperature, g)
  return util.in_chunks(n, sample_batch, function(_, m)
    return to_images(flow:sample(m, { generator = g, temperature = temperature }))
  end)
end
t0 = sc.time()
local samples = draw(n_samples, 1, sc.Generator(seed + 2))
local sample_time = sc.time() - t0
local total = samples:sum():item()
if total ~= total then error(("%s: the samples hold NaN; try a smaller --lr or --bound"):format(NAME)) end
print(("sampled %d images in %.2f s (one inverse pass each)"):format(n_samples, sample_time))
assert(sc.save(out("samples.safetensors"), { images = samples }, { model = "realnvp", steps = tostring(steps) }))

-- ---- the report: FID, FID∞, KID, precision and recall, overall and per class ------------------

local files = {}
local function save(path, err)
  if path then files[#files + 1] = path else print("could not write a picture: " .. tostring(err)) end
end
local has_classifier, ext = pcall(sc.metrics.extractor, "fashion_mnist")
if has_classifier then
  t0 = sc.time()
  local rep = sc.metrics.image_report(samples, "fashion_mnist", { ref_n = ref_n,
    generator = sc.Generator(seed + 3) })
  local report_time = sc.time() - t0
  print()
  print(sc.metrics.format_report(rep, { reference = "train" }))
  print(("report in %.1f s"):format(report_time))
  local json = assert(sc.metrics.write_json(out("report.json"), sc.metrics.report_doc(rep, {
    example = NAME, quick = opts.quick, steps = steps, batch = batch, hidden = hidden, scales = scales,
    test_bits_per_dim = bpd_mean, test_bits_per_dim_se = bpd_se, test_n = test_bpd:size(1),
    train_seconds = train_time, sample_seconds = sample_time, seed = seed })))
  print("report: " .. json)
  save(sc.viz.class_histogram(out("classes.png"), names, rep.class_mix.frac,
    { reference = rep.ref_mix.frac, title = "realnvp samples by classifier" }))
else
  print("\nno Fashion-MNIST classifier (" .. tostring(ext):gsub("\n.*", "") .. ")")
  print("  train it with: bin/scorch scripts/train_classifier.lua --data fashion_mnist — report skipped")
end

-- ---- pictures ---------------------------------------------------------------------------------

local shown = math.min(n_samples, 100)
save(sc.viz.image_grid(out("samples.png"), samples:narrow(1, 1, shown), { nrow = 10,
  title = ("realnvp samples, T = 1 (%d of %d)"):format(shown, n_samples) }))
-- a lower temperature trades diversity for cleaner images (Kingma & Dhariwal 2018, §5)
save(sc.viz.image_grid(out("samples_t07.png"), draw(shown, 0.7, sc.Generator(seed + 5)), { nrow = 10,
  title = "realnvp samples, T = 0.7" }))
save(sc.viz.image_grid(out("data.png"), images:narrow(1, 1, math.min(shown, images:size(1))), { nrow = 10,
  title = "fashion-mnist" }))
save(sc.viz.loss_curve(out("loss.png"), losses, { log = false, title = "training bits/dim (dequantised)",
  xlabel = "step", ylabel = "bits/dim" }))
print(("time: training %.1f s, test bits/dim %.1f s, sampling %.1f s"):format(train_time, test_time, sample_time))
print("pictures: " .. table.concat(files, ", "))
