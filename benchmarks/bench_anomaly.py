"""Anomaly detection: ROC-AUC and fit time of aekit.apps.AnomalyDetector (AE reconstruction
error, VAE ELBO) against PyOD's AutoEncoder and VAE, scikit-learn's IsolationForest and PCA
reconstruction error.

Image protocol (one-class, as in Ruff et al. 2018): each class in turn is "normal"; detectors are
fitted on a subsample of that class's training images and scored on a fixed subsample of the
test set, where the other nine classes are the anomalies; ROC-AUC is averaged over the 10 classes.
Tabular: scikit-learn's bundled breast-cancer data, benign tumours as normal and malignant ones
as anomalies (37% of the data, so "anomaly" is a label here, not a rarity): fitted on 70% of the
benign rows, scored on the other benign rows plus every malignant one, over 5 random splits.

    python benchmarks/bench_anomaly.py [--quick] [--data mnist fashion-mnist breast-cancer]
"""

from __future__ import annotations

import time

import numpy as np
from _apps import header, load, setup, table
from sklearn.datasets import load_breast_cancer
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from aekit.apps import AnomalyDetector


class PCAError:
    """PCA reconstruction error as an outlier score (higher = more anomalous)."""

    def __init__(self, n_components):
        self.pca = PCA(n_components, random_state=0)

    def fit(self, X):
        self.pca.fit(X)
        return self

    def anomaly_score(self, X):
        return ((self.pca.inverse_transform(self.pca.transform(X)) - X) ** 2).mean(1)


def _pyod(kind, **kw):
    from pyod.models.auto_encoder import AutoEncoder as PyodAE
    from pyod.models.vae import VAE as PyodVAE

    cls = PyodAE if kind == "ae" else PyodVAE
    return cls(contamination=0.1, verbose=0, random_state=0, device="cpu", **kw)


def detectors(image: bool, quick: bool):
    """name -> (factory, function (fitted, X) -> anomaly score, higher = more anomalous)."""
    epochs = 3 if quick else (20 if image else 200)
    net = {"latent_dim": 16, "hidden_dims": (256, 128)} if image else {"latent_dim": 4, "hidden_dims": (32, 16)}
    common = dict(epochs=epochs, batch_size=64, validation_fraction=0.0, random_state=0, device="cpu", **net)
    neg = lambda est, X: -est.score_samples(X)
    pyod_score = lambda est, X: est.decision_function(X)
    return {
        "aekit AE (reconstruction)": (lambda: AnomalyDetector("ae", **common), neg),
        "aekit VAE (ELBO)": (lambda: AnomalyDetector("vae", scoring="elbo", **common), neg),
        "PyOD AutoEncoder (defaults)": (lambda: _pyod("ae", epoch_num=3 if quick else 10), pyod_score),
        "PyOD VAE (defaults)": (lambda: _pyod("vae", epoch_num=3 if quick else 30), pyod_score),
        "IsolationForest (100 trees)": (lambda: IsolationForest(random_state=0), neg),
        f"PCA error ({net['latent_dim']} comps)": (lambda: PCAError(net["latent_dim"]),
                                                  lambda est, X: est.anomaly_score(X)),
    }


def evaluate(tasks, image: bool, quick: bool):
    """tasks: list of (X_fit, X_test, is_anomaly). Returns rows with mean/std AUC and total fit seconds."""
    rows = []
    for name, (make, score) in detectors(image, quick).items():
        aucs, fit_s = [], 0.0
        for X_fit, X_test, is_anomaly in tasks:
            est = make()
            t0 = time.perf_counter()
            est.fit(X_fit)
            fit_s += time.perf_counter() - t0
            aucs.append(roc_auc_score(is_anomaly, score(est, X_test)))
        rows.append({"detector": name, "mean ROC-AUC": float(np.mean(aucs)), "std": float(np.std(aucs)),
                     "per task": " ".join(f"{a:.2f}" for a in aucs), "total fit s": f"{fit_s:.0f}"})
    return rows


def image_tasks(name, n_per_class, n_test):
    X_train, y_train = load(name, "train")
    X_test, y_test = load(name, "test", n_test, seed=1)
    rng = np.random.default_rng(0)
    tasks = []
    for c in range(10):
        idx = rng.choice(np.flatnonzero(y_train == c), n_per_class, replace=False)
        tasks.append((X_train[idx], X_test, (y_test != c).astype(int)))
    return tasks


def tabular_tasks(n_splits):
    data = load_breast_cancer()
    X, y = data.data.astype(np.float32), data.target  # target 1 = benign
    benign, malignant = X[y == 1], X[y == 0]
    tasks = []
    for seed in range(n_splits):
        perm = np.random.default_rng(seed).permutation(len(benign))
        cut = int(0.7 * len(benign))
        scaler = StandardScaler().fit(benign[perm[:cut]])
        X_test = np.concatenate([benign[perm[cut:]], malignant])
        is_anom = np.r_[np.zeros(len(benign) - cut), np.ones(len(malignant))].astype(int)
        tasks.append((scaler.transform(benign[perm[:cut]]).astype(np.float32),
                      scaler.transform(X_test).astype(np.float32), is_anom))
    return tasks


def main() -> None:
    p = setup(__doc__)
    p.add_argument("--data", nargs="+", default=["mnist", "fashion-mnist", "breast-cancer"])
    args = p.parse_args()
    header("Anomaly detection: ROC-AUC (bench_anomaly.py)")
    n_per_class, n_test = (200, 300) if args.quick else (1000, 2000)
    for name in args.data:
        if name == "breast-cancer":
            tasks = tabular_tasks(2 if args.quick else 5)
            print(f"### breast cancer (tabular, 30 features, standardised on the fit rows): fit on "
                  f"{len(tasks[0][0])} benign rows, test on {len(tasks[0][1])} rows "
                  f"({int(tasks[0][2].sum())} malignant); AUC over {len(tasks)} random splits; aekit nets MLP "
                  f"30-32-16-4, {3 if args.quick else 200} epochs\n")
            rows = evaluate(tasks, image=False, quick=args.quick)
        else:
            tasks = image_tasks(name, n_per_class, n_test)
            print(f"### {name}, one-class protocol: per class, fit on {n_per_class} training images of the class, "
                  f"test on the same {n_test} random test images (about 10% normal); aekit nets MLP "
                  f"784-256-128-16, {3 if args.quick else 20} epochs, batch 64\n")
            rows = evaluate(tasks, image=True, quick=args.quick)
        print(table(rows, ["detector", "mean ROC-AUC", "std", "total fit s", "per task"]))


if __name__ == "__main__":
    main()
