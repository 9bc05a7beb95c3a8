--- sc.data: toy distributions with exact scores, and batching.  Each file
-- adds its functions to this table (image data sets join the same way).
-- @module scorch.data
local M = {}

local function merge(mod) require("scorch.util").merge_module(M, mod, "scorch.data") end

merge(require "scorch.data.categorical")
merge(require "scorch.data.toy2d")
merge(require "scorch.data.loader")
merge(require "scorch.data.shapes")
merge(require "scorch.data.mnist")
merge(require "scorch.data.image_loader")

return M
