"""Vector-quantised VAE (van den Oord et al. 2017).

The encoder gives M = latent_dim / embedding_dim vectors per sample; each snaps to its nearest
codebook entry, and the straight-through estimator carries the decoder's gradient to the encoder.
The codebook learns either by its own loss ||sg[z_e] - e||^2 or by exponential moving averages
(the paper's appendix), with dead entries restarted from encoder outputs. For generation, a prior
over code indices is fitted after training: an independent categorical distribution per position
(simple, and stated as such: it ignores dependencies between positions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .. import losses
from .._registry import register
from ..nn import build_decoder, build_encoder
from .base import AEOutput, Autoencoder, ModelConfig, check_choice, check_nonneg, option, reconstruction, to_data_space


@dataclass
class VQVAEConfig(ModelConfig):
    """codebook_size: K entries of size embedding_dim; latent_dim must be a multiple of
    embedding_dim. ema: update the codebook by moving averages (decay ema_decay) instead of a loss."""

    latent_dim: int = option(16, "size of the code: latent_dim / embedding_dim code vectors per sample")
    codebook_size: int = option(128, "number of codebook entries")
    embedding_dim: int = option(4, "size of one codebook entry (divides latent_dim)")
    commitment_weight: float = option(0.25, "weight of the commitment loss")
    ema: bool = option(True, "update the codebook by moving averages instead of a loss")
    ema_decay: float = option(0.99, "decay of the codebook moving averages")
    loss: str = option("mse", "reconstruction loss: mse, or bce for data in [0, 1]")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("loss", self.loss, ("mse", "bce"))
        check_nonneg("commitment_weight", self.commitment_weight)
        if not (isinstance(self.codebook_size, int) and self.codebook_size >= 2):
            raise ValueError(f"codebook_size must be an integer >= 2, got {self.codebook_size!r}")
        if not (isinstance(self.embedding_dim, int) and self.embedding_dim >= 1) or self.latent_dim % self.embedding_dim:
            raise ValueError(
                f"latent_dim ({self.latent_dim}) must be a multiple of embedding_dim ({self.embedding_dim!r})"
            )
        if not 0 < self.ema_decay < 1:
            raise ValueError(f"ema_decay must lie in (0, 1), got {self.ema_decay!r}")

    def probability_setting(self) -> str | None:
        return "loss='bce'" if self.loss == "bce" else None

    @property
    def n_positions(self) -> int:
        return self.latent_dim // self.embedding_dim


@register("vqvae")
class VQVAE(Autoencoder):
    Config = VQVAEConfig
    generative = True
    quantised = True

    def __init__(self, config: VQVAEConfig, encoder=None, decoder=None):
        super().__init__(config)
        c = config
        self.encoder = encoder or build_encoder(c.architecture, c.input_shape, c.hidden_dims, c.latent_dim, c.activation)
        self.decoder = decoder or build_decoder(c.architecture, c.input_shape, c.hidden_dims, c.latent_dim, c.activation)
        k, e = c.codebook_size, c.embedding_dim
        self.codebook = nn.Parameter(torch.randn(k, e) / k, requires_grad=not c.ema)
        self.register_buffer("ema_count", torch.ones(k))
        self.register_buffer("ema_sum", self.codebook.detach().clone())
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))
        self.register_buffer("prior_logits", torch.zeros(c.n_positions, k))  # fitted in on_train_end

    def _split(self, z_flat: torch.Tensor) -> torch.Tensor:
        return z_flat.reshape(z_flat.shape[0], self.config.n_positions, self.config.embedding_dim)  # (B, M, E)

    def quantize_indices(self, z_e: torch.Tensor) -> torch.Tensor:
        """Nearest codebook entry for each vector: (B, M, E) -> (B, M) indices."""
        flat = z_e.reshape(-1, z_e.shape[-1])  # (BM, E)
        cb = self.codebook
        d = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ cb.T + cb.pow(2).sum(1)  # (BM, K)
        return d.argmin(dim=1).reshape(z_e.shape[:2])

    def encode_indices(self, x: torch.Tensor) -> torch.Tensor:
        """Code indices (B, M)."""
        return self.quantize_indices(self._split(self.encoder(x)))

    def encode(self, x, y=None):
        """The quantised code, flattened: (B, latent_dim)."""
        return self.codebook[self.encode_indices(x)].flatten(1)

    def decode(self, z, y=None):
        return to_data_space(self.config.loss, self.decoder(z))

    def decode_indices(self, idx: torch.Tensor) -> torch.Tensor:
        return self.decode(self.codebook[idx].flatten(1))

    @torch.no_grad()
    def _ema_update(self, z_e: torch.Tensor, idx: torch.Tensor, generator) -> None:
        c = self.config
        flat = z_e.reshape(-1, c.embedding_dim)  # (BM, E)
        onehot = torch.nn.functional.one_hot(idx.reshape(-1), c.codebook_size).to(flat.dtype)  # (BM, K)
        self.ema_count.mul_(c.ema_decay).add_(onehot.sum(0), alpha=1 - c.ema_decay)
        self.ema_sum.mul_(c.ema_decay).add_(onehot.T @ flat, alpha=1 - c.ema_decay)
        n = self.ema_count.sum()
        count = (self.ema_count + 1e-5) / (n + c.codebook_size * 1e-5) * n  # Laplace smoothing
        self.codebook.copy_(self.ema_sum / count[:, None])
        dead = self.ema_count < 1e-3  # unused for ~ log(1e-3)/log(decay) steps
        if dead.any():
            self._restart(dead, flat, generator)

    @torch.no_grad()
    def _restart(self, which: torch.Tensor, flat: torch.Tensor, generator) -> None:
        """Move the selected codebook entries onto randomly chosen encoder outputs."""
        n = int(which.sum())
        pick = torch.randint(flat.shape[0], (n,), generator=generator, device=flat.device)
        self.codebook[which] = flat[pick]
        self.ema_sum[which] = flat[pick]
        self.ema_count[which] = 1.0

    def forward(self, x, y=None, *, generator=None) -> AEOutput:
        c = self.config
        z_e = self._split(self.encoder(x))  # (B, M, E)
        if self.training and not bool(self.initialised):  # data-dependent codebook start
            self._restart(torch.ones(c.codebook_size, dtype=torch.bool, device=x.device), z_e.detach().reshape(-1, c.embedding_dim), generator)
            self.initialised.fill_(True)
        idx = self.quantize_indices(z_e.detach())  # (B, M)
        z_q = self.codebook[idx]  # (B, M, E), the entries as they were when chosen
        if self.training and c.ema:
            self._ema_update(z_e.detach(), idx, generator)
        z_st = z_e + (z_q - z_e).detach()  # straight-through
        recon, x_hat = reconstruction(c.loss, self.decoder(z_st.flatten(1)), x)
        commitment = losses.mse(z_e, z_q.detach())  # (B,)
        parts = {"recon": recon, "commitment": commitment}
        loss = recon + c.commitment_weight * commitment
        if not c.ema:
            parts["codebook"] = losses.mse(z_q, z_e.detach())
            loss = loss + parts["codebook"]
        usage = torch.bincount(idx.reshape(-1), minlength=c.codebook_size).to(x.dtype) / idx.numel()  # (K,)
        perplexity = torch.exp(-torch.xlogy(usage, usage).sum())
        stats = {"perplexity": perplexity, "codebook_usage": (usage > 0).to(x.dtype).mean()}
        return AEOutput(loss=loss.mean(), parts=parts, x_hat=x_hat, z=z_q.flatten(1), stats=stats)

    @torch.no_grad()
    def fit_prior(self, X: torch.Tensor, batch_size: int = 1024) -> None:
        """Fit the per-position categorical prior over code indices on data X (add-one smoothing)."""
        c = self.config
        counts = torch.ones(c.n_positions, c.codebook_size, device=self.codebook.device)
        for start in range(0, X.shape[0], batch_size):
            xb = X[start : start + batch_size]
            if isinstance(xb, np.ndarray):  # rows of a memory-mapped array
                xb = torch.as_tensor(np.asarray(xb, dtype=np.float32))
            idx = self.encode_indices(xb.to(self.codebook.device))  # (b, M)
            counts.scatter_add_(1, idx.T, torch.ones_like(idx.T, dtype=counts.dtype))
        self.prior_logits.copy_(torch.log(counts / counts.sum(1, keepdim=True)))

    def on_train_end(self, X, y=None) -> None:
        was = self.training
        self.eval()
        self.fit_prior(X)
        self.train(was)

    @torch.no_grad()
    def sample(self, n: int, y=None, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw code indices from the fitted prior and decode them: (n, *input_shape)."""
        probs = self.prior_logits.softmax(dim=1)  # (M, K)
        idx = torch.multinomial(probs, n, replacement=True, generator=generator).T  # (n, M)
        return self.decode_indices(idx)
