"""Wasserstein autoencoder, MMD variant (Tolstikhin et al. 2018): a deterministic encoder, and the
reconstruction cost plus a weighted maximum mean discrepancy between the distribution of the codes
and the prior N(0, I) (inverse multiquadratic kernel, as in the paper). Only the aggregate of the
codes is matched to the prior, not each code, so codes can stay far apart and reconstructions sharp;
new data come from decoding prior draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._registry import register
from .ae import AE, AEConfig
from .base import AEOutput, decode_prior, option
from .infovae import check_mmd_settings, mmd_to_prior


@dataclass
class WAEConfig(AEConfig):
    """mmd_weight: lambda of the paper; kernel and kernel_scale as in ``aekit.losses.mmd``."""

    mmd_weight: float = option(10.0, "weight of the MMD between the codes and prior draws")
    kernel: str = option("imq", "MMD kernel: imq (inverse multiquadratic) or rbf (Gaussian)")
    kernel_scale: float | None = option(None, "kernel scale C: imq C/(C+d^2), rbf exp(-d^2/C); None: 2 * latent_dim")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_mmd_settings(self)


@register("wae")
class WAE(AE):
    """Deterministic autoencoder whose codes are matched to N(0, I) in distribution (MMD)."""

    Config = WAEConfig
    generative = True

    def forward(self, x, y=None, *, generator=None) -> AEOutput:
        out = super().forward(x, y, generator=generator)  # (B, K) codes, reconstruction
        c = self.config
        out.parts["mmd"] = mmd_to_prior(out.z, c.kernel, c.kernel_scale, generator)  # (B,)
        out.loss = out.loss + c.mmd_weight * out.parts["mmd"].mean()
        return out

    def sample(self, n: int, y=None, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode n draws from the prior N(0, I): (n, *input_shape), in data space."""
        return decode_prior(self, n, generator)
