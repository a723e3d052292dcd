"""Anomaly detection with autoencoders, following scikit-learn's outlier-detector conventions
(IsolationForest, LocalOutlierFactor(novelty=True)): fit on normal data; ``score_samples`` is
higher for more normal samples; ``decision_function = score_samples - offset_`` is negative for
outliers; ``predict`` gives +1 (inlier) or -1 (outlier); ``offset_`` is the ``contamination``
quantile of the training samples' scores.

Scores:

- ``"reconstruction"``: minus the mean squared reconstruction error per value (Japkowicz et al.
  1995), in the units the model trains in (standardized when the estimator standardizes).
- ``"latent_knn"``: minus the mean Euclidean distance from a sample's code to the codes of its
  ``n_neighbors`` nearest training samples: a density estimate in code space (the k-NN detector
  of Ramaswamy et al. 2000, on learned features as in Bergman et al. 2020, "Deep Nearest Neighbor
  Anomaly Detection").
- ``"reconstruction_knn"``: the sum of two anomaly scores, each standardized robustly by its
  training scores ((score - median) / interquartile range): the reconstruction error and the
  mean distance to the ``n_neighbors`` nearest training samples in input space (in the models'
  standardized units).
- ``"elbo"``: the evidence lower bound of a variational model (An & Cho 2015).
- ``"auto"`` (default): ``"latent_knn"`` for images when there are at least 500 of them,
  ``"reconstruction"`` for fewer images, ``"reconstruction_knn"`` for tables.

Why those: a convolutional autoencoder trained on thousands of images of one class reconstructs
images of other classes almost as well (its filters are local, so it generalises), but its code
places them away from the training codes; trained on a few hundred images, it knows too little to
organise its code and reconstructs only what it has seen, so its error is the better score. On
tables, a small MLP's reconstruction error measures how far a row lies from the normal rows'
manifold, the dependencies between features included, but a row far out *along* that manifold
(every feature large, as a big tumour's radius, perimeter and area) reconstructs well; the k-NN
distance sees it, and misses broken dependencies among near-normal marginals that the
reconstruction error sees, so the table score adds the two. The design was chosen on validation
data kept apart from the benchmark's test sets (training images of other splits, synthetic sets
of other seeds, pooled MNIST/Fashion-MNIST training images as tables; benchmarks/RESULTS.md,
section 6).
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from ._common import (
    ModelParamsMixin,
    fitted,
    is_variational,
    make_estimator,
    merge_params,
    reconstruct,
    validate_samples,
)
from .search import LatentIndex

__all__ = ["AnomalyDetector", "detector_preset"]

_SCORINGS = ("auto", "reconstruction", "latent_knn", "reconstruction_knn", "elbo")
_MIN_IMAGES_FOR_KNN = 500  # "auto" scores fewer images by reconstruction
# Training length of the presets: about this many optimizer steps, in at most this many epochs.
_IMAGE_STEPS, _IMAGE_MAX_EPOCHS = 2000, 100  # 22 epochs of 6,000 images in batches of 64
_TABLE_STEPS, _TABLE_MAX_EPOCHS = 1000, 200


def _epochs_for(steps: int, max_epochs: int, n: int, batch_size: int) -> int:
    """Epochs giving about ``steps`` optimizer steps on n samples (between 1 and max_epochs)."""
    return int(min(max_epochs, max(1, math.ceil(steps / math.ceil(n / batch_size)))))


def detector_preset(X: np.ndarray) -> dict:
    """The hyperparameters ``AnomalyDetector`` gives a model family built by name, chosen from
    the data's shape (``model_params`` the user sets take precedence).

    Images (n, h, w) or (n, c, h, w): a convolutional autoencoder, stride-2 stages of 32, 64 and
    128 channels (fewer for images under 16 pixels a side), a 32-dimensional code, about 2,000
    steps of AdamW in batches of 64 (at most 100 epochs). Tables (n, d): an MLP on standardized features, hidden layers
    (max(64, 2d), max(32, d)), a code as wide as the number of principal components that explain
    90% of the variance (between 1 and 32, below d), weight decay 1e-4, about 1,000 steps (at
    most 200 epochs).
    No data is held out (``validation_fraction=0``): small normal sets need every row.
    """
    n = len(X)
    if X.ndim in (3, 4):
        side = min(X.shape[-2:])
        stages = int(min(3, max(1, math.floor(math.log2(max(side, 2))) - 1)))
        return {"architecture": "conv", "hidden_dims": (32, 64, 128)[:stages], "latent_dim": 32,
                "batch_size": 64, "epochs": _epochs_for(_IMAGE_STEPS, _IMAGE_MAX_EPOCHS, n, 64), "validation_fraction": 0.0, **_PLAIN}
    d = X.shape[1]
    Xs = np.asarray(X, dtype=np.float64)
    Xs = (Xs - Xs.mean(0)) / np.where(Xs.std(0) > 1e-12, Xs.std(0), 1.0)
    var = np.linalg.svd(Xs, compute_uv=False) ** 2  # (min(n, d),)
    k = int(np.searchsorted(np.cumsum(var) / max(var.sum(), 1e-300), 0.9) + 1)
    latent = int(min(32, max(1, d - 1), max(2, k))) if d > 1 else 1
    return {"architecture": "mlp", "hidden_dims": (max(64, 2 * d), max(32, d)), "latent_dim": latent,
            "standardize": True, "weight_decay": 1e-4, "batch_size": 64,
            "epochs": _epochs_for(_TABLE_STEPS, _TABLE_MAX_EPOCHS, n, 64), "validation_fraction": 0.0, **_PLAIN}


# The detector's settings were measured with the plain network trained on every row: no PCA base,
# and no early stopping (which would hold out 10% of a small normal set).
_PLAIN = {"linear_part": "none", "early_stopping": False}


def _mean_knn_distance(index, Z: np.ndarray, n_neighbors: int, training: bool) -> np.ndarray:
    """Mean distance (n,) of each row of Z to its ``n_neighbors`` nearest rows of ``index``; rows
    that are themselves indexed (``training``) leave themselves out."""
    loo = 1 if training else 0
    k = min(int(n_neighbors), index.n_indexed_ - loo)
    if k < 1:
        return np.zeros(len(Z))
    dist, _ = index.query(Z, k=k + loo)  # (n, k + loo)
    return dist[:, loo:].astype(np.float64).mean(axis=1)


def _reconstruction_error(est, X: np.ndarray) -> np.ndarray:
    """Mean squared reconstruction error per value (n,), in the units the estimator trains in."""
    R = np.asarray(reconstruct(est, X), dtype=np.float64).reshape(len(X), -1)
    diff = R - X.reshape(len(X), -1)
    scale = getattr(est, "scale_", None)
    if scale is not None:
        diff = diff / np.asarray(scale, dtype=np.float64).reshape(1, -1)
    return (diff**2).mean(axis=1)


class AnomalyDetector(ModelParamsMixin, OutlierMixin, BaseEstimator):
    """Outlier detector scoring samples by how well autoencoders trained on normal data model them.

    With the defaults, images (passed as (n, h, w) or (n, c, h, w)) get a convolutional
    autoencoder and are scored by the distance of their code to the nearest training codes (by
    their reconstruction error when there are fewer than 500 training images);
    tables (n, d) get three small MLP autoencoders on standardized features and are scored by
    their reconstruction error plus the k-NN distance among the training rows (each robustly
    standardized). On the image one-class benchmarks (fit on one class, the others
    are anomalies; benchmarks/RESULTS.md, section 6: first on Fashion-MNIST, level with LOF on
    MNIST), on digits as a table and on synthetic planted anomalies this has the best mean ROC-AUC against IsolationForest, k-NN, LOF,
    OneClassSVM, PCA and PyOD's AutoEncoder (and, on tables, PyOD's VAE and DeepSVDD), all with
    their defaults; on small real tables (breast cancer, wine, iris: 35-250 rows) the k-NN,
    OneClassSVM and PyOD baselines are 0.01-0.03 ahead.

    Parameters
    ----------
    model : str or estimator, default="ae"
        A family name ("ae", "denoising", "sparse", "contractive", "vae", "hvae", "vqvae"),
        built with the preset for the data (:func:`detector_preset`) updated by
        ``model_params``; or an aekit estimator instance (or any estimator with ``transform`` /
        ``inverse_transform``), used with its own parameters: a fitted one is used as it is
        (``fit`` then only indexes X's codes and sets the threshold), an unfitted one is cloned
        and fitted.
    contamination : float in (0, 0.5], default=0.1
        Expected fraction of outliers among samples like the training data: sets ``offset_``,
        the quantile of the training scores below which samples are called outliers.
    scoring : {"auto", "reconstruction", "latent_knn", "reconstruction_knn", "elbo"}, default="auto"
        "auto" is "latent_knn" for 500 images or more, "reconstruction" for fewer images,
        "reconstruction_knn" for tables (see the module docstring). "elbo" needs a variational model (vae, hvae).
    n_neighbors : int, default=5
        Neighbours averaged by "latent_knn" and "reconstruction_knn".
    n_models : int or "auto", default="auto"
        Autoencoders trained with different seeds whose scores are averaged (each divided by
        its median training score first when there are several). "auto": 3 for tables, 1 for
        images and for a fitted estimator.
    model_params : dict or None
        Hyperparameters of the estimator (latent_dim, epochs, ...). Extra keyword arguments are
        merged into it: ``AnomalyDetector("vae", latent_dim=8)``.
    random_state : int or None
        Seed of the first model (model i gets ``random_state + i``) when ``model_params`` does
        not set one.

    Attributes
    ----------
    estimators_ : list of the fitted autoencoder estimators; ``estimator_`` is the first.
    scoring_ : str, the scoring used ("auto" resolved).
    offset_ : float, the score threshold (``threshold_`` is the same number).
    training_scores_ : (n,) array, the training samples' scores ``offset_`` is a quantile of
        (k-NN distances leave-one-out, like ``LocalOutlierFactor.negative_outlier_factor_``).
    n_features_in_, input_shape_ : as seen in fit.

    Notes
    -----
    For "latent_knn" and "reconstruction_knn" the training k-NN distances behind ``offset_`` are
    leave-one-out (each training sample against the others), so the threshold is calibrated for new data, as in
    ``LocalOutlierFactor(novelty=True)``; a training sample scored again finds itself among its
    neighbours and scores as more normal than it would as a new sample.

    Examples
    --------
    >>> import numpy as np
    >>> from aekit.apps import AnomalyDetector
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> det = AnomalyDetector(contamination=0.05, epochs=5, random_state=0).fit(X)
    >>> det.scoring_, len(det.estimators_)
    ('reconstruction_knn', 3)
    >>> noise = np.random.default_rng(0).random((5, 64)).astype("float32")
    >>> det.predict(noise).tolist()
    [-1, -1, -1, -1, -1]
    """

    def __init__(self, model="ae", *, contamination: float = 0.1, scoring: str = "auto", n_neighbors: int = 5,
                 n_models="auto", model_params: dict | None = None, random_state=None, **kwargs):
        self.model = model
        self.contamination = contamination
        self.scoring = scoring
        self.n_neighbors = n_neighbors
        self.n_models = n_models
        self.model_params = merge_params(model_params, kwargs)
        self.random_state = random_state

    # -- fitting ---------------------------------------------------------------------------------
    def _check_params(self) -> None:
        if not (isinstance(self.contamination, (int, float)) and not isinstance(self.contamination, bool)
                and 0 < self.contamination <= 0.5):
            raise ValueError(f"contamination must be a number in (0, 0.5], got {self.contamination!r}")
        if self.scoring not in _SCORINGS:
            raise ValueError(f"scoring must be one of {_SCORINGS}, got {self.scoring!r}")
        if isinstance(self.n_neighbors, bool) or not isinstance(self.n_neighbors, (int, np.integer)) or self.n_neighbors < 1:
            raise ValueError(f"n_neighbors must be a positive integer, got {self.n_neighbors!r}")
        if self.n_models != "auto" and (isinstance(self.n_models, bool) or not isinstance(self.n_models, (int, np.integer))
                                        or self.n_models < 1):
            raise ValueError(f"n_models must be 'auto' or a positive integer, got {self.n_models!r}")

    def _members(self, X: np.ndarray) -> list:
        """The fitted estimators: one fitted instance as given, or n_models trained on X."""
        images = X.ndim in (3, 4)
        if not isinstance(self.model, str):
            try:
                check_is_fitted(self.model)
                prefit = not self.model_params
            except (NotFittedError, TypeError):  # unfitted, or not an estimator (rejected by make_estimator)
                prefit = False
            if prefit:
                if self.n_models not in ("auto", 1):
                    raise ValueError(f"a fitted estimator is used as it is: n_models must be 1 or 'auto', got {self.n_models!r}")
                return [fitted(self.model, X)]
        n = (1 if images else 3) if self.n_models == "auto" else int(self.n_models)
        params = self.model_params
        if isinstance(self.model, str) and (params is None or isinstance(params, dict)):
            from ..estimators import estimator_params

            accepted = estimator_params(self.model)  # the preset's keys this family has
            params = {**{k: v for k, v in detector_preset(X).items() if k in accepted}, **(params or {})}
        own_seed = isinstance(params, dict) and params.get("random_state") is not None
        base = params["random_state"] if own_seed else self.random_state
        members = []
        for i in range(n):
            seed = None if base is None else int(base) + i
            p = {**params, "random_state": seed} if own_seed else params
            members.append(make_estimator(self.model, p, seed).fit(X))
        return members

    def fit(self, X, y=None):
        """Train the autoencoder(s) on X (normal data), index the training codes for
        "latent_knn", and set the threshold from ``contamination``."""
        self._check_params()
        X = validate_samples(self, X, reset=True)
        scoring = self.scoring
        if scoring == "auto":
            if X.ndim in (3, 4):
                scoring = "latent_knn" if len(X) >= _MIN_IMAGES_FOR_KNN else "reconstruction"
            else:
                scoring = "reconstruction_knn"
        if scoring == "elbo":
            template = make_estimator(self.model, None) if isinstance(self.model, str) else self.model
            if not is_variational(template):
                raise ValueError(f"scoring='elbo' needs a variational model (vae, hvae), got {type(template).__name__}")
        self.scoring_ = scoring
        self.estimators_ = self._members(X)
        self.estimator_ = self.estimators_[0]
        codes = [None] * len(self.estimators_)
        if scoring == "latent_knn":  # the training codes, encoded once: indexed, then scored leave-one-out
            codes = [np.asarray(est.transform(X), dtype=np.float32) for est in self.estimators_]
            self.indexes_ = [LatentIndex().fit(c) for c in codes]
        raw = [self._member_scores(i, X, training=True, codes=c) for i, c in enumerate(codes)]  # (n,) each
        self._scales = [1.0] * len(raw) if len(raw) == 1 else [max(float(np.median(r)), 1e-12) for r in raw]
        anomaly = self._ensemble(raw)  # (n,)
        if scoring == "reconstruction_knn":
            est = self.estimators_[0]
            mean, scale = getattr(est, "mean_", None), getattr(est, "scale_", None)
            self._input_units = (None if mean is None else np.asarray(mean, np.float32).reshape(1, -1),
                                 None if scale is None else np.asarray(scale, np.float32).reshape(1, -1))
            self.input_index_ = LatentIndex().fit(self._in_units(X))
            knn = self._input_knn(X, training=True)
            # each part robustly standardized by its training scores (median, interquartile range)
            self._robust = [(float(np.median(a)), max(float(np.subtract(*np.percentile(a, [75, 25]))), 1e-12))
                            for a in (anomaly, knn)]
            anomaly = self._combine(anomaly, knn)
        self.training_scores_ = -anomaly
        self.offset_ = float(np.percentile(self.training_scores_, 100.0 * self.contamination))
        return self

    # -- scoring ---------------------------------------------------------------------------------
    def _in_units(self, X: np.ndarray) -> np.ndarray:
        """X flattened (n, d), in the units the models train in (standardized when they standardize)."""
        F = np.asarray(X, dtype=np.float32).reshape(len(X), -1)
        mean, scale = self._input_units
        return F if mean is None else (F - mean) / scale

    def _input_knn(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        """Mean distance (n,) to the n_neighbors nearest training samples in input space
        (leave-one-out for the training samples)."""
        return _mean_knn_distance(self.input_index_, self._in_units(X), self.n_neighbors, training)

    def _combine(self, reconstruction: np.ndarray, knn: np.ndarray) -> np.ndarray:
        """Sum of the two anomaly scores, each as (score - training median) / training IQR."""
        (m1, s1), (m2, s2) = self._robust
        return (reconstruction - m1) / s1 + (knn - m2) / s2

    def _ensemble(self, raw: list[np.ndarray]) -> np.ndarray:
        """The members' anomaly scores (n,) each, as one: the mean of each over its training median."""
        return np.mean([r / s for r, s in zip(raw, self._scales)], axis=0)

    def _member_scores(self, i: int, X: np.ndarray, training: bool = False, codes=None) -> np.ndarray:
        """Anomaly score (n,) of model i, higher = more anomalous; leave-one-out for the
        training samples' k-NN distances. ``codes``: model i's codes of X, when already at hand."""
        est = self.estimators_[i]
        if self.scoring_ == "elbo":
            return -np.asarray(est.score_samples(X), dtype=np.float64)
        if self.scoring_ in ("reconstruction", "reconstruction_knn"):
            return _reconstruction_error(est, X)
        if codes is None:
            codes = np.asarray(est.transform(X), dtype=np.float32)
        return _mean_knn_distance(self.indexes_[i], codes, self.n_neighbors, training)

    @property
    def threshold_(self) -> float:
        """The score below which a sample is an outlier (the same number as ``offset_``)."""
        return self.offset_

    def score_samples(self, X) -> np.ndarray:
        """Normality score of each sample (n,): higher means more normal."""
        check_is_fitted(self)
        X = validate_samples(self, X, reset=False)
        anomaly = self._ensemble([self._member_scores(i, X) for i in range(len(self.estimators_))])
        if self.scoring_ == "reconstruction_knn":
            anomaly = self._combine(anomaly, self._input_knn(X))
        return -anomaly

    def decision_function(self, X) -> np.ndarray:
        """``score_samples(X) - offset_``: negative for outliers."""
        return self.score_samples(X) - self.offset_

    def predict(self, X) -> np.ndarray:
        """+1 for inliers, -1 for outliers (decision_function < 0)."""
        return np.where(self.decision_function(X) < 0, -1, 1)
