/*
 * scorch binding: files — safetensors save/load, PNG, IDX.
 *
 * Following STYLE.md, a programmer's error (a bad argument) raises, while
 * an environment failure (missing or malformed file, failed write) returns
 * nil and a message, as io.open does:
 *   sc.save(path, tensors [, metadata]) → true | nil, msg
 *   sc.load(path [, {convert=}])        → tensors, metadata [, converted] | nil, msg
 *   core._save_png(path, t)             → true | nil, msg   (t CxHxW)
 *   core._png_read(path)                → CxHxW tensor in [0, 1] | nil, msg
 *                                         (behind sc.image.load_png)
 *   core.read_idx(path)                 → tensor | nil, msg
 *   core.mkdir(path [, parents=true])   → true | nil, msg   (no shell)
 *   core.is_dir(path)                   → boolean
 *   core.list_dir(path)                 → sorted list of names | nil, msg
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "binding.h"
#include "../core/fs.h"
#include "../core/idx.h"
#include "../core/png.h"
#include "../core/safetensors.h"

/* A loaded file waiting to be turned into Lua values: held by a userdata
   whose __gc frees whatever has not been handed over yet, so an error
   while building the result tables leaks nothing. */
#define SC_SAFETENSORS_BOX "scorch.io.safetensors"

static int box_gc(lua_State *L) {
  sc_safetensors *st = luaL_checkudata(L, 1, SC_SAFETENSORS_BOX);
  sc_safetensors_free(st);
  return 0;
}

/* nil and the core's message: the environment-failure return. */
static int push_failure(lua_State *L) {
  luaL_pushfail(L);
  lua_pushfstring(L, "scorch.%s", sc_error());
  return 2;
}

/* A path must be a real string (not a number, as io.open would take). */
static const char *check_path(lua_State *L, int idx) {
  size_t len;
  if (lua_type(L, idx) != LUA_TSTRING) luaL_typeerror(L, idx, "string");
  const char *p = lua_tolstring(L, idx, &len);
  if (strlen(p) != len) luaL_argerror(L, idx, "path contains a zero byte");
  if (len == 0) luaL_argerror(L, idx, "path is empty");
  return p;
}

/* The string key at -2 of a table traversal, checked. */
static const char *check_key(lua_State *L, int arg, const char *what) {
  if (lua_type(L, -2) != LUA_TSTRING)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s must be strings, got a %s", what,
                                          luaL_typename(L, -2)));
  size_t len;
  const char *k = lua_tolstring(L, -2, &len);
  if (strlen(k) != len)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s must not contain zero bytes", what));
  return k;
}

static int l_save(lua_State *L) {
  const char *path = check_path(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int has_meta = !lua_isnoneornil(L, 3);
  if (has_meta) luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);

  size_t n = 0, nmeta = 0;
  for (lua_pushnil(L); lua_next(L, 2); lua_pop(L, 1)) {
    const char *k = check_key(L, 2, "tensor names");
    if (!sc_lua_test(L, -1))
      luaL_argerror(L, 2, lua_pushfstring(L, "value for '%s' is a %s, not a tensor",
                                          k, luaL_typename(L, -1)));
    n++;
  }
  if (has_meta)
    for (lua_pushnil(L); lua_next(L, 3); lua_pop(L, 1)) {
      const char *k = check_key(L, 3, "metadata keys");
      int t = lua_type(L, -1);
      size_t len;
      if (t != LUA_TSTRING && t != LUA_TNUMBER)
        luaL_argerror(L, 3, lua_pushfstring(L, "metadata value for '%s' is a %s, "
                                            "not a string or number", k,
                                            luaL_typename(L, -1)));
      if (t == LUA_TSTRING && strlen(lua_tolstring(L, -1, &len)) != len)
        luaL_argerror(L, 3, lua_pushfstring(L, "metadata value for '%s' contains "
                                            "a zero byte", k));
      nmeta++;
    }

  /* arrays in userdata (collected whatever happens); numbers turned into
     strings are kept alive in an anchor table */
  const char **names = lua_newuserdatauv(L, (n ? n : 1) * sizeof *names, 0);
  sc_tensor **tensors = lua_newuserdatauv(L, (n ? n : 1) * sizeof *tensors, 0);
  const char **keys = lua_newuserdatauv(L, (nmeta ? nmeta : 1) * sizeof *keys, 0);
  const char **values = lua_newuserdatauv(L, (nmeta ? nmeta : 1) * sizeof *values, 0);
  lua_newtable(L);
  int anchor = lua_gettop(L);
  size_t i = 0;
  for (lua_pushnil(L); lua_next(L, 2) && i < n; lua_pop(L, 1), i++) {
    names[i] = lua_tostring(L, -2);
    tensors[i] = sc_lua_test(L, -1);
  }
  n = i; /* the table cannot change under us, but stay in bounds anyway */
  i = 0;
  if (has_meta)
    for (lua_pushnil(L); lua_next(L, 3) && i < nmeta; lua_pop(L, 1), i++) {
      keys[i] = lua_tostring(L, -2);
      if (lua_type(L, -1) == LUA_TNUMBER) {
        values[i] = luaL_tolstring(L, -1, NULL); /* as tostring() writes it */
        lua_rawseti(L, anchor, (lua_Integer)i + 1);
      } else {
        values[i] = lua_tostring(L, -1);
      }
    }
  nmeta = i;

  int rc = sc_safetensors_save(path, n, names, tensors, nmeta, keys, values);
  if (rc == SC_SAFETENSORS_EINVAL) return luaL_error(L, "scorch.%s", sc_error());
  if (rc) return push_failure(L);
  lua_pushboolean(L, 1);
  return 1;
}

/* The options table at idx: {convert = bool}, nothing else (an unknown key
   is an error listing the valid ones, as util.check_options words it). */
static int load_flags(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return 0;
  if (lua_type(L, idx) != LUA_TTABLE)
    luaL_error(L, "scorch.load: options must be a table (got %s)", luaL_typename(L, idx));
  for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1))
    if (lua_type(L, -2) != LUA_TSTRING || strcmp(lua_tostring(L, -2), "convert"))
      luaL_error(L, "scorch.load: unknown option '%s' (valid: convert)",
                 luaL_tolstring(L, -2, NULL));
  lua_getfield(L, idx, "convert");
  int convert = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return convert ? SC_SAFETENSORS_CONVERT : 0;
}

/* With {convert = true} a third result maps each converted tensor's name
   to its dtype in the file ("F16"), so a caller can say what changed. */
static int l_load(lua_State *L) {
  const char *path = check_path(L, 1);
  int flags = load_flags(L, 2);
  sc_safetensors *st = lua_newuserdatauv(L, sizeof *st, 0);
  memset(st, 0, sizeof *st);
  luaL_setmetatable(L, SC_SAFETENSORS_BOX);
  int rc = sc_safetensors_load(path, flags, st);
  if (rc == SC_SAFETENSORS_EDTYPE) return luaL_error(L, "scorch.%s", sc_error());
  if (rc) return push_failure(L);
  lua_createtable(L, 0, st->count > INT32_MAX ? 0 : (int)st->count);
  for (size_t i = 0; i < st->count; i++) {
    sc_tensor **slot = sc_lua_newslot(L);
    *slot = st->tensors[i]; /* the slot owns it now */
    st->tensors[i] = NULL;
    lua_setfield(L, -2, st->names[i]);
  }
  lua_createtable(L, 0, st->meta_count > INT32_MAX ? 0 : (int)st->meta_count);
  for (size_t i = 0; i < st->meta_count; i++) {
    lua_pushstring(L, st->meta_values[i]);
    lua_setfield(L, -2, st->meta_keys[i]);
  }
  if (flags & SC_SAFETENSORS_CONVERT) {
    lua_newtable(L);
    for (size_t i = 0; i < st->count; i++)
      if (strcmp(st->dtypes[i], "F32") && strcmp(st->dtypes[i], "F64")) {
        lua_pushstring(L, st->dtypes[i]);
        lua_setfield(L, -2, st->names[i]);
      }
  }
  sc_safetensors_free(st); /* names and strings now, not at the next cycle */
  return flags & SC_SAFETENSORS_CONVERT ? 3 : 2;
}

static int l_save_png(lua_State *L) {
  const char *path = check_path(L, 1);
  sc_tensor *t = sc_lua_check(L, 2);
  if (t->ndim != 3 || (t->shape[0] != 1 && t->shape[0] != 3) || t->shape[1] < 1 ||
      t->shape[2] < 1) {
    char buf[128];
    return luaL_argerror(L, 2, lua_pushfstring(L, "expected CxHxW with C = 1 or 3 "
                                               "and H, W >= 1, got shape %s",
                                               sc_shape_str(t, buf, sizeof buf)));
  }
  if (sc_png_write(path, t)) return push_failure(L);
  lua_pushboolean(L, 1);
  return 1;
}

/* Pushes a tensor userdata and fills it from `read`, or nil, msg. */
static int read_tensor(lua_State *L, sc_tensor *(*read)(const char *)) {
  const char *path = check_path(L, 1);
  sc_tensor **slot = sc_lua_newslot(L);
  *slot = read(path);
  return *slot ? 1 : push_failure(L);
}

static int l_png_read(lua_State *L) { return read_tensor(L, sc_png_read); }
/* read_idx(path [, first]): first >= 0 keeps only that many items */
static int l_read_idx(lua_State *L) {
  const char *path = check_path(L, 1);
  lua_Integer first = luaL_optinteger(L, 2, -1);
  if (first < -1 || first > INT32_MAX)
    return luaL_argerror(L, 2, "the number of items to keep must be 0 to 2^31 - 1");
  sc_tensor **slot = sc_lua_newslot(L);
  *slot = sc_idx_read_first(path, (int64_t)first);
  return *slot ? 1 : push_failure(L);
}

static int l_mkdir(lua_State *L) {
  const char *path = check_path(L, 1);
  int parents = lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2);
  if (sc_mkdir(path, parents)) return push_failure(L);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_is_dir(lua_State *L) {
  lua_pushboolean(L, sc_is_dir(check_path(L, 1)));
  return 1;
}

#define SC_NAMES_BOX "scorch.io.names"

static int names_gc(lua_State *L) {
  char **p = luaL_checkudata(L, 1, SC_NAMES_BOX);
  free(*p);
  *p = NULL;
  return 0;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The names are pushed from a buffer that a boxed userdata owns, so an
   error while building the table (out of memory) leaks nothing. */
static int l_list_dir(lua_State *L) {
  const char *path = check_path(L, 1);
  char **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, SC_NAMES_BOX);
  size_t n = 0;
  *box = sc_list_dir(path, &n);
  if (!*box) return push_failure(L);
  const char **names = lua_newuserdatauv(L, (n ? n : 1) * sizeof *names, 0);
  const char *s = *box;
  for (size_t i = 0; i < n; i++, s += strlen(s) + 1) names[i] = s;
  qsort(names, n, sizeof *names, cmp_names);
  lua_createtable(L, n > INT32_MAX ? 0 : (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushstring(L, names[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

void sc_lua_open_io(lua_State *L) {
  static const luaL_Reg functions[] = {
      {"save", l_save},         {"load", l_load},         {"_save_png", l_save_png},
      {"_png_read", l_png_read}, {"read_idx", l_read_idx},
      {"mkdir", l_mkdir},       {"is_dir", l_is_dir},     {"list_dir", l_list_dir},
      {NULL, NULL}};
  luaL_newmetatable(L, SC_NAMES_BOX);
  lua_pushcfunction(L, names_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newmetatable(L, SC_SAFETENSORS_BOX);
  lua_pushcfunction(L, box_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, box_gc);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
  luaL_setfuncs(L, functions, 0);
}
