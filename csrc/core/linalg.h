/*
 * scorch core: the dense linear algebra behind sc.metrics (FID, KID,
 * precision and recall).  Internal: reached from Lua as scorch.core's
 * linalg_* functions, not part of the public API.
 *
 * Matrices are row-major buffers.  Every function returns 0, or -1 with a
 * message in sc_error(); none allocates more than a few tiles per thread,
 * so 10,000 x 10,000 distances run in bounded memory.  Results do not
 * depend on the thread count: the work is cut into fixed tiles and every
 * reduction over tiles (k smallest, any, max) is order-independent.
 */
#ifndef SC_LINALG_H
#define SC_LINALG_H

#include <stdint.h>

#include "tensor.h"

/* Eigenvalues w [n] (ascending) of the symmetric n x n float64 matrix a,
   by LAPACK dsyevd.  With vectors, a is overwritten by the eigenvectors as
   rows (row i belongs to w[i]); otherwise a is destroyed. */
int sc_linalg_syevd(int64_t n, double *a, double *w, int vectors);

/* tr (A^{1/2} B A^{1/2})^{1/2} for symmetric positive semi-definite A and
   B (n x n, float64): A^{1/2} from A's eigendecomposition, then the
   eigenvalues of the symmetric product, negatives clamped to 0. */
int sc_linalg_trace_sqrt_product(int64_t n, const double *a, const double *b, double *out);

/* Column means [d] and centred scatter matrix [d, d] (the sum over rows of
   (x_i - mean)(x_i - mean)^T) of the rows of x [n, d] (float32 or float64,
   row stride ldx), all in float64. */
int sc_linalg_moments(sc_dtype dt, int64_t n, int64_t d, const void *x, int64_t ldx,
                      double *mean, double *scatter);

/* r2[i] = squared distance from row i of x [n, d] (float32) to its k-th
   nearest other row (the point itself excluded), in GEMM form
   |a|^2 - 2 a.b + |b|^2 clamped at 0.  Needs n > k. */
int sc_linalg_knn_radii(int64_t n, int64_t d, const float *x, int k, float *r2);

/* One pass over the distances between fake [nf, d] and real [nr, d] rows:
   fake_in[j] = 1 when fake j lies in some real ball (|f_j - r_i|^2 <=
   r2_real[i]), real_in[i] = 1 when real i lies in some fake ball; with
   realism2 non-NULL, realism2[j] = max_i w_real[i] / |f_j - r_i|^2 (the
   squared realism score; w_real[i] = 0 leaves real i out). */
int sc_linalg_pr_cover(int64_t nr, int64_t nf, int64_t d, const float *real, const float *fake,
                       const float *r2_real, const float *r2_fake, const float *w_real,
                       unsigned char *fake_in, unsigned char *real_in, float *realism2);

#endif
