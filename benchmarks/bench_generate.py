"""Generation: samples of a VAE and a ConditionalVAE on MNIST (subsampled) against the obvious
linear-Gaussian baselines (probabilistic PCA: a Gaussian over PCA codes, per class for the
conditional case), judged by a logistic-regression classifier trained on real images:

- conditional accuracy: the fraction of class-c samples the classifier calls c (ConditionalVAE:
  by default, codes drawn from a Gaussian fitted per class to the training codes; for reference,
  the same model decoding N(0, I) draws, its previous sampling);
- classifier score: exp(E_x KL(p(y|x) || p(y))), the Inception-score formula with this
  classifier (10 at best; real test images give the reference).

Also writes sample grids, linear vs slerp interpolations and a traversal as PNGs.

    python benchmarks/bench_generate.py [--quick]
"""

from __future__ import annotations

import numpy as np
from _apps import figures_dir, header, load, setup, table, timed
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression

from aekit import VAE, ConditionalVAE
from aekit.apps import image_grid, interpolate, interpolate_codes, sample_grid, traverse


def classifier_score(p: np.ndarray) -> float:
    py = p.mean(0, keepdims=True)
    return float(np.exp((p * (np.log(p + 1e-12) - np.log(py + 1e-12))).sum(1).mean()))


def main() -> None:
    args = setup(__doc__).parse_args()
    header("Generation: sample quality by a classifier (bench_generate.py)")
    n_train, epochs, per_class = (2000, 3, 20) if args.quick else (10_000, 20, 100)
    k = 16
    X, y = load("mnist", "train", n_train)
    X_test, y_test = load("mnist", "test", 2000)
    common = {"latent_dim": k, "hidden_dims": (256, 128), "epochs": epochs, "batch_size": 128, "validation_fraction": 0.0,
                  "random_state": 0, "device": "cpu"}
    t_vae, t_cvae = {}, {}
    with timed(t_vae):
        vae = VAE(**common).fit(X)
    with timed(t_cvae):
        cvae = ConditionalVAE(**common).fit(X, y)
    clf = LogisticRegression(max_iter=1000).fit(X, y)
    rng = np.random.default_rng(0)

    pca = PCA(k, random_state=0).fit(X)
    Z = pca.transform(X)
    ppca = pca.inverse_transform(rng.standard_normal((10 * per_class, k)) * Z.std(0))
    cond_pca = []
    for c in range(10):
        Zc = Z[y == c]
        cond_pca.append(pca.inverse_transform(rng.multivariate_normal(Zc.mean(0), np.cov(Zc.T), per_class)))
    cond_pca = np.concatenate(cond_pca)
    labels = np.repeat(np.arange(10), per_class)
    z_prior = rng.standard_normal((10 * per_class, k)).astype(np.float32)
    samples = {
        "VAE (prior samples, decoder mean)": sample_grid(vae, 10 * per_class, random_state=0),
        "PPCA (Gaussian over 16 PCA codes)": np.clip(ppca, 0, 1),
        "ConditionalVAE (default: per-class Gaussian fitted to the training codes)": sample_grid(
            cvae, per_class, y=list(range(10)), random_state=0),
        "ConditionalVAE, codes from the N(0, I) prior (previous sampling)": cvae.inverse_transform(z_prior, labels),
        "per-class Gaussian over 16 PCA codes": np.clip(cond_pca, 0, 1),
    }
    conditional = [n for n in samples if n.startswith("ConditionalVAE") or n.startswith("per-class")]
    rows = [{"source": f"real test images ({len(X_test)})", "classifier score": classifier_score(clf.predict_proba(X_test)),
             "conditional accuracy": f"{clf.score(X_test, y_test):.3f} (classifier accuracy)"}]
    for name, S in samples.items():
        row = {"source": name, "classifier score": classifier_score(clf.predict_proba(S.reshape(len(S), -1)))}
        if name in conditional:
            row["conditional accuracy"] = f"{(clf.predict(S.reshape(len(S), -1)) == labels).mean():.3f}"
        rows.append(row)
    print(f"### MNIST: {n_train} training images; VAE and ConditionalVAE: MLP 784-256-128-{k}, Bernoulli decoder, "
          f"{epochs} epochs, seed 0 (fit {t_vae['seconds']:.0f} s and {t_cvae['seconds']:.0f} s); "
          f"{10 * per_class} samples per source ({per_class} per class for the conditional ones), decoder means; "
          "classifier: logistic regression on the same training images\n")
    print(table(rows, ["source", "classifier score", "conditional accuracy"]))

    figs = {
        "generate_vae_samples.png": (samples["VAE (prior samples, decoder mean)"][:100], 10),
        "generate_cvae_by_class.png": (sample_grid(cvae, 10, y=list(range(10)), random_state=1), 10),
        "generate_ppca_samples.png": (samples["PPCA (Gaussian over 16 PCA codes)"][:100], 10),
    }
    a, b = X_test[0], X_test[1]
    lin = interpolate(vae, a, b, steps=10, method="linear")
    slerp = interpolate(vae, a, b, steps=10, method="slerp")
    figs["generate_interpolation_linear_vs_slerp.png"] = (np.concatenate([lin, slerp]), 10)
    figs["generate_traversal.png"] = (np.concatenate([traverse(vae, a, d, np.linspace(-3, 3, 10)) for d in range(5)]), 10)
    for fname, (imgs, ncols) in figs.items():
        image_grid(imgs, figures_dir(args.quick) / fname, ncols=ncols, image_shape=(28, 28), scale=2)
        print(f"Figure: `benchmarks/figures/{fname}`  ")
    z = vae.transform(np.stack([a, b]))
    mid = {m: float(np.linalg.norm(interpolate_codes(z[0], z[1], 3, m)[1])) for m in ("linear", "slerp")}
    print(f"\nInterpolation between two test codes of norms {[round(float(v), 2) for v in np.linalg.norm(z, axis=1)]}: the "
          f"midpoint's norm is {mid['linear']:.2f} (linear) vs {mid['slerp']:.2f} (slerp). Rows of the "
          "interpolation figure: linear, then slerp.\n")

if __name__ == "__main__":
    main()
