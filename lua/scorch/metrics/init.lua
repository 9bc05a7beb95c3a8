-- sc.metrics: how good samples and models are.  Toy-data statistics live in
-- toy.lua, class mixes of images in classes.lua; FID and precision/recall
-- join as files of their own.
local M = {}

local function merge(mod)
  for k, v in pairs(mod) do
    if M[k] ~= nil then error("scorch.metrics: duplicate name " .. k) end
    M[k] = v
  end
end

merge(require "scorch.metrics.toy")
merge(require "scorch.metrics.classes")

return M
