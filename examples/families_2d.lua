-- Every model family scorch has, on the same 2-D data and the same
-- yardsticks: NCSN (score model, annealed Langevin), DDPM (ancestral
-- sampling), a VP score SDE (reverse SDE), EDM (Heun), RealNVP, a VAE, an
-- energy model trained by contrastive divergence, and a WGAN-GP.  Each is
-- trained by its configs/<name>_2d.lua through the scorch.run runtime
-- (resumable; see examples/ncsn_2d.lua), then measured the same way:
--   * test NLL in nats where the family gives one: exact for the flow, the
--     IWAE bound (K = 256) for the VAE, log Z by a 400² grid for the EBM,
--     the DDPM's own variational bound (Ho et al. 2020 eq. 5, every t, σ² = β), the
--     probability-flow ODE's for the SDE (Song et al. 2021 §D.2); score
--     models, EDM and GANs give none here (–);
--   * the data's entropy on the same test points, the floor no model beats;
--   * TV between the mode masses of 10,000 samples and the mixture's
--     weights, modes covered, MMD² (h = 0.1) against fresh data beside the
--     real-vs-real baseline;
--   * the wall time of training (from the run's log) and of drawing 10,000
--     samples with the family's default sampler.
--
--   bin/scorch examples/families_2d.lua [--quick] [--threads 1]
--
-- Options: --data (a toy set with modes; eight_gaussians), --families
-- (comma list), --fraction (of each config's steps; 1, --quick 0.2),
-- --n_test (1000), --n_samples (10000), --seed, --threads, --out.
local sc = require "scorch"
local runtime = require "scorch.run"
local util = sc.util

local ALL = "ncsn,ddpm,sde,edm,flow,vae,ebm,gan"
local defaults = {
  data = "eight_gaussians", families = ALL, fraction = 1.0, out = "out/families_2d", seed = 0, threads = 0,
  n_test = 1000, n_samples = 10000,
}
local opts = util.example_args(arg, { defaults = defaults, presets = { quick = { fraction = 0.2 } },
  usage = "usage: scorch examples/families_2d.lua [options]\n" })
assert(util.mkdir(opts.out))
local function out(name) return opts.out .. "/" .. name end
local int = math.tointeger

-- family -> its config, its label in the table, and how it gives an NLL
local FAMILIES = {
  ncsn = { config = "ncsn_2d", label = "NCSN (annealed Langevin)" },
  ddpm = { config = "ddpm_2d", label = "DDPM (ancestral, T = 1000)", sampler = "ddpm", steps = 1000 },
  sde = { config = "sde_2d", label = "VP SDE (reverse SDE)" },
  edm = { config = "edm_2d", label = "EDM (Heun, 18 levels)" },
  flow = { config = "flows_2d", label = "RealNVP" },
  -- samples are draws from p(x | z), not the decoder's mean (which has no spread of its own)
  vae = { config = "vae_2d", label = "VAE", options = { mean = false } },
  ebm = { config = "ebm_2d", label = "EBM (CD, Langevin)" },
  gan = { config = "gan_2d", label = "WGAN-GP" },
}

-- the per-point test NLL of a trained run, and how it was obtained
local NLL = {
  flow = function(job, test) return -job.net:log_prob(test), "exact" end,
  vae = function(job, test)
    local g = sc.Generator(11)
    return util.in_chunks(test:size(1), 250, function(first, m)
      local _, info = sc.losses.iwae(job.net, test:narrow(1, first, m), { k = 256, generator = g })
      return -info.bound
    end), "IWAE bound, K = 256"
  end,
  ebm = function(job, test, data)
    return job.net(test) + sc.metrics.log_partition(job.net, data.range, 400), "log Z by a 400² grid"
  end,
  ddpm = function(job, test)
    -- the reverse variance β: on continuous data β̃ is too small at small t
    -- and its bound is looser (examples/ddpm_bound_2d.lua)
    local nll = sc.likelihood.ddpm_bound(job.fam.model, test, { variance = "beta", generator = sc.Generator(11),
      progress = false })
    return nll, "variational bound, σ² = β"
  end,
  sde = function(job, test)
    local nll = sc.likelihood.nll(job.fam.eps, job.fam.sde, test, { prediction = "eps" })
    return nll, "probability-flow ODE"
  end,
}

local data_name = opts.data
local rows = {}
for name in opts.families:gmatch("[%w_]+") do
  local fam = FAMILIES[name]
  if not fam then
    io.stderr:write(("examples/families_2d.lua: unknown family '%s' (known: %s)\n"):format(name, ALL))
    os.exit(2)
  end
  local raw = runtime.config.load_file(runtime.example.config_file(fam.config))
  local steps = math.max(1, math.floor(raw.steps * opts.fraction + 0.5))
  local job = runtime.example.train { script = "examples/families_2d.lua", config = fam.config,
    out = out("run-" .. name), fields = { seed = int(opts.seed), threads = int(opts.threads),
      data = { name = data_name, half_width = raw.data.half_width and 0 or nil }, steps = steps } }
  local data = job.data.density
  local train_s = runtime.example.seconds(job)

  local t0 = sc.time()
  local x = runtime.sampling.draw(job, { n = int(opts.n_samples), weights = "raw", seed = int(opts.seed),
    sampler = fam.sampler, steps = fam.steps, options = fam.options })
  local sample_s = sc.time() - t0
  local test = data:sample(int(opts.n_test), { generator = sc.Generator(1000) })
  local nll, how
  if NLL[name] then
    if name == "sde" then
      nll, how = NLL.sde(job, test) -- the ODE's exact divergence takes gradients itself
    else
      nll, how = sc.no_grad(function() return NLL[name](job, test, data) end)
    end
  end
  local row = sc.metrics.likelihood_row(data, test, nll and nll:to("float64"), x, { bandwidth = 0.1 })
  row.name, row.label, row.how, row.steps, row.train_s, row.sample_s = name, fam.label, how, job.step, train_s,
    sample_s
  rows[#rows + 1] = row
  sc.viz.sample_panels(out(name .. "_samples.png"), { { title = fam.label, x = x:narrow(1, 1, math.min(2000, x:size(1))) } },
    { density = data, size = 320, radius = 1 })
  io.stderr:write(("%s: trained %d steps in %.1f s, %d samples in %.1f s\n"):format(name, job.step, train_s,
    x:size(1), sample_s))
end

local function f(v, fmt) return v and fmt:format(v) or "–" end
local lines = {
  ("Families on %s (%d samples; NLL and entropy on the same %d test points; seed %d)"):format(data_name,
    int(opts.n_samples), int(opts.n_test), int(opts.seed)),
  "",
  ("| family | steps | test NLL (nats) | entropy H | NLL from | TV | modes | MMD² | real-real MMD² | train | sample %d |"):format(
    int(opts.n_samples)),
  "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
}
for _, r in ipairs(rows) do
  lines[#lines + 1] = ("| %s | %d | %s | %.3f ± %.3f | %s | %s | %s | %.2e | %.2e | %.1f s | %.1f s |"):format(
    r.label, r.steps, r.nll and ("%.3f ± %.3f"):format(r.nll, r.nll_se) or "–", r.ent, r.ent_se, r.how or "–",
    f(r.tv, "%.3f"), r.covered and ("%d/%d"):format(r.covered, r.modes) or "–", r.mmd, r.base, r.train_s,
    r.sample_s)
end
local text = table.concat(lines, "\n") .. "\n"
io.write("\n", text)
assert(util.write_atomic(out("table.md"), text))
print(("table: %s; samples: %s/<family>_samples.png"):format(out("table.md"), opts.out))
