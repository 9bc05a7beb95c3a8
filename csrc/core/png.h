/*
 * scorch core: PNG output through stb_image_write, input through stb_image.
 *
 * Plain C11, no Lua headers.  Failures return -1 / NULL with a message in
 * sc_error() ("image.save_png: ...", "image.load_png: ...").
 */
#ifndef SC_PNG_H
#define SC_PNG_H

#include <stddef.h>

#include "tensor.h"

/* Writes t, a CxHxW tensor (C = 1 gray or 3 RGB; float32 or float64; any
   strides), as an 8-bit PNG: values are clamped to [0, 1] (NaN to 0) and
   scaled to 0..255 with rounding.  Atomic, like sc_safetensors_save. */
int sc_png_write(const char *path, sc_tensor *t);

/* Decodes a PNG (any bit depth, palette, alpha or interlacing) into a
   float32 CxHxW tensor in [0, 1] (stored value / 255, or / 65535 at 16
   bits), C the channels as stored: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA (a
   palette gives 3, or 4 with transparency).  A bad signature, a truncated
   file or a chunk CRC mismatch is refused before stb_image sees the bytes;
   its own refusals pass on its reason. */
sc_tensor *sc_png_decode(const unsigned char *buf, size_t len);
sc_tensor *sc_png_read(const char *path);

#endif
