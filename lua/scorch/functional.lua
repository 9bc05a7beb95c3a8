--- Image and sequence layers as compositions of differentiable ops.
--
-- Every function here is built from core ops that have their own backward
-- (im2col/col2im, matmul, reductions, elementwise, and the normalisation
-- kernels behind group_norm, layer_norm and softmax), so gradients of any
-- order come for free.  Shapes follow PyTorch: images are [N, C, H, W], conv weights
-- [out, in/groups, kh, kw], transposed-conv weights [in, out/groups, kh, kw].
-- @module scorch.functional
local sc = require "scorch"
local core = require "scorch.core"

local F = {}

local shape_str = require("scorch.util").shape_str

local function describe(v)
  if sc.is_tensor(v) then
    local ok, s = pcall(shape_str, v)
    return ok and ("a tensor of shape " .. s) or "a closed tensor"
  end
  if type(v) == "number" then return tostring(v) end
  return type(v) == "string" and ("a string") or type(v)
end

-- an integer-valued number (2.0 is fine, 1.5 is not) within [lo, hi]
local function is_int(v, lo, hi)
  return (math.type(v) == "integer" or (math.type(v) == "float" and v == math.floor(v)))
    and v >= lo and v <= (hi or math.maxinteger)
end

local function pair(v, default, fn, name, lo)
  lo = lo or 0
  local a, b
  if v == nil then a, b = default, default
  elseif type(v) == "number" then a, b = v, v
  elseif type(v) == "table" and not sc.is_tensor(v) and #v == 2 then a, b = v[1], v[2] end
  if (a == nil and b == nil and v == nil) or (is_int(a, lo, 1 << 30) and is_int(b, lo, 1 << 30)) then
    return a and math.tointeger(a), b and math.tointeger(b)
  end
  error(("scorch.%s: %s must be an integer >= %d or a pair {h, w} of them, got %s")
    :format(fn, name, lo, type(v) == "table" and "a table of " .. #v or describe(v)), 3)
end

local function check_tensor(x, fn, name)
  if not sc.is_tensor(x) then
    error(("scorch.%s: %s must be a tensor, got %s"):format(fn, name, describe(x)), 3)
  end
  local ok = pcall(x.dim, x)
  if not ok then error(("scorch.%s: %s is a closed tensor"):format(fn, name), 3) end
end

local function check_image(x, fn, name)
  check_tensor(x, fn, name or "input")
  if x:dim() ~= 4 then
    error(("scorch.%s: %s must be an [N,C,H,W] tensor, got shape %s"):format(fn, name or "input", shape_str(x)), 3)
  end
end

-- an optional per-channel tensor (bias, norm weight) of n elements
local function check_vector(v, n, like, fn, name)
  if v == nil then return end
  check_tensor(v, fn, name)
  if v:numel() ~= n or v:dim() ~= 1 then
    error(("scorch.%s: %s must have shape [%d], got %s"):format(fn, name, n, shape_str(v)), 3)
  end
  if v:dtype() ~= like:dtype() then
    error(("scorch.%s: %s is %s but the input is %s"):format(fn, name, v:dtype(), like:dtype()), 3)
  end
end

local function check_dtype(a, b, fn, an, bn)
  if a:dtype() ~= b:dtype() then
    error(("scorch.%s: %s is %s but %s is %s"):format(fn, an, a:dtype(), bn, b:dtype()), 3)
  end
end

local function check_opts(opts, fn, valid)
  if opts ~= nil and (type(opts) ~= "table" or sc.is_tensor(opts)) then
    error(("scorch.%s: options must be a table, got %s"):format(fn, describe(opts)), 3)
  end
  return require("scorch.util").check_options(opts, valid, "scorch." .. fn, 4)
end

local function out_size(n, k, s, p, d)
  return (n + 2 * p - d * (k - 1) - 1) // s + 1
end

--- conv2d(x, w [, b] [, {stride=, padding=, dilation=, groups=}])
-- Unfold the windows (im2col) and multiply by the flattened kernels.
function F.conv2d(x, w, b, opts)
  if type(b) == "table" and not sc.is_tensor(b) then b, opts = nil, b end
  opts = check_opts(opts, "conv2d", { "stride", "padding", "dilation", "groups" })
  check_image(x, "conv2d")
  local N, C, H, W = table.unpack(x:shape())
  check_image(w, "conv2d", "weight")
  check_dtype(x, w, "conv2d", "input", "weight")
  local O, Cg, kh, kw = table.unpack(w:shape())
  check_vector(b, O, x, "conv2d", "bias")
  local groups = opts.groups or 1
  if not is_int(groups, 1) then error("scorch.conv2d: groups must be a positive integer", 2) end
  if C ~= Cg * groups or O % groups ~= 0 then
    error(("scorch.conv2d: input has %d channels, weight [%d,%d,%d,%d] with %d groups expects %d")
      :format(C, O, Cg, kh, kw, groups, Cg * groups), 2)
  end
  local sh, sw = pair(opts.stride, 1, "conv2d", "stride", 1)
  local ph, pw = pair(opts.padding, 0, "conv2d", "padding")
  local dh, dw = pair(opts.dilation, 1, "conv2d", "dilation", 1)
  local geom = { kernel = { kh, kw }, stride = { sh, sw }, padding = { ph, pw }, dilation = { dh, dw } }
  local Ho, Wo = out_size(H, kh, sh, ph, dh), out_size(W, kw, sw, pw, dw)
  if Ho < 1 or Wo < 1 then
    error(("scorch.conv2d: kernel [%d,%d] (dilation %d,%d) is larger than the padded input %s")
      :format(kh, kw, dh, dw, shape_str(x)), 2)
  end
  if groups == 1 then -- the fused op (bias included): one sample at a time through the cache
    if b then return core.conv2d_core(x, w, b, geom) end
    return core.conv2d_core(x, w, geom)
  end
  local cols = core.im2col(x, geom) -- [N, C*kh*kw, Ho*Wo]
  local y
  do
    local parts, Og, K = {}, O // groups, Cg * kh * kw
    for g = 1, groups do
      local wg = w:narrow(1, (g - 1) * Og + 1, Og):reshape(Og, K)
      parts[g] = sc.matmul(wg, cols:narrow(2, (g - 1) * K + 1, K))
    end
    y = sc.cat(parts, 2)
  end
  if b then y = y + b:view(1, O, 1) end
  return y:view(N, O, Ho, Wo)
end

--- conv_transpose2d(x, w [, b] [, {stride=, padding=, output_padding=,
-- dilation=, groups=}]): the adjoint of conv2d in x: multiply, then fold
-- the columns back (col2im).
function F.conv_transpose2d(x, w, b, opts)
  if type(b) == "table" and not sc.is_tensor(b) then b, opts = nil, b end
  opts = check_opts(opts, "conv_transpose2d", { "stride", "padding", "output_padding", "dilation", "groups" })
  check_image(x, "conv_transpose2d")
  local N, Cin, H, W = table.unpack(x:shape())
  check_image(w, "conv_transpose2d", "weight")
  check_dtype(x, w, "conv_transpose2d", "input", "weight")
  local Ci, Og, kh, kw = table.unpack(w:shape())
  local groups = opts.groups or 1
  if not is_int(groups, 1) then error("scorch.conv_transpose2d: groups must be a positive integer", 2) end
  check_vector(b, Og * groups, x, "conv_transpose2d", "bias")
  if Ci ~= Cin or Cin % groups ~= 0 then
    error(("scorch.conv_transpose2d: input has %d channels, weight [%d,%d,%d,%d] expects %d")
      :format(Cin, Ci, Og, kh, kw, Ci), 2)
  end
  local sh, sw = pair(opts.stride, 1, "conv_transpose2d", "stride", 1)
  local ph, pw = pair(opts.padding, 0, "conv_transpose2d", "padding")
  local oh, ow = pair(opts.output_padding, 0, "conv_transpose2d", "output_padding")
  local dh, dw = pair(opts.dilation, 1, "conv_transpose2d", "dilation", 1)
  if oh >= sh and oh >= dh or ow >= sw and ow >= dw then
    error("scorch.conv_transpose2d: output_padding must be smaller than stride or dilation", 2)
  end
  local Ho = (H - 1) * sh - 2 * ph + dh * (kh - 1) + oh + 1
  local Wo = (W - 1) * sw - 2 * pw + dw * (kw - 1) + ow + 1
  if Ho < 1 or Wo < 1 then
    error(("scorch.conv_transpose2d: padding %d,%d leaves no output for input %s"):format(ph, pw, shape_str(x)), 2)
  end
  local geom = { kernel = { kh, kw }, stride = { sh, sw }, padding = { ph, pw }, dilation = { dh, dw } }
  if groups == 1 then -- the adjoint of the fused conv2d
    local y = core.conv2d_input(x, w, { Ho, Wo }, geom)
    if b then y = y + b:view(1, Og, 1, 1) end
    return y
  end
  local xf = x:reshape(N, Cin, H * W)
  local cols
  do
    local parts, Cg = {}, Cin // groups
    for g = 1, groups do
      local wg = w:narrow(1, (g - 1) * Cg + 1, Cg):reshape(Cg, Og * kh * kw)
      parts[g] = sc.matmul(wg:t(), xf:narrow(2, (g - 1) * Cg + 1, Cg))
    end
    cols = sc.cat(parts, 2)
  end
  local y = core.col2im(cols, { Ho, Wo }, geom)
  if b then y = y + b:view(1, Og * groups, 1, 1) end
  return y
end

--- avg_pool2d(x, kernel [, {stride=kernel, padding=0}]): mean of each window,
-- padding counted as zeros (PyTorch's count_include_pad).
function F.avg_pool2d(x, kernel, opts)
  opts = check_opts(opts, "avg_pool2d", { "stride", "padding" })
  check_image(x, "avg_pool2d")
  local N, C, H, W = table.unpack(x:shape())
  if kernel == nil then error("scorch.avg_pool2d: kernel size is missing", 2) end
  local kh, kw = pair(kernel, nil, "avg_pool2d", "kernel", 1)
  local sh, sw = pair(opts.stride, nil, "avg_pool2d", "stride", 1)
  sh, sw = sh or kh, sw or kw
  local ph, pw = pair(opts.padding, 0, "avg_pool2d", "padding")
  if 2 * ph > kh or 2 * pw > kw then
    error(("scorch.avg_pool2d: padding %d,%d must be at most half the kernel [%d,%d]"):format(ph, pw, kh, kw), 2)
  end
  if H + 2 * ph < kh or W + 2 * pw < kw then
    error(("scorch.avg_pool2d: kernel [%d,%d] is larger than the padded input %s"):format(kh, kw, shape_str(x)), 2)
  end
  if not opts.padding and sh == kh and sw == kw and kh == kw and H % kh == 0 and W % kw == 0 then
    return core.sum_pool(x, kh) * (1 / (kh * kw)) -- the common case, one op
  end
  local cols = core.im2col(x:reshape(N * C, 1, H, W),
    { kernel = { kh, kw }, stride = { sh, sw }, padding = { ph, pw } })
  return cols:mean(2):view(N, C, out_size(H, kh, sh, ph, 1), out_size(W, kw, sw, pw, 1))
end

-- Linear interpolation weights from n inputs to m outputs with PyTorch's
-- align_corners = false convention: source = (i + 1/2) n/m - 1/2.
local function interp_matrix(n, m, dtype)
  local A = {}
  for i = 0, m - 1 do
    local row = {}
    for j = 1, n do row[j] = 0 end
    local src = math.max((i + 0.5) * n / m - 0.5, 0)
    local i0 = math.min(math.floor(src), n - 1)
    local i1 = math.min(i0 + 1, n - 1)
    local l = src - i0
    row[i0 + 1] = row[i0 + 1] + (1 - l)
    row[i1 + 1] = row[i1 + 1] + l
    A[i + 1] = row
  end
  return sc.tensor(A, { dtype = dtype })
end

--- upsample(x, {scale=2, mode="nearest"|"bilinear"}) or upsample(x, 2)
function F.upsample(x, opts)
  if type(opts) == "number" then opts = { scale = opts } end
  opts = check_opts(opts, "upsample", { "scale", "mode" })
  check_image(x, "upsample")
  local s = opts.scale or 2
  if not is_int(s, 1, 1 << 16) then error("scorch.upsample: scale must be a positive integer", 2) end
  local mode = opts.mode or "nearest"
  if mode == "nearest" then return core.upsample_nearest(x, math.tointeger(s)) end
  if mode ~= "bilinear" then error("scorch.upsample: mode must be \"nearest\" or \"bilinear\"", 2) end
  local H, W = x:size(3), x:size(4)
  s = math.tointeger(s)
  local Ah = interp_matrix(H, H * s, x:dtype())
  local Aw = interp_matrix(W, W * s, x:dtype())
  return sc.matmul(sc.matmul(Ah, x), Aw:t()) -- separable: rows, then columns
end

-- The checks of group_norm and group_norm_silu (fn names the caller); the
-- groups count as an integer.
local function check_group_norm(fn, x, groups, w, b, eps)
  check_tensor(x, fn, "input")
  local shape = x:shape()
  if #shape < 2 then error(("scorch.%s: input must be [N, C, ...], got shape %s"):format(fn, shape_str(x)), 3) end
  local C = shape[2]
  if not is_int(groups, 1) then
    error(("scorch.%s: groups must be a positive integer, got %s"):format(fn, describe(groups)), 3)
  end
  if C % groups ~= 0 then
    error(("scorch.%s: %d channels are not divisible into %d groups"):format(fn, C, groups), 3)
  end
  check_vector(w, C, x, fn, "weight")
  check_vector(b, C, x, fn, "bias")
  if type(eps) ~= "number" or not (eps >= 0) then error(("scorch.%s: eps must be a number >= 0"):format(fn), 3) end
  return math.tointeger(groups)
end

--- group_norm(x, groups [, weight, bias] [, eps=1e-5]) (Wu & He 2018):
-- normalise over each group of channels and the spatial dims, then scale by
-- weight and shift by bias (each optional, per channel).
function F.group_norm(x, groups, w, b, eps)
  eps = eps or 1e-5
  groups = check_group_norm("group_norm", x, groups, w, b, eps)
  return core.group_norm_core(x, groups, w, b, eps) -- one kernel (csrc/core/norm.c)
end

--- group_norm_silu(x, groups [, weight, bias] [, eps=1e-5]): silu(group_norm(x, ...))
-- as one op, the norm-then-activation of the U-Net's blocks.  Same numbers
-- as the two calls; it keeps only x for the backward (not the norm's
-- output as well), which makes each row of the norm's output again.
-- @param x tensor [N, C, ...]
-- @param groups integer dividing C
-- @param w tensor [C] or nil (scale, default none)
-- @param b tensor [C] or nil (shift, default none)
-- @param eps number (1e-5)
-- @return tensor of x's shape
-- @usage local h = sc.group_norm_silu(x, 8, gn.weight, gn.bias)
function F.group_norm_silu(x, groups, w, b, eps)
  eps = eps or 1e-5
  groups = check_group_norm("group_norm_silu", x, groups, w, b, eps)
  return core.group_norm_silu_core(x, groups, w, b, eps)
end

--- layer_norm(x, n_last_dims [, weight, bias] [, eps=1e-5]) (Ba et al. 2016):
-- normalise over the trailing dims, then scale and shift elementwise by
-- weight and bias (each optional, of the trailing shape).
function F.layer_norm(x, nd, w, b, eps)
  eps = eps or 1e-5
  check_tensor(x, "layer_norm", "input")
  if not is_int(nd, 1, x:dim()) then
    error(("scorch.layer_norm: the number of normalised trailing dims must be an integer in [1, %d] for shape %s,"
      .. " got %s"):format(x:dim(), shape_str(x), describe(nd)), 2)
  end
  nd = math.tointeger(nd)
  local tail = {}
  for k = 1, nd do tail[k] = x:size(x:dim() - nd + k) end
  for _, p in ipairs({ { w, "weight" }, { b, "bias" } }) do
    local v = p[1]
    if v ~= nil then
      check_tensor(v, "layer_norm", p[2])
      if table.concat(v:shape(), ",") ~= table.concat(tail, ",") then
        error(("scorch.layer_norm: %s must have shape [%s], got %s"):format(p[2], table.concat(tail, ","),
          shape_str(v)), 2)
      end
      check_dtype(x, v, "layer_norm", "input", p[2])
    end
  end
  if type(eps) ~= "number" or not (eps >= 0) then error("scorch.layer_norm: eps must be a number >= 0", 2) end
  return core.layer_norm_core(x, nd, w, b, eps) -- one kernel (csrc/core/norm.c)
end

local function check_dim(x, d, fn)
  check_tensor(x, fn, "input")
  d = d or -1
  local n = x:dim()
  if not is_int(d, -n, n) or d == 0 or n == 0 then
    error(("scorch.%s: dim %s is out of range for shape %s"):format(fn, describe(d), shape_str(x)), 3)
  end
  return math.tointeger(d)
end

--- log_softmax(x [, d=-1]) = x - log Σ_d e^x and softmax(x [, d=-1]) = its
-- exponential, each one kernel (csrc/core/norm.c).
function F.log_softmax(x, d)
  d = check_dim(x, d, "log_softmax")
  return core.log_softmax_core(x, d)
end

--- softmax(x [, d = -1]): e^x / Σ_d e^x along dim d, one kernel.
-- @param x tensor
-- @param d dim (default -1, the last)
-- @return tensor of x's shape
-- @usage local p = sc.softmax(logits, -1)
function F.softmax(x, d)
  d = check_dim(x, d, "softmax")
  return core.softmax_core(x, d)
end

--- attention(q, k, v): softmax(q kᵀ / √d) v over the last two dims
-- (Vaswani et al. 2017, eq. 1).
function F.attention(q, k, v)
  check_tensor(q, "attention", "q")
  check_tensor(k, "attention", "k")
  check_tensor(v, "attention", "v")
  local n = q:dim()
  if n < 2 or k:dim() ~= n or v:dim() ~= n or q:size(-1) ~= k:size(-1) or k:size(-2) ~= v:size(-2) then
    error(("scorch.attention: q %s, k %s and v %s must be [..., Lq, d], [..., Lk, d] and [..., Lk, dv]")
      :format(shape_str(q), shape_str(k), shape_str(v)), 2)
  end
  check_dtype(q, k, "attention", "q", "k")
  check_dtype(q, v, "attention", "q", "v")
  local d = q:size(-1)
  local scores = sc.matmul(q, k:transpose(-2, -1)) * (1 / math.sqrt(d))
  return sc.matmul(F.softmax(scores, -1), v)
end

--- dropout(x, p, training [, generator]): zero with probability p and scale
-- the rest by 1/(1-p) (Srivastava et al. 2014, inverted dropout).
function F.dropout(x, p, training, generator)
  check_tensor(x, "dropout", "input")
  if type(p) ~= "number" or not (p >= 0 and p < 1) then
    error(("scorch.dropout: p must be a number in [0, 1), got %s"):format(describe(p)), 2)
  end
  if not training or p == 0 then return x end
  local keep = sc.rand(x:shape(), { dtype = x:dtype(), generator = generator }):ge(p)
  return x * keep * (1 / (1 - p))
end

return F
