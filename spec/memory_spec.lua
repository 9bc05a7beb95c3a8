-- Memory: tensors dropped in a loop are freed without the caller running
-- the collector.  The core tells Lua's collector about the bytes it holds;
-- without that, Lua would see only 8-byte userdata and let 1 MB tensors pile
-- up.  Resident memory (VmRSS) and the core's own count must stay flat.
local sc = require "scorch"

local MB = 1024 * 1024

-- The start of each fresh interpreter's script below: scorch and the
-- process's resident memory in KB.
local PRELUDE = [[
local sc = require "scorch"
local function rss_kb()
  for line in io.lines("/proc/self/status") do
    local v = line:match("^VmRSS:%s+(%d+)")
    if v then return tonumber(v) end
  end
end
]]

-- Runs script (after PRELUDE) in a fresh interpreter; it prints "BYTES0 b
-- PEAK p", the core's bytes before its loop and their peak in it.
local function core_growth(script)
  local out, ok = require("helpers").run_lua(PRELUDE .. script)
  assert(ok, out)
  local bytes0, peak = out:match("BYTES0 (%d+) PEAK (%d+)")
  assert(bytes0, out)
  return tonumber(bytes0), tonumber(peak)
end

describe("memory", function()
  -- In a fresh interpreter, as the test below and for the same reason: the
  -- collector's pace follows the Lua heap, and inside busted the core's peak
  -- grew with the number of spec files loaded before this one (256.5 MB
  -- once the suite reached 1,890 specs, against 245 MB before).
  it("100,000 dropped 1 MB tensors keep resident memory flat, no collectgarbage", function()
    local out, ok = require("helpers").run_lua(PRELUDE .. [[
for _ = 1, 1000 do local _ = sc.zeros(262144) end -- warm-up
local rss0, bytes0 = rss_kb(), sc.bytes_in_use()
local peak = bytes0
local t0 = sc.time()
for _ = 1, 100000 do
  local _ = sc.zeros(262144) -- 1 MB of float32, dropped at once
  local b = sc.bytes_in_use()
  if b > peak then peak = b end
end
print(("GROWN %.3f PEAK %d BYTES0 %d BYTES1 %d SECS %.1f"):format((rss_kb() - rss0) / 1024, peak, bytes0,
  sc.bytes_in_use(), sc.time() - t0))
]])
    assert(ok, out)
    local grown, peak, bytes0, bytes1, secs =
      out:match("GROWN ([%d.-]+) PEAK (%d+) BYTES0 (%d+) BYTES1 (%d+) SECS ([%d.]+)")
    assert(grown, out)
    grown, peak, bytes0, bytes1 = tonumber(grown), tonumber(peak), tonumber(bytes0), tonumber(bytes1)
    -- 100,000 MB were allocated in all; a leak would show as gigabytes.
    -- Under the sanitizers ASan's quarantine keeps up to 256 MB of freed
    -- blocks, so resident memory says nothing there; the core's count and
    -- LeakSanitizer check for leaks
    if not os.getenv("SCORCH_SANITIZED") then
      assert.is_true(grown < 50, ("resident memory grew by %.1f MB"):format(grown))
    end
    assert.is_true(peak < 256 * MB, ("core held up to %.1f MB"):format(peak / MB))
    assert.is_true(bytes1 < bytes0 + 256 * MB)
    print(("\n  memory: 100000 x 1 MB in %s s, RSS %+.1f MB, peak core bytes %.1f MB")
      :format(secs, grown, peak / MB))
  end)

  -- In a fresh interpreter: the collector's pace follows the size of the Lua
  -- heap (binding.c lets core bytes grow to 16x it before a full collection),
  -- and inside busted that heap holds every spec file loaded before this one.
  it("training-like loops (graphs, views, grads) stay flat too", function()
    local out, ok = require("helpers").run_lua(PRELUDE .. [[
local w = sc.randn(128, 128):requires_grad(true)
local function step()
  local x = sc.randn(64, 128)
  local y = sc.matmul(x, w):tanh():t():contiguous()
  local loss = (y * y):mean()
  loss:backward()
  sc.no_grad(function() w:add_(w.grad, -1e-3) end)
  w.grad = nil
end
-- warm up until the collector's pace is steady, then measure
for _ = 1, 2000 do step() end
local rss0, bytes0 = rss_kb(), sc.bytes_in_use()
for _ = 1, 6000 do step() end
print(("GROWN %.3f BYTES0 %d BYTES1 %d"):format((rss_kb() - rss0) / 1024, bytes0, sc.bytes_in_use()))
]])
    assert(ok, out)
    local grown, bytes0, bytes1 = out:match("GROWN ([%d.-]+) BYTES0 (%d+) BYTES1 (%d+)")
    assert(grown, out)
    grown, bytes0, bytes1 = tonumber(grown), tonumber(bytes0), tonumber(bytes1)
    -- under AddressSanitizer freed blocks wait in its quarantine (up to 256 MB)
    -- before reuse, so resident memory says nothing there; LeakSanitizer and
    -- the core's own count still check for leaks
    if not os.getenv("SCORCH_SANITIZED") then
      assert.is_true(grown < 50, ("resident memory grew by %.1f MB"):format(grown))
    end
    assert.is_true(bytes1 < bytes0 + 128 * MB,
      ("core bytes grew from %.1f to %.1f MB"):format(bytes0 / MB, bytes1 / MB))
  end)

  -- The binding first tries a young collection, which frees only tensors
  -- that died young; these die old (each lives through 64 MB of others,
  -- so through many collections), which only the full collection that
  -- follows a young one that did not free enough can free.  A ring of 64
  -- live 1 MB tensors: the core must stay near the live set, not grow by
  -- a megabyte a step (the loop stops at 1 GB instead of exhausting memory).
  it("tensors that die old are freed too (the young collection's fallback)", function()
    local bytes0, peak = core_growth([[
local ring, peak = {}, 0
for i = 1, 64 do ring[i] = sc.zeros(262144) end
local bytes0 = sc.bytes_in_use()
for i = 1, 20000 do
  ring[i % 64 + 1] = sc.zeros(262144)
  local b = sc.bytes_in_use()
  if b > peak then peak = b end
  if b > 1024 * 1024 * 1024 then break end
end
print(("BYTES0 %d PEAK %d"):format(bytes0, peak))
]])
    assert.is_true(peak - bytes0 < 128 * MB,
      ("core bytes grew from %.1f to %.1f MB"):format(bytes0 / MB, peak / MB))
  end)

  -- Young collections must not wait on the Lua heap: a full collection
  -- that runs while 24 MB of Lua tables are live (a figure being drawn,
  -- say) made the next threshold 16 x that, and tensors that die young
  -- then piled up by hundreds of megabytes (binding.c, pay_debt).  Here
  -- the tables die after such a collection, and 2,000 tensors of 1 MB are
  -- made and dropped one by one: the core must stay near its live set.
  it("a large Lua heap does not hold back the young collections", function()
    local bytes0, peak = core_growth([[
local big = {}
for i = 1, 400000 do big[i] = { i } end -- about 24 MB of Lua tables
local ring = {}
for i = 1, 40 do ring[i] = sc.zeros(262144) end -- 40 MB of tensors kept: full collections run
for i = 1, 40 do ring[i] = sc.zeros(262144) end
big = nil
local bytes0, peak = sc.bytes_in_use(), 0
for i = 1, 2000 do
  local t = sc.zeros(262144) -- 1 MB, dead at once
  local b = sc.bytes_in_use()
  if b > peak then peak = b end
end
print(("BYTES0 %d PEAK %d"):format(bytes0, peak))
]])
    assert.is_true(peak - bytes0 < 32 * MB,
      ("core bytes grew from %.1f to %.1f MB"):format(bytes0 / MB, peak / MB))
  end)

  -- Freed big blocks serve later requests of other sizes (tensor.c): a
  -- loop over 40 sizes from 1.5 to 60 MB, each tensor dropped at once, kept
  -- a cached block of every size before (about 1 GB resident).  Each tensor
  -- is filled and summed, so a block grown or shrunk to the wrong length
  -- shows as a wrong sum or a crash.
  it("tensors of many sizes reuse each other's blocks: resident memory follows the live set", function()
    local out, ok = require("helpers").run_lua(PRELUDE .. [[
local rss0, bad = rss_kb(), 0
for round = 1, 3 do
  for i = 1, 40 do
    local k = (i * 17 + round) % 40 + 1 -- every size once a round, in a shuffled order
    local n = k * 393216                -- k x 1.5 MB of float32
    local t = sc.full({ n }, k)
    if t:sum():item() ~= n * k then bad = bad + 1 end
  end
end
print(("GROWN %.1f BAD %d"):format((rss_kb() - rss0) / 1024, bad))
]])
    assert(ok, out)
    local grown, bad = out:match("GROWN ([%d.-]+) BAD (%d+)")
    assert(grown, out)
    assert.are.equal(0, tonumber(bad))
    if not os.getenv("SCORCH_SANITIZED") then -- ASan's build keeps malloc's blocks
      assert.is_true(tonumber(grown) < 400, ("resident memory grew by %s MB"):format(grown))
    end
  end)

  it("bytes_in_use counts allocations and releases them", function()
    collectgarbage()
    collectgarbage()
    local b0 = sc.bytes_in_use()
    local t = sc.zeros(1024, 1024, { dtype = "float64" }) -- 8 MB
    assert.is_true(sc.bytes_in_use() - b0 >= 8 * MB)
    local v = t:t():narrow(1, 1, 10) -- luacheck: ignore (views share the storage)
    assert.is_true(sc.bytes_in_use() - b0 < 8 * MB + 4096)
    t = nil -- luacheck: ignore
    collectgarbage()
    assert.is_true(sc.bytes_in_use() - b0 >= 8 * MB, "storage freed while a view holds it")
    v = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    assert.is_true(sc.bytes_in_use() - b0 < MB, "storage not freed")
  end)

  -- Tensors carry no __gc: the allocator releases a tensor when Lua frees
  -- its userdata (csrc/lua/binding.c).  These pin down what __gc gave.
  describe("release by the collector", function()
    local function settle()
      collectgarbage()
      collectgarbage()
    end

    it("releases tiny, small and large tensors and their graphs", function()
      settle()
      local b0 = sc.bytes_in_use()
      for _, n in ipairs({ 1, 16, 17, 1000, 300000 }) do
        for _ = 1, 200 do
          local a = sc.randn(n):requires_grad(true)
          local y = (a * a + a):tanh():sum() -- a graph holding saved tensors
          assert.is_true(y:item() == y:item())
        end
      end
      local peak = sc.bytes_in_use() - b0
      settle()
      assert.are.equal(0, sc.bytes_in_use() - b0,
                       ("%d bytes held after collection (peak %d)"):format(
                         sc.bytes_in_use() - b0, peak))
    end)

    it("keeps a tensor alive for the finalizer of a table that holds it", function()
      settle()
      local seen
      do
        local t = sc.full({ 4 }, 2.5)
        setmetatable({ t = t }, { __gc = function(o) seen = o.t:sum():item() end })
      end
      settle()
      assert.are.equal(10, seen)
      settle()
    end)

    it("clears a tensor from a weak table once collected", function()
      local weak = setmetatable({}, { __mode = "v" })
      weak[1] = sc.ones(8)
      local kept = sc.ones(8)
      weak[2] = kept
      settle()
      assert.is_nil(weak[1])
      assert.are.equal(kept, weak[2])
    end)

    it("does not take other userdata of a tensor's size for tensors", function()
      local g = sc.Generator(1)
      assert.is_false(sc.is_tensor(g))
      assert.is_false(sc.is_tensor(io.stdout))
      assert.has_error(function() return sc.ones(2) + g end)
    end)

    it("closes a tensor once, by <close> or by hand, then collects it", function()
      settle()
      local b0 = sc.bytes_in_use()
      do
        local t <close> = sc.zeros(1000) -- luacheck: ignore
      end
      assert.are.equal(0, sc.bytes_in_use() - b0)
      local u = sc.zeros(1000)
      getmetatable(u).__close(u)
      assert.are.equal(0, sc.bytes_in_use() - b0)
      getmetatable(u).__close(u) -- a second close is harmless
      u = nil -- luacheck: ignore
      settle()
      assert.are.equal(0, sc.bytes_in_use() - b0)
    end)

    it("has no finalizer on the tensor metatable", function()
      assert.is_nil(getmetatable(sc.ones(1)).__gc)
    end)
  end)
end)
