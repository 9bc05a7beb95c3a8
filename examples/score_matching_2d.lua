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
local sc = require "scorch"
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

-- one objective per method, each loss(model, x, generator)
local objectives = {
  esm = function(m, x) return sc.losses.esm(m, x, { data = data }) end,
  ism = function(m, x) return sc.losses.ism(m, x) end,
  ssm = function(m, x, g)
    return sc.losses.ssm(m, x, { generator = g, n_projections = math.tointeger(opts.projections) })
  end,
  ssm_vr = function(m, x, g)
    return sc.losses.ssm_vr(m, x, { generator = g, n_projections = math.tointeger(opts.projections) })
  end,
  dsm = function(m, x, g) return sc.losses.dsm(m, x, { sigma = opts.sigma, generator = g }) end,
}
local methods = {}
for name in opts.methods:gmatch("[%w_]+") do
  if not objectives[name] then error("unknown method " .. name .. " (esm, ism, ssm, ssm_vr, dsm)") end
  methods[#methods + 1] = name
end

local hidden = {}
for i = 1, opts.layers do hidden[i] = math.tointeger(opts.hidden) end
local function new_model()
  local g = sc.Generator(math.tointeger(opts.seed)) -- the same initialisation for every method
  if opts.model == "energy" then
    return sc.models.EnergyMLP { dim = 2, hidden = hidden, generator = g }
  end
  return sc.models.ScoreMLP { dim = 2, hidden = hidden, conditional = false, generator = g }
end

print(("score_matching_2d: %s, %s model, %d steps of batch %d per method"):format(opts.data, opts.model,
  steps, opts.batch))

local test = data:sample(4000, { generator = sc.Generator(math.tointeger(opts.seed) + 100) })
local results = {}
for _, name in ipairs(methods) do
  local model = new_model()
  local optimizer = sc.optim.Adam(model, { lr = opts.lr })
  local g = sc.Generator(math.tointeger(opts.seed) + 1) -- the same batches for every method
  local losses = {}
  local bar = util.progress(steps, { desc = name })
  local t0 = sc.time()
  for step = 1, steps do
    local x = data:sample(math.tointeger(opts.batch), { generator = g })
    local loss = objectives[name](model, x, g)
    optimizer:zero_grad()
    loss:backward()
    optimizer:step()
    local frac = step / steps
    if frac > 0.7 then optimizer.lr = opts.lr * (1 - frac) / 0.3 + 1e-6 end
    losses[step] = loss:item()
    bar:update { loss = losses[step] }
  end
  bar:close()
  local elapsed = sc.time() - t0
  local score = util.as_score_fn(model)
  local learned = function(x) return score(x) end
  local err = sc.metrics.score_error(learned, data, test)
  local err_smoothed = sc.metrics.score_error(function(x) return score(x) end,
    function(x) return data:score_at(x, opts.sigma) end, test)
  local err_grid = sc.metrics.score_error_grid(learned, data, { n = 40, weight = data })
  results[#results + 1] = { name = name, model = model, score = learned, losses = losses,
    ms = 1000 * elapsed / steps, err = err, err_smoothed = err_smoothed, err_grid = err_grid }
end

-- the reference: how large the exact score is, and how far the σ-smoothed
-- score (DSM's target) is from it
local norm = sc.metrics.score_error(function(x) return x * 0 end, data, test)
local smooth_gap = sc.metrics.score_error(function(x) return data:score_at(x, opts.sigma) end, data, test)
print(("exact score: E‖∇log p‖² = %.4g on test data; the σ = %g smoothed score is %.4g from it")
  :format(norm, opts.sigma, smooth_gap))
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
  save(sc.viz.loss_curve(out("loss_" .. r.name .. ".png"), r.losses, { title = r.name .. " loss", size = 320 }))
end
save(sc.viz.sample_panels(out("langevin_samples.png"), panels, { density = data, size = 256, radius = 1 }))
print("pictures: " .. table.concat(files, ", "))
