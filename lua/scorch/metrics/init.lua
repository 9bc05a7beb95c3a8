--- sc.metrics: how good samples and models are.  Toy-data statistics live in
-- toy.lua, class mixes of images in classes.lua, Fréchet distances and
-- streaming statistics in fid.lua, KID and precision/recall in prdc.lua,
-- feature extractors, reference statistics and the image report in
-- features.lua, the agreement of conditional samples with their requested
-- classes in agreement.lua.
-- @module scorch.metrics
local M = {}

local function merge(mod) require("scorch.util").merge_module(M, mod, "scorch.metrics") end

merge(require "scorch.metrics.toy")
merge(require "scorch.metrics.classes")
merge(require "scorch.metrics.fid")
merge(require "scorch.metrics.prdc")
merge(require "scorch.metrics.features")
merge(require "scorch.metrics.report")
merge(require "scorch.metrics.agreement")

return M
