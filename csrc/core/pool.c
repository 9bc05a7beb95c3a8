/*
 * The thread pool.  Every parallel kernel of the core runs here (OpenBLAS
 * is kept single-threaded, and there is no OpenMP runtime).
 *
 * Why a pool of our own: a thread that waits for work can spin (it sees
 * the next job within nanoseconds, but holds its core) or sleep in the
 * kernel (it frees the core, but waking it costs tens of microseconds).
 * Spinning wins while the machine has cores to spare: between the small
 * kernels of a training step the workers would otherwise fall asleep and
 * be woken hundreds of times a step.  It loses badly when another process
 * wants the cores: a spinning worker holds the core that the thread it
 * waits for needs, and a 2-thread step beside one busy process took 17
 * times longer than alone under libgomp's default policy (issue 22).  An
 * OpenMP runtime fixes its policy when it loads (OMP_WAIT_POLICY); this
 * pool decides at run time.  Every 100 ms the dispatching thread compares
 * the machine's busy time (/proc/stat) with this process's own CPU time
 * (getrusage): when other processes use more of the cores than the pool
 * leaves free, waiting threads sleep at once; otherwise they spin for up
 * to SPIN_NS first and then sleep, so an idle process uses no CPU.
 *
 * One job at a time: the dispatcher publishes (fn, ctx, nth) and bumps a
 * generation counter; each worker runs its part and counts down `pending`.
 * Waits are a spin on the word followed by futex(2) on it.  A nested call
 * (from inside a job) or a call from a second thread while a job runs is
 * executed on the calling thread alone.
 */
#include "pool.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define POOL_MAX 1024
/* How long a waiting thread spins before it sleeps, when spinning is on. */
#define SPIN_NS 1000000
/* How often the dispatcher looks at the machine's load. */
#define CHECK_NS 100000000
/* Hysteresis of the contention test, in cores used by other processes
   beyond those the pool leaves free. */
#define ENTER_CORES 0.35
#define LEAVE_CORES 0.15

typedef struct {
  sc_team_fn fn;
  void *ctx;
  int nth;
} job_t;

static pthread_t workers[POOL_MAX];
static int nworkers = 0;
static job_t job;
static _Atomic int generation = 0;      /* futex word of the workers (wraps) */
static int start_gen[POOL_MAX + 1];     /* the generation each worker starts from */
static _Atomic int pending = 0;         /* futex word of the dispatcher */
static _Atomic int sleepers = 0;        /* workers inside futex_wait */
static _Atomic int master_sleeping = 0;
static _Atomic int dispatching = 0;     /* a job is being run */
static _Atomic int spin_now = 1;        /* waiting threads spin first */
static _Atomic int policy = SC_WAIT_AUTO;
static _Thread_local int in_parallel = 0;
static pthread_mutex_t grow_lock = PTHREAD_MUTEX_INITIALIZER;

/* what the load check saw */
static int contended = 0;
static double others_cores = 0.0;
static int64_t switches = 0, jobs = 0;
static int64_t spin_ns = SPIN_NS;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

static void futex_wait(_Atomic int *addr, int val) {
  syscall(SYS_futex, (int *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(_Atomic int *addr, int n) {
  syscall(SYS_futex, (int *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* Spins while *addr == val (for at most spin_ns when spinning is on);
   returns whether the value changed. */
static int spin_while(_Atomic int *addr, int val) {
  if (!atomic_load_explicit(&spin_now, memory_order_relaxed)) return 0;
  int64_t end = now_ns() + spin_ns;
  for (;;) {
    for (int i = 0; i < 64; i++) {
      if (atomic_load_explicit(addr, memory_order_acquire) != val) return 1;
      cpu_relax();
    }
    if (now_ns() >= end || !atomic_load_explicit(&spin_now, memory_order_relaxed)) return 0;
  }
}

static void *worker_main(void *arg) {
  int tid = (int)(intptr_t)arg;
  int seen = start_gen[tid];
  in_parallel = 1;
  for (;;) {
    if (!spin_while(&generation, seen)) {
      atomic_fetch_add(&sleepers, 1);
      while (atomic_load(&generation) == seen) futex_wait(&generation, seen);
      atomic_fetch_sub(&sleepers, 1);
    }
    /* one generation at a time: the next is published only after this
       worker has counted down */
    seen = atomic_load_explicit(&generation, memory_order_acquire);
    job_t j = job;
    if (tid < j.nth) j.fn(j.ctx, tid, j.nth);
    if (atomic_fetch_sub_explicit(&pending, 1, memory_order_acq_rel) == 1 &&
        atomic_load(&master_sleeping))
      futex_wake(&pending, 1);
  }
  return NULL;
}

/* In a child of fork() only the forking thread exists: the pool starts
   empty there and grows again on its first parallel call. */
static void after_fork_child(void) {
  nworkers = 0;
  atomic_store(&generation, 0);
  atomic_store(&pending, 0);
  atomic_store(&sleepers, 0);
  atomic_store(&master_sleeping, 0);
  atomic_store(&dispatching, 0);
  in_parallel = 0;
  pthread_mutex_init(&grow_lock, NULL);
}

/* Starts workers until there are want of them (or creation fails);
   workers block every signal, so signals reach the thread that runs Lua. */
static int grow(int want) {
  if (want > POOL_MAX) want = POOL_MAX;
  static int atfork_set = 0;
  pthread_mutex_lock(&grow_lock);
  if (!atfork_set) atfork_set = pthread_atfork(NULL, NULL, after_fork_child) == 0;
  if (nworkers < want) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    while (nworkers < want) {
      /* workers are numbered from 1: tid 0 is the dispatcher; a new one
         waits for the generation after the current */
      start_gen[nworkers + 1] = atomic_load(&generation);
      if (pthread_create(&workers[nworkers], NULL, worker_main, (void *)(intptr_t)(nworkers + 1)) != 0)
        break;
      pthread_detach(workers[nworkers]);
      nworkers++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  }
  int n = nworkers;
  pthread_mutex_unlock(&grow_lock);
  return n;
}

static int online_cpus(void) {
  static int n = 0;
  if (n == 0) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
    if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 0) n = 1;
  }
  return n;
}

/* Busy CPU seconds of the whole machine (all cores), or -1. */
static double machine_busy(void) {
  char buf[256];
  FILE *f = fopen("/proc/stat", "r");
  if (!f) return -1;
  char *ok = fgets(buf, sizeof buf, f);
  fclose(f);
  if (!ok || strncmp(buf, "cpu ", 4) != 0) return -1;
  unsigned long long v[8] = {0};
  if (sscanf(buf + 4, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
             &v[4], &v[5], &v[6], &v[7]) < 4)
    return -1;
  /* user nice system idle iowait irq softirq steal: all but idle and iowait */
  unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  static long hz = 0;
  if (hz <= 0) hz = sysconf(_SC_CLK_TCK);
  if (hz <= 0) hz = 100;
  return (double)busy / (double)hz;
}

static double self_cpu(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec * 1e-6;
}

/* At most every CHECK_NS: other processes' load in cores since the last
   check, and whether waiting threads should spin. */
static void check_load(int nth) {
  static int64_t last_t = 0;
  static double last_busy = -1, last_self = -1;
  int p = atomic_load_explicit(&policy, memory_order_relaxed);
  if (p != SC_WAIT_AUTO) {
    atomic_store(&spin_now, p == SC_WAIT_SPIN);
    return;
  }
  int64_t t = now_ns();
  if (last_t != 0 && t - last_t < CHECK_NS) return;
  double busy = machine_busy(), self = self_cpu();
  if (busy >= 0 && self >= 0 && last_busy >= 0 && last_t != 0) {
    double wall = (double)(t - last_t) * 1e-9;
    double o = ((busy - last_busy) - (self - last_self)) / wall;
    if (o < 0) o = 0;
    others_cores = o;
    double slack = (double)(online_cpus() - nth);
    if (slack < 0) slack = 0;
    int was = contended;
    if (!contended && o > slack + ENTER_CORES) contended = 1;
    else if (contended && o < slack + LEAVE_CORES) contended = 0;
    if (was != contended) switches++;
  }
  last_t = t;
  last_busy = busy;
  last_self = self;
  atomic_store(&spin_now, !contended);
}

int sc_in_parallel(void) { return in_parallel; }

void sc_parallel(int nth, sc_team_fn fn, void *ctx) {
  int expected = 0;
  if (nth <= 1 || in_parallel ||
      !atomic_compare_exchange_strong(&dispatching, &expected, 1)) {
    fn(ctx, 0, 1);
    return;
  }
  if (nworkers < nth - 1) {
    static int env_read = 0;
    if (!env_read) {
      const char *s = getenv("SCORCH_SPIN_US");
      if (s && *s) spin_ns = (int64_t)(atof(s) * 1000.0);
      env_read = 1;
    }
    int have = grow(nth - 1);
    if (nth > have + 1) nth = have + 1;
    if (nth <= 1) {
      atomic_store(&dispatching, 0);
      fn(ctx, 0, 1);
      return;
    }
  }
  check_load(nth);
  jobs++;
  job.fn = fn;
  job.ctx = ctx;
  job.nth = nth;
  /* every worker takes part in every generation (those past nth only
     count down), so none can read a later job's fields for this one */
  atomic_store(&pending, nworkers);
  atomic_fetch_add_explicit(&generation, 1, memory_order_acq_rel);
  if (atomic_load(&sleepers) > 0) futex_wake(&generation, POOL_MAX);
  in_parallel = 1;
  fn(ctx, 0, nth);
  in_parallel = 0;
  int v = atomic_load_explicit(&pending, memory_order_acquire);
  if (v != 0 && !spin_while(&pending, v)) {
    atomic_store(&master_sleeping, 1);
    while ((v = atomic_load(&pending)) != 0) futex_wait(&pending, v);
    atomic_store(&master_sleeping, 0);
  }
  while (atomic_load_explicit(&pending, memory_order_acquire) != 0) cpu_relax();
  atomic_store(&dispatching, 0);
}

typedef struct {
  sc_range_fn fn;
  void *ctx;
  int64_t n;
  _Atomic int64_t next;
} range_job;

static void static_part(void *p, int tid, int nth) {
  range_job *r = p;
  int64_t lo, hi;
  sc_static_range(r->n, tid, nth, &lo, &hi);
  if (hi > lo) r->fn(r->ctx, lo, hi, tid);
}

void sc_parallel_for(int nth, int64_t n, sc_range_fn fn, void *ctx) {
  if (n <= 0) return;
  if (nth > n) nth = (int)n;
  if (nth <= 1 || in_parallel) {
    fn(ctx, 0, n, 0);
    return;
  }
  range_job r = {fn, ctx, n, 0};
  sc_parallel(nth, static_part, &r);
}

static void dynamic_part(void *p, int tid, int nth) {
  (void)nth;
  range_job *r = p;
  for (;;) {
    int64_t i = atomic_fetch_add(&r->next, 1);
    if (i >= r->n) break;
    r->fn(r->ctx, i, i + 1, tid);
  }
}

void sc_parallel_dynamic(int nth, int64_t n, sc_range_fn fn, void *ctx) {
  if (n <= 0) return;
  if (nth > n) nth = (int)n;
  range_job r = {fn, ctx, n, 0};
  if (nth <= 1 || in_parallel) {
    dynamic_part(&r, 0, 1);
    return;
  }
  sc_parallel(nth, dynamic_part, &r);
}

void sc_pool_stats(sc_pool_info *out) {
  out->contended = contended;
  out->others_cores = others_cores;
  out->switches = switches;
  out->jobs = jobs;
  out->workers = nworkers;
}

void sc_pool_set_policy(int p) {
  if (p < SC_WAIT_AUTO || p > SC_WAIT_SLEEP) p = SC_WAIT_AUTO;
  atomic_store(&policy, p);
  if (p != SC_WAIT_AUTO) atomic_store(&spin_now, p == SC_WAIT_SPIN);
  else atomic_store(&spin_now, !contended);
}

int sc_pool_get_policy(void) { return atomic_load(&policy); }
