"""Family-specific maths: each model's loss terms against hand computations, closed forms and
explicit Jacobians, the VAE schedules, and the linear autoencoder = PCA subspace result."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from torch.autograd.functional import jacobian
from torch.distributions import Normal

from aekit import losses, train
from aekit.models.hvae import _merge
from aekit.models.sparse import topk_mask
from aekit.models.vae import VAEConfig, kl_objective, kl_weight


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------- sparse


def test_topk_mask_keeps_k_largest_and_routes_gradient_through_them():
    z = torch.tensor([[0.5, -2.0, 3.0, 1.0], [4.0, 3.0, -1.0, 0.1]], requires_grad=True)
    out = topk_mask(z, 2)
    assert torch.equal(out.detach(), torch.tensor([[0.0, 0.0, 3.0, 1.0], [4.0, 3.0, 0.0, 0.0]]))
    (out * torch.arange(1.0, 5.0)).sum().backward()
    assert torch.equal(z.grad, torch.tensor([[0.0, 0.0, 3.0, 4.0], [1.0, 2.0, 0.0, 0.0]]))


def test_k_sparse_model_codes_and_gradients(model_factory, batch):
    X, _ = batch
    k = 3
    model = model_factory("sparse", sparsity="topk", latent_dim=8, k=k)
    model.train()
    out = model(X)
    assert torch.equal((out.z != 0).sum(dim=1), torch.full((X.shape[0],), k))
    dense = model.encoder(X)  # (B, 8), the code before masking
    kept = dense.topk(k, dim=1).indices
    assert torch.equal(out.z, dense * torch.zeros_like(dense).scatter_(1, kept, 1.0))
    assert torch.equal(model.encode(X), out.z)
    assert set(out.parts) == {"recon"}  # top-k needs no penalty
    # one sample: only the rows of the code layer that were kept get a gradient
    x1 = X[:1]
    model.zero_grad()
    model(x1).loss.backward()
    row_grad = model.encoder.out.weight.grad.abs().sum(dim=1)  # (8,)
    kept1 = set(model.encoder(x1).topk(k, dim=1).indices[0].tolist())
    for j in range(8):
        assert (row_grad[j] > 0) == (j in kept1), j


def _kl_bern(t, r):
    return t * np.log(t / r) + (1 - t) * np.log((1 - t) / (1 - r))


def test_sparse_kl_penalty_per_layer_by_hand(model_factory, batch):
    X, _ = batch
    weights, targets = (0.5, 2.0, 1.0), (0.1, 0.2, 0.05)
    model = model_factory(
        "sparse", sparsity="kl", hidden_dims=(16, 8), activation="sigmoid", sparsity_weight=0.3,
        layer_weights=weights, target_rate=targets,
    )
    model.eval()
    out = model(X)
    # hand forward pass through the encoder's layers, in float64 numpy
    enc = model.encoder
    h = X.reshape(len(X), -1).double().numpy()
    acts = []
    for lin in [*enc.hidden, enc.out]:
        W, b = lin.weight.detach().double().numpy(), lin.bias.detach().double().numpy()
        h = 1 / (1 + np.exp(-(h @ W.T + b)))
        acts.append(h)
    penalty = sum(w * _kl_bern(t, a.mean(0)).sum() for a, t, w in zip(acts, targets, weights))
    np.testing.assert_allclose(out.parts["sparsity"].detach().numpy(), np.full(len(X), penalty), rtol=1e-4)
    torch.testing.assert_close(out.loss, (out.parts["recon"] + 0.3 * out.parts["sparsity"]).mean())
    # the code layer only, when no per-layer weights are given
    code_only = model_factory("sparse", sparsity="kl", hidden_dims=(16, 8), activation="sigmoid", target_rate=0.05)
    z = code_only.encode(X).detach().double().numpy()
    np.testing.assert_allclose(float(code_only(X).parts["sparsity"][0].detach()), _kl_bern(0.05, z.mean(0)).sum(), rtol=1e-4)


def test_sparse_l1_penalty_and_config_checks(model_factory, batch):
    X, _ = batch
    model = model_factory("sparse", sparsity="l1", sparsity_weight=0.1)
    out = model(X)
    torch.testing.assert_close(out.parts["sparsity"], out.z.abs().sum(1))
    assert (out.z >= 0).all()  # relu code by default
    torch.testing.assert_close(out.loss, (out.parts["recon"] + 0.1 * out.parts["sparsity"]).mean())
    with pytest.raises(ValueError, match="k must"):
        model_factory("sparse", sparsity="topk", k=5)  # latent_dim is 4
    with pytest.raises(ValueError, match="target_rate"):
        model_factory("sparse", sparsity="kl", target_rate=1.5)
    with pytest.raises(ValueError, match="layer_weights"):
        model_factory("sparse", sparsity="kl", layer_weights=(1.0, 1.0, 1.0))  # 1 hidden layer + code = 2


def test_sparse_kl_refuses_activations_outside_the_unit_interval(model_factory, batch):
    """KL rate sparsity reads mean activations as probabilities; kl_bernoulli clips a ReLU rate
    above 1, and that unit then gets no gradient from the penalty at all, so the combination is
    refused with a message naming the activation to use."""
    X, _ = batch
    with pytest.raises(ValueError, match="code_activation='sigmoid'"):
        model_factory("sparse", sparsity="kl", code_activation="relu")
    with pytest.raises(ValueError, match="activation='sigmoid'"):  # relu hidden layers penalised
        model_factory("sparse", sparsity="kl", hidden_dims=(16, 8), layer_weights=(1.0, 1.0, 1.0))
    # what stays allowed: sigmoid everywhere, relu hidden layers with weight 0, other divergences
    model_factory("sparse", sparsity="kl", hidden_dims=(16, 8), activation="sigmoid", layer_weights=(1.0, 1.0, 1.0))
    model_factory("sparse", sparsity="kl", hidden_dims=(16, 8), layer_weights=(0.0, 0.0, 1.0))
    relu_l2 = model_factory("sparse", sparsity="kl", divergence="l2", code_activation="relu", sparsity_weight=1.0)
    # with l2 every over-active unit is pulled down: the penalty's gradient reaches each code unit
    relu_l2.eval()
    with torch.no_grad():
        relu_l2.encoder.out.bias.fill_(3.0)  # every unit's rate well above 1
    relu_l2(X).loss.backward()
    assert (relu_l2.encoder.out.bias.grad > 0).all()


# ---------------------------------------------------------------------------- contractive


def explicit_penalty(f, x):
    return torch.stack([jacobian(lambda v: f(v[None])[0], xi).pow(2).sum() for xi in x])


@pytest.mark.parametrize("code_activation", ["sigmoid", "tanh", "relu", None])
def test_contractive_closed_form_equals_autograd_and_explicit_jacobian(code_activation, model_factory, batch):
    X, _ = batch
    X = X[:8]
    model = model_factory("contractive", hidden_dims=(), latent_dim=6, code_activation=code_activation, contractive_weight=0.7)
    assert model._closed_form() is not None
    out = model(X)
    closed = out.parts["contractive"]
    torch.testing.assert_close(closed, losses.jacobian_frobenius_sq(model.encoder, X))
    torch.testing.assert_close(closed, explicit_penalty(model.encoder, X))
    torch.testing.assert_close(out.loss, (out.parts["recon"] + 0.7 * closed).mean())
    if code_activation is None:  # a linear code: the penalty is ||W||_F^2 for every sample
        torch.testing.assert_close(closed, model.encoder.out.weight.pow(2).sum().expand(8))


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_contractive_deep_encoder_uses_the_exact_jacobian(arch, model_factory, batch):
    X, _ = batch
    X = X[:6]
    model = model_factory("contractive", arch)
    assert model._closed_form() is None
    out = model(X)
    torch.testing.assert_close(out.parts["contractive"], explicit_penalty(model.encoder, X))
    out.loss.backward()
    code_layer = model.encoder.out if arch == "mlp" else model.encoder.head
    assert code_layer.weight.grad.abs().sum() > 0


# ---------------------------------------------------------------------------- VAE


def test_vae_parts_are_the_reparameterised_elbo_terms(model_factory, batch):
    X, _ = batch
    model = model_factory("vae", beta=2.0)
    model.eval()
    out = model(X, generator=gen(0))
    mu, logvar = model.posterior(X)
    torch.testing.assert_close(out.parts["kl"], losses.kl_normal(mu, logvar))
    torch.testing.assert_close(out.z, mu)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen(0))
    recon = losses.bce_with_logits(model.decoder(z), X)
    torch.testing.assert_close(out.parts["recon"], recon)
    torch.testing.assert_close(out.loss, recon.mean() + 2.0 * out.parts["kl"].mean())
    torch.testing.assert_close(out.x_hat, torch.sigmoid(model.decoder(z)))


def test_vae_gaussian_likelihood_with_fixed_std(model_factory, batch):
    X, _ = batch
    model = model_factory("vae", likelihood="gaussian", gaussian_std=0.5)
    model.eval()
    out = model(X, generator=gen(0))
    mu, logvar = model.posterior(X)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen(0))
    ref = -Normal(model.decoder(z), 0.5).log_prob(X).flatten(1).sum(1)
    torch.testing.assert_close(out.parts["recon"], ref)
    assert model.decoder_logvar is None
    assert model_factory("vae", likelihood="gaussian").decoder_logvar is not None  # learned when std is None


def test_kl_warmup_schedules():
    lin = VAEConfig(input_shape=(4,), beta=2.0, kl_warmup_epochs=4)
    assert [kl_weight(lin, e, True) for e in (0, 1, 2, 4, 10)] == [0.0, 0.5, 1.0, 2.0, 2.0]
    assert kl_weight(lin, 0, False) == 2.0  # full beta outside training
    cyc = VAEConfig(input_shape=(4,), kl_schedule="cyclical", kl_warmup_epochs=2, kl_cycle_epochs=4)
    assert [kl_weight(cyc, e, True) for e in (0, 1, 2, 3, 4, 5, 6.5, 8.5)] == [0.0, 0.5, 1.0, 1.0, 0.0, 0.5, 1.0, 0.25]
    assert kl_weight(cyc, 5, False) == 1.0
    assert kl_weight(VAEConfig(input_shape=(4,), beta=3.0), 0, True) == 3.0  # no warm-up
    with pytest.raises(ValueError, match="cyclical"):
        VAEConfig(input_shape=(4,), kl_schedule="cyclical", kl_warmup_epochs=5, kl_cycle_epochs=2)


def test_vae_model_follows_the_warmup(model_factory, batch):
    X, _ = batch
    model = model_factory("vae", kl_warmup_epochs=2)
    model.train()
    for epochs_done, w in ((0.0, 0.0), (1.0, 0.5), (3.0, 1.0)):
        model.on_train_progress(epochs_done)
        out = model(X, generator=gen(0))
        torch.testing.assert_close(out.loss, out.parts["recon"].mean() + w * out.parts["kl"].mean())
    model.on_train_progress(0.0)
    model.eval()
    out = model(X, generator=gen(0))
    torch.testing.assert_close(out.loss, out.parts["recon"].mean() + out.parts["kl"].mean())
    assert "epochs_done" in model.state_dict()  # a resumed run anneals from where it stopped


def test_free_bits_floor_the_kl_term(model_factory, batch):
    X, _ = batch
    kl_dims = torch.tensor([[0.1, 2.0, 0.0], [0.3, 4.0, 0.0]])
    assert float(kl_objective(kl_dims, 0.5, True)) == pytest.approx(0.5 + 3.0 + 0.5)
    assert float(kl_objective(kl_dims, 0.5, False)) == pytest.approx(6.4 / 2)
    assert float(kl_objective(kl_dims, 0.0, True)) == pytest.approx(6.4 / 2)

    model = model_factory("vae", free_bits=50.0)  # far above any dimension's KL at init
    model.train()
    out = model(X, generator=gen(0))
    assert (out.parts["kl"] < 50.0).all()
    torch.testing.assert_close(out.loss, out.parts["recon"].mean() + 50.0 * 4)
    out.loss.backward(retain_graph=True)
    head_grad = model.encoder.out.weight.grad.clone()
    model.zero_grad()
    out.parts["recon"].mean().backward()
    # every dimension below its floor: the KL term is constant, only the reconstruction pulls
    torch.testing.assert_close(head_grad, model.encoder.out.weight.grad)
    model.eval()  # no floor when evaluating
    out = model(X, generator=gen(0))
    torch.testing.assert_close(out.loss, out.parts["recon"].mean() + out.parts["kl"].mean())


@pytest.mark.parametrize("name", ["vae", "hvae"])
def test_min_variance_clips_the_posterior(name, model_factory, batch):
    X, _ = batch
    floor = 0.3
    model = model_factory(name, min_variance=floor)
    raw = model_factory(name)
    head = model.encoder.out if name == "vae" else model.q_heads[-1]
    raw_head = raw.encoder.out if name == "vae" else raw.q_heads[-1]
    with torch.no_grad():
        for h in (head, raw_head):
            h.bias[h.bias.shape[0] // 2 :] = -20.0  # raw log-variances far below log(0.3)
    if name == "vae":
        _, logvar = model.posterior(X)
        assert torch.allclose(logvar, torch.full_like(logvar, math.log(floor)))
        assert (raw.posterior(X)[1] < math.log(floor) - 5).all()
    else:
        levels = model.posterior_levels(X, generator=gen(0))
        top_logvar = levels[-1][2]
        assert torch.allclose(top_logvar, torch.full_like(top_logvar, math.log(floor)))
        for lvl in levels:
            assert (lvl[2] >= math.log(floor) - 1e-6).all()
        assert (raw.posterior_levels(X, generator=gen(0))[-1][2] < math.log(floor) - 5).all()


def _elbo_consistency(model, X, y=None, draws: int = 300):
    """Mean of log_weight and of -(recon + kl) over many draws: two estimates of the same ELBO."""
    g1, g2 = gen(10), gen(11)
    with torch.no_grad():
        lw = torch.stack([model.log_weight(X, y, generator=g1) for _ in range(draws)])  # (draws, B)
        outs = [model(X, y, generator=g2) for _ in range(draws)]
    neg = torch.stack([-(o.parts["recon"] + o.parts["kl"]) for o in outs])
    diff = lw.mean(0) - neg.mean(0)
    se = torch.sqrt(lw.var(0) / draws + neg.var(0) / draws)
    assert (diff.abs() < 5 * se + 1e-3).all(), (diff, se)
    return lw


@pytest.mark.parametrize("name,extra", [("vae", {}), ("cvae", {}), ("hvae", {}), ("hvae", {"skip": True, "batch_norm": True}),
                                        ("iwae", {"k": 3})])
def test_log_weight_is_an_unbiased_elbo_sample(name, extra, model_factory, batch):
    X, y = batch
    X, y = X[:8], y[:8]
    model = model_factory(name, **extra)
    model.eval()
    lw = _elbo_consistency(model, X, y if model.conditional else None)
    assert lw.shape[1:] == (8,) and torch.isfinite(lw).all()


def test_learned_decoder_variance_keeps_its_gradient_below_the_floor(model_factory, batch):
    """The learned Gaussian decoder variance is floor + exp(raw): never below the floor, and the
    raw parameter keeps a gradient wherever it is (a clamp on it would freeze it below the floor)."""
    X, _ = batch
    model = model_factory("vae", likelihood="gaussian")
    floor = 1e-4
    with torch.no_grad():
        model.decoder_logvar.fill_(math.log(floor) - 3.0)  # raw value far below the floor
    assert float(model._decoder_logvar(X).detach()) >= math.log(floor)
    model(X, generator=gen(0)).loss.backward()
    grad = float(model.decoder_logvar.grad)
    assert grad < 0, grad  # residuals >> 1e-4: the loss asks for a larger variance, and says so
    with torch.no_grad():
        model.decoder_logvar.fill_(math.log(0.5))
    assert float(model._decoder_logvar(X).detach().exp()) == pytest.approx(0.5 + floor)


def test_hvae_reconstructs_through_the_ladder_posterior(model_factory, batch):
    """reconstruct decodes the posterior mean path (each layer's merged q), not the top code
    walked down the prior means, which here (a prior net that ignores z_2) forgets the input."""
    X, _ = batch
    model = model_factory("hvae").eval()
    with torch.no_grad():
        for p in model.p_nets[0].parameters():
            p.zero_()  # p(z_1 | z_2) = N(0, I) whatever z_2
        levels = model.posterior_levels(X, sample=False)
        torch.testing.assert_close(model.reconstruct(X), torch.sigmoid(model.decoder(levels[0].z)))
        assert torch.equal(levels[-1].z, model.encode(X))
        via_prior = model.decode(model.encode(X))
        assert (via_prior - via_prior[:1]).abs().max() < 1e-6  # the same image for every input
        rec = model.reconstruct(X)
        assert (rec - rec[:1]).abs().max() > 1e-3  # the ladder posterior keeps the input


# ---------------------------------------------------------------------------- IWAE


def test_iwae_loss_is_the_k_sample_bound_of_its_log_weights(model_factory, batch):
    """loss = mean_b [log k - logsumexp_s log w_s(x_b)], w from the VAE's own log_weights with the
    same draws; the ELBO parts come from the first of the k draws."""
    X, _ = batch
    model = model_factory("iwae", k=7).eval()
    with torch.no_grad():
        out = model(X, generator=gen(3))
        log_w = model.log_weights(X, None, 7, generator=gen(3))  # (7, B)
        bound = torch.logsumexp(log_w, dim=0) - math.log(7)
        torch.testing.assert_close(out.parts["iwae"], -bound)
        torch.testing.assert_close(out.loss, -bound.mean())
        log_px, _ = model.importance_terms(X, None, 7, generator=gen(3))
        torch.testing.assert_close(out.parts["recon"], -log_px[0])
        assert set(out.parts) == {"recon", "kl", "iwae"}


def test_iwae_bound_tightens_with_k(model_factory, batch):
    """E[L_1] <= E[L_5] <= E[L_50] (Burda et al. 2016, Theorem 1): with a poor proposal (posterior
    means blown up 4x) the means over 40 repeats are ordered far beyond their standard errors."""
    X, _ = batch
    X = X[:8]
    stats = []
    with torch.no_grad():
        for k in (1, 5, 50):
            model = model_factory("iwae", k=k).eval()  # same weights (same seed) for every k
            model.encoder.out.weight[:4] *= 4.0
            runs = torch.stack([-model(X, generator=gen(100 + r)).parts["iwae"].mean() for r in range(40)])  # (40,)
            stats.append((float(runs.mean()), float(runs.std()) / math.sqrt(40)))
    for (m_lo, se_lo), (m_hi, se_hi) in zip(stats, stats[1:]):
        assert m_hi - m_lo > 4 * math.hypot(se_lo, se_hi), stats


def test_iwae_refuses_free_bits(model_factory):
    with pytest.raises(ValueError, match="free_bits"):
        model_factory("iwae", free_bits=0.5)
    with pytest.raises(ValueError, match="k must"):
        model_factory("iwae", k=0)


def test_hvae_skip_paths_feed_every_layer_to_the_decoder(model_factory, batch):
    X, _ = batch
    model = model_factory("hvae", lower_latent_dims=(6,), skip=True).eval()  # z_1: 6, z_2: 4
    assert model.decoder.hidden[0].in_features == 10
    with torch.no_grad():
        levels = model.posterior_levels(X, sample=False)
        torch.testing.assert_close(model.reconstruct(X), torch.sigmoid(model.decoder(torch.cat([levels[0].z, levels[1].z], 1))))
        moved = [levels[0].z, levels[1].z + 1.0]  # z_2 alone now changes p(x | z_1, z_2)
        assert (model.decoder(torch.cat(moved, 1)) - model.decoder(torch.cat([levels[0].z, levels[1].z], 1))).abs().max() > 1e-3
        assert model.sample(3, generator=gen(0)).shape == (3, 1, 8, 8)


def test_batch_norm_normalises_in_training_and_is_row_independent_in_eval(model_factory, batch):
    X, _ = batch
    model = model_factory("vae", batch_norm=True, hidden_dims=(32, 16))
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert [n.num_features for n in norms] == [32, 16, 16, 32]  # before every hidden activation
    model.train()
    model(X, generator=gen(0))  # updates the running statistics
    model.eval()
    with torch.no_grad():
        alone = model.reconstruct(X[:3])
        together = model.reconstruct(X)[:3]
    torch.testing.assert_close(alone, together)


def test_hvae_merge_is_the_normalised_product_of_gaussians():
    # N(0, 1) * N(2, 1/3): precisions 1 + 3 = 4, mean (0 * 1 + 2 * 3) / 4
    mu, logvar = _merge(torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([2.0]), torch.tensor([math.log(1 / 3)]))
    assert float(mu) == pytest.approx(1.5) and float(logvar) == pytest.approx(math.log(0.25))
    g = torch.Generator().manual_seed(0)
    a, la, b, lb = (torch.randn(5, generator=g) for _ in range(4))
    mu, logvar = _merge(a, la, b, lb)
    torch.testing.assert_close(torch.stack(_merge(b, lb, a, la)), torch.stack((mu, logvar)))  # symmetric
    z = torch.linspace(-3, 3, 7)[:, None]  # the product density is proportional to the merged Gaussian
    log_prod = Normal(a, (0.5 * la).exp()).log_prob(z) + Normal(b, (0.5 * lb).exp()).log_prob(z)
    log_merged = Normal(mu, (0.5 * logvar).exp()).log_prob(z)
    diff = log_prod - log_merged  # (7, 5): constant in z
    torch.testing.assert_close(diff, diff[:1].expand_as(diff), atol=1e-4, rtol=1e-4)


def test_hvae_reports_kl_per_level(model_factory, batch):
    X, _ = batch
    model = model_factory("hvae", lower_latent_dims=(6, 5))
    model.eval()
    out = model(X, generator=gen(0))
    assert {"recon", "kl", "kl_1", "kl_2", "kl_3"} == set(out.parts)
    torch.testing.assert_close(out.parts["kl_1"] + out.parts["kl_2"] + out.parts["kl_3"], out.parts["kl"])
    for i in (1, 2, 3):
        assert (out.parts[f"kl_{i}"] >= 0).all()
    levels = model.posterior_levels(X, generator=gen(0))
    assert [lvl[0].shape[1] for lvl in levels] == [6, 5, 4]
    for i, (_, mq, lq, mp, lp) in enumerate(levels[:-1]):
        torch.testing.assert_close(out.parts[f"kl_{i + 1}"], losses.kl_normal_normal(mq, lq, mp, lp))
    # the top level's prior is N(0, I), its posterior the bottom-up estimate
    _, mq, lq, mp, lp = levels[-1]
    assert mp is None and lp is None
    torch.testing.assert_close(out.parts["kl_3"], losses.kl_normal(mq, lq))
    torch.testing.assert_close(mq, model.posterior(X)[0])
    torch.testing.assert_close(out.loss, out.parts["recon"].mean() + out.parts["kl"].mean())
    assert torch.isfinite(model.log_weight(X, generator=gen(0))).all()


def test_hvae_free_bits_apply_per_level(model_factory, batch):
    X, _ = batch
    model = model_factory("hvae", free_bits=10.0)  # dims (4, 4): floor 10 nats each, 80 in all
    model.train()
    out = model(X, generator=gen(0))
    assert (out.parts["kl_1"] < 40).all() and (out.parts["kl_2"] < 40).all()
    torch.testing.assert_close(out.loss, out.parts["recon"].mean() + 80.0)


def test_cvae_samples_follow_the_label(model_factory, digits_train):
    X, y = digits_train
    model = model_factory("cvae", hidden_dims=(64,))
    train.train(model, X, y, epochs=10, batch_size=64, lr=3e-3, device="cpu", progress=False)
    labels = torch.arange(10).repeat_interleave(30)
    s = model.sample(300, labels, generator=gen(0))
    # the same noise under another label gives another image
    assert (s - model.sample(300, (labels + 1) % 10, generator=gen(0))).abs().amax(dim=(1, 2, 3)).min() > 0.05
    # one label for all equals that label repeated
    torch.testing.assert_close(model.sample(5, 3, generator=gen(1)), model.sample(5, torch.full((5,), 3), generator=gen(1)))
    # a classifier fitted on real digits recognises the requested class (measured: 300/300; chance 10%)
    clf = LogisticRegression(max_iter=2000).fit(X.reshape(len(X), -1).numpy(), y.numpy())
    acc = (clf.predict(s.reshape(300, -1).numpy()) == labels.numpy()).mean()
    assert acc > 0.8, acc


def test_cvae_code_prior_is_the_per_class_gaussian_of_the_posterior_means(model_factory, digits_train):
    X, y = digits_train
    X, y = X[:300], y[:300].clone()
    y[y == 9] = 8  # class 9 absent: it keeps N(0, I)
    model = model_factory("cvae").eval()
    model.on_train_end(X, y)
    with torch.no_grad():
        mu = model.posterior(X, y)[0].double()
    for c in (0, 8):
        Zc = mu[y == c]
        torch.testing.assert_close(model.code_mean[c].double(), Zc.mean(0), rtol=1e-5, atol=1e-5)
        cov = torch.cov(Zc.T) + 1e-3 * torch.eye(Zc.shape[1], dtype=Zc.dtype)
        L = model.code_scale_tril[c].double()
        torch.testing.assert_close(L @ L.T, cov, rtol=1e-4, atol=1e-5)
    assert torch.equal(model.code_mean[9], torch.zeros(4)) and torch.equal(model.code_scale_tril[9], torch.eye(4))
    # samples of class c decode draws from N(code_mean[c], L L^T)
    eps = torch.randn((5, 4), generator=gen(0))
    z = model.code_mean[3] + eps @ model.code_scale_tril[3].T
    torch.testing.assert_close(model.sample(5, 3, generator=gen(0)), model.decode(z, torch.full((5,), 3)))


# ---------------------------------------------------------------------------- VQ-VAE


def test_vqvae_straight_through_carries_the_reconstruction_gradient(model_factory, batch):
    X, _ = batch
    model = model_factory("vqvae", commitment_weight=0.0)  # EMA codebook: the loss is the reconstruction only
    model.train()
    model(X, generator=gen(0))  # initialise the codebook from data
    model.eval()
    out = model(X)
    assert set(out.parts) == {"recon", "commitment"}
    out.loss.backward()
    enc_grad = [p.grad.clone() for p in model.encoder.parameters()]
    assert all(g.abs().sum() > 0 for g in enc_grad)
    assert model.codebook.grad is None  # EMA codebook is not trained by gradient
    # straight-through: d loss / d z_e is d loss / d (decoder input), evaluated at z_q
    model.zero_grad()
    z_e = model.encoder(X)
    z_q = model.encode(X).detach().requires_grad_(True)
    recon = losses.mse(model.decoder(z_q), X).mean()
    (g_zq,) = torch.autograd.grad(recon, z_q)
    z_e.backward(g_zq)
    for a, p in zip(enc_grad, model.encoder.parameters()):
        torch.testing.assert_close(a, p.grad)


def test_vqvae_codebook_loss_trains_the_codebook_without_ema(model_factory, batch):
    X, _ = batch
    model = model_factory("vqvae", ema=False)
    model.train()
    out = model(X, generator=gen(0))
    assert {"recon", "commitment", "codebook"} == set(out.parts)
    torch.testing.assert_close(out.parts["codebook"], out.parts["commitment"])  # same distance, other stop-gradient
    torch.testing.assert_close(out.loss, (out.parts["recon"] + 1.25 * out.parts["commitment"]).mean())
    out.loss.backward()
    assert model.codebook.grad is not None and model.codebook.grad.abs().sum() > 0


def test_vqvae_indices_are_nearest_codebook_entries_and_perplexity(model_factory, digits_train):
    X = digits_train[0][:256]
    model = model_factory("vqvae", codebook_size=16)
    train.train(model, X, epochs=3, batch_size=64, device="cpu", progress=False)
    with torch.no_grad():
        z_e = model.encoder(X).reshape(len(X), 2, 2)  # (B, M, E)
        idx = model.encode_indices(X)  # (B, M)
        brute = torch.cdist(z_e.reshape(-1, 2), model.codebook).argmin(dim=1).reshape(len(X), 2)
        assert torch.equal(idx, brute)
        assert torch.equal(model.encode(X), model.codebook[idx].flatten(1))
        out = model(X)
    perplexity = float(out.stats["perplexity"])
    usage = torch.bincount(idx.reshape(-1), minlength=16).double() / idx.numel()
    nz = usage[usage > 0]
    assert perplexity == pytest.approx(math.exp(-(nz * nz.log()).sum()), rel=1e-5)
    assert 1.0 <= perplexity <= 16
    assert float(out.stats["codebook_usage"]) == pytest.approx(float((usage > 0).double().mean()))
    assert perplexity > 2  # trained codes use more than a couple of entries


def test_vqvae_perplexity_is_one_when_every_vector_picks_one_entry(model_factory, batch):
    X, _ = batch
    model = model_factory("vqvae")
    model.eval()
    with torch.no_grad():
        model.codebook.fill_(1e6)
        model.codebook[5] = 0.0
    out = model(X)
    assert (model.encode_indices(X) == 5).all()
    assert float(out.stats["perplexity"]) == pytest.approx(1.0)


def test_vqvae_prior_is_fitted_after_training(model_factory, digits_train):
    X = digits_train[0][:256]
    model = model_factory("vqvae", codebook_size=16)
    assert torch.equal(model.prior_logits, torch.zeros(2, 16))
    train.train(model, X, epochs=2, batch_size=64, device="cpu", progress=False)
    idx = model.encode_indices(X)  # (B, M)
    counts = torch.ones(2, 16)
    for m in range(2):
        counts[m] += torch.bincount(idx[:, m], minlength=16)
    torch.testing.assert_close(model.prior_logits, (counts / counts.sum(1, keepdim=True)).log())
    # samples decode codes drawn from that prior: their frequencies match it per position
    drawn = []
    decode_indices = model.decode_indices
    model.decode_indices = lambda idx: (drawn.append(idx), decode_indices(idx))[1]
    n = 4000
    s = model.sample(n, generator=gen(0))
    assert s.shape == (n, 1, 8, 8)
    assert torch.equal(s, decode_indices(drawn[0]))
    freq = torch.stack([torch.bincount(drawn[0][:, m], minlength=16) for m in range(2)]) / n  # (M, K)
    p = model.prior_logits.softmax(dim=1)
    assert ((freq - p).abs() < 5 * (p * (1 - p) / n).sqrt() + 1e-3).all()


# ---------------------------------------------------------------------------- linear AE = PCA, PCA base

# Measured: after 1000 full-batch Adam steps the largest principal angle is ~1e-4 degrees
# (2.2 degrees after 300 steps), and the training loss equals PCA's reconstruction error.
PCA_MAX_ANGLE_DEG = 0.1


@pytest.mark.slow
def test_linear_autoencoder_spans_the_pca_subspace(model_factory, digits_train):
    X = digits_train[0].reshape(len(digits_train[0]), 64).numpy()
    Xc = X - X.mean(0)
    k = 5
    model = model_factory("ae", hidden_dims=(), activation=None, latent_dim=k, input_shape=(64,), linear_part="none")
    hist = train.train(model, Xc, epochs=1000, batch_size=len(Xc), lr=1e-2, device="cpu", progress=False)
    pca = PCA(k).fit(Xc)
    W = model.decoder.out.weight.detach().double().numpy()  # (64, k)
    angles = np.degrees(subspace_angles(W, pca.components_.T))
    assert angles.max() < PCA_MAX_ANGLE_DEG, angles
    pca_err = ((Xc - pca.inverse_transform(pca.transform(Xc))) ** 2).sum(1).mean()
    assert hist[-1]["loss"] == pytest.approx(pca_err, rel=1e-3)
    # and not merely some k-dimensional subspace: the 6th component lies outside it
    sixth = PCA(k + 1).fit(Xc).components_[k:].T
    assert np.degrees(subspace_angles(W, sixth)).min() > 80


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_pca_base_starts_exactly_at_pca(arch, model_factory, digits_train):
    """linear_part="pca": once training starts, code and reconstruction are PCA's (the networks
    output zero), so the loss starts at PCA's error; the initialisation happens once."""
    X = digits_train[0][:500]  # (500, 1, 8, 8)
    k = 6
    model = model_factory("ae", arch, latent_dim=k, linear_part="pca")
    assert model.pca_path
    model.on_train_start(X)
    flat = X.reshape(len(X), 64).double().numpy()
    pca = PCA(k).fit(flat)
    with torch.no_grad():
        z = model.encode(X).double().numpy()
        x_hat = model.reconstruct(X).reshape(len(X), 64).double().numpy()
    np.testing.assert_allclose(np.abs(z), np.abs(pca.transform(flat)), atol=1e-4)  # axes up to sign
    np.testing.assert_allclose(x_hat, pca.inverse_transform(pca.transform(flat)), atol=1e-4)
    pca_err = ((flat - pca.inverse_transform(pca.transform(flat))) ** 2).sum(1).mean()
    assert float(model(X).loss.detach()) == pytest.approx(pca_err, rel=1e-4)
    # a second start (continued training, a loaded model) keeps the weights it has
    with torch.no_grad():
        model.pca_axes.mul_(2.0)
    mean = model.pca_mean.clone()
    model.on_train_start(X + 1.0)
    assert torch.equal(model.pca_mean, mean) and bool(model.data_initialised)
    with torch.no_grad():
        np.testing.assert_allclose(np.abs(model.encode(X).double().numpy()), 2 * np.abs(z), atol=1e-3)


def test_pca_base_training_only_lowers_the_error(model_factory, digits_train):
    """From PCA's start, the loss on the training data goes down, and the codes are no longer
    PCA's alone: the networks add to them."""
    X = digits_train[0]
    k = 4
    model = model_factory("ae", latent_dim=k, hidden_dims=(64,), linear_part="pca")
    flat = X.reshape(len(X), 64).numpy()
    pca = PCA(k).fit(flat)
    pca_err = ((flat - pca.inverse_transform(pca.transform(flat))) ** 2).sum(1).mean()
    hist = train.train(model, X, epochs=15, batch_size=64, lr=1e-3, device="cpu", progress=False)
    end = train.evaluate_loss(model, X)["loss"]
    assert end < 0.8 * pca_err, (end, pca_err)
    assert hist[-1]["loss"] < hist[0]["loss"]
    # the plain network at the same budget is worse than the PCA base (why the base is the default)
    plain = model_factory("ae", latent_dim=k, hidden_dims=(64,), linear_part="none")
    train.train(plain, X, epochs=15, batch_size=64, lr=1e-3, device="cpu", progress=False)
    assert train.evaluate_loss(plain, X)["loss"] > end


def test_pca_base_choice_and_its_errors(model_factory):
    assert model_factory("ae").pca_path  # auto: MSE, linear code, aekit's networks
    assert not model_factory("ae", linear_part="none").pca_path
    assert not model_factory("ae", loss="bce").pca_path  # auto steps aside for BCE ...
    with pytest.raises(ValueError, match="loss='mse'"):  # ... an explicit request is an error
        model_factory("ae", loss="bce", linear_part="pca")
    with pytest.raises(ValueError, match="linear code"):
        model_factory("ae", code_activation="tanh", linear_part="pca")
    for name, kw in (("sparse", {}), ("contractive", {}), ("sparse", {"sparsity": "topk", "k": 2})):
        assert not model_factory(name, **kw).pca_path, name
        with pytest.raises(ValueError, match="linear_part"):
            model_factory(name, linear_part="pca", **kw)
    assert model_factory("denoising").pca_path
    with pytest.raises(ValueError, match="linear_part must be"):
        model_factory("ae", linear_part="PCA")


def test_principal_axes_for_wide_inputs_match_pca():
    """Above 4096 features the axes come from a Gram matrix of a row sample: still PCA's."""
    from aekit.models.ae import principal_axes

    g = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(5000, 3, generator=g))[0]  # (D, 3)
    X = torch.randn(300, 3, generator=g) * torch.tensor([5.0, 3.0, 2.0]) @ basis.T + 0.01 * torch.randn(300, 5000, generator=g)
    mean, axes = principal_axes(X, 4)
    ref = PCA(3).fit(X.double().numpy())
    assert np.degrees(subspace_angles(axes[:, :3].double().numpy(), ref.components_.T)).max() < 0.5
    torch.testing.assert_close(mean, X.mean(0), rtol=0, atol=1e-5)
    torch.testing.assert_close(axes.T @ axes, torch.eye(4), rtol=0, atol=1e-4)


def test_pca_base_auto_leaves_generative_families_alone(model_factory):
    """"auto" gives the PCA base to the reconstruction families built on the AE, not to the
    generative ones (their codes are shaped to a prior or a density); asked for, it is used
    consistently: encode, decode and forward all go through it."""
    from aekit._registry import MODELS
    from aekit.models import AE

    built_on_ae = [n for n, cls in MODELS.items() if issubclass(cls, AE)]
    generative = [n for n in built_on_ae if MODELS[n].generative]
    assert generative  # rae, wae, aae
    for name in generative:
        assert not model_factory(name).pca_path, name
    assert model_factory("ae").pca_path and model_factory("denoising").pca_path
    X = torch.rand(40, 1, 8, 8)
    for name in generative:
        model = model_factory(name, linear_part="pca", latent_dim=3)
        assert model.pca_path
        model.on_train_start(X)
        model.eval()
        with torch.no_grad():
            out = model(X, generator=torch.Generator().manual_seed(0))
            torch.testing.assert_close(out.z, model.encode(X))
            torch.testing.assert_close(out.x_hat, model.decode(out.z))
            flat = X.reshape(40, 64)
            pca = (flat - model.pca_mean) @ model.pca_axes  # (B, 3): the networks start at zero
            torch.testing.assert_close(out.z, pca, atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------- masked (missing values)


def _with_nans(X: torch.Tensor, rate: float, seed: int) -> torch.Tensor:
    return torch.where(torch.rand(X.shape, generator=gen(seed)) < rate, torch.nan, X)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_masked_loss_counts_observed_entries_only(arch, model_factory, batch):
    X, _ = batch
    Xm = _with_nans(X, 0.3, 0)
    seen = ~torch.isnan(Xm)
    model = model_factory("masked", arch).eval()
    with torch.no_grad():
        out = model(Xm)
        # eval: the squared error of the observed entries, whatever the model puts in the gaps
        by_hand = (((out.x_hat - X) ** 2) * seen).flatten(1).sum(1)
        torch.testing.assert_close(out.parts["recon"], by_hand)
        assert torch.isfinite(out.x_hat).all() and torch.isfinite(model.reconstruct(Xm)).all()
        # the encoder reads the mask: a NaN is not the same as an observed 0
        assert not torch.allclose(model.encode(Xm), model.encode(torch.nan_to_num(Xm, 0.0)))
    model.train()
    out = model(Xm, generator=gen(1))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_masked_hiding_covers_observed_entries_only(model_factory, batch):
    X, _ = batch
    seen = ~torch.isnan(_with_nans(X, 0.3, 0))
    for hide in ("rows", "random", "mixed"):
        model = model_factory("masked", hide=hide, hide_rate=0.8)
        visible = model.hide(seen, gen(2))
        assert not (visible & ~seen).any(), hide  # never shows an entry that is missing
        assert (seen & ~visible).any(), hide  # and hides some observed ones
    # rows: a row keeps exactly what it and another row of the batch both observe
    model = model_factory("masked", hide="rows")
    visible = model.hide(seen, gen(3))
    others = seen[torch.randperm(len(seen), generator=gen(3))]
    assert torch.equal(visible, seen & others)
    # random: about hide_rate / 2 of the observed entries are hidden on average
    model = model_factory("masked", hide="random", hide_rate=0.6)
    full = torch.ones(4000, 1, 8, 8, dtype=torch.bool)
    assert abs((~model.hide(full, gen(4))).float().mean() - 0.3) < 0.02


def test_masked_config_checks(model_factory):
    for bad in ({"hide": "columns"}, {"hide_rate": 1.5}, {"visible_weight": -1.0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            model_factory("masked", **bad)
