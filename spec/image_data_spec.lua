-- Image data: IDX data sets (Fashion-MNIST layout) read back from small
-- files this spec writes, and the image loader's scaling, dequantisation,
-- flips and seeded shuffles.
local sc = require "scorch"

local tmpdir = os.tmpname()
os.remove(tmpdir)
assert(os.execute("mkdir -p '" .. tmpdir .. "'"))

-- An IDX file of unsigned bytes with the given dims (big-endian header).
local function write_idx(path, dims, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(string.pack(">BBBB", 0, 0, 0x08, #dims))
  for _, d in ipairs(dims) do f:write(string.pack(">I4", d)) end
  f:write(string.char(table.unpack(bytes)))
  f:close()
end

-- n images of h x w whose pixel (i, r, c) is (7i + 3r + c) mod 256, labels i mod 10.
local function fake_split(dir, prefix, n, h, w)
  local px, lb = {}, {}
  for i = 0, n - 1 do
    for r = 0, h - 1 do
      for c = 0, w - 1 do px[#px + 1] = (7 * i + 3 * r + c) % 256 end
    end
    lb[#lb + 1] = i % 10
  end
  write_idx(dir .. "/" .. prefix .. "-images-idx3-ubyte", { n, h, w }, px)
  write_idx(dir .. "/" .. prefix .. "-labels-idx1-ubyte", { n }, lb)
end

describe("sc.data.fashion_mnist", function()
  setup(function()
    fake_split(tmpdir, "train", 12, 28, 28)
    fake_split(tmpdir, "t10k", 5, 28, 28)
  end)
  teardown(function() os.execute("rm -rf '" .. tmpdir .. "'") end)

  it("reads IDX pairs into [n,1,28,28] images in [0,1] and 1-based labels", function()
    local x, y = sc.data.fashion_mnist("train", { path = tmpdir })
    assert.same({ 12, 1, 28, 28 }, x:shape())
    assert.same({ 12 }, y:shape())
    -- pixel (i=3, r=2, c=5) 0-based → (21 + 6 + 5) / 255
    local v = x:select(1, 4):select(1, 1):select(1, 3):select(1, 6):item()
    assert.near(32 / 255, v, 1e-6)
    assert.near((77 + 81 + 27) / 255, x:max():item(), 1e-6) -- i = 11, r = c = 27
    assert.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 2 }, y:values())
    local xt, yt = sc.data.fashion_mnist("test", { path = tmpdir })
    assert.same({ 5, 1, 28, 28 }, xt:shape())
    assert.same({ 1, 2, 3, 4, 5 }, yt:values())
    local xl = sc.data.fashion_mnist("train", { path = tmpdir, limit = 4 })
    assert.equal(4, xl:size(1))
  end)

  it("names the Debian package when the files are absent", function()
    local ok, err = pcall(sc.data.fashion_mnist, "train", { path = tmpdir .. "/missing" })
    assert.is_false(ok)
    assert.truthy(err:find("dataset-fashion-mnist", 1, true))
    assert.truthy(err:find("train-images-idx3-ubyte", 1, true))
    assert.has_error(function() sc.data.fashion_mnist("valid", { path = tmpdir }) end)
  end)

  it("idx_dataset returns nil and a message on mismatched files", function()
    write_idx(tmpdir .. "/few-labels", { 3 }, { 0, 1, 2 })
    local x, err = sc.data.idx_dataset(tmpdir .. "/train-images-idx3-ubyte", tmpdir .. "/few-labels")
    assert.is_nil(x)
    assert.truthy(err:find("3 labels for 12 images", 1, true))
    local x2, err2 = sc.data.idx_dataset(tmpdir .. "/nope", tmpdir .. "/few-labels")
    assert.is_nil(x2)
    assert.is_string(err2)
  end)
end)

describe("sc.data.image_loader", function()
  -- n images whose pixels are all k_i/255 plus a left-to-right ramp of
  -- one level per column, so flips and identities can be read back.
  local function ramp_images(n, w)
    local rows = {}
    for i = 1, n do
      local img = {}
      for r = 1, 2 do
        img[r] = {}
        for c = 1, w do img[r][c] = ((i * 5) % 200 + c) / 255 end
      end
      rows[i] = { img }
    end
    return sc.tensor(rows)
  end

  it("scales [0,1] to [-1,1] and keeps labels with their images", function()
    local x = ramp_images(10, 4)
    local labels = sc.arange(1, 11)
    local ld = sc.data.image_loader(x, { labels = labels, batch_size = 4, shuffle = true,
                                        generator = sc.Generator(1) })
    assert.equal(3, #ld)
    local seen = {}
    for xb, yb in ld:iter() do
      for j, lab in ipairs(yb:values()) do
        seen[#seen + 1] = lab
        local want = x:select(1, lab) * 2 - 1
        assert.near(0, (xb:select(1, j) - want):abs():max():item(), 1e-6)
      end
    end
    table.sort(seen)
    assert.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, seen)
    assert.near(-1, sc.data.image_loader(sc.zeros(2, 1, 3, 3)):iter()():min():item(), 0)
  end)

  it("shuffles reproducibly with a seeded generator", function()
    local x = ramp_images(30, 3)
    local function first_labels(seed)
      local ld = sc.data.image_loader(x, { labels = sc.arange(1, 31), batch_size = 30,
        shuffle = true, generator = sc.Generator(seed), dequantize = true, flip = true })
      local xb, yb = ld:iter()()
      return yb:values(), xb
    end
    local a, xa = first_labels(9)
    local b, xb = first_labels(9)
    local c = first_labels(10)
    assert.same(a, b)
    assert.equal(0, (xa - xb):abs():max():item())
    assert.are_not.same(a, c)
  end)

  it("dequantises uniformly within each 8-bit level", function()
    local n = 64
    local x = ramp_images(n, 16)
    local ld = sc.data.image_loader(x, { batch_size = n, dequantize = true,
                                        generator = sc.Generator(4) })
    local xb = ld:iter()()
    -- back in [0,1]: 256·x01 − k must lie in [0,1) and be uniform there
    local frac = ((xb + 1) * 0.5 * 256 - x * 255)
    assert.is_true(frac:min():item() >= -1e-4)
    assert.is_true(frac:max():item() < 1 + 1e-4)
    local N = frac:numel()
    local m = frac:mean():item()
    assert.is_true(math.abs(m - 0.5) < 4 * math.sqrt(1 / 12 / N), "mean " .. m)
    assert.near(1 / 12, frac:var():item(), 0.01)
  end)

  it("flips about half of the images left-right, each exactly", function()
    local n, w = 400, 5
    local x = ramp_images(n, w)
    local ld = sc.data.image_loader(x, { batch_size = n, flip = true, scale = false,
                                        generator = sc.Generator(8) })
    local xb = ld:iter()()
    local flipped = 0
    for i = 1, n do
      local a, b = x:select(1, i), xb:select(1, i)
      local first, last = b:select(3, 1):select(2, 1):item(), b:select(3, w):select(2, 1):item()
      if first > last then
        flipped = flipped + 1
        local rev = a:index_select(3, { 5, 4, 3, 2, 1 })
        assert.near(0, (b - rev):abs():max():item(), 1e-7)
      else
        assert.near(0, (b - a):abs():max():item(), 1e-7)
      end
    end
    local sd = math.sqrt(n / 4)
    assert.is_true(math.abs(flipped - n / 2) < 4 * sd, "flipped " .. flipped)
  end)

  it("rejects non-image input", function()
    assert.has_error(function() sc.data.image_loader(sc.zeros(3, 4)) end)
    assert.has_error(function() sc.data.image_loader(sc.zeros(3, 1, 2, 2), { levels = 1 }) end)
  end)
end)
