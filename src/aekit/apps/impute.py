"""Missing-value imputation with an autoencoder, as a scikit-learn transformer.

With a model that handles missing values (the default, ``"masked"``: :class:`aekit.MaskedAutoEncoder`),
``fit`` trains on X with its NaNs: the network sees the observed entries and their mask, learns
to reconstruct observed entries hidden from it, and is scored on observed entries only; then
``transform`` fills each NaN with the reconstruction from the row's observed entries, in one pass.

Any other autoencoder is trained on X with each feature's NaNs filled by its observed mean, and
``transform`` starts from the same fill and iterates "reconstruct, then overwrite only the
missing entries" ``n_iter`` times (the fixed-point scheme of Gondara & Wang 2018, MIDA). For
variational models ``strategy="sample"`` runs Metropolis-within-Gibbs instead (Mattei &
Frellsen 2018, which makes the pseudo-Gibbs sampler of Rezende et al. 2014 exact): propose
z ~ q(z | x), accept with the importance-ratio rule, draw the missing entries from p(x | z), and
return the average decoder mean over the second half of the chain (an estimate of
E[x_missing | x_observed], the RMSE-optimal fill).

Either way imputations are clipped to each feature's observed range and observed entries are
returned unchanged, bit for bit.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..models.vae import log_normal
from ._common import (
    ModelParamsMixin,
    fitted,
    make_estimator,
    merge_params,
    reconstruct,
    validate_samples,
)

__all__ = ["AutoencoderImputer"]

_STRATEGIES = ("reconstruct", "sample")


class AutoencoderImputer(ModelParamsMixin, OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Fill NaNs with an autoencoder's reconstruction (or posterior samples, for VAEs).

    Parameters
    ----------
    model : str or estimator, default="masked"
        A family name ("masked", "ae", "vae", ...) built with ``model_params``, or an aekit
        estimator instance: a fitted one is used as it is (``fit`` then only learns the fill
        values and ranges), an unfitted one is cloned and fitted on X. A family that handles
        missing values ("masked") is trained on X with its NaNs and fills them in one pass;
        any other is trained on the mean-filled X and iterates (see the module notes).
    n_iter : int, default=10
        Reconstruct-and-replace rounds (``"reconstruct"`` with a model that does not handle
        missing values; unused otherwise) or chain length (``"sample"``).
    strategy : {"reconstruct", "sample"}, default="reconstruct"
        "sample" needs an unconditional VAE ("vae").
    model_params : dict or None
        Estimator hyperparameters; extra keyword arguments are merged into it.
    random_state : int or None
        Seeds the estimator (unless ``model_params`` sets it) and the sampler.

    Attributes
    ----------
    estimator_ : the fitted autoencoder.
    fill_values_ : per-feature observed means (0 where a feature was never observed), shaped like one sample.
    data_min_, data_max_ : per-feature observed range; imputed values are clipped to it.
    n_features_in_, input_shape_ : as seen in fit.

    Notes
    -----
    Scale features to comparable ranges first (tabular data): ``make_pipeline(StandardScaler(),
    AutoencoderImputer())`` works, since scikit-learn's scalers ignore and keep NaNs.

    Examples
    --------
    >>> import numpy as np
    >>> from aekit.apps import AutoencoderImputer
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> X_missing = X.copy()
    >>> X_missing[np.random.default_rng(0).random(X.shape) < 0.25] = np.nan
    >>> imp = AutoencoderImputer(epochs=5, random_state=0).fit(X_missing)
    >>> out = imp.transform(X_missing)
    >>> bool(np.isnan(out).any()), bool((out[~np.isnan(X_missing)] == X_missing[~np.isnan(X_missing)]).all())
    (False, True)
    """

    def __init__(self, model="masked", *, n_iter: int = 10, strategy: str = "reconstruct",
                 model_params: dict | None = None, random_state=None, **kwargs):
        self.model = model
        self.n_iter = n_iter
        self.strategy = strategy
        self.model_params = merge_params(model_params, kwargs)
        self.random_state = random_state

    def fit(self, X, y=None):
        """Train the autoencoder on X: with its NaNs for a model that handles missing values,
        else on X with each feature's NaNs filled by its observed mean."""
        if isinstance(self.n_iter, bool) or not isinstance(self.n_iter, (int, np.integer)) or self.n_iter < 1:
            raise ValueError(f"n_iter must be a positive integer, got {self.n_iter!r}")
        if self.strategy not in _STRATEGIES:
            raise ValueError(f"strategy must be one of {_STRATEGIES}, got {self.strategy!r}")
        X = validate_samples(self, X, reset=True, allow_nan=True)
        observed = ~np.isnan(X)
        counts = observed.sum(axis=0)
        sums = np.where(observed, X, 0).sum(axis=0, dtype=np.float64)
        self.fill_values_ = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0).astype(np.float32)
        # the observed range of each feature: imputations are kept inside it, which keeps the
        # reconstruct-and-replace iteration from running away where most of a sample is missing
        self.data_min_ = np.where(counts > 0, np.where(observed, X, np.inf).min(axis=0), self.fill_values_).astype(np.float32)
        self.data_max_ = np.where(counts > 0, np.where(observed, X, -np.inf).max(axis=0), self.fill_values_).astype(np.float32)
        template = make_estimator(self.model, self.model_params) if isinstance(self.model, str) else self.model
        if self.strategy == "sample" and not _single_level_vae(template):
            raise ValueError(
                f"strategy='sample' needs an unconditional one-level VAE (model='vae'), got {type(template).__name__}"
            )
        train_on = X if _handles_missing(template) else np.where(observed, X, self.fill_values_)
        self.estimator_ = fitted(self.model, train_on, self.model_params, self.random_state)
        return self

    def transform(self, X):
        """X with its NaNs filled, in X's float dtype; every observed entry is returned unchanged."""
        check_is_fitted(self)
        X = validate_samples(self, X, reset=False, allow_nan=True, dtype=[np.float64, np.float32])
        missing = np.isnan(X)
        out = np.where(missing, self.fill_values_.astype(X.dtype), X)  # X's dtype: observed entries exact
        if not missing.any():
            return out
        rows = missing.reshape(len(X), -1).any(axis=1)  # only rows with a gap need the model
        sub, sub_missing = out[rows].astype(np.float32), missing[rows]
        if _handles_missing(self.estimator_):  # one pass from the observed entries and their mask
            sub = np.clip(reconstruct(self.estimator_, X[rows].astype(np.float32)), self.data_min_, self.data_max_)
        elif self.strategy == "sample":
            sub = self._sample(sub, sub_missing)
        else:
            for _ in range(int(self.n_iter)):
                R = np.clip(reconstruct(self.estimator_, sub), self.data_min_, self.data_max_)
                sub = np.where(sub_missing, R, sub)
        out[rows] = np.where(sub_missing, sub, out[rows])
        return out

    @torch.no_grad()
    def _sample(self, X: np.ndarray, missing: np.ndarray) -> np.ndarray:
        """Metropolis-within-Gibbs (Mattei & Frellsen 2018) over batches; returns the mean fill."""
        model = self.estimator_.model_
        device = next(model.parameters()).device
        gen = torch.Generator(device=device).manual_seed(0 if self.random_state is None else int(self.random_state))
        shape = model.config.input_shape
        n_iter, burn = int(self.n_iter), int(self.n_iter) // 2
        out = []
        for start in range(0, len(X), 1024):
            x = torch.as_tensor(X[start : start + 1024], device=device).reshape(-1, *shape)  # (B, *S)
            m = torch.as_tensor(missing[start : start + 1024], device=device).reshape(x.shape)
            x_obs = x.clone()
            mu, logvar = model.posterior(x)
            z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen, device=device)  # (B, K)
            total = torch.zeros_like(x)
            for t in range(n_iter):
                mu, logvar = model.posterior(x)
                z_new = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen, device=device)
                log_ratio = self._log_w(model, x, z_new, mu, logvar) - self._log_w(model, x, z, mu, logvar)  # (B,)
                accept = torch.log(torch.rand(log_ratio.shape, generator=gen, device=device)) < log_ratio
                z = torch.where(accept[:, None], z_new, z)
                p_x = model.decoder_distribution(z).base_dist  # elementwise, (B, *S)
                mean = p_x.mean
                draw = _draw(p_x, gen)
                x = torch.where(m, draw, x_obs)
                if t >= burn:
                    total += mean
            out.append((total / (n_iter - burn)).reshape(len(x), -1).cpu().numpy())
        return np.clip(np.concatenate(out).reshape(X.shape), self.data_min_, self.data_max_)

    @staticmethod
    def _log_w(model, x, z, mu, logvar) -> torch.Tensor:
        """log p(x | z) + log p(z) - log q(z | x), per sample (B,)."""
        return model.log_likelihood(x, z) + model.log_prior(z) - log_normal(z, mu, logvar)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def _handles_missing(estimator) -> bool:
    """Whether the estimator's model takes NaNs as missing values (declares ``handles_missing``)."""
    return bool(getattr(estimator, "capabilities", dict)().get("handles_missing"))


def _single_level_vae(estimator) -> bool:
    """Whether the estimator's model is an unconditional VAE with one stochastic level (what the
    Metropolis-within-Gibbs sampler is written for)."""
    caps = getattr(estimator, "capabilities", dict)()
    return bool(caps.get("variational")) and not caps.get("conditional") and not caps.get("hierarchical")


def _draw(p_x: torch.distributions.Distribution, gen: torch.Generator) -> torch.Tensor:
    """One draw from an elementwise Bernoulli or Normal decoder distribution with an explicit generator."""
    if isinstance(p_x, torch.distributions.Bernoulli):
        return torch.bernoulli(p_x.probs, generator=gen)
    return p_x.mean + p_x.stddev * torch.randn(p_x.mean.shape, generator=gen, device=p_x.mean.device)
