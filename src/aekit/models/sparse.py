"""Sparse autoencoder: L1 on the code, KL (or L1/L2) rate sparsity per layer, or k-sparse codes.

KL sparsity follows Ng's CS294A notes: the average activation rho_k of the units of layer k is
pulled towards a target rate rho-hat_k by KL(rho-hat || rho), weighted per layer by w_k.
k-sparse follows Makhzani & Frey 2013: keep the k largest code units, zero the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import losses
from .._registry import register
from .ae import AE, AEConfig
from .base import check_choice, check_nonneg, option


@dataclass
class SparseConfig(AEConfig):
    """sparsity: ``"l1"`` (sparsity_weight * |z|_1), ``"kl"`` (rate sparsity on layers) or ``"topk"``.

    target_rate: one rate, or one per penalised layer. layer_weights: weights w_k for
    (hidden layers..., code); None penalises the code layer only. divergence: ``"kl"``, ``"l1"``,
    ``"l2"``. k: code units kept by ``"topk"``. code_activation None picks sigmoid for ``"kl"``
    (rates must lie in (0, 1): with divergence ``"kl"`` every penalised layer must be sigmoid, other
    activations are refused), relu for ``"l1"`` and a linear code for ``"topk"``; pass
    ``"linear"`` for a linear code with any mode.
    """

    sparsity: str = option("l1", "l1 (weight * |code|_1), kl (rate sparsity per layer) or topk (keep the k largest code units)")
    sparsity_weight: float = option(1e-2, "weight of the sparsity penalty")
    target_rate: float | tuple[float, ...] = option(0.05, "target mean activation for sparsity=kl: one rate, or one per penalised layer")
    layer_weights: tuple[float, ...] | None = option(None, "penalty weight per hidden layer and the code (None: the code only)")
    divergence: str = option("kl", "rate divergence for sparsity=kl: kl, l1 or l2")
    k: int = option(5, "code units kept by sparsity=topk")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("sparsity", self.sparsity, ("l1", "kl", "topk"))
        check_choice("divergence", self.divergence, ("kl", "l1", "l2"))
        check_nonneg("sparsity_weight", self.sparsity_weight)
        if self.code_activation is None:
            self.code_activation = {"kl": "sigmoid", "l1": "relu", "topk": None}[self.sparsity]
        if self.sparsity == "topk" and not (isinstance(self.k, int) and 1 <= self.k <= self.latent_dim):
            raise ValueError(f"k must be an integer in [1, latent_dim={self.latent_dim}], got {self.k!r}")
        n_layers = len(self.hidden_dims) + 1
        if self.layer_weights is not None:
            self.layer_weights = tuple(float(w) for w in self.layer_weights)
            if len(self.layer_weights) not in (1, n_layers):
                raise ValueError(f"layer_weights needs 1 or {n_layers} entries (hidden layers + code)")
            if self.architecture == "conv" and len(self.layer_weights) > 1:
                raise ValueError("per-layer sparsity weights need architecture='mlp'; conv penalises the code only")
        if self.sparsity == "kl" and self.divergence == "kl":
            self._check_rates_are_probabilities()
        rates = self.target_rate if isinstance(self.target_rate, (tuple, list)) else (self.target_rate,)
        if any(not 0 < r < 1 for r in rates):
            raise ValueError(f"target_rate must lie strictly between 0 and 1, got {self.target_rate!r}")
        if isinstance(self.target_rate, list):
            self.target_rate = tuple(self.target_rate)


    def pca_unavailable(self) -> str | None:
        return "does not apply to a sparse code (a PCA projection is dense)"

    def _check_rates_are_probabilities(self) -> None:
        """KL(target || rate) reads a unit's mean activation as a firing probability, so every
        penalised layer needs activations in (0, 1): a ReLU unit averaging above 1 would be clipped
        to 1 - eps by kl_bernoulli and get no gradient at all, escaping the penalty."""
        hint = "or keep the activation and use divergence='l1' or 'l2' (no range needed)"
        if self.code_activation != "sigmoid":
            raise ValueError(
                f"sparsity='kl' with divergence='kl' needs the code's activations in (0, 1), but "
                f"code_activation={self.code_activation!r}; use code_activation='sigmoid' (the default "
                f"for sparsity='kl') {hint}"
            )
        weights = self.layer_weights or ()
        if len(weights) > 1 and any(w > 0 for w in weights[:-1]) and self.activation != "sigmoid":
            raise ValueError(
                f"sparsity='kl' with divergence='kl' on hidden layers (layer_weights={weights}) needs their "
                f"activations in (0, 1), but activation={self.activation!r}; use activation='sigmoid', give the "
                f"hidden layers weight 0, {hint}"
            )


def topk_mask(z: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest entries of each row, zero the rest; gradient flows only through kept ones.

    z: (B, K) -> (B, K)
    """
    idx = z.topk(k, dim=1).indices  # (B, k)
    mask = torch.zeros_like(z).scatter_(1, idx, 1.0)
    return z * mask


@register("sparse")
class SparseAE(AE):
    Config = SparseConfig

    def code(self, x):
        c = self.config
        if c.architecture == "mlp" and hasattr(self.encoder, "hidden"):
            z, hidden = self.encoder(x, return_hidden=True)
        else:
            z, hidden = self.encoder(x), []
        if c.sparsity == "topk":
            z = topk_mask(z, c.k)
        return z, hidden

    def _layers(self, z, hidden):
        """(activations, target, weight) for each penalised layer."""
        c = self.config
        weights = c.layer_weights or (1.0,)
        acts = [z] if len(weights) == 1 else [*hidden, z]
        rates = c.target_rate if isinstance(c.target_rate, tuple) else (c.target_rate,) * len(acts)
        if len(rates) != len(acts):
            raise ValueError(f"target_rate has {len(rates)} entries for {len(acts)} penalised layers")
        return zip(acts, rates, weights)

    def penalties(self, x_in, z, hidden):
        c = self.config
        if c.sparsity == "topk":
            return {}, torch.zeros((), device=z.device)
        if c.sparsity == "l1":
            s = z.abs().sum(dim=1)  # (B,)
        else:  # batch-level rate divergence, shared by every sample of the batch
            total = sum(w * losses.sparsity_divergence(a.mean(dim=0), r, c.divergence) for a, r, w in self._layers(z, hidden))
            s = total.expand(z.shape[0])
        return {"sparsity": s}, c.sparsity_weight * s
