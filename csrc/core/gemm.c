/*
 * scorch core: every matrix product goes through sc_gemm.
 *
 * Who computes a block: for float32 on a CPU with AVX-512, the core's own
 * kernels (gemm512.c); otherwise, and for float64, OpenBLAS.  OpenBLAS picks
 * its kernels once, from the CPU or from OPENBLAS_CORETYPE (this project's
 * machine pins the 8-float Haswell ones), and on the few-hundred-wide
 * products of scorch's models gemm512.c ran 1.5-2x faster than it.
 *
 * One thread pool.  OpenBLAS is kept single-threaded for the life of the
 * process and a large product is split here, over scorch's own workers
 * (pool.c), into blocks of whole output rows.  Two pools (OpenBLAS's
 * pthreads and the kernels' workers) could not both wait by spinning: a
 * spinning worker of one took the core a thread of the other needed.  With
 * one pool the workers may spin between kernels, which is what small image
 * kernels need (waking a sleeping worker costs more than many of them).
 *
 * The split is by whole rows of the output, cut at multiples of 48.  Row
 * blocks only: OpenBLAS takes a row-major product as the column-major
 * c^T = b^T a^T, and its float32 kernels add up an element differently
 * depending on where it falls within the register block along c's columns
 * (a product of columns 0..31 did not match the same columns of a 333-wide
 * one), but along c's rows a block boundary at a multiple of the kernel's
 * row unroll (12 on this Zen machine's Haswell kernels; 4, 8 or 16 on
 * others) leaves every element's sum as it was.  48 is a multiple of all of
 * them, so the numbers do not depend on the thread count
 * (spec/gemm_spec.lua checks 1 against 2 threads bit for bit).  gemm512.c's
 * sums do not depend on an element's place at all, so its products are cut
 * at multiples of its 8-row register block instead.
 */
#include "internal.h"

#include <cblas.h>
#include "pool.h"
#include "gemm512.h"
#include "vmath.h"

/* Below this many multiply-adds a product runs on the calling thread, the
   threshold OpenBLAS itself uses before it threads a gemm (65536 * 4). */
#define GEMM_PAR_MNK 262144.0
/* Row blocks are cut at multiples of this. */
#define GEMM_ALIGN 48

/* c *= silu'(h) after a float64 product (float32: sc_silu_grad_rows_f) */
SC_DISPATCH static void silu_rows_d(double *c, int64_t ldc, const double *h, int64_t ldh, int64_t m,
                        int64_t n) {
  for (int64_t r = 0; r < m; r++)
    for (int64_t j = 0; j < n; j++) c[r * ldc + j] *= sc_silu_grad(h[r * ldh + j]);
}

/* h: NULL, or the SiLU epilogue's input (sc_gemm_silu); x: NULL, or
   gemm512.c's extras (gemm512.h).  -1 when x needs gemm512.c and it cannot
   do this product; nothing is done then. */
static int gemm_one(sc_dtype dt, int ta, int tb, int64_t m, int64_t n, int64_t k,
                    const char *a, int64_t lda, const char *b, int64_t ldb, double beta,
                    char *c, int64_t ldc, const char *h, int64_t ldh, const sc_gemm_extra *x) {
  CBLAS_TRANSPOSE A = ta ? CblasTrans : CblasNoTrans, B = tb ? CblasTrans : CblasNoTrans;
  if (dt == SC_FLOAT32 &&
      sc_sgemm_own_ex(ta, tb, m, n, k, (const float *)a, lda, (const float *)b, ldb,
                      (float)beta, (float *)c, ldc, (const float *)h, ldh, x) == 0)
    return 0;
  if (sc_gemm_extra_needs_own(x)) return -1;
  if (dt == SC_FLOAT64)
    cblas_dgemm(CblasRowMajor, A, B, (int)m, (int)n, (int)k, 1.0, (const double *)a,
                (int)lda, (const double *)b, (int)ldb, beta, (double *)c, (int)ldc);
  else
    cblas_sgemm(CblasRowMajor, A, B, (int)m, (int)n, (int)k, 1.0f, (const float *)a,
                (int)lda, (const float *)b, (int)ldb, (float)beta, (float *)c, (int)ldc);
  if (h && dt == SC_FLOAT64)
    silu_rows_d((double *)c, ldc, (const double *)h, ldh, m, n);
  else if (h)
    sc_silu_grad_rows_f((float *)c, ldc, (const float *)h, ldh, m, n);
  return 0;
}

typedef struct {
  sc_dtype dt;
  int ta, tb;
  int64_t m, n, k;
  const char *a;
  int64_t lda;
  const void *b;
  int64_t ldb;
  double beta;
  char *c;
  int64_t ldc, blocks, align;
  const char *h;
  int64_t ldh;
  const sc_gemm_extra *x;
  _Atomic int failed; /* a part gemm_one could not do */
} gemm_job;

/* rows lo..hi of op(a) and of c; the last thread takes the ragged end */
static void gemm_part(void *p, int t, int nth) {
  gemm_job *j = p;
  size_t es = sc_dtype_size(j->dt);
  int64_t lo = j->blocks * t / nth * j->align;
  int64_t hi = t == nth - 1 ? j->m : j->blocks * (t + 1) / nth * j->align;
  if (hi <= lo) return;
  sc_gemm_extra x; /* a packed A starts at this part's first row */
  if (j->x) {
    x = *j->x;
    x.arow += lo;
  }
  if (gemm_one(j->dt, j->ta, j->tb, hi - lo, j->n, j->k,
               j->a + (size_t)(j->ta ? lo : lo * j->lda) * es, j->lda, j->b, j->ldb, j->beta,
               j->c + (size_t)(lo * j->ldc) * es, j->ldc,
               j->h ? j->h + (size_t)(lo * j->ldh) * es : NULL, j->ldh, j->x ? &x : NULL))
    j->failed = 1;
}

static int gemm_any(sc_dtype dt, int ta, int tb, int64_t m, int64_t n, int64_t k,
                    const void *a, int64_t lda, const void *b, int64_t ldb, double beta,
                    void *c, int64_t ldc, const void *h, int64_t ldh, const sc_gemm_extra *x) {
  if (m <= 0 || n <= 0) return 0;
  if (sc_gemm_extra_needs_own(x) && (dt != SC_FLOAT32 || !sc_gemm_own_active())) return -1;
  int nt = sc_get_num_threads();
  /* gemm512.c's sums do not depend on an element's place, so its rows
     can be cut at any multiple of its 8-row register block (128 rows on 2
     threads: 64 + 64, not 48 + 80) */
  int64_t align = dt == SC_FLOAT32 && sc_gemm_own_active() ? 8 : GEMM_ALIGN;
  if (nt <= 1 || sc_in_parallel() || m < 2 * align ||
      (double)m * (double)n * (double)k < GEMM_PAR_MNK)
    return gemm_one(dt, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc, h, ldh, x);
  int64_t blocks = m / align; /* whole aligned blocks to share out */
  if (nt > blocks) nt = (int)blocks;
  gemm_job j = {dt, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc, blocks, align, h, ldh, x, 0};
  sc_parallel(nt, gemm_part, &j);
  return j.failed ? -1 : 0;
}

void sc_gemm(sc_dtype dt, int ta, int tb, int64_t m, int64_t n, int64_t k, const void *a,
             int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc) {
  (void)gemm_any(dt, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc, NULL, 0, NULL);
}

void sc_gemm_silu(sc_dtype dt, int ta, int tb, int64_t m, int64_t n, int64_t k, const void *a,
                  int64_t lda, const void *b, int64_t ldb, void *c, int64_t ldc, const void *h,
                  int64_t ldh) {
  (void)gemm_any(dt, ta, tb, m, n, k, a, lda, b, ldb, 0.0, c, ldc, h, ldh, NULL);
}

int sc_gemm_ex(sc_dtype dt, int ta, int tb, int64_t m, int64_t n, int64_t k, const void *a,
               int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc,
               const sc_gemm_extra *x) {
  return gemm_any(dt, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc, NULL, 0, x);
}
