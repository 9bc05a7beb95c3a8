/*
 * A minimal stand-alone Lua 5.4 interpreter for `make sanitize`.
 *
 * Debian's lua5.4 is not linked with AddressSanitizer, and a sanitized
 * core.so can only be loaded by a process whose first library is the ASan
 * runtime.  Preloading libasan into lua5.4 would also preload it into every
 * child a spec starts (sh, script, ...), whose own leaks then fail the run.
 * This program is linked with -fsanitize=address itself, so busted runs
 * under it and the environment stays clean.
 *
 * Usage, a subset of lua.c:  lua [-e stat]... [-l mod]... [script [args]]
 * With no script (or "-") it runs standard input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"

static const char *progname = "lua";

/* Message handler: append a traceback, as lua.c does. */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)",
                          luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Calls the function below `narg` arguments; reports an error on stderr. */
static int docall(lua_State *L, int narg) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  int status = lua_pcall(L, narg, 0, base);
  lua_remove(L, base);
  if (status != LUA_OK) {
    fprintf(stderr, "%s: %s\n", progname, lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  return status;
}

static void report_load_error(lua_State *L) {
  fprintf(stderr, "%s: %s\n", progname, lua_tostring(L, -1));
  lua_pop(L, 1);
}

/* arg[0] is the script, negative indices the interpreter and its options,
   positive ones the script's arguments. */
static void createargtable(lua_State *L, char **argv, int argc, int script) {
  lua_createtable(L, argc - script - 1, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

/* Leaves pmain's result, whether everything ran, for main. */
static int finish(lua_State *L, int ok) {
  lua_pushboolean(L, ok);
  return 1;
}

static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  int script = 0; /* index of the script in argv, 0 when none */
  int ran_e = 0;
  luaL_checkversion(L);
  luaL_openlibs(L);
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-e") != 0 && strcmp(argv[i], "-l") != 0) {
      script = i;
      break;
    }
    if (++i >= argc) return luaL_error(L, "'%s' needs an argument", argv[i - 1]);
  }
  createargtable(L, argv, argc, script);
  for (int i = 1; i < (script ? script : argc); i += 2) {
    int status;
    if (argv[i][1] == 'e') {
      ran_e = 1;
      status = luaL_loadbuffer(L, argv[i + 1], strlen(argv[i + 1]),
                               "=(command line)");
      if (status == LUA_OK) status = docall(L, 0);
      else report_load_error(L);
    } else {
      lua_getglobal(L, "require");
      lua_pushstring(L, argv[i + 1]);
      status = docall(L, 1);
    }
    if (status != LUA_OK) return finish(L, 0);
  }
  if (script == 0 && ran_e) return finish(L, 1);
  /* The script, or standard input for "-" or no script at all. */
  const char *fname = script ? argv[script] : NULL;
  if (fname != NULL && strcmp(fname, "-") == 0) fname = NULL;
  if (luaL_loadfile(L, fname) != LUA_OK) {
    report_load_error(L);
    return finish(L, 0);
  }
  int n = 0;
  for (int i = script + 1; script && i < argc; i++, n++)
    lua_pushstring(L, argv[i]);
  return finish(L, docall(L, n) == LUA_OK);
}

int main(int argc, char **argv) {
  if (argc > 0 && argv[0][0] != '\0') progname = argv[0];
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "%s: cannot create state: not enough memory\n", progname);
    return EXIT_FAILURE;
  }
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  int status = lua_pcall(L, 2, 1, 0);
  int ok = lua_toboolean(L, -1);
  if (status != LUA_OK) fprintf(stderr, "%s: %s\n", progname, lua_tostring(L, -1));
  lua_close(L);
  return (ok && status == LUA_OK) ? EXIT_SUCCESS : EXIT_FAILURE;
}
