-- The build under test: specs must exercise this tree's module, and every
-- C-only check in spec/c/ must pass.  Each spec/c/NAME.c is a program linked
-- against the core objects (the Makefile builds it into $SCORCH_CCHECKS);
-- exit status 0 is a pass, anything it prints is shown on failure.
local lfs = require "lfs"

describe("build", function()
  it("loads scorch.core from this tree, not an installed copy", function()
    local found = package.searchpath("scorch.core", package.cpath)
    assert.is_truthy(found, "scorch.core is not on package.cpath")
    local root = lfs.currentdir()  -- physical, as make's $(CURDIR)
    local here = found:sub(1, #root + 1) == root .. "/" or found:sub(1, 2) == "./"
    assert(here and found:match("/lib[%w%-]*/scorch/core%.so$"),
      "scorch.core found at " .. found .. ", outside " .. root)
  end)
end)

local function c_checks()
  local names = {}
  if lfs.attributes("spec/c", "mode") ~= "directory" then return names end
  for file in lfs.dir("spec/c") do
    local name = file:match("^(.+)%.c$")
    if name then names[#names + 1] = name end
  end
  table.sort(names)
  return names
end

describe("C check", function()
  local dir = os.getenv("SCORCH_CCHECKS")
  for _, name in ipairs(c_checks()) do
    if not dir then
      pending(name .. " (built and run by `make test`)")
    else
      it(name, function()
        local exe = dir .. "/" .. name
        assert.is_truthy(lfs.attributes(exe, "mode"), exe .. " was not built")
        local proc = assert(io.popen("'" .. exe .. "' 2>&1", "r"))
        local out = proc:read("a")
        local ok, how, code = proc:close()
        assert(ok, string.format("spec/c/%s.c: %s %s\n%s", name, how, code, out))
      end)
    end
  end
end)
