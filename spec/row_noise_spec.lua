-- Per-sample noise (sc.samplers.row_noise): a sample drawn by a stochastic
-- sampler is the same bits whether it is drawn among 12 or in chunks of 5,
-- as `scorch sample` draws them, for every sampler that draws noise.
local sc = require "scorch"
local param = require "scorch.param"
local schedules = require "scorch.schedules"
local S = require "scorch.samplers"
local common = require "scorch.samplers.common"

local N, SEED = 12, 41

-- Draws the N samples in chunks of `chunk` rows (each with its own start
-- rows and row_noise from its first index) and joins them.
local function chunked(run, chunk)
  local starts = sc.randn({ N, 2 }, { generator = sc.Generator(5) })
  local parts = {}
  for first = 1, N, chunk do
    local m = math.min(chunk, N - first + 1)
    parts[#parts + 1] = run(starts:narrow(1, first, m), S.row_noise(SEED, first))
  end
  return sc.cat(parts, 1)
end

-- A mixture's exact score: row i's result depends on row i alone.
local mix = sc.data.toy("two_gaussians")
local sched = schedules.ddpm { T = 40 }
local vp = schedules.vp_sde()
local sigmas = schedules.geometric_sigmas(3, 0.05, 8)
local karras = schedules.karras_sigmas(10, { sigma_min = 0.02, sigma_max = 3 })

local cases = {
  ddpm = function(x, g) return S.ddpm(param.wrap(mix, { process = sched }), x, sched, { generator = g }) end,
  ddim_eta1 = function(x, g)
    return S.ddim(param.wrap(mix, { process = sched }), x, sched, { steps = 10, eta = 1, generator = g })
  end,
  euler_maruyama = function(x, g)
    return S.euler_maruyama(param.wrap(mix, { process = vp }), x, vp, { steps = 30, generator = g })
  end,
  -- without its corrector: the Langevin corrector's step size follows the
  -- batch's mean norms (Song et al.'s code does the same), so a corrected
  -- sample depends on its batch by construction
  predictor_corrector = function(x, g)
    return S.predictor_corrector(param.wrap(mix, { process = vp }), x, vp,
      { steps = 30, corrector = "none", generator = g })
  end,
  naive_backward = function(x, g)
    return S.naive_backward(param.wrap(mix), x, karras, { method = "ancestral", generator = g })
  end,
  heun_churn = function(x, g)
    return S.heun(param.wrap(mix), x, karras, { S_churn = 10, generator = g })
  end,
  annealed_langevin = function(x, g)
    return S.annealed_langevin(param.wrap(mix), x, sigmas, { steps_per_level = 5, generator = g })
  end,
}

describe("sc.samplers.row_noise", function()
  for name, run in pairs(cases) do
    it(name .. ": the same samples in one batch and in chunks of 5 and of 1", function()
      local whole = chunked(run, N)
      assert.are.equal(0, (whole - chunked(run, 5)):abs():max():item())
      assert.are.equal(0, (whole - chunked(run, 1)):abs():max():item())
      -- and the noise matters: another seed moves the samples
      local other = S.row_noise(SEED + 1, 1)
      local starts = sc.randn({ N, 2 }, { generator = sc.Generator(5) })
      assert.is_true((whole - run(starts, other)):abs():max():item() > 1e-3)
    end)
  end

  it("draws standard normal noise, fresh at every draw, rows of odd width included", function()
    local src = S.row_noise(3, 1)
    local x = sc.zeros(4000, 3, { dtype = "float64" })
    local a, b = common.noise_like(x, src), common.noise_like(x, src)
    assert.is_true(math.abs(a:mean():item()) < 0.05)
    assert.is_true(math.abs((a * a):mean():item() - 1) < 0.05)
    -- two draws are independent: their correlation is near 0
    assert.is_true(math.abs((a * b):mean():item()) < 0.05)
    -- row 1001 of a batch starting at 1 is row 1 of a batch starting at 1001
    local tail = common.noise_like(sc.zeros(5, 3, { dtype = "float64" }), S.row_noise(3, 1001))
    assert.are.same(a:narrow(1, 1001, 5):values(), tail:values())
    assert.are.same({ 4000, 3 }, a:shape())
  end)

  it("rejects a seed that is not an integer and a first row below 1", function()
    assert.has_error(function() S.row_noise(1.5) end,
      "scorch.samplers.row_noise: seed must be an integer (bad argument #1)")
    assert.has_error(function() S.row_noise(1, 0) end,
      "scorch.samplers.row_noise: first must be an integer >= 1 (bad argument #2)")
  end)
end)
