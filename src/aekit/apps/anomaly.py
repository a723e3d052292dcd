"""Anomaly detection with an autoencoder, following scikit-learn's outlier-detector conventions
(IsolationForest): fit on normal data; ``score_samples`` is higher for more normal samples;
``decision_function = score_samples - offset_`` is negative for outliers; ``predict`` gives +1
(inlier) or -1 (outlier); the threshold is the ``contamination`` quantile of the training scores.

Scores (Japkowicz et al. 1995; An & Cho 2015 for the VAE's): ``"reconstruction"`` is minus the
mean squared reconstruction error per value; ``"elbo"`` is the evidence lower bound of a
variational model (its ``score_samples``).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
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

__all__ = ["AnomalyDetector"]

_SCORINGS = ("reconstruction", "elbo")


class AnomalyDetector(ModelParamsMixin, OutlierMixin, BaseEstimator):
    """Outlier detector scoring samples by how well an autoencoder trained on normal data models them.

    Parameters
    ----------
    model : str or estimator, default="ae"
        A family name ("ae", "denoising", "sparse", "contractive", "vae", "hvae", "vqvae"),
        built with ``model_params``, or an aekit estimator instance: a fitted one is used as it
        is (``fit`` then only sets the threshold on X), an unfitted one is cloned and fitted.
    contamination : float in (0, 0.5], default=0.1
        Expected fraction of outliers in the training data: sets ``offset_``, the training-score
        quantile below which samples are called outliers.
    scoring : {"reconstruction", "elbo"}, default="reconstruction"
        "elbo" needs a variational model (vae, hvae).
    model_params : dict or None
        Hyperparameters of the estimator (latent_dim, epochs, ...). Extra keyword arguments are
        merged into it: ``AnomalyDetector("vae", latent_dim=8)``.
    random_state : int or None
        Seed for the estimator when ``model_params`` does not set one.

    Attributes
    ----------
    estimator_ : the fitted autoencoder estimator.
    offset_ : float, the score threshold (``threshold_`` is the same number).
    n_features_in_, input_shape_ : as seen in fit.

    Examples
    --------
    >>> import numpy as np
    >>> from aekit.apps import AnomalyDetector
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> det = AnomalyDetector(contamination=0.05, epochs=5, random_state=0).fit(X)
    >>> noise = np.random.default_rng(0).random((5, 64)).astype("float32")
    >>> det.predict(noise).tolist()
    [-1, -1, -1, -1, -1]
    """

    def __init__(self, model="ae", *, contamination: float = 0.1, scoring: str = "reconstruction",
                 model_params: dict | None = None, random_state=None, **kwargs):
        self.model = model
        self.contamination = contamination
        self.scoring = scoring
        self.model_params = merge_params(model_params, kwargs)
        self.random_state = random_state

    def fit(self, X, y=None):
        """Train the autoencoder on X (normal data) and set the threshold from ``contamination``."""
        if not (isinstance(self.contamination, (int, float)) and 0 < self.contamination <= 0.5):
            raise ValueError(f"contamination must be a number in (0, 0.5], got {self.contamination!r}")
        if self.scoring not in _SCORINGS:
            raise ValueError(f"scoring must be one of {_SCORINGS}, got {self.scoring!r}")
        X = validate_samples(self, X, reset=True)
        template = make_estimator(self.model, self.model_params) if isinstance(self.model, str) else self.model
        if self.scoring == "elbo" and not is_variational(template):
            raise ValueError(f"scoring='elbo' needs a variational model (vae, hvae), got {type(template).__name__}")
        self.estimator_ = fitted(self.model, X, self.model_params, self.random_state)
        self.offset_ = float(np.percentile(self._scores(X), 100.0 * self.contamination))
        return self

    @property
    def threshold_(self) -> float:
        """The score below which a sample is an outlier (the same number as ``offset_``)."""
        return self.offset_

    def _scores(self, X: np.ndarray) -> np.ndarray:
        if self.scoring == "elbo":
            return np.asarray(self.estimator_.score_samples(X), dtype=np.float64)
        R = np.asarray(reconstruct(self.estimator_, X), dtype=np.float64).reshape(len(X), -1)
        return -((R - X.reshape(len(X), -1)) ** 2).mean(axis=1)

    def score_samples(self, X) -> np.ndarray:
        """Normality score of each sample (n,): higher means more normal."""
        check_is_fitted(self)
        return self._scores(validate_samples(self, X, reset=False))

    def decision_function(self, X) -> np.ndarray:
        """``score_samples(X) - offset_``: negative for outliers."""
        return self.score_samples(X) - self.offset_

    def predict(self, X) -> np.ndarray:
        """+1 for inliers, -1 for outliers (decision_function < 0)."""
        return np.where(self.decision_function(X) < 0, -1, 1)
