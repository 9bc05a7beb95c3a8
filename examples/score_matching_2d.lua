-- Score matching on 2-D data with the exact score as the yardstick: the same
-- network trained with explicit (Hyvärinen 2005, against the true score),
-- implicit (Hyvärinen 2005), sliced and variance-reduced sliced (Song, Garg,
-- Shi & Ermon 2019) and denoising (Vincent 2011) score matching, on the same
-- batches from the same initialisation.  Reports the error of each learned
-- score against the exact one and the time per step, and draws the fields.
--
--   bin/scorch examples/score_matching_2d.lua [--quick] [--data two_moons]
--                                             [--model mlp|energy] [--out DIR]
--
-- Options: --steps, --batch, --lr, --hidden, --layers, --sigma (DSM noise),
-- --projections (SSM), --methods esm,ism,ssm,ssm_vr,dsm, --seed, --threads.
--
-- Each method's training is a run of the scorch.run runtime
-- (configs/score_matching_2d.lua with these options over it) in
-- OUT/run-METHOD-KEY, KEY 8 hex digits naming the training options:
-- config.lua, metrics.jsonl, checkpoints, a Ctrl-C that checkpoints before
-- it exits.  Running the script again with the same options resumes the
-- runs (finished ones go straight to the report); other options train in
-- folders of their own.
local sc = require "scorch"
local runtime = require "scorch.run"
local util = sc.util

local defaults = {
  data = "two_moons", out = "out/score_matching_2d", seed = 0, threads = 0,
  model = "mlp", steps = 3000, batch = 256, lr = 1e-3, hidden = 128, layers = 3,
  sigma = 0.05, projections = 1, methods = "esm,ism,ssm,ssm_vr,dsm", langevin_steps = 500,
}
local opts = util.example_args(arg, { defaults = defaults, presets = { quick = { steps = 600 } },
  usage = "usage: scorch examples/score_matching_2d.lua [options]\n" })
local steps = math.tointeger(opts.steps)
local data = sc.data.toy(opts.data)
assert(util.mkdir(opts.out))
local function out(name) return opts.out .. "/" .. name end

local methods = {}
for name in opts.methods:gmatch("[%w_]+") do
  if not ({ esm = true, ism = true, ssm = true, ssm_vr = true, dsm = true })[name] then
    error("unknown method " .. name .. " (esm, ism, ssm, ssm_vr, dsm)")
  end
  methods[#methods + 1] = name
end
if opts.model ~= "mlp" and opts.model ~= "energy" then error("--model must be mlp or energy") end

print(("score_matching_2d: %s, %s model, %d steps of batch %d per method"):format(opts.data, opts.model,
  steps, opts.batch))

local test = data:sample(4000, { generator = sc.Generator(math.tointeger(opts.seed) + 100) })
local results = {}
local int = math.tointeger
for _, name in ipairs(methods) do
  -- every run starts from the same initialisation and sees the same batches (the run's
  -- initialisation and data streams depend on the seed only)
  local job = runtime.example.train { script = "examples/score_matching_2d.lua", config = "score_matching_2d",
    out = out("run-" .. name), fields = {
      seed = int(opts.seed), threads = int(opts.threads), data = { name = opts.data },
      model = { kind = opts.model, width = int(opts.hidden), layers = int(opts.layers) },
      objective = { method = name, sigma = opts.sigma + 0.0, projections = int(opts.projections) },
      optim = { lr = opts.lr + 0.0 }, batch = int(opts.batch), steps = steps,
    } }
  local model, losses = job.net, runtime.example.losses(job)
  local score = util.as_score_fn(model)
  local learned = function(x) return score(x) end
  local err = sc.metrics.score_error(learned, data, test)
  local err_smoothed = sc.metrics.score_error(function(x) return score(x) end,
    function(x) return data:score_at(x, opts.sigma) end, test)
  local err_grid = sc.metrics.score_error_grid(learned, data, { n = 40, weight = data })
  results[#results + 1] = { name = name, model = model, score = learned, losses = losses,
    ms = 1000 * runtime.example.seconds(job) / job.step, err = err, err_smoothed = err_smoothed, err_grid = err_grid }
end

-- the reference: how large the exact score is, and how far the σ-smoothed
-- score (DSM's target) is from it
local norm = sc.metrics.score_error(function(x) return x * 0 end, data, test)
local smooth_gap = sc.metrics.score_error(function(x) return data:score_at(x, opts.sigma) end, data, test)
print(("exact score: E‖∇log p‖² = %.4g on test data; the σ = %g smoothed score is %.4g from it")
  :format(norm, opts.sigma, smooth_gap))
-- ms/step from the runs' logs (training steps only); final loss: the mean of the last log window
print(("%-8s %10s %12s %14s %14s %12s"):format("method", "ms/step", "final loss", "E‖s−∇log p‖²",
  "vs smoothed", "grid (p-wt)"))
for _, r in ipairs(results) do
  print(("%-8s %10.2f %12.4g %14.4g %14.4g %12.4g"):format(r.name, r.ms, r.losses[#r.losses], r.err,
    r.err_smoothed, r.err_grid))
end

-- ---- pictures -----------------------------------------------------------------------------

local files = {}
local function save(path) if path then files[#files + 1] = path end end
local fields = { { title = "truth", score = data } }
for _, r in ipairs(results) do fields[#fields + 1] = { title = r.name, score = r.score } end
save(sc.viz.score_fields(out("score_fields.png"), fields, { background = data, size = 256, n = 18 }))
-- Langevin samples from each learned score, started from the data's box
local box = data.range
local g = sc.Generator(math.tointeger(opts.seed) + 2)
local x0 = sc.rand(2000, 2, { generator = g })
x0 = x0 * sc.tensor { box[2] - box[1], box[4] - box[3] } + sc.tensor { box[1], box[3] }
local panels = {}
for _, r in ipairs(results) do
  panels[#panels + 1] = { title = r.name, x = sc.samplers.langevin(sc.param.wrap(r.score, { kind = "score" }), x0, nil,
    { step_size = 1e-3, steps = math.tointeger(opts.langevin_steps), generator = sc.Generator(3) }) }
  save(sc.viz.loss_curve(out("loss_" .. r.name .. ".png"), r.losses, { title = r.name .. " loss (window means)",
    size = 320 }))
end
save(sc.viz.sample_panels(out("langevin_samples.png"), panels, { density = data, size = 256, radius = 1 }))
print("pictures: " .. table.concat(files, ", "))
