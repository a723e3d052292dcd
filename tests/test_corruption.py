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


def test_salt_and_pepper_defaults_to_each_features_batch_range():
    # three features on different scales (standardized tabular data looks like this)
    X = torch.rand(200, 3, generator=torch.Generator().manual_seed(2)) * torch.tensor([1.0, 10.0, 0.1]) - torch.tensor([0.0, 5.0, 3.0])
    out = corruption.salt_and_pepper(X, 0.3, torch.Generator().manual_seed(2))
    changed = out != X
    assert changed.any(0).all()
    for j in range(3):
        vals = set(out[changed[:, j], j].unique().tolist())
        assert vals == {float(X[:, j].min()), float(X[:, j].max())}, j


def test_feature_extremes_per_column_and_per_image_channel():
    X = torch.tensor([[0.0, 5.0], [2.0, -1.0], [1.0, 3.0]])
    low, high = corruption.feature_extremes(X)
    assert low.tolist() == [0.0, -1.0] and high.tolist() == [2.0, 5.0]
    images = torch.zeros(4, 2, 3, 3)
    images[0, 0, 1, 1] = 1.0  # one bright pixel in channel 0; channel 1 spans [-2, 0]
    images[2, 1, 0, 0] = -2.0
    low, high = corruption.feature_extremes(images)
    assert low.shape == high.shape == (2, 3, 3)
    assert (high[0] == 1.0).all() and (low[0] == 0.0).all()  # every pixel of a channel shares its range
    assert (high[1] == 0.0).all() and (low[1] == -2.0).all()


def test_per_sample_levels_and_ranges(digits_train):
    X = digits_train[0][:400]
    nonzero = X.flatten(1) != 0
    levels = torch.tensor([0.0, 1.0]).repeat(200)  # alternate: untouched, fully masked
    out = corruption.masking(X, levels, torch.Generator().manual_seed(0))
    assert torch.equal(out[0::2], X[0::2]) and (out[1::2] == 0).all()
    std = torch.linspace(0.0, 1.0, 400)
    noise = corruption.gaussian(torch.zeros(400, 2000), std, torch.Generator().manual_seed(0)).std(1)
    assert noise[0] == 0 and ((noise[1:] / std[1:] - 1).abs() < 5 / math.sqrt(2 * 2000)).all()
    # a range: each sample draws its own level uniformly from it
    drawn = corruption.draw_levels((0.1, 0.6), 5000, torch.Generator().manual_seed(1))
    assert drawn.shape == (5000,) and 0.1 <= float(drawn.min()) and float(drawn.max()) <= 0.6
    assert abs(float(drawn.mean()) - 0.35) < 5 * 0.5 / math.sqrt(12 * 5000)
    hit = (corruption.corrupt(X, "masking", (0.1, 0.6), torch.Generator().manual_seed(3)) == 0).flatten(1) & nonzero
    frac = hit.sum(1) / nonzero.sum(1)  # (400,) per-sample masked fraction
    assert frac.std() > 0.1  # levels differ between samples
    assert abs(float(frac.mean()) - 0.35) < 0.03
    assert corruption.draw_levels(0.3, 10) == 0.3


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
    shared = clean.state_dict().keys()
    clean.load_state_dict({k: v for k, v in model.state_dict().items() if k in shared})

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
    low, high = corruption.feature_extremes(X)  # before training starts: the batch's own range
    noisy_in = torch.minimum(torch.maximum(noisy_in, low), high)  # clip_noise
    assert torch.equal(t1.loss, t2.loss)  # the generator drives the noise
    assert not torch.equal(t1.z, ref.z)  # the encoder saw a corrupted input ...
    torch.testing.assert_close(t1.z, clean.encode(noisy_in))  # ... exactly this one
    # ... and the target stays clean
    torch.testing.assert_close(t1.parts["recon"], ((t1.x_hat - X) ** 2).flatten(1).sum(1))


def test_denoising_salt_and_pepper_uses_the_training_datas_feature_extremes(model_factory, tmp_path):
    """Each feature is hit with its own extremes in the training data, not the batch's overall
    min/max (which puts standardized features far outside their range), and the extremes are
    kept with the model."""
    from aekit import checkpoint, train

    g = torch.Generator().manual_seed(0)
    scale, shift = torch.tensor([1.0, 8.0, 0.5, 3.0]), torch.tensor([0.0, -4.0, 2.0, -1.0])
    X = torch.rand(300, 4, generator=g) * scale + shift  # feature j spans [shift_j, shift_j + scale_j]
    model = model_factory("denoising", input_shape=(4,), noise="salt_and_pepper", noise_level=0.5, latent_dim=2)
    train.train(model, X, epochs=1, batch_size=100, device="cpu", progress=False)
    torch.testing.assert_close(model.feature_low, X.min(0).values)
    torch.testing.assert_close(model.feature_high, X.max(0).values)
    batch = X[:8] * 0.5 + shift * 0.5 + scale * 0.25  # a narrower batch, inside each feature's range
    model.train()
    out = model.corrupt(batch, torch.Generator().manual_seed(1))
    hit = out != batch
    assert hit.any(0).all()
    for j in range(4):
        assert set(out[hit[:, j], j].tolist()) <= {float(X[:, j].min()), float(X[:, j].max())}, j
    loaded = checkpoint.load_model(checkpoint.save_model(model, tmp_path / "dae.safetensors")).train()
    assert torch.equal(loaded.corrupt(batch, torch.Generator().manual_seed(1)), out)


def test_denoising_clips_corrupted_inputs_to_each_features_training_range(model_factory):
    X = torch.rand(200, 3, generator=torch.Generator().manual_seed(0)) * torch.tensor([1.0, 4.0, 0.2])
    model = model_factory("denoising", input_shape=(3,), latent_dim=2, noise="gaussian", noise_level=2.0)
    model.on_train_start(X)
    model.train()
    out = model.corrupt(X, torch.Generator().manual_seed(1))
    assert (out.min(0).values == X.min(0).values).all() and (out.max(0).values == X.max(0).values).all()
    free = model_factory("denoising", input_shape=(3,), latent_dim=2, noise_level=2.0, clip_noise=False).train()
    free.on_train_start(X)
    unclipped = free.corrupt(X, torch.Generator().manual_seed(1))
    assert (unclipped.min(0).values < X.min(0).values).all() and not hasattr(free, "feature_low")
    inside = (unclipped >= X.min(0).values) & (unclipped <= X.max(0).values)
    assert torch.equal(out[inside], unclipped[inside])  # the same noise, only clipped
