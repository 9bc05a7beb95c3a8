-- DDPM (Ho et al. 2020) on eight Gaussians: the training of
-- examples/ddpm_2d.lua as a run.  `scorch train configs/ddpm_2d.lua`
-- (about 20 minutes on two cores; steps=3000 model.width=64 optim.lr=2e-3
-- is the example's --quick).
return {
  name = "ddpm_2d",
  family = "ddpm",
  seed = 0,
  data = { name = "eight_gaussians" },
  model = { width = 128, blocks = 3 },
  objective = { schedule = "linear", T = 1000 },
  optim = { lr = 1e-3, warmup = 100, schedule = "cosine", eta_min = 0.05 },
  ema = { decay = 0.999 },
  batch = 512,
  steps = 20000,
  checkpoint = { every = 1000, keep = 3 },
  sample = { every = 5000, n = 2000, sampler = "ddim", steps = 50 },
  log = { every = 50 },
}
