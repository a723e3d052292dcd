"""Encoder and decoder builders, shared by every model family."""

from .conv import ConvDecoder, ConvEncoder, conv_spatial_sizes
from .mlp import MLP, activation_module, activation_names
from .build import build_decoder, build_encoder

__all__ = [
    "MLP",
    "ConvEncoder",
    "ConvDecoder",
    "activation_module",
    "activation_names",
    "conv_spatial_sizes",
    "build_encoder",
    "build_decoder",
]
