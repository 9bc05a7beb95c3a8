/* scorch core: 3x3 convolutions with a single channel on one side
   (thinconv.c), for conv.c */
#ifndef SC_THINCONV_H
#define SC_THINCONV_H

#include "conv.h"

/* Whether a dt convolution of C input and O output channels on H x W
   images with geometry g goes through thinconv.c: float32, 3x3, stride 1,
   padding 1, no dilation, C == 1 or O == 1, W <= 64, and gemm512.c's
   AVX-512 running. */
int sc_thin_ok(sc_dtype dt, int64_t C, int64_t O, int64_t H, int64_t W, const sc_conv_geom *g);

/* y [N, O, H, W] = x [N, C, H, W] convolved with w [O, C, 3, 3] (+ bias [O]
   when not NULL), stride 1, padding 1, float32; each sample of x a
   contiguous [C, H, W] block, xsn floats from the last, the rest
   contiguous: 0 when done, -1 when not available (y untouched then).  Only
   where sc_thin_ok says so. */
int sc_thin_conv3x3_f32(const float *x, int64_t xsn, int64_t N, int64_t C, int64_t H,
                        int64_t W, const float *w, int64_t O, const float *bias, float *y);

/* dw [O, C, 3, 3] = the weight gradient of that convolution from x [N, C,
   H, W] and the output's gradient gy [N, O, H, W] (float32, samples xsn
   and gsn floats apart, each a contiguous block): 0 when done, -1 when not
   available (dw untouched then). */
int sc_thin_conv3x3_weight_f32(const float *x, int64_t xsn, const float *gy, int64_t gsn,
                               int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, float *dw);

/* Whether thinconv.c is used where it applies (1, the default) or conv.c's
   other paths instead (0), for the specs that check both against float64.
   Returns the previous setting. */
int sc_thin_conv(int on);

#endif
