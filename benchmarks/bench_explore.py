"""The latent explorer in a real browser (Playwright driving the system's Chromium): page size,
build time, the time the page takes to decode one code in JavaScript, and how far its pixels are
from the PyTorch decoder's over many hovered points; plus a screenshot of the page.

    python benchmarks/bench_explore.py [--quick]
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from _apps import figures_dir, header, load, setup, table

from aekit import VAE, AutoEncoder, ConditionalVAE
from aekit.report import explorer_html

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def measure(browser, est, X, y, label: str, n_hover: int, shot: Path | None = None) -> dict:
    start = time.perf_counter()
    page_text = explorer_html(est, X, y)
    build = time.perf_counter() - start
    path = Path(tempfile.mkdtemp()) / "explorer.html"
    path.write_text(page_text)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    messages = []
    page.on("console", lambda m: messages.append(m.text))
    page.on("pageerror", lambda e: messages.append(str(e)))
    start = time.perf_counter()
    page.goto(path.as_uri())
    load_s = time.perf_counter() - start
    box = page.locator("#map").bounding_box()
    c, h, w = est.input_shape_ if len(est.input_shape_) == 3 else (1, *est.input_shape_)
    rng = np.random.default_rng(0)
    worst = 0
    for x, yy in rng.uniform(5, 515, size=(n_hover, 2)):
        page.mouse.move(box["x"] + x, box["y"] + yy)
        state = page.evaluate("({z: aekitExplorer.state.shown_z, cls: aekitExplorer.state.cls})")
        pixels = page.evaluate(f"""Array.from(document.getElementById("decoded").getContext("2d")
                                   .getImageData(0, 0, {w}, {h}).data)""")
        got = np.asarray(pixels).reshape(h, w, 4)[..., 0]
        labels = [est.classes_[state["cls"]]] if est.capabilities()["conditional"] else None
        ref = est.inverse_transform(np.asarray([state["z"]], np.float32), labels) if labels else \
            est.inverse_transform(np.asarray([state["z"]], np.float32))
        expected = np.round(np.clip(ref, 0, 1) * 255).reshape(c, h, w)[0]
        worst = max(worst, int(np.abs(got.astype(int) - expected).max()))
    live = page.evaluate("aekitExplorer.decode(aekitExplorer.state.shown_z, 0) !== null")
    per_decode = page.evaluate("""(() => { const z = aekitExplorer.state.shown_z; const t = performance.now();
        for (let i = 0; i < 200; i++) aekitExplorer.decode(z, 0); return (performance.now() - t) / 200; })()""") if live else None
    if shot is not None:
        pos = page.evaluate("aekitExplorer.screenPosition(3)")
        page.mouse.move(box["x"] + pos[0], box["y"] + pos[1])
        page.screenshot(path=str(shot), full_page=True)
    page.close()
    return {"model": label, "page KB": f"{len(page_text.encode()) / 1024:.0f}", "build s": f"{build:.2f}",
            "load s": f"{load_s:.2f}", "decoding": "live (JS)" if live else "grid (Python)",
            "ms per decode": "-" if per_decode is None else f"{per_decode:.2f}",
            f"max pixel diff over {n_hover} hovers": f"{worst}/255", "console messages": len(messages)}


def main() -> None:
    args = setup(__doc__).parse_args()
    header("The latent explorer in Chromium (bench_explore.py)")
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    epochs, n_train, n_hover = (2, 1000, 10) if args.quick else (30, 10_000, 100)
    digits_X, digits_y = load("digits", "train", flat=False)
    dtest_X, dtest_y = load("digits", "test", flat=False)
    mnist_X, _ = load("mnist", "train", n_train, flat=False)
    mtest_X, mtest_y = load("mnist", "test", 2000, flat=False)
    common = {"epochs": epochs, "random_state": 0, "threads": 1}
    models = [
        ("VAE, digits, 2-D code, MLP 256-128", VAE(latent_dim=2, **common).fit(digits_X), dtest_X, dtest_y),
        ("ConditionalVAE, digits, 2-D code", ConditionalVAE(latent_dim=2, **common).fit(digits_X, digits_y), dtest_X, dtest_y),
        ("AE, digits, 16-D code, conv 32-64", AutoEncoder(architecture="conv", hidden_dims=(32, 64), **common).fit(digits_X),
         dtest_X, dtest_y),
        (f"VAE, MNIST ({n_train} images), 2-D code, MLP 256-128", VAE(latent_dim=2, **common).fit(mnist_X), mtest_X, mtest_y),
        (f"VAE, MNIST ({n_train} images), 16-D code, MLP 512-256", VAE(hidden_dims=(512, 256), **common).fit(mnist_X),
         mtest_X, mtest_y),
    ]
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=FLAGS)
        for i, (label, est, X, y) in enumerate(models):
            shot = figures_dir(args.quick) / "explorer_mnist_vae2d.png" if i == 3 else None
            rows.append(measure(browser, est, X, y, label, n_hover, shot))
        browser.close()
    print(f"Test data mapped: up to 2,000 samples; {epochs} epochs of training, seed 0. ms per decode: the mean "
          "of 200 decodes of one code in the page's JavaScript.\n")
    print(table(rows, list(rows[0])))


if __name__ == "__main__":
    main()
