--- Fréchet distances between feature distributions: streaming float64
-- statistics (mergeable chunk by chunk), their safetensors files, FID and
-- FID∞.  The heavy parts (scatter matrices, the matrix square root's
-- trace) are in csrc/core/linalg.c.
-- @module scorch.metrics.fid
local sc = require "scorch"
local util = require "scorch.util"
local core = require "scorch.core"
local common = require "scorch.metrics.common"

local M = {}

local STATS_FORMAT = "scorch.fid_stats/1"

-- ---- streaming statistics -----------------------------------------------------

local Accumulator = {}
Accumulator.__index = Accumulator

--- A streaming accumulator of the mean and covariance of feature vectors.
-- Chunks are reduced to (n, mean, scatter) in float64 and combined with the
-- parallel formula of Chan, Golub & LeVeque 1979: for parts a and b with
-- δ = mean_b − mean_a, n = n_a + n_b, mean = mean_a + δ n_b / n and
-- M2 = M2_a + M2_b + δ δᵀ n_a n_b / n.  No [N, N] matrix and no feature
-- is kept.
-- @tparam integer dim feature dimension D
-- @tparam[opt] table opts `{extractor = name}`: recorded with the statistics
-- @return an accumulator with `:add(x)`, `:merge(other)`, `:result()`
-- @usage local acc = sc.metrics.stats_accumulator(128); acc:add(f1); acc:add(f2); local s = acc:result()
function M.stats_accumulator(dim, opts)
  opts = common.check_opts("stats_accumulator", opts, { "extractor" })
  if math.type(dim) ~= "integer" or dim < 1 then
    error("scorch.metrics.stats_accumulator: dim must be a positive integer, got " .. tostring(dim), 2)
  end
  return setmetatable({ dim = dim, n = 0, extractor = opts.extractor }, Accumulator)
end

-- Combines (n, mean, m2) of the accumulator with another part's.
local function combine(acc, n, mean, m2)
  if n == 0 then return acc end
  if acc.n == 0 then
    acc.n, acc.mean, acc.m2 = n, mean, m2
    return acc
  end
  local na, total = acc.n, acc.n + n
  local delta = mean - acc.mean
  acc.mean = acc.mean + delta * (n / total)
  local outer = sc.matmul(delta:view(-1, 1), delta:view(1, -1))
  acc.m2 = acc.m2 + m2 + outer * (na * n / total)
  acc.n = total
  return acc
end

--- Adds a chunk of features.
-- @tparam Tensor x features [n, D] (float32 or float64)
-- @return the accumulator
-- @usage acc:add(feats:narrow(1, 1, 500))
function Accumulator:add(x)
  if not sc.is_tensor(x) or x:dim() ~= 2 or x:size(2) ~= self.dim then
    error(("scorch.metrics.stats_accumulator:add: expected features [n, %d], got %s")
      :format(self.dim, util.shape_str(x)), 2)
  end
  if x:size(1) == 0 then return self end
  local mean, m2 = core.linalg_moments(x:detach():contiguous())
  return combine(self, x:size(1), mean, m2)
end

--- Merges another accumulator (of another chunk of the same data) into this one.
-- @param other an accumulator of the same dimension
-- @return this accumulator
-- @usage a:merge(b)
function Accumulator:merge(other)
  if getmetatable(other) ~= Accumulator or other.dim ~= self.dim then
    error("scorch.metrics.stats_accumulator:merge: expected an accumulator of dimension " .. self.dim, 2)
  end
  return combine(self, other.n, other.mean, other.m2)
end

--- The statistics so far.
-- @return `{mean = [D] float64, cov = [D, D] float64 (unbiased, M2 / (n − 1)),
--   n = count, extractor = name or nil}`
-- @usage local s = acc:result()
function Accumulator:result()
  if self.n < 2 then
    error(("scorch.metrics.stats_accumulator:result: need at least 2 feature vectors, have %d"):format(self.n), 2)
  end
  return { mean = self.mean:clone(), cov = self.m2 / (self.n - 1), n = self.n, extractor = self.extractor }
end

--- Mean and covariance of a set of features, accumulated in chunks.
-- @tparam Tensor x features [N, D]
-- @tparam[opt] table opts `{chunk = 4096, extractor = name}`
-- @return statistics `{mean, cov, n, extractor}` as from `stats_accumulator`
-- @usage local s = sc.metrics.feature_stats(feats, {extractor = ext.name})
function M.feature_stats(x, opts)
  opts = common.check_opts("feature_stats", opts, { "chunk", "extractor" })
  if not sc.is_tensor(x) or x:dim() ~= 2 then
    error("scorch.metrics.feature_stats: x must be features [N, D]", 2)
  end
  local chunk = common.posint(opts.chunk, 4096, "feature_stats", "chunk")
  local acc = M.stats_accumulator(x:size(2), { extractor = opts.extractor })
  for first = 1, x:size(1), chunk do acc:add(x:narrow(1, first, math.min(chunk, x:size(1) - first + 1))) end
  return acc:result()
end

local function check_stats(s, fn, what)
  if type(s) ~= "table" or not sc.is_tensor(s.mean) or not sc.is_tensor(s.cov) or math.type(s.n) ~= "integer"
      or s.mean:dim() ~= 1 or s.cov:dim() ~= 2 or s.cov:size(1) ~= s.mean:size(1)
      or s.cov:size(2) ~= s.mean:size(1) then
    error(("scorch.metrics.%s: %s must be statistics {mean = [D], cov = [D, D], n = count}"):format(fn, what), 3)
  end
end

--- Writes statistics as a safetensors file (mean, cov as float64; n and the
-- extractor in the metadata), through a temporary file and a rename.
-- @tparam string path
-- @tparam table stats from `feature_stats`
-- @tparam[opt] table extra more tensors to store beside them (e.g. `{features = f}`)
-- @return true, or nil and a message
-- @usage sc.metrics.save_stats("ref.safetensors", s)
function M.save_stats(path, stats, extra)
  check_stats(stats, "save_stats", "stats")
  local tensors = { mean = stats.mean:double():contiguous(), cov = stats.cov:double():contiguous() }
  for k, v in pairs(extra or {}) do tensors[k] = v:contiguous() end
  local meta = { format = STATS_FORMAT, n = tostring(stats.n), extractor = stats.extractor or "" }
  for k, v in pairs(stats.meta or {}) do meta[k] = tostring(v) end
  local tmp = path .. ".tmp" .. tostring(os.time())
  local ok, err = sc.save(tmp, tensors, meta)
  if not ok then os.remove(tmp); return nil, err end
  local renamed, rerr = os.rename(tmp, path)
  if not renamed then os.remove(tmp); return nil, rerr end
  return true
end

--- Reads statistics written by `save_stats`.
-- @tparam string path
-- @return stats `{mean, cov, n, extractor, meta}` and the table of all
--   tensors in the file, or nil and a message (missing or foreign file)
-- @usage local ref = assert(sc.metrics.load_stats("ref.safetensors"))
function M.load_stats(path)
  local t, meta = sc.load(path)
  if not t then return nil, meta end
  if meta.format ~= STATS_FORMAT or not t.mean or not t.cov then
    return nil, ("%s: not a file of feature statistics (format %s)"):format(path, tostring(meta.format))
  end
  local extractor = meta.extractor ~= "" and meta.extractor or nil
  return { mean = t.mean, cov = t.cov, n = math.tointeger(tonumber(meta.n)), extractor = extractor, meta = meta }, t
end

-- ---- FID ------------------------------------------------------------------------------

-- Whether two tensors of one shape hold equal values everywhere.
local function same_values(a, b)
  return a:numel() == b:numel() and a:eq(b):sum():item() == a:numel()
end

--- Fréchet distance between two Gaussians fitted to features (Heusel et al.
-- 2017): ‖μ_a − μ_b‖² + tr Σ_a + tr Σ_b − 2 tr (Σ_a^{1/2} Σ_b Σ_a^{1/2})^{1/2},
-- the trace from symmetric eigendecompositions in float64 (LAPACK dsyevd;
-- negative eigenvalues clamped to 0), never a general-matrix sqrtm.
-- Identical statistics give exactly 0.
-- @tparam table stats_a statistics `{mean = [D], cov = [D, D], n}`
-- @tparam table stats_b the same for the other set
-- @return FID, and `{extractor =, n_a =, n_b =, trace_sqrt =}`
-- @usage local d, info = sc.metrics.fid(ref, sc.metrics.feature_stats(fake))
function M.fid(stats_a, stats_b)
  check_stats(stats_a, "fid", "stats_a")
  check_stats(stats_b, "fid", "stats_b")
  local D = stats_a.mean:size(1)
  if stats_b.mean:size(1) ~= D then
    error(("scorch.metrics.fid: feature dimensions differ (%d and %d)"):format(D, stats_b.mean:size(1)), 2)
  end
  if stats_a.extractor and stats_b.extractor and stats_a.extractor ~= stats_b.extractor then
    error(("scorch.metrics.fid: statistics from different extractors (%s and %s) are not comparable")
      :format(stats_a.extractor, stats_b.extractor), 2)
  end
  local info = { extractor = stats_a.extractor or stats_b.extractor, n_a = stats_a.n, n_b = stats_b.n }
  local ma, mb = stats_a.mean:double(), stats_b.mean:double()
  local ca, cb = stats_a.cov:double():contiguous(), stats_b.cov:double():contiguous()
  if same_values(ma, mb) and same_values(ca, cb) then
    return 0, info
  end
  local tr = core.linalg_trace_sqrt_product(ca, cb)
  local diff = ma - mb
  local d2 = (diff * diff):sum():item()
  local tra, trb = 0, 0
  for i, v in ipairs(ca:reshape(-1):values()) do if (i - 1) % (D + 1) == 0 then tra = tra + v end end
  for i, v in ipairs(cb:reshape(-1):values()) do if (i - 1) % (D + 1) == 0 then trb = trb + v end end
  info.trace_sqrt = tr
  return d2 + tra + trb - 2 * tr, info
end

--- FID∞ (Chong & Forsyth 2020): FID of fresh random subsets of the features
-- at several counts N_i between N/5 and N against fixed reference
-- statistics, a least-squares line FID = FID∞ + slope / N_i, and its
-- intercept.
-- @tparam table ref reference statistics (the real data)
-- @tparam Tensor feats generated features [N, D]
-- @tparam[opt] table opts `{counts = 5 (or a list of counts), min_n = D + 1
--   (no subset smaller), generator = sc.Generator or nil, extractor = name}`
-- @return FID∞, and `{slope =, counts = {...}, fids = {...}, n = N, extractor =}`
-- @usage local finf, info = sc.metrics.fid_infinity(ref, fake_feats)
function M.fid_infinity(ref, feats, opts)
  opts = common.check_opts("fid_infinity", opts, { "counts", "min_n", "generator", "extractor" })
  check_stats(ref, "fid_infinity", "ref")
  feats = common.features_arg(feats, "fid_infinity", "feats")
  local N, D = feats:size(1), feats:size(2)
  local counts = opts.counts
  if type(counts) ~= "table" then
    local k = common.posint(counts, 5, "fid_infinity", "counts")
    if k < 5 then error("scorch.metrics.fid_infinity: counts must be at least 5", 2) end
    local lo = math.max(N // 5, common.posint(opts.min_n, D + 1, "fid_infinity", "min_n"))
    if N - lo < k - 1 then
      error(("scorch.metrics.fid_infinity: %d samples leave no %d distinct counts between %d and %d")
        :format(N, k, lo, N), 2)
    end
    counts = {}
    for i = 0, k - 1 do counts[#counts + 1] = math.floor(lo + (N - lo) * i / (k - 1) + 0.5) end
  end
  if #counts < 2 then error("scorch.metrics.fid_infinity: need at least two counts", 2) end
  local fids, sx, sy, sxx, sxy = {}, 0, 0, 0, 0
  for i, n in ipairs(counts) do
    if math.type(n) ~= "integer" or n < 2 or n > N then
      error(("scorch.metrics.fid_infinity: count %s is not in 2..%d"):format(tostring(n), N), 2)
    end
    local sub = feats:index_select(1, common.subset(N, n, opts.generator))
    fids[i] = M.fid(ref, M.feature_stats(sub, { extractor = opts.extractor or ref.extractor }))
    local x = 1 / n
    sx, sy, sxx, sxy = sx + x, sy + fids[i], sxx + x * x, sxy + x * fids[i]
  end
  local m = #counts
  local slope = (m * sxy - sx * sy) / (m * sxx - sx * sx)
  local intercept = (sy - slope * sx) / m
  return intercept, { slope = slope, counts = counts, fids = fids, n = N, extractor = opts.extractor or ref.extractor }
end

return M
