-- sc.samplers: sampling loops over a schedule calling a model.  Langevin
-- samplers live in langevin.lua; DDPM, DDIM, SDE solvers and EDM's Heun
-- sampler join as files of their own, merged here.
local M = {}

local function merge(mod)
  for k, v in pairs(mod) do
    if M[k] ~= nil then error("scorch.samplers: duplicate name " .. k) end
    M[k] = v
  end
end

merge(require "scorch.samplers.langevin")
merge(require "scorch.samplers.diffusion")

return M
