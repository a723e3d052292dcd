"""Hierarchical VAE with a top-down (ladder) inference network (Sønderby et al. 2016).

Stochastic layers z_1 (bottom) ... z_L (top). Generative model:
p(z_L) = N(0, I), p(z_l | z_{l+1}) Gaussian from a small MLP, p(x | z_1) from the decoder.
Inference: a bottom-up deterministic pass gives, per level, a Gaussian estimate (mu_hat, var_hat);
going down, q(z_l | x, z_{l+1}) merges it with the prior p(z_l | z_{l+1}) by precision weighting.
KL is analytic at every level (given the sampled z_{l+1}) and reported per level.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .._registry import register
from ..nn import MLP, build_decoder, build_encoder
from .base import Autoencoder, _int_tuple, option, to_data_space
from .vae import VAE, Level, VAEConfig, reparameterise, repeat_samples


@dataclass
class HVAEConfig(VAEConfig):
    """latent_dim is the top layer's size (what ``encode`` returns); lower_latent_dims are the
    stochastic layers below it, bottom first. hidden_dims shape the x <-> z_1 networks; the
    deterministic size between levels is hidden_dims[-1] (``level_dim`` when hidden_dims is empty)."""

    lower_latent_dims: tuple[int, ...] = option((32,), "sizes of the stochastic layers below the top one, bottom first")
    level_dim: int = option(128, "deterministic width between levels when hidden_dims is empty")
    skip: bool = option(False, "skip paths: the decoder p(x | z_1, ..., z_L) sees every stochastic layer, not z_1 only")
    # Without a floor the lower layers of a ladder VAE collapse onto their prior early in training
    # (KL_1 -> 0 on digits in our runs); 0.25 nats per dimension keeps every level in use.
    free_bits: float | tuple[float, ...] = option(
        0.25, "nats per latent dimension below which the KL is not pushed down (one number, or one per stochastic layer, bottom first)"
    )

    @property
    def n_levels(self) -> int:
        return len(self.lower_latent_dims) + 1

    def __post_init__(self) -> None:
        self.lower_latent_dims = _int_tuple("lower_latent_dims", self.lower_latent_dims)
        if not self.lower_latent_dims or min(self.lower_latent_dims) < 1:
            raise ValueError("lower_latent_dims needs at least one positive size (a hierarchy has >= 2 layers)")
        super().__post_init__()

    @property
    def latent_dims(self) -> tuple[int, ...]:
        return (*self.lower_latent_dims, self.latent_dim)


def _merge(mu_a, logvar_a, mu_b, logvar_b):
    """Product of two diagonal Gaussians (precision weighting), renormalised: (mu, logvar)."""
    prec_a, prec_b = torch.exp(-logvar_a), torch.exp(-logvar_b)
    var = 1.0 / (prec_a + prec_b)
    return var * (mu_a * prec_a + mu_b * prec_b), torch.log(var)


@register("hvae")
class HVAE(VAE):
    """Ladder VAE: ``posterior_levels`` runs the bottom-up pass once and samples top-down, merging
    each layer's bottom-up estimate with its prior; the ELBO, the importance weights and the loss
    are VAE's, over these levels. ``encode`` is the top layer's posterior mean; ``reconstruct``
    decodes the posterior mean path; ``decode`` walks a top-layer code down the prior means."""

    Config = HVAEConfig
    hierarchical = True

    def __init__(self, config: HVAEConfig, encoder=None, decoder=None):
        Autoencoder.__init__(self, config)  # VAE.__init__ builds a one-level network
        c = config
        dims = c.latent_dims
        h = c.hidden_dims[-1] if c.hidden_dims else c.level_dim
        act, bn = c.activation, c.batch_norm
        # bottom-up: x -> d_1 -> d_2 ... ; each d_l gives (mu_hat_l, logvar_hat_l)
        self.up = nn.ModuleList(
            [encoder or build_encoder(c.architecture, c.input_shape, c.hidden_dims, h, act, out_activation=act, batch_norm=bn)]
            + [MLP(h, (), h, act, out_activation=act, batch_norm=bn) for _ in dims[1:]]
        )
        self.q_heads = nn.ModuleList(nn.Linear(h, 2 * d) for d in dims)
        # top-down priors p(z_l | z_{l+1}) for l < L
        self.p_nets = nn.ModuleList(MLP(dims[i + 1], (h,), 2 * dims[i], act, batch_norm=bn) for i in range(len(dims) - 1))
        dec_in = sum(dims) if c.skip else dims[0]
        self.decoder = decoder or build_decoder(c.architecture, c.input_shape, c.hidden_dims, dec_in, act, batch_norm=bn)
        self._init_likelihood()
        self.register_buffer("epochs_done", torch.zeros(()))

    def _bottom_up(self, x):
        """Bottom-up Gaussian estimates per level, bottom first: [(mu_hat, logvar_hat) (B, d_l)]."""
        d, est = x, []
        for up, head in zip(self.up, self.q_heads):
            d = up(d)
            est.append(head(d).chunk(2, dim=1))
        return est

    def posterior_levels(self, x, y=None, *, n_samples=1, generator=None, sample=True):
        est = self._bottom_up(x)  # once per data point, whatever n_samples
        L = len(est)
        levels: list = [None] * L
        for lvl in range(L - 1, -1, -1):
            mu_q, logvar_q = (repeat_samples(t, n_samples) for t in est[lvl])  # (S * B, d_l)
            mu_p = logvar_p = None  # the top layer's prior is N(0, I)
            if lvl < L - 1:
                mu_p, logvar_p = self.p_nets[lvl](levels[lvl + 1].z).chunk(2, dim=1)
                mu_q, logvar_q = _merge(mu_q, logvar_q, mu_p, logvar_p)
            logvar_q = self._floor_logvar(logvar_q)
            z = reparameterise(mu_q, logvar_q, n_samples, generator) if sample else mu_q
            levels[lvl] = Level(z, mu_q, logvar_q, mu_p, logvar_p)
        return levels

    def posterior(self, x, y=None):
        """q(z_L | x) for the top layer: the bottom-up estimate (its mean is the code), (B, K) each."""
        mu, logvar = self._bottom_up(x)[-1]
        return mu, self._floor_logvar(logvar)

    def _decode_layers(self, zs: list[torch.Tensor]) -> torch.Tensor:
        """Decoder output from one value per stochastic layer (bottom first): from z_1, or with
        skip paths from all of them."""
        return self.decoder(torch.cat(zs, dim=1) if self.config.skip else zs[0])

    def decoder_output_from(self, levels, y=None):
        return self._decode_layers([level.z for level in levels])

    def decoder_output(self, z, y=None):
        """Decode a top-layer code (B, latent_dim), walking down through the prior means."""
        zs = [z]
        for p_net in reversed(self.p_nets):
            zs.insert(0, p_net(zs[0]).chunk(2, dim=1)[0])
        return self._decode_layers(zs)

    @torch.no_grad()
    def sample(self, n, y=None, *, generator=None):
        """Ancestral sampling z_L ~ N(0, I), z_l ~ p(z_l | z_{l+1}), x-mean from p(x | z_1) (or
        p(x | z_1, ..., z_L) with skip paths)."""
        device = next(self.parameters()).device
        zs = [torch.randn((n, self.config.latent_dim), generator=generator, device=device)]
        for p_net in reversed(self.p_nets):
            mu, logvar = p_net(zs[0]).chunk(2, dim=1)
            eps = torch.randn(mu.shape, generator=generator, device=device)
            zs.insert(0, mu + torch.exp(0.5 * logvar) * eps)
        return to_data_space(self.recon_kind, self._decode_layers(zs))
