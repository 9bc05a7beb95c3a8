-- Conditional generation on an imbalanced labelled 2-D mixture: one
-- class-conditional DDPM network trained with label dropout (Ho & Salimans
-- 2021: labels replaced by the null class ∅ with probability p_uncond), then
-- classifier-free guidance ε̃ = (1 + w) ε(x, c) − w ε(x, ∅) at w = 0, 1, 3
-- for every class — the rare one drawn on demand as often as the common one —
-- and classifier guidance of the learned unconditional model by the exact
-- Bayes classifier and by a noise-conditional classifier trained on noisy
-- data (Dhariwal & Nichol 2021).  Each class's samples are
-- scored against the truth: the component's mean and spread, and the
-- agreement (the fraction the exact classifier assigns to the requested
-- class, with its mean probability) — next to the same guidance applied to
-- the mixture's exact conditional scores.  Writes out/guidance_2d/class<k>.png
-- (one panel per w), unconditional.png and loss.png.
--
--   scorch examples/guidance_2d.lua [--quick] [--p-uncond 0.15] [--steps 8000]
local sc = require "scorch"
local util = sc.util

local defaults = {
  steps = 8000, batch = 512, lr = 2e-3, width = 128, blocks = 3, ema = 0.999, p_uncond = 0.15, clf_steps = 3000,
  n = 2000, sample_steps = 100, seed = 0, threads = 0, out = "out/guidance_2d",
}
local opts = util.example_args(arg, { defaults = defaults,
  -- a smaller network and fewer steps: about a minute at one thread
  presets = { quick = { steps = 2000, width = 64, n = 1000, sample_steps = 50, clf_steps = 1500 } },
  usage = "usage: scorch examples/guidance_2d.lua [options]\n"
    .. "Classifier-free and classifier guidance on an imbalanced labelled 2-D mixture.\n" })

sc.manual_seed(opts.seed)
local gen = sc.Generator(opts.seed + 1)

-- Four classes on a circle of radius 2, overlapping; the last is rare (5%).
local WEIGHTS = { 0.55, 0.25, 0.15, 0.05 }
local means = {}
for k = 1, 4 do
  local a = 2 * math.pi * (k - 1) / 4 + math.pi / 4
  means[k] = { 2 * math.cos(a), 2 * math.sin(a) }
end
local data = sc.data.gaussian_mixture { means = means, stds = 0.75, weights = WEIGHTS, name = "labelled_mixture",
  range = { -4, 4, -4, 4 } }
local K = data.K
local bayes = sc.models.mixture_classifier(data)   -- the exact p(k | x, σ)

local sched = sc.schedules.ddpm { T = 1000 }
local net = sc.models.DiffusionMLP { dim = 2, width = opts.width, blocks = opts.blocks, classes = K,
  p_uncond = opts.p_uncond }
print(("class-conditional DDPM on a %d-class mixture (weights %s): residual MLP %d×%d, p_uncond = %g, %d steps of %d")
  :format(K, table.concat(WEIGHTS, "/"), opts.blocks, opts.width, opts.p_uncond, opts.steps, opts.batch))

-- ---- training: L_simple with the labels dropped to ∅ at rate p_uncond ---------------------
local t0 = sc.time()
local losses = util.train(net, function()
  local x, labels = data:sample(opts.batch, { generator = gen })
  local dropped = sc.models.drop_labels(labels, opts.p_uncond, { generator = gen })
  return sc.losses.ddpm(sc.param.bind(net, dropped), x, { schedule = sched, generator = gen })
end, { steps = opts.steps, lr = opts.lr, ema = opts.ema, log_every = math.max(1, opts.steps // 5),
  log_window = 100, t0 = t0 })
net:eval()

-- ---- the classifier of classifier guidance: cross-entropy on points noised at every level ----
local clf = sc.models.NoisyClassifier { classes = K, hidden = { 64, 64 } }
util.train(clf, function()
  local x, labels = data:sample(256, { generator = gen })
  return clf:noisy_loss(x, labels, { sigma_min = 0.01, sigma_max = 160, generator = gen })
end, { steps = opts.clf_steps, lr = 3e-3, desc = "classifier" })
clf:eval()

-- ---- sampling: DDIM with each guided model ------------------------------------------------
local model = sc.param.wrap(net, { kind = "eps", process = sched })
local function draw(m, seed)
  local g = sc.Generator(seed)
  local x = sc.samplers.ddim(m, sc.samplers.prior(sched, { opts.n, 2 }, { generator = g }), sched,
    { steps = opts.sample_steps })
  return x
end

local function stats(x, k)
  local mu = x:mean(1, true)
  local d = x - mu
  local C = (sc.matmul(d:t(), d) / (x:size(1) - 1)):values()
  local m = mu:values()
  local probs = sc.softmax(bayes(x, 0.0), 2)
  local agree = sc.metrics.agreement(probs, k)
  local dist = math.sqrt((m[1] - means[k][1]) ^ 2 + (m[2] - means[k][2]) ^ 2)
  return { spread = C[1] + C[4], offset = dist, agreement = agree.agreement, confidence = agree.confidence }
end

util.mkdir(opts.out)
local exact = sc.param.wrap(sc.models.mixture_score(data), { kind = "score" })
local truth_spread = 2 * 0.75 ^ 2
print(("\nper class: learned network / exact scores (truth at w = 0: spread %.3f, offset 0)"):format(truth_spread))
print(("%-6s %-16s %6s %15s %15s %15s %10s"):format("class", "guidance", "weight", "spread", "|mean - mu|",
  "agreement", "confidence"))
local function row(k, name, s, e)
  local function pair(a, b) return ("%6.3f / %-6s"):format(a, b and ("%.3f"):format(b) or "-") end
  print(("%-6d %-16s %6.2f %15s %15s %15s %10.3f"):format(k, name, WEIGHTS[k], pair(s.spread, e and e.spread),
    pair(s.offset, e and e.offset), pair(s.agreement, e and e.agreement), s.confidence))
end
local ws = { 0, 1, 3 }
for k = 1, K do
  local panels = {}
  for j, w in ipairs(ws) do
    local x = draw(sc.param.guided(model, { cond = k, w = w }), opts.seed + 100 * k + j)
    local xe = draw(sc.param.guided(exact, { cond = k, w = w }), opts.seed + 100 * k + j)
    local s = stats(x, k)
    row(k, ("CFG w = %g"):format(w), s, stats(xe, k))
    panels[#panels + 1] = { title = ("class %d, w = %g: agree %.2f"):format(k, w, s.agreement),
      x = x:narrow(1, 1, math.min(1000, opts.n)) }
  end
  -- classifier guidance: the learned unconditional model (∅, i.e. w = −1) plus γ ∇ log p(k | x, σ)
  local xc = draw(sc.param.guided(model, { cond = k, w = -1, classifier = bayes }), opts.seed + 100 * k + 9)
  local s = stats(xc, k)
  row(k, "null + Bayes clf", s, nil)
  local xl = draw(sc.param.guided(model, { cond = k, w = -1, classifier = clf }), opts.seed + 100 * k + 9)
  local sl = stats(xl, k)
  row(k, "null + noisy clf", sl, nil)
  panels[#panels + 1] = { title = ("class %d, learned classifier: %.2f"):format(k, sl.agreement),
    x = xl:narrow(1, 1, math.min(1000, opts.n)) }
  sc.viz.sample_panels(("%s/class%d.png"):format(opts.out, k), panels, { density = data, size = 300, radius = 1 })
end

-- The null class alone is the unconditional model: its class mix should be the training mix.
local xu = draw(model:with_cond(0), opts.seed + 7)
local labels = sc.no_grad(function()
  local p = sc.softmax(bayes(xu, 0.0), 2)
  local _, idx = p:max(2, false)
  return idx:values()
end)
local mix = sc.metrics.class_mix(labels, K)
local fr = {}
for k = 1, K do fr[k] = ("%.3f"):format(mix.frac[k]) end
print(("\nunconditional (∅) samples, class mix by the Bayes classifier: %s (training mix %s)")
  :format(table.concat(fr, "/"), table.concat(WEIGHTS, "/")))
sc.viz.sample_panels(opts.out .. "/unconditional.png", {
  { title = "data", x = data:sample(math.min(1000, opts.n), { generator = gen }) },
  { title = "null class (unconditional)", x = xu:narrow(1, 1, math.min(1000, opts.n)) },
}, { density = data, size = 300, radius = 1 })
sc.viz.loss_curve(opts.out .. "/loss.png", losses, { title = "L_simple with label dropout" })
print(("\nwrote %s/class1..%d.png, unconditional.png, loss.png (%.0fs in all)"):format(opts.out, K, sc.time() - t0))
