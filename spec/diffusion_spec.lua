-- Diffusion schedules, parameterisations and losses against closed forms:
-- ᾱ from β, the VP SDE's discretisation to DDPM's betas, marginals against
-- the SDEs' moment equations (finite differences), exact round trips between
-- score, ε, x₀ and v, EDM preconditioning, and loss values where the optimum
-- or the expectation is known.
local sc = require "scorch"
local param = require "scorch.param"
local schedules = require "scorch.schedules"
local losses = require "scorch.losses"

local F64 = { dtype = "float64" }

local function near(a, b, tol, what)
  assert(math.abs(a - b) <= tol, ("%s: %.10g vs %.10g (tol %g)"):format(what or "value", a, b, tol))
end

describe("DDPM β schedules", function()
  it("linear betas run from 1e-4 to 0.02 and ᾱ is their running product", function()
    local b = schedules.linear_betas(1000)
    assert.are.equal(1000, #b)
    near(b[1], 1e-4, 1e-15)
    near(b[1000], 0.02, 1e-15)
    near(b[501] - b[500], (0.02 - 1e-4) / 999, 1e-15)
    local ab = schedules.alpha_bars(b)
    local acc = 1
    for t = 1, 1000 do acc = acc * (1 - b[t]) end
    near(ab[1000], acc, 1e-15)
    near(ab[1], 1 - 1e-4, 1e-15)
  end)

  it("cosine betas reproduce ᾱ_t = f(t)/f(0) and clip at 0.999", function()
    local T, s = 1000, 0.008
    local b = schedules.cosine_betas(T)
    local ab = schedules.alpha_bars(b)
    local f = function(t) return math.cos((t / T + s) / (1 + s) * math.pi / 2) ^ 2 end
    for _, t in ipairs { 1, 10, 250, 500, 900 } do near(ab[t], f(t) / f(0), 1e-12, "ᾱ_" .. t) end
    near(b[T], 0.999, 1e-15, "last beta clipped")
    for t = 1, T do assert(b[t] <= 0.999) end
  end)

  it("the schedule object: ᾱ_0 = 1, β̃, σ̂ and timesteps from σ̂", function()
    local sched = schedules.ddpm { kind = "cosine", T = 200 }
    assert.are.equal(1, sched:alpha_bar(0))
    local t = 50
    near(sched:beta_tilde(t), (1 - sched.alpha_bars[t - 1]) / (1 - sched.alpha_bars[t]) * sched.betas[t], 1e-15)
    near(sched:beta_tilde(1), 0, 1e-15)
    near(sched:sigma(t), math.sqrt((1 - sched.alpha_bars[t]) / sched.alpha_bars[t]), 1e-12)
    near(sched:t_of_sigma(sched:sigma(t)), t, 1e-9, "t_of_sigma on the grid")
    local mid = math.sqrt(sched:sigma(t) * sched:sigma(t + 1))
    near(sched:t_of_sigma(mid), t + 0.5, 1e-9, "geometric midpoint")
    local a, s = sched:marginal(sc.tensor({ { 1 }, { t } }, F64))
    near(a:values()[2], math.sqrt(sched.alpha_bars[t]), 1e-12)
    near(s:values()[1], math.sqrt(1 - sched.alpha_bars[1]), 1e-12)
    assert.has_error(function() sched:alpha_bar(201) end)
    assert.has_error(function() schedules.ddpm { kind = "quadratic" } end)
  end)

  it("timestep spacings (Lin et al. 2024, Table 2)", function()
    assert.are.same({ 901, 801, 701, 601, 501, 401, 301, 201, 101, 1 }, schedules.timesteps(1000, 10, "leading"))
    assert.are.same({ 1000, 900, 800, 700, 600, 500, 400, 300, 200, 100 }, schedules.timesteps(1000, 10, "trailing"))
    assert.are.same({ 1000, 889, 778, 667, 556, 445, 334, 223, 112, 1 }, schedules.timesteps(1000, 10, "linspace"))
    local all = schedules.timesteps(1000, 1000)
    for i = 1, 1000 do assert.are.equal(1001 - i, all[i]) end
    assert.has_error(function() schedules.timesteps(10, 11) end)
    assert.has_error(function() schedules.timesteps(10, 5, "even") end)
  end)
end)

describe("Karras σ", function()
  it("eq. 5 with σ_min 0.002, σ_max 80, ρ 7, then 0", function()
    local s = schedules.karras_sigmas(18)
    assert.are.equal(19, #s)
    near(s[1], 80, 1e-12)
    near(s[18], 0.002, 1e-15)
    assert.are.equal(0, s[19])
    local a, b = 80 ^ (1 / 7), 0.002 ^ (1 / 7)
    near(s[10], (a + 9 / 17 * (b - a)) ^ 7, 1e-12)
    for i = 2, 19 do assert(s[i] < s[i - 1]) end
    local s2 = schedules.karras_sigmas(5, { sigma_min = 0.01, sigma_max = 10, rho = 1, append_zero = false })
    assert.are.equal(5, #s2)
    near(s2[3], (10 + 0.01) / 2, 1e-12, "ρ = 1 is linear")
  end)
end)

describe("SDEs", function()
  local vp, subvp = schedules.vp_sde(), schedules.subvp_sde()
  local ve = schedules.ve_sde { sigma_min = 0.01, sigma_max = 50 }

  it("the VP SDE discretised with N = 1000 gives DDPM's betas (1e-4 .. 0.02)", function()
    local N = 1000
    local db = vp:discrete_betas(N)
    local lin = schedules.linear_betas(N)
    for i = 1, N do near(db[i], lin[i], 1e-15, "β_" .. i) end
    -- β_i = β((i−1)/(N−1))/N
    for _, i in ipairs { 1, 250, 1000 } do near(db[i], vp:beta((i - 1) / (N - 1)) / N, 1e-15) end
    -- and DDPM's ᾱ_i ≈ α(i/N)² of the continuous process
    local ab = schedules.alpha_bars(db)
    for _, i in ipairs { 100, 500, 900 } do
      local a = vp:marginal(i / N)
      near(math.log(ab[i]), math.log(a * a), 0.02 * math.abs(math.log(ab[i])), "log ᾱ_" .. i)
    end
  end)

  -- Moment equations of dx = f dt + g dw with f = −½β x (VP, sub-VP) or 0 (VE):
  -- d log α/dt = −½ β (or 0), d s²/dt = 2 (d log α/dt) s² + g².
  for name, sde in pairs { vp = vp, subvp = subvp, ve = ve } do
    it(name .. ": marginals solve the SDE's moment equations", function()
      local h = 1e-6
      for _, t in ipairs { 0.05, 0.3, 0.7, 0.95 } do
        local a1, s1 = sde:marginal(t - h)
        local a2, s2 = sde:marginal(t + h)
        local dloga = (math.log(a2) - math.log(a1)) / (2 * h)
        local ds2 = (s2 * s2 - s1 * s1) / (2 * h)
        local a, s = sde:marginal(t)
        local k = name == "ve" and 0 or -0.5 * sde:beta(t)
        near(dloga, k, 1e-5, name .. " d log α/dt at " .. t)
        -- the drift is k·x
        local x = sc.tensor({ { 1.5, -2 } }, F64)
        near(sde:drift(x, t):values()[1], 1.5 * k, 1e-12)
        local g = sde:diffusion(t)
        near(ds2, 2 * k * s * s + g * g, 1e-4 * (1 + g * g), name .. " d s²/dt at " .. t)
        near(sde:t_of_sigma(sde:sigma(t)), t, 1e-9, name .. " t_of_sigma")
        local c, alpha = sde:cond_of_sigma(sde:sigma(t))
        near(c, t, 1e-9)
        near(alpha, a, 1e-12)
      end
    end)
  end

  it("VP: α² + s² = 1; sub-VP: s = 1 − α²; VE: σ(0) = σ_min, σ(1) = σ_max", function()
    local a, s = vp:marginal(0.4)
    near(a * a + s * s, 1, 1e-14)
    local a2, s2 = subvp:marginal(0.4)
    near(a2, a, 1e-15)
    near(s2, 1 - a2 * a2, 1e-14)
    near(ve:sigma(0), 0.01, 1e-15)
    near(ve:sigma(1), 50, 1e-12)
    local at, st = vp:marginal(sc.tensor({ { 0.4 } }, F64))
    near(at:item(), a, 1e-14)
    near(st:item(), s, 1e-14)
  end)

  it("prior sampling and prior log-density", function()
    local z = ve:prior_sample({ 20000, 2 }, { generator = sc.Generator(1), dtype = "float64" })
    near(z:var():item(), 2500, 2500 * 0.05, "VE prior variance")
    local pt = sc.tensor({ { 0, 0 }, { 3, -4 } }, F64)
    local lp = ve:prior_log_prob(pt):values()
    near(lp[1], -math.log(2 * math.pi * 2500), 1e-12)
    near(lp[2], -math.log(2 * math.pi * 2500) - 25 / 5000, 1e-12)
    near(vp:prior_log_prob(pt):values()[2], -math.log(2 * math.pi) - 12.5, 1e-12)
  end)

  it("rejects bad parameters", function()
    assert.has_error(function() schedules.ve_sde { sigma_min = 5, sigma_max = 1 } end)
    assert.has_error(function() schedules.vp_sde { beta_min = -1 } end)
    assert.has_error(function() schedules.linear_betas(0) end)
    assert.has_error(function() schedules.karras_sigmas(10, { sigma_min = 100 }) end)
  end)
end)

describe("parameterisations", function()
  local gen = sc.Generator(3)
  local x0 = sc.randn({ 64, 3 }, { generator = gen, dtype = "float64" })
  local eps = sc.randn({ 64, 3 }, { generator = gen, dtype = "float64" })
  local views = {
    { "VP", param.vp(0.3) },
    { "VE", param.ve(7.5) },
    { "scaled", 0.6, 0.45 },             -- sub-VP-like: α² + s² ≠ 1
    { "per-example", sc.rand({ 64, 1 }, { generator = gen, dtype = "float64" }) * 0.9 + 0.05,
      sc.rand({ 64, 1 }, { generator = gen, dtype = "float64" }) * 3 + 0.01 },
  }
  for _, v in ipairs(views) do
    local name, alpha, s = v[1], v[2], v[3]
    it(name .. ": each target converts to every other kind exactly", function()
      local x = x0 * alpha + eps * s
      local truth = {}
      for k in pairs(param.predictions) do truth[k] = param.target(k, x0, eps, alpha, s) end
      for from in pairs(param.predictions) do
        for to in pairs(param.predictions) do
          local y = param.convert(truth[from], from, to, x, alpha, s)
          local err = (y - truth[to]):abs():max():item()
          assert(err < 1e-9 * (1 + truth[to]:abs():max():item()),
            ("%s: %s → %s off by %g"):format(name, from, to, err))
          local back = param.convert(y, to, from, x, alpha, s)
          assert((back - truth[from]):abs():max():item() < 1e-9 * (1 + truth[from]:abs():max():item()))
        end
      end
    end)
  end

  it("score = −ε/s and v = α ε − s x₀ by definition", function()
    local alpha, s = param.vp(0.5)
    local x = x0 * alpha + eps * s
    local score = param.eps_to_score(eps, x, alpha, s)
    assert((score + eps / s):abs():max():item() < 1e-12)
    local v = param.x0_to_v(x0, x, alpha, s)
    assert((v - (eps * alpha - x0 * s)):abs():max():item() < 1e-12)
    assert.has_error(function() param.convert(eps, "noise", "x0", x, alpha, s) end)
  end)

  it("EDM coefficients (Karras et al. 2022, Table 1) give F a unit-variance target", function()
    local sd = 0.5
    for _, sigma in ipairs { 0.002, 0.1, 0.5, 3, 80 } do
      local c_skip, c_out, c_in, c_noise = param.edm_coefficients(sigma, sd)
      near(c_skip, sd ^ 2 / (sigma ^ 2 + sd ^ 2), 1e-15)
      near(c_in, 1 / math.sqrt(sigma ^ 2 + sd ^ 2), 1e-12)
      near(c_noise, math.log(sigma) / 4, 1e-15)
      -- target (x₀ − c_skip(x₀ + σn))/c_out for Var x₀ = σ_d², n ~ N(0, 1): variance 1
      local var = ((1 - c_skip) ^ 2 * sd ^ 2 + c_skip ^ 2 * sigma ^ 2) / c_out ^ 2
      near(var, 1, 1e-12, "target variance at σ = " .. sigma)
      -- and c_in makes the network input unit-variance
      near(c_in ^ 2 * (sd ^ 2 + sigma ^ 2), 1, 1e-12)
      near(param.edm_weight(sigma, sd), 1 / c_out ^ 2, 1e-9 * param.edm_weight(sigma, sd))
    end
    local D = param.edm(function(x) return x * 0 + 1 end, { sigma_data = sd })
    local x = sc.tensor({ { 2, -1 } }, F64)
    local sigma = 0.7
    local c_skip, c_out = param.edm_coefficients(sigma, sd)
    local d = D(x, sigma):values()
    near(d[1], 2 * c_skip + c_out, 1e-12)
    near(d[2], -c_skip + c_out, 1e-12)
  end)

  -- The exact denoiser of a Gaussian, viewed through every process and
  -- prediction kind, must come back unchanged.
  it("denoiser ∘ (eps | x0 | v | score)_fn is the identity for every process", function()
    local dist = sc.data.gaussian_mixture { means = { { 1, -1 } }, covs = { { { 1.5, 0.3 }, { 0.3, 0.7 } } } }
    local D = param.from_distribution(dist)
    local xhat = sc.randn({ 16, 2 }, { generator = gen, dtype = "float64" }) * 3
    local processes = { vp = schedules.vp_sde(), subvp = schedules.subvp_sde(), ve = schedules.ve_sde() }
    for pname, proc in pairs(processes) do
      for kind in pairs(param.predictions) do
        -- a "network" predicting `kind` in the process's own coordinates
        local net = function(x, t)
          local a, s = proc:marginal(t)
          local e = param.eps_fn(D, proc)(x, t)
          return param.convert(e, "eps", kind, x, a, s)
        end
        local D2 = param.denoiser(net, { prediction = kind, process = proc })
        for _, sigma in ipairs { 0.05, 0.8, 6 } do
          local err = (D2(xhat, sigma) - D(xhat, sigma)):abs():max():item()
          assert(err < 1e-6, ("%s/%s at σ = %g: off by %g"):format(pname, kind, sigma, err))
        end
      end
    end
  end)

  it("score_fn of the exact denoiser is the exact VP score of the noised data", function()
    local dist = sc.data.gaussian_mixture { means = { { 1, -1 } }, stds = 0.8 }
    local vp = schedules.vp_sde()
    local score = param.score_fn(param.from_distribution(dist), vp)
    local t = 0.3
    local a, s = vp:marginal(t)
    local x = sc.tensor({ { 0.2, 0.4 }, { -1, 2 } }, F64)
    -- x_t ~ N(a μ, (a² 0.64 + s²) I)
    local var = a * a * 0.64 + s * s
    local want = (sc.tensor({ { a, -a } }, F64) - x) / var
    assert((score(x, t) - want):abs():max():item() < 1e-10)
  end)

  it("a DDPM-trained network reaches any level through its fractional timestep", function()
    local sched = schedules.ddpm {}
    local seen
    local net = function(x, t) seen = t; return x * 0 end
    local D = param.denoiser(net, { process = sched })
    local x = sc.ones(2, 2, F64)
    local sigma = math.sqrt(sched:sigma(100) * sched:sigma(101))
    local d = D(x, sigma)
    -- the level reaches the network as the [N, 1] column of param.level
    assert.are.same({ 2, 1 }, seen:shape())
    near(seen:min():item(), 100.5, 1e-9)
    near(seen:max():item(), 100.5, 1e-9)
    -- ε = 0 ⇒ x₀ = x_t/α = x̂
    assert((d - x):abs():max():item() < 1e-12)
  end)
end)

describe("diffusion losses", function()
  -- Data concentrated at one point c: the optimal predictors are known in
  -- closed form, so the optimum scores 0 and a zero model scores E‖target‖².
  local c = sc.tensor({ { 0.5, -1.5 } }, F64)
  local batch = c:expand(20000, 2):contiguous()

  it("ddpm (Ho et al. Algorithm 1): 0 at the optimum, E‖ε‖²/d = 1 for a zero model", function()
    local sched = schedules.ddpm {}
    local opt = function(x, t)
      local a, s = sched:marginal(t)
      return (x - c * a) / s
    end
    local l = losses.ddpm(opt, batch, { schedule = sched, generator = sc.Generator(1) })
    assert(l:item() < 1e-20)
    local z = losses.ddpm(function(x) return x * 0 end, batch, { schedule = sched, generator = sc.Generator(1) })
    near(z:item(), 1, 0.03, "zero model")
    -- x₀ prediction: a zero model scores E x₀² averaged over elements
    local zx = losses.ddpm(function(x) return x * 0 end, batch,
      { schedule = sched, prediction = "x0", generator = sc.Generator(1) })
    near(zx:item(), (0.25 + 2.25) / 2, 1e-9, "zero x₀ model")
  end)

  it("sde_dsm (Song et al. eq. 7): σ², likelihood and no weighting", function()
    local ve = schedules.ve_sde { sigma_min = 0.1, sigma_max = 10 }
    local opt = function(x, t)
      local _, s = ve:marginal(t)
      return (c - x) / (s * s)
    end
    for _, w in ipairs { "sigma2", "likelihood", "none" } do
      local l = losses.sde_dsm(opt, batch, { sde = ve, weighting = w, generator = sc.Generator(2) })
      assert(math.abs(l:item()) < 1e-12, w .. " optimum: " .. l:item())
    end
    local zero = function(x) return x * 0 end
    -- σ²: E‖z‖² = d; likelihood for VE: g²/s² = 2 log(σ_max/σ_min), so 2 d log r
    near(losses.sde_dsm(zero, batch, { sde = ve, generator = sc.Generator(2) }):item(), 2, 0.06)
    near(losses.sde_dsm(zero, batch, { sde = ve, weighting = "likelihood", generator = sc.Generator(2) }):item(),
      4 * math.log(100), 0.03 * 4 * math.log(100))
    -- an ε-predicting model reads the same: ε̂ = z ⇒ 0
    local vp = schedules.vp_sde()
    local opt_eps = function(x, t)
      local a, s = vp:marginal(t)
      return (x - c * a) / s
    end
    local le = losses.sde_dsm(opt_eps, batch, { sde = vp, prediction = "eps", weighting = "likelihood",
      generator = sc.Generator(2) })
    assert(math.abs(le:item()) < 1e-10)
    assert.has_error(function() losses.sde_dsm(zero, batch, { sde = vp, weighting = "sigma4" }) end)
    assert.has_error(function() losses.sde_dsm(zero, batch, {}) end)
  end)

  it("edm (Karras et al. eq. 2): 0 at the optimum; the weight λ(σ) for D = identity", function()
    local opt = function(x) return x * 0 + c end
    local l = losses.edm(opt, batch, { generator = sc.Generator(3) })
    assert(l:item() < 1e-20)
    -- D(x) = x leaves the noise: λ σ² E n² = 1 + σ²/σ_d², and E σ² = exp(2 P_mean + 2 P_std²)
    local pm, ps = 0, 0.2
    local li = losses.edm(function(x) return x end, batch, { P_mean = pm, P_std = ps, generator = sc.Generator(3) })
    local want = 1 + math.exp(2 * pm + 2 * ps * ps) / 0.25
    near(li:item(), want, 0.03 * want, "identity denoiser")
  end)

  it("losses train: gradients reach the parameters", function()
    local w = sc.zeros(2, 2, F64):requires_grad(true)
    local net = function(x) return sc.matmul(x, w) end
    local sched = schedules.ddpm { T = 50 }
    local x = sc.randn({ 32, 2 }, F64)
    losses.ddpm(net, x, { schedule = sched }):backward()
    assert(w.grad and w.grad:abs():sum():item() > 0)
    w:zero_grad()
    losses.edm(param.edm(net), x):backward()
    assert(w.grad:abs():sum():item() > 0)
  end)
end)
