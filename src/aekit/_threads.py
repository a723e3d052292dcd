"""How many CPU threads torch gets, chosen so that training is never catastrophically slow on a
shared machine.

torch's default (one OpenMP thread per core, spinning while it waits) collapses when another
process is busy on the same cores: on a 2-core machine with one busy neighbour, an MNIST-sized
VAE step took ~500 ms with 2 threads against ~45 ms with 1 (benchmarks/bench_threads.py). aekit
therefore (1) asks OpenMP to sleep rather than spin between parallel regions
(``OMP_WAIT_POLICY=PASSIVE``, set before torch is first imported, unless you set it yourself),
and (2) trains with :func:`default_threads`: one thread for small models, whose matrices are too
small to share, else the cores not already busy (by the load average). ``AEKIT_THREADS=N``, an
estimator's ``threads=N`` or the CLI's ``--threads N`` override the choice.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator

__all__ = ["THREADS_ENV", "SMALL_MODEL_PARAMS", "default_threads", "passive_openmp", "torch_threads"]

THREADS_ENV = "AEKIT_THREADS"
# Models with fewer parameters than this train fastest on one thread (per-op work is too small to split).
SMALL_MODEL_PARAMS = 200_000


def passive_openmp() -> None:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` for this process if torch is not imported yet and the
    variable is unset (OpenMP reads it once, when torch loads it)."""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads(n_params: int | None = None) -> int:
    """Threads for training a model with ``n_params`` parameters on this machine now.

    ``AEKIT_THREADS`` wins when set. Otherwise: 1 for a small model (fewer than
    ``SMALL_MODEL_PARAMS`` parameters), else the cores not already busy: the usable cores minus
    the 1-minute load average (at least 1).
    """
    env = os.environ.get(THREADS_ENV)
    if env:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"{THREADS_ENV} must be a positive integer, got {env!r}")
        return n
    if n_params is not None and n_params < SMALL_MODEL_PARAMS:
        return 1
    cores = _cores()
    try:
        busy = os.getloadavg()[0]
    except OSError:  # not available on this platform
        busy = 0.0
    return max(1, min(cores, round(cores - busy)))


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to ``n`` for a block (unchanged when None), then restored."""
    if n is None:
        yield
        return
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"threads must be a positive integer, got {n!r}")
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
