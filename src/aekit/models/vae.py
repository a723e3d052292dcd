"""Variational autoencoder (Kingma & Welling 2014) with beta (Higgins et al. 2017), KL warm-up
(linear, or cyclical as in Fu et al. 2019), free bits (Kingma et al. 2016) and a floor on the
posterior variance. The loss is -ELBO in nats per sample (with beta = 1 and no warm-up)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from .. import losses
from .._registry import register
from ..nn import build_decoder, build_encoder
from .base import (
    AEOutput,
    Autoencoder,
    ModelConfig,
    check_choice,
    check_nonneg,
    decode_prior,
    option,
    reconstruction_loss,
    standard_normal,
    to_data_space,
)

_MIN_DECODER_VARIANCE = 1e-4  # floor on a learned Gaussian decoder variance


@dataclass
class VAEConfig(ModelConfig):
    """likelihood: ``"bernoulli"`` (data in [0, 1]; decoder gives logits) or ``"gaussian"``.
    gaussian_std: fixed decoder std; None learns one shared variance (the calibrated decoder of
    Rybkin et al. 2021, which balances reconstruction and KL by itself).
    kl_schedule ``"linear"`` ramps the KL weight from 0 to beta over kl_warmup_epochs;
    ``"cyclical"`` repeats that ramp every kl_cycle_epochs. free_bits: nats per latent dimension
    below which the KL is not pushed down. min_variance: floor on the encoder's variance."""

    beta: float = option(1.0, "weight of the KL term (beta-VAE)")
    likelihood: str = option(
        "bernoulli", "decoder distribution: bernoulli (data in [0, 1]) or gaussian; auto picks bernoulli when X "
        "lies in [0, 1], else gaussian with a learned variance", estimator_default="auto")
    gaussian_std: float | None = option(None, "fixed std of a gaussian decoder (None learns one shared variance)")
    kl_schedule: str = option("linear", "KL warm-up shape: linear, or cyclical (repeats every kl_cycle_epochs)")
    kl_warmup_epochs: float = option(0.0, "epochs over which the KL weight ramps from 0 to beta")
    kl_cycle_epochs: float = option(0.0, "cycle length in epochs for kl_schedule=cyclical")
    free_bits: float | tuple[float, ...] = option(
        0.0, "nats per latent dimension below which the KL is not pushed down (one number, or one per stochastic layer, bottom first)"
    )
    min_variance: float = option(0.0, "floor on the encoder's posterior variance")
    batch_norm: bool = option(False, "batch normalisation before every hidden activation of the networks")

    @property
    def n_levels(self) -> int:
        """Number of stochastic layers."""
        return 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("likelihood", self.likelihood, ("bernoulli", "gaussian"))
        check_choice("kl_schedule", self.kl_schedule, ("linear", "cyclical"))
        for name in ("beta", "kl_warmup_epochs", "kl_cycle_epochs", "min_variance"):
            check_nonneg(name, getattr(self, name))
        if isinstance(self.free_bits, (list, tuple)):
            self.free_bits = tuple(self.free_bits)
            if len(self.free_bits) != self.n_levels:
                raise ValueError(
                    f"free_bits has {len(self.free_bits)} entries for {self.n_levels} stochastic layer(s); "
                    "give one number, or one per layer (bottom first)"
                )
        for fb in self.free_bits_per_level:
            check_nonneg("free_bits", fb)
        if self.gaussian_std is not None and not self.gaussian_std > 0:
            raise ValueError(f"gaussian_std must be > 0 (or None to learn it), got {self.gaussian_std!r}")
        if self.kl_schedule == "cyclical" and not self.kl_cycle_epochs >= self.kl_warmup_epochs > 0:
            raise ValueError("kl_schedule='cyclical' needs kl_cycle_epochs >= kl_warmup_epochs > 0")

    @property
    def free_bits_per_level(self) -> tuple[float, ...]:
        """free_bits as one number per stochastic layer, bottom first."""
        fb = self.free_bits
        return tuple(fb) if isinstance(fb, tuple) else (fb,) * self.n_levels

    @classmethod
    def for_data(cls, settings, *, unit_interval):
        if settings.get("likelihood") == "auto":
            settings = {**settings, "likelihood": "bernoulli" if unit_interval else "gaussian"}
        return settings

    def probability_setting(self) -> str | None:
        return "likelihood='bernoulli'" if self.likelihood == "bernoulli" else None


def warmup(config: VAEConfig, epochs_done: float, training: bool) -> float:
    """The warm-up factor in [0, 1] at this point of training (linear or cyclical); 1 outside training."""
    if not training or config.kl_warmup_epochs <= 0:
        return 1.0
    t = epochs_done % config.kl_cycle_epochs if config.kl_schedule == "cyclical" else epochs_done
    return min(1.0, t / config.kl_warmup_epochs)


def kl_weight(config: VAEConfig, epochs_done: float, training: bool) -> float:
    """The KL weight at this point of training; the full beta outside training."""
    return config.beta * warmup(config, epochs_done, training)


def kl_objective(kl_dims: torch.Tensor, free_bits: float, training: bool) -> torch.Tensor:
    """Batch KL term to minimise from per-dimension KLs (B, K): with free bits, each dimension's
    batch-mean KL is floored at ``free_bits`` nats (only while training)."""
    if training and free_bits > 0:
        return kl_dims.mean(dim=0).clamp_min(free_bits).sum()
    return kl_dims.sum(dim=1).mean()


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, exp(logvar)) summed over dimensions, (B,)."""
    return -losses.gaussian_nll(z, mu, logvar)


class Level(NamedTuple):
    """One stochastic layer of a posterior draw: z ~ q(z | x, the layers above) and the prior
    p(z | the layers above); ``mu_p``/``logvar_p`` are None for the N(0, I) prior. Each (S * B, d):
    S draws per data point, sample-major (row s * B + b)."""

    z: torch.Tensor
    mu_q: torch.Tensor
    logvar_q: torch.Tensor
    mu_p: torch.Tensor | None = None
    logvar_p: torch.Tensor | None = None

    def kl_per_dim(self) -> torch.Tensor:
        """Analytic KL(q || p) per dimension, (S * B, d)."""
        if self.mu_p is None:
            return losses.kl_normal(self.mu_q, self.logvar_q, per_dim=True)
        return losses.kl_normal_normal(self.mu_q, self.logvar_q, self.mu_p, self.logvar_p, per_dim=True)

    def log_ratio(self, log_prior=None) -> torch.Tensor:
        """log p(z) - log q(z) at the drawn z, (S * B,). ``log_prior(z)`` gives log p(z) of a layer
        without a Gaussian prior here (the top one: the model's own prior, N(0, I) when None)."""
        if self.mu_p is not None:
            log_p = log_normal(self.z, self.mu_p, self.logvar_p)
        elif log_prior is not None:
            log_p = log_prior(self.z)
        else:
            zeros = torch.zeros_like(self.z)
            log_p = log_normal(self.z, zeros, zeros)
        return log_p - log_normal(self.z, self.mu_q, self.logvar_q)


def repeat_samples(t, n: int):
    """(B, ...) -> (n * B, ...), sample-major: the layout of ``Level`` tensors (None stays None)."""
    if t is None or n == 1:
        return t
    t = torch.as_tensor(t)
    return t.repeat(n, *([1] * (t.dim() - 1)))


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor, n_samples: int, generator=None) -> torch.Tensor:
    """z = mu + sigma * eps for rows laid out sample-major, (n_samples * B, d) (Kingma & Welling
    2014); a SharedNoise gives the B rows of each sample the same eps."""
    shape = (n_samples, mu.shape[0] // n_samples, *mu.shape[1:])
    eps = standard_normal(mu.new_empty(shape), generator, batch_dim=1).reshape(mu.shape)
    return mu + torch.exp(0.5 * logvar) * eps


@register("vae")
class VAE(Autoencoder):
    """Gaussian encoder q(z|x) = N(mu, diag(sigma^2)), prior N(0, I), Bernoulli or Gaussian decoder.

    ``encode`` gives the posterior mean; ``forward`` samples z = mu + sigma * eps with the
    generator passed in. Subclasses with several stochastic layers override
    ``posterior_levels`` and ``decoder_output_from``; the ELBO, its importance-weighted version and
    the training loss are written once, here, over the list of levels.
    """

    Config = VAEConfig
    variational = True
    generative = True
    cond_dim = 0

    def __init__(self, config: VAEConfig, encoder=None, decoder=None):
        super().__init__(config)
        c = config
        self.encoder = encoder or build_encoder(
            c.architecture, c.input_shape, c.hidden_dims, 2 * c.latent_dim, c.activation, cond_dim=self.cond_dim,
            batch_norm=c.batch_norm,
        )
        self.decoder = decoder or build_decoder(
            c.architecture, c.input_shape, c.hidden_dims, self.decoder_in_dim, c.activation, batch_norm=c.batch_norm
        )
        self._init_likelihood()
        # epochs of training done so far, kept in the state dict so a resumed run anneals the same way
        self.register_buffer("epochs_done", torch.zeros(()))

    @property
    def decoder_in_dim(self) -> int:
        return self.config.latent_dim + self.cond_dim

    def _init_likelihood(self) -> None:
        c = self.config
        self.recon_kind = "bce" if c.likelihood == "bernoulli" else "gaussian"
        if c.likelihood == "gaussian" and c.gaussian_std is None:
            # unconstrained; the variance is _MIN_DECODER_VARIANCE + exp(decoder_logvar)
            self.decoder_logvar = nn.Parameter(torch.zeros(()))
        else:
            self.decoder_logvar = None

    def _decoder_logvar(self, ref: torch.Tensor) -> torch.Tensor | None:
        c = self.config
        if c.likelihood != "gaussian":
            return None
        if self.decoder_logvar is not None:
            # log(floor + exp(raw)): never below the floor, and its gradient exp(raw) / (floor + exp(raw))
            # never vanishes (a clamp would stop the parameter dead once it crossed the floor)
            return torch.logaddexp(self.decoder_logvar, self.decoder_logvar.new_tensor(math.log(_MIN_DECODER_VARIANCE)))
        return torch.full((), 2 * math.log(c.gaussian_std), device=ref.device, dtype=ref.dtype)

    def _recon_loss(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """-log p(x|z) per sample (B,) from the decoder output."""
        return reconstruction_loss(self.recon_kind, out, x, self._decoder_logvar(out))

    def _reconstruction(self, out: torch.Tensor, x: torch.Tensor):
        """-log p(x|z) per sample (B,) and the decoder mean in data space, from the decoder output."""
        return self._recon_loss(out, x), to_data_space(self.recon_kind, out)

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor, y=None) -> torch.Tensor:
        """log p(x | z) per sample, (B,); z: (B, latent_dim)."""
        return -self._recon_loss(self.decoder_output(z, y), x)

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) under the N(0, I) prior, (B,)."""
        zeros = torch.zeros_like(z)
        return log_normal(z, zeros, zeros)

    def decoder_distribution(self, z: torch.Tensor, y=None) -> torch.distributions.Distribution:
        """p(x | z) as a torch distribution over whole samples (batch shape (B,)): independent
        Bernoulli (logits from the decoder) or Gaussian (decoder mean, the decoder's variance)."""
        out = self.decoder_output(z, y)  # (B, *input_shape)
        if self.recon_kind == "bce":
            base = torch.distributions.Bernoulli(logits=out, validate_args=False)
        else:
            std = torch.exp(0.5 * self._decoder_logvar(out)).expand_as(out)
            base = torch.distributions.Normal(out, std, validate_args=False)
        return torch.distributions.Independent(base, out.dim() - 1)

    def elbo(self, x: torch.Tensor, y=None, *, generator=None) -> torch.Tensor:
        """The evidence lower bound per sample in nats, (B,): E_q[log p(x|z)] - KL(q(z|x) || p(z))
        from one posterior sample and the analytic KL, whatever beta, warm-up or free bits training
        used (the one place the ELBO is computed; every score and metric reads it here)."""
        parts = self(x, y, generator=generator).parts
        return -(parts["recon"] + parts["kl"])

    def score_samples(self, x, y=None, *, generator=None):
        return self.elbo(x, y, generator=generator)

    # -- conditioning (CVAE overrides) ------------------------------------------------
    def condition(self, y) -> torch.Tensor | None:
        return None

    @staticmethod
    def _call(module: nn.Module, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return module(x) if c is None else module(x, c)

    # -- distributions ----------------------------------------------------------------
    def _floor_logvar(self, logvar: torch.Tensor) -> torch.Tensor:
        """The posterior log-variance with the ``min_variance`` floor applied."""
        if self.config.min_variance > 0:
            return logvar.clamp_min(math.log(self.config.min_variance))
        return logvar

    def posterior(self, x: torch.Tensor, y=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of q(z|x): mean and log-variance, each (B, K)."""
        c = self.condition(y)
        h = self._call(self.encoder, x, c.to(x.device) if c is not None else None)  # (B, 2K)
        mu, logvar = h.chunk(2, dim=1)
        return mu, self._floor_logvar(logvar)

    def posterior_levels(self, x: torch.Tensor, y=None, *, n_samples: int = 1, generator=None, sample: bool = True) -> list[Level]:
        """Draws from the posterior over every stochastic layer, bottom first; x is encoded once
        for all ``n_samples`` draws per data point (tensors (n_samples * B, d), sample-major).
        ``sample=False`` gives the mean path: z = the posterior mean at every layer."""
        mu, logvar = (repeat_samples(t, n_samples) for t in self.posterior(x, y))  # (S * B, K)
        z = reparameterise(mu, logvar, n_samples, generator) if sample else mu
        return [Level(z, mu, logvar)]

    def decoder_output(self, z: torch.Tensor, y=None) -> torch.Tensor:
        c = self.condition(y)
        zc = z if c is None else torch.cat([z, c.to(z.device)], dim=1)  # (B, K + C)
        return self.decoder(zc)

    def decoder_output_from(self, levels: list[Level], y=None) -> torch.Tensor:
        """Decoder output for a posterior draw (what p(x | z) is computed from), (S * B, ...)."""
        return self.decoder_output(levels[0].z, y)

    def encode(self, x, y=None):
        return self.posterior(x, y)[0]

    def decode(self, z, y=None):
        return to_data_space(self.recon_kind, self.decoder_output(z, y))

    def reconstruct(self, x, y=None):
        """Decoder mean along the posterior mean path (every layer at its posterior mean)."""
        return to_data_space(self.recon_kind, self.decoder_output_from(self.posterior_levels(x, y, sample=False), y))

    def kl_weight(self) -> float:
        return kl_weight(self.config, float(self.epochs_done), self.training)

    def on_train_progress(self, epochs_done: float) -> None:
        self.epochs_done.fill_(epochs_done)

    def reparameterize(self, x, y=None, generator=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One draw z = mu + sigma * eps from q(z|x) and the posterior's parameters: (z, mu, logvar), each (B, K)."""
        mu, logvar = self.posterior(x, y)  # (B, K) each
        eps = standard_normal(mu, generator)
        return mu + torch.exp(0.5 * logvar) * eps, mu, logvar

    def forward(self, x, y=None, *, generator=None) -> AEOutput:
        levels, out = self.draw(x, y, generator=generator)
        return self._output(levels, out, self._recon_loss(out, x))

    def draw(self, x, y=None, n_samples: int = 1, *, generator=None) -> tuple[list[Level], torch.Tensor]:
        """``n_samples`` posterior draws per data point (x encoded once) and the decoder output
        for them: (levels, out (n_samples * B, ...)), sample-major."""
        levels = self.posterior_levels(x, y, n_samples=n_samples, generator=generator)
        return levels, self.decoder_output_from(levels, repeat_samples(y, n_samples))

    def _output(self, levels: list[Level], out: torch.Tensor, recon: torch.Tensor, loss: torch.Tensor | None = None) -> AEOutput:
        """The ELBO's parts for one draw per data point (recon (B,), KL per level) and, unless given,
        the training loss: recon + KL weight * KL, with free bits per level."""
        kls = [level.kl_per_dim() for level in levels]  # (B, d_l) per level
        if loss is None:
            kl_term = sum(kl_objective(k, fb, self.training) for k, fb in zip(kls, self.config.free_bits_per_level))
            loss = recon.mean() + self.kl_weight() * kl_term
        parts = {"recon": recon, "kl": sum(k.sum(dim=1) for k in kls)}
        if len(kls) > 1:
            parts.update({f"kl_{i + 1}": k.sum(dim=1) for i, k in enumerate(kls)})
        return AEOutput(loss=loss, parts=parts, x_hat=to_data_space(self.recon_kind, out), z=levels[-1].mu_q)

    def _log_terms(self, levels: list[Level], out: torch.Tensor, x: torch.Tensor, n_samples: int):
        """log p(x | z_s) and log p(z_s) - log q(z_s | x) of a draw, each (n_samples, B)."""
        b = x.shape[0]
        if self.recon_kind == "bce":  # x broadcast over the draws, not copied
            log_px = losses.bernoulli_log_likelihood(out.reshape(n_samples, b, *out.shape[1:]), x)  # (S, B)
        else:
            log_px = -self._recon_loss(out, repeat_samples(x, n_samples)).reshape(n_samples, b)
        log_ratio = sum(level.log_ratio(self.log_prior) for level in levels)  # (S * B,); the model's prior on top
        return log_px, log_ratio.reshape(n_samples, b)

    def importance_terms(self, x, y=None, n_samples: int = 1, *, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """log p(x | z_s) and log p(z_s) - log q(z_s | x) for ``n_samples`` posterior draws per data
        point, each (n_samples, B); x is encoded once and the draws decoded in one batch."""
        levels, out = self.draw(x, y, n_samples, generator=generator)
        return self._log_terms(levels, out, x, n_samples)

    def log_weights(self, x, y=None, n_samples: int = 1, *, generator=None) -> torch.Tensor:
        """Log importance weights log p(x, z_s) - log q(z_s | x), z_s ~ q(z|x), for ``n_samples``
        draws per data point, (n_samples, B). log (1/S sum_s exp(.)) is the importance-weighted
        bound of Burda et al. 2016; x is encoded once for all the draws."""
        log_px, log_ratio = self.importance_terms(x, y, n_samples, generator=generator)
        return log_px + log_ratio

    def log_weight(self, x, y=None, *, generator=None) -> torch.Tensor:
        """One importance sample's log p(x, z) - log q(z|x), z ~ q(z|x); (B,)."""
        return self.log_weights(x, y, 1, generator=generator)[0]

    @torch.no_grad()
    def sample(self, n: int, y=None, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode n draws from the prior; returns the decoder mean in data space, (n, *input_shape)."""
        return decode_prior(self, n, generator, y)
