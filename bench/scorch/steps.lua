-- The training steps of W3 and W7t (../shared/WORKLOADS.md), shared by
-- bench/scorch/workloads.lua (the whole batch in one process) and
-- bench/dist/w3_dist.lua (each rank its rows of the batch, and the
-- gradients summed between backward and the optimiser step).
--   local steps = dofile(dir .. "steps.lua"); local step = steps.w3(model, opt, x0)
local sc = require "scorch"

local M = {}

local LOG_SIG_MIN, LOG_SIG_MAX = math.log(0.01), math.log(1.0)

-- log σ ~ U[log 0.01, log 1), shape (n, 1)
function M.log_sigma(n)
  return sc.rand(n, 1) * (LOG_SIG_MAX - LOG_SIG_MIN) + LOG_SIG_MIN
end

-- zero_grad, backward, the gradient sum if any, the optimiser's step
local function update(opt, loss, sync)
  opt:zero_grad()
  loss:backward()
  if sync then sync() end
  opt:step()
end

-- W3: denoising score matching on the fixed images x0 [B, 1, 28, 28] with
-- bench/scorch/unet28.lua's model; sync(), if given, runs after backward.
function M.w3(model, opt, x0, sync)
  local B = x0:size(1)
  return function()
    local ls = M.log_sigma(B)
    local sig = ls:exp()
    local sig4 = sig:view(B, 1, 1, 1)
    local z = sc.randn(B, 1, 28, 28)
    local xt = x0 + sig4 * z
    local s = model.forward(xt, ls)
    local r = s + z / sig4
    update(opt, ((r * r):view(B, 784):sum(2, true) * (sig * sig * 0.5)):mean(), sync)
  end
end

-- W7t: the DDPM ε-loss (Ho et al. 2020, Algorithm 1) on the fixed images x0
-- with t uniform in 1..sched.T; sync as for w3.
function M.w7t(net, opt, sched, x0, sync)
  local B = x0:size(1)
  return function()
    local t = sc.randint(1, sched.T + 1, { B, 1 }):float()   -- hi exclusive, as torch.randint
    local eps = sc.randn(B, 1, 28, 28)
    local a, s = sched:marginal(t)                          -- √ᾱ_t, √(1 − ᾱ_t): [B, 1]
    local xt = x0 * a:view(B, 1, 1, 1) + eps * s:view(B, 1, 1, 1)
    update(opt, (net(xt, t) - eps):square():mean(), sync)
  end
end

return M
