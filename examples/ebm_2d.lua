-- An energy-based model p(x) = e^−E(x)/Z on 2-D data trained by maximum
-- likelihood with contrastive divergence: negatives from short-run Langevin
-- chains on −∇ₓE continued from a replay buffer (Du & Mordatch 2019), the
-- energy-magnitude regulariser, gradient clipping in the chains.  The test
-- NLL is exact up to quadrature: log Z by a midpoint rule on a fine grid
-- over the data's box widened by half its size (no probability flow needed
-- in 2-D), reported beside the data's entropy.  Mode mass, TV, MMD and the
-- density beside the truth as for the other families.
--
--   bin/scorch examples/ebm_2d.lua [--quick] [--data eight_gaussians,two_gaussians]
--
-- Options: --steps, --batch, --lr, --hidden, --layers, --chain-steps,
-- --step-size, --noise, --clip, --alpha, --buffer, --reinit, --seed, --threads, --out.
--
-- Each data set's training is a run of the scorch.run runtime
-- (configs/ebm_2d.lua with these options over it) in OUT/run-DATA-KEY,
-- KEY 8 hex digits naming the training options: config.lua,
-- metrics.jsonl, checkpoints holding the replay buffer too, a Ctrl-C that
-- checkpoints before it exits.  Running the script again with the same
-- options resumes the runs (finished ones go straight to the report);
-- other options train in folders of their own.
local sc = require "scorch"
local runtime = require "scorch.run"
local util = sc.util

local defaults = {
  data = "eight_gaussians,two_gaussians", out = "out/ebm_2d", seed = 0, threads = 0,
  steps = 4000, batch = 256, lr = 1e-3, hidden = 128, layers = 3, chain_steps = 40, step_size = 0.01,
  noise = 0.0, clip = 0.0, alpha = 0.1, buffer = 10000, reinit = 0.05, grid = 400, n_test = 20000,
  n_samples = 4000, sample_steps = 500,
}
local opts = util.example_args(arg, { defaults = defaults, presets = { quick = { steps = 1000 } },
  usage = "usage: scorch examples/ebm_2d.lua [options]\n" })
local steps, batch = math.tointeger(opts.steps), math.tointeger(opts.batch)
assert(util.mkdir(opts.out))
local function out(name) return opts.out .. "/" .. name end

local function chain_opts(g, n)
  return { steps = n, step_size = opts.step_size, generator = g,
    noise = opts.noise > 0 and opts.noise or nil, clip = opts.clip > 0 and opts.clip or nil }
end

local files, rows = {}, {}
local function save(path) if path then files[#files + 1] = path end end

for dname in opts.data:gmatch("[%w_]+") do
  -- contrastive divergence with the energy regulariser; Adam (β₁ = 0) at a constant learning
  -- rate; a non-finite loss, or energies beyond 1e6, stop the run
  local int = math.tointeger
  local job = runtime.example.train { script = "examples/ebm_2d.lua", config = "ebm_2d", out = out("run-" .. dname),
    fields = {
      seed = int(opts.seed), threads = int(opts.threads), data = { name = dname },
      model = { width = int(opts.hidden), layers = int(opts.layers) },
      objective = { alpha = opts.alpha + 0.0, chain_steps = int(opts.chain_steps), step_size = opts.step_size + 0.0,
        buffer = int(opts.buffer), reinit = opts.reinit + 0.0, noise = opts.noise + 0.0, clip = opts.clip + 0.0 },
      optim = { lr = opts.lr + 0.0 }, batch = batch, steps = steps,
      sample = { steps = int(opts.sample_steps), step_size = opts.step_size + 0.0 }, -- the run's own figure
    } }
  local ebm, data, losses = job.net, job.data.density, runtime.example.losses(job) -- the trained weights
  local train_s = runtime.example.seconds(job)
  local box = data.range
  local g = sc.Generator(math.tointeger(opts.seed))
  local function uniform(n)
    return sc.rand(n, 2, { generator = g }) * sc.tensor { box[2] - box[1], box[4] - box[3] }
      + sc.tensor { box[1], box[3] }
  end

  local test = data:sample(math.tointeger(opts.n_test), { generator = sc.Generator(1000) })
  local logz = sc.metrics.log_partition(ebm, box, math.tointeger(opts.grid))
  local test_nll = sc.no_grad(function() return ebm(test) end) + logz
  -- samples: long Langevin chains from uniform starts (no buffer)
  local t1 = sc.time()
  local x = sc.losses.langevin_negatives(ebm, uniform(math.tointeger(opts.n_samples)),
    chain_opts(sc.Generator(7), math.tointeger(opts.sample_steps)))
  local sample_s = sc.time() - t1
  local row, real = sc.metrics.likelihood_row(data, test, test_nll, x,
    { bandwidth = 0.1 })
  row.data, row.train_s, row.sample_s = dname, train_s, sample_s
  local nll, ent = row.nll, row.ent
  rows[#rows + 1] = row
  save(sc.viz.density(out(dname .. "_truth.png"), data, { title = dname .. ": exact density", size = 320 }))
  save(sc.viz.density(out(dname .. "_ebm.png"), function(p) return -ebm(p) - logz end,
    { range = box, title = ("EBM: NLL %.3f (H %.3f)"):format(nll, ent), size = 320 }))
  save(sc.viz.sample_panels(out(dname .. "_samples.png"),
    { { title = "data", x = real:narrow(1, 1, math.min(2000, real:size(1))) },
    { title = "EBM (Langevin)", x = x:narrow(1, 1, math.min(2000, x:size(1))) } },
    { density = data, size = 320, radius = 1 }))
  save(sc.viz.loss_curve(out(dname .. "_cd.png"), losses, { title = ("%s: CD loss, mean per %d steps"):format(dname,
    job.cfg.log.every), log = false }))
end

print(("\n%-16s %16s %16s %8s %7s %10s %10s %8s %8s"):format("data", "test NLL (nats)", "entropy H",
  "TV", "modes", "MMD²", "real-real", "train", "sample"))
for _, r in ipairs(rows) do
  print(("%-16s %9.4f±%.4f %9.4f±%.4f %8s %7s %10.2e %10.2e %7.1fs %7.2fs"):format(r.data, r.nll, r.nll_se,
    r.ent, r.ent_se, r.tv and ("%.3f"):format(r.tv) or "-",
    r.modes and ("%d/%d"):format(r.covered, r.modes) or "-", r.mmd, r.base, r.train_s, r.sample_s))
end
print(("(NLL with log Z by a %d² midpoint grid; samples: %d-step Langevin chains from uniform starts;"
  .. " train: the steps' wall time from the run's log)")
  :format(math.tointeger(opts.grid), math.tointeger(opts.sample_steps)))
print("pictures: " .. table.concat(files, ", "))
