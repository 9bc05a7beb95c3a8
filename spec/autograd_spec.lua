-- Autograd: accumulation into leaves, sc.grad and its options, no_grad,
-- detach, the version counter, nested and higher-order gradients, and very
-- long graphs.  Expected gradients are closed forms.
local sc = require "scorch"
local H = require "helpers"

local assert_close, leaf = H.assert_close, H.leaf

describe("backward", function()
  it("accumulates into leaves over two calls", function()
    local x = leaf({ 1, 2, 3 })
    local w = leaf({ 0.5, -1, 2 })
    ;(x * w):sum():backward()
    assert_close(x.grad, { 0.5, -1, 2 }, 0)
    assert_close(w.grad, { 1, 2, 3 }, 0)
    ;(x * x):sum():backward()
    assert_close(x.grad, { 0.5 + 2, -1 + 4, 2 + 6 }, 0)
    assert_close(w.grad, { 1, 2, 3 }, 0)
  end)

  it("takes an explicit gradient for a non-scalar output", function()
    local x = leaf({ { 1, 2 }, { 3, 4 } })
    local y = x:exp()
    y:backward(sc.tensor({ { 1, 0 }, { 2, -1 } }, { dtype = "float64" }))
    assert_close(x.grad, { { math.exp(1), 0 }, { 2 * math.exp(3), -math.exp(4) } }, 1e-14)
    assert.has_error(function() (x * 2):backward() end) -- no implied gradient
  end)

  it("sums gradients of a tensor used several times", function()
    local x = leaf({ 2 })
    local y = x * x * x + x:exp() * x -- 3 x^2 + e^x (1 + x)
    y:sum():backward()
    assert_close(x.grad, { 12 + math.exp(2) * 3 }, 1e-14)
  end)

  it("propagates through views, broadcasting and reductions", function()
    local x = leaf({ { 1, 2, 3 }, { 4, 5, 6 } })
    local b = leaf({ 10, 20, 30 })
    local y = (x:t() * 1):t() + b -- broadcast b over rows
    ;(y * y):sum():backward()
    local v = x:values()
    local bb = { 10, 20, 30 }
    local gx, gb = {}, { 0, 0, 0 }
    for i = 1, 6 do
      local j = (i - 1) % 3 + 1
      gx[i] = 2 * (v[i] + bb[j])
      gb[j] = gb[j] + gx[i]
    end
    assert_close(x.grad:values(), gx, 0)
    assert_close(b.grad, gb, 0)
  end)

  it("max and min share the gradient between ties", function()
    local x = leaf({ 1, 3, 3, 2 })
    x:max():backward()
    assert_close(x.grad, { 0, 0.5, 0.5, 0 }, 0)
    local y = leaf({ { 1, 3 }, { 3, 2 }, { 0, 2 } })
    local v = y:min(2)
    v:sum():backward()
    assert_close(y.grad, { { 1, 0 }, { 0, 1 }, { 1, 0 } }, 0)
  end)

  it("accumulates into strided and expanded leaves", function()
    local base = sc.zeros(3, 2, { dtype = "float64" })
    local x = base:t():requires_grad(true) -- a [2,3] leaf, not contiguous
    local w = sc.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, { dtype = "float64" })
    ;(x * w):sum():backward()
    ;(x * w):sum():backward()
    assert_close(x.grad, { { 2, 4, 6 }, { 8, 10, 12 } }, 0)
    local e = sc.tensor({ 1, 2, 3 }, { dtype = "float64" }):expand(2, 3):requires_grad(true)
    ;(e * w):sum():backward()
    assert_close(e.grad, { { 1, 2, 3 }, { 4, 5, 6 } }, 0)
  end)

  it("leaf .grad can be set to nil and assigned", function()
    local x = leaf({ 1, 2 })
    ;(x * 3):sum():backward()
    assert_close(x.grad, { 3, 3 }, 0)
    x.grad = nil
    assert.is_nil(x.grad)
    ;(x * 3):sum():backward()
    assert_close(x.grad, { 3, 3 }, 0) -- starts afresh, not 6
    x.grad = sc.tensor({ 100, 200 }, { dtype = "float64" })
    ;(x * 3):sum():backward()
    assert_close(x.grad, { 103, 203 }, 0)
    x:zero_grad()
    assert.is_nil(x.grad)
    assert.has_error(function() x.grad = sc.zeros(3, { dtype = "float64" }) end)
  end)

  it("a retained graph can be run twice; a freed one errors clearly", function()
    local x = leaf({ 1, 2 })
    local y = (x * x):sum()
    y:backward({ retain_graph = true })
    y:backward()
    assert_close(x.grad, { 4, 8 }, 0)
    local ok, msg = pcall(function() y:backward() end)
    assert.is_false(ok)
    assert.truthy(tostring(msg):find("retain_graph", 1, true), msg)
    assert.truthy(tostring(msg):find("second time", 1, true), msg)
  end)

  it("non-leaves get no .grad; requires_grad is inherited", function()
    local x = leaf({ 1 })
    local y = x * 2
    assert.is_true(y:requires_grad())
    assert.is_false(y:is_leaf())
    assert.are.equal("mul_scalar", y:grad_fn())
    y:sum():backward()
    assert.is_nil(y.grad)
    assert.is_false((sc.zeros(2) * 2):requires_grad())
    assert.has_error(function() sc.zeros(2):sum():backward() end)
  end)
end)

describe("sc.grad", function()
  it("returns gradients without touching .grad", function()
    local x, y = leaf({ 1, 2 }), leaf({ 3, 4 })
    local g = sc.grad((x * y):sum(), { x, y })
    assert_close(g[1], { 3, 4 }, 0)
    assert_close(g[2], { 1, 2 }, 0)
    assert.is_nil(x.grad)
    assert.is_nil(y.grad)
    assert.is_false(g[1]:requires_grad())
  end)

  it("accepts grad_outputs for non-scalar outputs", function()
    local x = leaf({ 1, 2, 3 })
    local y = x:sin()
    local v = sc.tensor({ 1, -2, 0.5 }, { dtype = "float64" })
    local g = sc.grad(y, { x }, { grad_outputs = { v } })[1]
    assert_close(g, { math.cos(1), -2 * math.cos(2), 0.5 * math.cos(3) }, 1e-14)
    -- several outputs: the gradients add
    local g2 = sc.grad({ x:sum(), (x * x):sum() }, { x })[1]
    assert_close(g2, { 3, 5, 7 }, 0)
    assert.has_error(function() sc.grad(y, { x }) end)
    assert.has_error(function() sc.grad(y, { x }, { grad_outputs = { sc.zeros(2, { dtype = "float64" }) } }) end)
  end)

  it("create_graph: d2/dx2 of x^3 is 6x, d3/dx3 is 6", function()
    local x = leaf({ -1, 0.5, 2 })
    local y = (x ^ 3):sum()
    local g = sc.grad(y, { x }, { create_graph = true })[1]
    assert_close(g, { 3, 0.75, 12 }, 1e-14)
    assert.is_true(g:requires_grad())
    local g2 = sc.grad(g:sum(), { x }, { create_graph = true })[1]
    assert_close(g2, { -6, 3, 12 }, 1e-14)
    local g3 = sc.grad(g2:sum(), { x })[1]
    assert_close(g3, { 6, 6, 6 }, 1e-12)
  end)

  it("create_graph through exp, tanh and matmul", function()
    local x = leaf({ 0.3 })
    local g = sc.grad(x:tanh():sum(), { x }, { create_graph = true })[1]
    local t = (math.exp(0.6) - 1) / (math.exp(0.6) + 1) -- tanh(0.3)
    assert_close(g, { 1 - t * t }, 1e-14)
    local g2 = sc.grad(g:sum(), { x })[1]
    assert_close(g2, { -2 * t * (1 - t * t) }, 1e-14)
    -- f(A) = sum((A v)^2): grad 2 (A v) v^T, Hessian-vector product with
    -- A itself: d/dA <2 A v v^T, A> = 4 A v v^T
    local A = leaf({ { 1, 2 }, { 3, 4 } })
    local v = sc.tensor({ { 1 }, { -1 } }, { dtype = "float64" })
    local ga = sc.grad((sc.matmul(A, v) ^ 2):sum(), { A }, { create_graph = true })[1]
    assert_close(ga, { { -2, 2 }, { -2, 2 } }, 1e-14)
    local h = sc.grad((ga * A):sum(), { A })[1]
    assert_close(h, { { -4, 4 }, { -4, 4 } }, 1e-14)
  end)

  it("without create_graph the gradient is a constant", function()
    local x = leaf({ 2 })
    local g = sc.grad((x ^ 3):sum(), { x })[1]
    assert.is_false(g:requires_grad())
    assert.has_error(function() sc.grad(g:sum(), { x }) end)
  end)

  it("retain_graph: a second sc.grad needs it", function()
    local x = leaf({ 1, 2 })
    local y = (x:exp()):sum()
    local g1 = sc.grad(y, { x }, { retain_graph = true })[1]
    local g2 = sc.grad(y, { x })[1]
    assert_close(g1, g2:values(), 0)
    local ok, msg = pcall(sc.grad, y, { x })
    assert.is_false(ok)
    assert.truthy(tostring(msg):find("retain_graph", 1, true), msg)
  end)

  it("allow_unused: an unused input gives a missing entry, else an error", function()
    local x, z = leaf({ 1, 2 }), leaf({ 5 })
    local r = sc.grad((x * 2):sum(), { x, z }, { allow_unused = true })
    assert_close(r[1], { 2, 2 }, 0)
    assert.is_nil(r[2])
    local ok, msg = pcall(sc.grad, (x * 2):sum(), { x, z })
    assert.is_false(ok)
    assert.truthy(tostring(msg):find("allow_unused", 1, true), msg)
    assert.truthy(tostring(msg):find("input 2", 1, true), msg)
  end)

  it("gradient with respect to an intermediate tensor", function()
    local x = leaf({ 1, 2 })
    local h = x * 3
    local y = (h * h):sum()
    local g = sc.grad(y, { h })[1]
    assert_close(g, { 6, 12 }, 0)
  end)

  it("nested sc.grad calls (gradient inside a function being differentiated)", function()
    -- f(x) = d/dx sum(sin(x * y)) = y cos(x y); its gradient in y:
    -- cos(x y) - x y sin(x y)
    local x, y = leaf({ 0.7 }), leaf({ 1.3 })
    local inner = sc.grad((x * y):sin():sum(), { x }, { create_graph = true })[1]
    local outer = sc.grad(inner:sum(), { y })[1]
    local p = 0.7 * 1.3
    assert_close(outer, { math.cos(p) - p * math.sin(p) }, 1e-14)
    -- a grad taken while another graph is still alive leaves it usable
    local a = leaf({ 2 })
    local keep = (a * a * a):sum()
    local ga = sc.grad((a:exp()):sum(), { a })[1]
    assert_close(ga, { math.exp(2) }, 1e-14)
    keep:backward()
    assert_close(a.grad, { 12 }, 1e-14)
  end)

  it("requires inputs that require grad", function()
    assert.has_error(function() sc.grad((leaf({ 1 }) * 2):sum(), { sc.zeros(1, { dtype = "float64" }) }) end)
  end)
end)

describe("sc.no_grad and detach", function()
  it("records no graph and returns fn's results", function()
    local x = leaf({ 1, 2 })
    local y, extra = sc.no_grad(function(a, b) return x * a, b end, 3, "z")
    assert.is_false(y:requires_grad())
    assert.is_nil(y:grad_fn())
    assert.are.equal("z", extra)
    assert_close(y, { 3, 6 }, 0)
    assert.is_true(sc.is_grad_enabled())
    assert.is_true((x * 3):requires_grad())
  end)

  it("restores grad mode when fn errors, and the error propagates", function()
    local ok, msg = pcall(sc.no_grad, function()
      assert(not sc.is_grad_enabled())
      error("boom inside")
    end)
    assert.is_false(ok)
    assert.truthy(tostring(msg):find("boom inside", 1, true))
    assert.is_true(sc.is_grad_enabled())
    -- nested: the inner call restores "off", the outer "on"
    sc.no_grad(function()
      pcall(sc.no_grad, function() error("x") end)
      assert.is_false(sc.is_grad_enabled())
    end)
    assert.is_true(sc.is_grad_enabled())
  end)

  it("detach cuts the graph but shares storage", function()
    local x = leaf({ 1, 2 })
    local d = (x * 2):detach()
    assert.is_false(d:requires_grad())
    assert.is_true(d:is_leaf())
    local y = (x * d):sum() -- d is a constant here
    y:backward()
    assert_close(x.grad, { 2, 4 }, 0)
    local base = sc.zeros(3)
    local dd = base:detach()
    dd:fill_(2)
    assert_close(base, { 2, 2, 2 }, 0)
  end)

  it("in-place writes to tensors that require grad need no_grad", function()
    local x = leaf({ 1, 2 })
    assert.has_error(function() x:fill_(0) end)
    sc.no_grad(function() x:fill_(3) end)
    assert_close(x, { 3, 3 }, 0)
  end)
end)

describe("version counter", function()
  it("modifying a saved input in place makes backward fail", function()
    local a = leaf({ 1, 2, 3 })
    local b = sc.tensor({ 4, 5, 6 }, { dtype = "float64" })
    local y = (a * b):sum()
    sc.no_grad(function() b:copy_(sc.tensor({ 0, 0, 0 }, { dtype = "float64" })) end)
    local ok, msg = pcall(function() y:backward() end)
    assert.is_false(ok)
    assert.truthy(tostring(msg):find("modified in place", 1, true), msg)
    assert.is_nil(a.grad)
  end)

  it("modifying a saved output (exp) through a view fails too", function()
    local a = leaf({ 1, 2 })
    local e = a:exp()
    local y = (e * 1):sum()
    sc.no_grad(function() e:narrow(1, 1, 1):fill_(0) end)
    assert.has_error(function() y:backward() end)
  end)

  it("modifying a tensor that is not saved is harmless", function()
    local a = leaf({ 1, 2 })
    local b = sc.tensor({ 5, 5 }, { dtype = "float64" })
    local y = (a + b):sum() -- add saves nothing
    sc.no_grad(function() b:fill_(0) end)
    y:backward()
    assert_close(a.grad, { 1, 1 }, 0)
  end)
end)

describe("long graphs", function()
  it("a chain of 100,000 ops backpropagates and is released without overflow", function()
    local x = leaf({ 1 })
    local h = x
    for _ = 1, 100000 do h = h * 1.0000001 end
    h:sum():backward()
    assert_close(x.grad, { 1.0000001 ^ 100000 }, 1e-9)
    h = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    -- still alive and working
    local y = leaf({ 2 })
    ;(y * y):sum():backward()
    assert_close(y.grad, { 4 }, 0)
  end)

  it("a chain of 100,000 ops through sc.grad with create_graph", function()
    local x = leaf({ 1 })
    local h = x
    for _ = 1, 100000 do h = h + h * 1e-7 end
    local g = sc.grad(h:sum(), { x }, { create_graph = true })[1]
    assert_close(g, { (1 + 1e-7) ^ 100000 }, 1e-9)
    h, g = nil, nil -- luacheck: ignore
    collectgarbage()
  end)

  it("a wide fan-in (cat of 200 tensors) backpropagates", function()
    local xs, parts = {}, {}
    for i = 1, 200 do
      xs[i] = leaf({ i })
      parts[i] = xs[i] * i
    end
    local y = (sc.cat(parts, 1) ^ 2):sum()
    y:backward()
    for _, i in ipairs({ 1, 7, 200 }) do
      assert_close(xs[i].grad, { 2 * i * i * i }, 1e-12)
    end
  end)
end)

-- Without a graph, a gradient sum goes into one of its two terms when that
-- term is the backward's own buffer (csrc/core/autograd.c's acc_add); a
-- term that is also another tensor's view, or held by the caller, must
-- stay as it was.
describe("gradient sums in place", function()
  it("add every branch once: views, pass-throughs and products", function()
    local x = sc.randn(50, 40, { dtype = "float64", generator = sc.Generator(2) }):requires_grad(true)
    local z = x * 3
    -- d/dx: 3 (z) + 3 (a view of z) + 1 (x) + 1 (a double transpose) + 2x (x * x)
    local loss = (z + z:view(2000):view(50, 40) + x + x:t():t() + x * x):sum()
    local g = sc.grad(loss, { x })[1]
    local want = x:detach() * 2 + 8
    assert.is_true((g - want):abs():max():item() < 1e-12)
  end)

  it("leave gradients the caller holds untouched", function()
    local x = sc.randn(64, 33, { generator = sc.Generator(3) }):requires_grad(true)
    local y = (x * x):sum() + (x * 2):sum()
    local g1 = sc.grad(y, { x }, { retain_graph = true })[1]
    local keep = g1:clone()
    local g2 = sc.grad(y, { x })[1]
    assert.are.equal(0, (g1 - keep):abs():max():item())
    assert.are.equal(0, (g2 - keep):abs():max():item())
    -- backward into .grad twice: the second sum adds to the first
    local w = sc.randn(20, { generator = sc.Generator(4) }):requires_grad(true)
    local f = function() return ((w * w) + w):sum() end
    f():backward()
    local first = w.grad:clone()
    f():backward()
    assert.is_true((first - (w:detach() * 2 + 1)):abs():max():item() < 1e-6)
    assert.is_true((w.grad - first * 2):abs():max():item() < 1e-6)
  end)
end)
