/*
 * scorch core: reductions.  Sums accumulate in double and split long runs
 * into fixed chunks combined in order, so the result is the same at any
 * thread count.
 */
#include "autograd.h"
#include "internal.h"

#include <math.h>
#include "pool.h"
#include "vmath.h"
#include <stdlib.h>
#include <string.h>

#define CHUNK 16384

/* Sum of r elements starting at p with element stride s.  Dense runs use
   eight accumulators combined in a fixed order: the loop vectorises, and
   the result still depends only on the data, never on the thread count
   (nor on the vector width of the clone that runs). */
#define DENSE_SUM(T)                                                         \
  SC_DISPATCH static double dense_sum_##T(const T *x, int64_t r) {                      \
    double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                  \
    int64_t i = 0;                                                           \
    for (; i + 8 <= r; i += 8)                                               \
      for (int j = 0; j < 8; j++) a[j] += x[i + j];                          \
    double acc = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])); \
    for (; i < r; i++) acc += x[i];                                          \
    return acc;                                                              \
  }
DENSE_SUM(float)
DENSE_SUM(double)

static double run_sum(const char *p, int64_t r, int64_t s, sc_dtype dt) {
  double acc = 0;
  if (dt == SC_FLOAT64) {
    const double *x = (const double *)p;
    if (s == 1) return dense_sum_double(x, r);
    for (int64_t i = 0; i < r; i++) acc += x[i * s];
  } else {
    const float *x = (const float *)p;
    if (s == 1) return dense_sum_float(x, r);
    for (int64_t i = 0; i < r; i++) acc += x[i * s];
  }
  return acc;
}

static void store(sc_tensor *y, int64_t k, double v) {
  if (y->dtype == SC_FLOAT64)
    ((double *)sc_data(y))[k] = v;
  else
    ((float *)sc_data(y))[k] = (float)v;
}

typedef struct {
  sc_tensor *y;
  const sc_tensor *x;
  const char *base, *p;
  int64_t es, r;
  double *part;
} rows_job;

static void rows_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  (void)tid;
  const rows_job *j = ctx;
  int64_t r = j->r, es = j->es;
  for (int64_t k = lo; k < hi; k++) {
    if (r <= CHUNK) {
      store(j->y, k, run_sum(j->base + k * r * es, r, 1, j->x->dtype));
      continue;
    }
    double acc = 0; /* same chunking as below, so results agree */
    for (int64_t c = 0; c < r; c += CHUNK)
      acc += run_sum(j->base + (k * r + c) * es, r - c < CHUNK ? r - c : CHUNK, 1, j->x->dtype);
    store(j->y, k, acc);
  }
}

static void chunks_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  (void)tid;
  const rows_job *j = ctx;
  for (int64_t c = lo; c < hi; c++) {
    int64_t len = j->r - c * CHUNK < CHUNK ? j->r - c * CHUNK : CHUNK;
    j->part[c] = run_sum(j->p + c * CHUNK * j->es, len, 1, j->x->dtype);
  }
}

/* y[k] = sum of the k-th contiguous run of r elements of contiguous x. */
static void sum_rows(sc_tensor *y, const sc_tensor *x, int64_t K, int64_t r) {
  const char *base = sc_data(x);
  int64_t es = (int64_t)sc_dtype_size(x->dtype);
  int nt = sc_get_num_threads();
  rows_job j = {y, x, base, NULL, es, r, NULL};
  if (K >= 2 * nt || r <= CHUNK) {
    sc_parallel_for(K * r >= SC_PAR_GRAIN ? nt : 1, K, rows_part, &j);
    return;
  }
  int64_t nc = (r + CHUNK - 1) / CHUNK;
  double *part = malloc(sizeof(double) * (size_t)nc);
  for (int64_t k = 0; k < K; k++) {
    const char *p = base + k * r * es;
    if (!part) { /* no scratch: serial, same order */
      double acc = 0;
      for (int64_t c = 0; c < r; c += CHUNK)
        acc += run_sum(p + c * es, r - c < CHUNK ? r - c : CHUNK, 1, x->dtype);
      store(y, k, acc);
      continue;
    }
    j.p = p;
    j.part = part;
    sc_parallel_for(nt, nc, chunks_part, &j);
    double acc = 0;
    for (int64_t c = 0; c < nc; c++) acc += part[c];
    store(y, k, acc);
  }
  free(part);
}

typedef struct {
  const char *base;
  int64_t es, R, K;
  int dbl;
  double *acc;
} cols_job;

/* each acc[j] adds its rows in order, whatever the vector width */
SC_DISPATCH static void cols_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  (void)tid;
  const cols_job *c = ctx;
  double *acc = c->acc;
  for (int64_t b = lo; b < hi; b++) {
    int64_t j0 = b * 256, j1 = j0 + 256 < c->K ? j0 + 256 : c->K;
    for (int64_t i = 0; i < c->R; i++) {
      const char *row = c->base + i * c->K * c->es;
      if (c->dbl)
        for (int64_t j = j0; j < j1; j++) acc[j] += ((const double *)row)[j];
      else
        for (int64_t j = j0; j < j1; j++) acc[j] += ((const float *)row)[j];
    }
  }
}

/* y[j] = sum_i x[i, j] for contiguous x viewed as [R, K]. */
static int sum_cols(sc_tensor *y, const sc_tensor *x, int64_t R, int64_t K) {
  double *acc = calloc((size_t)(K ? K : 1), sizeof(double));
  if (!acc) {
    sc_set_error("out of memory");
    return -1;
  }
  int nt = sc_get_num_threads();
  const char *base = sc_data(x);
  int64_t es = (int64_t)sc_dtype_size(x->dtype);
  /* threads own disjoint column blocks, rows in order: deterministic */
  int64_t nb = (K + 255) / 256;
  cols_job cj = {base, es, R, K, x->dtype == SC_FLOAT64, acc};
  sc_parallel_for(R * K >= SC_PAR_GRAIN ? nt : 1, nb, cols_part, &cj);
  for (int64_t j = 0; j < K; j++) store(y, j, acc[j]);
  free(acc);
  return 0;
}

typedef struct {
  sc_tensor *y;
  const sc_tensor *x;
  const char *base;
  int64_t es, r, O;
  int nk, no;
  const int64_t *ks, *kst, *os, *ost;
} runs_job;

static void runs_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  (void)tid;
  const runs_job *c = ctx;
  for (int64_t k = lo; k < hi; k++) {
    int64_t off = 0, q = k;
    for (int j = c->nk - 1; j >= 0; j--) {
      off += (q % c->ks[j]) * c->kst[j];
      q /= c->ks[j];
    }
    double acc = 0;
    for (int64_t o = 0; o < c->O; o++) {
      int64_t oo = off;
      q = o;
      for (int j = c->no - 1; j >= 0; j--) {
        oo += (q % c->os[j]) * c->ost[j];
        q /= c->os[j];
      }
      acc += run_sum(c->base + oo * c->es, c->r, 1, c->x->dtype);
    }
    store(c->y, k, acc);
  }
}

/* Parses a dims list into a mask; n == 0 means all. */
static int dims_mask(const char *fn, const sc_tensor *x, int n, const int *dims,
                     int *mask) {
  for (int d = 0; d < x->ndim; d++) mask[d] = n == 0;
  for (int k = 0; k < n; k++) {
    if (sc_check_dim(fn, x, dims[k])) return -1;
    mask[dims[k]] = 1;
  }
  return 0;
}

static void out_shape(const sc_tensor *x, const int *mask, int keepdim, int *nd,
                      int64_t *s) {
  int k = 0;
  for (int d = 0; d < x->ndim; d++) {
    if (!mask[d])
      s[k++] = x->shape[d];
    else if (keepdim)
      s[k++] = 1;
  }
  *nd = k;
}

/* Contiguous x whose last dims are all reduced (a run of r elements) and
   at least one earlier dim kept, such as a bias gradient summed over
   [N, C, H, W] except C: y[k] is the sum, over the earlier reduced
   indices in row-major order, of dense run sums, read in place.  Returns
   0 (nothing done) when the runs are too short to pay. */
static int sum_runs(sc_tensor *y, const sc_tensor *x, const int *mask) {
  int64_t r = 1;
  int last = x->ndim - 1;
  while (last >= 0 && mask[last]) r *= x->shape[last--];
  if (r < 64 || last < 0) return 0;
  int64_t ks[SC_MAX_DIMS] = {0}, kst[SC_MAX_DIMS] = {0}, os[SC_MAX_DIMS] = {0}, ost[SC_MAX_DIMS] = {0};
  int nk = 0, no = 0;
  int64_t K = 1, O = 1;
  for (int d = 0; d <= last; d++) {
    if (mask[d]) {
      os[no] = x->shape[d], ost[no++] = x->stride[d];
      O *= x->shape[d];
    } else {
      ks[nk] = x->shape[d], kst[nk++] = x->stride[d];
      K *= x->shape[d];
    }
  }
  runs_job j = {y, x, sc_data(x), (int64_t)sc_dtype_size(x->dtype), r, O, nk, no, ks, kst, os, ost};
  int nt = sc_get_num_threads();
  sc_parallel_for(K * O * r >= SC_PAR_GRAIN && K >= nt ? nt : 1, K, runs_part, &j);
  return 1;
}

static sc_tensor *sum_kernel(sc_tensor *x, const int *mask, int keepdim) {
  int nd;
  int64_t s[SC_MAX_DIMS];
  out_shape(x, mask, keepdim, &nd, s);
  sc_tensor *y = sc_empty(nd, s, x->dtype);
  if (!y) return NULL;
  /* kept dims first, reduced dims last */
  int perm[SC_MAX_DIMS], np = 0, lead = 1, seen_kept = 0;
  int64_t K = 1, R = 1;
  for (int d = 0; d < x->ndim; d++)
    if (!mask[d]) {
      perm[np++] = d;
      K *= x->shape[d];
      seen_kept = 1;
    } else if (seen_kept && x->shape[d] != 1) {
      lead = 0;
    }
  for (int d = 0; d < x->ndim; d++)
    if (mask[d]) {
      perm[np++] = d;
      R *= x->shape[d];
    }
  if (x->numel == 0) {
    memset(sc_data(y), 0, (size_t)y->numel * sc_dtype_size(y->dtype));
    return y;
  }
  if (K == 1 && sc_is_contiguous(x)) { /* everything: one long run */
    sum_rows(y, x, 1, R);
    return y;
  }
  if (sc_is_contiguous(x) && sum_runs(y, x, mask)) return y;
  if (lead && sc_is_contiguous(x)) { /* reduced dims lead: sum columns */
    if (sum_cols(y, x, R, K)) {
      sc_release(y);
      return NULL;
    }
    return y;
  }
  int64_t ps[SC_MAX_DIMS], pst[SC_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++) {
    ps[d] = x->shape[perm[d]];
    pst[d] = x->stride[perm[d]];
  }
  sc_tensor *xp = sc_raw_view(x, x->ndim, ps, pst, x->offset);
  sc_tensor *xc = NULL;
  if (xp && !sc_is_contiguous(xp)) {
    xc = sc_empty(xp->ndim, xp->shape, xp->dtype);
    if (xc && sc_copy_(xc, xp)) {
      sc_release(xc);
      xc = NULL;
    }
  } else if (xp) {
    xc = sc_retain(xp);
  }
  sc_release(xp);
  if (!xc) {
    sc_release(y);
    return NULL;
  }
  sum_rows(y, xc, K, R);
  sc_release(xc);
  return y;
}

sc_tensor *sc_sum(sc_tensor *x, int n, const int *dims, int keepdim) {
  int mask[SC_MAX_DIMS];
  if (dims_mask("sum", x, n, dims, mask)) return NULL;
  sc_tensor *y = sum_kernel(x, mask, keepdim);
  if (!y) return NULL;
  sc_node *nd;
  if (sc_record(SC_OP_sum, y, 1, &x, &nd)) {
    sc_release(y);
    return NULL;
  }
  if (nd)
    for (int d = 0; d < x->ndim; d++) nd->p.sum.reduced[d] = mask[d];
  return y;
}

/* Sums t down to a shape it was broadcast from. */
sc_tensor *sc_sum_to(sc_tensor *t, int ndim, const int64_t *shape) {
  int lead = t->ndim - ndim, mask[SC_MAX_DIMS];
  if (lead < 0) goto bad;
  for (int d = 0; d < t->ndim; d++) {
    int k = d - lead;
    if (k < 0) {
      mask[d] = 1;
    } else if (shape[k] == t->shape[d]) {
      mask[d] = 0;
    } else if (shape[k] == 1) {
      mask[d] = 1;
    } else {
      goto bad;
    }
  }
  {
    sc_tensor *s = sum_kernel(t, mask, 1);
    if (!s) return NULL;
    /* drop the leading dims */
    sc_tensor *y = sc_raw_view(s, ndim, shape, s->stride + lead, s->offset);
    sc_release(s);
    if (!y) return NULL;
    sc_node *nd;
    if (sc_record(SC_OP_sum_to, y, 1, &t, &nd)) {
      sc_release(y);
      return NULL;
    }
    return y;
  }
bad: {
  char b1[96], b2[96];
  sc_set_error("sum_to: shape %s cannot be summed to %s",
               sc_shape_str(t, b1, sizeof b1), sc_dims_str(ndim, shape, b2, sizeof b2));
  return NULL;
}
}

sc_tensor *sc_mean(sc_tensor *x, int n, const int *dims, int keepdim) {
  int mask[SC_MAX_DIMS];
  if (dims_mask("mean", x, n, dims, mask)) return NULL;
  int64_t cnt = 1;
  for (int d = 0; d < x->ndim; d++)
    if (mask[d]) cnt *= x->shape[d];
  sc_tensor *s = sc_sum(x, n, dims, keepdim);
  if (!s) return NULL;
  sc_tensor *y = sc_binary_scalar(SC_MUL, s, cnt ? 1.0 / (double)cnt : NAN, 0);
  sc_release(s);
  return y;
}

sc_tensor *sc_var(sc_tensor *x, int n, const int *dims, int keepdim,
                  int unbiased) {
  int mask[SC_MAX_DIMS];
  if (dims_mask("var", x, n, dims, mask)) return NULL;
  int64_t cnt = 1;
  for (int d = 0; d < x->ndim; d++)
    if (mask[d]) cnt *= x->shape[d];
  sc_tensor *m = sc_mean(x, n, dims, 1);
  sc_tensor *c = m ? sc_binary(SC_SUB, x, m) : NULL;
  sc_tensor *c2 = c ? sc_unary(SC_SQUARE, c) : NULL;
  sc_tensor *s = c2 ? sc_sum(c2, n, dims, keepdim) : NULL;
  double den = (double)(cnt - (unbiased ? 1 : 0));
  sc_tensor *y = s ? sc_binary_scalar(SC_MUL, s, den > 0 ? 1.0 / den : NAN, 0) : NULL;
  sc_release(m); sc_release(c); sc_release(c2); sc_release(s);
  return y;
}

/* ---- max / min ------------------------------------------------------------------ */

/* The extreme of a whole dense run: 16 running extremes and a NaN flag, so
   the loop vectorises; the extremes are then compared in a fixed order.
   A NaN anywhere gives NaN; otherwise the largest (smallest) value, as the
   element-by-element scan finds it (where +0 and -0 tie for it, either
   may come back). */
#define DENSE_EXTREME(T)                                                       \
  SC_DISPATCH static double dense_extreme_##T(const T *x, int64_t r, int op) { \
    T lane[16];                                                                \
    int nan = 0;                                                               \
    for (int l = 0; l < 16; l++) lane[l] = x[0];                               \
    int64_t i = 0, r16 = r / 16 * 16;                                          \
    if (op > 0)                                                                \
      for (; i < r16; i += 16)                                                 \
        for (int l = 0; l < 16; l++) {                                         \
          T v = x[i + l];                                                      \
          nan |= v != v;                                                       \
          lane[l] = v > lane[l] ? v : lane[l];                                 \
        }                                                                      \
    else                                                                       \
      for (; i < r16; i += 16)                                                 \
        for (int l = 0; l < 16; l++) {                                         \
          T v = x[i + l];                                                      \
          nan |= v != v;                                                       \
          lane[l] = v < lane[l] ? v : lane[l];                                 \
        }                                                                      \
    T best = lane[0];                                                          \
    for (; i < r; i++) {                                                       \
      nan |= x[i] != x[i];                                                     \
      best = (op > 0 ? x[i] > best : x[i] < best) ? x[i] : best;               \
    }                                                                          \
    for (int l = 1; l < 16; l++)                                               \
      best = (op > 0 ? lane[l] > best : lane[l] < best) ? lane[l] : best;      \
    return nan ? (double)NAN : (double)best;                                   \
  }
DENSE_EXTREME(float)
DENSE_EXTREME(double)

static sc_tensor *extreme(const char *fn, int op, sc_tensor *x, int d,
                          int keepdim, sc_tensor **indices) {
  int mask[SC_MAX_DIMS];
  if (d >= 0 && sc_check_dim(fn, x, d)) return NULL;
  for (int e = 0; e < x->ndim; e++) mask[e] = d < 0 || e == d;
  /* an empty reduced run has no extreme; other empty dims give an empty
     result */
  if (d < 0 ? x->numel == 0 : x->shape[d] == 0) {
    char b[96];
    sc_set_error("%s: cannot reduce an empty dimension of a tensor of shape %s",
                 fn, sc_shape_str(x, b, sizeof b));
    return NULL;
  }
  int nd;
  int64_t s[SC_MAX_DIMS];
  out_shape(x, mask, keepdim, &nd, s);
  sc_tensor *y = sc_empty(nd, s, x->dtype);
  sc_tensor *ix = indices ? sc_empty(nd, s, x->dtype) : NULL;
  if (!y || (indices && !ix)) {
    sc_release(y);
    return NULL;
  }
  /* iterate output positions; walk the reduced run with its stride */
  int64_t r = d < 0 ? x->numel : x->shape[d];
  int64_t K = y->numel;
  sc_tensor *xc = d < 0 ? sc_contiguous(x) : sc_retain(x);
  if (!xc) {
    sc_release(y);
    sc_release(ix);
    return NULL;
  }
  int64_t rs = d < 0 ? 1 : xc->stride[d];
  if (d < 0 && !ix) /* the whole tensor, no index wanted */
    store(y, 0, xc->dtype == SC_FLOAT64 ? dense_extreme_double(sc_data(xc), r, op)
                                        : dense_extreme_float(sc_data(xc), r, op));
  else for (int64_t k = 0; k < K; k++) {
    int64_t base = 0;
    if (d >= 0) { /* offset of output k with dim d at 0 */
      int64_t rem = k;
      for (int e = x->ndim - 1; e >= 0; e--) {
        if (e == d) continue;
        base += (rem % x->shape[e]) * xc->stride[e];
        rem /= x->shape[e];
      }
    }
    double best = 0;
    int64_t bi = 0;
    for (int64_t i = 0; i < r; i++) {
      int64_t off = base + i * rs;
      double v = xc->dtype == SC_FLOAT64 ? ((const double *)sc_data(xc))[off]
                                         : ((const float *)sc_data(xc))[off];
      if (i == 0 || (op > 0 ? v > best : v < best) || v != v) {
        best = v;
        bi = i;
        if (v != v) break; /* NaN propagates */
      }
    }
    store(y, k, best);
    if (ix) store(ix, k, (double)bi);
  }
  sc_release(xc);
  sc_node *n;
  if (sc_record(op > 0 ? SC_OP_max : SC_OP_min, y, 1, &x, &n) ||
      (n && (sc_save(n, x, 0) || sc_save(n, y, 1)))) {
    sc_release(y);
    sc_release(ix);
    return NULL;
  }
  if (n) {
    n->p.extreme.dim = d;
    n->p.extreme.keepdim = keepdim;
  }
  if (indices) *indices = ix;
  return y;
}

sc_tensor *sc_max(sc_tensor *x, int d, int keepdim, sc_tensor **indices) {
  return extreme("max", 1, x, d, keepdim, indices);
}

sc_tensor *sc_min(sc_tensor *x, int d, int keepdim, sc_tensor **indices) {
  return extreme("min", -1, x, d, keepdim, indices);
}

sc_tensor *sc_logsumexp(sc_tensor *x, int d, int keepdim) {
  if (sc_check_dim("logsumexp", x, d)) return NULL;
  if (x->shape[d] == 0) {
    char b[96];
    sc_set_error("logsumexp: cannot reduce an empty dimension of a tensor of "
                 "shape %s", sc_shape_str(x, b, sizeof b));
    return NULL;
  }
  /* log sum exp(x - m) + m with m held constant: the m terms cancel in
     the gradient, so it stays exact to any order */
  int prev = sc_set_grad_enabled(0);
  sc_tensor *m = sc_max(x, d, 1, NULL);
  sc_set_grad_enabled(prev);
  if (!m) return NULL;
  if (m->dtype == SC_FLOAT64) { /* all -inf rows: avoid inf - inf */
    double *p = sc_data(m);
    for (int64_t i = 0; i < m->numel; i++) if (isinf(p[i])) p[i] = 0;
  } else {
    float *p = sc_data(m);
    for (int64_t i = 0; i < m->numel; i++) if (isinf(p[i])) p[i] = 0;
  }
  sc_tensor *c = sc_binary(SC_SUB, x, m);
  sc_tensor *e = c ? sc_unary(SC_EXP, c) : NULL;
  sc_tensor *s = e ? sc_sum(e, 1, &d, 1) : NULL;
  sc_tensor *l = s ? sc_unary(SC_LOG, s) : NULL;
  sc_tensor *y = l ? sc_binary(SC_ADD, l, m) : NULL;
  sc_release(c); sc_release(e); sc_release(s); sc_release(l); sc_release(m);
  if (y && !keepdim) {
    sc_tensor *q = sc_squeeze(y, d);
    sc_release(y);
    y = q;
  }
  return y;
}

/* ---- backward formulas ---------------------------------------------------------- */

/* g (reduced shape) viewed with the reduced dims kept as size 1. */
static sc_tensor *keep_dims(sc_node *n, sc_tensor *g, const int *mask) {
  sc_edge *e = &n->edges[0];
  int64_t s[SC_MAX_DIMS];
  for (int d = 0; d < e->ndim; d++) s[d] = mask[d] ? 1 : e->shape[d];
  return sc_reshape(g, e->ndim, s);
}

int sc_bw_sum(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  int mask[SC_MAX_DIMS];
  sc_edge *e = &n->edges[0];
  for (int d = 0; d < e->ndim; d++) mask[d] = n->p.sum.reduced[d];
  sc_tensor *k = keep_dims(n, g, mask);
  gin[0] = k ? sc_expand(k, e->ndim, e->shape) : NULL;
  sc_release(k);
  return gin[0] ? 0 : -1;
}

static int bw_extreme(sc_node *n, sc_tensor *g, sc_tensor **gin) {
  sc_edge *e = &n->edges[0];
  int d = n->p.extreme.dim, mask[SC_MAX_DIMS];
  for (int k = 0; k < e->ndim; k++) mask[k] = d < 0 || k == d;
  sc_tensor *x = sc_unpack(n, 0), *y = x ? sc_unpack(n, 1) : NULL;
  if (!y) {
    sc_release(x);
    return -1;
  }
  /* ties share the gradient equally; the mask is a constant */
  int prev = sc_set_grad_enabled(0);
  sc_tensor *yk = keep_dims(n, y, mask);
  sc_tensor *eq = yk ? sc_binary(SC_EQ, x, yk) : NULL;
  int dims[SC_MAX_DIMS], nd = 0;
  for (int k = 0; k < e->ndim; k++) if (mask[k]) dims[nd++] = k;
  sc_tensor *cnt = eq ? sc_sum(eq, nd, dims, 1) : NULL;
  sc_tensor *w = cnt ? sc_binary(SC_DIV, eq, cnt) : NULL;
  sc_set_grad_enabled(prev);
  sc_release(yk); sc_release(eq); sc_release(cnt); sc_release(x); sc_release(y);
  sc_tensor *gk = w ? keep_dims(n, g, mask) : NULL;
  gin[0] = gk ? sc_binary(SC_MUL, gk, w) : NULL;
  sc_release(gk);
  sc_release(w);
  return gin[0] ? 0 : -1;
}

int sc_bw_max(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  return bw_extreme(n, g, gin);
}

int sc_bw_min(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  return bw_extreme(n, g, gin);
}


/* ---- the Bernoulli log-likelihood of logits, per row ------------------------------ */

/* y[i] = sum_j x_ij l_ij - softplus(l_ij) = sum_j log p(x_ij | sigmoid(l_ij))
   for x in [0, 1]: the decoder term of a Bernoulli VAE in one pass (sixteen
   running sums per row, added in double at the end).  Its gradient is g_i (x_ij - sigmoid(l_ij)) for l
   and g_i l_ij for x: one pass again where no graph is built, the same
   formula in recorded ops where one is (any order). */
typedef struct {
  const void *l, *x, *g;
  void *y, *gl, *gx;
  int64_t d;
} bern_job;

/* the elementwise ops' own softplus and sigmoid (vmath.h), per dtype */
#define BERN_SOFTPLUS_float sc_vsoftplusf
#define BERN_SOFTPLUS_double sc_softplus
#define BERN_SIGMOID_float sc_vsigmoidf
#define BERN_SIGMOID_double sc_sigmoid
#define BERN_PARTS(T)                                                            \
  SC_DISPATCH static void bern_rows_##T(void *ctx, int64_t lo, int64_t hi, int tid) { \
    (void)tid;                                                                   \
    const bern_job *j = ctx;                                                     \
    for (int64_t i = lo; i < hi; i++) {                                          \
      const T *restrict l = (const T *)j->l + i * j->d, *restrict x = (const T *)j->x + i * j->d; \
      T acc[16] = {0}; /* sixteen running sums, so it vectorises */             \
      double sum = 0;                                                            \
      int64_t k = 0, d16 = j->d / 16 * 16;                                       \
      for (; k < d16; k += 16)                                                   \
        for (int t = 0; t < 16; t++)                                             \
          acc[t] += x[k + t] * l[k + t] - BERN_SOFTPLUS_##T(l[k + t]);           \
      for (; k < j->d; k++) sum += (double)(x[k] * l[k] - BERN_SOFTPLUS_##T(l[k])); \
      for (int t = 0; t < 16; t++) sum += (double)acc[t];                        \
      ((T *)j->y)[i] = (T)sum;                                                   \
    }                                                                            \
  }                                                                              \
  SC_DISPATCH static void bern_grad_##T(void *ctx, int64_t lo, int64_t hi, int tid) { \
    (void)tid;                                                                   \
    const bern_job *j = ctx;                                                     \
    for (int64_t i = lo; i < hi; i++) {                                          \
      const T *restrict l = (const T *)j->l + i * j->d, *restrict x = (const T *)j->x + i * j->d; \
      T gi = ((const T *)j->g)[i];                                               \
      if (j->gl) {                                                               \
        T *restrict o = (T *)j->gl + i * j->d;                                   \
        for (int64_t k = 0; k < j->d; k++) o[k] = gi * (x[k] - BERN_SIGMOID_##T(l[k])); \
      }                                                                          \
      if (j->gx) {                                                               \
        T *restrict o = (T *)j->gx + i * j->d;                                   \
        for (int64_t k = 0; k < j->d; k++) o[k] = gi * l[k];                     \
      }                                                                          \
    }                                                                            \
  }
BERN_PARTS(float)
BERN_PARTS(double)

static int bern_threads(int64_t n, int64_t d) {
  return n * d >= SC_PAR_GRAIN ? sc_get_num_threads() : 1;
}

sc_tensor *sc_bernoulli_log_prob(sc_tensor *l0, sc_tensor *x0) {
  char b1[96], b2[96];
  if (l0->ndim != 2 || !sc_same_shape(l0, x0) || l0->dtype != x0->dtype) {
    sc_set_error("bernoulli_log_prob: logits %s (%s) and data %s (%s) must be [N, D] of one "
                 "shape and dtype", sc_shape_str(l0, b1, sizeof b1), sc_dtype_name(l0->dtype),
                 sc_shape_str(x0, b2, sizeof b2), sc_dtype_name(x0->dtype));
    return NULL;
  }
  sc_tensor *l = sc_contiguous(l0), *x = l ? sc_contiguous(x0) : NULL;
  int64_t n = l0->shape[0], ys[1] = {n};
  sc_tensor *y = x ? sc_empty(1, ys, l0->dtype) : NULL;
  if (y) {
    bern_job j = {sc_data(l), sc_data(x), NULL, sc_data(y), NULL, NULL, l0->shape[1]};
    sc_parallel_for(bern_threads(n, j.d), n,
                    l0->dtype == SC_FLOAT64 ? bern_rows_double : bern_rows_float, &j);
  }
  sc_release(l);
  sc_release(x);
  if (!y) return NULL;
  sc_tensor *in[2] = {l0, x0};
  sc_node *nd;
  if (sc_record(SC_OP_bernoulli_log_prob, y, 2, in, &nd) ||
      (nd && (sc_save(nd, l0, 0) || sc_save(nd, x0, 0)))) {
    sc_release(y);
    return NULL;
  }
  return y;
}

/* g [N] as a column [N, 1], to broadcast over a row */
static sc_tensor *bern_column(sc_tensor *g) {
  int64_t s[2] = {g->shape[0], 1};
  return sc_reshape(g, 2, s);
}

int sc_bw_bernoulli_log_prob(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  sc_tensor *l = sc_unpack(n, 0), *x = l ? sc_unpack(n, 1) : NULL;
  sc_tensor *gc = x ? bern_column(g) : NULL;
  int rc = gc ? 0 : -1;
  if (rc == 0 && need[0]) { /* g (x - sigmoid(l)) */
    sc_tensor *s = sc_unary(SC_SIGMOID, l), *d = s ? sc_binary(SC_SUB, x, s) : NULL;
    if (!(gin[0] = d ? sc_binary(SC_MUL, gc, d) : NULL)) rc = -1;
    sc_release(s);
    sc_release(d);
  }
  if (rc == 0 && need[1] && !(gin[1] = sc_binary(SC_MUL, gc, l))) rc = -1; /* g l */
  sc_release(gc);
  sc_release(l);
  sc_release(x);
  return rc;
}

int sc_bw_fused_bernoulli_log_prob(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  sc_tensor *l0 = sc_unpack(n, 0), *x0 = l0 ? sc_unpack(n, 1) : NULL;
  sc_tensor *l = x0 ? sc_contiguous(l0) : NULL, *x = l ? sc_contiguous(x0) : NULL;
  sc_tensor *gc = x ? sc_contiguous(g) : NULL;
  int rc = gc ? 0 : -1;
  if (rc == 0 && need[0] && !(gin[0] = sc_empty(2, l->shape, l->dtype))) rc = -1;
  if (rc == 0 && need[1] && !(gin[1] = sc_empty(2, l->shape, l->dtype))) rc = -1;
  if (rc == 0) {
    int64_t rows = l->shape[0];
    bern_job j = {sc_data(l), sc_data(x), sc_data(gc), NULL, need[0] ? sc_data(gin[0]) : NULL,
                  need[1] ? sc_data(gin[1]) : NULL, l->shape[1]};
    sc_parallel_for(bern_threads(rows, j.d), rows,
                    l->dtype == SC_FLOAT64 ? bern_grad_double : bern_grad_float, &j);
  }
  sc_release(gc);
  sc_release(l);
  sc_release(x);
  sc_release(l0);
  sc_release(x0);
  return rc;
}
