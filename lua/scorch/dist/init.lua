--- Collectives across processes: world size and rank, barrier, broadcast,
-- all-reduce and all-gather of tensors; data-parallel training, sharded
-- batches, distributed sampling and merged feature statistics on top.
--
-- Two backends, chosen at `init`: "self", a world of one that needs no
-- library (a laptop runs the same script unchanged), and "mpi", the C module
-- scorch.dist_mpi built with mpicc, loaded only when the process runs under
-- mpirun (Open MPI or MPICH) or when asked for.  Ranks are numbered from 0,
-- as MPI numbers them; rank 0 is the one that writes logs and checkpoints.
--
--   mpirun -np 2 bin/scorch train.lua     -- two ranks, one thread each
--
-- Every collective must be called by every rank, in the same order.  A
-- collective that waits longer than the timeout (300 s, `init{timeout=}` or
-- SCORCH_DIST_TIMEOUT) fails with a Lua error, and so does one waiting for
-- a rank whose script has ended; a process that ends after such a failure
-- aborts the whole job instead of waiting for ranks that are gone.
-- @module scorch.dist
local util = require "scorch.util"

local M = {}
util.merge_module(M, require "scorch.dist.collectives", "scorch.dist")
-- Data-parallel training, sharded batches, distributed evaluation.
util.merge_module(M, require "scorch.dist.parallel", "scorch.dist")
util.merge_module(M, require "scorch.dist.sampling", "scorch.dist")

return M
