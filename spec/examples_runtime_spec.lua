-- The 2-D examples train through scorch.run, checked against runs of the
-- real host: the example's run folder holds the resolved config (its
-- options over configs/NAME.lua), the metrics log and checkpoints; a second
-- start trains no step and reports the same numbers; a run killed with
-- SIGKILL mid-training resumes and ends bit for bit where an unbroken one
-- ends; a folder that holds another run is refused, naming the difference.
local sc = require "scorch"
local run = require "scorch.run"

local EXE = os.getenv("SCORCH_BIN") or "bin/scorch"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Runs a shell command; returns its exit status and its output (stdout and stderr).
local function sh(cmd)
  local p = io.popen("( " .. cmd .. " ) 2>&1; echo \"__status=$?\"")
  local out = p:read("a")
  p:close()
  local status = tonumber(out:match("__status=(%d+)%s*$"))
  return status, (out:gsub("__status=%d+%s*$", ""))
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- The run folders under out whose names start with prefix (prefix-KEY), sorted.
local function run_dirs(out, prefix)
  local found = {}
  for _, name in ipairs(sc.core.list_dir(out) or {}) do
    local pattern = "^" .. prefix:gsub("%p", "%%%0") .. "%-%x%x%x%x%x%x%x%x$"
    if name:match(pattern) then found[#found + 1] = out .. "/" .. name end
  end
  table.sort(found)
  return found
end

local tmp
setup(function()
  local p = io.popen("mktemp -d /tmp/scorch_examples_runtime.XXXXXX")
  tmp = p:read("l")
  p:close()
end)

teardown(function()
  if tmp and tmp:match("^/tmp/scorch_examples_runtime%.") then os.execute("rm -rf " .. q(tmp)) end
end)

-- The report without its timings and without the runtime's progress lines:
-- what must not change when the same weights are evaluated again.
local function report(out)
  local keep = {}
  for line in out:gmatch("[^\n]+") do
    if not (line:match("^run ") or line:match("^step %d") or line:match("^done:") or line:match("^trained ")
        or line:match("^note: ") or line:match("nothing to train") or line:match("^train")
        or line:match("^pictures: ") or line:match("^report: ")) then
      -- timings: "1.0 s", "(0.3s)", "  2.1s  " (ms/step stays: it comes from the log)
      keep[#keep + 1] = (line:gsub("[%d.]+ ?s%f[%s]", ""):gsub("[%d.]+ ?s$", ""):gsub("%(%d+%.%ds%)", ""))
    end
  end
  return table.concat(keep, "\n")
end

-- Every tensor of two checkpoints, bit for bit; returns how many.
local function same_tensors(a, b)
  local ta = assert(sc.load(a))
  local tb = assert(sc.load(b))
  local n = 0
  for name, t in pairs(ta) do
    local u = assert(tb[name], b .. " lacks " .. name)
    local va, vb = t:values(), u:values()
    assert.equal(#va, #vb, name)
    for i = 1, #va do
      if va[i] ~= vb[i] then error(("%s differs at element %d: %.17g vs %.17g"):format(name, i, va[i], vb[i])) end
    end
    n = n + 1
  end
  for name in pairs(tb) do assert(ta[name], a .. " lacks " .. name) end
  return n
end

describe("examples/ncsn_2d.lua as a run", function()
  -- a tiny NCSN: 40 steps of 64 points, a 3×16 network, short chains
  local ARGS = "--steps 40 --batch 64 --hidden 16 --samples 200 --T 5 --plain-steps 10 --trajectories 4 --threads 1"
  local function example(out, extra, env)
    return sh((env and env .. " " or "") .. q(EXE) .. " examples/ncsn_2d.lua " .. ARGS .. " " .. (extra or "")
      .. " --out " .. q(out))
  end
  local first_out

  it("writes config.lua, metrics.jsonl and checkpoints in OUT/run-KEY", function()
    local out = tmp .. "/ncsn"
    local status, text = example(out)
    assert.equal(0, status, text)
    assert.matches("trained 40 steps", text)
    local dirs = run_dirs(out, "run")
    assert.equal(1, #dirs)
    local dir = dirs[1]
    -- the resolved config: configs/ncsn_2d.lua's fields where the example sets none
    local cfg = run.config.load_file(dir .. "/config.lua")
    assert.equal("ncsn", cfg.family)
    assert.equal(40, cfg.steps)
    assert.equal(64, cfg.batch)
    assert.equal("two_gaussians", cfg.data.name)
    assert.same({ sigma_max = 20.0, sigma_min = 1.0, levels = 10 }, cfg.objective)
    assert.equal(16, cfg.model.width)
    assert.equal("linear_tail", cfg.optim.schedule) -- from the config file
    assert.equal(0.3, cfg.optim.tail)
    assert.equal(dir, cfg.out)
    assert.equal(dir, out .. "/run-" .. run.example.key(cfg)) -- the key names the training options
    -- one metrics line per step (log.every = steps // 100, at least 1), in order
    local steps = run.trainer.read_losses(dir .. "/metrics.jsonl")
    assert.equal(40, #steps)
    assert.equal(1, steps[1])
    assert.equal(40, steps[40])
    -- a checkpoint every 4 steps, the newest two kept
    local ckpts = run.checkpoint.list(dir)
    assert.same({ 36, 40 }, { ckpts[1].step, ckpts[2].step })
    first_out = text
  end)

  it("resumes rather than retrains when run again: no step, the same checkpoint, the same report", function()
    local out = tmp .. "/ncsn"
    local dir = run_dirs(out, "run")[1]
    local ckpt = run.checkpoint.path(dir, 40)
    local before = read(ckpt)
    local status, text = example(out)
    assert.equal(0, status, text)
    assert.matches("step 40 of 40", text)
    assert.matches("nothing to train", text)
    assert.not_matches("trained 40 steps", text)
    assert.equal(before, read(ckpt)) -- not rewritten
    assert.equal(1, #run_dirs(out, "run"))
    assert.equal(2, #run.checkpoint.list(dir))
    assert.equal(40, #run.trainer.read_losses(dir .. "/metrics.jsonl"))
    -- the same weights give the same score errors, mode fractions and MMDs
    assert.matches("score error at σ_L = 1: %d", text)
    assert.equal(report(first_out), report(text))
  end)

  it("killed with SIGKILL at step 25, resumes at step 24 and ends bit for bit as the unbroken run", function()
    local out = tmp .. "/ncsn_killed"
    local status, text = example(out, nil, "SCORCH_TEST_FAULT=kill_at=25")
    assert.equal(137, status, text)
    local dir = run_dirs(out, "run")[1]
    assert.equal(24, run.checkpoint.list(dir)[2].step)
    status, text = example(out)
    assert.equal(0, status, text)
    assert.matches("step 24 of 40", text)
    assert.matches("trained 16 steps", text)
    local n = same_tensors(run.checkpoint.path(run_dirs(tmp .. "/ncsn", "run")[1], 40), run.checkpoint.path(dir, 40))
    assert.is_true(n >= 3 * 8) -- model, EMA and both Adam moments of 8 parameters
    assert.equal(report(first_out), report(text))
    -- the metrics log was cut back to the checkpoint and continued: one line per step
    local steps = run.trainer.read_losses(dir .. "/metrics.jsonl")
    assert.equal(40, #steps)
    for i = 1, 40 do assert.equal(i, steps[i]) end
  end)

  it("trains other options beside the first run, and stops on a checkpoint that does not fit", function()
    local out = tmp .. "/ncsn"
    local first = run_dirs(out, "run")[1]
    local before = read(run.checkpoint.path(first, 40))
    local status, text = example(out, "--hidden 24 --steps 8")
    assert.equal(0, status, text)
    assert.matches("trained 8 steps", text)
    local dirs = run_dirs(out, "run")
    assert.equal(2, #dirs)
    local other = dirs[1] == first and dirs[2] or dirs[1]
    assert.equal(24, run.config.load_file(other .. "/config.lua").model.width)
    assert.equal(before, read(run.checkpoint.path(first, 40)))
    -- a newer checkpoint of the other network in the first run's folder: refused by name, nothing trained
    local f = assert(io.open(run.checkpoint.path(first, 44), "wb"))
    f:write(read(run.checkpoint.path(other, 8)))
    f:close()
    status, text = example(out)
    assert.equal(1, status, text)
    assert.matches("examples/ncsn_2d.lua: checkpoint .-ckpt%-00000044%.safetensors does not match the run's config"
      .. " at ", text)
    assert.matches("pass %-%-out DIR", text)
    assert.equal(before, read(run.checkpoint.path(first, 40)))
    os.remove(run.checkpoint.path(first, 44))
  end)
end)

describe("examples/score_matching_2d.lua as runs", function()
  local ARGS = "--methods esm,dsm --steps 20 --batch 64 --hidden 16 --langevin-steps 5 --threads 1"

  it("trains one run per method from the same start, and a second start trains none", function()
    local out = tmp .. "/sm"
    local cmd = q(EXE) .. " examples/score_matching_2d.lua " .. ARGS .. " --out " .. q(out)
    local status, first = sh(cmd)
    assert.equal(0, status, first)
    for _, m in ipairs { "esm", "dsm" } do
      local dirs = run_dirs(out, "run-" .. m)
      assert.equal(1, #dirs)
      local dir = dirs[1]
      local cfg = run.config.load_file(dir .. "/config.lua")
      assert.equal(m, cfg.objective.method)
      assert.equal("two_moons", cfg.data.name)
      assert.equal(20, #run.trainer.read_losses(dir .. "/metrics.jsonl"))
      assert.equal(20, run.checkpoint.list(dir)[2].step)
    end
    local again
    status, again = sh(cmd)
    assert.equal(0, status, again)
    assert.matches("step 20 of 20", again)
    assert.not_matches("step 0 of 20", again)
    -- the table (errors and final losses; ms/step comes from the logs, which did not change)
    assert.equal(report(first), report(again))
  end)
end)

describe("examples/gan_2d.lua as runs", function()
  -- a tiny WGAN-GP (5 critic steps per generator step) on the 0.8/0.2 mixture, evaluated every 5 steps
  local ARGS = "--data two_gaussians --losses wgan_gp --steps 20 --eval-every 5 --batch 64 --samples 300 --threads 1"
  local function example(out, env)
    return sh((env and env .. " " or "") .. q(EXE) .. " examples/gan_2d.lua " .. ARGS .. " --out " .. q(out))
  end

  it("keeps the modes it measures during training in the metrics log, and a killed run resumes them exactly", function()
    local a, b = tmp .. "/gan", tmp .. "/gan_killed"
    local status, first = example(a)
    assert.equal(0, status, first)
    local dir = run_dirs(a, "run-two_gaussians-wgan_gp")[1]
    local lines = {}
    for line in read(dir .. "/metrics.jsonl"):gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.equal(20, #lines)
    for s = 1, 20 do
      local modes = tonumber(lines[s]:match('"modes":([^,}]+)'))
      if s % 5 == 0 then
        assert.is_true(modes == 1 or modes == 2, lines[s])
        local m1, m2 = tonumber(lines[s]:match('"mode_1":([^,}]+)')), tonumber(lines[s]:match('"mode_2":([^,}]+)'))
        assert.is_true(m1 >= 0 and m2 >= 0 and m1 + m2 <= 1 + 1e-12, lines[s])
      else
        assert.is_nil(modes, lines[s])
      end
    end
    status = example(b, "SCORCH_TEST_FAULT=kill_at=13")
    assert.equal(137, status)
    local text
    status, text = example(b)
    assert.equal(0, status, text)
    assert.matches("step 12 of 20", text)
    local kdir = run_dirs(b, "run-two_gaussians-wgan_gp")[1]
    same_tensors(run.checkpoint.path(dir, 20), run.checkpoint.path(kdir, 20))
    local killed = {}
    for line in read(kdir .. "/metrics.jsonl"):gmatch("[^\n]+") do killed[#killed + 1] = run.trainer.log_key(line) end
    for s = 1, 20 do assert.equal(run.trainer.log_key(lines[s]), killed[s]) end
    assert.equal(report(first), report(text))
  end)
end)

describe("each converted example with its full-size options", function()
  -- killed after its first step: enough to write the run's resolved config
  local cases = {
    { "ncsn_2d", "--data eight_gaussians", "run" },
    { "score_matching_2d", "--methods ssm", "run-ssm" },
    { "edm_2d", "", "run" },
    { "sde_2d", "", "run" },
    { "flows_2d", "--data eight_gaussians", "run-eight_gaussians" },
    { "vae_2d", "--data eight_gaussians", "run-eight_gaussians" },
    { "ebm_2d", "--data eight_gaussians", "run-eight_gaussians" },
    { "gan_2d", "--data eight_gaussians --losses ns", "run-eight_gaussians-ns" },
  }
  for _, c in ipairs(cases) do
    local name, args, prefix = c[1], c[2], c[3]
    it(("%s %s trains configs/%s.lua's run"):format(name, args, name), function()
      local out = tmp .. "/full_" .. name
      local status, text = sh("SCORCH_TEST_FAULT=kill_at=1 " .. q(EXE) .. " examples/" .. name .. ".lua " .. args
        .. " --threads 1 --out " .. q(out))
      assert.equal(137, status, text)
      local dirs = run_dirs(out, prefix)
      assert.equal(1, #dirs, text)
      local file = run.config.resolve(run.config.load_file("configs/" .. name .. ".lua"))
      local ran = run.config.resolve(run.config.load_file(dirs[1] .. "/config.lua"))
      assert.is_nil(run.config.first_difference(file, ran))
      assert.equal(file.steps, ran.steps)
      assert.equal(out .. "/" .. prefix .. "-" .. run.example.key(file), dirs[1])
    end)
  end
end)
