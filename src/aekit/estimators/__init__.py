"""scikit-learn estimators over the model families: the shared machinery (``base``) and the
named classes (``families``). Every registered family has an estimator (:func:`estimator_class`)."""

from .base import BaseAutoencoderEstimator, FitSettings, estimator_class, estimator_classes, estimator_params, load
from .families import (
    VAE,
    VQVAE,
    AdversarialAutoEncoder,
    AutoEncoder,
    BetaTCVAE,
    ConditionalVAE,
    ContractiveAutoEncoder,
    DenoisingAutoEncoder,
    FactorVAE,
    HierarchicalVAE,
    IWAE,
    InfoVAE,
    MaskedAutoEncoder,
    RegularizedAutoEncoder,
    SparseAutoEncoder,
    VampPriorVAE,
    WassersteinAutoEncoder,
)

__all__ = [
    "AdversarialAutoEncoder",
    "AutoEncoder",
    "BetaTCVAE",
    "BaseAutoencoderEstimator",
    "ConditionalVAE",
    "ContractiveAutoEncoder",
    "DenoisingAutoEncoder",
    "FactorVAE",
    "FitSettings",
    "HierarchicalVAE",
    "IWAE",
    "InfoVAE",
    "MaskedAutoEncoder",
    "RegularizedAutoEncoder",
    "SparseAutoEncoder",
    "VAE",
    "VQVAE",
    "VampPriorVAE",
    "WassersteinAutoEncoder",
    "estimator_class",
    "estimator_classes",
    "estimator_params",
    "load",
]
