"""Similarity search: precision@10 by label and queries per second of LatentIndex over AE codes,
against raw pixels and PCA at the same dimension (Euclidean and cosine), on MNIST (subsampled)
and Fashion-MNIST (subsampled).

    python benchmarks/bench_search.py [--quick]
"""

from __future__ import annotations

import time

from _apps import header, load, setup, table, timed
from sklearn.decomposition import PCA

from aekit import AutoEncoder
from aekit.apps import LatentIndex, precision_at_k

K = 10


def main() -> None:
    args = setup(__doc__).parse_args()
    header("Similarity search: precision@10 and queries/s (bench_search.py)")
    n_index, n_query, code, epochs = (10_000, 1_000, 32, 15) if not args.quick else (2_000, 200, 16, 3)
    common = {"hidden_dims": (256, 128), "batch_size": 128, "validation_fraction": 0.0, "random_state": 0, "device": "cpu"}
    for name in ("mnist", "fashion-mnist"):
        X_db, y_db = load(name, "train", n_index)
        X_q, y_q = load(name, "test", n_query)
        print(f"### {name}: index = {len(X_db)} training images, queries = {len(X_q)} test images; exact "
              f"brute force, batch 1024; AE: MLP 784-256-128-{code}, {epochs} epochs, seed 0. "
              "Queries/s include encoding the queries.\n")
        ae, t_ae = AutoEncoder(latent_dim=code, epochs=epochs, **common), {}
        with timed(t_ae):
            ae.fit(X_db)
        pca = PCA(code, random_state=0).fit(X_db)
        rows = []
        for label, est in (("raw pixels (784)", None), (f"PCA-{code}", pca), (f"AE-{code}", ae)):
            for metric in ("euclidean", "cosine"):
                t = {}
                with timed(t, "index"):
                    index = LatentIndex(est, metric=metric).fit(X_db)
                index.query(X_q[:50], k=K)  # warm-up
                t0 = time.perf_counter()
                _, idx = index.query(X_q, k=K)
                qps = len(X_q) / (time.perf_counter() - t0)
                rows.append({"features": label, "metric": metric, f"precision@{K}": precision_at_k(idx, y_db, y_q),
                             "queries/s": f"{qps:,.0f}", "index build s": f"{t['index']:.2f}"})
        print(table(rows, ["features", "metric", f"precision@{K}", "queries/s", "index build s"]))
        print(f"AE training: {t_ae['seconds']:.0f} s (not in the index build time).\n")


if __name__ == "__main__":
    main()
