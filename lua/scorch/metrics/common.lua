-- Helpers shared by the metrics files (not part of sc.metrics): options
-- checks, feature-matrix checks and seeded subsets.
local sc = require "scorch"

local M = {}

-- check_opts(fn, opts, valid) -> opts (or {}): raises when opts has a key
-- that is not in the list `valid`, naming the valid ones.
function M.check_opts(fn, opts, valid)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(("scorch.metrics.%s: options must be a table, got %s"):format(fn, type(opts)), 3)
  end
  local set = {}
  for _, k in ipairs(valid) do set[k] = true end
  for k in pairs(opts) do
    if not set[k] then
      local names = table.move(valid, 1, #valid, 1, {})
      table.sort(names)
      error(("scorch.metrics.%s: unknown option '%s' (valid: %s)"):format(fn, tostring(k),
        table.concat(names, ", ")), 3)
    end
  end
  return opts
end

-- Features as a contiguous float32 [N, D] tensor, or an error naming what.
function M.features_arg(x, fn, what, level)
  if not sc.is_tensor(x) or x:dim() ~= 2 or x:size(1) < 1 then
    local got = sc.is_tensor(x) and "[" .. table.concat(x:shape(), ",") .. "]" or type(x)
    error(("scorch.metrics.%s: %s must be features [N, D], got %s"):format(fn, what, got), (level or 2) + 1)
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
