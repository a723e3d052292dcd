"""Compression: rate-distortion (bits per image vs PSNR) of aekit.apps.Codec over an
autoencoder, against PCA through the same quantiser and range coder, and against PNG and JPEG
(Pillow) at several qualities, on digits and MNIST test images (subsampled).

Rates are whole streams (header and checksum included) divided by the number of images. The
codec's frequency tables and the decoder weights are shared side information, not counted (as a
JPEG decoder's code is not). PNG/JPEG are counted two ways: one file per image (their headers
dominate at this size) and one mosaic file of all test images (headers amortised, the fairest
case for them).

    python benchmarks/bench_codec.py [--quick]
"""

from __future__ import annotations

import io
import math

import numpy as np
from _apps import figures_dir, header, load, setup, table, timed
from PIL import Image
from sklearn.decomposition import PCA

from aekit import AutoEncoder
from aekit.apps import Codec, psnr

SETTINGS = {"digits": (None, None, (8, 16), 100), "mnist": (10_000, 1_000, (8, 16, 32), 15)}
BITS = (2, 3, 4, 5, 6, 8)
JPEG_QUALITIES = (5, 10, 25, 50, 75, 95)


def to_uint8(X, side):
    return np.round(np.clip(X, 0, 1) * 255).astype(np.uint8).reshape(len(X), side, side)


def pillow_rate(X, side, fmt, **kw):
    """(bits per image, PSNR) with one file per image, and the same for one mosaic file."""
    imgs = to_uint8(X, side)
    total, recon = 0, []
    for im in imgs:
        buf = io.BytesIO()
        Image.fromarray(im).save(buf, format=fmt, **kw)
        total += buf.tell()
        recon.append(np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L")))
    per_image = (8 * total / len(X), psnr(X, np.stack(recon).reshape(X.shape) / 255.0))
    cols = math.ceil(math.sqrt(len(imgs)))
    rows = math.ceil(len(imgs) / cols)
    mosaic = np.zeros((rows * side, cols * side), np.uint8)
    for i, im in enumerate(imgs):
        r, c = divmod(i, cols)
        mosaic[r * side : (r + 1) * side, c * side : (c + 1) * side] = im
    buf = io.BytesIO()
    Image.fromarray(mosaic).save(buf, format=fmt, **kw)
    back = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L"))
    tiles = np.stack([back[r * side : (r + 1) * side, c * side : (c + 1) * side]
                      for r, c in (divmod(i, cols) for i in range(len(imgs)))])
    return per_image, (8 * buf.tell() / len(X), psnr(X, tiles.reshape(X.shape) / 255.0))


def codec_point(codec, X):
    blob = codec.encode(X)
    out = np.clip(codec.decode(blob), 0, 1)
    return 8 * len(blob) / len(X), psnr(X, out)


def main() -> None:
    args = setup(__doc__).parse_args()
    header("Compression: rate-distortion on test images (bench_codec.py)")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    for name, (n_train, n_test, sizes, epochs) in SETTINGS.items():
        if args.quick:
            n_train, n_test, sizes, epochs = 2000, 200, (8,), 3
        X_train, _ = load(name, "train", n_train)
        X_test, _ = load(name, "test", n_test)
        side = math.isqrt(X_train.shape[1])
        print(f"### {name}: codec fitted on {len(X_train)} training images, measured on {len(X_test)} test images "
              f"({side}x{side}, 8-bit originals); AE: MLP {side * side}-256-128-k, MSE, {epochs} epochs, seed 0; "
              "coder: aekit's static per-dimension range coder unless noted\n")
        curves: dict[str, list[tuple[float, float, str]]] = {}
        for k in sizes:
            ae = AutoEncoder(latent_dim=k, hidden_dims=(256, 128), epochs=epochs, batch_size=128,
                             validation_fraction=0.0, random_state=0, device="cpu").fit(X_train)
            pca = PCA(k, random_state=0).fit(X_train)
            for label, est in ((f"AE-{k}", ae), (f"PCA-{k}", pca)):
                for b in BITS:
                    rate, q = codec_point(Codec(est, bits=b).fit(X_train), X_test)
                    curves.setdefault(label, []).append((rate, q, f"{b} bits"))
            if k == sizes[-1]:  # entropy coder comparison and speed at one setting
                coder_rows = []
                for coder in ("arithmetic", "zlib", "raw"):
                    codec, t = Codec(ae, bits=5, coder=coder).fit(X_train), {}
                    with timed(t, "enc"):
                        blob = codec.encode(X_test)
                    with timed(t, "dec"):
                        codec.decode(blob)
                    coder_rows.append({"coder": coder, "bits/image": 8 * len(blob) / len(X_test),
                                       "encode images/s": f"{len(X_test) / t['enc']:,.0f}",
                                       "decode images/s": f"{len(X_test) / t['dec']:,.0f}"})
        for fmt, label, settings in (("PNG", "PNG", [{"optimize": True}]),
                                     ("JPEG", "JPEG", [{"quality": q} for q in JPEG_QUALITIES])):
            for kw in settings:
                (r1, p1), (r2, p2) = pillow_rate(X_test, side, fmt, **kw)
                tag = f"q{kw['quality']}" if "quality" in kw else "lossless 8-bit"
                curves.setdefault(f"{label} (file per image)", []).append((r1, p1, tag))
                curves.setdefault(f"{label} (one mosaic file)", []).append((r2, p2, tag))
        rows = [{"method": m, "setting": s, "bits/image": r, "PSNR dB": q} for m, pts in curves.items() for r, q, s in pts]
        print(table(rows, ["method", "setting", "bits/image", "PSNR dB"], 2))
        # best PSNR reachable at or under a few rates
        budgets = (32, 64, 128, 256, 512, 1024)
        summary = []
        for m, pts in curves.items():
            row = {"method": m}
            for bud in budgets:
                ok = [q for r, q, _ in pts if r <= bud]
                row[f"<= {bud} b"] = f"{max(ok):.1f}" if ok else "-"
            summary.append(row)
        print(f"Best PSNR (dB) at or under a rate (bits/image), {name}:\n")
        print(table(summary, ["method"] + [f"<= {b} b" for b in budgets]))
        print(f"Entropy coders at AE-{sizes[-1]}, 5 bits, on {len(X_test)} test images "
              f"(throughput includes the network):\n")
        print(table(coder_rows, ["coder", "bits/image", "encode images/s", "decode images/s"], 1))
        fig = Figure(figsize=(7, 4.5))
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        for m, pts in curves.items():
            pts = sorted(pts)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-" if "AE" in m else ".--", label=m, ms=3)
        ax.set_xscale("log")
        ax.set_xlabel("bits per image")
        ax.set_ylabel("PSNR (dB)")
        ax.set_title(f"{name}: rate-distortion on {len(X_test)} test images")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(figures_dir(args.quick) / f"codec_rd_{name}.png", dpi=100)
        print(f"Figure: `benchmarks/figures/codec_rd_{name}.png`\n")


if __name__ == "__main__":
    main()
