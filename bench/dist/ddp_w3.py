#!/usr/bin/python3
"""W3 (unet28_train_step) or W7t (the Fashion-MNIST DDPM U-Net's training
step) under PyTorch DistributedDataParallel with gloo: the counterpart of
bench/dist/w3_dist.lua, same model (bench/torch/unet28.py, or
bench/torch/workloads.py's UNetDDPM with the shared W7 weights), same
global batch split over the ranks, one thread per rank, Adam(lr 2e-4).
Starts its own ranks on this machine:

    /usr/bin/python3 bench/dist/ddp_w3.py --ranks 2 [--workload W3|W7t] [--steps 20] [--warmup 3]

Rank 0 prints one JSON line (median and mean seconds per step, the slowest
rank's time per step).
"""
import argparse
import json
import math
import os
import socket
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

LOG_SIG_MIN = math.log(0.01)
LOG_SIG_MAX = math.log(1.0)


def log_sigma(n):
    return torch.rand(n, 1) * (LOG_SIG_MAX - LOG_SIG_MIN) + LOG_SIG_MIN


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "torch"))
from unet28 import UNet28  # noqa: E402  (the W3 network, as bench/torch/workloads.py builds it)


def worker(rank, size, port, args, queue):
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=size)
    B = args.batch // size
    torch.manual_seed(0)
    if args.workload == "W7t":
        import workloads as W  # noqa: E402  (imported as a module it sets no threads)
        model = torch.nn.parallel.DistributedDataParallel(W.w7_load())
        sqrt_ab, sqrt_1mab = W.w7_sqrt_abar()
    else:
        model = torch.nn.parallel.DistributedDataParallel(UNet28())
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    x0 = (torch.rand(args.batch, 1, 28, 28) * 2.0 - 1.0)[rank * B:(rank + 1) * B].contiguous()
    torch.manual_seed(1 + rank)

    def step_w7t():
        t = torch.randint(1, 1001, (B, 1))
        eps = torch.randn(B, 1, 28, 28)
        a, s = sqrt_ab[t - 1], sqrt_1mab[t - 1]
        xt = x0 * a.view(B, 1, 1, 1) + eps * s.view(B, 1, 1, 1)
        loss = (model(xt, t.float()) - eps).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    def step_w3():
        ls = log_sigma(B)
        sig = torch.exp(ls)
        sig4 = sig.view(B, 1, 1, 1)
        z = torch.randn(B, 1, 28, 28)
        xt = x0 + sig4 * z
        s = model(xt, ls)
        r = s + z / sig4
        loss = ((r * r).view(B, 784).sum(1, keepdim=True) * (sig * sig * 0.5)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    step = step_w7t if args.workload == "W7t" else step_w3
    for _ in range(args.warmup):
        step()
    dist.barrier()
    times = []
    t_all = time.perf_counter()
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    t_all = time.perf_counter() - t_all
    mine = torch.tensor(times, dtype=torch.float64)
    dist.all_reduce(mine, op=dist.ReduceOp.MAX)
    if rank == 0:
        ts = sorted(mine.tolist())
        queue.put({"impl": "torch-ddp-gloo", "torch": torch.__version__, "ranks": size, "threads": 1,
                   "global_batch": args.batch, "steps": args.steps,
                   "median_s": ts[(len(ts) - 1) // 2], "mean_s": t_all / args.steps})
    dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workload", choices=["W3", "W7t"], default="W3")
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=worker, args=(r, args.ranks, port, args, queue)) for r in range(args.ranks)]
    for p in procs:
        p.start()
    result = queue.get(timeout=600)
    for p in procs:
        p.join()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
