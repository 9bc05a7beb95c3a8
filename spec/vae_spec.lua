-- The VAE against closed forms: on a linear-Gaussian model (probabilistic
-- PCA) the marginal log p(x) = log N(x; b, WWᵀ + σ²I) is exact, so the
-- trained ELBO must approach it from below and the IWAE bound must lie
-- between them; IWAE with K = 1 equals the ELBO with a sampled KL draw for
-- draw; the analytic KL matches its Monte Carlo estimate; every decoder's
-- log-likelihood is a normalised distribution; errors name function,
-- argument and shapes.
local sc = require "scorch"

local F64 = { dtype = "float64" }
local LOG_2PI = math.log(2 * math.pi)

local function max_abs(t) return t:abs():max():item() end

-- Mean of log N(x; b, C) over the rows of x (Lua Cholesky; D is small).
local function gaussian_log_prob_mean(x, b, C)
  local d = #C
  local L = {}
  for i = 1, d do
    L[i] = {}
    for j = 1, i do
      local s = C[i][j]
      for k = 1, j - 1 do s = s - L[i][k] * L[j][k] end
      L[i][j] = (i == j) and math.sqrt(s) or s / L[j][j]
    end
  end
  local logdet = 0
  for i = 1, d do logdet = logdet + 2 * math.log(L[i][i]) end
  local rows, total = x:totable(), 0
  for _, r in ipairs(rows) do
    local y, q = {}, 0
    for i = 1, d do
      local s = r[i] - b[i]
      for k = 1, i - 1 do s = s - L[i][k] * y[k] end
      y[i] = s / L[i][i]
      q = q + y[i] * y[i]
    end
    total = total + (-0.5 * (q + logdet + d * LOG_2PI))
  end
  return total / #rows
end

-- The model's exact marginal for a linear decoder p(x|z) = N(Wz + b, σ²I).
local function exact_marginal(vae, x)
  local lin = vae.decoder[1]
  local W, b = lin.weight:totable(), lin.bias:totable()
  local d, l = #W, #W[1]
  local C = {}
  for i = 1, d do
    C[i] = {}
    for j = 1, d do
      local s = (i == j) and vae.sigma ^ 2 or 0
      for k = 1, l do s = s + W[i][k] * W[j][k] end
      C[i][j] = s
    end
  end
  return gaussian_log_prob_mean(x, b, C)
end

-- The mean ELBO over x, each point repeated `reps` times (analytic KL).
local function mean_elbo(vae, x, reps, gen)
  local xr = x:unsqueeze(1):expand(reps, x:size(1), x:size(2)):reshape(-1, x:size(2))
  return sc.no_grad(function()
    local _, info = sc.losses.elbo(vae, xr, { generator = gen })
    return info.elbo:mean():item()
  end)
end

describe("VAE on a linear-Gaussian model (closed-form marginal likelihood)", function()
  it("trains an ELBO that approaches log p(x) from below, with IWAE between them", function()
    local g = sc.Generator(0)
    -- data: x = A z + c + 0.3 ε in 4-D from a 2-D latent
    local A = sc.tensor({ { 1.5, 0.2 }, { -0.4, 1.0 }, { 0.8, -0.9 }, { 0.3, 0.6 } }, F64)
    local c = sc.tensor({ { 0.5, -1.0, 0.0, 2.0 } }, F64)
    local function data(n)
      local z = sc.randn({ n, 2 }, { generator = g, dtype = "float64" })
      return sc.matmul(z, A:t()) + c + sc.randn({ n, 4 }, { generator = g, dtype = "float64" }) * 0.3
    end
    local vae = sc.models.VAE { x_dim = 4, latent = 2, hidden = {}, likelihood = "gaussian", sigma = 0.3,
      dtype = "float64", generator = g }
    local test = data(1000)
    local before_gap = exact_marginal(vae, test) - mean_elbo(vae, test, 20, g)
    local opt = sc.optim.Adam(vae:parameters(), { lr = 1e-2 })
    for step = 1, 3000 do
      if step == 2000 then opt.lr = 2e-3 end
      local loss = sc.losses.elbo(vae, data(256), { generator = g })
      opt:zero_grad(); loss:backward(); opt:step()
    end
    local logp = exact_marginal(vae, test)
    local elbo = mean_elbo(vae, test, 40, g)
    local iw = sc.no_grad(function()
      local _, info = sc.losses.iwae(vae, test, { k = 200, generator = g })
      return info.bound:mean():item()
    end)
    local gap = logp - elbo
    assert.is_true(gap > -0.01, ("ELBO %.4f above log p(x) %.4f"):format(elbo, logp))
    assert.is_true(gap < 0.05 and gap < before_gap / 10,
      ("gap %.4f after training (%.4f before)"):format(gap, before_gap))
    assert.is_true(iw >= elbo - 0.005 and iw <= logp + 0.005,
      ("ELBO %.4f, IWAE %.4f, log p %.4f"):format(elbo, iw, logp))
    -- and the fitted marginal is close to the data's: log p under the truth
    local C = sc.matmul(A, A:t()):totable()
    for i = 1, 4 do C[i][i] = C[i][i] + 0.09 end
    local truth = gaussian_log_prob_mean(test, c:totable()[1], C)
    assert.is_true(math.abs(truth - logp) < 0.05, ("fitted %.4f, truth %.4f"):format(logp, truth))
  end)
end)

describe("VAE bounds", function()
  local g = sc.Generator(3)
  local vae = sc.models.VAE { x_dim = 6, latent = 3, hidden = { 16 }, likelihood = "bernoulli",
    dtype = "float64", generator = g }
  local x = sc.rand({ 32, 6 }, { generator = g, dtype = "float64" })

  it("IWAE with K = 1 equals the ELBO with a sampled KL, draw for draw", function()
    local _, e = sc.losses.elbo(vae, x, { kl = "sample", generator = sc.Generator(5) })
    local _, iw = sc.losses.iwae(vae, x, { k = 1, generator = sc.Generator(5) })
    assert.is_true(max_abs(e.elbo - iw.bound) < 1e-12)
  end)

  it("analytic and sampled KL agree in expectation; IWAE grows with K", function()
    local xr = x:unsqueeze(1):expand(400, 32, 6):reshape(-1, 6)
    local _, a = sc.losses.elbo(vae, xr, { generator = sc.Generator(6) })
    local _, s = sc.losses.elbo(vae, xr, { kl = "sample", generator = sc.Generator(6) })
    assert.is_true(math.abs(a.kl:mean():item() - s.kl:mean():item()) < 0.02)
    local b1 = sc.losses.iwae(vae, xr, { k = 1, generator = sc.Generator(7) }):item()
    local b20 = sc.losses.iwae(vae, xr, { k = 20, generator = sc.Generator(7) }):item()
    assert.is_true(b20 < b1, ("-IWAE: K=1 %.4f, K=20 %.4f"):format(b1, b20))
    local bpd = sc.losses.iwae(vae, x, { k = 5, unit = "bits_per_dim", generator = sc.Generator(8) }):item()
    local nats = sc.losses.iwae(vae, x, { k = 5, generator = sc.Generator(8) }):item()
    assert.is_true(math.abs(bpd - nats / (6 * math.log(2))) < 1e-12)
  end)

  it("the beta option scales the KL term only", function()
    local l1, i1 = sc.losses.elbo(vae, x, { beta = 1, generator = sc.Generator(9) })
    local l3 = sc.losses.elbo(vae, x, { beta = 3, generator = sc.Generator(9) })
    assert.is_true(math.abs((l3 - l1):item() - 2 * i1.kl:mean():item()) < 1e-12)
  end)
end)

describe("VAE decoders", function()
  -- each decoder's p(x|z) sums (or integrates) to 1 over x for one dimension
  it("discretised logistic and categorical sum to 1 over the 256 values", function()
    for _, lik in ipairs { "logistic", "categorical" } do
      local vae = sc.models.VAE { x_dim = 1, latent = 2, hidden = { 8 }, likelihood = lik, dtype = "float64",
        generator = sc.Generator(1) }
      local z = sc.randn({ 1, 2 }, { generator = sc.Generator(2), dtype = "float64" })
      local p = vae:decode(z)
      local x = sc.arange(0, 256):double():reshape(256, 1)
      local pr = {}
      for key, v in pairs(p) do
        local shape = v:shape()
        shape[1] = 256
        pr[key] = v:expand(table.unpack(shape))
      end
      local total = vae:log_likelihood(x, pr):exp():sum():item()
      assert.is_true(math.abs(total - 1) < 1e-9, lik .. ": total mass " .. total)
    end
  end)

  it("the Gaussian decoders integrate to 1 and the Bernoulli one sums to 1 on {0, 1}", function()
    for _, lik in ipairs { "gaussian", "gaussian_learned", "bernoulli" } do
      local vae = sc.models.VAE { x_dim = 1, latent = 2, hidden = { 8 }, likelihood = lik, sigma = 0.5,
        dtype = "float64", generator = sc.Generator(1) }
      local p = vae:decode(sc.randn({ 1, 2 }, { generator = sc.Generator(2), dtype = "float64" }))
      local x, h
      if lik == "bernoulli" then
        x, h = sc.tensor({ { 0 }, { 1 } }, F64), 1
      else
        x, h = sc.linspace(-12, 12, 4801):double():reshape(-1, 1), 24 / 4800
      end
      local pr = {}
      for key, v in pairs(p) do pr[key] = v:expand(x:size(1), v:size(2)) end
      local total = vae:log_likelihood(x, pr):exp():sum():item() * h
      assert.is_true(math.abs(total - 1) < 1e-6, lik .. ": total mass " .. total)
    end
  end)
end)

describe("VAE bad input", function()
  local function fails_with(fn, ...)
    local ok, msg = pcall(fn)
    assert.is_false(ok)
    for _, s in ipairs { ... } do
      assert.is_truthy(msg:find(s, 1, true), ("'%s' not in: %s"):format(s, msg))
    end
  end

  it("names the function, argument and shapes", function()
    fails_with(function() sc.models.VAE { latent = 0 } end, "scorch.models.VAE", "latent", "0")
    fails_with(function() sc.models.VAE { likelihood = "poisson" } end, "likelihood", "poisson")
    fails_with(function() sc.models.VAE { arch = "conv", shape = { 1, 6, 6 } } end, "divisible by 4")
    fails_with(function() sc.models.VAE { laten = 3 } end, "unknown option 'laten'")
    local vae = sc.models.VAE { x_dim = 6, latent = 2, hidden = { 8 } }
    fails_with(function() sc.losses.elbo(vae, sc.rand(3, 5)) end, "scorch.losses.elbo", "argument x", "[N, 6]",
      "[3,5]")
    fails_with(function() sc.losses.elbo(vae, sc.rand(3, 6) * 2) end, "scorch.losses.elbo", "[0, 1]", "bernoulli")
    fails_with(function() sc.losses.iwae(vae, sc.tensor { { 0, 0, 0 / 0, 0, 0, 0 } }) end, "scorch.losses.iwae",
      "non-finite", "[1,6]")
    fails_with(function() sc.losses.iwae(vae, sc.rand(3, 6), { k = 0 }) end, "option k")
    fails_with(function() sc.losses.elbo(vae, sc.rand(3, 6), { betta = 1 }) end, "unknown option 'betta'")
    fails_with(function() vae:decode(sc.randn(3, 3)) end, "VAE.decode", "[N, 2]", "[3,3]")
    local img = sc.models.VAE { shape = { 1, 4, 4 }, arch = "conv", latent = 2, channels = { 4, 4 },
      likelihood = "logistic" }
    fails_with(function() sc.losses.elbo(img, sc.rand(2, 1, 4, 4) * 300) end, "[0, 255]", "[2,1,4,4]")
    fails_with(function() sc.losses.elbo(img, sc.rand(2, 1, 5, 4)) end, "[N, 1, 4, 4]", "[2,1,5,4]")
  end)
end)
