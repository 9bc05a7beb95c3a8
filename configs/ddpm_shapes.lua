-- DDPM (Ho et al. 2020) on the shapes images (sc.data.shapes: squares,
-- circles, rings and triangles, 28×28, grey on black): a small U-Net
-- (channels 16, mults 1,2) predicting ε, images in [−1, 1] with uniform
-- dequantisation, read in shuffled epochs whose position each checkpoint
-- keeps.  Sampled by DDIM (50 steps); `scorch eval RUN` scores the newest
-- samples with the shapes classifier (FID, KID, precision, recall).
return {
  name = "ddpm_shapes",
  family = "ddpm",
  seed = 0,
  data = { name = "shapes", size = 10000, image_size = 28, dequantize = true },
  model = { channels = 16, mults = "1,2", blocks = 1 },
  objective = { schedule = "linear", T = 1000 },
  optim = { lr = 2e-3, warmup = 100, schedule = "cosine", eta_min = 0.05 },
  ema = { decay = 0.999 },
  batch = 64,
  steps = 3000,
  checkpoint = { every = 500, keep = 3 },
  sample = { every = 1000, n = 64, sampler = "ddim", steps = 50 },
  log = { every = 10 },
}
