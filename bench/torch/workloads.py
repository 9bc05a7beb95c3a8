#!/usr/bin/python3
"""PyTorch side of the scorch benchmark workloads (see shared/WORKLOADS.md).

Usage:
    /usr/bin/python3 bench/torch/workloads.py --workload W1 --threads 1 [--quick]

Cases (one process = one case = one JSON line on stdout):
    W1        mlp2d_train_step
    W2        mlp2d_sample_ddpm   (one iteration = all 1000 steps)
    W2b       W2 under torch.autocast("cpu", bfloat16) (scorch: matmul precision "medium")
    W3        unet28_train_step
    W4        ssm_mlp2d_step
    W5        small_ops_overhead, plain inputs        (times are per 10,000 chains)
    W5g       small_ops_overhead, requires_grad inputs
    W6_1024   sgemm 1024x1024 (torch.mm)
    W6_256    sgemm 256x256   (torch.mm)
    W8        eval_fid_pr: FID + precision/recall of 10,000 vs 10,000 x 256
              (run with --make-w8-data once to write build/bench/w8_features.safetensors)
    W10       wgan_gp_step: WGAN-GP critic step (double backward) + generator step
    W7t, W7s  unet_fmnist_ddpm: the Fashion-MNIST DDPM example's U-Net, a training
              step at batch 64 and an ancestral sampling step at batch 250, with the
              weights scorch wrote to build/bench/w7_unet.safetensors

The thread count is put into the environment *before* torch is imported, and
torch.set_num_threads is called as well.  Imported as a module (by
bench/torch/check_w7.py) it parses no arguments and sets no threads.  Every definition here is mirrored
line for line by bench/scorch/workloads.lua; change both or neither.
"""
import argparse
import json
import math
import os
import sys
import time


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--workload", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true",
                   help="development mode: far fewer timed iterations")
    p.add_argument("--min-iters", type=int, default=None)
    p.add_argument("--min-time", type=float, default=None)
    return p.parse_args()


if __name__ == "__main__":
    ARGS = parse_args()
    # Thread counts must be set before torch (and its OpenMP / OpenBLAS) load.
    for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_v] = str(ARGS.threads)
else:
    ARGS = None

import gc  # noqa: E402
import torch  # noqa: E402

if ARGS is not None:
    torch.set_num_threads(ARGS.threads)

# --------------------------------------------------------------------------
# timing rules (identical in bench/scorch/workloads.lua and sgemm_openblas.c)
#   normal: warm-up, then >= 20 iterations AND >= 2 s
#   slow  : (W2, or any workload whose warm-up iteration took >= 1 s)
#           >= 5 iterations OR >= 30 s, whichever comes first
#   --quick: normal >= 3 iterations and >= 0.2 s; slow: 1 iteration
# --------------------------------------------------------------------------
SLOW_WARMUP_S = 1.0


def timing_rule(slow):
    if ARGS.quick:
        rule = (1, 0.0, "or") if slow else (3, 0.2, "and")
    else:
        rule = (5, 30.0, "or") if slow else (20, 2.0, "and")
    n, t, mode = rule
    if ARGS.min_iters is not None:
        n = ARGS.min_iters
    if ARGS.min_time is not None:
        t = ARGS.min_time
    return n, t, mode


def vm_hwm_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def loaded_blas():
    """Shared libraries with 'blas' in their name mapped into this process."""
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and "blas" in parts[-1].lower():
                libs.add(os.path.realpath(parts[-1]))
    return sorted(libs)


def run_bench(name, step, warmup=None, declared_slow=False, extra=None):
    """warmup(): run once untimed (defaults to step). step(): one iteration."""
    gc.collect()
    w0 = time.perf_counter()
    (warmup or step)()
    wt = time.perf_counter() - w0
    slow = declared_slow or wt >= SLOW_WARMUP_S
    n_min, t_min, mode = timing_rule(slow)
    gc.collect()
    times = []
    cpu0 = time.process_time()
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        step()
        t1 = time.perf_counter()
        times.append(t1 - t0)
        elapsed = t1 - start
        if mode == "and":
            if len(times) >= n_min and elapsed >= t_min:
                break
        else:
            if len(times) >= n_min or elapsed >= t_min:
                break
    cpu_s = time.process_time() - cpu0
    srt = sorted(times)
    k = len(srt)
    median = srt[k // 2] if k % 2 else 0.5 * (srt[k // 2 - 1] + srt[k // 2])
    out = {
        "workload": name,
        "impl": "torch",
        "threads": ARGS.threads,
        "median_s": median,
        "min_s": srt[0],
        "iters": k,
        "peak_rss_kb": vm_hwm_kb(),
        "cpu_s": cpu_s,
        "wall_s": time.perf_counter() - start,
        "slow_rule": slow,
        "warmup_s": wt,
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
        "aten_cpu_capability": os.environ.get("ATEN_CPU_CAPABILITY", ""),
        "blas_libs": loaded_blas(),
    }
    try:
        out["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    except Exception:
        pass
    if extra:
        out.update(extra(out))
    print(json.dumps(out), flush=True)


# --------------------------------------------------------------------------
# shared pieces
# --------------------------------------------------------------------------
def mlp(d_in, d_out):
    # PyTorch default init: kaiming_uniform(a=sqrt 5) -> U(-1/sqrt(fan_in), +)
    # for weights, U(-1/sqrt(fan_in), +) for biases.
    nn = torch.nn
    return nn.Sequential(
        nn.Linear(d_in, 128), nn.SiLU(),
        nn.Linear(128, 128), nn.SiLU(),
        nn.Linear(128, 128), nn.SiLU(),
        nn.Linear(128, d_out))


TWO_PI_OVER_8 = 2.0 * math.pi / 8.0
LOG_SIG_MIN = math.log(0.01)
LOG_SIG_MAX = math.log(1.0)


def gauss8(n):
    """centres (2cos(2πk/8), 2sin(2πk/8)), k uniform in 0..7, + 0.05·N(0,I)."""
    k = torch.randint(0, 8, (n,))
    ang = k.float() * TWO_PI_OVER_8
    centres = torch.stack([torch.cos(ang) * 2.0, torch.sin(ang) * 2.0], 1)
    return centres + torch.randn(n, 2) * 0.05


def log_sigma(n):
    """log σ ~ U[log 0.01, log 1), shape (n, 1)."""
    return torch.rand(n, 1) * (LOG_SIG_MAX - LOG_SIG_MIN) + LOG_SIG_MIN


# --------------------------------------------------------------------------
# W1 mlp2d_train_step
# --------------------------------------------------------------------------
def w1():
    torch.manual_seed(0)
    n = 1024
    model = mlp(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        x0 = gauss8(n)
        ls = log_sigma(n)
        sig = torch.exp(ls)
        z = torch.randn(n, 2)
        xt = x0 + sig * z
        s = model(torch.cat([xt, ls], 1))
        r = s + z / sig
        loss = ((r * r).sum(1, keepdim=True) * (sig * sig * 0.5)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    run_bench("W1", step)


# --------------------------------------------------------------------------
# W2 mlp2d_sample_ddpm
# --------------------------------------------------------------------------
W2_T = 1000


def ddpm_schedule(T):
    """β linear 1e-4…0.02 (float64 on the host, as in the Lua version)."""
    betas, alphas, abar = [], [], []
    prod = 1.0
    for i in range(T):
        b = 1e-4 + (0.02 - 1e-4) * i / (T - 1)
        prod *= (1.0 - b)
        betas.append(b)
        alphas.append(1.0 - b)
        abar.append(prod)
    return betas, alphas, abar


def w2(bf16=False):
    """bf16: W2b, the network under torch.autocast("cpu", bfloat16), PyTorch's
    own mixed precision on the CPU (scorch's twin: matmul precision "medium")."""
    torch.manual_seed(0)
    n = 10000
    T = W2_T
    model = mlp(3, 2)
    betas, alphas, abar = ddpm_schedule(T)

    def sample(steps):
        with torch.no_grad():
            x = torch.randn(n, 2)
            for t in range(T, T - steps, -1):      # t = T … 1
                b = betas[t - 1]
                c_eps = b / math.sqrt(1.0 - abar[t - 1])
                inv_sqrt_a = 1.0 / math.sqrt(alphas[t - 1])
                tt = torch.full((n, 1), t / T)
                if bf16:
                    with torch.autocast("cpu", dtype=torch.bfloat16):
                        eps = model(torch.cat([x, tt], 1))
                else:
                    eps = model(torch.cat([x, tt], 1))
                x = (x - eps * c_eps) * inv_sqrt_a
                if t > 1:
                    x = x + torch.randn(n, 2) * math.sqrt(b)
        return x

    # warm-up: the first 100 of the 1000 steps (a full iteration is ~15 s)
    if bf16:
        # One float32 forward at full size first.  Without it, autocast's
        # steps run 4-5x slower (about 28 against 5.8 ms at one thread
        # here): its bfloat16 activations (2.5 MB) stay above glibc's mmap
        # threshold, so every one is a fresh mmap and its page faults, until
        # a larger block freed raises that threshold.  PyTorch at its best
        # is the raised one.
        with torch.no_grad():
            model(torch.zeros(n, 3))
    run_bench("W2b" if bf16 else "W2", lambda: sample(T), warmup=lambda: sample(100),
              declared_slow=True)


# --------------------------------------------------------------------------
# W3 unet28_train_step
# --------------------------------------------------------------------------
from unet28 import UNet28  # noqa: E402  (the network, shared with bench/dist/ddp_w3.py)


def w3():
    torch.manual_seed(0)
    B = 64
    model = UNet28()
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    x0 = torch.rand(B, 1, 28, 28) * 2.0 - 1.0          # fixed, U[-1, 1)

    def step():
        ls = log_sigma(B)
        sig = torch.exp(ls)
        sig4 = sig.view(B, 1, 1, 1)
        z = torch.randn(B, 1, 28, 28)
        xt = x0 + sig4 * z
        s = model(xt, ls)
        r = s + z / sig4
        loss = ((r * r).view(B, 784).sum(1, keepdim=True)
                * (sig * sig * 0.5)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    run_bench("W3", step)


# --------------------------------------------------------------------------
# W4 ssm_mlp2d_step (sliced score matching, double backward)
# --------------------------------------------------------------------------
def w4():
    torch.manual_seed(0)
    n = 1024
    model = mlp(2, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        x = gauss8(n).requires_grad_(True)
        v = torch.randn(n, 2)
        s = model(x)
        sv = (s * v).sum(1, keepdim=True)
        g = torch.autograd.grad([sv.sum()], [x], create_graph=True)[0]
        loss = ((g * v).sum(1, keepdim=True) + sv * sv * 0.5).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    run_bench("W4", step)


# --------------------------------------------------------------------------
# W5 small_ops_overhead: one iteration = 10,000 chains
# --------------------------------------------------------------------------
W5_CHAINS = 10000


def w5(requires_grad):
    torch.manual_seed(0)
    a = torch.randn(16).requires_grad_(requires_grad)
    b = torch.randn(16).requires_grad_(requires_grad)
    c = torch.randn(16).requires_grad_(requires_grad)

    def step():
        y = None
        for _ in range(W5_CHAINS):
            y = (a * b + c).tanh()
        return y

    def extra(out):
        return {"chains_per_iter": W5_CHAINS,
                "us_per_chain_min": out["min_s"] / W5_CHAINS * 1e6,
                "us_per_chain_median": out["median_s"] / W5_CHAINS * 1e6}

    run_bench("W5g" if requires_grad else "W5", step, extra=extra)


# --------------------------------------------------------------------------
# W6 sgemm
# --------------------------------------------------------------------------
def w6(n):
    torch.manual_seed(0)
    a = torch.randn(n, n)
    b = torch.randn(n, n)

    def step():
        return torch.mm(a, b)

    def extra(out):
        return {"n": n, "gflops": 2.0 * n ** 3 / out["median_s"] / 1e9,
                "gflops_best": 2.0 * n ** 3 / out["min_s"] / 1e9}

    run_bench("W6_%d" % n, step, extra=extra)


# --------------------------------------------------------------------------
# W8 eval_fid_pr: FID + improved precision/recall, 10,000 vs 10,000 x 256
# --------------------------------------------------------------------------
W8_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "build", "bench", "w8_features.safetensors")


def write_safetensors(path, tensors):
    """Writes {name: float32 NumPy array} as safetensors (8-byte little-endian
    header length, JSON header, raw little-endian data), atomically."""
    header, off = {}, 0
    for k, v in tensors.items():
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + v.nbytes]}
        off += v.nbytes
    hb = json.dumps(header).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(len(hb).to_bytes(8, "little"))
        f.write(hb)
        for v in tensors.values():
            f.write(v.astype("<f4", copy=False).tobytes())
    os.replace(tmp, path)


SAFETENSORS_DTYPES = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "I32": "<i4", "U8": "u1"}


def read_safetensors(path):
    """{name: torch tensor} of a safetensors file (no `safetensors` package
    here: the format is parsed by hand; __metadata__ is skipped)."""
    import numpy as np
    with open(path, "rb") as f:
        hlen = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(hlen))
        data = f.read()
    out = {}
    for k, h in header.items():
        if k == "__metadata__":
            continue
        a, b = h["data_offsets"]
        arr = np.frombuffer(data[a:b], dtype=SAFETENSORS_DTYPES[h["dtype"]]).reshape(h["shape"])
        out[k] = torch.from_numpy(arr.copy())
    return out


def make_w8_features(path=W8_FILE, n=10000, d=256):
    """The fixed feature file both sides read: real = z W + cluster mean,
    fake = the same with a wider spread and moved means (seeded NumPy),
    written as safetensors by hand (float32 tensors "real", "fake")."""
    import numpy as np
    rng = np.random.default_rng(0)
    w = rng.standard_normal((d, d)) / math.sqrt(d)
    centres = rng.standard_normal((10, d)) * 2.0

    def draw(scale, shift):
        z = rng.standard_normal((n, d))
        c = centres[rng.integers(0, 10, n)] + shift
        return np.maximum((z @ w) * scale + c, -0.5).astype(np.float32)

    write_safetensors(path, {"real": draw(1.0, 0.0), "fake": draw(1.2, 0.1)})


def load_w8_features(path=W8_FILE):
    t = read_safetensors(path)
    return t["real"], t["fake"]


def w8():
    torch.manual_seed(0)
    real, fake = load_w8_features()
    k, block = 3, 1000

    def stats(x):
        xd = x.double()
        mu = xd.mean(0)
        xc = xd - mu
        return mu, xc.T @ xc / (x.shape[0] - 1)

    def fid(m1, c1, m2, c2):
        w, v = torch.linalg.eigh(c1)
        s = (v * w.clamp(min=0).sqrt()) @ v.T          # sigma_1^(1/2)
        ev = torch.linalg.eigvalsh(s @ c2 @ s)
        diff = m1 - m2
        return float(diff @ diff + c1.trace() + c2.trace() - 2 * ev.clamp(min=0).sqrt().sum())

    def radii(x):
        out = []
        for i in range(0, x.shape[0], block):
            d = torch.cdist(x[i:i + block], x)
            out.append(d.topk(k + 1, dim=1, largest=False).values[:, k])   # the point itself is first
        return torch.cat(out)

    def step():
        m1, c1 = stats(real)
        m2, c2 = stats(fake)
        f = fid(m1, c1, m2, c2)
        rr, rf = radii(real), radii(fake)
        fake_in = torch.zeros(fake.shape[0], dtype=torch.bool)
        real_in = torch.zeros(real.shape[0], dtype=torch.bool)
        for i in range(0, fake.shape[0], block):
            d = torch.cdist(fake[i:i + block], real)
            fake_in[i:i + block] = (d <= rr[None, :]).any(1)
            real_in |= (d <= rf[i:i + block, None]).any(0)
        return f, fake_in.double().mean().item(), real_in.double().mean().item()

    def extra(out):
        f, p, r = step()
        return {"fid": f, "precision": p, "recall": r}

    run_bench("W8", step, extra=extra)


# --------------------------------------------------------------------------
# W10 wgan_gp_step: one WGAN-GP critic step (penalty's double backward) and
# one generator step of the DCGAN pair at batch 64
# --------------------------------------------------------------------------
def w10():
    torch.manual_seed(0)
    nn = torch.nn
    B = 64
    G = nn.Sequential(
        nn.Linear(64, 64 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (64, 7, 7)),
        nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(64, 32, 3, padding=1), nn.ReLU(),
        nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(32, 1, 3, padding=1), nn.Tanh())
    D = nn.Sequential(
        nn.Conv2d(1, 32, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 1))
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-4, betas=(0.0, 0.9))
    real = torch.rand(B, 1, 28, 28) * 2.0 - 1.0         # fixed, U[-1, 1)

    def step():
        # critic: D(fake) - D(real) + 10 (||grad D(x_hat)|| - 1)^2
        with torch.no_grad():
            fake = G(torch.randn(B, 64))
        eps = torch.rand(B, 1, 1, 1)
        xh = (real * eps + fake * (1.0 - eps)).requires_grad_(True)
        g = torch.autograd.grad(D(xh).sum(), [xh], create_graph=True)[0]
        norm = ((g * g).reshape(B, -1).sum(1) + 1e-12).sqrt()
        loss_d = D(fake).mean() - D(real).mean() + ((norm - 1.0) ** 2).mean() * 10.0
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        # generator: -D(G(z))
        loss_g = -D(G(torch.randn(B, 64))).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()

    run_bench("W10", step)


# --------------------------------------------------------------------------
# W9 likelihood_steps (see bench/scorch/workloads.lua for the definitions)
# --------------------------------------------------------------------------
class Coupling(torch.nn.Module):
    """Affine coupling on 2-D points: the half selected by parity passes,
    the other is scaled by exp(tanh(h_s)) and shifted by h_t, h = mlp(1, 2)."""

    def __init__(self, parity):
        super().__init__()
        self.parity = parity
        self.net = mlp(1, 2)

    def forward(self, x):
        a, b = x[:, :1], x[:, 1:]
        if self.parity:
            a, b = b, a
        h = self.net(a)
        s = torch.tanh(h[:, :1])
        yb = b * torch.exp(s) + h[:, 1:]
        y = torch.cat([yb, a], 1) if self.parity else torch.cat([a, yb], 1)
        return y, s.sum(1)


def w9f():
    torch.manual_seed(0)
    n = 1024
    layers = torch.nn.ModuleList([Coupling(i % 2) for i in range(8)])
    opt = torch.optim.Adam(layers.parameters(), lr=1e-3)
    log_2pi = math.log(2 * math.pi)

    def step():
        h = gauss8(n)
        logdet = torch.zeros(n)
        for layer in layers:
            h, ld = layer(h)
            logdet = logdet + ld
        log_p = -0.5 * (h * h).sum(1) - log_2pi + logdet
        loss = -log_p.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    run_bench("W9f", step)


W9V_IMAGES, W9V_BATCH = 8192, 128
FASHION_MNIST_TRAIN = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"


def w9v():
    import gzip
    torch.manual_seed(0)
    with gzip.open(FASHION_MNIST_TRAIN, "rb") as f:
        raw = f.read(16 + W9V_IMAGES * 784)[16:]
    images = torch.frombuffer(bytearray(raw), dtype=torch.uint8).float().reshape(W9V_IMAGES, 784) / 255
    nn = torch.nn
    enc = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 64))
    dec = nn.Sequential(nn.Linear(32, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 784))
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=1e-3)
    state = {"i": 0}

    def step():
        i = state["i"]
        x = images[i * W9V_BATCH:(i + 1) * W9V_BATCH]
        state["i"] = (i + 1) % (W9V_IMAGES // W9V_BATCH)
        h = enc(x)
        mu, logvar = h[:, :32], h[:, 32:]
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = dec(z)
        rec = (x * logits - torch.nn.functional.softplus(logits)).sum(1)
        kl = 0.5 * (mu * mu + torch.exp(logvar) - 1 - logvar).sum(1)
        loss = (kl - rec).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    run_bench("W9v", step)


# --------------------------------------------------------------------------
# W7 unet_fmnist_ddpm: scorch.models.UNet (lua/scorch/models/unet.lua) with
# the full preset of examples/ddpm_fashion_mnist.lua, op for op; the weights
# are the ones scorch wrote (bench/scorch/workloads.lua make-w7-weights).
# bench/torch/check_w7.py checks that both networks give the same outputs.
# --------------------------------------------------------------------------
W7_FILE = os.path.join(os.path.dirname(W8_FILE), "w7_unet.safetensors")
W7_T, W7S_STEP = 1000, 500


def groups_for(c):
    """Largest divisor of c that is at most 8: the GroupNorm group count."""
    g = min(8, c)
    while c % g:
        g -= 1
    return g


class SinusoidalEmbedding(torch.nn.Module):
    """[sin(c w_k), cos(c w_k)], w_k = 10000^(-k/(dim/2)) (a buffer, as in scorch)."""

    def __init__(self, dim):
        super().__init__()
        half = dim // 2
        w = [math.exp(-math.log(10000) * k / half) for k in range(half)]
        self.register_buffer("freqs", torch.tensor([w], dtype=torch.float32))

    def forward(self, c):
        arg = c * self.freqs
        return torch.cat([arg.sin(), arg.cos()], 1)


class ResBlock(torch.nn.Module):
    """h = conv(silu(gn(x))) + W e; h = conv(silu(gn(h))); out = h + skip(x)."""

    def __init__(self, cin, cout, edim):
        super().__init__()
        nn = torch.nn
        self.norm1 = nn.GroupNorm(groups_for(cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(edim, cout)
        self.norm2 = nn.GroupNorm(groups_for(cout), cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, e):
        F = torch.nn.functional
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(e).view(e.shape[0], h.shape[1], 1, 1)
        h = F.silu(self.norm2(h))
        h = self.conv2(h)
        return h + (self.skip(x) if self.skip is not None else x)


class UNetDDPM(torch.nn.Module):
    """scorch.models.UNet{channels, mults, blocks, attention all false,
    mid_attention = false, out = "eps", cond = "t"}: the same modules under
    the same names (ModuleList indices from 0 where scorch's start at 1)."""

    def __init__(self, channels=24, mults=(1, 2, 2), blocks=1):
        super().__init__()
        nn = torch.nn
        ch, edim = channels, 4 * channels
        self.cond_scale = 1.0
        self.embed = SinusoidalEmbedding(ch)
        self.emb1 = nn.Linear(ch, edim)
        self.emb2 = nn.Linear(edim, edim)
        self.input = nn.Conv2d(1, ch, 3, padding=1)
        self.down = nn.ModuleList()
        skips, c = [ch], ch
        for i, m in enumerate(mults):
            for _ in range(blocks):
                self.down.append(nn.ModuleList([ResBlock(c, ch * m, edim)]))
                c = ch * m
                skips.append(c)
            if i < len(mults) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(c, c, 3, stride=2, padding=1)]))
                skips.append(c)
        self.mid1 = ResBlock(c, c, edim)
        self.mid2 = ResBlock(c, c, edim)
        self.up = nn.ModuleList()
        for i in range(len(mults) - 1, -1, -1):
            for _ in range(blocks + 1):
                s = skips.pop()
                self.up.append(nn.ModuleList([ResBlock(c + s, ch * mults[i], edim)]))
                c = ch * mults[i]
            if i > 0:
                self.up.append(nn.ModuleList([nn.Upsample(scale_factor=2, mode="nearest"),
                                              nn.Conv2d(c, c, 3, padding=1)]))
        self.out_norm = nn.GroupNorm(groups_for(c), c)
        self.output = nn.Conv2d(c, 1, 3, padding=1)

    def embedding(self, c):
        """c: [N or 1, 1] timesteps -> [N or 1, 4 ch] through SiLU."""
        F = torch.nn.functional
        return F.silu(self.emb2(F.silu(self.emb1(self.embed(c * self.cond_scale)))))

    def forward(self, x, c):
        e = self.embedding(c)
        h = self.input(x)
        skips = [h]
        for blk in self.down:
            h = blk[0](h, e) if isinstance(blk[0], ResBlock) else blk[0](h)
            skips.append(h)
        h = self.mid1(h, e)
        h = self.mid2(h, e)
        for blk in self.up:
            if isinstance(blk[0], ResBlock):
                h = blk[0](torch.cat([h, skips.pop()], 1), e)
            else:
                for m in blk:
                    h = m(h)
        return self.output(torch.nn.functional.silu(self.out_norm(h)))


def torch_key(name):
    """scorch's state-dict name -> this module's: list indices from 0."""
    return ".".join(str(int(p) - 1) if p.isdigit() else p for p in name.split("."))


def w7_load(path=W7_FILE):
    net = UNetDDPM()
    net.load_state_dict({torch_key(k): v for k, v in read_safetensors(path).items()}, strict=True)
    return net


def w7_sqrt_abar(T=W7_T):
    """√ᾱ_t and √(1 − ᾱ_t), t = 1..T, as float32 [T] tensors."""
    _, _, abar = ddpm_schedule(T)
    return (torch.tensor([math.sqrt(a) for a in abar], dtype=torch.float32),
            torch.tensor([math.sqrt(1.0 - a) for a in abar], dtype=torch.float32))


def w7t():
    torch.manual_seed(0)
    B = 64
    net = w7_load()
    sqrt_ab, sqrt_1mab = w7_sqrt_abar()
    opt = torch.optim.Adam(net.parameters(), lr=2e-4)
    x0 = torch.rand(B, 1, 28, 28) * 2.0 - 1.0          # fixed, U[-1, 1)

    def step():
        t = torch.randint(1, W7_T + 1, (B, 1))
        eps = torch.randn(B, 1, 28, 28)
        a, s = sqrt_ab[t - 1], sqrt_1mab[t - 1]         # √ᾱ_t, √(1 − ᾱ_t): [B, 1]
        xt = x0 * a.view(B, 1, 1, 1) + eps * s.view(B, 1, 1, 1)
        loss = (net(xt, t.float()) - eps).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    run_bench("W7t", step)


def w7s():
    torch.manual_seed(0)
    B, t = 250, W7S_STEP
    net = w7_load().eval()
    betas, _, abar = ddpm_schedule(W7_T)
    beta, ab = betas[t - 1], abar[t - 1]
    c_eps, inv_sqrt_a, sigma = beta / math.sqrt(1.0 - ab), 1.0 / math.sqrt(1.0 - beta), math.sqrt(beta)
    x = torch.randn(B, 1, 28, 28)                       # fixed x_t
    tt = torch.full((1, 1), float(t))                   # one step for the batch: embedded once

    # x_{t-1} = (x_t − β_t/√(1 − ᾱ_t) ε_θ(x_t, t))/√α_t + √β_t z
    def step():
        with torch.no_grad():
            eps = net(x, tt)
            return (x - eps * c_eps) * inv_sqrt_a + torch.randn(B, 1, 28, 28) * sigma

    run_bench("W7s", step)


CASES = {
    "W1": w1,
    "W2": w2,
    "W2b": lambda: w2(True),
    "W3": w3,
    "W4": w4,
    "W5": lambda: w5(False),
    "W5g": lambda: w5(True),
    "W6_1024": lambda: w6(1024),
    "W6_256": lambda: w6(256),
    "W8": w8,
    "W9f": w9f,
    "W9v": w9v,
    "W10": w10,
    "W7t": w7t,
    "W7s": w7s,
}


def main():
    wl = ARGS.workload
    if wl == "make-w8-data":
        make_w8_features()
        print(W8_FILE)
        return
    if wl not in CASES:
        sys.stderr.write("unknown workload %r; known: %s\n"
                         % (wl, ", ".join(CASES)))
        sys.exit(2)
    CASES[wl]()


if __name__ == "__main__":
    main()
