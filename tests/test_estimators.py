"""scikit-learn contract for every estimator, plus the behaviour the estimator face promises."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

import aekit
from aekit.estimators import estimator_classes

FAST = dict(epochs=3, batch_size=32, hidden_dims=(16,), latent_dim=2, random_state=0, device="cpu")


def _fast(cls):
    extra = {"lower_latent_dims": (4,)} if cls is aekit.HierarchicalVAE else {}
    if cls is aekit.VQVAE:
        extra = {"latent_dim": 4, "embedding_dim": 2, "codebook_size": 8}
    if cls is aekit.VampPriorVAE:
        extra = {"n_pseudo_inputs": 8}
    if cls in (aekit.FactorVAE, aekit.AdversarialAutoEncoder):
        extra = {"discriminator_dims": (16,)}
    return cls(**{**FAST, **extra})


def _expected_failures(est):
    """Checks that cannot apply, each with the reason (scikit-learn's documented mechanism)."""
    return {
        # The models compute in float32; BLAS picks different kernels for a batch of 1 and a batch
        # of 20, so results agree only to ~1e-7 relative, which this check's rtol=1e-7 rejects.
        # Row independence itself is tested below (test_scores_do_not_depend_on_other_rows).
        "check_methods_subset_invariance": "float32 results differ by ~1 ulp across batch sizes",
    }


@parametrize_with_checks([_fast(c) for c in estimator_classes().values()], expected_failed_checks=_expected_failures)
def test_sklearn_contract(estimator, check):
    check(estimator)


# --- behaviour the estimator face promises -------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    d = aekit.load_dataset("digits")
    return d.X.reshape(len(d.X), 64), d.y


@pytest.fixture(scope="module")
def fitted_vae(digits):
    X, _ = digits
    return aekit.VAE(latent_dim=4, hidden_dims=(64,), epochs=5, random_state=0, device="cpu").fit(X[:400])


def test_scores_do_not_depend_on_other_rows(fitted_vae, digits):
    X, _ = digits
    together = fitted_vae.score_samples(X[:50])
    alone = np.array([fitted_vae.score_samples(X[i : i + 1])[0] for i in (0, 17, 49)])
    np.testing.assert_allclose(alone, together[[0, 17, 49]], rtol=1e-4)
    reversed_ = fitted_vae.score_samples(X[:50][::-1])[::-1]
    np.testing.assert_allclose(reversed_, together, rtol=1e-4)


def test_same_seed_same_model_other_seed_other_model(digits):
    X, _ = digits
    kw = dict(latent_dim=3, hidden_dims=(32,), epochs=3, device="cpu")
    a = aekit.VAE(random_state=1, **kw).fit(X[:300]).transform(X[:20])
    b = aekit.VAE(random_state=1, **kw).fit(X[:300]).transform(X[:20])
    c = aekit.VAE(random_state=2, **kw).fit(X[:300]).transform(X[:20])
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("shape", [(8, 8), (1, 8, 8)])
@pytest.mark.parametrize("architecture", ["mlp", "conv"])
def test_image_layout_is_kept(digits, shape, architecture):
    X, _ = digits
    Xi = X[:200].reshape(-1, *shape)
    est = aekit.AutoEncoder(latent_dim=4, hidden_dims=(8, 16) if architecture == "conv" else (32,),
                            architecture=architecture, epochs=2, random_state=0, device="cpu").fit(Xi)
    assert est.reconstruct(Xi[:5]).shape == (5, *shape)
    assert est.inverse_transform(est.transform(Xi[:5])).shape == (5, *shape)
    assert est.n_features_in_ == 64
    with pytest.raises(ValueError, match="expecting"):
        est.transform(X[:5])  # flat rows where images were fitted


def test_conv_needs_images(digits):
    X, _ = digits
    with pytest.raises(ValueError, match="conv"):
        aekit.AutoEncoder(architecture="conv", epochs=1).fit(X[:50])


def test_save_load_and_pickle_round_trip(fitted_vae, digits, tmp_path):
    X, _ = digits
    path = fitted_vae.save(tmp_path / "vae.safetensors")
    again = aekit.load(path)
    np.testing.assert_array_equal(again.transform(X[:30]), fitted_vae.transform(X[:30]))
    np.testing.assert_array_equal(again.score_samples(X[:30]), fitted_vae.score_samples(X[:30]))
    assert again.get_params() == fitted_vae.get_params()
    assert again.history_ == fitted_vae.history_
    unpickled = pickle.loads(pickle.dumps(fitted_vae))
    np.testing.assert_array_equal(unpickled.transform(X[:30]), fitted_vae.transform(X[:30]))
    fresh = clone(fitted_vae)
    assert not hasattr(fresh, "model_") and fresh.get_params() == fitted_vae.get_params()


def test_grid_search_and_pipeline(digits):
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    X, _ = digits
    grid = GridSearchCV(aekit.AutoEncoder(hidden_dims=(32,), epochs=4, random_state=0, device="cpu"),
                        {"latent_dim": [1, 8]}, cv=2).fit(X[:300])
    assert grid.best_params_ == {"latent_dim": 8}  # a 1-D code reconstructs digits far worse
    pipe = make_pipeline(MinMaxScaler(), aekit.VAE(latent_dim=2, hidden_dims=(32,), epochs=2, random_state=0))
    assert pipe.fit_transform(X[:200] * 16).shape == (200, 2)


def test_likelihood_auto_and_range_checks(digits):
    X, _ = digits
    kw = dict(latent_dim=2, hidden_dims=(16,), epochs=1, random_state=0)
    assert aekit.VAE(**kw).fit(X[:100]).model_.config.likelihood == "bernoulli"
    assert aekit.VAE(**kw).fit(X[:100] * 16 - 3).model_.config.likelihood == "gaussian"
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        aekit.VAE(likelihood="bernoulli", **kw).fit(X[:100] * 16)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        aekit.AutoEncoder(loss="bce", **kw).fit(X[:100] - 0.5)


def test_sample_is_reproducible(fitted_vae):
    a, b = fitted_vae.sample(5, random_state=3), fitted_vae.sample(5, random_state=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (5, 64) and not np.allclose(a, fitted_vae.sample(5, random_state=4))
    with pytest.raises(ValueError, match="n_samples"):
        fitted_vae.sample(0)


def test_inverse_transform_checks_width(fitted_vae):
    with pytest.raises(ValueError, match="latent_dim=4"):
        fitted_vae.inverse_transform(np.zeros((2, 3)))


def test_conditional_vae_labels(digits):
    X, y = digits
    labels = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])[y]
    cvae = aekit.ConditionalVAE(latent_dim=4, hidden_dims=(64,), epochs=30, random_state=0, device="cpu")
    with pytest.raises(ValueError, match="needs labels"):
        cvae.fit(X[:100])
    cvae.fit(X[:1000], labels[:1000])
    assert list(cvae.classes_) == sorted(set(labels))
    assert cvae.sample(3, y="seven", random_state=0).shape == (3, 64)
    with pytest.raises(ValueError, match="unknown class"):
        cvae.transform(X[:2], y=["seven", "eleven"])
    # the class with the best ELBO is the right one far more often than chance (10%)
    acc = np.mean(cvae.predict(X[1000:1400]) == labels[1000:1400])
    assert acc > 0.5, acc


def test_a_family_declares_its_own_training_defaults_once(monkeypatch):
    """AEConfig.FIT_DEFAULTS turns early stopping on for the AutoEncoder: its signature,
    docstring and CLI catalog show it; Configs built on the AE's keep FitSettings' default."""
    import dataclasses
    import inspect
    from typing import ClassVar

    from aekit.estimators import FitSettings, estimator_params
    from aekit.models import AEConfig

    usual = FitSettings().early_stopping
    assert usual is False and aekit.AutoEncoder().early_stopping is True
    assert inspect.signature(aekit.AutoEncoder).parameters["early_stopping"].default is True
    assert "early_stopping : bool, default=True" in aekit.AutoEncoder.__doc__
    for cls in (aekit.DenoisingAutoEncoder, aekit.SparseAutoEncoder, aekit.ContractiveAutoEncoder, aekit.VAE):
        assert cls().early_stopping is usual, cls
        assert f"early_stopping : bool, default={usual}" in cls.__doc__, cls
    assert estimator_params("ae")["early_stopping"].default is True
    assert estimator_params("ae")["patience"] == estimator_params("vae")["patience"]  # the rest untouched

    # a name that is not a training setting is refused, naming it
    @dataclasses.dataclass
    class Typo(AEConfig):
        FIT_DEFAULTS: ClassVar[dict] = {"early_stoping": True}

    class Fake:
        Config = Typo

    import aekit.estimators.base as base

    real = base.get_model_class
    monkeypatch.setattr(base, "get_model_class", lambda name: Fake if name == "typo" else real(name))
    with pytest.raises(ValueError, match="early_stoping"):
        estimator_params("typo")


def test_conditional_vae_infers_labels_by_the_elbo_not_the_score_at_the_posterior_mean():
    """Label inference ranks classes by the ELBO, E_q[log p(x|z,y)] - KL. A model is set up by hand
    where the two differ: class 0's posterior is N(0, I) (no KL), class 1's is N(0, e^-3 I) (KL 8.2
    nats); the decoder is 3 z. At z = mu both reconstruct x = 0 equally, so scoring at the mean
    picks class 0; the ELBO pays class 0's wide posterior (E[4.5 |z|^2] = 36 nats against 1.8) and
    picks class 1."""
    rng = np.random.default_rng(0)
    cvae = aekit.ConditionalVAE(latent_dim=8, hidden_dims=(), likelihood="gaussian", gaussian_std=1.0,
                                standardize=False, epochs=1, random_state=0, device="cpu")
    cvae.fit(rng.normal(size=(64, 8)), np.arange(64) % 2)
    enc, dec = cvae.model_.encoder.out, cvae.model_.decoder.out  # (no hidden layers: one linear map each)
    with torch.no_grad():
        for p in (*enc.parameters(), *dec.parameters()):
            p.zero_()
        enc.weight[8:, 8 + 1] = -3.0  # log-variance -3 for class 1, 0 for class 0; mean 0 for both
        dec.weight[:, :8] = 3.0 * torch.eye(8)  # x_hat = 3 z, whatever the class
    x, elbo, at_mean = torch.zeros(5, 8), {}, {}
    with torch.no_grad():
        for c in (0, 1):
            yc = torch.full((5,), c)
            elbo[c] = float(sum(cvae.model_.elbo(x, yc).mean() for _ in range(50))) / 50
            (level,) = cvae.model_.posterior_levels(x, yc, sample=False)  # log p(x | z = mu, y) - KL
            at_mean[c] = float((cvae.model_.log_likelihood(x, level.mu_q, yc) - level.kl_per_dim().sum(1)).mean())
    assert elbo[1] > elbo[0] + 10 and at_mean[0] > at_mean[1] + 5  # the two rankings disagree here
    assert cvae.predict(np.zeros((5, 8))).tolist() == [1] * 5


@pytest.mark.slow
def test_conditional_vae_samples_are_recognised_as_their_class(digits):
    """sample(n, y) decodes codes from a Gaussian fitted per class to the training codes: a
    classifier trained on real digits recognises the requested class. Measured with these
    settings (seeds 0-2): 0.98-1.00; the same models decoding N(0, I) draws (the previous
    sampling, ``sample_codes="prior"``) reach 0.60-0.64."""
    from sklearn.linear_model import LogisticRegression

    X, y = digits
    clf = LogisticRegression(max_iter=2000).fit(X, y)
    labels = np.repeat(np.arange(10), 50)
    cvae = aekit.ConditionalVAE(latent_dim=32, hidden_dims=(64,), epochs=20, random_state=0, device="cpu").fit(X, y)
    S = cvae.sample(500, y=labels, random_state=0)
    assert np.mean(clf.predict(S) == labels) >= 0.95
    # "prior" decodes N(0, I) draws: exactly inverse_transform of the same draws
    prior = aekit.ConditionalVAE(latent_dim=32, hidden_dims=(64,), epochs=20, random_state=0, device="cpu",
                                 sample_codes="prior").fit(X, y)
    z = torch.randn((500, 32), generator=torch.Generator().manual_seed(0)).numpy()
    np.testing.assert_allclose(prior.sample(500, y=labels, random_state=0), prior.inverse_transform(z, labels), atol=1e-6)
    assert np.mean(clf.predict(prior.inverse_transform(z, labels)) == labels) < 0.9
