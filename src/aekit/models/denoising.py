"""Denoising autoencoder (Vincent et al. 2008, 2010): corrupted input, clean target.

The noise level may be one number or a range ``(low, high)``: each training sample then draws its
own level, so one model learns to undo light and heavy noise alike (and, from 0, to leave clean
inputs alone). Salt-and-pepper noise sets entries to their feature's extremes in the training
data (kept with the model), and corrupted inputs are clipped to that range (``clip_noise``).

With ``fusion`` (the default) the clean estimate is not the decoded code alone: a small network
shared by every feature combines each noisy input value x~_i with its decoded value d_i and a few
signals the code gives for that feature, x_hat_i = d_i + phi(x~_i, d_i, c_i(z)). It is a skip
connection from the input, as in encoder-decoder denoisers (Mao et al. 2016), taken per feature:
detail that the noise spared and the code cannot carry (light noise, unmasked pixels) comes
from the input, the rest from the code. ``reconstruct`` stays decode(encode(x)); ``denoise`` is
the fused estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from .. import corruption, losses
from .._registry import register
from ..nn import flat_dim, zero_output
from .ae import AE, AEConfig
from .base import AEOutput, check_choice, option


@dataclass
class DenoisingConfig(AEConfig):
    """noise: ``"gaussian"`` (noise_level = std), ``"masking"`` or ``"salt_and_pepper"``
    (noise_level = fraction of entries hit). noise_level: one level, or a range (low, high) from
    which each training sample draws its own. fusion: the clean estimate also sees the noisy
    input, per feature (see the module docstring). clip_noise: corrupted inputs stay within each
    feature's training range (a pixel cannot be brighter than white)."""

    noise: str = option("gaussian", "corruption in training: gaussian, masking or salt_and_pepper")
    noise_level: float | tuple[float, float] = option(
        (0.0, 0.5), "std for gaussian noise, fraction of entries hit otherwise; a range low,high is drawn per sample"
    )
    fusion: bool = option(
        True, "the clean estimate combines each noisy input value with its decoded value (False: the decoder's output alone)"
    )
    clip_noise: bool = option(True, "keep corrupted training inputs within each feature's range in the training data")

    FILE_DEFAULTS: ClassVar[dict] = {**AEConfig.FILE_DEFAULTS, "fusion": False, "clip_noise": False}

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("noise", self.noise, tuple(corruption.NOISE_KINDS))
        self.noise_level = _check_noise_level(self.noise_level, self.noise)
        for name in ("fusion", "clip_noise"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")


def _check_noise_level(level, noise: str) -> float | tuple[float, float]:
    """A level (number) or a range (low, high), checked for the noise kind."""
    if isinstance(level, (tuple, list)) and len(level) == 1:
        level = level[0]
    is_range = isinstance(level, (tuple, list))
    values = tuple(level) if is_range else (level,)
    if (is_range and len(values) != 2) or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        raise ValueError(f"noise_level must be a number or a range (low, high) of two numbers, got {level!r}")
    if any(not v >= 0 for v in values):
        raise ValueError(f"noise_level must be >= 0, got {level!r}")
    if noise != "gaussian" and max(values) > 1:
        raise ValueError(f"noise_level is a fraction for {noise!r} noise: it must lie in [0, 1], got {level!r}")
    if is_range and values[0] > values[1]:
        raise ValueError(f"a noise_level range must be (low, high) with low <= high, got {level!r}")
    return (float(values[0]), float(values[1])) if is_range else float(level)


class FeatureFusion(nn.Module):
    """Per-feature combination of a noisy input with its decoded estimate:
    x_hat_i = d_i + phi([x~_i, d_i, c_i(z)]), phi a small MLP shared by all features and
    c(z) (B, D, channels) linear in the code. (B, ...), (B, ...), (B, K) -> (B, ...)."""

    def __init__(self, latent_dim: int, n_features: int, channels: int = 2, hidden: int = 16):
        super().__init__()
        self.channels = channels
        self.context = nn.Linear(latent_dim, n_features * channels)
        self.phi = nn.Sequential(nn.Linear(2 + channels, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x_noisy: torch.Tensor, d: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        b = z.shape[0]
        xf, df = x_noisy.reshape(b, -1), d.reshape(b, -1)  # (B, D)
        c = self.context(z).reshape(b, xf.shape[1], self.channels)  # (B, D, C)
        feats = torch.cat([xf[..., None], df[..., None], c], dim=-1)  # (B, D, 2 + C)
        return (df + self.phi(feats)[..., 0]).reshape(d.shape)  # (B, ...)


# Floor on the fused estimate's mean squared error per feature inside its log (50 dB for data in
# [0, 1]): a sample the model copies exactly (noise level 0) does not take over the gradient. The
# term is log(1 + mse / floor) = log(mse + floor) - log(floor): the same gradient, and >= 0.
_LOG_FLOOR = 1e-5


@register("denoising")
class DenoisingAE(AE):
    """Corruption happens only in training mode; encode/reconstruct see the input as given.

    Loss = ``recon``, the squared error of decode(encode(x~)) against the clean x summed over
    features (the classic DAE), + with ``fusion``, the mean over samples of the log of the fused
    estimate's mean squared error (``denoise`` / D, floored): its average PSNR, so light and heavy
    noise count alike (a plain sum of squared errors is dominated by the heaviest noise).
    ``denoise(x)`` is the clean estimate of a noisy x.

    ``feature_low``/``feature_high`` (buffers shaped like one sample) hold each feature's extremes
    in the training data, set when training starts (:func:`aekit.corruption.feature_extremes`):
    salt-and-pepper's values, and the range corrupted inputs are clipped to (``clip_noise``)."""

    Config = DenoisingConfig

    def __init__(self, config: DenoisingConfig, encoder=None, decoder=None):
        super().__init__(config, encoder, decoder)
        if config.fusion:
            self.needs_data_init()
            self.fusion = FeatureFusion(config.latent_dim, flat_dim(config.input_shape))
        if self.uses_extremes:
            self.needs_data_init()
            self.register_buffer("feature_low", torch.zeros(config.input_shape))  # set by init_from_data
            self.register_buffer("feature_high", torch.zeros(config.input_shape))

    @property
    def uses_extremes(self) -> bool:
        return self.config.noise == "salt_and_pepper" or self.config.clip_noise

    def init_from_data(self, X):
        """Besides the AE's: the fused estimate starts as the decoded one (phi's output layer at
        zero) and each feature's extremes are read off the training rows."""
        super().init_from_data(X)
        if self.config.fusion:
            zero_output(self.fusion.phi)
        if self.uses_extremes:
            low, high = corruption.feature_extremes(X)
            self.feature_low.copy_(low)
            self.feature_high.copy_(high)

    def corrupt(self, x, generator):
        c = self.config
        known = self.uses_extremes and bool(self.data_initialised)  # else: each batch's own extremes
        extremes = {"low": self.feature_low, "high": self.feature_high} if known else {}
        x_in = corruption.corrupt(x, c.noise, c.noise_level, generator, **extremes)
        if c.clip_noise:
            low, high = (self.feature_low, self.feature_high) if known else corruption.feature_extremes(x)
            x_in = torch.minimum(torch.maximum(x_in, low), high)
        return x_in

    def output(self, x, x_in) -> AEOutput:
        out = super().output(x, x_in)
        if self.config.fusion:
            err = losses.mse(self.fusion(x_in, out.x_hat, out.z), x)  # (B,)
            out.parts["denoise"] = err
            out.loss = out.loss + torch.log1p(err / (x[0].numel() * _LOG_FLOOR)).mean()  # log(mse + floor) + const
        return out

    def denoise(self, x: torch.Tensor) -> torch.Tensor:
        """Clean estimate of a noisy batch x (B, ...), in data space: the fused estimate, or
        decode(encode(x)) without fusion."""
        z = self.encode(x)  # (B, K)
        d = self.decode(z)  # (B, ...)
        return self.fusion(x, d, z) if self.config.fusion else d
