--- GAN networks and their training loop: MLP generator and discriminator for
-- 2-D data, the DCGAN-style convolutional pair for 28×28 images (Radford
-- et al. 2016, with nearest upsampling + conv instead of transposed convs),
-- and `Trainer`, the alternating loop of Goodfellow et al. 2014
-- (Algorithm 1) with n_critic steps, weight clipping (Arjovsky et al. 2017,
-- Algorithm 1) or the gradient penalty (Gulrajani et al. 2017, Algorithm 1).
-- @module scorch.models.gan
local sc = require "scorch"
local nn = sc.nn
local util = require "scorch.util"
local losses = require "scorch.losses.gan"

local M = {}

-- ---- networks ---------------------------------------------------------------------

--- MLP generator G(z): z ~ N(0, I_{z_dim}) → a point of R^dim.
-- @param opts {z_dim = 2, dim = 2, hidden = {128, 128, 128}, act = "relu", dtype, generator}
-- @return module; `g(z)` maps [N, z_dim] → [N, dim]; `g:sample(n [, gen])` draws z itself
-- @usage local G = sc.models.MLPGenerator{z_dim = 2, dim = 2}
local MLPGenerator = nn.Module:extend("MLPGenerator")
M.MLPGenerator = MLPGenerator
function MLPGenerator:init(opts)
  opts = util.check_options(opts, { "z_dim", "dim", "hidden", "act", "dtype", "generator" },
    "scorch.models.MLPGenerator", 4)
  self.z_dim, self.dim = opts.z_dim or 2, opts.dim or 2
  self.net = nn.MLP { ["in"] = self.z_dim, out = self.dim, hidden = opts.hidden or { 128, 128, 128 },
    act = opts.act or "relu", dtype = opts.dtype, generator = opts.generator }
end
function MLPGenerator:forward(z)
  if not sc.is_tensor(z) or z:dim() ~= 2 or z:size(2) ~= self.z_dim then
    error(("scorch.models.MLPGenerator: expected z of shape [N, %d] (got %s)")
      :format(self.z_dim, util.shape_str(z)), 3)
  end
  return self.net(z)
end
function MLPGenerator:extra_repr() return ("z_dim=%d, dim=%d"):format(self.z_dim, self.dim) end

--- MLP discriminator or critic D(x): [N, dim] → logits [N].
-- @param opts {dim = 2, hidden = {128, 128, 128}, act = "leaky_relu" (slope 0.2), dtype, generator}
-- @return module
-- @usage local D = sc.models.MLPDiscriminator{dim = 2}
local MLPDiscriminator = nn.Module:extend("MLPDiscriminator")
M.MLPDiscriminator = MLPDiscriminator
function MLPDiscriminator:init(opts)
  opts = util.check_options(opts, { "dim", "hidden", "act", "dtype", "generator" },
    "scorch.models.MLPDiscriminator", 4)
  self.dim = opts.dim or 2
  local act = opts.act or function() return nn.LeakyReLU(0.2) end
  self.net = nn.MLP { ["in"] = self.dim, out = 1, hidden = opts.hidden or { 128, 128, 128 },
    act = act, dtype = opts.dtype, generator = opts.generator }
end
function MLPDiscriminator:forward(x)
  if not sc.is_tensor(x) or x:dim() ~= 2 or x:size(2) ~= self.dim then
    error(("scorch.models.MLPDiscriminator: expected x of shape [N, %d] (got %s)")
      :format(self.dim, util.shape_str(x)), 3)
  end
  return self.net(x):reshape(x:size(1))
end
function MLPDiscriminator:extra_repr() return ("dim=%d"):format(self.dim) end

--- DCGAN-style generator for 1×28×28 images (WORKLOADS.md W10):
-- Linear(z→c·7·7), ReLU, reshape, upsample×2, conv3×3(c→c/2), ReLU,
-- upsample×2, conv3×3(c/2→1), tanh.  Outputs lie in (−1, 1).
-- Each upsample + conv pair runs as one convolution over its four output
-- phases (`upsample_conv3x3`, 4/9 of the products); `plain_upsample = true`
-- upsamples first, as written.
-- @param opts {z_dim = 64, channels = 64, plain_upsample = false, dtype, generator}
-- @return module; `g(z)`: [N, z_dim] → [N, 1, 28, 28]
-- @usage local G = sc.models.DCGenerator{z_dim = 64}
local DCGenerator = nn.Module:extend("DCGenerator")
M.DCGenerator = DCGenerator
function DCGenerator:init(opts)
  opts = util.check_options(opts, { "z_dim", "channels", "plain_upsample", "dtype", "generator" },
    "scorch.models.DCGenerator", 4)
  self.z_dim, self.channels = opts.z_dim or 64, opts.channels or 64
  self.plain = opts.plain_upsample and true or false
  local c, o = self.channels, { dtype = opts.dtype, generator = opts.generator }
  self.fc = nn.Linear(self.z_dim, c * 7 * 7, o)
  self.conv1 = nn.Conv2d(c, c // 2, 3, { padding = 1, dtype = o.dtype, generator = o.generator })
  self.conv2 = nn.Conv2d(c // 2, 1, 3, { padding = 1, dtype = o.dtype, generator = o.generator })
end
-- conv3×3(upsample×2(h)) (padding 1) without the upsampling: output pixel
-- (2i + a, 2j + b) sees only input rows {i − 1, i} (a = 0) or {i, i + 1}
-- (a = 1), and the same for columns, so each of the four phases (a, b) is a
-- 2×2 convolution whose taps are sums of the 3×3 taps (the resize-
-- convolution identity; Odena et al. 2016 for the layer).  One convolution
-- with the four phase kernels stacked as 4·O outputs, padding 1, gives every
-- phase on an (H + 1) × (W + 1) grid; each phase is a shifted H × W window
-- of it, and the phases interleave into 2H × 2W.  4/9 of the products of
-- the plain form; the same function up to rounding.
local function phase_taps(w, dim, a)
  local t0, t1, t2 = w:narrow(dim, 1, 1), w:narrow(dim, 2, 1), w:narrow(dim, 3, 1)
  if a == 0 then return sc.cat({ t0, t1 + t2 }, dim) end
  return sc.cat({ t0 + t1, t2 }, dim)
end

local function upsample_conv3x3(h, conv)
  local o = type(conv) == "table" and conv.opts
  if not (o and conv.kernel and conv.kernel[1] == 3 and conv.kernel[2] == 3 and o.stride == 1
      and o.padding == 1 and o.dilation == 1 and o.groups == 1) then
    error("scorch.models.gan.upsample_conv3x3: conv must be an nn.Conv2d 3×3 with stride 1, padding 1", 2)
  end
  if not sc.is_tensor(h) or h:dim() ~= 4 or h:size(2) ~= conv.in_channels then
    error(("scorch.models.gan.upsample_conv3x3: h must be [N, %d, H, W] (got %s)")
      :format(conv.in_channels, util.shape_str(h)), 2)
  end
  local w, bias = conv.weight, conv.bias
  local kernels = {}
  for a = 0, 1 do
    local rows = phase_taps(w, 3, a)
    for b = 0, 1 do kernels[#kernels + 1] = phase_taps(rows, 4, b) end
  end
  local k = sc.cat(kernels, 1)
  local bk = bias and sc.cat({ bias, bias, bias, bias }, 1) or nil
  -- phase (a, b) is the window y[:, (2a+b)·O + o, a .. a+H-1, b .. b+W-1] (O = conv's outputs)
  return sc.core.phase_join(sc.conv2d(h, k, bk, { padding = 1 }))
end
--- conv(upsample×2(h)) for a 3×3, stride-1, padding-1 convolution, computed
-- over the four output phases without upsampling (same values up to rounding).
-- @param h input [N, C, H, W]
-- @param conv an nn.Conv2d(C, O, 3, {padding = 1})
-- @return [N, O, 2H, 2W]
-- @usage local y = sc.models.gan.upsample_conv3x3(h, conv)
M.upsample_conv3x3 = upsample_conv3x3

function DCGenerator:forward(z)
  if not sc.is_tensor(z) or z:dim() ~= 2 or z:size(2) ~= self.z_dim then
    error(("scorch.models.DCGenerator: expected z of shape [N, %d] (got %s)")
      :format(self.z_dim, util.shape_str(z)), 3)
  end
  local h = self.fc(z):relu():reshape(z:size(1), self.channels, 7, 7)
  if self.plain then
    h = self.conv1(sc.upsample(h, { scale = 2 })):relu()
    return self.conv2(sc.upsample(h, { scale = 2 })):tanh()
  end
  h = upsample_conv3x3(h, self.conv1):relu()
  return upsample_conv3x3(h, self.conv2):tanh()
end
function DCGenerator:extra_repr() return ("z_dim=%d, channels=%d"):format(self.z_dim, self.channels) end

--- DCGAN-style critic for 1×28×28 images (WORKLOADS.md W10): conv3×3 s2
-- (1→c), LeakyReLU 0.2, conv3×3 s2 (c→2c), LeakyReLU 0.2, flatten,
-- Linear(2c·7·7→1).  No normalisation layer, so the gradient penalty is
-- per example as WGAN-GP requires.
-- @param opts {channels = 32, dtype, generator}
-- @return module; `d(x)`: [N, 1, 28, 28] → [N]
-- @usage local D = sc.models.DCCritic{}
local DCCritic = nn.Module:extend("DCCritic")
M.DCCritic = DCCritic
function DCCritic:init(opts)
  opts = util.check_options(opts, { "channels", "dtype", "generator" }, "scorch.models.DCCritic", 4)
  local c = opts.channels or 32
  self.channels = c
  local co = { stride = 2, padding = 1, dtype = opts.dtype, generator = opts.generator }
  self.conv1 = nn.Conv2d(1, c, 3, co)
  self.conv2 = nn.Conv2d(c, 2 * c, 3, co)
  self.fc = nn.Linear(2 * c * 7 * 7, 1, { dtype = opts.dtype, generator = opts.generator })
end
local function leaky(x) return x:leaky_relu(0.2) end
function DCCritic:forward(x)
  if not sc.is_tensor(x) or x:dim() ~= 4 or x:size(2) ~= 1 or x:size(3) ~= 28 or x:size(4) ~= 28 then
    error(("scorch.models.DCCritic: expected images [N, 1, 28, 28] (got %s)"):format(util.shape_str(x)), 3)
  end
  local h = leaky(self.conv1(x))
  h = leaky(self.conv2(h))
  return self.fc(h:reshape(x:size(1), -1)):reshape(x:size(1))
end
function DCCritic:extra_repr() return ("channels=%d"):format(self.channels) end

--- z ~ N(0, I) for a generator: [n, g.z_dim].
-- @param g a generator (has z_dim)
-- @param n number of samples
-- @param opts {generator = nil, dtype = "float32"}
-- @return tensor [n, z_dim]
-- @usage local x = G(sc.models.gan.noise(G, 64))
function M.noise(g, n, opts)
  opts = util.check_options(opts, { "generator", "dtype" }, "scorch.models.gan.noise")
  return sc.randn({ n, g.z_dim }, { generator = opts.generator, dtype = opts.dtype })
end
--- G:sample(n [, generator]): n samples G(z), z ~ N(0, I) (both generators).
-- @usage local x = G:sample(64)
function MLPGenerator:sample(n, gen) return self(M.noise(self, n, { generator = gen })) end
--- n images from fresh noise.
-- @param n integer
-- @param gen Generator (default the global one)
-- @return tensor [n, 1, 28, 28] in [−1, 1]
-- @usage local x = G:sample(64)
function DCGenerator:sample(n, gen) return self(M.noise(self, n, { generator = gen })) end

-- ---- training ---------------------------------------------------------------------

local LOSSES = {
  minimax = true, ns = true, wgan = true, wgan_gp = true,
  ["fgan:kl"] = true, ["fgan:reverse_kl"] = true, ["fgan:pearson"] = true,
  ["fgan:jensen_shannon"] = true, mmd = true,
}

local function grad_norm(params)
  local s = 0
  for _, p in ipairs(params) do
    if p.grad then s = s + (p.grad * p.grad):sum():item() end
  end
  return math.sqrt(s)
end

local function finite(v) return v == v and v ~= math.huge and v ~= -math.huge end

--- The alternating GAN loop (Goodfellow et al. 2014, Algorithm 1): each
-- `step` makes n_critic discriminator/critic updates and one generator
-- update.  "wgan" clips the critic's weights to [−clip, clip] after each
-- update (Arjovsky et al. 2017); "wgan_gp" adds the gradient penalty;
-- "mmd" trains the generator alone on the kernel MMD.
-- @param opts {G =, D = (not for "mmd"), loss = "ns" | "minimax" | "wgan" | "wgan_gp" | "fgan:NAME" | "mmd",
--   opt_g =, opt_d = (optimisers; default Adam lr 2e-4, betas {0.5, 0.999}, or {0, 0.9} for WGAN-GP,
--   RMSprop lr 5e-5 for "wgan"), n_critic = 1 (5 for wgan, wgan_gp), clip = 0.01 ("wgan" only),
--   gp_weight = 10, gp_kind = "two_sided", ema = nil (decay of an EMA of G's weights),
--   bandwidths = nil (for "mmd"), generator = nil (random stream)}
-- @return a trainer: `tr:step(real_fn)` → a log row {step, loss_d, loss_g, wasserstein, gp, grad_norm_d,
--   grad_norm_g}; real is a tensor or a function returning a fresh batch; `tr.history` keeps every row
-- @usage local tr = sc.models.gan.Trainer{G = G, D = D, loss = "wgan_gp"}; tr:step(x)
function M.Trainer(opts)
  opts = util.check_options(opts, { "G", "D", "loss", "opt_g", "opt_d", "n_critic", "clip", "gp_weight",
    "gp_kind", "ema", "bandwidths", "generator" }, "scorch.models.gan.Trainer")
  local fn = "scorch.models.gan.Trainer"
  local kind = opts.loss or "ns"
  if not LOSSES[kind] then
    local names = {}
    for k in pairs(LOSSES) do names[#names + 1] = k end
    table.sort(names)
    error(("%s: unknown loss '%s' (valid: %s)"):format(fn, tostring(kind), table.concat(names, ", ")), 2)
  end
  if not util.is_callable(opts.G) or type(opts.G.z_dim) ~= "number" then
    error(fn .. ": G must be a generator module with a z_dim field", 2)
  end
  if kind ~= "mmd" and not util.is_callable(opts.D) then
    error(fn .. ": D must be a callable discriminator/critic", 2)
  end
  local wgan = kind == "wgan" or kind == "wgan_gp"
  local n_critic = opts.n_critic or (wgan and 5 or 1)
  if math.type(n_critic) ~= "integer" or n_critic < 1 then
    error(("%s: n_critic must be an integer ≥ 1 (got %s)"):format(fn, tostring(n_critic)), 2)
  end
  local clip = opts.clip
  if clip ~= nil and (type(clip) ~= "number" or clip <= 0) then
    error(("%s: clip must be a number > 0 (got %s)"):format(fn, tostring(clip)), 2)
  end
  if kind == "wgan" then clip = clip or 0.01 end
  local self = { G = opts.G, D = opts.D, loss = kind, n_critic = n_critic, clip = clip,
    gp_weight = opts.gp_weight or 10, gp_kind = opts.gp_kind or "two_sided",
    bandwidths = opts.bandwidths, gen = opts.generator, history = {}, steps = 0 }
  local optim = sc.optim
  self.opt_g = opts.opt_g or (kind == "wgan" and optim.RMSprop(self.G:parameters(), { lr = 5e-5 })
    or optim.Adam(self.G:parameters(), { lr = kind == "mmd" and 1e-3 or 2e-4,
      betas = kind == "wgan_gp" and { 0, 0.9 } or { 0.5, 0.999 } }))
  if self.D then
    self.opt_d = opts.opt_d or (kind == "wgan" and optim.RMSprop(self.D:parameters(), { lr = 5e-5 })
      or optim.Adam(self.D:parameters(), { lr = 2e-4, betas = kind == "wgan_gp" and { 0, 0.9 } or { 0.5, 0.999 } }))
  end
  if opts.ema then self.ema = optim.EMA(self.G, { decay = opts.ema }) end
  return setmetatable(self, { __index = M.TrainerMethods })
end

M.TrainerMethods = {}
local T = M.TrainerMethods

local function real_batch(real)
  local x = real
  if not sc.is_tensor(real) then x = real() end
  if not sc.is_tensor(x) or x:dim() < 2 then
    error(("scorch.models.gan.Trainer.step: real batches must be tensors [N, ...] (got %s)")
      :format(util.shape_str(x)), 4)
  end
  return x:detach()
end

local function check_fake(x, xg)
  local a, b = x:shape(), xg:shape()
  local same = #a == #b
  for i = 2, #a do same = same and a[i] == b[i] end
  if not same then
    error(("scorch.models.gan.Trainer.step: the generator makes %s, the data are %s")
      :format(util.shape_str(xg), util.shape_str(x)), 4)
  end
end

local function stop_if_bad(self, v, what, net)
  if not finite(v) then
    error(("scorch.models.gan.Trainer.step: %s became %s at step %d (%s network)")
      :format(what, tostring(v), self.steps, net), 4)
  end
end

-- One critic update; returns its loss, the Wasserstein/value estimate, the penalty and grad norm.
local function critic_step(self, x)
  local G, D, kind = self.G, self.D, self.loss
  local n = x:size(1)
  local xg = sc.no_grad(function() return G(M.noise(G, n, { generator = self.gen, dtype = x:dtype() })) end)
  check_fake(x, xg)
  local dr, df = D(x), D(xg)
  local loss, gp
  if kind == "minimax" or kind == "ns" then
    loss = losses.d_loss(dr, df)
  elseif kind:sub(1, 5) == "fgan:" then
    loss = losses.fgan_d(dr, df, kind:sub(6))
  else
    loss = losses.wgan_d(dr, df)
  end
  local estimate = (dr:detach():mean() - df:detach():mean()):item()
  if kind == "wgan_gp" then
    local pen = losses.gradient_penalty(D, x, xg, { weight = self.gp_weight, kind = self.gp_kind,
      generator = self.gen })
    gp = pen:item()
    loss = loss + pen
  end
  self.opt_d:zero_grad()
  loss:backward()
  local gn = grad_norm(self.D:parameters())
  self.opt_d:step()
  if self.clip then
    sc.no_grad(function()
      for _, p in ipairs(self.D:parameters()) do p:copy_(sc.clamp(p, -self.clip, self.clip)) end
    end)
  end
  return loss:item(), estimate, gp, gn
end

--- One outer step: n_critic critic updates on fresh real batches, then one
-- generator update (on a batch the size of the last real one).
-- @param real a tensor [N, ...] (reused) or a function returning one
-- @return the log row {step, loss_d, loss_g, wasserstein (E D(x) − E D(G(z))), gp,
--   grad_norm_d, grad_norm_g}
-- @usage local row = tr:step(function() return dist:sample(256) end)
function T:step(real)
  self.steps = self.steps + 1
  local row = { step = self.steps }
  local x
  if self.loss ~= "mmd" then
    for _ = 1, self.n_critic do
      x = real_batch(real)
      row.loss_d, row.wasserstein, row.gp, row.grad_norm_d = critic_step(self, x)
      stop_if_bad(self, row.loss_d, "the critic's loss", "discriminator")
      stop_if_bad(self, row.grad_norm_d, "the critic's gradient norm", "discriminator")
    end
  else
    x = real_batch(real)
  end
  local G, D, kind = self.G, self.D, self.loss
  local xg = G(M.noise(G, x:size(1), { generator = self.gen, dtype = x:dtype() }))
  check_fake(x, xg)
  local loss
  if kind == "mmd" then
    loss = losses.mmd_g(x, xg, { bandwidths = self.bandwidths })
  else
    local df = D(xg)
    if kind == "minimax" then loss = losses.g_loss_minimax(df)
    elseif kind == "ns" then loss = losses.g_loss_ns(df)
    elseif kind:sub(1, 5) == "fgan:" then loss = losses.fgan_g(df, kind:sub(6))
    else loss = losses.wgan_g(df) end
  end
  -- gradients for G's parameters only: D's weight gradients would be thrown away
  self.opt_g:zero_grad()
  local params = G:parameters()
  local grads = sc.grad(loss, params, { allow_unused = true })
  for i, p in ipairs(params) do p.grad = grads[i] end
  row.loss_g = loss:item()
  row.grad_norm_g = grad_norm(G:parameters())
  stop_if_bad(self, row.loss_g, "the generator's loss", "generator")
  stop_if_bad(self, row.grad_norm_g, "the generator's gradient norm", "generator")
  self.opt_g:step()
  if self.ema then self.ema:update() end
  self.history[#self.history + 1] = row
  return row
end

--- Runs `steps` outer steps (`step` with the same `real`).
-- @param real a tensor or a function returning real batches
-- @param steps number of generator updates
-- @param opts {callback = nil (called with each row)}
-- @return tr.history
-- @usage tr:train(function() return d:sample(256) end, 2000)
function T:train(real, steps, opts)
  opts = util.check_options(opts, { "callback" }, "scorch.models.gan.Trainer.train")
  for _ = 1, steps do
    local row = self:step(real)
    if opts.callback then opts.callback(row) end
  end
  return self.history
end

--- Samples from the generator (its EMA weights when the trainer keeps an
-- average), without gradients.
-- @param n number of samples
-- @return tensor [n, ...]
-- @usage local xs = tr:sample(1000)
function T:sample(n)
  return sc.no_grad(function()
    if not self.ema then return self.G(M.noise(self.G, n, { generator = self.gen })) end
    return self.ema:with_average(self.G, function() return self.G(M.noise(self.G, n, { generator = self.gen })) end)
  end)
end

return M
