--- scorch.nn: modules (Torch7's nn, PyTorch's torch.nn).
--
--   local nn = require("scorch").nn
--   local net = nn.Sequential{ nn.Linear(2, 64), nn.SiLU(), nn.Linear(64, 2) }
--   local y = net(x)
--
-- nn.init holds the initialisers; nn.Module:extend(name) makes new modules.
-- @module scorch.nn
local nn = {}

nn.Module = require "scorch.nn.module"
nn.init = require "scorch.nn.initialisers"
nn.Linear = require "scorch.nn.linear"

local containers = require "scorch.nn.container"
nn.Sequential = containers.Sequential
nn.ModuleList = containers.ModuleList

for name, cls in pairs(require "scorch.nn.activation") do nn[name] = cls end

nn.Dropout = require "scorch.nn.dropout"
nn.Embedding = require "scorch.nn.embedding"
nn.MLP = require "scorch.nn.mlp"

-- Layers that live in files of their own and load on first use, so a
-- missing one fails only when it is asked for.
local lazy = {
  Conv2d = { "scorch.nn.conv" }, ConvTranspose2d = { "scorch.nn.conv" },
  GroupNorm = { "scorch.nn.norm" }, LayerNorm = { "scorch.nn.norm" },
  Upsample = { "scorch.nn.spatial" }, AvgPool2d = { "scorch.nn.spatial" },
  Attention2d = { "scorch.nn.spatial" },
  from_torch_state_dict = { "scorch.nn.torch_names" }, to_torch_state_dict = { "scorch.nn.torch_names" },
}
setmetatable(nn, {
  __index = function(t, k)
    local spec = lazy[k]
    if not spec then return nil end
    local mod = require(spec[1])
    local v = type(mod) == "table" and mod[k] or mod
    rawset(t, k, v)
    return v
  end,
})

return nn
