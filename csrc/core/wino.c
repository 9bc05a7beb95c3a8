/*
 * scorch core: 3x3 convolutions at stride 1 in float32 by Winograd's
 * minimal filtering F(2x2, 3x3) (Lavin & Gray, "Fast algorithms for
 * convolutional neural networks", CVPR 2016, section 4).
 *
 * Each 2x2 block of output comes from a 4x4 tile d of the padded input:
 *   V = B^T d B,  U = G g G^T,  Y = A^T (sum over channels of U ⊙ V) A
 * with B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],
 *      G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
 *      A^T = [1 1 1 0; 0 1 -1 -1].
 * The sum over input channels at each of the 16 tile positions is a matrix
 * product, M_xi [O, tiles] = U_xi [O, C] @ V_xi [C, tiles]: 16 products of
 * 4 multiply-adds per output pixel and channel pair where the 9 shifted
 * products of conv.c take 9 (and compute the padding columns besides).
 *
 * Work is cut into groups of whole samples, the group size set by the
 * image size alone; each group's tiles are the columns of its 16 products.
 * gemm512.c's columns do not depend on their place in a product, and the
 * transforms are adds and subtracts in a fixed order, so every output is
 * the same whichever thread or group computes it.
 *
 * Only on CPUs where gemm512.c runs (AVX-512): the transforms are written
 * with its intrinsics, and elsewhere conv.c's paths stay as they are.
 */
#include "gemm512.h"
#include "internal.h"
#include "pool.h"
#include "tensor.h"

#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(SC_NO_DISPATCH)
#define SC_WINO 1
#include <immintrin.h>
#define V4 __attribute__((target("arch=x86-64-v4")))
#endif

/* fewer channels than this and the transforms cost more than they save */
#define WINO_MIN_C 8
/* tiles per group: at least this many, so each product has columns enough */
#define WINO_MIN_TILES 128

int sc_wino_ok(int64_t C, int64_t O, int64_t H, int64_t W, int64_t kh, int64_t kw,
               int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw) {
#ifdef SC_WINO
  return sc_gemm_own_active() && kh == 3 && kw == 3 && sh == 1 && sw == 1 && dh == 1 &&
         dw == 1 && ph <= 2 && pw <= 2 && C >= WINO_MIN_C && O >= WINO_MIN_C &&
         H + 2 * ph >= 4 && W + 2 * pw >= 4;
#else
  (void)C, (void)O, (void)H, (void)W, (void)kh, (void)kw, (void)sh, (void)sw, (void)ph;
  (void)pw, (void)dh, (void)dw;
  return 0;
#endif
}

#ifdef SC_WINO

typedef struct {
  int64_t N, C, H, W, O, ph, pw, Ho, Wo, th, tw, Hq, Wq;
  int64_t G, nt, ldv; /* samples per group, tiles per group, V's and M's row stride */
  const float *x, *bias, *u, *upk;
  int64_t apad;
  float *y;
  char *scratch;
  size_t sbytes; /* per thread: plane, V, M */
} wjob;

static V4 inline __m512i idx_even(void) {
  return _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
}

/* V for the tiles of one padded plane P (Hq x Wq, zero borders) into
   v + xi*xs + ty*tw + tx: 16 tiles of a tile row at a time, each of the 4
   rows read as its even and odd columns at offsets 0 and 2. */
static V4 void wino_in(const float *P, const wjob *J, float *v, int64_t xs) {
  const __m512i ie = idx_even(), io = _mm512_add_epi32(ie, _mm512_set1_epi32(1));
  for (int64_t ty = 0; ty < J->th; ty++) {
    const float *r = P + 2 * ty * J->Wq;
    for (int64_t tx = 0; tx < J->tw; tx += 16) {
      int64_t cnt = J->tw - tx < 16 ? J->tw - tx : 16;
      __mmask16 mk = (__mmask16)((1u << cnt) - 1u);
      __m512 d[4][4];
#pragma GCC unroll 4
      for (int i = 0; i < 4; i++) {
        const float *q = r + i * J->Wq + 2 * tx;
        __m512 a = _mm512_loadu_ps(q), b = _mm512_loadu_ps(q + 16);
        __m512 c = _mm512_loadu_ps(q + 2), e = _mm512_loadu_ps(q + 18);
        d[i][0] = _mm512_permutex2var_ps(a, ie, b);
        d[i][1] = _mm512_permutex2var_ps(a, io, b);
        d[i][2] = _mm512_permutex2var_ps(c, ie, e);
        d[i][3] = _mm512_permutex2var_ps(c, io, e);
      }
      __m512 t[4][4];
#pragma GCC unroll 4
      for (int j = 0; j < 4; j++) { /* B^T d */
        t[0][j] = _mm512_sub_ps(d[0][j], d[2][j]);
        t[1][j] = _mm512_add_ps(d[1][j], d[2][j]);
        t[2][j] = _mm512_sub_ps(d[2][j], d[1][j]);
        t[3][j] = _mm512_sub_ps(d[1][j], d[3][j]);
      }
      float *o = v + ty * J->tw + tx;
#pragma GCC unroll 4
      for (int i = 0; i < 4; i++) { /* (B^T d) B */
        _mm512_mask_storeu_ps(o + (4 * i + 0) * xs, mk, _mm512_sub_ps(t[i][0], t[i][2]));
        _mm512_mask_storeu_ps(o + (4 * i + 1) * xs, mk, _mm512_add_ps(t[i][1], t[i][2]));
        _mm512_mask_storeu_ps(o + (4 * i + 2) * xs, mk, _mm512_sub_ps(t[i][2], t[i][1]));
        _mm512_mask_storeu_ps(o + (4 * i + 3) * xs, mk, _mm512_sub_ps(t[i][1], t[i][3]));
      }
    }
  }
}

/* The output plane y (Ho x Wo) of one channel from its M columns m + xi*xs
   + ty*tw + tx, plus the bias b: A^T M A, the 2x2 blocks interleaved into
   rows 2ty and 2ty + 1, columns past Wo (and a row Ho) left out. */
static V4 void wino_out(const float *m, int64_t xs, const wjob *J, float b, float *y) {
  const __m512i il = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i ih = _mm512_add_epi32(il, _mm512_set1_epi32(8));
  const __m512 vb = _mm512_set1_ps(b);
  for (int64_t ty = 0; ty < J->th; ty++) {
    for (int64_t tx = 0; tx < J->tw; tx += 16) {
      int64_t cnt = J->tw - tx < 16 ? J->tw - tx : 16;
      __mmask16 mk = (__mmask16)((1u << cnt) - 1u);
      const float *s = m + ty * J->tw + tx;
      __m512 u[2][4];
#pragma GCC unroll 4
      for (int j = 0; j < 4; j++) { /* A^T M */
        __m512 m0 = _mm512_maskz_loadu_ps(mk, s + (0 + j) * xs);
        __m512 m1 = _mm512_maskz_loadu_ps(mk, s + (4 + j) * xs);
        __m512 m2 = _mm512_maskz_loadu_ps(mk, s + (8 + j) * xs);
        __m512 m3 = _mm512_maskz_loadu_ps(mk, s + (12 + j) * xs);
        u[0][j] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
        u[1][j] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
      }
      int64_t cols = J->Wo - 2 * tx; /* output columns from 2tx on */
      if (cols > 32) cols = 32;
      __mmask16 ml = cols >= 16 ? 0xFFFF : (__mmask16)((1u << cols) - 1u);
      __mmask16 mh = cols <= 16 ? 0 : cols >= 32 ? 0xFFFF : (__mmask16)((1u << (cols - 16)) - 1u);
/* (A^T M) A + b, row 2ty then 2ty + 1 */
      float *row = y + 2 * ty * J->Wo + 2 * tx;
      __m512 e = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(u[0][0], u[0][1]), u[0][2]), vb);
      __m512 f = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(u[0][1], u[0][2]), u[0][3]), vb);
      _mm512_mask_storeu_ps(row, ml, _mm512_permutex2var_ps(e, il, f));
      _mm512_mask_storeu_ps(row + 16, mh, _mm512_permutex2var_ps(e, ih, f));
      if (2 * ty + 1 < J->Ho) {
        row += J->Wo;
        e = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(u[1][0], u[1][1]), u[1][2]), vb);
        f = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(u[1][1], u[1][2]), u[1][3]), vb);
        _mm512_mask_storeu_ps(row, ml, _mm512_permutex2var_ps(e, il, f));
        _mm512_mask_storeu_ps(row + 16, mh, _mm512_permutex2var_ps(e, ih, f));
      }
    }
  }
}

static void wino_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  const wjob *J = ctx;
  float *P = (float *)(J->scratch + (size_t)tid * J->sbytes);
  float *V = P + ((J->Hq * J->Wq + 64 + 15) / 16 * 16);
  float *M = V + 16 * J->C * J->ldv;
  int64_t per = J->th * J->tw, plane = J->H * J->W, oplane = J->Ho * J->Wo;
  for (int64_t gi = lo; gi < hi; gi++) {
    int64_t n0 = gi * J->G, cnt = J->N - n0 < J->G ? J->N - n0 : J->G, nt = cnt * per;
    for (int64_t s = 0; s < cnt; s++)
      for (int64_t c = 0; c < J->C; c++) {
        const float *xc = J->x + ((n0 + s) * J->C + c) * plane;
        for (int64_t h = 0; h < J->H; h++) /* the interior; borders stay zero */
          memcpy(P + (h + J->ph) * J->Wq + J->pw, xc + h * J->W, (size_t)J->W * sizeof(float));
        wino_in(P, J, V + c * J->ldv + s * per, J->C * J->ldv);
      }
    for (int xi = 0; xi < 16; xi++) {
      sc_gemm_extra ex = {.binplace = 1, .apre = J->upk ? J->upk + xi * J->apad * J->C : NULL,
                          .apad = J->apad};
      (void)sc_gemm_ex(SC_FLOAT32, 0, 0, J->O, nt, J->C, J->u + xi * J->O * J->C, J->C,
                       V + xi * J->C * J->ldv, J->ldv, 0.0, M + xi * J->O * J->ldv, J->ldv, &ex);
    }
    for (int64_t s = 0; s < cnt; s++)
      for (int64_t o = 0; o < J->O; o++)
        wino_out(M + o * J->ldv + s * per, J->O * J->ldv, J,
                 J->bias ? J->bias[o] : 0.0f, J->y + ((n0 + s) * J->O + o) * oplane);
  }
}

/* U [16][O][C] from g [O][C][3][3]: G g G^T, row by row then column by
   column (the halves are exact). */
static void wino_weights(const float *g, int64_t O, int64_t C, float *u) {
  for (int64_t o = 0; o < O; o++)
    for (int64_t c = 0; c < C; c++) {
      const float *k = g + (o * C + c) * 9;
      float t[4][3], r[4][4];
      for (int j = 0; j < 3; j++) {
        t[0][j] = k[j];
        t[1][j] = 0.5f * (k[j] + k[3 + j] + k[6 + j]);
        t[2][j] = 0.5f * (k[j] - k[3 + j] + k[6 + j]);
        t[3][j] = k[6 + j];
      }
      for (int i = 0; i < 4; i++) {
        r[i][0] = t[i][0];
        r[i][1] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
        r[i][2] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
        r[i][3] = t[i][2];
      }
      for (int xi = 0; xi < 16; xi++) u[(xi * O + o) * C + c] = r[xi / 4][xi % 4];
    }
}

int sc_wino_conv3x3_f32(const float *x, int64_t N, int64_t C, int64_t H, int64_t W,
                        const float *w, int64_t O, const float *bias, int64_t ph, int64_t pw,
                        float *y) {
  wjob J = {.N = N, .C = C, .H = H, .W = W, .O = O, .ph = ph, .pw = pw, .x = x,
            .bias = bias, .y = y};
  J.Ho = H + 2 * ph - 2, J.Wo = W + 2 * pw - 2;
  J.th = (J.Ho + 1) / 2, J.tw = (J.Wo + 1) / 2;
  /* the padded plane covers every tile (2 t + 2 rows and columns), and its
     rows are read 34 columns past a tile row's start */
  J.Hq = 2 * J.th + 2, J.Wq = 2 * J.tw + 2;
  int64_t per = J.th * J.tw;
  J.G = (WINO_MIN_TILES + per - 1) / per;
  if (J.G > N) J.G = N;
  J.nt = J.G * per;
  J.ldv = (J.nt + 15) / 16 * 16;
  J.apad = sc_packed_rows(O);
  int64_t groups = (N + J.G - 1) / J.G;
  int nth = sc_get_num_threads();
  if (nth > groups) nth = (int)groups;
  if (nth < 1) nth = 1;
  size_t pfl = (size_t)((J.Hq * J.Wq + 64 + 15) / 16 * 16);
  J.sbytes = ((pfl + (size_t)(16 * (C + O) * J.ldv)) * sizeof(float) + 63) & ~(size_t)63;
  size_t ubytes = (size_t)(16 * O * C) * sizeof(float);
  size_t pkbytes = (size_t)(16 * J.apad * C) * sizeof(float);
  float *u = sc_aligned_alloc(ubytes);
  float *upk = u ? sc_aligned_alloc(pkbytes) : NULL;
  J.scratch = upk ? sc_aligned_alloc(J.sbytes * (size_t)nth) : NULL;
  if (!J.scratch) {
    if (upk) sc_aligned_free(upk, pkbytes);
    if (u) sc_aligned_free(u, ubytes);
    return -1;
  }
  for (int t = 0; t < nth; t++) memset(J.scratch + (size_t)t * J.sbytes, 0, pfl * sizeof(float));
  wino_weights(w, O, C, u);
  for (int xi = 0; xi < 16; xi++)
    if (sc_pack_a_all(0, u + xi * O * C, C, O, C, upk + xi * J.apad * C)) {
      sc_aligned_free(upk, pkbytes);
      upk = NULL;
      break;
    }
  J.u = u, J.upk = upk;
  sc_parallel_for(nth, groups, wino_part, &J);
  sc_aligned_free(J.scratch, J.sbytes * (size_t)nth);
  if (upk) sc_aligned_free(upk, pkbytes);
  sc_aligned_free(u, ubytes);
  return 0;
}

#else

int sc_wino_conv3x3_f32(const float *x, int64_t N, int64_t C, int64_t H, int64_t W,
                        const float *w, int64_t O, const float *bias, int64_t ph, int64_t pw,
                        float *y) {
  (void)x, (void)N, (void)C, (void)H, (void)W, (void)w, (void)O, (void)bias, (void)ph;
  (void)pw, (void)y;
  return -1;
}

#endif
