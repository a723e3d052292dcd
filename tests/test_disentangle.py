"""Disentanglement metrics (aekit.evaluate: mig, factorvae_score, dci, mutual_info_matrix,
disentanglement_metrics): exact values on hand-made codes, a perfect code near 1, mixed and random
codes low, invariances, input checks; and their place in runs, reports and traversals."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from aekit._disentangle import _dci_from_importance
from aekit.evaluate import dci, disentanglement_metrics, factorvae_score, metric_rows, mig, mutual_info_matrix

N = 2000


@pytest.fixture(scope="module")
def factors():
    """Three independent uniform factors of 6, 10 and 16 values (every size within MIG's 20 bins)."""
    rng = np.random.default_rng(0)
    return np.column_stack([rng.integers(0, size, N) for size in (6, 10, 16)])


def _perfect(factors, noise=0.05, seed=1):
    """One code dimension per factor, its value plus a little noise, in its own scale."""
    rng = np.random.default_rng(seed)
    return (factors + noise * rng.normal(size=factors.shape)) * np.array([1.0, -3.0, 0.2])


# an orthonormal mix that spreads every factor over two or three dimensions (a Helmert basis)
MIX = np.array([[1 / 3**0.5, 1 / 2**0.5, 1 / 6**0.5], [1 / 3**0.5, -1 / 2**0.5, 1 / 6**0.5], [1 / 3**0.5, 0, -2 / 6**0.5]])


# ----------------------------------------------------------------------------- exact values


def test_mutual_information_of_known_cases():
    f = np.repeat(np.arange(4), 500)[:, None]  # a uniform factor of 4 values: H = log 4
    codes = np.column_stack([f[:, 0], f[:, 0] // 2, np.tile([0, 1], 1000)])  # all of it, half of it, none of it
    nats = mutual_info_matrix(codes, f, normalise=False)[:, 0]
    assert nats == pytest.approx([math.log(4), math.log(2), 0.0], abs=1e-12)
    assert mutual_info_matrix(codes, f)[:, 0] == pytest.approx([1.0, 0.5, 0.0], abs=1e-12)


def test_mig_is_the_normalised_gap_between_the_two_best_dimensions():
    f = np.repeat(np.arange(4), 500)[:, None]
    codes = np.column_stack([f[:, 0], f[:, 0] // 2])  # I = log 4 and log 2: gap (log 4 - log 2) / log 4
    score, per_factor = mig(codes, f, per_factor=True)
    assert score == pytest.approx(0.5, abs=1e-12) and per_factor == pytest.approx([0.5])
    assert mig(codes[:, :1], f) == pytest.approx(1.0)  # a single dimension: the second-best is nothing


def test_dci_from_importance_matrices():
    assert _dci_from_importance(np.eye(3)) == pytest.approx((1.0, 1.0))
    assert _dci_from_importance(np.ones((3, 3)) / 3) == pytest.approx((0.0, 0.0), abs=1e-12)
    # one dimension tells both factors, the other nothing: disentanglement 0 (that dimension is
    # shared, and the idle one has no weight); completeness 1 (each factor is told by one dimension)
    assert _dci_from_importance(np.array([[1.0, 1.0], [0.0, 0.0]])) == pytest.approx((0.0, 1.0))
    # two dimensions share one factor: completeness 0 for it (base-2 entropy of (1/2, 1/2) is 1)
    d, c = _dci_from_importance(np.array([[0.5, 0.0], [0.5, 0.0]]))
    assert (d, c) == pytest.approx((1.0, 0.0))


# ----------------------------------------------------------------------------- perfect, mixed, random


def test_a_perfect_code_scores_near_one(factors):
    codes = _perfect(factors)
    assert mig(codes, factors) > 0.95
    assert factorvae_score(codes, factors, n_train=1000, n_eval=1000) == 1.0
    scores = dci(codes, factors)
    assert scores.disentanglement > 0.95 and scores.completeness > 0.95 and scores.informativeness > 0.95
    assert np.array_equal(scores.importance.argmax(axis=0), [0, 1, 2])
    # unused extra dimensions (noise) do not take the credit
    extra = np.column_stack([codes, np.random.default_rng(3).normal(size=(N, 3))])
    assert mig(extra, factors) > 0.95
    assert factorvae_score(extra, factors, n_train=1000, n_eval=1000) > 0.95
    assert dci(extra, factors).disentanglement > 0.9


def test_a_rotated_code_has_low_mig_and_dci_but_keeps_its_information(factors):
    codes = (factors - factors.mean(0)) / factors.std(0) @ MIX  # the same information, mixed
    assert mig(codes, factors) < 0.3
    scores = dci(codes, factors)
    assert scores.disentanglement < 0.6 and scores.completeness < 0.6
    assert scores.informativeness > 0.8  # a mixed code still tells the factors


def test_two_factors_on_one_dimension_are_entangled(factors):
    both = factors[:, 0] * 10 + factors[:, 1]  # one dimension holds factors 0 and 1
    codes = np.column_stack([both, factors[:, 2]]).astype(float)
    scores = dci(codes, factors)
    assert scores.disentanglement < 0.8 < scores.completeness
    assert factorvae_score(codes, factors, n_train=1000, n_eval=1000) < 0.8  # dimension 0 answers for two factors


def test_random_codes_score_near_zero(factors):
    codes = np.random.default_rng(4).normal(size=(N, 8))
    assert mig(codes, factors) < 0.05
    scores = dci(codes, factors)
    assert scores.disentanglement < 0.1 and scores.completeness < 0.1 and scores.informativeness < 0.05
    # the FactorVAE metric's floor is the majority vote's chance level, 1/3 with three factors
    assert factorvae_score(codes, factors, n_train=2000, n_eval=2000) < 0.5


# ----------------------------------------------------------------------------- invariances and settings


def test_metrics_do_not_depend_on_scale_shift_or_order_of_dimensions(factors):
    codes = _perfect(factors, noise=0.5)
    moved = codes[:, [2, 0, 1]] * np.array([5.0, 0.1, -2.0]) + 7.0  # std stays above min_std
    assert mig(moved, factors) == pytest.approx(mig(codes, factors))
    kw = {"n_train": 500, "n_eval": 500, "random_state": 0}
    assert factorvae_score(moved, factors, **kw) == pytest.approx(factorvae_score(codes, factors, **kw))
    # factor labels need not be 0..n-1
    assert mig(codes, factors * 3 + 100) == pytest.approx(mig(codes, factors))


def test_collapsed_dimensions_take_no_part_in_the_factorvae_metric(factors):
    codes = np.column_stack([_perfect(factors), np.full(N, 0.5), 1e-3 * np.random.default_rng(5).normal(size=N)])
    assert factorvae_score(codes, factors, n_train=1000, n_eval=1000) == 1.0  # the near-constant ones never "win"
    assert factorvae_score(np.zeros((N, 3)), factors) == 0.0


def test_mig_bins_cap_factors_with_many_values():
    """With 20 bins a code cannot tell 40 values apart: a perfect code's gap is log 20 / log 40."""
    f = np.repeat(np.arange(40), 100)[:, None]
    assert mig(f.astype(float), f) == pytest.approx(math.log(20) / math.log(40), abs=1e-9)
    assert mig(f.astype(float), f, n_bins=40) == pytest.approx(1.0)


def test_seeded(factors):
    codes = _perfect(factors, noise=2.0)
    kw = {"n_train": 300, "n_eval": 300}
    assert factorvae_score(codes, factors, random_state=7, **kw) == factorvae_score(codes, factors, random_state=7, **kw)
    assert dci(codes, factors, random_state=3).importance == pytest.approx(dci(codes, factors, random_state=3).importance)


@pytest.mark.parametrize("codes, factors, match", [
    (np.zeros((5, 2)), np.zeros((4, 1), int), "one row per sample"),
    (np.full((5, 2), np.nan), np.zeros((5, 1), int), "NaN"),
    (np.zeros((5, 2)), np.full((5, 1), 0.5), "discrete"),
    (np.zeros((1, 2)), np.zeros((1, 1), int), "at least 2 samples"),
    (np.zeros((5, 2, 2)), np.zeros((5, 1), int), "shaped"),
])
def test_bad_input_is_a_clear_error(codes, factors, match):
    for metric in (mig, factorvae_score, dci, mutual_info_matrix):
        with pytest.raises(ValueError, match=match):
            metric(codes, factors)


def test_bad_settings_are_a_clear_error(factors):
    codes = _perfect(factors)
    with pytest.raises(ValueError, match="n_bins"):
        mig(codes, factors, n_bins=1)
    with pytest.raises(ValueError, match="batch_size"):
        factorvae_score(codes, factors, batch_size=0)
    with pytest.raises(ValueError, match="test_fraction"):
        dci(codes, factors, test_fraction=1.0)


def test_all_metrics_at_once_are_json_ready_and_put_in_words(factors):
    m = disentanglement_metrics(_perfect(factors), factors, ["a", "b", "c"])
    json.dumps(m)
    assert m["factor_latents"] == {"a": 0, "b": 1, "c": 2}
    assert set(m["mig_per_factor"]) == {"a", "b", "c"} and np.shape(m["normalised_mi"]) == (3, 3)
    assert m["mig"] > 0.95 and m["factorvae_score"] == 1.0 and m["disentanglement_samples"] == N
    rows = {r.key: r for r in metric_rows(m)}
    assert {"mig", "mig_per_factor", "factorvae_score", "dci_disentanglement"} <= set(rows)
    assert rows["mig"].value == f"{m['mig']:.3f}"
    assert "mig" not in {r.key for r in metric_rows({"recon_mse": 0.1, "psnr": 10.0})}
    with pytest.raises(ValueError, match="2 factor names for 3 factors"):
        disentanglement_metrics(_perfect(factors), factors, ["a", "b"])
    # too few samples for DCI's held-out part: left out, said so, the rest still measured
    few = disentanglement_metrics(_perfect(factors)[:5], factors[:5])
    assert few["dci_disentanglement"] is None and few["mig"] is not None
    assert {r.key: r.value for r in metric_rows(few)}["dci_completeness"] == "n/a"


# ----------------------------------------------------------------------------- runs, reports, traversals


@pytest.fixture
def small_sprites(monkeypatch):
    """load_dataset("sprites") with 300 training and 100 test images (the generator's splits, smaller)."""
    from aekit import sprites

    monkeypatch.setitem(sprites.SPLIT_SIZES, "train", 300)
    monkeypatch.setitem(sprites.SPLIT_SIZES, "test", 100)


PARAMS = {"latent_dim": 4, "hidden_dims": (32,), "epochs": 2, "batch_size": 64}


def test_a_run_on_sprites_measures_and_shows_disentanglement(small_sprites, tmp_path):
    from aekit.run import evaluate_run, fit_run

    run = fit_run(tmp_path / "run", "vae", "sprites", PARAMS)
    metrics = json.loads((run.run_dir / "metrics.json").read_text())
    assert metrics["factor_names"] == ["shape", "scale", "orientation", "x", "y"]
    assert 0 <= metrics["mig"] <= 1 and 0 <= metrics["factorvae_score"] <= 1 and 0 <= metrics["dci_completeness"] <= 1
    assert metrics["disentanglement_samples"] == 100 and np.shape(metrics["normalised_mi"]) == (4, 5)
    page = run.report.read_text()
    figures = re.findall(r'data-figure="(\w+)"', page)
    assert "mutual_information" in figures and "factor_traversals" in figures
    assert "Latent traversals per factor" in page and "FactorVAE metric" in page
    result = evaluate_run(run.run_dir, "sprites", limit=60)
    assert result["disentanglement_samples"] == 60 and "dci_completeness" in result


def test_user_data_with_factors_is_measured_too(tmp_path):
    """Disentanglement is measured because the data has factors, whatever its name: an .npz with
    'factors' and 'factor_names' gets the same metrics and report sections (on its held-out part)."""
    from aekit import sprites
    from aekit.run import fit_run

    f = sprites.sample_factors(250, 0)
    path = tmp_path / "shapes.npz"
    np.savez(path, X=sprites.render(f), factors=f, factor_names=np.array(sprites.FACTOR_NAMES))
    run = fit_run(tmp_path / "run", "ae", str(path), PARAMS)
    assert run.metrics["disentanglement_samples"] == 50 and set(run.metrics["mig_per_factor"]) == set(sprites.FACTOR_NAMES)
    assert "factor_traversals" in run.report.read_text()
    plain = tmp_path / "plain.npz"
    np.savez(plain, X=sprites.render(f))
    assert "mig" not in fit_run(tmp_path / "plain", "ae", str(plain), PARAMS, report=False).metrics


def test_traverse_factors_sweeps_the_most_informative_dimension(factors):
    from sklearn.preprocessing import FunctionTransformer

    from aekit.apps import traverse_factors

    # a known code: dimension 0 is factor 1, dimension 1 is factor 0 (times 2); factor 2 is not coded
    X = factors.astype(float)
    codec = FunctionTransformer(lambda X: X[:, [1, 0]] * [1.0, 2.0],
                                lambda Z: np.column_stack([Z[:, 1] / 2.0, Z[:, 0], np.zeros(len(Z))]),
                                check_inverse=False).fit(X)
    rows = traverse_factors(codec, X, factors, ["a", "b", "c"], index=5, steps=4)
    assert [(r.factor, r.dim) for r in rows[:2]] == [("a", 1), ("b", 0)]
    assert rows[0].normalised_mi == pytest.approx(1.0) and rows[2].normalised_mi < 0.05  # (finite-sample bias)
    a = rows[0].images  # (4, 3): factor a sweeps over its 2nd-98th percentile, b stays at sample 5's
    assert a[:, 0] == pytest.approx(np.linspace(*np.percentile(X[:, 0], [2, 98]), 4))
    assert (a[:, 1] == X[5, 1]).all()
    assert rows[0].values == pytest.approx(2 * a[:, 0])
    with pytest.raises(ValueError, match="one row per sample"):
        traverse_factors(codec, X[:10], factors)
