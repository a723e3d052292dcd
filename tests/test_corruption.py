"""Noise processes of aekit.corruption: statistics within binomial tolerances, exact values,
reproducibility, validation, and the denoising model's use of them."""

from __future__ import annotations

import math

import pytest
import torch

from aekit import corruption

LEVELS = [0.1, 0.25, 0.5, 0.9]


def binomial_tol(n: int, p: float, n_sd: float = 5.0) -> float:
    """Tolerance on an observed fraction of n Bernoulli(p) trials: n_sd standard deviations."""
    return n_sd * math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("level", LEVELS)
def test_masking_zeroes_the_requested_fraction(level, digits_train):
    X = digits_train[0]
    out = corruption.masking(X, level, torch.Generator().manual_seed(0))
    assert out.shape == X.shape and out.dtype == X.dtype
    nonzero = X != 0
    n = int(nonzero.sum())
    frac = float((out[nonzero] == 0).float().mean())
    assert abs(frac - level) < binomial_tol(n, level), (frac, level)
    kept = out[nonzero] != 0
    assert torch.equal(out[nonzero][kept], X[nonzero][kept])  # survivors are untouched
    assert (out[~nonzero] == 0).all()


@pytest.mark.parametrize("level", LEVELS)
def test_salt_and_pepper_values_and_fractions(level, digits_train):
    X = digits_train[0] * 0.5 + 0.25  # values in [0.25, 0.75]: never equal to low or high below
    low, high = -1.0, 2.0
    out = corruption.salt_and_pepper(X, level, torch.Generator().manual_seed(1), low=low, high=high)
    changed = out != X
    assert torch.all((out[changed] == low) | (out[changed] == high))
    n = X.numel()
    frac = float(changed.float().mean())
    assert abs(frac - level) < binomial_tol(n, level)
    n_hit = int(changed.sum())
    high_share = float((out[changed] == high).float().mean())
    assert abs(high_share - 0.5) < binomial_tol(n_hit, 0.5)


def test_salt_and_pepper_defaults_to_the_batch_range(digits_train):
    X = digits_train[0][:200] * 0.6 + 0.2  # range [0.2, 0.8]
    out = corruption.salt_and_pepper(X, 0.3, torch.Generator().manual_seed(2))
    changed = out != X
    assert changed.any()
    vals = set(out[changed].unique().tolist())
    assert vals == {float(X.min()), float(X.max())}


@pytest.mark.parametrize("std", [0.05, 0.3, 1.0])
def test_gaussian_noise_std_and_mean(std, digits_train):
    X = digits_train[0]
    noise = corruption.gaussian(X, std, torch.Generator().manual_seed(3)) - X
    n = noise.numel()
    # sample std of n normals has sd ~ std / sqrt(2n); the mean has sd std / sqrt(n)
    assert abs(float(noise.std()) - std) < 5 * std / math.sqrt(2 * n)
    assert abs(float(noise.mean())) < 5 * std / math.sqrt(n)
    assert corruption.gaussian(X, 0.0).equal(X)


@pytest.mark.parametrize("kind,level", [("gaussian", 0.3), ("masking", 0.3), ("salt_and_pepper", 0.3)])
def test_generator_reproducibility(kind, level, digits_train):
    X = digits_train[0][:100]
    a = corruption.corrupt(X, kind, level, torch.Generator().manual_seed(7))
    b = corruption.corrupt(X, kind, level, torch.Generator().manual_seed(7))
    c = corruption.corrupt(X, kind, level, torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a, X)
    assert torch.equal(X, digits_train[0][:100])  # the clean batch is not modified in place


@pytest.mark.parametrize(
    "kind,level", [("gaussian", -0.1), ("masking", -0.1), ("masking", 1.5), ("salt_and_pepper", 1.01), ("masking", float("nan"))]
)
def test_invalid_levels_raise(kind, level):
    with pytest.raises(ValueError):
        corruption.corrupt(torch.rand(4, 3), kind, level)


def test_unknown_noise_kind_raises():
    with pytest.raises(ValueError, match="unknown noise"):
        corruption.corrupt(torch.rand(4, 3), "speckle", 0.1)


def test_extreme_levels():
    X = torch.rand(50, 10) + 0.5
    assert torch.equal(corruption.masking(X, 0.0), X)
    assert torch.equal(corruption.masking(X, 1.0), torch.zeros_like(X))
    assert torch.equal(corruption.salt_and_pepper(X, 0.0), X)


@pytest.mark.parametrize("noise,level", [("gaussian", 0.5), ("masking", 0.5), ("salt_and_pepper", 0.5)])
def test_denoising_model_corrupts_only_in_train_mode(noise, level, model_factory, batch):
    X, _ = batch
    model = model_factory("denoising", noise=noise, noise_level=level)
    clean = model_factory("ae")  # same seed: identical encoder and decoder weights
    clean.load_state_dict(model.state_dict())

    model.eval()
    clean.eval()
    a = model(X, generator=torch.Generator().manual_seed(0))
    b = model(X, generator=torch.Generator().manual_seed(1))
    ref = clean(X)
    assert torch.equal(a.loss, b.loss) and torch.equal(a.z, ref.z) and torch.equal(a.x_hat, ref.x_hat)

    model.train()
    t1 = model(X, generator=torch.Generator().manual_seed(0))
    t2 = model(X, generator=torch.Generator().manual_seed(0))
    noisy_in = corruption.corrupt(X, noise, level, torch.Generator().manual_seed(0))
    assert torch.equal(t1.loss, t2.loss)  # the generator drives the noise
    assert not torch.equal(t1.z, ref.z)  # the encoder saw a corrupted input ...
    torch.testing.assert_close(t1.z, clean.encode(noisy_in))  # ... exactly this one
    # ... and the target stays clean
    torch.testing.assert_close(t1.parts["recon"], ((t1.x_hat - X) ** 2).flatten(1).sum(1))
