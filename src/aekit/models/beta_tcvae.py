"""beta-TCVAE (Chen et al. 2018): the VAE's KL term split into index-code mutual information,
total correlation and dimension-wise KL, each with its own weight; a heavier total-correlation
weight pushes the aggregate posterior towards independent dimensions (disentanglement).

The three terms are estimated per sample from the minibatch by minibatch-weighted sampling
(:func:`aekit.losses.kl_decomposition`). The ELBO (``elbo``, ``score_samples``, the NLL) keeps
the analytic KL, whatever the weights.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import losses
from .._registry import register
from .base import AEOutput, check_nonneg, option
from .vae import VAE, VAEConfig, warmup


@dataclass
class BetaTCVAEConfig(VAEConfig):
    """loss = recon + alpha * MI + beta * TC + gamma * dimension-wise KL (alpha = beta = gamma = 1
    is the VAE's -ELBO, up to the minibatch estimate). KL warm-up scales all three."""

    beta: float = option(6.0, "weight of the total-correlation term")
    alpha: float = option(1.0, "weight of the index-code mutual information term")
    gamma: float = option(1.0, "weight of the dimension-wise KL term")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("alpha", "gamma"):
            check_nonneg(name, getattr(self, name))
        if self.free_bits > 0:
            raise ValueError("free_bits applies to a per-dimension KL, which beta_tcvae replaces by its three terms; "
                             "use free_bits=0 (or the vae family)")


@register("beta_tcvae")
class BetaTCVAE(VAE):
    """VAE whose KL is decomposed (MI, total correlation, dimension-wise KL) and reweighted."""

    Config = BetaTCVAEConfig

    def forward(self, x, y=None, *, generator=None) -> AEOutput:
        c = self.config
        z, mu, logvar = self.reparameterize(x, y, generator)  # (B, K) each
        recon, x_hat = self._reconstruction(self.decoder_output(z, y), x)
        mi, tc, dwkl = losses.kl_decomposition(z, mu, logvar)  # (B,) each
        ramp = warmup(c, float(self.epochs_done), self.training)
        loss = recon.mean() + ramp * (c.alpha * mi + c.beta * tc + c.gamma * dwkl).mean()
        parts = {"recon": recon, "kl": losses.kl_normal(mu, logvar), "mi": mi, "tc": tc, "dwkl": dwkl}
        return AEOutput(loss=loss, parts=parts, x_hat=x_hat, z=mu)
