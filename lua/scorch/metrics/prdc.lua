--- Sample-based metrics on feature vectors: KID (kernel MMD) and improved
-- precision and recall with realism scores.  Distances are GEMM tiles in
-- csrc/core/linalg.c, never a full [N, N] matrix.
-- @module scorch.metrics.prdc
local sc = require "scorch"
local core = require "scorch.core"
local common = require "scorch.metrics.common"

local M = {}

-- Sum of (x·y/d + 1)³ over all pairs of rows of a [m, d] and b [n, d], and
-- the sum of its diagonal when a and b are the same set.
local function poly_sums(a, b, same)
  local d = a:size(2)
  local k = (sc.matmul(a, b:t()):double() / d + 1) ^ 3
  local total = k:sum():item()
  if not same then return total, 0 end
  local diag = ((a:double() * a:double()):sum(2, false) / d + 1) ^ 3
  return total, diag:sum():item()
end

--- KID, the kernel inception distance (Bińkowski et al. 2018): the unbiased
-- MMD² with the cubic polynomial kernel k(x, y) = (x·y/d + 1)³,
--   Σ_{i≠j} k(x_i, x_j)/(m(m−1)) + Σ_{i≠j} k(y_i, y_j)/(m(m−1)) − 2 Σ_{i,j} k(x_i, y_j)/m²,
-- averaged over random subsets of m points from each set.
-- @tparam Tensor real features [N_r, D]
-- @tparam Tensor fake features [N_f, D]
-- @tparam[opt] table opts `{subsets = 100, subset_size = min(1000, N_r, N_f),
--   generator = sc.Generator or nil}`
-- @return mean MMD², its standard deviation over the subsets (population
--   std, as clean-fid and torch-fidelity report), and `{values =, subsets =, subset_size =}`
-- @usage local kid, std = sc.metrics.kid(real_feats, fake_feats, {subsets = 50})
function M.kid(real, fake, opts)
  opts = common.check_opts("kid", opts, { "subsets", "subset_size", "generator" })
  real = common.features_arg(real, "kid", "real")
  fake = common.features_arg(fake, "kid", "fake")
  if real:size(2) ~= fake:size(2) then
    error(("scorch.metrics.kid: feature dimensions differ (%d and %d)"):format(real:size(2), fake:size(2)), 2)
  end
  local nr, nf = real:size(1), fake:size(1)
  local subsets = common.posint(opts.subsets, 100, "kid", "subsets")
  local m = common.posint(opts.subset_size, math.min(1000, nr, nf), "kid", "subset_size")
  if m < 2 or m > nr or m > nf then
    error(("scorch.metrics.kid: subset_size %d must be in 2..min(%d, %d)"):format(m, nr, nf), 2)
  end
  local values, mean = {}, 0
  sc.no_grad(function()
    for s = 1, subsets do
      local x = real:index_select(1, common.subset(nr, m, opts.generator))
      local y = fake:index_select(1, common.subset(nf, m, opts.generator))
      local kxx, dx = poly_sums(x, x, true)
      local kyy, dy = poly_sums(y, y, true)
      local kxy = poly_sums(x, y, false)
      values[s] = (kxx - dx + kyy - dy) / (m * (m - 1)) - 2 * kxy / (m * m)
      mean = mean + values[s] / subsets
    end
  end)
  local var = 0
  for _, v in ipairs(values) do var = var + (v - mean) ^ 2 / subsets end
  return mean, math.sqrt(var), { values = values, subsets = subsets, subset_size = m }
end

-- The median of a list of numbers.
local function median(list)
  local s = table.move(list, 1, #list, 1, {})
  table.sort(s)
  local n = #s
  return n % 2 == 1 and s[(n + 1) // 2] or 0.5 * (s[n // 2] + s[n // 2 + 1])
end

--- k-NN radii: the distance from every row to its k-th nearest other row
-- (the point itself excluded; duplicates count), distances in GEMM form
-- ‖a‖² − 2a·b + ‖b‖² clamped at 0, float32, in tiles of bounded memory.
-- @tparam Tensor x features [N, D], N > k
-- @tparam[opt=3] integer k
-- @return radii [N] (float32 distances, not squared)
-- @usage local r = sc.metrics.knn_radii(feats, 3)
function M.knn_radii(x, k)
  x = common.features_arg(x, "knn_radii", "x")
  k = common.posint(k, 3, "knn_radii", "k")
  if x:size(1) <= k then
    error(("scorch.metrics.knn_radii: need more than k = %d points, got %d"):format(k, x:size(1)), 2)
  end
  return core.linalg_knn_radii(x, k):sqrt()
end

--- Improved precision and recall (Kynkäänniemi et al. 2019): every real and
-- every fake point gets a ball reaching its k-th nearest neighbour in its
-- own set; precision = fraction of fakes inside some real ball, recall =
-- fraction of reals inside some fake ball.  The realism score of a fake is
-- max_i r_i / ‖f − x_i‖ over the real balls whose radius is at most the
-- median (the paper discards the larger half as outliers); ≥ 1 means inside.
-- @tparam Tensor real features [N_r, D], N_r > k
-- @tparam Tensor fake features [N_f, D], N_f > k
-- @tparam[opt] table opts `{k = 3, realism = true}`
-- @return `{precision =, recall =, k =, n_real =, n_fake =, realism = [N_f] or nil,
--   fake_in = [N_f] 0/1, real_in = [N_r] 0/1, real_radii = [N_r], fake_radii = [N_f]}`
-- @usage local pr = sc.metrics.precision_recall(real_feats, fake_feats, {k = 3}); print(pr.precision, pr.recall)
function M.precision_recall(real, fake, opts)
  opts = common.check_opts("precision_recall", opts, { "k", "realism" })
  real = common.features_arg(real, "precision_recall", "real")
  fake = common.features_arg(fake, "precision_recall", "fake")
  local k = common.posint(opts.k, 3, "precision_recall", "k")
  if real:size(2) ~= fake:size(2) then
    error(("scorch.metrics.precision_recall: feature dimensions differ (%d and %d)")
      :format(real:size(2), fake:size(2)), 2)
  end
  local nr, nf = real:size(1), fake:size(1)
  if nr <= k or nf <= k then
    error(("scorch.metrics.precision_recall: need more than k = %d points in each set, got %d real and %d fake")
      :format(k, nr, nf), 2)
  end
  local r2r = core.linalg_knn_radii(real, k)
  local r2f = core.linalg_knn_radii(fake, k)
  local w
  if opts.realism ~= false then
    local cut = median(r2r:values())
    w = sc.where(r2r:le(cut), r2r, sc.zeros(nr)):contiguous()
  end
  local fake_in, real_in, realism2 = core.linalg_pr_cover(real, fake, r2r, r2f, w)
  return {
    precision = fake_in:sum():item() / nf, recall = real_in:sum():item() / nr, k = k, n_real = nr, n_fake = nf,
    realism = realism2 and realism2:sqrt(), fake_in = fake_in, real_in = real_in,
    real_radii = r2r:sqrt(), fake_radii = r2f:sqrt(),
  }
end

return M
