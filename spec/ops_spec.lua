-- Tensor ops against closed forms: every arithmetic, unary, reduction,
-- product and selection op of the API, on contiguous, transposed
-- (non-contiguous) and broadcast inputs, in float32 and float64.  Expected
-- values are computed here in plain Lua from the inputs' own values.
local sc = require "scorch"
local H = require "helpers"

local assert_close = H.assert_close
local DTYPES = { "float32", "float64" }
local TOL = { float32 = 2e-6, float64 = 1e-12 }

local function map(t, f)
  local out = {}
  for i, v in ipairs(t) do out[i] = f(v) end
  return out
end

local function sigmoid(x) return 1 / (1 + math.exp(-x)) end
local function log1p(x) return math.log(1 + x) end

-- erfc to 20 digits (mpmath) at the inputs of these specs.
local ERFC = {
  [-3] = 1.9999779095030014146, [-2.25] = 1.9985372834133188483, [-1.5] = 1.9661051464753107271,
  [-0.75] = 1.7111556336535151316, [-0.1] = 1.1124629160182848984, [0.25] = 0.72367360983176306701,
  [0.5] = 0.47950012218695346232, [0.6] = 0.39614390915207409492, [1] = 0.15729920705028513066,
  [1.75] = 0.013328328780817556228, [2] = 0.0046777349810472658379, [3] = 0.000022090496998585441373,
  [5] = 1.5374597944280348502e-12,
}
-- The value of the key nearest x (float32 inputs are rounded keys).
local function near(tbl, x)
  for k, v in pairs(tbl) do
    if math.abs(k - x) < 1e-6 then return v end
  end
  error("no reference value at " .. x)
end

-- Reference scalar functions, with a domain tag for the inputs to use.
local UNARY = {
  exp = { math.exp }, log = { math.log, "pos" }, sqrt = { math.sqrt, "pos" },
  abs = { math.abs }, tanh = { function(x) return (math.exp(2 * x) - 1) / (math.exp(2 * x) + 1) end },
  sigmoid = { sigmoid }, relu = { function(x) return x > 0 and x or 0 end },
  silu = { function(x) return x * sigmoid(x) end },
  softplus = { function(x) return log1p(math.exp(x)) end },
  sin = { math.sin }, cos = { math.cos },
  sign = { function(x) return x > 0 and 1 or x < 0 and -1 or 0 end },
  square = { function(x) return x * x end },
  rsqrt = { function(x) return 1 / math.sqrt(x) end, "pos" },
  log1p = { log1p, "pos" }, expm1 = { function(x) return math.exp(x) - 1 end },
  neg = { function(x) return -x end },
  erfc = { function(x) return near(ERFC, x) end },
  logsigmoid = { function(x) return x < 0 and x - log1p(math.exp(x)) or -log1p(math.exp(-x)) end },
  -- exposed fused derivatives: silu' = s (1 + x (1 - s)), silu'', relu'
  silu_grad = { function(x) local s = sigmoid(x); return s * (1 + x * (1 - s)) end },
  silu_grad2 = { function(x) local s = sigmoid(x); return s * (1 - s) * (2 + x * (1 - 2 * s)) end },
  step = { function(x) return x > 0 and 1 or 0 end },
}

local BINARY = {
  add = function(a, b) return a + b end,
  sub = function(a, b) return a - b end,
  mul = function(a, b) return a * b end,
  div = function(a, b) return a / b end,
  pow = function(a, b) return a ^ b end,
  maximum = function(a, b) return math.max(a, b) end,
  minimum = function(a, b) return math.min(a, b) end,
  gt = function(a, b) return a > b and 1 or 0 end,
  lt = function(a, b) return a < b and 1 or 0 end,
  ge = function(a, b) return a >= b and 1 or 0 end,
  le = function(a, b) return a <= b and 1 or 0 end,
  eq = function(a, b) return a == b and 1 or 0 end,
  ne = function(a, b) return a ~= b and 1 or 0 end,
}

-- 3x4 inputs: mixed signs, and strictly positive for log/sqrt/pow bases.
local MIXED = { { -1.5, 0.25, 2, -0.75 }, { 3, -2.25, 0.5, 1 }, { -0.1, 1.75, -3, 0.6 } }
local POS = { { 0.5, 1.25, 2, 0.75 }, { 3, 2.25, 0.1, 1 }, { 1.5, 4, 0.3, 0.6 } }
local OTHER = { { 2, 0.25, -1, -0.75 }, { 0.5, 2, 0.5, -1 }, { 1, 1.75, 2.5, -0.5 } }

-- The layouts each op is run on: contiguous, and the same values stored
-- transposed (a non-contiguous view), and narrowed (stride 2).
local LAYOUTS = {
  contiguous = function(x) return x end,
  transposed = function(x)
    local t = H.transposed(x)
    assert(not t:is_contiguous())
    return t
  end,
  strided = function(x)
    local t = H.strided(x)
    assert(not t:is_contiguous())
    return t
  end,
  -- broadcast: the second row repeated at stride 0
  expanded = function(x) return x:narrow(1, 2, 1):expand(3, 4) end,
}

describe("unary ops", function()
  for _, dt in ipairs(DTYPES) do
    for lname, layout in pairs(LAYOUTS) do
      for name, spec in pairs(UNARY) do
        it(("%s on %s %s"):format(name, lname, dt), function()
          local x = layout(sc.tensor(spec[2] == "pos" and POS or MIXED, { dtype = dt }))
          local want = map(x:values(), spec[1])
          local y = (sc[name] or sc.core[name])(x)
          assert.are.same({ 3, 4 }, y:shape())
          assert.are.equal(dt, y:dtype())
          assert.is_true(y:is_contiguous())
          assert_close(y:values(), want, TOL[dt])
          if x[name] then assert_close(x[name](x):values(), want, TOL[dt]) end
        end)
      end
    end
  end

  it("unary minus", function()
    local x = sc.tensor(MIXED, { dtype = "float64" })
    assert_close((-x):values(), map(x:values(), function(v) return -v end), 0)
    assert_close((-x:t()):totable(), x:t():neg():totable(), 0)
  end)

  it("softplus and sigmoid are stable for large |x|", function()
    local x = sc.tensor({ -800, -30, 30, 800 }, { dtype = "float64" })
    assert_close(x:softplus():values(), { 0, math.exp(-30), 30 + math.exp(-30), 800 }, 1e-12)
    assert_close(x:sigmoid():values(), { 0, sigmoid(-30), sigmoid(30), 1 }, 1e-12)
    assert_close(sc.tensor({ 30, 100 }):softplus():values(), { 30, 100 }, 1e-6)
  end)

  it("erfc: relative accuracy in the tail, float64 (erfc) and float32 (erfcf)", function()
    local xs = { 0.5, 3, 5 }
    local want = map(xs, function(v) return ERFC[v] end)
    for _, dt in ipairs(DTYPES) do
      local y = sc.erfc(sc.tensor(xs, { dtype = dt })):values()
      local rel = dt == "float64" and 1e-15 or 1e-6
      for i = 1, #xs do
        assert(math.abs(y[i] - want[i]) <= rel * want[i],
          ("erfc(%g) %s: %.17g vs %.17g"):format(xs[i], dt, y[i], want[i]))
      end
    end
    -- 1 - erf would give 0 here; erfc keeps the tail
    local tail = sc.erfc(sc.tensor({ 10 }, { dtype = "float64" })):item()
    assert.is_true(math.abs(tail / 2.088487583762544757e-45 - 1) < 1e-14)
  end)

  it("erfc's gradient is -2/sqrt(pi) exp(-x^2)", function()
    local x = sc.tensor({ 0, 1, -2 }, { dtype = "float64" }):requires_grad(true)
    local g = sc.grad(x:erfc():sum(), { x })[1]
    local c = -2 / math.sqrt(math.pi)
    assert_close(g:values(), { c, c * math.exp(-1), c * math.exp(-4) }, 1e-15)
  end)

  it("logsigmoid is -softplus(-x), finite at x = -200 in float32", function()
    local x = sc.tensor({ -200, -30, 0, 30, 200 })
    local y = x:logsigmoid():values()
    assert.are.equal(-200, y[1]) -- log(sigmoid(-200)) = -200 - log1p(e^-200)
    assert.are.equal(-30, y[2])
    assert_close({ y[3] }, { -math.log(2) }, 1e-7)
    assert.is_true(y[4] <= 0 and y[4] > -1e-12 and y[5] <= 0 and y[5] > -1e-30)
    local d = sc.tensor({ -200, -30, -1, 0, 1, 30 }, { dtype = "float64" })
    assert_close(d:logsigmoid():values(), { -200, -30.000000000000092, -1.3132616875182228, -0.6931471805599453,
      -0.31326168751822286, -9.357622968839737e-14 }, 1e-15)
    local r = sc.randn({ 50 }, { dtype = "float64", generator = sc.Generator(9) }) * 8
    assert_close(r:logsigmoid():values(), (-(-r):softplus()):values(), 1e-14)
  end)

  it("logsigmoid's gradient is sigmoid(-x), also at x = -200 in float32", function()
    local x = sc.tensor({ -200, -1, 0, 2 }):requires_grad(true)
    local g = sc.grad(x:logsigmoid():sum(), { x })[1]:values()
    assert.are.equal(1, g[1])
    assert_close({ g[2], g[3], g[4] }, { sigmoid(1), 0.5, sigmoid(-2) }, 1e-7)
  end)

  it("works on 0-d and empty tensors", function()
    assert_close(sc.tensor(2, { dtype = "float64" }):exp():item(), math.exp(2), 1e-14)
    assert.are.same({ 0, 3 }, sc.zeros(0, 3):exp():shape())
  end)
end)

describe("binary ops", function()
  for _, dt in ipairs(DTYPES) do
    local o = { dtype = dt }
    for lname, layout in pairs(LAYOUTS) do
      for name, f in pairs(BINARY) do
        it(("%s on %s %s"):format(name, lname, dt), function()
          local a = layout(sc.tensor(name == "pow" and POS or MIXED, o))
          local b = layout(sc.tensor(OTHER, o))
          local va, vb = a:values(), b:values()
          local want = {}
          for i = 1, #va do want[i] = f(va[i], vb[i]) end
          local y = a[name](a, b)
          assert.are.same({ 3, 4 }, y:shape())
          assert.are.equal(dt, y:dtype())
          assert_close(y:values(), want, TOL[dt])
          if sc[name] then assert_close(sc[name](a, b):values(), want, TOL[dt]) end
        end)
      end
    end

    for name, f in pairs(BINARY) do
      it(("%s broadcasts [3,1] with [4] and [1,4] (%s)"):format(name, dt), function()
        local col = sc.tensor({ { 0.5 }, { 2 }, { 1.5 } }, o)
        local row = sc.tensor({ 2, -1, 0.5, 1.5 }, o)
        local y = col[name](col, row)
        assert.are.same({ 3, 4 }, y:shape())
        local want = {}
        for i, c in ipairs({ 0.5, 2, 1.5 }) do
          for j, r in ipairs({ 2, -1, 0.5, 1.5 }) do want[(i - 1) * 4 + j] = f(c, r) end
        end
        assert_close(y:values(), want, TOL[dt])
        -- the other way round and against a transposed operand
        local y2 = row[name](row:view(1, 4), col)
        local want2 = {}
        for i, c in ipairs({ 0.5, 2, 1.5 }) do
          for j, r in ipairs({ 2, -1, 0.5, 1.5 }) do want2[(i - 1) * 4 + j] = f(r, c) end
        end
        assert_close(y2:values(), want2, TOL[dt])
        local m = sc.tensor(OTHER, o):t() -- [4,3], non-contiguous
        local y3 = m[name](m, sc.tensor({ 1, 2, 0.5 }, o))
        local want3 = {}
        for k, v in ipairs(m:values()) do want3[k] = f(v, ({ 1, 2, 0.5 })[(k - 1) % 3 + 1]) end
        assert_close(y3:values(), want3, TOL[dt])
        -- broadcasting to a new leading dim
        local y4 = col[name](col, sc.tensor(OTHER, o):view(1, 3, 4))
        assert.are.same({ 1, 3, 4 }, y4:shape())
      end)
    end

    it("numbers on either side (" .. dt .. ")", function()
      local x = sc.tensor(POS, o):t()
      local v = x:values()
      local cases = {
        { x + 2, function(a) return a + 2 end }, { 2 + x, function(a) return 2 + a end },
        { x - 2, function(a) return a - 2 end }, { 2 - x, function(a) return 2 - a end },
        { x * 3, function(a) return a * 3 end }, { 3 * x, function(a) return 3 * a end },
        { x / 4, function(a) return a / 4 end }, { 4 / x, function(a) return 4 / a end },
        { x ^ 2, function(a) return a * a end }, { 2 ^ x, function(a) return 2 ^ a end },
        { x ^ 0.5, math.sqrt }, { x ^ -1, function(a) return 1 / a end },
        { x:maximum(1), function(a) return math.max(a, 1) end },
        { x:minimum(1), function(a) return math.min(a, 1) end },
        { x:gt(1), function(a) return a > 1 and 1 or 0 end },
        { x:lt(1), function(a) return a < 1 and 1 or 0 end },
        { x:ge(1), function(a) return a >= 1 and 1 or 0 end },
        { x:le(1), function(a) return a <= 1 and 1 or 0 end },
        { x:eq(1), function(a) return a == 1 and 1 or 0 end },
        { x:ne(1), function(a) return a ~= 1 and 1 or 0 end },
        { sc.add(2, x), function(a) return 2 + a end },
      }
      for k, c in ipairs(cases) do
        assert.are.same({ 4, 3 }, c[1]:shape())
        assert.are.equal(dt, c[1]:dtype())
        assert_close(c[1]:values(), map(v, c[2]), TOL[dt], "case " .. k)
      end
    end)

    it("comparisons give 0/1 of the input dtype (" .. dt .. ")", function()
      local a = sc.tensor({ 1, 2, 3 }, o)
      local g = a:gt(sc.tensor({ 2, 2, 2 }, o))
      assert.are.same({ 0, 0, 1 }, g:totable())
      assert.are.same({ 1, 0, 0 }, a:lt(2):totable())
      assert.are.equal(dt, g:dtype())
    end)
  end

  it("division by zero follows IEEE", function()
    local y = sc.tensor({ 1, -1, 0 }, { dtype = "float64" }) / 0
    local v = y:values()
    assert.are.equal(math.huge, v[1])
    assert.are.equal(-math.huge, v[2])
    assert.is_true(v[3] ~= v[3])
  end)

  it("float32 arithmetic rounds to float32", function()
    local a = sc.tensor({ 1 }) + 2 ^ -30
    assert.are.equal(1, a:item())
    local b = sc.tensor({ 1 }, { dtype = "float64" }) + 2 ^ -30
    assert.are.equal(1 + 2 ^ -30, b:item())
  end)
end)

local function ramp(dt, shape, scale)
  local n = 1
  for _, s in ipairs(shape) do n = n * s end
  local v = {}
  for k = 1, n do v[k] = ((k * 5) % 11 - 5) * (scale or 0.25) end
  return sc.tensor(v, { dtype = dt }):view(shape)
end

-- Reference reduction over tensor x (values and shape) along 0-based dims
-- `red` (a set); kind = sum | mean | var | max | min | lse.  Returns the
-- flat values of the result (with reduced dims removed) and 1-based argmax.
local function ref_reduce(x, dims, kind)
  local shape, vals = x:shape(), x:values()
  local nd = #shape
  local red = {}
  for _, d in ipairs(dims) do red[(d < 0 and d + nd or d - 1)] = true end
  if #dims == 0 then for d = 0, nd - 1 do red[d] = true end end
  local groups, order = {}, {}
  local idx = {}
  for d = 1, nd do idx[d] = 0 end
  for k = 1, #vals do
    local key, pos = {}, 0
    for d = 1, nd do
      if red[d - 1] then pos = pos * shape[d] + idx[d] else key[#key + 1] = idx[d] end
    end
    local ks = table.concat(key, ",")
    if not groups[ks] then
      groups[ks] = {}
      order[#order + 1] = ks
    end
    table.insert(groups[ks], { vals[k], pos + 1 })
    for d = nd, 1, -1 do
      idx[d] = idx[d] + 1
      if idx[d] < shape[d] then break end
      idx[d] = 0
    end
  end
  local out, arg = {}, {}
  for i, ks in ipairs(order) do
    local g = groups[ks]
    local s, best, bi = 0, g[1][1], g[1][2]
    for _, e in ipairs(g) do
      s = s + e[1]
      if (kind == "max" and e[1] > best) or (kind == "min" and e[1] < best) then
        best, bi = e[1], e[2]
      end
    end
    local n = #g
    if kind == "sum" then out[i] = s
    elseif kind == "mean" then out[i] = s / n
    elseif kind == "var" then
      local m, q = s / n, 0
      for _, e in ipairs(g) do q = q + (e[1] - m) ^ 2 end
      out[i] = q / (n - 1)
    elseif kind == "lse" then
      local m = -math.huge
      for _, e in ipairs(g) do m = math.max(m, e[1]) end
      local acc = 0
      for _, e in ipairs(g) do acc = acc + math.exp(e[1] - m) end
      out[i] = m + math.log(acc)
    else
      out[i], arg[i] = best, bi
    end
  end
  return out, arg
end

local function reduced_shape(shape, dims, keepdim)
  local nd, red, out = #shape, {}, {}
  for _, d in ipairs(dims) do red[(d < 0 and d + nd or d - 1) + 1] = true end
  if #dims == 0 then for d = 1, nd do red[d] = true end end
  for d = 1, nd do
    if not red[d] then out[#out + 1] = shape[d] elseif keepdim then out[#out + 1] = 1 end
  end
  return out
end

-- Distinct values (no ties for max/min), shape [2,3,4].
local function cube(dt)
  local v = {}
  for k = 0, 23 do v[k + 1] = ((k * 7) % 24 - 11.5) / 4 end
  return sc.tensor(v, { dtype = dt }):view(2, 3, 4)
end

describe("reductions", function()
  local DIMSETS = { {}, { 1 }, { 2 }, { 3 }, { -1 }, { -3 }, { 1, 3 }, { -1, 2 } }
  local RLAYOUTS = {
    contiguous = function(x) return x end,
    permuted = function(x) -- same logical values, memory order [3,1,2]
      local p = x:permute(3, 1, 2):contiguous():permute(2, 3, 1)
      assert(not p:is_contiguous())
      return p
    end,
    strided = function(x) return H.strided(x) end,
    expanded = function(x) return x:narrow(2, 2, 1):expand(2, 3, 4) end, -- stride 0
  }
  for _, dt in ipairs(DTYPES) do
    for lname, layout in pairs(RLAYOUTS) do
      for _, kind in ipairs({ "sum", "mean", "var" }) do
        it(("%s over dims on %s %s"):format(kind, lname, dt), function()
          local x = layout(cube(dt))
          for _, dims in ipairs(DIMSETS) do
            for _, keep in ipairs({ false, true }) do
              local y
              if #dims == 0 then
                y = x[kind](x)
              elseif #dims == 1 then
                y = x[kind](x, dims[1], keep)
              else
                y = x[kind](x, dims, keep)
              end
              local label = kind .. " dims {" .. table.concat(dims, ",") .. "} keep " .. tostring(keep)
              assert.are.same(reduced_shape({ 2, 3, 4 }, dims, keep and #dims > 0), y:shape(), label)
              assert.are.equal(dt, y:dtype())
              assert_close(y:values(), (ref_reduce(x, dims, kind)), TOL[dt] * 10, label)
            end
          end
        end)
      end

      it(("max and min with 1-based indices on %s %s"):format(lname, dt), function()
        local x = layout(cube(dt))
        for _, kind in ipairs({ "max", "min" }) do
          local all = x[kind](x)
          assert.are.same({}, all:shape())
          assert.are.equal((ref_reduce(x, {}, kind))[1], all:item())
          if lname ~= "expanded" then
            assert.are.equal(kind == "max" and 11.5 / 4 or -11.5 / 4, all:item())
          end
          for _, d in ipairs({ 1, 2, 3, -1, -2 }) do
            for _, keep in ipairs({ false, true }) do
              local v, i = x[kind](x, d, keep)
              local wv, wi = ref_reduce(x, { d }, kind)
              local shp = reduced_shape({ 2, 3, 4 }, { d }, keep)
              assert.are.same(shp, v:shape())
              assert.are.same(shp, i:shape())
              assert_close(v:values(), wv, 0, kind .. " " .. d)
              assert.are.same(wi, i:values(), kind .. " indices " .. d)
            end
          end
        end
      end)

      it(("logsumexp on %s %s"):format(lname, dt), function()
        local x = layout(cube(dt))
        for _, d in ipairs({ 1, 2, 3, -1 }) do
          local y = x:logsumexp(d)
          assert.are.same(reduced_shape({ 2, 3, 4 }, { d }, false), y:shape())
          assert_close(y:values(), (ref_reduce(x, { d }, "lse")), TOL[dt] * 10, "dim " .. d)
          assert.are.same(reduced_shape({ 2, 3, 4 }, { d }, true), x:logsumexp(d, true):shape())
        end
      end)
    end
  end

  it("hand-computed small cases", function()
    local m = sc.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, { dtype = "float64" })
    assert.are.equal(21, m:sum():item())
    assert.are.same({ 5, 7, 9 }, m:sum(1):totable())
    assert.are.same({ { 6 }, { 15 } }, m:sum(2, true):totable())
    assert.are.same({ 2, 5 }, m:mean(-1):totable())
    assert.are.equal(3.5, m:var():item())
    assert.are.equal(17.5 / 6, m:var(nil, false, false):item()) -- population variance
    assert.are.same({ 2.25, 2.25, 2.25 }, m:var(1, false, false):totable())
    assert.are.same({ { 1 }, { 1 } }, m:var(2, true):totable())
    assert.are.same({ 4.5, 4.5, 4.5 }, m:var(1):totable())
    local v, i = m:max(2)
    assert.are.same({ 3, 6 }, v:totable())
    assert.are.same({ 3, 3 }, i:totable())
    v, i = m:min(1)
    assert.are.same({ 1, 2, 3 }, v:totable())
    assert.are.same({ 1, 1, 1 }, i:totable())
    assert_close(m:logsumexp(2):values(),
      { math.log(math.exp(1) + math.exp(2) + math.exp(3)),
        math.log(math.exp(4) + math.exp(5) + math.exp(6)) }, 1e-14)
  end)

  it("logsumexp is stable for large inputs and all -inf rows", function()
    local x = sc.tensor({ { 1000, 1000 }, { -math.huge, -math.huge } }, { dtype = "float64" })
    local y = x:logsumexp(2):values()
    assert_close(y[1], 1000 + math.log(2), 1e-14)
    assert.are.equal(-math.huge, y[2])
  end)

  it("sum of an empty dim is 0; max of an empty tensor is an error", function()
    assert.are.same({ 0, 0, 0 }, sc.zeros(0, 3):sum(1):totable())
    assert.has_error(function() sc.zeros(0):max() end)
  end)

  -- runs of >= 64 trailing reduced elements are summed in place (reduce.c,
  -- sum_runs), e.g. a bias gradient summed over N, H and W
  it("sums trailing runs in place, with kept and reduced dims before them", function()
    for _, dt in ipairs(DTYPES) do
      local x = ramp(dt, { 3, 4, 5, 16 }, 0.37)
      for _, dims in ipairs({ { 1, 3, 4 }, { 3, 4 }, { 2, 3, 4 }, { 1, 2, 3, 4 }, { 1, 4 } }) do
        local want = ref_reduce(x, dims, "sum")
        assert_close(x:sum(dims):values(), want, dt == "float64" and 1e-12 or 1e-6)
        assert.are.same(reduced_shape({ 3, 4, 5, 16 }, dims, true), x:sum(dims, true):shape())
      end
    end
  end)

  it("gives the same bits at 1 and 2 threads for run sums and full sums", function()
    local saved = sc.get_num_threads()
    local x = sc.randn(16, 24, 30, 30, { generator = sc.Generator(5) })
    local got = {}
    for _, t in ipairs({ 1, 2 }) do
      sc.set_num_threads(t)
      got[t] = { x:sum({ 1, 3, 4 }), x:sum(), x:sum({ 3, 4 }) }
    end
    sc.set_num_threads(saved)
    for k = 1, 3 do assert.are.equal(0, (got[1][k] - got[2][k]):abs():max():item()) end
    local ref = x:double():sum({ 1, 3, 4 })
    assert.is_true((got[1][1]:double() - ref):abs():max():item() < 1e-3)
  end)

  it("sums a long float32 run accurately (double accumulation)", function()
    local n = 1000000
    local x = sc.full({ n }, 0.1)
    local v = string.unpack("f", string.pack("f", 0.1))
    assert_close(x:sum():item(), n * v, 1e-7)
    assert_close(x:mean():item(), v, 1e-7)
  end)
end)

-- Lua reference products on nested tables.
local function mm(a, b)
  local out = {}
  for i = 1, #a do
    out[i] = {}
    for j = 1, #b[1] do
      local s = 0
      for k = 1, #b do s = s + a[i][k] * b[k][j] end
      out[i][j] = s
    end
  end
  return out
end


describe("matmul", function()
  for _, dt in ipairs(DTYPES) do
    local tol = TOL[dt] * 10
    it("1-D . 1-D is a dot product (" .. dt .. ")", function()
      local y = sc.matmul(sc.tensor({ 1, 2, 3 }, { dtype = dt }), sc.tensor({ 4, -5, 6 }, { dtype = dt }))
      assert.are.same({}, y:shape())
      assert.are.equal(12, y:item())
    end)

    it("1-D . 2-D and 2-D . 1-D (" .. dt .. ")", function()
      local m = sc.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, { dtype = dt })
      local y1 = sc.matmul(sc.tensor({ 1, -1 }, { dtype = dt }), m)
      assert.are.same({ -3, -3, -3 }, y1:totable())
      local y2 = sc.matmul(m, sc.tensor({ 1, 0, 2 }, { dtype = dt }))
      assert.are.same({ 7, 16 }, y2:totable())
      -- through transposed matrices
      assert.are.same({ 1 - 2 * 2 + 0, 4 - 2 * 5 + 0 },
        sc.matmul(m:t():t(), sc.tensor({ 1, -2, 0 }, { dtype = dt })):totable())
      assert.are.same({ 5, 7, 9 }, sc.matmul(m:t(), sc.tensor({ 1, 1 }, { dtype = dt })):totable())
      assert.are.same({ 5, 7, 9 }, m:t():matmul(sc.tensor({ 1, 1 }, { dtype = dt })):totable())
    end)

    it("2-D . 2-D in every transposition (" .. dt .. ")", function()
      local a = ramp(dt, { 3, 4 })
      local b = ramp(dt, { 4, 5 }, 0.5)
      local want = mm(a:totable(), b:totable())
      local at = a:t():contiguous():t() -- same values, transposed storage
      local bt = b:t():contiguous():t()
      for _, pair in ipairs({ { a, b }, { at, b }, { a, bt }, { at, bt },
        { H.strided(a), b }, { a, H.strided(b) } }) do
        local y = sc.matmul(pair[1], pair[2])
        assert.are.same({ 3, 5 }, y:shape())
        assert_close(y:totable(), want, tol)
      end
      -- a^T b with a stored [4,3]
      local c = ramp(dt, { 4, 3 })
      assert_close(sc.matmul(c:t(), b):totable(), mm(c:t():totable(), b:totable()), tol)
      assert_close(c:t():matmul(b):totable(), mm(c:t():totable(), b:totable()), tol)
    end)

    it("batched with broadcasting (" .. dt .. ")", function()
      local a = ramp(dt, { 2, 1, 3, 4 })
      local b = ramp(dt, { 5, 4, 2 }, 0.5)
      local y = sc.matmul(a, b)
      assert.are.same({ 2, 5, 3, 2 }, y:shape())
      local at, bt, yt = a:totable(), b:totable(), y:totable()
      for i = 1, 2 do
        for j = 1, 5 do
          assert_close(yt[i][j], mm(at[i][1], bt[j]), tol)
        end
      end
      -- batched x matrix, batched x vector, vector x batched
      local m = ramp(dt, { 4, 2 })
      local y2 = sc.matmul(a:select(2, 1), m)
      assert.are.same({ 2, 3, 2 }, y2:shape())
      for i = 1, 2 do assert_close(y2:totable()[i], mm(at[i][1], m:totable()), tol) end
      local v = sc.tensor({ 1, -1, 2, 0.5 }, { dtype = dt })
      local y3 = sc.matmul(a:select(2, 1), v)
      assert.are.same({ 2, 3 }, y3:shape())
      local w = {}
      for i = 1, 2 do
        w[i] = {}
        for r = 1, 3 do
          local s = 0
          for k = 1, 4 do s = s + at[i][1][r][k] * ({ 1, -1, 2, 0.5 })[k] end
          w[i][r] = s
        end
      end
      assert_close(y3:totable(), w, tol)
      local y4 = sc.matmul(sc.tensor({ 1, 2, 3 }, { dtype = dt }), a:select(2, 1))
      assert.are.same({ 2, 4 }, y4:shape())
      for i = 1, 2 do assert_close(y4:totable()[i], mm({ { 1, 2, 3 } }, at[i][1])[1], tol) end
      -- transposed batch members
      local bb = ramp(dt, { 2, 2, 4 }):transpose(2, 3) -- [2,4,2], strided
      local y5 = sc.matmul(a:select(2, 1), bb)
      for i = 1, 2 do
        assert_close(y5:totable()[i], mm(at[i][1], bb:totable()[i]), tol)
      end
    end)

    it("bmm (" .. dt .. ")", function()
      local a = ramp(dt, { 3, 2, 4 })
      local b = ramp(dt, { 3, 4, 5 }, 0.5)
      local y = sc.bmm(a, b)
      assert.are.same({ 3, 2, 5 }, y:shape())
      for i = 1, 3 do assert_close(y:totable()[i], mm(a:totable()[i], b:totable()[i]), tol) end
      local yt = sc.bmm(a, b:transpose(2, 3):contiguous():transpose(2, 3))
      assert_close(yt:totable(), y:totable(), tol)
      assert.has_error(function() sc.bmm(a, ramp(dt, { 2, 4, 5 })) end)
      assert.has_error(function() sc.bmm(a:select(1, 1), b:select(1, 1)) end)
    end)
  end

  it("every layout of thin and square operands (gemm flags, copies)", function()
    local layouts = {
      function(x) return x end,
      function(x) return x:t():contiguous():t() end,
      function(x) return H.strided(x) end,
      function(x) return H.strided(x:t():contiguous()):t() end,
      function(x) -- rows expanded from one (stride 0) when all rows are equal
        return x:narrow(1, 1, 1):expand(x:size(1), x:size(2))
      end,
    }
    for _, dt in ipairs(DTYPES) do
      local sizes = { { 1, 1, 1 }, { 3, 1, 4 }, { 1, 4, 1 }, { 1, 3, 5 }, { 5, 3, 1 }, { 4, 4, 4 }, { 2, 5, 3 } }
      for _, nkm in ipairs(sizes) do
        local a0, b0 = ramp(dt, { nkm[1], nkm[2] }), ramp(dt, { nkm[2], nkm[3] }, 0.5)
        for ia, la in ipairs(layouts) do
          for ib, lb in ipairs(layouts) do
            local a, b = la(a0), lb(b0)
            local want = mm(a:totable(), b:totable())
            local y = sc.matmul(a, b)
            assert_close(y:totable(), want, TOL[dt] * 10,
              ("%s [%d,%d]x[%d,%d] layouts %d,%d"):format(dt, nkm[1], nkm[2], nkm[2], nkm[3], ia, ib))
          end
        end
      end
    end
  end)

  it("empty outer sizes give empty results", function()
    assert.are.same({ 0, 3 }, sc.matmul(sc.zeros(0, 2), sc.zeros(2, 3)):shape())
    assert.are.same({ 2, 0 }, sc.matmul(sc.zeros(2, 2), sc.zeros(2, 0)):shape())
    assert.are.same({ 0, 2, 3 }, sc.matmul(sc.zeros(0, 2, 4), sc.zeros(4, 3)):shape())
  end)

  it("zero inner size gives zeros", function()
    local y = sc.matmul(sc.zeros(2, 0), sc.zeros(0, 3))
    assert.are.same({ { 0, 0, 0 }, { 0, 0, 0 } }, y:totable())
  end)

  it("mismatched dtypes are an error", function()
    assert.has_error(function() sc.matmul(sc.zeros(2, 2), sc.zeros(2, 2, { dtype = "float64" })) end)
  end)
end)

describe("linear", function()
  for _, dt in ipairs(DTYPES) do
    it("is x W^T + b, W stored [out, in] (" .. dt .. ")", function()
      local tol = TOL[dt] * 10
      local x = ramp(dt, { 3, 4 })
      local w = ramp(dt, { 2, 4 }, 0.5)
      local b = sc.tensor({ 1, -2 }, { dtype = dt })
      local want = mm(x:totable(), w:t():totable())
      for i = 1, 3 do
        want[i][1] = want[i][1] + 1
        want[i][2] = want[i][2] - 2
      end
      assert_close(sc.linear(x, w, b):totable(), want, tol)
      assert_close(sc.linear(H.transposed(x), H.transposed(w), H.strided(b)):totable(), want, tol)
      assert_close(sc.linear(x, w):totable(), mm(x:totable(), w:t():totable()), tol)
      -- a vector and a batch go through the same formula
      assert_close(sc.linear(x[2], w, b):totable(), want[2], tol)
      local xb = sc.stack({ x, x }, 1)
      assert_close(sc.linear(xb, w, b):totable(), { want, want }, tol)
    end)
  end
end)

describe("image ops", function()
  for _, dt in ipairs(DTYPES) do
    it("im2col, col2im, sum_pool and upsample_nearest by hand (" .. dt .. ")", function()
      local x = sc.arange(16, { dtype = dt }):view(1, 1, 4, 4) -- x[i][j] = 4 i + j
      local c = sc.core.im2col(x, { kernel = 2 })
      assert.are.same({ 1, 4, 9 }, c:shape())
      -- row (ki, kj), column (oi, oj) holds x[oi + ki][oj + kj]
      assert.are.same({ 0, 1, 2, 4, 5, 6, 8, 9, 10 }, c:totable()[1][1])
      assert.are.same({ 5, 6, 7, 9, 10, 11, 13, 14, 15 }, c:totable()[1][4])
      -- col2im of the columns counts how many windows hold each pixel
      local back = sc.core.col2im(c, { 4, 4 }, { kernel = 2 })
      local want = {}
      for i = 0, 3 do
        want[i + 1] = {}
        for j = 0, 3 do
          local n = (i > 0 and i < 3 and 2 or 1) * (j > 0 and j < 3 and 2 or 1)
          want[i + 1][j + 1] = n * (4 * i + j)
        end
      end
      assert.are.same(want, back:totable()[1][1])
      -- padding adds zero rows and columns
      local p = sc.core.im2col(x, { kernel = 3, padding = 1 })
      assert.are.same({ 1, 9, 16 }, p:shape())
      assert.are.same({ 0, 0, 0, 0, 0, 0, 1, 2, 0, 4, 5, 6, 0, 8, 9, 10 }, p:totable()[1][1])
      assert.are.same({ { 10, 18 }, { 42, 50 } }, sc.core.sum_pool(x, 2):totable()[1][1])
      local u = sc.core.upsample_nearest(sc.tensor({ { { { 1, 2 }, { 3, 4 } } } }, { dtype = dt }), 2)
      assert.are.same({ { 1, 1, 2, 2 }, { 1, 1, 2, 2 }, { 3, 3, 4, 4 }, { 3, 3, 4, 4 } }, u:totable()[1][1])
      -- on a transposed image
      assert.are.same(sc.core.sum_pool(x:transpose(3, 4):contiguous(), 2):totable(),
        sc.core.sum_pool(x:transpose(3, 4), 2):totable())
    end)
  end
end)

describe("where, clamp", function()
  for _, dt in ipairs(DTYPES) do
    local o = { dtype = dt }
    it("where selects elementwise with broadcasting (" .. dt .. ")", function()
      local c = sc.tensor({ { 1, 0, 1 }, { 0, 0, 1 } }, o)
      local a = sc.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, o)
      local b = sc.tensor({ { -1, -2, -3 }, { -4, -5, -6 } }, o)
      assert.are.same({ { 1, -2, 3 }, { -4, -5, 6 } }, sc.where(c, a, b):totable())
      assert.are.same({ { 1, 0, 3 }, { 0, 0, 6 } }, sc.where(c, a, 0):totable())
      assert.are.same({ { 9, -2, 9 }, { -4, -5, 9 } }, sc.where(c, 9, b):totable())
      -- broadcast condition column, broadcast branches, transposed branch
      local col = sc.tensor({ { 1 }, { 0 } }, o)
      assert.are.same({ { 1, 2, 3 }, { -1, -2, -3 } },
        sc.where(col, a, sc.tensor({ -1, -2, -3 }, o)):totable())
      local at = sc.tensor({ { 1, 4 }, { 2, 5 }, { 3, 6 } }, o):t()
      assert.are.same({ { 1, -2, 3 }, { -4, -5, 6 } }, sc.where(c, at, b):totable())
      assert.are.same({ { 1, -2, 3 }, { -4, -5, 6 } }, sc.where(a:gt(b):mul(c), a, b):totable())
    end)

    it("clamp bounds values, either bound optional (" .. dt .. ")", function()
      local x = sc.tensor(MIXED, o):t()
      local v = x:values()
      assert_close(sc.clamp(x, -1, 1):values(), map(v, function(a) return math.min(1, math.max(-1, a)) end), 0)
      assert_close(x:clamp(0):values(), map(v, function(a) return math.max(0, a) end), 0)
      assert_close(x:clamp(nil, 0.5):values(), map(v, function(a) return math.min(0.5, a) end), 0)
      assert.are.same({ 4, 3 }, sc.clamp(x, -1, 1):shape())
      assert.has_error(function() sc.clamp(x, 1, -1) end)
    end)
  end
end)

-- max() and min() of a whole tensor take a vectorised scan (16 running
-- extremes and a NaN flag): against Lua's own scan, for lengths around the
-- 16-lane blocks, both dtypes, with the extreme in the tail, a NaN in a
-- block or in the tail, and infinities.
describe("max and min of a whole tensor", function()
  for _, dt in ipairs({ "float32", "float64" }) do
    for _, n in ipairs({ 1, 15, 16, 17, 33, 100, 1000 }) do
      it(("%d elements (%s)"):format(n, dt), function()
        local g = sc.Generator(n)
        local t = sc.randn(n, { dtype = dt, generator = g })
        local v = t:values()
        local hi, lo = -math.huge, math.huge
        for _, a in ipairs(v) do hi, lo = math.max(hi, a), math.min(lo, a) end
        assert.are.equal(hi, t:max():item())
        assert.are.equal(lo, t:min():item())
        -- the extreme at the last place, then a NaN at the first or last place
        v[n] = 2.0 ^ 90
        assert.are.equal(2.0 ^ 90, sc.tensor(v, { dtype = dt }):max():item())
        v[n] = -math.huge
        assert.are.equal(-math.huge, sc.tensor(v, { dtype = dt }):min():item())
        for _, at in ipairs({ 1, n }) do
          local w = { table.unpack(v) }
          w[at] = 0 / 0
          local mx, mn = sc.tensor(w, { dtype = dt }):max():item(), sc.tensor(w, { dtype = dt }):min():item()
          assert.is_true(mx ~= mx and mn ~= mn, ("NaN at %d"):format(at))
        end
        -- a strided view: the same values as its contiguous copy
        local m = sc.randn(n, 3, { dtype = dt, generator = g }):t()
        assert.are.equal(m:contiguous():max():item(), m:max():item())
      end)
    end
  end
end)

-- The Bernoulli decoder term per row, in one op (the VAE's log-likelihood):
-- against x log sigmoid(l) + (1 - x) log sigmoid(-l) summed in Lua doubles,
-- with logits far out on both sides (no overflow), in both dtypes.
describe("bernoulli_log_prob", function()
  for _, dt in ipairs({ "float64", "float32" }) do
    it("matches the log-likelihood summed per row (" .. dt .. ")", function()
      local g = sc.Generator(3)
      local l = sc.randn(7, 37, { dtype = dt, generator = g }) * 4
      l = sc.cat({ l, sc.tensor({ { -120, 95 }, { 30, -30 }, { 0, 1 }, { 2, 3 }, { -1, 1 }, { 5, 5 }, { 0, 0 } },
        { dtype = dt }) }, 2)
      local x = sc.rand(7, 39, { dtype = dt, generator = g })
      local got = sc.core.bernoulli_log_prob(l, x):values()
      local lv, xv = l:totable(), x:totable()
      local function log_sigmoid(v) return v >= 0 and -math.log(1 + math.exp(-v)) or v - math.log(1 + math.exp(v)) end
      for i = 1, 7 do
        local want = 0
        for j = 1, 39 do want = want + xv[i][j] * log_sigmoid(lv[i][j]) + (1 - xv[i][j]) * log_sigmoid(-lv[i][j]) end
        local tol = dt == "float64" and 1e-10 or 1e-4
        assert.is_true(math.abs(got[i] - want) < tol * (1 + math.abs(want)), ("row %d: %g vs %g"):format(i, got[i], want))
      end
    end)
  end
end)
