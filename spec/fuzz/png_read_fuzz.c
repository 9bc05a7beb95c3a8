/*
 * libFuzzer harness: the PNG reader (our chunk/CRC walk, then stb_image)
 * on arbitrary bytes; every value it returns must lie in [0, 1].
 * Seeds: spec/fuzz/corpus/png_read_fuzz/ (spec/fixtures/make_fixtures.py).
 * Most random inputs die at the CRC check; the seeds carry valid CRCs, and
 * the fuzzer's CMP tracing learns them.
 */
#include <stddef.h>
#include <stdint.h>

#include "png.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sc_tensor *t = sc_png_decode(data, size);
  if (!t) {
    if (!sc_error()[0]) __builtin_trap();
    return 0;
  }
  const float *p = sc_data(t);
  for (int64_t k = 0; k < t->numel; k++)
    if (!(p[k] >= 0 && p[k] <= 1)) __builtin_trap();
  sc_release(t);
  return 0;
}
