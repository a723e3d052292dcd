"""Build the encoder/decoder that a model config asks for."""

from __future__ import annotations

from typing import Sequence

import torch
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


_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def output_layer(module: nn.Module) -> nn.Module:
    """The layer that produces ``module``'s output: the last ``nn.Linear`` or convolution it
    registers (an MLP's ``out``, a ConvEncoder's ``head``, a ConvDecoder's last transposed
    convolution, the last layer of an ``nn.Sequential``)."""
    layers = [m for m in module.modules() if isinstance(m, _LAYERS)]
    if not layers:
        raise ValueError(f"{type(module).__name__} has no linear or convolution layer to start at zero")
    return layers[-1]


def zero_output(module: nn.Module) -> None:
    """Set the weights and bias of ``module``'s output layer to zero, so it outputs zeros until
    trained (a residual branch that starts switched off: Goyal et al. 2017, Zhang et al. 2019)."""
    layer = output_layer(module)
    with torch.no_grad():
        layer.weight.zero_()
        if layer.bias is not None:
            layer.bias.zero_()


def _check_image(shape: Sequence[int]) -> None:
    if len(shape) != 3:
        raise ValueError(
            f"architecture='conv' needs image input shaped (channels, height, width), got {tuple(shape)}; "
            "pass images as (n, h, w) or (n, c, h, w), or use architecture='mlp'"
        )
    if not (min(shape[1:]) >= 2 and shape[0] >= 1):
        raise ValueError(f"images must be at least 2x2 with >= 1 channel for a conv model, got {tuple(shape)}")
