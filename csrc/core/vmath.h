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

#include <stdint.h>
#include <string.h>

static inline float sc_vexpf(float x) {
  const float hi = 88.7228f, lo = -87.3365f;
  float xc = x > hi ? hi : x;
  xc = xc >= lo ? xc : lo; /* NaN too: (int32_t)NaN below would be undefined */
  /* round to nearest by adding 1.5 * 2^23 (a libm call would stop
     vectorisation); exact for |x log2 e| < 2^22 */
  float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = xc - n * 0.693359375f;  /* ln2 high part, exact in float */
  r = r - n * -2.12194440e-4f;       /* ln2 low part */
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
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

#endif
