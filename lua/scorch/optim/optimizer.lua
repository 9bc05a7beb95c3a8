--- The optimiser base: parameter groups, per-parameter state, zero_grad and
-- state dicts.  SGD, Adam and AdamW fill in `defaults` and `update`.
--
-- `opt.lr` reads the first group's learning rate and writes every group's,
-- so schedules and scripts can simply assign it.
-- @module scorch.optim.optimizer
local sc = require "scorch"
local util = require "scorch.util"

local Optimizer = {}

-- A class whose instances expose `lr` as a property of their groups.
function Optimizer.class(name, parent)
  local cls = { __name = name }
  cls.__index = function(self, k)
    if k == "lr" then
      local g = rawget(self, "param_groups")[1]
      return g and g.lr
    end
    return cls[k]
  end
  cls.__newindex = function(self, k, v)
    if k == "lr" then
      for _, g in ipairs(rawget(self, "param_groups")) do g.lr = v end
    else
      rawset(self, k, v)
    end
  end
  -- Class(...) constructs, through the class's own `new`
  setmetatable(cls, { __index = parent, __call = function(c, ...) return c.new(...) end })
  return cls
end

local function param_list(params, fn)
  if type(params) == "table" and type(params.parameters) == "function" then
    return params:parameters() -- a module
  end
  if sc.is_tensor(params) then return { params } end
  if type(params) ~= "table" then
    error(("scorch.optim.%s: expected a list of tensors, parameter groups or a module (got %s)")
      :format(fn, type(params)), 4)
  end
  return params
end

-- params: a list of tensors, a module, or a list of groups
-- {params = {...}, lr = ..., ...}; opts fill what a group leaves out, and
-- `defaults` what opts leave out.
function Optimizer.new(cls, params, opts, defaults)
  local fn = cls.__name
  local valid = {}
  for k in pairs(defaults) do valid[#valid + 1] = k end
  opts = util.check_options(opts, valid, "scorch.optim." .. fn, 4)
  local self = setmetatable({ param_groups = {}, state = {}, _kernel = {} }, cls)
  params = param_list(params, fn)
  local groups
  if type(params[1]) == "table" and not sc.is_tensor(params[1]) then
    groups = params
  else
    groups = { { params = params } }
  end
  local seen = {}
  local group_keys = { "params", table.unpack(valid) }
  for gi, g in ipairs(groups) do
    util.check_options(g, group_keys, ("scorch.optim.%s (group %d)"):format(fn, gi), 4)
    local group = { params = {} }
    for k, v in pairs(defaults) do group[k] = v end
    for k, v in pairs(opts) do group[k] = v end
    for k, v in pairs(g) do if k ~= "params" then group[k] = v end end
    for i, p in ipairs(param_list(g.params or {}, fn)) do
      if not sc.is_tensor(p) then
        error(("scorch.optim.%s: parameter %d of group %d is a %s, not a tensor")
          :format(fn, i, gi, type(p)), 3)
      end
      if not p:is_leaf() then
        error(("scorch.optim.%s: parameter %d of group %d is not a leaf tensor"):format(fn, i, gi), 3)
      end
      if not p:is_contiguous() then
        error(("scorch.optim.%s: parameter %d of group %d is not contiguous"):format(fn, i, gi), 3)
      end
      if seen[p] then
        error(("scorch.optim.%s: parameter %d of group %d appears twice"):format(fn, i, gi), 3)
      end
      seen[p] = true
      group.params[#group.params + 1] = p
    end
    self.param_groups[gi] = group
    cls.check_group(group, fn)
  end
  if #self.param_groups == 0 or #self.param_groups[1].params == 0 then
    error(("scorch.optim.%s: got an empty parameter list"):format(fn), 3)
  end
  return self
end

function Optimizer.check_group() end

local function number_in(group, key, lo, hi, fn)
  local v = group[key]
  if type(v) ~= "number" or v < lo or v > hi then
    error(("scorch.optim.%s: invalid %s %s"):format(fn, key, tostring(v)), 5)
  end
end
Optimizer.number_in = number_in

-- Sets every gradient to nil (PyTorch's set_to_none): the next backward
-- writes fresh gradients instead of adding to old ones.
function Optimizer:zero_grad()
  for _, g in ipairs(self.param_groups) do
    for _, p in ipairs(g.params) do p.grad = nil end
  end
end

-- step([closure]): closure (optional) re-evaluates the loss with gradients
-- on and returns it; step returns that loss.
function Optimizer:step(closure)
  local loss
  if closure then loss = closure() end
  for gi, group in ipairs(self.param_groups) do
    self:update(group, gi)
  end
  return loss
end

-- The per-group kernel options table, reused from step to step.
function Optimizer:kernel_opts(gi)
  local k = self._kernel[gi]
  if not k then
    k = {}
    self._kernel[gi] = k
  end
  return k
end

-- A contiguous gradient (the kernels need one), or nil.
function Optimizer.grad_of(p)
  local g = p.grad
  if g and not g:is_contiguous() then g = g:contiguous() end
  return g
end

-- ---- state dicts ---------------------------------------------------------------------

local function copy_value(v)
  if sc.is_tensor(v) then return v:detach():clone() end
  if type(v) == "table" then
    local t = {}
    for k, x in pairs(v) do t[k] = copy_value(x) end
    return t
  end
  return v
end

-- {state = {[i] = {...}}, param_groups = {{lr=, ..., params = {i, ...}}}}
-- with i the 1-based position of a parameter across all groups.  Tensors
-- are copies: the dict is a snapshot.
function Optimizer:state_dict()
  local sd, idx = { state = {}, param_groups = {} }, 0
  for gi, group in ipairs(self.param_groups) do
    local g = { params = {} }
    for k, v in pairs(group) do if k ~= "params" then g[k] = copy_value(v) end end
    for _, p in ipairs(group.params) do
      idx = idx + 1
      g.params[#g.params + 1] = idx
      if self.state[p] then sd.state[idx] = copy_value(self.state[p]) end
    end
    sd.param_groups[gi] = g
  end
  return sd
end

function Optimizer:load_state_dict(sd)
  local fn = self.__name .. ".load_state_dict"
  if type(sd) ~= "table" or type(sd.param_groups) ~= "table" then
    error(("scorch.optim.%s: expected a table with param_groups and state"):format(fn), 2)
  end
  if #sd.param_groups ~= #self.param_groups then
    error(("scorch.optim.%s: %d parameter groups given, the optimiser has %d")
      :format(fn, #sd.param_groups, #self.param_groups), 2)
  end
  local params = {}
  for gi, group in ipairs(self.param_groups) do
    local n = sd.param_groups[gi].params and #sd.param_groups[gi].params or #group.params
    if n ~= #group.params then
      error(("scorch.optim.%s: group %d has %d parameters, the optimiser's has %d")
        :format(fn, gi, n, #group.params), 2)
    end
    for _, p in ipairs(group.params) do params[#params + 1] = p end
  end
  -- check every state tensor before changing anything
  local state = sd.state or {}
  for i, st in pairs(state) do
    local p = params[i]
    if not p then
      error(("scorch.optim.%s: state for parameter %s, which does not exist"):format(fn, tostring(i)), 2)
    end
    for k, v in pairs(st) do
      if sc.is_tensor(v) and v:numel() ~= p:numel() then
        error(("scorch.optim.%s: state '%s' of parameter %d has %d elements, the parameter %d")
          :format(fn, k, i, v:numel(), p:numel()), 2)
      end
    end
  end
  for gi, group in ipairs(self.param_groups) do
    for k, v in pairs(sd.param_groups[gi]) do
      if k ~= "params" then group[k] = copy_value(v) end
    end
  end
  self.state = {}
  for i, p in ipairs(params) do
    local st = state[i]
    if st then
      local mine = {}
      for k, v in pairs(st) do
        if sc.is_tensor(v) then
          mine[k] = v:detach():to(p:dtype()):reshape(p:shape()):contiguous():clone()
        else
          mine[k] = copy_value(v)
        end
      end
      self.state[p] = mine
    end
  end
end

return Optimizer
