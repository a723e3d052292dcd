"""The families that regularise the code distribution (beta_tcvae, factorvae, infovae, wae,
vampprior, rae, aae): each one's own maths, and the second player of the adversarial ones."""

from __future__ import annotations

import math

import pytest
import torch

from aekit import checkpoint, train
from aekit._registry import MODELS, build_model
from aekit._utils import seeded
from aekit.evaluate import evaluate
from aekit.models.vampprior import mixture_log_density

ADVERSARIAL = sorted(n for n, cls in MODELS.items() if cls.adversarial)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def same_weights(a, b) -> None:
    """Load a's weights into b where the names match (b may have more, e.g. a discriminator)."""
    b.load_state_dict({**b.state_dict(), **a.state_dict()})


# ---------------------------------------------------------------------------- beta-TCVAE


def test_beta_tcvae_reweights_the_kl_decomposition(model_factory, batch):
    X, _ = batch
    plain = model_factory("beta_tcvae", beta=1.0).eval()
    heavy = model_factory("beta_tcvae", beta=6.0, alpha=2.0, gamma=0.5).eval()
    same_weights(plain, heavy)
    with torch.no_grad():
        a = plain(X, generator=gen(0))
        b = heavy(X, generator=gen(0))
        z, mu, logvar = plain.reparameterize(X, generator=gen(0))
    # alpha = beta = gamma = 1: the terms add up to log q(z|x) - log p(z), a one-sample KL
    log_q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(1)
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
    assert float(a.loss) == pytest.approx(float((a.parts["recon"] + log_q - log_p).mean()), abs=1e-3)
    p = a.parts
    assert float(b.loss) == pytest.approx(float((p["recon"] + 2 * p["mi"] + 6 * p["tc"] + 0.5 * p["dwkl"]).mean()), abs=1e-3)
    # the ELBO keeps the analytic KL, whatever the weights
    torch.testing.assert_close(p["kl"], torch.distributions.kl_divergence(
        torch.distributions.Normal(mu, torch.exp(0.5 * logvar)), torch.distributions.Normal(0.0, 1.0)).sum(1))
    torch.testing.assert_close(heavy.elbo(X, generator=gen(0)), plain.elbo(X, generator=gen(0)))


def test_beta_tcvae_warmup_scales_all_three_terms(model_factory, batch):
    X, _ = batch
    model = model_factory("beta_tcvae", kl_warmup_epochs=4.0).train()
    model.on_train_progress(1.0)  # a quarter of the way
    out = model(X, generator=gen(0))
    p = out.parts
    expected = (p["recon"] + 0.25 * (p["mi"] + 6 * p["tc"] + p["dwkl"])).mean()
    assert float(out.loss.detach()) == pytest.approx(float(expected.detach()), abs=1e-3)
    with pytest.raises(ValueError, match="free_bits"):
        model_factory("beta_tcvae", free_bits=0.5)


# ---------------------------------------------------------------------------- FactorVAE


@pytest.mark.parametrize("rho", [0.0, 0.8])
def test_factorvae_discriminator_estimates_the_total_correlation(rho):
    """Trained with the model's own loss on codes from a correlated Gaussian, the discriminator's
    mean logit is the TC: -log(1 - rho^2) / 2 (0.51 nats at rho = 0.8; measured 0.55 and -0.01)."""
    with seeded(0):
        model = build_model("factorvae", input_shape=(4,), latent_dim=2, hidden_dims=(8,), discriminator_dims=(32, 32))
    g = gen(1)
    chol = torch.linalg.cholesky(torch.tensor([[1.0, rho], [rho, 1.0]]))
    opt = torch.optim.Adam(model.param_groups()[1]["params"], lr=3e-3, betas=(0.5, 0.9))
    for _ in range(500):
        z = torch.randn(256, 2, generator=g) @ chol.T
        loss = model.discriminator_loss(z, g).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        estimate = float(model.tc_estimate(torch.randn(20000, 2, generator=g) @ chol.T).mean())
    assert estimate == pytest.approx(-0.5 * math.log(1 - rho**2), abs=0.1)


def test_factorvae_shuffles_each_dimension_across_the_batch():
    from aekit.models.factorvae import permute_dims

    z = torch.arange(40.0).reshape(10, 4)
    p = permute_dims(z, gen(0))
    for k in range(4):  # each column keeps its values, in another order
        assert torch.equal(p[:, k].sort().values, z[:, k])
    assert not torch.equal(p, z)
    assert len({tuple(p[:, k].argsort().tolist()) for k in range(4)}) == 4  # columns shuffled independently


def test_factorvae_loss_is_the_vae_loss_plus_gamma_tc(model_factory, batch):
    X, _ = batch
    vae, fvae = model_factory("vae").eval(), model_factory("factorvae", gamma=7.0).eval()
    same_weights(vae, fvae)
    with torch.no_grad():
        a, b = vae(X, generator=gen(0)), fvae(X, generator=gen(0))
    torch.testing.assert_close(b.parts["recon"], a.parts["recon"])
    assert float(b.loss) == pytest.approx(float(a.loss + 7.0 * b.parts["tc"].mean()), abs=1e-4)
    fvae.train()
    out = fvae(X, generator=gen(0))  # in training the discriminator's loss is added
    assert float(out.loss.detach()) == pytest.approx(float(b.loss + out.parts["discriminator"].detach().mean()), abs=1e-4)


# ---------------------------------------------------------------------------- the second player


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_each_player_gets_only_its_own_gradient(name, model_factory, batch):
    X, _ = batch
    model = model_factory(name).train()
    groups = model.param_groups()
    assert len(groups) == 2 and groups[1]["betas"] == (0.5, 0.9)
    own, other = groups[0]["params"], groups[1]["params"]
    out = model(X, generator=gen(0))
    disc = out.parts["discriminator"].mean()
    objective = out.loss - disc  # the model's own loss
    g_obj = torch.autograd.grad(objective, own + other, allow_unused=True, retain_graph=True)
    g_disc = torch.autograd.grad(disc, own + other, allow_unused=True)

    def moved(gs):
        return [g is not None and bool(g.abs().sum() > 0) for g in gs]

    assert not any(moved(g_obj[len(own):]))  # the model's loss never trains the discriminator ...
    assert all(moved(g_disc[len(own):]))  # ... which learns from its own loss only
    assert not any(moved(g_disc[: len(own)]))  # and that loss never reaches the model
    assert sum(moved(g_obj[: len(own)])) >= len(own) - 2  # the model learns (a decoder variance may sit out)


def test_aae_discriminator_sign_and_the_encoders_pull():
    """Trained to tell prior draws (real) from codes around (3, 3) (fake), the discriminator says
    "real" on the prior and "fake" on the codes; the encoder's adversarial gradient then points
    from the codes towards the prior."""
    with seeded(0):
        model = build_model("aae", input_shape=(4,), latent_dim=2, hidden_dims=(8,), discriminator_dims=(32,))
    g = gen(0)
    opt = torch.optim.Adam(model.param_groups()[1]["params"], lr=3e-3, betas=(0.5, 0.9))
    for _ in range(200):
        codes = torch.randn(128, 2, generator=g) + 3.0
        loss = model.discriminator_loss(codes, g).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    prior, codes = torch.randn(500, 2, generator=g), torch.randn(500, 2, generator=g) + 3.0
    with torch.no_grad():
        assert float(model.discriminator(prior).mean()) > 1.0 > -1.0 > float(model.discriminator(codes).mean())
    codes.requires_grad_(True)
    model.adversarial_loss(codes).sum().backward()
    towards_prior = (-codes.grad * (0.0 - codes.detach())).sum(1)  # descent direction . (origin - z)
    assert float((towards_prior > 0).float().mean()) > 0.9


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_the_discriminators_optimizer_state_is_checkpointed(name, model_factory, digits_train, tmp_path):
    X = digits_train[0][:128]
    model = model_factory(name, discriminator_lr=5e-4)
    train.train(model, X, epochs=2, batch_size=32, lr=3e-3, device="cpu", progress=False, checkpoint_dir=tmp_path)
    fresh = model_factory(name, discriminator_lr=5e-4)
    opt = train._adamw(fresh, 3e-3, 0.0)
    checkpoint.load_train_state(tmp_path / train.CHECKPOINT_NAME, fresh, opt)
    group = opt.param_groups[1]
    assert group["lr"] == 5e-4 and tuple(group["betas"]) == (0.5, 0.9) and opt.param_groups[0]["lr"] == 3e-3
    for p in group["params"]:  # the discriminator's Adam moments came back
        assert float(opt.state[p]["step"]) == 8 and bool(opt.state[p]["exp_avg_sq"].abs().sum() > 0)


def test_param_groups_must_cover_every_parameter_once(model_factory, digits_train):
    model = model_factory("ae")
    model.param_groups = lambda: [{"params": list(model.encoder.parameters())}]
    with pytest.raises(ValueError, match="every parameter"):
        train.train(model, digits_train[0][:64], epochs=1, device="cpu", progress=False)
    params = list(model.parameters())
    model.param_groups = lambda: [{"params": params}, {"params": params[:1]}]
    with pytest.raises(ValueError, match="exactly once"):
        train.train(model, digits_train[0][:64], epochs=1, device="cpu", progress=False)


# ---------------------------------------------------------------------------- MMD families


def test_infovae_is_the_vae_plus_weighted_mmd(model_factory, batch):
    X, _ = batch
    vae, info = model_factory("vae").eval(), model_factory("infovae", mmd_weight=50.0).eval()
    same_weights(vae, info)
    with torch.no_grad():
        a, b = vae(X, generator=gen(0)), info(X, generator=gen(0))
        z, _, _ = info.reparameterize(X, generator=gen(0))
        g = gen(0)
        info.reparameterize(X, generator=g)  # the draws forward made before the prior's
        prior = torch.randn(z.shape, generator=g)
    from aekit import losses

    torch.testing.assert_close(b.parts["mmd"], losses.mmd(z, prior, "rbf").expand(len(X)))
    assert float(b.loss) == pytest.approx(float(a.loss + 50.0 * b.parts["mmd"].mean()), abs=1e-3)
    torch.testing.assert_close(info.elbo(X, generator=gen(1)), vae.elbo(X, generator=gen(1)))


@pytest.mark.slow
def test_wae_and_aae_match_the_codes_to_the_prior(model_factory, digits_train):
    """240 steps on digits: the codes of WAE and AAE are closer to N(0, I), by MMD, than those of
    a plain autoencoder trained alike (measured: ae 0.072, wae 0.0018, aae 0.019). The AAE's
    adversarial weight is 1 here: on 8x8 digits the MSE is small, and at the default 0.1 the
    pull is weaker (MMD 0.040); after only 64 steps its discriminator still wins (MMD 0.26)."""
    from aekit import losses

    X = digits_train[0][:512]
    mmds = {}
    for name in ("ae", "wae", "aae"):
        extra = {"aae": {"adversarial_weight": 1.0}, "ae": {"linear_part": "none"}}.get(name, {})  # ae: the plain net
        model = model_factory(name, latent_dim=2, **extra)
        train.train(model, X, epochs=30, batch_size=64, lr=3e-3, device="cpu", progress=False)
        with torch.no_grad():
            z = model.encode(X)
        mmds[name] = float(losses.mmd(z, torch.randn(z.shape, generator=gen(0))))
    assert mmds["wae"] < mmds["ae"] / 2 and mmds["aae"] < mmds["ae"] / 2, mmds


# ---------------------------------------------------------------------------- VampPrior


def test_vampprior_log_prior_is_a_logsumexp_over_components_by_hand(model_factory):
    model = model_factory("vampprior", n_pseudo_inputs=7).eval()
    z = torch.randn(5, 4, generator=gen(0)) * 2
    with torch.no_grad():
        mu, logvar = model.posterior(model.pseudo_inputs.clamp(0, 1))  # (7, 4) each
        comps = torch.distributions.Normal(mu[None], torch.exp(0.5 * logvar[None])).log_prob(z[:, None]).sum(2)
        by_hand = torch.logsumexp(comps, dim=1) - math.log(7)
        torch.testing.assert_close(model.log_prior(z), by_hand, atol=1e-4, rtol=1e-5)
    assert model.pseudo_inputs.shape == (7, 1, 8, 8)


def test_vampprior_with_standard_normal_components_is_the_vae_prior(model_factory):
    model = model_factory("vampprior", n_pseudo_inputs=3).eval()
    with torch.no_grad():
        model.encoder.out.weight.zero_()
        model.encoder.out.bias.zero_()  # every posterior, pseudo-inputs' included, is N(0, I)
        z = torch.randn(6, 4, generator=gen(0))
        vae_prior = build_model("vae", input_shape=(1, 8, 8), latent_dim=4, hidden_dims=(32,)).log_prior(z)
        torch.testing.assert_close(model.log_prior(z), vae_prior)


def test_mixture_log_density_is_exact_far_from_the_components():
    mu, logvar = torch.tensor([[0.0, 0.0], [5.0, -1.0]]), torch.tensor([[0.0, -1.0], [1.0, 0.5]])
    z = torch.tensor([[40.0, -30.0], [5.0, -1.0]])
    mix = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(torch.ones(2)),
        torch.distributions.Independent(torch.distributions.Normal(mu, torch.exp(0.5 * logvar)), 1))
    torch.testing.assert_close(mixture_log_density(z, mu, logvar), mix.log_prob(z), rtol=1e-5, atol=1e-3)


def test_vampprior_elbo_and_nll_use_the_mixture(model_factory, batch):
    X, _ = batch
    model = model_factory("vampprior", n_pseudo_inputs=10).eval()
    with torch.no_grad():
        out = model(X, generator=gen(0))
        z, mu, logvar = model.reparameterize(X, generator=gen(0))
        log_q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(1)
        torch.testing.assert_close(out.parts["kl"], log_q - model.log_prior(z), atol=1e-4, rtol=1e-5)
        torch.testing.assert_close(model.elbo(X, generator=gen(0)), model.log_likelihood(X, z) + model.log_prior(z) - log_q,
                                   atol=1e-3, rtol=1e-5)
        # the NLL's importance weights, drawn S at a time, use the mixture too
        torch.testing.assert_close(model.log_weights(X, n_samples=1, generator=gen(0))[0],
                                   model.log_likelihood(X, z) + model.log_prior(z) - log_q, atol=1e-3, rtol=1e-5)
    r = evaluate(model, X, nll_samples=64, seed=0)
    assert math.isfinite(r["nll"]) and r["nll"] <= -r["elbo"] + 1.0
    with pytest.raises(ValueError, match="free_bits"):
        model_factory("vampprior", free_bits=0.1)


def test_vampprior_samples_decode_draws_from_the_components(model_factory):
    model = model_factory("vampprior", n_pseudo_inputs=2).eval()
    with torch.no_grad():
        model.pseudo_inputs[0].fill_(0.0)
        model.pseudo_inputs[1].fill_(1.0)
        mu, _ = model.pseudo_posteriors()
        decoded = model.decode(mu)  # the components' means, decoded
        near = []
        for s in model.sample(400, generator=gen(0)):
            d = ((decoded - s) ** 2).flatten(1).sum(1)  # (2,)
            near.append(int(d.argmin()))
    share = sum(near) / len(near)
    assert 0.35 < share < 0.65  # both components are drawn, about equally


# ---------------------------------------------------------------------------- RAE


def test_rae_penalties(model_factory, batch):
    X, _ = batch
    model = model_factory("rae", code_weight=0.5, decoder_weight=0.01).train()
    out = model(X)
    l2 = sum(float(p.detach().pow(2).sum()) for p in model.decoder.parameters())
    torch.testing.assert_close(out.parts["code"], 0.5 * out.z.pow(2).sum(1))
    assert float(out.parts["decoder_l2"][0].detach()) == pytest.approx(l2, rel=1e-5)
    expected = (out.parts["recon"] + 0.5 * out.parts["code"] + 0.01 * out.parts["decoder_l2"]).mean()
    assert float(out.loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    out.loss.backward()
    w = model.decoder.out.weight
    plain = model_factory("rae", code_weight=0.5, decoder_weight=0.0).train()
    plain(X).loss.backward()  # same weights (same seed), no decoder penalty
    torch.testing.assert_close(w.grad - plain.decoder.out.weight.grad, 0.02 * w.detach(), atol=1e-6, rtol=1e-4)


def test_rae_mixture_samples_follow_the_codes(model_factory, digits_train):
    X = digits_train[0][:600]
    model = model_factory("rae", n_components=3)
    train.train(model, X, epochs=3, batch_size=64, lr=3e-3, device="cpu", progress=False)  # fits the mixture
    with torch.no_grad():
        codes = model.encode(X).double()
        drawn = model.sample_codes(40000, generator=gen(0)).double()
    assert float(model.gmm_weights.sum()) == pytest.approx(1.0, abs=1e-5) and (model.gmm_weights > 0).all()
    # EM's fixed point keeps the data's mean and covariance, so draws from the mixture share them
    torch.testing.assert_close(drawn.mean(0), codes.mean(0), atol=0.05 * float(codes.std()), rtol=0)
    torch.testing.assert_close(torch.cov(drawn.T), torch.cov(codes.T), atol=0.05 * float(codes.var(0).max()), rtol=0)
    comps = torch.multinomial(model.gmm_weights, 40000, replacement=True, generator=gen(0))
    freq = torch.bincount(comps, minlength=3).double() / 40000
    torch.testing.assert_close(freq, model.gmm_weights.double(), atol=0.01, rtol=0)
    assert model.sample(3, generator=gen(1)).shape == (3, 1, 8, 8)


def test_rae_mixture_with_fewer_codes_than_components(model_factory, batch):
    X, _ = batch
    model = model_factory("rae", n_components=10).eval()
    model.fit_density(X[:4])
    weights = model.gmm_weights
    assert int((weights > 0).sum()) == 4 and float(weights.sum()) == pytest.approx(1.0, abs=1e-6)
    assert torch.isfinite(model.sample(5, generator=gen(0))).all()
