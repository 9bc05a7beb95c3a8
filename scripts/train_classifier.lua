-- Trains the image classifier (lua/scorch/models/classifier.lua) that the
-- generative image examples use to label their samples, and whose
-- penultimate layer is the feature network of sc.metrics (FID, FID∞, KID,
-- precision/recall: sc.metrics.extractor, scripts/eval.lua), and stores it
-- in the cache.  Retraining changes the weights' hash and with it the
-- extractor's name, so cached reference statistics are recomputed.
--
--   bin/scorch scripts/train_classifier.lua --data shapes
--   bin/scorch scripts/train_classifier.lua --data fashion_mnist
--   bin/scorch scripts/train_classifier.lua --data shapes --quick     # a smoke run
--
-- Options: --epochs N, --out PATH (default: sc.models.classifier_path(data),
-- under $SCORCH_CACHE, $XDG_CACHE_HOME/scorch or ~/.cache/scorch; --quick
-- runs write <data>_quick.safetensors there instead), --seed,
-- --batch, --lr, --train-size (shapes; Fashion-MNIST: a prefix of the 60k),
-- --flip (random horizontal flips), --channels "32,64", --features, --pool
-- global|flatten (default: global for shapes, flatten for Fashion-MNIST),
-- --threads.
-- Inputs are scaled to [−1, 1].  Test accuracy is measured on a held-out
-- set: shapes drawn with another seed, or Fashion-MNIST's t10k split.
local sc = require "scorch"
local util = sc.util

local defaults = {
  data = "shapes", quick = false, epochs = 0, out = "", seed = 0, batch = 0, lr = 2e-3,
  train_size = 0, flip = false, channels = "32,64", features = 128, threads = 0, pool = "",
}

-- Per data set: how much data, how long.  Shapes are unlimited, so a run
-- is sized by its training set; the test set is drawn from another seed.
local presets = {
  shapes = { train = 20000, test = 4000, epochs = 2, quick_train = 8000, quick_epochs = 1,
    batch = 128, pool = "global" },
  fashion_mnist = { train = 60000, epochs = 3, quick_train = 10000, quick_epochs = 1,
    batch = 64, pool = "flatten" },
}

local opts = util.parse_args(arg, defaults, "usage: scorch scripts/train_classifier.lua --data shapes|fashion_mnist"
  .. " [options]\n")
local preset = presets[opts.data]
if not preset then
  io.stderr:write(("train_classifier: unknown --data %s (shapes or fashion_mnist)\n"):format(opts.data))
  os.exit(2)
end
if opts.threads > 0 then sc.set_num_threads(math.tointeger(opts.threads)) end
local seed = math.tointeger(opts.seed) or error("train_classifier: --seed must be an integer")
local epochs = math.tointeger(opts.epochs ~= 0 and opts.epochs
  or (opts.quick and preset.quick_epochs or preset.epochs))
local n_train = math.tointeger(opts.train_size ~= 0 and opts.train_size
  or (opts.quick and preset.quick_train or preset.train))
local channels = {}
for c in opts.channels:gmatch("%d+") do channels[#channels + 1] = math.tointeger(tonumber(c)) end
-- A quick run is a smoke test: it must not replace the real cached weights.
local batch = math.tointeger(opts.batch ~= 0 and opts.batch or preset.batch)
local pool = opts.pool ~= "" and opts.pool or preset.pool
local out = opts.out ~= "" and opts.out
  or sc.models.classifier_path(opts.quick and opts.data .. "_quick" or opts.data)

-- ---- data: images in [0, 1] here, scaled to [−1, 1] by the loader ----------------

local t_load = sc.time()
local x_train, y_train, x_test, y_test, names
if opts.data == "shapes" then
  x_train, y_train, names = sc.data.shapes { n = n_train, generator = sc.Generator(seed) }
  x_test, y_test = sc.data.shapes { n = preset.test, generator = sc.Generator(seed + 7919) }
else
  x_train, y_train = sc.data.fashion_mnist("train", { limit = n_train })
  x_test, y_test = sc.data.fashion_mnist("test")
  names = sc.data.fashion_mnist_classes
end
n_train = x_train:size(1)
print(("train_classifier: %s, %d training and %d test images, %d classes, %d epochs, batch %d (data in %.1f s)")
  :format(opts.data, n_train, x_test:size(1), #names, epochs, batch, sc.time() - t_load))

local gen = sc.Generator(seed)
local model = sc.models.Classifier { classes = #names, channels = channels, size = x_train:size(3),
  in_channels = x_train:size(2), features = math.tointeger(opts.features), pool = pool, generator = gen }
local loader = sc.data.image_loader(x_train, { labels = y_train, batch_size = batch, shuffle = true,
  generator = gen, flip = opts.flip, drop_last = true })
local steps = epochs * loader:num_batches()
local optimizer = sc.optim.Adam(model, { lr = opts.lr })
-- short warm-up, then cosine decay to zero over the run
local schedule = sc.optim.lr_scheduler.cosine(optimizer, { T_max = steps, warmup = math.min(100, steps // 10) })
print(("%s: %d parameters, %d steps"):format(tostring(model):match("^[^\n]*"), model:num_parameters(), steps))

-- ---- training ----------------------------------------------------------------------

model:train()
local t0 = sc.time()
local last_loss
for epoch = 1, epochs do
  local bar = util.progress(loader:num_batches(), { desc = ("epoch %d/%d"):format(epoch, epochs) })
  local sum, n = 0, 0
  for x, y in loader:iter() do
    local logits = model(x)
    local loss = sc.losses.cross_entropy(logits, y)
    optimizer:zero_grad()
    loss:backward()
    optimizer:step()
    schedule:step()
    last_loss = loss:item()
    local _, pred = logits:detach():max(2, false)
    local acc = pred:eq(y):mean():item()
    sum, n = sum + last_loss, n + 1
    bar:update { loss = last_loss, acc = acc }
  end
  bar:close()
  print(("epoch %d: mean loss %.4f, %.0f s elapsed"):format(epoch, sum / n, sc.time() - t0))
end
local train_time = sc.time() - t0

-- ---- evaluation --------------------------------------------------------------------

model:eval()
local t1 = sc.time()
local pred = model:predict(x_test * 2 - 1)
local truth = y_test:values()
local K = #names
local hits, counts = {}, {}
for k = 1, K do hits[k], counts[k] = 0, 0 end
local correct = 0
for i, p in ipairs(pred) do
  local y = math.tointeger(truth[i])
  counts[y] = counts[y] + 1
  if p == y then hits[y], correct = hits[y] + 1, correct + 1 end
end
local accuracy = correct / #pred
print(("\n%-14s %7s %9s"):format("class", "images", "accuracy"))
for k = 1, K do
  print(("%-14s %7d %8.2f%%"):format(names[k], counts[k], counts[k] > 0 and 100 * hits[k] / counts[k] or 0))
end
print(("%-14s %7d %8.2f%%"):format("all", #pred, 100 * accuracy))
print(("test accuracy %.2f%% after %d epochs; training %.1f s (%.1f ms/step), evaluation %.1f s")
  :format(100 * accuracy, epochs, train_time, 1000 * train_time / math.max(steps, 1), sc.time() - t1))

-- ---- saving -------------------------------------------------------------------------

local ok, err = model:save(out, {
  data = opts.data, class_names = names, test_accuracy = ("%.4f"):format(accuracy),
  test_size = #pred, train_size = n_train, epochs = epochs, seed = seed, batch = batch, lr = opts.lr,
  flip = tostring(opts.flip), train_seconds = ("%.1f"):format(train_time), final_loss = last_loss,
})
if not ok then
  io.stderr:write("train_classifier: " .. tostring(err) .. "\n")
  os.exit(1)
end
print("saved " .. out)
