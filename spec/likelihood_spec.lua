-- Likelihoods by the probability-flow ODE against closed forms: under the
-- exact score of a Gaussian the model is (up to the prior mismatch at T) the
-- Gaussian itself, so the NLL must equal −log N(x; μ, Σ).
local sc = require "scorch"
local likelihood = require "scorch.likelihood"
local param = require "scorch.param"
local schedules = require "scorch.schedules"

local LN2 = math.log(2)

local gaussian = sc.data.gaussian_mixture { means = { { 1.0, -2.0 } }, covs = { { { 2.0, 0.6 }, { 0.6, 0.5 } } } }
local centred = sc.data.gaussian_mixture { means = { { 0, 0 } }, covs = { { { 2.0, 0.6 }, { 0.6, 0.5 } } } }

local sdes = {
  vp = schedules.vp_sde(),
  subvp = schedules.subvp_sde(),
  ve = schedules.ve_sde { sigma_min = 0.01, sigma_max = 50 },
}

describe("likelihood.nll, exact divergence", function()
  local x = gaussian:sample(300, { generator = sc.Generator(4), dtype = "float64" })
  local truth = -gaussian:log_prob(x)

  for _, kind in ipairs { "vp", "subvp", "ve" } do
    it(kind .. ": mean NLL of a Gaussian within 0.01 nats per dimension of the closed form", function()
      local nll, info = likelihood.nll(gaussian, sdes[kind], x)
      assert.are.same({ 300 }, nll:shape())
      local diff = (nll - truth):mean():item()
      assert(math.abs(diff) / 2 < 0.01, ("%s: mean NLL %.5f, closed form %.5f"):format(kind, info.nats,
        truth:mean():item()))
      -- bits per dimension are nats / (d ln 2)
      assert(math.abs(info.bpd_mean - info.nats / (2 * LN2)) < 1e-12)
      assert(info.nfe > 0 and info.nfe < 1000)
    end)
  end

  it("per point, for a centred Gaussian (no prior mismatch), within 1e-3 nats", function()
    local xc = centred:sample(200, { generator = sc.Generator(5), dtype = "float64" })
    local want = -centred:log_prob(xc)
    -- (VE with σ_max = 200: N(0, Σ + σ_max²I) is then N(0, σ_max²I) to 1e-4 nats)
    local wide = { vp = sdes.vp, ve = schedules.ve_sde { sigma_min = 0.01, sigma_max = 200 } }
    for _, kind in ipairs { "vp", "ve" } do
      local nll = likelihood.nll(centred, wide[kind], xc)
      local err = (nll - want):abs():max():item()
      assert(err < 1e-3, ("%s: worst point off by %.5f nats"):format(kind, err))
    end
  end)

  it("takes a score model (and other predictions) as well as a distribution", function()
    local vp = sdes.vp
    local D = param.from_distribution(gaussian)
    local xs = x:narrow(1, 1, 50)
    local ref = likelihood.nll(gaussian, vp, xs)
    local by_score = likelihood.nll(param.score_fn(D, vp), vp, xs)
    local by_eps = likelihood.nll(param.eps_fn(D, vp), vp, xs, { prediction = "eps" })
    assert((by_score - ref):abs():max():item() < 1e-9)
    assert((by_eps - ref):abs():max():item() < 1e-6)
  end)

  it("a wrong score gives a worse likelihood", function()
    local wrong = sc.data.gaussian_mixture { means = { { 1.0, -2.0 } }, stds = 0.5 }
    local xs = x:narrow(1, 1, 100)
    local good = likelihood.nll(gaussian, sdes.vp, xs):mean():item()
    local bad = likelihood.nll(wrong, sdes.vp, xs):mean():item()
    assert(bad > good + 0.5, ("good %.3f, bad %.3f"):format(good, bad))
  end)
end)

describe("likelihood.nll, Hutchinson estimates", function()
  -- unbiased: the mean error over points is within 4 standard errors
  local x = gaussian:sample(1000, { generator = sc.Generator(6), dtype = "float64" })
  local truth = -gaussian:log_prob(x)
  for _, est in ipairs { "rademacher", "gaussian" } do
    it(est .. " probes (VP)", function()
      local nll = likelihood.nll(gaussian, sdes.vp, x, { estimator = est, generator = sc.Generator(9) })
      local d = nll - truth
      local mean, sd = d:mean():item(), math.sqrt(d:var():item())
      assert(sd > 1e-3, "a stochastic estimate must vary")
      assert(math.abs(mean) < 4 * sd / math.sqrt(1000) + 0.01,
        ("%s: mean error %.4f, sd %.4f"):format(est, mean, sd))
    end)
  end
  it("rejects unknown estimators and non-SDEs", function()
    assert.has_error(function() likelihood.nll(gaussian, sdes.vp, x, { estimator = "skilling" }) end)
    assert.has_error(function() likelihood.nll(gaussian, schedules.ddpm {}, x) end)
    assert.has_error(function() likelihood.nll(gaussian, sdes.vp, sc.ones(3)) end)
  end)
end)

describe("likelihood with float32", function()
  it("works in the tensor's dtype", function()
    local x = gaussian:sample(100, { generator = sc.Generator(7) })
    local nll, info = likelihood.nll(gaussian, sdes.vp, x, { rtol = 1e-4, atol = 1e-4 })
    assert.are.equal("float32", nll:dtype())
    local truth = -gaussian:log_prob(x:double())
    assert(math.abs(info.nats - truth:mean():item()) < 0.02)
  end)
end)


describe("scorch.likelihood with a wrapped model", function()
  it("gives the same NLL as the distribution it wraps", function()
    local lik = require "scorch.likelihood"
    local d = sc.data.two_gaussians()
    local sde = sc.schedules.vp_sde()
    local x = d:sample(8, { generator = sc.Generator(1) }):double()
    local a = lik.nll(d, sde, x)
    local b = lik.nll(sc.param.wrap(d), sde, x)
    assert.are.equal(0, (a - b):abs():max():item())
  end)
end)
