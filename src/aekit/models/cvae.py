"""Conditional VAE (Sohn et al. 2015): one-hot labels feed both encoder and decoder."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._registry import register
from .base import one_hot, option
from .vae import VAE, VAEConfig


@dataclass
class CVAEConfig(VAEConfig):
    n_classes: int = option(10, "number of classes of the labels y", from_data=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.n_classes, bool) or not isinstance(self.n_classes, int) or self.n_classes < 2:
            raise ValueError(f"n_classes must be an integer >= 2, got {self.n_classes!r}")


@register("cvae")
class CVAE(VAE):
    """p(x|z, y) q(z|x, y) with y one-hot. ``sample(n, y)`` draws from class y (an int or n labels)."""

    Config = CVAEConfig
    conditional = True

    @property
    def cond_dim(self) -> int:  # type: ignore[override]
        return self.config.n_classes

    def condition(self, y) -> torch.Tensor:
        return one_hot(y, self.config.n_classes)

    @torch.no_grad()
    def sample(self, n, y=None, *, generator=None):
        if y is None:
            raise ValueError("a conditional VAE samples per class: pass y (one class index, or n of them)")
        y = torch.as_tensor(y)
        y = y.expand(n) if y.ndim == 0 else y
        if y.shape != (n,):
            raise ValueError(f"y must be one label or {n} labels, got shape {tuple(y.shape)}")
        return super().sample(n, y, generator=generator)
