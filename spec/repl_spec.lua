-- Specs for the `scorch` host (csrc/host/scorch.c): script mode, options,
-- module paths and the REPL, driven through pipes and, when script(1) is
-- installed, a real pseudo-terminal.  Run from the repository root with
-- bin/scorch built; `make test` and `make sanitize` name the host to test
-- in SCORCH_BIN instead.

local EXE = os.getenv("SCORCH_BIN") or "bin/scorch"

local function quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Every test goes through here, so a missing build fails loudly instead of
-- looking like a host bug.
local function exe()
  local f = io.open(EXE, "rb")
  if not f then
    error(EXE .. " not found (from the current directory); build it "
      .. "(make) and run busted from the "
      .. "repository root", 2)
  end
  f:close()
  return EXE
end

-- Run a shell command; returns its stdout and exit code.
local function sh(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local _, how, code = p:close()
  assert.are.equal("exit", how, "command killed by a signal: " .. cmd)
  return out, code
end

local function write_file(name, text)
  local f = assert(io.open(name, "w"))
  f:write(text)
  f:close()
  return name
end

local function read_file(name)
  local f = io.open(name, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function lines_of(text)
  local t = {}
  for line in text:gmatch("([^\n]*)\n") do t[#t + 1] = line end
  return t
end

local function index_of(list, value, from)
  for i = from or 1, #list do
    if list[i] == value then return i end
  end
  return nil
end

local function have(program)
  local _, code = sh("command -v " .. program .. " >/dev/null 2>&1")
  return code == 0
end

-- Feed lines to `scorch -i` through a pipe; stdout and stderr together.
local function repl(lines, extra_args)
  local input = write_file(os.tmpname(), table.concat(lines, "\n") .. "\n")
  local out, code = sh(exe() .. " -i " .. (extra_args or "") .. " < "
    .. quote(input) .. " 2>&1")
  os.remove(input)
  return out, code
end

-- A fresh directory, removed by the caller with rm -rf.
local function temp_dir()
  local name = os.tmpname()
  os.remove(name)
  assert(os.execute("mkdir -p " .. quote(name)))
  return name
end

describe("scorch host", function()
  it("is built at bin/scorch", function()
    assert.is_truthy(io.open(exe(), "rb"))
  end)

  describe("REPL through a pipe", function()
    it("prints the value of an expression", function()
      local out, code = repl{ "1+2" }
      assert.are.equal("3\n", out)
      assert.are.equal(0, code)
    end)

    it("prints every returned value, tab separated, via tostring", function()
      local out = repl{
        '1, "a", nil, true',
        'setmetatable({}, {__tostring = function() return "T<2x3>" end})',
      }
      assert.are.same({ "1\ta\tnil\ttrue", "T<2x3>" }, lines_of(out))
    end)

    it("prints nothing for a statement and keeps its effects", function()
      local out = repl{ "x = 5", "local y = 1", "x * 2" }
      assert.are.equal("10\n", out)
    end)

    it("continues an unfinished statement on the next lines", function()
      local out = repl{ "function f(x)", "return x*2", "end", "f(21)" }
      assert.are.equal("42\n", out)
    end)

    it("continues a multi-line table constructor", function()
      local out = repl{ "t = {", "  1, 2,", "  3 }", "#t" }
      assert.are.equal("3\n", out)
    end)

    it("reports an error with a traceback and goes on", function()
      local out, code = repl{ 'error("boom")', "40+2" }
      local lines = lines_of(out)
      local at = index_of(lines, "stdin:1: boom")
      assert.is_truthy(at, "no error line in:\n" .. out)
      assert.are.equal("stack traceback:", lines[at + 1])
      assert.is_truthy(index_of(lines, "42", at), "REPL stopped after the error:\n" .. out)
      assert.are.equal(0, code)
    end)

    it("reports a syntax error and goes on", function()
      local out = repl{ "1 +* 2", "6*7" }
      assert.matches("^stdin:1: unexpected symbol near [^\n]*\n42\n$", out)
    end)

    it("describes a non-string error object", function()
      local out = repl{
        "error({})",
        'error(setmetatable({}, {__tostring = function() return "custom" end}))',
      }
      assert.matches("%(error object is a table value%)", out)
      assert.matches("\ncustom\nstack traceback:", out)
    end)

    it("reports input that ends inside a statement", function()
      local out = repl{ "1", "function g(" }
      assert.matches("^1\nstdin:%d+: .*<eof>\n$", out)
    end)

    it("has sc and scorch as the same library table", function()
      local out = repl{ "sc == scorch", "type(sc)" }
      assert.are.same({ "true", "table" }, lines_of(out))
    end)

    it("enters the REPL after a script with -i", function()
      local script = write_file(os.tmpname(), "answer = 41\n")
      local out = repl({ "answer + 1" }, quote(script))
      os.remove(script)
      assert.are.equal("42\n", out)
    end)

    it("stops a running loop on SIGINT and keeps going", function()
      local marker = os.tmpname()
      os.remove(marker)
      local input = write_file(os.tmpname(),
        ("io.open(%q, 'w'):close() while true do end\nprint('after')\n"):format(marker))
      local output = os.tmpname()
      -- Wait for the loop to start (the marker file), interrupt it, and
      -- never wait forever if the interrupt is lost.
      local status = sh(table.concat({
        exe() .. " -i < " .. quote(input) .. " > " .. quote(output) .. " 2>&1 &",
        "pid=$!",
        "n=0; while [ ! -e " .. quote(marker) .. " ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done",
        "kill -INT $pid",
        "n=0; while kill -0 $pid 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done",
        "kill -KILL $pid 2>/dev/null",
        "wait $pid; echo $?",
      }, "\n"))
      local out = read_file(output) or ""
      os.remove(input); os.remove(output); os.remove(marker)
      assert.are.equal("0\n", status, "host did not survive SIGINT:\n" .. out)
      local lines = lines_of(out)
      local at = index_of(lines, "interrupted!")
      assert.is_truthy(at, "no 'interrupted!' in:\n" .. out)
      assert.is_truthy(index_of(lines, "after", at))
    end)

    it("prints plain tables nested and truncated", function()
      local out = repl{
        "{shape = {2, 3}, sigmas = {1, 0.5, 0.25}, name = 'x'}",
        "{a = {b = {c = {d = {}}}}}",
        "t = {} for i = 1, 50 do t[i] = i end",
        "t",
        "{}",
      }
      local lines = lines_of(out)
      assert.are.equal('{name = "x", shape = {2, 3}, sigmas = {1, 0.5, 0.25}}', lines[1])
      assert.are.equal("{a = {b = {c = {...}}}}", lines[2])
      assert.are.same({ "{", "  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,",
        "  ... (30 more)", "}", "{}" }, { table.unpack(lines, 3) })
    end)

    it("prints a long tensor on lines of at most 80 columns (and the footer), elided past 1000 values", function()
      local out = repl{ "sc.randn(1000)", "sc.randn(5000)" }
      local longest = 0
      for _, line in ipairs(lines_of(out)) do longest = math.max(longest, #line) end
      assert.is_true(longest <= 120, "a line of " .. longest .. " characters")
      assert.matches("shape=%[1000%]", out)
      assert.matches("%.%.%.", out)
      assert.matches("shape=%[5000%]", out)
    end)

    it("prints an expression that spans lines", function()
      local out = repl{ "sc.tensor({1, 2,", "  3})", "math.max(1,", "2)" }
      assert.are.same({ "tensor([1., 2., 3.], dtype=float32, shape=[3])", "2" }, lines_of(out))
    end)

    it("prints nothing for a line ending in ';' but runs it", function()
      local out = repl{ "1 + 2;", "x = sc.randn(4);", "x:numel()", "y = 7;  ", "y" }
      assert.are.same({ "4", "7" }, lines_of(out))
    end)

    it("prints help for ?NAME and help(NAME) from the doc comments", function()
      local out = repl{ "?sc.samplers.heun", "help(sc.randn)", "? sc.nn.Linear", "?sc.nope" }
      local lines = lines_of(out)
      assert.are.equal("sc.samplers.heun(model, x_init, levels, opts)", lines[1])
      assert.matches("Heun", lines[2])
      assert.is_truthy(index_of(lines, "sc.randn(...)"), out)
      assert.matches("N%(0, 1%)", out)
      assert.matches("\nsc%.nn%.Linear\n", out)
      assert.matches("sc%.nope is nil", out)
    end)

    it("has help, :time and a $ shell escape", function()
      local out = repl{ "help", ":time on", "1", ":time off", "2", "$ echo from-the-shell" }
      assert.matches("%?NAME", out)
      assert.matches(":time on", out)
      assert.matches("\ntiming on\n1\n%(%d+%.%d+ s%)\ntiming off\n2\nfrom%-the%-shell\n$", out)
    end)
  end)

  describe("script mode", function()
    local script

    before_each(function()
      script = write_file(os.tmpname(),
        "print(#arg, arg[0], arg[1], arg[2], select('#', ...))\n")
    end)

    after_each(function()
      os.remove(script)
    end)

    it("sets arg and ... as lua does", function()
      local out, code = sh(exe() .. " " .. quote(script) .. " a b")
      assert.are.equal(("2\t%s\ta\tb\t2\n"):format(script), out)
      assert.are.equal(0, code)
    end)

    it("puts the interpreter and options at negative indices", function()
      local s = write_file(os.tmpname(), "print(arg[-3], arg[-2], arg[-1], arg[0], arg[1])\n")
      local out = sh(exe() .. " -e 'x=1' " .. quote(s) .. " a")
      os.remove(s)
      assert.are.equal(("%s\t-e\tx=1\t%s\ta\n"):format(exe(), s), out)
    end)

    it("treats what follows -- as the script", function()
      local out = sh(exe() .. " -- " .. quote(script) .. " -x")
      assert.are.equal(("1\t%s\t-x\tnil\t1\n"):format(script), out)
    end)

    it("runs stdin as the script for -", function()
      local out = sh("echo 'print(select(\"#\", ...), ...)' | " .. exe() .. " - p q")
      assert.are.equal("2\tp\tq\n", out)
    end)

    it("runs piped stdin as a script when given no arguments", function()
      local out = sh("echo 'print(type(sc), 6*7)' | " .. exe())
      assert.are.equal("table\t42\n", out)
    end)

    it("runs -e statements in order, before the script", function()
      local s = write_file(os.tmpname(), "print(a)\n")
      local out = sh(exe() .. " -e 'a=1' -e 'a=a+1' -e'print(a)' " .. quote(s))
      os.remove(s)
      assert.are.equal("2\n2\n", out)
    end)

    it("loads the library before -e", function()
      local out = sh(exe() .. " -e 'print(sc == scorch, type(scorch))'")
      assert.are.equal("true\ttable\n", out)
    end)

    it("exits non-zero with the message and a traceback on stderr", function()
      local s = write_file(os.tmpname(),
        "print('before')\nlocal function f() error('boom') end\nf()\n")
      local err = os.tmpname()
      local out, code = sh(exe() .. " " .. quote(s) .. " 2>" .. quote(err))
      local msg = read_file(err)
      os.remove(s); os.remove(err)
      assert.are.equal("before\n", out)
      assert.are.equal(1, code)
      assert.are.equal(1, msg:find(exe() .. ": " .. s .. ":2: boom\nstack traceback:\n", 1, true),
        "unexpected stderr:\n" .. msg)
      assert.matches("in local 'f'", msg)
    end)

    it("exits non-zero when -e fails", function()
      local _, code = sh(exe() .. " -e 'error(1)' 2>/dev/null")
      assert.are.equal(1, code)
    end)

    it("prints the usage, not a traceback, for an example's unknown option", function()
      local err = os.tmpname()
      local out, code = sh(exe() .. " examples/ddpm_2d.lua --no-such-option 1 2>" .. quote(err))
      local msg = read_file(err)
      os.remove(err)
      assert.are.equal("", out)
      assert.are.equal(2, code)
      assert.matches("^scorch: unknown option %-%-no%-such%-option\nusage: scorch examples/ddpm_2d.lua", msg)
      assert.matches("%-%-steps", msg)
      assert.is_nil(msg:find("traceback", 1, true), msg)
    end)

    it("keeps a print during a progress bar off the bar's line", function()
      local s = write_file(os.tmpname(), table.concat({
        "local bar = sc.util.progress(3, {force = true, stream = io.stdout, interval = 0, desc = 'train'})",
        "bar:update() print('hello', 42) bar:update() bar:write('note') bar:update() bar:close()",
        "print(print == _G.print and 'restored')",
      }, "\n"))
      local out = sh(exe() .. " " .. quote(s))
      os.remove(s)
      -- what a terminal shows: each line's text after its last carriage return
      local shown = {}
      for _, line in ipairs(lines_of(out)) do shown[#shown + 1] = line:match("([^\r]*)$") end
      assert.are.equal("hello\t42", shown[1])
      assert.are.equal("note", shown[2])
      assert.matches("^train 100%% %[#+%] 3/3", shown[3])
      assert.are.equal("restored", shown[4])
    end)

    it("passes os.exit codes through", function()
      local _, code = sh(exe() .. " -e 'os.exit(3)'")
      assert.are.equal(3, code)
    end)

    it("closes the state at exit so __gc runs, even after an error", function()
      local gc = "x = setmetatable({}, {__gc = function() print('collected') end})"
      assert.are.equal("collected\n", (sh(exe() .. " -e " .. quote(gc))))
      local out, code = sh(exe() .. " -e " .. quote(gc .. " error('late')") .. " 2>/dev/null")
      assert.are.equal("collected\n", out)
      assert.are.equal(1, code)
    end)
  end)

  describe("options", function()
    it("-v prints the version line", function()
      local out, code = sh(exe() .. " -v")
      assert.matches("^scorch %d+%.%d+%.%d+ %(Lua 5%.4%.%d+%)\n$", out)
      assert.are.equal(0, code)
    end)

    it("-h and --help print usage on stdout", function()
      for _, opt in ipairs({ "-h", "--help" }) do
        local out, code = sh(exe() .. " " .. opt)
        assert.matches("^usage: ", out)
        assert.matches("%-e stat", out)
        assert.are.equal(0, code)
      end
    end)

    it("--version prints the version line", function()
      local out, code = sh(exe() .. " --version")
      assert.matches("^scorch %d+%.%d+%.%d+ %(Lua 5%.4%.%d+%)\n$", out)
      assert.are.equal(0, code)
    end)

    it("rejects an unknown option with usage on stderr", function()
      local out, code = sh(exe() .. " -x 2>&1 >/dev/null")
      assert.matches("unrecognized option '%-x'", out)
      assert.matches("usage: ", out)
      assert.are.equal(1, code)
    end)

    it("rejects -e without a statement", function()
      local out, code = sh(exe() .. " -e 2>&1")
      assert.matches("'%-e' needs argument", out)
      assert.are.equal(1, code)
    end)
  end)

  describe("module search path", function()
    -- A copy of the host in a tree of our own, with LUA_PATH pointing
    -- nowhere, shows exactly which library the host found.
    local dir

    before_each(function()
      dir = temp_dir()
      assert(os.execute("mkdir -p " .. quote(dir .. "/bin") .. " && cp " .. exe()
        .. " " .. quote(dir .. "/bin/scorch")))
    end)

    after_each(function()
      os.execute("rm -rf " .. quote(dir))
    end)

    local function run_copy(code)
      return sh("cd " .. quote(dir) .. " && LUA_PATH='/nonexistent/?.lua' "
        .. "LUA_CPATH='/nonexistent/?.so' bin/scorch -e " .. quote(code) .. " 2>&1")
    end

    it("prefers the library of the tree the host was built in", function()
      assert(os.execute("mkdir -p " .. quote(dir .. "/lua/scorch")))
      write_file(dir .. "/lua/scorch/init.lua", "return {marker = 'devtree'}\n")
      local out, code = run_copy("print(sc.marker) print(package.path) print(package.cpath)")
      local real = sh("cd " .. quote(dir) .. " && pwd -P"):gsub("\n$", "")
      assert.are.same({
        "devtree",
        real .. "/lua/?.lua;" .. real .. "/lua/?/init.lua;/nonexistent/?.lua",
        real .. "/lib/?.so;/nonexistent/?.so",
      }, lines_of(out))
      assert.are.equal(0, code)
    end)

    it("finds the modules installed beside it (a LuaRocks tree or a PREFIX)", function()
      assert(os.execute("mkdir -p " .. quote(dir .. "/share/lua/5.4/scorch")))
      write_file(dir .. "/share/lua/5.4/scorch/init.lua", "return {marker = 'installed'}\n")
      local out, code = run_copy("print(sc.marker) print(package.path) print(package.cpath)")
      local real = sh("cd " .. quote(dir) .. " && pwd -P"):gsub("\n$", "")
      assert.are.same({
        "installed",
        real .. "/share/lua/5.4/?.lua;" .. real .. "/share/lua/5.4/?/init.lua;/nonexistent/?.lua",
        real .. "/lib/lua/5.4/?.so;/nonexistent/?.so",
      }, lines_of(out))
      assert.are.equal(0, code)
    end)

    it("fails with the require error when the library is missing", function()
      local out, code = run_copy("print('ran')")
      assert.matches("module 'scorch' not found", out)
      assert.is_nil(out:find("ran\n", 1, true))
      assert.are.equal(1, code)
    end)
  end)

  describe("REPL on a terminal", function()
    -- script(1) gives the host a real pty, so readline, the banner,
    -- history and TAB completion are exercised as a user sees them.
    -- script(1) runs its command through $SHELL -c.  The shell must
    -- exec the host: a shell that waits for it (dash does) is in the pty's
    -- foreground group too, gets every Ctrl-C, and script(1) then reports
    -- the shell's exit status 130 instead of the host's (CI's SHELL).
    local function script_cmd()
      return "exec " .. quote(exe())
    end

    local function pty_session(input)
      local hist = os.tmpname()
      local infile = write_file(os.tmpname(), input)
      local out = sh("TERM=dumb SCORCH_HISTORY=" .. quote(hist)
        .. " timeout 20 script -qec " .. quote(script_cmd()) .. " /dev/null < " .. quote(infile))
      local history = read_file(hist) or ""
      os.remove(hist); os.remove(infile)
      local clean = out:gsub("\27%[%?2004[hl]", ""):gsub("\r", "")
      return clean, history
    end

    it("runs with a banner, prompts, history and completion", function()
      if not (have("script") and have("timeout")) then
        pending("script(1) or timeout(1) not installed; pty test not run")
        return
      end
      local out, history = pty_session(table.concat({
        "1+2",
        "print(string.form\t('%d', 5))",              -- a.b completion
        "s = 'x'",
        "s:up\t()",                                   -- method via string metatable
        "obj = setmetatable({}, {__index = {hello = function() return 'hi' end}})",
        "obj:hel\t()",                                -- method via __index table
        "",
      }, "\n"))
      local lines = lines_of(out)
      assert.matches("\nscorch %d+%.%d+%.%d+ %(Lua 5%.4", out)
      assert.matches("`sc`", out)
      assert.is_truthy(index_of(lines, "> 1+2"), "no prompt in:\n" .. out)
      assert.is_truthy(index_of(lines, "3"), out)
      assert.is_truthy(index_of(lines, "> print(string.format('%d', 5))"), out)
      assert.is_truthy(index_of(lines, "5"), out)
      assert.is_truthy(index_of(lines, "X"), out)
      assert.is_truthy(index_of(lines, "hi"), out)
      assert.are.same({
        "1+2", "print(string.format('%d', 5))", "s = 'x'", "s:upper()",
        "obj = setmetatable({}, {__index = {hello = function() return 'hi' end}})",
        "obj:hello()",
      }, lines_of(history))
    end)

    -- Keys typed with pauses, as a person would: the pty turns \3 into a
    -- SIGINT when it is written, so the host must be at its prompt by then.
    local function typed_session(steps)
      local hist = os.tmpname()
      local cmds = { "sleep 1.5" }
      for _, k in ipairs(steps) do
        if type(k) == "number" then        -- a longer pause, at the prompt
          cmds[#cmds + 1] = "sleep " .. k
        else
          cmds[#cmds + 1] = "printf '%b' " .. quote(k)
          cmds[#cmds + 1] = "sleep 0.4"
        end
      end
      -- The session ends with the user's Ctrl-D, with the pipe still open:
      -- script(1)'s own handling of the end of its input is not under test
      -- (CI saw an exit status of 130 from that path once).
      cmds[#cmds + 1] = "printf '\\004'"
      cmds[#cmds + 1] = "sleep 1.5"
      local out = sh("(" .. table.concat(cmds, "; ") .. ") | TERM=dumb SCORCH_HISTORY=" .. quote(hist)
        .. " timeout 30 script -qec " .. quote(script_cmd()) .. " /dev/null 2>/dev/null; echo \"rc=$?\"")
      local history = read_file(hist) or ""
      os.remove(hist)
      return out:gsub("\27%[%?2004[hl]", ""):gsub("\r", ""), history
    end

    it("clears the line on Ctrl-C at the prompt and on a continuation line", function()
      if not (have("script") and have("timeout")) then
        pending("script(1) or timeout(1) not installed; pty test not run")
        return
      end
      local out, history = typed_session({
        "never run", "\\003", "1+2\\n",
        "function f(\\n", "\\003", "40+2\\n",
      })
      local lines = lines_of(out)
      assert.is_truthy(index_of(lines, "3"), out)
      assert.is_truthy(index_of(lines, "42"), "the session ended at Ctrl-C:\n" .. out)
      assert.is_nil(out:find("never run'", 1, true))
      assert.is_nil(out:find("stdin:", 1, true), "dropped input was run:\n" .. out)
      assert.matches("rc=0\n$", out)
      assert.are.same({ "1+2", "40+2" }, lines_of(history))
    end)

    it("uses no CPU while it waits at its prompt, after 2-thread work", function()
      if not (have("script") and have("timeout")) then
        pending("script(1) or timeout(1) not installed; pty test not run")
        return
      end
      -- the process's CPU ticks (every thread) from /proc/self/stat; the
      -- pool's workers spin at most a millisecond after the last kernel
      local out = typed_session({
        "function cpu() local f = io.open('/proc/self/stat'); local s = f:read('a'); f:close(); "
          .. "local u, k = s:match('%) %S+' .. (' %S+'):rep(10) .. ' (%d+) (%d+)'); "
          .. "return tonumber(u) + tonumber(k) end\\n",
        "sc.set_num_threads(2); x = sc.randn(512, 512); for i = 1, 5 do x = x:matmul(x):tanh() end\\n",
        "c0 = cpu()\\n",
        2.0,
        "print('IDLE ' .. (cpu() - c0))\\n",
      })
      local ticks = tonumber(out:match("\nIDLE (%d+)"))
      assert.is_truthy(ticks, out)
      -- 2.4 s at the prompt (and reading one typed line): 100 ticks a second
      -- per busy thread if anything spun; at most 3 ticks allowed
      assert.is_true(ticks <= 3, ("%d CPU ticks while idle at the prompt"):format(ticks))
    end)

    it("completes lazily loaded submodules, hides internals, and completes file names in strings", function()
      if not (have("script") and have("timeout")) then
        pending("script(1) or timeout(1) not installed; pty test not run")
        return
      end
      local dir = temp_dir()
      write_file(dir .. "/unique_file_name.txt", "")
      local out, history = typed_session({
        "sc.opti\\t ~= nil\\n",           -- sc.optim, before anything loaded it
        "type(sc.schedules.karras_s\\t)\\n", -- a name inside a submodule not loaded yet
        "type(sc.silu_g\\t)\\n",          -- an internal: no completion
        "type(sc.core.im2co\\t)\\n",       -- still there under sc.core
        "f = '" .. dir .. "/unique_fi\\t\\n",
      })
      os.execute("rm -rf " .. quote(dir))
      assert.are.same({
        "sc.optim ~= nil", "type(sc.schedules.karras_sigmas)", "type(sc.silu_g)", "type(sc.core.im2col)",
        "f = '" .. dir .. "/unique_file_name.txt'",
      }, lines_of(history), out)
    end)
  end)
end)

describe("the LuaRock (scorch-scm-1.rockspec, the Makefile's Lua check)", function()
  local function read(path)
    local f = assert(io.open(path, "r"))
    local s = f:read("a")
    f:close()
    return s
  end

  local function run(cmd)
    local p = io.popen(cmd .. " 2>&1")
    local out = p:read("a")
    local ok, _, code = p:close()
    return out, ok and 0 or code
  end

  it("passes luarocks lint and states its license", function()
    local rockspec = read("scorch-scm-1.rockspec")
    assert.matches('license = "MIT"', rockspec)
    assert.matches("MIT License", read("LICENSE"))
    for _, dep in ipairs({ "OPENBLAS", "ZLIB", "READLINE" }) do
      assert.matches(dep .. " = {", rockspec)
    end
    local _, which = run("command -v luarocks")
    if which ~= 0 then
      pending("luarocks not installed")
      return
    end
    local out, code = run("luarocks lint scorch-scm-1.rockspec")
    assert.are.equal(0, code, out)
  end)

  it("stops a build for another Lua with the command to run", function()
    -- what LuaRocks set up for Lua 5.1 passes: LUA_INCDIR of a 5.1 lua.h
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p '" .. dir .. "'")
    local f = assert(io.open(dir .. "/lua.h", "w"))
    f:write('#define LUA_VERSION_NUM\t\t501\n')
    f:close()
    local out, code = run("make -n LUA_INCDIR='" .. dir .. "' all")
    os.execute("rm -rf '" .. dir .. "'")
    assert.are_not.equal(0, code)
    assert.matches("scorch needs Lua 5%.4", out)
    assert.matches("luarocks %-%-lua%-version=5%.4 make", out)
  end)
end)
