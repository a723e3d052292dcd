"""The commands over a finished run's model, one function each, taking ``(run_dir, data, ...)``
where ``data`` is a dataset name or path and ``split`` defaults to "test" (a user file: all of
it): :func:`encode_run`, :func:`generate_run`, :func:`evaluate_run`, :func:`denoise_run`,
:func:`detect_run`, :func:`impute_run`, :func:`run_codec` / :func:`compress_run` /
:func:`decompress_run`, :func:`search_run`, :func:`interpolate_run`, :func:`compare_pca_run` and
:func:`export_run`."""

from __future__ import annotations

import hashlib
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._utils import atomic_write_bytes
from ..evaluate import evaluate_estimator, psnr_peak
from ..runfolder import (
    DEFAULT_SPLIT,
    EVALUATION_NAME,
    MODEL_NAME,
    data_source,
    in_range,
    load_estimator,
    run_data,
    run_samples,
    training_samples,
    write_json,
)

__all__ = [
    "Compressed", "Denoised", "Detection", "Imputed", "Neighbours", "compare_pca_run", "compress_run",
    "decompress_run", "denoise_run", "detect_run", "encode_run", "evaluate_run", "export_run", "generate_run",
    "impute_run", "interpolate_run", "run_codec", "search_run",
]


def encode_run(run_dir: str | Path, data: str | Path, *, split: str = DEFAULT_SPLIT, limit: int | None = None, data_root=None) -> np.ndarray:
    """Codes (n, latent_dim) of ``data`` (a dataset name or path) under a run's fitted model.
    A conditional model uses the data's labels when it has them, else infers each label."""
    est = load_estimator(run_dir)
    X, y, _ = run_samples(est, data, split, limit, root=data_root)
    if est.capabilities()["conditional"] and y is not None and np.isin(y, est.classes_).all():
        return est.transform(X, y)
    return est.transform(X)


def generate_run(run_dir: str | Path, n: int = 64, *, seed: int = 0, label=None) -> np.ndarray:
    """``n`` samples from a run's generative model (per class for a conditional one: ``label``, or
    every class when None), in the layout the model was trained on."""
    from ..apps import sample_grid

    est = load_estimator(run_dir)
    if not est.capabilities()["generative"]:
        raise ValueError(f"model {type(est).__name__} is not generative; generate needs vae, cvae, hvae or vqvae")
    if est.capabilities()["conditional"]:
        return sample_grid(est, n, y=est.classes_ if label is None else [label], random_state=seed)
    return sample_grid(est, n, random_state=seed)


def evaluate_run(run_dir: str | Path, data: str | Path, split: str = DEFAULT_SPLIT, nll_samples: int = 0,
                 limit: int | None = None, data_root=None, progress: bool = False) -> dict[str, Any]:
    """Evaluate a run's fitted model on ``data`` and write ``run_dir/evaluation.json``.

    The estimator is read with ``aekit.load(run_dir)`` and the data reach its model exactly as in
    its own methods (validated, reshaped and, when the estimator standardizes, standardized); a
    conditional model gets the data's labels.

    Parameters
    ----------
    run_dir : a finished run folder.
    data : a built-in dataset name or a path, as for ``fit_run``.
    split : "test" (a user file: all of it), "train" or "all".
    nll_samples : importance samples K for the NLL (variational models); 0 skips it.
    limit : evaluate on the first ``limit`` samples only.
    data_root : folder of the MNIST-style IDX files, as for ``fit_run``.
    progress : show a progress bar while the NLL is estimated.

    Returns
    -------
    dict : :func:`evaluate_estimator` (``recon_mse``, ``psnr``; for VAEs ``elbo``, ``kl_per_dim``,
        ``active_units``, ...; ``nll`` when K > 0; for data with known factors of variation,
        such as ``sprites``, ``mig``, ``factorvae_score`` and ``dci_*``) plus ``nll_samples``,
        ``data``, ``split``, ``limit`` and ``run_dir``; the same dict is in ``evaluation.json``.
    """
    run_dir = Path(run_dir)
    est = load_estimator(run_dir)
    X, y, _, factors, factor_names = run_data(est, data, split, limit, root=data_root)
    result = evaluate_estimator(est, X, y, nll_samples=nll_samples, factors=factors, factor_names=factor_names,
                                progress=progress)
    result.update({"nll_samples": nll_samples, "data": data_source(data), "split": split, "limit": limit,
                   "run_dir": str(run_dir)})
    write_json(run_dir / EVALUATION_NAME, result)
    return result


@dataclass
class Denoised:
    """What :func:`denoise_run` returns; arrays shaped like the data given."""

    denoised: np.ndarray
    noisy: np.ndarray  # the model's input: the data with noise added, or the data as given
    clean: np.ndarray | None  # the data before the noise (None when none was added)
    psnr_noisy: float | None  # dB, noisy against clean
    psnr_denoised: float | None  # dB, denoised against clean


def denoise_run(run_dir: str | Path, data: str | Path, *, noise: str | None = None, level: float = 0.3, seed: int = 0,
                split: str = DEFAULT_SPLIT, limit: int | None = None, data_root=None) -> Denoised:
    """Denoise ``data`` with a run's model (its reconstruction; Vincent et al. 2008).

    With ``noise`` ("gaussian" (``level`` = std), "masking" or "salt_and_pepper" (``level`` =
    fraction), seeded by ``seed``) the data are taken as clean: noise is added first and the PSNR
    of the noisy and the denoised samples against them is reported. Without, the data are taken
    as noisy already. Data in [0, 1] stay clipped to [0, 1]; PSNR's peak is 1 there, else the
    data's range.
    """
    from ..apps import add_noise, denoise, psnr

    est = load_estimator(run_dir)
    X, _, layout = run_samples(est, data, split, limit, root=data_root)
    unit = float(X.min()) >= 0 and float(X.max()) <= 1
    clip = (0.0, 1.0) if unit else None
    noisy = X if noise is None else add_noise(X, noise, level, random_state=seed, clip=clip)
    out = denoise(est, noisy, clip=clip)
    back = [a.reshape(len(a), *layout) for a in (out, noisy, X)]
    if noise is None:
        return Denoised(back[0], back[1], None, None, None)
    return Denoised(*back, psnr(X, noisy, psnr_peak(X)), psnr(X, out, psnr_peak(X)))


@dataclass
class Detection:
    """What :func:`detect_run` returns."""

    scores: np.ndarray  # (n,) normality scores: higher is more normal (AnomalyDetector.score_samples)
    is_outlier: np.ndarray  # (n,) bool: score below the threshold
    threshold: float
    detector: Any  # the fitted AnomalyDetector


def detect_run(run_dir: str | Path, data: str | Path, *, contamination: float = 0.1, threshold: float | None = None,
               scoring: str = "reconstruction", split: str = DEFAULT_SPLIT, limit: int | None = None, data_root=None) -> Detection:
    """Anomaly scores of ``data`` under a run's model (:class:`aekit.apps.AnomalyDetector` over the
    fitted estimator, which is used as it is).

    ``scoring``: "reconstruction" (minus the mean squared error per value), "latent_knn"
    (minus the mean distance of a sample's code to the codes of its 5 nearest other samples),
    "elbo" (variational models) or "auto" (latent_knn for 500 images or more, else
    reconstruction). Samples scoring below the threshold are outliers: the
    ``contamination`` quantile of the data's own scores, or ``threshold`` when given.
    """
    from ..apps import AnomalyDetector

    if threshold is not None and not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    est = load_estimator(run_dir)
    X, _, _ = run_samples(est, data, split, limit, root=data_root)
    if len(X) < 2:
        raise ValueError(f"{data}: anomaly detection needs at least 2 samples, got {len(X)}")
    det = AnomalyDetector(est, contamination=contamination, scoring=scoring).fit(X)
    scores = det.training_scores_  # the data's own scores (leave-one-out for latent_knn)
    cut = det.threshold_ if threshold is None else float(threshold)
    return Detection(scores, scores < cut, cut, det)


@dataclass
class Imputed:
    """What :func:`impute_run` returns."""

    filled: np.ndarray  # the data with every NaN filled, shaped as given; observed values unchanged
    missing: np.ndarray  # bool, where the data had NaNs


def impute_run(run_dir: str | Path, data: str | Path, *, n_iter: int = 10, strategy: str = "reconstruct",
               seed: int = 0, split: str = DEFAULT_SPLIT, limit: int | None = None, data_root=None) -> Imputed:
    """Fill the NaNs of ``data`` with a run's model (:class:`aekit.apps.AutoencoderImputer` over
    the fitted estimator): a model that handles missing values (``masked``) fills them in one
    pass from each row's observed values; any other starts from each feature's observed mean in
    ``data``, then ``n_iter`` rounds of "reconstruct, overwrite the missing entries";
    ``strategy="sample"`` (vae only) runs the Metropolis-within-Gibbs sampler seeded by
    ``seed``. Only NaNs change."""
    from ..apps import AutoencoderImputer

    est = load_estimator(run_dir)
    X, _, layout = run_samples(est, data, split, limit, allow_nan=True, root=data_root)
    imputer = AutoencoderImputer(est, n_iter=n_iter, strategy=strategy, random_state=seed).fit(X)
    return Imputed(imputer.transform(X).reshape(len(X), *layout), np.isnan(X).reshape(len(X), *layout))


def _model_hash(run_dir: Path) -> str:
    """First 12 hex digits of the SHA-256 of the run's model.safetensors."""
    h = hashlib.sha256()
    with open(run_dir / MODEL_NAME, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:12]


def _codec_tables(run_dir: Path, est):
    """(path, Codec) for every readable codec-tables file of the run's current model."""
    from ..apps import Codec

    for path in sorted(run_dir.glob(f"codec-*bit-{_model_hash(run_dir)}.npz")):
        try:
            yield path, Codec.load(path, est)
        except (ValueError, KeyError, OSError, zipfile.BadZipFile):
            continue  # unreadable tables: refitted by run_codec, skipped by decompress_run


def run_codec(run_dir: str | Path, bits: int = 8):
    """The :class:`aekit.apps.Codec` (arithmetic coder, ``bits`` per code dimension) over a run's model.

    The codec's tables (quantiser ranges and symbol frequencies) belong to the model like its
    weights: they are fitted once on the run's training data and kept in the run folder as
    ``codec-<bits>bit-<hash>.npz``, ``<hash>`` naming the model file they were fitted with, so a
    retrained model never meets stale tables. Streams carry a fingerprint of the tables, not
    the tables, so ``run_dir`` plus a compressed file is all :func:`decompress_run` needs.
    """
    from ..apps import Codec

    run_dir = Path(run_dir)
    est = load_estimator(run_dir)
    if est.capabilities()["conditional"]:
        raise ValueError(f"{type(est).__name__} cannot be used as a codec: decoding needs labels that a stream does not carry")
    path = run_dir / f"codec-{bits}bit-{_model_hash(run_dir)}.npz"
    for found, codec in _codec_tables(run_dir, est):
        if found == path:
            return codec
    codec = Codec(est, bits=bits).fit(training_samples(run_dir, est))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        codec.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return codec


@dataclass
class Compressed:
    """What :func:`compress_run` returns."""

    path: Path
    n_samples: int
    n_bytes: int  # of the file, headers and checksum included
    raw_bytes: int  # of the samples as float32
    bits_per_sample: float
    psnr: float  # dB, the decompressed samples against the originals


def compress_run(run_dir: str | Path, data: str | Path, path: str | Path, *, bits: int = 8, split: str = DEFAULT_SPLIT,
                 limit: int | None = None, data_root=None) -> Compressed:
    """Compress ``data`` with a run's codec (:func:`run_codec`) into the file ``path``; decompress it
    again to measure the PSNR. Read it back with :func:`decompress_run`."""
    from ..apps import psnr

    codec = run_codec(run_dir, bits)
    X, _, _ = run_samples(codec.estimator_, data, split, limit, root=data_root)
    blob = codec.encode(X)
    atomic_write_bytes(path, blob)
    quality = psnr(X, codec.decode(blob), psnr_peak(X))
    return Compressed(Path(path), len(X), len(blob), X.nbytes, 8 * len(blob) / len(X), quality)


def decompress_run(run_dir: str | Path, path: str | Path) -> np.ndarray:
    """The samples (n, *sample shape) in a file written by :func:`compress_run` with this run.

    Raises ValueError for a damaged file or one written with another model or codec."""
    run_dir = Path(run_dir)
    blob = Path(path).read_bytes()
    est = load_estimator(run_dir)
    errors = []
    for _, codec in _codec_tables(run_dir, est):
        try:
            return codec.decode(blob)
        except ValueError as e:  # another bit depth's tables, or a damaged file (every table says so)
            errors.append(str(e))
    if not errors:
        raise FileNotFoundError(f"{run_dir} holds no codec tables for its model (codec-<bits>bit-*.npz); "
                                "files are decompressed with the run they were compressed with")
    raise ValueError(f"cannot decompress {path}: {errors[0]}")


@dataclass
class Neighbours:
    """What :func:`search_run` returns: for each of m queries its k nearest samples of the data."""

    indices: np.ndarray  # (m, k) into the data, nearest first
    distances: np.ndarray  # (m, k)
    labels: np.ndarray | None  # (m, k) the neighbours' labels, when the data has labels
    query_labels: np.ndarray | None  # (m,)


def search_run(run_dir: str | Path, data: str | Path, query: str | Path | None = None, *, index: int | None = None,
               k: int = 10, metric: str = "euclidean", split: str = DEFAULT_SPLIT, limit: int | None = None, data_root=None) -> Neighbours:
    """Nearest neighbours in a run's code space (:class:`aekit.apps.LatentIndex` over ``data``).

    The queries are the samples of ``query`` (a dataset name or path, all of it) or, with
    ``index``, the ``index``-th sample of ``data`` itself (which is then its own nearest
    neighbour). ``metric``: "euclidean" or "cosine".
    """
    from ..apps import LatentIndex

    if query is None and index is None:
        raise ValueError("search needs a query: a dataset or path, or the index of a sample of the data")
    if query is not None and index is not None:
        raise ValueError("search takes a query dataset or the index of a sample of the data, not both")
    est = load_estimator(run_dir)
    X, y, _ = run_samples(est, data, split, limit, root=data_root)
    if index is not None:
        i = in_range(X, index, "index")
        Q, qy = X[i : i + 1], None if y is None else y[i : i + 1]
    else:
        Q, qy, _ = run_samples(est, query, "all", root=data_root)
    idx = LatentIndex(est, metric=metric).fit(X)
    distances, indices = idx.query(Q, k)
    return Neighbours(indices, distances, None if y is None else y[indices], qy)


def interpolate_run(run_dir: str | Path, data: str | Path, a: int, b: int, *, steps: int = 8, method: str = "linear",
                    split: str = DEFAULT_SPLIT, limit: int | None = None, data_root=None) -> np.ndarray:
    """Decoded points (steps, *sample shape) on the path between the codes of samples ``a`` and
    ``b`` of ``data`` (:func:`aekit.apps.interpolate`; ``method`` "linear" or "slerp"). A
    conditional model decodes the whole path with sample ``a``'s label (inferred when the data
    has none)."""
    from ..apps import interpolate

    est = load_estimator(run_dir)
    X, y, _ = run_samples(est, data, split, limit, root=data_root)
    a, b = in_range(X, a, "a"), in_range(X, b, "b")
    label = None
    if est.capabilities()["conditional"]:
        known = y is not None and np.isin(y[a], est.classes_)
        label = y[a] if known else est.predict(X[a : a + 1])[0]
    return interpolate(est, X[a], X[b], steps=steps, method=method, y=label)


def compare_pca_run(run_dir: str | Path, data: str | Path, path: str | Path, *, split: str = DEFAULT_SPLIT,
                    limit: int | None = None, data_root=None) -> dict[str, Any]:
    """Plot a run's 2-D code of ``data`` next to PCA's 2-D projection (:func:`aekit.apps.compare_pca`,
    coloured by label) into the PNG ``path``, and measure both reconstructions at the run's code
    size: the model's, and that of a PCA with ``latent_dim`` components fitted on the run's
    training data (as the model was).

    Returns
    -------
    dict with ``path``, ``latent_dim``, ``components`` (PCA's, at most the data's dimension),
    ``n_samples``, ``autoencoder_mse`` and ``pca_mse`` (mean squared error per value, data units).
    """
    from sklearn.decomposition import PCA

    from ..apps import compare_pca, reconstruction_error
    from ..apps._common import flat

    run_dir = Path(run_dir)
    est = load_estimator(run_dir)
    X, y, _ = run_samples(est, data, split, limit, root=data_root)
    latent_dim = int(est.model_.config.latent_dim)
    X_train = flat(training_samples(run_dir, est))
    components = min(latent_dim, *X_train.shape)
    pca = PCA(components).fit(X_train)
    result = {
        "path": Path(path), "latent_dim": latent_dim, "components": components, "n_samples": len(X),
        "autoencoder_mse": reconstruction_error(est, X), "pca_mse": reconstruction_error(pca, flat(X)),
    }
    title = f"{type(est).__name__} ({latent_dim}-D code) vs PCA on {Path(str(data)).name}"
    compare_pca(est, X, np.zeros(len(X)) if y is None else y, path, title=title)
    return result


def export_run(run_dir: str | Path, output: str | Path, *, format: str = "onnx", opset: int | None = None):
    """Write a run's model for inference elsewhere: ``format="onnx"`` writes ``encoder.onnx`` and
    ``decoder.onnx`` into the folder ``output`` (the estimator's ``to_onnx``: raw data in, codes
    out, and back; ``opset`` defaults to :data:`aekit.export.DEFAULT_OPSET`). Returns
    :class:`aekit.export.OnnxFiles`."""
    if format != "onnx":
        raise ValueError(f"unknown export format {format!r}; the one format is 'onnx'")
    est = load_estimator(run_dir)
    return est.to_onnx(output) if opset is None else est.to_onnx(output, opset=opset)
