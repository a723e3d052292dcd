"""aekit.compare / ``aekit compare``: every number of the leaderboard is what the library computes
for the same model trained alone; a failing family keeps its row and the others go on; the best
of each column is marked; the recommendation follows the numbers."""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pytest
from helpers import expect_cli_error
from sklearn.metrics import roc_auc_score

import aekit
from aekit import VAE, AnomalyDetector, AutoEncoder, cli
from aekit.apps import knn_accuracy, linear_probe
from aekit.datasets import load_dataset
from aekit.evaluate import evaluate_estimator
from aekit.run.leaderboard import COLUMNS, Leaderboard, recommend

TINY = {"hidden_dims": (32,), "latent_dim": 4, "batch_size": 32}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits"), load_dataset("digits", split="test")


@pytest.fixture(scope="module")
def board(digits, tmp_path_factory):
    d, t = digits
    out = tmp_path_factory.mktemp("compare")
    b = aekit.compare(d.X, d.y, X_test=t.X, y_test=t.y, models=["ae", "sparse", "vae"], epochs=2, params=TINY,
                      model_params={"sparse": {"lr": 1e30}}, nll_samples=5, data_name="digits", out=out)
    return b, out


def test_every_number_is_the_library_s_own(board, digits):
    b, _ = board
    d, t = digits
    row = {r["model"]: r for r in b.rows}
    vae = VAE(**TINY, epochs=2, random_state=0).fit(d.X)  # the same family, budget and seed, alone
    mse = float(np.mean((vae.reconstruct(t.X) - t.X) ** 2))
    assert row["vae"]["recon_mse"] == pytest.approx(mse, rel=1e-5)
    assert row["vae"]["psnr"] == pytest.approx(10 * np.log10(1 / mse), rel=1e-5)
    m = evaluate_estimator(vae, t.X, nll_samples=5)
    assert row["vae"]["elbo"] == pytest.approx(m["elbo"], rel=1e-5) and row["vae"]["nll"] == pytest.approx(m["nll"], rel=1e-5)
    assert row["vae"]["active_units"] == m["active_units"] and row["vae"]["latent_dim"] == 4
    Z, Zt = vae.transform(d.X), vae.transform(t.X)
    assert row["vae"]["probe_acc"] == pytest.approx(linear_probe(Z, d.y, Zt, t.y))
    assert row["vae"]["knn_acc"] == pytest.approx(knn_accuracy(Z, d.y, Zt, t.y))
    assert row["vae"]["n_params"] == sum(p.numel() for p in vae.model_.parameters())
    # the anomaly AUC: a detector fitted without the held-out class (the least frequent training label)
    held = b.info["anomaly_class"]
    classes, counts = np.unique(d.y, return_counts=True)
    assert held == classes[np.argmin(counts)]
    det = AnomalyDetector(model=VAE(**TINY, epochs=2, random_state=0), contamination=0.1).fit(d.X[d.y != held])
    assert row["vae"]["anomaly_auc"] == pytest.approx(roc_auc_score(t.y == held, -det.score_samples(t.X)))
    assert row["ae"]["elbo"] is None and row["ae"]["nll"] is None  # no likelihood: no ELBO/NLL


def test_a_failing_family_keeps_its_row_and_the_others_go_on(board):
    b, _ = board
    status = {r["model"]: r["status"] for r in b.rows}
    assert status == {"ae": "ok", "sparse": "failed", "vae": "ok"}
    failed = next(r for r in b.rows if r["model"] == "sparse")
    assert failed["error"].startswith("NonFiniteLossError: loss became non-finite")
    assert "sparse failed" in " ".join(b.recommendation)


def test_a_refused_setting_is_a_failed_row_too(digits):
    d, t = digits
    b = aekit.compare(d.X[:300], d.y[:300], X_test=t.X[:100], y_test=t.y[:100], models=["ae", "vae"], epochs=1,
                      params=TINY, model_params={"vae": {"beta": -1.0}}, nll_samples=0, anomaly=False)
    vae = b.rows[1]
    assert vae["status"] == "failed" and vae["error"].startswith("ValueError: beta must be a number >= 0")
    assert b.rows[0]["status"] == "ok" and [r["model"] for r in b.ranking("recon_mse")] == ["ae"]


def test_best_of_each_column_is_marked(board):
    b, out = board
    best = b.best()
    ok = [r for r in b.rows if r["status"] == "ok"]
    assert best["recon_mse"] == min(ok, key=lambda r: r["recon_mse"])["model"]
    assert best["probe_acc"] == max(ok, key=lambda r: r["probe_acc"])["model"]
    assert best["n_params"] == min(ok, key=lambda r: r["n_params"])["model"]
    assert "active_units" not in best  # more active units is not better or worse
    page = (out / "leaderboard.html").read_text()
    table = re.search(r'<table class="board" data-table="leaderboard">(.*?)</table>', page, re.DOTALL).group(1)
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.DOTALL)[1:]
    header = re.findall(r"<th>(.*?)</th>", table)
    assert "nll" not in best and "elbo" not in best  # one model has them: nothing to mark
    for key, model in best.items():
        col = header.index(next(c.label for c in COLUMNS if c.key == key))
        cells = [re.findall(r"<td(?: class=\"(best)\")?>", r)[col] for r in rows]
        marked = [b.rows[i]["model"] for i, c in enumerate(cells) if c == "best"]
        assert marked == [model], key
    assert "sparse (failed, NonFiniteLossError)" in page and 'class="warning"' in page
    assert page.count('class="best"') == len(best)


def test_csv_holds_the_rows(board):
    b, out = board
    text = (out / "leaderboard.csv").read_text()
    assert text == b.to_csv()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["model"] for r in rows] == ["ae", "sparse", "vae"]
    d_test = load_dataset("digits", split="test")
    assert float(rows[2]["probe_acc_se"]) == pytest.approx(np.sqrt(b.rows[2]["probe_acc"] * (1 - b.rows[2]["probe_acc"])
                                                                   / len(d_test.X)))
    assert 0 < float(rows[0]["recon_mse_se"]) < b.rows[0]["recon_mse"] / 5
    assert float(rows[2]["recon_mse"]) == pytest.approx(b.rows[2]["recon_mse"])
    assert rows[1]["status"] == "failed" and rows[1]["recon_mse"] == "" and "NonFiniteLossError" in rows[1]["error"]
    assert rows[0]["nll"] == ""  # not defined for a plain autoencoder
    frame = b.to_frame()
    assert frame.loc["vae", "recon_mse"] == b.rows[2]["recon_mse"] and frame.loc["sparse", "status"] == "failed"


SE = {"recon_mse": 0.0002, "probe_acc": 0.01, "anomaly_auc": 0.02}  # standard errors of the synthetic values


def _synthetic(values: dict[str, dict], epochs=10) -> Leaderboard:
    rows = [{"model": m, "estimator": m.upper(), "status": "ok", "error": None, **v,
             "se": {k: SE[k] for k in v if k in SE}} for m, v in values.items()]
    keys = {k for v in values.values() for k in v}
    return Leaderboard(rows, [c for c in COLUMNS if c.key in keys], [], {"epochs": epochs, "anomaly_class": 3})


def test_recommendation_follows_the_numbers():
    numbers = {"a": {"recon_mse": 0.010, "probe_acc": 0.70, "fit_time_s": 1.0},
               "b": {"recon_mse": 0.020, "probe_acc": 0.90, "fit_time_s": 3.0}}
    text = " ".join(recommend(_synthetic(numbers)))
    assert "Best reconstruction: a" in text and "linear classifier: b" in text and "Fastest to train: a" in text
    numbers["b"]["recon_mse"] = 0.005  # now b reconstructs best too, and leads everything
    text = " ".join(recommend(_synthetic(numbers)))
    assert "Best reconstruction: b" in text and "take b: it is best or within noise of the best on 2 of 2" in text
    numbers["a"]["recon_mse"] = 0.0052  # within a standard error of the difference (0.00028): a tie
    assert "within noise of it: a" in " ".join(recommend(_synthetic(numbers)))
    numbers["a"]["probe_acc"] = 0.89  # and now a is within noise of b everywhere: both lead
    assert "No single model leads: a, b" in " ".join(recommend(_synthetic(numbers)))


def test_recommendation_says_when_no_detector_beats_chance():
    text = " ".join(recommend(_synthetic({"a": {"anomaly_auc": 0.45}, "b": {"anomaly_auc": 0.48}})))
    assert "No model flags the unseen class 3 better than chance" in text
    text = " ".join(recommend(_synthetic({"a": {"anomaly_auc": 0.95}, "b": {"anomaly_auc": 0.7}})))
    assert "Best at flagging the unseen class 3 as anomalous: a" in text


def test_tables_without_a_test_split(tmp_path):
    from sklearn.datasets import load_breast_cancer

    bc = load_breast_cancer()
    b = aekit.compare(bc.data, bc.target, models=["ae"], epochs=2, params={"hidden_dims": (16,)}, anomaly=False)
    assert b.info["n_train"] == 455 and b.info["n_test"] == 114  # a stratified, seeded 20% held out
    row = b.rows[0]
    assert row["psnr"] is None and row["status"] == "ok"
    # the error is measured on features standardized by the training data, whatever the model does inside
    from sklearn.model_selection import train_test_split

    X, Xt = train_test_split(bc.data.astype(np.float32), test_size=0.2, random_state=0, stratify=bc.target)
    ae = AutoEncoder(hidden_dims=(16,), epochs=2, random_state=0).fit(X)
    expected = np.mean(((ae.reconstruct(Xt) - Xt) / X.std(0)) ** 2)  # the means cancel
    assert row["recon_mse"] == pytest.approx(expected, rel=1e-4)


def test_bad_arguments(digits):
    d, _ = digits
    with pytest.raises(ValueError, match="unknown model family 'nope'"):
        aekit.compare(d.X, models=["ae", "nope"])
    with pytest.raises(ValueError, match="beta is not a parameter of the 'ae' family"):
        aekit.compare(d.X, models=["ae", "vae"], params={"beta": 2.0})
    with pytest.raises(ValueError, match="epochs="):
        aekit.compare(d.X, models=["ae"], params={"epochs": 3})
    with pytest.raises(ValueError, match="not compared"):
        aekit.compare(d.X, models=["ae"], model_params={"vae": {"beta": 2.0}})
    with pytest.raises(ValueError, match="10 labels for 20 samples"):
        aekit.compare(d.X[:20], d.y[:10], models=["ae"])
    with pytest.raises(ValueError, match="NaN or infinity"):
        aekit.compare(np.where(d.X == 0, np.nan, d.X), models=["ae"])
    with pytest.raises(ValueError, match="anomaly_class 42"):
        aekit.compare(d.X, d.y, models=["ae"], anomaly_class=42)


def test_cli_compare(tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", "--data", "digits", "--models", "ae,vae", "--epochs", "1", "--limit", "200", "--hidden-dims",
            "16", "--set", "vae.beta=0.5", "--nll-samples", "0", "--no-anomaly", "--out", str(out), "--threads", "1"]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert "[1/2] ae: training AutoEncoder for 1 epochs" in captured.err and "[2/2] vae: done in" in captured.err
    assert "| model | recon MSE |" in captured.out and f"leaderboard: {(out / 'leaderboard.html').resolve().as_uri()}" in captured.out
    rows = list(csv.DictReader(io.StringIO((out / "leaderboard.csv").read_text())))
    assert [r["model"] for r in rows] == ["ae", "vae"] and all(r["status"] == "ok" for r in rows)
    assert "params.hidden_dims" in (out / "leaderboard.html").read_text()
    expect_cli_error(capsys, ["compare", "--data", "digits", "--models", "ae", "--out", str(out), "--set", "nope=1"])
    expect_cli_error(capsys, ["compare", "--data", "digits", "--models", "ae,bogus", "--out", str(out)])


def test_cli_compare_help_explains_every_option(capsys):
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command").choices["compare"]
    assert sub.description and not [a.dest for a in sub._actions if a.dest != "help" and not (a.help or "").strip()]
    assert cli.main(["compare", "--help"]) == 0
    text = capsys.readouterr().out
    assert all(flag in text for a in sub._actions for flag in a.option_strings)
