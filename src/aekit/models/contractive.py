"""Contractive autoencoder (Rifai et al. 2011): lambda * ||dh/dx||_F^2 on the encoder."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import losses
from .._registry import register
from ..nn import MLP
from .ae import AE, AEConfig
from .base import check_nonneg, option

# derivative of an elementwise activation, written in terms of its output h
_DERIV_FROM_OUTPUT = {
    nn.Sigmoid: lambda h: h * (1 - h),
    nn.Tanh: lambda h: 1 - h * h,
    nn.Identity: torch.ones_like,
    nn.ReLU: lambda h: (h > 0).to(h.dtype),
}


@dataclass
class ContractiveConfig(AEConfig):
    contractive_weight: float = option(1e-2, "weight of the squared Frobenius norm of the encoder Jacobian")
    code_activation: str | None = option("sigmoid", "activation on the code layer (None = linear code)")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_nonneg("contractive_weight", self.contractive_weight)


@register("contractive")
class ContractiveAE(AE):
    """Exact penalty: closed form for a one-layer encoder with sigmoid/tanh/relu/linear code,
    batched reverse-mode autograd otherwise (any encoder)."""

    Config = ContractiveConfig

    def _closed_form(self):
        enc = self.encoder
        if isinstance(enc, MLP) and not enc.hidden and type(enc.out_act) in _DERIV_FROM_OUTPUT:
            return _DERIV_FROM_OUTPUT[type(enc.out_act)]
        return None

    def jacobian_penalty(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """||dh/dx||_F^2 per sample, (B,). ``z`` (the code of x) lets the closed form reuse it."""
        deriv = self._closed_form()
        if deriv is not None:
            z = self.encoder(x) if z is None else z
            return losses.contractive_single_layer(deriv(z), self.encoder.out.weight)
        return losses.jacobian_frobenius_sq(self.encoder, x)

    def penalties(self, x_in, z, hidden):
        j = self.jacobian_penalty(x_in, z)
        return {"contractive": j}, self.config.contractive_weight * j
