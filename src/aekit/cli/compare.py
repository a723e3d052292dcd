"""``aekit compare``: which autoencoder for my data? Trains each family with the same budget and
seed and writes a leaderboard (``aekit.run.compare``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .args import DATA_HELP, count, positive_int, threads_arg
from .params import UsageError, param_table, parse_value

__all__ = ["add_commands"]


def add_commands(sub) -> None:
    p = sub.add_parser(
        "compare", help="train several model families on one dataset and rank them (leaderboard)",
        description="Which autoencoder for my data? Train each model family on DATA's training part with the same "
                    "epochs, settings and seed, measure each on the test part (reconstruction error, PSNR for images; "
                    "ELBO and NLL for variational models; with labels, linear-probe and kNN accuracy on the codes and "
                    "the anomaly AUC of a detector that never saw one held-out class; active units, fit time, size) "
                    "and write DIR/leaderboard.csv and DIR/leaderboard.html, the best of each column marked and a "
                    "recommendation read off the numbers. A family that fails (a NaN loss, a setting it refuses) gets "
                    "its row with the error; the others go on. Python: aekit.compare(X, y, ...).",
    )
    p.add_argument("--data", required=True, metavar="DATA",
                   help=DATA_HELP + "; a built-in dataset's train and test splits, or a file with a seeded 20%% held "
                        "out for testing (a CSV's label/y/target column gives the labels)")
    p.add_argument("--data-root", metavar="DIR",
                   help="folder holding the MNIST / Fashion-MNIST IDX files, when they are not found where aekit looks")
    p.add_argument("--limit", type=positive_int, metavar="N",
                   help="use only the first N samples of the training and of the test data")
    p.add_argument("--models", metavar="NAMES",
                   help="comma-separated families, e.g. ae,denoising,sparse,contractive,vae,hvae,vqvae (default: "
                        "every family that needs no labels; aekit list-models shows them)")
    p.add_argument("--epochs", type=positive_int, default=30, metavar="N", help="epochs per family (default: 30)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write leaderboard.csv and leaderboard.html")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="seed of every model and of a file's split (default: 0)")
    p.add_argument("--latent-dim", type=positive_int, metavar="K", help="code size of every family (default: each family's)")
    p.add_argument("--hidden-dims", type=_int_tuple, metavar="H1,H2",
                   help="layer sizes of every family, e.g. 256,128 (default: each family's)")
    p.add_argument("--batch-size", type=positive_int, metavar="N", help="samples per step (default: each family's)")
    p.add_argument("--lr", type=float, metavar="LR", help="learning rate (default: each family's)")
    p.add_argument("--set", action="append", default=[], metavar="[FAMILY.]NAME=VALUE", dest="settings",
                   help="any other estimator parameter, for every family (weight_decay=1e-4) or for one "
                        "(vae.beta=4); repeatable")
    p.add_argument("--nll-samples", type=count, default=100, metavar="K",
                   help="importance samples per test point for the NLL of variational models (default: 100; 0 skips it)")
    anomaly = p.add_mutually_exclusive_group()
    anomaly.add_argument("--anomaly-class", metavar="LABEL",
                         help="the class held out for the anomaly AUC (default: the least frequent training label)")
    anomaly.add_argument("--no-anomaly", action="store_true",
                         help="skip the anomaly AUC (it trains each family a second time)")
    threads_arg(p)
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_cmd_compare)


def _int_tuple(text: str) -> tuple[int, ...]:
    value = parse_value(text, ("tuple:int",))
    if not value or min(value) < 1:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected positive integers such as 256,128")
    return value


def _settings(args) -> tuple[dict, dict]:
    """The shared and the per-family estimator parameters from the flags and --set."""
    params = {k: v for k, v in (("latent_dim", args.latent_dim), ("hidden_dims", args.hidden_dims),
                                ("batch_size", args.batch_size), ("lr", args.lr)) if v is not None}
    per_family: dict[str, dict] = {}
    table = param_table() if args.settings else {}
    for item in args.settings:
        key, sep, text = item.partition("=")
        family, dot, name = key.strip().rpartition(".")
        name = name.replace("-", "_")
        if not sep or not name:
            raise UsageError(f"--set {item!r}: expected NAME=VALUE or FAMILY.NAME=VALUE")
        if name not in table:
            raise UsageError(f"--set {item!r}: {name!r} is no estimator parameter (aekit fit --help lists them)")
        try:
            value = parse_value(text, table[name].param.kinds)
        except argparse.ArgumentTypeError as e:
            raise UsageError(f"--set {item!r}: {e}") from None
        (per_family.setdefault(family, {}) if dot else params)[name] = value
    return params, per_family


def _cmd_compare(args) -> int:
    from ..run import compare, load_run_data

    params, per_family = _settings(args)
    rd = load_run_data(args.data, seed=args.seed, limit=args.limit, root=args.data_root)
    held_out = None
    if args.anomaly_class is not None:
        held_out = _label(args.anomaly_class)
    board = compare(
        rd.X_train, rd.y_train, X_test=rd.X_eval, y_test=rd.y_eval, models=args.models, epochs=args.epochs,
        params=params, model_params=per_family, random_state=args.seed, nll_samples=args.nll_samples,
        anomaly=not args.no_anomaly, anomaly_class=held_out, data_name=Path(str(args.data)).name, out=args.out,
        progress=not args.quiet,
    )
    if not args.quiet:
        print(board.to_markdown())
        print()
        print(" ".join(board.recommendation))
    out = Path(args.out).resolve()
    print(f"leaderboard: {(out / 'leaderboard.html').as_uri()} (numbers: {out / 'leaderboard.csv'})")
    return 0


def _label(text: str):
    try:
        return int(text)
    except ValueError:
        return text
