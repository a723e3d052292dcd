"""scikit-learn estimators over the model families: the shared machinery (``base``) and the
named classes (``families``). Every registered family has an estimator (:func:`estimator_class`)."""

from .base import BaseAutoencoderEstimator, FitSettings, estimator_class, estimator_classes, estimator_params, load
from .families import (
    VAE,
    VQVAE,
    AutoEncoder,
    ConditionalVAE,
    ContractiveAutoEncoder,
    DenoisingAutoEncoder,
    HierarchicalVAE,
    IWAE,
    SparseAutoEncoder,
)

__all__ = [
    "AutoEncoder",
    "BaseAutoencoderEstimator",
    "ConditionalVAE",
    "ContractiveAutoEncoder",
    "DenoisingAutoEncoder",
    "FitSettings",
    "HierarchicalVAE",
    "IWAE",
    "SparseAutoEncoder",
    "VAE",
    "VQVAE",
    "estimator_class",
    "estimator_classes",
    "estimator_params",
    "load",
]
