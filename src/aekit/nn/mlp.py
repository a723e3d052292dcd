"""Multi-layer perceptron with access to every hidden activation."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus,
}


_IDENTITY_NAMES = (None, "linear", "none", "identity")


def is_identity(name: str | None) -> bool:
    """Whether the activation ``name`` is the identity (``None``, ``"linear"``, ...)."""
    return name in _IDENTITY_NAMES


def activation_names() -> tuple[str, ...]:
    """The activations a config may name (besides None / "linear" for none)."""
    return tuple(sorted(_ACTIVATIONS))


def activation_module(name: str | None) -> nn.Module:
    """Return a fresh activation module for ``name``; ``None`` or ``"linear"`` gives identity."""
    if is_identity(name):
        return nn.Identity()
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        choices = sorted(_ACTIVATIONS) + ["None"]
        raise ValueError(f"unknown activation {name!r}; choose one of {choices}") from None


class MLP(nn.Module):
    """Fully connected stack: in_dim -> hidden_dims... -> out_dim.

    Input (B, *in_shape) is flattened; output is (B, out_dim) or reshaped to ``out_shape``.
    An optional condition c (B, C) is concatenated to the flattened input.
    ``forward(x, return_hidden=True)`` also returns each hidden layer's activation (B, H_k),
    the rates that KL sparsity penalises. ``batch_norm`` puts batch normalisation (Ioffe & Szegedy
    2015) before every activation: each hidden layer's, and the output's when it has one.
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dims: Sequence[int],
        out_dim: int,
        activation: str | None = "relu",
        out_activation: str | None = None,
        out_shape: Sequence[int] | None = None,
        batch_norm: bool = False,
    ):
        super().__init__()
        dims = [in_dim, *hidden_dims]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.acts = nn.ModuleList(_normed(activation_module(activation), b, batch_norm) for b in hidden_dims)
        self.out = nn.Linear(dims[-1], out_dim)
        has_out_act = not is_identity(out_activation)
        self.out_act = _normed(activation_module(out_activation), out_dim, batch_norm and has_out_act)
        self.out_shape = tuple(out_shape) if out_shape is not None else None

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None, return_hidden: bool = False):
        h = x.reshape(x.shape[0], -1)  # (B, D)
        if c is not None:
            h = torch.cat([h, c], dim=1)  # (B, D + C)
        hidden = []
        for lin, act in zip(self.hidden, self.acts):
            h = act(lin(h))  # (B, H_k)
            hidden.append(h)
        y = self.out_act(self.out(h))  # (B, out_dim)
        if self.out_shape is not None:
            y = y.reshape(y.shape[0], *self.out_shape)
        return (y, hidden) if return_hidden else y


def _normed(act: nn.Module, width: int, batch_norm: bool, conv: bool = False) -> nn.Module:
    """``act``, preceded by batch normalisation over ``width`` features (or channels) when asked."""
    if not batch_norm:
        return act
    return nn.Sequential(nn.BatchNorm2d(width) if conv else nn.BatchNorm1d(width), act)


def flat_dim(shape: Sequence[int]) -> int:
    return int(math.prod(shape))
