/*
 * scorch core: UTF-8 text to an 8-bit coverage bitmap through stb_truetype.
 */
#include "font.h"
#include "tensor.h" /* sc_set_error */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* stb's implementation, private to this file. */
#define STB_TRUETYPE_IMPLEMENTATION
#define STBTT_STATIC
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include <stb/stb_truetype.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

/* A font file is a few hundred kilobytes; anything beyond this is not one. */
#define MAX_FONT_BYTES ((long)64 << 20)
/* Largest bitmap handed out (a title is ~ 1000 × 40). */
#define MAX_BITMAP_BYTES ((size_t)1 << 26)

struct sc_font {
  unsigned char *data;
  stbtt_fontinfo info;
  int ascent, descent; /* font units, descent negative */
  int units_per_em;
};

/* ---- loading ----------------------------------------------------------------------- */

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The table directory at `off` stays inside the file: stb_truetype trusts
   it, so a wrong file (a PNG named by $SCORCH_FONT) must stop here. */
static int directory_ok(const unsigned char *d, size_t n, size_t off) {
  if (off > n || n - off < 12) return 0;
  uint32_t tag = be32(d + off);
  if (tag != 0x00010000u && tag != 0x74727565u /* true */ && tag != 0x4F54544Fu /* OTTO */)
    return 0;
  size_t tables = (size_t)d[off + 4] << 8 | d[off + 5];
  if (tables == 0 || (n - off - 12) / 16 < tables) return 0;
  for (size_t i = 0; i < tables; i++) {
    const unsigned char *e = d + off + 12 + 16 * i;
    uint64_t start = be32(e + 8), len = be32(e + 12);
    if (start + len > n) return 0;
  }
  return 1;
}

sc_font *sc_font_load(const char *path) {
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    sc_set_error("font: cannot open %s: %s", path, strerror(errno));
    return NULL;
  }
  long n = -1;
  if (fseek(fp, 0, SEEK_END) == 0) n = ftell(fp);
  if (n < 12 || n > MAX_FONT_BYTES || fseek(fp, 0, SEEK_SET) != 0) {
    fclose(fp);
    sc_set_error("font: %s is not a font file (size %ld)", path, n);
    return NULL;
  }
  sc_font *f = calloc(1, sizeof *f);
  unsigned char *d = malloc((size_t)n);
  size_t got = d ? fread(d, 1, (size_t)n, fp) : 0;
  fclose(fp);
  if (!f || !d) {
    free(f);
    free(d);
    sc_set_error("font: out of memory loading %s", path);
    return NULL;
  }
  f->data = d;
  int off = got == (size_t)n ? stbtt_GetFontOffsetForIndex(d, 0) : -1;
  if (off < 0 || !directory_ok(d, (size_t)n, (size_t)off) || !stbtt_InitFont(&f->info, d, off)) {
    sc_font_free(f);
    sc_set_error("font: %s is not a TrueType/OpenType font", path);
    return NULL;
  }
  int gap;
  stbtt_GetFontVMetrics(&f->info, &f->ascent, &f->descent, &gap);
  f->units_per_em = ttUSHORT(f->info.data + f->info.head + 18);
  if (f->units_per_em <= 0 || f->ascent <= f->descent) {
    sc_font_free(f);
    sc_set_error("font: %s has bad metrics", path);
    return NULL;
  }
  return f;
}

void sc_font_free(sc_font *f) {
  if (!f) return;
  free(f->data);
  free(f);
}

int sc_font_has_glyph(const sc_font *f, uint32_t cp) {
  return cp <= 0x10FFFF && stbtt_FindGlyphIndex(&f->info, (int)cp) != 0;
}

/* ---- layout ------------------------------------------------------------------------ */

/* The next code point of s[*i..n); malformed or overlong sequences and
   surrogates give U+FFFD and consume one byte. */
static uint32_t next_cp(const unsigned char *s, size_t n, size_t *i) {
  uint32_t c = s[*i];
  if (c < 0x80) {
    (*i)++;
    return c;
  }
  int more = c >= 0xF0 && c < 0xF5 ? 3 : c >= 0xE0 ? 2 : c >= 0xC2 && c < 0xE0 ? 1 : -1;
  if (c >= 0xF5) more = -1;
  if (more < 0 || n - *i <= (size_t)more) {
    (*i)++;
    return 0xFFFD;
  }
  uint32_t cp = c & (0x3F >> more);
  for (int k = 1; k <= more; k++) {
    unsigned char b = s[*i + (size_t)k];
    if ((b & 0xC0) != 0x80) {
      (*i)++;
      return 0xFFFD;
    }
    cp = cp << 6 | (b & 0x3F);
  }
  static const uint32_t least[4] = {0, 0x80, 0x800, 0x10000};
  if (cp < least[more] || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) {
    (*i)++;
    return 0xFFFD;
  }
  *i += (size_t)more + 1;
  return cp;
}

/* One placed glyph: its index and pen position (pixels from the origin). */
typedef struct {
  int glyph;
  float pen;
} placed;

static float scale_of(const sc_font *f, double px) { return (float)(px / f->units_per_em); }

static int check_size(double px) {
  if (!(px >= 1 && px <= SC_FONT_MAX_PX)) {
    sc_set_error("font: size %g is outside [1, %g] pixels", px, SC_FONT_MAX_PX);
    return -1;
  }
  return 0;
}

/* Places the glyphs of s; returns their count (-1 and a message when the
   string is too long) and the pen's end in *end. */
static int layout(const sc_font *f, const char *s, size_t len, float scale, placed *out,
                  float *end) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  int count = 0, prev = 0;
  float pen = 0;
  while (i < len) {
    uint32_t cp = next_cp(u, len, &i);
    if (count == SC_FONT_MAX_CHARS) {
      sc_set_error("font: text longer than %d characters", SC_FONT_MAX_CHARS);
      return -1;
    }
    int g = stbtt_FindGlyphIndex(&f->info, (int)cp);
    if (prev) pen += scale * (float)stbtt_GetGlyphKernAdvance(&f->info, prev, g);
    int advance, lsb;
    stbtt_GetGlyphHMetrics(&f->info, g, &advance, &lsb);
    out[count].glyph = g;
    out[count].pen = pen;
    count++;
    pen += scale * (float)advance;
    prev = g;
  }
  *end = pen;
  return count;
}

void sc_font_line(const sc_font *f, double px, int *ascent, int *descent) {
  float scale = scale_of(f, px);
  *ascent = (int)ceilf(scale * (float)f->ascent);
  *descent = (int)ceilf(-scale * (float)f->descent);
}

double sc_font_width(const sc_font *f, const char *s, size_t len, double px) {
  if (check_size(px)) return -1;
  placed *p = malloc(SC_FONT_MAX_CHARS * sizeof *p);
  if (!p) {
    sc_set_error("font: out of memory");
    return -1;
  }
  float end = 0;
  int n = layout(f, s, len, scale_of(f, px), p, &end);
  free(p);
  return n < 0 ? -1 : (double)end;
}

/* ---- rendering --------------------------------------------------------------------- */

unsigned char *sc_font_render(const sc_font *f, const char *s, size_t len, double px,
                              int *w, int *h, int *origin, int *baseline) {
  if (check_size(px)) return NULL;
  float scale = scale_of(f, px);
  placed *p = malloc(SC_FONT_MAX_CHARS * sizeof *p);
  if (!p) {
    sc_set_error("font: out of memory");
    return NULL;
  }
  float end = 0;
  int n = layout(f, s, len, scale, p, &end);
  if (n < 0) {
    free(p);
    return NULL;
  }
  /* the union of the line box and every glyph's ink box, in pixels from
     the pen origin on the baseline (y down) */
  int asc, desc;
  sc_font_line(f, px, &asc, &desc);
  int left = 0, right = (int)ceilf(end), top = -asc, bottom = desc, biggest = 0;
  for (int k = 0; k < n; k++) {
    int x0, y0, x1, y1;
    float whole = floorf(p[k].pen);
    stbtt_GetGlyphBitmapBoxSubpixel(&f->info, p[k].glyph, scale, scale, p[k].pen - whole, 0,
                                    &x0, &y0, &x1, &y1);
    if (x1 <= x0 || y1 <= y0) continue;
    int ix = (int)whole;
    if (ix + x0 < left) left = ix + x0;
    if (ix + x1 > right) right = ix + x1;
    if (y0 < top) top = y0;
    if (y1 > bottom) bottom = y1;
    if ((x1 - x0) * (y1 - y0) > biggest) biggest = (x1 - x0) * (y1 - y0);
  }
  size_t bw = (size_t)(right - left), bh = (size_t)(bottom - top);
  if (bw * bh > MAX_BITMAP_BYTES) {
    free(p);
    sc_set_error("font: text bitmap of %zu × %zu pixels is too large", bw, bh);
    return NULL;
  }
  size_t bytes = bw * bh > 0 ? bw * bh : 1; /* an empty string: one byte */
  unsigned char *out = calloc(bytes, 1);
  unsigned char *glyph = malloc(biggest ? (size_t)biggest : 1);
  if (!out || !glyph) {
    free(p);
    free(out);
    free(glyph);
    sc_set_error("font: out of memory");
    return NULL;
  }
  for (int k = 0; k < n; k++) {
    int x0, y0, x1, y1;
    float whole = floorf(p[k].pen), shift = p[k].pen - whole;
    stbtt_GetGlyphBitmapBoxSubpixel(&f->info, p[k].glyph, scale, scale, shift, 0, &x0, &y0,
                                    &x1, &y1);
    int gw = x1 - x0, gh = y1 - y0;
    if (gw <= 0 || gh <= 0) continue;
    stbtt_MakeGlyphBitmapSubpixel(&f->info, glyph, gw, gh, gw, scale, scale, shift, 0,
                                  p[k].glyph);
    /* neighbours' anti-aliased edges overlap: coverage adds, saturating */
    size_t ox = (size_t)((int)whole + x0 - left), oy = (size_t)(y0 - top);
    for (int y = 0; y < gh; y++) {
      unsigned char *row = out + (oy + (size_t)y) * bw + ox;
      const unsigned char *src = glyph + (size_t)y * (size_t)gw;
      for (int x = 0; x < gw; x++) {
        int v = row[x] + src[x];
        row[x] = (unsigned char)(v > 255 ? 255 : v);
      }
    }
  }
  free(glyph);
  free(p);
  *w = (int)bw;
  *h = (int)bh;
  *origin = -left;
  *baseline = -top;
  return out;
}
