-- LayerNorm(shape_or_n [, {eps=1e-5, elementwise_affine=true, dtype=}])
-- (Ba, Kiros & Hinton 2016): over the last len(shape) dims,
-- y = (x − mean) / √(var + eps) · weight + bias, var the biased variance.
local sc = require "scorch"
local Module = require "scorch.nn.module"
local init = require "scorch.nn.initialisers"

local LayerNorm = Module:extend("LayerNorm")

function LayerNorm:init(shape, opts)
  opts = opts or {}
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

return LayerNorm
