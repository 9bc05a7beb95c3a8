-- Contrastive divergence against a model whose partition function is known:
-- a diagonal Gaussian energy E(x) = ½ Σ p_i (x_i − μ_i)² with learnable μ and
-- log p.  Its NLL gradient is closed form, CD with exact model samples must
-- match it and recover the maximum-likelihood fit (sample mean and variance);
-- the Langevin negatives reach the unadjusted chain's exact stationary
-- variance; the replay buffer keeps and returns chains.
local sc = require "scorch"
local nn = sc.nn

local GaussEnergy = nn.Module:extend("GaussEnergy")
function GaussEnergy:init(d)
  self.mu = nn.init.parameter({ d }, "float64")
  self.log_prec = nn.init.parameter({ d }, "float64")
end
function GaussEnergy:forward(x)
  return ((x - self.mu):square() * self.log_prec:exp()):sum(2) * 0.5
end
-- exact samples of the current model: μ + z/√p
function GaussEnergy:sample(n, gen)
  return sc.no_grad(function()
    local z = sc.randn({ n, self.mu:size(1) }, { generator = gen, dtype = "float64" })
    return z * (self.log_prec * -0.5):exp() + self.mu
  end)
end

local function data(n, gen)
  local m, s = sc.tensor({ 1.5, -0.5 }, { dtype = "float64" }), sc.tensor({ 0.7, 2.0 }, { dtype = "float64" })
  return sc.randn({ n, 2 }, { generator = gen, dtype = "float64" }) * s + m
end

describe("contrastive divergence on a Gaussian energy", function()
  it("with exact negatives, its gradient is the NLL gradient (closed form)", function()
    local g = sc.Generator(1)
    local e = GaussEnergy(2)
    sc.no_grad(function()
      e.mu:copy_(sc.tensor({ 0.3, 0.2 }, { dtype = "float64" }))
      e.log_prec:copy_(sc.tensor({ 0.1, -0.4 }, { dtype = "float64" }))
    end)
    local x = data(4000, g)
    local loss = sc.losses.cd(e, x, e:sample(400000, g))
    local gmu, glp = table.unpack(sc.grad(loss, { e.mu, e.log_prec }))
    -- NLL(θ) = mean E(x) + log Z, log Z = Σ (½ log 2π − ½ log p_i):
    -- ∂/∂μ = −p (x̄ − μ); ∂/∂ log p = ½ p mean (x − μ)² − ½
    local p = e.log_prec:exp()
    local d = x - e.mu
    local want_mu = -(p * d:mean(1))
    local want_lp = p * d:square():mean(1) * 0.5 - 0.5
    assert.is_true((gmu - want_mu):abs():max():item() < 0.01, tostring(gmu) .. " vs " .. tostring(want_mu))
    assert.is_true((glp - want_lp):abs():max():item() < 0.01, tostring(glp) .. " vs " .. tostring(want_lp))
  end)

  it("trained with exact negatives, recovers the maximum-likelihood fit", function()
    local g = sc.Generator(2)
    local e = GaussEnergy(2)
    local x = data(2000, g)
    local opt = sc.optim.Adam(e:parameters(), { lr = 0.05 })
    for step = 1, 400 do
      if step == 300 then opt.lr = 0.01 end
      local loss = sc.losses.cd(e, x, e:sample(4000, g))
      opt:zero_grad(); loss:backward(); opt:step()
    end
    local mean = x:mean(1)
    local var = (x - mean):square():mean(1)          -- the ML (biased) variance
    local prec = e.log_prec:exp()
    assert.is_true((e.mu - mean):abs():max():item() < 0.03, tostring(e.mu) .. " vs " .. tostring(mean))
    assert.is_true(((prec * var) - 1):abs():max():item() < 0.05, tostring(1 / prec) .. " vs " .. tostring(var))
  end)

  it("the energy-magnitude regulariser adds α(mean E⁺² + mean E⁻²)", function()
    local e = GaussEnergy(2)
    local x, xn = data(10, sc.Generator(3)), data(12, sc.Generator(4))
    local l0, i0 = sc.losses.cd(e, x, xn)
    local l1 = sc.losses.cd(e, x, xn, { alpha = 0.5 })
    local want = 0.5 * (e(x):square():mean():item() + e(xn):square():mean():item())
    assert.is_true(math.abs((l1 - l0):item() - want) < 1e-12)
    assert.is_true(math.abs(l0:item() - (i0.e_pos - i0.e_neg)) < 1e-12)
  end)
end)

describe("Langevin negatives", function()
  it("reach the unadjusted chain's stationary variance on a Gaussian (closed form)", function()
    -- target N(0, s²): x' = (1 − ε/(2s²)) x + √ε z has variance ε / (1 − (1 − ε/(2s²))²)
    local e = GaussEnergy(2)
    sc.no_grad(function() e.log_prec:fill_(-2 * math.log(1.5)) end)  -- s = 1.5
    local eps = 0.5
    local a = 1 - eps / (2 * 1.5 ^ 2)
    local want = eps / (1 - a * a)
    local x = sc.zeros({ 20000, 2 }, { dtype = "float64" })
    local xn, info = sc.losses.langevin_negatives(e, x, { steps = 60, step_size = eps, generator = sc.Generator(5) })
    local var = xn:square():mean():item()
    assert.is_true(math.abs(var / want - 1) < 0.03, ("variance %.4f, ULA closed form %.4f (target %.4f)")
      :format(var, want, 1.5 ^ 2))
    assert.are.equal(60, info.steps)
  end)

  it("clip bounds each gradient element", function()
    local e = GaussEnergy(1)
    local x0 = sc.full({ 4, 1 }, 100.0):double()
    local xn = sc.losses.langevin_negatives(e, x0, { steps = 1, step_size = 2, noise = 0, clip = 0.01 })
    assert.is_true((xn - 99.99):abs():max():item() < 1e-9)
  end)

  it("names function, argument and shapes on bad input", function()
    local e = GaussEnergy(2)
    local ok, msg = pcall(sc.losses.langevin_negatives, e, sc.randn(3, 2):double(), {})
    assert.is_false(ok); assert.truthy(msg:find("step_size", 1, true))
    ok, msg = pcall(sc.losses.cd, e, sc.randn(3, 2):double(), sc.randn(3, 3):double())
    assert.is_false(ok); assert.truthy(msg:find("scorch.losses.cd", 1, true) and msg:find("[3,3]", 1, true), msg)
    ok, msg = pcall(sc.losses.cd, e, sc.tensor({ { 0 / 0, 1 } }, { dtype = "float64" }), sc.randn(3, 2):double())
    assert.is_false(ok); assert.truthy(msg:find("x_pos", 1, true) and msg:find("non-finite", 1, true), msg)
  end)
end)

describe("replay buffer", function()
  it("starts fresh, then returns stored chains with the reinit fraction fresh", function()
    local buf = sc.losses.ReplayBuffer { size = 8, reinit = 0.25, generator = sc.Generator(1),
      init = function(n) return sc.full({ n, 1 }, -1.0) end }
    assert.are.equal(-4, buf:sample(4):sum():item())          -- empty: all fresh
    buf:push(sc.full({ 10, 1 }, 5.0))                         -- wraps around the 8 rows
    local x = buf:sample(8)
    local fresh = x:lt(0):sum():item()
    assert.are.equal(2, fresh)
    assert.are.equal(6 * 5 - 2, x:sum():item())
  end)
end)
