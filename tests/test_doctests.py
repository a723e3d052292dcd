"""The Examples sections of the public API run as doctests (datasets and evaluate have their own)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "aekit.estimators.families", "aekit.apps.anomaly", "aekit.apps.impute", "aekit.apps.codec", "aekit.apps.search",
    "aekit.apps.denoise", "aekit.apps.generate", "aekit.apps.probe", "aekit.apps.reduce", "aekit.run.fitting",
    "aekit.run.leaderboard", "aekit.report.explore",
    "aekit.losses", "aekit.corruption", "aekit.estimators.base", "aekit.sprites", "aekit._disentangle",
    "aekit.tensorboard",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(name)
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)[:2]
    assert failures == 0
    assert tried > 0 or name in ("aekit.losses", "aekit.corruption")
