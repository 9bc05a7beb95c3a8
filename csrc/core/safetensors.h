/*
 * scorch core: the safetensors format (https://github.com/huggingface/safetensors).
 *
 * A file is an 8-byte little-endian header length N, N bytes of JSON
 *   {"__metadata__": {"k": "v"},
 *    "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, ...}
 * padded with spaces, then the raw little-endian data; offsets count from
 * the start of the data section, which the tensors must cover exactly.
 *
 * Plain C11, no Lua headers.  Failures return a negative status with a
 * message in sc_error() ("load: ...", "save: ...").
 */
#ifndef SC_SAFETENSORS_H
#define SC_SAFETENSORS_H

#include <stddef.h>

#include "tensor.h"

/* Headers larger than this are refused, as by the reference library. */
#define SC_SAFETENSORS_MAX_HEADER 100000000u

/* What a load hands back.  F32 loads as float32 and F64 as float64, as
   they are.  scorch has no other tensor dtypes, so the others load only
   with SC_SAFETENSORS_CONVERT, and then exactly or not at all:
     BOOL, U8, I8, U16, I16, F16, BF16 -> float32 (every value exact);
     I32, U32, I64, U64 -> float32 when every |v| <= 2^24, else float64
       when every |v| <= 2^53, else the load fails (SC_SAFETENSORS_EIO).
   Without the flag the first such tensor (in offset order) fails the load
   with SC_SAFETENSORS_EDTYPE, naming it, its dtype and the option.
   Tensors come in file (offset) order. */
typedef struct sc_safetensors {
  size_t count;
  char **names;
  sc_tensor **tensors; /* owned; a caller may take one and set it NULL */
  const char **dtypes; /* each tensor's dtype in the file ("F16"), static */
  size_t meta_count;
  char **meta_keys;
  char **meta_values;
} sc_safetensors;

/* Flags of a load. */
#define SC_SAFETENSORS_CONVERT 1 /* convert dtypes scorch has not, as above */

/* Parses a whole file image held in memory (the fuzzing entry point),
   converting as with SC_SAFETENSORS_CONVERT.  On failure *out is left
   empty (nothing to free). */
int sc_safetensors_parse(const unsigned char *buf, size_t len,
                         sc_safetensors *out);
/* Reads a file; tensor data is read straight into the tensors.  Returns 0,
   SC_SAFETENSORS_EDTYPE (a dtype that needs SC_SAFETENSORS_CONVERT) or
   another negative status. */
int sc_safetensors_load(const char *path, int flags, sc_safetensors *out);
/* Releases everything *st holds and empties it; safe to call twice. */
void sc_safetensors_free(sc_safetensors *st);

/* Status codes of sc_safetensors_save: bad arguments (the caller's bug)
   are told apart from a failed write (the environment's). */
#define SC_SAFETENSORS_EINVAL (-1)
#define SC_SAFETENSORS_EIO (-2)
#define SC_SAFETENSORS_EDTYPE (-3)

/* Writes n tensors (any strides; float32 → F32, float64 → F64) and nmeta
   metadata pairs (nmeta may be 0: no "__metadata__" entry is written).
   Names and metadata must be valid UTF-8; names must be distinct and not
   "__metadata__".  Entries are ordered as the reference writer orders them
   (dtype alignment descending, then name), the header is padded with spaces
   to a multiple of 8.  The write is atomic: the data goes to
   "<path>.tmp.<pid>", is flushed and fsynced, then renamed over path and
   the directory fsynced; on failure the temporary is removed and any old
   file at path is left untouched. */
int sc_safetensors_save(const char *path, size_t n, const char *const *names,
                        sc_tensor *const *tensors, size_t nmeta,
                        const char *const *meta_keys,
                        const char *const *meta_values);

/* ---- atomic file replacement (shared with png.c) ---------------------------- */
typedef struct sc_atomic_file {
  void *fp;       /* FILE *, open for writing on the temporary */
  char *tmp_path; /* "<path>.tmp.<pid>" */
  char *path;     /* the target */
} sc_atomic_file;

/* Opens the temporary beside path.  `fn` prefixes error messages. */
int sc_atomic_open(sc_atomic_file *af, const char *path, const char *fn);
/* Flushes, fsyncs and renames the temporary over the target, then fsyncs
   the directory (best effort).  Always closes; removes the temporary on
   failure. */
int sc_atomic_commit(sc_atomic_file *af, const char *fn);
/* Closes and removes the temporary. */
void sc_atomic_abort(sc_atomic_file *af);

#endif
