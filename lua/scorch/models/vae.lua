--- The variational autoencoder (Kingma & Welling 2014; Rezende, Mohamed &
-- Wierstra 2014): a diagonal-Gaussian encoder q(z|x) = N(μ(x), diag σ²(x)),
-- the prior p(z) = N(0, I), and a decoder p(x|z) that is Bernoulli
-- (intensities in [0, 1]), Gaussian with a fixed or a learned variance, or,
-- for 8-bit images (values 0..255), discretised logistic (Salimans et al.
-- 2017, PixelCNN++ §2.1) or categorical over 256 values.  Encoder and decoder
-- are MLPs or small convolutional networks.  The objectives are
-- sc.losses.elbo and sc.losses.iwae.
-- @classmod scorch.models.VAE
local sc = require "scorch"
local nn = sc.nn
local util = require "scorch.util"
local flows = require "scorch.flows"

local VAE = nn.Module:extend("VAE")
local NAME = "scorch.models.VAE"
local LOG_2PI = math.log(2 * math.pi)
local shape_str = util.shape_str

-- decoder outputs per data dimension
local OUTPUTS = { bernoulli = 1, gaussian = 1, gaussian_learned = 2, logistic = 2, categorical = 256 }
VAE.likelihoods = { "bernoulli", "gaussian", "gaussian_learned", "logistic", "categorical" }

local function positive_int(v, name)
  if math.type(v) ~= "integer" or v < 1 then
    error(("%s: option %s must be a positive integer (got %s)"):format(NAME, name, tostring(v)), 4)
  end
end

--- VAE{x_dim=784, latent=32, ...} or VAE{shape={C, H, W}, arch="conv", ...}.
-- @param opts table: x_dim (D, vectors) or shape ({C, H, W}; images); latent (L, 32);
--   arch ("mlp" or "conv"; conv needs shape with H, W divisible by 4);
--   hidden (MLP widths of the encoder, {512, 256}; the decoder mirrors them);
--   channels (conv widths, {32, 64}); act ("relu"); likelihood ("bernoulli", "gaussian",
--   "gaussian_learned", "logistic", "categorical"; default "bernoulli");
--   sigma (standard deviation of the fixed Gaussian decoder, 1); dtype; generator
-- @return the model: encode, decode, log_likelihood, sample, reconstruct
-- @usage local vae = sc.models.VAE{x_dim = 784, latent = 32, hidden = {512, 256}}
function VAE:init(opts)
  opts = util.check_options(opts, { "x_dim", "shape", "latent", "arch", "hidden", "channels", "act",
    "likelihood", "sigma", "dtype", "generator" }, NAME, 4)
  local lat = opts.latent or 32
  positive_int(lat, "latent")
  self.latent = lat
  self.likelihood = opts.likelihood or "bernoulli"
  local k = OUTPUTS[self.likelihood]
  if not k then
    error(("%s: option likelihood must be one of %s (got %s)")
      :format(NAME, table.concat(VAE.likelihoods, ", "), tostring(opts.likelihood)), 3)
  end
  self.sigma = opts.sigma or 1
  if type(self.sigma) ~= "number" or self.sigma <= 0 then
    error(("%s: option sigma must be a positive number (got %s)"):format(NAME, tostring(opts.sigma)), 3)
  end
  self.k = k
  self.dtype = opts.dtype or "float32"
  self.arch = opts.arch or "mlp"
  if opts.shape then
    local s = opts.shape
    if type(s) ~= "table" or #s ~= 3 then error(NAME .. ": option shape must be {C, H, W}", 3) end
    for i = 1, 3 do positive_int(s[i], "shape[" .. i .. "]") end
    self.shape = { s[1], s[2], s[3] }
    self.x_dim = s[1] * s[2] * s[3]
  else
    self.x_dim = opts.x_dim or 784
    positive_int(self.x_dim, "x_dim")
  end
  local lo = { dtype = opts.dtype, generator = opts.generator }
  if self.arch == "mlp" then
    local hidden = opts.hidden or { 512, 256 }
    local rev = {}
    for i = #hidden, 1, -1 do rev[#rev + 1] = hidden[i] end
    local act = opts.act or "relu"
    self.encoder = nn.MLP { ["in"] = self.x_dim, out = 2 * lat, hidden = hidden, act = act,
      dtype = opts.dtype, generator = opts.generator }
    self.decoder = nn.MLP { ["in"] = lat, out = k * self.x_dim, hidden = rev, act = act,
      dtype = opts.dtype, generator = opts.generator }
  elseif self.arch == "conv" then
    if not self.shape or self.shape[2] % 4 ~= 0 or self.shape[3] % 4 ~= 0 then
      error(("%s: arch \"conv\" needs option shape {C, H, W} with H and W divisible by 4"):format(NAME), 3)
    end
    local ch = opts.channels or { 32, 64 }
    local c, h, w = self.shape[1], self.shape[2] // 4, self.shape[3] // 4
    local co = { stride = 2, padding = 1, dtype = opts.dtype, generator = opts.generator }
    local pad = { padding = 1, dtype = opts.dtype, generator = opts.generator }
    self.feat = { ch[2], h, w }
    self.encoder = nn.Sequential {
      nn.Conv2d(c, ch[1], 3, co), nn.ReLU(), nn.Conv2d(ch[1], ch[2], 3, co), nn.ReLU(),
    }
    self.enc_out = nn.Linear(ch[2] * h * w, 2 * lat, lo)
    self.dec_in = nn.Linear(lat, ch[2] * h * w, lo)
    self.dec_conv1 = nn.Conv2d(ch[2], ch[1], 3, pad)
    self.dec_conv2 = nn.Conv2d(ch[1], c * k, 3, pad)
  else
    error(("%s: option arch must be \"mlp\" or \"conv\" (got %s)"):format(NAME, tostring(opts.arch)), 3)
  end
end

--- Checks a data batch: shape, finiteness and range for the likelihood.
-- @param x tensor [N, D] or [N, C, H, W]
-- @param fn string: the calling function's name for the message
-- @usage vae:check_data(x, "scorch.losses.elbo")
function VAE:check_data(x, fn)
  if not sc.is_tensor(x) then
    error(("%s: argument x must be a tensor (got %s)"):format(fn, type(x)), 3)
  end
  local ok
  if self.shape and x:dim() == 4 then
    local s = x:shape()
    ok = s[2] == self.shape[1] and s[3] == self.shape[2] and s[4] == self.shape[3]
  else
    ok = self.arch == "mlp" and x:dim() == 2 and x:size(2) == self.x_dim
  end
  if not ok then
    local want = self.shape and ("[N, %d, %d, %d]"):format(self.shape[1], self.shape[2], self.shape[3])
      or ("[N, %d]"):format(self.x_dim)
    error(("%s: argument x must be %s (got %s)"):format(fn, want, shape_str(x)), 3)
  end
  if self.likelihood == "gaussian" or self.likelihood == "gaussian_learned" then
    flows.check_input(x, nil, fn, "x")
    return
  end
  -- two passes with nothing allocated: the range, NaN (which both
  -- propagate) or infinities out of it
  local top = self.likelihood == "bernoulli" and 1 or 255
  local xd = x:detach()
  local lo, hi = xd:min():item(), xd:max():item()
  if not (lo >= 0 and hi <= top) then
    flows.check_input(x, nil, fn, "x")
    error(("%s: argument x %s must lie in [0, %d] for the %s decoder (got range [%g, %g])")
      :format(fn, shape_str(x), top, self.likelihood, lo, hi), 3)
  end
end

-- 8-bit decoders see data scaled to [-1, 1]; the others see it as it is.
local function scaled(self, x)
  if self.likelihood == "logistic" or self.likelihood == "categorical" then return x / 127.5 - 1 end
  return x
end

--- q(z|x): the encoder's mean and log-variance.
-- @param x tensor [N, D] or [N, C, H, W]
-- @return mu tensor [N, L], logvar tensor [N, L]
-- @usage local mu, logvar = vae:encode(x)
function VAE:encode(x)
  local n = x:size(1)
  local h
  if self.arch == "mlp" then
    h = self.encoder(scaled(self, x):reshape(n, self.x_dim))
  else
    local xi = scaled(self, x):reshape(n, self.shape[1], self.shape[2], self.shape[3])
    h = self.enc_out(self.encoder(xi):reshape(n, -1))
  end
  return h:narrow(2, 1, self.latent), h:narrow(2, self.latent + 1, self.latent)
end

--- p(x|z): the decoder's distribution parameters, per data dimension.
-- @param z tensor [N, L]
-- @return table: {logits=[N, D]} (bernoulli), {mean=[N, D]} (gaussian), {mean=, logvar=}
--   (gaussian_learned), {mean=, log_scale=} (logistic, on [-1, 1]), {logits=[N, 256, D]} (categorical)
-- @usage local p = vae:decode(z)
function VAE:decode(z)
  if not sc.is_tensor(z) or z:dim() ~= 2 or z:size(2) ~= self.latent then
    error(("%s.decode: argument z must be [N, %d] (got %s)"):format(NAME, self.latent, shape_str(z)), 2)
  end
  local n, d, k = z:size(1), self.x_dim, self.k
  local out
  if self.arch == "mlp" then
    out = self.decoder(z)
  else
    local f = self.feat
    local h = self.dec_in(z):relu():reshape(n, f[1], f[2], f[3])
    h = self.dec_conv1(sc.upsample(h, 2)):relu()
    out = self.dec_conv2(sc.upsample(h, 2))
    -- [N, C·k, H, W] -> [N, k, C, H, W]: output j of channel c sits at channel (j−1)·C + c
    out = out:reshape(n, k, d)
  end
  local kind = self.likelihood
  if kind == "bernoulli" then return { logits = out:reshape(n, d) } end
  if kind == "gaussian" then return { mean = out:reshape(n, d) } end
  if kind == "categorical" then return { logits = out:reshape(n, 256, d) } end
  out = out:reshape(n, 2, d)
  local a, b = out:select(2, 1), out:select(2, 2)
  if kind == "gaussian_learned" then return { mean = a, logvar = b } end
  return { mean = a, log_scale = b }
end

-- Discretised logistic log-probability of 8-bit values (Salimans et al.
-- 2017, eq. 2): the logistic's mass on the bin [x̃ − 1/255, x̃ + 1/255], with
-- the edge bins extended to ±∞.
local function discretised_logistic(x8, mean, log_scale)
  local xt = x8 / 127.5 - 1
  local inv_s = (-log_scale):exp()
  local plus = (xt - mean + 1 / 255) * inv_s
  local minus = (xt - mean - 1 / 255) * inv_s
  local log_cdf_plus = plus:logsigmoid()
  local log_one_minus_cdf_minus = -(minus:softplus())
  local delta = sc.clamp(plus:sigmoid() - minus:sigmoid(), 1e-12, 1)
  local mid = delta:log()
  local low, high = x8:lt(0.5), x8:gt(254.5)
  return sc.where(low, log_cdf_plus, sc.where(high, log_one_minus_cdf_minus, mid))
end

--- log p(x|z) summed over data dimensions, for the decoder's parameters.
-- @param x tensor [N, D] or [N, C, H, W] in data units
-- @param p table from decode
-- @return tensor [N]
-- @usage local rec = vae:log_likelihood(x, vae:decode(z))
function VAE:log_likelihood(x, p)
  local n = x:size(1)
  local xf = x:reshape(n, self.x_dim)
  local kind = self.likelihood
  local lp
  if kind == "bernoulli" then
    -- x log σ(l) + (1 − x) log σ(−l) = x·l − softplus(l), summed per row in one op
    return sc.core.bernoulli_log_prob(p.logits, xf)
  elseif kind == "gaussian" then
    local s = self.sigma
    lp = ((xf - p.mean) / s):square() * -0.5 - (math.log(s) + 0.5 * LOG_2PI)
  elseif kind == "gaussian_learned" then
    lp = (p.logvar + (xf - p.mean):square() * (-p.logvar):exp() + LOG_2PI) * -0.5
  elseif kind == "logistic" then
    lp = discretised_logistic(xf, p.mean, p.log_scale)
  else
    local values = sc.arange(0, 256):to(x:dtype()):reshape(1, 256, 1)
    local onehot = xf:reshape(n, 1, self.x_dim):eq(values):to(x:dtype())
    lp = (onehot * sc.log_softmax(p.logits, 2)):sum(2)
  end
  return lp:sum(2)
end

--- The decoder's mean in data units (an image's expected intensities).
-- @param p table from decode
-- @return tensor [N, D] (or [N, C, H, W] for image models)
-- @usage local xhat = vae:mean(vae:decode(z))
function VAE:mean(p)
  local kind = self.likelihood
  local m
  if kind == "bernoulli" then
    m = p.logits:sigmoid()
  elseif kind == "gaussian" or kind == "gaussian_learned" then
    m = p.mean
  elseif kind == "logistic" then
    m = sc.clamp((p.mean + 1) * 127.5, 0, 255)
  else
    local values = sc.arange(0, 256):to(p.logits:dtype()):reshape(1, 256, 1)
    m = (sc.softmax(p.logits, 2) * values):sum(2)
  end
  if self.shape then return m:reshape(m:size(1), self.shape[1], self.shape[2], self.shape[3]) end
  return m
end

--- The analytic KL(q(z|x) ‖ N(0, I)) = ½ Σ (μ² + σ² − 1 − log σ²) (Kingma & Welling 2014, App. B).
-- @param mu tensor [N, L]
-- @param logvar tensor [N, L]
-- @return tensor [N]
-- @usage local kl = sc.models.VAE.kl(mu, logvar)
function VAE.kl(mu, logvar)
  return (mu:square() + logvar:exp() - 1 - logvar):sum(2) * 0.5
end

--- Reparameterised draws z = μ + σ·ε, ε ~ N(0, I) (Kingma & Welling 2014, §2.4).
-- @param _ the VAE (unused: called as vae:reparameterize(...))
-- @param mu tensor [N, L]
-- @param logvar tensor [N, L]
-- @param k integer number of draws per example (1)
-- @param generator optional sc.Generator
-- @return z tensor [k·N, L] (draw j of example i at row (j−1)·N + i), eps tensor [k·N, L]
-- @usage local z = vae:reparameterize(mu, logvar)
function VAE.reparameterize(_, mu, logvar, k, generator)
  k = k or 1
  local n, l = mu:size(1), mu:size(2)
  local eps = sc.randn({ k, n, l }, { generator = generator, dtype = mu:dtype() })
  local z = mu + (logvar * 0.5):exp() * eps
  return z:reshape(k * n, l), eps:reshape(k * n, l)
end

--- Draws from the model: z ~ N(0, I), then the decoder's mean (or a draw for
-- the Bernoulli and Gaussian decoders when opts.mean = false; the 8-bit
-- decoders always give their mean).  No gradients.
-- @param n integer
-- @param opts table: generator, mean (true)
-- @return tensor [n, D] or [n, C, H, W] in data units
-- @usage local x = vae:sample(64, {generator = sc.Generator(0)})
function VAE:sample(n, opts)
  opts = util.check_options(opts, { "generator", "mean" }, NAME .. ".sample")
  if math.type(n) ~= "integer" or n < 1 then
    error(("%s.sample: argument n must be a positive integer (got %s)"):format(NAME, tostring(n)), 2)
  end
  return sc.no_grad(function()
    local z = sc.randn({ n, self.latent }, { generator = opts.generator, dtype = self.dtype })
    local p = self:decode(z)
    local m = self:mean(p)
    if opts.mean ~= false then return m end
    if self.likelihood == "bernoulli" then
      return sc.rand(m:shape(), { generator = opts.generator, dtype = m:dtype() }):lt(m):to(m:dtype())
    elseif self.likelihood == "gaussian" then
      return m + sc.randn(m:shape(), { generator = opts.generator, dtype = m:dtype() }) * self.sigma
    elseif self.likelihood == "gaussian_learned" then
      local sd = (p.logvar * 0.5):exp():reshape(m:shape())
      return m + sc.randn(m:shape(), { generator = opts.generator, dtype = m:dtype() }) * sd
    end
    return m
  end)
end

--- Reconstructs x through the encoder's mean and the decoder's mean.
-- @param x tensor [N, D] or [N, C, H, W]
-- @return tensor like x
-- @usage local xr = vae:reconstruct(x)
function VAE:reconstruct(x)
  self:check_data(x, NAME .. ".reconstruct")
  return sc.no_grad(function()
    local mu = self:encode(x)
    local m = self:mean(self:decode(mu))
    return m:reshape(x:shape())
  end)
end

function VAE:extra_repr()
  return ("x_dim=%d, latent=%d, arch=%s, likelihood=%s"):format(self.x_dim, self.latent, self.arch,
    self.likelihood)
end

return VAE
