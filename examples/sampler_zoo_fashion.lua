-- One Fashion-MNIST DDPM U-Net, many samplers: image quality against network
-- evaluations.
--
-- The ε-network of `examples/ddpm_fashion_mnist.lua --quick` (a small U-Net,
-- 700 steps of batch 32 on 10,000 training images, the same settings and
-- seed) is trained here, or loaded with --load from that example's
-- checkpoint (its EMA weights).  scorch.param shows it to each
-- sampler in the view it needs: ε(x, t) on the DDPM schedule for DDPM
-- ancestral sampling and DDIM, the denoiser D(x̂, σ) on Karras levels
-- (σ from the schedule's smallest to 80) for EDM's Heun and DPM-Solver++ 2M.
-- Every sampler starts from its own prior draw of one seed, and its samples
-- are scored by sc.metrics.image_report against Fashion-MNIST's reference
-- statistics (10,000 training images in the Fashion-MNIST classifier's
-- feature space): FID, FID∞, KID, precision and recall (k = 3), beside the
-- real-versus-real floor (as many test images as samples).  FID depends on
-- the sample count, so every number is at the same count, printed in the
-- table; FID∞ is the extrapolation to infinitely many.
--
--   bin/scorch examples/sampler_zoo_fashion.lua --threads 1        # trains, then samples 500 per sampler
--   bin/scorch examples/sampler_zoo_fashion.lua --load out/ddpm_fashion_mnist/ddpm.safetensors
--   bin/scorch examples/sampler_zoo_fashion.lua --only ddim       # samplers whose name contains "ddim"
--
-- Writes OUT/{table.md, report.json, fid_nfe.png, grid_<sampler>.png,
-- loss.png (when trained)}.  Same seed, same numbers.
--
-- Options: --out DIR (default out/sampler_zoo_fashion), --load, --samples
-- (per sampler), --sample-batch, --only, --seed, --threads, and the
-- training settings of the quick DDPM example: --steps, --batch, --lr,
-- --channels, --mults, --blocks, --T, --limit, --ema.
local sc = require "scorch"
local param = require "scorch.param"
local util = sc.util

local defaults = {
  out = "out/sampler_zoo_fashion", seed = 0, threads = 0, load = "", samples = 500, sample_batch = 250, only = "",
  steps = 700, batch = 32, lr = 2e-3, channels = 16, mults = "1,2,2", blocks = 1, T = 1000, limit = 10000,
  ema = 0.99,
}
local opts = util.example_args(arg, { defaults = defaults,
  usage = "usage: scorch examples/sampler_zoo_fashion.lua [options]\n"
    .. "Every image sampler on one Fashion-MNIST DDPM U-Net: FID against network evaluations.\n" })
local function int(v) return math.tointeger(v) or error("expected an integer, got " .. tostring(v)) end
local n_samples, seed = int(opts.samples), int(opts.seed)
local mults = {}
for m in tostring(opts.mults):gmatch("[^,]+") do mults[#mults + 1] = int(tonumber(m)) end
assert(util.mkdir(opts.out))
local function out(name) return opts.out .. "/" .. name end

-- FID needs more samples than feature dimensions; fail before training
local ext = sc.metrics.extractor("fashion_mnist")
if n_samples <= ext.dim then
  error(("sampler_zoo_fashion: --samples %d, but FID needs more samples than the %d feature dimensions of %s")
    :format(n_samples, ext.dim, ext.name))
end

-- ---- the network: the quick DDPM example's, trained the same way or loaded ----------------------

local gen = sc.Generator(seed)
local sched = sc.schedules.ddpm { kind = "linear", T = int(opts.T) }
local attention = {}
for i = 1, #mults do attention[i] = false end
-- built after the data loader, as in the DDPM example, so one seed draws alike
local function make_net()
  return sc.models.UNet { channels = int(opts.channels), mults = mults, attention = attention,
    blocks = int(opts.blocks), mid_attention = false, out = "eps", cond = "t", generator = gen }
end
local net
local train_time = 0
local source -- the weights sampled: the --load file or the checkpoint written here
if opts.load ~= "" then
  local sd, meta = sc.load(opts.load)
  if not sd then error(("sampler_zoo_fashion: cannot load %s: %s"):format(opts.load, tostring(meta))) end
  -- a checkpoint of the DDPM example holds "model." and "ema." weights: take the EMA ones
  local ema_sd = {}
  for k, v in pairs(sd) do
    local name = k:match("^ema%.(.*)$")
    if name then ema_sd[name] = v end
  end
  net = make_net()
  net:load_state_dict(next(ema_sd) and ema_sd or sd)
  source = opts.load
  print("loaded " .. opts.load .. (next(ema_sd) and " (EMA weights)" or ""))
else
  local images = sc.data.fashion_mnist("train", { limit = int(opts.limit) })
  local loader = sc.data.image_loader(images, { batch_size = int(opts.batch), shuffle = true, generator = gen,
    drop_last = true, dequantize = true }):forever()
  net = make_net()
  local optimizer = sc.optim.Adam(net, { lr = opts.lr })
  local ema = sc.optim.EMA(net, { decay = opts.ema })
  local steps, losses = int(opts.steps), {}
  local bar = util.progress(steps, { desc = "train" })
  local t0 = sc.time()
  for step = 1, steps do
    local loss = sc.losses.ddpm(net, loader(), { schedule = sched, generator = gen })
    optimizer:zero_grad()
    loss:backward()
    optimizer:step()
    ema:update()
    local frac = step / steps
    if frac > 0.8 then optimizer.lr = opts.lr * (1 - frac) / 0.2 + 1e-6 end
    losses[step] = loss:item()
    bar:update { loss = losses[step] }
  end
  bar:close()
  train_time = sc.time() - t0
  ema:copy_to(net)
  local sd = {}
  for k, v in pairs(net:state_dict()) do sd["ema." .. k] = v end
  source = out("ddpm.safetensors")
  assert(sc.save(source, sd, { model = "UNet", channels = tostring(opts.channels), mults = opts.mults,
    T = tostring(sched.T), prediction = "eps", step = tostring(steps) }))
  sc.viz.loss_curve(out("loss.png"), losses, { title = "l_simple" })
  print(("trained %d steps of batch %d in %.1f s; EMA weights: %s"):format(steps, int(opts.batch), train_time, source))
end
net:eval()

-- ---- the samplers ----------------------------------------------------------------------------------

-- one wrapped model: ε on its DDPM schedule, and D(x̂, σ) at any σ
local model = param.wrap(net, { kind = "eps", process = sched })
local function karras(n)
  return (sc.schedules.karras_sigmas(n, { sigma_min = sched.sigma_min, sigma_max = 80 }))
end
-- sampler(model, x_init, levels, opts): the start drawn from the prior of
-- the levels, then sampled --sample-batch images at a time by one generator
local function draw(name, levels, g, o)
  local x_init = sc.samplers.prior(levels, { n_samples, 1, 28, 28 }, { generator = g })
  return util.in_chunks(n_samples, int(opts.sample_batch), function(first, m)
    local so = { generator = g }
    for k, v in pairs(o or {}) do so[k] = v end
    return sc.samplers[name](model, x_init:narrow(1, first, m), levels, so)
  end)
end
-- DDPM and DDIM clip the predicted x₀ to [−1, 1] (as examples/ddpm_fashion_mnist.lua does)
local zoo = {
  { "ddpm 1000", function(g) return draw("ddpm", sched, g, { steps = 1000, clip_x0 = true }) end },
  { "ddpm 100", function(g) return draw("ddpm", sched, g, { steps = 100, clip_x0 = true }) end },
  { "ddim 50", function(g) return draw("ddim", sched, g, { steps = 50, clip_x0 = true }) end },
  { "ddim 20", function(g) return draw("ddim", sched, g, { steps = 20, clip_x0 = true }) end },
  { "ddim 10", function(g) return draw("ddim", sched, g, { steps = 10, clip_x0 = true }) end },
  { "edm heun 18", function(g) return draw("heun", karras(18), g) end },
  { "dpm++ 2m 20", function(g) return draw("dpmpp_2m", karras(20), g) end },
  { "dpm++ 2m 10", function(g) return draw("dpmpp_2m", karras(10), g) end },
}

-- ---- run and score ------------------------------------------------------------------------------------

local rows, docs, floor = {}, {}, nil
print(("\n%d samples per sampler, batches of %d, %d thread(s); extractor %s"):format(n_samples,
  int(opts.sample_batch), sc.get_num_threads and sc.get_num_threads() or 0, ext.name))
for _, z in ipairs(zoo) do
  local name = z[1]
  if opts.only == "" or name:find(opts.only, 1, true) then
    local t0 = sc.time()
    local x, info = z[2](sc.Generator(seed + 7))
    local secs = sc.time() - t0
    local x01 = sc.clamp((x + 1) / 2, 0, 1)
    local rep = sc.metrics.image_report(x01, "fashion_mnist", { generator = sc.Generator(seed + 3),
      floor = floor == nil })
    floor = floor or rep.floor
    rows[#rows + 1] = { label = name, report = rep, extra = { tostring(info.nfe), ("%.1f"):format(secs) },
      nfe = info.nfe, secs = secs }
    docs[#docs + 1] = sc.metrics.report_doc(rep, { sampler = name, nfe = info.nfe, seconds = secs })
    print(("%-12s %5d NFE  %7.1f s  FID %.4f  FID∞ %s  precision %.3f  recall %.3f"):format(name, info.nfe, secs,
      rep.fid, rep.fid_inf and ("%.4f"):format(rep.fid_inf) or "-", rep.precision, rep.recall))
    sc.viz.image_grid(out(("grid_%s.png"):format(name:gsub("[^%w]+", "_"))), x01:narrow(1, 1, math.min(64, n_samples)),
      { nrow = 8, title = ("%s (%d nfe)"):format(name, info.nfe) })
  end
end
if #rows == 0 then error("sampler_zoo_fashion: no sampler matches --only " .. opts.only) end

-- ---- the table --------------------------------------------------------------------------------------------

local title = ("%d samples per sampler against %d Fashion-MNIST training images (%s), k = 3; real/real: %d test "
  .. "images"):format(n_samples, rows[1].report.n_real, ext.name, floor and floor.n_fake or 0)
local tab_rows = {}
for i, r in ipairs(rows) do tab_rows[i] = r end
if floor then tab_rows[#tab_rows + 1] = { label = "real/real", report = floor, extra = { "-", "-" } } end
local tab = sc.metrics.metrics_table(tab_rows, { label = "sampler", extra = { "NFE", "seconds" } })
print("\n" .. title)
print(tab)
assert(util.write_atomic(out("table.md"), title .. "\n\n```\n" .. tab .. "\n```\n"))
local json = assert(sc.metrics.write_json(out("report.json"), {
  samples = n_samples, extractor = ext.name, model = source, train_seconds = train_time, seed = seed,
  samplers = docs, floor = floor and sc.metrics.report_doc(floor) }))

-- ---- FID against NFE (log scale), the floor as a dashed line -----------------------------------------------

local lo, hi, ymax = math.huge, -math.huge, 0
for _, r in ipairs(rows) do
  lo, hi = math.min(lo, math.log(r.nfe, 10)), math.max(hi, math.log(r.nfe, 10))
  ymax = math.max(ymax, r.report.fid)
end
if hi - lo < 0.5 then lo, hi = lo - 0.25, hi + 0.25 end
local pad_x = 0.08 * (hi - lo)
local cv, axs = sc.viz.panels(1, 420, { lo - pad_x, hi + pad_x, 0, 1.1 * ymax })
local ax = axs[1]
local families, colors = {}, { ddpm = "red", ddim = "blue", edm = "green", ["dpm++"] = "orange" }
for _, r in ipairs(rows) do
  local fam = r.label:match("^(%S+)")
  families[fam] = families[fam] or {}
  table.insert(families[fam], { math.log(r.nfe, 10), r.report.fid })
end
local fam_names = {}
for fam, pts in pairs(families) do
  table.sort(pts, function(a, b) return a[1] < b[1] end)
  ax:polyline(pts, colors[fam] or "black", 1)
  ax:points(pts, colors[fam] or "black", 3, 1)
  fam_names[#fam_names + 1] = fam
end
table.sort(fam_names)
if floor and floor.fid then
  local _, py = ax:to_px(lo, floor.fid)
  py = math.floor(py + 0.5)
  for px = ax.x0, ax.x1, 8 do cv:line(px, py, math.min(px + 4, ax.x1), py, "black", 0.7) end
  cv:text(ax.x0 + 4, py - 16, ("real/real %.2f"):format(floor.fid), "black")
end
-- the frame's box and tick marks; the labels drawn here, as NFE on the x axis (log scale)
ax:frame { title = ("fid vs nfe (log scale), %d samples"):format(n_samples), format = function() return "" end }
for _, t in ipairs(sc.viz.ticks(ax.xmin, ax.xmax)) do
  local px = math.floor(ax:to_px(t, ax.ymin) + 0.5)
  local s = ("%d"):format(math.floor(10 ^ t + 0.5))
  cv:text(px - sc.viz.text_width(s) // 2, ax.y1 + 6, s, "black")
end
for _, t in ipairs(sc.viz.ticks(ax.ymin, ax.ymax)) do
  local _, py = ax:to_px(ax.xmin, t)
  local s = ("%g"):format(t)
  cv:text(ax.x0 - 5 - sc.viz.text_width(s), math.floor(py + 0.5) - 2, s, "black")
end
for i, fam in ipairs(fam_names) do
  local ly = ax.y0 + 6 + (i - 1) * 10
  cv:fill_rect(ax.x1 - 60, ly, ax.x1 - 54, ly + 4, colors[fam] or "black")
  cv:text(ax.x1 - 50, ly, fam, "black")
end
local plot = assert(cv:save(out("fid_nfe.png")))
print(("\ntable: %s; report: %s; plot: %s; grids: %s/grid_*.png"):format(out("table.md"), json, plot, opts.out))
