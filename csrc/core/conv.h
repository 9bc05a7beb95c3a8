/* scorch core: unfolding and nearest-neighbour resampling of image batches. */
#ifndef SC_CONV_H
#define SC_CONV_H

#include "tensor.h"

/* Kernel, stride, padding and dilation, each as (height, width). */
typedef struct sc_conv_geom {
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
} sc_conv_geom;

/* [N,C,H,W] -> [N, C*kh*kw, Ho*Wo] (rows ordered c, ki, kj). */
sc_tensor *sc_im2col(sc_tensor *x, const sc_conv_geom *g);
/* The transpose: sums columns back into an [N, C, H, W] image. */
sc_tensor *sc_col2im(sc_tensor *cols, int64_t H, int64_t W,
                     const sc_conv_geom *g);
/* [N,C,H,W] -> [N,C,sH,sW], each pixel repeated s x s times. */
sc_tensor *sc_upsample_nearest(sc_tensor *x, int64_t s);
/* Sums of non-overlapping s x s windows: the transpose of the above. */
sc_tensor *sc_sum_pool(sc_tensor *x, int64_t s);
/* [N, 4*O, H+1, W+1] -> [N, O, 2H, 2W]: out[n, o, 2i+a, 2j+b] =
   y[n, (2a+b)*O + o, i+a, j+b] (four phase windows interleaved), and its
   transpose (zeros where no window reads). */
sc_tensor *sc_phase_join(sc_tensor *y);
sc_tensor *sc_phase_split(sc_tensor *x);

/* Convolution of [N,C,H,W] by W [O,C,kh,kw] plus an optional bias [O]
   (NULL: none; one group), one sample at a time; its two adjoints: the
   transposed convolution of an [N,O,Ho,Wo] gradient back to an H x W
   image, and the weight gradient. */
sc_tensor *sc_conv2d_fused(sc_tensor *x, sc_tensor *w, sc_tensor *b,
                           const sc_conv_geom *g);
sc_tensor *sc_conv2d_input(sc_tensor *g0, sc_tensor *w0, int64_t H, int64_t W,
                           const sc_conv_geom *g);
sc_tensor *sc_conv2d_weight(sc_tensor *x0, sc_tensor *g0, const sc_conv_geom *g);

#endif
