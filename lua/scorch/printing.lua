--- How tensors print: values in the manner of PyTorch, the middle of large
-- tensors elided, then dtype, shape and autograd state.
-- @module scorch.printing
local core = require "scorch.core"

local EDGE, LIMIT = 3, 1000

-- Keeps the first and last EDGE entries of every long dim; returns the
-- smaller tensor and, per dim, whether a gap was cut out of it.
local function summarize(t)
  local gaps = {}
  if t:numel() <= LIMIT then return t, gaps end
  for d = 1, t:dim() do
    local n = t:size(d)
    if n > 2 * EDGE then
      t = core.cat({ t:narrow(d, 1, EDGE), t:narrow(d, n - EDGE + 1, EDGE) }, d)
      gaps[d] = true
    end
  end
  return t, gaps
end

local function number_format(vals)
  local all_int, maxabs, minabs = true, 0, math.huge
  for _, v in ipairs(vals) do
    if v ~= v or v == math.huge or v == -math.huge then goto continue end
    if v ~= math.floor(v) then all_int = false end
    local a = math.abs(v)
    if a > maxabs then maxabs = a end
    if a > 0 and a < minabs then minabs = a end
    ::continue::
  end
  if all_int and maxabs < 1e8 then
    return function(v)
      if v ~= v or math.abs(v) == math.huge then return tostring(v) end
      return string.format("%d.", math.floor(v))
    end
  end
  if maxabs >= 1e8 or (minabs < 1e-4) or (maxabs > 0 and maxabs / minabs > 1e8) then
    return function(v) return string.format("%.4e", v) end
  end
  return function(v) return string.format("%.4f", v) end
end

-- A row's entries joined by ", ", broken into lines of at most LINE
-- columns (as PyTorch's linewidth), continued under the first entry.
local LINE = 80
local function wrap(parts, col)
  local out, len = {}, col
  for i, p in ipairs(parts) do
    if i > 1 and len + 2 + #p > LINE then
      out[#out + 1] = ",\n" .. string.rep(" ", col)
      len = col
    elseif i > 1 then
      out[#out + 1] = ", "
      len = len + 2
    end
    out[#out + 1] = p
    len = len + #p
  end
  return table.concat(out)
end

local function render(t)
  local prev = core.set_grad_enabled(false)
  local ok, s, gaps = pcall(summarize, t)
  core.set_grad_enabled(prev)
  if not ok then error(s, 0) end
  local vals = s:values()
  local fmt = number_format(vals)
  local strs, width = {}, 0
  for i, v in ipairs(vals) do
    strs[i] = fmt(v)
    if #strs[i] > width then width = #strs[i] end
  end
  local shape = s:shape()
  local nd = #shape
  if nd == 0 then return strs[1] end
  local pos = 0
  local function rec(d, indent)
    local parts = {}
    for i = 1, shape[d] do
      if gaps[d] and i == EDGE + 1 then parts[#parts + 1] = "..." end
      if d == nd then
        pos = pos + 1
        parts[#parts + 1] = string.rep(" ", width - #strs[pos]) .. strs[pos]
      else
        parts[#parts + 1] = rec(d + 1, indent .. " ")
      end
    end
    if d == nd then return "[" .. wrap(parts, #indent + 1) .. "]" end
    local sep = "," .. string.rep("\n", nd - d) .. indent .. " "
    return "[" .. table.concat(parts, sep) .. "]"
  end
  return rec(1, "       ")
end

local shape_str = require("scorch.util").shape_str

core.Tensor.__tostring = function(t)
  local extra = ""
  local fn = t:grad_fn()
  if fn then
    extra = ", grad_fn=<" .. fn .. ">"
  elseif t:requires_grad() then
    extra = ", requires_grad=true"
  end
  return string.format("tensor(%s, dtype=%s, shape=%s%s)", render(t), t:dtype(),
                       shape_str(t), extra)
end

return {}
