"""CPU threads on a shared machine: training speed with and without a competing CPU-bound process.

For each setting, a fresh Python process (OpenMP reads its environment once, when torch loads)
times training steps of an MNIST-sized VAE (784-512-256-32, batch 128, AdamW) and of a small
digits VAE (64-256-128-16, batch 64). Settings: torch's default (2 threads, OpenMP's default wait
policy), 2 threads with ``OMP_WAIT_POLICY=PASSIVE``, 1 thread, and aekit's default (what
``aekit.train.train`` picks: ``aekit._threads``). Each runs alone and next to one competing
process (a single-threaded busy loop, like another user's job on one core). Medians over
interleaved repeats, ms per step.

    python benchmarks/bench_threads.py [--quick] [--repeats 3] [--steps 60]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time

import platform

SETTINGS = {
    "torch default (2 threads, OpenMP default wait)": {"threads": 2, "env": {}, "torch_first": True},
    "2 threads, OMP_WAIT_POLICY=PASSIVE": {"threads": 2, "env": {"OMP_WAIT_POLICY": "PASSIVE"}, "torch_first": True},
    "1 thread": {"threads": 1, "env": {}, "torch_first": True},
    "aekit default": {"threads": None, "env": {}, "torch_first": False},
}

WORKER = textwrap.dedent(
    """
    import json, sys, time
    threads, steps, shape, torch_first = json.loads(sys.argv[1])
    if torch_first:
        import torch  # loaded before aekit, OpenMP keeps its own default wait policy
    import aekit  # sets OMP_WAIT_POLICY=PASSIVE unless torch is loaded or the environment sets it
    import torch
    from aekit._registry import build_model
    from aekit._threads import default_threads, torch_threads
    from aekit.train import _adamw
    torch.manual_seed(0)
    d, hidden, latent, batch = shape
    model = build_model("vae", input_shape=(d,), hidden_dims=hidden, latent_dim=latent)
    n = threads or default_threads(sum(p.numel() for p in model.parameters()))
    x = torch.rand(batch, d)
    opt = _adamw(model, 1e-3, 0.0)
    gen = torch.Generator().manual_seed(0)
    with torch_threads(n):
        times = []
        for i in range(steps + 5):
            t0 = time.perf_counter()
            out = model(x, generator=gen)
            opt.zero_grad()
            out.loss.backward()
            opt.step()
            if i >= 5:  # warm-up steps left out
                times.append(time.perf_counter() - t0)
    times.sort()
    print(json.dumps({"ms": 1000 * times[len(times) // 2], "threads": n}))
    """
)
MODELS = {"MNIST VAE 784-512-256-32, batch 128": (784, [512, 256], 32, 128),
          "digits VAE 64-256-128-16, batch 64": (64, [256, 128], 16, 64)}


def _busy() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def _time(setting: dict, steps: int, shape) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "AEKIT_THREADS")}
    env.update(setting["env"])
    out = subprocess.run([sys.executable, "-c", WORKER, json.dumps([setting["threads"], steps, shape, setting["torch_first"]])],
                         capture_output=True, text=True, env=env, check=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--quick", action="store_true", help="1 repeat, 15 steps")
    a = ap.parse_args()
    repeats, steps = (1, 15) if a.quick else (a.repeats, a.steps)
    print(f"Command: python benchmarks/bench_threads.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"Machine: {os.cpu_count()}-core CPU ({platform.machine()}), Python {platform.python_version()}; "
          f"date {time.strftime('%Y-%m-%d')}")
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {repeats} repeats x {steps} steps per setting\n")
    results: dict = {}
    for r in range(repeats):
        for competing in (False, True):
            busy = _busy() if competing else None
            try:
                time.sleep(0.5 if competing else 0.0)
                for model, shape in MODELS.items():
                    for name, setting in SETTINGS.items():
                        res = _time(setting, steps, shape)
                        key = (model, competing, name)
                        results.setdefault(key, []).append(res["ms"])
                        results[(*key, "threads")] = res["threads"]
            finally:
                if busy is not None:
                    busy.kill()
                    busy.wait()
    for model in MODELS:
        print(f"\n#### {model}: ms per training step (median of {repeats})\n")
        print("| setting | threads used | alone | with one busy process | slowdown |")
        print("|---|---|---|---|---|")
        for name in SETTINGS:
            alone = statistics.median(results[(model, False, name)])
            shared = statistics.median(results[(model, True, name)])
            used = f"{results[(model, False, name, 'threads')]} / {results[(model, True, name, 'threads')]}"
            print(f"| {name} | {used} | {alone:.1f} | {shared:.1f} | {shared / alone:.1f}x |")
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
