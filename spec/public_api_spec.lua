-- The public table against its reference: every name `require "scorch"`
-- holds (submodules loaded on first use included) must be documented in
-- docs/api.md, and every name documented there must exist.  Internals of the
-- C module stay under sc.core.
local sc = require "scorch"

-- `sc.NAME` as written in the reference's tables (first column only)
local function documented()
  local f = assert(io.open("docs/api.md", "r"))
  local names = {}
  for line in f:lines() do
    local first = line:match("^| ([^|]+) |")
    if first then
      for name in first:gmatch("`sc%.([%a_][%w_]*)") do names[name] = true end
    end
  end
  f:close()
  return names
end

-- everything reachable as sc.NAME: the table's own keys and the lazily loaded
-- submodules, which appear after the first index
local function reachable()
  local names = {}
  for k in pairs(sc) do names[k] = true end
  for _, m in ipairs({ "nn", "optim", "data", "losses", "schedules", "samplers", "models",
    "metrics", "viz", "util", "image", "io", "likelihood", "param", "dist" }) do
    if sc[m] ~= nil then names[m] = true end
  end
  for k in pairs(sc) do names[k] = true end
  return names
end

local function sorted_missing(a, b)
  local out = {}
  for k in pairs(a) do if not b[k] then out[#out + 1] = k end end
  table.sort(out)
  return out
end

describe("public table", function()
  local docs, have = documented(), reachable()

  it("the reference is read (a parse that found nothing would pass vacuously)", function()
    local n = 0
    for _ in pairs(docs) do n = n + 1 end
    assert.is_true(n > 60, "only " .. n .. " names parsed from docs/api.md")
  end)

  it("holds no name that docs/api.md does not document", function()
    assert.are.same({}, sorted_missing(have, docs))
  end)

  it("holds every name docs/api.md documents", function()
    assert.are.same({}, sorted_missing(docs, have))
  end)

  it("keeps the C module's internals out of sc and under sc.core", function()
    for _, name in ipairs({ "conv2d_core", "_png_read", "adam_step", "narrow_backward", "silu_grad2",
      "methods", "im2col", "sum_to", "group_norm_core" }) do
      assert.is_nil(rawget(sc, name), name)
      assert.is_not_nil(sc.core[name], name)
    end
  end)

  it("reaches likelihood and param like the other submodules", function()
    assert.are.equal(require "scorch.likelihood", sc.likelihood)
    assert.are.equal(require "scorch.param", sc.param)
  end)
end)
