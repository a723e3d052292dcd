"""Argument types and the arguments every command over data shares (one convention for all)."""

from __future__ import annotations

import argparse
import math

__all__ = ["DATA_HELP", "add_data_args", "data_kwargs", "at_least_two", "count", "finite_float", "fraction",
           "nonnegative_float", "positive_int", "threads_arg"]

DATA_HELP = ("a dataset name (digits, mnist, fashion-mnist, binarized-mnist, sprites) or a path to a .npy, .npz, .csv file "
             "or a folder of images")


def _int_at_least(minimum: int, words: str):
    """An argparse type: an integer >= ``minimum`` (``words`` names it in the error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected {words}")
        return value

    return parse


count = _int_at_least(0, "an integer >= 0")
at_least_two = _int_at_least(2, "an integer >= 2")
positive_int = _int_at_least(1, "a positive integer")


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected a number")
    return value


def nonnegative_float(text: str) -> float:
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected a number >= 0")
    return value


def fraction(text: str) -> float:
    value = finite_float(text)
    if not 0 < value <= 0.5:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected a fraction in (0, 0.5]")
    return value


def threads_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=positive_int, metavar="N",
                   help="CPU threads for torch (default: aekit's choice: 1 for small models, else the cores not "
                        "already busy; AEKIT_THREADS=N sets it for every command)")


def add_data_args(p: argparse.ArgumentParser, *, required: bool = True, default: str | None = None) -> None:
    """--data DATA, --data-root, --split (default test) and --limit: how every command names its data.
    ``default`` says in words what an optional --data stands for when it is not given."""
    p.add_argument("--data", required=required, metavar="DATA",
                   help=DATA_HELP + (f" (default: {default})" if default else ""))
    p.add_argument("--data-root", metavar="DIR",
                   help="folder holding the MNIST / Fashion-MNIST IDX files, when they are not found where aekit looks")
    p.add_argument("--split", default="test", choices=("test", "train", "all"),
                   help="which part of a built-in dataset: test (the default), train or all; a file is used whole")
    p.add_argument("--limit", type=positive_int, metavar="N", help="use only the first N samples of DATA")


def data_kwargs(args) -> dict:
    """The data arguments of :func:`add_data_args` as keyword arguments of the ``aekit.run`` commands."""
    return {"split": args.split, "limit": args.limit, "data_root": args.data_root}
