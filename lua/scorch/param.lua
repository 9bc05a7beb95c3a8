-- Model output parameterisations and the conversions between them.
--
-- A noised point is x = α x₀ + s ε (VP: α² + s² = 1; VE: α = 1, s = σ).  A
-- network may predict the noise ε, the clean point x₀ (the denoiser D), the
-- velocity v = α ε − s x₀ (Salimans & Ho 2022), or the score ∇ₓ log p = −ε/s.
-- Given x, α and s each determines the others; convert() maps between them.
--
-- Samplers meet models in one shared coordinate, the VE/EDM view: the
-- denoiser D(x̂, σ̂) of x̂ = x/α = x₀ + σ̂ ε with σ̂ = s/α (Karras et al. 2022,
-- §2).  denoiser() turns any network, trained under any noising process
-- (a DDPM schedule, a VP / sub-VP / VE SDE, or plain σ conditioning) with
-- any output parameterisation, into such a D; score_fn() and eps_fn() turn
-- a D back into the score of an SDE or the ε of a DDPM schedule.  So every
-- sampler can drive every model.
--
-- Networks are called net(x, c) with c their own conditioning (the timestep,
-- t or σ), a number in samplers and an [N, 1] tensor in losses.
local sc = require "scorch"

local M = {}

local function is_num(v) return type(v) == "number" end
local function sqrt(v) if is_num(v) then return math.sqrt(v) end return v:sqrt() end
local function log(v) if is_num(v) then return math.log(v) end return v:log() end

-- ---- conversions --------------------------------------------------------------------

M.predictions = { eps = true, x0 = true, v = true, score = true }

local function check_kind(k, fn)
  if not M.predictions[k] then
    error(("scorch.param.%s: unknown parameterisation '%s' (eps, x0, v, score)")
      :format(fn, tostring(k)), 3)
  end
end

-- Everything passes through ε.
local function to_eps(y, from, x, alpha, s)
  if from == "eps" then return y end
  if from == "x0" then return (x - y * alpha) / s end
  if from == "score" then return y * (-s) end
  -- v = α ε − s x₀, x = α x₀ + s ε  ⇒  ε = (s x + α v)/(α² + s²)
  return (x * s + y * alpha) / (alpha * alpha + s * s)
end

local function from_eps(e, to, x, alpha, s)
  if to == "eps" then return e end
  if to == "x0" then return (x - e * s) / alpha end
  if to == "score" then return e / (-s) end
  local x0 = (x - e * s) / alpha
  return e * alpha - x0 * s
end

-- convert(y, from, to, x, alpha, s): a prediction y of kind `from` for the
-- noised point x = α x₀ + s ε, as kind `to` ("eps", "x0", "v", "score").
-- α and s are numbers or tensors broadcasting against x.
function M.convert(y, from, to, x, alpha, s)
  check_kind(from, "convert")
  check_kind(to, "convert")
  if from == to then return y end
  if from == "v" and to == "x0" then
    return (x * alpha - y * s) / (alpha * alpha + s * s)
  end
  return from_eps(to_eps(y, from, x, alpha, s), to, x, alpha, s)
end

-- Named conversions, for reading in algorithms.
function M.eps_to_x0(eps, x, alpha, s) return M.convert(eps, "eps", "x0", x, alpha, s) end
function M.x0_to_eps(x0, x, alpha, s) return M.convert(x0, "x0", "eps", x, alpha, s) end
function M.eps_to_score(eps, x, alpha, s) return M.convert(eps, "eps", "score", x, alpha, s) end
function M.score_to_eps(score, x, alpha, s) return M.convert(score, "score", "eps", x, alpha, s) end
function M.score_to_x0(score, x, alpha, s) return M.convert(score, "score", "x0", x, alpha, s) end
function M.x0_to_score(x0, x, alpha, s) return M.convert(x0, "x0", "score", x, alpha, s) end
function M.eps_to_v(eps, x, alpha, s) return M.convert(eps, "eps", "v", x, alpha, s) end
function M.v_to_eps(v, x, alpha, s) return M.convert(v, "v", "eps", x, alpha, s) end
function M.v_to_x0(v, x, alpha, s) return M.convert(v, "v", "x0", x, alpha, s) end
function M.x0_to_v(x0, x, alpha, s) return M.convert(x0, "x0", "v", x, alpha, s) end

-- The two views of a noise level: vp(ᾱ) -> α, s with α² + s² = 1;
-- ve(σ) -> 1, σ.  And the VE level of any (α, s): σ̂ = s/α.
function M.vp(alpha_bar) return sqrt(alpha_bar), sqrt(alpha_bar * -1 + 1) end
function M.ve(sigma) return 1, sigma end
function M.ve_sigma(alpha, s) return s / alpha end

-- The target a loss regresses for prediction kind `kind`, from the clean
-- point x₀ and the noise ε of x = α x₀ + s ε.
function M.target(kind, x0, eps, alpha, s)
  check_kind(kind, "target")
  if kind == "eps" then return eps end
  if kind == "x0" then return x0 end
  if kind == "v" then return eps * alpha - x0 * s end
  return eps / (-s)
end

-- ---- EDM preconditioning -------------------------------------------------------------

-- Karras et al. 2022, Table 1 (EDM): c_skip = σ_d²/(σ² + σ_d²),
-- c_out = σ σ_d/√(σ² + σ_d²), c_in = 1/√(σ² + σ_d²), c_noise = ¼ ln σ.
-- edm_coefficients(σ [, σ_data=0.5]) -> c_skip, c_out, c_in, c_noise
function M.edm_coefficients(sigma, sigma_data)
  local sd = sigma_data or 0.5
  local s2 = sigma * sigma + sd * sd
  local c_skip = s2 ^ -1 * (sd * sd)
  local c_out = sigma * sd / sqrt(s2)
  local c_in = s2 ^ -0.5
  return c_skip, c_out, c_in, log(sigma) * 0.25
end

-- Karras et al. 2022, eq. 8: the loss weight λ(σ) = (σ² + σ_d²)/(σ σ_d)²
-- that gives the network F a unit-variance target.
function M.edm_weight(sigma, sigma_data)
  local sd = sigma_data or 0.5
  return (sigma * sigma + sd * sd) / ((sigma * sd) * (sigma * sd))
end

-- A network's conditioning: numbers stay numbers, tensors become [N, 1]
-- (levels broadcast against x as [N, 1, ..., 1] in here).
local function net_cond(c)
  if is_num(c) then return c end
  return c:reshape(c:size(1), 1)
end

local function as_cond(c, x)
  if is_num(c) then return sc.full({ x:size(1), 1 }, c, { dtype = x:dtype() }) end
  return c
end

local function callable(f, fn)
  local t = type(f)
  if t == "function" then return true end
  if t == "table" or t == "userdata" then
    local mt = getmetatable(f)
    if mt and mt.__call then return true end
  end
  error(("scorch.param.%s: expected a function or a callable model (got %s)"):format(fn, t), 3)
end

-- A denoiser object: callable as D(x̂, σ̂); keeps the network for parameters().
local Denoiser = {}
Denoiser.__index = Denoiser
Denoiser.__call = function(self, x, sigma) return self.fn(x, sigma) end
M.Denoiser = Denoiser

function Denoiser:parameters()
  if type(self.net) == "table" and self.net.parameters then return self.net:parameters() end
  return {}
end
function Denoiser:train()
  if type(self.net) == "table" and self.net.train then self.net:train() end
  return self
end
function Denoiser:eval()
  if type(self.net) == "table" and self.net.eval then self.net:eval() end
  return self
end

local function denoiser_object(fn, net, info)
  local d = setmetatable({ fn = fn, net = net }, Denoiser)
  for k, v in pairs(info or {}) do d[k] = v end
  return d
end

-- edm(net [, {sigma_data=0.5}]) -> D(x, σ) = c_skip x + c_out F(c_in x, c_noise)
-- (Karras et al. 2022, eq. 7), F = net called with c_noise as a number or an
-- [N, 1] tensor.
function M.edm(net, opts)
  callable(net, "edm")
  opts = opts or {}
  local sd = opts.sigma_data or 0.5
  local function D(x, sigma)
    local c_skip, c_out, c_in, c_noise = M.edm_coefficients(sigma, sd)
    return x * c_skip + net(x * c_in, net_cond(c_noise)) * c_out
  end
  return denoiser_object(D, net, { sigma_data = sd, kind = "edm" })
end

-- ---- any network as a denoiser ---------------------------------------------------------------

-- A process describes how a network was trained: cond_of_sigma(σ̂) gives its
-- conditioning and the input scale α at VE level σ̂.  Schedules (DDPM) and
-- SDEs (VP, sub-VP, VE) from scorch.schedules are processes; the string
-- "sigma" (or "ve") means net(x̂, σ̂) on unscaled x̂.
local sigma_process = { cond_of_sigma = function(_, sigma) return sigma, 1 end }

local function process_of(p, fn)
  if p == nil or p == "sigma" or p == "ve" then return sigma_process end
  if type(p) == "table" and type(p.cond_of_sigma) == "function" then return p end
  error(("scorch.param.%s: process must be a DDPM schedule, an SDE or \"sigma\""):format(fn), 3)
end

-- denoiser(net, {prediction="eps", process=schedule|sde|"sigma"}) -> D(x̂, σ̂)
-- At level σ̂ the process gives the network's conditioning c and scale α;
-- with s = α σ̂ the network sees x = α x̂, and its output, read as
-- `prediction` for (α, s), is converted to x₀.
function M.denoiser(net, opts)
  callable(net, "denoiser")
  opts = opts or {}
  local kind = opts.prediction or "eps"
  check_kind(kind, "denoiser")
  local proc = process_of(opts.process, "denoiser")
  local function D(xhat, sigma)
    local c, alpha = proc:cond_of_sigma(sigma)
    local s = alpha * sigma
    local x = xhat * alpha
    local y = net(x, net_cond(c))
    return M.convert(y, kind, "x0", x, alpha, s)
  end
  return denoiser_object(D, net, { prediction = kind, process = opts.process })
end

-- from_distribution(dist) -> D(x̂, σ̂) = x̂ + σ̂² ∇log p_σ̂(x̂) (Tweedie's formula;
-- Efron 2011) for any object with score_at(x, σ) — the toy data sets and
-- Gaussian mixtures of scorch.data, whose smoothed scores are exact.
function M.from_distribution(dist)
  if type(dist) ~= "table" or type(dist.score_at) ~= "function" then
    error("scorch.param.from_distribution: expected an object with score_at(x, sigma)", 2)
  end
  local function D(xhat, sigma)
    return xhat + dist:score_at(xhat, sigma) * (sigma * sigma)
  end
  return denoiser_object(D, dist, { kind = "exact" })
end

-- ---- a denoiser in other views ----------------------------------------------------------------

-- score_fn(D, sde) -> score(x, t): ∇ log p_t for the SDE's marginals, from
-- p_t(x) = α⁻ᵈ p̂_σ̂(x/α):  score = (α D(x/α, σ̂) − x)/s².
function M.score_fn(D, sde)
  callable(D, "score_fn")
  if type(sde) ~= "table" or type(sde.marginal) ~= "function" then
    error("scorch.param.score_fn: expected an SDE or schedule with marginal(t)", 2)
  end
  return function(x, t)
    local alpha, s = sde:marginal(t)
    local x0 = D(x / alpha, s / alpha)
    return (x0 * alpha - x) / (s * s)
  end
end

-- eps_fn(D, schedule) -> eps(x, t): the noise prediction for the schedule's
-- (or SDE's) marginal at t:  ε = (x − α D(x/α, σ̂))/s.
function M.eps_fn(D, process)
  callable(D, "eps_fn")
  if type(process) ~= "table" or type(process.marginal) ~= "function" then
    error("scorch.param.eps_fn: expected an SDE or schedule with marginal(t)", 2)
  end
  return function(x, t)
    local alpha, s = process:marginal(t)
    local x0 = D(x / alpha, s / alpha)
    return (x - x0 * alpha) / s
  end
end

-- x0_fn(D, process) -> x0(x, t), the clean-point prediction in the process's scale.
function M.x0_fn(D, process)
  callable(D, "x0_fn")
  return function(x, t)
    local alpha, s = process:marginal(t)
    return D(x / alpha, s / alpha)
  end
end

-- with_tensor_cond(net): a network that wants a tensor conditioning made callable with a number or [N, 1] tensor
-- conditioning as nets expect (numbers become [N, 1] tensors).
function M.with_tensor_cond(net)
  callable(net, "with_tensor_cond")
  return function(x, c) return net(x, as_cond(c, x)) end
end

return M
