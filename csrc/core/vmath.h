/*
 * scorch core: float32 exp and tanh written so loops over them vectorise
 * (no calls, no branches).  libm's scalar expf/tanhf cost ~15-100 cycles an
 * element and dominated every SiLU and sigmoid.
 *
 * exp: x = n ln2 + r with |r| <= ln2/2 (Cody-Waite split of ln2), e^r by a
 * degree-6 Taylor/minimax polynomial, 2^n by building the exponent bits.
 * Max error about 2 ulp on [-87, 88.7] (tanh about 4 ulp); below -87.3 it
 * returns 0 (no denormals), above 88.72 +inf; NaN propagates.
 */
#ifndef SC_VMATH_H
#define SC_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* e^x = 2^n e^r for a clamped, finite x: returns e^r and sets *n */
static inline float sc_vexp_reduced(float x, float *n) {
  /* round to nearest by adding 1.5 * 2^23 (a libm call would stop
     vectorisation); exact for |x log2 e| < 2^22 */
  *n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - *n * 0.693359375f;  /* ln2 high part, exact in float */
  r = r - *n * -2.12194440e-4f;      /* ln2 low part */
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  return p * r * r + r + 1.0f;
}

static inline float sc_vexpf(float x) {
  const float hi = 88.7228f, lo = -87.3365f;
  float xc = x > hi ? hi : x;
  xc = xc >= lo ? xc : lo; /* NaN too: (int32_t)NaN below would be undefined */
  float n, p = sc_vexp_reduced(xc, &n);
  /* 2^n as two factors so n = 128 and n = -126 stay representable */
  int32_t n1 = (int32_t)n / 2, n2 = (int32_t)n - n1;
  int32_t e1 = (n1 + 127) << 23, e2 = (n2 + 127) << 23;
  float s1, s2;
  memcpy(&s1, &e1, sizeof s1);
  memcpy(&s2, &e2, sizeof s2);
  float y = p * s1 * s2;
  y = x > hi ? __builtin_inff() : y;
  y = x < lo ? 0.0f : y;
  return x != x ? x : y;
}

/* e^t for t <= 0 only (the sigmoid's case): one exponent factor, no
   overflow side, inputs below -87.3 clamped (e^t ~ 1e-38 there); about half
   the work of sc_vexpf. */
static inline float sc_vexpnegf(float t) {
  const float lo = -87.3365f;
  t = t >= lo ? t : lo; /* NaN too: the cast below would be undefined */
  float n, p = sc_vexp_reduced(t, &n);
  int32_t e = ((int32_t)n + 127) << 23; /* n >= -126: a normal number */
  float s;
  memcpy(&s, &e, sizeof s);
  return p * s;
}

/* sigmoid from e = e^-|x| in (0, 1]: 1/(1+e) for x >= 0 and e/(1+e) below,
   so neither side overflows or cancels; NaN gives NaN. */
static inline float sc_vsigmoidf(float x) {
  float ax = x < 0 ? -x : x;
  float e = sc_vexpnegf(-ax);
  float r = 1.0f / (1.0f + e);
  float s = x >= 0 ? r : e * r;
  return x != x ? x : s;
}
/* float64 sigmoid and softplus stay on libm (the op kernels, the fused
   losses and silu' use these, so they agree to the bit) */
static inline double sc_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static inline double sc_softplus(double x) { return x > 20 ? x : log1p(exp(x)); }

/* silu'(x) in float64 (float32: sc_silu_gradf below) */
static inline double sc_silu_grad(double x) {
  double s = sc_sigmoid(x);
  return s * (1.0 + x * (1.0 - s));
}

/* e^-|x| for the SiLU and its derivative, written for the fewest vector
   instructions: |x| capped at 86 (beyond, e is taken as 0), n = round(-|x|
   log2 e) read straight from the bits of the rounding sum and added into
   the exponent of the polynomial, a degree-5 near-minimax polynomial for
   e^r on |r| <= ln2/2 (relative error 7.5e-8, fitted here).  NaN gives 0:
   the callers let it through their final product with x. */
static inline float sc_vexpnegabsf(float x) {
  /* t = min(|x|, 86) on the bits (one integer min; NaN becomes 86) */
  uint32_t tb;
  memcpy(&tb, &x, sizeof tb);
  tb &= 0x7fffffffu;
  uint32_t keep = tb < 0x42ac0000u ? ~0u : 0u; /* |x| < 86.0f */
  tb = tb < 0x42ac0000u ? tb : 0x42ac0000u;
  float t;
  memcpy(&t, &tb, sizeof t);
  float z = t * -1.44269504088896341f + 12582912.0f; /* 1.5 2^23 + n */
  float n = z - 12582912.0f;
  float r = n * -0.693359375f - t; /* -t - n ln2, ln2 in two parts */
  r = n * 2.12194440e-4f + r;
  float p = 8.297651075e-3f;
  p = p * r + 4.191538319e-2f;
  p = p * r + 1.666757464e-1f;
  p = p * r + 4.999889433e-1f;
  p = p * r + 9.999997020e-1f;
  p = p * r + 1.000000119f;
  uint32_t zb, pb;
  memcpy(&zb, &z, sizeof zb);
  memcpy(&pb, &p, sizeof pb);
  pb += zb << 23; /* the low bits of z are n: p 2^n, n >= -125 */
  pb &= keep;     /* e^-|x| = 0 from |x| = 86 on, as the flushing exp did */
  float e;
  memcpy(&e, &pb, sizeof e);
  return e;
}

/* silu(x) = x sigmoid(x) = x / (1 + e^-x), the activation of every model
   here: with e = e^-|x| and q = 1 / (1 + e), sigmoid(x) is q for x >= 0
   and e q below, so neither side overflows.  A NaN input comes through
   the final product. */
static inline float sc_vsiluf(float x) {
  float e = sc_vexpnegabsf(x);
  float q = 1.0f / (1.0f + e);
  return x * (x < 0 ? e * q : q);
}

/* silu'(x) = s (1 + x (1 - s)) = s + x s (1 - s), s = sigmoid(x), and
   s (1 - s) = e q^2 on both sides of 0 (e, q as for sc_vsiluf): one
   exponential, no cancellation in 1 - s.  The one definition used by the
   silu_grad op, the fused SiLU backward and the products' SiLU epilogue
   (gemm.c, gemm512.c), so all three give the same bits.  NaN gives NaN;
   +-inf gives NaN, as s (1 + x (1 - s)) does. */
static inline float sc_silu_gradf(float x) {
  float e = sc_vexpnegabsf(x);
  float q = 1.0f / (1.0f + e);
  float s = x < 0 ? e * q : q;
  return s + x * (e * q * q);
}

/* log(1 + u) for u in [0, 1], the only range softplus and log-sigmoid need
   (u = e^-|x|): with s = u / (2 + u) in [0, 1/3], log(1 + u) = 2 atanh(s)
   = 2 (s + s^3/3 + s^5/5 + ...).  Terms to s^15: the first one left out,
   (1/9)^8 / 17 relative, is below 2e-9.  Relative accuracy holds down to
   tiny u, where s ~ u/2, unlike log(1 + u) formed in float. */
static inline float sc_vlog1p_unitf(float u) {
  float s = u / (2.0f + u);
  float s2 = s * s;
  float p = 1.0f / 15.0f;
  p = p * s2 + 1.0f / 13.0f;
  p = p * s2 + 1.0f / 11.0f;
  p = p * s2 + 1.0f / 9.0f;
  p = p * s2 + 1.0f / 7.0f;
  p = p * s2 + 1.0f / 5.0f;
  p = p * s2 + 1.0f / 3.0f;
  p = p * s2 + 1.0f;
  return 2.0f * s * p;
}

/* log(1 + e^-a) for a = |x| >= 0; beyond a = 87.3365, where e^-a leaves
   float's normal range, it is flushed to 0 (sc_vexpnegf would give
   e^-87.3365 there instead). */
static inline float sc_vlog1p_expnegf(float a) {
  float u = sc_vexpnegf(-a);
  return a <= 87.3365f ? sc_vlog1p_unitf(u) : 0.0f;
}

/* softplus(x) = log(1 + e^x) = max(x, 0) + log(1 + e^-|x|): no overflow,
   and no libm call, so the loop vectorises; NaN gives NaN. */
static inline float sc_vsoftplusf(float x) {
  float ax = x < 0 ? -x : x;
  float y = (x > 0 ? x : 0.0f) + sc_vlog1p_expnegf(ax);
  return x != x ? x : y;
}

/* log sigmoid(x) = -softplus(-x) = min(x, 0) - log(1 + e^-|x|) */
static inline float sc_vlogsigmoidf(float x) {
  float ax = x < 0 ? -x : x;
  float y = (x < 0 ? x : 0.0f) - sc_vlog1p_expnegf(ax);
  return x != x ? x : y;
}

/* tanh: odd polynomial near 0 (where 1 - 2/(e^2x + 1) loses digits),
   the exp form elsewhere; saturates to +-1 beyond |x| > 9. */
static inline float sc_vtanhf(float x) {
  float ax = x < 0 ? -x : x;
  float x2 = x * x;
  /* minimax-style Taylor to x^9 is within 1 ulp for |x| < 0.25 */
  float small = x * (1.0f + x2 * (-0.333333333f + x2 * (0.133333333f +
                x2 * (-0.0539682540f + x2 * 0.0218694885f))));
  float e = sc_vexpf(2.0f * (ax < 9.1f ? ax : 9.1f));
  float big = ax < 9.1f ? 1.0f - 2.0f / (e + 1.0f) : 1.0f;
  big = x < 0 ? -big : big;
  float y = ax < 0.25f ? small : big;
  return x != x ? x : y;
}

/* Runtime dispatch: each hot loop is also built for AVX2, picked at load. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(SC_NO_DISPATCH)
/* x86-64-v3 = AVX2 + FMA (+ BMI, F16C...): FMA alone makes the exp
   polynomial about 1.5x faster than AVX2 without it.  x86-64-v4 adds
   AVX-512 (W1's SiLU passes: a step 1.66 -> 1.47 ms at 1 thread).  Each
   element's arithmetic is the same in every clone, so the numbers are too
   (the sampler fingerprints still match bit for bit). */
#define SC_DISPATCH __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define SC_HAVE_V4 1
/* a hand-written AVX-512 kernel's target (run only where sc_cpu_avx512) */
#define SC_V4 __attribute__((target("arch=x86-64-v4")))
#else
#define SC_DISPATCH
#endif

/* p + off floats as an address, for masked loads and stores that reach
   before a row or plane (its padding, masked off) or past it: the address
   is formed as an integer, so no pointer arithmetic leaves its object. */
static inline const float *sc_fat(const float *p, int64_t off) {
  return (const float *)((uintptr_t)p + (uintptr_t)(off * (int64_t)sizeof(float)));
}
static inline float *sc_fat_w(float *p, int64_t off) {
  return (float *)((uintptr_t)p + (uintptr_t)(off * (int64_t)sizeof(float)));
}

/* Whether the CPU has the AVX-512 of x86-64-v4 (F, BW, DQ, VL): the test
   behind the hand-written AVX-512 kernels (gemm512.c, smallgemm.c). */
static inline int sc_cpu_avx512(void) {
#ifdef SC_HAVE_V4
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#else
  return 0;
#endif
}

/* The switch of such a kernel: *use is -1 (decide from the CPU at first
   use), 0 or 1; on is 1, 0 or -1 (the CPU's default), never more than the
   CPU has.  Returns the setting before. */
static inline int sc_avx512_switch(int *use, int on) {
  int prev = *use < 0 ? sc_cpu_avx512() : *use;
  *use = on < 0 ? sc_cpu_avx512() : (on && sc_cpu_avx512());
  return prev;
}

#endif
