/* scorch core: helpers shared between core files, not part of the API. */
#ifndef SC_INTERNAL_H
#define SC_INTERNAL_H

#include <stdlib.h>

#include "tensor.h"
#include "gemm512.h"

const char *sc_dims_str(int ndim, const int64_t *shape, char *buf, size_t len);
int sc_check_shape(const char *fn, int ndim, const int64_t *shape);
/* A zeroed header with refcount 1 (recycled when possible). */
sc_tensor *sc_tensor_alloc(void);
sc_tensor *sc_header(sc_storage *s, int ndim, const int64_t *shape,
                     sc_dtype dt);
int64_t sc_linear_offset(const sc_tensor *t, int64_t i);
/* y[i, j] = silu(y[i, j]) in place for rows r0 <= i < r1 of a contiguous
   [n, m] y; one thread */
void sc_silu_rows_(sc_tensor *y, int64_t r0, int64_t r1);
/* y = silu(y) and y = g silu'(x) (y may be x) over n contiguous values,
   with the silu op's kernel and fused backward's expressions (elementwise.c) */
void sc_silu_row_f(float *y, int64_t n);
void sc_silu_row_d(double *y, int64_t n);
void sc_silu_bw_row_f(const float *g, const float *x, float *y, int64_t n);
void sc_silu_bw_row_d(const double *g, const double *x, double *y, int64_t n);
void sc_set_linear(sc_tensor *t, int64_t i, double v);

/* Broadcast shape of a and b into out (ndim in *nd); -1 + error if the
   shapes do not broadcast.  `fn` names the op in the message. */
int sc_broadcast_shape(const char *fn, int na, const int64_t *sa, int nb,
                       const int64_t *sb, int *nd, int64_t *out);

/* Non-recording views, used by kernels and by the recorded wrappers. */
sc_tensor *sc_raw_view(sc_tensor *t, int ndim, const int64_t *shape,
                       const int64_t *stride, int64_t offset);
sc_tensor *sc_raw_expand(sc_tensor *t, int ndim, const int64_t *shape);

/* Strided loop over nop operands of identical shape (operand 0 is written).
   `fn` is called on runs of n elements with byte strides. */
typedef void (*sc_loop_fn)(int64_t n, char **ptr, const int64_t *stride,
                           void *ctx);
void sc_foreach(int nop, sc_tensor **op, sc_loop_fn fn, void *ctx);

/* Minimum elements before a kernel is split across threads. */
#define SC_PAR_GRAIN 32768

/* c = op(a) op(b) + beta c on row-major buffers of dtype dt (op transposes
   when ta / tb), m x n output, k terms.  Large products are split over
   scorch's threads; OpenBLAS itself always runs single-threaded (gemm.c). */
void sc_gemm(sc_dtype dt, int ta, int tb, int64_t m, int64_t n, int64_t k, const void *a,
             int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc);
/* The same with beta = 0, then c *= silu'(h) elementwise, h laid out as c
   with row stride ldh: the gradient through a SiLU, applied to each block
   of the product while it is still in cache (same bits as a separate pass). */
void sc_gemm_silu(sc_dtype dt, int ta, int tb, int64_t m, int64_t n, int64_t k, const void *a,
                  int64_t lda, const void *b, int64_t ldb, void *c, int64_t ldc, const void *h,
                  int64_t ldh);

/* sc_gemm with gemm512.c's extras (gemm512.h: silu(b), b read in place,
   operands packed already), its rows shared among threads like sc_gemm's
   (x->arow follows each part's rows).  0 when done; -1 when x needs
   gemm512.c and it cannot do this product (float64, no AVX-512, a
   matrix-vector shape, no buffer): then the caller does it another way
   (c may have been written). */
int sc_gemm_ex(sc_dtype dt, int ta, int tb, int64_t m, int64_t n, int64_t k, const void *a,
               int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc,
               const sc_gemm_extra *x);

/* A free list of fixed-size records (tensor headers, storage records, tiny
   storages, autograd nodes), kept instead of freed so that small ops do not
   go through malloc: sc_recycled gives a kept record or NULL, sc_recycle
   keeps one, or frees it once cap are kept.  Main thread only. */
typedef struct {
  void **kept;
  int n, cap;
} sc_recycler;
#define SC_RECYCLER(name, cap_)                                             \
  static void *name##_kept[cap_];                                           \
  static sc_recycler name = {name##_kept, 0, cap_}

static inline void *sc_recycled(sc_recycler *r) {
  return r->n ? r->kept[--r->n] : NULL;
}

static inline void sc_recycle(sc_recycler *r, void *p) {
  if (r->n < r->cap)
    r->kept[r->n++] = p;
  else
    free(p);
}

/* Zeroes a small record of n bytes (n a multiple of 8, p 8-aligned) by
   16-byte stores.  For records of a few hundred bytes GCC's memset is `rep
   stos`, whose start-up cost was a tenth of a 16-element op (W5, tensor
   headers) and 6% of one under requires_grad (autograd nodes).  The empty
   asm keeps GCC from turning the loop back into memset. */
static inline void sc_zero_record(void *p, size_t n) {
  typedef long long z16 __attribute__((vector_size(16), may_alias, aligned(8)));
  z16 *d = (z16 *)p;
  for (size_t i = 0; i < n / 16; i++) {
    d[i] = (z16){0, 0};
    __asm__("" : : "r"(d) : "memory");
  }
  if (n % 16) *(long long *)((char *)p + n - 8) = 0;
}

/* A new contiguous tensor of x's shape and dtype, without sc_empty's shape
   checks (x's shape passed them): the per-op fast paths' result. */
sc_tensor *sc_empty_as(const sc_tensor *x);

/* sc_is_contiguous, inlined for the per-op fast paths. */
static inline int sc_dense(const sc_tensor *t) {
  int64_t st = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    if (t->shape[d] != 1 && t->stride[d] != st) return 0;
    st *= t->shape[d];
  }
  return 1;
}

/* Whether an elementwise kernel over n elements runs on the calling
   thread alone (then a dense op calls its loop directly). */
static inline int sc_serial(int64_t n) {
  return n < SC_PAR_GRAIN || sc_get_num_threads() <= 1;
}

/* Bumps the version of t's storage (after an in-place write). */
static inline void sc_bump(sc_tensor *t) { t->storage->version++; }

/* Product of dims [from, to). */
static inline int64_t sc_prod(const int64_t *s, int from, int to) {
  int64_t n = 1;
  for (int d = from; d < to; d++) n *= s[d];
  return n;
}

#endif
