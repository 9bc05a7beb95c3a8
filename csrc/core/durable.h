/*
 * scorch core: what a durable training run needs from the operating system
 * and Lua cannot do — fsync of a file and of a directory, a rename made
 * durable, truncation, a sleep, and SIGINT/SIGTERM turned into a flag the
 * training loop polls between steps.
 *
 * Plain C11 + POSIX, no Lua headers.  Failures return -1 with a message in
 * sc_error() naming the path and the system's reason.
 */
#ifndef SC_DURABLE_H
#define SC_DURABLE_H

#include <stdint.h>

/* fsync(2) of the file at path (its data and size reach the disk). */
int sc_fsync_file(const char *path);

/* fsync(2) of the directory at path, so the names in it (a rename) are on
   disk.  A file system that cannot sync directories (EINVAL) counts as
   success: there is nothing more to do there. */
int sc_fsync_dir(const char *path);

/* rename(2) from -> to, then sc_fsync_dir of to's directory.  from and to
   must be in the same directory for the rename to be atomic. */
int sc_rename_durable(const char *from, const char *to);

/* Cuts the file at path to len bytes (a log back to a checkpoint's end);
   an error when the file is shorter than len. */
int sc_truncate_file(const char *path, uint64_t len);

/* Sleeps for the given seconds (>= 0), resuming after signals. */
void sc_sleep(double seconds);

/* SIGINT and SIGTERM set a flag instead of killing the process; the
   previous handlers are saved.  A second signal while the first is still
   pending exits at once with 128 + its number (_exit: no buffer flushes,
   no half-written file renamed into place).  Returns -1 if sigaction
   fails. */
int sc_stop_signals_install(void);

/* The pending signal's number (SIGINT or SIGTERM), or 0. */
int sc_stop_signal_pending(void);

/* Clears the pending flag (after the caller has acted on it). */
void sc_stop_signal_clear(void);

/* Puts back the handlers saved by sc_stop_signals_install. */
void sc_stop_signals_restore(void);

#endif
