"""Encoder and decoder builders, shared by every model family."""

from .conv import ConvDecoder, ConvEncoder, conv_spatial_sizes
from .mlp import MLP, activation_module, activation_names, flat_dim, is_identity
from .build import build_decoder, build_encoder, output_layer, zero_output

__all__ = [
    "MLP",
    "ConvEncoder",
    "ConvDecoder",
    "activation_module",
    "activation_names",
    "conv_spatial_sizes",
    "build_encoder",
    "build_decoder",
    "flat_dim",
    "is_identity",
    "output_layer",
    "zero_output",
]
