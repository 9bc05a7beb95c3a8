-- Loading scorch defines no globals and changes none: _G is snapshotted in a
-- fresh interpreter before and after `require "scorch"` (and after the lazily
-- loaded submodules) and compared key by key, value by value.
local H = require "helpers"

local PRELUDE = [[
local function snapshot()
  local s = {}
  for k, v in pairs(_G) do s[k] = v end
  return s
end
local function diff(a, b, what)
  local out = {}
  for k, v in pairs(b) do
    if a[k] == nil then out[#out + 1] = "added " .. tostring(k)
    elseif a[k] ~= v then out[#out + 1] = "changed " .. tostring(k) end
  end
  for k in pairs(a) do
    if b[k] == nil then out[#out + 1] = "removed " .. tostring(k) end
  end
  table.sort(out)
  print(what, #out, table.concat(out, " "))
end
local string_mt = getmetatable("")
local string_index = string_mt.__index
local before = snapshot()
]]

describe("globals", function()
  it("require 'scorch' leaves _G untouched", function()
    local out, ok = H.run_lua(PRELUDE .. [[
local sc = require "scorch"
assert(type(sc) == "table" and sc.zeros, "scorch did not load")
-- use it a little: metatables and printing are set up lazily by some libraries
local t = sc.randn(3, 3):requires_grad(true)
local _ = tostring(t), (t * t):sum():backward()
diff(before, snapshot(), "DIFF")
assert(getmetatable("") == string_mt and string_mt.__index == string_index)
print("SCORCH", rawget(_G, "scorch") == nil and rawget(_G, "sc") == nil)
]])
    assert(ok, out)
    assert.truthy(out:find("DIFF\t0\t\n", 1, true), out)
    assert.truthy(out:find("SCORCH\ttrue", 1, true), out)
  end)

  it("the submodules loaded on first use leave _G untouched too", function()
    local out, ok = H.run_lua(PRELUDE .. [[
local sc = require "scorch"
local loaded = {}
for _, name in ipairs({ "nn", "optim", "data", "losses", "schedules", "samplers", "models",
  "metrics", "viz", "util", "image", "io" }) do
  local ok = pcall(function() return sc[name] end)
  if ok and sc[name] then loaded[#loaded + 1] = name end
end
print("LOADED", table.concat(loaded, ","))
diff(before, snapshot(), "DIFF")
]])
    assert(ok, out)
    assert.truthy(out:find("DIFF\t0\t\n", 1, true), out)
  end)

  it("the snapshot detects a global (the check can fail)", function()
    local out, ok = H.run_lua(PRELUDE .. [[
leaked_by_test = 1
diff(before, snapshot(), "DIFF")
]])
    assert(ok, out)
    assert.truthy(out:find("DIFF\t1\tadded leaked_by_test", 1, true), out)
  end)
end)
