"""A model's decoder as a chain of dense operations (linear layers, activations, column slices),
so that it can run outside PyTorch: the latent explorer runs it in JavaScript.

The chain is read off the model, never off its family's name: ``model.decode`` is run once with
a forward hook on every leaf module, and the modules it called, in order, with the tensors that
flowed between them, give the steps; what happens between two modules must be "nothing" or
"keep some columns" (a Gaussian head's mean), the decoder's input may carry a one-hot condition
after the code, and its output may pass through a sigmoid (Bernoulli logits). The chain found is
then checked against ``model.decode`` on fresh codes; a decoder it cannot express (convolutions,
normalisation layers, anything else) raises :class:`UnsupportedDecoder`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["ACTIVATIONS", "DenseChain", "UnsupportedDecoder", "activation", "dense_chain"]


class UnsupportedDecoder(ValueError):
    """The decoder does something a dense chain cannot express."""


def _gelu(x: np.ndarray, approximate: str) -> np.ndarray:
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


def _softplus(x: np.ndarray, beta: float, threshold: float) -> np.ndarray:
    return np.where(x * beta > threshold, x, np.log1p(np.exp(np.minimum(x * beta, threshold))) / beta)


# name -> f(x, **params) in float64, the same functions as torch's modules (and the page's JavaScript)
ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "leaky_relu": lambda x, negative_slope=0.01: np.where(x > 0, x, negative_slope * x),
    "elu": lambda x, alpha=1.0: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0))),
    "gelu": lambda x, approximate="none": _gelu(x, approximate),
    "silu": lambda x: x / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "softplus": lambda x, beta=1.0, threshold=20.0: _softplus(x, beta, threshold),
}


def activation(name: str, x, **params) -> np.ndarray:
    """Activation ``name`` (a key of :data:`ACTIVATIONS`) of x in float64."""
    return ACTIVATIONS[name](np.asarray(x, dtype=np.float64), **params)


def _activation_step(module: nn.Module) -> dict[str, Any] | None:
    """The step of an activation module (None for a module that is not one)."""
    kinds = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.SiLU: "silu"}
    for cls, name in kinds.items():
        if type(module) is cls:
            return {"op": "act", "name": name}
    if type(module) is nn.LeakyReLU:
        return {"op": "act", "name": "leaky_relu", "negative_slope": float(module.negative_slope)}
    if type(module) is nn.ELU:
        return {"op": "act", "name": "elu", "alpha": float(module.alpha)}
    if type(module) is nn.GELU:
        return {"op": "act", "name": "gelu", "approximate": str(module.approximate)}
    if type(module) is nn.Softplus:
        return {"op": "act", "name": "softplus", "beta": float(module.beta), "threshold": float(module.threshold)}
    return None


@dataclass
class DenseChain:
    """A decoder as dense steps on one flat vector: the code (latent_dim) followed by a one-hot
    class of size ``cond_dim`` (0 when unconditional), through ``steps`` (``linear`` with
    ``weight`` (out, in) and ``bias`` (out,) float32; ``act`` with its name and parameters;
    ``slice`` keeping columns [start, stop)), then ``output`` ("identity" or "sigmoid").
    ``out_dim`` values come out, in the model's flattened layout (before any de-standardisation)."""

    latent_dim: int
    cond_dim: int
    out_dim: int
    output: str
    steps: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, z, classes=None) -> np.ndarray:
        """The chain in float64 numpy: z (n, latent_dim), classes (n,) ints when conditional -> (n, out_dim)."""
        h = np.asarray(z, dtype=np.float64).reshape(-1, self.latent_dim)
        if self.cond_dim:
            onehot = np.zeros((len(h), self.cond_dim))  # (n, C)
            onehot[np.arange(len(h)), np.asarray(classes, dtype=np.int64)] = 1.0
            h = np.concatenate([h, onehot], axis=1)  # (n, K + C)
        for step in self.steps:
            if step["op"] == "linear":
                h = h @ step["weight"].astype(np.float64).T + step["bias"].astype(np.float64)  # (n, out)
            elif step["op"] == "act":
                params = {k: v for k, v in step.items() if k not in ("op", "name")}
                h = activation(step["name"], h, **params)
            else:  # slice
                h = h[:, step["start"] : step["stop"]]
        return 1 / (1 + np.exp(-h)) if self.output == "sigmoid" else h

    @property
    def n_params(self) -> int:
        return sum(s["weight"].size + s["bias"].size for s in self.steps if s["op"] == "linear")


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, rtol=1e-6, atol=1e-7)


def _between(prev: torch.Tensor, x: torch.Tensor) -> dict[str, Any] | None:
    """The step taking the previous module's output to this module's input: None for none, a
    slice of columns, else UnsupportedDecoder."""
    if _same(prev, x):
        return None
    n, w = prev.shape[1], x.shape[1]
    if w < n:
        for start in (0, n - w):
            if _same(prev[:, start : start + w], x):
                return {"op": "slice", "start": start, "stop": start + w}
    raise UnsupportedDecoder(f"between two layers the decoder turns {n} values into {w} in a way a dense chain "
                             "does not express")


def _leaves(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if not list(m.children())]


@torch.no_grad()
def dense_chain(model: nn.Module, n_classes: int = 0, *, check_samples: int = 64, seed: int = 0) -> DenseChain:
    """The dense chain computing ``model.decode(z, y)`` (see the module's docstring).

    ``n_classes``: the number of classes a conditional model decodes with (labels 0..n-1), 0 for
    an unconditional one. Raises :class:`UnsupportedDecoder` when the decoder is not a dense chain
    or the chain found does not reproduce ``model.decode`` (max abs difference over
    ``check_samples`` random codes above 1e-4 of the output's scale).
    """
    was_training = model.training
    model.eval()
    try:
        return _trace(model, n_classes, check_samples, seed)
    finally:
        model.train(was_training)


def _trace(model: nn.Module, n_classes: int, check_samples: int, seed: int) -> DenseChain:
    k = int(model.config.latent_dim)
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    n = max(8, 2 * n_classes)
    z = torch.randn((n, k), generator=gen).to(device)  # (n, K)
    y = torch.arange(n, device=device) % n_classes if n_classes else None
    calls: list[tuple[nn.Module, torch.Tensor, torch.Tensor]] = []

    def hook(module, inputs, output):
        if len(inputs) != 1 or not isinstance(output, torch.Tensor):
            raise UnsupportedDecoder(f"{type(module).__name__} takes {len(inputs)} inputs")
        calls.append((module, inputs[0].reshape(n, -1).float(), output.reshape(n, -1).float()))

    handles = [m.register_forward_hook(hook) for m in _leaves(model)]
    try:
        out = model.decode(z, y).reshape(n, -1).float()  # (n, D)
    finally:
        for h in handles:
            h.remove()
    if not calls:
        raise UnsupportedDecoder("the decoder calls no module")

    first_in = calls[0][1]
    cond_dim = first_in.shape[1] - k
    if cond_dim == 0:
        if not _same(first_in, z):
            raise UnsupportedDecoder("the decoder's first layer does not read the code")
    else:
        condition = torch.nn.functional.one_hot(y, cond_dim).float() if n_classes else None
        if cond_dim < 0 or condition is None or not (_same(first_in[:, :k], z) and _same(first_in[:, k:], condition)):
            raise UnsupportedDecoder("the decoder's first layer reads something besides the code and a one-hot class")

    steps: list[dict[str, Any]] = []
    prev = first_in
    for module, x, y_out in calls:
        between = _between(prev, x)
        if between is not None:
            steps.append(between)
        if isinstance(module, nn.Linear) and type(module) is nn.Linear:
            bias = module.bias if module.bias is not None else torch.zeros(module.out_features)
            steps.append({"op": "linear", "weight": module.weight.detach().cpu().numpy().astype(np.float32),
                          "bias": bias.detach().cpu().numpy().astype(np.float32)})
        elif type(module) is nn.Identity:
            pass
        else:
            step = _activation_step(module)
            if step is None:
                raise UnsupportedDecoder(f"the decoder uses {type(module).__name__}, which a dense chain does not express")
            steps.append(step)
        prev = y_out
    if _same(prev, out):
        output = "identity"
    elif _same(torch.sigmoid(prev), out):
        output = "sigmoid"
    else:
        raise UnsupportedDecoder("the decoder's output is neither its last layer's nor a sigmoid of it")
    chain = DenseChain(latent_dim=k, cond_dim=cond_dim, out_dim=int(out.shape[1]), output=output, steps=steps)
    _check(model, chain, n_classes, check_samples, gen, device)
    return chain


def _check(model, chain: DenseChain, n_classes: int, n: int, gen: torch.Generator, device) -> None:
    """The chain against ``model.decode`` on fresh codes (wider than the prior, so that the
    saturating parts are covered too)."""
    z = 3 * torch.randn((n, chain.latent_dim), generator=gen)  # (n, K)
    y = torch.arange(n) % n_classes if n_classes else None
    expected = model.decode(z.to(device), None if y is None else y.to(device)).reshape(n, -1).double().cpu().numpy()
    got = chain(z.numpy(), None if y is None else y.numpy())
    scale = max(1.0, float(np.abs(expected).max()))
    err = float(np.abs(got - expected).max())
    if not err <= 1e-4 * scale:
        raise UnsupportedDecoder(f"the dense chain differs from the decoder by {err:.3g}")
