/*
 * scorch binding: TrueType text for sc.viz, kept under sc.core.font.
 *
 *   font.load(path)              → font | nil, msg (missing or not a font)
 *   f:render(text, px)           → coverage bytes (string, w·h, row-major),
 *                                  w, h, origin column, baseline row
 *   f:width(text, px)            → advance width in pixels (a float)
 *   f:line(px)                   → ascent, descent (whole pixels)
 *   f:has_glyph(cp)              → boolean
 *
 * px is the em size in pixels (CSS's font-size).  Columns and rows count
 * from 0 as in the bitmap; the canvas adds its own 1-based offsets.
 */
#include <stdlib.h>
#include <string.h>

#include "binding.h"
#include "../core/font.h"

#define SC_FONT_MT "scorch.Font"

static sc_font **check_slot(lua_State *L) { return luaL_checkudata(L, 1, SC_FONT_MT); }

static sc_font *check_font(lua_State *L) {
  sc_font *f = *check_slot(L);
  if (!f) luaL_argerror(L, 1, "font is closed");
  return f;
}

static double check_px(lua_State *L, int idx) {
  double px = luaL_checknumber(L, idx);
  if (!(px >= 1 && px <= SC_FONT_MAX_PX))
    luaL_argerror(L, idx, lua_pushfstring(L, "size must be in [1, %d] pixels", (int)SC_FONT_MAX_PX));
  return px;
}

/* __gc and __close */
static int f_gc(lua_State *L) {
  sc_font **slot = check_slot(L);
  sc_font_free(*slot);
  *slot = NULL;
  return 0;
}

static int f_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  sc_font **slot = lua_newuserdatauv(L, sizeof *slot, 0);
  *slot = NULL;
  luaL_setmetatable(L, SC_FONT_MT);
  *slot = sc_font_load(path);
  if (*slot) return 1;
  luaL_pushfail(L);
  lua_pushfstring(L, "scorch.%s", sc_error());
  return 2;
}

static int f_render(lua_State *L) {
  sc_font *f = check_font(L);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  double px = check_px(L, 3);
  int w, h, origin, baseline;
  unsigned char *bits = sc_font_render(f, s, len, px, &w, &h, &origin, &baseline);
  if (!bits) return luaL_error(L, "scorch.%s", sc_error());
  /* lua_pushlstring may raise (memory): the bitmap goes into a buffer the
     collector owns first */
  unsigned char *copy = lua_newuserdatauv(L, (size_t)w * (size_t)h + 1, 0);
  memcpy(copy, bits, (size_t)w * (size_t)h);
  free(bits);
  lua_pushlstring(L, (const char *)copy, (size_t)w * (size_t)h);
  lua_pushinteger(L, w);
  lua_pushinteger(L, h);
  lua_pushinteger(L, origin);
  lua_pushinteger(L, baseline);
  return 5;
}

static int f_width(lua_State *L) {
  sc_font *f = check_font(L);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  double w = sc_font_width(f, s, len, check_px(L, 3));
  if (w < 0) return luaL_error(L, "scorch.%s", sc_error());
  lua_pushnumber(L, w);
  return 1;
}

static int f_line(lua_State *L) {
  sc_font *f = check_font(L);
  int ascent, descent;
  sc_font_line(f, check_px(L, 2), &ascent, &descent);
  lua_pushinteger(L, ascent);
  lua_pushinteger(L, descent);
  return 2;
}

static int f_has_glyph(lua_State *L) {
  sc_font *f = check_font(L);
  lua_Integer cp = luaL_checkinteger(L, 2);
  lua_pushboolean(L, cp >= 0 && cp <= 0x10FFFF && sc_font_has_glyph(f, (uint32_t)cp));
  return 1;
}

static int f_tostring(lua_State *L) {
  lua_pushstring(L, *check_slot(L) ? "scorch.Font" : "scorch.Font (closed)");
  return 1;
}

void sc_lua_open_font(lua_State *L) {
  static const luaL_Reg methods[] = {{"render", f_render}, {"width", f_width},
                                     {"line", f_line},     {"has_glyph", f_has_glyph},
                                     {NULL, NULL}};
  luaL_newmetatable(L, SC_FONT_MT);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, f_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, f_gc);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, f_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushcfunction(L, f_load);
  lua_setfield(L, -2, "load");
  lua_setfield(L, -2, "font");
}
