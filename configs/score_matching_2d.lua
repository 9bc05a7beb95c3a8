-- Score matching on two moons: one of the objectives of
-- examples/score_matching_2d.lua as a run (an unconditional score MLP
-- trained by sliced score matching; objective.method = ism | ssm | ssm_vr
-- | dsm picks another), sampled by Langevin dynamics (500 steps of 1e-3).
return {
  name = "score_matching_2d",
  family = "score_matching",
  seed = 0,
  data = { name = "two_moons" },
  model = { width = 128, layers = 3 },
  objective = { method = "ssm", sigma = 0.05, projections = 1 },
  optim = { lr = 1e-3, warmup = 100, schedule = "cosine", eta_min = 0.05 },
  ema = { decay = 0.999 },
  batch = 256,
  steps = 3000,
  checkpoint = { every = 500, keep = 3 },
  sample = { every = 1000, n = 2000, sampler = "langevin", steps = 500, step_size = 1e-3 },
  log = { every = 10 },
}
