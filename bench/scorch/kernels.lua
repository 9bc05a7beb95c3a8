-- Not a paired workload: the core's float32 kernels timed against the
-- other path on this machine, for the figures in the README and the notes.
--
--   bin/scorch bench/scorch/kernels.lua [--threads N]
--
-- products: sc.matmul on the product shapes of W1 (128-wide layers, batch
--   1024), W3's convolutions and square ones, each as stored and with one
--   side transposed, by OpenBLAS and by csrc/core/gemm512.c (where the CPU
--   has AVX-512), in GFLOP/s (2mnk / best of 3 timed loops).
-- chain: W2's network (3 -> 128 -> 128 -> 128 -> 2, SiLU) on 10,000 rows
--   without a graph, layer by layer and as one block-by-block chain
--   (nn.Sequential's path), in microseconds per forward.
local sc = require "scorch"
local core = require "scorch.core"

local threads = 1
for i = 1, #arg do
  if arg[i] == "--threads" then threads = math.tointeger(tonumber(arg[i + 1])) end
end
sc.set_num_threads(threads)

-- best of 3 loops of `reps` calls, seconds per call
local function best_time(f, reps)
  f()
  local best = math.huge
  for _ = 1, 3 do
    local t0 = core.time()
    for _ = 1, reps do f() end
    best = math.min(best, (core.time() - t0) / reps)
  end
  return best
end

print(("products, %d thread(s): GFLOP/s by OpenBLAS and by gemm512.c"):format(threads))
local shapes = {
  { 1024, 1024, 1024 }, { 256, 256, 256 }, { 1024, 128, 128 }, { 128, 128, 1024 },
  { 32, 784, 9 }, { 64, 196, 288 }, { 32, 784, 864 }, { 288, 196, 64 }, { 864, 784, 32 },
  { 32, 288, 196 }, { 64, 576, 196 },
}
local was = core._set_gemm_avx512(true)
local has_own = core._set_gemm_avx512(was)
for _, s in ipairs(shapes) do
  local m, n, k = s[1], s[2], s[3]
  for _, tr in ipairs({ { false, false }, { true, false }, { false, true } }) do
    local a = tr[1] and sc.randn(k, m):t() or sc.randn(m, k)
    local b = tr[2] and sc.randn(n, k):t() or sc.randn(k, n)
    local reps = math.max(3, math.floor(2e9 / (2 * m * n * k)))
    local rate = {}
    for i, own in ipairs({ false, true }) do
      if own and not has_own then break end
      local prev = core._set_gemm_avx512(own)
      rate[i] = 2 * m * n * k / best_time(function() return sc.matmul(a, b) end, reps) / 1e9
      core._set_gemm_avx512(prev)
    end
    print(("  [%4d,%4d] x [%4d,%4d]%s  OpenBLAS %6.1f  gemm512 %s"):format(m, k, k, n,
      tr[1] and " (a transposed)" or tr[2] and " (b transposed)" or "               ", rate[1],
      rate[2] and ("%6.1f  x%.2f"):format(rate[2], rate[2] / rate[1]) or "  (no AVX-512)"))
  end
end

print("chain: W2's network on [10000, 3] without a graph, microseconds per forward")
local nn = sc.nn
sc.manual_seed(0)
local net = nn.Sequential { nn.Linear(3, 128), nn.SiLU(), nn.Linear(128, 128), nn.SiLU(),
  nn.Linear(128, 128), nn.SiLU(), nn.Linear(128, 2) }
local x = sc.randn(10000, 3)
sc.no_grad(function()
  local one_by_one = best_time(function()
    local h = x
    for i = 1, 7, 2 do h = sc.linear(h, net[i].weight, net[i].bias, i < 7 and "silu" or nil) end
    return h
  end, 50)
  local chain = best_time(function() return net(x) end, 50)
  print(("  layer by layer %.0f us, chain %.0f us (%.1f GFLOP/s)"):format(one_by_one * 1e6, chain * 1e6,
    2 * 10000 * (3 * 128 + 128 * 128 * 2 + 128 * 2) / chain / 1e9))
end)
