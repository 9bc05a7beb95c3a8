-- The sampler contract of API.md against closed forms: one signature
-- sampler(model, x_init, levels, opts) -> x, info; one callback table; one
-- level type for networks (sc.param.level); options that reject unknown
-- keys; descending levels enforced; and the naive backward samplers'
-- variance recursions for Gaussian data, where D(x, σ) = x v/(v + σ²) exactly.
local sc = require "scorch"
local param = require "scorch.param"
local schedules = require "scorch.schedules"
local S = require "scorch.samplers"

local F64 = { dtype = "float64" }

describe("sc.param.level", function()
  it("makes an [N, 1] column of x's dtype from a number, one value or N values", function()
    local x = sc.zeros(4, 3, F64)
    local a = param.level(0.25, x)
    assert.are.same({ 4, 1 }, a:shape())
    assert.are.equal("float64", a:dtype())
    assert.are.same({ 0.25, 0.25, 0.25, 0.25 }, a:values())
    assert.is_true(param.is_shared_level(a))
    local b = param.level(sc.tensor { 1, 2, 3, 4 }, x)
    assert.are.same({ 4, 1 }, b:shape())
    assert.are.equal("float64", b:dtype())
    assert.are.same({ 1, 2, 3, 4 }, b:values())
    assert.is_false(param.is_shared_level(b))
    assert.are.same({ 7, 7, 7, 7 }, param.level(sc.tensor { 7 }, x):values())
    assert.has_error(function() param.level(sc.tensor { 1, 2 }, x) end, "scorch.param.level: 2 levels for a batch of 4")
    assert.has_error(function() param.level("x", x) end)
  end)
  it("is what a wrapped network receives, from samplers and by hand", function()
    local seen = {}
    local m = param.wrap(function(x, c) seen[#seen + 1] = c; return x * 0 end, { kind = "eps",
      process = schedules.ddpm { T = 10 } })
    S.ddim(m, sc.randn(3, 2), schedules.ddpm { T = 10 }, { steps = 2 })  -- another schedule: through D
    S.ddim(m, sc.randn(3, 2), m.process, { steps = 2 })
    for _, c in ipairs(seen) do
      assert(sc.is_tensor(c))
      assert.are.same({ 3, 1 }, c:shape())
    end
    assert.are.equal(4, #seen)
    assert.are.same({ 10, 10, 10 }, seen[3]:values())   -- native: the timestep itself
  end)
  it("a shared level embeds like one value: DiffusionMLP gives the same bits", function()
    local net = sc.models.DiffusionMLP { width = 8, blocks = 1, embed = 4, generator = sc.Generator(1) }
    local x = sc.randn(6, 2, { generator = sc.Generator(2) })
    local a = net(x, param.level(37, x))
    local b = net(x, sc.full({ 6, 1 }, 37))
    assert.are.equal(0, (a - b):abs():max():item())
  end)
  it("to_d is (x − D)/σ", function()
    local x, d = sc.tensor { 3, 5 }, sc.tensor { 1, 1 }
    assert.are.same({ 1, 2 }, param.to_d(x, 2, d):values())
  end)
end)

describe("sc.param.wrap", function()
  local sched = schedules.ddpm { T = 50 }
  it("converts between views: ε, score and D of an x₀-predicting network", function()
    -- a network that predicts x₀ = 0.5 x for x = α x₀ + s ε
    local m = param.wrap(function(x) return x * 0.5 end, { kind = "x0", process = sched })
    local x = sc.tensor({ { 1, -2 } }, F64)
    local a, s = sched:marginal(20)
    local e, sco = m:eps(x, 20):values(), m:score(x, 20):values()
    for j, xv in ipairs { 1, -2 } do
      local x0 = 0.5 * xv
      local want_eps = (xv - a * x0) / s
      assert.is_true(math.abs(e[j] - want_eps) < 1e-12)
      assert.is_true(math.abs(sco[j] + want_eps / s) < 1e-12)
    end
    -- D(x̂, σ̂) at σ̂ = s/α: the network sees α x̂ = x and returns 0.5 x
    local d = m:denoise(x / a, s / a):values()
    assert.is_true(math.abs(d[1] - 0.5) < 1e-12 and math.abs(d[2] + 1) < 1e-12)
    -- the same model in another process goes through D
    local vp = schedules.vp_sde()
    local a2, s2 = vp:marginal(0.3)
    local sv = m:score(x, 0.3, vp):values()
    local dv = m:denoise(x / a2, s2 / a2):values()
    assert.is_true(math.abs(sv[1] - (dv[1] * a2 - 1) / (s2 * s2)) < 1e-12)
  end)
  it("rejects unknown options and kinds", function()
    assert.has_error(function() param.wrap(function() end, { kind = "eps", procss = sched }) end,
      "scorch.param.wrap: unknown option 'procss' (valid: cond, kind, process, sigma_data)")
    assert.has_error(function() param.wrap(function() end, { kind = "noise" }) end)
    assert.has_error(function() param.wrap(function() end) end)
  end)
  it("takes the kind from net.prediction and distributions as exact models", function()
    local u = sc.models.UNet { channels = 8, out = "v" }
    assert.are.equal("v", param.wrap(u).kind)
    local m = param.wrap(sc.data.two_gaussians())
    assert.is_true(m.exact)
  end)
end)

describe("the sampler contract", function()
  local g = function() return sc.Generator(3) end
  local mix = param.wrap(sc.data.two_gaussians())
  local sched, vp = schedules.ddpm { T = 20 }, schedules.vp_sde()
  local lv = schedules.karras_sigmas(5, { sigma_max = 20 })
  local eps = param.wrap(function(x) return x * 0.1 end, { kind = "eps", process = sched })
  local cases = {
    { "langevin", mix, 0.5, { step_size = 0.01, steps = 3, progress = false } },
    { "annealed_langevin", mix, { 2, 1 }, { step_size = 0.01, steps_per_level = 2, progress = false } },
    { "ddpm", eps, sched, { steps = 4 } },
    { "ddim", eps, sched, { steps = 4 } },
    { "euler_maruyama", mix, vp, { steps = 4 } },
    { "predictor_corrector", mix, vp, { steps = 30 } },   -- VP steps need β(t) Δt < 1
    { "probability_flow", mix, vp, { method = "euler", steps = 4 } },
    { "naive_backward", mix, lv, {} },
    { "heun", mix, lv, {} },
    { "dpmpp_2m", mix, lv, {} },
  }
  for _, c in ipairs(cases) do
    local name, model, levels, opts = c[1], c[2], c[3], c[4]
    it(name .. ": x, info; one callback table; unknown keys rejected", function()
      local calls = {}
      local o = { generator = g(), callback = function(t) calls[#calls + 1] = t end }
      for k, v in pairs(opts) do o[k] = v end
      local x0 = sc.randn({ 6, 2 }, { generator = g() })
      local x, info = S[name](model, x0, levels, o)
      assert.are.same({ 6, 2 }, x:shape())
      assert.are.equal("table", type(info))
      assert(info.nfe >= 1, name)
      assert.are.equal("table", type(info.levels))
      assert(#calls >= 1)
      for i, t in ipairs(calls) do
        assert.are.equal(i, t.i)
        assert(sc.is_tensor(t.x))
        assert.are.equal("number", type(t.level))
      end
      -- the last callback saw the returned state
      assert.are.equal(0, (calls[#calls].x - x):abs():max():item())
      -- the start is never modified and the same seed gives the same numbers
      local y = S[name](model, x0, levels, (function()
        local p = { generator = g() }
        for k, v in pairs(opts) do p[k] = v end
        return p
      end)())
      assert.are.equal(0, (x - y):abs():max():item())
      local bad = { generator = g(), bogus = 1 }
      local ok, err = pcall(S[name], model, x0, levels, bad)
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find("scorch.samplers." .. name .. ": unknown option 'bogus' (valid: ", 1, true),
        tostring(err))
    end)
  end

  it("the denoiser samplers report D as denoised", function()
    local seen
    S.heun(mix, sc.randn(4, 2), lv, { callback = function(t) seen = seen or t.denoised end })
    assert(sc.is_tensor(seen))
  end)

  it("prior draws σ_1 · N(0, I), N(0, I) for a DDPM schedule and prior_std for an SDE", function()
    local a = S.prior({ 3, 1 }, { 20000, 1 }, { generator = g(), dtype = "float64" })
    assert.is_true(math.abs(a:var():sqrt():item() - 3) < 0.06)
    local b = S.prior(sched, { 5, 2 }, { generator = g() })
    local c = sc.randn({ 5, 2 }, { generator = g() })
    assert.are.equal(0, (b - c):abs():max():item())
    local ve = schedules.ve_sde { sigma_max = 7 }
    assert.are.equal(0, (S.prior(ve, { 5, 2 }, { generator = g() }) - c * 7):abs():max():item())
    assert.has_error(function() S.prior("x", { 2, 2 }) end)
    assert.has_error(function() S.prior(sched, { 2, 2 }, { seed = 1 }) end)
  end)
end)

describe("descending levels", function()
  it("geometric_sigmas rejects ascending levels, naming the function and the argument", function()
    local ok, err = pcall(schedules.geometric_sigmas, 1, 10, 5)
    assert.is_false(ok)
    assert.is_truthy(err:find("scorch.schedules.geometric_sigmas", 1, true))
    assert.is_truthy(err:find("sigma_max (argument #1, 1) must be above sigma_min (argument #2, 10)", 1, true))
    local s = schedules.geometric_sigmas(10, 1, 5)
    for i = 2, 5 do assert(s[i] < s[i - 1]) end
    assert.are.same({ 3 }, (schedules.geometric_sigmas(3, 3, 1)))
  end)
  it("annealed_langevin rejects ascending or repeated levels", function()
    local m = param.wrap(sc.data.two_gaussians())
    local x = sc.randn(4, 2)
    for _, bad in ipairs { { 1, 2, 4 }, { 2, 2, 1 }, { 1, 0 }, sc.tensor { 0.1, 1 } } do
      local ok, err = pcall(S.annealed_langevin, m, x, bad, { steps_per_level = 1 })
      assert.is_false(ok)
      local want = "scorch.samplers.annealed_langevin: levels must be positive and strictly decreasing"
      assert.is_truthy(tostring(err):find(want, 1, true), tostring(err))
    end
    assert.has_error(function() S.heun(m, x, { 1, 2, 0 }) end)
  end)
end)

describe("old forms", function()
  it("still work, warn once per name on stderr, and match the new form", function()
    local d = sc.data.two_gaussians()
    local lv = schedules.karras_sigmas(6, { sigma_max = 20 })
    local warn = S.legacy.warn
    S.legacy.warn = true
    local old_stderr = io.stderr
    local lines = {}
    io.stderr = { write = function(_, s) lines[#lines + 1] = s end }   -- luacheck: ignore
    local ok, a, b = pcall(function()   -- io.stderr swapped for the duration
      local a = S.heun(param.from_distribution(d), lv, 5, { generator = sc.Generator(1) })
      S.heun(param.from_distribution(d), lv, 5, { generator = sc.Generator(1) })
      local g = sc.Generator(1)
      local b = S.heun(param.wrap(d), S.prior(lv, { 5, 2 }, { generator = g }), lv, { generator = g })
      return a, b
    end)
    io.stderr = old_stderr   -- luacheck: ignore 122
    S.legacy.warn = warn
    assert(ok, a)
    assert.are.equal(0, (a - b):abs():max():item())
    local n = 0
    for _, l in ipairs(lines) do
      if l:find("scorch.samplers.heun(denoiser, sigmas, n, opts) is deprecated", 1, true) then n = n + 1 end
    end
    assert.are.equal(1, n)
  end)
end)

-- The naive backward samplers on N(0, v) data: D(x, σ) = x v/(v + σ²), so each
-- step is linear in x and the variance follows a recursion in closed form.
describe("naive_backward against the exact denoiser of a Gaussian", function()
  local v, n = 0.7, 40000
  local D = param.wrap(function(x, s) return x * ((s * s + v) ^ -1 * v) end, { kind = "denoiser" })
  local function variance(x) return x:var():item() end
  local levels = { 4, 2, 1, 0.5, 0 }
  local function start(g) return sc.randn({ n, 1 }, { generator = g, dtype = "float64" }) * math.sqrt(v + 16) end

  -- Var_{i+1} for each method, from Var_i, σ and σ'
  local next_var = {
    denoise_renoise = function(w, s, s2) return (v / (v + s * s)) ^ 2 * w + s2 * s2 end,
    score_step = function(w, s, s2)
      local k = 1 - (s * s - s2 * s2) / (v + s * s)
      return k * k * w + (s2 > 0 and s * s - s2 * s2 or 0)
    end,
    ancestral = function(w, s, s2)   -- η = 1
      local up = s2 > 0 and s2 * math.sqrt(1 - s2 * s2 / (s * s)) or 0
      local down = math.sqrt(s2 * s2 - up * up)
      local k = 1 + (down - s) * s / (v + s * s)
      return k * k * w + up * up
    end,
    euler = function(w, s, s2)
      local k = 1 + (s2 - s) * (1 - v / (v + s * s)) / s
      return k * k * w
    end,
  }
  for method, rec in pairs(next_var) do
    it(method .. " follows its variance recursion", function()
      local g = sc.Generator(17)
      local x = start(g)
      local w = variance(x)
      local got = {}
      local y, info = S.naive_backward(D, x, levels, { method = method, generator = g,
        callback = function(t) got[t.i] = variance(t.x) end })
      assert.are.equal(4, info.nfe)
      for i = 1, 4 do
        w = rec(w, levels[i], levels[i + 1])
        -- sampling error of a variance: about w √(2/n) (4 standard errors)
        assert(math.abs(got[i] - w) < 4 * w * math.sqrt(2 / n),
          ("%s step %d: variance %.5f, recursion %.5f"):format(method, i, got[i], w))
      end
      assert(sc.is_tensor(y))
    end)
  end
  it("denoise_renoise ends at D exactly and score_step adds no noise on the last step", function()
    local x = sc.tensor({ { 1.5 } }, F64)
    local a = S.naive_backward(D, x, { 1, 0 }, { method = "denoise_renoise", generator = sc.Generator(1) })
    assert.is_true(math.abs(a:item() - 1.5 * v / (v + 1)) < 1e-15)
    local b = S.naive_backward(D, x, { 1, 0 }, { method = "score_step", generator = sc.Generator(1) })
    -- x + σ² s = x + (D − x) = D (Tweedie)
    assert.is_true(math.abs(b:item() - 1.5 * v / (v + 1)) < 1e-15)
  end)
  it("over 200 levels: score_step and ancestral sample N(0, v);"
    .. " denoise_renoise is biased as its recursion says", function()
    local many = schedules.karras_sigmas(200, { sigma_max = 20, sigma_min = 0.005 })
    for _, method in ipairs { "score_step", "ancestral", "denoise_renoise" } do
      local g = sc.Generator(5)
      local x = S.naive_backward(D, sc.randn({ n, 1 }, { generator = g, dtype = "float64" }) * 20, many,
        { method = method, generator = g })
      local w, want = variance(x), 400
      for i = 1, #many - 1 do want = next_var[method](want, many[i], many[i + 1]) end
      assert(math.abs(w - want) < 4 * want * math.sqrt(2 / n),
        ("%s: variance %.4f, recursion %.4f"):format(method, w, want))
      if method ~= "denoise_renoise" then
        -- first order in the step: 200 levels leave a few per cent
        assert(math.abs(want - v) < 0.04, ("%s: recursion ends at %.4f"):format(method, want))
      else
        assert(want < 0.8 * v, ("denoise_renoise: recursion ends at %.4f"):format(want))
      end
    end
  end)
  it("rejects an unknown method", function()
    assert.has_error(function() S.naive_backward(D, sc.zeros(2, 1), levels, { method = "alg3" }) end)
  end)
end)
