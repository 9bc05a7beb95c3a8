/*
 * scorch core: PNG writer (stb_image_write) and a reader for our own PNGs.
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
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

/* Pixel data larger than this is refused (by the writer, because stb
   counts in int; by the reader, because it is only for tests). */
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

static int paeth(int a, int b, int c) {
  int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

/* Undoes the per-row filters in place; raw holds h rows of 1 + stride. */
static int unfilter(unsigned char *raw, size_t h, size_t stride, size_t bpp) {
  for (size_t y = 0; y < h; y++) {
    unsigned char *row = raw + y * (stride + 1) + 1;
    const unsigned char *up = y ? row - (stride + 1) : NULL;
    int ft = row[-1];
    for (size_t i = 0; i < stride; i++) {
      int a = i >= bpp ? row[i - bpp] : 0, b = up ? up[i] : 0;
      int c = up && i >= bpp ? up[i - bpp] : 0, pred;
      switch (ft) {
        case 0: pred = 0; break;
        case 1: pred = a; break;
        case 2: pred = b; break;
        case 3: pred = (a + b) / 2; break;
        case 4: pred = paeth(a, b, c); break;
        default:
          sc_set_error("image.png_read: row %zu has unknown filter type %d", y + 1, ft);
          return -1;
      }
      row[i] = (unsigned char)(row[i] + pred);
    }
  }
  return 0;
}

static sc_tensor *fail(const char *msg) {
  sc_set_error("image.png_read: %s", msg);
  return NULL;
}

sc_tensor *sc_png_decode(const unsigned char *buf, size_t len) {
  static const unsigned char sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
  if (len < 8 || memcmp(buf, sig, 8)) return fail("not a PNG file (bad signature)");
  size_t pos = 8, w = 0, h = 0, c = 0, stride = 0, rawlen = 0;
  unsigned char *raw = NULL;
  z_stream zs;
  int zinit = 0, done = 0, zrc = Z_OK;
  const char *err = NULL;
  memset(&zs, 0, sizeof zs);
  while (!err && !done) {
    if (len - pos < 12) {
      err = "truncated file (chunk header)";
      break;
    }
    uint32_t n = be32(buf + pos);
    const unsigned char *type = buf + pos + 4, *data = buf + pos + 8;
    if (n > INT32_MAX || len - pos - 12 < n) {
      err = "truncated file (chunk data)";
      break;
    }
    if (crc32(crc32(0L, Z_NULL, 0), type, n + 4) != be32(data + n)) {
      err = "chunk CRC mismatch";
      break;
    }
    pos += 12 + (size_t)n;
    int is_ihdr = !memcmp(type, "IHDR", 4);
    if (!raw && !is_ihdr) {
      err = "first chunk is not IHDR";
    } else if (is_ihdr) {
      if (raw) {
        err = "second IHDR chunk";
        break;
      }
      if (n != 13) {
        err = "bad IHDR length";
        break;
      }
      w = be32(data);
      h = be32(data + 4);
      if (data[8] != 8 || (data[9] != 0 && data[9] != 2) || data[10] || data[11] ||
          data[12]) {
        err = "only 8-bit gray or RGB, non-interlaced PNGs are supported";
        break;
      }
      c = data[9] == 2 ? 3 : 1;
      if (w == 0 || h == 0 || w > INT32_MAX || h > INT32_MAX ||
          h > MAX_PIXEL_BYTES / (w * c)) {
        err = "bad or too large image size";
        break;
      }
      stride = w * c;
      rawlen = h * (stride + 1);
      raw = malloc(rawlen);
      if (!raw || inflateInit(&zs) != Z_OK) {
        err = "out of memory";
        break;
      }
      zinit = 1;
      zs.next_out = raw;
      zs.avail_out = (uInt)rawlen;
    } else if (!memcmp(type, "IDAT", 4)) {
      if (zrc == Z_STREAM_END) {
        if (n) err = "data after the end of the compressed stream";
        continue;
      }
      zs.next_in = (Bytef *)(uintptr_t)data;
      zs.avail_in = n;
      while (zs.avail_in && zrc == Z_OK) {
        zrc = inflate(&zs, Z_NO_FLUSH);
        if (zrc == Z_BUF_ERROR && zs.avail_out == 0) {
          err = "more image data than the size says";
          break;
        }
        if (zrc != Z_OK && zrc != Z_STREAM_END) {
          err = "corrupt compressed data";
          break;
        }
      }
      if (!err && zrc == Z_STREAM_END && zs.avail_in) err = "data after the end of the compressed stream";
    } else if (!memcmp(type, "IEND", 4)) {
      done = 1;
    } else if (!(type[0] & 0x20) && memcmp(type, "PLTE", 4)) {
      err = "unsupported critical chunk";
    } /* other ancillary chunks (and a suggested palette) are skipped */
  }
  if (!err && zrc != Z_STREAM_END) err = "compressed image data is incomplete";
  if (!err && zs.total_out != rawlen) err = "less image data than the size says";
  if (zinit) inflateEnd(&zs);
  if (!err && unfilter(raw, h, stride, c)) {
    free(raw);
    return NULL;
  }
  if (err) {
    free(raw);
    return fail(err);
  }
  int64_t shape[3] = {(int64_t)c, (int64_t)h, (int64_t)w};
  sc_tensor *t = sc_empty(3, shape, SC_FLOAT32);
  if (t) {
    float *out = sc_data(t);
    for (size_t y = 0; y < h; y++)
      for (size_t x = 0; x < w; x++)
        for (size_t k = 0; k < c; k++)
          out[(k * h + y) * w + x] = raw[y * (stride + 1) + 1 + x * c + k];
  }
  free(raw);
  return t;
}

sc_tensor *sc_png_read(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    sc_set_error("image.png_read: cannot open %s: %s", path, strerror(errno));
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
    sc_set_error("image.png_read: cannot read %s", path);
    return NULL;
  }
  sc_tensor *t = sc_png_decode(buf, n);
  free(buf);
  return t;
}
