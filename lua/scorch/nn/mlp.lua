--- MLP{in=, hidden={...}, out=, act="silu"}: Linear, act, Linear, act, ...,
-- Linear — a Sequential, so names read "1.weight", "3.weight", ...
--
-- `in` is a Lua keyword, so write ["in"] = 2, or use d_in / in_features
-- (and d_out / out_features for out).  act is a name ("silu", "relu",
-- "tanh", "softplus", "sigmoid", "gelu", "leaky_relu", "identity") or a
-- constructor called with no arguments (nn.SiLU, or any function returning
-- a module).  Other options: bias (true), dtype, generator, and out_act (an
-- activation after the last layer, none by default).
-- @module scorch.nn.mlp
local activation = require "scorch.nn.activation"
local util = require "scorch.util"
local Linear = require "scorch.nn.linear"
local Sequential = require("scorch.nn.container").Sequential

local MLP = Sequential:extend("MLP")

local by_name = {
  silu = activation.SiLU, relu = activation.ReLU, tanh = activation.Tanh,
  softplus = activation.Softplus, sigmoid = activation.Sigmoid,
  gelu = activation.GELU, leaky_relu = activation.LeakyReLU,
  identity = activation.Identity,
}

-- The constructor for an `act` option (checked even if no layer uses it).
local function act_constructor(act)
  if type(act) == "string" then
    local cls = by_name[act:lower()]
    if not cls then error(("scorch.nn.MLP: unknown activation '%s'"):format(act), 4) end
    return cls
  end
  if not util.is_callable(act) then
    error(("scorch.nn.MLP: act must be a name or a constructor (got %s)"):format(type(act)), 4)
  end
  return act
end

local function size(opts, names)
  for _, k in ipairs(names) do
    if opts[k] ~= nil then return opts[k] end
  end
  error(("scorch.nn.MLP: missing option %s"):format(names[1]), 4)
end

function MLP:init(opts)
  if type(opts) ~= "table" then error("scorch.nn.MLP: expected an options table", 3) end
  util.check_options(opts, { "in", "d_in", "in_features", "out", "d_out", "out_features", "hidden", "act",
    "out_act", "bias", "dtype", "generator" }, "scorch.nn.MLP", 4)
  local d_in = size(opts, { "in", "d_in", "in_features" })
  local d_out = size(opts, { "out", "d_out", "out_features" })
  local hidden = opts.hidden or {}
  if type(hidden) == "number" then hidden = { hidden } end
  local act = act_constructor(opts.act or "silu")
  local out_act = opts.out_act and act_constructor(opts.out_act)
  local lin_opts = { bias = opts.bias, dtype = opts.dtype, generator = opts.generator }
  local sizes = { d_in }
  for _, h in ipairs(hidden) do sizes[#sizes + 1] = h end
  sizes[#sizes + 1] = d_out
  for i = 1, #sizes - 1 do
    self:append(Linear(sizes[i], sizes[i + 1], lin_opts))
    if i < #sizes - 1 then self:append(act()) end
  end
  if out_act then self:append(out_act()) end
end

return MLP
