-- RealNVP (Dinh et al. 2017) on eight Gaussians: the training of
-- examples/flows_2d.lua (for one of its data sets) as a run: 8 affine
-- couplings with ActNorm, exact negative log-likelihood, Adam at 1e-3,
-- constant and then annealed linearly to 0 over the last 30% of the steps,
-- as the example.  Samples are the inverse of N(0, I) draws
-- (`scorch sample RUN --temperature 0.8`).
return {
  name = "flows_2d",
  family = "flow",
  seed = 0,
  data = { name = "eight_gaussians" },
  model = { couplings = 8, width = 128, layers = 3 },
  optim = { lr = 1e-3, warmup = 0, schedule = "linear_tail", tail = 0.3, eta_min = 0.0 },
  ema = { decay = 0.999 },
  batch = 512,
  steps = 6000,
  checkpoint = { every = 1000, keep = 3 },
  sample = { every = 2000, n = 2000, sampler = "inverse", temperature = 1.0 },
  log = { every = 50 },
}
