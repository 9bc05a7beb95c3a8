--- The training of an example script as a run of the runtime: the
-- example's config file under configs/, the example's own fields (its
-- command-line options) laid over it, trained in a run folder named by
-- those options (OUT/run-KEY, KEY 8 hex digits of the training's config)
-- that holds the resolved config, metrics.jsonl and checkpoints.  Running
-- the script again with the same options resumes the run there (a finished
-- run trains no step); other options train in a folder of their own;
-- Ctrl-C checkpoints and exits with 130.
--
--   local job, info = require("scorch.run").example.train {
--     script = "examples/ncsn_2d.lua", config = "ncsn_2d", out = "out/ncsn_2d/run",
--     fields = { steps = 1000, data = { name = "two_gaussians" } } }
--   -- job.dir is out/ncsn_2d/run-<key>; job.net holds the trained weights, job.ema their average
-- @module scorch.run.example
local sc = require "scorch"
local util = require "scorch.util"
local config = require "scorch.run.config"
local trainer = require "scorch.run.trainer"

local M = {}

--- The path of configs/NAME.lua beside the library (the checkout or
-- install that holds lua/scorch), else under the current folder.
-- @param name string: the config's name without .lua
-- @return string
-- @usage local path = example.config_file("ncsn_2d")
function M.config_file(name)
  if type(name) ~= "string" or not name:match("^[%w_]+$") then
    error(("scorch.run.example.config_file: bad argument #1 (a config name like ncsn_2d, got %s)")
      :format(tostring(name)), 2)
  end
  local init = package.searchpath("scorch", package.path)
  local root = init and init:match("^(.*)/lua/scorch/init%.lua$")
  local path = ("%s/configs/%s.lua"):format(root or ".", name)
  local f = io.open(path, "rb")
  if not f then return ("configs/%s.lua"):format(name) end
  f:close()
  return path
end

-- b laid over a: tables field by field, other values replaced.
local function overlay(a, b)
  local out = config.copy(a)
  for k, v in pairs(b) do
    if type(v) == "table" and type(out[k]) == "table" then out[k] = overlay(out[k], v) else out[k] = config.copy(v) end
  end
  return out
end

-- FNV-1a (32 bits) of a string, as 8 hex digits.
local function digest(text)
  local h = 0x811C9DC5
  for i = 1, #text do h = ((h ~ text:byte(i)) * 0x01000193) & 0xFFFFFFFF end
  return ("%08x"):format(h)
end

--- The 8 hex digits that name an example's run: a digest of its config
-- outside the fields a resumed run may change (steps are in, threads,
-- intervals and the folder are not), so every set of training options has
-- a folder of its own and the same command finds its run again.
-- @param cfg a resolved config
-- @return string
-- @usage print(example.key(cfg)) --> "3f9a12bc"
function M.key(cfg)
  if type(cfg) ~= "table" or type(cfg.family) ~= "string" then
    error("scorch.run.example.key: bad argument #1 (a resolved config expected)", 2)
  end
  local c = config.copy(cfg)
  for k in pairs(config.resumable) do if k ~= "steps" then c[k] = nil end end
  return digest(config.serialize(c))
end

--- The resolved config of an example's run: configs/<config>.lua with the
-- example's fields over it, a checkpoint every tenth of the steps (the
-- newest two kept) and a metrics line every hundredth, unless the fields
-- say otherwise; its folder is `out` followed by "-" and the run's key.
-- @param opts table {script = the example's path (errors name it), config = the config's name,
--   out = the run folder's path before its key (e.g. "out/ncsn_2d/run"), fields = table laid over the file}
-- @return the resolved config
-- @usage local cfg = example.config{script = "x.lua", config = "ncsn_2d", out = "out/x/run", fields = {}}
function M.config(opts)
  opts = util.check_options(opts, { "script", "config", "out", "fields" }, "scorch.run.example.config")
  for _, k in ipairs { "script", "config", "out" } do
    if type(opts[k]) ~= "string" or opts[k] == "" then
      error(("scorch.run.example.config: '%s' must be a non-empty string (got %s)"):format(k, tostring(opts[k])), 2)
    end
  end
  if opts.fields ~= nil and type(opts.fields) ~= "table" then
    error(("scorch.run.example.config: 'fields' must be a table (got %s)"):format(type(opts.fields)), 2)
  end
  local raw = overlay(config.load_file(M.config_file(opts.config)), opts.fields or {})
  raw.out = opts.out
  local steps = math.tointeger(raw.steps) or 1
  raw.checkpoint = overlay({ every = math.max(1, steps // 10), keep = 2 }, (opts.fields or {}).checkpoint or {})
  raw.log = overlay({ every = math.max(1, steps // 100) }, (opts.fields or {}).log or {})
  local cfg = config.resolve(raw, opts.script)
  cfg.out = opts.out .. "-" .. M.key(cfg)
  return cfg
end

--- Trains (or resumes) an example's run and returns it.  Its folder is
-- named by the training's options (see key), so the same command resumes
-- it and other options train beside it.  A checkpoint there that does not
-- fit the run (a code change) stops the script with the runtime's message
-- and a hint to pass --out; a signal stops it after its checkpoint with
-- 128 + the signal.
-- @param opts table: as config's, plus quiet (no progress lines) and
--   on_log (function(run) -> table of numbers by name or nil, called at each
--   metrics line, whose numbers go into it: measurements during training
--   that a resumed run keeps; see metric)
-- @return the run (scorch.run.trainer's, trained: net holds the trained
--   weights, ema their average), and {from = the step it started at, steps =
--   steps trained now, seconds = their wall time}
-- @usage local job, info = example.train{script = arg[0], config = "ncsn_2d", out = "out/ncsn_2d/run"}
function M.train(opts)
  opts = util.check_options(opts, { "script", "config", "out", "fields", "quiet", "on_log" },
    "scorch.run.example.train")
  local quiet, on_log = opts.quiet, opts.on_log
  opts.quiet, opts.on_log = nil, nil
  if on_log ~= nil and type(on_log) ~= "function" then
    error(("scorch.run.example.train: 'on_log' must be a function (got %s)"):format(type(on_log)), 2)
  end
  local cfg = M.config(opts)
  local function fail(msg)
    io.stderr:write(("%s: %s\n(pass --out DIR to train a new run elsewhere)\n"):format(opts.script, msg))
    os.exit(1)
  end
  local ok, job = pcall(trainer.open, cfg, { resume = true, quiet = quiet })
  if not ok then fail(job) end
  job.on_log = on_log
  local from, t0 = job.step, sc.time()
  local status = trainer.train(job)
  if status ~= 0 then os.exit(status, true) end -- stopped by a signal, after its checkpoint
  return job, { from = from, steps = job.step - from, seconds = sc.time() - t0 }
end

--- The loss curve of a run: its metrics log's window means.
-- @param job a run (from train)
-- @return table of numbers
-- @usage local losses = example.losses(job)
function M.losses(job)
  local _, losses = trainer.read_losses(job.dir .. "/metrics.jsonl")
  return losses
end

--- One number of a run's metrics log, at the lines that have it.
-- @param job a run (from train)
-- @param key string: a field of the metrics lines (loss_d, or an on_log name)
-- @return table of steps, table of values
-- @usage local steps, covered = example.metric(job, "modes")
function M.metric(job, key)
  if type(key) ~= "string" or not key:match("^[%w_]+$") then
    error(("scorch.run.example.metric: bad argument #2 (a field name, got %s)"):format(tostring(key)), 2)
  end
  local steps, values = {}, {}
  local f = io.open(job.dir .. "/metrics.jsonl", "rb")
  if not f then return steps, values end
  for line in f:lines() do
    local v = tonumber(line:match('"' .. key .. '":([^,}]+)'))
    if v then
      steps[#steps + 1], values[#values + 1] = tonumber(line:match('"step":(%d+)')), v
    end
  end
  f:close()
  return steps, values
end

--- The wall time of a run's training steps, from its metrics log (every
-- session's; checkpoint writes and figures are not in it): each line's
-- window took log.every·batch / samples_per_s seconds.
-- @param job a run (from train)
-- @return seconds (number)
-- @usage local ms = 1000 * example.seconds(job) / job.step
function M.seconds(job)
  local f = io.open(job.dir .. "/metrics.jsonl", "rb")
  if not f then return 0 end
  local total, per = 0, job.cfg.batch * job.cfg.log.every
  for line in f:lines() do
    local rate = tonumber(line:match('"samples_per_s":([^,}]+)'))
    if rate and rate > 0 then total = total + per / rate end
  end
  f:close()
  return total
end

return M
