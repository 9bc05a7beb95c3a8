/*
 * scorch core: PNG writer (stb_image_write) and reader (stb_image).
 */
#include "png.h"
#include "safetensors.h" /* sc_atomic_* */

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* stb's implementation lives here, private to this file (static).  We use
   only its callback writer, so write errors are seen; STBI_WRITE_NO_STDIO
   would be tidier but leaves stbi_write_hdr_to_func declared and undefined
   (a warning no pragma silences). */
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include <stb/stb_image_write.h>
/* The reader: PNG only, from memory (we read the file, so a read error is
   ours to report). */
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_PNG
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
/* stb_image 2.27 declares functions it never defines once STBI_ONLY_PNG
   leaves their formats out; gcc reports those at the end of the file. */
#pragma GCC diagnostic ignored "-Wunused-function"
#endif

/* Pixel data larger than this is refused (by the writer, because stb
   counts in int; by the reader, so a forged header cannot ask for more). */
#define MAX_PIXEL_BYTES ((size_t)1 << 28)

/* ---- writer ------------------------------------------------------------------------ */

static void write_cb(void *ctx, void *data, int size) {
  /* a short write leaves the stream's error flag set; commit checks it */
  (void)fwrite(data, 1, (size_t)size, (FILE *)ctx);
}

static unsigned char to_byte(double v) {
  if (!(v > 0)) return 0; /* also NaN */
  if (v >= 1) return 255;
  return (unsigned char)(v * 255.0 + 0.5);
}

int sc_png_write(const char *path, sc_tensor *t) {
  char sbuf[128];
  if (t->ndim != 3 || (t->shape[0] != 1 && t->shape[0] != 3) || t->shape[1] < 1 ||
      t->shape[2] < 1) {
    sc_set_error("image.save_png: expected a CxHxW tensor with C = 1 or 3 and "
                 "H, W >= 1, got shape %s", sc_shape_str(t, sbuf, sizeof sbuf));
    return -1;
  }
  int64_t c = t->shape[0], h = t->shape[1], w = t->shape[2];
  if ((uint64_t)h > MAX_PIXEL_BYTES / (uint64_t)(w * c)) {
    sc_set_error("image.save_png: image of shape %s is too large",
                 sc_shape_str(t, sbuf, sizeof sbuf));
    return -1;
  }
  unsigned char *px = malloc((size_t)(c * h * w));
  if (!px) {
    sc_set_error("image.save_png: out of memory");
    return -1;
  }
  /* CxHxW (any strides) to interleaved HxWxC bytes */
  const char *base = sc_data(t);
  size_t isz = sc_dtype_size(t->dtype);
  for (int64_t k = 0; k < c; k++)
    for (int64_t y = 0; y < h; y++)
      for (int64_t x = 0; x < w; x++) {
        const char *p = base + (k * t->stride[0] + y * t->stride[1] +
                                x * t->stride[2]) * (int64_t)isz;
        double v = t->dtype == SC_FLOAT64 ? *(const double *)p : *(const float *)p;
        px[(y * w + x) * c + k] = to_byte(v);
      }
  sc_atomic_file af;
  if (sc_atomic_open(&af, path, "image.save_png")) {
    free(px);
    return -1;
  }
  int ok = stbi_write_png_to_func(write_cb, af.fp, (int)w, (int)h, (int)c, px,
                                  (int)(w * c));
  free(px);
  if (!ok) {
    sc_atomic_abort(&af);
    sc_set_error("image.save_png: PNG encoding failed (out of memory?)");
    return -1;
  }
  return sc_atomic_commit(&af, "image.save_png");
}

/* ---- reader ------------------------------------------------------------------------ */

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static sc_tensor *fail(const char *msg) {
  sc_set_error("image.load_png: %s", msg);
  return NULL;
}

/* stb_image skips chunk CRCs; a damaged file is refused here rather than
   decoded into wrong pixels.  Walks the chunks up to IEND. */
static const char *check_chunks(const unsigned char *buf, size_t len) {
  static const unsigned char sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
  if (len < 8 || memcmp(buf, sig, 8)) return "not a PNG file (bad signature)";
  for (size_t pos = 8;;) {
    if (len - pos < 12) return "truncated file (chunk header)";
    uint32_t n = be32(buf + pos);
    if (n > INT32_MAX || len - pos - 12 < n) return "truncated file (chunk data)";
    const unsigned char *type = buf + pos + 4;
    if (crc32(crc32(0L, Z_NULL, 0), type, n + 4) != be32(type + 4 + n)) return "chunk CRC mismatch";
    if (!memcmp(type, "IEND", 4)) return NULL;
    pos += 12 + (size_t)n;
  }
}

sc_tensor *sc_png_decode(const unsigned char *buf, size_t len) {
  const char *err = check_chunks(buf, len);
  if (err) return fail(err);
  if (len > INT32_MAX) return fail("file too large");
  int w, h, c;
  if (!stbi_info_from_memory(buf, (int)len, &w, &h, &c)) {
    /* info's reason is "unknown image type" whatever the PNG's fault; a
       load stops at the same header and says what it was */
    void *px = stbi_load_from_memory(buf, (int)len, &w, &h, &c, 0);
    if (px) { /* cannot happen: info and load read the header alike */
      stbi_image_free(px);
      return fail("header not understood");
    }
    return fail(stbi_failure_reason());
  }
  int wide = stbi_is_16_bit_from_memory(buf, (int)len);
  if (w < 1 || h < 1 || c < 1 || c > 4 ||
      (uint64_t)h > MAX_PIXEL_BYTES / ((uint64_t)w * (uint64_t)c * (wide ? 2 : 1)))
    return fail("bad or too large image size");
  /* the channels as stored (gray, gray+alpha, RGB, RGBA; a palette as RGB
     or RGBA), at their own depth */
  int gw, gh, gc;
  void *px = wide ? (void *)stbi_load_16_from_memory(buf, (int)len, &gw, &gh, &gc, c)
                  : (void *)stbi_load_from_memory(buf, (int)len, &gw, &gh, &gc, c);
  if (!px) return fail(stbi_failure_reason());
  if (gw != w || gh != h) {
    stbi_image_free(px);
    return fail("size changed while decoding");
  }
  int64_t shape[3] = {c, h, w};
  sc_tensor *t = sc_empty(3, shape, SC_FLOAT32);
  if (t) {
    /* interleaved HxWxC to planes, scaled to [0, 1] */
    float *out = sc_data(t);
    size_t hw = (size_t)h * (size_t)w;
    const unsigned char *p8 = px;
    const uint16_t *p16 = px;
    float top = wide ? 65535.0f : 255.0f;
    for (size_t i = 0; i < hw; i++)
      for (size_t k = 0; k < (size_t)c; k++) {
        size_t j = i * (size_t)c + k;
        out[k * hw + i] = (float)(wide ? p16[j] : p8[j]) / top;
      }
  }
  stbi_image_free(px);
  return t;
}

sc_tensor *sc_png_read(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    sc_set_error("image.load_png: cannot open %s: %s", path, strerror(errno));
    return NULL;
  }
  size_t cap = 1 << 16, n = 0;
  unsigned char *buf = malloc(cap);
  while (buf) {
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap || cap >= 4 * MAX_PIXEL_BYTES) break;
    unsigned char *p = realloc(buf, cap * 2);
    if (!p) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = p;
    cap *= 2;
  }
  int bad = ferror(f);
  fclose(f);
  if (!buf || bad) {
    free(buf);
    sc_set_error("image.load_png: cannot read %s", path);
    return NULL;
  }
  sc_tensor *t = sc_png_decode(buf, n);
  free(buf);
  return t;
}
