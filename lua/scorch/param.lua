--- Model output parameterisations and the conversions between them.
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
-- wrap() makes a network into a model that knows its parameterisation and
-- process; every sampler takes such a model.  The noise level reaches a
-- network one way only: net(x, c) with c an [N, 1] column of x's dtype made
-- by level() (a level shared by the batch is a broadcast view of one value).
-- @module scorch.param
local sc = require "scorch"

local M = {}

-- scorch.util requires this module for level(); loaded on first use.
local function util() return require "scorch.util" end

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

--- convert(y, from, to, x, alpha, s): a prediction y of kind `from` for the
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

--- Named conversions, for reading in algorithms.
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

--- The two views of a noise level: vp(ᾱ) -> α, s with α² + s² = 1;
-- ve(σ) -> 1, σ.  And the VE level of any (α, s): σ̂ = s/α.
function M.vp(alpha_bar) return sqrt(alpha_bar), sqrt(alpha_bar * -1 + 1) end
function M.ve(sigma) return 1, sigma end
function M.ve_sigma(alpha, s) return s / alpha end

--- The target a loss regresses for prediction kind `kind`, from the clean
-- point x₀ and the noise ε of x = α x₀ + s ε.
function M.target(kind, x0, eps, alpha, s)
  check_kind(kind, "target")
  if kind == "eps" then return eps end
  if kind == "x0" then return x0 end
  if kind == "v" then return eps * alpha - x0 * s end
  return eps / (-s)
end

-- ---- EDM preconditioning -------------------------------------------------------------

--- Karras et al. 2022, Table 1 (EDM): c_skip = σ_d²/(σ² + σ_d²),
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

--- Karras et al. 2022, eq. 8: the loss weight λ(σ) = (σ² + σ_d²)/(σ σ_d)²
-- that gives the network F a unit-variance target.
function M.edm_weight(sigma, sigma_data)
  local sd = sigma_data or 0.5
  return (sigma * sigma + sd * sd) / ((sigma * sd) * (sigma * sd))
end

-- ---- the noise level a network receives ----------------------------------------------

--- The one way a network receives its noise level: an [N, 1] column of x's dtype.
-- Samplers, losses, the wrapped models below, metrics and plots all hand a
-- network its conditioning (a timestep, a time t or a level σ) through this
-- helper, so `net(x, c)` always sees `c` as a tensor column.  A level shared
-- by the whole batch (a number, or one value) becomes a broadcast view of a
-- single value (stride 0 along dim 1), which networks may embed once.
-- @param c number, tensor of 1 value, or tensor of N values (any shape)
-- @param x tensor [N, ...]: the batch (gives N and the dtype)
-- @return tensor [N, 1] of x's dtype
-- @usage local col = sc.param.level(0.5, x)   -- [N, 1], all 0.5
function M.level(c, x)
  local n, dt = x:size(1), x:dtype()
  if is_num(c) then return sc.full({ 1, 1 }, c, { dtype = dt }):expand(n, 1) end
  if sc.is_tensor(c) then
    local k = c:numel()
    if k == 1 then return sc.full({ 1, 1 }, c:item(), { dtype = dt }):expand(n, 1) end
    if k == n then
      c = c:reshape(n, 1)
      if c:dtype() ~= dt then c = dt == "float64" and c:double() or c:float() end
      return c
    end
    error(("scorch.param.level: %d levels for a batch of %d"):format(k, n), 2)
  end
  error(("scorch.param.level: a level must be a number or a tensor (got %s)"):format(type(c)), 2)
end

--- Whether a level column is one value shared by the batch (a broadcast view from level).
-- @param c tensor [N, 1] from level
-- @return boolean
-- @usage if sc.param.is_shared_level(c) then c = c:narrow(1, 1, 1) end
function M.is_shared_level(c)
  return sc.is_tensor(c) and c:dim() == 2 and c:size(1) > 1 and c:stride()[1] == 0
end

--- k-diffusion's to_d: the derivative dx/dσ = (x − D(x, σ))/σ of the probability-flow ODE in σ.
-- @param x tensor: the point at level σ
-- @param sigma number (or broadcasting tensor): its level
-- @param denoised tensor like x: D(x, σ)
-- @return tensor like x
-- @usage local d = sc.param.to_d(x, 2.0, model:denoise(x, 2.0))
function M.to_d(x, sigma, denoised)
  return (x - denoised) / sigma
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

-- ---- wrapped models -----------------------------------------------------------------------

-- A process describes how a network was trained: cond_of_sigma(σ̂) gives its
-- conditioning and the input scale α at VE level σ̂.  Schedules (DDPM) and
-- SDEs (VP, sub-VP, VE) from scorch.schedules are processes; the string
-- "sigma" (or "ve", or nil) means net(x̂, σ̂) on unscaled x̂.
local sigma_process = { kind = "sigma", cond_of_sigma = function(_, sigma) return sigma, 1 end }
M.sigma_process = sigma_process

local function process_of(p, fn)
  if p == nil or p == "sigma" or p == "ve" or p == sigma_process then return sigma_process end
  if type(p) == "table" and type(p.cond_of_sigma) == "function" then return p end
  error(("scorch.param.%s: process must be a DDPM schedule, an SDE or \"sigma\""):format(fn), 3)
end

-- A wrapped model: a network (or closed form) together with what its output
-- means (kind) and how it was conditioned (process).  Samplers ask it for
-- the view they need — denoise (EDM's D), score_sigma (Langevin), score (an
-- SDE), eps (a DDPM schedule) — and it converts with the functions above.
-- Calling it, m(x̂, σ̂), is m:denoise(x̂, σ̂).
local Model = {}
Model.__index = Model
Model.__call = function(self, x, sigma) return self:denoise(x, sigma) end
M.Model = Model
M.Denoiser = Model   -- the name of the older, denoiser-only object

--- Whether v is a wrapped model (from wrap, edm, denoiser or from_distribution).
-- @param v any value
-- @return boolean
-- @usage assert(sc.param.is_model(sc.param.wrap(net, {kind = "eps", process = sched})))
function M.is_model(v) return getmetatable(v) == Model end

function Model:parameters()
  if type(self.net) == "table" and self.net.parameters then return self.net:parameters() end
  return {}
end
function Model:train()
  if type(self.net) == "table" and self.net.train then self.net:train() end
  return self
end
function Model:eval()
  if type(self.net) == "table" and self.net.eval then self.net:eval() end
  return self
end

function Model:__tostring()
  local p = self.process
  local pname = p == sigma_process and "sigma" or (p and p.kind) or "?"
  return ("scorch.param.Model(kind=%s, process=%s)"):format(tostring(self.kind), tostring(pname))
end

--- The network's output at conditioning c; the level reaches it as level(c, x).
-- @param x tensor [N, ...]
-- @param c number or tensor: the network's own conditioning (timestep, t or σ); nil for an
--   unconditional network
-- @return tensor like x
-- @usage local y = model:output(x, 0.5)
function Model:output(x, c)
  if self.modify then
    error("scorch.param.Model:output: a guided or inpainting model answers denoise, score_sigma, score and eps,"
      .. " not the raw network output", 2)
  end
  if c ~= nil and not self.raw_level then c = M.level(c, x) end
  if self.cond ~= nil then return self.net_fn(x, c, self.cond) end
  return self.net_fn(x, c)
end

--- D(x̂, σ̂): the clean-point estimate in the VE view x̂ = x₀ + σ̂ ε.
-- At level σ̂ the process gives the network's conditioning c and scale α;
-- with s = α σ̂ the network sees x = α x̂, and its output, read as the
-- model's kind for (α, s), is converted to x₀.
-- @param xhat tensor [N, ...]
-- @param sigma number (one level for the batch) or [N, 1] tensor
-- @return tensor like xhat
-- @usage local x0 = model:denoise(x, 1.5)
function Model:denoise(xhat, sigma)
  if self.modify then return self.modify(self, "denoise", xhat, sigma) end
  if self.denoise_fn then return self.denoise_fn(xhat, sigma, self) end
  local c, alpha = self.process:cond_of_sigma(sigma)
  local s = alpha * sigma
  local x = xhat * alpha
  local y = self:output(x, c)
  return M.convert(y, self.kind, "x0", x, alpha, s)
end

--- ∇ₓ log p_σ(x), the score of the data smoothed by N(0, σ²I) (the view of Langevin samplers).
-- A score network conditioned on σ answers directly; any other model
-- through Tweedie's formula, (D(x, σ) − x)/σ².
-- @param x tensor [N, ...]
-- @param sigma number, [N, 1] tensor (from level), or nil for an unconditional score
-- @return tensor like x
-- @usage local s = model:score_sigma(x, sc.param.level(0.5, x))
function Model:score_sigma(x, sigma)
  if self.modify then return self.modify(self, "score_sigma", x, sigma) end
  if self.kind == "score" and self.process == sigma_process then return self:output(x, sigma) end
  if sigma == nil then error("scorch.param.Model:score_sigma: this model needs a noise level", 2) end
  return (self:denoise(x, sigma) - x) / (sigma * sigma)
end

-- In the model's own process the network answers at t and is converted;
-- in another one, through D: α, s = marginal(t), x₀ = α D(x/α, s/α).
local function native(self, process) return process == nil or process == self.process end

--- ∇ₓ log p_t(x) for a process's marginal at time t (the view of the reverse-SDE samplers).
-- @param x tensor [N, ...]
-- @param t number or [N, 1] tensor: time (or timestep) of `process`
-- @param process SDE or schedule with marginal(t); default the model's own
-- @return tensor like x
-- @usage local s = model:score(x, 0.5, sc.schedules.vp_sde())
function Model:score(x, t, process)
  if self.modify then return self.modify(self, "score", x, t, process) end
  if native(self, process) and self.process.marginal then
    local y = self:output(x, t)
    if self.kind == "score" then return y end
    local a, s = self.process:marginal(t)
    return M.convert(y, self.kind, "score", x, a, s)
  end
  local alpha, s = process:marginal(t)
  local x0 = self:denoise(x / alpha, s / alpha)
  return (x0 * alpha - x) / (s * s)
end

--- ε̂(x, t): the noise estimate for a process's marginal x = α x₀ + s ε at t (DDPM and DDIM).
-- @param x tensor [N, ...]
-- @param t number or [N, 1] tensor: timestep (or time) of `process`
-- @param process schedule or SDE with marginal(t); default the model's own
-- @return tensor like x
-- @usage local e = model:eps(x, 500, sched)
function Model:eps(x, t, process)
  if self.modify then return self.modify(self, "eps", x, t, process) end
  if native(self, process) and self.process.marginal then
    local y = self:output(x, t)
    if self.kind == "eps" then return y end
    local a, s = self.process:marginal(t)
    return M.convert(y, self.kind, "eps", x, a, s)
  end
  local alpha, s = process:marginal(t)
  local x0 = self:denoise(x / alpha, s / alpha)
  return (x - x0 * alpha) / s
end

--- x̂₀(x, t): the clean-point estimate in a process's own scale.
-- @param x tensor [N, ...]
-- @param t number or [N, 1] tensor
-- @param process schedule or SDE; default the model's own
-- @return tensor like x
-- @usage local x0 = model:x0(x, 500)
function Model:x0(x, t, process)
  process = process or self.process
  local alpha, s = process:marginal(t)
  return self:denoise(x / alpha, s / alpha)
end

local kinds = { eps = true, x0 = true, v = true, score = true, denoiser = true, edm = true }

--- Wraps a network as a model that knows its parameterisation and conditioning.
-- The samplers of sc.samplers take such a model.  The network is called as
-- net(x, c [, cond]) with c always a column from level(); an object with
-- score_at (the toy distributions of sc.data) or :score (energy models) is
-- used through that method when kind is "score".
-- @param net callable network, energy model, or distribution with score_at
-- @param opts table:
--   kind = "eps" | "x0" | "v" | "score" | "denoiser" | "edm" (default: net.prediction,
--     "score" for an object with score_at or :score);
--   process = DDPM schedule | SDE | "sigma" (default "sigma": conditioned on σ, unscaled x);
--   sigma_data = 0.5 (kind "edm" only); cond = extra conditioning passed as the third argument
-- @return a wrapped model (sc.param.Model)
-- @usage local m = sc.param.wrap(net, {kind = "eps", process = sc.schedules.ddpm{}})
function M.wrap(net, opts)
  if M.is_model(net) then return net end
  opts = opts or {}
  if type(opts) ~= "table" then error("scorch.param.wrap: options must be a table", 2) end
  for k in pairs(opts) do
    if k ~= "kind" and k ~= "process" and k ~= "sigma_data" and k ~= "cond" and k ~= "raw_level" then
      error(("scorch.param.wrap: unknown option '%s' (valid: cond, kind, process, sigma_data)")
        :format(tostring(k)), 2)
    end
  end
  local kind = opts.kind
  local has = function(key)
    local ok, v = pcall(function() return net[key] end)
    return ok and type(v) == "function"
  end
  local tn = type(net)
  if kind == nil and (tn == "table" or tn == "userdata") then
    if has("score_at") and opts.process == nil then return M.from_distribution(net) end
    if has("score_at") or has("score") then kind = "score"
    elseif type(net.prediction) == "string" then kind = net.prediction end
  end
  if not kinds[kind] then
    error(("scorch.param.wrap: kind must be eps, x0, v, score, denoiser or edm (got %s)")
      :format(tostring(kind)), 2)
  end
  if kind == "edm" then return M.edm(net, { sigma_data = opts.sigma_data, cond = opts.cond }) end
  local fn
  if kind == "score" and (has("score_at") or has("score")) then
    fn = util().as_score_fn(net)
  else
    callable(net, "wrap")
    fn = net   -- called as net(x, c [, cond]): a class-conditional network receives its labels
  end
  if kind == "denoiser" then kind = "x0" end
  return setmetatable({ kind = kind, process = process_of(opts.process, "wrap"), net = net,
    net_fn = fn, cond = opts.cond, raw_level = opts.raw_level or nil }, Model)
end

--- EDM's preconditioned denoiser D(x, σ) = c_skip x + c_out F(c_in x, c_noise) (Karras et al. 2022, eq. 7).
-- @param net callable F(x, c): c receives c_noise = ¼ ln σ as a column from level()
-- @param opts table: sigma_data = 0.5; cond = extra conditioning for F
-- @return a wrapped model of kind "x0" in the σ process
-- @usage local D = sc.param.edm(net); local x0 = D(x, 2.0)
function M.edm(net, opts)
  callable(net, "edm")
  opts = require("scorch.util").check_options(opts, { "sigma_data", "cond" }, "scorch.param.edm")
  local sd = opts.sigma_data or 0.5
  local m = setmetatable({ kind = "x0", process = sigma_process, net = net, net_fn = net,
    cond = opts.cond, sigma_data = sd, precond = "edm" }, Model)
  m.denoise_fn = function(x, sigma, self)
    local c_skip, c_out, c_in, c_noise = M.edm_coefficients(sigma, sd)
    return x * c_skip + self:output(x * c_in, c_noise) * c_out
  end
  return m
end

--- Any network as a denoiser (kept for older code: the same as wrap with kind = prediction).
-- @param net callable network
-- @param opts table: prediction = "eps" | "x0" | "v" | "score"; process = schedule | SDE | "sigma"
-- @return a wrapped model
-- @usage local D = sc.param.denoiser(net, {prediction = "eps", process = sched})
function M.denoiser(net, opts)
  callable(net, "denoiser")
  opts = require("scorch.util").check_options(opts, { "prediction", "process" }, "scorch.param.denoiser")
  local kind = opts.prediction or "eps"
  check_kind(kind, "denoiser")
  local m = setmetatable({ kind = kind, process = process_of(opts.process, "denoiser"), net = net,
    net_fn = net }, Model)
  m.prediction = kind
  return m
end

--- A distribution with an exact smoothed score as a model: D(x̂, σ̂) = x̂ + σ̂² ∇log p_σ̂(x̂).
-- Tweedie's formula (Efron 2011) for any object with score_at(x, σ) — the toy
-- data sets and Gaussian mixtures of scorch.data, whose smoothed scores are
-- exact.  A closed form is not a network: score_at receives the level as the
-- sampler passes it (a number in the denoiser view, a column in Langevin's).
-- @param dist object with score_at(x, sigma) (and score(x))
-- @return a wrapped model of kind "score" in the σ process
-- @usage local m = sc.param.from_distribution(sc.data.two_gaussians())
function M.from_distribution(dist)
  if type(dist) ~= "table" or type(dist.score_at) ~= "function" then
    error("scorch.param.from_distribution: expected an object with score_at(x, sigma)", 2)
  end
  local m = setmetatable({ kind = "score", process = sigma_process, net = dist, raw_level = true,
    net_fn = util().as_score_fn(dist), exact = true }, Model)
  m.denoise_fn = function(xhat, sigma)
    return xhat + dist:score_at(xhat, sigma) * (sigma * sigma)
  end
  return m
end

-- ---- a denoiser in other views ----------------------------------------------------------------

--- score_fn(D, sde) -> score(x, t): ∇ log p_t for the SDE's marginals, from
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

--- eps_fn(D, schedule) -> eps(x, t): the noise prediction for the schedule's
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

--- x0_fn(D, process) -> x0(x, t), the clean-point prediction in the process's scale.
function M.x0_fn(D, process)
  callable(D, "x0_fn")
  return function(x, t)
    local alpha, s = process:marginal(t)
    return D(x / alpha, s / alpha)
  end
end

--- Deprecated: networks now always receive their level as a column (see level).
-- @param net callable network(x, c)
-- @return function(x, c) calling net(x, level(c, x))
-- @usage local f = sc.param.with_tensor_cond(net)   -- same as net(x, sc.param.level(c, x))
function M.with_tensor_cond(net)
  callable(net, "with_tensor_cond")
  return function(x, c) return net(x, M.level(c, x)) end
end

-- ---- conditioning and guidance --------------------------------------------------------------

--- The same model with its conditioning replaced: the network is called as net(x, c, cond).
-- Samplers pass a model's condition through without knowing about it, so
-- conditional sampling is sampler(model:with_cond(labels), x_init, levels, opts).
-- @param cond the condition: class labels (a number for the whole batch, or N labels as a list or
--   tensor; 0 is the null class ∅), or whatever the network takes as its third argument
-- @return a wrapped model (a copy; the original is unchanged)
-- @usage local x = sc.samplers.ddim(m:with_cond(3), sc.samplers.prior(sched, {500, 2}), sched)
function Model:with_cond(cond)
  if self.exact and cond ~= nil and not self.guidance and not self.inpainting then
    error("scorch.param.Model:with_cond: a distribution's exact score takes no condition (argument #1);"
      .. " for a labelled mixture use sc.models.mixture_score", 2)
  end
  local copy = {}
  for k, v in pairs(self) do copy[k] = v end
  if self.guidance then            -- a guided model: the requested classes
    local g = {}
    for k, v in pairs(self.guidance) do g[k] = v end
    g.cond = cond
    copy.guidance = g
  elseif self.inpainting then      -- an inpainting model: the condition of the model it fills in for
    local p = {}
    for k, v in pairs(self.inpainting) do p[k] = v end
    p.base = p.base:with_cond(cond)
    copy.inpainting = p
  else
    copy.cond = cond
  end
  return setmetatable(copy, Model)
end

--- A network with its condition fixed, for the losses: bind(net, y)(x, c) = net(x, c, y).
-- The losses call model(x_t, level); training a class-conditional network
-- with label dropout is loss(bind(net, sc.models.drop_labels(y, p)), x₀, opts).
-- @param net callable network net(x, c, cond)
-- @param cond its condition (class labels, 0 = ∅)
-- @return function(x, c)
-- @usage local l = sc.losses.ddpm(sc.param.bind(net, y), x0, {schedule = sched})
function M.bind(net, cond)
  callable(net, "bind")
  return function(x, c) return net(x, c, cond) end
end

-- Every view a sampler asks for, in its own coordinates: the point x at input
-- scale α and noise s (x = α x₀ + s ε), so x̂ = x/α and σ̂ = s/α.
local function view_scale(self, view, lvl, process, fn)
  if view == "denoise" or view == "score_sigma" then
    if lvl == nil then error(("scorch.param.%s: this model needs a noise level"):format(fn), 4) end
    return 1, lvl
  end
  local p = process or self.process
  if type(p) ~= "table" or type(p.marginal) ~= "function" then
    error(("scorch.param.%s: %s(x, t) needs a process with marginal(t)"):format(fn, view), 4)
  end
  return p:marginal(lvl)
end

local function ask(model, view, x, lvl, process)
  if view == "denoise" then return model:denoise(x, lvl) end
  if view == "score_sigma" then return model:score_sigma(x, lvl) end
  if view == "score" then return model:score(x, lvl, process) end
  return model:eps(x, lvl, process)
end

-- A level for a batch stacked twice: numbers and one shared value stay shared.
local function level_twice(lvl, n)
  if not sc.is_tensor(lvl) or lvl:numel() == 1 then return lvl end
  if M.is_shared_level(lvl) then return lvl:narrow(1, 1, 1):expand(2 * n, 1) end
  return sc.cat({ lvl, lvl }, 1)
end

-- A number, or an [N, 1] column of per-point values, shaped to broadcast against x.
local function per_point(v, x)
  if type(v) == "number" then return v end
  local shape = { x:size(1) }
  for i = 2, x:dim() do shape[i] = 1 end
  return v:reshape(shape)
end

-- A level σ̂ as one number when the batch shares it, else nil.
local function shared_value(v)
  if type(v) == "number" then return v end
  if v:numel() == 1 or M.is_shared_level(v) then return v:reshape(-1):narrow(1, 1, 1):item() end
  return nil
end

local function finite(v) return type(v) == "number" and v == v and v > -math.huge and v < math.huge end

-- The guidance scale at σ̂: a number, or an [N, 1] column when the points sit at different levels.
local function weight_at(w, sigma_hat, x)
  if type(w) == "number" then return w end
  local one = shared_value(sigma_hat)
  local function eval(s)
    local v = w(s)
    if not finite(v) then
      error(("scorch.param.guided: w(%g) = %s is not a finite number"):format(s, tostring(v)), 5)
    end
    return v
  end
  if one then return eval(one) end
  local out = {}
  for i, s in ipairs(sigma_hat:reshape(-1):values()) do out[i] = { eval(s) } end
  return sc.tensor(out, { dtype = x:dtype() })
end

-- ∇ₓ̂ log p(y | x̂, σ̂) of a classifier giving logits [N, K], by autograd (inside the
-- samplers' no_grad: recording is switched on for this one graph).
local function classifier_grad(clf, xhat, sigma_hat, labels)
  return util().enable_grad(function()
    local xg = xhat:detach():requires_grad(true)
    local logits = clf(xg, M.level(sigma_hat, xg))
    local n = xg:size(1)
    if not sc.is_tensor(logits) or logits:dim() ~= 2 or logits:size(1) ~= n then
      error(("scorch.param.guided: the classifier must return logits [%d, K], got %s")
        :format(n, util().shape_str(logits)), 5)
    end
    local K, flat = logits:size(2), {}
    for i = 1, n do
      local y = labels[i]
      if y < 1 or y > K then
        error(("scorch.param.guided: cond[%d] = %d is out of range for a classifier of %d classes")
          :format(i, y, K), 5)
      end
      flat[i] = (i - 1) * K + y
    end
    local logp = sc.log_softmax(logits, 2):reshape(-1):index_select(1, flat):sum()
    return sc.grad(logp, { xg })[1]:detach()
  end)
end

-- The labels of a guided model for a batch of n: a list of n integers.
local function labels_for(g, n)
  return require("scorch.models.conditioning").labels(g.cond, n, g.classes or math.huge, true,
    "scorch.param.guided", "cond")
end

-- The modified score of classifier-free and classifier guidance, in whichever
-- view the sampler asked for.  With x̂ = x/α and σ̂ = s/α, every view is affine
-- in ε with weights that sum to one, so one rule serves all of them:
--   Ho & Salimans 2021, eq. 6:  ε̃ = (1 + w) ε(x, c) − w ε(x, ∅)  (in one batched call);
--   Dhariwal & Nichol 2021, eq. 14 / Algorithm 1:  ∇ log p̃ = ∇ log p + γ ∇ log p_φ(c | x̂, σ̂),
-- the classifier term entering the score as γ g/α (g = ∇ₓ̂ log p_φ), the
-- denoiser as σ̂² γ g and ε as −s γ g/α.
local function guide(self, view, x, lvl, process)
  local g = self.guidance
  local n = x:size(1)
  local labels = labels_for(g, n)
  local alpha, s = view_scale(self, view, lvl, process, "guided")
  local sigma_hat = s / alpha
  local w = g.cfg and weight_at(g.w, sigma_hat, x) or 0
  local out
  if w ~= 0 then
    local both_labels = {}
    for i = 1, n do both_labels[i], both_labels[n + i] = labels[i], 0 end
    local both = ask(g.base:with_cond(both_labels), view, sc.cat({ x, x }, 1), level_twice(lvl, n), process)
    local c, u = both:narrow(1, 1, n), both:narrow(1, n + 1, n)
    out = c + (c - u) * per_point(w, x)
  elseif g.conditional then
    out = ask(g.base:with_cond(labels), view, x, lvl, process)
  else
    out = ask(g.base, view, x, lvl, process)
  end
  if g.classifier and g.scale ~= 0 then
    local grad = classifier_grad(g.classifier, x / alpha, sigma_hat, labels)
    local factor   -- the view's change for a score change of γ g/α
    if view == "denoise" then factor = sigma_hat * sigma_hat
    elseif view == "eps" then factor = s / alpha * -1
    else factor = 1 / alpha end
    out = out + grad * per_point(factor * g.scale, x)
  end
  return out
end

--- Guidance as a modified model: classifier-free guidance, classifier guidance, or both.
-- The result is a wrapped model that every sampler takes as it is: it answers
-- denoise, score_sigma, score and eps from the base model's answers (the conditional
-- and the null-class one in one call on the batch stacked twice) and the classifier's
-- gradient, combined by the one rule of Ho & Salimans 2021 (eq. 6) and Dhariwal &
-- Nichol 2021 (eq. 14):  ∇ log p̃(x | c) = ∇ log p(x | c) + w ∇ log p(c | x) [CFG] + γ ∇ log p_φ(c | x̂, σ̂).
-- w = 0 without a classifier is plain conditional sampling; w = −1 the unconditional model.
-- @param model wrapped model (sc.param.wrap) of a network net(x, c, y) built with classes (and
--   p_uncond > 0 for w ≠ 0), or of an unconditional network when only a classifier guides
-- @param opts table: cond = the requested classes (required: one number, or N labels 1..K as a
--   list or tensor); w = 0 (the CFG scale: a finite number, or a function w(σ̂) of the VE noise
--   level, e.g. sc.param.guidance_interval); classifier = callable clf(x̂ [N, ...], σ̂ [N, 1]) ->
--   logits [N, K] of a noise-conditional classifier (nil: none); classifier_scale = 1 (γ)
-- @return a wrapped model (sc.param.Model)
-- @usage local g = sc.param.guided(m, {cond = 2, w = 3}); local x = sc.samplers.heun(g, x0, sigmas)
function M.guided(model, opts)
  if not M.is_model(model) then
    error(("scorch.param.guided: model (argument #1) must be a wrapped model (sc.param.wrap), got %s")
      :format(type(model)), 2)
  end
  opts = util().check_options(opts, { "cond", "w", "classifier", "classifier_scale" }, "scorch.param.guided")
  if model.guidance or model.modify then
    error("scorch.param.guided: model (argument #1) is already guided or inpainting; guide the base model"
      .. " (to guide and inpaint: sc.param.inpaint(sc.param.guided(m, opts), known, mask))", 2)
  end
  local w, scale, clf = opts.w or 0, opts.classifier_scale or 1, opts.classifier
  if type(w) ~= "function" and not finite(w) then
    error(("scorch.param.guided: w must be a finite number or a function of σ (got %s)"):format(tostring(w)), 2)
  end
  if not finite(scale) then
    error(("scorch.param.guided: classifier_scale must be a finite number (got %s)"):format(tostring(scale)), 2)
  end
  if clf ~= nil and not util().is_callable(clf) then
    error(("scorch.param.guided: classifier must be callable as clf(x, sigma) -> logits (got %s)")
      :format(type(clf)), 2)
  end
  if opts.classifier_scale ~= nil and clf == nil then
    error("scorch.param.guided: classifier_scale given without a classifier", 2)
  end
  local net = model.net
  local classes = type(net) == "table" and net.classes or nil
  local cfg = type(w) == "function" or w ~= 0
  if classes == nil and (cfg or clf == nil) then
    error(("scorch.param.guided: %s needs a class-conditional model (a network built with classes = K);"
      .. " this one is unconditional"):format(cfg and "classifier-free guidance (w)" or "cond"), 2)
  end
  if cfg and not net.null_class then
    error("scorch.param.guided: classifier-free guidance (w) needs a null class; this model was built with"
      .. " p_uncond = 0 (trained without label dropout)", 2)
  end
  if opts.cond == nil then error("scorch.param.guided: cond (the requested classes) is required", 2) end
  local K = classes or (type(clf) == "table" and clf.classes) or nil
  if type(opts.cond) == "number" then
    local k = math.tointeger(opts.cond)
    if not k or k < 0 or (K and k > K) or (k == 0 and clf) then
      error(("scorch.param.guided: cond = %s is out of range (classes 1..%s)"):format(tostring(opts.cond),
        tostring(K or "K")), 2)
    end
  end
  local base = model
  if model.cond ~= nil then base = model:with_cond(nil) end
  local g = { base = base, cond = opts.cond, w = w, cfg = cfg, conditional = classes ~= nil, classes = K,
    classifier = clf, scale = scale }
  local copy = {}
  for k, v in pairs(model) do copy[k] = v end
  copy.cond, copy.guidance, copy.modify = nil, g, guide
  return setmetatable(copy, Model)
end

--- A guidance scale applied on an interval of noise levels only (a w schedule).
-- Kynkäänniemi et al. 2024: guidance at high σ costs diversity and at low σ
-- does little, so w(σ) = w on [sigma_lo, sigma_hi] and 0 elsewhere.
-- @param w number: the scale inside the interval
-- @param sigma_lo number ≥ 0: the lowest level guided
-- @param sigma_hi number > sigma_lo: the highest level guided (math.huge for all above sigma_lo)
-- @return function(σ) -> number, for sc.param.guided's w
-- @usage local g = sc.param.guided(m, {cond = 1, w = sc.param.guidance_interval(3, 0.3, 5)})
function M.guidance_interval(w, sigma_lo, sigma_hi)
  if not finite(w) then error("scorch.param.guidance_interval: w (argument #1) must be a finite number", 2) end
  if type(sigma_lo) ~= "number" or type(sigma_hi) ~= "number" or not (sigma_lo >= 0 and sigma_hi > sigma_lo) then
    error(("scorch.param.guidance_interval: need 0 <= sigma_lo < sigma_hi (got %s, %s)")
      :format(tostring(sigma_lo), tostring(sigma_hi)), 2)
  end
  return function(sigma) return (sigma >= sigma_lo and sigma <= sigma_hi) and w or 0 end
end

--- A classifier for conditioning on a region, lo ≤ x₀ ≤ hi, to use with sc.param.guided.
-- Class 1 is "inside", class 2 "outside".  It is the likelihood of the region
-- when the clean point is taken as x₀ ~ N(x̂, s²I), s² = σ̂² + τ² (a flat-prior
-- approximation of p(x₀ | x̂); τ keeps the constraint soft as σ̂ → 0), with
-- Φ(z) ≈ sigmoid(1.702 z) (Bowling et al. 2009) and each bound a factor:
--   log p(inside | x̂, σ̂) = Σ_d log Φ((hi_d − x̂_d)/s) + log Φ((x̂_d − lo_d)/s).
-- Guiding with it (cond = 1) is classifier guidance toward the region; it is an
-- approximation, not the exact conditional (the spec measures how close).
-- @param lo list of D lower bounds (-math.huge for none)
-- @param hi list of D upper bounds (math.huge for none)
-- @param opts table: tau = 0.05 (the softness at σ̂ = 0)
-- @return callable clf(x̂ [N, D], σ̂ [N, 1]) -> logits [N, 2]; field classes = 2
-- @usage local clf = sc.param.region_classifier({1, -math.huge}, {math.huge, math.huge})
--   local g = sc.param.guided(m, {cond = 1, classifier = clf})
function M.region_classifier(lo, hi, opts)
  opts = util().check_options(opts, { "tau" }, "scorch.param.region_classifier")
  if type(lo) ~= "table" or type(hi) ~= "table" or #lo == 0 or #lo ~= #hi then
    error("scorch.param.region_classifier: lo and hi (arguments #1, #2) must be lists of the same length D", 2)
  end
  local D = #lo
  for d = 1, D do
    if type(lo[d]) ~= "number" or type(hi[d]) ~= "number" or not (lo[d] < hi[d]) then
      error(("scorch.param.region_classifier: need lo[%d] < hi[%d] (got %s, %s)"):format(d, d, tostring(lo[d]),
        tostring(hi[d])), 2)
    end
  end
  local tau = opts.tau or 0.05
  if not finite(tau) or tau <= 0 then
    error("scorch.param.region_classifier: tau must be a positive number", 2)
  end
  local clf = { classes = 2 }
  return setmetatable(clf, { __call = function(_, x, sigma)
    if not sc.is_tensor(x) or x:dim() ~= 2 or x:size(2) ~= D then
      error(("scorch.param.region_classifier: x must be points [N, %d], got %s"):format(D, util().shape_str(x)), 2)
    end
    local s = (sigma * sigma + tau * tau):sqrt()
    local inside
    for d = 1, D do
      local xd = x:narrow(2, d, 1)
      local terms = {}
      if hi[d] < math.huge then terms[#terms + 1] = ((xd * -1 + hi[d]) / s) * 1.702 end
      if lo[d] > -math.huge then terms[#terms + 1] = ((xd - lo[d]) / s) * 1.702 end
      for _, z in ipairs(terms) do
        local logphi = (z * -1):softplus() * -1        -- log sigmoid(z)
        inside = inside and inside + logphi or logphi
      end
    end
    if inside == nil then inside = x:narrow(2, 1, 1) * 0 end
    local outside = sc.clamp(inside:exp() * -1 + 1, 1e-12, 1):log()
    return sc.cat({ inside, outside }, 2)
  end })
end

-- Replacement inpainting: the base model sees the known values re-noised to
-- its level, x_in = (1 − m) x + m (α k + s z), z ~ N(0, I) fresh at every call.
local function fill(self, view, x, lvl, process)
  local p = self.inpainting
  local alpha, s = view_scale(self, view, lvl, process, "inpaint")
  local z = sc.randn(x:shape(), { generator = p.generator, dtype = x:dtype() })
  local renoised = p.known * per_point(alpha, x) + z * per_point(s, x)
  local x_in = x * p.unknown + renoised * p.mask
  return ask(p.base, view, x_in, lvl, process)
end

--- Replacement-based inpainting from an unconditional (or conditional) model.
-- Song et al. 2021, App. I.2 / Lugmayr et al. 2022 (RePaint without resampling):
-- at every step the known values are re-noised to the current level and put in
-- place of the sampler's own, so the unknown part follows the reverse process
-- of the joint given the known part.  The model makes the replacement at its
-- input, which every sampler here sees in the same way (their updates act point
-- by point); paste the known values into the result with :paste(x).
-- @param model wrapped model (sc.param.wrap)
-- @param known tensor of clean values, shape of one sample batch or broadcasting to it (e.g. [N, D],
--   [1, D], [N, C, H, W])
-- @param mask tensor of 0/1 broadcasting to the same shape: 1 where the value is known
-- @param opts table: generator for the re-noising (default the global one)
-- @return a wrapped model with :paste(x) -> x with the known values put back
-- @usage local m2 = sc.param.inpaint(m, known, mask); local x = m2:paste(sc.samplers.heun(m2, x0, sigmas))
function M.inpaint(model, known, mask, opts)
  if not M.is_model(model) then
    error(("scorch.param.inpaint: model (argument #1) must be a wrapped model (sc.param.wrap), got %s")
      :format(type(model)), 2)
  end
  opts = util().check_options(opts, { "generator" }, "scorch.param.inpaint")
  if not sc.is_tensor(known) then
    error(("scorch.param.inpaint: known (argument #2) must be a tensor, got %s"):format(type(known)), 2)
  end
  if not sc.is_tensor(mask) then
    error(("scorch.param.inpaint: mask (argument #3) must be a tensor, got %s"):format(type(mask)), 2)
  end
  local ok = pcall(function() return known + mask end)
  if not ok then
    error(("scorch.param.inpaint: known %s and mask %s do not broadcast together")
      :format(util().shape_str(known), util().shape_str(mask)), 2)
  end
  for _, v in ipairs(mask:reshape(-1):values()) do
    if v ~= 0 and v ~= 1 then
      error(("scorch.param.inpaint: mask (argument #3) must hold 0 and 1 only (got %g)"):format(v), 2)
    end
  end
  local p = { base = model, known = known:detach(), mask = mask:detach(), unknown = mask:detach() * -1 + 1,
    generator = opts.generator }
  local copy = {}
  for k, v in pairs(model) do copy[k] = v end
  copy.inpainting, copy.modify = p, fill
  return setmetatable(copy, Model)
end

--- An inpainting model's known values put into a sample: (1 − m) x + m k.
-- @param x tensor: the sampler's result
-- @return tensor like x
-- @usage local x = m2:paste(sc.samplers.ddim(m2, x0, sched))
function Model:paste(x)
  local p = self.inpainting
  if not p then error("scorch.param.Model:paste: only an inpainting model (sc.param.inpaint) has known values", 2) end
  return x * p.unknown + p.known * p.mask
end

return M
