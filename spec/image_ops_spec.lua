-- Image ops against hand-computed values, PyTorch golden values
-- (spec/fixtures/golden/make_image_golden.py) and second-order gradchecks.
local sc = require "scorch"
local golden = dofile("spec/fixtures/golden/image_ops.lua")

local function prod(shape)
  local n = 1
  for _, s in ipairs(shape) do n = n * s end
  return n
end

-- f() run at 1 thread and at 2 (the thread count restored even when f
-- raises): its two results.
local function at_1_and_2_threads(f)
  local saved, res = sc.get_num_threads(), {}
  for _, t in ipairs({ 1, 2 }) do
    sc.set_num_threads(t)
    local ok, r = pcall(f)
    if not ok then
      sc.set_num_threads(saved)
      error(r, 0)
    end
    res[t] = r
  end
  sc.set_num_threads(saved)
  return res
end

-- The generator's deterministic inputs.
local function x_of(shape)
  local v = {}
  for i = 0, prod(shape) - 1 do v[i + 1] = math.sin(0.37 * i + 0.1) end
  return sc.tensor(v, { dtype = "float64" }):view(shape)
end
local function w_of(shape)
  local v = {}
  for i = 0, prod(shape) - 1 do v[i + 1] = math.cos(0.23 * i) / 3 end
  return sc.tensor(v, { dtype = "float64" }):view(shape)
end
local function b_of(n)
  local v = {}
  for i = 0, n - 1 do v[i + 1] = 0.1 * i - 0.2 end
  return sc.tensor(v, { dtype = "float64" })
end

local function matches(got, ref, tol)
  assert.are.same(ref.shape, got:shape())
  local vals = got:values()
  for i, r in ipairs(ref.values) do
    if math.abs(vals[i] - r) > (tol or 1e-10) * (1 + math.abs(r)) then
      error(("element %d: got %.15g, PyTorch %.15g"):format(i, vals[i], r), 2)
    end
  end
end

local x = x_of { 1, 4, 5, 5 }

describe("image ops against PyTorch", function()
  it("conv2d with stride, padding and groups", function()
    matches(sc.conv2d(x, w_of { 6, 2, 3, 3 }, b_of(6), { stride = 2, padding = 1, groups = 2 }), golden.conv)
  end)
  it("conv2d with dilation and uneven padding", function()
    matches(sc.conv2d(x, w_of { 3, 4, 2, 2 }, { dilation = 2, padding = { 1, 0 } }), golden.conv_dil)
  end)
  it("conv_transpose2d with output padding", function()
    matches(sc.conv_transpose2d(x, w_of { 4, 2, 3, 3 }, b_of(2),
      { stride = 2, padding = 1, output_padding = 1 }), golden.convt)
  end)
  it("avg_pool2d, padded and plain", function()
    matches(sc.avg_pool2d(x, 3, { stride = 2, padding = 1 }), golden.avg)
    matches(sc.avg_pool2d(x_of { 1, 2, 4, 4 }, 2), golden.avg2)
  end)
  it("nearest and bilinear upsampling", function()
    matches(sc.upsample(x_of { 1, 1, 2, 3 }, 2), golden.nearest)
    matches(sc.upsample(x_of { 1, 2, 3, 3 }, { scale = 2, mode = "bilinear" }), golden.bilinear)
  end)
  it("group_norm and layer_norm", function()
    matches(sc.group_norm(x, 2, b_of(4) + 1, b_of(4)), golden.gn, 1e-9)
    matches(sc.layer_norm(x_of { 2, 3, 4 }, 2), golden.ln, 1e-9)
  end)
  it("softmax, log_softmax and attention", function()
    matches(sc.softmax(x_of { 3, 4 }, 2), golden.softmax)
    matches(sc.log_softmax(x_of { 3, 4 }, 1), golden.log_softmax)
    matches(sc.attention(x_of { 2, 3, 4 }, w_of { 2, 3, 4 }, x_of { 2, 3, 4 } * 0.5), golden.attention)
  end)
end)

describe("image ops by hand", function()
  it("im2col lays out 2x2 windows of a 3x3 image", function()
    local cols = sc.core.im2col(sc.arange(9):view(1, 1, 3, 3), { kernel = 2 })
    assert.are.same({ { { 0, 1, 3, 4 }, { 1, 2, 4, 5 }, { 3, 4, 6, 7 }, { 4, 5, 7, 8 } } }, cols:totable())
  end)
  it("col2im sums overlapping windows (counts for a ones input)", function()
    local ones = sc.ones(1, 4, 4)
    local img = sc.core.col2im(ones, { 3, 3 }, { kernel = 2 })
    assert.are.same({ { { { 1, 2, 1 }, { 2, 4, 2 }, { 1, 2, 1 } } } }, img:totable())
  end)
  it("sum_pool is the transpose of upsample_nearest", function()
    local a, b = x_of { 1, 2, 2, 3 }, x_of { 1, 2, 4, 6 } * 0.7
    local lhs = (sc.core.upsample_nearest(a, 2) * b):sum():item()
    local rhs = (a * sc.core.sum_pool(b, 2)):sum():item()
    assert.is_true(math.abs(lhs - rhs) < 1e-12)
  end)
  it("nearest up and sum_pool read channel slices in place, element by element", function()
    -- a slice along the channels (as a cat's gradient is) is read without a
    -- copy; the results are checked against sums written out here, in the
    -- order the kernel adds them (row by row from zero), bit for bit
    sc.manual_seed(11)
    local function to_f32(a) return string.unpack("f", string.pack("f", a)) end
    for _, dt in ipairs({ "float32", "float64" }) do
      local round = dt == "float32" and to_f32 or function(a) return a end
      for _, s in ipairs({ 2, 3 }) do
        local big = sc.randn(2, 7, 2 * s, 3 * s):to(dt)
        local sl = big:narrow(2, 3, 4) -- channels 3..6 of 7: planes contiguous, the whole not
        local got = sc.core.sum_pool(sl, s):totable()
        local v = sl:contiguous():totable()
        for n = 1, 2 do
          for c = 1, 4 do
            for h = 1, 2 do
              for w = 1, 3 do
                local acc = 0.0
                for di = 1, s do
                  for dj = 1, s do acc = round(acc + v[n][c][(h - 1) * s + di][(w - 1) * s + dj]) end
                end
                assert.are.equal(acc, got[n][c][h][w])
              end
            end
          end
        end
        local small = sc.randn(2, 5, 2, 3):to(dt)
        local up = sc.core.upsample_nearest(small:narrow(2, 2, 3), s):totable()
        local sv = small:totable()
        for n = 1, 2 do
          for c = 1, 3 do
            for i = 1, 2 * s do
              for j = 1, 3 * s do
                assert.are.equal(sv[n][c + 1][(i - 1) // s + 1][(j - 1) // s + 1], up[n][c][i][j])
              end
            end
          end
        end
      end
    end
  end)
  it("float32 conv2d agrees with float64", function()
    local w = w_of { 3, 4, 3, 3 }
    local d = sc.conv2d(x:float(), w:float(), { padding = 1 }):double() - sc.conv2d(x, w, { padding = 1 })
    assert.is_true(d:abs():max():item() < 1e-5)
  end)
  it("reports bad shapes with the function name", function()
    local ok, err = pcall(sc.conv2d, sc.zeros(1, 3, 5, 5), sc.zeros(4, 2, 3, 3))
    assert.is_false(ok)
    assert.truthy(err:find("conv2d"))
    ok, err = pcall(sc.core.im2col, sc.zeros(3, 5), { kernel = 2 })
    assert.is_false(ok)
    assert.truthy(err:find("im2col") and err:find("%[3,5%]"))
    ok, err = pcall(sc.core.im2col, sc.zeros(1, 1, 2, 2), { kernel = 3 })
    assert.is_false(ok)
    assert.truthy(err:find("does not fit"))
    ok, err = pcall(sc.core.sum_pool, sc.zeros(1, 1, 3, 3), 2)
    assert.is_false(ok)
    assert.truthy(err:find("sum_pool"))
  end)
end)

describe("image ops gradcheck (first and second order)", function()
  local function leaf(shape) return x_of(shape):requires_grad(true) end
  local cases = {
    conv2d = function()
      return function(a, w, b) return sc.conv2d(a, w, b, { stride = 2, padding = 1, groups = 2 }) end,
      { leaf { 1, 2, 4, 4 }, w_of({ 2, 1, 3, 3 }):requires_grad(true), b_of(2):requires_grad(true) } end,
    conv_transpose2d = function()
      return function(a, w) return sc.conv_transpose2d(a, w, { stride = 2, padding = 1 }) end,
      { leaf { 1, 2, 3, 3 }, w_of({ 2, 1, 3, 3 }):requires_grad(true) } end,
    avg_pool2d = function() return function(a) return sc.avg_pool2d(a, 3, { stride = 2, padding = 1 }) end,
      { leaf { 1, 1, 5, 5 } } end,
    bilinear = function() return function(a) return sc.upsample(a, { scale = 2, mode = "bilinear" }) end,
      { leaf { 1, 1, 3, 3 } } end,
    nearest = function() return function(a) return sc.core.upsample_nearest(a, 2) end, { leaf { 1, 1, 2, 3 } } end,
    sum_pool = function() return function(a) return sc.core.sum_pool(a, 2) end, { leaf { 1, 1, 4, 4 } } end,
    im2col = function() return function(a) return sc.core.im2col(a, { kernel = 2, stride = 2, padding = 1 }) end,
      { leaf { 1, 2, 3, 3 } } end,
    col2im = function() return function(a) return sc.core.col2im(a, { 3, 3 }, { kernel = 2 }) end,
      { leaf { 1, 4, 4 } } end,
    group_norm = function() return function(a, w, b) return sc.group_norm(a, 2, w, b) end,
      { leaf { 2, 4, 2, 2 }, (b_of(4) + 1):requires_grad(true), b_of(4):requires_grad(true) } end,
    attention = function() return function(q, k, v) return sc.attention(q, k, v) end,
      { leaf { 1, 3, 2 }, w_of({ 1, 3, 2 }):requires_grad(true), leaf { 1, 3, 2 } } end,
    log_softmax = function() return function(a) return sc.log_softmax(a, 2) end, { leaf { 2, 3 } } end,
  }
  for name, make in pairs(cases) do
    it(name, function()
      local fn, inputs = make()
      local ok, msg = sc.gradcheck(fn, inputs, { atol = 1e-5, rtol = 1e-4 })
      assert(ok, msg)
    end)
  end
end)

-- Stride-1 "same" convolutions unfold each window as one shifted copy of the
-- whole plane (csrc/core/conv.c, same_*); checked against the general
-- row-by-row path, reached by padding the input explicitly.
describe("same-size convolution fast path", function()
  local function pad(img, p)
    local N, C, H, W = table.unpack(img:shape())
    local zr = sc.zeros(N, C, p, W, { dtype = "float64" })
    local xh = sc.cat({ zr, img, zr }, 3)
    local zc = sc.zeros(N, C, H + 2 * p, p, { dtype = "float64" })
    return sc.cat({ zc, xh, zc }, 4)
  end

  for _, case in ipairs({ { k = 3, p = 1, H = 7, W = 5 }, { k = 5, p = 2, H = 6, W = 9 } }) do
    local name = ("matches the general path for a %dx%d kernel on %dx%d, with gradients")
      :format(case.k, case.k, case.H, case.W)
    it(name, function()
      local g = sc.Generator(case.k * 100 + case.H)
      local xi = sc.randn(2, 3, case.H, case.W, { dtype = "float64", generator = g }):requires_grad(true)
      local w = sc.randn(4, 3, case.k, case.k, { dtype = "float64", generator = g }):requires_grad(true)
      local up = sc.randn(2, 4, case.H, case.W, { dtype = "float64", generator = g })
      local fast = sc.conv2d(xi, w, { padding = case.p })
      local slow = sc.conv2d(pad(xi, case.p), w)
      assert.are.same(slow:shape(), fast:shape())
      assert.is_true((fast - slow):abs():max():item() < 1e-12)
      local gf = sc.grad((fast * up):sum(), { xi, w })
      local gs = sc.grad((slow * up):sum(), { xi, w })
      assert.is_true((gf[1] - gs[1]):abs():max():item() < 1e-12)
      assert.is_true((gf[2] - gs[2]):abs():max():item() < 1e-12)
    end)
  end
end)

-- Stride-1 convolutions take other routes than the unfold-and-multiply
-- composite (csrc/core/conv.c): with >= 16 input channels the forward and
-- the weight gradient are shifted products over zero-padded planes
-- (shift_plan); the input gradient is a convolution of the output gradient
-- by the flipped kernel, itself by shifted products when the output has
-- >= 16 channels.  All checked against the composite, whose input gradient
-- folds columns back (col2im).  With one output channel (17 -> 1), or one
-- input channel on the way back (1 -> 16), the products are gemv calls.
-- The last two geometries pad more than
-- d(k-1) and keep the folding path for the input gradient.
describe("stride-1 convolution routes", function()
  local cases = {
    { k = { 3, 3 }, p = { 1, 1 }, d = { 1, 1 } }, { k = { 3, 3 }, p = { 0, 0 }, d = { 1, 1 } },
    { k = { 2, 3 }, p = { 1, 0 }, d = { 2, 1 } }, { k = { 3, 3 }, p = { 2, 2 }, d = { 1, 1 } },
    { k = { 3, 2 }, p = { 3, 1 }, d = { 2, 2 } }, { k = { 1, 1 }, p = { 1, 1 }, d = { 1, 1 } },
    { k = { 3, 3 }, p = { 3, 0 }, d = { 1, 1 } },
  }
  for i, c in ipairs(cases) do
    for _, ch in ipairs({ { 2, 5 }, { 17, 16 }, { 17, 1 }, { 1, 16 } }) do
      for _, dt in ipairs({ "float64", "float32" }) do
        local name = ("kernel %dx%d, padding %d,%d, dilation %d,%d, %d -> %d channels (%s) match the composite")
          :format(c.k[1], c.k[2], c.p[1], c.p[2], c.d[1], c.d[2], ch[1], ch[2], dt)
        it(name, function()
          local C, O = ch[1], ch[2]
          local g = sc.Generator(40 + i)
          local xi = sc.randn(3, C, 7, 13, { dtype = dt, generator = g }):requires_grad(true)
          local w = sc.randn(O, C, c.k[1], c.k[2], { dtype = dt, generator = g }):requires_grad(true)
          local b = sc.randn(O, { dtype = dt, generator = g }):requires_grad(true)
          local opts = { padding = c.p, dilation = c.d }
          local y = sc.conv2d(xi, w, b, opts)
          local N, _, Ho, Wo = table.unpack(y:shape())
          local up = sc.randn(N, O, Ho, Wo, { dtype = dt, generator = g })
          local geom = { kernel = c.k, padding = c.p, dilation = c.d }
          local ref = (sc.matmul(w:reshape(O, -1), sc.core.im2col(xi, geom)) + b:view(1, O, 1)):view(N, O, Ho, Wo)
          local tol = dt == "float64" and 1e-12 or 2e-5
          local function close(a, r)
            assert.are.same(r:shape(), a:shape())
            assert.is_true((a - r):abs():max():item() < tol * (1 + r:abs():max():item()))
          end
          close(y, ref)
          local got = sc.grad((y * up):sum(), { xi, w, b })
          local want = sc.grad((ref * up):sum(), { xi, w, b })
          for k = 1, 3 do close(got[k], want[k]) end
          assert.is_true(want[1]:abs():max():item() > 0.1)
        end)
      end
    end
  end
end)

-- The weight gradient sums over samples in chunks of 8; on the unfolding
-- route a chunk's samples sit side by side in one product ([C k², 8 L]
-- columns), so the last, shorter chunk has its own width.  11 samples: a
-- chunk of 8 and one of 3, against the composite.
describe("conv2d weight gradient in chunks of samples", function()
  for _, opts in ipairs({ { padding = 1 }, { stride = 2, padding = 1 }, { padding = 0, dilation = 2 } }) do
    it(("matches the composite, 11 samples, stride %d, padding %d, dilation %d"):format(opts.stride or 1,
      opts.padding, opts.dilation or 1), function()
      local g = sc.Generator(77)
      local xi = sc.randn(11, 5, 7, 7, { dtype = "float64", generator = g })
      local w = sc.randn(6, 5, 3, 3, { dtype = "float64", generator = g }):requires_grad(true)
      local y = sc.conv2d(xi, w, opts)
      local N, O, Ho, Wo = table.unpack(y:shape())
      local up = sc.randn(N, O, Ho, Wo, { dtype = "float64", generator = g })
      local geom = { kernel = { 3, 3 }, stride = opts.stride, padding = opts.padding, dilation = opts.dilation }
      local ref = sc.matmul(w:reshape(O, -1), sc.core.im2col(xi, geom)):view(N, O, Ho, Wo)
      local got = sc.grad((y * up):sum(), { w })[1]
      local want = sc.grad((ref * up):sum(), { w })[1]
      assert.is_true((got - want):abs():max():item() < 1e-12 * (1 + want:abs():max():item()))
      assert.is_true(want:abs():max():item() > 1)
    end)
  end
end)

-- Shifted products (C >= 16, stride 1) in float32: each sample's image and
-- output gradient are packed once for all nine taps' weight-gradient
-- products, the forward and input gradient read each tap's image in place.
-- (Where gemm512.c runs, the cases with 8 or more channels each way go
-- through Winograd's F(2x2, 3x3) instead; 40 -> 7 stays shifted.)
-- Channel counts that leave a 16-wide or a 1-wide last panel, odd output
-- counts (ragged 8-row blocks), one chunk of samples and two (threaded at 2),
-- against float64 through im2col.
describe("float32 shifted-product convolution", function()
  for _, ch in ipairs({ { 40, 7 }, { 33, 9 }, { 17, 33 }, { 16, 16 } }) do
    for _, n in ipairs({ 3, 11 }) do
      it(("matches float64, %d -> %d channels, %d samples, at 1 and 2 threads alike"):format(ch[1], ch[2], n),
        function()
          local C, O = ch[1], ch[2]
          local g = sc.Generator(300 + C + n)
          local x64 = sc.randn(n, C, 10, 12, { dtype = "float64", generator = g })
          local w64 = sc.randn(O, C, 3, 3, { dtype = "float64", generator = g })
          local b64 = sc.randn(O, { dtype = "float64", generator = g })
          local up64 = sc.randn(n, O, 10, 12, { dtype = "float64", generator = g })
          local xi, w, b = x64:to("float32"):requires_grad(true), w64:to("float32"):requires_grad(true),
            b64:to("float32"):requires_grad(true)
          local up = up64:to("float32")
          local res = at_1_and_2_threads(function()
            local y = sc.conv2d(xi, w, b, { padding = 1 })
            local gx, gw = table.unpack(sc.grad((y * up):sum(), { xi, w }))
            return { y, gx, gw }
          end)
          local xr, wr = x64:requires_grad(true), w64:requires_grad(true)
          local ref = (sc.matmul(wr:reshape(O, -1), sc.core.im2col(xr, { kernel = 3, padding = 1 }))
            + b64:view(1, O, 1)):view(n, O, 10, 12)
          local rx, rw = table.unpack(sc.grad((ref * up64):sum(), { xr, wr }))
          for k, want in ipairs({ ref, rx, rw }) do
            assert.are.equal(0, (res[1][k] - res[2][k]):abs():max():item())
            local err = (res[1][k]:to("float64") - want):abs():max():item()
            assert.is_true(err < 2e-5 * (1 + want:abs():max():item()), ("output %d: error %g"):format(k, err))
          end
        end)
    end
  end
end)

describe("conv2d across threads", function()
  for _, ch in ipairs({ { 3, 4 }, { 16, 16 } }) do -- unfolded columns; shifted products
    it(("gives the same bits at 1 and 2 threads, %d -> %d channels (forward, input and weight gradients)")
      :format(ch[1], ch[2]), function()
      local g = sc.Generator(1)
      -- 20 samples: three chunks of the weight gradient's sum over samples
      local xi = sc.randn(20, ch[1], 9, 14, { generator = g }):requires_grad(true)
      local w = sc.randn(ch[2], ch[1], 3, 3, { generator = g }):requires_grad(true)
      local res = at_1_and_2_threads(function()
        local r = {}
        for _, opts in ipairs({ { padding = 1 }, { stride = 2, padding = 1 } }) do
          local y = sc.conv2d(xi, w, opts)
          local gx, gw = table.unpack(sc.grad((y * y):sum(), { xi, w }))
          r[#r + 1] = { y, gx, gw }
        end
        return r
      end)
      for i = 1, 2 do
        for k = 1, 3 do assert.are.equal(0, (res[1][i][k] - res[2][i][k]):abs():max():item()) end
      end
    end)
  end
end)

-- im2col and col2im against a plain gather and scatter written here, on
-- integers (every sum exact, so equality is bitwise): geometries that take
-- the whole-plane shifts (stride 1, "same"), the phase planes (stride s,
-- output ceil(H/s) x ceil(W/s)) and the row-by-row loop (everything else).
describe("im2col / col2im routes against a plain loop", function()
  local geoms = {
    { H = 7, W = 13, k = 3, s = 1, p = 1 },   -- same: whole-plane shifts
    -- 3x3, stride 2, padding 1, rows of at most 32: in float32 on AVX-512,
    -- permutes of each image row (conv.c's s2_plane); else phase planes
    { H = 14, W = 14, k = 3, s = 2, p = 1 },  -- 7 x 7
    { H = 28, W = 28, k = 3, s = 2, p = 1 },  -- 14 x 14
    { H = 7, W = 9, k = 3, s = 2, p = 1 },    -- odd sizes (4 x 5)
    { H = 5, W = 32, k = 3, s = 2, p = 1 },   -- the widest row: two full vectors
    { H = 4, W = 17, k = 3, s = 2, p = 1 },   -- one pixel into the second vector
    { H = 1, W = 1, k = 3, s = 2, p = 1 },    -- a single pixel
    { H = 3, W = 33, k = 3, s = 2, p = 1 },   -- phase planes: rows too wide
    { H = 9, W = 10, k = 5, s = 3, p = 2 },   -- phase planes, stride 3
    { H = 8, W = 8, k = 4, s = 2, p = 1 },    -- phase planes, even kernel
    { H = 8, W = 7, k = 1, s = 2, p = 0 },    -- phase planes, 1 x 1 kernel
    { H = 14, W = 14, k = 3, s = 2, p = 0 },  -- row loop (6 x 6 output)
    { H = 9, W = 9, k = 3, s = 2, p = 2 },    -- row loop (6 x 6 output)
    { H = 6, W = 11, k = 2, s = 1, p = 0 },   -- row loop, stride 1
  }
  for _, G in ipairs(geoms) do
    for _, dt in ipairs({ "float32", "float64" }) do
      it(("%dx%d image, kernel %d, stride %d, padding %d (%s)"):format(G.H, G.W, G.k, G.s, G.p, dt), function()
        local N, C, k, s, p = 2, 3, G.k, G.s, G.p
        local Ho, Wo = (G.H + 2 * p - k) // s + 1, (G.W + 2 * p - k) // s + 1
        local geom = { kernel = k, stride = s, padding = p }
        local x = sc.randint(-9, 10, { N, C, G.H, G.W }, { generator = sc.Generator(7) }):to(dt)
        local xv = x:values()
        -- f(column index, image index or nil for padding) for every window
        -- element, in the order of the columns
        local function each_window(f)
          for n = 0, N - 1 do
            for c = 0, C - 1 do
              for ki = 0, k - 1 do
                for kj = 0, k - 1 do
                  for oh = 0, Ho - 1 do
                    for ow = 0, Wo - 1 do
                      local i, j = oh * s - p + ki, ow * s - p + kj
                      local col = (n * C * k * k + (c * k + ki) * k + kj) * Ho * Wo + oh * Wo + ow + 1
                      local inside = i >= 0 and i < G.H and j >= 0 and j < G.W
                      f(col, inside and ((n * C + c) * G.H + i) * G.W + j + 1 or nil)
                    end
                  end
                end
              end
            end
          end
        end
        local cols = sc.core.im2col(x, geom)
        assert.are.same({ N, C * k * k, Ho * Wo }, cols:shape())
        local cv = cols:values()
        each_window(function(col, at)
          local want = at and xv[at] or 0
          if cv[col] ~= want then error(("im2col: column element %d: %g, want %g"):format(col, cv[col], want)) end
        end)
        -- col2im: the scatter-add of integer columns, and the columns untouched
        local y = sc.randint(-9, 10, { N, C * k * k, Ho * Wo }, { generator = sc.Generator(8) }):to(dt)
        local yv = y:values()
        local img = sc.core.col2im(y, { G.H, G.W }, geom)
        assert.are.same(yv, y:values())
        local want = {}
        for q = 1, N * C * G.H * G.W do want[q] = 0 end
        each_window(function(col, at) if at then want[at] = want[at] + yv[col] end end)
        assert.are.same(want, img:values())
      end)
    end
  end
end)

-- phase_join interleaves four shifted windows (the generator's upsample +
-- convolution over output phases): against the index formula, and
-- phase_split back (gradcheck_spec checks both ops' derivatives).
-- conv2d, conv2d_input and conv2d_weight read an input whose samples are
-- each one contiguous block (a slice along the channels, as the gradient
-- of a cat is) where it lies: the same bits as from a contiguous copy, on
-- every route (Winograd, one channel on a side, stride 2, 1x1, float64).
describe("convolutions of a slice along the channels", function()
  local core = sc.core
  local routes = {
    { C = 16, O = 12, H = 9, W = 9, k = 3, s = 1, p = 1 },
    { C = 1, O = 8, H = 10, W = 7, k = 3, s = 1, p = 1 },
    { C = 8, O = 1, H = 10, W = 7, k = 3, s = 1, p = 1 },
    { C = 6, O = 5, H = 14, W = 14, k = 3, s = 2, p = 1 },
    { C = 7, O = 9, H = 6, W = 5, k = 1, s = 1, p = 0 },
    { C = 5, O = 4, H = 6, W = 6, k = 3, s = 1, p = 1, dt = "float64" },
  }
  for _, r in ipairs(routes) do
    it(("%d -> %d channels, %dx%d kernel, stride %d (%s)"):format(r.C, r.O, r.k, r.k, r.s, r.dt or "float32"), function()
      local g = sc.Generator(21)
      local o = { generator = g, dtype = r.dt or "float32" }
      local N = 3
      local big = sc.randn({ N, r.C + 5, r.H, r.W }, o)
      local x = big:narrow(2, 3, r.C) -- channels 3 .. C + 2 of each sample
      assert.is_false(x:is_contiguous())
      local w = sc.randn({ r.O, r.C, r.k, r.k }, o)
      local b = sc.randn({ r.O }, o)
      local opts = { stride = r.s, padding = r.p }
      local y = sc.conv2d(x, w, b, opts)
      local s = y:shape()
      local gbig = sc.randn({ N, r.O + 3, s[3], s[4] }, o)
      local gy = gbig:narrow(2, 2, r.O)
      local geom = { kernel = { r.k, r.k }, stride = { r.s, r.s }, padding = { r.p, r.p } }
      local got = { y, core.conv2d_input(gy, w, { r.H, r.W }, { stride = geom.stride, padding = geom.padding }),
                    core.conv2d_weight(x, gy, geom) }
      local xc, gc = x:contiguous(), gy:contiguous()
      local want = { sc.conv2d(xc, w, b, opts),
                     core.conv2d_input(gc, w, { r.H, r.W }, { stride = geom.stride, padding = geom.padding }),
                     core.conv2d_weight(xc, gc, geom) }
      for k = 1, 3 do
        assert.are.same(want[k]:shape(), got[k]:shape())
        assert.are.equal(0, (got[k] - want[k]):abs():max():item())
      end
    end)
  end
end)

describe("phase_join and phase_split", function()
  it("put y[n, (2a+b)O + o, i+a, j+b] at out[n, o, 2i+a, 2j+b], and back", function()
    local N, O, H, W = 2, 3, 4, 5
    local y = sc.randint(-50, 50, { N, 4 * O, H + 1, W + 1 }, { generator = sc.Generator(9) })
    local out = sc.core.phase_join(y)
    assert.are.same({ N, O, 2 * H, 2 * W }, out:shape())
    local yv, ov = y:totable(), out:totable()
    local split = sc.core.phase_split(out):totable()
    local seen = {}
    for n = 1, N do
      for o = 1, O do
        for a = 0, 1 do
          for b = 0, 1 do
            local c = (2 * a + b) * O + o
            for i = 0, H - 1 do
              for j = 0, W - 1 do
                assert.are.equal(yv[n][c][i + a + 1][j + b + 1], ov[n][o][2 * i + a + 1][2 * j + b + 1])
                seen[table.concat({ n, c, i + a, j + b }, ",")] = true
              end
            end
          end
        end
      end
    end
    -- split: the window values back where they came from, zeros elsewhere
    for n = 1, N do
      for c = 1, 4 * O do
        for r = 0, H do
          for s = 0, W do
            local want = seen[table.concat({ n, c, r, s }, ",")] and yv[n][c][r + 1][s + 1] or 0
            assert.are.equal(want, split[n][c][r + 1][s + 1])
          end
        end
      end
    end
  end)
end)

-- 3x3 convolutions at stride 1 in float32 go through Winograd's F(2x2, 3x3)
-- or F(4x2, 3x3) (csrc/core/wino.c) where gemm512.c runs: each tiling,
-- forced, against the float64 convolution (the shifted products, a
-- different algorithm), forward and input gradient and weight gradient, on
-- shapes that cut its work every way: odd output sizes (a part tile at the
-- edge), tile rows longer than one 16-tile vector (W = 40), output
-- channels not a multiple of 8, input channels over one 256-row slice of
-- the product, paddings 0, 1 and 2, and sample counts that leave a short
-- last group (and, for the weight gradient, a short last chunk of the sum
-- over samples: 21 samples).  F(4x2, 3x3)'s longer transform down the rows
-- (points up to 2, A^T's entries up to 8) rounds more: its bound is 3x
-- F(2x2, 3x3)'s (measured: at most 2.0e-6 against 5.8e-7).  Then 1 against
-- 2 threads, bit for bit, and which tiling the rule takes.
describe("conv2d 3x3 by Winograd F(2x2, 3x3) and F(4x2, 3x3)", function()
  local core = sc.core
  local TOL = { [2] = 2e-6, [4] = 6e-6 }
  -- f() with the tiling forced to mode (0: the rule), restored after
  local function tiled(mode, f)
    local was = core._set_wino_tile(mode)
    local ok, r = pcall(f)
    core._set_wino_tile(was)
    assert(ok, r)
    return r
  end
  local cases = {
    { N = 3, C = 8, O = 8, H = 5, W = 5, p = 1 },
    { N = 5, C = 24, O = 12, H = 28, W = 28, p = 1 },
    { N = 2, C = 16, O = 9, H = 7, W = 40, p = 1 },
    { N = 1, C = 9, O = 20, H = 6, W = 11, p = 0 },
    { N = 2, C = 10, O = 8, H = 5, W = 6, p = 2 },
    { N = 7, C = 48, O = 48, H = 14, W = 14, p = 1 },
    { N = 21, C = 8, O = 16, H = 7, W = 7, p = 1 },
    { N = 2, C = 96, O = 64, H = 35, W = 36, p = 1 }, -- samples cut into blocks of tile rows
    { N = 2, C = 260, O = 16, H = 9, W = 9, p = 1 },
    { N = 3, C = 12, O = 10, H = 1, W = 9, p = 1 },
  }
  for _, c in ipairs(cases) do for _, mode in ipairs({ 2, 4 }) do
    it(("F(%dx2, 3x3) agrees with float64: %d samples, %d -> %d channels, %dx%d, padding %d")
      :format(mode, c.N, c.C, c.O, c.H, c.W, c.p), function()
      local g = sc.Generator(7)
      local x = sc.randn(c.N, c.C, c.H, c.W, { dtype = "float64", generator = g })
      local w = sc.randn(c.O, c.C, 3, 3, { dtype = "float64", generator = g }) * (1 / math.sqrt(9 * c.C))
      local b = sc.randn(c.O, { dtype = "float64", generator = g })
      local x32, w32 = x:float():requires_grad(true), w:float():requires_grad(true)
      local x64, w64 = x:clone():requires_grad(true), w:clone():requires_grad(true)
      local y64 = sc.conv2d(x64, w64, b, { padding = c.p })
      local s = y64:shape()
      local up = sc.randn(s[1], s[2], s[3], s[4], { dtype = "float64", generator = g })
      local g64 = sc.grad((y64 * up):sum(), { x64, w64 })
      local y32, g32 = table.unpack(tiled(mode, function()
        local y = sc.conv2d(x32, w32, b:float(), { padding = c.p })
        return { y, sc.grad((y * up:float()):sum(), { x32, w32 }) }
      end))
      for _, pair in ipairs({ { y32, y64 }, { g32[1], g64[1] }, { g32[2], g64[2] } }) do
        local got, want = pair[1]:double(), pair[2]
        assert.are.same(want:shape(), got:shape())
        local scale = want:abs():max():item()
        assert.is_true(scale > 0.5)
        assert.is_true((got - want):abs():max():item() < TOL[mode] * (1 + scale))
      end
    end)
  end end

  it("gives the same bits at 1 and 2 threads (forward, input and weight gradients)", function()
    local g = sc.Generator(3)
    -- 19 samples: three chunks of the weight gradient's sum, the last short,
    -- in groups of whole samples; 4 samples of 36 x 36 with 96 -> 64
    -- channels, each cut into blocks of tile rows; each tiling; and 64
    -- samples of 14 x 14, whose forward groups 6 samples to a unit at one
    -- thread and 4 at two (wino_balance)
    for _, sh in ipairs({ { 19, 16, 12, 11, 37, 2 }, { 4, 96, 64, 36, 36, 2 },
                          { 19, 16, 12, 11, 37, 4 }, { 4, 96, 64, 36, 36, 4 },
                          { 64, 64, 64, 14, 14, 0 } }) do
      local N, C, O, H, W, mode = table.unpack(sh)
      local x = sc.randn(N, C, H, W, { generator = g }):requires_grad(true)
      local w = (sc.randn(O, C, 3, 3, { generator = g }) * 0.1):requires_grad(true)
      local b = sc.randn(O, { generator = g })
      local res = at_1_and_2_threads(function()
        return tiled(mode, function()
          local y = sc.conv2d(x, w, b, { padding = 1 })
          local gx, gw = table.unpack(sc.grad((y * y):sum(), { x, w }))
          return { y, gx, gw }
        end)
      end)
      for k = 1, 3 do assert.are.equal(0, (res[1][k] - res[2][k]):abs():max():item()) end
    end
  end)

  it("gives the same weight gradient bits with its products either way round (dU or dU^T)", function()
    local g = sc.Generator(11)
    -- more input channels than output, fewer, equal; one over a 256-tile
    -- slice; each tiling
    for _, sh in ipairs({ { 3, 40, 12, 9, 9 }, { 2, 12, 40, 10, 7 }, { 4, 16, 16, 6, 6 }, { 2, 24, 9, 30, 30 } }) do
      for _, tile in ipairs({ 2, 4 }) do
        local N, C, O, H, W = table.unpack(sh)
        local x = sc.randn(N, C, H, W, { generator = g })
        local gy = sc.randn(N, O, H, W, { generator = g })
        local got = {}
        for k, mode in ipairs({ 0, 1, -1 }) do
          local was = core._set_wino_wgrad_transposed(mode)
          local ok, r = pcall(tiled, tile, function()
            return core.conv2d_weight(x, gy, { kernel = { 3, 3 }, padding = { 1, 1 } })
          end)
          core._set_wino_wgrad_transposed(was)
          assert(ok, r)
          got[k] = r
        end
        assert.are.equal(0, (got[1] - got[2]):abs():max():item())
        assert.are.equal(0, (got[1] - got[3]):abs():max():item())
        -- and right: against the float64 weight gradient
        local want = core.conv2d_weight(x:double(), gy:double(), { kernel = { 3, 3 }, padding = { 1, 1 } })
        local scale = want:abs():max():item()
        assert.is_true((got[1]:double() - want):abs():max():item() < TOL[tile] * (1 + scale))
      end
    end
  end)

  it("takes F(4x2, 3x3) where its products are fewer, F(2x2, 3x3) elsewhere", function()
    -- 28 rows: 7 tiles of 4 against 14 of 2, F(4x2); 2 rows: 1 tile either
    -- way, F(2x2); the weight gradient of a 7 x 7 plane (8 tiles of F(4x2)
    -- to a sample): F(2x2), its forward F(4x2)
    local function run(N, C, O, H, W, mode)
      return tiled(mode, function()
        local x = sc.randn(N, C, H, W, { generator = sc.Generator(1) })
        local w = sc.randn(O, C, 3, 3, { generator = sc.Generator(2) }) * 0.1
        local gy = sc.randn(N, O, H, W, { generator = sc.Generator(3) })
        return { sc.conv2d(x, w, { padding = 1 }),
                 core.conv2d_weight(x, gy, { kernel = { 3, 3 }, padding = { 1, 1 } }) }
      end)
    end
    local function same(a, b) return (a - b):abs():max():item() == 0 end
    local auto, f2, f4 = run(4, 16, 16, 28, 28, 0), run(4, 16, 16, 28, 28, 2), run(4, 16, 16, 28, 28, 4)
    assert.is_true(same(auto[1], f4[1]) and not same(auto[1], f2[1]))
    assert.is_true(same(auto[2], f4[2]) and not same(auto[2], f2[2]))
    auto, f2, f4 = run(4, 16, 16, 2, 9, 0), run(4, 16, 16, 2, 9, 2), run(4, 16, 16, 2, 9, 4)
    assert.is_true(same(auto[1], f2[1]) and not same(auto[1], f4[1]))
    auto, f2, f4 = run(4, 16, 16, 7, 7, 0), run(4, 16, 16, 7, 7, 2), run(4, 16, 16, 7, 7, 4)
    assert.is_true(same(auto[1], f4[1]) and not same(auto[1], f2[1]))
    assert.is_true(same(auto[2], f2[2]) and not same(auto[2], f4[2]))
  end)

  it("takes an empty batch: empty output, empty input gradient, zero weight gradient", function()
    local x = sc.randn(0, 16, 8, 8):requires_grad(true)
    local w = sc.randn(16, 16, 3, 3):requires_grad(true)
    local y = sc.conv2d(x, w, sc.randn(16), { padding = 1 })
    assert.are.same({ 0, 16, 8, 8 }, y:shape())
    local gx, gw = table.unpack(sc.grad(y:sum(), { x, w }))
    assert.are.same({ 0, 16, 8, 8 }, gx:shape())
    assert.are.same({ 16, 16, 3, 3 }, gw:shape())
    assert.are.equal(0, gw:abs():sum():item())
  end)

  it("agrees with the shifted products it replaces (gemm512.c off)", function()
    local g = sc.Generator(5)
    local x = sc.randn(4, 24, 14, 14, { generator = g })
    local w = sc.randn(24, 24, 3, 3, { generator = g }) * 0.07
    local fast = sc.conv2d(x, w, { padding = 1 })
    local was = core._set_gemm_avx512(false)
    local slow = sc.conv2d(x, w, { padding = 1 })
    core._set_gemm_avx512(was)
    -- 14 x 14: F(4x2, 3x3) by the rule
    assert.is_true((fast - slow):abs():max():item() < TOL[4] * (1 + slow:abs():max():item()))
  end)
end)

-- 3x3 convolutions at stride 1 and padding 1 with one channel on a side
-- (a U-Net's first and last) go through csrc/core/thinconv.c where
-- gemm512.c runs: forward, input gradient (a thin convolution the other
-- way round) and weight gradient against float64, on rows of 1 to 64
-- pixels (one to four vectors, partial ones), 1 to 29 rows, both sides
-- single, and batches that split across threads; then 1 against 2 threads,
-- bit for bit, and the same numbers as conv.c's other paths within rounding.
describe("conv2d 3x3 with one channel on a side (thinconv.c)", function()
  local core = sc.core
  local TOL = 2e-6
  local function thin(on, f)
    local was = core._set_thin_conv(on)
    local ok, r = pcall(f)
    core._set_thin_conv(was)
    assert(ok, r)
    return r
  end
  local function run(x, w, b, up)
    local y = sc.conv2d(x, w, b, { padding = 1 })
    return { y, table.unpack(sc.grad((y * up):sum(), { x, w })) }
  end
  local cases = {
    { N = 5, C = 1, O = 32, H = 28, W = 28 },
    { N = 5, C = 32, O = 1, H = 28, W = 28 },
    { N = 3, C = 1, O = 1, H = 7, W = 5 },
    { N = 2, C = 1, O = 7, H = 1, W = 1 },
    { N = 2, C = 5, O = 1, H = 2, W = 16 },
    { N = 2, C = 1, O = 3, H = 9, W = 17 },
    { N = 2, C = 3, O = 1, H = 29, W = 33 },
    { N = 1, C = 24, O = 1, H = 6, W = 64 },
    { N = 9, C = 1, O = 24, H = 16, W = 48 },
  }
  for _, c in ipairs(cases) do
    it(("agrees with float64: %d samples, %d -> %d channels, %dx%d"):format(c.N, c.C, c.O, c.H, c.W), function()
      local g = sc.Generator(17)
      local x = sc.randn(c.N, c.C, c.H, c.W, { dtype = "float64", generator = g })
      local w = sc.randn(c.O, c.C, 3, 3, { dtype = "float64", generator = g }) * (1 / math.sqrt(9 * c.C))
      local b = sc.randn(c.O, { dtype = "float64", generator = g })
      local up = sc.randn(c.N, c.O, c.H, c.W, { dtype = "float64", generator = g })
      local want = run(x:clone():requires_grad(true), w:clone():requires_grad(true), b, up)
      local got = run(x:float():requires_grad(true), w:float():requires_grad(true), b:float(), up:float())
      for k = 1, 3 do
        assert.are.same(want[k]:shape(), got[k]:shape())
        local scale = want[k]:abs():max():item()
        assert.is_true(scale > 0.3)
        assert.is_true((got[k]:double() - want[k]):abs():max():item() < TOL * (1 + scale))
      end
    end)
  end

  it("gives the same bits at 1 and 2 threads, and conv.c's numbers within rounding", function()
    local g = sc.Generator(4)
    for _, sh in ipairs({ { 19, 1, 32, 28, 28 }, { 19, 32, 1, 28, 28 }, { 6, 1, 1, 40, 50 } }) do
      local N, C, O, H, W = table.unpack(sh)
      local x = sc.randn(N, C, H, W, { generator = g }):requires_grad(true)
      local w = (sc.randn(O, C, 3, 3, { generator = g }) * 0.2):requires_grad(true)
      local b = sc.randn(O, { generator = g })
      local up = sc.randn(N, O, H, W, { generator = g })
      local res = at_1_and_2_threads(function() return run(x, w, b, up) end)
      for k = 1, 3 do assert.are.equal(0, (res[1][k] - res[2][k]):abs():max():item()) end
      local other = thin(false, function() return run(x, w, b, up) end)
      for k = 1, 3 do
        local scale = other[k]:abs():max():item()
        assert.is_true((res[1][k] - other[k]):abs():max():item() < 4 * TOL * (1 + scale))
      end
    end
  end)

  it("takes an empty batch: empty output, zero weight gradient", function()
    local x = sc.randn(0, 1, 8, 8):requires_grad(true)
    local w = sc.randn(4, 1, 3, 3):requires_grad(true)
    local y = sc.conv2d(x, w, sc.randn(4), { padding = 1 })
    assert.are.same({ 0, 4, 8, 8 }, y:shape())
    local gx, gw = table.unpack(sc.grad(y:sum(), { x, w }))
    assert.are.same({ 0, 1, 8, 8 }, gx:shape())
    assert.are.equal(0, gw:abs():sum():item())
  end)
end)
