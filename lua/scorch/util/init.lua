--- Small helpers shared by the generative layer: progress bars, command-line
-- options for example scripts, score-function adapters, grad-mode guards.
-- @module scorch.util
local sc = require "scorch"

local M = {}

M.progress = require "scorch.util.progress"

-- ---- score functions -----------------------------------------------------------

--- as_score_fn(model) -> function(x [, sigma]) returning the score.
-- Accepts a plain function, a model whose call returns the score, an object
-- with a :score(x, sigma) method (energy models), or a distribution from
-- sc.data (score(x), and score_at(x, sigma) when a sigma is passed).
function M.as_score_fn(model)
  local tm = type(model)
  if tm == "function" then return model end
  if tm == "table" or tm == "userdata" then
    -- a distribution: its exact score, smoothed by sigma when one is given
    local ok_at, score_at = pcall(function() return model.score_at end)
    if ok_at and type(score_at) == "function" then
      return function(x, sigma)
        if sigma == nil then return model:score(x) end
        return score_at(model, x, sigma)
      end
    end
    local ok, score = pcall(function() return model.score end)
    if ok and type(score) == "function" then
      return function(x, sigma) return score(model, x, sigma) end
    end
    local mt = getmetatable(model)
    if mt and mt.__call then
      return function(x, sigma) return model(x, sigma) end
    end
  end
  error("scorch: expected a score function, a callable model or an object with :score (got "
    .. tm .. ")", 3)
end

--- Whether scoring with this model needs autograd (energy models: score = -dE/dx).
function M.score_needs_grad(model)
  return type(model) == "table" and model.needs_grad == true
end

-- ---- grad mode -------------------------------------------------------------------

--- Runs fn(...) with recording switched on or off, restoring the previous
-- mode even when fn raises.
function M.with_grad_mode(enabled, fn, ...)
  local prev = sc.set_grad_enabled(enabled)
  local res = table.pack(pcall(fn, ...))
  sc.set_grad_enabled(prev)
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

--- Runs fn(...) with recording on (inside sc.no_grad, for a gradient), restoring the mode after.
-- @usage local g = util.enable_grad(function() return sc.grad(f(x), {x})[1] end)
function M.enable_grad(fn, ...) return M.with_grad_mode(true, fn, ...) end

-- ---- tensors ------------------------------------------------------------------------

--- A [N, D] tensor or a list of {x, y, ...} rows as a list of Lua rows.
function M.rows(x)
  if type(x) == "table" and not sc.is_tensor(x) then return x end
  local shape = x:shape()
  local n, d = shape[1], shape[2] or 1
  local v, out = x:values(), {}
  for i = 1, n do
    local row = {}
    for j = 1, d do row[j] = v[(i - 1) * d + j] end
    out[i] = row
  end
  return out
end

--- fn(first, m) over n items in chunks of at most `size` (first: the chunk's
-- 1-based start, m: its length); the tensors fn returns are joined along
-- dim 1, and fn's second result from the last chunk is passed on.  The
-- collector runs between chunks, so memory is bounded by one chunk (e.g.
-- drawing 1,000 samples 250 at a time).
function M.in_chunks(n, size, fn)
  if size < 1 then error("util.in_chunks: size must be at least 1, got " .. tostring(size), 2) end
  local parts, extra = {}, nil
  for first = 1, n, size do
    parts[#parts + 1], extra = fn(first, math.min(size, n - first + 1))
    collectgarbage()
  end
  return #parts == 1 and parts[1] or sc.cat(parts, 1), extra
end

--- Deprecated name of sc.param.level: a noise level as the [N, 1] column a network receives.
-- @param sigma number or tensor (1 or N values)
-- @param x tensor [N, ...]
-- @return tensor [N, 1] of x's dtype
-- @usage local col = util.sigma_column(0.5, x)
function M.sigma_column(sigma, x) return require("scorch.param").level(sigma, x) end

--- Rejects unknown keys of an options table, listing the valid ones.
-- @param opts table or nil
-- @param valid list of the valid key names
-- @param fn string: the function's full name for the message (e.g. "scorch.samplers.ddpm")
-- @param level error level (default 3: the caller of the function checking its options)
-- @return opts, or an empty table for nil
-- @usage opts = util.check_options(opts, {"steps", "generator"}, "scorch.samplers.ddim")
function M.check_options(opts, valid, fn, level)
  if opts == nil then return {} end
  if type(opts) ~= "table" or sc.is_tensor(opts) then
    error(("%s: options must be a table (got %s)"):format(fn, type(opts)), level or 3)
  end
  local ok = {}
  for _, k in ipairs(valid) do ok[k] = true end
  for k in pairs(opts) do
    if not ok[k] then
      local names = {}
      for _, v in ipairs(valid) do names[#names + 1] = v end
      table.sort(names)
      error(("%s: unknown option '%s' (valid: %s)"):format(fn, tostring(k), table.concat(names, ", ")),
        level or 3)
    end
  end
  return opts
end

--- Whether v can be called: a function, or a table or userdata whose
-- metatable has __call (modules, wrapped models).
-- @param v any value
-- @return boolean
-- @usage assert(util.is_callable(net))
function M.is_callable(v)
  local t = type(v)
  if t == "function" then return true end
  local mt = (t == "table" or t == "userdata") and getmetatable(v)
  return type(mt) == "table" and mt.__call ~= nil
end

--- Copies every field of mod into the table M, refusing a name M already
-- has: how sc.data, sc.losses, sc.metrics and sc.samplers gather their files.
-- @param into the module table being assembled
-- @param mod a table of functions and values
-- @param name string: the module's full name, for the error
-- @return into
-- @usage util.merge_module(M, require "scorch.losses.diffusion", "scorch.losses")
function M.merge_module(into, mod, name)
  for k, v in pairs(mod) do
    if into[k] ~= nil then error(name .. ": duplicate name " .. k, 2) end
    into[k] = v
  end
  return into
end

--- Writes text to a file so that a reader never sees half of it: into
-- `path .. ".tmp"`, then renamed over path (a crash leaves the old file).
-- @param path string
-- @param text string
-- @return path, or nil and a message naming the file
-- @usage assert(util.write_atomic("out/report.json", text))
function M.write_atomic(path, text)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then return nil, ("cannot write %s: %s"):format(tmp, tostring(err)) end
  local ok, werr = f:write(text)
  local closed, cerr = f:close()
  if not ok or not closed then
    os.remove(tmp)
    return nil, ("cannot write %s: %s"):format(tmp, tostring(werr or cerr))
  end
  local renamed, rerr = os.rename(tmp, path)
  if not renamed then
    os.remove(tmp)
    return nil, ("cannot write %s: %s"):format(path, tostring(rerr))
  end
  return path
end

--- A value's shape for error messages: "[3,4]" for a tensor, else its type.
-- @param v any value
-- @return string
-- @usage error("bad x: " .. util.shape_str(x))
function M.shape_str(v)
  if sc.is_tensor(v) then return "[" .. table.concat(v:shape(), ",") .. "]" end
  return type(v)
end

-- ---- scripts ------------------------------------------------------------------------

-- The --help text: the usage line, then every option with its default.
local function help_text(defaults, usage)
  local out, keys = { usage or "options:\n" }, {}
  for k in pairs(defaults) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    out[#out + 1] = ("  --%-14s %s\n"):format(k:gsub("_", "-"), tostring(defaults[k]))
  end
  return table.concat(out)
end

-- The error object of a command-line mistake: {message =, usage =, status = 2}.
-- It prints as both under tostring (plain lua5.4 shows that much).
local usage_error = { __tostring = function(e) return e.message .. "\n" .. e.usage end }

--- Reads command-line options against a table of defaults.
-- "--key value", "--key=value", "--flag" / "--no-flag" for booleans.  Values
-- take the type of the default (numbers are converted; a default of false
-- makes a flag).  Unknown keys raise an error ({message =, usage =, status = 2},
-- which bin/scorch prints as the message and the usage, exiting with 2);
-- --help prints the defaults.
-- @param argv the script's `arg` table (or nil)
-- @param defaults table: every option with its default value
-- @param usage string printed first by --help (default "options:")
-- @return options table, and the set of keys given on the command line
-- @usage local opts = util.parse_args(arg, {steps = 100, quick = false})
function M.parse_args(argv, defaults, usage)
  local opts, given = {}, {}
  for k, v in pairs(defaults) do opts[k] = v end
  local function key_of(s) return (s:gsub("-", "_")) end
  -- A mistake on the command line: the host prints the message and the
  -- usage, without a traceback, and exits with status 2.
  local function fail(msg)
    error(setmetatable({ message = msg, usage = help_text(defaults, usage), status = 2 }, usage_error), 3)
  end
  local i = 1
  argv = argv or {}
  while i <= #argv do
    local a = argv[i]
    if a == "--help" or a == "-h" then
      io.write(help_text(defaults, usage))
      os.exit(0)
    end
    local name, value = a:match("^%-%-([%w_%-]+)=(.*)$")
    if not name then name = a:match("^%-%-([%w_%-]+)$") end
    if not name then fail(("scorch: unexpected argument '%s'"):format(a)) end
    local key = key_of(name)
    local negated = false
    if defaults[key] == nil and key:match("^no_") and type(defaults[key:sub(4)]) == "boolean" then
      key, negated = key:sub(4), true
    end
    local def = defaults[key]
    if def == nil then fail(("scorch: unknown option --%s"):format(name)) end
    given[key] = true
    if type(def) == "boolean" then
      if value == nil then
        opts[key] = not negated
      else
        opts[key] = (value == "true" or value == "1" or value == "yes")
      end
    else
      if value == nil then
        i = i + 1
        value = argv[i]
        if value == nil then fail(("scorch: option --%s needs a value"):format(name)) end
      end
      if type(def) == "number" then
        local num = tonumber(value)
        if not num then fail(("scorch: option --%s expects a number (got '%s')"):format(name, value)) end
        opts[key] = num
      else
        opts[key] = value
      end
    end
    i = i + 1
  end
  return opts, given
end

--- The command line of an example script: options with full-run defaults,
-- named presets that become flags (`--quick`) and change every option the
-- command line did not set, and `--threads N` (N > 0) applied at once.
-- @param argv the script's `arg` table
-- @param spec table: defaults (every option, full-run values), presets
--   (name -> table of option values; optional), usage (text for --help)
-- @return the options table
-- @usage local opts = util.example_args(arg, {defaults = {steps = 20000}, presets = {quick = {steps = 3000}}})
function M.example_args(argv, spec)
  spec = M.check_options(spec, { "defaults", "presets", "usage" }, "scorch.util.example_args")
  local defaults, presets = {}, spec.presets or {}
  for k, v in pairs(spec.defaults or {}) do defaults[k] = v end
  local names = {}
  for name, values in pairs(presets) do
    names[#names + 1] = name
    if defaults[name] ~= nil then
      error(("scorch.util.example_args: preset '%s' clashes with an option"):format(name), 2)
    end
    defaults[name] = false
    for k in pairs(values) do
      if defaults[k] == nil then
        error(("scorch.util.example_args: preset '%s' sets unknown option '%s'"):format(name, k), 2)
      end
    end
  end
  table.sort(names)
  local usage = spec.usage or "options:\n"
  for _, name in ipairs(names) do
    local parts, keys = {}, {}
    for k in pairs(presets[name]) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do parts[#parts + 1] = k:gsub("_", "-") .. "=" .. tostring(presets[name][k]) end
    usage = usage .. ("  --%s sets %s\n"):format(name, table.concat(parts, " "))
  end
  local opts, given = M.parse_args(argv, defaults, usage)
  for _, name in ipairs(names) do
    if opts[name] then
      for k, v in pairs(presets[name]) do
        if not given[k] then opts[k] = v end
      end
    end
  end
  if type(opts.threads) == "number" and opts.threads > 0 then
    sc.set_num_threads(math.tointeger(opts.threads) or error("scorch: --threads expects an integer", 2))
  end
  return opts
end

--- Creates a directory and its missing parents, as `mkdir -p` does but
-- through mkdir(2) per component (sc.core.mkdir; no shell).
-- @param path string
-- @return true, or nil and a message naming the component that failed
-- @usage assert(util.mkdir("out/ncsn_2d"))
function M.mkdir(path)
  if type(path) ~= "string" or path == "" then
    error(("scorch.util.mkdir: expected a non-empty path (got %s)"):format(type(path)), 2)
  end
  return sc.core.mkdir(path, true)
end

--- Makes the folder a file is about to be written to, under the rule of
-- the figure functions (sc.viz.*): at most one directory is created, the
-- file's own folder, and only when its parent already exists.  A deeper
-- missing path is an error naming the missing folder, so a mistyped path
-- never grows a tree of directories (as root, say, anywhere on the disk);
-- make such folders first with util.mkdir.
-- @param path string: the file about to be written
-- @param fn string: the caller's name for the error (e.g. "scorch.viz.scatter")
-- @return true, or nil and a message when mkdir(2) fails
-- @usage assert(util.make_parent("out/fig.png", "scorch.viz.scatter"))
function M.make_parent(path, fn)
  local dir = path:match("^(.*)/[^/]*$")
  if dir == nil or dir == "" or sc.core.is_dir(dir) then return true end
  local up = dir:match("^(.*)/[^/]*$")
  if up == nil then up = "." elseif up == "" then up = "/" end
  if not sc.core.is_dir(up) then
    error(("%s: cannot write %s: folder %s does not exist (a figure creates at most its own folder;"
      .. " make the others first, e.g. sc.util.mkdir)"):format(fn, path, up), 3)
  end
  return sc.core.mkdir(dir, false)
end

--- Seconds since some fixed point (wall clock).
function M.time() return sc.time() end

-- ---- the training loop of the example scripts ---------------------------------

--- train(net, loss_fn, {steps=, lr=, ema=, warmup=100, eta_min=0.05 lr,
--   log_every=, log_window=1, t0=, desc="train"}) -> losses
-- Adam with a linear warm-up and a cosine decay, an EMA of the parameters
-- (when ema is a decay) copied into net at the end, a progress bar, and
-- every log_every steps a line with the mean loss of the last log_window
-- steps.  loss_fn(step) returns the scalar loss of one batch.
function M.train(net, loss_fn, opts)
  opts = M.check_options(opts, { "steps", "lr", "ema", "warmup", "eta_min", "log_every", "log_window", "t0",
    "desc" }, "scorch.util.train")
  local steps, lr = opts.steps, opts.lr
  local adam = sc.optim.Adam(net:parameters(), { lr = lr })
  local lr_sched = sc.optim.lr_scheduler.cosine(adam, { T_max = steps, eta_min = opts.eta_min or lr * 0.05,
    warmup = opts.warmup or 100 })
  local ema = opts.ema and sc.optim.EMA(net, { decay = opts.ema })
  local every, window, t0 = opts.log_every, opts.log_window or 1, opts.t0 or sc.time()
  local losses = {}
  local bar = M.progress.new(steps, { desc = opts.desc or "train" })
  for step = 1, steps do
    local loss = loss_fn(step)
    adam:zero_grad()
    loss:backward()
    adam:step()
    lr_sched:step()
    if ema then ema:update() end
    losses[step] = loss:item()
    bar:update(1, { loss = losses[step] })
    if every and step % every == 0 then
      local avg = 0
      for i = step - window + 1, step do avg = avg + losses[math.max(i, 1)] / window end
      print(("  step %6d  loss %.4f  (%.0fs)"):format(step, avg, sc.time() - t0))
    end
  end
  bar:close()
  if ema then ema:copy_to(net) end
  return losses
end

return M
