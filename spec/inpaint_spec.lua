-- Conditional sampling from an unconditional model against closed forms on a
-- correlated 2-D Gaussian with its exact score: replacement inpainting of x₂
-- given x₁ = a against the conditional Gaussian N(μ₂ + ρ(a − μ₁), 1 − ρ²), and
-- guidance toward the region x₁ > c against the truncated Gaussian's means.
local sc = require "scorch"
local S = sc.samplers

local MU1, MU2, RHO = 0.5, -0.3, 0.8
local gauss = sc.data.gaussian_mixture { means = { { MU1, MU2 } }, covs = { { { 1, RHO }, { RHO, 1 } } } }
local model = sc.param.wrap(gauss)   -- the exact (unconditional) score
local VE = sc.schedules.ve_sde { sigma_min = 0.01, sigma_max = 20 }

-- Song et al. 2021's sampler for inverse problems: predictor–corrector with Langevin corrector steps.
local function pc(m, n, seed)
  local g = sc.Generator(seed)
  return S.predictor_corrector(m, S.prior(VE, { n, 2 }, { generator = g }), VE, { generator = g, steps = 200,
    corrector_steps = 3 })
end

-- Standard normal CDF (Abramowitz & Stegun 26.2.17, error below 7.5e-8).
local function Phi(z)
  local t = 1 / (1 + 0.2316419 * math.abs(z))
  local p = 0.3989423 * math.exp(-z * z / 2)
    * t * (0.3193815 + t * (-0.3565638 + t * (1.781478 + t * (-1.821256 + t * 1.330274))))
  return z > 0 and 1 - p or p
end

describe("replacement inpainting with an exact score", function()
  local A = 1.0
  local known, mask = sc.tensor({ { A, 0 } }), sc.tensor({ { 1, 0 } })

  it("samples x₂ | x₁ = a from the conditional Gaussian (mean and variance)", function()
    local inp = sc.param.inpaint(model, known, mask, { generator = sc.Generator(5) })
    local x = inp:paste(pc(inp, 4000, 3))
    -- measured: mean 0.0986, variance 0.3666 (truth 0.1, 0.36)
    local x1, x2 = x:select(2, 1), x:select(2, 2)
    assert.are.equal(A, x1:min():item())
    assert.are.equal(A, x1:max():item())
    local mean, var = MU2 + RHO * (A - MU1), 1 - RHO * RHO
    assert(math.abs(x2:mean():item() - mean) < 0.03, ("mean %.4f, truth %.4f"):format(x2:mean():item(), mean))
    assert(math.abs(x2:var():item() / var - 1) < 0.08, ("variance %.4f, truth %.4f"):format(x2:var():item(), var))
  end)

  it("re-noises the known values to the level the model is asked at, in every view", function()
    local seen = {}
    local function probe(x)
      seen[#seen + 1] = x:clone()
      return x * 0
    end
    local ddpm = sc.schedules.ddpm {}
    local x = sc.zeros(20000, 2) + 7
    -- the σ view: x̂ = k + σ z;  a DDPM model's own view: x_t = √ᾱ k + √(1 − ᾱ) z
    sc.param.inpaint(sc.param.wrap(probe, { kind = "score" }), known, mask, { generator = sc.Generator(1) })
      :denoise(x, 2)
    sc.param.inpaint(sc.param.wrap(probe, { kind = "eps", process = ddpm }), known, mask,
      { generator = sc.Generator(1) }):eps(x, 500)
    local ab = ddpm.alpha_bars[500]
    local wants = { { A, 2 }, { math.sqrt(ab) * A, math.sqrt(1 - ab) } }
    for i, want in ipairs(wants) do
      local col1, col2 = seen[i]:select(2, 1), seen[i]:select(2, 2)
      assert(math.abs(col1:mean():item() - want[1]) < 0.05, ("view %d: mean %.4f"):format(i, col1:mean():item()))
      local sd = col1:var():sqrt():item()
      assert(math.abs(sd / want[2] - 1) < 0.03, ("view %d: std %.4f, want %.4f"):format(i, sd, want[2]))
      assert.are.equal(7, col2:min():item())                  -- the unknown part is the sampler's own
      assert.are.equal(7, col2:max():item())
    end
  end)

  it("works on image batches with a broadcast mask, and is reproducible", function()
    local net = sc.models.UNet { channels = 8, mults = { 1 }, attention = { false }, mid_attention = false,
      generator = sc.Generator(2) }
    local m = sc.param.wrap(net, { kind = "eps", process = sc.schedules.ddpm { T = 50 } })
    local known_img = sc.rand({ 1, 1, 8, 8 }, { generator = sc.Generator(3) })
    local hole = sc.zeros(1, 1, 8, 8)
    hole:narrow(3, 1, 4):fill_(1)                              -- the top half is known
    local function run()
      local inp = sc.param.inpaint(m, known_img, hole, { generator = sc.Generator(4) })
      local g = sc.Generator(5)
      local sched = m.process
      return inp:paste(S.ddim(inp, S.prior(sched, { 3, 1, 8, 8 }, { generator = g }), sched, { steps = 5 }))
    end
    local x = run()
    assert.are.same({ 3, 1, 8, 8 }, x:shape())
    local top = x:narrow(3, 1, 4) - known_img:narrow(3, 1, 4)
    assert.are.equal(0, top:abs():max():item())
    assert.are.same(x:values(), run():values())
  end)

  it("composes with conditioning and guidance", function()
    local labelled = sc.data.gaussian_mixture { means = { { -1, 0 }, { 1, 0 } }, stds = 0.5 }
    local m = sc.param.wrap(sc.models.mixture_score(labelled), { kind = "score" })
    local x = sc.randn({ 8, 2 }, { generator = sc.Generator(6) })
    local a = sc.param.inpaint(m, known, mask, { generator = sc.Generator(1) }):with_cond(1):denoise(x, 0.5)
    local b = sc.param.inpaint(m:with_cond(1), known, mask, { generator = sc.Generator(1) }):denoise(x, 0.5)
    assert.are.same(a:values(), b:values())
    local u = sc.param.inpaint(m, known, mask, { generator = sc.Generator(1) }):denoise(x, 0.5)
    assert.is_true((a - u):abs():max():item() > 1e-3)
    local g = sc.param.inpaint(sc.param.guided(m, { cond = 2, w = 1 }), known, mask, { generator = sc.Generator(1) })
    assert.are.same({ 8, 2 }, g:denoise(x, 0.5):shape())
    local ok, err = pcall(sc.param.guided, sc.param.inpaint(m, known, mask), { cond = 1 })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("already guided or inpainting", 1, true))
  end)

  it("rejects bad input, naming the function and the argument", function()
    local function fails(pattern, f)
      local ok, err = pcall(f)
      assert.is_false(ok)
      assert(tostring(err):find(pattern, 1, true), "message: " .. tostring(err))
    end
    fails("scorch.param.inpaint: mask (argument #3) must hold 0 and 1 only", function()
      sc.param.inpaint(model, known, sc.tensor({ { 0.5, 0 } }))
    end)
    fails("scorch.param.inpaint: known [1,2] and mask [1,3] do not broadcast", function()
      sc.param.inpaint(model, known, sc.tensor({ { 1, 0, 0 } }))
    end)
    fails("scorch.param.inpaint: known (argument #2) must be a tensor", function()
      sc.param.inpaint(model, { 1, 0 }, mask)
    end)
    fails("scorch.param.inpaint: model (argument #1) must be a wrapped model", function()
      sc.param.inpaint(gauss, known, mask)
    end)
    fails("scorch.param.Model:paste: only an inpainting model", function() model:paste(known) end)
    fails("scorch.param.inpaint: unknown option 'seed'", function()
      sc.param.inpaint(model, known, mask, { seed = 1 })
    end)
  end)
end)

describe("conditioning on a region by guidance", function()
  local C = 1.0
  it("draws x | x₁ > c with the truncated Gaussian's means", function()
    local clf = sc.param.region_classifier({ C, -math.huge }, { math.huge, math.huge })
    local x = pc(sc.param.guided(model, { cond = 1, classifier = clf }), 4000, 3)
    local x1, x2 = x:select(2, 1), x:select(2, 2)
    -- E[x₁ | x₁ > c] = μ₁ + φ(α)/(1 − Φ(α)), α = c − μ₁; E[x₂ | ·] = μ₂ + ρ(E[x₁ | ·] − μ₁)
    local a = C - MU1
    local m1 = MU1 + math.exp(-a * a / 2) / math.sqrt(2 * math.pi) / (1 - Phi(a))
    local m2 = MU2 + RHO * (m1 - MU1)
    -- measured: 97.4% inside, means 1.659 and 0.607 (truth 1.641, 0.613)
    local inside = x1:gt(C):float():mean():item()
    assert(inside > 0.95, ("%.3f inside"):format(inside))
    assert(math.abs(x1:mean():item() - m1) < 0.05, ("E x1 %.4f, truth %.4f"):format(x1:mean():item(), m1))
    assert(math.abs(x2:mean():item() - m2) < 0.05, ("E x2 %.4f, truth %.4f"):format(x2:mean():item(), m2))
  end)

  it("rejects a bad region", function()
    local ok, err = pcall(sc.param.region_classifier, { 1 }, { 0 })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("scorch.param.region_classifier: need lo[1] < hi[1]", 1, true))
  end)
end)
