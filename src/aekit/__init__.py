"""aekit: every kind of autoencoder, practical.

The public face: scikit-learn estimators, ``load``, datasets; PyTorch models live in
``aekit.models`` (looked up by name through ``aekit.build_model``), losses in ``aekit.losses``,
the training loop in ``aekit.train``.
"""

__version__ = "0.1.0"

from ._registry import build_model, model_names
from .apps import AnomalyDetector, AutoencoderImputer, Codec, LatentIndex
from .datasets import Dataset, DatasetNotFoundError, available_datasets, binarize, load_dataset
from .estimators import (
    VAE,
    VQVAE,
    AutoEncoder,
    ConditionalVAE,
    ContractiveAutoEncoder,
    DenoisingAutoEncoder,
    HierarchicalVAE,
    IWAE,
    SparseAutoEncoder,
    load,
)

__all__ = [
    "__version__",
    "AutoEncoder",
    "DenoisingAutoEncoder",
    "SparseAutoEncoder",
    "ContractiveAutoEncoder",
    "VAE",
    "ConditionalVAE",
    "HierarchicalVAE",
    "IWAE",
    "VQVAE",
    "load",
    "AnomalyDetector",
    "AutoencoderImputer",
    "Codec",
    "LatentIndex",
    "build_model",
    "model_names",
    "Dataset",
    "DatasetNotFoundError",
    "available_datasets",
    "binarize",
    "load_dataset",
]
