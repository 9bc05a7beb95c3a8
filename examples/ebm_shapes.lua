-- The poster's question asked of an energy-based model: a convolutional
-- energy E_θ(x) (sc.models.ConvEnergy, SiLU) on the imbalanced synthetic
-- shapes (default mix 40/30/20/10), p(x) = e^−E(x)/Z, trained by maximum
-- likelihood with contrastive divergence (sc.losses.cd) as Du & Mordatch
-- 2019 do: negatives from short-run Langevin chains on −∇ₓE, continued from
-- a replay buffer of persistent chains (95% from the buffer, 5% fresh
-- uniform noise, §3.1), the energy-magnitude regulariser α(E(x⁺)² + E(x⁻)²)
-- (§3.3), each element of ∇ₓE clipped in the chains and the chains kept in
-- the image range [−1, 1].  The chain step is x ← x − (ε/2)·clip(∇ₓE) + ω z
-- with ε = 20 and ω = 0.005 by default: a tempered chain, not exact
-- Langevin (that would need ω = √ε), as in the paper's image experiments.
-- Samples are Langevin chains of --sample-steps from fresh uniform noise
-- (no buffer).  Do they keep the training mix of classes, and is the rare
-- class lost (low recall, or under half its share) or smeared (low
-- precision)?  The shapes classifier labels the samples and
-- sc.metrics.image_report gives the class mix beside the training mix,
-- FID, FID∞, KID, precision and recall (k = 3) overall and per class
-- against the training pool, and the real-versus-real floor, as
-- examples/ncsn_shapes.lua and examples/gan_shapes.lua do; the replay
-- buffer's class mix is printed too.
--
--   bin/scorch examples/ebm_shapes.lua --quick --threads 1   # ConvEnergy {8,16,32}, 1,500 steps of 32,
--                                                          # 400 samples: 2 min 24 s – 2 min 55 s
--   bin/scorch examples/ebm_shapes.lua --threads 1           # {16,32,64}, 3,000 steps of 64, 1,000
--                                                          # samples: 24 min 36 s
--   bin/scorch examples/ebm_shapes.lua --quick --weights 0.25,0.25,0.25,0.25
--
-- (times at 1 thread on the 2-core machine shared with four other jobs.)
-- Seed 0, full run: FID 12.6 (floor 0.06), precision 0.37, recall 0.60;
-- class mix 35/17/33/15 against 40/30/20/10 (total variation 0.19, real
-- images 0.008); triangles at 15% with precision 0.19 and recall 0.80
-- (floor 0.97 / 0.96): over-drawn, smeared and under-covered.  The quick
-- run draws blobs the classifier mostly calls triangles (79%, FID 84).
--
-- Options: --out DIR (default out/ebm_shapes), --weights (class mix over
-- square, circle, rings, triangle), --train-size, --steps, --batch, --lr,
-- --channels (widths of ConvEnergy's stride-2 stages, e.g. 16,32,64),
-- --alpha, --chain-steps, --step-size (ε), --noise (ω), --clip, --buffer,
-- --reinit, --samples, --sample-steps, --sample-batch, --grids (training
-- grids of the buffer), --checkpoint-every, --max-energy, --seed, --threads.
-- Writes grid_stepN.png (replay-buffer chains during training),
-- samples.png, chains.png (chains from noise, left to right), buffer.png,
-- training.png, classes.png, loss.png, energy.png, ebm.safetensors (the
-- weights, written every --checkpoint-every steps and at the end, only
-- while every weight is finite) and report.json.  A step whose loss is not
-- finite, or whose mean energies exceed --max-energy in size, stops the run
-- with a message naming the step; the last checkpoint stays as it was.
-- Without the shapes classifier (bin/scorch scripts/train_classifier.lua
-- --data shapes) the script writes the pictures only.
local sc = require "scorch"
local util = sc.util

local defaults = {
  out = "out/ebm_shapes", seed = 0, threads = 0, weights = "0.4,0.3,0.2,0.1", train_size = 10000,
  steps = 3000, batch = 64, lr = 3e-4, channels = "16,32,64", alpha = 0.1, chain_steps = 30, step_size = 20.0,
  noise = 0.005, clip = 0.01, buffer = 10000, reinit = 0.05, samples = 1000, sample_steps = 300,
  sample_batch = 250, grids = 5, checkpoint_every = 500, max_energy = 1e4,
}
local opts = util.example_args(arg, { defaults = defaults,
  presets = { quick = { steps = 1500, batch = 32, channels = "8,16,32", chain_steps = 20, samples = 400,
    sample_steps = 200 } },
  usage = "usage: scorch examples/ebm_shapes.lua [options]\nA convolutional EBM on imbalanced shapes: the class mix.\n" })
local function int(v) return math.tointeger(v) or error("expected an integer, got " .. tostring(v)) end
local function numbers(s, what)
  local t = {}
  for w in tostring(s):gmatch("[^,]+") do t[#t + 1] = tonumber(w) or error(("bad %s: %s"):format(what, s)) end
  return t
end
local weights = numbers(opts.weights, "--weights")
local channels = {}
for i, c in ipairs(numbers(opts.channels, "--channels")) do channels[i] = int(c) end
local steps, batch, n_samples = int(opts.steps), int(opts.batch), int(opts.samples)
local ckpt_every = int(opts.checkpoint_every)
if steps < 1 or batch < 1 or n_samples < 1 then error("ebm_shapes: --steps, --batch and --samples must be positive", 0) end
assert(util.mkdir(opts.out))
local function out(name) return opts.out .. "/" .. name end
local gen = sc.Generator(int(opts.seed))

-- ---- data: a fixed training pool with the requested mix, in [−1, 1] ---------------------------

local pool01, pool_labels, names = sc.data.shapes { n = int(opts.train_size), weights = weights, generator = gen }
local K, N_pool = #names, pool01:size(1)
local train_frac = sc.metrics.class_mix(pool_labels, K).frac
local loader = sc.data.image_loader(pool01, { batch_size = batch, shuffle = true, generator = gen,
  drop_last = true }):forever()
local E = sc.models.ConvEnergy { channels = channels, generator = gen }
local mix = {}
for k = 1, K do mix[k] = ("%.2f"):format(train_frac[k]) end
print(("ebm_shapes: %d training images (mix %s: %s), ConvEnergy {%s}, CD with %d-step chains (ε %g, ω %g, "
  .. "clip %g), α %g, %d steps of %d"):format(N_pool, table.concat(names, "/"), table.concat(mix, "/"),
  table.concat(channels, ","), int(opts.chain_steps), opts.step_size, opts.noise, opts.clip, opts.alpha, steps, batch))

-- ---- training: contrastive divergence with a replay buffer (Du & Mordatch 2019) ---------------

-- fresh chain starts: uniform noise on the image range
local bgen = sc.Generator(int(opts.seed) + 5)
local function noise_images(n, g) return sc.rand({ n, 1, 28, 28 }, { generator = g }) * 2 - 1 end
local buf = sc.losses.ReplayBuffer { init = function(n) return noise_images(n, bgen) end, size = int(opts.buffer),
  reinit = opts.reinit, generator = bgen }
local function chain_opts(n_steps, g)
  return { steps = n_steps, step_size = opts.step_size, noise = opts.noise,
    clip = opts.clip > 0 and opts.clip or nil, bounds = { -1, 1 }, generator = g }
end
-- Adam with β₁ = 0, as for the 2-D EBM (examples/ebm_2d.lua)
local optimizer = sc.optim.Adam(E:parameters(), { lr = opts.lr, betas = { 0, 0.999 } })

local files = {}
local function save(path, err)
  if path then files[#files + 1] = path else print("could not write a picture: " .. tostring(err)) end
end
local n_grids = math.max(int(opts.grids), 1)
local grid_at = {}
for k = 1, n_grids do grid_at[math.max(1, (steps * k) // n_grids)] = true end

local function finite(v) return v == v and v ~= math.huge and v ~= -math.huge end
local function weights_finite()
  for _, p in ipairs(E:parameters()) do
    if not finite(p:detach():sum():item()) then return false end
  end
  return true
end
-- the weights go to disk only while all are finite, so a run that goes bad
-- never replaces the last good checkpoint
local ckpt, ckpt_step = out("ebm.safetensors"), nil
local function checkpoint(step)
  if not weights_finite() then return false end
  assert(sc.save(ckpt, E:state_dict(), { step = tostring(step), channels = opts.channels, weights = opts.weights }))
  ckpt_step = step
  return true
end

local losses, e_pos, e_neg = {}, {}, {}
local bar = util.progress(steps, { desc = "train" })
local chain_gen = sc.Generator(int(opts.seed) + 6)
local function diverged(step, why)
  bar:close()
  io.stderr:write(("ebm_shapes: training diverged at step %d (%s); %s\n"):format(step, why,
    ckpt_step and ("the last good checkpoint (step %d) is kept in %s"):format(ckpt_step, ckpt)
    or ("this run wrote no checkpoint (%s is left as it was)"):format(ckpt)))
  os.exit(3)
end
local t0 = sc.time()
for step = 1, steps do
  local x = loader()                       -- [−1, 1] (image_loader scales)
  local neg = sc.losses.langevin_negatives(E, buf:sample(batch), chain_opts(int(opts.chain_steps), chain_gen))
  buf:push(neg)
  local loss, info = sc.losses.cd(E, x, neg, { alpha = opts.alpha })
  local lv = loss:item()
  if not finite(lv) then diverged(step, ("loss %s"):format(tostring(lv))) end
  if math.abs(info.e_pos) > opts.max_energy or math.abs(info.e_neg) > opts.max_energy then
    diverged(step, ("mean energy of the data %.4g, of the negatives %.4g, beyond --max-energy %g")
      :format(info.e_pos, info.e_neg, opts.max_energy))
  end
  optimizer:zero_grad()
  loss:backward()
  optimizer:step()
  losses[step], e_pos[step], e_neg[step] = lv, info.e_pos, info.e_neg
  bar:update { loss = lv, ["E+"] = info.e_pos, ["E-"] = info.e_neg }
  if grid_at[step] then
    save(sc.viz.image_grid(out(("grid_step%d.png"):format(step)), neg:narrow(1, 1, math.min(batch, 64)),
      { nrow = 8, range = { -1, 1 }, title = ("ebm on shapes: replay-buffer chains, step %d"):format(step) }))
  end
  if ckpt_every > 0 and step % ckpt_every == 0 and not checkpoint(step) then
    diverged(step, "non-finite weights after the update")
  end
end
bar:close()
local train_time = sc.time() - t0
if not checkpoint(steps) then diverged(steps, "non-finite weights after the last update") end
local tail, n_tail = { 0, 0, 0 }, math.min(50, steps)
for i = steps - n_tail + 1, steps do
  tail[1], tail[2], tail[3] = tail[1] + losses[i] / n_tail, tail[2] + e_pos[i] / n_tail, tail[3] + e_neg[i] / n_tail
end
print(("trained in %.1f s (%.3f s/step); over the last %d steps: loss %.4f, E(data) %.4f, E(negatives) %.4f")
  :format(train_time, train_time / steps, n_tail, tail[1], tail[2], tail[3]))

-- ---- samples: Langevin chains from fresh noise ------------------------------------------------

-- Each chunk's chain runs in six segments, recording the first chunk's first
-- rows after each for chains.png (one generator, so the segments draw the
-- same noise as one run would).
local sample_steps, k_strip = int(opts.sample_steps), math.min(8, n_samples)
local sample_gen = sc.Generator(int(opts.seed) + 2)
local frames, frame_labels = {}, {}
local sample_bar = util.progress(6 * math.ceil(n_samples / int(opts.sample_batch)), { desc = "sample" })
t0 = sc.time()
local samples = util.in_chunks(n_samples, int(opts.sample_batch), function(first, m)
  local x = noise_images(m, sample_gen)
  local done, record = 0, first == 1
  if record then frames[1], frame_labels[1] = x:narrow(1, 1, math.min(k_strip, m)), "noise" end
  for seg = 1, 6 do
    local upto = (sample_steps * seg) // 6
    if upto > done then
      x = sc.losses.langevin_negatives(E, x, chain_opts(upto - done, sample_gen))
      done = upto
      sample_bar:update()
      if record then
        frames[#frames + 1], frame_labels[#frame_labels + 1] = x:narrow(1, 1, math.min(k_strip, m)), ("k=%d"):format(done)
      end
    end
  end
  return x
end)
sample_bar:close()
local sample_time = sc.time() - t0
local samples01 = sc.clamp((samples + 1) / 2, 0, 1)
print(("sampled %d images in %.2f s (%d Langevin steps from uniform noise)"):format(n_samples, sample_time,
  sample_steps))
if not finite(samples:sum():item()) then print("warning: the samples hold non-finite values") end

-- ---- the class mix, FID, precision and recall against the training pool ---------------------

-- The samples (labelled by the classifier) against the imbalanced pool they
-- were trained on, overall and per class; the floor is a held-out real set
-- of as many images, the same mix, another seed, through the same report.
local has_classifier, ext = pcall(sc.metrics.extractor, "shapes")
local sample_frac
if has_classifier then
  local real01 = sc.data.shapes { n = n_samples, weights = weights, generator = sc.Generator(int(opts.seed) + 3) }
  t0 = sc.time()
  local rep = sc.metrics.image_report(samples01, "shapes", { real = { images = pool01, labels = pool_labels },
    floor = real01, generator = sc.Generator(int(opts.seed) + 4) })
  local report_time = sc.time() - t0
  sample_frac = rep.class_mix.frac
  print()
  print(sc.metrics.format_report(rep, { reference = "train" }))
  print(("report in %.1f s"):format(report_time))
  -- total variation between a class mix and the training mix: the floor's
  -- is what a real set of this size shows by chance
  local function tv(frac) return sc.metrics.tv_distance(frac, train_frac) end
  -- the replay buffer's mix by the same classifier: what the persistent
  -- chains hold, beside what chains from noise reach
  local classifier = sc.models.load_classifier("shapes")
  classifier:eval()
  local held = math.min(buf.count, 2000)
  local buf_labels = classifier:predict(buf.data:narrow(1, 1, held))
  local buf_frac = sc.metrics.class_mix(buf_labels, K).frac
  local tv_samples, tv_floor, tv_buffer = tv(rep.class_mix.frac), tv(rep.floor.class_mix.frac), tv(buf_frac)
  print(("\nclass mix against the training mix (total variation): samples %.3f, held-out real %.3f")
    :format(tv_samples, tv_floor))
  local row = {}
  for k = 1, K do row[k] = ("%s %.3f"):format(names[k], buf_frac[k]) end
  print(("replay buffer (%d chains, by the classifier): %s; total variation %.3f"):format(held,
    table.concat(row, ", "), tv_buffer))
  -- The poster's question for the rarest class, read as ncsn_shapes.lua
  -- and gan_shapes.lua read it (sc.metrics.rare_class_verdict).
  local verdict, figures, answer = sc.metrics.rare_class_verdict(rep, train_frac, names, { model = "the EBM" })
  print("" .. figures)
  print(answer)
  local json = assert(sc.metrics.write_json(out("report.json"), sc.metrics.report_doc(rep, {
    example = "ebm_shapes", quick = opts.quick, steps = steps, batch = batch, channels = opts.channels,
    alpha = opts.alpha, chain_steps = int(opts.chain_steps), step_size = opts.step_size, noise = opts.noise,
    clip = opts.clip, buffer = int(opts.buffer), reinit = opts.reinit, sample_steps = sample_steps,
    samples = n_samples, weights = opts.weights, train_frac = train_frac, buffer_frac = buf_frac,
    tv_samples = tv_samples, tv_floor = tv_floor, tv_buffer = tv_buffer, train_seconds = train_time,
    sample_seconds = sample_time, seed = int(opts.seed), rare_class = verdict })))
  print("report: " .. json)
  save(sc.viz.class_histogram(out("classes.png"), names, sample_frac, { reference = train_frac,
    title = "ebm samples by classifier vs training mix" }))
else
  print("\nno shapes classifier (" .. tostring(ext):gsub("\n.*", "") .. ")")
  print("  train it with: bin/scorch scripts/train_classifier.lua --data shapes — class statistics skipped")
end

-- ---- pictures ---------------------------------------------------------------------------------

local shown = math.min(n_samples, 100)
save(sc.viz.image_grid(out("samples.png"), samples:narrow(1, 1, shown), { nrow = 10, range = { -1, 1 },
  title = ("ebm samples, %d langevin steps from noise (%d of %d)"):format(sample_steps, shown, n_samples) }))
save(sc.viz.denoising_strip(out("chains.png"), frames, { labels = frame_labels, range = { -1, 1 },
  title = "langevin chains from noise" }))
save(sc.viz.image_grid(out("buffer.png"), buf.data:narrow(1, 1, math.min(100, buf.size)), { nrow = 10,
  range = { -1, 1 }, title = "replay buffer (persistent chains)" }))
save(sc.viz.image_grid(out("training.png"), pool01:narrow(1, 1, math.min(shown, N_pool)),
  { nrow = 10, title = "training images" }))
save(sc.viz.loss_curve(out("loss.png"), losses, { log = false, smooth = 0.3, xlabel = "step", ylabel = "loss",
  title = ("CD loss E(x+) - E(x-) + %g (E(x+)^2 + E(x-)^2)"):format(opts.alpha) }))
save(sc.viz.loss_curve(out("energy.png"), { ["E(data)"] = e_pos, ["E(negatives)"] = e_neg },
  { log = false, smooth = 0.3, xlabel = "step", ylabel = "mean energy",
    title = "mean energies of data and replay-buffer negatives" }))
print(("time: training %.1f s, sampling %.1f s"):format(train_time, sample_time))
print("checkpoint: " .. ckpt)
print("pictures: " .. table.concat(files, ", "))
