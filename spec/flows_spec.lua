-- RealNVP and the flow layers against exact truths: inverse(forward(x)) = x,
-- the log-determinant against log|det J| of the full Jacobian computed by
-- autograd (float64, LU in Lua), the density integrating to 1 on a fine
-- grid, the logit transform's Jacobian against its derivative, and errors
-- that name the function, the argument and the shapes.
local sc = require "scorch"
local flows = require "scorch.flows"

local F64 = { dtype = "float64" }

local function max_abs(t) return t:abs():max():item() end

-- log|det A| of a square Lua matrix by LU with partial pivoting.
local function logabsdet(A)
  local n = #A
  local a = {}
  for i = 1, n do a[i] = {} for j = 1, n do a[i][j] = A[i][j] end end
  local ld = 0
  for k = 1, n do
    local p = k
    for i = k + 1, n do if math.abs(a[i][k]) > math.abs(a[p][k]) then p = i end end
    a[k], a[p] = a[p], a[k]
    local piv = a[k][k]
    assert(piv ~= 0, "singular Jacobian")
    ld = ld + math.log(math.abs(piv))
    for i = k + 1, n do
      local f = a[i][k] / piv
      for j = k + 1, n do a[i][j] = a[i][j] - f * a[k][j] end
    end
  end
  return ld
end

-- The Jacobian ∂z/∂x of one example (x [1, ...]) as a Lua matrix, one
-- backward pass per output coordinate.
local function jacobian(flow, x)
  local xl = x:clone():requires_grad(true)
  local z = flow:forward(xl)
  local d = z:size(2)
  local J = {}
  for j = 1, d do
    local g = sc.grad(z:narrow(2, j, 1):sum(), { xl }, { retain_graph = true })[1]
    J[j] = g:reshape(-1):totable()
  end
  return J
end

-- Makes every parameter non-trivial, so couplings are far from the identity.
local function perturb(flow, gen, scale)
  sc.no_grad(function()
    for _, p in ipairs(flow:parameters()) do
      p:copy_(p + sc.randn(p:shape(), { generator = gen, dtype = p:dtype() }) * scale)
    end
  end)
end

describe("flows.RealNVP on vectors", function()
  it("inverts its forward map to 1e-12 in float64 and 1e-5 in float32", function()
    for _, case in ipairs { { "float64", 1e-12 }, { "float32", 1e-5 } } do
      local g = sc.Generator(1)
      local flow = sc.models.RealNVP { dim = 4, couplings = 6, dtype = case[1], generator = g }
      local x = sc.randn({ 64, 4 }, { generator = g, dtype = case[1] })
      flow:forward(x)                     -- ActNorm initialises on this batch
      perturb(flow, g, 0.1)
      local z = flow:forward(x)
      assert.is_true(max_abs(z - x) > 0.1, "the flow should not be the identity")
      local err = max_abs(flow:inverse(z) - x)
      assert.is_true(err < case[2], case[1] .. ": round trip error " .. err)
    end
  end)

  it("reports log|det J| of the autograd Jacobian (float64, D = 2 and 6)", function()
    for _, d in ipairs { 2, 6 } do
      local g = sc.Generator(2 + d)
      local flow = sc.models.RealNVP { dim = d, couplings = 5, dtype = "float64", generator = g, hidden = { 16, 16 } }
      flow:forward(sc.randn({ 32, d }, { generator = g, dtype = "float64" }))
      perturb(flow, g, 0.3)
      for _ = 1, 3 do
        local x = sc.randn({ 1, d }, { generator = g, dtype = "float64" })
        local _, ld = flow:forward(x)
        local want = logabsdet(jacobian(flow, x))
        assert.is_true(math.abs(ld:item() - want) < 1e-10,
          ("D=%d: logdet %.15g, log|det J| %.15g"):format(d, ld:item(), want))
        assert.is_true(math.abs(want) > 1e-2, "a trivial Jacobian tests nothing")
      end
    end
  end)

  it("has a density that integrates to 1 over a fine 2-D grid (within 1e-3)", function()
    local g = sc.Generator(7)
    local flow = sc.models.RealNVP { dim = 2, couplings = 4, dtype = "float64", generator = g, hidden = { 32, 32 } }
    flow:forward(sc.randn({ 256, 2 }, { generator = g, dtype = "float64" }) * 0.8)
    perturb(flow, g, 0.05)
    local L, m = 9.0, 601
    local h = 2 * L / (m - 1)
    local ax = sc.linspace(-L, L, m):double()
    local xs = ax:reshape(m, 1):expand(m, m):reshape(-1, 1)
    local ys = ax:reshape(1, m):expand(m, m):reshape(-1, 1)
    local pts = sc.cat({ xs, ys }, 2)
    local lp = sc.no_grad(function() return flow:log_prob(pts) end)
    local total = lp:exp():sum():item() * h * h
    assert.is_true(math.abs(total - 1) < 1e-3, "integral " .. total)
    -- not a standard normal: the check would be vacuous otherwise
    local gauss = flows.standard_normal_log_prob(pts)
    assert.is_true(max_abs(lp - gauss) > 0.1)
  end)

  it("samples through the inverse: forward of a sample gives back the drawn latent", function()
    local flow = sc.models.RealNVP { dim = 2, couplings = 4, dtype = "float64", generator = sc.Generator(3) }
    flow:forward(sc.randn({ 16, 2 }, { generator = sc.Generator(1), dtype = "float64" }) * 2)  -- ActNorm init
    local a = flow:sample(50, { generator = sc.Generator(9) })
    local z = sc.randn({ 50, 2 }, { generator = sc.Generator(9), dtype = "float64" })
    assert.is_true(max_abs(flow:forward(a) - z) < 1e-12)
    assert.are.same({ 50, 2 }, a:shape())
  end)

  it("learns: a few Adam steps on 8 Gaussians lower the NLL", function()
    local g = sc.Generator(4)
    local data = sc.data.eight_gaussians {}
    local flow = sc.models.RealNVP { dim = 2, couplings = 4, hidden = { 32, 32 }, generator = g }
    local opt = sc.optim.Adam(flow:parameters(), { lr = 3e-3 })
    local x = data:sample(512, { generator = g })
    local first
    for i = 1, 60 do
      local loss = -flow:log_prob(x):mean()
      if i == 1 then first = loss:item() end
      opt:zero_grad(); loss:backward(); opt:step()
    end
    local last = -flow:log_prob(x):mean():item()
    assert.is_true(last < first - 0.5, ("NLL %.3f -> %.3f"):format(first, last))
  end)
end)

describe("flows.RealNVP on images", function()
  it("inverts its multi-scale map (1x4x4 float64 to 1e-12, 1x8x8 float32 to 1e-5)", function()
    for _, case in ipairs { { { 1, 4, 4 }, "float64", 1e-12, 2 }, { { 1, 8, 8 }, "float32", 1e-5, 3 } } do
      local g = sc.Generator(5)
      local s = case[1]
      local flow = sc.models.RealNVP { shape = s, scales = case[4], hidden = 8, dtype = case[2], generator = g }
      local x = sc.randn({ 3, s[1], s[2], s[3] }, { generator = g, dtype = case[2] })
      flow:forward(x)
      perturb(flow, g, 0.05)
      local z = flow:forward(x)
      assert.are.same({ 3, s[1] * s[2] * s[3] }, z:shape())
      local err = max_abs(flow:inverse(z) - x)
      assert.is_true(err < case[3], case[2] .. ": round trip error " .. err)
    end
  end)

  it("reports log|det J| of the autograd Jacobian on a 1x4x4 image (float64)", function()
    local g = sc.Generator(6)
    local flow = sc.models.RealNVP { shape = { 1, 4, 4 }, scales = 2, hidden = 8, dtype = "float64", generator = g }
    flow:forward(sc.randn({ 8, 1, 4, 4 }, { generator = g, dtype = "float64" }))
    perturb(flow, g, 0.2)
    local x = sc.randn({ 1, 1, 4, 4 }, { generator = g, dtype = "float64" })
    local _, ld = flow:forward(x)
    local want = logabsdet(jacobian(flow, x))
    assert.is_true(math.abs(ld:item() - want) < 1e-10, ("logdet %.15g, log|det J| %.15g"):format(ld:item(), want))
    assert.is_true(math.abs(want) > 1e-2)
  end)

  it("squeeze moves each 2x2 block into channels and unsqueeze undoes it", function()
    local x = sc.arange(0, 32):double():reshape(1, 2, 4, 4)
    local y = flows.squeeze(x)
    assert.are.same({ 1, 8, 2, 2 }, y:shape())
    -- channel 1 of block (1,1) holds pixels (1,1),(1,2),(2,1),(2,2) of channel 1: 0, 1, 4, 5
    local v = y:select(1, 1):narrow(2, 1, 1):narrow(3, 1, 1):reshape(-1):totable()
    assert.are.same({ 0, 1, 4, 5, 16, 17, 20, 21 }, v)
    assert.are.equal(0, max_abs(flows.unsqueeze(y) - x))
  end)
end)

describe("flows image helpers", function()
  it("dequantises 8-bit values into [x/256, (x+1)/256)", function()
    local x = sc.tensor({ { 0, 17, 255 } }, F64)
    local u = flows.dequantize(x, { generator = sc.Generator(1) })
    local k = (u * 256 - x):totable()[1]
    for _, v in ipairs(k) do assert.is_true(v >= 0 and v < 1) end
  end)

  it("gives the logit transform the log-Jacobian of its derivative, and inverts it", function()
    local u = sc.rand({ 4, 6 }, { generator = sc.Generator(2), dtype = "float64" })
    local ul = u:clone():requires_grad(true)
    local y, ld = flows.logit_transform(ul)
    local dy = sc.grad(y:sum(), { ul })[1]  -- elementwise: the diagonal of J
    local want = dy:abs():log():sum(2)
    assert.is_true(max_abs(ld - want) < 1e-12)
    assert.is_true(max_abs(flows.logit_inverse(y:detach()) - u) < 1e-12)
  end)

  it("reports 8 bits/dim for the uniform density on [0, 1)^D", function()
    local bpd = flows.bits_per_dim(sc.zeros({ 3 }, F64), 784)
    assert.is_true(max_abs(bpd - 8) < 1e-12)
  end)
end)

describe("flows bad input", function()
  local function fails_with(fn, ...)
    local ok, msg = pcall(fn)
    assert.is_false(ok)
    for _, s in ipairs { ... } do
      assert.is_truthy(msg:find(s, 1, true), ("'%s' not in: %s"):format(s, msg))
    end
  end

  it("names the function, argument and shapes", function()
    fails_with(function() sc.models.RealNVP { dim = 3 } end, "scorch.models.RealNVP", "dim", "even", "3")
    fails_with(function() flows.AffineCoupling(5) end, "scorch.flows.AffineCoupling", "dim", "5")
    local flow = sc.models.RealNVP { dim = 2, couplings = 2 }
    fails_with(function() flow:inverse(sc.randn(4, 3)) end, "RealNVP.inverse", "argument z", "[N, 2]", "[4,3]")
    fails_with(function() flow:forward(sc.randn(4, 3)) end, "RealNVP.forward", "argument x", "[N, 2]", "[4,3]")
    fails_with(function() flow:log_prob(sc.tensor { { 0, 0 / 0 } }) end, "RealNVP.forward", "x", "[1,2]",
      "non-finite")
    fails_with(function() flow:forward(sc.tensor { { math.huge, 0 } }) end, "non-finite")
    fails_with(function() flow:sample(0) end, "RealNVP.sample", "n")
    fails_with(function() flow:sample(2, { seed = 1 }) end, "unknown option 'seed'")
    fails_with(function() sc.models.RealNVP { dim = 2, widht = 3 } end, "unknown option 'widht'")
    local img = sc.models.RealNVP { shape = { 1, 4, 4 }, hidden = 4 }
    fails_with(function() img:forward(sc.randn(2, 1, 4, 5)) end, "RealNVP.forward", "[N, 1, 4, 4]", "[2,1,4,5]")
    fails_with(function() sc.models.RealNVP { shape = { 1, 6, 6 }, scales = 3 } end, "divisible")
    fails_with(function() flows.dequantize(sc.tensor { 0, 256 }) end, "scorch.flows.dequantize", "0..255", "[2]")
    fails_with(function() flows.squeeze(sc.randn(1, 1, 3, 4)) end, "scorch.flows.squeeze", "[1,1,3,4]")
  end)
end)
