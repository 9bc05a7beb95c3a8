/* spec/c: the one assertion macro of the C checks.  CHECK counts a failure
   and prints the line and a message instead of stopping, so one run lists
   every broken case; main returns check_status(). */
#ifndef SPEC_C_CHECK_H
#define SPEC_C_CHECK_H

#include <stdio.h>

static int failures;
#define CHECK(cond, ...)                                                    \
  do {                                                                      \
    if (!(cond)) {                                                          \
      failures++;                                                           \
      printf("FAIL line %d: ", __LINE__);                                   \
      printf(__VA_ARGS__);                                                  \
      printf("\n");                                                         \
    }                                                                       \
  } while (0)

/* The exit status of a check program: 0 when every CHECK held. */
static inline int check_status(void) {
  if (failures) printf("%d check(s) failed\n", failures);
  return failures != 0;
}

#endif
