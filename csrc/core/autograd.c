/* scorch core: graph recording and the backward engine. */
#include "autograd.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- the op table ---------------------------------------------------------- */

#define SC_BW_DECL(name)                                                      \
  int sc_bw_##name(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin);
#define SC_FUSED_DECL_FUSED(name) SC_BW_DECL(fused_##name)
#define SC_FUSED_DECL_NOFUSED(name)
#define SC_UNARY(NAME, name, saves, lua, expr) SC_BW_DECL(name)
#define SC_BINARY(NAME, name, saves, expr) SC_BW_DECL(name) SC_BW_DECL(name##_scalar)
#define SC_OP(name, fused) SC_BW_DECL(name) SC_FUSED_DECL_##fused(name)
#define SC_FUSED_UNARY(name) SC_BW_DECL(fused_##name)
#include "ops.def"

#define SC_FUSED_FN_FUSED(name) sc_bw_fused_##name
#define SC_FUSED_FN_NOFUSED(name) NULL
const sc_opdef sc_ops[SC_NUM_OPS] = {
#define SC_UNARY(NAME, name, saves, lua, expr) [SC_OP_##name] = {#name, sc_bw_##name, NULL},
#define SC_BINARY(NAME, name, saves, expr)                                    \
  [SC_OP_##name] = {#name, sc_bw_##name, NULL},                              \
  [SC_OP_##name##_scalar] = {#name "_scalar", sc_bw_##name##_scalar, NULL},
#define SC_OP(name, fused) [SC_OP_##name] = {#name, sc_bw_##name, SC_FUSED_FN_##fused(name)},
#include "ops.def"
};

int sc_op_count(void) { return SC_NUM_OPS; }
const char *sc_op_name(int op) {
  return op >= 0 && op < SC_NUM_OPS ? sc_ops[op].name : "?";
}
sc_backward_fn sc_backward_of(int op) { return sc_ops[op].backward; }
/* the SC_FUSED_UNARY rows: unary ops with a fused backward */
static sc_backward_fn unary_fused(int op) {
  switch (op) {
#define SC_FUSED_UNARY(name)                                                  \
  case SC_OP_##name:                                                          \
    return sc_bw_fused_##name;
#include "ops.def"
  default:
    return NULL;
  }
}
sc_backward_fn sc_fused_backward_of(int op) {
  return sc_ops[op].fused ? sc_ops[op].fused : unary_fused(op);
}

static int fused_on = 1;
static uint64_t fused_runs[SC_NUM_OPS];

int sc_set_fused_backward(int on) {
  int prev = fused_on;
  fused_on = on != 0;
  return prev;
}

uint64_t sc_fused_backward_runs(int op) {
  return op >= 0 && op < SC_NUM_OPS ? fused_runs[op] : 0;
}

/* ---- grad mode ---------------------------------------------------------------- */

static int grad_mode = 1;

int sc_grad_enabled(void) { return grad_mode; }
int sc_set_grad_enabled(int on) {
  int prev = grad_mode;
  grad_mode = on != 0;
  return prev;
}

/* ---- nodes ----------------------------------------------------------------------- */

void sc_node_retain(sc_node *n) { n->refcount++; }

static void node_drop_saved(sc_node *n) {
  for (int k = 0; k < n->nsaved; k++) {
    sc_release(n->saved[k]);
    n->saved[k] = NULL;
  }
}

/* Releasing a node can release tensors that release nodes: a chain of
   100,000 ops would recurse that deep.  Instead, nested releases are queued
   and the outermost call drains the queue. */
static sc_node **pending;
static size_t npending, pending_cap;
static int draining;

/* Nodes are recycled like tensor headers (tensor.c): a recorded op costs
   malloc + free otherwise, a tenth of a small op under requires_grad. */
SC_RECYCLER(free_nodes, 4096);

static sc_node *node_alloc(void) {
  sc_node *n = sc_recycled(&free_nodes);
  if (!n) n = malloc(sizeof *n);
  if (n) sc_zero_record(n, sizeof *n);
  return n;
}

static void node_free(sc_node *n) {
  for (int i = 0; i < n->nin; i++) {
    if (n->edges[i].node) sc_node_release(n->edges[i].node);
    sc_release(n->edges[i].leaf);
  }
  node_drop_saved(n);
  sc_release(n->acc);
  if (n->edges != n->inline_edges) free(n->edges);
  free(n->index);
  sc_recycle(&free_nodes, n);
}

void sc_node_release(sc_node *n) {
  if (!n || --n->refcount > 0) return;
  if (npending == pending_cap) {
    size_t cap = pending_cap ? 2 * pending_cap : 256;
    sc_node **p = realloc(pending, cap * sizeof *p);
    if (!p) { /* no room to queue: free now, recursing */
      node_free(n);
      return;
    }
    pending = p;
    pending_cap = cap;
  }
  pending[npending++] = n;
  if (draining) return;
  draining = 1;
  while (npending) node_free(pending[--npending]);
  draining = 0;
}

int sc_record(int op, sc_tensor *out, int nin, sc_tensor *const *in,
              sc_node **node) {
  *node = NULL;
  if (!grad_mode) return 0;
  int any = 0;
  for (int i = 0; i < nin; i++)
    if (in[i] && in[i]->requires_grad) any = 1;
  if (!any) return 0;
  sc_node *n = node_alloc();
  sc_edge *e = !n ? NULL : nin <= 2 ? n->inline_edges : calloc((size_t)nin, sizeof *e);
  if (!e) {
    free(n);
    sc_set_error("out of memory recording %s", sc_op_name(op));
    return -1;
  }
  n->refcount = 1;
  n->op = op;
  n->nin = nin;
  n->edges = e;
  for (int i = 0; i < nin; i++) {
    const sc_tensor *t = in[i];
    if (!t) continue;
    e[i].ndim = t->ndim;
    memcpy(e[i].shape, t->shape, sizeof e[i].shape);
    e[i].dtype = t->dtype;
    if (!t->requires_grad) continue;
    if (t->grad_fn) {
      e[i].node = t->grad_fn;
      sc_node_retain(t->grad_fn);
    } else {
      e[i].leaf = sc_retain(in[i]);
    }
  }
  n->out_ndim = out->ndim;
  memcpy(n->out_shape, out->shape, sizeof n->out_shape);
  out->grad_fn = n;
  out->requires_grad = 1;
  *node = n;
  return 0;
}

int sc_save(sc_node *n, sc_tensor *t, int is_output) {
  int k = n->nsaved;
  if (k >= SC_NODE_MAX_SAVED) {
    sc_set_error("internal: too many saved tensors for %s", sc_op_name(n->op));
    return -1;
  }
  sc_tensor *s = is_output ? sc_raw_view(t, t->ndim, t->shape, t->stride,
                                         t->offset)
                           : sc_retain(t);
  if (!s) return -1;
  n->saved[k] = s;
  n->saved_version[k] = t->storage->version;
  n->saved_is_output[k] = is_output;
  n->nsaved = k + 1;
  return 0;
}

sc_tensor *sc_unpack(sc_node *n, int k) {
  if (n->released) {
    sc_set_error("backward: trying to go through the graph a second time "
                 "(its saved tensors were freed); pass retain_graph = true "
                 "to the first backward");
    return NULL;
  }
  sc_tensor *s = n->saved[k];
  if (s->storage->version != n->saved_version[k]) {
    sc_set_error("backward: a tensor needed by %s's gradient was modified in "
                 "place after it was used (version %u, saved at %u)",
                 sc_op_name(n->op), s->storage->version, n->saved_version[k]);
    return NULL;
  }
  if (!n->saved_is_output[k] || !grad_mode) return sc_retain(s);
  /* create_graph: the output must lead back through this node */
  sc_tensor *a = sc_raw_view(s, s->ndim, s->shape, s->stride, s->offset);
  if (!a) return NULL;
  a->grad_fn = n;
  a->requires_grad = 1;
  sc_node_retain(n);
  return a;
}

/* ---- the engine ----------------------------------------------------------------- */

static uint64_t epoch_counter;

typedef struct {
  sc_node **order; /* post-order: inputs before the nodes that use them */
  size_t n, cap;
} node_list;

static int list_push(node_list *l, sc_node *x) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 64;
    sc_node **p = realloc(l->order, cap * sizeof *p);
    if (!p) {
      sc_set_error("out of memory in backward");
      return -1;
    }
    l->order = p;
    l->cap = cap;
  }
  l->order[l->n++] = x;
  return 0;
}

typedef struct {
  int nin;
  sc_tensor **ins; /* targets of sc_grad, or NULL when accumulating */
  sc_tensor **res;
  int accumulate;
  int create;
} run_ctx;

static int target_index(const run_ctx *c, const sc_tensor *leaf,
                        const sc_node *node) {
  for (int j = 0; j < c->nin; j++) {
    if (leaf && c->ins[j] == leaf) return j;
    if (node && c->ins[j]->grad_fn == node) return j;
  }
  return -1;
}

static int edge_needed(const run_ctx *c, const sc_edge *e, uint64_t epoch) {
  if (e->node) return e->node->epoch == epoch && e->node->needed;
  if (e->leaf) return c->accumulate || target_index(c, e->leaf, NULL) >= 0;
  return 0;
}

/* Iterative depth-first walk from the roots; records post-order and marks
   which nodes lead to something whose gradient is wanted. */
static int collect(const run_ctx *c, int nroot, sc_node **roots, uint64_t epoch,
                   node_list *out) {
  typedef struct { sc_node *n; int next; } frame;
  frame *st = NULL;
  size_t sn = 0, scap = 0;
  int rc = 0;
  for (int r = 0; r < nroot && rc == 0; r++) {
    if (!roots[r] || roots[r]->epoch == epoch) continue;
    roots[r]->epoch = epoch;
    roots[r]->acc = NULL;
    if (sn == scap) {
      scap = scap ? 2 * scap : 64;
      frame *p = realloc(st, scap * sizeof *p);
      if (!p) { rc = -1; break; }
      st = p;
    }
    st[sn++] = (frame){roots[r], 0};
    while (sn && rc == 0) {
      frame *f = &st[sn - 1];
      if (f->next < f->n->nin) {
        sc_node *m = f->n->edges[f->next++].node;
        if (!m || m->epoch == epoch) continue;
        m->epoch = epoch;
        m->acc = NULL;
        if (sn == scap) {
          scap *= 2;
          frame *p = realloc(st, scap * sizeof *p);
          if (!p) { rc = -1; break; }
          st = p;
        }
        st[sn++] = (frame){m, 0};
        continue;
      }
      sc_node *n = f->n;
      n->needed = c->accumulate || target_index(c, NULL, n) >= 0;
      for (int i = 0; i < n->nin && !n->needed; i++)
        n->needed = edge_needed(c, &n->edges[i], epoch);
      if (list_push(out, n)) rc = -1;
      sn--;
    }
  }
  if (rc && !st) sc_set_error("out of memory in backward");
  free(st);
  return rc;
}

/* Whether t is nobody's but the caller's: one reference, its storage's
   only view, dense, outside any graph.  A gradient sum may then go into it. */
static int own_buffer(const sc_tensor *t) {
  return t->refcount == 1 && t->storage->refcount == 1 && !t->requires_grad && !t->grad_fn &&
         sc_dense(t);
}

/* acc <- acc + g (both owned; g is consumed).  Without a graph (create 0)
   the sum goes into whichever of the two is the caller's own buffer when
   there is one (sc_add_scaled_ with alpha 1: the same bits, an add
   commutes), sparing a fresh tensor and its first-touch page faults. */
static int acc_add(sc_tensor **acc, sc_tensor *g, int create) {
  if (!*acc) {
    *acc = g;
    return 0;
  }
  if (!create && (*acc)->dtype == g->dtype && sc_same_shape(*acc, g) && sc_dense(g) &&
      sc_dense(*acc) && (*acc)->storage != g->storage) {
    if (own_buffer(*acc) && sc_add_scaled_(*acc, g, 1.0) == 0) {
      sc_release(g);
      return 0;
    }
    if (own_buffer(g) && sc_add_scaled_(g, *acc, 1.0) == 0) {
      sc_release(*acc);
      *acc = g;
      return 0;
    }
  }
  sc_tensor *s = sc_binary(SC_ADD, *acc, g);
  sc_release(g);
  if (!s) return -1;
  sc_release(*acc);
  *acc = s;
  return 0;
}

static int deliver_leaf(run_ctx *c, sc_tensor *leaf, sc_tensor *g) {
  if (!c->accumulate) {
    int j = target_index(c, leaf, NULL);
    if (j < 0) {
      sc_release(g);
      return 0;
    }
    return acc_add(&c->res[j], g, c->create);
  }
  if (!leaf->grad) {
    /* own the buffer: a grad may be updated in place later */
    if (g->refcount == 1 &&
        (g->grad_fn || (sc_is_contiguous(g) && g->storage->refcount == 1))) {
      leaf->grad = g;
      return 0;
    }
    leaf->grad = sc_clone(g);
    sc_release(g);
    return leaf->grad ? 0 : -1;
  }
  if (!c->create && !leaf->grad->grad_fn) {
    int rc = sc_add_scaled_(leaf->grad, g, 1.0);
    sc_release(g);
    return rc;
  }
  return acc_add(&leaf->grad, g, c->create);
}

static int check_grad(const sc_node *n, int i, const sc_tensor *g) {
  const sc_edge *e = &n->edges[i];
  if (g->ndim == e->ndim && !memcmp(g->shape, e->shape, sizeof(int64_t) * (size_t)e->ndim))
    return 0;
  char b1[96], b2[96];
  sc_set_error("internal: %s backward gave shape %s for input %d of shape %s",
               sc_op_name(n->op), sc_shape_str(g, b1, sizeof b1), i + 1,
               sc_dims_str(e->ndim, e->shape, b2, sizeof b2));
  return -1;
}

static int run_node(run_ctx *c, sc_node *n, uint64_t epoch, int retain) {
  sc_tensor *g = n->acc;
  n->acc = NULL;
  int j = c->accumulate ? -1 : target_index(c, NULL, n);
  if (j >= 0 && acc_add(&c->res[j], sc_retain(g), c->create)) {
    sc_release(g);
    return -1;
  }
  int need_buf[64], any = 0;
  sc_tensor *gin_buf[64] = {0};
  int nin = n->nin, *need = need_buf;
  sc_tensor **gin = gin_buf;
  if (nin > 64) { /* a cat of many tensors: scratch on the heap */
    need = malloc(sizeof *need * (size_t)nin);
    gin = calloc((size_t)nin, sizeof *gin);
    if (!need || !gin) {
      free(need);
      free(gin);
      sc_set_error("out of memory in backward");
      sc_release(g);
      return -1;
    }
  }
  for (int i = 0; i < nin; i++) any |= need[i] = edge_needed(c, &n->edges[i], epoch);
  int rc = 0;
  if (any) {
    /* a fused backward is not differentiable again: only without a graph */
    sc_backward_fn bw = sc_ops[n->op].backward, fbw;
    if (!c->create && fused_on && (fbw = sc_fused_backward_of(n->op))) {
      bw = fbw;
      fused_runs[n->op]++;
    }
    rc = bw(n, g, need, gin);
  }
  sc_release(g);
  for (int i = 0; i < nin; i++) {
    if (!gin[i]) continue;
    if (rc == 0 && !need[i]) {
      sc_release(gin[i]);
      continue;
    }
    if (rc == 0) rc = check_grad(n, i, gin[i]);
    if (rc) {
      sc_release(gin[i]);
      continue;
    }
    sc_edge *e = &n->edges[i];
    rc = e->node ? acc_add(&e->node->acc, gin[i], c->create) : deliver_leaf(c, e->leaf, gin[i]);
  }
  if (rc == 0 && !retain && any) {
    node_drop_saved(n);
    n->released = 1;
  }
  if (need != need_buf) {
    free(need);
    free(gin);
  }
  return rc;
}

static int run(int nout, sc_tensor **outs, sc_tensor **gouts, run_ctx *c,
               int retain, int create) {
  const char *fn = c->accumulate ? "backward" : "grad";
  for (int k = 0; k < nout; k++) {
    sc_tensor *o = outs[k];
    if (!o->requires_grad) {
      sc_set_error("%s: output %d does not require grad (no input of it "
                   "requires grad)", fn, k + 1);
      return -1;
    }
    if (gouts && gouts[k]) {
      if (gouts[k]->dtype != o->dtype) {
        sc_set_error("%s: grad_outputs[%d] is %s but output %d is %s", fn,
                     k + 1, sc_dtype_name(gouts[k]->dtype), k + 1,
                     sc_dtype_name(o->dtype));
        return -1;
      }
      if (!sc_same_shape(gouts[k], o)) {
        char b1[96], b2[96];
        sc_set_error("%s: grad_outputs[%d] has shape %s but output has shape %s",
                     fn, k + 1, sc_shape_str(gouts[k], b1, sizeof b1),
                     sc_shape_str(o, b2, sizeof b2));
        return -1;
      }
    } else if (o->numel != 1) {
      char b[96];
      sc_set_error("%s: output %d has shape %s; a gradient can be implied "
                   "only for a single-element output (pass grad_outputs)",
                   fn, k + 1, sc_shape_str(o, b, sizeof b));
      return -1;
    }
  }
  for (int j = 0; j < c->nin; j++)
    if (!c->ins[j]->requires_grad) {
      sc_set_error("grad: input %d does not require grad", j + 1);
      return -1;
    }

  uint64_t epoch = ++epoch_counter;
  sc_node *roots[64];
  if (nout > 64) {
    sc_set_error("%s: at most 64 outputs", fn);
    return -1;
  }
  for (int k = 0; k < nout; k++) roots[k] = outs[k]->grad_fn;
  node_list order = {0};
  int prev = sc_set_grad_enabled(create);
  int rc = collect(c, nout, roots, epoch, &order);

  for (int k = 0; k < nout && rc == 0; k++) {
    sc_tensor *g = gouts && gouts[k] ? sc_retain(gouts[k])
                                     : sc_full(outs[k]->ndim, outs[k]->shape, 1.0,
                                               outs[k]->dtype);
    if (!g) {
      rc = -1;
      break;
    }
    if (!create && g->requires_grad) {
      sc_tensor *d = sc_detach(g);
      sc_release(g);
      if (!(g = d)) { rc = -1; break; }
    }
    if (roots[k])
      rc = acc_add(&roots[k]->acc, g, create);
    else
      rc = deliver_leaf(c, outs[k], g);
  }
  for (size_t i = order.n; i-- > 0 && rc == 0;) {
    sc_node *n = order.order[i];
    if (!n->acc) continue;
    if (!n->needed) {
      /* a target node still wants its gradient even if nothing is past it */
      int j = c->accumulate ? -1 : target_index(c, NULL, n);
      if (j >= 0) rc = acc_add(&c->res[j], sc_retain(n->acc), create);
      sc_release(n->acc);
      n->acc = NULL;
      continue;
    }
    rc = run_node(c, n, epoch, retain);
  }
  for (size_t i = 0; i < order.n; i++) {
    sc_release(order.order[i]->acc);
    order.order[i]->acc = NULL;
  }
  free(order.order);
  sc_set_grad_enabled(prev);
  return rc;
}

int sc_backward(int nout, sc_tensor **outs, sc_tensor **gouts,
                int retain_graph, int create_graph) {
  run_ctx c = {0, NULL, NULL, 1, create_graph};
  return run(nout, outs, gouts, &c, retain_graph || create_graph, create_graph);
}

int sc_grad(int nout, sc_tensor **outs, sc_tensor **gouts, int nin,
            sc_tensor **ins, sc_tensor **res, int retain_graph,
            int create_graph, int allow_unused) {
  for (int j = 0; j < nin; j++) res[j] = NULL;
  run_ctx c = {nin, ins, res, 0, create_graph};
  int rc = run(nout, outs, gouts, &c, retain_graph || create_graph, create_graph);
  for (int j = 0; j < nin && rc == 0; j++) {
    if (!res[j] && !allow_unused) {
      sc_set_error("grad: input %d was not used to compute the outputs "
                   "(pass allow_unused = true)", j + 1);
      rc = -1;
    } else if (res[j] && !create_graph && res[j]->requires_grad) {
      sc_tensor *d = sc_detach(res[j]);
      sc_release(res[j]);
      res[j] = d;
      if (!d) rc = -1;
    }
  }
  if (rc)
    for (int j = 0; j < nin; j++) {
      sc_release(res[j]);
      res[j] = NULL;
    }
  return rc;
}
