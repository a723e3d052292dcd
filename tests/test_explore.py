"""The latent explorer: the decoder as a dense chain (every family, every activation), the page's
data, the run integration (report link, ``aekit explore``), and the page in a real browser
(Playwright driving the system's Chromium): no console errors, live decoding whose pixels match
the Python decoder within 1/255, sliders, class choice, tables, and the grid fallback."""

from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np
import pytest
import torch
from conftest import make_model
from helpers import expect_cli_error
from torch import nn

from aekit import VAE, AutoEncoder, ConditionalVAE, HierarchicalVAE, cli
from aekit._registry import model_names
from aekit.datasets import load_dataset
from aekit.nn import activation_names
from aekit.report import explorer_html
from aekit.report.decoder_chain import (
    ACTIVATIONS,
    UnsupportedDecoder,
    activation,
    dense_chain,
)
from aekit.run import fit_run

SMALL = {"hidden_dims": (32,), "epochs": 3, "batch_size": 32, "random_state": 0}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits"), load_dataset("digits", split="test")


def _payload(page: str) -> dict:
    found = re.search(r'<script type="application/json" id="aekit-data">(.*?)</script>', page, re.DOTALL)
    return json.loads(found.group(1))


# -- the decoder as a dense chain -----------------------------------------------------------------


@pytest.mark.parametrize("name", model_names())
def test_dense_chain_reproduces_every_mlp_decoder(name):
    model = make_model(name, seed=1).eval()
    n_classes = model.config.n_classes if model.conditional else 0
    chain = dense_chain(model, n_classes)
    z = 2 * torch.randn(16, model.config.latent_dim, generator=torch.Generator().manual_seed(3))
    y = torch.arange(16) % n_classes if n_classes else None
    with torch.no_grad():
        expected = model.decode(z, y).reshape(16, -1).numpy()
    got = chain(z.numpy(), None if y is None else y.numpy())
    assert np.abs(got - expected).max() < 1e-5
    assert chain.cond_dim == n_classes and chain.out_dim == 64


@pytest.mark.parametrize("name", ["ae", "vae"])
def test_a_convolutional_decoder_is_no_dense_chain(name):
    with pytest.raises(UnsupportedDecoder, match="ConvTranspose2d"):
        dense_chain(make_model(name, architecture="conv"))


def test_the_chain_holds_the_decoder_weights():
    model = make_model("ae")
    chain = dense_chain(model)
    assert chain.n_params == sum(p.numel() for p in model.decoder.parameters())
    linear = [s for s in chain.steps if s["op"] == "linear"]
    np.testing.assert_array_equal(linear[0]["weight"], model.decoder.hidden[0].weight.detach().numpy())


def test_a_hierarchical_decoder_walks_down_through_prior_means():
    chain = dense_chain(make_model("hvae"))
    assert [s for s in chain.steps if s["op"] == "slice"] == [{"op": "slice", "start": 0, "stop": 4}]  # the mean half


def test_every_activation_of_the_mlp_table_is_reproduced():
    assert set(ACTIVATIONS) == set(activation_names())
    for name in [*activation_names(), None]:
        model = make_model("ae", activation=name, hidden_dims=(16, 8))
        chain = dense_chain(model)
        z = 4 * torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            expected = model.decode(z).reshape(32, -1).numpy()
        assert np.abs(chain(z.numpy()) - expected).max() < 1e-5, name


def test_a_decoder_with_other_layers_is_refused():
    model = make_model("ae")
    model.decoder.hidden.append(nn.Linear(32, 32))  # a layer forward never calls is fine...
    dense_chain(model)
    model.decoder.acts[0] = nn.Hardtanh()  # ...one it calls, which the chain cannot express, is not
    with pytest.raises(UnsupportedDecoder, match="Hardtanh"):
        dense_chain(model)


# -- the page's data ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vae3(digits):
    train, _ = digits
    return VAE(latent_dim=3, **SMALL).fit(train.X)


def test_page_maps_a_pca_projection_it_can_invert(vae3, digits):
    _, test = digits
    page = explorer_html(vae3, test.X, test.y, max_points=200)
    d = _payload(page)
    assert d["n_points"] == 200 and len(d["indices"]) == 200 and d["latent_dim"] == 3
    assert "PCA projection of the 3-D code" in page
    codes = np.frombuffer(_bytes(d["codes"]), "<f4").reshape(200, 3)
    np.testing.assert_allclose(codes, vae3.transform(test.X[d["indices"]]), atol=1e-6)
    positions = np.frombuffer(_bytes(d["positions"]), "<f4").reshape(200, 2)
    mean, comps = np.array(d["projection"]["mean"]), np.array(d["projection"]["components"])
    np.testing.assert_allclose(positions, (codes - mean) @ comps.T, atol=1e-4)  # map = projection of the codes
    assert np.allclose(comps @ comps.T, np.eye(2), atol=1e-6)  # so a map point maps back onto that plane
    assert d["decoder"] is not None and d["grid"] is None and d["sliders"] is not None
    assert d["label_names"] == [str(c) for c in range(10)] and len(d["labels"]) == 200
    assert "http" not in page and "<script src" not in page  # self-contained


def _bytes(b64: str) -> bytes:
    import base64

    return base64.b64decode(b64)


def test_two_d_code_is_the_map_itself(digits):
    train, test = digits
    ae = AutoEncoder(latent_dim=2, **SMALL).fit(train.X)
    d = _payload(page := explorer_html(ae, test.X, test.y))
    assert "the 2-D code itself" in page
    assert d["projection"]["components"] == [[1.0, 0.0], [0.0, 1.0]] and d["sliders"] is None  # sliders: VAEs only


def test_conv_decoder_falls_back_to_a_grid_of_python_decodings(digits):
    train, test = digits
    ae = AutoEncoder(latent_dim=3, hidden_dims=(8, 16), architecture="conv", epochs=2, random_state=0).fit(train.X)
    page = explorer_html(ae, test.X, test.y, max_points=100)
    d = _payload(page)
    assert d["decoder"] is None and "cannot run in the page" in page
    g = d["grid"]["size"]
    values = np.frombuffer(_bytes(d["grid"]["values"]), np.uint8).reshape(g, g, 64)
    x0, x1, y0, y1 = d["extent"]
    gx, gy = 3, g - 2  # node (column 3, row g-2)
    p = np.array([x0 + gx / (g - 1) * (x1 - x0), y0 + gy / (g - 1) * (y1 - y0)])
    z = np.array(d["projection"]["mean"]) + p @ np.array(d["projection"]["components"])
    expected = np.round(np.clip(ae.inverse_transform(z[None].astype(np.float32)), 0, 1) * 255).reshape(64)
    assert np.abs(values[gy, gx].astype(int) - expected).max() <= 1


def test_bad_arguments(vae3, digits):
    _, test = digits
    with pytest.raises(ValueError, match="max_points"):
        explorer_html(vae3, test.X, max_points=1)
    with pytest.raises(ValueError, match="labels for"):
        explorer_html(vae3, test.X, test.y[:5])
    with pytest.raises(ValueError, match="image_shape"):
        explorer_html(vae3, test.X, image_shape=(7, 7))


# -- a run folder: the report links to the explorer; aekit explore ---------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return fit_run(tmp_path_factory.mktemp("runs") / "vae", "vae",
                   params={"latent_dim": 2, "hidden_dims": (32,), "epochs": 2}, limit=200).run_dir


def test_report_links_to_the_explorer_written_next_to_it(run):
    report = (run / "report.html").read_text()
    assert '<a class="link" href="explorer.html">Open the latent explorer</a>' in report
    page = (run / "explorer.html").read_text()
    assert "VAE on digits: latent explorer" in page and "rebuild with aekit explore RUN_DIR" in page
    assert _payload(page)["n_points"] == 200  # the run's evaluation data (limit 200)


def test_cli_explore(run, tmp_path, capsys):
    out = tmp_path / "page.html"
    assert cli.main(["explore", str(run), "-o", str(out), "--data", "digits", "--split", "train", "--limit", "90",
                     "--points", "50"]) == 0
    assert capsys.readouterr().out.strip() == f"explorer: {out.resolve().as_uri()}"
    d = _payload(out.read_text())
    assert d["n_points"] == 50 and max(d["indices"]) < 90
    expect_cli_error(capsys, ["explore", str(run), "-o", str(tmp_path / "page.png")])
    expect_cli_error(capsys, ["explore", str(tmp_path)])  # not a run folder


def test_cli_explore_help_explains_every_option(capsys):
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command").choices["explore"]
    assert sub.description and not [a.dest for a in sub._actions if a.dest != "help" and not (a.help or "").strip()]


# -- in a real browser ----------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
# scripts/test.sh sets this when it has Chromium: the browser tests must then run, never skip
REQUIRED = os.environ.get("AEKIT_BROWSER_TESTS") == "required"


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    missing = [what for what, ok in (("playwright (pip install playwright)", sync_playwright is not None),
                                     ("chromium (apt-get install -y chromium)", CHROMIUM is not None)) if not ok]
    if missing:
        (pytest.fail if REQUIRED else pytest.skip)(f"the browser tests need {' and '.join(missing)}")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


class Page:
    """One explorer page open in Chromium, with every console message and page error recorded."""

    def __init__(self, browser, html: str, tmp_path):
        path = tmp_path / "explorer.html"
        path.write_text(html)
        self.messages: list[str] = []
        self.page = browser.new_page(viewport={"width": 1200, "height": 1000})
        self.page.on("console", lambda m: self.messages.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.messages.append(f"pageerror: {e}"))
        self.page.goto(path.as_uri())
        self.map = self.page.locator("#map").bounding_box()

    def hover(self, x: float, y: float) -> dict:
        """Move the pointer to (x, y) in map pixels; the page's state afterwards."""
        self.page.mouse.move(self.map["x"] + x, self.map["y"] + y)
        return self.state()

    def hover_sample(self, i: int) -> dict:
        return self.hover(*self.page.evaluate(f"aekitExplorer.screenPosition({i})"))

    def state(self) -> dict:
        return self.page.evaluate("JSON.parse(JSON.stringify(aekitExplorer.state))")

    def pixels(self, canvas: str) -> np.ndarray:
        """The canvas's grey levels (its red channel), (h, w) ints."""
        data = self.page.evaluate(f"""(() => {{ const c = document.getElementById("{canvas}");
            return [c.width, c.height, Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data)]; }})()""")
        w, h, rgba = data
        return np.asarray(rgba).reshape(h, w, 4)[..., 0]


def _expected_pixels(est, z, y=None) -> np.ndarray:
    """What the page should draw for code z: the Python decoder's output as grey levels."""
    x = est.inverse_transform(np.asarray([z], np.float32), None if y is None else [y])
    return np.round(np.clip(x, 0, 1) * 255).reshape(8, 8).astype(int)


def test_live_decoding_matches_the_python_decoder(browser, vae3, digits, tmp_path):
    _, test = digits
    page = Page(browser, explorer_html(vae3, test.X, test.y, max_points=300), tmp_path)
    first = page.hover(40, 470)
    a = page.pixels("decoded")
    second = page.hover(470, 60)
    b = page.pixels("decoded")
    assert first["mode"] == second["mode"] == "space"
    assert np.abs(a.astype(int) - b).sum() > 64  # two places, two different decodings
    for state, pixels in ((first, a), (second, b)):
        assert np.abs(pixels.astype(int) - _expected_pixels(vae3, state["shown_z"])).max() <= 1  # within 1/255
    # a point of empty space is the code on the PCA plane the page states
    d = _payload(explorer_html(vae3, test.X, test.y, max_points=300))
    x0, x1, y0, y1 = d["extent"]
    p = np.array([x0 + 470 / 520 * (x1 - x0), y0 + (1 - 60 / 520) * (y1 - y0)])
    z = np.array(d["projection"]["mean"]) + p @ np.array(d["projection"]["components"])
    np.testing.assert_allclose(second["shown_z"], z, atol=2e-3 * np.abs(z).max())

    # hovering a sample shows it, and decodes its code: its reconstruction
    state = page.hover_sample(7)
    i = d["indices"][7]
    assert state["mode"] == "sample" and state["index"] == 7
    assert np.abs(page.pixels("sample") - np.round(test.X[i].reshape(8, 8) * 255)).max() <= 0.5
    recon = np.round(np.clip(vae3.reconstruct(test.X[i : i + 1]), 0, 1) * 255).reshape(8, 8)
    assert np.abs(page.pixels("decoded") - recon).max() <= 1
    assert page.messages == []


def test_sliders_traverse_the_shown_code(browser, vae3, digits, tmp_path):
    _, test = digits
    page = Page(browser, explorer_html(vae3, test.X, test.y, max_points=300), tmp_path)
    page.hover_sample(3)
    before = page.state()["shown_z"]
    page.page.mouse.down()  # click where the pointer is: pin the sample
    page.page.mouse.up()
    page.hover(20, 20)  # pinned: moving away changes nothing
    assert page.state()["shown_z"] == before
    page.page.evaluate("""(() => { const s = document.querySelector('#sliders input[data-dim="1"]');
        s.value = 2.5; s.dispatchEvent(new Event("input")); })()""")
    after = page.state()
    assert after["mode"] == "traversal" and after["pinned"]
    assert after["shown_z"][1] == pytest.approx(2.5, abs=0.02) and after["shown_z"][0] == pytest.approx(before[0])
    assert np.abs(page.pixels("decoded") - _expected_pixels(vae3, after["shown_z"])).max() <= 1
    assert page.messages == []


def test_activations_in_javascript_match_torch(browser, vae3, digits, tmp_path):
    _, test = digits
    page = Page(browser, explorer_html(vae3, test.X[:20]), tmp_path)
    x = np.linspace(-12, 12, 241)
    cases = [("relu", {}), ("leaky_relu", {"negative_slope": 0.2}), ("elu", {"alpha": 0.7}),
             ("gelu", {"approximate": "none"}), ("gelu", {"approximate": "tanh"}), ("silu", {}), ("tanh", {}),
             ("sigmoid", {}), ("softplus", {"beta": 1.5, "threshold": 20.0})]
    for name, params in cases:
        got = page.page.evaluate(f"{x.tolist()}.map(v => aekitExplorer.activation({json.dumps(name)}, v, "
                                 f"{json.dumps(params)}))")
        np.testing.assert_allclose(got, activation(name, x, **params), atol=3e-7, err_msg=name)


def test_conditional_model_decodes_with_the_chosen_class(browser, digits, tmp_path):
    train, test = digits
    cvae = ConditionalVAE(latent_dim=2, **SMALL).fit(train.X, train.y)
    page = Page(browser, explorer_html(cvae, test.X, test.y, max_points=200), tmp_path)
    state = page.hover(300, 200)
    assert np.abs(page.pixels("decoded") - _expected_pixels(cvae, state["shown_z"], state["cls"])).max() <= 1
    page.page.select_option("#class", "4")
    state = page.state()
    assert state["cls"] == 4
    assert np.abs(page.pixels("decoded") - _expected_pixels(cvae, state["shown_z"], 4)).max() <= 1
    assert page.messages == []


def test_hierarchical_model_decodes_in_the_page(browser, digits, tmp_path):
    train, test = digits
    hvae = HierarchicalVAE(latent_dim=2, lower_latent_dims=(4,), **SMALL).fit(train.X)
    page = Page(browser, explorer_html(hvae, test.X, test.y, max_points=100), tmp_path)
    state = page.hover(150, 380)
    assert np.abs(page.pixels("decoded") - _expected_pixels(hvae, state["shown_z"])).max() <= 1
    assert page.messages == []


def test_grid_fallback_shows_the_decoding_of_the_node_it_names(browser, digits, tmp_path):
    train, test = digits
    ae = AutoEncoder(latent_dim=3, hidden_dims=(8, 16), architecture="conv", epochs=2, random_state=0).fit(train.X)
    page = Page(browser, explorer_html(ae, test.X, test.y, max_points=100), tmp_path)
    a = page.hover(60, 80)
    pa = page.pixels("decoded")
    b = page.hover(480, 430)
    assert np.abs(pa.astype(int) - page.pixels("decoded")).sum() > 0
    for state, pixels in ((a, pa), (b, page.pixels("decoded"))):
        assert np.abs(pixels - _expected_pixels(ae, state["shown_z"])).max() <= 1
    assert page.messages == []


def test_tables_are_decoded_into_bars_and_numbers(browser, tmp_path):
    from sklearn.datasets import load_breast_cancer

    bc = load_breast_cancer()
    vae = VAE(latent_dim=3, hidden_dims=(16,), epochs=5, random_state=0).fit(bc.data)  # standardizes (auto)
    page = Page(browser, explorer_html(vae, bc.data, bc.target, feature_names=bc.feature_names), tmp_path)
    state = page.hover(200, 300)
    expected = vae.inverse_transform(np.asarray([state["shown_z"]], np.float32))[0]  # data units
    np.testing.assert_allclose(state["values"], expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())
    first = page.page.locator("#features tbody tr").first.inner_text()
    assert first.startswith("mean radius") and f"{expected[0]:.4g}"[:4] in first
    assert page.messages == []
