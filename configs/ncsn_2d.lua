-- NCSN (Song & Ermon 2019) on eight Gaussians: the training of
-- examples/ncsn_2d.lua --data eight_gaussians as a run (DSM over 20
-- geometric levels from 4 to 0.01, s(x, σ) = net(x, σ)/σ, batch 1024,
-- Adam at 1e-3, constant and then annealed linearly to 0 over the last 30%
-- of the steps, as the example), sampled by annealed Langevin (100 steps
-- per level, ε = 2e-5, final denoising step).  The example itself samples
-- with the trained weights; the run's figures use the EMA.
return {
  name = "ncsn_2d",
  family = "ncsn",
  seed = 0,
  data = { name = "eight_gaussians" },
  model = { width = 128, layers = 3, scale_by_sigma = true },
  objective = { sigma_max = 4.0, sigma_min = 0.01, levels = 20 },
  optim = { lr = 1e-3, warmup = 0, schedule = "linear_tail", tail = 0.3, eta_min = 0.0 },
  ema = { decay = 0.999 },
  batch = 1024,
  steps = 20000,
  checkpoint = { every = 1000, keep = 3 },
  sample = { every = 5000, n = 2000, sampler = "annealed_langevin", steps = 100, step_size = 2e-5, denoise = true },
  log = { every = 50 },
}
