"""Image helpers for the applications: arrays of images -> one PNG grid (Pillow, no global state)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = ["as_images", "image_grid"]


def as_images(images, image_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Images as (n, h, w) or (n, h, w, 3) float arrays.

    Accepts (n, h, w), (n, 1, h, w), (n, 3, h, w) or flat (n, D); flat rows are reshaped to
    ``image_shape`` ((h, w) or (c, h, w)) or, without it, to a square when D is a perfect square.
    """
    arr = np.asarray(images, dtype=np.float64)
    if arr.ndim == 2:
        if image_shape is None:
            side = math.isqrt(arr.shape[1])
            if side * side != arr.shape[1]:
                raise ValueError(f"rows of {arr.shape[1]} values are not square images; pass image_shape=(h, w)")
            image_shape = (side, side)
        arr = arr.reshape(len(arr), *image_shape)
    if arr.ndim == 4:
        if arr.shape[1] == 1:
            arr = arr[:, 0]
        elif arr.shape[1] == 3:
            arr = arr.transpose(0, 2, 3, 1)
        else:
            raise ValueError(f"images must have 1 or 3 channels, got {arr.shape[1]}")
    if arr.ndim not in (3, 4) or len(arr) == 0:
        raise ValueError(f"expected a non-empty batch of images, got shape {np.shape(images)}")
    return arr


def mosaic(images: np.ndarray, ncols: int, pad: int = 1) -> np.ndarray:
    """(n, h, w[, 3]) in [0, 1] -> one (rows * (h + pad) + pad, ncols * (w + pad) + pad[, 3])
    array with white gaps."""
    n, h, w = images.shape[:3]
    nrows = math.ceil(n / ncols)
    canvas = np.ones((nrows * (h + pad) + pad, ncols * (w + pad) + pad) + images.shape[3:])
    for i, img in enumerate(images):
        r, c = divmod(i, ncols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        canvas[top : top + h, left : left + w] = img
    return canvas


def image_grid(images, path, *, ncols: int | None = None, image_shape=None, scale: int = 4,
               padding: int = 1, value_range: tuple[float, float] = (0.0, 1.0)) -> Path:
    """Write a batch of images as one PNG grid and return its path.

    Parameters
    ----------
    images : array (n, h, w), (n, 1|3, h, w) or flat (n, D) (see ``image_shape``)
    path : where to write the PNG (folders are created).
    ncols : images per row; default ``ceil(sqrt(n))``.
    image_shape : (h, w) or (c, h, w) for flat rows that are not square.
    scale : each pixel becomes a ``scale`` x ``scale`` block (nearest neighbour).
    padding : pixels of white between images.
    value_range : values mapped to black and white; values outside are clipped.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from aekit.apps import image_grid
    >>> p = image_grid(np.random.default_rng(0).random((6, 8, 8)), os.path.join(tempfile.mkdtemp(), "g.png"), ncols=3)
    >>> p.suffix
    '.png'
    """
    from PIL import Image

    arr = as_images(images, image_shape)
    lo, hi = value_range
    arr = np.clip((arr - lo) / (hi - lo), 0.0, 1.0)
    canvas = mosaic(arr, int(ncols or math.ceil(math.sqrt(len(arr)))), padding)
    pixels = np.round(canvas * 255).astype(np.uint8).repeat(scale, 0).repeat(scale, 1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="PNG")
    return path
