"""Helpers shared by the application benchmarks (bench_reduce, bench_probe, bench_denoise,
bench_codec, bench_search, bench_anomaly, bench_impute, bench_generate): seeded subsamples of the
real datasets, one-thread torch, timing and markdown tables. Benchmarks measure; they assert nothing."""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

FIGURES = Path(__file__).resolve().parent / "figures"


def figures_dir(quick: bool) -> Path:
    """Where figures go: benchmarks/figures for real runs; a temporary folder for --quick smoke
    runs, so they never overwrite the recorded figures."""
    import tempfile

    folder = Path(tempfile.gettempdir()) / "aekit-bench-figures" if quick else FIGURES
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def setup(description: str) -> argparse.ArgumentParser:
    """One torch thread (tiny models on a shared 2-core machine run faster and steadier so) and
    a parser with ``--quick``."""
    torch.set_num_threads(1)
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="smaller subsamples and fewer settings (a smoke run)")
    return p


def header(title: str, argv=None) -> None:
    import sklearn

    cmd = "python " + " ".join([f"benchmarks/{Path(sys.argv[0]).name}"] + list(sys.argv[1:] if argv is None else argv))
    print(f"## {title}\n")
    print(f"Command: `{cmd}`  ")
    print(f"Machine: {os.cpu_count()}-core CPU ({platform.machine()}, shared), torch {torch.__version__} "
          f"(1 thread), scikit-learn {sklearn.__version__}, numpy {np.__version__}  ")
    print(f"Date: {time.strftime('%Y-%m-%d')}\n")


def load(name: str, split: str, n: int | None = None, seed: int = 0, flat: bool = True):
    """(X, y) of a built-in dataset, a seeded random subsample of ``n`` rows (all rows if None),
    flattened to (n, D) when ``flat``."""
    from aekit.datasets import load_dataset

    d = load_dataset(name, split=split)
    X, y = d.X, d.y
    if n is not None and n < len(X):
        keep = np.sort(np.random.default_rng(seed).choice(len(X), n, replace=False))
        X, y = X[keep], y[keep]
    X = np.ascontiguousarray(X, dtype=np.float32)
    return (X.reshape(len(X), -1) if flat else X), np.asarray(y)


@contextlib.contextmanager
def timed(out: dict, key: str = "seconds"):
    t0 = time.perf_counter()
    yield
    out[key] = time.perf_counter() - t0


def table(rows: list[dict], columns: list[str], digits: int = 3) -> str:
    """Markdown table of ``rows`` (dicts) restricted to ``columns``."""

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.{digits}f}" if abs(v) < 1e5 else f"{v:.3g}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"
