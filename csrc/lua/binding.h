/* scorch binding: shared helpers for the files that register Lua functions. */
#ifndef SC_BINDING_H
#define SC_BINDING_H

#include <lauxlib.h>
#include <lua.h>

#include "../core/tensor.h"

#define SC_TENSOR_MT "scorch.Tensor"
#define SC_GENERATOR_MT "scorch.Generator"

/* The tensor at idx, or a "bad argument" error naming the function. */
sc_tensor *sc_lua_check(lua_State *L, int idx);
/* The tensor at idx, or NULL if the value is not a tensor. */
sc_tensor *sc_lua_test(lua_State *L, int idx);
/* Pushes an empty tensor userdata (metatable set, sealed, holding NULL),
   to be filled by the caller: an error after this leaks nothing (the
   allocator releases the tensor when Lua frees the userdata). */
sc_tensor **sc_lua_newslot(lua_State *L);
/* Fills the slot on top of the stack with t; if t is NULL raises the core's
   error message as "scorch.<message>". */
int sc_lua_fill(lua_State *L, sc_tensor **slot, sc_tensor *t);
/* Raises the core's last error as a Lua error. */
int sc_lua_core_error(lua_State *L);
/* Converts a Lua dim (1-based, negative from the end) for a tensor with
   ndim dims (extra = 1 allows one past the end, as unsqueeze needs). */
int sc_lua_dim(lua_State *L, int idx, int ndim, int extra, const char *fn);
/* Reads a shape from varargs or a table starting at idx; returns ndim and
   sets *next to the first argument after the shape. */
int sc_lua_shape(lua_State *L, int idx, int64_t *shape, int *next,
                 const char *fn);
/* Reads dtype from an options table at idx (or default). */
sc_dtype sc_lua_opt_dtype(lua_State *L, int idx, sc_dtype def);

/* Registers the I/O functions (save, load, PNG, IDX) into the table on top. */
void sc_lua_open_io(lua_State *L);
/* Registers the fused optimiser steps (Adam, SGD) into the table on top. */
void sc_lua_open_optim(lua_State *L);
/* Registers image ops (im2col, col2im, resampling) into the table on top. */
void sc_lua_open_conv(lua_State *L);
/* Registers the normalisation kernels (group norm, ...) into the table on top. */
void sc_lua_open_norm(lua_State *L);
/* Registers the linalg_* internals behind sc.metrics into the table on top. */
void sc_lua_open_linalg(lua_State *L);
/* Registers sc.core.font (TrueType text for sc.viz) into the table on top. */
void sc_lua_open_font(lua_State *L);

#endif
