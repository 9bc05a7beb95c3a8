-- Matrix products split over scorch's threads (csrc/core/gemm.c): a large
-- product is cut into blocks of whole rows of the output at multiples of
-- 48, each done by OpenBLAS (single-threaded) or, for float32 on a CPU with
-- AVX-512, by the core's own kernels (csrc/core/gemm512.c).  Each block
-- must land where it belongs (checked against a plain float64 triple loop)
-- and the bits must not depend on the thread count.  The float32 cases run
-- on both paths where the CPU has both.
local sc = require "scorch"
local core = require "scorch.core"

-- the float32 paths this CPU can take: "own" only where it has AVX-512
local function float32_paths()
  local was = core._set_gemm_avx512(true)
  local has_own = core._set_gemm_avx512(was)
  return has_own and { "own", "openblas" } or { "openblas" }
end

-- f() with the float32 product path set, restored afterwards
local function on_path(path, f)
  local was = core._set_gemm_avx512(path == "own")
  local ok, err = pcall(f)
  core._set_gemm_avx512(was)
  if not ok then error(err, 0) end
end

local function max_diff(a, b) return (a - b):abs():max():item() end

-- op(a) op(b) by a triple loop in Lua doubles, from the values as stored
local function reference(a, b)
  local A, B = a:double():totable(), b:double():totable()
  local m, k, n = #A, #B, #B[1]
  local out = {}
  for i = 1, m do
    local row, Ai = {}, A[i]
    for j = 1, n do
      local s = 0
      for p = 1, k do s = s + Ai[p] * B[p][j] end
      row[j] = s
    end
    out[i] = row
  end
  return sc.tensor(out, { dtype = "float64" })
end

-- an m x n operand stored as given, or stored transposed and viewed back
local function operand(m, n, transposed, dt, g)
  if transposed then return sc.randn(n, m, { dtype = dt, generator = g }):t() end
  return sc.randn(m, n, { dtype = dt, generator = g })
end

describe("matrix products split over threads", function()
  local saved
  before_each(function() saved = sc.get_num_threads() end)
  after_each(function() sc.set_num_threads(saved) end)

  -- every shape is past the split threshold (m n k >= 262144); the ragged
  -- sizes leave a last block that is not a multiple of 48, and for the own
  -- kernels a last register block of fewer than 8 rows, a last panel of
  -- 16 columns or fewer (47 = 32 + 15, 333 = 320 + 13), k in several
  -- slices of 256 (600) and columns in several blocks of 2048 (2100)
  local shapes = {
    { 301, 47, 40, "tall: split 144 | 157 rows" },
    { 100, 333, 30, "wide: split 48 | 52 rows" },
    { 97, 35, 400, "long k: split 48 | 49 rows" },
    { 45, 333, 30, "too few rows to split" },
    { 101, 40, 600, "k in three slices: split 48 | 53 rows" },
    { 9, 2100, 20, "columns in two blocks" },
    -- the own kernels read B where it is when few rows of A read it (at
    -- most 256), except where B's rows are a multiple of 4 KB apart
    { 64, 1024, 40, "rows of B 4 KB apart: B packed" },
    { 256, 200, 300, "256 rows: B read in place, its last 8 columns packed" },
    -- matrix-vector products (the own kernels' dot and axpy loops)
    { 3001, 1, 300, "one column: split 1488 | 1513 rows" },
    { 150, 1, 37, "one column, k not a multiple of 16" },
    { 1, 700, 500, "one row" },
    { 1, 133, 19, "one row, a partial block of 128 outputs" },
    { 1, 1, 70, "one element" },
  }
  local cases = { { "float64", "openblas" } }
  for _, path in ipairs(float32_paths()) do table.insert(cases, 1, { "float32", path }) end
  for _, case in ipairs(cases) do
    local dt, path = case[1], case[2]
    local tol = dt == "float32" and 1e-4 or 1e-11
    for _, s in ipairs(shapes) do
      local m, n, k, what = s[1], s[2], s[3], s[4]
      for _, ta in ipairs({ false, true }) do
        for _, tb in ipairs({ false, true }) do
          it(("[%d,%d]x[%d,%d] %s, %s by %s, a %s, b %s: the triple loop, same bits at 1 and 2 threads")
              :format(m, k, k, n, what, dt, path, ta and "transposed" or "as stored",
                tb and "transposed" or "as stored"), function() on_path(path, function()
            local g = sc.Generator(m + n + k)
            local a, b = operand(m, k, ta, dt, g), operand(k, n, tb, dt, g)
            local ref = reference(a, b)
            sc.set_num_threads(1)
            local one = sc.matmul(a, b)
            sc.set_num_threads(2)
            local two = sc.matmul(a, b)
            -- relative to the size of the terms: sqrt(k) for unit normals
            assert.is_true(max_diff(two:double(), ref) < tol * math.sqrt(k))
            assert.are.equal(0, max_diff(two, one))
          end) end)
        end
      end
    end
  end

  for _, path in ipairs(float32_paths()) do
    it("float32 by " .. path .. ": B a column slice of a wider matrix (rows 300 floats apart)", function()
      on_path(path, function()
        local g = sc.Generator(7)
        local a = sc.randn(40, 90, { generator = g })
        local b = sc.randn(90, 300, { generator = g }):narrow(2, 5, 250)
        local ref = reference(a, b)
        sc.set_num_threads(1)
        local one = sc.matmul(a, b)
        sc.set_num_threads(2)
        local two = sc.matmul(a, b)
        assert.is_true(max_diff(one:double(), ref) < 1e-4 * math.sqrt(90))
        assert.are.equal(0, max_diff(two, one))
      end)
    end)
  end

  it("float32 by own kernels: operands read in place or packed, the same bits", function()
    if float32_paths()[1] ~= "own" then return end -- no AVX-512: one path only
    on_path("own", function()
      local g = sc.Generator(9)
      -- A read in place, stored and transposed, with and without a last
      -- partial block of rows; B read in place (at most 256 rows of A) or
      -- packed (300); k over one slice of 256 (600)
      for _, s in ipairs({ { 45, 40, 300 }, { 200, 24, 70 }, { 37, 250, 90 }, { 100, 48, 600 },
        { 300, 70, 50 } }) do
        local m, n, k = s[1], s[2], s[3]
        for _, ta in ipairs({ false, true }) do
          for _, tb in ipairs({ false, true }) do
            local a, b = operand(m, k, ta, "float32", g), operand(k, n, tb, "float32", g)
            local prev = core._set_gemm_inplace(false)
            local ok, packed = pcall(sc.matmul, a, b)
            core._set_gemm_inplace(prev)
            assert(ok, packed)
            local direct = sc.matmul(a, b)
            assert.are.equal(0, max_diff(direct, packed))
            assert.is_true(max_diff(direct:double(), reference(a, b)) < 1e-4 * math.sqrt(k))
          end
        end
      end
    end)
  end)

  it("adds onto the bias (beta = 1) in every block: linear with a bias at 2 threads", function()
    local g = sc.Generator(11)
    -- 600 inputs take OpenBLAS rather than the narrow-layer kernel
    local x = sc.randn(200, 600, { dtype = "float64", generator = g })
    local w = sc.randn(70, 600, { dtype = "float64", generator = g })
    local b = sc.randn(70, { dtype = "float64", generator = g })
    local ref = reference(x, w:t()) + b
    sc.set_num_threads(1)
    local one = sc.linear(x, w, b)
    sc.set_num_threads(2)
    local two = sc.linear(x, w, b)
    assert.is_true(max_diff(two, ref) < 1e-10)
    assert.are.equal(0, max_diff(two, one))
  end)

  for _, path in ipairs(float32_paths()) do
    -- {rows, outputs, what}: 70 outputs (k = 600 in three slices), and one
    -- output (a matrix-vector product)
    for _, case in ipairs({ { 150, 70, "in each of three k slices" },
      { 300, 1, "with one output (a matrix-vector product)" } }) do
      it("float32 by " .. path .. ": adds onto the bias (beta = 1) " .. case[3], function()
        on_path(path, function()
          local g = sc.Generator(14 + case[2])
          local x = sc.randn(case[1], 600, { generator = g })
          local w = sc.randn(case[2], 600, { generator = g })
          local b = sc.randn(case[2], { generator = g })
          local ref = reference(x, w:t()) + b:double()
          sc.set_num_threads(1)
          local one = sc.linear(x, w, b)
          sc.set_num_threads(2)
          local two = sc.linear(x, w, b)
          assert.is_true(max_diff(two:double(), ref) < 1e-4 * math.sqrt(600))
          assert.are.equal(0, max_diff(two, one))
        end)
      end)
    end

    it("float32 by " .. path .. ": an infinity in one row of a spoils only that row", function()
      on_path(path, function()
        local g = sc.Generator(15)
        local A = sc.randn(37, 50, { generator = g }):totable()
        A[5][7] = math.huge
        local a = sc.tensor(A, { dtype = "float32" })
        local b = sc.randn(50, 45, { generator = g })
        local y = sc.matmul(a, b):double():totable()
        local ref = reference(a, b):totable()
        for i = 1, 37 do
          for j = 1, 45 do
            local v, r = y[i][j], ref[i][j]
            if i == 5 then
              assert.is_true(v ~= v and r ~= r or v == r) -- the same infinity or NaN
            else
              assert.is_true(math.abs(v - r) < 1e-3)
            end
          end
        end
      end)
    end)
  end

  it("batched products: every batch entry split and placed", function()
    local g = sc.Generator(12)
    local a = sc.randn(3, 64, 80, { dtype = "float64", generator = g })
    local b = sc.randn(3, 80, 70, { dtype = "float64", generator = g })
    sc.set_num_threads(2)
    local y = sc.matmul(a, b)
    for i = 1, 3 do
      assert.is_true(max_diff(y:select(1, i), reference(a:select(1, i), b:select(1, i))) < 1e-10)
    end
  end)

  it("a one-sample convolution (products outside the per-sample threads) at 1 and 2 threads", function()
    local g = sc.Generator(13)
    local x = sc.randn(1, 24, 20, 20, { generator = g })
    local w = sc.randn(100, 24, 3, 3, { generator = g }) -- 100 output rows: split 48 | 52
    sc.set_num_threads(1)
    local one = sc.conv2d(x, w, nil, { padding = 1 })
    sc.set_num_threads(2)
    local two = sc.conv2d(x, w, nil, { padding = 1 })
    assert.are.equal(0, max_diff(two, one))
    -- one output pixel by hand: sum over channels and taps
    local X, W = x:double():totable(), w:double():totable()
    local s = 0
    for c = 1, 24 do
      for i = 1, 3 do
        for j = 1, 3 do s = s + W[5][c][i][j] * X[1][c][7 + i - 2][9 + j - 2] end
      end
    end
    assert.is_true(math.abs(two:double():totable()[1][5][7][9] - s) < 1e-4)
  end)
end)
