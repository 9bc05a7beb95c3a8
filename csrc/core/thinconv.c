/*
 * scorch core: 3x3 convolutions at stride 1 and padding 1 with a single
 * channel on one side, in float32: a U-Net's first convolution (1 -> 32
 * channels of a grey image) and its last (32 -> 1).
 *
 * conv.c would unfold such a convolution into 9C rows of columns and run a
 * product with one row (O = 1) or nine columns of depth (C = 1): a
 * matrix-vector product bound by the column buffer's traffic, or a packing
 * of nine rows per product.  Here each output row is summed straight from
 * the input rows in registers instead, 16 pixels to a vector:
 *
 * - one output channel (O = 1): y[h] = b + sum over c, ki, kj of
 *   w[c, ki, kj] x[c, h + ki - 1, . + kj - 1], a fused multiply-add chain
 *   over (c, ki, kj) in that order from zero, the bias added last;
 * - one input channel (C = 1): the nine shifted vectors of x are loaded
 *   once per 16 pixels and serve every output channel, each the chain over
 *   the nine taps from zero, then the bias;
 * - the weight gradient: per (o, c) pair, nine vector sums of gy x shifted
 *   x over a sample's pixels, each sample's nine reduced to floats and
 *   added over samples in double, in sample order.
 *
 * Padding is never stored: a tap's load is masked where it would read left
 * of column 0 or right of column W - 1, and rows outside the image are
 * skipped (O = 1, the weight gradient) or read as zeros (C = 1).  Every
 * output element is computed by one thread in one fixed order, so the bits
 * do not depend on the thread count (image_ops_spec checks 1 against 2).
 *
 * Only on CPUs where gemm512.c runs (AVX-512), and for rows of at most 64
 * pixels (four vectors); elsewhere conv.c's paths stay as they are.
 */
#include "thinconv.h"
#include "gemm512.h"
#include "pool.h"
#include "tensor.h"
#include "vmath.h"

#include <stdint.h>
#include <string.h>

#ifdef SC_HAVE_V4
#define SC_THIN 1
#include <immintrin.h>
#define V4 SC_V4
#endif

#define THIN_MAX_W 64 /* four 16-float vectors to a row */
/* multiply-adds below which a call stays on one thread */
#define THIN_PAR_MACS (1 << 18)

static int thin_on = 1;

int sc_thin_conv(int on) {
  int was = thin_on;
  thin_on = on != 0;
  return was;
}

int sc_thin_ok(sc_dtype dt, int64_t C, int64_t O, int64_t H, int64_t W, const sc_conv_geom *g) {
#ifdef SC_THIN
  return thin_on && dt == SC_FLOAT32 && sc_gemm_own_active() && g->kh == 3 && g->kw == 3 &&
         g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 && g->ph == 1 && g->pw == 1 &&
         (C == 1 || O == 1) && H >= 1 && W >= 1 && W <= THIN_MAX_W;
#else
  (void)dt, (void)C, (void)O, (void)H, (void)W, (void)g;
  return 0;
#endif
}

#ifdef SC_THIN

/* p + off floats as an address (vmath.h's sc_fat): a masked load reaches
   left of a row, its padding masked off */
#define at sc_fat

/* mk[v][kj]: the lanes of vector v (pixels 16v .. 16v + 15) that exist and
   whose tap kj (column offset kj - 1) reads inside the row; mk[v][1] is
   the pixels that exist */
typedef __mmask16 tap_masks[4][3];

static void masks_of(int64_t W, tap_masks mk) {
  for (int64_t v = 0; v < 4; v++) {
    int64_t w0 = 16 * v, n = W - w0 < 0 ? 0 : W - w0 > 16 ? 16 : W - w0;
    __mmask16 m = (__mmask16)((1u << n) - 1u);
    mk[v][1] = m;
    mk[v][0] = w0 == 0 ? (__mmask16)(m & ~1u) : m;        /* pixel -1 is padding */
    mk[v][2] = W - w0 - 1 >= 16 ? m : (__mmask16)(m >> 1); /* pixel W is padding */
  }
}

typedef struct {
  const float *x, *w, *b, *gy;
  float *y;
  int64_t xsn, gsn; /* sample strides of x and gy, in floats */
  int64_t N, C, H, W, O;
  tap_masks mk;
} thin_job;

/* One sample, O = 1: x [C, H, W] -> y [H, W], w [C, 9].  RB output rows
   at a time (RB * NV chains of multiply-adds, enough to cover the FMA's
   latency), each input row's three shifted vectors loaded once for the
   output rows it feeds; per output element the order is still (c, ki, kj). */
static inline V4 __attribute__((always_inline)) void sample_o1(const thin_job *J, const float *x,
                                                               float *y, const int NV) {
  const int RB = NV == 1 ? 8 : NV == 2 ? 4 : NV == 3 ? 3 : 2;
  int64_t C = J->C, H = J->H, W = J->W;
  __m512 bias = _mm512_set1_ps(J->b ? J->b[0] : 0.0f);
  for (int64_t h0 = 0; h0 < H; h0 += RB) {
    __m512 acc[8][4];
#pragma GCC unroll 9
    for (int r = 0; r < RB; r++)
#pragma GCC unroll 9
      for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();
    for (int64_t c = 0; c < C; c++) {
      const float *xc = x + c * H * W, *wc = J->w + c * 9;
      /* input row h0 - 1 + i feeds output row h0 + r through ki = i - r */
#pragma GCC unroll 10
      for (int i = 0; i < RB + 2; i++) {
        int64_t hr = h0 - 1 + i;
        if (hr < 0 || hr >= H) continue;
        const float *xr = xc + hr * W;
        __m512 t[3][4];
#pragma GCC unroll 9
        for (int kj = 0; kj < 3; kj++)
#pragma GCC unroll 9
          for (int v = 0; v < NV; v++)
            t[kj][v] = _mm512_maskz_loadu_ps(J->mk[v][kj], at(xr, 16 * v + kj - 1));
#pragma GCC unroll 9
        for (int r = 0; r < RB; r++) {
          int ki = i - r;
          if (ki < 0 || ki > 2) continue;
#pragma GCC unroll 9
          for (int kj = 0; kj < 3; kj++) {
            __m512 wv = _mm512_set1_ps(wc[ki * 3 + kj]);
#pragma GCC unroll 9
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(wv, t[kj][v], acc[r][v]);
          }
        }
      }
    }
#pragma GCC unroll 9
    for (int r = 0; r < RB; r++) {
      if (h0 + r >= H) break;
#pragma GCC unroll 9
      for (int v = 0; v < NV; v++)
        _mm512_mask_storeu_ps(y + (h0 + r) * W + 16 * v, J->mk[v][1],
                              _mm512_add_ps(acc[r][v], bias));
    }
  }
}

/* One sample, C = 1: x [H, W] -> y [O, H, W], w [O, 9] */
static inline V4 __attribute__((always_inline)) void sample_c1(const thin_job *J, const float *x,
                                                               float *y, const int NV) {
  int64_t H = J->H, W = J->W, O = J->O;
  for (int64_t h = 0; h < H; h++)
#pragma GCC unroll 9
    for (int v = 0; v < NV; v++) {
      __m512 t[9];
#pragma GCC unroll 9
      for (int64_t ki = 0; ki < 3; ki++) {
        int64_t hr = h + ki - 1;
#pragma GCC unroll 9
        for (int kj = 0; kj < 3; kj++)
          t[ki * 3 + kj] = hr < 0 || hr >= H
                               ? _mm512_setzero_ps()
                               : _mm512_maskz_loadu_ps(J->mk[v][kj],
                                                       at(x + hr * W, 16 * v + kj - 1));
      }
      for (int64_t o = 0; o < O; o++) {
        const float *wo = J->w + o * 9;
        __m512 acc = _mm512_setzero_ps();
#pragma GCC unroll 9
        for (int k = 0; k < 9; k++) acc = _mm512_fmadd_ps(_mm512_set1_ps(wo[k]), t[k], acc);
        if (J->b) acc = _mm512_add_ps(acc, _mm512_set1_ps(J->b[o]));
        _mm512_mask_storeu_ps(y + (o * H + h) * W + 16 * v, J->mk[v][1], acc);
      }
    }
}

/* NV (vectors to a row) as a constant, so the accumulators stay in registers */
#define BY_NV(CALL, NV)        \
  switch (NV) {                \
  case 1: CALL(1); break;      \
  case 2: CALL(2); break;      \
  case 3: CALL(3); break;      \
  default: CALL(4); break;     \
  }

static V4 void forward_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  (void)tid;
  const thin_job *J = ctx;
  int64_t HW = J->H * J->W, nv = (J->W + 15) / 16;
  for (int64_t n = lo; n < hi; n++) {
    const float *x = J->x + n * J->xsn;
    float *y = J->y + n * J->O * HW;
    if (J->C == 1) {
#define C1(K) sample_c1(J, x, y, K)
      BY_NV(C1, nv)
#undef C1
    } else {
#define O1(K) sample_o1(J, x, y, K)
      BY_NV(O1, nv)
#undef O1
    }
  }
}

/* The nine sums of one (o, c) pair over one sample, added to s in double */
static inline V4 __attribute__((always_inline)) void wsample(const thin_job *J, const float *x,
                                                             const float *g, double *s,
                                                             const int NV) {
  int64_t H = J->H, W = J->W;
  __m512 acc[9];
#pragma GCC unroll 9
  for (int k = 0; k < 9; k++) acc[k] = _mm512_setzero_ps();
  for (int64_t h = 0; h < H; h++)
#pragma GCC unroll 9
    for (int v = 0; v < NV; v++) {
      __m512 gv = _mm512_maskz_loadu_ps(J->mk[v][1], g + h * W + 16 * v);
#pragma GCC unroll 9
      for (int64_t ki = 0; ki < 3; ki++) {
        int64_t hr = h + ki - 1;
        if (hr < 0 || hr >= H) continue;
        const float *xr = x + hr * W;
#pragma GCC unroll 9
        for (int kj = 0; kj < 3; kj++)
          acc[ki * 3 + kj] = _mm512_fmadd_ps(
              gv, _mm512_maskz_loadu_ps(J->mk[v][kj], at(xr, 16 * v + kj - 1)), acc[ki * 3 + kj]);
      }
    }
#pragma GCC unroll 9
  for (int k = 0; k < 9; k++) s[k] += (double)_mm512_reduce_add_ps(acc[k]);
}

/* units lo..hi: the (o, c) pairs, o = u when C == 1, else c = u */
static V4 void weight_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  (void)tid;
  const thin_job *J = ctx;
  int64_t HW = J->H * J->W, nv = (J->W + 15) / 16;
  for (int64_t u = lo; u < hi; u++) {
    int64_t o = J->C == 1 ? u : 0, c = J->C == 1 ? 0 : u;
    double s[9] = {0};
    for (int64_t n = 0; n < J->N; n++) {
      const float *x = J->x + n * J->xsn + c * HW, *g = J->gy + n * J->gsn + o * HW;
#define WS(K) wsample(J, x, g, s, K)
      BY_NV(WS, nv)
#undef WS
    }
#pragma GCC unroll 9
    for (int k = 0; k < 9; k++) J->y[(o * J->C + c) * 9 + k] = (float)s[k];
  }
}

int sc_thin_conv3x3_f32(const float *x, int64_t xsn, int64_t N, int64_t C, int64_t H,
                        int64_t W, const float *w, int64_t O, const float *bias, float *y) {
  if (!(C == 1 || O == 1) || W > THIN_MAX_W || !sc_gemm_own_active()) return -1;
  if (N == 0) return 0;
  thin_job J = {x, w, bias, NULL, y, xsn, 0, N, C, H, W, O, {{0}}};
  masks_of(W, J.mk);
  sc_parallel_for(sc_threads_for(N, N * C * O * H * W * 9, THIN_PAR_MACS), N, forward_part, &J);
  return 0;
}

int sc_thin_conv3x3_weight_f32(const float *x, int64_t xsn, const float *gy, int64_t gsn,
                               int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, float *dw) {
  if (!(C == 1 || O == 1) || W > THIN_MAX_W || !sc_gemm_own_active()) return -1;
  int64_t units = C == 1 ? O : C;
  thin_job J = {x, NULL, NULL, gy, dw, xsn, gsn, N, C, H, W, O, {{0}}};
  masks_of(W, J.mk);
  sc_parallel_for(sc_threads_for(units, N * C * O * H * W * 9, THIN_PAR_MACS), units, weight_part,
                  &J);
  return 0;
}

#else

int sc_thin_conv3x3_f32(const float *x, int64_t xsn, int64_t N, int64_t C, int64_t H,
                        int64_t W, const float *w, int64_t O, const float *bias, float *y) {
  (void)xsn, (void)x, (void)N, (void)C, (void)H, (void)W, (void)w, (void)O, (void)bias, (void)y;
  return -1;
}

int sc_thin_conv3x3_weight_f32(const float *x, int64_t xsn, const float *gy, int64_t gsn,
                               int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, float *dw) {
  (void)xsn, (void)gsn, (void)x, (void)gy, (void)N, (void)C, (void)H, (void)W, (void)O, (void)dw;
  return -1;
}

#endif
