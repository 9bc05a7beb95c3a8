--- scorch: tensors, autograd and generative models for Lua 5.4.
--
-- The C module scorch.core holds tensors, kernels and autograd; this file
-- assembles the public table from it and the Lua modules beside it.  Loading
-- it defines no globals.
-- @module scorch
local core = require "scorch.core"

-- The names of the C module that make up the public API (docs/api.md lists
-- them).  Everything else in it (fused kernels behind the functional layer,
-- optimiser steps, the PNG reader, the raw transposes that backward formulas
-- use, ...) stays reachable as sc.core.NAME for the library and for tests,
-- but is not part of `sc`.
local PUBLIC_CORE = {
  -- tensors and random numbers
  "tensor", "zeros", "ones", "empty", "full", "randn", "rand", "randint",
  "arange", "linspace", "manual_seed", "Generator", "get_rng_state",
  "set_rng_state", "is_tensor", "cat", "stack",
  -- elementwise and linear algebra
  "add", "sub", "mul", "div", "pow", "maximum", "minimum", "neg", "exp",
  "log", "sqrt", "abs", "tanh", "sigmoid", "relu", "silu", "softplus", "sin",
  "cos", "sign", "square", "rsqrt", "log1p", "expm1", "erfc", "logsigmoid",
  "where", "clamp", "leaky_relu", "matmul", "bmm", "linear",
  -- autograd
  "grad", "no_grad", "set_grad_enabled", "is_grad_enabled", "op_names",
  -- files, threads, memory
  "save", "load", "set_num_threads", "get_num_threads", "time",
  "bytes_in_use", "set_matmul_precision", "get_matmul_precision",
}

local sc = { core = core }
for _, k in ipairs(PUBLIC_CORE) do sc[k] = core[k] end
sc._VERSION = "scorch 0.1.0"

-- Submodules require "scorch" themselves; publish the table first.
package.loaded["scorch"] = sc

require "scorch.printing"
sc.autograd = require "scorch.autograd"
sc.gradcheck = sc.autograd.gradcheck
-- conv2d, group_norm, softmax, attention, ... (compositions of core ops)
sc.functional = require "scorch.functional"
for k, v in pairs(sc.functional) do
  if sc[k] == nil then sc[k] = v end
end

-- The rest are loaded on first use, so `require "scorch"` stays fast.
local lazy = {
  nn = "scorch.nn", optim = "scorch.optim", data = "scorch.data",
  losses = "scorch.losses", schedules = "scorch.schedules",
  samplers = "scorch.samplers", models = "scorch.models",
  metrics = "scorch.metrics", viz = "scorch.viz", util = "scorch.util",
  image = "scorch.image", io = "scorch.io",
  likelihood = "scorch.likelihood", param = "scorch.param",
  dist = "scorch.dist",
}
setmetatable(sc, {
  __index = function(t, k)
    local name = lazy[k]
    if not name then return nil end
    local m = require(name)
    rawset(t, k, m)
    return m
  end,
})

return sc
