-- The likelihood examples on Fashion-MNIST (examples/realnvp_fashion_mnist.lua,
-- examples/vae_fashion_mnist.lua) run end to end through the real host with
-- tiny options, checked against their own printed numbers and the relations
-- those must satisfy: bits/dim and nats per image agree (nats = bits/dim ·
-- 784 · ln 2), the IWAE bound is tighter than the ELBO, the report's FID is
-- finite, every PNG is written, the same seed prints the same numbers and
-- another seed others, and bad options exit 2 naming the option.  An
-- untrained classifier stands in for the trained one in a private
-- SCORCH_CACHE, so no classifier is trained and nothing is fetched.
local sc = require "scorch"
local H = require "helpers"

local EXE = H.host()
local D_LN2 = 784 * math.log(2)

local function write_classifier(dir)
  H.write_classifier(dir, "fashion_mnist", sc.data.fashion_mnist_classes, 4)
end

-- A small copy of Fashion-MNIST in dir/data (the first n_train and n_test
-- images with their labels, as plain IDX files with the counts patched), so
-- a run reads a few hundred images instead of decompressing 60,000.
local function write_small_copy(dir, n_train, n_test)
  local src = os.getenv("SCORCH_FASHION_MNIST") or sc.data.FASHION_MNIST_DIR
  assert(sc.util.mkdir(dir .. "/data"))
  for _, f in ipairs { { "train-images-idx3-ubyte", n_train, 16, 784 }, { "train-labels-idx1-ubyte", n_train, 8, 1 },
    { "t10k-images-idx3-ubyte", n_test, 16, 784 }, { "t10k-labels-idx1-ubyte", n_test, 8, 1 } } do
    local name, n, header, per = f[1], f[2], f[3], f[4]
    local path = src .. "/" .. name
    local gz = io.open(path .. ".gz", "rb")
    if gz then gz:close() end
    local p = assert(io.popen(("%s %s | head -c %d"):format(gz and "gzip -dc" or "cat",
      H.quote(gz and path .. ".gz" or path), header + n * per), "r"))
    local bytes = p:read("a")
    p:close()
    assert(#bytes == header + n * per, "short read of " .. name)
    local out = assert(io.open(dir .. "/data/" .. name, "wb"))
    out:write(bytes:sub(1, 4), string.pack(">I4", n), bytes:sub(9))
    out:close()
  end
end

-- runs an example with the cache at dir and the small data copy; returns its exit status and output
local function run(dir, script, args)
  return H.sh(("SCORCH_CACHE=%s SCORCH_FASHION_MNIST=%s %s %s %s"):format(H.quote(dir), H.quote(dir .. "/data"),
    H.quote(EXE), script, args))
end

local is_png, finite = H.is_png, H.finite

-- the printed numbers without the timings and paths
local function numbers(out)
  return H.drop_lines(out, { "trained in", "sampled ", "report in", "time:", "report:", "pictures:", "checkpoint:" })
end

-- the FID of the report's samples row
local function samples_fid(out)
  local line = out:match("\nsamples +([^\n]*)")
  assert(line, "no samples row in the report:\n" .. out)
  return tonumber(line:match("^(%S+)"))
end

local function have_data()
  return pcall(sc.data.fashion_mnist, "test", { limit = 1 })
end

describe("likelihood examples on Fashion-MNIST", function()
  local dir = os.tmpname()
  setup(function()
    os.remove(dir)
    assert(sc.util.mkdir(dir .. "/classifiers"))
    write_classifier(dir)
    if have_data() then
      write_small_copy(dir, 300, 100)
      -- the copy holds the first test images and labels, exactly
      local x, y = sc.data.fashion_mnist("test", { path = dir .. "/data" })
      local x0, y0 = sc.data.fashion_mnist("test", { limit = 100 })
      assert(x:size(1) == 100 and (x - x0):abs():max():item() == 0 and (y - y0):abs():max():item() == 0)
    end
  end)
  teardown(function() os.execute("rm -rf " .. H.quote(dir)) end)

  local COMMON = "--batch 8 --limit 64 --test-n 24 --samples 60 --ref-n 100 --threads 1"

  it("realnvp_fashion_mnist.lua trains, reports test bits/dim and a finite FID, writes its PNGs, "
    .. "the same for the same seed", function()
    if not have_data() then
      pending("no Fashion-MNIST files (package dataset-fashion-mnist): not run")
      return
    end
    local outs = {}
    for i, seed in ipairs { 0, 0, 1 } do
      local o = ("%s/realnvp%d"):format(dir, i)
      local status, out = run(dir, "examples/realnvp_fashion_mnist.lua",
        ("%s --steps 5 --hidden 4 --seed %d --out %s"):format(COMMON, seed, H.quote(o)))
      assert.are.equal(0, status, out)
      local n, bpd, se, nats = out:match("test bits/dim %(dequantised, (%d+) test images%): (%S+) ± (%S+)"
        .. "%s+%(NLL bound (%S+) nats per image%)")
      assert(n, "no test bits/dim line:\n" .. out)
      assert.are.equal(24, tonumber(n))
      bpd, se, nats = tonumber(bpd), tonumber(se), tonumber(nats)
      assert(finite(bpd) and finite(se) and finite(nats), out)
      -- a density on [0, 1)^784 after 5 steps: far from 0 bits/dim and below a few dozen
      assert(bpd > 1 and bpd < 30, out)
      assert.is_true(se > 0)
      assert.near(bpd * D_LN2, nats, 0.01 + 1e-4 * nats)
      assert(finite(samples_fid(out)), "FID not finite:\n" .. out)
      for _, f in ipairs { "samples.png", "samples_t07.png", "data.png", "loss.png", "classes.png" } do
        assert(is_png(o .. "/" .. f), "no PNG " .. f .. ":\n" .. out)
      end
      outs[i] = numbers(out)
    end
    assert.are.equal(outs[1], outs[2])
    assert.are_not.equal(outs[1], outs[3])
  end)

  it("vae_fashion_mnist.lua trains, reports the ELBO and a tighter IWAE bound in nats and bits/dim, "
    .. "a finite FID and its PNGs, the same for the same seed", function()
    if not have_data() then
      pending("no Fashion-MNIST files (package dataset-fashion-mnist): not run")
      return
    end
    local outs = {}
    for i, seed in ipairs { 0, 0, 1 } do
      local o = ("%s/vae%d"):format(dir, i)
      local status, out = run(dir, "examples/vae_fashion_mnist.lua",
        ("%s --steps 8 --channels 4,8 --latent 4 --k 16 --seed %d --out %s"):format(COMMON, seed, H.quote(o)))
      assert.are.equal(0, status, out)
      local e_nats, e_bpd = out:match("−ELBO +(%S+) ± %S+ nats +(%S+) bits/dim")
      local k, i_nats, i_bpd = out:match("−IWAE %(K = +(%d+)%) +(%S+) ± %S+ nats +(%S+) bits/dim")
      assert(e_nats and i_nats, "no bounds printed:\n" .. out)
      assert.are.equal(16, tonumber(k))
      e_nats, e_bpd, i_nats, i_bpd = tonumber(e_nats), tonumber(e_bpd), tonumber(i_nats), tonumber(i_bpd)
      for _, v in ipairs { e_nats, e_bpd, i_nats, i_bpd } do assert(finite(v), out) end
      assert.near(e_nats / D_LN2, e_bpd, 1e-3)
      assert.near(i_nats / D_LN2, i_bpd, 1e-3)
      -- log-likelihood bounds of 8-bit images: positive NLL, the IWAE bound (K = 16) below the ELBO's
      assert.is_true(i_nats > 0)
      assert(i_nats < e_nats, ("IWAE %g not below the ELBO %g"):format(i_nats, e_nats))
      assert(finite(samples_fid(out)), "FID not finite:\n" .. out)
      for _, f in ipairs { "samples.png", "reconstructions.png", "latent_scatter.png", "traversals.png",
        "loss.png", "classes.png" } do
        assert(is_png(o .. "/" .. f), "no PNG " .. f .. ":\n" .. out)
      end
      outs[i] = numbers(out)
    end
    assert.are.equal(outs[1], outs[2])
    assert.are_not.equal(outs[1], outs[3])
  end)

  it("bad options exit 2 and name the option", function()
    local cases = {
      { "examples/realnvp_fashion_mnist.lua", "--stepz 3", "stepz" },
      { "examples/realnvp_fashion_mnist.lua", "--steps 0", "--steps must be a positive integer" },
      { "examples/realnvp_fashion_mnist.lua", "--scales 4", "--scales 4" },
      { "examples/vae_fashion_mnist.lua", "--stepz 3", "stepz" },
      { "examples/vae_fashion_mnist.lua", "--k 2.5", "--k must be a positive integer" },
      { "examples/vae_fashion_mnist.lua", "--channels 8", "--channels must be two positive integers" },
    }
    for _, c in ipairs(cases) do
      local status, out = run(dir, c[1], c[2] .. " --out " .. H.quote(dir .. "/bad"))
      assert.are.equal(2, status, c[1] .. " " .. c[2] .. ":\n" .. out)
      assert(out:find(c[3], 1, true), c[1] .. " " .. c[2] .. ":\n" .. out)
    end
    -- an unknown name also prints the usage
    local _, out = run(dir, "examples/vae_fashion_mnist.lua", "--stepz 3")
    assert(out:find("usage: scorch examples/vae_fashion_mnist.lua", 1, true), out)
  end)
end)
