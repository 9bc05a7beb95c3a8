-- A GAN on eight Gaussians: one of the trainings of examples/gan_2d.lua as
-- a run: MLP generator and discriminator, the non-saturating loss
-- (objective.loss = minimax | wgan | wgan_gp for the others; RMSprop for
-- the clipped WGAN), Adam with β₁ = 0.5 at a constant learning rate (the
-- example's 2e-4; it uses optim.lr=3e-4 for wgan, and 1e-4 with beta1=0
-- beta2=0.9 for wgan_gp), an EMA of the weights for sampling.  Both
-- optimisers' states are in every checkpoint.
return {
  name = "gan_2d",
  family = "gan",
  seed = 0,
  data = { name = "eight_gaussians" },
  model = { width = 128, layers = 3, z_dim = 2 },
  objective = { loss = "ns", n_critic = 0, clip = 0.0, gp_weight = 10.0 },
  optim = { lr = 2e-4, beta1 = 0.5, beta2 = 0.999, warmup = 0, schedule = "constant" },
  ema = { decay = 0.999 },
  batch = 256,
  steps = 20000,
  checkpoint = { every = 1000, keep = 3 },
  sample = { every = 5000, n = 2000, sampler = "generator" },
  log = { every = 50 },
}
