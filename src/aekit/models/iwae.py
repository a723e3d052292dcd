"""Importance-weighted autoencoder (Burda, Grosse & Salakhutdinov 2016): the VAE's model and
networks, trained on the k-sample importance-weighted bound

    L_k(x) = log (1/k sum_s p(x, z_s) / q(z_s | x)),  z_1..z_k ~ q(z | x),

which is the ELBO for k = 1 and tightens towards log p(x) as k grows. The ELBO, importance weights
and every evaluation stay the VAE's. KL warm-up and beta weight log p(z) - log q(z | x) inside
each importance weight (the annealed bound); free bits have no meaning here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._registry import register
from .base import AEOutput, check_positive_int, option
from .vae import VAE, Level, VAEConfig


@dataclass
class IWAEConfig(VAEConfig):
    """k: importance samples per data point in the training bound (k = 1 trains a VAE)."""

    k: int = option(5, "importance samples per data point in the training bound (1 trains a plain VAE)")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int("k", self.k)
        if any(fb > 0 for fb in self.free_bits_per_level):
            raise ValueError(
                "free_bits floors the KL term of the ELBO, which the importance-weighted bound does not "
                "have; use free_bits=0 (kl_warmup_epochs anneals the bound instead)"
            )


@register("iwae")
class IWAE(VAE):
    """A VAE whose loss is minus the k-sample importance-weighted bound, averaged over the batch.

    ``forward`` draws k posterior samples per data point (the encoder runs once) and returns that
    loss, the per-sample bound as part ``iwae`` (nats, -L_k) and, from the first of the k draws,
    the ELBO's parts ``recon`` and ``kl`` (so ``elbo`` is the VAE's one-sample estimate).
    """

    Config = IWAEConfig

    def forward(self, x, y=None, *, generator=None) -> AEOutput:
        k, b = self.config.k, x.shape[0]
        levels, out = self.draw(x, y, k, generator=generator)  # (k * B, ...)
        log_px, log_ratio = self._log_terms(levels, out, x, k)  # (k, B) each
        neg_bound = math.log(k) - torch.logsumexp(log_px + self.kl_weight() * log_ratio, dim=0)  # (B,)
        first = [Level(*(None if t is None else t[:b] for t in level)) for level in levels]  # draw 1 of k
        output = self._output(first, out[:b], -log_px[0], loss=neg_bound.mean())
        output.parts["iwae"] = neg_bound
        return output
