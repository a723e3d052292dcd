"""Helpers shared by the benchmark scripts: data, the benchmarked architecture, FLOP counting, the
matmul ceiling and table printing. Benchmarks measure; they assert nothing."""

from __future__ import annotations

import os
import platform
import statistics
import time
from datetime import date

import numpy as np
import torch
from torch import nn

HIDDEN = (512, 256)  # the MLP VAE of every benchmark: D-512-256-32
LATENT = 32


def load(name: str, split: str, limit: int | None = None) -> np.ndarray:
    """Images in [0, 1], (n, 1, h, w) float32."""
    from aekit.datasets import load_dataset

    X = load_dataset(name, split=split).X
    return np.ascontiguousarray(X[:limit])


def linear_flops_per_sample(model: nn.Module) -> int:
    """Forward matmul FLOPs of one sample through every nn.Linear (2 * in * out each).
    Elementwise work (activations, losses, the optimizer) is left out."""
    return sum(2 * m.in_features * m.out_features for m in model.modules() if isinstance(m, nn.Linear))


def matmul_ceiling(sizes=((128, 784, 512), (128, 512, 784), (512, 512, 512), (2048, 2048, 2048)), seconds: float = 1.0):
    """Measured float32 GEMM throughput (GFLOP/s) per (m, k, n), best of repeated timed loops."""
    out = {}
    for m, k, n in sizes:
        a, b = torch.randn(m, k), torch.randn(k, n)
        c = torch.empty(m, n)
        for _ in range(3):
            torch.mm(a, b, out=c)
        best = 0.0
        t_end = time.perf_counter() + seconds
        while time.perf_counter() < t_end:
            reps = max(1, int(2e8 / (2 * m * k * n)))
            t0 = time.perf_counter()
            for _ in range(reps):
                torch.mm(a, b, out=c)
            dt = time.perf_counter() - t0
            best = max(best, 2 * m * k * n * reps / dt / 1e9)
        out[(m, k, n)] = best
    return out


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads, python {platform.python_version()}"
    )


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def header(title: str) -> None:
    print(f"# {title}")
    print(f"date {date.today().isoformat()}; {machine()}; load average at start {load_average()}")


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def table(rows: list[dict], columns: list[str]) -> str:
    """A Markdown table of ``rows`` (dicts) with the given columns."""

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)
