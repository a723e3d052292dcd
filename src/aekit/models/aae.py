"""Adversarial autoencoder (Makhzani et al. 2016): a deterministic encoder whose codes a
discriminator tries to tell from draws of the prior N(0, I), while the encoder learns to fool it;
the distribution of the codes is thereby matched to the prior, and decoding prior draws generates.

The encoder's adversarial term is the non-saturating -log D(z) (Goodfellow et al. 2014). The
paper alternates a reconstruction phase and a regularisation phase per batch; here the two
players update together from one backward pass (``models/adversarial.py``), the encoder on
recon + adversarial_weight * adversarial, the discriminator on its own loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import losses
from .._registry import register
from .adversarial import CodeDiscriminator, check_lr, two_player_groups
from .ae import AE, AEConfig
from .base import AEOutput, check_nonneg, decode_prior, option, torch_generator


@dataclass
class AAEConfig(AEConfig):
    """adversarial_weight: weight of the encoder's -log D(z) against the reconstruction loss. At 1
    the discriminator won on MNIST (10 epochs, MSE): the codes collapsed (MMD to the prior 0.27)
    and reconstructions suffered; 0.1 matched the prior (MMD 0.008) at an AE's reconstruction error."""

    adversarial_weight: float = option(0.1, "weight of the encoder's adversarial loss -log D(code)")
    discriminator_dims: tuple[int, ...] = option((256, 256), "hidden layer sizes of the discriminator on codes")
    discriminator_lr: float | None = option(None, "learning rate of the discriminator (None: the training lr)")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_nonneg("adversarial_weight", self.adversarial_weight)
        check_lr(self.discriminator_lr)
        self.discriminator_dims = tuple(int(d) for d in self.discriminator_dims)


@register("aae")
class AAE(AE):
    """Deterministic autoencoder whose codes are matched to N(0, I) by a discriminator."""

    Config = AAEConfig
    generative = True
    adversarial = True

    def __init__(self, config: AAEConfig, encoder=None, decoder=None):
        super().__init__(config, encoder, decoder)
        self.discriminator = CodeDiscriminator(config.latent_dim, config.discriminator_dims)

    def param_groups(self):
        return two_player_groups(self, self.discriminator, self.config.discriminator_lr)

    def adversarial_loss(self, z: torch.Tensor) -> torch.Tensor:
        """The encoder's loss -log D(z) through fixed discriminator weights: (B, K) -> (B,)."""
        return F.softplus(-self.discriminator.frozen(z))

    def discriminator_loss(self, z: torch.Tensor, generator=None) -> torch.Tensor:
        """The discriminator's loss on prior draws (real) against the codes z, detached (fake): (B,)."""
        prior = torch.randn(z.shape, generator=torch_generator(generator), device=z.device, dtype=z.dtype)  # (B, K)
        return losses.discriminator_bce(self.discriminator(prior), self.discriminator(z.detach()))

    def forward(self, x, y=None, *, generator=None) -> AEOutput:
        out = super().forward(x, y, generator=generator)  # (B, K) codes, reconstruction
        adversarial = self.adversarial_loss(out.z)  # (B,)
        disc = self.discriminator_loss(out.z, generator)  # (B,)
        out.loss = out.loss + self.config.adversarial_weight * adversarial.mean()
        if self.training:  # the second player's loss; outside training the loss is the model's objective
            out.loss = out.loss + disc.mean()
        out.parts.update(adversarial=adversarial, discriminator=disc)
        return out

    def sample(self, n: int, y=None, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode n draws from the prior N(0, I): (n, *input_shape), in data space."""
        return decode_prior(self, n, generator)
