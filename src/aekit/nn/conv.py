"""Convolutional encoder/decoder pair for image tensors of any size (B, C, H, W).

Each stage halves the spatial size with a stride-2 3x3 convolution (ceil(s / 2));
the decoder mirrors it with transposed convolutions whose output_padding is chosen
per stage so the output has exactly the input's H and W (8x8, 28x28, 32x32, ...).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .mlp import _normed, activation_module, is_identity


def conv_spatial_sizes(size: int, n_stages: int) -> list[int]:
    """Spatial sizes after each stride-2 stage, input first: 28 -> [28, 14, 7, 4]."""
    sizes = [size]
    for _ in range(n_stages):
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


class ConvEncoder(nn.Module):
    """(B, C, H, W) -> (B, out_dim). A condition c (B, K) enters as K constant channels."""

    def __init__(
        self,
        in_shape: Sequence[int],
        channels: Sequence[int],
        out_dim: int,
        activation: str | None = "relu",
        cond_dim: int = 0,
        out_activation: str | None = None,
        batch_norm: bool = False,
    ):
        super().__init__()
        c, h, w = in_shape
        layers: list[nn.Module] = []
        prev = c + cond_dim
        for ch in channels:
            layers += [nn.Conv2d(prev, ch, 3, stride=2, padding=1), _normed(activation_module(activation), ch, batch_norm, conv=True)]
            prev = ch
        self.body = nn.Sequential(*layers)
        hs, ws = conv_spatial_sizes(h, len(channels)), conv_spatial_sizes(w, len(channels))
        self.head = nn.Linear(prev * hs[-1] * ws[-1], out_dim)
        self.out_act = _normed(activation_module(out_activation), out_dim, batch_norm and not is_identity(out_activation))

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if c is not None:
            maps = c[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])  # (B, K, H, W)
            x = torch.cat([x, maps.to(x.dtype)], dim=1)
        h = self.body(x)  # (B, C_last, h, w)
        return self.out_act(self.head(h.flatten(1)))  # (B, out_dim)


class ConvDecoder(nn.Module):
    """(B, in_dim) -> (B, out_channels, H, W), mirroring ConvEncoder."""

    def __init__(
        self,
        out_shape: Sequence[int],
        channels: Sequence[int],
        in_dim: int,
        activation: str | None = "relu",
        batch_norm: bool = False,
    ):
        super().__init__()
        c, h, w = out_shape
        chans = list(channels)[::-1]  # deepest first
        hs, ws = conv_spatial_sizes(h, len(chans)), conv_spatial_sizes(w, len(chans))
        self.start_shape = (chans[0], hs[-1], ws[-1])
        width = chans[0] * hs[-1] * ws[-1]
        self.head = nn.Sequential(nn.Linear(in_dim, width), _normed(activation_module(activation), width, batch_norm))
        layers: list[nn.Module] = []
        outs = chans[1:] + [c]
        for i, (cin, cout) in enumerate(zip(chans, outs)):
            stage = len(chans) - i  # index into sizes of this stage's input
            target_h, target_w = hs[stage - 1], ws[stage - 1]
            pad = (target_h - (2 * hs[stage] - 1), target_w - (2 * ws[stage] - 1))
            layers.append(nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=pad))
            if i < len(chans) - 1:
                layers.append(_normed(activation_module(activation), cout, batch_norm, conv=True))
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.head(z).reshape(z.shape[0], *self.start_shape)  # (B, C_deep, h, w)
        return self.body(h)  # (B, C, H, W)
