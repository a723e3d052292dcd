"""aekit.losses against closed forms, hand computations, torch's own functions, Monte Carlo
estimates and explicit Jacobians."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torch.autograd.functional import jacobian
from torch.distributions import Normal

from aekit import losses
from aekit.nn import MLP, ConvEncoder

FINITE = st.floats(-1e3, 1e3, allow_nan=False, width=32)
LOGVAR = st.floats(-60.0, 60.0, allow_nan=False, width=32)


def vectors(elements, k=6):
    return arrays(np.float32, (3, k), elements=elements).map(torch.from_numpy)


def mc_check(log_ratio: torch.Tensor, exact: torch.Tensor, n_se: float = 5.0) -> None:
    """exact must lie within n_se standard errors of the Monte Carlo mean of log_ratio (N, B)."""
    est = log_ratio.mean(0)
    se = log_ratio.std(0) / math.sqrt(log_ratio.shape[0])
    assert torch.all((est - exact).abs() < n_se * se + 1e-9), (est, exact, se)


# ---------------------------------------------------------------------------- kl_normal


def test_kl_normal_is_exactly_zero_at_the_prior():
    kl = losses.kl_normal(torch.zeros(4, 7), torch.zeros(4, 7))
    assert kl.shape == (4,)
    assert torch.equal(kl, torch.zeros(4))
    assert torch.equal(losses.kl_normal(torch.zeros(2, 3), torch.zeros(2, 3), per_dim=True), torch.zeros(2, 3))


def test_kl_normal_is_accurate_for_tiny_log_variances():
    # sigma^2 - 1 - log sigma^2 ~ logvar^2 / 2 cancels catastrophically if written with exp(logvar) - 1
    logvar = torch.tensor([[1e-3, -1e-3, 1e-4]])
    expected = 0.5 * (torch.expm1(logvar.double()) - logvar.double())
    got = losses.kl_normal(torch.zeros_like(logvar), logvar, per_dim=True)
    torch.testing.assert_close(got.double(), expected, rtol=1e-3, atol=0)


@settings(max_examples=200, deadline=None)
@given(mu=vectors(FINITE), logvar=vectors(LOGVAR))
def test_kl_normal_is_never_negative(mu, logvar):
    kl = losses.kl_normal(mu, logvar, per_dim=True)
    assert not torch.isnan(kl).any()
    assert (kl >= 0).all()
    torch.testing.assert_close(kl.sum(1), losses.kl_normal(mu, logvar))


def test_kl_normal_extreme_inputs_are_not_negative_or_nan():
    mu = torch.tensor([[0.0, 0.0, 0.0, 0.0, 1e20, -1e20]])
    logvar = torch.tensor([[1e4, -1e4, 88.0, -88.0, 0.0, 0.0]])
    kl = losses.kl_normal(mu, logvar, per_dim=True)
    assert not torch.isnan(kl).any() and (kl >= 0).all()
    assert torch.isinf(kl[0, 0]) and torch.isinf(kl[0, 4])
    assert kl[0, 1] == pytest.approx(0.5 * (1e4 - 1))


def test_kl_normal_matches_hand_value():
    # KL(N(1, e) || N(0, 1)) = 0.5 * (1 + e - 1 - 1)
    assert float(losses.kl_normal(torch.tensor([[1.0]]), torch.tensor([[1.0]]))) == pytest.approx(0.5 * (math.e - 1))


def test_kl_normal_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(5, 3, generator=g, dtype=torch.float64)
    logvar = torch.randn(5, 3, generator=g, dtype=torch.float64)
    q, p = Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(100_000, 5, 3, generator=g, dtype=torch.float64)
    mc_check((q.log_prob(z) - p.log_prob(z)).sum(-1), losses.kl_normal(mu, logvar))


# ---------------------------------------------------------------------------- kl_normal_normal


def test_kl_normal_normal_reduces_to_kl_normal_for_a_standard_prior():
    g = torch.Generator().manual_seed(1)
    mu, logvar = torch.randn(6, 4, generator=g), 3 * torch.randn(6, 4, generator=g)
    zeros = torch.zeros_like(mu)
    torch.testing.assert_close(losses.kl_normal_normal(mu, logvar, zeros, zeros), losses.kl_normal(mu, logvar))
    torch.testing.assert_close(
        losses.kl_normal_normal(mu, logvar, zeros, zeros, per_dim=True), losses.kl_normal(mu, logvar, per_dim=True)
    )


@settings(max_examples=100, deadline=None)
@given(mu=vectors(FINITE), logvar=vectors(LOGVAR), mu_p=vectors(FINITE), logvar_p=vectors(st.floats(-20, 20, width=32)))
def test_kl_normal_normal_is_zero_for_equal_and_never_negative(mu, logvar, mu_p, logvar_p):
    assert torch.equal(losses.kl_normal_normal(mu, logvar, mu, logvar), torch.zeros(3))
    kl = losses.kl_normal_normal(mu, logvar, mu_p, logvar_p, per_dim=True)
    assert not torch.isnan(kl).any() and (kl >= 0).all()


def test_kl_normal_normal_matches_monte_carlo():
    g = torch.Generator().manual_seed(2)
    mu_q, lv_q, mu_p, lv_p = (torch.randn(4, 3, generator=g, dtype=torch.float64) for _ in range(4))
    q, p = Normal(mu_q, torch.exp(0.5 * lv_q)), Normal(mu_p, torch.exp(0.5 * lv_p))
    z = mu_q + torch.exp(0.5 * lv_q) * torch.randn(100_000, 4, 3, generator=g, dtype=torch.float64)
    exact = losses.kl_normal_normal(mu_q, lv_q, mu_p, lv_p)
    mc_check((q.log_prob(z) - p.log_prob(z)).sum(-1), exact)
    # and torch's own closed form
    torch.testing.assert_close(exact, torch.distributions.kl_divergence(q, p).sum(-1))


# ---------------------------------------------------------------------------- kl_categorical


def test_kl_categorical_hand_values_and_zeros():
    p = torch.tensor([0.2, 0.3, 0.5])
    q = torch.tensor([0.1, 0.6, 0.3])
    hand = 0.2 * math.log(2.0) + 0.3 * math.log(0.5) + 0.5 * math.log(0.5 / 0.3)
    assert float(losses.kl_categorical(p, q)) == pytest.approx(hand, rel=1e-6)
    # 0 log 0 = 0: entries with p = 0 contribute nothing, wherever q puts its mass
    assert float(losses.kl_categorical(torch.tensor([0.5, 0.5, 0.0]), torch.tensor([0.25, 0.25, 0.5]))) == pytest.approx(
        math.log(2.0), rel=1e-6
    )
    assert float(losses.kl_categorical(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 0.0]))) == 0.0
    # infinite where q = 0 < p
    assert math.isinf(float(losses.kl_categorical(torch.tensor([0.5, 0.5]), torch.tensor([1.0, 0.0]))))


def test_kl_categorical_reduces_the_last_axis():
    g = torch.Generator().manual_seed(3)
    p = torch.rand(2, 5, 4, generator=g).softmax(-1)
    q = torch.rand(2, 5, 4, generator=g).softmax(-1)
    kl = losses.kl_categorical(p, q)
    assert kl.shape == (2, 5)
    torch.testing.assert_close(kl, (p * (p / q).log()).sum(-1))


@settings(max_examples=200, deadline=None)
@given(
    p=arrays(np.float64, 5, elements=st.floats(0, 1)),
    q=arrays(np.float64, 5, elements=st.floats(1e-3, 1)),
)
def test_kl_categorical_is_never_negative(p, q):
    p, q = torch.from_numpy(p), torch.from_numpy(q)
    if p.sum() == 0:
        p[0] = 1.0
    p, q = p / p.sum(), q / q.sum()
    kl = losses.kl_categorical(p, q)
    assert kl >= 0
    assert float(losses.kl_categorical(p, p)) == pytest.approx(0.0, abs=1e-12)


# ---------------------------------------------------------------------------- reconstruction losses


def test_mse_sums_over_features():
    x_hat, x = torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.tensor([[0.0, 0.0], [0.0, 3.0]])
    assert torch.equal(losses.mse(x_hat, x), torch.tensor([5.0, 9.0]))


def test_bce_matches_torch_and_the_logit_form():
    g = torch.Generator().manual_seed(4)
    logits = 4 * torch.randn(8, 1, 3, 3, generator=g, dtype=torch.float64)
    x = torch.rand(8, 1, 3, 3, generator=g, dtype=torch.float64)
    probs = torch.sigmoid(logits)
    ref = F.binary_cross_entropy(probs, x, reduction="none").flatten(1).sum(1)
    assert losses.bce(probs, x).shape == (8,)
    torch.testing.assert_close(losses.bce(probs, x), ref)
    torch.testing.assert_close(losses.bce_with_logits(logits, x), ref)


def test_bce_saturation_is_finite_and_logits_are_stable():
    assert torch.isfinite(losses.bce(torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.0]]))).all()
    # log(1 + e^100) = 100 exactly enough; a naive log(sigmoid) would give inf
    got = losses.bce_with_logits(torch.tensor([[100.0, -100.0]]), torch.tensor([[0.0, 1.0]]))
    assert float(got) == pytest.approx(200.0)


def test_gaussian_nll_matches_torch_normal():
    g = torch.Generator().manual_seed(5)
    x, mean = torch.randn(6, 2, 4, generator=g), torch.randn(6, 2, 4, generator=g)
    for logvar in (torch.randn(6, 2, 4, generator=g), torch.randn(2, 4, generator=g), torch.tensor(0.7)):
        ref = -Normal(mean, torch.exp(0.5 * logvar)).log_prob(x).flatten(1).sum(1)
        torch.testing.assert_close(losses.gaussian_nll(x, mean, logvar), ref)


# ---------------------------------------------------------------------------- sparsity


def test_kl_bernoulli_hand_values():
    rate = torch.tensor([0.2, 0.05, 0.5])
    got = losses.kl_bernoulli(0.05, rate)
    hand = [0.05 * math.log(0.05 / 0.2) + 0.95 * math.log(0.95 / 0.8), 0.0, 0.05 * math.log(0.1) + 0.95 * math.log(1.9)]
    torch.testing.assert_close(got, torch.tensor(hand), atol=1e-7, rtol=1e-5)
    assert torch.isfinite(losses.kl_bernoulli(0.05, torch.tensor([0.0, 1.0]))).all()  # rates are clipped


def test_sparsity_divergence_kinds():
    rate = torch.tensor([0.2, 0.05, 0.5])
    assert float(losses.sparsity_divergence(rate, 0.05, "kl")) == pytest.approx(float(losses.kl_bernoulli(0.05, rate).sum()))
    assert float(losses.sparsity_divergence(rate, 0.05, "kl")) > 0.3
    assert float(losses.sparsity_divergence(rate, 0.05, "l1")) == pytest.approx(0.15 + 0.0 + 0.45)
    assert float(losses.sparsity_divergence(rate, 0.05, "l2")) == pytest.approx(0.15**2 + 0.45**2)
    with pytest.raises(ValueError, match="divergence"):
        losses.sparsity_divergence(rate, 0.05, "js")


# ---------------------------------------------------------------------------- Jacobian penalties


def explicit_frobenius_sq(f, x: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
    """||df/dx_i||_F^2 per sample from the full Jacobian of one sample at a time."""
    vals = []
    for xi in x:
        J = jacobian(lambda v: f(v[None])[0], xi, create_graph=create_graph)  # (K, *x.shape[1:])
        vals.append(J.pow(2).sum())
    return torch.stack(vals)


@pytest.mark.parametrize("act,deriv", [(torch.sigmoid, lambda h: h * (1 - h)), (torch.tanh, lambda h: 1 - h * h)])
def test_contractive_single_layer_matches_the_jacobian(act, deriv):
    g = torch.Generator().manual_seed(6)
    W, b = torch.randn(5, 7, generator=g, dtype=torch.float64), torch.randn(5, generator=g, dtype=torch.float64)
    x = torch.randn(4, 7, generator=g, dtype=torch.float64)

    def f(v):
        return act(v @ W.T + b)

    got = losses.contractive_single_layer(deriv(f(x)), W)
    assert got.shape == (4,)
    torch.testing.assert_close(got, explicit_frobenius_sq(f, x))
    torch.testing.assert_close(losses.jacobian_frobenius_sq(f, x), explicit_frobenius_sq(f, x))


def test_jacobian_frobenius_sq_matches_explicit_jacobian_for_mlp_and_conv():
    torch.manual_seed(7)
    x = torch.rand(5, 1, 8, 8, dtype=torch.float64)
    for net in (MLP(64, (16,), 6, "tanh", "sigmoid"), ConvEncoder((1, 8, 8), (4,), 6, "relu")):
        net = net.double()
        got = losses.jacobian_frobenius_sq(net, x)
        assert got.shape == (5,)
        torch.testing.assert_close(got, explicit_frobenius_sq(net, x))


def test_jacobian_frobenius_sq_gradients_flow_to_parameters():
    torch.manual_seed(8)
    net = MLP(7, (6,), 4, "tanh", "sigmoid").double()
    x = torch.randn(3, 7, dtype=torch.float64)
    losses.jacobian_frobenius_sq(net, x).sum().backward()
    grads = [p.grad.clone() for p in net.parameters()]
    assert all(gr is not None and gr.abs().sum() > 0 for gr in grads)
    net.zero_grad()
    explicit_frobenius_sq(net, x, create_graph=True).sum().backward()
    for gr, p in zip(grads, net.parameters()):
        torch.testing.assert_close(gr, p.grad)
    assert not x.requires_grad  # the caller's tensor is left alone


def test_jacobian_frobenius_sq_under_no_grad_is_detached_and_equal():
    torch.manual_seed(9)
    net = MLP(7, (6,), 4, "tanh").double()
    x = torch.randn(3, 7, dtype=torch.float64)
    with torch.no_grad():
        val = losses.jacobian_frobenius_sq(net, x)
    assert not val.requires_grad
    torch.testing.assert_close(val, losses.jacobian_frobenius_sq(net, x).detach())


def test_bernoulli_log_likelihood_broadcasts_draws_against_their_data_point():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 5, 3, 4, generator=g) * 6  # (S, B, ...)
    x = torch.rand(5, 3, 4, generator=g)  # grey values too: the cross-entropy
    x[0] = x[0].round()
    out = losses.bernoulli_log_likelihood(logits, x)
    assert out.shape == (7, 5)
    ref = -losses.bce_with_logits(logits.reshape(35, 3, 4), x.repeat(7, 1, 1)).reshape(7, 5)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-5)
