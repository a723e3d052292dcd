"""TensorBoard logging (``fit(..., log_dir=...)``, ``aekit fit --tensorboard``, and the callback
itself): the event files, read back with TensorBoard's own reader, hold what training did."""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import aekit
from aekit import cli, losses
from aekit._utils import seeded
from aekit.tensorboard import TensorBoardLogger
from aekit.train import train

SMALL = dict(hidden_dims=(16,), batch_size=32, random_state=0, device="cpu")


def _events(folder) -> EventAccumulator:
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})  # 0: keep every event
    acc.Reload()
    return acc


def _scalars(acc, tag) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def _png(event) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(event.encoded_image_string)).convert("L"), dtype=np.float64) / 255


@pytest.fixture(scope="module")
def digits():
    d = aekit.load_dataset("digits")
    return d.X[:300], d.y[:300]


def test_vae_fit_logs_every_part_train_and_validation(digits, tmp_path):
    X, _ = digits
    vae = aekit.VAE(latent_dim=3, epochs=3, validation_fraction=0.2, **SMALL).fit(X, log_dir=tmp_path)
    train_run, val_run = _events(tmp_path / "train"), _events(tmp_path / "validation")
    kl_tags = {"kl_per_dim/z00", "kl_per_dim/z01", "kl_per_dim/z02"}
    assert set(train_run.Tags()["scalars"]) == {"loss/total", "loss/recon", "loss/kl", "optim/lr", "time/epoch_s",
                                                "latent/active_units", *kl_tags}
    assert set(val_run.Tags()["scalars"]) == {"loss/total", "loss/recon", "loss/kl"}
    history = vae.history_
    for tag, key in (("loss/total", "loss"), ("loss/recon", "recon"), ("loss/kl", "kl"), ("optim/lr", "lr"),
                     ("time/epoch_s", "time_s")):
        got = _scalars(train_run, tag)
        assert [s for s, _ in got] == [1, 2, 3]
        np.testing.assert_allclose([v for _, v in got], [h[key] for h in history], rtol=1e-6)
    for tag, key in (("loss/total", "val_loss"), ("loss/recon", "val_recon"), ("loss/kl", "val_kl")):
        np.testing.assert_allclose([v for _, v in _scalars(val_run, tag)], [h[key] for h in history], rtol=1e-6)
    kl = [_scalars(train_run, t)[-1][1] for t in sorted(kl_tags)]
    assert all(v >= 0 for v in kl) and sum(kl) > 0
    # images of the last epoch: 16 originals and their reconstructions, 8 to a row; 16 samples
    images = train_run.Tags()["images"]
    assert set(images) == {"reconstructions", "samples"}
    recon, samples = train_run.Images("reconstructions"), train_run.Images("samples")
    assert [e.step for e in recon] == [1, 2, 3] and [e.step for e in samples] == [1, 2, 3]
    tile = 32 + 2  # 8x8 digits enlarged 4 times, 2 pixels apart
    assert (recon[-1].height, recon[-1].width) == (2 + 4 * tile, 2 + 8 * tile)
    assert (samples[-1].height, samples[-1].width) == (2 + 2 * tile, 2 + 8 * tile)


def test_callback_logs_the_posterior_kl_and_the_images_it_shows(tmp_path):
    X = torch.as_tensor(aekit.load_dataset("digits").X[:200])
    with seeded(0):
        model = aekit.build_model("vae", input_shape=(1, 8, 8), latent_dim=2, hidden_dims=(16,))
    fixed = X[:40]
    with TensorBoardLogger(tmp_path, model, fixed, n_images=8) as tb:
        train(model, X, epochs=2, batch_size=32, progress=False, callbacks=[tb])
    acc = _events(tmp_path / "train")
    assert not (tmp_path / "validation").exists()  # no validation set, no validation run
    with torch.no_grad():
        mu, logvar = model.eval().posterior(fixed)
        expected = losses.kl_normal(mu, logvar, per_dim=True).mean(dim=0)  # (2,)
    got = [_scalars(acc, f"kl_per_dim/z0{k}")[-1][1] for k in range(2)]
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5)
    assert _scalars(acc, "latent/active_units")[-1][1] == int((mu.var(dim=0) > 0.01).sum())
    # the first row of the grid shows the originals (data in [0, 1], shown as they are), the
    # second their reconstructions
    grid = _png(acc.Images("reconstructions")[-1])
    first = grid[2:34, 2:34]
    np.testing.assert_allclose(first, X[0, 0].numpy().repeat(4, 0).repeat(4, 1), atol=1 / 255)
    with torch.no_grad():
        recon = model.reconstruct(X[:1])[0, 0].numpy()
    np.testing.assert_allclose(grid[36:68, 2:34], recon.repeat(4, 0).repeat(4, 1), atol=1 / 255)


def test_tables_and_codebook_statistics(tmp_path):
    X = aekit.load_dataset("digits").X[:200].reshape(200, -1) * 16.0  # a table, standardized inside
    vq = aekit.VQVAE(latent_dim=4, embedding_dim=2, codebook_size=8, epochs=2, validation_fraction=0, **SMALL)
    vq.fit(X, log_dir=tmp_path)
    acc = _events(tmp_path / "train")
    assert set(acc.Tags()["scalars"]) == {"loss/total", "loss/recon", "loss/commitment", "stats/perplexity",
                                          "stats/codebook_usage", "optim/lr", "time/epoch_s"}
    assert acc.Tags()["images"] == []  # a table is not a picture
    np.testing.assert_allclose([v for _, v in _scalars(acc, "stats/perplexity")],
                               [h["perplexity"] for h in vq.history_], rtol=1e-6)
    assert not (tmp_path / "validation").exists()


def test_conditional_samples_and_standardized_images(digits, tmp_path):
    X, y = digits
    X = X * 255.0  # not in [0, 1]: standardized for training, shown in the data's own range
    cvae = aekit.ConditionalVAE(latent_dim=2, epochs=1, **SMALL).fit(X, y, log_dir=tmp_path)
    acc = _events(tmp_path / "train")
    assert {"reconstructions", "samples"} == set(acc.Tags()["images"])
    assert cvae.mean_ is not None
    grid = _png(acc.Images("reconstructions")[-1])
    assert grid[2:34, 2:34].max() > 0.9 and grid[2:34, 2:34].min() < 0.1  # originals span black to white


def test_logging_does_not_change_training(digits, tmp_path):
    X, _ = digits
    a = aekit.HierarchicalVAE(latent_dim=2, lower_latent_dims=(3,), epochs=2, **SMALL).fit(X)
    b = aekit.HierarchicalVAE(latent_dim=2, lower_latent_dims=(3,), epochs=2, **SMALL).fit(X, log_dir=tmp_path)
    strip = [{k: v for k, v in h.items() if k != "time_s"} for h in a.history_]
    assert strip == [{k: v for k, v in h.items() if k != "time_s"} for h in b.history_]
    for (name, p), (_, q) in zip(a.model_.state_dict().items(), b.model_.state_dict().items()):
        assert torch.equal(p, q), name
    assert {"loss/kl_1", "loss/kl_2"} <= set(_events(tmp_path / "train").Tags()["scalars"])


def test_missing_extra_names_it(digits, tmp_path, monkeypatch):
    X, _ = digits
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    with pytest.raises(ImportError, match=r"pip install aekit\[tensorboard\]"):
        aekit.AutoEncoder(epochs=1, **SMALL).fit(X, log_dir=tmp_path)
    assert not any(tmp_path.iterdir())


def test_bad_batch_is_refused(tmp_path):
    model = aekit.build_model("cvae", input_shape=(4,), latent_dim=2, hidden_dims=(8,), n_classes=3)
    with pytest.raises(ValueError, match=r"shaped \(n, 4\)"):
        TensorBoardLogger(tmp_path, model, torch.zeros(5, 3))
    with pytest.raises(ValueError, match="conditional: pass the labels"):
        TensorBoardLogger(tmp_path, model, torch.zeros(5, 4))
    with pytest.raises(ValueError, match="n_images"):
        TensorBoardLogger(tmp_path, model, torch.zeros(5, 4), torch.zeros(5, dtype=torch.long), n_images=0)


@pytest.mark.slow
def test_cli_fit_tensorboard_and_resume(tmp_path, capsys):
    run = tmp_path / "run"
    small = ["--hidden-dims", "16", "--latent-dim", "2", "--limit", "100", "--quiet"]
    assert cli.main(["fit", "--model", "ae", "--data", "digits", "--epochs", "2", "--out", str(run), "--tensorboard",
                     *small]) == 0
    assert json.loads((run / "config.json").read_text())["tensorboard"] is True
    assert cli.main(["fit", "--out", str(run), "--resume", "--epochs", "3", "--quiet"]) == 0  # remembered
    # Each fit writes its own event file, named by the second it started and a per-process counter: two
    # fits within one second (only in a test) can be read back in either order, so compare the steps as
    # a sorted list: every epoch once, the resumed one continuing the count, none repeated.
    acc = _events(run / "tensorboard" / "train")
    assert sorted(s for s, _ in _scalars(acc, "loss/total")) == [1, 2, 3]
    assert sorted(s for s, _ in _scalars(_events(run / "tensorboard" / "validation"), "loss/total")) == [1, 2, 3]
    capsys.readouterr()
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["fit", "--help"])
    assert "--tensorboard" in capsys.readouterr().out


def test_config_file_turns_it_on(tmp_path):
    from aekit.cli.params import fit_settings, param_table

    (tmp_path / "run.toml").write_text("model = 'vae'\ntensorboard = true\n")
    args = cli.build_parser().parse_args(["fit", "--config", str(tmp_path / "run.toml")])
    run, _ = fit_settings(args, param_table())
    assert run["tensorboard"] is True
    args = cli.build_parser().parse_args(["fit", "--config", str(tmp_path / "run.toml"), "--tensorboard"])
    assert fit_settings(args, param_table())[0]["tensorboard"] is True
    (tmp_path / "off.toml").write_text("model = 'vae'\n")
    args = cli.build_parser().parse_args(["fit", "--config", str(tmp_path / "off.toml")])
    assert "tensorboard" not in fit_settings(args, param_table())[0]
