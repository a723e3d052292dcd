"""The run report: which figures each model family gets, and the page in a real headless browser
(Debian's chromium: ``apt-get install -y chromium``)."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from aekit._registry import get_model_class, model_names
from aekit.report import build_report
from aekit.run import fit_run

SMALL = {"latent_dim": 4, "hidden_dims": (32,), "epochs": 2}
FAMILY = {"hvae": {"lower_latent_dims": (4,)}, "vqvae": {"embedding_dim": 2, "codebook_size": 16}}
BASE = {"training_curves", "reconstructions", "latent_space", "interpolations"}


def _figures(text: str) -> list[str]:
    return re.findall(r'data-figure="(\w+)"', text)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A finished run of every registered family, on 200 digits."""
    root = tmp_path_factory.mktemp("runs")
    return {name: fit_run(root / name, name, params={**SMALL, **FAMILY.get(name, {})}, limit=200).run_dir
            for name in model_names()}


@pytest.mark.parametrize("name", model_names())
def test_report_has_the_figures_of_its_family(runs, name):
    text = (runs[name] / "report.html").read_text()
    model = get_model_class(name)
    expected = set(BASE)
    if model.generative:
        expected.add("samples")
    if hasattr(model, "log_weight"):  # VAE-like: per-dimension KL
        expected.add("kl_per_dim")
    if hasattr(model, "encode_indices"):  # VQ-VAE
        expected.add("codebook_usage")
    assert sorted(_figures(text)) == sorted(expected)
    assert "PCA projection of the 4-D code" in text  # latent_dim 4: projected, and said so
    # self-contained: every image embedded, nothing fetched from elsewhere
    assert all(src.startswith("data:image/png;base64,") for src in re.findall(r'src="([^"]*)"', text))
    assert not re.search(r'(href|src)="(https?:|//)', text)


def test_conditional_samples_one_row_per_class(runs):
    text = (runs["cvae"] / "report.html").read_text()
    assert "ten per class (one class per row)" in text


def _with_kl(run, kl_per_dim, inactive):
    """Rewrite a run's metrics with these per-dimension KLs (active by variance: all)."""
    metrics = json.loads((run / "metrics.json").read_text())
    metrics.update(kl_per_dim=kl_per_dim, inactive_dims=inactive, active_units=len(kl_per_dim),
                   posterior_collapse=False, posterior_collapse_message="")
    (run / "metrics.json").write_text(json.dumps(metrics))
    return build_report(run)


def test_posterior_collapse_warning(runs, tmp_path):
    run = tmp_path / "vae"
    shutil.copytree(runs["vae"], run)
    healthy = _with_kl(run, [1.3, 0.5, 0.9, 0.2], []).read_text()
    assert 'class="warning"' not in healthy and "no posterior collapse" in healthy
    text = _with_kl(run, [1.3, 0.002, 0.9, 0.0004], [1, 3]).read_text()
    warnings = re.findall(r'<div class="warning" role="alert">(.*?)</div>', text)
    assert len(warnings) == 2  # in the header and in the KL section
    assert all("2 of 4 latent dimensions" in w and "dimensions 1, 3" in w for w in warnings)


def test_tabular_data_gets_feature_plots(tmp_path):
    """Tables are shown as tables: features standardized and named by the CSV's header, errors per
    feature, no image-only sections (samples, interpolations) and no PSNR headline."""
    rng = np.random.default_rng(0)
    table = rng.normal(size=(120, 6)) @ rng.normal(size=(6, 6))
    table[:, 5] = table[:, 5] * 1000 + 5000  # a feature on a much larger scale
    path = tmp_path / "table.csv"
    np.savetxt(path, table, delimiter=",", header="age,height,weight,pulse,label_free,income", comments="")
    run = fit_run(tmp_path / "run", "vae", path, params={**SMALL, "latent_dim": 2}).run_dir
    text = (run / "report.html").read_text()
    assert set(_figures(text)) == {"training_curves", "reconstructions", "latent_space", "kl_per_dim"}
    assert "each feature standardized by its mean and standard deviation" in text
    largest = re.search(r"Largest errors: (.*?) \(std units\)", text).group(1)
    assert all(name in "age height weight pulse label_free income".split() for name in re.findall(r"([a-z_]+) [\d.]+", largest))
    assert "Interpolations" not in text and "Samples" not in text and "PSNR" not in text
    assert "held-out 20% of table.csv" in text


# -- in a real browser --------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Injected at the top of <head>: records errors (scripts, resources) and console.error calls; once the
# page has loaded, writes every image's name and decoded size into an element that --dump-dom shows.
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", e => __errors.push(String(e.message || (e.target && e.target.outerHTML.slice(0, 80)))), true);
const __consoleError = console.error;
console.error = (...a) => { __errors.push(a.join(" ")); __consoleError(...a); };
window.addEventListener("load", () => {
  const images = [...document.images].map(i => ({name: i.dataset.figure, width: i.naturalWidth, height: i.naturalHeight, complete: i.complete}));
  const warnings = [...document.querySelectorAll(".warning")].map(w => w.getBoundingClientRect().height);
  const out = document.createElement("pre");
  out.id = "aekit-probe";
  out.textContent = JSON.stringify({images, warnings, errors: __errors});
  document.body.appendChild(out);
});
</script>"""


def _in_browser(html_path, tmp_path) -> tuple[dict, str]:
    page = tmp_path / "probe.html"
    page.write_text(html_path.read_text().replace("<head>", "<head>" + PROBE, 1))
    proc = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )
    found = re.search(r'<pre id="aekit-probe">(.*?)</pre>', proc.stdout, re.DOTALL)
    assert found, f"the page did not finish loading (chromium exit {proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1))), proc.stderr


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium: apt-get update && apt-get install -y chromium")
@pytest.mark.parametrize("name", ["vae", "cvae", "vqvae"])
def test_report_renders_in_chromium(runs, name, tmp_path):
    html_path = runs[name] / "report.html"
    result, stderr = _in_browser(html_path, tmp_path)
    assert result["errors"] == []
    assert not [line for line in stderr.splitlines() if ":CONSOLE" in line]  # nothing logged by the page
    images = {i["name"]: i for i in result["images"]}
    assert set(images) == set(_figures(html_path.read_text()))
    for figure, info in images.items():  # every figure decoded into a real picture
        assert info["complete"] and info["width"] >= 200 and info["height"] >= 100, (figure, info)


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium: apt-get update && apt-get install -y chromium")
def test_collapse_warning_is_visible_in_chromium(runs, tmp_path):
    run = tmp_path / "vae"
    shutil.copytree(runs["vae"], run)
    result, _ = _in_browser(_with_kl(run, [1.0, 0.001, 1.0, 1.0], [1]), tmp_path)
    assert len(result["warnings"]) == 2 and min(result["warnings"]) > 10  # header and KL section, laid out
