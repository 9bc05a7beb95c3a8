--- scorch.run: durable training runs (`scorch train`, `scorch sample`,
-- `scorch eval`).  A run is a folder holding its resolved config, a
-- metrics log (metrics.jsonl), the loss curve, sample figures and
-- checkpoints that hold the whole training state.  Reached as
-- `require "scorch.run"` (it is not a field of `sc`).
--
--   local run = require "scorch.run"
--   local cfg = run.config.resolve(run.config.load_file("configs/ddpm_2d.lua"))
--   run.config.override(cfg, {"steps=200"})
--   local status = run.train(cfg)            -- 0, or 128 + a signal number
-- @module scorch.run
local M = {
  config = require "scorch.run.config",
  checkpoint = require "scorch.run.checkpoint",
  families = require "scorch.run.families",
  trainer = require "scorch.run.trainer",
  sampling = require "scorch.run.sampling",
  example = require "scorch.run.example",
}

--- Trains a resolved config in its run folder (resuming when resume is set
-- and the folder holds checkpoints).
-- @param cfg a resolved config (scorch.run.config.resolve)
-- @param opts table {resume = false, quiet = false}
-- @return exit status: 0 when done, 128 + the signal when stopped by one
-- @usage local status = require("scorch.run").train(cfg)
function M.train(cfg, opts)
  return M.trainer.train(M.trainer.open(cfg, opts))
end

--- Opens an existing run folder at its newest checkpoint, for sampling or
-- inspection (nothing is written).
-- @param dir string: the run folder
-- @return the run (scorch.run.trainer.build's table, restored), the checkpoint's path
-- @usage local r, path = require("scorch.run").load("runs/ddpm_2d")
function M.load(dir)
  local raw = M.config.load_file(dir .. "/config.lua")
  local cfg = M.config.resolve(raw, "scorch.run.load")
  local ckpts = M.checkpoint.list(dir)
  if #ckpts == 0 then error(("run %s has no checkpoint yet"):format(dir), 0) end
  local run = M.trainer.build(cfg)
  run.dir = dir
  M.trainer.restore(run, ckpts[#ckpts].path)
  return run, ckpts[#ckpts].path
end

return M
