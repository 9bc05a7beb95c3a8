-- A VAE (Kingma & Welling 2014) on eight Gaussians: the training of
-- examples/vae_2d.lua (for one of its data sets) as a run: a 2-d latent,
-- MLP encoder and decoder, a Gaussian decoder with learned variance, the
-- ELBO (objective.beta weighs its KL term), Adam at 1e-3, constant and then
-- annealed linearly to 0 over the last 30% of the steps, as the example.
-- Samples are the decoder's mean at N(0, I) latents
-- (`scorch sample RUN --mean false` draws).
return {
  name = "vae_2d",
  family = "vae",
  seed = 0,
  data = { name = "eight_gaussians" },
  model = { latent = 2, width = 128, layers = 3 },
  objective = { beta = 1.0 },
  optim = { lr = 1e-3, warmup = 0, schedule = "linear_tail", tail = 0.3, eta_min = 0.0 },
  ema = { decay = 0.999 },
  batch = 512,
  steps = 8000,
  checkpoint = { every = 1000, keep = 3 },
  sample = { every = 2000, n = 2000, sampler = "decoder" },
  log = { every = 50 },
}
