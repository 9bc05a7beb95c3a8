--- A small U-Net for image diffusion and score models (Ronneberger et al.
-- 2015, as adapted by Ho et al. 2020 / Song et al. 2021): residual blocks
-- with GroupNorm and SiLU, the noise embedding added inside every block,
-- self-attention at chosen resolutions, skip connections from each encoder
-- stage to the decoder, and configurable channel multipliers.
-- @module scorch.models.unet
local sc = require "scorch"
local nn = sc.nn
local emb = require "scorch.models.embeddings"
local conditioning = require "scorch.models.conditioning"

local M = {}

-- Largest divisor of c that is at most 8: the GroupNorm group count.
local function groups_for(c)
  local g = math.min(8, c)
  while c % g ~= 0 do g = g - 1 end
  return g
end
M.groups_for = groups_for

-- ResBlock(cin, cout, edim): h = conv(silu(gn(x))) + W e; h = conv(silu(gn(h)));
-- out = h + skip(x), skip a 1x1 conv when the channel count changes.
local ResBlock = nn.Module:extend("ResBlock")
M.ResBlock = ResBlock

function ResBlock:init(cin, cout, edim, opts)
  local o = { dtype = opts.dtype, generator = opts.generator }
  self.norm1 = nn.GroupNorm(groups_for(cin), cin, { dtype = o.dtype })
  self.conv1 = nn.Conv2d(cin, cout, 3, { padding = 1, dtype = o.dtype, generator = o.generator })
  self.emb = nn.Linear(edim, cout, o)
  self.norm2 = nn.GroupNorm(groups_for(cout), cout, { dtype = o.dtype })
  if (opts.dropout or 0) > 0 then self.drop = nn.Dropout(opts.dropout) end
  self.conv2 = nn.Conv2d(cout, cout, 3, { padding = 1, dtype = o.dtype, generator = o.generator })
  if cin ~= cout then
    self.skip = nn.Conv2d(cin, cout, 1, { dtype = o.dtype, generator = o.generator })
  end
end

-- x [N, cin, H, W], e [N or 1, edim] (already through SiLU).
function ResBlock:forward(x, e)
  local h = self.conv1(self.norm1:forward_silu(x)) -- silu(norm1(x)), one op
  local n, c = e:size(1), h:size(2)
  h = h + self.emb(e):view(n, c, 1, 1)
  h = self.norm2:forward_silu(h)
  if self.drop then h = self.drop(h) end
  h = self.conv2(h)
  return h + (self.skip and self.skip(x) or x)
end

local function check_opts(opts)
  local function posint(name, v)
    if math.type(v) ~= "integer" or v < 1 then
      error(("scorch.models.UNet: %s must be a positive integer"):format(name), 4)
    end
  end
  posint("in_channels", opts.in_channels or 1)
  posint("channels", opts.channels or 32)
  posint("blocks", opts.blocks or 1)
  local mults = opts.mults or { 1, 2 }
  if type(mults) ~= "table" or #mults == 0 then
    error("scorch.models.UNet: mults must be a non-empty list", 4)
  end
  for i, m in ipairs(mults) do posint("mults[" .. i .. "]", m) end
  local out = opts.out or "eps"
  if not ({ eps = true, score = true, x0 = true, v = true })[out] then
    error(("scorch.models.UNet: out must be eps, score, x0 or v (got %s)"):format(tostring(out)), 4)
  end
  local cond = opts.cond or "t"
  if cond ~= "t" and cond ~= "sigma" then
    error(("scorch.models.UNet: cond must be \"t\" or \"sigma\" (got %s)"):format(tostring(cond)), 4)
  end
end

-- UNet{in_channels=1, channels=32, mults={1,2}, attention={false,true},
--      blocks=1, emb="sinusoidal"|"fourier", out="eps"|"score"|"x0"|"v",
--      cond="t"|"sigma", cond_scale=, heads=1, mid_attention=true,
--      dropout=0, fourier_scale=16, classes=, p_uncond=0.1, dtype=, generator=}
-- net(x, c): x [N, C, H, W] with H and W divisible by 2^(#mults − 1); c the
-- conditioning, a number or a tensor of N values (any shape).  With
-- cond = "t", c (a timestep or a time) is embedded as c · cond_scale;
-- with cond = "sigma", c is a noise level σ and ln σ · cond_scale is
-- embedded (cond_scale defaults to 62.5 for sinusoidal features, i.e. 250
-- times EDM's c_noise = ¼ ln σ, and 1 otherwise).  out names what the
-- output means for losses and samplers (net.prediction); out = "score"
-- with cond = "sigma" returns f(x, σ)/σ (Song & Ermon 2020, NCSNv2 §3.3).
-- classes = K makes it class-conditional, net(x, c, y): a learned class
-- embedding is added to the noise embedding before its last SiLU, with a
-- null class ∅ (label 0) when p_uncond > 0 (scorch.models.conditioning).
local UNet = nn.Module:extend("UNet")
M.UNet = UNet

function UNet:init(opts)
  opts = require("scorch.util").check_options(opts, {
      "in_channels", "channels", "mults", "attention", "blocks", "emb", "out", "cond", "cond_scale", "heads",
      "mid_attention", "dropout", "fourier_scale", "classes", "p_uncond", "dtype", "generator" },
      "scorch.models.UNet", 4)
  check_opts(opts)
  local cin, ch = opts.in_channels or 1, opts.channels or 32
  local mults, attn = opts.mults or { 1, 2 }, opts.attention or { false, true }
  local nb = opts.blocks or 1
  local o = { dtype = opts.dtype, generator = opts.generator, dropout = opts.dropout }
  local co = { padding = 1, dtype = opts.dtype, generator = opts.generator }
  self.in_channels, self.channels, self.mults, self.n_blocks = cin, ch, mults, nb
  self.prediction, self.cond = opts.out or "eps", opts.cond or "t"
  self.emb_kind = opts.emb or "sinusoidal"
  self.cond_scale = opts.cond_scale
    or ((self.cond == "sigma" and self.emb_kind == "sinusoidal") and 62.5 or 1)

  -- noise embedding: features → Linear → SiLU → Linear (then SiLU in blocks)
  local edim = 4 * ch
  self.embed = emb.make(self.emb_kind, ch, { dtype = opts.dtype, generator = opts.generator,
                                              scale = opts.fourier_scale })
  self.emb1 = nn.Linear(ch, edim, o)
  self.emb2 = nn.Linear(edim, edim, o)

  self.input = nn.Conv2d(cin, ch, 3, co)
  -- encoder: blocks per level, then a stride-2 conv (not after the last)
  self.down = nn.ModuleList {}
  local skips, c = { ch }, ch
  for i, m in ipairs(mults) do
    for _ = 1, nb do
      local blk = nn.ModuleList { ResBlock(c, ch * m, edim, o) }
      c = ch * m
      if attn[i] then blk:append(nn.Attention2d(c, { heads = opts.heads or 1, dtype = opts.dtype,
                                                     generator = opts.generator })) end
      self.down:append(blk)
      skips[#skips + 1] = c
    end
    if i < #mults then
      self.down:append(nn.ModuleList { nn.Conv2d(c, c, 3, { stride = 2, padding = 1,
        dtype = opts.dtype, generator = opts.generator }) })
      skips[#skips + 1] = c
    end
  end
  -- middle
  self.mid1 = ResBlock(c, c, edim, o)
  if opts.mid_attention ~= false then
    self.mid_attn = nn.Attention2d(c, { heads = opts.heads or 1, dtype = opts.dtype,
                                       generator = opts.generator })
  end
  self.mid2 = ResBlock(c, c, edim, o)
  -- decoder: blocks + 1 per level, each taking one skip; then upsample
  self.up = nn.ModuleList {}
  for i = #mults, 1, -1 do
    for _ = 1, nb + 1 do
      local s = table.remove(skips)
      local blk = nn.ModuleList { ResBlock(c + s, ch * mults[i], edim, o) }
      c = ch * mults[i]
      if attn[i] then blk:append(nn.Attention2d(c, { heads = opts.heads or 1, dtype = opts.dtype,
                                                     generator = opts.generator })) end
      self.up:append(blk)
    end
    if i > 1 then
      self.up:append(nn.ModuleList { nn.Upsample { scale = 2 }, nn.Conv2d(c, c, 3, co) })
    end
  end
  self.out_norm = nn.GroupNorm(groups_for(c), c, { dtype = o.dtype })
  self.output = nn.Conv2d(c, cin, 3, co)
  conditioning.setup(self, opts, edim, "scorch.models.UNet")
end

-- [N or 1, 4·channels] embedding of the conditioning (plus the class
-- embedding of labels y for a class-conditional net), through SiLU.
function UNet:embedding(c, n, dtype, y)
  c = emb.column(c, n, dtype, "UNet")
  local a = self.cond == "sigma" and c:log() or c
  local e = self.emb2(self.emb1(self.embed(a * self.cond_scale)):silu())
  local ce = conditioning.embed(self, y, n, "scorch.models.UNet")
  if ce then e = e + ce end
  return e:silu(), c
end

-- Applies one stage: a {ResBlock [, Attention2d]} or a resampler list.
local function stage(blk, h, e)
  local first = blk[1]
  if getmetatable(first) == ResBlock then
    h = first(h, e)
    if blk[2] then h = blk[2](h) end
    return h, true
  end
  for i = 1, #blk do h = blk[i](h) end
  return h, false
end

function UNet:forward(x, c, y)
  if c == nil then error("scorch.models.UNet: call as net(x, c) with the conditioning c", 2) end
  if not sc.is_tensor(x) or x:dim() ~= 4 or x:size(2) ~= self.in_channels then
    error(("scorch.models.UNet: expected input [N, %d, H, W]"):format(self.in_channels), 2)
  end
  local f = 1 << (#self.mults - 1)
  if x:size(3) % f ~= 0 or x:size(4) % f ~= 0 then
    error(("scorch.models.UNet: height and width must be divisible by %d (got %dx%d)")
      :format(f, x:size(3), x:size(4)), 2)
  end
  local n = x:size(1)
  local e, col = self:embedding(c, n, x:dtype(), y)
  local h = self.input(x)
  local skips = { h }
  for i = 1, #self.down do
    h = stage(self.down[i], h, e)
    skips[#skips + 1] = h
  end
  h = self.mid1(h, e)
  if self.mid_attn then h = self.mid_attn(h) end
  h = self.mid2(h, e)
  for i = 1, #self.up do
    local blk = self.up[i]
    if getmetatable(blk[1]) == ResBlock then
      h = sc.cat({ h, table.remove(skips) }, 2)
    end
    h = stage(blk, h, e)
  end
  local out = self.output(self.out_norm:forward_silu(h))
  if self.prediction == "score" and self.cond == "sigma" then
    out = out / col:view(col:size(1), 1, 1, 1)
  end
  return out
end

function UNet:extra_repr()
  return ("in_channels=%d, channels=%d, mults={%s}, blocks=%d, emb=%s, out=%s, cond=%s%s")
    :format(self.in_channels, self.channels, table.concat(self.mults, ","), self.n_blocks,
      self.emb_kind, self.prediction, self.cond, conditioning.repr(self))
end

return M
