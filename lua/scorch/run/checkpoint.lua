--- Checkpoint files of a run: one safetensors file per checkpoint
-- (`ckpt-00001000.safetensors`), written so that a crash at any instant
-- leaves the previous checkpoints whole, and read back with checks that
-- name the file and the first thing that does not match.
--
-- Writing: sc.save into a hidden temporary in the run folder
-- (`.ckpt-….partial`; sc.save itself writes, fsyncs and renames into
-- that name), fsync of that file, rename over the final name, fsync of
-- the folder; then the oldest beyond `keep` are removed.
-- @module scorch.run.checkpoint
local sc = require "scorch"
local core = require "scorch.core"
local util = require "scorch.util"

local durable = core.durable

local M = {}

M.FORMAT = "scorch-run-checkpoint/1"

--- The file name of the checkpoint at a step.
-- @param dir string: the run folder
-- @param step integer
-- @return string
-- @usage checkpoint.path("runs/x", 1000) --> "runs/x/ckpt-00001000.safetensors"
function M.path(dir, step) return ("%s/ckpt-%08d.safetensors"):format(dir, step) end

--- The checkpoints in a run folder, oldest first.
-- @param dir string
-- @return list of {step =, path =}
-- @usage local last = checkpoint.list(dir)[#checkpoint.list(dir)]
function M.list(dir)
  local names = core.list_dir(dir) or {}
  local out = {}
  for _, name in ipairs(names) do
    local step = name:match("^ckpt%-(%d+)%.safetensors$")
    if step then out[#out + 1] = { step = math.tointeger(tonumber(step)), path = dir .. "/" .. name } end
  end
  table.sort(out, function(a, b) return a.step < b.step end)
  return out
end

--- Removes what an interrupted write leaves behind (the hidden temporaries
-- and sc.save's own `.tmp.PID` files); finished checkpoints are never touched.
-- @param dir string
-- @return the number of files removed
-- @usage checkpoint.clean(dir)
function M.clean(dir)
  local n = 0
  for _, name in ipairs(core.list_dir(dir) or {}) do
    if name:match("^%.ckpt%-%d+%.safetensors%.partial") or name:match("%.tmp%.%d+$") then
      if os.remove(dir .. "/" .. name) then n = n + 1 end
    end
  end
  return n
end

--- Test hooks, read from SCORCH_TEST_FAULT (comma-separated): the value
-- of `key=value`, true for a bare `key`, or nil.  Used by spec/run_spec.lua:
-- sleep=S (pause S seconds inside each checkpoint write), enospc (fail that
-- write as a full disk would), kill_at=K (SIGKILL itself after step K),
-- kill_in_ckpt=K (SIGKILL itself inside the checkpoint write of step K),
-- nan_loss=K[:K...] (make the loss of those steps NaN).
-- @param key string
-- @return string, true or nil
-- @usage if checkpoint.test_fault("enospc") then ... end
function M.test_fault(key)
  local f = os.getenv("SCORCH_TEST_FAULT")
  if not f then return nil end
  for item in f:gmatch("[^,]+") do
    local k, v = item:match("^([%w_]+)=(.*)$")
    if k == key then return v end
    if item == key then return true end
  end
  return nil
end

--- Sends SIGKILL to this process (for the kill-and-resume spec): the pid
-- comes from /proc/self/stat, the signal from kill(1).
-- @usage checkpoint.kill_self()
function M.kill_self()
  local f = assert(io.open("/proc/self/stat", "rb"))
  local pid = f:read("a"):match("^(%d+)")
  f:close()
  io.stdout:flush()
  os.execute("kill -KILL " .. pid)
  core.durable.sleep(10) -- the signal arrives meanwhile
  error("scorch.run: kill_self: still alive")
end

--- Writes a checkpoint atomically and keeps the newest `keep`.
-- @param dir string: the run folder (must exist)
-- @param step integer
-- @param tensors table name -> tensor
-- @param meta table name -> string
-- @param keep integer: checkpoints kept (the oldest go first)
-- @return the path, or nil and a message naming the file (the previous
--   checkpoints are untouched then)
-- @usage assert(checkpoint.save(dir, 100, tensors, meta, 3))
function M.save(dir, step, tensors, meta, keep)
  local final = M.path(dir, step)
  local tmp = ("%s/.ckpt-%08d.safetensors.partial"):format(dir, step)
  local function fail(msg)
    os.remove(tmp)
    return nil, ("checkpoint %s not written: %s"):format(final, tostring(msg):gsub("^scorch%.", ""))
  end
  local ok, err = sc.save(tmp, tensors, meta)
  if not ok then return fail(err) end
  local sleep = M.test_fault("sleep")
  if sleep then durable.sleep(tonumber(sleep) or 0) end
  if tonumber(M.test_fault("kill_in_ckpt")) == step then M.kill_self() end
  if M.test_fault("enospc") then return fail("No space left on device (injected by SCORCH_TEST_FAULT)") end
  ok, err = durable.fsync_file(tmp)
  if not ok then return fail(err) end
  ok, err = durable.rename(tmp, final)
  if not ok then return fail(err) end
  local all = M.list(dir)
  for i = 1, #all - keep do os.remove(all[i].path) end
  return final
end

--- Reads a checkpoint and checks it against what the run expects.
-- @param path string
-- @param expect list of {name, shape}: every name must be present with its
--   shape (checked in this order), and nothing else
-- @param tensors optional: the file's tensors when already loaded
-- @param meta optional: its metadata
-- @return tensors, metadata; raises an error naming the file and the first
--   mismatch (unreadable or truncated file, wrong format, a missing,
--   misshapen or extra tensor)
-- @usage local t, meta = checkpoint.read(path, {{"model.w", {2, 2}}})
function M.read(path, expect, tensors, meta)
  if not tensors then
    tensors, meta = sc.load(path)
    if not tensors then
      error(("checkpoint %s cannot be loaded: %s"):format(path, tostring(meta):gsub("^scorch%.", "")), 0)
    end
  end
  meta = meta or {}
  if meta.format ~= M.FORMAT then
    error(("checkpoint %s is not a scorch run checkpoint (format %s, expected %s)"):format(path,
      tostring(meta.format), M.FORMAT), 0)
  end
  local wanted = {}
  for _, e in ipairs(expect) do
    local name, want = e[1], "[" .. table.concat(e[2], ",") .. "]"
    wanted[name] = true
    local t = tensors[name]
    if not t then error(("checkpoint %s does not match the run: tensor '%s' is missing"):format(path, name), 0) end
    if util.shape_str(t) ~= want then
      error(("checkpoint %s does not match the run: tensor '%s' has shape %s, the run's is %s"):format(path,
        name, util.shape_str(t), want), 0)
    end
  end
  local extra = {}
  for name in pairs(tensors) do if not wanted[name] then extra[#extra + 1] = name end end
  table.sort(extra)
  if extra[1] then
    error(("checkpoint %s does not match the run: tensor '%s' is not in the run"):format(path, extra[1]), 0)
  end
  return tensors, meta
end

return M
