--- SGD with momentum, dampening, Nesterov momentum (Sutskever et al. 2013)
-- and L2 weight decay, exactly PyTorch's torch.optim.SGD, one fused C pass
-- per parameter.
-- @module scorch.optim.sgd
local sc = require "scorch"
local core = require "scorch.core"
local Optimizer = require "scorch.optim.optimizer"

local sgd_step = core.sgd_step

local SGD = Optimizer.class("SGD", Optimizer)

function SGD.check_group(group, fn)
  local n = Optimizer.number_in
  n(group, "lr", 0, math.huge, fn)
  n(group, "momentum", 0, math.huge, fn)
  n(group, "dampening", -math.huge, math.huge, fn)
  n(group, "weight_decay", 0, math.huge, fn)
  if group.nesterov and (group.momentum <= 0 or group.dampening ~= 0) then
    error(("scorch.optim.%s: Nesterov momentum needs momentum > 0 and dampening = 0"):format(fn), 4)
  end
end

-- SGD(params, {lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=false})
function SGD.new(params, opts)
  return Optimizer.new(SGD, params, opts,
    { lr = 1e-3, momentum = 0, dampening = 0, weight_decay = 0, nesterov = false })
end

function SGD:update(group, gi)
  local k = self:kernel_opts(gi)
  k.lr, k.momentum, k.dampening = group.lr, group.momentum, group.dampening
  k.weight_decay, k.nesterov = group.weight_decay, group.nesterov
  local state, grad_of = self.state, Optimizer.grad_of
  local with_momentum = group.momentum ~= 0
  for _, p in ipairs(group.params) do
    local g = grad_of(p)
    if g then
      local buf
      k.first = false
      if with_momentum then
        local st = state[p]
        if not st then
          -- the first step seeds the buffer with the gradient itself
          st = { momentum_buffer = sc.zeros(p:shape(), { dtype = p:dtype() }) }
          state[p] = st
          k.first = true
        end
        buf = st.momentum_buffer
      end
      sgd_step(p, g, buf, k)
    end
  end
end

return SGD
