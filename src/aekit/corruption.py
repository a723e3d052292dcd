"""Noise processes for denoising autoencoders (Vincent et al. 2008, 2010).

Each takes a clean batch and returns a corrupted copy; the clean batch stays the
target. Randomness comes only from the ``generator`` passed in.
"""

from __future__ import annotations

import torch

__all__ = ["gaussian", "masking", "salt_and_pepper", "corrupt", "NOISE_KINDS"]


def _check_level(name: str, value: float, upper: float | None = None) -> None:
    if not value >= 0 or (upper is not None and value > upper):
        bound = f"in [0, {upper}]" if upper is not None else ">= 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}")


def gaussian(x: torch.Tensor, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Additive isotropic Gaussian noise: x + std * eps. x: (B, ...) -> same shape."""
    _check_level("std", std)
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x + std * noise


def masking(x: torch.Tensor, fraction: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Masking noise: each entry is set to 0 independently with probability ``fraction``."""
    _check_level("fraction", fraction, 1.0)
    keep = torch.rand(x.shape, generator=generator, device=x.device) >= fraction
    return x * keep.to(x.dtype)


def salt_and_pepper(
    x: torch.Tensor,
    fraction: float,
    generator: torch.Generator | None = None,
    low: float | None = None,
    high: float | None = None,
) -> torch.Tensor:
    """Salt-and-pepper noise: a ``fraction`` of entries, chosen independently, is set to
    ``low`` or ``high`` with equal probability. ``low``/``high`` default to the batch's
    minimum and maximum."""
    _check_level("fraction", fraction, 1.0)
    low = x.min() if low is None else torch.as_tensor(low, dtype=x.dtype, device=x.device)
    high = x.max() if high is None else torch.as_tensor(high, dtype=x.dtype, device=x.device)
    u = torch.rand(x.shape, generator=generator, device=x.device)
    hit = u < fraction
    salt = u < fraction / 2  # half of the hits go high
    out = torch.where(hit, torch.where(salt, high, low), x)
    return out


NOISE_KINDS = {"gaussian": gaussian, "masking": masking, "salt_and_pepper": salt_and_pepper}


def corrupt(x: torch.Tensor, kind: str, level: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply the noise process named ``kind`` at ``level`` (std or fraction)."""
    try:
        fn = NOISE_KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown noise {kind!r}; choose one of {sorted(NOISE_KINDS)}") from None
    return fn(x, level, generator)
