"""Masked autoencoder for incomplete data: NaN entries of x are missing values.

The encoder sees x with its missing entries set to 0 and, stacked as a second channel, the
mask of observed entries. Training hides a further share of the observed entries from the
encoder and scores the reconstruction on observed entries only: the hidden ones teach
E[x_hidden | x_visible] (what an imputer needs), the visible ones (weighted by
``visible_weight``) keep the code a summary of the whole sample. Missing entries never enter
the loss, so nothing teaches the network to copy a fill. Which entries are hidden: for each row,
the missing pattern of another row of the batch (hidden entries then look like the data's real
gaps: scattered pixels, squares, whole columns), or each observed entry independently with
probability u ~ U(0, hide_rate), u drawn per row (which also trains on complete data).

Masked denoising for imputation (Vincent et al. 2008; Gondara & Wang 2018, MIDA), with
re-masking of observed entries as in ReMasker (Du et al. 2024) and the loss restricted to
observed entries as in MIWAE (Mattei & Frellsen 2019).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._registry import register
from ..nn import build_encoder
from .ae import AE, AEConfig
from .base import AEOutput, check_choice, check_nonneg, option, reconstruction

HIDE_MODES = ("mixed", "rows", "random")


@dataclass
class MaskedConfig(AEConfig):
    """hide: ``"rows"`` hides another row's missing pattern, ``"random"`` hides each observed
    entry with probability u ~ U(0, hide_rate) (u per row), ``"mixed"`` does each for half of
    the rows (a coin per row). latent_dim defaults to 64: masking, not the bottleneck, keeps the
    network from copying its input."""

    latent_dim: int = option(64, "size of the code (masking, not the bottleneck, keeps the network from copying its input)")
    hide: str = option("mixed", "entries hidden from the encoder in training: rows (another row's missing pattern), random, or mixed")
    hide_rate: float = option(0.5, "random hiding: each row hides each observed entry with probability u ~ U(0, hide_rate)")
    visible_weight: float = option(2.0, "loss weight of the observed entries the encoder saw (hidden ones weigh 1)")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("hide", self.hide, HIDE_MODES)
        check_nonneg("visible_weight", self.visible_weight)
        if not (isinstance(self.hide_rate, (int, float)) and 0 <= self.hide_rate <= 1):
            raise ValueError(f"hide_rate must be a fraction in [0, 1], got {self.hide_rate!r}")


def _per_row(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, ...) broadcastable against ``like`` (B, ...)."""
    return t.reshape(-1, *([1] * (like.dim() - 1)))


@register("masked")
class MaskedAE(AE):
    """Autoencoder over (x with missing entries zeroed, observed mask), stacked along dim 1:
    the encoder takes (B, 2C, H, W) for images and (B, 2D) for tables; a user-supplied encoder
    must accept that. ``encode``/``reconstruct`` accept NaNs; ``reconstruct`` fills them."""

    Config = MaskedConfig
    handles_missing = True

    def __init__(self, config: MaskedConfig, encoder=None, decoder=None):
        c = config
        stacked = (2 * c.input_shape[0], *c.input_shape[1:])  # values and mask, one channel each
        encoder = encoder or build_encoder(
            c.architecture, stacked, c.hidden_dims, c.latent_dim, c.activation, out_activation=c.code_activation
        )
        super().__init__(config, encoder, decoder)

    @staticmethod
    def observed(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x with NaNs set to 0, and the mask of observed entries (bool), each (B, *S)."""
        seen = ~torch.isnan(x)
        return torch.where(seen, x, torch.zeros((), dtype=x.dtype, device=x.device)), seen

    def _encode_visible(self, x0: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        m = visible.to(x0.dtype)
        return self.encoder(torch.cat([x0 * m, m], dim=1))  # (B, 2C, ...) -> (B, K)

    def code(self, x):
        x0, seen = self.observed(x)
        return self._encode_visible(x0, seen), []

    def hide(self, seen: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """The entries left visible in a training step: a subset of ``seen`` (B, *S), bool."""
        c = self.config
        B, dev = seen.shape[0], seen.device
        if c.hide != "random":
            by_rows = seen & seen[torch.randperm(B, generator=generator, device=dev)]  # another row's pattern
            if c.hide == "rows":
                return by_rows
        rate = _per_row(c.hide_rate * torch.rand(B, generator=generator, device=dev), seen)  # u ~ U(0, hide_rate)
        by_chance = seen & (torch.rand(seen.shape, generator=generator, device=dev) >= rate)
        if c.hide == "random":
            return by_chance
        coin = _per_row(torch.rand(B, generator=generator, device=dev) < 0.5, seen)
        return torch.where(coin, by_rows, by_chance)

    def forward(self, x, y=None, *, generator=None) -> AEOutput:
        x0, seen = self.observed(x)  # (B, *S) each
        if self.training:
            visible = self.hide(seen, generator)
            weight = (seen & ~visible).to(x0.dtype) + self.config.visible_weight * visible.to(x0.dtype)
        else:  # the input as given; the loss is the reconstruction error of the observed entries
            visible, weight = seen, seen.to(x0.dtype)
        z = self._encode_visible(x0, visible)  # (B, K)
        recon, x_hat = reconstruction(self.config.loss, self.decoder(z), x0, weight=weight)
        return AEOutput(loss=recon.mean(), parts={"recon": recon}, x_hat=x_hat, z=z)
