/*
 * scorch core: normalisation kernels.
 *
 * group_norm and layer_norm normalise contiguous rows of a contiguous
 * input: one row is one (sample, group) block of Cg channels x S positions
 * for group norm, one sample's trailing dims for layer norm.  Statistics
 * take two passes in double (the mean, then the mean squared deviation),
 * so a float32 input far from zero keeps its digits.  Rows go to threads
 * whole and every sum across rows (the weight and bias gradients) is taken
 * in a fixed order, so results do not depend on the thread count.
 *
 * softmax and log_softmax work along one dim of any layout.
 *
 * Backward: each op has two, sc_bw_fused_NAME (kernels giving all the
 * gradients in one or two passes) and sc_bw_NAME (the same formulas in
 * differentiable ops); the engine takes the fused one when no graph is
 * being built (ops.def, autograd.c).
 */
#include "autograd.h"
#include "internal.h"
#include "vmath.h"

#include <math.h>
#include "pool.h"
#include <stdlib.h>
#include <string.h>

/* (a0 + a1) + ... in a fixed order: the eight lanes of a vectorised sum */
static double fold8(const double *a) {
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* 16 partial sums (two vectors of 8 doubles) folded lane by lane, then
   as fold8 */
static double fold16(const double *a) {
  double b[8];
  for (int j = 0; j < 8; j++) b[j] = a[j] + a[8 + j];
  return fold8(b);
}

/* A tensor's data as contiguous memory: retains t or makes a copy. */
static sc_tensor *dense(sc_tensor *t) { return t ? sc_contiguous(t) : NULL; }

/* ---- kernels ------------------------------------------------------------------ */
/*
 * Per row: st = {mean, rstd}, rstd = 1/sqrt(var + eps), var the biased
 * variance.  Centred values are computed as (x - mh) - ml with mh + ml the
 * mean split into its nearest T and the rest: for float32 the first
 * difference is exact near the mean, so x - mean keeps full precision even
 * when the mean is large (for float64, ml is 0).
 */
#define NORM_KERNELS(T)                                                       \
  SC_DISPATCH static void stats_##T(const T *x, int64_t n, double eps,        \
                                    double *st) {                             \
    double a[16] = {0};                                                       \
    int64_t i = 0;                                                            \
    for (; i + 16 <= n; i += 16)                                              \
      for (int j = 0; j < 16; j++) a[j] += x[i + j];                          \
    double s = fold16(a);                                                     \
    for (; i < n; i++) s += x[i];                                             \
    double mean = s / (double)n;                                              \
    double q[16] = {0};                                                       \
    for (i = 0; i + 16 <= n; i += 16)                                         \
      for (int j = 0; j < 16; j++) {                                          \
        double d = (double)x[i + j] - mean;                                   \
        q[j] += d * d;                                                        \
      }                                                                       \
    double v = fold16(q);                                                     \
    for (; i < n; i++) v += ((double)x[i] - mean) * ((double)x[i] - mean);    \
    st[0] = mean;                                                             \
    st[1] = 1.0 / sqrt(v / (double)n + eps);                                  \
  }                                                                           \
                                                                              \
  /* y = (x - mean) rstd w[k] + b[k] over Cg channels of S values */          \
  SC_DISPATCH static void gn_row_##T(const T *x, T *y, int64_t Cg, int64_t S, \
                                     const double *st, const T *w,            \
                                     const T *b) {                            \
    T mh = (T)st[0], ml = (T)(st[0] - (double)mh);                            \
    for (int64_t k = 0; k < Cg; k++) {                                        \
      T a = (T)(st[1] * (w ? (double)w[k] : 1.0)), c = b ? b[k] : (T)0;       \
      const T *xp = x + k * S;                                                \
      T *yp = y + k * S;                                                      \
      for (int64_t s = 0; s < S; s++) yp[s] = ((xp[s] - mh) - ml) * a + c;    \
    }                                                                         \
  }                                                                           \
                                                                              \
  /* One row of the backward.  With xhat = (x - mean) rstd, g' = g w[k]:    \
     P[k] = sum g xhat, Q[k] = sum g over channel k (the weight and bias     \
     gradients of this sample), and if dx is wanted                          \
     dx = rstd (g' - mean(g') - xhat mean(g' xhat)). */                      \
  SC_DISPATCH static void gn_row_bw_##T(const T *x, const T *g, T *dx,        \
                                        int64_t Cg, int64_t S,                \
                                        const double *st, const T *w,         \
                                        double *P, double *Q) {               \
    T mh = (T)st[0], ml = (T)(st[0] - (double)mh);                            \
    double r = st[1], A = 0, B = 0;                                           \
    for (int64_t k = 0; k < Cg; k++) {                                        \
      const T *xp = x + k * S, *gp = g + k * S;                               \
      double a[16] = {0}, c[16] = {0};                                        \
      int64_t s = 0;                                                          \
      for (; s + 16 <= S; s += 16)                                            \
        for (int j = 0; j < 16; j++) {                                        \
          a[j] += gp[s + j];                                                  \
          c[j] += (double)gp[s + j] * (double)((xp[s + j] - mh) - ml);        \
        }                                                                     \
      double sg = fold16(a), sgd = fold16(c);                                 \
      for (; s < S; s++) {                                                    \
        sg += gp[s];                                                          \
        sgd += (double)gp[s] * (double)((xp[s] - mh) - ml);                   \
      }                                                                       \
      double wk = w ? (double)w[k] : 1.0;                                     \
      P[k] = sgd * r;                                                         \
      Q[k] = sg;                                                              \
      A += wk * sg;                                                           \
      B += wk * sgd * r;                                                      \
    }                                                                         \
    if (!dx) return;                                                          \
    double M = (double)(Cg * S);                                              \
    A /= M;                                                                   \
    B /= M;                                                                   \
    T k2 = (T)(-r * r * B), k3 = (T)(-r * A);                                 \
    for (int64_t k = 0; k < Cg; k++) {                                        \
      T k1 = (T)(r * (w ? (double)w[k] : 1.0));                               \
      const T *xp = x + k * S, *gp = g + k * S;                               \
      T *dp = dx + k * S;                                                     \
      for (int64_t s = 0; s < S; s++)                                         \
        dp[s] = gp[s] * k1 + ((xp[s] - mh) - ml) * k2 + k3;                   \
    }                                                                         \
  }
NORM_KERNELS(float)
NORM_KERNELS(double)

/* One row of group_norm_silu's backward: the norm's output u made again in
   the thread's row buffer, the gradient there g silu'(u), then the group
   norm's own row backward on it. */
#define GNS_ROW_BW(T, SUF)                                                     \
  static void gns_row_bw_##T(const T *x, const T *g, T *u, T *dx, int64_t Cg,  \
                             int64_t S, const double *st, const T *w,          \
                             const T *b, double *P, double *Q) {               \
    gn_row_##T(x, u, Cg, S, st, w, b);                                         \
    sc_silu_bw_row_##SUF(g, u, u, Cg * S);                                     \
    gn_row_bw_##T(x, u, dx, Cg, S, st, w, P, Q);                               \
  }
GNS_ROW_BW(float, f)
GNS_ROW_BW(double, d)

/* Layer norm rows: the affine parameters are full rows (w and b of M
   values; ones and zeros stand in for absent ones). */
#define LAYER_KERNELS(T)                                                      \
  SC_DISPATCH static void ln_row_##T(const T *x, T *y, int64_t M,             \
                                     const double *st, const T *w,            \
                                     const T *b) {                            \
    T mh = (T)st[0], ml = (T)(st[0] - (double)mh), r = (T)st[1];              \
    for (int64_t j = 0; j < M; j++) y[j] = ((x[j] - mh) - ml) * r * w[j] + b[j]; \
  }                                                                           \
                                                                              \
  /* dx = rstd (g' - mean(g') - xhat mean(g' xhat)), g' = g w */             \
  SC_DISPATCH static void ln_row_bw_##T(const T *x, const T *g, T *dx,        \
                                        int64_t M, const double *st,          \
                                        const T *w) {                         \
    T mh = (T)st[0], ml = (T)(st[0] - (double)mh);                            \
    double r = st[1];                                                         \
    double a[8] = {0, 0, 0, 0, 0, 0, 0, 0}, c[8] = {0, 0, 0, 0, 0, 0, 0, 0};   \
    int64_t j = 0;                                                            \
    for (; j + 8 <= M; j += 8)                                                \
      for (int k = 0; k < 8; k++) {                                           \
        double gw = (double)g[j + k] * (double)w[j + k];                      \
        a[k] += gw;                                                           \
        c[k] += gw * (double)((x[j + k] - mh) - ml);                          \
      }                                                                       \
    double A = fold8(a), B = fold8(c);                                        \
    for (; j < M; j++) {                                                      \
      double gw = (double)g[j] * (double)w[j];                                \
      A += gw;                                                                \
      B += gw * (double)((x[j] - mh) - ml);                                   \
    }                                                                         \
    A /= (double)M;                                                           \
    B *= r / (double)M;                                                       \
    T k1 = (T)r, k2 = (T)(-r * r * B), k3 = (T)(-r * A);                      \
    for (j = 0; j < M; j++)                                                   \
      dx[j] = g[j] * w[j] * k1 + ((x[j] - mh) - ml) * k2 + k3;                \
  }                                                                           \
                                                                              \
  /* Column sums over rows [r0, r1), columns [j0, j1): pw += g xhat,         \
     pb += g (pw, pb indexed by column) */                                    \
  SC_DISPATCH static void ln_cols_##T(const T *x, const T *g, int64_t M,      \
                                      int64_t r0, int64_t r1, int64_t j0,     \
                                      int64_t j1, const double *st,           \
                                      double *pw, double *pb) {               \
    for (int64_t r = r0; r < r1; r++) {                                       \
      T mh = (T)st[2 * r], ml = (T)(st[2 * r] - (double)mh);                  \
      double rs = st[2 * r + 1];                                              \
      const T *xr = x + r * M, *gr = g + r * M;                               \
      for (int64_t j = j0; j < j1; j++) {                                     \
        pw[j] += (double)gr[j] * (double)((xr[j] - mh) - ml) * rs;            \
        pb[j] += gr[j];                                                       \
      }                                                                       \
    }                                                                         \
  }
LAYER_KERNELS(float)
LAYER_KERNELS(double)

/* Softmax along a dim of K values.  A row is contiguous when the dim is the
   last (inner = 1, the *_row kernels); otherwise a tile of up to SM_TILE
   neighbouring columns is done together, stepping by `inner`.  The max is
   subtracted first; an infinite max is replaced by 0 as logsumexp does,
   so an all -inf row gives NaN and a +inf entry NaN in its row. */
#define SM_TILE 64
#define VEXP_float sc_vexpf
#define VEXP_double exp
#define SOFTMAX_KERNELS(T)                                                    \
  static T row_max_##T(const T *x, int64_t K) {                               \
    T m8[8];                                                                  \
    for (int j = 0; j < 8; j++) m8[j] = -(T)INFINITY;                         \
    int64_t k = 0;                                                            \
    for (; k + 8 <= K; k += 8)                                                \
      for (int j = 0; j < 8; j++) m8[j] = x[k + j] > m8[j] ? x[k + j] : m8[j]; \
    T m = m8[0];                                                              \
    for (int j = 1; j < 8; j++) m = m8[j] > m ? m8[j] : m;                    \
    for (; k < K; k++) m = x[k] > m ? x[k] : m;                               \
    return isinf(m) ? (T)0 : m;                                               \
  }                                                                           \
                                                                              \
  SC_DISPATCH static void sm_row_##T(const T *x, T *y, int64_t K, int lg) {   \
    T m = row_max_##T(x, K);                                                  \
    double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                   \
    int64_t k = 0;                                                            \
    if (lg)                                                                   \
      for (; k + 8 <= K; k += 8)                                              \
        for (int j = 0; j < 8; j++) a[j] += VEXP_##T(x[k + j] - m);           \
    else                                                                      \
      for (; k + 8 <= K; k += 8)                                              \
        for (int j = 0; j < 8; j++) a[j] += y[k + j] = VEXP_##T(x[k + j] - m); \
    double s = fold8(a);                                                      \
    for (; k < K; k++) {                                                      \
      T e = VEXP_##T(x[k] - m);                                               \
      if (!lg) y[k] = e;                                                      \
      s += e;                                                                 \
    }                                                                         \
    if (lg) {                                                                 \
      T ls = (T)log(s);                                                       \
      for (k = 0; k < K; k++) y[k] = (x[k] - m) - ls;                         \
    } else {                                                                  \
      T inv = (T)(1.0 / s);                                                   \
      for (k = 0; k < K; k++) y[k] *= inv;                                    \
    }                                                                         \
  }                                                                           \
                                                                              \
  SC_DISPATCH static void sm_cols_##T(const T *x, T *y, int64_t K,            \
                                      int64_t inner, int64_t wd, int lg) {    \
    T m[SM_TILE], c[SM_TILE];                                                 \
    double s[SM_TILE];                                                        \
    for (int64_t i = 0; i < wd; i++) {                                        \
      m[i] = -(T)INFINITY;                                                    \
      s[i] = 0;                                                               \
    }                                                                         \
    for (int64_t k = 0; k < K; k++)                                           \
      for (int64_t i = 0; i < wd; i++) {                                      \
        T v = x[k * inner + i];                                               \
        m[i] = v > m[i] ? v : m[i];                                           \
      }                                                                       \
    for (int64_t i = 0; i < wd; i++) m[i] = isinf(m[i]) ? (T)0 : m[i];         \
    for (int64_t k = 0; k < K; k++)                                           \
      for (int64_t i = 0; i < wd; i++) {                                      \
        T e = VEXP_##T(x[k * inner + i] - m[i]);                              \
        if (!lg) y[k * inner + i] = e;                                        \
        s[i] += e;                                                            \
      }                                                                       \
    for (int64_t i = 0; i < wd; i++) c[i] = lg ? (T)log(s[i]) : (T)(1.0 / s[i]); \
    for (int64_t k = 0; k < K; k++)                                           \
      for (int64_t i = 0; i < wd; i++) {                                      \
        int64_t e = k * inner + i;                                            \
        y[e] = lg ? (x[e] - m[i]) - c[i] : y[e] * c[i];                       \
      }                                                                       \
  }                                                                           \
                                                                              \
  /* softmax: gx = y (g - sum g y); log_softmax: gx = g - exp(y) sum g */    \
  SC_DISPATCH static void sm_row_bw_##T(const T *y, const T *g, T *gx,        \
                                        int64_t K, int lg) {                  \
    double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                   \
    int64_t k = 0;                                                            \
    if (lg)                                                                   \
      for (; k + 8 <= K; k += 8)                                              \
        for (int j = 0; j < 8; j++) a[j] += g[k + j];                         \
    else                                                                      \
      for (; k + 8 <= K; k += 8)                                              \
        for (int j = 0; j < 8; j++) a[j] += (double)g[k + j] * (double)y[k + j]; \
    double s = fold8(a);                                                      \
    for (; k < K; k++) s += lg ? (double)g[k] : (double)g[k] * (double)y[k];  \
    T st = (T)s;                                                              \
    if (lg)                                                                   \
      for (k = 0; k < K; k++) gx[k] = g[k] - VEXP_##T(y[k]) * st;             \
    else                                                                      \
      for (k = 0; k < K; k++) gx[k] = y[k] * (g[k] - st);                     \
  }                                                                           \
                                                                              \
  SC_DISPATCH static void sm_cols_bw_##T(const T *y, const T *g, T *gx,       \
                                         int64_t K, int64_t inner,            \
                                         int64_t wd, int lg) {                \
    double s[SM_TILE];                                                        \
    T st[SM_TILE];                                                            \
    for (int64_t i = 0; i < wd; i++) s[i] = 0;                                \
    for (int64_t k = 0; k < K; k++)                                           \
      for (int64_t i = 0; i < wd; i++) {                                      \
        int64_t e = k * inner + i;                                            \
        s[i] += lg ? (double)g[e] : (double)g[e] * (double)y[e];              \
      }                                                                       \
    for (int64_t i = 0; i < wd; i++) st[i] = (T)s[i];                         \
    for (int64_t k = 0; k < K; k++)                                           \
      for (int64_t i = 0; i < wd; i++) {                                      \
        int64_t e = k * inner + i;                                            \
        gx[e] = lg ? g[e] - VEXP_##T(y[e]) * st[i] : y[e] * (g[e] - st[i]);   \
      }                                                                       \
  }
SOFTMAX_KERNELS(float)
SOFTMAX_KERNELS(double)

/* ---- group norm ------------------------------------------------------------------ */
/* Group norm (Wu & He 2018): y = (x - mu_ng) / sqrt(var_ng + eps) w[c] + b[c],
   mu and var over the channels of group g and all positions of sample n. */

typedef struct {
  int64_t N, C, G, Cg, S; /* x is [N, C, S...]; G groups of Cg channels */
} gn_dims;

/* The forward's node for group and layer norm: inputs x, w, b; saved x,
   the per-row statistics st and w; k (groups or trailing dims) and eps.
   With save_b (group_norm_silu), b is saved after w and norm.affine says
   which of the two are there.  Takes y and st (either may be NULL after a
   failure) and returns y or NULL. */
static sc_tensor *norm_record(int op, sc_tensor *y, sc_tensor *st, sc_tensor *x,
                              sc_tensor *w, sc_tensor *b, int64_t k, double eps,
                              int save_b) {
  if (!st) {
    sc_release(y);
    return NULL;
  }
  sc_tensor *in[3] = {x, w, b};
  sc_node *n;
  int rc = sc_record(op, y, 3, in, &n);
  if (rc == 0 && n) {
    rc = sc_save(n, x, 0) || sc_save(n, st, 0) || (w && sc_save(n, w, 0)) ||
         (save_b && b && sc_save(n, b, 0));
    n->p.norm.k = k;
    n->p.norm.eps = eps;
    n->p.norm.affine = (w ? 1 : 0) | (save_b && b ? 2 : 0);
  }
  sc_release(st);
  if (rc) {
    sc_release(y);
    return NULL;
  }
  return y;
}

static void gn_dims_of(const sc_tensor *x, int64_t groups, gn_dims *d) {
  d->N = x->shape[0];
  d->C = x->shape[1];
  d->G = groups;
  d->Cg = d->C / groups;
  d->S = sc_prod(x->shape, 2, x->ndim);
}

/* An optional affine tensor: NULL, or of the given shape and x's dtype. */
static int check_affine(const char *fn, const char *name, const sc_tensor *v,
                        const sc_tensor *x, int ndim, const int64_t *shape) {
  if (!v) return 0;
  char b1[96], b2[96];
  if (v->ndim != ndim || memcmp(v->shape, shape, sizeof(int64_t) * (size_t)ndim)) {
    sc_set_error("%s: %s must have shape %s, got %s", fn, name,
                 sc_dims_str(ndim, shape, b1, sizeof b1),
                 sc_shape_str(v, b2, sizeof b2));
    return -1;
  }
  if (v->dtype != x->dtype) {
    sc_set_error("%s: %s is %s but the input is %s", fn, name,
                 sc_dtype_name(v->dtype), sc_dtype_name(x->dtype));
    return -1;
  }
  return 0;
}

static int check_eps(const char *fn, double eps) {
  if (eps >= 0) return 0;
  sc_set_error("%s: eps must be a number >= 0, got %g", fn, eps);
  return -1;
}

/* What the row loops below share (each uses some of the fields). */
typedef struct {
  const void *x, *g, *w, *b;
  void *y;
  double *st, *P, *Q;
  const double *sp;
  const gn_dims *gd;
  int64_t M, R, ncb, K, inner, nb;
  double eps;
  size_t es;
  int dbl, lg;
  int act;       /* group_norm_silu: SiLU after the norm */
  void *scratch; /* its backward: one row of M values per thread, ustride bytes apart */
  size_t ustride;
} norm_job;

static void gn_forward_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  (void)tid;
  const norm_job *j = ctx;
  const gn_dims *d = j->gd;
  int64_t M = j->M;
  const void *xp = j->x, *wp = j->w, *bp = j->b;
  void *yp = j->y;
  double *st = j->st;
  for (int64_t r = lo; r < hi; r++) {
    int64_t c0 = (r % d->G) * d->Cg; /* first channel of the group */
    if (j->dbl) {
      const double *wr = wp ? (const double *)wp + c0 : NULL, *br = bp ? (const double *)bp + c0 : NULL;
      stats_double((const double *)xp + r * M, M, j->eps, st + 2 * r);
      gn_row_double((const double *)xp + r * M, (double *)yp + r * M, d->Cg, d->S, st + 2 * r, wr, br);
      if (j->act) sc_silu_row_d((double *)yp + r * M, M);
    } else {
      const float *wr = wp ? (const float *)wp + c0 : NULL, *br = bp ? (const float *)bp + c0 : NULL;
      stats_float((const float *)xp + r * M, M, j->eps, st + 2 * r);
      gn_row_float((const float *)xp + r * M, (float *)yp + r * M, d->Cg, d->S, st + 2 * r, wr, br);
      if (j->act) sc_silu_row_f((float *)yp + r * M, M);
    }
  }
}

static void gn_backward_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  const norm_job *j = ctx;
  const gn_dims *d = j->gd;
  int64_t M = j->M;
  const void *xp = j->x, *gp = j->g, *wp = j->w;
  void *dp = j->y;
  const double *sp = j->sp;
  double *P = j->P, *Q = j->Q;
  void *u = j->scratch ? (char *)j->scratch + (size_t)tid * j->ustride : NULL;
  for (int64_t r = lo; r < hi; r++) {
    int64_t c0 = (r % d->G) * d->Cg, pc = (r / d->G) * d->C + c0;
    if (j->act && j->dbl)
      gns_row_bw_double((const double *)xp + r * M, (const double *)gp + r * M,
                        (double *)u, dp ? (double *)dp + r * M : NULL, d->Cg,
                        d->S, sp + 2 * r, wp ? (const double *)wp + c0 : NULL,
                        j->b ? (const double *)j->b + c0 : NULL, P + pc, Q + pc);
    else if (j->act)
      gns_row_bw_float((const float *)xp + r * M, (const float *)gp + r * M,
                       (float *)u, dp ? (float *)dp + r * M : NULL, d->Cg,
                       d->S, sp + 2 * r, wp ? (const float *)wp + c0 : NULL,
                       j->b ? (const float *)j->b + c0 : NULL, P + pc, Q + pc);
    else if (j->dbl)
      gn_row_bw_double((const double *)xp + r * M, (const double *)gp + r * M,
                       dp ? (double *)dp + r * M : NULL, d->Cg, d->S, sp + 2 * r,
                       wp ? (const double *)wp + c0 : NULL, P + pc, Q + pc);
    else
      gn_row_bw_float((const float *)xp + r * M, (const float *)gp + r * M,
                      dp ? (float *)dp + r * M : NULL, d->Cg, d->S, sp + 2 * r,
                      wp ? (const float *)wp + c0 : NULL, P + pc, Q + pc);
  }
}

/* y and the per-row statistics st (2 doubles a row) of contiguous x; with
   act, y = silu(the norm's output). */
static void gn_forward(const gn_dims *d, const sc_tensor *x, sc_tensor *y,
                       const sc_tensor *w, const sc_tensor *b, double eps,
                       double *st, int act) {
  int64_t rows = d->N * d->G, M = d->Cg * d->S;
  int nt = sc_get_num_threads();
  int dbl = x->dtype == SC_FLOAT64;
  const void *xp = sc_data(x), *wp = w ? sc_data(w) : NULL, *bp = b ? sc_data(b) : NULL;
  void *yp = sc_data(y);
  norm_job j = {.x = xp, .w = wp, .b = bp, .y = yp, .st = st, .gd = d, .M = M, .eps = eps,
                .dbl = dbl, .act = act};
  sc_parallel_for(rows * M >= SC_PAR_GRAIN ? nt : 1, rows, gn_forward_part, &j);
}

/* group_norm (act 0) and group_norm_silu (act 1). */
static sc_tensor *group_norm_op(sc_tensor *x, int64_t groups, sc_tensor *w,
                                sc_tensor *b, double eps, int act) {
  const char *fn = act ? "group_norm_silu_core" : "group_norm_core";
  char buf[96];
  if (x->ndim < 2) {
    sc_set_error("%s: input must be [N, C, ...], got shape %s", fn,
                 sc_shape_str(x, buf, sizeof buf));
    return NULL;
  }
  if (groups < 1 || x->shape[1] % groups) {
    sc_set_error("%s: %lld channels of input %s are not divisible into %lld "
                 "groups", fn, (long long)x->shape[1],
                 sc_shape_str(x, buf, sizeof buf), (long long)groups);
    return NULL;
  }
  if (check_affine(fn, "weight", w, x, 1, x->shape + 1) ||
      check_affine(fn, "bias", b, x, 1, x->shape + 1) || check_eps(fn, eps))
    return NULL;
  gn_dims d;
  gn_dims_of(x, groups, &d);
  int64_t ss[1] = {2 * d.N * d.G};
  sc_tensor *xc = dense(x), *wc = xc ? dense(w) : NULL, *bc = xc ? dense(b) : NULL;
  sc_tensor *y = xc && (wc || !w) && (bc || !b) ? sc_empty(x->ndim, x->shape, x->dtype) : NULL;
  sc_tensor *st = y ? sc_empty(1, ss, SC_FLOAT64) : NULL;
  if (st) gn_forward(&d, xc, y, wc, bc, eps, sc_data(st), act);
  sc_release(xc);
  sc_release(wc);
  sc_release(bc);
  /* group_norm_silu also saves b, to make the norm's output again */
  return norm_record(act ? SC_OP_group_norm_silu : SC_OP_group_norm, y, st, x, w, b, groups,
                     eps, act);
}

sc_tensor *sc_group_norm(sc_tensor *x, int64_t groups, sc_tensor *w,
                         sc_tensor *b, double eps) {
  return group_norm_op(x, groups, w, b, eps, 0);
}

sc_tensor *sc_group_norm_silu(sc_tensor *x, int64_t groups, sc_tensor *w,
                              sc_tensor *b, double eps) {
  return group_norm_op(x, groups, w, b, eps, 1);
}

/* The fused backward: dx (if need[0]) and the [N, C] partial sums
   P = sum g xhat, Q = sum g per sample, folded over samples in order.
   With b_act (group_norm_silu: *b_act is b or NULL), g is the gradient at
   silu's output and each row of the norm's output is made again first. */
static int gn_backward_fused(const gn_dims *d, sc_tensor *x, sc_tensor *w,
                             sc_tensor *st, sc_tensor *g, const int *need,
                             sc_tensor **gin, sc_tensor *const *b_act) {
  sc_tensor *xc = sc_contiguous(x), *gc = xc ? sc_contiguous(g) : NULL;
  sc_tensor *wc = gc ? dense(w) : NULL;
  sc_tensor *bc = wc || !w ? (b_act ? dense(*b_act) : NULL) : NULL;
  int ok = gc && (wc || !w) && (!b_act || bc || !*b_act);
  sc_tensor *dx = ok && need[0] ? sc_empty(x->ndim, x->shape, x->dtype) : NULL;
  int64_t rows = d->N * d->G, M = d->Cg * d->S;
  int nt = rows * M >= SC_PAR_GRAIN ? sc_get_num_threads() : 1;
  size_t nb = sizeof(double) * (size_t)(2 * d->N * d->C);
  size_t ustride = sc_thread_stride((size_t)M * sc_dtype_size(x->dtype), nt);
  size_t sb = b_act ? ustride * (size_t)nt : 0;
  double *P = ok && (dx || !need[0]) ? sc_aligned_alloc(nb ? nb : 1) : NULL;
  void *U = P && sb ? sc_aligned_alloc(sb) : NULL;
  if (!P || (sb && !U)) {
    sc_aligned_free(P, nb ? nb : 1);
    sc_release(xc); sc_release(gc); sc_release(wc); sc_release(bc); sc_release(dx);
    return -1;
  }
  double *Q = P + d->N * d->C;
  int dbl = x->dtype == SC_FLOAT64;
  const double *sp = sc_data(st);
  const void *xp = sc_data(xc), *gp = sc_data(gc), *wp = wc ? sc_data(wc) : NULL;
  void *dp = dx ? sc_data(dx) : NULL;
  norm_job j = {.x = xp, .g = gp, .w = wp, .b = bc ? sc_data(bc) : NULL, .y = dp, .sp = sp,
                .P = P, .Q = Q, .gd = d, .M = M, .dbl = dbl, .act = b_act != NULL, .scratch = U,
                .ustride = ustride};
  sc_parallel_for(nt, rows, gn_backward_part, &j);
  int rc = 0;
  gin[0] = dx;
  for (int k = 1; k <= 2 && rc == 0; k++) {
    if (!need[k]) continue;
    const double *src = k == 1 ? P : Q;
    double *sum = calloc((size_t)(d->C ? d->C : 1), sizeof *sum);
    if (sum) {
      for (int64_t nn = 0; nn < d->N; nn++)
        for (int64_t c = 0; c < d->C; c++) sum[c] += src[nn * d->C + c];
      gin[k] = sc_from_doubles(1, &d->C, sum, x->dtype);
      free(sum);
    } else {
      sc_set_error("group_norm_core: out of memory in backward");
    }
    if (!gin[k]) rc = -1;
  }
  sc_aligned_free(P, nb ? nb : 1);
  if (U) sc_aligned_free(U, sb);
  sc_release(xc); sc_release(gc); sc_release(wc); sc_release(bc);
  return rc;
}

/* The normalisation's input gradient in differentiable ops, on a view xv
   of x whose dims `red` are the normalised ones: xhat the normalised
   input, gw the output gradient times the weight, both of xv's shape;
   dx = rstd (gw - mean(gw) - xhat mean(gw xhat)).  NULL + error on failure. */
static sc_tensor *norm_dx_graph(sc_tensor *xv, sc_tensor *xhat, sc_tensor *gw, int nred,
                                const int *red, double eps) {
  sc_tensor *t[10] = {0}, *dx = NULL;
  if ((t[0] = sc_var(xv, nred, red, 1, 0)) &&
      (t[1] = sc_binary_scalar(SC_ADD, t[0], eps, 0)) &&
      (t[2] = sc_unary(SC_RSQRT, t[1])) &&
      (t[3] = sc_mean(gw, nred, red, 1)) &&
      (t[4] = sc_binary(SC_MUL, gw, xhat)) &&
      (t[5] = sc_mean(t[4], nred, red, 1)) &&
      (t[6] = sc_binary(SC_SUB, gw, t[3])) &&
      (t[7] = sc_binary(SC_MUL, xhat, t[5])) &&
      (t[8] = sc_binary(SC_SUB, t[6], t[7])))
    dx = sc_binary(SC_MUL, t[8], t[2]);
  for (int k = 0; k < 10; k++) sc_release(t[k]);
  return dx;
}

/* The same formulas in differentiable ops, on the [N, G, Cg, S] view:
   xhat comes from group_norm itself, rstd from the variance of x. */
static int gn_backward_graph(const gn_dims *d, sc_node *n, sc_tensor *x,
                             sc_tensor *w, sc_tensor *g, const int *need,
                             sc_tensor **gin) {
  const int64_t s4[4] = {d->N, d->G, d->Cg, d->S}, sw[4] = {1, d->G, d->Cg, 1};
  const int inner[2] = {2, 3}, outer[2] = {0, 3};
  double eps = n->p.norm.eps;
  sc_tensor *t[6] = {0};
  int rc = -1;
  /* t[0] xhat, t[1] g4, t[2] w4, t[3] g w */
  if (!(t[0] = sc_group_norm(x, d->G, NULL, NULL, eps))) goto done;
  sc_tensor *xh = sc_reshape(t[0], 4, s4);
  sc_release(t[0]);
  if (!(t[0] = xh) || !(t[1] = sc_reshape(g, 4, s4))) goto done;
  if (w && (!(t[2] = sc_reshape(w, 4, sw)) || !(t[3] = sc_binary(SC_MUL, t[1], t[2]))))
    goto done;
  sc_tensor *gw = w ? t[3] : t[1];
  if (need[0] && (!(t[4] = sc_reshape(x, 4, s4)) ||
                  !(t[5] = norm_dx_graph(t[4], t[0], gw, 2, inner, eps)) ||
                  !(gin[0] = sc_reshape(t[5], x->ndim, x->shape))))
    goto done;
  for (int k = 1; k <= 2; k++) {
    if (!need[k]) continue;
    sc_tensor *prod = k == 1 ? sc_binary(SC_MUL, t[1], t[0]) : sc_retain(t[1]);
    sc_tensor *s = prod ? sc_sum(prod, 2, outer, 0) : NULL; /* [G, Cg] */
    sc_release(prod);
    gin[k] = s ? sc_reshape(s, 1, &d->C) : NULL;
    sc_release(s);
    if (!gin[k]) goto done;
  }
  rc = 0;
done:
  for (int k = 0; k < 6; k++) sc_release(t[k]);
  return rc;
}

/* The saved x, statistics and weight (NULL when absent) of a group or
   layer norm node, and with b (group_norm_silu) its bias; -1 if any cannot
   be unpacked. */
static int norm_unpack(sc_node *n, sc_tensor **x, sc_tensor **st, sc_tensor **w,
                       sc_tensor **b) {
  int hw = n->p.norm.affine & 1, hb = b && (n->p.norm.affine & 2);
  *x = sc_unpack(n, 0);
  *st = *x ? sc_unpack(n, 1) : NULL;
  *w = *st && hw ? sc_unpack(n, 2) : NULL;
  if (b) *b = *st && (*w || !hw) && hb ? sc_unpack(n, 2 + hw) : NULL;
  if (*st && (*w || !hw) && (!b || *b || !hb)) return 0;
  sc_release(*x);
  sc_release(*st);
  sc_release(*w);
  return -1;
}

/* The gradients of silu(group_norm(x)) in differentiable ops: the norm's
   output u made again (recorded, so higher orders see it), g silu'(u) the
   gradient at u, then the group norm's own formulas. */
static int gns_backward_graph(const gn_dims *d, sc_node *n, sc_tensor *x, sc_tensor *w,
                              sc_tensor *b, sc_tensor *g, const int *need, sc_tensor **gin) {
  sc_tensor *u = sc_group_norm(x, d->G, w, b, n->p.norm.eps);
  sc_tensor *s = u ? sc_unary(SC_SILU_GRAD, u) : NULL;
  sc_tensor *gu = s ? sc_binary(SC_MUL, g, s) : NULL;
  int rc = gu ? gn_backward_graph(d, n, x, w, gu, need, gin) : -1;
  sc_release(u);
  sc_release(s);
  sc_release(gu);
  return rc;
}

/* The group norm (act 0) or group_norm_silu (act 1) backward by either
   route (fused: kernels, else ops). */
static int gn_backward(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin,
                       int fused, int act) {
  sc_tensor *x, *st, *w, *b = NULL;
  if (norm_unpack(n, &x, &st, &w, act ? &b : NULL)) return -1;
  gn_dims d;
  gn_dims_of(x, n->p.norm.k, &d);
  int rc = fused ? gn_backward_fused(&d, x, w, st, g, need, gin, act ? &b : NULL)
           : act ? gns_backward_graph(&d, n, x, w, b, g, need, gin)
                 : gn_backward_graph(&d, n, x, w, g, need, gin);
  sc_release(x);
  sc_release(st);
  sc_release(w);
  sc_release(b);
  return rc;
}

int sc_bw_group_norm(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  return gn_backward(n, g, need, gin, 0, 0);
}

int sc_bw_fused_group_norm(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  return gn_backward(n, g, need, gin, 1, 0);
}

int sc_bw_group_norm_silu(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  return gn_backward(n, g, need, gin, 0, 1);
}

int sc_bw_fused_group_norm_silu(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  return gn_backward(n, g, need, gin, 1, 1);
}

/* ---- layer norm ------------------------------------------------------------------ */
/* Layer norm (Ba, Kiros & Hinton 2016): y = (x - mu) / sqrt(var + eps) w + b
   with mu and var over each row of the trailing nd dims, w and b per element. */

/* Tiles of the weight/bias gradient sums: fixed sizes, so the order of the
   additions depends on the shape only. */
#define LN_ROWS 256
#define LN_COLS 2048

typedef struct {
  int nd;
  int64_t R, M; /* R rows of M values */
} ln_dims;

static void ln_dims_of(const sc_tensor *x, int nd, ln_dims *d) {
  d->nd = nd;
  d->R = sc_prod(x->shape, 0, x->ndim - nd);
  d->M = sc_prod(x->shape, x->ndim - nd, x->ndim);
}

/* w as a dense row, or a row of `fill` when absent. */
static sc_tensor *affine_row(sc_tensor *w, int64_t M, double fill, sc_dtype dt) {
  return w ? sc_contiguous(w) : sc_full(1, &M, fill, dt);
}

static void ln_forward_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  (void)tid;
  const norm_job *j = ctx;
  int64_t M = j->M;
  const void *xp = j->x;
  void *yp = j->y;
  double *sp = j->st;
  for (int64_t r = lo; r < hi; r++) {
    if (j->dbl) {
      stats_double((const double *)xp + r * M, M, j->eps, sp + 2 * r);
      ln_row_double((const double *)xp + r * M, (double *)yp + r * M, M, sp + 2 * r, j->w, j->b);
    } else {
      stats_float((const float *)xp + r * M, M, j->eps, sp + 2 * r);
      ln_row_float((const float *)xp + r * M, (float *)yp + r * M, M, sp + 2 * r, j->w, j->b);
    }
  }
}

static void ln_cols_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  (void)tid;
  const norm_job *j = ctx;
  int64_t R = j->R, M = j->M, ncb = j->ncb;
  for (int64_t t = lo; t < hi; t++) {
    int64_t rb = t / ncb, cb = t % ncb;
    int64_t r0 = rb * LN_ROWS, r1 = r0 + LN_ROWS < R ? r0 + LN_ROWS : R;
    int64_t j0 = cb * LN_COLS, j1 = j0 + LN_COLS < M ? j0 + LN_COLS : M;
    if (j->dbl)
      ln_cols_double(j->x, j->g, M, r0, r1, j0, j1, j->sp, j->P + rb * M, j->Q + rb * M);
    else
      ln_cols_float(j->x, j->g, M, r0, r1, j0, j1, j->sp, j->P + rb * M, j->Q + rb * M);
  }
}

static void ln_backward_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  (void)tid;
  const norm_job *j = ctx;
  int64_t M = j->M;
  const void *xp = j->x, *gp = j->g;
  void *dp = j->y;
  for (int64_t r = lo; r < hi; r++) {
    if (j->dbl)
      ln_row_bw_double((const double *)xp + r * M, (const double *)gp + r * M,
                       (double *)dp + r * M, M, j->sp + 2 * r, j->w);
    else
      ln_row_bw_float((const float *)xp + r * M, (const float *)gp + r * M,
                      (float *)dp + r * M, M, j->sp + 2 * r, j->w);
  }
}

sc_tensor *sc_layer_norm(sc_tensor *x, int nd, sc_tensor *w, sc_tensor *b,
                         double eps) {
  const char *fn = "layer_norm_core";
  char buf[96];
  if (nd < 1 || nd > x->ndim) {
    sc_set_error("%s: the number of normalised trailing dims must be in "
                 "[1, %d] for an input of shape %s, got %d", fn, x->ndim,
                 sc_shape_str(x, buf, sizeof buf), nd);
    return NULL;
  }
  const int64_t *tail = x->shape + x->ndim - nd;
  if (check_affine(fn, "weight", w, x, nd, tail) ||
      check_affine(fn, "bias", b, x, nd, tail) || check_eps(fn, eps))
    return NULL;
  ln_dims d;
  ln_dims_of(x, nd, &d);
  int64_t ss[1] = {2 * d.R};
  sc_tensor *xc = dense(x), *wc = xc ? affine_row(w, d.M, 1.0, x->dtype) : NULL;
  sc_tensor *bc = wc ? affine_row(b, d.M, 0.0, x->dtype) : NULL;
  sc_tensor *y = bc ? sc_empty(x->ndim, x->shape, x->dtype) : NULL;
  sc_tensor *st = y ? sc_empty(1, ss, SC_FLOAT64) : NULL;
  if (st) {
    int nt = sc_get_num_threads();
    int dbl = x->dtype == SC_FLOAT64;
    double *sp = sc_data(st);
    const void *xp = sc_data(xc), *wp = sc_data(wc), *bp = sc_data(bc);
    void *yp = sc_data(y);
    int64_t R = d.R, M = d.M;
    norm_job j = {.x = xp, .w = wp, .b = bp, .y = yp, .st = sp, .M = M, .eps = eps, .dbl = dbl};
    sc_parallel_for(R * M >= SC_PAR_GRAIN ? nt : 1, R, ln_forward_part, &j);
  }
  sc_release(xc);
  sc_release(wc);
  sc_release(bc);
  return norm_record(SC_OP_layer_norm, y, st, x, w, b, nd, eps, 0);
}

/* Weight and bias gradients: column sums of g xhat and g, by tiles of
   LN_ROWS x LN_COLS into one partial row per row block, then the blocks
   added in order. */
static int ln_param_grads(const ln_dims *d, sc_tensor *xc, sc_tensor *gc,
                          const double *sp, const int64_t *shape,
                          const int *need, sc_tensor **gin) {
  int64_t R = d->R, M = d->M;
  int64_t nrb = (R + LN_ROWS - 1) / LN_ROWS, ncb = (M + LN_COLS - 1) / LN_COLS;
  size_t nb = sizeof(double) * (size_t)(2 * nrb * M + 2 * M);
  double *pw = sc_aligned_alloc(nb ? nb : 1);
  if (!pw) return -1;
  memset(pw, 0, nb);
  double *pb = pw + nrb * M, *sw = pb + nrb * M, *sb = sw + M;
  int nt = sc_get_num_threads();
  int dbl = xc->dtype == SC_FLOAT64;
  const void *xp = sc_data(xc), *gp = sc_data(gc);
  norm_job j = {.x = xp, .g = gp, .sp = sp, .P = pw, .Q = pb, .M = M, .R = R, .ncb = ncb,
                .dbl = dbl};
  sc_parallel_for(R * M >= SC_PAR_GRAIN ? nt : 1, nrb * ncb, ln_cols_part, &j);
  for (int64_t rb = 0; rb < nrb; rb++)
    for (int64_t j = 0; j < M; j++) {
      sw[j] += pw[rb * M + j];
      sb[j] += pb[rb * M + j];
    }
  int rc = 0;
  if (need[1] && !(gin[1] = sc_from_doubles(d->nd, shape, sw, xc->dtype))) rc = -1;
  if (rc == 0 && need[2] && !(gin[2] = sc_from_doubles(d->nd, shape, sb, xc->dtype))) rc = -1;
  sc_aligned_free(pw, nb ? nb : 1);
  return rc;
}

static int ln_backward_fused(const ln_dims *d, sc_tensor *x, sc_tensor *w,
                             sc_tensor *st, sc_tensor *g, const int *need,
                             sc_tensor **gin) {
  sc_tensor *xc = sc_contiguous(x), *gc = xc ? sc_contiguous(g) : NULL;
  sc_tensor *wc = gc ? affine_row(w, d->M, 1.0, x->dtype) : NULL;
  int rc = wc ? 0 : -1;
  const double *sp = sc_data(st);
  if (rc == 0 && need[0]) {
    sc_tensor *dx = gin[0] = sc_empty(x->ndim, x->shape, x->dtype);
    if (dx) {
      int nt = sc_get_num_threads();
      int dbl = x->dtype == SC_FLOAT64;
      const void *xp = sc_data(xc), *gp = sc_data(gc), *wp = sc_data(wc);
      void *dp = sc_data(dx);
      int64_t R = d->R, M = d->M;
      norm_job j = {.x = xp, .g = gp, .w = wp, .y = dp, .sp = sp, .M = M, .dbl = dbl};
      sc_parallel_for(R * M >= SC_PAR_GRAIN ? nt : 1, R, ln_backward_part, &j);
    } else {
      rc = -1;
    }
  }
  if (rc == 0 && (need[1] || need[2]))
    rc = ln_param_grads(d, xc, gc, sp, x->shape + x->ndim - d->nd, need, gin);
  sc_release(xc); sc_release(gc); sc_release(wc);
  return rc;
}

/* The same formulas in differentiable ops on the [R, M] view. */
static int ln_backward_graph(const ln_dims *d, sc_node *n, sc_tensor *x,
                             sc_tensor *w, sc_tensor *g, const int *need,
                             sc_tensor **gin) {
  const int64_t s2[2] = {d->R, d->M}, sw[2] = {1, d->M};
  static const int tail_dim[1] = {1}, row_dim[1] = {0};
  const int64_t *tail = x->shape + x->ndim - d->nd;
  double eps = n->p.norm.eps;
  sc_tensor *t[6] = {0};
  int rc = -1;
  /* t[0] xhat, t[1] g2, t[2] w2, t[3] g w */
  if (!(t[0] = sc_layer_norm(x, d->nd, NULL, NULL, eps))) goto done;
  sc_tensor *xh = sc_reshape(t[0], 2, s2);
  sc_release(t[0]);
  if (!(t[0] = xh) || !(t[1] = sc_reshape(g, 2, s2))) goto done;
  if (w && (!(t[2] = sc_reshape(w, 2, sw)) || !(t[3] = sc_binary(SC_MUL, t[1], t[2]))))
    goto done;
  sc_tensor *gw = w ? t[3] : t[1];
  if (need[0] && (!(t[4] = sc_reshape(x, 2, s2)) ||
                  !(t[5] = norm_dx_graph(t[4], t[0], gw, 1, tail_dim, eps)) ||
                  !(gin[0] = sc_reshape(t[5], x->ndim, x->shape))))
    goto done;
  for (int k = 1; k <= 2; k++) {
    if (!need[k]) continue;
    sc_tensor *prod = k == 1 ? sc_binary(SC_MUL, t[1], t[0]) : sc_retain(t[1]);
    sc_tensor *s = prod ? sc_sum(prod, 1, row_dim, 0) : NULL; /* [M] */
    sc_release(prod);
    gin[k] = s ? sc_reshape(s, d->nd, tail) : NULL;
    sc_release(s);
    if (!gin[k]) goto done;
  }
  rc = 0;
done:
  for (int k = 0; k < 6; k++) sc_release(t[k]);
  return rc;
}

static int ln_backward(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin,
                       int fused) {
  sc_tensor *x, *st, *w;
  if (norm_unpack(n, &x, &st, &w, NULL)) return -1;
  ln_dims d;
  ln_dims_of(x, (int)n->p.norm.k, &d);
  int rc = fused ? ln_backward_fused(&d, x, w, st, g, need, gin)
                 : ln_backward_graph(&d, n, x, w, g, need, gin);
  sc_release(x);
  sc_release(st);
  sc_release(w);
  return rc;
}

int sc_bw_layer_norm(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  return ln_backward(n, g, need, gin, 0);
}

int sc_bw_fused_layer_norm(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  return ln_backward(n, g, need, gin, 1);
}

/* ---- softmax and log-softmax -------------------------------------------------------- */
/* softmax(x)_k = e^(x_k - m) / sum_j e^(x_j - m), m the max (which cancels);
   log_softmax(x)_k = x_k - m - log sum_j e^(x_j - m). */

static void sm_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  (void)tid;
  const norm_job *j = ctx;
  int64_t K = j->K, inner = j->inner, nb = j->nb;
  int dbl = j->dbl, lg = j->lg;
  const char *ap = j->x, *gp = j->g;
  char *op = j->y;
  for (int64_t t = lo; t < hi; t++) {
    int64_t o = t / nb, i0 = (t % nb) * SM_TILE;
    int64_t wd = inner - i0 < SM_TILE ? inner - i0 : SM_TILE;
    size_t off = (size_t)(o * K * inner + i0) * j->es;
    const void *x = ap + off, *gg = gp ? gp + off : NULL;
    void *y = op + off;
    if (inner == 1 && !gp) {
      if (dbl) sm_row_double(x, y, K, lg); else sm_row_float(x, y, K, lg);
    } else if (inner == 1) {
      if (dbl) sm_row_bw_double(x, gg, y, K, lg); else sm_row_bw_float(x, gg, y, K, lg);
    } else if (!gp) {
      if (dbl) sm_cols_double(x, y, K, inner, wd, lg); else sm_cols_float(x, y, K, inner, wd, lg);
    } else {
      if (dbl) sm_cols_bw_double(x, gg, y, K, inner, wd, lg);
      else sm_cols_bw_float(x, gg, y, K, inner, wd, lg);
    }
  }
}

/* Runs the forward (g == NULL: a = x) or backward (a = y) kernels over
   every row or column tile of contiguous tensors along dim d. */
static void sm_run(const sc_tensor *a, const sc_tensor *g, sc_tensor *out, int d,
                   int lg) {
  int64_t outer = sc_prod(a->shape, 0, d), K = a->shape[d];
  int64_t inner = sc_prod(a->shape, d + 1, a->ndim);
  int64_t nb = inner == 1 ? 1 : (inner + SM_TILE - 1) / SM_TILE, tiles = outer * nb;
  int nt = sc_get_num_threads();
  int dbl = a->dtype == SC_FLOAT64;
  const char *ap = sc_data(a), *gp = g ? sc_data(g) : NULL;
  char *op = sc_data(out);
  size_t es = sc_dtype_size(a->dtype);
  norm_job j = {.x = ap, .g = gp, .y = op, .K = K, .inner = inner, .nb = nb, .es = es, .dbl = dbl,
                .lg = lg};
  sc_parallel_for(a->numel >= SC_PAR_GRAIN ? nt : 1, tiles, sm_part, &j);
}

static sc_tensor *softmax_op(sc_tensor *x, int d, int lg) {
  const char *fn = lg ? "log_softmax_core" : "softmax_core";
  if (sc_check_dim(fn, x, d)) return NULL;
  sc_tensor *xc = sc_contiguous(x);
  sc_tensor *y = xc ? sc_empty(x->ndim, x->shape, x->dtype) : NULL;
  if (y) sm_run(xc, NULL, y, d, lg);
  sc_release(xc);
  if (!y) return NULL;
  sc_node *n;
  if (sc_record(lg ? SC_OP_log_softmax : SC_OP_softmax, y, 1, &x, &n) ||
      (n && sc_save(n, y, 1))) {
    sc_release(y);
    return NULL;
  }
  if (n) n->p.softmax.dim = d;
  return y;
}

sc_tensor *sc_softmax(sc_tensor *x, int d) { return softmax_op(x, d, 0); }
sc_tensor *sc_log_softmax(sc_tensor *x, int d) { return softmax_op(x, d, 1); }

/* Both from the saved output y: softmax gx = y (g - sum g y), log_softmax
   gx = g - e^y sum g; in kernels (fused) or in ops. */
static int softmax_backward(sc_node *n, sc_tensor *g, sc_tensor **gin, int lg,
                            int fused) {
  int d = n->p.softmax.dim;
  sc_tensor *y = sc_unpack(n, 0);
  if (!y) return -1;
  if (fused) {
    sc_tensor *yc = sc_contiguous(y), *gc = yc ? sc_contiguous(g) : NULL;
    sc_tensor *gx = gc ? sc_empty(y->ndim, y->shape, y->dtype) : NULL;
    if (gx) sm_run(yc, gc, gx, d, lg);
    sc_release(yc);
    sc_release(gc);
    sc_release(y);
    gin[0] = gx;
    return gx ? 0 : -1;
  }
  sc_tensor *a = lg ? sc_retain(g) : sc_binary(SC_MUL, g, y);
  sc_tensor *s = a ? sc_sum(a, 1, &d, 1) : NULL;
  sc_tensor *e = s && lg ? sc_unary(SC_EXP, y) : NULL;
  sc_tensor *t = s ? (lg ? (e ? sc_binary(SC_MUL, e, s) : NULL) : sc_binary(SC_SUB, g, s)) : NULL;
  gin[0] = t ? (lg ? sc_binary(SC_SUB, g, t) : sc_binary(SC_MUL, y, t)) : NULL;
  sc_release(a); sc_release(s); sc_release(e); sc_release(t); sc_release(y);
  return gin[0] ? 0 : -1;
}

int sc_bw_softmax(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  return softmax_backward(n, g, gin, 0, 0);
}

int sc_bw_fused_softmax(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  return softmax_backward(n, g, gin, 0, 1);
}

int sc_bw_log_softmax(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  return softmax_backward(n, g, gin, 1, 0);
}

int sc_bw_fused_log_softmax(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  return softmax_backward(n, g, gin, 1, 1);
}
