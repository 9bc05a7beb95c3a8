-- EDM (Karras et al. 2022) on eight Gaussians: the training of
-- examples/edm_2d.lua as a run (preconditioned denoiser, ln σ ~ N(−1.2, 1.2²),
-- σ_data measured from the data when 0).  Samples with Heun on 18 Karras
-- levels; `scorch sample RUN --sampler dpmpp_2m --steps 20` for the others.
return {
  name = "edm_2d",
  family = "edm",
  seed = 0,
  data = { name = "eight_gaussians" },
  model = { width = 128, blocks = 3, cond_scale = 100 },
  objective = { sigma_data = 0.0, P_mean = -1.2, P_std = 1.2 },
  optim = { lr = 1e-3, warmup = 100, schedule = "cosine", eta_min = 0.05 },
  ema = { decay = 0.999 },
  batch = 512,
  steps = 20000,
  checkpoint = { every = 1000, keep = 3 },
  sample = { every = 5000, n = 2000, sampler = "heun", steps = 18 },
  log = { every = 50 },
}
