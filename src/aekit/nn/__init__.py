"""Encoder and decoder builders, shared by every model family."""

from .conv import ConvDecoder, ConvEncoder, conv_spatial_sizes
from .mlp import MLP, activation_module
from .build import build_decoder, build_encoder

__all__ = [
    "MLP",
    "ConvEncoder",
    "ConvDecoder",
    "activation_module",
    "conv_spatial_sizes",
    "build_encoder",
    "build_decoder",
]
