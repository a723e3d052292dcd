"""FactorVAE (Kim & Mnih 2018): the VAE's -ELBO plus gamma times the total correlation of the
aggregate posterior, TC = KL(q(z) || prod_k q(z_k)), estimated by a discriminator.

The discriminator D learns to tell codes z ~ q(z|x) from codes whose dimensions were each shuffled
across the batch (samples of prod_k q(z_k)); by the density-ratio trick its logit estimates
log q(z) / prod_k q(z_k), whose mean is the TC. As in disentanglement_lib, both come from the same
batch and the two players update together (``models/adversarial.py``); Kim & Mnih draw a second
batch for the shuffled codes and alternate the updates. The ELBO (``elbo``, ``score_samples``, the
NLL) is the VAE's, with the analytic KL.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import losses
from .._registry import register
from .adversarial import CodeDiscriminator, check_lr, two_player_groups
from .base import AEOutput, check_nonneg, option, torch_generator
from .vae import VAE, VAEConfig, kl_objective


@dataclass
class FactorVAEConfig(VAEConfig):
    """gamma: weight of the discriminator's TC estimate. The discriminator is an MLP on codes
    (LeakyReLU), trained with Adam betas (0.5, 0.9) as in the paper."""

    gamma: float = option(10.0, "weight of the total-correlation estimate")
    discriminator_dims: tuple[int, ...] = option((256, 256), "hidden layer sizes of the discriminator on codes")
    discriminator_lr: float | None = option(None, "learning rate of the discriminator (None: the training lr)")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_nonneg("gamma", self.gamma)
        check_lr(self.discriminator_lr)
        self.discriminator_dims = tuple(int(d) for d in self.discriminator_dims)


def permute_dims(z: torch.Tensor, generator=None) -> torch.Tensor:
    """Shuffle each column of z independently across the batch: samples of the product of the
    marginals of the rows' distribution (Kim & Mnih 2018, Algorithm 1). (B, K) -> (B, K)."""
    keys = torch.rand(z.shape, generator=torch_generator(generator), device=z.device)  # (B, K)
    return z.gather(0, keys.argsort(dim=0))


@register("factorvae")
class FactorVAE(VAE):
    """VAE with a discriminator-estimated total-correlation penalty."""

    Config = FactorVAEConfig
    adversarial = True

    def __init__(self, config: FactorVAEConfig, encoder=None, decoder=None):
        super().__init__(config, encoder, decoder)
        self.discriminator = CodeDiscriminator(config.latent_dim, config.discriminator_dims)

    def param_groups(self):
        return two_player_groups(self, self.discriminator, self.config.discriminator_lr)

    def tc_estimate(self, z: torch.Tensor) -> torch.Tensor:
        """The discriminator's estimate of log q(z) / prod_k q(z_k) at each code, through fixed
        discriminator weights (the model's view): (B, K) -> (B,). Its mean estimates the TC."""
        return self.discriminator.frozen(z)

    def discriminator_loss(self, z: torch.Tensor, generator=None) -> torch.Tensor:
        """The discriminator's loss on codes z (detached) against their dimension-shuffled
        copies: (B, K) -> (B,)."""
        z = z.detach()
        return losses.discriminator_bce(self.discriminator(z), self.discriminator(permute_dims(z, generator)))

    def forward(self, x, y=None, *, generator=None) -> AEOutput:
        z, mu, logvar = self.reparameterize(x, y, generator)  # (B, K) each
        recon, x_hat = self._reconstruction(self.decoder_output(z, y), x)
        kl_dims = losses.kl_normal(mu, logvar, per_dim=True)  # (B, K)
        tc = self.tc_estimate(z)  # (B,)
        disc = self.discriminator_loss(z, generator)  # (B,)
        loss = recon.mean() + self.kl_weight() * kl_objective(kl_dims, self.config.free_bits, self.training)
        loss = loss + self.config.gamma * tc.mean()
        if self.training:  # the second player's loss; outside training the loss is the model's objective
            loss = loss + disc.mean()
        parts = {"recon": recon, "kl": kl_dims.sum(dim=1), "tc": tc, "discriminator": disc}
        return AEOutput(loss=loss, parts=parts, x_hat=x_hat, z=mu)
