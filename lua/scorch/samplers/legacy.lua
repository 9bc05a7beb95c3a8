--- The sampler signatures before issue 13, kept for one release as thin
-- wrappers over sampler(model, x_init, levels, opts):
--   langevin(score, x0, opts), annealed_langevin(score, x0, sigmas, opts)
--   ddpm / ddim (model, schedule, n, opts), euler_maruyama /
--   predictor_corrector / probability_flow (model, sde, n, opts)
--   naive_backward / heun / dpmpp_2m (denoiser, sigmas, n, opts)
-- Each builds the wrapped model (the callable receives its level as before:
-- the sampler's number, or the Langevin column), draws the start as before
-- (opts.x_init, or the prior of n points / a shape from opts.generator), maps
-- the options and the old callback arguments, and calls the new form.  The
-- numbers are bit-identical (spec/sampler_equivalence_spec.lua).  The first
-- call of each prints one deprecation line on stderr (M.warn = false hides it).
-- @module scorch.samplers.legacy
local sc = require "scorch"
local util = require "scorch.util"
local param = require "scorch.param"
local schedules = require "scorch.schedules.diffusion"
local common = require "scorch.samplers.common"
local langevin = require "scorch.samplers.langevin"
local diffusion = require "scorch.samplers.diffusion"

local M = { warn = true }
local warned = {}

local function deprecated(name, old, new)
  if M.warn and not warned[name] then
    warned[name] = true
    io.stderr:write(("scorch.samplers.%s%s is deprecated and goes in the next release; use %s\n")
      :format(name, old, new))
  end
end

local function callable(m, fn)
  if not util.is_callable(m) then
    error(("scorch.samplers.%s: expected a callable model (got %s)"):format(fn, type(m)), 3)
  end
end

-- A copy of opts without the keys the old form handled itself.
local function pass(opts, drop, rename)
  local out = {}
  for k, v in pairs(opts) do
    if not drop[k] then out[(rename and rename[k]) or k] = v end
  end
  return out
end

-- The old start: opts.x_init, or scale · N(0, I) of n points (opts.dim) or a shape.
local function start(n, opts, levels, fn)
  if opts.x_init ~= nil then
    if not sc.is_tensor(opts.x_init) then
      error(("scorch.samplers.%s: x_init must be a tensor"):format(fn), 3)
    end
    return opts.x_init:detach()
  end
  local shape
  if type(n) == "number" and n >= 1 and n == math.floor(n) then
    shape = { math.tointeger(n), opts.dim or 2 }
  elseif type(n) == "table" and #n >= 1 then
    shape = n
  else
    error(("scorch.samplers.%s: n must be a positive number of points or a shape"):format(fn), 3)
  end
  return common.prior(levels, shape, { generator = opts.generator, dtype = opts.dtype })
end

local common_drop = { x_init = true, dim = true, dtype = true, prediction = true, callback = true }

-- old callbacks: cb(i, x, level)
local function cb_reached(cb) return cb and function(s) cb(s.i, s.x, s.level) end end
local function cb_from(cb) return cb and function(s) cb(s.i, s.x, s.from) end end

-- ---- Langevin -------------------------------------------------------------------------------

local function score_model(score)
  if param.is_model(score) then return score end
  return param.wrap(score, { kind = "score", raw_level = true })
end

function M.langevin(score, x0, opts)
  deprecated("langevin", "(score, x0, opts)", "langevin(model, x_init, sigma_or_nil, opts)")
  common.check_start(x0, "langevin")
  opts = opts or {}
  local o = pass(opts, { sigma = true, eps = true, step = true, callback = true }, { n_steps = "steps" })
  o.step_size = opts.step or opts.eps
  if opts.callback then o.callback = function(s) opts.callback(s.i, s.x) end end
  return (langevin.langevin(score_model(score), x0, opts.sigma, o))
end

function M.annealed_langevin(score, x0, sigmas, opts)
  deprecated("annealed_langevin", "(score, x0, sigmas, opts)", "annealed_langevin(model, x_init, levels, opts)")
  common.check_start(x0, "annealed_langevin")
  opts = opts or {}
  local o = pass(opts, { n_steps_each = true, T = true, callback = true }, { eps = "step_size" })
  o.steps_per_level = opts.T or opts.n_steps_each
  if opts.callback then o.callback = function(s) opts.callback(s.level_index, s.step, s.x) end end
  return (langevin.annealed_langevin(score_model(score), x0, sigmas, o))
end

-- ---- DDPM, DDIM and the SDE samplers ---------------------------------------------------------------

local function process_sampler(name, check)
  return function(model, process, n, opts)
    deprecated(name, "(model, schedule, n, opts)", name .. "(model, x_init, schedule, opts)")
    callable(model, name)
    check(process, name)
    opts = opts or {}
    local m = param.is_model(model) and model or param.wrap(model, {
      kind = opts.prediction or ((name == "ddpm" or name == "ddim") and "eps" or "score"),
      process = process, raw_level = true })
    local o = pass(opts, common_drop)
    local cb = opts.callback
    o.callback = (name == "ddpm" or name == "ddim") and cb_from(cb) or cb_reached(cb)
    local x = start(n, opts, process, name)
    return diffusion[name](m, x, process, o)
  end
end

local function check_ddpm(s, fn)
  if type(s) ~= "table" or s.kind ~= "ddpm" then
    error(("scorch.samplers.%s: expected a DDPM schedule (sc.schedules.ddpm)"):format(fn), 3)
  end
end
local function check_sde(s, fn)
  if not schedules.is_sde(s) then
    error(("scorch.samplers.%s: expected an SDE (sc.schedules.vp_sde, ve_sde, subvp_sde)"):format(fn), 3)
  end
end

M.ddpm = process_sampler("ddpm", check_ddpm)
M.ddim = process_sampler("ddim", check_ddpm)
M.euler_maruyama = process_sampler("euler_maruyama", check_sde)
M.predictor_corrector = process_sampler("predictor_corrector", check_sde)
M.probability_flow = process_sampler("probability_flow", check_sde)

-- ---- denoiser samplers ------------------------------------------------------------------------------

-- The old levels: a list or tensor, or nil for opts.steps Karras levels.
local function old_levels(sigmas, opts, default_steps)
  if sigmas == nil then
    return (schedules.karras_sigmas(opts.steps or default_steps,
      { sigma_min = opts.sigma_min, sigma_max = opts.sigma_max, rho = opts.rho }))
  end
  return sigmas
end

local function denoiser_model(D)
  if param.is_model(D) then return D end
  local m = param.wrap(D, { kind = "denoiser", raw_level = true })
  m.denoise_fn = function(x, s) return D(x, s) end
  return m
end

local karras_keys = { steps = true, sigma_min = true, sigma_max = true, rho = true }

local function denoiser_sampler(name, default_steps, extra)
  return function(D, sigmas, n, opts)
    deprecated(name, "(denoiser, sigmas, n, opts)", name .. "(model, x_init, levels, opts)")
    callable(D, name)
    opts = opts or {}
    local levels = old_levels(sigmas, opts, default_steps)
    local list = common.as_list(levels)
    local o = pass(opts, common_drop)
    for k in pairs(karras_keys) do o[k] = nil end
    if extra then extra(o, opts) end
    o.callback = cb_reached(opts.callback)
    local x = start(n, opts, list or levels, name)
    return diffusion[name](denoiser_model(D), x, levels, o)
  end
end

M.naive_backward = denoiser_sampler("naive_backward", 100, function(o, opts)
  o.stochastic = nil
  o.method = opts.stochastic and "ancestral" or "euler"
  if not opts.stochastic then o.eta = nil end
end)
M.heun = denoiser_sampler("heun", 18)
M.dpmpp_2m = denoiser_sampler("dpmpp_2m", 20)

return M
