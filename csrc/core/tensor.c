/* scorch core: errors, allocation accounting, tensor lifetime and creation. */
#include "tensor.h"
#include "autograd.h"
#include "internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- errors ---------------------------------------------------------------- */

static _Thread_local char err_buf[512];

const char *sc_error(void) { return err_buf[0] ? err_buf : "unknown error"; }

void sc_set_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err_buf, sizeof err_buf, fmt, ap);
  va_end(ap);
}

const char *sc_shape_str(const sc_tensor *t, char *buf, size_t len) {
  return sc_dims_str(t->ndim, t->shape, buf, len);
}

const char *sc_dims_str(int ndim, const int64_t *shape, char *buf, size_t len) {
  size_t k = 0;
  k += (size_t)snprintf(buf + k, len - k, "[");
  for (int d = 0; d < ndim && k < len; d++)
    k += (size_t)snprintf(buf + k, len - k, d ? ",%lld" : "%lld",
                          (long long)shape[d]);
  if (k < len) snprintf(buf + k, len - k, "]");
  return buf;
}

/* ---- allocation accounting ------------------------------------------------ */

static int64_t bytes_in_use;
static sc_pressure_fn pressure_hook;
static sc_reclaim_fn reclaim_hook;
static void *hook_ud;

int64_t sc_bytes_in_use(void) { return bytes_in_use; }

void sc_set_alloc_hooks(sc_pressure_fn pressure, sc_reclaim_fn reclaim,
                        void *ud) {
  pressure_hook = pressure;
  reclaim_hook = reclaim;
  hook_ud = ud;
}

/* Small blocks are recycled through per-size free lists: a training step
   creates and drops thousands of tiny tensors, and malloc dominated that.
   Allocation happens only on the main thread (kernels never allocate). */
#define SMALL_CLASSES 7 /* 64, 128, ..., 4096 bytes */
#define SMALL_KEEP 16384 /* the 64-byte class; larger ones keep 1 MB each */
static void *small_free[SMALL_CLASSES][SMALL_KEEP];
static int small_count[SMALL_CLASSES];

static int size_class(size_t n) {
  int c = 0;
  size_t cap = 64;
  while (cap < n && c < SMALL_CLASSES) {
    cap <<= 1;
    c++;
  }
  return c < SMALL_CLASSES ? c : -1;
}

static size_t rounded(size_t nbytes) {
  int c = size_class(nbytes ? nbytes : 1);
  if (c >= 0) return (size_t)64 << c;
  return (nbytes + 4095) & ~(size_t)4095;
}

/* Large blocks: a fresh one costs a page fault and a page clear per 4 KB,
   which took a third of an MLP training step, so recently freed blocks are
   kept (bounded in count and bytes) and reused.  Blocks under BIG_MIN come
   from malloc and serve only a request of their own rounded size.  On
   Linux, blocks of BIG_MIN and more are mappings of their own, and one may
   serve a request of another size.  A request takes the smallest cached
   block that is large enough but not over 4 times too large (newest first:
   the likeliest to be in cache); failing that, the largest smaller one
   grows with mremap (only the added pages are fresh); failing that, a new
   mapping is made, unless the cache holds over twice the live bytes: then
   a larger block is shrunk (its pages past the new end go back to the
   system).  With exact sizes only, a network whose tensors come in many
   sizes (the Fashion-MNIST U-Net's sampling step, W7s) kept a cached block
   of every size it had ever freed: 500 MB of RSS for 150 MB of live
   tensors (now 270 MB).  Shrinking whenever a block was over 4 times too
   large kept RSS lower still but faulted 2 to 4 times as many pages. */
#define LARGE_KEEP 1024
#define LARGE_BUDGET ((size_t)1 << 30)
static struct { void *p; size_t n; } large_free[LARGE_KEEP];
static int n_large;
static size_t large_bytes;

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SC_ASAN 1
#endif
#endif
#if defined(__linux__) && !defined(__SANITIZE_ADDRESS__) && !defined(SC_ASAN)
#include <sys/mman.h>
#define BIG_MAP
#define BIG_MIN ((size_t)1 << 20)
#else
#define BIG_MIN SIZE_MAX
#endif
/* A big block is a mapping whose first BIG_HEAD bytes hold its size; the
   caller gets the rest.  The cache lists mappings by their own size.
   (AddressSanitizer sees only malloc's blocks, so its build keeps those.) */
#define BIG_HEAD 64

static void large_drop(void *p, size_t n) {
#ifdef BIG_MAP
  if (n >= BIG_MIN) {
    munmap(p, n);
    return;
  }
#endif
  (void)n;
  free(p);
}

#ifdef BIG_MAP
static void *big_take(size_t n) {
  size_t need = n + 4096; /* the head, rounded to a page */
  int fit = -1, under = -1;
  for (int k = n_large - 1; k >= 0; k--) { /* newest first: warmest */
    size_t m = large_free[k].n;
    if (m < BIG_MIN) continue;
    if (m >= need && (fit < 0 || m < large_free[fit].n)) fit = k;
    if (m < need && (under < 0 || m > large_free[under].n)) under = k;
  }
  int k = fit >= 0 && large_free[fit].n / 4 <= need ? fit : under;
  if (k < 0 && fit >= 0 && large_bytes > 2 * (size_t)(bytes_in_use > 0 ? bytes_in_use : 0))
    k = fit; /* shrunk below, rather than a new mapping beside it */
  char *p;
  size_t m;
  if (k < 0) {
    p = mmap(NULL, need, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    m = need;
  } else {
    p = large_free[k].p;
    m = large_free[k].n;
    large_free[k] = large_free[--n_large];
    large_bytes -= m;
    if (m < need || m / 4 > need) {
      void *q = mremap(p, m, need, MREMAP_MAYMOVE);
      if (q == MAP_FAILED) {
        munmap(p, m);
        return NULL;
      }
      p = q;
      m = need;
    }
  }
  *(size_t *)p = m;
  return p + BIG_HEAD;
}
#endif

/* A cached block for a request of n (rounded) bytes, or a new one. */
static void *large_take(size_t n) {
#ifdef BIG_MAP
  if (n >= BIG_MIN) return big_take(n);
#endif
  for (int k = n_large - 1; k >= 0; k--)
    if (large_free[k].n == n) {
      void *p = large_free[k].p;
      large_free[k] = large_free[--n_large];
      large_bytes -= n;
      return p;
    }
  return aligned_alloc(64, n);
}

static int large_keep(void *p, size_t n) {
  if (n > LARGE_BUDGET / 4) return 0;
  while (n_large > 0 && (n_large == LARGE_KEEP || large_bytes + n > LARGE_BUDGET)) {
    large_drop(large_free[0].p, large_free[0].n); /* evict the oldest */
    large_bytes -= large_free[0].n;
    large_free[0] = large_free[--n_large];
  }
  large_free[n_large].p = p;
  large_free[n_large++].n = n;
  large_bytes += n;
  return 1;
}

/* Tiny storages (64 data bytes or fewer) hold their record and their data
   in one 128-byte block from a free list of their own: one allocation, not
   two, for every small op's result.  They count as a 64-byte block in
   sc_bytes_in_use, as the data alone would. */
#define TINY_DATA 64
typedef struct {
  sc_storage s;
  _Alignas(64) unsigned char data[TINY_DATA];
} tiny_block;
SC_RECYCLER(free_tinies, 16384);

/* Drops every cached block, small and large (before reporting out of
   memory). */
static void caches_release(void) {
  for (int c = 0; c < SMALL_CLASSES; c++)
    while (small_count[c] > 0) free(small_free[c][--small_count[c]]);
  for (void *b; (b = sc_recycled(&free_tinies));) free(b);
  while (n_large > 0) {
    n_large--;
    large_drop(large_free[n_large].p, large_free[n_large].n);
  }
  large_bytes = 0;
}

static void *block_take(size_t n) {
  int c = size_class(n);
  if (c < 0) return large_take(n);
  if (small_count[c] > 0) return small_free[c][--small_count[c]];
  return aligned_alloc(64, n);
}

void *sc_aligned_alloc(size_t nbytes) {
  size_t n = rounded(nbytes);
  void *p = block_take(n);
  if (!p) {
    caches_release();
    if (reclaim_hook) reclaim_hook(hook_ud);
    p = block_take(n);
  }
  if (!p) {
    sc_set_error("out of memory allocating %zu bytes", nbytes);
    return NULL;
  }
  bytes_in_use += (int64_t)n;
  if (pressure_hook) pressure_hook(hook_ud, n);
  return p;
}

void sc_aligned_free(void *p, size_t nbytes) {
  if (!p) return;
  size_t n = rounded(nbytes);
  bytes_in_use -= (int64_t)n;
  int c = size_class(n);
  if (c >= 0 && small_count[c] < (SMALL_KEEP >> c)) {
    small_free[c][small_count[c]++] = p;
    return;
  }
#ifdef BIG_MAP
  if (n >= BIG_MIN) {
    p = (char *)p - BIG_HEAD;
    n = *(size_t *)p;
  }
#endif
  if (c >= 0) free(p);
  else if (!large_keep(p, n)) large_drop(p, n);
}

/* Tensor headers and storage records are recycled the same way. */
SC_RECYCLER(free_headers, 16384);
SC_RECYCLER(free_storages, 16384);

/* A 64-byte aligned record of n bytes (rounded up to whole lines), with
   sc_aligned_alloc's retry: on failure the caches are dropped and the host
   asked to reclaim before a second try. */
static void *record_alloc(size_t n) {
  n = (n + 63) & ~(size_t)63;
  void *p = aligned_alloc(64, n);
  if (!p) {
    caches_release();
    if (reclaim_hook) reclaim_hook(hook_ud);
    p = aligned_alloc(64, n);
  }
  if (!p) sc_set_error("out of memory allocating %zu bytes", n);
  return p;
}

sc_tensor *sc_tensor_alloc(void) {
  sc_tensor *t = sc_recycled(&free_headers);
  if (!t) t = record_alloc(sizeof *t);
  if (!t) return NULL;
  sc_zero_record(t, sizeof *t);
  t->refcount = 1;
  return t;
}

static void tensor_free(sc_tensor *t) { sc_recycle(&free_headers, t); }

/* ---- lifetime ---------------------------------------------------------------- */

const char *sc_dtype_name(sc_dtype dt) {
  return dt == SC_FLOAT64 ? "float64" : "float32";
}

static sc_storage *tiny_new(size_t nbytes) {
  tiny_block *b = sc_recycled(&free_tinies);
  if (!b) b = record_alloc(sizeof *b);
  if (!b) return NULL;
  bytes_in_use += TINY_DATA;
  if (pressure_hook) pressure_hook(hook_ud, TINY_DATA);
  b->s = (sc_storage){.refcount = 1, .nbytes = nbytes, .data = b->data, .tiny = 1};
  return &b->s;
}

static void tiny_free(sc_storage *s) {
  bytes_in_use -= TINY_DATA;
  sc_recycle(&free_tinies, s); /* s is its block's first member */
}

static sc_storage *storage_new(size_t nbytes) {
  if (nbytes <= TINY_DATA) return tiny_new(nbytes);
  sc_storage *s = sc_recycled(&free_storages);
  if (!s) s = malloc(sizeof *s);
  if (!s) {
    sc_set_error("out of memory");
    return NULL;
  }
  s->data = sc_aligned_alloc(nbytes);
  if (!s->data) {
    free(s);
    return NULL;
  }
  s->refcount = 1;
  s->version = 0;
  s->nbytes = nbytes;
  s->tiny = 0;
  return s;
}

static void storage_release(sc_storage *s) {
  if (s && --s->refcount == 0) {
    if (s->tiny) {
      tiny_free(s);
      return;
    }
    sc_aligned_free(s->data, s->nbytes);
    sc_recycle(&free_storages, s);
  }
}

sc_tensor *sc_retain(sc_tensor *t) {
  if (t) t->refcount++;
  return t;
}

void sc_release(sc_tensor *t) {
  if (!t || --t->refcount > 0) return;
  storage_release(t->storage);
  sc_release(t->grad); /* a grad never has a grad: depth one */
  if (t->grad_fn) sc_node_release(t->grad_fn);
  tensor_free(t);
}

/* A header over storage s (retained), with contiguous strides. */
sc_tensor *sc_header(sc_storage *s, int ndim, const int64_t *shape,
                     sc_dtype dt) {
  sc_tensor *t = sc_tensor_alloc();
  if (!t) return NULL;
  t->dtype = dt;
  t->ndim = ndim;
  t->storage = s;
  s->refcount++;
  int64_t st = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    t->shape[d] = shape[d];
    t->stride[d] = st;
    st *= shape[d];
  }
  t->numel = st;
  return t;
}

int sc_check_shape(const char *fn, int ndim, const int64_t *shape) {
  if (ndim < 0 || ndim > SC_MAX_DIMS) {
    sc_set_error("%s: %d dimensions (at most %d supported)", fn, ndim,
                 SC_MAX_DIMS);
    return -1;
  }
  /* the product of the nonzero sizes bounds every stride, even when a zero
     size makes the element count 0 */
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0) {
      sc_set_error("%s: negative size %lld in dimension %d", fn,
                   (long long)shape[d], d + 1);
      return -1;
    }
    if (shape[d] == 0) continue;
    if (n > INT64_MAX / 8 / shape[d]) {
      sc_set_error("%s: shape too large", fn);
      return -1;
    }
    n *= shape[d];
  }
  return 0;
}

/* A new contiguous tensor of n elements and the given (checked) shape. */
static sc_tensor *empty_of(int ndim, const int64_t *shape, int64_t n, sc_dtype dt) {
  sc_storage *s = storage_new((size_t)n * sc_dtype_size(dt));
  if (!s) return NULL;
  sc_tensor *t = sc_header(s, ndim, shape, dt);
  storage_release(s);
  return t;
}

sc_tensor *sc_empty(int ndim, const int64_t *shape, sc_dtype dt) {
  if (sc_check_shape("empty", ndim, shape)) return NULL;
  return empty_of(ndim, shape, sc_prod(shape, 0, ndim), dt);
}

sc_tensor *sc_empty_as(const sc_tensor *x) {
  return empty_of(x->ndim, x->shape, x->numel, x->dtype);
}

sc_tensor *sc_full(int ndim, const int64_t *shape, double v, sc_dtype dt) {
  sc_tensor *t = sc_empty(ndim, shape, dt);
  if (t) sc_fill_(t, v);
  return t;
}

sc_tensor *sc_zeros(int ndim, const int64_t *shape, sc_dtype dt) {
  sc_tensor *t = sc_empty(ndim, shape, dt);
  if (t) memset(t->storage->data, 0, t->storage->nbytes);
  return t;
}

sc_tensor *sc_zeros_like(const sc_tensor *t) {
  return sc_zeros(t->ndim, t->shape, t->dtype);
}

sc_tensor *sc_scalar(double v, sc_dtype dt) { return sc_full(0, NULL, v, dt); }

sc_tensor *sc_from_doubles(int ndim, const int64_t *shape, const double *v,
                           sc_dtype dt) {
  sc_tensor *t = sc_empty(ndim, shape, dt);
  if (!t) return NULL;
  if (dt == SC_FLOAT64)
    memcpy(t->storage->data, v, (size_t)t->numel * 8);
  else
    for (int64_t i = 0; i < t->numel; i++)
      ((float *)t->storage->data)[i] = (float)v[i];
  return t;
}

sc_tensor *sc_arange(double a, double b, double step, sc_dtype dt) {
  if (step == 0 || !isfinite(a) || !isfinite(b) || !isfinite(step)) {
    sc_set_error("arange: step must be nonzero and bounds finite");
    return NULL;
  }
  double span = ceil((b - a) / step);
  if (span > 9.0e15) {
    sc_set_error("arange: too many elements (%g)", span);
    return NULL;
  }
  int64_t n = span > 0 ? (int64_t)span : 0;
  if (sc_check_shape("arange", 1, &n)) return NULL;
  sc_tensor *t = sc_empty(1, &n, dt);
  if (!t) return NULL;
  for (int64_t i = 0; i < n; i++) sc_set_linear(t, i, a + (double)i * step);
  return t;
}

sc_tensor *sc_linspace(double a, double b, int64_t n, sc_dtype dt) {
  if (n < 0) {
    sc_set_error("linspace: negative count %lld", (long long)n);
    return NULL;
  }
  if (sc_check_shape("linspace", 1, &n)) return NULL;
  sc_tensor *t = sc_empty(1, &n, dt);
  if (!t) return NULL;
  double step = n > 1 ? (b - a) / (double)(n - 1) : 0;
  /* fill from both ends so the last value is exactly b */
  for (int64_t i = 0; i < n; i++)
    sc_set_linear(t, i, i < (n + 1) / 2 ? a + step * (double)i
                                        : b - step * (double)(n - 1 - i));
  return t;
}

/* ---- element access ------------------------------------------------------- */

int sc_is_contiguous(const sc_tensor *t) {
  int64_t st = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    if (t->shape[d] != 1 && t->stride[d] != st) return 0;
    st *= t->shape[d];
  }
  return 1;
}

int64_t sc_linear_offset(const sc_tensor *t, int64_t i) {
  int64_t off = 0;
  for (int d = t->ndim - 1; d >= 0; d--) {
    int64_t n = t->shape[d];
    off += (i % n) * t->stride[d];
    i /= n;
  }
  return off;
}

double sc_get_linear(const sc_tensor *t, int64_t i) {
  int64_t off = sc_linear_offset(t, i);
  if (t->dtype == SC_FLOAT64) return ((const double *)sc_data(t))[off];
  return ((const float *)sc_data(t))[off];
}

void sc_set_linear(sc_tensor *t, int64_t i, double v) {
  int64_t off = sc_linear_offset(t, i);
  if (t->dtype == SC_FLOAT64)
    ((double *)sc_data(t))[off] = v;
  else
    ((float *)sc_data(t))[off] = (float)v;
}

void sc_set_linear_public(sc_tensor *t, int64_t i, double v) {
  sc_set_linear(t, i, v);
}

void sc_to_doubles(const sc_tensor *t, double *out) {
  if (sc_is_contiguous(t)) {
    if (t->dtype == SC_FLOAT64) {
      memcpy(out, sc_data(t), (size_t)t->numel * 8);
    } else {
      const float *p = sc_data(t);
      for (int64_t i = 0; i < t->numel; i++) out[i] = p[i];
    }
    return;
  }
  for (int64_t i = 0; i < t->numel; i++) out[i] = sc_get_linear(t, i);
}

int sc_same_shape(const sc_tensor *a, const sc_tensor *b) {
  if (a->ndim != b->ndim) return 0;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d]) return 0;
  return 1;
}

int sc_check_dim(const char *fn, const sc_tensor *t, int d) {
  if (d < 0 || d >= t->ndim) {
    char b[96];
    sc_set_error("%s: dimension %d out of range for a tensor of shape %s", fn,
                 d + 1, sc_shape_str(t, b, sizeof b));
    return -1;
  }
  return 0;
}

/* ---- time ----------------------------------------------------------------- */

double sc_time(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
