/*
 * scorch core: 3x3 convolutions at stride 1 in float32 by Winograd's
 * minimal filtering F(2x2, 3x3) (Lavin & Gray, "Fast algorithms for
 * convolutional neural networks", CVPR 2016, section 4), or F(4x2, 3x3):
 * F(4, 3) down the rows and F(2, 3) across the columns (see "the vertical
 * transforms" below; wino_tile_of picks).  F(2x2, 3x3):
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
 * F(4x2, 3x3)'s tiles are 6 rows by 4 columns for a 4x2 block: 24
 * products, 3 multiply-adds per output pixel and channel pair.
 *
 * The weight gradient is the transpose: per tile position, the tiles of
 * A dY A^T times those of V, summed over tiles, then G^T (.) G.
 *
 * Work is cut into units (wino_geom): groups of whole samples, or blocks
 * of one sample's tile rows, set by the shapes alone; a unit's tiles are
 * the columns of its 16 (24) products.  gemm512.c's columns do not depend on
 * their place in a product, and the transforms are adds and subtracts in
 * a fixed order, so every output is the same whichever thread or unit
 * computes it; the weight gradient's sums run in a fixed order of units.
 *
 * Only on CPUs where gemm512.c runs (AVX-512): the transforms are written
 * with its intrinsics, and elsewhere conv.c's paths stay as they are.
 */
#include "gemm512.h"
#include "internal.h"
#include "pool.h"
#include "tensor.h"
#include "vmath.h"
#include "wino.h"

#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(SC_NO_DISPATCH)
#define SC_WINO 1
#include <immintrin.h>
#define V4 SC_V4
#endif

/* fewer channels than this and the transforms cost more than they save */
#define WINO_MIN_C 8
/* a unit's transformed tiles, np x (C + O) x tiles floats, at most this
   (2 MB: of 0.5, 1, 2 and 4 MB, the fastest for W3 and W7t on a Zen 5
   core with 1 MB of L2, the longer products outweighing the L2 misses),
   but at least WINO_MIN_TILES tiles, so each product keeps columns
   enough */
#define WINO_UNIT_FLOATS (512 * 1024)
#define WINO_MIN_TILES 32

int sc_wino_ok(sc_dtype dt, int64_t C, int64_t O, int64_t H, int64_t W, const sc_conv_geom *g) {
#ifdef SC_WINO
  return dt == SC_FLOAT32 && sc_gemm_own_active() && g->kh == 3 && g->kw == 3 && g->sh == 1 &&
         g->sw == 1 && g->dh == 1 && g->dw == 1 && g->ph <= 2 && g->pw <= 2 &&
         C >= WINO_MIN_C && O >= WINO_MIN_C && H + 2 * g->ph >= 4 && W + 2 * g->pw >= 4;
#else
  (void)dt, (void)C, (void)O, (void)H, (void)W, (void)g;
  return 0;
#endif
}

#ifdef SC_WINO

typedef struct wjob wjob;
/* the transforms of one plane, for tile rows ty0 <= ty < ty1 (see wino_in_1,
   wino_out_1, wino_grad_in_1) */
typedef void (*wino_in_fn)(const float *xp, const wjob *J, int64_t ty0, int64_t ty1, float *v,
                           int64_t xs);
typedef void (*wino_out_fn)(const float *m, int64_t xs, const wjob *J, int64_t ty0, int64_t ty1,
                            float b, float *y);

struct wjob {
  int64_t N, C, H, W, O, ph, pw, Ho, Wo, th, tw;
  int64_t xsn; /* x's sample stride in floats (C H W when contiguous) */
  /* a unit of work: G whole samples (nb = 1), or R tile rows of one sample
     (one of its nb blocks); nt tiles at most, V's and M's row stride ldv */
  int64_t G, R, nb, nt, ldv;
  int64_t vs, ms; /* strides of V's and M's (Z's) np tile positions */
  /* the tiling: m output rows to a tile, F(2x2, 3x3) (m = 2, 4 x 4 tiles,
     np = 16 positions) or F(4x2, 3x3) (m = 4, 6 x 4 tiles, np = 24) */
  int m, np;
  /* the forward's output channels per pass of products and output
     transform (wino_oblock) */
  int64_t ob;
  const float *x, *bias, *u, *upk;
  int64_t apad;
  float *y;
  char *scratch;
  size_t sbytes;  /* per thread: V, then M (or Z) */
  size_t sstride; /* between two threads' scratch: sc_thread_stride(sbytes, threads) */
  /* this plane width's transforms: 1, 2 or 4 tile rows to a vector */
  wino_in_fn in, grad_in;
  wino_out_fn out;
};

static V4 inline __m512i idx_even(void) {
  return _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
}

/* Lanes l of a 16-float vector at column s of a row W wide with
   0 <= s + l < W (the rest read as padding). */
static inline __mmask16 cols_mask(int64_t s, int64_t W) {
  int64_t lo = s < 0 ? -s : 0, hi = W - s < 16 ? W - s : 16;
  if (hi <= lo) return 0;
  return (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

/* at(p, off), at_w(p, off): p + off floats as an address (vmath.h's
   sc_fat): masked loads and prefetches reach before a plane or past it */
#define at sc_fat
#define at_w sc_fat_w

/* Rows r .. r + n - 1 of a plane W wide, `bytes` of each from column c,
   asked into L1 ahead of their loads (the masked loads that read them
   leave the hardware prefetchers behind: 25-35% of a 28 x 28 convolution
   measured).  Rows past the plane are the next plane's first ones, which
   come next; prefetches never fault. */
static inline V4 __attribute__((always_inline)) void prefetch_rows(const float *p, int64_t r,
                                                                  int n, int64_t W, int64_t c,
                                                                  int bytes) {
  for (int i = 0; i < n; i++)
    for (int b = 0; b < bytes; b += 64)
      _mm_prefetch((const char *)at(p, (r + i) * W + c + b / 4), _MM_HINT_T0);
}

/* Row r of the plane xp from column c0 on (zero where r or a column is
   outside the plane), as its even and odd columns from c0 and from c0 + 2:
   the 4 columns of 16 tiles' rows. */
static inline V4 __attribute__((always_inline)) void load_row(
    const float *xp, const wjob *J, int64_t r, int64_t c0, __mmask16 ma, __mmask16 mb,
    __mmask16 mc, __mmask16 me, __m512 *d) {
  if (r < 0 || r >= J->H) {
    d[0] = d[1] = d[2] = d[3] = _mm512_setzero_ps();
    return;
  }
  const __m512i ie = idx_even(), io = _mm512_add_epi32(ie, _mm512_set1_epi32(1));
  const float *q = at(xp, r * J->W + c0);
  __m512 a = _mm512_maskz_loadu_ps(ma, q), b = _mm512_maskz_loadu_ps(mb, at(q, 16));
  __m512 c = _mm512_maskz_loadu_ps(mc, at(q, 2)), e = _mm512_maskz_loadu_ps(me, at(q, 18));
  d[0] = _mm512_permutex2var_ps(a, ie, b);
  d[1] = _mm512_permutex2var_ps(a, io, b);
  d[2] = _mm512_permutex2var_ps(c, ie, e);
  d[3] = _mm512_permutex2var_ps(c, io, e);
}

#define AI __attribute__((always_inline))

/* ---- the vertical transforms: MH = 2 or 4 output rows to a tile ------------

   Across a tile's columns the transform is always F(2, 3)'s; down its rows
   it is F(2, 3)'s (MH = 2: F(2x2, 3x3), 4 x 4 tiles) or F(4, 3)'s (MH = 4:
   F(4x2, 3x3), 6 x 4 tiles, 24 products of 3 multiply-adds per output
   pixel and channel pair against 4).  Rows are whole vectors, so the
   longer transform costs adds, not shuffles; F(4, 3) across columns would
   need a stride-4 deal of every row.  F(4, 3): Lavin & Gray, section 4.2,
   points 0, 1, -1, 2, -2 and infinity. */

/* B^T of MH + 2 values: F(2, 3)'s rows 1 0 -1 0 / 0 1 1 0 / 0 -1 1 0 /
   0 1 0 -1; F(4, 3)'s 4 0 -5 0 1 0 / 0 -4 -4 1 1 0 / 0 4 -4 -1 1 0 /
   0 -2 -1 2 1 0 / 0 2 -1 -2 1 0 / 0 4 0 -5 0 1 */
static inline V4 AI void vbt(const __m512 *d, __m512 *o, const int MH) {
  if (MH == 2) {
    o[0] = _mm512_sub_ps(d[0], d[2]);
    o[1] = _mm512_add_ps(d[1], d[2]);
    o[2] = _mm512_sub_ps(d[2], d[1]);
    o[3] = _mm512_sub_ps(d[1], d[3]);
    return;
  }
  const __m512 c4 = _mm512_set1_ps(4.0f), c5 = _mm512_set1_ps(5.0f), c2 = _mm512_set1_ps(2.0f);
  __m512 s12 = _mm512_add_ps(d[1], d[2]), d12 = _mm512_sub_ps(d[1], d[2]);
  __m512 s34 = _mm512_add_ps(d[3], d[4]), d43 = _mm512_sub_ps(d[4], d[3]);
  __m512 d42 = _mm512_sub_ps(d[4], d[2]), d31 = _mm512_sub_ps(d[3], d[1]);
  o[0] = _mm512_fmadd_ps(c4, d[0], _mm512_fnmadd_ps(c5, d[2], d[4]));
  o[1] = _mm512_fnmadd_ps(c4, s12, s34);
  o[2] = _mm512_fmadd_ps(c4, d12, d43);
  o[3] = _mm512_fmadd_ps(c2, d31, d42);
  o[4] = _mm512_fnmadd_ps(c2, d31, d42);
  o[5] = _mm512_fmadd_ps(c4, d[1], _mm512_fnmadd_ps(c5, d[3], d[5]));
}

/* A^T of MH + 2 values: F(2, 3)'s rows 1 1 1 0 / 0 1 -1 -1; F(4, 3)'s
   1 1 1 1 1 0 / 0 1 -1 2 -2 0 / 0 1 1 4 4 0 / 0 1 -1 8 -8 1 */
static inline V4 AI void vat(const __m512 *m, __m512 *o, const int MH) {
  if (MH == 2) {
    o[0] = _mm512_add_ps(_mm512_add_ps(m[0], m[1]), m[2]);
    o[1] = _mm512_sub_ps(_mm512_sub_ps(m[1], m[2]), m[3]);
    return;
  }
  __m512 s12 = _mm512_add_ps(m[1], m[2]), d12 = _mm512_sub_ps(m[1], m[2]);
  __m512 s34 = _mm512_add_ps(m[3], m[4]), d34 = _mm512_sub_ps(m[3], m[4]);
  o[0] = _mm512_add_ps(_mm512_add_ps(m[0], s12), s34);
  o[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.0f), d34, d12);
  o[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), s34, s12);
  o[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.0f), d34, d12), m[5]);
}

/* A of MH values (A^T's transpose): F(2, 3)'s g0, g0 + g1, g0 - g1, -g1;
   F(4, 3)'s columns 1 0 0 0 / 1 1 1 1 / 1 -1 1 -1 / 1 2 4 8 / 1 -2 4 -8 /
   0 0 0 1 */
static inline V4 AI void va(const __m512 *g, __m512 *o, const int MH) {
  if (MH == 2) {
    o[0] = g[0];
    o[1] = _mm512_add_ps(g[0], g[1]);
    o[2] = _mm512_sub_ps(g[0], g[1]);
    o[3] = _mm512_sub_ps(_mm512_setzero_ps(), g[1]);
    return;
  }
  __m512 s02 = _mm512_add_ps(g[0], g[2]), s13 = _mm512_add_ps(g[1], g[3]);
  __m512 f02 = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), g[2], g[0]);
  __m512 f13 = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), g[3], g[1]);
  o[0] = g[0];
  o[1] = _mm512_add_ps(s02, s13);
  o[2] = _mm512_sub_ps(s02, s13);
  o[3] = _mm512_fmadd_ps(_mm512_set1_ps(2.0f), f13, f02);
  o[4] = _mm512_fnmadd_ps(_mm512_set1_ps(2.0f), f13, f02);
  o[5] = g[3];
}

/* V = B^T d B of 16 tiles' rows d[i][j] (row i < MH + 2, column j < 4),
   stored at o + xi*xs for tile position xi = 4i + j, mk's lanes; with
   `close`, the lanes first closed up by the permutation cl (stacked tile
   rows). */
static inline V4 AI void store_v(__m512 d[6][4], float *o, int64_t xs, __mmask16 mk,
                                 const int close, __m512i cl, const int MH) {
  const int R = MH + 2;
  __m512 t[6][4];
#pragma GCC unroll 4
  for (int j = 0; j < 4; j++) { /* B^T d */
    __m512 c[6] = {d[0][j], d[1][j], d[2][j], d[3][j], d[R - 2][j], d[R - 1][j]}, e[6];
    vbt(c, e, MH);
#pragma GCC unroll 6
    for (int i = 0; i < R; i++) t[i][j] = e[i];
  }
#pragma GCC unroll 6
  for (int i = 0; i < R; i++) { /* (B^T d) B */
    __m512 v[4] = {_mm512_sub_ps(t[i][0], t[i][2]), _mm512_add_ps(t[i][1], t[i][2]),
                   _mm512_sub_ps(t[i][2], t[i][1]), _mm512_sub_ps(t[i][1], t[i][3])};
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++)
      _mm512_mask_storeu_ps(o + (4 * i + j) * xs, mk,
                            close ? _mm512_permutexvar_ps(cl, v[j]) : v[j]);
  }
}

/* Z = A g A^T of 16 tiles' MH x 2 gradient blocks g[a][b], stored as
   store_v stores V: down the rows va, then across F(2, 3)'s A on each row
   (g0, g0 + g1, g0 - g1, -g1). */
static inline V4 AI void store_z(__m512 g[4][2], float *o, int64_t xs, __mmask16 mk,
                                 const int close, __m512i cl, const int MH) {
  const int R = MH + 2;
  const __m512 zero = _mm512_setzero_ps();
  __m512 r[6][2];
#pragma GCC unroll 2
  for (int c = 0; c < 2; c++) {
    __m512 in[4] = {g[0][c], g[1][c], g[MH - 2][c], g[MH - 1][c]}, e[6];
    va(in, e, MH);
#pragma GCC unroll 6
    for (int i = 0; i < R; i++) r[i][c] = e[i];
  }
#pragma GCC unroll 6
  for (int i = 0; i < R; i++) {
    __m512 z[4] = {r[i][0], _mm512_add_ps(r[i][0], r[i][1]), _mm512_sub_ps(r[i][0], r[i][1]),
                   _mm512_sub_ps(zero, r[i][1])};
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++)
      _mm512_mask_storeu_ps(o + (4 * i + j) * xs, mk,
                            close ? _mm512_permutexvar_ps(cl, z[j]) : z[j]);
  }
}

/* V for tile rows ty0 <= ty < ty1 of one image plane xp (H x W, padded by
   ph x pw on reading: masked loads, whose masked-off lanes never touch
   memory) into v + xi*xs + (ty - ty0)*tw + tx: 16 tiles of a tile row at a
   time, each of the MH + 2 rows read as its even and odd columns from the
   tile's first column and from two further on. */
static inline V4 AI void wide_in(const float *xp, const wjob *J, int64_t ty0, int64_t ty1,
                                 float *v, int64_t xs, const int MH) {
  const int R = MH + 2;
  for (int64_t tx = 0; tx < J->tw; tx += 16) {
    int64_t cnt = J->tw - tx < 16 ? J->tw - tx : 16, c0 = 2 * tx - J->pw;
    __mmask16 mk = (__mmask16)((1u << cnt) - 1u);
    __mmask16 ma = cols_mask(c0, J->W), mb = cols_mask(c0 + 16, J->W);
    __mmask16 mc = cols_mask(c0 + 2, J->W), me = cols_mask(c0 + 18, J->W);
    /* a tile row's last 2 rows are the next one's first 2: read once,
       carried over */
    __m512 d[6][4] = {{_mm512_setzero_ps()}};
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++) load_row(xp, J, MH * ty0 - J->ph + i, c0, ma, mb, mc, me, d[i]);
    for (int64_t ty = ty0; ty < ty1; ty++) {
      if (ty > ty0) {
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) d[0][j] = d[R - 2][j], d[1][j] = d[R - 1][j];
      }
#pragma GCC unroll 4
      for (int i = 2; i < R; i++) load_row(xp, J, MH * ty - J->ph + i, c0, ma, mb, mc, me, d[i]);
      /* the rows of 3 tile rows on: 2 on left the loads waiting (96 -> 32
         channels on 64 samples of 28 x 28, F(4x2): forward and weight
         gradient 3-4% faster at 3, level at 5) */
      prefetch_rows(xp, MH * ty - J->ph + R + 3 * MH, MH, J->W, c0, 128);
      store_v(d, v + (ty - ty0) * J->tw + tx, xs, mk, 0, _mm512_setzero_si512(), MH);
    }
  }
}

/* Tile rows ty0 <= ty < ty1 of the output plane y (Ho x Wo) of one
   channel from its M columns m + xi*xs + (ty - ty0)*tw + tx, plus the
   bias b: A^T M A, each tile's MH x 2 block interleaved into rows
   MH ty + i, columns past Wo (and rows past Ho) left out. */
static inline V4 AI void wide_out(const float *m, int64_t xs, const wjob *J, int64_t ty0,
                                  int64_t ty1, float b, float *y, const int MH) {
  const __m512i il = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i ih = _mm512_add_epi32(il, _mm512_set1_epi32(8));
  const __m512 vb = _mm512_set1_ps(b);
  for (int64_t ty = ty0; ty < ty1; ty++) {
    for (int64_t tx = 0; tx < J->tw; tx += 16) {
      int64_t cnt = J->tw - tx < 16 ? J->tw - tx : 16;
      __mmask16 mk = (__mmask16)((1u << cnt) - 1u);
      const float *s = m + (ty - ty0) * J->tw + tx;
      __m512 u[4][4];
#pragma GCC unroll 4
      for (int j = 0; j < 4; j++) { /* A^T M */
        __m512 c[6], e[4];
#pragma GCC unroll 6
        for (int i = 0; i < MH + 2; i++) c[i] = _mm512_maskz_loadu_ps(mk, s + (4 * i + j) * xs);
        vat(c, e, MH);
#pragma GCC unroll 4
        for (int i = 0; i < MH; i++) u[i][j] = e[i];
      }
      int64_t cols = J->Wo - 2 * tx; /* output columns from 2tx on */
      if (cols > 32) cols = 32;
      __mmask16 ml = cols >= 16 ? 0xFFFF : (__mmask16)((1u << cols) - 1u);
      __mmask16 mh = cols <= 16 ? 0 : cols >= 32 ? 0xFFFF : (__mmask16)((1u << (cols - 16)) - 1u);
#pragma GCC unroll 4
      for (int i = 0; i < MH; i++) { /* (A^T M) A + b, row MH ty + i */
        if (MH * ty + i >= J->Ho) break;
        float *row = y + (MH * ty + i) * J->Wo + 2 * tx;
        __m512 e = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(u[i][0], u[i][1]), u[i][2]), vb);
        __m512 f = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(u[i][1], u[i][2]), u[i][3]), vb);
        _mm512_mask_storeu_ps(row, ml, _mm512_permutex2var_ps(e, il, f));
        _mm512_mask_storeu_ps(at_w(row, 16), mh, _mm512_permutex2var_ps(e, ih, f));
      }
    }
  }
}

/* A dY A^T for tile rows ty0 <= ty < ty1 of one output-gradient plane gy
   (Ho x Wo) into z + xi*xs + (ty - ty0)*tw + tx: the MH x 2 block of each
   tile (zero past the plane's last row or column) becomes (MH + 2) x 4 by
   store_z. */
static inline V4 AI void wide_grad_in(const float *gy, const wjob *J, int64_t ty0, int64_t ty1,
                                      float *z, int64_t xs, const int MH) {
  const __m512i ie = idx_even(), io = _mm512_add_epi32(ie, _mm512_set1_epi32(1));
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t ty = ty0; ty < ty1; ty++) {
    for (int64_t tx = 0; tx < J->tw; tx += 16) {
      int64_t cnt = J->tw - tx < 16 ? J->tw - tx : 16;
      __mmask16 mk = (__mmask16)((1u << cnt) - 1u);
      int64_t cols = J->Wo - 2 * tx;
      if (cols > 32) cols = 32;
      __mmask16 ml = cols >= 16 ? 0xFFFF : (__mmask16)((1u << cols) - 1u);
      __mmask16 mh = cols <= 16 ? 0 : cols >= 32 ? 0xFFFF : (__mmask16)((1u << (cols - 16)) - 1u);
      prefetch_rows(gy, MH * ty + 2 * MH, MH, J->Wo, 2 * tx, 128);
      __m512 g[4][2];
#pragma GCC unroll 4
      for (int a = 0; a < MH; a++) {
        if (MH * ty + a < J->Ho) {
          const float *row = gy + (MH * ty + a) * J->Wo + 2 * tx;
          __m512 lo = _mm512_maskz_loadu_ps(ml, row);
          __m512 hi = _mm512_maskz_loadu_ps(mh, at(row, 16));
          g[a][0] = _mm512_permutex2var_ps(lo, ie, hi);
          g[a][1] = _mm512_permutex2var_ps(lo, io, hi);
        } else {
          g[a][0] = g[a][1] = zero;
        }
      }
      store_z(g, z + (ty - ty0) * J->tw + tx, xs, mk, 0, _mm512_setzero_si512(), MH);
    }
  }
}

/* ---- narrow planes: K tile rows to a vector -------------------------------

   With tw <= 8 (or 4) tiles to a row, one tile row fills half (a quarter)
   of a vector, so K = 2 (4) tile rows share one: lane k*L + l (L = 16/K)
   is tile (ty + k, l).  Each row segment of 2L columns is a masked load
   into its own lanes; the sums are those of the one-row path, term for
   term, so the bits are the same.  Between the lanes and the products'
   columns, where tw < L, a fixed permutation closes the gaps. */

/* Rows r, r + st, ... (nh of them, those past `valid` or outside 0..H-1
   zero) from column c, each 2L = w2 columns into lanes h*w2 on (mask m
   for one segment's columns). */
static inline V4 AI __m512 rows_load(const float *p, int64_t H, int64_t W, int64_t r, int st,
                                     int nh, int w2, int valid, int64_t c, __mmask16 m) {
  __m512 v = _mm512_setzero_ps();
  for (int h = 0; h < nh; h++) {
    int64_t rr = r + st * h;
    if (h < valid && rr >= 0 && rr < H)
      v = _mm512_mask_loadu_ps(v, (__mmask16)(m << (h * w2)), at(p, rr * W + c - h * w2));
  }
  return v;
}

/* lane p of the products' columns <- lane (p / tw) * L + p % tw */
static inline V4 AI __m512i gap_close(int64_t tw, int L) {
  int32_t ix[16];
  for (int q = 0; q < 16; q++) ix[q] = (int32_t)(q / tw * L + q % tw) & 15;
  return _mm512_loadu_si512(ix);
}

/* and back: lane k*L + l <- k*tw + l */
static inline V4 AI __m512i gap_open(int64_t tw, int L) {
  int32_t ix[16];
  for (int q = 0; q < 16; q++) ix[q] = (int32_t)((q / L) * tw + (q % L < tw ? q % L : 0)) & 15;
  return _mm512_loadu_si512(ix);
}

static inline V4 AI void stacked_in(const float *xp, const wjob *J, int64_t ty0, int64_t ty1,
                                    float *v, int64_t xs, const int K, const int MH) {
  const int L = 16 / K, w2 = 2 * L, nh = K / 2;
  const __m512i ie = idx_even(), io = _mm512_add_epi32(ie, _mm512_set1_epi32(1));
  const __m512i cl = gap_close(J->tw, L);
  const __mmask16 seg = (__mmask16)((1u << w2) - 1u);
  int64_t c0 = -J->pw;
  __mmask16 ma = cols_mask(c0, J->W) & seg, mc = cols_mask(c0 + 2, J->W) & seg;
  for (int64_t ty = ty0; ty < ty1; ty += K) {
    int rows = ty1 - ty < K ? (int)(ty1 - ty) : K;
    __mmask16 mk = (__mmask16)((1u << (rows * J->tw)) - 1u);
    prefetch_rows(xp, MH * (ty + K) - J->ph + 2, MH * K, J->W, c0, 4 * w2 + 64);
    __m512 d[6][4];
#pragma GCC unroll 6
    for (int i = 0; i < MH + 2; i++) {
      int64_t r = MH * ty - J->ph + i; /* of tile row ty; ty + k reads r + MH k */
      __m512 a = rows_load(xp, J->H, J->W, r, MH, nh, w2, rows, c0, ma);
      __m512 b = rows_load(xp, J->H, J->W, r + MH * nh, MH, nh, w2, rows - nh, c0, ma);
      __m512 c = rows_load(xp, J->H, J->W, r, MH, nh, w2, rows, c0 + 2, mc);
      __m512 e = rows_load(xp, J->H, J->W, r + MH * nh, MH, nh, w2, rows - nh, c0 + 2, mc);
      d[i][0] = _mm512_permutex2var_ps(a, ie, b);
      d[i][1] = _mm512_permutex2var_ps(a, io, b);
      d[i][2] = _mm512_permutex2var_ps(c, ie, e);
      d[i][3] = _mm512_permutex2var_ps(c, io, e);
    }
    store_v(d, v + (ty - ty0) * J->tw, xs, mk, 1, cl, MH);
  }
}

static inline V4 AI void stacked_out(const float *m, int64_t xs, const wjob *J, int64_t ty0,
                                     int64_t ty1, float b, float *y, const int K, const int MH) {
  const int L = 16 / K, w2 = 2 * L;
  const __m512i il = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i ih = _mm512_add_epi32(il, _mm512_set1_epi32(8));
  const __m512i op = gap_open(J->tw, L);
  const __m512 vb = _mm512_set1_ps(b);
  const __mmask16 cm = (__mmask16)((1u << J->Wo) - 1u); /* Wo <= 2L */
  for (int64_t ty = ty0; ty < ty1; ty += K) {
    int rows = ty1 - ty < K ? (int)(ty1 - ty) : K;
    __mmask16 mk = (__mmask16)((1u << (rows * J->tw)) - 1u);
    const float *s = m + (ty - ty0) * J->tw;
    __m512 u[4][4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) { /* A^T M */
      __m512 c[6], e[4];
#pragma GCC unroll 6
      for (int i = 0; i < MH + 2; i++)
        c[i] = _mm512_permutexvar_ps(op, _mm512_maskz_loadu_ps(mk, s + (4 * i + j) * xs));
      vat(c, e, MH);
#pragma GCC unroll 4
      for (int i = 0; i < MH; i++) u[i][j] = e[i];
    }
#pragma GCC unroll 4
    for (int i = 0; i < MH; i++) { /* (A^T M) A + b: output rows MH(ty + k) + i */
      __m512 e = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(u[i][0], u[i][1]), u[i][2]), vb);
      __m512 f = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(u[i][1], u[i][2]), u[i][3]), vb);
      __m512 lo = _mm512_permutex2var_ps(e, il, f), hi = _mm512_permutex2var_ps(e, ih, f);
      for (int k = 0; k < rows; k++) {
        int64_t orow = MH * (ty + k) + i;
        if (orow >= J->Ho) break;
        int off = (k * w2) % 16;
        _mm512_mask_storeu_ps(at_w(y, orow * J->Wo - off), (__mmask16)(cm << off),
                              k * w2 < 16 ? lo : hi);
      }
    }
  }
}

static inline V4 AI void stacked_grad_in(const float *gy, const wjob *J, int64_t ty0,
                                         int64_t ty1, float *z, int64_t xs, const int K,
                                         const int MH) {
  const int L = 16 / K, w2 = 2 * L, nh = K / 2;
  const __m512i ie = idx_even(), io = _mm512_add_epi32(ie, _mm512_set1_epi32(1));
  const __m512i cl = gap_close(J->tw, L);
  const __mmask16 cm = (__mmask16)((1u << J->Wo) - 1u); /* Wo <= 2L */
  for (int64_t ty = ty0; ty < ty1; ty += K) {
    int rows = ty1 - ty < K ? (int)(ty1 - ty) : K;
    __mmask16 mk = (__mmask16)((1u << (rows * J->tw)) - 1u);
    prefetch_rows(gy, MH * (ty + K), MH * K, J->Wo, 0, 4 * w2);
    __m512 g[4][2];
#pragma GCC unroll 4
    for (int a = 0; a < MH; a++) {
      int64_t r = MH * ty + a;
      __m512 lo = rows_load(gy, J->Ho, J->Wo, r, MH, nh, w2, rows, 0, cm);
      __m512 hi = rows_load(gy, J->Ho, J->Wo, r + MH * nh, MH, nh, w2, rows - nh, 0, cm);
      g[a][0] = _mm512_permutex2var_ps(lo, ie, hi);
      g[a][1] = _mm512_permutex2var_ps(lo, io, hi);
    }
    store_z(g, z + (ty - ty0) * J->tw, xs, mk, 1, cl, MH);
  }
}

/* The instances: tile rows of MH = 2 or 4 output rows, K = 1, 2 or 4 tile
   rows to a vector */
#define WINO_INSTANCES(MH)                                                                   \
  static V4 void wino_in_1_##MH(const float *xp, const wjob *J, int64_t ty0, int64_t ty1,    \
                                float *v, int64_t xs) {                                      \
    wide_in(xp, J, ty0, ty1, v, xs, MH);                                                     \
  }                                                                                          \
  static V4 void wino_out_1_##MH(const float *m, int64_t xs, const wjob *J, int64_t ty0,     \
                                 int64_t ty1, float b, float *y) {                           \
    wide_out(m, xs, J, ty0, ty1, b, y, MH);                                                  \
  }                                                                                          \
  static V4 void wino_grad_in_1_##MH(const float *gy, const wjob *J, int64_t ty0,            \
                                     int64_t ty1, float *z, int64_t xs) {                    \
    wide_grad_in(gy, J, ty0, ty1, z, xs, MH);                                                \
  }                                                                                          \
  static V4 void wino_in_2_##MH(const float *xp, const wjob *J, int64_t ty0, int64_t ty1,    \
                                float *v, int64_t xs) {                                      \
    stacked_in(xp, J, ty0, ty1, v, xs, 2, MH);                                               \
  }                                                                                          \
  static V4 void wino_in_4_##MH(const float *xp, const wjob *J, int64_t ty0, int64_t ty1,    \
                                float *v, int64_t xs) {                                      \
    stacked_in(xp, J, ty0, ty1, v, xs, 4, MH);                                               \
  }                                                                                          \
  static V4 void wino_out_2_##MH(const float *m, int64_t xs, const wjob *J, int64_t ty0,     \
                                 int64_t ty1, float b, float *y) {                           \
    stacked_out(m, xs, J, ty0, ty1, b, y, 2, MH);                                            \
  }                                                                                          \
  static V4 void wino_out_4_##MH(const float *m, int64_t xs, const wjob *J, int64_t ty0,     \
                                 int64_t ty1, float b, float *y) {                           \
    stacked_out(m, xs, J, ty0, ty1, b, y, 4, MH);                                            \
  }                                                                                          \
  static V4 void wino_grad_in_2_##MH(const float *gy, const wjob *J, int64_t ty0,            \
                                     int64_t ty1, float *z, int64_t xs) {                    \
    stacked_grad_in(gy, J, ty0, ty1, z, xs, 2, MH);                                          \
  }                                                                                          \
  static V4 void wino_grad_in_4_##MH(const float *gy, const wjob *J, int64_t ty0,            \
                                     int64_t ty1, float *z, int64_t xs) {                    \
    stacked_grad_in(gy, J, ty0, ty1, z, xs, 4, MH);                                          \
  }
WINO_INSTANCES(2)
WINO_INSTANCES(4)

/* [MH == 4][K = 1, 2, 4]: input, output and gradient transforms */
static const struct {
  wino_in_fn in;
  wino_out_fn out;
  wino_in_fn grad_in;
} WINO_FNS[2][3] = {
    {{wino_in_1_2, wino_out_1_2, wino_grad_in_1_2},
     {wino_in_2_2, wino_out_2_2, wino_grad_in_2_2},
     {wino_in_4_2, wino_out_4_2, wino_grad_in_4_2}},
    {{wino_in_1_4, wino_out_1_4, wino_grad_in_1_4},
     {wino_in_2_4, wino_out_2_4, wino_grad_in_2_4},
     {wino_in_4_4, wino_out_4_4, wino_grad_in_4_4}},
};

/* 0: the tiling by wino_tile_of's rule; 2 or 4: that one always */
static int tile_mode = 0;
int sc_wino_tile(int mode) {
  int was = tile_mode;
  tile_mode = mode == 2 || mode == 4 ? mode : 0;
  return was;
}

/* Output rows to a tile for an Ho x Wo output: 4 (F(4x2, 3x3)) where its
   products' multiply-adds, 24 per 4 x 2 block, are fewer than F(2x2,
   3x3)'s 16 per 2 x 2, the blocks cut by the last row counted whole.  For
   the weight gradient (wgrad), whose products run over the tiles, only
   with 16 tiles to a sample or more: with fewer (7 x 7) its shorter
   products were 14% slower than F(2x2, 3x3)'s (128 channels, 64 samples,
   Zen 5). */
static int wino_tile_of(int64_t Ho, int64_t Wo, int wgrad) {
  if (tile_mode) return tile_mode;
  if (wgrad && (Ho + 3) / 4 * ((Wo + 1) / 2) < 16) return 2;
  return 24 * ((Ho + 3) / 4) < 16 * ((Ho + 1) / 2) ? 4 : 2;
}

/* The transforms write (and read) 16 (24) tile positions at once, one row of
   each, vs (ms) floats apart: as multiples of 4 KB these would all fall in
   one set of the L1 cache, which holds 8 to 12, and evict each other on
   every store, so a position's stride is set one cache line past a
   multiple of 4 KB. */
static int64_t off_4k(int64_t floats) {
  return (floats + 1023) / 1024 * 1024 + 16;
}
static void wino_layout(wjob *J) {
  J->ldv = (J->nt + 15) / 16 * 16;
  J->vs = off_4k(J->C * J->ldv), J->ms = off_4k(J->O * J->ldv);
  J->sbytes = ((size_t)(J->np * (J->vs + J->ms)) * sizeof(float) + 63) & ~(size_t)63;
}

/* A unit's M is read back by the output transform after all np products:
   where V and M together outgrow the L2 cache (1 MB on Zen 5; 768 KB is
   budgeted), the output channels go in blocks of ob (a multiple of 8),
   each block's products and transform in turn, so that V and one block
   of M stay within it; not where V takes half of it or more (V would be
   read again for every block).  A product's rows do not depend on the
   rows beside them, so the bits are the same (W7t's step 1-3% faster, W3's
   level, measured in one process on a Zen 5 core). */
static int64_t wino_oblock(const wjob *J) {
  const int64_t budget = 768 * 1024 / (int64_t)sizeof(float);
  int64_t vf = J->np * J->C * J->ldv, mrow = J->np * J->ldv;
  if (vf + J->O * mrow <= budget || vf >= budget / 2) return J->O;
  int64_t ob = (budget - vf) / mrow / 8 * 8;
  return ob < 8 ? 8 : ob >= J->O ? J->O : ob;
}

/* The columns a product of n columns computes: gemm512.c's panels of 32,
   a last one of 16 where that covers the rest */
static int64_t padded_cols(int64_t n) {
  int64_t rest = n % 32;
  return n - rest + (rest == 0 ? 0 : rest <= 16 ? 16 : 32);
}

/* The forward's samples per unit, from g (those that fit): where more than
   8% of its products' columns would be padding, the group of g to 3g
   samples (at most N) with the least, the fewest on a tie.  W3's
   96 -> 32 channels at 28 x 28 (98 tiles a sample: 112 columns for 98)
   takes 3 (304 for 294): W3's step 2.3% faster in two runs, W7t's level,
   in one process on a Zen 5 core; where the padding is already small,
   larger units only cost L2 misses (W7t 1-3% slower when every shape
   searched).  A forward's outputs do not depend on the units, so neither
   do the bits. */
static int64_t wino_group(int64_t g, int64_t per, int64_t N) {
  int64_t n = g * per;
  if ((padded_cols(n) - n) * 100 <= 8 * n) return g;
  int64_t best = g, bw = (padded_cols(n) - n) * 1000 / n;
  for (int64_t k = g + 1; k <= 3 * g && k <= N; k++) {
    int64_t w = (padded_cols(k * per) - k * per) * 1000 / (k * per);
    if (w < bw) bw = w, best = k;
  }
  return best;
}

/* The forward's samples per unit at nth threads, from g: the threads take
   ceil(units / nth) units at most, so 64 samples in units of 6 (11 units)
   put 36 on one thread and 28 on the other.  A smaller group (down to g/2)
   is taken where it cuts the busiest thread's samples by more than 5%: 4
   there (32 each).  The bits do not depend on the units (wino_group). */
/* the samples of the busiest of nth threads when N go k to a unit */
static int64_t busiest(int64_t N, int64_t k, int nth) {
  return ((N + k - 1) / k + nth - 1) / nth * k;
}

static int64_t wino_balance(int64_t g, int64_t N, int nth) {
  if (nth < 2) return g;
  int64_t best = g, least = busiest(N, g, nth), bound = least * 95;
  for (int64_t k = g - 1; 2 * k >= g && k >= 1; k--) {
    int64_t l = busiest(N, k, nth);
    if (l * 100 < bound && l < least) best = k, least = l;
  }
  return best;
}

/* The tiling of an H x W image padded by ph x pw (output size, tiles) and
   its units of work.  A unit's V and M (or Z), np x (C + O) x nt floats,
   are kept within WINO_UNIT_FLOATS: whole samples when one fits (as many
   as fit), else blocks of tile rows of even size, so that one large image
   still splits across threads.  With chunk > 0 (the weight gradient's sum
   in chunks of samples), a group of samples divides the chunk, so no group
   spans two. */
static void wino_geom(wjob *J, int64_t N, int64_t C, int64_t H, int64_t W, int64_t O,
                      int64_t ph, int64_t pw, int64_t chunk) {
  J->N = N, J->C = C, J->H = H, J->W = W, J->O = O, J->ph = ph, J->pw = pw;
  J->Ho = H + 2 * ph - 2, J->Wo = W + 2 * pw - 2;
  J->m = wino_tile_of(J->Ho, J->Wo, chunk > 0), J->np = 4 * (J->m + 2);
  J->th = (J->Ho + J->m - 1) / J->m, J->tw = (J->Wo + 1) / 2;
  int64_t per = J->th * J->tw, fit = WINO_UNIT_FLOATS / (J->np * (C + O));
  if (fit < WINO_MIN_TILES) fit = WINO_MIN_TILES;
  if (per <= fit) {
    J->nb = 1, J->R = J->th, J->G = fit / per;
    if (J->G > N) J->G = N;
    if (chunk == 0) J->G = wino_balance(wino_group(J->G, per, N), N, sc_get_num_threads());
    while (chunk > 0 && chunk % J->G) J->G--;
    J->nt = J->G * per;
  } else {
    int64_t rmax = fit / J->tw < 1 ? 1 : fit / J->tw;
    J->nb = (J->th + rmax - 1) / rmax, J->R = (J->th + J->nb - 1) / J->nb, J->G = 1;
    J->nt = J->R * J->tw;
  }
  wino_layout(J);
  J->ob = wino_oblock(J);
  J->apad = sc_packed_rows(O);
  int k = J->tw <= 4 ? 2 : J->tw <= 8 ? 1 : 0; /* K = 4, 2, 1 tile rows to a vector */
  J->in = WINO_FNS[J->m == 4][k].in;
  J->out = WINO_FNS[J->m == 4][k].out;
  J->grad_in = WINO_FNS[J->m == 4][k].grad_in;
}

/* Unit u: samples n0 .. n0 + cnt - 1, tile rows ty0 .. ty1 - 1 of each. */
static void wino_unit(const wjob *J, int64_t u, int64_t *n0, int64_t *cnt, int64_t *ty0,
                      int64_t *ty1) {
  if (J->nb > 1) {
    *n0 = u / J->nb, *cnt = 1, *ty0 = u % J->nb * J->R;
    *ty1 = *ty0 + J->R < J->th ? *ty0 + J->R : J->th;
  } else {
    *n0 = u * J->G, *cnt = J->N - *n0 < J->G ? J->N - *n0 : J->G, *ty0 = 0, *ty1 = J->th;
  }
}

static int64_t wino_units(const wjob *J) {
  return J->nb > 1 ? J->N * J->nb : (J->N + J->G - 1) / J->G;
}

/* V for a unit's tiles of x into V [16][C][ldv] */
static void wino_inputs(const wjob *J, const float *x, int64_t n0, int64_t cnt, int64_t ty0,
                        int64_t ty1, float *V) {
  int64_t per = (ty1 - ty0) * J->tw, plane = J->H * J->W;
  for (int64_t s = 0; s < cnt; s++)
    for (int64_t c = 0; c < J->C; c++)
      J->in(x + (n0 + s) * J->xsn + c * plane, J, ty0, ty1, V + c * J->ldv + s * per, J->vs);
}

/* threads for n units: the pool's, at most n, at least 1 */
static int wino_threads(int64_t n) {
  int nth = sc_get_num_threads();
  if (nth > n) nth = (int)n;
  return nth < 1 ? 1 : nth;
}

static void wino_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  const wjob *J = ctx;
  float *V = (float *)(J->scratch + (size_t)tid * J->sstride);
  float *M = V + J->np * J->vs;
  int64_t oplane = J->Ho * J->Wo;
  for (int64_t u = lo; u < hi; u++) {
    int64_t n0, cnt, ty0, ty1;
    wino_unit(J, u, &n0, &cnt, &ty0, &ty1);
    int64_t per = (ty1 - ty0) * J->tw, nt = cnt * per;
    wino_inputs(J, J->x, n0, cnt, ty0, ty1, V);
    for (int64_t o0 = 0; o0 < J->O; o0 += J->ob) { /* ob output channels at a time */
      int64_t on = J->O - o0 < J->ob ? J->O - o0 : J->ob;
      for (int xi = 0; xi < J->np; xi++) {
        sc_gemm_extra ex = {.binplace = 1,
                            .apre = J->upk ? J->upk + xi * J->apad * J->C : NULL,
                            .apad = J->apad, .arow = o0};
        (void)sc_gemm_ex(SC_FLOAT32, 0, 0, on, nt, J->C, J->u + (xi * J->O + o0) * J->C, J->C,
                         V + xi * J->vs, J->ldv, 0.0, M + xi * J->ms + o0 * J->ldv, J->ldv,
                         &ex);
      }
      for (int64_t s = 0; s < cnt; s++)
        for (int64_t o = o0; o < o0 + on; o++)
          J->out(M + o * J->ldv + s * per, J->ms, J, ty0, ty1, J->bias ? J->bias[o] : 0.0f,
                 J->y + ((n0 + s) * J->O + o) * oplane);
    }
  }
}

/* F(4, 3)'s G (Lavin & Gray, section 4.2: points 0, 1, -1, 2, -2 and
   infinity), for the weight gradient's last transform (in double); its
   B^T, A^T and A are written out in vbt, vat and va, and wino_weights
   applies G in float, term by term. */
static const double G4[6][3] = {{1.0 / 4, 0, 0},
                                {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                {0, 0, 1}};

/* U = G k G^T of n <= 16 3x3 kernels k (9 floats each, end to end) into
   r[xi][l] for kernel l, xi = 4i + j (np = 4(m + 2) positions), in float:
   down the rows F(2, 3)'s G (the halves are exact) or F(4, 3)'s (k0/4,
   -(k0 + k1 + k2)/6, -(k0 - k1 + k2)/6, (k0 + 2 k1 + 4 k2)/24,
   (k0 - 2 k1 + 4 k2)/24, k2), across F(2, 3)'s.  A kernel to a vector
   lane; the multiplications by 2 and 4 are exact, so a fused multiply-add
   rounds them as the separate operations do. */
static V4 void kernel_u16(const float *k, int64_t n, int m, float r[24][16]) {
  float a[9][16], t[6][3][16];
  for (int e = 0; e < 9; e++)
    for (int l = 0; l < 16; l++) a[e][l] = l < n ? k[l * 9 + e] : 0.0f;
  for (int j = 0; j < 3; j++)
    for (int l = 0; l < 16; l++) {
      float a0 = a[j][l], a1 = a[3 + j][l], a2 = a[6 + j][l];
      if (m == 4) {
        float s02 = a0 + a2, f02 = a0 + 4.0f * a2;
        t[0][j][l] = 0.25f * a0;
        t[1][j][l] = (s02 + a1) * (-1.0f / 6.0f);
        t[2][j][l] = (s02 - a1) * (-1.0f / 6.0f);
        t[3][j][l] = (f02 + 2.0f * a1) * (1.0f / 24.0f);
        t[4][j][l] = (f02 - 2.0f * a1) * (1.0f / 24.0f);
        t[5][j][l] = a2;
      } else {
        t[0][j][l] = a0;
        t[1][j][l] = 0.5f * (a0 + a1 + a2);
        t[2][j][l] = 0.5f * (a0 - a1 + a2);
        t[3][j][l] = a2;
      }
    }
  for (int i = 0; i < m + 2; i++)
    for (int l = 0; l < 16; l++) {
      r[4 * i + 0][l] = t[i][0][l];
      r[4 * i + 1][l] = 0.5f * (t[i][0][l] + t[i][1][l] + t[i][2][l]);
      r[4 * i + 2][l] = 0.5f * (t[i][0][l] - t[i][1][l] + t[i][2][l]);
      r[4 * i + 3][l] = t[i][2][l];
    }
}

/* U [np][O][C] from g [O][C][3][3] for output channels o0 .. o1 - 1, by
   kernel_u16: 16 input channels at a time into tmp, then each position's
   16 as one run (np positions O x C floats apart, often a multiple of 4 KB,
   one cache set, stored one float at a time would evict each other). */
static void wino_weights(const float *g, int64_t O, int64_t C, int m, float *u, int64_t o0,
                         int64_t o1) {
  int np = 4 * (m + 2);
  float tmp[24][16];
  for (int64_t o = o0; o < o1; o++)
    for (int64_t c0 = 0; c0 < C; c0 += 16) {
      int64_t nc = C - c0 < 16 ? C - c0 : 16;
      kernel_u16(g + (o * C + c0) * 9, nc, m, tmp);
      for (int xi = 0; xi < np; xi++)
        memcpy(u + (xi * O + o) * C + c0, tmp[xi], (size_t)nc * sizeof(float));
    }
}

/* dW = G^T dU G of one pair's np positions u[xi] into k [3][3]: F(2x2,
   3x3) down the rows then across, in float, rows (u0 + (u1 + u2)/2,
   (u1 - u2)/2, (u1 + u2)/2 + u3); F(4x2, 3x3) across as that, then down
   by G4 in double. */
static void kernel_dw(const float *u, int m, float *k) {
  if (m == 4) {
    double h[6][3];
    for (int a = 0; a < 6; a++) {
      float u1 = u[4 * a + 1], u2 = u[4 * a + 2], p = 0.5f * (u1 + u2);
      h[a][0] = u[4 * a] + p;
      h[a][1] = 0.5f * (u1 - u2);
      h[a][2] = p + u[4 * a + 3];
    }
    for (int r = 0; r < 3; r++)
      for (int c = 0; c < 3; c++) {
        double acc = 0;
        for (int a = 0; a < 6; a++) acc += G4[a][r] * h[a][c];
        k[r * 3 + c] = (float)acc;
      }
    return;
  }
  float t[3][4];
  for (int j = 0; j < 4; j++) {
    float p = 0.5f * (u[4 + j] + u[8 + j]);
    t[0][j] = u[j] + p;
    t[1][j] = 0.5f * (u[4 + j] - u[8 + j]);
    t[2][j] = p + u[12 + j];
  }
  for (int a = 0; a < 3; a++) {
    float p = 0.5f * (t[a][1] + t[a][2]);
    k[a * 3 + 0] = t[a][0] + p;
    k[a * 3 + 1] = 0.5f * (t[a][1] - t[a][2]);
    k[a * 3 + 2] = p + t[a][3];
  }
}

/* The forward's kernels, U and its packed panels, split across threads:
   items 0 .. O-1 are wino_weights' output channels, then (a second call)
   items 0 .. np-1 its positions' packings.  Each item's numbers are the
   same whichever thread makes them. */
typedef struct {
  const float *g;
  float *u, *upk;
  int64_t O, C, apad;
  int m;
} uprep;

static void uprep_weights(void *ctx, int64_t lo, int64_t hi, int tid) {
  (void)tid;
  uprep *P = ctx;
  wino_weights(P->g, P->O, P->C, P->m, P->u, lo, hi);
}

/* (sc_pack_a_all fails only where gemm512.c is off, which the caller checks) */
static void uprep_pack(void *ctx, int64_t lo, int64_t hi, int tid) {
  (void)tid;
  uprep *P = ctx;
  for (int64_t xi = lo; xi < hi; xi++)
    (void)sc_pack_a_all(0, P->u + xi * P->O * P->C, P->C, P->O, P->C, P->upk + xi * P->apad * P->C);
}

int sc_wino_conv3x3_f32(const float *x, int64_t xsn, int64_t N, int64_t C, int64_t H,
                        int64_t W, const float *w, int64_t O, const float *bias, int64_t ph,
                        int64_t pw, float *y) {
  if (N <= 0) return 0; /* an empty batch: nothing to write */
  wjob J = {.x = x, .xsn = xsn, .bias = bias, .y = y};
  wino_geom(&J, N, C, H, W, O, ph, pw, 0);
  int64_t units = wino_units(&J);
  int nth = wino_threads(units);
  size_t ubytes = (size_t)(J.np * O * C) * sizeof(float);
  size_t pkbytes = (size_t)(J.np * J.apad * C) * sizeof(float);
  float *u = sc_aligned_alloc(ubytes);
  float *upk = u ? sc_aligned_alloc(pkbytes) : NULL;
  J.sstride = sc_thread_stride(J.sbytes, nth);
  J.scratch = upk ? sc_aligned_alloc(J.sstride * (size_t)nth) : NULL;
  if (!J.scratch) {
    if (upk) sc_aligned_free(upk, pkbytes);
    if (u) sc_aligned_free(u, ubytes);
    return -1;
  }
  uprep P = {w, u, upk, O, C, J.apad, (int)J.m};
  sc_parallel_for(sc_threads_for(O, O * J.np * C, SC_PAR_GRAIN), O, uprep_weights, &P);
  if (sc_gemm_own_active())
    sc_parallel_for(sc_threads_for(J.np, J.np * O * C, SC_PAR_GRAIN), J.np, uprep_pack, &P);
  else { /* the products pack U themselves then */
    sc_aligned_free(upk, pkbytes);
    upk = NULL;
  }
  J.u = u, J.upk = upk;
  sc_parallel_for(nth, units, wino_part, &J);
  sc_aligned_free(J.scratch, J.sstride * (size_t)nth);
  if (upk) sc_aligned_free(upk, pkbytes);
  sc_aligned_free(u, ubytes);
  return 0;
}

/* ---- the weight gradient ---------------------------------------------------

   dW = G^T [sum over tiles of (A dY A^T) ⊙ V] G for each (o, c), the
   transpose of the forward (dL/dU = A dY A^T ⊙ V, dL/dg = G^T dL/dU G):
   per tile position xi, dU_xi [O, C] = Z_xi [O, tiles] @ V_xi^T, 16
   products whose inner dimension is the tiles.  The sum over samples runs
   in sc_conv_chunk's chunks, as conv.c's does; within a chunk, unit by unit (wino_geom) in sample order, each
   unit's products added to the chunk's partial; the partials in chunk order; then
   the kernel transform once.  Threads take whole chunks, so the bits do
   not depend on the thread count. */
typedef struct {
  wjob J;
  const float *gy;
  int64_t gsn; /* gy's sample stride in floats */
  float *part; /* nch partials of 16 x O x C (16 x C x O when ct) */
  int64_t csz;
  /* dU^T = V Z^T (wgrad_cost): each sum is the same chain of the same
     products as in dU = Z V^T, so the same bits either way */
  int ct;
} wgjob;

/* A product of m x n outputs over the tiles, its second operand (n rows of
   tiles) packed transposed: the kernels' work, m in blocks of 8 rows and n
   in panels of 32 (a last one of 16 when it fits), plus the packing, per
   tile, at about 13 outputs' worth per packed row (fitted on W3's and
   W7t's shapes on a Zen 5 core).  The orientation with the smaller cost
   is taken. */
static int64_t wgrad_cost(int64_t m, int64_t n) {
  return (m + 7) / 8 * 8 * padded_cols(n) + 13 * n;
}

/* -1: the orientation of smaller wgrad_cost (the default); 0: dU = Z V^T;
   1: dU^T = V Z^T */
static int ct_mode = -1;
int sc_wino_wgrad_transposed(int mode) {
  int was = ct_mode;
  ct_mode = mode < 0 ? -1 : mode > 0;
  return was;
}

static void wino_wgrad_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  const wgjob *K = ctx;
  const wjob *J = &K->J;
  float *V = (float *)(J->scratch + (size_t)tid * J->sstride);
  float *Z = V + J->np * J->vs;
  int64_t oplane = J->Ho * J->Wo, OC = J->O * J->C;
  for (int64_t ch = lo; ch < hi; ch++) {
    float *acc = K->part + ch * J->np * OC;
    int64_t end = (ch + 1) * K->csz < J->N ? (ch + 1) * K->csz : J->N;
    /* the chunk's units in order (a chunk is a whole number of groups) */
    int64_t u0 = J->nb > 1 ? ch * K->csz * J->nb : ch * K->csz / J->G;
    int64_t u1 = J->nb > 1 ? end * J->nb : (end + J->G - 1) / J->G;
    for (int64_t u = u0; u < u1; u++) {
      int64_t n0, cnt, ty0, ty1;
      wino_unit(J, u, &n0, &cnt, &ty0, &ty1);
      int64_t per = (ty1 - ty0) * J->tw, nt = cnt * per;
      wino_inputs(J, J->x, n0, cnt, ty0, ty1, V);
      for (int64_t s = 0; s < cnt; s++)
        for (int64_t o = 0; o < J->O; o++)
          J->grad_in(K->gy + (n0 + s) * K->gsn + o * oplane, J, ty0, ty1,
                     Z + o * J->ldv + s * per, J->ms);
      for (int xi = 0; xi < J->np; xi++) {
        if (K->ct)
          (void)sc_gemm_ex(SC_FLOAT32, 0, 1, J->C, J->O, nt, V + xi * J->vs, J->ldv,
                           Z + xi * J->ms, J->ldv, u == u0 ? 0.0 : 1.0, acc + xi * OC,
                           J->O, NULL);
        else
          (void)sc_gemm_ex(SC_FLOAT32, 0, 1, J->O, J->C, nt, Z + xi * J->ms, J->ldv,
                           V + xi * J->vs, J->ldv, u == u0 ? 0.0 : 1.0, acc + xi * OC,
                           J->C, NULL);
      }
    }
  }
}

/* The weight gradient's last stage, split across threads in two passes:
   the chunks' partials summed into the first, in chunk order, over ranges
   of 4096 elements (sum_part; streaming, so the scattered reads after it
   hit a dU the size of one partial); then kernel_dw of each (o, c) pair,
   16 pairs at a time, each position's 16 values read as one run (see
   wino_weights) (dw_part). */
typedef struct {
  float *part;
  float *dw;
  int64_t nch, np, OC, C, O;
  int ct, m;
} dwjob;

#define DW_SUM_BLOCK 4096

static void sum_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  (void)tid;
  const dwjob *D = ctx;
  int64_t span = D->np * D->OC;
  for (int64_t b = lo; b < hi; b++) {
    int64_t i0 = b * DW_SUM_BLOCK, i1 = i0 + DW_SUM_BLOCK < span ? i0 + DW_SUM_BLOCK : span;
    float *dU = D->part;
    for (int64_t ch = 1; ch < D->nch; ch++) {
      const float *p = D->part + ch * span;
      for (int64_t i = i0; i < i1; i++) dU[i] += p[i];
    }
  }
}

static void dw_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  (void)tid;
  const dwjob *D = ctx;
  int64_t OC = D->OC;
  const float *dU = D->part;
  float tmp[24][16], r[24];
  for (int64_t b = lo; b < hi; b++) {
    int64_t i0 = 16 * b, n = OC - i0 < 16 ? OC - i0 : 16;
    for (int64_t xi = 0; xi < D->np; xi++)
      for (int64_t l = 0; l < n; l++) {
        int64_t i = i0 + l, at = D->ct ? i % D->C * D->O + i / D->C : i; /* (o, c) in dU */
        tmp[xi][l] = dU[xi * OC + at];
      }
    for (int64_t l = 0; l < n; l++) {
      for (int64_t xi = 0; xi < D->np; xi++) r[xi] = tmp[xi][l];
      kernel_dw(r, D->m, D->dw + (i0 + l) * 9);
    }
  }
}

int sc_wino_conv3x3_weight_f32(const float *x, int64_t xsn, const float *gy, int64_t gsn,
                               int64_t N, int64_t C, int64_t H, int64_t W, int64_t O,
                               int64_t ph, int64_t pw, float *dw) {
  if (N <= 0) { /* no samples: the gradient is zero */
    memset(dw, 0, (size_t)(O * C * 9) * sizeof(float));
    return 0;
  }
  wgjob K = {.gy = gy, .gsn = gsn};
  wjob *J = &K.J;
  J->x = x;
  J->xsn = xsn;
  K.csz = sc_conv_chunk(N);
  K.ct = ct_mode < 0 ? wgrad_cost(C, O) < wgrad_cost(O, C) : ct_mode;
  wino_geom(J, N, C, H, W, O, ph, pw, K.csz);
  int64_t nch = (N + K.csz - 1) / K.csz, OC = O * C;
  int nth = wino_threads(nch);
  size_t pbytes = (size_t)(nch * J->np * OC) * sizeof(float);
  K.part = sc_aligned_alloc(pbytes);
  J->sstride = sc_thread_stride(J->sbytes, nth);
  J->scratch = K.part ? sc_aligned_alloc(J->sstride * (size_t)nth) : NULL;
  if (!J->scratch) {
    if (K.part) sc_aligned_free(K.part, pbytes);
    return -1;
  }
  sc_parallel_for(nth, nch, wino_wgrad_part, &K);
  sc_aligned_free(J->scratch, J->sstride * (size_t)nth);
  int64_t np = J->np, nblk = (OC + 15) / 16, nsum = (np * OC + DW_SUM_BLOCK - 1) / DW_SUM_BLOCK;
  dwjob D = {K.part, dw, nch, np, OC, C, O, K.ct, (int)J->m};
  if (nch > 1)
    sc_parallel_for(sc_threads_for(nsum, np * OC * nch, SC_PAR_GRAIN), nsum, sum_part, &D);
  /* kernel_dw weighs about 8 floats' streaming a value */
  sc_parallel_for(sc_threads_for(nblk, np * OC * 8, SC_PAR_GRAIN), nblk, dw_part, &D);
  sc_aligned_free(K.part, pbytes);
  return 0;
}

#else

int sc_wino_wgrad_transposed(int mode) {
  (void)mode;
  return -1;
}

int sc_wino_tile(int mode) {
  (void)mode;
  return 0;
}

int sc_wino_conv3x3_f32(const float *x, int64_t xsn, int64_t N, int64_t C, int64_t H,
                        int64_t W, const float *w, int64_t O, const float *bias, int64_t ph,
                        int64_t pw, float *y) {
  (void)xsn, (void)x, (void)N, (void)C, (void)H, (void)W, (void)w, (void)O, (void)bias, (void)ph;
  (void)pw, (void)y;
  return -1;
}

int sc_wino_conv3x3_weight_f32(const float *x, int64_t xsn, const float *gy, int64_t gsn,
                               int64_t N, int64_t C, int64_t H, int64_t W, int64_t O,
                               int64_t ph, int64_t pw, float *dw) {
  (void)xsn, (void)gsn, (void)x, (void)gy, (void)N, (void)C, (void)H, (void)W, (void)O, (void)ph;
  (void)pw, (void)dw;
  return -1;
}

#endif
