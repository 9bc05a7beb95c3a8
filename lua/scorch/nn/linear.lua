--- Linear(in, out [, {bias=true, dtype=, generator=}]): y = x Wᵀ + b.
--
-- W is out×in, as PyTorch's, so state dicts carry over unchanged.  Default
-- initialisation is PyTorch's: W by kaiming_uniform(a=√5), which is
-- U(−1/√in, 1/√in), and b ~ U(−1/√in, 1/√in).
-- @module scorch.nn.linear
local sc = require "scorch"
local Module = require "scorch.nn.module"
local init = require "scorch.nn.initialisers"
local util = require "scorch.util"

local Linear = Module:extend("Linear")

local function check_size(v, what)
  if math.type(v) ~= "integer" or v < 0 then
    error(("scorch.nn.Linear: %s must be a non-negative integer (got %s)"):format(what, tostring(v)), 4)
  end
end

function Linear:init(in_features, out_features, opts)
  check_size(in_features, "in_features")
  check_size(out_features, "out_features")
  opts = util.check_options(opts, { "bias", "dtype", "generator" }, "scorch.nn.Linear", 4)
  self.in_features, self.out_features = in_features, out_features
  self.weight = init.parameter({ out_features, in_features }, opts.dtype)
  init.kaiming_uniform_(self.weight, { a = math.sqrt(5), generator = opts.generator })
  if opts.bias ~= false then
    local bound = in_features > 0 and 1 / math.sqrt(in_features) or 0
    self.bias = init.parameter({ out_features }, opts.dtype)
    init.uniform_(self.bias, -bound, bound, { generator = opts.generator })
  end
end

-- One matmul (BLAS gets Wᵀ as a transposed view, no copy) and one
-- broadcast add.
-- One fused op: the bias is laid into the output and gemm adds x W^T onto
-- it, one pass fewer than a product followed by a broadcast add.
function Linear:forward(x)
  return sc.linear(x, self.weight, self.bias)
end

function Linear:extra_repr()
  return ("in_features=%d, out_features=%d, bias=%s"):format(
    self.in_features, self.out_features, tostring(self.bias ~= nil))
end

return Linear
