/*
 * scorch core: text rasterised from a TrueType font (stb_truetype), for the
 * plots' titles, axis labels and ticks.
 *
 * Plain C11, no Lua headers.  Failures return NULL / -1 with a message in
 * sc_error() ("font: ...").  The font file is trusted: stb_truetype checks
 * its tables only loosely, so only a font from the system or the user
 * ($SCORCH_FONT) is loaded, never one from a download.
 */
#ifndef SC_FONT_H
#define SC_FONT_H

#include <stddef.h>
#include <stdint.h>

typedef struct sc_font sc_font;

/* Longest string drawn, in code points, and the largest pixel size: they
   bound a bitmap's size (8192 × 512 × 512 bytes at worst is refused). */
#define SC_FONT_MAX_CHARS 1024
#define SC_FONT_MAX_PX 256.0

/* Loads a .ttf/.otf file (the first font of a collection). */
sc_font *sc_font_load(const char *path);
void sc_font_free(sc_font *f);

/* Sizes px are the em size in pixels, as CSS's font-size (DejaVu Sans at
   11 px has capitals 8 px tall).  Line metrics: ascent above and descent
   below the baseline, in whole pixels. */
void sc_font_line(const sc_font *f, double px, int *ascent, int *descent);

/* The advance width of a UTF-8 string at size px, kerning included
   (malformed bytes count as U+FFFD).  -1 and a message for a bad size or
   a string that is too long. */
double sc_font_width(const sc_font *f, const char *s, size_t len, double px);

/* The string's coverage bitmap: 8-bit, row-major, w × h, top row first.
   The pen starts at column *origin (> 0 when a glyph reaches left of it)
   and the baseline is row *baseline; the bitmap covers the line box (ascent
   + descent) and any ink beyond it.  Code points the font lacks draw its
   missing-glyph box.  Returns a malloc'ed array (w or h may be 0 for an
   empty string: then a 1-byte array), or NULL and a message. */
unsigned char *sc_font_render(const sc_font *f, const char *s, size_t len, double px,
                              int *w, int *h, int *origin, int *baseline);

/* Whether the font has a glyph for code point cp. */
int sc_font_has_glyph(const sc_font *f, uint32_t cp);

#endif
