--- Embedding(n, d [, {dtype=, generator=}]): a table of n vectors of size d,
-- initialised N(0, 1) as PyTorch's.  forward(idx) looks up 1-based indices
-- given as a tensor of any shape (result: idx shape × d) or a Lua list.
-- The gradient of a row accumulates over repeated indices.
-- @module scorch.nn.embedding
local Module = require "scorch.nn.module"
local init = require "scorch.nn.initialisers"
local sc = require "scorch"
local util = require "scorch.util"

local Embedding = Module:extend("Embedding")

function Embedding:init(n, d, opts)
  for _, v in ipairs { n, d } do
    if math.type(v) ~= "integer" or v < 1 then
      error(("scorch.nn.Embedding: sizes must be positive integers (got %s)"):format(tostring(v)), 3)
    end
  end
  opts = util.check_options(opts, { "dtype", "generator" }, "scorch.nn.Embedding", 4)
  self.num_embeddings, self.embedding_dim = n, d
  self.weight = init.normal_(init.parameter({ n, d }, opts.dtype), 0, 1, { generator = opts.generator })
end

function Embedding:forward(idx)
  local w = self.weight
  if sc.is_tensor(idx) and idx:dim() ~= 1 then
    local shape = idx:shape()
    shape[#shape + 1] = self.embedding_dim
    return w:index_select(1, idx:reshape(-1)):view(shape)
  end
  return w:index_select(1, idx)
end

function Embedding:extra_repr()
  return ("%d, %d"):format(self.num_embeddings, self.embedding_dim)
end

return Embedding
