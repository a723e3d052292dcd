"""Build the encoder/decoder that a model config asks for."""

from __future__ import annotations

from typing import Sequence

from torch import nn

from .conv import ConvDecoder, ConvEncoder
from .mlp import MLP, flat_dim


def build_encoder(
    architecture: str,
    input_shape: Sequence[int],
    hidden_dims: Sequence[int],
    out_dim: int,
    activation: str | None,
    cond_dim: int = 0,
    out_activation: str | None = None,
    batch_norm: bool = False,
) -> nn.Module:
    """Encoder (B, *input_shape) [+ condition (B, cond_dim)] -> (B, out_dim).

    For ``"conv"``, hidden_dims are the channels of the stride-2 stages. ``batch_norm`` normalises
    before every activation.
    """
    if architecture == "mlp":
        return MLP(flat_dim(input_shape) + cond_dim, hidden_dims, out_dim, activation, out_activation, batch_norm=batch_norm)
    if architecture == "conv":
        _check_image(input_shape)
        return ConvEncoder(input_shape, hidden_dims, out_dim, activation, cond_dim, out_activation, batch_norm)
    raise ValueError(f"unknown architecture {architecture!r}; use 'mlp' or 'conv'")


def build_decoder(
    architecture: str,
    output_shape: Sequence[int],
    hidden_dims: Sequence[int],
    in_dim: int,
    activation: str | None,
    batch_norm: bool = False,
) -> nn.Module:
    """Decoder (B, in_dim) -> (B, *output_shape), layers in the encoder's reverse order."""
    if architecture == "mlp":
        return MLP(in_dim, list(hidden_dims)[::-1], flat_dim(output_shape), activation, out_shape=output_shape, batch_norm=batch_norm)
    if architecture == "conv":
        _check_image(output_shape)
        return ConvDecoder(output_shape, hidden_dims, in_dim, activation, batch_norm)
    raise ValueError(f"unknown architecture {architecture!r}; use 'mlp' or 'conv'")


def _check_image(shape: Sequence[int]) -> None:
    if len(shape) != 3:
        raise ValueError(
            f"architecture='conv' needs image input shaped (channels, height, width), got {tuple(shape)}; "
            "pass images as (n, h, w) or (n, c, h, w), or use architecture='mlp'"
        )
    if not (min(shape[1:]) >= 2 and shape[0] >= 1):
        raise ValueError(f"images must be at least 2x2 with >= 1 channel for a conv model, got {tuple(shape)}")
