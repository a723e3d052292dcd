"""Anomaly detection: ROC-AUC and fit time of the default ``aekit.AnomalyDetector()`` against
eight baselines with their defaults, on the same splits in the same run.

Image protocol (Ruff et al. 2018, "Deep One-Class Classification", and the papers after it): each
class in turn is normal; every detector is fitted on all training images of that class (~6,000)
and scores the full 10,000-image test set, where the other nine classes are the anomalies.
ROC-AUC is averaged over the 10 classes (MNIST and Fashion-MNIST; also the 8x8 digits as
images, aekit's 1,437 / 360 split, where a class has only ~145 training images).

Tabular protocol: scikit-learn's bundled labelled sets - breast cancer (malignant, the minority
class, as anomalies), wine, iris and digits (each class in turn as normal) - fitted on a random
70% of the normal rows and scored on the other 30% plus every anomaly, over several random
splits; and synthetic sets with planted anomalies of four kinds (after ADBench, Han et al. 2022),
one new data set per seed. Every detector gets the same input: tabular data standardised with
the fit rows' mean and std, images in [0, 1] (aekit as (n, 1, 28, 28) images, the baselines
flattened to 784 features).

Baselines, their defaults: IsolationForest (100 trees), kNN distance (mean distance to the 5
nearest training samples), LOF (novelty=True, 20 neighbours), OneClassSVM (RBF, gamma="scale",
nu=0.5), PCA reconstruction error (components for 90% of the variance), and PyOD's AutoEncoder,
VAE and DeepSVDD (run under benchmarks/.venv-peers; skipped, and said so, where PyOD is missing).

    python benchmarks/bench_anomaly.py [--quick] [--data mnist fashion-mnist digits-images tabular synthetic]
"""

from __future__ import annotations

import os
import time

import numpy as np
from _apps import header, setup, table
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import LocalOutlierFactor, NearestNeighbors
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

from aekit.apps import AnomalyDetector

AEKIT = "aekit AnomalyDetector()"


class KNNDistance:
    """Mean distance to the k nearest training samples (higher = more anomalous)."""

    def __init__(self, k=5):
        self.k = k

    def fit(self, X):
        self.nn = NearestNeighbors(n_neighbors=min(self.k, len(X))).fit(X)
        return self

    def anomaly_score(self, X):
        return self.nn.kneighbors(X)[0].mean(1)


class PCAError:
    """PCA reconstruction error (components explaining 90% of the variance)."""

    def fit(self, X):
        self.pca = PCA(0.9, random_state=0).fit(X)
        return self

    def anomaly_score(self, X):
        return ((self.pca.inverse_transform(self.pca.transform(X)) - X) ** 2).sum(1)


def _pyod(name, n_features):
    from pyod.models.auto_encoder import AutoEncoder
    from pyod.models.deep_svdd import DeepSVDD
    from pyod.models.vae import VAE

    if name == "DeepSVDD":
        return DeepSVDD(n_features=n_features, verbose=0, random_state=0)
    return {"AutoEncoder": AutoEncoder, "VAE": VAE}[name](verbose=0, random_state=0, device="cpu")


def _have_pyod() -> bool:
    try:
        import pyod  # noqa: F401
    except ImportError:
        return False
    return True


def detectors(quick: bool):
    """name -> (factory(n_features), score(fitted, X) -> anomaly score, higher = more anomalous,
    wants_images). ``--quick`` shortens only the slow baselines' training."""
    neg = lambda est, X: -est.score_samples(X)
    own = lambda est, X: est.anomaly_score(X)
    pyod = lambda est, X: est.decision_function(X)
    out = {
        AEKIT: (lambda d: AnomalyDetector(random_state=0), neg, True),
        "IsolationForest": (lambda d: IsolationForest(random_state=0), neg, False),
        "kNN distance (k=5)": (lambda d: KNNDistance(5), own, False),
        "LOF (novelty)": (lambda d: LocalOutlierFactor(novelty=True), neg, False),
        "OneClassSVM": (lambda d: OneClassSVM(), neg, False),
        "PCA error (90% var.)": (lambda d: PCAError(), own, False),
    }
    if _have_pyod():
        for name in ("AutoEncoder", "VAE", "DeepSVDD"):
            out[f"PyOD {name}"] = ((lambda d, n=name: _pyod(n, d)), pyod, False)
    return out


def evaluate(tasks, quick: bool, group: str, only=None):
    """tasks: list of (label, X_fit, X_test, is_anomaly); images are (n, 1, h, w). Every
    detector is fitted and scored on a task before the next task (a run stopped early still has
    complete rows for the tasks it finished; each finished task is printed). Returns one row per
    detector with mean/std AUC over the tasks and the mean fit seconds per task."""
    chosen = {n: d for n, d in detectors(quick).items() if not only or any(n.startswith(o) for o in only)}
    res = {n: {"auc": [], "fit": [], "cpu": []} for n in chosen}
    for label, X_fit, X_test, is_anom in tasks:
        line = []
        for name, (make, score, wants_images) in chosen.items():
            shape = (lambda A: A) if wants_images else (lambda A: A.reshape(len(A), -1))
            est = make(int(np.prod(X_fit.shape[1:])))
            t0, c0 = time.perf_counter(), time.process_time()
            est.fit(shape(X_fit))
            res[name]["fit"].append(time.perf_counter() - t0)
            res[name]["cpu"].append(time.process_time() - c0)
            res[name]["auc"].append(roc_auc_score(is_anom, score(est, shape(X_test))))
            line.append(f"{name} {res[name]['auc'][-1]:.4f} ({res[name]['fit'][-1]:.0f} s)")
        print(f"  [{group} {label}] " + "; ".join(line) + f"; load {os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    for name, r in res.items():
        rows.append({"detector": name, "mean ROC-AUC": float(np.mean(r["auc"])), "std": f"{np.std(r['auc']):.3f}",
                     "fit s / task": f"{np.mean(r['fit']):.1f}", "CPU s / task": f"{np.mean(r['cpu']):.1f}",
                     "per task": " ".join(f"{100 * a:.1f}" for a in r["auc"])})
    means = [round(r["mean ROC-AUC"], 3) for r in rows]  # ranked as printed: equal at 3 decimals is a tie
    for r, m in zip(rows, means):
        r["rank"] = 1 + sum(o > m for o in means)
        r["mean ROC-AUC"] = f"**{m:.3f}**" if m == max(means) else f"{m:.3f}"
    return rows


# -- image protocol -----------------------------------------------------------------------------


def image_tasks(name: str, quick: bool, classes=None, max_train=None):
    from aekit.datasets import load_dataset

    tr, te = load_dataset(name.removesuffix("-images"), split="train"), load_dataset(name.removesuffix("-images"), split="test")
    X_train, y_train = np.asarray(tr.X, np.float32), np.asarray(tr.y)
    X_test, y_test = np.asarray(te.X, np.float32), np.asarray(te.y)
    rng = np.random.default_rng(0)
    if quick and len(X_test) > 1000:  # smoke run: 500 training images per class, 1,000 test images, 3 classes
        keep = np.sort(rng.choice(len(X_test), 1000, replace=False))
        X_test, y_test = X_test[keep], y_test[keep]
    tasks = []
    cap = 500 if quick else max_train
    for c in (classes if classes is not None else ((0, 1, 2) if quick else range(10))):
        idx = np.flatnonzero(y_train == c)
        if cap is not None and len(idx) > cap:  # a seeded random subset of the class
            idx = np.sort(rng.choice(idx, cap, replace=False))
        tasks.append((str(c), X_train[idx], X_test, (y_test != c).astype(int)))
    return tasks


# -- tabular protocol ----------------------------------------------------------------------------


def _split(X_normal, X_anomalies, seed):
    """Fit on a random 70% of the normal rows; test on the rest plus every anomaly; standardised
    with the fit rows' statistics."""
    perm = np.random.default_rng(seed).permutation(len(X_normal))
    cut = int(0.7 * len(X_normal))
    fit, rest = X_normal[perm[:cut]], X_normal[perm[cut:]]
    scaler = StandardScaler().fit(fit)
    X_test = np.concatenate([rest, X_anomalies])
    is_anom = np.r_[np.zeros(len(rest)), np.ones(len(X_anomalies))].astype(int)
    return scaler.transform(fit).astype(np.float32), scaler.transform(X_test).astype(np.float32), is_anom


def real_tabular_tasks(name: str, n_splits: int):
    loader = {"breast cancer": load_breast_cancer, "wine": load_wine, "iris": load_iris, "digits": load_digits}[name]
    data = loader()
    X, y = data.data.astype(np.float64), data.target
    tasks = []
    for seed in range(n_splits):
        if name == "breast cancer":  # target 0 = malignant, the minority class
            tasks.append((f"s{seed}", *_split(X[y == 1], X[y == 0], seed)))
        else:
            for c in np.unique(y):
                tasks.append((f"c{c}s{seed}", *_split(X[y == c], X[y != c], seed)))
    return tasks


def _manifolds(rng, d=16, k=3, n_clusters=3):
    """Parameters of the normal data: n_clusters curved k-dimensional manifolds in d dimensions."""
    return [(rng.normal(size=(k, d)), rng.normal(size=(d, d)) / np.sqrt(d), rng.normal(scale=2.0, size=d))
            for _ in range(n_clusters)]


def _sample(params, n, rng, noise):
    """n points of the mixture: x = 3 B tanh(A z) + mu + noise, z ~ N(0, I_k)."""
    k, d = params[0][0].shape
    which = rng.integers(len(params), size=n)
    X = np.empty((n, d))
    for j, (A, B, mu) in enumerate(params):
        m = which == j
        X[m] = 3 * np.tanh(rng.normal(size=(m.sum(), k)) @ A) @ B + mu + noise * rng.normal(size=(m.sum(), d))
    return X


def planted(kind: str, seed: int, n_fit: int = 500, n_test: int = 500, n_anomalies: int = 50, noise: float = 0.5):
    """A synthetic set with planted anomalies of one kind (ADBench's kinds, Han et al. 2022):
    "global" (uniform over the data's bounding box, 10% margin), "clustered" (a tight cluster, 0.2
    std wide, half a std from a normal point), "dependency" (each feature drawn from the normal
    marginal independently: the marginals are right, the relations between features are broken)
    and "local" (normal points with 3x the noise). Normal data: three curved 3-D manifolds in 16
    dimensions plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    params = _manifolds(rng)
    X = _sample(params, n_fit + n_test, rng, noise)
    lo, hi, std = X.min(0), X.max(0), X.std(0)
    d = X.shape[1]
    if kind == "global":
        A = rng.uniform(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo), size=(n_anomalies, d))
    elif kind == "clustered":
        centre = _sample(params, 1, rng, noise)[0] + 0.5 * std * rng.normal(size=d)
        A = centre + 0.2 * std * rng.normal(size=(n_anomalies, d))
    elif kind == "dependency":
        P = _sample(params, n_anomalies, rng, noise)
        A = np.stack([rng.permutation(P[:, j]) for j in range(d)], axis=1)
    elif kind == "local":
        A = _sample(params, n_anomalies, rng, 3 * noise)
    else:
        raise ValueError(kind)
    scaler = StandardScaler().fit(X[:n_fit])
    X_test = np.concatenate([X[n_fit:], A])
    is_anom = np.r_[np.zeros(n_test), np.ones(n_anomalies)].astype(int)
    return scaler.transform(X[:n_fit]).astype(np.float32), scaler.transform(X_test).astype(np.float32), is_anom


KINDS = ("global", "clustered", "dependency", "local")


def main() -> None:
    p = setup(__doc__)
    choices = ["mnist", "fashion-mnist", "digits-images", "tabular", "synthetic"]
    p.add_argument("--data", nargs="+", default=choices, choices=choices)
    p.add_argument("--classes", nargs="+", type=int, help="image protocol: only these normal classes (default: all 10)")
    p.add_argument("--max-train", type=int, help="image protocol: at most this many training images per class "
                   "(a seeded random subset; default: all ~6,000)")
    p.add_argument("--splits", type=int, default=5, help="tabular protocol: random splits (synthetic: seeds) per set")
    p.add_argument("--detectors", nargs="+", help="only the detectors whose names start with one of these")
    args = p.parse_args()
    header("Anomaly detection: ROC-AUC (bench_anomaly.py)")
    print(f"Load average at start: {' '.join(f'{v:.1f}' for v in os.getloadavg())}  ")
    if not _have_pyod():
        print("PyOD is not importable here: its AutoEncoder, VAE and DeepSVDD are skipped "
              "(run with benchmarks/.venv-peers/bin/python).\n")
    n_splits = 2 if args.quick else args.splits
    summary = {}
    def add(section):  # print each data set's table as soon as it is done
        short, title, rows = section
        summary[short] = rows
        print(f"\n#### {title}\n")
        print(table(rows, ["detector", "mean ROC-AUC", "std", "rank", "fit s / task", "CPU s / task", "per task"]),
              flush=True)

    for name in args.data:
        if name in ("mnist", "fashion-mnist", "digits-images"):
            tasks = image_tasks(name, args.quick, args.classes, args.max_train)
            cap = 500 if args.quick else args.max_train
            title = (f"{name}, one-class protocol: per class, fit on {f'<= {cap}' if cap else 'all'} training images of "
                     f"the class, score {len(tasks[0][2])} test images; tasks = classes "
                     f"{', '.join(t[0] for t in tasks)}; per-task AUC in %")
            add((name, title, evaluate(tasks, args.quick, name, args.detectors)))
        elif name == "tabular":
            for ds in ("breast cancer", "wine", "iris", "digits"):
                tasks = real_tabular_tasks(ds, n_splits)
                X0 = tasks[0][1]
                title = (f"{ds} ({X0.shape[1]} features): {len(tasks)} tasks "
                         f"({'malignant as anomalies' if ds == 'breast cancer' else 'each class as normal'} x "
                         f"{n_splits} random 70/30 splits of the normal rows); fit on ~{len(X0)} rows")
                add((ds, title, evaluate(tasks, args.quick, ds, args.detectors)))
        else:
            for kind in KINDS:
                tasks = [(f"s{s}", *planted(kind, s)) for s in range(n_splits)]
                title = (f"synthetic, {kind} anomalies: 16 features, fit on 500 normal rows, test on 500 normal + "
                         f"50 anomalies; {n_splits} seeds (a new data set each)")
                add((f"synthetic {kind}", title, evaluate(tasks, args.quick, kind, args.detectors)))
    names = list(dict.fromkeys(r["detector"] for rs in summary.values() for r in rs))
    print("\n#### Summary: mean ROC-AUC per data set (best in bold)\n")
    cols = ["data set"] + names
    rows = [{"data set": ds, **dict.fromkeys(names, "-"), **{r["detector"]: r["mean ROC-AUC"] for r in rs}}
            for ds, rs in summary.items()]
    print(table(rows, cols))
    print(f"Load average at end: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
