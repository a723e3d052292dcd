"""Helpers the applications share (defined once here): building an estimator from a family name,
using an estimator fitted or not, and encoding/decoding through any fitted transformer."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .._registry import model_names
from ..estimators import estimator_class

__all__ = [
    "ModelParamsMixin", "decode", "encode", "estimator_names", "fitted", "flat", "is_variational",
    "make_estimator", "merge_params", "reconstruct", "validate_samples",
]


def estimator_names() -> list[str]:
    """Family names accepted wherever an application takes ``model="..."``: every registered family."""
    return model_names()


def merge_params(model_params, kwargs: dict):
    """``model_params`` with keyword arguments merged in (for ``Detector("vae", latent_dim=8)``).
    Returns ``model_params`` itself when there is nothing to merge, so ``clone`` sees the same
    object; a malformed ``model_params`` is kept as given and rejected at fit."""
    if not kwargs:
        return model_params
    if model_params is None or isinstance(model_params, dict):
        return {**(model_params or {}), **kwargs}
    return model_params


class ModelParamsMixin:
    """For application estimators that wrap an autoencoder built from ``model`` and
    ``model_params``: keyword arguments that are not the application's own parameters go to
    ``model_params``, in the constructor and in ``set_params`` alike."""

    def set_params(self, **params):
        own = self.get_params(deep=False)
        extra = {k: params.pop(k) for k in list(params) if k not in own and "__" not in k}
        super().set_params(**params)
        if extra:
            self.model_params = merge_params(self.model_params, extra)
        return self


def make_estimator(model, params: dict[str, Any] | None = None, random_state=None):
    """An unfitted estimator: a family name (``"ae"``, ``"vae"``, ...) built with ``params``, or a
    clone of the estimator instance given (``params`` then set on the clone)."""
    if params is not None and not isinstance(params, dict):
        raise TypeError(f"model_params must be a dict or None, got {type(params).__name__}")
    params = dict(params or {})
    if isinstance(model, str):
        est = estimator_class(model)(**params)
    elif hasattr(model, "fit") and hasattr(model, "get_params"):
        est = clone(model).set_params(**params) if params else clone(model)
    else:
        raise TypeError(f"model must be a family name or a scikit-learn estimator, got {type(model).__name__}")
    if random_state is not None and "random_state" in est.get_params() and "random_state" not in params:
        est.set_params(random_state=random_state)
    return est


def fitted(model, X, params: dict[str, Any] | None = None, random_state=None):
    """The estimator an application works through: a fitted estimator instance (with no
    ``params`` to change) is used as it is; a family name or an unfitted instance is built (see
    :func:`make_estimator`) and fitted on X."""
    if not isinstance(model, str) and not params:
        try:
            check_is_fitted(model)
            return model
        except NotFittedError:
            pass
    return make_estimator(model, params, random_state).fit(X)


def is_variational(estimator) -> bool:
    """Whether the estimator's model family has an ELBO (declares ``variational``)."""
    caps = getattr(estimator, "capabilities", None)
    return bool(caps is not None and caps().get("variational"))


def flat(X) -> np.ndarray:
    """(n, ...) -> (n, prod(...)) float32 view/copy."""
    X = np.asarray(X, dtype=np.float32)
    return X.reshape(len(X), -1)


def encode(estimator, X, y=None) -> np.ndarray:
    """Codes (n, k) from any fitted transformer; ``y`` reaches conditional estimators only."""
    Z = estimator.transform(X, y) if y is not None else estimator.transform(X)
    return np.asarray(Z, dtype=np.float32)


def decode(estimator, Z, y=None) -> np.ndarray:
    """Data from codes (n, k) through ``inverse_transform``."""
    return estimator.inverse_transform(Z, y) if y is not None else estimator.inverse_transform(Z)


def reconstruct(estimator, X, y=None) -> np.ndarray:
    """The estimator's reconstruction of X: ``reconstruct`` when it has one (aekit estimators; a
    denoiser's clean estimate), else ``inverse_transform(transform(X))`` (PCA and friends)."""
    if hasattr(estimator, "reconstruct"):
        return estimator.reconstruct(X, y) if y is not None else estimator.reconstruct(X)
    return np.asarray(decode(estimator, encode(estimator, X))).reshape(np.shape(X))


def validate_samples(est, X, *, reset: bool, allow_nan: bool = False, dtype=np.float32) -> np.ndarray:
    """Validate X for an application estimator: 2-D tables via scikit-learn (feature counts and
    names checked), or images (n, h, w) / (n, c, h, w) checked on their per-sample shape.
    Sets ``n_features_in_`` and ``input_shape_`` when ``reset``. Returns ``dtype`` (float32;
    scikit-learn's list form keeps a listed input dtype)."""
    ensure = "allow-nan" if allow_nan else True
    if np.ndim(X) == 2 if hasattr(X, "ndim") else True:
        arr = validate_data(est, X, reset=reset, dtype=dtype, ensure_all_finite=ensure,
                            ensure_min_samples=2 if reset else 1)
    else:
        arr = check_array(X, allow_nd=True, dtype=dtype, ensure_all_finite=ensure,
                          ensure_min_samples=2 if reset else 1)
        if arr.ndim not in (3, 4):
            raise ValueError(f"X must be 2-D (n_samples, n_features) or images (n, h, w) / (n, c, h, w); got {arr.ndim}-D")
        if reset:
            est.n_features_in_ = int(math.prod(arr.shape[1:]))
    if reset:
        est.input_shape_ = tuple(int(s) for s in arr.shape[1:])
    elif tuple(arr.shape[1:]) != est.input_shape_:
        raise ValueError(f"X has per-sample shape {tuple(arr.shape[1:])}, but {type(est).__name__} "
                         f"was fitted on {est.input_shape_}")
    return arr
