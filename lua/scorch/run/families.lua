--- The model families a run config can name: each gives the defaults of
-- its `model`, `objective` and `sample` fields, builds the network and the
-- training loss from a resolved config, and lists its samplers.
--
-- A family is a table {defaults =, validate =, build = function(cfg,
-- init_gen, data) -> f}, where f has net (the module trained), loss(x,
-- gen) (the scalar loss of a batch, drawing its noise from gen), model (the
-- wrapped model samplers take), prior(n, gen) (n starts, one per sample:
-- unit Gaussian draws of a sample's shape that each sampler scales to its
-- own prior, or the family's own law), default_sampler, samplers[name](model,
-- z, steps, gen, opts) -> x, info, and optionally extra = {shapes, get,
-- set}: state beyond the network and optimiser that checkpoints must hold
-- (tensors by name with their shapes, and plain values); a diffusion
-- family also gives its noise process (the ddpm schedule) as process.
-- @module scorch.run.families
local sc = require "scorch"

local M = {}

local function hidden_list(width, layers)
  local h = {}
  for i = 1, layers do h[i] = width end
  return h
end

local function parse_mults(text, fn)
  local out = {}
  for m in tostring(text):gmatch("[^,]+") do
    out[#out + 1] = math.tointeger(tonumber(m)) or error(("%s: model.mults must be integers like 1,2,2 (got %s)")
      :format(fn, text), 0)
  end
  return out
end

-- The denoising network of a diffusion family: a residual MLP for points,
-- a U-Net for images (Ho et al. 2020's, without attention at this size).
local function diffusion_net(cfg, data, init_gen, out, cond_scale)
  local m = cfg.model
  if not data.is_images then
    return sc.models.DiffusionMLP { dim = 2, width = m.width, blocks = m.blocks, cond_scale = cond_scale,
      generator = init_gen }
  end
  local mults = parse_mults(m.mults, "scorch.run")
  local attention = {}
  for i = 1, #mults do attention[i] = false end
  return sc.models.UNet { in_channels = data.shape[1], channels = m.channels, mults = mults, attention = attention,
    blocks = m.blocks, mid_attention = false, out = out, cond = "t", cond_scale = cond_scale, generator = init_gen }
end

-- The families that know only points.
local function points_only(cfg, fn)
  if require("scorch.run.data").image_sets[cfg.data.name] then
    error(("%s: the %s family trains on 2-D points here, not on %s images"):format(fn, cfg.family, cfg.data.name), 0)
  end
end

local function batch_shape(data, n)
  return { n, table.unpack(data.shape) }
end

-- sampler(model, x, levels, opts) with the generator and the run's options
local function with(opts, gen, extra)
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  for k, v in pairs(extra or {}) do o[k] = v end
  o.generator = gen
  return o
end

-- The start of a sampler on these levels from unit Gaussian draws z: z
-- times the prior's scale, as sc.samplers.prior draws it (1 for a DDPM
-- schedule, the SDE's prior std, else the first level σ).
local function from_unit(z, levels)
  local scale
  if type(levels) == "table" and levels.kind == "ddpm" then scale = 1
  elseif sc.schedules.is_sde(levels) then scale = levels.prior_std
  elseif sc.is_tensor(levels) then scale = levels:values()[1]
  else scale = levels[1] end
  if scale ~= 1 then z = z * scale end
  return z
end

-- The samplers that reach a diffusion model through sc.param's views (the
-- sampler zoo's): the VP SDE (β 0.1..20, the linear DDPM schedule's limit)
-- for Euler–Maruyama, predictor–corrector and the probability-flow ODE;
-- Karras levels (from sigma_min to 80) for the naive backward sampler,
-- EDM's Heun and DPM-Solver++ 2M.  Each takes unit Gaussian starts.
local function zoo_samplers(sigma_min)
  local vp = sc.schedules.vp_sde()
  local function karras(n)
    return (sc.schedules.karras_sigmas(n, { sigma_min = sigma_min, sigma_max = 80 }))
  end
  local function on_karras(name)
    return function(m, z, steps, gen, so)
      local levels = karras(steps)
      return sc.samplers[name](m, from_unit(z, levels), levels, with(so, gen))
    end
  end
  return {
    euler_maruyama = function(m, z, steps, gen, so)
      return sc.samplers.euler_maruyama(m, from_unit(z, vp), vp, with(so, gen, { steps = steps }))
    end,
    predictor_corrector = function(m, z, steps, gen, so)
      return sc.samplers.predictor_corrector(m, from_unit(z, vp), vp, with(so, gen, { steps = steps }))
    end,
    -- adaptive RK45 unless --method says otherwise; steps is then its step count
    probability_flow = function(m, z, steps, gen, so)
      local po = with(so, gen)
      if po.method and po.method ~= "rk45" then po.steps = po.steps or steps end
      return sc.samplers.probability_flow(m, from_unit(z, vp), vp, po)
    end,
    naive_backward = on_karras("naive_backward"),
    heun = on_karras("heun"),
    dpmpp_2m = on_karras("dpmpp_2m"),
  }
end

local function merged(a, b)
  local out = {}
  for k, v in pairs(a) do out[k] = v end
  for k, v in pairs(b) do out[k] = v end
  return out
end

-- ---- DDPM (Ho, Jain & Abbeel 2020): ε-prediction, L_simple ------------------------------------
M.ddpm = {
  defaults = {
    -- width: the MLP's (points); channels and mults: the U-Net's (images); blocks: both
    model = { width = 128, blocks = 3, channels = 16, mults = "1,2" },
    objective = { schedule = "linear", T = 1000 },
    sample = { every = 0, n = 1000, sampler = "ddim", steps = 50 },
  },
  build = function(cfg, init_gen, data)
    local sched = sc.schedules.ddpm { kind = cfg.objective.schedule, T = cfg.objective.T }
    local net = diffusion_net(cfg, data, init_gen, "eps", nil)
    local eps = sc.param.wrap(net, { kind = "eps", process = sched })
    return {
      net = net, model = eps, default_sampler = "ddim", process = sched,
      loss = function(x, gen) return sc.losses.ddpm(net, x, { schedule = sched, generator = gen }) end,
      prior = function(n, gen) return sc.randn(batch_shape(data, n), { generator = gen }) end,
      samplers = merged(zoo_samplers(sched.sigma_min), {
        ddpm = function(m, x, steps, gen, o)
          return sc.samplers.ddpm(m, x, sched, with(o, gen, { steps = steps ~= sched.T and steps or nil }))
        end,
        ddim = function(m, x, steps, gen, o) return sc.samplers.ddim(m, x, sched, with(o, gen, { steps = steps })) end,
      }),
    }
  end,
}

-- ---- EDM (Karras et al. 2022): preconditioned denoiser, Karras levels -------------------------
M.edm = {
  defaults = {
    -- cond_scale spreads c_noise = ¼ ln σ over the time features (100 for the MLP, 250 for a U-Net)
    model = { width = 128, blocks = 3, cond_scale = 100, channels = 16, mults = "1,2" },
    objective = { sigma_data = 0.0, P_mean = -1.2, P_std = 1.2 },
    sample = { every = 0, n = 1000, sampler = "heun", steps = 18 },
  },
  build = function(cfg, init_gen, data)
    local sd = cfg.objective.sigma_data
    if sd <= 0 then sd = data:std(cfg.seed) end -- measured from the data
    local net = diffusion_net(cfg, data, init_gen, "x0", cfg.model.cond_scale)
    local D = sc.param.edm(net, { sigma_data = sd })
    local o = cfg.objective
    return {
      net = net, model = D, default_sampler = "heun", sigma_data = sd,
      loss = function(x, gen)
        return sc.losses.edm(D, x, { P_mean = o.P_mean, P_std = o.P_std, sigma_data = sd, generator = gen })
      end,
      prior = function(n, gen) return sc.randn(batch_shape(data, n), { generator = gen }) end,
      -- Karras levels from 0.002 (EDM's σ_min) to 80, and the VP SDE's samplers through sc.param
      samplers = zoo_samplers(0.002),
    }
  end,
}

-- ---- NCSN (Song & Ermon 2019): DSM over geometric levels, annealed Langevin -------------------
M.ncsn = {
  defaults = {
    model = { width = 128, layers = 3, scale_by_sigma = true },
    objective = { sigma_max = 4.0, sigma_min = 0.01, levels = 20 },
    sample = { every = 0, n = 1000, sampler = "annealed_langevin", steps = 100, step_size = 2e-5, denoise = true },
  },
  validate = points_only,
  build = function(cfg, init_gen)
    local o = cfg.objective
    local sigmas = sc.schedules.geometric_sigmas(o.sigma_max, o.sigma_min, o.levels)
    local net = sc.models.ScoreMLP { dim = 2, hidden = hidden_list(cfg.model.width, cfg.model.layers),
      scale_by_sigma = cfg.model.scale_by_sigma, generator = init_gen }
    local s = cfg.sample
    return {
      net = net, model = sc.param.wrap(net, { kind = "score" }), default_sampler = "annealed_langevin",
      loss = function(x, gen) return sc.losses.dsm(net, x, { sigmas = sigmas, generator = gen }) end,
      prior = function(n, gen) return sc.randn({ n, 2 }, { generator = gen }) end,
      samplers = {
        annealed_langevin = function(m, x, steps, gen, so)
          return sc.samplers.annealed_langevin(m, from_unit(x, sigmas), sigmas, with({ step_size = s.step_size,
            denoise = s.denoise },
            gen, with(so, gen, { steps_per_level = steps })))
        end,
        langevin = function(m, x, steps, gen, so)
          return sc.samplers.langevin(m, from_unit(x, sigmas), sigmas[#sigmas], with({ step_size = s.step_size }, gen,
            with(so, gen, { steps = steps })))
        end,
      },
    }
  end,
}

-- ---- score matching (Hyvärinen 2005; Song et al. 2019; Vincent 2011): unconditional s(x) -------
-- esm regresses on the data's exact score (toy sets know it); the others need only samples
local sm_methods = { esm = true, ism = true, ssm = true, ssm_vr = true, dsm = true }
M.score_matching = {
  defaults = {
    data = { name = "two_moons" },
    -- kind: a score MLP s(x), or an energy MLP E(x) with s = −∇E
    model = { kind = "mlp", width = 128, layers = 3 },
    objective = { method = "ssm", sigma = 0.05, projections = 1 },
    sample = { every = 0, n = 1000, sampler = "langevin", steps = 500, step_size = 1e-3 },
  },
  validate = function(cfg, fn)
    points_only(cfg, fn)
    if not sm_methods[cfg.objective.method] then
      error(("%s: 'objective.method' must be esm, ism, ssm, ssm_vr or dsm (got %s)"):format(fn,
        cfg.objective.method), 0)
    end
    if cfg.model.kind ~= "mlp" and cfg.model.kind ~= "energy" then
      error(("%s: 'model.kind' must be mlp or energy (got %s)"):format(fn, cfg.model.kind), 0)
    end
  end,
  build = function(cfg, init_gen, data)
    local hidden = hidden_list(cfg.model.width, cfg.model.layers)
    local net
    if cfg.model.kind == "energy" then
      net = sc.models.EnergyMLP { dim = 2, hidden = hidden, generator = init_gen }
    else
      net = sc.models.ScoreMLP { dim = 2, hidden = hidden, conditional = false, generator = init_gen }
    end
    local o, s = cfg.objective, cfg.sample
    local losses = {
      esm = function(x) return sc.losses.esm(net, x, { data = data.density }) end,
      ism = function(x) return sc.losses.ism(net, x) end,
      ssm = function(x, g) return sc.losses.ssm(net, x, { generator = g, n_projections = o.projections }) end,
      ssm_vr = function(x, g) return sc.losses.ssm_vr(net, x, { generator = g, n_projections = o.projections }) end,
      dsm = function(x, g) return sc.losses.dsm(net, x, { sigma = o.sigma, generator = g }) end,
    }
    return {
      net = net, model = sc.param.wrap(net, { kind = "score" }), default_sampler = "langevin",
      loss = losses[o.method],
      prior = function(n, gen) return sc.randn({ n, 2 }, { generator = gen }) end,
      samplers = {
        langevin = function(m, x, steps, gen, so)
          local lo = with({ step_size = s.step_size }, gen, with(so, gen, { steps = steps }))
          return sc.samplers.langevin(m, x * 2, nil, lo) -- from N(0, 2²I)
        end,
      },
    }
  end,
}

-- ---- score SDEs (Song et al. 2021): continuous-time DSM (eq. 7), ε-prediction -----------------
local sde_kinds = { vp = true, subvp = true, ve = true }
M.sde = {
  defaults = {
    data = { name = "checkerboard" },
    model = { width = 128, blocks = 3, cond_scale = 1000 },
    objective = { sde = "vp", weighting = "sigma2" },
    sample = { every = 0, n = 1000, sampler = "euler_maruyama", steps = 1000 },
  },
  validate = function(cfg, fn)
    points_only(cfg, fn)
    if not sde_kinds[cfg.objective.sde] then
      error(("%s: 'objective.sde' must be vp, subvp or ve (got %s)"):format(fn, cfg.objective.sde), 0)
    end
    local w = cfg.objective.weighting
    if w ~= "sigma2" and w ~= "likelihood" then
      error(("%s: 'objective.weighting' must be sigma2 or likelihood (got %s)"):format(fn, w), 0)
    end
  end,
  build = function(cfg, init_gen, data)
    local o = cfg.objective
    local sde
    if o.sde == "vp" then sde = sc.schedules.vp_sde()
    elseif o.sde == "subvp" then sde = sc.schedules.subvp_sde()
    else
      -- σ_max about the largest distance between data points (Song & Ermon 2020, technique 1)
      local r = data.range
      sde = sc.schedules.ve_sde { sigma_min = 0.01, sigma_max = math.sqrt((r[2] - r[1]) ^ 2 + (r[4] - r[3]) ^ 2) }
    end
    -- the network sees x scaled to unit variance, 1/√(α_t² Var x₀ + s_t²) (measured with a generator of its own)
    local data_var = data:std(cfg.seed) ^ 2
    local net = sc.models.DiffusionMLP { dim = 2, width = cfg.model.width, blocks = cfg.model.blocks,
      cond_scale = cfg.model.cond_scale, generator = init_gen }
    local function model(x, t)
      local a, sd = sde:marginal(t)
      return net(x * ((a * a * data_var + sd * sd) ^ -0.5), t)
    end
    local eps = sc.param.wrap(model, { kind = "eps", process = sde })
    return {
      -- sde and eps (ε(x, t) on the raw x) for the probability-flow likelihood (sc.likelihood.nll)
      net = net, model = eps, default_sampler = "euler_maruyama", sde = sde, eps = model,
      loss = function(x, gen)
        return sc.losses.sde_dsm(model, x, { sde = sde, prediction = "eps", weighting = o.weighting, generator = gen })
      end,
      prior = function(n, gen) return sc.randn({ n, 2 }, { generator = gen }) end,
      samplers = {
        euler_maruyama = function(m, z, steps, gen, so)
          return sc.samplers.euler_maruyama(m, from_unit(z, sde), sde, with(so, gen, { steps = steps }))
        end,
        predictor_corrector = function(m, z, steps, gen, so)
          return sc.samplers.predictor_corrector(m, from_unit(z, sde), sde, with(so, gen, { steps = steps }))
        end,
        -- adaptive RK45 unless --method says otherwise; steps is then its step count
        probability_flow = function(m, z, steps, gen, so)
          local po = with(so, gen)
          if po.method and po.method ~= "rk45" then po.steps = po.steps or steps end
          return sc.samplers.probability_flow(m, from_unit(z, sde), sde, po)
        end,
      },
    }
  end,
}

-- ---- GANs (Goodfellow et al. 2014; Arjovsky et al. 2017; Gulrajani et al. 2017) -----------------
-- G and D in one module, so the run's checkpoint, EMA and figures see both
local GANPair = sc.nn.Module:extend("GANPair")
function GANPair:init(G, D) self.G, self.D = G, D end
function GANPair:forward(z) return self.G(z) end

local gan_losses = { minimax = true, ns = true, wgan = true, wgan_gp = true }
M.gan = {
  defaults = {
    model = { width = 128, layers = 3, z_dim = 2 },
    -- n_critic = 0: the loss's own (5 for the WGANs, else 1); clip: the WGAN's weight clip (0: 0.05)
    objective = { loss = "ns", n_critic = 0, clip = 0.0, gp_weight = 10.0 },
    sample = { every = 0, n = 1000, sampler = "generator", steps = 1 },
  },
  validate = function(cfg, fn)
    points_only(cfg, fn)
    if not gan_losses[cfg.objective.loss] then
      error(("%s: 'objective.loss' must be minimax, ns, wgan or wgan_gp (got %s)"):format(fn, cfg.objective.loss), 0)
    end
    if cfg.on_nonfinite ~= "stop" then
      error(fn .. ": a GAN step updates D and then G, so it cannot be skipped: on_nonfinite must be stop", 0)
    end
  end,
  build = function(cfg, init_gen)
    local m, o = cfg.model, cfg.objective
    local hidden = hidden_list(m.width, m.layers)
    local G = sc.models.MLPGenerator { z_dim = m.z_dim, dim = 2, hidden = hidden, generator = init_gen }
    local D = sc.models.MLPDiscriminator { dim = 2, hidden = hidden, generator = init_gen }
    local kind = o.loss == "wgan" and "rmsprop" or "adam" -- RMSprop for the clipped WGAN, as its paper
    local tr
    return {
      net = GANPair(G, D), model = G, default_sampler = "generator",
      optimizers = { { name = "g", prefix = "G.", kind = kind }, { name = "d", prefix = "D.", kind = kind } },
      -- n_critic critic updates on fresh batches, then one generator update (sc.models.gan.Trainer)
      train_step = function(ctx)
        if not tr then
          tr = sc.models.gan.Trainer { G = G, D = D, loss = o.loss, opt_g = ctx.opt.g, opt_d = ctx.opt.d,
            n_critic = o.n_critic > 0 and o.n_critic or nil, gp_weight = o.gp_weight, generator = ctx.gen,
            clip = o.loss == "wgan" and (o.clip > 0 and o.clip or 0.05) or nil }
        end
        local row = tr:step(ctx.batch)
        tr.history = {} -- the run's log keeps the rows
        return row.loss_g, { grad_norm = row.grad_norm_g,
          log = { loss_d = row.loss_d, loss_g = row.loss_g, wasserstein = row.wasserstein } }
      end,
      prior = function(n, gen) return sc.randn({ n, m.z_dim }, { generator = gen }) end,
      samplers = {
        -- x = G(z): one network evaluation per sample
        generator = function(g, z, _, _, so)
          require("scorch.util").check_options(so, {}, "scorch sample (generator)")
          return g(z), { nfe = 1 }
        end,
      },
    }
  end,
}

-- ---- energy-based model (Du & Mordatch 2019): contrastive divergence with a replay buffer -------
M.ebm = {
  defaults = {
    model = { width = 128, layers = 3 },
    -- alpha weighs the energy regulariser E+² + E−²; chains of chain_steps Langevin steps of
    -- step_size start from a replay buffer of `buffer` points, a fraction reinit fresh; noise
    -- (0: √(2·step_size)) and clip (0: none) are the chains' noise scale and gradient clip
    objective = { alpha = 0.1, chain_steps = 40, step_size = 0.01, buffer = 10000, reinit = 0.05, noise = 0.0,
      clip = 0.0 },
    sample = { every = 0, n = 1000, sampler = "langevin", steps = 500, step_size = 0.01 },
  },
  validate = points_only,
  build = function(cfg, init_gen, data)
    local o = cfg.objective
    local ebm = sc.models.EnergyMLP { dim = 2, hidden = hidden_list(cfg.model.width, cfg.model.layers),
      act = "silu", generator = init_gen }
    local box = data.density.range
    local lo, span = sc.tensor { box[1], box[3] }, sc.tensor { box[2] - box[1], box[4] - box[3] }
    -- the buffer's own generator (fresh starts, which old chains to resume): its state is the run's
    local bgen = sc.Generator(require("scorch.run.trainer").stream_seed(cfg.seed, 5))
    local function uniform(n, g) return sc.rand({ n, 2 }, { generator = g }) * span + lo end
    local buf = sc.losses.ReplayBuffer { init = function(n) return uniform(n, bgen) end, size = o.buffer,
      reinit = o.reinit, generator = bgen }
    local s = cfg.sample
    return {
      net = ebm, model = ebm, default_sampler = "langevin",
      loss = function(x, gen)
        local neg = sc.losses.langevin_negatives(ebm, buf:sample(x:size(1)),
          { steps = o.chain_steps, step_size = o.step_size, generator = gen, noise = o.noise > 0 and o.noise or nil,
            clip = o.clip > 0 and o.clip or nil })
        buf:push(neg)
        local loss, info = sc.losses.cd(ebm, x, neg, { alpha = o.alpha })
        -- energies this large mean the chains have run off: stop before the loss overflows
        if math.abs(info.e_pos) > 1e6 then
          error(("training diverged (mean energy of the data %g, of the negatives %g)"):format(info.e_pos,
            info.e_neg), 0)
        end
        return loss
      end,
      -- sampling chains start uniformly in the data's box
      prior = function(n, gen) return uniform(n, gen) end,
      samplers = {
        -- Langevin chains on the energy, as the example's (no buffer)
        langevin = function(m, x, steps, gen, so)
          so = require("scorch.util").check_options(so, { "step_size", "noise", "clip" }, "scorch sample (langevin)")
          local x1, info = sc.losses.langevin_negatives(m, x, { steps = steps, step_size = so.step_size or s.step_size,
            noise = so.noise, clip = so.clip, generator = gen })
          return x1, { nfe = steps, grad_norm = info.grad_norm }
        end,
      },
      -- the replay buffer, its fill and its generator go into every checkpoint
      extra = {
        shapes = { buffer = { o.buffer, 2 } },
        get = function() return { buffer = buf.data }, { count = buf.count, pos = buf.pos, gen = bgen:get_state() } end,
        set = function(tensors, values)
          buf.data = tensors.buffer:contiguous():clone()
          buf.count, buf.pos = values.count, values.pos
          bgen:set_state(values.gen)
        end,
      },
    }
  end,
}

-- ---- RealNVP (Dinh, Sohl-Dickstein & Bengio 2017): exact maximum likelihood --------------------
M.flow = {
  defaults = {
    model = { couplings = 8, width = 128, layers = 3 },
    objective = {},
    sample = { every = 0, n = 1000, sampler = "inverse", steps = 1, temperature = 1.0 },
  },
  validate = points_only,
  build = function(cfg, init_gen)
    local flow = sc.models.RealNVP { dim = 2, couplings = cfg.model.couplings,
      hidden = hidden_list(cfg.model.width, cfg.model.layers), generator = init_gen }
    local t = cfg.sample.temperature
    return {
      net = flow, model = flow, default_sampler = "inverse",
      -- the negative log-likelihood of the batch, in nats per point
      loss = function(x) return -flow:log_prob(x):mean() end,
      prior = function(n, gen) return sc.randn({ n, 2 }, { generator = gen }) end,
      samplers = {
        -- x = f⁻¹(τ z): the flow's inverse of each start (steps is unused)
        inverse = function(m, z, _, _, so)
          require("scorch.util").check_options(so, { "temperature" }, "scorch sample (inverse)")
          return m:inverse(z * (so.temperature or t)), { nfe = 1 }
        end,
      },
    }
  end,
}

-- ---- VAE (Kingma & Welling 2014): the ELBO with a learned-variance Gaussian decoder ----------
M.vae = {
  defaults = {
    model = { latent = 2, width = 128, layers = 3 },
    objective = { beta = 1.0 },
    sample = { every = 0, n = 1000, sampler = "decoder", steps = 1 },
  },
  validate = points_only,
  build = function(cfg, init_gen)
    local vae = sc.models.VAE { x_dim = 2, latent = cfg.model.latent, hidden = hidden_list(cfg.model.width,
      cfg.model.layers), act = "silu", likelihood = "gaussian_learned", generator = init_gen }
    local latent = cfg.model.latent
    return {
      net = vae, model = vae, default_sampler = "decoder",
      loss = function(x, gen) return (sc.losses.elbo(vae, x, { beta = cfg.objective.beta, generator = gen })) end,
      prior = function(n, gen) return sc.randn({ n, latent }, { generator = gen }) end,
      samplers = {
        -- the decoder's mean at z, or (mean = false) a draw from p(x | z) by the chunk's generator
        decoder = function(m, z, _, gen, so)
          so = require("scorch.util").check_options(so, { "mean" }, "scorch sample (decoder)")
          local p = m:decode(z)
          local mu = m:mean(p)
          if so.mean ~= false then return mu, { nfe = 1 } end
          local sd = (p.logvar * 0.5):exp():reshape(mu:shape())
          return mu + require("scorch.samplers.common").noise_like(mu, gen) * sd, { nfe = 1 }
        end,
      },
    }
  end,
}


--- The names of the families, sorted.
-- @return list of strings
-- @usage print(table.concat(families.names(), ", "))
function M.names()
  local out = {}
  for k, v in pairs(M) do if type(v) == "table" and v.build then out[#out + 1] = k end end
  table.sort(out)
  return out
end

--- A family by name, or an error listing the known ones.
-- @param name string
-- @param fn string: the caller's name for the error
-- @return the family table
-- @usage local fam = families.get("ddpm", "scorch train")
function M.get(name, fn)
  local f = type(name) == "string" and M[name]
  if type(f) ~= "table" or not f.build then
    error(("%s: unknown family '%s' (known: %s)"):format(fn or "scorch.run.families", tostring(name),
      table.concat(M.names(), ", ")), 0)
  end
  return f
end

return M
