"""Procedural sprites: 64x64 binary images generated from five known factors of variation.

A dSprites-like data set (Matthey et al. 2017, github.com/deepmind/dsprites-dataset) rendered
here with numpy, offline and deterministically, for measuring disentanglement
(:func:`aekit.evaluate.mig`, :func:`aekit.evaluate.factorvae_score`, :func:`aekit.evaluate.dci`).

The factors and their values (the full grid has 3 x 6 x 40 x 32 x 32 = 737,280 images):

============  ====  ======================================================================
factor        size  values
============  ====  ======================================================================
shape         3     square, ellipse, heart
scale         6     0.5, 0.6, ..., 1.0 (relative size)
orientation   40    k * 2 pi / 40 for k = 0..39 (radians, counter-clockwise)
x             32    0, 1/31, ..., 1: the centre's column from 12.5 to 51.5 pixels
y             32    0, 1/31, ..., 1: the centre's row from 12.5 to 51.5 pixels
============  ====  ======================================================================

How a sprite is drawn: each pixel (i, j) is on (1) when its centre (j + 0.5, i + 0.5), moved
to the sprite's centre, rotated by minus the orientation and divided by ``12 * scale`` pixels,
falls inside the shape's outline in the unit disc, else off (0): no anti-aliasing, binary like
dSprites. The outlines: the square ``max(|u|, |v|) <= 0.65``; the ellipse with semi-axes 0.95
and 0.45; the heart ``(X^2 + Y^2 - 1)^3 - X^2 Y^3 <= 0`` (Taubin's heart curve) with X, Y the
coordinates divided by 0.8, centred on its bounding box, point down. Every shape stays inside a
disc of 12 * scale pixels, so every position keeps the whole sprite in the frame.

As in dSprites, orientation is ambiguous for the symmetric shapes: a square rotated by a
quarter turn (10 steps) and an ellipse rotated by a half turn (20 steps) give the same image,
so no model can recover the full orientation of those two shapes. Unlike dSprites, whose 40
orientations run from 0 to 2 pi inclusive (the first and last images are the same), the 40
values here are distinct, and the positions are spaced over the frame so that the largest
sprite never touches the border.

Determinism: the renderer uses only additions, multiplications and comparisons on exact
pixel coordinates, with the cosines and sines of the 40 angles rounded to 12 decimals, so the
images are the same on every machine (a test pins their SHA-256).

``aekit.load_dataset("sprites")`` gives a seeded random subset of the grid: 60,000 distinct
grid points drawn without replacement, the first 50,000 the training split and the other 10,000
the test split; ``Dataset.factors`` holds each image's factor indices and ``Dataset.y`` its
shape. Any other part of the grid, up to the whole product, is rendered on demand by
:func:`render` from :func:`factors_from_index` or :func:`sample_factors`.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "FACTOR_NAMES", "FACTOR_SIZES", "IMAGE_SIZE", "N_IMAGES", "SHAPES", "factor_values", "factors_from_index",
    "render", "sample_factors", "split_factors",
]

FACTOR_NAMES = ("shape", "scale", "orientation", "x", "y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
SHAPES = ("square", "ellipse", "heart")
IMAGE_SIZE = 64
N_IMAGES = math.prod(FACTOR_SIZES)  # 737,280: the full grid
SPLIT_SIZES = {"train": 50_000, "test": 10_000}  # the seeded subset load_dataset("sprites") gives

_RADIUS = 12.0  # pixels: every shape at scale 1 fits in a disc of this radius
_MARGIN = _RADIUS + 0.5  # centres stay this far from the border
_WINDOW = 26  # pixels drawn around each centre (the largest sprite spans 24)
_HEART_SIZE, _HEART_MID = 0.72, 0.118  # Taubin's heart spans y in [-1, 1.236]: 0.118 is its middle


def factor_values() -> dict[str, np.ndarray]:
    """The value of every index of every factor.

    Returns
    -------
    dict
        factor name -> array of its values: ``shape`` the indices 0, 1, 2 (names in
        :data:`SHAPES`), ``scale`` relative sizes, ``orientation`` radians, ``x`` and ``y``
        positions in [0, 1].

    Examples
    --------
    >>> from aekit.sprites import factor_values
    >>> {name: len(v) for name, v in factor_values().items()}
    {'shape': 3, 'scale': 6, 'orientation': 40, 'x': 32, 'y': 32}
    >>> factor_values()["scale"]
    array([0.5, 0.6, 0.7, 0.8, 0.9, 1. ])
    """
    return {
        "shape": np.arange(3),
        "scale": np.linspace(0.5, 1.0, 6),
        "orientation": np.arange(40) * (2 * np.pi / 40),
        "x": np.linspace(0.0, 1.0, 32),
        "y": np.linspace(0.0, 1.0, 32),
    }


def factors_from_index(index) -> np.ndarray:
    """Factor indices of grid points numbered 0 .. :data:`N_IMAGES` - 1 (row-major over
    :data:`FACTOR_NAMES`, the last factor fastest), (n, 5) int64: the full product on demand.

    Examples
    --------
    >>> from aekit.sprites import factors_from_index
    >>> factors_from_index([0, 1, 32, 737_279]).tolist()
    [[0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 1, 0], [2, 5, 39, 31, 31]]
    """
    index = np.asarray(index)
    if index.dtype.kind not in "iu" or index.ndim > 1 or (index.size and not 0 <= index.min() <= index.max() < N_IMAGES):
        raise ValueError(f"grid indices must be integers in [0, {N_IMAGES}), one per image")
    return np.stack(np.unravel_index(index.ravel(), FACTOR_SIZES), axis=1).astype(np.int64)


def sample_factors(n: int, random_state: int | np.random.Generator = 0, *, fixed: dict[str, int] | None = None) -> np.ndarray:
    """``n`` grid points drawn uniformly (with replacement), some factors optionally held fixed.

    Parameters
    ----------
    n : number of points.
    random_state : seed or ``np.random.Generator``.
    fixed : factor name -> index to hold it at, e.g. ``{"shape": 2}`` (hearts only).

    Returns
    -------
    np.ndarray
        (n, 5) int64 factor indices, for :func:`render`.

    Examples
    --------
    >>> from aekit.sprites import render, sample_factors
    >>> f = sample_factors(4, 0, fixed={"scale": 5})
    >>> f[:, 1].tolist(), render(f).shape
    ([5, 5, 5, 5], (4, 1, 64, 64))
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    rng = random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)
    factors = np.stack([rng.integers(0, size, n) for size in FACTOR_SIZES], axis=1).astype(np.int64)
    for name, value in (fixed or {}).items():
        if name not in FACTOR_NAMES:
            raise ValueError(f"unknown factor {name!r}; the factors are {', '.join(FACTOR_NAMES)}")
        k = FACTOR_NAMES.index(name)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < FACTOR_SIZES[k]:
            raise ValueError(f"factor {name!r} takes indices 0..{FACTOR_SIZES[k] - 1}, got {value!r}")
        factors[:, k] = value
    return factors


def split_factors(split: str, random_state: int = 0) -> np.ndarray:
    """Factor indices of the seeded subset ``load_dataset("sprites", split)`` renders: 60,000
    distinct grid points drawn without replacement, the first 50,000 "train", the last 10,000
    "test" ("all": both, in that order), in the random order drawn, so that any first ``k``
    images are a uniform random sample of the grid too."""
    points = np.random.default_rng([random_state, 0x5B17E5]).choice(N_IMAGES, sum(SPLIT_SIZES.values()), replace=False)
    n_train = SPLIT_SIZES["train"]
    parts = {"train": points[:n_train], "test": points[n_train:], "all": points}
    if split not in parts:
        raise ValueError(f"split must be one of {tuple(parts)}, got {split!r}")
    return factors_from_index(parts[split])


def render(factors, *, batch_size: int = 4096) -> np.ndarray:
    """Draw the images of the given factor indices.

    Parameters
    ----------
    factors : array-like (n, 5) of int
        Indices into each factor's values, columns in :data:`FACTOR_NAMES` order.
    batch_size : images drawn per vectorised step (bounds the memory used).

    Returns
    -------
    np.ndarray
        (n, 1, 64, 64) float32 of 0s and 1s.

    Examples
    --------
    >>> import numpy as np
    >>> from aekit.sprites import render
    >>> square, heart = render([[0, 5, 0, 16, 16], [2, 0, 0, 0, 31]])
    >>> int(square.sum()), int(heart.sum())  # a 15x15 square at scale 1; a heart at scale 0.5
    (225, 66)
    """
    factors = np.asarray(factors)
    if factors.ndim != 2 or factors.shape[1] != len(FACTOR_SIZES) or factors.dtype.kind not in "iu":
        raise ValueError(f"factors must be integer indices shaped (n, {len(FACTOR_SIZES)}), got {factors.dtype} {factors.shape}")
    if len(factors) and ((factors < 0).any() or (factors >= np.asarray(FACTOR_SIZES)).any()):
        raise ValueError(f"factor indices out of range; the sizes are {dict(zip(FACTOR_NAMES, FACTOR_SIZES))}")
    out = np.zeros((len(factors), 1, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    for start in range(0, len(factors), batch_size):
        chunk = factors[start : start + batch_size]
        _draw(chunk, out[start : start + len(chunk), 0])
    return out


_VALUES = factor_values()
_COS = np.round(np.cos(_VALUES["orientation"]), 12)  # rounded: the same on every machine's libm
_SIN = np.round(np.sin(_VALUES["orientation"]), 12)
_CENTRES = _MARGIN + np.arange(32) * ((IMAGE_SIZE - 2 * _MARGIN) / 31)  # pixels, (32,)


def _draw(f: np.ndarray, frame: np.ndarray) -> None:
    """Draw the sprites of factor indices (n, 5) into ``frame`` (n, 64, 64), all zeros: each
    sprite is evaluated in a 26x26 window around its centre, then placed in the frame."""
    n = len(f)
    cx, cy = _CENTRES[f[:, 3]], _CENTRES[f[:, 4]]  # (n,) each
    ox = np.clip(np.floor(cx).astype(np.int64) - _WINDOW // 2, 0, IMAGE_SIZE - _WINDOW)  # window corner, (n,)
    oy = np.clip(np.floor(cy).astype(np.int64) - _WINDOW // 2, 0, IMAGE_SIZE - _WINDOW)
    steps = np.arange(_WINDOW)
    dx = (ox[:, None] + steps + 0.5 - cx[:, None])[:, None, :]  # (n, 1, W): pixel centre - sprite centre
    dy = (oy[:, None] + steps + 0.5 - cy[:, None])[:, :, None]  # (n, W, 1); rows run downwards
    cos, sin = _COS[f[:, 2]][:, None, None], _SIN[f[:, 2]][:, None, None]
    size = (_RADIUS * _VALUES["scale"][f[:, 1]])[:, None, None]
    u = (cos * dx - sin * dy) / size  # (n, W, W): the sprite's frame, turned counter-clockwise on screen
    v = (sin * dx + cos * dy) / size
    inside = np.zeros((n, _WINDOW, _WINDOW), bool)
    for shape, test in enumerate((_square, _ellipse, _heart)):
        rows = f[:, 0] == shape
        if rows.any():
            inside[rows] = test(u[rows], v[rows])
    frame[np.arange(n)[:, None, None], (oy[:, None] + steps)[:, :, None], (ox[:, None] + steps)[:, None, :]] = inside


def _square(u, v):
    return np.maximum(np.abs(u), np.abs(v)) <= 0.65


def _ellipse(u, v):
    return (u / 0.95) ** 2 + (v / 0.45) ** 2 <= 1.0


def _heart(u, v):
    x = u / _HEART_SIZE
    y = _HEART_MID - v / _HEART_SIZE  # rows run down: flip so the point is at the bottom
    r = x * x + y * y - 1.0
    return r * r * r - x * x * y * y * y <= 0.0
