--- Classification objectives.  cross_entropy is the negative log-likelihood
-- of the labels under softmax(logits): −log p(y | x) = −(z_y − log Σ_k e^{z_k}).
-- @module scorch.losses.classification
local sc = require "scorch"

local M = {}

-- Labels as a Lua array of integers from a tensor or a table, checked
-- against N examples and K classes.
local function label_list(labels, N, K)
  local list
  if sc.is_tensor(labels) then
    if labels:numel() ~= N or (labels:dim() ~= 1 and not (labels:dim() == 2 and labels:size(2) == 1)) then
      error(("scorch.losses.cross_entropy: labels must have N = %d entries, got shape [%s]")
        :format(N, table.concat(labels:shape(), ",")), 3)
    end
    list = labels:reshape(-1):values()
  elseif type(labels) == "table" then
    if #labels ~= N then
      error(("scorch.losses.cross_entropy: labels must have N = %d entries, got %d"):format(N, #labels), 3)
    end
    list = labels
  else
    error(("scorch.losses.cross_entropy: labels must be a tensor or a table, got %s"):format(type(labels)), 3)
  end
  local out = {}
  for i = 1, N do
    local y = math.tointeger(list[i])
    if not y or y < 1 or y > K then
      error(("scorch.losses.cross_entropy: label %d is %s, expected an integer class in 1..%d")
        :format(i, tostring(list[i]), K), 3)
    end
    out[i] = y
  end
  return out
end

--- cross_entropy(logits [N, K], labels [, {reduction="mean"|"sum"|"none"}])
-- labels: N 1-based class indices (tensor or table).  The log-softmax row
-- entries z_y − logsumexp(z) are picked from the flattened [N·K] tensor by
-- index_select, so the gradient is softmax(z) − onehot(y) as it should be.
function M.cross_entropy(logits, labels, opts)
  if not sc.is_tensor(logits) or logits:dim() ~= 2 then
    local got = sc.is_tensor(logits) and ("shape [" .. table.concat(logits:shape(), ",") .. "]") or type(logits)
    error(("scorch.losses.cross_entropy: logits must be a tensor [N, K], got %s"):format(got), 2)
  end
  local N, K = logits:size(1), logits:size(2)
  if N == 0 or K == 0 then
    error("scorch.losses.cross_entropy: logits must have at least one example and one class", 2)
  end
  opts = require("scorch.util").check_options(opts, { "reduction" }, "scorch.losses.cross_entropy")
  local reduction = opts.reduction or "mean"
  if reduction ~= "mean" and reduction ~= "sum" and reduction ~= "none" then
    error(("scorch.losses.cross_entropy: reduction must be \"mean\", \"sum\" or \"none\", got %s")
      :format(tostring(reduction)), 2)
  end
  local y = label_list(labels, N, K)
  local flat = {}
  for i = 1, N do flat[i] = (i - 1) * K + y[i] end
  local nll = -sc.log_softmax(logits, 2):reshape(-1):index_select(1, flat)  -- [N]
  if reduction == "none" then return nll end
  if reduction == "sum" then return nll:sum() end
  return nll:mean()
end

return M
