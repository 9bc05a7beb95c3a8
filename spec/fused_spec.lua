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

  it("leaves a Linear with its own forward alone", function()
    local nn = sc.nn
    local lin = nn.Linear(2, 2)
    lin.forward = function(_, x) return x * 0 + 7 end
    local m = nn.Sequential { lin, nn.SiLU() }
    local y = sc.no_grad(function() return m(sc.zeros(1, 2)) end)
    assert.are.equal(0, max_diff(y, sc.full({ 1, 2 }, 7):silu()))
  end)
end)
