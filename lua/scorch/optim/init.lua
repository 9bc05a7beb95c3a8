--- scorch.optim: optimisers, gradient clipping, learning-rate schedules and
-- parameter averaging.
--
--   local opt = sc.optim.Adam(model:parameters(), { lr = 1e-3 })
--   opt:zero_grad(); loss:backward(); opt:step()
-- @module scorch.optim
local adam = require "scorch.optim.adam"
local clip = require "scorch.optim.clip"

local optim = {
  Optimizer = require "scorch.optim.optimizer",
  SGD = require "scorch.optim.sgd",
  Adam = adam.Adam,
  AdamW = adam.AdamW,
  RMSprop = require "scorch.optim.rmsprop",
  lr_scheduler = require "scorch.optim.lr_scheduler",
  EMA = require "scorch.optim.ema",
  clip_grad_norm = clip.clip_grad_norm,
  clip_grad_norm_ = clip.clip_grad_norm,
  clip_grad_value = clip.clip_grad_value,
  clip_grad_value_ = clip.clip_grad_value,
}

return optim
