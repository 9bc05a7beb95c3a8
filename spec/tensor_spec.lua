-- Tensors: creation, metadata, conversion, views and storage sharing,
-- cat/stack/index_select, printing.  Expected values are written out by
-- hand or follow from a closed form; both dtypes are covered.
local sc = require "scorch"
local H = require "helpers"

local close, assert_close = H.close, H.assert_close
local DTYPES = { "float32", "float64" }

local function f64(t) return sc.tensor(t, { dtype = "float64" }) end

describe("tensor creation", function()
  for _, dt in ipairs(DTYPES) do
    describe(dt, function()
      local o = { dtype = dt }

      it("tensor() from a number and from nested tables", function()
        local s = sc.tensor(2.5, o)
        assert.are.same({}, s:shape())
        assert.are.equal(2.5, s:item())
        local t = sc.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, o)
        assert.are.same({ 2, 3 }, t:shape())
        assert.are.same({ { 1, 2, 3 }, { 4, 5, 6 } }, t:totable())
        assert.are.equal(dt, t:dtype())
        local e = sc.tensor({}, o)
        assert.are.same({ 0 }, e:shape())
        assert.are.equal(0, e:numel())
      end)

      it("tensor() rounds to the dtype", function()
        local v = sc.tensor({ 0.1 }, o):values()[1]
        if dt == "float64" then
          assert.are.equal(0.1, v)
        else
          assert.are_not.equal(0.1, v)
          assert.is_true(math.abs(v - 0.1) < 1e-8)
          assert.are.equal(string.unpack("f", string.pack("f", 0.1)), v)
        end
      end)

      it("zeros, ones, full, empty take varargs or a table", function()
        assert.are.same({ { 0, 0, 0 }, { 0, 0, 0 } }, sc.zeros(2, 3, o):totable())
        assert.are.same({ { 0, 0, 0 }, { 0, 0, 0 } }, sc.zeros({ 2, 3 }, o):totable())
        assert.are.same({ { 1, 1 } }, sc.ones({ 1, 2 }, o):totable())
        assert.are.same({ 1, 1, 1 }, sc.ones(3, o):totable())
        assert.are.same({ { -2.5, -2.5 }, { -2.5, -2.5 } }, sc.full({ 2, 2 }, -2.5, o):totable())
        local e = sc.empty(4, 5, o)
        assert.are.same({ 4, 5 }, e:shape())
        assert.are.equal(dt, e:dtype())
        assert.are.equal(dt, sc.zeros(2, o):dtype())
        assert.are.equal(dt, sc.full({ 2 }, 1, o):dtype())
      end)

      it("empty shapes: zero-size dims and 0-d", function()
        local z = sc.zeros(0, 3, o)
        assert.are.same({ 0, 3 }, z:shape())
        assert.are.equal(0, z:numel())
        assert.are.same({}, z:values())
        local s = sc.zeros({}, o)
        assert.are.equal(0, s:dim())
        assert.are.equal(1, s:numel())
        assert.are.equal(0, s:item())
        assert.are.equal(0, sc.empty(0, o):numel())
      end)

      it("the default dtype is float32", function()
        assert.are.equal("float32", sc.zeros(2):dtype())
        assert.are.equal("float32", sc.tensor({ 1 }):dtype())
        assert.are.equal("float32", sc.randn(2):dtype())
        assert.are.equal("float32", sc.arange(3):dtype())
      end)

      it("arange is end exclusive, with a step and a single bound", function()
        assert.are.same({ 0, 1, 2, 3, 4 }, sc.arange(0, 5, o):totable())
        assert.are.same({ 0, 1, 2 }, sc.arange(3, o):totable())
        assert.are.same({ 2, 4, 6, 8 }, sc.arange(2, 10, 2, o):totable())
        assert.are.same({ 2, 4, 6, 8, 10 }, sc.arange(2, 10.5, 2, o):totable())
        assert.are.same({ 5, 3, 1 }, sc.arange(5, 0, -2, o):totable())
        assert.are.same({ 0, 0.25, 0.5, 0.75 }, sc.arange(0, 1, 0.25, o):totable())
        assert.are.equal(0, sc.arange(3, 3, o):numel())
        assert.are.equal(0, sc.arange(3, 1, o):numel())
        assert.are.equal(dt, sc.arange(0, 2, o):dtype())
      end)

      it("linspace hits both endpoints exactly", function()
        local l = sc.linspace(-1, 2, 7, o):values()
        assert.are.equal(7, #l)
        assert.are.equal(-1, l[1])
        assert.are.equal(2, l[7])
        assert_close(l, { -1, -0.5, 0, 0.5, 1, 1.5, 2 }, 1e-7)
        local m = sc.linspace(0, 0.3, 11, o):values()
        assert.are.equal(string.unpack(dt == "float32" and "f" or "d",
          string.pack(dt == "float32" and "f" or "d", 0.3)), m[11])
        assert_close(m[6], 0.15, 1e-7)
        assert.are.same({ 3 }, sc.linspace(3, 7, 1, o):totable())
        assert.are.equal(0, sc.linspace(0, 1, 0, o):numel())
      end)

      it("randn has mean 0 and variance 1 (1e5 samples)", function()
        sc.manual_seed(7)
        local x = sc.randn(100000, o)
        assert.are.equal(dt, x:dtype())
        -- standard errors: mean 1/sqrt(n) = 0.0032, variance sqrt(2/n) = 0.0045
        assert.is_true(math.abs(x:mean():item()) < 0.02)
        assert.is_true(math.abs(x:var():item() - 1) < 0.03)
        -- symmetric and with normal tails: P(|x| > 2) = 0.0455
        local tail = (x:abs():gt(2)):mean():item()
        assert.is_true(math.abs(tail - 0.0455) < 0.005, tail)
      end)

      it("rand is uniform on [0, 1)", function()
        sc.manual_seed(8)
        local x = sc.rand(100000, o)
        assert.is_true(x:min():item() >= 0)
        assert.is_true(x:max():item() < 1)
        assert.is_true(math.abs(x:mean():item() - 0.5) < 0.01)
        assert.is_true(math.abs(x:var():item() - 1 / 12) < 0.003)
        assert.is_true(math.abs(x:lt(0.25):mean():item() - 0.25) < 0.01)
      end)

      it("randint draws integers in [lo, hi), each value about equally", function()
        sc.manual_seed(9)
        local x = sc.randint(-2, 3, { 50000 }, o)
        assert.are.same({ 50000 }, x:shape())
        assert.are.equal(dt, x:dtype())
        local counts = {}
        for _, v in ipairs(x:values()) do
          assert.are.equal(math.floor(v), v)
          assert.is_true(v >= -2 and v < 3, v)
          counts[v] = (counts[v] or 0) + 1
        end
        for v = -2, 2 do
          assert.is_true(math.abs(counts[v] / 50000 - 0.2) < 0.01, v)
        end
        assert.are.same({ 2, 3 }, sc.randint(0, 10, { 2, 3 }, o):shape())
        assert.are.same({ 7, 7, 7 }, sc.randint(7, 8, { 3 }, o):totable())
      end)
    end)
  end
end)

describe("tensor metadata", function()
  it("shape, size, dim, numel, dtype", function()
    local t = sc.zeros(2, 3, 4)
    assert.are.same({ 2, 3, 4 }, t:shape())
    assert.are.equal(3, t:size(2))
    assert.are.equal(4, t:size(-1))
    assert.are.equal(2, t:size(-3))
    assert.are.same({ 2, 3, 4 }, t:size())
    assert.are.equal(3, t:dim())
    assert.are.equal(24, t:numel())
    assert.are.equal("float32", t:dtype())
    assert.are.equal("float64", sc.zeros(1, { dtype = "float64" }):dtype())
  end)

  it("shape() returns a fresh table", function()
    local t = sc.zeros(2, 3)
    local s = t:shape()
    s[1] = 99
    assert.are.same({ 2, 3 }, t:shape())
  end)

  it("#t is the size of the first dimension", function()
    assert.are.equal(5, #sc.zeros(5))
    assert.are.equal(2, #sc.zeros(2, 7))
    assert.are.equal(0, #sc.zeros(0, 3))
    assert.are.equal(3, #sc.zeros(4, 3):t())
  end)

  it("t[i] selects along the first dimension, 1-based", function()
    local t = sc.tensor({ { 1, 2 }, { 3, 4 }, { 5, 6 } })
    assert.are.same({ 3, 4 }, t[2]:totable())
    assert.are.same({ 5, 6 }, t[-1]:totable())
    assert.are.equal(2, t[1][2]:item())
  end)
end)

describe("item, totable, clone, contiguous, float, double", function()
  it("item reads a single element whatever the shape", function()
    assert.are.equal(4, sc.tensor({ { 4 } }):item())
    assert.are.equal(-1.5, sc.tensor(-1.5, { dtype = "float64" }):item())
    assert.has_error(function() sc.zeros(2):item() end)
  end)

  it("totable nests in row-major order, also for views", function()
    local t = sc.arange(6):view(2, 3)
    assert.are.same({ { 0, 1, 2 }, { 3, 4, 5 } }, t:totable())
    assert.are.same({ { 0, 3 }, { 1, 4 }, { 2, 5 } }, t:t():totable())
    assert.are.same({ 0, 1, 2, 3, 4, 5 }, t:values())
    assert.are.same({ 0, 3, 1, 4, 2, 5 }, t:t():values())
  end)

  for _, dt in ipairs(DTYPES) do
    it("clone copies into new storage (" .. dt .. ")", function()
      local a = sc.tensor({ 1, 2, 3 }, { dtype = dt })
      local b = a:clone()
      assert.are.equal(dt, b:dtype())
      b:fill_(9)
      assert.are.same({ 1, 2, 3 }, a:totable())
      assert.are.same({ 9, 9, 9 }, b:totable())
      local v = sc.arange(6, { dtype = dt }):view(2, 3):t():clone()
      assert.is_true(v:is_contiguous())
      assert.are.same({ { 0, 3 }, { 1, 4 }, { 2, 5 } }, v:totable())
    end)
  end

  it("contiguous copies a strided view and shares a contiguous one", function()
    local a = sc.arange(6):view(2, 3)
    local at = a:t()
    assert.is_false(at:is_contiguous())
    local c = at:contiguous()
    assert.is_true(c:is_contiguous())
    assert.are.same({ 2, 1 }, c:stride())
    assert.are.same(at:totable(), c:totable())
    c:fill_(0) -- a copy: the base is untouched
    assert.are.same({ { 0, 1, 2 }, { 3, 4, 5 } }, a:totable())
    local same = a:contiguous()
    same:fill_(7) -- already contiguous: the same storage
    assert.are.same({ { 7, 7, 7 }, { 7, 7, 7 } }, a:totable())
  end)

  it("float and double convert, values rounded to float32", function()
    local d = sc.tensor({ 0.1, 1e-3, -2 }, { dtype = "float64" })
    local f = d:float()
    assert.are.equal("float32", f:dtype())
    local want = {}
    for i, v in ipairs({ 0.1, 1e-3, -2 }) do want[i] = string.unpack("f", string.pack("f", v)) end
    assert.are.same(want, f:values())
    local back = f:double()
    assert.are.equal("float64", back:dtype())
    assert.are.same(want, back:values())
    assert.are.same(d:values(), d:double():values())
    -- converting a transposed view keeps the logical order
    local m = sc.arange(6, { dtype = "float64" }):view(2, 3):t():float()
    assert.are.same({ { 0, 3 }, { 1, 4 }, { 2, 5 } }, m:totable())
  end)
end)

describe("views", function()
  local function base() return sc.arange(24):view(2, 3, 4) end

  it("view with an inferred size", function()
    local v = sc.arange(12):view(3, -1)
    assert.are.same({ 3, 4 }, v:shape())
    assert.are.same({ 4, 5, 6, 7 }, v:totable()[2])
    assert.are.same({ 12 }, v:view({ 12 }):shape())
    assert.has_error(function() sc.arange(12):view(5, -1) end)
  end)

  it("view of a non-contiguous tensor is refused; reshape copies", function()
    local t = sc.arange(6):view(2, 3):t()
    assert.has_error(function() t:view(6) end)
    local r = t:reshape(6)
    assert.are.same({ 0, 3, 1, 4, 2, 5 }, r:totable())
    local r2 = t:reshape(2, -1)
    assert.are.same({ { 0, 3, 1 }, { 4, 2, 5 } }, r2:totable())
  end)

  it("reshape of a contiguous tensor is a view", function()
    local a = sc.zeros(2, 3)
    local r = a:reshape(3, 2)
    sc.no_grad(function() r:fill_(5) end)
    assert.are.same({ { 5, 5, 5 }, { 5, 5, 5 } }, a:totable())
  end)

  it("transpose and t swap dims (negative dims allowed)", function()
    local b = base()
    local tr = b:transpose(1, 3)
    assert.are.same({ 4, 3, 2 }, tr:shape())
    -- element (i, j, k) of tr is element (k, j, i) of b: b = 12 k + 4 j + i
    assert.are.equal(12 * 1 + 4 * 2 + 3, tr[4][3][2]:item())
    assert.are.same(tr:totable(), b:transpose(-1, -3):totable())
    local m = sc.tensor({ { 1, 2, 3 }, { 4, 5, 6 } })
    assert.are.same({ { 1, 4 }, { 2, 5 }, { 3, 6 } }, m:t():totable())
    assert.are.same(m:totable(), m:t():t():totable())
  end)

  it("permute reorders dims", function()
    local p = base():permute(3, 1, 2)
    assert.are.same({ 4, 2, 3 }, p:shape())
    -- p[k][i][j] = b[i][j][k] = 12 (i-1) + 4 (j-1) + (k-1)
    for _, c in ipairs({ { 1, 1, 1 }, { 4, 2, 3 }, { 2, 1, 3 }, { 3, 2, 1 } }) do
      local k, i, j = c[1], c[2], c[3]
      assert.are.equal(12 * (i - 1) + 4 * (j - 1) + (k - 1), p[k][i][j]:item())
    end
    assert.are.same(p:totable(), base():permute({ -1, 1, 2 }):totable())
  end)

  it("expand repeats size-1 dims without copying", function()
    local c = sc.tensor({ { 1 }, { 2 } })
    local e = c:expand(2, 3)
    assert.are.same({ { 1, 1, 1 }, { 2, 2, 2 } }, e:totable())
    assert.are.equal(0, e:stride()[2])
    local e3 = sc.tensor({ 1, 2, 3 }):expand(2, 3)
    assert.are.same({ { 1, 2, 3 }, { 1, 2, 3 } }, e3:totable())
    assert.are.same({ 4, 2, 3 }, e:expand(4, 2, 3):shape())
    assert.are.same({ { 1, 1 }, { 2, 2 } }, c:expand(-1, 2):totable())
    assert.has_error(function() sc.zeros(2):expand(3) end)
  end)

  it("narrow and select take 1-based starts and indices", function()
    local m = sc.arange(12):view(3, 4)
    assert.are.same({ { 1, 2 }, { 5, 6 }, { 9, 10 } }, m:narrow(2, 2, 2):totable())
    assert.are.same({ { 4, 5, 6, 7 }, { 8, 9, 10, 11 } }, m:narrow(1, 2, 2):totable())
    assert.are.same({ 4, 5, 6, 7 }, m:select(1, 2):totable())
    assert.are.same({ 3, 7, 11 }, m:select(2, 4):totable())
    assert.are.same({ 3, 7, 11 }, m:select(-1, -1):totable())
    assert.are.equal(0, m:narrow(2, 3, 0):numel())
  end)

  it("unsqueeze and squeeze", function()
    local v = sc.tensor({ 1, 2, 3 })
    assert.are.same({ 1, 3 }, v:unsqueeze(1):shape())
    assert.are.same({ 3, 1 }, v:unsqueeze(2):shape())
    assert.are.same({ 3, 1 }, v:unsqueeze(-1):shape())
    assert.are.same({ { 1 }, { 2 }, { 3 } }, v:unsqueeze(2):totable())
    local z = sc.zeros(1, 3, 1)
    assert.are.same({ 3 }, z:squeeze():shape())
    assert.are.same({ 1, 3 }, z:squeeze(3):shape())
    assert.are.same({ 3, 1 }, z:squeeze(1):shape())
    assert.are.same({ 1, 3, 1 }, z:squeeze(2):shape()) -- size 3: unchanged
    assert.are.same({}, sc.zeros(1, 1):squeeze():shape())
    -- unsqueeze of a transposed view keeps the values
    local t = sc.arange(6):view(2, 3):t()
    assert.are.same({ { { 0, 3 } }, { { 1, 4 } }, { { 2, 5 } } }, t:unsqueeze(2):totable())
  end)

  it("views share storage with their base", function()
    local cases = {
      view = function(b) return b:view(6) end,
      reshape = function(b) return b:reshape(3, 2) end,
      transpose = function(b) return b:transpose(1, 2) end,
      t = function(b) return b:t() end,
      permute = function(b) return b:permute(2, 1) end,
      narrow = function(b) return b:narrow(2, 2, 2) end,
      select = function(b) return b:select(1, 2) end,
      unsqueeze = function(b) return b:unsqueeze(1) end,
      squeeze = function(b) return b:unsqueeze(1):squeeze() end,
      expand = function(b) return b:unsqueeze(1):expand(3, 2, 3):select(1, 2) end,
      index = function(b) return b[1] end,
      alias = function(b) return sc.core.alias(b) end,
    }
    for name, make in pairs(cases) do
      for _, dt in ipairs(DTYPES) do
        local b = sc.zeros(2, 3, { dtype = dt }):requires_grad(true)
        local v = make(b)
        assert.is_true(v:requires_grad(), name)
        sc.no_grad(function() v:fill_(1) end)
        local s = b:sum():item()
        local want = name == "narrow" and 4 or name == "select" and 3
          or name == "index" and 3 or 6
        assert.are.equal(want, s, name .. " " .. dt)
      end
    end
  end)

  it("writing through a base shows in its views", function()
    local b = sc.zeros(2, 3)
    local v = b:t()
    sc.no_grad(function() b:select(1, 2):fill_(4) end)
    assert.are.same({ { 0, 4 }, { 0, 4 }, { 0, 4 } }, v:totable())
  end)

  it("in-place copies between overlapping views read the old values", function()
    local a = sc.tensor({ { 1, 2 }, { 3, 4 } })
    a:copy_(a:t())
    assert.are.same({ { 1, 3 }, { 2, 4 } }, a:totable())
    local b = sc.arange(6)
    b:narrow(1, 2, 5):copy_(b:narrow(1, 1, 5)) -- shift right by one
    assert.are.same({ 0, 0, 1, 2, 3, 4 }, b:totable())
    local c = sc.arange(4)
    c:narrow(1, 2, 3):add_(c:narrow(1, 1, 3))
    assert.are.same({ 0, 1, 3, 5 }, c:totable())
    local d = sc.arange(4)
    d:add_(d, 2) -- the same view: elementwise, no copy needed
    assert.are.same({ 0, 3, 6, 9 }, d:totable())
  end)

  it("copy_ converts dtypes and broadcasts the source", function()
    local a = sc.zeros(2, 3, { dtype = "float64" })
    a:copy_(sc.tensor({ 0.1, 2, 3 }))
    local f = string.unpack("f", string.pack("f", 0.1))
    assert.are.same({ { f, 2, 3 }, { f, 2, 3 } }, a:totable())
    assert.has_error(function() a:copy_(sc.zeros(3, 3)) end)
  end)

  it("copies do not share storage", function()
    local b = sc.zeros(2, 3)
    for _, c in ipairs({ b:clone(), b:t():contiguous(), b:double(), b + 0,
      sc.cat({ b, b }, 1), b:index_select(1, { 1 }) }) do
      c:fill_(1)
    end
    assert.are.equal(0, b:sum():item())
  end)
end)

describe("cat, stack, index_select", function()
  for _, dt in ipairs(DTYPES) do
    local o = { dtype = dt }
    it("cat along each dim with 3 inputs (" .. dt .. ")", function()
      local a = sc.tensor({ { 1, 2 } }, o)
      local b = sc.tensor({ { 3, 4 }, { 5, 6 } }, o)
      local c = sc.tensor({ { 7, 8 } }, o)
      local r = sc.cat({ a, b, c }, 1)
      assert.are.same({ { 1, 2 }, { 3, 4 }, { 5, 6 }, { 7, 8 } }, r:totable())
      assert.are.equal(dt, r:dtype())
      local d = sc.cat({ b, b:t(), b }, 2) -- a transposed input
      assert.are.same({ { 3, 4, 3, 5, 3, 4 }, { 5, 6, 4, 6, 5, 6 } }, d:totable())
      assert.are.same(r:totable(), sc.cat({ a, b, c }, -2):totable())
      assert.are.same(r:totable(), sc.cat({ a, b, c }):totable())
      assert.has_error(function() sc.cat({ a, sc.zeros(1, 3, o) }, 1) end)
    end)

    it("cat of contiguous chunks of every width, element by element (" .. dt .. ")", function()
      -- inputs [3, w, 2] cat along dim 2: rows of w*2 elements each, so
      -- chunks of 2..10 elements, an empty input, and a narrowed input
      -- (contiguous with an offset) beside a strided one
      local widths = { 1, 2, 0, 3, 5 }
      local ins, base = {}, 0
      for k, w in ipairs(widths) do
        local t = sc.arange(3 * w * 2, o):view(3, w, 2) + base
        if k == 4 then t = (sc.arange(4 * w * 2, o):view(4, w, 2) + base):narrow(1, 2, 3) end
        ins[#ins + 1] = t
        base = base + 1000
      end
      ins[#ins + 1] = sc.arange(2 * 3, o):view(1, 2, 3):transpose(2, 3):transpose(1, 2) -- strided [3, 1, 2]
      local r = sc.cat(ins, 2)
      assert.are.same({ 3, 12, 2 }, r:shape())
      local got = r:totable()
      for i = 1, 3 do
        local col = 0
        for _, t in ipairs(ins) do
          local tt = t:totable()
          for j = 1, t:shape()[2] do
            col = col + 1
            for e = 1, 2 do assert.are.equal(tt[i][j][e], got[i][col][e]) end
          end
        end
        assert.are.equal(12, col)
      end
    end)

    it("elementwise ops over short strided rows, element by element (" .. dt .. ")", function()
      -- rows of 1 to 3 elements with a row stride of 5 (the iterator runs
      -- such ops along the long dimension), beside a broadcast column
      local base = sc.arange(400 * 5, o):view(400, 5)
      for w = 1, 3 do
        local a = base:narrow(2, 2, w)           -- [400, w], strides (5, 1)
        local c = sc.arange(400, o):view(400, 1) -- broadcast along the row
        local r = (a * 2 - c):totable()
        local at = a:totable()
        for i = 1, 400 do
          for j = 1, w do assert.are.equal(at[i][j] * 2 - (i - 1), r[i][j]) end
        end
        local dst = sc.zeros(400, 5, o)
        dst:narrow(2, 3, w):copy_(a)             -- a strided output too
        local d = dst:totable()
        for i = 1, 400 do
          for j = 1, 5 do
            local want = (j >= 3 and j < 3 + w) and at[i][j - 2] or 0
            assert.are.equal(want, d[i][j])
          end
        end
      end
    end)

    it("stack adds a dim (" .. dt .. ")", function()
      local a, b = sc.tensor({ 1, 2, 3 }, o), sc.tensor({ 4, 5, 6 }, o)
      assert.are.same({ { 1, 2, 3 }, { 4, 5, 6 } }, sc.stack({ a, b }, 1):totable())
      assert.are.same({ { 1, 4 }, { 2, 5 }, { 3, 6 } }, sc.stack({ a, b }, 2):totable())
      assert.are.same({ { 1, 4 }, { 2, 5 }, { 3, 6 } }, sc.stack({ a, b }, -1):totable())
      local m = sc.arange(4, o):view(2, 2)
      assert.are.same({ 2, 2, 3 }, sc.stack({ m, m:t(), m }, 3):shape())
      assert.are.same({ { { 0, 0 }, { 1, 2 } }, { { 2, 1 }, { 3, 3 } } },
        sc.stack({ m, m:t() }, 3):totable())
    end)

    it("index_select picks 1-based rows, repeats allowed (" .. dt .. ")", function()
      local m = sc.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, o)
      assert.are.same({ { 3, 1, 3 }, { 6, 4, 6 } }, m:index_select(2, { 3, 1, 3 }):totable())
      assert.are.same({ { 4, 5, 6 }, { 4, 5, 6 } }, m:index_select(1, { 2, 2 }):totable())
      assert.are.same({ { 2, 5 }, { 1, 4 } },
        m:t():index_select(1, sc.tensor({ 2, 1 })):totable())
      assert.are.same({ { 3, 1 }, { 6, 4 } }, m:index_select(-1, { 3, 1 }):totable())
      assert.has_error(function() m:index_select(2, { 4 }) end)
      assert.has_error(function() m:index_select(2, { 0 }) end)
    end)
  end
end)

describe("tostring", function()
  it("shows values, shape and dtype", function()
    local s = tostring(sc.tensor({ { 1.5, -2 }, { 3, 4.25 } }))
    assert.truthy(s:find("1.5000", 1, true), s)
    assert.truthy(s:find("-2.0000", 1, true), s)
    assert.truthy(s:find("4.2500", 1, true), s)
    assert.truthy(s:find("float32", 1, true), s)
    assert.truthy(s:find("[2,2]", 1, true), s)
    local d = tostring(sc.tensor({ 7, 8 }, { dtype = "float64" }))
    assert.truthy(d:find("float64", 1, true), d)
    assert.truthy(d:find("7.", 1, true) and d:find("8.", 1, true), d)
    assert.truthy(tostring(sc.tensor(3)):find("3.", 1, true))
  end)

  it("prints a transposed view in its logical order", function()
    local s = tostring(sc.tensor({ { 1, 2 }, { 3, 4 } }):t())
    local a, b, c = s:find("1."), s:find("3."), s:find("2.")
    assert.is_true(a < b and b < c, s)
  end)

  it("elides the middle of a large tensor", function()
    local big = sc.arange(5000)
    local s = tostring(big)
    assert.truthy(s:find("...", 1, true), s)
    assert.truthy(s:find("4999", 1, true), s)
    assert.truthy(s:find("[5000]", 1, true), s)
    assert.falsy(s:find("2500", 1, true), s)
    assert.is_true(#s < 400, #s)
    local m = tostring(sc.zeros(100, 100))
    assert.truthy(m:find("...", 1, true))
    assert.truthy(m:find("[100,100]", 1, true))
    assert.is_true(#m < 1000)
    local small = tostring(sc.arange(10))
    assert.falsy(small:find("...", 1, true), small)
  end)

  it("says when a tensor requires grad", function()
    local x = sc.zeros(2):requires_grad(true)
    assert.truthy(tostring(x):find("requires_grad", 1, true))
    assert.truthy(tostring(x * 2):find("grad_fn", 1, true))
    assert.falsy(tostring(sc.zeros(2)):find("grad", 1, true))
  end)

  it("formats extreme values", function()
    local s = tostring(sc.tensor({ 1e-9, 1e9, 0 }, { dtype = "float64" }))
    assert.truthy(s:find("e-09", 1, true) or s:find("e-9", 1, true), s)
    local n = tostring(sc.tensor({ 0 / 0, math.huge, -math.huge, 1.5 }))
    assert.truthy(n:lower():find("nan", 1, true), n)
    assert.truthy(n:find("inf", 1, true), n)
  end)
end)

describe("float64 precision", function()
  it("keeps 53 bits through views and copies", function()
    local v = 1 + 2 ^ -40
    local t = f64({ { v, 2 }, { 3, 4 } })
    assert.are.equal(v, t:t():contiguous():t()[1][1]:item())
    assert.are.equal(v, t:clone():values()[1])
    assert.are.equal(v, sc.cat({ t, t }, 1):values()[5])
    assert.is_true(close(t:t():values(), { v, 3, 2, 4 }, 0))
  end)
end)
