/* scorch binding: the fused optimiser steps behind lua/scorch/optim. */
#include "binding.h"

#include "../core/optim.h"

/* adam_step(p, g, m, v, {lr, beta1, beta2, eps, weight_decay, decoupled, step}) */
static double field(lua_State *L, int t, const char *k, double def) {
  lua_getfield(L, t, k);
  double v = luaL_optnumber(L, -1, def);
  lua_pop(L, 1);
  return v;
}

static int l_adam_step(lua_State *L) {
  sc_tensor *p = sc_lua_check(L, 1), *g = sc_lua_check(L, 2);
  sc_tensor *m = sc_lua_check(L, 3), *v = sc_lua_check(L, 4);
  luaL_checktype(L, 5, LUA_TTABLE);
  lua_getfield(L, 5, "decoupled");
  int decoupled = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (sc_adam_step(p, g, m, v, field(L, 5, "lr", 1e-3), field(L, 5, "beta1", 0.9),
                   field(L, 5, "beta2", 0.999), field(L, 5, "eps", 1e-8),
                   field(L, 5, "weight_decay", 0), decoupled,
                   (int64_t)field(L, 5, "step", 1)))
    return sc_lua_core_error(L);
  return 0;
}

/* sgd_step(p, g, buf|nil, {lr, momentum, dampening, weight_decay, nesterov, first}) */
static int l_sgd_step(lua_State *L) {
  sc_tensor *p = sc_lua_check(L, 1), *g = sc_lua_check(L, 2);
  sc_tensor *buf = lua_isnil(L, 3) ? NULL : sc_lua_check(L, 3);
  luaL_checktype(L, 4, LUA_TTABLE);
  lua_getfield(L, 4, "nesterov");
  int nesterov = lua_toboolean(L, -1);
  lua_getfield(L, 4, "first");
  int first = lua_toboolean(L, -1);
  lua_pop(L, 2);
  if (sc_sgd_step(p, g, buf, field(L, 4, "lr", 1e-3), field(L, 4, "momentum", 0),
                  field(L, 4, "dampening", 0), field(L, 4, "weight_decay", 0),
                  nesterov, first))
    return sc_lua_core_error(L);
  return 0;
}

static const luaL_Reg optim_functions[] = {
    {"adam_step", l_adam_step}, {"sgd_step", l_sgd_step}, {NULL, NULL}};

void sc_lua_open_optim(lua_State *L) { luaL_setfuncs(L, optim_functions, 0); }
