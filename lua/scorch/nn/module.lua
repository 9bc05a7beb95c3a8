--- The Module base class: parameters, buffers and submodules in a stable
-- order, state dicts, train/eval, dtype conversion and printing.
--
-- A module is a plain table whose metatable is its class.  Assigning a
-- module or a leaf tensor that requires grad to a new field registers it
-- (as PyTorch's __setattr__ does), so a subclass reads naturally:
--
--   local Net = nn.Module:extend("Net")
--   function Net:init(d) self.fc = nn.Linear(d, d) end
--   function Net:forward(x) return self.fc(x):silu() end
--   local net = Net(4)             -- net(x) calls net:forward(x)
--
-- Modules keep no per-call state (no output caches); forward is a function
-- of its inputs and the registered tensors.
-- @module scorch.nn.module
local sc = require "scorch"

local Module = {}
Module.__index = Module
Module.__name = "Module"

--- Whether `v` is a module (Module.is_module(v), also m:is_module()).
-- @param v any value
-- @return boolean
-- @usage if nn.Module.is_module(v) then print(v) end
local function is_module(v)
  return type(v) == "table" and rawget(v, "_modules") ~= nil
end

-- Constructing an instance: `Class(...)` makes the table, then `init` fills it.
local function construct(cls, ...)
  local self = setmetatable({ _params = {}, _buffers = {}, _modules = {}, training = true }, cls)
  cls.init(self, ...)
  return self
end

setmetatable(Module, { __call = construct })

-- Subclass: metamethods are copied because Lua only looks for them in the
-- instance's own metatable, never through __index.
function Module:extend(name)
  local cls = {}
  for k, v in pairs(self) do
    if type(k) == "string" and k:sub(1, 2) == "__" then cls[k] = v end
  end
  cls.__index = cls
  cls.__name = name or "Module"
  cls.super = self
  return setmetatable(cls, { __index = self, __call = construct })
end

function Module.init() end

function Module:forward()
  error(("scorch.nn: %s has no forward method"):format(getmetatable(self).__name), 2)
end

function Module:__call(...)
  return self:forward(...)
end

local function check_name(name, fn)
  if type(name) == "number" then return end
  if type(name) ~= "string" or name == "" or name:find(".", 1, true) then
    error(("scorch.nn.%s: bad name %s (a non-empty string without '.', or an integer)")
      :format(fn, tostring(name)), 3)
  end
end

-- Adds `name` to one of the ordered name lists unless it is there already.
local function add_name(list, name)
  for i = 1, #list do if list[i] == name then return end end
  list[#list + 1] = name
end

--- Registers a tensor as a parameter (a leaf that requires grad) under `name`.
-- @param name string, a Lua name
-- @param t tensor, or nil to remove the parameter
-- @return t
-- @usage self.weight = self:register_parameter("weight", sc.randn(out, inp))
function Module:register_parameter(name, t)
  check_name(name, "register_parameter")
  if t ~= nil and not sc.is_tensor(t) then
    error(("scorch.nn.register_parameter: '%s' is a %s, not a tensor"):format(name, type(t)), 2)
  end
  add_name(rawget(self, "_params"), name)
  rawset(self, name, t)
  return t
end

-- Buffers are saved in state_dict and converted by to(), but are not
-- parameters: optimisers and EMA never see them.
function Module:register_buffer(name, t)
  check_name(name, "register_buffer")
  if t ~= nil and not sc.is_tensor(t) then
    error(("scorch.nn.register_buffer: '%s' is a %s, not a tensor"):format(name, type(t)), 2)
  end
  add_name(rawget(self, "_buffers"), name)
  rawset(self, name, t)
  return t
end

--- Registers a submodule under `name` (its parameters become this module's).
-- @param name string
-- @param m module
-- @return m
-- @usage self:register_module("body", nn.Linear(2, 64))
function Module:register_module(name, m)
  check_name(name, "register_module")
  if m ~= nil and not is_module(m) then
    error(("scorch.nn.register_module: '%s' is a %s, not a module"):format(name, type(m)), 2)
  end
  add_name(rawget(self, "_modules"), name)
  rawset(self, name, m)
  return m
end

-- New fields: modules and leaf tensors that require grad register
-- themselves; anything else (numbers, constant tensors) is a plain field.
function Module:__newindex(k, v)
  if is_module(v) then
    Module.register_module(self, k, v)
  elseif sc.is_tensor(v) and v:requires_grad() and v:is_leaf() then
    Module.register_parameter(self, k, v)
  else
    rawset(self, k, v)
  end
end

-- ---- traversal ---------------------------------------------------------------------

-- Depth first, as PyTorch: a module's own tensors in registration order,
-- then each child's.  `kind` is "_params" or "_buffers"; shared tensors are
-- listed once, under their first name.
local function collect(m, prefix, kind, out, seen)
  for _, name in ipairs(m[kind]) do
    local t = m[name]
    if t ~= nil and not seen[t] then
      seen[t] = true
      out[#out + 1] = { prefix .. tostring(name), t }
    end
  end
  for _, name in ipairs(m._modules) do
    local c = m[name]
    if c ~= nil then collect(c, prefix .. tostring(name) .. ".", kind, out, seen) end
  end
  return out
end

-- Array of {name, tensor} pairs, names dotted ("net.1.weight").
function Module:named_parameters()
  return collect(self, "", "_params", {}, {})
end

--- Non-trainable state (running statistics, ...) by dotted name.
-- @return table name -> tensor
-- @usage for name, b in pairs(m:named_buffers()) do print(name) end
function Module:named_buffers()
  return collect(self, "", "_buffers", {}, {})
end

--- Every parameter of the module and its submodules, in a stable order (the
-- order of named_parameters' sorted names), for an optimiser.
-- @return list of tensors
-- @usage local opt = sc.optim.Adam(model:parameters(), {lr = 1e-3})
function Module:parameters()
  local named, out = collect(self, "", "_params", {}, {}), {}
  for i = 1, #named do out[i] = named[i][2] end
  return out
end

--- Every buffer of the module and its submodules, in a stable order.
-- @return list of tensors
-- @usage print(#m:buffers())
function Module:buffers()
  local named, out = collect(self, "", "_buffers", {}, {}), {}
  for i = 1, #named do out[i] = named[i][2] end
  return out
end

--- The number of scalar parameters.
-- @return integer
-- @usage print(model:num_parameters())
function Module:num_parameters()
  local n = 0
  for _, p in ipairs(self:parameters()) do n = n + p:numel() end
  return n
end

-- Direct submodules, in order, as an array of modules.
function Module:children()
  local out = {}
  for _, name in ipairs(self._modules) do
    if self[name] ~= nil then out[#out + 1] = self[name] end
  end
  return out
end

-- Every module of the tree, self first, as {name, module} pairs.
function Module:named_modules()
  local out = {}
  local function walk(m, prefix)
    out[#out + 1] = { prefix, m }
    for _, name in ipairs(m._modules) do
      local c = m[name]
      if c ~= nil then walk(c, prefix == "" and tostring(name) or prefix .. "." .. tostring(name)) end
    end
  end
  walk(self, "")
  return out
end

--- The module and all its submodules, depth first.
-- @return list of modules
-- @usage for _, m in ipairs(net:modules()) do print(m) end
function Module:modules()
  local out = {}
  for i, nm in ipairs(self:named_modules()) do out[i] = nm[2] end
  return out
end

-- Calls fn(module) on every module of the tree, children first (as PyTorch).
function Module:apply(fn)
  for _, c in ipairs(self:children()) do c:apply(fn) end
  fn(self)
  return self
end

-- ---- modes and gradients -------------------------------------------------------------

--- Sets training mode (dropout on, ...) on the module and its submodules.
-- @param mode boolean (default true)
-- @return self
-- @usage model:train()
function Module:train(mode)
  if mode == nil then mode = true end
  for _, m in ipairs(self:modules()) do m.training = mode and true or false end
  return self
end

--- Sets evaluation mode: `train(false)`.
-- @return self
-- @usage model:eval()
function Module:eval()
  return self:train(false)
end

-- Drops every parameter's gradient (PyTorch's set_to_none behaviour).
function Module:zero_grad()
  for _, p in ipairs(self:parameters()) do p.grad = nil end
  return self
end

-- Freezes (false) or unfreezes (true) every parameter.
function Module:requires_grad_(on)
  if on == nil then on = true end
  for _, p in ipairs(self:parameters()) do p:requires_grad(on) end
  return self
end

-- ---- state dicts ---------------------------------------------------------------------

-- name → tensor for parameters and buffers.  The tensors are detached
-- views sharing storage with the module (as PyTorch's): clone them to keep
-- a snapshot.
function Module:state_dict()
  local sd = {}
  for _, kind in ipairs { "_params", "_buffers" } do
    for _, nt in ipairs(collect(self, "", kind, {}, {})) do sd[nt[1]] = nt[2]:detach() end
  end
  return sd
end

local util = require "scorch.util"
local shape_str = util.shape_str

local function copy_all(pairs_list, sd)
  for _, nt in ipairs(pairs_list) do nt[2]:copy_(sd[nt[1]]) end
end

-- Copies sd's values into the module's tensors in place.  Every key is
-- checked before anything is written, so a failed load changes nothing.
-- opts.strict = false ignores missing and unexpected keys (not shapes).
function Module:load_state_dict(sd, opts)
  if type(sd) ~= "table" then
    error(("scorch.nn.load_state_dict: expected a table name → tensor (got %s)"):format(type(sd)), 2)
  end
  local strict = util.check_options(opts, { "strict" }, "scorch.nn.load_state_dict").strict ~= false
  local own = collect(self, "", "_params", {}, {})
  for _, nt in ipairs(collect(self, "", "_buffers", {}, {})) do own[#own + 1] = nt end
  local known, present = {}, {}
  for _, nt in ipairs(own) do
    local name, t = nt[1], nt[2]
    known[name] = true
    local v = sd[name]
    if v == nil then
      if strict then error(("scorch.nn.load_state_dict: missing key '%s'"):format(name), 2) end
    elseif not sc.is_tensor(v) then
      error(("scorch.nn.load_state_dict: key '%s' holds a %s, not a tensor"):format(name, type(v)), 2)
    else
      local a, b = t:shape(), v:shape()
      local same = #a == #b
      for i = 1, #a do same = same and a[i] == b[i] end
      if not same then
        error(("scorch.nn.load_state_dict: key '%s' has shape %s, the module expects %s")
          :format(name, shape_str(v), shape_str(t)), 2)
      end
      present[#present + 1] = nt
    end
  end
  if strict then
    local extra = {}
    for k in pairs(sd) do
      if not known[k] then extra[#extra + 1] = tostring(k) end
    end
    if #extra > 0 then
      table.sort(extra)
      error(("scorch.nn.load_state_dict: unexpected key '%s'"):format(extra[1]), 2)
    end
  end
  sc.no_grad(copy_all, present, sd)
  return self
end

-- ---- dtype ------------------------------------------------------------------------------

-- Converts parameters and buffers to `dtype` ("float32" or "float64").
-- Converted parameters are new leaf tensors (their .grad is dropped), so
-- build optimisers after converting.
function Module:to(dtype)
  if dtype ~= "float32" and dtype ~= "float64" then
    error(("scorch.nn.to: dtype must be \"float32\" or \"float64\" (got %s)"):format(tostring(dtype)), 2)
  end
  for _, m in ipairs(self:modules()) do
    for _, name in ipairs(m._params) do
      local p = m[name]
      if p ~= nil and p:dtype() ~= dtype then
        local q = p:detach():to(dtype)
        if p:requires_grad() then q:requires_grad(true) end
        rawset(m, name, q)
      end
    end
    for _, name in ipairs(m._buffers) do
      local b = m[name]
      if b ~= nil and b:dtype() ~= dtype then rawset(m, name, b:to(dtype)) end
    end
  end
  return self
end

--- Converts parameters and buffers to float64 (`double`) or float32 (`float`).
-- @usage model:double()
function Module:double() return self:to("float64") end
function Module:float() return self:to("float32") end

-- ---- printing ------------------------------------------------------------------------------

-- Subclasses return their arguments here: "in_features=2, out_features=16".
function Module.extra_repr() return "" end

function Module:__tostring()
  local head = getmetatable(self).__name .. "(" .. self:extra_repr()
  if #self._modules == 0 then return head .. ")" end
  local lines = { head }
  for _, name in ipairs(self._modules) do
    local c = self[name]
    if c ~= nil then
      local s = tostring(c):gsub("\n", "\n  ")
      lines[#lines + 1] = "  (" .. tostring(name) .. "): " .. s
    end
  end
  lines[#lines + 1] = ")"
  return table.concat(lines, "\n")
end

Module.is_module = is_module
return Module
