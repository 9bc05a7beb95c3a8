/*
 * scorch core: tensors, storage, errors, allocation accounting.
 *
 * Plain C11; never includes a Lua header.  Every function that can fail
 * returns NULL (for tensors) or a negative status and leaves a message in
 * sc_error(); the caller owns every tensor it is handed back (refcount 1).
 */
#ifndef SC_TENSOR_H
#define SC_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define SC_MAX_DIMS 8

typedef enum { SC_FLOAT32 = 0, SC_FLOAT64 = 1 } sc_dtype;

/* Refcounted, 64-byte aligned buffer shared by views.  The version counter
   is bumped by every in-place write so autograd can detect stale saves. */
typedef struct sc_storage {
  int refcount;
  uint32_t version;
  size_t nbytes;
  void *data;
  int tiny; /* data lies in the same block (tensor.c: tiny storages) */
} sc_storage;

struct sc_node;

typedef struct sc_tensor {
  /* the fields a release reads come first, in one cache line (headers are
     64-byte aligned): the collector releases temporaries long after they
     were made, when their headers are no longer in cache */
  int refcount;
  sc_dtype dtype;
  int ndim;
  /* autograd: a leaf has grad_fn == NULL; requires_grad is set on leaves by
     the user and on results of recorded ops. */
  int requires_grad;
  int64_t numel;
  int64_t offset;              /* in elements, into storage */
  sc_storage *storage;
  struct sc_tensor *grad;   /* accumulated gradient of a leaf */
  struct sc_node *grad_fn;  /* node that produced this tensor */
  int64_t shape[SC_MAX_DIMS];
  int64_t stride[SC_MAX_DIMS]; /* in elements */
} sc_tensor;

/* ---- errors ------------------------------------------------------------ */
const char *sc_error(void);
void sc_set_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* Formats a shape as "[3,4]" into buf (for error messages). */
const char *sc_shape_str(const sc_tensor *t, char *buf, size_t len);

/* ---- allocation accounting -------------------------------------------- */
/* Bytes of tensor data currently held by the core. */
int64_t sc_bytes_in_use(void);
/* Hooks installed by the binding: `pressure` is told of every allocation
   (so the host's collector can be nudged), `reclaim` is called once when an
   allocation fails and returns nonzero if it freed something worth a retry. */
typedef void (*sc_pressure_fn)(void *ud, size_t bytes);
typedef int (*sc_reclaim_fn)(void *ud);
void sc_set_alloc_hooks(sc_pressure_fn pressure, sc_reclaim_fn reclaim,
                        void *ud);
void *sc_aligned_alloc(size_t nbytes); /* NULL + error on failure */
void sc_aligned_free(void *p, size_t nbytes);

/* ---- lifetime ---------------------------------------------------------- */
sc_tensor *sc_retain(sc_tensor *t);
void sc_release(sc_tensor *t); /* NULL is fine */
static inline size_t sc_dtype_size(sc_dtype dt) { return dt == SC_FLOAT64 ? 8 : 4; }
const char *sc_dtype_name(sc_dtype dt);

/* ---- creation ---------------------------------------------------------- */
sc_tensor *sc_empty(int ndim, const int64_t *shape, sc_dtype dt);
sc_tensor *sc_zeros(int ndim, const int64_t *shape, sc_dtype dt);
sc_tensor *sc_full(int ndim, const int64_t *shape, double v, sc_dtype dt);
sc_tensor *sc_scalar(double v, sc_dtype dt); /* 0-d tensor */
sc_tensor *sc_from_doubles(int ndim, const int64_t *shape, const double *v,
                           sc_dtype dt);
sc_tensor *sc_arange(double a, double b, double step, sc_dtype dt);
sc_tensor *sc_linspace(double a, double b, int64_t n, sc_dtype dt);
sc_tensor *sc_zeros_like(const sc_tensor *t);

/* ---- element access ---------------------------------------------------- */
static inline void *sc_data(const sc_tensor *t) {
  return (char *)t->storage->data + t->offset * (int64_t)sc_dtype_size(t->dtype);
}
int sc_is_contiguous(const sc_tensor *t);
/* Reads element with linear (row-major) index i as double. */
double sc_get_linear(const sc_tensor *t, int64_t i);
void sc_set_linear_public(sc_tensor *t, int64_t i, double v);
/* Copies all elements, row-major, into out (numel doubles). */
void sc_to_doubles(const sc_tensor *t, double *out);
int sc_same_shape(const sc_tensor *a, const sc_tensor *b);

/* Dimension helpers: d is 0-based here; the binding converts. */
int sc_check_dim(const char *fn, const sc_tensor *t, int d);

/* ---- views (share storage; recorded by autograd) ----------------------- */
sc_tensor *sc_view(sc_tensor *t, int ndim, const int64_t *shape);
sc_tensor *sc_reshape(sc_tensor *t, int ndim, const int64_t *shape);
sc_tensor *sc_transpose(sc_tensor *t, int d1, int d2);
sc_tensor *sc_permute(sc_tensor *t, const int *perm);
sc_tensor *sc_expand(sc_tensor *t, int ndim, const int64_t *shape);
sc_tensor *sc_narrow(sc_tensor *t, int d, int64_t start, int64_t len);
sc_tensor *sc_select(sc_tensor *t, int d, int64_t i);
sc_tensor *sc_unsqueeze(sc_tensor *t, int d);
sc_tensor *sc_squeeze(sc_tensor *t, int d); /* d < 0: all size-1 dims */
sc_tensor *sc_alias(sc_tensor *t);          /* new header, same storage */
sc_tensor *sc_detach(sc_tensor *t);

/* ---- copies ------------------------------------------------------------- */
sc_tensor *sc_contiguous(sc_tensor *t); /* retains t if already contiguous */
sc_tensor *sc_clone(sc_tensor *t);
sc_tensor *sc_to_dtype(sc_tensor *t, sc_dtype dt);
sc_tensor *sc_cat(int n, sc_tensor **ts, int d);
sc_tensor *sc_stack(int n, sc_tensor **ts, int d);
sc_tensor *sc_index_select(sc_tensor *t, int d, int64_t n,
                           const int64_t *idx);
/* Sums t down to the given (broadcast-compatible) shape. */
sc_tensor *sc_sum_to(sc_tensor *t, int ndim, const int64_t *shape);
/* Zero tensor of `shape` with t written into the slice [start, start+len) of
   dim d: the transpose of narrow. */
sc_tensor *sc_narrow_backward(sc_tensor *t, int ndim, const int64_t *shape,
                              int d, int64_t start);
/* Zero tensor with rows idx of dim d accumulating t: transpose of
   index_select. */
sc_tensor *sc_index_add(sc_tensor *t, int ndim, const int64_t *shape, int d,
                        int64_t n, const int64_t *idx);

/* ---- in-place (bump the storage version; never recorded) --------------- */
int sc_copy_(sc_tensor *dst, sc_tensor *src); /* broadcasts src */
int sc_fill_(sc_tensor *t, double v);
int sc_add_scaled_(sc_tensor *dst, sc_tensor *src, double alpha);
int sc_mul_scalar_(sc_tensor *t, double v);

/* ---- elementwise -------------------------------------------------------- */
/* Kernel ids SC_NEG, SC_EXP, ..., one per row of ops.def. */
typedef enum {
#define SC_UNARY(NAME, name, saves, lua, expr) SC_##NAME,
#include "ops.def"
  SC_NUM_UNARY
} sc_unary_op;

/* SC_ADD, ..., SC_MINIMUM, then the comparisons SC_GT, ..., SC_NE (0/1,
   no gradient). */
typedef enum {
#define SC_BINARY(NAME, name, saves, expr) SC_##NAME,
#define SC_COMPARE(NAME, name, expr) SC_##NAME,
#include "ops.def"
  SC_NUM_BINARY
} sc_binary_op;

/* The op's name as Lua spells it ("exp", "add", "gt"). */
const char *sc_unary_name(sc_unary_op op);
const char *sc_binary_name(sc_binary_op op);

sc_tensor *sc_unary(sc_unary_op op, sc_tensor *x);
sc_tensor *sc_binary(sc_binary_op op, sc_tensor *a, sc_tensor *b);
/* a op s, or s op a when `reversed` */
sc_tensor *sc_binary_scalar(sc_binary_op op, sc_tensor *a, double s,
                            int reversed);
sc_tensor *sc_where(sc_tensor *cond, sc_tensor *a, sc_tensor *b);
sc_tensor *sc_clamp(sc_tensor *x, double lo, double hi);
/* x > 0 ? x : slope x (slope finite), and the product of its derivative with
   g: x > 0 ? g : slope g (g and x of one shape and dtype; differentiable in
   g only, since the derivative is piecewise constant).  relu's backward is
   leaky_grad with slope 0. */
sc_tensor *sc_leaky_relu(sc_tensor *x, double slope);
sc_tensor *sc_leaky_grad(sc_tensor *g, sc_tensor *x, double slope);
/* [N] = sum_j x_ij l_ij - softplus(l_ij) for logits l and data x in [0, 1],
   both [N, D]: a Bernoulli decoder's log-likelihood per row */
sc_tensor *sc_bernoulli_log_prob(sc_tensor *l, sc_tensor *x);

/* ---- reductions --------------------------------------------------------- */
/* dims: n dims (0-based); n == 0 means all dims. */
sc_tensor *sc_sum(sc_tensor *x, int n, const int *dims, int keepdim);
sc_tensor *sc_mean(sc_tensor *x, int n, const int *dims, int keepdim);
sc_tensor *sc_var(sc_tensor *x, int n, const int *dims, int keepdim,
                  int unbiased);
/* max/min over one dim (d >= 0) or all (d < 0); indices (0-based) optional */
sc_tensor *sc_max(sc_tensor *x, int d, int keepdim, sc_tensor **indices);
sc_tensor *sc_min(sc_tensor *x, int d, int keepdim, sc_tensor **indices);
sc_tensor *sc_logsumexp(sc_tensor *x, int d, int keepdim);

/* ---- linear algebra ---------------------------------------------------- */
sc_tensor *sc_matmul(sc_tensor *a, sc_tensor *b); /* batched, broadcasting */
/* x W^T + b (b may be NULL): x [..., in], W [out, in], b [out]. */
sc_tensor *sc_linear(sc_tensor *x, sc_tensor *w, sc_tensor *b);
/* silu(x W^T + b): fused into one pass over the product when no graph is
   recorded, the composite of linear and silu (same values) otherwise. */
sc_tensor *sc_linear_silu(sc_tensor *x, sc_tensor *w, sc_tensor *b);
/* silu(h) W^T + b as one op, whose backward puts silu' into the epilogue
   of its input gradient's product (an MLP's SiLU + Linear pairs) */
sc_tensor *sc_silu_linear(sc_tensor *h, sc_tensor *w, sc_tensor *b);
/* A chain of nl linear layers, each followed by a SiLU where silu[l]:
   h = x; h = linear(h, w[l], b[l] or NULL) (then silu).  Without a graph to
   record, a float32 chain of narrow layers runs block by block of rows
   (sc_small_mlp_f32), with the same numbers; otherwise it is the same
   calls one by one. */
sc_tensor *sc_linear_chain(sc_tensor *x, int nl, sc_tensor *const *w, sc_tensor *const *b,
                           const int *silu);

/* ---- normalisation (norm.c) ------------------------------------------- */
/* Group norm of x [N, C, ...] over `groups` groups of channels (and all
   positions) of each sample, then y * w[c] + b[c]; w and b are [C] or NULL. */
sc_tensor *sc_group_norm(sc_tensor *x, int64_t groups, sc_tensor *w,
                         sc_tensor *b, double eps);
/* silu(sc_group_norm(x, groups, w, b, eps)) as one op that saves x and not
   the norm's output (same numbers as the two ops). */
sc_tensor *sc_group_norm_silu(sc_tensor *x, int64_t groups, sc_tensor *w,
                              sc_tensor *b, double eps);
/* Layer norm of x over its trailing nd dims, then y * w + b elementwise;
   w and b have the shape of those dims, or are NULL. */
sc_tensor *sc_layer_norm(sc_tensor *x, int nd, sc_tensor *w, sc_tensor *b,
                         double eps);
/* softmax and log-softmax along dim d (0-based). */
sc_tensor *sc_softmax(sc_tensor *x, int d);
sc_tensor *sc_log_softmax(sc_tensor *x, int d);

/* ---- random -------------------------------------------------------------- */
typedef struct sc_generator {
  uint64_t seed;
  uint64_t offset; /* Philox counter blocks consumed so far */
} sc_generator;
sc_generator *sc_default_generator(void);
void sc_generator_seed(sc_generator *g, uint64_t seed);
sc_tensor *sc_rand(sc_generator *g, int ndim, const int64_t *shape,
                   sc_dtype dt);
/* Whether float32 N(0, 1) fills use rng.c's vector lanes (1, the
   default) or libm alone (0): the same bits either way, for the spec that
   checks it.  Returns the setting before. */
int sc_randn_lanes(int on);
sc_tensor *sc_randn(sc_generator *g, int ndim, const int64_t *shape,
                    sc_dtype dt);
sc_tensor *sc_randint(sc_generator *g, int64_t lo, int64_t hi, int ndim,
                      const int64_t *shape, sc_dtype dt);
/* Fills with U[lo,hi) in place (for initialisers). */
int sc_uniform_(sc_generator *g, sc_tensor *t, double lo, double hi);
int sc_normal_(sc_generator *g, sc_tensor *t, double mean, double std);

/* ---- threads ------------------------------------------------------------ */
void sc_set_num_threads(int n);
int sc_get_num_threads(void);
double sc_time(void); /* monotonic seconds */

#endif
