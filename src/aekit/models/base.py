"""What every model shares: the config base, the output type, and the Autoencoder base class."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .. import losses
from .._config import option

__all__ = [
    "AEOutput", "Autoencoder", "CAPABILITIES", "ModelConfig", "SharedNoise", "check_choice", "check_nonneg",
    "check_positive_int", "decode_prior", "fit_defaults", "one_hot", "option", "reconstruction", "standard_normal",
    "to_data_space",
    "torch_generator",
]

RECON_LOSSES = ("mse", "bce", "gaussian")
CAPABILITIES = ("variational", "generative", "conditional", "quantised", "hierarchical", "adversarial",
                "handles_missing")


@dataclass
class ModelConfig:
    """Settings shared by every family. ``input_shape`` is one sample's shape: (D,) or (C, H, W).

    For ``architecture="conv"``, ``hidden_dims`` are the channels of the stride-2 stages.
    """

    input_shape: tuple[int, ...]
    latent_dim: int = option(16, "size of the code")
    hidden_dims: tuple[int, ...] = option(
        (256, 128), "encoder layer sizes, the decoder mirrors them (conv: channels of the stride-2 stages)"
    )
    activation: str | None = option("relu", "hidden activation (relu, leaky_relu, elu, gelu, silu, tanh, sigmoid, softplus; None = linear)")
    architecture: str = option("mlp", "network type: mlp, or conv for images")

    # Values that files written before a field existed imply for it (``from_dict`` fills them in).
    FILE_DEFAULTS: ClassVar[dict[str, Any]] = {}
    # Training settings (``aekit.estimators.FitSettings`` fields) whose default this family's
    # estimator changes, e.g. ``{"early_stopping": True}``. A family's own: not inherited by the
    # Configs built on it (read with :func:`fit_defaults`).
    FIT_DEFAULTS: ClassVar[dict[str, Any]] = {}

    def __post_init__(self) -> None:
        self.input_shape = _int_tuple("input_shape", self.input_shape)
        self.hidden_dims = _int_tuple("hidden_dims", self.hidden_dims)
        if not self.input_shape or min(self.input_shape) < 1:
            raise ValueError(f"input_shape must be a non-empty tuple of positive sizes, got {self.input_shape}")
        check_positive_int("latent_dim", self.latent_dim)
        for h in self.hidden_dims:
            check_positive_int("each of hidden_dims", h)
        if self.architecture not in ("mlp", "conv"):
            raise ValueError(f"architecture must be 'mlp' or 'conv', got {self.architecture!r}")
        if self.architecture == "conv" and not self.hidden_dims:
            raise ValueError("architecture='conv' needs at least one entry in hidden_dims (channels per stage)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def for_data(cls, settings: dict[str, Any], *, unit_interval: bool) -> dict[str, Any]:
        """``settings`` with the data-dependent choices made (an estimator's ``"auto"`` values),
        given whether every value of the training data lies in [0, 1]. Families override it."""
        return settings

    def probability_setting(self) -> str | None:
        """The setting under which this model reads the data as probabilities in [0, 1] (e.g.
        ``"loss='bce'"``), so it needs data in [0, 1] as given, never standardized; None if none."""
        return None

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown settings for {cls.__name__}: {sorted(unknown)}")
        return cls(**{**cls.FILE_DEFAULTS, **d})


def fit_defaults(config_cls: type[ModelConfig]) -> dict[str, Any]:
    """The training-setting defaults that ``config_cls`` itself declares in ``FIT_DEFAULTS``
    (those of the Configs it subclasses do not carry over: a family built on the AE, say,
    trains by the usual defaults unless it declares otherwise)."""
    return dict(vars(config_cls).get("FIT_DEFAULTS", {}))


def _int_tuple(name: str, value: Any) -> tuple[int, ...]:
    """A tuple of ints from a tuple/list of integral numbers, with a clear error otherwise."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (value,)
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(f"{name} must be a tuple of integers such as (256, 128), got {value!r}")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v:
            raise ValueError(f"{name} must be a tuple of integers such as (256, 128), got {value!r}")
        out.append(int(v))
    return tuple(out)


def check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def check_nonneg(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and value >= 0):
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")


@dataclass
class AEOutput:
    """What ``forward`` returns.

    loss: scalar to minimise (the batch mean of the weighted parts).
    parts: named per-sample terms, each (B,), unweighted (``recon``, ``kl``, ``sparsity``...).
    x_hat: reconstruction in data space (B, *input_shape) (probabilities for Bernoulli/BCE).
    z: the code (B, latent_dim).
    stats: batch-level scalars worth logging (codebook perplexity, ...).
    """

    loss: torch.Tensor
    parts: dict[str, torch.Tensor]
    x_hat: torch.Tensor
    z: torch.Tensor
    stats: dict[str, torch.Tensor] = field(default_factory=dict)


def reconstruction_loss(kind: str, out: torch.Tensor, x: torch.Tensor, logvar: torch.Tensor | None = None,
                        weight: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample reconstruction loss (B,) from a decoder output (B, ...).

    kind ``"mse"``: out is the mean; ``"bce"``: out are Bernoulli logits; ``"gaussian"``: out is the
    mean of N(out, exp(logvar)). ``weight`` (like x) weighs each entry's term (0 leaves it out).
    """
    if kind == "mse":
        return losses.mse(out, x, weight)
    if kind == "bce":
        return losses.bce_with_logits(out, x, weight)
    if kind == "gaussian":
        return losses.gaussian_nll(x, out, logvar, weight)
    raise ValueError(f"unknown reconstruction loss {kind!r}; use one of {RECON_LOSSES}")


def reconstruction(kind: str, out: torch.Tensor, x: torch.Tensor, logvar: torch.Tensor | None = None,
                   weight: torch.Tensor | None = None):
    """Per-sample reconstruction loss and data-space reconstruction from a decoder output:
    (loss (B,), x_hat (B, ...)); see :func:`reconstruction_loss`."""
    return reconstruction_loss(kind, out, x, logvar, weight), to_data_space(kind, out)


def to_data_space(kind: str, out: torch.Tensor) -> torch.Tensor:
    """Decoder output -> data space (sigmoid for Bernoulli logits, identity otherwise)."""
    return torch.sigmoid(out) if kind == "bce" else out


class SharedNoise:
    """A noise source that gives every row of a batch the same draws (fresh per batch), so a
    row's stochastic result (e.g. its ELBO estimate) does not depend on the other rows or on
    its position in the batch. Pass it as ``generator`` to a model's forward."""

    def __init__(self, seed: int, device: torch.device | str = "cpu"):
        self.generator = torch.Generator(device=device).manual_seed(seed)


def standard_normal(like: torch.Tensor, generator=None, *, batch_dim: int = 0) -> torch.Tensor:
    """N(0, 1) noise shaped like ``like`` (..., B, ...), from a torch.Generator or a SharedNoise;
    with a SharedNoise, every row along ``batch_dim`` gets the same draws (e.g. ``batch_dim=1`` for
    (S, B, K): the S samples differ, the rows B share them)."""
    if isinstance(generator, SharedNoise):
        shape = list(like.shape)
        shape[batch_dim] = 1
        row = torch.randn(shape, generator=generator.generator, device=like.device, dtype=like.dtype)
        return row.expand_as(like)
    return torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)


def torch_generator(generator) -> torch.Generator | None:
    """The torch.Generator behind ``generator`` (a SharedNoise's own, or the one given), for draws
    that are not per row (prior samples for a batch-level divergence, a permutation of the batch)."""
    return generator.generator if isinstance(generator, SharedNoise) else generator


@torch.no_grad()
def decode_prior(model, n: int, generator: torch.Generator | None = None, y=None) -> torch.Tensor:
    """``model.decode`` of n draws from N(0, I_latent_dim): (n, *input_shape), in data space."""
    device = next(model.parameters()).device
    return model.decode(torch.randn((n, model.config.latent_dim), generator=generator, device=device), y)


def one_hot(y: torch.Tensor | None, n_classes: int) -> torch.Tensor:
    """Integer labels (B,) -> float one-hot (B, n_classes), with a clear error for bad labels."""
    if y is None:
        raise ValueError("this model is conditional: pass labels y (integers in [0, n_classes))")
    y = torch.as_tensor(y)
    if y.ndim != 1 or y.dtype.is_floating_point and not torch.equal(y, y.round()):
        raise ValueError("labels y must be a 1-D array of integer class indices")
    y = y.long()
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got values in [{int(y.min())}, {int(y.max())}]")
    return F.one_hot(y, n_classes).float()


class Autoencoder(nn.Module):
    """Base of every family.

    Subclasses set ``Config`` and implement ``encode``, ``decode`` and ``forward``. Hooks the
    training loop calls, all optional: ``on_train_start(X)`` once before the first step (a
    data-dependent initialisation, e.g. the AE's PCA base); ``param_groups()`` once, to build the
    optimizer; ``on_train_progress(epochs_done: float)`` before each step; ``on_train_end(X)``
    after training (e.g. to fit a prior over codes).
    """

    Config: ClassVar[type[ModelConfig]] = ModelConfig
    name: ClassVar[str] = "base"
    # Capabilities, declared once per family; callers ask these, never the family's name.
    variational: ClassVar[bool] = False  # has an ELBO: elbo(), log_weight(), posterior()
    generative: ClassVar[bool] = False  # sample(n) draws new data
    conditional: ClassVar[bool] = False  # needs class labels y in every call
    quantised: ClassVar[bool] = False  # discrete codes: encode_indices(), decode_indices()
    hierarchical: ClassVar[bool] = False  # several stochastic levels, a KL per level (kl_1, kl_2, ...)
    handles_missing: ClassVar[bool] = False  # NaN entries of x are missing values: seen as a mask, left out of the loss
    # A second player (a discriminator) trains beside the model, in a parameter group of its own:
    # its loss is the part "discriminator", added to the loss in training only; the model's
    # adversarial term is a game value against the current discriminator, which need not fall.
    adversarial: ClassVar[bool] = False

    def __init__(self, config: ModelConfig):
        super().__init__()
        if not isinstance(config, self.Config):
            raise TypeError(f"{type(self).__name__} needs a {self.Config.__name__}, got {type(config).__name__}")
        self.config = config

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Deterministic reconstruction: decode(encode(x)), in data space."""
        return self.decode(self.encode(x, y), y)

    @classmethod
    def capabilities(cls) -> dict[str, bool]:
        """The declared capability flags, by name."""
        return {k: bool(getattr(cls, k)) for k in CAPABILITIES}

    def score_samples(self, x: torch.Tensor, y: torch.Tensor | None = None, *, generator=None) -> torch.Tensor:
        """Per-sample score, higher = more typical, (B,): minus the reconstruction loss here;
        variational families return their ELBO."""
        return -self(x, y, generator=generator).parts["recon"]

    def on_train_start(self, X: torch.Tensor, y: torch.Tensor | None = None) -> None:  # noqa: B027
        """Called once by the training loop before its first step, with the training rows
        (n, *input_shape) (a sample of them for a memory-mapped data set) and their labels."""

    def param_groups(self) -> list[dict[str, Any]]:
        """The optimizer's parameter groups, as ``torch.optim`` takes them: dicts with ``"params"``
        and any optimizer settings that differ from the training loop's (``lr``, ``betas``,
        ``weight_decay``). One group of every parameter here; a family with a second player (a
        discriminator, see ``models/adversarial.py``) gives that player a group of its own. The
        groups must hold every parameter exactly once."""
        return [{"params": list(self.parameters())}]

    def on_train_progress(self, epochs_done: float) -> None:  # noqa: B027 (optional hook)
        pass

    def on_train_end(self, X: torch.Tensor, y: torch.Tensor | None = None) -> None:  # noqa: B027
        pass
