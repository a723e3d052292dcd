"""A second player for the adversarial families (factorvae, aae): a classifier on codes, and how
it trains beside the model without a second training loop.

Both players' losses come out of one forward pass, each written so that its gradient reaches only
its own player: the model's term reads the discriminator through ``frozen`` (its weights held
fixed, the gradient flows into the codes), and the discriminator's term reads the codes detached.
One backward pass of their sum then gives every parameter the gradient of its own player's loss,
and one optimizer step updates both players at once (simultaneous gradient descent, as
disentanglement_lib trains FactorVAE), the discriminator in its own parameter group with its own
Adam settings (``param_groups``). The training loop, DDP, gradient clipping, rollback and
checkpoints (the discriminator's optimizer state included) need nothing else.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..nn import MLP

__all__ = ["DISCRIMINATOR_BETAS", "CodeDiscriminator", "check_lr", "two_player_groups"]

# Adam's betas for the discriminator: Kim & Mnih 2018 (FactorVAE) train theirs with (0.5, 0.9),
# the setting GAN practice (Radford et al. 2016) uses for the adversary.
DISCRIMINATOR_BETAS = (0.5, 0.9)


class CodeDiscriminator(nn.Module):
    """An MLP classifier on codes, (B, K) -> logits (B,) of P(real | z)."""

    def __init__(self, latent_dim: int, hidden_dims: tuple[int, ...], activation: str | None = "leaky_relu"):
        super().__init__()
        self.net = MLP(latent_dim, hidden_dims, 1, activation)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).squeeze(1)  # (B,)

    def frozen(self, z: torch.Tensor) -> torch.Tensor:
        """The logits as the other player sees them: the discriminator's weights are held fixed,
        so a loss on them sends gradient into z only, never into the discriminator. (B, K) -> (B,)."""
        fixed = {name: p.detach() for name, p in self.named_parameters()}
        return torch.func.functional_call(self, fixed, (z,))


def two_player_groups(model: nn.Module, discriminator: nn.Module, lr: float | None) -> list[dict[str, Any]]:
    """Parameter groups for a model and its discriminator: the model's with the training loop's
    settings, the discriminator's with ``DISCRIMINATOR_BETAS`` and, when given, its own ``lr``."""
    own = {id(p) for p in discriminator.parameters()}
    group: dict[str, Any] = {"params": list(discriminator.parameters()), "betas": DISCRIMINATOR_BETAS}
    if lr is not None:
        group["lr"] = lr
    return [{"params": [p for p in model.parameters() if id(p) not in own]}, group]


def check_lr(value: float | None) -> None:
    if value is not None and not (isinstance(value, (int, float)) and value > 0):
        raise ValueError(f"discriminator_lr must be > 0 (or None for the training lr), got {value!r}")
