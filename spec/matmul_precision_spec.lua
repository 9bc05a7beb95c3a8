-- sc.set_matmul_precision: "medium" lets no-graph float32 narrow linear
-- layers multiply bfloat16-rounded inputs and weights (AVX512-BF16) with
-- float32 sums.  Checked against a float64 product of the operands rounded
-- to bfloat16 here in Lua, so the spec would see a wrong rounding, a lost
-- pair or a float32 product passed off as bfloat16.
local sc = require "scorch"
local core = sc.core

local HAS_BF16 = core.cpu_has_bf16()

-- v rounded to the nearest bfloat16 (ties to even), from its float32 bits
local function bf16(v)
  local u = string.unpack("<I4", string.pack("<f", v))
  u = u + 0x7fff + ((u >> 16) & 1)
  return string.unpack("<f", string.pack("<I4", (u >> 16) << 16 & 0xffffffff))
end

-- float64 reference of silu?(x W^T + b) from the operands' bfloat16 values
local function reference(x, w, b, silu)
  local X, W = x:double():totable(), w:double():totable()
  local n, m, k = #X, #W, #X[1]
  for i = 1, n do for p = 1, k do X[i][p] = bf16(X[i][p]) end end
  for j = 1, m do for p = 1, k do W[j][p] = bf16(W[j][p]) end end
  local y = {}
  for i = 1, n do
    local r = {}
    for j = 1, m do
      local s = b and b[j]:item() or 0
      for p = 1, k do s = s + X[i][p] * W[j][p] end
      if silu then s = s / (1 + math.exp(-s)) end
      r[j] = s
    end
    y[i] = r
  end
  return sc.tensor(y, { dtype = "float64" })
end

local function max_diff(a, b) return (a:to("float64") - b:to("float64")):abs():max():item() end

describe("sc.set_matmul_precision", function()
  local saved_p, saved_t
  before_each(function()
    saved_p, saved_t = sc.get_matmul_precision(), sc.get_num_threads()
  end)
  after_each(function()
    sc.set_matmul_precision(saved_p)
    sc.set_num_threads(saved_t)
  end)

  it("is \"highest\" by default and returns the setting before", function()
    assert.are.equal("highest", sc.get_matmul_precision())
    assert.are.equal("highest", sc.set_matmul_precision("medium"))
    assert.are.equal("medium", sc.get_matmul_precision())
    assert.are.equal("medium", sc.set_matmul_precision("highest"))
  end)

  it("rejects other names, listing the valid ones, and keeps the setting", function()
    sc.set_matmul_precision("medium")
    local ok, msg = pcall(sc.set_matmul_precision, "bf16")
    assert.is_false(ok)
    assert.truthy(msg:find("set_matmul_precision", 1, true) and msg:find("highest, medium", 1, true), msg)
    assert.are.equal("medium", sc.get_matmul_precision())
  end)

  it("under \"medium\": a layer's products are bfloat16 operands summed in float32", function()
    sc.set_num_threads(1)
    local g = sc.Generator(11)
    -- k = 37: odd (a zero-padded last pair), above the 16-input floor;
    -- m = 45: a pair of 16-column panels and a ragged one; n = 29: ragged row blocks
    local x = sc.randn({ 29, 37 }, { generator = g })
    local w = sc.randn({ 45, 37 }, { generator = g }) * (1 / math.sqrt(37))
    local b = sc.randn({ 45 }, { generator = g })
    sc.set_matmul_precision("medium")
    local y = sc.no_grad(function() return sc.linear(x, w, b) end)
    local ys = sc.no_grad(function() return sc.linear(x, w, b, "silu") end)
    sc.set_matmul_precision("highest")
    local y32 = sc.no_grad(function() return sc.linear(x, w, b) end)
    local exact = sc.linear(x:to("float64"), w:to("float64"), b:to("float64"))
    if HAS_BF16 then
      local ref = reference(x, w, b, false)
      -- float32 sums of 37 exact products: a few float32 ulp
      assert.is_true(max_diff(y, ref) < 2e-5, "against bfloat16 operands: " .. max_diff(y, ref))
      assert.is_true(max_diff(ys, reference(x, w, b, true)) < 2e-5)
      -- and the operands did lose their bits: far from the float32 product
      assert.is_true(max_diff(y, exact) > 1e-3, "no bfloat16 rounding seen: " .. max_diff(y, exact))
      assert.is_true(max_diff(y, exact) < 0.05)
    else -- no AVX512-BF16: the float32 numbers
      assert.are.equal(0, max_diff(y, y32))
    end
    assert.is_true(max_diff(y32, exact) < 1e-5)
  end)

  it("under \"medium\": a strided input and no bias give the same products", function()
    local g = sc.Generator(14)
    local xt = sc.randn({ 40, 21 }, { generator = g }) -- x = xt:t(), [21, 40] read down columns
    local w = sc.randn({ 18, 40 }, { generator = g }) * (1 / math.sqrt(40))
    sc.set_matmul_precision("medium")
    local y = sc.no_grad(function() return sc.linear(xt:t(), w) end)
    local yc = sc.no_grad(function() return sc.linear(xt:t():contiguous(), w) end)
    assert.are.equal(0, max_diff(y, yc))
    if HAS_BF16 then
      assert.is_true(max_diff(y, reference(xt:t():contiguous(), w, nil, false)) < 2e-5)
    end
  end)

  it("under \"medium\": nn.Sequential chains, the same bits at 1 and 2 threads", function()
    local g = sc.Generator(12)
    local net = sc.nn.Sequential { sc.nn.Linear(3, 64), sc.nn.SiLU(), sc.nn.Linear(64, 64), sc.nn.SiLU(),
      sc.nn.Linear(64, 2) }
    sc.no_grad(function()
      for _, p in ipairs(net:parameters()) do p:copy_(sc.randn(p:shape(), { generator = g }) * 0.3) end
    end)
    local x = sc.randn({ 1000, 3 }, { generator = g })
    sc.set_matmul_precision("medium")
    sc.set_num_threads(1)
    local one = sc.no_grad(function() return net(x) end)
    sc.set_num_threads(2)
    local two = sc.no_grad(function() return net(x) end)
    assert.are.equal(0, max_diff(one, two))
    -- the chain equals its layers one by one under the same setting
    local h = x
    sc.no_grad(function()
      h = sc.linear(h, net[1].weight, net[1].bias, "silu")
      h = sc.linear(h, net[3].weight, net[3].bias, "silu")
      h = sc.linear(h, net[5].weight, net[5].bias)
    end)
    assert.are.equal(0, max_diff(one, h))
    sc.set_matmul_precision("highest")
    local full = sc.no_grad(function() return net(x) end)
    if HAS_BF16 then
      -- about 2^-8 of the output's scale, through three layers
      local d, scale = max_diff(one, full), full:abs():max():item()
      assert.is_true(d > 0 and d < 0.01 * scale, ("bfloat16 chain against float32: %g of %g"):format(d, scale))
    else
      assert.are.equal(0, max_diff(one, full))
    end
  end)

  it("leaves training, narrow inputs and float64 as they are", function()
    local g = sc.Generator(13)
    local x = sc.randn({ 50, 40 }, { generator = g })
    local w = sc.randn({ 20, 40 }, { generator = g }):requires_grad(true)
    local b = sc.randn({ 20 }, { generator = g }):requires_grad(true)
    local x3 = sc.randn({ 50, 3 }, { generator = g })
    local w3 = sc.randn({ 20, 3 }, { generator = g })
    local function run()
      w.grad, b.grad = nil, nil
      local y = sc.linear(x, w, b, "silu")          -- a graph is recorded: float32
      y:square():sum():backward()
      local narrow = sc.no_grad(function() return sc.linear(x3, w3) end) -- 3 inputs: float32
      local y64 = sc.no_grad(function() return sc.linear(x:double(), w:detach():double()) end)
      return y:detach(), w.grad, b.grad, narrow, y64
    end
    local a = table.pack(run())
    sc.set_matmul_precision("medium")
    local c = table.pack(run())
    for i = 1, a.n do assert.are.equal(0, max_diff(a[i], c[i]), "result " .. i) end
  end)
end)
