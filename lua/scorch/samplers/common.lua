--- Pieces every sampler shares: checking the model, the start and the
-- options; turning `levels` into the Lua array of levels a loop visits;
-- drawing the start from the prior; the callback table and info.
-- @module scorch.samplers.common
local sc = require "scorch"
local param = require "scorch.param"
local schedules = require "scorch.schedules.diffusion"
local util = require "scorch.util"

local M = {}

function M.check_model(model, fn)
  if not param.is_model(model) then
    error(("scorch.samplers.%s: expected a wrapped model (sc.param.wrap(net, {kind =, process =})), got %s")
      :format(fn, type(model)), 3)
  end
  return model
end

function M.check_start(x, fn)
  if not sc.is_tensor(x) or x:dim() < 1 then
    error(("scorch.samplers.%s: x_init must be a tensor of points (bad argument #2)"):format(fn), 3)
  end
  return x:detach()
end

function M.options(opts, valid, fn)
  return util.check_options(opts, valid, "scorch.samplers." .. fn, 4)
end

-- Per-sample noise (row_noise below): draws whose row i depends on the
-- sample's global index and the draw's count only.
local RowNoise = {}
RowNoise.__index = RowNoise

--- SplitMix64's finaliser (Steele et al. 2014): a 64-bit seed from (seed, k),
-- for streams of draws that must not overlap (one per sample, per step, ...).
-- @param seed integer
-- @param k integer
-- @return integer
-- @usage local s = require("scorch.samplers.common").seed_mix(0, 7)
function M.seed_mix(seed, k)
  local z = seed + (k + 1) * -7046029254386353131 -- 0x9E3779B97F4A7C15
  z = (z ~ (z >> 30)) * -4658895280553007687     -- 0xBF58476D1CE4E5B9
  z = (z ~ (z >> 27)) * -7723592293110705685     -- 0x94D049BB133111EB
  return z ~ (z >> 31)
end

--- Noise for a batch of samples that does not depend on the batch: draw k
-- of row i (the sample whose global index is `first + i - 1`) is a function
-- of (seed, first + i - 1, k) alone, so a sample is the same whether it is
-- drawn among 10 or 10,000 and whatever the chunk size.  Pass it as a
-- sampler's `generator`; every stochastic sampler draws its noise through
-- it.  (The core's normal draws are counter-based: value j of a generator
-- in state {seed, offset} uses counter offset + j/2, so a row's values are
-- found by offset alone; rows are padded to an even width so each starts
-- on a whole counter.)  predictor_corrector's Langevin corrector sizes its
-- steps from the batch's mean norms (as Song et al.'s code does), so with a
-- corrector its samples still depend on the batch.
-- @param seed integer
-- @param first integer ≥ 1: the global index of the batch's first row (default 1)
-- @return a noise source for the `generator` option of the samplers
-- @usage local x = sc.samplers.ddpm(m, x0, sched, {generator = sc.samplers.row_noise(7, 1001)})
function M.row_noise(seed, first)
  first = first or 1
  if math.type(seed) ~= "integer" then
    error("scorch.samplers.row_noise: seed must be an integer (bad argument #1)", 2)
  end
  if math.type(first) ~= "integer" or first < 1 then
    error("scorch.samplers.row_noise: first must be an integer >= 1 (bad argument #2)", 2)
  end
  return setmetatable({ seed = seed, first = first, count = 0 }, RowNoise)
end

--- Whether v is a row_noise source (rather than a Generator).
-- @param v any value
-- @return boolean
-- @usage if common.is_row_noise(opts.generator) then ... end
function M.is_row_noise(v)
  return getmetatable(v) == RowNoise
end

--- The next draw for a batch shaped like x: row i of it depends only on the
-- seed, the row's global index (first + i − 1) and how many draws came before.
-- @param x tensor [N, ...]: the shape and dtype of the draw
-- @return tensor like x, standard normal
-- @usage local z = sc.samplers.row_noise(7, 1):like(x)
function RowNoise:like(x)
  local n = x:size(1)
  local d = n > 0 and x:numel() // n or 0
  local dp = d + d % 2
  local g = sc.Generator(0)
  g:set_state({ M.seed_mix(self.seed, self.count), (self.first - 1) * (dp // 2) })
  self.count = self.count + 1
  local z = sc.randn({ n, dp }, { generator = g, dtype = x:dtype() })
  if dp ~= d then z = z:narrow(2, 1, d) end
  return z:reshape(x:shape())
end

function M.noise_like(x, gen)
  if M.is_row_noise(gen) then return gen:like(x) end
  return sc.randn(x:shape(), { generator = gen, dtype = x:dtype() })
end

-- A list or 1-D tensor of numbers as a Lua array (nil when levels is neither).
function M.as_list(levels)
  if sc.is_tensor(levels) then return levels:double():values() end
  if type(levels) == "table" and getmetatable(levels) == nil and #levels > 0 then
    for i = 1, #levels do
      if type(levels[i]) ~= "number" then return nil end
    end
    return levels
  end
  return nil
end

-- Decreasing levels that end at or above 0; `min` levels at least.
function M.decreasing(list, min, what, fn)
  if list == nil or #list < min then
    error(("scorch.samplers.%s: levels must list at least %d %s (bad argument #3)"):format(fn, min, what), 3)
  end
  for i = 1, #list do
    local v = list[i]
    if v ~= v or v < 0 or (i > 1 and v >= list[i - 1]) then
      error(("scorch.samplers.%s: levels must be strictly decreasing and non-negative %s"
        .. " (bad argument #3, got %s at %d)"):format(fn, what, tostring(v), i), 3)
    end
  end
  return list
end

-- The callback table {i =, x =, level =, denoised =} (and extra fields).
function M.report(cb, t)
  if cb then cb(t) end
end

--- prior(levels, shape [, {generator=, dtype=}]) -> x_init
function M.prior(levels, shape, opts)
  opts = util.check_options(opts, { "generator", "dtype" }, "scorch.samplers.prior")
  local scale
  if type(levels) == "table" and levels.kind == "ddpm" then scale = 1
  elseif schedules.is_sde(levels) then scale = levels.prior_std
  else
    local list = M.as_list(levels)
    if not list then
      error("scorch.samplers.prior: levels must be a DDPM schedule, an SDE, or a list or tensor of levels σ", 2)
    end
    scale = list[1]
  end
  if type(shape) == "number" and shape >= 1 and shape == math.floor(shape) then
    shape = { math.tointeger(shape), 2 }
  elseif type(shape) ~= "table" or #shape < 1 then
    error("scorch.samplers.prior: shape must be a shape table such as {N, 2} (bad argument #2)", 2)
  end
  local z = sc.randn(shape, { generator = opts.generator, dtype = opts.dtype })
  if scale ~= 1 then z = z * scale end
  return z
end

return M
