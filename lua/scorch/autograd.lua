-- Finite-difference checks of autograd, first and second order.
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

-- sc.gradcheck(fn, inputs [, {eps=, atol=, rtol=, second_order=}])
-- fn(inputs...) returns a tensor; inputs are float64 leaves that require
-- grad.  Compares autograd's vector-Jacobian product for a fixed random
-- projection u against central differences, and with second_order the
-- gradient of <grad, w> likewise.  Returns true, or false and a message.
function M.gradcheck(fn, inputs, opts)
  opts = opts or {}
  local eps, atol, rtol = opts.eps or 1e-6, opts.atol or 1e-5, opts.rtol or 1e-3
  if sc.is_tensor(inputs) then inputs = { inputs } end
  for i, x in ipairs(inputs) do
    if x:dtype() ~= "float64" then
      error(("scorch.gradcheck: input %d is %s; use float64"):format(i, x:dtype()), 2)
    end
  end
  local g = sc.Generator(opts.seed or 1234)
  -- scalar objective: <fn(x), u>
  local out0 = fn(table.unpack(inputs))
  local u = sc.randn(out0:shape(), { dtype = "float64", generator = g })
  local function objective(xs)
    return (fn(table.unpack(xs)) * u):sum()
  end
  local function check(obj, xs, label)
    local grads = sc.grad(obj(xs), xs, { allow_unused = true, create_graph = false })
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
      if gs[j] and gs[j]:requires_grad() then
        local term = (gs[j] * w[j]):sum()
        acc = acc and acc + term or term
      end
    end
    return acc or sc.zeros({}, { dtype = "float64" })
  end
  local probe = second(inputs)
  if not probe:requires_grad() then return true end -- linear: second order is zero
  return check(second, inputs, "second order")
end

M.flat_values = flat_values
return M
