"""Shared fixtures: real data (scikit-learn's digits) and small models of every registered family."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

# A model family kept outside the package, loaded the way a user's plugin is (tests/test_plugin.py):
# every registry-wide test below then covers it too. PYTHONPATH carries it to CLI subprocesses.
PLUGINS = str(Path(__file__).parent / "plugins")
sys.path.insert(0, PLUGINS)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [PLUGINS, os.environ.get("PYTHONPATH")]))
os.environ["AEKIT_PLUGINS"] = ",".join(filter(None, [os.environ.get("AEKIT_PLUGINS"), "aekit_toy"]))

from aekit._registry import build_model
from aekit._utils import seeded
from aekit.datasets import load_dataset

# One thread: these models are tiny, and on a shared 2-core machine a second OpenMP thread per
# process makes timings erratic (measured 0.3 s vs 13 s for the same 300 steps under load).
torch.set_num_threads(1)

# Small settings per family so that every test trains in seconds on two CPU cores.
SMALL = {"latent_dim": 4, "hidden_dims": (32,)}
SMALL_CONV = {"latent_dim": 4, "hidden_dims": (8, 16)}
FAMILY_SETTINGS = {
    "vqvae": {"embedding_dim": 2, "codebook_size": 16},  # latent_dim 4 = 2 positions of size 2
    "hvae": {"lower_latent_dims": (4,)},
}


def make_model(name: str, architecture: str = "mlp", seed: int = 0, **overrides):
    """Build registered model ``name`` for 1x8x8 digits with small settings (``overrides`` win),
    initialised from ``seed``."""
    settings = {"input_shape": (1, 8, 8), "architecture": architecture}
    settings.update(SMALL_CONV if architecture == "conv" else SMALL)
    settings.update(FAMILY_SETTINGS.get(name, {}))
    settings.update(overrides)
    with seeded(seed):
        return build_model(name, **settings)


@pytest.fixture(scope="session")
def digits_train() -> tuple[torch.Tensor, torch.Tensor]:
    """Digits training split: X (1437, 1, 8, 8) float32 in [0, 1], y (1437,) int64."""
    d = load_dataset("digits", split="train")
    return torch.as_tensor(d.X), torch.as_tensor(d.y)


@pytest.fixture(scope="session")
def digits_test() -> tuple[torch.Tensor, torch.Tensor]:
    """Digits test split: X (360, 1, 8, 8), y (360,)."""
    d = load_dataset("digits", split="test")
    return torch.as_tensor(d.X), torch.as_tensor(d.y)


@pytest.fixture(scope="session")
def batch(digits_train) -> tuple[torch.Tensor, torch.Tensor]:
    """One small fixed batch of 32 digits and their labels."""
    X, y = digits_train
    return X[:32].clone(), y[:32].clone()


@pytest.fixture
def model_factory():
    """``make_model`` as a fixture, for tests that build models."""
    return make_model
