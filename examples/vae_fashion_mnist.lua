-- A convolutional VAE (Kingma & Welling 2014) on Fashion-MNIST with the
-- discretised-logistic decoder of sc.models.VAE (Salimans et al. 2017, §2.1:
-- each pixel's byte value gets the mass of a logistic on its bin, a proper
-- likelihood of the 8-bit data, so no dequantisation is needed).  Encoder:
-- two stride-2 3×3 convolutions and a linear layer to the mean and
-- log-variance of a diagonal Gaussian q(z|x); decoder: a linear layer and two
-- upsample + 3×3 convolutions to a mean and a log-scale per pixel.  Trained
-- on the negative ELBO (β = --beta).  Reports on the test split the ELBO and
-- the IWAE bound with K samples (Burda, Grosse & Salakhutdinov 2016, eq. 8),
-- the NLL estimate, in nats per image and bits/dim (nats/(784 ln 2)), then
-- the report of sc.metrics.image_report on prior samples (the decoder's
-- mean at z ~ N(0, I)): FID, FID∞, KID, precision and recall, overall and per
-- class, against --ref-n training images in the Fashion-MNIST classifier's
-- feature space, beside the real-versus-real floor.  Pictures: test images
-- above their reconstructions, prior samples, the test set's posterior means
-- on the two most active latent dimensions (largest mean KL) coloured by
-- class, and traversals of the eight most active dimensions from −3 to 3,
-- the loss curve.
--
--   bin/scorch examples/vae_fashion_mnist.lua --quick --threads 2   # 3,000 steps of 64, IWAE K = 32
--                                                                 # on 2,000 test images, 500 samples
--   bin/scorch examples/vae_fashion_mnist.lua --threads 2           # 10,000 steps of 64, IWAE K = 64
--                                                                 # on 10,000 test images, 1,000 samples
--
-- Measured at seed 0 on a machine shared with other jobs: quick, 1 min 56 s at --threads 1
-- (5 min 4 s while other jobs held the cores), 1 min 15 s at --threads 2, −ELBO 3.571 and
-- −IWAE (K = 32) 3.546 bits/dim (1,926.8 ± 11.9 nats), FID 245.1 (500 samples; floor 17.4),
-- precision 0.244, recall 0.747; full, 8 min 22 s at --threads 1, −ELBO 3.4840 and −IWAE
-- (K = 64) 3.4583 bits/dim (1,879.3 ± 5.3 nats), FID 205.0 (1,000 samples; floor 7.6),
-- precision 0.288, recall 0.733.
--
-- Options: --out DIR (default out/vae_fashion_mnist), --steps, --batch, --lr,
-- --latent, --channels (e.g. 32,64), --beta, --k (IWAE samples), --limit
-- (training images), --test-n (test images for the bounds), --samples,
-- --sample-batch, --ref-n (reference images of the report), --seed, --threads.
local sc = require "scorch"
local util = sc.util

local NAME = "vae_fashion_mnist"
local defaults = {
  out = "out/vae_fashion_mnist", seed = 0, threads = 0,
  steps = 10000, batch = 64, lr = 1e-3, latent = 16, channels = "32,64", beta = 1, k = 64, limit = 60000,
  test_n = 10000, samples = 1000, sample_batch = 250, ref_n = 10000,
}
local opts = util.example_args(arg, { defaults = defaults,
  presets = { quick = { steps = 3000, k = 32, limit = 20000, test_n = 2000, samples = 500 } },
  usage = "usage: scorch examples/vae_fashion_mnist.lua [options]\nA convolutional VAE on Fashion-MNIST.\n" })

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
local steps, batch, latent, k = positive_int("steps"), positive_int("batch"), positive_int("latent"), positive_int("k")
local limit, test_n, n_samples = positive_int("limit"), positive_int("test_n"), positive_int("samples")
local sample_batch, ref_n, seed = positive_int("sample_batch"), positive_int("ref_n"), math.tointeger(opts.seed)
if not seed then bad("--seed must be an integer (got " .. opts.seed .. ")") end
if not (opts.lr > 0) then bad("--lr must be positive (got " .. opts.lr .. ")") end
if not (opts.beta >= 0) then bad("--beta must be >= 0 (got " .. opts.beta .. ")") end
local channels = {}
for c in tostring(opts.channels):gmatch("[^,]+") do channels[#channels + 1] = math.tointeger(tonumber(c)) end
if #channels ~= 2 or not channels[1] or not channels[2] or channels[1] < 1 or channels[2] < 1 then
  bad(("--channels must be two positive integers, e.g. 32,64 (got %s)"):format(opts.channels))
end
assert(util.mkdir(opts.out))
local function out(name) return opts.out .. "/" .. name end
local gen = sc.Generator(seed)

-- ---- data: 8-bit values 0..255 -------------------------------------------------------------

-- the loader returns x/255; back to the byte values the decoder models
local function bytes(x) return sc.clamp(x * 255, 0, 255) end
local images = sc.data.fashion_mnist("train", { limit = limit })
local test_images, test_labels = sc.data.fashion_mnist("test", { limit = test_n })
local names = sc.data.fashion_mnist_classes
local loader = sc.data.image_loader(images, { batch_size = math.min(batch, images:size(1)), shuffle = true,
  generator = gen, drop_last = true, scale = false }):forever()
local D = 28 * 28

-- ---- the model and training: the negative ELBO in bits/dim -----------------------------------

local vae = sc.models.VAE { shape = { 1, 28, 28 }, arch = "conv", channels = channels, latent = latent,
  likelihood = "logistic", generator = gen }
local n_params = 0
for _, p in ipairs(vae:parameters()) do n_params = n_params + p:numel() end
print(("%s: %d training images, conv VAE channels {%d,%d}, latent %d, discretised logistic (%d parameters), "
  .. "%d steps of %d, beta %g"):format(NAME, images:size(1), channels[1], channels[2], latent, n_params, steps, batch,
  opts.beta))

local optimizer = sc.optim.Adam(vae, { lr = opts.lr })
local losses = {}
local bar = util.progress(steps, { desc = "train" })
local t0 = sc.time()
for step = 1, steps do
  local loss = sc.losses.elbo(vae, bytes(loader()), { beta = opts.beta, unit = "bits_per_dim", generator = gen })
  optimizer:zero_grad()
  loss:backward()
  optimizer:step()
  -- the learning rate falls linearly to 0 over the last 20% of the steps
  local frac = step / steps
  if frac > 0.8 then optimizer.lr = opts.lr * (1 - frac) / 0.2 + 1e-6 end
  losses[step] = loss:item()
  if losses[step] ~= losses[step] or losses[step] == math.huge then
    error(("%s: the loss is %s at step %d; try a smaller --lr"):format(NAME, losses[step], step))
  end
  bar:update { bpd = losses[step] }
end
bar:close()
local train_time = sc.time() - t0
local tail, from = 0, math.max(1, steps - 99)
for i = from, steps do tail = tail + losses[i] / (steps - from + 1) end
print(("trained in %.1f s (%.3f s/step); training −ELBO over the last %d steps %.4f bits/dim"):format(train_time,
  train_time / steps, steps - from + 1, tail))
vae:eval()
local ckpt = out("vae.safetensors")
assert(sc.save(ckpt, vae:state_dict(), { model = "VAE", arch = "conv", likelihood = "logistic",
  channels = table.concat(channels, ","), latent = tostring(latent), steps = tostring(steps) }))
print("checkpoint: " .. ckpt)

-- ---- test bounds: the ELBO and the IWAE bound, per image ----------------------------------------

t0 = sc.time()
local n_test = test_images:size(1)
local elbo_gen, iwae_gen = sc.Generator(seed + 4), sc.Generator(seed + 5)
local chunk = math.max(1, 2048 // k)
local elbo, iwae = sc.no_grad(function()
  local e = util.in_chunks(n_test, 250, function(first, m)
    local _, info = sc.losses.elbo(vae, bytes(test_images:narrow(1, first, m)), { generator = elbo_gen })
    return info.elbo
  end)
  -- K decoder passes per image: the long part of the evaluation
  local iwae_bar = util.progress(n_test, { desc = "iwae" })
  local b = util.in_chunks(n_test, chunk, function(first, m)
    local _, info = sc.losses.iwae(vae, bytes(test_images:narrow(1, first, m)), { k = k, generator = iwae_gen })
    iwae_bar:update(m)
    return info.bound
  end)
  iwae_bar:close()
  return e, b
end)
local test_time = sc.time() - t0
local function stats(t)
  local nll = -t:mean():item()
  return nll, math.sqrt(t:var():item() / t:size(1)), nll / (D * math.log(2))
end
local elbo_nll, elbo_se, elbo_bpd = stats(elbo)
local iwae_nll, iwae_se, iwae_bpd = stats(iwae)
print(("test bounds on %d test images:"):format(n_test))
print(("  −ELBO              %9.2f ± %.2f nats   %.4f bits/dim"):format(elbo_nll, elbo_se, elbo_bpd))
print(("  −IWAE (K = %4d)   %9.2f ± %.2f nats   %.4f bits/dim   (the NLL estimate)"):format(k, iwae_nll, iwae_se,
  iwae_bpd))

-- ---- prior samples: the decoder's mean at z ~ N(0, I) -------------------------------------------

t0 = sc.time()
local sample_gen = sc.Generator(seed + 2)
local samples = util.in_chunks(n_samples, sample_batch, function(_, m)
  return vae:sample(m, { generator = sample_gen }) / 255
end)
local sample_time = sc.time() - t0
print(("sampled %d images in %.2f s (one decoder call each)"):format(n_samples, sample_time))
assert(sc.save(out("samples.safetensors"), { images = samples }, { model = "vae", steps = tostring(steps) }))

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
    example = NAME, quick = opts.quick, steps = steps, batch = batch, latent = latent, beta = opts.beta,
    k = k, test_n = n_test, test_elbo_nats = elbo_nll, test_iwae_nats = iwae_nll, test_elbo_bits_per_dim = elbo_bpd,
    test_iwae_bits_per_dim = iwae_bpd, train_seconds = train_time, sample_seconds = sample_time, seed = seed })))
  print("report: " .. json)
  save(sc.viz.class_histogram(out("classes.png"), names, rep.class_mix.frac,
    { reference = rep.ref_mix.frac, title = "vae prior samples by classifier" }))
else
  print("\nno Fashion-MNIST classifier (" .. tostring(ext):gsub("\n.*", "") .. ")")
  print("  train it with: bin/scorch scripts/train_classifier.lua --data fashion_mnist — report skipped")
end

-- ---- pictures ---------------------------------------------------------------------------------

local shown = math.min(n_samples, 100)
save(sc.viz.image_grid(out("samples.png"), samples:narrow(1, 1, shown), { nrow = 10,
  title = ("vae prior samples, decoder mean (%d of %d)"):format(shown, n_samples) }))

-- reconstructions: rows of ten test images, each row above its reconstructions
local n_rec = math.min(30, n_test)
local originals = test_images:narrow(1, 1, n_rec)
local recon = vae:reconstruct(bytes(originals)) / 255
local rows = {}
for first = 1, n_rec, 10 do
  local m = math.min(10, n_rec - first + 1)
  rows[#rows + 1] = originals:narrow(1, first, m)
  rows[#rows + 1] = recon:narrow(1, first, m)
end
save(sc.viz.image_grid(out("reconstructions.png"), sc.cat(rows, 1), { nrow = 10,
  title = "test images (odd rows) and reconstructions (even rows)" }))

-- the most active latent dimensions: mean KL per dimension over the test images
local mu = sc.no_grad(function()
  return util.in_chunks(n_test, 250, function(first, m)
    local mu_c, logvar_c = vae:encode(bytes(test_images:narrow(1, first, m)))
    return sc.cat({ mu_c, logvar_c }, 2)
  end)
end)
local logvar = mu:narrow(2, latent + 1, latent)
mu = mu:narrow(2, 1, latent)
local kl_dim = ((mu:square() + logvar:exp() - 1 - logvar) * 0.5):mean(1):totable()
local order = {}
for i = 1, latent do order[i] = i end
table.sort(order, function(a, b) return kl_dim[a] > kl_dim[b] end)
print(("mean KL per latent dimension (nats), most active first: %s"):format(table.concat((function()
  local s = {}
  for i = 1, math.min(latent, 8) do s[i] = ("z%d %.2f"):format(order[i], kl_dim[order[i]]) end
  return s
end)(), ", ")))

-- scatter of the posterior means on the two most active dimensions, one colour per class
if latent >= 2 then
  local a, b = order[1], order[2]
  local pts = mu:index_select(2, { a, b }):totable()
  local labels = test_labels:totable()
  local lim = 0
  for _, p in ipairs(pts) do lim = math.max(lim, math.abs(p[1]), math.abs(p[2])) end
  lim = math.min(math.max(lim, 1), 5) * 1.05
  local cycle = require("scorch.viz.canvas").cycle -- the plots' own colour cycle, one colour per class
  local size, left, top, legend_w = 420, 60, 26, 120
  local cv = sc.viz.canvas(left + size + 16 + legend_w, top + size + 38)
  local ax = sc.viz.axes(cv, left, top, left + size - 1, top + size - 1, { -lim, lim, -lim, lim })
  for c = 1, #names do
    local sel = {}
    for i, p in ipairs(pts) do if labels[i] == c then sel[#sel + 1] = p end end
    ax:points(sel, cycle[c], 1.6, 0.6)
  end
  ax:frame { title = ("posterior means of %d test images"):format(n_test), xlabel = ("z%d"):format(a),
    ylabel = ("z%d"):format(b) }
  for c, name in ipairs(names) do
    local y = top + 8 + (c - 1) * 18
    cv:fill_rect(left + size + 16, y, left + size + 26, y + 10, cycle[c])
    cv:text(left + size + 32, y - 2, name, "black")
  end
  save(cv:save(out("latent_scatter.png")))
end

-- traversals: from the first test image's posterior mean, one active dimension at a time from −3 to 3
local n_trav, n_steps = math.min(8, latent), 11
local base = mu:narrow(1, 1, 1)
local zs = {}
for r = 1, n_trav do
  for j = 1, n_steps do
    local z = base:clone()
    z:narrow(2, order[r], 1):fill_(-3 + 6 * (j - 1) / (n_steps - 1))
    zs[#zs + 1] = z
  end
end
local traversal = sc.no_grad(function() return vae:mean(vae:decode(sc.cat(zs, 1))) end) / 255
save(sc.viz.image_grid(out("traversals.png"), traversal, { nrow = n_steps,
  title = ("latent traversals, z from −3 to 3: rows z%s"):format(table.concat({ table.unpack(order, 1, n_trav) },
    ", z")) }))
save(sc.viz.loss_curve(out("loss.png"), losses, { log = false, title = "training −ELBO (bits/dim)",
  xlabel = "step", ylabel = "bits/dim" }))
print(("time: training %.1f s, test bounds %.1f s, sampling %.1f s"):format(train_time, test_time, sample_time))
print("pictures: " .. table.concat(files, ", "))
