/* scorch core: the thread pool every parallel kernel runs on (pool.c). */
#ifndef SC_POOL_H
#define SC_POOL_H

#include <stddef.h>
#include <stdint.h>

/* Runs fn(ctx, tid, nth) once on each of nth threads, tid 0 being the
   calling thread, and returns when all have finished.  With nth <= 1, or
   when called from inside a parallel call, fn runs once on the caller
   with nth = 1. */
typedef void (*sc_team_fn)(void *ctx, int tid, int nth);
void sc_parallel(int nth, sc_team_fn fn, void *ctx);

/* Splits [0, n) into nth contiguous ranges as OpenMP's schedule(static)
   does (the first n % nth threads get one more) and runs fn(ctx, lo, hi,
   tid) on each non-empty one. */
typedef void (*sc_range_fn)(void *ctx, int64_t lo, int64_t hi, int tid);
void sc_parallel_for(int nth, int64_t n, sc_range_fn fn, void *ctx);

/* Hands out the indices 0..n-1 one at a time to whichever of nth threads
   asks next (schedule(dynamic, 1)): fn(ctx, i, i + 1, tid). */
void sc_parallel_dynamic(int nth, int64_t n, sc_range_fn fn, void *ctx);

/* Scratch for each of nt threads in one allocation of nt strides: thread
   t's `bytes` start at t * sc_thread_stride(bytes, nt).  On several
   threads each buffer is followed by SC_THREAD_GAP bytes that no thread
   touches (on one thread the stride is `bytes`).  Measured on a Zen 5
   VM: a 2-thread MLP chain whose two threads' buffers were 0 or 4 KB
   apart had its second thread 20% slower than the first, and at 32 KB
   apart or more the two ran alike (the 2-thread chain 2.9 -> 2.55 ms).  The cause is state the
   two cores share for neighbouring addresses, most likely prefetchers or
   the page-table entries (one cache line of them covers 32 KB); this VM
   has no counters to tell which. */
#define SC_THREAD_GAP ((size_t)65536)
static inline size_t sc_thread_stride(size_t bytes, int nt) {
  return nt > 1 && bytes ? ((bytes + 4095) & ~(size_t)4095) + SC_THREAD_GAP : bytes;
}

/* Threads for n units of work: the pool's, at most n, at least 1, and one
   when the call's whole work (in the caller's measure) is below grain, so
   a small call does not wake a thread. */
int sc_get_num_threads(void);
static inline int sc_threads_for(int64_t n, int64_t work, int64_t grain) {
  int nt = work < grain ? 1 : sc_get_num_threads();
  if (nt > n) nt = (int)n;
  return nt < 1 ? 1 : nt;
}

/* Whether the calling thread is inside a parallel call. */
int sc_in_parallel(void);

/* The static range of thread tid of nth over [0, n). */
static inline void sc_static_range(int64_t n, int tid, int nth, int64_t *lo, int64_t *hi) {
  int64_t q = n / nth, r = n % nth;
  *lo = tid * q + (tid < r ? tid : r);
  *hi = *lo + q + (tid < r ? 1 : 0);
}

/* How waiting threads behave: spin for a while before sleeping while the
   machine has cores to spare, sleep at once while other processes need
   them.  sc_pool_stats reports what the pool saw (for benchmarks and
   specs): whether it currently thinks the machine is contended, the other
   processes' load in cores at the last check, and how many times it has
   switched. */
typedef struct {
  int contended;
  double others_cores;
  int64_t switches;
  int64_t jobs;
  int workers;
} sc_pool_info;
void sc_pool_stats(sc_pool_info *out);

/* Waiting policy: SC_WAIT_AUTO (default: decided from the machine's load),
   SC_WAIT_SPIN (always spin first) or SC_WAIT_SLEEP (never spin). */
enum { SC_WAIT_AUTO = 0, SC_WAIT_SPIN = 1, SC_WAIT_SLEEP = 2 };
void sc_pool_set_policy(int policy);
int sc_pool_get_policy(void);

#endif
