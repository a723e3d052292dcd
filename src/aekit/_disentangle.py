"""Disentanglement metrics over codes and known factors of variation: MIG (Chen et al. 2018),
the FactorVAE metric (Kim & Mnih 2018) and DCI (Eastwood & Williams 2018). Pure functions of
arrays; :mod:`aekit.evaluate` re-exports them and documents them as its own."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

__all__ = ["DCIScores", "dci", "disentanglement_metrics", "factorvae_score", "mig", "mutual_info_matrix"]

N_BINS = 20  # MIG's histogram bins per code dimension (Locatello et al. 2019's choice)
MIN_DCI_SAMPLES = 10  # disentanglement_metrics leaves DCI out below this


def _codes_and_factors(codes, factors) -> tuple[np.ndarray, np.ndarray]:
    """Validated codes (n, K) float64 and factors (n, F) as 0-based int64 value indices."""
    codes = np.asarray(codes, dtype=np.float64)
    factors = np.asarray(factors)
    if codes.ndim == 1:
        codes = codes[:, None]
    if factors.ndim == 1:
        factors = factors[:, None]
    if codes.ndim != 2 or factors.ndim != 2:
        raise ValueError(f"codes must be shaped (n, latent_dim) and factors (n, n_factors), got {codes.shape} and {factors.shape}")
    if len(codes) != len(factors):
        raise ValueError(f"codes and factors must have one row per sample: {len(codes)} codes, {len(factors)} factor rows")
    if len(codes) < 2 or codes.shape[1] == 0 or factors.shape[1] == 0:
        raise ValueError(f"need at least 2 samples, 1 code dimension and 1 factor, got codes {codes.shape}, factors {factors.shape}")
    if not np.isfinite(codes).all():
        raise ValueError("codes hold NaN or infinite values")
    if factors.dtype.kind not in "biuf" or not np.array_equal(factors, np.round(factors)):
        raise ValueError("factors must be discrete: integer indices (or integer-valued numbers) of each factor's values")
    labels = np.stack([np.unique(column, return_inverse=True)[1].ravel() for column in factors.T], axis=1)
    return codes, labels.astype(np.int64)


def _entropy(counts: np.ndarray) -> float:
    """Entropy in nats of the distribution given by counts."""
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def _discretise(codes: np.ndarray, n_bins: int) -> np.ndarray:
    """Each code column cut into ``n_bins`` equal-width bins over its range: (n, K) int64."""
    lo, hi = codes.min(axis=0), codes.max(axis=0)
    width = np.where(hi > lo, (hi - lo) / n_bins, 1.0)
    return np.clip(((codes - lo) / width).astype(np.int64), 0, n_bins - 1)


def _mi_and_entropy(codes: np.ndarray, labels: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """I(bin(z_d); v_k) in nats (K, F), and H(v_k) (F,)."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 2:
        raise ValueError(f"n_bins must be an integer >= 2, got {n_bins!r}")
    bins = _discretise(codes, int(n_bins))
    n_codes, n_factors = codes.shape[1], labels.shape[1]
    mi = np.zeros((n_codes, n_factors))
    h = np.zeros(n_factors)
    for k in range(n_factors):
        size = int(labels[:, k].max()) + 1
        h[k] = _entropy(np.bincount(labels[:, k], minlength=size).astype(float))
        for d in range(n_codes):
            joint = np.bincount(bins[:, d] * size + labels[:, k], minlength=n_bins * size).reshape(n_bins, size)
            # I = H(z) + H(v) - H(z, v)
            mi[d, k] = _entropy(joint.sum(axis=1).astype(float)) + h[k] - _entropy(joint.ravel().astype(float))
    return np.maximum(mi, 0.0), h


def mutual_info_matrix(codes, factors, *, n_bins: int = N_BINS, normalise: bool = True) -> np.ndarray:
    """Mutual information between each code dimension and each factor, (latent_dim, n_factors).

    Each code dimension is cut into ``n_bins`` equal-width bins over its range (the estimator
    of Locatello et al. 2019 that MIG uses here); the factors are discrete. With ``normalise``
    each column is divided by the factor's entropy H(v_k), so 1 means the dimension determines
    the factor; else nats.

    Parameters
    ----------
    codes : array (n, latent_dim)
    factors : array (n, n_factors) of integer factor indices (any integer labels)
    n_bins : int, default 20
    normalise : bool, default True

    Returns
    -------
    np.ndarray (latent_dim, n_factors)

    Examples
    --------
    >>> import numpy as np
    >>> from aekit.evaluate import mutual_info_matrix
    >>> rng = np.random.default_rng(0)
    >>> factors = rng.integers(0, 4, (2000, 2))
    >>> codes = np.column_stack([rng.normal(size=2000), factors[:, 0]])  # z1 is factor 0
    >>> mutual_info_matrix(codes, factors).round(1)  # (a little finite-sample bias aside)
    array([[0., 0.],
           [1., 0.]])
    """
    codes, labels = _codes_and_factors(codes, factors)
    mi, h = _mi_and_entropy(codes, labels, n_bins)
    if not normalise:
        return mi
    return np.divide(mi, h, out=np.zeros_like(mi), where=h > 0)


def mig(codes, factors, *, n_bins: int = N_BINS, per_factor: bool = False):
    """Mutual information gap (Chen et al. 2018, *Isolating Sources of Disentanglement in VAEs*).

    For each factor v_k, the gap between the two code dimensions with the most mutual
    information about it, divided by its entropy: (I(z_a; v_k) - I(z_b; v_k)) / H(v_k); MIG is
    the mean over the factors (constant factors are left out). 1: every factor is captured by
    exactly one dimension, which determines it; 0: the top two dimensions know equally much
    (entangled) or nothing.

    The mutual information is estimated from the code (e.g. the posterior mean) cut into
    ``n_bins`` equal-width bins per dimension, as in Locatello et al. 2019's disentanglement_lib;
    Chen et al. estimate it from samples of q(z|x) instead. With 20 bins a factor with more
    than 20 values cannot reach a gap of 1 (at most log 20 / log |v_k|: 0.81 for 40 values).

    Parameters
    ----------
    codes : array (n, latent_dim)
    factors : array (n, n_factors) of integer factor indices
    n_bins : int, default 20
    per_factor : bool, default False
        Also return the gap of each factor.

    Returns
    -------
    float, or (float, np.ndarray (n_factors,)) with ``per_factor`` (NaN for a constant factor).

    Examples
    --------
    >>> import numpy as np
    >>> from aekit.evaluate import mig
    >>> rng = np.random.default_rng(0)
    >>> factors = rng.integers(0, 8, (5000, 3))
    >>> codes = factors + 0.1 * rng.normal(size=(5000, 3))  # one dimension per factor
    >>> round(mig(codes, factors), 2)
    0.99
    >>> mixed = codes @ np.linalg.qr(rng.normal(size=(3, 3)))[0]  # the same code, rotated
    >>> mig(mixed, factors) < 0.3
    True
    """
    codes, labels = _codes_and_factors(codes, factors)
    mi, h = _mi_and_entropy(codes, labels, n_bins)
    top = -np.sort(-mi, axis=0)  # (K, F), largest first
    second = top[1] if len(top) > 1 else np.zeros(mi.shape[1])
    gaps = np.full(mi.shape[1], np.nan)
    varies = h > 0
    gaps[varies] = (top[0, varies] - second[varies]) / h[varies]
    score = float(np.mean(gaps[varies])) if varies.any() else 0.0
    return (score, gaps) if per_factor else score


def factorvae_score(
    codes,
    factors,
    *,
    batch_size: int = 64,
    n_train: int = 10_000,
    n_eval: int = 5_000,
    min_std: float = 0.05,
    random_state: int | np.random.Generator = 0,
) -> float:
    """The FactorVAE disentanglement metric (Kim & Mnih 2018, *Disentangling by Factorising*).

    Each vote: choose a factor k at random and a value of it, take ``batch_size`` samples that
    share that value (the other factors vary), divide each code dimension by its standard
    deviation over all the data, and note the dimension of least variance within the batch.
    A majority-vote classifier maps each dimension to the factor it was most often the answer
    for, trained on ``n_train`` votes; the score is its accuracy on ``n_eval`` other votes.
    1: fixing any factor pins one dimension of its own. Dimensions whose standard deviation
    over the data is below ``min_std`` (collapsed to the prior) take no part; with none left
    the score is 0. Random codes score about 1 / n_factors (the classifier's chance level),
    not 0.

    The batches are drawn from the samples given: with data drawn uniformly from a factor grid
    (as ``load_dataset("sprites")`` is) the samples that share a value of factor k are a
    uniform draw of the other factors, as in Kim & Mnih's protocol, which samples the generator
    afresh. Settings as in Locatello et al. 2019's disentanglement_lib (64 samples per vote,
    10,000 training and 5,000 evaluation votes, ``min_std`` 0.05).

    Parameters
    ----------
    codes : array (n, latent_dim)
    factors : array (n, n_factors) of integer factor indices
    batch_size : samples per vote (L); values with fewer samples are drawn with replacement.
    n_train, n_eval : votes to train and to evaluate the classifier on.
    min_std : dimensions whose standard deviation is below this are left out.
    random_state : seed or ``np.random.Generator``.

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> import numpy as np
    >>> from aekit.evaluate import factorvae_score
    >>> rng = np.random.default_rng(0)
    >>> factors = rng.integers(0, 10, (5000, 3))
    >>> codes = factors + 0.1 * rng.normal(size=(5000, 3))
    >>> factorvae_score(codes, factors, n_train=500, n_eval=500)
    1.0
    """
    codes, labels = _codes_and_factors(codes, factors)
    for name, value in (("batch_size", batch_size), ("n_train", n_train), ("n_eval", n_eval)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    rng = random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)
    std = codes.std(axis=0)
    active = std >= min_std
    varying = [k for k in range(labels.shape[1]) if labels[:, k].max() > 0]
    if not active.any() or not varying:
        return 0.0
    scaled = codes[:, active] / std[active]  # (n, K_active)
    rows = {k: [np.flatnonzero(labels[:, k] == v) for v in range(labels[:, k].max() + 1)] for k in varying}

    def votes(n: int) -> tuple[np.ndarray, np.ndarray]:
        """(argmin dimension, fixed factor) of n votes."""
        dims, fixed = np.empty(n, np.int64), np.empty(n, np.int64)
        for i in range(n):
            k = varying[rng.integers(len(varying))]
            pool = rows[k][labels[rng.integers(len(labels)), k]]  # a value, as often as it occurs
            batch = rng.choice(pool, batch_size, replace=len(pool) < batch_size)
            dims[i], fixed[i] = np.argmin(scaled[batch].var(axis=0)), k
        return dims, fixed

    train_dims, train_factors = votes(int(n_train))
    counts = np.zeros((scaled.shape[1], labels.shape[1]), np.int64)
    np.add.at(counts, (train_dims, train_factors), 1)
    predict = counts.argmax(axis=1)  # dimension -> factor
    eval_dims, eval_factors = votes(int(n_eval))
    return float(np.mean(predict[eval_dims] == eval_factors))


class DCIScores(NamedTuple):
    """What :func:`dci` returns (Eastwood & Williams 2018)."""

    disentanglement: float  # in [0, 1]: each dimension informs one factor
    completeness: float  # in [0, 1]: each factor is told by one dimension
    informativeness: float  # held-out R^2 of predicting the factors from the code, mean over factors
    importance: np.ndarray  # (latent_dim, n_factors): R_ij, importance of dimension i for factor j


def dci(codes, factors, *, test_fraction: float = 0.3, random_state: int = 0) -> DCIScores:
    """Disentanglement, completeness and informativeness (Eastwood & Williams 2018, *A Framework
    for the Quantitative Evaluation of Disentangled Representations*).

    One regressor per factor predicts the factor (its value index) from the code, fitted on a
    random ``1 - test_fraction`` of the samples. Its feature importances fill column j of the
    importance matrix R (latent_dim x n_factors), normalised to sum to 1:

    - disentanglement: sum_i rho_i (1 - H_F(P_i.)), with P_ij = R_ij / sum_k R_ik, H_F the
      entropy in base F (the number of factors) and rho_i = sum_j R_ij / sum R the weight of
      dimension i: 1 when each dimension matters to one factor only;
    - completeness: mean over factors of 1 - H_K(R_.j / sum_i R_ij): 1 when each factor is
      predicted from one dimension;
    - informativeness: the mean over factors of the regressor's R^2 on the held-out samples
      (1 - NRMSE^2, where Eastwood & Williams report the error NRMSE; higher is better here).

    The regressors are random forests (scikit-learn; 30 trees of depth at most 8, each on a
    random half of the training samples, every feature considered at every split, at least 5
    samples per leaf) and R is their impurity importance, one of Eastwood & Williams's two
    choices (the other, the lasso, sees only linear relations and, when it learns nothing,
    leaves one tiny weight that reads as perfect disentanglement); disentanglement_lib uses
    gradient-boosted trees.

    Parameters
    ----------
    codes : array (n, latent_dim)
    factors : array (n, n_factors) of integer factor indices
    test_fraction : share of the samples held out for informativeness.
    random_state : int, seeds the split and the regressors.

    Returns
    -------
    DCIScores

    Examples
    --------
    >>> import numpy as np
    >>> from aekit.evaluate import dci
    >>> rng = np.random.default_rng(0)
    >>> factors = rng.integers(0, 8, (2000, 3))
    >>> codes = factors + 0.1 * rng.normal(size=(2000, 3))
    >>> scores = dci(codes, factors)
    >>> scores.disentanglement > 0.9, scores.completeness > 0.9, scores.informativeness > 0.9
    (True, True, True)
    """
    from sklearn.model_selection import train_test_split

    codes, labels = _codes_and_factors(codes, factors)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
    n_codes, n_factors = codes.shape[1], labels.shape[1]
    Z_tr, Z_te, V_tr, V_te = train_test_split(codes, labels.astype(np.float64), test_size=test_fraction,
                                              random_state=random_state)
    if len(Z_tr) < 2 or len(Z_te) < 2:
        raise ValueError(f"dci needs at least 2 training and 2 held-out samples; {len(codes)} samples are too few")
    importance = np.zeros((n_codes, n_factors))
    r2 = np.zeros(n_factors)
    for j in range(n_factors):
        importance[:, j], r2[j] = _fit_importance(Z_tr, V_tr[:, j], Z_te, V_te[:, j], random_state)
    return DCIScores(*_dci_from_importance(importance), float(np.mean(np.clip(r2, 0.0, 1.0))), importance)


def _fit_importance(Z_tr, v_tr, Z_te, v_te, seed: int) -> tuple[np.ndarray, float]:
    """Importances (K,) summing to 1 (0 when nothing is learnt) and held-out R^2 of one factor's forest."""
    from sklearn.ensemble import RandomForestRegressor

    if np.ptp(v_tr) == 0:  # a constant factor: nothing to predict
        return np.zeros(Z_tr.shape[1]), 0.0
    model = RandomForestRegressor(n_estimators=30, max_depth=8, min_samples_leaf=5, max_features=None,
                                  max_samples=0.5, random_state=seed, n_jobs=1)
    model.fit(Z_tr, v_tr)
    weights = model.feature_importances_
    pred = model.predict(Z_te)
    total = weights.sum()
    weights = weights / total if total > 0 else np.zeros_like(weights)
    ss = ((v_te - v_te.mean()) ** 2).sum()
    r2 = 1.0 - ((v_te - pred) ** 2).sum() / ss if ss > 0 else 0.0
    return weights, float(r2)


def _dci_from_importance(R: np.ndarray) -> tuple[float, float]:
    """Eastwood & Williams's disentanglement and completeness from an importance matrix (K, F)."""

    def one_minus_entropy(P: np.ndarray, base: int) -> np.ndarray:
        """1 - entropy (log base ``base``) of each row of P, rows summing to 1 (0 for empty rows)."""
        logs = np.log(np.where(P > 0, P, 1.0)) / math.log(max(base, 2))
        return 1.0 + (P * logs).sum(axis=1)

    total = R.sum()
    if total <= 0:
        return 0.0, 0.0
    per_code = R.sum(axis=1)  # (K,)
    rows = np.divide(R, per_code[:, None], out=np.zeros_like(R), where=per_code[:, None] > 0)
    disentanglement = float((per_code / total * one_minus_entropy(rows, R.shape[1])).sum())
    per_factor = R.sum(axis=0)  # (F,)
    told = per_factor > 0
    cols = R[:, told] / per_factor[told]
    completeness = float(one_minus_entropy(cols.T, R.shape[0]).mean()) if told.any() else 0.0
    return disentanglement, completeness


def disentanglement_metrics(codes, factors, factor_names=None, *, random_state: int = 0) -> dict[str, Any]:
    """Every disentanglement metric of ``codes`` against ``factors`` as a JSON-ready dict: ``mig``
    and ``mig_per_factor`` (:func:`mig`), ``factorvae_score`` (:func:`factorvae_score`),
    ``dci_disentanglement``, ``dci_completeness``, ``dci_informativeness`` (:func:`dci`, random
    forests), ``normalised_mi`` (:func:`mutual_info_matrix`, latent_dim x n_factors),
    ``factor_latents`` (factor name -> the code dimension with the most information about it),
    ``factor_names`` and ``disentanglement_samples`` (n). DCI needs a held-out part: with fewer
    than ``MIN_DCI_SAMPLES`` (10) samples its entries are None."""
    codes, labels = _codes_and_factors(codes, factors)
    names = [str(n) for n in factor_names] if factor_names is not None else [f"factor {k}" for k in range(labels.shape[1])]
    if len(names) != labels.shape[1]:
        raise ValueError(f"{len(names)} factor names for {labels.shape[1]} factors")
    score, gaps = mig(codes, labels, per_factor=True)
    nmi = mutual_info_matrix(codes, labels)
    scores = dci(codes, labels, random_state=random_state) if len(codes) >= MIN_DCI_SAMPLES else None
    return {
        "mig": score,
        "mig_per_factor": {name: (None if math.isnan(g) else float(g)) for name, g in zip(names, gaps)},
        "factorvae_score": factorvae_score(codes, labels, random_state=random_state),
        "dci_disentanglement": None if scores is None else scores.disentanglement,
        "dci_completeness": None if scores is None else scores.completeness,
        "dci_informativeness": None if scores is None else scores.informativeness,
        "normalised_mi": nmi.tolist(),
        "factor_latents": {name: int(np.argmax(nmi[:, k])) for k, name in enumerate(names)},
        "factor_names": names,
        "disentanglement_samples": len(codes),
    }
