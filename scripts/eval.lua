-- Evaluates a file of generated images against a data set's real images:
-- FID, FID∞, KID, precision and recall (k = 3) in the feature space of the
-- data set's classifier, class mix and classifier confidence, overall and
-- per class, beside the real-versus-real noise floor.  Prints a table and
-- writes the numbers as JSON beside the samples (SAMPLES.eval.json).
--
--   bin/scorch scripts/eval.lua SAMPLES.safetensors --data shapes
--   bin/scorch scripts/eval.lua run/samples.safetensors --data fashion_mnist --ref-n 10000
--
-- SAMPLES holds images [N, C, H, W] in [0, 1] (the tensor named by --key,
-- else the only 4-d tensor).  The reference features are computed once per
-- data set and extractor and cached under $SCORCH_CACHE/fid_stats/.  Bad
-- input (wrong size or channels, NaN pixels, fewer samples than the feature
-- dimension, no trained classifier) stops with a message naming the file;
-- an existing JSON is kept unless --overwrite is given.
local sc = require "scorch"
local util = sc.util

local defaults = { data = "shapes", key = "", ref_n = 10000, k = 3, kid_subsets = 100, seed = 0,
  overwrite = false, threads = 0, floor = true }
local usage = "usage: scorch scripts/eval.lua SAMPLES.safetensors --data shapes|fashion_mnist [options]\n"

-- the samples file first, then the options
local path = arg[1]
if path and path:sub(1, 2) == "--" then path = nil end
local opts = util.parse_args(table.move(arg, path and 2 or 1, #arg, 1, {}), defaults, usage)
local function fail(msg)
  io.stderr:write("eval: " .. msg .. "\n")
  os.exit(1)
end
if not path then fail("no samples file given\n" .. usage) end
if opts.threads > 0 then sc.set_num_threads(math.tointeger(opts.threads)) end

-- ---- the samples ------------------------------------------------------------------

local f = io.open(path, "rb")
if not f then fail(("%s: no such file"):format(path)) end
f:close()
local tensors, err = sc.load(path)
if not tensors then fail(("%s: cannot read as safetensors (%s)"):format(path, tostring(err))) end
local images
if opts.key ~= "" then
  images = tensors[opts.key]
  if not images then fail(("%s: no tensor named '%s'"):format(path, opts.key)) end
else
  for _, t in pairs(tensors) do
    if t:dim() == 4 then
      if images then fail(("%s: several 4-d tensors; choose one with --key"):format(path)) end
      images = t
    end
  end
  if not images then fail(("%s: no images [N, C, H, W] in the file"):format(path)) end
end
images = images:float():contiguous()

local out = (path:gsub("%.safetensors$", "")) .. ".eval.json"
if io.open(out, "rb") and not opts.overwrite then
  fail(("%s exists; not overwritten (pass --overwrite)"):format(out))
end

-- ---- the metrics ----------------------------------------------------------------------

local ok, rep = pcall(function()
  local ext = sc.metrics.extractor(opts.data)
  if images:size(1) <= ext.dim then
    error(("%d samples, but FID needs more samples than the feature dimension (%d of %s)")
      :format(images:size(1), ext.dim, ext.name), 0)
  end
  return sc.metrics.image_report(images, opts.data, { ref_n = math.tointeger(opts.ref_n), k = math.tointeger(opts.k),
    kid_subsets = math.tointeger(opts.kid_subsets), generator = sc.Generator(math.tointeger(opts.seed)),
    floor = opts.floor, what = path })
end)
if not ok then
  local msg = tostring(rep):gsub("^[^:]*%.lua:%d+: ", ""):gsub("^scorch%.metrics%.[%w_]+: ", "")
  fail(("%s: %s"):format(path, msg))
end

-- ---- the table -------------------------------------------------------------------------

local function num(v, fmt) return v == nil and "-" or (fmt or "%.4f"):format(v) end
print(("%s: %d samples against %d real images of %s (%s), k = %d")
  :format(path, rep.n_fake, rep.n_real, opts.data, rep.extractor, rep.k))
print(("%-10s %10s %10s %10s %10s %10s %10s"):format("", "FID", "FID∞", "KID", "KID std", "precision", "recall"))
print(("%-10s %10s %10s %10s %10s %10s %10s"):format("samples", num(rep.fid), num(rep.fid_inf), num(rep.kid, "%.5f"),
  num(rep.kid_std, "%.5f"), num(rep.precision, "%.3f"), num(rep.recall, "%.3f")))
if rep.floor then
  local fl = rep.floor
  print(("%-10s %10s %10s %10s %10s %10s %10s"):format("real/real", num(fl.fid), num(fl.fid_inf), num(fl.kid, "%.5f"),
    num(fl.kid_std, "%.5f"), num(fl.precision, "%.3f"), num(fl.recall, "%.3f")))
end
print(("\n%-14s %8s %8s %8s %10s %10s"):format("class", "mix", "real", "conf", "precision", "recall"))
for c, name in ipairs(rep.class_names) do
  local pc = rep.per_class and rep.per_class[c] or {}
  print(("%-14s %7.1f%% %7.1f%% %8s %10s %10s"):format(name, 100 * rep.class_mix.frac[c], 100 * rep.ref_mix.frac[c],
    num(rep.class_mix.conf[c], "%.3f"), num(pc.precision, "%.3f"), num(pc.recall, "%.3f")))
end
print(("confident (top probability >= 0.9): %.1f%%, mean confidence %.3f")
  :format(100 * rep.class_mix.confident, rep.class_mix.mean_conf))

-- ---- JSON, written to a temporary file and renamed -------------------------------------

local NULL = {}
local function json(v, indent)
  indent = indent or ""
  local t = type(v)
  if t == "nil" or v == NULL then return "null" end
  if t == "boolean" then return tostring(v) end
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    return math.type(v) == "integer" and ("%d"):format(v) or ("%.17g"):format(v)
  end
  if t == "string" then
    return '"' .. v:gsub('[%c"\\]', function(ch) return ("\\u%04x"):format(ch:byte()) end) .. '"'
  end
  if sc.is_tensor(v) then return nil end
  local inner, parts = indent .. "  ", {}
  if #v > 0 or next(v) == nil then
    for i = 1, #v do parts[i] = json(v[i], inner) or "null" end
    return "[" .. table.concat(parts, ", ") .. "]"
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local s = json(v[k], inner)
    if s then parts[#parts + 1] = inner .. json(k) .. ": " .. s end
  end
  return "{\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "}"
end

local function list(t, n)
  local vals = {}
  for i = 1, n do vals[i] = t[i] == nil and NULL or t[i] end
  return vals
end
local K = #rep.class_names
local doc = {
  samples = path, data = opts.data, extractor = rep.extractor, n_samples = rep.n_fake, n_real = rep.n_real,
  k = rep.k, fid = rep.fid, fid_inf = rep.fid_inf, fid_inf_slope = rep.fid_inf_slope,
  fid_inf_counts = rep.fid_inf_info and rep.fid_inf_info.counts, kid = rep.kid, kid_std = rep.kid_std,
  precision = rep.precision, recall = rep.recall, class_names = rep.class_names,
  class_frac = rep.class_mix.frac, class_conf = list(rep.class_mix.conf, K), real_class_frac = rep.ref_mix.frac,
  confident = rep.class_mix.confident, mean_conf = rep.class_mix.mean_conf,
  per_class = rep.per_class and list(rep.per_class, K),
  floor = rep.floor and { fid = rep.floor.fid, fid_inf = rep.floor.fid_inf, kid = rep.floor.kid,
    kid_std = rep.floor.kid_std, precision = rep.floor.precision, recall = rep.floor.recall,
    n = rep.floor.n_fake, split = rep.floor.split },
}
local tmp = out .. ".tmp"
local fh, ferr = io.open(tmp, "w")
if not fh then fail(("cannot write %s: %s"):format(tmp, tostring(ferr))) end
fh:write(json(doc), "\n")
fh:close()
local renamed, rerr = os.rename(tmp, out)
if not renamed then
  os.remove(tmp)
  fail(("cannot write %s: %s"):format(out, tostring(rerr)))
end
print("wrote " .. out)
