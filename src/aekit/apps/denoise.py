"""Denoising with a fitted estimator (a DenoisingAutoEncoder's ``denoise``, else the
reconstruction; Vincent et al. 2008), PSNR, a seeded numpy front to the noise processes of
``aekit.corruption``, and an example-image writer."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ..corruption import corrupt, salt_and_pepper
from ._common import reconstruct
from ._images import image_grid

__all__ = ["add_noise", "denoise", "denoise_grid", "psnr"]


def denoise(estimator, X_noisy, clip: tuple[float, float] | None = None) -> np.ndarray:
    """The estimator's clean estimate of ``X_noisy``.

    ``estimator.denoise(X_noisy)`` where the estimator has one (a DenoisingAutoEncoder: with
    ``fusion``, each noisy value combined with its decoded value); else its reconstruction,
    ``reconstruct`` for aekit estimators and ``inverse_transform(transform(X_noisy))`` for other
    transformers (a fitted PCA as the baseline). ``clip=(lo, hi)`` clips the result to the data
    range.

    Examples
    --------
    >>> from aekit import DenoisingAutoEncoder
    >>> from aekit.apps import add_noise, denoise
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> dae = DenoisingAutoEncoder(epochs=2, random_state=0).fit(X)
    >>> denoise(dae, add_noise(X[:3], "gaussian", 0.3, random_state=0), clip=(0, 1)).shape
    (3, 64)
    """
    check_is_fitted(estimator)
    out = np.asarray(estimator.denoise(X_noisy) if hasattr(estimator, "denoise") else reconstruct(estimator, X_noisy))
    return np.clip(out, *clip) if clip is not None else out


def psnr(clean, estimate, data_range: float = 1.0, reduction: str = "mean"):
    """Peak signal-to-noise ratio in dB, per sample: 10 log10(data_range^2 / MSE_i).

    Parameters
    ----------
    clean, estimate : arrays of the same shape (n, ...).
    data_range : peak value (1.0 for data in [0, 1]).
    reduction : "mean" (average of the per-sample PSNRs) or "none" (array (n,)).
        A perfect sample's MSE is floored at 1e-10 (100 dB at data_range 1) so means stay finite.

    Examples
    --------
    >>> import numpy as np
    >>> from aekit.apps import psnr
    >>> round(psnr(np.zeros((2, 4)), np.full((2, 4), 0.1)), 2)
    20.0
    """
    a = np.asarray(clean, dtype=np.float64)
    b = np.asarray(estimate, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"clean and estimate differ in shape: {a.shape} vs {b.shape}")
    mse = ((a - b) ** 2).reshape(len(a), -1).mean(axis=1)
    per = 10 * np.log10(data_range**2 / np.maximum(mse, 1e-10))
    if reduction == "none":
        return per
    if reduction != "mean":
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    return float(per.mean())


def add_noise(X, kind: str, level: float, random_state=None, clip: tuple[float, float] | None = None) -> np.ndarray:
    """Corrupt a numpy batch with one of ``aekit.corruption``'s processes ("gaussian" (std),
    "masking" or "salt_and_pepper" (fraction)), seeded by ``random_state``; optionally clipped.
    Salt-and-pepper uses 0 and 1 as the extreme values (data in [0, 1])."""
    x = torch.as_tensor(np.asarray(X, dtype=np.float32))
    gen = torch.Generator().manual_seed(int(np.random.randint(2**31 - 1)) if random_state is None else int(random_state))
    if kind == "salt_and_pepper":
        out = salt_and_pepper(x, level, gen, low=0.0, high=1.0)
    else:
        out = corrupt(x, kind, level, gen)
    out = out.numpy()
    return np.clip(out, *clip) if clip is not None else out


def denoise_grid(estimator, X_clean, path, *, noise: str = "gaussian", level: float = 0.3, n: int = 8,
                 baseline=None, random_state=0, image_shape=None):
    """Write an example PNG: rows of clean images, their noisy versions, the estimator's denoised
    output and, when ``baseline`` (another fitted estimator, e.g. PCA) is given, its output.

    Returns ``(path, rows)`` where ``rows`` maps row names to the arrays drawn.
    """
    X = np.asarray(X_clean, dtype=np.float32)[:n]
    noisy = add_noise(X, noise, level, random_state=random_state, clip=(0.0, 1.0))
    rows = {"clean": X, "noisy": noisy, "denoised": denoise(estimator, noisy, clip=(0.0, 1.0))}
    if baseline is not None:
        rows["baseline"] = denoise(baseline, noisy.reshape(len(noisy), -1), clip=(0.0, 1.0)).reshape(X.shape)
    stacked = np.concatenate([r.reshape(len(X), -1) for r in rows.values()])
    shape = image_shape or (X.shape[-2:] if X.ndim >= 3 else None)
    return image_grid(stacked, path, ncols=len(X), image_shape=shape), rows
