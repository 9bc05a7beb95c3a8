-- The thread pool on a shared machine (csrc/core/pool.c, issue 22): no
-- thread uses CPU it should not, idle workers sleep, the pool notices other
-- processes, and the numbers do not depend on the thread count or on how
-- the threads wait.
local sc = require "scorch"

local EXE = os.getenv("SCORCH_BIN") or "bin/scorch"

-- Runs Lua code in a fresh host process; returns its stdout.
local function host(code, env)
  local f = assert(io.open(os.tmpname(), "w"))
  local path = os.tmpname()
  f:close()
  f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  local p = io.popen((env or "") .. " '" .. EXE .. "' '" .. path .. "' 2>&1")
  local out = p:read("a")
  p:close()
  os.remove(path)
  return out
end

local function numbers(out)
  local t = {}
  for v in out:gmatch("([%-%d%.e]+)") do t[#t + 1] = tonumber(v) end
  return t
end

local function nproc()
  local p = io.popen("nproc 2>/dev/null")
  local n = tonumber(p:read("a"))
  p:close()
  return n or 1
end

describe("the thread pool", function()
  it("at 1 thread uses no more CPU than wall time over a loop that starts at load", function()
    -- os.clock is the process's CPU time (every thread); one thread can
    -- use at most the wall time, so any excess is a second thread spinning
    -- (OpenBLAS's own workers spun for 0.1 s after start before the host
    -- loaded it single-threaded)
    local out = host([[
      sc.set_num_threads(1)
      local x, w = sc.randn(256, 256), sc.randn(4, 3, 3, 3)
      local img = sc.randn(8, 3, 16, 16)
      local c0, t0 = os.clock(), sc.time()
      repeat
        local y = (x:matmul(x) + 1):tanh():sum()
        local z = sc.conv2d(img, w, nil, { padding = 1 }):sum()
      until sc.time() - t0 > 0.6
      print(os.clock() - c0, sc.time() - t0)
    ]])
    local v = numbers(out)
    assert.are.equal(2, #v, out)
    local cpu, wall = v[1], v[2]
    assert.is_true(cpu <= 1.02 * wall, ("CPU %.3f s over %.3f s wall"):format(cpu, wall))
  end)

  it("lets idle workers sleep: 2 threads after parallel work use no CPU while waiting", function()
    -- the workers spin at most a millisecond after the last kernel, then
    -- sleep; os.execute waits in the kernel, so the process's CPU time over
    -- it is what the workers used
    local out = host([[
      sc.set_num_threads(2)
      local x = sc.randn(512, 512)
      for _ = 1, 5 do x = x:matmul(x):tanh() end
      local c0 = os.clock()
      os.execute("sleep 0.5")
      print(os.clock() - c0, sc.core.pool_stats().workers)
    ]])
    local v = numbers(out)
    assert.are.equal(2, #v, out)
    assert.are.equal(1, v[2], "one worker beside the caller at 2 threads")
    assert.is_true(v[1] < 0.02, ("idle CPU %.4f s over 0.5 s"):format(v[1]))
  end)

  it("sees other processes that take the cores, and then sleeps instead of spinning", function()
    local n = nproc()
    if n > 8 then
      pending("more than 8 cores: saturating them for the check is not worth it")
      return
    end
    -- as many busy processes as cores, for about 2 s
    local pids = {}
    for _ = 1, n do
      local p = io.popen("sh -c 'timeout 5 sh -c \"while :; do :; done\" >/dev/null 2>&1 & echo $!'")
      pids[#pids + 1] = p:read("l")
      p:close()
    end
    local ok, out = pcall(host, [[
      sc.set_num_threads(2)
      local x = sc.randn(256, 256)
      local t0 = sc.time()
      repeat x = x:matmul(x):tanh() until sc.time() - t0 > 0.8
      local st = sc.core.pool_stats()
      print(st.contended and 1 or 0, st.others_cores)
    ]])
    for _, pid in ipairs(pids) do os.execute("kill " .. pid .. " 2>/dev/null") end
    assert(ok, out)
    local v = numbers(out)
    assert.are.equal(2, #v, out)
    assert.are.equal(1, v[1], "not seen as contended beside " .. n .. " busy processes: " .. out)
    -- (they share the cores with this process's two threads)
    assert.is_true(v[2] > 0.35, "others' load " .. tostring(v[2]))
  end)

  it("gives the same bits at 1 and 2 threads and under every waiting policy", function()
    local function step(threads, policy)
      sc.set_num_threads(threads)
      local old = sc.core.set_wait_policy(policy)
      local g = sc.Generator(3)
      local net = sc.models.NCSN { channels = 8, blocks = 1, generator = g }
      local x = sc.randn({ 16, 1, 28, 28 }, { generator = g })
      local sigma = sc.full({ 16 }, 0.5)
      local loss = (net(x, sigma) ^ 2):mean()
      loss:backward()
      local out = { loss:item() }
      for _, p in ipairs(net:parameters()) do out[#out + 1] = p.grad:sum():item() end
      sc.core.set_wait_policy(old)
      sc.set_num_threads(1)
      return out
    end
    local ref = step(1, "auto")
    assert.are.same(ref, step(2, "auto"))
    assert.are.same(ref, step(2, "spin"))
    assert.are.same(ref, step(2, "sleep"))
  end)

  it("rejects an unknown waiting policy", function()
    assert.has_error(function() sc.core.set_wait_policy("busy") end)
    assert.are.equal("auto", sc.core.set_wait_policy("auto"))
  end)
end)
