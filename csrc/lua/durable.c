/*
 * scorch binding: the operating-system calls of durable runs, kept under
 * sc.core.durable (used by scorch.run; see csrc/core/durable.h).
 *
 *   durable.fsync_file(path)          → true | nil, msg
 *   durable.fsync_dir(path)           → true | nil, msg
 *   durable.rename(from, to)          → true | nil, msg   (then fsync of to's folder)
 *   durable.truncate(path, len)       → true | nil, msg
 *   durable.sleep(seconds)
 *   durable.install_stop_signals()    → true   (SIGINT/SIGTERM become a flag)
 *   durable.stop_signal()             → 0, or the pending signal's number
 *   durable.clear_stop_signal()
 *   durable.restore_signals()
 *
 * Environment failures return nil and a message, as io.open does; bad
 * arguments raise.
 */
#include <string.h>

#include "binding.h"
#include "../core/durable.h"

static int push_failure(lua_State *L) {
  luaL_pushfail(L);
  lua_pushfstring(L, "scorch.%s", sc_error());
  return 2;
}

static int push_result(lua_State *L, int rc) {
  if (rc) return push_failure(L);
  lua_pushboolean(L, 1);
  return 1;
}

static const char *check_path(lua_State *L, int idx) {
  size_t len;
  if (lua_type(L, idx) != LUA_TSTRING) luaL_typeerror(L, idx, "string");
  const char *p = lua_tolstring(L, idx, &len);
  if (strlen(p) != len) luaL_argerror(L, idx, "path contains a zero byte");
  if (len == 0) luaL_argerror(L, idx, "path is empty");
  return p;
}

static int l_fsync_file(lua_State *L) { return push_result(L, sc_fsync_file(check_path(L, 1))); }

static int l_fsync_dir(lua_State *L) { return push_result(L, sc_fsync_dir(check_path(L, 1))); }

static int l_rename(lua_State *L) {
  const char *from = check_path(L, 1), *to = check_path(L, 2);
  return push_result(L, sc_rename_durable(from, to));
}

static int l_truncate(lua_State *L) {
  const char *path = check_path(L, 1);
  lua_Integer len = luaL_checkinteger(L, 2);
  luaL_argcheck(L, len >= 0, 2, "length must be >= 0");
  return push_result(L, sc_truncate_file(path, (uint64_t)len));
}

static int l_sleep(lua_State *L) {
  lua_Number s = luaL_checknumber(L, 1);
  luaL_argcheck(L, s >= 0 && s <= 86400, 1, "seconds must be in [0, 86400]");
  sc_sleep((double)s);
  return 0;
}

static int l_install(lua_State *L) {
  if (sc_stop_signals_install()) return luaL_error(L, "scorch.%s", sc_error());
  lua_pushboolean(L, 1);
  return 1;
}

static int l_pending(lua_State *L) {
  lua_pushinteger(L, sc_stop_signal_pending());
  return 1;
}

static int l_clear(lua_State *L) {
  (void)L;
  sc_stop_signal_clear();
  return 0;
}

static int l_restore(lua_State *L) {
  (void)L;
  sc_stop_signals_restore();
  return 0;
}

void sc_lua_open_durable(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"fsync_file", l_fsync_file}, {"fsync_dir", l_fsync_dir},
      {"rename", l_rename},         {"truncate", l_truncate},
      {"sleep", l_sleep},           {"install_stop_signals", l_install},
      {"stop_signal", l_pending},   {"clear_stop_signal", l_clear},
      {"restore_signals", l_restore}, {NULL, NULL}};
  luaL_newlib(L, fns);
  lua_setfield(L, -2, "durable");
}
