--- sc.samplers: sampling loops over a schedule calling a model.  Every
-- sampler is sampler(model, x_init, levels, opts) -> x, info (see
-- diffusion.lua for the contract); langevin.lua (overdamped, underdamped
-- and annealed Langevin) and diffusion.lua hold them, common.lua what they
-- share, ode.lua the ODE integrators.
--
-- No sampler knows about classes: a model carries its condition
-- (model:with_cond(labels)) and the sampler passes it through; guidance and
-- inpainting are models too (sc.param.guided, sc.param.inpaint), so every
-- sampler here takes them as they are.
--
-- The earlier signatures — (score, x0, sigmas), (model, schedule, n),
-- (denoiser, sigmas, n) — are deprecated wrappers for one release, in
-- sc.samplers.legacy and reachable under the same names: a call is the old
-- form when its arguments cannot be the new one (see is_legacy below).
-- @module scorch.samplers
local sc = require "scorch"
local param = require "scorch.param"

local M = {}

local function merge(mod) require("scorch.util").merge_module(M, mod, "scorch.samplers") end

local langevin = require "scorch.samplers.langevin"
local diffusion = require "scorch.samplers.diffusion"
merge(langevin)
merge(diffusion)

--- The old forms, callable explicitly (sc.samplers.legacy.heun(D, sigmas, n, opts)).
M.legacy = require "scorch.samplers.legacy"

--- The start of a sampler: scale · N(0, I), the scale read from the levels.
-- scale = 1 for a DDPM schedule, prior_std for an SDE, σ_1 for a list or tensor of σ.
-- @param levels DDPM schedule, SDE, or decreasing σ (list / tensor)
-- @param shape shape table, e.g. {N, 2} or {N, 1, 28, 28}
-- @param opts table: generator; dtype = "float32"
-- @return tensor of the shape
-- @usage local x0 = sc.samplers.prior(sched, {500, 2}, {generator = g})
M.prior = require("scorch.samplers.common").prior

--- Per-sample noise for the `generator` option: row i of every draw depends
-- on (seed, first + i - 1, the draw's count) only, so a sample does not
-- depend on N or on the chunk it is drawn in.
-- @param seed integer
-- @param first integer ≥ 1: global index of the batch's first row (default 1)
-- @return a noise source
-- @usage local x = sc.samplers.ddpm(m, x0, sched, {generator = sc.samplers.row_noise(7, 1001)})
M.row_noise = require("scorch.samplers.common").row_noise

-- Whether a call under an API name uses an old signature.  New calls pass a
-- wrapped model and a tensor start; the old forms pass a raw callable, a
-- schedule / SDE / level list second, or a number of points third.
local function is_shape(t)
  if type(t) ~= "table" or sc.is_tensor(t) or #t == 0 then return false end
  local decreasing = true
  for i = 1, #t do
    if math.type(t[i]) ~= "integer" or t[i] < 1 then return false end
    if i > 1 and t[i] >= t[i - 1] then decreasing = false end
  end
  return not decreasing
end

local function is_legacy(name, model, a2, a3)
  if name == "langevin" then return not param.is_model(model) end
  if name == "annealed_langevin" then return not param.is_model(model) end
  if not param.is_model(model) then return true end
  if not sc.is_tensor(a2) then return true end
  if type(a3) == "number" then return true end
  -- naive_backward(D, levels_tensor, {2, 1, 8, 8}): a 1-D tensor of levels, then a shape
  if a2:dim() == 1 and is_shape(a3) then return true end
  return false
end

for _, name in ipairs { "langevin", "annealed_langevin", "ddpm", "ddim", "euler_maruyama",
  "predictor_corrector", "probability_flow", "naive_backward", "heun", "dpmpp_2m" } do
  local new, old = M[name], M.legacy[name]
  M[name] = function(model, a2, a3, a4)
    if is_legacy(name, model, a2, a3) then return old(model, a2, a3, a4) end
    return new(model, a2, a3, a4)
  end
end

return M
