-- Score matching on two moons: one of the objectives of
-- examples/score_matching_2d.lua as a run (an unconditional score MLP —
-- model.kind = energy for an energy MLP, s = −∇E — trained by sliced score
-- matching; objective.method = esm | ism | ssm_vr | dsm picks another, esm
-- against the data's exact score), Adam at 1e-3, constant and then
-- annealed linearly to 0 over the last 30% of the steps, as the example;
-- sampled by Langevin dynamics (500 steps of 1e-3).
return {
  name = "score_matching_2d",
  family = "score_matching",
  seed = 0,
  data = { name = "two_moons" },
  model = { kind = "mlp", width = 128, layers = 3 },
  objective = { method = "ssm", sigma = 0.05, projections = 1 },
  optim = { lr = 1e-3, warmup = 0, schedule = "linear_tail", tail = 0.3, eta_min = 0.0 },
  ema = { decay = 0.999 },
  batch = 256,
  steps = 3000,
  checkpoint = { every = 500, keep = 3 },
  sample = { every = 1000, n = 2000, sampler = "langevin", steps = 500, step_size = 1e-3 },
  log = { every = 10 },
}
