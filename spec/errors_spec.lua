-- Bad arguments: every public function of the module and every tensor
-- method, called with wrong types, nil, wrong shapes, out-of-range dims and
-- indices and mismatched dtypes, must raise a Lua error that names the
-- function, and never crash or corrupt state.
--
-- Two sweeps: a generic one over every function and method with junk
-- argument lists (run in a child interpreter, so a crash is reported as a
-- failure instead of killing the test run), and a specific one with the
-- bad calls of each function, which must all fail.  A public function or
-- method without specific cases fails the spec.
local sc = require "scorch"
local H = require "helpers"

local M = getmetatable(sc.zeros(1)).__methods

-- ---------------------------------------------------------------------------
-- Generic sweep, in a child process.
local SWEEP = [==[
local sc = require "scorch"
local M = getmetatable(sc.zeros(1)).__methods
local function closed()
  local t = sc.zeros(2, 3)
  getmetatable(t).__close(t)
  return t
end
local env = {
  sc = sc, M = M, T = sc.zeros(2, 3), T64 = sc.zeros(2, 3, { dtype = "float64" }),
  S = sc.zeros(3), Z0 = sc.zeros({}), E = sc.zeros(0, 3), C = closed(),
  R = sc.zeros(2, 3):requires_grad(true), print = print, math = math,
  co = coroutine.create(function() end),
}
local JUNK = { "nil", "true", "'junk'", "{}", "print", "co", "T", "T64", "S", "Z0", "E", "C",
  "R", "0", "-1", "2^60", "-1e10", "2^62", "-2^63", "0.5", "math.huge", "0/0", "{1,2}", "{{}}",
  "{'a'}", "{T}", "{T, 'x'}", "{-1}", "{2^40, 2^40}" }
local lists = { {} }
for _, a in ipairs(JUNK) do lists[#lists + 1] = { a } end
for _, a in ipairs({ "T", "T64", "Z0", "E", "C", "S", "R" }) do
  for _, b in ipairs(JUNK) do lists[#lists + 1] = { a, b } end
end
for _, a in ipairs({ "T", "S" }) do
  for _, b in ipairs({ "T", "0", "1", "-1", "5", "'x'", "{}", "T64", "S", "nil", "{1}" }) do
    for _, c in ipairs({ "T", "0", "1", "-1", "5", "'x'", "{}", "T64", "nil", "2^60", "{2}" }) do
      lists[#lists + 1] = { a, b, c }
      lists[#lists + 1] = { a, b, c, c }
    end
  end
end
local names = {}
for k, v in pairs(sc) do
  if type(v) == "function" and k ~= "no_grad" then names[#names + 1] = { "sc", k } end
end
for k in pairs(M) do names[#names + 1] = { "M", k } end
table.sort(names, function(a, b) return a[1] .. a[2] < b[1] .. b[2] end)
local calls, errors = 0, 0
for _, nm in ipairs(names) do
  for _, args in ipairs(lists) do
    local src = ("return %s.%s(%s)"):format(nm[1], nm[2], table.concat(args, ", "))
    local fn = assert(load(src, "=sweep", "t", env))
    calls = calls + 1
    local ok, msg = pcall(fn)
    if not ok then
      errors = errors + 1
      if not tostring(msg):find(nm[2], 1, true) then
        print("UNNAMED", src, (tostring(msg):gsub("\n", " ")))
      end
    end
  end
end
-- operators and fields
for _, src in ipairs({ "return T + 'x'", "return 'x' * T", "return T / {}", "return T ^ T64",
  "return -C", "return #C", "return C + 1", "return T[0]", "return T[9]", "return Z0[1]",
  "T.grad = 'x'", "T.grad = S", "T.foo = 1", "C.grad = T", "return tostring(C)" }) do
  calls = calls + 1
  local ok = pcall(assert(load(src, "=sweep", "t", env)))
  if not ok then errors = errors + 1 end
end
-- the state is intact
local a = sc.tensor({ { 1, 2 }, { 3, 4 } }, { dtype = "float64" }):requires_grad(true)
sc.matmul(a, a):sum():backward()
assert(sc.is_grad_enabled(), "grad mode left off")
assert(a.grad:sum():item() == 40, "wrong gradient after the sweep")
print("DONE", calls, errors)
]==]

describe("generic bad-argument sweep", function()
  it("never crashes, and every error names its function", function()
    local out, ok = H.run_lua(SWEEP)
    assert(ok, "the sweep process failed or crashed:\n" .. out:sub(-3000))
    local calls, errors = out:match("DONE\t(%d+)\t(%d+)")
    assert(calls, "the sweep did not finish:\n" .. out:sub(-3000))
    local unnamed = {}
    for line in out:gmatch("UNNAMED[^\n]*") do unnamed[#unnamed + 1] = line end
    assert(#unnamed == 0, #unnamed .. " errors do not name their function:\n"
      .. table.concat(unnamed, "\n", 1, math.min(#unnamed, 40)))
    assert.is_true(tonumber(calls) > 50000)
    assert.is_true(tonumber(errors) > tonumber(calls) / 3)
  end)
end)

-- ---------------------------------------------------------------------------
-- Specific bad calls.  Each entry returns a list of argument lists (built
-- with P(...) so nils survive); every call must fail, naming the function
-- (or `names[fn]`) and any extra fragments given as `want`.
local function P(...) return table.pack(...) end
local function W(want, ...)
  local p = table.pack(...)
  p.want = want
  return p
end

local function closed()
  local t = sc.zeros(2, 3)
  getmetatable(t).__close(t)
  return t
end
local function T() return sc.zeros(2, 3) end
local function T64() return sc.zeros(2, 3, { dtype = "float64" }) end
local function V4() return sc.zeros(4) end
local function R() return sc.zeros(2, 3):requires_grad(true) end
local TMP = os.tmpname()

-- Methods and functions whose only argument is the tensor (or nothing):
-- their bad calls are the default wrong-self list.
local SELF_ONLY = {}
for _, n in ipairs({ "abs", "clone", "contiguous", "cos", "detach", "dim", "double", "dtype",
  "erfc", "exp", "expm1", "float", "grad_fn", "is_contiguous", "is_leaf", "log", "log1p", "logsigmoid", "neg",
  "numel", "relu", "rsqrt", "shape", "sigmoid", "sign", "silu", "sin", "softplus", "sqrt",
  "square", "stride", "tanh", "totable", "values", "zero_", "zero_grad" }) do
  SELF_ONLY[n] = true
end
-- Functions that take no argument or accept any value.
local ACCEPTS_ANYTHING = { bytes_in_use = true, get_num_threads = true, is_grad_enabled = true,
  is_tensor = true, op_names = true, set_grad_enabled = true, time = true, _op_table = true,
  pool_stats = true, get_matmul_precision = true, cpu_has_bf16 = true }
-- The fused optimiser kernels name the update they perform.
local NAMES = { adam_step = "adam", sgd_step = "sgd" }

local function binary_bad()
  return { P(T(), "x"), P(T(), nil), P(T(), {}), P(T(), V4()), P(T(), T64()), P(closed(), T()),
    P(T(), closed()) }
end

local METHOD_BAD = {
  add_ = function() return { P(T(), "x"), P(T(), V4()), P(T(), T64()), P(R(), T()), P(R(), 1), P(T(), nil) } end,
  backward = function()
    local x = sc.tensor({ 1, 2 }, { dtype = "float64" }):requires_grad(true)
    local y = (x * x):sum()
    y:backward()
    return { P(T()), P((x * 2)), P(x * 2, sc.zeros(3, { dtype = "float64" })), P(x:sum(), "x"),
      P(x * 2, sc.zeros(2)), P(x, sc.zeros(2)),
      W({ "retain_graph" }, y) }
  end,
  clamp = function() return { P(T(), 1, -1), P(T(), "x"), P(T(), 0, "x"), P(T(), {}) } end,
  leaky_relu = function() return { P(T(), "x"), P(T(), 0 / 0), P(T(), {}), P(closed(), 0.1) } end,
  copy_ = function() return { P(T(), "x"), P(T(), V4()), P(T(), nil), P(R(), T()), P(T(), closed()) } end,
  expand = function() return { P(T(), 4), P(T(), 3, 3), P(T(), "x"), P(T(), -2, 3), P(T(), 2, -2) } end,
  expand_as = function() return { P(T(), V4()), P(T(), "x"), P(T(), sc.zeros({})), P(T()) } end,
  fill_ = function() return { P(T(), "x"), P(T(), nil), P(R(), 1), P(T(), {}) } end,
  index_select = function()
    return { P(T(), 3, { 1 }), P(T(), 1, { 3 }), P(T(), 1, { 0 }), P(T(), 1, "x"), P(T(), 1, { 1.5 }),
      P(T(), 1, { "a" }), P(T(), 1, sc.zeros(2, 2)), P(T(), 0, { 1 }), P(T(), 1), P(T(), 1, { -1 }) }
  end,
  item = function() return { P(T()), P(sc.zeros(0)) } end,
  logsumexp = function() return { P(T(), 3), P(T(), 0), P(T(), "x"), P(T()), P(sc.zeros(3, 0), 2) } end,
  matmul = function() return { P(T(), T()), P(T(), T64()), P(T(), "x"), P(sc.zeros({}), T()), P(T()) } end,
  max = function() return { P(T(), 3), P(T(), 0), P(T(), "x"), P(sc.zeros(0)), P(sc.zeros(2, 0), 2) } end,
  min = function() return { P(T(), 3), P(T(), 0), P(T(), "x"), P(sc.zeros(0)), P(sc.zeros(2, 0), 2) } end,
  mean = function() return { P(T(), 3), P(T(), -3), P(T(), { 1, 5 }), P(T(), "x"), P(T(), 0) } end,
  mul_ = function() return { P(T(), "x"), P(T(), nil), P(R(), 2), P(T(), T()) } end,
  narrow = function()
    return { P(T(), 3, 1, 1), P(T(), 1, 0, 1), P(T(), 1, 2, 2), P(T(), 1, 1, -1), P(T(), 1, "x", 1),
      P(T(), 1, 1) }
  end,
  normal_ = function() return { P(T(), "x"), P(R()), P(T(), 0, 1, { generator = "x" }) } end,
  permute = function() return { P(T(), 1, 1), P(T(), 1), P(T(), 1, 3), P(T(), "x", 1), P(T(), { 1, 2, 3 }) } end,
  requires_grad = function() return { P(R() * 2, false) } end,
  reshape = function() return { P(T(), 4), P(T(), -1, -1), P(T(), "x"), P(T(), 5, -1), P(T(), 2, 3, "x") } end,
  select = function() return { P(T(), 3, 1), P(T(), 1, 3), P(T(), 1, 0), P(T(), 1, "x"), P(sc.zeros({}), 1, 1) } end,
  size = function() return { P(T(), 3), P(T(), 0), P(T(), "x") } end,
  squeeze = function() return { P(T(), 3), P(T(), "x"), P(T(), -3) } end,
  sum = function() return { P(T(), 3), P(T(), -3), P(T(), { 1, 5 }), P(T(), "x"), P(T(), 0) } end,
  t = function() return { P(sc.zeros(2, 3, 4)), P(sc.zeros(3)) } end,
  to = function() return { P(T(), "float16"), P(T(), { dtype = "int" }), P(T(), { dtype = 5 }) } end,
  transpose = function() return { P(T(), 1, 3), P(T(), 0, 1), P(T(), "x", 1), P(T(), 1) } end,
  uniform_ = function() return { P(T(), "x"), P(R()), P(T(), 0, 1, { generator = "x" }) } end,
  unsqueeze = function() return { P(T(), 4), P(T(), -4), P(T(), "x"), P(sc.zeros(1, 1, 1, 1, 1, 1, 1, 1), 1) } end,
  var = function() return { P(T(), 3), P(T(), -3), P(T(), { 1, 5 }), P(T(), "x") } end,
  view = function()
    return { P(T(), 4), P(T(), -1, -1), P(T(), "x"), P(T():t(), 6), P(T(), 5, -1), P(T(), 2, "x") }
  end,
}
for _, n in ipairs({ "add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "gt", "lt", "ge", "le" }) do
  METHOD_BAD[n] = binary_bad
end

local function shape_bad(fn)
  return function()
    local extra = fn == "full" and 1 or nil
    local function S(...) -- a shape then the fill value for full
      if fn == "full" then return P({ ... }, 1) end
      return P(...)
    end
    local list = { S(-1), S(2.5), S(2 ^ 40, 2 ^ 40, 2 ^ 40), P({ 1, 1, 1, 1, 1, 1, 1, 1, 1 }, extra) }
    if fn ~= "full" then
      list[#list + 1] = P("x")
      list[#list + 1] = P(2, "x")
      list[#list + 1] = P({ 2, "x" })
      list[#list + 1] = P(2, { dtype = "float16" })
    else
      list[#list + 1] = P({ 2 }, "x")
      list[#list + 1] = P({ 2 })
      list[#list + 1] = P({ 2 }, 1, { dtype = "float16" })
    end
    if fn == "rand" or fn == "randn" then list[#list + 1] = P(2, { generator = "x" }) end
    return list
  end
end

local G = sc.Generator(1)
local FUNCTION_BAD = {
  Generator = function() return { P("x"), P({}), P(1.5) } end,
  manual_seed = function() return { P(nil), P("x"), P(1.5), P({}) } end,
  get_rng_state = function() return { P("x"), P(T()), P(5) } end,
  set_rng_state = function()
    return { P(nil), P("x"), P({ "a", "b" }), P({ 5 }), P(G, nil), P(G, { 1 }), P(5, { 1, 2 }) }
  end,
  adam_step = function()
    return { P(nil), P(T(), T(), T(), T(), nil), P(T(), V4(), T(), T(), {}), P(T(), T64(), T(), T(), {}),
      P(T():t(), T():t(), T():t(), T():t(), {}), P(T(), T(), T(), T(), { step = 0 }), P(T(), T(), T(), "x", {}) }
  end,
  sgd_step = function()
    return { P(nil), P(T(), T(), nil, nil), P(T(), V4(), nil, {}), P(T(), T64(), nil, {}), P(T(), T(), V4(), {}),
      P(T(), T(), "x", {}) }
  end,
  arange = function()
    return { P("x"), P(0, 1, 0), P(0, math.huge), P(0 / 0), P(0, 1e300, 1e-300), P(0, 2, { dtype = "x" }) }
  end,
  linspace = function()
    return { P(0, 1, -1), P(0, 1, "x"), P("x", 1, 2), P(0, 1, 1.5), P(0, 1, 2, { dtype = "int" }), P(0, 1, 2 ^ 62) }
  end,
  full = shape_bad("full"),
  randint = function()
    return { P(0, 0, { 2 }), P("x", 1, { 2 }), P(0, 1, { -1 }), P(0, 1.5, { 2 }), P(0, 3, { 2 }, { generator = "x" }),
      P(0, 3, "x"), P(5, 1, { 2 }) }
  end,
  tensor = function()
    local deep = 1
    for _ = 1, 9 do deep = { deep } end
    return { P(nil), P("x"), P({ 1, "a" }), P({ { 1, 2 }, { 3 } }), P({ 1 }, { dtype = "x" }), P(deep),
      P({ { 1 }, 2 }), P({ 1, { 2 } }), P(true), P(closed()) }
  end,
  cat = function()
    return { P(nil), P({}), P({ T(), "x" }), P({ T(), V4() }), P({ T(), T64() }), P({ T(), T() }, 3),
      P({ T() }, 0), P(T()), P({ sc.zeros({}) }), P({ closed() }) }
  end,
  stack = function()
    return { P({ T(), V4() }), P({ T(), T64() }), P({ T(), T() }, 4), P({}), P(nil), P({ 1 }), P(T()) }
  end,
  matmul = function()
    return { W({ "[3,4]", "[5,6]" }, sc.zeros(3, 4), sc.zeros(5, 6)), P(T(), T64()), P(sc.zeros({}), T()),
      P(T(), nil), P(V4(), sc.zeros(3)), P(sc.zeros(2, 3, 4), sc.zeros(3, 5, 2)) }
  end,
  linear = function()
    return { P(T(), V4()), P(T(), sc.zeros(2, 4)), P(T(), sc.zeros(5, 3), V4()),
      P(T(), sc.zeros(5, 3, { dtype = "float64" })),
      P(nil, T()), P(T(), sc.zeros(5, 3), "x"), P(sc.zeros({}), sc.zeros(5, 3)), P(T(), sc.zeros(5, 3), sc.zeros(5, 1)),
      P(T(), sc.zeros(5, 3), sc.zeros(5, { dtype = "float64" })) }
  end,
  bmm = function()
    return { P(T(), T()), P(sc.zeros(2, 2, 3), sc.zeros(3, 3, 4)), P(sc.zeros(2, 2, 3), sc.zeros(2, 4, 4)),
      P(sc.zeros(2, 2, 3), sc.zeros(2, 3, 4, { dtype = "float64" })), P(nil, T()) }
  end,
  where = function()
    return { P(T(), T(), V4()), P(T(), T(), T64()), P(T64(), T(), T()), P(nil, T(), T()), P(T(), "x", T()),
      P(T(), T()) }
  end,
  clamp = function() return { P(nil), P(T(), 2, 1), P(T(), "x"), P("x", 0, 1) } end,
  grad = function()
    local x = sc.tensor({ 1, 2 }, { dtype = "float64" }):requires_grad(true)
    local z = sc.tensor({ 1 }, { dtype = "float64" }):requires_grad(true)
    local y = (x * x):sum()
    return { P(nil, nil), P(y, "x"), P(y, { x }, { grad_outputs = { y, y } }), P(T(), { x }),
      P(x * 2, { x }), W({ "allow_unused" }, (x * 3):sum(), { x, z }), P(y, { T() }), P(y, { "x" }),
      P(y, { x }, { grad_outputs = { sc.zeros(2, { dtype = "float64" }) } }) }
  end,
  no_grad = function() return { P(nil), P("x"), P({}) } end,
  gradcheck = function()
    local f = function(a) return a * 2 end
    local x = sc.zeros(2, { dtype = "float64" }):requires_grad(true)
    return { P(nil), P(f, nil), P(f, { sc.zeros(2):requires_grad(true) }), P(f, { "x" }), P(f, { x }, "opts"),
      P(f, {}), P(f, { sc.zeros(2, { dtype = "float64" }) }), P(function() return 1 end, { x }), P(f, { closed() }) }
  end,
  index_add = function()
    return { P(T(), { 2, 3 }, 3, { 1 }), P(T(), { 2, 3 }, 1, { 1 }), P(T(), { 2, 5 }, 1, { 1, 2 }),
      P(T(), { 4, 3 }, 1, { 1, 5 }), P(T(), "x", 1, { 1 }), P(T(), { 2, 3 }, 1, "x"), P(nil, { 2, 3 }, 1, { 1 }) }
  end,
  narrow_backward = function()
    return { P(T(), { 2, 3 }, 1, 2), P(T(), { 2 }, 1, 1), P(T(), { 2, 3 }, 3, 1), P(T(), "x", 1, 1),
      P(T(), { 4, 3 }, 0, 1), P(T(), { 4, 3 }, 1, 0), P(nil, { 2 }, 1, 1) }
  end,
  sum_to = function() return { P(T(), { 4 }), P(T(), { 2, 3, 4 }), P(T(), "x"), P(nil, { 1 }), P(T(), { 2, 2 }) } end,
  set_num_threads = function() return { P(0), P("x"), P(2000), P(nil), P(-1) } end,
  set_matmul_precision = function()
    return { W({ "set_matmul_precision", "'bf16'", "highest, medium" }, "bf16"), P(nil), P({}), P("MEDIUM"),
      P("high") }
  end,
  set_wait_policy = function() return { W({ "invalid option" }, "busy"), P(nil), P({}), P(5),
    P("SPIN") } end,
  save = function()
    return { P(nil, {}), P("", {}), P(TMP, "x"), P(TMP, { a = "x" }), P(TMP, { T() }), P(TMP, { a = T() }, { k = {} }),
      P(TMP, { a = T() }, "meta"), P("a\0b", {}), P(TMP, { a = closed() }) }
  end,
  load = function() return { P(nil), P(""), P({}), P("a\0b"), P(TMP, "x"), P(TMP, { convert = true, bogus = 1 }) } end,
  read_idx = function() return { P(nil), P(""), P({}) } end,
  mkdir = function() return { P(nil), P(""), P({}), P("a\0b"), P(7) } end,
  is_dir = function() return { P(nil), P(""), P({}), P("a\0b") } end,
  list_dir = function() return { P(nil), P(""), P({}), P("a\0b") } end,
  _save_png = function() return { P(nil, T()), P(TMP, "x"), P(TMP, T()), P(TMP, sc.zeros(2, 4, 4)), P(TMP, nil) } end,
  _png_read = function() return { P(nil), P(""), P({}) } end,
}
-- image ops: X4 is [N=1, C=2, H=4, W=4]
local function X4() return sc.zeros(1, 2, 4, 4) end
local function W4() return sc.zeros(3, 2, 3, 3) end
FUNCTION_BAD.im2col = function()
  return { P(nil, { kernel = 2 }), P(T(), { kernel = 2 }), P(X4(), nil), P(X4(), { kernel = 0 }),
    P(X4(), { kernel = 9 }), P(X4(), { kernel = "x" }), P(X4(), { kernel = 2, stride = 0 }),
    P(X4(), { kernel = 2, padding = -1 }), P(X4(), { kernel = 2, dilation = 0 }) }
end
FUNCTION_BAD.col2im = function()
  local c = sc.zeros(1, 8, 9) -- from a 2-channel 4x4 image, kernel 2
  return { P(c, { 4, 5 }, { kernel = 2 }), P(c, "x", { kernel = 2 }), P(c, { 0, 4 }, { kernel = 2 }),
    P(nil, { 4, 4 }, { kernel = 2 }), P(c, { 4, 4 }, nil), P(sc.zeros(1, 7, 9), { 4, 4 }, { kernel = 2 }),
    P(T(), { 4, 4 }, { kernel = 2 }) }
end
FUNCTION_BAD.upsample_nearest = function()
  return { P(nil, 2), P(T(), 2), P(X4(), 0), P(X4(), "x"), P(X4(), -1) }
end
FUNCTION_BAD.sum_pool = function()
  return { P(nil, 2), P(T(), 2), P(X4(), 0), P(X4(), 3), P(X4(), "x"), P(X4()) }
end
FUNCTION_BAD.conv2d = function()
  return { P(nil, W4()), P(T(), W4()), P(X4(), "x"), P(X4(), sc.zeros(3, 5, 3, 3)),
    P(X4(), W4(), { stride = "x" }), P(X4(), W4(), V4()), P(X4(), W4(), { padding = { 1, 2, 3 } }),
    P(X4(), sc.zeros(3, 2, 9, 9)), P(X4(), W4():double()) }
end
FUNCTION_BAD.conv2d_core = function()
  return { P(nil, W4()), P(T(), W4()), P(X4(), "x"), P(X4(), sc.zeros(3, 5, 3, 3)), P(X4(), V4()),
    P(X4(), W4(), { stride = 0 }), P(X4(), W4(), { padding = -1 }), P(X4(), sc.zeros(3, 2, 9, 9)),
    P(X4(), W4():double()), P(X4(), W4(), sc.zeros(2), {}), P(X4(), W4(), sc.zeros(3, 1), {}),
    P(X4(), W4(), sc.zeros(3):double(), {}) }
end
FUNCTION_BAD.conv2d_input = function()
  local g = sc.zeros(1, 3, 2, 2) -- the gradient of W4 on X4
  return { P(nil, W4(), { 4, 4 }), P(g, W4(), "x"), P(g, W4(), { 0, 4 }), P(g, sc.zeros(2, 2, 3, 3), { 4, 4 }),
    P(g, W4(), { 9, 9 }), P(g, W4():double(), { 4, 4 }), P(g, V4(), { 4, 4 }), P(T(), W4(), { 4, 4 }) }
end
FUNCTION_BAD.conv2d_weight = function()
  local g = sc.zeros(1, 3, 2, 2)
  return { P(nil, g, { kernel = 3 }), P(X4(), nil, { kernel = 3 }), P(X4(), g, nil), P(X4(), g, { kernel = 2 }),
    P(X4(), sc.zeros(2, 3, 2, 2), { kernel = 3 }), P(X4(), g:double(), { kernel = 3 }), P(T(), g, { kernel = 3 }) }
end
FUNCTION_BAD.conv_transpose2d = function()
  return { P(nil, W4()), P(T(), W4()), P(X4(), "x"), P(X4(), sc.zeros(5, 3, 3, 3)),
    P(X4(), sc.zeros(2, 3, 3, 3), { stride = "x" }), P(X4(), sc.zeros(2, 3, 3, 3), V4()),
    P(X4(), sc.zeros(2, 3, 3, 3):double()) }
end
FUNCTION_BAD.avg_pool2d = function()
  return { P(nil, 2), P(T(), 2), P(X4(), "x"), P(X4(), { 1, 2, 3 }), P(X4(), 9), P(X4(), 0) }
end
FUNCTION_BAD.upsample = function()
  return { P(nil), P(T()), P(X4(), 0), P(X4(), { mode = "cubic" }), P(X4(), 1.5) }
end
FUNCTION_BAD.group_norm = function()
  return { P(nil, 2), P(X4(), 3), P(X4(), "x"), P(X4(), 2, V4()), P(X4(), 0) }
end
FUNCTION_BAD.group_norm_core = function()
  return { P(nil, 2), W({ "[3]" }, sc.zeros(3), 1), W({ "3 channels", "[2,3]", "2 groups" }, T(), 2), P(X4(), 0),
    P(X4(), "x"), P(X4(), 1.5), P(X4()), W({ "weight", "[2]", "[4]" }, X4(), 2, V4()),
    W({ "bias", "[2]", "[4]" }, X4(), 2, nil, V4()), W({ "weight", "[2]", "[1,2]" }, X4(), 2, sc.zeros(1, 2)),
    W({ "weight", "float64", "float32" }, X4(), 2, sc.zeros(2):double()), P(X4(), 2, "x"), P(X4(), 2, nil, closed()),
    W({ "eps" }, X4(), 2, nil, nil, -1), W({ "eps" }, X4(), 2, nil, nil, 0 / 0), P(X4(), 2, nil, nil, "x") }
end
FUNCTION_BAD.group_norm_silu = function()
  return { P(nil, 2), P(X4(), 3), P(X4(), "x"), P(X4(), 2, V4()), P(X4(), 0), W({ "group_norm_silu", "eps" }, X4(), 2,
    nil, nil, -1) }
end
FUNCTION_BAD.group_norm_silu_core = function()
  return { P(nil, 2), W({ "group_norm_silu_core", "[3]" }, sc.zeros(3), 1),
    W({ "group_norm_silu_core", "3 channels", "[2,3]", "2 groups" }, T(), 2), P(X4(), 0), P(X4(), "x"),
    W({ "weight", "[2]", "[4]" }, X4(), 2, V4()), W({ "bias", "[2]", "[4]" }, X4(), 2, nil, V4()),
    W({ "bias", "float64", "float32" }, X4(), 2, nil, sc.zeros(2):double()), P(X4(), 2, nil, closed()),
    W({ "eps" }, X4(), 2, nil, nil, -1) }
end
FUNCTION_BAD.layer_norm_core = function()
  local X = sc.zeros(2, 3, 4)
  return { P(nil, 1), P(X, "x"), W({ "[1, 3]", "[2,3,4]", "got 4" }, X, 4), W({ "got 0" }, X, 0), P(X, 2 ^ 60),
    P(X, 1.5), P(X), W({ "weight", "[4]", "[3]" }, X, 1, sc.zeros(3)),
    W({ "weight", "[3,4]", "[12]" }, X, 2, sc.zeros(12)), W({ "bias", "[4]", "[1,4]" }, X, 1, nil, sc.zeros(1, 4)),
    W({ "bias", "float64", "float32" }, X, 1, nil, V4():double()), P(X, 1, "x"), P(X, 1, nil, closed()),
    W({ "eps" }, X, 1, nil, nil, -1), W({ "eps" }, X, 1, nil, nil, 0 / 0), P(sc.zeros({}), 1) }
end
FUNCTION_BAD.layer_norm = function()
  return { P(nil, 1), P(T(), "x"), P(T(), 5), P(T(), 1, V4()), P(T(), 0.5) }
end
for _, n in ipairs({ "softmax", "log_softmax" }) do
  FUNCTION_BAD[n] = function() return { P(nil), P(T(), 5), P(T(), "x"), P("x", 1) } end
end
for _, n in ipairs({ "softmax_core", "log_softmax_core" }) do
  FUNCTION_BAD[n] = function()
    return { P(nil), P("x", 1), W({ "dimension 3" }, T(), 3), W({ "dimension -3" }, T(), -3), P(T(), 0), P(T(), "x"),
      P(T(), 1.5), W({ "no dimensions" }, sc.zeros({}), 1), P(closed(), 1), P(sc.zeros({})) }
  end
end
FUNCTION_BAD.phase_join = function()
  return { P(nil), P(T()), W({ "[1,3,4,4]" }, sc.zeros(1, 3, 4, 4)), P(sc.zeros(1, 4, 1, 3)), P(closed()) }
end
FUNCTION_BAD.phase_split = function()
  return { P(nil), P(T()), W({ "[1,2,3,4]" }, sc.zeros(1, 2, 3, 4)), P(sc.zeros(1, 1, 0, 2)), P(closed()) }
end
FUNCTION_BAD.bernoulli_log_prob = function()
  return { P(T(), V4()), W({ "[2,3]", "float64" }, T(), T64()), P(V4(), V4()), P(nil, T()), P(T(), "x"),
    P(closed(), T()) }
end
FUNCTION_BAD.silu_linear = function()
  return { P(T(), V4()), W({ "[2,3]", "[2,4]" }, T(), sc.zeros(2, 4)), P(T(), sc.zeros(5, 3), V4()),
    P(T(), sc.zeros(5, 3, { dtype = "float64" })), P(nil, T()), P(T(), sc.zeros(5, 3), "x"),
    P(closed(), sc.zeros(5, 3)) }
end
FUNCTION_BAD.leaky_relu = function()
  return { P(nil), P("x"), P(T(), "x"), P(T(), 0 / 0), W({ "finite" }, T(), math.huge), P(closed(), 0.2) }
end
FUNCTION_BAD.leaky_grad = function()
  return { P(nil, T(), 0), P(T(), nil, 0), P(T(), T()), P(T(), T(), "x"), W({ "[4]", "[2,3]" }, V4(), T(), 0),
    W({ "float64" }, T(), T64(), 0), P(T(), T(), 0 / 0), P(closed(), T(), 0) }
end
FUNCTION_BAD._set_fused_backward = function() return { P(nil), P(1), P("x") } end
FUNCTION_BAD._set_small_linear_avx512 = function() return { P(nil), P(1), P("x") } end
FUNCTION_BAD._set_gemm_avx512 = function() return { P(nil), P(1), P("x") } end
FUNCTION_BAD._set_gemm_inplace = function() return { P(nil), P(1), P("x") } end
FUNCTION_BAD._set_wino_wgrad_transposed = function() return { P(nil), P("x"), P(2), P(-2), P(0.5) } end
FUNCTION_BAD._set_wino_tile = function() return { P(nil), P("x"), P(1), P(3), P(-1), P(2.5) } end
FUNCTION_BAD._set_randn_lanes = function() return { P(nil), P(1), P("x") } end
FUNCTION_BAD._set_thin_conv = function() return { P(nil), P(1), P("x") } end
FUNCTION_BAD._linear_chain = function()
  local w = sc.zeros(4, 3)
  return { P(nil), P(T(), nil), P(T(), {}), P(T(), { "x" }), P(T(), { { "x" } }), P(T(), { { w, "x" } }),
    P(closed(), { { w, false, true } }), P(T(), { { closed(), false } }),
    W({ "layer 2", "[5,5]", "4 input" }, T(), { { w, false, true }, { sc.zeros(5, 5), false } }),
    W({ "layer 1", "float64" }, T(), { { sc.zeros(4, 3, { dtype = "float64" }) } }),
    W({ "layer 1", "bias [3]" }, T(), { { w, sc.zeros(3) } }) }
end
do -- the linear algebra behind sc.metrics (csrc/lua/linalg.c)
  local function D(...) return sc.zeros({ ... }, { dtype = "float64" }) end
  FUNCTION_BAD.linalg_eigh = function()
    return { P(nil), P(D(2, 3)), P(sc.zeros(2, 2)), P(D(3, 3):t()), P(D(2)) }
  end
  FUNCTION_BAD.linalg_trace_sqrt_product = function()
    return { P(D(2, 2), D(3, 3)), P(D(2, 2)), P(nil, D(2, 2)), P(D(2, 3), D(2, 3)), P(sc.zeros(2, 2), D(2, 2)) }
  end
  FUNCTION_BAD.linalg_moments = function() return { P(nil), P(sc.zeros(3)), P("x"), P(sc.zeros(3, 2):t()) } end
  FUNCTION_BAD.linalg_knn_radii = function()
    return { P(sc.zeros(4, 2), 0), P(D(4, 2), 1), P(sc.zeros(4, 2), "x"), P(nil, 1), P(sc.zeros(4), 1) }
  end
  FUNCTION_BAD.linalg_pr_cover = function()
    local r, f = sc.zeros(4, 2), sc.zeros(3, 2)
    return { P(r, f), P(r, sc.zeros(3, 5), sc.zeros(4), sc.zeros(3)), P(r, f, sc.zeros(3), sc.zeros(3)),
      P(r, f, sc.zeros(4), sc.zeros(3), sc.zeros(2)), P(D(4, 2), f, sc.zeros(4), sc.zeros(3)) }
  end
end
FUNCTION_BAD.attention = function()
  return { P(nil, T(), T()), P(sc.zeros(2, 3), sc.zeros(2, 4), sc.zeros(2, 3)), P(T(), "x", T()),
    P(T(), T(), sc.zeros(3, 3)), P(T(), T()) }
end
FUNCTION_BAD.dropout = function()
  return { P(T(), 1.5, true), P(T(), -0.1, true), P(nil, 0.5, true), P(T(), "x", true), P("x", 0.5, true) }
end
for _, n in ipairs({ "zeros", "ones", "empty", "rand", "randn" }) do FUNCTION_BAD[n] = shape_bad(n) end
for _, n in ipairs({ "add", "sub", "mul", "div", "pow", "maximum", "minimum" }) do
  FUNCTION_BAD[n] = function()
    return { P(T(), V4()), P(T(), T64()), P("x", T()), P(nil, nil), P(T()), P({}, T()), P(closed(), 1) }
  end
end
for _, n in ipairs({ "alias", "abs", "cos", "erfc", "exp", "expm1", "log", "log1p", "logsigmoid", "neg", "relu",
  "rsqrt", "sigmoid", "sign", "silu", "silu_grad", "silu_grad2", "sin", "softplus", "sqrt", "square", "step",
  "tanh" }) do
  FUNCTION_BAD[n] = function() return { P(nil), P("x"), P({}), P(closed()), P(5) } end
end

-- Calls F.name(args) through a named field, as user code does, so the
-- argument errors of Lua's auxiliary library can name the function.
local function call_named(F, name, args)
  local f = assert(load(("local F, a = ...; return F.%s(table.unpack(a, 1, a.n))"):format(name)))
  return pcall(f, F, args)
end

local function check_calls(F, name, list)
  local want_name = NAMES[name] or name
  for k, args in ipairs(list) do
    local ok, msg = call_named(F, name, args)
    assert(not ok, ("%s: bad call %d succeeded"):format(name, k))
    msg = tostring(msg)
    assert(msg:find(want_name, 1, true), ("%s: bad call %d: message does not name it: %s"):format(name, k, msg))
    for _, frag in ipairs(args.want or {}) do
      assert(msg:find(frag, 1, true), ("%s: bad call %d: message lacks %q: %s"):format(name, k, frag, msg))
    end
  end
end

-- The functions of sc and those of the C module kept under sc.core: internals
-- are reachable by users too, so they get the same sweep.
local function public_functions()
  local names, seen = {}, {}
  for _, tbl in ipairs({ sc, sc.core }) do
    for k, v in pairs(tbl) do
      if type(v) == "function" and not seen[k] then names[#names + 1], seen[k] = k, true end
    end
  end
  table.sort(names)
  return names
end
local function holder(name) return sc[name] ~= nil and sc or sc.core end

local function method_names()
  local names = {}
  for k in pairs(M) do names[#names + 1] = k end
  table.sort(names)
  return names
end

describe("specific bad calls", function()
  it("every public function and method has bad-argument cases", function()
    local missing = {}
    for _, n in ipairs(public_functions()) do
      if not FUNCTION_BAD[n] and not ACCEPTS_ANYTHING[n] then missing[#missing + 1] = "sc." .. n end
    end
    for _, n in ipairs(method_names()) do
      if not METHOD_BAD[n] and not SELF_ONLY[n] then missing[#missing + 1] = "t:" .. n end
    end
    assert(#missing == 0, "no bad-argument cases for: " .. table.concat(missing, ", "))
  end)

  for _, name in ipairs(method_names()) do
    it("t:" .. name, function()
      -- a wrong self: every method
      check_calls(M, name, { P("x"), P(nil), P({}), P(5), P(closed()) })
      if METHOD_BAD[name] then check_calls(M, name, METHOD_BAD[name]()) end
    end)
  end

  for _, name in ipairs(public_functions()) do
    if FUNCTION_BAD[name] then
      it("sc." .. name, function() check_calls(holder(name), name, FUNCTION_BAD[name]()) end)
    end
  end

  it("operators and fields", function()
    local t = T()
    for _, f in ipairs({ function() return t + "x" end, function() return "x" * t end,
      function() return t / {} end, function() return t ^ T64() end, function() return t + V4() end }) do
      local ok, msg = pcall(f)
      assert.is_false(ok)
      assert.truthy(tostring(msg):find("scorch.", 1, true), msg)
    end
    local ok, msg = pcall(function() t.grad = "x" end)
    assert.is_false(ok)
    assert.truthy(msg:find("grad", 1, true), msg)
    ok, msg = pcall(function() t.grad = V4() end)
    assert.is_false(ok)
    assert.truthy(msg:find("[4]", 1, true) and msg:find("[2,3]", 1, true), msg)
    ok, msg = pcall(function() t.grad = T64() end)
    assert.is_false(ok)
    assert.truthy(msg:find("float64", 1, true), msg)
    ok, msg = pcall(function() t.foo = 1 end)
    assert.is_false(ok)
    assert.truthy(msg:find("foo", 1, true), msg)
    ok, msg = pcall(function() return t[0] end)
    assert.is_false(ok)
    assert.truthy(msg:find("index", 1, true), msg)
    assert.has_error(function() return t[3] end)
    assert.has_error(function() return sc.zeros({})[1] end)
    assert.has_error(function() return #closed() end)
    assert.has_error(function() return tostring(closed()) end)
  end)

  it("a failed allocation is an error naming the function", function()
    -- a sanitizer reports every failed allocation, so only without one
    if os.getenv("ASAN_OPTIONS") then return end
    for _, name in ipairs({ "zeros", "randn", "empty" }) do
      local ok, msg = pcall(sc[name], 2 ^ 40) -- 4 TB
      assert.is_false(ok)
      assert.truthy(msg:find(name, 1, true) and msg:find("out of memory", 1, true), msg)
    end
    local ok, msg = pcall(function() return sc.zeros(2 ^ 20, 2 ^ 20):exp() end)
    assert.is_false(ok)
    assert.truthy(msg:find("zeros", 1, true), msg)
    assert.are.equal(8, sc.ones(2, 4):sum():item()) -- and allocation works again
  end)

  it("the matmul shape message names both shapes", function()
    local ok, msg = pcall(sc.matmul, sc.zeros(3, 4), sc.zeros(5, 6))
    assert.is_false(ok)
    assert.truthy(msg:find("matmul", 1, true), msg)
    assert.truthy(msg:find("[3,4]", 1, true), msg)
    assert.truthy(msg:find("[5,6]", 1, true), msg)
  end)

  it("a failed call changes nothing", function()
    -- the global generator: a bad state is refused before anything is set
    sc.manual_seed(5)
    local before = sc.get_rng_state()
    pcall(sc.set_rng_state, { 99 })
    pcall(sc.set_rng_state, { 99, "x" })
    assert.are.same(before, sc.get_rng_state())
    -- tensors: a failed in-place op leaves them as they were
    local t = sc.tensor({ 1, 2, 3 })
    pcall(t.copy_, t, V4())
    pcall(t.add_, t, sc.zeros(3, { dtype = "float64" }))
    assert.are.same({ 1, 2, 3 }, t:totable())
    -- the thread count
    local n = sc.get_num_threads()
    pcall(sc.set_num_threads, 0)
    assert.are.equal(n, sc.get_num_threads())
  end)

  it("leaves the state intact after the sweep", function()
    assert.is_true(sc.is_grad_enabled())
    local a = sc.tensor({ { 1, 2 }, { 3, 4 } }, { dtype = "float64" }):requires_grad(true)
    local y = sc.matmul(a, a):sum()
    y:backward()
    -- d/dA sum(A A) = 1 A^T + A^T 1 (1 all ones): [[3,7],[3,7]] + [[4,4],[6,6]]
    H.assert_close(a.grad, { { 7, 11 }, { 9, 13 } }, 0)
    assert.are.same({ { 7, 10 }, { 15, 22 } }, sc.matmul(a, a):detach():totable())
    os.remove(TMP)
  end)
end)
