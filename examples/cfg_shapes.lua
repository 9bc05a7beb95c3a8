-- Classifier-free guidance on images: a class-conditional NCSN (EDM
-- preconditioning, Karras et al. 2022) trained on an imbalanced 40/30/20/10
-- mix of synthetic shapes with label dropout (Ho & Salimans 2021), then a
-- balanced set — the same number of every class, the rare one included —
-- drawn with DPM-Solver++ 2M at several guidance scales w, where
-- ε̃ = (1 + w) ε(x, c) − w ε(x, ∅) comes from one network call per step.
-- For each w it reports, in the shapes classifier's feature space, FID,
-- precision and recall of the whole set and per class (against real images
-- of that class), and the agreement: the fraction of samples the classifier
-- assigns to the requested class, with its mean probability.  Writes
-- OUT/grid_w<w>.png (one row per class) and OUT/report.txt.
--
--   bin/scorch examples/cfg_shapes.lua --quick --threads 1   # about 3 minutes
--   bin/scorch examples/cfg_shapes.lua --threads 2           # 8,000 steps, 500 samples per class
--
-- The metrics need the shapes classifier (bin/scorch scripts/train_classifier.lua
-- --data shapes); without it the script writes the grids only.
local sc = require "scorch"
local util = sc.util

local defaults = {
  out = "out/cfg_shapes", seed = 0, threads = 0,
  weights = "0.4,0.3,0.2,0.1", steps = 8000, batch = 32, lr = 2e-3, channels = 16, blocks = 1, ema = 0.999,
  p_uncond = 0.15, train_size = 10000, per_class = 500, sample_steps = 25, sigma_max = 40, ws = "0,1,3",
}
local opts = util.example_args(arg, { defaults = defaults,
  -- quick: about 3 minutes at one thread (2,000 steps)
  presets = { quick = { steps = 2000, ema = 0.99, per_class = 150, sample_steps = 20 } },
  usage = "usage: scorch examples/cfg_shapes.lua [options]\nClassifier-free guidance on shapes.\n" })
local function int(v) return math.tointeger(v) or error("expected an integer, got " .. tostring(v)) end
local function list(s)
  local out = {}
  for v in tostring(s):gmatch("[^,]+") do out[#out + 1] = assert(tonumber(v), "bad list " .. tostring(s)) end
  return out
end
local weights, ws = list(opts.weights), list(opts.ws)
local K, per_class, steps = #weights, int(opts.per_class), int(opts.steps)
assert(util.mkdir(opts.out))
local gen = sc.Generator(int(opts.seed))
local t0 = sc.time()

-- ---- data and network ------------------------------------------------------------------------
local pool01, pool_labels, names = sc.data.shapes { n = int(opts.train_size), weights = weights, generator = gen }
local pool = pool01 * 2 - 1
pool_labels = pool_labels:values()
local pool_n = pool:size(1)
local net = sc.models.NCSN { channels = int(opts.channels), blocks = int(opts.blocks), precond = "edm",
  classes = K, p_uncond = opts.p_uncond, generator = gen }
print(("cfg_shapes: %d training images (mix %s), class-conditional NCSN (channels %d, p_uncond %g), %d steps of %d")
  :format(pool_n, table.concat(weights, "/"), int(opts.channels), opts.p_uncond, steps, int(opts.batch)))

-- ---- training: EDM's loss on the denoiser of the score network, labels dropped to ∅ ------------
local adam = sc.optim.Adam(net, { lr = opts.lr })
local ema = sc.optim.EMA(net, { decay = opts.ema })
local bar = util.progress(steps, { desc = "train" })
local batch = int(opts.batch)
for step = 1, steps do
  local idx = sc.randint(1, pool_n + 1, { batch }, { generator = gen })
  local x = pool:index_select(1, idx)
  local labels = {}
  for i, v in ipairs(idx:values()) do labels[i] = math.tointeger(pool_labels[math.tointeger(v)]) end
  local dropped = sc.models.drop_labels(labels, opts.p_uncond, { generator = gen })
  local denoiser = sc.param.wrap(net, { kind = "score", cond = dropped })
  local loss = sc.losses.edm(denoiser, x, { generator = gen })
  adam:zero_grad()
  loss:backward()
  adam:step()
  ema:update()
  if step > 0.8 * steps then adam.lr = opts.lr * (steps - step) / (0.2 * steps) + 1e-6 end
  bar:update { loss = loss:item() }
end
bar:close()
ema:copy_to(net)
net:eval()
print(("trained in %.0f s"):format(sc.time() - t0))

-- ---- sampling: a balanced set at each w ---------------------------------------------------------
local model = sc.param.wrap(net, { kind = "score" })
local sigmas = sc.schedules.karras_sigmas(int(opts.sample_steps), { sigma_max = opts.sigma_max })
local requested = {}
for k = 1, K do
  for _ = 1, per_class do requested[#requested + 1] = k end
end
local n = #requested

local ok, classifier = pcall(sc.models.load_classifier, "shapes")
if not ok then
  print("no shapes classifier: metrics skipped (train it: bin/scorch scripts/train_classifier.lua --data shapes)")
  classifier = nil
end
local real01, real_labels = sc.data.shapes { n = n, weights = { 1, 1, 1, 1 },
  generator = sc.Generator(int(opts.seed) + 99) }
real_labels = real_labels:values()

local function rows_of(labels, k)
  local idx = {}
  for i, l in ipairs(labels) do if math.tointeger(l) == k then idx[#idx + 1] = i end end
  return idx
end
local function fmt(v) return v and ("%.3f"):format(v) or "-" end

local lines = {}
local function say(s)
  print(s)
  lines[#lines + 1] = s
end
say(("\n%-8s %-9s %8s %8s %8s %10s %10s"):format("w", "class", "FID", "prec", "recall", "agreement", "confidence"))
for j, w in ipairs(ws) do
  local ts = sc.time()
  local g = sc.Generator(int(opts.seed) + 10 + j)
  local guided = sc.param.guided(model, { cond = requested, w = w })
  local x = sc.samplers.dpmpp_2m(guided, sc.samplers.prior(sigmas, { n, 1, 28, 28 }, { generator = g }), sigmas)
  local x01 = (sc.clamp(x, -1, 1) + 1) * 0.5
  -- one row per class, the first 10 of each
  local show = {}
  for k = 1, K do
    for i = 1, math.min(10, per_class) do show[#show + 1] = (k - 1) * per_class + i end
  end
  sc.image.save_png(("%s/grid_w%g.png"):format(opts.out, w), x01:index_select(1, show),
    { nrow = math.min(10, per_class) })
  if classifier then
    local _, probs = classifier:predict(x01 * 2 - 1)
    local agree = sc.metrics.agreement(probs, requested, { names = names })
    local rep = sc.metrics.image_report(x01, "shapes", { real = { images = real01, labels = real_labels },
      generator = sc.Generator(int(opts.seed) + 3), per_class = false })
    say(("%-8g %-9s %8s %8s %8s %10.3f %10.3f"):format(w, "all", fmt(rep.fid), fmt(rep.precision), fmt(rep.recall),
      agree.agreement, agree.confidence))
    for k = 1, K do
      local fi, ri = rows_of(requested, k), rows_of(real_labels, k)
      local rk = sc.metrics.image_report(x01:index_select(1, fi), "shapes", { real = {
        images = real01:index_select(1, ri), labels = (function()
          local l = {}
          for i = 1, #ri do l[i] = k end
          return l
        end)() }, generator = sc.Generator(int(opts.seed) + 3), per_class = false })
      local a = agree.per_class[k]
      say(("%-8s %-9s %8s %8s %8s %10.3f %10.3f"):format("", names[k], fmt(rk.fid), fmt(rk.precision),
        fmt(rk.recall), a.agreement, a.confidence))
    end
  end
  print(("  (w = %g: %d images in %.0f s)"):format(w, n, sc.time() - ts))
end
assert(util.write_atomic(opts.out .. "/report.txt", table.concat(lines, "\n") .. "\n"))
print(("\nwrote %s/grid_w*.png, report.txt (%.0f s in all)"):format(opts.out, sc.time() - t0))
