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
-- @return float32 tensor of the stored values (0..255 for pixels; float64 for the double type), or nil and a message
-- @usage local imgs = sc.io.read_idx("train-images-idx3-ubyte.gz")
-- @function io.read_idx

return {}
