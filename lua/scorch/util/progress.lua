--- A terminal progress bar: count, rate, ETA and running values (a loss),
-- redrawn with \r on stderr.  When stderr is not a terminal (a log file) it
-- writes the same text as a plain line every `log_interval` seconds (30) and
-- once more at the end, so short loops leave logs and specs clean while long
-- jobs still report.  On a terminal it waits `delay` seconds before drawing,
-- so loops that finish within a second never show one.
-- @module scorch.util.progress
local sc = require "scorch"

local M = {}

local tty_cache
-- Whether stderr is a terminal.  Lua cannot ask isatty(2) itself; the shell's
-- `test -t 2` inherits our stderr and can.  SCORCH_PROGRESS=0/1 overrides.
function M.stderr_is_terminal()
  local env = os.getenv("SCORCH_PROGRESS")
  if env == "0" then return false end
  if env == "1" then return true end
  if tty_cache == nil then
    local ok, _, code = os.execute("test -t 2")
    tty_cache = (ok == true) or code == 0
  end
  return tty_cache
end

local function clock() return sc.time() end

local function fmt_time(s)
  if s ~= s or s == math.huge then return "?" end
  s = math.floor(s + 0.5)
  if s >= 3600 then return ("%d:%02d:%02d"):format(s // 3600, s % 3600 // 60, s % 60) end
  return ("%d:%02d"):format(s // 60, s % 60)
end

local function fmt_value(v)
  if type(v) ~= "number" then return tostring(v) end
  local a = math.abs(v)
  if a ~= 0 and (a < 1e-3 or a >= 1e5) then return ("%.3e"):format(v) end
  return ("%.4f"):format(v)
end

local Progress = {}
Progress.__index = Progress

-- progress(total [, {desc=, force=, enabled=, stream=, width=, delay=,
--                    interval=, smoothing=, log_interval=, clock=}])
-- total may be nil (unknown length: no bar, no ETA).  `force = true` draws
-- the bar even when stderr is not a terminal; `enabled = false` (or
-- SCORCH_PROGRESS=0) never writes anything.  Without a terminal the bar
-- becomes a line every log_interval seconds; clock (default sc.time) is
-- there for tests.
function M.new(total, opts)
  opts = require("scorch.util").check_options(opts, { "desc", "enabled", "force", "clock", "stream", "width",
    "log_interval", "delay", "interval", "smoothing" }, "scorch.util.progress")
  if total ~= nil and (type(total) ~= "number" or total < 0) then
    error("scorch.util.progress: total must be a non-negative number or nil", 2)
  end
  local enabled = opts.enabled
  local log = false
  if enabled == nil then
    enabled = opts.force or M.stderr_is_terminal()
    log = not enabled and os.getenv("SCORCH_PROGRESS") ~= "0"
  end
  local now = opts.clock or clock
  local self = setmetatable({
    total = total, n = 0, desc = opts.desc or "",
    stream = opts.stream or io.stderr, width = opts.width or 24,
    enabled = enabled and true or false, log = log, clock = now,
    log_interval = opts.log_interval or 30, logged = false,
    delay = opts.delay or (opts.force and 0 or 1.0),
    interval = opts.interval or 0.1,
    smoothing = opts.smoothing or 0.1, -- running values: exponential average
    start = now(), last_draw = -math.huge, drawn = false, closed = false,
    values = {}, order = {},
  }, Progress)
  return self
end

-- Records running values ({loss = 0.12}); numbers are smoothed.
function Progress:set(values)
  for k, v in pairs(values) do
    if self.values[k] == nil then self.order[#self.order + 1] = k end
    local old = self.values[k]
    if type(v) == "number" and type(old) == "number" and v == v then
      self.values[k] = old + self.smoothing * (v - old)
    else
      self.values[k] = v
    end
  end
  table.sort(self.order)
end

-- Advances by k (default 1) and redraws when due.
function Progress:update(k, values)
  if type(k) == "table" then k, values = 1, k end
  self.n = self.n + (k or 1)
  if values then self:set(values) end
  if self.log then
    local now = self.clock()
    if now - math.max(self.start, self.last_draw) >= self.log_interval then
      self.last_draw = now
      self:log_line(now)
    end
    return self
  end
  if not self.enabled then return self end
  local now = self.clock()
  if now - self.start < self.delay then return self end
  if now - self.last_draw < self.interval and not (self.total and self.n >= self.total) then
    return self
  end
  self.last_draw = now
  self:draw(now)
  return self
end

function Progress:line(now)
  now = now or self.clock()
  local elapsed = now - self.start
  local rate = elapsed > 0 and self.n / elapsed or 0
  local parts = {}
  if self.desc ~= "" then parts[#parts + 1] = self.desc end
  if self.total and self.total > 0 then
    local frac = math.min(self.n / self.total, 1)
    local fill = math.floor(frac * self.width + 0.5)
    parts[#parts + 1] = ("%3d%% [%s%s] %d/%d"):format(math.floor(frac * 100), ("#"):rep(fill),
      ("."):rep(self.width - fill), self.n, self.total)
  else
    parts[#parts + 1] = tostring(self.n)
  end
  local eta = (self.total and rate > 0) and (self.total - self.n) / rate or math.huge
  parts[#parts + 1] = ("%s<%s"):format(fmt_time(elapsed), self.total and fmt_time(eta) or "?")
  parts[#parts + 1] = rate >= 1 and ("%.1f it/s"):format(rate)
    or ("%.2f s/it"):format(rate > 0 and 1 / rate or 0)
  for _, k in ipairs(self.order) do
    parts[#parts + 1] = k .. "=" .. fmt_value(self.values[k])
  end
  return table.concat(parts, " ")
end

function Progress:log_line(now)
  self.stream:write(self:line(now), "\n")
  self.stream:flush()
  self.logged = true
end

-- ---- print while a bar is shown ------------------------------------------------
-- A bar ends in \r, not a newline, so a plain `print` would land on the bar's
-- line.  While a bar is on screen the global print is wrapped: it erases the
-- bar, prints, and draws the bar again below (tqdm.write, made automatic).
-- The original comes back when the last bar closes.
local shown = {}          -- bars on screen, most recent last
local plain_print         -- the print to restore

local function erase(bar)
  bar.stream:write("\r", (" "):rep(bar.last_len or 0), "\r")
  bar.stream:flush()
end

local function print_over_bars(...)
  local bar = shown[#shown]
  if bar then erase(bar) end
  plain_print(...)
  io.stdout:flush()
  if bar then bar:draw() end
end

local function show(bar)
  for _, b in ipairs(shown) do if b == bar then return end end
  shown[#shown + 1] = bar
  if #shown == 1 and print ~= print_over_bars then
    plain_print = print
    _G.print = print_over_bars
  end
end

local function hide(bar)
  for i = #shown, 1, -1 do if shown[i] == bar then table.remove(shown, i) end end
  if #shown == 0 and print == print_over_bars then _G.print = plain_print end
end

--- Writes a line of text above the bar (the bar is erased and drawn again),
-- what `print` does anyway while a bar is shown.
-- @param ... values, as for print
-- @usage bar:write("checkpoint saved")
function Progress:write(...)
  if self.drawn and not self.closed then erase(self) end
  ;(plain_print or print)(...)
  io.stdout:flush()
  if self.drawn and not self.closed then self:draw() end
  return self
end

function Progress:draw(now)
  show(self)
  local text = self:line(now)
  -- pad over a longer previous line
  local pad = math.max(0, (self.last_len or 0) - #text)
  self.stream:write("\r", text, (" "):rep(pad))
  self.stream:flush()
  self.last_len = #text
  self.drawn = true
end

-- Final redraw and newline (only if something was drawn or it is forced).
function Progress:close()
  if self.closed then return self end
  self.closed = true
  if self.log then -- a last line for jobs that wrote any
    if self.logged then self:log_line(self.clock()) end
    return self
  end
  if self.enabled and (self.drawn or self.clock() - self.start >= self.delay) then
    self:draw()
    self.stream:write("\n")
    self.stream:flush()
  end
  hide(self)
  return self
end

function Progress:elapsed() return self.clock() - self.start end

M.Progress = Progress
setmetatable(M, { __call = function(_, ...) return M.new(...) end })
return M
