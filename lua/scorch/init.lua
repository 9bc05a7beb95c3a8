-- scorch: tensors, autograd and generative models for Lua 5.4.
--
-- The C module scorch.core holds tensors, kernels and autograd; this file
-- assembles the public table from it and the Lua modules beside it.  Loading
-- it defines no globals.
local core = require "scorch.core"

local sc = {}
for k, v in pairs(core) do sc[k] = v end
sc._VERSION = "scorch 0.1.0"

-- Submodules require "scorch" themselves; publish the table first.
package.loaded["scorch"] = sc

require "scorch.printing"
sc.autograd = require "scorch.autograd"
sc.gradcheck = sc.autograd.gradcheck
-- conv2d, group_norm, softmax, attention, ... (compositions of core ops)
sc.functional = require "scorch.functional"
for k, v in pairs(sc.functional) do
  if sc[k] == nil then sc[k] = v end
end

-- The rest are loaded on first use, so `require "scorch"` stays fast.
local lazy = {
  nn = "scorch.nn", optim = "scorch.optim", data = "scorch.data",
  losses = "scorch.losses", schedules = "scorch.schedules",
  samplers = "scorch.samplers", models = "scorch.models",
  metrics = "scorch.metrics", viz = "scorch.viz", util = "scorch.util",
  image = "scorch.image", io = "scorch.io",
}
setmetatable(sc, {
  __index = function(t, k)
    local name = lazy[k]
    if not name then return nil end
    local m = require(name)
    rawset(t, k, m)
    return m
  end,
})

return sc
