--- Adam (Kingma & Ba 2015, Algorithm 1) and AdamW (Loshchilov & Hutter
-- 2019, decoupled weight decay), one fused C pass per parameter in
-- PyTorch's order of operations.
-- @module scorch.optim.adam
local sc = require "scorch"
local core = require "scorch.core"
local Optimizer = require "scorch.optim.optimizer"

local adam_step = core.adam_step

local M = {}

local Adam = Optimizer.class("Adam", Optimizer)
M.Adam = Adam

local function check(group, fn)
  local n = Optimizer.number_in
  n(group, "lr", 0, math.huge, fn)
  n(group, "eps", 0, math.huge, fn)
  n(group, "weight_decay", 0, math.huge, fn)
  local b = group.betas
  if type(b) ~= "table" or type(b[1]) ~= "number" or type(b[2]) ~= "number"
      or b[1] < 0 or b[1] >= 1 or b[2] < 0 or b[2] >= 1 then
    error(("scorch.optim.%s: betas must be {b1, b2} with 0 ≤ b < 1"):format(fn), 4)
  end
end
Adam.check_group = check

-- Adam(params, {lr=1e-3, betas={0.9, 0.999}, eps=1e-8, weight_decay=0}):
-- weight decay is L2, added to the gradient.
function Adam.new(params, opts)
  return Optimizer.new(Adam, params, opts,
    { lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8, weight_decay = 0, decoupled = false })
end

function Adam:update(group, gi)
  local k = self:kernel_opts(gi)
  k.lr, k.beta1, k.beta2 = group.lr, group.betas[1], group.betas[2]
  k.eps, k.weight_decay, k.decoupled = group.eps, group.weight_decay, group.decoupled
  local state, grad_of = self.state, Optimizer.grad_of
  for _, p in ipairs(group.params) do
    local g = grad_of(p)
    if g then
      local st = state[p]
      if not st then
        local shape, dt = p:shape(), { dtype = p:dtype() }
        st = { step = 0, exp_avg = sc.zeros(shape, dt), exp_avg_sq = sc.zeros(shape, dt) }
        state[p] = st
      end
      st.step = st.step + 1
      k.step = st.step
      adam_step(p, g, st.exp_avg, st.exp_avg_sq, k)
    end
  end
end

-- AdamW(params, {lr=1e-3, betas={0.9, 0.999}, eps=1e-8, weight_decay=1e-2}):
-- p ← p·(1 − lr·wd) before the Adam update.
local AdamW = Optimizer.class("AdamW", Adam)
M.AdamW = AdamW

function AdamW.new(params, opts)
  return Optimizer.new(AdamW, params, opts,
    { lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8, weight_decay = 1e-2, decoupled = true })
end

return M
