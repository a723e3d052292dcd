"""A model family in one file of its own, outside the aekit package, for tests/test_plugin.py.

Nothing in aekit names it: the tests load it as a plugin (``AEKIT_PLUGINS=aekit_toy``, set in
conftest.py), and it then gets an estimator, CLI flags, a report and the contract tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aekit.models import AE, AEConfig, option, register


@dataclass
class ToyConfig(AEConfig):
    code_penalty: float = option(0.1, "weight of the squared norm of the code")


@register("toy")
class ToyAE(AE):
    """Toy autoencoder whose code is pulled towards the origin (a plugin test family)."""

    Config = ToyConfig

    def penalties(self, x_in: torch.Tensor, z: torch.Tensor, hidden: list):
        norm = z.pow(2).sum(dim=1)  # (B,)
        return {"code_norm": norm}, self.config.code_penalty * norm
