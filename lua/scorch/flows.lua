--- Normalizing-flow building blocks: affine couplings with alternating
-- masks, ActNorm, the squeeze between scales, and the image helpers
-- (dequantisation, the logit transform, bits per dimension).
--
-- RealNVP: Dinh, Sohl-Dickstein & Bengio 2017, "Density estimation using Real NVP".
-- ActNorm with data-dependent initialisation: Kingma & Dhariwal 2018 (Glow), §3.1.
--
-- Every layer maps x -> y, logdet with logdet = log|det ∂y/∂x| per example
-- ([N]), and has inverse(y) -> x.  The log-scale of every coupling is bounded
-- by s = b·tanh(h/b) (b = `log_scale_bound`, 1 by default, so a layer scales
-- each coordinate by a factor in [e^-b, e^b]).
-- Loaded as require "scorch.flows" (also sc.models.flows).
-- @module scorch.flows
local sc = require "scorch"
local nn = sc.nn
local util = require "scorch.util"

local M = {}

local LOG_2PI = math.log(2 * math.pi)
local shape_str = util.shape_str

-- Raises unless x is a tensor of rank `rank` with finite values.
local function check_input(x, rank, fn, arg)
  if not sc.is_tensor(x) then
    error(("%s: argument %s must be a tensor (got %s)"):format(fn, arg, type(x)), 3)
  end
  if rank and x:dim() ~= rank then
    error(("%s: argument %s must have %d dimensions (got %s)"):format(fn, arg, rank, shape_str(x)), 3)
  end
  local s = x:detach():sum():item()
  if s ~= s or s == math.huge or s == -math.huge then
    error(("%s: argument %s %s holds non-finite values"):format(fn, arg, shape_str(x)), 3)
  end
end
M.check_input = check_input

-- Per-example sum over every dimension but the first: [N, ...] -> [N].
local function sum_rest(t)
  return t:reshape(t:size(1), -1):sum(2)
end
M.sum_rest = sum_rest

--- Log-density of the standard normal, summed over all but the batch dimension.
-- @param z tensor [N, ...]
-- @return tensor [N]
-- @usage local lp = flows.standard_normal_log_prob(z)
function M.standard_normal_log_prob(z)
  local d = z:numel() // z:size(1)
  return sum_rest(z:square()) * -0.5 - 0.5 * d * LOG_2PI
end

local function bounded(h, b)
  if b == 1 then return h:tanh() end
  return (h / b):tanh() * b
end

-- ---- ActNorm ----------------------------------------------------------------------

local ActNorm = nn.Module:extend("ActNorm")
M.ActNorm = ActNorm

--- ActNorm: y = (x + b)·exp(log s) per feature (vectors [N, D]) or per
-- channel (images [N, C, H, W]).  The first forward call in training mode
-- sets b and log s so that the batch has zero mean and unit variance per
-- feature (Glow's data-dependent initialisation); until then it is the identity.
-- @param features integer: D or C
-- @param opts table: image (false: vectors), dtype
-- @return module with forward(x) -> y, logdet [N] and inverse(y) -> x
-- @usage local an = flows.ActNorm(2)
function ActNorm:init(features, opts)
  opts = util.check_options(opts, { "image", "dtype" }, "scorch.flows.ActNorm")
  self.image = opts.image and true or false
  local shape = self.image and { 1, features, 1, 1 } or { 1, features }
  self.features = features
  self.bias = nn.init.parameter(shape, opts.dtype)
  self.log_scale = nn.init.parameter(shape, opts.dtype)
  self:register_buffer("initialized", sc.zeros({ 1 }, { dtype = opts.dtype or "float32" }))
end

function ActNorm:data_init(x)
  sc.no_grad(function()
    local flat = self.image and x:transpose(1, 2):reshape(self.features, -1) or x:t()
    local mean = flat:mean(2)
    local std = (flat:var(2) + 1e-6):sqrt()
    local shape = self.bias:shape()
    self.bias:copy_((-mean):reshape(shape))
    self.log_scale:copy_((-std:log()):reshape(shape))
    self.initialized:fill_(1)
  end)
end

function ActNorm:forward(x)
  if self.training and self.initialized:item() == 0 then self:data_init(x) end
  local y = (x + self.bias) * self.log_scale:exp()
  local per = self.log_scale:sum()
  if self.image then per = per * (x:size(3) * x:size(4)) end
  return y, per:expand(x:size(1))
end

function ActNorm:inverse(y)
  return y * (-self.log_scale):exp() - self.bias
end

-- ---- couplings --------------------------------------------------------------------

local AffineCoupling = nn.Module:extend("AffineCoupling")
M.AffineCoupling = AffineCoupling

--- Affine coupling on vectors with a half/half mask: one half x_a passes
-- unchanged and sets the log-scale s and shift t of the other,
-- y_b = x_b·exp(s(x_a)) + t(x_a) (Dinh et al. 2017, eq. 4–6).
-- @param dim integer: D, even
-- @param opts table: parity (0: condition on the first half, 1: on the second; default 0),
--   hidden ({128, 128, 128}), act ("silu"), log_scale_bound (1), dtype, generator
-- @return module with forward(x [N, D]) -> y [N, D], logdet [N] and inverse(y) -> x
-- @usage local c = flows.AffineCoupling(2, {parity = 1})
function AffineCoupling:init(dim, opts)
  opts = util.check_options(opts, { "parity", "hidden", "act", "log_scale_bound", "dtype", "generator" },
    "scorch.flows.AffineCoupling")
  if math.type(dim) ~= "integer" or dim < 2 or dim % 2 ~= 0 then
    error(("scorch.flows.AffineCoupling: argument dim must be an even integer >= 2 for a half/half mask (got %s)")
      :format(tostring(dim)), 3)
  end
  self.dim, self.half = dim, dim // 2
  self.parity = opts.parity or 0
  self.bound = opts.log_scale_bound or 1
  self.net = nn.MLP { ["in"] = self.half, out = 2 * self.half, hidden = opts.hidden or { 128, 128, 128 },
    act = opts.act or "silu", dtype = opts.dtype, generator = opts.generator }
end

-- (conditioning half, transformed half) and a function joining them back
function AffineCoupling:split(x)
  local a, b = x:narrow(2, 1, self.half), x:narrow(2, self.half + 1, self.half)
  if self.parity == 0 then
    return a, b, function(ya, yb) return sc.cat({ ya, yb }, 2) end
  end
  return b, a, function(ya, yb) return sc.cat({ yb, ya }, 2) end
end

function AffineCoupling:params(xa)
  local h = self.net(xa)
  return bounded(h:narrow(2, 1, self.half), self.bound), h:narrow(2, self.half + 1, self.half)
end

function AffineCoupling:forward(x)
  local xa, xb, join = self:split(x)
  local s, t = self:params(xa)
  return join(xa, xb * s:exp() + t), s:sum(2)
end

function AffineCoupling:inverse(y)
  local ya, yb, join = self:split(y)
  local s, t = self:params(ya)
  return join(ya, (yb - t) * (-s):exp())
end

-- A small convolutional conditioner for images: conv3×3, ReLU, conv3×3,
-- ReLU, conv3×3 to 2·c_out channels (log-scale, shift).  RealNVP used
-- ResNets with batch normalisation; this one is deliberately small.
local function conv_net(c_in, c_out, hidden, opts)
  local o = { padding = 1, dtype = opts.dtype, generator = opts.generator }
  return nn.Sequential {
    nn.Conv2d(c_in, hidden, 3, o), nn.ReLU(),
    nn.Conv2d(hidden, hidden, 3, o), nn.ReLU(),
    nn.Conv2d(hidden, 2 * c_out, 3, o),
  }
end

local ImageCoupling = nn.Module:extend("ImageCoupling")
M.ImageCoupling = ImageCoupling

--- Affine coupling on images [N, C, H, W] with a checkerboard mask (pixels
-- with (i + j + parity) even pass unchanged) or a channel-wise mask (one half
-- of the channels passes unchanged), Dinh et al. 2017, §3.4.
-- @param channels integer C (even for the channel-wise mask)
-- @param height integer H
-- @param width integer W
-- @param opts table: mask ("checkerboard" or "channel"), parity (0 or 1), hidden (64 channels),
--   log_scale_bound (1), dtype, generator
-- @return module with forward(x) -> y, logdet [N] and inverse(y) -> x
-- @usage local c = flows.ImageCoupling(1, 4, 4, {mask = "checkerboard"})
function ImageCoupling:init(channels, height, width, opts)
  local fn = "scorch.flows.ImageCoupling"
  opts = util.check_options(opts, { "mask", "parity", "hidden", "log_scale_bound", "dtype", "generator" }, fn)
  self.mask_kind = opts.mask or "checkerboard"
  self.parity = opts.parity or 0
  self.bound = opts.log_scale_bound or 1
  self.channels, self.height, self.width = channels, height, width
  local hidden = opts.hidden or 64
  if self.mask_kind == "checkerboard" then
    local rows = {}
    for i = 1, height do
      local r = {}
      for j = 1, width do r[j] = ((i + j + self.parity) % 2 == 0) and 1 or 0 end
      rows[i] = r
    end
    self.mask = sc.tensor({ { rows } }, { dtype = opts.dtype or "float32" })
    self.net = conv_net(channels, channels, hidden, opts)
  elseif self.mask_kind == "channel" then
    if channels % 2 ~= 0 then
      error(("%s: a channel-wise mask needs an even channel count (got %d)"):format(fn, channels), 3)
    end
    self.half = channels // 2
    self.net = conv_net(self.half, self.half, hidden, opts)
  else
    error(("%s: mask must be \"checkerboard\" or \"channel\" (got %s)"):format(fn, tostring(opts.mask)), 3)
  end
end

function ImageCoupling:check(x, fn)
  local s = x:shape()
  if x:dim() ~= 4 or s[2] ~= self.channels or s[3] ~= self.height or s[4] ~= self.width then
    error(("scorch.flows.ImageCoupling.%s: argument x must be [N, %d, %d, %d] (got %s)")
      :format(fn, self.channels, self.height, self.width, shape_str(x)), 3)
  end
end

-- Checkerboard: s and t are zero where the mask is 1, so y = x·exp(s) + t
-- leaves those pixels unchanged and the Jacobian stays triangular.
function ImageCoupling:checker_params(x)
  local m = self.mask
  local h = self.net(x * m)
  local c = self.channels
  local keep = 1 - m
  return bounded(h:narrow(2, 1, c), self.bound) * keep, h:narrow(2, c + 1, c) * keep
end

function ImageCoupling:channel_split(x)
  local a, b = x:narrow(2, 1, self.half), x:narrow(2, self.half + 1, self.half)
  if self.parity == 0 then return a, b, function(ya, yb) return sc.cat({ ya, yb }, 2) end end
  return b, a, function(ya, yb) return sc.cat({ yb, ya }, 2) end
end

function ImageCoupling:channel_params(xa)
  local h = self.net(xa)
  return bounded(h:narrow(2, 1, self.half), self.bound), h:narrow(2, self.half + 1, self.half)
end

function ImageCoupling:forward(x)
  self:check(x, "forward")
  if self.mask_kind == "checkerboard" then
    local s, t = self:checker_params(x)
    return x * s:exp() + t, sum_rest(s)
  end
  local xa, xb, join = self:channel_split(x)
  local s, t = self:channel_params(xa)
  return join(xa, xb * s:exp() + t), sum_rest(s)
end

function ImageCoupling:inverse(y)
  self:check(y, "inverse")
  if self.mask_kind == "checkerboard" then
    local s, t = self:checker_params(y)
    return (y - t) * (-s):exp()
  end
  local ya, yb, join = self:channel_split(y)
  local s, t = self:channel_params(ya)
  return join(ya, (yb - t) * (-s):exp())
end

-- ---- squeeze --------------------------------------------------------------------

--- Squeeze: [N, C, H, W] -> [N, 4C, H/2, W/2], each 2×2 block of pixels
-- becoming four channels (Dinh et al. 2017, §3.6); a permutation, log-determinant 0.
-- @param x tensor [N, C, H, W], H and W even
-- @return tensor [N, 4C, H/2, W/2]
-- @usage local y = flows.squeeze(x)
function M.squeeze(x)
  local s = x:shape()
  if x:dim() ~= 4 or s[3] % 2 ~= 0 or s[4] % 2 ~= 0 then
    error(("scorch.flows.squeeze: argument x must be [N, C, H, W] with H and W even (got %s)")
      :format(shape_str(x)), 2)
  end
  return x:reshape(s[1], s[2], s[3] // 2, 2, s[4] // 2, 2):permute(1, 2, 4, 6, 3, 5)
    :contiguous():reshape(s[1], s[2] * 4, s[3] // 2, s[4] // 2)
end

--- The inverse of squeeze: [N, 4C, H, W] -> [N, C, 2H, 2W].
-- @param y tensor [N, 4C, H, W]
-- @return tensor [N, C, 2H, 2W]
-- @usage local x = flows.unsqueeze(flows.squeeze(x))
function M.unsqueeze(y)
  local s = y:shape()
  if y:dim() ~= 4 or s[2] % 4 ~= 0 then
    error(("scorch.flows.unsqueeze: argument y must be [N, 4C, H, W] (got %s)"):format(shape_str(y)), 2)
  end
  local c = s[2] // 4
  return y:reshape(s[1], c, 2, 2, s[3], s[4]):permute(1, 2, 5, 3, 6, 4)
    :contiguous():reshape(s[1], c, s[3] * 2, s[4] * 2)
end

-- ---- image helpers -----------------------------------------------------------------

--- Uniform dequantisation of 8-bit data: u = (x + v)/256 with v ~ U[0, 1),
-- so u lies in [0, 1) and a density on u bounds the discrete likelihood
-- (Theis et al. 2016; Dinh et al. 2017, §4.1).
-- @param x tensor [N, ...] of integer values 0..255 (any float dtype)
-- @param opts table: generator
-- @return tensor like x, values in [0, 1)
-- @usage local u = flows.dequantize(x8, {generator = g})
function M.dequantize(x, opts)
  opts = util.check_options(opts, { "generator" }, "scorch.flows.dequantize")
  check_input(x, nil, "scorch.flows.dequantize", "x")
  local lo, hi = x:min():item(), x:max():item()
  if lo < 0 or hi > 255 then
    error(("scorch.flows.dequantize: argument x %s must hold 8-bit values in 0..255 (got range [%g, %g])")
      :format(shape_str(x), lo, hi), 2)
  end
  local v = sc.rand(x:shape(), { generator = opts.generator, dtype = x:dtype() })
  return (x + v) / 256
end

--- The logit transform y = logit(α + (1 − 2α)u) for u in [0, 1] and its
-- log-Jacobian, Σ log(1 − 2α) − log p − log(1 − p) with p = α + (1 − 2α)u
-- (Dinh et al. 2017, §4.1, α = 0.05).
-- @param u tensor [N, ...], values in [0, 1]
-- @param opts table: alpha (0.05)
-- @return y tensor like u, logdet tensor [N]
-- @usage local y, ld = flows.logit_transform(u)
function M.logit_transform(u, opts)
  opts = util.check_options(opts, { "alpha" }, "scorch.flows.logit_transform")
  local a = opts.alpha or 0.05
  check_input(u, nil, "scorch.flows.logit_transform", "u")
  local p = u * (1 - 2 * a) + a
  local lp, l1p = p:log(), (1 - p):log()
  local ld = sum_rest(-lp - l1p) + math.log(1 - 2 * a) * (u:numel() // u:size(1))
  return lp - l1p, ld
end

--- The inverse of logit_transform: u = (sigmoid(y) − α)/(1 − 2α).
-- @param y tensor
-- @param opts table: alpha (0.05)
-- @return tensor like y
-- @usage local u = flows.logit_inverse(y)
function M.logit_inverse(y, opts)
  opts = util.check_options(opts, { "alpha" }, "scorch.flows.logit_inverse")
  local a = opts.alpha or 0.05
  return (y:sigmoid() - a) / (1 - 2 * a)
end

--- Bits per dimension of 8-bit data from a log-density of u = x/256 in
-- [0, 1)^D: (−log p(u) + D log 256)/(D log 2).
-- @param log_prob tensor [N] (or a number): log-density of the dequantised u
-- @param dims integer D (e.g. 784)
-- @return tensor [N] (or a number)
-- @usage local bpd = flows.bits_per_dim(flow:log_prob(y) + ld, 784)
function M.bits_per_dim(log_prob, dims)
  if math.type(dims) ~= "integer" or dims < 1 then
    error(("scorch.flows.bits_per_dim: argument dims must be a positive integer (got %s)"):format(tostring(dims)), 2)
  end
  return (-log_prob + dims * math.log(256)) / (dims * math.log(2))
end

--- Log-density of dequantised 8-bit images under a flow on logit space:
-- u = dequantize(x), y = logit(α + (1 − 2α)u), log p(u) = log p_flow(y) + logdet.
-- @param flow a flow with log_prob (e.g. sc.models.RealNVP{shape=...})
-- @param x tensor [N, C, H, W] of values 0..255
-- @param opts table: alpha (0.05), generator
-- @return log p(u) [N], and bits/dim [N]
-- @usage local lp, bpd = flows.image_log_prob(flow, x8)
function M.image_log_prob(flow, x, opts)
  opts = util.check_options(opts, { "alpha", "generator" }, "scorch.flows.image_log_prob")
  local u = M.dequantize(x, { generator = opts.generator })
  local y, ld = M.logit_transform(u, { alpha = opts.alpha })
  local lp = flow:log_prob(y) + ld
  return lp, M.bits_per_dim(lp, x:numel() // x:size(1))
end

return M
