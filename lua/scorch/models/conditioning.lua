--- Class conditioning shared by the score and diffusion networks: class
-- labels, the "null" class ∅ that classifier-free guidance needs, label
-- dropout for training it, and the learned class embedding that a network
-- adds to its noise-level embedding.
--
-- Labels are 1-based classes 1..K; the label 0 is the null class ∅ (no
-- condition).  A network built with `classes = K` and `p_uncond > 0` owns
-- K + 1 embedding rows, the last one for ∅; with p_uncond = 0 it owns K
-- rows and has no null class, so it cannot be guided (Ho & Salimans 2021
-- train one network for both ε(x, c) and ε(x, ∅) by dropping labels).
-- @module scorch.models.conditioning
local sc = require "scorch"
local nn = sc.nn
local util = require "scorch.util"

local M = {}

--- The label of the null class ∅ (unconditional).
M.NULL = 0

--- The default probability of replacing a label by ∅ in training (Ho & Salimans 2021 use 0.1 or 0.2).
M.DEFAULT_P_UNCOND = 0.1

local function int_of(v)
  if math.type(v) == "integer" then return v end
  if type(v) == "number" and v == math.floor(v) then return math.tointeger(v) end
  return nil
end

--- Labels as a Lua array of N integers, checked against the classes.
-- @param y number (one class for the whole batch), Lua list or tensor of N values; nil is ∅ for all
-- @param n number of points in the batch
-- @param classes K, the number of classes
-- @param null_ok whether the null class 0 is allowed
-- @param fn string: the calling function's full name, for errors
-- @param arg string: the argument's name, for errors (default "labels")
-- @return Lua array of N integers in 0..K
-- @usage local y = sc.models.conditioning.labels({1, 2, 0}, 3, 2, true, "my_net")
function M.labels(y, n, classes, null_ok, fn, arg)
  arg = arg or "labels"
  local list
  if y == nil then
    if not null_ok then
      error(("%s: %s missing and this model has no null class (trained with p_uncond = 0)"):format(fn, arg), 3)
    end
    list = {}
    for i = 1, n do list[i] = M.NULL end
    return list
  end
  if type(y) == "number" then
    local k = int_of(y)
    list = {}
    for i = 1, n do list[i] = k or y end
  elseif sc.is_tensor(y) then
    if y:numel() ~= n then
      error(("%s: %s has %d values for a batch of %d (shape %s)"):format(fn, arg, y:numel(), n,
        util.shape_str(y)), 3)
    end
    list = y:reshape(-1):values()
  elseif type(y) == "table" then
    if #y ~= n then
      error(("%s: %s has %d values for a batch of %d"):format(fn, arg, #y, n), 3)
    end
    list = y
  else
    error(("%s: %s must be a class number, a list or a tensor (got %s)"):format(fn, arg, type(y)), 3)
  end
  local out = {}
  for i = 1, n do
    local k = int_of(list[i])
    if k == nil or k < 0 or k > classes or (k == 0 and not null_ok) then
      error(("%s: %s[%d] = %s is out of range (classes 1..%d%s)"):format(fn, arg, i, tostring(list[i]),
        classes, null_ok and ", or 0 for the null class" or "; this model has no null class"), 3)
    end
    out[i] = k
  end
  return out
end

--- Label dropout for classifier-free guidance: each label replaced by ∅ (0) with probability p.
-- Ho & Salimans 2021, Algorithm 1: c ← ∅ with probability p_uncond.
-- @param y Lua list or tensor of N labels in 1..K
-- @param p number in [0, 1): the probability p_uncond
-- @param opts table: generator (default the global one)
-- @return Lua array of N labels, some of them 0
-- @usage local yd = sc.models.drop_labels(y, 0.1, {generator = g})
function M.drop_labels(y, p, opts)
  opts = util.check_options(opts, { "generator" }, "scorch.models.drop_labels")
  if type(p) ~= "number" or not (p >= 0 and p < 1) then
    error(("scorch.models.drop_labels: p (argument #2) must be a number in [0, 1), got %s"):format(tostring(p)), 2)
  end
  local list = sc.is_tensor(y) and y:reshape(-1):values() or y
  if type(list) ~= "table" then
    error(("scorch.models.drop_labels: labels (argument #1) must be a list or a tensor, got %s"):format(type(y)), 2)
  end
  local n, out = #list, {}
  if n == 0 then return out end
  local u = sc.rand({ n }, { generator = opts.generator, dtype = "float64" }):values()
  for i = 1, n do
    local k = int_of(list[i])
    if not k or k < 1 then
      error(("scorch.models.drop_labels: label %d is %s, expected a class 1..K"):format(i, tostring(list[i])), 2)
    end
    out[i] = u[i] < p and M.NULL or k
  end
  return out
end

-- ClassEmbedding(K, dim, {null=, dtype=, generator=}): K rows (K + 1 with
-- null = true, the last one for ∅); e(labels, n) -> [n, dim].
local ClassEmbedding = nn.Module:extend("ClassEmbedding")
M.ClassEmbedding = ClassEmbedding

function ClassEmbedding:init(classes, dim, opts)
  opts = util.check_options(opts, { "null", "dtype", "generator" }, "scorch.models.ClassEmbedding", 4)
  self.classes, self.dim, self.null_class = classes, dim, opts.null and true or false
  self.table = nn.Embedding(classes + (self.null_class and 1 or 0), dim,
    { dtype = opts.dtype, generator = opts.generator })
end

function ClassEmbedding:forward(y, n, who)
  local list = M.labels(y, n, self.classes, self.null_class, who or "scorch.models.ClassEmbedding")
  local idx = {}
  for i = 1, n do idx[i] = list[i] == M.NULL and self.classes + 1 or list[i] end
  return self.table(idx)
end

function ClassEmbedding:extra_repr()
  return ("classes=%d, dim=%d, null_class=%s"):format(self.classes, self.dim, tostring(self.null_class))
end

-- Reads classes / p_uncond from a network's options (`checked`: already
-- through util.check_options by the network's constructor) and, when
-- classes is set, gives the network its class embedding of size dim (built
-- last, so a network without classes draws exactly the parameters it
-- always did).  Sets net.classes, net.p_uncond and net.null_class.
function M.setup(net, checked, dim, who)
  local K, p = checked.classes, checked.p_uncond
  if K == nil then
    if p ~= nil then error(("%s: p_uncond needs classes"):format(who), 4) end
    return
  end
  if math.type(K) ~= "integer" or K < 1 then
    error(("%s: classes must be a positive integer (got %s)"):format(who, tostring(K)), 4)
  end
  p = p == nil and M.DEFAULT_P_UNCOND or p
  if type(p) ~= "number" or not (p >= 0 and p < 1) then
    error(("%s: p_uncond must be a number in [0, 1) (got %s)"):format(who, tostring(p)), 4)
  end
  net.classes, net.p_uncond, net.null_class = K, p, p > 0
  net.class_embed = ClassEmbedding(K, dim, { null = p > 0, dtype = checked.dtype, generator = checked.generator })
end

-- The class embedding [n, dim] of labels y for a network set up above, or
-- nil for a network without classes (which then refuses a label).
function M.embed(net, y, n, who)
  if not net.classes then
    if y ~= nil then
      error(("%s: labels (argument #3) given to a model built without classes"):format(who), 3)
    end
    return nil
  end
  return net.class_embed(y, n, who)
end

-- ", classes=K, p_uncond=p" for a network's extra_repr ("" without classes).
function M.repr(net)
  if not net.classes then return "" end
  return (", classes=%d, p_uncond=%g"):format(net.classes, net.p_uncond)
end

return M
