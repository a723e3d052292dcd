"""Small helpers used across the package (defined once here)."""

from __future__ import annotations

import contextlib
import importlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cuda"`` without a GPU is a clear error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, str):
        raise TypeError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but no CUDA GPU is available; use 'cpu' or 'auto'")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'") from None


@contextlib.contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Run a block with torch's global RNG seeded, restoring the caller's RNG state afterwards
    (used for weight initialisation, which reads the global RNG)."""
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(int(seed))
        yield


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temp file in the same folder, fsync, rename.
    A reader (or a process killed mid-write) sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


# -- in-memory (or memory-mapped) data, gathered a batch at a time --------------------------------


def as_source(X) -> torch.Tensor | np.ndarray:
    """Keep memory-mapped arrays on disk (batches are read as needed); everything else -> float32 tensor."""
    if isinstance(X, np.memmap):
        return X
    if isinstance(X, torch.Tensor):
        return X.float()
    return torch.as_tensor(np.asarray(X, dtype=np.float32))


def take_rows(src, idx: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Gather rows ``idx`` of a tensor or memory-mapped array onto ``device``."""
    if isinstance(src, np.ndarray):
        rows = np.asarray(src[np.sort(idx.cpu().numpy())], dtype=np.float32)
        return torch.from_numpy(rows).to(device, non_blocking=True)
    return src[idx.to(src.device)].to(device, non_blocking=True)


def take_labels(y, idx, device):
    """Labels ``y`` (tensor or array, or None) at rows ``idx``, on ``device``."""
    if y is None:
        return None
    if isinstance(y, np.ndarray):
        return torch.as_tensor(y[np.sort(idx.cpu().numpy())]).to(device)
    return y[idx.to(y.device)].to(device)


def optional_import(module: str, purpose: str, extra: str, packages: str):
    """Import ``module`` of an optional extra, or raise an ImportError that says what ``purpose``
    needs and how to install it (``pip install aekit[extra]``, or ``packages`` by hand)."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{purpose} needs the {extra} package: pip install aekit[{extra}] (or pip install "
                          f"{packages}) ({e})") from None
