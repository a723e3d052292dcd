"""Generation and latent-space exploration over a fitted estimator: interpolation (linear or
spherical), traversal of one code dimension, traversals per known factor of variation, sample
grids (class-conditional for ConditionalVAE), and a PNG writer for the results."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._common import decode, encode
from ._images import image_grid

__all__ = ["FactorTraversal", "image_grid", "interpolate", "interpolate_codes", "sample_grid", "traverse",
           "traverse_factors"]


def interpolate_codes(z_a, z_b, steps: int, method: str = "linear") -> np.ndarray:
    """Codes on the path from ``z_a`` to ``z_b`` (each (k,)), endpoints included: (steps, k).

    ``"linear"``: (1 - t) z_a + t z_b. ``"slerp"``: the direction moves along the great circle
    (Shoemake 1985; White 2016 for generative models) while the norm moves linearly from |z_a|
    to |z_b|, so the path never cuts through the low-norm centre of a Gaussian prior; with equal
    endpoint norms every point keeps that norm.
    """
    z_a = np.asarray(z_a, dtype=np.float64).ravel()
    z_b = np.asarray(z_b, dtype=np.float64).ravel()
    if z_a.shape != z_b.shape:
        raise ValueError(f"endpoint codes differ in size: {z_a.shape} vs {z_b.shape}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
    t = np.linspace(0.0, 1.0, int(steps))[:, None]  # (S, 1)
    if method == "linear":
        return (1 - t) * z_a + t * z_b
    if method != "slerp":
        raise ValueError(f"method must be 'linear' or 'slerp', got {method!r}")
    na, nb = np.linalg.norm(z_a), np.linalg.norm(z_b)
    if na == 0 or nb == 0:
        return (1 - t) * z_a + t * z_b  # no direction to rotate: the straight line
    ua, ub = z_a / na, z_b / nb
    omega = np.arccos(np.clip(ua @ ub, -1.0, 1.0))
    if omega < 1e-6:
        direction = (1 - t) * ua + t * ub
    else:
        direction = (np.sin((1 - t) * omega) * ua + np.sin(t * omega) * ub) / np.sin(omega)  # (S, k), unit
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    return ((1 - t) * na + t * nb) * direction


def _one(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)[None]  # one sample -> a batch of one


def interpolate(estimator, x_a, x_b, steps: int = 8, method: str = "linear", y=None) -> np.ndarray:
    """Decode the path between the codes of two samples.

    Parameters
    ----------
    estimator : fitted aekit estimator (or any transformer with ``inverse_transform``).
    x_a, x_b : one sample each, in the layout the estimator was fitted on (e.g. (1, h, w) or (D,)).
    steps : number of points, endpoints included (>= 2).
    method : {"linear", "slerp"}; see :func:`interpolate_codes`.
    y : class label, for a ConditionalVAE (used to encode both endpoints and to decode).

    Returns
    -------
    array (steps, *sample_shape): the first and last rows are the reconstructions of x_a and x_b.

    Examples
    --------
    >>> from aekit import AutoEncoder
    >>> from aekit.apps import interpolate
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> ae = AutoEncoder(latent_dim=4, epochs=2, random_state=0).fit(X)
    >>> interpolate(ae, X[0], X[1], steps=5, method="slerp").shape
    (5, 64)
    """
    check_is_fitted(estimator)
    ya = None if y is None else np.asarray([y])
    z_a = encode(estimator, _one(x_a), ya)[0]
    z_b = encode(estimator, _one(x_b), ya)[0]
    Z = interpolate_codes(z_a, z_b, steps, method).astype(np.float32)
    return decode(estimator, Z, None if y is None else np.full(len(Z), y))


def traverse(estimator, x, dim: int, values, y=None) -> np.ndarray:
    """Decode the code of ``x`` with dimension ``dim`` set to each of ``values`` in turn.

    Returns an array (len(values), *sample_shape), one decoded sample per value.

    Examples
    --------
    >>> import numpy as np
    >>> from aekit import VAE
    >>> from aekit.apps import traverse
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> vae = VAE(latent_dim=2, epochs=2, random_state=0).fit(X)
    >>> traverse(vae, X[0], dim=0, values=np.linspace(-2, 2, 5)).shape
    (5, 64)
    """
    check_is_fitted(estimator)
    values = np.asarray(values, dtype=np.float32).ravel()
    if values.size == 0:
        raise ValueError("values must hold at least one number")
    z = encode(estimator, _one(x), None if y is None else np.asarray([y]))[0]
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not 0 <= dim < len(z):
        raise ValueError(f"dim must be an integer in [0, {len(z)}), got {dim!r}")
    Z = np.repeat(z[None], len(values), axis=0)  # (V, k)
    Z[:, dim] = values
    return decode(estimator, Z, None if y is None else np.full(len(Z), y))


class FactorTraversal(NamedTuple):
    """One row of :func:`traverse_factors`."""

    factor: str
    dim: int  # the code dimension with the most information about the factor
    normalised_mi: float  # I(z_dim; factor) / H(factor), in [0, 1]
    values: np.ndarray  # (steps,) the values z_dim takes
    images: np.ndarray  # (steps, *sample_shape) decoded


def traverse_factors(estimator, X, factors, factor_names=None, *, index: int = 0, steps: int = 9,
                     normalised_mi=None, y=None) -> list[FactorTraversal]:
    """Latent traversals per known factor of variation: for each factor, the code dimension that
    tells most about it (by :func:`aekit.evaluate.mutual_info_matrix` over ``X``) is swept over
    the range it takes on ``X`` (its 2nd to 98th percentile) in the code of sample ``index``,
    the others held, and decoded. A disentangled code moves that factor alone along the row.

    Parameters
    ----------
    estimator : fitted aekit estimator (or any transformer with ``inverse_transform``).
    X : samples (n, ...) in the layout the estimator was fitted on.
    factors : (n, n_factors) integer factor indices of X (``Dataset.factors``).
    factor_names : names of the factors (``Dataset.factor_names``); default "factor k".
    index : the sample whose code is traversed.
    steps : values per row (>= 2).
    normalised_mi : a precomputed (latent_dim, n_factors) normalised mutual information of the
        estimator's codes of X, to skip computing it.
    y : labels of X, for a ConditionalVAE (the rows are decoded with sample ``index``'s label).

    Returns
    -------
    list of FactorTraversal, one per factor in column order.

    Examples
    --------
    >>> from aekit import VAE
    >>> from aekit.apps import traverse_factors
    >>> from aekit.datasets import load_dataset
    >>> d = load_dataset("sprites", "test")
    >>> X, factors = d.X[:500].reshape(500, -1), d.factors[:500]
    >>> vae = VAE(latent_dim=4, hidden_dims=(64,), epochs=1, random_state=0).fit(X)
    >>> rows = traverse_factors(vae, X, factors, d.factor_names, steps=5)
    >>> [r.factor for r in rows], rows[0].images.shape
    (['shape', 'scale', 'orientation', 'x', 'y'], (5, 4096))
    """
    from ..evaluate import mutual_info_matrix

    check_is_fitted(estimator)
    X = np.asarray(X, dtype=np.float32)
    factors = np.asarray(factors)
    if factors.ndim != 2 or len(factors) != len(X):
        raise ValueError(f"factors must be shaped (n, n_factors) with one row per sample of X, got {factors.shape} for {len(X)} samples")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
    names = list(factor_names) if factor_names is not None else [f"factor {k}" for k in range(factors.shape[1])]
    if len(names) != factors.shape[1]:
        raise ValueError(f"{len(names)} factor names for {factors.shape[1]} factors")
    Z = encode(estimator, X, y)  # (n, k)
    if not 0 <= index < len(X):
        raise ValueError(f"index must be a sample index in [0, {len(X)}), got {index!r}")
    nmi = np.asarray(mutual_info_matrix(Z, factors) if normalised_mi is None else normalised_mi)
    if nmi.shape != (Z.shape[1], factors.shape[1]):
        raise ValueError(f"normalised_mi must be shaped {(Z.shape[1], factors.shape[1])}, got {nmi.shape}")
    rows = []
    for k, name in enumerate(names):
        d = int(np.argmax(nmi[:, k]))
        values = np.linspace(*np.percentile(Z[:, d], [2, 98]), int(steps)).astype(np.float32)
        codes = np.repeat(Z[index : index + 1], len(values), axis=0)  # (steps, k)
        codes[:, d] = values
        labels = None if y is None else np.full(len(codes), np.asarray(y)[index])
        rows.append(FactorTraversal(name, d, float(nmi[d, k]), values, decode(estimator, codes, labels)))
    return rows


def sample_grid(estimator, n: int, y=None, random_state=None) -> np.ndarray:
    """Draw samples from a generative estimator (VAE, HierarchicalVAE, IWAE, VQVAE, ConditionalVAE).

    Parameters
    ----------
    n : samples (per class when ``y`` is given).
    y : None, one class label, or a sequence of class labels (ConditionalVAE): each class gets
        ``n`` samples, grouped class by class, so ``image_grid(out, path, ncols=n)`` shows one
        class per row.
    random_state : int or None, seeds the prior draws.

    Returns
    -------
    array (n * n_classes, *sample_shape) (n_classes = 1 without ``y`` or with one label).

    Examples
    --------
    >>> from aekit import ConditionalVAE
    >>> from aekit.apps import sample_grid
    >>> from aekit.datasets import load_dataset
    >>> d = load_dataset("digits")
    >>> cvae = ConditionalVAE(epochs=2, random_state=0).fit(d.X.reshape(-1, 64), d.y)
    >>> sample_grid(cvae, 4, y=[0, 1, 2], random_state=0).shape
    (12, 64)
    """
    check_is_fitted(estimator)
    if not hasattr(estimator, "sample"):
        raise ValueError(f"{type(estimator).__name__} is not generative (no sample); use a VAE, "
                         "HierarchicalVAE, IWAE, VQVAE or ConditionalVAE")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if y is None:
        return estimator.sample(int(n), random_state=random_state)
    classes = np.atleast_1d(np.asarray(y))
    if classes.ndim != 1:
        raise ValueError(f"y must be one label or a 1-D sequence of labels, got shape {classes.shape}")
    return estimator.sample(int(n) * len(classes), random_state=random_state, y=np.repeat(classes, int(n)))
