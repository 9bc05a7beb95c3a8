--- Run configurations: a plain Lua file returning a table, merged over the
-- defaults of its family, with `key=value` overrides of nested fields
-- (`optim.lr=1e-4`) checked against the type of the value they replace.
-- A misspelt key anywhere is an error that lists the valid keys of its
-- table and the nearest one.
-- @module scorch.run.config
local util = require "scorch.util"

local M = {}

-- The fields every run has, whatever its family; a family adds `model`,
-- `objective` and `sample` (scorch.run.families).
M.common = {
  name = "run",          -- the run's name; its folder is runs/<name> unless out is set
  out = "",              -- the run folder ("" = runs/<name>)
  family = "",           -- ddpm | ncsn | score_matching | edm (scorch.run.families)
  seed = 0,
  threads = 0,           -- 0 keeps the current thread count
  -- a toy 2-D set (sc.data.toy's names) or images: shapes, fashion_mnist; for images, size is the
  -- number of training images (0: 10000 shapes, all of Fashion-MNIST), image_size the shapes' side
  -- (0: 28), dequantize adds U[0, 1)/256 noise to the 8-bit levels; half_width: the checkerboard's
  -- (0: its own default, 2)
  data = { name = "eight_gaussians", size = 0, image_size = 0, dequantize = true, half_width = 0.0 },
  -- schedule: cosine (warm-up, then down to eta_min·lr), constant (after the warm-up), or linear_tail
  -- (constant, then linear down to eta_min·lr over the last `tail` of the steps, as the 2-D examples)
  optim = { lr = 1e-3, beta1 = 0.9, beta2 = 0.999, weight_decay = 0, warmup = 100, schedule = "cosine", eta_min = 0.05,
    grad_clip = 0, tail = 0.3 },
  ema = { decay = 0.999 },
  batch = 512,
  steps = 1000,
  checkpoint = { every = 500, keep = 3 },
  log = { every = 10 },
  on_nonfinite = "stop", -- stop | skip
  -- data-parallel over the ranks of mpirun (sc.dist): each rank takes batch / ranks rows of every
  -- step, gradients are summed over ranks, rank 0 alone writes the run folder
  dist = false,
}

-- Fields a resumed run may change (everything else must match the
-- checkpoint's config).
M.resumable = { steps = true, threads = true, checkpoint = true, log = true, sample = true, out = true }

local function is_list(t) return type(t) == "table" and (next(t) == nil or t[1] ~= nil) end

--- A deep copy of a plain table (no metatables, no cycles).
-- @param v any value
-- @return the copy
-- @usage local c = config.copy(cfg)
function M.copy(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = M.copy(x) end
  return t
end

-- Levenshtein distance, for "did you mean".
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks, function(x, y) return tostring(x) < tostring(y) end)
  return ks
end

-- "unknown key 'optim.lrr' (did you mean 'lr'? valid: ...)"
local function unknown_key(path, key, schema, fn)
  local keys, best, bd = sorted_keys(schema), nil, math.huge
  for _, k in ipairs(keys) do
    local d = distance(tostring(key), k)
    if d < bd then best, bd = k, d end
  end
  local hint = (best and bd <= math.max(2, #tostring(key) // 3)) and ("did you mean '%s'? "):format(best) or ""
  local names = {}
  for _, k in ipairs(keys) do names[#names + 1] = k end
  error(("%s: unknown key '%s' (%svalid: %s)"):format(fn, path, hint, table.concat(names, ", ")), 0)
end

local function type_name(v)
  if math.type(v) == "integer" then return "integer" end
  return type(v)
end

-- Whether value fits where the default is; integers where integers are
-- expected, any number where a float is.
local function fits(default, value)
  if type(default) == "number" then
    if type(value) ~= "number" then return false end
    return math.type(default) ~= "integer" or math.type(value) == "integer"
  end
  return type(default) == type(value)
end

-- Checks cfg against schema (recursively), filling missing fields from it.
local function merge(schema, cfg, path, fn)
  local out = {}
  for k, v in pairs(schema) do out[k] = M.copy(v) end
  if cfg == nil then return out end
  for k, v in pairs(cfg) do
    local p = path == "" and tostring(k) or path .. "." .. tostring(k)
    local d = schema[k]
    if d == nil then unknown_key(p, k, schema, fn) end
    if type(d) == "table" and not is_list(d) then
      if type(v) ~= "table" then
        error(("%s: '%s' must be a table of %s (got %s)"):format(fn, p, table.concat(sorted_keys(d), ", "),
          type_name(v)), 0)
      end
      out[k] = merge(d, v, p, fn)
    else
      if not fits(d, v) then
        error(("%s: '%s' must be %s (got %s %s)"):format(fn, p, type_name(d) == "integer" and "an integer"
          or "a " .. type_name(d), type_name(v), tostring(v)), 0)
      end
      -- an integer where a float is expected becomes that float (4 -> 4.0), so a config is written
      -- (and its example run named) the same however its numbers were typed
      if math.type(d) == "float" and math.type(v) == "integer" then v = v + 0.0 end
      out[k] = M.copy(v)
    end
  end
  return out
end

--- The schema of a family: the common fields plus the family's own.
-- @param family string (a name in scorch.run.families)
-- @return table of defaults
-- @usage local s = config.schema("ddpm")
function M.schema(family)
  local families = require "scorch.run.families"
  local fam = families.get(family, "scorch.run.config")
  local s = M.copy(M.common)
  for k, v in pairs(fam.defaults) do
    if type(s[k]) == "table" and type(v) == "table" then -- the family's fields over the common ones
      for f, x in pairs(v) do s[k][f] = M.copy(x) end
    else
      s[k] = M.copy(v)
    end
  end
  s.family = family
  return s
end

--- Resolves a config table: checks every key and type against its family's
-- schema and fills what it leaves out.
-- @param cfg table (must name its family)
-- @param fn string: the caller's name for errors (default "scorch.run.config")
-- @return the resolved config (a new table)
-- @usage local c = config.resolve{family = "ddpm", steps = 100}
function M.resolve(cfg, fn)
  fn = fn or "scorch.run.config"
  if type(cfg) ~= "table" then error(("%s: a config must be a table (got %s)"):format(fn, type(cfg)), 0) end
  if type(cfg.family) ~= "string" or cfg.family == "" then
    local names = require("scorch.run.families").names()
    error(("%s: the config must name its family (family = %s)"):format(fn, table.concat(names, " | ")), 0)
  end
  local out = merge(M.schema(cfg.family), cfg, "", fn)
  M.validate(out, fn)
  return out
end

local function positive_int(v, p, fn, zero_ok)
  if math.type(v) ~= "integer" or v < (zero_ok and 0 or 1) then
    error(("%s: '%s' must be a %s integer (got %s)"):format(fn, p, zero_ok and "non-negative" or "positive",
      tostring(v)), 0)
  end
end

--- Range checks beyond types (positive counts, known choices).
-- @param cfg a resolved config
-- @param fn string: the caller's name for errors
-- @usage config.validate(cfg, "scorch train")
function M.validate(cfg, fn)
  positive_int(cfg.steps, "steps", fn)
  positive_int(cfg.batch, "batch", fn)
  positive_int(cfg.checkpoint.every, "checkpoint.every", fn)
  positive_int(cfg.checkpoint.keep, "checkpoint.keep", fn)
  positive_int(cfg.log.every, "log.every", fn)
  positive_int(cfg.threads, "threads", fn, true)
  if math.type(cfg.seed) ~= "integer" then error(fn .. ": 'seed' must be an integer", 0) end
  if cfg.on_nonfinite ~= "stop" and cfg.on_nonfinite ~= "skip" then
    error(("%s: 'on_nonfinite' must be stop or skip (got %s)"):format(fn, cfg.on_nonfinite), 0)
  end
  local s = cfg.optim.schedule
  if s ~= "cosine" and s ~= "constant" and s ~= "linear_tail" then
    error(("%s: 'optim.schedule' must be cosine, constant or linear_tail (got %s)"):format(fn, s), 0)
  end
  if not (cfg.optim.tail > 0 and cfg.optim.tail <= 1) then
    error(("%s: 'optim.tail' must be in (0, 1] (got %s)"):format(fn, cfg.optim.tail), 0)
  end
  if not (cfg.optim.lr > 0) then error(fn .. ": 'optim.lr' must be positive", 0) end
  for _, b in ipairs { "beta1", "beta2" } do
    local v = cfg.optim[b]
    if not (v >= 0 and v < 1) then error(("%s: 'optim.%s' must be in [0, 1) (got %s)"):format(fn, b, v), 0) end
  end
  positive_int(cfg.optim.warmup, "optim.warmup", fn, true)
  if cfg.ema.decay < 0 or cfg.ema.decay >= 1 then error(fn .. ": 'ema.decay' must be in [0, 1)", 0) end
  if cfg.name == "" or cfg.name:find("[/%s]") then
    error(("%s: 'name' must be a non-empty word without '/' or spaces (got '%s')"):format(fn, cfg.name), 0)
  end
  if cfg.data.half_width ~= 0 and (cfg.data.name ~= "checkerboard" or cfg.data.half_width < 0) then
    error(("%s: 'data.half_width' is the checkerboard's (positive), or 0 (got %s for %s)"):format(fn,
      cfg.data.half_width, cfg.data.name), 0)
  end
  local fam = require("scorch.run.families").get(cfg.family, fn)
  if fam.validate then fam.validate(cfg, fn) end
end

-- The value of an override's text, typed like the value it replaces.
local function parse_value(text, default, path, fn)
  if type(default) == "number" then
    local v = math.tointeger(tonumber(text)) or tonumber(text)
    if v == nil then error(("%s: %s expects a number (got '%s')"):format(fn, path, text), 0) end
    if math.type(default) == "integer" then
      v = math.tointeger(v)
      if v == nil then error(("%s: %s expects an integer (got '%s')"):format(fn, path, text), 0) end
    else
      v = v + 0.0
    end
    return v
  elseif type(default) == "boolean" then
    if text == "true" or text == "1" or text == "yes" then return true end
    if text == "false" or text == "0" or text == "no" then return false end
    error(("%s: %s expects true or false (got '%s')"):format(fn, path, text), 0)
  elseif type(default) == "string" then
    return text
  end
  error(("%s: %s is a %s and cannot be set from the command line"):format(fn, path, type(default)), 0)
end

--- Applies `key=value` overrides (dotted keys reach nested fields) to a
-- resolved config, in order; each value takes the type of the field it
-- replaces.  `family=` may not be overridden.
-- @param cfg a resolved config (changed in place)
-- @param list strings "a.b=v"
-- @param fn string: the caller's name for errors
-- @return cfg
-- @usage config.override(cfg, {"optim.lr=1e-4", "steps=200"})
function M.override(cfg, list, fn)
  fn = fn or "scorch.run.config"
  local schema = M.schema(cfg.family)
  for _, item in ipairs(list or {}) do
    local key, text = tostring(item):match("^([%w_%.]+)=(.*)$")
    if not key then error(("%s: expected key=value, got '%s'"):format(fn, tostring(item)), 0) end
    if key == "family" then error(fn .. ": the family of a config cannot be overridden", 0) end
    local t, s, path = cfg, schema, ""
    local parts = {}
    for part in key:gmatch("[^%.]+") do parts[#parts + 1] = part end
    for i, part in ipairs(parts) do
      path = path == "" and part or path .. "." .. part
      if s[part] == nil then unknown_key(path, part, s, fn) end
      if i < #parts then
        if type(s[part]) ~= "table" then
          error(("%s: '%s' is a %s, not a table with fields"):format(fn, path, type_name(s[part])), 0)
        end
        t, s = t[part], s[part]
      else
        if type(s[part]) == "table" then
          error(("%s: '%s' is a table; set one of its fields (%s)"):format(fn, path,
            table.concat(sorted_keys(s[part]), ", ")), 0)
        end
        t[part] = parse_value(text, s[part], path, fn)
      end
    end
  end
  M.validate(cfg, fn)
  return cfg
end

--- Loads a config file (Lua returning a table) in an empty environment.
-- @param path string
-- @return the table the file returns (not yet resolved)
-- @usage local raw = config.load_file("configs/ddpm_2d.lua")
function M.load_file(path)
  if type(path) ~= "string" then error("scorch.run.config.load_file: path must be a string", 2) end
  local f, err = io.open(path, "rb")
  if not f then error(("scorch.run: cannot read config %s: %s"):format(path, tostring(err)), 0) end
  local text = f:read("a")
  f:close()
  local chunk, perr = load(text, "@" .. path, "t", { math = math })
  if not chunk then error(("scorch.run: config %s: %s"):format(path, perr), 0) end
  local ok, v = pcall(chunk)
  if not ok then error(("scorch.run: config %s: %s"):format(path, tostring(v)), 0) end
  if type(v) ~= "table" then
    error(("scorch.run: config %s must return a table (got %s)"):format(path, type(v)), 0)
  end
  return v
end

--- A value as Lua source that `load` gives back exactly (floats with 17
-- digits, keys sorted): how configs and checkpoint state are written.
-- @param v a number, string, boolean or table of those
-- @param indent string (default ""; nil writes one line)
-- @return string
-- @usage print(config.serialize({lr = 1e-3}))
function M.serialize(v, indent)
  local t = type(v)
  if t == "number" then
    if math.type(v) == "integer" then
      -- "-9223372036854775808" would read back as a float (minus of an overflowing literal)
      return v == math.mininteger and "math.mininteger" or tostring(v)
    end
    if v ~= v then return "0/0" end
    if v == math.huge then return "math.huge" end
    if v == -math.huge then return "-math.huge" end
    local s = ("%.17g"):format(v)
    if not s:find("[%.eEn]") then s = s .. ".0" end
    return s
  elseif t == "string" then
    return ("%q"):format(v)
  elseif t == "boolean" then
    return tostring(v)
  elseif t == "table" then
    local inner = indent and indent .. "  "
    local parts = {}
    if is_list(v) and #v > 0 then
      for _, x in ipairs(v) do parts[#parts + 1] = M.serialize(x, inner) end
    else
      for _, k in ipairs(sorted_keys(v)) do
        local key = (type(k) == "string" and k:match("^[%a_][%w_]*$")) and k or "[" .. M.serialize(k) .. "]"
        parts[#parts + 1] = key .. " = " .. M.serialize(v[k], inner)
      end
    end
    if #parts == 0 then return "{}" end
    if indent then return "{\n" .. inner .. table.concat(parts, ",\n" .. inner) .. ",\n" .. indent .. "}" end
    return "{ " .. table.concat(parts, ", ") .. " }"
  end
  error("scorch.run.config.serialize: cannot write a " .. t, 2)
end

--- Reads back what serialize wrote.
-- @param text string
-- @param what string naming the source, for errors
-- @return the value, or nil and a message
-- @usage local v = config.deserialize("{ lr = 0.001 }", "checkpoint")
function M.deserialize(text, what)
  local chunk, err = load("return " .. tostring(text), "=" .. (what or "value"), "t", { math = math })
  if not chunk then return nil, err end
  local ok, v = pcall(chunk)
  if not ok then return nil, tostring(v) end
  return v
end

--- The first difference between two resolved configs outside the fields a
-- resumed run may change, as "path: a vs b", or nil.
-- @param a table (the checkpoint's config)
-- @param b table (the current config)
-- @return string or nil
-- @usage local d = config.first_difference(saved, cfg)
function M.first_difference(a, b)
  local function walk(x, y, path, top)
    local keys, seen = {}, {}
    for k in pairs(x) do keys[#keys + 1], seen[k] = k, true end
    for k in pairs(y) do if not seen[k] then keys[#keys + 1] = k end end
    table.sort(keys, function(p, q) return tostring(p) < tostring(q) end)
    for _, k in ipairs(keys) do
      if not (top and M.resumable[k]) then
        local p = path == "" and tostring(k) or path .. "." .. tostring(k)
        local u, v = x[k], y[k]
        if type(u) == "table" and type(v) == "table" then
          local d = walk(u, v, p, false)
          if d then return d end
        elseif u ~= v then
          local function show(w) return w == nil and "(absent)" or M.serialize(w) end
          return ("%s: %s in the checkpoint, %s now"):format(p, show(u), show(v))
        end
      end
    end
  end
  return walk(a, b, "", true)
end

--- Writes a resolved config as a Lua file (atomically).
-- @param path string
-- @param cfg table
-- @return path, or nil and a message
-- @usage assert(config.write("runs/x/config.lua", cfg))
function M.write(path, cfg)
  return util.write_atomic(path, "-- resolved by scorch train; `scorch train " .. path:gsub("/config%.lua$", "")
    .. "` resumes the run\nreturn " .. M.serialize(cfg, "") .. "\n")
end

return M
