"""What the commands write and print: output files (checked before any work), a spinner for
long steps, and metrics in words (:func:`aekit.evaluate.metric_rows`, shared with the report)."""

from __future__ import annotations

import contextlib
import csv
import sys
from pathlib import Path

from .params import UsageError

__all__ = ["output_path", "print_metrics", "save_array", "save_grid", "working", "write_csv"]


def output_path(path: str, suffixes: tuple[str, ...], what: str) -> Path:
    """The output path, its suffix checked before any work is done."""
    out = Path(path)
    if out.suffix.lower() not in suffixes:
        raise UsageError(f"{out}: {what} are written as {' or '.join(suffixes)}")
    return out


def save_array(out: Path, A, column: str = "x") -> None:
    """``A`` as .npy, or as .csv with a header ``x0,x1,...`` when it is a table."""
    import numpy as np

    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npy":
        np.save(out, A)
        return
    if A.ndim != 2:
        raise UsageError(f"{out}: a .csv holds a table, but these samples are shaped {A.shape[1:]}; use .npy")
    np.savetxt(out, A, delimiter=",", fmt="%.7g", header=",".join(f"{column}{i}" for i in range(A.shape[1])), comments="")


def save_grid(out: Path, S, ncols: int) -> None:
    from ..apps import image_grid

    if S.ndim < 3:
        raise UsageError(f"{out}: a .png grid needs image data; this model was trained on tabular data: use .npy")
    image_grid(S, out, ncols=ncols)


def write_csv(out: Path, header: list[str], rows) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


@contextlib.contextmanager
def working(message: str):
    """A spinner on stderr while a step that may be long runs (on a terminal only)."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield


def print_metrics(m: dict, *, indent: str = "  ") -> None:
    """An evaluation result as an aligned table: name, value, unit."""
    from ..evaluate import metric_rows

    rows = metric_rows(m)
    width = max(len(r.key) for r in rows)
    value_width = max((len(r.value) for r in rows if len(r.value) <= 24), default=0)  # long lists don't set it
    for r in rows:
        print(f"{indent}{r.key:<{width}}  {r.value:<{value_width}}  {r.unit}")
    if m.get("inactive_dims"):
        print(f"warning: posterior collapse in latent dimensions {m['inactive_dims']} "
              f"(KL < {m.get('kl_threshold')} nats)")
    elif m.get("posterior_collapse_message"):
        print(f"warning: {m['posterior_collapse_message']}")
