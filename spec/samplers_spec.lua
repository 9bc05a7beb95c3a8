-- sc.samplers and sc.schedules: Langevin dynamics against known stationary
-- laws, and the Song & Ermon 2019 two-mode experiment with the exact score.
local sc = require "scorch"

local function close(a, b, tol) return math.abs(a - b) <= tol end

-- fraction of points nearer (5, 5) than (−5, −5): the side x + y > 0
local function heavy_fraction(x)
  return x:sum(2, false):gt(0):mean():item()
end

describe("sc.schedules.geometric_sigmas", function()
  it("is a descending geometric sequence from σ_1 to σ_L", function()
    local s, t = sc.schedules.geometric_sigmas(20, 1, 10)
    assert.are.equal(10, #s)
    assert.are.equal(20, s[1])
    assert.are.equal(1, s[10])
    for i = 2, 10 do assert.is_true(close(s[i] / s[i - 1], (1 / 20) ^ (1 / 9), 1e-12)) end
    assert.are.same({ 10 }, t:shape())
    assert.is_true(close(t:values()[5], s[5], 1e-5))
    local one, t64 = sc.schedules.geometric_sigmas(3, 3, 1, { dtype = "float64" })
    assert.are.same({ 3 }, one)
    assert.are.equal("float64", t64:dtype())
    assert.has_error(function() sc.schedules.geometric_sigmas(1, -1, 3) end)
    assert.has_error(function() sc.schedules.geometric_sigmas(1, 0.1, 0) end)
  end)
end)

describe("sc.samplers.langevin", function()
  it("reaches the stationary law of the discretised chain for a Gaussian", function()
    -- target N(m, s²I): x' = x + (ε/2)(m − x)/s² + √ε z has stationary
    -- variance ε / (1 − (1 − ε/(2s²))²) (slightly above s²) and mean m
    local m, s2, eps = { 1.5, -2 }, 0.25, 0.05
    local score = function(x) return (sc.tensor(m):view(1, 2) - x) / s2 end
    local g = sc.Generator(3)
    local x = sc.samplers.langevin(sc.param.wrap(score, { kind = "score" }), sc.zeros(20000, 2), nil,
      { step_size = eps, steps = 200, generator = g })
    local a = 1 - eps / (2 * s2)
    local v = eps / (1 - a * a)
    local mean, var = x:mean(1, false):values(), x:var(1, false):values()
    for d = 1, 2 do
      assert.is_true(close(mean[d], m[d], 0.015), ("mean %g vs %g"):format(mean[d], m[d]))
      assert.is_true(close(var[d], v, 0.01), ("var %g vs %g (target s² = %g)"):format(var[d], v, s2))
    end
  end)

  it("calls back after every step and is reproducible with a generator", function()
    local d = sc.data.two_gaussians()
    local n = 0
    local x0 = sc.zeros(5, 2)
    local m = sc.param.wrap(d)
    local a, info = sc.samplers.langevin(m, x0, nil, { step_size = 0.1, steps = 7, generator = sc.Generator(1),
      callback = function(s)
        n = n + 1
        assert.are.equal(n, s.i)
        assert.are.same({ 5, 2 }, s.x:shape())
      end })
    assert.are.equal(7, n)
    assert.are.equal(7, info.nfe)
    local b = sc.samplers.langevin(m, x0, nil, { step_size = 0.1, steps = 7, generator = sc.Generator(1) })
    assert.are.equal(0, (a - b):abs():max():item())
    assert.has_error(function() sc.samplers.langevin(m, x0, nil, { step_size = -1 }) end)
    assert.has_error(function() sc.samplers.langevin(m, "x", nil, { step_size = 1 }) end)
  end)
end)

describe("annealed Langevin on 0.8 N((5,5), I) + 0.2 N((−5,−5), I) with the exact score", function()
  -- Song & Ermon 2019, §3.2 and Fig. 3: σ geometric 20 → 1, L = 10, T = 100,
  -- ε = 0.1, 1280 points from U[−8, 8]²
  local d = sc.data.two_gaussians()
  local sigmas = sc.schedules.geometric_sigmas(20, 1, 10)
  local g = sc.Generator(2019)
  local x0 = sc.rand(1280, 2, { generator = g }) * 16 - 8
  local start = heavy_fraction(x0)

  it("recovers the 0.8 / 0.2 weights (paper convention)", function()
    local x = sc.samplers.annealed_langevin(sc.param.wrap(d), x0, sigmas, { step_size = 0.1, steps_per_level = 100,
      generator = sc.Generator(1) })
    local f = heavy_fraction(x)
    assert.is_true(close(f, 0.8, 0.035), "heavy-mode mass " .. f)
    -- the points sit in the modes: mean distance² to the nearer mean ≈ 2 (= D)
    local post = d:posterior(x)
    assert.is_true(post:max(2, false):min():item() > 0.99)
  end)

  it("recovers the weights in the reference-code convention too", function()
    local m = sc.param.wrap(function(z, s) return d:score_at(z, s) end, { kind = "score" })
    local x = sc.samplers.annealed_langevin(m, x0, sigmas,
      { step_size = 0.1 / 2, steps_per_level = 100, convention = "reference", generator = sc.Generator(1) })
    local f = heavy_fraction(x)
    assert.is_true(close(f, 0.8, 0.035), "heavy-mode mass " .. f)
  end)

  it("plain Langevin with the unsmoothed score keeps the starting split", function()
    local x = sc.samplers.langevin(sc.param.wrap(d), x0, nil, { step_size = 0.1, steps = 1000,
      generator = sc.Generator(1) })
    local f = heavy_fraction(x)
    assert.is_true(close(start, 0.5, 0.05), "start " .. start)
    assert.is_true(close(f, start, 0.01), ("plain Langevin %g from %g"):format(f, start))
  end)
end)

describe("sc.samplers.annealed_langevin mechanics", function()
  local d = sc.param.wrap(sc.data.two_gaussians())
  local sigmas = { 4, 2, 1 }
  local x0 = sc.randn(16, 2, { generator = sc.Generator(5) })

  it("reference convention with ε equals the paper convention with 2ε", function()
    local a = sc.samplers.annealed_langevin(d, x0, sigmas, { step_size = 0.02, steps_per_level = 5,
      generator = sc.Generator(1),
      convention = "reference" })
    local b = sc.samplers.annealed_langevin(d, x0, sigmas, { step_size = 0.04, steps_per_level = 5,
      generator = sc.Generator(1) })
    assert.is_true((a - b):abs():max():item() < 1e-5)
  end)

  it("step sizes are α_i = ε σ_i² / σ_L²", function()
    local a = sc.samplers.annealed_step_sizes({ 4, 2, 1 }, 0.1)
    assert.is_true(close(a[1], 1.6, 1e-12) and close(a[2], 0.4, 1e-12) and close(a[3], 0.1, 1e-12))
  end)

  it("passes σ_i to the score as an [N, 1] tensor and calls back with one table", function()
    local calls, seen = {}, {}
    sc.samplers.annealed_langevin(sc.param.wrap(function(x, s)
      seen[#seen + 1] = s
      return x * 0
    end, { kind = "score" }), x0, sigmas, { step_size = 0.1, steps_per_level = 3, denoise = true,
      callback = function(c)
        calls[#calls + 1] = { c.level_index, c.step }
        assert.are.equal(#calls, c.i)
        assert.are.equal(sigmas[math.min(c.level_index, 3)], c.level)
        assert(sc.is_tensor(c.denoised))
      end })
    assert.are.equal(3 * 3 + 1, #calls)
    assert.are.same({ 1, 1 }, calls[1])
    assert.are.same({ 3, 3 }, calls[9])
    assert.are.same({ 4, 1 }, calls[10])
    assert.are.same({ 16, 1 }, seen[1]:shape())
    assert.is_true(close(seen[1]:max():item(), 4, 0) and close(seen[4]:min():item(), 2, 0))
    assert.is_true(close(seen[10]:max():item(), 1, 0))
  end)

  it("the denoising step is Tweedie's x + σ_L² s(x, σ_L)", function()
    -- with T = 0 only the denoising step moves x; for one Gaussian N(m, I)
    -- Tweedie gives E[x0 | x] = m + (x − m)/(1 + σ²)
    local one = sc.param.wrap(sc.data.gaussian_mixture { means = { { 1, 2 } }, stds = 1 })
    local x = sc.samplers.annealed_langevin(one, x0, { 0.5 }, { step_size = 0.1, steps_per_level = 0, denoise = true })
    local expect = (x0 - sc.tensor { 1, 2 }) / 1.25 + sc.tensor { 1, 2 }
    assert.is_true((x - expect):abs():max():item() < 1e-5)
  end)

  it("records trajectories", function()
    local cb, paths = sc.samplers.trajectory_recorder(3, 2, x0)
    sc.samplers.annealed_langevin(d, x0, sigmas, { step_size = 0.1, steps_per_level = 4, callback = cb })
    assert.are.equal(3, #paths)
    assert.are.equal(1 + 3 * 4 / 2, #paths[1])
    assert.are.same(sc.util.rows(x0:narrow(1, 1, 1))[1], paths[1][1])
  end)

  it("samples with an energy model, which needs autograd inside no_grad", function()
    local m = sc.models.EnergyMLP { dim = 2, hidden = { 8 }, generator = sc.Generator(1) }
    local x = sc.samplers.annealed_langevin(sc.param.wrap(m), x0, sigmas, { step_size = 0.01, steps_per_level = 2,
      generator = sc.Generator(2) })
    assert.are.same({ 16, 2 }, x:shape())
    assert.is_false(x:requires_grad())
    -- the same steps by hand
    local y = x0
    local gen = sc.Generator(2)
    for _, s in ipairs(sigmas) do
      local a = 0.01 * (s / 1) ^ 2
      for _ = 1, 2 do
        local leaf = y:detach():requires_grad(true)
        local score = -sc.grad(m(leaf):sum(), { leaf })[1]
        y = (y + score * (a / 2) + sc.randn(16, 2, { generator = gen }) * math.sqrt(a)):detach()
      end
    end
    assert.is_true((x - y):abs():max():item() < 1e-5)
  end)

  it("rejects bad arguments", function()
    assert.has_error(function() sc.samplers.annealed_langevin(d, x0, {}, {}) end)
    assert.has_error(function() sc.samplers.annealed_langevin(d, x0, sigmas, { convention = "mine" }) end)
    assert.has_error(function() sc.samplers.annealed_langevin(d, x0, sigmas, { step_size = 0 }) end)
    assert.has_error(function() sc.samplers.annealed_langevin(42, x0, sigmas, {}) end)
    assert.has_error(function() sc.samplers.annealed_langevin(d, x0, sigmas, { steps = 3 }) end,
      "scorch.samplers.annealed_langevin: unknown option 'steps'"
        .. " (valid: callback, convention, denoise, generator, progress, step_size, steps_per_level)")
  end)
end)

describe("sc.util", function()
  it("parse_args reads --key value, --key=value, flags and numbers", function()
    local o = sc.util.parse_args({ "--steps", "30", "--out=dir", "--quick", "--no-plot" },
      { steps = 10, out = "x", quick = false, plot = true, lr = 0.1 })
    assert.are.same({ steps = 30, out = "dir", quick = true, plot = false, lr = 0.1 }, o)
    assert.has_error(function() sc.util.parse_args({ "--nope", "1" }, { steps = 1 }) end)
    assert.has_error(function() sc.util.parse_args({ "--steps", "many" }, { steps = 1 }) end)
    assert.has_error(function() sc.util.parse_args({ "--steps" }, { steps = 1 }) end)
  end)

  it("progress draws rate, ETA and running values when forced, with a final newline", function()
    local chunks = {}
    local stream = { write = function(_, ...) for _, s in ipairs { ... } do chunks[#chunks + 1] = s end end,
      flush = function() end }
    local p = sc.util.progress(4, { force = true, stream = stream, interval = 0, desc = "train" })
    for _ = 1, 4 do p:update { loss = 0.5 } end
    p:close()
    local out = table.concat(chunks)
    assert.is_truthy(out:find("\r", 1, true))
    assert.is_truthy(out:find("train 100%", 1, true))
    assert.is_truthy(out:find("4/4", 1, true))
    assert.is_truthy(out:find("loss=0.5000", 1, true))
    assert.is_truthy(out:find("it/s", 1, true))
    assert.are.equal("\n", out:sub(-1))
    -- not forced and not a terminal: silent
    local quiet = {}
    local q = sc.util.progress(4, { enabled = false, stream = { write = function(_, s) quiet[#quiet + 1] = s end,
      flush = function() end } })
    q:update()
    q:close()
    assert.are.equal(0, #quiet)
  end)

  it("progress writes a plain line every log_interval seconds when stderr is not a terminal", function()
    local P = sc.util.progress
    local saved = P.stderr_is_terminal
    P.stderr_is_terminal = function() return false end
    local t, lines = 0, {}
    local stream = { write = function(_, ...) lines[#lines + 1] = table.concat { ... } end, flush = function() end }
    local p = P(100, { stream = stream, clock = function() return t end, log_interval = 30, desc = "train" })
    local short = P(5, { stream = stream, clock = function() return t end })
    P.stderr_is_terminal = saved
    for i = 1, 100 do
      t = i -- one second per step
      p:update { loss = 1 }
      if i <= 5 then short:update() end
    end
    short:close() -- 5 s: never logged, so nothing at the end either
    p:close()
    -- lines at 30, 60 and 90 s, then the final one; no carriage returns
    assert.are.equal(4, #lines)
    assert.is_truthy(lines[1]:find("train  30% [", 1, true))
    assert.is_truthy(lines[1]:find("30/100 0:30<1:10 1.0 it/s loss=1.0000\n", 1, true))
    assert.is_truthy(lines[4]:find("100/100", 1, true))
    for _, l in ipairs(lines) do assert.is_falsy(l:find("\r", 1, true)) end
  end)
end)

describe("util.in_chunks", function()
  it("calls fn on consecutive chunks, joins the tensors along dim 1 and passes on the last extra", function()
    local calls = {}
    local x = sc.arange(10):float():view(10, 1)
    local y, extra = sc.util.in_chunks(10, 4, function(first, m)
      calls[#calls + 1] = { first, m }
      return x:narrow(1, first, m) * 2, first
    end)
    assert.are.same({ { 1, 4 }, { 5, 4 }, { 9, 2 } }, calls)
    assert.are.same({ 10, 1 }, y:shape())
    assert.are.equal(0, (y - x * 2):abs():max():item())
    assert.are.equal(9, extra)
    local one = sc.util.in_chunks(3, 8, function(first, m) return x:narrow(1, first, m) end)
    assert.are.same({ 3, 1 }, one:shape())
    assert.has_error(function() sc.util.in_chunks(3, 0, function() end) end,
      "util.in_chunks: size must be at least 1, got 0")
  end)
end)

describe("the Langevin samplers' option names", function()
  local d = sc.param.wrap(sc.data.two_gaussians())
  local x0 = sc.randn(8, 2, { generator = sc.Generator(4) })

  -- stderr captured while fn runs
  local function stderr_of(fn)
    local real, text = io.stderr, {}
    local function write(_, ...) for _, v in ipairs { ... } do text[#text + 1] = v end end
    io.stderr = { write = write } -- luacheck: ignore 122
    local ok, err = pcall(fn)
    io.stderr = real -- luacheck: ignore 122
    assert(ok, err)
    return table.concat(text)
  end

  it("are step_size and steps / steps_per_level; the old ones give the same bits and warn once", function()
    for k in pairs(require("scorch.samplers.langevin")._old_option_warned) do
      require("scorch.samplers.langevin")._old_option_warned[k] = nil
    end
    local new = sc.samplers.langevin(d, x0, nil, { step_size = 0.05, steps = 4, generator = sc.Generator(1) })
    local old
    local warn = stderr_of(function()
      old = sc.samplers.langevin(d, x0, nil, { step = 0.05, n_steps = 4, generator = sc.Generator(1) })
    end)
    assert.are.same(new:totable(), old:totable())
    assert.truthy(warn:find("option step is deprecated, use step_size", 1, true))
    assert.truthy(warn:find("option n_steps is deprecated, use steps", 1, true))
    local again = stderr_of(function() sc.samplers.langevin(d, x0, nil, { step = 0.05, n_steps = 1 }) end)
    assert.are.equal("", again)

    local sig = { 4, 2, 1 }
    local a = sc.samplers.annealed_langevin(d, x0, sig, { step_size = 0.01, steps_per_level = 3,
      generator = sc.Generator(2) })
    local b
    warn = stderr_of(function()
      b = sc.samplers.annealed_langevin(d, x0, sig, { eps = 0.01, T = 3, generator = sc.Generator(2) })
    end)
    assert.are.same(a:totable(), b:totable())
    assert.truthy(warn:find("option eps is deprecated, use step_size", 1, true))
    assert.truthy(warn:find("option T is deprecated, use steps_per_level", 1, true))
  end)

  it("refuse an old and a new name together, and list the new names for a misspelt one", function()
    assert.has_error(function() sc.samplers.langevin(d, x0, nil, { step = 0.1, step_size = 0.1 }) end,
      "scorch.samplers.langevin: give step_size or its old name step, not both")
    local ok, err = pcall(sc.samplers.annealed_langevin, d, x0, { 1 }, { stepsize = 0.1 })
    assert.is_false(ok)
    assert.truthy(err:find("valid: callback, convention, denoise, generator, progress, step_size, steps_per_level",
      1, true), err)
  end)
end)
