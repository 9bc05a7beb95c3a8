/* scorch core: the float32 matrix product of the core's own (gemm512.c) */
#ifndef SC_GEMM512_H
#define SC_GEMM512_H

#include <stdint.h>

/* float32 products by gemm512.c's AVX-512 kernels: 0 when done, -1 when
   the CPU lacks AVX-512 (or the path is off) and OpenBLAS must do it */
int sc_sgemm_own(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                 const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
/* The same, then c *= silu'(h) (h laid out as c, row stride ldh) on each
   block of rows as it is finished; h NULL: nothing more */
int sc_sgemm_own_silu(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a,
                      int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
                      const float *h, int64_t ldh);
/* C [m, n] = op(A) silu(B), B [k, n] row-major (the SiLU op's float32
   formula applied as B is packed): 0 when done, -1 when it cannot be done
   here (see sc_sgemm_bsilu_ok, or no packing buffer) and the caller must
   make silu(B) itself */
int sc_sgemm_own_bsilu(int ta, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                       const float *b, int64_t ldb, float *c, int64_t ldc);
/* C [m, n] = op(A) B + beta C, B [k, n] row-major, with B's full 32-column
   panels read in place rather than packed (a convolution's shifted image,
   read by few row blocks of A): 0 when done, -1 when the caller must use
   sc_gemm (no AVX-512, a matrix-vector shape, no buffer) */
int sc_sgemm_own_binplace(int ta, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                          const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
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
/* C [m, n] = op(A) op(B) + beta C with op(B) rows roff .. roff + k of
   sc_pack_cols_t's packing at bpre (rows = pstride), and op(A) from
   sc_pack_a_all's packing at apre when that is not NULL (else from a,
   packed here): 0 when done, -1 when the caller must use sc_gemm */
int sc_sgemm_own_prepacked(int ta, int64_t m, int64_t n, int64_t k, const float *a,
                           int64_t lda, const float *apre, const float *bpre, int64_t pstride,
                           int64_t roff, float beta, float *c, int64_t ldc);
/* whether sc_sgemm_own_bsilu takes a product of this shape (AVX-512 on, a
   product that is not a matrix-vector one) */
int sc_sgemm_bsilu_ok(int64_t m, int64_t n, int64_t k);
/* on: 1 use gemm512.c where the CPU allows, 0 never, -1 decide from the
   CPU; returns whether it was in use */
int sc_gemm_avx512(int on);
/* whether float32 products take this file's kernels now */
int sc_gemm_own_active(void);
/* c *= silu'(h) over rows x cols, h laid out as c with row stride ldh: the
   SiLU epilogue of sc_sgemm_own_silu, and of gemm.c's OpenBLAS products */
void sc_silu_grad_rows_f(float *c, int64_t ldc, const float *h, int64_t ldh, int64_t rows,
                         int64_t cols);
/* nr rows of w (each k floats, ld apart), nr <= wdt, transposed into a
   panel dst[p*wdt + c] with columns nr..wdt-1 zero, by 8 x 8 vector
   transposes: 0 when done, -1 without AVX-512 (copy them some other way) */
int sc_pack_rows_t(const float *w, int64_t ld, int64_t nr, int64_t wdt, int64_t k, float *dst);

#endif
