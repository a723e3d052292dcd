"""Applications over a fitted model, one module each: dimensionality reduction (``reduce``),
feature probes (``probe``), denoising (``denoise``), compression (``codec``), similarity search
(``search``), anomaly detection (``anomaly``), imputation (``impute``) and generation
(``generate``). Each is a thin function or scikit-learn estimator over an aekit estimator (most
also accept PCA, the baseline they are measured against)."""

from ._images import image_grid
from .anomaly import AnomalyDetector
from .codec import Codec
from .denoise import add_noise, denoise, denoise_grid, psnr
from .generate import FactorTraversal, interpolate, interpolate_codes, sample_grid, traverse, traverse_factors
from .impute import AutoencoderImputer
from .probe import knn_accuracy, linear_probe
from .reduce import compare_pca, error_vs_code_size, reconstruction_error
from .search import LatentIndex, precision_at_k

__all__ = [
    "AnomalyDetector",
    "AutoencoderImputer",
    "Codec",
    "FactorTraversal",
    "LatentIndex",
    "add_noise",
    "compare_pca",
    "denoise",
    "denoise_grid",
    "error_vs_code_size",
    "image_grid",
    "interpolate",
    "interpolate_codes",
    "knn_accuracy",
    "linear_probe",
    "precision_at_k",
    "psnr",
    "reconstruction_error",
    "sample_grid",
    "traverse",
    "traverse_factors",
]
