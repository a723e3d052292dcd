"""The machine's measured float32 matmul ceiling, and what it allows for the benchmarked MLP VAE.

Times torch.mm at the shapes of one training batch of the D-512-256-32 VAE (batch 128) and at
large square sizes, for 1 thread and for all threads. The FLOPs of one training sample are
counted from the model's Linear layers (forward 2 * in * out each; forward + backward ~ 3x the
forward), which gives the highest throughput the matmuls alone would allow. bench_train_speed.py
measures the same ceiling in its own run and reports the fraction that training reaches.

    python benchmarks/bench_matmul_ceiling.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import HIDDEN, LATENT, header, linear_flops_per_sample, load_average, matmul_ceiling, table  # noqa: E402

from aekit._registry import build_model  # noqa: E402


def main() -> None:
    header("float32 matmul ceiling")
    batch = 128
    shapes = [
        (batch, 784, HIDDEN[0]), (batch, HIDDEN[0], HIDDEN[1]), (batch, HIDDEN[1], 2 * LATENT),
        (batch, HIDDEN[0], 784), (1024, 1024, 1024), (2048, 2048, 2048),
    ]
    rows = []
    for threads in sorted({1, torch.get_num_threads()}):
        torch.set_num_threads(threads)
        for (m, k, n), g in matmul_ceiling(shapes, seconds=1.0).items():
            rows.append({"threads": threads, "m x k x n": f"{m}x{k}x{n}", "GFLOP/s": g})
    print(table(rows, ["threads", "m x k x n", "GFLOP/s"]))
    for d, name in ((784, "MNIST"), (64, "digits")):
        model = build_model("vae", input_shape=(d,), latent_dim=LATENT, hidden_dims=HIDDEN)
        flops = 3 * linear_flops_per_sample(model)
        best = max(r["GFLOP/s"] for r in rows)
        print(f"{name} VAE {d}-{HIDDEN[0]}-{HIDDEN[1]}-{LATENT}: {flops / 1e6:.2f} MFLOP per training sample; "
              f"at the best measured {best:.0f} GFLOP/s the matmuls alone allow {best * 1e9 / flops:,.0f} samples/s")
    print(f"load average at end {load_average()}")


if __name__ == "__main__":
    main()
