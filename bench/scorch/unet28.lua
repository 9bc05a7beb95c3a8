-- The W3 network (../shared/WORKLOADS.md), shared by bench/scorch/workloads.lua
-- and bench/dist/w3_dist.lua: conv3x3(1→32) + Linear(1, 32)(log σ), GroupNorm
-- and SiLU, a stride-2 conv, a 64-channel conv, nearest upsampling, the skip
-- concatenation (96 channels) and two convs back to one channel.
--   local UNet28 = dofile(dir .. "unet28.lua"); local m = UNet28()
local sc = require "scorch"

return function()
  local nn = sc.nn
  local m = {
    conv0 = nn.Conv2d(1, 32, 3, { stride = 1, padding = 1 }),
    emb = nn.Linear(1, 32),
    gn0 = nn.GroupNorm(8, 32),
    conv1 = nn.Conv2d(32, 64, 3, { stride = 2, padding = 1 }),
    gn1 = nn.GroupNorm(8, 64),
    conv2 = nn.Conv2d(64, 64, 3, { stride = 1, padding = 1 }),
    gn2 = nn.GroupNorm(8, 64),
    conv3 = nn.Conv2d(96, 32, 3, { stride = 1, padding = 1 }),
    gn3 = nn.GroupNorm(8, 32),
    conv4 = nn.Conv2d(32, 1, 3, { stride = 1, padding = 1 }),
  }
  local order = { "conv0", "emb", "gn0", "conv1", "gn1", "conv2", "gn2", "conv3", "gn3", "conv4" }

  function m.parameters()
    local ps = {}
    for _, name in ipairs(order) do
      for _, p in ipairs(m[name]:parameters()) do ps[#ps + 1] = p end
    end
    return ps
  end

  function m.forward(x, ls)
    local B = x:size(1)
    local h = m.conv0(x) + m.emb(ls):view(B, 32, 1, 1)
    local h1 = m.gn0:forward_silu(h) -- silu(gn0(h)) as one op (sc.group_norm_silu)
    h = m.gn1:forward_silu(m.conv1(h1))
    h = m.gn2:forward_silu(m.conv2(h))
    h = sc.core.upsample_nearest(h, 2)
    h = sc.cat({ h, h1 }, 2)
    h = m.gn3:forward_silu(m.conv3(h))
    return m.conv4(h)
  end

  return m
end
