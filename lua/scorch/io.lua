--- scorch.io: reading data files.  sc.save / sc.load (safetensors) live on
-- sc itself; they are repeated here so all file formats are in one place.
--
--   sc.io.read_idx(path [, first])  an IDX file (MNIST, Fashion-MNIST),
--       plain or gzip-compressed → a float32 tensor of the stored values
--       (0..255 for pixels; float64 for the double type), or nil and a
--       message when the file is missing or malformed; with `first`, only
--       the first that many items are read.
-- @module scorch.io
local core = require "scorch.core"

return {
  read_idx = core.read_idx,
  save = core.save,
  load = core.load,
}
