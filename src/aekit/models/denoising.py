"""Denoising autoencoder (Vincent et al. 2008, 2010): corrupted input, clean target.

The noise level may be one number or a range ``(low, high)``: each training sample then draws its
own level, so one model learns to undo light and heavy noise alike. Salt-and-pepper noise sets
entries to their feature's extremes in the training data (kept with the model).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import corruption
from .._registry import register
from .ae import AE, AEConfig
from .base import check_choice, option


@dataclass
class DenoisingConfig(AEConfig):
    """noise: ``"gaussian"`` (noise_level = std), ``"masking"`` or ``"salt_and_pepper"``
    (noise_level = fraction of entries hit). noise_level: one level, or a range (low, high) from
    which each training sample draws its own."""

    noise: str = option("gaussian", "corruption in training: gaussian, masking or salt_and_pepper")
    noise_level: float | tuple[float, float] = option(
        0.2, "std for gaussian noise, fraction of entries hit otherwise; or a range low,high drawn per sample"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("noise", self.noise, tuple(corruption.NOISE_KINDS))
        self.noise_level = _check_noise_level(self.noise_level, self.noise)


def _check_noise_level(level, noise: str) -> float | tuple[float, float]:
    """A level (number) or a range (low, high), checked for the noise kind."""
    if isinstance(level, (tuple, list)) and len(level) == 1:
        level = level[0]
    is_range = isinstance(level, (tuple, list))
    values = tuple(level) if is_range else (level,)
    if (is_range and len(values) != 2) or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        raise ValueError(f"noise_level must be a number or a range (low, high) of two numbers, got {level!r}")
    if any(not v >= 0 for v in values):
        raise ValueError(f"noise_level must be >= 0, got {level!r}")
    if noise != "gaussian" and max(values) > 1:
        raise ValueError(f"noise_level is a fraction for {noise!r} noise: it must lie in [0, 1], got {level!r}")
    if is_range and values[0] > values[1]:
        raise ValueError(f"a noise_level range must be (low, high) with low <= high, got {level!r}")
    return (float(values[0]), float(values[1])) if is_range else float(level)


@register("denoising")
class DenoisingAE(AE):
    """Corruption happens only in training mode; encode/reconstruct see the input as given.

    For salt-and-pepper noise, ``noise_low``/``noise_high`` (buffers shaped like one sample) hold
    each feature's extremes in the training data, set when training starts
    (:func:`aekit.corruption.feature_extremes`; until then, each batch's own)."""

    Config = DenoisingConfig

    def __init__(self, config: DenoisingConfig, encoder=None, decoder=None):
        super().__init__(config, encoder, decoder)
        if config.noise == "salt_and_pepper":
            self.needs_data_init()
            self.register_buffer("noise_low", torch.full(config.input_shape, float("nan")))
            self.register_buffer("noise_high", torch.full(config.input_shape, float("nan")))

    def init_from_data(self, X):
        super().init_from_data(X)
        if self.config.noise == "salt_and_pepper":
            low, high = corruption.feature_extremes(X)
            self.noise_low.copy_(low)
            self.noise_high.copy_(high)

    def corrupt(self, x, generator):
        c = self.config
        extremes = {}
        if c.noise == "salt_and_pepper" and bool(self.data_initialised):
            extremes = {"low": self.noise_low, "high": self.noise_high}
        return corruption.corrupt(x, c.noise, c.noise_level, generator, **extremes)
