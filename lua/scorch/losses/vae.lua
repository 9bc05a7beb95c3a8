-- VAE objectives: the negative ELBO and the negative IWAE bound, each
-- loss(vae, x, opts) -> scalar to minimise, info.  The model is a
-- sc.models.VAE (or anything with encode, decode, log_likelihood,
-- reparameterize, check_data and x_dim).
local util = require "scorch.util"

local M = {}

local LOG_2PI = math.log(2 * math.pi)

-- log N(z; μ, diag e^logvar) and log N(z; 0, I), summed over the last dim.
local function log_normal(z, mu, logvar)
  return ((z - mu):square() * (-logvar):exp() + logvar + LOG_2PI):sum(2) * -0.5
end
local function log_std_normal(z)
  return (z:square() + LOG_2PI):sum(2) * -0.5
end

local function check_model(vae, fn)
  if type(vae) ~= "table" or type(vae.encode) ~= "function" or type(vae.decode) ~= "function" then
    error(("scorch.losses.%s: argument vae must be a VAE (sc.models.VAE), got %s"):format(fn, type(vae)), 3)
  end
end

-- nats per example -> the requested unit
local function in_unit(t, unit, d, fn)
  if unit == nil or unit == "nats" then return t end
  if unit == "bits_per_dim" then return t / (d * math.log(2)) end
  error(("scorch.losses.%s: option unit must be \"nats\" or \"bits_per_dim\" (got %s)"):format(fn, tostring(unit)), 3)
end

--- The negative evidence lower bound (Kingma & Welling 2014, eq. 3, with β of
-- Higgins et al. 2017): −E_q[log p(x|z)] + β·KL(q(z|x) ‖ N(0, I)), one
-- reparameterised draw per example, averaged over the batch.
-- @param vae sc.models.VAE
-- @param x tensor [N, D] or [N, C, H, W] (data units of the VAE's likelihood)
-- @param opts table: beta (1); kl ("analytic", or "sample": log q(z|x) − log p(z) at the draw);
--   unit ("nats" or "bits_per_dim": nats/(D log 2)); generator
-- @return scalar loss, and info {elbo = [N] per-example ELBO in nats (β = 1), rec = [N], kl = [N]}
-- @usage local loss = sc.losses.elbo(vae, x, {beta = 1}); loss:backward()
function M.elbo(vae, x, opts)
  check_model(vae, "elbo")
  opts = util.check_options(opts, { "beta", "kl", "unit", "generator" }, "scorch.losses.elbo")
  vae:check_data(x, "scorch.losses.elbo")
  local beta = opts.beta or 1
  if type(beta) ~= "number" or beta < 0 then
    error(("scorch.losses.elbo: option beta must be a non-negative number (got %s)"):format(tostring(beta)), 2)
  end
  local mu, logvar = vae:encode(x)
  local z = vae:reparameterize(mu, logvar, 1, opts.generator)
  local rec = vae:log_likelihood(x, vae:decode(z))
  local kl
  if opts.kl == nil or opts.kl == "analytic" then
    kl = vae.kl(mu, logvar)
  elseif opts.kl == "sample" then
    kl = log_normal(z, mu, logvar) - log_std_normal(z)
  else
    error(("scorch.losses.elbo: option kl must be \"analytic\" or \"sample\" (got %s)"):format(tostring(opts.kl)), 2)
  end
  local neg = -rec + kl * beta
  local loss = in_unit(neg:mean(), opts.unit, vae.x_dim, "elbo")
  return loss, { elbo = (rec - kl):detach(), rec = rec:detach(), kl = kl:detach() }
end

--- The negative importance-weighted bound (Burda, Grosse & Salakhutdinov
-- 2016, eq. 8): −log (1/K) Σₖ p(x, zₖ)/q(zₖ|x), zₖ ~ q(z|x), averaged over the
-- batch.  K = 1 is the ELBO with a sampled KL; the bound tightens as K grows
-- and is the NLL estimate a VAE reports.
-- @param vae sc.models.VAE
-- @param x tensor [N, D] or [N, C, H, W]
-- @param opts table: k (number of samples, 50); unit ("nats" or "bits_per_dim"); generator
-- @return scalar loss, and info {bound = [N] per-example log-likelihood bound in nats}
-- @usage local nll = sc.losses.iwae(vae, x, {k = 100}):item()
function M.iwae(vae, x, opts)
  check_model(vae, "iwae")
  opts = util.check_options(opts, { "k", "unit", "generator" }, "scorch.losses.iwae")
  vae:check_data(x, "scorch.losses.iwae")
  local k = opts.k or 50
  if math.type(k) ~= "integer" or k < 1 then
    error(("scorch.losses.iwae: option k must be a positive integer (got %s)"):format(tostring(k)), 2)
  end
  local n = x:size(1)
  local mu, logvar = vae:encode(x)
  local z = vae:reparameterize(mu, logvar, k, opts.generator)            -- [k·N, L]
  local shape = x:shape()
  shape[1] = k * n
  local xr = x:unsqueeze(1):expand(k, table.unpack(x:shape())):reshape(shape)
  local mur = mu:unsqueeze(1):expand(k, n, mu:size(2)):reshape(k * n, -1)
  local lvr = logvar:unsqueeze(1):expand(k, n, mu:size(2)):reshape(k * n, -1)
  local logw = vae:log_likelihood(xr, vae:decode(z)) + log_std_normal(z) - log_normal(z, mur, lvr)
  local bound = logw:reshape(k, n):logsumexp(1) - math.log(k)
  return in_unit(-bound:mean(), opts.unit, vae.x_dim, "iwae"), { bound = bound:detach() }
end

return M
