/*
 * scorch core: fsync, durable rename, truncation and stop signals for
 * training runs (see durable.h).  A checkpoint is written to a temporary
 * name, synced, renamed over its final name and the directory synced, so a
 * crash at any instant leaves either the old file set or the new one.
 */
#include "durable.h"

#include "tensor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

int sc_fsync_file(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    sc_set_error("fsync: cannot open %s: %s", path, strerror(errno));
    return -1;
  }
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc) {
    sc_set_error("fsync: %s: %s", path, strerror(err));
    return -1;
  }
  return 0;
}

int sc_fsync_dir(const char *path) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    sc_set_error("fsync: cannot open directory %s: %s", path, strerror(errno));
    return -1;
  }
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc && err != EINVAL) {
    sc_set_error("fsync: directory %s: %s", path, strerror(err));
    return -1;
  }
  return 0;
}

/* The directory part of path ("." when it has none), malloc'd. */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  size_t n = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
  char *dir = malloc(n + 1);
  if (!dir) return NULL;
  if (!slash)
    memcpy(dir, ".", 1);
  else
    memcpy(dir, path, n);
  dir[n] = 0;
  return dir;
}

int sc_rename_durable(const char *from, const char *to) {
  if (rename(from, to)) {
    sc_set_error("rename: %s to %s: %s", from, to, strerror(errno));
    return -1;
  }
  char *dir = dir_of(to);
  if (!dir) {
    sc_set_error("rename: out of memory");
    return -1;
  }
  int rc = sc_fsync_dir(dir);
  free(dir);
  return rc;
}

int sc_truncate_file(const char *path, uint64_t len) {
  struct stat st;
  if (stat(path, &st)) {
    sc_set_error("truncate: %s: %s", path, strerror(errno));
    return -1;
  }
  if ((uint64_t)st.st_size < len) {
    sc_set_error("truncate: %s has %lld bytes, fewer than %llu", path, (long long)st.st_size,
                 (unsigned long long)len);
    return -1;
  }
  if (truncate(path, (off_t)len)) {
    sc_set_error("truncate: %s: %s", path, strerror(errno));
    return -1;
  }
  return 0;
}

void sc_sleep(double seconds) {
  if (!(seconds > 0)) return;
  struct timespec ts, rem;
  ts.tv_sec = (time_t)seconds;
  ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &rem) && errno == EINTR) ts = rem;
}

/* ---- stop signals ------------------------------------------------------------------ */

static volatile sig_atomic_t pending = 0;
static struct sigaction saved_int, saved_term;
static int installed = 0;

/* Only async-signal-safe calls here: a flag, or _exit on the second. */
static void on_stop(int sig) {
  if (pending) _exit(128 + sig);
  pending = sig;
}

int sc_stop_signals_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  pending = 0;
  if (installed) return 0;
  if (sigaction(SIGINT, &sa, &saved_int)) {
    sc_set_error("signals: sigaction(SIGINT): %s", strerror(errno));
    return -1;
  }
  if (sigaction(SIGTERM, &sa, &saved_term)) {
    sc_set_error("signals: sigaction(SIGTERM): %s", strerror(errno));
    sigaction(SIGINT, &saved_int, NULL);
    return -1;
  }
  installed = 1;
  return 0;
}

int sc_stop_signal_pending(void) { return (int)pending; }

void sc_stop_signal_clear(void) { pending = 0; }

void sc_stop_signals_restore(void) {
  if (!installed) return;
  sigaction(SIGINT, &saved_int, NULL);
  sigaction(SIGTERM, &saved_term, NULL);
  installed = 0;
}
