--- Activation modules: parameter-free wrappers of the engine's elementwise
-- ops, for use in Sequential.  The methods (x:silu(), ...) are the same
-- thing without a module.
-- @module scorch.nn.activation
local sc = require "scorch"
local Module = require "scorch.nn.module"
local util = require "scorch.util"

local M = {}

local function simple(name, method)
  local cls = Module:extend(name)
  cls.forward = function(_, x) return x[method](x) end
  M[name] = cls
end

simple("SiLU", "silu")
simple("ReLU", "relu")
simple("Tanh", "tanh")
simple("Sigmoid", "sigmoid")

M.Identity = Module:extend("Identity")
function M.Identity.forward(_, x) return x end

-- Softplus({beta=1, threshold=20}): log(1 + exp(βx))/β, and x itself where
-- βx > threshold (as PyTorch).
M.Softplus = Module:extend("Softplus")
function M.Softplus:init(opts)
  opts = util.check_options(opts, { "beta", "threshold" }, "scorch.nn.Softplus", 4)
  self.beta, self.threshold = opts.beta or 1, opts.threshold or 20
end
function M.Softplus:forward(x)
  local beta = self.beta
  if beta == 1 then
    if self.threshold >= 20 then return x:softplus() end -- the engine's is stable
    return sc.where(x:gt(self.threshold), x, x:softplus())
  end
  local bx = x * beta
  return sc.where(bx:gt(self.threshold), x, bx:softplus() / beta)
end
function M.Softplus:extra_repr()
  return ("beta=%g, threshold=%g"):format(self.beta, self.threshold)
end

-- LeakyReLU(slope=0.01): max(0, x) + slope·min(0, x).
M.LeakyReLU = Module:extend("LeakyReLU")
function M.LeakyReLU:init(slope) self.negative_slope = slope or 0.01 end
function M.LeakyReLU:forward(x)
  return x:leaky_relu(self.negative_slope)
end
function M.LeakyReLU:extra_repr() return ("negative_slope=%g"):format(self.negative_slope) end

-- GELU with the tanh approximation, 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))):
-- PyTorch's GELU(approximate='tanh').  The engine has no erf, so the exact
-- form (PyTorch's default) is not offered.
M.GELU = Module:extend("GELU")
function M.GELU.init(_, opts)
  local approx = util.check_options(opts, { "approximate" }, "scorch.nn.GELU", 4).approximate or "tanh"
  if approx ~= "tanh" then
    error("scorch.nn.GELU: only approximate = \"tanh\" is available", 3)
  end
end
local GELU_C = math.sqrt(2 / math.pi)
function M.GELU.forward(_, x)
  return x * 0.5 * (((x + x * x * x * 0.044715) * GELU_C):tanh() + 1)
end
function M.GELU.extra_repr() return "approximate='tanh'" end

return M
