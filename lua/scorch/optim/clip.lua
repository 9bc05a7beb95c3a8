--- Gradient clipping, as torch.nn.utils.clip_grad_norm_ / clip_grad_value_.
-- @module scorch.optim.clip
local sc = require "scorch"

local M = {}

local function grads_of(params)
  if type(params) == "table" and type(params.parameters) == "function" then
    params = params:parameters()
  elseif sc.is_tensor(params) then
    params = { params }
  end
  local gs = {}
  for _, p in ipairs(params) do
    local g = p.grad
    if g then gs[#gs + 1] = g end
  end
  return gs
end

local function scale_all(gs, c)
  for _, g in ipairs(gs) do g:mul_(c) end
end

--- clip_grad_norm(params, max_norm [, norm_type=2]) → total norm.
-- total = (Σ‖g‖ᵖ)^(1/p) over all gradients (p = math.huge: max |g|); when
-- total exceeds max_norm, every gradient is scaled in place by
-- max_norm/(total + 1e-6).  params: a list of tensors or a module; params
-- without a gradient are skipped.
function M.clip_grad_norm(params, max_norm, norm_type)
  if type(max_norm) ~= "number" then
    error("scorch.optim.clip_grad_norm: max_norm must be a number", 2)
  end
  norm_type = norm_type or 2
  local gs = grads_of(params)
  local total = 0
  if norm_type == math.huge then
    for _, g in ipairs(gs) do total = math.max(total, g:abs():max():item()) end
  elseif norm_type == 2 then
    for _, g in ipairs(gs) do total = total + (g * g):sum():item() end
    total = math.sqrt(total)
  else
    for _, g in ipairs(gs) do total = total + (g:abs() ^ norm_type):sum():item() end
    total = total ^ (1 / norm_type)
  end
  local coef = max_norm / (total + 1e-6)
  if coef < 1 then sc.no_grad(scale_all, gs, coef) end
  return total
end
M.clip_grad_norm_ = M.clip_grad_norm

local function clamp_all(gs, v)
  for _, g in ipairs(gs) do g:copy_(sc.clamp(g, -v, v)) end
end

--- clip_grad_value(params, v): clamps every gradient element to [−v, v].
function M.clip_grad_value(params, v)
  sc.no_grad(clamp_all, grads_of(params), v)
end
M.clip_grad_value_ = M.clip_grad_value

return M
