--- The collectives of sc.dist: starting the world, rank and size, barrier,
-- broadcast, all-reduce and all-gather of tensors (see scorch.dist).
-- @module scorch.dist.collectives
local sc = require "scorch"
local util = require "scorch.util"

local M = {}

-- The backend module (scorch.dist_self or scorch.dist_mpi) once started.
local backend, backend_name

-- Environment variables that launchers set in every rank.
local LAUNCHER_VARS = { "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS" }

--- The launcher variable that shows this process was started by mpirun, or nil.
-- @return string: the variable's name and value (`"OMPI_COMM_WORLD_SIZE=2"`), or nil
-- @usage if sc.dist.launched() then print("under mpirun") end
function M.launched()
  for _, v in ipairs(LAUNCHER_VARS) do
    local val = os.getenv(v)
    if val and val ~= "" then return v .. "=" .. val end
  end
  return nil
end

local function load_backend(name, why)
  local mod = name == "mpi" and "scorch.dist_mpi" or "scorch.dist_self"
  local ok, m = pcall(require, mod)
  if ok then return m end
  if name == "mpi" then
    error(("scorch.dist.init: MPI was asked for (%s), but this scorch has no MPI backend "
      .. "(the C module scorch.dist_mpi did not load: %s). Install Open MPI "
      .. "(apt-get install openmpi-bin libopenmpi-dev, or scripts/bootstrap.sh) and rebuild "
      .. "with `make` (or `make MPI=1`)"):format(why, tostring(m):gsub("\n.*", "")), 3)
  end
  error("scorch.dist.init: the world-of-one module scorch.dist_self did not load: " .. tostring(m), 3)
end

--- Starts the world (once; later calls return the same rank and size).
-- The backend is MPI when the process runs under mpirun, otherwise the
-- world of one; asking for "mpi" without an MPI build is an error that
-- says how to get one.
-- @tparam[opt] table opts `{backend = "auto" | "self" | "mpi", timeout = seconds}`;
--   backend "auto" (default) looks for mpirun's environment variables;
--   timeout (default SCORCH_DIST_TIMEOUT or 300) bounds every collective's wait
-- @treturn integer rank (0-based)
-- @treturn integer size (number of ranks)
-- @usage local rank, size = sc.dist.init()
function M.init(opts)
  opts = util.check_options(opts, { "backend", "timeout" }, "scorch.dist.init")
  local want = opts.backend or "auto"
  if want ~= "auto" and want ~= "self" and want ~= "mpi" then
    error(("scorch.dist.init: backend must be \"auto\", \"self\" or \"mpi\" (got %s)"):format(tostring(want)), 2)
  end
  local timeout = opts.timeout or tonumber(os.getenv("SCORCH_DIST_TIMEOUT") or "") or 300
  if type(timeout) ~= "number" or not (timeout > 0) then
    error(("scorch.dist.init: timeout must be a positive number of seconds (got %s)"):format(tostring(timeout)), 2)
  end
  local launcher = M.launched()
  local name = want
  if name == "auto" then name = launcher and "mpi" or "self" end
  if backend then
    if name ~= backend_name then
      error(("scorch.dist.init: the world is already started with backend %q, not %q")
        :format(backend_name, name), 2)
    end
  else
    local m = load_backend(name, launcher or "backend = \"mpi\"")
    backend, backend_name = m, name
  end
  return backend.init(timeout)
end

-- The started backend (starting it with the defaults if needed).
local function world()
  if not backend then M.init() end
  return backend
end

-- The backend's C module itself, for scorch.dist.parallel (reduce_bucket).
function M._backend() return world() end

--- This process's rank, 0 to size() - 1 (starts the world if needed).
-- @treturn integer
-- @usage if sc.dist.rank() == 0 then print("writer") end
function M.rank() return world().rank() end

--- The number of ranks (1 without mpirun; starts the world if needed).
-- @treturn integer
-- @usage local p = sc.dist.size()
function M.size() return world().size() end

--- The backend's name: "self" or "mpi" (starts the world if needed).
-- @treturn string
-- @usage print(sc.dist.backend())
function M.backend() return world().backend() end

--- Whether this rank is rank 0, the one that writes logs and checkpoints.
-- @treturn boolean
-- @usage if sc.dist.is_main() then log:write(line) end
function M.is_main() return world().rank() == 0 end

local function check_tensor(t, fn, argn)
  if not sc.is_tensor(t) then
    error(("scorch.dist.%s: bad argument #%d (expected a tensor, got %s)"):format(fn, argn or 1, type(t)), 3)
  end
end

-- In place on t through a contiguous buffer: f(buffer) then copied back.
local function in_place(t, fn, f)
  if t:requires_grad() and sc.is_grad_enabled() then
    error(("scorch.dist.%s: in-place change of a tensor that requires grad; "
      .. "wrap it in sc.no_grad or detach it first"):format(fn), 3)
  end
  if t:is_contiguous() then
    f(t)
  else
    local c = t:contiguous()
    f(c)
    t:copy_(c)
  end
  return t
end

--- Waits until every rank has called barrier.
-- @usage sc.dist.barrier()
function M.barrier() world().barrier() end

--- Sums (or takes the max or min of) a tensor over all ranks, in place.
-- Sums run over a ring in a fixed order: every rank gets the same bits,
-- run after run.  The shapes must agree on every rank (not checked: use
-- all_gather to compare shapes first if they may not).
-- @tparam Tensor t any shape, float32 or float64; overwritten with the result
-- @tparam[opt] table opts `{op = "sum" | "max" | "min"}` (default "sum")
-- @return t
-- @usage sc.dist.all_reduce(loss_sum)
function M.all_reduce(t, opts)
  check_tensor(t, "all_reduce")
  opts = util.check_options(opts, { "op" }, "scorch.dist.all_reduce")
  local op = opts.op or "sum"
  if op ~= "sum" and op ~= "max" and op ~= "min" then
    error(("scorch.dist.all_reduce: op must be \"sum\", \"max\" or \"min\" (got %s)"):format(tostring(op)), 2)
  end
  local b = world()
  return in_place(t, "all_reduce", function(c) b.all_reduce(c, op) end)
end

--- Copies root's tensor into every rank's, in place.
-- @tparam Tensor t any shape (the same on every rank); overwritten except on root
-- @tparam[opt=0] integer root the rank whose values are sent
-- @return t
-- @usage sc.dist.broadcast(weights, 0)
function M.broadcast(t, root)
  check_tensor(t, "broadcast")
  local b = world()
  root = root or 0
  if math.type(root) ~= "integer" or root < 0 or root >= b.size() then
    error(("scorch.dist.broadcast: root must be a rank from 0 to %d (got %s)"):format(b.size() - 1, tostring(root)), 2)
  end
  return in_place(t, "broadcast", function(c) b.broadcast(c, root) end)
end

local DTYPE_CODE = { float32 = 1, float64 = 2 }
local SHAPE_SLOTS = 10 -- dtype, ndim, then up to 8 sizes

-- The [size, 10] table of every rank's (dtype, ndim, sizes) for t.
local function gather_shapes(b, t)
  local desc = { DTYPE_CODE[t:dtype()] or 0, t:dim() }
  for i, s in ipairs(t:shape()) do desc[2 + i] = s end
  for i = #desc + 1, SHAPE_SLOTS do desc[i] = 0 end
  local mine = sc.tensor(desc, { dtype = "float64" })
  local all = sc.empty({ b.size() * SHAPE_SLOTS }, { dtype = "float64" })
  b.all_gather(mine, all)
  return all:view(b.size(), SHAPE_SLOTS):totable()
end

local function desc_str(row)
  local dims = {}
  for i = 1, math.tointeger(row[2]) do dims[i] = ("%d"):format(row[2 + i]) end
  return ("[%s] %s"):format(table.concat(dims, ","), row[1] == 2 and "float64" or "float32")
end

--- Gathers every rank's tensor, joined along dim 1 in rank order.  The
-- shapes and dtypes are compared first: a rank that differs is an error
-- naming it, on every rank.
-- @tparam Tensor t [n, ...] (the same shape and dtype on every rank); a 0-d tensor counts as [1]
-- @treturn Tensor [size * n, ...] of t's dtype (rank 0's rows first)
-- @usage local all_losses = sc.dist.all_gather(losses)
function M.all_gather(t)
  check_tensor(t, "all_gather")
  local b = world()
  local rows = gather_shapes(b, t)
  local mine = desc_str(rows[b.rank() + 1])
  for r, row in ipairs(rows) do
    local d = desc_str(row)
    if d ~= desc_str(rows[1]) then
      error(("scorch.dist.all_gather: rank %d has a tensor of shape %s, rank 0 has %s (this rank: %s)")
        :format(r - 1, d, desc_str(rows[1]), mine), 2)
    end
  end
  local c = t:detach():contiguous()
  if c:dim() == 0 then c = c:view(1) end
  local shape = c:shape()
  shape[1] = shape[1] * b.size()
  local out = sc.empty(shape, { dtype = t:dtype() })
  b.all_gather(c, out)
  return out
end

--- Ends the world: every rank says goodbye and waits for the others'
-- (bounded by the timeout), then MPI is finalized.  Called by itself when
-- the Lua state closes (a script that ends normally or by an error, or
-- `os.exit(code, true)`); a script ended by `os.exit(code)` without closing
-- is seen by mpirun as a rank that died, which ends the job.
-- @usage sc.dist.finalize()
function M.finalize()
  if backend then backend.finalize() end
end

--- Time and traffic of this rank's collectives since the last reset_stats.
-- @treturn table `{calls = n, bytes = sent by this rank, seconds = waited and moved}`
-- @usage local s = sc.dist.stats(); print(s.bytes, s.seconds)
function M.stats() return world().stats() end

--- Sets the counters of `stats` back to zero.
-- @usage sc.dist.reset_stats()
function M.reset_stats() world().reset_stats() end

return M
