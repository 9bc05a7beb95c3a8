/*
 * scorch core: the IDX format of MNIST and Fashion-MNIST
 * (http://yann.lecun.com/exdb/mnist/): two zero bytes, a type code, the
 * number of dimensions, then each dimension as a big-endian 32-bit integer,
 * then the data, big-endian, row-major.  Files may be gzip-compressed.
 *
 * Plain C11, no Lua headers.  Failures return NULL with a message in
 * sc_error() ("io.read_idx: ...").
 */
#ifndef SC_IDX_H
#define SC_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "tensor.h"

/* Decompressed files larger than this are refused. */
#define SC_IDX_MAX_BYTES ((size_t)1 << 32)

/* Decodes a whole (decompressed) IDX image.  Type codes 0x08 (ubyte),
   0x09 (sbyte), 0x0B (short), 0x0C (int) and 0x0D (float) give a float32
   tensor, 0x0E (double) a float64 one, holding the values as stored (0..255
   for MNIST pixels).  The data must be exactly as long as the dims say. */
sc_tensor *sc_idx_decode(const unsigned char *buf, size_t len);
/* Reads a plain or gzip-compressed IDX file (zlib tells them apart). */
sc_tensor *sc_idx_read(const char *path);
/* The same, keeping only the first `first` items (along the first
   dimension) when the file has more: only those bytes are read and
   decoded (first < 0: all).  The data past them is not read, so not
   checked either. */
sc_tensor *sc_idx_read_first(const char *path, int64_t first);

#endif
