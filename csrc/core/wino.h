/* scorch core: 3x3 convolutions by Winograd's F(2x2, 3x3) and F(4x2, 3x3)
   (wino.c), for conv.c */
#ifndef SC_WINO_H
#define SC_WINO_H

#include "conv.h"

/* The weight gradient's sum over N samples runs in fixed chunks of this
   many (at least 8 samples, at most 16 chunks, set by N alone), each
   chunk's partial built in sample order and the partials added in chunk
   order, so the bits do not depend on the thread count: conv.c's products
   and wino.c alike. */
static inline int64_t sc_conv_chunk(int64_t N) { return (N + 15) / 16 < 8 ? 8 : (N + 15) / 16; }

/* Whether a dt convolution of C input and O output channels on H x W
   images with geometry g goes through wino.c: float32, 3x3, stride 1, no
   dilation, padding <= 2, enough channels, and gemm512.c running. */
int sc_wino_ok(sc_dtype dt, int64_t C, int64_t O, int64_t H, int64_t W, const sc_conv_geom *g);

/* y [N, O, Ho, Wo] = x [N, C, H, W] convolved with w [O, C, 3, 3] (+ bias
   [O] when not NULL), stride 1, padding ph x pw, float32; each sample of x
   a contiguous [C, H, W] block, xsn floats from the last (C H W when x is
   contiguous; more for a slice along the channels), the rest contiguous: 0
   when done, -1 when out of memory or not available (y untouched then).
   Only where sc_wino_ok says so. */
int sc_wino_conv3x3_f32(const float *x, int64_t xsn, int64_t N, int64_t C, int64_t H,
                        int64_t W, const float *w, int64_t O, const float *bias, int64_t ph,
                        int64_t pw, float *y);

/* dw [O, C, 3, 3] = the weight gradient of that convolution from x [N, C,
   H, W] and the output's gradient gy [N, O, Ho, Wo] (float32, samples xsn
   and gsn floats apart, each a contiguous block), summed in
   sc_conv_chunk's chunks: 0 when done, -1 when out of memory or not
   available (dw untouched then). */
int sc_wino_conv3x3_weight_f32(const float *x, int64_t xsn, const float *gy, int64_t gsn,
                               int64_t N, int64_t C, int64_t H, int64_t W, int64_t O,
                               int64_t ph, int64_t pw, float *dw);

/* How the weight gradient's products are oriented: -1 by the cost model
   (wino.c's wgrad_cost), 0 always dU = Z V^T, 1 always dU^T = V Z^T; the
   same bits every way (image_ops_spec).  Returns the previous mode. */
int sc_wino_wgrad_transposed(int mode);

/* The tiling: 0 by the rule of wino.c's wino_tile_of (the default), 2
   always F(2x2, 3x3), 4 always F(4x2, 3x3) (4 output rows by 2 columns to
   a tile).  Returns the previous mode. */
int sc_wino_tile(int mode);

#endif
