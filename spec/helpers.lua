-- Shared helpers for the engine specs: numeric comparison of tensors and
-- tables, builders of strided inputs, and a child `lua5.4` for specs that
-- need a fresh interpreter.  Every helper raises or returns a message that
-- says which element differs, so a failing spec reads like a diagnosis.
local sc = require "scorch"

local H = {}

-- Flat list of numbers from a number, a nested table or a tensor.
function H.flat(x)
  if type(x) == "number" then return { x } end
  if sc.is_tensor(x) then return x:values() end
  local out = {}
  local function walk(t)
    for _, v in ipairs(t) do
      if type(v) == "table" then walk(v) else out[#out + 1] = v end
    end
  end
  walk(x)
  return out
end

-- Shape of a tensor, or of a rectangular nested table.
function H.shape_of(x)
  if sc.is_tensor(x) then return x:shape() end
  local s = {}
  while type(x) == "table" do
    s[#s + 1] = #x
    x = x[1]
  end
  return s
end

local function shape_str(s) return "[" .. table.concat(s, ",") .. "]" end

-- close(a, b [, tol]) -> true, or false and a message naming the first
-- element that differs.  Shapes must agree when both sides have one (a
-- plain number compares against every element).  tol is absolute plus the
-- same relative amount; NaN equals NaN, infinities must match exactly.
function H.close(a, b, tol)
  tol = tol or 1e-6
  if type(a) ~= "number" and type(b) ~= "number" then
    local sa, sb = H.shape_of(a), H.shape_of(b)
    if shape_str(sa) ~= shape_str(sb) then
      return false, ("shapes differ: %s vs %s"):format(shape_str(sa), shape_str(sb))
    end
  end
  local fa, fb = H.flat(a), H.flat(b)
  if type(a) == "number" then for i = 2, #fb do fa[i] = a end end
  if type(b) == "number" then for i = 2, #fa do fb[i] = b end end
  if #fa ~= #fb then
    return false, ("sizes differ: %d vs %d elements"):format(#fa, #fb)
  end
  for i = 1, #fa do
    local x, y = fa[i], fb[i]
    local same
    if x ~= x or y ~= y then
      same = x ~= x and y ~= y
    elseif math.abs(x) == math.huge or math.abs(y) == math.huge then
      same = x == y
    else
      same = math.abs(x - y) <= tol * (1 + math.abs(y))
    end
    if not same then
      return false, ("element %d: %.10g vs %.10g (tol %g)"):format(i, x, y, tol)
    end
  end
  return true
end

-- Asserting form of close, reporting at the caller's line.
function H.assert_close(a, b, tol, what)
  local ok, msg = H.close(a, b, tol)
  if not ok then error((what and what .. ": " or "") .. msg, 2) end
end

-- Bitwise equality of two tensors' values (same shape, same numbers).
function H.identical(a, b)
  if shape_str(a:shape()) ~= shape_str(b:shape()) then return false end
  local fa, fb = a:values(), b:values()
  for i = 1, #fa do
    if fa[i] ~= fb[i] and not (fa[i] ~= fa[i] and fb[i] ~= fb[i]) then return false end
  end
  return true
end

-- The same values as x in a non-contiguous layout: every element at
-- stride 2 of a buffer twice the size (a narrowed/selected view).
function H.strided(x)
  return sc.no_grad(function()
    local zero = x:detach() * 0
    local y = sc.stack({ x:detach(), zero }, -1):select(-1, 1)
    return y
  end)
end

-- The same values as x (at least 2-D) stored transposed: a view whose last
-- two dims are swapped relative to memory.
function H.transposed(x)
  return sc.no_grad(function()
    return x:detach():transpose(-1, -2):contiguous():transpose(-1, -2)
  end)
end

-- A float64 leaf that requires grad from a nested table.
function H.leaf(tbl)
  return sc.tensor(tbl, { dtype = "float64" }):requires_grad(true)
end

-- The error message of fn(...) (which must fail), or an assertion error.
function H.error_of(fn, ...)
  local ok, msg = pcall(fn, ...)
  if ok then error("expected an error, got success", 2) end
  return tostring(msg)
end

-- A Lua 5.4 interpreter that loads this tree, and the environment for it.
function H.lua()
  local exe = os.getenv("SCORCH_LUA")
  return (exe and exe ~= "") and exe or "lua5.4"
end

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
H.quote = quote

-- Runs `code` in a fresh interpreter with this tree on the module paths;
-- returns stdout, and whether it exited with status 0.
function H.run_lua(code)
  local root = os.getenv("PWD") or "."
  local lpath = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;;"
  local cpath = root .. "/lib/?.so;;"
  local file = os.tmpname()
  local f = assert(io.open(file, "w"))
  f:write(code)
  f:close()
  local cmd = ("LUA_PATH=%s LUA_CPATH=%s %s %s 2>&1"):format(
    quote(os.getenv("LUA_PATH") or lpath), quote(os.getenv("LUA_CPATH") or cpath),
    quote(H.lua()), quote(file))
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local ok = p:close()
  os.remove(file)
  return out, ok
end

-- The whole contents of a file, as bytes.
function H.read_bytes(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- The host under test: make test points SCORCH_BIN at the tree's own.
function H.host()
  return os.getenv("SCORCH_BIN") or "bin/scorch"
end

-- Runs a shell command; returns its exit status and its output (stdout
-- and stderr together).
function H.sh(cmd)
  local p = assert(io.popen("( " .. cmd .. " ) 2>&1; echo \"__status=$?\"", "r"))
  local out = p:read("a")
  p:close()
  local status = tonumber(out:match("__status=(%d+)%s*$"))
  return status, (out:gsub("__status=%d+%s*$", ""))
end

-- Whether path holds a PNG file (by its signature).
function H.is_png(path)
  local f = io.open(path, "rb")
  if not f then return false end
  local s = f:read(8)
  f:close()
  return s == "\137PNG\r\n\26\n"
end

-- Whether v is a finite number.
function H.finite(v) return v ~= nil and v == v and v ~= math.huge and v ~= -math.huge end

-- A small untrained classifier with 8 features in dir/classifiers/DATA.safetensors,
-- standing in for the trained one of an image example (a private
-- SCORCH_CACHE): no classifier is trained, and 60 samples give a FID.
function H.write_classifier(dir, data, names, seed)
  local sc = require "scorch"
  assert(sc.util.mkdir(dir .. "/classifiers"))
  local model = sc.models.Classifier { classes = #names, channels = { 4, 8 }, size = 28, features = 8,
    generator = sc.Generator(seed) }
  model:eval()
  assert(model:save(("%s/classifiers/%s.safetensors"):format(dir, data), { data = data, class_names = names }))
end

-- out without its lines that start with one of the prefixes (Lua patterns):
-- an example's printed numbers without its timings and paths.
function H.drop_lines(out, prefixes)
  local keep = {}
  for line in out:gmatch("[^\n]*") do
    local drop = false
    for _, pre in ipairs(prefixes) do
      if line:match("^" .. pre) then drop = true break end
    end
    if not drop then keep[#keep + 1] = line end
  end
  return table.concat(keep, "\n")
end

-- This process's resident memory in kB (VmRSS).
function H.rss_kb()
  for line in io.lines("/proc/self/status") do
    local v = line:match("^VmRSS:%s+(%d+)")
    if v then return tonumber(v) end
  end
  error("no VmRSS in /proc/self/status")
end

return H
