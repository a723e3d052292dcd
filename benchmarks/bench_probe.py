"""Feature extraction: linear-probe and 5-NN test accuracy of AE and VAE codes against raw pixels
and PCA at the same dimension, on digits and MNIST (subsampled).

    python benchmarks/bench_probe.py [--quick]
"""

from __future__ import annotations

from _apps import header, load, setup, table, timed
from sklearn.decomposition import PCA

from aekit import VAE, AutoEncoder
from aekit.apps import knn_accuracy, linear_probe

SETTINGS = {  # dataset -> (n_train, n_test, code sizes, epochs)
    "digits": (None, None, (8, 16), 100),
    "mnist": (10_000, 2_000, (16,), 15),
}


def main() -> None:
    args = setup(__doc__).parse_args()
    header("Feature extraction: linear probe and k-NN on codes (bench_probe.py)")
    common = {"hidden_dims": (256, 128), "batch_size": 128, "validation_fraction": 0.0, "random_state": 0, "device": "cpu"}
    for name, (n_train, n_test, sizes, epochs) in SETTINGS.items():
        if args.quick:
            n_train, n_test, sizes, epochs = 2000, 500, (8,), 3
        X_train, y_train = load(name, "train", n_train)
        X_test, y_test = load(name, "test", n_test)
        print(f"### {name}: {len(X_train)} train / {len(X_test)} test; probe = standardised multinomial logistic "
              f"regression (C=1); k-NN = 5 neighbours, Euclidean; AE/VAE: MLP 256-128, {epochs} epochs, seed 0\n")
        rows = []
        feats = {f"raw pixels ({X_train.shape[1]})": (lambda: None)}
        for k in sizes:
            feats[f"PCA-{k}"] = lambda k=k: PCA(k, random_state=0)
            feats[f"AE-{k}"] = lambda k=k, e=epochs: AutoEncoder(latent_dim=k, epochs=e, **common)
            feats[f"VAE-{k} (posterior mean)"] = lambda k=k, e=epochs: VAE(latent_dim=k, epochs=e, **common)
        for label, make in feats.items():
            est, t = make(), {}
            with timed(t, "fit"):
                if est is not None:
                    est.fit(X_train)
            Z_train = X_train if est is None else est.transform(X_train)
            Z_test = X_test if est is None else est.transform(X_test)
            with timed(t, "probe"):
                acc_lin = linear_probe(Z_train, y_train, Z_test, y_test)
            acc_knn = knn_accuracy(Z_train, y_train, Z_test, y_test)
            rows.append({"features": label, "linear probe acc": acc_lin, "5-NN acc": acc_knn,
                         "encoder fit s": f"{t['fit']:.1f}", "probe fit s": f"{t['probe']:.1f}"})
        print(table(rows, ["features", "linear probe acc", "5-NN acc", "encoder fit s", "probe fit s"]))


if __name__ == "__main__":
    main()
