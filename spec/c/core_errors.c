/* C check: core functions on bad input return NULL or -1 with the message
   the binding raises as a Lua error (exact text, shapes named), and a
   failed call leaves no tensor bytes behind. */
#include <stdio.h>
#include <string.h>

#include "autograd.h"
#include "check.h"


/* A tensor result that must be NULL with `want` in the message. */
static void want_null(const char *what, sc_tensor *r, const char *want) {
  CHECK(r == NULL, "%s: succeeded", what);
  sc_release(r);
  CHECK(strstr(sc_error(), want) != NULL, "%s: message \"%s\" lacks \"%s\"", what,
        sc_error(), want);
}

/* A status that must be -1 with `want` in the message. */
static void want_fail(const char *what, int rc, const char *want) {
  CHECK(rc == -1, "%s: returned %d, expected -1", what, rc);
  CHECK(strstr(sc_error(), want) != NULL, "%s: message \"%s\" lacks \"%s\"", what,
        sc_error(), want);
}

static sc_tensor *leaf(int ndim, const int64_t *shape, sc_dtype dt, double v) {
  sc_tensor *t = sc_full(ndim, shape, v, dt);
  t->requires_grad = 1;
  return t;
}

int main(void) {
  int64_t base = sc_bytes_in_use();
  const int64_t s34[2] = {3, 4}, s56[2] = {5, 6}, s3[1] = {3}, s4[1] = {4};
  const int64_t s234[3] = {2, 3, 4};
  sc_tensor *a = sc_full(2, s34, 1.0, SC_FLOAT32), *b = sc_full(2, s56, 1.0, SC_FLOAT32);
  sc_tensor *d = sc_full(2, s34, 1.0, SC_FLOAT64);
  sc_tensor *v3 = sc_full(1, s3, 1.0, SC_FLOAT32), *v4 = sc_full(1, s4, 1.0, SC_FLOAT32);
  sc_tensor *img = sc_full(3, s234, 1.0, SC_FLOAT32);
  int64_t after_inputs = sc_bytes_in_use();

  want_null("matmul", sc_matmul(a, b), "matmul: shapes [3,4] and [5,6] do not match");
  want_null("add dtypes", sc_binary(SC_ADD, a, d),
            "add: dtypes float32 and float64 do not match");
  want_null("add shapes", sc_binary(SC_ADD, v3, v4), "add: shapes [3] and [4] cannot be broadcast");
  want_null("unary id", sc_unary((sc_unary_op)999, a), "unary: unknown op 999");
  want_null("binary id", sc_binary((sc_binary_op)999, a, a), "binary: unknown op 999");
  want_null("narrow", sc_narrow(a, 1, 2, 3),
            "narrow: range [3, 5] is outside dimension 2 of a tensor of shape [3,4]");
  want_null("clamp", sc_clamp(a, 1, 0), "clamp: lower bound 1 is above upper bound 0");
  want_null("group_norm", sc_group_norm(img, 2, NULL, NULL, 1e-5),
            "group_norm_core: 3 channels of input [2,3,4] are not divisible into 2 groups");
  want_null("layer_norm", sc_layer_norm(img, 4, NULL, NULL, 1e-5),
            "layer_norm_core: the number of normalised trailing dims must be in [1, 3]");
  want_null("softmax", sc_softmax(img, 3), "softmax_core");
  CHECK(sc_bytes_in_use() == after_inputs, "failed ops left %lld bytes",
        (long long)(sc_bytes_in_use() - after_inputs));

  /* autograd misuse */
  want_fail("backward without grad", sc_backward(1, &a, NULL, 0, 0),
            "backward: output 1 does not require grad");
  sc_tensor *x = leaf(2, s34, SC_FLOAT64, 0.5), *u = leaf(2, s34, SC_FLOAT64, 2.0);
  sc_tensor *y = sc_unary(SC_EXP, x); /* saves its output */
  want_fail("implied gradient", sc_backward(1, &y, NULL, 0, 0),
            "backward: output 1 has shape [3,4]; a gradient can be implied only for a "
            "single-element output");
  sc_tensor *s = sc_sum(y, 0, NULL, 0), *res[2];
  sc_tensor *ins[2] = {x, u};
  want_fail("unused input", sc_grad(1, &s, NULL, 2, ins, res, 1, 0, 0),
            "grad: input 2 was not used to compute the outputs (pass allow_unused = true)");
  CHECK(res[0] == NULL && res[1] == NULL, "failed grad left results");
  CHECK(sc_backward(1, &s, NULL, 0, 0) == 0, "backward: %s", sc_error());
  want_fail("second pass", sc_backward(1, &s, NULL, 0, 0),
            "backward: trying to go through the graph a second time");
  sc_release(s);
  sc_release(y);
  y = sc_unary(SC_EXP, x); /* a fresh graph */
  s = sc_sum(y, 0, NULL, 0);
  sc_fill_(y, 0.0); /* y is read by exp's gradient */
  want_fail("modified in place", sc_backward(1, &s, NULL, 0, 0),
            "a tensor needed by exp's gradient was modified in place after it was used "
            "(version 1, saved at 0)");
  sc_release(s);
  sc_release(y);

  sc_release(x); sc_release(u);
  sc_release(a); sc_release(b); sc_release(d); sc_release(v3); sc_release(v4);
  sc_release(img);
  CHECK(sc_bytes_in_use() == base, "%lld bytes still held at the end",
        (long long)(sc_bytes_in_use() - base));
  return check_status();
}
