--- Adversarial objectives: the minimax and non-saturating GAN, f-GAN,
-- WGAN with its gradient penalties, and the MMD-GAN generator loss.
-- Reached as `sc.losses.gan` (a table of its own: its short names, `d_loss`,
-- `g_loss`, would read ambiguously beside the score-matching losses).
--
-- Every loss takes network outputs, not networks: `real`/`fake` are the
-- discriminator's logits (or the critic's values) on a batch, [N] or
-- [N, 1].  Probabilities never appear: log D = logsigmoid(logit) and
-- log(1 − D) = logsigmoid(−logit), exact far below float32's exp range.
-- Losses are minimised by both players (each returns what its optimiser
-- descends).
-- @module scorch.losses.gan
local sc = require "scorch"
local util = require "scorch.util"

local M = {}

-- ---- argument checks --------------------------------------------------------------

-- A batch of scores: a tensor [N] or [N, 1], returned as [N].
local function scores(t, fn, what)
  if not sc.is_tensor(t) then
    error(("scorch.losses.gan.%s: %s must be a tensor of scores [N] or [N, 1] (got %s)")
      :format(fn, what, util.shape_str(t)), 4)
  end
  local d = t:dim()
  if d == 1 then return t end
  if d == 2 and t:size(2) == 1 then return t:reshape(t:size(1)) end
  error(("scorch.losses.gan.%s: %s must be scores [N] or [N, 1] (got %s)")
    :format(fn, what, util.shape_str(t)), 4)
end

local function same_shape(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

local function check_critic(critic, fn)
  if not util.is_callable(critic) then
    error(("scorch.losses.gan.%s: critic must be callable (got %s)"):format(fn, type(critic)), 3)
  end
end

-- ---- minimax and non-saturating GAN --------------------------------------------------

--- Discriminator loss of the minimax GAN, −E log D(x) − E log(1 − D(G(z)))
-- (Goodfellow et al. 2014, eq. 1), from logits.  The non-saturating GAN
-- trains its discriminator with the same loss.
-- @param real logits on data, [N] or [N, 1]
-- @param fake logits on generated samples, [M] or [M, 1]
-- @return scalar tensor; at the optimum D* = p/(p + q) it equals log 4 − 2·JSD(p‖q)
-- @usage local ld = sc.losses.gan.d_loss(D(x), D(G(z):detach()))
function M.d_loss(real, fake)
  real, fake = scores(real, "d_loss", "real"), scores(fake, "d_loss", "fake")
  return -real:logsigmoid():mean() - (-fake):logsigmoid():mean()
end

--- Minimax generator loss E log(1 − D(G(z))) (Goodfellow et al. 2014,
-- eq. 1): its gradient vanishes where D confidently rejects the samples.
-- @param fake logits on generated samples, [N] or [N, 1]
-- @return scalar tensor (≤ 0)
-- @usage local lg = sc.losses.gan.g_loss_minimax(D(G(z)))
function M.g_loss_minimax(fake)
  fake = scores(fake, "g_loss_minimax", "fake")
  return (-fake):logsigmoid():mean()
end

--- Non-saturating generator loss −E log D(G(z)) (Goodfellow et al. 2014,
-- §3): same fixed point as the minimax loss, strong gradients early on.
-- @param fake logits on generated samples, [N] or [N, 1]
-- @return scalar tensor (≥ 0)
-- @usage local lg = sc.losses.gan.g_loss_ns(D(G(z)))
function M.g_loss_ns(fake)
  fake = scores(fake, "g_loss_ns", "fake")
  return -fake:logsigmoid():mean()
end

--- The value V(D, G) = E log D(x) + E log(1 − D(G(z))) of the minimax game
-- (what the discriminator maximises: −d_loss).
-- @param real logits on data, [N] or [N, 1]
-- @param fake logits on generated samples, [M] or [M, 1]
-- @return scalar tensor; 2·JSD − log 4 at the optimal discriminator
-- @usage local v = sc.losses.gan.minimax_value(D(x), D(xg)):item()
function M.minimax_value(real, fake)
  real, fake = scores(real, "minimax_value", "real"), scores(fake, "minimax_value", "fake")
  return real:logsigmoid():mean() + (-fake):logsigmoid():mean()
end

-- ---- f-GAN ------------------------------------------------------------------------

-- Nowozin, Cseke & Tomioka 2016, Table 2: the output activation g_f
-- (T = g_f(v) lies in the conjugate's domain) and f*(g_f(v)), each written
-- in a form stable for any logit v.  `f` is the generator function of
-- D_f(P‖Q) = ∫ q f(p/q) (Table 1), and `value` its divergence.
local DIVERGENCES = {
  -- f(u) = u log u;  g = v;  f*(t) = exp(t − 1)
  kl = {
    activation = function(v) return v end,
    conjugate = function(v) return (v - 1):exp() end,
    f = function(u) return u * math.log(u) end,
  },
  -- f(u) = −log u;  g = −exp(−v);  f*(t) = −1 − log(−t) = v − 1
  reverse_kl = {
    activation = function(v) return -(-v):exp() end,
    conjugate = function(v) return v - 1 end,
    f = function(u) return -math.log(u) end,
  },
  -- f(u) = (u − 1)²;  g = v;  f*(t) = t²/4 + t
  pearson = {
    activation = function(v) return v end,
    conjugate = function(v) return v * v * 0.25 + v end,
    f = function(u) return (u - 1) ^ 2 end,
  },
  -- f(u) = −(u + 1) log((1 + u)/2) + u log u (D_f = 2·JSD);
  -- g = log 2 − log(1 + e^{−v});  f*(t) = −log(2 − eᵗ) = softplus(v) − log 2
  jensen_shannon = {
    activation = function(v) return v:logsigmoid() + math.log(2) end,
    conjugate = function(v) return v:softplus() - math.log(2) end,
    f = function(u) return -(u + 1) * math.log((1 + u) / 2) + (u > 0 and u * math.log(u) or 0) end,
  },
  -- f(u) = u log u − (u + 1) log(u + 1) (D_f = 2·JSD − log 4);
  -- g = −log(1 + e^{−v});  f*(t) = −log(1 − eᵗ) = softplus(v)
  gan = {
    activation = function(v) return v:logsigmoid() end,
    conjugate = function(v) return v:softplus() end,
    f = function(u) return (u > 0 and u * math.log(u) or 0) - (u + 1) * math.log(u + 1) end,
  },
}
DIVERGENCES.js = DIVERGENCES.jensen_shannon
DIVERGENCES.chi2 = DIVERGENCES.pearson

--- The f-divergences f-GAN offers, by name: `kl`, `reverse_kl`, `pearson`
-- (alias `chi2`), `jensen_shannon` (alias `js`; its f gives 2·JSD) and
-- `gan`.  Each entry holds `activation(v)` (g_f), `conjugate(v)`
-- (f*(g_f(v))) and `f(u)` (a Lua number function, for closed forms).
-- @table divergences
M.divergences = DIVERGENCES

local function divergence(name, fn)
  local d = DIVERGENCES[name]
  if not d then
    local names = {}
    for k in pairs(DIVERGENCES) do names[#names + 1] = k end
    table.sort(names)
    error(("scorch.losses.gan.%s: unknown divergence '%s' (valid: %s)")
      :format(fn, tostring(name), table.concat(names, ", ")), 3)
  end
  return d
end

--- The f-GAN variational lower bound E_P[g_f(V(x))] − E_Q[f*(g_f(V(x)))]
-- ≤ D_f(P‖Q) (Nowozin et al. 2016, eq. 6 with Table 2), P the data and Q
-- the generator.
-- @param real critic outputs V on data, [N] or [N, 1]
-- @param fake critic outputs V on generated samples, [M] or [M, 1]
-- @param name divergence name (see `divergences`)
-- @return scalar tensor: the bound
-- @usage local b = sc.losses.gan.fgan_bound(V(x), V(xg), "kl"):item()
function M.fgan_bound(real, fake, name)
  local d = divergence(name, "fgan_bound")
  real, fake = scores(real, "fgan_bound", "real"), scores(fake, "fgan_bound", "fake")
  return d.activation(real):mean() - d.conjugate(fake):mean()
end

--- f-GAN critic loss: the negated variational bound (the critic maximises it).
-- @param real critic outputs on data, [N] or [N, 1]
-- @param fake critic outputs on generated samples, [M] or [M, 1]
-- @param name divergence name (see `divergences`)
-- @return scalar tensor
-- @usage local ld = sc.losses.gan.fgan_d(V(x), V(G(z):detach()), "reverse_kl")
function M.fgan_d(real, fake, name)
  local d = divergence(name, "fgan_d")
  real, fake = scores(real, "fgan_d", "real"), scores(fake, "fgan_d", "fake")
  return d.conjugate(fake):mean() - d.activation(real):mean()
end

--- f-GAN generator loss: the generator's part of the bound it minimises,
-- −E_Q[f*(g_f(V(G(z))))] (Nowozin et al. 2016, eq. 6).
-- @param fake critic outputs on generated samples, [N] or [N, 1]
-- @param name divergence name (see `divergences`)
-- @return scalar tensor
-- @usage local lg = sc.losses.gan.fgan_g(V(G(z)), "pearson")
function M.fgan_g(fake, name)
  local d = divergence(name, "fgan_g")
  fake = scores(fake, "fgan_g", "fake")
  return -d.conjugate(fake):mean()
end

-- ---- Wasserstein GAN ---------------------------------------------------------------

--- WGAN critic loss E[D(G(z))] − E[D(x)] (Arjovsky et al. 2017, Algorithm 1):
-- its negation estimates W1 when D is 1-Lipschitz.
-- @param real critic values on data, [N] or [N, 1]
-- @param fake critic values on generated samples, [M] or [M, 1]
-- @return scalar tensor
-- @usage local ld = sc.losses.gan.wgan_d(D(x), D(G(z):detach()))
function M.wgan_d(real, fake)
  real, fake = scores(real, "wgan_d", "real"), scores(fake, "wgan_d", "fake")
  return fake:mean() - real:mean()
end

--- WGAN generator loss −E[D(G(z))] (Arjovsky et al. 2017, Algorithm 1).
-- @param fake critic values on generated samples, [N] or [N, 1]
-- @return scalar tensor
-- @usage local lg = sc.losses.gan.wgan_g(D(G(z)))
function M.wgan_g(fake)
  fake = scores(fake, "wgan_g", "fake")
  return -fake:mean()
end

-- ∇ₓ D(x) at points x (detached from their own history), kept in the graph
-- so the penalty can be differentiated w.r.t. the critic's parameters.
local function input_gradient(critic, x, fn)
  x = x:detach():requires_grad(true)
  local out = util.enable_grad(function() return critic(x) end)
  if not sc.is_tensor(out) then
    error(("scorch.losses.gan.%s: the critic returned a %s, not a tensor"):format(fn, type(out)), 3)
  end
  out = scores(out, fn, "the critic's output")
  if out:size(1) ~= x:size(1) then
    error(("scorch.losses.gan.%s: the critic returned %s for %d points %s")
      :format(fn, util.shape_str(out), x:size(1), util.shape_str(x)), 3)
  end
  local g = util.enable_grad(function()
    return sc.grad(out:sum(), { x }, { create_graph = true, retain_graph = true, allow_unused = true })[1]
  end)
  if g == nil then
    error(("scorch.losses.gan.%s: the critic's output does not depend on its input "
      .. "(no gradient to penalise)"):format(fn), 3)
  end
  return g:reshape(x:size(1), -1)
end

--- Gradient penalty on the critic.  "two_sided" (default): λ E[(‖∇D(x̂)‖ − 1)²]
-- on x̂ = εx + (1 − ε)x̃, ε ~ U[0, 1) per example (Gulrajani et al. 2017,
-- Algorithm 1); "one_sided": λ E[max(0, ‖∇D(x̂)‖ − 1)²] (Petzka et al.
-- 2018); "r1": (λ/2) E‖∇D(x)‖² on the real points only (Mescheder et al.
-- 2018, eq. 9).  Built with create_graph: backward reaches the critic's
-- parameters (a double backward).
-- @param critic callable, x [N, ...] → values [N] or [N, 1]
-- @param real data batch [N, ...]
-- @param fake generated batch, same shape as real (ignored by "r1"; may be nil then)
-- @param opts {weight = 10, kind = "two_sided"|"one_sided"|"r1", generator = nil}
-- @return scalar tensor (the weighted penalty), and the mean gradient norm as a number
-- @usage local gp = sc.losses.gan.gradient_penalty(D, x, xg:detach(), {weight = 10})
function M.gradient_penalty(critic, real, fake, opts)
  opts = util.check_options(opts, { "weight", "kind", "generator" }, "scorch.losses.gan.gradient_penalty")
  check_critic(critic, "gradient_penalty")
  local kind, weight = opts.kind or "two_sided", opts.weight or 10
  if kind ~= "two_sided" and kind ~= "one_sided" and kind ~= "r1" then
    error(("scorch.losses.gan.gradient_penalty: kind must be two_sided, one_sided or r1 (got %s)")
      :format(tostring(kind)), 2)
  end
  if type(weight) ~= "number" or weight < 0 then
    error(("scorch.losses.gan.gradient_penalty: weight must be a number ≥ 0 (got %s)"):format(tostring(weight)), 2)
  end
  if not sc.is_tensor(real) or real:dim() < 2 then
    error(("scorch.losses.gan.gradient_penalty: real must be a batch [N, ...] (got %s)")
      :format(util.shape_str(real)), 2)
  end
  local points
  if kind == "r1" then
    points = real
  else
    if not sc.is_tensor(fake) or not same_shape(real:shape(), fake:shape()) then
      error(("scorch.losses.gan.gradient_penalty: real %s and fake %s must have the same shape")
        :format(util.shape_str(real), util.shape_str(fake)), 2)
    end
    local shape = { real:size(1) }
    for i = 2, real:dim() do shape[i] = 1 end
    local eps = sc.rand(shape, { generator = opts.generator, dtype = real:dtype() })
    points = real:detach() * eps + fake:detach() * (1 - eps)
  end
  local g = input_gradient(critic, points, "gradient_penalty")
  local norm = ((g * g):sum(2) + 1e-12):sqrt()
  local pen
  if kind == "r1" then
    pen = (g * g):sum(2):mean() * (weight / 2)
  elseif kind == "one_sided" then
    pen = (norm - 1):relu():square():mean() * weight
  else
    pen = (norm - 1):square():mean() * weight
  end
  return pen, norm:detach():mean():item()
end

-- ---- MMD-GAN -----------------------------------------------------------------------

-- Σ_h exp(−‖a_i − b_j‖²/(2h²)) for every pair, [N, M].
local function rbf_mixture(a, b, bandwidths)
  local aa = (a * a):sum(2, true)
  local bb = (b * b):sum(2, true):t()
  local d2 = (aa + bb - sc.matmul(a, b:t()) * 2):relu()
  local k
  for _, h in ipairs(bandwidths) do
    local kh = (d2 * (-0.5 / (h * h))):exp()
    k = k and k + kh or kh
  end
  return k
end

--- MMD-GAN generator loss: the biased squared MMD between a data batch and
-- a generated batch under a fixed mixture of Gaussian kernels (Li, Swersky
-- & Zemel 2015, GMMN, eq. 2), optionally on learned features f(x) (Li et
-- al. 2017, MMD-GAN, eq. 3: the critic then maximises this value).
-- @param real data batch [N, ...]
-- @param fake generated batch [M, ...] (same trailing shape)
-- @param opts {bandwidths = {0.1, 0.2, 0.5, 1, 2, 5} (length scales h), features = nil (callable x → [N, F])}
-- @return scalar tensor MMD²_b ≥ 0, differentiable w.r.t. fake (and the features' parameters)
-- @usage local lg = sc.losses.gan.mmd_g(x, G(z), {bandwidths = {0.5, 1, 2}})
function M.mmd_g(real, fake, opts)
  opts = util.check_options(opts, { "bandwidths", "features" }, "scorch.losses.gan.mmd_g")
  if not sc.is_tensor(real) or not sc.is_tensor(fake) or real:dim() < 2 or fake:dim() < 2 then
    error(("scorch.losses.gan.mmd_g: real and fake must be batches [N, ...] (got %s and %s)")
      :format(util.shape_str(real), util.shape_str(fake)), 2)
  end
  local rs, fs = real:shape(), fake:shape()
  table.remove(rs, 1); table.remove(fs, 1)
  if not same_shape(rs, fs) then
    error(("scorch.losses.gan.mmd_g: real %s and fake %s differ beyond the batch dimension")
      :format(util.shape_str(real), util.shape_str(fake)), 2)
  end
  local bw = opts.bandwidths or { 0.1, 0.2, 0.5, 1, 2, 5 }
  if type(bw) ~= "table" or #bw == 0 then
    error("scorch.losses.gan.mmd_g: bandwidths must be a non-empty list of numbers > 0", 2)
  end
  for i, h in ipairs(bw) do
    if type(h) ~= "number" or h <= 0 then
      error(("scorch.losses.gan.mmd_g: bandwidth %d must be a number > 0 (got %s)"):format(i, tostring(h)), 2)
    end
  end
  local a, b = real:reshape(real:size(1), -1), fake:reshape(fake:size(1), -1)
  if opts.features ~= nil then
    if not util.is_callable(opts.features) then
      error("scorch.losses.gan.mmd_g: features must be callable", 2)
    end
    a, b = opts.features(real), opts.features(fake)
    a, b = a:reshape(a:size(1), -1), b:reshape(b:size(1), -1)
  end
  local n, m = a:size(1), b:size(1)
  return rbf_mixture(a, a, bw):sum() / (n * n) + rbf_mixture(b, b, bw):sum() / (m * m)
    - rbf_mixture(a, b, bw):sum() * (2 / (n * m))
end

return M
