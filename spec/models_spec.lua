-- The image networks (scorch.models.UNet, scorch.models.NCSN): shapes,
-- argument errors, the meaning of their outputs, and gradients that reach
-- every parameter and agree with finite differences.
local sc = require "scorch"

local function max_abs(t) return t:abs():max():item() end

-- every parameter gets a gradient, and some of it is non-zero
local function all_params_learn(net, loss)
  local names, params = {}, {}
  for i, np in ipairs(net:named_parameters()) do names[i], params[i] = np[1], np[2] end
  assert.is_true(#params > 10)
  local grads = sc.grad(loss, params, { allow_unused = true })
  for i = 1, #params do
    local g = grads[i]
    assert(g ~= nil, "no gradient for " .. names[i])
    assert(max_abs(g) > 0, "zero gradient for " .. names[i])
  end
end

-- d/dx of sum(net(x) * up) at a few pixels against central differences
local function input_grad_matches(f, x, up, pixels)
  local xg = x:clone():requires_grad(true)
  local g = sc.grad((f(xg) * up):sum(), { xg })[1]:values()
  local flat = x:clone():view(-1)
  local h = 1e-6
  for _, k in ipairs(pixels) do
    local v = flat:values()[k]
    local function at(d)
      local xv = flat:clone()
      xv:narrow(1, k, 1):fill_(v + d)
      return (f(xv:view(x:shape())) * up):sum():item()
    end
    local fd = (at(h) - at(-h)) / (2 * h)
    assert(math.abs(fd - g[k]) < 1e-6 * (1 + math.abs(fd)),
      ("pixel %d: autograd %.10g, finite difference %.10g"):format(k, g[k], fd))
  end
end

describe("models.NCSN", function()
  local function net_of(precond, dtype)
    return sc.models.NCSN { channels = 4, precond = precond, dtype = dtype, generator = sc.Generator(3) }
  end

  it("maps [N, 1, 28, 28] and per-example σ to a score of the same shape", function()
    local net = net_of()
    local x = sc.randn(3, 1, 28, 28, { generator = sc.Generator(1) })
    assert.are.same({ 3, 1, 28, 28 }, net(x, sc.tensor({ 0.1, 1, 10 })):shape())
    assert.are.same({ 3, 1, 28, 28 }, net(x, 0.5):shape())
  end)

  it("rejects bad options and inputs with the argument named", function()
    assert.has_error(function() sc.models.NCSN { channels = 0 } end,
      "scorch.models.NCSN: in_channels, channels and blocks must be positive integers")
    assert.has_error(function() sc.models.NCSN { precond = "vp" } end,
      'scorch.models.NCSN: precond must be "ncsn" or "edm" (got vp)')
    local net = net_of()
    assert.has_error(function() net(sc.zeros(1, 1, 28, 28)) end, "scorch.models.NCSN: call as net(x, sigma)")
    assert.has_error(function() net(sc.zeros(1, 1, 27, 28), 1) end,
      "scorch.models.NCSN: expected input [N, 1, H, W] with H and W divisible by 4")
  end)

  -- with the same weights F, "ncsn" returns F/σ and "edm" returns
  -- −x/(σ² + σ_d²) + σ_d F/(σ √(σ² + σ_d²)) (Karras et al. 2022, Table 1)
  it("edm preconditioning is the score of c_skip x + c_out F", function()
    local a, b = net_of("ncsn", "float64"), net_of("edm", "float64")
    local x = sc.randn(3, 1, 28, 28, { generator = sc.Generator(2), dtype = "float64" })
    local sig = sc.tensor({ 0.05, 0.7, 20 }, { dtype = "float64" })
    local col = sig:view(3, 1, 1, 1)
    local F = a(x, sig) * col
    local v = col:square() + 0.25
    local want = F * (col:square() * v):rsqrt() * 0.5 - x / v
    assert.is_true(max_abs(b(x, sig) - want) < 1e-12 * (1 + max_abs(want)))
  end)

  it("sends gradients to every parameter and matches finite differences in x", function()
    for _, pre in ipairs({ "ncsn", "edm" }) do
      local net = net_of(pre, "float64")
      local x = sc.randn(2, 1, 8, 8, { generator = sc.Generator(4), dtype = "float64" })
      local sig = sc.tensor({ 0.3, 3 }, { dtype = "float64" })
      all_params_learn(net, net(x, sig):square():sum())
      local up = sc.randn(2, 1, 8, 8, { generator = sc.Generator(5), dtype = "float64" })
      input_grad_matches(function(z) return net(z, sig) end, x, up, { 1, 37, 64, 100 })
    end
  end)
end)

describe("models.UNet", function()
  local function net_of(o)
    o = o or {}
    return sc.models.UNet { channels = 8, mults = { 1, 2 }, attention = { false, true }, out = o.out,
      cond = o.cond, dtype = o.dtype, generator = sc.Generator(7) }
  end

  it("keeps the image shape for every output kind and both conditionings", function()
    local x = sc.randn(2, 1, 8, 8, { generator = sc.Generator(1) })
    for _, out in ipairs({ "eps", "score", "x0", "v" }) do
      for _, cond in ipairs({ "t", "sigma" }) do
        local net = net_of { out = out, cond = cond }
        assert.are.equal(out, net.prediction)
        assert.are.same({ 2, 1, 8, 8 }, net(x, cond == "t" and sc.tensor({ 3, 500 }) or 0.5):shape())
      end
    end
  end)

  it("rejects bad options and inputs with the argument named", function()
    assert.has_error(function() sc.models.UNet { out = "noise" } end,
      "scorch.models.UNet: out must be eps, score, x0 or v (got noise)")
    assert.has_error(function() sc.models.UNet { channels = 1.5 } end,
      "scorch.models.UNet: channels must be a positive integer")
    local net = net_of()
    assert.has_error(function() net(sc.zeros(1, 1, 8, 8)) end,
      "scorch.models.UNet: call as net(x, c) with the conditioning c")
    assert.has_error(function() net(sc.zeros(1, 1, 7, 8), 1) end,
      "scorch.models.UNet: height and width must be divisible by 2 (got 7x8)")
  end)

  it("depends on the conditioning", function()
    local net = net_of()
    local x = sc.randn(1, 1, 8, 8, { generator = sc.Generator(2) })
    assert.is_true(max_abs(net(x, 10) - net(x, 900)) > 1e-4)
  end)

  it("sends gradients to every parameter and matches finite differences in x", function()
    local net = net_of { dtype = "float64" }
    local x = sc.randn(2, 1, 8, 8, { generator = sc.Generator(4), dtype = "float64" })
    local t = sc.tensor({ 20, 700 }, { dtype = "float64" })
    all_params_learn(net, net(x, t):square():sum())
    local up = sc.randn(2, 1, 8, 8, { generator = sc.Generator(5), dtype = "float64" })
    input_grad_matches(function(z) return net(z, t) end, x, up, { 1, 30, 64, 128 })
  end)
end)
