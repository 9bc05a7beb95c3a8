--- Normalisation layers: GroupNorm and LayerNorm, each a thin module over
-- the fused kernels of sc.group_norm and sc.layer_norm.
-- @module scorch.nn.norm
local sc = require "scorch"
local Module = require "scorch.nn.module"
local init = require "scorch.nn.initialisers"
local util = require "scorch.util"

--- GroupNorm(groups, channels [, {eps=1e-5, affine=true, dtype="float32"}])
-- (Wu & He 2018): normalises each sample over groups of channels and all
-- positions; weight starts at one and bias at zero, as in PyTorch.
-- @param groups integer dividing `channels`
-- @param channels integer: C of the [N, C, ...] input
-- @param opts table: eps (1e-5), affine (true: learn weight and bias), dtype
-- @return the module
-- @usage local gn = sc.nn.GroupNorm(8, 64)
local GroupNorm = Module:extend("GroupNorm")

function GroupNorm:init(groups, channels, opts)
  opts = util.check_options(opts, { "eps", "affine", "dtype" }, "scorch.nn.GroupNorm", 4)
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

--- gn:forward_silu(x): silu(gn(x)) as one op (sc.group_norm_silu), which
-- saves only x for the backward; same numbers as gn(x):silu().
-- @param x tensor [N, channels, ...]
-- @return tensor of x's shape
-- @usage local h = block.norm1:forward_silu(x)
function GroupNorm:forward_silu(x)
  return sc.group_norm_silu(x, self.groups, self.weight, self.bias, self.eps)
end

function GroupNorm:extra_repr()
  return ("%d, %d, eps=%g"):format(self.groups, self.channels, self.eps)
end

--- LayerNorm(shape_or_n [, {eps=1e-5, elementwise_affine=true, dtype=}])
-- (Ba, Kiros & Hinton 2016): over the last len(shape) dims,
-- y = (x − mean) / √(var + eps) · weight + bias, var the biased variance.
-- @param shape_or_n integer or table of sizes: the trailing dims normalised
-- @param opts table: eps (1e-5), elementwise_affine (true), dtype
-- @return the module
-- @usage local ln = sc.nn.LayerNorm(128)
local LayerNorm = Module:extend("LayerNorm")

function LayerNorm:init(shape, opts)
  opts = util.check_options(opts, { "eps", "elementwise_affine", "dtype" }, "scorch.nn.LayerNorm", 4)
  if type(shape) == "number" then shape = { shape } end
  if type(shape) ~= "table" or #shape == 0 then
    error("scorch.nn.LayerNorm: normalized shape must be a size or a table of sizes", 3)
  end
  for i = 1, #shape do
    if math.type(shape[i]) ~= "integer" or shape[i] < 1 then
      error(("scorch.nn.LayerNorm: bad size %s in the normalized shape"):format(tostring(shape[i])), 3)
    end
  end
  self.normalized_shape = { table.unpack(shape) }
  self.eps = opts.eps or 1e-5
  self.elementwise_affine = opts.elementwise_affine ~= false
  if self.elementwise_affine then
    self.weight = init.ones_(init.parameter(shape, opts.dtype))
    self.bias = init.parameter(shape, opts.dtype)
  end
end

function LayerNorm:forward(x)
  return sc.layer_norm(x, #self.normalized_shape, self.weight, self.bias, self.eps)
end

function LayerNorm:extra_repr()
  return ("{%s}, eps=%g, elementwise_affine=%s"):format(
    table.concat(self.normalized_shape, ", "), self.eps, tostring(self.elementwise_affine))
end

return { GroupNorm = GroupNorm, LayerNorm = LayerNorm }
