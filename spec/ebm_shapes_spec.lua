-- The convolutional energy and its example against finite differences:
-- ConvEnergy's ∇ₓE (its score) and the θ-gradient of the contrastive-
-- divergence loss through it match central differences in float64; bad
-- options and inputs raise errors that name the function and the shapes;
-- bounded Langevin chains stay in their range; examples/ebm_shapes.lua runs
-- end to end with tiny options (an untrained classifier in a private
-- SCORCH_CACHE), writes its PNGs, prints finite numbers, repeats them for
-- the same seed, and stops a diverging run naming the step without
-- touching the checkpoint.
local sc = require "scorch"
local H = require "helpers"

local EXE = H.host()
local SHAPES = { "square", "circle", "rings", "triangle" }

local function f64(t) return sc.tensor(t, { dtype = "float64" }) end

-- a small float64 energy on 8×8 images
local function tiny_energy(seed, act)
  return sc.models.ConvEnergy { channels = { 3, 4 }, size = 8, act = act, dtype = "float64",
    generator = sc.Generator(seed) }
end

-- E summed over the batch at x, for finite differences
local function total(E, x) return sc.no_grad(function() return E(x):sum():item() end) end

describe("sc.models.ConvEnergy", function()
  it("maps [N, C, H, W] to [N] energies, one image's energy independent of the others", function()
    local E = tiny_energy(1)
    local x = sc.randn({ 5, 1, 8, 8 }, { generator = sc.Generator(2), dtype = "float64" })
    local e = E(x)
    assert.are.same({ 5 }, e:shape())
    -- no normalisation across the batch: the third image alone gives the same energy
    assert.is_true(math.abs(E(x:narrow(1, 3, 1)):item() - e:totable()[3]) < 1e-12)
    -- a 3-channel 12×12 model: 12 → 6 → 3
    local E3 = sc.models.ConvEnergy { channels = { 4 }, in_channels = 3, size = 12, generator = sc.Generator(3) }
    assert.are.same({ 2 }, E3(sc.rand(2, 3, 12, 12)):shape())
    assert.are.equal(6, E3.final_size)
  end)

  for _, act in ipairs { "silu", "softplus" } do
    it("score(x) is −∇ₓE by central differences at every pixel (float64, " .. act .. ")", function()
      local E = tiny_energy(4, act)
      local x = sc.randn({ 2, 1, 8, 8 }, { generator = sc.Generator(5), dtype = "float64" })
      local s = E:score(x):reshape(-1):totable()
      local base = x:reshape(-1):totable()
      local h, worst = 1e-5, 0
      for k = 1, #base do
        local up, down = { table.unpack(base) }, { table.unpack(base) }
        up[k], down[k] = base[k] + h, base[k] - h
        local fd = (total(E, f64(up):view(2, 1, 8, 8)) - total(E, f64(down):view(2, 1, 8, 8))) / (2 * h)
        worst = math.max(worst, math.abs(-s[k] - fd) / (1e-6 + math.abs(fd)))
      end
      assert.is_true(worst < 1e-5, ("worst relative error %.3g"):format(worst))
      -- and the gradient is not trivially zero
      local norm = 0
      for _, v in ipairs(s) do norm = norm + v * v end
      assert.is_true(norm > 1e-6)
    end)
  end

  it("the CD loss's parameter gradients match central differences (float64, α = 0.5)", function()
    local E = tiny_energy(6)
    local g = sc.Generator(7)
    local xp = sc.rand({ 4, 1, 8, 8 }, { generator = g, dtype = "float64" }) * 2 - 1
    local xn = sc.rand({ 3, 1, 8, 8 }, { generator = g, dtype = "float64" }) * 2 - 1
    local function loss() return sc.losses.cd(E, xp, xn, { alpha = 0.5 }) end
    local params = E:parameters()
    local grads = sc.grad(loss(), params)
    local h, checked = 1e-6, 0
    for i, p in ipairs(params) do
      local flat, n = p:detach():reshape(-1), p:numel()
      local an = grads[i]:reshape(-1):totable()
      -- the first, a middle and the last entry of every tensor
      for _, k in ipairs { 1, (n + 1) // 2, n } do
        local v0 = flat:totable()[k]
        local function at(v)
          sc.no_grad(function() p:view(-1):narrow(1, k, 1):copy_(f64 { v }) end)
          return sc.no_grad(function() return loss():item() end)
        end
        local fd = (at(v0 + h) - at(v0 - h)) / (2 * h)
        at(v0)
        assert.is_true(math.abs(an[k] - fd) < 1e-6 + 1e-5 * math.abs(fd),
          ("parameter %d entry %d: autograd %.10g, finite difference %.10g"):format(i, k, an[k], fd))
        checked = checked + 1
      end
    end
    assert.are.equal(3 * #params, checked)
  end)

  it("bad options and inputs name the function, the argument and the shapes", function()
    local cases = {
      { { channels = {} }, "channels" }, { { channels = { 4, 0 } }, "channels[2]" }, { { act = "relu" }, "smooth" },
      { { size = 1 }, "size" }, { { in_channels = 1.5 }, "in_channels" }, { { width = 3 }, "valid:" },
    }
    for _, c in ipairs(cases) do
      local ok, msg = pcall(sc.models.ConvEnergy, c[1])
      assert.is_false(ok)
      assert.truthy(msg:find("scorch.models.ConvEnergy", 1, true) and msg:find(c[2], 1, true), msg)
    end
    local E = tiny_energy(8)
    for _, x in ipairs { sc.rand(2, 1, 8, 9):double(), sc.rand(2, 2, 8, 8):double(), sc.rand(2, 64):double() } do
      local ok, msg = pcall(E, x)
      assert.is_false(ok)
      assert.truthy(msg:find("argument x", 1, true) and msg:find("[N, 1, 8, 8]", 1, true)
        and msg:find(sc.util.shape_str(x), 1, true), msg)
    end
  end)

  it("is registered as sc.models.ConvEnergy, an energy model whose score needs autograd", function()
    local E = sc.models.ConvEnergy { channels = { 2 }, size = 4, generator = sc.Generator(1) }
    assert.are.equal(sc.models.ConvEnergy, getmetatable(E))
    assert.is_true(sc.models.ConvEnergy.needs_grad)
  end)
end)

describe("bounded Langevin negatives", function()
  it("keep the chains in [lo, hi] and move them down the energy", function()
    local E = tiny_energy(9)
    local x0 = sc.rand({ 16, 1, 8, 8 }, { generator = sc.Generator(10), dtype = "float64" }) * 2 - 1
    local x = sc.losses.langevin_negatives(E, x0, { steps = 20, step_size = 2, noise = 0.3, bounds = { -1, 1 },
      generator = sc.Generator(11) })
    assert.is_true(x:max():item() <= 1 and x:min():item() >= -1)
    -- the noise alone would leave the box: the clamp acted
    assert.is_true(x:abs():eq(1):sum():item() > 0)
    -- without noise the energy falls
    local xd = sc.losses.langevin_negatives(E, x0, { steps = 20, step_size = 2, noise = 0, bounds = { -1, 1 } })
    assert.is_true(E(xd):sum():item() < E(x0):sum():item())
    for _, b in ipairs { { 1, -1 }, { 0 }, 3 } do
      local ok, msg = pcall(sc.losses.langevin_negatives, E, x0, { step_size = 1, bounds = b })
      assert.is_false(ok)
      assert.truthy(msg:find("langevin_negatives", 1, true) and msg:find("bounds", 1, true), msg)
    end
  end)
end)

-- ---- the example, end to end ------------------------------------------------------------

local function write_classifier(dir, seed) H.write_classifier(dir, "shapes", SHAPES, seed) end

local function run(dir, args)
  return H.sh(("SCORCH_CACHE=%s %s examples/ebm_shapes.lua %s"):format(H.quote(dir), H.quote(EXE), args))
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local is_png, finite = H.is_png, H.finite

-- the printed numbers without timings and paths
local function numbers(out)
  local keep = {}
  for line in out:gmatch("[^\n]*") do
    if not (line:match("^sampled ") or line:match("^report in") or line:match("^time:")
        or line:match("^report:") or line:match("^pictures:") or line:match("^checkpoint:")) then
      keep[#keep + 1] = (line:gsub("^trained in [%d.]+ s %([%d.]+ s/step%)", "trained"))
    end
  end
  return table.concat(keep, "\n")
end

describe("examples/ebm_shapes.lua", function()
  local dir = os.tmpname()
  setup(function()
    os.remove(dir)
    assert(sc.util.mkdir(dir .. "/classifiers"))
    write_classifier(dir, 3)
  end)
  teardown(function() os.execute("rm -rf " .. H.quote(dir)) end)

  local TINY = "--steps 6 --batch 8 --channels 4,8 --train-size 200 --chain-steps 3 --buffer 64 --samples 60 "
    .. "--sample-steps 6 --sample-batch 30 --grids 2 --checkpoint-every 3 --threads 1"

  it("trains, writes its PNGs, reports the class mix with finite numbers, the same for the same seed", function()
    local outs = {}
    for i, seed in ipairs { 0, 0, 1 } do
      local o = ("%s/run%d"):format(dir, i)
      local status, out = run(dir, ("%s --seed %d --out %s"):format(TINY, seed, H.quote(o)))
      assert.are.equal(0, status, out)
      for _, name in ipairs { "grid_step3", "grid_step6", "samples", "chains", "buffer", "training", "classes",
        "loss", "energy" } do
        assert(is_png(("%s/%s.png"):format(o, name)), "no PNG " .. name .. ":\n" .. out)
      end
      assert(read(o .. "/report.json"), "no report.json:\n" .. out)
      local tensors = assert(sc.load(o .. "/ebm.safetensors"))
      for name, t in pairs(tensors) do assert(finite(t:sum():item()), name) end
      local loss, ep, en = out:match("loss (%S+), E%(data%) (%S+), E%(negatives%) (%S+)\n")
      assert(finite(tonumber(loss)) and finite(tonumber(ep)) and finite(tonumber(en)), out)
      local fid = tonumber((out:match("\nsamples +(%S+)")))
      assert(finite(fid), "FID not finite:\n" .. out)
      local tv_s, tv_f = out:match("total variation%): samples (%S+), held%-out real (%S+)")
      assert(tonumber(tv_s) and tonumber(tv_s) >= 0 and tonumber(tv_s) <= 1, out)
      assert(tonumber(tv_f) and tonumber(tv_f) >= 0 and tonumber(tv_f) <= 1, out)
      for _, name in ipairs(SHAPES) do assert(out:find("\n" .. name .. " ", 1, true), name .. " missing:\n" .. out) end
      assert(out:find("does the EBM lose the rare class", 1, true), out)
      outs[i] = numbers(out)
    end
    assert.are.equal(outs[1], outs[2])
    assert.are_not.equal(outs[1], outs[3])
  end)

  it("a diverging run stops naming the step and leaves the checkpoint as it was", function()
    local o = dir .. "/div"
    local status, out = run(dir, ("%s --out %s"):format(TINY, H.quote(o)))
    assert.are.equal(0, status, out)
    local before = assert(read(o .. "/ebm.safetensors"))
    -- every energy exceeds a bound this small: the first step diverges
    status, out = run(dir, ("%s --max-energy 1e-12 --out %s"):format(TINY, H.quote(o)))
    assert.are.equal(3, status, out)
    assert(out:find("training diverged at step 1 (", 1, true), out)
    assert.are.equal(before, read(o .. "/ebm.safetensors"))
  end)

  it("bad options print the usage and exit 2", function()
    local status, out = run(dir, "--stepz 3")
    assert.are.equal(2, status, out)
    assert(out:find("usage: scorch examples/ebm_shapes.lua", 1, true), out)
    assert(out:find("stepz", 1, true), out)
  end)
end)
