#!/usr/bin/python3
"""Data-parallel scaling of W3 (unet28_train_step) and W7t (the
Fashion-MNIST DDPM U-Net's training step) at a fixed global batch, and the
same against PyTorch DDP with gloo (stdlib only).

    /usr/bin/python3 bench/dist/run.py [--workloads W3,W7t] [--steps 20] [--warmup 3]
        [--json out.json] [--scorch bin/scorch] [--no-torch] [--wait-quiet 120]
        [--run-timeout 600] [--rounds 3]

Runs, per workload: scorch on 1 rank (no mpirun), on 2 ranks
(`mpirun -np 2`), and on 1 rank with half the batch (what a rank of the
2-rank run does, with the machine to itself), one thread per rank
(bench/dist/w3_dist.lua), the three in turn for --rounds rounds, then torch DDP/gloo on 1 and 2 ranks
(bench/dist/ddp_w3.py).  The host's speed drifts over minutes, and a
1-rank run in a slow minute beside a 2-rank run in a fast one has shown
a "speedup" of 2.44: so each round's pair gives a speedup of its own, and
the figures reported are the fastest median of each side over the rounds
(as bench/run.py keeps the fastest process) with every round's pair
beside them.  Prints each result, the speedups, scorch's all-reduce share
of a step (its own cost, after a barrier) and the time it waited for the
slower rank, and the scorch/DDP ratio.  Each run also reports how busy the rest of the machine
was meanwhile (other processes' CPU, in cores, from /proc/stat minus the
run's own CPU): above ~0.1 the figures are not those of a quiet machine.
"""
import argparse
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def busy_jiffies():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v[:8]) - idle


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def mpirun(np):
    out = subprocess.run(["mpirun", "--version"], capture_output=True, text=True).stdout
    cmd = ["mpirun", "-np", str(np)]
    if "Open MPI" in out or "OpenRTE" in out:
        cmd += ["--oversubscribe", "-x", "LUA_PATH", "-x", "LUA_CPATH"]
        if os.geteuid() == 0:
            cmd.append("--allow-run-as-root")
    return cmd


def wait_quiet(limit):
    """Waits up to `limit` seconds for other processes to use < 0.1 core
    (over 1 s windows); returns the last window's load."""
    hz = os.sysconf("SC_CLK_TCK")
    t_end = time.time() + limit
    while True:
        j0 = busy_jiffies()
        time.sleep(1.0)
        load = (busy_jiffies() - j0) / hz
        if load < 0.1 or time.time() > t_end:
            return load


def run_once(cmd, env, timeout):
    """(returncode, stdout, stderr), or None when the run outlived timeout:
    then its whole process group (mpirun's ranks, torch's spawned workers)
    is killed, so nothing is left spinning."""
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=ROOT, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
        return p.returncode, out, err
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.communicate()
        return None


def run(cmd, env, quiet=0, timeout=900, tries=2):
    """One benchmark process.  A run that hangs (PyTorch's gloo rendezvous
    has been seen to spin forever on this machine) is killed after timeout
    seconds and started again, up to tries times in all."""
    for attempt in range(tries):
        if quiet > 0:
            wait_quiet(quiet)
        hz = os.sysconf("SC_CLK_TCK")
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        j0, t0 = busy_jiffies(), time.time()
        got = run_once(cmd, env, timeout)
        wall = time.time() - t0
        j1 = busy_jiffies()
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if got is not None:
            break
        print("timed out after %.0f s, killed (attempt %d of %d): %s"
              % (timeout, attempt + 1, tries, " ".join(cmd)), flush=True)
    else:
        sys.exit("failed: every attempt timed out: %s" % " ".join(cmd))
    code, stdout, stderr = got
    if code != 0:
        sys.exit("failed: %s\n%s%s" % (" ".join(cmd), stdout, stderr))
    line = [l for l in stdout.splitlines() if l.startswith("{")][-1]
    res = json.loads(line)
    own = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    res["other_load_cores"] = round(max(0.0, (j1 - j0) / hz - own) / wall, 3)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workloads", default="W3,W7t", help="comma list of W3, W7t")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--scorch", default=os.path.join(ROOT, "bin", "scorch"))
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternating 1-rank / 2-rank scorch runs per workload (fastest of each kept)")
    ap.add_argument("--json")
    ap.add_argument("--run-timeout", type=float, default=600,
                    help="kill a benchmark process (and its ranks) that runs longer, then retry it once")
    ap.add_argument("--wait-quiet", type=float, default=120,
                    help="before each run, wait up to this many seconds for the machine to be quiet")
    args = ap.parse_args()
    if args.rounds < 1:
        sys.exit("--rounds must be at least 1")
    workloads = [w for w in args.workloads.split(",") if w]
    for w in workloads:
        if w not in ("W3", "W7t"):
            sys.exit("unknown workload %s (W3, W7t)" % w)
    env = dict(os.environ)
    env.setdefault("LUA_PATH", "%s/lua/?.lua;%s/lua/?/init.lua;;" % (ROOT, ROOT))
    env.setdefault("LUA_CPATH", "%s/lib/?.so;;" % ROOT)
    env["OMP_NUM_THREADS"] = "1"
    if "W7t" in workloads and not os.path.exists(os.path.join(ROOT, "build", "bench", "w7_unet.safetensors")):
        subprocess.run([args.scorch, os.path.join(ROOT, "bench", "scorch", "workloads.lua"),
                        "--workload", "make-w7-weights"], env=env, cwd=ROOT, check=True)
    script = os.path.join(ROOT, "bench", "dist", "w3_dist.lua")
    results = {"cpu": cpu_model(), "cores": os.cpu_count()}
    for w in workloads:
        common = ["--steps", str(args.steps), "--warmup", str(args.warmup)]
        r = results[w] = {}
        pairs = []
        for k in range(args.rounds):
            one = run([args.scorch, script, "--workload", w] + common, env, args.wait_quiet, args.run_timeout)
            print(json.dumps(dict(one, workload=w, round=k + 1)), flush=True)
            two = run(mpirun(2) + [args.scorch, script, "--workload", w] + common, env, args.wait_quiet,
                      args.run_timeout)
            print(json.dumps(dict(two, workload=w, round=k + 1)), flush=True)
            # one rank alone on a rank's share of the batch: what a rank of
            # the 2-rank run would take with the machine to itself
            half = run([args.scorch, script, "--workload", w, "--batch", str(one["global_batch"] // 2)] + common, env,
                       args.wait_quiet, args.run_timeout)
            print(json.dumps(dict(half, workload=w, round=k + 1, alone_on_half_batch=True)), flush=True)
            pairs.append((one, two, half))
        r["scorch_1"] = min((p[0] for p in pairs), key=lambda v: v["median_s"])
        r["scorch_2"] = min((p[1] for p in pairs), key=lambda v: v["median_s"])
        r["scorch_half"] = min((p[2] for p in pairs), key=lambda v: v["median_s"])
        r["rounds"] = [{"speedup": a["median_s"] / b["median_s"],
                        "allreduce_share": b["allreduce_s_per_step"] / b["median_s"],
                        "wait_share": b.get("wait_s_per_step", 0.0) / b["median_s"],
                        # 2 x (half batch alone) / full batch: what the smaller batch costs
                        "half_batch_cost": 2 * h["median_s"] / a["median_s"],
                        # a rank's compute beside the other rank / the same alone
                        "side_by_side_cost": (b["median_s"] - b["allreduce_s_per_step"]
                                              - b.get("wait_s_per_step", 0.0)) / h["median_s"]}
                       for a, b, h in pairs]
        if not args.no_torch:
            ddp = ["/usr/bin/python3", os.path.join(ROOT, "bench", "dist", "ddp_w3.py"),
                   "--workload", w] + common
            r["torch_1"] = run(ddp + ["--ranks", "1"], env, args.wait_quiet, args.run_timeout)
            print(json.dumps(dict(r["torch_1"], workload=w)), flush=True)
            r["torch_2"] = run(ddp + ["--ranks", "2"], env, args.wait_quiet, args.run_timeout)
            print(json.dumps(dict(r["torch_2"], workload=w)), flush=True)
    print("CPU: %s (%d cores)" % (results["cpu"], results["cores"]))
    for w in workloads:
        r = results[w]
        s1, s2 = r["scorch_1"], r["scorch_2"]
        print("scorch %s, global batch %d: 1 rank %.1f ms, 2 ranks %.1f ms per step: speedup %.2fx (target >= 1.8)"
              % (w, s1["global_batch"], 1e3 * s1["median_s"], 1e3 * s2["median_s"], s1["median_s"] / s2["median_s"]))
        print("  each round (1 rank, then 2): speedup %s; all-reduce share %s; waiting for the slower rank %s"
              % (", ".join("%.2fx" % q["speedup"] for q in r["rounds"]),
                 ", ".join("%.1f%%" % (100 * q["allreduce_share"]) for q in r["rounds"]),
                 ", ".join("%.1f%%" % (100 * q["wait_share"]) for q in r["rounds"])))
        print("  where the speedup goes, each round: the half batch on one rank alone costs %s of half the full "
              "batch's step; a rank's compute beside the other rank costs %s of the same alone"
              % (", ".join("%.2fx" % q["half_batch_cost"] for q in r["rounds"]),
                 ", ".join("%.2fx" % q["side_by_side_cost"] for q in r["rounds"])))
        print("  all-reduce: %.3f ms and %d bytes sent per step per rank (%d bytes of gradients, %d bucket(s)): "
              "%.2f%% of a step (target < 10%%)"
              % (1e3 * s2["allreduce_s_per_step"], s2["bytes_sent_per_step"], s2["gradient_bytes"], s2["buckets"],
                 100 * s2["allreduce_s_per_step"] / s2["median_s"]))
        print("  waiting for the slower rank before it (load imbalance, split off by a barrier): %.3f ms, %.2f%% of a step"
              % (1e3 * s2.get("wait_s_per_step", 0.0), 100 * s2.get("wait_s_per_step", 0.0) / s2["median_s"]))
        if not args.no_torch:
            t1, t2 = r["torch_1"], r["torch_2"]
            print("  torch DDP/gloo: 1 rank %.1f ms, 2 ranks %.1f ms per step: speedup %.2fx"
                  % (1e3 * t1["median_s"], 1e3 * t2["median_s"], t1["median_s"] / t2["median_s"]))
            print("  scorch / DDP time per step: 1 rank %.3f, 2 ranks %.3f (target <= 0.7 at 2 ranks)"
                  % (s1["median_s"] / t1["median_s"], s2["median_s"] / t2["median_s"]))
        print("  other processes' load during the runs (cores): %s"
              % ", ".join("%s %.2f" % (k, v["other_load_cores"]) for k, v in r.items() if k != "rounds"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
