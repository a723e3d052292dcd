"""The latent explorer: one self-contained HTML page (no network, no server) with a map of the
codes of some samples, coloured by label. Hovering a point shows that sample and its decoding;
moving over empty space decodes the code there, live, by the model's own decoder run in the page
(its weights embedded as base64 float32; :mod:`aekit.report.decoder_chain`). A decoder that is not
a chain of dense layers (a convolutional one) falls back to a grid of decodings made in Python,
and the page says so. Variational models get a slider per code dimension (a traversal of the
shown code), conditional ones a class to decode with; tabular data are drawn as bars.

:func:`explorer_html` builds the page for any fitted aekit estimator and data;
:func:`build_explorer` writes a run folder's ``explorer.html`` (``aekit explore RUN_DIR``).
"""

from __future__ import annotations

import base64
import html
import json
import math
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._utils import atomic_write_text
from .._version import __version__
from ..datasets import available_datasets
from ..runfolder import (
    DEFAULT_SPLIT,
    EXPLORER_NAME,
    load_estimator,
    load_run_data,
    read_run,
    run_samples,
)
from .decoder_chain import UnsupportedDecoder, dense_chain
from .html import CSS

__all__ = ["MAX_POINTS", "build_explorer", "explorer_html", "write_explorer"]

MAX_POINTS = 2000  # samples on the map
MAX_EMBEDDED_PARAMS = 4_000_000  # a larger decoder is shown through the grid of decodings instead
GRID_DECODINGS = 2500  # grid fallback: about this many decodings in all (every class together)


def explorer_html(
    estimator,
    X,
    y=None,
    *,
    image_shape: tuple[int, ...] | None = None,
    feature_names=None,
    title: str | None = None,
    description: str = "",
    max_points: int = MAX_POINTS,
    random_state: int = 0,
    footer: str | None = None,
) -> str:
    """The latent explorer page for a fitted aekit estimator over samples X.

    Parameters
    ----------
    estimator : a fitted aekit estimator.
    X : samples in the layout the estimator was fitted on; up to ``max_points`` of them (a
        seeded random subset) are mapped.
    y : labels (n,), to colour the map by (and, for a conditional model, to encode with).
    image_shape : (c, h, w) or (h, w) to show samples as images; by default the estimator's
        per-sample shape when it is an image's, else samples are tables shown as bars.
    feature_names : names of a table's features (default: the estimator's ``feature_names_in_``
        or ``feature i``).
    title, description : the page's heading and a line under it.
    max_points : at most this many samples on the map.
    random_state : seeds the choice of samples (and the vertical spread of a 1-D code).
    footer : the page's last line (default: which aekit wrote it).

    Returns
    -------
    str, the whole page.

    Examples
    --------
    >>> from aekit import VAE
    >>> from aekit.datasets import load_dataset
    >>> from aekit.report import explorer_html
    >>> d = load_dataset("digits")
    >>> vae = VAE(latent_dim=2, hidden_dims=(32,), epochs=2, random_state=0).fit(d.X)
    >>> page = explorer_html(vae, d.X, d.y, max_points=300)
    >>> "the 2-D code itself" in page and "<script" in page and "http" not in page
    True
    """
    check_is_fitted(estimator)
    if isinstance(max_points, bool) or not isinstance(max_points, (int, np.integer)) or max_points < 2:
        raise ValueError(f"max_points must be an integer >= 2, got {max_points!r}")
    if len(X) < 2:
        raise ValueError("the explorer needs at least 2 samples to map")
    if y is not None and len(y) != len(X):
        raise ValueError(f"y has {len(y)} labels for {len(X)} samples")
    rng = np.random.default_rng(random_state)
    idx = np.sort(rng.choice(len(X), max_points, replace=False)) if len(X) > max_points else np.arange(len(X))
    Xs = np.asarray(X[idx], dtype=np.float32)  # only these rows are read (a memory-mapped X stays on disk)
    ys = None if y is None else np.asarray(y)[idx]
    caps = estimator.capabilities()
    own = _own_labels(estimator, Xs, ys)  # labels to encode and reconstruct with (conditional models)
    Z = np.asarray(estimator.transform(Xs, own) if own is not None else estimator.transform(Xs), dtype=np.float32)
    k = Z.shape[1]
    positions, projection, projection_text = _projection(Z, rng)
    extent = _extent(positions, k)
    shape = _image_shape(estimator, image_shape)
    n_features = Xs[0].size
    if shape is not None and math.prod(shape) != n_features:
        raise ValueError(f"image_shape {tuple(shape)} holds {math.prod(shape)} values, but samples have {n_features}")
    display, samples = _display(Xs, shape, feature_names, estimator)
    classes = list(estimator.classes_) if caps["conditional"] else None

    decoder, grid, why = None, None, None
    try:
        chain = dense_chain(estimator.model_, len(classes) if classes else 0)
        if chain.n_params > MAX_EMBEDDED_PARAMS:
            raise UnsupportedDecoder(f"its {chain.n_params:,} weights are too many to embed in a page")
    except UnsupportedDecoder as e:
        chain, why = None, str(e)
        grid = _grid(estimator, Z, own, extent, projection, display, classes)
    else:
        decoder = _chain_payload(chain)
    notes = [projection_text, *_notes(caps, chain, grid, why, bool(classes), estimator.mean_ is not None, display)]

    labels = _labels(ys)
    payload = {
        "latent_dim": k,
        "n_points": len(Z),
        "n_features": int(n_features),
        "indices": [int(i) for i in idx],
        "positions": _b64(positions),
        "codes": _b64(Z),
        "projection": projection,
        "extent": extent,
        "display": display,
        "samples": samples,
        "scaling": None if estimator.mean_ is None else {"mean": _b64(estimator.mean_), "scale": _b64(estimator.scale_)},
        "decoder": decoder,
        "grid": grid,
        "sliders": _slider_ranges(Z) if caps["variational"] else None,
        "classes": None if classes is None else [str(c) for c in classes],
        "own_classes": None if classes is None else np.searchsorted(estimator.classes_, own).tolist(),
        **labels,
    }
    heading = title or f"{type(estimator).__name__}: latent explorer"
    return _PAGE.substitute(
        title=_e(heading),
        css=CSS + _EXPLORER_CSS,
        description=_e(description or f"{len(Z)} samples, {k}-D code."),
        axes=f'<span class="axis-x">{_e(projection["axes"][0])}</span><span class="axis-y">{_e(projection["axes"][1])}</span>',
        views=_views(shape, display),
        classes=_class_select(classes),
        sliders='<div id="sliders"></div>' if payload["sliders"] and decoder else "",
        notes="".join(f"<p>{_e(n)}</p>\n" for n in notes),
        footer=_e(footer or f"Written by aekit {__version__}. One file: the data and the decoder are in it; it fetches nothing."),
        data=json.dumps(payload, separators=(",", ":")).replace("<", "\\u003c"),  # nothing closes the <script>
        script=_script(),
    )


def build_explorer(
    run_dir: str | Path,
    out: str | Path | None = None,
    *,
    data: str | Path | None = None,
    split: str = DEFAULT_SPLIT,
    limit: int | None = None,
    data_root=None,
    max_points: int = MAX_POINTS,
) -> Path:
    """Write the latent explorer of a finished run: ``run_dir/explorer.html`` by default (the
    page the run's report links to; :func:`aekit.report.build_report` writes it too).

    Parameters
    ----------
    run_dir : a finished run folder.
    out : where to write the page (default ``run_dir/explorer.html``).
    data : the samples to map: a dataset name or path (its ``split``, first ``limit`` samples;
        ``data_root`` as for :func:`aekit.load_dataset`); by default the run's own evaluation
        data (the test split of a built-in dataset, the held-out part of a file).
    max_points : at most this many samples on the map (a seeded random subset).

    Returns
    -------
    Path of the page.

    Examples
    --------
    >>> import tempfile
    >>> from aekit.report import build_explorer
    >>> from aekit.run import fit_run
    >>> run = fit_run(tempfile.mkdtemp(), "vae", params={"epochs": 1, "latent_dim": 2}, limit=100, report=False)
    >>> build_explorer(run.run_dir).name
    'explorer.html'
    """
    run_dir = Path(run_dir)
    config = read_run(run_dir)["config"]
    est = load_estimator(run_dir)
    if data is None:
        rd = load_run_data(config["data"], seed=config["seed"], limit=config["limit"], root=config.get("data_root"))
        X, y, shape, names, where = rd.X_eval, rd.y_eval, rd.image_shape, rd.feature_names, rd.eval_description
    else:
        X, y, _ = run_samples(est, data, split, limit, root=data_root)
        shape, names = None, None
        where = f"{Path(str(data)).name}" + (f" ({split} split)" if str(data) in available_datasets() else "")
    return write_explorer(run_dir, est, X, y, image_shape=shape, feature_names=names, where=where, out=out,
                          max_points=max_points)


def write_explorer(run_dir: str | Path, estimator, X, y=None, *, image_shape=None, feature_names=None,
                   where: str = "the data", out: str | Path | None = None, max_points: int = MAX_POINTS) -> Path:
    """The explorer of a run whose fitted estimator and data are at hand (as in
    :func:`build_explorer`, which reads them first): written to ``out`` or ``run_dir/explorer.html``."""
    run_dir = Path(run_dir)
    config = read_run(run_dir)["config"]
    if tuple(np.shape(X)[1:]) != tuple(estimator.input_shape_):  # e.g. flat rows of a model fitted on images
        X = np.asarray(X, dtype=np.float32).reshape(len(X), *estimator.input_shape_)
    page = explorer_html(
        estimator, X, y, image_shape=image_shape, feature_names=feature_names, max_points=max_points,
        random_state=int(config["seed"]),
        title=f"{config['estimator']} on {Path(str(config['data'])).name}: latent explorer",
        description=f"Codes of {min(len(X), max_points)} samples of {where}, under the model of the run in "
                    f"{run_dir.resolve()}.",
        footer=f"Written by aekit {__version__} from the run folder; rebuild with aekit explore RUN_DIR. "
               "One file: the data and the decoder are in it; it fetches nothing.",
    )
    path = Path(out) if out is not None else run_dir / EXPLORER_NAME
    atomic_write_text(path, page)
    return path


# -- the pieces ---------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _b64(a) -> str:
    """float32 little-endian bytes of an array, base64."""
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def _own_labels(est, X, y):
    """Labels for a conditional estimator's encoding: the samples' own when all are known
    classes, else the classes it infers; None for other estimators."""
    if not est.capabilities()["conditional"]:
        return None
    if y is not None and np.isin(y, est.classes_).all():
        return y
    return est.predict(X)


def _projection(Z: np.ndarray, rng) -> tuple[np.ndarray, dict[str, Any], str]:
    """Map positions (n, 2) of the codes, the affine map from a map point p back to a code
    (z = mean + p @ components), and what the map shows in words."""
    k = Z.shape[1]
    if k == 2:
        proj = {"mean": [0.0, 0.0], "components": [[1.0, 0.0], [0.0, 1.0]], "axes": ["z[0]", "z[1]"]}
        return Z.astype(np.float64), proj, "The map shows the 2-D code itself; every point of it is a code."
    if k == 1:
        positions = np.column_stack([Z[:, 0], rng.uniform(-1, 1, len(Z))])
        proj = {"mean": [0.0], "components": [[1.0], [0.0]], "axes": ["z[0]", "random spread (no meaning)"]}
        return positions, proj, ("The map shows the 1-D code on the horizontal axis, spread vertically at random so "
                                 "that points do not overlap; the vertical position means nothing.")
    from sklearn.decomposition import PCA

    pca = PCA(2, random_state=0).fit(Z.astype(np.float64))
    positions = pca.transform(Z.astype(np.float64))
    proj = {"mean": pca.mean_.tolist(), "components": pca.components_.tolist(),
            "axes": ["principal component 1", "principal component 2"]}
    share = 100 * pca.explained_variance_ratio_.sum()
    return positions, proj, (f"The map is a PCA projection of the {k}-D code onto its first two principal components "
                             f"({share:.0f}% of its variance). A point of empty space stands for the code on that "
                             "plane: the codes' mean plus its two coordinates along the components; hovered samples "
                             "show their own full code.")


def _extent(positions: np.ndarray, k: int) -> list[float]:
    lo, hi = positions.min(axis=0), positions.max(axis=0)
    pad = np.maximum(0.08 * (hi - lo), 1e-3)
    x0, x1, y0, y1 = lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1]
    if k == 1:
        y0, y1 = -1.2, 1.2
    return [float(x0), float(x1), float(y0), float(y1)]


def _image_shape(est, given) -> tuple[int, int, int] | None:
    """(c, h, w) to draw samples as images, or None for tables: ``given``, else the estimator's
    per-sample shape when it is an image's ((h, w) or (c, h, w))."""
    shape = tuple(int(s) for s in (given if given is not None else est.input_shape_))
    if len(shape) == 2:
        return (1, *shape)
    return shape if len(shape) == 3 else None


def _display(X: np.ndarray, shape, feature_names, est) -> tuple[dict[str, Any], str]:
    """How samples are drawn, and the mapped samples as the page holds them: display bytes of
    images, or a table's values (float32)."""
    flat = X.reshape(len(X), -1).astype(np.float64)
    if shape is not None:
        lo, hi = float(flat.min()), float(flat.max())
        if lo >= 0 and hi <= 1:
            lo, hi = 0.0, 1.0
        elif hi <= lo:
            hi = lo + 1.0
        display = {"kind": "image", "shape": list(shape), "lo": lo, "hi": hi}
        return display, base64.b64encode(_to_bytes(flat, lo, hi).tobytes()).decode("ascii")
    names = feature_names if feature_names is not None else getattr(est, "feature_names_in_", None)
    names = [str(n) for n in names] if names is not None else [f"feature {i}" for i in range(flat.shape[1])]
    std = flat.std(axis=0)
    display = {"kind": "table", "names": names, "mean": flat.mean(axis=0).tolist(),
               "std": np.where(std > 1e-12, std, 1.0).tolist()}
    return display, _b64(flat)


def _to_bytes(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Values -> display bytes, as the page draws them: round(clip((v - lo) / (hi - lo), 0, 1) * 255)."""
    return np.round(np.clip((values - lo) / (hi - lo), 0.0, 1.0) * 255).astype(np.uint8)


def _notes(caps, chain, grid, why, conditional: bool, destandardize: bool, display) -> list[str]:
    """What the page shows, in words, by the model's capabilities and how it decodes."""
    notes = []
    if chain is None:
        notes.append(f"This decoder cannot run in the page ({why}), so moving over empty space shows the nearest of "
                     f"{grid['size']} x {grid['size']} decodings made in Python on a grid over the map"
                     + (" (for each class)" if conditional else "") + "; hovering a sample shows its reconstruction"
                     + (" with its own class" if conditional else "") + ".")
    else:
        notes.append(f"Decoding runs in this page: the model's decoder ({chain.n_params:,} weights, embedded) decodes the "
                     "code under the pointer as the pointer moves"
                     + (", then the sigmoid that turns its logits into means" if chain.output == "sigmoid" else "")
                     + (", then the estimator's de-standardization back to data units" if destandardize else "")
                     + ". Hovering a sample decodes its own code: its reconstruction"
                     + (" (with the class chosen)." if conditional else "."))
    if caps["variational"]:
        notes.append("The codes are posterior means. " + ("The sliders set each dimension of the shown code in turn (a "
                     "traversal), over the prior's +-3 standard deviations or the codes' range when wider; click the "
                     "map to pin a point first." if chain else "Sliders need the decoder in the page and are left out."))
    if conditional:
        notes.append("The model is conditional: samples are encoded with their own class and, by default, decoded "
                     "with it too (empty space with the nearest sample's class). Choose a class to decode everything "
                     "with it instead: a sample's code then shows its style drawn as that class.")
    if caps["quantised"]:
        notes.append("The codes are quantised: each sample's code is a string of codebook vectors, so many samples share "
                     "one point. Away from them the decoder is fed the point as it is (as inverse_transform does); the "
                     "model itself only ever decodes codebook entries.")
    if display["kind"] == "table":
        notes.append("Samples are tables: bars show each decoded feature in standard deviations of the mapped samples "
                     "(clipped at +-3), dark ticks the hovered sample's own values; the table lists both in data units.")
    elif display["lo"] != 0.0 or display["hi"] != 1.0:
        notes.append(f"Pixel values from {display['lo']:.4g} (black) to {display['hi']:.4g} (white).")
    return notes


def _chain_payload(chain) -> dict[str, Any]:
    steps = []
    for s in chain.steps:
        if s["op"] == "linear":
            out_dim, in_dim = s["weight"].shape
            steps.append({"op": "linear", "in": int(in_dim), "out": int(out_dim), "weight": _b64(s["weight"]),
                          "bias": _b64(s["bias"])})
        else:
            steps.append(s)
    return {"latent_dim": chain.latent_dim, "cond_dim": chain.cond_dim, "output": chain.output, "steps": steps}


def _grid(est, Z, own, extent, projection, display, classes) -> dict[str, Any]:
    """Decodings on a size x size grid over the map (per class for a conditional model), and each
    mapped sample's reconstruction, as the page draws them."""
    n_classes = len(classes) if classes else 1
    size = max(8, min(25, int(math.sqrt(GRID_DECODINGS / n_classes))))
    x0, x1, y0, y1 = extent
    gx, gy = np.meshgrid(np.linspace(x0, x1, size), np.linspace(y0, y1, size))  # (size, size), row = y
    p = np.column_stack([gx.ravel(), gy.ravel()])  # (size^2, 2)
    codes = (np.asarray(projection["mean"]) + p @ np.asarray(projection["components"])).astype(np.float32)
    parts = []
    for c in range(n_classes):
        labels = None if classes is None else np.full(len(codes), classes[c])
        parts.append(_decode(est, codes, labels))
    recon = _decode(est, Z, own)
    return {"size": size, "values": _encode_values(np.concatenate(parts), display),
            "recon": _encode_values(recon, display)}


def _decode(est, Z, labels) -> np.ndarray:
    out = est.inverse_transform(Z, labels) if labels is not None else est.inverse_transform(Z)
    return np.asarray(out, dtype=np.float64).reshape(len(Z), -1)


def _encode_values(values: np.ndarray, display) -> str:
    if display["kind"] == "image":
        return base64.b64encode(_to_bytes(values, display["lo"], display["hi"]).tobytes()).decode("ascii")
    return _b64(values)


def _slider_ranges(Z: np.ndarray) -> dict[str, list[float]]:
    lo = np.minimum(-3.0, np.floor(Z.min(axis=0) * 10) / 10)
    hi = np.maximum(3.0, np.ceil(Z.max(axis=0) * 10) / 10)
    return {"lo": lo.tolist(), "hi": hi.tolist()}


def _labels(y) -> dict[str, Any]:
    """Label index per point, the label names and their colours (the report's: tab10 / tab20,
    viridis beyond 20 classes)."""
    if y is None:
        return {"labels": None, "label_names": None, "colours": None}
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    classes, index = np.unique(np.asarray(y), return_inverse=True)
    if len(classes) <= 20:
        cm = colormaps["tab10" if len(classes) <= 10 else "tab20"]
        colours = [to_hex(cm(i)) for i in range(len(classes))]
    else:
        cm = colormaps["viridis"]
        colours = [to_hex(cm(i / (len(classes) - 1))) for i in range(len(classes))]
    return {"labels": index.tolist(), "label_names": [str(c) for c in classes], "colours": colours}


def _views(shape, display) -> str:
    if shape is not None:
        _, h, w = shape
        scale = max(1, 168 // max(h, w))
        style = f'style="width:{w * scale}px;height:{h * scale}px"'
        return (f'<div class="views"><figure><canvas id="sample" width="{w}" height="{h}" {style}></canvas>'
                f'<figcaption>hovered sample</figcaption></figure>'
                f'<figure><canvas id="decoded" width="{w}" height="{h}" {style}></canvas>'
                f'<figcaption>decoded</figcaption></figure></div>')
    rows = "".join(f"<tr><td>{_e(n)}</td><td></td><td></td></tr>" for n in display["names"])
    return ('<canvas id="decoded" class="bars" width="440" height="180"></canvas>'
            '<canvas id="sample" hidden width="1" height="1"></canvas>'
            f'<div class="features"><table id="features"><thead><tr><th>feature</th><th>decoded</th>'
            f'<th>sample</th></tr></thead><tbody>{rows}</tbody></table></div>')


def _class_select(classes) -> str:
    if not classes:
        return ""
    options = '<option value="-1">its own (the nearest sample\'s)</option>' + "".join(
        f'<option value="{i}">{_e(c)}</option>' for i, c in enumerate(classes))
    return f'<label class="class">decode as class <select id="class">{options}</select></label>'


def _script() -> str:
    return resources.files(__package__).joinpath("explorer.js").read_text(encoding="utf-8")


_EXPLORER_CSS = """
.explorer { display: flex; flex-wrap: wrap; gap: 20px; align-items: flex-start; }
.map-wrap { position: relative; padding: 0 0 22px 22px; }
#map { width: 520px; height: 520px; display: block; background: #fff; border: 1px solid var(--line); border-radius: 6px; cursor: crosshair; }
.axis-x { position: absolute; bottom: 0; left: 22px; right: 0; text-align: center; color: var(--muted); font-size: 12px; }
.axis-y { position: absolute; top: 0; bottom: 22px; left: 0; writing-mode: vertical-rl; transform: rotate(180deg); text-align: center; color: var(--muted); font-size: 12px; }
.panel { flex: 1; min-width: 300px; }
.views { display: flex; gap: 16px; }
.views canvas { image-rendering: pixelated; border: 1px solid var(--line); background: #000; }
.views figcaption { color: var(--muted); font-size: 12px; text-align: center; }
canvas.bars { width: 440px; height: 180px; border: 1px solid var(--line); background: #fff; }
.features { max-height: 260px; overflow-y: auto; font-size: 13px; }
.features td { padding: 1px 12px 1px 0; font-variant-numeric: tabular-nums; }
#status { font-size: 13px; color: var(--muted); min-height: 2.6em; }
#legend { display: flex; flex-wrap: wrap; gap: 4px 12px; font-size: 12px; margin-top: 6px; max-width: 520px; }
#legend i { display: inline-block; width: 10px; height: 10px; border-radius: 5px; margin-right: 4px; }
#sliders { max-height: 300px; overflow-y: auto; }
.slider { display: grid; grid-template-columns: 44px 1fr 48px; gap: 8px; align-items: center; font-size: 12px; }
.class { display: block; margin: 6px 0 10px; font-size: 14px; }
"""

_PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>
$css
</style>
</head>
<body>
<header>
<h1>$title</h1>
<p class="subtitle">$description</p>
</header>
<main>
<section id="explorer">
<div class="explorer">
<div><div class="map-wrap"><canvas id="map" width="520" height="520" aria-label="map of the codes"></canvas>$axes</div>
<div id="legend"></div></div>
<div class="panel">
$views
<p id="status"></p>
$classes
$sliders
</div>
</div>
</section>
<section id="about">
<h2>What this page shows</h2>
$notes</section>
</main>
<footer>$footer</footer>
<script type="application/json" id="aekit-data">$data</script>
<script>
$script
</script>
</body>
</html>
""")
