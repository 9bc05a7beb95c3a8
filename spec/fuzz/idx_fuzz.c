/*
 * libFuzzer harness: the IDX decoder (MNIST files) on arbitrary bytes.
 * Seeds: spec/fuzz/corpus/idx_fuzz/ (spec/fixtures/make_fixtures.py).
 */
#include <stddef.h>
#include <stdint.h>

#include "idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sc_tensor *t = sc_idx_decode(data, size);
  if (!t) {
    if (!sc_error()[0]) __builtin_trap();
    return 0;
  }
  volatile size_t sink = 0;
  size_t nbytes = (size_t)t->numel * sc_dtype_size(t->dtype);
  const unsigned char *p = sc_data(t);
  for (size_t k = 0; k < nbytes; k++) sink += p[k];
  (void)sink;
  sc_release(t);
  return 0;
}
