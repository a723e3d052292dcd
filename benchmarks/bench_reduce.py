"""Dimensionality reduction: test reconstruction MSE against code size for AE, VAE and PCA on
digits and MNIST (subsampled), plus 2-D code plots next to PCA's projection.

The AE is the default ``AutoEncoder`` (PCA base, early stopping on a 10% validation split of the
training images); "AE, plain net" is the same network without the PCA base (``linear_part="none"``,
no early stopping, all training images), the previous default.

    python benchmarks/bench_reduce.py [--quick]
"""

from __future__ import annotations

from _apps import figures_dir, header, load, setup, table
from sklearn.decomposition import PCA

from aekit import VAE, AutoEncoder
from aekit.apps import compare_pca, error_vs_code_size

SETTINGS = {  # dataset -> (n_train, n_test, code sizes for the neural models, epochs)
    "digits": (None, None, (2, 4, 8, 16, 32, 64), 100),
    "mnist": (10_000, 2_000, (2, 4, 8, 16, 32, 64), 15),
}
METHODS = ("PCA", "AE", "AE, plain net", "VAE")


def main() -> None:
    args = setup(__doc__).parse_args()
    header("Dimensionality reduction: reconstruction error vs code size (bench_reduce.py)")
    common = {"hidden_dims": (256, 128), "batch_size": 128, "random_state": 0, "device": "cpu"}
    previous = {"validation_fraction": 0.0, **common}  # the plain net and the VAE train on every image
    for name, (n_train, n_test, sizes, epochs) in SETTINGS.items():
        if args.quick:
            n_train, n_test, sizes, epochs = 2000, 500, (2, 8), 5
        X_train, _ = load(name, "train", n_train)
        X_test, y_test = load(name, "test", n_test)
        d = X_train.shape[1]
        print(f"### {name}: {len(X_train)} train / {len(X_test)} test images, {d} pixels; "
              f"AE/VAE: MLP {d}-256-128-k, {epochs} epochs, batch 128, AdamW lr 1e-3, seed 0; AE: PCA base, "
              "early stopping (patience 10) on 10% of the training images\n")
        pca_sizes = sorted(set(sizes) | {2, 4, 8, 16, 32, 64})
        rows = error_vs_code_size({"PCA": lambda k: PCA(k, random_state=0)}, X_train, X_test, [k for k in pca_sizes if k <= d])
        neural = {
            "AE": lambda k, e=epochs: AutoEncoder(latent_dim=k, epochs=e, **common),
            "AE, plain net": lambda k, e=epochs: AutoEncoder(latent_dim=k, epochs=e, linear_part="none",
                                                             early_stopping=False, **previous),
            "VAE": lambda k, e=epochs: VAE(latent_dim=k, epochs=e, **previous),
        }
        rows += error_vs_code_size(neural, X_train, X_test, sizes)
        by = {(r["method"], r["code_size"]): r for r in rows}
        out = []
        for k in pca_sizes:
            if k > d:
                continue
            row = {"code size": k}
            for m in METHODS:
                r = by.get((m, k))
                row[f"{m} test MSE"] = r["test_mse"] if r else "-"
                if m != "PCA":
                    row[f"{m} fit s"] = f"{r['fit_seconds']:.1f}" if r else "-"
            if ("AE", k) in by:
                pca_mse, ae_mse = by[("PCA", k)]["test_mse"], by[("AE", k)]["test_mse"]
                row["AE / PCA"] = ae_mse / pca_mse if pca_mse > 1e-8 else "- (PCA exact)"
                row["AE <= PCA"] = "yes" if ae_mse <= pca_mse or max(ae_mse, pca_mse) < 1e-8 else "**no**"
            out.append(row)
        cols = ["code size", *(f"{m} test MSE" for m in METHODS), "AE / PCA", "AE <= PCA", *(f"{m} fit s" for m in METHODS[1:])]
        print(table(out, cols, 4))
        for tag in ("AE", "VAE"):
            path = compare_pca(by[(tag, 2)]["estimator"], X_test, y_test, figures_dir(args.quick) / f"reduce_{name}_{tag.lower()}2d.png",
                               title=f"{name}: 2-D {tag} code vs PCA (test images)")
            print(f"Figure: `benchmarks/figures/{path.name}`  ")
        print()


if __name__ == "__main__":
    main()
