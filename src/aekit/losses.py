"""Loss functions as pure functions on tensors.

Every function returns one value per sample, shape ``(B,)``, summed over the
feature (or latent) dimensions: reconstruction terms and KL terms are then on one
scale (nats per sample) and models only have to add them and average over the
batch. Nothing here knows about models.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

__all__ = [
    "mse",
    "bce",
    "bce_with_logits",
    "bernoulli_log_likelihood",
    "gaussian_nll",
    "kl_normal",
    "kl_normal_normal",
    "kl_categorical",
    "kl_bernoulli",
    "sparsity_divergence",
    "contractive_single_layer",
    "jacobian_frobenius_sq",
    "mmd",
    "kl_decomposition",
    "discriminator_bce",
]

_LOG_2PI = math.log(2.0 * math.pi)


def _sum_per_sample(t: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Sum every dimension but the first, each entry times ``weight`` if given: (B, ...) -> (B,)."""
    if weight is not None:
        t = t * weight
    return t.reshape(t.shape[0], -1).sum(dim=1)


def mse(x_hat: torch.Tensor, x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Squared error summed over features.

    x_hat, x: (B, ...) -> (B,). ``weight`` (broadcastable to x) weighs each entry, e.g. 1 on
    observed and 0 on missing entries (which must still hold finite values in x).

    Examples
    --------
    >>> import torch
    >>> mse(torch.zeros(1, 3), torch.tensor([[1.0, 2.0, 3.0]]), weight=torch.tensor([[1.0, 0.0, 1.0]]))
    tensor([10.])
    """
    return _sum_per_sample((x_hat - x) ** 2, weight)


def bce(probs: torch.Tensor, x: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Binary cross-entropy from probabilities, summed over features (nats).

    probs, x: (B, ...) with x in [0, 1] -> (B,). Probabilities are clipped to
    [eps, 1 - eps] so a saturated unit gives a large finite loss, not inf.
    """
    p = probs.clamp(eps, 1.0 - eps)
    return _sum_per_sample(-(x * torch.log(p) + (1.0 - x) * torch.log1p(-p)))


def bce_with_logits(logits: torch.Tensor, x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy from logits (the Bernoulli negative log-likelihood), nats.

    logits, x: (B, ...) -> (B,). Numerically stable for any logit. ``weight`` as in :func:`mse`.
    """
    return _sum_per_sample(F.binary_cross_entropy_with_logits(logits, x, reduction="none"), weight)


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x | logits) under independent Bernoullis, summed over features, for S decoder outputs
    per data point: x . l - sum softplus(l), nats (minus ``bce_with_logits`` of each draw).

    logits: (S, B, ...) and x: (B, ...) in [0, 1], broadcast over the S draws without copying it;
    returns (S, B). About 3x faster than repeating x through ``bce_with_logits`` (the x . l term
    is one batched matmul), which matters for importance sampling with thousands of draws.
    """
    s, b = logits.shape[:2]
    flat = logits.reshape(s, b, -1)  # (S, B, D)
    return torch.einsum("sbd,bd->sb", flat, x.reshape(b, -1).to(flat.dtype)) - F.softplus(flat).sum(dim=-1)


def gaussian_nll(
    x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Negative log-density of x under N(mean, exp(logvar)), summed over features, nats.

    x, mean: (B, ...); logvar broadcasts against them (a scalar, per feature, or per sample).
    Returns (B,). ``weight`` as in :func:`mse` (with 0/1 weights: the density of the observed
    entries alone).
    """
    logvar = torch.broadcast_to(logvar, x.shape)
    nll = 0.5 * (_LOG_2PI + logvar + (x - mean) ** 2 * torch.exp(-logvar))
    return _sum_per_sample(nll, weight)


def kl_normal(mu: torch.Tensor, logvar: torch.Tensor, *, per_dim: bool = False) -> torch.Tensor:
    """KL( N(mu, exp(logvar)) || N(0, I) ) in nats.

    mu, logvar: (B, K). Returns (B,) or, with ``per_dim=True``, (B, K).
    Written with expm1 so it is exactly 0 at mu = 0, logvar = 0 and never negative.

    Examples
    --------
    >>> import torch
    >>> kl_normal(torch.zeros(1, 3), torch.zeros(1, 3))
    tensor([0.])
    """
    kl = 0.5 * (mu**2 + (torch.expm1(logvar) - logvar).clamp_min(0.0))  # (B, K)
    return kl if per_dim else kl.sum(dim=1)


def kl_normal_normal(
    mu_q: torch.Tensor,
    logvar_q: torch.Tensor,
    mu_p: torch.Tensor,
    logvar_p: torch.Tensor,
    *,
    per_dim: bool = False,
) -> torch.Tensor:
    """KL( N(mu_q, exp(logvar_q)) || N(mu_p, exp(logvar_p)) ) between diagonal Gaussians, nats.

    All inputs (B, K) (or broadcastable). Returns (B,) or (B, K) with ``per_dim=True``.
    Zero exactly when the two distributions are equal, never negative.
    """
    d = logvar_q - logvar_p
    kl = 0.5 * ((torch.expm1(d) - d).clamp_min(0.0) + (mu_q - mu_p) ** 2 * torch.exp(-logvar_p))
    return kl if per_dim else kl.sum(dim=-1)


def kl_categorical(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) between discrete distributions along the last axis, nats, with 0 log 0 = 0.

    p, q: (..., K) probabilities. Returns (...). Infinite where q = 0 < p.

    Examples
    --------
    >>> import torch
    >>> kl_categorical(torch.tensor([1.0, 0.0]), torch.tensor([0.5, 0.5]))
    tensor(0.6931)
    """
    kl = (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(dim=-1)
    return kl.clamp_min(0.0)


def kl_bernoulli(target: torch.Tensor, rate: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """KL( Bernoulli(target) || Bernoulli(rate) ) elementwise, nats.

    Used for KL sparsity: ``target`` is the desired rate rho-hat, ``rate`` the average
    activation rho of a unit (clipped to [eps, 1 - eps]).
    """
    target = torch.as_tensor(target, dtype=rate.dtype, device=rate.device)
    r = rate.clamp(eps, 1.0 - eps)
    kl = torch.xlogy(target, target) - torch.xlogy(target, r)
    kl = kl + torch.xlogy(1.0 - target, 1.0 - target) - torch.xlogy(1.0 - target, 1.0 - r)
    return kl.clamp_min(0.0)


def sparsity_divergence(rate: torch.Tensor, target: float, kind: str = "kl") -> torch.Tensor:
    """Divergence of per-unit average activations from a target rate, summed over units.

    rate: (U,) average activation of each unit over the batch -> scalar.
    kind: ``"kl"`` (KL(target || rate), Ng's sparse autoencoder), ``"l1"`` (|rate - target|)
    or ``"l2"`` ((rate - target)^2).
    """
    if kind == "kl":
        return kl_bernoulli(target, rate).sum()
    if kind == "l1":
        return (rate - target).abs().sum()
    if kind == "l2":
        return ((rate - target) ** 2).sum()
    raise ValueError(f"unknown sparsity divergence {kind!r}; use 'kl', 'l1' or 'l2'")


def contractive_single_layer(act_grad: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Closed-form ||dh/dx||_F^2 for one layer h = s(W x + b) with elementwise s.

    act_grad: (B, H) the derivative s'(W x + b); weight: (H, D). Returns (B,).
    Since dh/dx = diag(s') W, the squared Frobenius norm is sum_j s'_j^2 ||W_j||^2
    (Rifai et al. 2011).
    """
    return act_grad.pow(2) @ weight.pow(2).sum(dim=1)  # (B,)


def jacobian_frobenius_sq(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Exact ||df/dx||_F^2 per sample, by reverse-mode autograd, differentiable.

    f maps (B, ...) -> (B, K) and must treat samples independently (no batch statistics).
    Costs K batched vector-Jacobian products (one per code unit), run together with
    ``is_grads_batched``. Returns (B,).
    """
    differentiable = torch.is_grad_enabled()  # under no_grad (evaluation) the value is detached
    with torch.enable_grad():
        x = x if x.requires_grad else x.detach().requires_grad_(True)
        h = f(x)  # (B, K)
        k = h.shape[1]
        eye = torch.eye(k, dtype=h.dtype, device=h.device)  # (K, K)
        grad_outputs = eye[:, None, :].expand(k, h.shape[0], k)  # (K, B, K)
        (jac,) = torch.autograd.grad(
            h, x, grad_outputs=grad_outputs, create_graph=differentiable, is_grads_batched=True
        )  # (K, B, ...)
        out = jac.pow(2).reshape(k, x.shape[0], -1).sum(dim=(0, 2))
    return out if differentiable else out.detach()


# ---------------------------------------------------------------------------- distribution matching

MMD_KERNELS = ("imq", "rbf")


def _kernel(sq_dist: torch.Tensor, kind: str, scale: float) -> torch.Tensor:
    if kind == "imq":
        return scale / (scale + sq_dist)
    if kind == "rbf":
        return torch.exp(-sq_dist / scale)
    raise ValueError(f"unknown MMD kernel {kind!r}; use one of {MMD_KERNELS}")


def _sq_dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances (n, K), (m, K) -> (n, m), differentiable everywhere (also at 0)."""
    return (a.pow(2).sum(1)[:, None] + b.pow(2).sum(1)[None, :] - 2.0 * a @ b.T).clamp_min(0.0)


def mmd(x: torch.Tensor, y: torch.Tensor, kernel: str = "imq", scale: float | None = None) -> torch.Tensor:
    """Unbiased estimate of the squared maximum mean discrepancy between two samples (Gretton et
    al. 2012, the U-statistic): a distance between the distributions the rows of x and y come from.

    x: (n, K), y: (m, K) -> scalar, one value for the two sets (a batch-level term: a model adds
    it to every row). ``kernel``: ``"imq"``, C / (C + |a - b|^2) (Tolstikhin et al. 2018), or
    ``"rbf"``, exp(-|a - b|^2 / C); ``scale`` is C, by default 2 K, the expected squared distance
    between two draws of N(0, I_K) (Tolstikhin et al.'s 2 * dim * prior variance). Unbiased: its
    mean over draws is 0 when x and y come from one distribution, so single values may be
    negative. With fewer than two rows in a set the within-set mean is undefined: 0 is returned.

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> x, y = torch.randn(500, 2, generator=g), torch.randn(500, 2, generator=g)
    >>> bool(mmd(x, y).abs() < 0.01), bool(mmd(x, y + 2.0) > 0.1)
    (True, True)
    """
    n, m = x.shape[0], y.shape[0]
    if kernel not in MMD_KERNELS:
        raise ValueError(f"unknown MMD kernel {kernel!r}; use one of {MMD_KERNELS}")
    c = float(scale) if scale is not None else 2.0 * x.shape[1]
    if not c > 0:
        raise ValueError(f"the MMD kernel scale must be > 0, got {scale!r}")
    if n < 2 or m < 2:
        return (x.sum() + y.sum()) * 0.0  # keeps the graph: a zero that backpropagates
    # k(a, a) = 1 for both kernels, so a set's diagonal sums to its size
    within_x = (_kernel_sum(x, x, kernel, c) - n) / (n * (n - 1))
    within_y = (_kernel_sum(y, y, kernel, c) - m) / (m * (m - 1))
    return within_x + within_y - 2.0 * _kernel_sum(x, y, kernel, c) / (n * m)


_BLOCK_ELEMENTS = 1 << 24  # pairwise terms held at once (64 MB of float32), whatever the batch size


def _kernel_sum(a: torch.Tensor, b: torch.Tensor, kind: str, scale: float) -> torch.Tensor:
    """sum_ij k(a_i, b_j), over blocks of rows of a so memory stays bounded: scalar."""
    rows = max(1, _BLOCK_ELEMENTS // max(1, b.shape[0]))
    return sum(_kernel(_sq_dists(a[i : i + rows], b), kind, scale).sum() for i in range(0, a.shape[0], rows))


def kl_decomposition(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor):
    """The KL term of the ELBO split into index-code mutual information, total correlation and
    dimension-wise KL (Chen et al. 2018, beta-TCVAE), estimated per sample from one minibatch.

    z: (B, K) one draw from each q(z|x_i) = N(mu_i, exp(logvar_i)); mu, logvar: (B, K). The
    aggregate posterior q(z) and its marginals q(z_k) are the minibatch's mixture of posteriors,
    evaluated at each z_i (minibatch-weighted sampling, every row weighted 1/B)::

        log q(z_i)   ~= logsumexp_j log q(z_i | x_j) - log B
        log q(z_ik)  ~= logsumexp_j log q(z_ik | x_j) - log B

    Returns (mi, tc, dwkl), each (B,)::

        mi   = log q(z_i | x_i) - log q(z_i)
        tc   = log q(z_i) - sum_k log q(z_ik)
        dwkl = sum_k log q(z_ik) - log p(z_i),   p = N(0, I)

    They add up to log q(z_i|x_i) - log p(z_i), a one-sample estimate of KL(q(z|x_i) || p).
    Chen et al. write the normaliser as log(N B), N the data set size: that shifts mi by
    +log N, tc by -(K - 1) log N and dwkl by +K log N, constants that leave every gradient as
    it is; with log B the three are estimates of the batch mixture's own quantities (the total
    correlation of a Gaussian with known correlation, say), which is what they are tested on.
    Like any minibatch estimate of log q(z), it is biased for small B.
    """
    b, k = z.shape
    log_b = math.log(b)
    log_q_self = -0.5 * (_LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(1)  # (B,) log q(z_i | x_i)
    precision = torch.exp(-logvar)  # (B, K)
    log_qz, log_marginals = [], []
    rows = max(1, _BLOCK_ELEMENTS // (b * k))
    for i in range(0, b, rows):  # blocks of rows i, so memory stays bounded whatever B
        zi = z[i : i + rows]
        pairs = -0.5 * (_LOG_2PI + logvar[None] + (zi[:, None, :] - mu[None]).pow(2) * precision[None])  # (b_i, B, K)
        log_qz.append(torch.logsumexp(pairs.sum(2), dim=1) - log_b)  # (b_i,)
        log_marginals.append((torch.logsumexp(pairs, dim=1) - log_b).sum(1))  # (b_i,)
    log_qz_t, log_prod_marginals = torch.cat(log_qz), torch.cat(log_marginals)  # (B,) each
    log_pz = -0.5 * (_LOG_2PI + z.pow(2)).sum(1)  # (B,)
    return log_q_self - log_qz_t, log_qz_t - log_prod_marginals, log_prod_marginals - log_pz


def discriminator_bce(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """A binary classifier's loss for telling "real" from "fake" samples, per pair of rows, nats.

    real_logits, fake_logits: (B,) logits of D = P(real | sample) -> (B,), the mean of
    -log D(real) and -log(1 - D(fake)). At its optimum D's logit is the log density ratio
    log p_real / p_fake (the density-ratio trick: Sugiyama et al. 2012; Kim & Mnih 2018).
    """
    return 0.5 * (F.softplus(-real_logits) + F.softplus(fake_logits))
