/* scorch core: fused optimiser updates (in place; never recorded). */
#ifndef SC_OPTIM_H
#define SC_OPTIM_H

#include "tensor.h"

/* Adam (decoupled = 0) or AdamW (decoupled = 1), step counted from 1. */
int sc_adam_step(sc_tensor *p, sc_tensor *g, sc_tensor *m, sc_tensor *v,
                 double lr, double b1, double b2, double eps, double wd,
                 int decoupled, int64_t step);
/* SGD with optional momentum buffer (buf may be NULL); `first` seeds it. */
int sc_sgd_step(sc_tensor *p, sc_tensor *g, sc_tensor *buf, double lr,
                double momentum, double dampening, double wd, int nesterov,
                int first);

#endif
