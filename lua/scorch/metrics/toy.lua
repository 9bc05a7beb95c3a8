--- Checks of samples and scores against a known toy distribution: per-mode
-- fractions and their total-variation distance from the true weights, mode
-- coverage, kernel MMD with its real-versus-real baseline, and the mean
-- squared error of a score model against the exact score.
-- @module scorch.metrics.toy
local sc = require "scorch"
local util = require "scorch.util"

local M = {}

local function check_points(x, fn)
  if not sc.is_tensor(x) or x:dim() ~= 2 then
    error(("scorch.metrics.%s: expected points of shape [N, D]"):format(fn), 3)
  end
end

-- Means as a [K, D] tensor of x's dtype, from a mixture, a tensor or rows.
local function means_of(modes, dtype)
  if type(modes) == "table" and modes.means and modes.K then return sc.tensor(modes.means, { dtype = dtype }) end
  if sc.is_tensor(modes) then return modes:to(dtype) end
  if type(modes) == "table" and #modes > 0 then return sc.tensor(modes, { dtype = dtype }) end
  error("scorch.metrics: modes must be a Gaussian mixture, a [K, D] tensor or a list of points", 3)
end

--- mode_fractions(x, modes [, {assign="nearest"|"posterior", max_distance=}])
--   -> fractions (Lua array, K), counts, labels (Lua array, 0 = unassigned)
-- "nearest" assigns each point to the closest mean; "posterior" (needs a
-- mixture) to the component with the largest posterior probability.
-- Points farther than max_distance from their mean are left unassigned
-- (they count in N but in no mode).
function M.mode_fractions(x, modes, opts)
  check_points(x, "mode_fractions")
  opts = util.check_options(opts, { "assign", "max_distance" }, "scorch.metrics.mode_fractions")
  local assign = opts.assign or "nearest"
  local N = x:size(1)
  local labels, dist
  local function argmax_rows(t) -- [N, K] -> values, 1-based indices
    local v, i = t:max(2, false)
    return v:values(), i:values()
  end
  local mu = means_of(modes, x:dtype())
  local K = mu:size(1)
  local d2 = sc.no_grad(function()
    return (x:unsqueeze(2) - mu:unsqueeze(1)):square():sum(3, false) -- [N, K]
  end)
  if assign == "nearest" then
    local negd, idx = argmax_rows(-d2)
    labels, dist = idx, {}
    for i = 1, N do dist[i] = math.sqrt(math.max(0, -negd[i])) end
  elseif assign == "posterior" then
    if not (type(modes) == "table" and modes.posterior) then
      error("scorch.metrics.mode_fractions: assign = \"posterior\" needs a mixture distribution", 2)
    end
    local _, idx = argmax_rows(sc.no_grad(modes.posterior, modes, x))
    labels = idx
    local d2v = d2:values()
    dist = {}
    for i = 1, N do dist[i] = math.sqrt(d2v[(i - 1) * K + labels[i]]) end
  else
    error(("scorch.metrics.mode_fractions: assign must be \"nearest\" or \"posterior\" (got %s)")
      :format(tostring(assign)), 2)
  end
  local counts = {}
  for k = 1, K do counts[k] = 0 end
  for i = 1, N do
    local l = math.tointeger(labels[i])
    if opts.max_distance and dist[i] > opts.max_distance then l = 0 end
    labels[i] = l
    if l > 0 then counts[l] = counts[l] + 1 end
  end
  local fractions = {}
  for k = 1, K do fractions[k] = N > 0 and counts[k] / N or 0 end
  return fractions, counts, labels
end

--- Total-variation distance ½ Σ_k |p_k − q_k| of two discrete distributions.
function M.tv_distance(p, q)
  if #p ~= #q then error("scorch.metrics.tv_distance: lists of different lengths", 2) end
  local s = 0
  for k = 1, #p do s = s + math.abs(p[k] - q[k]) end
  return 0.5 * s
end

--- mode_coverage(fractions, weights [, {threshold=0.1}]) -> covered, flags
-- A mode is covered when it holds at least threshold × its expected share.
function M.mode_coverage(fractions, weights, opts)
  opts = util.check_options(opts, { "threshold" }, "scorch.metrics.mode_coverage")
  local thr = opts.threshold or 0.1
  local covered, flags = 0, {}
  for k = 1, #weights do
    flags[k] = (fractions[k] or 0) >= thr * weights[k]
    if flags[k] then covered = covered + 1 end
  end
  return covered, flags
end

--- All per-mode statistics at once for samples of a mixture:
-- {fractions, counts, weights, tv, covered, n_modes, flags, unassigned}.
function M.mode_report(x, mixture, opts)
  opts = util.check_options(opts, { "assign", "max_distance", "threshold" }, "scorch.metrics.mode_report")
  local fr, counts = M.mode_fractions(x, mixture, { assign = opts.assign, max_distance = opts.max_distance })
  local covered, flags = M.mode_coverage(fr, mixture.weights, { threshold = opts.threshold })
  local assigned = 0
  for _, c in ipairs(counts) do assigned = assigned + c end
  return { fractions = fr, counts = counts, weights = mixture.weights,
    tv = M.tv_distance(fr, mixture.weights), covered = covered, n_modes = #mixture.weights,
    flags = flags, unassigned = x:size(1) - assigned }
end

-- ---- MMD ---------------------------------------------------------------------------------

-- Squared distances between rows of a [m, D] and b [n, D] -> [m, n].
local function sqdist(a, b)
  local an = a:square():sum(2, true)
  local bn = b:square():sum(2, true):t()
  return sc.clamp(an + bn - sc.matmul(a, b:t()) * 2, 0)
end

-- Sum of exp(−‖a_i − b_j‖²/(2h²)) over all pairs, in row blocks.  The
-- exponent c(‖a‖² + ‖b‖² − 2a·b), c = −1/(2h²), comes out of one matrix
-- product of augmented rows [−2c·a, c‖a‖², 1] and [b, 1, c‖b‖²]; the
-- kernel values are float32, their sum is accumulated in double.
local function kernel_sum(a, b, h, block)
  local c = -1 / (2 * h * h)
  local m, total = a:size(1), 0
  local aa = sc.cat({ a * (-2 * c), a:square():sum(2, true) * c, sc.ones(m, 1, { dtype = a:dtype() }) }, 2)
  local bb = sc.cat({ b, sc.ones(b:size(1), 1, { dtype = b:dtype() }), b:square():sum(2, true) * c }, 2)
  local bt = bb:t():contiguous()
  for start = 1, m, block do
    local len = math.min(block, m - start + 1)
    local expo = sc.matmul(aa:narrow(1, start, len), bt)
    total = total + sc.clamp(expo, nil, 0):exp():sum():item()
  end
  return total
end

--- Median of pairwise distances of (up to n of) the pooled points.
function M.median_bandwidth(x, y, opts)
  opts = util.check_options(opts, { "n", "generator" }, "scorch.metrics.median_bandwidth")
  local n = opts.n or 1000
  local pool = y and sc.cat({ x, y:to(x:dtype()) }, 1) or x
  if pool:size(1) > n then
    local idx = require("scorch.data.loader").randperm(pool:size(1), opts and opts.generator)
    pool = pool:index_select(1, table.move(idx, 1, n, 1, {}))
  end
  local d = sqdist(pool, pool):values()
  local m, vals = pool:size(1), {}
  for i = 1, m do
    for j = i + 1, m do vals[#vals + 1] = d[(i - 1) * m + j] end
  end
  table.sort(vals)
  return math.sqrt(vals[(#vals + 1) // 2] or 1)
end

--- Gretton et al. 2012, eq. 3 (unbiased MMD² with a Gaussian kernel):
--   MMD²_u = Σ_{i≠j} k(x_i,x_j)/(m(m−1)) + Σ_{i≠j} k(y_i,y_j)/(n(n−1)) − 2 Σ k(x_i,y_j)/(mn)
-- mmd(x, y [, {bandwidth=, biased=false, block=, generator=}]) -> MMD², h
-- The bandwidth h defaults to the median pairwise distance of the pooled
-- samples (median heuristic).  Kernel values are float32 in blocks of rows
-- (block rows at a time; default about 4M values per block), summed in
-- double.
function M.mmd(x, y, opts)
  check_points(x, "mmd")
  check_points(y, "mmd")
  opts = util.check_options(opts, { "bandwidth", "biased", "block", "n", "generator" }, "scorch.metrics.mmd")
  return sc.no_grad(function()
    local a, b = x:float(), y:float()
    local h = opts.bandwidth or M.median_bandwidth(a, b, { n = opts.n, generator = opts.generator })
    local m, n = a:size(1), b:size(1)
    -- rows per block: about 4M kernel values (16 MB) at a time, so 10,000
    -- points never hold their 400 MB kernel matrix
    local block = opts.block or math.max(1, (1 << 22) // math.max(m, n))
    local kxx, kyy, kxy = kernel_sum(a, a, h, block), kernel_sum(b, b, h, block), kernel_sum(a, b, h, block)
    if opts.biased then
      return kxx / (m * m) + kyy / (n * n) - 2 * kxy / (m * n), h
    end
    -- k(x, x) = 1 on the diagonal
    return (kxx - m) / (m * (m - 1)) + (kyy - n) / (n * (n - 1)) - 2 * kxy / (m * n), h
  end)
end

--- The same statistic between two independent real samples of size n (the
-- level a perfect model reaches): mmd_baseline(dist, n, {bandwidth=,
-- generator=, repeats=3}) -> mean |MMD²| over the repeats, list of values.
function M.mmd_baseline(dist, n, opts)
  opts = util.check_options(opts, { "repeats", "generator", "bandwidth", "biased", "block", "n" },
    "scorch.metrics.mmd_baseline")
  local reps, vals, mean = opts.repeats or 3, {}, 0
  for r = 1, reps do
    local a = dist:sample(n, { generator = opts.generator })
    local b = dist:sample(n, { generator = opts.generator })
    vals[r] = M.mmd(a, b, { bandwidth = opts.bandwidth, biased = opts.biased, block = opts.block, n = opts.n,
      generator = opts.generator })
    mean = mean + math.abs(vals[r]) / reps
  end
  return mean, vals
end

-- ---- score error ------------------------------------------------------------------------

local function eval_score(fn, x, sigma)
  local f = util.as_score_fn(fn)
  return sc.no_grad(function()
    if sigma ~= nil then return f(x, util.sigma_column(sigma, x)) end
    return f(x)
  end)
end

--- score_error(model, truth, x [, {sigma=}]) -> mean_n ‖s(x_n) − s*(x_n)‖²,
-- per-point errors [N].  model/truth: score functions, models or
-- distributions; with sigma both are evaluated at that noise level (a
-- distribution then uses score_at).  On data samples x this estimates twice
-- the Fisher divergence.
function M.score_error(model, truth, x, opts)
  check_points(x, "score_error")
  local sigma = util.check_options(opts, { "sigma" }, "scorch.metrics.score_error").sigma
  local s = eval_score(model, x, sigma)
  local t = eval_score(truth, x, sigma)
  local per = (s - t):square():sum(2, false)
  return per:mean():item(), per
end

--- A grid of n×n points covering range = {xmin, xmax, ymin, ymax}, as an
-- [n*n, 2] tensor, row-major with y descending (image order: row 1 is the
-- top), and the coordinates of the cell centres.
function M.grid(range, n, dtype)
  local xmin, xmax, ymin, ymax = range[1], range[2], range[3], range[4]
  local pts = {}
  for r = 1, n do
    local yv = ymax - (r - 0.5) * (ymax - ymin) / n
    for c = 1, n do
      local xv = xmin + (c - 0.5) * (xmax - xmin) / n
      pts[#pts + 1] = xv
      pts[#pts + 1] = yv
    end
  end
  return sc.tensor(pts, { dtype = dtype or "float32" }):view(n * n, 2)
end

--- score_error_grid(model, truth [, {range=, n=32, sigma=, weight=}])
--   -> mean error over the grid, [n, n] tensor of errors (row 1 = top)
-- weight = a distribution weights cells by its density at the noise level
-- (the mean is then Σ p e / Σ p); default uniform over the box.
function M.score_error_grid(model, truth, opts)
  opts = util.check_options(opts, { "n", "range", "dtype", "weight", "sigma" }, "scorch.metrics.score_error_grid")
  local n = opts.n or 32
  local range = opts.range or (type(truth) == "table" and truth.range) or { -3, 3, -3, 3 }
  local x = M.grid(range, n, opts.dtype)
  local _, per = M.score_error(model, truth, x, { sigma = opts.sigma })
  local mean
  if opts.weight then
    local lp = opts.sigma and opts.weight:log_prob_at(x, opts.sigma) or opts.weight:log_prob(x)
    local w = (lp - lp:max()):exp()
    mean = (per * w):sum():item() / w:sum():item()
  else
    mean = per:mean():item()
  end
  return mean, per:view(n, n)
end

--- log Z = log ∫ e^−E(x) dx for a 2-D energy, by the midpoint rule on an
-- m×m grid over the box widened by a quarter of its size on each side (the
-- mass outside must be negligible; exact up to quadrature in 2-D).
-- @param energy function [K, 2] -> [K] (an energy model)
-- @param box {xmin, xmax, ymin, ymax} (a toy set's range)
-- @param m integer: grid points per side (default 400)
-- @return number: log Z in nats
-- @usage local test_nll = ebm(test) + sc.metrics.log_partition(ebm, data.range)
function M.log_partition(energy, box, m)
  m = m or 400
  if not util.is_callable(energy) then
    error("scorch.metrics.log_partition: argument energy must be callable (an energy model)", 2)
  end
  if type(box) ~= "table" or #box ~= 4 or not (box[2] > box[1] and box[4] > box[3]) then
    error("scorch.metrics.log_partition: argument box must be {xmin, xmax, ymin, ymax} with xmin < xmax, ymin < ymax",
      2)
  end
  if math.type(m) ~= "integer" or m < 2 then
    error(("scorch.metrics.log_partition: argument m must be an integer >= 2 (got %s)"):format(tostring(m)), 2)
  end
  local w, h = box[2] - box[1], box[4] - box[3]
  local x0, x1, y0, y1 = box[1] - w / 4, box[2] + w / 4, box[3] - h / 4, box[4] + h / 4
  local hx, hy = (x1 - x0) / m, (y1 - y0) / m
  local ax = sc.arange(0, m) * hx + (x0 + hx / 2)
  local ay = sc.arange(0, m) * hy + (y0 + hy / 2)
  local pts = sc.cat({ ax:reshape(m, 1):expand(m, m):reshape(-1, 1), ay:reshape(1, m):expand(m, m):reshape(-1, 1) }, 2)
  local e = sc.no_grad(function() return energy(pts) end)
  return (-e):reshape(-1):logsumexp(1):item() + math.log(hx * hy)
end

--- Mean and standard error of the mean of a [N] tensor.
-- @param t [N] tensor
-- @return mean, standard error (√(var/N), unbiased variance)
-- @usage local m, se = sc.metrics.mean_se(-model:log_prob(test))
function M.mean_se(t)
  return t:mean():item(), math.sqrt(t:var():item() / t:size(1))
end

--- One row of a 2-D likelihood example's table: the model's test NLL
-- beside the data's entropy on the same points (the floor no model beats),
-- and its samples against fresh data: MMD² with the real-vs-real baseline,
-- and for mixtures the mode report.
-- @param data a toy distribution of sc.data (log_prob, sample)
-- @param test [N, 2] test points
-- @param nll [N] the model's per-point NLL (nats) on test, or nil
-- @param x [M, 2] the model's samples
-- @param opts table: bandwidth (the MMD kernel's; nil for the median heuristic)
-- @return {nll =, nll_se =, ent =, ent_se =, mmd =, base =, tv =, covered =, modes =}
--   (tv, covered, modes only for mixtures; real samples drawn with seeds 8 and 9)
-- @usage local row = sc.metrics.likelihood_row(data, test, -flow:log_prob(test), flow:sample(1e4))
function M.likelihood_row(data, test, nll, x, opts)
  opts = util.check_options(opts, { "bandwidth" }, "scorch.metrics.likelihood_row")
  local row = {}
  if nll ~= nil then row.nll, row.nll_se = M.mean_se(nll) end
  row.ent, row.ent_se = M.mean_se(-data:log_prob(test))
  local n = x:size(1)
  local real = data:sample(n, { generator = sc.Generator(8) })
  row.mmd = M.mmd(x, real, { bandwidth = opts.bandwidth })
  row.base = M.mmd_baseline(data, n, { generator = sc.Generator(9), bandwidth = opts.bandwidth, repeats = 2 })
  if data.weights then
    local rep = M.mode_report(x, data)
    row.tv, row.covered, row.modes = rep.tv, rep.covered, rep.n_modes
  end
  return row, real
end

return M
