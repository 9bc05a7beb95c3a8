--- Conv2d and ConvTranspose2d modules over sc.conv2d / sc.conv_transpose2d.
--
-- Weights have PyTorch's layouts ([out, in/groups, kh, kw] and
-- [in, out/groups, kh, kw]) and default initialisation: kaiming_uniform with
-- a = √5, i.e. U(−1/√fan_in, 1/√fan_in), and the bias from the same bound.
-- @module scorch.nn.conv
local sc = require "scorch"
local Module = require "scorch.nn.module"
local init = require "scorch.nn.initialisers"
local util = require "scorch.util"

local M = {}

local function pair(v)
  if type(v) == "table" then return v[1], v[2] end
  return v, v
end

local function check_channels(fn, i, o, groups)
  for _, v in ipairs { i, o, groups } do
    if math.type(v) ~= "integer" or v < 1 then
      error(("scorch.nn.%s: channels and groups must be positive integers"):format(fn), 4)
    end
  end
  if i % groups ~= 0 or o % groups ~= 0 then
    error(("scorch.nn.%s: %d in and %d out channels are not divisible by %d groups")
      :format(fn, i, o, groups), 4)
  end
end

local function init_params(self, wshape, fan_in, nbias, opts)
  self.weight = init.parameter(wshape, opts.dtype)
  init.kaiming_uniform_(self.weight, { a = math.sqrt(5), generator = opts.generator })
  if opts.bias ~= false then
    local bound = 1 / math.sqrt(fan_in)
    self.bias = init.parameter({ nbias }, opts.dtype)
    init.uniform_(self.bias, -bound, bound, { generator = opts.generator })
  end
end

-- Conv2d(in, out, kernel [, {stride=1, padding=0, dilation=1, groups=1, bias=true}])
local Conv2d = Module:extend("Conv2d")
M.Conv2d = Conv2d

function Conv2d:init(i, o, k, opts)
  opts = util.check_options(opts, { "stride", "padding", "dilation", "groups", "bias", "dtype", "generator" },
    "scorch.nn.Conv2d", 4)
  self.groups = opts.groups or 1
  check_channels("Conv2d", i, o, self.groups)
  local kh, kw = pair(k)
  self.in_channels, self.out_channels, self.kernel = i, o, { kh, kw }
  self.opts = { stride = opts.stride or 1, padding = opts.padding or 0,
                dilation = opts.dilation or 1, groups = self.groups }
  init_params(self, { o, i // self.groups, kh, kw }, i // self.groups * kh * kw, o, opts)
end

function Conv2d:forward(x)
  return sc.conv2d(x, self.weight, self.bias, self.opts)
end

function Conv2d:extra_repr()
  return ("%d, %d, kernel=%dx%d, stride=%s, padding=%s"):format(self.in_channels,
    self.out_channels, self.kernel[1], self.kernel[2], tostring(self.opts.stride),
    tostring(self.opts.padding))
end

-- ConvTranspose2d(in, out, kernel [, {stride, padding, output_padding,
-- dilation, groups, bias}])
local ConvTranspose2d = Module:extend("ConvTranspose2d")
M.ConvTranspose2d = ConvTranspose2d

function ConvTranspose2d:init(i, o, k, opts)
  opts = util.check_options(opts, { "stride", "padding", "output_padding", "dilation", "groups", "bias", "dtype",
    "generator" }, "scorch.nn.ConvTranspose2d", 4)
  self.groups = opts.groups or 1
  check_channels("ConvTranspose2d", i, o, self.groups)
  local kh, kw = pair(k)
  self.in_channels, self.out_channels, self.kernel = i, o, { kh, kw }
  self.opts = { stride = opts.stride or 1, padding = opts.padding or 0,
                output_padding = opts.output_padding or 0,
                dilation = opts.dilation or 1, groups = self.groups }
  -- PyTorch computes fan_in from dim 2 of this weight: out/groups * kh * kw
  init_params(self, { i, o // self.groups, kh, kw }, o // self.groups * kh * kw, o, opts)
end

function ConvTranspose2d:forward(x)
  return sc.conv_transpose2d(x, self.weight, self.bias, self.opts)
end

function ConvTranspose2d:extra_repr()
  return ("%d, %d, kernel=%dx%d, stride=%s"):format(self.in_channels, self.out_channels,
    self.kernel[1], self.kernel[2], tostring(self.opts.stride))
end

return M
