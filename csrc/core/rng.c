/*
 * scorch core: random numbers from a counter-based generator.
 *
 * Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
 * 3", SC 2011): block c of a call is philox(key = seed, counter = offset + c),
 * so element i depends only on (seed, offset, i) and any thread may compute
 * it.  Each block yields two values; a call consumes ceil(n / 2) blocks.
 */
#include "internal.h"

#include <math.h>
#include "pool.h"
#include "vmath.h"

static sc_generator global_gen = {0x5c0c4ULL, 0};

sc_generator *sc_default_generator(void) { return &global_gen; }

void sc_generator_seed(sc_generator *g, uint64_t seed) {
  g->seed = seed;
  g->offset = 0;
}

/* Philox4x32-10's ten rounds for blocks ctr0 .. ctr0 + PHILOX_LANES - 1
   (counter = the block's number, key = the seed): word j of block ctr0 + l
   in w[j][l].  Written lane by lane so the compiler makes vector code of
   it (a 32 x 32 -> 64-bit multiply per lane); integer arithmetic, so the
   words do not depend on the vector width. */
#define PHILOX_LANES 16
SC_DISPATCH static void philox_lanes(uint64_t ctr0, uint64_t key,
                                     uint32_t w[4][PHILOX_LANES]) {
  uint32_t c0[PHILOX_LANES], c1[PHILOX_LANES], c2[PHILOX_LANES], c3[PHILOX_LANES];
  for (int l = 0; l < PHILOX_LANES; l++) {
    uint64_t ctr = ctr0 + (uint64_t)l;
    c0[l] = (uint32_t)ctr;
    c1[l] = (uint32_t)(ctr >> 32);
    c2[l] = 0;
    c3[l] = 0;
  }
  uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
  for (int r = 0; r < 10; r++) {
    for (int l = 0; l < PHILOX_LANES; l++) {
      uint64_t p0 = (uint64_t)0xD2511F53u * c0[l], p1 = (uint64_t)0xCD9E8D57u * c2[l];
      uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[l] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3[l] ^ k1;
      c1[l] = (uint32_t)p1;
      c3[l] = (uint32_t)p0;
      c0[l] = n0;
      c2[l] = n2;
    }
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  for (int l = 0; l < PHILOX_LANES; l++) {
    w[0][l] = c0[l];
    w[1][l] = c1[l];
    w[2][l] = c2[l];
    w[3][l] = c3[l];
  }
}

/* 53-bit uniform in [0, 1) from two words. */
static inline double u53(uint32_t hi, uint32_t lo) {
  return (double)(((uint64_t)hi << 21) ^ (lo >> 11)) * 0x1p-53;
}

typedef enum { DIST_UNIFORM, DIST_NORMAL } dist_kind;

/* Both values of a block from its words w: v[0] and v[1] (Box-Muller's
   cosine and sine halves share the block's one log and square root). */
static inline void values2(dist_kind k, const uint32_t w[4], double a, double b, int single,
                           double v[2]) {
  if (k == DIST_UNIFORM) {
    if (single) { /* 24 bits, so the float never rounds up to 1 */
      v[0] = a + (b - a) * (double)(w[0] >> 8) * 0x1p-24;
      v[1] = a + (b - a) * (double)(w[2] >> 8) * 0x1p-24;
    } else {
      v[0] = a + (b - a) * u53(w[0], w[1]);
      v[1] = a + (b - a) * u53(w[2], w[3]);
    }
    return;
  }
  /* Box-Muller: u1 in (0, 1] keeps the log finite */
  double u1 = 1.0 - u53(w[0], w[1]), u2 = u53(w[2], w[3]);
  double r = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
  v[0] = a + b * (r * cos(th));
  v[1] = a + b * (r * sin(th));
}

/* Box-Muller in vector lanes, for float32 N(0, 1) fills.  libm's log,
   cos and sin cost about 40 ns a block and do not vectorise; the lanes
   below compute the same double r cos th and r sin th with a log and a
   sincos of our own, to within a few double ulps of libm's.  A value is
   kept only if every double within BM_TOL of it rounds to the same float
   (the interval's two ends round to the same bits), so it is exactly the
   float values2 would give; the rest (about one in 10^5) are redone by
   values2.  float32 randn keeps its bits and runs about ten times faster. */
/* relative to r: the lanes' error is below 2^-50 r (measured: r to 2^-51.7
   relative, cos and sin to 2^-53 absolute) */
#define BM_TOL 0x1p-44

static int bm_lanes_on = 1;

int sc_randn_lanes(int on) {
  int prev = bm_lanes_on;
  bm_lanes_on = on != 0;
  return prev;
}

/* log u for u in [2^-53, 1]: u = 2^k m with m in [sqrt 1/2, sqrt 2), then
   log m = 2 atanh(s) = 2 (s + s^3/3 + ... + s^19/19), s = (m - 1)/(m + 1),
   |s| <= 0.172 (the series' tail is below 2^-51 of the sum); k ln 2 in
   two parts, the first with 32 bits so k times it is exact. */
static inline double bm_log(double u) {
  uint64_t bits;
  memcpy(&bits, &u, sizeof bits);
  double k = (double)((int64_t)(bits >> 52) - 1023);
  bits = (bits & 0x000FFFFFFFFFFFFFULL) | 0x3FF0000000000000ULL;
  double m;
  memcpy(&m, &bits, sizeof m);
  int big = m > 1.4142135623730951;
  m = big ? 0.5 * m : m;
  k = big ? k + 1.0 : k;
  double f = m - 1.0, s = f / (2.0 + f), z = s * s;
  double p = 2.0 / 19;
  p = p * z + 2.0 / 17;
  p = p * z + 2.0 / 15;
  p = p * z + 2.0 / 13;
  p = p * z + 2.0 / 11;
  p = p * z + 2.0 / 9;
  p = p * z + 2.0 / 7;
  p = p * z + 2.0 / 5;
  p = p * z + 2.0 / 3;
  return k * 0x1.62e42fee00000p-1 + (k * 0x1.a39ef35793c76p-33 + (2.0 * s + s * z * p));
}

/* cos th and sin th for th in [0, 2 pi): th = n pi/2 + y, |y| <= pi/4
   (pi/2 in two parts, the first with 33 bits), then Taylor series to y^16
   and y^15 (tails below 1e-16) and the quadrant's swap and signs. */
static inline void bm_sincos(double th, double *c, double *s) {
  double n = (th * 0x1.45f306dc9c883p-1 + 6755399441055744.0) - 6755399441055744.0;
  double y = (th - n * 0x1.921fb54400000p+0) - n * 0x1.0b4611a626331p-34, z = y * y;
  double sp = -1.0 / 1307674368000.0; /* -1/15! */
  sp = sp * z + 1.0 / 6227020800.0;
  sp = sp * z - 1.0 / 39916800.0;
  sp = sp * z + 1.0 / 362880.0;
  sp = sp * z - 1.0 / 5040.0;
  sp = sp * z + 1.0 / 120.0;
  sp = sp * z - 1.0 / 6.0;
  double sy = y + y * z * sp;
  double cp = 1.0 / 20922789888000.0; /* 1/16! */
  cp = cp * z - 1.0 / 87178291200.0;
  cp = cp * z + 1.0 / 479001600.0;
  cp = cp * z - 1.0 / 3628800.0;
  cp = cp * z + 1.0 / 40320.0;
  cp = cp * z - 1.0 / 720.0;
  cp = cp * z + 1.0 / 24.0;
  cp = cp * z - 0.5;
  double cy = 1.0 + z * cp;
  int q = (int)n & 3;
  double cq = (q & 1) ? sy : cy, sq = (q & 1) ? cy : sy;
  *c = (q == 1 || q == 2) ? -cq : cq;
  *s = (q >= 2) ? -sq : sq;
}

/* The float N(0, 1) values of PHILOX_LANES blocks from their words: v[h][l]
   is value h of block l, and ok[l] says both are exactly values2's. */
SC_DISPATCH static void normal_lanes(uint32_t w[4][PHILOX_LANES], float v[2][PHILOX_LANES],
                                     int32_t ok[PHILOX_LANES]) {
  for (int l = 0; l < PHILOX_LANES; l++) {
    double u1 = 1.0 - u53(w[0][l], w[1][l]), u2 = u53(w[2][l], w[3][l]);
    double r = sqrt(-2.0 * bm_log(u1)), c, s;
    bm_sincos(6.283185307179586 * u2, &c, &s);
    double x[2] = {r * c, r * s}, e = r * BM_TOL + 0x1p-1022;
    int32_t same = 1;
    for (int h = 0; h < 2; h++) {
      float lo = (float)(x[h] - e), hi = (float)(x[h] + e);
      int32_t blo, bhi;
      memcpy(&blo, &lo, sizeof blo);
      memcpy(&bhi, &hi, sizeof bhi);
      same &= blo == bhi;
      v[h][l] = lo;
    }
    ok[l] = same;
  }
}

typedef struct {
  void *p;
  int single;
  dist_kind k;
  uint64_t key, base;
  double a, b;
} fill_job;

/* elements lo..hi: element i is value i & 1 of block base + i / 2, so a
   range that starts or ends inside a block takes just its half; the
   blocks' words come PHILOX_LANES blocks at a time */
static void fill_part(void *ctx, int64_t lo, int64_t hi, int tid) {
  (void)tid;
  const fill_job *j = ctx;
  uint32_t lanes[4][PHILOX_LANES];
  float fv[2][PHILOX_LANES];
  int32_t ok[PHILOX_LANES];
  /* the lanes give N(0, 1) floats: a + b x with other a, b would round twice */
  int fast = j->k == DIST_NORMAL && j->single && j->a == 0.0 && j->b == 1.0 && bm_lanes_on;
  int64_t b0 = lo / 2, b1 = (hi + 1) / 2; /* blocks b0 .. b1 - 1 */
  for (int64_t bs = b0; bs < b1; bs += PHILOX_LANES) {
    int64_t nb = b1 - bs < PHILOX_LANES ? b1 - bs : PHILOX_LANES;
    philox_lanes(j->base + (uint64_t)bs, j->key, lanes);
    if (fast) normal_lanes(lanes, fv, ok);
    for (int64_t l = 0; l < nb; l++) {
      uint32_t w[4] = {lanes[0][l], lanes[1][l], lanes[2][l], lanes[3][l]};
      double v[2];
      if (fast && ok[l]) {
        v[0] = fv[0][l];
        v[1] = fv[1][l];
      } else {
        values2(j->k, w, j->a, j->b, j->single, v);
      }
      for (int h = 0; h < 2; h++) {
        int64_t e = 2 * (bs + l) + h;
        if (e < lo || e >= hi) continue;
        if (j->single)
          ((float *)j->p)[e] = (float)v[h];
        else
          ((double *)j->p)[e] = v[h];
      }
    }
  }
}

/* Elements before a fill is split across threads.  A normal costs a log,
   a square root and a sine or cosine (about 15 ns here), so a few thousand
   of them already outweigh waking a thread: a DDPM step's noise for 10,000
   2-D points (20,000 normals) was a serial fifth of the step at 2 threads. */
#define NORMAL_GRAIN 4096

/* Fills contiguous t from generator g and advances it.  Element i's value
   depends on (seed, offset, i) only, so the split does not matter. */
static void fill(sc_generator *g, sc_tensor *t, dist_kind k, double a,
                 double b) {
  int64_t n = t->numel;
  fill_job j = {sc_data(t), t->dtype == SC_FLOAT32, k, g->seed, g->offset, a, b};
  int64_t grain = k == DIST_NORMAL ? NORMAL_GRAIN : SC_PAR_GRAIN;
  sc_parallel_for(n >= grain ? sc_get_num_threads() : 1, n, fill_part, &j);
  g->offset += (uint64_t)(n + 1) / 2;
}

static sc_tensor *make(sc_generator *g, int ndim, const int64_t *shape,
                       sc_dtype dt, dist_kind k, double a, double b) {
  sc_tensor *t = sc_empty(ndim, shape, dt);
  if (t) fill(g ? g : &global_gen, t, k, a, b);
  return t;
}

sc_tensor *sc_rand(sc_generator *g, int ndim, const int64_t *shape, sc_dtype dt) {
  return make(g, ndim, shape, dt, DIST_UNIFORM, 0, 1);
}

sc_tensor *sc_randn(sc_generator *g, int ndim, const int64_t *shape, sc_dtype dt) {
  return make(g, ndim, shape, dt, DIST_NORMAL, 0, 1);
}

sc_tensor *sc_randint(sc_generator *g, int64_t lo, int64_t hi, int ndim,
                      const int64_t *shape, sc_dtype dt) {
  if (hi <= lo) {
    sc_set_error("randint: empty range [%lld, %lld)", (long long)lo, (long long)hi);
    return NULL;
  }
  sc_tensor *t = sc_empty(ndim, shape, SC_FLOAT64);
  if (!t) return NULL;
  fill(g ? g : &global_gen, t, DIST_UNIFORM, 0, 1);
  double *p = sc_data(t), span = (double)(hi - lo);
  for (int64_t i = 0; i < t->numel; i++) {
    double v = floor(p[i] * span);
    p[i] = (double)lo + (v < span ? v : span - 1);
  }
  if (dt == SC_FLOAT64) return t;
  sc_tensor *f = sc_to_dtype(t, dt);
  sc_release(t);
  return f;
}

/* In-place fills for initialisers (through a temporary if strided). */
static int fill_(sc_generator *g, sc_tensor *t, dist_kind k, double a, double b) {
  sc_tensor *tmp = make(g, t->ndim, t->shape, t->dtype, k, a, b);
  if (!tmp) return -1;
  int rc = sc_copy_(t, tmp);
  sc_release(tmp);
  return rc;
}

int sc_uniform_(sc_generator *g, sc_tensor *t, double lo, double hi) {
  return fill_(g, t, DIST_UNIFORM, lo, hi);
}

int sc_normal_(sc_generator *g, sc_tensor *t, double mean, double std) {
  return fill_(g, t, DIST_NORMAL, mean, std);
}
