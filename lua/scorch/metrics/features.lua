--- Feature extractors for image metrics, cached reference features of the
-- data sets, real-versus-real noise floors, and the whole image report
-- (FID, FID∞, KID, precision, recall, class mix and confidence, overall
-- and per class) that scripts/eval.lua and the image examples print.
--
-- The extractor of a data set is the project's own classifier
-- (lua/scorch/models/classifier.lua, trained by scripts/train_classifier.lua),
-- its penultimate layer.  It is named by data set and a hash of its
-- weights, "shapes-classifier@1a2b3c4d5e6f": numbers from different
-- extractors, or from different sample counts, are not comparable, so
-- every report carries the name and the counts.
-- @module scorch.metrics.features
local sc = require "scorch"
local common = require "scorch.metrics.common"
local fid = require "scorch.metrics.fid"
local prdc = require "scorch.metrics.prdc"
local classes = require "scorch.metrics.classes"

local M = {}

-- 64-bit FNV-1a over the 8-byte little-endian words of s (zero-padded),
-- as 16 hex digits.
local function fnv64(s)
  local h = -3750763034362895579          -- 0xcbf29ce484222325
  local prime = 1099511628211
  local n = #s
  s = s .. string.rep("\0", (8 - n % 8) % 8)
  for pos = 1, #s, 8 do
    h = (h ~ string.unpack("<i8", s, pos)) * prime
  end
  h = (h ~ n) * prime
  return ("%016x"):format(h)
end

-- Hash of the tensor bytes of a safetensors file (the header, which holds
-- metadata such as the training time, is left out).
local function weights_hash(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("a")
  f:close()
  if #s < 8 then return nil, path .. ": not a safetensors file" end
  local hlen = string.unpack("<I8", s)
  return fnv64(s:sub(9 + hlen))
end

local extractors = {}  -- path -> extractor, per process

--- The feature extractor of a data set: its trained classifier's
-- penultimate layer, identified by data set and weight hash.
-- @tparam string dataset `"shapes"` or `"fashion_mnist"` (any name with a cached classifier)
-- @tparam[opt] table opts `{path = classifier file (default sc.models.classifier_path(dataset))}`
-- @return `{name =, dataset =, hash =, dim =, size =, channels =, class_names =, model =,
--   fn = function(images [N, C, H, W] in [0, 1]) -> [N, D]}`; a missing
--   classifier raises an error naming the file and the command that trains it
-- @usage local ext = sc.metrics.extractor("shapes"); print(ext.name)
function M.extractor(dataset, opts)
  opts = common.check_opts("extractor", opts, { "path" })
  local path = opts.path or sc.models.classifier_path(dataset)
  if extractors[path] then return extractors[path] end
  local model, info = sc.models.load_classifier(dataset, path)
  local hash = assert(weights_hash(path))
  local ext = {
    dataset = dataset, hash = hash:sub(1, 12), path = path, model = model,
    name = ("%s-classifier@%s"):format(dataset, hash:sub(1, 12)),
    dim = model.feature_dim, size = model.size, channels = model.in_channels,
    class_names = info.class_names,
  }
  -- the classifier was trained on 2·pixel − 1
  ext.fn = function(images) return model:features(images * 2 - 1) end
  extractors[path] = ext
  return ext
end

local shape_str = require("scorch.util").shape_str

--- Features of images, in batches, without gradients.
-- @tparam Tensor images [N, C, H, W], pixel values in [0, 1]
-- @param ext an extractor from `extractor`, a data set name, or any
--   function images -> [n, D] (then named `opts.name`, default "user")
-- @tparam[opt] table opts `{batch = 256, name = "user", what = "images" (names the input in errors)}`
-- @return features [N, D] float32 and the extractor's name
-- @usage local f, name = sc.metrics.features(x, "shapes")
function M.features(images, ext, opts)
  opts = common.check_opts("features", opts, { "batch", "name", "what" })
  local what = opts.what or "images"
  if type(ext) == "string" then ext = M.extractor(ext) end
  local fn, name
  if type(ext) == "function" then
    fn, name = ext, opts.name or "user"
  elseif type(ext) == "table" and type(ext.fn) == "function" then
    fn, name = ext.fn, ext.name or opts.name or "user"
  else
    error("scorch.metrics.features: ext must be an extractor, a data set name or a function", 2)
  end
  if not sc.is_tensor(images) or images:dim() ~= 4 then
    error(("scorch.metrics.features: %s must be images [N, C, H, W], got %s"):format(what,
      shape_str(images)), 2)
  end
  if type(ext) == "table" and ext.size and (images:size(2) ~= ext.channels or images:size(3) ~= ext.size
      or images:size(4) ~= ext.size) then
    error(("scorch.metrics.features: %s are %s but the %s extractor takes [N, %d, %d, %d]")
      :format(what, shape_str(images), name, ext.channels, ext.size, ext.size), 2)
  end
  local bad = images:ne(images):sum():item()
  if bad > 0 then
    error(("scorch.metrics.features: %s hold %d NaN pixel values"):format(what, math.tointeger(bad)), 2)
  end
  local batch = common.posint(opts.batch, 256, "features", "batch")
  local N = images:size(1)
  local feats = sc.no_grad(function()
    return sc.util.in_chunks(N, batch, function(first, m)
      local f = fn(images:narrow(1, first, m))
      if not sc.is_tensor(f) or f:dim() ~= 2 or f:size(1) ~= m then
        error(("scorch.metrics.features: the extractor returned %s for %d images (expected [%d, D])")
          :format(shape_str(f), m, m), 0)
      end
      return f:float():contiguous()
    end)
  end)
  return feats, name
end

-- ---- reference features of a data set ---------------------------------------------

-- Real images of a data set: (images [n, C, H, W] in [0, 1], labels list).
-- split "train" and "test" are disjoint: Fashion-MNIST's own splits, or
-- shapes drawn from two seeds.
local function real_images(dataset, split, n)
  if dataset == "shapes" then
    local x, y = sc.data.shapes { n = n, generator = sc.Generator(split == "train" and 1 or 2) }
    return x, y
  elseif dataset == "fashion_mnist" then
    local x, y = sc.data.fashion_mnist(split, { limit = n })
    return x, y
  end
  error(("scorch.metrics.reference: no real images known for data set %s (pass real = {images, labels})")
    :format(tostring(dataset)), 3)
end

local function cache_path(ext, split, n)
  return ("%s/fid_stats/%s_%s_%d_%s.safetensors"):format(sc.models.Classifier.cache_dir(), ext.dataset,
    split, n, ext.hash)
end

local function labels_list(y)
  if sc.is_tensor(y) then
    local out = {}
    for i, v in ipairs(y:values()) do out[i] = math.tointeger(v) end
    return out
  end
  return y
end

--- Reference features and statistics of a data set's real images, computed
-- once and cached under $SCORCH_CACHE/fid_stats/ (name: data set, split,
-- count, extractor hash).
-- @tparam string dataset `"shapes"` or `"fashion_mnist"`
-- @tparam[opt] table opts `{split = "train" | "test", n = 10000, extractor = from dataset,
--   cache = true}`
-- @return `{stats =, features = [n, D], labels = {...}, extractor = name, split =, n =, path =}`
-- @usage local ref = sc.metrics.reference("shapes", {n = 2000})
function M.reference(dataset, opts)
  opts = common.check_opts("reference", opts, { "split", "n", "extractor", "cache" })
  local ext = opts.extractor or M.extractor(dataset)
  local split = opts.split or "train"
  if split ~= "train" and split ~= "test" then
    error("scorch.metrics.reference: split must be \"train\" or \"test\", got " .. tostring(split), 2)
  end
  local n = common.posint(opts.n, 10000, "reference", "n")
  local path = cache_path(ext, split, n)
  if opts.cache ~= false then
    local stats, t = fid.load_stats(path)
    if stats and t.features and t.labels and stats.extractor == ext.name then
      return { stats = stats, features = t.features, labels = labels_list(t.labels), extractor = ext.name,
        split = split, n = stats.n, path = path }
    end
  end
  local x, y = real_images(dataset, split, n)
  local feats = M.features(x, ext)
  local stats = fid.feature_stats(feats, { extractor = ext.name })
  stats.meta = { dataset = dataset, split = split }
  if opts.cache ~= false then
    local ok, err = sc.util.mkdir(path:match("^(.*)/[^/]*$"))
    if ok then ok, err = fid.save_stats(path, stats, { features = feats, labels = y:float() }) end
    if not ok then io.stderr:write("scorch.metrics.reference: not cached: " .. tostring(err) .. "\n") end
  end
  return { stats = stats, features = feats, labels = labels_list(y), extractor = ext.name, split = split,
    n = stats.n, path = path }
end

-- ---- reports ------------------------------------------------------------------------

local REPORT_OPTS = { "k", "kid_subsets", "fid_counts", "generator", "per_class", "min_class" }

--- The feature metrics of a set of generated features against real ones:
-- FID (when both sets have more points than dimensions), FID∞, KID,
-- precision and recall.
-- @tparam table real `{features = [N_r, D], stats = statistics or nil}`
-- @tparam Tensor fake features [N_f, D]
-- @tparam[opt] table opts `{k = 3, kid_subsets = 100, fid_counts = 5, generator =, extractor = name}`
-- @return `{fid =, fid_inf =, fid_inf_slope =, kid =, kid_std =, precision =, recall =,
--   n_real =, n_fake =, extractor =, k =}` (fid fields nil below D + 1 fakes)
-- @usage local m = sc.metrics.feature_report({features = real}, fake)
function M.feature_report(real, fake, opts)
  opts = common.check_opts("feature_report", opts, { "k", "kid_subsets", "fid_counts", "generator", "extractor" })
  local rf = common.features_arg(real.features, "feature_report", "real.features")
  fake = common.features_arg(fake, "feature_report", "fake")
  local D, nf = fake:size(2), fake:size(1)
  local ref = real.stats or fid.feature_stats(rf, { extractor = opts.extractor })
  local r = { n_real = rf:size(1), n_fake = nf, extractor = opts.extractor or ref.extractor, k = opts.k or 3 }
  if nf > D and rf:size(1) > D then
    r.fid = fid.fid(ref, fid.feature_stats(fake, { extractor = r.extractor }))
    if nf - math.max(nf // 5, D + 1) >= 4 then
      r.fid_inf, r.fid_inf_info = fid.fid_infinity(ref, fake, { counts = opts.fid_counts, generator = opts.generator,
        extractor = r.extractor })
      r.fid_inf_slope = r.fid_inf_info.slope
    end
  end
  local m = math.min(1000, rf:size(1), nf)
  if m >= 2 then
    r.kid, r.kid_std = prdc.kid(rf, fake, { subsets = opts.kid_subsets or 100, subset_size = m,
      generator = opts.generator })
  end
  if rf:size(1) > r.k and nf > r.k then
    local pr = prdc.precision_recall(rf, fake, { k = r.k, realism = false })
    r.precision, r.recall = pr.precision, pr.recall
  end
  return r
end

local function select_rows(x, idx) return #idx > 0 and x:index_select(1, idx) or nil end

--- Everything the image examples and scripts/eval.lua report about samples
-- of a data set: feature metrics (FID, FID∞, KID, precision, recall) against
-- the reference features, class mix and classifier confidence, the same
-- per class (fakes labelled by the classifier against reals of that class),
-- and the real-versus-real noise floor: another set of real images taken
-- through this same report (so the floor has per-class figures too), with
-- the generator as it stood on entry (the floor's subsets are the samples').
-- @tparam Tensor samples images [N, C, H, W] in [0, 1]
-- @tparam string dataset `"shapes"` or `"fashion_mnist"`
-- @tparam[opt] table opts `{ref_n = 10000, k = 3, kid_subsets = 100, fid_counts = 5, generator =,
--   per_class = true, min_class = k + 1, real = {images =, labels =} (another real set instead of
--   the data set's, e.g. an imbalanced training mix; not cached), what = "samples",
--   floor = true (the first N test images; none with `real`) | false | real images [n, C, H, W]}`
-- @return report table (see scripts/eval.lua for the fields it prints)
-- @usage local rep = sc.metrics.image_report(x, "shapes", {ref_n = 2000})
function M.image_report(samples, dataset, opts)
  local valid = { "ref_n", "floor", "real", "what" }
  for _, k in ipairs(REPORT_OPTS) do valid[#valid + 1] = k end
  opts = common.check_opts("image_report", opts, valid)
  local ext = M.extractor(dataset)
  local what = opts.what or "samples"
  local fake = M.features(samples, ext, { what = what })
  local ref
  if opts.real then
    local rf = M.features(opts.real.images, ext, { what = "real images" })
    ref = { features = rf, stats = fid.feature_stats(rf, { extractor = ext.name }),
      labels = labels_list(opts.real.labels), n = rf:size(1), split = "given" }
  else
    ref = M.reference(dataset, { n = opts.ref_n, extractor = ext })
  end
  local ro = { k = opts.k, kid_subsets = opts.kid_subsets, fid_counts = opts.fid_counts, generator = opts.generator,
    extractor = ext.name }
  local entry_state = opts.generator and opts.generator:get_state()
  local rep = M.feature_report(ref, fake, ro)
  rep.dataset, rep.ref_split = dataset, ref.split
  -- classes of the samples by the classifier, beside the reference mix
  local K = #ext.class_names
  local labels, probs = ext.model:predict(samples * 2 - 1)
  rep.class_names = ext.class_names
  rep.class_mix = classes.class_mix(labels, K, { probs = probs })
  rep.ref_mix = classes.class_mix(ref.labels, K)
  if opts.per_class ~= false then
    rep.per_class = {}
    local min_class = opts.min_class or (rep.k + 1)
    for c = 1, K do
      local fi, ri = {}, {}
      for i, l in ipairs(labels) do if l == c then fi[#fi + 1] = i end end
      for i, l in ipairs(ref.labels) do if l == c then ri[#ri + 1] = i end end
      local pc = { n_fake = #fi, n_real = #ri }
      if #fi >= min_class and #ri >= min_class then
        local pr = prdc.precision_recall(select_rows(ref.features, ri), select_rows(fake, fi),
          { k = rep.k, realism = false })
        pc.precision, pc.recall = pr.precision, pr.recall
      end
      rep.per_class[c] = pc
    end
  end
  local floor_images, split = opts.floor, "given"
  if floor_images == nil or floor_images == true then
    floor_images, split = not opts.real and real_images(dataset, "test", samples:size(1)) or nil, "test"
  elseif floor_images == false then
    floor_images = nil
  elseif not sc.is_tensor(floor_images) then
    error("scorch.metrics.image_report: floor must be true, false or real images [n, C, H, W], got "
      .. type(floor_images), 2)
  end
  if floor_images then
    local g = nil
    if entry_state then
      g = sc.Generator()
      g:set_state(entry_state)
    end
    local fo = {}
    for k, v in pairs(opts) do fo[k] = v end
    fo.floor, fo.generator, fo.what = false, g, split == "test" and "test images" or "floor images"
    rep.floor = M.image_report(floor_images, dataset, fo)
    rep.floor.split = split
  end
  return rep
end

return M
