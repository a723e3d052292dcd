"""Regularised autoencoder, RAE-L2 (Ghosh et al. 2020): a deterministic autoencoder with a
penalty on the size of the code (1/2 |z|^2) and an L2 penalty on the decoder's weights, for a
smooth decoder; and, since nothing makes the codes follow a known prior, an ex-post density: a
Gaussian mixture fitted to the training codes after training, from which new codes are drawn and
decoded (the paper uses 10 full-covariance components).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .._registry import register
from .ae import AE, AEConfig
from .base import check_nonneg, option


@dataclass
class RAEConfig(AEConfig):
    """loss = recon + code_weight * |z|^2 / 2 + decoder_weight * |decoder weights|^2; then a
    ``n_components`` Gaussian mixture on the training codes for sampling."""

    code_weight: float = option(0.01, "weight of the code penalty |z|^2 / 2")
    decoder_weight: float = option(1e-4, "weight of the L2 penalty on the decoder's parameters")
    n_components: int = option(10, "components of the Gaussian mixture fitted to the codes for sampling")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_nonneg("code_weight", self.code_weight)
        check_nonneg("decoder_weight", self.decoder_weight)
        if isinstance(self.n_components, bool) or not isinstance(self.n_components, int) or self.n_components < 1:
            raise ValueError(f"n_components must be a positive integer, got {self.n_components!r}")


@register("rae")
class RAE(AE):
    """Deterministic autoencoder with code and decoder penalties; samples from a Gaussian mixture
    fitted to its codes after training."""

    Config = RAEConfig
    generative = True

    def __init__(self, config: RAEConfig, encoder=None, decoder=None):
        super().__init__(config, encoder, decoder)
        k, c = config.latent_dim, config.n_components
        # the ex-post density, fitted in on_train_end; until then one standard normal component
        self.register_buffer("gmm_weights", torch.eye(1, c).squeeze(0))  # (C,)
        self.register_buffer("gmm_means", torch.zeros(c, k))  # (C, K)
        self.register_buffer("gmm_scale_tril", torch.eye(k).repeat(c, 1, 1))  # (C, K, K)

    def decoder_l2(self) -> torch.Tensor:
        """Sum of squares of the decoder's parameters (scalar)."""
        return sum(p.pow(2).sum() for p in self.decoder.parameters())

    def penalties(self, x_in, z, hidden):
        c = self.config
        code = 0.5 * z.pow(2).sum(dim=1)  # (B,)
        l2 = self.decoder_l2().expand(z.shape[0])  # (B,), a batch-level term repeated per row
        return {"code": code, "decoder_l2": l2}, c.code_weight * code + c.decoder_weight * l2

    @torch.no_grad()
    def fit_density(self, X, batch_size: int = 1024) -> None:
        """Fit the Gaussian mixture to the codes of X (full covariances, k-means++ start, seed 0,
        scikit-learn's EM); with fewer distinct codes than components, as many components as
        there are codes."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import GaussianMixture
        from threadpoolctl import threadpool_limits

        device = self.gmm_means.device
        codes = []
        for start in range(0, X.shape[0], batch_size):
            xb = X[start : start + batch_size]
            if isinstance(xb, np.ndarray):  # rows of a memory-mapped array
                xb = torch.as_tensor(np.asarray(xb, dtype=np.float32))
            codes.append(self.encode(xb.to(device)).double().cpu().numpy())
        Z = np.concatenate(codes)  # (n, K)
        n_fit = min(self.config.n_components, len(np.unique(Z, axis=0)))
        gmm = GaussianMixture(n_fit, covariance_type="full", reg_covar=1e-6 * max(float(Z.var(0).mean()), 1e-12),
                              init_params="k-means++", random_state=0, max_iter=200)
        # numpy/BLAS threads as many as torch's (aekit's thread policy): on a busy 2-core machine
        # BLAS's default of every core made this fit 8x slower (20 s vs 2.7 s for 10,000 codes)
        with warnings.catch_warnings(), threadpool_limits(torch.get_num_threads()):
            # a mixture that has not fully converged still samples sensibly; it is not an error here
            warnings.simplefilter("ignore", ConvergenceWarning)
            gmm.fit(Z)
        c = self.config.n_components
        weights = np.zeros(c)
        weights[:n_fit] = gmm.weights_
        means = np.zeros((c, Z.shape[1]))
        means[:n_fit] = gmm.means_
        tril = np.tile(np.eye(Z.shape[1]), (c, 1, 1))
        tril[:n_fit] = np.linalg.cholesky(gmm.covariances_)
        for buf, value in ((self.gmm_weights, weights), (self.gmm_means, means), (self.gmm_scale_tril, tril)):
            buf.copy_(torch.as_tensor(value, dtype=buf.dtype))

    def on_train_end(self, X, y=None) -> None:
        was = self.training
        self.eval()
        self.fit_density(X)
        self.train(was)

    @torch.no_grad()
    def sample_codes(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws from the fitted Gaussian mixture: (n, latent_dim)."""
        comp = torch.multinomial(self.gmm_weights, n, replacement=True, generator=generator)  # (n,)
        eps = torch.randn((n, self.config.latent_dim), generator=generator, device=self.gmm_means.device)  # (n, K)
        return self.gmm_means[comp] + (self.gmm_scale_tril[comp] @ eps[:, :, None]).squeeze(2)

    @torch.no_grad()
    def sample(self, n: int, y=None, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode n codes drawn from the fitted Gaussian mixture: (n, *input_shape), in data space."""
        return self.decode(self.sample_codes(n, generator=generator))
