"""Which autoencoder for my data? :func:`compare` trains several model families on the same data
with the same budget and seed, measures each the same way, and returns a :class:`Leaderboard`
(CSV, HTML page in the report's style, Markdown) with the best of each column marked and a
recommendation in words derived from the numbers.

Each family's test-set numbers: reconstruction error (and PSNR for images); the ELBO and the
importance-weighted NLL where the model has a likelihood; with labels, linear-probe and k-NN
accuracy on the codes and the AUC of an anomaly detector that never saw one held-out class;
active units; fit time; parameters. A family that fails (a NaN loss, a setting it refuses) gets
its row with the error and the others go on.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._utils import atomic_write_text
from .._version import __version__

__all__ = ["COLUMNS", "Column", "Leaderboard", "compare"]

CSV_NAME, HTML_NAME = "leaderboard.csv", "leaderboard.html"
TEST_FRACTION = 0.2  # of X held out for the test numbers when no X_test is given
CONTAMINATION = 0.1  # the anomaly detector's (only its threshold depends on it, not the AUC)
NATS_TIE = 0.5  # ELBO and NLL values this close (nats per sample) are called a tie


@dataclass(frozen=True)
class Column:
    """One measured quantity: its key (the CSV header), label, unit, and which way is better
    ("higher", "lower", or None when neither is: it is not marked)."""

    key: str
    label: str
    unit: str
    better: str | None
    spec: str = ".4g"


COLUMNS = (
    Column("recon_mse", "recon MSE", "mean squared error per value on the test data", "lower"),
    Column("psnr", "PSNR", "dB, images", "higher", ".2f"),
    Column("elbo", "ELBO", "nats per sample, variational models", "higher", ".2f"),
    Column("nll", "NLL", "importance-weighted, nats per sample, variational models", "lower", ".2f"),
    Column("probe_acc", "probe acc", "test accuracy of a logistic regression on the codes", "higher", ".3f"),
    Column("knn_acc", "kNN acc", "test accuracy of 5-nearest-neighbour voting on the codes", "higher", ".3f"),
    Column("anomaly_auc", "anomaly AUC", "held-out class vs the rest, by reconstruction error", "higher", ".3f"),
    Column("active_units", "active", "code dimensions with Cov_x(E_q[z]) > 0.01, variational models", None, "d"),
    Column("fit_time_s", "fit time", "seconds to train", "lower", ".1f"),
    Column("n_params", "params", "weights of the model", "lower", ",d"),
)
_BY_KEY = {c.key: c for c in COLUMNS}


@dataclass
class Leaderboard:
    """The result of :func:`compare`: one row per model family (``rows``: dicts with ``model``,
    ``estimator``, ``status`` ("ok" or "failed"), ``error``, a value per column key, None where
    it does not apply, and ``se``, the standard errors over the test samples of those that have
    one), the columns measured, a recommendation (sentences) and what was compared (``info``)."""

    rows: list[dict[str, Any]]
    columns: list[Column]
    recommendation: list[str]
    info: dict[str, Any] = field(default_factory=dict)

    def best(self) -> dict[str, str]:
        """Column key -> the model best on it, among the rows that finished (ties go to the first),
        for the columns with a direction where more than one model has a value (or only one model
        was compared)."""
        out = {}
        for c in self.columns:
            ranked = self.ranking(c.key)
            if len(ranked) > 1 or (ranked and len(self.rows) == 1):
                out[c.key] = ranked[0]["model"]
        return out

    def ranking(self, key: str) -> list[dict[str, Any]]:
        """The finished rows with a value for ``key``, best first ([] for a column with no direction)."""
        col = _BY_KEY[key]
        rows = [r for r in self.rows if r["status"] == "ok" and _finite(r.get(key))]
        if col.better is None:
            return []
        return sorted(rows, key=lambda r: -r[key] if col.better == "higher" else r[key])

    def to_csv(self, path=None) -> str:
        """The table as CSV (model, estimator, status, error, then one column per key); written to
        ``path`` when given. Returns the text."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        se_keys = [c.key for c in self.columns if any(c.key in (r.get("se") or {}) for r in self.rows)]
        w.writerow(["model", "estimator", "status", "error", *(c.key for c in self.columns),
                    *(f"{k}_se" for k in se_keys)])
        for r in self.rows:
            se = r.get("se") or {}
            w.writerow([r["model"], r["estimator"], r["status"], r["error"] or "",
                        *("" if not _finite(r.get(c.key)) else r[c.key] for c in self.columns),
                        *("" if not _finite(se.get(k)) else se[k] for k in se_keys)])
        if path is not None:
            atomic_write_text(path, buf.getvalue())
        return buf.getvalue()

    def to_markdown(self) -> str:
        """The table in Markdown, the best of each column in bold, failures in their row."""
        best = self._marked()
        lines = ["| model | " + " | ".join(c.label for c in self.columns) + " |",
                 "|---|" + "---:|" * len(self.columns)]
        for i, r in enumerate(self.rows):
            if r["status"] != "ok":
                lines.append(f"| {r['model']} ({_failure(r)}) |" + " |" * len(self.columns))
                continue
            cells = [f"**{_cell(r, c)}**" if (i, j) in best else _cell(r, c) for j, c in enumerate(self.columns)]
            lines.append(f"| {r['model']} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def to_html(self, path=None) -> str:
        """The leaderboard page (the report's style): the table with the best of each column
        marked, the recommendation, failures, and how everything was measured. Written to
        ``path`` when given; returns the page."""
        from ..report.html import Section, Table, render

        marked = {(i, j + 1) for i, j in self._marked()}
        rows = [[r["model"], *(_cell(r, c) for c in self.columns)] if r["status"] == "ok"
                else [f"{r['model']} ({_failure(r)})", *("" for _ in self.columns)] for r in self.rows]
        failures = [f"{r['model']} failed: {_one_line(r['error'])}" for r in self.rows if r["status"] != "ok"]
        info = self.info
        sections = [
            Section("leaderboard", "Leaderboard",
                    text="Each model family trained on the same training data with the same budget and seed; every "
                         "number is measured on the test data. The best of each column is highlighted.",
                    table=Table(["model", *(c.label for c in self.columns)], rows, marked, name="leaderboard"),
                    notes=["Columns: " + "; ".join(f"{c.label}: {c.unit}" for c in self.columns) + "."]
                    + info.get("notes", []),
                    warning=" ".join(failures) or None),
            Section("recommendation", "Which one?", text=" ".join(self.recommendation)),
        ]
        page = render(
            title=f"Which autoencoder for {info.get('data', 'this data')}?",
            subtitle=(f"{len(self.rows)} model families, {info.get('epochs')} epochs each, seed {info.get('seed')}; "
                      f"trained on {info.get('n_train')} samples, measured on {info.get('n_test')}"),
            metrics=[(f"best {_BY_KEY[k].label}", m) for k, m in self.best().items() if k in _HEADLINE],
            facts=[(k, str(v)) for k, v in info.get("facts", [])],
            warnings=[],
            sections=sections,
            settings=[(k, str(v)) for k, v in info.get("settings", {}).items()],
            version=__version__,
            footer=f"Written by aekit {__version__} (aekit compare); the numbers are in {CSV_NAME} next to this page.",
            settings_source="the comparison's settings",
        )
        if path is not None:
            atomic_write_text(path, page)
        return page

    def to_frame(self):
        """The rows as a pandas DataFrame (needs pandas)."""
        import pandas as pd

        return pd.DataFrame(self.rows).set_index("model")

    def _marked(self) -> set[tuple[int, int]]:
        """(row, column) of the best value of each column."""
        best = self.best()
        models = [r["model"] for r in self.rows]
        return {(models.index(best[c.key]), j) for j, c in enumerate(self.columns) if c.key in best}

    def __str__(self) -> str:
        return self.to_markdown() + "\n\n" + " ".join(self.recommendation)


_HEADLINE = ("recon_mse", "nll", "probe_acc", "anomaly_auc")


def _finite(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and math.isfinite(v)


def _cell(r: dict[str, Any], c: Column) -> str:
    v = r.get(c.key)
    if not _finite(v):
        return "-"
    if c.key == "active_units":
        return f"{int(v)}/{r.get('latent_dim')}"
    return format(int(v) if c.spec.endswith("d") else v, c.spec)


def _failure(r: dict[str, Any]) -> str:
    """A failed row's table cell: 'failed' and the error's type."""
    return f"failed, {str(r['error']).split(':')[0]}"


def _one_line(text) -> str:
    return " ".join(str(text).split())


# -- the comparison ---------------------------------------------------------------------------


def compare(
    X,
    y=None,
    *,
    X_test=None,
    y_test=None,
    models=None,
    epochs: int = 30,
    params: dict[str, Any] | None = None,
    model_params: dict[str, dict[str, Any]] | None = None,
    random_state: int = 0,
    nll_samples: int = 100,
    anomaly: bool = True,
    anomaly_class=None,
    data_name: str = "this data",
    out=None,
    progress: bool = False,
) -> Leaderboard:
    """Train each model family on the same data with the same budget and seed, and rank them.

    Parameters
    ----------
    X : training samples, (n, n_features) or images (n, h, w) / (n, c, h, w).
    y : labels (n,), optional: with them the codes are probed (linear probe, k-NN) and an
        anomaly detector is scored on a held-out class.
    X_test, y_test : the test data; when not given, a seeded random ``TEST_FRACTION`` (20%) of X
        (stratified by y) is held out.
    models : family names (default: every registered family that is not conditional).
    epochs : training epochs, the same for every family.
    params : estimator parameters for every family (latent_dim, hidden_dims, batch_size, lr, ...);
        each must be a parameter of every family compared.
    model_params : {family: {parameter: value}} for one family only.
    random_state : the seed of every model (and of the held-out split).
    nll_samples : importance samples per test point for the NLL of variational models (0 skips it).
    anomaly : fit a second model per family without the held-out class and score how well its
        reconstruction error flags that class (doubles the training time).
    anomaly_class : the class held out (default: the least frequent class of the training labels,
        the smallest label among ties).
    data_name : what the data is called on the page.
    out : a folder to write ``leaderboard.csv`` and ``leaderboard.html`` into.
    progress : print a line per model to stderr.

    Returns
    -------
    Leaderboard

    Examples
    --------
    >>> from aekit.datasets import load_dataset
    >>> from aekit.run import compare
    >>> d, t = load_dataset("digits"), load_dataset("digits", split="test")
    >>> board = compare(d.X, d.y, X_test=t.X, y_test=t.y, models=["ae", "vae"], epochs=2,
    ...                 params={"hidden_dims": (32,)}, nll_samples=0, anomaly=False)
    >>> [r["model"] for r in board.rows], sorted(board.best())
    (['ae', 'vae'], ['fit_time_s', 'knn_acc', 'n_params', 'probe_acc', 'psnr', 'recon_mse'])
    """
    from .._registry import get_model_class, model_names
    from ..estimators import estimator_class, estimator_params

    names = _model_list(models, model_names, get_model_class)
    params, model_params = dict(params or {}), dict(model_params or {})
    _check_params(names, params, model_params, estimator_params)
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    X, y, X_test, y_test = _split(X, y, X_test, y_test, random_state)
    images = X.ndim >= 3
    held_out = _held_out_class(y, anomaly_class) if (anomaly and y is not None) else None
    reference = _Reference(X, X_test, images)

    _warm_up(X, y)
    rows = []
    for i, name in enumerate(names, 1):
        settings = {**params, **model_params.get(name, {}), "epochs": int(epochs), "random_state": random_state}
        cls = estimator_class(name)
        _say(progress, f"[{i}/{len(names)}] {name}: training {cls.__name__} for {epochs} epochs")
        row = {"model": name, "estimator": cls.__name__, "status": "ok", "error": None,
               **dict.fromkeys(c.key for c in COLUMNS), "latent_dim": None, "se": {}}
        try:
            row.update(_measure(cls, settings, X, y, X_test, y_test, reference, nll_samples, held_out))
        except (ValueError, TypeError, RuntimeError, ArithmeticError) as e:  # NonFiniteLossError is a RuntimeError
            row.update(status="failed", error=f"{type(e).__name__}: {_one_line(e)}")
            _say(progress, f"[{i}/{len(names)}] {name} failed: {row['error']}")
        else:
            _say(progress, f"[{i}/{len(names)}] {name}: done in {row['fit_time_s']:.1f} s, test recon MSE "
                           f"{row['recon_mse']:.4g}" + (f", probe {row['probe_acc']:.3f}" if y is not None else ""))
        rows.append(row)

    columns = [c for c in COLUMNS if any(r["status"] == "ok" and _finite(r.get(c.key)) for r in rows)]
    if not any(r["status"] == "ok" for r in rows):
        columns = [c for c in COLUMNS if c.key in ("recon_mse", "fit_time_s", "n_params")]
    board = Leaderboard(rows, columns, [], _info(data_name, X, X_test, y, epochs, random_state, params, model_params,
                                                 names, nll_samples, held_out, images, reference))
    board.recommendation = recommend(board)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        board.to_csv(out / CSV_NAME)
        board.to_html(out / HTML_NAME)
    return board


def _model_list(models, model_names, get_model_class) -> list[str]:
    if models is None:
        return [n for n in model_names() if not get_model_class(n).conditional]
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",") if m.strip()]
    models = list(models)
    unknown = [m for m in models if m not in model_names()]
    if unknown:
        raise ValueError(f"unknown model famil{'y' if len(unknown) == 1 else 'ies'} {', '.join(map(repr, unknown))}; "
                         f"choose from {', '.join(model_names())}")
    if not models or len(set(models)) != len(models):
        raise ValueError(f"models must name at least one family, each once, got {models!r}")
    return models


def _check_params(names, params, model_params, estimator_params) -> None:
    """Every shared parameter applies to every family; per-family ones name a compared family."""
    reserved = {"epochs", "random_state"} & (set(params) | {k for p in model_params.values() for k in p})
    if reserved:
        raise ValueError(f"set {', '.join(sorted(reserved))} with compare's own arguments (epochs=, random_state=), "
                         "the same for every family")
    stray = set(model_params) - set(names)
    if stray:
        raise ValueError(f"model_params names families that are not compared: {sorted(stray)}")
    for name in names:
        known = estimator_params(name)
        for scope, given in (("params", params), (f"model_params[{name!r}]", model_params.get(name, {}))):
            unknown = sorted(set(given) - set(known))
            if unknown:
                hint = " (give it per family in model_params)" if scope == "params" else ""
                raise ValueError(f"{scope}: {', '.join(unknown)} is not a parameter of the {name!r} family{hint}")


def _split(X, y, X_test, y_test, seed):
    X = np.asarray(X, dtype=np.float32)
    y = None if y is None else np.asarray(y)
    if X.ndim < 2 or len(X) < 4:
        raise ValueError(f"X must hold at least 4 samples, one per row; got shape {X.shape}")
    if y is not None and len(y) != len(X):
        raise ValueError(f"y has {len(y)} labels for {len(X)} samples")
    if not np.isfinite(X).all() or (X_test is not None and not np.isfinite(np.asarray(X_test, dtype=np.float32)).all()):
        raise ValueError("the data contain NaN or infinity; fill the missing values first (aekit impute) or drop them")
    if X_test is None:
        if y_test is not None:
            raise ValueError("y_test was given without X_test")
        from sklearn.model_selection import train_test_split

        stratify = y if y is not None and np.unique(y, return_counts=True)[1].min() >= 2 else None
        parts = train_test_split(X, *([] if y is None else [y]), test_size=TEST_FRACTION, random_state=seed,
                                 stratify=stratify)
        X, X_test = parts[0], parts[1]
        y, y_test = (parts[2], parts[3]) if y is not None else (None, None)
        return X, y, X_test, y_test
    X_test = np.asarray(X_test, dtype=np.float32)
    if X_test.shape[1:] != X.shape[1:]:
        raise ValueError(f"X_test has samples shaped {X_test.shape[1:]}, X {X.shape[1:]}")
    if (y is None) != (y_test is None):
        raise ValueError("give labels for both the training and the test data (y and y_test), or for neither")
    y_test = None if y_test is None else np.asarray(y_test)
    if y_test is not None and len(y_test) != len(X_test):
        raise ValueError(f"y_test has {len(y_test)} labels for {len(X_test)} samples")
    return X, y, X_test, y_test


def _held_out_class(y, given):
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        return None
    if given is None:
        return classes[np.argmin(counts)].item()  # argmin takes the first (smallest) label among ties
    if given not in set(classes.tolist()):
        raise ValueError(f"anomaly_class {given!r} is not one of the training labels {classes.tolist()}")
    return given


class _Reference:
    """The yardstick every model is measured with: for images, values in their own units and
    PSNR's peak; for tables, each feature in standard deviations of the training data, so that
    the error means the same whatever scaling a model does inside."""

    def __init__(self, X, X_test, images: bool):
        from ..evaluate import psnr_peak

        flat = X.reshape(len(X), -1).astype(np.float64)
        self.images = images
        if images:
            self.mean, self.scale = 0.0, 1.0
            self.peak = psnr_peak(X_test)
        else:
            std = flat.std(axis=0)
            self.mean, self.scale = flat.mean(axis=0), np.where(std > 1e-12, std, 1.0)
            self.peak = None

    def errors(self, X, R) -> tuple[float, float, float | None]:
        """Mean squared error per value, its standard error over the samples, and PSNR (images)."""
        a = (X.reshape(len(X), -1) - self.mean) / self.scale
        b = (np.asarray(R, dtype=np.float64).reshape(len(R), -1) - self.mean) / self.scale
        per_sample = np.mean((a - b) ** 2, axis=1)  # (n,)
        mse = float(per_sample.mean())
        if not math.isfinite(mse):
            raise ValueError("the reconstructions of the test data are not finite")
        psnr = 10 * math.log10(self.peak**2 / mse) if self.images and mse > 0 else None
        return mse, _mean_se(per_sample), psnr


def _measure(cls, settings, X, y, X_test, y_test, ref: _Reference, nll_samples, held_out) -> dict[str, Any]:
    """Fit one family and measure it (raises what the fit or a measurement raises)."""
    from ..apps import AnomalyDetector, knn_accuracy, linear_probe
    from ..evaluate import evaluate_estimator

    est = cls(**settings)
    caps = est.capabilities()
    labels = y if caps["conditional"] else None
    if caps["conditional"] and y is None:
        raise ValueError(f"{cls.__name__} is conditional: it needs labels y")
    start = time.perf_counter()
    est.fit(X, labels)
    fit_time = time.perf_counter() - start
    test_labels = y_test if caps["conditional"] else None
    R = est.reconstruct(X_test, test_labels) if test_labels is not None else est.reconstruct(X_test)
    mse, mse_se, psnr = ref.errors(X_test, R)
    row: dict[str, Any] = {"recon_mse": mse, "psnr": psnr, "fit_time_s": fit_time, "se": {"recon_mse": mse_se},
                           "n_params": int(sum(p.numel() for p in est.model_.parameters())),
                           "latent_dim": int(est.model_.config.latent_dim)}
    if caps["variational"]:
        m = evaluate_estimator(est, X_test, y_test if caps["conditional"] else None, nll_samples=nll_samples)
        row.update(elbo=m["elbo"], nll=m.get("nll"), active_units=m["active_units"])
    if y is not None:
        Z_train = est.transform(X, labels) if labels is not None else est.transform(X)
        Z_test = est.transform(X_test, test_labels) if test_labels is not None else est.transform(X_test)
        if not (np.isfinite(Z_train).all() and np.isfinite(Z_test).all()):
            raise ValueError("the codes contain NaN or infinity")
        for key, score in (("probe_acc", linear_probe), ("knn_acc", knn_accuracy)):
            row[key] = score(Z_train, y, Z_test, y_test)
            row["se"][key] = math.sqrt(row[key] * (1 - row[key]) / len(Z_test))  # binomial
        if held_out is not None and not caps["conditional"]:  # a conditional model scores with a class
            row["anomaly_auc"] = _anomaly_auc(cls(**settings), X, y, X_test, y_test, held_out, AnomalyDetector)
            if row["anomaly_auc"] is not None:
                n_anomalies = int(np.sum(np.asarray(y_test) == held_out))
                row["se"]["anomaly_auc"] = _auc_se(row["anomaly_auc"], n_anomalies, len(y_test) - n_anomalies)
    return row


_warmed_up = False


def _mean_se(values: np.ndarray) -> float:
    """Standard error of the mean of per-sample values."""
    return float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else math.inf


def _auc_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of an AUC from n_pos positives and n_neg negatives (Hanley & McNeil 1982)."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (n_pos * n_neg)
    return math.sqrt(max(var, 0.0))


def _warm_up(X, y) -> None:
    """One tiny untimed fit, once per process: the first fit pays one-off costs (imports, torch's
    first steps; about 4 s on a 2-core CPU) that are no family's fit time."""
    global _warmed_up
    if _warmed_up:
        return
    from ..estimators import estimator_class

    n = min(len(X), 64)
    estimator_class("ae")(epochs=1, hidden_dims=(8,), latent_dim=2, random_state=0).fit(X[:n].reshape(n, -1))
    _warmed_up = True


def _anomaly_auc(template, X, y, X_test, y_test, held_out, detector_cls) -> float | None:
    """AUC of flagging the held-out class in the test data, by a detector fitted without it."""
    from sklearn.metrics import roc_auc_score

    is_anomaly = np.asarray(y_test) == held_out
    if is_anomaly.all() or not is_anomaly.any():
        return None
    det = detector_cls(model=template, contamination=CONTAMINATION).fit(X[np.asarray(y) != held_out])
    scores = det.score_samples(X_test)  # higher = more normal
    if not np.isfinite(scores).all():
        raise ValueError("the anomaly scores of the test data are not finite")
    return float(roc_auc_score(is_anomaly, -scores))


def _say(progress: bool, line: str) -> None:
    if progress:
        print(line, file=sys.stderr, flush=True)


def _info(data_name, X, X_test, y, epochs, seed, params, model_params, names, nll_samples, held_out, images, ref):
    notes = []
    if not images:
        notes.append("The data are a table: the reconstruction error is measured on features standardized by the "
                     "training data's mean and standard deviation (the same yardstick for every model).")
    if held_out is not None:
        notes.append(f"Anomaly AUC: each family is trained again, with the same settings, on the training data "
                     f"without class {held_out!r}, then scores the test data by minus its reconstruction error; the "
                     f"AUC says how well that ranks class {held_out!r} as anomalous.")
    notes.append("Within noise: the recommendation calls two values a tie when they differ by no more than the "
                 "standard error of their difference over the test samples (of the mean squared error; binomial for "
                 f"the accuracies; Hanley & McNeil 1982 for the AUC), or by {NATS_TIE} nats for the ELBO and NLL. The "
                 "standard errors are in the CSV (columns ending in _se).")
    if y is not None:
        notes.append("Probes: scikit-learn's LogisticRegression on standardized codes and 5-nearest-neighbour voting, "
                     "fitted on the training codes, scored on the test codes.")
    facts = [
        ("data", f"{data_name}: {len(X)} training and {len(X_test)} test samples of shape {tuple(X.shape[1:])}"
                 + ("" if y is not None else ", no labels")),
        ("budget", f"{epochs} epochs per family, seed {seed}"
                   + (", " + ", ".join(f"{k}={v}" for k, v in params.items()) if params else "")),
        ("machine", f"{os.cpu_count()} CPU cores; fit times include the threads aekit chose per model"),
    ]
    settings = {"models": ",".join(names), "epochs": epochs, "random_state": seed, "nll_samples": nll_samples,
                "anomaly_class": held_out, **{f"params.{k}": v for k, v in params.items()},
                **{f"model_params.{m}.{k}": v for m, p in model_params.items() for k, v in p.items()}}
    return {"data": data_name, "n_train": len(X), "n_test": len(X_test), "epochs": epochs, "seed": seed,
            "anomaly_class": held_out, "images": images, "notes": notes, "facts": facts, "settings": settings}


# -- the recommendation -----------------------------------------------------------------------


def recommend(board: Leaderboard) -> list[str]:
    """Sentences saying which model to pick for what, each read off the numbers: the best of each
    quality column (and who comes close), which model leads most of them, failures, and the
    fastest and smallest."""
    ok = [r for r in board.rows if r["status"] == "ok"]
    if not ok:
        return ["Every model failed, so there is nothing to recommend; the errors are in the table."]
    out = []
    tasks = [("recon_mse", "Best reconstruction"), ("probe_acc", "Most useful codes for a linear classifier"),
             ("knn_acc", "Best codes for nearest-neighbour search"), ("nll", "Best density model"),
             ("elbo", "Best density model (by the ELBO)"), ("anomaly_auc", "Best anomaly detector")]
    keys = {c.key for c in board.columns}
    wins: dict[str, int] = {}
    counted = 0
    for key, words in tasks:
        if key not in keys or (key == "elbo" and "nll" in keys):
            continue
        ranked = board.ranking(key)
        if not ranked:
            continue
        top = ranked[0]
        close = [r["model"] for r in ranked[1:] if _tied(key, top, r)]
        col = _BY_KEY[key]
        if key == "anomaly_auc":
            words = f"Best at flagging the unseen class {board.info.get('anomaly_class')} as anomalous"
            if top[key] - 0.5 <= top.get("se", {}).get(key, 0.0):  # not above chance by a standard error
                out.append(f"No model flags the unseen class {board.info.get('anomaly_class')} better than chance "
                           f"(best anomaly AUC {_cell(top, col)}, {top['model']}): its samples reconstruct about as "
                           "well as the others'.")
                continue
        sentence = f"{words}: {top['model']} ({col.label} {_cell(top, col)}"
        if close:
            sentence += f"; within noise of it: {', '.join(close)}"
        elif len(ranked) > 1:
            sentence += f"; next {ranked[1]['model']}, {_cell(ranked[1], col)}"
        out.append(sentence + ").")
        for m in [top["model"], *close]:
            wins[m] = wins.get(m, 0) + 1
        counted += 1
    if counted > 1 and wins:
        lead = max(wins.values())
        leaders = [m for m in (r["model"] for r in ok) if wins.get(m) == lead]
        if len(leaders) == 1:
            out.append(f"For one model that does well at everything measured here, take {leaders[0]}: it is best or "
                       f"within noise of the best on {lead} of {counted} counts.")
        else:
            out.append(f"No single model leads: {', '.join(leaders)} are each best or within noise of the best on "
                       f"{lead} of {counted} counts.")
    fastest = board.ranking("fit_time_s")
    if len(fastest) > 1:
        out.append(f"Fastest to train: {fastest[0]['model']} ({fastest[0]['fit_time_s']:.1f} s); the slowest, "
                   f"{fastest[-1]['model']}, took {fastest[-1]['fit_time_s'] / max(fastest[0]['fit_time_s'], 1e-9):.1f} "
                   "times as long.")
    failed = [r["model"] for r in board.rows if r["status"] != "ok"]
    if failed:
        out.append(f"{', '.join(failed)} failed with these settings (see its row) and {'is' if len(failed) == 1 else 'are'} "
                   "left out of this advice.")
    out.append(f"These are the numbers of one seed after {board.info.get('epochs')} epochs: small differences can "
               "change with the seed or a longer budget.")
    return out


def _tied(key: str, best: dict[str, Any], other: dict[str, Any]) -> bool:
    """Whether two rows' values of ``key`` differ by no more than the standard error of the
    difference (from the two rows' standard errors over the test samples), or, for the ELBO and
    the NLL, which come without one, by NATS_TIE."""
    se_a, se_b = best.get("se", {}).get(key), other.get("se", {}).get(key)
    margin = math.hypot(se_a, se_b) if se_a is not None and se_b is not None else NATS_TIE
    return abs(other[key] - best[key]) <= margin
