--- RMSprop (Tieleman & Hinton 2012, lecture 6.5), in torch.optim.RMSprop's
-- order of operations, with its centred variant (Graves 2013, eq. 38–41)
-- and momentum — the optimiser of the weight-clipped WGAN (Arjovsky et
-- al. 2017, Algorithm 1).  Written with tensor ops, in place, no recording.
-- @classmod scorch.optim.RMSprop
local sc = require "scorch"
local Optimizer = require "scorch.optim.optimizer"

local RMSprop = Optimizer.class("RMSprop", Optimizer)

function RMSprop.check_group(group, fn)
  local n = Optimizer.number_in
  n(group, "lr", 0, math.huge, fn)
  n(group, "alpha", 0, 1, fn)
  n(group, "eps", 0, math.huge, fn)
  n(group, "weight_decay", 0, math.huge, fn)
  n(group, "momentum", 0, math.huge, fn)
  if type(group.centered) ~= "boolean" then
    error(("scorch.optim.%s: centered must be a boolean (got %s)"):format(fn, type(group.centered)), 4)
  end
end

--- RMSprop(params [, opts]).  Each step, with g the gradient (plus wd·p):
--   v ← αv + (1 − α)g²;  centred: ḡ ← αḡ + (1 − α)g, v̂ = v − ḡ², else v̂ = v;
--   u = g/(√v̂ + eps);  momentum μ > 0: b ← μb + u, u = b;  p ← p − lr·u.
-- @param params a list of tensors, a module, or parameter groups
-- @param opts {lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0, centered = false}
-- @return the optimiser (`:step()`, `:zero_grad()`, `:state_dict()`)
-- @usage local opt = sc.optim.RMSprop(critic:parameters(), {lr = 5e-5})
function RMSprop.new(params, opts)
  return Optimizer.new(RMSprop, params, opts,
    { lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0, centered = false })
end

function RMSprop:update(group)
  local alpha, lr, eps, wd, mu = group.alpha, group.lr, group.eps, group.weight_decay, group.momentum
  sc.no_grad(function()
    for _, p in ipairs(group.params) do
      local g = p.grad
      if g then
        local st = self.state[p]
        if not st then
          local shape, dt = p:shape(), { dtype = p:dtype() }
          st = { step = 0, square_avg = sc.zeros(shape, dt) }
          if mu > 0 then st.momentum_buffer = sc.zeros(shape, dt) end
          if group.centered then st.grad_avg = sc.zeros(shape, dt) end
          self.state[p] = st
        end
        st.step = st.step + 1
        if wd ~= 0 then g = g + p * wd end
        st.square_avg:copy_(st.square_avg * alpha + g * g * (1 - alpha))
        local v = st.square_avg
        if group.centered then
          st.grad_avg:copy_(st.grad_avg * alpha + g * (1 - alpha))
          v = v - st.grad_avg * st.grad_avg
        end
        local u = g / (v:sqrt() + eps)
        if mu > 0 then
          st.momentum_buffer:copy_(st.momentum_buffer * mu + u)
          u = st.momentum_buffer
        end
        p:copy_(p - u * lr)
      end
    end
  end)
end

return RMSprop
