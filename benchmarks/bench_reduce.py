"""Dimensionality reduction: test reconstruction MSE against code size for AE, VAE and PCA on
digits and MNIST (subsampled), plus 2-D code plots next to PCA's projection.

    python benchmarks/bench_reduce.py [--quick]
"""

from __future__ import annotations

from _apps import figures_dir, header, load, setup, table
from sklearn.decomposition import PCA

from aekit import VAE, AutoEncoder
from aekit.apps import compare_pca, error_vs_code_size

SETTINGS = {  # dataset -> (n_train, n_test, code sizes for the neural models, epochs)
    "digits": (None, None, (2, 4, 8, 16, 32, 64), 100),
    "mnist": (10_000, 2_000, (2, 8, 32, 64), 15),
}


def main() -> None:
    args = setup(__doc__).parse_args()
    header("Dimensionality reduction: reconstruction error vs code size (bench_reduce.py)")
    common = {"hidden_dims": (256, 128), "batch_size": 128, "validation_fraction": 0.0, "random_state": 0, "device": "cpu"}
    for name, (n_train, n_test, sizes, epochs) in SETTINGS.items():
        if args.quick:
            n_train, n_test, sizes, epochs = 2000, 500, (2, 8), 5
        X_train, _ = load(name, "train", n_train)
        X_test, y_test = load(name, "test", n_test)
        d = X_train.shape[1]
        print(f"### {name}: {len(X_train)} train / {len(X_test)} test images, {d} pixels; "
              f"AE/VAE: MLP {d}-256-128-k, {epochs} epochs, batch 128, AdamW lr 1e-3, seed 0\n")
        pca_sizes = sorted(set(sizes) | {2, 4, 8, 16, 32, 64})
        rows = error_vs_code_size({"PCA": lambda k: PCA(k, random_state=0)}, X_train, X_test, [k for k in pca_sizes if k <= d])
        neural = {
            "AE": lambda k, e=epochs: AutoEncoder(latent_dim=k, epochs=e, **common),
            "VAE": lambda k, e=epochs: VAE(latent_dim=k, epochs=e, **common),
        }
        rows += error_vs_code_size(neural, X_train, X_test, sizes)
        by = {(r["method"], r["code_size"]): r for r in rows}
        out = []
        for k in pca_sizes:
            if k > d:
                continue
            row = {"code size": k}
            for m in ("PCA", "AE", "VAE"):
                r = by.get((m, k))
                row[f"{m} test MSE"] = r["test_mse"] if r else "-"
                if m != "PCA":
                    row[f"{m} fit s"] = f"{r['fit_seconds']:.1f}" if r else "-"
            if ("AE", k) in by and by[("PCA", k)]["test_mse"] > 1e-8:  # PCA with k = D is exact
                row["AE / PCA"] = by[("AE", k)]["test_mse"] / by[("PCA", k)]["test_mse"]
            out.append(row)
        print(table(out, ["code size", "PCA test MSE", "AE test MSE", "VAE test MSE", "AE / PCA", "AE fit s", "VAE fit s"], 4))
        for tag in ("AE", "VAE"):
            path = compare_pca(by[(tag, 2)]["estimator"], X_test, y_test, figures_dir(args.quick) / f"reduce_{name}_{tag.lower()}2d.png",
                               title=f"{name}: 2-D {tag} code vs PCA (test images)")
            print(f"Figure: `benchmarks/figures/{path.name}`  ")
        print()


if __name__ == "__main__":
    main()
