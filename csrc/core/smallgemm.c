/*
 * scorch core: y = act(x W^T + b) in float32 for the narrow layers of the
 * models scorch is for (a few hundred features, thousands of rows).
 *
 * OpenBLAS spends a fifth of such a product copying x into its packed
 * layout and writes the output before the bias and the activation make two
 * more passes over it.  Here W (small) is packed once per call into panels
 * of 16 (or 8) output columns; x is read in place, one row element at a time
 * broadcast against a panel row; each 6 x 16 block of the output starts
 * from the bias in registers and is stored once; the SiLU runs over a block
 * of 48 rows while it is still in L1.  Every output element is one
 * sequential fused multiply-add chain over k from the bias, so the numbers
 * do not depend on the thread count or the tiling.
 */
#include "smallgemm.h"
#include "gemm512.h"
#include "tensor.h"
#include "vmath.h"
#include "pool.h"

#include <stdlib.h>
#include <string.h>

/* 8-float vectors only ever live inside this file (static inline helpers),
   so the ABI note gcc gives for returning them does not apply */
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float v8 __attribute__((vector_size(32)));

static inline v8 ld8(const float *p) {
  v8 v;
  memcpy(&v, p, sizeof v);
  return v;
}

#define MR 6  /* rows per register block */
#define RB 48 /* rows per cache block (a multiple of RMUL) */
/* row blocks are cut at multiples of every register block height (6 here,
   8 on the AVX-512 path below), so no path gets a ragged register block
   inside a row block */
#define RMUL 24

int sc_small_linear_ok(int64_t k, int64_t m) { return k <= 512 && m <= 1024; }

/* Register blocks of ROWS rows (R6: MR = 6 here; R8 on the AVX-512 path
   below), each output element a sequential FMA chain over k from the bias,
   whatever the vector width V (W floats):

   BLOCK_1: one vector per row, c[r][0..W) = bias + sum_p x_r[p] w[p][0..W),
   from a panel of W columns (the 8-column panel; on AVX-512 also 16).

   BLOCK_2: two vectors per row, the first from w and the second from w2,
   each advancing 16 floats a step: a 16-column panel in two 8-float halves
   (w2 = w + 8), or on AVX-512 two 16-column panels at once (w2 = the next
   panel), whose 12 (16) accumulators are enough independent chains to
   keep both FMA pipes busy (6 are not). */
#define R6(M) M(0) M(1) M(2) M(3) M(4) M(5)
#define R8(M) R6(M) M(6) M(7)
#define DECL1(r) __typeof__(b0) a##r = b0; const float *x##r = x[r];
#define STEP1(r) a##r += x##r[o] * w0;
#define PUT1(r) memcpy(c + r * ldc, &a##r, sizeof a##r);
#define DECL2(r) __typeof__(b0) a##r = b0, d##r = b1; const float *x##r = x[r];
#define STEP2(r) { float xv = x##r[o]; a##r += xv * w0; d##r += xv * w1; }
#define PUT2(r) memcpy(c + r * ldc, &a##r, sizeof a##r); \
  memcpy(c + r * ldc + sizeof a##r / sizeof(float), &d##r, sizeof d##r);

#define BLOCK_1(NAME, V, W, LD, ATTR, ROWS)                                           \
  static inline ATTR __attribute__((always_inline)) void NAME(                        \
      int64_t k, const float *const *x, int64_t sk, const float *w, const float *bias, \
      float *c, int64_t ldc) {                                                        \
    V b0 = LD(bias);                                                                  \
    ROWS(DECL1)                                                                       \
    for (int64_t p = 0, o = 0; p < k; p++, o += sk, w += W) {                         \
      V w0 = LD(w);                                                                   \
      ROWS(STEP1)                                                                     \
    }                                                                                 \
    ROWS(PUT1)                                                                        \
  }

#define BLOCK_2(NAME, V, W, LD, ATTR, ROWS)                                           \
  static inline ATTR __attribute__((always_inline)) void NAME(                        \
      int64_t k, const float *const *x, int64_t sk, const float *w, const float *w2,  \
      const float *bias, float *c, int64_t ldc) {                                     \
    V b0 = LD(bias), b1 = LD(bias + W);                                               \
    ROWS(DECL2)                                                                       \
    for (int64_t p = 0, o = 0; p < k; p++, o += sk, w += 16, w2 += 16) {              \
      V w0 = LD(w), w1 = LD(w2);                                                      \
      ROWS(STEP2)                                                                     \
    }                                                                                 \
    ROWS(PUT2)                                                                        \
  }

#define NO_TARGET /* the caller's: the AVX2 clone or the baseline */
BLOCK_1(block8, v8, 8, ld8, NO_TARGET, R6)
BLOCK_2(block16_halves, v8, 8, ld8, NO_TARGET, R6)
/* the 16-column panel as two 8-float halves */
#define block16(k, x, sk, w, bias, c, ldc) block16_halves(k, x, sk, w, (w) + 8, bias, c, ldc)

/* Width of the panel of output columns starting at j0: 16, or 8 for a
   last panel of at most 8 columns. */
static inline int64_t panel_width(int64_t m, int64_t j0) { return m - j0 > 8 ? 16 : 8; }

typedef struct {
  int64_t n, m, k, sn, sk;
  const float *x;
  const float *wp, *bp; /* packed panels and bias */
  float *y;             /* contiguous [n, m] */
  int act;
} job;

/* Rows [r0, r1) of the output, r1 - r0 <= RB: a macro, so that the
   AVX-512 path below is this loop with its own blocks and its own target.
   With PAIRS, two full 16-column panels in a row go through BLOCK32 at
   once; otherwise each 16-column panel through BLOCK16, and a last panel
   of at most 8 columns through block8.  The SiLU runs over the block's
   rows while they are in L1. */
#define ROWS_BLOCK_BODY(PAIRS, BLOCK32, BLOCK16, BLOCK8, MRB)                                \
  int64_t m = J->m, k = J->k;                                                          \
  float tmp[MRB * 32] = {0}; /* only partial blocks use it */                          \
  for (int64_t j0 = 0; j0 < m;) {                                                      \
    int64_t wdt = panel_width(m, j0);                                                  \
    int pair = PAIRS && wdt == 16 && j0 + 16 < m && panel_width(m, j0 + 16) == 16;     \
    int64_t span = pair ? 32 : wdt;                                                    \
    int64_t valid = m - j0 < span ? m - j0 : span;                                     \
    const float *w = J->wp + j0 * k, *b = J->bp + j0;                                  \
    for (int64_t i = r0; i < r1; i += MRB) {                                           \
      const float *xr[MRB];                                                            \
      int64_t rows = r1 - i < MRB ? r1 - i : MRB;                                      \
      for (int r = 0; r < MRB; r++) /* missing rows repeat the last real one */        \
        xr[r] = J->x + (i + (r < rows ? r : rows - 1)) * J->sn;                       \
      int direct = rows == MRB && valid == span;                                       \
      float *c = direct ? J->y + i * m + j0 : tmp;                                     \
      int64_t ldc = direct ? m : span;                                                 \
      if (pair) BLOCK32(k, xr, J->sk, w, w + 16 * k, b, c, ldc);                       \
      else if (wdt == 16) BLOCK16(k, xr, J->sk, w, b, c, ldc);                         \
      else BLOCK8(k, xr, J->sk, w, b, c, ldc);                                         \
      if (!direct)                                                                     \
        for (int64_t r = 0; r < rows; r++)                                             \
          memcpy(J->y + (i + r) * m + j0, tmp + r * span, (size_t)valid * sizeof(float)); \
    }                                                                                  \
    j0 += span;                                                                        \
  }                                                                                    \
  if (J->act == SC_ACT_SILU) {                                                         \
    float *y = J->y + r0 * m;                                                          \
    for (int64_t i = 0, e = (r1 - r0) * m; i < e; i++) y[i] = sc_vsiluf(y[i]);         \
  }

#define NO_PAIRS(...) ((void)0)

SC_DISPATCH static void rows_block(const job *J, int64_t r0, int64_t r1) {
  ROWS_BLOCK_BODY(0, NO_PAIRS, block16, block8, MR)
}

#ifdef SC_HAVE_V4
/* CPUs with AVX-512: a 16-column panel is one 16-float register per row,
   and pairs of panels run as one block of 12 accumulators.  Each output
   element is still the same sequential FMA chain over k from the bias, so
   the numbers are those of the AVX2 path bit for bit (fused_spec compares
   them); only the register width changes. */
#define SC_V16 1
#define V4 __attribute__((target("arch=x86-64-v4")))
typedef float v16 __attribute__((vector_size(64)));

static inline V4 __attribute__((always_inline)) v16 ld16(const float *p) {
  v16 v;
  memcpy(&v, p, sizeof v);
  return v;
}

/* Register blocks of MR16 = 8 rows here: a pair of panels is 16
   accumulators and two loads of W for 16 multiply-adds (6 rows gave 12 for
   12), which keeps both FMA pipes of a Zen 5 or Skylake-X core fuller; one
   panel is 8 accumulators, as many as two pipes of four-cycle FMAs need. */
#define MR16 8
BLOCK_1(block16_v16, v16, 16, ld16, V4, R8)
BLOCK_1(block8_v16, v8, 8, ld8, V4, R8) /* a last panel of at most 8 columns */
BLOCK_2(block32_v16, v16, 16, ld16, V4, R8)

static V4 void rows_block_v16(const job *J, int64_t r0, int64_t r1) {
  ROWS_BLOCK_BODY(1, block32_v16, block16_v16, block8_v16, MR16)
}
#endif

/* -1: not decided yet; 0: AVX2 (or plain) path; 1: AVX-512 path */
static int use_v16 = -1;

int sc_small_linear_avx512(int on) { return sc_avx512_switch(&use_v16, on); }

static void run_rows(const job *J, int64_t r0, int64_t r1) {
#ifdef SC_V16
  if (use_v16) {
    rows_block_v16(J, r0, r1);
    return;
  }
#endif
  rows_block(J, r0, r1);
}

static inline int64_t padded16(int64_t m) { return (m + 15) / 16 * 16; }

/* The bias [m] (stride sb, or NULL: zeros) as padded16(m) floats at bp,
   zeros past m. */
static void pack_bias(int64_t m, const float *bias, int64_t sb, float *bp) {
  for (int64_t j = 0; j < padded16(m); j++) bp[j] = bias && j < m ? bias[j * sb] : 0.0f;
}

/* W [m, k] (strides swm, swk) into panels of 16 (or 8) columns at wp, the
   bias (zeros without one) at bp; wp holds mp*k + mp floats, mp = m padded
   to 16. */
static void pack_layer(int64_t m, int64_t k, const float *w, int64_t swm, int64_t swk,
                       const float *bias, int64_t sb, float *wp, float *bp) {
  for (int64_t j0 = 0; j0 < m; j0 += 16) {
    int64_t wdt = panel_width(m, j0);
    float *pj = wp + j0 * k;
    int64_t nr = m - j0 < wdt ? m - j0 : wdt;
    /* rows of W stored whole: vector transposes where the CPU has them */
    if (swk != 1 || sc_pack_rows_t(w + j0 * swm, swm, nr, wdt, k, pj) != 0)
      for (int64_t p = 0; p < k; p++)
        for (int64_t c = 0; c < wdt; c++)
          pj[p * wdt + c] = c < nr ? w[(j0 + c) * swm + p * swk] : 0.0f;
  }
  pack_bias(m, bias, sb, bp);
}

/* ---- bfloat16 products (opt-in, inference only) ---------------------------

   With matmul precision "medium" (sc_matmul_bf16), a chain's layers with at
   least BF_MIN_K inputs take their inputs and weights rounded to bfloat16
   (round to nearest even) and multiply them with AVX512-BF16's VDPBF16PS:
   each instruction adds two bfloat16 products per lane to a float32
   accumulator, twice the multiply-adds of a float32 FMA.  The bias, the
   sums, the SiLU and the layers' outputs stay float32; only the products'
   operands lose bits (8 significant bits instead of 24).  Each output row
   depends only on its own input row, so the numbers are the same at any
   thread count; they differ from the float32 path by the operands'
   rounding, about 2^-9 of each operand.

   Weights are packed per panel of 16 output columns as 16 pairs per pair of
   inputs: for inputs (2q, 2q+1), the 32 bfloat16 W[j0+c][2q], W[j0+c][2q+1]
   for c = 0..15 (odd k padded with a zero input).  An input row is stored
   as its bfloat16 values, so one 32-bit broadcast gives the pair. */
#define BF_MIN_K 16

static inline uint16_t bf16_rne(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

static inline int64_t even_up(int64_t k) { return (k + 1) & ~(int64_t)1; }

/* W [m, k] (strides swm, swk) into bfloat16 panels at wb: padded16(m) *
   even_up(k) values. */
static void pack_layer_bf16(int64_t m, int64_t k, const float *w, int64_t swm, int64_t swk,
                            uint16_t *wb) {
  int64_t kp = even_up(k);
  for (int64_t j0 = 0; j0 < m; j0 += 16) {
    uint16_t *pj = wb + j0 * kp;
    for (int64_t q = 0; q < kp / 2; q++)
      for (int64_t c = 0; c < 16; c++)
        for (int e = 0; e < 2; e++) {
          int64_t p = 2 * q + e, j = j0 + c;
          pj[q * 32 + 2 * c + e] = j < m && p < k ? bf16_rne(w[j * swm + p * swk]) : 0;
        }
  }
}

static int bf16_cpu = -1; /* -1: not asked yet */
static int bf16_on;       /* the setting: 1 = "medium" */

int sc_matmul_bf16(int on) {
  int prev = bf16_on;
  if (on >= 0) bf16_on = on != 0;
  return prev;
}

int sc_cpu_bf16(void) {
#ifdef SC_V16
  if (bf16_cpu < 0) {
    __builtin_cpu_init();
    bf16_cpu = sc_cpu_avx512() && __builtin_cpu_supports("avx512bf16");
  }
  return bf16_cpu;
#else
  return 0;
#endif
}

#ifdef SC_V16
#include <immintrin.h>
#define BFT __attribute__((target("arch=x86-64-v4,avx512bf16")))

/* Rows [0, rows) of x (strides sn, sk; rows <= RB) as bfloat16 rows of kp
   values at xb, zero-padded past k. */
static BFT void bf16_rows_in(const float *x, int64_t sn, int64_t sk, int64_t rows, int64_t k,
                             int64_t kp, uint16_t *xb) {
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * sn;
    uint16_t *o = xb + r * kp;
    if (sk == 1) {
      for (int64_t p = 0; p < kp; p += 32) {
        int64_t left = k - p;
        __mmask16 lo = left >= 16 ? 0xffff : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
        __mmask16 hi = left >= 32 ? 0xffff : left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0;
        __m512 a = _mm512_maskz_loadu_ps(lo, xr + p), b = _mm512_maskz_loadu_ps(hi, xr + p + 16);
        __m512i v = (__m512i)_mm512_cvtne2ps_pbh(b, a); /* a in the low half */
        int64_t n = kp - p < 32 ? kp - p : 32;
        _mm512_mask_storeu_epi16(o + p, (__mmask32)(n == 32 ? 0xffffffffu : (1u << n) - 1), v);
      }
    } else {
      for (int64_t p = 0; p < kp; p++) o[p] = p < k ? bf16_rne(xr[p * sk]) : 0;
    }
  }
}

/* 8 rows x (16 or 32) columns from bias + the pairs' products, one
   accumulator per row and panel. */
#define BF_DECL(r) __m512 a##r = b0, d##r = b1; const uint32_t *x##r = (const uint32_t *)x[r];
#define BF_STEP(r) { __m512bh xv = (__m512bh)_mm512_set1_epi32((int)x##r[q]); \
    a##r = _mm512_dpbf16_ps(a##r, xv, w0); if (PAIR) d##r = _mm512_dpbf16_ps(d##r, xv, w1); }
#define BF_PUT(r) _mm512_storeu_ps(c + r * ldc, a##r); \
    if (PAIR) _mm512_storeu_ps(c + r * ldc + 16, d##r);
#define BF_BLOCK(NAME, PAIR_)                                                          \
  static inline BFT __attribute__((always_inline)) void NAME(                         \
      int64_t kq, const uint16_t *const *x, const uint16_t *w, const uint16_t *w2,    \
      const float *bias, float *c, int64_t ldc) {                                     \
    enum { PAIR = PAIR_ };                                                            \
    __m512 b0 = _mm512_loadu_ps(bias), b1 = PAIR ? _mm512_loadu_ps(bias + 16) : b0;   \
    R8(BF_DECL)                                                                       \
    for (int64_t q = 0; q < kq; q++, w += 32, w2 += 32) {                             \
      __m512bh w0 = (__m512bh)_mm512_loadu_si512(w);                                  \
      __m512bh w1 = PAIR ? (__m512bh)_mm512_loadu_si512(w2) : w0;                     \
      R8(BF_STEP)                                                                     \
    }                                                                                 \
    R8(BF_PUT)                                                                        \
  }
BF_BLOCK(bf_block16, 0)
BF_BLOCK(bf_block32, 1)

/* The layer J (rows [0, J->n)) with bfloat16 panels wb, its input block
   rounded into xb first; then the SiLU as in the float32 path. */
static BFT void bf16_rows_v4(const job *J, const uint16_t *wb, uint16_t *xb) {
  int64_t m = J->m, k = J->k, kp = even_up(k), rows = J->n;
  bf16_rows_in(J->x, J->sn, J->sk, rows, k, kp, xb);
  float tmp[MR16 * 32];
  for (int64_t j0 = 0; j0 < m;) {
    int pair = j0 + 16 < m; /* a second panel with at least one column */
    int64_t span = pair ? 32 : 16, valid = m - j0 < span ? m - j0 : span;
    const uint16_t *w = wb + j0 * kp;
    const float *b = J->bp + j0;
    for (int64_t i = 0; i < rows; i += MR16) {
      const uint16_t *xr[MR16];
      int64_t nr = rows - i < MR16 ? rows - i : MR16;
      for (int r = 0; r < MR16; r++) xr[r] = xb + (i + (r < nr ? r : nr - 1)) * kp;
      int direct = nr == MR16 && valid == span;
      float *c = direct ? J->y + i * m + j0 : tmp;
      int64_t ldc = direct ? m : span;
      if (pair) bf_block32(kp / 2, xr, w, w + 16 * kp, b, c, ldc);
      else bf_block16(kp / 2, xr, w, w, b, c, ldc);
      if (!direct)
        for (int64_t r = 0; r < nr; r++)
          memcpy(J->y + (i + r) * m + j0, tmp + r * span, (size_t)valid * sizeof(float));
    }
    j0 += span;
  }
  if (J->act == SC_ACT_SILU) {
    float *y = J->y;
    for (int64_t i = 0, e = rows * m; i < e; i++) y[i] = sc_vsiluf(y[i]);
  }
}
#endif

static void bf16_rows(const job *J, const uint16_t *wb, uint16_t *xb) {
#ifdef SC_V16
  bf16_rows_v4(J, wb, xb);
#else
  (void)J, (void)wb, (void)xb; /* never called: sc_cpu_bf16() is 0 */
#endif
}

/* ---- a chain of layers, block by block ------------------------------------

   y = f_L(... f_1(x)) with f_l(h) = act_l(h W_l^T + b_l), for the MLPs of
   the 2-D models (a few hundred features, thousands of rows).  Layer by
   layer, every activation of [10000, 128] goes out to L3 and back; here a
   block of RB rows goes through all the layers while its activations stay
   in L1 (two buffers of RB x width per thread).  Each layer's block is the
   same rows_block call on the same packed panels as a single layer's, so
   every number equals that of the layer-by-layer calls. */
typedef struct {
  int64_t n;
  int nl;
  const int64_t *dims;
  const float *x;
  int64_t sn, sk;
  float *const *wp, *const *bp;
  const int *act;
  float *y;
  float *scratch;   /* thread t's two buffers of RB x maxw at scratch + t * tstride,
                       then (bfloat16 chains) its RB x maxk bfloat16 input block */
  int64_t maxw, rb; /* rb: rows per block, at most RB */
  size_t tstride;   /* in floats: sc_thread_stride(its bytes, threads) */
  uint16_t *const *wb; /* NULL, or per layer bfloat16 panels (NULL: a float32 layer) */
  int64_t maxk;        /* the widest bfloat16 layer's input, rounded up to even */
} chain_job;

static void chain_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  const chain_job *C = ctx;
  float *buf[2] = {C->scratch + (size_t)tid * C->tstride,
                   C->scratch + (size_t)tid * C->tstride + (size_t)RB * C->maxw};
  uint16_t *xb = C->wb ? (uint16_t *)(buf[1] + (size_t)RB * C->maxw) : NULL;
  for (int64_t bi = lo; bi < hi; bi++) {
    int64_t r0 = bi * C->rb, rows = r0 + C->rb < C->n ? C->rb : C->n - r0;
    const float *in = C->x + r0 * C->sn;
    int64_t sn = C->sn, sk = C->sk;
    for (int l = 0; l < C->nl; l++) {
      int64_t k = C->dims[l], m = C->dims[l + 1];
      float *out = l == C->nl - 1 ? C->y + r0 * m : buf[l & 1];
      job J = {rows, m, k, sn, sk, in, C->wp[l], C->bp[l], out, C->act[l]};
      if (C->wb && C->wb[l]) bf16_rows(&J, C->wb[l], xb);
      else run_rows(&J, 0, rows);
      in = out, sn = m, sk = 1;
    }
  }
}

/* Whether layer l of a chain runs in bfloat16 (bf16 asked for, the CPU has
   it, and the layer is wide enough to gain). */
static int layer_bf16(int bf16, int64_t k) { return bf16 && k >= BF_MIN_K; }

static int mlp_run(int64_t n, int nl, const int64_t *dims, const float *x, int64_t sn,
                   int64_t sk, const float *const *w, const int64_t *swm, const int64_t *swk,
                   const float *const *bias, const int64_t *sb, const int *act, float *y,
                   int nthreads, int bf16) {
  if (n <= 0 || nl <= 0) return 0;
  if (nl > SC_MLP_MAX_LAYERS) return -1;
  bf16 = bf16 && sc_cpu_bf16();
  size_t total = 0, btotal = 0; /* floats of float32 panels, bfloat16 values of the others */
  int64_t maxw = 1, maxk = 0;
  for (int l = 0; l < nl; l++) {
    total += (size_t)(padded16(dims[l + 1]) * (dims[l] + 1));
    if (layer_bf16(bf16, dims[l])) {
      btotal += (size_t)(padded16(dims[l + 1]) * even_up(dims[l]));
      if (even_up(dims[l]) > maxk) maxk = even_up(dims[l]);
    }
    if (l < nl - 1 && dims[l + 1] > maxw) maxw = dims[l + 1];
  }
  int64_t blocks = (n + RB - 1) / RB, rb = RB;
  int nt = nthreads < 1 ? 1 : nthreads;
  if (nt > blocks) nt = (int)blocks;
  double work = 0; /* below a million multiply-adds, one thread */
  for (int l = 0; l < nl; l++) work += (double)n * (double)dims[l] * (double)dims[l + 1];
  if (work < 1e6) nt = 1;
  if (nt > 1 && blocks % nt) {
    /* as many blocks per thread, each a whole number of register blocks
       (128 rows on 2 threads: 4 x 32, not 48 + 48 | 32): every row's
       numbers are the same whatever block it falls in */
    blocks = (blocks + nt - 1) / nt * nt;
    rb = ((n + blocks - 1) / blocks + RMUL - 1) / RMUL * RMUL;
    blocks = (n + rb - 1) / rb;
  }
  /* a single layer writes y directly and needs no buffers, bar the
     bfloat16 input block */
  size_t tbytes = (size_t)2 * RB * (size_t)maxw * sizeof(float) +
                  (size_t)RB * (size_t)maxk * sizeof(uint16_t);
  if (nl == 1 && !maxk) tbytes = 0;
  size_t tstride = sc_thread_stride(tbytes, nt);
  size_t bbytes = (btotal * sizeof(uint16_t) + 63) / 64 * 64;
  size_t bytes = total * sizeof(float) + bbytes + tstride * (size_t)nt;
  float *mem = sc_aligned_alloc(bytes);
  if (!mem) return -1;
  float *wp[SC_MLP_MAX_LAYERS], *bp[SC_MLP_MAX_LAYERS];
  uint16_t *wb[SC_MLP_MAX_LAYERS];
  float *at = mem;
  uint16_t *bat = (uint16_t *)(mem + total);
  for (int l = 0; l < nl; l++) {
    int64_t k = dims[l], m = dims[l + 1];
    wp[l] = at;
    bp[l] = at + padded16(m) * k;
    wb[l] = NULL;
    if (layer_bf16(bf16, k)) { /* bfloat16 panels; the bias stays float32 */
      wb[l] = bat;
      pack_layer_bf16(m, k, w[l], swm[l], swk[l], bat);
      bat += padded16(m) * even_up(k);
      pack_bias(m, bias[l], sb[l], bp[l]);
    } else {
      pack_layer(m, k, w[l], swm[l], swk[l], bias[l], sb[l], wp[l], bp[l]);
    }
    at += padded16(m) * (k + 1);
  }
  if (use_v16 < 0) use_v16 = sc_cpu_avx512();
  chain_job C = {n, nl, dims, x, sn, sk, wp, bp, act, y,
                 (float *)((char *)(mem + total) + bbytes), maxw, rb,
                 tstride / sizeof(float), maxk ? wb : NULL, maxk};
  sc_parallel_for(nt, blocks, chain_part, &C);
  sc_aligned_free(mem, bytes);
  return 0;
}

int sc_small_mlp_f32(int64_t n, int nl, const int64_t *dims, const float *x, int64_t sn,
                     int64_t sk, const float *const *w, const int64_t *swm, const int64_t *swk,
                     const float *const *bias, const int64_t *sb, const int *act, float *y,
                     int nthreads) {
  return mlp_run(n, nl, dims, x, sn, sk, w, swm, swk, bias, sb, act, y, nthreads, 0);
}

int sc_small_mlp_bf16(int64_t n, int nl, const int64_t *dims, const float *x, int64_t sn,
                      int64_t sk, const float *const *w, const int64_t *swm, const int64_t *swk,
                      const float *const *bias, const int64_t *sb, const int *act, float *y,
                      int nthreads) {
  return mlp_run(n, nl, dims, x, sn, sk, w, swm, swk, bias, sb, act, y, nthreads, 1);
}

/* One layer is a chain of one: the same blocks, threads and numbers. */
#define ONE_LAYER(bf16)                                                                \
  int64_t dims[2] = {k, m};                                                            \
  return m <= 0 ? 0 : mlp_run(n, 1, dims, x, sn, sk, &w, &swm, &swk, &bias, &sb, &act, y, \
                              nthreads, bf16)
int sc_small_linear_f32(int64_t n, int64_t m, int64_t k, const float *x, int64_t sn,
                        int64_t sk, const float *w, int64_t swm, int64_t swk,
                        const float *bias, int64_t sb, float *y, int act, int nthreads) {
  ONE_LAYER(0);
}
int sc_small_linear_bf16(int64_t n, int64_t m, int64_t k, const float *x, int64_t sn,
                         int64_t sk, const float *w, int64_t swm, int64_t swk,
                         const float *bias, int64_t sb, float *y, int act, int nthreads) {
  ONE_LAYER(1);
}
#undef ONE_LAYER
