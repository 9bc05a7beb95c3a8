-- sc.dist against closed forms and against itself: collectives on values
-- whose sums are known, shards that partition each global batch, and data
-- -parallel training on 2 ranks (under `mpirun -np 2`) against the same
-- global batches on 1 rank; samples that do not depend on the world size;
-- a rank that dies ends the job within seconds.  The mpirun part is
-- skipped, with the reason, when mpirun or the MPI module is missing.
local sc = require "scorch"
local H = require "helpers"

local EXE = os.getenv("SCORCH_BIN") or "bin/scorch"
local quote = H.quote

-- ---- running children --------------------------------------------------------------------

local function have(cmd)
  local p = io.popen("command -v " .. cmd .. " 2>/dev/null")
  local out = p:read("a")
  p:close()
  return out ~= ""
end

-- Why the mpirun specs cannot run here, or nil.
local function mpi_missing()
  if not have("mpirun") then
    return "mpirun not found (Debian's openmpi-bin; scripts/bootstrap.sh installs it)"
  end
  if not package.searchpath("scorch.dist_mpi", package.cpath) then
    return "the MPI module scorch.dist_mpi is not built (needs mpicc from libopenmpi-dev; "
      .. "the sanitizer build never builds it)"
  end
  if not have("timeout") then return "timeout(1) not found" end
  return nil
end

-- mpirun's options: Open MPI refuses more ranks than cores without
-- --oversubscribe and root without --allow-run-as-root; MPICH's mpirun
-- (hydra) knows neither and needs neither.
local function mpirun_cmd(np)
  local p = io.popen("mpirun --version 2>&1")
  local version = p:read("a")
  p:close()
  local cmd = "mpirun -np " .. np
  if version:match("Open MPI") or version:match("OpenRTE") then
    cmd = cmd .. " --oversubscribe"
    local id = io.popen("id -u")
    if id:read("a"):match("^0") then cmd = cmd .. " --allow-run-as-root" end
    id:close()
    cmd = cmd .. " -x LUA_PATH -x LUA_CPATH"
  end
  return cmd
end

-- Runs a spec/support script on np ranks (np = 0: without mpirun), bounded
-- by `limit` seconds; returns its output (stdout and stderr), the exit
-- code and the wall time.
local function run(np, script, args, limit)
  local env = ("LUA_PATH=%s LUA_CPATH=%s"):format(quote(os.getenv("LUA_PATH") or "./lua/?.lua;./lua/?/init.lua;;"),
    quote(os.getenv("LUA_CPATH") or "./lib/?.so;;"))
  local launcher = np > 0 and mpirun_cmd(np) .. " " or ""
  local cmd = ("%s timeout -k 5 %d %s%s %s %s 2>&1"):format(env, limit or 60, launcher, quote(EXE),
    quote("spec/support/" .. script), table.concat(args or {}, " "))
  local t0 = sc.time()
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local _, _, code = p:close()
  return out, code, sc.time() - t0
end

local function read_floats(path)
  local out = {}
  for line in io.lines(path) do
    if line == "stats" then out.stats_at = #out + 1 else out[#out + 1] = tonumber(line) end
  end
  return out
end

local function max_abs_diff(a, b)
  assert.are.equal(#a, #b)
  local m = 0
  for i = 1, #a do m = math.max(m, math.abs(a[i] - b[i])) end
  return m
end

-- ---- the world of one (always) ------------------------------------------------------------

describe("sc.dist in a world of one", function()
  local d = sc.dist

  it("starts the self backend without mpirun: rank 0 of 1", function()
    if d.launched() then pending("this process runs under mpirun"); return end
    local rank, size = d.init()
    assert.are.equal(0, rank)
    assert.are.equal(1, size)
    assert.are.equal("self", d.backend())
    assert.is_true(d.is_main())
    assert.has_error(function() d.init { backend = "mpi" } end,
      'scorch.dist.init: the world is already started with backend "self", not "mpi"')
    assert.has_error(function() d.init { backend = "tcp" } end)
    assert.has_error(function() d.init { timeout = -1 } end)
    assert.has_error(function() d.init { nodes = 2 } end)
  end)

  it("keeps values through all_reduce and broadcast, copies through all_gather", function()
    local t = sc.tensor({ 1.5, -2, 3 })
    assert.are.equal(t, d.all_reduce(t))
    assert.are.same({ 1.5, -2, 3 }, t:values())
    d.all_reduce(t, { op = "max" })
    assert.are.same({ 1.5, -2, 3 }, d.broadcast(t, 0):values())
    local g = d.all_gather(sc.tensor({ { 1, 2 }, { 3, 4 } }, { dtype = "float64" }))
    assert.are.same({ 2, 2 }, g:shape())
    assert.are.equal("float64", g:dtype())
    assert.are.same({ 1, 2, 3, 4 }, g:values())
    assert.are.same({ 1 }, d.all_gather(sc.tensor(7)):shape())
    -- a non-contiguous view is reduced through a copy and written back
    local base = sc.arange(0, 6):view(2, 3)
    d.all_reduce(base:t())
    assert.are.same({ 0, 1, 2, 3, 4, 5 }, base:values())
    d.barrier()
  end)

  it("rejects bad arguments naming the function", function()
    assert.has_error(function() d.all_reduce({ 1, 2 }) end,
      "scorch.dist.all_reduce: bad argument #1 (expected a tensor, got table)")
    assert.has_error(function() d.all_reduce(sc.zeros(2), { op = "prod" }) end,
      'scorch.dist.all_reduce: op must be "sum", "max" or "min" (got prod)')
    assert.has_error(function() d.all_reduce(sc.zeros(2), { average = true }) end,
      "scorch.dist.all_reduce: unknown option 'average' (valid: op)")
    assert.has_error(function() d.broadcast(sc.zeros(2), 1) end,
      "scorch.dist.broadcast: root must be a rank from 0 to 0 (got 1)")
    assert.has_error(function() d.all_gather(nil) end)
    local w = sc.zeros(2):requires_grad(true)
    assert.has_error(function() d.all_reduce(w) end,
      "scorch.dist.all_reduce: in-place change of a tensor that requires grad; "
      .. "wrap it in sc.no_grad or detach it first")
    sc.no_grad(function() d.broadcast(w, 0) end)
  end)

  it("says how to get MPI when mpirun's environment asks for it and the module is missing", function()
    -- a module path holding core.so and dist_self.so but no dist_mpi.so
    local core = package.searchpath("scorch.core", package.cpath)
    local self_so = package.searchpath("scorch.dist_self", package.cpath)
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute(("mkdir -p %s/scorch && ln -s %s %s %s/scorch/"):format(quote(dir), quote(core),
      quote(self_so), quote(dir))))
    local script = dir .. "/init.lua"
    local f = assert(io.open(script, "w"))
    f:write('local sc = require "scorch"\nsc.dist.init()\n')
    f:close()
    -- plain lua5.4 (the host would put its own lib/ first)
    local cmd = ("OMPI_COMM_WORLD_SIZE=2 LUA_PATH=%s LUA_CPATH=%s %s %s 2>&1"):format(
      quote(os.getenv("LUA_PATH") or "./lua/?.lua;./lua/?/init.lua;;"), quote(dir .. "/?.so"), quote(H.lua()),
      quote(script))
    local p = io.popen(cmd)
    local out = p:read("a")
    local ok = p:close()
    os.execute("rm -rf " .. quote(dir))
    assert.is_falsy(ok)
    assert.matches("scorch.dist.init: MPI was asked for %(OMPI_COMM_WORLD_SIZE=2%), but this scorch has no "
      .. "MPI backend", out)
    assert.matches("libopenmpi%-dev", out)
    assert.not_matches("Segmentation", out)
  end)

  it("derives seeds with SplitMix64: fixed values, distinct per item", function()
    assert.are.equal(d.seed_for(1, 2), d.seed_for(1, 2))
    local seen = {}
    for k = 0, 999 do
      local s = d.seed_for(123, k)
      assert.is_nil(seen[s])
      seen[s] = true
    end
    assert.are_not.equal(d.seed_for(1, 2), d.seed_for(2, 2))
    -- SplitMix64's first output for state 0 + golden gamma (its reference value)
    assert.are.equal(math.tointeger(0xe220a8397b1dcdaf), d.seed_for(0, 0))
    assert.has_error(function() d.seed_for(1.5, 2) end)
  end)
end)

describe("sc.dist.ShardedSampler", function()
  local d = sc.dist

  it("splits every global batch of a seeded permutation into disjoint shards in rank order", function()
    local n, B = 100, 12
    for _, size in ipairs({ 1, 2, 3, 4 }) do
      local shards = {}
      for r = 0, size - 1 do shards[r] = d.ShardedSampler(n, B, { seed = 9, rank = r, size = size }) end
      local epoch_rows = {}
      for step = 1, 8 do -- 8 steps per epoch: the whole of epoch 1
        local joined, wsum = {}, 0
        for r = 0, size - 1 do
          local idx, w = shards[r]:indices(step)
          assert.are.equal(B // size, #idx)
          wsum = wsum + w
          for _, i in ipairs(idx) do joined[#joined + 1] = i end
        end
        assert.is_true(math.abs(wsum - 1) < 1e-15)
        -- the same global batch whatever the world size
        assert.are.same(d.ShardedSampler(n, B, { seed = 9, size = 1 }):global_indices(step), joined)
        for _, i in ipairs(joined) do
          assert.is_nil(epoch_rows[i], "row drawn twice in one epoch")
          epoch_rows[i] = true
        end
      end
      local count = 0
      for _ in pairs(epoch_rows) do count = count + 1 end
      assert.are.equal(96, count)
    end
    local s = d.ShardedSampler(n, B, { seed = 9, size = 1 })
    assert.are.equal(8, s:steps_per_epoch())
    assert.are.equal(2 * 12 + 2 * 3, d.ShardedSampler(n, B, { rank = 2, size = 4 }):offset(3))
    assert.are_not.same(s:global_indices(1), s:global_indices(9)) -- epoch 2 reshuffles
    assert.are_not.same(s:global_indices(1), d.ShardedSampler(n, B, { seed = 10, size = 1 }):global_indices(1))
  end)

  it("refuses a global batch the world size does not divide, unless uneven", function()
    assert.has_error(function() d.ShardedSampler(100, 10, { size = 3 }) end,
      "scorch.dist.ShardedSampler: a global batch of 10 does not split evenly over 3 ranks; pick a multiple "
      .. "of 3, or pass {uneven = true} (the first 1 ranks then take 4 rows, the others 3)")
    local counts, weights = {}, 0
    for r = 0, 2 do
      local idx, w = d.ShardedSampler(100, 10, { size = 3, rank = r, uneven = true }):indices(1)
      counts[r + 1], weights = #idx, weights + w
    end
    assert.are.same({ 4, 3, 3 }, counts)
    assert.is_true(math.abs(weights - 1) < 1e-15)
    assert.has_error(function() d.ShardedSampler(10, 11) end)
    assert.has_error(function() d.ShardedSampler(10, 2, { size = 3 }) end)
    assert.has_error(function() d.ShardedSampler(10, 2, { rank = 2, size = 2 }) end)
    assert.has_error(function() d.ShardedSampler(10, 2, { shuffle = true }) end)
    assert.has_error(function() d.ShardedSampler(10, 2):indices(0) end)
  end)
end)

describe("sc.dist.DataParallel in a world of one", function()
  local d = sc.dist

  it("fuses gradients into buckets of at most bucket_mb and scales them by the weight", function()
    local net = sc.nn.MLP { ["in"] = 8, out = 2, hidden = { 64, 64 }, generator = sc.Generator(1) }
    -- 8x64 + 64 + 64x64 + 64 + 64x2 + 2 floats: 19,464 bytes in all
    local dp = d.DataParallel(net, { bucket_mb = 10000 / 2 ^ 20, config = { lr = 1 } })
    local sizes = dp:bucket_sizes()
    local total = 0
    for _, b in ipairs(sizes) do
      assert.is_true(b.bytes <= 10000 or b.params == 1)
      total = total + b.params
    end
    assert.are.equal(#net:parameters(), total)
    assert.are.same({ 2304, 16384, 776 }, { sizes[1].bytes, sizes[2].bytes, sizes[3].bytes })
    local x = sc.randn({ 5, 8 }, { generator = sc.Generator(2) })
    local loss = (net(x) ^ 2):mean()
    loss:backward()
    local before = {}
    for i, p in ipairs(net:parameters()) do before[i] = p.grad:clone() end
    dp:sync_gradients() -- weight 1 / size = 1: exactly the same gradients
    for i, p in ipairs(net:parameters()) do assert.are.same(before[i]:values(), p.grad:values()) end
    dp:sync_gradients(0.25) -- x 0.25 is exact in binary
    for i, p in ipairs(net:parameters()) do assert.are.same((before[i] * 0.25):values(), p.grad:values()) end
    assert.is_true(dp:in_sync())
  end)

  it("gives a parameter without a gradient zeros, and sums a shared gradient tensor once", function()
    local a, b, c = sc.ones(3):requires_grad(true), sc.ones(3):requires_grad(true), sc.ones(2):requires_grad(true)
    local dp = d.DataParallel({ a, b, c }, { bucket_mb = 8 / 2 ^ 20 }) -- one parameter per bucket
    local g = sc.tensor({ 1, 2, 4 })
    a.grad, b.grad = g, g -- one tensor, two leaves
    dp:sync_gradients(0.5)
    assert.are.same({ 0.5, 1, 2 }, a.grad:values())
    assert.are.same({ 0.5, 1, 2 }, b.grad:values())
    assert.are.same({ 0, 0 }, c.grad:values())
  end)

  it("rejects bad input naming the function", function()
    assert.has_error(function() d.DataParallel(42) end,
      "scorch.dist.DataParallel: expected a module or a list of parameter tensors (got number)")
    assert.has_error(function() d.DataParallel({}) end, "scorch.dist.DataParallel: the model has no parameters")
    assert.has_error(function() d.DataParallel({ sc.zeros(2) }, { bucket_mb = 0 }) end)
    assert.has_error(function() d.DataParallel({ sc.zeros(2) }, { buckets = 2 }) end)
    assert.has_error(function() d.DataParallel({ sc.zeros(2, 3):t() }) end,
      "scorch.dist.DataParallel: parameter 1 is not contiguous")
    assert.has_error(function() d.check_consistent({ 1, 2 }, "f") end, "f: line 1 is a number, not a string")
    assert.is_true(d.check_consistent({ "a", "b" }))
  end)
end)

describe("sc.dist.training_hook in a world of one", function()
  it("bundles the DataParallel, the sampler, the writer flag and a gradient sync", function()
    local net = sc.nn.MLP { ["in"] = 2, out = 1, hidden = { 4 }, generator = sc.Generator(3) }
    local h = sc.dist.training_hook(net, { n = 20, batch = 4, seed = 5, config = { lr = 1 } })
    assert.are.equal(0, h.rank)
    assert.are.equal(1, h.size)
    assert.is_true(h.writer)
    assert.are.equal(sc.dist.seed_for(5, 1000003), h.noise_seed)
    assert.are.same(sc.dist.ShardedSampler(20, 4, { seed = 5 }):indices(2), h.sampler:indices(2))
    local loss = net(sc.ones(3, 2)):sum()
    loss:backward()
    local g = net:parameters()[1].grad:clone()
    h.after_backward()
    assert.are.same(g:values(), net:parameters()[1].grad:values())
    assert.has_error(function() sc.dist.training_hook(net, { n = 20, batch = 4, epochs = 2 }) end)
  end)
end)

describe("sc.dist sampling and statistics in a world of one", function()
  local d = sc.dist

  it("draws sample noise from each sample's own seed, whatever the batching", function()
    local all = d.sample_noise(1, 10, { 2, 3 }, 5)
    assert.are.same({ 10, 2, 3 }, all:shape())
    assert.are.same(all:narrow(1, 4, 3):values(), d.sample_noise(4, 3, { 2, 3 }, 5):values())
    assert.are.same(sc.randn({ 2, 3 }, { generator = sc.Generator(d.seed_for(5, 7)) }):values(),
      all:select(1, 7):values())
  end)

  it("draws chunk k from the generator of (seed, k), in sample order", function()
    local firsts = {}
    local x = d.sample(10, function(m, gen, first)
      firsts[#firsts + 1] = first
      return sc.randn({ m, 2 }, { generator = gen })
    end, { chunk = 4, seed = 3 })
    assert.are.same({ 1, 5, 9 }, firsts)
    assert.are.same({ 10, 2 }, x:shape())
    local want = sc.cat({ sc.randn({ 4, 2 }, { generator = sc.Generator(d.seed_for(3, 0)) }),
      sc.randn({ 4, 2 }, { generator = sc.Generator(d.seed_for(3, 1)) }),
      sc.randn({ 2, 2 }, { generator = sc.Generator(d.seed_for(3, 2)) }) }, 1)
    assert.are.same(want:values(), x:values())
    assert.has_error(function() d.sample(10, function(m) return sc.zeros(m + 1) end) end)
    assert.has_error(function() d.sample(0, function(m) return sc.zeros(m) end) end)
    assert.has_error(function() d.sample(3, function(m) return sc.zeros(m) end, { batch = 2 }) end)
  end)

  it("merges feature statistics into the accumulator's own result", function()
    local f = sc.randn({ 40, 3 }, { generator = sc.Generator(8) })
    local acc = sc.metrics.stats_accumulator(3)
    acc:add(f)
    local merged = d.merge_stats(acc):result()
    local want = acc:result()
    assert.are.equal(40, merged.n)
    assert.is_true((merged.mean - want.mean):abs():max():item() < 1e-15)
    assert.is_true((merged.cov - want.cov):abs():max():item() < 1e-15)
    assert.has_error(function() d.merge_stats({}) end)
  end)
end)

-- ---- two ranks under mpirun ------------------------------------------------------------------

describe("sc.dist under mpirun -np 2", function()
  local why = mpi_missing()
  local tmp = os.tmpname()

  local function need_mpi()
    if why then
      print("dist_spec: skipping the mpirun specs: " .. why)
      pending("skipped: " .. why)
      return false
    end
    return true
  end

  it("all-reduces, broadcasts and gathers to the values known in closed form", function()
    if not need_mpi() then return end
    local out, code = run(2, "dist_collectives.lua", {}, 60)
    assert.are.equal(0, code, out)
    for r = 0, 1 do
      local function get(name) return out:match("rank " .. r .. " " .. name .. " ([^\n]*)") end
      assert.are.equal("2", get("size"))
      assert.are.equal("mpi", get("backend"))
      assert.are.equal("3.0,6.0,9.0,12.0,15.0,18.0,21.0", get("sum7"))
      assert.are.equal("2.0 2.0 float64", get("sumbig")) -- 0.5 + 1.5 on all 1,000,003
      assert.are.equal("1.0,0.0,5.0", get("max"))
      assert.are.equal("0.0,0.0,0.0", get("min"))
      assert.are.equal("1.0,7.0,3.0,9.0,5.0,11.0", get("noncontig"))
      assert.are.equal("11.0,11.0,11.0,11.0", get("bcast"))
      assert.are.equal("4x2 0.0,0.25,0.0,100.0,1.0,1.25,-1.0,100.0", get("gather"))
      assert.are.equal("2 0.0,3.0", get("gather0d"))
      assert.matches("scorch.dist.all_gather: rank 1 has a tensor of shape %[3%] float32, rank 0 has %[2%] float32",
        get("gather_mismatch"))
      assert.matches("scorch.dist.broadcast: MPI error on rank " .. r .. ": MPI_ERR_ROOT", get("bad_root"))
      assert.are.equal("ok", get("done"))
    end
  end)

  it("trains the same global batches on 2 ranks as on 1, to float rounding, and bitwise run to run", function()
    if not need_mpi() then return end
    local one, two, again = tmp .. ".1", tmp .. ".2", tmp .. ".2b"
    local out1, code1 = run(0, "dist_train.lua", { one, "100" })
    assert.are.equal(0, code1, out1)
    local out2, code2 = run(2, "dist_train.lua", { two, "100" })
    assert.are.equal(0, code2, out2)
    local out3, code3 = run(2, "dist_train.lua", { again, "100" })
    assert.are.equal(0, code3, out3)
    assert.matches("rank 0 size 2 in_sync true buckets 3", out2)
    assert.matches("rank 1 size 2 in_sync true buckets 3", out2)
    local p1, p2 = read_floats(one), read_floats(two)
    local diff = max_abs_diff(p1, p2)
    -- measured: 1.2e-7 (SGD with momentum 0.9, 100 steps, |w| <= 0.91: one
    -- float32 ulp); a gradient weighted by 1 instead of 1/2 on each rank
    -- ends 0.46 away, and no sync at all 0.3
    print(("dist_spec: 1 vs 2 ranks after 100 steps: max |difference| %.3g over %d parameters; "
      .. "2 ranks: %s"):format(diff, #p1, out2:match("rank 0 [^\n]*bytes/step %d+")))
    assert.is_true(diff < 1e-5, "1 vs 2 ranks differ by " .. diff)
    assert.are.equal(H.read_bytes(two), H.read_bytes(again)) -- bitwise, run to run
    -- and the training did move the parameters a long way from rank 1's start
    local out4 = run(0, "dist_train.lua", { tmp .. ".0", "1" })
    assert.matches("in_sync true", out4)
    assert.is_true(max_abs_diff(p1, read_floats(tmp .. ".0")) > 1e-2)
    for _, f in ipairs({ one, two, again, tmp .. ".0" }) do os.remove(f) end
  end)

  it("weights an uneven split by each rank's rows, and refuses it unless asked", function()
    if not need_mpi() then return end
    local one, two = tmp .. ".u1", tmp .. ".u2"
    local out1, code1 = run(0, "dist_train.lua", { one, "30", "uneven" })
    assert.are.equal(0, code1, out1)
    local out2, code2 = run(2, "dist_train.lua", { two, "30", "uneven" })
    assert.are.equal(0, code2, out2)
    local diff = max_abs_diff(read_floats(one), read_floats(two))
    -- (weights 1/2 and 1/2 instead of 17/33 and 16/33 end 1.1e-3 away)
    print(("dist_spec: uneven split (17 + 16 rows), 1 vs 2 ranks after 30 steps: max |difference| %.3g"):format(diff))
    assert.is_true(diff < 1e-5, "uneven 1 vs 2 ranks differ by " .. diff)
    local out3, code3 = run(2, "dist_train.lua", { tmp .. ".u3", "5", "batch33" })
    assert.are_not.equal(0, code3)
    assert.matches("rank 0 error: [^\n]*a global batch of 33 does not split evenly over 2 ranks", out3)
    for _, f in ipairs({ one, two }) do os.remove(f) end
  end)

  it("stops ranks whose parameter shapes or configs differ, naming the first mismatch", function()
    if not need_mpi() then return end
    local out, code = run(2, "dist_train.lua", { tmp .. ".m", "5", "shape" })
    assert.are_not.equal(0, code)
    for r = 0, 1 do
      assert.matches("rank " .. r .. " error: [^\n]*scorch.dist.DataParallel: rank 1's set%-up differs from rank 0's "
        .. "at line %d+: rank 0 has 'parameter 3.weight %[32,32%] float32', rank 1 has 'parameter 3.weight "
        .. "%[16,32%] float32'", out)
    end
    out, code = run(2, "dist_train.lua", { tmp .. ".m", "5", "config" })
    assert.are_not.equal(0, code)
    assert.matches("rank 0 error: [^\n]*rank 0 has 'config.lr = 0.05[0-9]*', rank 1 has 'config.lr = 0.02", out)
  end)

  it("draws sample i the same on 1 and 2 ranks, and merges statistics across ranks", function()
    if not need_mpi() then return end
    local one, two = tmp .. ".s1", tmp .. ".s2"
    local out1, code1 = run(0, "dist_sample.lua", { one })
    assert.are.equal(0, code1, out1)
    local out2, code2 = run(2, "dist_sample.lua", { two })
    assert.are.equal(0, code2, out2)
    assert.matches("rank 0 drew 26 of 50 rows", out2) -- chunks 0, 2, 4, 6 (8 + 8 + 8 + 2)
    assert.matches("rank 1 drew 24 of 50 rows", out2)
    local a, b = read_floats(one), read_floats(two)
    assert.are.equal(200, a.stats_at - 1)
    for i = 1, a.stats_at - 1 do assert.are.equal(a[i], b[i]) end -- samples: bitwise
    local sa, sb = { table.unpack(a, a.stats_at) }, { table.unpack(b, b.stats_at) }
    assert.is_true(max_abs_diff(sa, sb) < 1e-12) -- merged mean and covariance: float64 rounding
    os.remove(one)
    os.remove(two)
  end)

  it("runs examples/dist_dsm_2d.lua: rank 0 alone writes; resumed ends bitwise as uninterrupted", function()
    if not need_mpi() then return end
    local function example(np, dir, steps, extra)
      local args = { "--out", dir, "--steps", steps, "--log-every", "50", "--ckpt-every", "50", "--samples", "500" }
      for _, a in ipairs(extra or {}) do args[#args + 1] = a end
      -- the example lives in examples/, run() looks in spec/support/
      local out, code = run(np, "../../examples/dist_dsm_2d.lua", args, 120)
      assert.are.equal(0, code, out)
      return out
    end
    local function params(dir)
      local t = assert(sc.load(dir .. "/ckpt.safetensors"))
      local out = {}
      for i = 1, 8 do for _, v in ipairs(t["param." .. i]:values()) do out[#out + 1] = v end end
      return out
    end
    local one, two, resumed = tmp .. ".ex1", tmp .. ".ex2", tmp .. ".ex3"
    example(0, one, "100")
    local out2 = example(2, two, "100")
    example(2, resumed, "50")
    local out3 = example(2, resumed, "100", { "--resume" })
    -- one log line per log step: rank 0 alone prints and writes
    local _, n = out2:gsub("step +100 +loss", "")
    assert.are.equal(1, n)
    assert.are.equal("50 ", H.read_bytes(two .. "/log.txt"):sub(1, 3))
    local _, lines = H.read_bytes(two .. "/log.txt"):gsub("\n", "")
    assert.are.equal(2, lines)
    assert.matches("resumed at step 50", out3)
    -- per-row noise seeds: the same run on 1 and 2 ranks, to float rounding
    local diff = max_abs_diff(params(one), params(two))
    print(("dist_spec: examples/dist_dsm_2d.lua, 100 Adam steps, 1 vs 2 ranks: max |difference| %.3g"):format(diff))
    assert.is_true(diff < 1e-4, "1 vs 2 ranks differ by " .. diff)
    assert.are.same(params(two), params(resumed)) -- resumed: bitwise
    assert.are.equal(out2:match("final: [^\n]*"), out3:match("final: [^\n]*"))
    os.execute("rm -rf " .. quote(one) .. " " .. quote(two) .. " " .. quote(resumed))
  end)

  it("ends the job within seconds when a rank exits, raises an error or hangs", function()
    if not need_mpi() then return end
    local out, code, secs = run(2, "dist_die.lua", { "exit" }, 30)
    assert.are_not.equal(0, code)
    assert.is_true(secs < 15, ("took %.1f s"):format(secs))
    assert.not_matches("rank 0 finished", out)
    out, code, secs = run(2, "dist_die.lua", { "error" }, 30)
    assert.are_not.equal(0, code)
    assert.is_true(secs < 15, ("took %.1f s"):format(secs))
    assert.matches("rank 1 fails on purpose", out)
    assert.matches("scorch.dist.all_reduce: rank 1 has left %(its script ended or raised an error%) while rank 0 "
      .. "waited for it here", out)
    out, code, secs = run(2, "dist_die.lua", { "stuck", "2" }, 30)
    assert.are_not.equal(0, code)
    assert.is_true(secs < 15, ("took %.1f s"):format(secs))
    assert.matches("scorch.dist.all_reduce: rank 0 timed out after 2 s waiting for the other ranks", out)
    print(("dist_spec: a hung rank ended the job in %.1f s (timeout 2 s)"):format(secs))
    -- finalize waits for a rank that works on alone, past the timeout
    out, code = run(2, "dist_die.lua", { "late", "1" }, 30)
    assert.are.equal(0, code, out)
    assert.matches("rank 0 finished its work alone", out)
  end)
end)

-- ---- the training runtime with dist = true ----------------------------------------------------

describe("scorch train ... dist=true", function()
  local CONFIG = "configs/ddpm_2d.lua"
  local SMALL = "steps=40 checkpoint.every=20 log.every=10 threads=1"
  local why = mpi_missing()
  local function need_mpi()
    if why then
      pending("skipped: " .. why)
      return false
    end
    return true
  end

  -- `scorch train` on np ranks (np = 0: one process, no mpirun); args
  -- after the config, or config = false to resume a run folder given in args
  local function train(np, args, limit, config)
    local launcher = np > 0 and mpirun_cmd(np) .. " " or ""
    local cmd = ("timeout -k 5 %d %s%s train %s %s 2>&1"):format(limit or 120, launcher, quote(EXE),
      config == false and "" or CONFIG, args)
    local p = assert(io.popen(cmd, "r"))
    local out = p:read("a")
    local _, _, code = p:close()
    return out, code
  end

  local function tensors(path)
    local t = assert(sc.load(path))
    local out = {}
    for k, v in pairs(t) do out[k] = v:double():values() end
    return out
  end

  local function log_keys(dir)
    local trainer = require "scorch.run.trainer"
    local out = {}
    for line in io.lines(dir .. "/metrics.jsonl") do out[#out + 1] = trainer.log_key(line) end
    return out
  end

  local function fresh(name)
    local d = os.tmpname() .. "-" .. name
    os.execute("rm -rf " .. quote(d))
    return d
  end

  it("in a world of one trains exactly as without it (rank 0 keeps the run's own streams)", function()
    local a, b = fresh("plain"), fresh("dist1")
    local out, code = train(0, SMALL .. " out=" .. a)
    assert.are.equal(0, code, out)
    out, code = train(0, SMALL .. " dist=true out=" .. b)
    assert.are.equal(0, code, out)
    assert.are.same(tensors(a .. "/ckpt-00000040.safetensors"), tensors(b .. "/ckpt-00000040.safetensors"))
    assert.are.same(log_keys(a), log_keys(b))
    os.execute("rm -rf " .. quote(a) .. " " .. quote(b))
  end)

  it("refuses a batch that does not split over the ranks, and a family that trains itself", function()
    if not need_mpi() then return end
    local d = fresh("odd")
    local out, code = train(2, SMALL .. " batch=7 dist=true out=" .. d)
    assert.are_not.equal(0, code)
    assert.matches("dist = true: a batch of 7 does not split evenly over 2 ranks", out, 1, true)
    local p = assert(io.popen(("timeout 60 %s train configs/gan_2d.lua steps=2 dist=true out=%s 2>&1")
      :format(quote(EXE), quote(d))))
    out = p:read("a")
    p:close()
    assert.matches("dist = true: the gan family trains itself", out, 1, true)
    os.execute("rm -rf " .. quote(d))
  end)

  it("on 2 ranks: rank 0 alone writes, and a resumed run ends bit for bit as an unbroken one", function()
    if not need_mpi() then return end
    local a, b = fresh("two"), fresh("two-resumed")
    local out, code = train(2, SMALL .. " dist=true out=" .. a)
    assert.are.equal(0, code, out)
    -- one progress report per checkpoint, from rank 0 only
    local n = 0
    for _ in out:gmatch("step 40/40") do n = n + 1 end
    assert.are.equal(1, n, out)
    -- as if the job had died after the step-20 checkpoint: its folder then
    os.execute(("mkdir -p %s && cp %s/config.lua %s/metrics.jsonl %s/ckpt-00000020.safetensors %s/")
      :format(quote(b), quote(a), quote(a), quote(a), quote(b)))
    out, code = train(2, quote(b), 120, false) -- resumes at 20: every rank restores its own streams
    assert.are.equal(0, code, out)
    assert.matches("step 20 of 40", out, 1, true)
    assert.are.same(tensors(a .. "/ckpt-00000040.safetensors"), tensors(b .. "/ckpt-00000040.safetensors"))
    assert.are.same(log_keys(a), log_keys(b))
    -- and not the one-rank run: each rank drew its own half of every batch
    local c = fresh("one")
    out, code = train(0, SMALL .. " dist=true out=" .. c)
    assert.are.equal(0, code, out)
    assert.are_not.same(tensors(a .. "/ckpt-00000040.safetensors"), tensors(c .. "/ckpt-00000040.safetensors"))
    os.execute("rm -rf " .. quote(a) .. " " .. quote(b) .. " " .. quote(c))
  end)
end)
