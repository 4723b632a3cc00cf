"""PyTorch reference for `cargo xtask bench`'s Table 3 epochs on musk-1.

The same models, objectives and batch size as pathreg's trainers, written the
way one would in PyTorch (vectorised, autograd), to compare epoch times on the
same CPU:

- the non-convex parallel network (K, m1, m2) = (40, 100, 1) with the path
  regularizer, objective (4): ½‖f − y‖² (mini-batch term scaled by n/b) +
  β Σ_k sqrt(Σ_j ‖w1_kj‖² w2_kj² w3_k²);
- the convex program (11) over K sampled arrangements: X̃-products as masked
  GEMMs, group norms, and the constraint-violation penalty h.

Both with SGD (momentum 0.9) and Adam, batch 32, in float64 (pathreg's
precision) and float32, on one intra-op thread (like one pathreg cell) and on
PyTorch's default. Not part of the build: needs `pip install torch`.

    PATHREG_MIRROR=../shared/datasets python3 benches/pytorch_epochs.py
"""

import os
import statistics
import time
from pathlib import Path

import torch

K, M1, BETA, LAMBDA, BATCH = 40, 100, 0.5, 1.0, 32
REPEAT = 5


def musk1():
    """The first 381 rows of musk-1 (Table 3's training-set size), labels ±1."""
    root = Path(os.environ.get("PATHREG_MIRROR", "../shared/datasets"))
    lines = (root / "uci/musk-1/musk-1_R.dat").read_text().splitlines()[1:]
    rows = [[float(v) for v in line.split("\t")[1:]] for line in lines]
    data = torch.tensor(rows, dtype=torch.float64)[:381]
    return data[:, :-1], 2.0 * data[:, -1] - 1.0


class Network(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        # LeCun normal, as pathreg's `ParallelNetwork::lecun_normal`.
        self.w1 = torch.nn.Parameter(torch.randn(d, K * M1) / d**0.5)
        self.w2 = torch.nn.Parameter(torch.randn(K, M1) / M1**0.5)
        self.w3 = torch.nn.Parameter(torch.randn(K))

    def forward(self, x):
        h1 = torch.relu(x @ self.w1).view(-1, K, M1)
        h2 = torch.relu(torch.einsum("bkm,km->bk", h1, self.w2))
        return h2 @ self.w3

    def path(self):
        w1 = self.w1.view(-1, K, M1).pow(2).sum(0)  # ‖w1_kj‖², K × M1
        return (w1 * self.w2.pow(2)).sum(1).mul(self.w3.pow(2)).sqrt().sum()


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


def epoch_time(model, objective, optimizer, n):
    times = []
    for _ in range(REPEAT):
        order = torch.randperm(n)
        start = time.perf_counter()
        for batch in order.split(BATCH):
            optimizer.zero_grad()
            objective(batch).backward()
            optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    torch.manual_seed(0)
    x64, y64 = musk1()
    n, d = x64.shape
    print(f"PyTorch {torch.__version__}; musk-1 n = {n}, d = {d}, batch {BATCH}")
    # pathreg trains each cell on one thread (cells run in parallel), so one
    # intra-op thread is the like-for-like setting; PyTorch's default follows.
    for threads in sorted({1, torch.get_num_threads()}):
        torch.set_num_threads(threads)
        print(f" {threads} thread(s):")
        run(x64, y64, n, d)


def run(x64, y64, n, d):
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

            t = epoch_time(net, nonconvex, make(net.parameters()), n)
            print(f"  {str(dtype):14} non-convex {name}: median {t:.4f} s per epoch")
            cvx = Convex(d, x)

            def convex(rows, cvx=cvx):
                scale = n / len(rows)
                f, h = cvx.terms(x[rows], rows)
                return scale * (0.5 * (f - y[rows]).pow(2).sum() + LAMBDA * h) + BETA * cvx.groups()

            t = epoch_time(cvx, convex, make(cvx.parameters()), n)
            print(f"  {str(dtype):14} convex (11) {name}: median {t:.4f} s per epoch")


if __name__ == "__main__":
    main()
