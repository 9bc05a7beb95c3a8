/* C check: allocation failure.  The core's aligned_alloc is interposed
   here so that its k-th call fails (and the retry after it), for every k
   a forward and backward pass reaches: each failure must come back as
   NULL or -1 with an "out of memory" message, the reclaim hook must have
   been asked once before giving up, and once the caller releases what it
   holds, sc_bytes_in_use() is back at its baseline (under ASan: no leak,
   no use after free). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd.h"
#include "check.h"


/* The interposed allocator: when armed, calls number fail_at and
   fail_at + 1 (the core's retry) return NULL. */
static long calls, fail_at;
static int armed, injected;

void *aligned_alloc(size_t alignment, size_t size) {
  if (size > ((size_t)1 << 40)) return NULL; /* never satisfiable */
  if (armed && (++calls == fail_at || calls == fail_at + 1)) {
    injected++;
    return NULL;
  }
  void *p = NULL;
  return posix_memalign(&p, alignment, size) ? NULL : p;
}

static int reclaims;
static size_t pressure_bytes;
static void on_pressure(void *ud, size_t n) {
  (void)ud;
  pressure_bytes += n;
}
static int on_reclaim(void *ud) {
  (void)ud;
  reclaims++;
  return 1; /* "freed something": the core retries once */
}

static sc_tensor *leaf(int ndim, const int64_t *shape, uint64_t seed) {
  sc_generator g;
  sc_generator_seed(&g, seed);
  sc_tensor *t = sc_randn(&g, ndim, shape, SC_FLOAT32);
  t->requires_grad = 1;
  return t;
}

/* Forward and plain backward through group norm, softmax (fused backward),
   a matmul and elementwise ops; 0, or -1 at the first failure. */
static int step(sc_tensor *x, sc_tensor *w, sc_tensor *m) {
  const int64_t s2[2] = {8, 16};
  sc_tensor *t[8] = {0};
  int rc = -1;
  if ((t[0] = sc_group_norm(x, 2, w, NULL, 1e-5)) && (t[1] = sc_softmax(t[0], 1)) &&
      (t[2] = sc_reshape(t[1], 2, s2)) && (t[3] = sc_matmul(t[2], m)) &&
      (t[4] = sc_unary(SC_LOGSIGMOID, t[3])) && (t[5] = sc_unary(SC_ERFC, t[4])) &&
      (t[6] = sc_binary(SC_MUL, t[5], t[3])) && (t[7] = sc_sum(t[6], 0, NULL, 0)))
    rc = sc_backward(1, &t[7], NULL, 0, 0);
  for (int k = 0; k < 8; k++) sc_release(t[k]);
  return rc;
}

int main(void) {
  sc_set_alloc_hooks(on_pressure, on_reclaim, NULL);
  const int64_t sx[4] = {2, 4, 4, 4}, sw[1] = {4}, sm[2] = {16, 8};

  /* a request that cannot be met: NULL, the size named, reclaim asked once */
  int64_t base = sc_bytes_in_use();
  void *p = sc_aligned_alloc((size_t)1 << 50);
  CHECK(p == NULL && reclaims == 1, "huge request: %p, %d reclaims", p, reclaims);
  CHECK(strstr(sc_error(), "out of memory allocating 1125899906842624 bytes") != NULL,
        "huge request: message \"%s\"", sc_error());
  const int64_t huge[2] = {(int64_t)1 << 22, (int64_t)1 << 22};
  sc_tensor *z = sc_zeros(2, huge, SC_FLOAT32);
  CHECK(z == NULL && strstr(sc_error(), "out of memory") != NULL, "huge zeros: \"%s\"",
        sc_error());
  CHECK(sc_bytes_in_use() == base, "failed requests changed the byte count");

  /* the pressure hook hears of every byte handed out */
  pressure_bytes = 0;
  sc_tensor *a = sc_zeros(1, sw, SC_FLOAT64);
  CHECK(pressure_bytes >= 4 * sizeof(double) && (int64_t)pressure_bytes == sc_bytes_in_use() - base,
        "pressure: %zu bytes reported, %lld held", pressure_bytes,
        (long long)(sc_bytes_in_use() - base));
  sc_release(a);

  /* a clean run first: OpenBLAS and the caches settle, and the result is
     what every failing run must not disturb */
  sc_tensor *x = leaf(4, sx, 1), *w = leaf(1, sw, 2), *m = leaf(2, sm, 3);
  CHECK(step(x, w, m) == 0, "clean run: %s", sc_error());
  double ref = sc_get_linear(x->grad, 5);
  sc_release(x); sc_release(w); sc_release(m);
  base = sc_bytes_in_use();

  int runs = 0;
  for (fail_at = 1;; fail_at++) {
    x = leaf(4, sx, 1), w = leaf(1, sw, 2), m = leaf(2, sm, 3);
    int64_t held = sc_bytes_in_use();
    /* empty the core's block caches (a failed request releases them), so
       every allocation of the step reaches aligned_alloc */
    sc_aligned_alloc((size_t)1 << 50);
    calls = 0;
    injected = 0;
    int before = reclaims;
    armed = 1;
    int rc = step(x, w, m);
    armed = 0;
    if (!injected) { /* past the last allocation: the run succeeded */
      CHECK(rc == 0, "uninjected run failed: %s", sc_error());
      CHECK(sc_get_linear(x->grad, 5) == ref, "uninjected run: gradient differs");
      sc_release(x); sc_release(w); sc_release(m);
      break;
    }
    runs++;
    CHECK(rc == -1, "failing allocation %ld: step returned %d", fail_at, rc);
    CHECK(strstr(sc_error(), "out of memory") != NULL, "failing allocation %ld: \"%s\"",
          fail_at, sc_error());
    CHECK(reclaims == before + 1, "failing allocation %ld: reclaim asked %d times", fail_at,
          reclaims - before);
    /* the leaves are intact and nothing else is held once grads go */
    CHECK(x->refcount == 1 && w->refcount == 1 && m->refcount == 1,
          "failing allocation %ld: leaf refcounts %d %d %d", fail_at, x->refcount,
          w->refcount, m->refcount);
    for (sc_tensor **l = (sc_tensor *[]){x, w, m, NULL}; *l; l++) {
      sc_release((*l)->grad);
      (*l)->grad = NULL;
    }
    CHECK(sc_bytes_in_use() == held, "failing allocation %ld: %lld bytes left behind",
          fail_at, (long long)(sc_bytes_in_use() - held));
    sc_release(x); sc_release(w); sc_release(m);
  }
  CHECK(runs >= 10, "only %d allocations were failed", runs);
  CHECK(sc_bytes_in_use() == base, "%lld bytes still held at the end",
        (long long)(sc_bytes_in_use() - base));
  printf("%d allocations failed in turn\n", runs);
  return check_status();
}
