-- The examples' command line (util.example_args) and util.shape_str, against
-- hand-worked option tables.
local sc = require "scorch"
local util = sc.util

describe("util.example_args", function()
  local spec = { defaults = { steps = 100, lr = 1e-3, out = "out/x", threads = 0 },
    presets = { quick = { steps = 3, lr = 2e-3 } } }

  it("keeps the full-run defaults without a preset flag", function()
    local o = util.example_args({}, spec)
    assert.are.same({ steps = 100, lr = 1e-3, out = "out/x", threads = 0, quick = false }, o)
  end)

  it("lets a preset change only what the command line did not set", function()
    local o = util.example_args({ "--steps", "7", "--quick" }, spec)
    assert.are.equal(7, o.steps)   -- given: kept whatever the order
    assert.are.equal(2e-3, o.lr)   -- from the preset
    assert.are.equal("out/x", o.out)
    assert.is_true(o.quick)
  end)

  it("rejects a preset naming an unknown option, a clash, and unknown spec keys", function()
    assert.has_error(function() util.example_args({}, { defaults = { a = 1 }, presets = { quick = { b = 2 } } }) end,
      "scorch.util.example_args: preset 'quick' sets unknown option 'b'")
    assert.has_error(function() util.example_args({}, { defaults = { quick = 1 }, presets = { quick = {} } }) end,
      "scorch.util.example_args: preset 'quick' clashes with an option")
    assert.has_error(function() util.example_args({}, { default = {} }) end,
      "scorch.util.example_args: unknown option 'default' (valid: defaults, presets, usage)")
  end)

  it("rejects unknown command-line options", function()
    assert.has_error(function() util.example_args({ "--stepz", "3" }, spec) end)
  end)
end)

describe("util.shape_str", function()
  it("formats tensors and names other values' types", function()
    assert.are.equal("[2,3]", util.shape_str(sc.zeros(2, 3)))
    assert.are.equal("[]", util.shape_str(sc.tensor(1)))
    assert.are.equal("table", util.shape_str({}))
  end)
end)

describe("util.write_atomic", function()
  it("replaces the file whole and leaves no temporary behind", function()
    local path = os.tmpname()
    assert.are.equal(path, util.write_atomic(path, "first\n"))
    assert.are.equal(path, util.write_atomic(path, "second\n"))
    local f = assert(io.open(path, "rb"))
    assert.are.equal("second\n", f:read("a"))
    f:close()
    assert.is_nil(io.open(path .. ".tmp", "rb"))
    os.remove(path)
  end)

  it("returns nil and a message naming the file it cannot write", function()
    local ok, err = util.write_atomic("/nonexistent-dir/x.json", "{}")
    assert.is_nil(ok)
    assert.truthy(err:find("/nonexistent-dir/x.json.tmp", 1, true), err)
  end)
end)
