#!/usr/bin/python3
"""scorch vs PyTorch benchmark runner (stdlib only; see bench/README.md).

    /usr/bin/python3 bench/run.py [--workloads W1,W5] [--threads 1,2]
                                  [--quick] [--json out.json]

For every workload case and thread count it runs, one process at a time:
scorch, torch with default settings, torch with OMP_WAIT_POLICY=PASSIVE
ATEN_CPU_CAPABILITY=avx512 (and, when OPENBLAS_CORETYPE names pre-AVX-512
kernels on an AVX-512 CPU, that again with OPENBLAS_CORETYPE=SKYLAKEX; the
fastest torch is kept; each configuration runs in --torch-runs processes, 2
by default, since one process's time can land in a slow mode) and, for W6,
OpenBLAS sgemm called directly from C.  scorch runs in --scorch-runs
processes (2 by default), one before PyTorch's and the rest after them, and
keeps its fastest too: the host is shared and its speed drifts by a fifth
within minutes, so each side gets a run on either side of the drift.
Before all that it measures the machine's sgemm peak (OpenBLAS, n = 1024, at
1 thread and at each thread count used) and prints it with the CPU model at
the top and beside every table; a 1-thread peak below 60 GFLOP/s on an
AVX2/AVX-512 CPU (far below the class the targets assume) makes it refuse
to report any ratio.  Each run is checked for a quiet machine: if
other processes used more than 10% of a core meanwhile (system-wide busy time
from /proc/stat minus the child's own CPU time from wait4) the run is repeated,
up to --tries times, after which it is kept but marked "noisy".

    /usr/bin/python3 bench/run.py --beside-busy 1 [--workloads NCSN,W3]
                                  [--threads 2] [--baseline-scorch OLD/bin/scorch]

Contention mode (issue 22): N busy processes are started beside every run
and stopped after it.  Each scorch case runs with the pool's automatic
waiting policy and with SCORCH_WAIT_POLICY=sleep (threads never spin: the
counterpart of OpenMP's OMP_WAIT_POLICY=PASSIVE), and the table gives the
ratio, whose target is <= 1.10.  --baseline-scorch adds another build (for
instance one linked with libgomp) with its default and with
OMP_WAIT_POLICY=PASSIVE.  --beside-busy 0 runs the same table on a quiet
machine.  Every scorch run also reports CPU time / (threads x wall time),
flagged above 1.05 (a thread that uses CPU it should not).
"""
import argparse
import glob
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_PY = "/usr/bin/python3"
TORCH_SCRIPT = os.path.join(ROOT, "bench", "torch", "workloads.py")
SCORCH_SCRIPT = os.path.join(ROOT, "bench", "scorch", "workloads.lua")
SGEMM_SRC = os.path.join(ROOT, "bench", "sgemm_openblas.c")
SGEMM_BIN = os.path.join(ROOT, "build", "bench", "sgemm_openblas")

WORKLOAD_CASES = {
    "W1": ["W1"],
    "W2": ["W2"],
    "W2b": ["W2b"],
    "W3": ["W3"],
    "W4": ["W4"],
    "W5": ["W5", "W5g"],
    "W6": ["W6_1024", "W6_256"],
    "W7": ["W7t", "W7s"],
    "W8": ["W8"],
    "W9": ["W9f", "W9v"],
    "W10": ["W10"],
    "NCSN": ["NCSN"],
}
CASE_NAMES = {
    "W1": "mlp2d_train_step",
    "W2": "mlp2d_sample_ddpm",
    "W2b": "mlp2d_sample_ddpm in bfloat16 (scorch matmul precision medium; torch autocast)",
    "W3": "unet28_train_step",
    "W4": "ssm_mlp2d_step",
    "W5": "small_ops_overhead",
    "W5g": "small_ops_overhead (requires_grad)",
    "W6_1024": "sgemm 1024",
    "W6_256": "sgemm 256",
    "W7t": "unet_fmnist_ddpm: training step, batch 64",
    "W7s": "unet_fmnist_ddpm: sampling step, batch 250",
    "W8": "eval_fid_pr",
    "W9f": "likelihood_steps: RealNVP 2-D",
    "W9v": "likelihood_steps: VAE Fashion-MNIST",
    "W10": "wgan_gp_step",
    "NCSN": "ncsn_shapes quick training step (scorch only; bench/scorch/ncsn_step.lua)",
}
# Targets from the issues (issue 20: W1, W2, W3, W5, W6_256, W7).
# ("le", x): scorch/torch time ratio <= x.  ("ge", x): scorch GFLOP/s /
# OpenBLAS GFLOP/s >= x.  A dict {threads: target} when the target depends
# on the thread count; a count not listed takes the largest listed below it.
TARGETS = {
    "W1": {1: ("le", 0.50), 2: ("le", 0.7)},
    "W2": {1: ("le", 0.80), 2: ("le", 0.55)},
    # issue 20's opt-in mixed precision: W2's targets against PyTorch's own
    # bfloat16 autocast
    "W2b": {1: ("le", 0.80), 2: ("le", 0.55)},
    "W3": ("le", 0.50),
    "W4": ("le", 0.7),
    "W5": ("le", 0.10),
    "W5g": ("le", 0.10),
    "W6_1024": ("ge", 0.90),
    "W6_256": ("ge", 0.90),
    "W7t": ("le", 0.60),
    "W7s": ("le", 0.60),
    "W8": ("le", 0.7),
    "W9f": ("le", 0.7),
    "W9v": ("le", 0.7),
    "W10": ("le", 0.7),
}
# Peak resident memory: scorch's VmHWM / torch's <= x.
RSS_TARGETS = {"W7t": 0.5, "W7s": 0.5}
# The ratios are only meaningful on a machine of the class the targets
# assume (OpenBLAS sgemm ~105-240 GFLOP/s on one AVX2/AVX-512 core): below
# this 1-thread peak the runner refuses to report them.
PEAK_MIN_GFLOPS = 60.0
W7_FILE = os.path.join(ROOT, "build", "bench", "w7_unet.safetensors")


def target_for(case, n):
    """(kind, value) of case at n threads, or None."""
    t = TARGETS.get(case)
    if isinstance(t, dict):
        below = [k for k in t if k <= n]
        t = t[max(below)] if below else None
    return t


def targets_text():
    parts = []
    for case, t in TARGETS.items():
        items = sorted(t.items()) if isinstance(t, dict) else [(None, t)]
        if case == "W5g" and TARGETS.get("W5") == t:
            continue
        if case == "W6_256" and TARGETS.get("W6_1024") == t:
            continue
        if case == "W7s" and TARGETS.get("W7t") == t:
            continue
        name = {"W5": "W5/W5g", "W6_1024": "W6", "W7t": "W7t/W7s"}.get(case, case)
        sub = []
        for n, (kind, v) in items:
            s = ("<= %s" % v) if kind == "le" else (">= %.2f of OpenBLAS" % v)
            sub.append(s + ("" if n is None else " at %dt" % n))
        parts.append("%s %s" % (name, ", ".join(sub)))
    by_value = {}
    for case, v in RSS_TARGETS.items():
        by_value.setdefault(v, []).append(case)
    for v, cs in by_value.items():
        parts.append("%s peak RSS <= %s of torch's" % ("/".join(cs), v))
    return "; ".join(parts)
# W3's convolution arithmetic per step, 2*N*O*(C*k*k)*(Ho*Wo) per product:
# the forward and the weight gradient of all five convolutions, and the
# input gradient of all but the first (its input, the noisy image, needs
# none).  The Linear(1, 32) and the elementwise ops are left out.
W3_CONVS = [(1, 32, 28), (32, 64, 14), (64, 64, 14), (96, 32, 28), (32, 1, 28)]  # C, O, output side


def w3_gflop(batch=64, k=3):
    fl = [2.0 * batch * o * c * k * k * side * side for c, o, side in W3_CONVS]
    return (2 * sum(fl) + sum(fl[1:])) / 1e9


NOISE_LIMIT_CORES = 0.10
CLK_TCK = os.sysconf("SC_CLK_TCK")


def warn(msg):
    bar = "!" * 78
    sys.stderr.write("\n%s\n!!! WARNING: %s\n%s\n\n" % (bar, msg, bar))
    sys.stderr.flush()


def log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


# ---------------------------------------------------------------------------
# machine state
# ---------------------------------------------------------------------------
def proc_stat_busy():
    """System-wide busy CPU seconds (all cores) and steal seconds."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    assert fields[0] == "cpu"
    v = [int(x) for x in fields[1:]]
    v += [0] * (8 - len(v))
    user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
    # guest/guest_nice are already counted in user/nice.
    busy = user + nice + system + irq + softirq + steal
    return busy / CLK_TCK, steal / CLK_TCK


def self_cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# OpenBLAS targets whose sgemm kernels use AVX-512
AVX512_BLAS_CORES = ("SKYLAKEX", "COOPERLAKE", "SAPPHIRERAPIDS")


def cpu_has_avx512():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return "avx512f" in line.split()
    except OSError:
        pass
    return False


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


# ---------------------------------------------------------------------------
# running one child
# ---------------------------------------------------------------------------
def run_once(cmd, env, timeout):
    """Run cmd; return dict with parsed JSON (or error) and noise figures."""
    out_f = tempfile.TemporaryFile()
    err_f = tempfile.TemporaryFile()
    busy0, steal0 = proc_stat_busy()
    self0 = self_cpu()
    t0 = time.monotonic()
    try:
        p = subprocess.Popen(cmd, stdout=out_f, stderr=err_f, env=env,
                             cwd=ROOT, start_new_session=True)
    except OSError as e:
        return {"error": "cannot start %s: %s" % (cmd[0], e)}
    timed_out = []

    def kill():
        timed_out.append(True)
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        _, status, ru = os.wait4(p.pid, 0)
    except KeyboardInterrupt:
        kill()
        os.waitpid(p.pid, 0)
        p.returncode = -9
        raise
    finally:
        timer.cancel()
    p.returncode = os.waitstatus_to_exitcode(status)  # already reaped
    wall = time.monotonic() - t0
    busy1, steal1 = proc_stat_busy()
    self1 = self_cpu()
    child_cpu = ru.ru_utime + ru.ru_stime
    others = (busy1 - busy0) - child_cpu - (self1 - self0)
    res = {
        "wall_s_process": wall,
        "child_cpu_s": child_cpu,
        "others_cpu_s": others,
        "others_cores": others / wall if wall > 0 else 0.0,
        "steal_s": steal1 - steal0,
        "maxrss_kb_rusage": ru.ru_maxrss,
        "returncode": p.returncode,
    }
    out_f.seek(0)
    err_f.seek(0)
    stdout = out_f.read().decode("utf-8", "replace")
    stderr = err_f.read().decode("utf-8", "replace")
    parsed = None
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                parsed = json.loads(line)
                break
            except ValueError:
                continue
    if timed_out:
        res["error"] = "timeout after %.0f s" % timeout
    elif p.returncode != 0 or parsed is None:
        tail = (stderr.strip() or stdout.strip()).splitlines()[-6:]
        res["error"] = "exit %s: %s" % (p.returncode, " | ".join(tail) or "no output")
    else:
        res["result"] = parsed
    return res


def start_busy(n):
    """n processes that spin on one core each, until stop_busy."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"],
                              start_new_session=True) for _ in range(n)]
    time.sleep(0.3 if n else 0)
    return procs


def stop_busy(procs):
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def scorch_cmd(exe, case, n, quick):
    if case == "NCSN":
        return [exe, os.path.join(ROOT, "bench", "scorch", "ncsn_step.lua"), str(n),
                "10" if quick else "40", "--json"]
    return [exe, SCORCH_SCRIPT, "--workload", case, "--threads", str(n)] + (
        ["--quick"] if quick else [])


def cpu_use(rec, n):
    """CPU time / (threads x wall) of a finished run, or None."""
    if "child_cpu_s" not in rec or not rec.get("wall_s_process"):
        return None
    return rec["child_cpu_s"] / (n * rec["wall_s_process"])


def contention_main(args, cases, threads):
    """--beside-busy N: automatic policy against sleep-only waiting, beside N
    busy processes (see the module comment)."""
    nb = args.beside_busy
    base_env = dict(os.environ)
    for k in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "GOMP_SPINCOUNT",
              "SCORCH_WAIT_POLICY"):
        base_env.pop(k, None)
    configs = [("auto", args.scorch, {}), ("sleep", args.scorch, {"SCORCH_WAIT_POLICY": "sleep"})]
    if args.baseline_scorch:
        configs += [("baseline default", args.baseline_scorch, {}),
                    ("baseline PASSIVE", args.baseline_scorch, {"OMP_WAIT_POLICY": "PASSIVE"})]
    log("cpu: %s, %d cores; %d busy process%s beside each run" % (
        cpu_model(), os.cpu_count(), nb, "" if nb == 1 else "es"))
    rows = []
    for case in cases:
        for n in threads:
            env = dict(base_env, OMP_NUM_THREADS=str(n))
            log("%s (%s), %d thread%s" % (case, CASE_NAMES[case], n, "" if n == 1 else "s"))
            row = {"case": case, "threads": n, "runs": {}}
            for name, exe, extra in configs:
                if args.wait_quiet > 0:
                    wait_quiet(args.wait_quiet, name)
                busy = start_busy(nb)
                try:
                    rec = run_once(scorch_cmd(exe, case, n, args.quick), dict(env, **extra),
                                   args.timeout)
                finally:
                    stop_busy(busy)
                # the busy processes are expected; anything beyond them is noise
                rec["others_beyond_busy"] = rec.get("others_cores", 0.0) - nb
                rec["cpu_use"] = cpu_use(rec, n)
                m = rec["result"].get("median_s") if "result" in rec else None
                cu = rec["cpu_use"]
                log("  %-18s median %-10s cpu/(threads*wall) %s%s  others beyond busy %.2f cores%s" % (
                    name, fmt_s(m), "-" if cu is None else "%.3f" % cu,
                    " FLAG" if cu is not None and cu > 1.05 else "",
                    rec["others_beyond_busy"], ("  ERROR " + rec["error"]) if "error" in rec else ""))
                rec.update(config=name, case=case, threads=n, beside_busy=nb)
                row["runs"][name] = rec
            rows.append(row)
    out = sys.stdout
    out.write("\n%-6s %-4s %12s %12s %10s %12s %12s %10s\n" % (
        "case", "thr", "auto", "sleep", "auto/sleep", "base dflt", "base PASSIVE", "auto/base P"))
    summary = []
    for row in rows:
        r = row["runs"]
        med = {k: (v["result"].get("median_s") if "result" in v else None) for k, v in r.items()}
        ratio = med["auto"] / med["sleep"] if med.get("auto") and med.get("sleep") else None
        rb = (med["auto"] / med["baseline PASSIVE"]
              if med.get("auto") and med.get("baseline PASSIVE") else None)
        f = lambda v: "-" if v is None else fmt_s(v)
        out.write("%-6s %-4d %12s %12s %10s %12s %12s %10s\n" % (
            row["case"], row["threads"], f(med.get("auto")), f(med.get("sleep")),
            "-" if ratio is None else "%.3f" % ratio, f(med.get("baseline default")),
            f(med.get("baseline PASSIVE")), "-" if rb is None else "%.3f" % rb))
        summary.append({"case": row["case"], "threads": row["threads"], "beside_busy": nb,
                        "median_s": med, "auto_over_sleep": ratio, "auto_over_baseline_passive": rb,
                        "cpu_use": {k: v.get("cpu_use") for k, v in r.items()},
                        "pass": None if ratio is None or nb == 0 else ratio <= 1.10})
    out.write("(median seconds per step; target beside busy processes: auto/sleep <= 1.10; "
              "cpu/(threads*wall) above 1.05 is flagged in the log)\n")
    if args.json:
        with open(args.json, "w") as fj:
            json.dump({"meta": {"cpu": cpu_model(), "nproc": os.cpu_count(),
                                "beside_busy": nb, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
                       "rows": rows, "summary": summary}, fj, indent=1)
        log("wrote " + args.json)


def others_now(sample_s):
    """Cores used by other processes over the next sample_s seconds."""
    b0, _ = proc_stat_busy()
    s0 = self_cpu()
    time.sleep(sample_s)
    b1, _ = proc_stat_busy()
    return max(0.0, (b1 - b0) - (self_cpu() - s0)) / sample_s


def wait_quiet(max_wait, label):
    """Wait (up to max_wait s) until others use <= NOISE_LIMIT_CORES for 1 s."""
    t0 = time.monotonic()
    said = False
    while True:
        o = others_now(1.0)
        if o <= NOISE_LIMIT_CORES:
            return time.monotonic() - t0
        if time.monotonic() - t0 >= max_wait:
            log("  %-34s machine still busy (%.2f cores) after %.0f s; running anyway"
                % (label, o, max_wait))
            return time.monotonic() - t0
        if not said:
            log("  %-34s waiting for a quiet machine (others use %.2f cores)" % (label, o))
            said = True


def run_checked(label, cmd, env, tries, timeout, max_wait=0.0):
    """Repeat while the machine was noisy; returns the record kept."""
    attempts = []
    for i in range(tries):
        waited = wait_quiet(max_wait, label) if max_wait > 0 else 0.0
        r = run_once(cmd, env, timeout)
        r["waited_quiet_s"] = waited
        attempts.append(r)
        if "error" in r:
            log("  %-34s ERROR %s" % (label, r["error"]))
            r["tries"] = i + 1
            return r
        quiet = r["others_cores"] <= NOISE_LIMIT_CORES
        res = r["result"]
        log("  %-34s median %-10s min %-10s iters %-5d others %.2f cores%s"
            % (label, fmt_s(res.get("median_s")), fmt_s(res.get("min_s")),
               res.get("iters", 0), r["others_cores"],
               "" if quiet else "  -> noisy, retry" if i + 1 < tries else "  -> noisy"))
        if quiet:
            r["tries"] = i + 1
            r["noisy"] = False
            return r
    best = min(attempts, key=lambda a: a["others_cores"])
    best["tries"] = tries
    best["noisy"] = True
    return best


# ---------------------------------------------------------------------------
# formatting
# ---------------------------------------------------------------------------
def fmt_s(s):
    if s is None:
        return "-"
    if s >= 1.0:
        return "%.3f s" % s
    if s >= 1e-3:
        return "%.3f ms" % (s * 1e3)
    return "%.2f us" % (s * 1e6)


def fmt_mb(kb):
    return "-" if kb is None else "%.0f MB" % (kb / 1024.0)


def metric(case, rec):
    """The figure a case is compared by: min for W5 (per chain), else median."""
    if not rec or "result" not in rec:
        return None
    r = rec["result"]
    return r.get("min_s") if case.startswith("W5") else r.get("median_s")


def show_metric(case, v):
    if v is None:
        return "-"
    if case.startswith("W5"):
        return "%.2f us/ch" % (v / 10000 * 1e6)
    return fmt_s(v)


def pad(s, w):
    return s + " " * max(0, w - len(s))


# ---------------------------------------------------------------------------
# setup checks
# ---------------------------------------------------------------------------
def check_blas(meta):
    links = {}
    for p in sorted(glob.glob("/etc/alternatives/libblas.so.3*")):
        links[p] = os.path.realpath(p)
    meta["libblas_alternatives"] = links
    if not links or not all("openblas" in v for v in links.values()):
        warn("libblas.so.3 does not resolve to OpenBLAS: %s\n"
             "!!! torch would use the reference BLAS (~10x slower); the "
             "comparison means nothing. Install libopenblas-dev." % (links or "not found"))
    try:
        out = subprocess.run(
            [TORCH_PY, "-c", "import torch; print(torch.__version__); "
             "print(torch.__config__.show())"],
            capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        out = None
        err = str(e)
    if out is None or out.returncode != 0:
        msg = err if out is None else (out.stderr.strip().splitlines() or ["?"])[-1]
        warn("cannot import torch with %s: %s" % (TORCH_PY, msg))
        meta["torch"] = None
        return False
    lines = out.stdout.splitlines()
    meta["torch"] = {"version": lines[0] if lines else "?",
                     "config": "\n".join(lines[1:])}
    cfg = out.stdout.lower()
    log("torch %s; config mentions: %s" % (
        meta["torch"]["version"],
        ", ".join(w for w in ("openblas", "mkl", "blas_info=open", "blas_info=generic", "openmp")
                  if w in cfg) or "nothing BLAS-related"))
    if "openblas" not in cfg and "blas_info=open" not in cfg:
        log("note: torch.__config__.show() does not name OpenBLAS (Debian's torch "
            "uses the system libblas.so.3); the loaded library is checked per run.")
    return True


def ensure_sgemm():
    if os.path.exists(SGEMM_BIN) and os.path.getmtime(SGEMM_BIN) >= os.path.getmtime(SGEMM_SRC):
        return None
    os.makedirs(os.path.dirname(SGEMM_BIN), exist_ok=True)
    cmd = ["gcc", "-O2", SGEMM_SRC, "-lopenblas", "-lm", "-o", SGEMM_BIN]
    log("building: " + " ".join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in cmd))
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        return "gcc failed: " + r.stderr.strip()[-500:]
    return None


def blas_kernels(rec):
    """The kernel set OpenBLAS used in a run (from openblas_get_config)."""
    cfg = rec.get("result", {}).get("openblas_config", "") if rec else ""
    toks = cfg.split()
    for i, tok in enumerate(toks):
        if tok.startswith("MAX_THREADS") and i > 0:
            return toks[i - 1]
    return None


def measure_peaks(threads, args, base_env):
    """The machine's sgemm peak: OpenBLAS at n = 1024, at 1 thread and at
    each thread count used, under the environment's OPENBLAS_CORETYPE.
    Returns {"peaks": {n: GFLOP/s or None}, "runs": [...], ...}."""
    flags = cpu_flags()
    m = {"cpu": cpu_model(), "nproc": os.cpu_count(),
         "simd": "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2",
         "coretype_env": os.environ.get("OPENBLAS_CORETYPE"),
         "peaks": {}, "runs": [], "kernels": None, "error": ensure_sgemm()}
    if m["error"]:
        warn("cannot measure the sgemm peak: " + m["error"])
    else:
        quick = ["--quick"] if args.quick else []
        for n in sorted(set([1] + threads)):
            env = dict(base_env, OMP_NUM_THREADS=str(n), OPENBLAS_NUM_THREADS=str(n))
            rec = run_checked("openblas sgemm peak, %d thread%s" % (n, "" if n == 1 else "s"),
                              [SGEMM_BIN, "--n", "1024", "--threads", str(n)] + quick,
                              env, args.tries, args.timeout, args.wait_quiet)
            rec.update(impl="openblas", case="peak", threads=n)
            m["runs"].append(rec)
            m["peaks"][n] = rec["result"].get("gflops") if "result" in rec else None
            m["kernels"] = m["kernels"] or blas_kernels(rec)
    p1 = m["peaks"].get(1)
    # far below the class the targets assume: refuse to report ratios
    m["refused"] = p1 is not None and m["simd"] != "no AVX2" and p1 < PEAK_MIN_GFLOPS
    return m


def machine_line(m):
    """CPU, sgemm peak per thread count and the kernels it ran with."""
    pk = ", ".join("%s at %d thread%s" % ("-" if v is None else "%.1f GFLOP/s" % v, n,
                                           "" if n == 1 else "s")
                   for n, v in sorted(m["peaks"].items())) or "not measured"
    core = "OPENBLAS_CORETYPE=%s" % m["coretype_env"] if m["coretype_env"] else "OPENBLAS_CORETYPE unset"
    line = "machine: %s, %d cores, %s; OpenBLAS sgemm peak (n = 1024): %s; kernels %s (%s)" % (
        m["cpu"], m["nproc"], m["simd"], pk, m["kernels"] or "?", core)
    if m["refused"]:
        line += ("\n!!! the 1-thread peak is below %.0f GFLOP/s, far below the class the targets "
                 "assume (~105-240 GFLOP/s): ratios are refused" % PEAK_MIN_GFLOPS)
    elif m["peaks"].get(1) is None:
        line += "\n(note: no 1-thread peak, so the machine class is unchecked)"
    return line


def refused_text(m):
    return "refused (peak %.1f GFLOP/s)" % m["peaks"][1]


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads", default="W1,W2,W3,W4,W5,W6",
                    help="comma list of W1..W10 (or cases W5g, W6_256, ...)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--quick", action="store_true",
                    help="few timed iterations (development only)")
    ap.add_argument("--json", help="write all results to this file")
    ap.add_argument("--impls", default="scorch,torch,openblas",
                    help="subset of scorch,torch,openblas")
    ap.add_argument("--scorch", default=os.path.join(ROOT, "bin", "scorch"),
                    help="scorch executable (default bin/scorch)")
    ap.add_argument("--tries", type=int, default=3)
    ap.add_argument("--torch-runs", type=int, default=2,
                    help="processes per PyTorch configuration; the fastest is kept")
    ap.add_argument("--scorch-runs", type=int, default=2,
                    help="scorch processes per case, the first before PyTorch's and the "
                         "rest after them; the fastest is kept")
    ap.add_argument("--timeout", type=float, default=1800.0,
                    help="seconds before a child is killed")
    ap.add_argument("--wait-quiet", type=float, default=120.0,
                    help="before each run, wait up to this many seconds for other "
                         "processes to use <= 0.1 core (0: don't wait)")
    ap.add_argument("--force-avx512", action="store_true",
                    help="set ATEN_CPU_CAPABILITY=avx512 even if the CPU lacks avx512f")
    ap.add_argument("--beside-busy", type=int, default=None, metavar="N",
                    help="contention mode: N busy processes beside each scorch run "
                         "(auto policy against sleep-only waiting; scorch only)")
    ap.add_argument("--baseline-scorch", default=None,
                    help="with --beside-busy: another scorch build to run with its "
                         "default and with OMP_WAIT_POLICY=PASSIVE")
    args = ap.parse_args()
    if args.beside_busy is not None and args.workloads == ap.get_default("workloads"):
        args.workloads = "NCSN,W3"

    cases = []
    for w in args.workloads.split(","):
        w = w.strip()
        if not w:
            continue
        if w in WORKLOAD_CASES:
            cases += WORKLOAD_CASES[w]
        elif w in CASE_NAMES:
            cases.append(w)
        else:
            ap.error("unknown workload %r" % w)
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    impls = set(x.strip() for x in args.impls.split(","))
    if args.beside_busy is not None:
        return contention_main(args, cases, threads)
    if "NCSN" in cases:
        ap.error("NCSN has no PyTorch twin: run it with --beside-busy N (0 for a quiet machine)")

    meta = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": platform.node(),
        "cpu": cpu_model(),
        "nproc": os.cpu_count(),
        "loadavg": open("/proc/loadavg").read().split()[:3],
        "quick": args.quick,
    }
    try:
        meta["git"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                     capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    torch_ok = check_blas(meta) if "torch" in impls else False
    has_avx512 = cpu_has_avx512()
    use_avx512 = has_avx512 or args.force_avx512
    if not has_avx512:
        log("note: this CPU has no avx512f; the second torch config uses "
            "OMP_WAIT_POLICY=PASSIVE only%s." % (
                " (ATEN_CPU_CAPABILITY=avx512 forced anyway)" if args.force_avx512
                else " (ATEN_CPU_CAPABILITY=avx512 would select kernels this CPU cannot run)"))
    meta["cpu_avx512"] = has_avx512
    torch_configs = [("default", {})]
    passive = {"OMP_WAIT_POLICY": "PASSIVE"}
    if use_avx512:
        passive["ATEN_CPU_CAPABILITY"] = "avx512"
    torch_configs.append(("passive+avx512" if use_avx512 else "passive", passive))
    # OPENBLAS_CORETYPE in the environment may name pre-AVX-512 kernels (this
    # project's machines set Haswell, half the sgemm rate of the AVX-512 ones
    # on a Zen 5 core).  PyTorch's matrix products go through OpenBLAS, so
    # for "PyTorch at its fastest" it is also run with OpenBLAS's AVX-512
    # kernels.  scorch keeps the environment's setting, which on such a CPU
    # only its float64 products and gemv calls see (its float32 products
    # are its own, csrc/core/gemm512.c).
    blas_core = os.environ.get("OPENBLAS_CORETYPE")
    if has_avx512 and blas_core is not None and blas_core.upper() not in AVX512_BLAS_CORES:
        torch_configs.append(("passive+avx512+blas-skylakex", dict(passive, OPENBLAS_CORETYPE="SKYLAKEX")))
        log("note: OPENBLAS_CORETYPE=%s here; torch also runs with OPENBLAS_CORETYPE=SKYLAKEX "
            "and the faster torch is kept" % blas_core)
    meta["openblas_coretype"] = blas_core

    if any(c.startswith("W7") for c in cases) and not os.path.exists(W7_FILE):
        # the U-Net's initial weights, which both sides load (written once, seed 0)
        log("writing build/bench/w7_unet.safetensors (W7's shared weights) with " + args.scorch)
        r = subprocess.run([args.scorch, SCORCH_SCRIPT, "--workload", "make-w7-weights"], cwd=ROOT,
                           capture_output=True, text=True)
        if r.returncode != 0:
            warn("cannot write %s: %s" % (W7_FILE, (r.stderr.strip() or "?").splitlines()[-1]))

    sgemm_err = None
    if "W8" in cases:
        # the fixed feature file both sides read (written once, seeded)
        if not os.path.exists(os.path.join(ROOT, "build", "bench", "w8_features.safetensors")):
            log("writing build/bench/w8_features.safetensors (W8's fixed features)")
            subprocess.run([TORCH_PY, TORCH_SCRIPT, "--workload", "make-w8-data"], cwd=ROOT, check=True)

    base_env = dict(os.environ)
    for k in ("OMP_WAIT_POLICY", "ATEN_CPU_CAPABILITY", "OMP_NUM_THREADS",
              "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "GOMP_SPINCOUNT"):
        base_env.pop(k, None)

    # the machine's sgemm peak, once, before anything else: printed at the
    # top and beside every table; too low a peak refuses every ratio
    machine = measure_peaks(threads, args, base_env)
    sgemm_err = machine["error"]
    meta["machine"] = {k: v for k, v in machine.items() if k != "runs"}
    sys.stdout.write(machine_line(machine) + "\n")
    sys.stdout.flush()

    quick = ["--quick"] if args.quick else []
    runs = list(machine["runs"])
    rows = []
    blas_warned = False
    for case in cases:
        for n in threads:
            env = dict(base_env, OMP_NUM_THREADS=str(n), OPENBLAS_NUM_THREADS=str(n),
                       MKL_NUM_THREADS=str(n))
            log("%s (%s), %d thread%s" % (case, CASE_NAMES[case], n, "" if n == 1 else "s"))
            row = {"case": case, "threads": n}

            def scorch_run():
                """One scorch process; the fastest of them is kept in row."""
                if os.path.exists(args.scorch):
                    cmd = [args.scorch, SCORCH_SCRIPT, "--workload", case,
                           "--threads", str(n)] + quick
                    rec = run_checked("scorch", cmd, env, args.tries, args.timeout, args.wait_quiet)
                else:
                    rec = {"error": "%s not found" % os.path.relpath(args.scorch, ROOT)}
                    log("  %-34s ERROR %s" % ("scorch", rec["error"]))
                rec.update(impl="scorch", case=case, threads=n)
                rec["cpu_use"] = cpu_use(rec, n)
                if rec["cpu_use"] is not None and rec["cpu_use"] > 1.05:
                    log("  %-34s FLAG cpu time / (threads x wall) = %.3f > 1.05"
                        % ("scorch", rec["cpu_use"]))
                runs.append(rec)
                old = row.get("scorch")
                if old is None or (metric(case, rec) is not None and (
                        metric(case, old) is None or metric(case, rec) < metric(case, old))):
                    row["scorch"] = rec

            # scorch's processes go on either side of PyTorch's, so a change
            # in the shared host's speed during the case reaches both sides;
            # like each PyTorch configuration, scorch keeps its fastest
            scorch_after = 0
            if "scorch" in impls:
                scorch_run()
                scorch_after = args.scorch_runs - 1

            if "torch" in impls:
                best = None
                # each configuration in several processes: PyTorch's time for
                # one process can land in a slow mode (W10 at 1 thread: 47.6
                # and 71.5 ms in two runs in a row), and the target is
                # against PyTorch at its fastest
                for cname, cenv in [c for c in torch_configs for _ in range(args.torch_runs)]:
                    if not torch_ok:
                        rec = {"error": "torch not importable with %s" % TORCH_PY}
                        log("  %-34s ERROR %s" % ("torch " + cname, rec["error"]))
                    else:
                        cmd = [TORCH_PY, TORCH_SCRIPT, "--workload", case,
                               "--threads", str(n)] + quick
                        rec = run_checked("torch " + cname, cmd, dict(env, **cenv),
                                          args.tries, args.timeout, args.wait_quiet)
                    rec.update(impl="torch", config=cname, case=case, threads=n)
                    runs.append(rec)
                    if "result" in rec:
                        libs = rec["result"].get("blas_libs", [])
                        if not any("openblas" in l for l in libs) and not blas_warned:
                            warn("torch did not load OpenBLAS (loaded BLAS: %s)" % (libs or "none"))
                            blas_warned = True
                    if metric(case, rec) is not None and (
                            best is None or metric(case, rec) < metric(case, best)):
                        best = rec
                row["torch"] = best
                row["torch_all"] = [r for r in runs if r.get("impl") == "torch"
                                    and r["case"] == case and r["threads"] == n]

            for _ in range(scorch_after):
                scorch_run()

            if "openblas" in impls and case.startswith("W6"):
                if sgemm_err:
                    rec = {"error": sgemm_err}
                else:
                    cmd = [SGEMM_BIN, "--n", case.split("_")[1], "--threads", str(n)] + quick
                    rec = run_checked("openblas", cmd, env, args.tries, args.timeout, args.wait_quiet)
                rec.update(impl="openblas", case=case, threads=n)
                runs.append(rec)
                row["openblas"] = rec
            rows.append(row)

    summary = report(rows, machine)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "runs": runs, "summary": summary}, f, indent=1)
        log("wrote " + args.json)


def report(rows, machine):
    summary = []
    refused = machine["refused"]
    peaks = machine["peaks"]
    hdr = ["workload", "thr", "scorch", "torch", "torch cfg", "ratio s/t",
           "target", "pass", "RSS scorch", "RSS torch", "notes"]
    table = []
    for row in rows:
        case, n = row["case"], row["threads"]
        s, t, o = row.get("scorch"), row.get("torch"), row.get("openblas")
        sm, tm = metric(case, s), metric(case, t)
        ratio = sm / tm if sm is not None and tm is not None else None
        notes = []
        for name, rec in (("scorch", s), ("torch", t), ("openblas", o)):
            if rec and "error" in rec:
                notes.append("%s error: %s" % (name, rec["error"][:120]))
            if rec and rec.get("noisy"):
                notes.append("%s noisy (%.2f cores)" % (name, rec["others_cores"]))
        if "torch" in row and t is None:
            errs = [r.get("error", "") for r in row.get("torch_all", [])]
            notes.append("torch error: %s" % (errs[0][:120] if errs else "?"))
        s_gf = s["result"].get("gflops") if s and "result" in s else None
        o_gf = o["result"].get("gflops") if o and "result" in o else None
        t_gf = t["result"].get("gflops") if t and "result" in t else None
        tgt = target_for(case, n)
        kind, tv = tgt if tgt else ("le", None)
        if kind == "le":
            target_val = ratio
            target_s = "-" if tv is None else "<= %s" % tv
        else:
            target_val = s_gf / o_gf if s_gf and o_gf else None
            target_s = ">= %.2f BLAS" % tv
        passed = None
        if target_val is not None and tv is not None:
            passed = target_val <= tv if kind == "le" else target_val >= tv
        if refused:
            ratio = target_val = passed = None
        ent = {"case": case, "threads": n,
               "scorch_s": sm, "torch_s": tm, "ratio": ratio,
               "torch_config": t.get("config") if t else None,
               "target": target_s, "target_value": target_val, "pass": passed,
               "refused": refused,
               "sgemm_peak_gflops": peaks.get(n),
               "scorch_rss_kb": s["result"].get("peak_rss_kb") if s and "result" in s else None,
               "torch_rss_kb": t["result"].get("peak_rss_kb") if t and "result" in t else None,
               "scorch_noisy": bool(s and s.get("noisy")),
               "torch_noisy": bool(t and t.get("noisy")),
               "notes": notes}
        if case.startswith("W5"):
            ent["metric"] = "min over repeats, per 10,000 chains"
            ent["scorch_us_per_chain"] = None if sm is None else sm / 10000 * 1e6
            ent["torch_us_per_chain"] = None if tm is None else tm / 10000 * 1e6
        else:
            ent["metric"] = "median"
        if case.startswith("W6"):
            ent.update(scorch_gflops=s_gf, openblas_gflops=o_gf, torch_gflops=t_gf,
                       ratio_vs_openblas=target_val,
                       openblas_rss_kb=o["result"].get("peak_rss_kb") if o and "result" in o else None)
        if case == "W3":
            ent["scorch_gflops"] = w3_gflop() / sm if sm else None
            ent["torch_gflops"] = w3_gflop() / tm if tm else None
        if case in RSS_TARGETS:
            sr, tr = ent["scorch_rss_kb"], ent["torch_rss_kb"]
            ent["rss_ratio"] = sr / tr if sr and tr else None
            ent["rss_target"] = "<= %s" % RSS_TARGETS[case]
            ent["rss_pass"] = None if ent["rss_ratio"] is None else ent["rss_ratio"] <= RSS_TARGETS[case]
        summary.append(ent)
        if refused:
            ratio_s, target_col, pass_s = "refused", target_s, refused_text(machine)
        else:
            ratio_s = "-" if ratio is None else "%.3f" % ratio
            target_col = target_s if kind == "le" else target_s + (
                "" if target_val is None else " (%.3f)" % target_val)
            pass_s = "-" if passed is None else ("PASS" if passed else "FAIL")
        table.append([case, str(n), show_metric(case, sm),
                      show_metric(case, tm), ent["torch_config"] or "-",
                      ratio_s, target_col, pass_s,
                      fmt_mb(ent["scorch_rss_kb"]), fmt_mb(ent["torch_rss_kb"]),
                      "; ".join(notes)])

    peak_s = machine_line(machine)
    widths = [max(len(hdr[i]), *(len(r[i]) for r in table)) if table else len(hdr[i])
              for i in range(len(hdr))]
    out = sys.stdout
    out.write("\n" + peak_s + "\n")
    out.write("  ".join(pad(h, w) for h, w in zip(hdr, widths)).rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for r in table:
        out.write("  ".join(pad(c, w) for c, w in zip(r, widths)).rstrip() + "\n")
    out.write("(W5: min over repeats in microseconds per chain y = (a*b + c):tanh(); "
              "others: median time per iteration. ratio = scorch / best torch.)\n")

    f1 = lambda v: "-" if v is None else "%.1f" % v
    w6 = [e for e in summary if e["case"].startswith("W6")]
    if w6:
        out.write("\nW6 sgemm GFLOP/s (2n^3 / median)\n" + peak_s + "\n")
        out.write("%-8s %-4s %10s %10s %10s %14s\n" % ("case", "thr", "scorch", "openblas",
                                                      "torch", "scorch/openblas"))
        for e in w6:
            out.write("%-8s %-4d %10s %10s %10s %14s\n" % (
                e["case"], e["threads"], f1(e["scorch_gflops"]), f1(e["openblas_gflops"]),
                f1(e["torch_gflops"]),
                "refused" if refused else
                "-" if e["ratio_vs_openblas"] is None else "%.3f" % e["ratio_vs_openblas"]))

    w3 = [e for e in summary if e["case"] == "W3" and e.get("sgemm_peak_gflops")]
    if w3:
        out.write("\nW3 convolution arithmetic: %.2f GFLOP per step; GFLOP/s and fraction of the "
                  "sgemm peak (OpenBLAS, n = 1024)\n%s\n" % (w3_gflop(), peak_s))
        out.write("(the direct convolutions' count: scorch runs its float32 3x3 stride-1 convolutions "
                  "by Winograd's F(4x2, 3x3) or F(2x2, 3x3), 3 or 4 multiply-adds per output and "
                  "channel pair where the count has 9, so its rate here can pass the sgemm peak)\n")
        out.write("%-4s %10s %10s %10s %12s %12s\n" % ("thr", "peak", "scorch", "torch",
                                                      "scorch/peak", "torch/peak"))
        for e in w3:
            pk = e["sgemm_peak_gflops"]
            g = lambda v: "-" if v is None else "%.3f" % (v / pk)
            sr, tr = e["scorch_gflops"], e["torch_gflops"]
            out.write("%-4d %10.1f %10s %10s %12s %12s\n" % (e["threads"], pk, f1(sr), f1(tr), g(sr), g(tr)))

    w8 = [e for e in summary if e["case"] in ("W8", "W10")]
    if w8:
        out.write("\nW8/W10: the machine's sgemm peak (measured at the start) and the peak RSS of each side\n"
                  + peak_s + "\n")
        for e in w8:
            out.write("%-4s %-4d peak %s GFLOP/s  RSS scorch %s  torch %s\n" % (
                e["case"], e["threads"], f1(e.get("sgemm_peak_gflops")),
                fmt_mb(e["scorch_rss_kb"]), fmt_mb(e["torch_rss_kb"])))

    w7 = [e for e in summary if e["case"] in RSS_TARGETS]
    if w7:
        out.write("\nW7 peak RSS (VmHWM of each process): scorch / torch\n" + peak_s + "\n")
        out.write("%-5s %-4s %12s %12s %10s %8s %6s\n" % ("case", "thr", "RSS scorch", "RSS torch",
                                                         "ratio", "target", "pass"))
        for e in w7:
            out.write("%-5s %-4d %12s %12s %10s %8s %6s\n" % (
                e["case"], e["threads"], fmt_mb(e["scorch_rss_kb"]), fmt_mb(e["torch_rss_kb"]),
                "-" if e["rss_ratio"] is None else "%.3f" % e["rss_ratio"], e["rss_target"],
                "-" if e["rss_pass"] is None else ("PASS" if e["rss_pass"] else "FAIL")))

    out.write("\ntargets (scorch / torch): " + targets_text() + "\n")
    parts = []
    for e in summary:
        v = e["target_value"]
        if e["refused"]:
            parts.append("%s@%dt %s" % (e["case"], e["threads"], refused_text(machine)))
        else:
            parts.append("%s@%dt %s %s %s" % (
                e["case"], e["threads"], "-" if v is None else "%.3f" % v, e["target"],
                "n/a" if e["pass"] is None else ("PASS" if e["pass"] else "FAIL")))
        if "rss_ratio" in e:
            r = e["rss_ratio"]
            parts.append("%s@%dt RSS %s %s %s" % (
                e["case"], e["threads"], "-" if r is None else "%.3f" % r, e["rss_target"],
                "n/a" if e["rss_pass"] is None else ("PASS" if e["rss_pass"] else "FAIL")))
    out.write("results: " + " | ".join(parts) + "\n")
    out.flush()
    return summary


if __name__ == "__main__":
    main()
