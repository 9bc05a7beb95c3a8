--- Toy 2-D distributions with exact log-densities and scores.
--
-- Every distribution answers sample(n, {generator=}), log_prob(x), score(x)
-- and, for the density convolved with N(0, σ²I), log_prob_at(x, σ) and
-- score_at(x, σ).  Gaussian mixtures do all of it in closed form; the curve
-- data sets (two moons, swiss roll, rings) are *defined* as dense mixtures of
-- small Gaussians along the curve, so their scores are exact too.  The
-- checkerboard is uniform on its black squares; its smoothed density is a sum
-- of products of normal CDF differences.
-- @module scorch.data.toy2d
local sc = require "scorch"
local util = require "scorch.util"

local M = {}

local LOG_2PI = math.log(2 * math.pi)
-- Largest N*K*D handled in one piece; larger batches are split along N.
local CHUNK_ELEMS = 1 << 21

-- ---- small helpers ----------------------------------------------------------------

local function check_points(x, dim, fn)
  if not sc.is_tensor(x) then
    error(("scorch.data.%s: expected a tensor of points, got %s"):format(fn, type(x)), 3)
  end
  if x:dim() ~= 2 or x:size(2) ~= dim then
    error(("scorch.data.%s: expected points of shape [N, %d], got [%s]")
      :format(fn, dim, table.concat(x:shape(), ",")), 3)
  end
end

-- sigma as a number (σ²) or an [N, 1, 1] tensor of σ² for N points.
local function sigma_sq(sigma, n, fn)
  if sigma == nil then return nil end
  if type(sigma) == "number" then
    if sigma < 0 then error(("scorch.data.%s: sigma must be non-negative"):format(fn), 3) end
    return sigma * sigma
  end
  if sc.is_tensor(sigma) then
    if sigma:numel() == 1 then return sigma:item() ^ 2 end
    if sigma:numel() ~= n then
      error(("scorch.data.%s: %d sigmas for %d points"):format(fn, sigma:numel(), n), 3)
    end
    return sigma:reshape(n, 1, 1):square()
  end
  error(("scorch.data.%s: sigma must be a number or a tensor"):format(fn), 3)
end

-- Applies fn(x_chunk, sigma_chunk) to slices of x along dim 1 and
-- concatenates the results (lists of results are concatenated pairwise).
local function chunked(x, sigma, per_row, fn)
  local n = x:size(1)
  local rows = math.max(1, CHUNK_ELEMS // math.max(per_row, 1))
  if n <= rows then return fn(x, sigma) end
  local parts = {}
  for start = 1, n, rows do
    local len = math.min(rows, n - start + 1)
    local s = sigma
    if sc.is_tensor(sigma) and sigma:numel() > 1 then s = sigma:reshape(n):narrow(1, start, len) end
    parts[#parts + 1] = table.pack(fn(x:narrow(1, start, len), s))
  end
  local out = {}
  for j = 1, parts[1].n do
    local list = {}
    for i, p in ipairs(parts) do list[i] = p[j] end
    out[j] = sc.cat(list, 1)
  end
  return table.unpack(out, 1, parts[1].n)
end

local function generator_of(opts) return opts and opts.generator end

local categorical = require("scorch.data.categorical").categorical

--- Symmetric eigendecomposition of a small matrix, by LAPACK (dsyevd via
-- sc.core.linalg_eigh).  A diagonal matrix is returned as it is (its
-- diagonal, and V = I), so an axis-aligned covariance stays axis-aligned.
-- @param A Lua matrix (rows), symmetric
-- @return eigenvalues (array; ascending unless A is diagonal) and the
--   eigenvectors as the columns of V (V[i][j]: component i of vector j)
-- @usage local vals, V = sc.data.sym_eig({ { 2, 1 }, { 1, 2 } })   -- {1, 3}
local function sym_eig(A)
  local n, diagonal = #A, true
  for i = 1, n do
    for j = 1, n do
      if i ~= j and A[i][j] ~= 0 then diagonal = false end
    end
  end
  local vals, V = {}, {}
  if diagonal then
    for i = 1, n do
      vals[i], V[i] = A[i][i] + 0.0, {}
      for j = 1, n do V[i][j] = (i == j) and 1 or 0 end
    end
    return vals, V
  end
  local w, rows = sc.core.linalg_eigh(sc.tensor(A, { dtype = "float64" }))
  vals = w:values()
  local r = rows:totable() -- rows[k] is eigenvector k
  for i = 1, n do
    V[i] = {}
    for j = 1, n do V[i][j] = r[j][i] end
  end
  return vals, V
end
M.sym_eig = sym_eig

-- ---- Gaussian mixtures ---------------------------------------------------------------

local GaussianMixture = {}
GaussianMixture.__index = GaussianMixture
M.GaussianMixture = GaussianMixture

local function as_rows(v, what)
  if sc.is_tensor(v) then
    if v:dim() == 1 then v = v:view(1, v:size(1)) end
    return v:totable()
  end
  if type(v) ~= "table" or #v == 0 then
    error(("scorch.data.gaussian_mixture: %s must be a non-empty list"):format(what), 3)
  end
  return v
end

--- gaussian_mixture{means=, stds= | covs=, weights=, name=}
--   means   K points ({{x, y}, ...} or a [K, D] tensor)
--   stds    a number, K numbers (isotropic) or K lists of D numbers (diagonal)
--   covs    K full D×D covariance matrices (instead of stds)
--   weights K non-negative numbers (normalised here); default uniform
function M.gaussian_mixture(spec)
  if type(spec) ~= "table" then error("scorch.data.gaussian_mixture: expected an options table", 2) end
  util.check_options(spec, { "means", "covs", "stds", "std", "weights", "name", "range" },
    "scorch.data.gaussian_mixture")
  local means = as_rows(spec.means, "means")
  local K, D = #means, #means[1]
  if D < 1 then error("scorch.data.gaussian_mixture: means must have at least one coordinate", 2) end
  local self = setmetatable({ K = K, dim = D, name = spec.name or "gaussian_mixture",
    means = {}, lam = {}, U = {}, weights = {}, axis_aligned = true, _cache = {} }, GaussianMixture)
  for k = 1, K do
    if #means[k] ~= D then error("scorch.data.gaussian_mixture: means have different lengths", 2) end
    self.means[k] = {}
    for d = 1, D do self.means[k][d] = means[k][d] + 0.0 end
  end
  -- covariance of each component as eigenvalues lam[k] and eigenvectors U[k]
  if spec.covs then
    local covs = spec.covs
    if sc.is_tensor(covs) then covs = covs:totable() end
    if #covs ~= K then error("scorch.data.gaussian_mixture: need one covariance per mean", 2) end
    for k = 1, K do
      local C = covs[k]
      if type(C) == "number" then
        self.lam[k] = {}
        for d = 1, D do self.lam[k][d] = C end
      else
        if #C ~= D then error("scorch.data.gaussian_mixture: covariance of the wrong size", 2) end
        for i = 1, D do
          for j = 1, D do
            if math.abs(C[i][j] - C[j][i]) > 1e-9 * (math.abs(C[i][j]) + 1) then
              error("scorch.data.gaussian_mixture: covariance is not symmetric", 2)
            end
          end
        end
        local vals, V = sym_eig(C)
        self.lam[k], self.U[k] = vals, V
        for i = 1, D do
          for j = 1, D do
            if math.abs(V[i][j] - ((i == j) and 1 or 0)) > 1e-12 then self.axis_aligned = false end
          end
        end
      end
    end
  else
    local stds = spec.stds or spec.std or 1
    for k = 1, K do
      local s = type(stds) == "number" and stds or stds[k]
      if s == nil then error("scorch.data.gaussian_mixture: need one std per mean", 2) end
      self.lam[k] = {}
      for d = 1, D do
        local sd = type(s) == "number" and s or s[d]
        if type(sd) ~= "number" or not (sd > 0) then
          error("scorch.data.gaussian_mixture: stds must be positive numbers", 2)
        end
        self.lam[k][d] = sd * sd
      end
    end
  end
  for k = 1, K do
    for d = 1, D do
      if not (self.lam[k][d] > 0) then
        error("scorch.data.gaussian_mixture: covariances must be positive definite", 2)
      end
    end
    if not self.U[k] then
      local I = {}
      for i = 1, D do
        I[i] = {}
        for j = 1, D do I[i][j] = (i == j) and 1 or 0 end
      end
      self.U[k] = I
    end
  end
  local w, total = spec.weights, 0
  if w and sc.is_tensor(w) then w = w:values() end
  for k = 1, K do
    local wk = w and w[k] or 1
    if type(wk) ~= "number" or wk < 0 then
      error("scorch.data.gaussian_mixture: weights must be non-negative numbers", 2)
    end
    self.weights[k] = wk
    total = total + wk
  end
  if w and #w ~= K then error("scorch.data.gaussian_mixture: need one weight per mean", 2) end
  if total <= 0 then error("scorch.data.gaussian_mixture: weights sum to zero", 2) end
  for k = 1, K do self.weights[k] = self.weights[k] / total end
  local lo, hi = math.huge, -math.huge
  for k = 1, K do
    for d = 1, D do
      local sd = math.sqrt(math.max(table.unpack(self.lam[k])))
      lo = math.min(lo, self.means[k][d] - 3 * sd)
      hi = math.max(hi, self.means[k][d] + 3 * sd)
    end
  end
  local pad = 0.1 * (hi - lo)
  self.range = spec.range or { lo - pad, hi + pad, lo - pad, hi + pad }
  return self
end

-- Parameters as tensors of one dtype, built once.
function GaussianMixture:_tensors(dtype)
  local c = self._cache[dtype]
  if c then return c end
  local K = self.K
  local opt = { dtype = dtype }
  local logw = {}
  for k = 1, K do logw[k] = self.weights[k] > 0 and math.log(self.weights[k]) or -math.huge end
  c = {
    mu = sc.tensor(self.means, opt),
    lam = sc.tensor(self.lam, opt),
    logw = sc.tensor(logw, opt):view(1, K),
  }
  c.sd = c.lam:sqrt()
  if not self.axis_aligned then
    c.U = sc.tensor(self.U, opt)                       -- [K, D, D], columns = eigenvectors
    c.Ut = c.U:transpose(2, 3):contiguous()
  end
  self._cache[dtype] = c
  return c
end

-- Per-component terms at points x [N, D]: log w_k + log N(x; μ_k, Σ_k + s²I)
-- as [N, K], and (with want_grad) Λ⁻¹-scaled offsets g_k = (Σ_k + s²I)⁻¹(x − μ_k)
-- as [N, K, D].
function GaussianMixture:_terms(x, s2, want_grad)
  local T = self:_tensors(x:dtype())
  local N, K, D = x:size(1), self.K, self.dim
  local diff = x:reshape(N, 1, D) - T.mu:view(1, K, D)
  local z = diff
  if T.U then z = sc.matmul(diff:permute(2, 1, 3), T.U):permute(2, 1, 3) end
  local var = T.lam:view(1, K, D)
  if s2 ~= nil and s2 ~= 0 then var = var + s2 end
  local zv = z / var
  local quad = (z * zv):sum(3, false)
  local logdet = var:log():sum(3, false)
  local logc = (quad + logdet) * -0.5 + (T.logw - 0.5 * D * LOG_2PI)
  if not want_grad then return logc end
  local g = zv
  if T.U then g = sc.matmul(zv:permute(2, 1, 3), T.Ut):permute(2, 1, 3) end
  return logc, g
end

local function gm_log_prob(self, x, sigma, fn)
  check_points(x, self.dim, fn)
  local s2 = sigma_sq(sigma, x:size(1), fn)
  return chunked(x, s2, self.K * self.dim, function(xc, sc2)
    return self:_terms(xc, sc2, false):logsumexp(2, false)
  end)
end

local function gm_score(self, x, sigma, fn)
  check_points(x, self.dim, fn)
  local s2 = sigma_sq(sigma, x:size(1), fn)
  return chunked(x, s2, self.K * self.dim, function(xc, sc2)
    local logc, g = self:_terms(xc, sc2, true)
    local r = (logc - logc:logsumexp(2, true)):exp()   -- posterior [N, K]
    return -(r:unsqueeze(3) * g):sum(2, false)
  end)
end

-- log p(x) for x [N, D] -> [N]
function GaussianMixture:log_prob(x) return gm_log_prob(self, x, nil, "log_prob") end
-- ∇ₓ log p(x) -> [N, D]
function GaussianMixture:score(x) return gm_score(self, x, nil, "score") end
-- log p_σ(x) of p * N(0, σ²I); sigma a number or N values ([N] or [N, 1])
function GaussianMixture:log_prob_at(x, sigma) return gm_log_prob(self, x, sigma or 0, "log_prob_at") end
-- ∇ₓ log p_σ(x): the mixture with covariances Σ_k + σ²I
function GaussianMixture:score_at(x, sigma) return gm_score(self, x, sigma or 0, "score_at") end

-- Posterior probabilities of the components, [N, K] (optionally smoothed by σ).
function GaussianMixture:posterior(x, sigma)
  check_points(x, self.dim, "posterior")
  local s2 = sigma_sq(sigma, x:size(1), "posterior")
  return chunked(x, s2, self.K * self.dim, function(xc, sc2)
    local logc = self:_terms(xc, sc2, false)
    return (logc - logc:logsumexp(2, true)):exp()
  end)
end

-- sample(n [, {generator=, dtype=}]) -> [n, D] tensor, labels (Lua array of
-- component indices)
function GaussianMixture:sample(n, opts)
  if math.type(n) ~= "integer" then
    if type(n) == "number" and n == math.floor(n) then n = math.tointeger(n) end
  end
  if math.type(n) ~= "integer" or n < 0 then
    error("scorch.data.sample: n must be a non-negative integer", 2)
  end
  opts = util.check_options(opts, { "generator", "dtype" }, "scorch.data.sample")
  local dtype = opts.dtype or "float32"
  local gen = generator_of(opts)
  local T = self:_tensors(dtype)
  if n == 0 then return sc.zeros({ 0, self.dim }, { dtype = dtype }), {} end
  local labels = categorical(n, self.weights, gen)
  local eps = sc.randn(n, self.dim, { generator = gen, dtype = dtype })
  local y = eps * T.sd:index_select(1, labels)
  if T.U then
    y = sc.matmul(y:view(n, 1, self.dim), T.Ut:index_select(1, labels)):view(n, self.dim)
  end
  return sc.no_grad(function() return T.mu:index_select(1, labels) + y end), labels
end

-- Means as a [K, D] tensor (for metrics and pictures).
function GaussianMixture:means_tensor(dtype) return self:_tensors(dtype or "float32").mu end

-- Mean and covariance of the whole mixture (Lua tables).
function GaussianMixture:moments()
  local D = self.dim
  local mean = {}
  for d = 1, D do
    mean[d] = 0
    for k = 1, self.K do mean[d] = mean[d] + self.weights[k] * self.means[k][d] end
  end
  local cov = {}
  for i = 1, D do
    cov[i] = {}
    for j = 1, D do
      local acc = 0
      for k = 1, self.K do
        local U, lam, c = self.U[k], self.lam[k], 0
        for e = 1, D do c = c + U[i][e] * lam[e] * U[j][e] end
        acc = acc + self.weights[k] * (c + (self.means[k][i] - mean[i]) * (self.means[k][j] - mean[j]))
      end
      cov[i][j] = acc
    end
  end
  return mean, cov
end

function GaussianMixture:__tostring()
  return ("scorch.data.%s(K=%d, D=%d)"):format(self.name, self.K, self.dim)
end

-- ---- named mixtures ----------------------------------------------------------------------

--- K Gaussians evenly spaced on a circle (8 Gaussians: radius 2, std 0.05).
function M.eight_gaussians(opts)
  opts = util.check_options(opts, { "n_modes", "radius", "std", "weights" }, "scorch.data.eight_gaussians")
  local k, radius, std = opts.n_modes or 8, opts.radius or 2, opts.std or 0.05
  local means = {}
  for i = 1, k do
    local a = 2 * math.pi * (i - 1) / k
    means[i] = { radius * math.cos(a), radius * math.sin(a) }
  end
  local r = radius + 4 * std + 0.3
  return M.gaussian_mixture { means = means, stds = std, weights = opts.weights,
    name = "eight_gaussians", range = { -r, r, -r, r } }
end

--- Song & Ermon 2019, §3.2: p = 0.8·N((5,5), I) + 0.2·N((−5,−5), I).
function M.two_gaussians(opts)
  opts = util.check_options(opts, { "offset", "std", "weights" }, "scorch.data.two_gaussians")
  local d = opts.offset or 5
  return M.gaussian_mixture { means = { { d, d }, { -d, -d } }, stds = opts.std or 1,
    weights = opts.weights or { 0.8, 0.2 }, name = "two_gaussians",
    range = { -d - 4, d + 4, -d - 4, d + 4 } }
end
M.ncsn_mixture = M.two_gaussians

-- A curve convolved with N(0, noise²I), realised as a mixture of Gaussians
-- placed along it at spacing <= noise (the ripple of such a sum is below
-- 1e-8 of the density, so it is the smooth tube one means).  points(u) maps
-- u in [0, 1] to a point; speed(u) is |d points/du|, used to space centres
-- evenly in arc length; uniform_in_u weights centres by parameter instead
-- of arc length.
local function curve_mixture(pieces, noise, name, range)
  local means, weights = {}, {}
  for _, piece in ipairs(pieces) do
    local n = math.max(2, math.ceil(piece.length / noise) + 1)
    for i = 1, n do
      local u = (i - 1) / (n - 1)
      means[#means + 1] = piece.at(u)
      weights[#weights + 1] = piece.mass / n
    end
  end
  return M.gaussian_mixture { means = means, stds = noise, weights = weights, name = name, range = range }
end

--- Two interleaved half circles (scikit-learn's make_moons, centred), noise
-- std 0.1 by default.
function M.two_moons(opts)
  opts = util.check_options(opts, { "noise" }, "scorch.data.two_moons")
  local noise = opts.noise or 0.1
  local upper = { length = math.pi, mass = 0.5, at = function(u)
    local t = math.pi * u
    return { math.cos(t) - 0.5, math.sin(t) - 0.25 }
  end }
  local lower = { length = math.pi, mass = 0.5, at = function(u)
    local t = math.pi * u
    return { 1 - math.cos(t) - 0.5, 0.25 - math.sin(t) }
  end }
  return curve_mixture({ upper, lower }, noise, "two_moons", { -2, 2, -2, 2 })
end

--- Swiss roll: t uniform in [1.5π, 4.5π], (t cos t, t sin t)/5, noise 0.1.
-- Centres are spaced evenly in t, each carrying equal mass (the classic
-- density, denser near the centre); several per noise-width of arc.
function M.swiss_roll(opts)
  opts = util.check_options(opts, { "noise", "scale" }, "scorch.data.swiss_roll")
  local noise, scale = opts.noise or 0.1, opts.scale or 0.2
  local t0, t1 = 1.5 * math.pi, 4.5 * math.pi
  local n = math.ceil((t1 - t0) * t1 * scale / noise) + 1
  local piece = { length = (n - 1) * noise, mass = 1, at = function(u)
    local t = t0 + (t1 - t0) * u
    return { scale * t * math.cos(t), scale * t * math.sin(t) }
  end }
  return curve_mixture({ piece }, noise, "swiss_roll", { -3.2, 3.2, -3.2, 3.2 })
end

--- Concentric rings of the given radii, mass proportional to circumference.
function M.rings(opts)
  opts = util.check_options(opts, { "radii", "noise" }, "scorch.data.rings")
  local radii, noise = opts.radii or { 0.5, 1.0, 1.5, 2.0 }, opts.noise or 0.08
  local total = 0
  for _, r in ipairs(radii) do total = total + r end
  local pieces = {}
  for i, r in ipairs(radii) do
    pieces[i] = { length = 2 * math.pi * r, mass = r / total, at = function(u)
      -- u = 1 would repeat u = 0; stop one step short by scaling
      local n = math.max(2, math.ceil(2 * math.pi * r / noise) + 1)
      local a = 2 * math.pi * u * (n - 1) / n
      return { r * math.cos(a), r * math.sin(a) }
    end }
  end
  local m = radii[#radii] + 4 * noise + 0.2
  return curve_mixture(pieces, noise, "rings", { -m, m, -m, m })
end

-- ---- checkerboard ---------------------------------------------------------------------

local SQRT1_2, INV_SQRT_2PI = math.sqrt(0.5), 1 / math.sqrt(2 * math.pi)

-- P(a <= x + σZ <= b) for Z ~ N(0,1) and its derivative in x, with
-- lo = (a - x)/σ, hi = (b - x)/σ and E(u) = erfc(u/√2) read from a table
-- the core filled in double precision (C's erfc).  Each case takes the tail
-- side, where 1 - erf would cancel.
local function interval_mass(lo, hi, E_lo, E_hi, E_nlo, E_nhi, s)
  local m
  if lo >= 0 then
    m = 0.5 * (E_lo - E_hi)
  elseif hi <= 0 then
    m = 0.5 * (E_nhi - E_nlo)
  else
    m = 1 - 0.5 * (E_nlo + E_hi)
  end
  local dm = (math.exp(-0.5 * lo * lo) - math.exp(-0.5 * hi * hi)) * INV_SQRT_2PI / s
  return m, dm
end

local Checkerboard = {}
Checkerboard.__index = Checkerboard
M.Checkerboard = Checkerboard

--- checkerboard{cells=4, half_width=2}: uniform on the squares (i, j) of a
-- cells×cells board over [-h, h]² with i + j even (FFJORD's checkerboard:
-- 8 unit squares of [-2, 2]²).
function M.checkerboard(opts)
  opts = util.check_options(opts, { "cells", "half_width" }, "scorch.data.checkerboard")
  local cells, h = opts.cells or 4, opts.half_width or 2
  if cells < 2 or cells % 2 ~= 0 then error("scorch.data.checkerboard: cells must be even", 2) end
  local w = 2 * h / cells
  local black = cells * cells // 2
  return setmetatable({ dim = 2, name = "checkerboard", cells = cells, half_width = h, cell = w,
    n_black = black, log_density = -math.log(black * w * w),
    range = { -h - 0.5, h + 0.5, -h - 0.5, h + 0.5 } }, Checkerboard)
end

-- cell index (0-based) of a coordinate, or nil outside the board
function Checkerboard:_cell(v)
  local i = math.floor((v + self.half_width) / self.cell)
  if i < 0 or i >= self.cells then return nil end
  return i
end

--- Whether the point (px, py) lies in a black cell.
-- @param px number
-- @param py number
-- @return boolean
-- @usage if board:inside(0.5, 0.5) then ... end
function Checkerboard:inside(px, py)
  local i, j = self:_cell(px), self:_cell(py)
  return i ~= nil and j ~= nil and (i + j) % 2 == 0
end

--- n points uniform over the black cells, and each point's cell.
-- @param n integer ≥ 0
-- @param opts table: generator (default the global one); dtype = "float32"
-- @return tensor [n, 2], Lua array of n cell numbers
-- @usage local x = board:sample(1000, {generator = g})
function Checkerboard:sample(n, opts)
  if type(n) ~= "number" or n < 0 or n ~= math.floor(n) then
    error("scorch.data.sample: n must be a non-negative integer", 2)
  end
  n = math.tointeger(n)
  opts = util.check_options(opts, { "generator", "dtype" }, "scorch.data.sample")
  local gen = generator_of(opts)
  local u = sc.rand(n * 3, { generator = gen, dtype = "float64" }):values()
  local out, labels, c, h, w = {}, {}, self.cells, self.half_width, self.cell
  for k = 1, n do
    -- column uniformly, then one of the c/2 black cells in it, then uniform
    local i = math.min(c - 1, math.floor(u[3 * k - 2] * c))
    local r = math.min(c // 2 - 1, math.floor(u[3 * k - 1] * (c // 2)))
    local j = 2 * r + (i % 2)
    local frac = math.min(u[3 * k - 1] * (c // 2) - r, 1) -- reuses the draw: uniform within
    out[2 * k - 1] = -h + (i + u[3 * k]) * w
    out[2 * k] = -h + (j + frac) * w
    labels[k] = i * c + j + 1
  end
  local t = sc.tensor(out, { dtype = opts.dtype or "float32" })
  return t:view(n, 2), labels
end

--- The exact log density: log(1 / black area) inside a black cell, −∞ elsewhere.
-- @param x tensor [N, 2]
-- @return tensor [N]
-- @usage local lp = board:log_prob(x)
function Checkerboard:log_prob(x)
  check_points(x, 2, "log_prob")
  local v, out = x:values(), {}
  for k = 1, x:size(1) do
    out[k] = self:inside(v[2 * k - 1], v[2 * k]) and self.log_density or -math.huge
  end
  return sc.tensor(out, { dtype = x:dtype() })
end

-- The density is flat where it is positive: the score is zero there (and
-- taken as zero outside, where it is undefined).
function Checkerboard.score(_, x)
  check_points(x, 2, "score")
  return sc.zeros(x:shape(), { dtype = x:dtype() })
end

-- p_σ(x) = (1/A) Σ_{black (i,j)} P(x₁ + σZ ∈ I_i) P(x₂ + σZ ∈ I_j) and its
-- gradient, point by point; returns log p_σ and the score as Lua arrays.
function Checkerboard:_smoothed(x, sigma, fn)
  check_points(x, 2, fn)
  local n = x:size(1)
  local sig
  if type(sigma) == "number" then
    sig = function() return sigma end
  elseif sc.is_tensor(sigma) then
    local sv = sigma:values()
    if #sv == 1 then sig = function() return sv[1] end
    elseif #sv == n then sig = function(k) return sv[k] end
    else error(("scorch.data.%s: %d sigmas for %d points"):format(fn, #sv, n), 3) end
  else
    error(("scorch.data.%s: sigma must be a number or a tensor"):format(fn), 3)
  end
  local v = x:values()
  local c, h, w = self.cells, self.half_width, self.cell
  -- u = (a - x)/σ at every cell edge a of both coordinates of every point,
  -- and erfc(u/√2), erfc(-u/√2) for all of them in one call of the core's
  -- double-precision erfc
  local U, args, B = {}, {}, c + 1
  for k = 1, n do
    local s = sig(k)
    for d = 0, 1 do
      local p = v[2 * k - 1 + d]
      for e = 0, c do
        local at = ((k - 1) * 2 + d) * B + e + 1
        local u = s > 0 and (-h + e * w - p) / s or 0
        U[at], args[2 * at - 1], args[2 * at] = u, u * SQRT1_2, -u * SQRT1_2
      end
    end
  end
  local E = n > 0 and sc.erfc(sc.tensor(args, { dtype = "float64" })):values() or {}
  local function mass(at, s) -- the cell between edges at and at + 1
    return interval_mass(U[at], U[at + 1], E[2 * at - 1], E[2 * at + 1], E[2 * at], E[2 * at + 2], s)
  end
  local logp, score = {}, {}
  local m1, d1, m2, d2 = {}, {}, {}, {}
  for k = 1, n do
    local px, py, s = v[2 * k - 1], v[2 * k], sig(k)
    if s <= 0 then
      logp[k] = self:inside(px, py) and self.log_density or -math.huge
      score[2 * k - 1], score[2 * k] = 0, 0
    else
      for i = 0, c - 1 do
        m1[i], d1[i] = mass((k - 1) * 2 * B + i + 1, s)
        m2[i], d2[i] = mass(((k - 1) * 2 + 1) * B + i + 1, s)
      end
      local p, gx, gy = 0, 0, 0
      for i = 0, c - 1 do
        for j = i % 2, c - 1, 2 do
          p = p + m1[i] * m2[j]
          gx = gx + d1[i] * m2[j]
          gy = gy + m1[i] * d2[j]
        end
      end
      if p > 0 then
        logp[k] = math.log(p) + self.log_density + 2 * math.log(w)
        score[2 * k - 1], score[2 * k] = gx / p, gy / p
      else
        -- far outside (p underflows): log p ≈ -d²/(2σ²) to the nearest black cell
        local best, bx, by = math.huge, px, py
        for i = 0, c - 1 do
          for j = i % 2, c - 1, 2 do
            local qx = math.min(math.max(px, -h + i * w), -h + (i + 1) * w)
            local qy = math.min(math.max(py, -h + j * w), -h + (j + 1) * w)
            local d2q = (px - qx) ^ 2 + (py - qy) ^ 2
            if d2q < best then best, bx, by = d2q, qx, qy end
          end
        end
        logp[k] = -best / (2 * s * s) + self.log_density
        score[2 * k - 1], score[2 * k] = (bx - px) / (s * s), (by - py) / (s * s)
      end
    end
  end
  return logp, score
end

--- log p_σ(x) of the board smoothed by N(0, σ² I) (a sum of erf box terms).
-- @param x tensor [N, 2]
-- @param sigma number ≥ 0 (default 0)
-- @return tensor [N]
-- @usage local lp = board:log_prob_at(x, 0.1)
function Checkerboard:log_prob_at(x, sigma)
  local logp = self:_smoothed(x, sigma or 0, "log_prob_at")
  return sc.tensor(logp, { dtype = x:dtype() })
end

--- ∇ₓ log p_σ(x) of the smoothed board, in closed form.
-- @param x tensor [N, 2]
-- @param sigma number > 0
-- @return tensor [N, 2]
-- @usage local s = board:score_at(x, 0.1)
function Checkerboard:score_at(x, sigma)
  local _, score = self:_smoothed(x, sigma or 0, "score_at")
  if #score == 0 then return sc.zeros({ 0, 2 }, { dtype = x:dtype() }) end
  return sc.tensor(score, { dtype = x:dtype() }):view(x:size(1), 2)
end

function Checkerboard:__tostring()
  return ("scorch.data.checkerboard(%d×%d on [-%g, %g]²)"):format(self.cells, self.cells,
    self.half_width, self.half_width)
end

-- ---- generic ---------------------------------------------------------------------------------

--- score_from_log_prob(log_prob) -> score(x): ∇ₓ log p by autograd, for any
-- differentiable log-density (the score of a user distribution).
function M.score_from_log_prob(log_prob)
  return function(x)
    return util.enable_grad(function()
      local leaf = x:detach():requires_grad(true)
      return sc.grad(log_prob(leaf):sum(), { leaf })[1]
    end)
  end
end

M.names = { "eight_gaussians", "two_gaussians", "two_moons", "swiss_roll", "rings", "checkerboard" }

--- toy(name [, opts]): a distribution by name.
function M.toy(name, opts)
  local make = M[name]
  local known = false
  for _, n in ipairs(M.names) do known = known or n == name end
  if not known or type(make) ~= "function" then
    error(("scorch.data.toy: unknown data set '%s' (known: %s)"):format(tostring(name),
      table.concat(M.names, ", ")), 2)
  end
  return make(opts)
end

return M
