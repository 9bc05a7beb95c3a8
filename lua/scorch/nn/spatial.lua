--- Parameter-free image layers and self-attention over image positions.
-- @module scorch.nn.spatial
local sc = require "scorch"
local Module = require "scorch.nn.module"
local Conv2d = require("scorch.nn.conv").Conv2d
local GroupNorm = require("scorch.nn.norm").GroupNorm
local util = require "scorch.util"

local M = {}

-- Upsample{scale=2, mode="nearest"|"bilinear"} or Upsample(2)
local Upsample = Module:extend("Upsample")
M.Upsample = Upsample
function Upsample:init(opts)
  if type(opts) == "number" then opts = { scale = opts } end
  opts = util.check_options(opts, { "scale", "mode" }, "scorch.nn.Upsample", 4)
  self.opts = { scale = opts.scale or 2, mode = opts.mode or "nearest" }
end
function Upsample:forward(x) return sc.upsample(x, self.opts) end
function Upsample:extra_repr() return ("scale=%d, mode=%s"):format(self.opts.scale, self.opts.mode) end

-- AvgPool2d(kernel [, {stride=kernel, padding=0}])
local AvgPool2d = Module:extend("AvgPool2d")
M.AvgPool2d = AvgPool2d
function AvgPool2d:init(k, opts)
  self.k, self.opts = k, util.check_options(opts, { "stride", "padding" }, "scorch.nn.AvgPool2d", 4)
end
function AvgPool2d:forward(x) return sc.avg_pool2d(x, self.k, self.opts) end
function AvgPool2d:extra_repr() return ("kernel=%s"):format(tostring(self.k)) end

-- Attention2d(channels [, {heads=1, groups=8}]): multi-head self-attention
-- between the H*W positions of a feature map, with a residual connection,
-- as in the DDPM U-Net (Ho et al. 2020, after Vaswani et al. 2017).
local Attention2d = Module:extend("Attention2d")
M.Attention2d = Attention2d
function Attention2d:init(c, opts)
  opts = util.check_options(opts, { "heads", "groups", "dtype", "generator" }, "scorch.nn.Attention2d", 4)
  self.heads = opts.heads or 1
  if c % self.heads ~= 0 then
    error(("scorch.nn.Attention2d: %d channels are not divisible by %d heads"):format(c, self.heads), 3)
  end
  local groups = opts.groups or math.min(8, c)
  while c % groups ~= 0 do groups = groups - 1 end
  local co = { dtype = opts.dtype, generator = opts.generator }
  self.norm = GroupNorm(groups, c, { dtype = opts.dtype })
  self.qkv = Conv2d(c, 3 * c, 1, co)
  self.proj = Conv2d(c, c, 1, co)
end
function Attention2d:forward(x)
  local N, C, H, W = table.unpack(x:shape())
  local h, d = self.heads, C // self.heads
  local qkv = self.qkv(self.norm(x)):reshape(N, 3, h, d, H * W)
  local q = qkv:select(2, 1):transpose(3, 4) -- [N, h, HW, d]
  local k = qkv:select(2, 2):transpose(3, 4)
  local v = qkv:select(2, 3):transpose(3, 4)
  local a = sc.attention(q, k, v)              -- [N, h, HW, d]
  return x + self.proj(a:transpose(3, 4):reshape(N, C, H, W))
end

return M
