-- scorch.run and `scorch train|sample|eval`, checked against runs of the
-- real host: a run killed with SIGKILL (between steps, inside a checkpoint
-- write, from outside at a random instant) and resumed must end with the
-- same bytes of parameters, EMA, optimiser state, generators and metrics as
-- one that was never stopped; signals, non-finite losses and full disks
-- must end with the documented status and leave the last checkpoint whole.
local sc = require "scorch"
local run = require "scorch.run"
local config = run.config

local EXE = os.getenv("SCORCH_BIN") or "bin/scorch"
local ROOT = os.getenv("PWD") or "."
local CONFIG = ROOT .. "/configs/ddpm_2d.lua"
-- a 2-D DDPM small enough that 60 steps take a fraction of a second
local SMALL = "steps=60 checkpoint.every=20 log.every=5 model.width=32 model.blocks=2 batch=128 "
  .. "sample.n=100 sample.steps=5 threads=1"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Runs a shell command; returns its exit status and its output (stdout and stderr).
local function sh(cmd)
  local p = io.popen("( " .. cmd .. " ) 2>&1; echo \"__status=$?\"")
  local out = p:read("a")
  p:close()
  local status = tonumber(out:match("__status=(%d+)%s*$"))
  return status, (out:gsub("__status=%d+%s*$", ""))
end

local tmp
local function dir(name) return tmp .. "/" .. name end

local function train(args, env)
  return sh((env and env .. " " or "") .. q(EXE) .. " train " .. args)
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function log_keys(d)
  local out = {}
  for line in read(d .. "/metrics.jsonl"):gmatch("[^\n]+") do out[#out + 1] = run.trainer.log_key(line) end
  return out
end

-- Every tensor bit for bit, and every piece of state in the metadata
-- (the config's run folder and the log's byte count, which holds timing
-- text, aside).
local function assert_same_checkpoint(a, b)
  local ta, ma = assert(sc.load(a))
  local tb, mb = assert(sc.load(b))
  local n = 0
  for name, t in pairs(ta) do
    local u = tb[name]
    assert(u, b .. " lacks " .. name)
    assert.same(t:shape(), u:shape())
    local va, vb = t:values(), u:values()
    for i = 1, #va do
      if va[i] ~= vb[i] then error(("%s differs at element %d: %.17g vs %.17g"):format(name, i, va[i], vb[i])) end
    end
    n = n + 1
  end
  for name in pairs(tb) do assert(ta[name], a .. " lacks " .. name) end
  for _, k in ipairs { "step", "optim", "lr_schedule", "ema", "rng", "data_position", "format", "extra" } do
    assert.equal(ma[k], mb[k], k)
  end
  -- (the code version names the commit, which may move while the spec runs)
  assert.matches("^scorch %d+%.%d+%.%d+", ma.code_version)
  local la, lb = config.deserialize(ma.log), config.deserialize(mb.log)
  assert.same(la.window, lb.window)
  assert.equal(la.skipped, lb.skipped)
  return n
end

setup(function()
  local p = io.popen("mktemp -d /tmp/scorch_run_spec.XXXXXX")
  tmp = p:read("l")
  p:close()
  os.execute("chmod 755 " .. q(tmp)) -- the unwritable-folder case runs a child as nobody
end)

teardown(function()
  if tmp and tmp:match("^/tmp/scorch_run_spec%.") then os.execute("rm -rf " .. q(tmp)) end
end)

describe("scorch.run.config", function()
  local raw = { family = "ddpm", name = "t", steps = 100, optim = { lr = 1e-3 } }

  it("fills the family's defaults and keeps the file's values", function()
    local c = config.resolve(raw)
    assert.equal(100, c.steps)
    assert.equal(1e-3, c.optim.lr)
    assert.equal(1000, c.objective.T)          -- from the ddpm family
    assert.equal("cosine", c.optim.schedule)   -- from the common schema
  end)

  it("overrides nested fields with the type of the value they replace", function()
    local c = config.override(config.resolve(raw), { "optim.lr=2.5e-4", "steps=7", "model.width=16",
      "on_nonfinite=skip" })
    assert.equal(2.5e-4, c.optim.lr)
    assert.equal(7, c.steps)
    assert.equal("integer", math.type(c.steps))
    assert.equal("float", math.type(c.optim.lr))
    assert.equal(16, c.model.width)
    assert.equal("skip", c.on_nonfinite)
  end)

  it("rejects a misspelt key, naming the nearest and listing the valid ones", function()
    local ok, err = pcall(config.override, config.resolve(raw), { "optim.lrr=1" })
    assert.is_false(ok)
    assert.matches("unknown key 'optim.lrr' (did you mean 'lr'? valid: beta1, beta2, eta_min, grad_clip, lr, "
      .. "schedule, tail, warmup, weight_decay)", err, 1, true)
    ok, err = pcall(config.resolve, { family = "ddpm", stepz = 3 })
    assert.is_false(ok)
    assert.matches("unknown key 'stepz' (did you mean 'steps'?", err, 1, true)
    ok, err = pcall(config.resolve, { family = "ddpm", model = { widht = 3 } })
    assert.is_false(ok)
    assert.matches("unknown key 'model.widht' (did you mean 'width'? valid: blocks, channels, mults, width)", err,
      1, true)
  end)

  it("stops `scorch train` on a misspelt key before it makes a run folder", function()
    local d = dir("never")
    local status, out = sh(("%s train %s optim.lrr=1 out=%s"):format(q(EXE), q(CONFIG), q(d)))
    assert.equal(1, status)
    assert.matches("scorch: train: command line: unknown key 'optim.lrr' (did you mean 'lr'?", out, 1, true)
    assert.is_false(sc.core.is_dir(d))
  end)

  it("rejects values of the wrong type and out of range", function()
    local c = config.resolve(raw)
    local cases = {
      { "steps=1.5", "steps expects an integer (got '1.5')" },
      { "optim.lr=fast", "optim.lr expects a number (got 'fast')" },
      { "steps=0", "'steps' must be a positive integer (got 0)" },
      { "optim=3", "'optim' is a table; set one of its fields" },
      { "family=edm", "the family of a config cannot be overridden" },
      { "on_nonfinite=ignore", "'on_nonfinite' must be stop or skip" },
      { "steps", "expected key=value, got 'steps'" },
    }
    for _, case in ipairs(cases) do
      local ok, err = pcall(config.override, config.copy(c), { case[1] })
      assert.is_false(ok, case[1])
      assert.matches(case[2], err, 1, true)
    end
    local ok, err = pcall(config.resolve, { family = "ddpm", steps = "ten" })
    assert.is_false(ok)
    assert.matches("'steps' must be an integer (got string ten)", err, 1, true)
    ok, err = pcall(config.resolve, { family = "dppm" })
    assert.is_false(ok)
    assert.matches("unknown family 'dppm' (known: ddpm, ebm, edm, flow, gan, ncsn, score_matching, sde, vae)", err,
      1, true)
    ok, err = pcall(config.resolve, { steps = 3 })
    assert.is_false(ok)
    assert.matches("the config must name its family", err, 1, true)
  end)

  it("writes values that load back exactly", function()
    local v = { a = 0.1, b = 1e-300, c = math.mininteger, d = { 1, 2.5, "x\n\"y" }, e = true, f = 1 / 3, g = 3.0 }
    local back = config.deserialize(config.serialize(v, ""))
    assert.same(v, back)
    assert.equal("float", math.type(back.g))
    assert.equal("integer", math.type(back.c))
  end)

  it("loads every config under configs/ and reports a broken file by name", function()
    for _, name in ipairs(sc.core.list_dir(ROOT .. "/configs")) do
      local c = config.resolve(config.load_file(ROOT .. "/configs/" .. name))
      assert.equal(name:gsub("%.lua$", ""), c.name)
    end
    local bad = dir("bad.lua")
    local f = assert(io.open(bad, "wb"))
    f:write("return { family = 'ddpm', steps = }")
    f:close()
    local ok, err = pcall(config.load_file, bad)
    assert.is_false(ok)
    assert.matches("config " .. bad, err, 1, true)
  end)
end)

describe("what the examples need of a run", function()
  -- a tiny NCSN: a step takes well under a millisecond
  local function tiny(fields)
    local raw = { family = "ncsn", name = "tiny", steps = 10, batch = 8, model = { width = 8, layers = 1 },
      objective = { levels = 3 }, log = { every = 1 }, checkpoint = { every = 100 }, threads = 1 }
    for k, v in pairs(fields or {}) do raw[k] = v end
    return config.resolve(raw)
  end

  it("linear_tail uses the examples' learning rates: constant, then lr·(1 − s/T)/0.3 after step s > 0.7·T", function()
    local r = run.trainer.build(tiny { optim = { lr = 1e-3, schedule = "linear_tail", tail = 0.3, warmup = 0,
      eta_min = 0.0 } })
    local used = {}
    for s = 1, 10 do
      local _, _, lr = run.trainer.step(r)
      used[s] = lr
      r.step = s
    end
    -- the loop the examples had: after step s, lr = base·(1 − s/T)/0.3 once s/T > 0.7
    local want, lr = {}, 1e-3
    for s = 1, 10 do
      want[s] = lr
      if s / 10 > 0.7 then lr = 1e-3 * (1 - s / 10) / 0.3 end
    end
    for s = 1, 10 do assert.near(want[s], used[s], 1e-15, "step " .. s) end
    assert.near(1e-3 * 0.2 / 0.3, used[9], 1e-15)
    -- with eta_min and a warm-up: (k + 1)/W first, and the tail ends at eta_min·lr
    local o = { warmup = 4, tail = 0.5, eta_min = 0.1 }
    assert.near(0.25, run.trainer.linear_tail(0, 10, o), 1e-15)
    assert.near(1.0, run.trainer.linear_tail(5, 10, o), 1e-15)
    assert.near(0.1 + 0.9 * 0.4 / 0.5, run.trainer.linear_tail(6, 10, o), 1e-15)
    assert.near(0.1, run.trainer.linear_tail(10, 10, o), 1e-15)
    local ok, err = pcall(tiny, { optim = { tail = 0.0 } })
    assert.is_false(ok)
    assert.matches("'optim.tail' must be in (0, 1]", err, 1, true)
  end)

  it("on_log's numbers go into the metrics lines, and its use of the global generator moves nothing", function()
    local function train_with(out, hook)
      local r = run.trainer.open(tiny { out = out }, { quiet = true })
      r.on_log = hook
      assert.equal(0, run.trainer.train(r))
      return r
    end
    local a = train_with(dir("onlog_a"), function(r)
      sc.randn(5) -- the global generator: saved and restored around the hook
      if r.step % 3 == 0 then return { probe = r.step * 0.5, covered = 7 } end
    end)
    local b = train_with(dir("onlog_b"), nil)
    local lines = {}
    for line in read(a.dir .. "/metrics.jsonl"):gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.equal(10, #lines)
    for s = 1, 10 do
      local probe = lines[s]:match('"probe":([^,}]+)')
      if s % 3 == 0 then
        assert.equal(s * 0.5, tonumber(probe))
        assert.matches('"covered":7,', lines[s], 1, true)
      else
        assert.is_nil(probe)
      end
    end
    -- the same training bit for bit, with the hook and without, to the global generator's state
    local pa, pb = a.net:parameters(), b.net:parameters()
    for i = 1, #pa do assert.same(pa[i]:values(), pb[i]:values()) end
    local _, ma = assert(sc.load(run.checkpoint.path(a.dir, 10)))
    local _, mb = assert(sc.load(run.checkpoint.path(b.dir, 10)))
    assert.equal(mb.rng, ma.rng)
    local e = run.example
    local steps, covered = e.metric(a, "covered")
    assert.same({ 3, 6, 9 }, steps)
    assert.same({ 7, 7, 7 }, covered)
    local r = run.trainer.open(tiny { out = dir("onlog_c") }, { quiet = true })
    r.on_log = function() return { ["bad name"] = 1 } end
    local ok, err = pcall(run.trainer.train, r)
    assert.is_false(ok)
    assert.matches("on_log must return numbers by word-like names (got bad name = 1)", err, 1, true)
  end)

  it("data.half_width sets the checkerboard's, and only the checkerboard's", function()
    local c = config.resolve { family = "sde", data = { name = "checkerboard", half_width = 4 } }
    local src = require("scorch.run.data").open(c)
    assert.same({ -4.5, 4.5, -4.5, 4.5 }, src.density.range)
    assert.near(-math.log(32), src.density.log_density, 1e-12) -- 8 black cells of side 2
    assert.same({ -2.5, 2.5, -2.5, 2.5 },
      require("scorch.run.data").open(config.resolve { family = "sde" }).density.range)
    local ok, err = pcall(config.resolve, { family = "ddpm", data = { half_width = 3 } })
    assert.is_false(ok)
    assert.matches("'data.half_width' is the checkerboard's", err, 1, true)
  end)

  it("finds configs/NAME.lua beside the library and lays an example's fields over it", function()
    local e = run.example
    local path = e.config_file("ncsn_2d")
    assert.matches("configs/ncsn_2d%.lua$", path)
    assert.equal(read(ROOT .. "/configs/ncsn_2d.lua"), read(path))
    local c = e.config { script = "x.lua", config = "ncsn_2d", out = dir("ex"),
      fields = { steps = 250, model = { width = 16 }, data = { name = "two_gaussians" } } }
    assert.equal(16, c.model.width)
    assert.equal(3, c.model.layers)                 -- the file's
    assert.equal("linear_tail", c.optim.schedule)   -- the file's
    assert.same({ every = 25, keep = 2 }, c.checkpoint)
    assert.same({ every = 2 }, c.log)
    -- the folder: out and the key, 8 hex digits of the config outside what a resumed run may change
    assert.equal(dir("ex") .. "-" .. e.key(c), c.out)
    assert.matches("^%x%x%x%x%x%x%x%x$", e.key(c))
    local function key_of(fields)
      local f = { steps = 250, model = { width = 16 }, data = { name = "two_gaussians" } }
      for k, v in pairs(fields) do f[k] = v end
      return e.key(e.config { script = "x.lua", config = "ncsn_2d", out = dir("ex"), fields = f })
    end
    assert.equal(e.key(c), key_of { threads = 2, log = { every = 5 }, sample = { n = 10 } })
    assert.not_equal(e.key(c), key_of { steps = 251 })
    assert.not_equal(e.key(c), key_of { model = { width = 17 } })
    assert.not_equal(e.key(c), key_of { optim = { lr = 1.5e-3 } })
    local ok, err = pcall(e.config, { script = "x.lua", config = "ncsn_2d", out = dir("ex"),
      fields = { model = { widht = 16 } } })
    assert.is_false(ok)
    assert.matches("x.lua: unknown key 'model.widht' (did you mean 'width'?", err, 1, true)
    ok, err = pcall(e.config_file, "../etc/passwd")
    assert.is_false(ok)
    assert.matches("bad argument #1", err, 1, true)
  end)
end)

describe("checkpoint files", function()
  local function state()
    return { a = sc.arange(0, 6):view(2, 3), b = sc.ones(4) }, { format = run.checkpoint.FORMAT, step = "1" }
  end

  it("are renamed into place, leave no temporary, and only the newest K stay", function()
    local d = dir("ck")
    assert(sc.core.mkdir(d))
    local t, m = state()
    for step = 1, 5 do assert(run.checkpoint.save(d, step, t, m, 2)) end
    assert.same({ "ckpt-00000004.safetensors", "ckpt-00000005.safetensors" }, sc.core.list_dir(d))
    local back = assert(sc.load(d .. "/ckpt-00000005.safetensors"))
    assert.same({ 0, 1, 2, 3, 4, 5 }, back.a:values())
  end)

  it("fail as a full disk would and keep the previous ones whole", function()
    local d = dir("ck")
    local status, out = sh(("SCORCH_TEST_FAULT=enospc %s -e %s"):format(q(EXE), q(([[
      local run = require "scorch.run"
      local ok, err = run.checkpoint.save(%q, 6, {a = sc.zeros(2)}, {format = run.checkpoint.FORMAT}, 2)
      print(ok, err)]]):format(d))))
    assert.equal(0, status)
    assert.matches("nil\tcheckpoint " .. d .. "/ckpt-00000006.safetensors not written: No space left on device",
      out, 1, true)
    assert.same({ "ckpt-00000004.safetensors", "ckpt-00000005.safetensors" }, sc.core.list_dir(d))
  end)

  it("are checked name by name and shape by shape on reading", function()
    local d = dir("ck")
    local path = d .. "/ckpt-00000005.safetensors"
    local expect = { { "a", { 2, 3 } }, { "b", { 4 } } }
    assert(run.checkpoint.read(path, expect))
    local ok, err = pcall(run.checkpoint.read, path, { { "a", { 3, 2 } }, { "b", { 4 } } })
    assert.is_false(ok)
    assert.matches("checkpoint " .. path .. " does not match the run: tensor 'a' has shape [2,3], the run's is [3,2]",
      err, 1, true)
    ok, err = pcall(run.checkpoint.read, path, { { "a", { 2, 3 } }, { "b", { 4 } }, { "c", { 1 } } })
    assert.is_false(ok)
    assert.matches("tensor 'c' is missing", err, 1, true)
    ok, err = pcall(run.checkpoint.read, path, { { "a", { 2, 3 } } })
    assert.is_false(ok)
    assert.matches("tensor 'b' is not in the run", err, 1, true)
    -- a truncated copy
    local bytes = read(path)
    local cut = d .. "/cut.safetensors"
    local f = assert(io.open(cut, "wb"))
    f:write(bytes:sub(1, #bytes - 10))
    f:close()
    ok, err = pcall(run.checkpoint.read, cut, expect)
    assert.is_false(ok)
    assert.matches("checkpoint " .. cut .. " cannot be loaded", err, 1, true)
  end)

  it("sync and rename through the core, with errors naming the path", function()
    local durable = require("scorch.core").durable
    local ok, err = durable.fsync_file(dir("missing"))
    assert.is_nil(ok)
    assert.matches("fsync: cannot open " .. dir("missing") .. ": No such file", err, 1, true)
    ok, err = durable.rename(dir("missing"), dir("x"))
    assert.is_nil(ok)
    assert.matches("rename: " .. dir("missing"), err, 1, true)
    assert.is_true(durable.fsync_dir(tmp))
    local f = assert(io.open(dir("t.txt"), "wb"))
    f:write("0123456789")
    f:close()
    assert.is_true(durable.truncate(dir("t.txt"), 4))
    assert.equal("0123", read(dir("t.txt")))
    ok, err = durable.truncate(dir("t.txt"), 5)
    assert.is_nil(ok)
    assert.matches("has 4 bytes, fewer than 5", err, 1, true)
    assert.has_error(function() durable.truncate(dir("t.txt"), -1) end)
  end)
end)

describe("scorch train: exact resume", function()
  local function reference(threads)
    local d = dir("ref" .. threads)
    local status, out = train(("%s %s threads=%d out=%s"):format(q(CONFIG), SMALL, threads, q(d)))
    assert.equal(0, status, out)
    return d
  end

  local function killed_and_resumed(name, threads, fault)
    local d = dir(name)
    local status, out = train(("%s %s threads=%d out=%s"):format(q(CONFIG), SMALL, threads, q(d)),
      "SCORCH_TEST_FAULT=" .. fault)
    assert.equal(137, status, out) -- 128 + SIGKILL
    status, out = train(q(d))
    assert.equal(0, status, out)
    return d, out
  end

  for _, threads in ipairs { 1, 2 } do
    it(("ends bit for bit where an unbroken run ends (%d thread%s)"):format(threads, threads > 1 and "s" or ""),
      function()
        local ref = reference(threads)
        -- step 5 ran at the warm-up's lr: 1e-3 · 5/59 (warm-up capped at steps − 1)
        local lr = tonumber(log_keys(ref)[1]:match('"lr":([^,]+)'))
        assert.is_true(math.abs(lr - 1e-3 * 5 / 59) < 1e-18, tostring(lr))
        local faults = threads == 1 and { "kill_at=7", "kill_at=33", "kill_in_ckpt=40", "kill_at=59" }
          or { "kill_at=33", "kill_in_ckpt=40" }
        for _, fault in ipairs(faults) do
          local name = ("t%d_%s"):format(threads, fault:gsub("=", "_"))
          local d, out = killed_and_resumed(name, threads, fault)
          local from = ({ kill_at_7 = 0, kill_at_33 = 20, kill_in_ckpt_40 = 20, kill_at_59 = 40 })[fault:gsub("=", "_")]
          assert.matches(("step %d of 60"):format(from), out, 1, true)
          local n = assert_same_checkpoint(ref .. "/ckpt-00000060.safetensors", d .. "/ckpt-00000060.safetensors")
          assert.is_true(n >= 3 * 6) -- model, EMA and two moments per parameter
          assert.same(log_keys(ref), log_keys(d))
          assert.equal(12, #log_keys(d))
          for _, f in ipairs(sc.core.list_dir(d)) do assert.is_nil(f:match("partial"), f) end
        end
      end)
  end

  it("resumes an image run at its place in the shuffled epochs", function()
    -- 200 shapes of 16×16, batches of 16: 12 per epoch, so the kill at step 14 lands in epoch 2
    local args = "steps=20 checkpoint.every=10 log.every=5 data.size=200 data.image_size=16 model.channels=8 "
      .. "batch=16 sample.n=8 sample.steps=5 threads=1"
    local image_config = q(ROOT .. "/configs/ddpm_shapes.lua")
    local ref, d = dir("img_ref"), dir("img_kill")
    local status, out = train(("%s %s out=%s"):format(image_config, args, q(ref)))
    assert.equal(0, status, out)
    status, out = train(("%s %s out=%s"):format(image_config, args, q(d)), "SCORCH_TEST_FAULT=kill_at=14")
    assert.equal(137, status, out)
    status, out = train(q(d))
    assert.equal(0, status, out)
    assert.matches("step 10 of 20", out, 1, true)
    assert_same_checkpoint(ref .. "/ckpt-00000020.safetensors", d .. "/ckpt-00000020.safetensors")
    assert.same(log_keys(ref), log_keys(d))
    local _, meta = assert(sc.load(d .. "/ckpt-00000020.safetensors"))
    assert.same({ batches = 20, order = { epoch = 2, next = 129 } }, config.deserialize(meta.data_position))
  end)

  it("resumes an energy model with its replay buffer and the buffer's generator", function()
    local args = "steps=30 checkpoint.every=10 log.every=5 model.width=32 objective.buffer=500 "
      .. "objective.chain_steps=10 batch=64 sample.n=50 sample.steps=20 threads=1"
    local ebm_config = q(ROOT .. "/configs/ebm_2d.lua")
    local ref, d = dir("ebm_ref"), dir("ebm_kill")
    local status, out = train(("%s %s out=%s"):format(ebm_config, args, q(ref)))
    assert.equal(0, status, out)
    status, out = train(("%s %s out=%s"):format(ebm_config, args, q(d)), "SCORCH_TEST_FAULT=kill_at=17")
    assert.equal(137, status, out)
    status, out = train(q(d))
    assert.equal(0, status, out)
    assert.matches("step 10 of 30", out, 1, true)
    assert.is_true(assert_same_checkpoint(ref .. "/ckpt-00000030.safetensors", d .. "/ckpt-00000030.safetensors") > 0)
    assert.same(log_keys(ref), log_keys(d))
    local t, meta = assert(sc.load(d .. "/ckpt-00000030.safetensors"))
    assert.same({ 500, 2 }, t["extra.buffer"]:shape())
    local extra = config.deserialize(meta.extra)
    assert.equal(500, extra.count)      -- 30 pushes of 64 chains fill the 500
    assert.equal(30 * 64 % 500, extra.pos)
  end)

  it("resumes a WGAN-GP with both optimisers' states", function()
    local args = "steps=30 checkpoint.every=10 log.every=5 model.width=32 batch=64 sample.n=50 threads=1 "
      .. "objective.loss=wgan_gp optim.lr=1e-4 optim.beta1=0 optim.beta2=0.9"
    local gan_config = q(ROOT .. "/configs/gan_2d.lua")
    local ref, d = dir("gan_ref"), dir("gan_kill")
    local status, out = train(("%s %s out=%s"):format(gan_config, args, q(ref)))
    assert.equal(0, status, out)
    status, out = train(("%s %s out=%s"):format(gan_config, args, q(d)), "SCORCH_TEST_FAULT=kill_at=17")
    assert.equal(137, status, out)
    status, out = train(q(d))
    assert.equal(0, status, out)
    assert.matches("step 10 of 30", out, 1, true)
    assert_same_checkpoint(ref .. "/ckpt-00000030.safetensors", d .. "/ckpt-00000030.safetensors")
    assert.same(log_keys(ref), log_keys(d))
    local t, meta = assert(sc.load(d .. "/ckpt-00000030.safetensors"))
    -- G's moments under optimiser g, D's under d; 5 critic steps per generator step
    assert.same(t["model.G.net.1.weight"]:shape(), t["optim.g:G.net.1.weight.exp_avg"]:shape())
    assert.is_nil(t["optim.d:G.net.1.weight.exp_avg"])
    local optim = config.deserialize(meta.optim)
    local gsteps, dsteps
    for _, st in pairs(optim.slots.g.state) do gsteps = st.step end
    for _, st in pairs(optim.slots.d.state) do dsteps = st.step end
    assert.equal(30, gsteps)
    assert.equal(150, dsteps)
    assert.matches('"loss_d":[%-%d%.e]+,"loss_g":[%-%d%.e]+,"wasserstein":', log_keys(d)[6])
  end)

  it("survives a SIGKILL from outside in the middle of a checkpoint write", function()
    local ref = dir("ref1")
    local d = dir("outside")
    -- each checkpoint write pauses 2 s before its rename; the kill lands in the second one,
    -- once its temporary is on disk
    local status, out = sh(("SCORCH_TEST_FAULT=sleep=2 %s train %s %s out=%s & pid=$!; "
      .. "while [ ! -e %s/.ckpt-00000040.safetensors.partial ]; do sleep 0.02; done; kill -KILL $pid; wait $pid")
      :format(q(EXE), q(CONFIG), SMALL, q(d), q(d)))
    assert.equal(137, status, out)
    local names = table.concat(sc.core.list_dir(d), " ")
    assert.matches("ckpt-00000020.safetensors", names, 1, true)
    assert.matches(".ckpt-00000040.safetensors.partial", names, 1, true) -- written, never renamed
    assert.is_nil(names:find("ckpt-00000040.safetensors ", 1, true))
    status, out = train(q(d))
    assert.equal(0, status, out)
    assert.matches("step 20 of 60", out, 1, true)
    assert_same_checkpoint(ref .. "/ckpt-00000060.safetensors", d .. "/ckpt-00000060.safetensors")
    assert.same(log_keys(ref), log_keys(d))
  end)

  it("refuses to start from a checkpoint that does not fit, naming the file and the mismatch", function()
    local ref = dir("ref1")
    local d = dir("refuse")
    assert.equal(0, (sh(("cp -r %s %s"):format(q(ref), q(d)))))
    local log_before = read(d .. "/metrics.jsonl")
    -- a different model
    local status, out = train(q(d) .. " steps=80 model.width=16")
    assert.equal(1, status)
    assert.matches("checkpoint " .. d .. "/ckpt-00000060.safetensors does not match the run's config at "
      .. "model.width: 32 in the checkpoint, 16 now", out, 1, true)
    -- a truncated newest checkpoint: no fallback to an older one, no fresh start
    local path = d .. "/ckpt-00000060.safetensors"
    local bytes = read(path)
    local f = assert(io.open(path, "wb"))
    f:write(bytes:sub(1, #bytes // 2))
    f:close()
    status, out = train(q(d) .. " steps=80")
    assert.equal(1, status)
    assert.matches("checkpoint " .. path .. " cannot be loaded", out, 1, true)
    assert.equal(log_before, read(d .. "/metrics.jsonl"))
    -- a new run may not reuse a folder holding checkpoints
    status, out = train(("%s %s out=%s"):format(q(CONFIG), SMALL, q(d)))
    assert.equal(1, status)
    assert.matches("already holds checkpoints (the newest at step 60): resume it with `scorch train " .. d, out, 1,
      true)
  end)

  it("extends a finished run with steps=N", function()
    local d = dir("extend")
    assert.equal(0, (sh(("cp -r %s %s"):format(q(dir("ref1")), q(d)))))
    local status, out = train(q(d) .. " steps=70")
    assert.equal(0, status, out)
    assert.matches("step 60 of 70", out, 1, true)
    assert.equal(14, #log_keys(d))
  end)
end)

describe("scorch train: signals and faults", function()
  -- Starts a long run in the background, waits for its first log line,
  -- sends the signals (with a pause between), and returns status and output.
  local function signalled(d, signals, env, extra)
    return sh(("%s %s train %s %s steps=1000000 checkpoint.every=1000000 out=%s %s & pid=$!; "
      .. "while [ ! -s %s/metrics.jsonl ]; do sleep 0.05; done; for s in %s; do kill -$s $pid; sleep 0.5; done; "
      .. "wait $pid"):format(env or "", q(EXE), q(CONFIG), SMALL, q(d), extra or "", q(d), signals))
  end

  it("SIGINT finishes the step, checkpoints, exits 130 and says how to resume", function()
    local d = dir("sigint")
    local t0 = sc.time()
    local status, out = signalled(d, "INT")
    assert.equal(130, status, out)
    assert.is_true(sc.time() - t0 < 30)
    local step = tonumber(out:match("stopped by SIGINT at step (%d+)"))
    assert.is_not_nil(step, out)
    assert.matches("resume with `scorch train " .. d .. "`", out, 1, true)
    local ck = run.checkpoint.list(d)
    assert.equal(1, #ck)
    assert.equal(step, ck[1].step)
    local _, meta = assert(sc.load(ck[1].path))
    assert.equal(tostring(step), meta.step)
    -- and the run goes on from there
    status, out = train(q(d) .. (" steps=%d"):format(step + 3))
    assert.equal(0, status, out)
    assert.matches(("step %d of %d"):format(step, step + 3), out, 1, true)
  end)

  it("SIGTERM does the same with status 143", function()
    local d = dir("sigterm")
    local status, out = signalled(d, "TERM")
    assert.equal(143, status, out)
    assert.matches("stopped by SIGTERM at step %d+", out)
    assert.equal(1, #run.checkpoint.list(d))
  end)

  it("a second SIGINT exits at once and leaves the last checkpoint whole", function()
    local d = dir("sigint2")
    assert.equal(0, (train(("%s %s steps=20 out=%s"):format(q(CONFIG), SMALL, q(d)))))
    local before = read(d .. "/ckpt-00000020.safetensors")
    -- the stop checkpoint's write sleeps 5 s once its temporary is written; the second SIGINT comes then
    local status, out = sh(("SCORCH_TEST_FAULT=sleep=5 %s train %s steps=1000000 checkpoint.every=1000000 & pid=$!; "
      .. "while [ $(wc -l < %s/metrics.jsonl) -lt 6 ]; do sleep 0.05; done; kill -INT $pid; "
      .. "while ! ls -a %s | grep -q partial; do sleep 0.05; done; t1=$(date +%%s%%N); kill -INT $pid; wait $pid; "
      .. "rc=$?; echo \"latency_ms=$(( ($(date +%%s%%N) - t1) / 1000000 ))\"; exit $rc")
      :format(q(EXE), q(d), q(d), q(d)))
    assert.equal(130, status, out)
    local latency = tonumber(out:match("latency_ms=(%d+)"))
    assert.is_true(latency < 2000, "exited during the 5 s write, not after it: " .. tostring(latency) .. " ms")
    assert.equal(before, read(d .. "/ckpt-00000020.safetensors"))
    assert.equal(1, #run.checkpoint.list(d))
    local names = table.concat(sc.core.list_dir(d), " ")
    assert.matches("%.ckpt%-%d+%.safetensors%.partial", names) -- the interrupted write, never renamed
    -- the next start clears it and resumes from step 20
    status, out = train(q(d) .. " steps=25")
    assert.equal(0, status, out)
    assert.matches("step 20 of 25", out, 1, true)
    assert.is_nil(table.concat(sc.core.list_dir(d), " "):find("partial", 1, true))
  end)

  it("a non-finite loss stops the run, naming the step and the module, and keeps the last good checkpoint", function()
    local d = dir("nan")
    -- lr = 1e30: step 1 throws the weights to ~1e30, step 2 overflows
    local status, out = train(("%s %s checkpoint.every=1 optim.warmup=0 optim.lr=1e30 out=%s"):format(q(CONFIG),
      SMALL, q(d)))
    assert.equal(1, status)
    local step = tonumber(out:match("step (%d+): the loss is"))
    assert.is_not_nil(step, out)
    assert.matches("the loss is NaN, and the first module %(in parameter order%) whose gradient is not finite is "
      .. "'[%w_%.]+' %(parameter [%w_%.]+%)", out)
    local ck = run.checkpoint.list(d)
    assert.equal(step - 1, ck[#ck].step)
    assert.matches("The last good checkpoint is " .. ck[#ck].path, out, 1, true)
    local t = assert(sc.load(ck[#ck].path))
    for name, x in pairs(t) do
      for _, v in ipairs(x:values()) do assert(v == v and math.abs(v) < math.huge, name) end
    end
  end)

  it("on_nonfinite=skip skips such steps and counts them in the log", function()
    local d = dir("skip")
    local status, out = train(("%s %s steps=20 on_nonfinite=skip out=%s"):format(q(CONFIG), SMALL, q(d)),
      "SCORCH_TEST_FAULT=nan_loss=3:4:12")
    assert.equal(0, status, out)
    local lines = log_keys(d)
    assert.matches('"step":5,"loss":[%d%.e%-]+,.*"skipped":2', lines[1])
    assert.matches('"skipped":3', lines[#lines])
    -- the skipped steps changed nothing: step 3's draws were consumed, the optimiser took 17 steps
    local _, meta = assert(sc.load(d .. "/ckpt-00000020.safetensors"))
    assert.equal(17, config.deserialize(meta.ema).num_updates)
    assert.equal(17, config.deserialize(meta.lr_schedule).last_step)
    assert.equal(20, config.deserialize(meta.data_position).batches)
  end)

  it("a full disk during a checkpoint write is a clear error and the previous checkpoint stays", function()
    local d = dir("enospc")
    local status, out = train(("%s %s out=%s"):format(q(CONFIG), SMALL, q(d)), "SCORCH_TEST_FAULT=enospc")
    assert.equal(1, status)
    assert.matches("checkpoint " .. d .. "/ckpt-00000020.safetensors not written: No space left on device", out, 1,
      true)
    assert.equal(0, #run.checkpoint.list(d))
    -- a real full file system: a 200 KiB tmpfs in a private mount namespace holds one checkpoint, not two
    local probe = sh("unshare -Urm true")
    if probe ~= 0 then
      pending("unshare -Urm is not permitted here; the real tmpfs case is skipped")
      return
    end
    local mnt = dir("tmpfs")
    assert(sc.core.mkdir(mnt))
    status, out = sh(("unshare -Urm sh -c %s"):format(q(("mount -t tmpfs -o size=200k tmpfs %s && "
      .. "%s train %s %s out=%s/r; echo \"train=$?\"; ls -a %s/r; "
      .. "%s -e 'local t = assert(sc.load(\"%s/r/ckpt-00000020.safetensors\")); local n = 0; "
      .. "for _ in pairs(t) do n = n + 1 end; print(\"loaded\", n)'")
      :format(mnt, q(EXE), q(CONFIG), SMALL, mnt, mnt, q(EXE), mnt))))
    assert.equal(0, status, out)
    assert.matches("train=1", out, 1, true)
    assert.matches("ckpt%-00000040%.safetensors not written: [^\n]*No space left on device", out)
    assert.matches("ckpt-00000020.safetensors", out, 1, true)
    assert.is_nil(out:find("ckpt-00000040", out:find("train=1", 1, true), true))
    assert.matches("loaded\t%d+", out)
  end)

  it("an unwritable run folder during a checkpoint write is a clear error", function()
    local d = dir("rofolder")
    local as_user = ""
    if sh("test $(id -u) -eq 0") == 0 then
      -- root ignores permissions: run as nobody
      if sh("setpriv --reuid=65534 --regid=65534 --clear-groups true") ~= 0 then
        pending("cannot drop to an unprivileged user here")
        return
      end
      as_user = "setpriv --reuid=65534 --regid=65534 --clear-groups "
      assert(sc.core.mkdir(d))
      sh("chown 65534:65534 " .. q(d))
    end
    local status, out = sh(("%s%s train %s %s steps=1000000 checkpoint.every=400 log.every=1 out=%s & pid=$!; "
      .. "while [ ! -s %s/metrics.jsonl ]; do sleep 0.05; done; chmod a-w %s; wait $pid")
      :format(as_user, q(EXE), q(CONFIG), SMALL, q(d), q(d), q(d)))
    sh("chmod u+w " .. q(d))
    assert.equal(1, status, out)
    assert.matches("checkpoint " .. d .. "/ckpt%-00000400%.safetensors not written: [^\n]*Permission denied", out)
    assert.matches("the previous checkpoint is intact", out, 1, true)
  end)
end)

describe("scorch sample and eval", function()
  it("draws sample i the same whatever N and the chunk size (deterministic sampler)", function()
    local d = dir("ref1")
    local a, b = dir("s10.safetensors"), dir("s25.safetensors")
    local status, out = sh(("%s sample %s --n 10 --sampler ddim --steps 5 --seed 3 --chunk 4 --out %s"):format(
      q(EXE), q(d), q(a)))
    assert.equal(0, status, out)
    assert.matches("wrote " .. a, out, 1, true)
    status, out = sh(("%s sample %s --n 25 --sampler ddim --steps 5 --seed 3 --chunk 25 --out %s"):format(
      q(EXE), q(d), q(b)))
    assert.equal(0, status, out)
    local x, y = assert(sc.load(a)).samples, assert(sc.load(b)).samples
    assert.same({ 10, 2 }, x:shape())
    local vx, vy = x:values(), y:values()
    local maxdiff = 0
    for i = 1, 20 do maxdiff = math.max(maxdiff, math.abs(vx[i] - vy[i])) end
    -- measured: 0 (the network treats rows alike whatever the batch size)
    assert.equal(0, maxdiff)
    -- another seed gives other samples
    status = sh(("%s sample %s --n 10 --sampler ddim --steps 5 --seed 4 --out %s"):format(q(EXE), q(d),
      q(dir("s4.safetensors"))))
    assert.equal(0, status)
    assert.is_true(math.abs(assert(sc.load(dir("s4.safetensors"))).samples:values()[1] - vx[1]) > 1e-3)
    assert.is_not_nil(io.open(dir("s10.png"), "rb"))
  end)

  it("draws sample i the same whatever N and the chunk size (stochastic samplers too)", function()
    -- the later noise comes from sc.samplers.row_noise: draw k of sample i
    -- depends on (seed, i, k) only
    local d = dir("ref1")
    for _, smp in ipairs { "ddpm", "euler_maruyama" } do
      local a, b = dir(smp .. "-10.safetensors"), dir(smp .. "-25.safetensors")
      local status, out = sh(("%s sample %s --n 10 --sampler %s --steps 20 --seed 3 --chunk 3 --out %s"):format(
        q(EXE), q(d), smp, q(a)))
      assert.equal(0, status, out)
      status, out = sh(("%s sample %s --n 25 --sampler %s --steps 20 --seed 3 --chunk 25 --out %s"):format(
        q(EXE), q(d), smp, q(b)))
      assert.equal(0, status, out)
      local vx, vy = assert(sc.load(a)).samples:values(), assert(sc.load(b)).samples:values()
      local maxdiff = 0
      for i = 1, 20 do maxdiff = math.max(maxdiff, math.abs(vx[i] - vy[i])) end
      assert.equal(0, maxdiff, smp)
    end
  end)

  it("trains and samples every config under configs/", function()
    local skipped = {}
    for _, name in ipairs(sc.core.list_dir(ROOT .. "/configs")) do
      local c = config.resolve(config.load_file(ROOT .. "/configs/" .. name))
      local images = c.data.name == "shapes" or c.data.name == "fashion_mnist"
      local extra = images and "data.size=64 batch=8 model.channels=8" or "batch=64 model.width=16"
      if c.data.name == "shapes" then extra = extra .. " data.image_size=16" end
      if c.data.name == "fashion_mnist" and not pcall(sc.data.fashion_mnist, "train", { limit = 1 }) then
        skipped[#skipped + 1] = name -- the data files are not on this machine
      else
        local d = dir("family_" .. name:gsub("%.lua$", ""))
        local status, out = train(("%s steps=6 checkpoint.every=3 log.every=3 sample.n=8 sample.steps=3 %s out=%s")
          :format(q(ROOT .. "/configs/" .. name), extra, q(d)))
        assert.equal(0, status, out)
        assert.equal(2, #log_keys(d))
        local file = dir("family_" .. name:gsub("%.lua$", ".safetensors"))
        status, out = sh(("%s sample %s --n 8 --out %s"):format(q(EXE), q(d), q(file)))
        assert.equal(0, status, out)
        local x = assert(sc.load(file)).samples
        if images then
          assert.equal(4, x:dim())
          assert.equal(8, x:size(1))
          for _, v in ipairs(x:values()) do assert(v >= 0 and v <= 1, name) end -- stored as pixels in [0, 1]
        else
          assert.same({ 8, 2 }, x:shape())
          for _, v in ipairs(x:values()) do assert(v == v and math.abs(v) < 1e6, name) end
        end
      end
    end
    if #skipped > 0 then pending("no Fashion-MNIST files here: not run: " .. table.concat(skipped, ", ")) end
  end)

  it("accepts every sampler of the family with its options, and names the valid ones", function()
    local d = dir("ref1")
    -- a DDPM ε-network drives every diffusion sampler through sc.param's views; the
    -- network evaluations each must make are the check
    local nfe = {
      { "ddpm --steps 10 --variance beta_tilde", 10 }, { "ddim --steps 5 --eta 0.5", 5 },
      { "euler_maruyama --steps 10", 10 }, { "predictor_corrector --steps 50", 100 },
      { "probability_flow --method heun --steps 10", 20 }, { "naive_backward --steps 5", 5 },
      { "heun --steps 4", 7 }, { "dpmpp_2m --steps 5", 5 },
    }
    for _, case in ipairs(nfe) do
      local file = dir("s_zoo.safetensors")
      local status, out = sh(("%s sample %s --n 8 --sampler %s --out %s"):format(q(EXE), q(d), case[1], q(file)))
      assert.equal(0, status, out)
      assert.matches((", %d NFE"):format(case[2]), out, 1, true)
      local x = assert(sc.load(file)).samples
      assert.same({ 8, 2 }, x:shape())
      for _, v in ipairs(x:values()) do assert(v == v and math.abs(v) < 100, case[1]) end
    end
    local status, out = sh(("%s sample %s --n 8 --sampler langevin"):format(q(EXE), q(d)))
    assert.equal(1, status)
    assert.matches("the ddpm family has no sampler 'langevin' (samplers: ddim, ddpm, dpmpp_2m, euler_maruyama, heun, "
      .. "naive_backward, predictor_corrector, probability_flow)", out, 1, true)
    status, out = sh(("%s sample %s --n 8 --sampler ddim --etta 1"):format(q(EXE), q(d)))
    assert.equal(1, status)
    assert.matches("unknown option 'etta'", out, 1, true)
  end)

  it("eval reports MMD and modes of a run's newest samples", function()
    local d = dir("ref1")
    assert.equal(0, (sh(("%s sample %s --n 200"):format(q(EXE), q(d)))))
    local status, out = sh(("%s eval %s"):format(q(EXE), q(d)))
    assert.equal(0, status, out)
    assert.matches("200 samples of eight_gaussians; MMD²%(h=0.1%) against 200 data points [%d%.e%-+]+; modes %d/8", out)
  end)

  it("keeps `scorch FILE.lua` and a script named like a command reachable", function()
    local script = dir("train")
    local f = assert(io.open(script, "wb"))
    f:write("print('script ran', ...)")
    f:close()
    local status, out = sh(("cd %s && %s ./train a b"):format(q(tmp), q(EXE)))
    assert.equal(0, status, out)
    assert.matches("script ran\ta\tb", out, 1, true)
    status, out = sh(("cd %s && %s train"):format(q(tmp), q(EXE)))
    assert.equal(2, status)
    assert.matches("usage: scorch train CONFIG.lua", out, 1, true)
  end)
end)
