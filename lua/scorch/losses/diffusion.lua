--- Diffusion training objectives: DDPM's simplified ELBO, continuous-time
-- denoising score matching for SDEs, and EDM's preconditioned denoiser loss.
-- Each is loss(model, x0, opts) -> scalar tensor; the model is called with
-- its conditioning as an [N, 1] tensor (the timestep, t or σ).
-- @module scorch.losses.diffusion
local sc = require "scorch"
local util = require "scorch.util"
local param = require "scorch.param"
local schedules = require "scorch.schedules.diffusion"

local M = {}

local function check_batch(x, fn)
  if not sc.is_tensor(x) or x:dim() < 2 then
    error(("scorch.losses.%s: expected a batch of points [N, D, ...]"):format(fn), 3)
  end
end

local function check_model(m, fn)
  if not util.is_callable(m) then
    error(("scorch.losses.%s: expected a callable model (got %s)"):format(fn, type(m)), 3)
  end
end

-- Shape [N, 1, ..., 1] to broadcast a per-example column against x.
local function column_shape(x)
  local shape = { x:size(1) }
  for i = 2, x:dim() do shape[i] = 1 end
  return shape
end

-- Per-example squared error, summed over all but the batch dimension.
local function per_example_sq(a, b)
  local n = a:size(1)
  return (a - b):square():reshape(n, -1):sum(2, false)
end

--- Ho, Jain & Abbeel 2020, Algorithm 1 (L_simple, eq. 14):
--   t ~ U{1..T}, ε ~ N(0, I), minimise ‖ε − ε_θ(√ᾱ_t x₀ + √(1 − ᾱ_t) ε, t)‖².
-- ddpm(model, x0, {schedule=sc.schedules.ddpm{}, prediction="eps", generator=,
--                  vlb_weight=, decoder="gaussian"})
-- prediction "x0" or "v" regresses that target instead (Salimans & Ho 2022).
-- The squared error is averaged over every element (Ho et al.'s mean_flat).
-- A network with learned variances (net.learned_variance, net:forward_variance(x, c) -> out, v,
-- e.g. DiffusionMLP{learn_variance = true}) trains with Nichol & Dhariwal 2021's hybrid
-- loss (§3.1): L_simple + λ L_vlb, λ = vlb_weight (default 0.001), where L_vlb = T·L_{t−1}
-- at the same t and x_t (an unbiased estimate of Σ_t L_{t−1}, in bits per dimension as
-- in their code; L₀ the decoder of sc.likelihood.ddpm_term) and the mean enters L_vlb
-- through a stop-gradient, so L_vlb trains only v and L_simple only the mean.
-- Returns the loss, and for the hybrid loss a second value {simple =, vlb =} (numbers).
function M.ddpm(model, x0, opts)
  check_model(model, "ddpm")
  check_batch(x0, "ddpm")
  opts = util.check_options(opts, { "schedule", "prediction", "generator", "vlb_weight", "decoder" },
    "scorch.losses.ddpm")
  local sched = opts.schedule or schedules.ddpm {}
  if type(sched) ~= "table" or sched.kind ~= "ddpm" then
    error("scorch.losses.ddpm: schedule must be a DDPM schedule (sc.schedules.ddpm)", 2)
  end
  local kind = opts.prediction or "eps"
  local learns = type(model) == "table" and model.learned_variance == true
  local lambda = opts.vlb_weight
  if lambda == nil and learns then lambda = 0.001 end
  if lambda ~= nil and (type(lambda) ~= "number" or lambda < 0 or lambda ~= lambda) then
    error("scorch.losses.ddpm: vlb_weight must be a number >= 0", 2)
  end
  if lambda and lambda > 0 and not learns then
    error("scorch.losses.ddpm: vlb_weight needs a network with learned variances (e.g."
      .. " DiffusionMLP{learn_variance = true}); with fixed variances L_vlb has no gradient", 2)
  end
  if opts.decoder ~= nil and not learns then
    error("scorch.losses.ddpm: decoder is for the hybrid loss of a network with learned variances", 2)
  end
  local dt, gen = x0:dtype(), opts.generator
  x0 = x0:detach()
  local t = sc.randint(1, sched.T + 1, column_shape(x0), { generator = gen, dtype = dt })
  local eps = sc.randn(x0:shape(), { generator = gen, dtype = dt })
  local a, s = sched:marginal(t)
  local xt = x0 * a + eps * s
  local level = param.level(t, xt)   -- the network's level: an [N, 1] column
  local out, v
  if learns then out, v = model:forward_variance(xt, level) else out = model(xt, level) end
  local target = param.target(kind, x0, eps, a, s)
  local simple = (out - target):square():mean()
  if not (lambda and lambda > 0) then return simple end
  local likelihood = require "scorch.likelihood"
  local eps_hat = param.convert(out:detach(), kind, "eps", xt, a, s)   -- stop-gradient on the mean
  local logvar = sched:reverse_log_variance(t, "learned", v)
  local term = likelihood.ddpm_term(sched, x0, xt, t, eps_hat, logvar, opts.decoder)
  local d = x0:numel() // x0:size(1)
  local vlb = term:mean() * (sched.T / (d * math.log(2)))
  return simple + vlb * lambda, { simple = simple:item(), vlb = vlb:item() }
end

--- Song et al. 2021, eq. 7 (continuous-time DSM): t ~ U(ε, T),
--   λ(t) E‖s_θ(x_t, t) − ∇log p_0t(x_t | x₀)‖²,  ∇log p_0t = −z/s_t,
-- with λ = s_t² ("sigma2", the default: ‖s_t s_θ + z‖²) or λ = g(t)² ("likelihood":
-- Song, Durkan, Murray & Ermon 2021, Thm. 1, bounds the NLL), or 1 ("none").
-- sde_dsm(model, x0, {sde=, weighting=, prediction="score", eps=1e-5, generator=})
-- The model's output is read as `prediction` (score, eps, x0, v) for x_t.
-- Summed over dimensions, averaged over the batch (Song et al.'s reduce_mean=False).
function M.sde_dsm(model, x0, opts)
  check_model(model, "sde_dsm")
  check_batch(x0, "sde_dsm")
  opts = util.check_options(opts, { "sde", "prediction", "weighting", "eps", "generator" }, "scorch.losses.sde_dsm")
  local sde = opts.sde
  if not schedules.is_sde(sde) then error("scorch.losses.sde_dsm: opts.sde must be an SDE", 2) end
  local kind = opts.prediction or "score"
  local weighting = opts.weighting or "sigma2"
  local t_eps = opts.eps or 1e-5
  local n, dt, gen = x0:size(1), x0:dtype(), opts.generator
  x0 = x0:detach()
  local t = sc.rand(column_shape(x0), { generator = gen, dtype = dt }) * (sde.T - t_eps) + t_eps
  local z = sc.randn(x0:shape(), { generator = gen, dtype = dt })
  local a, s = sde:marginal(t)
  local xt = x0 * a + z * s
  local out = model(xt, param.level(t, xt))   -- the network's level: an [N, 1] column
  local per
  if weighting == "sigma2" then
    -- s_t² ‖score + z/s_t‖² = ‖s_t·score + z‖² = ‖z − ε̂‖²
    per = per_example_sq(param.convert(out, kind, "eps", xt, a, s), z)
  elseif weighting == "likelihood" or weighting == "none" then
    local score = param.convert(out, kind, "score", xt, a, s)
    per = per_example_sq(score, z / s * -1)
    if weighting == "likelihood" then
      local g = sde:diffusion(t)
      per = per * (g * g):reshape(n)
    end
  else
    error(("scorch.losses.sde_dsm: unknown weighting '%s' (sigma2, likelihood, none)")
      :format(tostring(weighting)), 2)
  end
  return per:mean()
end

--- Karras et al. 2022, eq. 2 and Table 1 (EDM training):
--   ln σ ~ N(P_mean, P_std²), n ~ N(0, σ² I),
--   λ(σ) ‖D(x₀ + n, σ) − x₀‖²,  λ(σ) = (σ² + σ_d²)/(σ σ_d)².
-- edm(denoiser, x0, {P_mean=-1.2, P_std=1.2, sigma_data=0.5, generator=})
-- denoiser is D(x, σ) — typically sc.param.edm(net), or any network made a
-- denoiser by sc.param.denoiser.  Averaged over every element (as EDM's code).
function M.edm(denoiser, x0, opts)
  check_model(denoiser, "edm")
  check_batch(x0, "edm")
  opts = util.check_options(opts, { "P_mean", "P_std", "sigma_data", "generator" }, "scorch.losses.edm")
  local pm, ps = opts.P_mean or -1.2, opts.P_std or 1.2
  local sd = opts.sigma_data or (type(denoiser) == "table" and denoiser.sigma_data) or 0.5
  local dt, gen = x0:dtype(), opts.generator
  x0 = x0:detach()
  local sigma = (sc.randn(column_shape(x0), { generator = gen, dtype = dt }) * ps + pm):exp()
  local noise = sc.randn(x0:shape(), { generator = gen, dtype = dt }) * sigma
  local d = denoiser(x0 + noise, sigma)
  local w = param.edm_weight(sigma, sd)
  return ((d - x0):square() * w):mean()
end

return M
