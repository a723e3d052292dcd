"""Dimensionality reduction: reconstruction error against code size, for autoencoders and PCA
alike, and a side-by-side plot of a 2-D code and PCA's 2-D projection."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.utils.validation import check_is_fitted

from ._common import encode, flat, reconstruct

__all__ = ["compare_pca", "error_vs_code_size", "reconstruction_error"]


def reconstruction_error(estimator, X) -> float:
    """Mean squared error per value of the estimator's reconstruction of X (``reconstruct`` for
    aekit estimators, ``inverse_transform(transform(X))`` for PCA); the deterministic code (the
    posterior mean) for VAEs.

    Examples
    --------
    >>> from sklearn.decomposition import PCA
    >>> from aekit.apps import reconstruction_error
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> round(reconstruction_error(PCA(64).fit(X), X), 6)
    0.0
    """
    check_is_fitted(estimator)
    X = np.asarray(X, dtype=np.float32)
    R = np.asarray(reconstruct(estimator, X), dtype=np.float64)
    return float(((R.reshape(len(X), -1) - flat(X)) ** 2).mean())


def error_vs_code_size(make: dict[str, Callable[[int], object]], X_train, X_test, code_sizes) -> list[dict]:
    """Fit one estimator per (method, code size) and measure its test reconstruction error.

    Parameters
    ----------
    make : method name -> factory ``k -> unfitted estimator with a code of size k``
        (e.g. ``{"pca": lambda k: PCA(k), "ae": lambda k: AutoEncoder(latent_dim=k)}``).
    X_train, X_test : arrays in the layout every estimator accepts (2-D for PCA).
    code_sizes : iterable of int.

    Returns
    -------
    list of dicts ``{"method", "code_size", "test_mse", "train_mse", "fit_seconds", "estimator"}``
    (the last is the fitted estimator).
    """
    rows = []
    for k in code_sizes:
        for name, factory in make.items():
            t0 = time.perf_counter()
            est = factory(int(k)).fit(X_train)
            fit_s = time.perf_counter() - t0
            rows.append({
                "method": name, "code_size": int(k),
                "test_mse": reconstruction_error(est, X_test), "train_mse": reconstruction_error(est, X_train),
                "fit_seconds": fit_s, "estimator": est,
            })
    return rows


def compare_pca(estimator, X, y, path, *, title: str | None = None, max_points: int = 5000, random_state=0) -> Path:
    """Plot the estimator's 2-D code next to PCA's 2-D projection of the same X, coloured by
    label, and save it as a PNG (matplotlib's Agg canvas; no global pyplot state).

    A code wider than 2 is shown through its own first two principal components (axes say so).
    At most ``max_points`` points are drawn (a seeded subsample). Returns the path.

    Examples
    --------
    >>> import os, tempfile
    >>> from aekit import VAE
    >>> from aekit.apps import compare_pca
    >>> from aekit.datasets import load_dataset
    >>> d = load_dataset("digits")
    >>> vae = VAE(latent_dim=2, epochs=2, random_state=0).fit(d.X.reshape(-1, 64))
    >>> compare_pca(vae, d.X.reshape(-1, 64), d.y, os.path.join(tempfile.mkdtemp(), "codes.png")).suffix
    '.png'
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    check_is_fitted(estimator)
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y)
    if len(y) != len(X):
        raise ValueError(f"y has {len(y)} labels for {len(X)} samples")
    if len(X) > max_points:
        keep = np.random.default_rng(random_state).choice(len(X), max_points, replace=False)
        X, y = X[keep], y[keep]
    Z = encode(estimator, X)
    code_label = f"{type(estimator).__name__} code"
    if Z.shape[1] > 2:
        Z = PCA(2).fit_transform(Z)
        code_label += f" ({encode(estimator, X[:1]).shape[1]}-D, first 2 PCs)"
    elif Z.shape[1] == 1:
        Z = np.column_stack([Z[:, 0], np.zeros(len(Z))])
    P = PCA(2).fit_transform(flat(X))

    fig = Figure(figsize=(10, 4.6))
    FigureCanvasAgg(fig)
    for ax, pts, name in zip(fig.subplots(1, 2), (Z, P), (code_label, "PCA, 2 components")):
        sc = ax.scatter(pts[:, 0], pts[:, 1], c=y, cmap="tab10", s=4, alpha=0.7)
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(sc, ax=fig.axes, label="label")
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    return path
