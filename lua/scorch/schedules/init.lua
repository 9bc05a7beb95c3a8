--- Noise schedules.  Each schedule is a plain function returning its levels;
-- DDPM betas, VE/VP SDEs and Karras sigmas join here as further functions.
-- @module scorch.schedules
local sc = require "scorch"

local M = {}

--- Song & Ermon 2019, §4.2: {σ_i} a geometric sequence with σ_1 > … > σ_L.
-- The levels descend: σ_1 (the first argument) must be above σ_L (the
-- second) when L > 1; geometric_sigmas(1, 10, 5) is an error, not an
-- ascending list.
-- @param sigma_max σ_1 > 0, the first and largest level
-- @param sigma_min σ_L > 0, the last and smallest level (below σ_1 when L > 1)
-- @param n L, the number of levels (integer >= 1)
-- @param opts table: dtype = "float32" of the tensor
-- @return Lua array of L levels, and the same as an [L] tensor
-- @usage local sigmas = sc.schedules.geometric_sigmas(10, 0.01, 10)
function M.geometric_sigmas(sigma_max, sigma_min, n, opts)
  if type(sigma_max) ~= "number" or type(sigma_min) ~= "number" or sigma_max <= 0 or sigma_min <= 0 then
    error("scorch.schedules.geometric_sigmas: sigmas must be positive numbers", 2)
  end
  if math.type(n) ~= "integer" and not (type(n) == "number" and n == math.floor(n)) then
    error("scorch.schedules.geometric_sigmas: L must be an integer", 2)
  end
  n = math.tointeger(n)
  if n < 1 then error("scorch.schedules.geometric_sigmas: L must be at least 1", 2) end
  if n > 1 and sigma_min >= sigma_max then
    error(("scorch.schedules.geometric_sigmas: levels descend, so sigma_max (argument #1, %g)"
      .. " must be above sigma_min (argument #2, %g)"):format(sigma_max, sigma_min), 2)
  end
  local out = {}
  if n == 1 then
    out[1] = sigma_max
  else
    local ratio = math.log(sigma_min / sigma_max) / (n - 1)
    for i = 1, n do out[i] = sigma_max * math.exp(ratio * (i - 1)) end
    out[n] = sigma_min -- exact end point
  end
  opts = require("scorch.util").check_options(opts, { "dtype" }, "scorch.schedules.geometric_sigmas")
  return out, sc.tensor(out, { dtype = opts.dtype or "float32" })
end

-- DDPM betas, SDEs, Karras sigmas and timestep spacings (diffusion.lua).
for k, v in pairs(require "scorch.schedules.diffusion") do M[k] = v end

return M
