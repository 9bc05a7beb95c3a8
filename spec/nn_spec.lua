-- sc.nn: module mechanics, state dicts, initialisation distributions,
-- Dropout, LayerNorm, Embedding and gradchecks.  PyTorch golden values for
-- the MLP and LayerNorm are in golden_spec.lua.
local sc = require "scorch"
local nn = sc.nn

local function f64(t) return sc.tensor(t, { dtype = "float64" }) end

local function assert_values(got, want, tol, what)
  local g = got:contiguous():values()
  assert.are.equal(#want, #g, (what or "") .. ": number of elements")
  for i = 1, #want do
    if math.abs(g[i] - want[i]) > tol * (1 + math.abs(want[i])) then
      error(("%s: element %d is %.12g, expected %.12g"):format(what or "", i, g[i], want[i]), 2)
    end
  end
end

-- A small model with an own parameter, a child and a nested Sequential.
local Net = nn.Module:extend("Net")
function Net:init(opts)
  self.scale = sc.ones(2, opts):requires_grad(true)
  self.embed = nn.Linear(3, 4, opts)
  self.net = nn.Sequential { nn.Linear(4, 5, opts), nn.SiLU(), nn.Linear(5, 2, opts) }
  self.note = "not a parameter"
  self.constant = sc.zeros(2) -- no grad: a plain field
end
function Net:forward(x)
  return self.net(self.embed(x)) * self.scale
end

describe("nn.Module", function()
  it("lists parameters in registration order, own first, depth first", function()
    local m = Net()
    local names = {}
    for i, np in ipairs(m:named_parameters()) do names[i] = np[1] end
    assert.are.same({ "scale", "embed.weight", "embed.bias", "net.1.weight", "net.1.bias",
      "net.3.weight", "net.3.bias" }, names)
    local ps = m:parameters()
    assert.are.equal(7, #ps)
    assert.are.equal(m.embed.weight, ps[2])
    assert.are.equal(m.net[3].bias, ps[7])
    assert.are.equal(2 + 12 + 4 + 20 + 5 + 10 + 2, m:num_parameters())
    for _, p in ipairs(ps) do
      assert.is_true(p:requires_grad())
      assert.is_true(p:is_leaf())
      assert.are.equal("float32", p:dtype())
    end
  end)

  it("lists a shared parameter once", function()
    local lin = nn.Linear(2, 2)
    local seq = nn.Sequential(lin, nn.Tanh(), lin)
    assert.are.equal(2, #seq:parameters())
  end)

  it("state_dict has dotted names and round-trips into another model", function()
    sc.manual_seed(1)
    local a = Net()
    sc.manual_seed(2)
    local b = Net()
    local x = sc.randn(6, 3)
    assert.is_false(a(x):values()[1] == b(x):values()[1])
    local sd = a:state_dict()
    local keys = {}
    for k, v in pairs(sd) do
      keys[#keys + 1] = k
      assert.is_false(v:requires_grad())
    end
    table.sort(keys)
    assert.are.same({ "embed.bias", "embed.weight", "net.1.bias", "net.1.weight",
      "net.3.bias", "net.3.weight", "scale" }, keys)
    b:load_state_dict(sd)
    assert.are.same(a(x):values(), b(x):values())
    -- values were copied, not aliased
    sc.no_grad(function() a.embed.weight:fill_(0) end)
    assert.are_not.same(a.embed.weight:values(), b.embed.weight:values())
    assert.is_true(b.embed.weight:requires_grad())
  end)

  it("load_state_dict names a missing, unexpected or mis-shaped key and changes nothing", function()
    local m = Net()
    local before = m.net[1].weight:clone():values()
    local sd = Net():state_dict()
    sd["net.3.bias"] = nil
    assert.has_error(function() m:load_state_dict(sd) end,
      "scorch.nn.load_state_dict: missing key 'net.3.bias'")
    sd = Net():state_dict()
    sd["net.4.weight"] = sc.zeros(1)
    assert.has_error(function() m:load_state_dict(sd) end,
      "scorch.nn.load_state_dict: unexpected key 'net.4.weight'")
    sd = Net():state_dict()
    sd["embed.weight"] = sc.zeros(3, 4)
    assert.has_error(function() m:load_state_dict(sd) end,
      "scorch.nn.load_state_dict: key 'embed.weight' has shape [3,4], the module expects [4,3]")
    assert.are.same(before, m.net[1].weight:values())
    -- strict = false skips missing and unexpected keys
    sd = { ["net.1.weight"] = sc.ones(5, 4), extra = sc.zeros(1) }
    m:load_state_dict(sd, { strict = false })
    assert.are.same(sc.ones(5, 4):values(), m.net[1].weight:values())
  end)

  it("saves and loads buffers with the parameters", function()
    local B = nn.Module:extend("B")
    function B:init()
      self.lin = nn.Linear(1, 1)
      self:register_buffer("stat", sc.tensor({ 1, 2 }))
    end
    local m = B()
    assert.are.equal(2, #m:parameters())
    assert.are.equal(1, #m:buffers())
    local sd = m:state_dict()
    assert.is_not_nil(sd.stat)
    sd.stat = sc.tensor({ 5, 6 })
    m:load_state_dict(sd)
    assert.are.same({ 5, 6 }, m.stat:values())
  end)

  it("train() and eval() set the flag on every module", function()
    local m = Net()
    assert.is_true(m.training and m.net.training and m.net[2].training)
    assert.are.equal(m, m:eval())
    for _, sub in ipairs(m:modules()) do assert.is_false(sub.training) end
    assert.are.equal(6, #m:modules())
    m:train()
    for _, sub in ipairs(m:modules()) do assert.is_true(sub.training) end
  end)

  it("zero_grad clears every parameter's gradient", function()
    local m = Net()
    m(sc.randn(2, 3)):sum():backward()
    assert.is_not_nil(m.net[1].weight.grad)
    m:zero_grad()
    for _, p in ipairs(m:parameters()) do assert.is_nil(p.grad) end
  end)

  it("converts dtype in place with double() and float()", function()
    local m = Net()
    local w = m.embed.weight:values()
    m:double()
    for _, p in ipairs(m:parameters()) do
      assert.are.equal("float64", p:dtype())
      assert.is_true(p:requires_grad() and p:is_leaf())
    end
    assert_values(m.embed.weight, w, 0, "weight kept")
    assert.are.equal("float64", m(sc.randn(2, 3, { dtype = "float64" })):dtype())
    m:float()
    assert.are.equal("float32", m.net[3].weight:dtype())
    local d = Net({ dtype = "float64" })
    assert.are.equal("float64", d.net[1].bias:dtype())
  end)

  it("prints its submodules", function()
    local s = tostring(nn.Sequential { nn.Linear(2, 3), nn.SiLU(), nn.Sequential(nn.Tanh()) })
    assert.are.equal(table.concat({
      "Sequential(",
      "  (1): Linear(in_features=2, out_features=3, bias=true)",
      "  (2): SiLU()",
      "  (3): Sequential(",
      "    (1): Tanh()",
      "  )",
      ")" }, "\n"), s)
  end)

  it("rejects bad arguments", function()
    assert.has_error(function() nn.Linear(-1, 2) end)
    assert.has_error(function() nn.Linear(2.5, 2) end)
    assert.has_error(function() nn.Sequential { 1, 2 } end)
    assert.has_error(function() nn.LayerNorm("x") end)
    assert.has_error(function() nn.Dropout(1.5) end)
    assert.has_error(function() nn.Embedding(0, 3) end)
    assert.has_error(function() nn.Module()(1) end, "scorch.nn: Module has no forward method")
    assert.has_error(function() nn.Linear(1, 1):register_parameter("a.b", sc.zeros(1)) end)
    assert.has_error(function() nn.Linear(1, 1):load_state_dict("x") end)
  end)

  it("loading the library defines no globals", function()
    local before = {}
    for k in pairs(_G) do before[k] = true end
    for name in pairs(package.loaded) do
      if name:match("^scorch%.nn") or name:match("^scorch%.optim") then package.loaded[name] = nil end
    end
    require "scorch.nn"
    require "scorch.optim"
    for k in pairs(_G) do assert.is_true(before[k], "new global " .. tostring(k)) end
  end)
end)

describe("nn.Linear", function()
  it("computes x Wᵀ + b, with or without bias, for 1-D and batched inputs", function()
    local lin = nn.Linear(3, 2, { dtype = "float64" })
    lin:load_state_dict { weight = f64 { { 1, 2, 3 }, { -1, 0, 1 } }, bias = f64 { 0.5, -0.5 } }
    assert_values(lin(f64 { { 1, 1, 1 }, { 2, 0, -1 } }), { 6.5, -0.5, -0.5, -3.5 }, 1e-15, "2-D")
    assert_values(lin(f64 { 1, 1, 1 }), { 6.5, -0.5 }, 1e-15, "1-D")
    assert.are.same({ 4, 5, 2 }, lin(sc.randn(4, 5, 3, { dtype = "float64" })):shape())
    local nob = nn.Linear(3, 2, { bias = false })
    assert.is_nil(nob.bias)
    assert.are.equal(1, #nob:parameters())
  end)

  -- U(−1/√fan_in, 1/√fan_in): mean 0, variance (1/fan_in)/3, flat histogram.
  local function check_uniform(t, bound, what)
    local v = t:values()
    local n, sum, sq = #v, 0, 0
    local bins = {}
    for i = 1, 10 do bins[i] = 0 end
    local outside = 0
    for _, x in ipairs(v) do
      if math.abs(x) > bound then outside = outside + 1 end
      sum, sq = sum + x, sq + x * x
      local b = math.min(10, math.floor((x + bound) / (2 * bound) * 10) + 1)
      bins[b] = bins[b] + 1
    end
    assert.are.equal(0, outside, what .. ": values outside the bound")
    local mean, var = sum / n, sq / n - (sum / n) ^ 2
    local want_var = bound * bound / 3
    assert.is_true(math.abs(mean) < 5 * math.sqrt(want_var / n), what .. ": mean " .. mean)
    -- 5 standard deviations of each estimate: var(x²)/E[x²]² = 4/5 for a
    -- uniform, and a bin count is binomial(n, 0.1)
    assert.is_true(math.abs(var / want_var - 1) < 5 * math.sqrt(0.8 / n),
      what .. ": variance ratio " .. var / want_var)
    for i = 1, 10 do
      assert.is_true(math.abs(bins[i] / n - 0.1) < 5 * math.sqrt(0.09 / n), what .. ": bin " .. i)
    end
  end

  it("initialises like PyTorch: weight and bias ~ U(±1/√fan_in)", function()
    sc.manual_seed(0)
    local lin = nn.Linear(1000, 400)
    check_uniform(lin.weight, 1 / math.sqrt(1000), "weight")
    local big = nn.Linear(16, 100000)
    check_uniform(big.bias, 1 / math.sqrt(16), "bias")
  end)

  it("draws from a given generator, reproducibly", function()
    local a = nn.Linear(4, 3, { generator = sc.Generator(7) })
    local b = nn.Linear(4, 3, { generator = sc.Generator(7) })
    assert.are.same(a.weight:values(), b.weight:values())
    assert.are.same(a.bias:values(), b.bias:values())
    sc.manual_seed(7)
    local c = nn.Linear(4, 3)
    sc.manual_seed(7)
    local d = nn.Linear(4, 3)
    assert.are.same(c.weight:values(), d.weight:values())
  end)
end)

describe("nn.init", function()
  it("kaiming_uniform_ and xavier_uniform_ use PyTorch's bounds", function()
    local init = nn.init
    sc.manual_seed(3)
    local w = sc.empty(300, 500):requires_grad(true)
    init.kaiming_uniform_(w) -- a = 0, leaky_relu: gain √2, bound √(6/fan_in)
    local vals = w:values()
    local bound, mx = math.sqrt(6 / 500), 0
    for _, x in ipairs(vals) do mx = math.max(mx, math.abs(x)) end
    assert.is_true(mx <= bound and mx > 0.99 * bound)
    init.xavier_uniform_(w, { gain = 2 })
    bound, mx = 2 * math.sqrt(6 / 800), 0
    for _, x in ipairs(w:values()) do mx = math.max(mx, math.abs(x)) end
    assert.is_true(mx <= bound and mx > 0.99 * bound)
    init.kaiming_uniform_(w, { mode = "fan_out", nonlinearity = "relu" })
    bound, mx = math.sqrt(2) * math.sqrt(3 / 300), 0
    for _, x in ipairs(w:values()) do mx = math.max(mx, math.abs(x)) end
    assert.is_true(mx <= bound and mx > 0.99 * bound)
  end)

  it("normal_, zeros_, constant_ and fan computation", function()
    local init = nn.init
    local w = sc.empty(200, 300)
    init.normal_(w, 1, 2, { generator = sc.Generator(1) })
    local v = w:values()
    local s, q = 0, 0
    for _, x in ipairs(v) do s, q = s + x, q + x * x end
    local mean = s / #v
    assert.is_true(math.abs(mean - 1) < 0.05)
    assert.is_true(math.abs(math.sqrt(q / #v - mean * mean) - 2) < 0.05)
    init.zeros_(w)
    assert.are.equal(0, w:abs():sum():item())
    init.constant_(w, 0.5)
    assert.are.equal(0.5 * 60000, w:sum():item())
    local fi, fo = init.calculate_fan_in_and_fan_out(sc.empty(8, 4, 3, 3))
    assert.are.same({ 36, 72 }, { fi, fo })
    assert.are.equal(5 / 3, init.calculate_gain("tanh"))
    assert.has_error(function() init.calculate_fan_in_and_fan_out(sc.empty(3)) end)
  end)
end)

describe("nn.Dropout", function()
  it("zeroes a fraction p and scales the rest by 1/(1−p) in training; identity in eval", function()
    sc.manual_seed(5)
    local p = 0.3
    local d = nn.Dropout(p)
    local x = sc.ones(200000)
    local v = d(x):values()
    local zeros, wrong = 0, 0
    for _, y in ipairs(v) do
      if y == 0 then
        zeros = zeros + 1
      elseif math.abs(y - 1 / (1 - p)) > 1e-6 then
        wrong = wrong + 1
      end
    end
    assert.are.equal(0, wrong, "kept values not scaled by 1/(1-p)")
    -- binomial: sd of the fraction is √(p(1−p)/n) ≈ 0.001
    assert.is_true(math.abs(zeros / #v - p) < 0.005, "zeroed fraction " .. zeros / #v)
    d:eval()
    assert.are.equal(x, d(x))
    d:train()
    assert.are.equal(0, nn.Dropout(1)(x):sum():item())
  end)

  it("passes gradients through the kept elements only", function()
    local d = nn.Dropout(0.5, { generator = sc.Generator(9) })
    local x = sc.ones(1000, { dtype = "float64" }):requires_grad(true)
    local y = d(x)
    y:sum():backward()
    assert.are.same(y:values(), x.grad:values())
  end)
end)

describe("nn.LayerNorm", function()
  it("matches a hand computation (biased variance, eps 1e-5)", function()
    local ln = nn.LayerNorm(4, { dtype = "float64" })
    local rows = { { 1, 2, 3, 4 }, { 2, 2, 2, 6 } }
    local want = {}
    for _, r in ipairs(rows) do
      local m = (r[1] + r[2] + r[3] + r[4]) / 4
      local var = 0
      for _, x in ipairs(r) do var = var + (x - m) ^ 2 / 4 end
      for _, x in ipairs(r) do want[#want + 1] = (x - m) / math.sqrt(var + 1e-5) end
    end
    assert_values(ln(f64(rows)), want, 1e-12, "default affine")
    -- with weight and bias
    ln:load_state_dict { weight = f64 { 1, 2, 3, 4 }, bias = f64 { 0, 1, 0, -1 } }
    local y = ln(f64(rows)):values()
    for i = 1, 8 do
      local j = (i - 1) % 4 + 1
      local w, b = ({ 1, 2, 3, 4 })[j], ({ 0, 1, 0, -1 })[j]
      assert.is_true(math.abs(y[i] - (want[i] * w + b)) < 1e-12)
    end
    -- without affine parameters
    local plain = nn.LayerNorm({ 4 }, { elementwise_affine = false, eps = 0.5 })
    assert.are.equal(0, #plain:parameters())
    local r = plain(sc.tensor({ { 0, 0, 2, 2 } })):values()
    assert.is_true(math.abs(r[1] + 1 / math.sqrt(1.5)) < 1e-6)
  end)

  it("passes gradcheck (first and second order) for input, weight and bias", function()
    sc.manual_seed(11)
    local ln = nn.LayerNorm({ 2, 3 }, { dtype = "float64" })
    sc.no_grad(function()
      ln.weight:normal_(1, 0.3)
      ln.bias:normal_(0, 0.3)
    end)
    local x = sc.randn(4, 2, 3, { dtype = "float64" }):requires_grad(true)
    local ok, msg = sc.gradcheck(function(xx, w, b)
      local m = nn.LayerNorm({ 2, 3 }, { dtype = "float64" })
      m.weight, m.bias = w, b
      return m(xx)
    end, { x, ln.weight, ln.bias })
    assert.is_true(ok, msg)
  end)
end)

describe("nn.Embedding", function()
  it("looks up rows by 1-based index from a table or a tensor of any shape", function()
    local e = nn.Embedding(5, 3, { dtype = "float64" })
    local W = e.weight:values()
    local function row(i) return { W[3 * i - 2], W[3 * i - 1], W[3 * i] } end
    local y = e({ 2, 5, 2 }):values()
    local want = {}
    for _, i in ipairs { 2, 5, 2 } do for _, v in ipairs(row(i)) do want[#want + 1] = v end end
    assert.are.same(want, y)
    local y2 = e(sc.tensor({ { 2, 5 }, { 2, 1 } }))
    assert.are.same({ 2, 2, 3 }, y2:shape())
    local v2 = y2:values()
    assert.are.same(row(1), { v2[10], v2[11], v2[12] }) -- element (2, 2) is index 1
    assert.has_error(function() e({ 6 }) end)
    assert.has_error(function() e({ 0 }) end)
  end)

  it("accumulates gradients over repeated indices", function()
    local e = nn.Embedding(4, 2, { dtype = "float64" })
    local y = e({ 2, 4, 2, 2 })
    ;(y * f64 { { 1, 10 }, { 2, 20 }, { 3, 30 }, { 4, 40 } }):sum():backward()
    assert.are.same({ 0, 0, 8, 80, 0, 0, 2, 20 }, e.weight.grad:values())
  end)

  it("initialises N(0, 1)", function()
    sc.manual_seed(4)
    local v = nn.Embedding(1000, 100).weight:values()
    local s, q = 0, 0
    for _, x in ipairs(v) do s, q = s + x, q + x * x end
    assert.is_true(math.abs(s / #v) < 0.01)
    assert.is_true(math.abs(q / #v - 1) < 0.02)
  end)
end)

describe("activations and MLP", function()
  it("activation modules apply the elementwise ops", function()
    local x = f64 { -2, -0.5, 0, 0.5, 3 }
    assert.are.same(x:silu():values(), nn.SiLU()(x):values())
    assert.are.same(x:relu():values(), nn.ReLU()(x):values())
    assert.are.same(x:tanh():values(), nn.Tanh()(x):values())
    assert.are.same(x:sigmoid():values(), nn.Sigmoid()(x):values())
    assert.are.same(x:softplus():values(), nn.Softplus()(x):values())
    assert_values(nn.Softplus { beta = 2 }(x), ((x * 2):softplus() / 2):values(), 1e-15, "beta")
    -- above the threshold softplus is the identity
    assert_values(nn.Softplus { beta = 2, threshold = 1 }(x), { math.log(1 + math.exp(-4)) / 2,
      math.log(1 + math.exp(-1)) / 2, math.log(2) / 2, math.log(1 + math.exp(1)) / 2, 3 }, 1e-15, "threshold")
    assert_values(nn.LeakyReLU(0.1)(x), { -0.2, -0.05, 0, 0.5, 3 }, 1e-15, "leaky")
    local g = nn.GELU()(x):values()
    for i, xi in ipairs(x:values()) do
      local e = math.exp(2 * math.sqrt(2 / math.pi) * (xi + 0.044715 * xi ^ 3))
      local want = 0.5 * xi * (1 + (e - 1) / (e + 1))
      assert.is_true(math.abs(g[i] - want) < 1e-14)
    end
  end)

  it("MLP builds Linear/act layers and accepts act as a name or a constructor", function()
    local m = nn.MLP { ["in"] = 3, hidden = { 8, 8 }, out = 2 }
    assert.are.same({ 3, 2 }, { m[1].in_features, m[5].out_features })
    assert.are.equal(5, #m)
    assert.are.equal("SiLU", getmetatable(m[2]).__name)
    local n = 0
    for _ in pairs(m:state_dict()) do n = n + 1 end
    assert.are.equal(6, n)
    local t = nn.MLP { d_in = 2, hidden = { 4 }, d_out = 1, act = nn.Tanh, dtype = "float64" }
    assert.are.equal("Tanh", getmetatable(t[2]).__name)
    assert.are.equal("float64", t[3].weight:dtype())
    local r = nn.MLP { d_in = 2, hidden = { 4 }, d_out = 1, act = "relu" }
    assert.are.equal("ReLU", getmetatable(r[2]).__name)
    assert.has_error(function() nn.MLP { d_in = 2, d_out = 1, act = "nope" } end)
    assert.has_error(function() nn.MLP { hidden = { 2 }, d_out = 1 } end)
  end)

  it("an MLP passes gradcheck w.r.t. its input, first and second order", function()
    sc.manual_seed(12)
    local m = nn.MLP { d_in = 3, hidden = { 5, 5 }, d_out = 2, dtype = "float64" }
    local x = sc.randn(4, 3, { dtype = "float64" }):requires_grad(true)
    local ok, msg = sc.gradcheck(function(xx) return m(xx) end, { x })
    assert.is_true(ok, msg)
    -- and w.r.t. the weights of its first layer
    ok, msg = sc.gradcheck(function(w)
      return (sc.matmul(x, w:t()) + m[1].bias):silu()
    end, { m[1].weight })
    assert.is_true(ok, msg)
  end)
end)
