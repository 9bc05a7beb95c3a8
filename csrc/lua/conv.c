/* scorch binding: image unfolding and resampling ops (see core/conv.h). */
#include "binding.h"

#include "../core/conv.h"

/* A size given as a number or {h, w}; returns both. */
static void pair_field(lua_State *L, int opts, const char *key, int64_t def,
                       int64_t *h, int64_t *w, const char *fn) {
  *h = *w = def;
  if (!lua_istable(L, opts)) return;
  int t = lua_getfield(L, opts, key);
  if (t == LUA_TNUMBER) {
    *h = *w = (int64_t)luaL_checkinteger(L, -1);
  } else if (t == LUA_TTABLE) {
    lua_geti(L, -1, 1);
    lua_geti(L, -2, 2);
    int ok1, ok2;
    *h = (int64_t)lua_tointegerx(L, -2, &ok1);
    *w = (int64_t)lua_tointegerx(L, -1, &ok2);
    if (!ok1 || !ok2)
      luaL_error(L, "scorch.%s: option '%s' must be an integer or {h, w}", fn, key);
    lua_pop(L, 2);
  } else if (t != LUA_TNIL) {
    luaL_error(L, "scorch.%s: option '%s' must be an integer or {h, w} (got %s)",
               fn, key, luaL_typename(L, -1));
  }
  lua_pop(L, 1);
}

static void read_geom(lua_State *L, int opts, sc_conv_geom *g, const char *fn) {
  if (!lua_istable(L, opts)) luaL_typeerror(L, opts, "options table with kernel");
  pair_field(L, opts, "kernel", 0, &g->kh, &g->kw, fn);
  pair_field(L, opts, "stride", 1, &g->sh, &g->sw, fn);
  pair_field(L, opts, "padding", 0, &g->ph, &g->pw, fn);
  pair_field(L, opts, "dilation", 1, &g->dh, &g->dw, fn);
}

#define RESULT(expr)                                                        \
  do {                                                                      \
    sc_tensor **slot_ = sc_lua_newslot(L);                                  \
    return sc_lua_fill(L, slot_, (expr));                                   \
  } while (0)

/* im2col(x, {kernel=, stride=, padding=, dilation=}) */
static int l_im2col(lua_State *L) {
  sc_tensor *x = sc_lua_check(L, 1);
  sc_conv_geom g;
  read_geom(L, 2, &g, "im2col");
  RESULT(sc_im2col(x, &g));
}

/* col2im(cols, {H, W}, {kernel=, ...}) */
static int l_col2im(lua_State *L) {
  sc_tensor *c = sc_lua_check(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_geti(L, 2, 1);
  lua_geti(L, 2, 2);
  int64_t H = (int64_t)luaL_checkinteger(L, -2), W = (int64_t)luaL_checkinteger(L, -1);
  lua_pop(L, 2);
  if (H < 1 || W < 1) return luaL_error(L, "scorch.col2im: image size must be positive");
  sc_conv_geom g;
  read_geom(L, 3, &g, "col2im");
  RESULT(sc_col2im(c, H, W, &g));
}

static int l_upsample_nearest(lua_State *L) {
  sc_tensor *x = sc_lua_check(L, 1);
  RESULT(sc_upsample_nearest(x, (int64_t)luaL_optinteger(L, 2, 2)));
}

static int l_sum_pool(lua_State *L) {
  sc_tensor *x = sc_lua_check(L, 1);
  RESULT(sc_sum_pool(x, (int64_t)luaL_checkinteger(L, 2)));
}

/* conv2d_core(x, w, {kernel given by w; stride=, padding=, dilation=}) */
static void weight_geom(lua_State *L, int opts, sc_tensor *w, sc_conv_geom *g,
                        const char *fn) {
  if (w->ndim != 4) luaL_error(L, "scorch.%s: weight must be 4-D", fn);
  if (!lua_istable(L, opts)) {
    lua_newtable(L);
    lua_replace(L, opts);
  }
  pair_field(L, opts, "stride", 1, &g->sh, &g->sw, fn);
  pair_field(L, opts, "padding", 0, &g->ph, &g->pw, fn);
  pair_field(L, opts, "dilation", 1, &g->dh, &g->dw, fn);
  g->kh = w->shape[2];
  g->kw = w->shape[3];
}

/* conv2d_core(x, w [, b], opts): b an [O] bias */
static int l_conv2d_core(lua_State *L) {
  sc_tensor *x = sc_lua_check(L, 1), *w = sc_lua_check(L, 2), *b = NULL;
  int opts = 3;
  if (sc_lua_test(L, 3)) {
    b = sc_lua_test(L, 3);
    opts = 4;
  }
  lua_settop(L, opts);
  sc_conv_geom g;
  weight_geom(L, opts, w, &g, "conv2d_core");
  RESULT(sc_conv2d_fused(x, w, b, &g));
}

/* conv2d_input(g, w, {H, W}, opts): the transposed convolution */
static int l_conv2d_input(lua_State *L) {
  sc_tensor *gy = sc_lua_check(L, 1), *w = sc_lua_check(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_geti(L, 3, 1);
  lua_geti(L, 3, 2);
  int64_t H = (int64_t)luaL_checkinteger(L, -2), W = (int64_t)luaL_checkinteger(L, -1);
  lua_pop(L, 2);
  if (H < 1 || W < 1) return luaL_error(L, "scorch.conv2d_input: image size must be positive");
  lua_settop(L, 4);
  sc_conv_geom g;
  weight_geom(L, 4, w, &g, "conv2d_input");
  RESULT(sc_conv2d_input(gy, w, H, W, &g));
}

/* conv2d_weight(x, g, {kernel=, stride=, padding=, dilation=}) */
static int l_conv2d_weight(lua_State *L) {
  sc_tensor *x = sc_lua_check(L, 1), *gy = sc_lua_check(L, 2);
  sc_conv_geom g;
  read_geom(L, 3, &g, "conv2d_weight");
  RESULT(sc_conv2d_weight(x, gy, &g));
}

static int l_phase_join(lua_State *L) { RESULT(sc_phase_join(sc_lua_check(L, 1))); }

static int l_phase_split(lua_State *L) { RESULT(sc_phase_split(sc_lua_check(L, 1))); }

static const luaL_Reg conv_functions[] = {
    {"conv2d_core", l_conv2d_core}, {"conv2d_input", l_conv2d_input},
    {"conv2d_weight", l_conv2d_weight},
    {"im2col", l_im2col}, {"col2im", l_col2im},
    {"upsample_nearest", l_upsample_nearest}, {"sum_pool", l_sum_pool},
    {"phase_join", l_phase_join}, {"phase_split", l_phase_split},
    {NULL, NULL}};

void sc_lua_open_conv(lua_State *L) { luaL_setfuncs(L, conv_functions, 0); }
