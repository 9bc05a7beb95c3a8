-- The GAN image examples run end to end through the real host with tiny
-- options, against their own output: each finishes, writes one training
-- grid per --grids point (PNG files, named by step) and prints a report
-- whose samples row has a finite FID; the shapes run prints the class mix
-- against the training mix and gives the same numbers for the same seed;
-- bad options exit 2 with the usage.  Untrained classifiers stand in for
-- the trained ones in a private SCORCH_CACHE, so no classifier is trained
-- and nothing is fetched.
local sc = require "scorch"
local H = require "helpers"

local EXE = H.host()
local SHAPES = { "square", "circle", "rings", "triangle" }

local write_classifier = H.write_classifier -- (dir, data, names, seed)

-- runs an example with the cache at dir; returns its exit status and output
local function run(dir, script, args)
  return H.sh(("SCORCH_CACHE=%s %s %s %s"):format(H.quote(dir), H.quote(EXE), script, args))
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local is_png = H.is_png

-- the printed numbers without the timings and paths: every line but those
-- that report seconds or name files
local function numbers(out)
  return H.drop_lines(out, { "trained in", "sampled ", "report in", "time:", "report:", "pictures:" })
end

-- the FID of the report's samples row (nil when printed as "-")
local function samples_fid(out)
  local line = out:match("\nsamples +([^\n]*)")
  assert(line, "no samples row in the report:\n" .. out)
  return tonumber(line:match("^(%S+)"))
end

local finite = H.finite

-- checks a run's grids: one per point, at steps (steps·k) // grids
local function check_grids(dir, steps, grids)
  for k = 1, grids do
    local path = ("%s/grid_step%d.png"):format(dir, math.max(1, (steps * k) // grids))
    assert(is_png(path), "no PNG grid " .. path)
  end
  assert(is_png(dir .. "/samples.png"), "no samples.png in " .. dir)
end

describe("GAN image examples", function()
  local dir = os.tmpname()
  setup(function()
    os.remove(dir)
    assert(sc.util.mkdir(dir .. "/classifiers"))
    write_classifier(dir, "shapes", SHAPES, 3)
    write_classifier(dir, "fashion_mnist", sc.data.fashion_mnist_classes, 4)
  end)
  teardown(function() os.execute("rm -rf " .. H.quote(dir)) end)

  local TINY = "--steps 6 --batch 8 --g-channels 8 --d-channels 4 --samples 60 --grids 3 --threads 1"

  it("gan_shapes.lua trains, writes its grids, and reports the class mix with a finite FID, "
    .. "the same for the same seed", function()
    local outs = {}
    for i, seed in ipairs { 0, 0, 1 } do
      local o = ("%s/shapes%d"):format(dir, i)
      local status, out = run(dir, "examples/gan_shapes.lua", ("%s --train-size 300 --seed %d --out %s")
        :format(TINY, seed, H.quote(o)))
      assert.are.equal(0, status, out)
      check_grids(o, 6, 3)
      assert(read(o .. "/report.json"), "no report.json:\n" .. out)
      assert(finite(samples_fid(out)), "FID not finite:\n" .. out)
      local tv_s, tv_f = out:match("total variation%): samples (%S+), held%-out real (%S+)")
      assert(tonumber(tv_s) and tonumber(tv_s) >= 0 and tonumber(tv_s) <= 1, out)
      assert(tonumber(tv_f) and tonumber(tv_f) >= 0 and tonumber(tv_f) <= 1, out)
      -- every class in the class table, with the training pool's share
      for _, name in ipairs(SHAPES) do assert(out:find("\n" .. name .. " ", 1, true), name .. " missing:\n" .. out) end
      assert(out:find("does the GAN lose the rare class", 1, true), out)
      outs[i] = numbers(out)
    end
    assert.are.equal(outs[1], outs[2])
    -- another seed, other numbers: the comparison above can fail
    assert.are_not.equal(outs[1], outs[3])
  end)

  it("gan_fashion_mnist.lua trains, writes its grids and reports a finite FID beside the floor", function()
    if not pcall(sc.data.fashion_mnist, "train", { limit = 1 }) then
      pending("no Fashion-MNIST files (/usr/share/datasets/fashion-mnist, package dataset-fashion-mnist): not run")
      return
    end
    local o = dir .. "/fashion"
    local status, out = run(dir, "examples/gan_fashion_mnist.lua",
      TINY .. " --limit 200 --ref-n 200 --out " .. H.quote(o))
    assert.are.equal(0, status, out)
    check_grids(o, 6, 3)
    assert(read(o .. "/report.json"), "no report.json:\n" .. out)
    assert(finite(samples_fid(out)), "FID not finite:\n" .. out)
    local floor = out:match("\nreal/real +(%S+)")
    assert(finite(tonumber(floor)), "floor FID not finite:\n" .. out)
    for _, name in ipairs(sc.data.fashion_mnist_classes) do
      assert(out:find("\n" .. name .. " ", 1, true), name .. " missing from the class table:\n" .. out)
    end
  end)

  it("bad options print the usage and exit 2", function()
    for _, script in ipairs { "examples/gan_shapes.lua", "examples/gan_fashion_mnist.lua" } do
      local status, out = run(dir, script, "--stepz 3")
      assert.are.equal(2, status, out)
      assert(out:find("usage: scorch " .. script, 1, true), out)
      assert(out:find("stepz", 1, true), out)
    end
  end)
end)
