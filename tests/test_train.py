"""The training loop on real digits: every family learns, the VAEs improve their ELBO without
collapsing, and the loop's machinery (validation, early stopping, checkpoints and resume,
non-finite losses, rollback, progress output) behaves as documented."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from aekit import train
from aekit._registry import MODELS, model_names
from aekit.train import NonFiniteLossError, TrainingInterrupted, evaluate_loss

VARIATIONAL = tuple(n for n in model_names() if MODELS[n].variational)

# 15 epochs, latent 8, hidden (64,), batch 64, lr 3e-3, X_val = digits test split. Measured:
# final validation loss / the untrained model's, deterministic families 0.065 (ae, which starts
# at PCA: its first epoch is already at 1.5, so last/first is only 0.6) .. 0.13 (vqvae); final validation
# -ELBO vae 25.6, cvae 22.2, hvae 26.5 nats against ~44.7 untrained (entropy floor 13.7);
# posterior-mean variance > 0.01 on 8/8 latent dims for all three; hvae val KL per level 1.9, 1.8.
DETERMINISTIC_LOSS_RATIO = 1 / 4
ELBO_GAIN_NATS = 10.0
MIN_ACTIVE_DIMS = 4
ACTIVE_VARIANCE = 0.01


def strip_time(history):
    return [{k: v for k, v in rec.items() if k != "time_s"} for rec in history]


def fit(model, X, y=None, **kw):
    kw = {"epochs": 3, "batch_size": 64, "lr": 3e-3, "device": "cpu", "progress": False, **kw}
    return train.train(model, X, y if model.conditional else None, **kw)


@pytest.mark.slow
@pytest.mark.parametrize("name", model_names())
def test_every_family_learns_digits(name, model_factory, digits_train, digits_test):
    X, y = digits_train
    Xt, yt = digits_test
    yt = yt if name == "cvae" else None
    kw = {"latent_dim": 8, "hidden_dims": (64,)}
    if name == "hvae":
        kw["lower_latent_dims"] = (8,)
    model = model_factory(name, **kw)
    untrained = evaluate_loss(model, Xt, yt)
    hist = fit(model, X, y, X_val=Xt, y_val=yt, epochs=15)
    assert len(hist) == 15 and [r["epoch"] for r in hist] == list(range(1, 16))

    # history: every part, training and validation, plus stats, lr and time
    with torch.no_grad():
        out = model(Xt[:4], None if yt is None else yt[:4])
    expected = {"loss", *out.parts, *out.stats}
    assert expected | {f"val_{k}" for k in expected} | {"epoch", "lr", "time_s"} == set(hist[-1])
    assert all(math.isfinite(v) for v in hist[-1].values())
    assert not model.training  # handed back in eval mode

    if name not in VARIATIONAL:
        key = "recon" if model.adversarial else "loss"  # a game value need not fall (docs/architecture.md)
        assert hist[-1][f"val_{key}"] < DETERMINISTIC_LOSS_RATIO * untrained[key], (untrained[key], hist[-1][f"val_{key}"])
        assert hist[-1][key] < hist[0][key]
        assert hist[-1][f"val_{key}"] < hist[0][f"val_{key}"]
        return
    # the ELBO improves on held-out digits ...
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert hist[-1]["val_loss"] < hist[0]["val_loss"]
    assert hist[-1]["val_loss"] < untrained["loss"] - ELBO_GAIN_NATS, (untrained["loss"], hist[-1]["val_loss"])
    # ... without posterior collapse: several latent dims carry information about the input
    with torch.no_grad():
        var = model.encode(Xt, yt).var(dim=0)  # (K,)
    assert int((var > ACTIVE_VARIANCE).sum()) >= MIN_ACTIVE_DIMS, var
    if name == "hvae":  # and every stochastic layer is used
        assert hist[-1]["val_kl_1"] > 0.5 and hist[-1]["val_kl_2"] > 0.5


def test_validation_fraction_holds_out_a_fixed_part(model_factory, digits_train):
    X = digits_train[0][:400]
    tr, va = train._split_validation(400, 0.25, seed=3)
    assert len(va) == 100 and len(tr) == 300
    assert set(tr.tolist()).isdisjoint(va.tolist()) and set(tr.tolist()) | set(va.tolist()) == set(range(400))
    assert torch.equal(va, train._split_validation(400, 0.25, seed=3)[1])
    assert not torch.equal(va, train._split_validation(400, 0.25, seed=4)[1])

    model = model_factory("ae")
    hist = fit(model, X, validation_fraction=0.25, seed=3)
    assert hist[-1]["val_loss"] == pytest.approx(evaluate_loss(model, X[va])["loss"], rel=1e-5)
    assert hist[-1]["val_loss"] != pytest.approx(evaluate_loss(model, X[tr])["loss"], rel=1e-3)
    # an explicit validation set is used as given
    model = model_factory("ae")
    hist = fit(model, X[:300], X_val=X[300:])
    assert hist[-1]["val_loss"] == pytest.approx(evaluate_loss(model, X[300:])["loss"], rel=1e-5)
    assert "val_loss" not in fit(model_factory("ae"), X)[-1]
    for bad in (1.5, -0.1):
        with pytest.raises(ValueError, match="validation_fraction"):
            fit(model_factory("ae"), X, validation_fraction=bad)


def test_early_stopping_stops_and_restores_the_best_weights(model_factory, digits_train):
    X = digits_train[0][:300]
    model = model_factory("ae")
    best = {}

    def spoil_after_epoch_2(epoch, record):
        if epoch == 1:  # epoch 2 is the best; then ruin the decoder so validation gets worse
            best.update(copy.deepcopy(model.state_dict()))
            with torch.no_grad():
                model.decoder.out.bias.add_(5.0)

    hist = fit(
        model, X, X_val=digits_train[0][300:400], epochs=20, lr=1e-6, early_stopping=True, patience=3,
        callbacks=(spoil_after_epoch_2,),
    )
    assert len(hist) == 2 + 3  # stopped after `patience` epochs without improvement
    assert all(r["val_loss"] > hist[1]["val_loss"] for r in hist[2:])
    state = model.state_dict()
    assert all(torch.equal(state[k], best[k]) for k in best)
    # early stopping without a validation set holds out 10% of X
    hist = fit(model_factory("ae"), X, epochs=2, early_stopping=True)
    assert "val_loss" in hist[-1]


def test_data_init_sees_the_training_rows_and_early_stopping_can_keep_the_start(model_factory, digits_train):
    """on_train_start gets the training rows (not the validation ones), once; early stopping
    counts the starting weights as a candidate, so training that only spoils a good start (an
    AE's PCA start, here with an absurd learning rate) hands the start back."""
    X, X_val = digits_train[0][:300], digits_train[0][300:400]
    model = model_factory("ae", linear_part="pca")
    hist = fit(model, X, X_val=X_val, epochs=8, lr=1.0, early_stopping=True, patience=2)
    torch.testing.assert_close(model.pca_mean, X.reshape(300, -1).mean(0))
    assert len(hist) == 2 and all(r["val_loss"] > 0 for r in hist)
    start = model_factory("ae", linear_part="pca")
    start.on_train_start(X)
    assert evaluate_loss(model, X_val)["loss"] == pytest.approx(evaluate_loss(start, X_val)["loss"])
    assert evaluate_loss(start, X_val)["loss"] < min(r["val_loss"] for r in hist)
    # the hook runs once: training on other data continues from these weights
    before = copy.deepcopy(model.state_dict())
    fit(model, X_val, epochs=1, lr=1e-12)
    torch.testing.assert_close(model.pca_mean, before["pca_mean"])


def test_without_early_stopping_every_epoch_runs(model_factory, digits_train):
    X = digits_train[0][:200]
    hist = fit(model_factory("ae"), X, X_val=X[:50], epochs=4, lr=10.0 ** -7)
    assert len(hist) == 4


@pytest.mark.parametrize("name", model_names())
def test_resume_continues_exactly(name, model_factory, digits_train, tmp_path):
    X, y = digits_train
    X, y = X[:192], y[:192]
    overrides = {"kl_warmup_epochs": 4} if name in VARIATIONAL else {}
    settings = {"epochs": 6, "validation_fraction": 0.25, "early_stopping": True, "patience": 10}
    straight_model = model_factory(name, **overrides)
    straight = fit(straight_model, X, y, checkpoint_dir=tmp_path / "straight", **settings)

    run = tmp_path / "run"
    first = model_factory(name, **overrides)
    fit(first, X, y, checkpoint_dir=run, **{**settings, "epochs": 3})
    assert (run / train.CHECKPOINT_NAME).is_file()
    resumed_model = model_factory(name, **overrides)  # a new process would rebuild it the same way
    resumed = fit(resumed_model, X, y, checkpoint_dir=run, resume=True, **settings)

    assert strip_time(resumed) == strip_time(straight)
    a, b = straight_model.state_dict(), resumed_model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resume_keeps_the_best_weights_found_before_the_interruption(model_factory, digits_train, tmp_path):
    X = digits_train[0][:300]
    X_val = digits_train[0][300:400]

    def run(epochs, resume):
        model = model_factory("ae")

        def spoil_after_epoch_2(epoch, record):  # epoch 2 stays the best of the run
            if epoch == 1:
                with torch.no_grad():
                    model.decoder.out.bias.add_(5.0)

        hist = fit(
            model, X, X_val=X_val, epochs=epochs, lr=1e-6, early_stopping=True, patience=10,
            checkpoint_dir=tmp_path / ("run" if resume is not None else "straight"), resume=bool(resume),
            callbacks=(spoil_after_epoch_2,),
        )
        return model, hist

    straight, hist = run(6, None)
    assert min(range(6), key=lambda i: hist[i]["val_loss"]) == 1
    run(3, False)
    resumed, resumed_hist = run(6, True)
    assert strip_time(resumed_hist) == strip_time(hist)
    for k, v in straight.state_dict().items():
        assert torch.equal(resumed.state_dict()[k], v), k


def test_resume_checks(model_factory, digits_train, tmp_path):
    X = digits_train[0][:128]
    with pytest.raises(ValueError, match="checkpoint_dir"):
        fit(model_factory("ae"), X, resume=True)
    # no checkpoint yet: resume starts from scratch, same as a fresh run
    fresh = fit(model_factory("ae"), X, epochs=2)
    resumed = fit(model_factory("ae"), X, epochs=2, checkpoint_dir=tmp_path, resume=True)
    assert strip_time(fresh) == strip_time(resumed)
    with pytest.raises(ValueError, match="different model"):
        fit(model_factory("ae", latent_dim=3), X, epochs=3, checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(ValueError, match="different model"):
        fit(model_factory("denoising"), X, epochs=3, checkpoint_dir=tmp_path, resume=True)


def test_nan_in_the_data_raises_naming_the_part(model_factory, digits_train):
    X = digits_train[0][:128].clone()
    X[5, 0, 3, 3] = float("nan")
    with pytest.raises(NonFiniteLossError, match="'recon'") as err:
        fit(model_factory("ae"), X)
    assert "epoch 1" in str(err.value)
    with pytest.raises(NonFiniteLossError, match="'kl'"):
        fit(model_factory("vae"), X)


@pytest.mark.parametrize("name", ["ae", "vae", "vqvae"])
def test_exploding_lr_raises(name, model_factory, digits_train):
    X = digits_train[0][:256]
    with pytest.raises(NonFiniteLossError, match="'recon'"):
        fit(model_factory(name), X, lr=1e10)


def test_rollback_recovers_from_a_transient_blow_up(model_factory, digits_train):
    X = digits_train[0][:256]
    calls = {"n": 0}

    def nan_once(xb, generator):
        calls["n"] += 1
        return xb * float("nan") if calls["n"] == 3 else xb  # the third batch of epoch 1 blows up once

    with pytest.raises(NonFiniteLossError):
        fit(model_factory("ae"), X, batch_transform=nan_once)

    calls["n"] = 0
    model = model_factory("ae")
    hist = fit(model, X, lr=2e-3, batch_transform=nan_once, on_nonfinite="rollback")
    assert [r["lr"] for r in hist] == [1e-3, 1e-3, 1e-3]  # halved once, then kept
    # the retried epoch restarts from the epoch's snapshot (weights, optimizer, RNGs): the result is
    # exactly a clean run at the halved learning rate
    clean = model_factory("ae")
    clean_hist = fit(clean, X, lr=1e-3)
    assert strip_time(hist) == strip_time(clean_hist)
    for k, v in clean.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_rollback_gives_up_on_a_persistent_blow_up(model_factory, digits_train):
    X = digits_train[0][:128].clone()
    X[0, 0, 0, 0] = float("nan")
    with pytest.raises(NonFiniteLossError, match="'recon'"):
        fit(model_factory("ae"), X, on_nonfinite="rollback")
    with pytest.raises(ValueError, match="on_nonfinite"):
        fit(model_factory("ae"), X, on_nonfinite="ignore")


def test_progress_false_prints_nothing(model_factory, digits_train, capsys):
    X = digits_train[0][:128]
    fit(model_factory("ae"), X, epochs=2, progress=False)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    fit(model_factory("ae"), X, epochs=2, progress=True)  # the check above can fail: this does print
    captured = capsys.readouterr()
    assert "epoch 2/2" in captured.out + captured.err


def test_cosine_schedule_sets_the_rate_every_step_and_resumes_on_the_same_curve(model_factory, digits_train, tmp_path, monkeypatch):
    X = digits_train[0][:256]  # 4 batches of 64 per epoch
    seen = []

    class Spy(torch.optim.AdamW):  # records the rate each step used
        def step(self, *a, **k):
            seen.append(self.param_groups[0]["lr"])
            return super().step(*a, **k)

    model = model_factory("ae")
    with monkeypatch.context() as m:
        m.setattr(train, "_adamw", lambda mod, lr, wd: Spy(mod.parameters(), lr=lr, weight_decay=wd, fused=True))  # as _adamw builds it
        hist = fit(model, X, epochs=3, lr=1e-2, lr_schedule="cosine", checkpoint_dir=tmp_path / "straight")
    expected = [1e-2 * 0.5 * (1 + math.cos(math.pi * (e + s / 4) / 3)) for e in range(3) for s in range(4)]
    assert seen == pytest.approx(expected)
    assert hist[0]["lr"] == pytest.approx(expected[3]) and hist[-1]["lr"] == pytest.approx(expected[-1])

    # interrupted after epoch 1 and resumed: the same rates, the same weights
    def stop_after_first(epoch, record):
        if epoch == 0:
            raise KeyboardInterrupt

    first = model_factory("ae")
    with pytest.raises(TrainingInterrupted):
        fit(first, X, epochs=3, lr=1e-2, lr_schedule="cosine", checkpoint_dir=tmp_path / "run", callbacks=(stop_after_first,))
    resumed_model = model_factory("ae")
    resumed = fit(resumed_model, X, epochs=3, lr=1e-2, lr_schedule="cosine", checkpoint_dir=tmp_path / "run", resume=True)
    assert strip_time(resumed) == strip_time(hist)
    for k, v in model.state_dict().items():
        assert torch.equal(resumed_model.state_dict()[k], v), k
    with pytest.raises(ValueError, match="lr_schedule"):
        fit(model_factory("ae"), X, lr_schedule="step")


def test_cosine_schedule_keeps_each_parameter_groups_own_rate(model_factory, digits_train, monkeypatch):
    """A discriminator's group with its own lr follows the same curve from its own rate."""
    X = digits_train[0][:128]  # 2 batches of 64 per epoch
    seen = []

    class Spy(torch.optim.AdamW):
        def step(self, *a, **k):
            seen.append([g["lr"] for g in self.param_groups])
            return super().step(*a, **k)

    build = train._adamw
    monkeypatch.setattr(train, "_adamw", lambda mod, lr, wd: Spy(build(mod, lr, wd).param_groups))
    fit(model_factory("aae", discriminator_lr=1e-4), X, epochs=2, lr=1e-2, lr_schedule="cosine")
    curve = [0.5 * (1 + math.cos(math.pi * (e + s / 2) / 2)) for e in range(2) for s in range(2)]
    assert [r[0] for r in seen] == pytest.approx([1e-2 * f for f in curve])
    assert [r[1] for r in seen] == pytest.approx([1e-4 * f for f in curve])
def test_progress_off_a_terminal_is_plain_lines(model_factory, digits_train, capsys):
    """Piped or logged output: whole lines, about 20 for a long run, the last epoch always there."""
    fit(model_factory("ae"), digits_train[0][:64], epochs=45, progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert [ln.split()[1] for ln in lines] == [f"{e}/45" for e in (*range(3, 45, 3), 45)]
    assert all(ln.startswith("epoch ") and "loss=" in ln and "s/epoch" in ln for ln in lines)


def test_progress_bar_fits_an_80_column_terminal(model_factory, digits_train):
    import io
    import re

    from rich.console import Console

    from aekit.train import _Progress

    buf = io.StringIO()
    bar = _Progress(100, 0, True, console=Console(file=buf, force_terminal=True, width=80))
    for epoch in range(10):
        bar.update({"epoch": epoch + 1, "loss": 123.456, "recon": 100.0, "kl": 23.4, "val_loss": 130.0, "time_s": 0.1})
    bar.close()
    frames = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buf.getvalue()).replace("\r", "\n").splitlines()
    last = [f for f in frames if f.strip()][-1]
    assert "epoch 10/100" in last and "━" in last and "loss=123.5" in last and len(last) <= 80


def test_argument_checks(model_factory, digits_train):
    X = digits_train[0][:64]
    for bad in ({"epochs": 0}, {"batch_size": 0}, {"lr": 0.0}, {"patience": 0}, {"epochs": 2.5}):
        with pytest.raises(ValueError):
            fit(model_factory("ae"), X, **bad)


# --- threads on a shared machine (aekit._threads) -----------------------------------------------


def test_training_uses_the_chosen_threads_and_restores_torch_setting(model_factory, digits_train, monkeypatch):
    seen = []
    before = torch.get_num_threads()
    fit(model_factory("ae"), digits_train[0][:64], epochs=2, threads=2, callbacks=(lambda e, r: seen.append(torch.get_num_threads()),))
    assert seen == [2, 2] and torch.get_num_threads() == before
    monkeypatch.setenv("AEKIT_THREADS", "2")
    seen.clear()
    fit(model_factory("ae"), digits_train[0][:64], epochs=1, callbacks=(lambda e, r: seen.append(torch.get_num_threads()),))
    assert seen == [2]  # the environment's choice wins over aekit's
    monkeypatch.setenv("AEKIT_THREADS", "zero")
    with pytest.raises(ValueError, match="AEKIT_THREADS"):
        fit(model_factory("ae"), digits_train[0][:64], epochs=1)


def test_default_threads_small_models_get_one_and_busy_cores_are_left_alone(monkeypatch):
    from aekit import _threads

    monkeypatch.delenv("AEKIT_THREADS", raising=False)
    monkeypatch.setattr(_threads, "_cores", lambda: 4)
    assert _threads.default_threads(10_000) == 1  # small: one thread, whatever the machine
    monkeypatch.setattr(_threads.os, "getloadavg", lambda: (0.1, 0.0, 0.0))
    assert _threads.default_threads(5_000_000) == 4  # idle machine: every core
    monkeypatch.setattr(_threads.os, "getloadavg", lambda: (2.6, 0.0, 0.0))
    assert _threads.default_threads(5_000_000) == 1  # ~3 cores busy elsewhere
    monkeypatch.setattr(_threads.os, "getloadavg", lambda: (9.0, 0.0, 0.0))
    assert _threads.default_threads(5_000_000) == 1  # never below one


def test_estimator_threads_parameter_reaches_training(digits_train):
    import aekit

    seen = []
    X = digits_train[0][:100].reshape(100, 64).numpy()
    aekit.AutoEncoder(epochs=1, threads=2, random_state=0).fit(X, callbacks=(lambda e, r: seen.append(torch.get_num_threads()),))
    assert seen == [2]


def test_import_aekit_sets_a_passive_openmp_wait_policy_before_torch_loads():
    import subprocess
    import sys

    code = ("import os; os.environ.pop('OMP_WAIT_POLICY', None); import aekit, torch; "
            "print(os.environ.get('OMP_WAIT_POLICY'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "PASSIVE"
    code = "import os; os.environ['OMP_WAIT_POLICY'] = 'ACTIVE'; import aekit; print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "ACTIVE"  # a user's own setting is kept
