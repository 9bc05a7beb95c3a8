-- EDM (Karras et al. 2022) on Fashion-MNIST: the training of
-- examples/edm_fashion_mnist.lua as a run (a U-Net denoiser with EDM's
-- preconditioning, c_noise spread by cond_scale 250, σ_data measured from
-- the images when 0).  Needs the Fashion-MNIST files (see
-- sc.data.fashion_mnist).  Sampled by Heun on 18 Karras levels.
return {
  name = "edm_fashion_mnist",
  family = "edm",
  seed = 0,
  data = { name = "fashion_mnist", size = 0, dequantize = true },
  model = { channels = 24, mults = "1,2,2", blocks = 1, cond_scale = 250 },
  objective = { sigma_data = 0.5, P_mean = -1.2, P_std = 1.2 },
  optim = { lr = 2e-3, warmup = 100, schedule = "cosine", eta_min = 0.05 },
  ema = { decay = 0.999 },
  batch = 64,
  steps = 3000,
  checkpoint = { every = 500, keep = 3 },
  sample = { every = 1000, n = 64, sampler = "heun", steps = 18 },
  log = { every = 10 },
}
