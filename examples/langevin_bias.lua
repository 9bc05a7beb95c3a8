-- The step-size bias of Langevin samplers, measured against closed forms on
-- a Gaussian target p = N(0, s² I).
--
-- The unadjusted Langevin algorithm (ULA; sc.samplers.langevin with
-- step_size ε = 2η) is x' = x + η ∇log p(x) + √(2η) ξ.  With
-- ∇log p(x) = −x/s² every coordinate is the AR(1) chain
-- x' = a x + √(2η) ξ, a = 1 − η/s², stable for η < 2s², whose stationary
-- law π_η is N(0, v_η) with v_η = a² v_η + 2η, i.e.
--     v_η = 2η / (1 − a²) = 2η / (2η/s² − η²/s⁴) = s² / (1 − η/(2s²)).
-- Both laws are Gaussian, so W₂(π_η, p) = |√v_η − s| per dimension
-- (√d times that in d dimensions).  With u = η/(2s²),
--     W₂ = s (1/√(1−u) − 1) = s u / (√(1−u) (1 + √(1−u))),
-- and the denominator lies between 1.2 and 2 for u ≤ 1/2, so
--     η/(4s) ≤ W₂(π_η, p) ≤ η/(2s)   for 0 < η ≤ s²,
-- with W₂ = η/(4s) + O(η²): the bias is linear in the step, the rate of
-- the general result for smooth strongly log-concave targets with a
-- Lipschitz Hessian (Durmus & Moulines 2019, Bernoulli 25(4A)), here with
-- its exact constant.
--
-- Underdamped (kinetic) Langevin, sc.samplers.underdamped_langevin with
-- critical friction γ = 2/s, is run at the same step sizes h (one score
-- evaluation per step for every sampler): BAOAB's positions are exact for a
-- Gaussian at every stable h (W₂ = 0), OBABO's have variance
-- s²/(1 − h²/(4s²)), W₂ = h²/(8s) + O(h⁴) — second order.  (OBABO at step
-- h = √(2η) has exactly ULA's stationary variance at η.)
--
-- Each run starts from the target itself, p, so what is left after the
-- burn-in is the bias of the discretisation, not a lack of mixing; the
-- variance is the mean of x² over chains, dimensions and the measured steps
-- (the mean is 0 by symmetry), its standard error from the spread of the
-- per-chain averages (chains are independent).
--
-- Writes OUT/w2_vs_step.png and OUT/table.md and prints the table.
--   bin/scorch examples/langevin_bias.lua [--quick] [--threads 1] [--seed 0] [--out out/langevin_bias]
-- Measured at --threads 1: about 55 s of CPU (99 s wall on a shared 2-core
-- machine); --quick (8,000 chains, 4 steps) about 2 s.
--
-- Options: --s (target std, 1), --dim (2), --chains (50000), --etas (the
-- step sizes, comma-separated), --burn (burn-in time, in units of s² for
-- ULA and s for the kinetic samplers, 6), --measure (time averaged over,
-- same units, 40), --friction (γ; default 2/s).
local sc = require "scorch"
local plots = require "scorch.viz.plots"
local canvas = require "scorch.viz.canvas"
local util = sc.util

local defaults = {
  out = "out/langevin_bias", seed = 0, threads = 0, s = 1.0, dim = 2, chains = 50000,
  etas = "0.02,0.05,0.1,0.2,0.35,0.5,0.75,1,1.5", burn = 6, measure = 40, friction = 0,
}
local opts = util.example_args(arg, { defaults = defaults,
  presets = { quick = { chains = 8000, etas = "0.05,0.2,0.5,1", measure = 10 } },
  usage = "usage: scorch examples/langevin_bias.lua [options]\n"
    .. "ULA's and kinetic Langevin's stationary bias on N(0, s²I) against the closed forms.\n" })

local s, dim, chains = opts.s + 0.0, math.tointeger(opts.dim), math.tointeger(opts.chains)
local gamma = opts.friction > 0 and opts.friction or 2 / s
local function fail(msg) io.stderr:write("examples/langevin_bias.lua: " .. msg .. "\n"); os.exit(2) end
if not (s > 0) then fail("--s must be positive") end
if not dim or dim < 1 or not chains or chains < 2 then fail("--dim must be >= 1 and --chains >= 2 (integers)") end
local etas = {}
for e in opts.etas:gmatch("[^,]+") do
  local v = tonumber(e)
  -- ULA is stable for η < 2s², the kinetic splittings for h < 2s
  if not v or v <= 0 or v >= 2 * math.min(s * s, s) then
    fail(("--etas: %s is not a step in (0, %g), where every sampler here is stable"):format(e, 2 * math.min(s * s, s)))
  end
  etas[#etas + 1] = v
end
table.sort(etas)
if #etas == 0 then fail("--etas lists no step size") end
assert(util.mkdir(opts.out))

-- ---- closed forms --------------------------------------------------------------------------
local function w2_of(v) return math.abs(math.sqrt(v) - s) end
local closed = {
  ula = function(eta) return s * s / (1 - eta / (2 * s * s)) end,        -- v_η
  obabo = function(h) return s * s / (1 - h * h / (4 * s * s)) end,
  baoab = function() return s * s end,
}

-- ---- runs ----------------------------------------------------------------------------------
local target = sc.param.wrap(function(x) return x * (-1 / (s * s)) end, { kind = "score" })
-- kinetic Langevin by one splitting scheme, from the same starts as ULA
local function kinetic(scheme)
  return function(h, steps, gen, cb)
    local x0 = sc.randn({ chains, dim }, { generator = gen, dtype = "float64" }) * s
    return sc.samplers.underdamped_langevin(target, x0, nil, { step_size = h, steps = steps, friction = gamma,
      scheme = scheme, generator = gen, callback = cb, progress = false })
  end
end

local samplers = {
  { key = "ula", name = "ULA", scale = s * s,
    run = function(eta, steps, gen, cb)
      local x0 = sc.randn({ chains, dim }, { generator = gen, dtype = "float64" }) * s
      return sc.samplers.langevin(target, x0, nil, { step_size = 2 * eta, steps = steps, generator = gen,
        callback = cb, progress = false })
    end },
  { key = "obabo", name = "kinetic OBABO", scale = s, run = kinetic("obabo") },
  { key = "baoab", name = "kinetic BAOAB", scale = s, run = kinetic("baoab") },
}

local function plan(sm, eta)
  local burn = math.ceil(opts.burn * sm.scale / eta)
  local keep = math.ceil(opts.measure * sm.scale / eta)
  return burn, keep
end
local total = 0
for _, sm in ipairs(samplers) do
  for _, eta in ipairs(etas) do
    local b, k = plan(sm, eta)
    total = total + b + k
  end
end

local t0 = sc.time()
local bar = util.progress(total, { desc = "langevin bias" })
local results = {}   -- results[key][i] = {v =, se =, mean =, w2 =, w2_se =, steps =}
for si, sm in ipairs(samplers) do
  results[sm.key] = {}
  for i, eta in ipairs(etas) do
    local burn, keep = plan(sm, eta)
    local sum_x, sum_x2
    local function cb(t)
      if t.i > burn then
        sum_x = sum_x and sum_x + t.x or t.x
        sum_x2 = sum_x2 and sum_x2 + t.x * t.x or t.x * t.x
      end
      bar:update()
    end
    sm.run(eta, burn + keep, sc.Generator(opts.seed * 1000 + si * 100 + i), cb)
    -- per-chain, per-coordinate time averages of x²: independent across chains and coordinates
    local m2 = sum_x2 / keep
    local n = m2:numel()
    local v = m2:mean():item()
    local se = math.sqrt(m2:var():item() / n)
    local sq = math.sqrt(v)
    results[sm.key][i] = { v = v, se = se, mean = (sum_x / keep):mean():item(), w2 = sq - s,
      w2_se = se / (2 * sq), steps = burn + keep }
  end
end
bar:close()
local seconds = sc.time() - t0

-- ---- table ---------------------------------------------------------------------------------
local lines = {}
local function out(line) lines[#lines + 1] = line; print(line) end
out(("Target N(0, s²I), s = %g, %d dimensions, %d chains per run, friction γ = %g (kinetic); "
  .. "burn-in %g and averaging time %g (units s² for ULA, s for kinetic)."):format(s, dim, chains, gamma, opts.burn,
  opts.measure))
out("")
out("| step | ULA Var x (measured ± se) | ULA closed form | ULA √v̂ − s | ULA W₂ closed | η/(4s) "
  .. "| OBABO Var x | OBABO closed | OBABO √v̂ − s | OBABO W₂ closed | BAOAB Var x | BAOAB √v̂ − s (closed 0) |")
out("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for i, eta in ipairs(etas) do
  local u, o, b = results.ula[i], results.obabo[i], results.baoab[i]
  out(("| %g | %.5f ± %.5f | %.5f | %+.5f ± %.5f | %.5f | %.5f | %.5f ± %.5f | %.5f | %+.5f ± %.5f | %.5f "
    .. "| %.5f ± %.5f | %+.5f ± %.5f |"):format(eta,
    u.v, u.se, closed.ula(eta), u.w2, u.w2_se, w2_of(closed.ula(eta)), eta / (4 * s),
    o.v, o.se, closed.obabo(eta), o.w2, o.w2_se, w2_of(closed.obabo(eta)),
    b.v, b.se, b.w2, b.w2_se))
end

-- Least-squares slope of log W₂ on log step over the small steps resolved
-- (|√v̂ − s| > 3 se, step ≤ limit), beside the closed form's slope over the same steps.
local function fit(xs, ys)
  local mx, my = 0, 0
  for j = 1, #xs do mx, my = mx + xs[j] / #xs, my + ys[j] / #xs end
  local sxy, sxx = 0, 0
  for j = 1, #xs do sxy, sxx = sxy + (xs[j] - mx) * (ys[j] - my), sxx + (xs[j] - mx) ^ 2 end
  return sxy / sxx
end
local function slopes(key, limit)
  local xs, ys, zs = {}, {}, {}
  for i, eta in ipairs(etas) do
    local r = results[key][i]
    if eta <= limit and math.abs(r.w2) > 3 * r.w2_se then
      xs[#xs + 1], ys[#ys + 1] = math.log(eta), math.log(math.abs(r.w2))
      zs[#zs + 1] = math.log(w2_of(closed[key](eta)))
    end
  end
  if #xs < 2 then return nil, nil, #xs end
  return fit(xs, ys), fit(xs, zs), #xs
end
out("")
for _, c in ipairs { { "ula", 0.25 * s * s, "η ≤ s²/4" }, { "obabo", 0.5 * s, "h ≤ s/2" },
  { "baoab", 0.5 * s, "h ≤ s/2" } } do
  local measured, exact, n = slopes(c[1], c[2])
  out(("%s: slope of log W₂ on log step, %s, over the %d steps resolved above 3 se: %s (closed form over the same"
    .. " steps: %s)"):format(c[1], c[3], n, measured and ("%.3f"):format(measured) or "-",
    exact and ("%.3f"):format(exact) or "-"))
end
out("(ULA: slope 1, the linear bias; OBABO: 2; BAOAB: nothing to resolve, its positions are exact for a Gaussian.)")
out(("%.1f s for %d sampler steps of %d×%d points (the machine may have been shared)."):format(seconds, total,
  chains, dim))
assert(util.write_atomic(opts.out .. "/table.md", table.concat(lines, "\n") .. "\n"))

-- ---- figure: W₂ against the step, log-log ------------------------------------------------------
local log10 = function(v) return math.log(v, 10) end
local lo_x, hi_x = log10(etas[1]) - 0.15, log10(etas[#etas]) + 0.15
local lo_y, hi_y = -5, 0.5
local cv, axs = sc.viz.panels(1, 480, { lo_x, hi_x, lo_y, hi_y })
local ax = axs[1]
local colors = { ula = "blue", obabo = "orange", baoab = "green" }

-- a curve f(step) over the x range, dashed when asked
local function curve(f, color, upto, dashed)
  local rows, n = {}, 200
  local top = math.min(hi_x, log10(upto))
  for j = 0, n do
    local lx = lo_x + (top - lo_x) * j / n
    local y = f(10 ^ lx)
    if y and y > 0 then rows[#rows + 1] = { lx, math.max(lo_y, math.min(hi_y, log10(y))) } end
  end
  if not dashed then return ax:polyline(rows, color, 1) end
  for j = 2, #rows do
    if (j // 4) % 2 == 0 then ax:polyline({ rows[j - 1], rows[j] }, color, 1) end
  end
end
curve(function(e) return e / (2 * s) end, "gray", s * s, true)                 -- upper bound, η ≤ s²
curve(function(e) return e / (4 * s) end, "black", math.huge, true)            -- lower bound and small-η limit
curve(function(e) return w2_of(closed.ula(e)) end, colors.ula, 2 * s * s * 0.999)
curve(function(h) return w2_of(closed.obabo(h)) end, colors.obabo, 2 * s * 0.999)

-- measured points with ±2 se bars (|√v̂ − s| on the log axis; a bar reaching 0 runs to the bottom)
for _, key in ipairs { "ula", "obabo", "baoab" } do
  for i, eta in ipairs(etas) do
    local r = results[key][i]
    local lx = log10(eta) + (key == "obabo" and 0.012 or key == "baoab" and -0.012 or 0)
    local y, lo, hi = math.abs(r.w2), math.abs(r.w2) - 2 * r.w2_se, math.abs(r.w2) + 2 * r.w2_se
    local ly = math.max(lo_y, log10(math.max(y, 1e-300)))
    local px, py = ax:to_px(lx, ly)
    local _, pl = ax:to_px(lx, lo > 0 and math.max(lo_y, log10(lo)) or lo_y)
    local _, ph = ax:to_px(lx, math.min(hi_y, log10(hi)))
    cv:line(px, pl, px, ph, colors[key], 0.8)
    cv:point(px, py, colors[key], 2.6, 1)
  end
end
ax:frame { title = ("W₂(π_η, p) per dimension, p = N(0, %g²)"):format(s),
  xlabel = "step size (η for ULA, h for kinetic; one score per step)", ylabel = "W₂",
  xformat = plots.log_tick_label, yformat = plots.log_tick_label, yticks = { -5, -4, -3, -2, -1, 0 } }

-- legend, top left
local legend = {
  { colors.ula, "ULA: measured, closed form", false },
  { colors.obabo, "kinetic OBABO: measured, closed form", false },
  { colors.baoab, "kinetic BAOAB: measured (closed form 0)", false },
  { "black", "η/(4s): small-η limit and lower bound", true },
  { "gray", "η/(2s): upper bound for η ≤ s²", true },
}
local lh = canvas.text_height(canvas.sizes.tick) + 3
for j, e in ipairs(legend) do
  local y = ax.y0 + 6 + (j - 1) * lh
  local x = ax.x0 + 8
  if e[3] then
    cv:line(x, y + lh / 2, x + 5, y + lh / 2, e[1], 1)
    cv:line(x + 9, y + lh / 2, x + 14, y + lh / 2, e[1], 1)
  else
    cv:line(x, y + lh / 2, x + 14, y + lh / 2, e[1], 1)
    cv:point(x + 7, y + lh / 2, e[1], 2.4, 1)
  end
  cv:text(x + 20, y, e[2], "black", { size = canvas.sizes.tick })
end
local png = opts.out .. "/w2_vs_step.png"
assert(cv:save(png))
print(("\nwrote %s and %s/table.md"):format(png, opts.out))
