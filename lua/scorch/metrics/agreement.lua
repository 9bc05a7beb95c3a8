--- The agreement score of conditional samples: the class-label analogue of
-- CLIP score (Hessel et al. 2021, which scores an image against its prompt).
-- A classifier looks at samples drawn for requested classes; the agreement
-- is the fraction it assigns to the requested class (its arg max) and the
-- confidence its mean probability of that class, overall and per class.
-- @module scorch.metrics.agreement
local sc = require "scorch"
local util = require "scorch.util"

local M = {}

--- agreement(probs, requested [, opts]): how often a classifier agrees with the requested classes.
-- @param probs tensor [N, K]: the classifier's class probabilities for N samples (rows sum to 1;
--   e.g. from Classifier:predict, or softmax of mixture_classifier's logits)
-- @param requested Lua list or tensor of N classes 1..K (or one number for all): what each sample
--   was drawn for
-- @param opts table: names = list of K class names (copied into per_class)
-- @return table {n =, agreement =, confidence =, per_class = {[k] = {n =, agreement =, confidence =,
--   name =}}}: agreement the fraction whose arg max is the requested class, confidence the mean
--   probability of the requested class; classes never requested have n = 0 and nil figures
-- @usage local r = sc.metrics.agreement(probs, labels); print(r.agreement, r.per_class[2].confidence)
function M.agreement(probs, requested, opts)
  opts = util.check_options(opts, { "names" }, "scorch.metrics.agreement")
  if not sc.is_tensor(probs) or probs:dim() ~= 2 or probs:size(1) < 1 then
    error(("scorch.metrics.agreement: probs (argument #1) must be a tensor [N, K] of class probabilities, got %s")
      :format(util.shape_str(probs)), 2)
  end
  local n, K = probs:size(1), probs:size(2)
  if opts.names ~= nil and (type(opts.names) ~= "table" or #opts.names ~= K) then
    error(("scorch.metrics.agreement: names must list the %d class names"):format(K), 2)
  end
  local list
  if type(requested) == "number" then
    list = {}
    for i = 1, n do list[i] = requested end
  elseif sc.is_tensor(requested) then
    list = requested:reshape(-1):values()
  elseif type(requested) == "table" then
    list = requested
  else
    error(("scorch.metrics.agreement: requested (argument #2) must be classes as a list, a tensor or a number, got %s")
      :format(type(requested)), 2)
  end
  if #list ~= n then
    error(("scorch.metrics.agreement: requested has %d classes for %d rows of probs %s"):format(#list, n,
      util.shape_str(probs)), 2)
  end
  local p = probs:double():values()
  local per = {}
  for k = 1, K do per[k] = { n = 0, hits = 0, conf = 0, name = opts.names and opts.names[k] } end
  local hits, conf = 0, 0
  for i = 1, n do
    local k = math.tointeger(list[i])
    if not k or k < 1 or k > K then
      error(("scorch.metrics.agreement: requested[%d] = %s is not a class 1..%d"):format(i, tostring(list[i]), K), 2)
    end
    local row = (i - 1) * K
    local best = 1
    for j = 2, K do if p[row + j] > p[row + best] then best = j end end
    local hit = best == k and 1 or 0
    local c = p[row + k]
    local s = per[k]
    s.n, s.hits, s.conf = s.n + 1, s.hits + hit, s.conf + c
    hits, conf = hits + hit, conf + c
  end
  local out = { n = n, agreement = hits / n, confidence = conf / n, per_class = {} }
  for k = 1, K do
    local s = per[k]
    out.per_class[k] = { n = s.n, name = s.name, agreement = s.n > 0 and s.hits / s.n or nil,
      confidence = s.n > 0 and s.conf / s.n or nil }
  end
  return out
end

return M
