/*
 * scorch collectives: world size and rank, barrier, broadcast, all-reduce
 * and all-gather of flat buffers.  Plain C on raw memory, no Lua and no
 * tensor header; two backends implement this interface:
 *
 *   dist_self.c  a world of one (always built, needs nothing at run time)
 *   dist_mpi.c   MPI, only the standard's calls (built with mpicc)
 *
 * Every function that can fail returns a negative status and leaves a
 * message in sc_dist_error().  After a failure or a timeout the world is
 * "broken": every later collective fails at once, and sc_dist_finalize()
 * aborts the whole job instead of waiting for ranks that may be gone.
 */
#ifndef SC_DIST_H
#define SC_DIST_H

#include <stdint.h>

typedef enum { SC_DIST_F32 = 0, SC_DIST_F64 = 1 } sc_dist_type;
typedef enum { SC_DIST_SUM = 0, SC_DIST_MAX = 1, SC_DIST_MIN = 2 } sc_dist_op;

/* Time and traffic since the last reset, for benchmarks: `bytes` counts
   what this rank sent. */
typedef struct {
  int64_t calls;
  int64_t bytes;
  double seconds;
} sc_dist_stats;

/* The backend's name: "self" or "mpi". */
const char *sc_dist_backend(void);
/* Starts the world (idempotent).  timeout_s > 0 bounds every collective:
   a rank that waits longer fails with a message naming the operation. */
int sc_dist_init(double timeout_s);
int sc_dist_rank(void);
int sc_dist_size(void);
int sc_dist_barrier(void);
/* In place: n elements of root's buf overwrite everyone's. */
int sc_dist_broadcast(void *buf, int64_t n, sc_dist_type t, int root);
/* In place: element-wise op over ranks.  SC_DIST_SUM runs a ring
   (reduce-scatter then all-gather), so every element is summed in one
   fixed order and every rank gets the same bits, run after run. */
int sc_dist_all_reduce(void *buf, int64_t n, sc_dist_type t, sc_dist_op op);
/* out (size * n elements) receives every rank's n elements, rank order. */
int sc_dist_all_gather(const void *in, void *out, int64_t n, sc_dist_type t);
/* Ends the world: a clean finalize, or an abort of every rank when
   `abort_job` is set or the world is broken.  Idempotent. */
int sc_dist_finalize(int abort_job);
/* Whether a failure or timeout has broken the world. */
int sc_dist_broken(void);
const char *sc_dist_error(void);
void sc_dist_get_stats(sc_dist_stats *s);
void sc_dist_reset_stats(void);

/* Shared by the backends (dist_common.c). */
void sc_dist_set_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
double sc_dist_now(void);
void sc_dist_count(int64_t bytes, double seconds);
size_t sc_dist_type_size(sc_dist_type t);

#endif
