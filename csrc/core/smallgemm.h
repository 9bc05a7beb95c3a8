/* scorch core: the float32 product kernel of narrow linear layers. */
#ifndef SC_SMALLGEMM_H
#define SC_SMALLGEMM_H

#include <stdint.h>

enum { SC_ACT_NONE = 0, SC_ACT_SILU = 1 };

/* Whether sc_small_linear_f32 is the faster way for k inputs and m outputs
   (W and a block of x rows stay in L1/L2). */
int sc_small_linear_ok(int64_t k, int64_t m);

/* Whether the kernel uses its AVX-512 registers (where the CPU has them;
   the default there): on = 1 or 0, or -1 for the CPU's default.  Returns
   the previous setting.  The numbers are the same either way. */
int sc_small_linear_avx512(int on);

/* y = act(x W^T + b): x [n, k] with element strides (sn, sk), W [m, k] with
   (swm, swk), bias [m] with stride sb or NULL, y a contiguous [n, m].
   Returns -1 only when the packing buffer cannot be allocated. */
int sc_small_linear_f32(int64_t n, int64_t m, int64_t k, const float *x, int64_t sn,
                        int64_t sk, const float *w, int64_t swm, int64_t swk,
                        const float *bias, int64_t sb, float *y, int act, int nthreads);

/* The most layers sc_small_mlp_f32 takes. */
#define SC_MLP_MAX_LAYERS 16

/* A chain of such layers: h_0 = x [n, dims[0]] (strides sn, sk), h_l =
   act[l](h_{l-1} W_l^T + b_l) with W_l [dims[l+1], dims[l]] (strides swm[l],
   swk[l]) and bias b_l (stride sb[l]) or NULL, y = h_nl a contiguous
   [n, dims[nl]].  Block by block of rows, so the activations stay in
   cache; the numbers are those of nl calls of sc_small_linear_f32.  Every
   layer must pass sc_small_linear_ok.  Returns -1 when memory cannot be
   had or nl exceeds SC_MLP_MAX_LAYERS. */
int sc_small_mlp_f32(int64_t n, int nl, const int64_t *dims, const float *x, int64_t sn,
                     int64_t sk, const float *const *w, const int64_t *swm, const int64_t *swk,
                     const float *const *bias, const int64_t *sb, const int *act, float *y,
                     int nthreads);

/* The same chain with matmul precision "medium": layers of at least 16
   inputs multiply bfloat16-rounded inputs and weights (AVX512-BF16) with
   float32 sums, bias and activations; the others as sc_small_mlp_f32.  On
   a CPU without AVX512-BF16 it is sc_small_mlp_f32.  Same rows, same
   numbers at any thread count. */
int sc_small_mlp_bf16(int64_t n, int nl, const int64_t *dims, const float *x, int64_t sn,
                      int64_t sk, const float *const *w, const int64_t *swm, const int64_t *swk,
                      const float *const *bias, const int64_t *sb, const int *act, float *y,
                      int nthreads);

/* The same layer with matmul precision "medium" (as sc_small_mlp_bf16). */
int sc_small_linear_bf16(int64_t n, int64_t m, int64_t k, const float *x, int64_t sn,
                         int64_t sk, const float *w, int64_t swm, int64_t swk,
                         const float *bias, int64_t sb, float *y, int act, int nthreads);

/* Whether this CPU has AVX512-BF16 (and the build its kernel). */
int sc_cpu_bf16(void);

/* The matmul precision setting: on = 1 ("medium": chains may use
   sc_small_mlp_bf16), 0 ("highest", the default), or -1 to only ask.
   Returns the setting before. */
int sc_matmul_bf16(int on);

#endif
