--- Drawing samples from a run (`scorch sample`): the EMA weights by
-- default, N samples in chunks, any sampler of the run's family with its
-- options, written as safetensors plus a PNG.
--
-- Seeds: sample i starts from a point drawn by its own generator,
-- Generator(stream_seed(seed, i)), so the start of sample i is the same
-- whatever N and the chunk size.  With a deterministic sampler (ddim with
-- eta = 0, heun without churn, dpmpp_2m, naive_backward's default, the
-- probability flow on a fixed grid; RK45 picks its steps from the whole
-- chunk) that makes the sample itself independent of N and of the chunk size.  A
-- stochastic sampler's later noise comes from sc.samplers.row_noise, whose
-- draw k of sample i depends on (seed, i, k) only, so its samples are
-- independent of N and of the chunk size too (except predictor_corrector
-- with its corrector, whose Langevin step follows the batch's mean norms).
-- @module scorch.run.sampling
local sc = require "scorch"

local M = {}

-- stream_seed lives in the trainer; required late (the trainer requires us)
local function stream_seed(seed, k) return require("scorch.run.trainer").stream_seed(seed, k) end

--- The starting points of samples first .. first + m - 1 of a seed, each
-- drawn by its own generator.
-- @param run a built run
-- @param first integer: the first sample's index (1-based)
-- @param m integer: how many
-- @param seed integer
-- @return tensor [m, 2]
-- @usage local x0 = sampling.starts(run, 1, 10, 0)
function M.starts(run, first, m, seed)
  local rows = {}
  for i = first, first + m - 1 do rows[#rows + 1] = run.fam.prior(1, sc.Generator(stream_seed(seed, i))) end
  return #rows == 1 and rows[1] or sc.cat(rows, 1)
end

local function draw_chunks(run, opts, fn)
  local n, chunk = opts.n, opts.chunk
  local parts, info = {}, nil
  for first = 1, n, chunk do
    local m = math.min(chunk, n - first + 1)
    local x0 = M.starts(run, first, m, opts.seed)
    local x
    x, info = fn(run.fam.model, x0, opts.steps, sc.samplers.row_noise(stream_seed(opts.seed, 0), first),
      opts.options)
    parts[#parts + 1] = x:detach()
    collectgarbage()
  end
  return #parts == 1 and parts[1] or sc.cat(parts, 1), info
end

--- Draws samples from a built run.
-- @param run a run (scorch.run.trainer.build or open)
-- @param opts table {n = 1000, sampler = the family's default, steps = the
--   config's sample.steps, seed = 0, chunk = 1000, weights = "ema" | "raw",
--   options = extra sampler options (table)}
-- @return tensor [n, 2], the sampler's info table
-- @usage local x = sampling.draw(run, {n = 100, sampler = "ddim", steps = 20})
function M.draw(run, opts)
  opts = require("scorch.util").check_options(opts, { "n", "sampler", "steps", "seed", "chunk", "weights",
    "options" }, "scorch.run.sampling.draw")
  local o = {
    n = opts.n or 1000, sampler = opts.sampler or run.fam.default_sampler, steps = opts.steps or run.cfg.sample.steps,
    seed = opts.seed or 0, chunk = opts.chunk or 1000, options = opts.options or {},
  }
  for _, k in ipairs { "n", "steps", "chunk", "seed" } do
    if math.type(o[k]) ~= "integer" or (k ~= "seed" and o[k] < 1) then
      error(("scorch sample: --%s must be a %s integer (got %s)"):format(k, k == "seed" and "an" or "positive",
        tostring(o[k])), 0)
    end
  end
  local fn = run.fam.samplers[o.sampler]
  if not fn then
    local names = {}
    for k in pairs(run.fam.samplers) do names[#names + 1] = k end
    table.sort(names)
    error(("scorch sample: the %s family has no sampler '%s' (samplers: %s)"):format(run.cfg.family,
      tostring(o.sampler), table.concat(names, ", ")), 0)
  end
  local weights = opts.weights or "ema"
  if weights ~= "ema" and weights ~= "raw" then
    error(("scorch sample: --weights must be ema or raw (got %s)"):format(tostring(weights)), 0)
  end
  local function draw() return sc.no_grad(draw_chunks, run, o, fn) end
  if weights == "ema" then return run.ema:with_average(run.params, draw) end
  return draw()
end

return M
