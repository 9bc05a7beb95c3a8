-- The feature extractor and scripts/eval.lua, with a small untrained
-- classifier standing in for the trained one (its own cache directory):
-- the extractor gives the same bits at 1 and 2 threads and is named by its
-- weights' hash; the script writes a JSON report for good samples, keeps an
-- existing one, and stops on bad input with a message naming the file.
local sc = require "scorch"
local H = require "helpers"

local EXE = os.getenv("SCORCH_BIN") or "bin/scorch"
local NAMES = { "square", "circle", "rings", "triangle" }

local function write_classifier(dir, seed)
  local model = sc.models.Classifier { classes = 4, channels = { 4, 8 }, size = 28, features = 8,
    generator = sc.Generator(seed) }
  model:eval()
  assert(model:save(dir .. "/classifiers/shapes.safetensors", { data = "shapes", class_names = NAMES }))
end

-- runs scripts/eval.lua with the cache at `dir`; returns output and success
local function eval(dir, args)
  local cmd = ("SCORCH_CACHE=%s %s scripts/eval.lua %s 2>&1"):format(H.quote(dir), H.quote(EXE), args)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

describe("feature extractor", function()
  local dir = os.tmpname()
  setup(function()
    os.remove(dir)
    assert(sc.util.mkdir(dir .. "/classifiers"))
    write_classifier(dir, 3)
  end)
  teardown(function() os.execute("rm -rf " .. H.quote(dir)) end)

  it("gives the same bits at 1 and 2 threads and is named by its weights", function()
    local path = dir .. "/classifiers/shapes.safetensors"
    local ext = sc.metrics.extractor("shapes", { path = path })
    assert.truthy(ext.name:match("^shapes%-classifier@%x+$"), ext.name)
    assert.are.equal(8, ext.dim)
    local x = sc.data.shapes { n = 300, generator = sc.Generator(5) }
    local threads = sc.get_num_threads()
    sc.set_num_threads(1)
    local f1 = sc.metrics.features(x, ext):values()
    sc.set_num_threads(2)
    local f2 = sc.metrics.features(x, ext):values()
    sc.set_num_threads(threads)
    assert.are.equal(300 * 8, #f1)
    for i = 1, #f1 do
      if f1[i] ~= f2[i] then error(("feature %d: %.9g at 1 thread, %.9g at 2"):format(i, f1[i], f2[i])) end
    end
  end)
end)

describe("scripts/eval.lua", function()
  local dir = os.tmpname()
  local function samples(name, x)
    local path = dir .. "/" .. name .. ".safetensors"
    assert(sc.save(path, { images = x }))
    return path
  end
  setup(function()
    os.remove(dir)
    assert(sc.util.mkdir(dir .. "/classifiers"))
    write_classifier(dir, 3)
  end)
  teardown(function() os.execute("rm -rf " .. H.quote(dir)) end)

  it("writes a report for real shapes and keeps it on a second run", function()
    local path = samples("real", (sc.data.shapes { n = 60, generator = sc.Generator(9) }))
    local out, ok = eval(dir, H.quote(path) .. " --data shapes --ref-n 200 --kid-subsets 5")
    assert(ok, out)
    local json = dir .. "/real.eval.json"
    local f = assert(io.open(json, "rb"), out)
    local text = f:read("a")
    f:close()
    -- the report names its extractor and counts, and FID is a finite number
    assert.truthy(text:find('"extractor": "shapes%-classifier@%x+"'), text)
    assert.truthy(text:find('"n_samples": 60', 1, true), text)
    local fid = tonumber(text:match('"fid": ([-%d.eE+]+)'))
    assert(fid and fid >= 0 and fid < math.huge, text)
    local again, ok2 = eval(dir, H.quote(path) .. " --data shapes --ref-n 200 --kid-subsets 5")
    assert.is_falsy(ok2)
    assert.truthy(again:find("exists; not overwritten", 1, true), again)
    local g = assert(io.open(json, "rb"))
    assert.are.equal(text, g:read("a"))
    g:close()
  end)

  it("stops on bad input with the file named and writes nothing", function()
    local nan = sc.data.shapes { n = 20, generator = sc.Generator(1) }
    nan = sc.where(sc.arange(nan:numel()):view(nan:shape()):eq(7), 0 / 0, nan)
    local cases = {
      { samples("small", sc.rand(20, 1, 16, 16)), "16" },
      { samples("rgb", sc.rand(20, 3, 28, 28)), "3" },
      { samples("nan", nan), "NaN" },
      { samples("few", sc.rand(5, 1, 28, 28)), "feature dimension" },
      { dir .. "/missing.safetensors", "no such file" },
    }
    for _, c in ipairs(cases) do
      local out, ok = eval(dir, H.quote(c[1]) .. " --data shapes --ref-n 200 --kid-subsets 5")
      assert.is_falsy(ok, c[1])
      assert.truthy(out:find(c[1], 1, true), "message does not name the file: " .. out)
      assert.truthy(out:find(c[2], 1, true), ("message lacks %q: %s"):format(c[2], out))
      assert.is_false(exists((c[1]:gsub("%.safetensors$", "")) .. ".eval.json"), c[1])
    end
  end)

  it("takes the floor through the same report, per class, with the generator as it stood on entry", function()
    local script = dir .. "/floor.lua"
    local f = assert(io.open(script, "w"))
    f:write([[
local sc = require "scorch"
local x = sc.data.shapes { n = 60, generator = sc.Generator(9) }
local opts = { ref_n = 200, kid_subsets = 5 }
opts.generator = sc.Generator(4)
local rep = sc.metrics.image_report(x, "shapes", opts)
local test = sc.data.shapes { n = 60, generator = sc.Generator(2) }   -- the test split's first 60
opts.generator, opts.floor = sc.Generator(4), false
local alone = sc.metrics.image_report(test, "shapes", opts)
opts.generator, opts.floor = sc.Generator(4), test
local given = sc.metrics.image_report(x, "shapes", opts)
print("SAME", rep.floor.fid == alone.fid, rep.floor.fid_inf == alone.fid_inf, rep.floor.recall == alone.recall,
  rep.floor.split, rep.floor.per_class ~= nil, given.floor.fid == alone.fid, given.floor.split)
]])
    f:close()
    local cmd = ("SCORCH_CACHE=%s %s %s 2>&1"):format(H.quote(dir), H.quote(EXE), H.quote(script))
    local p = assert(io.popen(cmd, "r"))
    local out = p:read("a")
    p:close()
    assert.truthy(out:find("SAME\ttrue\ttrue\ttrue\ttest\ttrue\ttrue\tgiven", 1, true), out)
  end)

  it("without a trained classifier says which file is missing", function()
    local empty = dir .. "/empty"
    assert(sc.util.mkdir(empty))
    local path = samples("ok", sc.rand(20, 1, 28, 28))
    local out, ok = eval(empty, H.quote(path) .. " --data shapes")
    assert.is_falsy(ok)
    assert.truthy(out:find(empty .. "/classifiers/shapes.safetensors", 1, true), out)
  end)
end)
