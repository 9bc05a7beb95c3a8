/* scorch binding: the kernels behind F.group_norm, F.layer_norm, F.softmax
   and F.log_softmax (see core/norm.c).  F checks the arguments and words the errors users
   see; these check enough that any call is safe. */
#include "binding.h"

#define RESULT(expr)                                                        \
  do {                                                                      \
    sc_tensor **slot_ = sc_lua_newslot(L);                                  \
    return sc_lua_fill(L, slot_, (expr));                                   \
  } while (0)

/* An optional tensor argument: nil or absent gives NULL. */
static sc_tensor *opt_tensor(lua_State *L, int idx) {
  return lua_isnoneornil(L, idx) ? NULL : sc_lua_check(L, idx);
}

/* group_norm_core(x, groups [, weight, bias [, eps=1e-5]]), and
   group_norm_silu_core with the same arguments: silu of that, as one op */
static int group_norm_common(lua_State *L, int act) {
  sc_tensor *x = sc_lua_check(L, 1);
  lua_Integer groups = luaL_checkinteger(L, 2);
  sc_tensor *w = opt_tensor(L, 3), *b = opt_tensor(L, 4);
  double eps = luaL_optnumber(L, 5, 1e-5);
  RESULT((act ? sc_group_norm_silu : sc_group_norm)(x, (int64_t)groups, w, b, eps));
}

static int l_group_norm_core(lua_State *L) { return group_norm_common(L, 0); }
static int l_group_norm_silu_core(lua_State *L) { return group_norm_common(L, 1); }

/* layer_norm_core(x, nd [, weight, bias [, eps=1e-5]]): over the trailing nd dims */
static int l_layer_norm_core(lua_State *L) {
  sc_tensor *x = sc_lua_check(L, 1);
  lua_Integer nd = luaL_checkinteger(L, 2);
  if (nd < 1 || nd > x->ndim) {
    char b[96];
    return luaL_error(L, "scorch.layer_norm_core: the number of normalised trailing dims "
                      "must be in [1, %d] for an input of shape %s, got %I", x->ndim,
                      sc_shape_str(x, b, sizeof b), nd);
  }
  sc_tensor *w = opt_tensor(L, 3), *b = opt_tensor(L, 4);
  double eps = luaL_optnumber(L, 5, 1e-5);
  RESULT(sc_layer_norm(x, (int)nd, w, b, eps));
}

/* softmax_core(x [, dim=-1]), log_softmax_core(x [, dim=-1]) */
static int softmax_common(lua_State *L, const char *fn, int lg) {
  sc_tensor *x = sc_lua_check(L, 1);
  int d = lua_isnoneornil(L, 2) ? x->ndim - 1 : sc_lua_dim(L, 2, x->ndim, 0, fn);
  RESULT(lg ? sc_log_softmax(x, d) : sc_softmax(x, d));
}

static int l_softmax_core(lua_State *L) { return softmax_common(L, "softmax_core", 0); }
static int l_log_softmax_core(lua_State *L) {
  return softmax_common(L, "log_softmax_core", 1);
}

static const luaL_Reg norm_functions[] = {
    {"group_norm_core", l_group_norm_core}, {"group_norm_silu_core", l_group_norm_silu_core},
    {"layer_norm_core", l_layer_norm_core},
    {"softmax_core", l_softmax_core}, {"log_softmax_core", l_log_softmax_core},
    {NULL, NULL}};

void sc_lua_open_norm(lua_State *L) { luaL_setfuncs(L, norm_functions, 0); }
