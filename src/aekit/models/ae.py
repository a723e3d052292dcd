"""Undercomplete / stacked autoencoder (MSE or BCE reconstruction), by default on a PCA base.

With ``linear_part="pca"`` the code and the reconstruction each have a linear part that starts
as PCA and a network that starts at zero and is added to it:

    z     = W^T (x - m) + f(x)           # (B, K)
    x_hat = m + W z + g(z)               # (B, D)

m and W (orthonormal columns) are the mean and the top-K principal axes of the training data, set
when training starts; the output layers of the networks f and g start at zero. Training therefore
starts exactly at PCA's reconstruction error, the best any linear code of size K reaches, and the
networks learn what PCA misses; with early stopping, the training loop returns the weights with
the lowest validation error, the PCA start included. (A zero-initialised residual branch, as in
Goyal et al. 2017 and Zhang et al. 2019's Fixup; the linear autoencoder = PCA result is Baldi &
Hornik 1989.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from .._registry import register
from ..nn import build_decoder, build_encoder, flat_dim, is_identity, zero_output
from .base import AEOutput, Autoencoder, ModelConfig, check_choice, option, reconstruction, to_data_space

LINEAR_PARTS = ("auto", "pca", "none")


@dataclass
class AEConfig(ModelConfig):
    """loss: ``"mse"`` or ``"bce"`` (inputs in [0, 1]; the decoder then outputs logits).
    code_activation: activation on the code layer (None = linear code).
    linear_part: ``"pca"`` (a linear path set to PCA when training starts, the networks added to
    it starting at zero), ``"none"`` (the networks alone) or ``"auto"`` (``"pca"`` where it
    applies: MSE loss, a linear code, aekit's own networks, a family that is not generative). The AE's estimator
    early-stops by default (``FIT_DEFAULTS``), so training returns the best weights on held-out
    data, the PCA start included."""

    loss: str = option("mse", "reconstruction loss: mse, or bce for data in [0, 1]")
    code_activation: str | None = option(None, "activation on the code layer (None = linear code)")
    linear_part: str = option(
        "auto",
        "pca: code and reconstruction start as PCA of the training data and the networks, starting at zero, "
        "add to them (training starts at PCA's error); none: the networks alone; auto: pca where it applies "
        "(loss mse, linear code, aekit's own networks, not a generative family)",
    )

    FILE_DEFAULTS: ClassVar[dict] = {"linear_part": "none"}  # files from before the PCA base
    # early stopping keeps the weights with the lowest validation error, the PCA start included
    FIT_DEFAULTS: ClassVar[dict] = {"early_stopping": True}

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("loss", self.loss, ("mse", "bce"))
        check_choice("linear_part", self.linear_part, LINEAR_PARTS)
        reason = self.pca_unavailable()
        if self.linear_part == "pca" and reason:
            raise ValueError(f"linear_part='pca' {reason}; use linear_part='none' (or 'auto')")

    def pca_unavailable(self) -> str | None:
        """Why a PCA linear part cannot be used with these settings (None when it can)."""
        if self.loss != "mse":
            return "needs loss='mse' (PCA is the least-squares linear code)"
        if not is_identity(self.code_activation):
            return f"needs a linear code, but code_activation={self.code_activation!r}"
        return None

    def probability_setting(self) -> str | None:
        return "loss='bce'" if self.loss == "bce" else None


@register("ae")
class AE(Autoencoder):
    """Deterministic autoencoder: x -> z = f(x) -> g(z). Subclasses add noise or penalties
    through ``corrupt`` and ``penalties``; the forward pass is written once, here.

    ``pca_path`` says whether the code and reconstruction have a PCA linear part (see the module
    docstring); it is resolved from ``config.linear_part`` ("auto" uses it unless the config
    rules it out, your own encoder/decoder modules are passed in, or the family is generative).
    The part lives in ``code`` and ``decoder_output``: a subclass adds its terms through
    ``penalties`` or by calling ``super().forward`` (as aae and wae do), never by calling
    ``self.encoder``/``self.decoder`` itself.
    """

    Config = AEConfig

    def __init__(self, config: AEConfig, encoder=None, decoder=None):
        super().__init__(config)
        c = config
        own_networks = encoder is None and decoder is None
        self.encoder = encoder or build_encoder(
            c.architecture, c.input_shape, c.hidden_dims, c.latent_dim, c.activation, out_activation=c.code_activation
        )
        self.decoder = decoder or build_decoder(c.architecture, c.input_shape, c.hidden_dims, c.latent_dim, c.activation)
        # auto: not for a generative family, whose codes are shaped to a prior or a density, which
        # PCA's coordinates (scaled by the data's variances) are not
        self.pca_path = c.linear_part == "pca" or (
            c.linear_part == "auto" and own_networks and not self.generative and not c.pca_unavailable()
        )
        if self.pca_path:
            self.needs_data_init()
            d = flat_dim(c.input_shape)
            self.register_buffer("pca_mean", torch.zeros(d))  # (D,)
            self.pca_axes = nn.Parameter(nn.init.orthogonal_(torch.empty(d, c.latent_dim)))  # (D, K)

    # -- pieces subclasses override -------------------------------------------------
    def corrupt(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Input actually fed to the encoder during training (identity here)."""
        return x

    def code(self, x: torch.Tensor):
        """Code for x and the hidden activations it went through: ((B, K), [(B, H_k)...])."""
        z = self.encoder(x)  # (B, K)
        if self.pca_path:
            z = z + (x.flatten(1) - self.pca_mean) @ self.pca_axes  # (B, K)
        return z, []

    def decoder_output(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's raw output (logits for BCE), (B, *input_shape)."""
        out = self.decoder(z)  # (B, *input_shape)
        if self.pca_path:
            out = out + (self.pca_mean + z @ self.pca_axes.T).reshape(out.shape)
        return out

    def penalties(self, x_in: torch.Tensor, z: torch.Tensor, hidden: list) -> tuple[dict, torch.Tensor]:
        """Named unweighted per-sample penalties, and their weighted sum (B,)."""
        return {}, torch.zeros((), device=z.device)

    def init_from_data(self, X: torch.Tensor) -> None:
        """Data-dependent initialisation from training rows X (n, *input_shape): PCA's mean and
        axes for the linear part, and the networks' output layers set to zero."""
        if self.pca_path:
            mean, axes = principal_axes(X, self.config.latent_dim)
            with torch.no_grad():
                self.pca_mean.copy_(mean)
                self.pca_axes.copy_(axes)
            zero_output(self.encoder)
            zero_output(self.decoder)

    # -- public face ----------------------------------------------------------------
    def encode(self, x, y=None):
        return self.code(x)[0]

    def decode(self, z, y=None):
        return to_data_space(self.config.loss, self.decoder_output(z))

    def forward(self, x, y=None, *, generator=None) -> AEOutput:
        x_in = self.corrupt(x, generator) if self.training else x
        return self.output(x, x_in)

    def output(self, x: torch.Tensor, x_in: torch.Tensor) -> AEOutput:
        """Loss and parts for encoder input x_in (B, ...) against the clean target x."""
        z, hidden = self.code(x_in)  # (B, K)
        recon, x_hat = reconstruction(self.config.loss, self.decoder_output(z), x)  # clean target
        parts, penalty = self.penalties(x_in, z, hidden)
        loss = (recon + penalty).mean()
        return AEOutput(loss=loss, parts={"recon": recon, **parts}, x_hat=x_hat, z=z)

    def needs_data_init(self) -> None:
        """Declare that ``init_from_data`` must run when training starts: adds the
        ``data_initialised`` flag (a buffer, so a loaded or resumed model is not set again)."""
        if not hasattr(self, "data_initialised"):
            self.register_buffer("data_initialised", torch.zeros((), dtype=torch.bool))

    def on_train_start(self, X: torch.Tensor, y: torch.Tensor | None = None) -> None:
        if hasattr(self, "data_initialised") and not bool(self.data_initialised):
            self.init_from_data(X)
            self.data_initialised.fill_(True)


# Above this many features the axes come from a Gram matrix of a row sample instead of the full
# D x D covariance (which would need D^2 memory).
_COVARIANCE_MAX_DIM = 4096
_GRAM_ROWS = 2048


@torch.no_grad()
def principal_axes(X: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and top-k principal axes (D, k), orthonormal columns, of the rows of X (n, ...).

    Up to 4096 features: eigenvectors of the covariance of every row (accumulated in float64,
    in chunks). More: the axes of 2048 evenly spaced rows, from their Gram matrix. Columns beyond
    the rank found are zero.
    """
    Xf = X.reshape(len(X), -1)  # (n, D)
    n, d = Xf.shape
    mean = torch.zeros(d, dtype=torch.float64, device=Xf.device)
    for chunk in Xf.split(8192):
        mean += chunk.to(torch.float64).sum(0)
    mean /= n
    m32 = mean.to(Xf.dtype)
    if d <= _COVARIANCE_MAX_DIM:
        cov = torch.zeros(d, d, dtype=torch.float64, device=Xf.device)
        for chunk in Xf.split(8192):
            c = chunk - m32  # (b, D)
            cov += (c.T @ c).to(torch.float64)
        _, vecs = torch.linalg.eigh(cov)  # ascending eigenvalues
        axes = vecs.flip(1)[:, :k]  # (D, min(k, D))
    else:  # Gram matrix of a row sample, a block of columns at a time (memory O(m^2 + m * block))
        rows = Xf[torch.linspace(0, n - 1, min(n, _GRAM_ROWS), device=Xf.device).long()]  # (m, D)
        blocks = [slice(j, j + _COVARIANCE_MAX_DIM) for j in range(0, d, _COVARIANCE_MAX_DIM)]
        gram = torch.zeros(len(rows), len(rows), dtype=torch.float64, device=Xf.device)  # (m, m)
        for b in blocks:
            c = (rows[:, b] - m32[b]).to(torch.float64)  # (m, block)
            gram += c @ c.T
        vals, u = torch.linalg.eigh(gram)  # ascending
        vals, u = vals.flip(0)[:k], u.flip(1)[:, :k]
        keep = vals > vals[0].clamp_min(1e-30) * 1e-10
        u = u[:, keep] / vals[keep].sqrt()  # (m, r)
        axes = torch.cat([(rows[:, b] - m32[b]).to(torch.float64).T @ u for b in blocks])  # (D, r), orthonormal
    out = torch.zeros(d, k, dtype=Xf.dtype, device=Xf.device)
    out[:, : axes.shape[1]] = axes.to(Xf.dtype)
    return mean.to(Xf.dtype), out
