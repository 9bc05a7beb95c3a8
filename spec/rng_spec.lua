-- Random numbers: the Philox4x32-10 generator against its published
-- known-answer vector, seeded reproducibility (also across processes),
-- independent Generator objects, the same numbers at 1 and 2 threads, and
-- thread-independent reductions.  Distribution moments for 1e5 samples.
local sc = require "scorch"
local H = require "helpers"

local F64 = { dtype = "float64" }

-- Runs fn at 1 and then 2 threads and returns both results; restores the
-- thread count.
local function at_threads(fn)
  local n = sc.get_num_threads()
  sc.set_num_threads(1)
  local ok1, one = pcall(fn)
  sc.set_num_threads(2)
  local ok2, two = pcall(fn)
  sc.set_num_threads(n)
  assert(ok1, one)
  assert(ok2, two)
  return one, two
end

local function assert_identical(a, b, what)
  assert.are.same(a:shape(), b:shape())
  local va, vb = a:values(), b:values()
  for i = 1, #va do
    if va[i] ~= vb[i] then
      error(("%s: element %d differs: %.17g vs %.17g"):format(what or "values", i, va[i], vb[i]), 2)
    end
  end
end

describe("Philox4x32-10", function()
  -- Random123's known-answer test: key 0, counter 0 gives
  -- 6627e8d5 e169c58d bc57ac4c 9b00dbd8.  Block 0 of seed 0 is that output;
  -- float64 uses 53 bits of each word pair, float32 the top 24 bits of the
  -- even words.
  local W = { 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8 }
  local function u53(hi, lo) return ((hi << 21) ~ (lo >> 11)) * 2.0 ^ -53 end

  it("matches the known-answer vector (float64 uniform)", function()
    local x = sc.rand(2, { dtype = "float64", generator = sc.Generator(0) }):values()
    assert.are.equal(u53(W[1], W[2]), x[1])
    assert.are.equal(u53(W[3], W[4]), x[2])
  end)

  it("matches the known-answer vector (float32 uniform)", function()
    local x = sc.rand(2, { generator = sc.Generator(0) }):values()
    assert.are.equal((W[1] >> 8) * 2.0 ^ -24, x[1])
    assert.are.equal((W[3] >> 8) * 2.0 ^ -24, x[2])
  end)

  it("matches the known-answer vector (Box-Muller normal)", function()
    local u1, u2 = 1 - u53(W[1], W[2]), u53(W[3], W[4])
    local r, th = math.sqrt(-2 * math.log(u1)), 2 * math.pi * u2
    local x = sc.randn(2, { dtype = "float64", generator = sc.Generator(0) }):values()
    H.assert_close(x, { r * math.cos(th), r * math.sin(th) }, 1e-15)
  end)
end)

describe("float32 normals in vector lanes", function()
  local core = require "scorch.core"
  -- rng.c computes float32 N(0, 1) values with its own log and sincos and
  -- keeps one only where every double near it rounds to the same float; the
  -- float64 draw is libm's, so rounding it must give the same bits.
  it("equal the float64 draw rounded to float32, bit for bit (2e6 values, three seeds)", function()
    for _, seed in ipairs({ 0, 5, 123456789 }) do
      local a = sc.randn(2000000, { generator = sc.Generator(seed) })
      local b = sc.randn(2000000, { generator = sc.Generator(seed), dtype = "float64" }):float()
      assert.are.equal(0, (a - b):abs():max():item())
    end
  end)

  it("equal libm's alone, at odd sizes and offsets inside a block of lanes", function()
    for _, n in ipairs({ 1, 2, 3, 31, 32, 33, 4097, 20001 }) do
      local g1, g2 = sc.Generator(n), sc.Generator(n)
      sc.randn(n % 7, { generator = g1 }) -- start mid-way through a block of 16
      sc.randn(n % 7, { generator = g2 })
      local was = core._set_randn_lanes(true)
      local a = sc.randn(n, { generator = g1 })
      core._set_randn_lanes(false)
      local b = sc.randn(n, { generator = g2 })
      core._set_randn_lanes(was)
      assert_identical(a, b, "n = " .. n)
    end
  end)
end)

describe("seeding", function()
  for _, dt in ipairs({ "float32", "float64" }) do
    it("the same seed gives the same numbers, another seed others (" .. dt .. ")", function()
      local o = { dtype = dt }
      sc.manual_seed(123)
      local a, b = sc.randn(1000, o), sc.rand(7, 9, o)
      local c = sc.randint(0, 100, { 50 }, o)
      sc.manual_seed(123)
      assert_identical(a, sc.randn(1000, o))
      assert_identical(b, sc.rand(7, 9, o))
      assert_identical(c, sc.randint(0, 100, { 50 }, o))
      sc.manual_seed(124)
      local d = sc.randn(1000, o)
      local same = 0
      for i, v in ipairs(d:values()) do if v == a:values()[i] then same = same + 1 end end
      assert.are.equal(0, same)
    end)
  end

  it("successive draws differ (the counter advances)", function()
    sc.manual_seed(1)
    local a, b = sc.rand(5), sc.rand(5)
    assert.is_false(H.identical(a, b))
    -- an odd-sized draw still moves to fresh blocks
    sc.manual_seed(1)
    local x = sc.rand(3, F64)
    local y = sc.rand(3, F64)
    for _, v in ipairs(y:values()) do
      for _, w in ipairs(x:values()) do assert.are_not.equal(v, w) end
    end
  end)

  it("a draw of n then m equals the state-restored draws", function()
    sc.manual_seed(99)
    local s = sc.get_rng_state()
    local a = sc.randn(10, F64)
    local b = sc.randn(10, F64)
    sc.set_rng_state(s)
    assert_identical(a, sc.randn(10, F64))
    local s2 = sc.get_rng_state()
    assert_identical(b, sc.randn(10, F64))
    sc.set_rng_state(s2)
    assert_identical(b, sc.randn(10, F64))
  end)

  it("is reproducible across processes", function()
    local code = [[
local sc = require "scorch"
sc.manual_seed(2024)
local out = {}
for _, v in ipairs(sc.randn(20, { dtype = "float64" }):values()) do out[#out + 1] = ("%a"):format(v) end
for _, v in ipairs(sc.rand(5):values()) do out[#out + 1] = ("%a"):format(v) end
local g = sc.Generator(7)
for _, v in ipairs(sc.randint(0, 1000, { 5 }, { generator = g }):values()) do out[#out + 1] = ("%a"):format(v) end
print(table.concat(out, " "))
]]
    local out1, ok1 = H.run_lua(code)
    local out2, ok2 = H.run_lua(code)
    assert(ok1 and ok2, out1 .. out2)
    assert.are.equal(out1, out2)
    -- and the same numbers in this process
    sc.manual_seed(2024)
    local here = {}
    for _, v in ipairs(sc.randn(20, F64):values()) do here[#here + 1] = ("%a"):format(v) end
    assert.are.equal(table.concat(here, " "), out1:match("^(%S+" .. (" %S+"):rep(19) .. ")"))
  end)
end)

describe("Generator objects", function()
  it("are independent of the global generator and of each other", function()
    sc.manual_seed(5)
    local g1, g2 = sc.Generator(42), sc.Generator(42)
    local a = sc.randn(100, { dtype = "float64", generator = g1 })
    local global1 = sc.randn(100, F64)
    local b = sc.randn(100, { dtype = "float64", generator = g2 })
    assert_identical(a, b, "two generators with one seed")
    sc.manual_seed(5)
    assert_identical(global1, sc.randn(100, F64), "global after generator draws")
    -- drawing from g1 does not move g2
    sc.randn(1000, { generator = g1 })
    local c2 = sc.randn(10, { dtype = "float64", generator = g2 })
    local g3 = sc.Generator(42)
    sc.randn(100, { dtype = "float64", generator = g3 })
    assert_identical(c2, sc.randn(10, { dtype = "float64", generator = g3 }))
  end)

  it("manual_seed, seed, get_state and set_state", function()
    local g = sc.Generator(3)
    assert.are.equal(3, g:seed())
    local a = sc.rand(4, { generator = g })
    g:manual_seed(3)
    assert_identical(a, sc.rand(4, { generator = g }))
    local st = g:get_state()
    assert.are.same({ 3, 2 }, st) -- 4 values = 2 Philox blocks
    local b = sc.rand(4, { generator = g })
    g:set_state(st)
    assert_identical(b, sc.rand(4, { generator = g }))
    assert.truthy(tostring(g):find("seed=3", 1, true))
  end)

  it("uniform_ and normal_ follow a generator", function()
    local t1, t2 = sc.empty(3, 4, F64), sc.empty(3, 4, F64)
    t1:uniform_(-2, 2, { generator = sc.Generator(8) })
    t2:uniform_(-2, 2, { generator = sc.Generator(8) })
    assert_identical(t1, t2)
    for _, v in ipairs(t1:values()) do assert.is_true(v >= -2 and v < 2) end
    local base = sc.rand(1, { dtype = "float64", generator = sc.Generator(8) })
    H.assert_close(t1:values()[1], -2 + 4 * base:values()[1], 1e-15)
    t1:normal_(10, 0.5, { generator = sc.Generator(9) })
    local z = sc.randn(3, 4, { dtype = "float64", generator = sc.Generator(9) })
    H.assert_close(t1, (z * 0.5 + 10):totable(), 1e-14)
    -- a strided target gets the same values in its logical order
    local s = sc.zeros(4, 3, F64):t()
    s:normal_(10, 0.5, { generator = sc.Generator(9) })
    H.assert_close(s, (z * 0.5 + 10):totable(), 1e-14)
  end)
end)

describe("thread independence", function()
  local N = 300000 -- well above the parallel grain, so both threads work

  for _, dt in ipairs({ "float32", "float64" }) do
    it("random tensors are identical at 1 and 2 threads (" .. dt .. ")", function()
      local o1, o2 = at_threads(function()
        local g = sc.Generator(77)
        local o = { dtype = dt, generator = g }
        return { sc.randn(N, o), sc.rand(N, o), sc.randint(-5, 5, { N }, o),
          sc.empty(N, { dtype = dt }):normal_(1, 2, { generator = g }) }
      end)
      for k = 1, #o1 do assert_identical(o1[k], o2[k], "draw " .. k) end
    end)
  end

  it("normals split at their own smaller grain: odd sizes, a split inside a block", function()
    -- normals go parallel from 4,096 elements (uniforms from 32,768): sizes
    -- around that, odd ones so a thread's range starts inside a Box-Muller pair
    for _, n in ipairs({ 4095, 4096, 4097, 5001, 20000, 20001 }) do
      local a, b = at_threads(function()
        local g = sc.Generator(n)
        return { sc.randn(n, { generator = g }), sc.randn(n, { generator = g, dtype = "float64" }) }
      end)
      assert_identical(a[1], b[1], "float32 n = " .. n)
      assert_identical(a[2], b[2], "float64 n = " .. n)
    end
  end)

  it("the global generator too", function()
    local a, b = at_threads(function()
      sc.manual_seed(31)
      return sc.randn(N)
    end)
    assert_identical(a, b)
  end)

  it("sums of 1e6 elements are bitwise identical at 1 and 2 threads", function()
    local x = sc.randn(1000000, { dtype = "float64", generator = sc.Generator(3) })
    local xf = x:float()
    local r1, r2 = at_threads(function()
      return {
        x:sum(), xf:sum(), x:mean(), x:var(),
        x:view(4, 250000):sum(2), -- long rows, one thread per row
        x:view(2, 500000):sum(2), -- long rows, chunks split across threads
        x:view(1000, 1000):sum(1), -- columns in blocks
        x:view(1000, 1000):t():sum(2), -- a strided reduction
        xf:view(100, 10000):sum(-1, true),
        x:view(1000, 1000):logsumexp(2),
        x:exp(), -- elementwise, split across threads
        x:view(1000, 1000):max(2),
      }
    end)
    for k = 1, #r1 do assert_identical(r1[k], r2[k], "result " .. k) end
    -- and the sum is right: compare with a compensated sum in Lua
    local s, c = 0, 0
    for _, v in ipairs(x:values()) do
      local y = v - c
      local t = s + y
      c = (t - s) - y
      s = t
    end
    H.assert_close(r1[1]:item(), s, 1e-12)
  end)

  it("matmul results agree at 1 and 2 threads", function()
    local a = sc.randn(200, 300, { dtype = "float64", generator = sc.Generator(4) })
    local b = sc.randn(300, 100, { dtype = "float64", generator = sc.Generator(5) })
    local r1, r2 = at_threads(function() return sc.matmul(a, b) end)
    H.assert_close(r1, r2:totable(), 1e-12)
  end)
end)

describe("distributions", function()
  it("randn: mean 0, variance 1, third and fourth moments (1e5 samples)", function()
    local x = sc.randn(100000, { dtype = "float64", generator = sc.Generator(11) })
    local m = x:mean():item()
    local v = x:var():item()
    -- standard errors: 0.0032 (mean), 0.0045 (variance), 0.0077 (skew), 0.015 (kurtosis)
    assert.is_true(math.abs(m) < 0.015, m)
    assert.is_true(math.abs(v - 1) < 0.02, v)
    local skew = ((x - m) ^ 3):mean():item()
    local kurt = ((x - m) ^ 4):mean():item()
    assert.is_true(math.abs(skew) < 0.04, skew)
    assert.is_true(math.abs(kurt - 3) < 0.08, kurt)
  end)

  it("rand: within [0, 1), uniform histogram (1e5 samples)", function()
    for _, dt in ipairs({ "float32", "float64" }) do
      local x = sc.rand(100000, { dtype = dt, generator = sc.Generator(12) })
      assert.is_true(x:min():item() >= 0)
      assert.is_true(x:max():item() < 1)
      local counts = {}
      for _, v in ipairs(x:values()) do
        local b = math.floor(v * 10) + 1
        counts[b] = (counts[b] or 0) + 1
      end
      -- chi-square with 9 degrees of freedom; 27.9 is the 0.999 quantile
      local chi = 0
      for b = 1, 10 do chi = chi + ((counts[b] or 0) - 10000) ^ 2 / 10000 end
      assert.is_true(chi < 27.9, chi)
    end
  end)

  it("float32 rand never rounds up to 1", function()
    local x = sc.rand(1000000, { generator = sc.Generator(13) })
    assert.is_true(x:max():item() < 1)
  end)
end)
