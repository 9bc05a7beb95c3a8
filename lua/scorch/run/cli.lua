--- The `scorch train | sample | eval` commands: bin/scorch hands them
-- here as main(command, args) and exits with the status returned.
--
--   scorch train CONFIG.lua [key=value ...]   a new run (folder: out=, else runs/<name>)
--   scorch train RUN [key=value ...]          resume a run (steps=N extends it)
--   scorch sample RUN [--n 1000] [--sampler S] [--steps K] [--seed 0] [--chunk 1000]
--                     [--weights ema|raw] [--out FILE.safetensors] [--OPTION value ...]
--   scorch eval RUN|SAMPLES.safetensors
-- @module scorch.run.cli
local sc = require "scorch"
local run = require "scorch.run"

local M = {}

M.usage = [[
usage: scorch train CONFIG.lua [key=value ...]   start a run (nested keys: optim.lr=1e-4)
       scorch train RUN [key=value ...]          resume the run in folder RUN
       scorch sample RUN [--n N] [--sampler NAME] [--steps K] [--seed S] [--chunk C]
                         [--weights ema|raw] [--out FILE.safetensors] [--OPTION VALUE ...]
       scorch eval RUN|SAMPLES.safetensors
(a script file named train, sample or eval runs as `scorch ./train`)
]]

local function fail(msg)
  io.stdout:flush()
  io.stderr:write("scorch: ", msg, "\n")
  return 1
end

-- `scorch train`: a config file starts a run, a run folder resumes it.
local function train(args)
  local target = args[1]
  if not target or target == "--help" or target == "-h" then
    io.stdout:write(M.usage)
    return target and 0 or 2
  end
  local overrides = table.move(args, 2, #args, 1, {})
  local resume = sc.core.is_dir(target)
  local raw
  if resume then
    raw = run.config.load_file(target .. "/config.lua")
  else
    raw = run.config.load_file(target)
  end
  -- messages name where the mistake is: the file, or the command line
  local cfg = run.config.resolve(raw, resume and target .. "/config.lua" or target)
  run.config.override(cfg, overrides, "command line")
  if resume then cfg.out = target end
  return run.train(cfg, { resume = resume })
end

local sample_keys = { n = true, sampler = true, steps = true, seed = true, chunk = true, weights = true, out = true }

-- `scorch sample RUN [--key value ...]`: unknown keys go to the sampler,
-- whose own option check lists the valid ones.
local function sample(args)
  local dir = args[1]
  if not dir or dir:sub(1, 1) == "-" then return fail("sample: expected a run folder\n" .. M.usage) end
  local opts, extra = {}, {}
  local i = 2
  while i <= #args do
    local key, value = args[i]:match("^%-%-([%w_]+)=(.*)$")
    if not key then
      key = args[i]:match("^%-%-([%w_]+)$")
      value = args[i + 1]
      i = i + 1
    end
    if not key or value == nil then return fail(("sample: expected --option value, got '%s'"):format(args[i - 1])) end
    local v = value
    if value == "true" then v = true elseif value == "false" then v = false
    elseif tonumber(value) then v = math.tointeger(tonumber(value)) or tonumber(value) end
    if sample_keys[key] then opts[key] = v else extra[key] = v end
    i = i + 1
  end
  local r, ckpt = run.load(dir)
  local out = opts.out
  opts.out = nil
  opts.options = extra
  local t0 = sc.time()
  local x, info = run.sampling.draw(r, opts)
  local sampler = opts.sampler or r.fam.default_sampler
  out = out or ("%s/samples-%08d-%s.safetensors"):format(dir, r.step, sampler)
  -- images are stored with pixels in [0, 1], as scripts/eval.lua reads them
  local stored = r.data.is_images and ((x + 1) * 0.5):clamp(0, 1) or x
  local ok, err = sc.save(out, { samples = stored }, { run = dir, checkpoint = ckpt, step = r.step,
    sampler = sampler, steps = opts.steps or r.cfg.sample.steps, seed = opts.seed or 0,
    weights = opts.weights or "ema", config = run.config.serialize(r.cfg) })
  if not ok then return fail(err) end
  local png = out:gsub("%.safetensors$", "") .. ".png"
  run.trainer.figure(png, r, x, ("%s: %s, step %d"):format(r.cfg.name, sampler, r.step))
  print(("wrote %s and %s: %d samples, %s, %s NFE (%.1f s)"):format(out, png, x:size(1), sampler,
    tostring(info and info.nfe or "?"), sc.time() - t0))
  return 0
end

-- `scorch eval`: 2-D samples against their run's data (MMD², modes);
-- image samples go to scripts/eval.lua.
local function eval(args)
  local target = args[1]
  if not target then return fail("eval: expected a run folder or a samples file\n" .. M.usage) end
  local file = target
  if sc.core.is_dir(target) then
    local newest
    for _, name in ipairs(sc.core.list_dir(target) or {}) do
      if name:match("^samples%-.*%.safetensors$") and (not newest or name > newest) then newest = name end
    end
    if not newest then return fail(("eval: %s holds no samples; draw some with `scorch sample %s`"):format(target,
      target)) end
    file = target .. "/" .. newest
  end
  local tensors, meta = sc.load(file)
  if not tensors then return fail(("eval: %s: %s"):format(file, tostring(meta))) end
  local x = tensors.samples
  local cfg = meta and meta.config and run.config.deserialize(meta.config, "samples metadata")
  if not x or x:dim() ~= 2 then
    -- images: FID, KID, precision and recall through scripts/eval.lua
    local init = package.searchpath("scorch", package.path)
    local script = init and init:gsub("lua/scorch/init%.lua$", "scripts/eval.lua")
    local f = script and io.open(script, "rb")
    if not f then return fail("eval: image samples need scripts/eval.lua beside the library") end
    f:close()
    local rest = table.move(args, 2, #args, 1, {})
    if type(cfg) == "table" and not table.concat(rest, " "):find("--data", 1, true) then
      table.insert(rest, 1, "--data=" .. cfg.data.name)
    end
    _G.arg = { [0] = script, file, table.unpack(rest) }
    dofile(script)
    return 0
  end
  if type(cfg) ~= "table" then return fail(("eval: %s does not say which run it came from"):format(file)) end
  local data = sc.data.toy(cfg.data.name)
  local m = math.min(x:size(1), 4000)
  local real = data:sample(m, { generator = sc.Generator(12345) })
  local mmd = sc.metrics.mmd(x:narrow(1, 1, m), real, { bandwidth = 0.1 })
  local line = ("%s: %d samples of %s; MMD²(h=0.1) against %d data points %.3e"):format(file, x:size(1),
    cfg.data.name, m, mmd)
  if data.K then
    local rep = sc.metrics.mode_report(x, data)
    line = line .. ("; modes %d/%d, TV %.4f"):format(rep.covered, rep.n_modes, rep.tv)
  end
  print(line)
  return 0
end

--- Runs one command.
-- @param cmd "train", "sample" or "eval"
-- @param args list of strings (the command's arguments)
-- @return exit status
-- @usage os.exit(require("scorch.run.cli").main("train", {"configs/ddpm_2d.lua", "steps=100"}))
function M.main(cmd, args)
  local fns = { train = train, sample = sample, eval = eval }
  local fn = fns[cmd]
  if not fn then return fail(("unknown command '%s'\n%s"):format(tostring(cmd), M.usage)) end
  local ok, status = pcall(fn, args or {})
  if not ok then
    -- a message from a library check carries the position of the check; the user needs the words
    local msg = tostring(status):gsub("^[^\n]-%.lua:%d+: ", "")
    return fail(cmd .. ": " .. msg)
  end
  return status
end

return M
