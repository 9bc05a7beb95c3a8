--- Pieces every sampler shares: checking the model, the start and the
-- options; turning `levels` into the Lua array of levels a loop visits;
-- drawing the start from the prior; the callback table and info.
-- @module scorch.samplers.common
local sc = require "scorch"
local param = require "scorch.param"
local schedules = require "scorch.schedules.diffusion"
local util = require "scorch.util"

local M = {}

function M.check_model(model, fn)
  if not param.is_model(model) then
    error(("scorch.samplers.%s: expected a wrapped model (sc.param.wrap(net, {kind =, process =})), got %s")
      :format(fn, type(model)), 3)
  end
  return model
end

function M.check_start(x, fn)
  if not sc.is_tensor(x) or x:dim() < 1 then
    error(("scorch.samplers.%s: x_init must be a tensor of points (bad argument #2)"):format(fn), 3)
  end
  return x:detach()
end

function M.options(opts, valid, fn)
  return util.check_options(opts, valid, "scorch.samplers." .. fn, 4)
end

function M.noise_like(x, gen)
  return sc.randn(x:shape(), { generator = gen, dtype = x:dtype() })
end

-- A list or 1-D tensor of numbers as a Lua array (nil when levels is neither).
function M.as_list(levels)
  if sc.is_tensor(levels) then return levels:double():values() end
  if type(levels) == "table" and getmetatable(levels) == nil and #levels > 0 then
    for i = 1, #levels do
      if type(levels[i]) ~= "number" then return nil end
    end
    return levels
  end
  return nil
end

-- Decreasing levels that end at or above 0; `min` levels at least.
function M.decreasing(list, min, what, fn)
  if list == nil or #list < min then
    error(("scorch.samplers.%s: levels must list at least %d %s (bad argument #3)"):format(fn, min, what), 3)
  end
  for i = 1, #list do
    local v = list[i]
    if v ~= v or v < 0 or (i > 1 and v >= list[i - 1]) then
      error(("scorch.samplers.%s: levels must be strictly decreasing and non-negative %s"
        .. " (bad argument #3, got %s at %d)"):format(fn, what, tostring(v), i), 3)
    end
  end
  return list
end

-- The callback table {i =, x =, level =, denoised =} (and extra fields).
function M.report(cb, t)
  if cb then cb(t) end
end

--- prior(levels, shape [, {generator=, dtype=}]) -> x_init
function M.prior(levels, shape, opts)
  opts = util.check_options(opts, { "generator", "dtype" }, "scorch.samplers.prior")
  local scale
  if type(levels) == "table" and levels.kind == "ddpm" then scale = 1
  elseif schedules.is_sde(levels) then scale = levels.prior_std
  else
    local list = M.as_list(levels)
    if not list then
      error("scorch.samplers.prior: levels must be a DDPM schedule, an SDE, or a list or tensor of levels σ", 2)
    end
    scale = list[1]
  end
  if type(shape) == "number" and shape >= 1 and shape == math.floor(shape) then
    shape = { math.tointeger(shape), 2 }
  elseif type(shape) ~= "table" or #shape < 1 then
    error("scorch.samplers.prior: shape must be a shape table such as {N, 2} (bad argument #2)", 2)
  end
  local z = sc.randn(shape, { generator = opts.generator, dtype = opts.dtype })
  if scale ~= 1 then z = z * scale end
  return z
end

return M
