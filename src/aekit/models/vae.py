"""Variational autoencoder (Kingma & Welling 2014) with beta (Higgins et al. 2017), KL warm-up
(linear, or cyclical as in Fu et al. 2019), free bits (Kingma et al. 2016) and a floor on the
posterior variance. The loss is -ELBO in nats per sample (with beta = 1 and no warm-up)."""

from __future__ import annotations

import math
from dataclasses import dataclass

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
    reconstruction,
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
    free_bits: float = option(0.0, "nats per latent dimension below which the KL is not pushed down")
    min_variance: float = option(0.0, "floor on the encoder's posterior variance")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("likelihood", self.likelihood, ("bernoulli", "gaussian"))
        check_choice("kl_schedule", self.kl_schedule, ("linear", "cyclical"))
        for name in ("beta", "kl_warmup_epochs", "kl_cycle_epochs", "free_bits", "min_variance"):
            check_nonneg(name, getattr(self, name))
        if self.gaussian_std is not None and not self.gaussian_std > 0:
            raise ValueError(f"gaussian_std must be > 0 (or None to learn it), got {self.gaussian_std!r}")
        if self.kl_schedule == "cyclical" and not self.kl_cycle_epochs >= self.kl_warmup_epochs > 0:
            raise ValueError("kl_schedule='cyclical' needs kl_cycle_epochs >= kl_warmup_epochs > 0")

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


@register("vae")
class VAE(Autoencoder):
    """Gaussian encoder q(z|x) = N(mu, diag(sigma^2)), prior N(0, I), Bernoulli or Gaussian decoder.

    ``encode`` gives the posterior mean; ``forward`` samples z = mu + sigma * eps with the
    generator passed in.
    """

    Config = VAEConfig
    variational = True
    generative = True
    cond_dim = 0

    def __init__(self, config: VAEConfig, encoder=None, decoder=None):
        super().__init__(config)
        c = config
        self.encoder = encoder or build_encoder(
            c.architecture, c.input_shape, c.hidden_dims, 2 * c.latent_dim, c.activation, cond_dim=self.cond_dim
        )
        self.decoder = decoder or build_decoder(
            c.architecture, c.input_shape, c.hidden_dims, self.decoder_in_dim, c.activation
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
            self.decoder_logvar = nn.Parameter(torch.zeros(()))
        else:
            self.decoder_logvar = None

    def _decoder_logvar(self, ref: torch.Tensor) -> torch.Tensor | None:
        c = self.config
        if c.likelihood != "gaussian":
            return None
        if self.decoder_logvar is not None:
            return self.decoder_logvar.clamp_min(math.log(_MIN_DECODER_VARIANCE))
        return torch.full((), 2 * math.log(c.gaussian_std), device=ref.device, dtype=ref.dtype)

    def _reconstruction(self, out: torch.Tensor, x: torch.Tensor):
        """-log p(x|z) per sample (B,) and the decoder mean in data space, from the decoder output."""
        return reconstruction(self.recon_kind, out, x, self._decoder_logvar(out))

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor, y=None) -> torch.Tensor:
        """log p(x | z) per sample, (B,); z: (B, latent_dim)."""
        return -self._reconstruction(self.decoder_output(z, y), x)[0]

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
    def posterior(self, x: torch.Tensor, y=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of q(z|x): mean and log-variance, each (B, K)."""
        c = self.condition(y)
        h = self._call(self.encoder, x, c.to(x.device) if c is not None else None)  # (B, 2K)
        mu, logvar = h.chunk(2, dim=1)
        if self.config.min_variance > 0:
            logvar = logvar.clamp_min(math.log(self.config.min_variance))
        return mu, logvar

    def decoder_output(self, z: torch.Tensor, y=None) -> torch.Tensor:
        c = self.condition(y)
        zc = z if c is None else torch.cat([z, c.to(z.device)], dim=1)  # (B, K + C)
        return self.decoder(zc)

    def encode(self, x, y=None):
        return self.posterior(x, y)[0]

    def decode(self, z, y=None):
        return to_data_space(self.recon_kind, self.decoder_output(z, y))

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
        z, mu, logvar = self.reparameterize(x, y, generator)  # (B, K) each
        out = self.decoder_output(z, y)
        recon, x_hat = self._reconstruction(out, x)
        kl_dims = losses.kl_normal(mu, logvar, per_dim=True)  # (B, K)
        loss = recon.mean() + self.kl_weight() * kl_objective(kl_dims, self.config.free_bits, self.training)
        return AEOutput(loss=loss, parts={"recon": recon, "kl": kl_dims.sum(dim=1)}, x_hat=x_hat, z=mu)

    def log_weight(self, x, y=None, *, generator=None) -> torch.Tensor:
        """One importance sample's log p(x, z) - log q(z|x), z ~ q(z|x); (B,). Averaging its exp
        over k samples gives the importance-weighted bound of Burda et al. 2016."""
        z, mu, logvar = self.reparameterize(x, y, generator)
        return self.log_likelihood(x, z, y) + self.log_prior(z) - log_normal(z, mu, logvar)

    @torch.no_grad()
    def sample(self, n: int, y=None, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode n draws from the prior; returns the decoder mean in data space, (n, *input_shape)."""
        return decode_prior(self, n, generator, y)
