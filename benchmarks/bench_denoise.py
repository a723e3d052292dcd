"""Denoising: PSNR of the noisy input, of a DenoisingAutoEncoder's clean estimate and of the PCA
reconstruction baseline, for gaussian, masking and salt-and-pepper noise at several levels, on
digits and MNIST (subsampled).

One DenoisingAutoEncoder per noise kind, trained over a range of levels, from 0 to the heaviest
level of the table (each training image draws its own), so one model serves every level;
defaults otherwise (input fusion, PCA base). "DAE" is its clean estimate (``denoise``); "code
only" is the same model's decode(encode(x)) (``reconstruct``), what the classic DAE returns.
PCA's number of components is chosen per (kind, level) on a validation split of the training
images (its best case). Images are passed as images (n, 1, h, w).

    python benchmarks/bench_denoise.py [--quick]
"""

from __future__ import annotations

from _apps import figures_dir, header, load, setup, table, timed
from sklearn.decomposition import PCA

from aekit import DenoisingAutoEncoder
from aekit.apps import add_noise, denoise, denoise_grid, psnr

LEVELS = {"gaussian": (0.1, 0.3, 0.5), "masking": (0.25, 0.5, 0.75), "salt_and_pepper": (0.1, 0.2, 0.4)}
RANGES = {kind: (0.0, max(levels)) for kind, levels in LEVELS.items()}  # the training range per kind
PCA_SIZES = (8, 16, 32, 64, 128)
SETTINGS = {"digits": (None, None, 100, 32), "mnist": (10_000, 2_000, 15, 64)}  # n_train, n_test, epochs, code


def main() -> None:
    args = setup(__doc__).parse_args()
    header("Denoising: PSNR (dB) of noisy input, DAE output and PCA reconstruction (bench_denoise.py)")
    for name, (n_train, n_test, epochs, code) in SETTINGS.items():
        if args.quick:
            n_train, n_test, epochs = 2000, 300, 3
        X_train, _ = load(name, "train", n_train, flat=False)  # (n, 1, h, w)
        X_test, _ = load(name, "test", n_test, flat=False)
        n_fit = int(0.9 * len(X_train))
        X_fit, X_val = X_train[:n_fit], X_train[n_fit:]
        d = X_train[0].size
        print(f"### {name}: {len(X_train)} train / {len(X_test)} test images; DAE: MLP {d}-256-128-{code}, "
              f"{epochs} epochs, batch 128, seed 0, trained on levels drawn from {RANGES}; noisy inputs and all "
              "outputs clipped to [0, 1]; PSNR = mean over images of 10 log10(1 / MSE)\n")
        flat = lambda X: X.reshape(len(X), -1)  # noqa: E731
        pcas = {k: PCA(k, random_state=0).fit(flat(X_fit)) for k in PCA_SIZES if k < d}
        rows = []
        for kind, levels in LEVELS.items():
            dae, t = DenoisingAutoEncoder(latent_dim=code, noise=kind, noise_level=RANGES[kind], hidden_dims=(256, 128),
                                          epochs=epochs, batch_size=128, validation_fraction=0.0, random_state=0,
                                          device="cpu"), {}
            with timed(t):
                dae.fit(X_train)
            for level in levels:
                noisy = add_noise(X_test, kind, level, random_state=1, clip=(0, 1))
                noisy_val = flat(add_noise(X_val, kind, level, random_state=2, clip=(0, 1)))
                best_k = max(pcas, key=lambda k: psnr(flat(X_val), denoise(pcas[k], noisy_val, clip=(0, 1))))
                rows.append({
                    "noise": kind, "level": level, "noisy input": psnr(X_test, noisy),
                    "DAE": psnr(X_test, denoise(dae, noisy, clip=(0, 1))),
                    "DAE code only": psnr(X_test, dae.reconstruct(noisy).clip(0, 1)),
                    "PCA (best k)": psnr(flat(X_test), denoise(pcas[best_k], flat(noisy), clip=(0, 1))), "PCA k": best_k,
                    "DAE fit s": f"{t['seconds']:.0f}",
                })
            if name == "mnist":
                path, _ = denoise_grid(dae, X_test, figures_dir(args.quick) / f"denoise_{name}_{kind}.png", noise=kind,
                                       level=levels[1], n=10, baseline=pcas[rows[-2]["PCA k"]], random_state=3,
                                       image_shape=(28, 28))
                print(f"Figure: `benchmarks/figures/{path.name}` (rows: clean, noisy, DAE, PCA)  ")
        print()
        for r in rows:
            r["DAE - PCA"] = r["DAE"] - r["PCA (best k)"]
            r["DAE - input"] = r["DAE"] - r["noisy input"]
        cols = ["noise", "level", "noisy input", "DAE", "DAE code only", "PCA (best k)", "PCA k", "DAE - PCA",
                "DAE - input", "DAE fit s"]
        print(table(rows, cols, 2))
        gaps = [r["DAE - PCA"] for r in rows]
        first = sum(r["DAE"] > max(r["PCA (best k)"], r["noisy input"]) for r in rows)
        print(f"DAE first in {first} of {len(rows)} settings; DAE - PCA: mean {sum(gaps) / len(gaps):+.2f} dB, "
              f"smallest {min(gaps):+.2f} dB; DAE - input: smallest {min(r['DAE - input'] for r in rows):+.2f} dB.\n")


if __name__ == "__main__":
    main()
