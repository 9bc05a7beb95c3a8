/*
 * scorch core: IDX reader (MNIST, Fashion-MNIST), plain or gzip-compressed.
 */
#include "idx.h"
#include "internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static const struct {
  unsigned code, size;
  const char *name;
} idx_types[] = {{0x08, 1, "ubyte"}, {0x09, 1, "sbyte"}, {0x0B, 2, "short"},
                 {0x0C, 4, "int"},   {0x0D, 4, "float"}, {0x0E, 8, "double"}};

/* the row of idx_types for a type code, or -1 */
static int type_index(unsigned code) {
  for (int k = 0; k < (int)(sizeof idx_types / sizeof *idx_types); k++)
    if (idx_types[k].code == code) return k;
  return -1;
}

static uint64_t be(const unsigned char *p, unsigned n) {
  uint64_t v = 0;
  for (unsigned k = 0; k < n; k++) v = v << 8 | p[k];
  return v;
}

sc_tensor *sc_idx_decode(const unsigned char *buf, size_t len) {
  if (len < 4) {
    sc_set_error("io.read_idx: truncated file: %zu bytes, too short for the "
                 "4-byte magic number", len);
    return NULL;
  }
  if (buf[0] || buf[1]) {
    sc_set_error("io.read_idx: not an IDX file (magic number 0x%02x%02x%02x%02x "
                 "does not start with two zero bytes)", buf[0], buf[1], buf[2],
                 buf[3]);
    return NULL;
  }
  int ty = type_index(buf[2]);
  if (ty < 0) {
    sc_set_error("io.read_idx: unsupported type code 0x%02x (known: 0x08 ubyte, "
                 "0x09 sbyte, 0x0B short, 0x0C int, 0x0D float, 0x0E double)",
                 buf[2]);
    return NULL;
  }
  int nd = buf[3];
  if (nd < 1 || nd > SC_MAX_DIMS) {
    sc_set_error("io.read_idx: %d dimensions (1 to %d supported)", nd, SC_MAX_DIMS);
    return NULL;
  }
  size_t hdr = 4 + 4 * (size_t)nd;
  if (len < hdr) {
    sc_set_error("io.read_idx: truncated file: %zu bytes, the header of %d "
                 "dimensions needs %zu", len, nd, hdr);
    return NULL;
  }
  int64_t shape[SC_MAX_DIMS];
  uint64_t nel = 1, nonzero = 1;
  for (int d = 0; d < nd; d++) {
    uint64_t s = be(buf + 4 + 4 * d, 4);
    /* the product of the non-zero sizes bounds every stride */
    if (s && nonzero > (uint64_t)(INT64_MAX / 8) / s) {
      sc_set_error("io.read_idx: dimensions too large");
      return NULL;
    }
    if (s) nonzero *= s;
    nel *= s;
    shape[d] = (int64_t)s;
  }
  unsigned isz = idx_types[ty].size;
  uint64_t need = nel * isz, have = len - hdr;
  if (need != have) {
    char sbuf[200];
    sc_set_error("io.read_idx: %s: shape %s of %s needs %llu bytes of data, the "
                 "file has %llu", need > have ? "truncated file" : "wrong size",
                 sc_dims_str(nd, shape, sbuf, sizeof sbuf),
                 idx_types[ty].name, (unsigned long long)need,
                 (unsigned long long)have);
    return NULL;
  }
  sc_tensor *t = sc_empty(nd, shape, buf[2] == 0x0E ? SC_FLOAT64 : SC_FLOAT32);
  if (!t) return NULL;
  const unsigned char *p = buf + hdr;
  float *f = sc_data(t);
  double *dd = sc_data(t);
  for (uint64_t i = 0; i < nel; i++, p += isz) {
    uint64_t v = be(p, isz);
    switch (buf[2]) {
      case 0x08: f[i] = (float)v; break;
      case 0x09: f[i] = (float)(int8_t)v; break;
      case 0x0B: f[i] = (float)(int16_t)v; break;
      case 0x0C: f[i] = (float)(int32_t)v; break;
      case 0x0D: {
        uint32_t b = (uint32_t)v;
        memcpy(&f[i], &b, 4);
        break;
      }
      default: memcpy(&dd[i], &v, 8); break; /* 0x0E */
    }
  }
  return t;
}

/* The bytes of a file whose header is in buf[0..n) that hold its first
   `first` items (header included), when that is fewer than the whole data;
   0 while the header is incomplete or when the whole file is wanted.  The
   header's first size is then rewritten to `first`, so the prefix decodes
   as a file of its own. */
static size_t prefix_bytes(unsigned char *buf, size_t n, int64_t first) {
  if (first < 0 || n < 4) return 0;
  int ty = type_index(buf[2]);
  int nd = buf[3];
  size_t hdr = 4 + 4 * (size_t)nd;
  if (ty < 0 || buf[0] || buf[1] || nd < 1 || nd > SC_MAX_DIMS || n < hdr) return 0;
  uint64_t item = idx_types[ty].size, n0 = be(buf + 4, 4);
  for (int d = 1; d < nd; d++) {
    uint64_t s = be(buf + 4 + 4 * d, 4);
    if (s && item > SC_IDX_MAX_BYTES / s) return 0; /* decode reports it */
    item *= s;
  }
  if ((uint64_t)first >= n0 || (uint64_t)first > SC_IDX_MAX_BYTES / (item ? item : 1)) return 0;
  buf[4] = (unsigned char)(first >> 24);
  buf[5] = (unsigned char)(first >> 16);
  buf[6] = (unsigned char)(first >> 8);
  buf[7] = (unsigned char)first;
  return hdr + (size_t)first * (size_t)item;
}

sc_tensor *sc_idx_read(const char *path) { return sc_idx_read_first(path, -1); }

sc_tensor *sc_idx_read_first(const char *path, int64_t first) {
  errno = 0;
  gzFile g = gzopen(path, "rb");
  if (!g) {
    sc_set_error("io.read_idx: cannot open %s: %s", path,
                 errno ? strerror(errno) : "out of memory");
    return NULL;
  }
  /* the decompressed size is unknown up front: grow as the data comes,
     so a lying header cannot make us allocate more than the file holds */
  size_t cap = 1 << 16, n = 0, stop = 0; /* stop: bytes of the prefix, once known */
  unsigned char *buf = malloc(cap);
  const char *err = buf ? NULL : "out of memory";
  while (!err && !(stop && n >= stop)) {
    if (n == cap) {
      if (cap >= SC_IDX_MAX_BYTES) {
        err = "file too large";
        break;
      }
      unsigned char *p = realloc(buf, cap * 2);
      if (!p) {
        err = "out of memory";
        break;
      }
      buf = p;
      cap *= 2;
    }
    size_t want = cap - n < (1u << 30) ? cap - n : (1u << 30);
    if (stop && want > stop - n) want = stop - n;
    if (!stop && n < 4 + 4 * (size_t)SC_MAX_DIMS && want > 4 + 4 * (size_t)SC_MAX_DIMS - n)
      want = 4 + 4 * (size_t)SC_MAX_DIMS - n; /* the header first, to know the prefix */
    int got = gzread(g, buf + n, (unsigned)want);
    if (got <= 0) {
      int zerr;
      const char *msg = gzerror(g, &zerr);
      if (got < 0 || zerr != Z_OK)
        err = zerr == Z_ERRNO ? strerror(errno) : msg;
      break;
    }
    n += (size_t)got;
    if (!stop) stop = prefix_bytes(buf, n, first);
  }
  if (!err && stop && n > stop) n = stop;
  sc_tensor *t = NULL;
  if (err)
    sc_set_error("io.read_idx: cannot read %s: %s", path, err);
  else if (!(t = sc_idx_decode(buf, n))) {
    static const char pre[] = "io.read_idx: ";
    const char *e = sc_error();
    char msg[512];
    snprintf(msg, sizeof msg, "%s", strncmp(e, pre, strlen(pre)) ? e : e + strlen(pre));
    sc_set_error("io.read_idx: %s: %s", path, msg);
  }
  free(buf);
  gzclose(g);
  return t;
}
