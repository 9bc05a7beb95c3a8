/*
 * scorch core: the linear image ops convolutions are built from.
 *
 * im2col unfolds every kernel window of an [N, C, H, W] image into a column
 * ([N, C*kh*kw, Ho*Wo]); a convolution is then one matrix product.  col2im
 * is its transpose (summing overlapping windows back), so each is the
 * other's backward, and convolution differentiates to any order.
 * upsample_nearest and sum_pool (non-overlapping windows) are a transpose
 * pair the same way.
 */
#include "autograd.h"
#include "conv.h"
#include "internal.h"

#include <cblas.h>
#include "pool.h"
#include "thinconv.h"
#include "vmath.h"
#include "wino.h"
#include <string.h>

static int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
  return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

static int check_geom(const char *fn, const sc_conv_geom *g) {
  if (g->kh < 1 || g->kw < 1 || g->sh < 1 || g->sw < 1 || g->ph < 0 ||
      g->pw < 0 || g->dh < 1 || g->dw < 1) {
    sc_set_error("%s: kernel %lldx%lld, stride %lldx%lld, padding %lldx%lld, "
                 "dilation %lldx%lld: sizes must be positive (padding >= 0)", fn,
                 (long long)g->kh, (long long)g->kw, (long long)g->sh,
                 (long long)g->sw, (long long)g->ph, (long long)g->pw,
                 (long long)g->dh, (long long)g->dw);
    return -1;
  }
  return 0;
}

/* Output columns [lo, hi) of a row whose input column ow*s + off falls
   inside [0, W); the rest read padding. */
static void valid_range(int64_t Wo, int64_t W, int64_t s, int64_t off,
                        int64_t *lo, int64_t *hi) {
  int64_t a = off >= 0 ? 0 : (-off + s - 1) / s;
  int64_t b = W - off <= 0 ? 0 : (W - off + s - 1) / s;
  *lo = a < Wo ? a : Wo;
  *hi = b < Wo ? b : Wo;
  if (*hi < *lo) *hi = *lo;
}

/* Copies one (n, c) plane's windows into its kh*kw rows of the columns, or
   adds them back (col2im).  Each plane is owned by one thread. */

/* One tap as a shift of a whole plane.  The column row r and the source
   plane P are both Hs x Ws, and r[i, j] = P[i + dy, j + dx] where that is
   inside P, else 0: over the flat planes that is one long copy by
   dy*Ws + dx, after which the |dx| columns that wrapped round from the
   neighbouring row are cleared.  back adds r into P at the same places
   instead, row by row over the valid span (r is only read: it may be the
   caller's tensor).  For 28-pixel rows the copy replaces 28 short copies
   and 56 short fills per window. */
#define SHIFT_PLANE(T)                                                       \
  static void shift_##T(T *P, T *r, int64_t Hs, int64_t Ws, int64_t dy,      \
                        int64_t dx, int back) {                              \
    /* the rows and columns of r that read inside P */                      \
    int64_t i0 = dy < 0 ? -dy : 0, i1 = Hs - (dy > 0 ? dy : 0);              \
    int64_t j0 = dx < 0 ? -dx : 0, j1 = Ws - (dx > 0 ? dx : 0);              \
    if (i0 > Hs) i0 = Hs;                                                    \
    if (i1 < i0) i1 = i0;                                                    \
    if (j0 > Ws) j0 = Ws;                                                    \
    if (j1 < j0) j1 = j0;                                                    \
    int64_t off = dy * Ws + dx;                                              \
    if (back) {                                                              \
      for (int64_t i = i0; i < i1; i++) {                                    \
        T *restrict d = P + i * Ws + off;                                    \
        const T *restrict q = r + i * Ws;                                    \
        for (int64_t j = j0; j < j1; j++) d[j] += q[j];                      \
      }                                                                      \
      return;                                                                \
    }                                                                        \
    int64_t HW = Hs * Ws, lo = off < 0 ? -off : 0, hi = off > 0 ? HW - off : HW; \
    if (lo > HW) lo = HW;                                                    \
    if (hi < lo) hi = lo;                                                    \
    if (lo > 0) memset(r, 0, sizeof(T) * (size_t)lo);                        \
    memcpy(r + lo, P + lo + off, sizeof(T) * (size_t)(hi - lo));             \
    if (hi < HW) memset(r + hi, 0, sizeof(T) * (size_t)(HW - hi));           \
    if (dx != 0)                                                             \
      for (int64_t i = 0; i < Hs; i++) {                                     \
        for (int64_t j = 0; j < j0; j++) r[i * Ws + j] = 0;                  \
        for (int64_t j = j1; j < Ws; j++) r[i * Ws + j] = 0;                 \
      }                                                                      \
  }
SHIFT_PLANE(float)
SHIFT_PLANE(double)

/* floor(a / s) and a - s floor(a / s) for s > 0 */
static int64_t floor_div(int64_t a, int64_t s) { return a >= 0 ? a / s : -((-a + s - 1) / s); }

/* Phase planes: with stride s (both ways), dilation 1 and an output of
   ceil(H/s) x ceil(W/s) (a 3x3 kernel with padding 1 at stride 2, say),
   tap (ki, kj) reads input row s*oh + ki - ph = s*(oh + dy) + a, i.e. row
   oh + dy of the image's rows a, a + s, a + 2s, ... (and likewise for
   columns).  So the image is split once into its s*s phase planes of
   Hq x Wq = Ho x Wo (zero where a phase has fewer rows or columns), and
   every tap is one shift of one phase plane.  col2im adds the taps into
   zeroed phase planes, in tap order, and adds those to the image: on a
   zeroed image (as every caller's is) each pixel gets the same sum, in the
   same order, as from the row by row loop.  Returns 0 (nothing done) where it does
   not apply. */
#define PHASE_MAX 8192
#define PHASE_PLANE(T)                                                       \
  static int phase_##T(const sc_conv_geom *g, T *img, T *col, int64_t H,     \
                       int64_t W, int64_t Ho, int64_t Wo, int64_t ld, int back) { \
    int64_t s = g->sh, Hq = (H + s - 1) / s, Wq = (W + s - 1) / s;           \
    if (g->sw != s || g->dh != 1 || g->dw != 1 || s < 2 || Ho != Hq ||       \
        Wo != Wq || s * s * Hq * Wq > PHASE_MAX)                             \
      return 0;                                                              \
    T q[PHASE_MAX];                                                          \
    int64_t HWq = Hq * Wq;                                                   \
    if (back) /* the taps' sums start from zero, as the row loop's do */     \
      memset(q, 0, sizeof(T) * (size_t)(s * s * HWq));                       \
    else /* each image row into row ih / s of its s phase planes */          \
      for (int64_t ih = 0; ih < s * Hq; ih++) {                              \
        int64_t a = ih % s, i = ih / s;                                      \
        T *pr = q + (a * s * Hq + i) * Wq; /* phase (a, 0); b is HWq on */   \
        if (ih >= H) {                                                       \
          for (int64_t b = 0; b < s; b++)                                    \
            memset(pr + b * HWq, 0, sizeof(T) * (size_t)Wq);                 \
          continue;                                                          \
        }                                                                    \
        const T *src = img + ih * W;                                         \
        int64_t jw = W / s; /* columns every phase has */                    \
        if (s == 2) {                                                        \
          T *e = pr, *o = pr + HWq;                                          \
          for (int64_t j = 0; j < jw; j++) {                                 \
            e[j] = src[2 * j];                                               \
            o[j] = src[2 * j + 1];                                           \
          }                                                                  \
        } else {                                                             \
          for (int64_t b = 0; b < s; b++)                                    \
            for (int64_t j = 0; j < jw; j++) pr[b * HWq + j] = src[s * j + b]; \
        }                                                                    \
        if (jw < Wq) /* the last, partial group of s columns */             \
          for (int64_t b = 0; b < s; b++)                                    \
            pr[b * HWq + jw] = s * jw + b < W ? src[s * jw + b] : 0;          \
      }                                                                      \
    for (int64_t ki = 0; ki < g->kh; ki++)                                   \
      for (int64_t kj = 0; kj < g->kw; kj++) {                               \
        int64_t ti = ki - g->ph, tj = kj - g->pw;                            \
        int64_t dy = floor_div(ti, s), dx = floor_div(tj, s);                \
        int64_t a = ti - s * dy, b = tj - s * dx;                            \
        shift_##T(q + (a * s + b) * HWq, col + (ki * g->kw + kj) * ld, Hq,   \
                  Wq, dy, dx, back);                                         \
      }                                                                      \
    if (!back) return 1;                                                     \
    for (int64_t a = 0; a < s; a++)                                          \
      for (int64_t b = 0; b < s; b++) {                                      \
        const T *P = q + (a * s + b) * HWq;                                  \
        int64_t jn = (W - b + s - 1) / s;                                    \
        for (int64_t i = 0; i < Hq && s * i + a < H; i++) {                  \
          T *dst = img + (s * i + a) * W + b;                                \
          for (int64_t j = 0; j < jn; j++) dst[s * j] += P[i * Wq + j];      \
        }                                                                    \
      }                                                                      \
    return 1;                                                                \
  }
PHASE_PLANE(float)
PHASE_PLANE(double)

/* The commonest strided case, a 3x3 kernel at stride 2 with padding 1 on
   rows of at most 32 pixels (a U-Net's downsampling on 28 x 28 or 14 x 14
   planes), without phase planes: on AVX-512 each image row is two vectors,
   and the three column rows it feeds (taps kj = 0, 1, 2: pixels 2 ow - 1,
   2 ow, 2 ow + 1) are one two-vector permute each.  col2im spreads each
   column row back by a one-vector permute and sums an image row's taps in
   tap order from zero before adding them to the row: the same sums, in the
   same order, as phase_float's.  Returns 0 where it does not apply. */
#ifdef SC_HAVE_V4
#include <immintrin.h>
#include "gemm512.h"

static SC_V4 void s2_plane(float *img, float *col, int64_t H, int64_t W, int64_t Ho, int64_t Wo,
                           int64_t ld, int back) {
  __mmask16 ml = (__mmask16)(W >= 16 ? 0xFFFFu : (1u << W) - 1u);
  __mmask16 mh = (__mmask16)(W <= 16 ? 0u : (1u << (W - 16)) - 1u);
  __mmask16 mo = (__mmask16)((1u << Wo) - 1u);
  if (!back) {
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __m512i im = _mm512_setr_epi32(0, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29);
    for (int64_t oh = 0; oh < Ho; oh++)
      for (int64_t ki = 0; ki < 3; ki++) {
        int64_t ih = 2 * oh + ki - 1;
        float *r = col + ki * 3 * ld + oh * Wo;
        if (ih < 0 || ih >= H) {
          for (int64_t kj = 0; kj < 3; kj++)
            _mm512_mask_storeu_ps(r + kj * ld, mo, _mm512_setzero_ps());
          continue;
        }
        float *src = img + ih * W;
        __m512 a = _mm512_maskz_loadu_ps(ml, src), b = _mm512_maskz_loadu_ps(mh, sc_fat(src, 16));
        _mm512_mask_storeu_ps(r, mo, _mm512_maskz_permutex2var_ps((__mmask16)0xFFFE, a, im, b));
        _mm512_mask_storeu_ps(r + ld, mo, _mm512_permutex2var_ps(a, ie, b));
        _mm512_mask_storeu_ps(r + 2 * ld, mo, _mm512_permutex2var_ps(a, io, b));
      }
    return;
  }
  /* lane 2j (2j + 1) of an image vector from lane j of the column row's
     low or high half, and kj = 0's lane 2j + 1 from lane j + 1 */
  const __m512i sl = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  const __m512i sh = _mm512_setr_epi32(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
  const __m512i sl1 = _mm512_setr_epi32(0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8);
  const __m512i sh1 = _mm512_setr_epi32(0, 9, 0, 10, 0, 11, 0, 12, 0, 13, 0, 14, 0, 15, 0, 0);
  const __mmask16 ev = 0x5555, od = 0xAAAA, od1 = 0x2AAA;
  for (int64_t ih = 0; ih < H; ih++) {
    __m512 lo = _mm512_setzero_ps(), hi = _mm512_setzero_ps();
    /* the taps that reach row ih, in tap order: ki = 0 (oh = (ih + 1) / 2)
       and ki = 2 (oh = (ih - 1) / 2) for odd rows, ki = 1 for even */
    for (int64_t ki = 0; ki < 3; ki++) {
      if ((ih + 1 - ki) % 2 != 0) continue;
      int64_t oh = (ih + 1 - ki) / 2;
      if (oh < 0 || oh >= Ho) continue;
      const float *r = col + ki * 3 * ld + oh * Wo;
      __m512 s0 = _mm512_maskz_loadu_ps(mo, r), s1 = _mm512_maskz_loadu_ps(mo, r + ld),
             s2 = _mm512_maskz_loadu_ps(mo, r + 2 * ld);
      lo = _mm512_add_ps(lo, _mm512_maskz_permutexvar_ps(od, sl1, s0));
      hi = _mm512_add_ps(hi, _mm512_maskz_permutexvar_ps(od1, sh1, s0));
      lo = _mm512_add_ps(lo, _mm512_maskz_permutexvar_ps(ev, sl, s1));
      hi = _mm512_add_ps(hi, _mm512_maskz_permutexvar_ps(ev, sh, s1));
      lo = _mm512_add_ps(lo, _mm512_maskz_permutexvar_ps(od, sl, s2));
      hi = _mm512_add_ps(hi, _mm512_maskz_permutexvar_ps(od, sh, s2));
    }
    float *dst = img + ih * W;
    _mm512_mask_storeu_ps(dst, ml, _mm512_add_ps(_mm512_maskz_loadu_ps(ml, dst), lo));
    if (mh)
      _mm512_mask_storeu_ps(dst + 16, mh, _mm512_add_ps(_mm512_maskz_loadu_ps(mh, dst + 16), hi));
  }
}
#endif

static int s2_float(const sc_conv_geom *g, float *img, float *col, int64_t H, int64_t W,
                    int64_t Ho, int64_t Wo, int64_t ld, int back) {
#ifdef SC_HAVE_V4
  if (g->sh == 2 && g->sw == 2 && g->kh == 3 && g->kw == 3 && g->ph == 1 && g->pw == 1 &&
      g->dh == 1 && g->dw == 1 && W <= 32 && Ho == (H - 1) / 2 + 1 && Wo == (W - 1) / 2 + 1 &&
      sc_gemm_own_active()) {
    s2_plane(img, col, H, W, Ho, Wo, ld, back);
    return 1;
  }
#endif
  (void)g, (void)img, (void)col, (void)H, (void)W, (void)Ho, (void)Wo, (void)ld, (void)back;
  return 0;
}

static int s2_double(const sc_conv_geom *g, double *img, double *col, int64_t H, int64_t W,
                     int64_t Ho, int64_t Wo, int64_t ld, int back) {
  (void)g, (void)img, (void)col, (void)H, (void)W, (void)Ho, (void)Wo, (void)ld, (void)back;
  return 0;
}

#define UNFOLD_PLANE(T)                                                      \
  static void unfold_##T(const sc_conv_geom *g, T *img, T *col, int64_t H,  \
                         int64_t W, int64_t Ho, int64_t Wo, int64_t ld,     \
                         int back) {                                        \
    if (g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 && Ho == H &&   \
        Wo == W) { /* "same": every tap is a shift of the plane itself */    \
      for (int64_t ki = 0; ki < g->kh; ki++)                                 \
        for (int64_t kj = 0; kj < g->kw; kj++)                               \
          shift_##T(img, col + (ki * g->kw + kj) * ld, H, W, ki - g->ph,     \
                    kj - g->pw, back);                                       \
      return;                                                                \
    }                                                                        \
    if (s2_##T(g, img, col, H, W, Ho, Wo, ld, back)) return;                 \
    if (phase_##T(g, img, col, H, W, Ho, Wo, ld, back)) return;              \
    for (int64_t ki = 0; ki < g->kh; ki++)                                   \
      for (int64_t kj = 0; kj < g->kw; kj++) {                               \
        T *row = col + (ki * g->kw + kj) * ld;                               \
        int64_t off = kj * g->dw - g->pw, lo, hi;                            \
        valid_range(Wo, W, g->sw, off, &lo, &hi);                            \
        for (int64_t oh = 0; oh < Ho; oh++) {                                \
          int64_t ih = oh * g->sh - g->ph + ki * g->dh;                      \
          T *r = row + oh * Wo;                                              \
          if (ih < 0 || ih >= H) {                                           \
            if (!back) memset(r, 0, sizeof(T) * (size_t)Wo);                 \
            continue;                                                        \
          }                                                                  \
          T *src = img + ih * W + off;                                       \
          if (back) {                                                        \
            if (g->sw == 1)                                                  \
              for (int64_t ow = lo; ow < hi; ow++) src[ow] += r[ow];         \
            else                                                             \
              for (int64_t ow = lo; ow < hi; ow++) src[ow * g->sw] += r[ow]; \
            continue;                                                        \
          }                                                                  \
          for (int64_t ow = 0; ow < lo; ow++) r[ow] = 0;                     \
          if (g->sw == 1)                                                    \
            memcpy(r + lo, src + lo, sizeof(T) * (size_t)(hi - lo));         \
          else                                                               \
            for (int64_t ow = lo; ow < hi; ow++) r[ow] = src[ow * g->sw];    \
          for (int64_t ow = hi; ow < Wo; ow++) r[ow] = 0;                    \
        }                                                                    \
      }                                                                      \
  }
UNFOLD_PLANE(float)
UNFOLD_PLANE(double)

typedef struct {
  const sc_conv_geom *g;
  char *ib, *cb;
  size_t es;
  int64_t H, W, Ho, Wo, plane, cplane;
  int dbl, back;
} unfold_job;

static void unfold_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  (void)tid;
  const unfold_job *j = ctx;
  for (int64_t nc = lo; nc < hi; nc++) {
    char *ip = j->ib + (size_t)(nc * j->plane) * j->es, *cp = j->cb + (size_t)(nc * j->cplane) * j->es;
    if (j->dbl)
      unfold_double(j->g, (double *)ip, (double *)cp, j->H, j->W, j->Ho, j->Wo, j->Ho * j->Wo, j->back);
    else
      unfold_float(j->g, (float *)ip, (float *)cp, j->H, j->W, j->Ho, j->Wo, j->Ho * j->Wo, j->back);
  }
}

static void unfold_all(const sc_conv_geom *g, sc_tensor *img, sc_tensor *col,
                       int back) {
  int64_t N = img->shape[0], C = img->shape[1], H = img->shape[2], W = img->shape[3];
  int64_t Ho = out_size(H, g->kh, g->sh, g->ph, g->dh);
  int64_t Wo = out_size(W, g->kw, g->sw, g->pw, g->dw);
  int64_t plane = H * W, cplane = g->kh * g->kw * Ho * Wo;
  int nt = sc_get_num_threads();
  int dbl = img->dtype == SC_FLOAT64;
  char *ib = sc_data(img), *cb = sc_data(col);
  size_t es = sc_dtype_size(img->dtype);
  unfold_job j = {g, ib, cb, es, H, W, Ho, Wo, plane, cplane, dbl, back};
  sc_parallel_for(N * C * cplane >= SC_PAR_GRAIN ? nt : 1, N * C, unfold_part, &j);
}

static int check_image(const char *fn, const sc_tensor *x) {
  if (x->ndim != 4) {
    char b[96];
    sc_set_error("%s: expected an [N,C,H,W] image batch, got shape %s", fn,
                 sc_shape_str(x, b, sizeof b));
    return -1;
  }
  return 0;
}

/* The geometry and image size H x W an im2col/conv node's backward needs. */
static void store_geom(sc_node *n, const sc_conv_geom *g, int64_t H, int64_t W) {
  n->p.conv.kh = g->kh; n->p.conv.kw = g->kw; n->p.conv.sh = g->sh; n->p.conv.sw = g->sw;
  n->p.conv.ph = g->ph; n->p.conv.pw = g->pw; n->p.conv.dh = g->dh; n->p.conv.dw = g->dw;
  n->p.conv.H = H;
  n->p.conv.W = W;
}

static sc_tensor *record_geom(int op, sc_tensor *y, sc_tensor *x,
                              const sc_conv_geom *g, int64_t H, int64_t W) {
  sc_node *n;
  if (sc_record(op, y, 1, &x, &n)) {
    sc_release(y);
    return NULL;
  }
  if (n) store_geom(n, g, H, W);
  return y;
}

static void geom_of(const sc_node *n, sc_conv_geom *g) {
  g->kh = n->p.conv.kh; g->kw = n->p.conv.kw; g->sh = n->p.conv.sh; g->sw = n->p.conv.sw;
  g->ph = n->p.conv.ph; g->pw = n->p.conv.pw; g->dh = n->p.conv.dh; g->dw = n->p.conv.dw;
}

sc_tensor *sc_im2col(sc_tensor *x, const sc_conv_geom *g) {
  if (check_image("im2col", x) || check_geom("im2col", g)) return NULL;
  int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  int64_t Ho = out_size(H, g->kh, g->sh, g->ph, g->dh);
  int64_t Wo = out_size(W, g->kw, g->sw, g->pw, g->dw);
  if (Ho < 1 || Wo < 1) {
    char b[96];
    sc_set_error("im2col: a %lldx%lld kernel (dilation %lldx%lld, padding "
                 "%lldx%lld) does not fit an image of shape %s", (long long)g->kh,
                 (long long)g->kw, (long long)g->dh, (long long)g->dw,
                 (long long)g->ph, (long long)g->pw, sc_shape_str(x, b, sizeof b));
    return NULL;
  }
  sc_tensor *xc = sc_contiguous(x);
  if (!xc) return NULL;
  int64_t s[3] = {N, C * g->kh * g->kw, Ho * Wo};
  sc_tensor *y = sc_empty(3, s, x->dtype);
  if (y) unfold_all(g, xc, y, 0);
  sc_release(xc);
  if (!y) return NULL;
  return record_geom(SC_OP_im2col, y, x, g, H, W);
}

sc_tensor *sc_col2im(sc_tensor *cols, int64_t H, int64_t W,
                     const sc_conv_geom *g) {
  if (check_geom("col2im", g)) return NULL;
  int64_t Ho = out_size(H, g->kh, g->sh, g->ph, g->dh);
  int64_t Wo = out_size(W, g->kw, g->sw, g->pw, g->dw);
  int64_t kk = g->kh * g->kw;
  if (cols->ndim != 3 || cols->shape[1] % kk || cols->shape[2] != Ho * Wo ||
      Ho < 1 || Wo < 1) {
    char b[96];
    sc_set_error("col2im: columns of shape %s do not fit a %lldx%lld image "
                 "with a %lldx%lld kernel", sc_shape_str(cols, b, sizeof b),
                 (long long)H, (long long)W, (long long)g->kh, (long long)g->kw);
    return NULL;
  }
  int64_t s[4] = {cols->shape[0], cols->shape[1] / kk, H, W};
  sc_tensor *cc = sc_contiguous(cols);
  sc_tensor *y = cc ? sc_zeros(4, s, cols->dtype) : NULL;
  if (y) unfold_all(g, y, cc, 1);
  sc_release(cc);
  if (!y) return NULL;
  return record_geom(SC_OP_col2im, y, cols, g, H, W);
}

int sc_bw_im2col(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  sc_conv_geom k;
  geom_of(n, &k);
  gin[0] = sc_col2im(g, n->p.conv.H, n->p.conv.W, &k);
  return gin[0] ? 0 : -1;
}

int sc_bw_col2im(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  sc_conv_geom k;
  geom_of(n, &k);
  gin[0] = sc_im2col(g, &k);
  return gin[0] ? 0 : -1;
}

/* ---- nearest upsampling and its adjoint ------------------------------------------ */

/* Planes p0..p1 of x, plane p = (n, c) at x + n * sn + c * sc (C planes a
   sample; each plane's rows contiguous), up by s into y (back = 0) or
   summed down by s (back = 1); y is contiguous.  By input pixel, so no
   division per element: up writes one output row and copies it s - 1
   times; back sums each s x s block from zero in row-major order and
   stores the sum (the order a per-element loop adds it in). */
#define NEAREST(T)                                                                  \
  static void nearest_##T(const T *x, T *y, int64_t p0, int64_t p1, int64_t C,        \
                          int64_t sn, int64_t sc, int64_t H, int64_t W, int64_t s,    \
                          int back) {                                                 \
    int64_t Y = H * s, X = W * s;                                                   \
    for (int64_t p = p0; p < p1; p++) {                                             \
      const T *xp = x + (p / C) * sn + (p % C) * sc;                                \
      T *yp = y + p * (back ? H * W : Y * X);                                       \
      for (int64_t h = 0; h < H; h++) {                                             \
        if (back && s == 2) {                                                       \
          const T *b0 = xp + h * 2 * X, *b1 = b0 + X;                               \
          T *o = yp + h * W;                                                        \
          for (int64_t w = 0; w < W; w++) {                                         \
            T acc = (T)0 + b0[2 * w];                                               \
            acc += b0[2 * w + 1];                                                   \
            acc += b1[2 * w];                                                       \
            o[w] = acc + b1[2 * w + 1];                                             \
          }                                                                         \
          continue;                                                                 \
        }                                                                           \
        if (back) {                                                                 \
          const T *blk = xp + h * s * X;                                            \
          for (int64_t w = 0; w < W; w++) {                                         \
            T acc = 0;                                                              \
            for (int64_t di = 0; di < s; di++)                                      \
              for (int64_t dj = 0; dj < s; dj++) acc += blk[di * X + w * s + dj];   \
            yp[h * W + w] = acc;                                                    \
          }                                                                         \
          continue;                                                                 \
        }                                                                           \
        T *row = yp + h * s * X;                                                    \
        const T *in = xp + h * W;                                                   \
        if (s == 2)                                                                 \
          for (int64_t w = 0; w < W; w++) row[2 * w] = row[2 * w + 1] = in[w];      \
        else                                                                        \
          for (int64_t w = 0; w < W; w++)                                           \
            for (int64_t dj = 0; dj < s; dj++) row[w * s + dj] = in[w];             \
        for (int64_t di = 1; di < s; di++)                                          \
          memcpy(row + di * X, row, sizeof(T) * (size_t)X);                         \
      }                                                                             \
    }                                                                               \
  }
NEAREST(float)
NEAREST(double)

typedef struct {
  const void *x;
  void *y;
  int64_t C, sn, sc, H, W, s;
  int back, dbl;
} nearest_job;

static void nearest_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  (void)tid;
  const nearest_job *j = ctx;
  if (j->dbl)
    nearest_double(j->x, j->y, lo, hi, j->C, j->sn, j->sc, j->H, j->W, j->s, j->back);
  else
    nearest_float(j->x, j->y, lo, hi, j->C, j->sn, j->sc, j->H, j->W, j->s, j->back);
}

/* up: [N,C,H,W] -> [N,C,sH,sW] (back = 0); sum_pool: the reverse (back = 1).
   x is read in place when each of its planes is contiguous (a slice along
   the channels, as the gradient of a cat is); otherwise copied first. */
static sc_tensor *nearest_pair(int op, sc_tensor *x, int64_t s, int back) {
  const char *fn = back ? "sum_pool" : "upsample_nearest";
  if (check_image(fn, x)) return NULL;
  if (s < 1 || (back && (x->shape[2] % s || x->shape[3] % s))) {
    char b[96];
    sc_set_error("%s: factor %lld does not divide the image of shape %s", fn,
                 (long long)s, sc_shape_str(x, b, sizeof b));
    return NULL;
  }
  int64_t H = back ? x->shape[2] / s : x->shape[2];
  int64_t W = back ? x->shape[3] / s : x->shape[3];
  int64_t os[4] = {x->shape[0], x->shape[1], back ? H : H * s, back ? W : W * s};
  int planar = x->stride[3] == 1 && (x->shape[2] == 1 || x->stride[2] == x->shape[3]);
  sc_tensor *xc = planar ? sc_retain(x) : sc_contiguous(x);
  sc_tensor *y = xc ? sc_empty(4, os, x->dtype) : NULL;
  if (y) {
    int64_t C = x->shape[1]; /* a copy's strides are those of a contiguous x */
    nearest_job j = {sc_data(xc), sc_data(y), C, xc->stride[0], xc->stride[1],
                     H, W, s, back, x->dtype == SC_FLOAT64};
    int64_t planes = x->shape[0] * C;
    int nt = planes * H * s * W * s >= SC_PAR_GRAIN ? sc_get_num_threads() : 1;
    sc_parallel_for(nt, planes, nearest_part, &j);
  }
  sc_release(xc);
  if (!y) return NULL;
  sc_node *n;
  if (sc_record(op, y, 1, &x, &n)) {
    sc_release(y);
    return NULL;
  }
  if (n) n->p.nearest.scale = s;
  return y;
}

sc_tensor *sc_upsample_nearest(sc_tensor *x, int64_t s) {
  return nearest_pair(SC_OP_upsample_nearest, x, s, 0);
}

sc_tensor *sc_sum_pool(sc_tensor *x, int64_t s) {
  return nearest_pair(SC_OP_sum_pool, x, s, 1);
}

int sc_bw_upsample_nearest(sc_node *n, sc_tensor *g, const int *need,
                           sc_tensor **gin) {
  (void)need;
  gin[0] = sc_sum_pool(g, n->p.nearest.scale);
  return gin[0] ? 0 : -1;
}

int sc_bw_sum_pool(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  gin[0] = sc_upsample_nearest(g, n->p.nearest.scale);
  return gin[0] ? 0 : -1;
}

/* ---- the four output phases of a stride-2 upsampling, joined and split ------------- */

/* join: y [N, 4·O, H+1, W+1] -> out [N, O, 2H, 2W] with
   out[n, o, 2i+a, 2j+b] = y[n, (2a+b)·O + o, i+a, j+b]: each phase (a, b)
   is an H x W window of its block of channels, shifted by (a, b), and the
   four interleave.  split is its transpose (the positions no window reads
   get 0), so each is the other's backward, to any order.  The generator
   of WORKLOADS.md W10 computes upsample + 3x3 convolution as one
   convolution over the phases (models/gan.lua) and joins them with this. */
#define PHASES(T)                                                              \
  static void phases_##T(T *y, T *out, int64_t lo, int64_t hi, int64_t O,        \
                         int64_t H, int64_t W, int split) {                    \
    int64_t P = (H + 1) * (W + 1), Q = 4 * H * W;                              \
    for (int64_t no = lo; no < hi; no++) { /* plane (n, o) of out */           \
      int64_t n = no / O, o = no % O;                                          \
      T *op = out + no * Q;                                                    \
      for (int a = 0; a < 2; a++)                                              \
        for (int b = 0; b < 2; b++) {                                          \
          T *yp = y + (n * 4 * O + (2 * a + b) * O + o) * P;                   \
          if (split) memset(yp, 0, sizeof(T) * (size_t)P);                     \
          for (int64_t i = 0; i < H; i++) {                                    \
            T *yr = yp + (i + a) * (W + 1) + b, *orow = op + (2 * i + a) * 2 * W + b; \
            if (split)                                                         \
              for (int64_t j = 0; j < W; j++) yr[j] = orow[2 * j];             \
            else                                                               \
              for (int64_t j = 0; j < W; j++) orow[2 * j] = yr[j];             \
          }                                                                    \
        }                                                                      \
    }                                                                          \
  }
PHASES(float)
PHASES(double)

typedef struct {
  void *y, *out;
  int64_t O, H, W;
  int split, dbl;
} phases_job;

static void phases_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  (void)tid;
  const phases_job *j = ctx;
  if (j->dbl)
    phases_double(j->y, j->out, lo, hi, j->O, j->H, j->W, j->split);
  else
    phases_float(j->y, j->out, lo, hi, j->O, j->H, j->W, j->split);
}

/* join (split = 0): t is y; split: t is out */
static sc_tensor *phases_pair(sc_tensor *t, int split) {
  const char *fn = split ? "phase_split" : "phase_join";
  char b[96];
  if (check_image(fn, t)) return NULL;
  int64_t N = t->shape[0], C = t->shape[1], R = t->shape[2], S = t->shape[3];
  if (split ? (R % 2 || S % 2 || R < 2 || S < 2) : (C % 4 || R < 2 || S < 2)) {
    sc_set_error(split ? "%s: expected [N, O, 2H, 2W] with H, W >= 1, got %s"
                       : "%s: expected [N, 4*O, H+1, W+1] with H, W >= 1, got %s",
                 fn, sc_shape_str(t, b, sizeof b));
    return NULL;
  }
  int64_t O = split ? C : C / 4, H = split ? R / 2 : R - 1, W = split ? S / 2 : S - 1;
  int64_t ys[4] = {N, 4 * O, H + 1, W + 1}, os[4] = {N, O, 2 * H, 2 * W};
  sc_tensor *tc = sc_contiguous(t);
  sc_tensor *r = tc ? sc_empty(4, split ? ys : os, t->dtype) : NULL;
  if (r) {
    phases_job j = {split ? sc_data(r) : sc_data(tc), split ? sc_data(tc) : sc_data(r), O, H, W,
                    split, t->dtype == SC_FLOAT64};
    int nt = N * O * 4 * H * W >= SC_PAR_GRAIN ? sc_get_num_threads() : 1;
    sc_parallel_for(nt, N * O, phases_part, &j);
  }
  sc_release(tc);
  if (!r) return NULL;
  sc_node *n;
  if (sc_record(split ? SC_OP_phase_split : SC_OP_phase_join, r, 1, &t, &n)) {
    sc_release(r);
    return NULL;
  }
  return r;
}

sc_tensor *sc_phase_join(sc_tensor *y) { return phases_pair(y, 0); }

sc_tensor *sc_phase_split(sc_tensor *x) { return phases_pair(x, 1); }

int sc_bw_phase_join(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)n; (void)need;
  gin[0] = sc_phase_split(g);
  return gin[0] ? 0 : -1;
}

int sc_bw_phase_split(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)n; (void)need;
  gin[0] = sc_phase_join(g);
  return gin[0] ? 0 : -1;
}

/* ---- fused convolution ------------------------------------------------------------ */
/*
 * Three ops close under differentiation (as in PyTorch's
 * convolution_backward): for y = conv2d(x, W),
 *   dx = conv2d_input(g, W)   (the transposed convolution)
 *   dW = conv2d_weight(x, g)  (sum over samples of g_n cols(x_n)^T)
 * and each of those two has its backward in terms of the three.  They run
 * one sample at a time through a single column buffer of [C*kh*kw, Ho*Wo],
 * which stays in cache; unfolding the whole batch at once cost hundreds of
 * megabytes and a page fault per 4 KB.
 */
/* C = alpha A B + beta C, row-major, with explicit leading dimensions, and
   gemm512.c's extras x (NULL: none; sc_gemm_ex).  -1 when x needs gemm512.c
   and it cannot do this product: the caller then does it without them. */
static int gemm_ld_ex(sc_dtype dt, int ta, int tb, int64_t m, int64_t n, int64_t k,
                      const void *a, int64_t lda, const void *b, int64_t ldb, double beta,
                      void *c, int64_t ldc, const sc_gemm_extra *x) {
  if (m == 0 || n == 0) return 0;
  if (m == 1 && !ta && !sc_gemm_extra_needs_own(x)) {
    /* one output row (a 1-channel convolution): a gemv, which this
       OpenBLAS does not choose by itself */
    CBLAS_TRANSPOSE V = tb ? CblasNoTrans : CblasTrans;
    int rows = (int)(tb ? n : k), cols = (int)(tb ? k : n);
    if (dt == SC_FLOAT64)
      cblas_dgemv(CblasRowMajor, V, rows, cols, 1.0, b, (int)ldb, a, 1, beta, c, 1);
    else
      cblas_sgemv(CblasRowMajor, V, rows, cols, 1.0f, b, (int)ldb, a, 1, (float)beta, c, 1);
    return 0;
  }
  return sc_gemm_ex(dt, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc, x);
}

static void gemm_ld(sc_dtype dt, int ta, int tb, int64_t m, int64_t n, int64_t k,
                    const void *a, int64_t lda, const void *b, int64_t ldb, double beta,
                    void *c, int64_t ldc) {
  (void)gemm_ld_ex(dt, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc, NULL);
}

/* The same for contiguous operands (leading dimensions from the shapes). */
static void gemm_rm(sc_dtype dt, int ta, int tb, int64_t m, int64_t n, int64_t k,
                    const void *a, const void *b, double beta, void *c) {
  gemm_ld(dt, ta, tb, m, n, k, a, ta ? m : k, b, tb ? k : n, beta, c, n);
}

/*
 * Stride-1 convolutions as kh*kw shifted products, with no column buffer.
 * The input planes are copied into zero-bordered planes of Hp x Wp
 * (Hp = H + 2ph, Wp = W + 2pw) and the output is computed on a grid of Ho
 * rows by Wp columns, of which the first Wo of each row are real (the
 * rest are thrown away).  On that grid, tap (i, j) of every channel reads
 * the padded plane shifted by i*dh*Wp + j*dw, so over all channels it is
 * a matrix of C rows a plane apart, and
 *   y[O, grid] = sum over taps of W_ij [O, C] @ shifted planes [C, grid]
 * is kh*kw ordinary gemm calls reading the padded input in place.  Each
 * plane has (kw-1)*dw zeros of slack so the last row's thrown-away
 * columns stay inside it.  The weight gradient is the same products
 * transposed: dW_ij [O, C] = g on the grid [O, grid] @ shifted planes^T,
 * with g's thrown-away columns zero.
 */
typedef struct {
  int64_t C, H, W, Hp, Wp, S, Ho, Wo, grid, kk;
  int64_t off[64]; /* tap offsets, kh*kw <= 64 */
} shift_plan;

static int shift_plan_of(shift_plan *p, const sc_conv_geom *g, int64_t C, int64_t H,
                         int64_t W) {
  if (g->sh != 1 || g->sw != 1 || g->kh * g->kw > 64) return 0;
  p->C = C, p->H = H, p->W = W, p->Hp = H + 2 * g->ph, p->Wp = W + 2 * g->pw;
  p->Ho = p->Hp - (g->kh - 1) * g->dh, p->Wo = p->Wp - (g->kw - 1) * g->dw;
  if (p->Ho < 1 || p->Wo < 1) return 0;
  p->S = p->Hp * p->Wp + (g->kw - 1) * g->dw;
  p->grid = p->Ho * p->Wp;
  /* narrow images waste too much of the grid (7 x 7 with padding 1: 9
     columns for 7; unfolding measured faster there) */
  if (p->grid * 5 > p->Ho * p->Wo * 6) return 0;
  p->kk = g->kh * g->kw;
  for (int64_t i = 0; i < g->kh; i++)
    for (int64_t j = 0; j < g->kw; j++) p->off[i * g->kw + j] = i * g->dh * p->Wp + j * g->dw;
  return 1;
}

/* The interiors of C padded planes from an image [C, H, W]; the borders
   and slack are zeroed once when the buffer is made. */
static void shift_fill(const shift_plan *p, const sc_conv_geom *g, const char *x,
                       char *xp, size_t es) {
  for (int64_t c = 0; c < p->C; c++)
    for (int64_t h = 0; h < p->H; h++)
      memcpy(xp + (size_t)(c * p->S + (h + g->ph) * p->Wp + g->pw) * es,
             x + (size_t)((c * p->H + h) * p->W) * es, (size_t)p->W * es);
}

/* Row o of the [O, L] matrix y set to bias[o]. */
static void bias_rows(sc_dtype dt, const char *bias, char *y, int64_t O, int64_t L) {
  for (int64_t o = 0; o < O; o++) {
    if (dt == SC_FLOAT64) {
      double v = ((const double *)bias)[o], *r = (double *)y + o * L;
      for (int64_t l = 0; l < L; l++) r[l] = v;
    } else {
      float v = ((const float *)bias)[o], *r = (float *)y + o * L;
      for (int64_t l = 0; l < L; l++) r[l] = v;
    }
  }
}

/* y [O, Ho, Wo] = sum_ij wt[ij] [O, C] @ shift_ij(xp) (+ bias[o], if not
   NULL); ybuf [O, grid] is scratch; wpk NULL or wt as packed_taps made it. */
static void shift_forward(const shift_plan *p, sc_dtype dt, int64_t O, const char *wt,
                          const float *wpk, const char *bias, const char *xp, char *ybuf,
                          char *y) {
  size_t es = sc_dtype_size(dt);
  if (bias) bias_rows(dt, bias, ybuf, O, p->grid);
  /* each tap's shifted image is read by only O / 8 row blocks of the
     weights: gemm512.c reads it in place rather than packing it, and the
     weights come packed already (hints with the same sums, so the same
     numbers) */
  int64_t apad = sc_packed_rows(O);
  for (int64_t t = 0; t < p->kk; t++) {
    sc_gemm_extra x = {.binplace = 1, .apre = wpk ? wpk + t * apad * p->C : NULL,
                       .apad = apad};
    (void)gemm_ld_ex(dt, 0, 0, O, p->grid, p->C, wt + (size_t)(t * O * p->C) * es, p->C,
                     xp + (size_t)p->off[t] * es, p->S, (bias || t > 0) ? 1.0 : 0.0, ybuf,
                     p->grid, &x);
  }
  for (int64_t o = 0; o < O; o++)
    for (int64_t h = 0; h < p->Ho; h++)
      memcpy(y + (size_t)((o * p->Ho + h) * p->Wo) * es,
             ybuf + (size_t)(o * p->grid + h * p->Wp) * es, (size_t)p->Wo * es);
}

/* nt scratch buffers of the given bytes each, rounded up to whole cache
   lines and sc_thread_stride apart (pool.h); *nbytes gets the stride. */
static char *thread_buffers(size_t bytes, int nt, size_t *nbytes) {
  *nbytes = sc_thread_stride((bytes + 63) & ~(size_t)63, nt);
  return sc_aligned_alloc(*nbytes * (size_t)nt);
}

/* Zeroed padded planes (C of them) and an output grid (O rows) per
   thread, and `extra` more elements per thread after the grid, left unset
   (the packed image and gradient are written whole before use). */
static char *shift_buffers_plus(const shift_plan *p, int64_t O, sc_dtype dt, int nt,
                                int64_t extra, size_t *nbytes) {
  size_t zero = (size_t)(p->C * p->S + O * p->grid) * sc_dtype_size(dt);
  char *b = thread_buffers(zero + (size_t)extra * sc_dtype_size(dt), nt, nbytes);
  for (int t = 0; b && t < nt; t++) memset(b + (size_t)t * *nbytes, 0, zero);
  return b;
}

static char *shift_buffers(const shift_plan *p, int64_t O, sc_dtype dt, int nt,
                           size_t *nbytes) {
  return shift_buffers_plus(p, O, dt, nt, 0, nbytes);
}

/* A copy of the kernel w [O, C, kh, kw] laid out for the products:
   [kh*kw][O][C] (tap-major, for shifted products) or [O][C][kh*kw]; with
   flip, w is read as [C', O', kh, kw] and copied as the kernel of the
   transposed convolution, entry (o, c, i, j) = w[c, o, kh-1-i, kw-1-j]
   (the roles of O and C swap). */
static char *taps_of(const char *w, int64_t O, int64_t C, int64_t kk, size_t es, int flip,
                     int tap_major) {
  char *wt = sc_aligned_alloc((size_t)(O * C * kk) * es);
  /* element by element, by type (a memcpy of es bytes is a libc call) */
  for (int64_t o = 0; wt && o < O; o++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t t = 0; t < kk; t++) {
        size_t src = flip ? (size_t)((c * O + o) * kk + kk - 1 - t) : (size_t)((o * C + c) * kk + t);
        size_t dst = tap_major ? (size_t)((t * O + o) * C + c) : (size_t)((o * C + c) * kk + t);
        if (es == sizeof(double))
          ((double *)wt)[dst] = ((const double *)w)[src];
        else if (es == sizeof(float))
          ((float *)wt)[dst] = ((const float *)w)[src];
        else
          memcpy(wt + dst * es, w + src * es, es);
      }
  return wt;
}

/* The tap-major kernel wt [kh*kw][O][C] packed for gemm512.c, one tap
   after another (apad = O rounded up to 8 rows each): the shifted
   products of every sample then read it as it is, instead of packing
   each tap's weights again per sample.  NULL where gemm512.c does not run
   (float64, no AVX-512, out of memory): the products pack as usual. */
static float *packed_taps(const char *wt, sc_dtype dt, int64_t O, int64_t C, int64_t kk,
                          size_t *bytes) {
  int64_t apad = sc_packed_rows(O);
  *bytes = (size_t)(kk * apad * C) * sizeof(float);
  if (dt != SC_FLOAT32 || !sc_gemm_own_active() || *bytes == 0) return NULL;
  float *p = sc_aligned_alloc(*bytes);
  for (int64_t t = 0; p && t < kk; t++)
    if (sc_pack_a_all(0, (const float *)wt + t * O * C, C, O, C, p + t * apad * C)) {
      sc_aligned_free(p, *bytes);
      return NULL;
    }
  return p;
}

/* A 1x1 kernel at stride 1 without padding: the image is its own column
   matrix ([C, H*W]), so the products read and write the tensors in place. */
static int identity_cols(const sc_conv_geom *g) {
  return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0;
}

/* Shifted products pay when every product has a few channels to sum. */
#define SHIFT_MIN_C 16

/* One sample: unfold image plane block (C planes) into col, or fold back;
   the column rows (each Ho*Wo long) lie ld elements apart. */
static void unfold_ld(const sc_conv_geom *g, void *img, void *col, int64_t C,
                      int64_t H, int64_t W, int64_t Ho, int64_t Wo, int64_t ld,
                      sc_dtype dt, int back) {
  int64_t plane = H * W, cplane = g->kh * g->kw * ld;
  for (int64_t c = 0; c < C; c++) {
    if (dt == SC_FLOAT64)
      unfold_double(g, (double *)img + c * plane, (double *)col + c * cplane, H, W, Ho, Wo, ld, back);
    else
      unfold_float(g, (float *)img + c * plane, (float *)col + c * cplane, H, W, Ho, Wo, ld, back);
  }
}

static void unfold_one(const sc_conv_geom *g, void *img, void *col, int64_t C,
                       int64_t H, int64_t W, int64_t Ho, int64_t Wo, sc_dtype dt,
                       int back) {
  unfold_ld(g, img, col, C, H, W, Ho, Wo, Ho * Wo, dt, back);
}

/* t itself where each sample's [C, H, W] block is contiguous (a slice
   along the channels, as a cat's gradient is), with *sn its samples'
   stride in elements; else a contiguous copy (*sn = C H W).  NULL when out
   of memory. */
static sc_tensor *sample_blocks(sc_tensor *t, int64_t *sn) {
  int64_t C = t->shape[1], H = t->shape[2], W = t->shape[3];
  int ok = t->stride[0] >= 0 && (W == 1 || t->stride[3] == 1) &&
           (H == 1 || t->stride[2] == W) && (C == 1 || t->stride[1] == H * W);
  sc_tensor *r = ok ? sc_retain(t) : sc_contiguous(t);
  *sn = ok && t->shape[0] > 1 ? t->stride[0] : C * H * W;
  return r;
}

typedef struct {
  sc_conv_geom g;
  int64_t N, C, H, W, O, Ho, Wo;
} conv_dims;

static int conv_dims_of(const char *fn, const sc_tensor *x, const sc_tensor *w,
                        const sc_conv_geom *g, conv_dims *d) {
  char b1[96], b2[96];
  if (check_image(fn, x) || check_geom(fn, g)) return -1;
  if (w->ndim != 4 || w->shape[1] != x->shape[1] || w->shape[2] != g->kh ||
      w->shape[3] != g->kw || w->dtype != x->dtype) {
    sc_set_error("%s: input %s and weight %s do not match", fn,
                 sc_shape_str(x, b1, sizeof b1), sc_shape_str(w, b2, sizeof b2));
    return -1;
  }
  d->g = *g;
  d->N = x->shape[0]; d->C = x->shape[1]; d->H = x->shape[2]; d->W = x->shape[3];
  d->O = w->shape[0];
  d->Ho = out_size(d->H, g->kh, g->sh, g->ph, g->dh);
  d->Wo = out_size(d->W, g->kw, g->sw, g->pw, g->dw);
  if (d->Ho < 1 || d->Wo < 1) {
    sc_set_error("%s: the kernel does not fit an input of shape %s", fn,
                 sc_shape_str(x, b1, sizeof b1));
    return -1;
  }
  return 0;
}

/* With several threads the forward and the input gradient take whole
   samples each (one column buffer per thread, OpenBLAS single-threaded
   inside): per-sample products of a few hundred columns gain nothing from
   splitting one gemm across threads, and each sample's numbers are the
   same whichever thread computes it.  The weight gradient, a sum over
   samples, keeps its fixed order and a threaded gemm. */
static int per_sample_threads(int64_t N) {
  int nt = sc_get_num_threads();
  if (nt > N) nt = (int)N;
  return nt < 1 ? 1 : nt;
}

/* nt column buffers of *nbytes each, end to end. */
static char *col_buffers(const conv_dims *d, sc_dtype dt, int nt, size_t *nbytes) {
  return thread_buffers((size_t)(d->C * d->g.kh * d->g.kw * d->Ho * d->Wo) * sc_dtype_size(dt),
                        nt, nbytes);
}


/* What the per-sample loops of the three convolution kernels share. */
typedef struct {
  const conv_dims *d;
  const sc_conv_geom *g;
  const shift_plan *pl; /* NULL unless shifted products are used */
  char *col;            /* one buffer of nb bytes per thread */
  size_t nb, es;
  sc_dtype dt;
  char *in, *out, *w, *b, *wt;
  int64_t L, CK;
  int flip;
  const float *wpk; /* wt packed (packed_taps), or NULL */
  int ident;        /* identity_cols: no unfolding */
  int64_t isn;      /* the input's (x's or g's) sample stride, in elements */
} conv_job;

static void conv_forward_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  const conv_job *j = ctx;
  const conv_dims *d = j->d;
  size_t es = j->es;
  char *cb = j->col + (size_t)tid * j->nb;
  for (int64_t n = lo; n < hi; n++) {
    char *xn = j->in + (size_t)(n * j->isn) * es;
    char *yn = j->out + (size_t)(n * d->O * j->L) * es;
    if (j->pl) {
      shift_fill(j->pl, j->g, xn, cb, es);
      shift_forward(j->pl, j->dt, d->O, j->wt, j->wpk, j->b, cb,
                    cb + (size_t)(d->C * j->pl->S) * es, yn);
      continue;
    }
    if (!j->ident) unfold_one(j->g, xn, cb, d->C, d->H, d->W, d->Ho, d->Wo, j->dt, 0);
    if (j->b) bias_rows(j->dt, j->b, yn, d->O, j->L);
    gemm_rm(j->dt, 0, 0, d->O, j->L, j->CK, j->w, j->ident ? xn : cb, j->b ? 1.0 : 0.0, yn);
  }
}

/* y[n] = W [O, CK] @ cols(x[n]) [CK, L] (+ b[o] on row o): the bias is laid
   into the output before the product, which then adds to it (beta = 1). */
sc_tensor *sc_conv2d_fused(sc_tensor *x0, sc_tensor *w0, sc_tensor *b0,
                           const sc_conv_geom *g) {
  conv_dims d;
  if (conv_dims_of("conv2d_core", x0, w0, g, &d)) return NULL;
  if (b0 && (b0->ndim != 1 || b0->shape[0] != d.O || b0->dtype != x0->dtype)) {
    char b1[96], b2[96];
    sc_set_error("conv2d_core: bias %s does not match weight %s (expected [%lld] of its dtype)",
                 sc_shape_str(b0, b1, sizeof b1), sc_shape_str(w0, b2, sizeof b2),
                 (long long)d.O);
    return NULL;
  }
  int64_t ys[4] = {d.N, d.O, d.Ho, d.Wo}, L = d.Ho * d.Wo, CK = d.C * g->kh * g->kw;
  int64_t xsn;
  sc_tensor *x = sample_blocks(x0, &xsn), *w = x ? sc_contiguous(w0) : NULL;
  sc_tensor *b = w && b0 ? sc_contiguous(b0) : NULL;
  sc_tensor *y = w && (b || !b0) ? sc_empty(4, ys, x0->dtype) : NULL;
  size_t nb = 0, es = sc_dtype_size(x0->dtype);
  int nt = per_sample_threads(d.N);
  /* 3x3 at stride 1 in float32: with one channel in or out, straight from
     the rows (thinconv.c); else Winograd's F(2x2, 3x3) or F(4x2, 3x3) (wino.c) */
  int thin = y && sc_thin_ok(x0->dtype, d.C, d.O, d.H, d.W, g) &&
             sc_thin_conv3x3_f32(sc_data(x), xsn, d.N, d.C, d.H, d.W, sc_data(w), d.O,
                                 b ? sc_data(b) : NULL, sc_data(y)) == 0;
  int wino = y && !thin && sc_wino_ok(x0->dtype, d.C, d.O, d.H, d.W, g) &&
             sc_wino_conv3x3_f32(sc_data(x), xsn, d.N, d.C, d.H, d.W, sc_data(w), d.O,
                                 b ? sc_data(b) : NULL, g->ph, g->pw, sc_data(y)) == 0;
  shift_plan pl;
  int ident = identity_cols(g);
  int shift = !thin && !wino && !ident && d.C >= SHIFT_MIN_C &&
              shift_plan_of(&pl, g, d.C, d.H, d.W);
  char *wt = y && shift ? taps_of(sc_data(w), d.O, d.C, pl.kk, es, 0, 1) : NULL;
  char *col = !y || thin || wino || (shift && !wt) ? NULL
              : shift ? shift_buffers(&pl, d.O, x0->dtype, nt, &nb)
              : ident ? thread_buffers(0, nt, &nb) /* no columns to make */
                      : col_buffers(&d, x0->dtype, nt, &nb);
  if (col) {
    size_t pb;
    float *wpk = shift ? packed_taps(wt, x0->dtype, d.O, d.C, pl.kk, &pb) : NULL;
    conv_job j = {&d, g, shift ? &pl : NULL, col, nb, es, x0->dtype, sc_data(x), sc_data(y),
                  sc_data(w), b ? sc_data(b) : NULL, wt, L, CK, 0, wpk, ident, xsn};
    sc_parallel_for(nt, d.N, conv_forward_part, &j);
    if (wpk) sc_aligned_free(wpk, pb);
    sc_aligned_free(col, nb * (size_t)nt);
  }
  if (wt) sc_aligned_free(wt, (size_t)(d.O * CK) * es);
  sc_release(x);
  sc_release(w);
  sc_release(b);
  if (!col && !wino && !thin) {
    sc_release(y);
    return NULL;
  }
  sc_tensor *in[3] = {x0, w0, b0};
  sc_node *nd;
  if (sc_record(SC_OP_conv2d, y, b0 ? 3 : 2, in, &nd) ||
      (nd && (sc_save(nd, x0, 0) || sc_save(nd, w0, 0)))) {
    sc_release(y);
    return NULL;
  }
  if (nd) store_geom(nd, &d.g, d.H, d.W);
  return y;
}

/* The transposed convolution: out[n] = fold(W^T [CK, O] @ g[n] [O, L])
   into an [N, C, H, W] image. */
/* d holds the forward geometry (C in, O out, H x W the image, Ho x Wo the
   gradient); j->g is the flipped geometry when j->flip. */
static void conv_input_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  const conv_job *j = ctx;
  const conv_dims *d = j->d;
  size_t es = j->es;
  int64_t H = d->H, W = d->W;
  char *cb = j->col + (size_t)tid * j->nb;
  for (int64_t n = lo; n < hi; n++) {
    char *gn = j->in + (size_t)(n * j->isn) * es;
    char *on = j->out + (size_t)(n * d->C * H * W) * es;
    if (j->pl) {
      shift_fill(j->pl, j->g, gn, cb, es);
      shift_forward(j->pl, j->dt, d->C, j->wt, j->wpk, NULL, cb,
                    cb + (size_t)(d->O * j->pl->S) * es, on);
      continue;
    }
    if (j->ident) { /* dx[n] = W^T [C, O] @ g[n] [O, H*W], in place */
      gemm_rm(j->dt, 1, 0, d->C, H * W, d->O, j->w, gn, 0.0, on);
      continue;
    }
    if (j->flip) {
      unfold_one(j->g, gn, cb, d->O, d->Ho, d->Wo, H, W, j->dt, 0);
      gemm_rm(j->dt, 0, 0, d->C, H * W, j->CK, j->wt, cb, 0.0, on);
      continue;
    }
    gemm_rm(j->dt, 1, 0, j->CK, j->L, d->O, j->w, gn, 0.0, cb);
    unfold_one(j->g, on, cb, d->C, H, W, d->Ho, d->Wo, j->dt, 1);
  }
}

sc_tensor *sc_conv2d_input(sc_tensor *g0, sc_tensor *w0, int64_t H, int64_t W,
                           const sc_conv_geom *g) {
  char b1[96], b2[96];
  if (check_image("conv2d_input", g0) || check_geom("conv2d_input", g)) return NULL;
  if (w0->ndim != 4 || w0->shape[0] != g0->shape[1] || w0->shape[2] != g->kh ||
      w0->shape[3] != g->kw || w0->dtype != g0->dtype) {
    sc_set_error("conv2d_input: gradient %s and weight %s do not match",
                 sc_shape_str(g0, b1, sizeof b1), sc_shape_str(w0, b2, sizeof b2));
    return NULL;
  }
  conv_dims d = {*g, g0->shape[0], w0->shape[1], H, W, w0->shape[0],
                 out_size(H, g->kh, g->sh, g->ph, g->dh), out_size(W, g->kw, g->sw, g->pw, g->dw)};
  if (d.Ho != g0->shape[2] || d.Wo != g0->shape[3]) {
    sc_set_error("conv2d_input: gradient %s does not come from a %lldx%lld input",
                 sc_shape_str(g0, b1, sizeof b1), (long long)H, (long long)W);
    return NULL;
  }
  int64_t xs[4] = {d.N, d.C, H, W}, L = d.Ho * d.Wo, CK = d.C * g->kh * g->kw;
  int64_t kk = g->kh * g->kw;
  /* At stride 1 the transposed convolution is itself a convolution: of g
     by the kernel flipped in space with its channel axes swapped, padded
     by d(k-1) - p on each side (so the output is H x W again).  Then the
     column buffer holds O (not C) channels of windows and the product
     lands in the output directly: no column buffer to zero and fold back. */
  int flip = g->sh == 1 && g->sw == 1 && g->ph <= g->dh * (g->kh - 1) &&
             g->pw <= g->dw * (g->kw - 1);
  sc_conv_geom fg = {g->kh, g->kw, 1, 1, g->dh * (g->kh - 1) - g->ph,
                     g->dw * (g->kw - 1) - g->pw, g->dh, g->dw};
  size_t es = sc_dtype_size(g0->dtype);
  int64_t gsn;
  sc_tensor *gc = sample_blocks(g0, &gsn), *w = gc ? sc_contiguous(w0) : NULL;
  sc_tensor *out = w ? (flip ? sc_empty(4, xs, g0->dtype) : sc_zeros(4, xs, g0->dtype)) : NULL;
  size_t nb = 0, fbytes = flip ? (size_t)(d.O * CK) * es : 0;
  int nt = per_sample_threads(d.N);
  char *col = NULL, *wf = NULL;
  shift_plan pl; /* with enough channels in g: shifted products, no columns */
  int ident = identity_cols(g);
  /* 3x3 in float32: with one channel on a side straight from the rows
     (thinconv.c), else Winograd (wino.c), on g and that kernel */
  int thin = flip && sc_thin_ok(g0->dtype, d.O, d.C, d.Ho, d.Wo, &fg);
  int wino = flip && !thin && sc_wino_ok(g0->dtype, d.O, d.C, d.Ho, d.Wo, &fg);
  int shift = flip && !thin && !wino && !ident && d.O >= SHIFT_MIN_C &&
              shift_plan_of(&pl, &fg, d.O, d.Ho, d.Wo);
  /* the flipped kernel [C][O][kh*kw], tap-major for shifted products (a 1x1
     kernel is read as it is) */
  if (out && flip && !ident) wf = taps_of(sc_data(w), d.C, d.O, kk, es, 1, shift);
  thin = thin && wf &&
         sc_thin_conv3x3_f32(sc_data(gc), gsn, d.N, d.O, d.Ho, d.Wo, (const float *)wf, d.C, NULL,
                             sc_data(out)) == 0;
  wino = wino && wf &&
         sc_wino_conv3x3_f32(sc_data(gc), gsn, d.N, d.O, d.Ho, d.Wo, (const float *)wf, d.C, NULL,
                             fg.ph, fg.pw, sc_data(out)) == 0;
  if (thin || wino) {
    /* done */
  } else if (out && ident) {
    col = thread_buffers(0, nt, &nb); /* no columns to make */
  } else if (out && shift) {
    col = wf ? shift_buffers(&pl, d.C, g0->dtype, nt, &nb) : NULL;
  } else if (out && flip) {
    nb = ((size_t)(d.O * kk * H * W) * es + 63) & ~(size_t)63;
    col = wf ? sc_aligned_alloc(nb * (size_t)nt) : NULL;
  } else if (out) {
    col = col_buffers(&d, g0->dtype, nt, &nb);
  }
  if (col) {
    /* g = the flipped geometry when flip; CK = O*kk then, for the product */
    size_t pb;
    float *wpk = shift ? packed_taps(wf, g0->dtype, d.C, d.O, kk, &pb) : NULL;
    conv_job j = {&d, flip ? &fg : g, shift ? &pl : NULL, col, nb, es, g0->dtype,
                  sc_data(gc), sc_data(out), sc_data(w), NULL, wf, L, flip ? d.O * kk : CK, flip,
                  wpk, ident, gsn};
    sc_parallel_for(nt, d.N, conv_input_part, &j);
    if (wpk) sc_aligned_free(wpk, pb);
    sc_aligned_free(col, nb * (size_t)nt);
  }
  if (wf) sc_aligned_free(wf, fbytes);
  sc_release(gc);
  sc_release(w);
  if (!col && !wino && !thin) {
    sc_release(out);
    return NULL;
  }
  sc_tensor *in[2] = {g0, w0};
  sc_node *nd;
  if (sc_record(SC_OP_conv2d_input, out, 2, in, &nd) ||
      (nd && (sc_save(nd, g0, 0) || sc_save(nd, w0, 0)))) {
    sc_release(out);
    return NULL;
  }
  if (nd) store_geom(nd, &d.g, d.H, d.W);
  return out;
}

typedef struct {
  const conv_dims *d;
  const sc_conv_geom *g;
  const shift_plan *pl; /* NULL unless shifted products are used */
  char *col, *part;
  size_t nb, es;
  sc_dtype dt;
  char *x, *gc, *out;
  int64_t L, CK, csz, wsz, G;
  int parts, group;
  int packed; /* each thread's buffer has room for sc_pack_cols_t's image */
  int ident;  /* identity_cols: x[n] is its own column matrix */
  int64_t xsn, gsn; /* the sample strides of x and of the gradient, in elements */
} wconv_job;

/* chunks lo..hi of samples: each into its own partial (or into out when
   there is one chunk and no partials) */
static void conv_weight_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  const wconv_job *j = ctx;
  const conv_dims *d = j->d;
  const shift_plan *pl = j->pl;
  size_t es = j->es;
  int64_t L = j->L, CK = j->CK, csz = j->csz;
  char *cb = j->col + (size_t)tid * j->nb;
  for (int64_t c = lo; c < hi; c++) {
    char *acc = j->parts ? j->part + (size_t)(c * j->wsz) * es : j->out;
    if (j->group) {
      int64_t n0 = c * csz, cnt = d->N - n0 < csz ? d->N - n0 : csz, GL = cnt * L;
      char *gb = cb + (size_t)(j->G * CK * L) * es;
      for (int64_t k = 0; k < cnt; k++) {
        char *xn = j->x + (size_t)((n0 + k) * j->xsn) * es;
        char *gn = j->gc + (size_t)((n0 + k) * j->gsn) * es;
        unfold_ld(j->g, xn, cb + (size_t)(k * L) * es, d->C, d->H, d->W, d->Ho, d->Wo, GL, j->dt, 0);
        for (int64_t o = 0; o < d->O; o++)
          memcpy(gb + (size_t)(o * GL + k * L) * es, gn + (size_t)(o * L) * es, (size_t)L * es);
      }
      gemm_ld(j->dt, 0, 1, d->O, CK, GL, gb, GL, cb, GL, j->parts ? 0.0 : 1.0, acc, CK);
      continue;
    }
    for (int64_t n = c * csz; n < d->N && n < (c + 1) * csz; n++) {
      char *xn = j->x + (size_t)(n * j->xsn) * es;
      char *gn = j->gc + (size_t)(n * j->gsn) * es;
      double beta = n == c * csz && j->parts ? 0.0 : 1.0;
      if (pl) { /* g onto the grid (its extra columns stay zero) */
        char *gp = cb + (size_t)(d->C * pl->S) * es;
        shift_fill(pl, j->g, xn, cb, es);
        for (int64_t r = 0; r < d->O * d->Ho; r++)
          memcpy(gp + (size_t)(r * pl->Wp) * es, gn + (size_t)(r * d->Wo) * es, (size_t)d->Wo * es);
        /* every tap reads the transposed image from its own row on: with
           room for it (j->packed), packed once for all of them, the same
           panels each tap's product would pack, so the same numbers */
        /* 64-byte aligned: the kernels load whole packed rows aligned */
        float *F = j->packed ? (float *)(((uintptr_t)(gp + (size_t)(d->O * pl->grid) * es) + 63) &
                                         ~(uintptr_t)63)
                             : NULL;
        float *Ap = F ? F + ((d->C + 31) / 32 * 32 * pl->S + 15) / 16 * 16 : NULL; /* the gradient */
        if (F && (sc_pack_cols_t((const float *)cb, pl->S, d->C, pl->S, F) ||
                  sc_pack_a_all(0, (const float *)gp, pl->grid, d->O, pl->grid, Ap)))
          F = Ap = NULL;
        for (int64_t t = 0; t < pl->kk; t++) {
          sc_gemm_extra pre = {.bpre = F, .pstride = pl->S, .roff = pl->off[t], .apre = Ap,
                               .apad = sc_packed_rows(d->O)};
          (void)gemm_ld_ex(j->dt, 0, 1, d->O, d->C, pl->grid, gp, pl->grid,
                           cb + (size_t)pl->off[t] * es, pl->S, beta,
                           acc + (size_t)(t * d->O * d->C) * es, d->C, &pre);
        }
        continue;
      }
      if (!j->ident) unfold_one(j->g, xn, cb, d->C, d->H, d->W, d->Ho, d->Wo, j->dt, 0);
      gemm_rm(j->dt, 0, 1, d->O, CK, L, gn, j->ident ? xn : cb, beta, acc);
    }
  }
}

/* dW = the weight gradient by products of unfolded columns or shifted
   images (see sc_conv2d_weight), added into out (zeros): 0 when done, -1
   out of memory. */
static int weight_products(const conv_dims *d, const sc_conv_geom *g, sc_dtype dt, sc_tensor *x,
                           int64_t xsn, sc_tensor *gc, int64_t gsn, sc_tensor *out) {
  int64_t L = d->Ho * d->Wo, CK = d->C * g->kh * g->kw;
  /* The sum over samples runs in sc_conv_chunk's chunks; threads take
     whole chunks, so the bits do not depend on the thread count. */
  int64_t csz = sc_conv_chunk(d->N);
  int64_t nch = (d->N + csz - 1) / csz, wsz = d->O * CK;
  int nt = sc_get_num_threads();
  if (nt > nch) nt = (int)nch;
  if (nt < 1) nt = 1;
  size_t nb = 0, es = sc_dtype_size(dt);
  /* shifted products (see shift_plan) build each partial in tap-major
     order, [kh*kw][O][C], so they always go through the partials */
  shift_plan pl;
  int ident = identity_cols(g);
  int shift = !ident && d->C >= SHIFT_MIN_C && shift_plan_of(&pl, g, d->C, d->H, d->W);
  int parts = nch > 1 || shift;
  size_t pbytes = parts ? (size_t)(nch * wsz) * es : 0;
  /* Otherwise a chunk's samples are laid side by side, columns [CK, G*L]
     and gradients [O, G*L], for one product with G*L to sum over: on small
     maps (7x7: L = 49) a per-sample product has too short an inner
     dimension for the gemm kernel to run near its peak. */
  int64_t G = csz < d->N ? csz : d->N;
  int group = !shift && G > 1 && (size_t)G * (size_t)(CK + d->O) * (size_t)L <= ((size_t)1 << 21);
  /* shifted products on float32 with gemm512.c: the image and the
     gradient packed once per sample for its kh*kw products
     (sc_pack_cols_t, sc_pack_a_all) */
  int packed = shift && dt == SC_FLOAT32 && sc_gemm_own_active();
  int64_t fsz = packed ? (d->C + 31) / 32 * 32 * pl.S + sc_packed_rows(d->O) * pl.grid + 32 : 0;
  char *col = group ? thread_buffers((size_t)(G * (CK + d->O) * L) * es, nt, &nb)
              : shift ? shift_buffers_plus(&pl, d->O, dt, nt, fsz, &nb)
                      : col_buffers(d, dt, nt, &nb);
  char *part = col && pbytes ? sc_aligned_alloc(pbytes) : NULL;
  if (col && pbytes && !part) {
    sc_aligned_free(col, nb * (size_t)nt);
    col = NULL;
  }
  if (col) {
    wconv_job j = {d, g, shift ? &pl : NULL, col, part, nb, es, dt, sc_data(x),
                   sc_data(gc), sc_data(out), L, CK, csz, wsz, G, parts, group, packed, ident,
                   xsn, gsn};
    sc_parallel_for(nt, nch, conv_weight_part, &j);
    if (parts) { /* partials in chunk order; tap-major ones back to [O, C, kh, kw] */
      int64_t kk = shift ? g->kh * g->kw : 1, OC = wsz / kk;
      for (int64_t c = 0; c < nch; c++)
        for (int64_t t = 0; t < kk; t++) {
          if (dt == SC_FLOAT64) {
            double *o = (double *)sc_data(out) + t;
            const double *pp = (const double *)part + c * wsz + t * OC;
            for (int64_t i = 0; i < OC; i++) o[i * kk] += pp[i];
          } else {
            float *o = (float *)sc_data(out) + t;
            const float *pp = (const float *)part + c * wsz + t * OC;
            for (int64_t i = 0; i < OC; i++) o[i * kk] += pp[i];
          }
        }
      sc_aligned_free(part, pbytes);
    }
    sc_aligned_free(col, nb * (size_t)nt);
  }
  return col ? 0 : -1;
}

/* dW [O, C, kh, kw] = sum_n g[n] [O, L] @ cols(x[n])^T [L, CK] */
sc_tensor *sc_conv2d_weight(sc_tensor *x0, sc_tensor *g0, const sc_conv_geom *g) {
  char b1[96], b2[96];
  if (check_image("conv2d_weight", x0) || check_image("conv2d_weight", g0) ||
      check_geom("conv2d_weight", g))
    return NULL;
  conv_dims d = {*g, x0->shape[0], x0->shape[1], x0->shape[2], x0->shape[3],
                 g0->shape[1], out_size(x0->shape[2], g->kh, g->sh, g->ph, g->dh),
                 out_size(x0->shape[3], g->kw, g->sw, g->pw, g->dw)};
  if (g0->shape[0] != d.N || g0->shape[2] != d.Ho || g0->shape[3] != d.Wo ||
      g0->dtype != x0->dtype || d.Ho < 1 || d.Wo < 1) {
    sc_set_error("conv2d_weight: input %s and gradient %s do not match",
                 sc_shape_str(x0, b1, sizeof b1), sc_shape_str(g0, b2, sizeof b2));
    return NULL;
  }
  int64_t ws[4] = {d.O, d.C, g->kh, g->kw};
  int64_t xsn = 0, gsn = 0;
  sc_tensor *x = sample_blocks(x0, &xsn), *gc = x ? sample_blocks(g0, &gsn) : NULL;
  sc_tensor *out = gc ? sc_zeros(4, ws, x0->dtype) : NULL;
  /* 3x3 at stride 1 in float32: with one channel on a side straight from
     the rows (thinconv.c), else in Winograd's domain (wino.c) */
  int ok = out && ((sc_thin_ok(x0->dtype, d.C, d.O, d.H, d.W, g) &&
                    sc_thin_conv3x3_weight_f32(sc_data(x), xsn, sc_data(gc), gsn, d.N, d.C, d.H,
                                               d.W, d.O, sc_data(out)) == 0) ||
                   (sc_wino_ok(x0->dtype, d.C, d.O, d.H, d.W, g) &&
                    sc_wino_conv3x3_weight_f32(sc_data(x), xsn, sc_data(gc), gsn, d.N, d.C, d.H,
                                               d.W, d.O, g->ph, g->pw, sc_data(out)) == 0) ||
                   weight_products(&d, g, x0->dtype, x, xsn, gc, gsn, out) == 0);
  sc_release(x);
  sc_release(gc);
  if (!ok) {
    sc_release(out);
    return NULL;
  }
  sc_tensor *in[2] = {x0, g0};
  sc_node *nd;
  if (sc_record(SC_OP_conv2d_weight, out, 2, in, &nd) ||
      (nd && (sc_save(nd, x0, 0) || sc_save(nd, g0, 0)))) {
    sc_release(out);
    return NULL;
  }
  if (nd) store_geom(nd, &d.g, d.H, d.W);
  return out;
}

int sc_bw_conv2d(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  sc_conv_geom k;
  geom_of(n, &k);
  sc_tensor *x = sc_unpack(n, 0), *w = x ? sc_unpack(n, 1) : NULL;
  int rc = w ? 0 : -1;
  if (rc == 0 && need[0] && !(gin[0] = sc_conv2d_input(g, w, n->p.conv.H, n->p.conv.W, &k))) rc = -1;
  if (rc == 0 && need[1] && !(gin[1] = sc_conv2d_weight(x, g, &k))) rc = -1;
  if (rc == 0 && n->nin == 3 && need[2]) { /* the bias: sum over n, h, w */
    const int dims[3] = {0, 2, 3};
    if (!(gin[2] = sc_sum(g, 3, dims, 0))) rc = -1;
  }
  sc_release(x);
  sc_release(w);
  return rc;
}

/* out = T(g, W): d/dg is conv2d(., W); d/dW is conv2d_weight(., g). */
int sc_bw_conv2d_input(sc_node *n, sc_tensor *gy, const int *need, sc_tensor **gin) {
  sc_conv_geom k;
  geom_of(n, &k);
  sc_tensor *g = sc_unpack(n, 0), *w = g ? sc_unpack(n, 1) : NULL;
  int rc = w ? 0 : -1;
  if (rc == 0 && need[0] && !(gin[0] = sc_conv2d_fused(gy, w, NULL, &k))) rc = -1;
  if (rc == 0 && need[1] && !(gin[1] = sc_conv2d_weight(gy, g, &k))) rc = -1;
  sc_release(g);
  sc_release(w);
  return rc;
}

/* out = Wgrad(x, g): d/dx is conv2d_input(g, .); d/dg is conv2d(x, .). */
int sc_bw_conv2d_weight(sc_node *n, sc_tensor *gw, const int *need, sc_tensor **gin) {
  sc_conv_geom k;
  geom_of(n, &k);
  sc_tensor *x = sc_unpack(n, 0), *g = x ? sc_unpack(n, 1) : NULL;
  int rc = g ? 0 : -1;
  if (rc == 0 && need[0] && !(gin[0] = sc_conv2d_input(g, gw, n->p.conv.H, n->p.conv.W, &k))) rc = -1;
  if (rc == 0 && need[1] && !(gin[1] = sc_conv2d_fused(x, gw, NULL, &k))) rc = -1;
  sc_release(x);
  sc_release(g);
  return rc;
}
