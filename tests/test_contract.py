"""The contract every registered model keeps, checked once for all of them (and both architectures).

Shapes, a finite loss that backpropagates into every trainable parameter, overfitting one batch,
a save/load round trip, seed determinism of training, sampling, and conditioning.
"""

from __future__ import annotations

import math

import pytest
import torch

from aekit import checkpoint, train
from aekit._registry import MODELS, model_names

NAMES = model_names()
CASES = [pytest.param(n, a, id=f"{n}-{a}") for n in NAMES for a in ("mlp", "conv")]
GENERATIVE = [n for n in NAMES if MODELS[n].generative]
CONDITIONAL = [n for n in NAMES if MODELS[n].conditional]
VARIATIONAL = [n for n in NAMES if MODELS[n].variational]
QUANTISED = [n for n in NAMES if MODELS[n].quantised]

# Overfitting one batch of 32 digits with 300 Adam steps (lr 1e-2): the eval-mode loss above its
# floor (the data entropy for a Bernoulli likelihood, 0 otherwise) falls by at least this factor.
# Measured: deterministic families (their reconstruction term) 5.6 (conv vqvae) to 48 (mlp ae); VAEs
# 2.7 (conv hvae) to 8.1 (mlp cvae). A VAE keeps a KL of at least ~log(32) nats to tell 32 images apart,
# hence its lower bar. An adversarial family's game term cannot fall on one fixed batch (its
# discriminator learns the 32 codes by heart), so for those the reconstruction part is held to the bar
# (aae: 41 mlp, 9.0 conv).
OVERFIT_FACTOR_DETERMINISTIC = 4.0
OVERFIT_FACTOR_VARIATIONAL = 2.0


def labels_for(model, y):
    return y if model.conditional else None


def loss_floor(model, X) -> float:
    """Smallest reachable mean reconstruction loss: the entropy of the pixels for Bernoulli decoders."""
    if getattr(model, "recon_kind", None) == "bce":
        return float((-(torch.xlogy(X, X) + torch.xlogy(1 - X, 1 - X))).flatten(1).sum(1).mean())
    return 0.0


def test_registry_has_every_family():
    expected = {"ae", "denoising", "sparse", "contractive", "vae", "cvae", "hvae", "iwae", "vqvae", "masked"}
    assert expected <= set(NAMES)
    assert set(GENERATIVE) >= {"vae", "cvae", "hvae", "vqvae"}
    assert CONDITIONAL == ["cvae"]
    assert set(VARIATIONAL) >= {"vae", "cvae", "hvae", "iwae"} and "vqvae" not in VARIATIONAL
    assert QUANTISED == ["vqvae"]
    assert [n for n in NAMES if MODELS[n].handles_missing] == ["masked"]
    for n in NAMES:
        assert MODELS[n].name == n


@pytest.mark.parametrize("name,arch", CASES)
def test_forward_shapes(name, arch, model_factory, batch):
    X, y = batch
    model = model_factory(name, arch)
    yb = labels_for(model, y)
    B, K = X.shape[0], model.config.latent_dim
    for mode in (True, False):
        model.train(mode)
        out = model(X, yb, generator=torch.Generator().manual_seed(0))
        assert out.loss.shape == ()
        assert out.x_hat.shape == X.shape
        assert out.z.shape == (B, K)
        assert "recon" in out.parts
        for part, v in out.parts.items():
            assert v.shape == (B,), part
            assert torch.isfinite(v).all(), part
        for stat, v in out.stats.items():
            assert v.shape == (), stat
    model.eval()
    with torch.no_grad():
        z = model.encode(X, yb)
        assert z.shape == (B, K)
        assert model.decode(z, yb).shape == X.shape
        assert model.reconstruct(X, yb).shape == X.shape


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(3, 7, 5), (2, 2, 9), (1, 28, 28)], ids=str)
def test_conv_models_keep_odd_image_shapes(name, shape, model_factory):
    model = model_factory(name, "conv", input_shape=shape, hidden_dims=(4, 8, 8))
    x = torch.rand(3, *shape, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2]) if model.conditional else None
    out = model(x, y, generator=torch.Generator().manual_seed(0))
    assert out.x_hat.shape == x.shape
    assert model.decode(out.z, y).shape == x.shape


@pytest.mark.parametrize("name,arch", CASES)
def test_loss_backpropagates_to_every_parameter(name, arch, model_factory, batch):
    X, y = batch
    model = model_factory(name, arch)
    model.train()
    out = model(X, labels_for(model, y), generator=torch.Generator().manual_seed(0))
    assert out.loss.ndim == 0 and math.isfinite(float(out.loss.detach()))
    out.loss.backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable
    for n, p in trainable:
        assert p.grad is not None, f"{n} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{n} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{n} has an all-zero gradient"


@pytest.mark.parametrize("name,arch", CASES)
def test_overfits_one_batch(name, arch, model_factory, batch):
    X, y = batch
    model = model_factory(name, arch)
    yb = labels_for(model, y)
    floor = loss_floor(model, X)

    def eval_excess() -> float:
        model.eval()
        with torch.no_grad():
            out = model(X, yb, generator=torch.Generator().manual_seed(1))
        model.train()
        assert all(torch.isfinite(v).all() for v in out.parts.values())
        # the reconstruction term, except for the non-adversarial VAEs (their -ELBO): penalties have
        # floors of their own, the DAE's fused-estimate term is a log of its error, a game value need not fall
        loss = out.loss if model.variational and not model.adversarial else out.parts["recon"].mean()
        return float(loss) - floor

    before = eval_excess()
    opt = torch.optim.Adam(model.param_groups(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(300):
        out = model(X, yb, generator=gen)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    after = eval_excess()
    if name in VARIATIONAL:
        assert after > 0  # a Bernoulli -ELBO never goes below the entropy of the data
    factor = OVERFIT_FACTOR_VARIATIONAL if name in VARIATIONAL else OVERFIT_FACTOR_DETERMINISTIC
    assert before / after > factor, (before, after)


@pytest.mark.parametrize("name,arch", CASES)
def test_save_load_round_trip(name, arch, model_factory, batch, tmp_path):
    X, y = batch
    model = model_factory(name, arch)
    yb = labels_for(model, y)
    # a few training steps move weights and buffers (codebook, EMA state, warm-up counter) off their init
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    model.train()
    for step in range(3):
        model.on_train_progress(step / 3)
        out = model(X, yb, generator=gen)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    model.eval()
    model.on_train_end(X, yb)
    path = checkpoint.save_model(model, tmp_path / "model.safetensors")
    loaded = checkpoint.load_model(path)
    assert type(loaded) is type(model)
    assert loaded.config == model.config
    loaded.eval()
    state, loaded_state = model.state_dict(), loaded.state_dict()
    assert state.keys() == loaded_state.keys()
    for k in state:
        assert torch.equal(state[k], loaded_state[k]), k
    with torch.no_grad():
        z = model.encode(X, yb)
        assert torch.equal(loaded.encode(X, yb), z)
        assert torch.equal(loaded.decode(z, yb), model.decode(z, yb))
        a = model(X, yb, generator=torch.Generator().manual_seed(3))
        b = loaded(X, yb, generator=torch.Generator().manual_seed(3))
        assert torch.equal(a.loss, b.loss)
        if model.generative:
            ys = torch.arange(4) if model.conditional else None
            s1 = model.sample(4, ys, generator=torch.Generator().manual_seed(5))
            s2 = loaded.sample(4, ys, generator=torch.Generator().manual_seed(5))
            assert torch.equal(s1, s2)


def _strip_time(history):
    return [{k: v for k, v in rec.items() if k != "time_s"} for rec in history]


@pytest.mark.parametrize("name", NAMES)
def test_training_is_deterministic_given_the_seed(name, model_factory, digits_train):
    X, y = digits_train
    X, y = X[:256], y[:256]
    runs = []
    for seed in (0, 0, 1):
        model = model_factory(name)
        hist = train.train(
            model, X, y if model.conditional else None, epochs=2, batch_size=64, lr=3e-3,
            seed=seed, device="cpu", progress=False, validation_fraction=0.25,
        )
        runs.append((_strip_time(hist), model.state_dict()))
    (h0, s0), (h1, s1), (_, s2) = runs
    assert h0 == h1
    assert len(h0) == 2 and {"loss", "recon", "val_loss"} <= h0[0].keys()
    for k in s0:
        assert torch.equal(s0[k], s1[k]), k
    assert any(not torch.equal(s0[k], s2[k]) for k in s0 if s0[k].is_floating_point())


@pytest.mark.parametrize("name", GENERATIVE)
@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_sample_shape_and_reproducibility(name, arch, model_factory, batch):
    X, y = batch
    model = model_factory(name, arch)
    model.eval()
    model.on_train_end(X, labels_for(model, y))  # fits the VQ-VAE prior; a no-op for the others
    ys = torch.tensor([0, 3, 3, 7, 9]) if model.conditional else None
    s1 = model.sample(5, ys, generator=torch.Generator().manual_seed(0))
    s2 = model.sample(5, ys, generator=torch.Generator().manual_seed(0))
    s3 = model.sample(5, ys, generator=torch.Generator().manual_seed(1))
    assert s1.shape == (5, 1, 8, 8)
    assert torch.isfinite(s1).all()
    assert torch.equal(s1, s2)
    assert not torch.equal(s1, s3)


@pytest.mark.parametrize("name", NAMES)
def test_declared_capabilities_match_the_methods(name, model_factory, batch):
    """A capability flag promises methods; each flag is checked against what the model can do."""
    X, y = batch
    model = model_factory(name).eval()
    yb = labels_for(model, y)
    caps = model.capabilities()
    assert set(caps) == {"variational", "generative", "conditional", "quantised", "hierarchical", "adversarial",
                         "handles_missing"}
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        score = model.score_samples(X, yb, generator=gen)
        assert score.shape == (X.shape[0],) and torch.isfinite(score).all()
        if caps["variational"]:
            elbo = model.elbo(X, yb, generator=torch.Generator().manual_seed(0))
            assert torch.equal(model.score_samples(X, yb, generator=torch.Generator().manual_seed(0)), elbo)
            lw = torch.stack([model.log_weight(X, yb, generator=gen) for _ in range(200)])  # (200, B)
            # E_q[log w] is the ELBO: the mean of many log-weights matches a many-sample ELBO average
            elbo_avg = torch.stack([model.elbo(X, yb, generator=gen) for _ in range(200)]).mean(0)
            assert torch.allclose(lw.mean(0), elbo_avg, rtol=0.05, atol=1.0)
            # log of the mean weight >= mean log weight (Jensen), so the IWAE bound is tighter
            assert (torch.logsumexp(lw, 0) - math.log(200) >= lw.mean(0) - 1e-4).all()
        else:
            assert torch.allclose(score, -model(X, yb, generator=gen).parts["recon"])
        if caps["quantised"]:
            idx = model.encode_indices(X)
            assert torch.allclose(model.decode_indices(idx), model.reconstruct(X))
        if caps["handles_missing"]:  # NaN = missing: scores, codes and reconstructions stay finite
            Xm = X.clone()
            Xm[:, :, :3, :3] = torch.nan
            assert torch.isfinite(model.score_samples(Xm, yb, generator=gen)).all()
            assert torch.isfinite(model.encode(Xm, yb)).all() and torch.isfinite(model.reconstruct(Xm, yb)).all()


@pytest.mark.parametrize("name", [n for n in VARIATIONAL if not MODELS[n].hierarchical])
def test_decoder_distribution_is_the_likelihood(name, model_factory, batch):
    X, y = batch
    model = model_factory(name).eval()
    yb = labels_for(model, y)
    z = torch.randn(X.shape[0], model.config.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        p = model.decoder_distribution(z, yb)
        assert p.batch_shape == (X.shape[0],)
        assert torch.allclose(p.log_prob(X), model.log_likelihood(X, z, yb), atol=1e-4)
        assert torch.allclose(p.mean, model.decode(z, yb), atol=1e-6)


def test_only_generative_models_sample(model_factory):
    for name in NAMES:
        model = model_factory(name)
        assert hasattr(model, "sample") == model.generative, name


@pytest.mark.parametrize("name", CONDITIONAL)
def test_conditional_models_need_labels(name, model_factory, batch):
    X, y = batch
    model = model_factory(name)
    with pytest.raises(ValueError, match="labels"):
        model(X)
    with pytest.raises(ValueError, match="labels"):
        model.encode(X)
    with pytest.raises(ValueError, match="y"):
        model.sample(3)
    with pytest.raises(ValueError, match="labels"):
        model(X, torch.full_like(y, 10))  # out of range for 10 classes
    with pytest.raises(ValueError):
        model.sample(3, torch.tensor([1, 2]))  # two labels for three samples
    with pytest.raises(ValueError, match="conditional"):
        train.train(model, X, None, epochs=1, device="cpu", progress=False)
    # labels matter: the same input under another label gives another reconstruction
    model.eval()
    with torch.no_grad():
        assert not torch.allclose(model.reconstruct(X, y), model.reconstruct(X, (y + 1) % 10))


@pytest.mark.parametrize("name", ["ae", "vae", "vqvae"])
def test_user_supplied_encoder_and_decoder(name, tmp_path):
    """A user's own modules replace the builders; the family's loss and training stay the same."""
    import torch
    from torch import nn

    from aekit._registry import get_model_class
    from aekit.checkpoint import load_model, save_model
    from aekit.train import train

    latent = 4
    out_dim = 2 * latent if name == "vae" else latent

    def modules():
        enc = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, out_dim))
        dec = nn.Sequential(nn.Linear(latent, 32), nn.Tanh(), nn.Linear(32, 64), nn.Unflatten(1, (1, 8, 8)))
        return enc, dec

    cls = get_model_class(name)
    cfg = cls.Config(input_shape=(1, 8, 8), latent_dim=latent, **({"embedding_dim": 2} if name == "vqvae" else {}))
    enc, dec = modules()
    model = cls(cfg, encoder=enc, decoder=dec)
    assert model.encoder is enc and model.decoder is dec
    import aekit

    X = aekit.load_dataset("digits").X[:256]
    hist = train(model, X, epochs=8, batch_size=32, lr=3e-3, progress=False, device="cpu")
    assert hist[-1]["loss"] < 0.8 * hist[0]["loss"]
    path = save_model(model, tmp_path / "m.safetensors")
    enc2, dec2 = modules()
    again = load_model(path, encoder=enc2, decoder=dec2)
    x = torch.as_tensor(X[:5])
    assert torch.equal(again.encode(x), model.eval().encode(x))
