#!/usr/bin/python3
"""W7's equivalence check (not a benchmark): scorch's U-Net and its PyTorch
twin in bench/torch/workloads.py, with the same weights
(build/bench/w7_unet.safetensors) on the same inputs, must agree.

    /usr/bin/python3 bench/torch/check_w7.py [--scorch bin/scorch] [--tol 1e-4]

Inputs (seeded NumPy, written to build/bench/w7_check_in.safetensors): 64
noisy images x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε at per-example t in 1..1000 (W7t's
shape; t = 1 and t = 1000 included), and 16 images at the one step t = 500
(W7s's form: the embedding computed once for the batch).  Compared, as
max |scorch − torch| / max |torch|: both outputs, the ε-loss, and the
gradient of the ε-loss for every parameter.  Exits 1 when an output or the
loss differs by more than --tol, or a gradient by more than --grad-tol.
"""
import argparse
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workloads as W  # noqa: E402  (parses no arguments when imported)

torch = W.torch
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCORCH_SCRIPT = os.path.join(ROOT, "bench", "scorch", "workloads.lua")
IN_FILE = os.path.join(ROOT, "build", "bench", "w7_check_in.safetensors")
OUT_FILE = os.path.join(ROOT, "build", "bench", "w7_check_out.safetensors")


def rel_err(a, b):
    a, b = a.double(), b.double()
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-30))


def make_inputs(B=64, Bs=16, t_shared=500):
    rng = np.random.default_rng(0)
    _, _, abar = W.ddpm_schedule(W.W7_T)
    t = rng.integers(1, W.W7_T + 1, B)
    t[0], t[1] = 1, W.W7_T
    ab = np.array([abar[i - 1] for i in t]).reshape(B, 1, 1, 1)
    x0 = rng.uniform(-1.0, 1.0, (B, 1, 28, 28))
    eps = rng.standard_normal((B, 1, 28, 28))
    return {
        "x": (np.sqrt(ab) * x0 + np.sqrt(1.0 - ab) * eps).astype(np.float32),
        "t": t.reshape(B, 1).astype(np.float32),
        "eps": eps.astype(np.float32),
        "xs": rng.standard_normal((Bs, 1, 28, 28)).astype(np.float32),
        "ts": np.array([t_shared], dtype=np.float32),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scorch", default=os.path.join(ROOT, "bin", "scorch"))
    ap.add_argument("--tol", type=float, default=1e-4, help="outputs and loss")
    ap.add_argument("--grad-tol", type=float, default=1e-4, help="each parameter's gradient")
    args = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    torch.set_num_threads(1)

    if not os.path.exists(W.W7_FILE):
        subprocess.run([args.scorch, SCORCH_SCRIPT, "--workload", "make-w7-weights"],
                       cwd=ROOT, env=env, check=True)
    inp = make_inputs()
    W.write_safetensors(IN_FILE, inp)
    subprocess.run([args.scorch, SCORCH_SCRIPT, "--workload", "w7-forward", "--threads", "1",
                    "--in", IN_FILE, "--out", OUT_FILE], cwd=ROOT, env=env, check=True)
    sc_res = W.read_safetensors(OUT_FILE)

    net = W.w7_load()
    x = {k: torch.from_numpy(v) for k, v in inp.items()}
    out = net(x["x"], x["t"])
    loss = (out - x["eps"]).square().mean()
    loss.backward()
    with torch.no_grad():
        out_shared = net(x["xs"], x["ts"].view(1, 1))

    rows = [("output, per-example t (64)", rel_err(sc_res["out"], out), args.tol),
            ("output, shared t = 500 (16)", rel_err(sc_res["out_shared"], out_shared), args.tol),
            ("eps-loss %.6f" % loss.item(), rel_err(sc_res["loss"], loss.detach().view(1)), args.tol)]
    grads = []
    for name, p in net.named_parameters():
        key = "grad." + next(k for k in sc_res_names(sc_res) if W.torch_key(k) == name)
        grads.append((rel_err(sc_res[key], p.grad), name))
    grads.sort(reverse=True)
    n_params = sum(p.numel() for p in net.parameters())
    rows.append(("gradients: worst of %d (%s)" % (len(grads), grads[0][1]), grads[0][0], args.grad_tol))
    rows.append(("gradients: median", grads[len(grads) // 2][0], args.grad_tol))

    print("W7 U-Net, %d parameters, weights %s" % (n_params, os.path.relpath(W.W7_FILE, ROOT)))
    print("max |scorch - torch| / max |torch|:")
    ok = True
    for label, err, tol in rows:
        good = err <= tol
        ok = ok and good
        print("  %-48s %.2e  %s" % (label, err, "ok" if good else "FAIL (> %.0e)" % tol))
    print("W7 equivalence: " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


def sc_res_names(res):
    return [k[len("grad."):] for k in res if k.startswith("grad.")]


if __name__ == "__main__":
    sys.exit(main())
