/* The thread pool (csrc/core/pool.c) on its own: every index is visited once
   by the static and the dynamic splits, the static split is OpenMP's, nested
   calls run on the caller, every waiting policy gives the same result, and a
   child of fork() gets a working pool of its own. */
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "pool.h"

#define N 100003

static _Atomic int hits[N];
static _Atomic int nested_serial;

static void count(void *ctx, int64_t lo, int64_t hi, int tid) {
  (void)ctx;
  (void)tid;
  for (int64_t i = lo; i < hi; i++) atomic_fetch_add(&hits[i], 1);
}

static int all_once(void) {
  for (int i = 0; i < N; i++)
    if (atomic_load(&hits[i]) != 1) return 0;
  return 1;
}

static void clear(void) {
  for (int i = 0; i < N; i++) atomic_store(&hits[i], 0);
}

/* records each thread's range */
static int64_t lo_of[8], hi_of[8];
static void ranges(void *ctx, int64_t lo, int64_t hi, int tid) {
  (void)ctx;
  lo_of[tid] = lo;
  hi_of[tid] = hi;
}

static void inner(void *ctx, int tid, int nth) {
  (void)ctx;
  (void)tid;
  if (nth == 1) atomic_fetch_add(&nested_serial, 1);
}

static void outer(void *ctx, int tid, int nth) {
  (void)ctx;
  (void)nth;
  CHECK(sc_in_parallel(), "thread %d not marked as inside a parallel call", tid);
  sc_parallel(4, inner, NULL);
}

static double sum_of(int nth) {
  sc_parallel_for(nth, N, count, NULL);
  double s = 0;
  for (int i = 0; i < N; i++) s += atomic_load(&hits[i]) * (double)i;
  return s;
}

int main(void) {
  for (int nth = 1; nth <= 4; nth++) {
    clear();
    sc_parallel_for(nth, N, count, NULL);
    CHECK(all_once(), "static split at %d threads missed or repeated an index", nth);
    clear();
    sc_parallel_dynamic(nth, N, count, NULL);
    CHECK(all_once(), "dynamic split at %d threads missed or repeated an index", nth);
  }

  /* OpenMP's schedule(static): 10 over 3 threads is 4, 3, 3 */
  memset(lo_of, -1, sizeof lo_of);
  sc_parallel_for(3, 10, ranges, NULL);
  CHECK(lo_of[0] == 0 && hi_of[0] == 4 && lo_of[1] == 4 && hi_of[1] == 7 && lo_of[2] == 7 &&
            hi_of[2] == 10,
        "static ranges %lld-%lld %lld-%lld %lld-%lld", (long long)lo_of[0], (long long)hi_of[0],
        (long long)lo_of[1], (long long)hi_of[1], (long long)lo_of[2], (long long)hi_of[2]);

  /* a call from inside a call runs on its caller alone */
  atomic_store(&nested_serial, 0);
  sc_parallel(2, outer, NULL);
  CHECK(atomic_load(&nested_serial) == 2, "nested calls ran threaded (%d serial of 2)",
        atomic_load(&nested_serial));
  CHECK(!sc_in_parallel(), "the caller is still marked inside a parallel call");

  /* every waiting policy, many small jobs in a row */
  int policies[3] = {SC_WAIT_SPIN, SC_WAIT_SLEEP, SC_WAIT_AUTO};
  for (int p = 0; p < 3; p++) {
    sc_pool_set_policy(policies[p]);
    CHECK(sc_pool_get_policy() == policies[p], "policy %d not taken", policies[p]);
    for (int rep = 0; rep < 200; rep++) {
      clear();
      sc_parallel_for(2, 1000, count, NULL);
      for (int i = 0; i < 1000; i++)
        if (atomic_load(&hits[i]) != 1) {
          CHECK(0, "policy %d, job %d: index %d visited %d times", policies[p], rep, i,
                atomic_load(&hits[i]));
          break;
        }
    }
  }
  clear();
  double s2 = sum_of(2);
  clear();
  double s1 = sum_of(1);
  CHECK(s1 == s2, "sums differ between 1 and 2 threads");

  /* a forked child starts with an empty pool and grows its own */
  pid_t pid = fork();
  if (pid == 0) {
    clear();
    sc_parallel_for(2, N, count, NULL);
    _exit(all_once() ? 0 : 3);
  }
  int status = 0;
  pid_t got = 0;
  /* a child whose pool waits for workers that fork did not copy would hang:
     give it 10 s, then kill it and fail */
  for (int ms = 0; pid > 0 && got == 0 && ms < 10000; ms += 10) {
    got = waitpid(pid, &status, WNOHANG);
    if (got == 0) usleep(10000);
  }
  if (pid > 0 && got == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    CHECK(0, "the child's first parallel call hung");
  }
  CHECK(pid > 0 && got == pid, "fork or wait failed");
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child's pool failed (status %d)",
        status);

  sc_pool_info info;
  sc_pool_stats(&info);
  CHECK(info.workers >= 3, "%d workers after 4-thread calls", info.workers);
  CHECK(info.jobs > 600, "%lld jobs counted", (long long)info.jobs);
  return check_status();
}
