/*
 * How far apart two CPUs are: one cache line handed back and forth between
 * a thread on CPU a and one on CPU b, timed per round trip.  Not a paired
 * workload; it tells what a 2-thread kernel pays whenever one thread reads
 * what the other wrote last (a few tens of ns a round trip between cores of
 * one core complex, hundreds between complexes or sockets).
 *
 *   cc -O2 -pthread bench/core_latency.c -o /tmp/core_latency
 *   /tmp/core_latency [a b]          (CPUs 0 and 1 by default)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ROUNDS 1000000

static _Alignas(64) _Atomic long word;

static int pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

/* the other side: answers each odd value with the next even one */
static void *echo(void *arg) {
  if (pin(*(int *)arg) != 0) {
    fprintf(stderr, "core_latency: cannot run on CPU %d\n", *(int *)arg);
    exit(2);
  }
  for (long i = 0; i < ROUNDS; i++) {
    while (atomic_load_explicit(&word, memory_order_acquire) != 2 * i + 1) {
    }
    atomic_store_explicit(&word, 2 * i + 2, memory_order_release);
  }
  return NULL;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  int a = argc > 2 ? atoi(argv[1]) : 0, b = argc > 2 ? atoi(argv[2]) : 1;
  if (a == b) { /* both spinning on one CPU would hand over once a time slice */
    fprintf(stderr, "core_latency: give two different CPUs (got %d and %d)\n", a, b);
    return 2;
  }
  if (pin(a) != 0) {
    fprintf(stderr, "core_latency: cannot run on CPU %d\n", a);
    return 2;
  }
  pthread_t t;
  if (pthread_create(&t, NULL, echo, &b) != 0) return 2;
  double t0 = now();
  for (long i = 0; i < ROUNDS; i++) {
    atomic_store_explicit(&word, 2 * i + 1, memory_order_release);
    while (atomic_load_explicit(&word, memory_order_acquire) != 2 * i + 2) {
    }
  }
  double dt = now() - t0;
  pthread_join(t, NULL);
  printf("CPUs %d and %d: a cache line's round trip %.1f ns\n", a, b, dt / ROUNDS * 1e9);
  return 0;
}
