"""VAE with a VampPrior (Tomczak & Welling 2018): the prior is the mixture of the encoder's
posteriors at K learned pseudo-inputs, p(z) = 1/K sum_k q(z | u_k), trained with the rest of the
model. It is the optimal prior's (the aggregate posterior's) approximation that the encoder itself
defines, so the prior fits the codes and the ELBO tightens.

log p(z) is a logsumexp over the K components (``log_prior``), so the ELBO, the importance-weighted
NLL (``log_weight``) and sampling all use the mixture. The KL term is no longer analytic: ``kl`` is
the one-sample estimate log q(z|x) - log p(z) at the same draw z as the reconstruction, so
-(recon + kl) is the usual one-sample ELBO (unbiased; a single value may be negative).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .._registry import register
from .base import AEOutput, option
from .vae import VAE, VAEConfig, log_normal


@dataclass
class VampPriorConfig(VAEConfig):
    """n_pseudo_inputs: K, the mixture's components (the paper uses 500 on MNIST; 100 gave the same
    ELBO in our 10-epoch MNIST runs at half the training time, and suits small data sets better).
    For a Bernoulli likelihood the pseudo-inputs are kept in [0, 1] (a hard tanh, as in the paper)."""

    n_pseudo_inputs: int = option(100, "components of the prior: learned pseudo-inputs, each giving one posterior")

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.n_pseudo_inputs, bool) or not isinstance(self.n_pseudo_inputs, int) or self.n_pseudo_inputs < 1:
            raise ValueError(f"n_pseudo_inputs must be a positive integer, got {self.n_pseudo_inputs!r}")
        if self.free_bits > 0:
            raise ValueError("free_bits needs a per-dimension analytic KL, which a VampPrior does not have; use free_bits=0")


def mixture_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log (1/C sum_c N(z; mu_c, diag(exp(logvar_c)))) for each row of z: (B, K), (C, K), (C, K) -> (B,).

    The (B, C) matrix of component log-densities comes from three matrix products, so memory is
    B * C, not B * C * K (an NLL pass scores thousands of rows against every component)."""
    prec = torch.exp(-logvar)  # (C, K)
    quad = z.pow(2) @ prec.T - 2.0 * z @ (mu * prec).T + (mu.pow(2) * prec).sum(1)  # (B, C)
    log_comp = -0.5 * (quad + logvar.sum(1) + z.shape[1] * math.log(2 * math.pi))  # (B, C)
    return torch.logsumexp(log_comp, dim=1) - math.log(mu.shape[0])


@register("vampprior")
class VampPriorVAE(VAE):
    """VAE whose prior is a mixture of posteriors at learned pseudo-inputs."""

    Config = VampPriorConfig

    def __init__(self, config: VampPriorConfig, encoder=None, decoder=None):
        super().__init__(config, encoder, decoder)
        # Small noise around the middle of the data range (0.5 in [0, 1], 0 for standardized data):
        # the components start nearly equal and separate as they learn (the paper: N(0.05, 0.01) on MNIST).
        centre = 0.5 if config.likelihood == "bernoulli" else 0.0
        self.pseudo_inputs = nn.Parameter(centre + 0.01 * torch.randn(config.n_pseudo_inputs, *config.input_shape))

    def pseudo_posteriors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The prior's components: q(z | u_k) for every pseudo-input, mean and log-variance (C, K) each."""
        u = self.pseudo_inputs
        if self.config.likelihood == "bernoulli":
            u = F.hardtanh(u, 0.0, 1.0)
        return self.posterior(u)

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) under the VampPrior, (B,): a logsumexp over the pseudo-inputs' posteriors."""
        return mixture_log_density(z, *self.pseudo_posteriors())

    def forward(self, x, y=None, *, generator=None) -> AEOutput:
        z, mu, logvar = self.reparameterize(x, y, generator)  # (B, K) each
        recon, x_hat = self._reconstruction(self.decoder_output(z, y), x)
        kl = log_normal(z, mu, logvar) - self.log_prior(z)  # (B,) one-sample estimate
        loss = recon.mean() + self.kl_weight() * kl.mean()
        return AEOutput(loss=loss, parts={"recon": recon, "kl": kl}, x_hat=x_hat, z=mu)

    @torch.no_grad()
    def sample(self, n: int, y=None, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Pick a pseudo-input uniformly, draw z from its posterior, decode: (n, *input_shape)."""
        mu, logvar = self.pseudo_posteriors()  # (C, K) each
        comp = torch.randint(mu.shape[0], (n,), generator=generator, device=mu.device)  # (n,)
        eps = torch.randn(mu[comp].shape, generator=generator, device=mu.device)  # (n, K)
        return self.decode(mu[comp] + torch.exp(0.5 * logvar[comp]) * eps)
