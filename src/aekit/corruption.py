"""Noise processes for denoising autoencoders (Vincent et al. 2008, 2010).

Each takes a clean batch and returns a corrupted copy; the clean batch stays the
target. Randomness comes only from the ``generator`` passed in. A level is a number shared by the
batch or a tensor (B,) with one level per sample (see :func:`draw_levels` for a range).
"""

from __future__ import annotations

import torch

__all__ = ["gaussian", "masking", "salt_and_pepper", "corrupt", "draw_levels", "feature_extremes", "NOISE_KINDS"]

Level = float | torch.Tensor


def _check_level(name: str, value: Level, upper: float | None = None) -> None:
    lo, hi = (float(value.min()), float(value.max())) if isinstance(value, torch.Tensor) else (value, value)
    if not lo >= 0 or (upper is not None and hi > upper):
        bound = f"in [0, {upper}]" if upper is not None else ">= 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}")


def _per_sample(level: Level, x: torch.Tensor) -> Level:
    """A level ready to broadcast against x (B, ...): numbers as they are, (B,) -> (B, 1, ...)."""
    if isinstance(level, torch.Tensor):
        return level.to(x.device, x.dtype).reshape(-1, *([1] * (x.ndim - 1)))
    return level


def gaussian(x: torch.Tensor, std: Level, generator: torch.Generator | None = None) -> torch.Tensor:
    """Additive isotropic Gaussian noise: x + std * eps. x: (B, ...) -> same shape."""
    _check_level("std", std)
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x + _per_sample(std, x) * noise


def masking(x: torch.Tensor, fraction: Level, generator: torch.Generator | None = None) -> torch.Tensor:
    """Masking noise: each entry is set to 0 independently with probability ``fraction``."""
    _check_level("fraction", fraction, 1.0)
    keep = torch.rand(x.shape, generator=generator, device=x.device) >= _per_sample(fraction, x)
    return x * keep.to(x.dtype)


def feature_extremes(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each feature's minimum and maximum over the rows of X (n, ...), each shaped like one
    sample. A feature of an image (n, C, H, W) is a channel: its pixels share the channel's
    extremes (a pixel that is always 0 can still turn white); of anything else, one entry."""
    if X.ndim == 4:
        lo, hi = X.amin(dim=(0, 2, 3), keepdim=True)[0], X.amax(dim=(0, 2, 3), keepdim=True)[0]  # (C, 1, 1)
        return lo.expand(X.shape[1:]), hi.expand(X.shape[1:])
    return X.amin(dim=0), X.amax(dim=0)


def salt_and_pepper(
    x: torch.Tensor,
    fraction: Level,
    generator: torch.Generator | None = None,
    low: float | torch.Tensor | None = None,
    high: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """Salt-and-pepper noise (Vincent et al. 2010): a ``fraction`` of entries, chosen
    independently, is set to its feature's minimum or maximum with equal probability.

    ``low``/``high``: numbers, or tensors shaped like one sample (or broadcasting to it) giving
    each feature's extremes; a denoising model passes the training data's
    (:func:`feature_extremes`). Left out, each feature's extremes over this batch are used.
    """
    _check_level("fraction", fraction, 1.0)
    if low is None or high is None:
        batch_low, batch_high = feature_extremes(x)
        low = batch_low if low is None else low
        high = batch_high if high is None else high
    low = torch.as_tensor(low, dtype=x.dtype, device=x.device)
    high = torch.as_tensor(high, dtype=x.dtype, device=x.device)
    fraction = _per_sample(fraction, x)
    u = torch.rand(x.shape, generator=generator, device=x.device)
    hit = u < fraction
    salt = u < fraction / 2  # half of the hits go high
    return torch.where(hit, torch.where(salt, high, low), x)


NOISE_KINDS = {"gaussian": gaussian, "masking": masking, "salt_and_pepper": salt_and_pepper}


def draw_levels(level: float | tuple[float, float], n: int, generator: torch.Generator | None = None,
                device: torch.device | str = "cpu") -> Level:
    """A level for each of n samples: a number is shared; a range ``(low, high)`` gives a tensor
    (n,) drawn uniformly from it."""
    if isinstance(level, (tuple, list)):
        lo, hi = (float(v) for v in level)
        u = torch.rand(n, generator=generator, device=device)
        return lo + (hi - lo) * u  # (n,)
    return level


def corrupt(x: torch.Tensor, kind: str, level: float | tuple[float, float] | torch.Tensor,
            generator: torch.Generator | None = None, *, low=None, high=None) -> torch.Tensor:
    """Apply the noise process named ``kind`` at ``level``: std (gaussian) or fraction (masking,
    salt-and-pepper); a number, a tensor (B,) of per-sample levels, or a range ``(low, high)``
    from which each sample draws its own. ``low``/``high``: salt-and-pepper's feature extremes."""
    try:
        fn = NOISE_KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown noise {kind!r}; choose one of {sorted(NOISE_KINDS)}") from None
    level = draw_levels(level, x.shape[0], generator, x.device)
    if fn is salt_and_pepper:
        return fn(x, level, generator, low=low, high=high)
    return fn(x, level, generator)
