-- Image and sequence layers as compositions of differentiable ops.
--
-- Every function here is built from core ops that have their own backward
-- (im2col/col2im, matmul, reductions, elementwise), so gradients of any order
-- come for free.  Shapes follow PyTorch: images are [N, C, H, W], conv weights
-- [out, in/groups, kh, kw], transposed-conv weights [in, out/groups, kh, kw].
local sc = require "scorch"

local F = {}

local function pair(v, default, fn, name)
  if v == nil then return default, default end
  if type(v) == "number" then return v, v end
  if type(v) == "table" and #v == 2 then return v[1], v[2] end
  error(("scorch.%s: %s must be a number or {h, w}"):format(fn, name), 3)
end

local function check_image(x, fn)
  if not sc.is_tensor(x) or x:dim() ~= 4 then
    local what = sc.is_tensor(x) and ("shape [" .. table.concat(x:shape(), ",") .. "]") or type(x)
    error(("scorch.%s: expected an [N,C,H,W] tensor, got %s"):format(fn, what), 3)
  end
end

local function out_size(n, k, s, p, d)
  return (n + 2 * p - d * (k - 1) - 1) // s + 1
end

-- conv2d(x, w [, b] [, {stride=, padding=, dilation=, groups=}])
-- Unfold the windows (im2col) and multiply by the flattened kernels.
function F.conv2d(x, w, b, opts)
  if type(b) == "table" and not sc.is_tensor(b) then b, opts = nil, b end
  opts = opts or {}
  check_image(x, "conv2d")
  local N, C, H, W = table.unpack(x:shape())
  if not sc.is_tensor(w) or w:dim() ~= 4 then error("scorch.conv2d: weight must be [out, in/groups, kh, kw]", 2) end
  local O, Cg, kh, kw = table.unpack(w:shape())
  local groups = opts.groups or 1
  if C ~= Cg * groups or O % groups ~= 0 then
    error(("scorch.conv2d: input has %d channels, weight [%d,%d,%d,%d] with %d groups expects %d")
      :format(C, O, Cg, kh, kw, groups, Cg * groups), 2)
  end
  local sh, sw = pair(opts.stride, 1, "conv2d", "stride")
  local ph, pw = pair(opts.padding, 0, "conv2d", "padding")
  local dh, dw = pair(opts.dilation, 1, "conv2d", "dilation")
  local geom = { kernel = { kh, kw }, stride = { sh, sw }, padding = { ph, pw }, dilation = { dh, dw } }
  local Ho, Wo = out_size(H, kh, sh, ph, dh), out_size(W, kw, sw, pw, dw)
  if groups == 1 then -- the fused op: one sample at a time through the cache
    local y = sc.conv2d_core(x, w, geom)
    if b then y = y + b:view(1, O, 1, 1) end
    return y
  end
  local cols = sc.im2col(x, geom) -- [N, C*kh*kw, Ho*Wo]
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

-- conv_transpose2d(x, w [, b] [, {stride=, padding=, output_padding=,
-- dilation=, groups=}]): the adjoint of conv2d in x: multiply, then fold
-- the columns back (col2im).
function F.conv_transpose2d(x, w, b, opts)
  if type(b) == "table" and not sc.is_tensor(b) then b, opts = nil, b end
  opts = opts or {}
  check_image(x, "conv_transpose2d")
  local N, Cin, H, W = table.unpack(x:shape())
  local Ci, Og, kh, kw = table.unpack(w:shape())
  local groups = opts.groups or 1
  if Ci ~= Cin or Cin % groups ~= 0 then
    error(("scorch.conv_transpose2d: input has %d channels, weight [%d,%d,%d,%d] expects %d")
      :format(Cin, Ci, Og, kh, kw, Ci), 2)
  end
  local sh, sw = pair(opts.stride, 1, "conv_transpose2d", "stride")
  local ph, pw = pair(opts.padding, 0, "conv_transpose2d", "padding")
  local oh, ow = pair(opts.output_padding, 0, "conv_transpose2d", "output_padding")
  local dh, dw = pair(opts.dilation, 1, "conv_transpose2d", "dilation")
  if oh >= sh and oh >= dh or ow >= sw and ow >= dw then
    error("scorch.conv_transpose2d: output_padding must be smaller than stride or dilation", 2)
  end
  local Ho = (H - 1) * sh - 2 * ph + dh * (kh - 1) + oh + 1
  local Wo = (W - 1) * sw - 2 * pw + dw * (kw - 1) + ow + 1
  local geom = { kernel = { kh, kw }, stride = { sh, sw }, padding = { ph, pw }, dilation = { dh, dw } }
  if groups == 1 then -- the adjoint of the fused conv2d
    local y = sc.conv2d_input(x, w, { Ho, Wo }, geom)
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
  local y = sc.col2im(cols, { Ho, Wo }, geom)
  if b then y = y + b:view(1, Og * groups, 1, 1) end
  return y
end

-- avg_pool2d(x, kernel [, {stride=kernel, padding=0}]): mean of each window,
-- padding counted as zeros (PyTorch's count_include_pad).
function F.avg_pool2d(x, kernel, opts)
  opts = opts or {}
  check_image(x, "avg_pool2d")
  local N, C, H, W = table.unpack(x:shape())
  local kh, kw = pair(kernel, nil, "avg_pool2d", "kernel")
  local sh, sw = pair(opts.stride, nil, "avg_pool2d", "stride")
  sh, sw = sh or kh, sw or kw
  local ph, pw = pair(opts.padding, 0, "avg_pool2d", "padding")
  if not opts.padding and sh == kh and sw == kw and kh == kw and H % kh == 0 and W % kw == 0 then
    return sc.sum_pool(x, kh) * (1 / (kh * kw)) -- the common case, one op
  end
  local cols = sc.im2col(x:reshape(N * C, 1, H, W),
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

-- upsample(x, {scale=2, mode="nearest"|"bilinear"}) or upsample(x, 2)
function F.upsample(x, opts)
  if type(opts) == "number" then opts = { scale = opts } end
  opts = opts or {}
  check_image(x, "upsample")
  local s = opts.scale or 2
  if math.type(s) ~= "integer" or s < 1 then error("scorch.upsample: scale must be a positive integer", 2) end
  local mode = opts.mode or "nearest"
  if mode == "nearest" then return sc.upsample_nearest(x, s) end
  if mode ~= "bilinear" then error("scorch.upsample: mode must be \"nearest\" or \"bilinear\"", 2) end
  local H, W = x:size(3), x:size(4)
  local Ah = interp_matrix(H, H * s, x:dtype())
  local Aw = interp_matrix(W, W * s, x:dtype())
  return sc.matmul(sc.matmul(Ah, x), Aw:t()) -- separable: rows, then columns
end

-- group_norm(x, groups [, weight, bias] [, eps=1e-5]) (Wu & He 2018):
-- normalise over each group of channels and the spatial dims.
function F.group_norm(x, groups, w, b, eps)
  eps = eps or 1e-5
  local shape = x:shape()
  local N, C = shape[1], shape[2]
  if not C or C % groups ~= 0 then
    error(("scorch.group_norm: %s channels are not divisible into %d groups"):format(tostring(C), groups), 2)
  end
  local xg = x:reshape(N, groups, -1)
  local mean = xg:mean(3, true)
  local var = xg:var(3, true, false)
  local y = ((xg - mean) * (var + eps):rsqrt()):view(shape)
  if w then
    local bshape = { 1, C }
    for _ = 3, #shape do bshape[#bshape + 1] = 1 end
    y = y * w:view(bshape)
    if b then y = y + b:view(bshape) end
  end
  return y
end

-- layer_norm(x, n_last_dims [, weight, bias] [, eps]) over the trailing dims.
function F.layer_norm(x, nd, w, b, eps)
  eps = eps or 1e-5
  local dims = {}
  for k = 1, nd do dims[k] = x:dim() - nd + k end
  local mean = x:mean(dims, true)
  local var = x:var(dims, true, false)
  local y = (x - mean) * (var + eps):rsqrt()
  if w then y = y * w end
  if b then y = y + b end
  return y
end

function F.log_softmax(x, d)
  return x - x:logsumexp(d or -1, true)
end

function F.softmax(x, d)
  return F.log_softmax(x, d):exp()
end

-- attention(q, k, v): softmax(q kᵀ / √d) v over the last two dims
-- (Vaswani et al. 2017, eq. 1).
function F.attention(q, k, v)
  local d = q:size(-1)
  local scores = sc.matmul(q, k:transpose(-2, -1)) * (1 / math.sqrt(d))
  return sc.matmul(F.softmax(scores, -1), v)
end

-- dropout(x, p, training [, generator]): zero with probability p and scale
-- the rest by 1/(1-p) (Srivastava et al. 2014, inverted dropout).
function F.dropout(x, p, training, generator)
  if not training or p == 0 then return x end
  if p < 0 or p >= 1 then error("scorch.dropout: p must be in [0, 1)", 2) end
  local keep = sc.rand(x:shape(), { dtype = x:dtype(), generator = generator }):ge(p)
  return x * keep * (1 / (1 - p))
end

return F
