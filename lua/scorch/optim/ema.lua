--- EMA(model_or_params [, {decay=0.999, warmup=true}]): an exponential
-- moving average of the parameters (never the buffers), as in Song et al.'s
-- score_sde code: the k-th update uses
--   d_k = min(decay, (1 + k)/(10 + k))   (warmup on; d_k = decay otherwise)
--   shadow ← d_k·shadow + (1 − d_k)·param.
-- Typical use: ema:update() after each opt:step(); for evaluation
-- ema:store(model); ema:copy_to(model); ...; ema:restore(model).
-- @module scorch.optim.ema
local sc = require "scorch"
local util = require "scorch.util"

local EMA = {}
EMA.__index = EMA

local function param_list(x, fn)
  if type(x) == "table" and type(x.parameters) == "function" then return x:parameters() end
  if sc.is_tensor(x) then return { x } end
  if type(x) ~= "table" then
    error(("scorch.optim.EMA.%s: expected a module or a list of tensors (got %s)"):format(fn, type(x)), 3)
  end
  return x
end

-- The target's parameters, checked against the shadow copies.
local function matching(self, target, fn)
  local ps = target == nil and self.params or param_list(target, fn)
  if #ps ~= #self.shadow then
    error(("scorch.optim.EMA.%s: %d parameters given, the average holds %d")
      :format(fn, #ps, #self.shadow), 3)
  end
  for i, p in ipairs(ps) do
    if p:numel() ~= self.shadow[i]:numel() then
      error(("scorch.optim.EMA.%s: parameter %d has %d elements, its average %d")
        :format(fn, i, p:numel(), self.shadow[i]:numel()), 3)
    end
  end
  return ps
end

function EMA.new(model_or_params, opts)
  opts = util.check_options(opts, { "decay", "warmup" }, "scorch.optim.EMA")
  local decay = opts.decay or 0.999
  if type(decay) ~= "number" or decay < 0 or decay > 1 then
    error("scorch.optim.EMA: decay must be in [0, 1]", 2)
  end
  local self = setmetatable({
    decay = decay, warmup = opts.warmup ~= false, num_updates = 0,
    params = param_list(model_or_params, "new"), shadow = {},
  }, EMA)
  for i, p in ipairs(self.params) do self.shadow[i] = p:detach():clone() end
  return self
end

setmetatable(EMA, { __call = function(_, ...) return EMA.new(...) end })

-- The decay the next update will use.
function EMA:get_decay()
  local n = self.num_updates + 1
  if self.warmup then return math.min(self.decay, (1 + n) / (10 + n)) end
  return self.decay
end

local function blend(shadow, ps, d)
  for i, s in ipairs(shadow) do
    s:mul_(d)
    s:add_(ps[i], 1 - d)
  end
end

-- update([model_or_params]): one averaging step; returns the decay used.
function EMA:update(target)
  local d = self:get_decay()
  self.num_updates = self.num_updates + 1
  sc.no_grad(blend, self.shadow, matching(self, target, "update"), d)
  return d
end

local function copy_into(dst, src)
  for i, t in ipairs(dst) do t:copy_(src[i]) end
end

-- Writes the averages into the parameters (of `target`, default the ones
-- the EMA was made with).
function EMA:copy_to(target)
  sc.no_grad(copy_into, matching(self, target, "copy_to"), self.shadow)
end

-- Saves the current parameters, to be put back by restore().
function EMA:store(target)
  local ps = matching(self, target, "store")
  self.stored = {}
  for i, p in ipairs(ps) do self.stored[i] = p:detach():clone() end
end

--- Puts back the weights saved by `store` (after evaluating with the average).
-- @param target module or parameter list (the one given to store)
-- @usage ema:store(net); ema:copy_to(net); evaluate(net); ema:restore(net)
function EMA:restore(target)
  if not self.stored then error("scorch.optim.EMA.restore: nothing stored", 2) end
  sc.no_grad(copy_into, matching(self, target, "restore"), self.stored)
  self.stored = nil
end

--- Calls fn with the averages in the parameters of `target`, then puts the
-- trained weights back, also when fn raises (the error is raised again).
-- @param target module or parameter list (default the EMA's own)
-- @param fn function called with no arguments
-- @return what fn returns
-- @usage local x = ema:with_average(G, function() return sc.no_grad(G, z) end)
function EMA:with_average(target, fn)
  self:store(target)
  self:copy_to(target)
  local res = table.pack(pcall(fn))
  self:restore(target)
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

--- The average's state, for a checkpoint.
-- @return table {decay =, warmup =, num_updates =, shadow = {tensors}}
-- @usage sc.save(path, ema:state_dict().shadow)
function EMA:state_dict()
  local shadow = {}
  for i, s in ipairs(self.shadow) do shadow[i] = s:clone() end
  return { decay = self.decay, warmup = self.warmup, num_updates = self.num_updates, shadow = shadow }
end

--- Restores the state saved by state_dict.
-- @param sd table from state_dict
-- @usage ema:load_state_dict(saved)
function EMA:load_state_dict(sd)
  if type(sd) ~= "table" or type(sd.shadow) ~= "table" or #sd.shadow ~= #self.shadow then
    error(("scorch.optim.EMA.load_state_dict: expected %d shadow tensors"):format(#self.shadow), 2)
  end
  for i, s in ipairs(sd.shadow) do
    if s:numel() ~= self.shadow[i]:numel() then
      error(("scorch.optim.EMA.load_state_dict: shadow %d has %d elements, expected %d")
        :format(i, s:numel(), self.shadow[i]:numel()), 2)
    end
  end
  for i, s in ipairs(sd.shadow) do
    self.shadow[i] = s:detach():to(self.params[i]:dtype()):reshape(self.params[i]:shape()):clone()
  end
  self.decay, self.warmup, self.num_updates = sd.decay, sd.warmup ~= false, sd.num_updates
end

return EMA
