-- Fused kernels against the ops they replace: the results must be the same
-- numbers, bit for bit, whatever the layout, the dtype or the thread count.
local sc = require "scorch"

local function max_diff(a, b) return (a - b):abs():max():item() end

describe("sc.linear(x, w, b, \"silu\")", function()
  local saved
  before_each(function() saved = sc.get_num_threads() end)
  after_each(function() sc.set_num_threads(saved) end)

  for _, dt in ipairs({ "float32", "float64" }) do
    it("equals linear then silu without a graph (" .. dt .. ", tiles, strided input, no bias)", function()
      local g = sc.Generator(3)
      -- 3000 rows and 130 outputs: several row tiles and a ragged last one
      local x = sc.randn(3000, 70, { dtype = dt, generator = g })
      local w = sc.randn(130, 70, { dtype = dt, generator = g })
      local b = sc.randn(130, { dtype = dt, generator = g })
      sc.set_num_threads(1)
      local ref = sc.no_grad(function() return sc.linear(x, w, b):silu() end)
      local ref_nb = sc.no_grad(function() return sc.linear(x, w):silu() end)
      local xt = x:t():contiguous():t() -- the same values, stored transposed
      local one
      for _, n in ipairs({ 1, 2 }) do
        sc.set_num_threads(n)
        local f = sc.no_grad(function() return sc.linear(x, w, b, "silu") end)
        if n == 1 then
          one = f
          assert.are.equal(0, max_diff(f, ref))
        else
          assert.are.equal(0, max_diff(f, one)) -- tiles are fixed: same bits at 2 threads
        end
        assert.are.equal(0, max_diff(sc.no_grad(function() return sc.linear(xt, w, b, "silu") end), one))
        assert.are.equal(0, max_diff(sc.no_grad(function() return sc.linear(x, w, nil, "silu") end), ref_nb))
      end
    end)
  end

  it("takes the OpenBLAS tiles for wide layers: still the same bits as linear then silu", function()
    local g = sc.Generator(5)
    local x = sc.randn(300, 600, { generator = g }) -- 600 inputs: past the narrow-layer kernel
    local w = sc.randn(40, 600, { generator = g })
    local b = sc.randn(40, { generator = g })
    local ref = sc.no_grad(function() return sc.linear(x, w, b):silu() end)
    assert.are.equal(0, max_diff(sc.no_grad(function() return sc.linear(x, w, b, "silu") end), ref))
  end)

  it("records the composite graph when gradients are wanted", function()
    local x = sc.randn(5, 3, { dtype = "float64" }):requires_grad(true)
    local w = sc.randn(4, 3, { dtype = "float64" }):requires_grad(true)
    local b = sc.randn(4, { dtype = "float64" }):requires_grad(true)
    local y = sc.linear(x, w, b, "silu")
    assert.are.equal(0, max_diff(y, sc.linear(x, w, b):silu()))
    local gx, gw, gb = table.unpack(sc.grad(y:sum(), { x, w, b }))
    local h = sc.linear(x, w, b):detach()
    local s = h:sigmoid()
    local dh = s * (h * (s * -1 + 1) + 1) -- silu'(h) = σ(h)(1 + h(1 − σ(h)))
    assert.is_true(max_diff(gb, dh:sum(1)) < 1e-12)
    assert.is_true(max_diff(gw, sc.matmul(dh:t(), x:detach())) < 1e-12)
    assert.is_true(max_diff(gx, sc.matmul(dh, w:detach())) < 1e-12)
  end)

  it("handles an empty inner dimension (silu of the bias)", function()
    local b = sc.tensor({ -1, 0, 2 })
    local y = sc.no_grad(function() return sc.linear(sc.zeros(4, 0), sc.zeros(3, 0), b, "silu") end)
    for i = 1, 4 do assert.are.equal(0, max_diff(y[i], b:silu())) end
  end)

  it("rejects an unknown activation and mismatched shapes, naming linear", function()
    local ok, msg = pcall(sc.linear, sc.zeros(2, 3), sc.zeros(4, 3), nil, "relu")
    assert.is_false(ok)
    assert.truthy(tostring(msg):find("linear", 1, true))
    ok, msg = pcall(sc.linear, sc.zeros(2, 3), sc.zeros(4, 5), nil, "silu")
    assert.is_false(ok)
    assert.truthy(tostring(msg):find("[2,3]", 1, true), msg)
  end)
end)

describe("nn.Sequential fuses Linear + SiLU", function()
  it("gives the numbers of the layer-by-layer chain, with and without a graph", function()
    local nn = sc.nn
    local m = nn.Sequential { nn.Linear(3, 16, { generator = sc.Generator(1) }), nn.SiLU(),
      nn.Linear(16, 5, { generator = sc.Generator(2) }), nn.SiLU(), nn.Linear(5, 2, { generator = sc.Generator(3) }) }
    local x = sc.randn(37, 3, { generator = sc.Generator(4) })
    local chain = x
    for i = 1, 5 do chain = m[i](chain) end
    assert.are.equal(0, max_diff(sc.no_grad(function() return m(x) end), chain))
    assert.are.equal(0, max_diff(m(x), chain))
  end)

  -- With a graph, SiLU + Linear pairs run as core.silu_linear, whose
  -- backward multiplies by silu' in the epilogue of the input gradient's
  -- product: the outputs and every parameter's gradient must be those of
  -- the modules called one by one, to the bit, on both product paths and
  -- at 1 and 2 threads.
  it("gives the module-by-module gradients bit for bit through its SiLU + Linear pairs", function()
    local nn, core = sc.nn, require "scorch.core"
    local was_own = core._set_gemm_avx512(true)
    local has_own = core._set_gemm_avx512(was_own)
    local saved = sc.get_num_threads()
    for _, own in ipairs(has_own and { true, false } or { false }) do
      for _, dt in ipairs({ "float32", "float64" }) do
        for _, threads in ipairs({ 1, 2 }) do
          for _, sz in ipairs({ { 1024, 1, 128, 2 }, { 37, 5, 33, 3 }, { 50, 3, 20, 1 } }) do
            core._set_gemm_avx512(own)
            sc.set_num_threads(threads)
            local net = nn.MLP { ["in"] = sz[2], out = sz[4], hidden = { sz[3], sz[3], sz[3] },
              dtype = dt, generator = sc.Generator(5) }
            local x = sc.randn(sz[1], sz[2], { dtype = dt, generator = sc.Generator(6) })
            local function run(fused)
              net:zero_grad()
              local y = x
              if fused then y = net(x) else for i = 1, #net._modules do y = net[i](y) end end
              ;(y * y):sum():backward()
              local out = { y:detach() }
              for _, p in ipairs(net:parameters()) do out[#out + 1] = p.grad:clone() end
              return out
            end
            local a, b = run(true), run(false)
            local what = ("%s, %s products, %d thread(s), %d rows"):format(dt, own and "own" or "OpenBLAS",
              threads, sz[1])
            for i = 1, #a do assert.are.equal(0, max_diff(a[i], b[i]), what .. ", tensor " .. i) end
          end
        end
      end
    end
    core._set_gemm_avx512(was_own)
    sc.set_num_threads(saved)
  end)

  it("records silu_linear for a SiLU + Linear pair only with a graph", function()
    local nn = sc.nn
    local m = nn.MLP { ["in"] = 2, out = 2, hidden = { 4, 4 } }
    local x = sc.randn(3, 2)
    assert.are.equal("silu_linear", m(x):grad_fn())
    local last_plain = nn.Sequential { nn.Linear(2, 4), nn.SiLU() }
    assert.are.equal("silu", last_plain(x):grad_fn())
  end)

  it("leaves a Linear with its own forward alone", function()
    local nn = sc.nn
    local lin = nn.Linear(2, 2)
    lin.forward = function(_, x) return x * 0 + 7 end
    local m = nn.Sequential { lin, nn.SiLU() }
    local y = sc.no_grad(function() return m(sc.zeros(1, 2)) end)
    assert.are.equal(0, max_diff(y, sc.full({ 1, 2 }, 7):silu()))
  end)
end)

-- float32 linear layers of up to 512 inputs and 1024 outputs run on scorch's
-- own kernel (csrc/core/smallgemm.c): panels of 16 and 8 columns, blocks of
-- 6 and 48 rows, any strides.  Checked against the float64 product.
describe("the narrow-layer float32 linear kernel", function()
  local saved
  before_each(function() saved = sc.get_num_threads() end)
  after_each(function() sc.set_num_threads(saved) end)

  local function check(n, k, m, opts)
    opts = opts or {}
    local g = sc.Generator(n * 1000 + k * 10 + m)
    local x = sc.randn(n, k, { generator = g })
    local w = sc.randn(m, k, { generator = g })
    local b = sc.randn(m, { generator = g })
    if opts.strided then
      x = sc.randn(k, n, { generator = g }):t()                 -- column-major x
      w = sc.randn(k, m, { generator = g }):t()                 -- column-major W
      b = sc.randn(m, 2, { generator = g }):select(2, 1)        -- bias at stride 2
    end
    local bias = opts.nobias and nil or b
    local ref = sc.linear(x:to("float64"), w:to("float64"), bias and bias:to("float64"))
    local y = sc.no_grad(function() return sc.linear(x, w, bias) end)
    assert.are.same({ n, m }, y:shape())
    -- float32 rounding of k products: a few ulp of the largest term
    local tol = 1e-5 * (k + 1)
    assert.is_true(max_diff(y:to("float64"), ref) < tol,
      ("n=%d k=%d m=%d: %g"):format(n, k, m, max_diff(y:to("float64"), ref)))
    local ys = sc.no_grad(function() return sc.linear(x, w, bias, "silu") end)
    assert.is_true(max_diff(ys:to("float64"), ref:silu()) < tol)
  end

  it("matches float64 for ragged rows and columns", function()
    sc.set_num_threads(1)
    for _, m in ipairs({ 1, 2, 7, 8, 9, 15, 16, 17, 24, 33, 130 }) do check(53, 19, m) end
    for _, n in ipairs({ 1, 5, 6, 7, 47, 48, 49, 97 }) do check(n, 12, 20) end
    for _, k in ipairs({ 1, 3, 128, 512 }) do check(50, k, 16) end
  end)

  it("reads strided x, W and bias in place, with and without a bias", function()
    sc.set_num_threads(1)
    check(61, 10, 21, { strided = true })
    check(61, 10, 21, { nobias = true })
    check(61, 10, 21, { strided = true, nobias = true })
  end)

  it("gives the same bits at 1 and 2 threads", function()
    local g = sc.Generator(8)
    local x = sc.randn(5000, 64, { generator = g })
    local w = sc.randn(100, 64, { generator = g })
    local b = sc.randn(100, { generator = g })
    sc.set_num_threads(1)
    local one = sc.no_grad(function() return sc.linear(x, w, b, "silu") end)
    sc.set_num_threads(2)
    assert.are.equal(0, max_diff(sc.no_grad(function() return sc.linear(x, w, b, "silu") end), one))
  end)

  it("with no inputs gives the bias (and its silu)", function()
    local b = sc.tensor({ -1, 0, 2 })
    local y = sc.no_grad(function() return sc.linear(sc.zeros(7, 0), sc.zeros(3, 0), b) end)
    for i = 1, 7 do assert.are.equal(0, max_diff(y[i], b)) end
  end)
end)

describe("silu and sigmoid in float32", function()
  it("are within a few ulp of the float64 values and keep the special values", function()
    local x = sc.linspace(-80, 80, 200001)
    local x64 = x:to("float64")
    local ref = x64 / ((x64 * -1):exp() + 1)
    local rel = ((x:silu():to("float64") - ref):abs() / (ref:abs() + 1e-38)):max():item()
    assert.is_true(rel < 5e-7, rel)
    -- far out the true values are denormal or below: ours are within 1e-33
    local far = sc.linspace(-120, -80, 4001)
    local fref = far:to("float64") / ((far:to("float64") * -1):exp() + 1)
    assert.is_true((far:silu():to("float64") - fref):abs():max():item() < 1e-33)
    -- sigmoid over the normal range of float32 (below e^-87 it is denormal)
    local xs = sc.linspace(-80, 80, 100001)
    local sref = xs:to("float64"):sigmoid()
    assert.is_true(((xs:sigmoid():to("float64") - sref):abs() / sref):max():item() < 5e-7)
    local s = sc.tensor({ 0 / 0, math.huge, 0, -0.0 }):silu()
    assert.is_true(s[1]:item() ~= s[1]:item())
    assert.are.equal(math.huge, s[2]:item())
    assert.are.equal(0, s[3]:item())
    assert.are.equal(0, s[4]:item())
    assert.is_true(sc.tensor({ -200 }):sigmoid():item() < 1e-37)
    assert.are.equal(1, sc.tensor({ 200 }):sigmoid():item())
  end)
end)

describe("softplus and logsigmoid in float32", function()
  -- log(1 + e^-|x|) is a polynomial in s = u/(2 + u) here, not libm's
  -- log1pf(expf(x)): relative error against float64 on the same inputs
  it("are within a few ulp of the float64 values over the normal range", function()
    local x = sc.linspace(-120, 120, 240001)
    local x64 = x:to("float64")
    for _, name in ipairs({ "softplus", "logsigmoid" }) do
      local ref = x64[name](x64)
      local err = (x[name](x):to("float64") - ref):abs()
      local normal = ref:abs():ge(1.1754944e-38)       -- float32's smallest normal
      local rel = (err / (ref:abs() + 1e-300) * normal):max():item()
      assert.is_true(rel < 4e-7, name .. " relative error " .. rel)
      -- below it the value is flushed: off by less than the smallest normal
      assert.is_true((err * (1 - normal)):max():item() < 1.2e-38, name)
    end
    -- tiny u = e^-|x|: log1p keeps its relative accuracy (softplus(-20) = 2.06e-9)
    local t = sc.tensor({ -20, -50 }):softplus():to("float64")
    local r = sc.tensor({ -20, -50 }, { dtype = "float64" }):softplus()
    assert.is_true(((t - r):abs() / r):max():item() < 4e-7)
  end)

  it("keep NaN, infinities and zero", function()
    local sp = sc.tensor({ 0 / 0, math.huge, -math.huge, 0 }):softplus()
    local ls = sc.tensor({ 0 / 0, math.huge, -math.huge, 0 }):logsigmoid()
    assert.is_true(sp[1]:item() ~= sp[1]:item() and ls[1]:item() ~= ls[1]:item())
    assert.are.equal(math.huge, sp[2]:item())
    assert.are.equal(0, sp[3]:item())
    assert.are.equal(0, ls[2]:item())
    assert.are.equal(-math.huge, ls[3]:item())
    assert.is_true(math.abs(sp[4]:item() - math.log(2)) < 1e-7)
    assert.is_true(math.abs(ls[4]:item() + math.log(2)) < 1e-7)
  end)
end)

describe("silu's fused backward in float32", function()
  local core = require "scorch.core"
  -- g · silu'(x) in one pass: the same numbers as silu_grad's pass and the product
  it("gives the graph formula's gradients bit for bit, contiguous or not", function()
    for _, lay in ipairs({ "contiguous", "transposed" }) do
      local x0 = sc.randn({ 300, 70 }, { generator = sc.Generator(3) }) * 6
      local x = (lay == "transposed" and x0:t() or x0):requires_grad(true)
      local u = sc.randn(x:shape(), { generator = sc.Generator(4) })
      local obj = (x:silu() * u):sum()
      local fused = sc.grad({ obj }, { x }, { retain_graph = true })[1]
      local prev = core._set_fused_backward(false)
      local graph = sc.grad({ obj }, { x })[1]
      core._set_fused_backward(prev)
      assert.are.equal(0, (fused - graph):abs():max():item(), lay)
      -- and it is the derivative: against float64 silu'(x) = s (1 + x (1 − s))
      local x64 = x:detach():to("float64")
      local s = x64:sigmoid()
      local ref = u:to("float64") * s * ((1 - s) * x64 + 1)
      -- (absolute: silu' crosses 0 near x = −1.28, where relative error means nothing)
      local err = ((fused:to("float64") - ref):abs() / u:to("float64"):abs():max()):max():item()
      assert.is_true(err < 1e-6, lay .. " error " .. err)
    end
  end)
end)

describe("the narrow-layer product's AVX-512 path", function()
  local core = require "scorch.core"
  -- each output element is the same FMA chain on either path: equal bit for
  -- bit (widths: pairs of 16-column panels, 45 = 32 + 13, 29 = a partial
  -- pair, 33 = 32 + 1, single panels of 16 and 8)
  it("gives the AVX2 path's numbers bit for bit (where the CPU has AVX-512)", function()
    local shapes = { { 1024, 128, 128 }, { 1000, 37, 45 }, { 7, 3, 5 }, { 50, 64, 8 }, { 97, 200, 33 }, { 13, 1, 16 }, { 60, 20, 29 } }
    for _, s in ipairs(shapes) do
      local n, i, o = s[1], s[2], s[3]
      local g = sc.Generator(n + i + o)
      local x, w, b = sc.randn({ i, n }, { generator = g }):t(), sc.randn({ o, i }, { generator = g }),
        sc.randn({ o }, { generator = g })
      for _, act in ipairs({ false, true }) do
        local function run()
          return sc.no_grad(function() return act and sc.linear(x, w, b, "silu") or sc.linear(x, w, b) end)
        end
        local prev = core._set_small_linear_avx512(true)
        local a = run()
        core._set_small_linear_avx512(false)
        local c = run()
        core._set_small_linear_avx512(prev)
        local label = ("[%d,%d] x [%d,%d]%s"):format(n, i, o, i, act and " + silu" or "")
        assert.are.equal(0, (a - c):abs():max():item(), label)
        -- and both are the product: against float64
        local ref = x:to("float64"):matmul(w:to("float64"):t()) + b:to("float64")
        if act then ref = ref:silu() end
        assert.is_true(((c:to("float64") - ref):abs():max():item()) < 1e-3 * math.sqrt(i), label)
      end
    end
  end)
end)

describe("a chain of narrow layers run block by block (nn.Sequential without a graph)", function()
  local core = require "scorch.core"
  local nn = sc.nn

  -- the same layers one call at a time
  local function one_by_one(x, layers)
    local h = x
    for _, l in ipairs(layers) do h = sc.linear(h, l[1], l[2] or nil, l[3] and "silu" or nil) end
    return h
  end

  local function bits_equal(a, b)
    return a:shape()[1] == b:shape()[1] and (a - b):abs():max():item() == 0
  end

  it("gives the layer-by-layer numbers bit for bit, at 1 and 2 threads, and the float64 product", function()
    local saved = sc.get_num_threads()
    -- widths: 3 -> 128 (one input column), a partial pair of panels (29),
    -- an 8-wide last panel (2 outputs); 1000 rows = 20 blocks of 48 and 40
    local cases = {
      { 1000, { 3, 128, 128, 2 }, { true, true, false } },
      { 97, { 20, 29, 45, 7 }, { true, false, true } },
      { 5, { 16, 8, 16 }, { false, true } },
    }
    for _, c in ipairs(cases) do
      local n, dims, act = c[1], c[2], c[3]
      local g = sc.Generator(n + #dims)
      local x = sc.randn({ dims[1], n }, { generator = g }):t() -- strided input
      local layers = {}
      for l = 1, #dims - 1 do
        local b = l ~= 2 and sc.randn({ dims[l + 1] }, { generator = g }) or false -- layer 2 without bias
        layers[l] = { sc.randn({ dims[l + 1], dims[l] }, { generator = g }) * (1 / math.sqrt(dims[l])), b, act[l] }
      end
      sc.no_grad(function()
        sc.set_num_threads(1)
        local ref = one_by_one(x, layers)
        local one = core._linear_chain(x, layers)
        sc.set_num_threads(2)
        local two = core._linear_chain(x, layers)
        sc.set_num_threads(saved)
        assert.is_true(bits_equal(one, ref), "chain vs layers, n = " .. n)
        assert.is_true(bits_equal(two, one), "2 threads vs 1, n = " .. n)
        -- and both are the chain: against float64
        local h = x:to("float64")
        for _, l in ipairs(layers) do
          h = h:matmul(l[1]:to("float64"):t())
          if l[2] then h = h + l[2]:to("float64") end
          if l[3] then h = h:silu() end
        end
        assert.is_true((one:to("float64") - h):abs():max():item() < 1e-4, "float64, n = " .. n)
      end)
    end
  end)

  it("is what nn.Sequential / nn.MLP run without a graph; with one, the graph and its gradients are the usual ones", function()
    local g = sc.Generator(5)
    local net = nn.MLP { ["in"] = 3, hidden = { 64, 64 }, out = 2, generator = g }
    local x = sc.randn({ 300, 3 }, { generator = g })
    local calls = 0
    local orig = core._linear_chain
    core._linear_chain = function(...) calls = calls + 1; return orig(...) end
    local ok, err = pcall(function()
      local fast = sc.no_grad(function() return net(x) end)
      assert.are.equal(1, calls)
      local slow = net(x) -- grad enabled: layer by layer, recorded
      assert.are.equal(1, calls)
      assert.is_true(bits_equal(fast, slow:detach()))
      slow:sum():backward()
      assert.is_not_nil(net[1].weight.grad)
      -- a Sequential with anything but Linear and SiLU keeps the loop
      local other = nn.Sequential { nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2) }
      sc.no_grad(function() return other(x) end)
      assert.are.equal(1, calls)
    end)
    core._linear_chain = orig
    if not ok then error(err, 0) end
  end)
end)

-- GroupNorm + SiLU as one op (sc.group_norm_silu, the U-Net's blocks): it
-- saves x instead of x and the norm's output, and its backward makes each
-- row of the norm's output again.  The same kernels' expressions, so the
-- output and every gradient must equal the two ops', to the bit.
describe("sc.group_norm_silu", function()
  local function max_abs(a, b) return (a - b):abs():max():item() end
  local function run(f, x, w, b, u)
    local xx = x:clone():requires_grad(true)
    local ww = w and w:clone():requires_grad(true)
    local bb = b and b:clone():requires_grad(true)
    local y = f(xx, ww, bb)
    ;(y * u):sum():backward()
    return { y:detach(), xx.grad, ww and ww.grad or false, bb and bb.grad or false }
  end

  it("gives group_norm then silu's output and gradients bit for bit, at 1 and 2 threads", function()
    local saved = sc.get_num_threads()
    for _, dt in ipairs({ "float32", "float64" }) do
      for _, threads in ipairs({ 1, 2 }) do
        -- 64 x 24 x 28 x 28 is over the kernels' thread grain; 3 x 6 x 5 is under it
        for _, shape in ipairs({ { 8, 24, 28, 28 }, { 3, 6, 5 } }) do
          for _, affine in ipairs({ "wb", "w", "b", "" }) do
            sc.set_num_threads(threads)
            local g = sc.Generator(11)
            local x = sc.randn(shape, { dtype = dt, generator = g }) * 2.5 + 0.5
            local C = shape[2]
            local w = affine:find("w") and sc.randn({ C }, { dtype = dt, generator = g }) or nil
            local b = affine:find("b") and sc.randn({ C }, { dtype = dt, generator = g }) or nil
            local u = sc.randn(shape, { dtype = dt, generator = g })
            local a = run(function(xx, ww, bb) return sc.group_norm(xx, 3, ww, bb):silu() end, x, w, b, u)
            local f = run(function(xx, ww, bb) return sc.group_norm_silu(xx, 3, ww, bb) end, x, w, b, u)
            for i = 1, 4 do
              if a[i] then
                assert.are.equal(0, max_abs(a[i], f[i]), ("%s, %d thread(s), %s, affine %q, tensor %d")
                  :format(dt, threads, table.concat(shape, "x"), affine, i))
              end
            end
          end
        end
      end
    end
    sc.set_num_threads(saved)
  end)

  it("keeps one tensor of x's size for the backward where the two ops keep two", function()
    local x = sc.randn(16, 24, 32, 32):requires_grad(true) -- 1.5 MB
    local w, b = sc.ones(24):requires_grad(true), sc.zeros(24):requires_grad(true)
    collectgarbage()
    collectgarbage()
    local b0 = sc.bytes_in_use()
    local y1 = sc.group_norm(x, 8, w, b):silu() -- saves x (held anyway), the norm's output, y1
    local two = sc.bytes_in_use() - b0
    y1 = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    b0 = sc.bytes_in_use()
    local y2 = sc.group_norm_silu(x, 8, w, b) -- luacheck: ignore (saves x, y2 only)
    local one = sc.bytes_in_use() - b0
    local mb = 16 * 24 * 32 * 32 * 4
    assert.is_true(two >= 2 * mb and two < 2 * mb + 65536, "two ops: " .. two)
    assert.is_true(one >= mb and one < mb + 65536, "one op: " .. one)
  end)

  it("is what nn.Sequential runs for a GroupNorm + SiLU pair, and the U-Net's blocks use", function()
    local nn = sc.nn
    local m = nn.Sequential { nn.GroupNorm(2, 4), nn.SiLU() }
    assert.are.equal("group_norm_silu", m(sc.randn(2, 4, 3, 3)):grad_fn())
    -- the U-Net's norms go through forward_silu: count the calls
    local GN = require("scorch.nn.norm").GroupNorm
    local orig, calls = GN.forward_silu, 0
    GN.forward_silu = function(self, x) calls = calls + 1; return orig(self, x) end
    local ok, err = pcall(function()
      local net = sc.models.UNet { channels = 8, mults = { 1 }, attention = { false }, blocks = 1,
        mid_attention = false, generator = sc.Generator(1) }
      net(sc.randn(2, 1, 8, 8), sc.ones(2))
    end)
    GN.forward_silu = orig
    assert(ok, err)
    -- one level: a down block, a middle of two blocks, two up blocks (two
    -- norms each), and the output norm
    assert.are.equal(11, calls)
  end)

  it("rejects bad input naming group_norm_silu", function()
    local x = sc.randn(2, 6, 3)
    assert.has_error(function() sc.group_norm_silu(x, 4) end,
      "scorch.group_norm_silu: 6 channels are not divisible into 4 groups")
    assert.has_error(function() sc.group_norm_silu(x, 3, sc.ones(5)) end)
    assert.has_error(function() sc.group_norm_silu(sc.randn(6), 3) end)
  end)
end)
