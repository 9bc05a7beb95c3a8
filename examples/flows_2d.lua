-- RealNVP (Dinh, Sohl-Dickstein & Bengio 2017) on 2-D data with exact
-- densities: maximum likelihood on samples, then the exact test NLL beside
-- the data's entropy (the floor no model can beat; estimated as −mean log p
-- on the same test points, so NLL − H estimates KL(p ‖ q) with little
-- noise), per-mode mass and TV on mixtures, MMD against the real-vs-real
-- baseline, and density plots beside the truth.
--
--   bin/scorch examples/flows_2d.lua [--quick] [--data eight_gaussians,two_gaussians]
--
-- Options: --steps, --batch, --lr, --couplings, --hidden, --layers, --seed,
-- --threads, --out.
--
-- Each data set's training is a run of the scorch.run runtime
-- (configs/flows_2d.lua with these options over it) in OUT/run-DATA-KEY,
-- KEY 8 hex digits naming the training options: config.lua,
-- metrics.jsonl, checkpoints, a Ctrl-C that checkpoints before it exits.
-- Running the script again with the same options resumes the runs
-- (finished ones go straight to the report); other options train in
-- folders of their own.
local sc = require "scorch"
local runtime = require "scorch.run"
local util = sc.util

local defaults = {
  data = "eight_gaussians,two_gaussians,checkerboard", out = "out/flows_2d", seed = 0, threads = 0,
  steps = 6000, batch = 512, lr = 1e-3, couplings = 8, hidden = 128, layers = 3, n_test = 20000,
  n_samples = 10000,
}
local opts = util.example_args(arg, { defaults = defaults, presets = { quick = { steps = 1500 } },
  usage = "usage: scorch examples/flows_2d.lua [options]\n" })
local steps, batch = math.tointeger(opts.steps), math.tointeger(opts.batch)
assert(util.mkdir(opts.out))
local function out(name) return opts.out .. "/" .. name end

local files, rows = {}, {}
local function save(path) if path then files[#files + 1] = path end end

for dname in opts.data:gmatch("[%w_]+") do
  -- maximum likelihood, −mean log q(x), on fresh batches; Adam, its learning rate constant and then
  -- annealed linearly to 0 over the last 30% of the steps; a non-finite loss stops the run
  local int = math.tointeger
  local job = runtime.example.train { script = "examples/flows_2d.lua", config = "flows_2d",
    out = out("run-" .. dname), fields = {
      seed = int(opts.seed), threads = int(opts.threads), data = { name = dname },
      model = { couplings = int(opts.couplings), width = int(opts.hidden), layers = int(opts.layers) },
      optim = { lr = opts.lr + 0.0 }, batch = batch, steps = steps,
    } }
  local flow, data, losses = job.net, job.data.density, runtime.example.losses(job) -- the trained weights
  local train_s = runtime.example.seconds(job)

  local test = data:sample(math.tointeger(opts.n_test), { generator = sc.Generator(1000) })
  local t1 = sc.time()
  local x = flow:sample(math.tointeger(opts.n_samples), { generator = sc.Generator(7) })
  local sample_s = sc.time() - t1
  local row, real = sc.metrics.likelihood_row(data, test, sc.no_grad(function() return -flow:log_prob(test) end), x,
    { bandwidth = 0.1 })
  row.data, row.train_s, row.sample_s = dname, train_s, sample_s
  local nll, ent = row.nll, row.ent
  rows[#rows + 1] = row

  local model_density = function(p) return flow:log_prob(p) end
  save(sc.viz.density(out(dname .. "_truth.png"), data, { title = dname .. ": exact density", size = 320 }))
  save(sc.viz.density(out(dname .. "_realnvp.png"), model_density,
    { range = data.range, title = ("RealNVP: NLL %.3f (H %.3f)"):format(nll, ent), size = 320 }))
  save(sc.viz.sample_panels(out(dname .. "_samples.png"),
    { { title = "data", x = real:narrow(1, 1, math.min(2000, real:size(1))) },
    { title = "RealNVP", x = x:narrow(1, 1, math.min(2000, x:size(1))) } }, { density = data, size = 320, radius = 1 }))
  save(sc.viz.loss_curve(out(dname .. "_nll.png"), losses, { title = ("%s: training NLL, mean per %d steps"):format(
    dname, job.cfg.log.every), log = false }))
end

print(("\n%-16s %16s %16s %8s %7s %10s %10s %8s %8s"):format("data", "test NLL (nats)", "entropy H",
  "TV", "modes", "MMD²", "real-real", "train", "sample"))
for _, r in ipairs(rows) do
  print(("%-16s %9.4f±%.4f %9.4f±%.4f %8s %7s %10.2e %10.2e %7.1fs %7.2fs"):format(r.data, r.nll, r.nll_se,
    r.ent, r.ent_se, r.tv and ("%.3f"):format(r.tv) or "-",
    r.modes and ("%d/%d"):format(r.covered, r.modes) or "-", r.mmd, r.base, r.train_s, r.sample_s))
end
print(("(%d test points; sample time for %d points; train: the steps' wall time from the run's log)"):format(
  math.tointeger(opts.n_test), math.tointeger(opts.n_samples)))
print("pictures: " .. table.concat(files, ", "))
