"""Which autoencoder for my data? ``aekit.compare`` leaderboards on digits (whole), MNIST (10,000
random training and 2,000 random test images, seed 0) and breast cancer (read from a CSV with a target column,
a seeded 20% held out): the seven unconditional families at their defaults, one seed, one thread.

    python benchmarks/bench_compare.py [--quick] [--out DIR]

Writes each leaderboard's CSV and HTML page into DIR/<dataset>/ (default: a temporary folder) and
prints the Markdown tables and recommendations.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from _apps import header, load, setup

import aekit
from aekit.run import load_run_data

MODELS = ["ae", "denoising", "sparse", "contractive", "vae", "hvae", "vqvae"]
SETTINGS = {  # dataset -> (n_train, n_test, epochs)
    "digits": (None, None, 100),
    "mnist": (10_000, 2_000, 10),
    "breast-cancer.csv": (None, None, 200),
}


def breast_cancer_csv(folder: Path) -> Path:
    """scikit-learn's breast cancer table as a CSV: 30 named features and a ``target`` column."""
    from sklearn.datasets import load_breast_cancer

    bc = load_breast_cancer()
    path = folder / "breast-cancer.csv"
    header_line = ",".join([n.replace(" ", "_") for n in bc.feature_names] + ["target"])
    np.savetxt(path, np.column_stack([bc.data, bc.target]), delimiter=",", header=header_line, comments="", fmt="%.6g")
    return path


def main() -> None:
    parser = setup(__doc__)
    parser.add_argument("--out", help="folder for the leaderboards (default: a temporary folder)")
    args = parser.parse_args()
    header("Which autoencoder for my data? (bench_compare.py)")
    out = Path(args.out or tempfile.mkdtemp(prefix="aekit-compare-"))
    for name, (n_train, n_test, epochs) in SETTINGS.items():
        if args.quick:
            n_train, n_test, epochs = 1000, 300, 2
        if name.endswith(".csv"):  # through aekit's CSV reader: the target column becomes the labels
            rd = load_run_data(str(breast_cancer_csv(out)), seed=0)
            X, y, X_test, y_test = rd.X_train, rd.y_train, rd.X_eval, rd.y_eval
            split = rd.eval_description
        else:
            X, y = load(name, "train", n_train, flat=False)
            X_test, y_test = load(name, "test", n_test, flat=False)
            split = "the test split" + (f", {n_test} random images" if n_test else "")
        start = time.perf_counter()
        board = aekit.compare(X, y, X_test=X_test, y_test=y_test, models=MODELS, epochs=epochs,
                              params={"threads": 1}, data_name=name, out=out / name.removesuffix(".csv"),
                              progress=True)
        total = time.perf_counter() - start
        print(f"#### {name}: {len(X)} train / {len(X_test)} test ({split}); "
              f"every family at its defaults, {epochs} epochs, seed 0, 1 thread; anomaly class "
              f"{board.info['anomaly_class']} held out; NLL with K=100; whole comparison {total:.0f} s\n")
        print(board.to_markdown())
        print()
        print("> " + " ".join(board.recommendation))
        print()
    print(f"leaderboards written under {out}")


if __name__ == "__main__":
    main()
