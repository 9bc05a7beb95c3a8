-- DDPM (Ho et al. 2020) on Fashion-MNIST: the training of
-- examples/ddpm_fashion_mnist.lua as a run (a U-Net of channels 24, mults
-- 1,2,2 predicting ε, linear betas over T = 1000, batches of 64 dequantised
-- images in [−1, 1]).  Needs the Fashion-MNIST files (see
-- sc.data.fashion_mnist).  The example anneals its learning rate linearly
-- over the last 20% of steps; a run uses the cosine schedule.  Sampled by
-- DDIM (50 steps; `scorch sample RUN --sampler ddpm --steps 100` for the
-- example's respaced ancestral sampler); `scorch eval RUN` gives FID & co.
return {
  name = "ddpm_fashion_mnist",
  family = "ddpm",
  seed = 0,
  data = { name = "fashion_mnist", size = 0, dequantize = true },
  model = { channels = 24, mults = "1,2,2", blocks = 1 },
  objective = { schedule = "linear", T = 1000 },
  optim = { lr = 2e-3, warmup = 100, schedule = "cosine", eta_min = 0.05 },
  ema = { decay = 0.999 },
  batch = 64,
  steps = 3000,
  checkpoint = { every = 500, keep = 3 },
  sample = { every = 1000, n = 64, sampler = "ddim", steps = 50 },
  log = { every = 10 },
}
