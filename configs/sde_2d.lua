-- Score SDEs (Song et al. 2021) on the checkerboard of half width 4 (on
-- [−4, 4]², entropy ln 32): the training of examples/sde_2d.lua as a run
-- (VP SDE; objective.sde = ve | subvp, an ε-network on unit-variance
-- inputs, DSM with σ² weighting; weighting = likelihood for the other).
-- Samples by Euler–Maruyama (1000 steps);
-- `scorch sample RUN --sampler predictor_corrector --steps 500 --snr 0.16`
-- or `--sampler probability_flow` for the others.
return {
  name = "sde_2d",
  family = "sde",
  seed = 0,
  data = { name = "checkerboard", half_width = 4.0 },
  model = { width = 128, blocks = 3, cond_scale = 1000 },
  objective = { sde = "vp", weighting = "sigma2" },
  optim = { lr = 1e-3, warmup = 100, schedule = "cosine", eta_min = 0.05 },
  ema = { decay = 0.999 },
  batch = 512,
  steps = 20000,
  checkpoint = { every = 1000, keep = 3 },
  sample = { every = 5000, n = 2000, sampler = "euler_maruyama", steps = 1000 },
  log = { every = 50 },
}
