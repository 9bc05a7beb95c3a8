/*
 * scorch core: elementwise ops.  Each op's kernel and its backward formula
 * live together; backward formulas use only differentiable ops.
 */
#include "autograd.h"
#include "internal.h"
#include "vmath.h"
#include "pool.h"

#include <math.h>
#include <string.h>

/* ---- kernels ------------------------------------------------------------------- */

/* One loop per (op, dtype), from the rows of ops.def; `x` is the input
   element.  The float versions call the float libm functions (F(fn) is
   fnf) so float32 stays float32 throughout. */

/* float32 uses the vectorisable exp/tanh of vmath.h; float64 stays on libm */
#define vexpf sc_vexpf
#define vtanhf sc_vtanhf
#define vsigmoidf sc_vsigmoidf
#define vsiluf sc_vsiluf
#define vsoftplusf sc_vsoftplusf
#define vlogsigmoidf sc_vlogsigmoidf
#define vexp exp
#define vtanh tanh
#define vsigmoid sc_sigmoid
#define vsilu(x) ((x) / (1.0 + exp(-(x))))
#define vsoftplus sc_softplus
#define vlogsigmoid(x) (((x) < 0 ? (x) : 0.0) - log1p(exp(-fabs(x))))

#define silu_gradf sc_silu_gradf
static inline float silu_grad2f(float x) {
  float s = sc_vsigmoidf(x);
  return s * (1.0f - s) * (2.0f + x * (1.0f - 2.0f * s));
}
static inline double silu_grad2(double x) {
  double s = sc_sigmoid(x);
  return s * (1.0 - s) * (2.0 + x * (1.0 - 2.0 * s));
}
#define silu_grad sc_silu_grad

#define UNARY_LOOP(T, NAME, EXPR)                                             \
  SC_DISPATCH static void un_##NAME##_##T(int64_t n, char **p, const int64_t *s, void *c) { \
    (void)c;                                                                  \
    if (s[0] == sizeof(T) && s[1] == sizeof(T)) {                             \
      T *restrict yy = (T *)p[0];                                             \
      const T *restrict xx = (const T *)p[1];                                 \
      for (int64_t i = 0; i < n; i++) {                                       \
        T x = xx[i];                                                          \
        yy[i] = (EXPR);                                                       \
      }                                                                       \
    } else {                                                                  \
      for (int64_t i = 0; i < n; i++) {                                       \
        T x = *(const T *)(p[1] + i * s[1]);                                  \
        *(T *)(p[0] + i * s[0]) = (EXPR);                                     \
      }                                                                       \
    }                                                                         \
  }

/* T and F are what the expressions of ops.def are written in */
#define T float
#define F(fn) fn##f
#define SC_UNARY(NAME, name, saves, lua, expr) UNARY_LOOP(float, NAME, expr)
#include "ops.def"
#undef T
#undef F
#define T double
#define F(fn) fn
#define SC_UNARY(NAME, name, saves, lua, expr) UNARY_LOOP(double, NAME, expr)
#include "ops.def"
#undef T
#undef F

static const sc_loop_fn unary_loops[2][SC_NUM_UNARY] = {
#define SC_UNARY(NAME, name, saves, lua, expr) [SC_##NAME] = un_##NAME##_float,
    {
#include "ops.def"
    },
#define SC_UNARY(NAME, name, saves, lua, expr) [SC_##NAME] = un_##NAME##_double,
    {
#include "ops.def"
    },
};

static const char *const unary_names[SC_NUM_UNARY] = {
#define SC_UNARY(NAME, name, saves, lua, expr) [SC_##NAME] = #name,
#include "ops.def"
};

const char *sc_unary_name(sc_unary_op op) { return unary_names[op]; }

/* Operand 0 is the result; operands 1 and 2 the inputs.  A scalar operand
   is passed through ctx with stride 0 instead. */
#define BINARY_LOOP(T, NAME, EXPR)                                            \
  SC_DISPATCH static void bi_##NAME##_##T(int64_t n, char **p, const int64_t *s, void *c) { \
    (void)c;                                                                  \
    if (s[0] == sizeof(T) && s[1] == sizeof(T) && s[2] == sizeof(T)) {        \
      T *restrict yy = (T *)p[0];                                             \
      const T *restrict aa = (const T *)p[1], *restrict bb = (const T *)p[2]; \
      for (int64_t i = 0; i < n; i++) {                                       \
        T a = aa[i], b = bb[i];                                               \
        yy[i] = (EXPR);                                                       \
      }                                                                       \
    } else if (s[0] == sizeof(T) && s[1] == sizeof(T) && s[2] == 0) {         \
      T *restrict yy = (T *)p[0];                                             \
      const T *restrict aa = (const T *)p[1];                                 \
      const T b = *(const T *)p[2];                                           \
      for (int64_t i = 0; i < n; i++) {                                       \
        T a = aa[i];                                                          \
        yy[i] = (EXPR);                                                       \
      }                                                                       \
    } else {                                                                  \
      for (int64_t i = 0; i < n; i++) {                                       \
        T a = *(const T *)(p[1] + i * s[1]), b = *(const T *)(p[2] + i * s[2]); \
        *(T *)(p[0] + i * s[0]) = (EXPR);                                     \
      }                                                                       \
    }                                                                         \
  }

#define T float
#define F(fn) fn##f
#define SC_BINARY(NAME, name, saves, expr) BINARY_LOOP(float, NAME, expr)
#define SC_COMPARE(NAME, name, expr) BINARY_LOOP(float, NAME, expr)
#include "ops.def"
#undef T
#undef F
#define T double
#define F(fn) fn
#define SC_BINARY(NAME, name, saves, expr) BINARY_LOOP(double, NAME, expr)
#define SC_COMPARE(NAME, name, expr) BINARY_LOOP(double, NAME, expr)
#include "ops.def"
#undef T
#undef F

static const sc_loop_fn binary_loops[2][SC_NUM_BINARY] = {
#define SC_BINARY(NAME, name, saves, expr) [SC_##NAME] = bi_##NAME##_float,
#define SC_COMPARE(NAME, name, expr) [SC_##NAME] = bi_##NAME##_float,
    {
#include "ops.def"
    },
#define SC_BINARY(NAME, name, saves, expr) [SC_##NAME] = bi_##NAME##_double,
#define SC_COMPARE(NAME, name, expr) [SC_##NAME] = bi_##NAME##_double,
    {
#include "ops.def"
    },
};

static const char *const binary_names[SC_NUM_BINARY] = {
#define SC_BINARY(NAME, name, saves, expr) [SC_##NAME] = #name,
#define SC_COMPARE(NAME, name, expr) [SC_##NAME] = #name,
#include "ops.def"
};

const char *sc_binary_name(sc_binary_op op) { return binary_names[op]; }

/* ---- forward ------------------------------------------------------------------------ */

/* What a backward formula reads, from the saves column of ops.def. */
enum { SAVES_NONE, SAVES_IN, SAVES_OUT };

static const int unary_opid[SC_NUM_UNARY] = {
#define SC_UNARY(NAME, name, saves, lua, expr) [SC_##NAME] = SC_OP_##name,
#include "ops.def"
};

static const unsigned char unary_saves[SC_NUM_UNARY] = {
#define SC_UNARY(NAME, name, saves, lua, expr) [SC_##NAME] = SAVES_##saves,
#include "ops.def"
};

static sc_tensor *unary_kernel(sc_unary_op op, sc_tensor *x) {
  sc_tensor *y = sc_empty_as(x);
  if (!y) return NULL;
  if (sc_serial(x->numel) && sc_dense(x)) { /* small dense ops: no plan */
    int64_t es = (int64_t)(x->dtype == SC_FLOAT64 ? sizeof(double) : sizeof(float));
    char *ptr[2] = {sc_data(y), sc_data(x)};
    int64_t st[2] = {es, es};
    unary_loops[x->dtype][op](x->numel, ptr, st, NULL);
    return y;
  }
  sc_tensor *ops[2] = {y, x};
  sc_foreach(2, ops, unary_loops[x->dtype][op], NULL);
  return y;
}

sc_tensor *sc_unary(sc_unary_op op, sc_tensor *x) {
  if ((unsigned)op >= SC_NUM_UNARY) {
    sc_set_error("unary: unknown op %d", (int)op);
    return NULL;
  }
  sc_tensor *y = unary_kernel(op, x);
  if (!y) return NULL;
  sc_node *n;
  int sv = unary_saves[op];
  if (sc_record(unary_opid[op], y, 1, &x, &n) ||
      (n && sv != SAVES_NONE && sc_save(n, sv == SAVES_OUT ? y : x, sv == SAVES_OUT))) {
    sc_release(y);
    return NULL;
  }
  return y;
}

/* Kernel only: a op b with broadcasting, no recording. */
static sc_tensor *binary_kernel(sc_binary_op op, sc_tensor *a, sc_tensor *b) {
  if (a->dtype != b->dtype) {
    sc_set_error("%s: dtypes %s and %s do not match (convert one with "
                 ":float() or :double())", binary_names[op],
                 sc_dtype_name(a->dtype), sc_dtype_name(b->dtype));
    return NULL;
  }
  if (sc_same_shape(a, b) && sc_dense(a) && sc_dense(b)) {
    /* the common case, with no views to build */
    sc_tensor *y = sc_empty_as(a);
    if (!y) return NULL;
    if (sc_serial(a->numel)) {
      int64_t es = (int64_t)(a->dtype == SC_FLOAT64 ? sizeof(double) : sizeof(float));
      char *ptr[3] = {sc_data(y), sc_data(a), sc_data(b)};
      int64_t st[3] = {es, es, es};
      binary_loops[a->dtype][op](a->numel, ptr, st, NULL);
      return y;
    }
    sc_tensor *ops[3] = {y, a, b};
    sc_foreach(3, ops, binary_loops[a->dtype][op], NULL);
    return y;
  }
  int nd;
  int64_t shape[SC_MAX_DIMS];
  if (sc_broadcast_shape(binary_names[op], a->ndim, a->shape,
                         b->ndim, b->shape, &nd, shape))
    return NULL;
  sc_tensor *y = sc_empty(nd, shape, a->dtype);
  sc_tensor *ea = y ? sc_raw_expand(a, nd, shape) : NULL;
  sc_tensor *eb = ea ? sc_raw_expand(b, nd, shape) : NULL;
  if (!eb) {
    sc_release(y);
    sc_release(ea);
    return NULL;
  }
  sc_tensor *ops[3] = {y, ea, eb};
  sc_foreach(3, ops, binary_loops[a->dtype][op], NULL);
  sc_release(ea);
  sc_release(eb);
  return y;
}

/* op ids of tensor-tensor and tensor-number forms; -1 for comparisons */
static const int binary_opid[SC_NUM_BINARY] = {
#define SC_BINARY(NAME, name, saves, expr) [SC_##NAME] = SC_OP_##name,
#define SC_COMPARE(NAME, name, expr) [SC_##NAME] = -1,
#include "ops.def"
};

static const int scalar_opid[SC_NUM_BINARY] = {
#define SC_BINARY(NAME, name, saves, expr) [SC_##NAME] = SC_OP_##name##_scalar,
#define SC_COMPARE(NAME, name, expr) [SC_##NAME] = -1,
#include "ops.def"
};

static const unsigned char binary_saves[SC_NUM_BINARY] = {
#define SC_BINARY(NAME, name, saves, expr) [SC_##NAME] = SAVES_##saves,
#include "ops.def"
};

sc_tensor *sc_binary(sc_binary_op op, sc_tensor *a, sc_tensor *b) {
  if ((unsigned)op >= SC_NUM_BINARY) {
    sc_set_error("binary: unknown op %d", (int)op);
    return NULL;
  }
  sc_tensor *y = binary_kernel(op, a, b);
  if (!y || binary_opid[op] < 0) return y; /* comparisons have no gradient */
  sc_tensor *in[2] = {a, b};
  sc_node *n;
  int rc = sc_record(binary_opid[op], y, 2, in, &n);
  if (rc == 0 && n && binary_saves[op] == SAVES_IN)
    rc = sc_save(n, a, 0) || sc_save(n, b, 0);
  if (rc) {
    sc_release(y);
    return NULL;
  }
  return y;
}

sc_tensor *sc_binary_scalar(sc_binary_op op, sc_tensor *a, double s,
                            int reversed) {
  if ((unsigned)op >= SC_NUM_BINARY) {
    sc_set_error("binary: unknown op %d", (int)op);
    return NULL;
  }
  /* a stack scalar with stride 0 stands in for a broadcast tensor */
  union { float f; double d; } v;
  if (a->dtype == SC_FLOAT64) v.d = s; else v.f = (float)s;
  sc_storage st = {1, 0, sizeof v, &v, 0};
  sc_tensor sv;
  memset(&sv, 0, sizeof sv);
  sv.refcount = 1;
  sv.dtype = a->dtype;
  sv.ndim = a->ndim;
  sv.numel = a->numel;
  memcpy(sv.shape, a->shape, sizeof sv.shape);
  sv.storage = &st;
  sc_tensor *y = sc_empty(a->ndim, a->shape, a->dtype);
  if (!y) return NULL;
  sc_tensor *ops[3] = {y, reversed ? &sv : a, reversed ? a : &sv};
  sc_foreach(3, ops, binary_loops[a->dtype][op], NULL);
  if (scalar_opid[op] < 0) return y;
  sc_node *n;
  int rc = sc_record(scalar_opid[op], y, 1, &a, &n);
  if (rc == 0 && n) {
    n->p.scalar.s = s;
    n->p.scalar.reversed = reversed;
    if (op == SC_DIV || op == SC_POW || op == SC_MAXIMUM || op == SC_MINIMUM)
      rc = sc_save(n, a, 0);
    if (rc == 0 && (op == SC_DIV || op == SC_POW) && reversed)
      rc = sc_save(n, y, 1);
  }
  if (rc) {
    sc_release(y);
    return NULL;
  }
  return y;
}

/* cond ? a : b elementwise; `cond` nonzero means true.  Broadcasts all. */
static void where_loop_f(int64_t n, char **p, const int64_t *s, void *c) {
  (void)c;
  for (int64_t i = 0; i < n; i++) {
    float cv = *(const float *)(p[1] + i * s[1]);
    *(float *)(p[0] + i * s[0]) = cv != 0 ? *(const float *)(p[2] + i * s[2])
                                          : *(const float *)(p[3] + i * s[3]);
  }
}
static void where_loop_d(int64_t n, char **p, const int64_t *s, void *c) {
  (void)c;
  for (int64_t i = 0; i < n; i++) {
    double cv = *(const double *)(p[1] + i * s[1]);
    *(double *)(p[0] + i * s[0]) = cv != 0 ? *(const double *)(p[2] + i * s[2])
                                           : *(const double *)(p[3] + i * s[3]);
  }
}

sc_tensor *sc_where(sc_tensor *cond, sc_tensor *a, sc_tensor *b) {
  if (a->dtype != b->dtype || cond->dtype != a->dtype) {
    sc_set_error("where: dtypes %s, %s and %s do not match",
                 sc_dtype_name(cond->dtype), sc_dtype_name(a->dtype),
                 sc_dtype_name(b->dtype));
    return NULL;
  }
  int n1, nd;
  int64_t s1[SC_MAX_DIMS], shape[SC_MAX_DIMS];
  if (sc_broadcast_shape("where", a->ndim, a->shape, b->ndim, b->shape, &n1, s1) ||
      sc_broadcast_shape("where", cond->ndim, cond->shape, n1, s1, &nd, shape))
    return NULL;
  sc_tensor *y = sc_empty(nd, shape, a->dtype);
  sc_tensor *ec = y ? sc_raw_expand(cond, nd, shape) : NULL;
  sc_tensor *ea = ec ? sc_raw_expand(a, nd, shape) : NULL;
  sc_tensor *eb = ea ? sc_raw_expand(b, nd, shape) : NULL;
  if (!eb) {
    sc_release(y); sc_release(ec); sc_release(ea);
    return NULL;
  }
  sc_tensor *ops[4] = {y, ec, ea, eb};
  sc_foreach(4, ops, a->dtype == SC_FLOAT64 ? where_loop_d : where_loop_f, NULL);
  sc_release(ea);
  sc_release(eb);
  sc_tensor *in[3] = {NULL, a, b};
  sc_node *n;
  if (sc_record(SC_OP_where, y, 3, in, &n) || (n && sc_save(n, ec, 0))) {
    sc_release(ec);
    sc_release(y);
    return NULL;
  }
  sc_release(ec);
  return y;
}

typedef struct { double lo, hi; } clamp_ctx;
static void clamp_loop_f(int64_t n, char **p, const int64_t *s, void *c) {
  const clamp_ctx *k = c;
  float lo = (float)k->lo, hi = (float)k->hi;
  for (int64_t i = 0; i < n; i++) {
    float x = *(const float *)(p[1] + i * s[1]);
    *(float *)(p[0] + i * s[0]) = x < lo ? lo : x > hi ? hi : x;
  }
}
static void clamp_loop_d(int64_t n, char **p, const int64_t *s, void *c) {
  const clamp_ctx *k = c;
  for (int64_t i = 0; i < n; i++) {
    double x = *(const double *)(p[1] + i * s[1]);
    *(double *)(p[0] + i * s[0]) = x < k->lo ? k->lo : x > k->hi ? k->hi : x;
  }
}

sc_tensor *sc_clamp(sc_tensor *x, double lo, double hi) {
  if (lo > hi) {
    sc_set_error("clamp: lower bound %g is above upper bound %g", lo, hi);
    return NULL;
  }
  sc_tensor *y = sc_empty(x->ndim, x->shape, x->dtype);
  if (!y) return NULL;
  clamp_ctx k = {lo, hi};
  sc_tensor *ops[2] = {y, x};
  sc_foreach(2, ops, x->dtype == SC_FLOAT64 ? clamp_loop_d : clamp_loop_f, &k);
  sc_node *n;
  if (sc_record(SC_OP_clamp, y, 1, &x, &n) || (n && sc_save(n, x, 0))) {
    sc_release(y);
    return NULL;
  }
  if (n) {
    n->p.clamp.lo = lo;
    n->p.clamp.hi = hi;
  }
  return y;
}

/* leaky_relu: y = x > 0 ? x : slope x; leaky_grad: y = x > 0 ? g : slope g.
   With slope 0 the second is relu's backward, and gives the bits of the
   product g * step(x) it replaces (g * 1 is g; the other branch is the
   same product g * 0). */
typedef struct { double slope; } leaky_ctx;
#define LEAKY_LOOPS(T)                                                         \
  SC_DISPATCH static void leaky_loop_##T(int64_t n, char **p, const int64_t *s, void *c) { \
    T k = (T)((const leaky_ctx *)c)->slope;                                    \
    if (s[0] == sizeof(T) && s[1] == sizeof(T)) {                              \
      T *restrict yy = (T *)p[0];                                              \
      const T *restrict xx = (const T *)p[1];                                  \
      for (int64_t i = 0; i < n; i++) yy[i] = xx[i] > 0 ? xx[i] : xx[i] * k;   \
    } else {                                                                   \
      for (int64_t i = 0; i < n; i++) {                                        \
        T x = *(const T *)(p[1] + i * s[1]);                                   \
        *(T *)(p[0] + i * s[0]) = x > 0 ? x : x * k;                           \
      }                                                                        \
    }                                                                          \
  }                                                                            \
  SC_DISPATCH static void leaky_grad_loop_##T(int64_t n, char **p, const int64_t *s, void *c) { \
    T k = (T)((const leaky_ctx *)c)->slope;                                    \
    if (s[0] == sizeof(T) && s[1] == sizeof(T) && s[2] == sizeof(T)) {         \
      T *restrict yy = (T *)p[0];                                              \
      const T *restrict gg = (const T *)p[1], *restrict xx = (const T *)p[2];  \
      for (int64_t i = 0; i < n; i++) yy[i] = xx[i] > 0 ? gg[i] : gg[i] * k;   \
    } else {                                                                   \
      for (int64_t i = 0; i < n; i++) {                                        \
        T g = *(const T *)(p[1] + i * s[1]), x = *(const T *)(p[2] + i * s[2]); \
        *(T *)(p[0] + i * s[0]) = x > 0 ? g : g * k;                           \
      }                                                                        \
    }                                                                          \
  }
LEAKY_LOOPS(float)
LEAKY_LOOPS(double)

static int leaky_slope_ok(const char *fn, double slope) {
  if (!isfinite(slope)) {
    sc_set_error("%s: negative_slope must be a finite number (got %g)", fn, slope);
    return 0;
  }
  return 1;
}

/* leaky_relu(x) (g NULL) or leaky_grad(g, x): computed, recorded with its
   one differentiable input (x, or g), x saved and the slope kept */
static sc_tensor *leaky_op(sc_tensor *g, sc_tensor *x, double slope) {
  sc_tensor *y = sc_empty(x->ndim, x->shape, x->dtype);
  if (!y) return NULL;
  leaky_ctx k = {slope};
  int dbl = x->dtype == SC_FLOAT64;
  sc_tensor *in = g ? g : x, *ops[3] = {y, in, x};
  if (g)
    sc_foreach(3, ops, dbl ? leaky_grad_loop_double : leaky_grad_loop_float, &k);
  else
    sc_foreach(2, ops, dbl ? leaky_loop_double : leaky_loop_float, &k);
  sc_node *n;
  if (sc_record(g ? SC_OP_leaky_grad : SC_OP_leaky_relu, y, 1, &in, &n) ||
      (n && sc_save(n, x, 0))) {
    sc_release(y);
    return NULL;
  }
  if (n) n->p.leaky.slope = slope;
  return y;
}

sc_tensor *sc_leaky_relu(sc_tensor *x, double slope) {
  return leaky_slope_ok("leaky_relu", slope) ? leaky_op(NULL, x, slope) : NULL;
}

sc_tensor *sc_leaky_grad(sc_tensor *g, sc_tensor *x, double slope) {
  if (!leaky_slope_ok("leaky_grad", slope)) return NULL;
  if (g->dtype != x->dtype || !sc_same_shape(g, x)) {
    char b1[96], b2[96];
    sc_set_error("leaky_grad: gradient %s (%s) and input %s (%s) must have one shape and dtype",
                 sc_shape_str(g, b1, sizeof b1), sc_dtype_name(g->dtype),
                 sc_shape_str(x, b2, sizeof b2), sc_dtype_name(x->dtype));
    return NULL;
  }
  return leaky_op(g, x, slope);
}

/* ---- in-place (never recorded) ---------------------------------------------------- */

static void fill_loop_f(int64_t n, char **p, const int64_t *s, void *c) {
  float v = (float)*(const double *)c;
  for (int64_t i = 0; i < n; i++) *(float *)(p[0] + i * s[0]) = v;
}
static void fill_loop_d(int64_t n, char **p, const int64_t *s, void *c) {
  double v = *(const double *)c;
  for (int64_t i = 0; i < n; i++) *(double *)(p[0] + i * s[0]) = v;
}

int sc_fill_(sc_tensor *t, double v) {
  sc_foreach(1, &t, t->dtype == SC_FLOAT64 ? fill_loop_d : fill_loop_f, &v);
  sc_bump(t);
  return 0;
}

static void axpy_loop_f(int64_t n, char **p, const int64_t *s, void *c) {
  float a = (float)*(const double *)c;
  for (int64_t i = 0; i < n; i++)
    *(float *)(p[0] + i * s[0]) += a * *(const float *)(p[1] + i * s[1]);
}
static void axpy_loop_d(int64_t n, char **p, const int64_t *s, void *c) {
  double a = *(const double *)c;
  for (int64_t i = 0; i < n; i++)
    *(double *)(p[0] + i * s[0]) += a * *(const double *)(p[1] + i * s[1]);
}
static void copy_loop_f(int64_t n, char **p, const int64_t *s, void *c) {
  (void)c;
  if (s[0] == 4 && s[1] == 4) { /* dense runs: rows of a broadcast bias */
    memcpy(p[0], p[1], (size_t)n * 4);
    return;
  }
  for (int64_t i = 0; i < n; i++)
    *(float *)(p[0] + i * s[0]) = *(const float *)(p[1] + i * s[1]);
}
static void copy_loop_d(int64_t n, char **p, const int64_t *s, void *c) {
  (void)c;
  if (s[0] == 8 && s[1] == 8) {
    memcpy(p[0], p[1], (size_t)n * 8);
    return;
  }
  for (int64_t i = 0; i < n; i++)
    *(double *)(p[0] + i * s[0]) = *(const double *)(p[1] + i * s[1]);
}
static void copy_loop_fd(int64_t n, char **p, const int64_t *s, void *c) {
  (void)c;
  for (int64_t i = 0; i < n; i++)
    *(float *)(p[0] + i * s[0]) = (float)*(const double *)(p[1] + i * s[1]);
}
static void copy_loop_df(int64_t n, char **p, const int64_t *s, void *c) {
  (void)c;
  for (int64_t i = 0; i < n; i++)
    *(double *)(p[0] + i * s[0]) = *(const float *)(p[1] + i * s[1]);
}

/* dst op= src with src broadcast to dst's shape. */
static int inplace2(const char *fn, sc_tensor *dst, sc_tensor *src,
                    sc_loop_fn loop, void *ctx, int mixed_ok) {
  if (!mixed_ok && dst->dtype != src->dtype) {
    sc_set_error("%s: dtypes %s and %s do not match", fn,
                 sc_dtype_name(dst->dtype), sc_dtype_name(src->dtype));
    return -1;
  }
  int nd;
  int64_t shape[SC_MAX_DIMS];
  if (sc_broadcast_shape(fn, dst->ndim, dst->shape, src->ndim, src->shape, &nd,
                         shape))
    return -1;
  if (nd != dst->ndim || memcmp(shape, dst->shape, sizeof(int64_t) * (size_t)nd)) {
    char b1[96], b2[96];
    sc_set_error("%s: shape %s cannot be broadcast to %s", fn,
                 sc_shape_str(src, b1, sizeof b1), sc_shape_str(dst, b2, sizeof b2));
    return -1;
  }
  /* a src sharing dst's storage in another layout (t:copy_(t:t())) would be
     read after parts of it were overwritten: read from a copy instead */
  sc_tensor *tmp = NULL;
  if (src->storage == dst->storage &&
      (src->offset != dst->offset || !sc_same_shape(src, dst) ||
       memcmp(src->stride, dst->stride, sizeof(int64_t) * (size_t)src->ndim))) {
    tmp = sc_empty(src->ndim, src->shape, src->dtype);
    if (!tmp || sc_copy_(tmp, src)) {
      sc_release(tmp);
      return -1;
    }
    src = tmp;
  }
  sc_tensor *es = sc_raw_expand(src, nd, shape);
  sc_release(tmp); /* es holds the storage */
  if (!es) return -1;
  sc_tensor *ops[2] = {dst, es};
  sc_foreach(2, ops, loop, ctx);
  sc_release(es);
  sc_bump(dst);
  return 0;
}

int sc_copy_(sc_tensor *dst, sc_tensor *src) {
  sc_loop_fn f = dst->dtype == src->dtype
                     ? (dst->dtype == SC_FLOAT64 ? copy_loop_d : copy_loop_f)
                     : (dst->dtype == SC_FLOAT64 ? copy_loop_df : copy_loop_fd);
  return inplace2("copy_", dst, src, f, NULL, 1);
}

/* dst += src (sc_add_scaled_ with alpha 1): a plain add, no multiply a
   clone could fuse, so each sum is sc_binary's a + b rounded alike (an add
   commutes bit for bit), in every clone. */
#define ACC_LOOP(T)                                                           \
  SC_DISPATCH static void acc_loop_##T(int64_t n, char **p, const int64_t *s, void *c) { \
    (void)c;                                                                  \
    if (s[0] == sizeof(T) && s[1] == sizeof(T)) {                             \
      T *restrict d = (T *)p[0];                                              \
      const T *restrict b = (const T *)p[1];                                  \
      for (int64_t i = 0; i < n; i++) d[i] = d[i] + b[i];                     \
    } else {                                                                  \
      for (int64_t i = 0; i < n; i++)                                         \
        *(T *)(p[0] + i * s[0]) = *(T *)(p[0] + i * s[0]) + *(const T *)(p[1] + i * s[1]); \
    }                                                                         \
  }
ACC_LOOP(float)
ACC_LOOP(double)

int sc_add_scaled_(sc_tensor *dst, sc_tensor *src, double alpha) {
  int dbl = dst->dtype == SC_FLOAT64;
  if (alpha == 1.0)
    return inplace2("add_", dst, src, dbl ? acc_loop_double : acc_loop_float, NULL, 0);
  return inplace2("add_", dst, src, dbl ? axpy_loop_d : axpy_loop_f, &alpha, 0);
}

static void scale_loop_f(int64_t n, char **p, const int64_t *s, void *c) {
  float a = (float)*(const double *)c;
  for (int64_t i = 0; i < n; i++) *(float *)(p[0] + i * s[0]) *= a;
}
static void scale_loop_d(int64_t n, char **p, const int64_t *s, void *c) {
  double a = *(const double *)c;
  for (int64_t i = 0; i < n; i++) *(double *)(p[0] + i * s[0]) *= a;
}

int sc_mul_scalar_(sc_tensor *t, double v) {
  sc_foreach(1, &t, t->dtype == SC_FLOAT64 ? scale_loop_d : scale_loop_f, &v);
  sc_bump(t);
  return 0;
}

sc_tensor *sc_to_dtype_kernel(sc_tensor *t, sc_dtype dt) {
  sc_tensor *y = sc_empty(t->ndim, t->shape, dt);
  if (y && sc_copy_(y, t)) {
    sc_release(y);
    return NULL;
  }
  return y;
}

/* ---- backward formulas ----------------------------------------------------------- */

/* Small helpers that keep formulas readable; all consume nothing and return
   new references (NULL on error, which propagates through). */
#define U(op, x) ((x) ? sc_unary(op, x) : NULL)
static sc_tensor *B(sc_binary_op op, sc_tensor *a, sc_tensor *b) {
  return a && b ? sc_binary(op, a, b) : NULL;
}
static sc_tensor *BS(sc_binary_op op, sc_tensor *a, double s, int rev) {
  return a ? sc_binary_scalar(op, a, s, rev) : NULL;
}
/* Takes ownership of its argument (for chaining). */
static sc_tensor *own(sc_tensor *keep, sc_tensor *drop) {
  sc_release(drop);
  return keep;
}
/* g reduced to edge i's shape. */
static sc_tensor *to_input(sc_node *n, int i, sc_tensor *g) {
  if (!g) return NULL;
  sc_edge *e = &n->edges[i];
  if (g->ndim == e->ndim &&
      !memcmp(g->shape, e->shape, sizeof(int64_t) * (size_t)e->ndim))
    return g;
  sc_tensor *r = sc_sum_to(g, e->ndim, e->shape);
  sc_release(g);
  return r;
}

/* gin[0] = g * f(saved) for the unary ops whose derivative is one factor. */
static int unary_times(sc_node *n, sc_tensor *g, sc_tensor **gin,
                       sc_tensor *factor) {
  (void)n;
  gin[0] = B(SC_MUL, g, factor);
  sc_release(factor);
  return gin[0] ? 0 : -1;
}

int sc_bw_neg(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)n; (void)need;
  gin[0] = sc_unary(SC_NEG, g);
  return gin[0] ? 0 : -1;
}

int sc_bw_exp(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  return unary_times(n, g, gin, sc_unpack(n, 0));
}

int sc_bw_log(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  sc_tensor *x = sc_unpack(n, 0);
  gin[0] = B(SC_DIV, g, x);
  sc_release(x);
  return gin[0] ? 0 : -1;
}

int sc_bw_sqrt(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need; /* d sqrt(x) = 1 / (2 y) */
  sc_tensor *y = sc_unpack(n, 0);
  sc_tensor *q = B(SC_DIV, g, y);
  sc_release(y);
  gin[0] = own(BS(SC_MUL, q, 0.5, 0), q);
  return gin[0] ? 0 : -1;
}

int sc_bw_abs(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  sc_tensor *x = sc_unpack(n, 0);
  return unary_times(n, g, gin, own(U(SC_SIGN, x), x));
}

int sc_bw_tanh(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need; /* 1 - y^2 */
  sc_tensor *y = sc_unpack(n, 0);
  sc_tensor *y2 = own(U(SC_SQUARE, y), y);
  return unary_times(n, g, gin, own(BS(SC_SUB, y2, 1.0, 1), y2));
}

int sc_bw_sigmoid(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need; /* y (1 - y) */
  sc_tensor *y = sc_unpack(n, 0);
  sc_tensor *one_m = BS(SC_SUB, y, 1.0, 1);
  sc_tensor *f = B(SC_MUL, y, one_m);
  sc_release(y);
  sc_release(one_m);
  return unary_times(n, g, gin, f);
}

int sc_bw_relu(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need; /* g * step(x) in one pass */
  sc_tensor *x = sc_unpack(n, 0);
  gin[0] = x ? sc_leaky_grad(g, x, 0.0) : NULL;
  sc_release(x);
  return gin[0] ? 0 : -1;
}

int sc_bw_silu(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need; /* the fused derivative is an op of its own */
  sc_tensor *x = sc_unpack(n, 0);
  return unary_times(n, g, gin, own(U(SC_SILU_GRAD, x), x));
}

/* g · silu'(x) over contiguous data, one pass; the same expressions as
   silu_grad's kernel and the product's, so the same numbers */
typedef struct {
  const void *g, *x;
  void *y;
} silu_bw_job;

/* y = g silu'(x) over n values; y may be x (group_norm_silu's backward,
   norm.c, works in place on its row buffer) */
#define SILU_BW_ROW(T, SUF, GRAD)                                              \
  SC_DISPATCH void sc_silu_bw_row_##SUF(const T *g, const T *x, T *y, int64_t n) { \
    for (int64_t i = 0; i < n; i++) {                                          \
      T d = GRAD(x[i]);                                                        \
      y[i] = g[i] * d;                                                         \
    }                                                                          \
  }
SILU_BW_ROW(float, f, silu_gradf)
SILU_BW_ROW(double, d, silu_grad)

static void silu_bw_float(void *ctx, int64_t lo, int64_t hi, int tid) {
  (void)tid;
  const silu_bw_job *j = ctx;
  sc_silu_bw_row_f((const float *)j->g + lo, (const float *)j->x + lo, (float *)j->y + lo, hi - lo);
}
static void silu_bw_double(void *ctx, int64_t lo, int64_t hi, int tid) {
  (void)tid;
  const silu_bw_job *j = ctx;
  sc_silu_bw_row_d((const double *)j->g + lo, (const double *)j->x + lo, (double *)j->y + lo,
                   hi - lo);
}

int sc_bw_fused_silu(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  sc_tensor *x = sc_unpack(n, 0);
  if (!x) return -1;
  if (g->dtype != x->dtype || !sc_same_shape(g, x) || !sc_is_contiguous(g) || !sc_is_contiguous(x)) {
    sc_release(x); /* broadcast or strided: the formula's ops handle it */
    return sc_bw_silu(n, g, need, gin);
  }
  gin[0] = sc_empty(x->ndim, x->shape, x->dtype);
  if (gin[0]) {
    silu_bw_job j = {sc_data(g), sc_data(x), sc_data(gin[0])};
    int64_t m = x->numel;
    sc_parallel_for(m >= SC_PAR_GRAIN ? sc_get_num_threads() : 1, m,
                    x->dtype == SC_FLOAT64 ? silu_bw_double : silu_bw_float, &j);
  }
  sc_release(x);
  return gin[0] ? 0 : -1;
}

int sc_bw_softplus(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  sc_tensor *x = sc_unpack(n, 0);
  return unary_times(n, g, gin, own(U(SC_SIGMOID, x), x));
}

int sc_bw_sin(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  sc_tensor *x = sc_unpack(n, 0);
  return unary_times(n, g, gin, own(U(SC_COS, x), x));
}

int sc_bw_cos(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  sc_tensor *x = sc_unpack(n, 0);
  sc_tensor *s = own(U(SC_SIN, x), x);
  return unary_times(n, g, gin, own(U(SC_NEG, s), s));
}

static int zero_grad_like(sc_node *n, sc_tensor **gin) {
  gin[0] = sc_zeros(n->edges[0].ndim, n->edges[0].shape, n->edges[0].dtype);
  return gin[0] ? 0 : -1;
}

int sc_bw_sign(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)g; (void)need;
  return zero_grad_like(n, gin);
}

int sc_bw_step(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)g; (void)need;
  return zero_grad_like(n, gin);
}

int sc_bw_square(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  sc_tensor *x = sc_unpack(n, 0);
  return unary_times(n, g, gin, own(BS(SC_MUL, x, 2.0, 0), x));
}

int sc_bw_rsqrt(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need; /* -y^3 / 2 */
  sc_tensor *y = sc_unpack(n, 0);
  sc_tensor *y3 = own(BS(SC_POW, y, 3.0, 0), y);
  return unary_times(n, g, gin, own(BS(SC_MUL, y3, -0.5, 0), y3));
}

int sc_bw_log1p(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  sc_tensor *x = sc_unpack(n, 0);
  sc_tensor *d = own(BS(SC_ADD, x, 1.0, 0), x);
  gin[0] = B(SC_DIV, g, d);
  sc_release(d);
  return gin[0] ? 0 : -1;
}

int sc_bw_expm1(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  sc_tensor *y = sc_unpack(n, 0);
  return unary_times(n, g, gin, own(BS(SC_ADD, y, 1.0, 0), y));
}

int sc_bw_erfc(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need; /* -2/sqrt(pi) e^(-x^2) */
  sc_tensor *x = sc_unpack(n, 0);
  sc_tensor *x2 = own(U(SC_SQUARE, x), x);
  sc_tensor *m = own(U(SC_NEG, x2), x2);
  sc_tensor *e = own(U(SC_EXP, m), m);
  return unary_times(n, g, gin, own(BS(SC_MUL, e, -M_2_SQRTPI, 0), e));
}

int sc_bw_logsigmoid(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need; /* sigmoid(-x) */
  sc_tensor *x = sc_unpack(n, 0);
  sc_tensor *m = own(U(SC_NEG, x), x);
  return unary_times(n, g, gin, own(U(SC_SIGMOID, m), m));
}

int sc_bw_silu_grad(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need; /* the second derivative is fused too: SiLU nets need it for
                 every double backward (sliced score matching) */
  sc_tensor *x = sc_unpack(n, 0);
  return unary_times(n, g, gin, own(U(SC_SILU_GRAD2, x), x));
}

int sc_bw_silu_grad2(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  /* f2 = u w with u = s(1-s), w = 2 + x(1-2s); du = u(1-2s) and
     dw = (1-2s) - 2xu, so the third derivative is u((1-2s)(w+1) - 2xu) */
  sc_tensor *x = sc_unpack(n, 0);
  sc_tensor *s = U(SC_SIGMOID, x);
  sc_tensor *oms = BS(SC_SUB, s, 1.0, 1);
  sc_tensor *u = B(SC_MUL, s, oms);
  sc_tensor *a = own(BS(SC_MUL, s, -2.0, 0), s); /* -2s */
  a = own(BS(SC_ADD, a, 1.0, 0), a);             /* 1-2s */
  sc_tensor *w1 = B(SC_MUL, x, a);
  w1 = own(BS(SC_ADD, w1, 3.0, 0), w1);          /* w + 1 */
  sc_tensor *t1 = B(SC_MUL, a, w1);
  sc_tensor *xu = B(SC_MUL, x, u);
  sc_tensor *t2 = own(BS(SC_MUL, xu, 2.0, 0), xu);
  sc_tensor *d = B(SC_SUB, t1, t2);
  sc_tensor *f = B(SC_MUL, u, d);
  sc_release(x); sc_release(oms); sc_release(u); sc_release(a);
  sc_release(w1); sc_release(t1); sc_release(t2); sc_release(d);
  return unary_times(n, g, gin, f);
}

int sc_bw_add(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  if (need[0] && !(gin[0] = to_input(n, 0, sc_retain(g)))) return -1;
  if (need[1] && !(gin[1] = to_input(n, 1, sc_retain(g)))) return -1;
  return 0;
}

int sc_bw_sub(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  if (need[0] && !(gin[0] = to_input(n, 0, sc_retain(g)))) return -1;
  if (need[1] && !(gin[1] = to_input(n, 1, sc_unary(SC_NEG, g)))) return -1;
  return 0;
}

int sc_bw_mul(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  sc_tensor *a = sc_unpack(n, 0), *b = a ? sc_unpack(n, 1) : NULL;
  int rc = b ? 0 : -1;
  if (rc == 0 && need[0] && !(gin[0] = to_input(n, 0, B(SC_MUL, g, b)))) rc = -1;
  if (rc == 0 && need[1] && !(gin[1] = to_input(n, 1, B(SC_MUL, g, a)))) rc = -1;
  sc_release(a);
  sc_release(b);
  return rc;
}

int sc_bw_div(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  sc_tensor *a = sc_unpack(n, 0), *b = a ? sc_unpack(n, 1) : NULL;
  int rc = b ? 0 : -1;
  sc_tensor *q = rc == 0 ? B(SC_DIV, g, b) : NULL; /* g / b */
  if (!q) rc = -1;
  if (rc == 0 && need[0] && !(gin[0] = to_input(n, 0, sc_retain(q)))) rc = -1;
  if (rc == 0 && need[1]) { /* -g a / b^2 = -(g/b) (a/b) */
    sc_tensor *ab = B(SC_DIV, a, b);
    sc_tensor *t = own(B(SC_MUL, q, ab), ab);
    if (!(gin[1] = to_input(n, 1, own(U(SC_NEG, t), t)))) rc = -1;
  }
  sc_release(q);
  sc_release(a);
  sc_release(b);
  return rc;
}

int sc_bw_pow(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  sc_tensor *a = sc_unpack(n, 0), *b = a ? sc_unpack(n, 1) : NULL;
  int rc = b ? 0 : -1;
  if (rc == 0 && need[0]) { /* b a^(b-1) */
    sc_tensor *bm1 = BS(SC_SUB, b, 1.0, 0);
    sc_tensor *p = own(B(SC_POW, a, bm1), bm1);
    p = own(B(SC_MUL, p, b), p);
    if (!(gin[0] = to_input(n, 0, own(B(SC_MUL, g, p), p)))) rc = -1;
  }
  if (rc == 0 && need[1]) { /* a^b log a */
    sc_tensor *p = B(SC_POW, a, b);
    sc_tensor *la = U(SC_LOG, a);
    p = own(B(SC_MUL, p, la), p);
    sc_release(la);
    if (!(gin[1] = to_input(n, 1, own(B(SC_MUL, g, p), p)))) rc = -1;
  }
  sc_release(a);
  sc_release(b);
  return rc;
}

/* Mask for max/min of two operands: 1 where `a` wins, 1/2 at ties. */
static sc_tensor *pick_mask(sc_binary_op win, sc_tensor *a, sc_tensor *b) {
  int prev = sc_set_grad_enabled(0);
  sc_tensor *w = binary_kernel(win, a, b);
  sc_tensor *eq = binary_kernel(SC_EQ, a, b);
  sc_tensor *h = eq ? sc_binary_scalar(SC_MUL, eq, 0.5, 0) : NULL;
  sc_tensor *m = w && h ? binary_kernel(SC_ADD, w, h) : NULL;
  sc_release(w); sc_release(eq); sc_release(h);
  sc_set_grad_enabled(prev);
  return m;
}

static int bw_extreme(sc_node *n, sc_tensor *g, const int *need,
                      sc_tensor **gin, sc_binary_op win) {
  sc_tensor *a = sc_unpack(n, 0), *b = a ? sc_unpack(n, 1) : NULL;
  sc_tensor *m = b ? pick_mask(win, a, b) : NULL;
  int rc = m ? 0 : -1;
  if (rc == 0 && need[0] && !(gin[0] = to_input(n, 0, B(SC_MUL, g, m)))) rc = -1;
  if (rc == 0 && need[1]) {
    sc_tensor *om = BS(SC_SUB, m, 1.0, 1);
    if (!(gin[1] = to_input(n, 1, own(B(SC_MUL, g, om), om)))) rc = -1;
  }
  sc_release(a); sc_release(b); sc_release(m);
  return rc;
}

int sc_bw_maximum(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  return bw_extreme(n, g, need, gin, SC_GT);
}

int sc_bw_minimum(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  return bw_extreme(n, g, need, gin, SC_LT);
}

int sc_bw_add_scalar(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)n; (void)need;
  gin[0] = sc_retain(g);
  return 0;
}

int sc_bw_sub_scalar(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  gin[0] = n->p.scalar.reversed ? sc_unary(SC_NEG, g) : sc_retain(g);
  return gin[0] ? 0 : -1;
}

int sc_bw_mul_scalar(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  gin[0] = sc_binary_scalar(SC_MUL, g, n->p.scalar.s, 0);
  return gin[0] ? 0 : -1;
}

int sc_bw_div_scalar(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  if (!n->p.scalar.reversed) {
    gin[0] = sc_binary_scalar(SC_DIV, g, n->p.scalar.s, 0);
    return gin[0] ? 0 : -1;
  }
  /* s / a: -g y / a */
  sc_tensor *a = sc_unpack(n, 0), *y = a ? sc_unpack(n, 1) : NULL;
  sc_tensor *q = B(SC_DIV, y, a);
  sc_tensor *t = own(B(SC_MUL, g, q), q);
  gin[0] = own(U(SC_NEG, t), t);
  sc_release(a);
  sc_release(y);
  return gin[0] ? 0 : -1;
}

int sc_bw_pow_scalar(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  double s = n->p.scalar.s;
  sc_tensor *a = sc_unpack(n, 0);
  if (!a) return -1;
  sc_tensor *f;
  if (!n->p.scalar.reversed) { /* a^s: s a^(s-1) */
    sc_tensor *p = s == 2.0 ? sc_retain(a) : sc_binary_scalar(SC_POW, a, s - 1, 0);
    f = own(BS(SC_MUL, p, s, 0), p);
  } else { /* s^a: y log s */
    sc_tensor *y = sc_unpack(n, 1);
    f = own(BS(SC_MUL, y, log(s), 0), y);
  }
  sc_release(a);
  return unary_times(n, g, gin, f);
}

static int bw_extreme_scalar(sc_node *n, sc_tensor *g, sc_tensor **gin,
                             sc_binary_op win) {
  sc_tensor *a = sc_unpack(n, 0);
  if (!a) return -1;
  int prev = sc_set_grad_enabled(0);
  sc_tensor *w = sc_binary_scalar(win, a, n->p.scalar.s, 0);
  sc_tensor *eq = sc_binary_scalar(SC_EQ, a, n->p.scalar.s, 0);
  sc_tensor *h = eq ? sc_binary_scalar(SC_MUL, eq, 0.5, 0) : NULL;
  sc_tensor *m = w && h ? binary_kernel(SC_ADD, w, h) : NULL;
  sc_set_grad_enabled(prev);
  sc_release(w); sc_release(eq); sc_release(h); sc_release(a);
  return unary_times(n, g, gin, m);
}

int sc_bw_maximum_scalar(sc_node *n, sc_tensor *g, const int *need,
                         sc_tensor **gin) {
  (void)need;
  return bw_extreme_scalar(n, g, gin, SC_GT);
}

int sc_bw_minimum_scalar(sc_node *n, sc_tensor *g, const int *need,
                         sc_tensor **gin) {
  (void)need;
  return bw_extreme_scalar(n, g, gin, SC_LT);
}

int sc_bw_where(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  sc_tensor *c = sc_unpack(n, 0); /* broadcast condition, constant */
  if (!c) return -1;
  int prev = sc_set_grad_enabled(0);
  sc_tensor *m = sc_binary_scalar(SC_NE, c, 0.0, 0);
  sc_set_grad_enabled(prev);
  sc_release(c);
  int rc = m ? 0 : -1;
  if (rc == 0 && need[1] && !(gin[1] = to_input(n, 1, B(SC_MUL, g, m)))) rc = -1;
  if (rc == 0 && need[2]) {
    sc_tensor *om = BS(SC_SUB, m, 1.0, 1);
    if (!(gin[2] = to_input(n, 2, own(B(SC_MUL, g, om), om)))) rc = -1;
  }
  sc_release(m);
  return rc;
}

int sc_bw_clamp(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  sc_tensor *x = sc_unpack(n, 0);
  if (!x) return -1;
  int prev = sc_set_grad_enabled(0);
  sc_tensor *lo = sc_binary_scalar(SC_GE, x, n->p.clamp.lo, 0);
  sc_tensor *hi = sc_binary_scalar(SC_LE, x, n->p.clamp.hi, 0);
  sc_tensor *m = lo && hi ? binary_kernel(SC_MUL, lo, hi) : NULL;
  sc_set_grad_enabled(prev);
  sc_release(lo); sc_release(hi); sc_release(x);
  return unary_times(n, g, gin, m);
}

/* d leaky_relu = leaky_grad(g, x); leaky_grad is linear in g with the same
   factor, and its factor's derivative in x is zero (almost everywhere). */
int sc_bw_leaky_relu(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  sc_tensor *x = sc_unpack(n, 0);
  gin[0] = x ? sc_leaky_grad(g, x, n->p.leaky.slope) : NULL;
  sc_release(x);
  return gin[0] ? 0 : -1;
}

int sc_bw_leaky_grad(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  return sc_bw_leaky_relu(n, g, need, gin);
}

/* ---- SiLU in place over rows of a fresh matrix ------------------------------------- */

/* y = silu(y) over n values just written (so still in cache): the
   epilogue of the fused inference linear + SiLU (matmul.c, by rows r0 <= i
   < r1 of a contiguous [n, m] y) and of group_norm_silu (norm.c, by norm
   rows). */
SC_DISPATCH void sc_silu_row_f(float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = vsiluf(y[i]);
}
SC_DISPATCH void sc_silu_row_d(double *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = vsilu(y[i]);
}

void sc_silu_rows_(sc_tensor *y, int64_t r0, int64_t r1) {
  int64_t m = y->shape[1];
  if (y->dtype == SC_FLOAT32)
    sc_silu_row_f((float *)sc_data(y) + r0 * m, (r1 - r0) * m);
  else
    sc_silu_row_d((double *)sc_data(y) + r0 * m, (r1 - r0) * m);
}
