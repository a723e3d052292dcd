"""Applications over fitted models, on real data (scikit-learn's digits): every test asserts a
property that breaks when the application is wrong."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from sklearn.decomposition import PCA
from sklearn.impute import KNNImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

import aekit
from aekit.apps import (
    AnomalyDetector,
    AutoencoderImputer,
    Codec,
    LatentIndex,
    add_noise,
    compare_pca,
    denoise,
    denoise_grid,
    image_grid,
    interpolate,
    interpolate_codes,
    knn_accuracy,
    linear_probe,
    precision_at_k,
    psnr,
    reconstruction_error,
    sample_grid,
    traverse,
)

SMALL = {"hidden_dims": (64,), "batch_size": 64, "random_state": 0, "device": "cpu"}


@pytest.fixture(scope="module")
def digits():
    tr, te = aekit.load_dataset("digits"), aekit.load_dataset("digits", split="test")
    return tr.X.reshape(-1, 64), tr.y, te.X.reshape(-1, 64), te.y


@pytest.fixture(scope="module")
def ae(digits):
    return aekit.AutoEncoder(latent_dim=8, epochs=30, **SMALL).fit(digits[0])


@pytest.fixture(scope="module")
def vae(digits):
    return aekit.VAE(latent_dim=4, epochs=20, **SMALL).fit(digits[0])


# --- compression -------------------------------------------------------------------------------


@pytest.mark.parametrize("coder", ["arithmetic", "zlib", "raw"])
def test_codec_round_trip_equals_dequantized_codes_decoded(ae, digits, coder):
    X_train, _, X_test, _ = digits
    codec = Codec(ae, bits=6, coder=coder).fit(X_train)
    blob = codec.encode(X_test)
    assert blob[:4] == b"AEKC"
    np.testing.assert_array_equal(codec._read(blob), codec.quantize(X_test))
    expected = ae.inverse_transform(codec.dequantize(codec.quantize(X_test)))
    np.testing.assert_array_equal(codec.decode(blob), expected)
    # quantisation error is bounded by half a cell per dimension
    Z = ae.transform(X_test)
    cell = (codec.high_ - codec.low_) / (2**6 - 1)
    inside = (Z >= codec.low_) & (Z <= codec.high_)
    assert np.all(np.abs(codec.dequantize(codec.quantize(X_test)) - Z)[inside] <= (cell / 2 + 1e-6)[None].repeat(len(Z), 0)[inside])


def test_codec_fewer_bits_fewer_bytes_and_entropy_coding_beats_packing(ae, digits):
    X_train, _, X_test, _ = digits
    sizes = [len(Codec(ae, bits=b).fit(X_train).encode(X_test)) for b in (2, 4, 8)]
    assert sizes[0] < sizes[1] < sizes[2]
    raw = len(Codec(ae, bits=8, coder="raw").fit(X_train).encode(X_test))
    assert sizes[2] < raw  # the range coder exploits the learned symbol frequencies


def test_codec_rejects_corrupted_truncated_and_foreign_streams(ae, digits):
    X_train, _, X_test, _ = digits
    codec = Codec(ae, bits=5).fit(X_train)
    blob = codec.encode(X_test[:20])
    rng = np.random.default_rng(0)
    for cut in list(range(40)) + list(rng.integers(40, len(blob), 30)):
        with pytest.raises(ValueError):
            codec.decode(blob[:cut])
    for pos in rng.integers(0, len(blob), 60):
        bad = bytearray(blob)
        bad[pos] ^= 1 + int(rng.integers(255))
        with pytest.raises(ValueError):
            codec.decode(bytes(bad))
    with pytest.raises(ValueError, match="different codec"):
        Codec(ae, bits=5).fit(X_train[:500]).decode(blob)
    with pytest.raises(ValueError):
        codec.decode(blob + b"\0")


def test_codec_survives_garbage_payload_with_valid_checksum(ae, digits):
    """Past the checksum, the decoder's own guards must hold: random payloads never crash or hang."""
    X_train, _, X_test, _ = digits
    codec = Codec(ae, bits=4).fit(X_train)
    blob = codec.encode(X_test[:10])
    head_len = 20 + 4 + 2  # magic, version, coder, bits, ndim, fingerprint, n; one shape entry; k
    rng = np.random.default_rng(1)
    for size in (0, 1, 3, 8, 40, 400):
        payload = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        body = blob[:head_len] + struct.pack(">I", len(payload)) + payload
        try:
            out = codec.decode(body + struct.pack(">I", zlib.crc32(body)))
        except ValueError:
            continue
        assert out.shape == (10, 64)


def test_codec_tables_save_and_load(ae, digits, tmp_path):
    X_train, _, X_test, _ = digits
    codec = Codec(ae, bits=6).fit(X_train)
    blob = codec.encode(X_test[:50])
    again = Codec.load(codec.save(tmp_path / "codec.npz"), ae)
    np.testing.assert_array_equal(again.decode(blob), codec.decode(blob))


# --- imputation ----------------------------------------------------------------------------------


def _with_missing(X, rate, seed=0):
    Xm = X.copy()
    Xm[np.random.default_rng(seed).random(X.shape) < rate] = np.nan
    return Xm


def test_imputer_fills_only_nans_and_beats_column_means(digits):
    X_train, _, X_test, _ = digits
    imp = AutoencoderImputer(latent_dim=16, epochs=30, n_iter=5, **SMALL).fit(_with_missing(X_train, 0.25))
    Xm = _with_missing(X_test, 0.25, seed=1)
    out = imp.transform(Xm)
    miss = np.isnan(Xm)
    assert not np.isnan(out).any()
    np.testing.assert_array_equal(out[~miss], Xm[~miss])
    rmse = np.sqrt(((out - X_test)[miss] ** 2).mean())
    means = np.where(miss, np.nanmean(_with_missing(X_train, 0.25), axis=0), Xm)
    rmse_mean = np.sqrt(((means - X_test)[miss] ** 2).mean())
    assert rmse < 0.8 * rmse_mean, (rmse, rmse_mean)


@pytest.mark.slow
def test_default_imputer_beats_knn_on_digits(digits):
    """The default imputer (a masked autoencoder trained on the incomplete data) against
    KNNImputer on held-out digits, half the pixels missing at random. Chosen on a validation split
    of the training digits (RMSE 0.186 vs 0.202 for KNN at 100 epochs); here (seed 0) 0.181 vs 0.204.
    The previous default (an AE trained on mean-filled data, same budget) scores 0.248: it loses."""
    X_train, _, X_test, _ = digits
    Xm_train, Xm_test = _with_missing(X_train, 0.5, seed=3), _with_missing(X_test, 0.5, seed=4)
    miss = np.isnan(Xm_test)

    def rmse(imputer):
        out = imputer.fit(Xm_train).transform(Xm_test)
        np.testing.assert_array_equal(out[~miss], Xm_test[~miss])
        return np.sqrt(((out - X_test)[miss] ** 2).mean())

    knn = rmse(KNNImputer())
    assert rmse(AutoencoderImputer(epochs=100, random_state=0, device="cpu")) < 0.97 * knn


def test_imputer_sampling_strategy_and_pipeline(digits):
    X_train, y_train, X_test, y_test = digits
    imp = AutoencoderImputer("vae", strategy="sample", n_iter=20, latent_dim=8, epochs=20, **SMALL)
    Xm = _with_missing(X_test, 0.25, seed=2)
    out = imp.fit(_with_missing(X_train, 0.25)).transform(Xm)
    miss = np.isnan(Xm)
    np.testing.assert_array_equal(out[~miss], Xm[~miss])
    rmse = np.sqrt(((out - X_test)[miss] ** 2).mean())
    rmse_mean = np.sqrt(((np.nanmean(Xm, axis=0)[None].repeat(len(Xm), 0) - X_test)[miss] ** 2).mean())
    assert rmse < rmse_mean
    pipe = make_pipeline(AutoencoderImputer(epochs=3, **SMALL), LogisticRegression(max_iter=300))
    assert pipe.fit(_with_missing(X_train, 0.25), y_train).score(Xm, y_test) > 0.7
    with pytest.raises(ValueError, match="sample"):
        AutoencoderImputer("ae", strategy="sample", epochs=1).fit(_with_missing(X_train[:50], 0.1))


# --- similarity search ---------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("use_model", [False, True])
def test_latent_index_returns_exact_neighbours(ae, digits, metric, use_model):
    X_train, _, X_test, _ = digits
    index = LatentIndex(ae if use_model else None, metric=metric, batch_size=100).fit(X_train)
    dist, idx = index.query(X_test, k=7)  # scikit-learn's order: distances, then indices
    assert idx.dtype == np.int64 and dist.dtype == np.float32
    d2, i2 = index.kneighbors(X_test[:5], n_neighbors=7)
    np.testing.assert_array_equal(i2, idx[:5])
    np.testing.assert_array_equal(index.kneighbors(X_test[:5], 7, return_distance=False), idx[:5])
    A = (ae.transform(X_train) if use_model else X_train).astype(np.float64)
    Q = (ae.transform(X_test) if use_model else X_test).astype(np.float64)
    if metric == "cosine":
        A /= np.linalg.norm(A, axis=1, keepdims=True)
        Q /= np.linalg.norm(Q, axis=1, keepdims=True)
        D = 1 - Q @ A.T
    else:
        D = np.sqrt(((Q[:, None, :] - A[None]) ** 2).sum(-1))
    expected = np.argsort(D, axis=1, kind="stable")[:, :7]
    np.testing.assert_allclose(dist, np.take_along_axis(D, expected, 1), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(idx, expected)


def test_precision_at_k_by_label(ae, digits):
    X_train, y_train, X_test, y_test = digits
    _, idx = LatentIndex(ae).fit(X_train).query(X_test, k=5)
    p = precision_at_k(idx, y_train, y_test)
    shuffled = precision_at_k(idx, np.random.default_rng(0).permutation(y_train), y_test)
    assert p > 0.85 and shuffled < 0.3


# --- anomaly detection ---------------------------------------------------------------------------


def test_anomaly_detector_flags_planted_noise_images(digits):
    X_train, _, X_test, _ = digits
    det = AnomalyDetector(contamination=0.1, latent_dim=8, epochs=20, n_models=1, **SMALL).fit(X_train)
    assert det.scoring_ == "reconstruction_knn" and len(det.estimators_) == 1
    noise = np.random.default_rng(0).random((40, 64)).astype(np.float32)
    X = np.concatenate([X_test, noise])
    is_outlier = np.r_[np.zeros(len(X_test)), np.ones(len(noise))]
    assert roc_auc_score(is_outlier, -det.score_samples(X)) > 0.9
    # the threshold flags `contamination` of the training scores (k-NN part leave-one-out)
    assert abs((det.training_scores_ < det.offset_).mean() - 0.1) <= 1 / len(X_train)
    assert set(np.unique(det.predict(X))) == {-1, 1}
    np.testing.assert_allclose(det.decision_function(X), det.score_samples(X) - det.threshold_)
    assert (det.predict(noise) == -1).mean() > 0.9


def _one_class_digits(c):
    """Digits one-class split: fit on the training images of class c; the test set's other
    classes are the anomalies. Images (n, 1, 8, 8)."""
    tr, te = aekit.load_dataset("digits"), aekit.load_dataset("digits", split="test")
    return tr.X[tr.y == c], te.X, (te.y != c).astype(int)


def _pca_error(X_fit, X):
    pca = PCA(0.9, random_state=0).fit(X_fit)
    return ((pca.inverse_transform(pca.transform(X)) - X) ** 2).sum(1)


@pytest.mark.slow
def test_default_detector_beats_isolation_forest_and_pca_on_digits_one_class():
    from sklearn.ensemble import IsolationForest

    X_fit, X_test, is_anomaly = _one_class_digits(3)
    det = AnomalyDetector(random_state=0).fit(X_fit)  # the defaults: nothing tuned
    assert det.scoring_ == "reconstruction" and det.estimator_.architecture == "conv"  # few images
    ours = roc_auc_score(is_anomaly, -det.score_samples(X_test))
    flat_fit, flat_test = X_fit.reshape(len(X_fit), -1), X_test.reshape(len(X_test), -1)
    forest = roc_auc_score(is_anomaly, -IsolationForest(random_state=0).fit(flat_fit).score_samples(flat_test))
    pca = roc_auc_score(is_anomaly, _pca_error(flat_fit, flat_test))
    assert ours > max(forest, pca) and ours > 0.99, (ours, forest, pca)


def _planted_dependency_anomalies(seed=0, n_fit=200, n_test=200, n_anomalies=40, noise=0.05):
    """Rows on a 2-D torus in 8 dimensions (cos and sin of t, 2t, s and t + s) plus noise: full
    rank, so no linear subspace holds them. Anomalies keep every feature's marginal
    distribution but break the dependencies between features (each column shuffled on its own)."""
    rng = np.random.default_rng(seed)

    def rows(n):
        t, u = rng.uniform(0, 2 * np.pi, size=(2, n, 1))
        angles = np.concatenate([t, 2 * t, u, t + u], axis=1)  # (n, 4)
        return np.concatenate([np.cos(angles), np.sin(angles)], axis=1) + noise * rng.normal(size=(n, 8))

    X, P = rows(n_fit + n_test), rows(n_anomalies)
    anomalies = np.stack([rng.permutation(P[:, j]) for j in range(P.shape[1])], axis=1)
    X_test = np.concatenate([X[n_fit:], anomalies]).astype(np.float32)
    return X[:n_fit].astype(np.float32), X_test, np.r_[np.zeros(n_test), np.ones(n_anomalies)].astype(int)


@pytest.mark.slow
def test_default_detector_beats_isolation_forest_and_pca_on_broken_dependencies():
    from sklearn.ensemble import IsolationForest

    X_fit, X_test, is_anomaly = _planted_dependency_anomalies()
    det = AnomalyDetector(random_state=0).fit(X_fit)
    assert det.scoring_ == "reconstruction_knn" and len(det.estimators_) == 3
    ours = roc_auc_score(is_anomaly, -det.score_samples(X_test))
    forest = roc_auc_score(is_anomaly, -IsolationForest(random_state=0).fit(X_fit).score_samples(X_test))
    pca = roc_auc_score(is_anomaly, _pca_error(X_fit, X_test))
    assert ours > max(forest, pca) + 0.02, (ours, forest, pca)


def test_latent_knn_scores_distance_to_the_training_codes(digits):
    X_train, _, X_test, _ = digits
    ae = aekit.AutoEncoder(latent_dim=4, epochs=3, **SMALL).fit(X_train)
    det = AnomalyDetector(ae, scoring="latent_knn", n_neighbors=3, contamination=0.1).fit(X_train)
    Z, Zq = ae.transform(X_train), ae.transform(X_test[:20])
    d = np.sqrt(((Zq[:, None, :].astype(np.float64) - Z[None]) ** 2).sum(-1))  # (20, n)
    np.testing.assert_allclose(det.score_samples(X_test[:20]), -np.sort(d, axis=1)[:, :3].mean(1), rtol=1e-5)
    # the threshold comes from leave-one-out training scores: each sample against the others
    d_train = np.sqrt(((Z[:, None, :].astype(np.float64) - Z[None]) ** 2).sum(-1))
    loo = -np.sort(d_train, axis=1)[:, 1:4].mean(1)
    assert det.offset_ == pytest.approx(np.percentile(loo, 10), rel=1e-5)


def test_reconstruction_knn_adds_the_robustly_standardized_error_and_input_distance(digits):
    X_train, _, X_test, _ = digits
    X_train = X_train[:300]
    det = AnomalyDetector(scoring="reconstruction_knn", n_models=1, n_neighbors=3, epochs=2, latent_dim=4, **SMALL).fit(X_train)
    est = det.estimator_
    err = lambda A: (((est.reconstruct(A) - A) / est.scale_) ** 2).mean(1)  # (n,)
    U = lambda A: ((A - est.mean_) / est.scale_).astype(np.float64)  # the models' standardized units
    d_train = np.sqrt(((U(X_train)[:, None] - U(X_train)[None]) ** 2).sum(-1))
    d_test = np.sqrt(((U(X_test[:30])[:, None] - U(X_train)[None]) ** 2).sum(-1))
    knn_train, knn_test = np.sort(d_train, 1)[:, 1:4].mean(1), np.sort(d_test, 1)[:, :3].mean(1)  # training: leave-one-out
    rz = lambda s, ref: (s - np.median(ref)) / np.subtract(*np.percentile(ref, [75, 25]))
    expected = rz(err(X_test[:30]), err(X_train)) + rz(knn_test, knn_train)
    np.testing.assert_allclose(det.score_samples(X_test[:30]), -expected, rtol=1e-3, atol=1e-3)


def test_table_default_sees_rows_far_out_along_the_normal_manifold():
    # normal rows on a line through 6-D space (plus noise); anomalies on the same line, far out:
    # an autoencoder reconstructs them (they are on its manifold), the k-NN distance does not
    rng = np.random.default_rng(0)
    w = rng.normal(size=6)
    line = lambda t: t[:, None] * w + 0.05 * rng.normal(size=(len(t), 6))
    X_fit, normal = line(rng.normal(size=300)), line(rng.normal(size=200))
    far = line(rng.choice([-1, 1], 20) * rng.uniform(3.5, 5, 20))
    X_test, is_anomaly = np.concatenate([normal, far]).astype(np.float32), np.r_[np.zeros(200), np.ones(20)]
    auc = {s: roc_auc_score(is_anomaly, -AnomalyDetector(scoring=s, n_models=1, random_state=0).fit(X_fit.astype(np.float32))
                            .score_samples(X_test)) for s in ("auto", "reconstruction")}
    assert auc["auto"] > 0.95 and auc["auto"] > auc["reconstruction"] + 0.05, auc


def test_auto_scoring_picks_latent_knn_for_many_images():
    X = aekit.load_dataset("digits").X[:600]  # (600, 1, 8, 8)
    det = AnomalyDetector(epochs=1, random_state=0).fit(X)
    assert det.scoring_ == "latent_knn" and len(det.estimators_) == 1
    assert det.estimator_.architecture == "conv" and det.estimator_.hidden_dims == (32, 64)
    assert AnomalyDetector(epochs=1, random_state=0).fit(X.reshape(600, -1)).scoring_ == "reconstruction_knn"


def test_ensemble_members_differ_and_scores_average_their_scaled_errors(digits):
    X_train, _, X_test, _ = digits
    det = AnomalyDetector(n_models=2, scoring="reconstruction", epochs=2, latent_dim=4, **SMALL).fit(X_train)
    a, b = det.estimators_
    assert a.random_state == 0 and b.random_state == 1
    errors = []
    for est in det.estimators_:
        R = est.reconstruct(X_test).astype(np.float64)
        z = (R - X_test) / est.scale_  # the detector measures error in standardized units
        train = ((est.reconstruct(X_train) - X_train) / est.scale_) ** 2
        errors.append((z**2).mean(1) / np.median(train.mean(1)))
    np.testing.assert_allclose(det.score_samples(X_test), -np.mean(errors, axis=0), rtol=1e-4)


@pytest.mark.parametrize("family", ["ae", "denoising", "sparse", "contractive", "vae", "hvae", "vqvae"])
def test_every_family_name_detects_on_images_and_tables(family):
    X = aekit.load_dataset("digits").X[:120]  # (120, 1, 8, 8)
    for data in (X, X.reshape(120, -1)):
        det = AnomalyDetector(family, epochs=1, n_models=1, random_state=0).fit(data)
        s = det.score_samples(data[:5])
        assert s.shape == (5,) and np.isfinite(s).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [({"scoring": "density"}, "scoring"), ({"n_neighbors": 0}, "n_neighbors"), ({"n_models": 0}, "n_models"),
     ({"n_models": "many"}, "n_models"), ({"contamination": 0.7}, "contamination")],
)
def test_anomaly_detector_rejects_bad_settings(kwargs, match):
    X = np.random.default_rng(0).random((20, 4)).astype(np.float32)
    with pytest.raises(ValueError, match=match):
        AnomalyDetector(epochs=1, **kwargs).fit(X)


def test_a_fitted_estimator_cannot_be_an_ensemble(ae, digits):
    with pytest.raises(ValueError, match="n_models"):
        AnomalyDetector(ae, n_models=3).fit(digits[0][:50])


def test_anomaly_detector_elbo_scoring(digits):
    X_train, _, X_test, _ = digits
    det = AnomalyDetector("vae", scoring="elbo", latent_dim=4, epochs=10, n_models=1, **SMALL).fit(X_train)
    noise = np.random.default_rng(1).random((40, 64)).astype(np.float32)
    s = det.score_samples(np.concatenate([X_test, noise]))
    assert roc_auc_score(np.r_[np.zeros(len(X_test)), np.ones(40)], -s) > 0.9
    with pytest.raises(ValueError, match="variational"):
        AnomalyDetector("ae", scoring="elbo").fit(X_train)


_FAST_DETECTOR = {"model_params": {"epochs": 3, "batch_size": 32, "hidden_dims": (8,), "latent_dim": 2, "device": "cpu"}}
# The k-NN scorings (latent_knn; reconstruction_knn, the default for tables) set the threshold on
# leave-one-out training scores (as LocalOutlierFactor with novelty=True), so the training samples,
# scored again with themselves in the index, are flagged less often than `contamination` says:
# the checks that count outliers on the training data fail.
_LOO_THRESHOLD = "threshold set on leave-one-out training scores (novelty semantics, like LOF(novelty=True))"


@parametrize_with_checks(
    [AnomalyDetector(n_models=1, **_FAST_DETECTOR), AnomalyDetector(scoring="reconstruction", n_models=1, **_FAST_DETECTOR),
     AnomalyDetector("vae", scoring="elbo", n_models=1, **_FAST_DETECTOR),
     AnomalyDetector(scoring="latent_knn", n_models=2, **_FAST_DETECTOR)],
    expected_failed_checks=lambda est: {
        # As for the estimators (tests/test_estimators.py): float32 models give results that agree
        # across batch sizes only to ~1 ulp, which this check's rtol=1e-7 rejects.
        "check_methods_subset_invariance": "float32 results differ by ~1 ulp across batch sizes",
        **({"check_outliers_train": _LOO_THRESHOLD, "check_outliers_fit_predict": _LOO_THRESHOLD}
           if est.scoring in ("auto", "latent_knn") else {}),
    },
)
def test_anomaly_detector_sklearn_contract(estimator, check):
    check(estimator)


@parametrize_with_checks([AutoencoderImputer(**_FAST_DETECTOR)])
def test_imputer_sklearn_contract(estimator, check):
    check(estimator)


def test_imputer_keeps_float64_observed_entries_exactly(digits):
    X = digits[0][:300].astype(np.float64) + 1e-9  # not representable in float32
    Xm = _with_missing(X, 0.3)
    out = AutoencoderImputer(epochs=2, **SMALL).fit(Xm).transform(Xm)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out[~np.isnan(Xm)], Xm[~np.isnan(Xm)])


# --- generation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["linear", "slerp"])
def test_interpolation_endpoints_are_the_reconstructions(ae, digits, method):
    X = digits[2]
    path = interpolate(ae, X[0], X[1], steps=6, method=method)
    assert path.shape == (6, 64)
    ends = ae.reconstruct(X[:2])
    np.testing.assert_allclose(path[0], ends[0], atol=1e-5)
    np.testing.assert_allclose(path[-1], ends[1], atol=1e-5)
    assert not np.allclose(path[2], ends[0], atol=1e-3)


def test_slerp_keeps_norms_where_linear_shrinks_them():
    rng = np.random.default_rng(0)
    a = rng.standard_normal(16)
    b = rng.standard_normal(16)
    b *= np.linalg.norm(a) / np.linalg.norm(b)
    slerp = interpolate_codes(a, b, 9, "slerp")
    np.testing.assert_allclose(np.linalg.norm(slerp, axis=1), np.linalg.norm(a), rtol=1e-10)
    assert np.linalg.norm(interpolate_codes(a, b, 9, "linear")[4]) < 0.9 * np.linalg.norm(a)
    c = 3 * b  # unequal norms: the norm moves linearly between them
    norms = np.linalg.norm(interpolate_codes(a, c, 5, "slerp"), axis=1)
    np.testing.assert_allclose(norms, np.linspace(np.linalg.norm(a), np.linalg.norm(c), 5), rtol=1e-10)


def test_traverse_changes_only_the_chosen_dimension(vae, digits):
    x = digits[2][0]
    out = traverse(vae, x, dim=1, values=[-2.0, 0.0, 2.0])
    Z = vae.transform(out)  # re-encoding is approximate; compare decoded codes directly instead
    assert out.shape == (3, 64) and Z.shape == (3, 4)
    z = vae.transform(x[None])[0]
    for v, img in zip([-2.0, 0.0, 2.0], out):
        code = z.copy()
        code[1] = v
        np.testing.assert_allclose(img, vae.inverse_transform(code[None])[0], atol=1e-6)
    with pytest.raises(ValueError, match="dim"):
        traverse(vae, x, dim=4, values=[0.0])


def test_sample_grid_and_class_conditional_sampling(vae, digits, tmp_path):
    assert sample_grid(vae, 5, random_state=0).shape == (5, 64)
    np.testing.assert_array_equal(sample_grid(vae, 3, random_state=1), sample_grid(vae, 3, random_state=1))
    X_train, y_train, _, _ = digits
    cvae = aekit.ConditionalVAE(latent_dim=4, epochs=15, **SMALL).fit(X_train, y_train)
    grid = sample_grid(cvae, 6, y=[0, 1], random_state=0)
    assert grid.shape == (12, 64)
    # samples of class 0 are closer to the class-0 mean image than to the class-1 mean, and back
    m0, m1 = X_train[y_train == 0].mean(0), X_train[y_train == 1].mean(0)
    d0 = ((grid[:6] - m0) ** 2).sum(1) < ((grid[:6] - m1) ** 2).sum(1)
    d1 = ((grid[6:] - m1) ** 2).sum(1) < ((grid[6:] - m0) ** 2).sum(1)
    assert d0.mean() >= 5 / 6 and d1.mean() >= 5 / 6
    with pytest.raises(ValueError, match="not generative"):
        sample_grid(aekit.AutoEncoder(epochs=1, **SMALL).fit(X_train[:100]), 2)
    path = image_grid(grid, tmp_path / "grid.png", ncols=6, scale=2, padding=1)
    with Image.open(path) as im:
        assert im.size == (2 * (6 * 9 + 1), 2 * (2 * 9 + 1))


def _classifier_score(p: np.ndarray) -> float:
    """exp(E_x KL(p(y|x) || p(y))): the Inception-score formula with a digits classifier."""
    py = p.mean(0)
    return float(np.exp((p * (np.log(p + 1e-12) - np.log(py + 1e-12))).sum(1).mean()))


@pytest.mark.slow
def test_cvae_samples_are_the_requested_class_and_score_above_the_vae(digits):
    """Issue 10's conditional generation on digits: samples recognised as the requested class at
    least 90% of the time by a classifier fitted on the real digits, with a classifier score above
    the VAE's at the same budget and above the same CVAE's N(0, I)-prior samples. Measured (seeds
    0-3): accuracy 1.0; scores 7.4-8.1 (fitted codes), 5.6-6.9 (prior codes), 2.0-2.1 (VAE)."""
    X_train, y_train, _, _ = digits
    clf = LogisticRegression(max_iter=3000).fit(X_train, y_train)
    labels = np.repeat(np.arange(10), 30)
    kw = {**SMALL, "latent_dim": 16, "epochs": 30}

    def judged(est, y=None):
        s = est.sample(300, y=y, random_state=0)
        return (clf.predict(s) == labels).mean(), _classifier_score(clf.predict_proba(s))

    acc, score = judged(aekit.ConditionalVAE(**kw).fit(X_train, y_train), labels)
    _, prior_score = judged(aekit.ConditionalVAE(sample_codes="prior", **kw).fit(X_train, y_train), labels)
    _, vae_score = judged(aekit.VAE(**kw).fit(X_train))
    assert acc >= 0.9, acc
    assert score > max(vae_score, prior_score), (score, vae_score, prior_score)


# --- denoising, reduction, probes ----------------------------------------------------------------


def test_denoising_improves_psnr_over_noisy_input(digits, tmp_path):
    X_train, _, X_test, _ = digits
    dae = aekit.DenoisingAutoEncoder(latent_dim=16, noise="gaussian", noise_level=0.3, epochs=30, **SMALL).fit(X_train)
    noisy = add_noise(X_test, "gaussian", 0.3, random_state=0, clip=(0, 1))
    before, after = psnr(X_test, noisy), psnr(X_test, denoise(dae, noisy, clip=(0, 1)))
    assert after > before + 2, (before, after)
    path, rows = denoise_grid(dae, X_test, tmp_path / "denoise.png", noise="masking", level=0.4, n=6,
                              baseline=PCA(10).fit(X_train), image_shape=(8, 8))
    assert path.exists() and list(rows) == ["clean", "noisy", "denoised", "baseline"]


@pytest.mark.parametrize("noise,level", [("gaussian", 0.1), ("masking", 0.25), ("salt_and_pepper", 0.1)])
def test_denoiser_trained_on_a_range_improves_on_light_noise(noise, level, digits):
    """One DAE trained over a range of levels (the default, from 0) serves light noise too: its
    output beats the noisy input it was given (the lightest level of each kind in
    benchmarks/bench_denoise.py). Measured on digits: noisy 21.9, 13.0, 15.3 dB; denoised 23.6,
    19.4, 20.0 dB. The classic DAE (fusion=False, decode(encode(x))) gives 19.8, 16.6, 17.5 dB:
    below its input at gaussian 0.1, where the code cannot carry the detail the noise spared."""
    X_train, _, X_test, _ = digits
    dae = aekit.DenoisingAutoEncoder(latent_dim=16, noise=noise, epochs=20, **SMALL).fit(X_train)
    assert dae.model_.config.noise_level == (0.0, 0.5)
    noisy = add_noise(X_test, noise, level, random_state=0, clip=(0, 1))
    before, after = psnr(X_test, noisy), psnr(X_test, denoise(dae, noisy, clip=(0, 1)))
    assert after > before + 0.5, (before, after)


def test_denoise_is_the_fused_estimate_and_reconstruct_the_code(digits, tmp_path):
    X_train, _, X_test, _ = digits
    noisy = add_noise(X_test[:50], "gaussian", 0.2, random_state=0)
    fused = aekit.DenoisingAutoEncoder(latent_dim=8, epochs=3, **SMALL).fit(X_train)
    code_only = np.asarray(fused.inverse_transform(fused.transform(noisy)))
    np.testing.assert_allclose(fused.reconstruct(noisy), code_only, atol=1e-5)
    assert np.abs(fused.denoise(noisy) - code_only).max() > 1e-3  # the fused estimate also reads the input
    plain = aekit.DenoisingAutoEncoder(latent_dim=8, epochs=3, fusion=False, **SMALL).fit(X_train)
    np.testing.assert_array_equal(plain.denoise(noisy), plain.reconstruct(noisy))
    again = aekit.load(fused.save(tmp_path / "dae.safetensors"))
    assert again.get_params() == fused.get_params() and isinstance(again.noise_level, tuple)
    np.testing.assert_array_equal(again.denoise(noisy), fused.denoise(noisy))
    for bad in ((0.5, 0.1), (0.1, 0.2, 0.3), -0.1, "high"):
        with pytest.raises(ValueError, match="noise_level"):
            aekit.DenoisingAutoEncoder(noise_level=bad, epochs=1).fit(X_train[:20])
    with pytest.raises(ValueError, match="fraction"):
        aekit.DenoisingAutoEncoder(noise="masking", noise_level=(0.1, 1.5), epochs=1).fit(X_train[:20])


def test_autoencoder_never_loses_to_pca_at_a_large_code(digits):
    """The default AE starts at PCA and keeps the best validation weights, so a wide code does
    not lose to PCA (measured at k = 32, 20 epochs: AE 0.0021 vs PCA 0.0026; the plain network,
    linear_part="none", 0.0107 - four times PCA's)."""
    X_train, _, X_test, _ = digits
    pca = reconstruction_error(PCA(32).fit(X_train), X_test)
    ae = aekit.AutoEncoder(latent_dim=32, epochs=20, **SMALL).fit(X_train)
    assert reconstruction_error(ae, X_test) <= pca, (reconstruction_error(ae, X_test), pca)


def test_psnr_matches_definition():
    a = np.zeros((3, 10))
    b = np.full((3, 10), 0.5)
    assert psnr(a, b) == pytest.approx(10 * np.log10(1 / 0.25))
    assert psnr(a, b, data_range=2.0) == pytest.approx(10 * np.log10(4 / 0.25))
    assert psnr(a, a.copy(), reduction="none").tolist() == [100.0] * 3


def test_reduction_error_and_pca_plot(ae, vae, digits, tmp_path):
    X_train, y_train, X_test, _ = digits
    err_ae = reconstruction_error(ae, X_test)
    assert 0 < err_ae < reconstruction_error(PCA(2).fit(X_train), X_test)
    assert reconstruction_error(PCA(8).fit(X_train), X_test) < reconstruction_error(PCA(2).fit(X_train), X_test)
    for est in (ae, vae):  # an 8-D code is shown through its 2 PCs; a 4-D one likewise
        path = compare_pca(est, X_train, y_train, tmp_path / f"{type(est).__name__}.png")
        with Image.open(path) as im:
            assert im.format == "PNG" and im.size[0] > im.size[1]


def test_probes_read_labels_from_codes(ae, digits):
    X_train, y_train, X_test, y_test = digits
    Z_train, Z_test = ae.transform(X_train), ae.transform(X_test)
    assert linear_probe(Z_train, y_train, Z_test, y_test) > 0.8
    assert knn_accuracy(Z_train, y_train, Z_test, y_test) > 0.8
    shuffled = np.random.default_rng(0).permutation(y_train)
    assert linear_probe(Z_train, shuffled, Z_test, y_test) < 0.3


def test_extra_keywords_go_to_model_params_and_survive_clone(digits):
    from sklearn.base import clone

    det = AnomalyDetector("vae", latent_dim=3, epochs=2)
    assert det.get_params()["model_params"] == {"latent_dim": 3, "epochs": 2}
    assert clone(det).get_params()["model_params"] == {"latent_dim": 3, "epochs": 2}
    imp = AutoencoderImputer(epochs=1).set_params(latent_dim=5, n_iter=3)
    assert imp.n_iter == 3 and imp.model_params == {"epochs": 1, "latent_dim": 5}
    imp.fit(_with_missing(digits[0][:200], 0.2))
    assert imp.estimator_.latent_dim == 5 and imp.estimator_.epochs == 1
    with pytest.raises(TypeError, match="unexpected"):
        AnomalyDetector(not_a_parameter=1).fit(digits[0][:50])


def test_a_fitted_estimator_is_used_as_it_is(ae, digits):
    X_train, _, X_test, _ = digits
    det = AnomalyDetector(ae, contamination=0.2).fit(X_test)  # only the k-NN index and threshold are learned
    assert det.estimator_ is ae and det.scoring_ == "reconstruction_knn"
    assert abs((det.training_scores_ < det.threshold_).mean() - 0.2) <= 1 / len(X_test)
    det = AnomalyDetector(ae, scoring="reconstruction", contamination=0.2).fit(X_test)
    assert abs((det.predict(X_test) == -1).mean() - 0.2) <= 1 / len(X_test)
    assert Codec(ae).fit(X_train).estimator_ is ae and LatentIndex(ae).fit(X_train).estimator_ is ae
    imp = AutoencoderImputer(ae).fit(_with_missing(X_test, 0.2))
    assert imp.estimator_ is ae
    unfitted = aekit.AutoEncoder(latent_dim=2, epochs=1, **SMALL)
    assert AnomalyDetector(unfitted).fit(X_train[:100]).estimator_ is not unfitted


def test_image_layout_goes_through_every_application():
    d = aekit.load_dataset("digits")
    X = d.X[:300]  # (300, 1, 8, 8)
    ae = aekit.AutoEncoder(latent_dim=4, epochs=3, **SMALL).fit(X)
    assert Codec(ae, bits=4).fit(X).decode(Codec(ae, bits=4).fit(X).encode(X[:5])).shape == (5, 1, 8, 8)
    det = AnomalyDetector(ae).fit(X)
    assert det.predict(X[:7]).shape == (7,) and det.n_features_in_ == 64
    with pytest.raises(ValueError, match="shape"):
        det.score_samples(X[:, :, :4, :4])
    Xm = X.copy()
    Xm[:, :, 2:5, 2:5] = np.nan
    out = AutoencoderImputer(ae).fit(Xm).transform(Xm)
    assert out.shape == X.shape and not np.isnan(out).any()
    assert LatentIndex(ae).fit(X).query(X[:3], k=2)[1].shape == (3, 2)
    assert interpolate(ae, X[0], X[1], steps=3).shape == (3, 1, 8, 8)
