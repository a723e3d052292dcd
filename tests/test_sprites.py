"""The procedural sprites (aekit.sprites, load_dataset("sprites")): the factor grid, the renderer's
geometry and determinism, the seeded splits and their factors."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from aekit import sprites
from aekit.datasets import available_datasets, load_dataset


def _pixels_sha256(X: np.ndarray) -> str:
    return hashlib.sha256(np.packbits(X.astype(np.uint8)).tobytes()).hexdigest()


@pytest.fixture(scope="module")
def sprites_test():
    return load_dataset("sprites", split="test")


def test_factor_grid():
    assert sprites.FACTOR_NAMES == ("shape", "scale", "orientation", "x", "y")
    assert sprites.FACTOR_SIZES == (3, 6, 40, 32, 32) and sprites.N_IMAGES == 737_280
    values = sprites.factor_values()
    assert [len(values[n]) for n in sprites.FACTOR_NAMES] == list(sprites.FACTOR_SIZES)
    assert len(np.unique(np.round(np.mod(values["orientation"], 2 * np.pi), 9))) == 40  # distinct angles
    index = np.array([0, 1, 12345, sprites.N_IMAGES - 1])
    f = sprites.factors_from_index(index)
    assert np.array_equal(np.ravel_multi_index(f.T, sprites.FACTOR_SIZES), index)
    with pytest.raises(ValueError, match="grid indices"):
        sprites.factors_from_index([sprites.N_IMAGES])


def test_renders_binary_sprites_inside_the_frame():
    f = sprites.sample_factors(3000, 0)
    X = sprites.render(f, batch_size=700)  # several batches
    assert X.shape == (3000, 1, 64, 64) and X.dtype == np.float32
    assert set(np.unique(X)) == {0.0, 1.0}
    on = X.sum(axis=(1, 2, 3))
    assert on.min() >= 20  # every sprite is drawn
    border = X[:, 0, [0, -1], :].sum() + X[:, 0, :, [0, -1]].sum()
    assert border == 0  # the largest sprite at the extreme positions stays inside


def test_factors_do_what_they_say():
    base = np.array([[0, 2, 3, 10, 20]])

    def with_(k, v):
        f = base.copy()
        f[0, k] = v
        return sprites.render(f)[0, 0]

    # scale: area grows with scale, for every shape
    for shape in range(3):
        areas = [sprites.render([[shape, s, 3, 10, 20]]).sum() for s in range(6)]
        assert all(a < b for a, b in zip(areas, areas[1:])), areas
    # x moves the centre of mass right by (64 - 25) / 31 pixels a step, y moves it down
    rows, cols = np.mgrid[:64, :64]
    for k, grid in ((3, cols), (4, rows)):
        c0 = (with_(k, 5) * grid).sum() / with_(k, 5).sum()
        c1 = (with_(k, 25) * grid).sum() / with_(k, 25).sum()
        assert c1 - c0 == pytest.approx(20 * 39 / 31, abs=0.6)
    # the three shapes differ
    assert len({with_(0, s).tobytes() for s in range(3)}) == 3


def test_orientation_is_ambiguous_for_symmetric_shapes_only():
    def img(shape, o):
        return sprites.render([[shape, 5, o, 16, 16]])[0]

    assert np.array_equal(img(0, 3), img(0, 13))  # square: a quarter turn (10 steps) is the same image
    assert np.array_equal(img(1, 3), img(1, 23))  # ellipse: a half turn (20 steps)
    assert not np.array_equal(img(1, 3), img(1, 13))
    assert not np.array_equal(img(2, 3), img(2, 23))  # heart: every turn is visible
    assert not np.array_equal(img(0, 0), img(0, 5))  # 45 degrees is not a square's symmetry


def test_rendering_is_pinned():
    """The same images on every machine and version: a change of generator fails here."""
    f = sprites.split_factors("test")[:500]
    assert hashlib.sha256(f.astype("<i8").tobytes()).hexdigest() == (
        "b889585a2988ace5bcb9a09fb662f484ef485af9a80f093ab1e2f8e075103eb3")
    assert _pixels_sha256(sprites.render(f)) == "668d2fa9e28e0583da5763ba8ae80e60493e088a5bd28cef6e647e7544c7a3e4"


def test_splits_are_disjoint_seeded_and_shuffled():
    def grid_index(f):
        return np.ravel_multi_index(f.T, sprites.FACTOR_SIZES)

    train, test = grid_index(sprites.split_factors("train")), grid_index(sprites.split_factors("test"))
    assert len(train) == 50_000 and len(test) == 10_000
    assert len(np.unique(np.concatenate([train, test]))) == 60_000  # distinct and disjoint
    assert np.array_equal(grid_index(sprites.split_factors("all")), np.concatenate([train, test]))
    assert not np.array_equal(grid_index(sprites.split_factors("test", random_state=1)), test)
    # any first k images are a uniform sample: every shape among the first 30, not sorted
    assert set(sprites.split_factors("train")[:30, 0]) == {0, 1, 2}
    # and roughly uniform over each factor
    f = sprites.split_factors("train")
    for k, size in enumerate(sprites.FACTOR_SIZES):
        counts = np.bincount(f[:, k], minlength=size)
        assert counts.min() > 0.8 * len(f) / size


def test_load_dataset(sprites_test):
    assert "sprites" in available_datasets()
    d = sprites_test
    assert d.X.shape == (10_000, 1, 64, 64) and d.image_shape == (1, 64, 64)
    assert d.factor_names == sprites.FACTOR_NAMES and d.factors.shape == (10_000, 5) and d.factors.dtype == np.int64
    assert np.array_equal(d.y, d.factors[:, 0])  # the label is the shape
    assert np.array_equal(d.X[:50], sprites.render(d.factors[:50]))  # X is the rendering of its factors
    assert load_dataset("digits").factors is None  # data without known factors says so


def test_sample_factors_holds_factors_fixed():
    f = sprites.sample_factors(500, 3, fixed={"shape": 2, "x": 0})
    assert (f[:, 0] == 2).all() and (f[:, 3] == 0).all()
    assert len(np.unique(f[:, 2])) > 30  # the others vary
    assert np.array_equal(f, sprites.sample_factors(500, 3, fixed={"shape": 2, "x": 0}))
    with pytest.raises(ValueError, match="unknown factor 'colour'"):
        sprites.sample_factors(2, fixed={"colour": 1})
    with pytest.raises(ValueError, match="takes indices 0..5"):
        sprites.sample_factors(2, fixed={"scale": 6})


@pytest.mark.parametrize("bad, match", [
    (np.zeros((2, 4), np.int64), r"shaped \(n, 5\)"),
    (np.zeros((2, 5)), "integer indices"),
    (np.array([[3, 0, 0, 0, 0]]), "out of range"),
    (np.array([[0, 0, 0, -1, 0]]), "out of range"),
])
def test_render_rejects_bad_factors(bad, match):
    with pytest.raises(ValueError, match=match):
        sprites.render(bad)
