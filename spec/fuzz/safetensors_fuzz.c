/*
 * libFuzzer harness: the safetensors reader on arbitrary bytes.
 *
 *   make fuzz        (links every core object; see the Makefile)
 *
 * Seeds are in spec/fuzz/corpus/safetensors_fuzz/ (written by
 * spec/fixtures/make_fixtures.py).  Any input must either load or fail with
 * a message; ASan/UBSan catch everything else.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sc_safetensors st;
  if (sc_safetensors_parse(data, size, &st)) {
    /* a failure leaves nothing behind and always says why */
    if (st.count || st.tensors || !sc_error()[0]) __builtin_trap();
    return 0;
  }
  /* read every name, string and element, so a bad length shows up */
  volatile size_t sink = 0;
  for (size_t i = 0; i < st.count; i++) {
    sc_tensor *t = st.tensors[i];
    sink += strlen(st.names[i]);
    size_t nbytes = (size_t)t->numel * sc_dtype_size(t->dtype);
    const unsigned char *p = sc_data(t);
    for (size_t k = 0; k < nbytes; k++) sink += p[k];
  }
  for (size_t i = 0; i < st.meta_count; i++)
    sink += strlen(st.meta_keys[i]) + strlen(st.meta_values[i]);
  sc_safetensors_free(&st);
  (void)sink;
  return 0;
}
