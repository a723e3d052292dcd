"""Start-up time: the CLI's help and listings, and ``import aekit``, against importing torch.

Each command runs as a fresh process, interleaved, ``--repeats`` times; medians in seconds. The
CLI reads the families from a cached catalog (``aekit.cli.params``), so its first call after an
install or a change of a family builds the cache (measured separately, as "cold").

    python benchmarks/bench_startup.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

PY = sys.executable
AEKIT = [shutil.which("aekit")] if shutil.which("aekit") else [PY, "-m", "aekit.cli"]
COMMANDS = {
    "aekit --help": [*AEKIT, "--help"],
    "aekit fit --help": [*AEKIT, "fit", "--help"],
    "aekit list-models": [*AEKIT, "list-models"],
    "python -c 'import aekit'": [PY, "-c", "import aekit"],
    "python -c 'import aekit; aekit.VAE' (estimators: torch + scikit-learn)": [PY, "-c", "import aekit; aekit.VAE"],
    "python -c 'import torch'": [PY, "-c", "import torch"],
    "python -c 'import torch, sklearn.base'": [PY, "-c", "import torch, sklearn.base"],
    "python -c 'pass' (the interpreter alone)": [PY, "-c", "pass"],
}


def _seconds(cmd, env) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args()
    print(f"Command: python benchmarks/bench_startup.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"Machine: {os.cpu_count()}-core CPU ({platform.machine()}), Python {platform.python_version()}; "
          f"date {time.strftime('%Y-%m-%d')}; load average {os.getloadavg()[0]:.2f} at start\n")
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "XDG_CACHE_HOME": cache}
        cold = _seconds([*AEKIT, "fit", "--help"], env)  # builds the catalog in an empty cache
        times: dict[str, list[float]] = {k: [] for k in COMMANDS}
        for _ in range(a.repeats):
            for name, cmd in COMMANDS.items():
                times[name].append(_seconds(cmd, env))
    print("| command | median s | min s |")
    print("|---|---|---|")
    for name, ts in times.items():
        print(f"| {name} | {statistics.median(ts):.3f} | {min(ts):.3f} |")
    print(f"| aekit fit --help, cold (builds the catalog cache) | {cold:.3f} | one run |")
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
