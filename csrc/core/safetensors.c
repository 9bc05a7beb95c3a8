/*
 * scorch core: safetensors reader and writer.
 *
 * The reader trusts nothing: the whole header must be UTF-8, the JSON is
 * parsed by a small recursive-descent parser that knows only the shapes a
 * safetensors header can take (objects, arrays, strings with escapes,
 * non-negative integers), and every offset is checked against the data
 * section before a byte of it is touched.  The data must be covered exactly
 * by the tensors, with no gaps or overlaps, as the format requires.
 */
#include "safetensors.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* F32/F64 data is copied as is, which is right only on a little-endian
   host (every platform scorch targets). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

/* ---- dtypes ----------------------------------------------------------------- */

/* In the reference library's order, which is increasing alignment: its
   writer puts larger dtypes first, and so does ours. */
enum {
  ST_BOOL, ST_U8, ST_I8, ST_I16, ST_U16, ST_F16, ST_BF16, ST_I32, ST_U32,
  ST_F32, ST_F64, ST_I64, ST_U64, ST_NDTYPES
};
static const char *const st_names[ST_NDTYPES] = {
    "BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32",
    "F32", "F64", "I64", "U64"};
static const unsigned st_sizes[ST_NDTYPES] = {1, 1, 1, 2, 2, 2, 2, 4, 4,
                                              4, 8, 8, 8};
/* Dtypes the format defines that we refuse by name rather than as unknown. */
static const char *const st_unsupported[] = {
    "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64"};

static int st_lookup(const char *s) {
  for (int i = 0; i < ST_NDTYPES; i++)
    if (!strcmp(s, st_names[i])) return i;
  return -1;
}

/* ---- small helpers ------------------------------------------------------------ */

/* At most this many bytes of a name go into an error message. */
#define NAME_SHOWN 60
#define SHOW(s) (int)(strlen(s) < NAME_SHOWN ? strlen(s) : NAME_SHOWN), (s)

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p) memcpy(p, s, n);
  return p;
}

/* Grows an array of `size`-byte elements to hold one more. */
static int grow(void **arr, size_t *cap, size_t n, size_t size) {
  if (n < *cap) return 0;
  size_t nc = *cap ? *cap * 2 : 8;
  if (nc > SIZE_MAX / size) return -1;
  void *p = realloc(*arr, nc * size);
  if (!p) return -1;
  *arr = p;
  *cap = nc;
  return 0;
}

/* Strict UTF-8 check (no overlongs, surrogates or code points past
   U+10FFFF); returns the offset of the first bad byte, or len. */
static size_t utf8_check(const unsigned char *s, size_t len) {
  size_t i = 0;
  while (i < len) {
    unsigned c = s[i];
    size_t n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80) { i++; continue; }
    if (c >= 0xC2 && c <= 0xDF) n = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (len - i - 1 < n) return i;
    if (s[i + 1] < lo || s[i + 1] > hi) return i;
    for (size_t k = 2; k <= n; k++)
      if ((s[i + k] & 0xC0) != 0x80) return i;
    i += n + 1;
  }
  return len;
}

/* ---- the header's JSON ------------------------------------------------------------ */

typedef struct {
  const char *s;
  size_t n, i;
} json;

static int jfail(const json *j, const char *what) {
  if (j->i >= j->n)
    sc_set_error("bad header JSON: %s, but the header ends", what);
  else
    sc_set_error("bad header JSON at byte %zu: %s", j->i, what);
  return -1;
}

static int peek(json *j) {
  while (j->i < j->n && (j->s[j->i] == ' ' || j->s[j->i] == '\t' ||
                         j->s[j->i] == '\n' || j->s[j->i] == '\r'))
    j->i++;
  return j->i < j->n ? (unsigned char)j->s[j->i] : -1;
}

static int expect(json *j, char c, const char *what) {
  if (peek(j) != (unsigned char)c) return jfail(j, what);
  j->i++;
  return 0;
}

static int hex4(const json *j, size_t at, unsigned *out) {
  unsigned v = 0;
  if (j->n - at < 4) return -1;
  for (size_t k = 0; k < 4; k++) {
    char c = j->s[at + k];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return -1;
  }
  *out = v;
  return 0;
}

/* Parses a string into a fresh NUL-terminated buffer.  Escapes only ever
   shrink the text, so the raw length bounds the decoded one. */
static int parse_string(json *j, char **out) {
  *out = NULL;
  if (expect(j, '"', "expected a string")) return -1;
  size_t end = j->i;
  while (end < j->n && j->s[end] != '"') end += j->s[end] == '\\' ? 2 : 1;
  if (end >= j->n) {
    j->i = j->n;
    return jfail(j, "unterminated string");
  }
  char *buf = malloc(end - j->i + 1);
  if (!buf) {
    sc_set_error("out of memory reading the header");
    return -1;
  }
  size_t k = 0;
  while (j->i < end) {
    unsigned char c = (unsigned char)j->s[j->i];
    if (c < 0x20) {
      free(buf);
      return jfail(j, "control character in string");
    }
    if (c != '\\') {
      buf[k++] = (char)c;
      j->i++;
      continue;
    }
    static const char names[] = "\"\\/bfnrt", repl[] = "\"\\/\b\f\n\r\t";
    char e = j->s[j->i + 1]; /* end - j->i >= 2: the scan stepped over it */
    const char *simple = e ? strchr(names, e) : NULL;
    if (simple) {
      buf[k++] = repl[simple - names];
      j->i += 2;
      continue;
    }
    unsigned cp, lo;
    if (e != 'u' || hex4(j, j->i + 2, &cp) || j->i + 6 > end) {
      free(buf);
      return jfail(j, "bad escape in string");
    }
    j->i += 6;
    if (cp >= 0xDC00 && cp <= 0xDFFF) {
      free(buf);
      return jfail(j, "lone low surrogate in string");
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      if (j->i + 6 > end || j->s[j->i] != '\\' || j->s[j->i + 1] != 'u' ||
          hex4(j, j->i + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
        free(buf);
        return jfail(j, "lone high surrogate in string");
      }
      j->i += 6;
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    if (cp == 0) {
      free(buf);
      return jfail(j, "NUL character (\\u0000) in string");
    }
    if (cp < 0x80) {
      buf[k++] = (char)cp;
    } else if (cp < 0x800) {
      buf[k++] = (char)(0xC0 | (cp >> 6));
      buf[k++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      buf[k++] = (char)(0xE0 | (cp >> 12));
      buf[k++] = (char)(0x80 | ((cp >> 6) & 0x3F));
      buf[k++] = (char)(0x80 | (cp & 0x3F));
    } else {
      buf[k++] = (char)(0xF0 | (cp >> 18));
      buf[k++] = (char)(0x80 | ((cp >> 12) & 0x3F));
      buf[k++] = (char)(0x80 | ((cp >> 6) & 0x3F));
      buf[k++] = (char)(0x80 | (cp & 0x3F));
    }
  }
  buf[k] = 0;
  j->i = end + 1;
  *out = buf;
  return 0;
}

/* A non-negative integer that fits int64 (shapes and offsets). */
static int parse_uint(json *j, uint64_t *out) {
  int c = peek(j);
  if (c == '-') return jfail(j, "negative number");
  if (c < '0' || c > '9') return jfail(j, "expected a non-negative integer");
  uint64_t v = 0;
  size_t start = j->i;
  while (j->i < j->n && j->s[j->i] >= '0' && j->s[j->i] <= '9') {
    unsigned d = (unsigned)(j->s[j->i] - '0');
    if (v > ((uint64_t)INT64_MAX - d) / 10) {
      j->i = start;
      return jfail(j, "integer too large");
    }
    v = v * 10 + d;
    j->i++;
  }
  if (j->s[start] == '0' && j->i - start > 1) {
    j->i = start;
    return jfail(j, "integer with a leading zero");
  }
  if (j->i < j->n && (j->s[j->i] == '.' || j->s[j->i] == 'e' || j->s[j->i] == 'E'))
    return jfail(j, "expected an integer, found a fraction or exponent");
  *out = v;
  return 0;
}

/* [a, b, ...] of at most max integers; *count gets how many.  Returns -2
   (no message set) when there are more than max. */
static int parse_uint_array(json *j, uint64_t *v, int max, int *count,
                            const char *what) {
  *count = 0;
  if (expect(j, '[', what)) return -1;
  if (peek(j) == ']') {
    j->i++;
    return 0;
  }
  for (;;) {
    if (*count == max) return -2;
    if (parse_uint(j, &v[*count])) return -1;
    (*count)++;
    int c = peek(j);
    j->i++;
    if (c == ']') return 0;
    if (c != ',') {
      j->i--;
      return jfail(j, "expected ',' or ']' in array");
    }
  }
}

/* ---- the parsed header ------------------------------------------------------------ */

typedef struct {
  char *name;
  int dtype;
  int ndim;
  int64_t shape[SC_MAX_DIMS];
  uint64_t begin, end;
} st_entry;

typedef struct {
  char *key, *value;
} st_meta;

typedef struct {
  st_entry *e;
  size_t n, cap;
  st_meta *m;
  size_t nm, mcap;
} st_header;

static void header_free(st_header *h) {
  for (size_t i = 0; i < h->n; i++) free(h->e[i].name);
  for (size_t i = 0; i < h->nm; i++) {
    free(h->m[i].key);
    free(h->m[i].value);
  }
  free(h->e);
  free(h->m);
  memset(h, 0, sizeof *h);
}

static int oom(void) {
  sc_set_error("out of memory reading the header");
  return -1;
}

/* The dtype named by a "dtype" field, or -1 with the error set. */
static int dtype_of(const char *dt, const char *tensor) {
  int d = st_lookup(dt);
  if (d >= 0) return d;
  for (size_t k = 0; k < sizeof st_unsupported / sizeof *st_unsupported; k++)
    if (!strcmp(dt, st_unsupported[k])) {
      sc_set_error("tensor '%.*s' has dtype %s, which scorch cannot load (it "
                   "loads F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, "
                   "U16, U8 and BOOL)", SHOW(tensor), dt);
      return -1;
    }
  sc_set_error("tensor '%.*s' has unknown dtype \"%.*s\"", SHOW(tensor), SHOW(dt));
  return -1;
}

/* One field of a tensor description; `seen` counts fields met so far. */
static int parse_field(json *j, st_entry *e, const char *key, int seen[3]) {
  static const char *const fields[3] = {"dtype", "shape", "data_offsets"};
  int f = 0;
  while (f < 3 && strcmp(key, fields[f])) f++;
  if (f == 3) {
    sc_set_error("tensor '%.*s' has an unexpected field \"%.*s\"", SHOW(e->name),
                 SHOW(key));
    return -1;
  }
  if (seen[f]++) {
    sc_set_error("tensor '%.*s' has the field \"%s\" twice", SHOW(e->name), key);
    return -1;
  }
  if (f == 0) {
    char *dt;
    if (parse_string(j, &dt)) return -1;
    e->dtype = dtype_of(dt, e->name);
    free(dt);
    return e->dtype < 0 ? -1 : 0;
  }
  if (f == 1) {
    uint64_t v[SC_MAX_DIMS];
    int rc = parse_uint_array(j, v, SC_MAX_DIMS, &e->ndim,
                              "expected an array for \"shape\"");
    if (rc == -2)
      sc_set_error("tensor '%.*s' has more than %d dimensions", SHOW(e->name),
                   SC_MAX_DIMS);
    if (rc) return -1;
    for (int d = 0; d < e->ndim; d++) e->shape[d] = (int64_t)v[d];
    return 0;
  }
  uint64_t v[2];
  int cnt;
  int rc = parse_uint_array(j, v, 2, &cnt, "expected an array for \"data_offsets\"");
  if (rc == -1) return -1;
  if (rc == -2 || cnt != 2) {
    sc_set_error("tensor '%.*s': data_offsets must hold 2 numbers",
                 SHOW(e->name));
    return -1;
  }
  e->begin = v[0];
  e->end = v[1];
  return 0;
}

/* {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}: fields in any
   order, each exactly once, nothing else. */
static int parse_entry(json *j, st_entry *e) {
  int seen[3] = {0, 0, 0};
  if (expect(j, '{', "expected an object describing a tensor")) return -1;
  int c = peek(j);
  if (c == '}') j->i++;
  while (c != '}') {
    char *key;
    if (parse_string(j, &key)) return -1;
    int rc = expect(j, ':', "expected ':'") || parse_field(j, e, key, seen);
    free(key);
    if (rc) return -1;
    c = peek(j);
    if (c != ',' && c != '}')
      return jfail(j, "expected ',' or '}' in a tensor description");
    j->i++;
  }
  for (int f = 0; f < 3; f++)
    if (!seen[f]) {
      sc_set_error("tensor '%.*s' has no \"%s\"", SHOW(e->name),
                   f == 0 ? "dtype" : f == 1 ? "shape" : "data_offsets");
      return -1;
    }
  return 0;
}

/* {"k": "v", ...}: strings only. */
static int parse_metadata(json *j, st_header *h) {
  if (expect(j, '{', "expected an object for \"__metadata__\"")) return -1;
  int c = peek(j);
  if (c == '}') j->i++;
  while (c != '}') {
    if (grow((void **)&h->m, &h->mcap, h->nm, sizeof *h->m)) return oom();
    st_meta *m = &h->m[h->nm];
    m->key = m->value = NULL;
    if (parse_string(j, &m->key)) return -1;
    h->nm++; /* owned by h from here on */
    if (expect(j, ':', "expected ':'")) return -1;
    if (peek(j) != '"')
      return jfail(j, "__metadata__ values must be strings");
    if (parse_string(j, &m->value)) return -1;
    c = peek(j);
    if (c != ',' && c != '}') return jfail(j, "expected ',' or '}' in __metadata__");
    j->i++;
  }
  return 0;
}

static int cmp_str_ptr(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reports the first name given twice, or returns 0. */
static int check_unique(char **names, size_t n, const char *what) {
  for (size_t i = 1; i < n; i++)
    if (!strcmp(names[i - 1], names[i])) {
      sc_set_error("%s '%.*s' appears twice", what, SHOW(names[i]));
      return -1;
    }
  return 0;
}

static int cmp_offsets(const void *pa, const void *pb) {
  const st_entry *a = pa, *b = pb;
  if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
  if (a->end != b->end) return a->end < b->end ? -1 : 1;
  return strcmp(a->name, b->name);
}

/* Per tensor: the shape fits scorch and matches dtype and offsets, which
   lie inside the data.  Then, in offset order, the tensors tile the data
   section [0, data_len) exactly. */
static int validate(st_header *h, uint64_t data_len) {
  for (size_t i = 0; i < h->n; i++) {
    st_entry *e = &h->e[i];
    uint64_t nel = 1, nonzero = 1;
    char sbuf[200];
    for (int d = 0; d < e->ndim; d++) {
      uint64_t s = (uint64_t)e->shape[d];
      /* the product of the non-zero sizes bounds every stride */
      if (s && nonzero > (uint64_t)(INT64_MAX / 8) / s) {
        sc_set_error("tensor '%.*s' has shape %s, too large", SHOW(e->name),
                     sc_dims_str(e->ndim, e->shape, sbuf, sizeof sbuf));
        return -1;
      }
      if (s) nonzero *= s;
      nel *= s;
    }
    uint64_t nbytes = nel * st_sizes[e->dtype];
    if (e->begin > e->end) {
      sc_set_error("tensor '%.*s': data_offsets [%llu,%llu] end before they begin",
                   SHOW(e->name), (unsigned long long)e->begin,
                   (unsigned long long)e->end);
      return -1;
    }
    if (e->end > data_len) {
      sc_set_error("tensor '%.*s': data_offsets [%llu,%llu] run past the end of "
                   "the data (%llu bytes)", SHOW(e->name),
                   (unsigned long long)e->begin, (unsigned long long)e->end,
                   (unsigned long long)data_len);
      return -1;
    }
    if (e->end - e->begin != nbytes) {
      sc_set_error("tensor '%.*s': shape %s of %s needs %llu bytes, but "
                   "data_offsets [%llu,%llu] hold %llu", SHOW(e->name),
                   sc_dims_str(e->ndim, e->shape, sbuf, sizeof sbuf),
                   st_names[e->dtype], (unsigned long long)nbytes,
                   (unsigned long long)e->begin, (unsigned long long)e->end,
                   (unsigned long long)(e->end - e->begin));
      return -1;
    }
  }
  if (h->n > 1) qsort(h->e, h->n, sizeof *h->e, cmp_offsets);
  uint64_t at = 0;
  for (size_t i = 0; i < h->n; i++) {
    const st_entry *e = &h->e[i];
    if (e->begin < at) {
      sc_set_error("tensors '%.*s' and '%.*s' overlap ([%llu,%llu] and [%llu,%llu])",
                   SHOW(h->e[i - 1].name), SHOW(e->name),
                   (unsigned long long)h->e[i - 1].begin,
                   (unsigned long long)h->e[i - 1].end,
                   (unsigned long long)e->begin, (unsigned long long)e->end);
      return -1;
    }
    if (e->begin > at) {
      sc_set_error("data bytes [%llu,%llu) before tensor '%.*s' belong to no tensor",
                   (unsigned long long)at, (unsigned long long)e->begin,
                   SHOW(e->name));
      return -1;
    }
    at = e->end;
  }
  if (at != data_len) {
    sc_set_error("data section has %llu bytes, but the tensors cover only %llu",
                 (unsigned long long)data_len, (unsigned long long)at);
    return -1;
  }
  return 0;
}

/* The header text hdr[0, n) into *h, checked against a data section of
   data_len bytes. */
static int parse_header(const char *hdr, size_t n, uint64_t data_len,
                        st_header *h) {
  memset(h, 0, sizeof *h);
  size_t bad = utf8_check((const unsigned char *)hdr, n);
  if (bad < n) {
    sc_set_error("header is not valid UTF-8 (byte %zu)", bad);
    return -1;
  }
  if (n == 0 || hdr[0] != '{') {
    sc_set_error("header is not a JSON object (it must start with '{')");
    return -1;
  }
  json j = {hdr, n, 0};
  int seen_meta = 0;
  if (expect(&j, '{', "expected '{'")) return -1;
  int c = peek(&j);
  if (c == '}') j.i++;
  while (c != '}') {
    char *key;
    if (parse_string(&j, &key)) goto fail;
    if (expect(&j, ':', "expected ':'")) {
      free(key);
      goto fail;
    }
    if (!strcmp(key, "__metadata__")) {
      free(key);
      if (seen_meta++) {
        sc_set_error("key '__metadata__' appears twice");
        goto fail;
      }
      if (parse_metadata(&j, h)) goto fail;
    } else {
      if (grow((void **)&h->e, &h->cap, h->n, sizeof *h->e)) {
        free(key);
        oom();
        goto fail;
      }
      st_entry *e = &h->e[h->n++];
      memset(e, 0, sizeof *e);
      e->name = key;
      if (parse_entry(&j, e)) goto fail;
    }
    c = peek(&j);
    if (c != ',' && c != '}') {
      jfail(&j, "expected ',' or '}' after an entry");
      goto fail;
    }
    j.i++;
  }
  if (peek(&j) != -1) {
    jfail(&j, "unexpected text after the header object");
    goto fail;
  }
  /* names and metadata keys must be unique: sort pointers to them */
  size_t most = h->n > h->nm ? h->n : h->nm;
  char **tmp = malloc((most ? most : 1) * sizeof *tmp);
  if (!tmp) {
    oom();
    goto fail;
  }
  for (size_t i = 0; i < h->n; i++) tmp[i] = h->e[i].name;
  qsort(tmp, h->n, sizeof *tmp, cmp_str_ptr);
  int dup = check_unique(tmp, h->n, "tensor");
  if (!dup) {
    for (size_t i = 0; i < h->nm; i++) tmp[i] = h->m[i].key;
    qsort(tmp, h->nm, sizeof *tmp, cmp_str_ptr);
    dup = check_unique(tmp, h->nm, "metadata key");
  }
  free(tmp);
  if (dup || validate(h, data_len)) goto fail;
  return 0;
fail:
  header_free(h);
  return -1;
}

/* ---- tensors from the data --------------------------------------------------------- */

/* Where the data comes from: a memory image or an open file. */
typedef struct {
  const unsigned char *buf;
  FILE *f;
  uint64_t base; /* offset of the data section */
} st_source;

static int src_read(st_source *s, uint64_t off, void *dst, size_t len) {
  if (len == 0) return 0;
  if (s->buf) {
    memcpy(dst, s->buf + s->base + off, len);
    return 0;
  }
  if (s->base + off > (uint64_t)INT64_MAX ||
      fseeko(s->f, (off_t)(s->base + off), SEEK_SET) ||
      fread(dst, 1, len, s->f) != len)
    return -1;
  return 0;
}

static float half_to_float(unsigned h) {
  unsigned e = (h >> 10) & 0x1F, m = h & 0x3FF;
  float v;
  if (e == 0) v = ldexpf((float)m, -24);                 /* subnormal */
  else if (e == 31) v = m ? NAN : INFINITY;
  else v = ldexpf((float)(m | 0x400), (int)e - 25);
  return (h & 0x8000) ? -v : v;
}

#define LE16(q) ((unsigned)(q)[0] | (unsigned)(q)[1] << 8)
#define LE32(q) ((uint32_t)LE16(q) | (uint32_t)LE16((q) + 2) << 16)
#define LE64(q) ((uint64_t)LE32(q) | (uint64_t)LE32((q) + 4) << 32)

/* 32- and 64-bit integers: those float32 cannot always hold exactly. */
static int wide_int(int dt) {
  return dt == ST_I32 || dt == ST_U32 || dt == ST_I64 || dt == ST_U64;
}

/* Little-endian wide integers as doubles; *max_abs grows to the largest
   magnitude.  Returns the index of the first value past 2^53 (which a
   double would round), or n. */
static size_t convert_wide(int dt, const unsigned char *p, size_t n, double *out,
                           double *max_abs) {
  const uint64_t lim = (uint64_t)1 << 53;
  for (size_t k = 0; k < n; k++) {
    const unsigned char *q = p + k * st_sizes[dt];
    double v;
    if (dt == ST_I32) v = (double)(int32_t)LE32(q);
    else if (dt == ST_U32) v = (double)LE32(q);
    else if (dt == ST_U64) {
      uint64_t u = LE64(q);
      if (u > lim) return k;
      v = (double)u;
    } else {
      int64_t s = (int64_t)LE64(q);
      if (s > (int64_t)lim || s < -(int64_t)lim) return k;
      v = (double)s;
    }
    out[k] = v;
    if (fabs(v) > *max_abs) *max_abs = fabs(v);
  }
  return n;
}

/* Little-endian element k of p, as float, for the dtypes float32 holds
   exactly (BOOL, 8- and 16-bit integers, F16, BF16). */
static void convert(int dt, const unsigned char *p, size_t n, float *out) {
  for (size_t k = 0; k < n; k++) {
    const unsigned char *q = p + k * st_sizes[dt];
    switch (dt) {
      case ST_BOOL: out[k] = q[0] ? 1.0f : 0.0f; break;
      case ST_U8: out[k] = (float)q[0]; break;
      case ST_I8: out[k] = (float)(int8_t)q[0]; break;
      case ST_I16: out[k] = (float)(int16_t)LE16(q); break;
      case ST_U16: out[k] = (float)LE16(q); break;
      case ST_F16: out[k] = half_to_float(LE16(q)); break;
      case ST_BF16: {
        uint32_t bits = (uint32_t)LE16(q) << 16;
        memcpy(&out[k], &bits, 4);
        break;
      }
      default: out[k] = 0; break; /* F32/F64 and wide integers never come here */
    }
  }
}

#define CHUNK 65536

/* Wide integers go through float64 and end as float32 when every value
   is at most 2^24 in magnitude (so float32 holds them all exactly). */
static sc_tensor *load_entry(const st_entry *e, st_source *src,
                             unsigned char *tmp) {
  int native = e->dtype == ST_F32 || e->dtype == ST_F64;
  int wide = wide_int(e->dtype);
  sc_tensor *t = sc_empty(e->ndim, e->shape,
                          e->dtype == ST_F64 || wide ? SC_FLOAT64 : SC_FLOAT32);
  if (!t) return NULL;
  uint64_t nbytes = e->end - e->begin;
  if (nbytes > SIZE_MAX) goto short_read;
  if (native) {
    if (src_read(src, e->begin, sc_data(t), (size_t)nbytes)) goto short_read;
    return t;
  }
  size_t isz = st_sizes[e->dtype], per = CHUNK / isz;
  double max_abs = 0;
  for (uint64_t done = 0; done < nbytes / isz;) {
    size_t k = nbytes / isz - done < per ? (size_t)(nbytes / isz - done) : per;
    if (src_read(src, e->begin + done * isz, tmp, k * isz)) goto short_read;
    if (!wide) {
      convert(e->dtype, tmp, k, (float *)sc_data(t) + done);
    } else {
      size_t bad = convert_wide(e->dtype, tmp, k, (double *)sc_data(t) + done, &max_abs);
      if (bad < k) {
        sc_release(t);
        sc_set_error("tensor '%.*s' (%s) holds a value beyond 2^53 at element %llu, "
                     "which neither float32 nor float64 holds exactly", SHOW(e->name),
                     st_names[e->dtype], (unsigned long long)(done + bad + 1));
        return NULL;
      }
    }
    done += k;
  }
  if (wide && max_abs <= 16777216.0) { /* 2^24 */
    sc_tensor *f = sc_to_dtype(t, SC_FLOAT32);
    sc_release(t);
    return f;
  }
  return t;
short_read:
  sc_release(t);
  sc_set_error("cannot read the data of tensor '%.*s' (did the file change?)",
               SHOW(e->name));
  return NULL;
}

void sc_safetensors_free(sc_safetensors *st) {
  for (size_t i = 0; i < st->count; i++) {
    if (st->names) free(st->names[i]);
    if (st->tensors) sc_release(st->tensors[i]);
  }
  for (size_t i = 0; i < st->meta_count; i++) {
    free(st->meta_keys[i]);
    free(st->meta_values[i]);
  }
  free(st->names);
  free(st->dtypes);
  free(st->tensors);
  free(st->meta_keys);
  free(st->meta_values);
  memset(st, 0, sizeof *st);
}

/* Turns a validated header into tensors; h is consumed either way. */
static int build(st_header *h, st_source *src, int flags, sc_safetensors *out) {
  size_t n = h->n ? h->n : 1, nm = h->nm ? h->nm : 1;
  if (!(flags & SC_SAFETENSORS_CONVERT))
    for (size_t i = 0; i < h->n; i++) {
      const st_entry *e = &h->e[i];
      if (e->dtype == ST_F32 || e->dtype == ST_F64) continue;
      sc_set_error("tensor '%.*s' has dtype %s, and scorch tensors are float32 or "
                   "float64: load with {convert = true} to convert it (exactly: to "
                   "float32, or float64 for integers past 2^24)", SHOW(e->name),
                   st_names[e->dtype]);
      header_free(h);
      return SC_SAFETENSORS_EDTYPE;
    }
  unsigned char *tmp = malloc(CHUNK);
  out->names = calloc(n, sizeof *out->names);
  out->dtypes = calloc(n, sizeof *out->dtypes);
  out->tensors = calloc(n, sizeof *out->tensors);
  out->meta_keys = calloc(nm, sizeof *out->meta_keys);
  out->meta_values = calloc(nm, sizeof *out->meta_values);
  if (!tmp || !out->names || !out->dtypes || !out->tensors || !out->meta_keys ||
      !out->meta_values) {
    free(tmp);
    header_free(h);
    sc_safetensors_free(out);
    return oom();
  }
  /* names and metadata change hands now, so nothing is freed twice */
  out->count = h->n;
  for (size_t i = 0; i < h->n; i++) {
    out->names[i] = h->e[i].name;
    out->dtypes[i] = st_names[h->e[i].dtype];
    h->e[i].name = NULL;
  }
  out->meta_count = h->nm;
  for (size_t i = 0; i < h->nm; i++) {
    out->meta_keys[i] = h->m[i].key;
    out->meta_values[i] = h->m[i].value;
  }
  h->nm = 0;
  int rc = 0;
  for (size_t i = 0; i < h->n && !rc; i++) {
    h->e[i].name = out->names[i]; /* borrowed, for messages */
    out->tensors[i] = load_entry(&h->e[i], src, tmp);
    h->e[i].name = NULL;
    rc = out->tensors[i] ? 0 : -1;
  }
  free(tmp);
  header_free(h);
  if (rc) sc_safetensors_free(out);
  return rc;
}

/* Re-issues the current error with a prefix ("load: path: ..."). */
static int prefixed(const char *fn, const char *path) {
  char msg[512];
  snprintf(msg, sizeof msg, "%s", sc_error());
  if (path)
    sc_set_error("%s: %s: %s", fn, path, msg);
  else
    sc_set_error("%s: %s", fn, msg);
  return -1;
}

static uint64_t le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int k = 7; k >= 0; k--) v = v << 8 | p[k];
  return v;
}

/* Checks the 8-byte length prefix against the file size. */
static int check_length(uint64_t n, uint64_t size) {
  if (n > SC_SAFETENSORS_MAX_HEADER) {
    sc_set_error("header length %llu exceeds the limit of %u bytes",
                 (unsigned long long)n, SC_SAFETENSORS_MAX_HEADER);
    return -1;
  }
  if (n > size - 8) {
    sc_set_error("truncated file: header says %llu bytes, only %llu follow "
                 "the 8-byte length", (unsigned long long)n,
                 (unsigned long long)(size - 8));
    return -1;
  }
  return 0;
}

int sc_safetensors_parse(const unsigned char *buf, size_t len,
                         sc_safetensors *out) {
  memset(out, 0, sizeof *out);
  st_header h;
  if (len < 8) {
    sc_set_error("truncated file: %zu bytes, too short for the 8-byte header "
                 "length", len);
    return prefixed("load", NULL);
  }
  uint64_t n = le64(buf);
  if (check_length(n, len) ||
      parse_header((const char *)buf + 8, (size_t)n, len - 8 - n, &h))
    return prefixed("load", NULL);
  st_source src = {buf, NULL, 8 + n};
  if (build(&h, &src, SC_SAFETENSORS_CONVERT, out)) return prefixed("load", NULL);
  return 0;
}

int sc_safetensors_load(const char *path, int flags, sc_safetensors *out) {
  memset(out, 0, sizeof *out);
  FILE *f = fopen(path, "rb");
  if (!f) {
    sc_set_error("load: cannot open %s: %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  unsigned char len8[8];
  char *hdr = NULL;
  st_header h;
  int rc = -1;
  if (fstat(fileno(f), &st)) {
    sc_set_error("cannot stat: %s", strerror(errno));
    goto fail;
  }
  if (!S_ISREG(st.st_mode)) {
    sc_set_error("not a regular file");
    goto fail;
  }
  uint64_t size = (uint64_t)st.st_size;
  if (size < 8 || fread(len8, 1, 8, f) != 8) {
    sc_set_error("truncated file: %llu bytes, too short for the 8-byte header "
                 "length", (unsigned long long)size);
    goto fail;
  }
  uint64_t n = le64(len8);
  if (check_length(n, size)) goto fail;
  hdr = malloc(n ? (size_t)n : 1);
  if (!hdr) {
    oom();
    goto fail;
  }
  if (fread(hdr, 1, (size_t)n, f) != n) {
    sc_set_error("cannot read the header: %s", ferror(f) ? strerror(errno) : "file ended");
    goto fail;
  }
  if (parse_header(hdr, (size_t)n, size - 8 - n, &h)) goto fail;
  free(hdr);
  hdr = NULL;
  st_source src = {NULL, f, 8 + n};
  rc = build(&h, &src, flags, out);
  if (rc) goto fail;
  fclose(f);
  return 0;
fail:
  free(hdr);
  fclose(f);
  prefixed("load", path);
  return rc;
}

/* ---- atomic replacement ----------------------------------------------------------- */

int sc_atomic_open(sc_atomic_file *af, const char *path, const char *fn) {
  memset(af, 0, sizeof *af);
  size_t len = strlen(path);
  af->path = dup_str(path);
  af->tmp_path = malloc(len + 32);
  if (!af->path || !af->tmp_path) {
    sc_set_error("%s: out of memory", fn);
    goto fail;
  }
  snprintf(af->tmp_path, len + 32, "%s.tmp.%ld", path, (long)getpid());
  /* O_NOFOLLOW: a stale temporary that is a symlink is not followed */
  int fd = open(af->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                0666);
  if (fd < 0) {
    sc_set_error("%s: cannot write %s: %s", fn, path, strerror(errno));
    goto fail;
  }
  af->fp = fdopen(fd, "wb");
  if (!af->fp) {
    sc_set_error("%s: cannot write %s: %s", fn, path, strerror(errno));
    close(fd);
    unlink(af->tmp_path);
    goto fail;
  }
  return 0;
fail:
  free(af->path);
  free(af->tmp_path);
  memset(af, 0, sizeof *af);
  return -1;
}

void sc_atomic_abort(sc_atomic_file *af) {
  if (af->fp) fclose(af->fp);
  if (af->tmp_path) unlink(af->tmp_path);
  free(af->path);
  free(af->tmp_path);
  memset(af, 0, sizeof *af);
}

/* fsync of the directory holding path, so the rename itself is durable.
   Best effort: some file systems refuse it, and the data is in place. */
static void sync_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir;
  if (!slash) {
    dir = dup_str(".");
  } else {
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    dir = malloc(n + 1);
    if (dir) {
      memcpy(dir, path, n);
      dir[n] = 0;
    }
  }
  if (!dir) return;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  free(dir);
}

int sc_atomic_commit(sc_atomic_file *af, const char *fn) {
  FILE *f = af->fp;
  int err = 0;
  af->fp = NULL;
  if (ferror(f)) err = EIO;
  if (!err && fflush(f)) err = errno;
  if (!err && fsync(fileno(f))) err = errno;
  if (fclose(f) && !err) err = errno;
  if (!err && rename(af->tmp_path, af->path)) err = errno;
  if (err) {
    sc_set_error("%s: cannot write %s: %s", fn, af->path, strerror(err));
    sc_atomic_abort(af);
    return -1;
  }
  sync_dir(af->path);
  free(af->path);
  free(af->tmp_path);
  memset(af, 0, sizeof *af);
  return 0;
}

/* ---- the writer -------------------------------------------------------------------- */

typedef struct {
  char *p;
  size_t n, cap;
  int failed;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
  if (b->failed) return;
  if (b->n + n + 1 > b->cap) {
    size_t nc = b->cap ? b->cap : 256;
    while (nc < b->n + n + 1) nc *= 2;
    char *p = realloc(b->p, nc);
    if (!p) {
      b->failed = 1;
      return;
    }
    b->p = p;
    b->cap = nc;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
}

static void sb_lit(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_u64(sbuf *b, uint64_t v) {
  char tmp[24];
  int k = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
  sb_add(b, tmp, (size_t)k);
}

/* A JSON string escaped as serde_json (the reference writer) escapes it:
   '"', '\\' and control characters only; UTF-8 passes through. */
static void sb_str(sbuf *b, const char *s) {
  sb_lit(b, "\"");
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    const char *esc = NULL;
    char tmp[8];
    switch (*p) {
      case '"': esc = "\\\""; break;
      case '\\': esc = "\\\\"; break;
      case '\b': esc = "\\b"; break;
      case '\f': esc = "\\f"; break;
      case '\n': esc = "\\n"; break;
      case '\r': esc = "\\r"; break;
      case '\t': esc = "\\t"; break;
      default:
        if (*p < 0x20) {
          snprintf(tmp, sizeof tmp, "\\u%04x", *p);
          esc = tmp;
        }
    }
    if (esc) sb_lit(b, esc);
    else sb_add(b, (const char *)p, 1);
  }
  sb_lit(b, "\"");
}

typedef struct {
  const char *name;
  sc_tensor *t;
  int dtype; /* ST_F32 or ST_F64 */
} st_item;

/* The reference writer's order: larger dtypes first, then by name. */
static int cmp_items(const void *pa, const void *pb) {
  const st_item *a = pa, *b = pb;
  if (a->dtype != b->dtype) return a->dtype > b->dtype ? -1 : 1;
  return strcmp(a->name, b->name);
}

static int cmp_meta_idx(const void *pa, const void *pb) {
  const char *const *a = pa, *const *b = pb;
  return strcmp(a[0], b[0]);
}

static int valid_utf8(const char *s) {
  size_t n = strlen(s);
  return utf8_check((const unsigned char *)s, n) == n;
}

/* The padded JSON header, or NULL (out of memory). */
static char *make_header(st_item *items, size_t n, const char **meta, size_t nmeta,
                         size_t *len) {
  sbuf b = {NULL, 0, 0, 0};
  uint64_t offset = 0;
  sb_lit(&b, "{");
  if (nmeta) {
    sb_lit(&b, "\"__metadata__\":{");
    for (size_t i = 0; i < nmeta; i++) {
      if (i) sb_lit(&b, ",");
      sb_str(&b, meta[2 * i]);
      sb_lit(&b, ":");
      sb_str(&b, meta[2 * i + 1]);
    }
    sb_lit(&b, "}");
  }
  for (size_t i = 0; i < n; i++) {
    const sc_tensor *t = items[i].t;
    uint64_t nbytes = (uint64_t)t->numel * sc_dtype_size(t->dtype);
    if (nmeta || i) sb_lit(&b, ",");
    sb_str(&b, items[i].name);
    sb_lit(&b, ":{\"dtype\":\"");
    sb_lit(&b, st_names[items[i].dtype]);
    sb_lit(&b, "\",\"shape\":[");
    for (int d = 0; d < t->ndim; d++) {
      if (d) sb_lit(&b, ",");
      sb_u64(&b, (uint64_t)t->shape[d]);
    }
    sb_lit(&b, "],\"data_offsets\":[");
    sb_u64(&b, offset);
    sb_lit(&b, ",");
    sb_u64(&b, offset + nbytes);
    sb_lit(&b, "]}");
    offset += nbytes;
  }
  sb_lit(&b, "}");
  while (!b.failed && b.n % 8) sb_lit(&b, " ");
  if (b.failed) {
    free(b.p);
    return NULL;
  }
  *len = b.n;
  return b.p;
}

/* Writes t's elements in row-major order. */
static int write_tensor(FILE *f, sc_tensor *t) {
  if (t->numel == 0) return 0;
  size_t nbytes = (size_t)t->numel * sc_dtype_size(t->dtype);
  if (sc_is_contiguous(t)) return fwrite(sc_data(t), 1, nbytes, f) == nbytes ? 0 : -1;
  /* a copy made from a detached alias records no graph */
  sc_tensor *d = sc_detach(t);
  sc_tensor *c = d ? sc_contiguous(d) : NULL;
  sc_release(d);
  if (!c) return -2;
  int rc = fwrite(sc_data(c), 1, nbytes, f) == nbytes ? 0 : -1;
  sc_release(c);
  return rc;
}

int sc_safetensors_save(const char *path, size_t n, const char *const *names,
                        sc_tensor *const *tensors, size_t nmeta,
                        const char *const *meta_keys,
                        const char *const *meta_values) {
  if (!path || !*path) {
    sc_set_error("save: empty path");
    return SC_SAFETENSORS_EINVAL;
  }
  if (n > SIZE_MAX / sizeof(st_item) / 2 || nmeta > SIZE_MAX / sizeof(char *) / 4) {
    sc_set_error("save: too many entries");
    return SC_SAFETENSORS_EINVAL;
  }
  st_item *items = malloc((n ? n : 1) * sizeof *items);
  const char **meta = malloc((nmeta ? 2 * nmeta : 1) * sizeof *meta);
  const char **sorted = malloc((n ? n : 1) * sizeof *sorted);
  char *hdr = NULL;
  int rc = SC_SAFETENSORS_EINVAL;
  if (!items || !meta || !sorted) {
    sc_set_error("save: out of memory");
    rc = SC_SAFETENSORS_EIO;
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    if (!names[i] || !tensors[i]) {
      sc_set_error("save: entry %zu has no name or no tensor", i + 1);
      goto done;
    }
    if (!valid_utf8(names[i])) {
      sc_set_error("save: tensor name '%.*s' is not valid UTF-8", SHOW(names[i]));
      goto done;
    }
    if (!strcmp(names[i], "__metadata__")) {
      sc_set_error("save: '__metadata__' cannot name a tensor (it holds the metadata)");
      goto done;
    }
    items[i].name = sorted[i] = names[i];
    items[i].t = tensors[i];
    items[i].dtype = tensors[i]->dtype == SC_FLOAT64 ? ST_F64 : ST_F32;
  }
  qsort(sorted, n, sizeof *sorted, cmp_str_ptr);
  for (size_t i = 1; i < n; i++)
    if (!strcmp(sorted[i - 1], sorted[i])) {
      sc_set_error("save: tensor name '%.*s' appears twice", SHOW(sorted[i]));
      goto done;
    }
  for (size_t i = 0; i < nmeta; i++) {
    if (!meta_keys[i] || !meta_values[i]) {
      sc_set_error("save: metadata entry %zu has no key or no value", i + 1);
      goto done;
    }
    if (!valid_utf8(meta_keys[i]) || !valid_utf8(meta_values[i])) {
      sc_set_error("save: metadata '%.*s' is not valid UTF-8", SHOW(meta_keys[i]));
      goto done;
    }
    meta[2 * i] = meta_keys[i];
    meta[2 * i + 1] = meta_values[i];
  }
  /* pairs sorted by key: a stable header for the same input */
  qsort(meta, nmeta, 2 * sizeof *meta, cmp_meta_idx);
  for (size_t i = 1; i < nmeta; i++)
    if (!strcmp(meta[2 * i - 2], meta[2 * i])) {
      sc_set_error("save: metadata key '%.*s' appears twice", SHOW(meta[2 * i]));
      goto done;
    }
  qsort(items, n, sizeof *items, cmp_items);

  size_t hlen = 0;
  hdr = make_header(items, n, meta, nmeta, &hlen);
  rc = SC_SAFETENSORS_EIO;
  if (!hdr) {
    sc_set_error("save: out of memory");
    goto done;
  }
  sc_atomic_file af;
  if (sc_atomic_open(&af, path, "save")) goto done;
  unsigned char len8[8];
  for (int k = 0; k < 8; k++) len8[k] = (unsigned char)((uint64_t)hlen >> (8 * k));
  int bad = fwrite(len8, 1, 8, af.fp) != 8 || fwrite(hdr, 1, hlen, af.fp) != hlen;
  for (size_t i = 0; i < n && !bad; i++) bad = write_tensor(af.fp, items[i].t);
  if (bad) {
    int err = errno;
    if (bad == -2)
      prefixed("save", path);
    else
      sc_set_error("save: cannot write %s: %s", path, strerror(err));
    sc_atomic_abort(&af);
    goto done;
  }
  if (sc_atomic_commit(&af, "save")) goto done;
  rc = 0;
done:
  free(items);
  free(meta);
  free(sorted);
  free(hdr);
  return rc;
}
