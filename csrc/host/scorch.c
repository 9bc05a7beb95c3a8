/*
** scorch.c — the `scorch` executable.
**
** Embeds Lua 5.4, loads the scorch library as the global `sc` (and `scorch`),
** then runs a script, `-e` statements, standard input, or an interactive
** REPL with readline editing, history and completion of table fields and
** methods.  The command line follows the stand-alone `lua` interpreter, so
** scripts see the same `arg` table and `...`.
*/

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <readline/readline.h>
#include <readline/history.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#ifndef SCORCH_VERSION
#define SCORCH_VERSION "0.1.0"
#endif

#define VERSION_LINE "scorch " SCORCH_VERSION " (" LUA_RELEASE ")"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

/* Lines kept in the history file; older ones are dropped at exit. */
#define HISTORY_LINES 1000

/* How many metatable `__index` tables completion follows before giving up;
   bounds the walk even when a chain loops back on itself. */
#define MAX_INDEX_CHAIN 16

/* Flags gathered from the command line. */
enum {
	HAS_ERROR = 1,    /* bad option: the index is in *first */
	HAS_I = 2,        /* -i */
	HAS_V = 4,        /* -v */
	HAS_E = 8,        /* at least one -e */
	HAS_H = 16,       /* -h */
	HAS_DASHDASH = 32 /* options ended with "--" */
};

static const char *progname = "scorch";

/* The exit status of a failed run: 1, or what a command-line error object
   asks for (2 for a bad option given to a script, see report()). */
static int fail_status = EXIT_FAILURE;

/* The state that the SIGINT handler and readline callbacks act on; neither
   can be handed a pointer of ours. */
static lua_State *global_L = NULL;


/*
** {======================================================
** Messages and protected calls
** =======================================================
*/

static void print_usage(FILE *out)
{
	fprintf(out,
		"usage: %s [options] [script [args]]\n"
		"       %s train CONFIG.lua|RUN [key=value ...]\n"
		"       %s sample RUN [--n N --sampler S --steps K --seed S --out FILE]\n"
		"       %s eval RUN|SAMPLES.safetensors\n"
		"With no script and a terminal, starts the REPL (type `help` there).\n"
		"Available options are:\n"
		"  -e stat   execute string 'stat'\n"
		"  -i        enter interactive mode after executing 'script'\n"
		"  -v, --version  show version information\n"
		"  -h, --help     show this help\n"
		"  --        stop handling options\n"
		"  -         stop handling options and execute stdin\n"
		"A script file named train, sample or eval runs as ./train.\n",
		progname, progname, progname, progname);
	fflush(out);
}

/* Print an error on stderr; stdout is flushed first so that, when both go
   to one pipe, the error lands after the output that preceded it. */
static void message(const char *prog, const char *msg)
{
	fflush(stdout);
	if (prog != NULL)
		fprintf(stderr, "%s: ", prog);
	fprintf(stderr, "%s\n", msg);
	fflush(stderr);
}

/* A command-line mistake reported by a script (scorch.util.parse_args):
   a table {message =, usage =, status =}.  Printed as the message and the
   usage, without a traceback; the run exits with its status. */
static int is_usage_error(lua_State *L, int idx)
{
	int yes;

	if (!lua_istable(L, idx))
		return 0;
	lua_getfield(L, idx, "usage");
	yes = lua_type(L, -1) == LUA_TSTRING;
	lua_pop(L, 1);
	return yes;
}

static void report_usage_error(lua_State *L, const char *prog)
{
	lua_getfield(L, -1, "message");
	(void)prog;                            /* the message names scorch */
	message(NULL, lua_isstring(L, -1) ? lua_tostring(L, -1) : "bad arguments");
	lua_pop(L, 1);
	lua_getfield(L, -1, "usage");
	fputs(lua_tostring(L, -1), stderr);
	fflush(stderr);
	lua_pop(L, 1);
	lua_getfield(L, -1, "status");
	fail_status = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : 2;
	lua_pop(L, 2);
}

/* Report a failed status with the message on top of the stack. */
static int report(lua_State *L, int status, const char *prog)
{
	if (status != LUA_OK && is_usage_error(L, -1)) {
		report_usage_error(L, prog);
	} else if (status != LUA_OK) {
		const char *msg = lua_tostring(L, -1);
		message(prog, msg != NULL ? msg : "(error object is not a string)");
		lua_pop(L, 1);
	}
	return status;
}

/* Error handler: turn any error object into text and append a traceback,
   because after the unwind the stack that caused it is gone. */
static int msghandler(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);

	if (is_usage_error(L, 1))
		return 1;                      /* no traceback for those */

	if (msg == NULL) {
		if (luaL_callmeta(L, 1, "__tostring") &&
		    lua_type(L, -1) == LUA_TSTRING)
			msg = lua_tostring(L, -1);
		else
			msg = lua_pushfstring(L, "(error object is a %s value)",
			                      luaL_typename(L, 1));
	}
	luaL_traceback(L, L, msg, 1);
	return 1;
}

/* Runs at the next Lua instruction after a SIGINT; raising here is safe,
   unlike raising from the signal handler itself. */
static void interrupt_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	lua_sethook(L, NULL, 0, 0);
	luaL_error(L, "interrupted!");
}

/* SIGINT while Lua runs: only arm a hook (lua_sethook is signal-safe).  The
   default action comes back first, so a second Ctrl-C kills a process
   stuck in C code that never reaches the hook. */
static void on_sigint(int sig)
{
	int mask = LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT;

	signal(sig, SIG_DFL);
	lua_sethook(global_L, interrupt_hook, mask, 1);
}

static void set_sigint(void (*handler)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
}

/* Call the function below `narg` arguments with the traceback handler;
   Ctrl-C interrupts it only for the duration of the call. */
static int docall(lua_State *L, int narg, int nres)
{
	int base = lua_gettop(L) - narg;
	int status;

	lua_pushcfunction(L, msghandler);
	lua_insert(L, base);
	global_L = L;
	set_sigint(on_sigint);
	status = lua_pcall(L, narg, nres, base);
	set_sigint(SIG_DFL);
	/* A Ctrl-C that came too late to stop this call must not stop the
	   next one; a hook the user set is left alone. */
	if (lua_gethook(L) == interrupt_hook)
		lua_sethook(L, NULL, 0, 0);
	lua_remove(L, base);
	return status;
}

/* }====================================================== */


/*
** {======================================================
** Start-up: options, arg table, module paths, the library
** =======================================================
*/

/* Check the options up to the script name.  Returns HAS_* flags; *first is
   the index of the script (argc when there is none), or of the bad option. */
static int collect_args(char **argv, int *first)
{
	int flags = 0;
	int i;

	for (i = 1; argv[i] != NULL; i++) {
		const char *a = argv[i];

		*first = i;
		if (a[0] != '-')
			return flags;                 /* the script name */
		switch (a[1]) {
		case '\0':
			return flags;                 /* "-": script on stdin */
		case '-':
			if (strcmp(a, "--help") == 0) {
				flags |= HAS_H;
				break;
			}
			if (strcmp(a, "--version") == 0) {
				flags |= HAS_V;
				break;
			}
			if (a[2] != '\0')
				return HAS_ERROR;
			*first = i + 1;
			return flags | HAS_DASHDASH;
		case 'e':
			flags |= HAS_E;
			if (a[2] == '\0' && argv[++i] == NULL)
				return HAS_ERROR;     /* "-e" without its statement */
			break;
		case 'i':
		case 'v':
		case 'h':
			if (a[2] != '\0')
				return HAS_ERROR;
			flags |= a[1] == 'i' ? HAS_I : a[1] == 'v' ? HAS_V : HAS_H;
			break;
		default:
			return HAS_ERROR;
		}
	}
	*first = i;
	return flags;
}

static void bad_option(char **argv, int at)
{
	const char *a = argv[at];

	fprintf(stderr, "%s: ", progname);
	if (a[1] == 'e')
		fprintf(stderr, "'%s' needs argument\n", a);
	else
		fprintf(stderr, "unrecognized option '%s'\n", a);
	print_usage(stderr);
}

/* The global `arg`, laid out as `lua` does: the script at 0, its arguments
   at 1.., the interpreter and options at negative indices. */
static void create_arg_table(lua_State *L, char **argv, int argc, int script)
{
	int i;

	if (script == argc)
		script = 0;               /* no script: the program name is arg[0] */
	lua_createtable(L, argc - script - 1, script + 1);
	for (i = 0; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, i - script);
	}
	lua_setglobal(L, "arg");
}

static void prepend_path(lua_State *L, const char *field, const char *extra)
{
	lua_getglobal(L, "package");
	lua_getfield(L, -1, field);
	lua_pushfstring(L, "%s;%s", extra, lua_tostring(L, -1));
	lua_setfield(L, -3, field);
	lua_pop(L, 2);
}

/* Prepend <root>/<lua>/?.lua, <root>/<lua>/?/init.lua and <root>/<lib>/?.so
   when <root>/<lua>/scorch/init.lua exists; returns whether it did. */
static int try_root(lua_State *L, const char *root, const char *lua,
                    const char *lib)
{
	char probe[PATH_MAX + 64];

	snprintf(probe, sizeof probe, "%s/%s/scorch/init.lua", root, lua);
	if (access(probe, R_OK) != 0)
		return 0;
	lua_pushfstring(L, "%s/%s/?.lua;%s/%s/?/init.lua", root, lua, root, lua);
	prepend_path(L, "path", lua_tostring(L, -1));
	lua_pushfstring(L, "%s/%s/?.so", root, lib);
	prepend_path(L, "cpath", lua_tostring(L, -1));
	lua_pop(L, 2);
	return 1;
}

/* The library that belongs to this executable comes first, so neither a
   build tree nor an install needs LUA_PATH: a host in a build tree
   (<root>/bin/scorch beside <root>/lua/scorch) uses the tree's library; an
   installed one (a LuaRocks tree, a PREFIX) the modules installed beside
   it in <root>/share/lua/5.4 and <root>/lib/lua/5.4.  Otherwise the
   default Lua paths apply. */
static void add_tree_paths(lua_State *L)
{
	char exe[PATH_MAX];
	char lib[64] = "lib";
	char *slash;

	if (realpath("/proc/self/exe", exe) == NULL)
		return;
	slash = strrchr(exe, '/');            /* <root>/bin | scorch */
	if (slash == NULL)
		return;
	*slash = '\0';
	slash = strrchr(exe, '/');            /* <root> | bin */
	if (slash == NULL)
		return;
	*slash = '\0';
	/* A private build tree pairs bin-X with lib-X (make BINOUT=bin-X
	   LIBOUT=lib-X): its host must not load another tree's core.so. */
	if (strncmp(slash + 1, "bin-", 4) == 0 && strlen(slash + 1) < sizeof lib - 1)
		snprintf(lib, sizeof lib, "lib%s", slash + 4);
	if (!try_root(L, exe, "lua", lib))
		try_root(L, exe, "share/lua/" LUA_VERSION_MAJOR "." LUA_VERSION_MINOR,
		         "lib/lua/" LUA_VERSION_MAJOR "." LUA_VERSION_MINOR);
}

/* sc = require "scorch"; scorch = sc */
/* scorch keeps OpenBLAS single-threaded (its products are split by the
   core's own pool), but the pthreads build of OpenBLAS starts its worker
   threads when it loads, and they spin for about 0.1 s of CPU before they
   sleep.  OPENBLAS_NUM_THREADS=1 while the library loads keeps them from
   starting; the variable is put back afterwards, so programs run from
   scorch (os.execute, the REPL's $) see the user's own setting. */
static int load_library(lua_State *L)
{
	int status;
	const char *old = getenv("OPENBLAS_NUM_THREADS");
	char *saved = old != NULL ? strdup(old) : NULL;

	setenv("OPENBLAS_NUM_THREADS", "1", 1);
	lua_getglobal(L, "require");
	lua_pushliteral(L, "scorch");
	status = docall(L, 1, 1);
	if (saved != NULL)
		setenv("OPENBLAS_NUM_THREADS", saved, 1);
	else
		unsetenv("OPENBLAS_NUM_THREADS");
	free(saved);
	if (status != LUA_OK)
		return report(L, status, progname);
	lua_pushvalue(L, -1);
	lua_setglobal(L, "sc");
	lua_setglobal(L, "scorch");
	return LUA_OK;
}

/* }====================================================== */


/*
** {======================================================
** Running code from the command line
** =======================================================
*/

static int run_string(lua_State *L, const char *code, const char *name)
{
	int status = luaL_loadbuffer(L, code, strlen(code), name);

	if (status == LUA_OK)
		status = docall(L, 0, 0);
	return report(L, status, progname);
}

/* Run every -e in command-line order. */
static int run_statements(lua_State *L, char **argv, int script)
{
	int i;

	for (i = 1; i < script; i++) {
		const char *code;

		if (argv[i][0] != '-' || argv[i][1] != 'e')
			continue;
		code = argv[i][2] != '\0' ? argv[i] + 2 : argv[++i];
		if (run_string(L, code, "=(command line)") != LUA_OK)
			return 0;
	}
	return 1;
}

/* Push arg[1..n] as the script's varargs; returns n. */
static int push_script_args(lua_State *L)
{
	int n, i;

	if (lua_getglobal(L, "arg") != LUA_TTABLE)
		luaL_error(L, "'arg' is not a table");
	n = (int)luaL_len(L, -1);
	luaL_checkstack(L, n + 3, "too many arguments to script");
	for (i = 1; i <= n; i++)
		lua_rawgeti(L, -i, i);
	lua_remove(L, -i);
	return n;
}

/* fname NULL reads the chunk from stdin. */
static int run_file(lua_State *L, const char *fname)
{
	int status = luaL_loadfile(L, fname);

	if (status == LUA_OK) {
		int n = push_script_args(L);
		status = docall(L, n, LUA_MULTRET);
	}
	return report(L, status, progname);
}

/* }====================================================== */


/*
** {======================================================
** Completion: names from globals, a.b.c fields and t:methods, found by raw
** reads only, so pressing TAB never runs user code.
** =======================================================
*/

static const char *const keywords[] = {
	"and", "break", "do", "else", "elseif", "end", "false", "for",
	"function", "goto", "if", "in", "local", "nil", "not", "or",
	"repeat", "return", "then", "true", "until", "while", NULL
};

/* Registry key of the candidate list between readline's calls. */
static const char matches_key = 'm';

/* Registry key of the scorch.repl table (printing, help, commands), when
   it loaded. */
static const char repl_key = 'r';

/* ASCII tests, not <ctype.h>: a script may change the locale. */
static int is_name_char(char c, int first)
{
	if (c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	return !first && c >= '0' && c <= '9';
}

static int is_name(const char *s)
{
	if (!is_name_char(s[0], 1))
		return 0;
	for (s++; *s != '\0'; s++)
		if (!is_name_char(*s, 0))
			return 0;
	return 1;
}

/* Replace the value on top with its metatable's __index when that is a
   table.  Returns 0, leaving the value, when there is none; an __index
   function is not followed, as calling it could have side effects, but a
   metatable may name its methods table as `__methods` (tensors do). */
static int step_to_index_table(lua_State *L)
{
	if (!lua_getmetatable(L, -1))
		return 0;
	lua_pushliteral(L, "__index");
	lua_rawget(L, -2);
	if (!lua_istable(L, -1)) {
		lua_pop(L, 1);
		lua_pushliteral(L, "__methods");
		lua_rawget(L, -2);
	}
	lua_remove(L, -2);
	if (!lua_istable(L, -1)) {
		lua_pop(L, 1);
		return 0;
	}
	lua_remove(L, -2);
	return 1;
}

/* [obj, key] -> [obj.key]: raw reads along the __index table chain. */
static void raw_lookup(lua_State *L)
{
	int depth;

	lua_insert(L, -2);                     /* key, obj */
	for (depth = 0; depth < MAX_INDEX_CHAIN; depth++) {
		if (lua_istable(L, -1)) {
			lua_pushvalue(L, -2);
			if (lua_rawget(L, -2) != LUA_TNIL)
				break;
			lua_pop(L, 1);
		}
		if (!step_to_index_table(L)) {
			lua_pushnil(L);
			break;
		}
	}
	if (depth == MAX_INDEX_CHAIN)
		lua_pushnil(L);
	lua_replace(L, -3);
	lua_pop(L, 1);
}

/* Add prefix..key to the list at `list` for each key of the table on top
   that starts with `word`; names starting with '_' (private by convention,
   metamethods) only when the word does. */
static void add_keys(lua_State *L, int list, const char *prefix,
                     const char *word, int methods_only)
{
	size_t wlen = strlen(word);
	int want_private = word[0] == '_';

	lua_pushnil(L);
	while (lua_next(L, -2)) {
		const char *k = lua_type(L, -2) == LUA_TSTRING ?
		                lua_tostring(L, -2) : NULL;

		if (k != NULL && strncmp(k, word, wlen) == 0 && is_name(k) &&
		    (want_private || k[0] != '_') &&
		    (!methods_only || lua_type(L, -1) == LUA_TFUNCTION)) {
			lua_pushfstring(L, "%s%s", prefix, k);
			lua_rawseti(L, list, (lua_Integer)lua_rawlen(L, list) + 1);
		}
		lua_pop(L, 1);
	}
}

/* Keys of the value on top (if a table) and of its __index tables; pops
   the value. */
static void add_members(lua_State *L, int list, const char *prefix,
                        const char *word, int methods_only)
{
	int depth;

	for (depth = 0; depth < MAX_INDEX_CHAIN; depth++) {
		if (lua_istable(L, -1))
			add_keys(L, list, prefix, word, methods_only);
		if (!step_to_index_table(L))
			break;
	}
	lua_pop(L, 1);
}

/* When the table on top is the library, add the names of its submodules
   that are loaded on first use (scorch.repl lists them), so `sc.<TAB>`
   offers `sc.nn` before anything touched it; a loaded one is a key of the
   table already and is skipped here. */
static void add_submodules(lua_State *L, int list, const char *prefix,
                           const char *word)
{
	int value = lua_gettop(L);             /* the table being completed */
	size_t wlen = strlen(word);
	lua_Integer i;

	lua_getglobal(L, "sc");
	if (lua_rawequal(L, -1, value) &&
	    lua_rawgetp(L, LUA_REGISTRYINDEX, &repl_key) == LUA_TTABLE &&
	    lua_getfield(L, -1, "submodules") == LUA_TTABLE) {
		for (i = 1; lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
			const char *k = lua_tostring(L, -1);

			if (strncmp(k, word, wlen) == 0) {
				lua_pushvalue(L, -1);
				if (lua_rawget(L, value) == LUA_TNIL) {
					lua_pushfstring(L, "%s%s", prefix, k);
					lua_rawseti(L, list,
					            (lua_Integer)lua_rawlen(L, list) + 1);
				}
				lua_pop(L, 1);
			}
			lua_pop(L, 1);
		}
	}
	lua_settop(L, value);
}

/* Whether t[k] (t, k at the given indices) names a submodule of the
   library not loaded yet: `sc.nn.Lin<TAB>` then loads scorch.nn, so its
   names complete on first use too.  Only the library's own modules are
   loaded this way, never user code. */
static int is_submodule(lua_State *L, int t, int k)
{
	int yes = 0;
	int top = lua_gettop(L);
	lua_Integer i;

	t = lua_absindex(L, t);
	k = lua_absindex(L, k);
	lua_getglobal(L, "sc");
	if (lua_rawequal(L, -1, t) && lua_type(L, k) == LUA_TSTRING &&
	    lua_rawgetp(L, LUA_REGISTRYINDEX, &repl_key) == LUA_TTABLE &&
	    lua_getfield(L, -1, "submodules") == LUA_TTABLE) {
		for (i = 1; !yes && lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
			yes = lua_rawequal(L, -1, k);
			lua_pop(L, 1);
		}
	}
	lua_settop(L, top);
	return yes;
}

/* Walk "a.b.c" from the globals; leaves the value (maybe nil) on top. */
static void push_path(lua_State *L, const char *path, size_t len)
{
	const char *end = path + len;

	if (len == 0) {                        /* ".x": nothing to walk from */
		lua_pushnil(L);
		return;
	}
	lua_pushglobaltable(L);
	while (path < end && !lua_isnil(L, -1)) {
		const char *dot = memchr(path, '.', (size_t)(end - path));
		size_t n = (size_t)((dot != NULL ? dot : end) - path);

		lua_pushlstring(L, path, n);
		if (!is_name(lua_tostring(L, -1))) {
			lua_pop(L, 2);
			lua_pushnil(L);
			return;
		}
		lua_pushvalue(L, -2);
		lua_pushvalue(L, -2);
		raw_lookup(L);                 /* parent, key, value */
		if (lua_isnil(L, -1) && is_submodule(L, -3, -2)) {
			lua_pop(L, 1);
			lua_gettable(L, -2);   /* loads it: library code only */
		} else {
			lua_remove(L, -2);
		}
		lua_remove(L, -2);             /* value */
		path += n + 1;
	}
}

/* Protected: text -> registry[matches_key] = { candidates } */
static int collect_matches(lua_State *L)
{
	const char *text = luaL_checkstring(L, 1);
	const char *sep = strrchr(text, '.');
	const char *colon = strrchr(text, ':');

	lua_newtable(L);                       /* the list, at index 2 */
	if (colon != NULL && (sep == NULL || colon > sep))
		sep = colon;
	if (sep == NULL) {
		lua_pushglobaltable(L);
		add_members(L, 2, "", text, 0);
		for (int i = 0; keywords[i] != NULL; i++)
			if (strncmp(keywords[i], text, strlen(text)) == 0) {
				lua_pushstring(L, keywords[i]);
				lua_rawseti(L, 2, (lua_Integer)lua_rawlen(L, 2) + 1);
			}
	} else if (memchr(text, ':', (size_t)(sep - text)) == NULL) {
		const char *prefix = lua_pushlstring(L, text, (size_t)(sep - text) + 1);

		push_path(L, text, (size_t)(sep - text));
		if (!lua_isnil(L, -1)) {
			if (*sep == '.')
				add_submodules(L, 2, prefix, sep + 1);
			add_members(L, 2, prefix, sep + 1, *sep == ':');
		} else {
			lua_pop(L, 1);
		}
		lua_pop(L, 1);                 /* prefix */
	}
	lua_rawsetp(L, LUA_REGISTRYINDEX, &matches_key);
	return 0;
}

/* readline's generator: state 0 builds the list, later calls hand out one
   malloc'd candidate each (readline frees them). */
static char *next_match(const char *text, int state)
{
	static lua_Integer next;
	lua_State *L = global_L;
	char *match = NULL;

	if (state == 0) {
		next = 1;
		lua_pushcfunction(L, collect_matches);
		lua_pushstring(L, text);
		if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
			lua_pop(L, 1);
			return NULL;
		}
	}
	if (lua_rawgetp(L, LUA_REGISTRYINDEX, &matches_key) == LUA_TTABLE) {
		if (lua_rawgeti(L, -1, next++) == LUA_TSTRING)
			match = strdup(lua_tostring(L, -1));
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	if (match != NULL)
		return match;
	/* The list is done with; clearing an existing key cannot fail. */
	lua_pushnil(L);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &matches_key);
	return NULL;
}

/* Whether position `at` of the line is inside a string literal that is
   still open: quotes, with backslash escapes, scanned from the start. */
static int in_string(const char *line, int at)
{
	char quote = '\0';
	int i;

	for (i = 0; i < at && line[i] != '\0'; i++) {
		if (quote != '\0' && line[i] == '\\' && i + 1 < at)
			i++;
		else if (quote != '\0' && line[i] == quote)
			quote = '\0';
		else if (quote == '\0' && (line[i] == '"' || line[i] == '\''))
			quote = line[i];
	}
	return quote != '\0';
}

/* Names break at operators and brackets; a file name inside a string
   breaks only at the quote, so "examples/ncsn<TAB> completes as a path. */
static const char name_breaks[] = " \t\n\"\\'`@$><=;|&{}()[],+-*/%^~#";

static char *word_breaks(void)
{
	return (char *)(in_string(rl_line_buffer, rl_point) ? "\"'" : name_breaks);
}

static char **complete(const char *text, int start, int end)
{
	(void)end;
	rl_attempted_completion_over = 1;      /* no file names outside strings */
	rl_completion_append_character = '\0';
	/* Inside a string: file names (readline closes the quote after a
	   file, as bash does, and not after a directory's '/'). */
	if (in_string(rl_line_buffer, start))
		return rl_completion_matches(text, rl_filename_completion_function);
	return rl_completion_matches(text, next_match);
}

/* }====================================================== */


/*
** {======================================================
** The REPL
** =======================================================
*/

/* Reading through readline: on a terminal only, so piped input gives
   plain output with no prompts or escape codes. */
static int use_readline = 0;

static const char *history_file(void)
{
	static char path[PATH_MAX];
	const char *env = getenv("SCORCH_HISTORY");
	const char *home = getenv("HOME");

	if (env != NULL)
		return env[0] != '\0' ? env : NULL;   /* empty: no history */
	if (home == NULL || home[0] == '\0')
		return NULL;
	if (snprintf(path, sizeof path, "%s/.scorch_history", home) >=
	    (int)sizeof path)
		return NULL;
	return path;
}

static int getc_interruptible(FILE *in);

static void start_readline(lua_State *L)
{
	const char *hist = history_file();

	global_L = L;
	rl_readline_name = "scorch";
	/* Ctrl-C at the prompt is ours (push_line), not readline's. */
	rl_catch_signals = 0;
	rl_getc_function = getc_interruptible;
	rl_attempted_completion_function = complete;
	/* '.' and ':' are left out so "a.b.c" and "t:m" complete as one word. */
	rl_completer_word_break_characters = (char *)name_breaks;
	rl_completion_word_break_hook = word_breaks;
	using_history();
	/* A missing file is created now, as append_history needs one; any
	   failure just means a session without saved history. */
	if (hist != NULL && read_history(hist) == ENOENT)
		write_history(hist);
}

static void stop_readline(void)
{
	const char *hist = history_file();

	if (hist != NULL)
		history_truncate_file(hist, HISTORY_LINES);
	clear_history();
}

/* Each statement is appended as soon as it is read, so a session ended by
   Ctrl-C at the prompt still keeps its history. */
static void remember(const char *code)
{
	const char *hist = history_file();

	if (!use_readline || code[0] == '\0')
		return;
	add_history(code);
	if (hist != NULL)
		append_history(1, hist);
}

/* What push_line got. */
enum { LINE_EOF, LINE_OK, LINE_INTERRUPTED };

/* Set by a Ctrl-C while readline waits for a key. */
static volatile sig_atomic_t prompt_interrupted = 0;

static void on_prompt_sigint(int sig)
{
	(void)sig;
	prompt_interrupted = 1;
}

/* readline's key reader.  SIGINT is installed without SA_RESTART while
   readline waits, so read() returns EINTR: the line then ends as if Enter
   were pressed, and push_line drops it, as trepl and Python do. */
static int getc_interruptible(FILE *in)
{
	unsigned char c;

	for (;;) {
		ssize_t n;

		if (prompt_interrupted)
			return '\n';
		n = read(fileno(in), &c, 1);
		if (n == 1)
			return c;
		if (n == 0 || errno != EINTR)
			return EOF;
	}
}

/* Push the next input line without its newline.  Returns LINE_EOF at end of
   input, LINE_INTERRUPTED (nothing pushed) after a Ctrl-C at the prompt. */
static int push_line(lua_State *L, int first)
{
	char *buf = NULL;
	size_t cap = 0;

	if (use_readline) {
		prompt_interrupted = 0;
		set_sigint(on_prompt_sigint);
		buf = readline(first ? "> " : ">> ");
		set_sigint(SIG_DFL);
		if (prompt_interrupted) {
			prompt_interrupted = 0;
			free(buf);
			return LINE_INTERRUPTED;
		}
		if (buf == NULL)
			return LINE_EOF;
		lua_pushstring(L, buf);
	} else {
		ssize_t n = getline(&buf, &cap, stdin);
		if (n < 0) {
			free(buf);
			return LINE_EOF;
		}
		if (n > 0 && buf[n - 1] == '\n')
			n--;
		lua_pushlstring(L, buf, (size_t)n);
	}
	free(buf);
	return LINE_OK;
}

/* A syntax error at <eof> means the statement is not finished yet. */
static int incomplete(lua_State *L, int status)
{
	static const char mark[] = "<eof>";
	size_t len;
	const char *msg;

	if (status != LUA_ERRSYNTAX)
		return 0;
	msg = lua_tolstring(L, -1, &len);
	return len >= sizeof mark - 1 &&
	       strcmp(msg + len - (sizeof mark - 1), mark) == 0;
}

/* Whether the statement being run ended in ';': its results are not
   printed (as in MATLAB and IPython). */
static int quiet = 0;

/* [code] -> [code, chunk or error].  "return <code>" is tried first, so an
   expression prints even when it spans lines; a trailing ';' is left out
   of that attempt and sets `quiet`. */
static int compile_code(lua_State *L)
{
	size_t len, n;
	const char *code = lua_tolstring(L, 1, &len);
	int status;

	for (n = len; n > 0 && strchr(" \t\r\n", code[n - 1]) != NULL; n--)
		;
	quiet = n > 0 && code[n - 1] == ';';
	lua_pushliteral(L, "return ");
	lua_pushlstring(L, code, quiet ? n - 1 : len);
	lua_concat(L, 2);
	status = luaL_loadbuffer(L, lua_tostring(L, -1), lua_rawlen(L, -1), "=stdin");
	lua_remove(L, -2);
	if (status == LUA_OK)
		return status;
	lua_pop(L, 1);
	return luaL_loadbuffer(L, code, len, "=stdin");
}

/* Call scorch.repl's function `name` with the value on top as its one
   argument (popped); pushes its first result, nil when there is no
   scorch.repl or the call failed (the error is reported). */
static void call_repl(lua_State *L, const char *name)
{
	if (lua_rawgetp(L, LUA_REGISTRYINDEX, &repl_key) != LUA_TTABLE) {
		lua_pop(L, 2);
		lua_pushnil(L);
		return;
	}
	lua_getfield(L, -1, name);
	lua_remove(L, -2);
	lua_insert(L, -2);
	if (report(L, docall(L, 1, 1), NULL) != LUA_OK)
		lua_pushnil(L);
}

/* A line that is one of the REPL's own commands (`?name`, `help`, `:time
   on`, `$ ls`) runs through scorch.repl; returns 1 when it was one. */
static int run_command(lua_State *L)
{
	int yes;

	lua_pushvalue(L, 1);
	call_repl(L, "command");
	yes = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return yes;
}

/* Nothing to run: a REPL command ran, or Ctrl-C dropped the input. */
#define STATEMENT_NONE (-2)

/* Read one statement; leaves only its chunk (or error) on the stack.
   Returns the load status, STATEMENT_NONE, or -1 at end of input. */
static int read_statement(lua_State *L)
{
	int status, got;

	lua_settop(L, 0);
	got = push_line(L, 1);
	if (got != LINE_OK)
		return got == LINE_EOF ? -1 : STATEMENT_NONE;
	if (run_command(L)) {
		remember(lua_tostring(L, 1));
		return STATEMENT_NONE;
	}
	while (incomplete(L, status = compile_code(L))) {
		got = push_line(L, 0);
		if (got == LINE_EOF)
			break;                 /* report the <eof> error */
		if (got == LINE_INTERRUPTED) {
			lua_settop(L, 0);
			return STATEMENT_NONE;
		}
		lua_remove(L, -2);             /* the <eof> error */
		lua_pushliteral(L, "\n");
		lua_insert(L, -2);
		lua_concat(L, 3);
	}
	remember(lua_tostring(L, 1));
	lua_remove(L, 1);
	return status;
}

/* Print whatever the statement returned: through scorch.repl's printer
   (nested tables, tensors by their __tostring), or the global print. */
static void print_results(lua_State *L)
{
	int n = lua_gettop(L);

	if (n == 0)
		return;
	luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
	if (lua_rawgetp(L, LUA_REGISTRYINDEX, &repl_key) == LUA_TTABLE) {
		lua_getfield(L, -1, "print_results");
		lua_remove(L, -2);
	} else {
		lua_pop(L, 1);
		lua_getglobal(L, "print");
	}
	lua_insert(L, 1);
	report(L, docall(L, n, 0), NULL);
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void repl(lua_State *L)
{
	int status;

	while ((status = read_statement(L)) != -1) {
		double start = now_seconds();

		if (status == STATEMENT_NONE)
			continue;
		if (status == LUA_OK)
			status = docall(L, 0, LUA_MULTRET);
		if (status == LUA_OK) {
			if (!quiet)
				print_results(L);
		} else {
			report(L, status, NULL);
		}
		lua_settop(L, 0);
		lua_pushnumber(L, now_seconds() - start);
		call_repl(L, "after");
		lua_settop(L, 0);
		fflush(stdout);
	}
	lua_settop(L, 0);
	if (use_readline)
		putchar('\n');                 /* leave the shell on a fresh line */
	fflush(stdout);
}

/* The REPL's Lua half, scorch.repl, in the registry, and `help` as a
   global of the session; without it the REPL still runs, plainer. */
static void load_repl_module(lua_State *L)
{
	lua_getglobal(L, "require");
	lua_pushliteral(L, "scorch.repl");
	if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
		lua_pop(L, 1);
		return;
	}
	lua_getfield(L, -1, "help");
	lua_setglobal(L, "help");
	lua_rawsetp(L, LUA_REGISTRYINDEX, &repl_key);
}

/* }====================================================== */


/* `scorch train|sample|eval ...`: the word is a command only as the first
   argument, so `scorch ./train` (or `scorch -- train`) still runs a script
   file named train. */
static int is_command(const char *a)
{
	return strcmp(a, "train") == 0 || strcmp(a, "sample") == 0 ||
	       strcmp(a, "eval") == 0;
}

/* Runs scorch.run.cli.main(command, {args...}); its result is the exit
   status (0 done, 1 an error it reported, 128 + a signal when a run was
   stopped by one). */
static int run_subcommand(lua_State *L, int argc, char **argv)
{
	int status, i;

	luaL_openlibs(L);
	add_tree_paths(L);
	create_arg_table(L, argv, argc, 1);
	if (load_library(L) != LUA_OK)
		return 0;
	lua_gc(L, LUA_GCGEN, 0, 0);
	lua_getglobal(L, "require");
	lua_pushliteral(L, "scorch.run.cli");
	status = docall(L, 1, 1);
	if (status != LUA_OK) {
		report(L, status, progname);
		return 0;
	}
	lua_getfield(L, -1, "main");
	lua_pushstring(L, argv[1]);
	lua_createtable(L, argc - 2, 0);
	for (i = 2; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, i - 1);
	}
	status = docall(L, 2, 1);
	if (status != LUA_OK) {
		report(L, status, progname);
		return 0;
	}
	if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) != 0) {
		fail_status = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : EXIT_FAILURE;
		return 0;
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* Everything runs here, in protected mode, so that even a memory error
   while starting up is reported rather than aborting. */
static int pmain(lua_State *L)
{
	int argc = (int)lua_tointeger(L, 1);
	char **argv = (char **)lua_touserdata(L, 2);
	int script = argc;
	int flags = collect_args(argv, &script);
	int tty = isatty(STDIN_FILENO);
	int nothing_else = script == argc && !(flags & (HAS_E | HAS_V));
	int interactive = (flags & HAS_I) || (nothing_else && tty);
	int from_stdin = !interactive && nothing_else;

	lua_settop(L, 0);
	if (argc >= 2 && is_command(argv[1]))
		return run_subcommand(L, argc, argv);
	if (flags & HAS_ERROR) {
		bad_option(argv, script);
		return 0;
	}
	if (flags & HAS_H) {
		print_usage(stdout);
		lua_pushboolean(L, 1);
		return 1;
	}
	use_readline = interactive && tty;
	if ((flags & HAS_V) && !use_readline)
		printf("%s\n", VERSION_LINE);  /* the banner says it otherwise */
	if (!interactive && !from_stdin && script == argc && !(flags & HAS_E)) {
		lua_pushboolean(L, 1);         /* just -v */
		return 1;
	}
	luaL_openlibs(L);
	add_tree_paths(L);
	create_arg_table(L, argv, argc, script);
	/* A bare REPL still starts without the library, to let one find out
	   why it failed; anything that runs code needs it. */
	if (load_library(L) != LUA_OK &&
	    !(interactive && script == argc && !(flags & HAS_E)))
		return 0;
	/* Generational collection: a script makes and drops tensors by the
	   thousand, and young collections free them in small batches (a chain
	   of small ops runs about 8% fewer instructions than with incremental
	   collection).  Switched on once the library is loaded, so its tables
	   start old (switching at the start made no difference).  The core's
	   bytes are still paced by the binding's full collections;
	   collectgarbage("incremental") switches back. */
	lua_gc(L, LUA_GCGEN, 0, 0);
	if (!run_statements(L, argv, script))
		return 0;
	if (script < argc) {
		const char *fname = argv[script];

		if (strcmp(fname, "-") == 0 && !(flags & HAS_DASHDASH))
			fname = NULL;
		if (run_file(L, fname) != LUA_OK)
			return 0;
	}
	if (interactive) {
		if (use_readline) {
			printf("%s  --  `sc` (also `scorch`) is loaded; "
			       "Ctrl-D quits\n", VERSION_LINE);
			start_readline(L);
		}
		load_repl_module(L);
		repl(L);
		if (use_readline)
			stop_readline();
	} else if (from_stdin && run_file(L, NULL) != LUA_OK) {
		return 0;
	}
	lua_pushboolean(L, 1);
	return 1;
}


/*
** Lua's own small objects come from per-size free lists.  Every tensor op
** creates a userdata that dies a few statements later, and the C library's
** malloc and free were a sixth of the instructions of a chain of small ops.
** Blocks of up to POOL_MAX bytes are carved from POOL_CHUNK-byte chunks and
** never returned to the C library (the pool is as large as the peak number
** of small objects); larger ones go to realloc.  Lua tells the allocator
** each block's old size, so blocks carry no header.  Sanitizer builds use
** plain malloc, so the sanitizers still see every block.
*/
#if defined(__SANITIZE_ADDRESS__)
#define POOL_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_OFF 1
#endif
#endif

#define POOL_MAX 256
#define POOL_GRAIN 16
#define POOL_CHUNK (64 * 1024)

typedef struct pool_chunk {
	struct pool_chunk *next;
	char *unused, *end;
} pool_chunk;

static struct {
	void *free[POOL_MAX / POOL_GRAIN + 1]; /* a free block holds the next */
	pool_chunk *chunks;
} pool;

static void *pool_get(size_t n)
{
	size_t c = (n + POOL_GRAIN - 1) / POOL_GRAIN;
	void *p = pool.free[c];
	if (p != NULL) {
		pool.free[c] = *(void **)p;
		return p;
	}
	size_t sz = c * POOL_GRAIN;
	pool_chunk *ch = pool.chunks;
	if (ch == NULL || (size_t)(ch->end - ch->unused) < sz) {
		/* the chunk header is padded to the grain; what is left of the
		   old chunk stays unused */
		ch = malloc(POOL_CHUNK);
		if (ch == NULL)
			return NULL;
		ch->next = pool.chunks;
		ch->unused = (char *)ch + (sizeof *ch + POOL_GRAIN - 1) / POOL_GRAIN * POOL_GRAIN;
		ch->end = (char *)ch + POOL_CHUNK;
		pool.chunks = ch;
	}
	p = ch->unused;
	ch->unused += sz;
	return p;
}

static void pool_put(void *p, size_t n)
{
	size_t c = (n + POOL_GRAIN - 1) / POOL_GRAIN;
	*(void **)p = pool.free[c];
	pool.free[c] = p;
}

static void *lua_pool_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	(void)ud;
#ifdef POOL_OFF
	if (nsize == 0) {
		free(ptr);
		return NULL;
	}
	return realloc(ptr, nsize);
#else
	if (ptr == NULL)
		osize = 0; /* then osize only names the kind of object */
	if (nsize == 0) {
		if (ptr != NULL) {
			if (osize <= POOL_MAX)
				pool_put(ptr, osize);
			else
				free(ptr);
		}
		return NULL;
	}
	if (osize > POOL_MAX && nsize > POOL_MAX)
		return realloc(ptr, nsize);
	if (ptr != NULL && osize <= POOL_MAX && nsize <= POOL_MAX &&
	    (osize + POOL_GRAIN - 1) / POOL_GRAIN == (nsize + POOL_GRAIN - 1) / POOL_GRAIN)
		return ptr; /* same size class */
	void *q = nsize <= POOL_MAX ? pool_get(nsize) : malloc(nsize);
	if (q == NULL)
		return NULL; /* Lua keeps the old block */
	if (ptr != NULL) {
		memcpy(q, ptr, osize < nsize ? osize : nsize);
		if (osize <= POOL_MAX)
			pool_put(ptr, osize);
		else
			free(ptr);
	}
	return q;
#endif
}

/* What luaL_newstate installs, for a state made with our allocator. */
static int on_panic(lua_State *L)
{
	const char *msg = lua_tostring(L, -1);
	fprintf(stderr, "PANIC: unprotected error in call to Lua API (%s)\n",
	        msg != NULL ? msg : "error object is not a string");
	fflush(stderr);
	return 0;
}

/* Warnings as the stand-alone lua gives them: off until "@on"; a message
   may come in pieces (tocont). */
static void warn_off(void *ud, const char *msg, int tocont);
static void warn_on(void *ud, const char *msg, int tocont);

static int warn_control(lua_State *L, const char *msg, int tocont)
{
	if (tocont || *msg++ != '@')
		return 0;
	if (strcmp(msg, "off") == 0)
		lua_setwarnf(L, warn_off, L);
	else if (strcmp(msg, "on") == 0)
		lua_setwarnf(L, warn_on, L);
	return 1;
}

static void warn_off(void *ud, const char *msg, int tocont)
{
	warn_control((lua_State *)ud, msg, tocont);
}

static void warn_cont(void *ud, const char *msg, int tocont)
{
	lua_State *L = (lua_State *)ud;
	fputs(msg, stderr);
	if (tocont) {
		lua_setwarnf(L, warn_cont, L);
	} else {
		fputs("\n", stderr);
		fflush(stderr);
		lua_setwarnf(L, warn_on, L);
	}
}

static void warn_on(void *ud, const char *msg, int tocont)
{
	if (warn_control((lua_State *)ud, msg, tocont))
		return;
	fputs("Lua warning: ", stderr);
	warn_cont(ud, msg, tocont);
}

int main(int argc, char **argv)
{
	lua_State *L;
	int status, ok;

	if (argv[0] != NULL && argv[0][0] != '\0')
		progname = argv[0];
	L = lua_newstate(lua_pool_alloc, NULL);
	if (L == NULL) {
		message(progname, "cannot create state: not enough memory");
		return EXIT_FAILURE;
	}
	lua_atpanic(L, on_panic);
	lua_setwarnf(L, warn_off, L);
	lua_pushcfunction(L, pmain);
	lua_pushinteger(L, argc);
	lua_pushlightuserdata(L, argv);
	status = lua_pcall(L, 2, 1, 0);
	ok = status == LUA_OK && lua_toboolean(L, -1);
	report(L, status, progname);
	/* Closing runs every pending __gc, so tensors and files are released
	   even when the script failed. */
	lua_close(L);
	return ok ? EXIT_SUCCESS : fail_status;
}
