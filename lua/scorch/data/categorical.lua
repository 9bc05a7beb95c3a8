--- Categorical draws by inverting the cumulative weights: the one routine
-- behind the toy mixtures' component labels, the shapes set's classes and
-- the examples' noise-level draws.
-- @module scorch.data.categorical
local sc = require "scorch"

local M = {}

--- Labels for given uniforms: the first k with w[1] + ... + w[k] > u·Σw.
-- @param u Lua array of numbers in [0, 1)
-- @param w Lua array of K nonnegative weights (need not sum to 1)
-- @return Lua array of #u labels in 1..K
-- @usage sc.data.categorical_from_uniforms({0.1, 0.9}, {1, 1}) --> {1, 2}
function M.categorical_from_uniforms(u, w)
  local cum, acc = {}, 0
  for k = 1, #w do
    acc = acc + w[k]
    cum[k] = acc
  end
  local labels = {}
  for i = 1, #u do
    local target = u[i] * acc
    local lo, hi = 1, #cum
    while lo < hi do -- first k with cum[k] > target
      local mid = (lo + hi) // 2
      if cum[mid] > target then hi = mid else lo = mid + 1 end
    end
    labels[i] = lo
  end
  return labels
end

--- n labels in 1..K drawn with probabilities proportional to w.
-- @param n number of draws
-- @param w Lua array of K nonnegative weights
-- @param gen optional sc.Generator (default: the global one)
-- @return Lua array of n labels
-- @usage local labels = sc.data.categorical(1000, {0.8, 0.2})
function M.categorical(n, w, gen)
  local u = sc.rand(n, { generator = gen, dtype = "float64" }):values()
  return M.categorical_from_uniforms(u, w)
end

return M
