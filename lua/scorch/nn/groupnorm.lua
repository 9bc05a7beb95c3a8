-- GroupNorm(groups, channels [, {eps=1e-5, affine=true}]) (Wu & He 2018):
-- weight starts at one and bias at zero, as in PyTorch.
local sc = require "scorch"
local Module = require "scorch.nn.module"
local init = require "scorch.nn.initialisers"

local GroupNorm = Module:extend("GroupNorm")

function GroupNorm:init(groups, channels, opts)
  opts = opts or {}
  if math.type(groups) ~= "integer" or math.type(channels) ~= "integer" or groups < 1
      or channels % groups ~= 0 then
    error(("scorch.nn.GroupNorm: %s channels are not divisible into %s groups")
      :format(tostring(channels), tostring(groups)), 3)
  end
  self.groups, self.channels, self.eps = groups, channels, opts.eps or 1e-5
  if opts.affine ~= false then
    self.weight = init.parameter({ channels }, opts.dtype)
    init.ones_(self.weight)
    self.bias = init.parameter({ channels }, opts.dtype)
    init.zeros_(self.bias)
  end
end

function GroupNorm:forward(x)
  return sc.group_norm(x, self.groups, self.weight, self.bias, self.eps)
end

function GroupNorm:extra_repr()
  return ("%d, %d, eps=%g"):format(self.groups, self.channels, self.eps)
end

return { GroupNorm = GroupNorm }
