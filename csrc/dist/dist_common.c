/* scorch collectives: the parts both backends share (error text, clock,
   traffic counters). */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "dist.h"

static char err_buf[512];
static sc_dist_stats stats;

void sc_dist_set_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err_buf, sizeof err_buf, fmt, ap);
  va_end(ap);
}

const char *sc_dist_error(void) { return err_buf; }

double sc_dist_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void sc_dist_count(int64_t bytes, double seconds) {
  stats.calls++;
  stats.bytes += bytes;
  stats.seconds += seconds;
}

void sc_dist_get_stats(sc_dist_stats *s) { *s = stats; }

void sc_dist_reset_stats(void) {
  stats.calls = 0;
  stats.bytes = 0;
  stats.seconds = 0;
}

size_t sc_dist_type_size(sc_dist_type t) { return t == SC_DIST_F64 ? 8 : 4; }
