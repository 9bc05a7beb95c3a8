--- The functions of the C core that `sc` exposes (`sc.randn`, `sc.matmul`,
-- ...), documented here because their code is C (csrc/lua, csrc/core).  LDoc
-- reads this file for the API reference (`make docs`) and the REPL's
-- `?sc.randn` / `help(sc.randn)` reads it at run time.  It holds no code.
--
-- Shapes are varargs or one table (`sc.zeros(2, 3)` is `sc.zeros{2, 3}`);
-- dims are 1-based and negative dims count from the end.  Every function
-- raises an error naming itself, the argument and the shapes on bad input.
-- Tensor methods (`t:sum()`, `t:view()`, ...) are listed in docs/api.md.
-- @module scorch

--- A tensor from a number (0-d) or a nested Lua table; float32 unless `dtype = "float64"`.
-- @param v a number or a nested Lua table of numbers (rectangular)
-- @param[opt] opts table: dtype = "float32" | "float64"; requires_grad = false
-- @return tensor of the table's shape
-- @usage local x = sc.tensor({{1, 2}, {3, 4}}, {dtype = "float64"})
-- @function tensor

--- A tensor of zeros.
-- @param ... the shape: integers as varargs or one table; a trailing {dtype=} picks the type
-- @return tensor of that shape
-- @usage local z = sc.zeros(64, 2)
-- @function zeros

--- A tensor of ones.
-- @param ... the shape: integers as varargs or one table; a trailing {dtype=}
-- @return tensor of that shape
-- @usage local o = sc.ones{3, 3}
-- @function ones

--- A tensor whose values are left unset (fastest when every element is written next).
-- @param ... the shape: integers as varargs or one table; a trailing {dtype=}
-- @return tensor of that shape
-- @usage local buf = sc.empty(128, 784)
-- @function empty

--- A tensor with every element `v`.
-- @param shape table of sizes, e.g. {2, 3}
-- @param v number: the fill value
-- @param[opt] opts table: dtype
-- @return tensor of `shape`
-- @usage local s = sc.full({4}, 0.5)
-- @function full

--- Standard normal N(0, 1) samples from the global generator (or `generator`).
-- @param ... the shape as varargs or a table; a trailing {dtype=, generator=}
-- @return tensor of that shape
-- @usage local x = sc.randn(500, 2)
-- @function randn

--- Uniform samples in [0, 1) from the global generator (or `generator`).
-- @param ... the shape as varargs or a table; a trailing {dtype=, generator=}
-- @return tensor of that shape
-- @usage local u = sc.rand(16)
-- @function rand

--- Integers in [lo, hi), uniform, stored as floats.
-- @param lo integer, inclusive
-- @param hi integer, exclusive
-- @param shape table of sizes
-- @param[opt] opts table: dtype, generator
-- @return tensor of `shape`
-- @usage local labels = sc.randint(0, 10, {64})
-- @function randint

--- The 1-D range a, a + step, ... below `b` (end exclusive, as in PyTorch).
-- @param a start
-- @param b end, excluded
-- @param[opt] step step (default 1)
-- @param[opt] opts table: dtype
-- @return 1-D tensor
-- @usage sc.arange(0, 5) --> [0, 1, 2, 3, 4]
-- @function arange

--- `n` evenly spaced values from `a` to `b`, both included.
-- @param a first value
-- @param b last value, included
-- @param n number of points
-- @param[opt] opts table: dtype
-- @return 1-D tensor of n values
-- @usage local t = sc.linspace(0, 1, 11)
-- @function linspace

--- Seeds the global counter-based (Philox) generator; the same seed gives the same numbers at any thread count.
-- @param n integer seed
-- @usage sc.manual_seed(0)
-- @function manual_seed

--- A generator of one's own, independent of the global one; pass it as
-- `{generator = g}`. Methods: `g:manual_seed(n)`, `g:get_state()`, `g:set_state(s)`.
-- @param[opt] seed integer (default 0)
-- @return a generator
-- @usage local g = sc.Generator(42); local x = sc.randn(3, {generator = g})
-- @function Generator

--- The state of the global generator, to restore later with `set_rng_state`.
-- @return an opaque state value
-- @usage local s = sc.get_rng_state()
-- @function get_rng_state

--- Restores the global generator to a saved state.
-- @param s a state from get_rng_state
-- @usage sc.set_rng_state(s)
-- @function set_rng_state

--- Whether `v` is a scorch tensor.
-- @param v any value
-- @return boolean
-- @usage if sc.is_tensor(x) then print(x:shape()) end
-- @function is_tensor

--- Joins tensors along an existing dim.
-- @param list Lua list of tensors, equal shapes except along d
-- @param[opt] d dim, 1-based, negative from the end (default 1)
-- @return tensor
-- @usage local xy = sc.cat({x, y}, 1)
-- @function cat

--- Joins tensors along a new dim.
-- @param list Lua list of tensors of one shape
-- @param[opt] d the new dim's position (default 1)
-- @return tensor with one more dim
-- @usage local batch = sc.stack({a, b, c})
-- @function stack

--- a + b, elementwise with NumPy broadcasting (also `a + b`).
-- @param a tensor or number
-- @param b tensor or number (broadcast)
-- @return tensor
-- @usage local c = sc.add(a, 1)
-- @function add

--- a − b, elementwise with broadcasting (also `a - b`).
-- @param a tensor or number
-- @param b tensor or number (broadcast)
-- @return tensor
-- @usage local d = sc.sub(x, mu)
-- @function sub

--- a · b, elementwise with broadcasting (also `a * b`).
-- @param a tensor or number
-- @param b tensor or number (broadcast)
-- @return tensor
-- @usage local y = sc.mul(x, 2)
-- @function mul

--- a / b, elementwise with broadcasting (also `a / b`).
-- @param a tensor or number
-- @param b tensor or number (broadcast)
-- @return tensor
-- @usage local z = sc.div(x, sigma)
-- @function div

--- a ^ p, elementwise with broadcasting (also `a ^ p`).
-- @param a tensor or number
-- @param p tensor or number (broadcast)
-- @return tensor
-- @usage local sq = sc.pow(x, 2)
-- @function pow

--- The larger of a and b, elementwise.
-- @param a tensor or number
-- @param b tensor or number (broadcast)
-- @return tensor
-- @usage local r = sc.maximum(x, 0)
-- @function maximum

--- The smaller of a and b, elementwise.
-- @param a tensor or number
-- @param b tensor or number (broadcast)
-- @return tensor
-- @usage local r = sc.minimum(x, 1)
-- @function minimum

--- `a` where `cond` is nonzero, else `b`; all three broadcast.
-- @param cond tensor, nonzero means true
-- @param a tensor or number
-- @param b tensor or number
-- @return tensor
-- @usage local y = sc.where(x:gt(0), x, 0)
-- @function where

--- Limits each element to [lo, hi].
-- @param t tensor
-- @param lo lower bound (nil: none)
-- @param hi upper bound (nil: none)
-- @return tensor of t's shape
-- @usage local img = sc.clamp(x, 0, 1)
-- @function clamp

--- Leaky ReLU: x where x > 0, else negative_slope · x (PyTorch's
-- F.leaky_relu); one op whose derivative is one pass, to any order.
-- @param t tensor
-- @param negative_slope finite number (default 0.01)
-- @return tensor of t's shape
-- @usage local h = sc.leaky_relu(x, 0.2)
-- @function leaky_relu

--- Matrix product, batched over leading dims with broadcasting (OpenBLAS gemm).
-- @param a tensor [..., n, k] (1-D allowed)
-- @param b tensor [..., k, m]
-- @return tensor [..., n, m]
-- @usage local y = sc.matmul(x, w:t())
-- @function matmul

--- Batched matrix product of two 3-D tensors.
-- @param a tensor [B, n, k]
-- @param b tensor [B, k, m]
-- @return tensor [B, n, m]
-- @usage local y = sc.bmm(a, b)
-- @function bmm

--- x Wᵀ + b, the affine map of nn.Linear.
-- @param x tensor [..., in]
-- @param w tensor [out, in]
-- @param[opt] b tensor [out] (optional)
-- @return tensor [..., out]
-- @usage local y = sc.linear(x, w, b)
-- @function linear

--- Gradients of `outputs` with respect to `inputs`. With `create_graph = true`
-- the gradients are recorded and can be differentiated again (score matching,
-- gradient penalties).
-- @param outputs tensor or list of tensors
-- @param inputs list of tensors that require grad
-- @param[opt] opts table: grad_outputs (list, default ones); create_graph = false;
--   retain_graph = create_graph; allow_unused = false
-- @return list of gradients, one per input (nil for an unused input when allow_unused)
-- @usage local g = sc.grad(y:sum(), {x}, {create_graph = true})[1]
-- @function grad

--- Runs `fn(...)` with autograd recording off and returns its results.
-- @param fn function to run with recording off
-- @param[opt] ... its arguments
-- @return whatever fn returns
-- @usage local x = sc.no_grad(function() return model(z) end)
-- @function no_grad

--- Switches autograd recording on or off.
-- @param on boolean
-- @return the previous setting
-- @usage local prev = sc.set_grad_enabled(false)
-- @function set_grad_enabled

--- Whether autograd records operations.
-- @return boolean
-- @usage print(sc.is_grad_enabled())
-- @function is_grad_enabled

--- Every op of the engine's op table, in table order (the gradient checks cover each).
-- @return list of strings
-- @usage for _, name in ipairs(sc.op_names()) do print(name) end
-- @function op_names

--- Writes tensors in the safetensors format, through a temporary file and a rename.
-- @param path file name
-- @param tensors table name -> tensor
-- @param[opt] metadata table of string -> string (optional)
-- @return true, or nil and a message when the file cannot be written
-- @usage sc.save("model.safetensors", model:state_dict(), {step = "1000"})
-- @function save

--- Reads a safetensors file.
-- @param path a safetensors file
-- @return table name -> tensor, and the metadata table (or nil and a message)
-- @usage local sd, meta = sc.load("model.safetensors")
-- @function load

--- The size of the thread pool for large kernels (results do not depend on it).
-- @param n integer > 0
-- @usage sc.set_num_threads(2)
-- @function set_num_threads

--- The size of the thread pool.
-- @return integer
-- @usage print(sc.get_num_threads())
-- @function get_num_threads

--- How float32 linear layers that record no graph may multiply (PyTorch's
-- torch.set_float32_matmul_precision names).  "highest" (the default):
-- float32 throughout.  "medium": layers with 16 to 512 inputs and at most
-- 1024 outputs that record nothing for backward (sampling, evaluation,
-- nn.Sequential chains under sc.no_grad) round their inputs and weights to
-- bfloat16 and multiply with AVX512-BF16, summing in float32; bias,
-- activations and outputs stay float32.  About 2^-9 relative error per
-- operand; a 2-D MLP samples 1.2-1.4x faster (README, Mixed precision).
-- Training (a recorded graph), convolutions and float64 are never
-- affected; on a CPU without
-- AVX512-BF16 "medium" gives the "highest" numbers.  Results do not
-- depend on the thread count either way.
-- @param precision string: "highest" or "medium"
-- @return string: the setting before
-- @usage local old = sc.set_matmul_precision("medium"); sample(); sc.set_matmul_precision(old)
-- @function set_matmul_precision

--- The matmul precision setting (see set_matmul_precision).
-- @return string: "highest" or "medium"
-- @usage print(sc.get_matmul_precision())
-- @function get_matmul_precision

--- Monotonic wall-clock seconds, for timing.
-- @return number
-- @usage local t0 = sc.time(); train(); print(sc.time() - t0)
-- @function time

--- Bytes held by live tensors in the C core.
-- @return integer
-- @usage print(sc.bytes_in_use() / 2^20, 'MiB')
-- @function bytes_in_use

--- Elementwise −t; differentiable to any order (also `t:neg()`).
-- @param t tensor (or a number)
-- @return tensor of t's shape
-- @usage local y = sc.neg(x)
-- @function neg

--- Elementwise eᵗ; differentiable to any order (also `t:exp()`).
-- @param t tensor (or a number)
-- @return tensor of t's shape
-- @usage local y = sc.exp(x)
-- @function exp

--- Elementwise the natural logarithm; differentiable to any order (also `t:log()`).
-- @param t tensor (or a number)
-- @return tensor of t's shape
-- @usage local y = sc.log(x)
-- @function log

--- Elementwise √t; differentiable to any order (also `t:sqrt()`).
-- @param t tensor (or a number)
-- @return tensor of t's shape
-- @usage local y = sc.sqrt(x)
-- @function sqrt

--- Elementwise |t|; differentiable to any order (also `t:abs()`).
-- @param t tensor (or a number)
-- @return tensor of t's shape
-- @usage local y = sc.abs(x)
-- @function abs

--- Elementwise tanh t; differentiable to any order (also `t:tanh()`).
-- @param t tensor (or a number)
-- @return tensor of t's shape
-- @usage local y = sc.tanh(x)
-- @function tanh

--- Elementwise 1 / (1 + e⁻ᵗ); differentiable to any order (also `t:sigmoid()`).
-- @param t tensor (or a number)
-- @return tensor of t's shape
-- @usage local y = sc.sigmoid(x)
-- @function sigmoid

--- Elementwise max(t, 0); differentiable to any order (also `t:relu()`).
-- @param t tensor (or a number)
-- @return tensor of t's shape
-- @usage local y = sc.relu(x)
-- @function relu

--- Elementwise t · sigmoid(t); differentiable to any order (also `t:silu()`).
-- @param t tensor (or a number)
-- @return tensor of t's shape
-- @usage local y = sc.silu(x)
-- @function silu

--- Elementwise log(1 + eᵗ); differentiable to any order (also `t:softplus()`).
-- @param t tensor (or a number)
-- @return tensor of t's shape
-- @usage local y = sc.softplus(x)
-- @function softplus

--- Elementwise sin t; differentiable to any order (also `t:sin()`).
-- @param t tensor (or a number)
-- @return tensor of t's shape
-- @usage local y = sc.sin(x)
-- @function sin

--- Elementwise cos t; differentiable to any order (also `t:cos()`).
-- @param t tensor (or a number)
-- @return tensor of t's shape
-- @usage local y = sc.cos(x)
-- @function cos

--- Elementwise −1, 0 or 1 (gradient 0); differentiable to any order (also `t:sign()`).
-- @param t tensor (or a number)
-- @return tensor of t's shape
-- @usage local y = sc.sign(x)
-- @function sign

--- Elementwise t²; differentiable to any order (also `t:square()`).
-- @param t tensor (or a number)
-- @return tensor of t's shape
-- @usage local y = sc.square(x)
-- @function square

--- Elementwise 1/√t; differentiable to any order (also `t:rsqrt()`).
-- @param t tensor (or a number)
-- @return tensor of t's shape
-- @usage local y = sc.rsqrt(x)
-- @function rsqrt

--- Elementwise log(1 + t), accurate near 0; differentiable to any order (also `t:log1p()`).
-- @param t tensor (or a number)
-- @return tensor of t's shape
-- @usage local y = sc.log1p(x)
-- @function log1p

--- Elementwise eᵗ − 1, accurate near 0; differentiable to any order (also `t:expm1()`).
-- @param t tensor (or a number)
-- @return tensor of t's shape
-- @usage local y = sc.expm1(x)
-- @function expm1

--- Elementwise the complementary error function; differentiable to any order (also `t:erfc()`).
-- @param t tensor (or a number)
-- @return tensor of t's shape
-- @usage local y = sc.erfc(x)
-- @function erfc

--- Elementwise log sigmoid(t), stable for large |t|; differentiable to any order (also `t:logsigmoid()`).
-- @param t tensor (or a number)
-- @return tensor of t's shape
-- @usage local y = sc.logsigmoid(x)
-- @function logsigmoid

--- Reads an IDX file (MNIST, Fashion-MNIST), plain or gzip-compressed (sc.io.read_idx).
-- @param path file name
-- @param[opt] first keep only the first `first` items (only their bytes are read); default all
-- @return float32 tensor of the stored values (0..255 for pixels; float64 for the double type), or nil and a message
-- @usage local imgs = sc.io.read_idx("train-images-idx3-ubyte.gz", 1000)
-- @function io.read_idx

-- ---- tensor methods (t:NAME) ----------------------------------------------------

--- The sizes of every dim as a Lua table.
-- @return table, e.g. {64, 2}
-- @usage local n, d = x:shape()[1], x:shape()[2]
-- @function Tensor:shape

--- The size of dim `d`.
-- @param d dim (1-based, negative from the end)
-- @return integer
-- @usage local batch = x:size(1)
-- @function Tensor:size

--- The number of dims.
-- @return integer
-- @usage if x:dim() == 4 then print('images') end
-- @function Tensor:dim

--- The number of elements.
-- @return integer
-- @usage print(x:numel())
-- @function Tensor:numel

--- The element type.
-- @return "float32" or "float64"
-- @usage assert(x:dtype() == "float32")
-- @function Tensor:dtype

--- The stride of every dim, in elements.
-- @return table
-- @usage print(table.concat(x:stride(), ','))
-- @function Tensor:stride

--- Whether the elements lie in row-major order without gaps.
-- @return boolean
-- @usage if not x:is_contiguous() then x = x:contiguous() end
-- @function Tensor:is_contiguous

--- The value of a one-element tensor as a Lua number.
-- @return number
-- @usage print(loss:item())
-- @function Tensor:item

--- The values as a nested Lua table of the tensor's shape.
-- @return table
-- @usage local rows = x:totable()
-- @function Tensor:totable

--- The values as a flat Lua list in row-major order.
-- @return table
-- @usage for i, v in ipairs(x:values()) do print(i, v) end
-- @function Tensor:values

--- A copy with its own storage (differentiable).
-- @return tensor
-- @usage local y = x:clone()
-- @function Tensor:clone

--- The tensor itself when contiguous, else a contiguous copy.
-- @return tensor
-- @usage x = x:transpose(1, 2):contiguous()
-- @function Tensor:contiguous

--- A float32 copy (the tensor itself when already float32).
-- @return tensor
-- @usage local y = x:float()
-- @function Tensor:float

--- A float64 copy (the tensor itself when already float64).
-- @return tensor
-- @usage local y = x:double()
-- @function Tensor:double

--- Converts to a dtype (the tensor itself when it has it).
-- @param dtype "float32" or "float64"
-- @return tensor
-- @usage local y = x:to("float64")
-- @function Tensor:to

--- The same storage under a new shape (the tensor must be contiguous).
-- @param ... the new shape as varargs or a table; one size may be -1
-- @return tensor sharing x's storage
-- @usage local flat = x:view(-1)
-- @function Tensor:view

--- A new shape: a view when possible, else a copy.
-- @param ... the new shape; one size may be -1
-- @return tensor
-- @usage local img = x:reshape(64, 1, 28, 28)
-- @function Tensor:reshape

--- Swaps two dims (a view).
-- @param d1 dim
-- @param d2 dim
-- @return tensor
-- @usage local xt = x:transpose(1, 2)
-- @function Tensor:transpose

--- The transpose of a 2-D tensor (a view).
-- @return tensor
-- @usage local y = sc.matmul(x, w:t())
-- @function Tensor:t

--- Reorders the dims (a view).
-- @param ... the new order of all dims
-- @return tensor
-- @usage local nhwc = x:permute(1, 3, 4, 2)
-- @function Tensor:permute

--- Repeats size-1 dims without copying (a view with stride 0).
-- @param ... the new shape; -1 keeps a size; size-1 dims grow
-- @return tensor
-- @usage local b = bias:view(1, -1):expand(n, -1)
-- @function Tensor:expand

--- expand to another tensor's shape.
-- @param other tensor whose shape to take
-- @return tensor
-- @usage local m = mask:expand_as(x)
-- @function Tensor:expand_as

--- A slice of `len` entries along `d` (a view).
-- @param d dim
-- @param start first index (1-based)
-- @param len length
-- @return tensor
-- @usage local first10 = x:narrow(1, 1, 10)
-- @function Tensor:narrow

--- The slice at index `i` of dim `d`, with that dim removed (a view).
-- @param d dim
-- @param i index (1-based)
-- @return tensor
-- @usage local img = batch:select(1, 1)
-- @function Tensor:select

--- The entries at `idx` along `d` (a copy).
-- @param d dim
-- @param idx 1-D tensor or list of 1-based indices
-- @return tensor
-- @usage local sub = x:index_select(1, {1, 3, 5})
-- @function Tensor:index_select

--- Adds a size-1 dim (a view).
-- @param d position of the new size-1 dim
-- @return tensor
-- @usage local col = v:unsqueeze(2)
-- @function Tensor:unsqueeze

--- Removes size-1 dims (a view).
-- @param[opt] d dim to remove (default: every size-1 dim)
-- @return tensor
-- @usage local v = col:squeeze(2)
-- @function Tensor:squeeze

--- The sum over dim `d`, or of all elements.
-- @param[opt] d dim (default: all)
-- @param[opt] keepdim keep d as size 1 (default false)
-- @return tensor
-- @usage local per_row = x:sum(2)
-- @function Tensor:sum

--- The mean over dim `d`, or of all elements.
-- @param[opt] d dim (default: all)
-- @param[opt] keepdim boolean (default false)
-- @return tensor
-- @usage local loss = (pred - y):square():mean()
-- @function Tensor:mean

--- The unbiased variance over dim `d`, or of all elements.
-- @param[opt] d dim (default: all)
-- @param[opt] keepdim boolean (default false)
-- @return tensor
-- @usage local v = x:var(1)
-- @function Tensor:var

--- The maximum over dim `d` (and its 1-based indices), or of all elements.
-- @param[opt] d dim (default: all)
-- @param[opt] keepdim boolean (default false)
-- @return values tensor, and indices with d
-- @usage local best, idx = scores:max(2)
-- @function Tensor:max

--- The minimum over dim `d` (and its 1-based indices), or of all elements.
-- @param[opt] d dim (default: all)
-- @param[opt] keepdim boolean (default false)
-- @return values tensor, and indices with d
-- @usage local lo = x:min()
-- @function Tensor:min

--- log Σ exp(x) over dim `d`, computed stably.
-- @param d dim
-- @param[opt] keepdim boolean (default false)
-- @return tensor
-- @usage local lse = logits:logsumexp(2)
-- @function Tensor:logsumexp

--- Whether autograd tracks the tensor; with an argument, sets it on a leaf and returns the tensor.
-- @param[opt] on boolean (omit to query)
-- @return boolean, or the tensor
-- @usage local w = sc.randn(3, 3):requires_grad(true)
-- @function Tensor:requires_grad

--- Accumulates the gradient of this tensor into the `.grad` of the leaves it depends on.
-- @param[opt] grad gradient of the output (default 1 for a scalar)
-- @usage loss:backward()
-- @function Tensor:backward

--- The same values, cut from the graph.
-- @return tensor
-- @usage local target = y:detach()
-- @function Tensor:detach

--- Clears the accumulated `.grad` of a leaf.
-- @usage w:zero_grad()
-- @function Tensor:zero_grad

--- The name of the op that produced the tensor, or nil for a leaf.
-- @return string or nil
-- @usage print(y:grad_fn())
-- @function Tensor:grad_fn

--- Whether the tensor is a leaf of the graph (made by the user, not by an op).
-- @return boolean
-- @usage assert(w:is_leaf())
-- @function Tensor:is_leaf

--- Copies `src` into this tensor in place.
-- @param src tensor (broadcast to this shape)
-- @return the tensor
-- @usage buf:copy_(x)
-- @function Tensor:copy_

--- Sets every element to `v` in place.
-- @param v number
-- @return the tensor
-- @usage x:fill_(0)
-- @function Tensor:fill_

--- Sets every element to 0 in place.
-- @return the tensor
-- @usage acc:zero_()
-- @function Tensor:zero_

--- Adds in place.
-- @param other tensor or number
-- @return the tensor
-- @usage acc:add_(x)
-- @function Tensor:add_

--- Multiplies in place.
-- @param other tensor or number
-- @return the tensor
-- @usage w:mul_(0.5)
-- @function Tensor:mul_

--- Fills with N(mean, std²) samples in place.
-- @param[opt] mean number (default 0)
-- @param[opt] std number (default 1)
-- @param[opt] opts table: generator
-- @return the tensor
-- @usage w:normal_(0, 0.02)
-- @function Tensor:normal_

--- Fills with U[lo, hi) samples in place.
-- @param[opt] lo number (default 0)
-- @param[opt] hi number (default 1)
-- @param[opt] opts table: generator
-- @return the tensor
-- @usage w:uniform_(-0.1, 0.1)
-- @function Tensor:uniform_

--- Elementwise x > other as 1 and 0 (float).
-- @param other tensor or number (broadcast)
-- @return tensor
-- @usage local mask = x:gt(0)
-- @function Tensor:gt

--- Elementwise x < other as 1 and 0 (float).
-- @param other tensor or number (broadcast)
-- @return tensor
-- @usage local mask = x:lt(0)
-- @function Tensor:lt

--- Elementwise x ≥ other as 1 and 0 (float).
-- @param other tensor or number (broadcast)
-- @return tensor
-- @usage local mask = x:ge(0)
-- @function Tensor:ge

--- Elementwise x ≤ other as 1 and 0 (float).
-- @param other tensor or number (broadcast)
-- @return tensor
-- @usage local mask = x:le(0)
-- @function Tensor:le

--- Elementwise x = other as 1 and 0 (float).
-- @param other tensor or number (broadcast)
-- @return tensor
-- @usage local mask = x:eq(0)
-- @function Tensor:eq

--- Elementwise x ≠ other as 1 and 0 (float).
-- @param other tensor or number (broadcast)
-- @return tensor
-- @usage local mask = x:ne(0)
-- @function Tensor:ne

return {}
