"""scikit-learn face over the models and the training loop.

Each estimator is a thin declaration: the model family it wraps and that family's
hyperparameters with their defaults. Fitting, validation, encoding, scoring, saving and loading
are written once in ``BaseAutoencoderEstimator``.
"""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from safetensors.torch import save as st_save
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from . import __version__
from ._registry import get_model_class
from ._utils import atomic_write_bytes, resolve_device, seeded
from .checkpoint import check_version, model_from_file, model_metadata, read_safetensors
from .models.base import SharedNoise
from .train import train

__all__ = [
    "AutoEncoder",
    "DenoisingAutoEncoder",
    "SparseAutoEncoder",
    "ContractiveAutoEncoder",
    "VAE",
    "ConditionalVAE",
    "HierarchicalVAE",
    "IWAE",
    "VQVAE",
    "load",
    "ESTIMATORS",
    "FAMILIES",
    "estimator_class",
]

# Parameters every estimator has, with their defaults (public, stable names).
COMMON_PARAMS: dict[str, Any] = {
    "latent_dim": 16,
    "hidden_dims": (256, 128),
    "activation": "relu",
    "architecture": "mlp",
    "epochs": 100,
    "batch_size": 64,
    "lr": 1e-3,
    "lr_schedule": "constant",
    "weight_decay": 0.0,
    "validation_fraction": 0.1,
    "early_stopping": False,
    "patience": 10,
    "grad_clip": None,
    "on_nonfinite": "raise",
    "standardize": "auto",
    "random_state": None,
    "device": "auto",
    "verbose": False,
}
# Of those, the ones that go to the training loop rather than the model config.
TRAIN_PARAMS = (
    "epochs", "batch_size", "lr", "lr_schedule", "weight_decay", "validation_fraction", "early_stopping", "patience",
    "grad_clip", "on_nonfinite",
)

_VAE_PARAMS: dict[str, Any] = {
    "likelihood": "auto",
    "beta": 1.0,
    "kl_warmup_epochs": 0.0,
    "kl_schedule": "linear",
    "kl_cycle_epochs": 0.0,
    "free_bits": 0.0,
    "min_variance": 0.0,
    "batch_norm": False,
}

ESTIMATORS: dict[str, type] = {}  # class name -> estimator class
FAMILIES: dict[str, type] = {}  # model family (registry name: "ae", "vae", ...) -> estimator class


def estimator_class(family: str) -> type:
    """The estimator class for a model family name (``"vae"`` -> ``VAE``)."""
    try:
        return FAMILIES[family]
    except KeyError:
        raise ValueError(f"unknown model {family!r}; choose one of {', '.join(FAMILIES)}") from None


def _make_init(params: dict[str, Any]):
    """An ``__init__`` that only stores hyperparameters, with an explicit signature (the one
    scikit-learn's get_params reads), generated from one table of defaults."""

    def __init__(self, **kwargs):
        unknown = set(kwargs) - set(params)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected parameter(s) {sorted(unknown)}")
        for name, default in params.items():
            setattr(self, name, kwargs.get(name, default))

    __init__.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d) for n, d in params.items()]
    )
    return __init__


class BaseAutoencoderEstimator(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Shared behaviour; subclasses set ``_model`` (registry name) and ``_params`` (family defaults).

    Fitted attributes: ``model_`` (the torch module), ``history_`` (per-epoch dicts),
    ``n_features_in_``, ``input_shape_`` (one sample's shape as given), ``seed_``, ``mean_`` and
    ``scale_`` (the standardization, or None).
    """

    _model: ClassVar[str]
    _params: ClassVar[dict[str, Any]] = {}
    _score_batch = 1024

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if "_model" in cls.__dict__:
            cls.__init__ = _make_init({**COMMON_PARAMS, **cls._params})
            ESTIMATORS[cls.__name__] = cls
            FAMILIES[cls._model] = cls

    @classmethod
    def capabilities(cls) -> dict[str, bool]:
        """What the model family can do (``variational``, ``generative``, ``conditional``,
        ``quantised``, ``hierarchical``), as its model class declares it."""
        return get_model_class(cls._model).capabilities()

    # -- input handling ------------------------------------------------------------
    def _validate_X(self, X, reset: bool) -> np.ndarray:
        """Validate X and return it as float32 with one sample per row in its original layout."""
        if isinstance(X, np.memmap) and X.dtype == np.float32 and not reset:
            arr = X  # streamed batch by batch; finiteness is checked per batch
        elif np.ndim(X) == 2 if hasattr(X, "ndim") else True:
            arr = validate_data(self, X, reset=reset, dtype=np.float32, ensure_min_samples=2 if reset else 1)
        else:
            arr = check_array(X, allow_nd=True, dtype=np.float32, ensure_min_samples=2 if reset else 1)
            if arr.ndim not in (3, 4):
                raise ValueError(
                    f"X must be 2-D (n_samples, n_features) or images (n, h, w) / (n, c, h, w); got {arr.ndim}-D"
                )
            if reset:
                self.n_features_in_ = int(math.prod(arr.shape[1:]))
        if reset:
            self.input_shape_ = tuple(int(s) for s in arr.shape[1:])
        elif tuple(arr.shape[1:]) != self.input_shape_:
            raise ValueError(
                f"X has per-sample shape {tuple(arr.shape[1:])} ({int(math.prod(arr.shape[1:]))} features), "
                f"but {type(self).__name__} is expecting {self.input_shape_} "
                f"({self.n_features_in_} features) as input"
            )
        return arr

    def _model_shape(self) -> tuple[int, ...]:
        """Per-sample shape the model sees: (D,), or (C, H, W) for images ((h, w) gains C = 1)."""
        s = self.input_shape_
        return (1, *s) if len(s) == 2 else s

    def _fit_scaling(self, X: np.ndarray) -> None:
        """Per-feature mean_ and scale_ when standardizing (else None). "auto" standardizes data
        that does not already lie in [0, 1], so unscaled tabular data trains out of the box."""
        if self.standardize not in ("auto", True, False):
            raise ValueError(f"standardize must be 'auto', True or False, got {self.standardize!r}")
        on = self.standardize is True or (
            self.standardize == "auto" and not (float(np.min(X)) >= 0 and float(np.max(X)) <= 1)
        )
        if not on:
            self.mean_ = self.scale_ = None
            return
        self.mean_ = X.mean(axis=0, dtype=np.float64).astype(np.float32)
        std = X.std(axis=0, dtype=np.float64)
        self.scale_ = np.where(std > 1e-12, std, 1.0).astype(np.float32)

    def _to_model(self, X: np.ndarray) -> torch.Tensor:
        X = np.asarray(X, dtype=np.float32)
        if self.mean_ is not None:
            X = (X - self.mean_) / self.scale_
        t = torch.as_tensor(np.ascontiguousarray(X))
        return t.reshape(t.shape[0], *self._model_shape())

    def _from_model(self, t: torch.Tensor) -> np.ndarray:
        X = t.detach().cpu().numpy().reshape(t.shape[0], *self.input_shape_)
        return X * self.scale_ + self.mean_ if self.mean_ is not None else X

    def _batches(self, X):
        """Yield model-ready tensors on the model's device, a bounded batch at a time."""
        device = next(self.model_.parameters()).device
        for start in range(0, X.shape[0], self._score_batch):
            chunk = np.array(X[start : start + self._score_batch], dtype=np.float32)  # a copy: memmaps stay on disk
            if not np.isfinite(chunk).all():
                raise ValueError(f"X contains NaN or infinity (in rows {start}..{start + len(chunk) - 1})")
            yield self._to_model(chunk).to(device)

    def _check_range(self, X: np.ndarray, what: str) -> None:
        lo, hi = float(np.min(X)), float(np.max(X))
        if lo < 0 or hi > 1:
            raise ValueError(
                f"{what} needs data in [0, 1], but X spans [{lo:.3g}, {hi:.3g}]; rescale it "
                "(e.g. MinMaxScaler) or use loss='mse' / likelihood='gaussian'"
            )

    # -- hooks for subclasses --------------------------------------------------------
    def _model_config(self, X: np.ndarray) -> dict[str, Any]:
        """Model settings for this fit: the estimator's parameters that the family's Config has."""
        cfg_cls = get_model_class(self._model).Config
        names = {f for f in cfg_cls.__dataclass_fields__}
        params = self.get_params()
        cfg = {k: v for k, v in params.items() if k in names and k != "input_shape"}
        cfg["input_shape"] = self._model_shape()
        if cfg.get("loss") == "bce":
            self._check_range(X, "loss='bce'")
            self.mean_ = self.scale_ = None
        return cfg

    def _encode_labels(self, y, X):
        return None

    def _labels_for(self, X, y):
        return None

    # -- scikit-learn API --------------------------------------------------------------
    def fit(self, X, y=None, *, checkpoint_dir=None, resume=False, callbacks=()):
        """Train the autoencoder on X (n_samples, n_features) or images (n, h, w) / (n, c, h, w).

        ``checkpoint_dir``, ``resume`` and ``callbacks`` go to :func:`aekit.train.train`: write
        ``checkpoint.safetensors`` there every epoch, continue from it, call f(epoch, record).
        """
        X = self._validate_X(X, reset=True)
        labels = self._encode_labels(y, X)
        self._fit_scaling(X)
        self.seed_ = _seed(self.random_state)
        cls = get_model_class(self._model)
        with seeded(self.seed_):
            self.model_ = cls(cls.Config(**self._model_config(X)))
        p = self.get_params()
        self.history_ = train(
            self.model_, self._to_model(X), labels,
            **{k: p[k] for k in TRAIN_PARAMS}, seed=self.seed_, device=resolve_device(self.device),
            progress=bool(self.verbose), checkpoint_dir=checkpoint_dir, resume=resume, callbacks=tuple(callbacks),
        )
        self.model_.eval()
        return self

    @property
    def _n_features_out(self) -> int:
        return self.model_.config.latent_dim

    @torch.no_grad()
    def transform(self, X, y=None):
        """The deterministic code of X (the posterior mean for VAEs): (n, latent_dim)."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        labels = self._labels_for(X, y)
        out = [self.model_.encode(xb, _slice(labels, i, len(xb), xb.device)) for i, xb in self._enumerate(X)]
        return torch.cat(out).cpu().numpy()

    @torch.no_grad()
    def inverse_transform(self, Z, y=None):
        """Decode codes Z (n, latent_dim) back to data space, in the layout X was given in."""
        check_is_fitted(self)
        Z = check_array(Z, dtype=np.float32)
        if Z.shape[1] != self.model_.config.latent_dim:
            raise ValueError(f"Z has {Z.shape[1]} columns, but the code has latent_dim={self.model_.config.latent_dim}")
        device = next(self.model_.parameters()).device
        labels = self._decode_labels(Z, y)
        out = []
        for start in range(0, len(Z), self._score_batch):
            zb = torch.as_tensor(Z[start : start + self._score_batch], device=device)
            out.append(self._from_model(self.model_.decode(zb, _slice(labels, start, len(zb), device))))
        return np.concatenate(out)

    def _decode_labels(self, Z, y):
        return None

    def reconstruct(self, X, y=None):
        """decode(encode(X)): the model's reconstruction (a denoiser's clean estimate), same layout as X."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        labels = self._labels_for(X, y)
        with torch.no_grad():
            out = [self._from_model(self.model_.reconstruct(xb, _slice(labels, i, len(xb), xb.device))) for i, xb in self._enumerate(X)]
        return np.concatenate(out)

    @torch.no_grad()
    def score_samples(self, X, y=None):
        """Per-sample score, higher = more typical: minus the reconstruction loss, or the ELBO
        (one posterior sample, fixed seed) for variational models. Shape (n,)."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        labels = self._labels_for(X, y)
        scores = []
        for i, xb in self._enumerate(X):
            noise = SharedNoise(self.seed_, xb.device)  # same draws for every row: order-invariant
            scores.append(self.model_.score_samples(xb, _slice(labels, i, len(xb), xb.device), generator=noise))
        return torch.cat(scores).cpu().numpy().astype(np.float64)

    def score(self, X, y=None):
        """Mean of ``score_samples`` (so model selection works as with PCA)."""
        return float(np.mean(self.score_samples(X, y)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # models compute in float32
        return tags

    def _enumerate(self, X):
        return ((i * self._score_batch, xb) for i, xb in enumerate(self._batches(X)))

    # -- persistence ---------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the fitted estimator to one safetensors file (weights + JSON metadata, no pickle)."""
        check_is_fitted(self)
        state = {k: v.detach().cpu().contiguous() for k, v in self.model_.state_dict().items()}
        meta = {
            "aekit": json.dumps(model_metadata(self.model_)),
            "estimator": json.dumps({
                "class": type(self).__name__,
                "aekit_version": __version__,
                "params": _jsonable(self.get_params()),
                "fitted": _jsonable(self._fitted_state()),
            }),
        }
        path = Path(path)
        atomic_write_bytes(path, st_save(state, metadata=meta))
        return path

    def _fitted_state(self) -> dict[str, Any]:
        return {
            "n_features_in_": self.n_features_in_,
            "input_shape_": list(self.input_shape_),
            "seed_": self.seed_,
            "history_": self.history_,
            "mean_": None if self.mean_ is None else self.mean_.tolist(),
            "scale_": None if self.scale_ is None else self.scale_.tolist(),
            **({"feature_names_in_": list(self.feature_names_in_)} if hasattr(self, "feature_names_in_") else {}),
        }

    def _set_fitted_state(self, d: dict[str, Any]) -> None:
        self.n_features_in_ = int(d["n_features_in_"])
        self.input_shape_ = tuple(d["input_shape_"])
        self.seed_ = int(d["seed_"])
        self.history_ = d["history_"]
        self.mean_ = None if d.get("mean_") is None else np.asarray(d["mean_"], dtype=np.float32)
        self.scale_ = None if d.get("scale_") is None else np.asarray(d["scale_"], dtype=np.float32)
        if "feature_names_in_" in d:
            self.feature_names_in_ = np.asarray(d["feature_names_in_"], dtype=object)


def _seed(random_state) -> int:
    """An int seed from random_state (None draws one from numpy's global RNG, as scikit-learn does)."""
    if random_state is None:
        return int(np.random.randint(2**31 - 1))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31 - 1))
    if isinstance(random_state, (bool, float)) or not isinstance(random_state, (int, np.integer)):
        raise ValueError(f"random_state must be None, an int or a numpy RandomState, got {random_state!r}")
    return int(random_state)


def _slice(labels, start, n, device):
    return None if labels is None else labels[start : start + n].to(device)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def load(path):
    """Load an estimator saved with ``save`` (a ``.safetensors`` file, or a run folder holding
    ``model.safetensors``). Reads only tensors and JSON: nothing is unpickled or executed."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.safetensors"
    tensors, meta = read_safetensors(path)
    try:
        info = json.loads(meta["estimator"])
        cls = ESTIMATORS[info["class"]]
    except (KeyError, json.JSONDecodeError, TypeError):
        raise ValueError(f"{path} is not an aekit estimator file (no estimator metadata)") from None
    check_version(info.get("aekit_version"), path)
    params = info["params"]
    for k in ("hidden_dims", "lower_latent_dims", "layer_weights"):
        if isinstance(params.get(k), list):
            params[k] = tuple(params[k])
    est = cls(**params)
    est._set_fitted_state(info["fitted"])
    est.model_ = model_from_file(tensors, meta, path)
    est.model_.to(resolve_device(est.device) if est.device != "auto" else "cpu").eval()
    return est


# ---------------------------------------------------------------------------------------
# The estimators: family name and family hyperparameters.
# ---------------------------------------------------------------------------------------


class AutoEncoder(BaseAutoencoderEstimator):
    """Undercomplete / stacked autoencoder.

    Parameters
    ----------
    latent_dim : int, default=16
        Size of the code.
    hidden_dims : tuple of int, default=(256, 128)
        Encoder layer sizes (the decoder mirrors them); ``()`` for none. For
        ``architecture="conv"``, the channels of the stride-2 convolution stages.
    activation : str or None, default="relu"
        Hidden activation; ``None`` gives a linear model (with ``hidden_dims=()`` it recovers
        the PCA subspace).
    architecture : {"mlp", "conv"}, default="mlp"
    loss : {"mse", "bce"}, default="mse"
        "bce" needs X in [0, 1].
    epochs, batch_size, lr, weight_decay : training settings (AdamW).
    lr_schedule : {"constant", "cosine"}, default="constant"
        "cosine" anneals the learning rate from lr to 0 over the epochs, step by step.
    validation_fraction : float, default=0.1
        Fraction of X held out to report a validation loss (0 for none).
    early_stopping, patience : stop when the validation loss stalls; keep the best weights.
    grad_clip : float or None
    on_nonfinite : {"raise", "rollback"}, default="raise"
        What a NaN/infinite loss does: stop with NonFiniteLossError naming the part, or roll back
        to the start of the epoch with half the learning rate and retry.
    standardize : {"auto", True, False}, default="auto"
        Standardize each feature (mean 0, std 1) inside the estimator; "auto" does so when X
        does not lie in [0, 1]. Outputs (reconstructions, samples) are in X's units; scores are
        in standardized units.
    random_state : int or None
        Seeds initialisation, shuffling and noise: the same value gives the same model.
    device : {"auto", "cpu", "cuda"}, default="auto"
    verbose : bool, default=False
        Show a progress bar.

    Examples
    --------
    >>> from aekit import AutoEncoder
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> ae = AutoEncoder(latent_dim=8, epochs=5, random_state=0).fit(X)
    >>> ae.transform(X[:3]).shape
    (3, 8)
    """

    _model = "ae"
    _params = {"loss": "mse"}


class DenoisingAutoEncoder(BaseAutoencoderEstimator):
    """Denoising autoencoder: trained to map corrupted X back to clean X.

    Parameters are AutoEncoder's plus ``noise`` ({"gaussian", "masking", "salt_and_pepper"},
    default "gaussian") and ``noise_level`` (std for gaussian, fraction of entries otherwise,
    default 0.2). Corruption is applied only in training; ``reconstruct`` denoises.

    Examples
    --------
    >>> from aekit import DenoisingAutoEncoder
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> dae = DenoisingAutoEncoder(noise="masking", noise_level=0.3, epochs=5, random_state=0).fit(X)
    >>> dae.reconstruct(X[:2]).shape
    (2, 64)
    """

    _model = "denoising"
    _params = {"loss": "mse", "noise": "gaussian", "noise_level": 0.2}


class SparseAutoEncoder(BaseAutoencoderEstimator):
    """Sparse autoencoder.

    Parameters are AutoEncoder's plus ``sparsity`` ("l1": sparsity_weight * |code|_1;
    "kl": KL(target_rate || mean activation) per layer; "topk": keep the k largest code units),
    ``sparsity_weight`` (default 0.01), ``target_rate`` (0.05, or one per layer),
    ``layer_weights`` (None: the code only; else one weight per hidden layer and the code),
    ``divergence`` ("kl", "l1" or "l2" for sparsity="kl") and ``k`` (5).

    Examples
    --------
    >>> from aekit import SparseAutoEncoder
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> sae = SparseAutoEncoder(sparsity="topk", k=3, epochs=5, random_state=0).fit(X)
    >>> int((sae.transform(X[:1]) != 0).sum())
    3
    """

    _model = "sparse"
    _params = {"loss": "mse", "sparsity": "l1", "sparsity_weight": 1e-2, "target_rate": 0.05,
               "layer_weights": None, "divergence": "kl", "k": 5}


class ContractiveAutoEncoder(BaseAutoencoderEstimator):
    """Contractive autoencoder: adds contractive_weight * ||d code / d x||_F^2 (exact).

    Parameters are AutoEncoder's plus ``contractive_weight`` (default 0.01).

    Examples
    --------
    >>> from aekit import ContractiveAutoEncoder
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> cae = ContractiveAutoEncoder(epochs=3, random_state=0).fit(X)
    >>> "contractive" in cae.history_[-1]
    True
    """

    _model = "contractive"
    _params = {"loss": "mse", "contractive_weight": 1e-2}


class _Generative:
    """``sample`` for the estimators whose model can generate (VAEs, VQ-VAE)."""

    def sample(self, n_samples: int = 1, random_state=None, y=None):
        """Draw ``n_samples`` from the model (decoder means of prior draws), in X's layout."""
        check_is_fitted(self)
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
        device = next(self.model_.parameters()).device
        gen = torch.Generator(device=device)
        gen.manual_seed(_seed(random_state))
        return self._from_model(self.model_.sample(int(n_samples), self._sample_labels(n_samples, y), generator=gen))

    def _sample_labels(self, n, y):
        return None


class VAE(_Generative, BaseAutoencoderEstimator):
    """Variational autoencoder (loss = -ELBO in nats per sample).

    Parameters are AutoEncoder's (without ``loss``) plus:

    likelihood : {"auto", "bernoulli", "gaussian"}, default="auto"
        "auto" picks Bernoulli when every value of X lies in [0, 1], else a Gaussian with a
        learned variance.
    beta : float, default=1.0  (beta-VAE)
    kl_warmup_epochs : float, default=0  (KL weight ramps from 0 to beta over these epochs)
    kl_schedule : {"linear", "cyclical"}; kl_cycle_epochs : cycle length for "cyclical".
    free_bits : float, default=0  (nats per latent dimension not penalised)
    min_variance : float, default=0  (floor on the posterior variance)
    batch_norm : bool, default=False  (batch normalisation before every hidden activation)

    Examples
    --------
    >>> from aekit import VAE
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> vae = VAE(latent_dim=2, epochs=5, random_state=0).fit(X)
    >>> vae.transform(X[:4]).shape, vae.sample(3, random_state=0).shape
    ((4, 2), (3, 64))
    """

    _model = "vae"
    _params = dict(_VAE_PARAMS)

    def _model_config(self, X):
        cfg = super()._model_config(X)
        lik = self.likelihood
        if lik == "auto":
            lik = "bernoulli" if float(np.min(X)) >= 0 and float(np.max(X)) <= 1 else "gaussian"
        elif lik == "bernoulli":
            self._check_range(X, "likelihood='bernoulli'")
        if lik == "bernoulli":
            self.mean_ = self.scale_ = None  # Bernoulli models the raw [0, 1] values
        cfg["likelihood"] = lik
        return cfg


class ConditionalVAE(VAE):
    """Conditional VAE: labels y (any hashable class values) condition encoder and decoder.

    ``fit(X, y)`` needs y. ``transform``/``reconstruct``/``score_samples`` use y when given;
    without it, each sample's label is inferred as the class with the highest ELBO.
    ``sample(n, y=label)`` generates from one class (or n labels).

    Examples
    --------
    >>> from aekit import ConditionalVAE
    >>> from aekit.datasets import load_dataset
    >>> d = load_dataset("digits")
    >>> cvae = ConditionalVAE(epochs=3, random_state=0).fit(d.X.reshape(-1, 64), d.y)
    >>> cvae.sample(2, y=7, random_state=0).shape
    (2, 64)
    """

    _model = "cvae"
    _params = dict(_VAE_PARAMS)

    def _model_config(self, X):
        return {**super()._model_config(X), "n_classes": max(2, len(self.classes_))}

    def _encode_labels(self, y, X):
        if y is None:
            raise ValueError("ConditionalVAE.fit needs labels y (one per sample of X)")
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"y must be 1-D with one label per sample: got shape {y.shape} for {len(X)} samples")
        self.classes_, codes = np.unique(y, return_inverse=True)
        return torch.as_tensor(codes, dtype=torch.long)

    def _label_codes(self, y, n):
        y = np.asarray(y)
        y = np.full(n, y.item()) if y.ndim == 0 else y
        if y.ndim != 1 or len(y) != n:
            raise ValueError(f"y must be one label or {n} labels, got shape {y.shape}")
        unknown = ~np.isin(y, self.classes_)
        if unknown.any():
            raise ValueError(f"unknown class label(s) {np.unique(y[unknown])[:5].tolist()}; known: {self.classes_.tolist()}")
        return torch.as_tensor(np.searchsorted(self.classes_, y), dtype=torch.long)

    def _labels_for(self, X, y):
        return self._label_codes(y, len(X)) if y is not None else self._infer(X)

    def _decode_labels(self, Z, y):
        if y is None:
            raise ValueError("decoding with a conditional VAE needs the labels y")
        return self._label_codes(y, len(Z))

    def _sample_labels(self, n, y):
        if y is None:
            raise ValueError("ConditionalVAE.sample needs y: the class to generate (one label or n of them)")
        return self._label_codes(y, n)

    _infer_samples = 4  # posterior samples averaged per class when inferring labels

    @torch.no_grad()
    def _infer(self, X):
        """Each sample's most likely class: argmax over classes of its ELBO under that class,
        averaged over a few posterior samples. The noise is shared by every row and every class
        (common random numbers), so a row's label depends on nothing but the row."""
        best = []
        k = self.model_.config.n_classes
        for _, xb in self._enumerate(X):
            elbos = []
            for c in range(k):
                yc = torch.full((len(xb),), c, dtype=torch.long, device=xb.device)
                noise = SharedNoise(self.seed_, xb.device)
                elbos.append(sum(self.model_.elbo(xb, yc, generator=noise) for _ in range(self._infer_samples)))
            best.append(torch.stack(elbos, 1).argmax(1).cpu())
        return torch.cat(best)

    def predict(self, X):
        """The class whose conditional model explains each sample best (highest ELBO)."""
        check_is_fitted(self)
        return self.classes_[self._infer(self._validate_X(X, reset=False)).numpy()]

    def _fitted_state(self):
        return {**super()._fitted_state(), "classes_": self.classes_.tolist()}

    def _set_fitted_state(self, d):
        super()._set_fitted_state(d)
        self.classes_ = np.asarray(d["classes_"])


class HierarchicalVAE(VAE):
    """Hierarchical (ladder) VAE with stochastic layers ``lower_latent_dims`` below a top layer of
    size ``latent_dim``; KL is reported per level (kl_1, kl_2, ...). Other parameters as VAE;
    ``free_bits`` defaults to 0.25 nats per dimension to keep the lower layers in use.

    Examples
    --------
    >>> from aekit import HierarchicalVAE
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> hvae = HierarchicalVAE(latent_dim=4, lower_latent_dims=(16,), epochs=3, random_state=0).fit(X)
    >>> sorted(k for k in hvae.history_[-1] if k.startswith("kl_"))
    ['kl_1', 'kl_2']
    """

    _model = "hvae"
    _params = {**_VAE_PARAMS, "lower_latent_dims": (32,), "free_bits": 0.25}


class IWAE(VAE):
    """Importance-weighted autoencoder (Burda et al. 2016): a VAE trained on the k-sample
    importance-weighted bound instead of the ELBO. Parameters as VAE (``free_bits`` must stay 0),
    plus ``k`` (default 5), the importance samples per data point in the training bound; a step
    costs about k decoder passes per sample.

    Examples
    --------
    >>> from aekit import IWAE
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> iwae = IWAE(k=5, latent_dim=4, epochs=3, random_state=0).fit(X)
    >>> sorted(k for k in iwae.history_[-1] if k in ("iwae", "kl", "recon"))
    ['iwae', 'kl', 'recon']
    """

    _model = "iwae"
    _params = {**_VAE_PARAMS, "k": 5}


class VQVAE(_Generative, BaseAutoencoderEstimator):
    """Vector-quantised VAE: ``latent_dim / embedding_dim`` code vectors per sample, each one of
    ``codebook_size`` learned entries (EMA updates by default). ``sample`` draws code indices from
    a per-position categorical prior fitted after training.

    Examples
    --------
    >>> from aekit import VQVAE
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> vq = VQVAE(codebook_size=32, epochs=3, random_state=0).fit(X)
    >>> vq.sample(2, random_state=0).shape
    (2, 64)
    """

    _model = "vqvae"
    _params = {"loss": "mse", "codebook_size": 128, "embedding_dim": 4, "commitment_weight": 0.25, "ema": True}
