"""A new model family is one file: tests/plugins/aekit_toy.py (loaded by conftest.py through
AEKIT_PLUGINS, as a user's plugin would be) gets, with no edit anywhere in aekit, a registry
entry, an estimator (scikit-learn's checks run on it in test_estimators.py), CLI flags, training
through ``aekit fit``, save/load, a report and the registry's contract tests (test_contract.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import aekit
from aekit._registry import MODELS, model_names
from aekit.estimators import estimator_class, estimator_classes

SRC = Path(aekit.__file__).parent


def _aekit(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "aekit.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)


def test_the_family_comes_from_its_own_file_only():
    assert "toy" in model_names() and MODELS["toy"].__module__ == "aekit_toy"
    mentions = [p for p in SRC.rglob("*.py") if re.search(r"\btoy", p.read_text(), re.IGNORECASE)]
    assert mentions == []  # aekit itself was not edited for it
    assert "toy" in estimator_classes()  # so test_estimators.py runs scikit-learn's checks on it
    est_cls = estimator_class("toy")
    assert est_cls.__name__ == "ToyEstimator" and "code_penalty" in est_cls().get_params()
    assert "Weight of the squared norm of the code." in est_cls.__doc__  # docstring Parameters, from the Config


def test_estimator_fits_saves_and_loads(tmp_path):
    X = aekit.load_dataset("digits").X[:200].reshape(200, 64)
    est = estimator_class("toy")(latent_dim=3, hidden_dims=(16,), epochs=2, code_penalty=0.5, random_state=0).fit(X)
    assert {"recon", "code_norm"} <= set(est.history_[-1])
    same = aekit.load(est.save(tmp_path / "toy.safetensors"))
    assert type(same) is type(est) and same.get_params() == est.get_params()
    np.testing.assert_array_equal(same.transform(X[:5]), est.transform(X[:5]))


def test_cli_lists_documents_trains_and_reports_the_family(tmp_path):
    listed = _aekit("list-models")
    assert listed.returncode == 0, listed.stderr
    line = next(ln for ln in listed.stdout.splitlines() if ln.startswith("toy "))
    assert "ToyEstimator" in line and "pulled towards the origin" in line

    helped = _aekit("fit", "--help")
    assert "--code-penalty X" in helped.stdout and "weight of the squared norm of the code" in helped.stdout

    run = tmp_path / "toy"
    fit = _aekit("fit", "--model", "toy", "--data", "digits", "--epochs", "2", "--limit", "200", "--latent-dim", "2",
                 "--code-penalty", "0.5", "--out", str(run), "--quiet")
    assert fit.returncode == 0, fit.stderr
    assert (run / "report.html").is_file() and "latent_space" in (run / "report.html").read_text()
    est = aekit.load(run)
    assert est.code_penalty == 0.5 and est.model_.config.code_penalty == 0.5

    wrong = _aekit("fit", "--model", "ae", "--code-penalty", "1", "--out", str(tmp_path / "x"))
    assert wrong.returncode == 2 and "--code-penalty does not apply to model 'ae'" in wrong.stderr


def test_entry_point_plugins_are_found(tmp_path):
    """The other plugin route: an installed distribution declaring the ``aekit.models`` entry point."""
    (tmp_path / "aekit_toy2.py").write_text(
        "from aekit.models import AE, register\n\n\n"
        "@register('toy2')\nclass Toy2(AE):\n    \"\"\"Second toy family, from an entry point.\"\"\"\n"
    )
    dist = tmp_path / "aekit_toy2-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: aekit-toy2\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[aekit.models]\ntoy2 = aekit_toy2\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ["PYTHONPATH"]]),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    out = _aekit("list-models", env=env)
    assert out.returncode == 0, out.stderr
    names = [ln.split()[0] for ln in out.stdout.splitlines()]
    assert "toy2" in names and "toy" in names


def test_a_missing_plugin_is_a_clear_error(tmp_path):
    env = {**os.environ, "AEKIT_PLUGINS": "no_such_plugin_module", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    out = _aekit("fit", "--model", "ae", "--out", str(tmp_path / "r"), "--epochs", "1", env=env)
    assert out.returncode == 2 and "no_such_plugin_module" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("flag", ["variational", "generative", "conditional", "quantised", "hierarchical", "adversarial"])
def test_capabilities_of_the_plugin_are_inherited_declarations(flag):
    assert estimator_class("toy").capabilities()[flag] is False  # an AE's, declared once on the model classes
