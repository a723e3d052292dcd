"""Denoising autoencoder (Vincent et al. 2008): corrupted input, clean target."""

from __future__ import annotations

from dataclasses import dataclass

from .. import corruption
from .._registry import register
from .ae import AE, AEConfig
from .base import check_choice, check_nonneg, option


@dataclass
class DenoisingConfig(AEConfig):
    """noise: ``"gaussian"`` (noise_level = std), ``"masking"`` or ``"salt_and_pepper"``
    (noise_level = fraction of entries hit)."""

    noise: str = option("gaussian", "corruption in training: gaussian, masking or salt_and_pepper")
    noise_level: float = option(0.2, "std for gaussian noise, fraction of entries hit otherwise")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("noise", self.noise, tuple(corruption.NOISE_KINDS))
        check_nonneg("noise_level", self.noise_level)
        if self.noise != "gaussian" and self.noise_level > 1:
            raise ValueError(f"noise_level is a fraction for {self.noise!r} noise: it must lie in [0, 1]")


@register("denoising")
class DenoisingAE(AE):
    """Corruption happens only in training mode; encode/reconstruct see the input as given."""

    Config = DenoisingConfig

    def corrupt(self, x, generator):
        return corruption.corrupt(x, self.config.noise, self.config.noise_level, generator)
