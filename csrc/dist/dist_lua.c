/* scorch collectives: the Lua module over one backend.  Built twice, into
   scorch.dist_self (dist_self.c) and, with -DSC_DIST_MPI, scorch.dist_mpi
   (dist_mpi.c); lua/scorch/dist/init.lua chooses, checks arguments and
   shapes, and is the public face (sc.dist).
 *
 * The module links nothing but its backend: it reads tensors through the
 * public layout of csrc/core/tensor.h (fields and the userdata's pointer
 * slot, no core function), so it does not need core.so's symbols, which
 * Lua loads privately (RTLD_LOCAL).  Every tensor given here must be
 * contiguous; the Lua side makes sure of it. */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "dist.h"
#include "lua/binding.h"

#ifdef SC_DIST_MPI
#define OPEN_NAME luaopen_scorch_dist_mpi
#else
#define OPEN_NAME luaopen_scorch_dist_self
#endif

#define SENTINEL_MT "scorch.dist.world"

typedef struct {
  sc_tensor *t;
  void *data;
  int64_t n;
  sc_dist_type type;
} raw_tensor;

static int is_contiguous(const sc_tensor *t) {
  int64_t expect = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    if (t->shape[d] != 1 && t->stride[d] != expect) return 0;
    expect *= t->shape[d];
  }
  return 1;
}

/* The contiguous tensor at idx, with its data pointer and element count. */
static raw_tensor check_raw(lua_State *L, int idx, const char *fn) {
  sc_tensor **p = luaL_checkudata(L, idx, SC_TENSOR_MT);
  if (!*p) luaL_argerror(L, idx, "tensor was closed");
  sc_tensor *t = *p;
  if (!is_contiguous(t))
    luaL_error(L, "scorch.dist.%s: argument #%d must be contiguous", fn, idx);
  raw_tensor r = {t, NULL, t->numel, t->dtype == SC_FLOAT64 ? SC_DIST_F64 : SC_DIST_F32};
  if (t->numel > 0)
    r.data = (char *)t->storage->data + t->offset * (int64_t)sc_dist_type_size(r.type);
  return r;
}

/* In-place writes bump the storage version, as the core's own do, so
   autograd notices a saved tensor that changed. */
static void touched(raw_tensor *r) { r->t->storage->version++; }

static int fail(lua_State *L) { return luaL_error(L, "scorch.dist.%s", sc_dist_error()); }

/* Closing the Lua state ends the world: finalize (or abort when broken). */
static int world_gc(lua_State *L) {
  (void)L;
  sc_dist_finalize(0);
  return 0;
}

/* init(timeout_s) -> rank, size */
static int l_init(lua_State *L) {
  double timeout = luaL_optnumber(L, 1, 0);
  if (sc_dist_init(timeout)) return fail(L);
  if (lua_getfield(L, LUA_REGISTRYINDEX, SENTINEL_MT) == LUA_TNIL) {
    lua_newuserdatauv(L, 1, 0);
    if (luaL_newmetatable(L, SENTINEL_MT "_mt")) {
      lua_pushcfunction(L, world_gc);
      lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, SENTINEL_MT);
  }
  lua_pop(L, 1);
  lua_pushinteger(L, sc_dist_rank());
  lua_pushinteger(L, sc_dist_size());
  return 2;
}

static int l_rank(lua_State *L) {
  lua_pushinteger(L, sc_dist_rank());
  return 1;
}

static int l_size(lua_State *L) {
  lua_pushinteger(L, sc_dist_size());
  return 1;
}

static int l_backend(lua_State *L) {
  lua_pushstring(L, sc_dist_backend());
  return 1;
}

static int l_broken(lua_State *L) {
  lua_pushboolean(L, sc_dist_broken());
  return 1;
}

static int l_barrier(lua_State *L) {
  if (sc_dist_barrier()) return fail(L);
  return 0;
}

/* broadcast(t, root) with root 0-based */
static int l_broadcast(lua_State *L) {
  raw_tensor r = check_raw(L, 1, "broadcast");
  int root = (int)luaL_checkinteger(L, 2);
  if (sc_dist_broadcast(r.data, r.n, r.type, root)) return fail(L);
  touched(&r);
  return 0;
}

/* all_reduce(t, op) with op "sum", "max" or "min" */
static int l_all_reduce(lua_State *L) {
  static const char *const ops[] = {"sum", "max", "min", NULL};
  raw_tensor r = check_raw(L, 1, "all_reduce");
  int op = luaL_checkoption(L, 2, "sum", ops);
  if (sc_dist_all_reduce(r.data, r.n, r.type, (sc_dist_op)op)) return fail(L);
  touched(&r);
  return 0;
}

/* all_gather(t, out): out holds size * numel(t) elements of t's dtype */
static int l_all_gather(lua_State *L) {
  raw_tensor in = check_raw(L, 1, "all_gather");
  raw_tensor out = check_raw(L, 2, "all_gather");
  if (out.type != in.type || out.n != in.n * sc_dist_size())
    return luaL_error(L, "scorch.dist.all_gather: output must hold %d x %lld elements of the "
                      "input's dtype", sc_dist_size(), (long long)in.n);
  if (in.n > 0 && in.t->storage == out.t->storage)
    return luaL_error(L, "scorch.dist.all_gather: input and output share storage");
  if (sc_dist_all_gather(in.data, out.data, in.n, in.type)) return fail(L);
  touched(&out);
  return 0;
}

/* reduce_bucket(list, flat, scale): the tensors of list (contiguous, of
   flat's dtype, holding at most numel(flat) elements together) are copied
   into flat one after another, multiplied by scale; flat is summed over
   ranks; each tensor gets its part back.  One call per bucket instead of
   one per tensor. */
static int l_reduce_bucket(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  raw_tensor flat = check_raw(L, 2, "reduce_bucket");
  double scale = luaL_checknumber(L, 3);
  lua_Integer n = luaL_len(L, 1);
  int64_t total = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, 1, i);
    raw_tensor r = check_raw(L, lua_gettop(L), "reduce_bucket");
    if (r.type != flat.type)
      return luaL_error(L, "scorch.dist.reduce_bucket: tensor %d's dtype differs from the bucket's",
                        (int)i);
    if (r.t->storage == flat.t->storage)
      return luaL_error(L, "scorch.dist.reduce_bucket: tensor %d shares the bucket's storage", (int)i);
    lua_pop(L, 1);
    total += r.n;
  }
  if (total > flat.n)
    return luaL_error(L, "scorch.dist.reduce_bucket: %lld elements do not fit a bucket of %lld",
                      (long long)total, (long long)flat.n);
  for (int pass = 0; pass < 2; pass++) {
    int64_t off = 0;
    for (lua_Integer i = 1; i <= n; i++) {
      lua_geti(L, 1, i);
      raw_tensor r = check_raw(L, lua_gettop(L), "reduce_bucket");
      lua_pop(L, 1);
      if (r.n == 0) continue;
      if (flat.type == SC_DIST_F64) {
        double *f = (double *)flat.data + off, *x = r.data;
        if (pass == 0)
          for (int64_t k = 0; k < r.n; k++) f[k] = x[k] * scale;
        else
          memcpy(x, f, (size_t)r.n * sizeof *x);
      } else {
        float *f = (float *)flat.data + off, *x = r.data;
        float s = (float)scale;
        if (pass == 0)
          for (int64_t k = 0; k < r.n; k++) f[k] = x[k] * s;
        else
          memcpy(x, f, (size_t)r.n * sizeof *x);
      }
      if (pass == 1) touched(&r);
      off += r.n;
    }
    if (pass == 0 && sc_dist_all_reduce(flat.data, total, flat.type, SC_DIST_SUM)) return fail(L);
  }
  touched(&flat);
  return 0;
}

/* storage_keys(list) -> list of integers, equal for tensors that share
   storage (so the Lua side can tell aliased gradients apart). */
static int l_storage_keys(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 1);
  lua_createtable(L, (int)n, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, 1, i);
    sc_tensor **p = luaL_checkudata(L, -1, SC_TENSOR_MT);
    if (!*p) luaL_argerror(L, 1, "tensor was closed");
    lua_pop(L, 1);
    lua_pushinteger(L, (lua_Integer)(intptr_t)(*p)->storage);
    lua_rawseti(L, -2, i);
  }
  return 1;
}

/* finalize([abort]) */
static int l_finalize(lua_State *L) {
  sc_dist_finalize(lua_toboolean(L, 1));
  return 0;
}

/* stats() -> {calls, bytes, seconds} since the last reset_stats() */
static int l_stats(lua_State *L) {
  sc_dist_stats s;
  sc_dist_get_stats(&s);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, s.calls);
  lua_setfield(L, -2, "calls");
  lua_pushinteger(L, s.bytes);
  lua_setfield(L, -2, "bytes");
  lua_pushnumber(L, s.seconds);
  lua_setfield(L, -2, "seconds");
  return 1;
}

static int l_reset_stats(lua_State *L) {
  (void)L;
  sc_dist_reset_stats();
  return 0;
}

int OPEN_NAME(lua_State *L);
int OPEN_NAME(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"init", l_init},           {"rank", l_rank},
      {"size", l_size},           {"backend", l_backend},
      {"broken", l_broken},       {"barrier", l_barrier},
      {"broadcast", l_broadcast}, {"all_reduce", l_all_reduce},
      {"all_gather", l_all_gather}, {"reduce_bucket", l_reduce_bucket},
      {"storage_keys", l_storage_keys}, {"finalize", l_finalize},
      {"stats", l_stats},
      {"reset_stats", l_reset_stats}, {NULL, NULL}};
  luaL_checkversion(L);
  luaL_newlib(L, fns);
  return 1;
}
