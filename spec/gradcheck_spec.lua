-- Every op of the op table (sc.op_names()) against finite differences,
-- first and second order, in float64: on contiguous inputs, on strided
-- (every element at stride 2) and transposed inputs, and with broadcasting
-- where the op broadcasts.  An op without a case here fails the spec, so
-- a new op cannot slip in untested.  Then composites built from the ops.
local sc = require "scorch"
local H = require "helpers"

local F64 = { dtype = "float64" }

-- Inputs: seeded normal values, shifted into an op's valid domain.
local function R(shape, seed)
  return sc.randn(shape, { dtype = "float64", generator = sc.Generator(seed) })
end
-- positive, at least 0.5 (log, sqrt, rsqrt, division, pow bases)
local function P(shape, seed) return R(shape, seed):abs() + 0.5 end
-- at least 0.2 away from 0 (kinks of abs, relu, step, sign)
local function K(shape, seed)
  local r = R(shape, seed)
  return r + r:sign() * 0.2
end
local function T(tbl) return sc.tensor(tbl, F64) end

-- Exactly representable in float32, so a float32 round trip is exact.
local EIGHTHS = { { -1.5, 0.25, 2, -0.75 }, { 1.125, -0.375, 0.5, 1 }, { -0.125, 1.75, -2, 0.625 } }

local function un(name) return function(x) return x[name](x) end end

-- CASES[op] = list of checks { fn = f(inputs...) -> tensor, inputs = f() ->
-- list of float64 tensors, broadcast = true when the inputs' shapes differ
-- and broadcast, opts = gradcheck options }.
local CASES = {}
local function unary(name, maker, fnc)
  CASES[name] = { { fn = fnc or un(name), inputs = function() return { maker({ 3, 4 }, 11) } end } }
end
unary("neg", R)
unary("exp", R)
unary("log", P)
unary("sqrt", P)
unary("abs", K)
unary("tanh", R)
unary("sigmoid", R)
unary("relu", K)
unary("silu", R)
unary("softplus", R)
unary("sin", R)
unary("cos", R)
unary("sign", K)
unary("square", R)
unary("rsqrt", P)
unary("log1p", P)
unary("expm1", R)
unary("erfc", R)
unary("logsigmoid", R)
unary("silu_grad", R, function(x) return sc.core.silu_grad(x) end)
unary("silu_grad2", R, function(x) return sc.core.silu_grad2(x) end)
unary("step", K, function(x) return sc.core.step(x) end)
-- slopes 0.2 and -0.3 (PyTorch allows a negative one); leaky_grad is
-- differentiable in its first argument only (the factor is piecewise constant)
CASES.leaky_relu = {
  { fn = function(x) return x:leaky_relu(0.2) end, inputs = function() return { K({ 3, 4 }, 12) } end },
  { fn = function(x) return sc.leaky_relu(x, -0.3) end, inputs = function() return { K({ 3, 4 }, 13) } end },
  { fn = function(x) return sc.leaky_relu(x) end, inputs = function() return { K({ 3, 4 }, 14) } end },
}
CASES.leaky_grad = {
  { fn = function(g) return sc.core.leaky_grad(g, K({ 3, 4 }, 15), 0.2) end,
    inputs = function() return { R({ 3, 4 }, 16) } end },
  { fn = function(g) return sc.core.leaky_grad(g, K({ 3, 4 }, 17), 0) * g end,
    inputs = function() return { R({ 3, 4 }, 18) } end },
}

-- Binary ops: same shapes, then [3,1] against [4] (and the reverse).
local function binary(name, ma, mb, bcast)
  local f = function(a, b) return a[name](a, b) end
  CASES[name] = {
    { fn = f, inputs = function() return { ma({ 3, 4 }, 21), mb({ 3, 4 }, 22) } end },
    { fn = f, broadcast = true, inputs = bcast or function() return { ma({ 3, 1 }, 23), mb({ 4 }, 24) } end },
    { fn = f, broadcast = true, inputs = function() return { ma({ 2, 1, 4 }, 25), mb({ 3, 1 }, 26) } end },
  }
end
binary("add", R, R)
binary("sub", R, R)
binary("mul", R, R)
binary("div", R, P)
binary("pow", P, R)
-- maximum/minimum: the operands differ by at least 0.1 everywhere
for _, name in ipairs({ "maximum", "minimum" }) do
  local f = function(a, b) return a[name](a, b) end
  CASES[name] = {
    { fn = f, inputs = function() local a = R({ 3, 4 }, 27); return { a, a + K({ 3, 4 }, 28) * 0.5 } end },
    { fn = f, broadcast = true, inputs = function()
      return { T({ { -1 }, { 0.3 }, { 1.1 } }), T({ -0.5, 0.05, 0.6, 1.5 }) }
    end },
    { fn = f, broadcast = true, inputs = function()
      return { T({ -0.5, 0.05, 0.6, 1.5 }), T({ { -1 }, { 0.3 }, { 1.1 } }) }
    end },
  }
end

-- Scalar ops: the number on either side.
local function scalar(name, maker, ...)
  local checks = {}
  for _, f in ipairs({ ... }) do
    checks[#checks + 1] = { fn = f, inputs = function() return { maker({ 3, 4 }, 31) } end }
  end
  CASES[name] = checks
end
scalar("add_scalar", R, function(x) return x + 2.5 end, function(x) return 2.5 + x end)
scalar("sub_scalar", R, function(x) return x - 2.5 end, function(x) return 2.5 - x end)
scalar("mul_scalar", R, function(x) return x * -1.5 end, function(x) return 3 * x end)
scalar("div_scalar", P, function(x) return x / 4 end, function(x) return 2 / x end)
scalar("pow_scalar", P, function(x) return x ^ 3 end, function(x) return x ^ 2 end,
  function(x) return x ^ -0.5 end, function(x) return 1.7 ^ x end)
scalar("maximum_scalar", K, function(x) return x:maximum(0.05) end)
scalar("minimum_scalar", K, function(x) return x:minimum(0.05) end)

CASES.where = {
  { fn = function(a, b) return sc.where(T({ { 1, 0, 0, 1 }, { 0, 1, 1, 0 }, { 1, 1, 0, 0 } }), a, b) end,
    inputs = function() return { R({ 3, 4 }, 41), R({ 3, 4 }, 42) } end },
  { fn = function(a, b) return sc.where(T({ { 1 }, { 0 }, { 1 } }), a, b) end, broadcast = true,
    inputs = function() return { R({ 4 }, 43), R({ 3, 4 }, 44) } end },
  { fn = function(a, b) return sc.where(T({ 1, 0, 1, 0 }), a, b) end, broadcast = true,
    inputs = function() return { R({ 3, 1 }, 45), R({ 1, 4 }, 46) } end },
}
CASES.clamp = {
  { fn = function(x) return sc.clamp(x, -0.5, 0.5) end,
    inputs = function()
      return { T({ { -1.2, -0.3, 0.2, 0.9 }, { 0.45, -0.7, 1.5, -0.05 }, { 0.1, 0.65, -0.55, 0.3 } }) }
    end },
  { fn = function(x) return x:clamp(0) end, inputs = function() return { K({ 3, 4 }, 47) } end },
}

-- Reductions.
CASES.sum = {
  { fn = function(x) return x:sum() end, inputs = function() return { R({ 3, 4 }, 51) } end },
  { fn = function(x) return x:sum(2) end, inputs = function() return { R({ 3, 4 }, 52) } end },
  { fn = function(x) return x:sum({ 1, 3 }, true) end, inputs = function() return { R({ 2, 3, 2 }, 53) } end },
  { fn = function(x) return x:sum(-1, true) * x:sum(1, true) end, inputs = function() return { R({ 3, 4 }, 54) } end },
}
for _, name in ipairs({ "max", "min" }) do
  CASES[name] = {
    { fn = function(x) return x[name](x) end, inputs = function() return { R({ 3, 4 }, 55) } end },
    { fn = function(x) return (x[name](x, 2)) end, inputs = function() return { R({ 3, 4 }, 56) } end },
    { fn = function(x) return (x[name](x, 1, true)) end, inputs = function() return { R({ 3, 4 }, 57) } end },
  }
end

-- Views and copies.
CASES.view = {
  { fn = function(x) return x:reshape(4, 3) * x:reshape(12):reshape(4, 3) end,
    inputs = function() return { R({ 3, 4 }, 61) } end },
  { fn = function(x) return x:unsqueeze(2):squeeze() end, inputs = function() return { R({ 3, 4 }, 62) } end },
}
CASES.transpose = {
  { fn = function(x) return x:transpose(1, 2) end, inputs = function() return { R({ 3, 4 }, 63) } end },
  { fn = function(x) return x:t() end, inputs = function() return { R({ 3, 4 }, 64) } end },
}
CASES.permute = {
  { fn = function(x) return x:permute(3, 1, 2) end, inputs = function() return { R({ 2, 3, 2 }, 65) } end },
}
CASES.expand = {
  { fn = function(x) return x:expand(2, 3, 4) end, inputs = function() return { R({ 3, 1 }, 66) } end },
  { fn = function(x) return x:expand(3, 4) end, inputs = function() return { R({ 4 }, 67) } end },
}
CASES.narrow = {
  { fn = function(x) return x:narrow(2, 2, 2) end, inputs = function() return { R({ 3, 4 }, 68) } end },
  { fn = function(x) return x:narrow(1, 3, 1) end, inputs = function() return { R({ 3, 4 }, 69) } end },
}
CASES.select = {
  { fn = function(x) return x:select(2, 3) end, inputs = function() return { R({ 3, 4 }, 70) } end },
  { fn = function(x) return x[2] end, inputs = function() return { R({ 3, 4 }, 71) } end },
}
CASES.alias = {
  { fn = function(x) return sc.core.alias(x) end, inputs = function() return { R({ 3, 4 }, 72) } end },
}
CASES.contiguous = {
  { fn = function(x) return x:t():contiguous() end, inputs = function() return { R({ 3, 4 }, 73) } end },
  { fn = function(x) return x:clone() end, inputs = function() return { R({ 3, 4 }, 74) } end },
}
CASES.to_dtype = {
  { fn = function(x) return x:float():double() end, opts = { eps = 2 ^ -10 },
    inputs = function() return { T(EIGHTHS) } end },
}
CASES.cat = {
  { fn = function(a, b, c) return sc.cat({ a, b, c }, 2) end,
    inputs = function() return { R({ 3, 2 }, 75), R({ 3, 1 }, 76), R({ 3, 3 }, 77) } end },
  { fn = function(a, b, c) return sc.cat({ a, b, c }, 1) end,
    inputs = function() return { R({ 1, 4 }, 78), R({ 2, 4 }, 79), R({ 1, 4 }, 80) } end },
}
CASES.index_select = {
  { fn = function(x) return x:index_select(2, { 3, 1, 3 }) end, inputs = function() return { R({ 3, 4 }, 81) } end },
  { fn = function(x) return x:index_select(1, { 2, 2, 1, 3 }) end, inputs = function() return { R({ 3, 4 }, 82) } end },
}
CASES.sum_to = {
  { fn = function(x) return sc.core.sum_to(x, { 1, 4 }) end, inputs = function() return { R({ 3, 4 }, 83) } end },
  { fn = function(x) return sc.core.sum_to(x, { 4 }) end, inputs = function() return { R({ 3, 4 }, 84) } end },
  { fn = function(x) return sc.core.sum_to(x, { 3, 1 }) end, inputs = function() return { R({ 3, 4 }, 85) } end },
}
CASES.narrow_backward = {
  { fn = function(x) return sc.core.narrow_backward(x, { 3, 6 }, 2, 2) end,
    inputs = function() return { R({ 3, 4 }, 86) } end },
  { fn = function(x) return sc.core.narrow_backward(x, { 5, 4 }, 1, 1) end,
    inputs = function() return { R({ 3, 4 }, 87) } end },
}
CASES.index_add = {
  { fn = function(x) return sc.core.index_add(x, { 3, 5 }, 2, { 1, 3, 3, 5 }) end,
    inputs = function() return { R({ 3, 4 }, 88) } end },
  { fn = function(x) return sc.core.index_add(x, { 2, 4 }, 1, { 2, 1, 2 }) end,
    inputs = function() return { R({ 3, 4 }, 89) } end },
}
CASES.matmul = {
  { fn = sc.matmul, inputs = function() return { R({ 3, 4 }, 91), R({ 4, 2 }, 92) } end },
  { fn = sc.matmul, inputs = function() return { R({ 4 }, 93), R({ 4, 2 }, 94) } end },
  { fn = sc.matmul, inputs = function() return { R({ 3, 4 }, 95), R({ 4 }, 96) } end },
  { fn = sc.matmul, inputs = function() return { R({ 4 }, 97), R({ 4 }, 98) } end },
  { fn = sc.matmul, broadcast = true, inputs = function() return { R({ 2, 1, 3, 4 }, 99), R({ 3, 4, 2 }, 100) } end },
  { fn = function(a, b) return sc.matmul(a:t(), b) end,
    inputs = function() return { R({ 4, 3 }, 101), R({ 4, 2 }, 102) } end },
  { fn = function(a, b) return sc.bmm(a, b) end,
    inputs = function() return { R({ 2, 3, 4 }, 103), R({ 2, 4, 2 }, 104) } end },
}
CASES.linear = { -- x W^T + b, W stored [out, in]
  { fn = sc.linear, inputs = function() return { R({ 3, 4 }, 105), R({ 2, 4 }, 106), R({ 2 }, 107) } end },
  { fn = sc.linear, inputs = function() return { R({ 3, 4 }, 108), R({ 2, 4 }, 109) } end },
  { fn = function(x, w, b) return sc.linear(x:t(), w, b) end,
    inputs = function() return { R({ 4, 3 }, 110), R({ 2, 4 }, 111), R({ 2 }, 112) } end },
}
CASES.phase_join = { -- [N, 4·O, H+1, W+1] -> [N, O, 2H, 2W]: four phase windows interleaved
  { fn = sc.core.phase_join, inputs = function() return { R({ 2, 8, 3, 4 }, 127) } end },
}
CASES.phase_split = { -- its transpose
  { fn = sc.core.phase_split, inputs = function() return { R({ 2, 1, 4, 6 }, 128) } end },
}
CASES.bernoulli_log_prob = { -- sum_j x l - softplus(l) per row, x in [0, 1] or not
  { fn = sc.core.bernoulli_log_prob, inputs = function() return { R({ 3, 4 }, 123), R({ 3, 4 }, 124):sigmoid() } end },
  { fn = function(l, x) return sc.core.bernoulli_log_prob(l:t(), x) end,
    inputs = function() return { R({ 5, 2 }, 125), R({ 2, 5 }, 126) } end },
}
CASES.silu_linear = { -- silu(h) W^T + b as one op (nn.Sequential's SiLU + Linear pairs)
  { fn = sc.core.silu_linear, inputs = function() return { R({ 3, 4 }, 115), R({ 2, 4 }, 116), R({ 2 }, 117) } end },
  { fn = sc.core.silu_linear, inputs = function() return { R({ 3, 4 }, 118), R({ 2, 4 }, 119) } end },
  { fn = function(h, w, b) return sc.core.silu_linear(h:t(), w, b) end,
    inputs = function() return { R({ 4, 3 }, 120), R({ 2, 4 }, 121), R({ 2 }, 122) } end },
}
-- Image ops on [N, C, H, W]: unfolding and its transpose, nearest
-- upsampling and its transpose (sum pooling).
CASES.im2col = {
  { fn = function(x) return sc.core.im2col(x, { kernel = 3, padding = 1 }) end,
    inputs = function() return { R({ 1, 2, 4, 4 }, 113) } end },
  { fn = function(x) return sc.core.im2col(x, { kernel = { 2, 3 }, stride = 2 }) end,
    inputs = function() return { R({ 2, 1, 5, 4 }, 114) } end },
  { fn = function(x) return sc.core.im2col(x, { kernel = 2, dilation = 2, padding = { 1, 0 } }) end,
    inputs = function() return { R({ 1, 1, 5, 5 }, 115) } end },
}
CASES.col2im = {
  { fn = function(c) return sc.core.col2im(c, { 4, 4 }, { kernel = 3, padding = 1 }) end,
    inputs = function() return { R({ 1, 18, 16 }, 116) } end },
  { fn = function(c) return sc.core.col2im(c, { 5, 4 }, { kernel = { 2, 3 }, stride = 2 }) end,
    inputs = function() return { R({ 2, 6, 2 }, 117) } end },
}
CASES.conv2d = { -- the fused op: x [N,C,H,W], W [O,C,kh,kw]
  { fn = function(x, w) return sc.core.conv2d_core(x, w, { padding = 1 }) end,
    inputs = function() return { R({ 2, 2, 4, 4 }, 121), R({ 3, 2, 3, 3 }, 122) } end },
  { fn = function(x, w) return sc.core.conv2d_core(x, w, { stride = { 2, 1 }, dilation = { 1, 2 } }) end,
    inputs = function() return { R({ 1, 2, 5, 5 }, 123), R({ 2, 2, 2, 2 }, 124) } end },
  { fn = function(x, w, b) return sc.core.conv2d_core(x, w, b, { padding = 1, stride = 2 }) end,
    inputs = function() return { R({ 2, 2, 4, 3 }, 125), R({ 3, 2, 3, 3 }, 126), R({ 3 }, 127) } end },
}
CASES.conv2d_input = { -- the transposed convolution back to an H x W image
  { fn = function(g, w) return sc.core.conv2d_input(g, w, { 4, 4 }, { padding = 1 }) end,
    inputs = function() return { R({ 2, 3, 4, 4 }, 125), R({ 3, 2, 3, 3 }, 126) } end },
  { fn = function(g, w) return sc.core.conv2d_input(g, w, { 5, 5 }, { stride = 2 }) end,
    inputs = function() return { R({ 1, 2, 2, 2 }, 127), R({ 2, 1, 3, 3 }, 128) } end },
}
CASES.conv2d_weight = { -- sum over samples of g_n cols(x_n)^T
  { fn = function(x, g) return sc.core.conv2d_weight(x, g, { kernel = 3, padding = 1 }) end,
    inputs = function() return { R({ 2, 2, 4, 4 }, 129), R({ 2, 3, 4, 4 }, 130) } end },
  { fn = function(x, g) return sc.core.conv2d_weight(x, g, { kernel = 2, stride = 2 }) end,
    inputs = function() return { R({ 1, 1, 5, 5 }, 131), R({ 1, 2, 2, 2 }, 132) } end },
}
CASES.upsample_nearest = {
  { fn = function(x) return sc.core.upsample_nearest(x, 2) end,
    inputs = function() return { R({ 1, 2, 2, 3 }, 118) } end },
  { fn = function(x) return sc.core.upsample_nearest(x, 3) end,
    inputs = function() return { R({ 2, 1, 2, 2 }, 119) } end },
}
CASES.sum_pool = {
  { fn = function(x) return sc.core.sum_pool(x, 2) end, inputs = function() return { R({ 1, 2, 4, 6 }, 120) } end },
  { fn = function(x) return sc.core.sum_pool(x, 3) end, inputs = function() return { R({ 1, 1, 3, 3 }, 121) } end },
}
-- Normalisation kernels (csrc/core/norm.c): the fused backward in the
-- first-order check, the differentiable one (create_graph) in the second.
CASES.group_norm = {
  { fn = function(x, w, b) return sc.core.group_norm_core(x, 2, w, b) end,
    inputs = function() return { R({ 2, 4, 3, 3 }, 133), R({ 4 }, 134), R({ 4 }, 135) } end },
  { fn = function(x) return sc.core.group_norm_core(x, 3, nil, nil, 1e-3) end,
    inputs = function() return { R({ 3, 6, 5 }, 136) } end },
  { fn = function(x, w) return sc.core.group_norm_core(x, 2, w) end, -- no spatial dims
    inputs = function() return { R({ 2, 6 }, 137), R({ 6 }, 138) } end },
  { fn = function(x, b) return sc.core.group_norm_core(x, 1, nil, b) end, -- bias without weight
    inputs = function() return { R({ 2, 3, 4 }, 139), R({ 3 }, 140) } end },
  { fn = function(x, w, b) -- a permuted input: channels are not the second-slowest dim in memory
      return sc.core.group_norm_core(x:permute(1, 3, 2, 4), 4, w, b)
    end,
    inputs = function() return { R({ 2, 3, 4, 3 }, 141), R({ 4 }, 142), R({ 4 }, 143) } end },
}
CASES.group_norm_silu = { -- silu(group_norm(x)) as one op (the U-Net's blocks)
  { fn = function(x, w, b) return sc.core.group_norm_silu_core(x, 2, w, b) end,
    inputs = function() return { R({ 2, 4, 3, 3 }, 160), R({ 4 }, 161), R({ 4 }, 162) } end },
  { fn = function(x) return sc.core.group_norm_silu_core(x, 3, nil, nil, 1e-3) end,
    inputs = function() return { R({ 3, 6, 5 }, 163) } end },
  { fn = function(x, b) return sc.core.group_norm_silu_core(x, 1, nil, b) end, -- bias without weight
    inputs = function() return { R({ 2, 3, 4 }, 164), R({ 3 }, 165) } end },
  { fn = function(x, w) return sc.core.group_norm_silu_core(x, 2, w) end, -- weight without bias
    inputs = function() return { R({ 2, 4, 3 }, 166), R({ 4 }, 167) } end },
  { fn = function(x, w, b) -- a permuted input
      return sc.core.group_norm_silu_core(x:permute(1, 3, 2, 4), 4, w, b)
    end,
    inputs = function() return { R({ 2, 3, 4, 3 }, 168), R({ 4 }, 169), R({ 4 }, 170) } end },
}
CASES.layer_norm = {
  { fn = function(x, w, b) return sc.core.layer_norm_core(x, 1, w, b) end,
    inputs = function() return { R({ 3, 4 }, 144), R({ 4 }, 145), R({ 4 }, 146) } end },
  { fn = function(x, w, b) return sc.core.layer_norm_core(x, 2, w, b) end,
    inputs = function() return { R({ 2, 3, 4 }, 147), R({ 3, 4 }, 148), R({ 3, 4 }, 149) } end },
  { fn = function(x) return sc.core.layer_norm_core(x, 2, nil, nil, 1e-3) end, -- one row
    inputs = function() return { R({ 2, 5 }, 150) } end },
  { fn = function(x, b) return sc.core.layer_norm_core(x, 1, nil, b) end, -- bias without weight
    inputs = function() return { R({ 3, 4 }, 151), R({ 4 }, 152) } end },
  -- normalised dim slowest in memory
  { fn = function(x, w) return sc.core.layer_norm_core(x:permute(2, 3, 1), 1, w) end,
    inputs = function() return { R({ 4, 2, 3 }, 153), R({ 4 }, 154) } end },
}
-- Softmax along the last dim (contiguous rows) and along an inner dim
-- (column tiles), large logits, and a permuted input.
for _, name in ipairs({ "softmax", "log_softmax" }) do
  local core = sc.core[name .. "_core"]
  CASES[name] = {
    { fn = function(x) return core(x, 2) end, inputs = function() return { R({ 3, 4 }, 155) } end },
    { fn = function(x) return core(x, 2) end, inputs = function() return { R({ 2, 3, 4 }, 156) } end },
    { fn = function(x) return core(x * 30, -1) end, inputs = function() return { R({ 2, 5 }, 157) } end },
    { fn = function(x) return core(x:permute(3, 1, 2), 1) end, inputs = function() return { R({ 2, 3, 4 }, 158) } end },
  }
end

-- Layouts of the inputs: contiguous; strided (stride 2 in every dim);
-- transposed storage (for inputs with at least two dims).
local LAYOUTS = {
  { "contiguous", function(x) return x:clone() end },
  { "strided", function(x)
    local s = H.strided(x)
    assert(x:numel() < 2 or not s:is_contiguous())
    return s
  end },
  { "transposed", function(x)
    if x:dim() < 2 then return H.strided(x) end
    local s = H.transposed(x)
    assert(not s:is_contiguous() or x:size(-1) == 1 or x:size(-2) == 1)
    return s
  end },
}

-- gradcheck's second order differentiates the create_graph gradient but
-- never compares it with the plain one: an op whose two backward paths
-- disagree (a fused kernel without recording, differentiable ops with it)
-- would pass.  So compare them here.
local function same_both_ways(label, check, xs)
  local y = check.fn(table.unpack(xs))
  local u = sc.randn(y:shape(), { dtype = "float64", generator = sc.Generator(7) })
  local plain = sc.grad({ (y * u):sum() }, xs, { allow_unused = true, retain_graph = true })
  local graph = sc.grad({ (y * u):sum() }, xs, { allow_unused = true, create_graph = true })
  for i = 1, #xs do
    assert(not plain[i] == not graph[i], label .. ": input " .. i .. " used in one backward only")
    if plain[i] then H.assert_close(graph[i], plain[i], 1e-12, label .. ": create_graph vs plain, input " .. i) end
  end
end

local function run_check(label, check, layout)
  local xs = {}
  for i, x in ipairs(check.inputs()) do
    assert.are.equal("float64", x:dtype())
    xs[i] = layout(x):requires_grad(true)
  end
  same_both_ways(label, check, xs)
  local ok, msg = sc.gradcheck(check.fn, xs, check.opts)
  assert(ok, label .. ": " .. tostring(msg))
  -- and on the squared output, so the backward formula of a linear op is
  -- itself differentiated in the second-order check
  local sq = function(...) return check.fn(...) ^ 2 end
  ok, msg = sc.gradcheck(sq, xs, check.opts)
  assert(ok, label .. " (squared): " .. tostring(msg))
end

describe("gradcheck of every op", function()
  it("every op in sc.op_names() has a case", function()
    local missing = {}
    for _, name in ipairs(sc.op_names()) do
      if not CASES[name] or #CASES[name] == 0 then missing[#missing + 1] = name end
    end
    assert(#missing == 0, "ops without a gradcheck case: " .. table.concat(missing, ", "))
  end)

  it("every case names an op of the table", function()
    local known = {}
    for _, name in ipairs(sc.op_names()) do known[name] = true end
    for name in pairs(CASES) do assert(known[name], "case for unknown op " .. name) end
  end)

  it("ops that broadcast have a broadcasting case", function()
    for _, name in ipairs({ "add", "sub", "mul", "div", "pow", "maximum", "minimum", "where", "matmul" }) do
      local found = false
      for _, c in ipairs(CASES[name]) do
        if c.broadcast then
          local xs = c.inputs()
          local shapes = {}
          for _, x in ipairs(xs) do shapes[table.concat(x:shape(), ",")] = true end
          assert(next(shapes, next(shapes)), name .. ": broadcast case with equal shapes")
          found = true
        end
      end
      assert(found, name .. " has no broadcasting case")
    end
  end)

  for _, name in ipairs(sc.op_names()) do
    for _, lay in ipairs(LAYOUTS) do
      it(("%s, %s inputs, first and second order"):format(name, lay[1]), function()
        local checks = CASES[name]
        assert(checks, "no gradcheck case for op " .. name)
        for k, check in ipairs(checks) do
          run_check(("%s case %d"):format(name, k), check, lay[2])
        end
      end)
    end
  end

  it("cases really record the op they are named after", function()
    -- the gradient graph of each case's output contains its op: walk it by
    -- grad_fn names of the first output (a cheap check for the unary and
    -- binary cases, where the op is the last one applied)
    for _, name in ipairs({ "exp", "log", "add", "div", "maximum", "pow_scalar", "where", "clamp", "matmul",
      "cat", "index_select", "sum_to", "narrow_backward", "index_add", "silu_grad", "silu_grad2", "step",
      "leaky_relu", "leaky_grad", "linear", "silu_linear", "bernoulli_log_prob", "phase_join", "phase_split", "alias", "group_norm", "group_norm_silu", "layer_norm", "softmax", "log_softmax" }) do
      local c = CASES[name][1]
      local xs = {}
      for i, x in ipairs(c.inputs()) do xs[i] = x:requires_grad(true) end
      assert.are.equal(name, c.fn(table.unpack(xs)):grad_fn(), name)
    end
  end)
end)

-- Ops with a fused backward (FUSED rows of csrc/core/ops.def, read from the
-- table, so a new one is covered here without an edit): a plain backward
-- takes the fused kernels; with them switched off it takes the formula in
-- ops.  Both must give the same gradients on every case and layout.
describe("fused and graph backward", function()
  local core = require "scorch.core"
  local function runs(name)
    for _, row in ipairs(core._op_table()) do
      if row.name == name then return row.fused_runs end
    end
  end
  local fused = {}
  for _, row in ipairs(core._op_table()) do
    if row.fused then fused[#fused + 1] = row.name end
  end

  it("the table lists the fused ops", function()
    table.sort(fused)
    assert.are.same({ "bernoulli_log_prob", "group_norm", "group_norm_silu", "layer_norm", "log_softmax", "silu", "silu_linear",
      "softmax" }, fused)
  end)

  for _, name in ipairs(fused) do
    for _, lay in ipairs(LAYOUTS) do
      it(("%s, %s inputs: the fused backward equals the graph formula"):format(name, lay[1]), function()
        for k, check in ipairs(CASES[name]) do
          local label = ("%s case %d"):format(name, k)
          local xs = {}
          for i, x in ipairs(check.inputs()) do xs[i] = lay[2](x):requires_grad(true) end
          local y = check.fn(table.unpack(xs))
          local u = sc.randn(y:shape(), { dtype = "float64", generator = sc.Generator(8) })
          local obj = (y * u):sum()
          local before = runs(name)
          local f = sc.grad({ obj }, xs, { allow_unused = true, retain_graph = true })
          local mid = runs(name)
          assert(mid > before, label .. ": the fused backward did not run")
          local prev = core._set_fused_backward(false)
          local ok, gr = pcall(sc.grad, { obj }, xs, { allow_unused = true })
          core._set_fused_backward(prev)
          assert(ok, gr)
          assert.are.equal(mid, runs(name), label .. ": the fused backward ran while switched off")
          for i = 1, #xs do
            assert(not f[i] == not gr[i], label .. ": input " .. i .. " used by one backward only")
            if f[i] then H.assert_close(gr[i], f[i], 1e-12, label .. ": graph vs fused, input " .. i) end
          end
        end
      end)
    end
  end

  it("switching returns the previous setting and refuses a non-boolean", function()
    assert.is_true(core._set_fused_backward(false))
    assert.is_false(core._set_fused_backward(true))
    assert.has_error(function() core._set_fused_backward(0) end)
  end)
end)

describe("gradcheck itself", function()
  it("catches a wrong first derivative", function()
    local x = H.leaf({ 0.5, 1.5, -2 })
    local ok, msg = sc.gradcheck(function(a) return a * a:detach() end, { x })
    assert.is_false(ok)
    assert.truthy(msg:find("first order", 1, true), msg)
  end)

  it("catches a gradient that is not differentiable again", function()
    -- value x^3 with the right first derivative 3 x^2, built so that the
    -- gradient is a constant: its second derivative (6x) is lost
    local x = H.leaf({ 0.5, 1.5, -2 })
    local function f(a)
      local d = a:detach()
      return (a ^ 3):detach() + (a - d) * 3 * d ^ 2
    end
    local ok, msg = sc.gradcheck(f, { x })
    assert.is_false(ok)
    assert.truthy(msg:find("second order", 1, true), msg)
  end)

  it("refuses float32 inputs", function()
    assert.has_error(function() sc.gradcheck(function(a) return a end, { sc.zeros(2):requires_grad(true) }) end)
  end)
end)

describe("gradcheck of composites", function()
  local function gc(fn, xs, opts)
    for i, x in ipairs(xs) do xs[i] = x:requires_grad(true) end
    local ok, msg = sc.gradcheck(fn, xs, opts)
    assert(ok, msg)
  end

  it("mean over all, one and several dims", function()
    gc(function(x) return x:mean() end, { R({ 3, 4 }, 201) })
    gc(function(x) return x:mean(2, true) * x end, { R({ 3, 4 }, 202) })
    gc(function(x) return x:mean({ 1, 3 }) end, { H.strided(R({ 2, 3, 2 }, 203)) })
  end)

  it("var (unbiased) with dims and keepdim", function()
    gc(function(x) return x:var() end, { R({ 3, 4 }, 204) })
    gc(function(x) return x:var(2) end, { R({ 3, 4 }, 205) })
    gc(function(x) return x:var(-2, true) end, { H.transposed(R({ 3, 4 }, 206)) })
  end)

  it("logsumexp", function()
    gc(function(x) return x:logsumexp(2) end, { R({ 3, 4 }, 207) })
    gc(function(x) return x:logsumexp(1, true) end, { H.transposed(R({ 3, 4 }, 208)) })
    gc(function(x) return (x * 30):logsumexp(-1) end, { R({ 2, 5 }, 209) })
  end)

  it("linear on other ranks (the composite path)", function()
    gc(sc.linear, { R({ 4 }, 230), R({ 3, 4 }, 231), R({ 3 }, 232) })
    gc(sc.linear, { R({ 2, 3, 4 }, 233), R({ 2, 4 }, 234), R({ 2 }, 235) })
  end)

  it("matmul chains and a quadratic form", function()
    gc(function(a, b, c) return sc.matmul(sc.matmul(a, b), c) end,
      { R({ 2, 3 }, 210), R({ 3, 4 }, 211), R({ 4, 2 }, 212) })
    gc(function(v, m) return sc.matmul(v, sc.matmul(m, v)) end, { R({ 3 }, 213), R({ 3, 3 }, 214) })
    gc(function(a, b) return sc.matmul(a, b:transpose(-1, -2)) end, { R({ 2, 3, 4 }, 215), R({ 5, 4 }, 216) })
  end)

  it("cat with 3 inputs and stack", function()
    gc(function(a, b, c) return sc.cat({ a:exp(), b * c, c }, 1) end,
      { R({ 2, 3 }, 217), R({ 1, 3 }, 218), R({ 1, 3 }, 219) })
    gc(function(a, b, c) return sc.stack({ a, b:t(), c }, 2) end,
      { R({ 2, 3 }, 220), R({ 3, 2 }, 221), R({ 2, 3 }, 222) })
  end)

  it("where mixing two nonlinear branches", function()
    gc(function(x) return sc.where(x:gt(0), x:exp(), x:sin() * x) end, { K({ 3, 4 }, 223) })
  end)

  it("a small MLP with softplus and a score-matching-like loss", function()
    gc(function(x, w1, w2)
      local h = sc.matmul(x, w1):softplus()
      local y = sc.matmul(h, w2):tanh()
      return ((y - x) ^ 2):sum(2):mean()
    end, { R({ 4, 2 }, 224), R({ 2, 3 }, 225), R({ 3, 2 }, 226) })
  end)

  it("silu, sigmoid and relu in a chain", function()
    gc(function(x) return x:silu():sigmoid() * x:relu() end, { K({ 3, 4 }, 227) })
  end)
end)
