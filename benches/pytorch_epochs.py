"""PyTorch references for pathreg's epoch timings, on the same CPU.

The same models, objectives and batch sizes as pathreg's trainers, written the
way one would in PyTorch (eager, vectorised, autograd). Not part of the build:
needs `pip install torch`. Datasets are read from `$PATHREG_MIRROR` (default
`../shared/datasets`).

`table3` (the default): `cargo xtask bench`'s Table 3 epochs on musk-1 (the
first 381 rows, labels ±1), batch 32, (K, m1, m2) = (40, 100, 1):

- the non-convex parallel network with the path regularizer, objective (4):
  ½‖f − y‖² (mini-batch term scaled by n/b) + β Σ_k sqrt(Σ_j ‖w1_kj‖² w2_kj² w3_k²),
  β = 0.5;
- the convex program (11) over K sampled arrangements: X̃-products as masked
  GEMMs, group norms, and the constraint-violation penalty h (λ = 1).

Both with SGD (momentum 0.9) and Adam, in float64 (pathreg's precision) and
float32, on one intra-op thread (like one pathreg cell) and on PyTorch's
default; median of 5 epochs.

`fig5`: one epoch at Figure 5's shape on Fashion-MNIST: the first N training
images (d = 784), pixels / 255 standardised with one mean and one population
std over all pixels of those N rows, one-hot targets Y (n × C), float32,
batch 1000, (K, m1, m2, C) = (40, 100, 1, 10), β = 1e-3, λ = 1e-5, SGD with
momentum 0.9, torch.manual_seed(0):

- non-convex parallel network with vector output (Appendix A.11):
  w1: d × K·m1 (column k·m1 + j is neuron j of sub-network k), w2: K × m1,
  w3: K × C, LeCun normal (randn / sqrt(fan-in));
  f = relu(einsum('bkm,km->bk', relu(x w1).view(b, K, m1), w2)) w3;
  R = Σ_k sqrt(Σ_j ‖w1[:, k, j]‖² w2[k, j]² ‖w3[k, :]‖²);
  batch objective ½‖f − y‖² / b + β R; SGD lr 1e-3.
- convex program (11) with vector outputs, masks shared across classes:
  fixed gates g1 ~ N(0, 1)^(d × K·m1), g2 ~ N(0, 1)^(K × m1);
  D1 = [X g1 > 0] (n × K·m1), D2 = [einsum('nkm,km->nk', relu(X g1), g2) > 0]
  (n × K), signs = sign(g2). D1 and D2 are stored as torch.bool (1 byte an
  entry: 240 MB for D1 at n = 60000, against 960 MB in float32) and each
  batch's rows are converted to float32 inside the timed step, as a trainer
  that keeps the masks compact would. W: d × 2·K·C·m1, zeros, column
  ((half·K + k)·C + c)·m1 + j. Per batch rows r:
  U = (X[r] W).view(b, 2, K, C, m1), d1 = D1[r].view(b, 1, K, 1, m1),
  d2 = D2[r].view(b, 1, K, 1); pre2 = (U d1).sum(-1) (b × 2 × K × C);
  f = Σ_k d2[:, 0] (pre2[:, 0] − pre2[:, 1]) (b × C);
  h = Σ relu(−(2 d1 − 1) signs U) + Σ relu(−(2 d2 − 1) pre2);
  groups = Σ_{half, k} ‖W[:, (half, k) block of C·m1 columns]‖_F;
  batch objective (½‖f − y[r]‖² + λ h) / b + β groups; SGD lr 1e-5.
  The masks are computed before, outside the timed region.

For each thread count of --threads: the median non-convex epoch over
--repeat, the median convex epoch over max(1, repeat // 3) (only at the
largest thread count unless --convex-all-threads), and the sgemm peak (median
of 5 torch.mm on 4096 × 4096 float32 after a warm-up, 2·4096³ / t flop/s).
--json PATH writes {"torch", "n", "d", "batch", "K", "m1", "C", "results":
[{"threads", "nonconvex_sgd_epoch_s", "convex_sgd_epoch_s" (null where not
measured), "sgemm_gflops"}], "max_rss_mib"} (the process's peak resident
memory after the convex epochs).

    PATHREG_MIRROR=../shared/datasets python3 benches/pytorch_epochs.py [table3]
    PATHREG_MIRROR=../shared/datasets python3 benches/pytorch_epochs.py fig5 \\
        [--n N] [--repeat R] [--threads 1,2] [--convex-all-threads] [--json PATH]
"""

import argparse
import gzip
import json
import os
import resource
import statistics
import struct
import time
from pathlib import Path

import torch

K, M1, BETA, LAMBDA, BATCH = 40, 100, 0.5, 1.0, 32
REPEAT = 5
C, FIG5_BATCH, FIG5_BETA, FIG5_LAMBDA = 10, 1000, 1e-3, 1e-5


def mirror():
    return Path(os.environ.get("PATHREG_MIRROR", "../shared/datasets"))


def musk1():
    """The first 381 rows of musk-1 (Table 3's training-set size), labels ±1."""
    lines = (mirror() / "uci/musk-1/musk-1_R.dat").read_text().splitlines()[1:]
    rows = [[float(v) for v in line.split("\t")[1:]] for line in lines]
    data = torch.tensor(rows, dtype=torch.float64)[:381]
    return data[:, :-1], 2.0 * data[:, -1] - 1.0


def idx(path, magic, dims):
    """The u8 payload of a gzip IDX file with `dims` big-endian u32 sizes."""
    raw = gzip.open(path).read()
    head = struct.unpack(f">{1 + dims}I", raw[: 4 * (1 + dims)])
    if head[0] != magic:
        raise ValueError(f"{path}: magic {head[0]:#010x}, expected {magic:#010x}")
    return torch.frombuffer(bytearray(raw[4 * (1 + dims) :]), dtype=torch.uint8).view(head[1:])


def fashion_mnist(n):
    """The first n training images (n × 784, standardised) and one-hot labels."""
    root = mirror() / "fashion-mnist"
    images = idx(root / "train-images-idx3-ubyte.gz", 0x803, 3)[:n]
    labels = idx(root / "train-labels-idx1-ubyte.gz", 0x801, 1)[:n]
    x = images.reshape(len(images), -1).float() / 255
    x = (x - x.mean()) / x.std(correction=0)
    return x, torch.nn.functional.one_hot(labels.long(), C).float()


class Network(torch.nn.Module):
    """The parallel network; `outputs` = () for a scalar output, (C,) for C."""

    def __init__(self, d, outputs=()):
        super().__init__()
        # LeCun normal, as pathreg's `ParallelNetwork::lecun_normal`.
        self.w1 = torch.nn.Parameter(torch.randn(d, K * M1) / d**0.5)
        self.w2 = torch.nn.Parameter(torch.randn(K, M1) / M1**0.5)
        self.w3 = torch.nn.Parameter(torch.randn(K, *outputs))

    def forward(self, x):
        h1 = torch.relu(x @ self.w1).view(-1, K, M1)
        h2 = torch.relu(torch.einsum("bkm,km->bk", h1, self.w2))
        return h2 @ self.w3

    def path(self):
        w1 = self.w1.view(-1, K, M1).pow(2).sum(0)  # ‖w1_kj‖², K × M1
        w3 = self.w3.pow(2).view(K, -1).sum(1)  # ‖w3_k‖², K
        return (w1 * self.w2.pow(2)).sum(1).mul(w3).sqrt().sum()


class Convex(torch.nn.Module):
    """(11) over K arrangements from Gaussian gates: W = [Z | Z'], d × 2 K m1."""

    def __init__(self, d, x):
        super().__init__()
        gates1 = torch.randn(d, K * M1, dtype=x.dtype)
        gates2 = torch.randn(K, M1, dtype=x.dtype)
        pre1 = x @ gates1
        self.d1 = (pre1 > 0).to(x.dtype)
        self.signs = torch.sign(gates2).reshape(-1)
        pre2 = torch.einsum("bkm,km->bk", torch.relu(pre1).view(-1, K, M1), gates2)
        self.d2 = (pre2 > 0).to(x.dtype)
        self.w = torch.nn.Parameter(torch.zeros(d, 2 * K * M1, dtype=x.dtype))

    def terms(self, x, rows):
        d1, d2 = self.d1[rows], self.d2[rows]
        u = (x @ self.w).view(-1, 2, K * M1)
        pre2 = (u * d1.unsqueeze(1)).view(-1, 2, K, M1).sum(-1)  # b × 2 × K
        f = (d2 * (pre2[:, 0] - pre2[:, 1])).sum(1)
        side1 = (2 * d1 - 1) * self.signs
        h = torch.relu(-side1.unsqueeze(1) * u).sum()
        h = h + torch.relu(-(2 * d2 - 1).unsqueeze(1) * pre2).sum()
        return f, h

    def groups(self):
        return self.w.view(-1, 2 * K, M1).pow(2).sum((0, 2)).sqrt().sum()


class ConvexVector(torch.nn.Module):
    """(11) with C outputs sharing the masks: W, d × 2 K C m1 (see the docstring)."""

    def __init__(self, d, x):
        super().__init__()
        gates1 = torch.randn(d, K * M1)
        gates2 = torch.randn(K, M1)
        d1, d2 = [], []
        for chunk in x.split(FIG5_BATCH):  # bounds the float32 pre-activations
            pre1 = chunk @ gates1
            d1.append(pre1 > 0)
            d2.append(torch.einsum("bkm,km->bk", torch.relu(pre1).view(-1, K, M1), gates2) > 0)
        self.d1, self.d2 = torch.cat(d1), torch.cat(d2)
        self.signs = torch.sign(gates2).view(1, 1, K, 1, M1)
        self.w = torch.nn.Parameter(torch.zeros(d, 2 * K * C * M1))

    def terms(self, x, rows):
        b = len(rows)
        d1 = self.d1[rows].view(b, 1, K, 1, M1).float()
        d2 = self.d2[rows].view(b, 1, K, 1).float()
        u = (x @ self.w).view(b, 2, K, C, M1)
        pre2 = (u * d1).sum(-1)  # b × 2 × K × C
        f = (d2[:, 0] * (pre2[:, 0] - pre2[:, 1])).sum(1)  # b × C
        h = torch.relu(-(2 * d1 - 1) * self.signs * u).sum()
        h = h + torch.relu(-(2 * d2 - 1) * pre2).sum()
        return f, h

    def groups(self):
        return self.w.view(self.w.shape[0], 2 * K, C * M1).pow(2).sum((0, 2)).sqrt().sum()


def epoch_time(objective, optimizer, n, batch, repeat):
    """Median over `repeat` epochs (shuffled batches of `batch` rows), in seconds."""
    times = []
    for _ in range(repeat):
        order = torch.randperm(n)
        start = time.perf_counter()
        for rows in order.split(batch):
            optimizer.zero_grad()
            objective(rows).backward()
            optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def table3(_args):
    torch.manual_seed(0)
    x64, y64 = musk1()
    n, d = x64.shape
    print(f"PyTorch {torch.__version__}; musk-1 n = {n}, d = {d}, batch {BATCH}")
    # pathreg trains each cell on one thread (cells run in parallel), so one
    # intra-op thread is the like-for-like setting; PyTorch's default follows.
    for threads in sorted({1, torch.get_num_threads()}):
        torch.set_num_threads(threads)
        print(f" {threads} thread(s):")
        table3_run(x64, y64, n, d)


def table3_run(x64, y64, n, d):
    for dtype in (torch.float64, torch.float32):
        x, y = x64.to(dtype), y64.to(dtype)
        for name, make in (
            ("sgd", lambda p: torch.optim.SGD(p, lr=1e-7, momentum=0.9)),
            ("adam", lambda p: torch.optim.Adam(p, lr=1e-5)),
        ):
            net = Network(d).to(dtype)

            def nonconvex(rows, net=net):
                scale = n / len(rows)
                return scale * 0.5 * (net(x[rows]) - y[rows]).pow(2).sum() + BETA * net.path()

            t = epoch_time(nonconvex, make(net.parameters()), n, BATCH, REPEAT)
            print(f"  {str(dtype):14} non-convex {name}: median {t:.4f} s per epoch")
            cvx = Convex(d, x)

            def convex(rows, cvx=cvx):
                scale = n / len(rows)
                f, h = cvx.terms(x[rows], rows)
                return scale * (0.5 * (f - y[rows]).pow(2).sum() + LAMBDA * h) + BETA * cvx.groups()

            t = epoch_time(convex, make(cvx.parameters()), n, BATCH, REPEAT)
            print(f"  {str(dtype):14} convex (11) {name}: median {t:.4f} s per epoch")


def sgemm_gflops(size=4096, repeat=5):
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e9


def fig5(args):
    torch.manual_seed(0)
    x, y = fashion_mnist(args.n)
    n, d = x.shape
    print(
        f"PyTorch {torch.__version__}; Fashion-MNIST n = {n}, d = {d}, batch {FIG5_BATCH}, "
        f"(K, m1, m2, C) = ({K}, {M1}, 1, {C}), float32, SGD momentum 0.9"
    )
    results = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        print(f" {threads} thread(s):")
        net = Network(d, (C,))

        def nonconvex(rows):
            return 0.5 * (net(x[rows]) - y[rows]).pow(2).sum() / len(rows) + FIG5_BETA * net.path()

        optimizer = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
        t_nonconvex = epoch_time(nonconvex, optimizer, n, FIG5_BATCH, args.repeat)
        print(f"  non-convex sgd: median {t_nonconvex:.3f} s per epoch")
        t_convex = None
        if args.convex_all_threads or threads == max(args.threads):
            cvx = ConvexVector(d, x)

            def convex(rows):
                f, h = cvx.terms(x[rows], rows)
                fit = 0.5 * (f - y[rows]).pow(2).sum() + FIG5_LAMBDA * h
                return fit / len(rows) + FIG5_BETA * cvx.groups()

            optimizer = torch.optim.SGD(cvx.parameters(), lr=1e-5, momentum=0.9)
            t_convex = epoch_time(convex, optimizer, n, FIG5_BATCH, max(1, args.repeat // 3))
            print(f"  convex (11) sgd: median {t_convex:.3f} s per epoch")
            del cvx, convex, optimizer
        gflops = sgemm_gflops()
        print(f"  sgemm 4096: {gflops:.1f} GFLOP/s")
        results.append(
            {
                "threads": threads,
                "nonconvex_sgd_epoch_s": t_nonconvex,
                "convex_sgd_epoch_s": t_convex,
                "sgemm_gflops": gflops,
            }
        )
    max_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f" peak resident memory: {max_rss_mib:.0f} MiB")
    if args.json:
        summary = {"torch": torch.__version__, "n": n, "d": d, "batch": FIG5_BATCH}
        summary |= {"K": K, "m1": M1, "C": C, "results": results, "max_rss_mib": max_rss_mib}
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")


def thread_counts(text):
    counts = [int(t) for t in text.split(",")]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"thread counts must be positive: {text!r}")
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.set_defaults(run=table3)
    commands = parser.add_subparsers(title="subcommands")
    commands.add_parser("table3", help="Table 3 epochs on musk-1 (the default)").set_defaults(run=table3)
    sub = commands.add_parser("fig5", help="Figure 5's epoch on Fashion-MNIST, and the sgemm peak")
    sub.set_defaults(run=fig5)
    sub.add_argument("--n", type=int, default=60000, help="training rows (default 60000)")
    sub.add_argument("--repeat", type=int, default=3, help="non-convex epochs; convex: max(1, R // 3)")
    sub.add_argument("--threads", type=thread_counts, default=[1, 2], help="comma-separated (default 1,2)")
    sub.add_argument("--convex-all-threads", action="store_true", help="convex at every thread count")
    sub.add_argument("--json", metavar="PATH", help="write the results as JSON")
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
