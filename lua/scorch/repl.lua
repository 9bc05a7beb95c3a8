--- The Lua side of the `scorch` REPL (csrc/host/scorch.c calls it): how
-- results print, the REPL's own commands (`?name`, `help`, `:time`, `$ cmd`),
-- help text read from the doc comments, and the names TAB completion adds.
-- Loading it defines no globals; the host sets `help` in its own session.
-- @module scorch.repl
local M = {}

--- The lazily loaded submodules of `sc`: TAB completion offers them before
-- their first use (indexing `sc.nn` is what loads a module).
M.submodules = {
  "nn", "optim", "data", "losses", "schedules", "samplers", "models",
  "metrics", "viz", "util", "image", "io", "likelihood", "param", "dist",
}

-- ---- printing ------------------------------------------------------------------

local MAX_ITEMS, MAX_DEPTH, MAX_WIDTH = 20, 2, 78

local function is_tensor(v)
  local sc = package.loaded["scorch"]
  return sc ~= nil and sc.is_tensor ~= nil and sc.is_tensor(v)
end

local function key_text(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") then return k end
  if type(k) == "string" then return ("[%q]"):format(k) end
  return "[" .. tostring(k) .. "]"
end

local function scalar_text(v)
  if type(v) == "string" then return ("%q"):format(v):gsub("\\\n", "\\n") end
  if is_tensor(v) then
    return ("tensor(shape=[%s], %s)"):format(table.concat(v:shape(), ","), v:dtype())
  end
  return tostring(v)
end

local pretty

-- One table as text: the array part in order, then the other keys sorted;
-- at most MAX_ITEMS entries, nested tables to MAX_DEPTH, then `{...}`.
local function table_text(t, depth, indent, seen)
  local mt = getmetatable(t)
  if mt and mt.__tostring then return tostring(t) end
  if seen[t] then return "<cycle>" end
  if depth > MAX_DEPTH then return next(t) == nil and "{}" or "{...}" end
  seen[t] = true
  local n, keys = #t, {}
  for k in pairs(t) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b)
    if type(a) == type(b) and (type(a) == "string" or type(a) == "number") then return a < b end
    return type(a) < type(b)
  end)
  local items, total = {}, n + #keys
  for i = 1, math.min(n, MAX_ITEMS) do
    items[#items + 1] = pretty(t[i], depth + 1, indent .. "  ", seen)
  end
  for _, k in ipairs(keys) do
    if #items >= MAX_ITEMS then break end
    items[#items + 1] = key_text(k) .. " = " .. pretty(t[k], depth + 1, indent .. "  ", seen)
  end
  if total > #items then items[#items + 1] = ("... (%d more)"):format(total - #items) end
  seen[t] = nil
  if #items == 0 then return "{}" end
  local flat = "{" .. table.concat(items, ", ") .. "}"
  if #flat + #indent <= MAX_WIDTH and not flat:find("\n") then return flat end
  local inner = indent .. "  "
  if flat:find("\n") then
    return "{\n" .. inner .. table.concat(items, ",\n" .. inner) .. "\n" .. indent .. "}"
  end
  -- short items: as many to a line as fit
  local lines, line = {}, ""
  for i, item in ipairs(items) do
    local piece = item .. (i < #items and "," or "")
    if line ~= "" and #inner + #line + 1 + #piece > MAX_WIDTH then
      lines[#lines + 1] = line
      line = piece
    else
      line = line == "" and piece or line .. " " .. piece
    end
  end
  lines[#lines + 1] = line
  return "{\n" .. inner .. table.concat(lines, "\n" .. inner) .. "\n" .. indent .. "}"
end

function pretty(v, depth, indent, seen)
  if type(v) == "table" then return table_text(v, depth, indent, seen) end
  if depth > 0 then return scalar_text(v) end
  return tostring(v)
end

--- A value as the REPL shows it: tables nested and truncated (`{1, 2, n = 3}`),
-- anything with `__tostring` (tensors, modules) through it.
-- @param v any value
-- @treturn string
-- @usage print(require("scorch.repl").show({shape = {2, 3}}))
function M.show(v)
  return pretty(v, 0, "", {})
end

--- Prints a statement's results on one line, tab separated, as the REPL does.
-- @param ... the values
-- @usage require("scorch.repl").print_results(1, {2, 3})
function M.print_results(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = M.show((select(i, ...))) end
  io.write(table.concat(parts, "\t"), "\n")
end

-- ---- doc comments ----------------------------------------------------------------------

local file_cache = {}

local function file_lines(path)
  if file_cache[path] == nil then
    local f = io.open(path, "r")
    local lines = false
    if f then
      lines = {}
      for line in f:lines() do lines[#lines + 1] = line end
      f:close()
    end
    file_cache[path] = lines
  end
  return file_cache[path] or nil
end

-- The comment block that ends on the line above `line`: its lines without
-- the leading dashes, or nil.
local function comment_above(lines, line)
  local i, block = line - 1, {}
  while i >= 1 and lines[i]:match("^%s*%-%-") and not lines[i]:match("^%s*%-%- ?%-%-%-%-") do
    table.insert(block, 1, (lines[i]:gsub("^%s*%-%-%-? ?", "")))
    i = i - 1
  end
  if #block == 0 then return nil end
  return block
end

-- The parameter list on a function's first line: "(model, x_init, ...)".
local function params_on(line)
  return line and line:match("function[%s%w_%.:]*(%b())")
end

-- Where a Lua function is written: the lines of its file and its first line.
local function source_of(f)
  local info = debug.getinfo(f, "S")
  if info.what ~= "Lua" or info.source:sub(1, 1) ~= "@" then return nil end
  local lines = file_lines(info.source:sub(2))
  if not lines or not lines[info.linedefined] then return nil end
  return lines, info.linedefined
end

-- Doc of a Lua function, following a thin wrapper (samplers/init.lua wraps
-- each sampler) to the upvalue it forwards to when the wrapper has none.
local function lua_doc(f, last)
  local lines, at = source_of(f)
  if not lines then return nil end
  local block = comment_above(lines, at)
  -- one-line definitions grouped under one comment (param.lua's conversions)
  local above = at - 1
  while not block and lines[above] and lines[above]:match("^%s*function .*%send%s*$") do
    block = comment_above(lines, above)
    above = above - 1
  end
  if block then return { params = params_on(lines[at]), text = block } end
  for i = 1, 60 do
    local name, up = debug.getupvalue(f, i)
    if not name then break end
    if type(up) == "function" and last then
      local ul, uat = source_of(up)
      if ul and ul[uat]:find(last, 1, true) then
        local b = comment_above(ul, uat)
        if b then return { params = params_on(ul[uat]), text = b } end
      end
    end
  end
  return nil
end

-- The doc comments of the C functions, written in lua/scorch/core_doc.lua
-- as LDoc blocks ending in `@function NAME`: name -> {params =, text =}.
local core_docs
local function core_doc(name)
  if core_docs == nil then
    core_docs = {}
    local path = package.searchpath("scorch.core_doc", package.path)
    local lines = path and file_lines(path) or {}
    for i, line in ipairs(lines) do
      local fname = line:match("^%-%- @function ([%w_%.:]+)")
      if fname then
        local block = comment_above(lines, i) or {}
        -- the signature from the @param names, optional ones in brackets
        local names = {}
        for _, l in ipairs(block) do
          local opt, pn = l:match("^@param(%[?o?p?t?%]?)%s+(%S+)")
          if pn then names[#names + 1] = opt ~= "" and "[" .. pn .. "]" or pn end
        end
        core_docs[fname] = { params = "(" .. table.concat(names, ", ") .. ")", text = block }
      end
    end
  end
  return core_docs[name]
end

-- The name under which the library holds a C function: "randn" for
-- sc.randn, "Tensor:sum" for a tensor method.
local function c_name(f, given)
  local sc = package.loaded["scorch"]
  local last = given and given:match("([%w_]+)$")
  if not sc then return last end
  if last and rawget(sc, last) == f then return last end
  for k, v in pairs(sc) do if v == f then return k end end
  -- a tensor method (x:sum, written ?x.sum or ?x:sum)
  local methods = sc.core and sc.core.Tensor and rawget(sc.core.Tensor, "__methods")
  if type(methods) == "table" then
    if last and methods[last] == f then return "Tensor:" .. last end
    for k, v in pairs(methods) do if v == f then return "Tensor:" .. k end end
  end
  return last
end

-- The module whose table `t` is (its require name), if any.
local function module_name(t)
  for name, v in pairs(package.loaded) do
    if v == t and type(name) == "string" and name:match("^scorch") then return name end
  end
  return nil
end

-- The module file's opening comment.
local function module_doc(t)
  local name = module_name(t)
  if not name then return nil end
  local path = package.searchpath(name, package.path)
  local lines = path and file_lines(path)
  if not lines then return nil end
  local block, i = {}, 1
  while lines[i] and lines[i]:match("^%-%-") do
    block[#block + 1] = lines[i]:gsub("^%-%-%-? ?", "")
    i = i + 1
  end
  if #block == 0 then return nil end
  return { text = block, module = name }
end

--- The documentation of a value: `{params =, text = {lines}}` from the doc
-- comment above a Lua function (or its module header for a module table, the
-- class's comment for a class), lua/scorch/core_doc.lua for C functions.
-- @param v the value (a function or a module or class table)
-- @param name how the user wrote it, e.g. "sc.samplers.heun" (optional)
-- @return the doc table, or nil when there is none
-- @usage local d = require("scorch.repl").doc(sc.samplers.heun, "sc.samplers.heun")
function M.doc(v, name)
  local last = name and name:match("([%w_]+)$")
  if type(v) == "function" then
    if debug.getinfo(v, "S").what == "C" then
      local d = name and core_doc((name:gsub("^sc%.", "")))
      if d then return d end
      local canonical = c_name(v, name)
      d = canonical and core_doc(canonical)
      if d and not d.name then
        d.name = canonical:find(":", 1, true) and canonical or "sc." .. canonical
      end
      return d
    end
    return lua_doc(v, last)
  end
  if type(v) == "table" then
    local d = module_doc(v)
    if d then return d end
    -- a class (sc.nn.Linear): the comment above the line that makes it
    -- (`M.Linear = Module:extend(...)`), else above its constructor
    local mt = getmetatable(v)
    local ctor = rawget(v, "new") or rawget(v, "init") or (mt and rawget(mt, "__call"))
    if type(ctor) == "function" then
      local lines = source_of(ctor)
      if lines and last then
        for i, l in ipairs(lines) do
          if l:match("^%s*[%w_%.]*%f[%w_]" .. last .. "%s*=") or l:match("^local%s+" .. last .. "%s*=") then
            local b = comment_above(lines, i)
            if b then return { text = b } end
          end
        end
      end
      return lua_doc(ctor, last)
    end
  end
  return nil
end

-- ---- help --------------------------------------------------------------------------------

local function rendered(d, name)
  local out = {}
  local sig = name or "?"
  if d.params then
    local p = d.params
    if p:sub(1, 1) ~= "(" then p = "(" .. p .. ")" end
    sig = sig .. p
  end
  out[#out + 1] = sig
  for _, l in ipairs(d.text) do
    local tag, rest = l:match("^@(%w+)%s*(.*)$")
    if tag then rest = rest:gsub("^%b[]%s*", "") end
    if tag == "param" then
      local pn, what = rest:match("^(%S+)%s*(.*)$")
      out[#out + 1] = ("  %-12s %s"):format(pn or rest, what or "")
    elseif tag == "return" or tag == "treturn" then
      out[#out + 1] = "  returns      " .. rest
    elseif tag == "usage" then
      out[#out + 1] = "  e.g.         " .. rest
    elseif tag == "module" or tag == "classmod" or tag == "submodule" then
      out[#out + 1] = nil
    elseif tag then
      out[#out + 1] = "  " .. tag .. ": " .. rest
    else
      out[#out + 1] = "  " .. l
    end
  end
  return table.concat(out, "\n")
end

local GENERAL = [[
scorch REPL: Lua 5.4 with `sc` (also `scorch`) loaded.
  ?NAME, help(NAME)   signature and summary of a function or module (?sc.samplers.heun)
  help                this text
  EXPR                prints the value (tables nested, tensors elided); EXPR; prints nothing
  :time on|off        print how long each command took
  $ COMMAND           run a shell command
  TAB                 complete names (sc.<TAB> lists the submodules), file names in strings
  Ctrl-C              clear the line (stop a running command); Ctrl-D quits
History is kept in ~/.scorch_history (SCORCH_HISTORY=path, or empty for none).
Documentation: docs/tutorial.md, the API reference from `make docs`.]]

--- Help text for a value, or the REPL's own help without one.
-- @param v the value to describe (optional)
-- @param name how it was written, e.g. "sc.randn" (optional)
-- @treturn string
-- @usage print(require("scorch.repl").help_text(sc.randn, "sc.randn"))
function M.help_text(v, name)
  if v == nil and name == nil then return GENERAL end
  if v == nil then return ("%s is nil"):format(name) end
  local d = M.doc(v, name)
  if not d then
    local what = type(v)
    if what == "table" then
      local keys = {}
      for k in pairs(v) do if type(k) == "string" and k:sub(1, 1) ~= "_" then keys[#keys + 1] = k end end
      table.sort(keys)
      return ("%s: a table with no doc comment; fields: %s"):format(name or "value", table.concat(keys, ", "))
    end
    return ("%s: a %s with no doc comment"):format(name or "value", what)
  end
  return rendered(d, name or d.module or d.name)
end

--- Prints help for a value (the REPL's `help(sc.randn)`), or the REPL's help.
-- @param v the value (optional)
-- @usage help(sc.samplers.heun)
function M.help(v, ...)
  local name
  if select("#", ...) > 0 then name = ... end
  if v ~= nil and name == nil then
    -- find the name it has under sc, for the signature line
    local sc = package.loaded["scorch"]
    if sc then
      for k, x in pairs(sc) do
        if x == v then name = "sc." .. k break end
        if type(x) == "table" and k ~= "core" and k ~= "functional" then
          for k2, y in pairs(x) do if y == v then name = "sc." .. k .. "." .. k2 break end end
        end
        if name then break end
      end
    end
  end
  if v == nil and select("#", ...) == 0 then
    print(GENERAL)
  else
    print(M.help_text(v, name))
  end
end

-- ---- commands ----------------------------------------------------------------------------

local timing = false

local function eval_name(expr)
  local chunk = load("return " .. expr, "=help", "t")
  if not chunk then return nil, ("help: cannot read '%s'"):format(expr) end
  local ok, v = pcall(chunk)
  if not ok then return nil, ("help: %s"):format(v) end
  return v
end

--- Handles a line that is a REPL command rather than Lua: `?NAME`, `help`,
-- `help NAME`, `:time on|off`, `$ COMMAND`.
-- @param line the input line
-- @return true when the line was a command (and has run)
-- @usage require("scorch.repl").command("?sc.randn")
function M.command(line)
  local s = line:match("^%s*(.-)%s*$")
  local expr = s:match("^%?%s*(.+)$") or s:match("^help%s+([%w_%.:]+)$")
  if expr then
    local v, err = eval_name((expr:gsub(":", ".")))
    if err then print(err) else print(M.help_text(v, expr)) end
    return true
  end
  if s == "help" or s == "?" then
    print(GENERAL)
    return true
  end
  local t = s:match("^:time%s*(%a*)$")
  if t then
    if t == "on" then timing = true elseif t == "off" then timing = false else timing = not timing end
    print("timing " .. (timing and "on" or "off"))
    return true
  end
  local cmd = s:match("^%$%s*(.*)$")
  if cmd then
    io.stdout:flush()
    if cmd ~= "" then os.execute(cmd) end
    return true
  end
  return false
end

--- Called by the host after each command with its wall-clock time; prints it
-- when `:time on`.
-- @param seconds elapsed time
-- @usage require("scorch.repl").after(0.25)
function M.after(seconds)
  if timing then io.write(("(%.3f s)\n"):format(seconds)) end
end

--- Whether a line's results are to be printed: a trailing `;` suppresses them.
-- @param line the statement as typed
-- @return the line without the `;` and true when it had one
-- @usage local code, quiet = require("scorch.repl").strip_semicolon("x;")
function M.strip_semicolon(line)
  local code = line:match("^(.-);%s*$")
  if code and not code:match(";%s*$") then return code, true end
  return line, false
end

return M
