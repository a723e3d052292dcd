"""The report's figures: arrays in, PNG bytes out.

Every function draws on its own ``matplotlib.figure.Figure`` with the Agg canvas (no pyplot, no
global backend, nothing shown or logged) and returns the encoded PNG.
"""

from __future__ import annotations

import io
import math

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..apps._images import as_images, mosaic

__all__ = [
    "codebook_usage",
    "feature_reconstructions",
    "standardized_rmse",
    "image_rows",
    "kl_per_dimension",
    "latent_scatter",
    "mutual_info_heatmap",
    "training_curves",
]

DPI = 100
_NOT_PARTS = ("epoch", "lr", "time_s")


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def training_curves(history: list[dict[str, float]], unit: str = "per sample") -> bytes:
    """One panel per logged quantity (the loss first, then each part): training and validation
    against the epoch, the y axis labelled with ``unit``. When the first epochs would dwarf the
    rest, the y axis is fitted to the later ones and the panel says how many epochs lie above it."""
    names = [k for k in history[0] if k not in _NOT_PARTS and not k.startswith("val_")]
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig = Figure(figsize=(3.6 * ncols, 2.6 * nrows), layout="constrained")
    epochs = [r.get("epoch", i + 1) for i, r in enumerate(history)]
    skip = max(1, len(history) // 20) if len(history) > 10 else 0  # first epochs may dwarf the rest
    for i, name in enumerate(names):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        train = np.array([r.get(name, np.nan) for r in history], dtype=float)
        ax.plot(epochs, train, label="train", color="C0")
        curves = [train]
        if any(f"val_{name}" in r for r in history):
            val = np.array([r.get(f"val_{name}", np.nan) for r in history], dtype=float)
            ax.plot(epochs, val, label="validation", color="C1", linestyle="--")
            curves.append(val)
        tail = np.concatenate([c[skip:] for c in curves])
        tail = tail[np.isfinite(tail)]
        if skip and tail.size and tail.max() > tail.min():
            pad = 0.08 * (tail.max() - tail.min())
            top = tail.max() + pad
            ax.set_ylim(tail.min() - pad, top)
            above = int(np.any(np.stack([np.nan_to_num(c, nan=-np.inf) for c in curves]) > top, axis=0).sum())
            if above:
                ax.text(0.98, 0.95, f"{above} early epoch{'s' if above > 1 else ''} above the top",
                        transform=ax.transAxes, ha="right", va="top", fontsize=7, color="0.35")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel(unit, fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend(fontsize=8)
    return _png(fig)


def image_rows(rows: list[np.ndarray], row_labels: list[str], image_shape, *, tile: float = 0.55) -> bytes:
    """Rows of images (each (k, ...) in the data's layout), one label per row on the left; for
    originals over reconstructions, sample grids and interpolations."""
    ncols = max(len(r) for r in rows)
    h, w = image_shape[-2:]
    tiles = [np.clip(as_images(np.asarray(r).reshape(len(r), *image_shape)), 0, 1) for r in rows]
    blank = np.ones((ncols, *tiles[0].shape[1:]))
    grid = np.concatenate([np.concatenate([t, blank[: ncols - len(t)]]) for t in tiles])
    tiled = mosaic(grid, ncols)
    label_w = 0.12 * max(len(s) for s in row_labels) if any(row_labels) else 0
    fig = Figure(figsize=(ncols * tile * w / max(h, w) + label_w + 0.2, len(rows) * tile + 0.2))
    ax = fig.add_axes((label_w / fig.get_figwidth(), 0.01, 1 - label_w / fig.get_figwidth() - 0.01, 0.98))
    ax.imshow(tiled, cmap="gray", vmin=0, vmax=1, interpolation="nearest", aspect="equal")
    ax.set_xticks([])
    ax.set_yticks([1 + (h + 1) * i + h / 2 - 0.5 for i in range(len(rows))], row_labels, fontsize=9)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    return _png(fig)


def _standardize(X, X_hat) -> tuple[np.ndarray, np.ndarray]:
    """X and X_hat (n, d) in units of X's per-feature standard deviation, centred on X's mean."""
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    X_hat = np.asarray(X_hat, dtype=np.float64).reshape(len(X), -1)
    mean, std = X.mean(axis=0), X.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    return (X - mean) / std, (X_hat - mean) / std


def standardized_rmse(X, X_hat) -> np.ndarray:
    """Root-mean-squared reconstruction error of each feature in standard deviations of X, (d,)."""
    Z, Z_hat = _standardize(X, X_hat)
    return np.sqrt(((Z - Z_hat) ** 2).mean(axis=0))


def feature_reconstructions(X: np.ndarray, X_hat: np.ndarray, names=None, n: int = 4) -> bytes:
    """Tabular data, each feature standardized by its mean and std over X (so features of any
    scale share one axis), named by ``names`` when given: the root-mean-squared reconstruction
    error of every feature over all of X, then ``n`` samples' profiles, original and reconstructed."""
    Z, Z_hat = _standardize(X, X_hat)
    d = Z.shape[1]
    names = list(names) if names is not None and len(names) == d else [str(i) for i in range(d)]
    rmse = np.sqrt(((Z - Z_hat) ** 2).mean(axis=0))  # (d,)
    n = min(n, len(X))
    fig = Figure(figsize=(min(16, max(8, 0.32 * d + 2)), 2.2 * (n + 1)), layout="constrained")
    ticks = dict(ticks=range(d), labels=names, rotation=90 if d > 8 else 0, fontsize=7)
    ax = fig.add_subplot(n + 1, 1, 1)
    ax.bar(range(d), rmse, color="C3")
    ax.set_ylabel("RMSE (std units)", fontsize=8)
    ax.set_title(f"reconstruction error per feature, over {len(X)} samples", fontsize=9)
    ax.set_xticks(**ticks)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3, axis="y")
    for i in range(n):
        ax = fig.add_subplot(n + 1, 1, i + 2)
        ax.plot(Z[i], marker="o", markersize=3, label="original", color="C0")
        ax.plot(Z_hat[i], marker="x", markersize=3, label="reconstruction", color="C3", linestyle="--")
        ax.set_ylabel(f"sample {i}\n(std units)", fontsize=8)
        if i == n - 1:
            ax.set_xticks(**ticks)  # names under the bar chart and the last profile only
        else:
            ax.set_xticks(range(d), [""] * d)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend(fontsize=8, loc="upper right")
    return _png(fig)


def latent_scatter(points: np.ndarray, y: np.ndarray | None, *, xlabel: str, ylabel: str) -> bytes:
    """2-D points coloured by label (a legend for up to 20 classes, else a colour bar)."""
    fig = Figure(figsize=(6.4, 5.2), layout="constrained")
    ax = fig.add_subplot()
    if y is None:
        ax.scatter(points[:, 0], points[:, 1], s=8, alpha=0.7, color="C0", linewidths=0)
    else:
        classes = np.unique(y)
        if len(classes) <= 20:
            cm = colormaps["tab10" if len(classes) <= 10 else "tab20"]
            for i, c in enumerate(classes):
                sel = y == c
                ax.scatter(points[sel, 0], points[sel, 1], s=8, alpha=0.75, color=cm(i), label=str(c), linewidths=0)
            ax.legend(title="label", fontsize=8, title_fontsize=8, markerscale=2, loc="center left",
                      bbox_to_anchor=(1.01, 0.5), frameon=False)
        else:
            sc = ax.scatter(points[:, 0], points[:, 1], c=y, s=8, cmap="viridis", linewidths=0)
            fig.colorbar(sc, ax=ax, label="label")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return _png(fig)


def kl_per_dimension(kl: np.ndarray, threshold: float) -> bytes:
    """Bars of the mean KL of each latent dimension (nats); dimensions under ``threshold`` in red."""
    kl = np.asarray(kl, dtype=float)
    k = len(kl)
    fig = Figure(figsize=(min(10, max(5.5, 2.5 + 0.35 * k)), 3.0), layout="constrained")
    ax = fig.add_subplot()
    colours = ["C3" if v < threshold else "C0" for v in kl]
    ax.bar(np.arange(k), kl, color=colours, width=0.6 if k > 3 else 0.4)
    ax.axhline(threshold, color="C3", linestyle=":", linewidth=1, label=f"{threshold} nats:\ninactive below")
    ax.set_xlabel("latent dimension")
    ax.set_ylabel("KL (nats)")
    ax.set_xticks(np.arange(k) if k <= 32 else np.arange(0, k, max(1, k // 16)))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(alpha=0.3, axis="y")
    return _png(fig)


def codebook_usage(counts: np.ndarray) -> bytes:
    """VQ-VAE: how often each codebook entry is used, entries sorted from most to least used."""
    counts = np.sort(np.asarray(counts, dtype=float))[::-1]
    fig = Figure(figsize=(8, 2.8), layout="constrained")
    ax = fig.add_subplot()
    ax.bar(np.arange(len(counts)), counts / max(counts.sum(), 1), width=1.0, color="C0")
    ax.set_xlabel("codebook entry (sorted by use)")
    ax.set_ylabel("share of codes")
    ax.grid(alpha=0.3, axis="y")
    return _png(fig)


def mutual_info_heatmap(nmi: np.ndarray, factor_names) -> bytes:
    """Normalised mutual information I(z_d; v_k) / H(v_k) of every code dimension (rows) with every
    known factor (columns), in [0, 1], each cell written out; a disentangled code has one bright
    cell per column, each in its own row."""
    nmi = np.asarray(nmi, dtype=float)
    k, f = nmi.shape
    fig = Figure(figsize=(1.1 * f + 2.2, 0.32 * k + 1.4), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(nmi, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for (i, j), v in np.ndenumerate(nmi):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="black" if v > 0.6 else "white")
    ax.set_xticks(range(f), list(factor_names), fontsize=8)
    ax.set_yticks(range(k), [f"z[{i}]" for i in range(k)], fontsize=8)
    ax.set_xlabel("factor")
    ax.set_ylabel("code dimension")
    fig.colorbar(im, ax=ax, label="I(z; v) / H(v)")
    return _png(fig)
