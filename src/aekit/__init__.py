"""aekit: every kind of autoencoder, practical.

The public face: scikit-learn estimators, ``load``, datasets; PyTorch models live in
``aekit.models`` (looked up by name through ``aekit.build_model``), losses in ``aekit.losses``,
the training loop in ``aekit.train``.

Names are imported on first use (PEP 562), so ``import aekit`` and the command line start fast;
``from aekit import VAE`` works as usual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._threads import passive_openmp
from ._version import __version__

passive_openmp()  # before torch loads OpenMP: see aekit._threads

# public name -> the module that defines it
_EXPORTS = {
    **dict.fromkeys(
        ["AutoEncoder", "DenoisingAutoEncoder", "SparseAutoEncoder", "ContractiveAutoEncoder", "VAE",
         "ConditionalVAE", "HierarchicalVAE", "IWAE", "VQVAE", "BetaTCVAE", "FactorVAE", "InfoVAE", "VampPriorVAE",
         "MaskedAutoEncoder", "WassersteinAutoEncoder", "RegularizedAutoEncoder", "AdversarialAutoEncoder", "load",
         "estimator_class"],
        "aekit.estimators",
    ),
    **dict.fromkeys(["AnomalyDetector", "AutoencoderImputer", "Codec", "LatentIndex"], "aekit.apps"),
    **dict.fromkeys(["build_model", "model_names"], "aekit._registry"),
    "compare": "aekit.run",
    **dict.fromkeys(["Dataset", "DatasetNotFoundError", "available_datasets", "binarize", "load_dataset"],
                    "aekit.datasets"),
}

__all__ = [
    "__version__", "AutoEncoder", "DenoisingAutoEncoder", "SparseAutoEncoder", "ContractiveAutoEncoder", "VAE",
    "ConditionalVAE", "HierarchicalVAE", "IWAE", "VQVAE", "BetaTCVAE", "FactorVAE", "InfoVAE", "VampPriorVAE",
    "MaskedAutoEncoder", "WassersteinAutoEncoder", "RegularizedAutoEncoder", "AdversarialAutoEncoder", "load",
    "estimator_class",
    "AnomalyDetector", "AutoencoderImputer",
    "Codec", "LatentIndex", "build_model", "model_names", "Dataset", "DatasetNotFoundError", "available_datasets",
    "binarize", "load_dataset", "compare",
]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aekit' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for type checkers and IDEs
    from ._registry import build_model, model_names
    from .apps import AnomalyDetector, AutoencoderImputer, Codec, LatentIndex
    from .datasets import Dataset, DatasetNotFoundError, available_datasets, binarize, load_dataset
    from .run import compare
    from .estimators import (
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
        estimator_class,
        load,
    )
