-- Classifier-free guidance on Fashion-MNIST: a class-conditional NCSN (EDM
-- preconditioning, Karras et al. 2022) trained with label dropout (Ho &
-- Salimans 2021), then a guidance sweep.  At each w a balanced set (the same
-- number of every class) is drawn with DPM-Solver++ 2M, using one network call
-- per step for ε(x, c) and ε(x, ∅).  The set is scored in the Fashion-MNIST
-- classifier's feature space (FID, precision, recall against as many test
-- images) and by agreement, the fraction the classifier assigns to the
-- requested class.  Then the null class inpaints test images whose right
-- half is hidden (replacement inpainting with a predictor–corrector
-- sampler, Song et al. 2021, App. I).
-- Writes OUT/grid_w<w>.png (one row per class), OUT/fid_vs_agreement.png,
-- OUT/inpainting.png (rows: the image, the visible half, three
-- completions) and OUT/report.txt.
--
--   bin/scorch examples/cfg_fashion_mnist.lua --quick --threads 1   # about 3 minutes
--   bin/scorch examples/cfg_fashion_mnist.lua --threads 2           # 12,000 steps, 100 samples per class
--
-- The metrics need the Fashion-MNIST classifier (bin/scorch
-- scripts/train_classifier.lua --data fashion_mnist); without it the script
-- writes the grids only.
local sc = require "scorch"
local util = sc.util

local defaults = {
  out = "out/cfg_fashion_mnist", seed = 0, threads = 0,
  steps = 12000, batch = 32, lr = 2e-3, channels = 16, blocks = 1, ema = 0.999, p_uncond = 0.15,
  limit = 60000, per_class = 100, sample_steps = 25, sigma_max = 40, ws = "0,0.5,1,2,4", inpaint_steps = 200,
}
local opts = util.example_args(arg, { defaults = defaults,
  presets = { quick = { steps = 2500, ema = 0.99, limit = 20000, per_class = 30, sample_steps = 20,
    ws = "0,1,3", inpaint_steps = 100 } },
  usage = "usage: scorch examples/cfg_fashion_mnist.lua [options]\nA guidance sweep on Fashion-MNIST.\n" })
local function int(v) return math.tointeger(v) or error("expected an integer, got " .. tostring(v)) end
local ws = {}
for v in tostring(opts.ws):gmatch("[^,]+") do ws[#ws + 1] = assert(tonumber(v), "bad --ws") end
local per_class, steps, batch = int(opts.per_class), int(opts.steps), int(opts.batch)
assert(util.mkdir(opts.out))
local function out(name) return opts.out .. "/" .. name end
local gen = sc.Generator(int(opts.seed))
local t0 = sc.time()

-- ---- data and network ------------------------------------------------------------------------
local images01, labels_t = sc.data.fashion_mnist("train", { limit = int(opts.limit) })
local names = sc.data.fashion_mnist_classes
local K = #names
local pool, pool_labels = images01 * 2 - 1, labels_t:values()
local pool_n = pool:size(1)
local net = sc.models.NCSN { channels = int(opts.channels), blocks = int(opts.blocks), precond = "edm",
  classes = K, p_uncond = opts.p_uncond, generator = gen }
print(("cfg_fashion_mnist: %d training images, class-conditional NCSN (channels %d, p_uncond %g), %d steps of %d")
  :format(pool_n, int(opts.channels), opts.p_uncond, steps, batch))

-- ---- training: EDM's loss, labels dropped to ∅ at rate p_uncond --------------------------------
local adam = sc.optim.Adam(net, { lr = opts.lr })
local ema = sc.optim.EMA(net, { decay = opts.ema })
local bar = util.progress(steps, { desc = "train" })
for step = 1, steps do
  local idx = sc.randint(1, pool_n + 1, { batch }, { generator = gen })
  local labels = {}
  for i, v in ipairs(idx:values()) do labels[i] = math.tointeger(pool_labels[math.tointeger(v)]) end
  local dropped = sc.models.drop_labels(labels, opts.p_uncond, { generator = gen })
  local loss = sc.losses.edm(sc.param.wrap(net, { kind = "score", cond = dropped }), pool:index_select(1, idx),
    { generator = gen })
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

-- ---- the guidance sweep ----------------------------------------------------------------------------
local model = sc.param.wrap(net, { kind = "score" })
local sigmas = sc.schedules.karras_sigmas(int(opts.sample_steps), { sigma_max = opts.sigma_max })
local requested = {}
for k = 1, K do
  for _ = 1, per_class do requested[#requested + 1] = k end
end
local n = #requested

local ok, classifier = pcall(sc.models.load_classifier, "fashion_mnist")
if not ok then
  print("no Fashion-MNIST classifier: metrics skipped (bin/scorch scripts/train_classifier.lua --data fashion_mnist)")
  classifier = nil
end
local test01, test_labels = sc.data.fashion_mnist("test", { limit = n })

local lines, curve = {}, {}
local function say(s)
  print(s)
  lines[#lines + 1] = s
end
local function fmt(v) return v and ("%.3f"):format(v) or "-" end
say(("\n%-6s %8s %8s %8s %10s %10s   %s"):format("w", "FID", "prec", "recall", "agreement", "confidence",
  "agreement per class"))
for j, w in ipairs(ws) do
  local ts = sc.time()
  local g = sc.Generator(int(opts.seed) + 10 + j)
  local guided = sc.param.guided(model, { cond = requested, w = w })
  local x = util.in_chunks(n, 250, function(first, m)
    local part = {}
    for i = 1, m do part[i] = requested[first + i - 1] end
    return sc.samplers.dpmpp_2m(guided:with_cond(part),
      sc.samplers.prior(sigmas, { m, 1, 28, 28 }, { generator = g }), sigmas)
  end)
  local x01 = (sc.clamp(x, -1, 1) + 1) * 0.5
  local show = {}
  for k = 1, K do
    for i = 1, math.min(10, per_class) do show[#show + 1] = (k - 1) * per_class + i end
  end
  sc.viz.image_grid(out(("grid_w%g.png"):format(w)), x01:index_select(1, show), { nrow = math.min(10, per_class),
    title = ("w = %g, one row per class"):format(w) })
  if classifier then
    local _, probs = classifier:predict(x01 * 2 - 1)
    local agree = sc.metrics.agreement(probs, requested, { names = names })
    local rep = sc.metrics.image_report(x01, "fashion_mnist", { real = { images = test01, labels = test_labels },
      generator = sc.Generator(int(opts.seed) + 3), per_class = false })
    local per = {}
    for k = 1, K do per[k] = ("%.2f"):format(agree.per_class[k].agreement) end
    say(("%-6g %8s %8s %8s %10.3f %10.3f   %s"):format(w, fmt(rep.fid), fmt(rep.precision), fmt(rep.recall),
      agree.agreement, agree.confidence, table.concat(per, " ")))
    if rep.fid then curve[#curve + 1] = { w = w, fid = rep.fid, agreement = agree.agreement } end
  end
  print(("  (w = %g: %d images in %.0f s)"):format(w, n, sc.time() - ts))
end

-- FID against agreement, one point per w, joined in order of w (FID needs more
-- samples than feature dimensions).
if #curve > 1 then
  local flo, fhi = math.huge, -math.huge
  for _, p in ipairs(curve) do flo, fhi = math.min(flo, p.fid), math.max(fhi, p.fid) end
  local pad = 0.1 * (fhi - flo) + 1e-3
  local alo, ahi = math.huge, -math.huge
  for _, p in ipairs(curve) do alo, ahi = math.min(alo, p.agreement), math.max(ahi, p.agreement) end
  local apad = 0.1 * (ahi - alo) + 1e-3
  local cv, axes = sc.viz.panels(1, 360, { alo - apad, ahi + apad, flo - pad, fhi + pad })
  local ax = axes[1]
  local rows = {}
  for i, p in ipairs(curve) do rows[i] = { p.agreement, p.fid } end
  ax:polyline(rows, "blue")
  ax:points(sc.tensor(rows), "red", 3)
  ax:frame { title = "FID vs agreement over w (" .. opts.ws .. ")", xlabel = "agreement", ylabel = "FID" }
  assert(cv:save(out("fid_vs_agreement.png")))
end

-- ---- inpainting: the right half hidden, filled in by the null class ------------------------
local shown = {}
local tl = test_labels:values()
for k = 1, K do
  for i = 1, #tl do
    if math.tointeger(tl[i]) == k then
      shown[#shown + 1] = i
      break
    end
  end
end
local originals = test01:index_select(1, shown) * 2 - 1
local mask = sc.zeros(1, 1, 28, 28)
mask:narrow(4, 1, 14):fill_(1)                      -- the left half is known
local ve = sc.schedules.ve_sde { sigma_min = 0.002, sigma_max = opts.sigma_max }
local rows = { originals, originals * mask + (mask * -1 + 1) * -1 }
for r = 1, 3 do
  local g = sc.Generator(int(opts.seed) + 50 + r)
  local inp = sc.param.inpaint(model, originals, mask, { generator = g })
  local x = sc.samplers.predictor_corrector(inp, sc.samplers.prior(ve, { #shown, 1, 28, 28 }, { generator = g }), ve,
    { steps = int(opts.inpaint_steps), generator = g })
  rows[#rows + 1] = inp:paste(sc.clamp(x, -1, 1))
end
sc.viz.image_grid(out("inpainting.png"), (sc.cat(rows, 1) + 1) * 0.5, { nrow = #shown,
  title = "image / left half shown / three completions" })
assert(util.write_atomic(out("report.txt"), table.concat(lines, "\n") .. "\n"))
print(("\nwrote %s/grid_w*.png, fid_vs_agreement.png, inpainting.png, report.txt (%.0f s in all)")
  :format(opts.out, sc.time() - t0))
