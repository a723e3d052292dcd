"""The ``aekit`` command line, run for real on the embedded digits (in-process through
``aekit.cli.main`` for speed; the installed entry point once, in a subprocess)."""

from __future__ import annotations

import csv
import inspect
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import aekit
from aekit import cli
from aekit.estimators import estimator_classes
from helpers import expect_cli_error as _fail

SMALL = ["--hidden-dims", "32", "--limit", "300", "--quiet"]
CONFIG_KEYS = {"model", "estimator", "data", "train_split", "eval_split", "eval_data", "seed", "limit",
               "n_train", "n_eval", "image_shape", "params", "versions", "status"}


def _history(run):
    with open(run / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def _json(path):
    return json.loads(path.read_text())




@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "vae"
    assert cli.main(["fit", "--model", "vae", "--data", "digits", "--epochs", "3", "--latent-dim", "3", "--out", str(out), *SMALL]) == 0
    return out


def test_fit_writes_a_complete_run_folder(vae_run):
    for name in ("model.safetensors", "checkpoint.safetensors", "config.json", "history.csv", "metrics.json", "report.html"):
        assert (vae_run / name).is_file(), name
    config = _json(vae_run / "config.json")
    assert CONFIG_KEYS <= set(config)
    assert config["status"] == "finished" and config["model"] == "vae" and config["estimator"] == "VAE"
    assert config["seed"] == 0 and config["params"]["random_state"] == 0  # CLI runs repeat by default
    assert set(config["versions"]) == {"aekit", "torch", "numpy", "python"}
    assert config["params"]["latent_dim"] == 3 and config["params"]["hidden_dims"] == [32]

    history = _history(vae_run)
    assert [int(r["epoch"]) for r in history] == [1, 2, 3]
    assert {"loss", "recon", "kl", "val_loss", "val_kl"} <= set(history[0])

    metrics = _json(vae_run / "metrics.json")
    assert metrics["eval_split"] == "test" and metrics["n_samples"] == 300  # --limit caps evaluation too
    assert {"recon_mse", "psnr", "elbo", "kl_per_dim", "active_units", "inactive_dims"} <= set(metrics)
    assert len(metrics["kl_per_dim"]) == 3 and metrics["epochs_trained"] == 3
    assert np.isfinite(metrics["recon_mse"]) and metrics["recon_mse"] < 0.2


def test_kebab_case_flags_reach_the_estimator(vae_run):
    est = aekit.load(vae_run)
    X = aekit.load_dataset("digits", "test").X[:5]
    assert type(est) is aekit.VAE
    assert est.transform(X).shape == (5, 3)  # --latent-dim 3
    assert est.model_.config.hidden_dims == (32,)  # --hidden-dims 32


def test_every_estimator_parameter_has_a_flag_with_help(capsys):
    assert cli.main(["fit", "--help"]) == 0
    text = capsys.readouterr().out
    for cls in estimator_classes().values():
        for name in inspect.signature(cls).parameters:
            if name not in ("verbose", "random_state"):
                assert f"--{name.replace('_', '-')} " in text, name
    assert "--seed N, --random-state N" in text
    assert "--early-stopping, --no-early-stopping" in text
    assert "size of the code" in text  # help comes from the families' Config declarations


def test_config_file_with_flags_overriding_it(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text('model = "ae"\nlatent-dim = 2\nhidden_dims = [16]\nactivation = "none"\nepochs = 4\nlimit = 200\n')
    out = tmp_path / "ae"
    assert cli.main(["fit", "--config", str(toml), "--epochs", "2", "--out", str(out), "--quiet"]) == 0
    config = _json(out / "config.json")
    assert config["model"] == "ae" and config["limit"] == 200
    assert config["params"]["epochs"] == 2  # the flag wins over the file
    assert config["params"]["activation"] is None  # "none" -> None
    assert len(_history(out)) == 2
    est = aekit.load(out)
    assert est.model_.config.hidden_dims == (16,) and est.transform(aekit.load_dataset("digits").X[:3]).shape == (3, 2)


def test_resume_extends_a_finished_run(vae_run, tmp_path):
    run = tmp_path / "vae"
    shutil.copytree(vae_run, run)
    before = _history(run)
    assert cli.main(["fit", "--resume", "--epochs", "5", "--out", str(run), "--quiet"]) == 0
    after = _history(run)
    assert [int(r["epoch"]) for r in after] == [1, 2, 3, 4, 5]
    assert after[:3] == before  # continued, not restarted
    assert _json(run / "metrics.json")["epochs_trained"] == 5
    config = _json(run / "config.json")
    assert config["params"]["epochs"] == 5 and config["resumed"] == 1
    # the training time of all 5 epochs, not of the resumed stretch alone
    assert config["train_time_s"] == pytest.approx(sum(float(r["time_s"]) for r in after), abs=0.02)
    assert config["train_time_s"] > sum(float(r["time_s"]) for r in after[3:]) + 0.001
    assert "(resumed 1 time)" in (run / "report.html").read_text()


def test_interrupted_run_resumes_where_it_stopped(tmp_path, monkeypatch, capsys):
    args = ["fit", "--model", "ae", "--epochs", "4", "--latent-dim", "2", *SMALL]
    full = tmp_path / "full"
    assert cli.main([*args, "--out", str(full)]) == 0

    from aekit import runfolder

    write = runfolder.RunWriter.__call__

    def interrupt_after_two(self, epoch, record):
        write(self, epoch, record)
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(runfolder.RunWriter, "__call__", interrupt_after_two)
    cut = tmp_path / "cut"
    assert cli.main([*args, "--out", str(cut)]) == 130
    assert "--resume" in capsys.readouterr().err
    # written as training went: two epochs of history, the checkpoint, no final model yet
    assert len(_history(cut)) == 2 and (cut / "checkpoint.safetensors").is_file()
    assert not (cut / "model.safetensors").exists() and _json(cut / "config.json")["status"] == "running"

    monkeypatch.setattr(runfolder.RunWriter, "__call__", write)
    assert cli.main(["fit", "--resume", "--out", str(cut), "--quiet"]) == 0
    resumed, uninterrupted = _history(cut), _history(full)
    assert [int(r["epoch"]) for r in resumed] == [1, 2, 3, 4]
    for key in ("loss", "val_loss"):  # the same run as without the interruption
        np.testing.assert_allclose([float(r[key]) for r in resumed], [float(r[key]) for r in uninterrupted], rtol=1e-5)


def test_refuses_to_overwrite_a_run(vae_run, capsys):
    err = _fail(capsys, ["fit", "--model", "vae", "--out", str(vae_run), *SMALL])
    assert "already holds a run" in err


def test_encode(vae_run, tmp_path, capsys):
    out = tmp_path / "codes.npy"
    assert cli.main(["encode", str(vae_run), "--data", "digits", "--split", "test", "-o", str(out)]) == 0
    Z = np.load(out)
    X = aekit.load_dataset("digits", "test").X
    np.testing.assert_allclose(Z, aekit.load(vae_run).transform(X), rtol=1e-5, atol=1e-6)
    assert cli.main(["encode", str(vae_run), "--data", "digits", "--limit", "10", "-o", str(tmp_path / "codes.csv")]) == 0
    assert np.loadtxt(tmp_path / "codes.csv", delimiter=",", skiprows=1).shape == (10, 3)


def test_generate_png_and_npy(vae_run, tmp_path):
    assert cli.main(["generate", str(vae_run), "-n", "16", "-o", str(tmp_path / "s.npy")]) == 0
    S = np.load(tmp_path / "s.npy")
    assert S.shape == (16, 1, 8, 8) and S.min() >= 0 and S.max() <= 1
    assert cli.main(["generate", str(vae_run), "-n", "16", "-o", str(tmp_path / "s.png")]) == 0
    with Image.open(tmp_path / "s.png") as im:
        assert im.format == "PNG" and im.width >= 4 * 8 * 4  # a 4 x 4 grid of upscaled 8 x 8 digits


def test_info_prints_settings_and_metrics(vae_run, capsys):
    assert cli.main(["info", str(vae_run)]) == 0
    out = capsys.readouterr().out
    assert "VAE (vae)" in out and "latent_dim = 3" in out and "hidden_dims = 32" in out
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.startswith("  ") and "=" not in line}
    metrics = json.loads((vae_run / "metrics.json").read_text())
    assert float(rows["recon_mse"]) == pytest.approx(metrics["recon_mse"], rel=1e-3)  # the one metric formatter
    assert float(rows["elbo"]) == pytest.approx(metrics["elbo"], abs=0.01)
    assert cli.main(["info", str(vae_run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["config"]["model"] == "vae"


def test_report_rebuilds_the_page(vae_run, tmp_path):
    run = tmp_path / "vae"
    shutil.copytree(vae_run, run)
    (run / "report.html").unlink()
    assert cli.main(["report", str(run)]) == 0
    assert 'data-figure="latent_space"' in (run / "report.html").read_text()


def test_list_models(capsys):
    assert cli.main(["list-models"]) == 0
    out = capsys.readouterr().out
    assert {line.split()[0] for line in out.splitlines()} == set(aekit.model_names())


def test_list_models_into_a_closed_pipe_and_whole_sentences(tmp_path):
    exe = shutil.which("aekit")
    cmd = f"'{exe}' list-models" if exe else f"'{sys.executable}' -m aekit.cli list-models"
    proc = subprocess.run(f"{cmd} | head -n 1", shell=True, capture_output=True, text=True, timeout=120, check=False)
    assert proc.stdout.split()[0] == sorted(aekit.model_names())[0] and proc.stdout.count("\n") == 1
    closed = subprocess.run(f"{cmd} | true", shell=True, capture_output=True, text=True, timeout=120, check=False)
    assert proc.stderr == "" and closed.stderr == ""  # no "Broken pipe" error when the reader is gone
    full = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=120, check=True).stdout
    for line in full.splitlines():
        assert line.rstrip().endswith((".", ")")), line  # each summary is a whole sentence
    assert "Denoising autoencoder: trained to map corrupted X back to clean X (Vincent et al. 2008)." in full


def test_demo_refuses_an_existing_run_like_fit(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out), "--epochs", "1", "--quiet"]) == 0
    before = (out / "model.safetensors").read_bytes()
    assert "already holds a run" in _fail(capsys, ["demo", "--out", str(out), "--epochs", "1", "--quiet"])
    assert (out / "model.safetensors").read_bytes() == before  # untouched
    assert cli.main(["demo", "--out", str(out), "--epochs", "1", "--quiet", "--overwrite"]) == 0


def test_demo_with_few_epochs(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out), "--epochs", "2"]) == 0
    printed = capsys.readouterr().out
    assert (out / "report.html").as_uri() in printed
    config = _json(out / "config.json")
    assert config["model"] == "vae" and config["params"]["latent_dim"] == 2 and config["params"]["epochs"] == 2
    assert len(_history(out)) == 2 and (out / "metrics.json").is_file()


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["fit", "--model", "nope", "--out", "X"], "invalid choice: 'nope'"),
        (["fit", "--model", "vae", "--hidden-dims", "256,abc", "--out", "X"], "--hidden-dims"),
        (["fit", "--model", "vae", "--hidden-dims", "0", "--out", "X"], "hidden_dims"),
        (["fit", "--model", "vae", "--latent-dim", "2.5", "--out", "X"], "expected an integer"),
        (["fit", "--model", "vae", "--data", "missing/file.npy", "--out", "X"], "missing/file.npy"),
        (["fit", "--model", "vae", "--data", "nosuchdataset", "--out", "X"], "unknown dataset"),
        (["fit", "--model", "ae", "--beta", "2", "--out", "X"], "--beta does not apply to model 'ae'"),
        (["fit", "--model", "vae"], "--out"),
        (["fit", "--resume", "--out", "X"], "X"),
        (["info", "X"], "not a run folder"),
        (["generate", "X", "-o", "s.gif"], ".png"),
    ],
)
def test_user_errors_are_one_line(argv, expected, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert expected in _fail(capsys, argv)
    assert not (tmp_path / "X" / "config.json").exists()  # nothing half-written


def test_bad_config_file(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "vae"\nlatent_dims = 2\n')
    assert "unknown setting 'latent_dims'" in _fail(capsys, ["fit", "--config", str(bad), "--out", str(tmp_path / "r")])
    bad.write_text("model = \n")
    assert "not valid TOML" in _fail(capsys, ["fit", "--config", str(bad), "--out", str(tmp_path / "r")])


def test_entry_point_errors_without_traceback(tmp_path):
    exe = shutil.which("aekit")
    cmd = [exe] if exe else [sys.executable, "-m", "aekit.cli"]
    proc = subprocess.run([*cmd, "fit", "--model", "vae", "--hidden-dims", "256,abc", "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("aekit: error: argument --hidden-dims: invalid value '256,abc'")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
