"""Undercomplete / stacked autoencoder (MSE or BCE reconstruction)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._registry import register
from ..nn import build_decoder, build_encoder
from .base import AEOutput, Autoencoder, ModelConfig, check_choice, option, reconstruction, to_data_space


@dataclass
class AEConfig(ModelConfig):
    """loss: ``"mse"`` or ``"bce"`` (inputs in [0, 1]; the decoder then outputs logits).
    code_activation: activation on the code layer (None = linear code)."""

    loss: str = option("mse", "reconstruction loss: mse, or bce for data in [0, 1]")
    code_activation: str | None = option(None, "activation on the code layer (None = linear code)")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("loss", self.loss, ("mse", "bce"))

    def probability_setting(self) -> str | None:
        return "loss='bce'" if self.loss == "bce" else None


@register("ae")
class AE(Autoencoder):
    """Deterministic autoencoder: x -> z = f(x) -> g(z). Subclasses add noise or penalties
    through ``corrupt`` and ``penalties``; the forward pass is written once, here."""

    Config = AEConfig

    def __init__(self, config: AEConfig, encoder=None, decoder=None):
        super().__init__(config)
        c = config
        self.encoder = encoder or build_encoder(
            c.architecture, c.input_shape, c.hidden_dims, c.latent_dim, c.activation, out_activation=c.code_activation
        )
        self.decoder = decoder or build_decoder(c.architecture, c.input_shape, c.hidden_dims, c.latent_dim, c.activation)

    # -- pieces subclasses override -------------------------------------------------
    def corrupt(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Input actually fed to the encoder during training (identity here)."""
        return x

    def code(self, x: torch.Tensor):
        """Code for x and the hidden activations it went through: ((B, K), [(B, H_k)...])."""
        return self.encoder(x), []

    def penalties(self, x_in: torch.Tensor, z: torch.Tensor, hidden: list) -> tuple[dict, torch.Tensor]:
        """Named unweighted per-sample penalties, and their weighted sum (B,)."""
        return {}, torch.zeros((), device=z.device)

    # -- public face ----------------------------------------------------------------
    def encode(self, x, y=None):
        return self.code(x)[0]

    def decode(self, z, y=None):
        return to_data_space(self.config.loss, self.decoder(z))

    def forward(self, x, y=None, *, generator=None) -> AEOutput:
        x_in = self.corrupt(x, generator) if self.training else x
        z, hidden = self.code(x_in)  # (B, K)
        recon, x_hat = reconstruction(self.config.loss, self.decoder(z), x)  # clean target
        parts, penalty = self.penalties(x_in, z, hidden)
        loss = (recon + penalty).mean()
        return AEOutput(loss=loss, parts={"recon": recon, **parts}, x_hat=x_hat, z=z)
