"""Tests for aekit.evaluate: the metrics every model gets, the ELBO / importance-weighted NLL maths
(checked on a linear-Gaussian VAE whose marginal likelihood is known in closed form, and on a
trained digits VAE), active units, codebook use, memory-bounded batching."""

from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pytest
import torch

from aekit import evaluate as evaluate_module
from aekit._registry import build_model, model_names
from aekit._utils import seeded
from aekit.datasets import load_dataset
from aekit.evaluate import evaluate, importance_weighted_nll
from aekit.train import train

BASE_KEYS = {"n_samples", "recon_mse", "psnr", "recon_bce"}
VARIATIONAL_KEYS = {"elbo", "kl_total", "kl_per_dim", "latent_dim", "active_units", "posterior_collapse", "posterior_collapse_message"}
QUANTISED_KEYS = {"codebook_usage", "perplexity"}


def _small(name: str, **extra):
    config = {"input_shape": (1, 8, 8), "latent_dim": 8, "hidden_dims": (32,), **extra}
    if name == "hvae":
        config["lower_latent_dims"] = (4,)
    with seeded(0):
        return build_model(name, **config)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", split="all")


@pytest.fixture(scope="module")
def trained_vae(digits):
    """A VAE trained for a few seconds on digits (8 latent dims: some end up unused)."""
    model = _small("vae", hidden_dims=(64, 32))
    train(model, digits.X, epochs=20, batch_size=64, lr=3e-3, progress=False, seed=0)
    return model


# ----------------------------------------------------------------------------- contract over the registry


@pytest.mark.parametrize("name", model_names())
def test_keys_and_reconstruction_error_for_every_model(name):
    model = _small(name)
    X = torch.rand(50, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    y = torch.arange(50) % 10 if model.conditional else None
    model.train()
    r = evaluate(model, X, y, batch_size=16)
    assert model.training, "evaluate must restore the model's mode"
    expected = set(BASE_KEYS)
    if model.variational:
        expected |= VARIATIONAL_KEYS | ({"levels"} if model.hierarchical else set())
    if model.quantised:
        expected |= QUANTISED_KEYS
    assert set(r) == expected
    with torch.no_grad():
        model.eval()
        x_hat = model.reconstruct(X, y)
    mse = float(((x_hat - X) ** 2).mean())
    assert r["n_samples"] == 50
    assert r["recon_mse"] == pytest.approx(mse, rel=1e-5)
    assert r["psnr"] == pytest.approx(10 * math.log10(1.0 / mse), rel=1e-5)
    bce = -(X * torch.log(x_hat.clamp(1e-7, 1 - 1e-7)) + (1 - X) * torch.log1p(-x_hat.clamp(1e-7, 1 - 1e-7)))
    assert r["recon_bce"] == pytest.approx(float(bce.sum() / 50), rel=1e-4)
    json.dumps(r)  # every value is JSON-able


def test_data_outside_unit_interval_uses_its_range_and_has_no_bce():
    model = _small("ae")
    X = torch.rand(40, 1, 8, 8, generator=torch.Generator().manual_seed(2)) * 10 - 3  # range ~[-3, 7]
    r = evaluate(model, X)
    assert "recon_bce" not in r
    peak = float(X.max() - X.min())
    assert r["psnr"] == pytest.approx(10 * math.log10(peak**2 / r["recon_mse"]), rel=1e-5)


def test_nll_only_when_asked():
    model = _small("vae")
    X = torch.rand(10, 1, 8, 8)
    assert "nll" not in evaluate(model, X)
    r = evaluate(model, X, nll_samples=3)
    assert r["nll_samples"] == 3 and math.isfinite(r["nll"])
    with pytest.raises(ValueError, match="nll_samples"):
        evaluate(model, X, nll_samples=-1)


def test_same_seed_same_numbers():
    model = _small("vae")
    X = torch.rand(30, 1, 8, 8)
    a, b = evaluate(model, X, nll_samples=4, seed=3), evaluate(model, X, nll_samples=4, seed=3)
    c = evaluate(model, X, nll_samples=4, seed=4)
    assert a == b
    assert a["elbo"] != c["elbo"] and a["nll"] != c["nll"]


# ----------------------------------------------------------------------------- the maths on a known model


def _linear_gaussian_vae(sigma: float, exact: bool):
    """z ~ N(0, 1), x | z ~ N(z, sigma^2), so p(x) = N(0, 1 + sigma^2). With ``exact`` the encoder is
    the true posterior N(x / (1 + sigma^2), sigma^2 / (1 + sigma^2)); otherwise a wrong one."""
    model = build_model(
        "vae", input_shape=(1,), latent_dim=1, hidden_dims=(), activation=None,
        likelihood="gaussian", gaussian_std=sigma,
    )
    s2 = sigma**2
    with torch.no_grad():
        model.decoder.out.weight.fill_(1.0)
        model.decoder.out.bias.zero_()
        enc = model.encoder.out
        if exact:
            enc.weight.copy_(torch.tensor([[1 / (1 + s2)], [0.0]]))
            enc.bias.copy_(torch.tensor([0.0, math.log(s2 / (1 + s2))]))
        else:  # mean shrunk and shifted, variance doubled: a poor (but overdispersed) proposal
            enc.weight.copy_(torch.tensor([[0.5 / (1 + s2)], [0.0]]))
            enc.bias.copy_(torch.tensor([0.1, math.log(2 * s2 / (1 + s2))]))
    return model


def _true_nll(x: torch.Tensor, sigma: float) -> float:
    var = 1 + sigma**2
    return float((0.5 * (math.log(2 * math.pi * var) + x.double() ** 2 / var)).mean())


def test_exact_posterior_gives_the_true_marginal_likelihood_for_any_k():
    sigma = 0.5
    model = _linear_gaussian_vae(sigma, exact=True)
    x = torch.randn(400, 1, generator=torch.Generator().manual_seed(100)) * math.sqrt(1 + sigma**2)
    truth = _true_nll(x, sigma)
    for k in (1, 7, 300):
        r = evaluate(model, x, nll_samples=k, batch_size=4096)
        assert r["nll"] == pytest.approx(truth, abs=1e-4)  # every importance weight equals p(x)
    # KL(q || posterior) = 0; the ELBO (one sample, analytic KL) is exact only in expectation
    assert -r["elbo"] == pytest.approx(truth, abs=0.1)


def test_iwae_tightens_towards_the_true_nll_with_a_poor_proposal():
    sigma = 0.5
    model = _linear_gaussian_vae(sigma, exact=False)
    x = torch.randn(300, 1, generator=torch.Generator().manual_seed(101)) * math.sqrt(1 + sigma**2)
    truth = _true_nll(x, sigma)
    r1, r10, r2000 = (evaluate(model, x, nll_samples=k, batch_size=256) for k in (1, 10, 2000))
    assert r1["nll"] == pytest.approx(-r1["elbo"], abs=0.15)  # K = 1 is the (loose) ELBO
    assert -r1["elbo"] > truth + 0.4
    assert r1["nll"] > r10["nll"] > r2000["nll"] - 0.02
    assert r2000["nll"] == pytest.approx(truth, abs=0.02)


def test_nll_per_point_is_exact_when_log_weights_are_constant():
    """log w = x_0 for every sample: the estimate must be -x_0 per point for any K and chunking
    (catches a missing -log K, a sign error, or samples mixed up between data points)."""

    class Constant(torch.nn.Module):
        def log_weights(self, x, y=None, n_samples=1, *, generator=None):
            return x[:, 0] + 0 * torch.randn(n_samples, x.shape[0], generator=generator)  # (S, B)

    x = torch.randn(7, 3)
    for k, bs in ((1, 4), (5, 3), (1000, 64)):
        out = importance_weighted_nll(Constant(), x, None, k, batch_size=bs, generator=torch.Generator())
        torch.testing.assert_close(out, -x[:, 0].double())


def test_k1_equals_minus_elbo_in_expectation(trained_vae, digits):
    X = torch.as_tensor(digits.X)
    r = evaluate(trained_vae, X, seed=0)
    per_point = importance_weighted_nll(trained_vae.eval(), X, None, 1, generator=torch.Generator().manual_seed(5))
    se = float(per_point.std()) / math.sqrt(len(X))
    assert float(per_point.mean()) == pytest.approx(-r["elbo"], abs=4 * se + 0.05)


def test_iwae_bound_ordering_on_trained_vae(trained_vae, digits):
    X = torch.as_tensor(digits.X)
    r = {k: evaluate(trained_vae, X, nll_samples=k, batch_size=2048) for k in (1, 10, 100)}
    elbo = r[1]["elbo"]
    assert r[100]["nll"] <= -elbo  # the bound ordering
    assert r[1]["nll"] >= r[10]["nll"] - 0.02 >= r[100]["nll"] - 0.04  # weakly decreasing in K
    assert -elbo - r[100]["nll"] < 5.0  # and not absurdly far apart on a fitted model


# ----------------------------------------------------------------------------- memory: batching over samples and data


def _count_rows(module: torch.nn.Module) -> list[int]:
    """Rows of every batch ``module`` receives from now on."""
    rows: list[int] = []
    module.register_forward_hook(lambda m, inputs, output: rows.append(len(inputs[0])))
    return rows


def test_large_k_is_batched_over_samples_and_data():
    model = _small("vae").eval()
    X = torch.rand(6, 1, 8, 8)
    enc, dec = _count_rows(model.encoder), _count_rows(model.decoder)
    out = importance_weighted_nll(model, X, None, 5000, batch_size=512, generator=torch.Generator().manual_seed(0))
    assert out.shape == (6,) and torch.isfinite(out).all()
    assert max(dec) <= 512 and sum(dec) == 6 * 5000  # every draw decoded once, in bounded chunks
    assert sum(enc) == 6 * math.ceil(5000 / (512 // 6))  # encoded once per chunk, not once per draw

    # through evaluate: batch_size bounds the rows of every decoder pass whatever K is
    enc.clear(), dec.clear()
    r = evaluate(model, torch.rand(40, 1, 8, 8), nll_samples=5000, batch_size=1000)
    assert max(dec) <= 1000 and sum(dec) >= 40 * 5000
    assert sum(enc) <= 40 * 10  # (the per-draw encoding did 40 * 5000)
    assert math.isfinite(r["nll"])


@pytest.mark.parametrize("name", ["vae", "hvae"])
def test_each_point_is_encoded_once_when_its_draws_fit_one_pass(name):
    model = _small(name).eval()
    enc = _count_rows(model.encoder if name == "vae" else model.up[0])
    importance_weighted_nll(model, torch.rand(6, 1, 8, 8), None, 100, batch_size=1024, generator=torch.Generator())
    assert enc == [6]


@pytest.mark.parametrize("name", ["vae", "hvae"])
def test_batched_nll_equals_one_draw_at_a_time(name):
    """The batched estimator gives the same numbers as the plain definition, -log mean_k w_k with
    each w_k from ``log_weight`` on one draw per row (same generator, so the same draws)."""
    model = _small(name).eval()
    X = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(7))
    k = 64
    fast = importance_weighted_nll(model, X, None, k, batch_size=100, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    per_pass = 100 // 5
    log_w = []
    with torch.no_grad():
        for start in range(0, k, per_pass):
            s = min(per_pass, k - start)
            log_w.append(model.log_weight(X.repeat(s, 1, 1, 1), generator=g).double().reshape(s, 5))
    plain = -(torch.logsumexp(torch.cat(log_w), dim=0) - math.log(k))
    torch.testing.assert_close(fast, plain, atol=1e-4, rtol=0)


# ----------------------------------------------------------------------------- active units, collapse


def _vae_with_dead_dims(n_active: int, k: int = 6):
    """A VAE whose posterior mean varies with x in the first ``n_active`` dims only; the others
    have mu = 0 and logvar = 0 (exactly the prior) for every x."""
    model = build_model("vae", input_shape=(10,), latent_dim=k, hidden_dims=(), activation=None)
    with torch.no_grad():
        out = model.encoder.out  # Linear(10 -> 2k): [mu | logvar]
        out.weight.zero_()
        out.bias.zero_()
        for j in range(n_active):
            out.weight[j, j] = 2.0
    return model


@pytest.mark.parametrize("n_active", [0, 2, 3, 6])
def test_active_units_counts_known_dead_dims(n_active):
    model = _vae_with_dead_dims(n_active)
    X = torch.rand(500, 10, generator=torch.Generator().manual_seed(0))  # Var(2 x) = 1/3 > 0.01
    r = evaluate(model, X)
    assert r["latent_dim"] == 6
    assert r["active_units"] == n_active
    assert r["posterior_collapse"] is (n_active < 3)
    assert bool(r["posterior_collapse_message"]) is (n_active < 3)
    kl = r["kl_per_dim"]
    assert kl[n_active:] == [0.0] * (6 - n_active)  # dead dims sit on the prior
    for j in range(n_active):
        assert kl[j] == pytest.approx(float((0.5 * (2 * X[:, j]) ** 2).mean()), rel=1e-5)


def test_active_units_threshold_is_on_the_covariance():
    model = _vae_with_dead_dims(2)
    with torch.no_grad():
        model.encoder.out.weight[1, 1] = 0.2  # Var(0.2 x) = 0.04 / 12 < 0.01
    X = torch.rand(2000, 10, generator=torch.Generator().manual_seed(0))
    assert evaluate(model, X)["active_units"] == 1


def test_trained_vae_reports_latent_summary(trained_vae, digits):
    r = evaluate(trained_vae, digits.X)
    assert len(r["kl_per_dim"]) == 8 and all(v >= 0 for v in r["kl_per_dim"])
    with torch.no_grad():
        mu, _ = trained_vae.posterior(torch.as_tensor(digits.X))
    assert r["active_units"] == int((mu.var(dim=0) > 0.01).sum())
    assert 1 <= r["active_units"] <= 8


def test_hvae_reports_the_top_layer():
    model = _small("hvae")
    r = evaluate(model, torch.rand(20, 1, 8, 8), nll_samples=2)
    assert r["latent_dim"] == 8 == len(r["kl_per_dim"])
    assert math.isfinite(r["nll"]) and math.isfinite(r["elbo"])


def test_hvae_reports_every_level_with_the_kl_of_its_elbo():
    """Per-level KL and active units, computed as the ELBO computes them (with the min_variance
    floor): the top level's KL equals the mean of the model's own kl_2 exactly."""
    model = _small("hvae", min_variance=0.3).eval()  # levels: z_1 (4), z_2 (8)
    with torch.no_grad():
        model.q_heads[-1].bias[8:] = -20.0  # raw top log-variances far below log(0.3)
        model.q_heads[-1].weight[:8] *= 30.0  # top means that vary with x: active units
        model.q_heads[0].weight.zero_(), model.q_heads[0].bias.zero_()  # z_1's bottom-up estimate: N(0, 1)
        last = model.p_nets[0].out
        last.weight.zero_(), last.bias.zero_()  # p(z_1 | z_2) = N(0, 1): q(z_1 | .) = N(0, 1/2) for every x
    X = torch.rand(200, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    r = evaluate(model, X)
    with torch.no_grad():
        parts = model(X, generator=torch.Generator().manual_seed(1)).parts
    top = float(parts["kl_2"].mean())
    assert [lv["latent_dim"] for lv in r["levels"]] == [4, 8]
    assert sum(r["kl_per_dim"]) == pytest.approx(top, rel=1e-5)
    assert r["levels"][1]["kl"] == pytest.approx(top, rel=1e-5)
    assert r["levels"][1]["active_units"] == r["active_units"] > 0
    half = 0.5 * (0.5 - 1 - math.log(0.5))  # KL(N(0, 1/2) || N(0, 1)) per dimension
    assert r["levels"][0]["kl_per_dim"] == pytest.approx([half] * 4, rel=1e-5)
    assert r["levels"][0]["active_units"] == 0
    assert r["kl_total"] == pytest.approx(top + 4 * half, rel=1e-5)
    assert r["kl_total"] == pytest.approx(float(parts["kl"].mean()), rel=1e-5)
    rows = {row.key: row for row in evaluate_module.metric_rows(r)}  # each level in words, as the CLI prints it
    assert rows["kl_level_1"].value == f"{4 * half:.3g}" and "0/4 active units" in rows["kl_level_1"].unit
    assert rows["kl_level_2"].unit.startswith("nats; ") and f"{r['active_units']}/8 active" in rows["kl_level_2"].unit


# ----------------------------------------------------------------------------- VQ-VAE codebook use


def test_vqvae_usage_and_perplexity_match_the_codes():
    model = _small("vqvae", codebook_size=16, embedding_dim=2).eval()
    X = torch.rand(300, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        model.codebook.copy_(torch.randn(16, 2, generator=torch.Generator().manual_seed(4)) * 0.3)
        codes = model.encode_indices(X).reshape(-1)
    counts = np.bincount(codes.numpy(), minlength=16)
    freq = counts / counts.sum()
    r = evaluate(model, X, batch_size=64)
    assert r["codebook_usage"] == pytest.approx((counts > 0).mean())
    nz = freq[freq > 0]
    assert r["perplexity"] == pytest.approx(math.exp(-(nz * np.log(nz)).sum()), rel=1e-6)


def test_vqvae_single_code_has_perplexity_one():
    model = _small("vqvae", codebook_size=8, embedding_dim=2).eval()
    with torch.no_grad():
        model.codebook.fill_(1e3)
        model.codebook[5] = 0.0  # every encoder output is nearest to entry 5
    r = evaluate(model, torch.rand(50, 1, 8, 8))
    assert r["codebook_usage"] == pytest.approx(1 / 8)
    assert r["perplexity"] == pytest.approx(1.0)


def test_docstring_examples_run():
    failures, tried = doctest.testmod(evaluate_module, raise_on_error=False)[:2]
    assert tried > 0 and failures == 0
