--- Finite-difference checks of autograd, first and second order.
-- @module scorch.autograd
local sc = require "scorch"

local M = {}

-- Flattened copy of the values of a list of tensors.
local function flat_values(ts)
  local out = {}
  for _, t in ipairs(ts) do
    for _, v in ipairs(t:values()) do out[#out + 1] = v end
  end
  return out
end

--- sc.gradcheck(fn, inputs [, {eps=, atol=, rtol=, second_order=}])
-- fn(inputs...) returns a tensor; inputs are float64 leaves that require
-- grad.  Compares autograd's vector-Jacobian product for a fixed random
-- projection u against central differences, and with second_order the
-- gradient of <grad, w> likewise.  Returns true, or false and a message.
function M.gradcheck(fn, inputs, opts)
  if not require("scorch.util").is_callable(fn) then
    error(("scorch.gradcheck: fn must be a function (got %s)"):format(type(fn)), 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error(("scorch.gradcheck: options must be a table (got %s)"):format(type(opts)), 2)
  end
  opts = require("scorch.util").check_options(opts, { "eps", "atol", "rtol", "second_order", "seed" },
    "scorch.gradcheck")
  local eps, atol, rtol = opts.eps or 1e-6, opts.atol or 1e-5, opts.rtol or 1e-3
  if sc.is_tensor(inputs) then inputs = { inputs } end
  if type(inputs) ~= "table" or #inputs == 0 then
    error(("scorch.gradcheck: inputs must be a tensor or a non-empty list of "
      .. "tensors (got %s)"):format(type(inputs)), 2)
  end
  for i, x in ipairs(inputs) do
    if not sc.is_tensor(x) then
      error(("scorch.gradcheck: input %d is a %s, not a tensor"):format(i, type(x)), 2)
    end
    local ok, dt = pcall(x.dtype, x)
    if not ok then error(("scorch.gradcheck: input %d: %s"):format(i, dt), 2) end
    if dt ~= "float64" then
      error(("scorch.gradcheck: input %d is %s; use float64"):format(i, x:dtype()), 2)
    end
    if not x:requires_grad() then
      error(("scorch.gradcheck: input %d does not require grad"):format(i), 2)
    end
  end
  local g = sc.Generator(opts.seed or 1234)
  -- scalar objective: <fn(x), u>
  local out0 = fn(table.unpack(inputs))
  if not sc.is_tensor(out0) then
    error(("scorch.gradcheck: fn returned a %s, not a tensor"):format(type(out0)), 2)
  end
  local u = sc.randn(out0:shape(), { dtype = "float64", generator = g })
  local function objective(xs)
    return (fn(table.unpack(xs)) * u):sum()
  end
  local function check(obj, xs, label)
    -- an objective that does not depend on the inputs through the graph has
    -- zero gradient: the finite differences must then be zero too
    local out = obj(xs)
    local grads = out:requires_grad()
      and sc.grad(out, xs, { allow_unused = true, create_graph = false }) or {}
    for i, x in ipairs(xs) do
      local analytic = grads[i] and grads[i]:values() or {}
      local base = x:detach():clone()
      local n = x:numel()
      for k = 1, n do
        local function at(delta)
          local xp = base:clone()
          local v = xp:values()
          v[k] = v[k] + delta
          local moved = sc.tensor(v, { dtype = "float64" }):view(x:shape())
          local list = {}
          for j, y in ipairs(xs) do list[j] = (j == i) and moved or y:detach() end
          return obj(list):item()
        end
        local numeric = (at(eps) - at(-eps)) / (2 * eps)
        local a = analytic[k] or 0
        if math.abs(a - numeric) > atol + rtol * math.abs(numeric) then
          return false, ("%s: input %d element %d: autograd %.10g, finite difference %.10g")
            :format(label, i, k, a, numeric)
        end
      end
    end
    return true
  end
  local ok, msg = check(objective, inputs, "first order")
  if not ok or opts.second_order == false then return ok, msg end
  -- second order: d/dx <d obj/dx, w>
  local w = {}
  for i, x in ipairs(inputs) do w[i] = sc.randn(x:shape(), { dtype = "float64", generator = g }) end
  local function second(xs)
    local leaves = {}
    for j, y in ipairs(xs) do leaves[j] = y:requires_grad() and y or y:detach():requires_grad(true) end
    local gs = sc.grad(objective(leaves), leaves, { create_graph = true, allow_unused = true })
    local acc
    for j = 1, #leaves do
      if gs[j] then
        local term = (gs[j] * w[j]):sum()
        acc = acc and acc + term or term
      end
    end
    return acc or sc.zeros({}, { dtype = "float64" })
  end
  -- a gradient that is not differentiable again claims a zero second
  -- derivative (right for linear fn); the finite differences check that too
  return check(second, inputs, "second order")
end

M.flat_values = flat_values
return M
