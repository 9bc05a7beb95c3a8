--- A small noise-conditional score network for 28x28 images, in the spirit of
-- NCSN / NCSNv2 (Song & Ermon 2019, 2020) but sized for a CPU: one cheap
-- convolution at full resolution, residual blocks at 1/2 and 1/4 resolution,
-- and a decoder with skip connections back to full size.
--
-- Two NCSNv2 habits keep one network usable over noise levels spanning two
-- orders of magnitude: the input is scaled by c_in = 1/√(σ² + σ_d²) so it
-- stays near unit variance (Karras et al. 2022, Table 1), and the output is
-- divided by σ (Song & Ermon 2020, §3.3), so with λ(σ) = σ² the DSM target
-- of the raw output is −z at every level.
-- @module scorch.models.ncsn
local sc = require "scorch"
local nn = sc.nn
local emb = require "scorch.models.embeddings"
local unet = require "scorch.models.unet"
local cond = require "scorch.models.conditioning"

local ResBlock = unet.ResBlock

-- NCSN{in_channels=1, channels=16, blocks=1, sigma_data=0.5, precond="ncsn"|"edm",
--      classes=, p_uncond=0.1, generator=, dtype=}
-- precond "ncsn": the score is F/σ (the network predicts −z); "edm": the
-- score of the denoiser c_skip x + c_out F, whose F has a unit-variance
-- target at every σ (large σ: x₀/σ_d rather than −z).
-- net(x, σ): x [N, C, H, W] with H, W divisible by 4; σ a number or N values.
-- Returns the score estimate s(x, σ) of the same shape as x.
-- classes = K makes it class-conditional, net(x, σ, y): a learned class
-- embedding is added to the noise embedding before its last SiLU, with a
-- null class ∅ (label 0) when p_uncond > 0 (scorch.models.conditioning).
local NCSN = nn.Module:extend("NCSN")

function NCSN:init(opts)
  opts = require("scorch.util").check_options(opts, {
      "in_channels", "channels", "blocks", "sigma_data", "precond", "classes", "p_uncond", "dtype", "generator" },
      "scorch.models.NCSN", 4)
  local cin, ch = opts.in_channels or 1, opts.channels or 16
  local nb = opts.blocks or 1
  if math.type(cin) ~= "integer" or cin < 1 or math.type(ch) ~= "integer" or ch < 1
    or math.type(nb) ~= "integer" or nb < 1 then
    error("scorch.models.NCSN: in_channels, channels and blocks must be positive integers", 3)
  end
  local o = { dtype = opts.dtype, generator = opts.generator }
  local function conv(a, b, k, stride)
    return nn.Conv2d(a, b, k, { padding = k // 2, stride = stride, dtype = o.dtype, generator = o.generator })
  end
  self.in_channels, self.channels, self.n_blocks = cin, ch, nb
  self.sigma_data = opts.sigma_data or 0.5
  local pre = opts.precond or "ncsn"
  if pre ~= "ncsn" and pre ~= "edm" then
    error(("scorch.models.NCSN: precond must be \"ncsn\" or \"edm\" (got %s)"):format(tostring(pre)), 3)
  end
  self.precond = pre
  local edim = 4 * ch
  self.embed = emb.make("sinusoidal", ch, o)
  self.emb1 = nn.Linear(ch, edim, o)
  self.emb2 = nn.Linear(edim, edim, o)
  -- encoder: full → 1/2 (2ch) → 1/4 (4ch); the residual blocks live at the
  -- two coarse resolutions, where a convolution costs a quarter or less
  self.input = conv(cin, ch, 3)
  self.down1 = conv(ch, 2 * ch, 3, 2)
  self.enc1 = nn.ModuleList {}
  for _ = 1, nb do self.enc1:append(ResBlock(2 * ch, 2 * ch, edim, o)) end
  self.down2 = conv(2 * ch, 4 * ch, 3, 2)
  self.enc2 = nn.ModuleList {}
  for _ = 1, nb + 1 do self.enc2:append(ResBlock(4 * ch, 4 * ch, edim, o)) end
  -- decoder: project to the finer map's width, upsample, add the encoder's
  -- map (a sum rather than a concatenation halves the decoder's cost), mix
  self.up = nn.Upsample { scale = 2 }
  self.proj2 = conv(4 * ch, 2 * ch, 1)
  self.dec1 = nn.ModuleList {}
  for _ = 1, nb do self.dec1:append(ResBlock(2 * ch, 2 * ch, edim, o)) end
  self.proj1 = conv(2 * ch, ch, 1)
  self.dec0 = conv(ch, ch, 3)
  self.output = conv(ch, cin, 3)
  cond.setup(self, opts, edim, "scorch.models.NCSN")
end

function NCSN:forward(x, sigma, y)
  if sigma == nil then error("scorch.models.NCSN: call as net(x, sigma)", 2) end
  if not sc.is_tensor(x) or x:dim() ~= 4 or x:size(2) ~= self.in_channels
    or x:size(3) % 4 ~= 0 or x:size(4) % 4 ~= 0 then
    error(("scorch.models.NCSN: expected input [N, %d, H, W] with H and W divisible by 4"):format(
      self.in_channels), 2)
  end
  local n = x:size(1)
  local s = emb.column(sigma, n, x:dtype(), "NCSN")   -- [n or 1, 1]
  local col = s:view(s:size(1), 1, 1, 1)
  -- ln σ scaled as the U-Net does for σ conditioning (sinusoids need a spread)
  local e = self.emb2(self.emb1(self.embed(s:log() * 62.5)):silu())
  local ce = cond.embed(self, y, n, "scorch.models.NCSN")
  if ce then e = e + ce end
  e = e:silu()
  local c_in = (col:square() + self.sigma_data ^ 2):rsqrt()
  local h0 = self.input(x * c_in):silu()
  local h1 = self.down1(h0)
  for i = 1, #self.enc1 do h1 = self.enc1[i](h1, e) end
  local h2 = self.down2(h1:silu())
  for i = 1, #self.enc2 do h2 = self.enc2[i](h2, e) end
  local d1 = self.up(self.proj2(h2:silu())) + h1
  for i = 1, #self.dec1 do d1 = self.dec1[i](d1, e) end
  local d0 = self.dec0((self.up(self.proj1(d1:silu())) + h0):silu()):silu()
  local f = self.output(d0)
  if self.precond == "ncsn" then return f / col end
  -- edm: the denoiser D = c_skip x + c_out F with c_skip = σ_d²/(σ² + σ_d²) and
  -- c_out = σ σ_d/√(σ² + σ_d²) (Karras et al. 2022, Table 1), as the score
  -- (D − x)/σ² = −x/(σ² + σ_d²) + σ_d F/(σ √(σ² + σ_d²))
  local v = col:square() + self.sigma_data ^ 2
  return f * (c_in * self.sigma_data / col) - x / v
end

function NCSN:extra_repr()
  return ("in_channels=%d, channels=%d, blocks=%d%s"):format(self.in_channels, self.channels, self.n_blocks,
    cond.repr(self))
end

return NCSN
