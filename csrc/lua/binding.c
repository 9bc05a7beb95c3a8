/*
 * scorch binding: the Tensor userdata, its metamethods and methods, the
 * factories and the autograd entry points, as the Lua module scorch.core.
 *
 * Every function checks its arguments before calling the core; the core
 * reports failures as NULL plus a message, which becomes a Lua error here.
 * Userdata are created before the tensor they hold (see sc_lua_newslot), so
 * an error at any point is cleaned up by the collector.
 */
#include "binding.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../core/autograd.h"
#include "../core/pool.h"
#include "../core/smallgemm.h"
#include "../core/thinconv.h"
#include "../core/gemm512.h"
#include "../core/wino.h"

/* ---- userdata ----------------------------------------------------------------- */

/* Registry reference of the tensor metatable, fetched once per call. */
static int tensor_mt_ref = LUA_NOREF;

/* ---- releasing tensors without finalizers ----------------------------------
   A tensor's userdata holds its pointer and a seal: a per-process secret
   mixed with the slot's own address.  A finalizer (__gc) per tensor costs
   Lua a protected call and an extra collection cycle for every temporary,
   about as much as the rest of a 16-element op.  Instead the binding wraps
   the state's allocator: when Lua frees a block of a tensor userdata's size
   whose payload carries a valid seal, the tensor is released there, then
   the seal is wiped, so a freed block never carries one.  Lua frees a
   userdata only once nothing can reach it (finalizers of other objects
   included), and at lua_close, as __gc would.  States that cannot be
   wrapped (more than WRAP_MAX per process) keep __gc. */
typedef struct {
  sc_tensor *t; /* first: the slot is also an sc_tensor ** */
  uintptr_t seal;
} sc_slot;

static uintptr_t seal_key;
static size_t slot_block; /* the size Lua allocates and frees per slot */
static size_t slot_off;   /* where the payload sits in that block */

#define WRAP_MAX 8
typedef struct {
  lua_Alloc f;
  void *ud;
} alloc_wrap;
static alloc_wrap wraps[WRAP_MAX];
static int n_wraps;
static void *probe_block;  /* while measuring the layout: the userdata's */
static size_t probe_size;  /* block and its size, as Lua asked for them */

static uintptr_t seal_of(const sc_slot *s) { return seal_key ^ (uintptr_t)s; }

static void *wrapped_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  alloc_wrap *w = ud;
  if (nsize == 0 && ptr && osize == slot_block && slot_block) {
    sc_slot *s = (sc_slot *)((char *)ptr + slot_off);
    if (s->seal == seal_of(s)) {
      s->seal = 0;
      sc_tensor *t = s->t;
      s->t = NULL;
      sc_release(t); /* C only: never calls back into Lua */
    }
  }
  void *q = w->f(w->ud, ptr, osize, nsize);
  /* Lua names the kind of object when it allocates one (ptr NULL) */
  if (!slot_block && !ptr && osize == LUA_TUSERDATA) {
    probe_block = q;
    probe_size = nsize;
  }
  return q;
}

/* Wraps L's allocator; returns 0 if the state keeps finalizers instead.
   The first call measures where a slot's payload sits in its block, on
   one unsealed userdata (Lua's layout, the same for every state). */
static int wrap_allocator(lua_State *L) {
  void *ud;
  lua_Alloc f = lua_getallocf(L, &ud);
  if (f == wrapped_alloc) return 1; /* opened twice in one state */
  if (n_wraps == WRAP_MAX) return 0;
  if (!seal_key && getentropy(&seal_key, sizeof seal_key) != 0)
    seal_key = ((uintptr_t)&seal_key * 0x9E3779B97F4A7C15u) ^
               ((uintptr_t)time(NULL) << 20) ^ (uintptr_t)getpid();
  alloc_wrap *w = &wraps[n_wraps++];
  *w = (alloc_wrap){f, ud};
  lua_setallocf(L, wrapped_alloc, w);
  if (!slot_block) {
    probe_block = NULL;
    char *p = lua_newuserdatauv(L, sizeof(sc_slot), 0);
    memset(p, 0, sizeof(sc_slot));
    lua_pop(L, 1);
    if (!probe_block || p < (char *)probe_block) { /* not Lua 5.4's layout */
      lua_setallocf(L, f, ud);
      n_wraps--;
      return 0;
    }
    slot_off = (size_t)(p - (char *)probe_block);
    slot_block = probe_size;
  }
  return 1;
}

sc_tensor *sc_lua_test(lua_State *L, int idx) {
  sc_slot *s = lua_touserdata(L, idx);
  if (!s || lua_rawlen(L, idx) != sizeof *s || s->seal != seal_of(s))
    return NULL;
  return s->t;
}

sc_tensor *sc_lua_check(lua_State *L, int idx) {
  sc_tensor *t = sc_lua_test(L, idx);
  if (!t) {
    if (luaL_testudata(L, idx, SC_TENSOR_MT))
      luaL_argerror(L, idx, "tensor was closed");
    luaL_typeerror(L, idx, "tensor");
  }
  return t;
}

/* Collector pressure.  Lua cannot see the bytes the core holds, so the
   binding makes up for it at a safe point, the start of every op (at most
   once per megabyte the core hands out).  Two thresholds, both counted
   from gc_base, the core's bytes after the last full collection:
   - the floor, an eighth of gc_base and at least 4 MB: past it a young
     collection runs (generational mode; in incremental mode one step).  It
     walks only the objects made since the last collection, where nearly
     all dead tensors are, so it is cheap whatever the Lua heap.  Dead
     tensors thus wait for at most about an eighth of the live set.
   - the slack, the floor or sixteen times the Lua heap if that is more: a
     full collection runs only when the core is still past it after the
     young one (dead tensors that had grown old).  A full collection walks
     every Lua object (three times in generational mode), cache-cold after
     the products, so a large Lua heap, busted's say, keeps it rare.  The
     Lua heap counted there is at most twice what the last full collection
     left, its live part: the heap as counted also holds every dead object
     since, and after a training loop that was 26 MB of dead Lua objects
     over a 1 MB live heap.
   History.  Letting the core double first cost the U-Net training step of
   W7t a third of its peak RSS (575 -> 376 MB at the same speed).  A floor
   of 16 MB made a DDPM sampling step over 10,000 2-D points (0.7 MB of
   temporaries) write every new tensor into blocks that 16 MB of others had
   pushed out of the caches: filling 10,000 floats took 27 us, with 4 MB
   9 us.  Full collections at the slack, before young ones came first, took
   W9v about 0.4 ms of a 5.6 ms step (W9v 5.8-6.0 -> 5.4-5.5 ms, W9f
   14.9-15.5 -> 12.3-12.5 ms).  Young collections at the slack too (not at
   the floor) let a large Lua heap hold back every collection: a full one
   run while a figure's tables were live set the slack to hundreds of MB,
   and a 2-D DDPM's 3,000 training steps (`scorch train
   configs/ddpm_2d.lua`) peaked at 600 MB with 191 MB of dead tensors (now
   70 MB), the sampling after it let 416 MB pile up between collections
   and ran its first draws 4-5 times slower than its last. */
static lua_State *main_L;
static size_t gc_debt;
static int64_t gc_base;  /* core bytes after the last full collection */
static int64_t lua_base; /* Lua heap bytes after it */

static void on_alloc(void *ud, size_t bytes) {
  (void)ud;
  gc_debt += bytes;
}

static int on_oom(void *ud) {
  (void)ud;
  if (!main_L) return 0;
  lua_gc(main_L, LUA_GCCOLLECT);
  return 1;
}

static void pay_debt(lua_State *L) {
  if (gc_debt < ((size_t)1 << 20)) return;
  gc_debt = 0;
  int64_t floor = gc_base / 8 > ((int64_t)4 << 20) ? gc_base / 8 : ((int64_t)4 << 20);
  if (sc_bytes_in_use() - gc_base <= floor) return;
  /* a young collection first (generational mode; in incremental mode one
     step): it walks only the objects made since the last one, which is
     where most dead tensors are */
  lua_gc(L, LUA_GCSTEP, 0);
  int64_t lua_bytes = (int64_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024;
  if (lua_bytes > 2 * lua_base) lua_bytes = 2 * lua_base;
  int64_t slack = 16 * lua_bytes > floor ? 16 * lua_bytes : floor;
  if (sc_bytes_in_use() - gc_base <= slack) return;
  lua_gc(L, LUA_GCCOLLECT);
  gc_base = sc_bytes_in_use();
  lua_base = (int64_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024;
}

sc_tensor **sc_lua_newslot(lua_State *L) {
  pay_debt(L);
  sc_slot *s = lua_newuserdatauv(L, sizeof *s, 0);
  s->t = NULL;
  s->seal = seal_of(s);
  lua_rawgeti(L, LUA_REGISTRYINDEX, tensor_mt_ref);
  lua_setmetatable(L, -2);
  return &s->t;
}

/* Key of the value on top in table t (popping the value), or NULL. */
static const char *key_of(lua_State *L, int t) {
  int v = lua_gettop(L);
  for (lua_pushnil(L); lua_next(L, t); lua_pop(L, 1))
    if (lua_rawequal(L, -1, v) && lua_type(L, -2) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -2); /* the table keeps it alive */
      lua_settop(L, v - 1);
      return k;
    }
  lua_settop(L, v - 1);
  return NULL;
}

/* Name of the running C function: as called, or else its key in the module
   or in the methods table (a function called through pcall has no name). */
static const char *running_name(lua_State *L) {
  lua_Debug ar;
  if (!lua_getstack(L, 0, &ar) || !lua_getinfo(L, "nf", &ar)) return NULL;
  if (ar.name) {
    lua_pop(L, 1);
    return ar.name;
  }
  int f = lua_gettop(L);
  const char *k = NULL;
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, "scorch.core") == LUA_TTABLE) {
    lua_pushvalue(L, f);
    k = key_of(L, f + 2);
  }
  if (!k && lua_rawgeti(L, LUA_REGISTRYINDEX, tensor_mt_ref) == LUA_TTABLE &&
      lua_getfield(L, -1, "__methods") == LUA_TTABLE) {
    lua_pushvalue(L, f);
    k = key_of(L, lua_gettop(L) - 1);
  }
  lua_settop(L, f - 1);
  return k;
}

int sc_lua_core_error(lua_State *L) {
  const char *msg = sc_error();
  /* core messages name their op, but a failed allocation cannot: name the
     function being called instead */
  const char *fn = strncmp(msg, "out of memory", 13) ? NULL : running_name(L);
  if (fn) return luaL_error(L, "scorch.%s: %s", fn, msg);
  return luaL_error(L, "scorch.%s", msg);
}

int sc_lua_fill(lua_State *L, sc_tensor **slot, sc_tensor *t) {
  if (!t) return sc_lua_core_error(L);
  *slot = t;
  return 1;
}

/* Pushes the result of a core call made after the slot was pushed. */
#define RESULT(expr)                                                        \
  do {                                                                      \
    sc_tensor **slot_ = sc_lua_newslot(L);                                  \
    return sc_lua_fill(L, slot_, (expr));                                   \
  } while (0)

static int t_gc(lua_State *L) {
  sc_tensor **p = lua_touserdata(L, 1);
  if (p && *p) {
    sc_release(*p);
    *p = NULL;
  }
  return 0;
}

/* ---- argument helpers ------------------------------------------------------------ */

int sc_lua_dim(lua_State *L, int idx, int ndim, int extra, const char *fn) {
  lua_Integer d = luaL_checkinteger(L, idx);
  lua_Integer n = ndim + extra;
  lua_Integer z = d < 0 ? d + n : d - 1;
  if (d == 0 || z < 0 || z >= n) {
    if (n == 0)
      return luaL_error(L, "scorch.%s: dimension %d out of range (the tensor "
                        "has no dimensions)", fn, (int)d);
    return luaL_error(L, "scorch.%s: dimension %d out of range (expected "
                      "-%d..-1 or 1..%d)", fn, (int)d, (int)n, (int)n);
  }
  return (int)z;
}

static int64_t check_size(lua_State *L, int idx, const char *fn) {
  int isnum;
  lua_Integer v = lua_tointegerx(L, idx, &isnum);
  if (!isnum)
    return luaL_error(L, "scorch.%s: sizes must be integers (got %s)", fn,
                      luaL_typename(L, idx));
  return (int64_t)v;
}

int sc_lua_shape(lua_State *L, int idx, int64_t *shape, int *next,
                 const char *fn) {
  int n = 0;
  if (lua_istable(L, idx) && !sc_lua_test(L, idx)) {
    n = (int)luaL_len(L, idx);
    if (n > SC_MAX_DIMS)
      return luaL_error(L, "scorch.%s: %d dimensions (at most %d)", fn, n,
                        SC_MAX_DIMS);
    for (int d = 0; d < n; d++) {
      lua_geti(L, idx, d + 1);
      shape[d] = check_size(L, -1, fn);
      lua_pop(L, 1);
    }
    *next = idx + 1;
    return n;
  }
  while (lua_type(L, idx + n) == LUA_TNUMBER) {
    if (n == SC_MAX_DIMS)
      return luaL_error(L, "scorch.%s: too many dimensions (at most %d)", fn,
                        SC_MAX_DIMS);
    shape[n] = check_size(L, idx + n, fn);
    n++;
  }
  /* only an options table (or nothing) may follow the sizes */
  int tp = lua_type(L, idx + n);
  if (tp != LUA_TNONE && tp != LUA_TNIL && tp != LUA_TTABLE)
    return luaL_error(L, "scorch.%s: sizes must be integers (got %s)", fn,
                      luaL_typename(L, idx + n));
  *next = idx + n;
  return n;
}

static int positive_shape(lua_State *L, int n, const int64_t *shape,
                          const char *fn) {
  int64_t total = 1;
  for (int d = 0; d < n; d++) {
    if (shape[d] < 0)
      return luaL_error(L, "scorch.%s: negative size %d in dimension %d", fn,
                        (int)shape[d], d + 1);
    if (shape[d] && total > INT64_MAX / 8 / shape[d])
      return luaL_error(L, "scorch.%s: shape too large", fn);
    total *= shape[d];
  }
  return 0;
}

sc_dtype sc_lua_opt_dtype(lua_State *L, int idx, sc_dtype def) {
  if (!lua_istable(L, idx)) return def;
  lua_getfield(L, idx, "dtype");
  sc_dtype dt = def;
  if (!lua_isnil(L, -1)) {
    const char *s = lua_tostring(L, -1);
    if (s && !strcmp(s, "float32"))
      dt = SC_FLOAT32;
    else if (s && !strcmp(s, "float64"))
      dt = SC_FLOAT64;
    else /* the calling function's name comes with the argument error */
      luaL_argerror(L, idx, lua_pushfstring(L, "dtype must be \"float32\" or "
                    "\"float64\" (got %s)", s ? s : luaL_typename(L, -1)));
  }
  lua_pop(L, 1);
  return dt;
}

static sc_generator *opt_generator(lua_State *L, int idx) {
  if (!lua_istable(L, idx)) return NULL;
  lua_getfield(L, idx, "generator");
  sc_generator *g = NULL;
  if (!lua_isnil(L, -1)) g = luaL_checkudata(L, -1, SC_GENERATOR_MT);
  lua_pop(L, 1);
  return g;
}

static int opt_bool(lua_State *L, int idx, const char *key, int def) {
  if (!lua_istable(L, idx)) return def;
  lua_getfield(L, idx, key);
  int v = lua_isnil(L, -1) ? def : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* Applies {requires_grad = true} from an options table to the new tensor on
   top of the stack. */
static int finish_factory(lua_State *L, int opts) {
  if (opt_bool(L, opts, "requires_grad", 0)) (*(sc_tensor **)lua_touserdata(L, -1))->requires_grad = 1;
  return 1;
}

/* ---- factories ---------------------------------------------------------------------- */

static int l_empty_like(lua_State *L, const char *fn, double fillv, int use_fill) {
  int64_t shape[SC_MAX_DIMS];
  int next;
  int n = sc_lua_shape(L, 1, shape, &next, fn);
  positive_shape(L, n, shape, fn);
  sc_dtype dt = sc_lua_opt_dtype(L, next, SC_FLOAT32);
  sc_tensor **slot = sc_lua_newslot(L);
  sc_lua_fill(L, slot, use_fill ? sc_full(n, shape, fillv, dt) : sc_empty(n, shape, dt));
  return finish_factory(L, next);
}

static int l_zeros(lua_State *L) { return l_empty_like(L, "zeros", 0, 1); }
static int l_ones(lua_State *L) { return l_empty_like(L, "ones", 1, 1); }
static int l_empty(lua_State *L) { return l_empty_like(L, "empty", 0, 0); }

static int l_full(lua_State *L) {
  int64_t shape[SC_MAX_DIMS];
  int next;
  int n = sc_lua_shape(L, 1, shape, &next, "full");
  positive_shape(L, n, shape, "full");
  double v = luaL_checknumber(L, next);
  sc_dtype dt = sc_lua_opt_dtype(L, next + 1, SC_FLOAT32);
  sc_tensor **slot = sc_lua_newslot(L);
  sc_lua_fill(L, slot, sc_full(n, shape, v, dt));
  return finish_factory(L, next + 1);
}

static int random_factory(lua_State *L, const char *fn, int normal) {
  int64_t shape[SC_MAX_DIMS];
  int next;
  int n = sc_lua_shape(L, 1, shape, &next, fn);
  positive_shape(L, n, shape, fn);
  sc_dtype dt = sc_lua_opt_dtype(L, next, SC_FLOAT32);
  sc_generator *g = opt_generator(L, next);
  sc_tensor **slot = sc_lua_newslot(L);
  sc_lua_fill(L, slot, normal ? sc_randn(g, n, shape, dt) : sc_rand(g, n, shape, dt));
  return finish_factory(L, next);
}

static int l_randn(lua_State *L) { return random_factory(L, "randn", 1); }
static int l_rand(lua_State *L) { return random_factory(L, "rand", 0); }

static int l_randint(lua_State *L) {
  lua_Integer lo = luaL_checkinteger(L, 1), hi = luaL_checkinteger(L, 2);
  int64_t shape[SC_MAX_DIMS];
  int next;
  int n = sc_lua_shape(L, 3, shape, &next, "randint");
  positive_shape(L, n, shape, "randint");
  sc_dtype dt = sc_lua_opt_dtype(L, next, SC_FLOAT32);
  sc_generator *g = opt_generator(L, next);
  RESULT(sc_randint(g, lo, hi, n, shape, dt));
}

static int l_arange(lua_State *L) {
  double a = luaL_checknumber(L, 1);
  double b, step = 1;
  int opts = 3;
  if (lua_isnoneornil(L, 2) || lua_istable(L, 2)) { /* arange(n) */
    b = a;
    a = 0;
    opts = 2;
  } else {
    b = luaL_checknumber(L, 2);
    if (lua_type(L, 3) == LUA_TNUMBER) {
      step = lua_tonumber(L, 3);
      opts = 4;
    }
  }
  sc_dtype dt = sc_lua_opt_dtype(L, opts, SC_FLOAT32);
  RESULT(sc_arange(a, b, step, dt));
}

static int l_linspace(lua_State *L) {
  double a = luaL_checknumber(L, 1), b = luaL_checknumber(L, 2);
  lua_Integer n = luaL_checkinteger(L, 3);
  sc_dtype dt = sc_lua_opt_dtype(L, 4, SC_FLOAT32);
  RESULT(sc_linspace(a, b, n, dt));
}

/* sc.tensor(x): a number or nested tables of numbers. */
static void nested_shape(lua_State *L, int idx, int depth, int *nd,
                         int64_t *shape) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    *nd = depth;
    return;
  }
  if (!lua_istable(L, idx))
    luaL_error(L, "scorch.tensor: expected numbers or nested tables (got %s "
               "at depth %d)", luaL_typename(L, idx), depth + 1);
  if (depth >= SC_MAX_DIMS)
    luaL_error(L, "scorch.tensor: nested deeper than %d", SC_MAX_DIMS);
  shape[depth] = (int64_t)luaL_len(L, idx);
  if (shape[depth] == 0) {
    *nd = depth + 1;
    return;
  }
  lua_geti(L, idx, 1);
  nested_shape(L, lua_gettop(L), depth + 1, nd, shape);
  lua_pop(L, 1);
}

static void nested_fill(lua_State *L, int idx, int depth, int nd,
                        const int64_t *shape, double *out, int64_t *k) {
  if (depth == nd) {
    int isnum;
    double v = lua_tonumberx(L, idx, &isnum);
    if (!isnum)
      luaL_error(L, "scorch.tensor: expected a number at depth %d (got %s)",
                 depth + 1, luaL_typename(L, idx));
    out[(*k)++] = v;
    return;
  }
  if (!lua_istable(L, idx) || (int64_t)luaL_len(L, idx) != shape[depth])
    luaL_error(L, "scorch.tensor: ragged nested table (expected %d elements "
               "at depth %d)", (int)shape[depth], depth + 1);
  for (int64_t i = 1; i <= shape[depth]; i++) {
    lua_geti(L, idx, i);
    nested_fill(L, lua_gettop(L), depth + 1, nd, shape, out, k);
    lua_pop(L, 1);
  }
}

static int l_tensor(lua_State *L) {
  luaL_checkany(L, 1);
  if (sc_lua_test(L, 1)) { /* sc.tensor(t) copies */
    sc_tensor *t = sc_lua_check(L, 1);
    sc_dtype dt = sc_lua_opt_dtype(L, 2, t->dtype);
    sc_tensor **slot = sc_lua_newslot(L);
    int prev = sc_set_grad_enabled(0);
    sc_tensor *c = sc_to_dtype(t, dt);
    sc_tensor *d = c && c == t ? sc_clone(t) : c;
    if (c == t) sc_release(c);
    sc_set_grad_enabled(prev);
    sc_lua_fill(L, slot, d);
    return finish_factory(L, 2);
  }
  int nd = 0;
  int64_t shape[SC_MAX_DIMS];
  nested_shape(L, 1, 0, &nd, shape);
  sc_dtype dt = sc_lua_opt_dtype(L, 2, SC_FLOAT32);
  int64_t n = 1;
  for (int d = 0; d < nd; d++) n *= shape[d];
  double *buf = lua_newuserdatauv(L, sizeof(double) * (size_t)(n ? n : 1), 0);
  int64_t k = 0;
  nested_fill(L, 1, 0, nd, shape, buf, &k);
  sc_tensor **slot = sc_lua_newslot(L);
  sc_lua_fill(L, slot, sc_from_doubles(nd, shape, buf, dt));
  return finish_factory(L, 2);
}

/* ---- generators ----------------------------------------------------------------------- */

static uint64_t check_seed(lua_State *L, int idx) {
  lua_Integer s = luaL_checkinteger(L, idx);
  return (uint64_t)s;
}

static int l_manual_seed(lua_State *L) {
  sc_generator_seed(sc_default_generator(), check_seed(L, 1));
  return 0;
}

static int l_generator(lua_State *L) {
  uint64_t seed = lua_isnoneornil(L, 1) ? 0 : check_seed(L, 1);
  sc_generator *g = lua_newuserdatauv(L, sizeof *g, 0);
  sc_generator_seed(g, seed);
  luaL_setmetatable(L, SC_GENERATOR_MT);
  return 1;
}

static int g_manual_seed(lua_State *L) {
  sc_generator *g = luaL_checkudata(L, 1, SC_GENERATOR_MT);
  sc_generator_seed(g, check_seed(L, 2));
  lua_settop(L, 1);
  return 1;
}

static int g_seed(lua_State *L) {
  sc_generator *g = luaL_checkudata(L, 1, SC_GENERATOR_MT);
  lua_pushinteger(L, (lua_Integer)g->seed);
  return 1;
}

/* State as {seed, offset}, so a run can be resumed exactly. */
static int g_get_state(lua_State *L) {
  sc_generator *g = lua_isnoneornil(L, 1) ? sc_default_generator()
                                          : luaL_checkudata(L, 1, SC_GENERATOR_MT);
  lua_createtable(L, 2, 0);
  lua_pushinteger(L, (lua_Integer)g->seed);
  lua_rawseti(L, -2, 1);
  lua_pushinteger(L, (lua_Integer)g->offset);
  lua_rawseti(L, -2, 2);
  return 1;
}

static int g_set_state(lua_State *L) {
  int gi = lua_istable(L, 1) ? 0 : 1;
  sc_generator *g = gi ? luaL_checkudata(L, 1, SC_GENERATOR_MT) : sc_default_generator();
  luaL_checktype(L, gi + 1, LUA_TTABLE);
  lua_geti(L, gi + 1, 1);
  lua_geti(L, gi + 1, 2);
  int ok_seed, ok_offset; /* both read before either is set */
  lua_Integer seed = lua_tointegerx(L, -2, &ok_seed);
  lua_Integer offset = lua_tointegerx(L, -1, &ok_offset);
  if (!ok_seed || !ok_offset)
    return luaL_argerror(L, gi + 1, "expected a state {seed, offset} of integers");
  g->seed = (uint64_t)seed;
  g->offset = (uint64_t)offset;
  return 0;
}

static int g_tostring(lua_State *L) {
  sc_generator *g = luaL_checkudata(L, 1, SC_GENERATOR_MT);
  lua_pushfstring(L, "scorch.Generator(seed=%I, offset=%I)", (lua_Integer)g->seed,
                  (lua_Integer)g->offset);
  return 1;
}

/* ---- metadata ---------------------------------------------------------------------------- */

static int m_shape(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  lua_createtable(L, t->ndim, 0);
  for (int d = 0; d < t->ndim; d++) {
    lua_pushinteger(L, t->shape[d]);
    lua_rawseti(L, -2, d + 1);
  }
  return 1;
}

static int m_stride(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  lua_createtable(L, t->ndim, 0);
  for (int d = 0; d < t->ndim; d++) {
    lua_pushinteger(L, t->stride[d]);
    lua_rawseti(L, -2, d + 1);
  }
  return 1;
}

static int m_size(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  if (lua_isnoneornil(L, 2)) return m_shape(L);
  int d = sc_lua_dim(L, 2, t->ndim, 0, "size");
  lua_pushinteger(L, t->shape[d]);
  return 1;
}

static int m_dim(lua_State *L) {
  lua_pushinteger(L, sc_lua_check(L, 1)->ndim);
  return 1;
}

static int m_numel(lua_State *L) {
  lua_pushinteger(L, sc_lua_check(L, 1)->numel);
  return 1;
}

static int m_dtype(lua_State *L) {
  lua_pushstring(L, sc_dtype_name(sc_lua_check(L, 1)->dtype));
  return 1;
}

static int m_is_contiguous(lua_State *L) {
  lua_pushboolean(L, sc_is_contiguous(sc_lua_check(L, 1)));
  return 1;
}

static int m_len(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  lua_pushinteger(L, t->ndim ? t->shape[0] : 0);
  return 1;
}

static int m_item(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  if (t->numel != 1) {
    char b[96];
    return luaL_error(L, "scorch.item: tensor of shape %s has %d elements, "
                      "expected 1", sc_shape_str(t, b, sizeof b), (int)t->numel);
  }
  lua_pushnumber(L, sc_get_linear(t, 0));
  return 1;
}

static void push_table(lua_State *L, const sc_tensor *t, int d, int64_t *k) {
  if (d == t->ndim) {
    lua_pushnumber(L, sc_get_linear(t, (*k)++));
    return;
  }
  lua_createtable(L, (int)t->shape[d], 0);
  for (int64_t i = 0; i < t->shape[d]; i++) {
    push_table(L, t, d + 1, k);
    lua_rawseti(L, -2, i + 1);
  }
}

static int m_totable(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  luaL_checkstack(L, t->ndim + 4, "tensor too deep");
  int64_t k = 0;
  push_table(L, t, 0, &k);
  return 1;
}

/* Flat row-major values as a Lua array (used by printing and tests). */
static int m_values(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  lua_createtable(L, (int)t->numel, 0);
  for (int64_t i = 0; i < t->numel; i++) {
    lua_pushnumber(L, sc_get_linear(t, i));
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* ---- views and copies ------------------------------------------------------------------ */

static int m_view(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  int64_t shape[SC_MAX_DIMS];
  int next;
  int n = sc_lua_shape(L, 2, shape, &next, "view");
  RESULT(sc_view(t, n, shape));
}

static int m_reshape(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  int64_t shape[SC_MAX_DIMS];
  int next;
  int n = sc_lua_shape(L, 2, shape, &next, "reshape");
  RESULT(sc_reshape(t, n, shape));
}

static int m_transpose(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  int d1 = sc_lua_dim(L, 2, t->ndim, 0, "transpose");
  int d2 = sc_lua_dim(L, 3, t->ndim, 0, "transpose");
  RESULT(sc_transpose(t, d1, d2));
}

static int m_t(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  if (t->ndim != 2) {
    char b[96];
    return luaL_error(L, "scorch.t: expected a 2-D tensor, got shape %s",
                      sc_shape_str(t, b, sizeof b));
  }
  RESULT(sc_transpose(t, 0, 1));
}

static int m_permute(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  int perm[SC_MAX_DIMS];
  int tbl = lua_istable(L, 2);
  int n = tbl ? (int)luaL_len(L, 2) : lua_gettop(L) - 1;
  if (n != t->ndim) {
    char b[96];
    return luaL_error(L, "scorch.permute: %d dims given for a tensor of shape %s",
                      n, sc_shape_str(t, b, sizeof b));
  }
  for (int d = 0; d < n; d++) {
    if (tbl) lua_geti(L, 2, d + 1); else lua_pushvalue(L, d + 2);
    perm[d] = sc_lua_dim(L, -1, t->ndim, 0, "permute");
    lua_pop(L, 1);
  }
  RESULT(sc_permute(t, perm));
}

static int m_expand(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  int64_t shape[SC_MAX_DIMS];
  int next;
  int n = sc_lua_shape(L, 2, shape, &next, "expand");
  RESULT(sc_expand(t, n, shape));
}

static int m_expand_as(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1), *o = sc_lua_check(L, 2);
  sc_tensor **slot = sc_lua_newslot(L);
  if (!(*slot = sc_expand(t, o->ndim, o->shape)))
    return luaL_error(L, "scorch.expand_as: %s", sc_error());
  return 1;
}

static int m_narrow(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  int d = sc_lua_dim(L, 2, t->ndim, 0, "narrow");
  lua_Integer start = luaL_checkinteger(L, 3), len = luaL_checkinteger(L, 4);
  if (start < 1 || len < 0 || start - 1 + len > t->shape[d]) {
    char b[96];
    return luaL_error(L, "scorch.narrow: start %d and length %d do not fit "
                      "dimension %d of a tensor of shape %s", (int)start,
                      (int)len, d + 1, sc_shape_str(t, b, sizeof b));
  }
  RESULT(sc_narrow(t, d, start - 1, len));
}

static int select_index(lua_State *L, sc_tensor *t, int d, lua_Integer i,
                        const char *fn) {
  lua_Integer n = t->shape[d];
  lua_Integer z = i < 0 ? i + n : i - 1;
  if (i == 0 || z < 0 || z >= n) {
    char b[96];
    return luaL_error(L, "scorch.%s: index %d out of range for dimension %d "
                      "of a tensor of shape %s", fn, (int)i, d + 1,
                      sc_shape_str(t, b, sizeof b));
  }
  return (int)z;
}

static int m_select(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  int d = sc_lua_dim(L, 2, t->ndim, 0, "select");
  int i = select_index(L, t, d, luaL_checkinteger(L, 3), "select");
  RESULT(sc_select(t, d, i));
}

static int m_unsqueeze(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  int d = sc_lua_dim(L, 2, t->ndim, 1, "unsqueeze");
  RESULT(sc_unsqueeze(t, d));
}

static int m_squeeze(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  int d = lua_isnoneornil(L, 2) ? -1 : sc_lua_dim(L, 2, t->ndim, 0, "squeeze");
  RESULT(sc_squeeze(t, d));
}

/* RESULT pushes its slot before evaluating the call: every argument must
   be read before it, or a missing one would find the slot in its place. */
static int m_contiguous(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  RESULT(sc_contiguous(t));
}

static int m_clone(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  RESULT(sc_clone(t));
}

static int m_detach(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  RESULT(sc_detach(t));
}

static int m_float(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  RESULT(sc_to_dtype(t, SC_FLOAT32));
}

static int m_double(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  RESULT(sc_to_dtype(t, SC_FLOAT64));
}

static int m_to(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  sc_dtype dt = t->dtype;
  if (lua_type(L, 2) == LUA_TSTRING) {
    const char *s = lua_tostring(L, 2);
    if (!strcmp(s, "float32"))
      dt = SC_FLOAT32;
    else if (!strcmp(s, "float64"))
      dt = SC_FLOAT64;
    else
      return luaL_argerror(L, 2, "dtype must be \"float32\" or \"float64\"");
  } else {
    dt = sc_lua_opt_dtype(L, 2, dt);
  }
  RESULT(sc_to_dtype(t, dt));
}

/* Reads 1-based indices from a table or tensor into a new 0-based array. */
static int64_t *read_index(lua_State *L, int idx, int64_t *n, const char *fn) {
  sc_tensor *it = sc_lua_test(L, idx);
  if (!it && !lua_istable(L, idx))
    luaL_error(L, "scorch.%s: indices must be a table or a tensor (got %s)", fn,
               luaL_typename(L, idx));
  if (it && it->ndim > 1)
    luaL_error(L, "scorch.%s: indices must be 1-D", fn);
  *n = it ? it->numel : (int64_t)luaL_len(L, idx);
  int64_t *out = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)(*n ? *n : 1), 0);
  for (int64_t k = 0; k < *n; k++) {
    double v;
    if (it) {
      v = sc_get_linear(it, k);
    } else {
      lua_geti(L, idx, k + 1);
      int isnum;
      v = lua_tonumberx(L, -1, &isnum);
      lua_pop(L, 1);
      if (!isnum) luaL_error(L, "scorch.%s: index %d is not a number", fn, (int)k + 1);
    }
    if (v != floor(v) || v < 1 || v > 9.0e15)
      luaL_error(L, "scorch.%s: index %f at position %d is not a positive "
                 "integer", fn, v, (int)k + 1);
    out[k] = (int64_t)v - 1;
  }
  return out;
}

static int m_index_select(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  int d = sc_lua_dim(L, 2, t->ndim, 0, "index_select");
  int64_t n;
  int64_t *idx = read_index(L, 3, &n, "index_select");
  RESULT(sc_index_select(t, d, n, idx));
}

/* A list of tensors from a Lua table at idx (kept alive by the table). */
static sc_tensor **read_list(lua_State *L, int idx, int *n, const char *fn) {
  if (!lua_istable(L, idx) || sc_lua_test(L, idx))
    luaL_error(L, "scorch.%s: expected a table of tensors (got %s)", fn,
               luaL_typename(L, idx));
  *n = (int)luaL_len(L, idx);
  sc_tensor **ts = lua_newuserdatauv(L, sizeof *ts * (size_t)(*n ? *n : 1), 0);
  for (int k = 0; k < *n; k++) {
    lua_geti(L, idx, k + 1);
    ts[k] = sc_lua_test(L, -1);
    if (!ts[k])
      luaL_error(L, "scorch.%s: element %d of the list is a %s, not a tensor",
                 fn, k + 1, luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  return ts;
}

static int l_cat(lua_State *L) {
  int n;
  lua_settop(L, 2); /* read_list pushes: keep a missing dim at slot 2 nil */
  sc_tensor **ts = read_list(L, 1, &n, "cat");
  if (n == 0) return luaL_error(L, "scorch.cat: expected a non-empty list of tensors");
  int d = lua_isnoneornil(L, 2) ? 0 : sc_lua_dim(L, 2, ts[0]->ndim, 0, "cat");
  RESULT(sc_cat(n, ts, d));
}

static int l_stack(lua_State *L) {
  int n;
  lua_settop(L, 2);
  sc_tensor **ts = read_list(L, 1, &n, "stack");
  if (n == 0) return luaL_error(L, "scorch.stack: expected a non-empty list of tensors");
  int d = lua_isnoneornil(L, 2) ? 0 : sc_lua_dim(L, 2, ts[0]->ndim, 1, "stack");
  RESULT(sc_stack(n, ts, d));
}

/* ---- arithmetic ---------------------------------------------------------------------------- */

/* a op b where either side may be a number. */
static int arith(lua_State *L, sc_binary_op op, const char *fn) {
  sc_tensor *a = sc_lua_test(L, 1), *b = sc_lua_test(L, 2);
  if (a && b) RESULT(sc_binary(op, a, b));
  if (a && lua_type(L, 2) == LUA_TNUMBER)
    RESULT(sc_binary_scalar(op, a, lua_tonumber(L, 2), 0));
  if (b && lua_type(L, 1) == LUA_TNUMBER)
    RESULT(sc_binary_scalar(op, b, lua_tonumber(L, 1), 1));
  return luaL_error(L, "scorch.%s: expected tensors or numbers (got %s and %s)",
                    fn, luaL_typename(L, 1), luaL_typename(L, 2));
}

#define ARITH(name, OP)                                                     \
  static int l_##name(lua_State *L) { return arith(L, OP, #name); }
#define SC_BINARY(NAME, name, saves, expr) ARITH(name, SC_##NAME)
#define SC_COMPARE(NAME, name, expr) ARITH(name, SC_##NAME)
#include "../core/ops.def"

static int l_unm(lua_State *L) {
  sc_tensor *x = sc_lua_check(L, 1);
  RESULT(sc_unary(SC_NEG, x));
}

#define SC_UNARY(NAME, name, saves, lua, expr)                              \
  static int l_##name(lua_State *L) {                                       \
    sc_tensor *x = sc_lua_check(L, 1);                                      \
    RESULT(sc_unary(SC_##NAME, x));                                         \
  }
#include "../core/ops.def"

static int l_where(lua_State *L) {
  lua_settop(L, 3); /* number branches push slots above the arguments */
  sc_tensor *c = sc_lua_check(L, 1);
  sc_tensor *a = sc_lua_test(L, 2), *b = sc_lua_test(L, 3);
  /* numbers on either branch become 0-d tensors of c's dtype */
  sc_tensor *tmp[2] = {NULL, NULL};
  for (int k = 0; k < 2; k++) {
    if ((k ? b : a)) continue;
    double v = luaL_checknumber(L, 2 + k);
    sc_tensor **s = sc_lua_newslot(L); /* keeps it alive */
    sc_lua_fill(L, s, sc_scalar(v, (k ? a : b) ? (k ? a : b)->dtype : c->dtype));
    tmp[k] = *s;
  }
  RESULT(sc_where(c, a ? a : tmp[0], b ? b : tmp[1]));
}

static int l_clamp(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  double lo = lua_isnoneornil(L, 2) ? -HUGE_VAL : luaL_checknumber(L, 2);
  double hi = lua_isnoneornil(L, 3) ? HUGE_VAL : luaL_checknumber(L, 3);
  RESULT(sc_clamp(t, lo, hi));
}

static int l_leaky_relu(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  double slope = lua_isnoneornil(L, 2) ? 0.01 : luaL_checknumber(L, 2);
  RESULT(sc_leaky_relu(t, slope));
}

static int l_leaky_grad(lua_State *L) {
  sc_tensor *g = sc_lua_check(L, 1), *x = sc_lua_check(L, 2);
  RESULT(sc_leaky_grad(g, x, luaL_checknumber(L, 3)));
}

static int l_bernoulli_log_prob(lua_State *L) {
  sc_tensor *l = sc_lua_check(L, 1), *x = sc_lua_check(L, 2);
  RESULT(sc_bernoulli_log_prob(l, x));
}

static int l_matmul(lua_State *L) {
  sc_tensor *a = sc_lua_check(L, 1), *b = sc_lua_check(L, 2);
  RESULT(sc_matmul(a, b));
}

/* A new tensor header over the same storage that records the identity op
   (a view with its own autograd node). */
/* _linear_chain(x, layers) -> y: layers is a list of {w, b or false,
   silu (boolean)}; y = the layers applied in turn (sc_linear_chain: block
   by block of rows when nothing is recorded, with the numbers of the
   layer-by-layer calls).  Internal: nn.Sequential's forward. */
static int l_linear_chain(lua_State *L) {
  sc_tensor *x = sc_lua_check(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer nl = luaL_len(L, 2);
  if (nl < 1 || nl > SC_MLP_MAX_LAYERS)
    return luaL_error(L, "_linear_chain: %d layers (1 to %d)", (int)nl, SC_MLP_MAX_LAYERS);
  sc_tensor *w[SC_MLP_MAX_LAYERS], *b[SC_MLP_MAX_LAYERS];
  int silu[SC_MLP_MAX_LAYERS];
  for (int l = 0; l < nl; l++) {
    if (lua_rawgeti(L, 2, l + 1) != LUA_TTABLE)
      return luaL_error(L, "_linear_chain: layer %d is not a table {w, b, silu}", l + 1);
    int top = lua_gettop(L);
    lua_rawgeti(L, top, 1);
    w[l] = sc_lua_test(L, top + 1);
    lua_rawgeti(L, top, 2);
    b[l] = lua_toboolean(L, top + 2) ? sc_lua_test(L, top + 2) : NULL;
    if (!w[l] || (lua_toboolean(L, top + 2) && !b[l]))
      return luaL_error(L, "_linear_chain: layer %d: the %s is not an open tensor", l + 1,
                        w[l] ? "bias" : "weight");
    lua_rawgeti(L, top, 3);
    silu[l] = lua_toboolean(L, top + 3);
    lua_settop(L, 2); /* the layers table keeps the tensors alive */
  }
  int64_t k = x->ndim ? x->shape[x->ndim - 1] : -1;
  for (int l = 0; l < nl; l++) {
    char b1[96], b2[96];
    if (w[l]->dtype != x->dtype || (b[l] && b[l]->dtype != x->dtype))
      return luaL_error(L, "_linear_chain: layer %d: dtypes of input (%s), weight (%s) and bias differ",
                        l + 1, sc_dtype_name(x->dtype), sc_dtype_name(w[l]->dtype));
    if (w[l]->ndim != 2 || w[l]->shape[1] != k ||
        (b[l] && (b[l]->ndim != 1 || b[l]->shape[0] != w[l]->shape[0])))
      return luaL_error(L, "_linear_chain: layer %d: weight %s%s%s does not take %I input features",
                        l + 1, sc_shape_str(w[l], b1, sizeof b1), b[l] ? " with bias " : "",
                        b[l] ? sc_shape_str(b[l], b2, sizeof b2) : "", (lua_Integer)k);
    k = w[l]->shape[0];
  }
  RESULT(sc_linear_chain(x, (int)nl, w, b, silu));
}

static int m_alias(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1); /* before RESULT pushes its slot */
  RESULT(sc_alias(t));
}

static int l_linear(lua_State *L) {
  sc_tensor *x = sc_lua_check(L, 1), *w = sc_lua_check(L, 2);
  sc_tensor *b = lua_isnoneornil(L, 3) ? NULL : sc_lua_check(L, 3);
  if (!lua_isnoneornil(L, 4)) { /* a fused activation */
    const char *act = luaL_checkstring(L, 4);
    if (strcmp(act, "silu") != 0)
      return luaL_argerror(L, 4, "activation must be \"silu\" or nil");
    RESULT(sc_linear_silu(x, w, b));
  }
  RESULT(sc_linear(x, w, b));
}

static int l_silu_linear(lua_State *L) {
  sc_tensor *h = sc_lua_check(L, 1), *w = sc_lua_check(L, 2);
  sc_tensor *b = lua_isnoneornil(L, 3) ? NULL : sc_lua_check(L, 3);
  RESULT(sc_silu_linear(h, w, b));
}

static int l_bmm(lua_State *L) {
  sc_tensor *a = sc_lua_check(L, 1), *b = sc_lua_check(L, 2);
  if (a->ndim != 3 || b->ndim != 3 || a->shape[0] != b->shape[0] ||
      a->dtype != b->dtype) {
    char b1[96], b2[96];
    return luaL_error(L, "scorch.bmm: expected two 3-D tensors with the same "
                      "batch size and dtype, got shapes %s (%s) and %s (%s)",
                      sc_shape_str(a, b1, sizeof b1), sc_dtype_name(a->dtype),
                      sc_shape_str(b, b2, sizeof b2), sc_dtype_name(b->dtype));
  }
  RESULT(sc_matmul(a, b));
}

/* ---- reductions --------------------------------------------------------------------------- */

/* Reads dims (a number or a table) at idx; n = 0 means all dims. */
static int read_dims(lua_State *L, int idx, const sc_tensor *t, int *dims,
                     const char *fn) {
  if (lua_isnoneornil(L, idx)) return 0;
  if (lua_istable(L, idx)) {
    int n = (int)luaL_len(L, idx);
    if (n > t->ndim)
      luaL_error(L, "scorch.%s: %d dims given for a %d-D tensor", fn, n, t->ndim);
    for (int k = 0; k < n; k++) {
      lua_geti(L, idx, k + 1);
      dims[k] = sc_lua_dim(L, -1, t->ndim, 0, fn);
      lua_pop(L, 1);
    }
    return n;
  }
  dims[0] = sc_lua_dim(L, idx, t->ndim, 0, fn);
  return 1;
}

static int m_sum(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  int dims[SC_MAX_DIMS];
  int n = read_dims(L, 2, t, dims, "sum");
  int keep = lua_toboolean(L, 3);
  RESULT(sc_sum(t, n, dims, keep));
}

static int m_mean(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  int dims[SC_MAX_DIMS];
  int n = read_dims(L, 2, t, dims, "mean");
  int keep = lua_toboolean(L, 3);
  RESULT(sc_mean(t, n, dims, keep));
}

static int m_var(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  int dims[SC_MAX_DIMS];
  int n = read_dims(L, 2, t, dims, "var");
  int unbiased = lua_isnoneornil(L, 4) ? 1 : lua_toboolean(L, 4);
  int keep = lua_toboolean(L, 3);
  RESULT(sc_var(t, n, dims, keep, unbiased));
}

static int extreme(lua_State *L, int is_max) {
  const char *fn = is_max ? "max" : "min";
  sc_tensor *t = sc_lua_check(L, 1);
  if (lua_isnoneornil(L, 2))
    RESULT(is_max ? sc_max(t, -1, 0, NULL) : sc_min(t, -1, 0, NULL));
  int d = sc_lua_dim(L, 2, t->ndim, 0, fn);
  int keep = lua_toboolean(L, 3);
  sc_tensor **vs = sc_lua_newslot(L);
  sc_tensor **is = sc_lua_newslot(L);
  sc_tensor *ix = NULL;
  sc_tensor *v = is_max ? sc_max(t, d, keep, &ix) : sc_min(t, d, keep, &ix);
  if (!v) return sc_lua_core_error(L);
  *vs = v;
  *is = ix;
  /* 1-based indices, as every index in this API (ix is fresh, contiguous) */
  for (int64_t k = 0; k < ix->numel; k++) sc_set_linear_public(ix, k, sc_get_linear(ix, k) + 1);
  return 2;
}

static int m_max(lua_State *L) { return extreme(L, 1); }
static int m_min(lua_State *L) { return extreme(L, 0); }

static int m_logsumexp(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  int d = sc_lua_dim(L, 2, t->ndim, 0, "logsumexp");
  int keep = lua_toboolean(L, 3);
  RESULT(sc_logsumexp(t, d, keep));
}

/* ---- in-place -------------------------------------------------------------------------------- */

static int inplace_result(lua_State *L, int rc) {
  if (rc) return sc_lua_core_error(L);
  lua_settop(L, 1);
  return 1;
}

/* In-place writes to a tensor that autograd tracks are refused unless
   recording is off (optimisers run under no_grad). */
static sc_tensor *check_writable(lua_State *L, const char *fn) {
  sc_tensor *t = sc_lua_check(L, 1);
  if (t->requires_grad && sc_grad_enabled())
    luaL_error(L, "scorch.%s: in-place change of a tensor that requires grad; "
               "wrap it in sc.no_grad or detach it first", fn);
  return t;
}

static int m_fill_(lua_State *L) {
  sc_tensor *t = check_writable(L, "fill_");
  return inplace_result(L, sc_fill_(t, luaL_checknumber(L, 2)));
}

static int m_zero_(lua_State *L) {
  sc_tensor *t = check_writable(L, "zero_");
  return inplace_result(L, sc_fill_(t, 0));
}

static int m_copy_(lua_State *L) {
  sc_tensor *t = check_writable(L, "copy_");
  return inplace_result(L, sc_copy_(t, sc_lua_check(L, 2)));
}

static int m_add_(lua_State *L) {
  sc_tensor *t = check_writable(L, "add_");
  if (lua_type(L, 2) == LUA_TNUMBER) {
    sc_tensor *s = sc_scalar(lua_tonumber(L, 2), t->dtype);
    if (!s) return sc_lua_core_error(L);
    int rc = sc_add_scaled_(t, s, 1.0);
    sc_release(s);
    return inplace_result(L, rc);
  }
  double alpha = luaL_optnumber(L, 3, 1.0);
  return inplace_result(L, sc_add_scaled_(t, sc_lua_check(L, 2), alpha));
}

static int m_mul_(lua_State *L) {
  sc_tensor *t = check_writable(L, "mul_");
  return inplace_result(L, sc_mul_scalar_(t, luaL_checknumber(L, 2)));
}

static int m_uniform_(lua_State *L) {
  sc_tensor *t = check_writable(L, "uniform_");
  double lo = luaL_optnumber(L, 2, 0), hi = luaL_optnumber(L, 3, 1);
  return inplace_result(L, sc_uniform_(opt_generator(L, 4), t, lo, hi));
}

static int m_normal_(lua_State *L) {
  sc_tensor *t = check_writable(L, "normal_");
  double m = luaL_optnumber(L, 2, 0), s = luaL_optnumber(L, 3, 1);
  return inplace_result(L, sc_normal_(opt_generator(L, 4), t, m, s));
}

/* ---- autograd -------------------------------------------------------------------------------- */

static int m_requires_grad(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  if (lua_isnone(L, 2)) {
    lua_pushboolean(L, t->requires_grad);
    return 1;
  }
  int on = lua_toboolean(L, 2);
  if (t->grad_fn && !on)
    return luaL_error(L, "scorch.requires_grad: cannot turn off requires_grad "
                      "of a non-leaf tensor; use detach()");
  if (!t->grad_fn) t->requires_grad = on;
  lua_settop(L, 1);
  return 1;
}

static int m_is_leaf(lua_State *L) {
  lua_pushboolean(L, sc_lua_check(L, 1)->grad_fn == NULL);
  return 1;
}

static int m_grad_fn(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  if (!t->grad_fn) return 0;
  lua_pushstring(L, sc_op_name(t->grad_fn->op));
  return 1;
}

static int m_zero_grad(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  sc_release(t->grad);
  t->grad = NULL;
  lua_settop(L, 1);
  return 1;
}

/* Tensors from a tensor or a list at idx into a C array (anchored). */
static sc_tensor **tensor_or_list(lua_State *L, int idx, int *n, const char *fn) {
  if (sc_lua_test(L, idx)) {
    sc_tensor **ts = lua_newuserdatauv(L, sizeof *ts, 0);
    ts[0] = sc_lua_test(L, idx);
    *n = 1;
    return ts;
  }
  return read_list(L, idx, n, fn);
}

static int m_backward(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  sc_tensor *g = lua_isnoneornil(L, 2) || lua_istable(L, 2) ? NULL : sc_lua_check(L, 2);
  int opts = lua_istable(L, 2) && !sc_lua_test(L, 2) ? 2 : 3;
  int retain = opt_bool(L, opts, "retain_graph", 0);
  int create = opt_bool(L, opts, "create_graph", 0);
  if (sc_backward(1, &t, &g, retain, create)) return sc_lua_core_error(L);
  return 0;
}

/* sc.grad(outputs, inputs [, opts]) -> list of gradients */
static int l_grad(lua_State *L) {
  int nout, nin, ng = 0;
  sc_tensor **outs = tensor_or_list(L, 1, &nout, "grad");
  sc_tensor **ins = tensor_or_list(L, 2, &nin, "grad");
  int opts = 3;
  sc_tensor **gouts = NULL;
  if (lua_istable(L, opts)) {
    lua_getfield(L, opts, "grad_outputs");
    if (!lua_isnil(L, -1)) {
      gouts = tensor_or_list(L, lua_gettop(L), &ng, "grad");
      if (ng != nout)
        return luaL_error(L, "scorch.grad: %d grad_outputs for %d outputs", ng, nout);
    }
  }
  int retain = opt_bool(L, opts, "retain_graph", 0);
  int create = opt_bool(L, opts, "create_graph", 0);
  int unused = opt_bool(L, opts, "allow_unused", 0);
  sc_tensor **res = lua_newuserdatauv(L, sizeof *res * (size_t)(nin ? nin : 1), 0);
  if (sc_grad(nout, outs, gouts, nin, ins, res, retain, create, unused))
    return sc_lua_core_error(L);
  lua_createtable(L, nin, 0);
  for (int j = 0; j < nin; j++) {
    /* the slot is pushed before it owns anything: nothing leaks if it fails */
    sc_tensor **s = sc_lua_newslot(L);
    *s = res[j];
    res[j] = NULL;
    if (*s)
      lua_rawseti(L, -2, j + 1);
    else
      lua_pop(L, 1);
  }
  return 1;
}

static int l_no_grad(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  int prev = sc_set_grad_enabled(0);
  int rc = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  sc_set_grad_enabled(prev);
  if (rc != LUA_OK) return lua_error(L);
  return lua_gettop(L);
}

static int l_set_grad_enabled(lua_State *L) {
  lua_pushboolean(L, sc_set_grad_enabled(lua_toboolean(L, 1)));
  return 1;
}

static int l_is_grad_enabled(lua_State *L) {
  lua_pushboolean(L, sc_grad_enabled());
  return 1;
}

static int l_op_names(lua_State *L) {
  lua_createtable(L, sc_op_count(), 0);
  for (int k = 0; k < sc_op_count(); k++) {
    lua_pushstring(L, sc_op_name(k));
    lua_rawseti(L, -2, k + 1);
  }
  return 1;
}

/* _op_table() -> {{name =, fused =, fused_runs =}, ...} in op order: which
   ops have a fused backward, and how often it ran (for the specs that
   compare it with the graph formula). */
static int l_op_table(lua_State *L) {
  lua_createtable(L, sc_op_count(), 0);
  for (int k = 0; k < sc_op_count(); k++) {
    lua_createtable(L, 0, 3);
    lua_pushstring(L, sc_op_name(k));
    lua_setfield(L, -2, "name");
    lua_pushboolean(L, sc_fused_backward_of(k) != NULL);
    lua_setfield(L, -2, "fused");
    lua_pushinteger(L, (lua_Integer)sc_fused_backward_runs(k));
    lua_setfield(L, -2, "fused_runs");
    lua_rawseti(L, -2, k + 1);
  }
  return 1;
}

/* _set_fused_backward(on) -> previous: off, backward without create_graph
   runs every op's graph formula too. */
static int l_set_fused_backward(lua_State *L) {
  luaL_checktype(L, 1, LUA_TBOOLEAN);
  lua_pushboolean(L, sc_set_fused_backward(lua_toboolean(L, 1)));
  return 1;
}

/* _set_small_linear_avx512(on) -> previous: whether the narrow-layer
   product kernel uses AVX-512 registers (where the CPU has them), for the
   spec that checks both paths give the same numbers. */
static int l_set_small_linear_avx512(lua_State *L) {
  luaL_checktype(L, 1, LUA_TBOOLEAN);
  lua_pushboolean(L, sc_small_linear_avx512(lua_toboolean(L, 1)));
  return 1;
}

/* _set_gemm_avx512(on) -> previous: whether float32 products use the
   core's own AVX-512 kernels (gemm512.c) instead of OpenBLAS's sgemm, for
   the specs that check both against a float64 reference. */
static int l_set_gemm_avx512(lua_State *L) {
  luaL_checktype(L, 1, LUA_TBOOLEAN);
  lua_pushboolean(L, sc_gemm_avx512(lua_toboolean(L, 1)));
  return 1;
}

/* _set_gemm_inplace(on) -> previous: whether gemm512.c may read an operand
   where it is instead of packing it, for the specs that check both ways
   give the same bits. */
static int l_set_gemm_inplace(lua_State *L) {
  luaL_checktype(L, 1, LUA_TBOOLEAN);
  lua_pushboolean(L, sc_gemm_inplace(lua_toboolean(L, 1)));
  return 1;
}

/* _set_wino_wgrad_transposed(mode) -> previous: the orientation of the
   Winograd weight gradient's products (-1 automatic, 0 or 1), for the spec
   that checks every orientation gives the same bits. */
static int l_set_wino_wgrad_transposed(lua_State *L) {
  lua_Integer mode = luaL_checkinteger(L, 1);
  luaL_argcheck(L, mode >= -1 && mode <= 1, 1, "must be -1, 0 or 1");
  lua_pushinteger(L, sc_wino_wgrad_transposed((int)mode));
  return 1;
}

/* _set_wino_tile(mode) -> previous: the Winograd tiling of 3x3 convolutions
   (0 by wino.c's rule, 2 for F(2x2, 3x3), 4 for F(4x2, 3x3)), for the specs
   that check each against float64. */
static int l_set_wino_tile(lua_State *L) {
  lua_Integer mode = luaL_checkinteger(L, 1);
  luaL_argcheck(L, mode == 0 || mode == 2 || mode == 4, 1, "must be 0, 2 or 4");
  lua_pushinteger(L, sc_wino_tile((int)mode));
  return 1;
}

/* _set_thin_conv(on) -> previous: whether 3x3 convolutions with one
   channel on a side go through thinconv.c or conv.c's other paths, for the
   specs that check both against float64. */
static int l_set_thin_conv(lua_State *L) {
  luaL_checktype(L, 1, LUA_TBOOLEAN);
  lua_pushboolean(L, sc_thin_conv(lua_toboolean(L, 1)));
  return 1;
}

/* _set_randn_lanes(on) -> previous: whether float32 randn uses rng.c's
   vector Box-Muller (checked against libm's, value by value) or libm's
   alone, for the spec that checks both give the same bits. */
static int l_set_randn_lanes(lua_State *L) {
  luaL_checktype(L, 1, LUA_TBOOLEAN);
  lua_pushboolean(L, sc_randn_lanes(lua_toboolean(L, 1)));
  return 1;
}

/* Internal ops exposed for gradient checks of the op table. */
static int l_sum_to(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  int64_t shape[SC_MAX_DIMS];
  int next;
  int n = sc_lua_shape(L, 2, shape, &next, "sum_to");
  RESULT(sc_sum_to(t, n, shape));
}

static int l_narrow_backward(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int64_t shape[SC_MAX_DIMS];
  int next;
  int n = sc_lua_shape(L, 2, shape, &next, "narrow_backward");
  int d = (int)luaL_checkinteger(L, 3) - 1;
  lua_Integer start = luaL_checkinteger(L, 4) - 1;
  if (n != t->ndim || d < 0 || d >= n || start < 0 || start + t->shape[d] > shape[d])
    return luaL_error(L, "scorch.narrow_backward: bad shape, dim or start");
  RESULT(sc_narrow_backward(t, n, shape, d, start));
}

static int l_index_add(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int64_t shape[SC_MAX_DIMS];
  int next;
  int n = sc_lua_shape(L, 2, shape, &next, "index_add");
  if (n != t->ndim) return luaL_error(L, "scorch.index_add: rank mismatch");
  int d = sc_lua_dim(L, 3, n, 0, "index_add");
  int64_t k;
  int64_t *idx = read_index(L, 4, &k, "index_add");
  if (k != t->shape[d]) return luaL_error(L, "scorch.index_add: index count mismatch");
  for (int e = 0; e < n; e++)
    if (e != d && shape[e] != t->shape[e])
      return luaL_error(L, "scorch.index_add: shape mismatch");
  RESULT(sc_index_add(t, n, shape, d, k, idx));
}

/* ---- threads, time, memory ------------------------------------------------------------------- */

static int l_set_num_threads(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  if (n < 1 || n > 1024)
    return luaL_argerror(L, 1, "thread count must be between 1 and 1024");
  sc_set_num_threads((int)n);
  return 0;
}

static int l_get_num_threads(lua_State *L) {
  lua_pushinteger(L, sc_get_num_threads());
  return 1;
}

static const char *const matmul_precisions[] = {"highest", "medium", NULL};

/* core.set_matmul_precision("highest" | "medium") -> the previous setting:
   whether no-grad chains of linear layers may multiply in bfloat16
   (smallgemm.h, sc_small_mlp_bf16). */
static int l_set_matmul_precision(lua_State *L) {
  const char *s = luaL_checkstring(L, 1);
  int on = -1;
  for (int i = 0; matmul_precisions[i]; i++)
    if (strcmp(s, matmul_precisions[i]) == 0) on = i;
  if (on < 0)
    return luaL_error(L, "set_matmul_precision: precision '%s' is not one of: highest, medium", s);
  lua_pushstring(L, matmul_precisions[sc_matmul_bf16(on)]);
  return 1;
}

static int l_get_matmul_precision(lua_State *L) {
  lua_pushstring(L, matmul_precisions[sc_matmul_bf16(-1)]);
  return 1;
}

/* core.cpu_has_bf16() -> whether "medium" runs bfloat16 products here */
static int l_cpu_has_bf16(lua_State *L) {
  lua_pushboolean(L, sc_cpu_bf16());
  return 1;
}

static const char *const wait_policies[] = {"auto", "spin", "sleep", NULL};

/* core.set_wait_policy("auto" | "spin" | "sleep"): how the pool's idle
   threads wait (pool.c); returns the previous policy. */
static int l_set_wait_policy(lua_State *L) {
  int p = luaL_checkoption(L, 1, NULL, wait_policies);
  lua_pushstring(L, wait_policies[sc_pool_get_policy()]);
  sc_pool_set_policy(p);
  return 1;
}

/* core.pool_stats() -> {policy, contended, others_cores, switches, jobs,
   workers}: what the pool saw of the machine's load. */
static int l_pool_stats(lua_State *L) {
  sc_pool_info in;
  sc_pool_stats(&in);
  lua_createtable(L, 0, 6);
  lua_pushstring(L, wait_policies[sc_pool_get_policy()]);
  lua_setfield(L, -2, "policy");
  lua_pushboolean(L, in.contended);
  lua_setfield(L, -2, "contended");
  lua_pushnumber(L, in.others_cores);
  lua_setfield(L, -2, "others_cores");
  lua_pushinteger(L, (lua_Integer)in.switches);
  lua_setfield(L, -2, "switches");
  lua_pushinteger(L, (lua_Integer)in.jobs);
  lua_setfield(L, -2, "jobs");
  lua_pushinteger(L, in.workers);
  lua_setfield(L, -2, "workers");
  return 1;
}

static int l_time(lua_State *L) {
  lua_pushnumber(L, sc_time());
  return 1;
}

static int l_bytes_in_use(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sc_bytes_in_use());
  return 1;
}

static int l_is_tensor(lua_State *L) {
  lua_pushboolean(L, sc_lua_test(L, 1) != NULL);
  return 1;
}

/* ---- __index / __newindex ------------------------------------------------------------------- */

/* Methods live in a table (upvalue 1); `grad` and integer indices are
   handled here. */
static int t_index(lua_State *L) {
  if (lua_type(L, 2) == LUA_TSTRING) {
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
    const char *k = lua_tostring(L, 2);
    if (!strcmp(k, "grad")) {
      sc_tensor *t = sc_lua_check(L, 1);
      if (!t->grad) return 0;
      RESULT(sc_retain(t->grad));
    }
    return 0;
  }
  if (lua_isinteger(L, 2)) { /* t[i] selects along the first dim */
    sc_tensor *t = sc_lua_check(L, 1);
    if (t->ndim == 0) return luaL_error(L, "scorch.index: cannot index a 0-d tensor");
    int i = select_index(L, t, 0, lua_tointeger(L, 2), "index");
    RESULT(sc_select(t, 0, i));
  }
  return 0;
}

static int t_newindex(lua_State *L) {
  sc_tensor *t = sc_lua_check(L, 1);
  const char *k = lua_tostring(L, 2);
  if (k && !strcmp(k, "grad")) {
    if (!lua_isnil(L, 3) && !sc_lua_test(L, 3))
      return luaL_error(L, "scorch.grad: expected a tensor or nil (got %s)",
                        luaL_typename(L, 3));
    sc_tensor *g = lua_isnil(L, 3) ? NULL : sc_lua_check(L, 3);
    if (g && (!sc_same_shape(g, t) || g->dtype != t->dtype)) {
      char b1[96], b2[96];
      return luaL_error(L, "scorch.grad: assigned gradient of shape %s (%s) to "
                        "a tensor of shape %s (%s)", sc_shape_str(g, b1, sizeof b1),
                        sc_dtype_name(g->dtype), sc_shape_str(t, b2, sizeof b2),
                        sc_dtype_name(t->dtype));
    }
    sc_retain(g);
    sc_release(t->grad);
    t->grad = g;
    return 0;
  }
  return luaL_error(L, "scorch: tensors have no settable field '%s'",
                    k ? k : luaL_typename(L, 2));
}

/* ---- registration ------------------------------------------------------------------------------ */

/* Which elementwise ops are tensor methods (the lua column of ops.def). */
#define LUA_METHOD_PUBLIC(name) {#name, l_##name},
#define LUA_METHOD_INTERNAL(name)

static const luaL_Reg methods[] = {
    {"shape", m_shape}, {"size", m_size}, {"stride", m_stride}, {"dim", m_dim},
    {"numel", m_numel}, {"dtype", m_dtype}, {"item", m_item},
    {"totable", m_totable}, {"values", m_values}, {"is_contiguous", m_is_contiguous},
    {"view", m_view}, {"reshape", m_reshape}, {"transpose", m_transpose},
    {"t", m_t}, {"permute", m_permute}, {"expand", m_expand},
    {"expand_as", m_expand_as}, {"narrow", m_narrow}, {"select", m_select},
    {"unsqueeze", m_unsqueeze}, {"squeeze", m_squeeze},
    {"contiguous", m_contiguous}, {"clone", m_clone}, {"detach", m_detach},
    {"float", m_float}, {"double", m_double}, {"to", m_to},
    {"index_select", m_index_select},
    /* elementwise ops: the rows of ops.def */
#define SC_UNARY(NAME, name, saves, lua, expr) LUA_METHOD_##lua(name)
#define SC_BINARY(NAME, name, saves, expr) {#name, l_##name},
#define SC_COMPARE(NAME, name, expr) {#name, l_##name},
#include "../core/ops.def"
    {"clamp", l_clamp}, {"leaky_relu", l_leaky_relu}, {"matmul", l_matmul},
    {"sum", m_sum}, {"mean", m_mean}, {"var", m_var}, {"max", m_max},
    {"min", m_min}, {"logsumexp", m_logsumexp},
    {"fill_", m_fill_}, {"zero_", m_zero_}, {"copy_", m_copy_},
    {"add_", m_add_}, {"mul_", m_mul_}, {"uniform_", m_uniform_},
    {"normal_", m_normal_},
    {"requires_grad", m_requires_grad}, {"is_leaf", m_is_leaf},
    {"grad_fn", m_grad_fn}, {"zero_grad", m_zero_grad},
    {"backward", m_backward},
    {NULL, NULL}};

static const luaL_Reg functions[] = {
    {"tensor", l_tensor}, {"zeros", l_zeros}, {"ones", l_ones},
    {"empty", l_empty}, {"full", l_full}, {"randn", l_randn},
    {"rand", l_rand}, {"randint", l_randint}, {"arange", l_arange},
    {"linspace", l_linspace}, {"manual_seed", l_manual_seed},
    {"Generator", l_generator}, {"get_rng_state", g_get_state},
    {"set_rng_state", g_set_state},
    {"cat", l_cat}, {"stack", l_stack}, {"matmul", l_matmul}, {"bmm", l_bmm},
    {"linear", l_linear}, {"silu_linear", l_silu_linear}, {"alias", m_alias},
    {"where", l_where}, {"clamp", l_clamp}, {"leaky_relu", l_leaky_relu},
    {"leaky_grad", l_leaky_grad}, {"bernoulli_log_prob", l_bernoulli_log_prob},
    /* elementwise ops: the rows of ops.def (comparisons are methods only) */
#define SC_UNARY(NAME, name, saves, lua, expr) {#name, l_##name},
#define SC_BINARY(NAME, name, saves, expr) {#name, l_##name},
#include "../core/ops.def"
    {"sum_to", l_sum_to}, {"narrow_backward", l_narrow_backward},
    {"index_add", l_index_add},
    {"grad", l_grad}, {"no_grad", l_no_grad},
    {"set_grad_enabled", l_set_grad_enabled},
    {"is_grad_enabled", l_is_grad_enabled}, {"op_names", l_op_names},
    {"_op_table", l_op_table}, {"_set_fused_backward", l_set_fused_backward},
    {"_set_small_linear_avx512", l_set_small_linear_avx512},
    {"_set_gemm_avx512", l_set_gemm_avx512},
    {"_set_gemm_inplace", l_set_gemm_inplace},
    {"_set_wino_wgrad_transposed", l_set_wino_wgrad_transposed},
    {"_set_wino_tile", l_set_wino_tile},
    {"_set_randn_lanes", l_set_randn_lanes},
    {"_set_thin_conv", l_set_thin_conv},
    {"_linear_chain", l_linear_chain},
    {"set_num_threads", l_set_num_threads},
    {"get_num_threads", l_get_num_threads}, {"time", l_time},
    {"set_matmul_precision", l_set_matmul_precision},
    {"get_matmul_precision", l_get_matmul_precision}, {"cpu_has_bf16", l_cpu_has_bf16},
    {"set_wait_policy", l_set_wait_policy}, {"pool_stats", l_pool_stats},
    {"bytes_in_use", l_bytes_in_use}, {"is_tensor", l_is_tensor},
    {NULL, NULL}};

static const luaL_Reg metamethods[] = {
    {"__add", l_add}, {"__sub", l_sub}, {"__mul", l_mul}, {"__div", l_div},
    {"__pow", l_pow}, {"__unm", l_unm}, {"__len", m_len},
    {"__gc", t_gc}, {"__close", t_gc}, {"__newindex", t_newindex},
    {NULL, NULL}};

static const luaL_Reg generator_methods[] = {
    {"manual_seed", g_manual_seed}, {"seed", g_seed},
    {"get_state", g_get_state}, {"set_state", g_set_state},
    {NULL, NULL}};

void sc_lua_open_durable(lua_State *L); /* csrc/lua/durable.c */

int luaopen_scorch_core(lua_State *L) {
  luaL_checkversion(L);
  main_L = L;
  sc_set_alloc_hooks(on_alloc, on_oom, NULL);
  int nt = 1;
  const char *env = getenv("OMP_NUM_THREADS");
  if (env && atoi(env) > 0) nt = atoi(env);
  sc_set_num_threads(nt);
  /* SCORCH_WAIT_POLICY=spin|sleep fixes the pool's waiting (for
     measurements); anything else leaves it to the load check */
  env = getenv("SCORCH_WAIT_POLICY");
  if (env && strcmp(env, "spin") == 0) sc_pool_set_policy(SC_WAIT_SPIN);
  else if (env && strcmp(env, "sleep") == 0) sc_pool_set_policy(SC_WAIT_SLEEP);
  else if (env && *env && strcmp(env, "auto") != 0)
    fprintf(stderr, "scorch: SCORCH_WAIT_POLICY=%s is not one of auto, spin, sleep; using auto\n", env);

  /* generator metatable */
  luaL_newmetatable(L, SC_GENERATOR_MT);
  luaL_newlib(L, generator_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, g_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);

  /* tensor metatable: __index closes over the methods table */
  luaL_newmetatable(L, SC_TENSOR_MT);
  lua_pushvalue(L, -1);
  tensor_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  luaL_setfuncs(L, metamethods, 0);
  if (wrap_allocator(L)) { /* the allocator releases tensors: no __gc */
    lua_pushnil(L);
    lua_setfield(L, -2, "__gc");
  }
  luaL_newlib(L, methods);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__methods"); /* for the REPL's completion */
  lua_pushcclosure(L, t_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, "scorch.Tensor");
  lua_setfield(L, -2, "__name");

  luaL_newlib(L, functions);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "Tensor"); /* the metatable, for Lua-side additions */
  lua_getfield(L, -2, "__methods");
  lua_setfield(L, -2, "methods");
  sc_lua_open_io(L);
  sc_lua_open_optim(L);
  sc_lua_open_conv(L);
  sc_lua_open_norm(L);
  sc_lua_open_linalg(L);
  sc_lua_open_font(L);
  sc_lua_open_durable(L);
  return 1;
}
