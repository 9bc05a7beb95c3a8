--- sc.nn.init: in-place parameter initialisers with PyTorch's formulas
-- (torch/nn/init.py).  Each fills its tensor under no_grad and returns it;
-- randomness comes from opts.generator, else the global generator.
-- @module scorch.nn.initialisers
local sc = require "scorch"
local util = require "scorch.util"

local M = {}

local function filler(t, fn, ...)
  if not sc.is_tensor(t) then error("scorch.nn.init: expected a tensor", 4) end
  sc.no_grad(fn, t, ...)
  return t
end

local function do_uniform(t, a, b, g) t:uniform_(a, b, g) end
local function do_normal(t, m, s, g) t:normal_(m, s, g) end
local function do_fill(t, v) t:fill_(v) end

-- opts → the {generator=} table the tensor methods read (or nil).
local function gen_opts(opts)
  return opts and opts.generator and { generator = opts.generator } or nil
end

local function uniform(t, a, b, opts) return filler(t, do_uniform, a or 0, b or 1, gen_opts(opts)) end
local function normal(t, mean, std, opts) return filler(t, do_normal, mean or 0, std or 1, gen_opts(opts)) end

function M.uniform_(t, a, b, opts)
  return uniform(t, a, b, util.check_options(opts, { "generator" }, "scorch.nn.init.uniform_"))
end

function M.normal_(t, mean, std, opts)
  return normal(t, mean, std, util.check_options(opts, { "generator" }, "scorch.nn.init.normal_"))
end

function M.constant_(t, v) return filler(t, do_fill, v) end
function M.zeros_(t) return filler(t, do_fill, 0) end
function M.ones_(t) return filler(t, do_fill, 1) end

-- fan_in = size(2)·receptive field, fan_out = size(1)·receptive field, where
-- the receptive field is the product of dims 3.. (1 for a Linear weight).
function M.calculate_fan_in_and_fan_out(t)
  local shape = t:shape()
  if #shape < 2 then
    error("scorch.nn.init: fan in and fan out need a tensor of at least 2 dims", 2)
  end
  local receptive = 1
  for i = 3, #shape do receptive = receptive * shape[i] end
  return shape[2] * receptive, shape[1] * receptive
end

-- Recommended gain for a nonlinearity (torch.nn.init.calculate_gain).
function M.calculate_gain(nonlinearity, param)
  nonlinearity = nonlinearity or "leaky_relu"
  if nonlinearity == "linear" or nonlinearity == "sigmoid" or nonlinearity:match("^conv") then
    return 1
  elseif nonlinearity == "tanh" then
    return 5 / 3
  elseif nonlinearity == "relu" then
    return math.sqrt(2)
  elseif nonlinearity == "leaky_relu" then
    local slope = param or 0.01
    return math.sqrt(2 / (1 + slope * slope))
  elseif nonlinearity == "selu" then
    return 3 / 4
  end
  error(("scorch.nn.init.calculate_gain: unknown nonlinearity '%s'"):format(tostring(nonlinearity)), 2)
end

local KAIMING = { "a", "mode", "nonlinearity", "generator" }

local function kaiming_std(t, opts)
  local fan_in, fan_out = M.calculate_fan_in_and_fan_out(t)
  local fan = (opts.mode or "fan_in") == "fan_in" and fan_in or fan_out
  local gain = M.calculate_gain(opts.nonlinearity or "leaky_relu", opts.a or 0)
  return fan > 0 and gain / math.sqrt(fan) or 0
end

-- U(−b, b) with b = gain·√(3/fan).  Linear's default is a = √5, which gives
-- b = 1/√fan_in.  opts: a, mode ("fan_in"/"fan_out"), nonlinearity, generator.
function M.kaiming_uniform_(t, opts)
  opts = util.check_options(opts, KAIMING, "scorch.nn.init.kaiming_uniform_")
  local bound = math.sqrt(3) * kaiming_std(t, opts)
  return uniform(t, -bound, bound, opts)
end

function M.kaiming_normal_(t, opts)
  opts = util.check_options(opts, KAIMING, "scorch.nn.init.kaiming_normal_")
  return normal(t, 0, kaiming_std(t, opts), opts)
end

-- U(−b, b) with b = gain·√(6/(fan_in + fan_out)).  opts: gain, generator.
function M.xavier_uniform_(t, opts)
  opts = util.check_options(opts, { "gain", "generator" }, "scorch.nn.init.xavier_uniform_")
  local fan_in, fan_out = M.calculate_fan_in_and_fan_out(t)
  local bound = (opts.gain or 1) * math.sqrt(6 / (fan_in + fan_out))
  return uniform(t, -bound, bound, opts)
end

function M.xavier_normal_(t, opts)
  opts = util.check_options(opts, { "gain", "generator" }, "scorch.nn.init.xavier_normal_")
  local fan_in, fan_out = M.calculate_fan_in_and_fan_out(t)
  local std = (opts.gain or 1) * math.sqrt(2 / (fan_in + fan_out))
  return normal(t, 0, std, opts)
end

-- A new float leaf that requires grad, for module constructors:
-- parameter(shape, dtype) → zeros, to be filled by an initialiser.
function M.parameter(shape, dtype)
  return sc.zeros(shape, { dtype = dtype or "float32" }):requires_grad(true)
end

return M
