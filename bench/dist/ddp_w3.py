#!/usr/bin/python3
"""W3 (unet28_train_step) under PyTorch DistributedDataParallel with gloo:
the counterpart of bench/dist/w3_dist.lua, same model (copied from
bench/torch/workloads.py), same global batch split over the ranks, one
thread per rank, Adam(lr 2e-4).  Starts its own ranks on this machine:

    /usr/bin/python3 bench/dist/ddp_w3.py --ranks 2 [--steps 20] [--warmup 3]

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
    model = torch.nn.parallel.DistributedDataParallel(UNet28())
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    x0 = (torch.rand(args.batch, 1, 28, 28) * 2.0 - 1.0)[rank * B:(rank + 1) * B].contiguous()
    torch.manual_seed(1 + rank)

    def step():
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
