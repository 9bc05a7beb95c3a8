/* scorch collectives over MPI.  Only the standard's calls (MPI-3
   non-blocking collectives), so Open MPI and MPICH both work.
 *
 * No collective blocks inside MPI: each is started non-blocking and
 * polled, so that a rank can give up instead of hanging forever —
 *   - every MPI call returns its error (MPI_ERRORS_RETURN on our own
 *     duplicate of MPI_COMM_WORLD), which becomes a message with
 *     MPI_Error_string's text;
 *   - a collective that waits longer than the timeout fails;
 *   - a rank whose Lua state closes (its script ended, or raised an error)
 *     sends "goodbye" to every other rank before it finalizes, and a rank
 *     that sees one while it waits fails within a short grace period.
 * A rank killed outright (os.exit without closing, a signal) is noticed by
 * mpirun itself, which then ends the job.  After any failure the world is
 * broken and finalize aborts the job rather than wait for ranks that left.
 */
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist.h"

enum { TAG_RING = 7001, TAG_BYE = 7002 };

static MPI_Comm comm = MPI_COMM_NULL;
static int my_rank, world_size = 1, started, finalized, broken, we_initialised;
static int left_rank = -1; /* a rank that said goodbye, once seen */
static double timeout = 300;
static char broken_msg[512];
static void *scratch; /* the ring's receive buffer, grown on demand */
static size_t scratch_bytes;

const char *sc_dist_backend(void) { return "mpi"; }
int sc_dist_rank(void) { return my_rank; }
int sc_dist_size(void) { return world_size; }
int sc_dist_broken(void) { return broken; }

/* Records a failure: the message, and the world as broken. */
static int fail_msg(void) {
  broken = 1;
  strncpy(broken_msg, sc_dist_error(), sizeof broken_msg - 1);
  return -1;
}

static void set_mpi_error(const char *what, int rc) {
  char s[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS) len = 0;
  s[len] = 0;
  sc_dist_set_error("%s: MPI error on rank %d: %s", what, my_rank,
                    len ? s : "(no error string)");
}

/* An error while messages are in flight breaks the world. */
static int mpi_fail(const char *what, int rc) {
  set_mpi_error(what, rc);
  return fail_msg();
}

/* An error when starting a call (MPI's argument checks) is local: nothing
   was sent, so the world goes on (other ranks that did start the call
   will time out or see this rank leave). */
static int mpi_refused(const char *what, int rc) {
  set_mpi_error(what, rc);
  return -1;
}

/* Fails at once when an earlier failure broke the world. */
static int ready(const char *what) {
  if (!started) {
    sc_dist_set_error("%s: the MPI world is not started (call init first)", what);
    return -1;
  }
  if (finalized) {
    sc_dist_set_error("%s: the MPI world was finalized", what);
    return -1;
  }
  if (broken) {
    sc_dist_set_error("%s: an earlier failure broke the world: %s", what, broken_msg);
    return -1;
  }
  return 0;
}

static void nap(long ns) {
  struct timespec ts = {0, ns};
  nanosleep(&ts, NULL);
}

/* Polls the requests to completion.  Spins for the first 2 ms (a partner
   already there answers within microseconds), then naps 50 µs between
   polls so that a rank waiting for a slower one leaves the core to others.
   watch_bye: fail when another rank has said goodbye and nothing arrives
   within 2 s (its last messages may still be in flight); otherwise (at
   finalize) wait without the timeout: a rank finishing late (rank 0
   writing samples alone) must not be aborted by those done before it, and
   a rank that never comes has died (mpirun ends the job) or is stuck in a
   collective (whose own timeout aborts the job). */
static int wait_all(int n, MPI_Request *reqs, const char *what, int watch_bye) {
  double t0 = sc_dist_now();
  double deadline = timeout > 0 && watch_bye ? t0 + timeout : INFINITY;
  double grace = left_rank >= 0 && watch_bye ? t0 + 2.0 : INFINITY;
  for (;;) {
    int done = 0;
    int rc = MPI_Testall(n, reqs, &done, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS) return mpi_fail(what, rc);
    if (done) return 0;
    double t = sc_dist_now();
    if (watch_bye && left_rank < 0) {
      int flag = 0;
      MPI_Status st;
      rc = MPI_Iprobe(MPI_ANY_SOURCE, TAG_BYE, comm, &flag, &st);
      if (rc != MPI_SUCCESS) return mpi_fail(what, rc);
      if (flag) {
        left_rank = st.MPI_SOURCE;
        grace = t + 2.0;
      }
    }
    if (t > grace) {
      sc_dist_set_error("%s: rank %d has left (its script ended or raised an error) "
                        "while rank %d waited for it here", what, left_rank, my_rank);
      return fail_msg();
    }
    if (t > deadline) {
      sc_dist_set_error("%s: rank %d timed out after %g s waiting for the other ranks "
                        "(a rank died, is stuck, or runs different code)",
                        what, my_rank, timeout);
      return fail_msg();
    }
    if (t - t0 > 2e-3) nap(50000);
  }
}

int sc_dist_init(double timeout_s) {
  if (timeout_s > 0) timeout = timeout_s;
  if (started) return ready("init");
  int flag = 0, rc;
  MPI_Initialized(&flag);
  if (!flag) {
    int provided;
    /* Errors of MPI_Init itself are fatal in MPI-3 whatever we ask. */
    rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return mpi_fail("init", rc);
    we_initialised = 1;
  }
  started = 1;
  if ((rc = MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN)) != MPI_SUCCESS ||
      (rc = MPI_Comm_dup(MPI_COMM_WORLD, &comm)) != MPI_SUCCESS ||
      (rc = MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN)) != MPI_SUCCESS ||
      (rc = MPI_Comm_rank(comm, &my_rank)) != MPI_SUCCESS ||
      (rc = MPI_Comm_size(comm, &world_size)) != MPI_SUCCESS)
    return mpi_fail("init", rc);
  return 0;
}

static MPI_Datatype mpi_type(sc_dist_type t) { return t == SC_DIST_F64 ? MPI_DOUBLE : MPI_FLOAT; }

/* MPI counts are ints. */
static int check_count(int64_t n, const char *what) {
  if (n > INT32_MAX) {
    sc_dist_set_error("%s: %lld elements is more than one MPI message holds (2^31 - 1)",
                      what, (long long)n);
    return -1;
  }
  return 0;
}

int sc_dist_barrier(void) {
  if (ready("barrier")) return -1;
  double t0 = sc_dist_now();
  MPI_Request req;
  int rc = MPI_Ibarrier(comm, &req);
  if (rc != MPI_SUCCESS) return mpi_refused("barrier", rc);
  if (wait_all(1, &req, "barrier", 1)) return -1;
  sc_dist_count(0, sc_dist_now() - t0);
  return 0;
}

int sc_dist_broadcast(void *buf, int64_t n, sc_dist_type t, int root) {
  if (ready("broadcast") || check_count(n, "broadcast")) return -1;
  /* the root is checked by MPI itself (the Lua side checks it first) */
  double t0 = sc_dist_now();
  MPI_Request req;
  int rc = MPI_Ibcast(buf, (int)n, mpi_type(t), root, comm, &req);
  if (rc != MPI_SUCCESS) return mpi_refused("broadcast", rc);
  if (wait_all(1, &req, "broadcast", 1)) return -1;
  sc_dist_count(my_rank == root ? n * (int64_t)sc_dist_type_size(t) : 0, sc_dist_now() - t0);
  return 0;
}

int sc_dist_all_gather(const void *in, void *out, int64_t n, sc_dist_type t) {
  if (ready("all_gather") || check_count(n * world_size, "all_gather")) return -1;
  double t0 = sc_dist_now();
  size_t es = sc_dist_type_size(t);
  /* MPI_IN_PLACE: our own part is copied first, so in and out never alias
     in the call. */
  if (n > 0) memcpy((char *)out + (size_t)my_rank * (size_t)n * es, in, (size_t)n * es);
  MPI_Request req;
  int rc = MPI_Iallgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, out, (int)n, mpi_type(t), comm, &req);
  if (rc != MPI_SUCCESS) return mpi_refused("all_gather", rc);
  if (wait_all(1, &req, "all_gather", 1)) return -1;
  sc_dist_count(n * (int64_t)es * (world_size - 1), sc_dist_now() - t0);
  return 0;
}

/* Chunk c of n elements split p ways: [lo, hi). */
static int64_t chunk_lo(int64_t n, int p, int c) { return n * c / p; }

/* One ring step: send chunk `sc` of buf to the next rank while receiving
   chunk `rc_` from the previous one into dst. */
static int ring_step(char *buf, void *dst, int64_t n, sc_dist_type t, int send_c, int recv_c) {
  size_t es = sc_dist_type_size(t);
  int p = world_size, next = (my_rank + 1) % p, prev = (my_rank + p - 1) % p;
  int64_t slo = chunk_lo(n, p, send_c), shi = chunk_lo(n, p, send_c + 1);
  int64_t rlo = chunk_lo(n, p, recv_c), rhi = chunk_lo(n, p, recv_c + 1);
  MPI_Request reqs[2];
  int rc = MPI_Irecv(dst, (int)(rhi - rlo), mpi_type(t), prev, TAG_RING, comm, &reqs[0]);
  if (rc != MPI_SUCCESS) return mpi_fail("all_reduce", rc);
  rc = MPI_Isend(buf + (size_t)slo * es, (int)(shi - slo), mpi_type(t), next, TAG_RING, comm,
                 &reqs[1]);
  if (rc != MPI_SUCCESS) return mpi_fail("all_reduce", rc);
  return wait_all(2, reqs, "all_reduce", 1);
}

/* Ring all-reduce (sum): p - 1 reduce-scatter steps, after which rank r
   holds the sum of chunk r + 1, then p - 1 all-gather steps that pass the
   finished chunks round.  Each rank sends 2 (p - 1) / p of the buffer.
   Chunk c is summed starting at rank c + 1 and going round the ring,
   always in that order, and the finished chunk is copied, not recomputed:
   every rank ends with the same bits, run after run. */
static int ring_sum(void *buf, int64_t n, sc_dist_type t) {
  int p = world_size, r = my_rank;
  size_t es = sc_dist_type_size(t);
  size_t need = (size_t)(n / p + 1) * es;
  if (need > scratch_bytes) {
    void *s = realloc(scratch, need);
    if (!s) {
      sc_dist_set_error("all_reduce: out of memory for a %zu-byte receive buffer", need);
      return -1;
    }
    scratch = s;
    scratch_bytes = need;
  }
  char *b = buf;
  for (int s = 0; s < p - 1; s++) {
    int send_c = ((r - s) % p + p) % p, recv_c = ((r - s - 1) % p + p) % p;
    if (ring_step(b, scratch, n, t, send_c, recv_c)) return -1;
    int64_t lo = chunk_lo(n, p, recv_c), len = chunk_lo(n, p, recv_c + 1) - lo;
    if (t == SC_DIST_F64) {
      double *d = (double *)b + lo;
      const double *x = scratch;
      for (int64_t i = 0; i < len; i++) d[i] = x[i] + d[i];
    } else {
      float *d = (float *)b + lo;
      const float *x = scratch;
      for (int64_t i = 0; i < len; i++) d[i] = x[i] + d[i];
    }
  }
  for (int s = 0; s < p - 1; s++) {
    int send_c = ((r + 1 - s) % p + p) % p, recv_c = ((r - s) % p + p) % p;
    int64_t lo = chunk_lo(n, p, recv_c);
    if (ring_step(b, b + (size_t)lo * es, n, t, send_c, recv_c)) return -1;
  }
  return 0;
}

int sc_dist_all_reduce(void *buf, int64_t n, sc_dist_type t, sc_dist_op op) {
  if (ready("all_reduce") || check_count(n / world_size + 1, "all_reduce")) return -1;
  double t0 = sc_dist_now();
  int64_t sent = 0;
  if (world_size > 1 && n > 0) {
    if (op == SC_DIST_SUM) {
      if (ring_sum(buf, n, t)) return -1;
      sent = 2 * (n - n / world_size) * (int64_t)sc_dist_type_size(t);
    } else {
      /* max and min do not depend on the order: MPI's own algorithm */
      if (check_count(n, "all_reduce")) return -1;
      MPI_Request req;
      int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, mpi_type(t),
                              op == SC_DIST_MAX ? MPI_MAX : MPI_MIN, comm, &req);
      if (rc != MPI_SUCCESS) return mpi_refused("all_reduce", rc);
      if (wait_all(1, &req, "all_reduce", 1)) return -1;
      sent = n * (int64_t)sc_dist_type_size(t);
    }
  }
  sc_dist_count(sent, sc_dist_now() - t0);
  return 0;
}

/* Goodbye to every other rank, then theirs: a barrier before
   MPI_Finalize, and the message that tells a rank still waiting in a
   collective that this one has left. */
static int say_goodbye(void) {
  int p = world_size, n = 0;
  MPI_Request *reqs = calloc((size_t)(2 * p), sizeof *reqs);
  int *bye = calloc((size_t)p + 1, sizeof *bye);
  int rc = 0;
  if (!reqs || !bye) rc = -1;
  for (int r = 0; rc == 0 && r < p; r++) {
    if (r == my_rank) continue;
    if (MPI_Isend(&bye[p], 1, MPI_INT, r, TAG_BYE, comm, &reqs[n++]) != MPI_SUCCESS ||
        MPI_Irecv(&bye[r], 1, MPI_INT, r, TAG_BYE, comm, &reqs[n++]) != MPI_SUCCESS)
      rc = -1;
  }
  if (rc == 0) rc = wait_all(n, reqs, "finalize", 0);
  free(reqs);
  free(bye);
  return rc;
}

int sc_dist_finalize(int abort_job) {
  if (!started || finalized) return 0;
  finalized = 1;
  if (!abort_job && !broken && world_size > 1 && say_goodbye() != 0) broken = 1;
  if (abort_job || broken) MPI_Abort(MPI_COMM_WORLD, 1); /* ends every rank */
  free(scratch);
  scratch = NULL;
  scratch_bytes = 0;
  MPI_Comm_free(&comm);
  if (we_initialised) MPI_Finalize();
  return 0;
}
