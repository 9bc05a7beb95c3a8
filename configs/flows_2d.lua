-- RealNVP (Dinh et al. 2017) on eight Gaussians: the training of
-- examples/flows_2d.lua (for one of its data sets) as a run: 8 affine
-- couplings with ActNorm, exact negative log-likelihood.  Samples are the
-- inverse of N(0, I) draws (`scorch sample RUN --temperature 0.8`).
return {
  name = "flows_2d",
  family = "flow",
  seed = 0,
  data = { name = "eight_gaussians" },
  model = { couplings = 8, width = 128, layers = 3 },
  optim = { lr = 1e-3, warmup = 100, schedule = "cosine", eta_min = 0.05 },
  ema = { decay = 0.999 },
  batch = 512,
  steps = 6000,
  checkpoint = { every = 1000, keep = 3 },
  sample = { every = 2000, n = 2000, sampler = "inverse", temperature = 1.0 },
  log = { every = 50 },
}
