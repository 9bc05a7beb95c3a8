--- Embeddings of a scalar noise level (a timestep t, a time in [0, 1], or
-- ln σ) as feature vectors that networks add to their hidden states.
-- @module scorch.models.embeddings
local sc = require "scorch"
local nn = sc.nn
local param = require "scorch.param"

local M = {}

-- Conditioning (the column of sc.param.level; also a number, or a tensor
-- with 1 or n elements) as an [n, 1] column of the given dtype, or [1, 1]
-- when the batch shares one level (a broadcast view): embedded once.
function M.column(c, n, dtype, who)
  if type(c) == "number" then return sc.full({ 1, 1 }, c, { dtype = dtype }) end
  if not sc.is_tensor(c) then
    error(("scorch.models.%s: the conditioning must be a number or a tensor"):format(who), 3)
  end
  if param.is_shared_level(c) then c = c:narrow(1, 1, 1) end
  local k = c:numel()
  if k ~= 1 and k ~= n then
    error(("scorch.models.%s: %d conditioning values for a batch of %d"):format(who, k, n), 3)
  end
  c = c:reshape(k, 1)
  if c:dtype() ~= dtype then c = dtype == "float64" and c:double() or c:float() end
  return c
end

local function check_dim(dim, who)
  if math.type(dim) ~= "integer" or dim < 2 or dim % 2 ~= 0 then
    error(("scorch.models.%s: dim must be an even integer >= 2"):format(who), 4)
  end
end

-- Vaswani et al. 2017, §3.5, as the timestep embedding of Ho et al. 2020:
-- [sin(c ω_k), cos(c ω_k)], ω_k = period^(−k/(dim/2)), k = 0 … dim/2 − 1.
-- SinusoidalEmbedding(dim [, {max_period=10000, dtype=}]); e(c) → [n, dim]
local Sinusoidal = nn.Module:extend("SinusoidalEmbedding")
M.SinusoidalEmbedding = Sinusoidal

function Sinusoidal:init(dim, opts)
  opts = require("scorch.util").check_options(opts, {
      "max_period", "dtype", "generator" }, "scorch.models.embeddings.Sinusoidal", 4)
  check_dim(dim, "SinusoidalEmbedding")
  local half, period = dim // 2, opts.max_period or 10000
  local w = {}
  for k = 0, half - 1 do w[k + 1] = math.exp(-math.log(period) * k / half) end
  self.dim = dim
  self:register_buffer("freqs", sc.tensor({ w }, { dtype = opts.dtype or "float32" }))
end

function Sinusoidal:forward(c)
  local arg = c * self.freqs
  return sc.cat({ arg:sin(), arg:cos() }, 2)
end

function Sinusoidal:extra_repr() return ("dim=%d"):format(self.dim) end

-- Random Fourier features (Tancik et al. 2020; the Gaussian Fourier
-- projection of Song et al. 2021 for ln σ): [sin(2π c w_k), cos(2π c w_k)]
-- with fixed w_k ~ N(0, scale²).
-- FourierEmbedding(dim [, {scale=16, generator=, dtype=}]); e(c) → [n, dim]
local Fourier = nn.Module:extend("FourierEmbedding")
M.FourierEmbedding = Fourier

function Fourier:init(dim, opts)
  opts = require("scorch.util").check_options(opts, {
      "scale", "dtype", "generator" }, "scorch.models.embeddings.Fourier", 4)
  check_dim(dim, "FourierEmbedding")
  self.dim, self.scale = dim, opts.scale or 16
  local w = sc.randn({ 1, dim // 2 }, { generator = opts.generator, dtype = opts.dtype or "float32" })
  self:register_buffer("freqs", w * (2 * math.pi * self.scale))
end

Fourier.forward = Sinusoidal.forward

function Fourier:extra_repr() return ("dim=%d, scale=%g"):format(self.dim, self.scale) end

-- make("sinusoidal" | "fourier", dim, opts)
function M.make(kind, dim, opts)
  if kind == "sinusoidal" then return Sinusoidal(dim, opts) end
  if kind == "fourier" then return Fourier(dim, opts) end
  error(("scorch.models: unknown embedding '%s' (sinusoidal, fourier)"):format(tostring(kind)), 3)
end

return M
