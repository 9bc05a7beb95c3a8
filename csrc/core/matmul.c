/*
 * scorch core: matrix products through OpenBLAS.  Transposed views reach
 * gemm as transpose flags, never as copies; batch dims broadcast.
 */
#include "autograd.h"
#include "internal.h"
#include "pool.h"
#include "smallgemm.h"

#include <cblas.h>
#include <string.h>

/* How gemm can read an r x c matrix with element strides (sr, sc):
   row-major as is, or as the transpose of a row-major matrix. */
static int blas_layout(int64_t r, int64_t c, int64_t sr, int64_t sc,
                       CBLAS_TRANSPOSE *tr, int64_t *ld) {
  int64_t mc = c > 1 ? c : 1, mr = r > 1 ? r : 1;
  if ((sc == 1 || c == 1) && (r == 1 || sr >= mc)) {
    *tr = CblasNoTrans;
    *ld = r == 1 ? mc : sr;
    return 1;
  }
  if ((sr == 1 || r == 1) && (c == 1 || sc >= mr)) {
    *tr = CblasTrans;
    *ld = c == 1 ? mr : sc;
    return 1;
  }
  return 0;
}

/* A contiguous copy when gemm cannot read t's last two dims directly. */
static sc_tensor *blas_ready(sc_tensor *t) {
  int nd = t->ndim;
  CBLAS_TRANSPOSE tr;
  int64_t ld;
  if (blas_layout(t->shape[nd - 2], t->shape[nd - 1], t->stride[nd - 2],
                  t->stride[nd - 1], &tr, &ld))
    return sc_retain(t);
  sc_tensor *c = sc_empty(t->ndim, t->shape, t->dtype);
  if (c && sc_copy_(c, t)) {
    sc_release(c);
    return NULL;
  }
  return c;
}

/* y = a b + beta y on raw row-major buffers of the given dtype */
static void gemm_raw(sc_dtype dt, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t n, int64_t m,
                     int64_t k, const void *a, int64_t lda, const void *b, int64_t ldb,
                     double beta, void *y, int64_t ldy) {
  sc_gemm(dt, ta == CblasTrans, tb == CblasTrans, n, m, k, a, lda, b, ldb, beta, y, ldy);
}

/* y = a b + beta y for operands gemm can read in place (blas_ready); with
   h (contiguous, y's shape; beta 0) the product leaves as (a b) * silu'(h)
   (sc_gemm_silu) */
static void gemm_ep(const sc_tensor *a, int64_t oa, const sc_tensor *b, int64_t ob,
                    sc_tensor *y, int64_t oy, double beta, const sc_tensor *h) {
  int na = a->ndim, nb = b->ndim;
  int64_t n = a->shape[na - 2], k = a->shape[na - 1], m = b->shape[nb - 1];
  CBLAS_TRANSPOSE ta, tb;
  int64_t lda, ldb;
  blas_layout(n, k, a->stride[na - 2], a->stride[na - 1], &ta, &lda);
  blas_layout(k, m, b->stride[nb - 2], b->stride[nb - 1], &tb, &ldb);
  size_t es = sc_dtype_size(y->dtype);
  const char *ap = (const char *)sc_data(a) + oa * (int64_t)es;
  const char *bp = (const char *)sc_data(b) + ob * (int64_t)es;
  char *yp = (char *)sc_data(y) + oy * (int64_t)es;
  if (h)
    sc_gemm_silu(y->dtype, ta == CblasTrans, tb == CblasTrans, n, m, k, ap, lda, bp, ldb, yp,
                 m > 0 ? m : 1, sc_data(h), m > 0 ? m : 1);
  else
    gemm_raw(y->dtype, ta, tb, n, m, k, ap, lda, bp, ldb, beta, yp, m > 0 ? m : 1);
}

static void gemm_beta(const sc_tensor *a, int64_t oa, const sc_tensor *b,
                      int64_t ob, sc_tensor *y, int64_t oy, double beta) {
  gemm_ep(a, oa, b, ob, y, oy, beta, NULL);
}

static void gemm(const sc_tensor *a, int64_t oa, const sc_tensor *b, int64_t ob,
                 sc_tensor *y, int64_t oy) {
  gemm_beta(a, oa, b, ob, y, oy, 0.0);
}

/* Batched product of tensors with at least two dims each. */
static sc_tensor *matmul_kernel(sc_tensor *a0, sc_tensor *b0) {
  int na = a0->ndim, nb = b0->ndim;
  if (a0->shape[na - 1] != b0->shape[nb - 2]) goto bad;
  int nbat;
  int64_t bshape[SC_MAX_DIMS];
  if (sc_broadcast_shape("matmul", na - 2, a0->shape, nb - 2, b0->shape, &nbat, bshape))
    goto bad;
  if (nbat + 2 > SC_MAX_DIMS) goto bad;
  int64_t n = a0->shape[na - 2], k = a0->shape[na - 1], m = b0->shape[nb - 1];
  int64_t ys[SC_MAX_DIMS];
  memcpy(ys, bshape, sizeof(int64_t) * (size_t)nbat);
  ys[nbat] = n;
  ys[nbat + 1] = m;
  sc_tensor *y = k == 0 ? sc_zeros(nbat + 2, ys, a0->dtype) : sc_empty(nbat + 2, ys, a0->dtype);
  if (!y) return NULL;
  if (k == 0 || y->numel == 0) return y;
  sc_tensor *a = blas_ready(a0), *b = a ? blas_ready(b0) : NULL;
  if (!b) {
    sc_release(a);
    sc_release(y);
    return NULL;
  }
  int64_t nbatch = sc_prod(bshape, 0, nbat);
  for (int64_t i = 0; i < nbatch; i++) {
    /* offsets of batch i in a and b, with broadcast dims at stride 0 */
    int64_t oa = 0, ob = 0, rem = i;
    for (int d = nbat - 1; d >= 0; d--) {
      int64_t idx = rem % bshape[d];
      rem /= bshape[d];
      int da = d - (nbat - (na - 2)), db = d - (nbat - (nb - 2));
      if (da >= 0 && a->shape[da] != 1) oa += idx * a->stride[da];
      if (db >= 0 && b->shape[db] != 1) ob += idx * b->stride[db];
    }
    gemm(a, oa, b, ob, y, i * n * m);
  }
  sc_release(a);
  sc_release(b);
  return y;
bad: {
  char b1[96], b2[96];
  sc_set_error("matmul: shapes %s and %s do not match",
               sc_shape_str(a0, b1, sizeof b1), sc_shape_str(b0, b2, sizeof b2));
  return NULL;
}
}

static sc_tensor *matmul_nd(sc_tensor *a, sc_tensor *b) {
  sc_tensor *y = matmul_kernel(a, b);
  if (!y) return NULL;
  sc_tensor *in[2] = {a, b};
  sc_node *n;
  if (sc_record(SC_OP_matmul, y, 2, in, &n) ||
      (n && (sc_save(n, a, 0) || sc_save(n, b, 0)))) {
    sc_release(y);
    return NULL;
  }
  return y;
}

sc_tensor *sc_matmul(sc_tensor *a, sc_tensor *b) {
  char b1[96], b2[96];
  if (a->dtype != b->dtype) {
    sc_set_error("matmul: dtypes %s and %s do not match",
                 sc_dtype_name(a->dtype), sc_dtype_name(b->dtype));
    return NULL;
  }
  if (a->ndim == 0 || b->ndim == 0) {
    sc_set_error("matmul: shapes %s and %s: both arguments need at least one "
                 "dimension", sc_shape_str(a, b1, sizeof b1),
                 sc_shape_str(b, b2, sizeof b2));
    return NULL;
  }
  if (a->ndim >= 2 && b->ndim >= 2) return matmul_nd(a, b);
  /* vectors become matrices and the added dims are dropped again */
  sc_tensor *a2 = a->ndim == 1 ? sc_unsqueeze(a, 0) : sc_retain(a);
  sc_tensor *b2m = a2 ? (b->ndim == 1 ? sc_unsqueeze(b, 1) : sc_retain(b)) : NULL;
  sc_tensor *y = b2m ? matmul_nd(a2, b2m) : NULL;
  sc_release(a2);
  sc_release(b2m);
  if (y && b->ndim == 1) {
    sc_tensor *q = sc_squeeze(y, y->ndim - 1);
    sc_release(y);
    y = q;
  }
  if (y && a->ndim == 1) {
    sc_tensor *q = sc_squeeze(y, y->ndim - (b->ndim == 1 ? 1 : 2));
    sc_release(y);
    y = q;
  }
  return y;
}

int sc_bw_matmul(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  sc_tensor *a = sc_unpack(n, 0), *b = a ? sc_unpack(n, 1) : NULL;
  int rc = b ? 0 : -1;
  if (rc == 0 && need[0]) { /* g b^T, summed over broadcast batch dims */
    sc_tensor *bt = sc_transpose(b, b->ndim - 2, b->ndim - 1);
    sc_tensor *p = bt ? matmul_nd(g, bt) : NULL;
    sc_release(bt);
    if (p && !sc_same_shape(p, a)) {
      sc_tensor *s = sc_sum_to(p, a->ndim, a->shape);
      sc_release(p);
      p = s;
    }
    if (!(gin[0] = p)) rc = -1;
  }
  if (rc == 0 && need[1]) { /* a^T g */
    sc_tensor *at = sc_transpose(a, a->ndim - 2, a->ndim - 1);
    sc_tensor *p = at ? matmul_nd(at, g) : NULL;
    sc_release(at);
    if (p && !sc_same_shape(p, b)) {
      sc_tensor *s = sc_sum_to(p, b->ndim, b->shape);
      sc_release(p);
      p = s;
    }
    if (!(gin[1] = p)) rc = -1;
  }
  sc_release(a);
  sc_release(b);
  return rc;
}

/* ---- linear: x W^T + b in one op ----------------------------------------------- */

/* The bias is written into the output first and gemm adds the product onto
   it (beta = 1), as BLAS's addmm does: one pass over the output fewer than
   a product followed by a broadcast add. */
typedef struct {
  CBLAS_TRANSPOSE ta, tb;
  int64_t lda, ldb, n, k, m, rows;
  size_t es;
  const char *xd, *wd, *bd;
  char *yd;
  sc_tensor *y;
} silu_job;

static void silu_tiles_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  (void)tid;
  const silu_job *j = ctx;
  int64_t m = j->m, rows = j->rows;
  size_t es = j->es;
  for (int64_t t = lo; t < hi; t++) {
    int64_t r0 = t * rows, r = r0 + rows <= j->n ? rows : j->n - r0;
    /* row r0 of x: r0 rows down, or r0 columns along when stored transposed */
    const char *xt = j->xd + (size_t)(j->ta == CblasNoTrans ? r0 * j->lda : r0) * es;
    /* the bias laid into the tile first, gemm adding to it (beta = 1):
       OpenBLAS would otherwise spend a pass zeroing the tile for beta = 0 */
    char *yt = j->yd + (size_t)(r0 * m) * es;
    for (int64_t i = 0; i < r; i++) {
      if (j->bd) memcpy(yt + (size_t)(i * m) * es, j->bd, (size_t)m * es);
      else memset(yt + (size_t)(i * m) * es, 0, (size_t)m * es);
    }
    if (j->k > 0) gemm_raw(j->y->dtype, j->ta, j->tb, r, m, j->k, xt, j->lda, j->wd, j->ldb, 1.0, yt, m);
    sc_silu_rows_(j->y, r0, r0 + r);
  }
}

/* silu(x W^T + b) by tiles of rows: each tile's product is finished by the
   bias and the SiLU while it is still in L2 (a whole [10000, 128] product
   would have to come back from L3).  Tiles are fixed by the shapes, so the
   numbers do not depend on the thread count; with several threads each
   takes whole tiles. */
static void linear_silu_tiles(const sc_tensor *xa, const sc_tensor *wa, const sc_tensor *b,
                              sc_tensor *y) {
  int64_t n = xa->shape[0], k = xa->shape[1], m = wa->shape[1];
  if (n == 0 || m == 0) return;
  CBLAS_TRANSPOSE ta, tb;
  int64_t lda, ldb;
  blas_layout(n, k, xa->stride[0], xa->stride[1], &ta, &lda);
  blas_layout(k, m, wa->stride[0], wa->stride[1], &tb, &ldb);
  int64_t rows = 32768 / m; /* about 128 KB of float output per tile */
  rows = rows < 16 ? 16 : rows > 1024 ? 1024 : rows;
  int64_t tiles = (n + rows - 1) / rows;
  int nt = sc_get_num_threads();
  if (nt > tiles) nt = (int)tiles;
  size_t es = sc_dtype_size(y->dtype);
  const char *xd = sc_data(xa), *wd = sc_data(wa), *bd = b ? sc_data(b) : NULL;
  char *yd = sc_data(y);
  silu_job j = {ta, tb, lda, ldb, n, k, m, rows, es, xd, wd, bd, yd, y};
  sc_parallel_for(nt, tiles, silu_tiles_part, &j);
}

/* Whether a linear layer records nothing for backward: what the fused SiLU
   path and, under matmul precision "medium", the bfloat16 product need. */
static int no_graph(sc_tensor *x, sc_tensor *w, sc_tensor *b) {
  return !(sc_grad_enabled() && (x->requires_grad || w->requires_grad || (b && b->requires_grad)));
}

static sc_tensor *linear_kernel(sc_tensor *x, sc_tensor *w, sc_tensor *b, int fuse_silu) {
  int64_t n = x->shape[0], out = w->shape[0];
  int64_t ys[2] = {n, out};
  sc_tensor *y = sc_empty(2, ys, x->dtype);
  if (!y) return NULL;
  if (x->dtype == SC_FLOAT32 && sc_small_linear_ok(x->shape[1], out)) {
    /* narrow layers: scorch's own kernel, fused or not, the same numbers;
       in bfloat16 under matmul precision "medium" when nothing is recorded */
    if ((sc_matmul_bf16(-1) && no_graph(x, w, b) ? sc_small_linear_bf16 : sc_small_linear_f32)(
            n, out, x->shape[1], sc_data(x), x->stride[0], x->stride[1], sc_data(w),
            w->stride[0], w->stride[1], b ? sc_data(b) : NULL, b ? b->stride[0] : 0, sc_data(y),
            fuse_silu ? SC_ACT_SILU : SC_ACT_NONE, sc_get_num_threads())) {
      sc_set_error("linear: out of memory packing a [%lld, %lld] weight",
                   (long long)out, (long long)x->shape[1]);
      sc_release(y);
      return NULL;
    }
    return y;
  }
  sc_tensor *wt = sc_raw_view(w, 2, (int64_t[]){w->shape[1], out},
                              (int64_t[]){w->stride[1], w->stride[0]}, w->offset);
  sc_tensor *xa = wt ? blas_ready(x) : NULL;
  sc_tensor *wa = xa ? blas_ready(wt) : NULL;
  int rc = wa ? 0 : -1;
  if (rc == 0 && fuse_silu) {
    sc_tensor *bc = b ? sc_contiguous(b) : NULL;
    if (b && !bc) rc = -1;
    else linear_silu_tiles(xa, wa, bc, y);
    sc_release(bc);
  } else {
    if (rc == 0 && b) rc = sc_copy_(y, b);
    if (rc == 0 && y->numel > 0) {
      if (x->shape[1] == 0)
        rc = b ? 0 : sc_fill_(y, 0);
      else
        gemm_beta(xa, 0, wa, 0, y, 0, b ? 1.0 : 0.0);
    }
  }
  sc_release(wt);
  sc_release(xa);
  sc_release(wa);
  if (rc) {
    sc_release(y);
    return NULL;
  }
  return y;
}

static int linear_check(sc_tensor *x, sc_tensor *w, sc_tensor *b) {
  char b1[96], b2[96];
  if (x->dtype != w->dtype || (b && b->dtype != w->dtype)) {
    sc_set_error("linear: dtypes of input (%s), weight (%s) and bias do not match",
                 sc_dtype_name(x->dtype), sc_dtype_name(w->dtype));
    return -1;
  }
  if (w->ndim != 2 || x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1] ||
      (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))) {
    sc_set_error("linear: input %s, weight %s%s%s do not match (weight is "
                 "[out,in], bias [out])", sc_shape_str(x, b1, sizeof b1),
                 sc_shape_str(w, b2, sizeof b2), b ? " and bias of " : "",
                 b ? (b->ndim == 1 ? "a vector" : "wrong rank") : "");
    return -1;
  }
  return 0;
}

sc_tensor *sc_linear(sc_tensor *x, sc_tensor *w, sc_tensor *b) {
  if (linear_check(x, w, b)) return NULL;
  if (x->ndim != 2) { /* other ranks: the composite, same gradients */
    sc_tensor *wt = sc_transpose(w, 0, 1);
    sc_tensor *y = wt ? sc_matmul(x, wt) : NULL;
    sc_release(wt);
    if (y && b) {
      sc_tensor *z = sc_binary(SC_ADD, y, b);
      sc_release(y);
      y = z;
    }
    return y;
  }
  sc_tensor *y = linear_kernel(x, w, b, 0);
  if (!y) return NULL;
  sc_tensor *in[3] = {x, w, b};
  sc_node *n;
  if (sc_record(SC_OP_linear, y, b ? 3 : 2, in, &n) ||
      (n && (sc_save(n, x, 0) || sc_save(n, w, 0)))) {
    sc_release(y);
    return NULL;
  }
  return y;
}

sc_tensor *sc_linear_silu(sc_tensor *x, sc_tensor *w, sc_tensor *b) {
  if (linear_check(x, w, b)) return NULL;
  if (!no_graph(x, w, b) || x->ndim != 2) {
    sc_tensor *y = sc_linear(x, w, b);
    sc_tensor *z = y ? sc_unary(SC_SILU, y) : NULL;
    sc_release(y);
    return z;
  }
  return linear_kernel(x, w, b, 1);
}

/* y = silu(h) W^T + b as one op: the SiLU in front of a Linear, which is
   how an MLP's hidden layers pair up (Linear, then SiLU + Linear, ...).
   The node saves h and W only: a = silu(h) lives for the forward product.
   Its plain backward gives dh = (g W) * silu'(h) with the factor applied in
   the product's epilogue (sc_gemm_silu), so g W is never written out and
   read back; dW = g^T silu(h) with silu applied as the product packs h
   (sc_gemm_ex's bsilu), so a is not kept either (an MLP's saved activations
   halve, and with them the step's memory traffic); db = sum of g as for a
   Linear.  The numbers are those of the SiLU op followed by a Linear, to
   the bit (spec/fused_spec.lua). */
sc_tensor *sc_silu_linear(sc_tensor *h, sc_tensor *w, sc_tensor *b) {
  if (linear_check(h, w, b)) return NULL;
  if (h->ndim != 2) { /* other ranks: the two ops */
    sc_tensor *a = sc_unary(SC_SILU, h);
    sc_tensor *y = a ? sc_linear(a, w, b) : NULL;
    sc_release(a);
    return y;
  }
  int prev = sc_set_grad_enabled(0);
  sc_tensor *a = sc_unary(SC_SILU, h);
  sc_set_grad_enabled(prev);
  sc_tensor *y = a ? linear_kernel(a, w, b, 0) : NULL;
  sc_tensor *in[3] = {h, w, b};
  sc_node *n;
  if (y && (sc_record(SC_OP_silu_linear, y, b ? 3 : 2, in, &n) ||
            (n && (sc_save(n, h, 0) || sc_save(n, w, 0))))) {
    sc_release(y);
    y = NULL;
  }
  sc_release(a);
  return y;
}

/* A linear layer's parameter gradients from its output gradient g and its
   input x: W by g^T x, the bias by g summed to its shape */
static int linear_param_grads(sc_node *n, sc_tensor *g, sc_tensor *x, const int *need,
                              sc_tensor **gin) {
  if (need[1]) {
    sc_tensor *gt = sc_transpose(g, 0, 1);
    gin[1] = gt ? sc_matmul(gt, x) : NULL;
    sc_release(gt);
    if (!gin[1]) return -1;
  }
  if (n->nin > 2 && need[2] && !(gin[2] = sc_sum_to(g, n->edges[2].ndim, n->edges[2].shape)))
    return -1;
  return 0;
}

int sc_bw_silu_linear(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  sc_tensor *h = sc_unpack(n, 0), *w = h ? sc_unpack(n, 1) : NULL;
  int rc = w ? 0 : -1;
  if (rc == 0 && need[0]) { /* (g W) * silu'(h) */
    sc_tensor *gw = sc_matmul(g, w), *d = gw ? sc_unary(SC_SILU_GRAD, h) : NULL;
    if (!(gin[0] = d ? sc_binary(SC_MUL, gw, d) : NULL)) rc = -1;
    sc_release(gw);
    sc_release(d);
  }
  /* the weight's from silu(h) recorded anew, for higher orders */
  sc_tensor *a = rc == 0 && need[1] ? sc_unary(SC_SILU, h) : NULL;
  if (rc == 0 && ((need[1] && !a) || linear_param_grads(n, g, a, need, gin))) rc = -1;
  sc_release(a);
  sc_release(h);
  sc_release(w);
  return rc;
}

/* dW = g^T silu(h) for the fused backward, h contiguous [n, in], g [n, out]:
   silu applied as gemm512.c packs h, or (no AVX-512, float64, a
   matrix-vector shape) silu(h) made first and multiplied as a Linear's
   weight gradient is */
static sc_tensor *silu_weight_grad(sc_tensor *g, sc_tensor *hc) {
  int64_t out = g->shape[1], in = hc->shape[1], rows = g->shape[0];
  if (hc->dtype == SC_FLOAT32 && rows > 0) {
    sc_tensor *gt = sc_transpose(g, 0, 1), *ga = gt ? blas_ready(gt) : NULL;
    sc_release(gt);
    if (!ga) return NULL;
    CBLAS_TRANSPOSE ta;
    int64_t lda, ws[2] = {out, in};
    blas_layout(out, rows, ga->stride[0], ga->stride[1], &ta, &lda);
    sc_tensor *dw = sc_empty(2, ws, SC_FLOAT32);
    sc_gemm_extra x = {.bsilu = 1};
    int rc = !dw ? -1 : sc_gemm_ex(SC_FLOAT32, ta == CblasTrans, 0, out, in, rows, sc_data(ga),
                                   lda, sc_data(hc), in, 0.0, sc_data(dw), in, &x);
    sc_release(ga);
    if (rc == 0) return dw;
    sc_release(dw);
  }
  int prev = sc_set_grad_enabled(0);
  sc_tensor *a = sc_unary(SC_SILU, hc);
  sc_set_grad_enabled(prev);
  sc_tensor *gt = a ? sc_transpose(g, 0, 1) : NULL;
  sc_tensor *dw = gt ? sc_matmul(gt, a) : NULL;
  sc_release(gt);
  sc_release(a);
  return dw;
}

int sc_bw_fused_silu_linear(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  sc_tensor *h = sc_unpack(n, 0), *w = h ? sc_unpack(n, 1) : NULL;
  sc_tensor *hc = w ? sc_contiguous(h) : NULL;
  int rc = hc ? 0 : -1;
  if (rc == 0 && need[0]) { /* the product as sc_matmul(g, w) makes it, then the epilogue */
    int64_t ns[2] = {g->shape[0], w->shape[1]};
    sc_tensor *ga = blas_ready(g), *wa = ga ? blas_ready(w) : NULL;
    gin[0] = !wa ? NULL : g->shape[1] == 0 ? sc_zeros(2, ns, h->dtype) : sc_empty(2, ns, h->dtype);
    if (gin[0] && g->shape[1] > 0 && ns[0] > 0 && ns[1] > 0) gemm_ep(ga, 0, wa, 0, gin[0], 0, 0.0, hc);
    if (!gin[0]) rc = -1;
    sc_release(ga);
    sc_release(wa);
  }
  if (rc == 0 && need[1] && !(gin[1] = silu_weight_grad(g, hc))) rc = -1;
  int rest[3] = {need[0], 0, n->nin > 2 ? need[2] : 0};
  if (rc == 0 && linear_param_grads(n, g, NULL, rest, gin)) rc = -1;
  sc_release(h);
  sc_release(w);
  sc_release(hc);
  return rc;
}

/* Whether the chain can run block by block: float32 throughout, a
   [n, k] input, layers that fit each other and the narrow-layer kernel,
   and nothing to record. */
static int chain_fusable(sc_tensor *x, int nl, sc_tensor *const *w, sc_tensor *const *b) {
  if (nl < 2 || nl > SC_MLP_MAX_LAYERS || x->ndim != 2 || x->dtype != SC_FLOAT32) return 0;
  int grad = sc_grad_enabled() && x->requires_grad;
  int64_t k = x->shape[1];
  for (int l = 0; l < nl; l++) {
    if (w[l]->dtype != SC_FLOAT32 || w[l]->ndim != 2 || w[l]->shape[1] != k) return 0;
    if (b[l] && (b[l]->dtype != SC_FLOAT32 || b[l]->ndim != 1 || b[l]->shape[0] != w[l]->shape[0]))
      return 0;
    if (!sc_small_linear_ok(k, w[l]->shape[0])) return 0;
    grad = grad || (sc_grad_enabled() && (w[l]->requires_grad || (b[l] && b[l]->requires_grad)));
    k = w[l]->shape[0];
  }
  return !grad;
}

sc_tensor *sc_linear_chain(sc_tensor *x, int nl, sc_tensor *const *w, sc_tensor *const *b,
                           const int *silu) {
  if (chain_fusable(x, nl, w, b)) {
    int64_t dims[SC_MLP_MAX_LAYERS + 1], swm[SC_MLP_MAX_LAYERS], swk[SC_MLP_MAX_LAYERS],
        sb[SC_MLP_MAX_LAYERS];
    const float *wd[SC_MLP_MAX_LAYERS], *bd[SC_MLP_MAX_LAYERS];
    int act[SC_MLP_MAX_LAYERS];
    dims[0] = x->shape[1];
    for (int l = 0; l < nl; l++) {
      dims[l + 1] = w[l]->shape[0];
      wd[l] = sc_data(w[l]);
      swm[l] = w[l]->stride[0];
      swk[l] = w[l]->stride[1];
      bd[l] = b[l] ? sc_data(b[l]) : NULL;
      sb[l] = b[l] ? b[l]->stride[0] : 0;
      act[l] = silu[l] ? SC_ACT_SILU : SC_ACT_NONE;
    }
    int64_t ys[2] = {x->shape[0], dims[nl]};
    sc_tensor *y = sc_empty(2, ys, SC_FLOAT32);
    if (!y) return NULL;
    /* matmul precision "medium" lets the chain multiply in bfloat16 */
    if ((sc_matmul_bf16(-1) ? sc_small_mlp_bf16 : sc_small_mlp_f32)(
            x->shape[0], nl, dims, sc_data(x), x->stride[0], x->stride[1], wd, swm, swk, bd, sb,
            act, sc_data(y), sc_get_num_threads())) {
      sc_set_error("linear_chain: out of memory packing %d layers", nl);
      sc_release(y);
      return NULL;
    }
    return y;
  }
  sc_tensor *h = sc_retain(x);
  for (int l = 0; h && l < nl; l++) {
    sc_tensor *next = silu[l] ? sc_linear_silu(h, w[l], b[l]) : sc_linear(h, w[l], b[l]);
    sc_release(h);
    h = next;
  }
  return h;
}

int sc_bw_linear(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  sc_tensor *x = sc_unpack(n, 0), *w = x ? sc_unpack(n, 1) : NULL;
  int rc = w ? 0 : -1;
  if (rc == 0 && need[0] && !(gin[0] = sc_matmul(g, w))) rc = -1; /* g W */
  if (rc == 0 && linear_param_grads(n, g, x, need, gin)) rc = -1;
  sc_release(x);
  sc_release(w);
  return rc;
}
