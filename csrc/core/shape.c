/*
 * scorch core: views, copies and the linear shape ops.  Linear ops
 * transpose into each other in backward: expand <-> sum_to,
 * narrow <-> narrow_backward, index_select <-> index_add.
 */
#include "autograd.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

sc_tensor *sc_to_dtype_kernel(sc_tensor *t, sc_dtype dt); /* elementwise.c */

/* ---- raw (unrecorded) views ---------------------------------------------------- */

sc_tensor *sc_raw_view(sc_tensor *t, int ndim, const int64_t *shape,
                       const int64_t *stride, int64_t offset) {
  sc_tensor *v = sc_tensor_alloc();
  if (!v) return NULL;
  v->dtype = t->dtype;
  v->ndim = ndim;
  v->storage = t->storage;
  t->storage->refcount++;
  v->offset = offset;
  v->numel = 1;
  for (int d = 0; d < ndim; d++) {
    v->shape[d] = shape[d];
    v->stride[d] = stride[d];
    v->numel *= shape[d];
  }
  return v;
}

sc_tensor *sc_raw_expand(sc_tensor *t, int ndim, const int64_t *shape) {
  int64_t st[SC_MAX_DIMS];
  if (ndim < t->ndim) goto bad;
  for (int d = 0; d < ndim; d++) {
    int k = d - (ndim - t->ndim);
    if (k < 0) {
      st[d] = 0;
    } else if (t->shape[k] == shape[d]) {
      st[d] = t->stride[k];
    } else if (t->shape[k] == 1) {
      st[d] = 0;
    } else {
      goto bad;
    }
  }
  return sc_raw_view(t, ndim, shape, st, t->offset);
bad: {
  char b1[96], b2[96];
  sc_set_error("expand: shape %s cannot be expanded to %s",
               sc_shape_str(t, b1, sizeof b1), sc_dims_str(ndim, shape, b2, sizeof b2));
  return NULL;
}
}

sc_tensor *sc_detach(sc_tensor *t) {
  return sc_raw_view(t, t->ndim, t->shape, t->stride, t->offset);
}

/* Records a single-input op on y; releases y on failure. */
static sc_tensor *record1(int op, sc_tensor *y, sc_tensor *x, sc_node **np) {
  sc_node *n;
  if (!y) return NULL;
  if (sc_record(op, y, 1, &x, &n)) {
    sc_release(y);
    return NULL;
  }
  if (np) *np = n;
  return y;
}

/* ---- recorded views ------------------------------------------------------------ */

/* Resolves one -1 and checks the element count. */
static int infer_shape(const char *fn, const sc_tensor *t, int ndim,
                       const int64_t *in, int64_t *out) {
  if (sc_check_shape(fn, 0, NULL) || ndim > SC_MAX_DIMS || ndim < 0) {
    sc_set_error("%s: %d dimensions (at most %d supported)", fn, ndim, SC_MAX_DIMS);
    return -1;
  }
  int infer = -1;
  int64_t known = 1;
  for (int d = 0; d < ndim; d++) {
    if (in[d] == -1 && infer < 0) {
      infer = d;
      continue;
    }
    if (in[d] < 0) {
      sc_set_error("%s: invalid size %lld in dimension %d", fn, (long long)in[d], d + 1);
      return -1;
    }
    if (in[d] && known > INT64_MAX / in[d]) goto bad; /* cannot match numel */
    known *= in[d];
    out[d] = in[d];
  }
  if (infer >= 0) {
    if (known == 0 || t->numel % known) goto bad;
    out[infer] = t->numel / known;
  } else if (known != t->numel) {
    goto bad;
  }
  return 0;
bad: {
  char b1[96], b2[96];
  sc_set_error("%s: shape %s is invalid for a tensor of shape %s (%lld elements)",
               fn, sc_dims_str(ndim, in, b1, sizeof b1), sc_shape_str(t, b2, sizeof b2),
               (long long)t->numel);
  return -1;
}
}

sc_tensor *sc_view(sc_tensor *t, int ndim, const int64_t *shape) {
  int64_t s[SC_MAX_DIMS], st[SC_MAX_DIMS];
  if (infer_shape("view", t, ndim, shape, s)) return NULL;
  if (!sc_is_contiguous(t)) {
    char b[96];
    sc_set_error("view: tensor of shape %s is not contiguous; use reshape "
                 "or contiguous() first", sc_shape_str(t, b, sizeof b));
    return NULL;
  }
  int64_t acc = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    st[d] = acc;
    acc *= s[d];
  }
  return record1(SC_OP_view, sc_raw_view(t, ndim, s, st, t->offset), t, NULL);
}

sc_tensor *sc_reshape(sc_tensor *t, int ndim, const int64_t *shape) {
  int64_t s[SC_MAX_DIMS];
  if (infer_shape("reshape", t, ndim, shape, s)) return NULL;
  sc_tensor *c = sc_contiguous(t);
  if (!c) return NULL;
  sc_tensor *v = sc_view(c, ndim, s);
  sc_release(c);
  return v;
}

sc_tensor *sc_transpose(sc_tensor *t, int d1, int d2) {
  if (sc_check_dim("transpose", t, d1) || sc_check_dim("transpose", t, d2))
    return NULL;
  int64_t s[SC_MAX_DIMS], st[SC_MAX_DIMS];
  memcpy(s, t->shape, sizeof s);
  memcpy(st, t->stride, sizeof st);
  s[d1] = t->shape[d2]; s[d2] = t->shape[d1];
  st[d1] = t->stride[d2]; st[d2] = t->stride[d1];
  sc_node *n = NULL;
  sc_tensor *y = record1(SC_OP_transpose, sc_raw_view(t, t->ndim, s, st, t->offset), t, &n);
  if (y && n) {
    n->p.transpose.d1 = d1;
    n->p.transpose.d2 = d2;
  }
  return y;
}

sc_tensor *sc_permute(sc_tensor *t, const int *perm) {
  int seen[SC_MAX_DIMS] = {0};
  int64_t s[SC_MAX_DIMS], st[SC_MAX_DIMS];
  for (int d = 0; d < t->ndim; d++) {
    int p = perm[d];
    if (p < 0 || p >= t->ndim || seen[p]) {
      char b[96];
      sc_set_error("permute: not a permutation of the %d dimensions of a "
                   "tensor of shape %s", t->ndim, sc_shape_str(t, b, sizeof b));
      return NULL;
    }
    seen[p] = 1;
    s[d] = t->shape[p];
    st[d] = t->stride[p];
  }
  sc_node *n = NULL;
  sc_tensor *y = record1(SC_OP_permute, sc_raw_view(t, t->ndim, s, st, t->offset), t, &n);
  if (y && n)
    for (int d = 0; d < t->ndim; d++) n->p.permute.perm[d] = perm[d];
  return y;
}

sc_tensor *sc_expand(sc_tensor *t, int ndim, const int64_t *shape) {
  int64_t s[SC_MAX_DIMS];
  if (ndim > SC_MAX_DIMS || ndim < t->ndim) {
    char b[96];
    sc_set_error("expand: cannot expand a tensor of shape %s to %d dimensions",
                 sc_shape_str(t, b, sizeof b), ndim);
    return NULL;
  }
  for (int d = 0; d < ndim; d++) { /* -1 keeps the size */
    int k = d - (ndim - t->ndim);
    s[d] = shape[d] == -1 && k >= 0 ? t->shape[k] : shape[d];
  }
  if (sc_check_shape("expand", ndim, s)) return NULL;
  return record1(SC_OP_expand, sc_raw_expand(t, ndim, s), t, NULL);
}

sc_tensor *sc_narrow(sc_tensor *t, int d, int64_t start, int64_t len) {
  if (sc_check_dim("narrow", t, d)) return NULL;
  if (start < 0 || len < 0 || start + len > t->shape[d]) {
    char b[96];
    sc_set_error("narrow: range [%lld, %lld] is outside dimension %d of a "
                 "tensor of shape %s", (long long)start + 1,
                 (long long)(start + len), d + 1, sc_shape_str(t, b, sizeof b));
    return NULL;
  }
  int64_t s[SC_MAX_DIMS];
  memcpy(s, t->shape, sizeof s);
  s[d] = len;
  sc_node *n = NULL;
  sc_tensor *y = record1(SC_OP_narrow,
                         sc_raw_view(t, t->ndim, s, t->stride,
                                     t->offset + start * t->stride[d]), t, &n);
  if (y && n) {
    n->p.narrow.dim = d;
    n->p.narrow.start = start;
    n->p.narrow.len = len;
  }
  return y;
}

sc_tensor *sc_select(sc_tensor *t, int d, int64_t i) {
  if (sc_check_dim("select", t, d)) return NULL;
  if (i < 0 || i >= t->shape[d]) {
    char b[96];
    sc_set_error("select: index %lld is out of range for dimension %d of a "
                 "tensor of shape %s", (long long)i + 1, d + 1,
                 sc_shape_str(t, b, sizeof b));
    return NULL;
  }
  int64_t s[SC_MAX_DIMS], st[SC_MAX_DIMS];
  int k = 0;
  for (int e = 0; e < t->ndim; e++)
    if (e != d) {
      s[k] = t->shape[e];
      st[k++] = t->stride[e];
    }
  sc_node *n = NULL;
  sc_tensor *y = record1(SC_OP_select,
                         sc_raw_view(t, k, s, st, t->offset + i * t->stride[d]),
                         t, &n);
  if (y && n) {
    n->p.select.dim = d;
    n->p.select.index = i;
  }
  return y;
}

/* squeeze and unsqueeze are views recorded as `view` (backward: reshape). */
sc_tensor *sc_unsqueeze(sc_tensor *t, int d) {
  if (d < 0 || d > t->ndim || t->ndim >= SC_MAX_DIMS) {
    char b[96];
    sc_set_error("unsqueeze: dimension %d out of range for a tensor of shape %s",
                 d + 1, sc_shape_str(t, b, sizeof b));
    return NULL;
  }
  int64_t s[SC_MAX_DIMS], st[SC_MAX_DIMS];
  for (int e = 0, k = 0; e <= t->ndim; e++) {
    if (e == d) {
      s[e] = 1;
      st[e] = k < t->ndim ? t->stride[k] * t->shape[k] : 1;
      continue;
    }
    s[e] = t->shape[k];
    st[e] = t->stride[k++];
  }
  return record1(SC_OP_view, sc_raw_view(t, t->ndim + 1, s, st, t->offset), t, NULL);
}

sc_tensor *sc_squeeze(sc_tensor *t, int d) {
  if (d >= t->ndim) {
    char b[96];
    sc_set_error("squeeze: dimension %d out of range for a tensor of shape %s",
                 d + 1, sc_shape_str(t, b, sizeof b));
    return NULL;
  }
  int64_t s[SC_MAX_DIMS], st[SC_MAX_DIMS];
  int k = 0;
  for (int e = 0; e < t->ndim; e++) {
    if (t->shape[e] == 1 && (d < 0 || e == d)) continue;
    s[k] = t->shape[e];
    st[k++] = t->stride[e];
  }
  return record1(SC_OP_view, sc_raw_view(t, k, s, st, t->offset), t, NULL);
}

sc_tensor *sc_alias(sc_tensor *t) {
  return record1(SC_OP_alias, sc_detach(t), t, NULL);
}

/* ---- copies ------------------------------------------------------------------- */

sc_tensor *sc_clone(sc_tensor *t) {
  return record1(SC_OP_contiguous, sc_to_dtype_kernel(t, t->dtype), t, NULL);
}

sc_tensor *sc_contiguous(sc_tensor *t) {
  if (sc_is_contiguous(t)) return sc_retain(t);
  return sc_clone(t);
}

sc_tensor *sc_to_dtype(sc_tensor *t, sc_dtype dt) {
  if (t->dtype == dt) return sc_retain(t);
  return record1(SC_OP_to_dtype, sc_to_dtype_kernel(t, dt), t, NULL);
}

sc_tensor *sc_cat(int n, sc_tensor **ts, int d) {
  if (n < 1) {
    sc_set_error("cat: expected a non-empty list of tensors");
    return NULL;
  }
  const sc_tensor *f = ts[0];
  if (sc_check_dim("cat", f, d)) return NULL;
  int64_t s[SC_MAX_DIMS];
  memcpy(s, f->shape, sizeof s);
  s[d] = 0;
  for (int k = 0; k < n; k++) {
    const sc_tensor *t = ts[k];
    int ok = t->ndim == f->ndim && t->dtype == f->dtype;
    for (int e = 0; ok && e < f->ndim; e++)
      if (e != d && t->shape[e] != f->shape[e]) ok = 0;
    if (!ok) {
      char b1[96], b2[96];
      sc_set_error("cat: tensor %d has shape %s (%s) but tensor 1 has shape "
                   "%s (%s); all but dimension %d must match", k + 1,
                   sc_shape_str(t, b1, sizeof b1), sc_dtype_name(t->dtype),
                   sc_shape_str(f, b2, sizeof b2), sc_dtype_name(f->dtype), d + 1);
      return NULL;
    }
    s[d] += t->shape[d];
  }
  sc_tensor *y = sc_empty(f->ndim, s, f->dtype);
  if (!y) return NULL;
  int64_t off = 0;
  for (int k = 0; k < n; k++) {
    int64_t ss[SC_MAX_DIMS];
    memcpy(ss, y->shape, sizeof ss);
    ss[d] = ts[k]->shape[d];
    sc_tensor *dst = sc_raw_view(y, y->ndim, ss, y->stride, off * y->stride[d]);
    if (!dst || sc_copy_(dst, ts[k])) {
      sc_release(dst);
      sc_release(y);
      return NULL;
    }
    sc_release(dst);
    off += ts[k]->shape[d];
  }
  y->storage->version = 0;
  sc_node *nd;
  if (sc_record(SC_OP_cat, y, n, ts, &nd)) {
    sc_release(y);
    return NULL;
  }
  if (nd) nd->p.cat.dim = d;
  return y;
}

sc_tensor *sc_stack(int n, sc_tensor **ts, int d) {
  if (n < 1) {
    sc_set_error("stack: expected a non-empty list of tensors");
    return NULL;
  }
  for (int k = 0; k < n; k++)
    if (!sc_same_shape(ts[k], ts[0]) || ts[k]->dtype != ts[0]->dtype) {
      char b1[96], b2[96];
      sc_set_error("stack: tensor %d has shape %s (%s) but tensor 1 has shape "
                   "%s (%s)", k + 1, sc_shape_str(ts[k], b1, sizeof b1),
                   sc_dtype_name(ts[k]->dtype), sc_shape_str(ts[0], b2, sizeof b2),
                   sc_dtype_name(ts[0]->dtype));
      return NULL;
    }
  if (d < 0 || d > ts[0]->ndim) {
    sc_set_error("stack: dimension %d out of range", d + 1);
    return NULL;
  }
  sc_tensor **u = calloc((size_t)n, sizeof *u);
  if (!u) {
    sc_set_error("out of memory");
    return NULL;
  }
  sc_tensor *y = NULL;
  int k = 0;
  for (; k < n; k++)
    if (!(u[k] = sc_unsqueeze(ts[k], d))) break;
  if (k == n) y = sc_cat(n, u, d);
  for (int j = 0; j < k; j++) sc_release(u[j]);
  free(u);
  return y;
}

static int check_index(const char *fn, const sc_tensor *t, int d, int64_t n,
                       const int64_t *idx) {
  for (int64_t k = 0; k < n; k++)
    if (idx[k] < 0 || idx[k] >= t->shape[d]) {
      char b[96];
      sc_set_error("%s: index %lld is out of range for dimension %d of a "
                   "tensor of shape %s", fn, (long long)idx[k] + 1, d + 1,
                   sc_shape_str(t, b, sizeof b));
      return -1;
    }
  return 0;
}

/* rows idx of src along d -> dst (accumulate: dst[idx[k]] += src[k]) */
static int gather_rows(sc_tensor *dst, sc_tensor *src, int d, int64_t n,
                       const int64_t *idx, int scatter) {
  for (int64_t k = 0; k < n; k++) {
    int64_t ss[SC_MAX_DIMS];
    memcpy(ss, src->shape, sizeof ss);
    ss[d] = 1;
    sc_tensor *sv, *dv;
    if (!scatter) {
      sv = sc_raw_view(src, src->ndim, ss, src->stride, src->offset + idx[k] * src->stride[d]);
      dv = sc_raw_view(dst, dst->ndim, ss, dst->stride, dst->offset + k * dst->stride[d]);
    } else {
      sv = sc_raw_view(src, src->ndim, ss, src->stride, src->offset + k * src->stride[d]);
      dv = sc_raw_view(dst, dst->ndim, ss, dst->stride, dst->offset + idx[k] * dst->stride[d]);
    }
    int rc = sv && dv ? (scatter ? sc_add_scaled_(dv, sv, 1.0) : sc_copy_(dv, sv)) : -1;
    sc_release(sv);
    sc_release(dv);
    if (rc) return -1;
  }
  return 0;
}

static sc_tensor *record_index(int op, sc_tensor *y, sc_tensor *t, int d,
                               int64_t n, const int64_t *idx) {
  sc_node *nd = NULL;
  if (!(y = record1(op, y, t, &nd)) || !nd) return y;
  nd->p.index.dim = d;
  nd->nindex = n;
  nd->index = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
  if (!nd->index) {
    sc_release(y);
    sc_set_error("out of memory");
    return NULL;
  }
  memcpy(nd->index, idx, sizeof(int64_t) * (size_t)n);
  return y;
}

sc_tensor *sc_index_select(sc_tensor *t, int d, int64_t n, const int64_t *idx) {
  if (sc_check_dim("index_select", t, d) || check_index("index_select", t, d, n, idx))
    return NULL;
  int64_t s[SC_MAX_DIMS];
  memcpy(s, t->shape, sizeof s);
  s[d] = n;
  sc_tensor *y = sc_empty(t->ndim, s, t->dtype);
  if (!y || gather_rows(y, t, d, n, idx, 0)) {
    sc_release(y);
    return NULL;
  }
  return record_index(SC_OP_index_select, y, t, d, n, idx);
}

sc_tensor *sc_index_add(sc_tensor *t, int ndim, const int64_t *shape, int d,
                        int64_t n, const int64_t *idx) {
  sc_tensor *y = sc_zeros(ndim, shape, t->dtype);
  if (!y) return NULL;
  if (check_index("index_add", y, d, n, idx) || gather_rows(y, t, d, n, idx, 1)) {
    sc_release(y);
    return NULL;
  }
  return record_index(SC_OP_index_add, y, t, d, n, idx);
}

sc_tensor *sc_narrow_backward(sc_tensor *t, int ndim, const int64_t *shape,
                              int d, int64_t start) {
  sc_tensor *y = sc_zeros(ndim, shape, t->dtype);
  if (!y) return NULL;
  sc_tensor *dst = sc_raw_view(y, ndim, t->shape, y->stride, start * y->stride[d]);
  if (!dst || sc_copy_(dst, t)) {
    sc_release(dst);
    sc_release(y);
    return NULL;
  }
  sc_release(dst);
  sc_node *n = NULL;
  if (!(y = record1(SC_OP_narrow_backward, y, t, &n))) return NULL;
  if (n) {
    n->p.narrow.dim = d;
    n->p.narrow.start = start;
    n->p.narrow.len = t->shape[d];
  }
  return y;
}

/* ---- backward formulas -------------------------------------------------------- */

static sc_edge *in0(sc_node *n) { return &n->edges[0]; }

int sc_bw_view(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  gin[0] = sc_reshape(g, in0(n)->ndim, in0(n)->shape);
  return gin[0] ? 0 : -1;
}

int sc_bw_transpose(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  gin[0] = sc_transpose(g, n->p.transpose.d1, n->p.transpose.d2);
  return gin[0] ? 0 : -1;
}

int sc_bw_permute(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  int inv[SC_MAX_DIMS];
  for (int d = 0; d < g->ndim; d++) inv[n->p.permute.perm[d]] = d;
  gin[0] = sc_permute(g, inv);
  return gin[0] ? 0 : -1;
}

int sc_bw_expand(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  gin[0] = sc_sum_to(g, in0(n)->ndim, in0(n)->shape);
  return gin[0] ? 0 : -1;
}

int sc_bw_narrow(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  gin[0] = sc_narrow_backward(g, in0(n)->ndim, in0(n)->shape, n->p.narrow.dim, n->p.narrow.start);
  return gin[0] ? 0 : -1;
}

int sc_bw_select(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  sc_tensor *u = sc_unsqueeze(g, n->p.select.dim);
  if (!u) return -1;
  gin[0] = sc_narrow_backward(u, in0(n)->ndim, in0(n)->shape, n->p.select.dim, n->p.select.index);
  sc_release(u);
  return gin[0] ? 0 : -1;
}

int sc_bw_alias(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)n; (void)need;
  gin[0] = sc_retain(g);
  return 0;
}

int sc_bw_contiguous(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)n; (void)need;
  gin[0] = sc_retain(g);
  return 0;
}

int sc_bw_to_dtype(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  gin[0] = sc_to_dtype(g, in0(n)->dtype);
  return gin[0] ? 0 : -1;
}

int sc_bw_cat(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  int d = n->p.cat.dim;
  int64_t off = 0;
  for (int k = 0; k < n->nin; k++) {
    int64_t len = n->edges[k].shape[d];
    if (need[k] && !(gin[k] = sc_narrow(g, d, off, len))) return -1;
    off += len;
  }
  return 0;
}

int sc_bw_index_select(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  gin[0] = sc_index_add(g, in0(n)->ndim, in0(n)->shape, n->p.index.dim, n->nindex, n->index);
  return gin[0] ? 0 : -1;
}

int sc_bw_index_add(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  gin[0] = sc_index_select(g, n->p.index.dim, n->nindex, n->index);
  return gin[0] ? 0 : -1;
}

int sc_bw_narrow_backward(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  sc_tensor *v = sc_narrow(g, n->p.narrow.dim, n->p.narrow.start, n->p.narrow.len);
  gin[0] = v ? sc_contiguous(v) : NULL;
  sc_release(v);
  return gin[0] ? 0 : -1;
}

int sc_bw_sum_to(sc_node *n, sc_tensor *g, const int *need, sc_tensor **gin) {
  (void)need;
  gin[0] = sc_expand(g, in0(n)->ndim, in0(n)->shape);
  return gin[0] ? 0 : -1;
}
