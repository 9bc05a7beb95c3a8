-- sc.losses.gan and sc.models.gan against the theory they are taught with:
-- the optimal discriminator p/(p + q) and the value 2·JSD − log 4
-- (Goodfellow et al. 2014, Prop. 1, Thm. 1), the vanishing minimax
-- gradient, W1 between two Gaussians (closed form |μ₁ − μ₂|), f-GAN's
-- bounds against each divergence's integral (Nowozin et al. 2016), the
-- penalty's parameter gradient against finite differences, and bad input.
-- Integrals over 1-D densities are midpoint sums on a fine grid (exact to
-- ~1e-6 here), so the only noise left is the training's.
local sc = require "scorch"
local gan = sc.losses.gan

-- measured figures, printed with GAN_SPEC_VERBOSE=1
local function note(fmt, ...)
  if os.getenv("GAN_SPEC_VERBOSE") then io.stderr:write((fmt .. "\n"):format(...)) end
end

local SQRT2PI = math.sqrt(2 * math.pi)
local function normal_pdf(x, mu, s) return math.exp(-0.5 * ((x - mu) / s) ^ 2) / (s * SQRT2PI) end

-- A grid on [lo, hi] of n midpoints: Lua list, [n, 1] tensor and the step.
local function grid(lo, hi, n)
  local h, xs = (hi - lo) / n, {}
  for i = 1, n do xs[i] = lo + (i - 0.5) * h end
  return xs, sc.tensor(xs):reshape(n, 1), h
end

-- ∫ q f(p/q) on the grid
local function f_divergence(f, p, q, xs, h)
  local s = 0
  for _, x in ipairs(xs) do
    local qx = q(x)
    if qx > 0 then s = s + qx * f(p(x) / qx) * h end
  end
  return s
end

local function jsd(p, q, xs, h)
  local s = 0
  for _, x in ipairs(xs) do
    local a, b = p(x), q(x)
    local m = 0.5 * (a + b)
    if a > 0 then s = s + 0.5 * a * math.log(a / m) * h end
    if b > 0 then s = s + 0.5 * b * math.log(b / m) * h end
  end
  return s
end

-- Trains a critic D on samples of p and q with loss(D(real), D(fake)).
local function train_critic(D, sample_p, sample_q, loss, steps, lr)
  local opt = sc.optim.Adam(D:parameters(), { lr = lr, betas = { 0.5, 0.999 } })
  for _ = 1, steps do
    local l = loss(D, sample_p(512), sample_q(512))
    opt:zero_grad(); l:backward(); opt:step()
  end
end

local function gaussian_sampler(mu, s, gen)
  return function(n) return sc.randn({ n, 1 }, { generator = gen }) * s + mu end
end

describe("minimax GAN: the optimal discriminator", function()
  it("a trained D approaches p/(p+q) on a grid and V(D, G) approaches 2·JSD − log 4", function()
    local gen = sc.Generator(1)
    local p = function(x) return normal_pdf(x, -1, 1) end
    local q = function(x) return normal_pdf(x, 1, 1.5) end
    local D = sc.models.MLPDiscriminator { dim = 1, hidden = { 32, 32 }, generator = gen }
    train_critic(D, gaussian_sampler(-1, 1, gen), gaussian_sampler(1, 1.5, gen),
      function(d, xr, xf) return gan.d_loss(d(xr), d(xf)) end, 600, 3e-3)
    -- mean |σ(D(x)) − D*(x)| on [−3, 3], where both densities have mass
    local xs, xt = grid(-3, 3, 121)
    local dx = sc.no_grad(function() return D(xt):sigmoid() end):values()
    local mae = 0
    for i, x in ipairs(xs) do mae = mae + math.abs(dx[i] - p(x) / (p(x) + q(x))) / #xs end
    note("optimal D: MAE %.4f", mae)
    assert.is_true(mae < 0.04, ("mean |D − D*| = %.4f on [−3, 3]"):format(mae))
    -- the game's value at D, by quadrature of E_p log D + E_q log(1 − D)
    local fxs, ft, h = grid(-12, 12, 4801)
    local logit = sc.no_grad(function() return D(ft) end)
    local ld, l1d = logit:logsigmoid():values(), (-logit):logsigmoid():values()
    local v = 0
    for i, x in ipairs(fxs) do v = v + (p(x) * ld[i] + q(x) * l1d[i]) * h end
    local target = 2 * jsd(p, q, fxs, h) - math.log(4)
    note("minimax value %.4f, 2·JSD − log 4 = %.4f", v, target)
    assert.is_true(v <= target + 1e-3, ("V = %.4f above its maximum %.4f"):format(v, target))
    assert.is_true(math.abs(v - target) < 0.01, ("V = %.4f, 2·JSD − log 4 = %.4f"):format(v, target))
    -- and d_loss on samples is the negated value
    local xr, xf = gaussian_sampler(-1, 1, gen)(4000), gaussian_sampler(1, 1.5, gen)(4000)
    local a = sc.no_grad(function() return gan.d_loss(D(xr), D(xf)):item() + gan.minimax_value(D(xr), D(xf)):item() end)
    assert.is_true(math.abs(a) < 1e-5)
  end)

  it("logits far below float32's exp range stay exact", function()
    local far = sc.tensor({ -200, -1000 })
    assert.is_true(math.abs(gan.g_loss_ns(far):item() - 600) < 1e-3)
    assert.is_true(math.abs(gan.d_loss(-far, far):item() - 0) < 1e-6)
    assert.is_true(math.abs(gan.d_loss(sc.zeros(3), sc.zeros(3)):item() - 2 * math.log(2)) < 1e-6)
  end)
end)

describe("vanishing gradients", function()
  it("near-optimal D: the minimax generator gradient is orders of magnitude below the non-saturating", function()
    local gen = sc.Generator(2)
    local D = sc.models.MLPDiscriminator { dim = 1, hidden = { 32, 32 }, generator = gen }
    train_critic(D, gaussian_sampler(-2, 0.5, gen), gaussian_sampler(3, 0.5, gen),
      function(d, xr, xf) return gan.d_loss(d(xr), d(xf)) end, 300, 3e-3)
    local function grad_norm(loss_fn)
      local x = gaussian_sampler(3, 0.5, gen)(256):requires_grad(true)
      local g = sc.grad(loss_fn(D(x)), { x })[1]
      return (g * g):sum():sqrt():item()
    end
    local mm, ns = grad_norm(gan.g_loss_minimax), grad_norm(gan.g_loss_ns)
    assert.is_true(ns > 1e-3, ("non-saturating gradient %.3g"):format(ns))
    assert.is_true(mm < 1e-3 * ns, ("minimax %.3g vs non-saturating %.3g"):format(mm, ns))
    -- per sample the ratio is exp(logit): on the data side (D ≈ 1) it turns
    local x = gaussian_sampler(-2, 0.5, gen)(256):requires_grad(true)
    local gm = sc.grad(gan.g_loss_minimax(D(x)), { x })[1]
    local gn = sc.grad(gan.g_loss_ns(D(x)), { x })[1]
    assert.is_true(gm:abs():sum():item() > 10 * gn:abs():sum():item())
    note("vanishing: minimax %.3g, non-saturating %.3g", mm, ns)
  end)
end)

describe("WGAN-GP", function()
  it("the critic's estimate E D(x_r) − E D(x_g) comes within 5% of W1 = |μ₁ − μ₂|", function()
    -- With penalty weight λ the best linear critic has slope 1 + Δ/(2λ),
    -- so the estimate sits Δ/(2λ) (2.5% for Δ = 0.5, λ = 10) above W1.
    local gen = sc.Generator(3)
    local D = sc.models.MLPDiscriminator { dim = 1, hidden = { 32, 32 }, generator = gen }
    local pr, pf = gaussian_sampler(0, 1, gen), gaussian_sampler(0.5, 1, gen)
    train_critic(D, pr, pf, function(d, xr, xf)
      return gan.wgan_d(d(xr), d(xf)) + gan.gradient_penalty(d, xr, xf, { weight = 10, generator = gen })
    end, 500, 2e-3)
    local xs, xt, h = grid(-10, 10, 4001)
    local dv = sc.no_grad(function() return D(xt) end):values()
    local est = 0
    for i, x in ipairs(xs) do est = est + (normal_pdf(x, 0, 1) - normal_pdf(x, 0.5, 1)) * dv[i] * h end
    est = math.abs(est)
    note("WGAN-GP estimate %.4f, W1 0.5", est)
    assert.is_true(math.abs(est - 0.5) < 0.05 * 0.5, ("estimate %.4f, W1 = 0.5"):format(est))
  end)

  it("the penalty's gradient w.r.t. the critic's parameters passes gradcheck in float64", function()
    local g = sc.Generator(4)
    local o = { generator = g, dtype = "float64" }
    local real, fake = sc.randn({ 5, 3 }, o), sc.randn({ 5, 3 }, o)
    local W1 = sc.randn({ 3, 4 }, o):requires_grad(true)
    local b1 = sc.randn({ 4 }, o):requires_grad(true)
    local W2 = sc.randn({ 4, 1 }, o):requires_grad(true)
    for _, kind in ipairs({ "two_sided", "one_sided", "r1" }) do
      local function pen(w1, bb, w2)
        local critic = function(x) return sc.matmul((sc.matmul(x, w1) + bb):tanh(), w2) end
        return (gan.gradient_penalty(critic, real, fake, { kind = kind, generator = sc.Generator(9) }))
      end
      local ok, msg = sc.gradcheck(pen, { W1, b1, W2 })
      assert.is_true(ok, kind .. ": " .. tostring(msg))
    end
    -- and the value: a linear critic w has ‖∇D‖ = ‖w‖ everywhere
    local w = sc.tensor({ { 3 }, { 4 } }, { dtype = "float64" })
    local v, norm = gan.gradient_penalty(function(x) return sc.matmul(x, w) end,
      sc.randn({ 6, 2 }, o), sc.randn({ 6, 2 }, o), { weight = 10 })
    assert.is_true(math.abs(v:item() - 160) < 1e-6 and math.abs(norm - 5) < 1e-6)
    local r1 = gan.gradient_penalty(function(x) return sc.matmul(x, w) end, sc.randn({ 6, 2 }, o), nil,
      { kind = "r1", weight = 2 })
    assert.is_true(math.abs(r1:item() - 25) < 1e-6)
  end)
end)

describe("f-GAN", function()
  -- P = N(0.5, 1) (data), Q = N(−0.5, 1) (generator): r = p/q = exp(x)
  local p = function(x) return normal_pdf(x, 0.5, 1) end
  local q = function(x) return normal_pdf(x, -0.5, 1) end
  local xs, xt, h = grid(-12, 12, 4801)
  -- closed forms for unit-variance Gaussians Δ = 1 apart
  local closed = { kl = 0.5, reverse_kl = 0.5, pearson = math.exp(1) - 1 }
  -- the optimal V* = g_f⁻¹(f'(r)) (Nowozin et al. 2016, §2.3)
  local optimal = {
    kl = function(lr) return lr + 1 end,
    reverse_kl = function(lr) return lr end,
    pearson = function(lr) return (lr:exp() - 1) * 2 end,
    jensen_shannon = function(lr) return lr end,
    gan = function(lr) return lr end,
  }
  local pw, qw = {}, {}
  for i, x in ipairs(xs) do pw[i], qw[i] = p(x) * h, q(x) * h end
  local pw_t, qw_t = sc.tensor(pw), sc.tensor(qw)
  -- the bound by quadrature: ∫ p g(V) − ∫ q f*(g(V))
  local function bound(name, v)
    local d = gan.divergences[name]
    return (d.activation(v) * pw_t):sum():item() - (d.conjugate(v) * qw_t):sum():item()
  end

  it("the table's f gives the closed forms, and the optimal critic attains them", function()
    for name, c in pairs(closed) do
      local fd = f_divergence(gan.divergences[name].f, p, q, xs, h)
      assert.is_true(math.abs(fd - c) < 1e-3, ("%s: ∫ q f(p/q) = %.5f, closed form %.5f"):format(name, fd, c))
    end
    local js2 = 2 * jsd(p, q, xs, h)
    assert.is_true(math.abs(f_divergence(gan.divergences.js.f, p, q, xs, h) - js2) < 1e-4)
    local lr = xt:reshape(#xs) -- log p/q = x here
    for name, vstar in pairs(optimal) do
      local target = f_divergence(gan.divergences[name].f, p, q, xs, h)
      local b = bound(name, vstar(lr))
      assert.is_true(math.abs(b - target) < 2e-3 * math.max(1, math.abs(target)),
        ("%s: bound at V* %.5f, divergence %.5f"):format(name, b, target))
      -- any other critic gives less
      assert.is_true(bound(name, vstar(lr) * 0.7 + 0.1) < target)
    end
  end)

  it("a trained critic's bound approaches each divergence from below", function()
    for i, name in ipairs({ "kl", "reverse_kl", "jensen_shannon", "pearson" }) do
      local gen = sc.Generator(10 + i)
      local D = sc.models.MLPDiscriminator { dim = 1, hidden = { 32, 32 }, generator = gen }
      train_critic(D, gaussian_sampler(0.5, 1, gen), gaussian_sampler(-0.5, 1, gen),
        function(d, xr, xf) return gan.fgan_d(d(xr), d(xf), name) end, 400, 3e-3)
      local b = bound(name, sc.no_grad(function() return D(xt) end))
      local target = f_divergence(gan.divergences[name].f, p, q, xs, h)
      note("f-GAN %s: bound %.4f, divergence %.4f", name, b, target)
      assert.is_true(b <= target + 1e-4 and b > 0.9 * target,
        ("%s: trained bound %.4f, divergence %.4f"):format(name, b, target))
    end
  end)
end)

describe("MMD-GAN loss", function()
  it("matches the kernel sum by hand and vanishes between equal batches", function()
    local x = sc.tensor({ { 0, 0 } })
    local y = sc.tensor({ { 3, 4 } })
    local v = gan.mmd_g(x, y, { bandwidths = { 1, 5 } }):item()
    local want = 2 * ((1 - math.exp(-25 / 2)) + (1 - math.exp(-25 / 50)))
    assert.is_true(math.abs(v - want) < 1e-5)
    local z = sc.randn(16, 3)
    assert.is_true(math.abs(gan.mmd_g(z, z):item()) < 1e-5)
    -- a generator shifted by the loss's gradient moves towards the data
    local gen = sc.Generator(5)
    local data = sc.randn({ 256, 2 }, { generator = gen })
    local shift = sc.tensor({ 2, 0 }):requires_grad(true)
    local noise = sc.randn({ 256, 2 }, { generator = gen })
    local opt = sc.optim.Adam({ shift }, { lr = 0.05 })
    for _ = 1, 100 do
      local l = gan.mmd_g(data, noise + shift, { bandwidths = { 0.5, 1, 2 } })
      opt:zero_grad(); l:backward(); opt:step()
    end
    assert.is_true(shift:detach():abs():max():item() < 0.3, tostring(shift))
  end)
end)

describe("GAN models and the trainer", function()
  it("the DCGAN pair has W10's shapes and a WGAN-GP step logs both losses", function()
    local g = sc.Generator(6)
    local G = sc.models.DCGenerator { z_dim = 16, channels = 8, generator = g }
    local D = sc.models.DCCritic { channels = 4, generator = g }
    assert.same({ 3, 1, 28, 28 }, G:sample(3, g):shape())
    local x = sc.rand({ 4, 1, 28, 28 }, { generator = g }) * 2 - 1
    local tr = sc.models.gan.Trainer { G = G, D = D, loss = "wgan_gp", n_critic = 2, ema = 0.9, generator = g }
    local row = tr:step(x)
    for _, k in ipairs({ "loss_d", "loss_g", "wasserstein", "gp", "grad_norm_d", "grad_norm_g" }) do
      assert.is_number(row[k], k)
    end
    assert.equal(1, #tr.history)
    assert.same({ 2, 1, 28, 28 }, tr:sample(2):shape())
  end)

  it("the generator's phase-split upsample + conv equals upsampling first (float64)", function()
    local g = sc.Generator(8)
    local G = sc.models.DCGenerator { z_dim = 8, channels = 6, dtype = "float64", generator = g }
    local P = sc.models.DCGenerator { z_dim = 8, channels = 6, dtype = "float64", plain_upsample = true }
    P:load_state_dict(G:state_dict())
    local z = sc.randn({ 3, 8 }, { generator = g, dtype = "float64" })
    assert.is_true((G(z) - P(z)):abs():max():item() < 1e-12)
    -- and so do the weight gradients
    local function grads(m)
      m:zero_grad(); (m(z) * sc.linspace(-1, 1, 784):reshape(1, 1, 28, 28):double()):sum():backward()
      return m.conv1.weight.grad
    end
    assert.is_true((grads(G) - grads(P)):abs():max():item() < 1e-10)
    local h = sc.randn({ 2, 3, 5, 4 }, { generator = g, dtype = "float64" })
    local conv = sc.nn.Conv2d(3, 2, 3, { padding = 1, dtype = "float64", generator = g })
    local want = conv(sc.upsample(h, { scale = 2 }))
    assert.is_true((sc.models.gan.upsample_conv3x3(h, conv) - want):abs():max():item() < 1e-12)
  end)

  it("weight clipping keeps the critic inside [−c, c]", function()
    local G = sc.models.MLPGenerator { hidden = { 8 } }
    local D = sc.models.MLPDiscriminator { hidden = { 8 } }
    local tr = sc.models.gan.Trainer { G = G, D = D, loss = "wgan", clip = 0.05, n_critic = 2,
      opt_d = sc.optim.RMSprop(D:parameters(), { lr = 0.5 }) }
    tr:step(function() return sc.randn(32, 2) * 3 end)
    local mx = 0
    for _, p in ipairs(D:parameters()) do mx = math.max(mx, p:abs():max():item()) end
    assert.is_true(mx <= 0.05 + 1e-7 and mx > 0.049, tostring(mx))
  end)

  it("a GAN on a 1-D Gaussian moves its samples to the data", function()
    local g = sc.Generator(7)
    local G = sc.models.MLPGenerator { z_dim = 1, dim = 1, hidden = { 16 }, generator = g }
    local D = sc.models.MLPDiscriminator { dim = 1, hidden = { 16 }, generator = g }
    local tr = sc.models.gan.Trainer { G = G, D = D, loss = "ns", generator = g,
      opt_g = sc.optim.Adam(G:parameters(), { lr = 5e-3, betas = { 0.5, 0.999 } }),
      opt_d = sc.optim.Adam(D:parameters(), { lr = 5e-3, betas = { 0.5, 0.999 } }) }
    local data = gaussian_sampler(3, 0.5, g)
    tr:train(function() return data(256) end, 300)
    local m = tr:sample(2000):mean():item()
    note("GAN 1-D: sample mean %.3f", m)
    assert.is_true(math.abs(m - 3) < 0.3, ("sample mean %.3f, data mean 3"):format(m))
  end)
end)

describe("GAN bad input", function()
  it("names the function, the argument and the shapes", function()
    assert.has_error(function() gan.d_loss(sc.zeros(4, 2), sc.zeros(4)) end,
      "scorch.losses.gan.d_loss: real must be scores [N] or [N, 1] (got [4,2])")
    assert.has_error(function() gan.fgan_d(sc.zeros(4), sc.zeros(4), "hellinger") end)
    local D = sc.models.MLPDiscriminator { hidden = { 8 } }
    local ok, msg = pcall(gan.gradient_penalty, D, sc.zeros(4, 2), sc.zeros(3, 2))
    assert.is_false(ok); assert.matches("real %[4,2%] and fake %[3,2%]", msg)
    ok, msg = pcall(gan.gradient_penalty, function(x) return sc.zeros(x:size(1)) + D.net[1].bias:sum() end,
      sc.zeros(4, 2), sc.zeros(4, 2))
    assert.is_false(ok); assert.matches("does not depend on its input", msg)
    ok, msg = pcall(gan.gradient_penalty, D, sc.zeros(4, 2), sc.zeros(4, 2), { lambda = 10 })
    assert.is_false(ok); assert.matches("unknown option 'lambda'", msg)
    ok, msg = pcall(gan.mmd_g, sc.zeros(4, 2), sc.zeros(4, 3))
    assert.is_false(ok); assert.matches("differ beyond the batch", msg)
    ok, msg = pcall(D, sc.zeros(4, 3))
    assert.is_false(ok); assert.matches("MLPDiscriminator: expected x of shape %[N, 2%] %(got %[4,3%]%)", msg)
  end)

  it("rejects n_critic < 1, clip ≤ 0 and a generator whose samples do not fit the data", function()
    local G = sc.models.MLPGenerator { dim = 3, hidden = { 8 } }
    local D = sc.models.MLPDiscriminator { hidden = { 8 } }
    local T = sc.models.gan.Trainer
    local ok, msg = pcall(T, { G = G, D = D, n_critic = 0 })
    assert.is_false(ok); assert.matches("n_critic must be an integer ≥ 1 %(got 0%)", msg)
    ok, msg = pcall(T, { G = G, D = D, loss = "wgan", clip = 0 })
    assert.is_false(ok); assert.matches("clip must be a number > 0", msg)
    ok = pcall(T, { G = G, D = D, loss = "wgan", clip = -0.01 })
    assert.is_false(ok)
    ok, msg = pcall(T, { G = G, D = D, loss = "lsgan" })
    assert.is_false(ok); assert.matches("unknown loss 'lsgan'", msg)
    local tr = T { G = G, D = D }
    ok, msg = pcall(tr.step, tr, sc.zeros(8, 2))
    assert.is_false(ok); assert.matches("generator makes %[8,3%], the data are %[8,2%]", msg)
  end)

  it("a run whose loss turns non-finite stops, naming the step and the network", function()
    local G = sc.models.MLPGenerator { hidden = { 8 } }
    local D = sc.models.MLPDiscriminator { hidden = { 8 } }
    local tr = sc.models.gan.Trainer { G = G, D = D }
    tr:step(sc.randn(8, 2))
    local last = D:parameters()[#D:parameters()]
    sc.no_grad(function() last:copy_(sc.full(last:shape(), 0 / 0)) end)
    local ok, msg = pcall(tr.step, tr, sc.randn(8, 2))
    assert.is_false(ok); assert.matches("became .* at step 2 %(discriminator network%)", msg)
    local trm = sc.models.gan.Trainer { G = G, loss = "mmd" }
    local lg = G:parameters()[#G:parameters()]
    sc.no_grad(function() lg:copy_(sc.full(lg:shape(), math.huge)) end)
    ok, msg = pcall(trm.step, trm, sc.randn(8, 2))
    assert.is_false(ok); assert.matches("at step 1 %(generator network%)", msg)
  end)
end)
