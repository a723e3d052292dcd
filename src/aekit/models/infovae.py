"""InfoVAE (Zhao, Song & Ermon 2019): the VAE's -ELBO plus a weighted maximum mean discrepancy
between the aggregate posterior q(z) (the batch's posterior draws) and the prior p(z) = N(0, I),
which keeps the codes spread like the prior even when the KL alone would not (MMD-VAE).

In the paper's (alpha, lambda) parametrisation the loss is recon + (1 - alpha) KL +
(alpha + lambda - 1) MMD; here ``beta`` is the KL weight 1 - alpha and ``mmd_weight`` is
alpha + lambda - 1. The ELBO (``elbo``, ``score_samples``, the NLL) is the VAE's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import losses
from .._registry import register
from .base import AEOutput, check_choice, check_nonneg, option, torch_generator
from .vae import VAE, VAEConfig, kl_objective


def check_mmd_settings(config) -> None:
    """Validate a Config's MMD settings (``mmd_weight``, ``kernel``, ``kernel_scale``)."""
    check_nonneg("mmd_weight", config.mmd_weight)
    check_choice("kernel", config.kernel, losses.MMD_KERNELS)
    scale = config.kernel_scale
    if scale is not None and not (isinstance(scale, (int, float)) and scale > 0):
        raise ValueError(f"kernel_scale must be > 0 (or None for 2 * latent_dim), got {scale!r}")


def mmd_to_prior(z: torch.Tensor, kernel: str, scale: float | None, generator=None) -> torch.Tensor:
    """MMD between the codes z (B, K) and as many fresh N(0, I) draws, repeated per row: (B,)."""
    prior = torch.randn(z.shape, generator=torch_generator(generator), device=z.device, dtype=z.dtype)  # (B, K)
    return losses.mmd(z, prior, kernel, scale).expand(z.shape[0])


@dataclass
class InfoVAEConfig(VAEConfig):
    """beta: KL weight (1 - alpha in the paper); mmd_weight: alpha + lambda - 1. The kernel is
    Gaussian (rbf) by default, as in the paper. mmd_weight 100 collapsed the posterior of a small
    model on digits (15 epochs: no active unit, against 7 of 8 at 0 and at 10), hence 10."""

    mmd_weight: float = option(10.0, "weight of the MMD between posterior draws and prior draws")
    kernel: str = option("rbf", "MMD kernel: rbf (Gaussian) or imq (inverse multiquadratic)")
    kernel_scale: float | None = option(None, "kernel scale C: rbf exp(-d^2/C), imq C/(C+d^2); None: 2 * latent_dim")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_mmd_settings(self)


@register("infovae")
class InfoVAE(VAE):
    """VAE with an MMD penalty between the aggregate posterior and the prior."""

    Config = InfoVAEConfig

    def forward(self, x, y=None, *, generator=None) -> AEOutput:
        c = self.config
        z, mu, logvar = self.reparameterize(x, y, generator)  # (B, K) each
        recon, x_hat = self._reconstruction(self.decoder_output(z, y), x)
        kl_dims = losses.kl_normal(mu, logvar, per_dim=True)  # (B, K)
        mmd = mmd_to_prior(z, c.kernel, c.kernel_scale, generator)  # (B,)
        loss = recon.mean() + self.kl_weight() * kl_objective(kl_dims, c.free_bits, self.training) + c.mmd_weight * mmd.mean()
        return AEOutput(loss=loss, parts={"recon": recon, "kl": kl_dims.sum(dim=1), "mmd": mmd}, x_hat=x_hat, z=mu)
