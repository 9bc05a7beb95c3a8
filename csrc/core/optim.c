/*
 * scorch core: fused optimiser updates.  One pass over each parameter does
 * the whole update, in the same order of operations as PyTorch's
 * single-tensor Adam/AdamW/SGD so trajectories agree to rounding.
 */
#include "optim.h"
#include "pool.h"
#include "internal.h"
#include "vmath.h"

#include <math.h>

static int check4(const char *fn, sc_tensor **ts, int n) {
  for (int k = 0; k < n; k++) {
    if (!ts[k]) continue;
    if (!sc_is_contiguous(ts[k]) || !sc_same_shape(ts[k], ts[0]) ||
        ts[k]->dtype != ts[0]->dtype) {
      char b1[96], b2[96];
      sc_set_error("%s: state tensor %d has shape %s (%s), parameter has %s "
                   "(%s); all must be contiguous with equal shape and dtype",
                   fn, k + 1, sc_shape_str(ts[k], b1, sizeof b1),
                   sc_dtype_name(ts[k]->dtype), sc_shape_str(ts[0], b2, sizeof b2),
                   sc_dtype_name(ts[0]->dtype));
      return -1;
    }
  }
  return 0;
}

typedef struct {
  void *p, *m, *v;
  const void *g;
  double lr, b1, b2, eps, wd, bc2s, step_size;
  int decoupled;
} adam_job;

/* The loop body once per weight-decay mode (none, L2 into the gradient,
   decoupled), so no branch stays inside the loop and it vectorises:
   restrict pointers and the constants in locals, not read through `j`. */
#define ADAM_LOOP(T, SQRT, WD_L2, WD_DECOUPLED)                              \
  for (int64_t i = lo; i < hi; i++) {                                        \
    T gi = G[i], pi = P[i];                                                  \
    if (WD_L2) gi = gi + wd * pi;                                            \
    if (WD_DECOUPLED) pi = pi * shrink;                                      \
    T mi = M[i] + (gi - M[i]) * one_b1;                                      \
    T vi = V[i] * b2 + gi * gi * one_b2;                                     \
    T den = SQRT(vi) / bc2s + eps;                                           \
    M[i] = mi;                                                               \
    V[i] = vi;                                                               \
    P[i] = pi - step_size * (mi / den);                                      \
  }

#define ADAM_PART(T, SQRT)                                                   \
  SC_DISPATCH static void adam_part_##T(void *ctx, int64_t lo, int64_t hi, int tid) { \
    (void)tid;                                                               \
    const adam_job *j = ctx;                                                 \
    T *restrict P = j->p, *restrict M = j->m, *restrict V = j->v;            \
    const T *restrict G = j->g;                                              \
    const T wd = (T)j->wd, shrink = (T)(1 - j->lr * j->wd);                  \
    const T one_b1 = (T)(1 - j->b1), b2 = (T)j->b2, one_b2 = (T)(1 - j->b2); \
    const T bc2s = (T)j->bc2s, eps = (T)j->eps, step_size = (T)j->step_size; \
    if (j->wd == 0) {                                                        \
      ADAM_LOOP(T, SQRT, 0, 0)                                               \
    } else if (!j->decoupled) {                                              \
      ADAM_LOOP(T, SQRT, 1, 0)                                               \
    } else {                                                                 \
      ADAM_LOOP(T, SQRT, 0, 1)                                               \
    }                                                                        \
  }
ADAM_PART(double, sqrt)
ADAM_PART(float, sqrtf)

int sc_adam_step(sc_tensor *p, sc_tensor *g, sc_tensor *m, sc_tensor *v,
                 double lr, double b1, double b2, double eps, double wd,
                 int decoupled, int64_t step) {
  sc_tensor *ts[4] = {p, g, m, v};
  if (check4("adam", ts, 4)) return -1;
  if (step < 1) {
    sc_set_error("adam: step must be at least 1");
    return -1;
  }
  int64_t n = p->numel;
  int nt = sc_get_num_threads();
  double bc1 = 1 - pow(b1, (double)step), bc2s = sqrt(1 - pow(b2, (double)step));
  double step_size = lr / bc1;
  adam_job j = {sc_data(p), sc_data(m), sc_data(v), sc_data(g), lr, b1, b2, eps, wd, bc2s,
                step_size, decoupled};
  sc_parallel_for(n >= SC_PAR_GRAIN ? nt : 1, n,
                  p->dtype == SC_FLOAT64 ? adam_part_double : adam_part_float, &j);
  sc_bump(p);
  sc_bump(m);
  sc_bump(v);
  return 0;
}

#define SGD_BODY(T)                                                          \
  T *P = sc_data(p);                                                         \
  const T *G = sc_data(g);                                                   \
  T *B = buf ? (T *)sc_data(buf) : NULL;                                     \
  for (int64_t i = 0; i < n; i++) {                                          \
    T d = G[i];                                                              \
    if (wd != 0) d = d + (T)wd * P[i];                                       \
    if (B) {                                                                 \
      B[i] = first ? d : B[i] * (T)momentum + d * (T)(1 - dampening);        \
      d = nesterov ? d + (T)momentum * B[i] : B[i];                          \
    }                                                                        \
    P[i] = P[i] - (T)lr * d;                                                 \
  }

int sc_sgd_step(sc_tensor *p, sc_tensor *g, sc_tensor *buf, double lr,
                double momentum, double dampening, double wd, int nesterov,
                int first) {
  sc_tensor *ts[3] = {p, g, buf};
  if (check4("sgd", ts, 3)) return -1;
  int64_t n = p->numel;
  if (p->dtype == SC_FLOAT64) {
    SGD_BODY(double)
  } else {
    SGD_BODY(float)
  }
  sc_bump(p);
  if (buf) sc_bump(buf);
  return 0;
}
