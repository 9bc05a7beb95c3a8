-- NCSN on images (Song & Ermon 2019): a noise-conditional score network
-- trained with denoising score matching over geometric noise levels on an
-- imbalanced mix of synthetic shapes, sampled with annealed Langevin
-- dynamics and a final denoising step.  The question of the course poster:
-- do the samples keep the training mix of classes, and are the rare classes
-- drawn as well as the common ones?
--
--   bin/scorch examples/ncsn_shapes.lua --quick --threads 2   # about 7 minutes
--   bin/scorch examples/ncsn_shapes.lua --threads 2           # 16,000 steps, 1,000 samples
--
-- (On a busy machine use --threads 1: see README.md, "Threads".)  Another class mix:
--   bin/scorch examples/ncsn_shapes.lua --quick --weights 0.25,0.25,0.25,0.25
--
-- Options: --out DIR (default out/ncsn_shapes), --weights (class mix over
-- square, circle, rings, triangle), --steps, --batch, --lr, --channels,
-- --blocks, --levels, --sigma-max, --sigma-min, --T (Langevin steps per
-- level), --samples, --train-size, --threshold (classifier confidence of a
-- "clean" shape), --ema, --seed, --threads, --precond (ncsn | edm: how the
-- network's output becomes a score, see scorch.models.NCSN), --weighting
-- (sigma2 | balanced: λ(σ) of the loss), --mid-frac (share of training levels
-- drawn from a bump on ln σ, 0 = uniform), --mid-sigma (the bump's centre),
-- --load (a saved network: sample
-- only; give the same --channels, --blocks, --precond and noise levels).
-- Class statistics need the shapes classifier (bin/scorch
-- scripts/train_classifier.lua --data shapes); without it the script reports
-- the rest.  A sample counts as a clean shape when the classifier is
-- confident and it is as near the training set as 95% of real images.
-- With the classifier the script also reports FID, FID∞, KID, precision and
-- recall (k = 3) in its feature space, overall and per class, against the
-- training pool, beside the real-versus-real floor (a held-out real set of
-- the sample count, same mix, another seed), answers the poster's question
-- for the rarest class (lost: low recall or share; smeared: low precision)
-- and writes it all to OUT/report.json.
local sc = require "scorch"
local util = sc.util

-- The defaults are the full run.  σ_max = 39 is the largest distance between
-- two training images (Song & Ermon 2020, Technique 1: 12 gave fragments and
-- too many circles) and 50 levels keep neighbouring noise distributions
-- overlapping.
local defaults = {
  out = "out/ncsn_shapes", seed = 0, threads = 0,
  weights = "0.4,0.3,0.2,0.1", steps = 16000, batch = 32, lr = 2e-3, channels = 16, blocks = 1,
  levels = 50, sigma_max = 39, sigma_min = 0.02, T = 8, samples = 1000, train_size = 10000,
  threshold = 0.9, ema = 0.999, strip = 8, load = "", precond = "ncsn", weighting = "sigma2", mid_frac = 0.9,
  mid_sigma = 0.5,
}
-- quick: the same network briefly trained (a short EMA window so early
-- weights do not blur the average), fewer Langevin steps and samples
local opts = util.example_args(arg, { defaults = defaults,
  presets = { quick = { steps = 5400, ema = 0.99, T = 5, samples = 400 } },
  usage = "usage: scorch examples/ncsn_shapes.lua [options]\n" })
local function int(v) return math.tointeger(v) or error("expected an integer, got " .. tostring(v)) end

local weights = {}
for w in tostring(opts.weights):gmatch("[^,]+") do weights[#weights + 1] = assert(tonumber(w), "bad --weights") end
local steps, n_samples, T = int(opts.steps), int(opts.samples), int(opts.T)
local batch, ema_decay = int(opts.batch), opts.ema
local sigmas = sc.schedules.geometric_sigmas(opts.sigma_max, opts.sigma_min, int(opts.levels))
assert(util.mkdir(opts.out))
local function out(name) return opts.out .. "/" .. name end
local gen = sc.Generator(int(opts.seed))

-- ---- data: a fixed training pool with the requested mix -------------------------

local pool01, pool_labels, names = sc.data.shapes { n = int(opts.train_size), weights = weights, generator = gen }
local pool = pool01 * 2 - 1
local K, N_pool = #names, pool:size(1)
local train_frac = {}
do
  local counts = {}
  for k = 1, K do counts[k] = 0 end
  for _, c in ipairs(pool_labels:values()) do counts[int(c)] = counts[int(c)] + 1 end
  for k = 1, K do train_frac[k] = counts[k] / N_pool end
end
local loader = sc.data.image_loader(pool01, { batch_size = batch, shuffle = true, generator = gen,
  drop_last = true }):forever()

print(("ncsn_shapes: %d training images, mix %s; σ %g → %g (L = %d), %d steps of batch %d"):format(N_pool,
  table.concat((function()
    local t = {}
    for k = 1, K do t[k] = ("%s %.2f"):format(names[k], train_frac[k]) end
    return t
  end)(), ", "), sigmas[1], sigmas[#sigmas], #sigmas, steps, batch))

-- ---- training: DSM with λ(σ) = σ² (Song & Ermon 2019, eq. 6) ----------------------

local precond = opts.precond
local net = sc.models.NCSN { channels = int(opts.channels), blocks = int(opts.blocks), precond = precond,
  generator = gen }
-- λ(σ): "sigma2" (Song & Ermon 2019), or "balanced": σ²(σ² + σ_d²)/σ_d², which
-- with the edm preconditioning weighs the network's own error equally at all σ
local sd2 = net.sigma_data ^ 2
local weighting = ({ sigma2 = "sigma2",
  balanced = function(sig) return sig:square() * (sig:square() + sd2) / sd2 end })[opts.weighting]
  or error("--weighting must be sigma2 or balanced")
-- How a training example draws its level: with probability 1 − mid_frac
-- uniformly over the L levels (Song & Ermon 2019), else from a bump on ln σ
-- centred where the shapes take form (σ ≈ --mid-sigma, 0.5, sd 1.2 in ln σ; cf. Karras et
-- al. 2022, §5: the extreme levels need little training).  mid_frac = 0 is
-- the original uniform draw.
local mid_frac = opts.mid_frac
if mid_frac < 0 or mid_frac > 1 then error("--mid-frac must lie in [0, 1]") end
local level_probs
if mid_frac > 0 then
  local w, total = {}, 0
  for i, s in ipairs(sigmas) do
    w[i] = math.exp(-0.5 * ((math.log(s) - math.log(opts.mid_sigma)) / 1.2) ^ 2)
    total = total + w[i]
  end
  level_probs = {}
  for i = 1, #sigmas do level_probs[i] = (1 - mid_frac) / #sigmas + mid_frac * w[i] / total end
end
local function draw_sigmas(n)
  local per = {}
  for j, i in ipairs(sc.data.categorical(n, level_probs, gen)) do per[j] = sigmas[i] end
  return sc.tensor(per):view(n, 1)
end
local C, H, W = 1, 28, 28
-- sc.losses.dsm works on flat [N, D] points: view them as images for the net
local function score(x, sigma)
  local n = x:size(1)
  return net(x:view(n, C, H, W), sigma):view(n, C * H * W)
end
local losses, train_time = {}, 0
local ckpt = out("ncsn.safetensors")
if opts.load ~= "" then
  -- sample from a saved network instead of training one
  net:load_state_dict((assert(sc.load(opts.load))))
  ckpt = opts.load
  print("loaded " .. opts.load)
else
  local optimizer = sc.optim.Adam(net, { lr = opts.lr })
  local ema = sc.optim.EMA(net, { decay = ema_decay })
  local bar = util.progress(steps, { desc = "train" })
  local t0 = sc.time()
  for step = 1, steps do
    local x = loader()
    local n = x:size(1)
    local level_opts = level_probs and { sigma = draw_sigmas(n) } or { sigmas = sigmas }
    level_opts.generator, level_opts.weighting = gen, weighting
    local loss = sc.losses.dsm(score, x:view(n, -1), level_opts)
    optimizer:zero_grad()
    loss:backward()
    optimizer:step()
    ema:update()
    -- the last 20% of steps anneal the learning rate linearly towards 0
    local frac = step / steps
    if frac > 0.8 then optimizer.lr = opts.lr * (1 - frac) / 0.2 + 1e-6 end
    losses[step] = loss:item()
    bar:update { loss = losses[step] }
  end
  bar:close()
  train_time = sc.time() - t0
  local tail, n_tail = 0, math.min(50, steps)
  for i = steps - n_tail + 1, steps do tail = tail + losses[i] / n_tail end
  print(("trained in %.1f s (%.2f s/step), loss over the last %d steps %.4f"):format(train_time,
    train_time / steps, n_tail, tail))
  ema:copy_to(net)
  assert(sc.save(ckpt, net:state_dict(), { sigmas = table.concat(sigmas, ","), weights = opts.weights,
    channels = tostring(net.channels), blocks = tostring(net.n_blocks), precond = precond }))
end
net:eval()

-- ---- sampling: annealed Langevin ------------------------------------------------------

-- Song & Ermon 2020, Technique 4: with γ = σ_{i−1}/σ_i and r = ε/σ_L², T steps
-- x += α s + √(2α) z on level i take a sample of variance γ²σ_i² to one of
-- variance v(r) σ_i², v(r) = (1 − r)^{2T} (γ² − 2/(2 − r)) + 2/(2 − r).  v > 1
-- always; pick the r that brings it closest to 1 (a grid search on log r).
local function step_ratio(gamma, t)
  local function v(r) return (1 - r) ^ (2 * t) * (gamma ^ 2 - 2 / (2 - r)) + 2 / (2 - r) end
  local best, best_v = nil, math.huge
  for j = 0, 400 do
    local r = 10 ^ (-4 + 4 * j / 400 - 1e-9)
    if r < 1 and v(r) < best_v then best, best_v = r, v(r) end
  end
  return best, best_v
end
local gamma = sigmas[1] / sigmas[2]
local ratio, var_ratio = step_ratio(gamma, T)
local eps = ratio * sigmas[#sigmas] ^ 2

local k_strip = math.min(int(opts.strip), n_samples)
local frames, frame_labels = {}, {}
local x_init = sc.randn({ n_samples, C * H * W }, { generator = sc.Generator(int(opts.seed) + 1) }) * sigmas[1]
frames[1], frame_labels[1] = x_init:narrow(1, 1, k_strip), ("s=%.3g"):format(sigmas[1])
-- record the strip's rows at the end of every other level, and after denoising
local every = math.max(1, #sigmas // 6)
local function recorder(s)
  local i, t = s.level_index, s.step
  if (t == T and (i % every == 0 or i == #sigmas)) or i > #sigmas then
    frames[#frames + 1] = s.x:narrow(1, 1, k_strip)
    frame_labels[#frame_labels + 1] = i > #sigmas and "denoised" or ("s=%.3g"):format(sigmas[i])
  end
end
print(("annealed langevin: %d levels × %d steps, ε = %.3g (r = ε/σ_L² = %.3f, γ = %.3f, variance ratio %.3f), "
  .. "%d samples"):format(#sigmas, T, eps, ratio, gamma, var_ratio, n_samples))
local t0 = sc.time()
local samples = sc.samplers.annealed_langevin(sc.param.wrap(score, { kind = "score" }), x_init, sigmas,
  { step_size = eps, steps_per_level = T, convention = "reference", denoise = true,
    generator = sc.Generator(int(opts.seed) + 2),
    callback = recorder })
local sample_time = sc.time() - t0
samples = samples:view(n_samples, C, H, W)
print(("sampled %d images in %.1f s (%.2f samples/s, %d network evaluations)"):format(n_samples, sample_time,
  n_samples / sample_time, #sigmas * T + 1))

-- ---- report -----------------------------------------------------------------------------

-- Distance of each image to its nearest training image (pixels in [−1, 1]),
-- and that neighbour's label: ‖a − b‖² = ‖a‖² + ‖b‖² − 2 a·b.
local flat_pool = pool:view(N_pool, -1)
local pool_sq = flat_pool:square():sum(2)
local function nearest(x)
  local n = x:size(1)
  local a = sc.clamp(x, -1, 1):view(n, -1)
  local d2 = a:square():sum(2, true) + pool_sq:view(1, N_pool) - sc.matmul(a, flat_pool:t()) * 2
  local best, idx = d2:min(2, false)
  local dist, lab = {}, {}
  local pl = pool_labels:values()
  for i, v in ipairs(best:values()) do
    dist[i] = math.sqrt(math.max(v, 0))
    lab[i] = int(pl[int(idx:values()[i])])
  end
  return dist, lab
end

local ok, classifier = pcall(sc.models.load_classifier, "shapes")
if not ok then
  print("no shapes classifier (" .. tostring(classifier):gsub("\n.*", "") .. ")")
  print("  train it with: bin/scorch scripts/train_classifier.lua --data shapes — class statistics skipped")
  classifier = nil
end

-- Per-class statistics of a batch of images in [−1, 1]: by the classifier when
-- present, else by the nearest training image's label.
local function class_report(x)
  local n = x:size(1)
  local dist, nn_lab = nearest(x)
  local labels, conf = nn_lab, nil
  if classifier then
    local probs
    labels, probs = classifier:predict(sc.clamp(x, -1, 1))
    conf = probs:max(2, false):values()
  end
  local r = { n = n, count = {}, conf = {}, dist = {}, mean_dist = 0, dists = dist, confs = conf }
  for k = 1, K do r.count[k], r.conf[k], r.dist[k] = 0, 0, 0 end
  for i = 1, n do
    local k = labels[i]
    r.count[k] = r.count[k] + 1
    r.dist[k] = r.dist[k] + dist[i]
    r.mean_dist = r.mean_dist + dist[i] / n
    if conf then r.conf[k] = r.conf[k] + conf[i] end
  end
  r.frac = {}
  for k = 1, K do
    r.frac[k] = r.count[k] / n
    if r.count[k] > 0 then r.conf[k], r.dist[k] = r.conf[k] / r.count[k], r.dist[k] / r.count[k] end
  end
  return r
end

-- real held-out images as the yardstick for every number
local real01 = sc.data.shapes { n = n_samples, weights = weights, generator = sc.Generator(int(opts.seed) + 3) }
local rep_gen = class_report(samples)
local rep_real = class_report(real01 * 2 - 1)
-- A clean shape: the classifier is confident (max-probability ≥ --threshold)
-- and the image lies as near the training set as 95% of held-out real images
-- do.  Confidence alone is not enough: a softmax classifier is also confident
-- on scribbles unlike any training image.
local near
do
  local d = {}
  for i, v in ipairs(rep_real.dists) do d[i] = v end
  table.sort(d)
  near = d[math.max(1, math.ceil(0.95 * #d))]
end
local function count_clean(r)
  local confident, clean = 0, 0
  for i = 1, r.n do
    if r.confs and r.confs[i] >= opts.threshold then
      confident = confident + 1
      if r.dists[i] <= near then clean = clean + 1 end
    end
  end
  return confident, clean
end
local by = classifier and "classifier" or "nearest training image"
print(("\nclass mix of %d samples (labelled by the %s) against the training mix:"):format(n_samples, by))
print(("%-10s %8s %8s %8s %10s %10s %10s"):format("class", "train", "samples", "real", "conf(gen)",
  "conf(real)", "nn-dist"))
for k = 1, K do
  print(("%-10s %8.3f %8.3f %8.3f %10s %10s %6.2f/%.2f"):format(names[k], train_frac[k], rep_gen.frac[k],
    rep_real.frac[k], classifier and ("%.3f"):format(rep_gen.conf[k]) or "-",
    classifier and ("%.3f"):format(rep_real.conf[k]) or "-", rep_gen.dist[k], rep_real.dist[k]))
end
local tv = 0
for k = 1, K do tv = tv + 0.5 * math.abs(rep_gen.frac[k] - train_frac[k]) end
print(("total variation between sample and training mix: %.3f"):format(tv))
if classifier then
  local gc, gn = count_clean(rep_gen)
  local rc, rn = count_clean(rep_real)
  print(("confident (classifier max-probability ≥ %.2f): %.1f%% of samples, %.1f%% of real images"):format(
    opts.threshold, 100 * gc / n_samples, 100 * rc / n_samples))
  print(("clean shapes (confident and nearest-training-image distance ≤ %.2f, the 95th percentile of real "
    .. "images): %.1f%% of samples, %.1f%% of real images"):format(near, 100 * gn / n_samples, 100 * rn / n_samples))
end
print(("nearest-training-image distance (L2, pixels in [-1, 1]): samples %.2f, held-out real %.2f"):format(
  rep_gen.mean_dist, rep_real.mean_dist))

-- ---- FID, FID∞, KID, precision and recall against the training mix ---------------------

-- In the shapes classifier's feature space (its penultimate layer), the
-- samples against the imbalanced pool they were trained on, overall and per
-- class (samples labelled by the classifier against the training images of
-- that class); the floor is the held-out real set above (as many images as
-- samples, the same mix, another seed) against the same pool.  Per-class
-- precision says whether a class's samples look like its real images (low:
-- smeared); per-class recall whether they cover its real images (low: lost).
local report_file
if classifier then
  local samples01 = sc.clamp((samples + 1) / 2, 0, 1)
  local train_set = { images = pool01, labels = pool_labels }
  t0 = sc.time()
  local rep = sc.metrics.image_report(samples01, "shapes", { real = train_set, floor = real01,
    generator = sc.Generator(int(opts.seed) + 4) })
  local report_time = sc.time() - t0
  print()
  print(sc.metrics.format_report(rep, { reference = "train" }))
  print(("report in %.1f s"):format(report_time))
  -- The poster's question, for the rarest class of the mix.  A per-class
  -- precision or recall is low when it lies more than `margin` and more
  -- than two standard errors below the floor's (real images of the same
  -- count; binomial errors over the class's samples for precision, its
  -- training images for recall): low recall or a share under half the
  -- training share is a lost class, low precision a smeared one.
  local verdict, figures, answer = sc.metrics.rare_class_verdict(rep, train_frac, names, { model = "NCSN" })
  print("\n" .. figures)
  print(answer)
  report_file = assert(sc.metrics.write_json(out("report.json"), sc.metrics.report_doc(rep, {
    example = "ncsn_shapes", quick = opts.quick, steps = steps, samples = n_samples, T = T, levels = #sigmas,
    nfe = #sigmas * T + 1, weights = opts.weights, train_frac = train_frac, train_seconds = train_time,
    sample_seconds = sample_time, seed = int(opts.seed), rare_class = verdict })))
  print("report: " .. report_file)
end

-- ---- pictures ---------------------------------------------------------------------------

local files = {}
local function save(path, err)
  if path then files[#files + 1] = path else print("could not write a picture: " .. tostring(err)) end
end
-- the grids show the first 100 images at most, ten to a row
local shown = math.min(n_samples, 100)
save(sc.viz.image_grid(out("samples.png"), samples:narrow(1, 1, shown), { nrow = 10, range = { -1, 1 },
  title = ("ncsn samples (%d of %d)"):format(shown, n_samples) }))
save(sc.viz.image_grid(out("training.png"), pool:narrow(1, 1, math.min(shown, N_pool)),
  { nrow = 10, range = { -1, 1 }, title = "training images" }))
for i, f in ipairs(frames) do frames[i] = f:view(k_strip, C, H, W) end
save(sc.viz.denoising_strip(out("denoising.png"), frames, { labels = frame_labels, range = { -1, 1 },
  title = "annealed langevin" }))
save(sc.viz.class_histogram(out("classes.png"), names, rep_gen.frac, { reference = train_frac,
  title = "samples by " .. by .. " vs training mix" }))
if #losses > 0 then save(sc.viz.loss_curve(out("loss.png"), losses, { title = "dsm loss" })) end
print(("time: training %.1f s, sampling %.1f s"):format(train_time, sample_time))
print("checkpoint: " .. ckpt)
print("pictures: " .. table.concat(files, ", "))
