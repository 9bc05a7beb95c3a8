/* scorch core: strided iteration, broadcasting and the thread count. */
#include "internal.h"
#include "pool.h"

#include <string.h>

/* In libopenblas, which the core links; declared here because <cblas.h>
   may be netlib's (Debian's alternatives), which does not declare it. */
void openblas_set_num_threads(int num_threads);
/* Stops the worker threads of OpenBLAS's pthreads build (they are never
   used: OpenBLAS runs single-threaded here).  Weak: other builds of the
   library may not have it. */
int blas_thread_shutdown_(void) __attribute__((weak));

/* ---- threads ---------------------------------------------------------------- */

static int num_threads = 1;

/* One pool (pool.c): OpenBLAS stays single-threaded and sc_gemm splits
   large products over the pool's workers (gemm.c). */
void sc_set_num_threads(int n) {
  static int blas_stopped = 0;
  if (n < 1) n = 1;
  num_threads = n;
  openblas_set_num_threads(1);
  /* started when the library loaded, they would spin for about 0.1 s of
     CPU before sleeping (bin/scorch avoids starting them at all) */
  if (!blas_stopped && blas_thread_shutdown_) blas_thread_shutdown_();
  blas_stopped = 1;
}

int sc_get_num_threads(void) { return num_threads; }

/* ---- broadcasting ------------------------------------------------------------ */

int sc_broadcast_shape(const char *fn, int na, const int64_t *sa, int nb,
                       const int64_t *sb, int *nd, int64_t *out) {
  int n = na > nb ? na : nb;
  for (int k = 0; k < n; k++) {
    int da = na - n + k, db = nb - n + k;
    int64_t x = da >= 0 ? sa[da] : 1, y = db >= 0 ? sb[db] : 1;
    if (x != y && x != 1 && y != 1) {
      char b1[96], b2[96];
      sc_set_error("%s: shapes %s and %s cannot be broadcast", fn,
                   sc_dims_str(na, sa, b1, sizeof b1),
                   sc_dims_str(nb, sb, b2, sizeof b2));
      return -1;
    }
    out[k] = x == 1 ? y : x;
  }
  *nd = n;
  return 0;
}

/* ---- strided loops ------------------------------------------------------------ */

#define MAXOP 4

typedef struct {
  int nop, ndim;
  int64_t shape[SC_MAX_DIMS];
  int64_t stride[MAXOP][SC_MAX_DIMS]; /* bytes */
  char *base[MAXOP];
  sc_loop_fn fn;
  void *ctx;
} loop_plan;

/* Drops size-1 dims and merges dims that are contiguous for every operand,
   so a dense tensor becomes one long run. */
static void plan_coalesce(loop_plan *p) {
  int nd = 0;
  for (int d = 0; d < p->ndim; d++) {
    if (p->shape[d] == 1) continue;
    if (nd > 0) {
      int ok = 1;
      for (int k = 0; k < p->nop; k++)
        if (p->stride[k][nd - 1] != p->stride[k][d] * p->shape[d]) ok = 0;
      if (ok) {
        p->shape[nd - 1] *= p->shape[d];
        for (int k = 0; k < p->nop; k++) p->stride[k][nd - 1] = p->stride[k][d];
        continue;
      }
    }
    p->shape[nd] = p->shape[d];
    for (int k = 0; k < p->nop; k++) p->stride[k][nd] = p->stride[k][d];
    nd++;
  }
  p->ndim = nd;
}

/* A run shorter than this along the innermost dimension is not worth a
   call of fn per run (below). */
#define SHORT_RUN 16

/* When the innermost run is short (the 2 or 3 values of a row of points
   written into a wider tensor, as cat does) fn is called once per row, and
   the call and the pointer arithmetic around it cost more than the few
   elements: run along the longest dimension instead, so fn gets long
   strided runs.  The elements are independent, so the order does not
   change a result, except where the output overlaps itself (a zero
   stride), which keeps its order.  Serial runs only: split across threads
   in this order, two threads would write into the same cache lines. */
static void plan_long_inner(loop_plan *p) {
  int nd = p->ndim, last = nd - 1, best = last;
  if (nd < 2 || p->shape[last] >= SHORT_RUN) return;
  for (int d = 0; d < last; d++) {
    if (p->stride[0][d] == 0) return;
    if (p->shape[d] > p->shape[best]) best = d;
  }
  if (best == last || p->stride[0][last] == 0) return;
  int64_t t = p->shape[best];
  p->shape[best] = p->shape[last];
  p->shape[last] = t;
  for (int k = 0; k < p->nop; k++) {
    t = p->stride[k][best];
    p->stride[k][best] = p->stride[k][last];
    p->stride[k][last] = t;
  }
}

/* Runs the flat element range [start, end) row by row. */
static void plan_run(const loop_plan *p, int64_t start, int64_t end);

static void foreach_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  (void)tid;
  plan_run(ctx, lo, hi);
}

static void plan_run(const loop_plan *p, int64_t start, int64_t end) {
  int nd = p->ndim;
  if (nd == 0) {
    char *ptr[MAXOP];
    int64_t st[MAXOP] = {0};
    for (int k = 0; k < p->nop; k++) ptr[k] = p->base[k];
    if (start < end) p->fn(1, ptr, st, p->ctx);
    return;
  }
  int64_t idx[SC_MAX_DIMS], rem = start;
  for (int d = nd - 1; d >= 0; d--) {
    idx[d] = rem % p->shape[d];
    rem /= p->shape[d];
  }
  int64_t inner[MAXOP];
  for (int k = 0; k < p->nop; k++) inner[k] = p->stride[k][nd - 1];
  int64_t pos = start;
  while (pos < end) {
    char *ptr[MAXOP];
    for (int k = 0; k < p->nop; k++) {
      char *q = p->base[k];
      for (int d = 0; d < nd; d++) q += idx[d] * p->stride[k][d];
      ptr[k] = q;
    }
    int64_t n = p->shape[nd - 1] - idx[nd - 1];
    if (n > end - pos) n = end - pos;
    p->fn(n, ptr, inner, p->ctx);
    pos += n;
    idx[nd - 1] += n;
    for (int d = nd - 1; d > 0 && idx[d] == p->shape[d]; d--) {
      idx[d] = 0;
      idx[d - 1]++;
    }
  }
}

/* Dense operands (or stride-0 scalars) of a small op skip the planning. */
static int run_dense(int nop, sc_tensor **op, sc_loop_fn fn, void *ctx) {
  char *ptr[MAXOP];
  int64_t st[MAXOP];
  for (int k = 0; k < nop; k++) {
    const sc_tensor *t = op[k];
    int zero = 1;
    for (int d = 0; d < t->ndim; d++) zero &= t->stride[d] == 0;
    if (zero && k > 0)
      st[k] = 0;
    else if (sc_is_contiguous(t))
      st[k] = (int64_t)sc_dtype_size(t->dtype);
    else
      return 0;
    ptr[k] = sc_data(t);
  }
  fn(op[0]->numel, ptr, st, ctx);
  return 1;
}

void sc_foreach(int nop, sc_tensor **op, sc_loop_fn fn, void *ctx) {
  if (op[0]->numel > 0 && (op[0]->numel < SC_PAR_GRAIN || num_threads <= 1) &&
      run_dense(nop, op, fn, ctx))
    return;
  loop_plan p;
  p.nop = nop;
  p.ndim = op[0]->ndim;
  p.fn = fn;
  p.ctx = ctx;
  memcpy(p.shape, op[0]->shape, sizeof p.shape);
  for (int k = 0; k < nop; k++) {
    int64_t es = (int64_t)sc_dtype_size(op[k]->dtype);
    p.base[k] = sc_data(op[k]);
    for (int d = 0; d < p.ndim; d++) p.stride[k][d] = op[k]->stride[d] * es;
  }
  int64_t total = op[0]->numel;
  if (total == 0) return;
  plan_coalesce(&p);
  int nt = num_threads;
  if (nt <= 1 || total < SC_PAR_GRAIN) {
    plan_long_inner(&p);
    plan_run(&p, 0, total);
    return;
  }
  /* elementwise results do not depend on how the range is split */
  sc_parallel_for(nt, total, foreach_part, &p);
}
