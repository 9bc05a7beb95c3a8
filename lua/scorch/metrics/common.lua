--- Helpers shared by the metrics files (not part of sc.metrics): options
-- checks, feature-matrix checks and seeded subsets.
-- @module scorch.metrics.common
local sc = require "scorch"
local util = require "scorch.util"

local M = {}

-- check_opts(fn, opts, valid) -> opts (or {}): util.check_options with the
-- metric's full name, raising at the caller of the metric.
function M.check_opts(fn, opts, valid)
  return util.check_options(opts, valid, "scorch.metrics." .. fn, 4)
end

-- Features as a contiguous float32 [N, D] tensor, or an error naming what.
function M.features_arg(x, fn, what, level)
  if not sc.is_tensor(x) or x:dim() ~= 2 or x:size(1) < 1 then
    error(("scorch.metrics.%s: %s must be features [N, D], got %s"):format(fn, what, util.shape_str(x)),
      (level or 2) + 1)
  end
  return x:detach():float():contiguous()
end

-- A positive integer option with a default.
function M.posint(v, default, fn, name)
  if v == nil then return default end
  if math.type(v) ~= "integer" or v < 1 then
    error(("scorch.metrics.%s: %s must be a positive integer, got %s"):format(fn, name, tostring(v)), 3)
  end
  return v
end

-- The first m entries of a random permutation of 1..n (1-based list).
function M.subset(n, m, generator)
  local idx = require("scorch.data.loader").randperm(n, generator)
  return table.move(idx, 1, m, 1, {})
end

-- Rows `idx` (1-based list) of x.
function M.rows(x, idx)
  return x:index_select(1, idx)
end

return M
