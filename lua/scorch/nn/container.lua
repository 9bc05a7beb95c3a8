--- Containers: Sequential (a chain) and ModuleList (an indexable list).
-- Children are stored at integer keys 1..n, so `seq[2]` is the second
-- layer and state dict names read "2.weight" (PyTorch's "1.weight").
-- @module scorch.nn.container
local sc = require "scorch"
local Module = require "scorch.nn.module"
local Linear = require "scorch.nn.linear"
local SiLU = require("scorch.nn.activation").SiLU
local GroupNorm = require("scorch.nn.norm").GroupNorm
local core = require "scorch.core"

local M = {}

-- Accepts Class{a, b, c} or Class(a, b, c).
local function module_list(self, first, ...)
  local list = first
  if first == nil then
    list = {}
  elseif Module.is_module(first) then
    list = { first, ... }
  elseif type(first) ~= "table" then
    error(("scorch.nn.%s: expected modules or a table of modules (got %s)")
      :format(getmetatable(self).__name, type(first)), 4)
  end
  for i = 1, #list do self:append(list[i]) end
end

--- Appends a module at the end (ModuleList:append, Sequential:add).
-- @param self the list
-- @param m module
-- @return self
-- @usage blocks:append(nn.Linear(64, 64))
local function append(self, m)
  if not Module.is_module(m) then
    error(("scorch.nn.%s:append: element %d is a %s, not a module")
      :format(getmetatable(self).__name, #self._modules + 1, type(m)), 2)
  end
  self:register_module(#self._modules + 1, m)
  return self
end

M.ModuleList = Module:extend("ModuleList")
M.ModuleList.init = module_list
M.ModuleList.append = append
function M.ModuleList:__len() return #self._modules end

M.Sequential = M.ModuleList:extend("Sequential")
M.Sequential.add = append

-- m of class A followed by nxt of class B, neither with a forward of its
-- own (so running them as one fused call changes nothing).
local function plain_pair(m, nxt, A, B)
  return getmetatable(m) == A and getmetatable(nxt) == B
    and rawget(m, "forward") == nil and rawget(nxt, "forward") == nil
end

-- A plain Linear followed by a plain SiLU runs as one fused call: without
-- a graph the bias and the SiLU are applied in one pass over the product
-- while it is still in cache; with one it is the same two ops as before.
local function fusable(m, nxt) return plain_pair(m, nxt, Linear, SiLU) end

-- A plain SiLU followed by a plain Linear.
local function silu_linear_pair(m, nxt) return plain_pair(m, nxt, SiLU, Linear) end

-- The chain's layers as {weight, bias or false, silu} when every module is
-- a plain Linear, optionally followed by a plain SiLU (nil otherwise).
local function plain_chain(self)
  local layers, i = {}, 1
  local n = #self._modules
  while i <= n do
    local m, nxt = self[i], self[i + 1]
    if getmetatable(m) ~= Linear or rawget(m, "forward") ~= nil then return nil end
    local silu = i < n and fusable(m, nxt)
    if i < n and not silu then return nil end
    layers[#layers + 1] = { m.weight, m.bias or false, silu }
    i = i + (silu and 2 or 1)
  end
  return #layers >= 2 and #layers <= 16 and layers or nil
end

function M.Sequential:forward(x)
  -- Without a graph, a chain of plain Linear (+ SiLU) layers runs block by
  -- block of rows through all of them (the activations stay in cache), with
  -- the numbers of the layer-by-layer calls below.
  if not sc.is_grad_enabled() and sc.is_tensor(x) and x:dim() == 2 then
    local layers = plain_chain(self)
    if layers then return core._linear_chain(x, layers) end
  end
  -- With a graph, a SiLU followed by a Linear is one op (core.silu_linear)
  -- whose backward multiplies by silu' inside the input gradient's product;
  -- a Linear then runs alone when its SiLU starts such a pair.
  local n, i = #self._modules, 1
  local graph = sc.is_grad_enabled()
  while i <= n do
    local m, nxt = self[i], self[i + 1]
    if graph and nxt and silu_linear_pair(m, nxt) and sc.is_tensor(x) and x:dim() == 2 then
      x = core.silu_linear(x, nxt.weight, nxt.bias)
      i = i + 2
    elseif nxt and fusable(m, nxt) and not (graph and self[i + 2] and silu_linear_pair(nxt, self[i + 2])) then
      x = sc.linear(x, m.weight, m.bias, "silu")
      i = i + 2
    elseif nxt and plain_pair(m, nxt, GroupNorm, SiLU) then -- one op, same numbers
      x = m:forward_silu(x)
      i = i + 2
    else
      x = m(x)
      i = i + 1
    end
  end
  return x
end

return M
