/*
 * scorch core: PNG output through stb_image_write, and a small reader for
 * the PNGs we write (tests and round trips only).
 *
 * Plain C11, no Lua headers.  Failures return -1 / NULL with a message in
 * sc_error() ("image.save_png: ...", "image.png_read: ...").
 */
#ifndef SC_PNG_H
#define SC_PNG_H

#include <stddef.h>

#include "tensor.h"

/* Writes t, a CxHxW tensor (C = 1 gray or 3 RGB; float32 or float64; any
   strides), as an 8-bit PNG: values are clamped to [0, 1] (NaN to 0) and
   scaled to 0..255 with rounding.  Atomic, like sc_safetensors_save. */
int sc_png_write(const char *path, sc_tensor *t);

/* Decodes an 8-bit gray or RGB, non-interlaced PNG (filter types 0-4) into
   a float32 CxHxW tensor holding the stored values 0..255.  Anything else
   (palette, alpha, 16-bit, interlacing, bad CRCs, truncation) is refused
   with a message; no input reads out of bounds. */
sc_tensor *sc_png_decode(const unsigned char *buf, size_t len);
sc_tensor *sc_png_read(const char *path);

#endif
