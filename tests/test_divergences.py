"""The distribution-matching losses against closed forms: the unbiased MMD (Gaussians under an RBF
kernel), the minibatch estimate of the KL's decomposition (a Gaussian aggregate posterior with known
correlation) and the discriminator's loss (its optimum is the log density ratio)."""

from __future__ import annotations

import math

import pytest
import torch

from aekit import losses


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------- MMD


def _rbf_expectation(delta_sq: float, var: float, d: int, scale: float) -> float:
    """E exp(-|u|^2 / C) for u ~ N(delta, var I_d)."""
    return (1 + 2 * var / scale) ** (-d / 2) * math.exp(-delta_sq / (scale + 2 * var))


def _rbf_mmd_closed_form(shift: float, s1: float, s2: float, d: int, scale: float) -> float:
    """MMD^2 between N(0, s1^2 I) and N(shift e_1, s2^2 I) under exp(-|a - b|^2 / C)."""
    return (_rbf_expectation(0.0, 2 * s1**2, d, scale) + _rbf_expectation(0.0, 2 * s2**2, d, scale)
            - 2 * _rbf_expectation(shift**2, s1**2 + s2**2, d, scale))


# Measured (300 draws of 100 vs 100 points in 3-D): estimate - closed form within 2 standard errors.
@pytest.mark.parametrize("shift, s1, s2", [(0.0, 1.0, 1.0), (0.5, 1.0, 1.0), (0.0, 1.0, 1.5), (1.0, 1.0, 0.5)])
def test_mmd_is_unbiased_for_gaussians_under_an_rbf_kernel(shift, s1, s2):
    d, n, reps = 3, 100, 300
    g = gen(0)
    values = []
    for _ in range(reps):
        x = s1 * torch.randn(n, d, generator=g, dtype=torch.float64)
        y = s2 * torch.randn(n, d, generator=g, dtype=torch.float64)
        y[:, 0] += shift
        values.append(float(losses.mmd(x, y, "rbf", scale=2.0 * d)))
    v = torch.tensor(values, dtype=torch.float64)
    se = float(v.std()) / math.sqrt(reps)
    assert abs(float(v.mean()) - _rbf_mmd_closed_form(shift, s1, s2, d, 2.0 * d)) < 4 * se + 1e-4


@pytest.mark.parametrize("kernel", losses.MMD_KERNELS)
def test_mmd_of_identical_samples_is_about_zero_and_of_shifted_ones_positive(kernel):
    x = torch.randn(400, 4, generator=gen(1))
    same = float(losses.mmd(x, x, kernel))
    # the U-statistic leaves out k(x_i, x_i) within a set but not across sets: -(2/n)(1 - mean k) <= 0
    assert -2 / 400 <= same <= 0
    y = torch.randn(400, 4, generator=gen(2))  # another draw of the same distribution
    assert abs(float(losses.mmd(x, y, kernel))) < 0.01
    shifts = [float(losses.mmd(x, y + s, kernel)) for s in (0.25, 0.5, 1.0, 2.0)]
    assert shifts[0] > 0.005 and shifts == sorted(shifts)  # grows with the shift
    assert float(losses.mmd(y + 1.0, x, kernel)) == pytest.approx(shifts[2], rel=1e-5)  # symmetric


def test_mmd_default_scale_and_kernels_by_hand():
    x, y = torch.randn(5, 3, generator=gen(3)), torch.randn(6, 3, generator=gen(4))
    d2 = torch.cdist(x, y).pow(2)
    dxx, dyy = torch.cdist(x, x).pow(2), torch.cdist(y, y).pow(2)
    for kernel, k in (("imq", lambda d: 6.0 / (6.0 + d)), ("rbf", lambda d: torch.exp(-d / 6.0))):
        by_hand = ((k(dxx).sum() - 5) / 20 + (k(dyy).sum() - 6) / 30 - 2 * k(d2).mean())
        assert float(losses.mmd(x, y, kernel)) == pytest.approx(float(by_hand), abs=1e-5)  # C = 2 * 3
    with pytest.raises(ValueError, match="kernel"):
        losses.mmd(x, y, "laplace")
    with pytest.raises(ValueError, match="scale"):
        losses.mmd(x, y, "imq", scale=0.0)


def test_mmd_of_one_row_is_a_zero_that_backpropagates():
    x = torch.randn(1, 3, requires_grad=True)
    out = losses.mmd(x, torch.randn(4, 3))
    out.backward()
    assert float(out.detach()) == 0.0 and torch.equal(x.grad, torch.zeros_like(x))


def test_mmd_gradient_pulls_samples_towards_the_other_set():
    x = (torch.randn(200, 2, generator=gen(5)) + 3.0).requires_grad_(True)
    losses.mmd(x, torch.randn(200, 2, generator=gen(6))).backward()
    assert float((-x.grad * (0 - x.detach())).sum(1).mean()) > 0  # descent moves x towards the origin


# ---------------------------------------------------------------------------- total correlation


def _gaussian_aggregate(rho: float, s: float, n: int, seed: int):
    """Posteriors q(z | x_j) = N(mu_j, s^2 I) with mu_j ~ N(0, [[1, rho], [rho, 1]]), one draw z_j
    each; their mixture is (for large n) N(0, C), C = [[1 + s^2, rho], [rho, 1 + s^2]]."""
    g = gen(seed)
    chol = torch.linalg.cholesky(torch.tensor([[1.0, rho], [rho, 1.0]], dtype=torch.float64))
    mu = torch.randn(n, 2, generator=g, dtype=torch.float64) @ chol.T
    z = mu + s * torch.randn(n, 2, generator=g, dtype=torch.float64)
    return z, mu, torch.full_like(mu, 2 * math.log(s))


def _closed_forms(rho: float, s: float) -> tuple[float, float, float]:
    """(MI, TC, dimension-wise KL) of that model: I(index; z) of a Gaussian channel, the TC of
    N(0, C) and sum_k KL(N(0, C_kk) || N(0, 1))."""
    c = torch.tensor([[1 + s * s, rho], [rho, 1 + s * s]], dtype=torch.float64)
    diag = torch.diagonal(c)
    mi = 0.5 * (torch.logdet(c) - 2 * math.log(s * s))
    tc = 0.5 * (torch.log(diag).sum() - torch.logdet(c))
    dwkl = 0.5 * (diag - 1 - torch.log(diag)).sum()
    return float(mi), float(tc), float(dwkl)


# Measured with 1000 rows: |estimate - closed form| <= 0.015 for TC and DWKL, <= 0.015 below for MI
# (the minibatch mixture's self-term and finite n).
@pytest.mark.parametrize("rho", [0.0, 0.5, 0.8])
def test_kl_decomposition_matches_closed_forms_for_a_gaussian_aggregate(rho):
    z, mu, logvar = _gaussian_aggregate(rho, 0.5, 1000, seed=0)
    mi, tc, dwkl = (float(t.mean()) for t in losses.kl_decomposition(z, mu, logvar))
    mi_true, tc_true, dwkl_true = _closed_forms(rho, 0.5)
    assert tc == pytest.approx(tc_true, abs=0.03)
    assert dwkl == pytest.approx(dwkl_true, abs=0.03)
    assert mi == pytest.approx(mi_true, abs=0.04)


def test_total_correlation_grows_with_the_correlation():
    tcs = [float(losses.kl_decomposition(*_gaussian_aggregate(rho, 0.5, 600, seed=1))[1].mean()) for rho in (0, 0.4, 0.8)]
    assert tcs == sorted(tcs) and tcs[2] - tcs[0] > 0.2


def test_kl_decomposition_adds_up_to_the_one_sample_kl():
    g = gen(2)
    mu, logvar = torch.randn(16, 5, generator=g), torch.randn(16, 5, generator=g) * 0.5
    z = mu + torch.exp(0.5 * logvar) * torch.randn(16, 5, generator=g)
    mi, tc, dwkl = losses.kl_decomposition(z, mu, logvar)
    log_q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(1)
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
    torch.testing.assert_close(mi + tc + dwkl, log_q - log_p, atol=1e-4, rtol=0)
    assert (mi >= -math.log(16) - 1e-5).all()  # log q(z_i|x_i) >= log of the mixture - log B


def test_kl_decomposition_of_one_row_has_no_total_correlation():
    z, mu, logvar = torch.randn(1, 3), torch.randn(1, 3), torch.zeros(1, 3)
    mi, tc, _ = losses.kl_decomposition(z, mu, logvar)
    assert float(mi) == pytest.approx(0.0, abs=1e-6) and float(tc) == pytest.approx(0.0, abs=1e-5)


def test_blocked_computation_equals_the_whole(monkeypatch):
    """Large batches are computed over blocks of rows (bounded memory); the result is the same."""
    g = gen(3)
    z, mu, logvar = torch.randn(50, 3, generator=g), torch.randn(50, 3, generator=g), 0.3 * torch.randn(50, 3, generator=g)
    y = torch.randn(40, 3, generator=g)
    whole = (losses.kl_decomposition(z, mu, logvar), losses.mmd(z, y), losses.mmd(z, y, "rbf"))
    monkeypatch.setattr(losses, "_BLOCK_ELEMENTS", 200)  # blocks of 1-5 rows
    blocked = (losses.kl_decomposition(z, mu, logvar), losses.mmd(z, y), losses.mmd(z, y, "rbf"))
    for a, b in zip(whole[0], blocked[0]):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(whole[1:], blocked[1:])


# ---------------------------------------------------------------------------- discriminator


def test_discriminator_bce_by_hand_and_its_optimum_is_the_log_ratio():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, 0.0])
    by_hand = 0.5 * (-torch.log(torch.sigmoid(real)) - torch.log(1 - torch.sigmoid(fake)))
    torch.testing.assert_close(losses.discriminator_bce(real, fake), by_hand)
    # For one point seen with density p under "real" and q under "fake", the expected loss
    # p * softplus(-t) + q * softplus(t) is smallest at t = log(p / q).
    p, q = 0.7, 0.2
    t = torch.linspace(-4, 4, 8001)
    expected = p * torch.nn.functional.softplus(-t) + q * torch.nn.functional.softplus(t)
    assert float(t[expected.argmin()]) == pytest.approx(math.log(p / q), abs=2e-3)
