--- Exact class-conditional models of a labelled Gaussian mixture: the truth
-- that conditional sampling and guidance are checked against.
--
-- For p(x) = Σ_k w_k N(μ_k, Σ_k) with the component k as the class label,
-- the data smoothed at level σ is p_σ(x | k) = N(μ_k, Σ_k + σ²I), so
--   ∇ₓ log p_σ(x | k) = −(Σ_k + σ²I)⁻¹(x − μ_k),
--   log p(k | x, σ) = log w_k + log N(x; μ_k, Σ_k + σ²I) − log p_σ(x),
-- and the unconditional score is the posterior-weighted sum of the
-- conditional ones.  mixture_score is a "network" of kind score on the σ
-- process whose null class ∅ (label 0) is the unconditional score, so every
-- sampler and every guidance rule can drive it; mixture_classifier is the
-- Bayes classifier, whose logits are differentiable in x.
-- @module scorch.models.mixture
local sc = require "scorch"
local cond = require "scorch.models.conditioning"

local M = {}

local LOG_2PI = math.log(2 * math.pi)

local function check_mixture(gm, fn)
  if type(gm) ~= "table" or type(gm.means) ~= "table" or type(gm.lam) ~= "table" or type(gm.U) ~= "table"
      or type(gm.weights) ~= "table" or math.type(gm.K) ~= "integer" then
    error(("scorch.models.%s: expected a Gaussian mixture (sc.data.gaussian_mixture), got %s")
      :format(fn, type(gm)), 3)
  end
end

-- Per-dtype tensors of the mixture: μ_k [1, D], U_k [D, D], λ_k [1, D], log w_k.
local function params_of(gm, cache, dtype)
  if cache[dtype] then return cache[dtype] end
  local o = { dtype = dtype }
  local out = {}
  for k = 1, gm.K do
    out[k] = { mu = sc.tensor({ gm.means[k] }, o), U = sc.tensor(gm.U[k], o), lam = sc.tensor({ gm.lam[k] }, o),
      logw = gm.weights[k] > 0 and math.log(gm.weights[k]) or -math.huge }
    out[k].Ut = out[k].U:t():contiguous()
  end
  cache[dtype] = out
  return out
end

-- For points x [N, D] and σ (nil, a number or an [N, 1] column): the log
-- joint terms log w_k + log N(x; μ_k, Σ_k + σ²I) as [N, K] and the
-- conditional scores as a list of K tensors [N, D].
local function terms(gm, cache, x, sigma, want_scores)
  local P = params_of(gm, cache, x:dtype())
  local D = gm.dim
  local logs, scores = {}, {}
  local s2 = sigma ~= nil and sigma * sigma or nil
  for k = 1, gm.K do
    local p = P[k]
    local z = sc.matmul(x - p.mu, p.U)              -- coordinates along Σ_k's eigenvectors
    local v = s2 ~= nil and p.lam + s2 or p.lam     -- [1 or N, D] variances
    local zv = z / v
    logs[k] = ((z * zv):sum(2, true) + v:log():sum(2, true)) * -0.5 + (p.logw - 0.5 * D * LOG_2PI)
    if want_scores then scores[k] = -sc.matmul(zv, p.Ut) end
  end
  return sc.cat(logs, 2), scores
end

local function check_points(x, D, fn)
  if not sc.is_tensor(x) or x:dim() ~= 2 or x:size(2) ~= D then
    error(("scorch.models.%s: x must be points [N, %d], got %s"):format(fn, D,
      require("scorch.util").shape_str(x)), 3)
  end
end

local Score = {}
Score.__index = Score

--- The exact class-conditional score of a Gaussian mixture as a network net(x, σ, y).
-- @param gm a Gaussian mixture from sc.data (gaussian_mixture, eight_gaussians, two_gaussians)
-- @return callable net(x [N, D], σ (number, [N, 1] column or nil for σ = 0), y (labels 1..K, 0 = ∅
--   the unconditional score; a number for the whole batch; nil = ∅)) -> [N, D]; fields classes = K,
--   null_class = true, prediction = "score"
-- @usage local m = sc.param.wrap(sc.models.mixture_score(gm), {kind = "score"})
function M.mixture_score(gm)
  check_mixture(gm, "mixture_score")
  return setmetatable({ mixture = gm, classes = gm.K, null_class = true, p_uncond = 1, prediction = "score",
    _cache = {} }, Score)
end

function Score:__call(x, sigma, y)
  check_points(x, self.mixture.dim, "mixture_score")
  local n, K = x:size(1), self.classes
  local labels = cond.labels(y, n, K, true, "scorch.models.mixture_score", "labels (argument #3)")
  local logs, scores = terms(self.mixture, self._cache, x, sigma, true)
  -- weights [N, K]: one-hot for a class, the posterior p(k | x, σ) for ∅
  local onehot, null = {}, {}
  for i = 1, n do
    local row = {}
    for k = 1, K do row[k] = labels[i] == k and 1 or 0 end
    onehot[i], null[i] = row, { labels[i] == cond.NULL and 1 or 0 }
  end
  local o = { dtype = x:dtype() }
  local post = (logs - logs:logsumexp(2, true)):exp()
  local w = sc.tensor(onehot, o) + post * sc.tensor(null, o)
  local out = scores[1] * w:narrow(2, 1, 1)
  for k = 2, K do out = out + scores[k] * w:narrow(2, k, 1) end
  return out
end

function Score:__tostring() return ("scorch.models.mixture_score(K=%d)"):format(self.classes) end

local Classifier = {}
Classifier.__index = Classifier

--- The Bayes classifier of a Gaussian mixture on noisy data: logits of p(k | x, σ).
-- log w_k + log N(x; μ_k, Σ_k + σ²I), so softmax gives the exact posterior; differentiable in x.
-- @param gm a Gaussian mixture from sc.data
-- @return callable clf(x [N, D], σ (number, [N, 1] column, or nil for σ = 0)) -> logits [N, K];
--   field classes = K
-- @usage local logits = sc.models.mixture_classifier(gm)(x, 0.5)
function M.mixture_classifier(gm)
  check_mixture(gm, "mixture_classifier")
  return setmetatable({ mixture = gm, classes = gm.K, _cache = {} }, Classifier)
end

function Classifier:__call(x, sigma)
  check_points(x, self.mixture.dim, "mixture_classifier")
  return (terms(self.mixture, self._cache, x, sigma, false))
end

function Classifier:__tostring() return ("scorch.models.mixture_classifier(K=%d)"):format(self.classes) end

return M
