/*
 * scorch core: symmetric eigendecomposition, moments and tiled k-NN
 * distances for sc.metrics (see linalg.h).
 *
 * Distances are GEMM tiles: -2 a b^T from sgemm, then |a|^2 + |b|^2 added
 * and the result clamped at 0 in the same pass that consumes the tile, so a
 * tile never leaves the cache and no [n, n] matrix exists.  Tiles are
 * TILE x TILE and fixed, whatever the thread count; each thread owns its
 * partial results (k smallest values, coverage flags) and they are merged
 * at the end by order-independent reductions, so 1 and 2 threads give the
 * same bits.  OpenBLAS runs single-threaded in this process (gemm.c), so
 * the threads here each call it on their own tiles.
 */
#include "linalg.h"

#include <cblas.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include "pool.h"
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "vmath.h"

/* LAPACK (inside libopenblas); gfortran passes the lengths of character
   arguments as trailing hidden arguments. */
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
                    double *w, double *work, const int *lwork, int *iwork, const int *liwork,
                    int *info, size_t jobz_len, size_t uplo_len);

/* Rows and columns of one distance tile: a multiple of 48 (gemm.c's row
   alignment) and 1 MB of float32, which stays in a core's L2. */
#define TILE 480

static void *scratch(size_t nbytes, const char *fn) {
  void *p = malloc(nbytes ? nbytes : 1);
  if (!p) sc_set_error("%s: out of memory (%zu bytes of scratch)", fn, nbytes);
  return p;
}

int sc_linalg_syevd(int64_t n, double *a, double *w, int vectors) {
  if (n < 1 || n > 46340) {
    sc_set_error("linalg_syevd: matrix size %lld is out of range", (long long)n);
    return -1;
  }
  int N = (int)n, lwork = -1, liwork = -1, info = 0, iwq = 0;
  double wq = 0;
  const char *jobz = vectors ? "V" : "N";
  dsyevd_(jobz, "U", &N, a, &N, w, &wq, &lwork, &iwq, &liwork, &info, 1, 1);
  if (info != 0) {
    sc_set_error("linalg_syevd: workspace query failed (info %d)", info);
    return -1;
  }
  lwork = (int)wq + 1;
  liwork = iwq + 1;
  double *work = scratch((size_t)lwork * sizeof(double), "linalg_syevd");
  int *iwork = work ? scratch((size_t)liwork * sizeof(int), "linalg_syevd") : NULL;
  if (!iwork) {
    free(work);
    return -1;
  }
  dsyevd_(jobz, "U", &N, a, &N, w, work, &lwork, iwork, &liwork, &info, 1, 1);
  free(work);
  free(iwork);
  if (info != 0) {
    sc_set_error("linalg_syevd: dsyevd did not converge (info %d) on a %dx%d matrix", info, N, N);
    return -1;
  }
  return 0;
}

static int all_finite(int64_t n, const double *x) {
  for (int64_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return 0;
  return 1;
}

/* A = V diag(w) V^T, so A^{1/2} B A^{1/2} = V D^{1/2} (V^T B V) D^{1/2} V^T
   has the eigenvalues of the symmetric M = D^{1/2} (V^T B V) D^{1/2}: the
   product is formed in A's eigenbasis, which saves two products and their
   rounding. */
int sc_linalg_trace_sqrt_product(int64_t n, const double *a, const double *b, double *out) {
  if (n < 1 || n > 46340) {
    sc_set_error("linalg_trace_sqrt_product: matrix size %lld is out of range", (long long)n);
    return -1;
  }
  if (!all_finite(n * n, a) || !all_finite(n * n, b)) {
    sc_set_error("linalg_trace_sqrt_product: a covariance holds NaN or infinite values");
    return -1;
  }
  size_t nn = (size_t)(n * n);
  double *e = scratch(3 * nn * sizeof(double) + 2 * (size_t)n * sizeof(double),
                      "linalg_trace_sqrt_product");
  if (!e) return -1;
  double *t = e + nn, *m = t + nn, *w = m + nn, *s = w + n;
  memcpy(e, a, nn * sizeof(double));
  if (sc_linalg_syevd(n, e, w, 1) != 0) {
    free(e);
    return -1;
  }
  /* rows of e are A's eigenvectors: V^T = e, so V^T B V = e B e^T */
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0, e, (int)n, b,
              (int)n, 0.0, t, (int)n);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)n, 1.0, t, (int)n, e,
              (int)n, 0.0, m, (int)n);
  /* A's eigenvalues within rounding of zero (n eps of the largest, the
     rank tolerance of numpy's matrix_rank) are zero: when A is singular
     (N < D) their square roots would add noise of order sqrt(eps) */
  double tol = (double)n * DBL_EPSILON * (w[n - 1] > 0 ? w[n - 1] : 0);
  for (int64_t i = 0; i < n; i++) s[i] = w[i] > tol ? sqrt(w[i]) : 0;
  /* symmetrise while scaling: both triangles from their mean */
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = i; j < n; j++) {
      double v = 0.5 * (m[i * n + j] + m[j * n + i]) * s[i] * s[j];
      m[i * n + j] = m[j * n + i] = v;
    }
  int rc = sc_linalg_syevd(n, m, w, 0);
  if (rc == 0) {
    /* only negatives are clamped here: a true eigenvalue of the product
       can lie below n eps of the largest (a full-rank d = 256 case has
       4e-12 of 4e3), and dropping it would cost more than its noise */
    double tr = 0;
    for (int64_t i = 0; i < n; i++) tr += w[i] > 0 ? sqrt(w[i]) : 0;
    *out = tr;
  }
  free(e);
  return rc;
}

/* Column blocks of the scatter matrix: block [c0, c1) computes the upper
   part C[0:c1, c0:c1] in one product, so the work is about half a full
   product and each block's call is the same at any thread count. */
#define MOMENT_BLOCK 64

typedef struct {
  const double *xc;
  double *scatter;
  int64_t n, d, nblocks;
} moment_job;

/* upper-triangle columns of block nblocks-1-i of xc^T xc */
static void moment_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  (void)tid;
  const moment_job *m = ctx;
  for (int64_t i = lo; i < hi; i++) {
    int64_t bi = m->nblocks - 1 - i, d = m->d;
    int64_t c0 = bi * MOMENT_BLOCK, c1 = c0 + MOMENT_BLOCK < d ? c0 + MOMENT_BLOCK : d;
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)c1, (int)(c1 - c0), (int)m->n, 1.0,
                m->xc, (int)d, m->xc + c0, (int)d, 0.0, m->scatter + c0, (int)d);
  }
}

int sc_linalg_moments(sc_dtype dt, int64_t n, int64_t d, const void *x, int64_t ldx,
                      double *mean, double *scatter) {
  if (n < 1 || d < 1 || ldx < d || n > INT_MAX || d > 46340) {
    sc_set_error("linalg_moments: bad sizes n = %lld, d = %lld", (long long)n, (long long)d);
    return -1;
  }
  double *xc = scratch((size_t)(n * d) * sizeof(double), "linalg_moments");
  if (!xc) return -1;
  for (int64_t i = 0; i < n; i++) {
    double *row = xc + i * d;
    if (dt == SC_FLOAT32) {
      const float *src = (const float *)x + i * ldx;
      for (int64_t j = 0; j < d; j++) row[j] = src[j];
    } else {
      memcpy(row, (const double *)x + i * ldx, (size_t)d * sizeof(double));
    }
  }
  for (int64_t j = 0; j < d; j++) mean[j] = 0;
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < d; j++) mean[j] += xc[i * d + j];
  for (int64_t j = 0; j < d; j++) mean[j] /= (double)n;
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < d; j++) xc[i * d + j] -= mean[j];
  int64_t nblocks = (d + MOMENT_BLOCK - 1) / MOMENT_BLOCK;
  int nt = sc_get_num_threads();
  if ((double)n * (double)d * (double)d < 4e6) nt = 1;
  /* the largest blocks first, handed out as threads free up */
  moment_job mj = {xc, scatter, n, d, nblocks};
  sc_parallel_dynamic(nt, nblocks, moment_part, &mj);
  for (int64_t i = 0; i < d; i++)
    for (int64_t j = i + 1; j < d; j++) scatter[j * d + i] = scatter[i * d + j];
  free(xc);
  return 0;
}

/* ---- tiled distances ------------------------------------------------------ */

/* Squared row norms, summed in double. */
static void row_norms(int64_t n, int64_t d, const float *x, float *out) {
  for (int64_t i = 0; i < n; i++) {
    double s = 0;
    for (int64_t j = 0; j < d; j++) s += (double)x[i * d + j] * x[i * d + j];
    out[i] = (float)s;
  }
}

/* g[r, c] = max(g[r, c] + na + nb[c], 0) for one row of a tile, where the
   tile holds -2 a.b; returns how many entries fall below t.  (One
   threshold only: an optional per-column array here became a masked load
   from a NULL base, which AMD cores run as a microcode assist, 65% of W8.) */
SC_DISPATCH
static int64_t finish_row(float *g, int64_t m, float na, const float *nb, float t) {
  int64_t hits = 0;
  for (int64_t c = 0; c < m; c++) {
    float v = g[c] + na + nb[c];
    v = v > 0 ? v : 0;
    g[c] = v;
    hits += v < t;
  }
  return hits;
}

SC_DISPATCH
static int64_t count_below(const float *g, int64_t m, const float *thr) {
  int64_t hits = 0;
  for (int64_t c = 0; c < m; c++) hits += g[c] < thr[c];
  return hits;
}

/* Inserts v into the ascending list top[0..k) if it is smaller than the
   last entry. */
static inline void topk_insert(float *top, int k, float v) {
  if (!(v < top[k - 1])) return;
  int i = k - 1;
  while (i > 0 && top[i - 1] > v) {
    top[i] = top[i - 1];
    i--;
  }
  top[i] = v;
}

/* One tile of -2 a b^T: rows [i0, i0 + mi), columns [j0, j0 + mj). */
static void tile_product(const float *a, int64_t i0, int64_t mi, const float *b, int64_t j0,
                         int64_t mj, int64_t d, float *g) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)mi, (int)mj, (int)d, -2.0f,
              a + i0 * d, (int)d, b + j0 * d, (int)d, 0.0f, g, (int)mj);
}

typedef struct {
  const float *x, *norms;
  float *top, *tiles;
  int64_t n, d, nb;
  size_t per;
  int k;
} knn_job;

/* tile pair p (pairs bi <= bj numbered row by row) into thread tid's k
   smallest */
static void knn_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  const knn_job *j = ctx;
  int64_t n = j->n, nb = j->nb;
  int k = j->k;
  const float *norms = j->norms;
  float *mytop = j->top + (size_t)tid * j->per, *g = j->tiles + (size_t)tid * (TILE * TILE + TILE);
  float *colthr = g + TILE * TILE;
  for (int64_t p = lo; p < hi; p++) {
    int64_t bi = 0, rem = p;
    while (rem >= nb - bi) rem -= nb - bi, bi++;
    int64_t bj = bi + rem;
    int64_t i0 = bi * TILE, j0 = bj * TILE;
    int64_t mi = n - i0 < TILE ? n - i0 : TILE, mj = n - j0 < TILE ? n - j0 : TILE;
    tile_product(j->x, i0, mi, j->x, j0, mj, j->d, g);
    for (int64_t c = 0; c < mj; c++) colthr[c] = mytop[(j0 + c) * k + k - 1];
    for (int64_t r = 0; r < mi; r++) {
      float *row = g + r * mj, *rt = mytop + (i0 + r) * k;
      if (finish_row(row, mj, norms[i0 + r], norms + j0, rt[k - 1]) > 0)
        for (int64_t c = 0; c < mj; c++)
          if (bi != bj || c != r) topk_insert(rt, k, row[c]);
      /* below the diagonal the same distances serve the columns' points */
      if (bi != bj && count_below(row, mj, colthr) > 0)
        for (int64_t c = 0; c < mj; c++)
          if (row[c] < colthr[c]) {
            float *ct = mytop + (j0 + c) * k;
            topk_insert(ct, k, row[c]);
            colthr[c] = ct[k - 1];
          }
    }
  }
}

int sc_linalg_knn_radii(int64_t n, int64_t d, const float *x, int k, float *r2) {
  if (k < 1 || n <= k || d < 1 || n > INT_MAX || d > INT_MAX) {
    sc_set_error("linalg_knn_radii: need more than k = %d points (got %lld of dimension %lld)", k,
                 (long long)n, (long long)d);
    return -1;
  }
  int64_t nb = (n + TILE - 1) / TILE, npairs = nb * (nb + 1) / 2;
  int nt = sc_get_num_threads();
  if (nt > npairs) nt = (int)npairs;
  if (sc_in_parallel()) nt = 1;
  size_t per = (size_t)n * (size_t)k;
  float *norms = scratch((size_t)n * sizeof(float), "linalg_knn_radii");
  float *top = norms ? scratch((size_t)nt * per * sizeof(float), "linalg_knn_radii") : NULL;
  float *tiles = top ? scratch((size_t)nt * (TILE * TILE + TILE) * sizeof(float), "linalg_knn_radii")
                     : NULL;
  if (!tiles) {
    free(norms);
    free(top);
    return -1;
  }
  row_norms(n, d, x, norms);
  for (size_t i = 0; i < (size_t)nt * per; i++) top[i] = INFINITY;
  /* tile pairs bi <= bj, numbered row by row; pair p -> (bi, bj) */
  knn_job kj = {x, norms, top, tiles, n, d, nb, per, k};
  sc_parallel_dynamic(nt, npairs, knn_part, &kj);
  /* merge: the k smallest of every thread's k smallest */
  for (int64_t i = 0; i < n; i++) {
    float *dst = top + i * k;
    for (int t = 1; t < nt; t++)
      for (int j = 0; j < k; j++) topk_insert(dst, k, top[(size_t)t * per + i * k + j]);
    r2[i] = dst[k - 1];
  }
  free(norms);
  free(top);
  free(tiles);
  return 0;
}

/* Per row of a fake-by-real tile: whether some entry is inside its real
   ball, marks on the real points inside this fake's ball, and the largest
   w / distance.  Division by at least FLT_MIN keeps a zero distance finite
   in the ratio's denominator. */
SC_DISPATCH
static int cover_row(const float *g, int64_t m, const float *r2r, float r2f, unsigned char *rin,
                     const float *w, float *best) {
  int inside = 0;
  for (int64_t c = 0; c < m; c++) {
    inside |= g[c] <= r2r[c];
    rin[c] |= g[c] <= r2f;
  }
  if (w) {
    float b = *best;
    for (int64_t c = 0; c < m; c++) {
      float v = w[c] / (g[c] > FLT_MIN ? g[c] : FLT_MIN);
      b = v > b ? v : b;
    }
    *best = b;
  }
  return inside;
}

typedef struct {
  const float *real, *fake, *r2_real, *r2_fake, *w_real, *nrm;
  float *tiles;
  unsigned char *flags, *fake_in;
  float *realism2;
  int64_t nr, nf, nbr, d;
} cover_job;

/* row block bi of fakes against every block of reals */
static void cover_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  const cover_job *j = ctx;
  int64_t nr = j->nr, nf = j->nf;
  float *g = j->tiles + (size_t)tid * TILE * TILE, *realism2 = j->realism2;
  unsigned char *rin = j->flags + (size_t)tid * nr, *fake_in = j->fake_in;
  for (int64_t bi = lo; bi < hi; bi++) {
    int64_t i0 = bi * TILE, mi = nf - i0 < TILE ? nf - i0 : TILE;
    for (int64_t r = 0; r < mi; r++) {
      fake_in[i0 + r] = 0;
      if (realism2) realism2[i0 + r] = 0;
    }
    for (int64_t bj = 0; bj < j->nbr; bj++) {
      int64_t j0 = bj * TILE, mj = nr - j0 < TILE ? nr - j0 : TILE;
      tile_product(j->fake, i0, mi, j->real, j0, mj, j->d, g);
      for (int64_t r = 0; r < mi; r++) {
        float *row = g + r * mj;
        finish_row(row, mj, j->nrm[nr + i0 + r], j->nrm + j0, 0.0f);
        fake_in[i0 + r] |= (unsigned char)cover_row(row, mj, j->r2_real + j0, j->r2_fake[i0 + r],
                                                    rin + j0, j->w_real && realism2 ? j->w_real + j0 : NULL,
                                                    realism2 ? realism2 + i0 + r : NULL);
      }
    }
  }
}

int sc_linalg_pr_cover(int64_t nr, int64_t nf, int64_t d, const float *real, const float *fake,
                       const float *r2_real, const float *r2_fake, const float *w_real,
                       unsigned char *fake_in, unsigned char *real_in, float *realism2) {
  if (nr < 1 || nf < 1 || d < 1 || nr > INT_MAX || nf > INT_MAX || d > INT_MAX) {
    sc_set_error("linalg_pr_cover: empty or oversized sets (%lld real, %lld fake, dimension %lld)",
                 (long long)nr, (long long)nf, (long long)d);
    return -1;
  }
  int64_t nbf = (nf + TILE - 1) / TILE, nbr = (nr + TILE - 1) / TILE;
  int nt = sc_get_num_threads();
  if (nt > nbf) nt = (int)nbf;
  if (sc_in_parallel()) nt = 1;
  float *nrm = scratch((size_t)(nr + nf) * sizeof(float), "linalg_pr_cover");
  unsigned char *flags = nrm ? scratch((size_t)nt * (size_t)nr, "linalg_pr_cover") : NULL;
  float *tiles = flags ? scratch((size_t)nt * TILE * TILE * sizeof(float), "linalg_pr_cover") : NULL;
  if (!tiles) {
    free(nrm);
    free(flags);
    return -1;
  }
  row_norms(nr, d, real, nrm);
  row_norms(nf, d, fake, nrm + nr);
  memset(flags, 0, (size_t)nt * (size_t)nr);
  /* each thread owns whole row blocks of fakes, so their results are
     written directly; the marks on reals are per thread and OR-ed */
  cover_job cj = {real, fake, r2_real, r2_fake, w_real, nrm, tiles, flags, fake_in, realism2,
                  nr, nf, nbr, d};
  sc_parallel_dynamic(nt, nbf, cover_part, &cj);
  for (int64_t i = 0; i < nr; i++) {
    unsigned char v = 0;
    for (int t = 0; t < nt; t++) v |= flags[(size_t)t * nr + i];
    real_in[i] = v;
  }
  free(nrm);
  free(flags);
  free(tiles);
  return 0;
}
