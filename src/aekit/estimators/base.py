"""The scikit-learn face over the models and the training loop, written once.

An estimator's parameters are derived, never listed by hand: the model family's Config fields
(defaults, types and help, as the family declares them with ``option``) plus :class:`FitSettings`.
Its methods follow from the family's declared capabilities: ``sample`` for generative families,
label handling and ``predict`` for conditional ones. Any registered family has an estimator:
the named classes in :mod:`aekit.estimators.families`, or one built on demand by
:func:`estimator_class`.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from safetensors.torch import save as st_save
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .._config import Param, option, params_of
from .._registry import get_model_class, model_names
from .._utils import atomic_write_bytes, resolve_device, seeded
from .._version import __version__
from ..checkpoint import check_version, model_from_file, model_metadata, read_safetensors
from ..export import DEFAULT_OPSET, export_onnx
from ..models.base import SharedNoise, fit_defaults
from ..train import train

__all__ = [
    "BaseAutoencoderEstimator",
    "FitSettings",
    "estimator_class",
    "estimator_classes",
    "estimator_params",
    "load",
]


@dataclass
class FitSettings:
    """Settings every estimator has besides its model family's: how it trains and handles data."""

    epochs: int = option(100, "passes over the training data")
    batch_size: int = option(64, "samples per gradient step")
    lr: float = option(1e-3, "AdamW learning rate")
    lr_schedule: str = option("constant", "learning-rate schedule: constant, or cosine (anneals lr to 0 over the epochs, step by step)")
    weight_decay: float = option(0.0, "AdamW weight decay")
    validation_fraction: float = option(0.1, "fraction of X held out to report a validation loss (0 for none)")
    early_stopping: bool = option(False, "stop when the validation loss stalls for `patience` epochs; keep the best weights")
    patience: int = option(10, "epochs without a better validation loss before early stopping")
    grad_clip: float | None = option(None, "max global gradient norm (None: no clipping)")
    on_nonfinite: str = option(
        "raise", "a NaN/inf loss: raise (NonFiniteLossError naming the part) or rollback (retry the epoch at half the lr)"
    )
    standardize: str | bool = option(
        "auto", "standardize each feature inside the estimator (outputs stay in X's units); auto does so when X "
        "does not lie in [0, 1]"
    )
    random_state: int | None = option(None, "seeds initialisation, shuffling and noise: the same value gives the same model")
    device: str = option("auto", "where to train: auto, cpu or cuda")
    threads: int | None = option(
        None, "CPU threads for torch while fitting (None: aekit's choice: 1 for small models, else the cores not "
        "already busy; AEKIT_THREADS overrides)"
    )
    verbose: bool = option(False, "show a progress bar")


FIT_PARAMS = params_of(FitSettings)
# Of those, the ones that go to the training loop (the rest are the estimator's own).
TRAIN_PARAMS = ("epochs", "batch_size", "lr", "lr_schedule", "weight_decay", "validation_fraction", "early_stopping", "patience",
                "grad_clip", "on_nonfinite", "threads")


def estimator_params(family: str) -> dict[str, Param]:
    """Every parameter of ``family``'s estimator: its model Config's settings, then the fit
    settings, with the defaults the family's Config changes (``FIT_DEFAULTS``) applied."""
    config = get_model_class(family).Config
    overrides = fit_defaults(config)
    unknown = set(overrides) - set(FIT_PARAMS)
    if unknown:
        raise ValueError(f"{config.__name__}.FIT_DEFAULTS names {sorted(unknown)}, which are not training settings "
                         f"(those are: {', '.join(FIT_PARAMS)})")
    fit = {k: dataclasses.replace(p, default=overrides[k]) if k in overrides else p for k, p in FIT_PARAMS.items()}
    return {**params_of(config, estimator=True, skip=("input_shape",)), **fit}


def _make_init(params: dict[str, Param]):
    """An ``__init__`` that only stores hyperparameters, with an explicit signature (the one
    scikit-learn's get_params reads)."""

    def __init__(self, **kwargs):
        unknown = set(kwargs) - set(params)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected parameter(s) {sorted(unknown)}")
        for name, p in params.items():
            setattr(self, name, kwargs.get(name, p.default))

    __init__.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=p.default) for n, p in params.items()]
    )
    return __init__


def _parameters_doc(params: dict[str, Param]) -> str:
    """A numpydoc Parameters section from the declared help."""
    lines = ["Parameters", "----------"]
    for p in params.values():
        lines.append(f"{p.name} : {_kind_words(p.kinds)}, default={p.default!r}")
        lines.append(f"    {p.help[:1].upper()}{p.help[1:]}." if p.help else "")
    return "\n".join(line for line in lines if line)


def _kind_words(kinds: tuple[str, ...]) -> str:
    words = {"none": "None", "tuple:int": "tuple of int", "tuple:float": "tuple of float", "tuple:str": "tuple of str"}
    return " or ".join(words.get(k, k) for k in kinds)


def _with_parameters(doc: str | None, params: dict[str, Param]) -> str:
    """A class docstring with the generated Parameters section placed before its Examples."""
    doc = inspect.cleandoc(doc or "")
    head, sep, examples = doc.partition("\nExamples\n")
    return f"{head.rstrip()}\n\n{_parameters_doc(params)}\n" + (f"\nExamples\n{examples}" if sep else "")


class BaseAutoencoderEstimator(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Shared behaviour; a subclass names its model family in ``_model``.

    Fitted attributes: ``model_`` (the torch module), ``history_`` (per-epoch dicts),
    ``n_features_in_``, ``input_shape_`` (one sample's shape as given), ``seed_``, ``mean_`` and
    ``scale_`` (the standardization, or None).
    """

    _model: ClassVar[str]
    _score_batch = 1024

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if "_model" in cls.__dict__:
            params = estimator_params(cls._model)
            cls.__init__ = _make_init(params)
            cls.__doc__ = _with_parameters(cls.__doc__, params)
            if cls.__dict__.get("_named", True):
                _NAMED.setdefault(cls._model, cls)

    def __reduce_ex__(self, protocol):
        if type(self).__dict__.get("_named", True):
            return super().__reduce_ex__(protocol)
        # a class built on demand is not importable by name: pickle it as "the estimator of this family"
        return _new_estimator, (self._model,), self.__getstate__()

    @classmethod
    def capabilities(cls) -> dict[str, bool]:
        """What the model family can do (``variational``, ``generative``, ``conditional``,
        ``quantised``, ``hierarchical``, ``handles_missing``), as its model class declares it."""
        return get_model_class(cls._model).capabilities()

    # -- input handling ------------------------------------------------------------
    def _allows_nan(self) -> bool:
        """Whether NaNs in X are accepted, as missing values (families that declare ``handles_missing``)."""
        return self.capabilities()["handles_missing"]

    def _validate_X(self, X, reset: bool) -> np.ndarray:
        """Validate X and return it as float32 with one sample per row in its original layout."""
        finite = "allow-nan" if self._allows_nan() else True
        if isinstance(X, np.memmap) and X.dtype == np.float32 and not reset:
            arr = X  # streamed batch by batch; finiteness is checked per batch
        elif np.ndim(X) == 2 if hasattr(X, "ndim") else True:
            arr = validate_data(self, X, reset=reset, dtype=np.float32, ensure_all_finite=finite,
                                ensure_min_samples=2 if reset else 1)
        else:
            arr = check_array(X, allow_nd=True, dtype=np.float32, ensure_all_finite=finite,
                              ensure_min_samples=2 if reset else 1)
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

    def _fit_scaling(self, X: np.ndarray, allowed: bool) -> None:
        """Per-feature mean_ and scale_ when standardizing (else None). "auto" standardizes data
        that does not already lie in [0, 1], so unscaled tabular data trains out of the box;
        ``allowed`` is False for a model that reads the data as probabilities."""
        if self.standardize not in ("auto", True, False):
            raise ValueError(f"standardize must be 'auto', True or False, got {self.standardize!r}")
        on = allowed and (self.standardize is True or (self.standardize == "auto" and not _in_unit_interval(X)))
        if not on:
            self.mean_ = self.scale_ = None
            return
        if self._allows_nan():  # NaN = missing: statistics of the observed entries
            seen = ~np.isnan(X)
            n = np.maximum(seen.sum(axis=0), 1)
            mean = np.where(seen, X, 0).sum(axis=0, dtype=np.float64) / n
            std = np.sqrt((np.where(seen, X - mean, 0) ** 2).sum(axis=0, dtype=np.float64) / n)
        else:
            mean, std = X.mean(axis=0, dtype=np.float64), X.std(axis=0, dtype=np.float64)
        self.mean_ = mean.astype(np.float32)
        self.scale_ = np.where(std > 1e-12, std, 1.0).astype(np.float32)

    def to_model_input(self, X) -> torch.Tensor:
        """X (validated against the fitted shape) as the model sees it: a float32 tensor in the
        model's layout and, when the estimator standardizes, in standardized units."""
        check_is_fitted(self)
        return self._to_model(self._validate_X(X, reset=False))

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
            bad = np.isinf(chunk) if self._allows_nan() else ~np.isfinite(chunk)
            if bad.any():
                raise ValueError(f"X contains NaN or infinity (in rows {start}..{start + len(chunk) - 1})")
            yield self._to_model(chunk).to(device)

    def _enumerate(self, X):
        return ((i * self._score_batch, xb) for i, xb in enumerate(self._batches(X)))

    # -- the model's settings ------------------------------------------------------------
    def _model_config(self, X: np.ndarray):
        """The family's Config for this fit: the estimator's parameters that the Config has, the
        data-dependent choices made, and the data's shape."""
        cls = get_model_class(self._model).Config
        names = set(params_of(cls, estimator=True, skip=("input_shape",)))
        settings = {k: v for k, v in self.get_params().items() if k in names}
        settings = cls.for_data(settings, unit_interval=_in_unit_interval(X))
        settings.update(self._data_settings(), input_shape=self._model_shape())
        config = cls(**settings)
        needs = config.probability_setting()
        if needs is not None and not _in_unit_interval(X):
            lo, hi = _data_range(X)
            raise ValueError(
                f"{needs} needs data in [0, 1], but X spans [{lo:.3g}, {hi:.3g}]; rescale it "
                "(e.g. MinMaxScaler) or use loss='mse' / likelihood='gaussian'"
            )
        return config

    def _data_settings(self) -> dict[str, Any]:
        """Config settings taken from the data rather than the user (conditional families: classes)."""
        return {}

    # -- labels (conditional families override) ----------------------------------------
    def _fit_labels(self, y, X):
        return None

    def _labels_for(self, X, y):
        return None

    def _decode_labels(self, Z, y):
        return None

    # -- scikit-learn API --------------------------------------------------------------
    def fit(self, X, y=None, *, checkpoint_dir=None, resume=False, callbacks=(), log_dir=None):
        """Train the autoencoder on X (n_samples, n_features) or images (n, h, w) / (n, c, h, w).

        ``checkpoint_dir``, ``resume`` and ``callbacks`` go to :func:`aekit.train.train`: write
        ``checkpoint.safetensors`` there every epoch, continue from it, call f(epoch, record).
        ``log_dir``: write TensorBoard event files there every epoch (losses, learning rate, KL
        per dimension, image grids; :class:`aekit.tensorboard.TensorBoardLogger`, which needs
        ``pip install aekit[tensorboard]``).
        """
        X = self._validate_X(X, reset=True)
        labels = self._fit_labels(y, X)
        self.seed_ = _seed(self.random_state)
        config = self._model_config(X)
        self._fit_scaling(X, allowed=config.probability_setting() is None)
        cls = get_model_class(self._model)
        with seeded(self.seed_):
            self.model_ = cls(config)
        p = self.get_params()
        logger = None if log_dir is None else self._tensorboard_logger(log_dir, X, labels)
        try:
            self.history_ = train(
                self.model_, self._to_model(X), labels,
                **{k: p[k] for k in TRAIN_PARAMS}, seed=self.seed_, device=resolve_device(self.device),
                progress=bool(self.verbose), checkpoint_dir=checkpoint_dir, resume=resume,
                callbacks=tuple(callbacks) + (() if logger is None else (logger,)),
            )
        finally:
            if logger is not None:
                logger.close()
        self.model_.eval()
        return self

    def _tensorboard_logger(self, log_dir, X: np.ndarray, labels):
        """A TensorBoard callback over a seeded random batch of the training data, shown in X's units."""
        from ..tensorboard import TensorBoardLogger

        n = min(len(X), TensorBoardLogger.batch_size)
        rows = np.sort(np.random.default_rng(self.seed_).choice(len(X), n, replace=False))
        shape = self._model_shape()
        shift = None if self.mean_ is None else torch.as_tensor(self.mean_).reshape(shape)
        scale = None if self.scale_ is None else torch.as_tensor(self.scale_).reshape(shape)

        def to_data(t: torch.Tensor) -> torch.Tensor:  # (B, *model_shape), standardized -> X's units
            return t if shift is None else t * scale.to(t.device) + shift.to(t.device)

        return TensorBoardLogger(log_dir, self.model_, self._to_model(X[rows]),
                                 None if labels is None else labels[rows], to_data=to_data, seed=self.seed_)

    def to_onnx(self, path, *, opset: int = DEFAULT_OPSET):
        """Write the encoder and the decoder as ONNX graphs, for inference without PyTorch.

        The encoder takes raw data as ``fit`` took it (the standardization is folded in) and
        gives the code ``transform`` gives; the decoder maps a code back to data, as
        ``inverse_transform`` does. Inputs and outputs by name (the batch axis is dynamic):

        - encoder: ``x`` (batch, *input_shape) float32 -> ``z`` (batch, latent_dim) float32;
          variational families also give ``z_logvar`` (the posterior's log-variance; ``z`` is
          its mean), quantised ones ``indices`` (batch, n_positions) int64.
        - decoder: ``z`` (batch, latent_dim) float32, or ``indices`` for quantised families ->
          ``x`` (batch, *input_shape) float32.
        - conditional families take a second input ``y`` (batch,) int64 in both graphs: the
          index of each label in ``classes_`` (also stored in the files' metadata).

        Needs ``pip install aekit[onnx]`` (onnx; onnxruntime to run the graphs).

        Parameters
        ----------
        path : str or Path
            A folder (created) for ``encoder.onnx`` and ``decoder.onnx``, or ``NAME.onnx`` for
            ``NAME.encoder.onnx`` and ``NAME.decoder.onnx``.
        opset : int, default=17
            ONNX opset version, 13 to 20.

        Returns
        -------
        OnnxFiles
            ``(encoder, decoder, opset)``: the paths written and the opset.

        Examples
        --------
        >>> import tempfile, numpy as np, onnxruntime as ort
        >>> from aekit import AutoEncoder, load_dataset
        >>> X = load_dataset("digits").X[:300]
        >>> ae = AutoEncoder(latent_dim=4, hidden_dims=(32,), epochs=2, random_state=0).fit(X)
        >>> files = ae.to_onnx(tempfile.mkdtemp())
        >>> encoder = ort.InferenceSession(str(files.encoder), providers=["CPUExecutionProvider"])
        >>> z = encoder.run(["z"], {"x": X[:5]})[0]
        >>> z.shape, bool(np.allclose(z, ae.transform(X[:5]), atol=1e-5))
        ((5, 4), True)
        """
        check_is_fitted(self)
        return export_onnx(self, path, opset=opset)

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

    def reconstruct(self, X, y=None):
        """decode(encode(X)): the model's reconstruction (a denoiser's clean estimate), same layout as X."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        labels = self._labels_for(X, y)
        with torch.no_grad():
            out = [self._from_model(self.model_.reconstruct(xb, _slice(labels, i, len(xb), xb.device)))
                   for i, xb in self._enumerate(X)]
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
        tags.input_tags.allow_nan = self._allows_nan()
        return tags

    # -- persistence ---------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the fitted estimator to one safetensors file (weights + JSON metadata, no pickle)."""
        check_is_fitted(self)
        state = {k: v.detach().cpu().contiguous() for k, v in self.model_.state_dict().items()}
        meta = {
            "aekit": json.dumps(model_metadata(self.model_)),
            "estimator": json.dumps({
                "class": type(self).__name__,
                "family": self._model,
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


class _Generative:
    """``sample`` for the estimators whose model family is generative."""

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


class _Conditional:
    """Labels for the estimators whose model family is conditional: ``fit(X, y)`` needs y (any
    hashable class values, kept in ``classes_``); ``transform``/``reconstruct``/``score_samples``
    use y when given and otherwise infer each sample's class (``predict``); decoding and sampling
    need y."""

    _infer_samples = 4  # posterior samples averaged per class when inferring labels

    def _data_settings(self):
        return {**super()._data_settings(), "n_classes": max(2, len(self.classes_))}

    def _fit_labels(self, y, X):
        if y is None:
            raise ValueError(f"{type(self).__name__}.fit needs labels y (one per sample of X)")
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
            raise ValueError(f"decoding with {type(self).__name__} needs the labels y")
        return self._label_codes(y, len(Z))

    def _sample_labels(self, n, y):
        if y is None:
            raise ValueError(f"{type(self).__name__}.sample needs y: the class to generate (one label or n of them)")
        return self._label_codes(y, n)

    @torch.no_grad()
    def _infer(self, X):
        """Each sample's most likely class: argmax over classes of the model's score under that
        class (the ELBO for variational models), averaged over a few noise draws. The noise is
        shared by every row and every class (common random numbers), so a row's label depends on
        nothing but the row."""
        best = []
        k = self.model_.config.n_classes
        for _, xb in self._enumerate(X):
            scores = []
            for c in range(k):
                yc = torch.full((len(xb),), c, dtype=torch.long, device=xb.device)
                noise = SharedNoise(self.seed_, xb.device)
                scores.append(sum(self.model_.score_samples(xb, yc, generator=noise) for _ in range(self._infer_samples)))
            best.append(torch.stack(scores, 1).argmax(1).cpu())
        return torch.cat(best)

    def predict(self, X):
        """The class whose conditional model explains each sample best: the highest ELBO (for a
        variational family; estimated from ``_infer_samples`` posterior draws per class, the same
        draws for every class), not the score at the posterior mean."""
        check_is_fitted(self)
        return self.classes_[self._infer(self._validate_X(X, reset=False)).numpy()]

    def _fitted_state(self):
        return {**super()._fitted_state(), "classes_": self.classes_.tolist()}

    def _set_fitted_state(self, d):
        super()._set_fitted_state(d)
        self.classes_ = np.asarray(d["classes_"])


def bases_for(family: str) -> tuple[type, ...]:
    """The estimator base classes a family's capabilities call for."""
    caps = get_model_class(family).capabilities()
    mixins = [m for flag, m in (("conditional", _Conditional), ("generative", _Generative)) if caps[flag]]
    return (*mixins, BaseAutoencoderEstimator)


_NAMED: dict[str, type] = {}  # family -> its hand-written estimator class (aekit.estimators.families)
_BUILT: dict[str, type] = {}  # family -> the estimator class built for a family with no named one


def estimator_class(family: str) -> type:
    """The estimator class of a registered model family (``"vae"`` -> ``aekit.VAE``); a family
    without a hand-written class (a plugin's, say) gets one built from its Config and capabilities."""
    model_cls = get_model_class(family)  # the one "unknown model" check
    from . import families  # noqa: F401  (defines the named classes)

    if family in _NAMED:
        return _NAMED[family]
    if family not in _BUILT:
        name = "".join(part.capitalize() for part in family.split("_")) + "Estimator"
        doc = (inspect.getdoc(model_cls) or f"Estimator for the {family!r} model family.").split("\n\n")[0]
        _BUILT[family] = type(name, bases_for(family), {"_model": family, "_named": False, "__doc__": doc,
                                                        "__module__": __name__})
    return _BUILT[family]


def _new_estimator(family: str):
    """An empty estimator of ``family``'s class, for unpickling (its state is set afterwards)."""
    cls = estimator_class(family)
    return cls.__new__(cls)


def estimator_classes() -> dict[str, type]:
    """Family name -> estimator class, for every registered family."""
    return {name: estimator_class(name) for name in model_names()}


def _data_range(X: np.ndarray) -> tuple[float, float]:
    """(min, max) of X's values, NaNs (missing values) left out; (0, 0) if every value is NaN."""
    lo, hi = float(np.min(X)), float(np.max(X))  # NaN if X holds any
    if not math.isnan(lo):
        return lo, hi
    if np.isnan(X).all():
        return 0.0, 0.0
    return float(np.nanmin(X)), float(np.nanmax(X))


def _in_unit_interval(X: np.ndarray) -> bool:
    lo, hi = _data_range(X)
    return lo >= 0 and hi <= 1


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
        family = info.get("family") or json.loads(meta["aekit"])["model"]
        params, fitted = info["params"], info["fitted"]
    except (KeyError, json.JSONDecodeError, TypeError):
        raise ValueError(f"{path} is not an aekit estimator file (no estimator metadata)") from None
    check_version(info.get("aekit_version"), path)
    if family not in model_names():
        raise ValueError(f"{path} holds a {family!r} model, a family this aekit does not have "
                         f"(known: {', '.join(model_names())}); is its plugin installed?")
    cls = estimator_class(family)
    spec = estimator_params(family)
    est = cls(**{k: spec[k].coerce(v) for k, v in params.items() if k in spec})
    est._set_fitted_state(fitted)
    est.model_ = model_from_file(tensors, meta, path)
    est.model_.to(resolve_device(est.device) if est.device != "auto" else "cpu").eval()
    return est
