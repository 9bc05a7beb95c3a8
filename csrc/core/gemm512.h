/* scorch core: the float32 matrix product of the core's own (gemm512.c) */
#ifndef SC_GEMM512_H
#define SC_GEMM512_H

#include <stdint.h>

/* What a product may be asked besides C = op(A) op(B) + beta C (all zero:
   nothing).  Each gives the same sums as the plain product of the same
   operands, so the numbers never depend on them.
   bsilu: silu(B) in place of B, the SiLU op's float32 formula applied as B
     is packed (tb 0): the weight gradient of a SiLU + Linear pair from its
     pre-activation.  Only this file's kernels can do it
     (sc_gemm_extra_needs_own).
   The others are hints, ignored by products that cannot use them (OpenBLAS,
   float64, a matrix-vector shape), so A and B must still be passed:
   binplace: B's full 32-column panels read where they are, rows ldb apart,
     not packed (tb 0): for B read by few row blocks of A, such as a
     convolution's shifted image.
   bpre, pstride, roff: op(B) packed already by sc_pack_cols_t (rows =
     pstride), this product's rows of it from roff on.
   apre, apad, arow: op(A) packed already by sc_pack_a_all, apad its rows
     rounded up to 8, this product's rows of it from arow on (a multiple of
     8). */
typedef struct {
  int bsilu, binplace;
  const float *bpre;
  int64_t pstride, roff;
  const float *apre;
  int64_t apad, arow;
} sc_gemm_extra;

static inline int sc_gemm_extra_needs_own(const sc_gemm_extra *x) { return x && x->bsilu; }

/* float32 products by gemm512.c's AVX-512 kernels, then c *= silu'(h) (h
   laid out as c, row stride ldh) on each block of rows as it is finished
   when h is not NULL, with x's extras (NULL: none): 0 when done, -1 when
   the CPU lacks AVX-512 (or the path is off), a packing buffer cannot be
   had, or bsilu is asked of a matrix-vector shape; the caller then does
   it another way */
int sc_sgemm_own_ex(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a,
                    int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
                    const float *h, int64_t ldh, const sc_gemm_extra *x);
/* op(B) [rows, n] with op(B)(p, j) = b[j*ldb + p] (B's columns stored
   whole, as a convolution's image planes are) packed once for many
   products that read shifted row ranges of it: the panel of columns
   j0 = 0, 32, ... at dst + j0*rows, width 32 (16 for a last panel of at
   most 16 columns), row p at p*width; dst holds n rounded up to 32 times
   rows floats.  0 when done, -1 without AVX-512 */
int sc_pack_cols_t(const float *b, int64_t ldb, int64_t n, int64_t rows, float *dst);
/* op(A) [m, k] packed once for many products over the same A: per slice
   of KC = 256 k-rows, MR = 8-row panels, m rounded up to 8 (dst holds that
   times k floats).  0 when done, -1 without AVX-512 */
int sc_pack_a_all(int ta, const float *a, int64_t lda, int64_t m, int64_t k, float *dst);
/* m rounded up to sc_pack_a_all's 8-row panels: its rows per k-row (apad) */
static inline int64_t sc_packed_rows(int64_t m) { return (m + 7) / 8 * 8; }
/* on: 1 use gemm512.c where the CPU allows, 0 never, -1 decide from the
   CPU; returns whether it was in use */
int sc_gemm_avx512(int on);
/* whether gemm512.c may read A or B where they are instead of packing them
   (g512_run's rules; on by default; the same sums either way): returns the
   previous setting */
int sc_gemm_inplace(int on);
/* whether float32 products take this file's kernels now */
int sc_gemm_own_active(void);
/* c *= silu'(h) over rows x cols, h laid out as c with row stride ldh: the
   SiLU epilogue of sc_sgemm_own_ex, and of gemm.c's OpenBLAS products */
void sc_silu_grad_rows_f(float *c, int64_t ldc, const float *h, int64_t ldh, int64_t rows,
                         int64_t cols);
/* nr rows of w (each k floats, ld apart), nr <= wdt, transposed into a
   panel dst[p*wdt + c] with columns nr..wdt-1 zero, by 8 x 8 vector
   transposes: 0 when done, -1 without AVX-512 (copy them some other way) */
int sc_pack_rows_t(const float *w, int64_t ld, int64_t nr, int64_t wdt, int64_t k, float *dst);

#endif
