--- RealNVP: a normalizing flow of affine couplings with a standard-normal
-- base, log p(x) = log N(f(x); 0, I) + log|det ∂f/∂x| (Dinh, Sohl-Dickstein
-- & Bengio 2017).  Vectors use half/half masks that alternate; images use
-- the multi-scale architecture: per scale 3 checkerboard couplings, a
-- squeeze, 3 channel-wise couplings, then half of the channels leave as
-- latents; the last scale has 4 checkerboard couplings.  Log-scales are
-- bounded by b·tanh(h/b); normalisation is ActNorm with data-dependent
-- initialisation (Glow), not batch statistics, so a flow is the same
-- function in training and evaluation.
-- @classmod scorch.models.RealNVP
local sc = require "scorch"
local nn = sc.nn
local util = require "scorch.util"
local flows = require "scorch.flows"

local RealNVP = nn.Module:extend("RealNVP")
local NAME = "scorch.models.RealNVP"
local shape_str = util.shape_str

local function positive_int(v, name)
  if math.type(v) ~= "integer" or v < 1 then
    error(("%s: option %s must be a positive integer (got %s)"):format(NAME, name, tostring(v)), 4)
  end
end

--- RealNVP{dim=2, couplings=8, ...} for vectors or RealNVP{shape={C, H, W}, scales=2, ...} for images.
-- @param opts table: dim (D, even; vectors) or shape ({C, H, W}; images, H and W divisible by
--   2^(scales−1)); couplings (8, vectors), hidden ({128, 128, 128} for vectors; 64 channels for images),
--   act ("silu", vectors), scales (2, images), norm ("actnorm" or "none"; default "actnorm"),
--   log_scale_bound (1), dtype ("float32"), generator
-- @return the flow: forward, inverse, log_prob, sample
-- @usage local flow = sc.models.RealNVP{dim = 2, couplings = 8}
function RealNVP:init(opts)
  opts = util.check_options(opts, { "dim", "shape", "couplings", "hidden", "act", "scales", "norm",
    "log_scale_bound", "dtype", "generator" }, NAME, 4)
  local norm = opts.norm or "actnorm"
  if norm ~= "actnorm" and norm ~= "none" then
    error(("%s: option norm must be \"actnorm\" or \"none\" (got %s)"):format(NAME, tostring(norm)), 3)
  end
  self.dtype = opts.dtype or "float32"
  local common = { log_scale_bound = opts.log_scale_bound, dtype = opts.dtype, generator = opts.generator }
  self.layers = nn.ModuleList()
  if opts.shape ~= nil then
    self:build_image(opts, norm, common)
  else
    self:build_vector(opts, norm, common)
  end
end

--- Builds the coupling layers for vector data (called by init; build_image for images).
function RealNVP:build_vector(opts, norm, common)
  local dim = opts.dim or 2
  if math.type(dim) ~= "integer" or dim < 2 or dim % 2 ~= 0 then
    error(("%s: option dim must be an even integer >= 2 for half/half masks (got %s)")
      :format(NAME, tostring(dim)), 4)
  end
  local k = opts.couplings or 8
  positive_int(k, "couplings")
  self.dim, self.kind = dim, "vector"
  for i = 1, k do
    if norm == "actnorm" then self.layers:append(flows.ActNorm(dim, { dtype = opts.dtype })) end
    self.layers:append(flows.AffineCoupling(dim, { parity = (i - 1) % 2, hidden = opts.hidden,
      act = opts.act, log_scale_bound = common.log_scale_bound, dtype = opts.dtype,
      generator = opts.generator }))
  end
end

-- The multi-scale plan: a list of steps {op = "layer"|"squeeze"|"split"}.
function RealNVP:build_image(opts, norm, common)
  local shape = opts.shape
  if type(shape) ~= "table" or #shape ~= 3 then
    error(("%s: option shape must be {C, H, W} (got %s)"):format(NAME, type(shape)), 4)
  end
  for i = 1, 3 do positive_int(shape[i], "shape[" .. i .. "]") end
  local scales = opts.scales or 2
  positive_int(scales, "scales")
  local c, h, w = shape[1], shape[2], shape[3]
  local f = 1 << (scales - 1)
  if h % f ~= 0 or w % f ~= 0 or (scales > 1 and (h // f < 2 or w // f < 2)) then
    error(("%s: image side %dx%d must be divisible by 2^(scales-1) = %d with at least 2 pixels left")
      :format(NAME, h, w, f), 4)
  end
  self.kind, self.shape, self.dim = "image", { c, h, w }, c * h * w
  local plan = {}
  local function coupling(mask, parity)
    if norm == "actnorm" then
      self.layers:append(flows.ActNorm(c, { image = true, dtype = opts.dtype }))
      plan[#plan + 1] = { op = "layer", index = #self.layers }
    end
    self.layers:append(flows.ImageCoupling(c, h, w, { mask = mask, parity = parity, hidden = opts.hidden,
      log_scale_bound = common.log_scale_bound, dtype = opts.dtype, generator = opts.generator }))
    plan[#plan + 1] = { op = "layer", index = #self.layers }
  end
  for s = 1, scales do
    if s == scales then
      for i = 1, 4 do coupling("checkerboard", (i - 1) % 2) end
    else
      for i = 1, 3 do coupling("checkerboard", (i - 1) % 2) end
      plan[#plan + 1] = { op = "squeeze" }
      c, h, w = c * 4, h // 2, w // 2
      for i = 1, 3 do coupling("channel", (i - 1) % 2) end
      plan[#plan + 1] = { op = "split", shape = { c // 2, h, w } }
      c = c // 2
    end
  end
  plan[#plan + 1] = { op = "final", shape = { c, h, w } }
  self.plan = plan
end

-- x [N, D] or [N, C, H, W] as the flow expects it, with a clear error otherwise.
function RealNVP:check_x(x, fn, arg)
  local full = NAME .. "." .. fn
  flows.check_input(x, nil, full, arg)
  local ok
  if self.kind == "vector" then
    ok = x:dim() == 2 and x:size(2) == self.dim
  else
    local s = x:shape()
    ok = x:dim() == 4 and s[2] == self.shape[1] and s[3] == self.shape[2] and s[4] == self.shape[3]
  end
  if not ok then
    local want = self.kind == "vector" and ("[N, %d]"):format(self.dim)
      or ("[N, %d, %d, %d]"):format(self.shape[1], self.shape[2], self.shape[3])
    error(("%s: argument %s must be %s (got %s)"):format(full, arg, want, shape_str(x)), 3)
  end
end

--- Maps data to latents: z = f(x) and log|det ∂f/∂x|.
-- @param x tensor [N, D] (vectors) or [N, C, H, W] (images), finite
-- @return z tensor [N, D] (images: the latents of every scale, flattened and concatenated),
--   logdet tensor [N]
-- @usage local z, logdet = flow:forward(x)
function RealNVP:forward(x)
  self:check_x(x, "forward", "x")
  local n = x:size(1)
  local logdet = sc.zeros({ n }, { dtype = x:dtype() })
  if self.kind == "vector" then
    local h = x
    for _, layer in ipairs(self.layers:children()) do
      local ld
      h, ld = layer(h)
      logdet = logdet + ld
    end
    return h, logdet
  end
  local h, zs = x, {}
  for _, step in ipairs(self.plan) do
    if step.op == "layer" then
      local ld
      h, ld = self.layers[step.index](h)
      logdet = logdet + ld
    elseif step.op == "squeeze" then
      h = flows.squeeze(h)
    elseif step.op == "split" then
      local c = step.shape[1]
      zs[#zs + 1] = h:narrow(2, 1, c):reshape(n, -1)
      h = h:narrow(2, c + 1, c)
    else
      zs[#zs + 1] = h:reshape(n, -1)
    end
  end
  return sc.cat(zs, 2), logdet
end

--- Maps latents back to data: x = f⁻¹(z).
-- @param z tensor [N, D] (D = C·H·W for images)
-- @return x tensor [N, D] or [N, C, H, W]
-- @usage local x = flow:inverse(z)
function RealNVP:inverse(z)
  local full = NAME .. ".inverse"
  flows.check_input(z, nil, full, "z")
  if z:dim() ~= 2 or z:size(2) ~= self.dim then
    error(("%s: argument z must be [N, %d] (got %s)"):format(full, self.dim, shape_str(z)), 2)
  end
  local n = z:size(1)
  if self.kind == "vector" then
    local layers = self.layers:children()
    local h = z
    for i = #layers, 1, -1 do h = layers[i]:inverse(h) end
    return h
  end
  -- cut z into the pieces the forward pass concatenated
  local pieces, off = {}, 1
  for _, step in ipairs(self.plan) do
    if step.op == "split" or step.op == "final" then
      local s = step.shape
      local len = s[1] * s[2] * s[3]
      pieces[#pieces + 1] = z:narrow(2, off, len):reshape(n, s[1], s[2], s[3])
      off = off + len
    end
  end
  local k = #pieces
  local h = pieces[k]
  for i = #self.plan, 1, -1 do
    local step = self.plan[i]
    if step.op == "layer" then
      h = self.layers[step.index]:inverse(h)
    elseif step.op == "squeeze" then
      h = flows.unsqueeze(h)
    elseif step.op == "split" then
      k = k - 1
      h = sc.cat({ pieces[k], h }, 2)
    end
  end
  return h
end

--- Exact log-density log p(x) = log N(f(x); 0, I) + log|det ∂f/∂x|, in nats.
-- @param x tensor [N, D] or [N, C, H, W]
-- @return tensor [N]
-- @usage local nll = -flow:log_prob(x):mean()
function RealNVP:log_prob(x)
  local z, logdet = self:forward(x)
  return flows.standard_normal_log_prob(z) + logdet
end

--- Draws n samples: z ~ N(0, I), x = f⁻¹(z), without recording gradients.
-- @param n integer
-- @param opts table: generator, temperature (1: z ~ N(0, T² I))
-- @return x tensor [n, D] or [n, C, H, W]
-- @usage local x = flow:sample(1000, {generator = sc.Generator(0)})
function RealNVP:sample(n, opts)
  opts = util.check_options(opts, { "generator", "temperature" }, NAME .. ".sample")
  if math.type(n) ~= "integer" or n < 1 then
    error(("%s.sample: argument n must be a positive integer (got %s)"):format(NAME, tostring(n)), 2)
  end
  return sc.no_grad(function()
    local z = sc.randn({ n, self.dim }, { generator = opts.generator, dtype = self.dtype })
    if opts.temperature then z = z * opts.temperature end
    return self:inverse(z)
  end)
end

function RealNVP:extra_repr()
  if self.kind == "vector" then return ("dim=%d, layers=%d"):format(self.dim, #self.layers) end
  return ("shape={%d, %d, %d}, layers=%d"):format(self.shape[1], self.shape[2], self.shape[3], #self.layers)
end

return RealNVP
