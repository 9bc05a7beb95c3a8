-- The normalisation kernels of csrc/core/norm.c against the Lua composites
-- they replaced (kept here as the reference formulas): values, first and
-- second derivatives in float64, both backward paths (the fused kernel of
-- a plain backward and the differentiable ops of create_graph), float32
-- against float64 on inputs far from zero, and independence from the
-- thread count.
local sc = require "scorch"
local H = require "helpers"

local F64 = { dtype = "float64" }

local function R(shape, seed, dtype)
  return sc.randn(shape, { dtype = dtype or "float64", generator = sc.Generator(seed) })
end

local function maxdiff(a, b)
  return sc.no_grad(function() return (a:detach() - b:detach()):abs():max():item() end)
end

local function assert_within(a, b, tol, what)
  local d = maxdiff(a, b)
  assert(d < tol, ("%s: max difference %.3g (allowed %.3g)"):format(what, d, tol))
end

-- The composites as they were in lua/scorch/functional.lua (the bias is
-- applied with or without a weight, as the kernel does; reshape, not view,
-- takes strided weights).
local function gn_composite(x, groups, w, b, eps)
  local shape = x:shape()
  local N, C = shape[1], shape[2]
  local xg = x:reshape(N, groups, -1)
  local mean = xg:mean(3, true)
  local var = xg:var(3, true, false)
  local y = ((xg - mean) * (var + eps):rsqrt()):view(shape)
  local bshape = { 1, C }
  for _ = 3, #shape do bshape[#bshape + 1] = 1 end
  if w then y = y * w:reshape(bshape) end
  if b then y = y + b:reshape(bshape) end
  return y
end

local function ln_composite(x, nd, w, b, eps)
  local dims = {}
  for k = 1, nd do dims[k] = x:dim() - nd + k end
  local mean = x:mean(dims, true)
  local var = x:var(dims, true, false)
  local y = (x - mean) * (var + eps):rsqrt()
  if w then y = y * w end
  if b then y = y + b end
  return y
end

local function log_softmax_composite(x, d) return x - x:logsumexp(d, true) end
local function softmax_composite(x, d) return (x - x:logsumexp(d, true)):exp() end

-- Gradients of <f(xs), u> w.r.t. xs: plain (fused kernels) and with
-- create_graph (differentiable ops); and the second derivative
-- d/dxs <grad, v> through the create_graph path.
local function derivatives(f, xs, seed)
  local y = f(table.unpack(xs))
  local u = R(y:shape(), seed)
  local plain = sc.grad({ (y * u):sum() }, xs, { retain_graph = true })
  local graph = sc.grad({ (y * u):sum() }, xs, { create_graph = true })
  local dot
  for i, g in ipairs(graph) do
    local term = (g * R(g:shape(), seed + i)):sum()
    dot = dot and dot + term or term
  end
  local second = sc.grad({ dot }, xs, { allow_unused = true })
  return y, plain, graph, second
end

-- Kernel against composite: values and first derivatives to 1e-12, second
-- derivatives to 1e-10 (float64).
local function against_composite(kernel, composite, inputs, seed)
  local xs = {}
  for i, x in ipairs(inputs) do xs[i] = x:requires_grad(true) end
  local y1, p1, g1, s1 = derivatives(kernel, xs, seed)
  local y2, p2, _, s2 = derivatives(composite, xs, seed)
  assert_within(y1, y2, 1e-12, "forward")
  for i = 1, #xs do
    assert_within(p1[i], p2[i], 1e-12, "d/d input " .. i .. " (fused backward)")
    assert_within(g1[i], p2[i], 1e-12, "d/d input " .. i .. " (create_graph backward)")
    if s2[i] then
      assert(s1[i], "second derivative missing for input " .. i)
      assert_within(s1[i], s2[i], 1e-10, "second derivative, input " .. i)
    end
  end
end

-- Runs f with n threads, restoring the previous count.
local function with_threads(n, f)
  local prev = sc.get_num_threads()
  sc.set_num_threads(n)
  local ok, a, b, c, d = pcall(f)
  sc.set_num_threads(prev)
  assert(ok, a)
  return a, b, c, d
end

describe("group_norm kernel", function()
  local function kernel(groups, eps)
    return function(x, w, b) return sc.group_norm(x, groups, w, b, eps) end
  end
  local function composite(groups, eps)
    return function(x, w, b) return gn_composite(x, groups, w, b, eps or 1e-5) end
  end

  it("matches the composite in float64: values, first and second derivatives", function()
    against_composite(kernel(2), composite(2), { R({ 3, 4, 5, 5 }, 1), R({ 4 }, 2), R({ 4 }, 3) }, 10)
    against_composite(kernel(3, 1e-3), composite(3, 1e-3), { R({ 2, 6, 7 }, 4), R({ 6 }, 5), R({ 6 }, 6) }, 20)
    against_composite(kernel(1), composite(1), { R({ 4, 3 }, 7) }, 30) -- no spatial dims, no affine
    against_composite(kernel(4), composite(4), { R({ 2, 4, 3, 2 }, 8), R({ 4 }, 9) }, 40) -- one channel a group
  end)

  it("matches the composite on strided inputs (permuted and transposed)", function()
    local base = R({ 2, 5, 4, 6 }, 11) -- read as [2, 4, 5, 6] through a permutation
    against_composite(function(x, w, b) return sc.group_norm(x:permute(1, 3, 2, 4), 2, w, b) end,
      function(x, w, b) return gn_composite(x:permute(1, 3, 2, 4), 2, w, b, 1e-5) end,
      { base, R({ 4 }, 12), R({ 4 }, 13) }, 50)
    against_composite(kernel(2), composite(2), { H.transposed(R({ 3, 4, 6, 5 }, 14)), R({ 4 }, 15), R({ 4 }, 16) }, 60)
    against_composite(kernel(3), composite(3), { H.strided(R({ 2, 6, 3 }, 17)), H.strided(R({ 6 }, 18)) }, 70)
  end)

  it("applies the bias with or without a weight", function()
    local x, b = R({ 2, 4, 3 }, 19), R({ 4 }, 20)
    local want = sc.group_norm(x, 2) + b:view(1, 4, 1)
    assert_within(sc.group_norm(x, 2, nil, b), want, 1e-15, "bias only")
    local ones = sc.ones(4, F64)
    assert_within(sc.group_norm(x, 2, ones, b), want, 1e-15, "unit weight")
  end)

  it("gives the bias exactly on a constant group, whatever its offset", function()
    local x = sc.full({ 2, 4, 3, 3 }, 1000.25)
    local b = sc.tensor({ 0.5, -1, 2, 0.125 })
    local y = sc.group_norm(x, 2, sc.ones(4), b)
    assert.is_true(H.identical(y, b:view(1, 4, 1, 1):expand(2, 4, 3, 3):contiguous()))
  end)

  it("in float32, with a mean of 1000 or 1e5, agrees with float64 on the same values", function()
    -- (the composite was off by 2e-4 in y at 1000 and 1e-2 at 1e5)
    for _, offset in ipairs({ 1000, 1e5 }) do
      local x64 = R({ 4, 8, 6, 6 }, 21) + offset
      local x32 = x64:float()
      x64 = x32:double() -- the same numbers, exactly
      local w64, b64 = R({ 8 }, 22) + 1, R({ 8 }, 23)
      local w32, b32 = w64:float(), b64:float()
      w64, b64 = w32:double(), b32:double()
      local u64 = R({ 4, 8, 6, 6 }, 24)
      local u32 = u64:float()
      u64 = u32:double()
      local function run(x, w, b, u)
        x, w, b = x:requires_grad(true), w:requires_grad(true), b:requires_grad(true)
        local y = sc.group_norm(x, 4, w, b)
        local gx, gw, gb = table.unpack(sc.grad({ (y * u):sum() }, { x, w, b }))
        return y, gx, gw, gb
      end
      local r32, r64 = { run(x32, w32, b32, u32) }, { run(x64, w64, b64, u64) }
      -- y is O(1): float32 rounding is 6e-8; the centring must not lose more
      assert_within(r32[1]:double(), r64[1], 2e-6, "forward")
      assert_within(r32[2]:double(), r64[2], 2e-6, "d/dx")
      assert_within(r32[3]:double(), r64[3], 2e-5, "d/dw (a sum of 144 products)")
      assert_within(r32[4]:double(), r64[4], 2e-5, "d/db")
    end
  end)

  it("gives the same bits at one and two threads", function()
    local x, w, b = R({ 8, 16, 16, 16 }, 25, "float32"), R({ 16 }, 26, "float32"), R({ 16 }, 27, "float32")
    local u = R({ 8, 16, 16, 16 }, 28, "float32")
    local function run()
      local xs = { x:requires_grad(true), w:requires_grad(true), b:requires_grad(true) }
      local y = sc.group_norm(xs[1], 4, xs[2], xs[3])
      local g = sc.grad({ (y * u):sum() }, xs)
      return y, g[1], g[2], g[3]
    end
    local one, two = { with_threads(1, run) }, { with_threads(2, run) }
    for i = 1, 4 do assert.is_true(H.identical(one[i], two[i]), "result " .. i .. " differs") end
  end)

  it("handles an empty batch", function()
    local x = sc.zeros(0, 4, 3):requires_grad(true)
    local y = sc.group_norm(x, 2, sc.ones(4), sc.zeros(4))
    assert.are.same({ 0, 4, 3 }, y:shape())
    local g = sc.grad({ y:sum() }, { x })[1]
    assert.are.same({ 0, 4, 3 }, g:shape())
  end)
end)

describe("layer_norm kernel", function()
  local function kernel(nd, eps)
    return function(x, w, b) return sc.layer_norm(x, nd, w, b, eps) end
  end
  local function composite(nd, eps)
    return function(x, w, b) return ln_composite(x, nd, w, b, eps or 1e-5) end
  end

  it("matches the composite in float64: values, first and second derivatives", function()
    against_composite(kernel(1), composite(1), { R({ 5, 7 }, 31), R({ 7 }, 32), R({ 7 }, 33) }, 110)
    against_composite(kernel(2, 1e-3), composite(2, 1e-3),
      { R({ 2, 3, 4, 5 }, 34), R({ 4, 5 }, 35), R({ 4, 5 }, 36) }, 120)
    against_composite(kernel(2), composite(2), { R({ 3, 6 }, 37) }, 130) -- every dim, no affine
    -- more rows than one block of the weight-gradient sums, and a row longer than one column block
    against_composite(kernel(1), composite(1), { R({ 600, 3 }, 38), R({ 3 }, 39), R({ 3 }, 40) }, 140)
    against_composite(kernel(1), composite(1), { R({ 3, 2500 }, 41), R({ 2500 }, 42), R({ 2500 }, 43) }, 150)
  end)

  it("matches the composite on strided inputs (permuted and transposed)", function()
    against_composite(function(x, w, b) return sc.layer_norm(x:permute(2, 3, 1), 2, w, b) end,
      function(x, w, b) return ln_composite(x:permute(2, 3, 1), 2, w, b, 1e-5) end,
      { R({ 5, 3, 4 }, 44), R({ 4, 5 }, 45), R({ 4, 5 }, 46) }, 160)
    against_composite(kernel(1), composite(1), { H.transposed(R({ 6, 5 }, 47)), H.strided(R({ 5 }, 48)) }, 170)
  end)

  it("applies the bias with or without a weight", function()
    local x, b = R({ 3, 4 }, 49), R({ 4 }, 50)
    assert_within(sc.layer_norm(x, 1, nil, b), sc.layer_norm(x, 1) + b, 1e-15, "bias only")
  end)

  it("in float32, with a mean of 1000 or 1e5, agrees with float64 on the same values", function()
    for _, offset in ipairs({ 1000, 1e5 }) do
      local x32 = (R({ 16, 40 }, 51) + offset):float()
      local w32, b32, u32 = (R({ 40 }, 52) + 1):float(), R({ 40 }, 53):float(), R({ 16, 40 }, 54):float()
      local function run(x, w, b, u)
        x, w, b = x:requires_grad(true), w:requires_grad(true), b:requires_grad(true)
        local y = sc.layer_norm(x, 1, w, b)
        local gx, gw, gb = table.unpack(sc.grad({ (y * u):sum() }, { x, w, b }))
        return y, gx, gw, gb
      end
      local r32 = { run(x32, w32, b32, u32) }
      local r64 = { run(x32:double(), w32:double(), b32:double(), u32:double()) }
      assert_within(r32[1]:double(), r64[1], 2e-6, "forward")
      assert_within(r32[2]:double(), r64[2], 2e-6, "d/dx")
      assert_within(r32[3]:double(), r64[3], 1e-5, "d/dw")
      assert_within(r32[4]:double(), r64[4], 1e-5, "d/db")
    end
  end)

  it("gives the same bits at one and two threads", function()
    local x, w, b = R({ 1100, 64 }, 55, "float32"), R({ 64 }, 56, "float32"), R({ 64 }, 57, "float32")
    local u = R({ 1100, 64 }, 58, "float32")
    local function run()
      local xs = { x:requires_grad(true), w:requires_grad(true), b:requires_grad(true) }
      local y = sc.layer_norm(xs[1], 1, xs[2], xs[3])
      local g = sc.grad({ (y * u):sum() }, xs)
      return y, g[1], g[2], g[3]
    end
    local one, two = { with_threads(1, run) }, { with_threads(2, run) }
    for i = 1, 4 do assert.is_true(H.identical(one[i], two[i]), "result " .. i .. " differs") end
  end)

  it("nn.LayerNorm uses it", function()
    local ln = sc.nn.LayerNorm({ 3, 4 }, { dtype = "float64" })
    local x = R({ 2, 3, 4 }, 59)
    assert.are.equal("layer_norm", ln(x:requires_grad(true)):grad_fn())
  end)
end)

describe("softmax and log_softmax kernels", function()
  local pairs_ = {
    { "softmax", softmax_composite },
    { "log_softmax", log_softmax_composite },
  }

  it("match the composites in float64: values, first and second derivatives", function()
    for _, p in ipairs(pairs_) do
      local name, comp = p[1], p[2]
      local function check(shape, d, seed, scale)
        scale = scale or 1
        against_composite(function(x) return sc[name](x * scale, d) end,
          function(x) return comp(x * scale, d) end, { R(shape, seed) }, seed + 100)
      end
      check({ 4, 7 }, 2, 61)
      check({ 4, 7 }, 1, 62)          -- columns: 7 of them in one tile
      check({ 3, 5, 70 }, 2, 63)      -- 70 columns: a full tile and a partial one
      check({ 2, 3, 4, 5 }, -3, 64)
      check({ 3, 19 }, -1, 65, 40)    -- logits of size ~100
      check({ 6 }, 1, 66)
    end
  end)

  it("match the composites on strided inputs", function()
    for _, p in ipairs(pairs_) do
      local name, comp = p[1], p[2]
      against_composite(function(x) return sc[name](x:permute(2, 3, 1), 3) end,
        function(x) return comp(x:permute(2, 3, 1), 3) end, { R({ 4, 3, 5 }, 67) }, 200)
      against_composite(function(x) return sc[name](x, 1) end, function(x) return comp(x, 1) end,
        { H.strided(R({ 5, 3 }, 68)) }, 210)
    end
  end)

  it("handle infinite logits as the composites did", function()
    local inf = math.huge
    local x = sc.tensor({ { 0, -inf, 1, -inf }, { -inf, -inf, -inf, -inf }, { 2, inf, 0, 1 } }, F64)
    for _, p in ipairs(pairs_) do
      -- NaN where the composite gave NaN, the same infinities, the rest to rounding
      H.assert_close(sc[p[1]](x, 2), p[2](x, 2), 1e-15, p[1])
    end
    local y = sc.softmax(x, 2):values()
    assert.are.equal(0, y[2])                          -- e^-inf
    assert.is_true(math.abs(y[3] - 1 / (1 + math.exp(-1))) < 1e-15)
    assert.is_true(y[5] ~= y[5])                       -- an all -inf row has no distribution
    assert.are.equal(-inf, sc.log_softmax(x, 2):values()[2])
  end)

  it("in float32 agree with float64, logits offset by 1000", function()
    local x32 = (R({ 8, 50 }, 69) * 3 + 1000):float()
    local u32 = R({ 8, 50 }, 70):float()
    for _, name in ipairs({ "softmax", "log_softmax" }) do
      local function run(x, u)
        x = x:requires_grad(true)
        local y = sc[name](x, 2)
        return y, sc.grad({ (y * u):sum() }, { x })[1]
      end
      local y32, g32 = run(x32, u32)
      local y64, g64 = run(x32:double(), u32:double())
      assert_within(y32:double(), y64, 2e-6, name .. " forward")
      assert_within(g32:double(), g64, 2e-6, name .. " d/dx")
    end
  end)

  it("give the same bits at one and two threads, along rows and columns", function()
    for _, case in ipairs({ { { 600, 100 }, 2 }, { { 4, 100, 90 }, 2 } }) do
      local x = R(case[1], 71, "float32")
      local u = R(case[1], 72, "float32")
      for _, name in ipairs({ "softmax", "log_softmax" }) do
        local function run()
          local xr = x:requires_grad(true)
          local y = sc[name](xr, case[2])
          return y, sc.grad({ (y * u):sum() }, { xr })[1]
        end
        local y1, g1 = with_threads(1, run)
        local y2, g2 = with_threads(2, run)
        assert.is_true(H.identical(y1, y2), name .. " forward differs")
        assert.is_true(H.identical(g1, g2), name .. " backward differs")
      end
    end
  end)

  it("back cross_entropy: gradient softmax(z) - onehot(y)", function()
    local z = R({ 3, 4 }, 73):requires_grad(true)
    local loss = sc.losses.cross_entropy(z, { 2, 4, 1 }, { reduction = "sum" })
    local g = sc.grad({ loss }, { z })[1]
    local want = sc.softmax(z:detach(), 2) - sc.tensor({ { 0, 1, 0, 0 }, { 0, 0, 0, 1 }, { 1, 0, 0, 0 } }, F64)
    assert_within(g, want, 1e-15, "d loss / d z")
  end)
end)
