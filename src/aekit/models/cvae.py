"""Conditional VAE (Sohn et al. 2015): one-hot labels feed both encoder and decoder.

Sampling. Even with y given to both networks, the encoder keeps much of the class in z (on
MNIST a linear probe reads the class from the posterior means 63% of the time), so a class's
codes fill only part of N(0, I) and decoding prior draws under label y often gives another
class. After training, ``on_train_end`` therefore fits one full-covariance Gaussian per class to
the posterior means of the training data (ex-post density estimation, Ghosh et al. 2020; the
VQ-VAE fits its prior the same way), and ``sample(n, y)`` decodes draws from class y's Gaussian
(``sample_codes="fitted"``, the default) or from N(0, I) (``"prior"``). The ELBO, and every score
and likelihood computed from it, keep the N(0, I) prior the model was trained with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._registry import register
from .base import check_choice, one_hot, option
from .vae import VAE, VAEConfig

_COV_RIDGE = 1e-3  # added to each class's code covariance (a class with fewer samples than dims stays sampleable)


@dataclass
class CVAEConfig(VAEConfig):
    n_classes: int = option(10, "number of classes of the labels y", from_data=True)
    sample_codes: str = option(
        "fitted", "codes sample() decodes: fitted (a Gaussian per class fitted to the training codes) or prior (N(0, I))"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.n_classes, bool) or not isinstance(self.n_classes, int) or self.n_classes < 2:
            raise ValueError(f"n_classes must be an integer >= 2, got {self.n_classes!r}")
        check_choice("sample_codes", self.sample_codes, ("fitted", "prior"))


@register("cvae")
class CVAE(VAE):
    """p(x|z, y) q(z|x, y) with y one-hot. ``sample(n, y)`` draws from class y (an int or n labels).

    Buffers ``code_mean`` (n_classes, K) and ``code_scale_tril`` (n_classes, K, K): each class's
    fitted code Gaussian N(mean, L L^T); N(0, I) until ``on_train_end`` (or ``fit_code_prior``) runs.
    """

    Config = CVAEConfig
    conditional = True

    def __init__(self, config: CVAEConfig, encoder=None, decoder=None):
        super().__init__(config, encoder, decoder)
        k, n = config.latent_dim, config.n_classes
        self.register_buffer("code_mean", torch.zeros(n, k))
        self.register_buffer("code_scale_tril", torch.eye(k).expand(n, k, k).clone())

    @property
    def cond_dim(self) -> int:  # type: ignore[override]
        return self.config.n_classes

    def condition(self, y) -> torch.Tensor:
        return one_hot(y, self.config.n_classes)

    @torch.no_grad()
    def fit_code_prior(self, X, y, batch_size: int = 1024) -> None:
        """Fit each class's Gaussian to the posterior means of (X, y): mean and full covariance
        (plus a small ridge); classes absent from y keep N(0, I)."""
        device = self.code_mean.device
        k = self.config.latent_dim
        y = torch.as_tensor(np.asarray(y) if not torch.is_tensor(y) else y).long()
        codes = []
        for start in range(0, len(y), batch_size):
            xb = X[start : start + batch_size]
            if isinstance(xb, np.ndarray):  # rows of a memory-mapped array
                xb = torch.as_tensor(np.asarray(xb, dtype=np.float32))
            codes.append(self.posterior(xb.to(device), y[start : start + batch_size].to(device))[0].double())
        Z = torch.cat(codes)  # (N, K)
        y = y.to(device)
        eye = torch.eye(k, dtype=Z.dtype, device=device)
        for c in range(self.config.n_classes):
            Zc = Z[y == c]
            if len(Zc) == 0:
                continue
            mean = Zc.mean(0)
            cov = (Zc - mean).T @ (Zc - mean) / max(len(Zc) - 1, 1) + _COV_RIDGE * eye  # (K, K)
            self.code_mean[c] = mean.to(self.code_mean.dtype)
            self.code_scale_tril[c] = torch.linalg.cholesky(cov).to(self.code_scale_tril.dtype)

    def on_train_end(self, X, y=None) -> None:
        if y is None:
            return
        was = self.training
        self.eval()
        self.fit_code_prior(X, y)
        self.train(was)

    @torch.no_grad()
    def sample(self, n, y=None, *, generator=None):
        """Decoder means of n codes drawn for labels y: from each label's fitted code Gaussian
        (``sample_codes="fitted"``) or from N(0, I) (``"prior"``); (n, *input_shape)."""
        if y is None:
            raise ValueError("a conditional VAE samples per class: pass y (one class index, or n of them)")
        y = torch.as_tensor(y)
        y = y.expand(n) if y.ndim == 0 else y
        if y.shape != (n,):
            raise ValueError(f"y must be one label or {n} labels, got shape {tuple(y.shape)}")
        one_hot(y, self.config.n_classes)  # checks the labels
        device = self.code_mean.device
        eps = torch.randn((n, self.config.latent_dim), generator=generator, device=device)  # (n, K)
        y = y.long().to(device)
        if self.config.sample_codes == "prior":
            z = eps
        else:
            z = self.code_mean[y] + (self.code_scale_tril[y] @ eps.unsqueeze(-1)).squeeze(-1)  # (n, K)
        return self.decode(z, y)
