"""The evaluation and application commands of the ``aekit`` CLI (evaluate, denoise, detect, impute,
compress/decompress, search, interpolate, compare-pca), run in-process on one small VAE run over
the embedded digits, checked against the library calls they stand for."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from contextlib import redirect_stdout

import numpy as np
import pytest
from PIL import Image
from sklearn.decomposition import PCA

import aekit
from aekit import cli
from aekit.apps import AutoencoderImputer, add_noise, psnr, reconstruction_error
from aekit.run import compress_run, decompress_run, fit_run
from helpers import expect_cli_error as _fail

LIMIT = 300




def _ok(capsys, argv) -> str:
    assert cli.main(argv) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def _rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _number(pattern: str, text: str) -> float:
    m = re.search(pattern, text)
    assert m, (pattern, text)
    return float(m.group(1))


def _digits(n: int, split: str = "test") -> np.ndarray:  # the commands read the test split by default
    return aekit.load_dataset("digits", split).X[:n]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One small VAE run (3 epochs on 300 digits, 3-D code; small batches so that the code carries
    information after so few steps)."""
    out = tmp_path_factory.mktemp("runs") / "vae"
    argv = ["fit", "--data", "digits", "--model", "vae", "--epochs", "3", "--limit", str(LIMIT), "--latent-dim", "3",
            "--hidden-dims", "32", "--batch-size", "16", "--lr", "3e-3", "--out", str(out), "--quiet", "--threads", "1"]
    assert cli.main(argv) == 0
    return out


@pytest.fixture(scope="module")
def est(run):
    return aekit.load(run)


# -- every command documents every option ------------------------------------------------------------

APP_COMMANDS = ("evaluate", "denoise", "detect", "impute", "compress", "decompress", "search", "interpolate", "compare-pca")


@pytest.mark.parametrize("command", APP_COMMANDS)
def test_help_explains_every_option(command, capsys):
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command").choices[command]
    undocumented = [a.dest for a in sub._actions if a.dest != "help" and not (a.help or "").strip()]
    assert not undocumented
    assert sub.description
    text = _ok(capsys, [command, "--help"])
    for action in sub._actions:
        for flag in action.option_strings:
            assert flag in text, flag


# -- evaluate -----------------------------------------------------------------------------------------


def test_evaluate_prints_a_table_and_writes_evaluation_json(run, capsys):
    out = _ok(capsys, ["evaluate", str(run), "--data", "digits", "--nll-samples", "20", "--limit", "100"])
    r = json.loads((run / "evaluation.json").read_text())
    assert {"elbo", "nll", "recon_mse", "kl_per_dim", "active_units", "n_samples", "nll_samples"} <= set(r)
    assert r["n_samples"] == 100 and r["nll_samples"] == 20 and r["split"] == "test" and len(r["kl_per_dim"]) == 3
    assert r["nll"] <= -r["elbo"]  # the importance-weighted bound is at least as tight as the ELBO
    assert r["nll"] > 0 and all(k >= 0 for k in r["kl_per_dim"])
    for key in ("elbo", "nll", "recon_mse"):  # the table shows what the file holds
        assert _number(rf"{key}\s+(-?[\d.e-]+)", out) == pytest.approx(r[key], rel=1e-3), key
    assert re.search(r"active_units\s+\d/3", out)

    _ok(capsys, ["evaluate", str(run), "--data", "digits", "--limit", "50"])
    r = json.loads((run / "evaluation.json").read_text())
    assert "nll" not in r and r["nll_samples"] == 0 and r["n_samples"] == 50


def test_evaluate_feeds_the_model_as_the_estimator_does(tmp_path, capsys):
    """Tabular data outside [0, 1] is standardized by the estimator; evaluate must do the same."""
    X = _digits(200).reshape(200, 64) * 16 + 3  # pixel counts, shifted: standardize="auto" turns on
    np.save(tmp_path / "table.npy", X)
    run = fit_run(tmp_path / "ae", "ae", tmp_path / "table.npy", {"epochs": 2, "latent_dim": 4, "hidden_dims": (16,)},
                  report=False).run_dir
    est = aekit.load(run)
    assert est.mean_ is not None
    _ok(capsys, ["evaluate", str(run), "--data", str(tmp_path / "table.npy"), "--split", "all"])
    r = json.loads((run / "evaluation.json").read_text())
    expected = float((((est.reconstruct(X) - X) / est.scale_) ** 2).mean())  # in standardized units
    assert r["units"] == "standardized" and r["recon_mse"] == pytest.approx(expected, rel=1e-4)
    assert "elbo" not in r
    assert "variational" in _fail(capsys, ["evaluate", str(run), "--data", str(tmp_path / "table.npy"),
                                          "--split", "all", "--nll-samples", "5"])


# -- denoise ------------------------------------------------------------------------------------------


def test_denoise_adds_noise_and_reports_psnr(run, est, tmp_path, capsys):
    out = _ok(capsys, ["denoise", str(run), "--data", "digits", "--limit", "40", "--noise", "gaussian", "--noise-level", "0.3",
                       "--seed", "1", "-o", str(tmp_path / "d.npy")])
    D = np.load(tmp_path / "d.npy")
    X = _digits(40)
    noisy = add_noise(X, "gaussian", 0.3, random_state=1, clip=(0.0, 1.0))
    assert D.shape == X.shape and D.min() >= 0 and D.max() <= 1
    np.testing.assert_allclose(D, np.clip(est.reconstruct(noisy), 0, 1), atol=1e-6)
    assert _number(r"noisy (-?[\d.]+) dB", out) == pytest.approx(psnr(X, noisy), abs=0.01)
    assert _number(r"denoised (-?[\d.]+) dB", out) == pytest.approx(psnr(X, D), abs=0.01)

    _ok(capsys, ["denoise", str(run), "--data", "digits", "--limit", "40", "--noise", "masking", "-n", "6", "-o", str(tmp_path / "d.png")])
    with Image.open(tmp_path / "d.png") as im:  # rows clean, noisy, denoised of 6 images, 8 px each scaled by 4
        assert im.format == "PNG" and im.width == 4 * (6 * 9 + 1) and im.height == 4 * (3 * 9 + 1)


def test_denoise_without_noise_writes_the_reconstruction(run, est, tmp_path, capsys):
    out = _ok(capsys, ["denoise", str(run), "--data", "digits", "--limit", "20", "-o", str(tmp_path / "d.npz")])
    assert "PSNR" not in out
    with np.load(tmp_path / "d.npz") as f:
        assert sorted(f) == ["denoised", "noisy"]
        np.testing.assert_array_equal(f["noisy"], _digits(20))
        np.testing.assert_allclose(f["denoised"], np.clip(est.reconstruct(_digits(20)), 0, 1), atol=1e-6)


# -- detect -------------------------------------------------------------------------------------------


def test_detect_writes_scores_and_flags_the_contamination(run, est, tmp_path, capsys):
    out = _ok(capsys, ["detect", str(run), "--data", "digits", "--limit", "200", "--contamination", "0.1", "-o", str(tmp_path / "s.csv")])
    rows = _rows(tmp_path / "s.csv")
    assert list(rows[0]) == ["index", "score", "is_outlier"] and [int(r["index"]) for r in rows] == list(range(200))
    scores = np.array([float(r["score"]) for r in rows])
    flagged = np.array([int(r["is_outlier"]) for r in rows])
    X = _digits(200)
    mse = ((est.reconstruct(X) - X) ** 2).reshape(200, -1).mean(axis=1)
    np.testing.assert_allclose(scores, -mse, rtol=1e-5)  # higher is more normal
    assert flagged.sum() == 20 and int(_number(r"(\d+) of 200 samples flagged", out)) == 20
    assert scores[flagged == 1].max() < scores[flagged == 0].min()  # the worst-scored ones

    threshold = float(np.median(scores))
    out = _ok(capsys, ["detect", str(run), "--data", "digits", "--limit", "200", "--threshold", repr(threshold)])
    assert int(_number(r"(\d+) of 200 samples flagged", out)) == int((scores < threshold).sum())


def test_detect_latent_knn_scores_each_sample_against_the_others(run, est, tmp_path, capsys):
    out = _ok(capsys, ["detect", str(run), "--data", "digits", "--limit", "100", "--scoring", "latent_knn",
                       "-o", str(tmp_path / "s.csv")])
    scores = np.array([float(r["score"]) for r in _rows(tmp_path / "s.csv")])
    Z = est.transform(_digits(100)).astype(np.float64)
    d = np.sqrt(((Z[:, None] - Z[None]) ** 2).sum(-1))  # (100, 100), 0 on the diagonal
    np.testing.assert_allclose(scores, -np.sort(d, axis=1)[:, 1:6].mean(1), rtol=1e-4)  # itself left out
    assert "latent_knn score below" in out and int(_number(r"(\d+) of 100 samples flagged", out)) == 10


# -- impute -------------------------------------------------------------------------------------------


def test_impute_changes_only_the_nans(run, est, tmp_path, capsys):
    X = _digits(40).reshape(40, 64).copy()
    holes = np.random.default_rng(0).random(X.shape) < 0.2
    X[holes] = np.nan
    np.save(tmp_path / "holes.npy", X)
    out = _ok(capsys, ["impute", str(run), "--data", str(tmp_path / "holes.npy"), "-o", str(tmp_path / "filled.npy")])
    F = np.load(tmp_path / "filled.npy")
    assert F.shape == X.shape and np.isfinite(F).all()
    np.testing.assert_array_equal(F[~holes], X[~holes])  # observed values bit for bit
    expected = AutoencoderImputer(est).fit(X.reshape(40, 1, 8, 8)).transform(X.reshape(40, 1, 8, 8)).reshape(40, 64)
    np.testing.assert_allclose(F[holes], expected[holes], rtol=1e-5)
    assert f"filled {int(holes.sum())} missing values" in out

    _ok(capsys, ["impute", str(run), "--data", str(tmp_path / "holes.npy"), "-o", str(tmp_path / "filled.csv")])
    np.testing.assert_allclose(np.loadtxt(tmp_path / "filled.csv", delimiter=",", skiprows=1), F, rtol=1e-6)


# -- compress / decompress ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compressed(run, tmp_path_factory):
    path = tmp_path_factory.mktemp("codec") / "digits.aek"
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert cli.main(["compress", str(run), "--data", "digits", "--split", "test", "--limit", "100", "--bits", "3", "-o", str(path)]) == 0
    return path, buf.getvalue()


def test_compress_decompress_round_trip(run, compressed, tmp_path, capsys):
    path, printed = compressed
    blob = path.read_bytes()
    assert blob[:4] == b"AEKC" and int(_number(r"into (\d+) bytes", printed)) == len(blob)
    assert _number(r"\(([\d.]+) bits per sample", printed) == pytest.approx(8 * len(blob) / 100, abs=0.01)
    assert len(list(run.glob("codec-3bit-*.npz"))) == 1  # the tables live beside the model

    out = tmp_path / "back.npy"
    _ok(capsys, ["decompress", str(run), str(path), "-o", str(out)])
    D = np.load(out)
    X = _digits(100, "test")
    assert D.shape == X.shape
    assert psnr(X, D) == pytest.approx(_number(r"PSNR ([\d.]+) dB", printed), abs=0.01)

    # the same through Python, to the last digit
    again = compress_run(run, "digits", tmp_path / "py.aek", bits=3, split="test", limit=100)
    assert (tmp_path / "py.aek").read_bytes() == blob  # the same tables, so the same stream
    assert again.psnr == pytest.approx(psnr(X, decompress_run(run, tmp_path / "py.aek")), rel=1e-9)

    copy = tmp_path / "copied-run"  # the run folder and the file are all decompress needs
    shutil.copytree(run, copy)
    _ok(capsys, ["decompress", str(copy), str(path), "-o", str(tmp_path / "again.npy")])
    np.testing.assert_array_equal(np.load(tmp_path / "again.npy"), D)
    _ok(capsys, ["decompress", str(run), str(path), "-o", str(tmp_path / "back.png")])
    with Image.open(tmp_path / "back.png") as im:
        assert im.format == "PNG"


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "empty"])
def test_decompress_of_a_damaged_file_is_a_clear_error(run, compressed, tmp_path, capsys, damage):
    blob = bytearray(compressed[0].read_bytes())
    if damage == "flip":
        blob[len(blob) // 2] ^= 0x40
    elif damage == "truncate":
        blob = blob[: len(blob) - 7]
    elif damage == "garbage":
        blob = bytearray(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes())
    else:
        blob = bytearray()
    bad = tmp_path / "bad.aek"
    bad.write_bytes(bytes(blob))
    err = _fail(capsys, ["decompress", str(run), str(bad), "-o", str(tmp_path / "x.npy")])
    assert "cannot decompress" in err and str(bad) in err
    assert not (tmp_path / "x.npy").exists()


# -- search ---------------------------------------------------------------------------------------------


def test_search_by_index_finds_the_sample_itself_first(run, tmp_path, capsys):
    out = _ok(capsys, ["search", str(run), "--data", "digits", "--index", "7", "-k", "5", "-o", str(tmp_path / "nb.csv")])
    rows = _rows(tmp_path / "nb.csv")
    assert list(rows[0]) == ["query", "rank", "index", "distance", "label"] and len(rows) == 5
    assert int(rows[0]["index"]) == 7 and float(rows[0]["distance"]) < 1e-5  # float32 codes, batch-dependent rounding
    distances = [float(r["distance"]) for r in rows]
    assert distances == sorted(distances)
    y = aekit.load_dataset("digits", "test").y  # the commands' default split
    assert [int(r["label"]) for r in rows] == y[[int(r["index"]) for r in rows]].tolist()
    assert re.search(rf"^\s+1\s+7\s+0\.0000\s+{y[7]}$", out, re.MULTILINE)  # rank 1: sample 7 itself at distance 0


def test_search_with_a_query_file(run, tmp_path, capsys):
    np.save(tmp_path / "q.npy", _digits(20)[[3, 12]])
    _ok(capsys, ["search", str(run), "--query", str(tmp_path / "q.npy"), "--data", "digits", "--limit", "20", "-k", "3",
                 "-o", str(tmp_path / "nb.csv")])
    rows = _rows(tmp_path / "nb.csv")
    assert len(rows) == 6 and [r["query"] for r in rows] == ["0"] * 3 + ["1"] * 3
    assert (int(rows[0]["index"]), int(rows[3]["index"])) == (3, 12)


# -- interpolate, compare-pca -------------------------------------------------------------------------------


def test_interpolate_npy_and_png(run, est, tmp_path, capsys):
    _ok(capsys, ["interpolate", str(run), "--data", "digits", "--a", "0", "--b", "5", "--steps", "6", "--method", "slerp",
                 "-o", str(tmp_path / "i.npy")])
    P = np.load(tmp_path / "i.npy")
    X = _digits(6)
    assert P.shape == (6, 1, 8, 8)
    np.testing.assert_allclose(P[0], est.reconstruct(X[:1])[0], atol=1e-5)  # endpoints: the reconstructions
    np.testing.assert_allclose(P[-1], est.reconstruct(X[5:6])[0], atol=1e-5)
    _ok(capsys, ["interpolate", str(run), "--data", "digits", "--a", "0", "--b", "5", "-o", str(tmp_path / "i.png")])
    with Image.open(tmp_path / "i.png") as im:
        assert im.format == "PNG" and im.width == 4 * (8 * 9 + 1) and im.height == 4 * 10  # one row of 8


def test_compare_pca_plots_and_prints_both_errors(run, est, tmp_path, capsys):
    out = _ok(capsys, ["compare-pca", str(run), "--data", "digits", "--split", "test", "--limit", "200", "-o", str(tmp_path / "c.png")])
    with Image.open(tmp_path / "c.png") as im:
        assert im.format == "PNG" and im.width > 500
    assert _number(r"autoencoder ([\d.e-]+)", out) == pytest.approx(reconstruction_error(est, _digits(200, "test")), rel=1e-4)
    train = aekit.load_dataset("digits", "train").X[:LIMIT].reshape(LIMIT, 64)  # the run's training data
    pca = PCA(3).fit(train)
    assert _number(r"PCA \(3 components.*\) ([\d.e-]+)", out) == pytest.approx(
        reconstruction_error(pca, _digits(200, "test").reshape(200, 64)), rel=1e-4)


# -- user errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["evaluate", "RUN", "--data", "missing/file.npy"], "missing/file.npy"),
        (["evaluate", "RUN"], "--data"),
        (["evaluate", "RUN", "--data", "digits", "--nll-samples", "-1"], "--nll-samples"),
        (["evaluate", "nowhere", "--data", "digits"], "holds no fitted model"),
        (["denoise", "RUN", "--data", "digits", "-o", "d.npy", "--noise", "pink"], "unknown noise 'pink'"),
        (["denoise", "RUN", "--data", "digits", "-o", "d.npy", "--noise", "gaussian", "--noise-level", "-1"], "--noise-level"),
        (["denoise", "RUN", "--data", "digits", "-o", "d.gif"], ".npy or .npz or .png"),
        (["denoise", "RUN", "--data", "nosuchdataset", "-o", "d.npy"], "unknown dataset"),
        (["detect", "RUN", "digits"], "with --data DATA"),  # data is always named by --data
        (["detect", "RUN", "--data", "digits", "--contamination", "0.7"], "(0, 0.5]"),
        (["detect", "RUN", "--data", "digits", "--contamination", "0.1", "--threshold", "1"], "not allowed with"),
        (["impute", "RUN", "--data", "digits", "-o", "f.txt"], ".npy or .csv"),
        (["compress", "RUN", "--data", "digits", "-o", "x.aek", "--bits", "13"], "bits must be"),
        (["decompress", "RUN", "missing.aek", "-o", "x.npy"], "missing.aek"),
        (["search", "RUN", "--data", "digits", "-k", "0", "--index", "1"], "-k"),
        (["search", "RUN", "--data", "digits", "-k", "5000", "--index", "1"], "k must be"),
        (["search", "RUN", "--data", "digits", "--index", "99999"], "index"),
        (["search", "RUN", "--data", "digits"], "needs a query"),
        (["search", "RUN", "--query", "digits", "--data", "digits", "--index", "1"], "not both"),
        (["search", "RUN", "--query", "HOLES", "--data", "digits"], "missing values"),
        (["interpolate", "RUN", "--data", "digits", "--a", "0", "--b", "1", "--steps", "1", "-o", "i.npy"], "--steps"),
        (["interpolate", "RUN", "--data", "digits", "--a", "0", "--b", "5000", "-o", "i.npy"], "b must be"),
        (["compare-pca", "RUN", "--data", "digits", "-o", "c.jpg"], ".png"),
    ],
)
def test_user_errors_are_one_line(run, argv, expected, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    holes = np.full((2, 64), np.nan, dtype=np.float32)
    np.save(tmp_path / "holes.npy", holes)
    argv = [{"RUN": str(run), "HOLES": str(tmp_path / "holes.npy")}.get(a, a) for a in argv]
    assert expected in _fail(capsys, argv)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["holes.npy"]  # nothing written


def test_evaluate_run_without_a_run_says_so(tmp_path):
    from aekit.run import evaluate_run

    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        evaluate_run(tmp_path, "digits")
