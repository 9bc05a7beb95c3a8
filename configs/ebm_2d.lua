-- An energy-based model on eight Gaussians: the training of
-- examples/ebm_2d.lua (for one of its data sets) as a run: an energy MLP
-- trained by contrastive divergence (Du & Mordatch 2019) with Langevin
-- negatives (40 steps of 0.01; objective.noise and clip set the chains'
-- noise scale and gradient clip) from a replay buffer of 10,000 chains,
-- which every checkpoint keeps; Adam with β₁ = 0 at a constant learning
-- rate, as the example.  Samples are 500-step Langevin chains from uniform
-- starts in the data's box.
return {
  name = "ebm_2d",
  family = "ebm",
  seed = 0,
  data = { name = "eight_gaussians" },
  model = { width = 128, layers = 3 },
  objective = { alpha = 0.1, chain_steps = 40, step_size = 0.01, buffer = 10000, reinit = 0.05, noise = 0.0,
    clip = 0.0 },
  optim = { lr = 1e-3, beta1 = 0.0, beta2 = 0.999, warmup = 0, schedule = "constant" },
  ema = { decay = 0.999 },
  batch = 256,
  steps = 4000,
  checkpoint = { every = 500, keep = 3 },
  sample = { every = 1000, n = 2000, sampler = "langevin", steps = 500, step_size = 0.01 },
  log = { every = 10 },
}
