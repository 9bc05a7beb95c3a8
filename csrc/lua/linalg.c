/* scorch binding: the linear algebra behind sc.metrics (core/linalg.c).
   Internal functions of scorch.core, named linalg_*; lua/scorch/metrics
   words the errors users see, these check enough that any call is safe. */
#include "binding.h"

#include <string.h>

#include "../core/linalg.h"

/* The tensor at idx, contiguous, of `dims` dims and (if dt >= 0) dtype dt. */
static sc_tensor *check_dense(lua_State *L, int idx, int dims, int dt, const char *what) {
  sc_tensor *t = sc_lua_check(L, idx);
  if (t->ndim != dims || !sc_is_contiguous(t) || (dt >= 0 && (int)t->dtype != dt)) {
    char b[96];
    lua_pushfstring(L, "%s: expected a contiguous %d-d %s tensor, got %s %s", what, dims,
                    dt < 0 ? "float" : sc_dtype_name((sc_dtype)dt), sc_shape_str(t, b, sizeof b),
                    sc_dtype_name(t->dtype));
    luaL_argerror(L, idx, lua_tostring(L, -1));
  }
  return t;
}

/* Pushes a new uninitialised tensor and returns it (the collector owns it). */
static sc_tensor *push_new(lua_State *L, int ndim, const int64_t *shape, sc_dtype dt) {
  sc_tensor **slot = sc_lua_newslot(L);
  sc_lua_fill(L, slot, sc_empty(ndim, shape, dt));
  return *slot;
}

/* linalg_eigh(a [n, n] float64) -> eigenvalues [n] ascending, eigenvectors
   [n, n] as rows */
static int l_eigh(lua_State *L) {
  sc_tensor *a = check_dense(L, 1, 2, SC_FLOAT64, "linalg_eigh");
  int64_t n = a->shape[0];
  if (a->shape[1] != n) luaL_argerror(L, 1, "linalg_eigh: matrix must be square");
  sc_tensor *w = push_new(L, 1, &n, SC_FLOAT64);
  sc_tensor *v = push_new(L, 2, a->shape, SC_FLOAT64);
  memcpy(sc_data(v), sc_data(a), (size_t)(n * n) * sizeof(double));
  if (sc_linalg_syevd(n, sc_data(v), sc_data(w), 1) != 0) return sc_lua_core_error(L);
  return 2;
}

/* linalg_trace_sqrt_product(a, b) -> tr (a^{1/2} b a^{1/2})^{1/2} */
static int l_trace_sqrt_product(lua_State *L) {
  sc_tensor *a = check_dense(L, 1, 2, SC_FLOAT64, "linalg_trace_sqrt_product");
  sc_tensor *b = check_dense(L, 2, 2, SC_FLOAT64, "linalg_trace_sqrt_product");
  int64_t n = a->shape[0];
  if (a->shape[1] != n || !sc_same_shape(a, b))
    return luaL_error(L, "linalg_trace_sqrt_product: need two square matrices of one size");
  double tr = 0;
  if (sc_linalg_trace_sqrt_product(n, sc_data(a), sc_data(b), &tr) != 0)
    return sc_lua_core_error(L);
  lua_pushnumber(L, tr);
  return 1;
}

/* linalg_moments(x [n, d]) -> mean [d], scatter [d, d] (float64) */
static int l_moments(lua_State *L) {
  sc_tensor *x = check_dense(L, 1, 2, -1, "linalg_moments");
  int64_t d = x->shape[1], dd[2] = {d, d};
  sc_tensor *mean = push_new(L, 1, &d, SC_FLOAT64);
  sc_tensor *sc = push_new(L, 2, dd, SC_FLOAT64);
  if (sc_linalg_moments(x->dtype, x->shape[0], d, sc_data(x), d, sc_data(mean), sc_data(sc)) != 0)
    return sc_lua_core_error(L);
  return 2;
}

/* linalg_knn_radii(x [n, d] float32, k) -> squared k-NN radii [n] float32 */
static int l_knn_radii(lua_State *L) {
  sc_tensor *x = check_dense(L, 1, 2, SC_FLOAT32, "linalg_knn_radii");
  lua_Integer k = luaL_checkinteger(L, 2);
  if (k < 1 || k > 1000) luaL_argerror(L, 2, "linalg_knn_radii: k must be in 1..1000");
  sc_tensor *r2 = push_new(L, 1, x->shape, SC_FLOAT32);
  if (sc_linalg_knn_radii(x->shape[0], x->shape[1], sc_data(x), (int)k, sc_data(r2)) != 0)
    return sc_lua_core_error(L);
  return 1;
}

/* Copies n bytes of 0/1 flags into a new float32 tensor [n]. */
static void push_flags(lua_State *L, const unsigned char *f, int64_t n) {
  sc_tensor *t = push_new(L, 1, &n, SC_FLOAT32);
  float *p = sc_data(t);
  for (int64_t i = 0; i < n; i++) p[i] = f[i];
}

/* linalg_pr_cover(real [nr, d], fake [nf, d], r2_real [nr], r2_fake [nf]
   [, w_real [nr]]) -> fake_in [nf], real_in [nr] (0/1 float32), and with
   w_real the squared realism scores [nf] */
static int l_pr_cover(lua_State *L) {
  const char *fn = "linalg_pr_cover";
  sc_tensor *real = check_dense(L, 1, 2, SC_FLOAT32, fn), *fake = check_dense(L, 2, 2, SC_FLOAT32, fn);
  sc_tensor *r2r = check_dense(L, 3, 1, SC_FLOAT32, fn), *r2f = check_dense(L, 4, 1, SC_FLOAT32, fn);
  sc_tensor *w = lua_isnoneornil(L, 5) ? NULL : check_dense(L, 5, 1, SC_FLOAT32, fn);
  int64_t nr = real->shape[0], nf = fake->shape[0], d = real->shape[1];
  if (fake->shape[1] != d || r2r->shape[0] != nr || r2f->shape[0] != nf || (w && w->shape[0] != nr))
    return luaL_error(L, "%s: sizes of the sets and their radii do not match", fn);
  unsigned char *flags = lua_newuserdatauv(L, (size_t)(nr + nf), 0);
  sc_tensor *realism = w ? push_new(L, 1, &nf, SC_FLOAT32) : NULL;
  if (sc_linalg_pr_cover(nr, nf, d, sc_data(real), sc_data(fake), sc_data(r2r), sc_data(r2f),
                         w ? sc_data(w) : NULL, flags, flags + nf,
                         realism ? sc_data(realism) : NULL) != 0)
    return sc_lua_core_error(L);
  push_flags(L, flags, nf);
  push_flags(L, flags + nf, nr);
  if (realism) {
    lua_pushvalue(L, -3);
  } else {
    lua_pushnil(L);
  }
  return 3;
}

static const luaL_Reg linalg_functions[] = {
    {"linalg_eigh", l_eigh},
    {"linalg_trace_sqrt_product", l_trace_sqrt_product},
    {"linalg_moments", l_moments},
    {"linalg_knn_radii", l_knn_radii},
    {"linalg_pr_cover", l_pr_cover},
    {NULL, NULL}};

void sc_lua_open_linalg(lua_State *L) { luaL_setfuncs(L, linalg_functions, 0); }
