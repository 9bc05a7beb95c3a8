--- Class statistics of a set of labelled images: how generated samples are
-- spread over the classes (by a classifier) next to the training mix.
-- @module scorch.metrics.classes
local sc = require "scorch"
local util = require "scorch.util"

local M = {}

local function as_list(v, fn, what)
  if sc.is_tensor(v) then return v:values() end
  if type(v) == "table" then return v end
  error(("scorch.metrics.%s: %s must be a tensor or a list"):format(fn, what), 3)
end

--- class_mix(labels, K [, {probs=, threshold=0.9}]) -> {
--   n, count[k], frac[k],                  labels 1..K
--   conf[k], mean_conf, confident, confident_count   (with probs [N, K])
-- } where conf[k] is the mean top probability of the samples labelled k
-- (nil where none are), and confident the fraction whose top probability
-- is at least the threshold.
function M.class_mix(labels, K, opts)
  opts = util.check_options(opts, { "probs", "threshold" }, "scorch.metrics.class_mix")
  labels = as_list(labels, "class_mix", "labels")
  if math.type(K) ~= "integer" or K < 1 then error("scorch.metrics.class_mix: K must be a positive integer", 2) end
  local n = #labels
  local r = { n = n, count = {}, frac = {}, conf = {} }
  local csum = {}
  for k = 1, K do r.count[k], csum[k] = 0, 0 end
  local conf = opts.probs and opts.probs:max(2, false):values()
  if conf and #conf ~= n then
    error(("scorch.metrics.class_mix: %d labels but probs has %d rows"):format(n, #conf), 2)
  end
  for i, l in ipairs(labels) do
    local k = math.tointeger(l)
    if not k or k < 1 or k > K then
      error(("scorch.metrics.class_mix: label %s at %d is not in 1..%d"):format(tostring(l), i, K), 2)
    end
    r.count[k] = r.count[k] + 1
    if conf then csum[k] = csum[k] + conf[i] end
  end
  for k = 1, K do
    r.frac[k] = r.count[k] / n
    if conf and r.count[k] > 0 then r.conf[k] = csum[k] / r.count[k] end
  end
  if conf then
    local threshold, sure, mean = opts.threshold or 0.9, 0, 0
    for _, c in ipairs(conf) do
      mean = mean + c / n
      if c >= threshold then sure = sure + 1 end
    end
    r.mean_conf, r.confident_count, r.confident = mean, sure, sure / n
  end
  return r
end

return M
