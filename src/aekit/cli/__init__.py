"""The ``aekit`` command line: parses arguments, calls the library (``aekit.run``,
``aekit.report``), prints. Every command is a Python call too::

    aekit fit --model vae --latent-dim 2 --out runs/vae   ->  aekit.run.fit_run("runs/vae", "vae", params={"latent_dim": 2})
    aekit demo                                            ->  aekit.run.demo()
    aekit report runs/vae                                 ->  aekit.report.build_report("runs/vae")
    aekit explore runs/vae                                ->  aekit.report.build_explorer("runs/vae")
    aekit compare --data digits --models ae,vae --epochs 30 --out cmp
                                  ->  aekit.compare(X, y, X_test=..., y_test=..., models=["ae", "vae"], epochs=30, out="cmp")
    aekit evaluate runs/vae --data digits --nll-samples 100
                                  ->  aekit.run.evaluate_run("runs/vae", "digits", nll_samples=100)
    aekit detect runs/vae --data data.npy -o scores.csv   ->  aekit.run.detect_run("runs/vae", "data.npy")
    aekit search runs/vae --data digits --index 3 -k 5    ->  aekit.run.search_run("runs/vae", "digits", index=3, k=5)

Every command over data names it with ``--data DATA`` (a dataset name or a path) and reads the
test split of a built-in dataset by default (``--split``). Estimator parameters become
kebab-case flags of ``fit``, derived from the families' declared settings (``--latent-dim 2``,
``--hidden-dims 256,128``, ``--activation none``, ``--early-stopping/--no-early-stopping``).
User errors print one line, ``aekit: error: ...``, and exit with status 2.

The modules: ``params`` (estimator parameters as flags), ``args`` (shared argument types),
``runs``, ``apps`` and ``compare`` (the commands), ``output`` (files and printing).
"""

from __future__ import annotations

import argparse
import sys

from .._threads import passive_openmp
from .params import UsageError

__all__ = ["build_parser", "main"]

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (raised, so ``main`` reports them like library errors)."""

    def error(self, message: str):
        data_missing = "required" in message and "--data" in message
        stray = message.startswith("unrecognized arguments") and self.prog.split()[-1] not in ("fit", "aekit")
        if data_missing or stray:
            message += " (every command names its data with --data DATA, e.g. --data digits)"
        raise UsageError(message)


def build_parser(*, with_params: bool = True) -> argparse.ArgumentParser:
    """The ``aekit`` argument parser. ``with_params`` adds every estimator parameter to ``fit``
    (they come from the families' catalog, built once and cached)."""
    from . import apps, compare, runs

    parser = _Parser(
        prog="aekit",
        description="Train, evaluate and explore autoencoders. `aekit demo` trains a small VAE and writes a report.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)
    runs.add_commands(sub, with_params=with_params)
    apps.add_commands(sub)
    compare.add_commands(sub)
    return parser


def _error(message: str) -> int:
    print(f"aekit: error: {' '.join(str(message).split())}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0, 2 for user errors, 130 when interrupted)."""
    passive_openmp()  # before anything imports torch: see aekit._threads
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser(with_params=bool(argv) and argv[0] == "fit").parse_args(argv)
        from .._threads import torch_threads

        with torch_threads(getattr(args, "threads", None)):
            return args.func(args)
    except UsageError as e:
        return _error(str(e))
    except (ValueError, TypeError, OSError, ImportError) as e:
        return _error(str(e) or type(e).__name__)
    except Exception as e:  # a library error type the CLI does not know by name
        from ..train import NonFiniteLossError

        if isinstance(e, NonFiniteLossError):
            return _error(str(e))
        raise
    except KeyboardInterrupt as e:
        print(f"aekit: {' '.join(str(e).split()) or 'interrupted'}", file=sys.stderr)
        return 130
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
