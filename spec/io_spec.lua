-- Files: safetensors (sc.save / sc.load), PNG (sc.image), IDX (sc.io.read_idx).
--
-- Fixtures in spec/fixtures/ come from spec/fixtures/make_fixtures.py; the
-- .safetensors ones mimic the reference library's writer (see there).
local sc = require "scorch"
local core = require "scorch.core"
local lfs = require "lfs"

local FIX = "spec/fixtures/"

local read_bytes = require("helpers").read_bytes

local function write_bytes(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- A fresh scratch directory per test, removed afterwards.
local function rmtree(path)
  if lfs.attributes(path, "mode") == "directory" then
    for name in lfs.dir(path) do
      if name ~= "." and name ~= ".." then rmtree(path .. "/" .. name) end
    end
    lfs.rmdir(path)
  else
    os.remove(path)
  end
end

local dir
before_each(function()
  dir = os.tmpname()
  os.remove(dir)
  assert(lfs.mkdir(dir))
end)
after_each(function() rmtree(dir) end)

-- Names in dir that look like our temporaries ("<target>.tmp.<pid>").
local function temporaries()
  local found = {}
  for name in lfs.dir(dir) do
    if name:find("%.tmp%.%d+$") then found[#found + 1] = name end
  end
  return found
end

-- A safetensors image from a header text and data bytes.
local function st_bytes(header, data)
  return string.pack("<I8", #header) .. header .. (data or "")
end

local function f32(...) return string.pack("<" .. string.rep("f", select("#", ...)), ...) end

describe("sc.save / sc.load", function()
  it("round-trips float32, float64, 0-d and empty tensors with metadata", function()
    sc.manual_seed(7)
    local t = {
      w = sc.randn(3, 4),
      d = sc.randn({2, 2, 2}, {dtype = "float64"}),
      scalar = sc.tensor(2.5),
      scalar64 = sc.tensor(-1 / 3, {dtype = "float64"}),
      empty = sc.zeros(0, 3),
      ["unicode é/\"x\"\n"] = sc.tensor{1, 2},
    }
    local path = dir .. "/m.safetensors"
    assert.is_true(sc.save(path, t, {framework = "scorch", step = 12, lr = 0.5, ["é"] = "\t€"}))
    local back, meta = sc.load(path)
    local n = 0
    for name, v in pairs(t) do
      n = n + 1
      local b = back[name]
      assert.is_truthy(b, name)
      assert.are.equal(v:dtype(), b:dtype())
      assert.are.same(v:shape(), b:shape())
      assert.are.same(v:totable(), b:totable())
    end
    for _ in pairs(back) do n = n - 1 end
    assert.are.equal(0, n)
    assert.are.equal(-1 / 3, back.scalar64:item()) -- float64 kept exactly
    assert.are.same({framework = "scorch", step = "12", lr = "0.5", ["é"] = "\t€"}, meta)
  end)

  it("writes strided views in row-major order and ignores autograd state", function()
    local base = sc.arange(0, 6):view(2, 3)
    local w = sc.randn(2, 2):requires_grad(true)
    local path = dir .. "/v.safetensors"
    assert.is_true(sc.save(path, {t = base:t(), col = base:select(2, 2), w = w}))
    local back = sc.load(path)
    assert.are.same({{0, 3}, {1, 4}, {2, 5}}, back.t:totable())
    assert.are.same({1, 4}, back.col:totable())
    assert.are.same(w:totable(), back.w:totable())
    assert.is_false(back.w:requires_grad())
  end)

  it("saves an empty table and returns empty metadata", function()
    local path = dir .. "/e.safetensors"
    assert.is_true(sc.save(path, {}))
    assert.are.equal(string.pack("<I8", 8) .. "{}      ", read_bytes(path))
    local t, m = sc.load(path)
    assert.are.same({}, t)
    assert.are.same({}, m)
  end)

  it("reads the reference-writer fixture and writes it back byte for byte", function()
    local t, meta = sc.load(FIX .. "reference.safetensors")
    assert.are.same({2, 3}, t.weight:shape())
    assert.are.same({{0.5, -1, 2}, {3.25, -4.5, 100}}, t.weight:totable())
    assert.are.equal("float32", t.weight:dtype())
    assert.are.same({0.125, -0.25, 8}, t.bias:totable())
    assert.are.same({}, t.scale:shape())
    assert.are.equal(math.pi, t.scale:item())
    assert.are.equal("float64", t.scale:dtype())
    assert.are.same({1, 0.1, 0.01, 0.001}, t["noise.sigmas"]:totable())
    assert.are.same({0, 4}, t.empty:shape())
    assert.are.same({7}, t["été/\"quoted\""]:totable())
    assert.are.same({format = "pt", note = "line1\nline2 \"quoted\" é\t\1"}, meta)
    -- same tensors, same metadata: the same bytes as the library's writer
    local path = dir .. "/again.safetensors"
    assert.is_true(sc.save(path, t, meta))
    assert.are.equal(read_bytes(FIX .. "reference.safetensors"), read_bytes(path))
  end)

  it("refuses the dtypes scorch has not unless asked to convert, naming the tensor, dtype and option", function()
    local ok, err = pcall(sc.load, FIX .. "converted.safetensors")
    assert.is_false(ok)
    -- the first such tensor in offset order (the writer puts 8-byte dtypes first)
    assert.truthy(err:find("tensor 'u64' has dtype U64", 1, true), err)
    assert.truthy(err:find("{convert = true}", 1, true), err)
    local path = dir .. "/half.safetensors"
    write_bytes(path, st_bytes('{"w":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}', "\0\60"))
    ok, err = pcall(sc.load, path)
    assert.is_false(ok)
    assert.truthy(err:find("scorch.load: " .. path .. ": tensor 'w' has dtype F16", 1, true), err)
    assert.has_error(function() sc.load(path, { convert = true, dtype = "float32" }) end,
      "scorch.load: unknown option 'dtype' (valid: convert)")
  end)

  it("converts exactly with {convert = true} and says which tensors it converted", function()
    -- the fixture minus u64, whose 2^64 - 1 no float holds (below)
    local want = {
      bool = {1, 0, 1}, u8 = {0, 255, 7}, i8 = {-128, 127, -1},
      i16 = {-32768, 32767, -2}, u16 = {65535, 0, 3},
      f16 = {{1, -2.5, 65504}, {2 ^ -24, math.huge, 0}},
      bf16 = {1, -3, 2 ^ 100},
    }
    local hdr, data, parts = {}, {}, {
      { "bool", "BOOL", 1, string.pack("BBB", 1, 0, 1) },
      { "u8", "U8", 1, string.pack("BBB", 0, 255, 7) },
      { "i8", "I8", 1, string.pack("<bbb", -128, 127, -1) },
      { "i16", "I16", 2, string.pack("<i2i2i2", -32768, 32767, -2) },
      { "u16", "U16", 2, string.pack("<I2I2I2", 65535, 0, 3) },
      { "bf16", "BF16", 2, string.pack("<I2I2I2", 0x3F80, 0xC040, 0x7180) },
      -- integers: float32 when every |v| <= 2^24, float64 up to 2^53
      { "i32_small", "I32", 4, string.pack("<i4i4i4", -2 ^ 24, 2 ^ 24, 5) },
      { "i32_big", "I32", 4, string.pack("<i4i4i4", -2 ^ 31, 2 ^ 31 - 1, 2 ^ 24 + 1) },
      { "u32", "U32", 4, string.pack("<I4I4I4", 2 ^ 32 - 1, 0, 9) },
      { "i64_small", "I64", 8, string.pack("<i8i8i8", -7, 0, 2 ^ 24) },
      { "i64_big", "I64", 8, string.pack("<i8i8i8", -2 ^ 53, 2 ^ 53, 2 ^ 53 - 1) },
      { "u64", "U64", 8, string.pack("<I8I8I8", 2 ^ 53, 0, 3) },
      { "f32", "F32", 4, f32(0.5, 1, 2) },
    }
    local at = 0
    for _, p in ipairs(parts) do
      hdr[#hdr + 1] = ('"%s":{"dtype":"%s","shape":[3],"data_offsets":[%d,%d]}'):format(p[1], p[2], at, at + #p[4])
      data[#data + 1] = p[4]
      at = at + #p[4]
    end
    local path = dir .. "/ints.safetensors"
    write_bytes(path, st_bytes("{" .. table.concat(hdr, ",") .. "}", table.concat(data)))
    local t, meta, converted = sc.load(path, { convert = true })
    assert.are.same({}, meta)
    local expect = {
      bool = { "float32", {1, 0, 1} }, u8 = { "float32", {0, 255, 7} }, i8 = { "float32", {-128, 127, -1} },
      i16 = { "float32", {-32768, 32767, -2} }, u16 = { "float32", {65535, 0, 3} },
      bf16 = { "float32", {1, -3, 2 ^ 100} },
      i32_small = { "float32", {-2 ^ 24, 2 ^ 24, 5} },
      i32_big = { "float64", {-2 ^ 31, 2 ^ 31 - 1, 2 ^ 24 + 1} },
      u32 = { "float64", {2 ^ 32 - 1, 0, 9} },
      i64_small = { "float32", {-7, 0, 2 ^ 24} },
      i64_big = { "float64", {-2 ^ 53, 2 ^ 53, 2 ^ 53 - 1} },
      u64 = { "float64", {2 ^ 53, 0, 3} },
      f32 = { "float32", {0.5, 1, 2} },
    }
    for name, e in pairs(expect) do
      assert.are.equal(e[1], t[name]:dtype(), name)
      assert.are.same(e[2], t[name]:totable(), name)
    end
    local dtypes = {}
    for _, p in ipairs(parts) do if p[2] ~= "F32" then dtypes[p[1]] = p[2] end end
    assert.are.same(dtypes, converted)
    -- the committed fixture's narrow dtypes and F16 specials, as before
    local path2 = dir .. "/f16.safetensors"
    write_bytes(path2, st_bytes('{"f16":{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]}}',
      string.pack("<I2I2I2I2I2I2", 0x3C00, 0xC100, 0x7BFF, 0x0001, 0x7C00, 0x8000)))
    local h = sc.load(path2, { convert = true }).f16
    assert.are.same(want.f16, h:totable())
    assert.are.equal(-math.huge, 1 / h:totable()[2][3]) -- -0.0 kept its sign
    -- a value past 2^53: no float holds it, so no load (nil and a message)
    local t3, msg = sc.load(FIX .. "converted.safetensors", { convert = true })
    assert.is_nil(t3)
    assert.truthy(msg:find("tensor 'u64' (U64) holds a value beyond 2^53 at element 1", 1, true), msg)
  end)

  it("maps a PyTorch Sequential's 0-based keys to scorch's and back (sc.nn.from/to_torch_state_dict)", function()
    -- what torch.nn.Sequential(Linear(2, 2), SiLU(), Linear(2, 1)) saves
    local parts = {
      { "0.weight", "[2,2]", f32(1, 2, 3, 4) }, { "0.bias", "[2]", f32(0.5, -0.5) },
      { "2.weight", "[1,2]", f32(-1, 2) }, { "2.bias", "[1]", f32(0.25) },
    }
    local hdr, data, at = {}, {}, 0
    for _, p in ipairs(parts) do
      hdr[#hdr + 1] = ('"%s":{"dtype":"F32","shape":%s,"data_offsets":[%d,%d]}'):format(p[1], p[2], at, at + #p[3])
      data[#data + 1], at = p[3], at + #p[3]
    end
    local path = dir .. "/torch.safetensors"
    write_bytes(path, st_bytes("{" .. table.concat(hdr, ",") .. "}", table.concat(data)))
    local sd = sc.nn.from_torch_state_dict(assert(sc.load(path)))
    local keys = {}
    for k in pairs(sd) do keys[#keys + 1] = k end
    table.sort(keys)
    assert.are.same({ "1.bias", "1.weight", "3.bias", "3.weight" }, keys)
    local net = sc.nn.Sequential { sc.nn.Linear(2, 2), sc.nn.SiLU(), sc.nn.Linear(2, 1) }
    net:load_state_dict(sd)
    -- y = W2 silu(W1 x + b1) + b2 at x = (1, -1), by hand
    local h1, h2 = 1 - 2 + 0.5, 3 - 4 - 0.5
    local silu = function(v) return v / (1 + math.exp(-v)) end
    local want = -silu(h1) + 2 * silu(h2) + 0.25
    assert.is_true(math.abs(net(sc.tensor { { 1, -1 } }):item() - want) < 1e-6)
    -- and back: the same names PyTorch wrote, nested paths too
    local back = sc.nn.to_torch_state_dict(net:state_dict())
    assert.are.same({ 1, 2, 3, 4 }, back["0.weight"]:view(4):totable())
    assert.are.same({ ["net.0.w"] = 1, ["net.11.blocks.0.b"] = 2, ["head"] = 3 },
      sc.nn.to_torch_state_dict { ["net.1.w"] = 1, ["net.12.blocks.1.b"] = 2, ["head"] = 3 })
    assert.has_error(function() sc.nn.to_torch_state_dict { ["0.w"] = 1 } end,
      "scorch.nn.to_torch_state_dict: key '0.w' has index 0, which a 1-based scorch key cannot hold")
  end)

  it("decodes \\u escapes and surrogate pairs in names and metadata", function()
    local t, meta = sc.load(FIX .. "escaped.safetensors")
    assert.are.same({{1}}, t["smile \u{1F600} café\\/"]:totable())
    assert.are.equal(2, t["tab\there"]:item())
    assert.are.same({["é"] = "€"}, meta)
  end)

  describe("refuses a malformed file with nil and a message", function()
    local entry = '{"dtype":"F32","shape":[2],"data_offsets":[0,8]}'
    local cases = {
      {"an empty file", "", "truncated file: 0 bytes"},
      {"a truncated length", "\8\0\0", "truncated file: 3 bytes"},
      {"a header longer than the file", string.pack("<I8", 1000) .. "{}",
       "truncated file: header says 1000 bytes, only 2 follow"},
      {"an oversized header length", string.pack("<I8", 200000000) .. "{}", "exceeds the limit"},
      {"a header length of 2^64 - 1", string.pack("<i8", -1) .. "{}", "exceeds the limit"},
      {"a non-object header", st_bytes("[1,2]"), "not a JSON object"},
      {"an empty header", st_bytes(""), "not a JSON object"},
      {"leading space", st_bytes(" {}"), "not a JSON object"},
      {"cut-off JSON", st_bytes('{"a":{"dtype":"F32",'), "bad header JSON: .*header ends"},
      {"a missing colon", st_bytes('{"a" 1}'), "expected ':'"},
      {"a null entry", st_bytes('{"a":null}'), "expected an object describing a tensor"},
      {"text after the object", st_bytes("{} x"), "unexpected text after the header"},
      {"a fraction in a shape", st_bytes('{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}', f32(1)),
       "fraction"},
      {"a negative size", st_bytes('{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', f32(1)),
       "negative number"},
      {"a leading zero", st_bytes('{"a":{"dtype":"F32","shape":[01],"data_offsets":[0,4]}}', f32(1)),
       "leading zero"},
      {"an integer past int64", st_bytes('{"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]}}'),
       "integer too large"},
      {"a size mismatch", st_bytes('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', f32(1)),
       "shape %[2%] of F32 needs 8 bytes, but data_offsets %[0,4%] hold 4"},
      {"offsets past the end", st_bytes('{"a":' .. entry .. '}', f32(1)),
       "data_offsets %[0,8%] run past the end of the data %(4 bytes%)"},
      {"reversed offsets", st_bytes('{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}', f32(1, 2)),
       "end before they begin"},
      {"overlapping tensors",
       st_bytes('{"a":' .. entry .. ',"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', f32(1, 2, 3)),
       "tensors 'a' and 'b' overlap"},
      {"a gap between tensors",
       st_bytes('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
         .. '"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}', f32(1, 2, 3)),
       "bytes %[4,8%) before tensor 'b' belong to no tensor"},
      {"trailing data", st_bytes('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', f32(1, 2)),
       "data section has 8 bytes, but the tensors cover only 4"},
      {"an unknown dtype", st_bytes('{"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}', f32(1)),
       'unknown dtype "F33"'},
      {"an unsupported dtype", st_bytes('{"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}', "\0"),
       "dtype F8_E4M3, which scorch cannot load"},
      {"a duplicate name", st_bytes('{"a":' .. entry .. ',"a":' .. entry .. '}', f32(1, 2)),
       "tensor 'a' appears twice"},
      {"a duplicate metadata key", st_bytes('{"__metadata__":{"k":"1","k":"2"}}'),
       "metadata key 'k' appears twice"},
      {"two __metadata__", st_bytes('{"__metadata__":{},"__metadata__":{}}'), "'__metadata__' appears twice"},
      {"a number in __metadata__", st_bytes('{"__metadata__":{"k":1}}'), "values must be strings"},
      {"a missing field", st_bytes('{"a":{"dtype":"F32","shape":[1]}}'), 'has no "data_offsets"'},
      {"a repeated field", st_bytes('{"a":{"dtype":"F32","dtype":"F32"}}'), 'field "dtype" twice'},
      {"an unknown field", st_bytes('{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4],"x":1}}', f32(1)),
       'unexpected field "x"'},
      {"three offsets", st_bytes('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}', f32(1)),
       "must hold 2 numbers"},
      {"nine dimensions", st_bytes('{"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}}',
       f32(1)), "more than 8 dimensions"},
      {"an overflowing shape", st_bytes('{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}'),
       "too large"},
      {"huge sizes beside a zero",
       st_bytes('{"a":{"dtype":"F32","shape":[0,1099511627776,1099511627776],"data_offsets":[0,0]}}'),
       "too large"},
      {"invalid UTF-8", st_bytes('{"\255":{}}'), "not valid UTF%-8"},
      {"a lone surrogate", st_bytes('{"\\ud800":{}}'), "lone high surrogate"},
      {"an escaped NUL", st_bytes('{"a\\u0000":{}}'), "NUL character"},
      {"a bad escape", st_bytes('{"\\x":{}}'), "bad escape"},
      {"a raw control character", st_bytes('{"a\1":{}}'), "control character"},
      {"an unterminated string", st_bytes('{"abc'), "unterminated string"},
    }
    for _, case in ipairs(cases) do
      it(case[1], function()
        local path = dir .. "/bad.safetensors"
        write_bytes(path, case[2])
        local t, msg = sc.load(path)
        assert.is_nil(t)
        assert.is_string(msg)
        assert.is_truthy(msg:find("^scorch%.load: " .. dir:gsub("%p", "%%%0") .. "/bad%.safetensors: "), msg)
        assert.is_truthy(msg:find(case[3]), msg)
      end)
    end

    it("a missing file or a directory", function()
      local t, msg = sc.load(dir .. "/none.safetensors")
      assert.is_nil(t)
      assert.matches("^scorch%.load: cannot open .*none%.safetensors: No such file", msg)
      t, msg = sc.load(dir)
      assert.is_nil(t)
      assert.matches("not a regular file", msg)
    end)
  end)

  describe("writes atomically", function()
    local function pid()
      local f = assert(io.open("/proc/self/stat"))
      local s = f:read("l")
      f:close()
      return s:match("^(%d+)")
    end

    it("leaves no temporary behind", function()
      assert.is_true(sc.save(dir .. "/a.safetensors", {x = sc.ones(3)}))
      assert.is_true(sc.save(dir .. "/a.safetensors", {x = sc.zeros(3)}))
      assert.are.same({}, temporaries())
      assert.are.same({0, 0, 0}, sc.load(dir .. "/a.safetensors").x:totable())
    end)

    it("keeps the old file when the arguments are bad", function()
      local path = dir .. "/keep.safetensors"
      assert.is_true(sc.save(path, {x = sc.ones(2)}))
      local before = read_bytes(path)
      assert.has_error(function() sc.save(path, {x = "not a tensor"}) end)
      assert.has_error(function() sc.save(path, {__metadata__ = sc.ones(1)}) end)
      assert.has_error(function() sc.save(path, {x = sc.ones(1)}, {k = {}}) end)
      assert.has_error(function() sc.save(path, {["\255"] = sc.ones(1)}) end)
      assert.are.equal(before, read_bytes(path))
      assert.are.same({}, temporaries())
    end)

    it("keeps the old file when the write fails", function()
      local path = dir .. "/keep.safetensors"
      assert.is_true(sc.save(path, {x = sc.ones(2)}))
      local before = read_bytes(path)
      -- a directory where the temporary should go makes the write fail
      local blocker = path .. ".tmp." .. pid()
      assert(lfs.mkdir(blocker))
      local ok, msg = sc.save(path, {x = sc.zeros(5)})
      lfs.rmdir(blocker)
      assert.is_nil(ok)
      assert.matches("^scorch%.save: cannot write .*keep%.safetensors: Is a directory", msg)
      assert.are.equal(before, read_bytes(path))
      assert.are.same({}, temporaries())
    end)

    it("returns nil, msg for a missing directory or a directory target", function()
      local ok, msg = sc.save(dir .. "/no/such/dir/x.safetensors", {x = sc.ones(1)})
      assert.is_nil(ok)
      assert.matches("^scorch%.save: cannot write .*: No such file or directory", msg)
      assert(lfs.mkdir(dir .. "/target"))
      ok, msg = sc.save(dir .. "/target", {x = sc.ones(1)})
      assert.is_nil(ok)
      assert.matches("^scorch%.save: cannot write .*target: Is a directory", msg)
      assert.are.equal("directory", lfs.attributes(dir .. "/target", "mode"))
      assert.are.same({}, temporaries())
    end)
  end)

  it("raises on bad arguments", function()
    local t = sc.ones(1)
    local p = dir .. "/x.safetensors"
    for _, args in ipairs({
      {1, {}}, {p, nil}, {p, "x"}, {p, {x = 1}}, {p, {t}}, {p, {[true] = t}},
      {p, {x = t}, "meta"}, {p, {x = t}, {k = true}}, {p, {x = t}, {[1] = "v"}},
      {"a\0b", {x = t}}, {"", {x = t}}, {p, {["a\0b"] = t}}, {p, {x = t}, {k = "a\0b"}},
    }) do
      assert.has_error(function() sc.save(table.unpack(args, 1, 3)) end)
    end
    assert.has_error(function() sc.load() end)
    assert.has_error(function() sc.load({}) end)
    assert.has_error(function() sc.load("") end)
    assert.is_nil(lfs.attributes(p))
  end)
end)

-- A PNG made by hand for the reader's cases: IHDR, extra chunks, one IDAT
-- of deflate "stored" blocks (no compression, so any colour type and depth
-- can be written without zlib), IEND; CRCs and Adler-32 computed here.
local CRC = {}
for n = 0, 255 do
  local c = n
  for _ = 1, 8 do c = (c & 1) == 1 and (0xEDB88320 ~ (c >> 1)) or (c >> 1) end
  CRC[n] = c
end
local function crc32(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do c = CRC[(c ~ s:byte(i)) & 0xFF] ~ (c >> 8) end
  return c ~ 0xFFFFFFFF
end
local function chunk(kind, data) return (">I4"):pack(#data) .. kind .. data .. (">I4"):pack(crc32(kind .. data)) end
local function make_png(w, h, depth, ctype, rows, extra)
  local raw = {}
  for i, r in ipairs(rows) do raw[i] = "\0" .. r end -- filter type 0
  raw = table.concat(raw)
  local a, b = 1, 0
  for i = 1, #raw do
    a = (a + raw:byte(i)) % 65521
    b = (b + a) % 65521
  end
  local z = "\x78\x01" .. ("<BI2I2"):pack(1, #raw, #raw ~ 0xFFFF) .. raw .. (">I4"):pack(b << 16 | a)
  return "\137PNG\r\n\26\n" .. chunk("IHDR", (">I4I4BBBBB"):pack(w, h, depth, ctype, 0, 0, 0))
    .. (extra or "") .. chunk("IDAT", z) .. chunk("IEND", "")
end

describe("sc.image", function()
  -- What the writer stores for v: clamp to [0, 1], scale, round half up.
  local function byte(v)
    if v ~= v or v <= 0 then return 0 end -- NaN too
    if v >= 1 then return 255 end
    return math.floor(v * 255 + 0.5)
  end
  -- load_png's [0, 1] values back as the stored integers (0..top)
  local function stored(t, top)
    local out = t:totable()
    top = top or 255
    local function walk(x)
      for k, v in ipairs(x) do
        if type(v) == "table" then walk(v) else x[k] = math.floor(v * top + 0.5) end
      end
    end
    walk(out)
    return out
  end

  it("writes a 2x3 gray image with the exact byte values", function()
    local path = dir .. "/g.png"
    local img = sc.tensor{{0, 0.5, 1}, {-0.3, 1.7, 0.2}}
    assert.is_true(sc.image.save_png(path, img))
    local back = sc.image.load_png(path)
    assert.are.same({1, 2, 3}, back:shape())
    assert.are.same({{{0, 128, 255}, {0, 255, 51}}}, stored(back))
    assert.are.equal("float32", back:dtype())
    assert.is_true(math.abs(back:totable()[1][1][2] - 128 / 255) < 1e-7)
  end)

  it("writes RGB (float32 and float64) and NaN as 0", function()
    sc.manual_seed(3)
    for _, dtype in ipairs({"float32", "float64"}) do
      local img = sc.rand({3, 5, 7}, {dtype = dtype}) * 1.2 - 0.1
      local path = dir .. "/rgb.png"
      assert.is_true(sc.image.save_png(path, img))
      local want = img:totable()
      for c = 1, 3 do for y = 1, 5 do for x = 1, 7 do
        want[c][y][x] = byte(want[c][y][x])
      end end end
      assert.are.same(want, stored(sc.image.load_png(path)))
    end
    local path = dir .. "/nan.png"
    assert.is_true(sc.image.save_png(path, sc.tensor{{0 / 0, 1}}))
    assert.are.same({{{0, 1}}}, sc.image.load_png(path):totable())
  end)

  it("lays out a batch with make_grid (torchvision's layout)", function()
    sc.manual_seed(5)
    local batch = sc.rand(5, 3, 4, 4)
    local grid = sc.image.make_grid(batch)
    -- 5 images: 3 per row, 2 rows, 2 pixels of padding around each
    assert.are.same({3, 2 * 6 + 2, 3 * 6 + 2}, grid:shape())
    for k = 0, 4 do
      local y, x = k // 3, k % 3
      local cell = grid:narrow(2, y * 6 + 3, 4):narrow(3, x * 6 + 3, 4)
      assert.are.same(batch:select(1, k + 1):totable(), cell:totable())
    end
    -- the padding and the empty sixth cell hold pad_value (0)
    assert.are.equal(0, grid:narrow(2, 1, 2):abs():sum():item())
    assert.are.equal(0, grid:narrow(2, 9, 6):narrow(3, 15, 6):abs():sum():item())
    local ones = sc.image.make_grid(batch, {nrow = 5, padding = 1, pad_value = 1})
    assert.are.same({3, 6, 26}, ones:shape())
    assert.are.equal(1, ones:select(2, 1):min():item())
    assert.are.same({3, 4, 4}, sc.image.make_grid(batch:narrow(1, 1, 1)):shape())
    assert.are.same({1, 4, 8}, sc.image.make_grid(sc.rand(2, 1, 4, 4), {padding = 0}):shape())
  end)

  it("writes NxCxHxW as a grid", function()
    local path = dir .. "/grid.png"
    assert.is_true(sc.image.save_png(path, sc.rand(5, 1, 4, 4), {pad_value = 1}))
    local back = sc.image.load_png(path)
    assert.are.same({1, 14, 20}, back:shape())
    assert.are.equal(1, back:select(2, 1):min():item())
  end)

  it("raises on bad shapes, naming the shape", function()
    local p = dir .. "/bad.png"
    for _, shape in ipairs({{5}, {2, 4, 4}, {1, 2, 4, 4}, {1, 1, 1, 4, 4}, {0, 4}, {1, 0, 3}}) do
      local ok, err = pcall(sc.image.save_png, p, sc.zeros(shape))
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find("[" .. table.concat(shape, ",") .. "]", 1, true), err)
    end
    assert.has_error(function() sc.image.save_png(p, {1, 2}) end)
    assert.has_error(function() sc.image.save_png(nil, sc.zeros(2, 2)) end)
    assert.has_error(function() sc.image.make_grid(sc.zeros(2, 2)) end)
    assert.has_error(function() sc.image.make_grid(sc.zeros(0, 1, 2, 2)) end)
    assert.has_error(function() sc.image.make_grid(sc.zeros(2, 1, 2, 2), {nrow = 0}) end)
    assert.has_error(function() sc.image.make_grid(sc.zeros(2, 1, 2, 2), {padding = 1.5}) end)
    assert.has_error(function() core._save_png(p, sc.zeros(2, 2)) end)
    assert.is_nil(lfs.attributes(p))
  end)

  it("returns nil, msg when the file cannot be written", function()
    local ok, msg = sc.image.save_png(dir .. "/none/x.png", sc.zeros(2, 2))
    assert.is_nil(ok)
    assert.matches("^scorch%.image%.save_png: cannot write .*: No such file", msg)
    assert.are.same({}, temporaries())
  end)

  it("reads PNGs using every filter type", function()
    local gray = stored(sc.image.load_png(FIX .. "filters_gray.png"))
    local rgb = stored(sc.image.load_png(FIX .. "filters_rgb.png"))
    assert.are.same({1, 5, 4}, sc.image.load_png(FIX .. "filters_gray.png"):shape())
    assert.are.same({3, 5, 3}, sc.image.load_png(FIX .. "filters_rgb.png"):shape())
    -- make_fixtures.py: row y, byte i of the row holds (y*53 + i*mul + 7) % 256
    for y = 0, 4 do
      for x = 0, 3 do
        assert.are.equal((y * 53 + x * 71 + 7) % 256, gray[1][y + 1][x + 1])
      end
      for x = 0, 2 do for c = 0, 2 do
        assert.are.equal((y * 53 + (x * 3 + c) * 29 + 7) % 256, rgb[c + 1][y + 1][x + 1])
      end end
    end
  end)

  it("reads 16-bit, 1-bit, alpha and palette PNGs as their channels in [0, 1]", function()
    local function load(bytes)
      local path = dir .. "/made.png"
      write_bytes(path, bytes)
      return assert(sc.image.load_png(path))
    end
    -- 16-bit gray: stored / 65535, exactly
    local g16 = load(make_png(3, 1, 16, 0, {(">I2I2I2"):pack(0, 1000, 65535)}))
    assert.are.same({1, 1, 3}, g16:shape())
    assert.are.same({{{0, 1000, 65535}}}, stored(g16, 65535))
    -- 1-bit gray 1010 0000: 1, 0, 1
    assert.are.same({{{255, 0, 255}}}, stored(load(make_png(3, 1, 1, 0, {"\xA0"}))))
    -- gray + alpha, RGBA: two and four channels
    local ga = load(make_png(2, 1, 8, 4, {"\10\20\30\40"}))
    assert.are.same({{{10, 30}}, {{20, 40}}}, stored(ga))
    local rgba = load(make_png(1, 2, 8, 6, {"\1\2\3\4", "\5\6\7\8"}))
    assert.are.same({{{1}, {5}}, {{2}, {6}}, {{3}, {7}}, {{4}, {8}}}, stored(rgba))
    -- a palette gives RGB, or RGBA when it has transparency
    local plte = chunk("PLTE", "\255\0\0\0\0\255")
    local pal = load(make_png(2, 1, 8, 3, {"\1\0"}, plte))
    assert.are.same({{{0, 255}}, {{0, 0}}, {{255, 0}}}, stored(pal))
    local palt = load(make_png(2, 1, 8, 3, {"\1\0"}, plte .. chunk("tRNS", "\128\255")))
    assert.are.same({{{0, 255}}, {{0, 0}}, {{255, 0}}, {{255, 128}}}, stored(palt))
    -- a bit depth PNG does not have, with correct CRCs: stb_image's reason
    write_bytes(dir .. "/depth3.png", make_png(1, 1, 3, 0, {"\0"}))
    local t, msg = sc.image.load_png(dir .. "/depth3.png")
    assert.is_nil(t)
    assert.matches("^scorch%.image%.load_png: 1/2/4/8/16%-bit only", msg)
    -- a size that asks for more than 256 MB of pixels is refused before decoding
    write_bytes(dir .. "/huge.png", make_png(100000, 100000, 8, 2, {"\0\0\0"}))
    t, msg = sc.image.load_png(dir .. "/huge.png")
    assert.is_nil(t)
    assert.matches("too large", msg)
  end)

  it("refuses broken PNGs with nil, msg", function()
    local good = read_bytes(FIX .. "filters_gray.png")
    local cases = {
      {"not a PNG", "not a PNG"}, {good:sub(1, 40), "truncated"},
      {good:sub(1, 29) .. string.char((good:byte(30) + 1) % 256) .. good:sub(31), "CRC mismatch"},
    }
    for _, case in ipairs(cases) do
      local path = dir .. "/bad.png"
      write_bytes(path, case[1])
      local t, msg = sc.image.load_png(path)
      assert.is_nil(t)
      assert.matches(case[2], msg)
    end
    local t, msg = sc.image.load_png(dir .. "/none.png")
    assert.is_nil(t)
    assert.matches("^scorch%.image%.load_png: cannot open", msg)
    assert.has_error(function() sc.image.load_png(nil) end, "scorch.image.load_png: path must be a string, got a nil")
    assert.has_error(function() sc.image.load_png(7) end)
  end)
end)

describe("sc.io.read_idx", function()
  local function idx(code, dims, payload)
    return string.pack(">BBBB", 0, 0, code, #dims)
      .. string.pack(">" .. string.rep("I4", #dims), table.unpack(dims)) .. payload
  end

  it("reads the ubyte fixtures, plain and gzipped", function()
    local want = {}
    for i = 0, 23 do want[i + 1] = (i * 37 + 5) % 256 end
    for _, name in ipairs({"images.idx", "images.idx.gz"}) do
      local t = sc.io.read_idx(FIX .. name)
      assert.are.equal("float32", t:dtype())
      assert.are.same({2, 3, 4}, t:shape())
      assert.are.same(want, t:view(24):totable())
    end
    assert.are.same({3, 1, 4, 1, 5}, sc.io.read_idx(FIX .. "labels.idx"):totable())
    assert.are.same({3, 1, 4, 1, 5}, sc.io.read_idx(FIX .. "labels.idx.gz"):totable())
  end)

  it("reads every IDX type code", function()
    local cases = {
      {0x09, string.pack(">bb", -5, 100), {-5, 100}, "float32"},
      {0x0B, string.pack(">hh", -300, 7), {-300, 7}, "float32"},
      {0x0C, string.pack(">i4i4", -70000, 1), {-70000, 1}, "float32"},
      {0x0D, string.pack(">ff", 1.5, -0.25), {1.5, -0.25}, "float32"},
      {0x0E, string.pack(">dd", 0.1, -2), {0.1, -2}, "float64"},
    }
    for _, case in ipairs(cases) do
      local path = dir .. "/t.idx"
      write_bytes(path, idx(case[1], {2}, case[2]))
      local t = sc.io.read_idx(path)
      assert.are.equal(case[4], t:dtype())
      assert.are.same(case[3], t:totable())
    end
  end)

  it("keeps only the first items when asked, reading no further", function()
    for _, name in ipairs({"images.idx", "images.idx.gz"}) do
      local all = sc.io.read_idx(FIX .. name)
      local one = sc.io.read_idx(FIX .. name, 1)
      assert.are.same({1, 3, 4}, one:shape())
      assert.are.same(all:narrow(1, 1, 1):totable(), one:totable())
      assert.are.same({0, 3, 4}, sc.io.read_idx(FIX .. name, 0):shape())
      assert.are.same(all:totable(), sc.io.read_idx(FIX .. name, 2):totable())
      assert.are.same(all:totable(), sc.io.read_idx(FIX .. name, 9):totable())
    end
    -- the items past the first are not read: a file cut after them, or
    -- longer than its header says, still gives them
    local path = dir .. "/cut.idx"
    write_bytes(path, idx(0x0B, {4}, string.pack(">hh", -3, 9) .. "x"))
    assert.are.same({-3, 9}, sc.io.read_idx(path, 2):totable())
    local t, msg = sc.io.read_idx(path, 3)
    assert.is_nil(t)
    assert.is_truthy(msg:find("shape %[3%] of short needs 6 bytes of data, the file has 5"), msg)
    local ok, err = pcall(sc.io.read_idx, path, -2)
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("read_idx", 1, true) and tostring(err):find("items to keep", 1, true), err)
    assert.has_error(function() sc.io.read_idx(path, 1.5) end)
  end)

  it("refuses malformed files with nil, msg", function()
    local gz = read_bytes(FIX .. "images.idx.gz")
    local cases = {
      {"", "truncated file: 0 bytes"},
      {"\0\0\8", "truncated file: 3 bytes"},
      {"\1\2\8\1", "not an IDX file"},
      {"\0\0\10\1\0\0\0\1x", "unsupported type code 0x0a"},
      {"\0\0\8\0", "0 dimensions"},
      {"\0\0\8\9" .. string.rep("\0\0\0\1", 9) .. "x", "9 dimensions"},
      {"\0\0\8\3\0\0\0\2", "header of 3 dimensions needs 16"},
      {idx(8, {2, 3}, "12345"), "truncated file: shape %[2,3%] of ubyte needs 6 bytes of data, the file has 5"},
      {idx(8, {2}, "123"), "wrong size"},
      {idx(0x0B, {3}, "12345"), "needs 6 bytes"},
      {idx(8, {65536, 65536, 65536, 65536, 65536}, ""), "too large"},
      {gz:sub(1, #gz - 12), "cannot read"},
    }
    for _, case in ipairs(cases) do
      local path = dir .. "/bad.idx"
      write_bytes(path, case[1])
      local t, msg = sc.io.read_idx(path)
      assert.is_nil(t)
      assert.is_truthy(msg:find("^scorch%.io%.read_idx: "), msg)
      assert.is_truthy(msg:find(case[2]), msg)
    end
    local t, msg = sc.io.read_idx(dir .. "/none.idx")
    assert.is_nil(t)
    assert.matches("cannot open .*none%.idx: No such file", msg)
    assert.has_error(function() sc.io.read_idx() end)
  end)
end)

describe("io modules", function()
  it("define no globals", function()
    local before = {}
    for k in pairs(_G) do before[k] = true end
    package.loaded["scorch.image"], package.loaded["scorch.io"] = nil, nil
    require "scorch.image"
    require "scorch.io"
    for k in pairs(_G) do assert.is_true(before[k], "new global " .. tostring(k)) end
  end)
end)

describe("core.list_dir", function()
  it("lists a folder's names sorted, without . and .., and reports a missing one", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(sc.core.mkdir(dir))
    for _, name in ipairs({ "b.png", "a.json", "c d" }) do
      local f = assert(io.open(dir .. "/" .. name, "w"))
      f:close()
    end
    assert(sc.core.mkdir(dir .. "/sub"))
    assert.are.same({ "a.json", "b.png", "c d", "sub" }, sc.core.list_dir(dir))
    os.execute("rm -rf '" .. dir .. "'")
    local ok, err = sc.core.list_dir(dir)
    assert.is_nil(ok)
    assert.truthy(err:find("cannot read directory " .. dir, 1, true), err)
  end)
end)
