/* C check: reference counts and core bytes after graphs are built, run
   backward (plain, fused, create_graph and a second order) and released:
   every leaf is back to the one reference the caller holds, views share
   storage until released, and sc_bytes_in_use() returns to its baseline. */
#include <stdio.h>

#include "autograd.h"
#include "check.h"

#define OK(t) CHECK((t) != NULL, "%s: %s", #t, sc_error())

static sc_tensor *leaf(int ndim, const int64_t *shape, uint64_t seed) {
  sc_generator g;
  sc_generator_seed(&g, seed);
  sc_tensor *t = sc_randn(&g, ndim, shape, SC_FLOAT64);
  t->requires_grad = 1;
  return t;
}

/* A graph through several op families: group norm and softmax (fused
   backward), a matmul, views, index_select (owned indices), cat, and the
   elementwise ops of the table; returns a scalar. */
static sc_tensor *build(sc_tensor *x, sc_tensor *w, sc_tensor *b, sc_tensor *m) {
  const int64_t idx[3] = {2, 0, 2};
  const int64_t s2[2] = {6, 16};
  sc_tensor *t[16] = {0};
  OK(t[0] = sc_group_norm(x, 3, w, b, 1e-5));          /* [2,3,4,4] */
  OK(t[1] = sc_softmax(t[0], 3));
  OK(t[2] = sc_reshape(t[1], 2, s2));                  /* [6,16] */
  OK(t[3] = sc_matmul(t[2], m));                       /* [6,5] */
  OK(t[4] = sc_transpose(t[3], 0, 1));                 /* [5,6] view */
  OK(t[5] = sc_index_select(t[4], 0, 3, idx));         /* [3,6] */
  OK(t[6] = sc_unary(SC_ERFC, t[5]));
  OK(t[7] = sc_unary(SC_LOGSIGMOID, t[4]));
  sc_tensor *parts[2] = {t[6], t[7]};
  OK(t[8] = sc_cat(2, parts, 0));                      /* [8,6] */
  OK(t[9] = sc_unary(SC_TANH, t[8]));                  /* saves its output */
  OK(t[10] = sc_binary_scalar(SC_POW, t[9], 2.0, 0));
  OK(t[11] = sc_layer_norm(t[10], 1, NULL, NULL, 1e-5));
  OK(t[12] = sc_log_softmax(t[11], 1));
  OK(t[13] = sc_binary(SC_MUL, t[12], t[10]));
  OK(t[14] = sc_sum(t[13], 0, NULL, 0));
  for (int k = 0; k < 14; k++) sc_release(t[k]);
  return t[14];
}

int main(void) {
  int64_t base = sc_bytes_in_use();
  const int64_t sx[4] = {2, 3, 4, 4}, sw[1] = {3}, sm[2] = {16, 5};
  sc_tensor *x = leaf(4, sx, 1), *w = leaf(1, sw, 2), *b = leaf(1, sw, 3), *m = leaf(2, sm, 4);
  sc_tensor *in[4] = {x, w, b, m};

  /* a view shares storage and holds it until released */
  sc_tensor *v = sc_transpose(m, 0, 1);
  CHECK(v->storage == m->storage && m->storage->refcount == 2,
        "view: storage refcount %d", m->storage->refcount);
  sc_release(v);
  CHECK(m->storage->refcount == 1, "view released: storage refcount %d", m->storage->refcount);

  /* a saved output does not keep itself alive through its own node */
  sc_tensor *e = sc_unary(SC_EXP, x);
  CHECK(e->refcount == 1 && x->refcount == 2, "exp: refcounts %d (y) and %d (x)", e->refcount,
        x->refcount);
  sc_release(e);
  CHECK(x->refcount == 1, "exp released: x refcount %d", x->refcount);

  /* plain backward: the fused kernels, gradients into the leaves */
  sc_tensor *q = build(x, w, b, m);
  CHECK(x->refcount > 1, "the graph holds no reference to x");
  CHECK(sc_backward(1, &q, NULL, 0, 0) == 0, "backward: %s", sc_error());
  sc_release(q);
  for (int k = 0; k < 4; k++) {
    CHECK(in[k]->refcount == 1, "leaf %d: refcount %d after backward", k + 1, in[k]->refcount);
    CHECK(in[k]->grad && in[k]->grad->refcount == 1 && !in[k]->grad->grad_fn,
          "leaf %d: gradient missing or shared", k + 1);
  }

  /* create_graph, then the gradient of a function of the gradient */
  q = build(x, w, b, m);
  sc_tensor *g[4], *h[4];
  CHECK(sc_grad(1, &q, NULL, 4, in, g, 0, 1, 0) == 0, "grad: %s", sc_error());
  sc_release(q);
  sc_tensor *sq = sc_unary(SC_SQUARE, g[0]);
  sc_tensor *r = sc_sum(sq, 0, NULL, 0);
  sc_release(sq);
  CHECK(sc_grad(1, &r, NULL, 4, in, h, 0, 0, 1) == 0, "second order: %s", sc_error());
  CHECK(h[0] && h[1] && h[3], "second order: missing gradients");
  sc_release(r);
  for (int k = 0; k < 4; k++) {
    sc_release(g[k]);
    sc_release(h[k]);
  }
  for (int k = 0; k < 4; k++)
    CHECK(in[k]->refcount == 1, "leaf %d: refcount %d after second order", k + 1,
          in[k]->refcount);

  /* a graph dropped without backward frees everything too */
  q = build(x, w, b, m);
  sc_release(q);
  for (int k = 0; k < 4; k++) sc_release(in[k]);
  CHECK(sc_bytes_in_use() == base, "%lld bytes still held at the end",
        (long long)(sc_bytes_in_use() - base));
  return check_status();
}
