/*
 * scorch core: reverse-mode autograd.
 *
 * A node hangs off the tensor an op produced (t->grad_fn); its edges point
 * at the nodes of the op's inputs, or straight at the input tensor when that
 * input is a leaf that requires grad.  There is no global tape, so nested
 * sc_grad calls work.  Backward formulas are written with the same public,
 * differentiable ops; run with recording on (create_graph) they build a new
 * graph that can be differentiated again.
 */
#ifndef SC_AUTOGRAD_H
#define SC_AUTOGRAD_H

#include "tensor.h"

#define SC_NODE_MAX_SAVED 4

typedef struct sc_edge {
  struct sc_node *node; /* producing node of a non-leaf input, or NULL */
  sc_tensor *leaf;      /* the input itself when it is a grad-requiring leaf */
  int ndim;             /* input's shape, for formulas that need it */
  int64_t shape[SC_MAX_DIMS];
  sc_dtype dtype;
} sc_edge;

typedef struct sc_node sc_node;

/* Computes input gradients from the output gradient g.  need[i] says whether
   input i's gradient is wanted; gin[i] receives a new tensor or NULL. */
typedef int (*sc_backward_fn)(sc_node *n, sc_tensor *g, const int *need,
                              sc_tensor **gin);

typedef struct sc_opdef {
  const char *name;
  sc_backward_fn backward; /* in differentiable ops (create_graph works) */
  sc_backward_fn fused;    /* the same gradients in fused kernels, or NULL */
} sc_opdef;

/* An op's parameters, by family (the member named after the op or its
   family; dims are 0-based). */
typedef union sc_op_params {
  struct { double s; int reversed; } scalar;  /* a op s, or s op a */
  struct { double lo, hi; } clamp;
  struct { double slope; } leaky;            /* leaky_relu, leaky_grad */
  struct { int reduced[SC_MAX_DIMS]; } sum;    /* 1 for each summed dim */
  struct { int dim, keepdim; } extreme;       /* max, min; dim < 0: all */
  struct { int d1, d2; } transpose;
  struct { int perm[SC_MAX_DIMS]; } permute;
  struct { int dim; int64_t start, len; } narrow; /* narrow(_backward) */
  struct { int dim; int64_t index; } select;
  struct { int dim; } cat;
  struct { int dim; } index;                  /* indices in node->index */
  struct { int64_t kh, kw, sh, sw, ph, pw, dh, dw, H, W; } conv; /* H x W:
                                                 the image size */
  struct { int64_t scale; } nearest;          /* upsample_nearest, sum_pool */
  struct { int64_t k; double eps; int affine; } norm; /* k: groups or trailing
                                                 dims; affine (group_norm_silu):
                                                 1 w saved, 2 b saved */
  struct { int dim; } softmax;
} sc_op_params;

struct sc_node {
  int refcount;
  int op;        /* index into the op table */
  int nin;
  sc_edge *edges; /* inline_edges when nin <= 2 */
  sc_edge inline_edges[2];
  int nsaved;
  int released;  /* saved tensors freed after a backward without retain */
  sc_tensor *saved[SC_NODE_MAX_SAVED];
  uint32_t saved_version[SC_NODE_MAX_SAVED];
  int saved_is_output[SC_NODE_MAX_SAVED];
  sc_op_params p;
  int64_t *index; /* index_select/index_add indices, owned */
  int64_t nindex;
  /* out shape, for formulas that need it */
  int out_ndim;
  int64_t out_shape[SC_MAX_DIMS];
  /* scratch used by one backward pass */
  uint64_t epoch;
  int deps;
  int needed;
  sc_tensor *acc;
};

/* ---- the op table ------------------------------------------------------ */
/* SC_OP_name for every op of ops.def: elementwise ops, binary ops and their
   _scalar forms, then the others. */
typedef enum {
#define SC_UNARY(NAME, name, saves, lua, expr) SC_OP_##name,
#define SC_BINARY(NAME, name, saves, expr) SC_OP_##name,
#include "ops.def"
#define SC_BINARY(NAME, name, saves, expr) SC_OP_##name##_scalar,
#define SC_OP(name, fused) SC_OP_##name,
#include "ops.def"
  SC_NUM_OPS
} sc_op_id;

extern const sc_opdef sc_ops[SC_NUM_OPS];
int sc_op_count(void);
const char *sc_op_name(int op);
/* Backward functions: each ops file provides its own (sc_bw_name, and
   sc_bw_fused_name for a FUSED row). */
sc_backward_fn sc_backward_of(int op);
sc_backward_fn sc_fused_backward_of(int op); /* NULL: none */
/* Whether backward without create_graph takes an op's fused backward (on
   by default); off, every op runs its graph formula.  Returns previous.
   For tests that compare the two. */
int sc_set_fused_backward(int on);
/* How many times op's fused backward has run (for such tests). */
uint64_t sc_fused_backward_runs(int op);

/* ---- recording ------------------------------------------------------------ */
int sc_grad_enabled(void);
int sc_set_grad_enabled(int on); /* returns previous */

/* If recording is on and an input requires grad, creates the node for `out`
   (sets out->grad_fn and out->requires_grad) and returns it in *node;
   otherwise *node = NULL.  Returns -1 (with error set) on failure. */
int sc_record(int op, sc_tensor *out, int nin, sc_tensor *const *in,
              sc_node **node);
/* Saves a tensor for backward.  `is_output` saves out without a reference
   cycle: it is re-linked to this node when unpacked. */
int sc_save(sc_node *n, sc_tensor *t, int is_output);
/* Unpacks saved tensor k (new reference), checking it was not modified in
   place since; NULL + error otherwise. */
sc_tensor *sc_unpack(sc_node *n, int k);

void sc_node_retain(sc_node *n);
void sc_node_release(sc_node *n); /* iterative: long chains are fine */

/* ---- running backward --------------------------------------------------- */
/* Accumulates d(sum_k <outs[k], gouts[k]>)/d(leaf) into every leaf's ->grad.
   gouts[k] may be NULL for scalar outputs (taken as 1). */
int sc_backward(int nout, sc_tensor **outs, sc_tensor **gouts,
                int retain_graph, int create_graph);
/* Returns gradients w.r.t. `ins` in res[] (new refs; NULL where unused and
   allow_unused).  Leaves' ->grad are not touched. */
int sc_grad(int nout, sc_tensor **outs, sc_tensor **gouts, int nin,
            sc_tensor **ins, sc_tensor **res, int retain_graph,
            int create_graph, int allow_unused);

#endif
