--- Dropout(p [, {generator=}]) (Srivastava et al. 2014): in training, zero
-- each element with probability p and scale the rest by 1/(1 − p); the
-- identity in eval mode.
-- @module scorch.nn.dropout
local sc = require "scorch"
local Module = require "scorch.nn.module"
local util = require "scorch.util"

local Dropout = Module:extend("Dropout")

function Dropout:init(p, opts)
  p = p or 0.5
  if type(p) ~= "number" or p < 0 or p > 1 then
    error(("scorch.nn.Dropout: p must be a probability in [0, 1] (got %s)"):format(tostring(p)), 3)
  end
  self.p = p
  self.generator = util.check_options(opts, { "generator" }, "scorch.nn.Dropout", 4).generator
end

function Dropout:forward(x)
  local p = self.p
  if not self.training or p == 0 then return x end
  if p == 1 then return x * 0 end
  -- keep where u ≥ p, u ~ U[0, 1): probability 1 − p
  local u = sc.rand(x:shape(), { dtype = x:dtype(), generator = self.generator })
  return x * (u:ge(p) * (1 / (1 - p)))
end

function Dropout:extra_repr() return ("p=%g"):format(self.p) end

return Dropout
