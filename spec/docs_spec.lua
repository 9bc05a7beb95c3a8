-- The documentation against the code: every public function of sc and its
-- submodules has a doc comment (the text `?NAME` prints in the REPL), the C
-- functions theirs in lua/scorch/core_doc.lua; LDoc builds the reference
-- without a warning; the tutorial and family pages exist and are linked.
local sc = require "scorch"
local repl = require "scorch.repl"

local function read(path)
  local f = assert(io.open(path, "r"))
  local s = f:read("a")
  f:close()
  return s
end

-- name -> value of everything public: sc.NAME functions, sc.MOD.NAME
-- functions and classes (tables with __call) of every submodule.
local function public_values()
  local out = {}
  for k, v in pairs(sc) do
    if type(v) == "function" and k:sub(1, 1) ~= "_" then out["sc." .. k] = v end
  end
  for _, m in ipairs(repl.submodules) do
    for k, v in pairs(sc[m]) do
      if type(k) == "string" and k:sub(1, 1) ~= "_" then
        local mt = type(v) == "table" and getmetatable(v)
        if type(v) == "function" or (mt and mt.__call) then out["sc." .. m .. "." .. k] = v end
      end
    end
  end
  return out
end

describe("doc comments", function()
  local values = public_values()

  it("are looked for in enough places (a walk that found nothing would pass)", function()
    local n = 0
    for _ in pairs(values) do n = n + 1 end
    assert.is_true(n > 250, "only " .. n .. " public functions found")
  end)

  it("exist for every public function and class", function()
    local missing = {}
    for name, v in pairs(values) do
      local d = repl.doc(v, name)
      if not (d and d.text[1] and d.text[1]:match("%S")) then
        local where = ""
        if type(v) == "function" then
          local info = debug.getinfo(v, "S")
          where = " (" .. info.short_src .. ":" .. info.linedefined .. ")"
        end
        missing[#missing + 1] = name .. where
      end
    end
    table.sort(missing)
    assert.are.same({}, missing)
  end)

  it("exist for every method of the public classes (m:parameters(), ema:restore(), ...)", function()
    -- init/forward/extra_repr/new are the class's own doc; check_group and
    -- update are the optimiser subclass hooks, described in optimizer.lua
    local skip = { init = true, forward = true, extra_repr = true, new = true, check_group = true, update = true }
    local missing, seen, n = {}, {}, 0
    for name, cls in pairs(values) do
      if type(cls) == "table" then
        for k, f in pairs(cls) do
          if type(k) == "string" and type(f) == "function" and k:sub(1, 1) ~= "_" and not skip[k]
              and not seen[f] then
            seen[f] = true
            n = n + 1
            if not repl.doc(f, k) then missing[#missing + 1] = name .. ":" .. k end
          end
        end
      end
    end
    table.sort(missing)
    assert.is_true(n > 40, "only " .. n .. " methods found")
    assert.are.same({}, missing)
  end)

  it("cover every C function of sc in core_doc.lua, and core_doc.lua nothing else", function()
    local text = read("lua/scorch/core_doc.lua")
    for name in text:gmatch("\n%-%- @function ([%w_]+)\n") do
      assert.are.equal("function", type(sc[name]), "core_doc.lua documents sc." .. name)
    end
  end)

  it("exist for every tensor method, and name only methods that exist", function()
    local methods = rawget(sc.core.Tensor, "__methods")
    local missing, n = {}, 0
    for k, f in pairs(methods) do
      if type(f) == "function" and k:sub(1, 1) ~= "_" then
        n = n + 1
        if not repl.doc(f, "Tensor:" .. k) then missing[#missing + 1] = "t:" .. k end
      end
    end
    table.sort(missing)
    assert.is_true(n > 60, "only " .. n .. " tensor methods found")
    assert.are.same({}, missing)
    for name in read("lua/scorch/core_doc.lua"):gmatch("\n%-%- @function Tensor:([%w_]+)\n") do
      assert.are.equal("function", type(methods[name]), "core_doc.lua documents t:" .. name)
    end
    local x = sc.zeros(2)
    assert.are.equal("x:sum([d], [keepdim])", repl.help_text(x.sum, "x:sum"):match("^[^\n]*"))
  end)

  it("give the REPL the signature and summary of a sampler and of a C function", function()
    local heun = repl.help_text(sc.samplers.heun, "sc.samplers.heun")
    assert.are.equal("sc.samplers.heun(model, x_init, levels, opts)", heun:match("^[^\n]*"))
    assert.matches("Heun", heun)
    assert.matches("e%.g%.", heun)
    local randn = repl.help_text(sc.randn, "sc.randn")
    assert.are.equal("sc.randn(...)", randn:match("^[^\n]*"))
    assert.matches("N%(0, 1%)", randn)
  end)
end)

describe("the API reference (make docs)", function()
  local function have_ldoc()
    local p = io.popen("command -v ldoc 2>/dev/null")
    local out = p:read("a")
    p:close()
    return out ~= ""
  end

  it("builds with LDoc without a warning", function()
    if not have_ldoc() then
      pending("ldoc not installed (Debian's lua-ldoc, scripts/bootstrap.sh); reference not built")
      return
    end
    local dir = os.tmpname()
    os.remove(dir)
    local p = io.popen("ldoc -c docs/config.ld -d '" .. dir .. "' . 2>&1")
    local out = p:read("a")
    p:close()
    local index = io.open(dir .. "/index.html", "r")
    local samplers = io.open(dir .. "/modules/scorch.samplers.diffusion.html", "r")
    local samplers_html = samplers and samplers:read("a") or ""
    if index then index:close() end
    if samplers then samplers:close() end
    os.execute("rm -rf '" .. dir .. "'")
    local warnings = {}
    for line in out:gmatch("[^\n]+") do
      if not (line:match("^reading configuration") or line:match("^changing to directory")
          or line:match("^output written")) then
        warnings[#warnings + 1] = line
      end
    end
    assert.are.same({}, warnings)
    assert.is_truthy(index, "no index.html written")
    assert.matches("heun", samplers_html)
  end)
end)

describe("the written docs", function()
  local pages = { "docs/tutorial.md", "docs/score_models.md", "docs/diffusion.md", "docs/metrics.md",
    "docs/gans.md", "docs/vae.md", "docs/flows.md", "docs/repl.md", "docs/api.md" }

  it("has a tutorial and a page per model family, linked from docs/README.md", function()
    local index = read("docs/README.md")
    for _, page in ipairs(pages) do
      assert.is_truthy(io.open(page, "r"), page)
      assert.is_truthy(index:find(page:match("[^/]+$"), 1, true), page .. " not linked from docs/README.md")
    end
  end)

  it("shows the one sampler signature and sc.metrics in the tutorial", function()
    local t = read("docs/tutorial.md")
    assert.is_truthy(t:find("(model, x_init, levels, opts)", 1, true))
    assert.is_truthy(t:find("sc.metrics", 1, true))
    assert.is_truthy(t:find("sc.save", 1, true))
  end)
end)

describe("the tutorial", function()
  it("runs as written, its printed values as its comments say", function()
    local exe = os.getenv("SCORCH_BIN") or "bin/scorch"
    local code = {}
    for block in read("docs/tutorial.md"):gmatch("```lua\n(.-)```") do code[#code + 1] = block end
    assert.is_true(#code >= 6, "only " .. #code .. " code blocks")
    local file = os.tmpname()
    local f = assert(io.open(file, "w"))
    f:write(table.concat(code, "\n"))
    f:close()
    local p = io.popen(exe .. " '" .. file .. "' 2>&1")
    local out = p:read("a")
    local ok = p:close()
    os.remove(file)
    assert.is_true(ok, out)
    -- the `-- a   b` comments after print(...) are the expected output
    local want = {}
    for _, block in ipairs(code) do
      for line in block:gmatch("[^\n]+") do
        local expect = line:match("^print%(.-%)%s+%-%-%s+(.-)%s*$")
        if expect then want[#want + 1] = expect:gsub("%s+%b()", ""):gsub("%s+", " ") end
      end
    end
    local got = {}
    for line in out:gmatch("[^\n]+") do got[#got + 1] = (line:gsub("%s+", " ")) end
    assert.are.same(want, got)
  end)
end)
