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

-- ---- the table and the JSON (written to a temporary file and renamed) -----------------

print(sc.metrics.format_report(rep, { title = ("%s: %d samples against %d real images of %s (%s), k = %d")
  :format(path, rep.n_fake, rep.n_real, opts.data, rep.extractor, rep.k) }))
local written, werr = sc.metrics.write_json(out, sc.metrics.report_doc(rep, { samples = path, data = opts.data }),
  { overwrite = opts.overwrite })
if not written then fail(werr) end
print("wrote " .. out)
