/*
 * scorch core: a float32 matrix product of scorch's own for CPUs with
 * AVX-512, used by sc_gemm (gemm.c) in place of OpenBLAS's sgemm.
 *
 * Why: OpenBLAS chooses its kernels once, at load, from the CPU or from
 * OPENBLAS_CORETYPE, and a machine that names an older core there (this
 * project's development machine sets Haswell) runs every product on 8-float
 * registers.  The products scorch's models make are also small (a few
 * hundred per side), where OpenBLAS's fixed cost of packing into large
 * blocks is a visible share of the time.
 *
 * How (the blocked layout of Goto & van de Geijn, "Anatomy of
 * high-performance matrix multiplication", 2008): op(B) is packed KC rows at
 * a time into panels of NR = 32 columns, op(A) into panels of MR = 8 rows,
 * and a register block of 8 x 32 outputs (16 registers of 16 floats) is
 * kept in registers across the KC products: per step, two loads of B, eight
 * broadcasts of A and sixteen fused multiply-adds.  A last panel of at most
 * 16 columns uses half the block.  Where packing does not pay, an operand
 * is read where it is instead (g512_run: B when A has few rows, A nearly
 * always), the same products in the same order.
 *
 * The numbers: an element of C is the fused multiply-add chain over each
 * KC-long slice of k, in order, from zero, and the slices are added to C in
 * order (the first as acc + beta*C, or acc alone when beta is 0, so C is
 * not read).  KC is fixed, so the result depends neither on where the
 * element sits in its tile nor on how the rows are shared among threads:
 * gemm_spec checks 1 against 2 threads bit for bit, and every shape against
 * a float64 triple loop.
 */
#include "gemm512.h"
#include "vmath.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(SC_NO_DISPATCH)
#define SC_G512 1
#include <immintrin.h>
#define V4 __attribute__((target("arch=x86-64-v4")))
#endif

#define MR 8      /* rows of a register block */
#define NR 32     /* columns of a register block */
#define KC 256    /* k per packed slice: a B panel of KC x NR floats is 32 KB */
#define MC 192    /* rows of A packed at once (KC x MC floats, 192 KB) */
#define NC 512    /* columns of B packed at once (KC x NC floats, 512 KB) */
#define INPLACE_M 256 /* at most this many rows of C: B read where it is (g512_run) */

/* -1: not decided yet; 0: OpenBLAS; 1: this file's kernels */
static int use_g512 = -1;

int sc_gemm_avx512(int on) { return sc_avx512_switch(&use_g512, on); }

/* whether g512_run may read A or B where they are (the rules at their
   use); off, it packs both, as the caller's own hints still ask: the same
   sums either way, which gemm_spec checks */
static int use_inplace = 1;
int sc_gemm_inplace(int on) {
  int was = use_inplace;
  use_inplace = on != 0;
  return was;
}

#ifdef SC_G512

/* Packing buffers, one per thread (products also run inside parallel
   kernels, where the core's allocator may not be called), kept between
   products and freed when the thread ends. */
static __thread float *tbuf;
static __thread size_t tcap;
static pthread_key_t tkey;
static pthread_once_t tkey_once = PTHREAD_ONCE_INIT;

static void tkey_make(void) { (void)pthread_key_create(&tkey, free); }

static float *thread_buffer(size_t bytes) {
  if (bytes <= tcap) return tbuf;
  pthread_once(&tkey_once, tkey_make);
  size_t cap = (bytes + 4095) & ~(size_t)4095;
  float *p = aligned_alloc(64, cap);
  if (!p) return NULL;
  free(tbuf);
  tbuf = p;
  tcap = cap;
  (void)pthread_setspecific(tkey, p);
  return p;
}

/* Eight rows of eight floats, s[r*ld + q] for r, q < 8, written transposed:
   d[q*ldd + r].  (The unpack/shuffle/permute transpose of 8 x 8 floats.) */
static inline V4 __attribute__((always_inline)) void transpose8(const float *s, int64_t ld,
                                                               float *d, int64_t ldd) {
  __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + ld);
  __m256 r2 = _mm256_loadu_ps(s + 2 * ld), r3 = _mm256_loadu_ps(s + 3 * ld);
  __m256 r4 = _mm256_loadu_ps(s + 4 * ld), r5 = _mm256_loadu_ps(s + 5 * ld);
  __m256 r6 = _mm256_loadu_ps(s + 6 * ld), r7 = _mm256_loadu_ps(s + 7 * ld);
  __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  _mm256_storeu_ps(d, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(d + ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(d + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(d + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(d + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(d + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(d + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(d + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
}

/* A rows i0.. (mr of them, mr <= MR), k pc..pc+kc, into dst[p*MR + r],
   rows past mr zero */
static V4 void pack_a(int ta, const float *a, int64_t lda, int64_t i0, int64_t mr, int64_t pc,
                      int64_t kc, float *dst) {
  if (ta) { /* op(A)(i, p) = a[p*lda + i]: MR contiguous floats per p */
    __mmask8 mk = (__mmask8)((1u << mr) - 1u);
    for (int64_t p = 0; p < kc; p++)
      _mm256_store_ps(dst + p * MR, _mm256_maskz_loadu_ps(mk, a + (pc + p) * lda + i0));
    return;
  }
  /* op(A)(i, p) = a[i*lda + p]: 8 x 8 blocks transposed, then the rest */
  const float *s = a + i0 * lda + pc;
  int64_t p = 0;
  if (mr == MR)
    for (; p + 8 <= kc; p += 8) transpose8(s + p, lda, dst + p * MR, MR);
  for (int64_t r = 0; r < MR; r++)
    for (int64_t q = p; q < kc; q++) dst[q * MR + r] = r < mr ? s[r * lda + q] : 0.0f;
}

/* B columns j0.. (nr of them, nr <= w), k pc..pc+kc, into dst[p*w + c],
   columns past nr zero; w is NR, or 16 for a last narrow panel */
static V4 void pack_b(int tb, const float *b, int64_t ldb, int64_t j0, int64_t nr, int64_t w,
                      int64_t pc, int64_t kc, float *dst) {
  if (!tb) { /* op(B)(p, j) = b[p*ldb + j]: a row segment per p */
    __mmask16 m0 = nr >= 16 ? 0xFFFF : (__mmask16)((1u << nr) - 1u);
    __mmask16 m1 = nr >= 32 ? 0xFFFF : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1u);
    const float *s = b + pc * ldb + j0;
    for (int64_t p = 0; p < kc; p++, s += ldb) {
      float *d = dst + p * w;
      _mm512_store_ps(d, _mm512_maskz_loadu_ps(m0, s));
      if (w == NR) _mm512_store_ps(d + 16, _mm512_maskz_loadu_ps(m1, s + 16));
    }
    return;
  }
  /* op(B)(p, j) = b[j*ldb + p]: 8 x 8 blocks of whole columns transposed */
  const float *s = b + j0 * ldb + pc;
  int64_t c = 0;
  for (; c + 8 <= nr; c += 8) {
    int64_t p = 0;
    for (; p + 8 <= kc; p += 8) transpose8(s + c * ldb + p, ldb, dst + p * w + c, w);
    for (; p < kc; p++)
      for (int64_t q = 0; q < 8; q++) dst[p * w + c + q] = s[(c + q) * ldb + p];
  }
  for (; c < nr; c++)
    for (int64_t p = 0; p < kc; p++) dst[p * w + c] = s[c * ldb + p];
  if (nr < w) { /* the panel's columns nr .. w-1 are zero: masked stores per row
                   (w is 8, 16 or 32; sc_pack_rows_t's panels need not be aligned) */
    uint32_t lo = nr < 16 ? nr : 16, hi = w < 16 ? (uint32_t)w : 16;
    __mmask16 z0 = (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
    __mmask16 z1 = w <= 16 ? 0 : (__mmask16)(0xFFFFu << (nr > 16 ? nr - 16 : 0));
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t p = 0; p < kc; p++) {
      if (z0) _mm512_mask_storeu_ps(dst + p * w, z0, zero);
      if (z1) _mm512_mask_storeu_ps(dst + p * w + 16, z1, zero);
    }
  }
}

/* All of B's panels for columns j0..j0+nc and k pc..pc+kc, B stored with
   k along its columns (op(B)(p, j) = b[p*ldb + j]): the same layout as
   pack_b panel by panel, but read row by row, so the source is one forward
   stream.  With silu, the panels hold silu(b) (sc_vsiluf, the SiLU op's
   own float32 formula): the weight gradient of a SiLU + Linear pair made
   from the saved pre-activation, so the activation itself need not be
   kept from the forward pass. */
static V4 void pack_b_rows(const float *b, int64_t ldb, int64_t j0, int64_t nc, int64_t pc,
                           int64_t kc, float *dst, int silu) {
  int64_t full = nc / NR, rest = nc - full * NR, w = rest <= 16 ? 16 : NR;
  __mmask16 m0 = rest >= 16 ? 0xFFFF : (__mmask16)((1u << rest) - 1u);
  __mmask16 m1 = rest >= 32 ? 0xFFFF : rest <= 16 ? 0 : (__mmask16)((1u << (rest - 16)) - 1u);
  float row[NC] __attribute__((aligned(64)));
  const float *s = b + pc * ldb + j0;
  float *last = dst + full * NR * kc;
  for (int64_t p = 0; p < kc; p++, s += ldb) {
    const float *r = s;
    if (silu) {
      for (int64_t j = 0; j < nc; j++) row[j] = sc_vsiluf(s[j]);
      r = row;
    }
    for (int64_t q = 0; q < full; q++) {
      float *d = dst + q * NR * kc + p * NR;
      _mm512_store_ps(d, _mm512_loadu_ps(r + q * NR));
      _mm512_store_ps(d + 16, _mm512_loadu_ps(r + q * NR + 16));
    }
    if (rest) {
      float *d = last + p * w;
      _mm512_store_ps(d, _mm512_maskz_loadu_ps(m0, r + full * NR));
      if (w == NR) _mm512_store_ps(d + 16, _mm512_maskz_loadu_ps(m1, r + full * NR + 16));
    }
  }
}

/* How a slice's sums meet C: the first slice stores them (beta 0) or adds
   beta*C; later slices add C. */
enum { ST_SET, ST_BETA, ST_ADD };

static inline V4 __attribute__((always_inline)) __m512 merge(__m512 acc, const float *c,
                                                            __mmask16 mk, int mode,
                                                            __m512 vb) {
  if (mode == ST_SET) return acc;
  __m512 old = mk == 0xFFFF ? _mm512_loadu_ps(c) : _mm512_maskz_loadu_ps(mk, c);
  if (mode == ST_BETA) old = _mm512_mul_ps(vb, old);
  return _mm512_add_ps(acc, old);
}

/* a plain store for a whole row of 16 (masked stores are slower on some
   CPUs even with every lane set) */
static inline V4 __attribute__((always_inline)) void put(float *c, __mmask16 mk, __m512 v) {
  if (mk == 0xFFFF)
    _mm512_storeu_ps(c, v);
  else
    _mm512_mask_storeu_ps(c, mk, v);
}

#define ROW2(i)                                                \
  {                                                            \
    __m512 ai = _mm512_set1_ps(AEL(i));                        \
    c##i##0 = _mm512_fmadd_ps(ai, b0, c##i##0);                \
    c##i##1 = _mm512_fmadd_ps(ai, b1, c##i##1);                \
  }
#define STORE2(i)                                                               \
  if (i < rows) {                                                               \
    float *ci = c + (int64_t)i * ldc;                                           \
    put(ci, m0, merge(c##i##0, ci, m0, mode, vb));                              \
    if (m1) put(ci + 16, m1, merge(c##i##1, ci + 16, m1, mode, vb));            \
  }

/* The 8 x 32 block: its 16 registers set to zero, the kc products, C (+)=
   them.  A(i, p) is AEL(i) at step p, ADV steps A and B on. */
#define BLOCK_8x32(ADV)                                                         \
  __m512 z = _mm512_setzero_ps();                                               \
  __m512 c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z; \
  __m512 c40 = z, c41 = z, c50 = z, c51 = z, c60 = z, c61 = z, c70 = z, c71 = z; \
  for (int64_t p = 0; p < kc; p++, ADV) {                                       \
    __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);             \
    ROW2(0) ROW2(1) ROW2(2) ROW2(3) ROW2(4) ROW2(5) ROW2(6) ROW2(7)             \
  }                                                                             \
  __mmask16 m0 = cols >= 16 ? 0xFFFF : (__mmask16)((1u << cols) - 1u);          \
  __mmask16 m1 = cols >= 32 ? 0xFFFF : cols <= 16 ? 0 : (__mmask16)((1u << (cols - 16)) - 1u); \
  __m512 vb = _mm512_set1_ps(beta);                                             \
  STORE2(0) STORE2(1) STORE2(2) STORE2(3) STORE2(4) STORE2(5) STORE2(6) STORE2(7)

#define ROW1(i)                                       \
  c##i##0 = _mm512_fmadd_ps(_mm512_set1_ps(AEL(i)), b0, c##i##0);
#define STORE1(i)                                                    \
  if (i < rows) {                                                    \
    float *ci = c + (int64_t)i * ldc;                                \
    put(ci, m0, merge(c##i##0, ci, m0, mode, vb));                   \
  }
/* the same for a last panel of at most 16 columns (packed, 16 wide) */
#define BLOCK_8x16(ADV)                                                         \
  __m512 z = _mm512_setzero_ps();                                               \
  __m512 c00 = z, c10 = z, c20 = z, c30 = z, c40 = z, c50 = z, c60 = z, c70 = z; \
  for (int64_t p = 0; p < kc; p++, ADV) {                                       \
    __m512 b0 = _mm512_load_ps(bp);                                             \
    ROW1(0) ROW1(1) ROW1(2) ROW1(3) ROW1(4) ROW1(5) ROW1(6) ROW1(7)             \
  }                                                                             \
  __mmask16 m0 = cols >= 16 ? 0xFFFF : (__mmask16)((1u << cols) - 1u);          \
  __m512 vb = _mm512_set1_ps(beta);                                             \
  STORE1(0) STORE1(1) STORE1(2) STORE1(3) STORE1(4) STORE1(5) STORE1(6) STORE1(7)

/* c[0..rows)[0..cols) (+)= the 8 x 32 block of a times b (kc x 32, rows bs
   floats apart: NR when packed, ldb when read in place).  A is a packed
   panel (as = MR) or A stored transposed and read in place (as = lda):
   A(i, p) = ap[p*as + i]. */
static V4 void kernel_8x32(int64_t kc, const float *ap, int64_t as, const float *bp, int64_t bs,
                           float *c, int64_t ldc, int rows, int cols, int mode, float beta) {
#define AEL(i) ap[i]
  BLOCK_8x32((ap += as, bp += bs))
#undef AEL
}

static V4 void kernel_8x16(int64_t kc, const float *ap, int64_t as, const float *bp, float *c,
                           int64_t ldc, int rows, int cols, int mode, float beta) {
#define AEL(i) ap[i]
  BLOCK_8x16((ap += as, bp += 16))
#undef AEL
}

/* The same with A stored as is and read in place: A(i, p) = r[i][p], eight
   row pointers (a block of fewer rows repeats its last row; those sums are
   not stored). */
static V4 void kernel_8x32_rows(int64_t kc, const float *const *r, const float *bp, int64_t bs,
                                float *c, int64_t ldc, int rows, int cols, int mode,
                                float beta) {
  const float *r0 = r[0], *r1 = r[1], *r2 = r[2], *r3 = r[3], *r4 = r[4], *r5 = r[5],
              *r6 = r[6], *r7 = r[7];
#define AEL(i) r##i[p]
  BLOCK_8x32((bp += bs))
#undef AEL
}

static V4 void kernel_8x16_rows(int64_t kc, const float *const *r, const float *bp, float *c,
                                int64_t ldc, int rows, int cols, int mode, float beta) {
  const float *r0 = r[0], *r1 = r[1], *r2 = r[2], *r3 = r[3], *r4 = r[4], *r5 = r[5],
              *r6 = r[6], *r7 = r[7];
#define AEL(i) r##i[p]
  BLOCK_8x16((bp += 16))
#undef AEL
}

/* Matrix-vector products (one output column or one output row): a packed
   panel would be 15/16 zeros, so they get two loops of their own.
   dots: c[i*ldc] (+)= sum_p r_i[p] u[p] over rows r_i = s + i*ld, contiguous
   in p: four 16-lane partial sums, added in a fixed order at the end.
   axpys: c[j*ldc] (+)= sum_p s[p*ld + j] u[p*su], 128 outputs at a time
   with each one's sum a chain over p in order.  Either way an output
   element's sum depends only on its own row or column, never on how the
   rows are split between threads. */
static inline V4 __attribute__((always_inline)) float beta_merge(float sum, const float *c,
                                                                 float beta) {
  return beta == 0.0f ? sum : beta == 1.0f ? *c + sum : beta * *c + sum;
}

static V4 void gemv_dots(int64_t cnt, int64_t k, const float *s, int64_t ld, const float *u,
                         float beta, float *c, int64_t ldc) {
  int64_t k64 = k / 64 * 64, k16 = k / 16 * 16;
  __mmask16 mt = (__mmask16)((1u << (k - k16)) - 1u);
  for (int64_t i = 0; i < cnt; i++) {
    const float *r = s + i * ld;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t p = 0;
    for (; p < k64; p += 64) {
      s0 = _mm512_fmadd_ps(_mm512_loadu_ps(r + p), _mm512_loadu_ps(u + p), s0);
      s1 = _mm512_fmadd_ps(_mm512_loadu_ps(r + p + 16), _mm512_loadu_ps(u + p + 16), s1);
      s2 = _mm512_fmadd_ps(_mm512_loadu_ps(r + p + 32), _mm512_loadu_ps(u + p + 32), s2);
      s3 = _mm512_fmadd_ps(_mm512_loadu_ps(r + p + 48), _mm512_loadu_ps(u + p + 48), s3);
    }
    for (; p < k16; p += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(r + p), _mm512_loadu_ps(u + p), s0);
    if (mt)
      s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mt, r + p), _mm512_maskz_loadu_ps(mt, u + p), s1);
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    c[i * ldc] = beta_merge(sum, c + i * ldc, beta);
  }
}

static V4 void gemv_axpys(int64_t cnt, int64_t k, const float *s, int64_t ld, const float *u,
                          int64_t su, float beta, float *c, int64_t ldc) {
  float out[128];
  for (int64_t j0 = 0; j0 < cnt; j0 += 128) {
    int64_t w = cnt - j0 < 128 ? cnt - j0 : 128, nv = (w + 15) / 16;
    __mmask16 mk[8];
    __m512 acc[8];
    for (int v = 0; v < 8; v++) {
      int64_t left = w - 16 * v;
      mk[v] = left >= 16 ? 0xFFFF : left <= 0 ? 0 : (__mmask16)((1u << left) - 1u);
      acc[v] = _mm512_setzero_ps();
    }
    for (int64_t p = 0; p < k; p++) {
      const float *row = s + p * ld + j0;
      __m512 up = _mm512_set1_ps(u[p * su]);
      for (int v = 0; v < nv; v++)
        acc[v] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk[v], row + 16 * v), up, acc[v]);
    }
    for (int v = 0; v < nv; v++) _mm512_storeu_ps(out + 16 * v, acc[v]);
    for (int64_t j = 0; j < w; j++) c[(j0 + j) * ldc] = beta_merge(out[j], c + (j0 + j) * ldc, beta);
  }
}

/* C [m, n] = op(A) op(B) (+ beta C) with m = 1 or n = 1; 0 when done, -1
   when a strided vector's copy cannot be had (the caller falls back). */
static V4 int gemv_run(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a,
                       int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                       int64_t ldc) {
  /* n = 1: the vector is op(B)(., 0), the matrix op(A); m = 1: the vector
     op(A)(0, .), the matrix op(B)^T.  mat_t: the matrix is stored with p
     along its rows (dots), else across (axpys). */
  int cols = n == 1;
  int64_t cnt = cols ? m : n;
  const float *mat = cols ? a : b, *vec = cols ? b : a;
  int64_t ldm = cols ? lda : ldb, sv = cols ? (tb ? 1 : ldb) : (ta ? lda : 1);
  int along = cols ? !ta : tb;
  int64_t ldo = cols ? ldc : 1;
  if (!along) {
    gemv_axpys(cnt, k, mat, ldm, vec, sv, beta, c, ldo);
    return 0;
  }
  if (sv != 1) { /* the dots want the vector contiguous */
    float *u = thread_buffer((size_t)k * sizeof(float));
    if (!u) return -1;
    for (int64_t p = 0; p < k; p++) u[p] = vec[p * sv];
    vec = u;
  }
  gemv_dots(cnt, k, mat, ldm, vec, beta, c, ldo);
  return 0;
}

/* The whole product on the calling thread: C = op(A) op(B) + beta C, then
   c *= silu'(h) on each block of rows after its last slice when h is not
   NULL, with what x asks besides (gemm512.h; NULL: nothing).  Returns -1
   when the packing buffers cannot be had (the caller then falls back). */
static V4 int g512_run(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a,
                       int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                       int64_t ldc, const float *h, int64_t ldh, const sc_gemm_extra *x) {
  static const sc_gemm_extra none = {0};
  if (!x) x = &none;
  const float *bpre = x->bpre, *apre = x->apre;
  int64_t pstride = x->pstride, roff = x->roff, apad = x->apad, arow = x->arow;
  int bsilu = x->bsilu;
  /* B read in place also when few row blocks read it (m <= INPLACE_M):
     packing it would cost more than the strided reads save.  Not at
     strides that are multiples of 4 KB, where a panel's rows would share
     a handful of cache sets. */
  int binplace =
      !tb && (x->binplace || (use_inplace && !bsilu && m <= INPLACE_M && ldb % 1024 != 0));
  /* A read in place: a block's 8 rows (or, stored transposed, 8 floats of
     each row) come from L1 or L2 for every panel of B whether packed or
     not, so packing them only adds a copy (measured level or faster on
     every shape tried, up to 6% on one core).  Not at strides of a
     multiple of 4 KB (the rows would share cache sets); stored transposed,
     only whole blocks of 8 rows: a last partial block is packed. */
  int ainplace = use_inplace && !apre && lda % 1024 != 0;
  int64_t nc_max = n < NC ? (n + NR - 1) / NR * NR : NC;
  int64_t kc_max = k < KC ? k : KC;
  int64_t mc_max = m < MC ? (m + MR - 1) / MR * MR : MC;
  if (k == 0) return -1; /* C = beta C: OpenBLAS does that */
  float *bpk = thread_buffer((size_t)(kc_max * (nc_max + mc_max)) * sizeof(float));
  if (!bpk) return -1;
  float *apk = bpk + kc_max * nc_max;
  for (int64_t jc = 0; jc < n; jc += NC) {
    int64_t nc = n - jc < NC ? n - jc : NC;
    for (int64_t pc = 0; pc < k; pc += KC) {
      int64_t kc = k - pc < KC ? k - pc : KC;
      int mode = pc > 0 ? ST_ADD : beta == 0.0f ? ST_SET : ST_BETA;
      /* B panels: full ones NR wide, a last one 16 wide when it fits;
         in place, only a last partial panel is packed */
      int64_t nfull = binplace ? nc / NR * NR : 0;
      if (bpre) {
        /* packed already */
      } else if (binplace) {
        if (nc > nfull) {
          int64_t nr = nc - nfull;
          pack_b(0, b, ldb, jc + nfull, nr, nr <= 16 ? 16 : NR, pc, kc, bpk + nfull * kc);
        }
      } else if (!tb)
        pack_b_rows(b, ldb, jc, nc, pc, kc, bpk, bsilu);
      else
        for (int64_t jr = 0; jr < nc; jr += NR) {
          int64_t nr = nc - jr < NR ? nc - jr : NR;
          pack_b(tb, b, ldb, jc + jr, nr, nr <= 16 ? 16 : NR, pc, kc, bpk + jr * kc);
        }
      for (int64_t ic = 0; ic < m; ic += MC) {
        int64_t mc = m - ic < MC ? m - ic : MC;
        if (apre)
          apk = (float *)apre + pc * apad + (arow + ic) * kc;
        else
          for (int64_t ir = 0; ir < mc; ir += MR) {
            int64_t mr = mc - ir < MR ? mc - ir : MR;
            if (!ainplace || (ta && mr < MR))
              pack_a(ta, a, lda, ic + ir, mr, pc, kc, apk + ir * kc);
          }
        for (int64_t jr = 0; jr < nc; jr += NR) {
          int64_t nr = nc - jr < NR ? nc - jr : NR;
          int inplace = jr < nfull;
          const float *bp = inplace ? b + pc * ldb + jc + jr : bpk + jr * kc;
          int64_t bs = inplace ? ldb : NR;
          if (bpre) bp = bpre + (jc + jr) * pstride + (roff + pc) * (nr <= 16 ? 16 : NR);
          for (int64_t ir = 0; ir < mc; ir += MR) {
            int64_t mr = mc - ir < MR ? mc - ir : MR;
            float *cp = c + (ic + ir) * ldc + jc + jr;
            if (ainplace && !ta) {
              const float *r[MR];
              for (int q = 0; q < MR; q++)
                r[q] = a + (ic + ir + (q < mr ? q : mr - 1)) * lda + pc;
              if (nr > 16)
                kernel_8x32_rows(kc, r, bp, bs, cp, ldc, (int)mr, (int)nr, mode, beta);
              else
                kernel_8x16_rows(kc, r, bp, cp, ldc, (int)mr, (int)nr, mode, beta);
              continue;
            }
            const float *ap = apk + ir * kc;
            int64_t as = MR;
            if (ainplace && mr == MR) ap = a + pc * lda + ic + ir, as = lda;
            if (nr > 16)
              kernel_8x32(kc, ap, as, bp, bs, cp, ldc, (int)mr, (int)nr, mode, beta);
            else
              kernel_8x16(kc, ap, as, bp, cp, ldc, (int)mr, (int)nr, mode, beta);
          }
        }
        if (h && pc + kc >= k) /* these rows' sums are final */
          sc_silu_grad_rows_f(c + ic * ldc + jc, ldc, h + ic * ldh + jc, ldh, mc, nc);
      }
    }
  }
  return 0;
}
#endif

SC_DISPATCH void sc_silu_grad_rows_f(float *c, int64_t ldc, const float *h, int64_t ldh,
                                     int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; r++) {
    float *restrict cr = c + r * ldc;
    const float *restrict hr = h + r * ldh;
    for (int64_t j = 0; j < cols; j++) cr[j] = cr[j] * sc_silu_gradf(hr[j]);
  }
}

int sc_gemm_own_active(void) {
#ifdef SC_G512
  if (use_g512 < 0) use_g512 = sc_cpu_avx512();
  return use_g512;
#else
  return 0;
#endif
}

int sc_sgemm_own_ex(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a,
                    int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
                    const float *h, int64_t ldh, const sc_gemm_extra *x) {
#ifdef SC_G512
  if (!sc_gemm_own_active() || k == 0 || (x && x->bsilu && tb)) return -1;
  if (m == 1 || n == 1) { /* a matrix-vector product, unless the extras need panels */
    if (sc_gemm_extra_needs_own(x) || gemv_run(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc))
      return -1;
    if (h) sc_silu_grad_rows_f(c, ldc, h, ldh, m, n);
    return 0;
  }
  return g512_run(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc, h, ldh, x);
#else
  (void)ta; (void)tb; (void)m; (void)n; (void)k; (void)a; (void)lda; (void)b; (void)ldb;
  (void)beta; (void)c; (void)ldc; (void)h; (void)ldh; (void)x;
  return -1;
#endif
}

int sc_pack_a_all(int ta, const float *a, int64_t lda, int64_t m, int64_t k, float *dst) {
#ifdef SC_G512
  if (!sc_gemm_own_active()) return -1;
  int64_t mpad = sc_packed_rows(m);
  for (int64_t pc = 0; pc < k; pc += KC) {
    int64_t kc = k - pc < KC ? k - pc : KC;
    for (int64_t i = 0; i < m; i += MR)
      pack_a(ta, a, lda, i, m - i < MR ? m - i : MR, pc, kc, dst + pc * mpad + i * kc);
  }
  return 0;
#else
  (void)ta; (void)a; (void)lda; (void)m; (void)k; (void)dst;
  return -1;
#endif
}

int sc_pack_cols_t(const float *b, int64_t ldb, int64_t n, int64_t rows, float *dst) {
#ifdef SC_G512
  if (!sc_gemm_own_active()) return -1;
  for (int64_t j = 0; j < n; j += NR) {
    int64_t nr = n - j < NR ? n - j : NR;
    pack_b(1, b, ldb, j, nr, nr <= 16 ? 16 : NR, 0, rows, dst + j * rows);
  }
  return 0;
#else
  (void)b; (void)ldb; (void)n; (void)rows; (void)dst;
  return -1;
#endif
}

int sc_pack_rows_t(const float *w, int64_t ld, int64_t nr, int64_t wdt, int64_t k, float *dst) {
#ifdef SC_G512
  static int avx512 = -1;
  if (avx512 < 0) avx512 = sc_cpu_avx512();
  if (!avx512 || nr > wdt) return -1;
  pack_b(1, w, ld, 0, nr, wdt, 0, k, dst);
  return 0;
#else
  (void)w; (void)ld; (void)nr; (void)wdt; (void)k; (void)dst;
  return -1;
#endif
}
