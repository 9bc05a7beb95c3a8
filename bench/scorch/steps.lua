-- The models and training steps of W1, W3, W7t and W9v
-- (../shared/WORKLOADS.md), shared by bench/scorch/workloads.lua (the whole
-- batch in one process), bench/dist/w3_dist.lua (each rank its rows of the
-- batch, and the gradients summed between backward and the optimiser step),
-- bench/scorch/inplace_ab.lua and bench/scorch/w9v_parts.lua.
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

-- W1's network: 3 -> 128 -> 128 -> 128 -> d_out with SiLU (sc.nn.Linear has
-- PyTorch's default init: weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)))
function M.mlp(d_in, d_out)
  local nn = sc.nn
  return nn.Sequential{
    nn.Linear(d_in, 128), nn.SiLU(),
    nn.Linear(128, 128), nn.SiLU(),
    nn.Linear(128, 128), nn.SiLU(),
    nn.Linear(128, d_out),
  }
end

local TWO_PI_OVER_8 = 2.0 * math.pi / 8.0

-- centres (2cos(2πk/8), 2sin(2πk/8)), k uniform in 0..7, + 0.05·N(0,I)
function M.gauss8(n)
  local k = sc.randint(0, 8, { n })          -- hi exclusive, as torch.randint
  local ang = k:float() * TWO_PI_OVER_8
  local centres = sc.stack({ ang:cos() * 2.0, ang:sin() * 2.0 }, 2)
  return centres + sc.randn(n, 2) * 0.05
end

-- W1: denoising score matching on n fresh 8-Gaussians points a step, the
-- network fed (x_t, log σ)
function M.w1(model, opt, n)
  return function()
    local x0 = M.gauss8(n)
    local ls = M.log_sigma(n)
    local sig = ls:exp()
    local z = sc.randn(n, 2)
    local xt = x0 + sig * z
    local s = model(sc.cat({ xt, ls }, 2))
    local r = s + z / sig
    update(opt, ((r * r):sum(2, true) * (sig * sig * 0.5)):mean())
  end
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

-- W7t's network: the U-Net of examples/ddpm_fashion_mnist.lua's full preset
function M.w7_net()
  return sc.models.UNet { channels = 24, mults = { 1, 2, 2 }, attention = { false, false, false },
    blocks = 1, mid_attention = false, out = "eps", cond = "t" }
end

M.W9V_IMAGES, M.W9V_BATCH = 8192, 128

-- W9v's data, model and optimiser: the first W9V_IMAGES Fashion-MNIST
-- training images as [N, 784] in [0, 1], the MLP VAE, Adam
function M.w9v_setup()
  local images = sc.data.fashion_mnist("train", { limit = M.W9V_IMAGES }):reshape(M.W9V_IMAGES, 784)
  local vae = sc.models.VAE { x_dim = 784, latent = 32, hidden = { 512, 256 }, act = "relu",
    likelihood = "bernoulli" }
  return images, vae, sc.optim.Adam(vae:parameters(), { lr = 1e-3 })
end

-- W9v: the negative ELBO on the next batch of the images, in turn
function M.w9v(images, vae, opt)
  local i = 0
  return function()
    local x = images:narrow(1, i * M.W9V_BATCH + 1, M.W9V_BATCH)
    i = (i + 1) % (M.W9V_IMAGES // M.W9V_BATCH)
    update(opt, (sc.losses.elbo(vae, x)))
  end
end

return M
