"""Similarity search in code space: exact brute-force k-nearest neighbours over an estimator's
codes (or raw features), computed in bounded batches with torch."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ._common import encode, fitted, flat

__all__ = ["LatentIndex", "precision_at_k"]


class LatentIndex(BaseEstimator):
    """Exact nearest-neighbour index over codes.

    Brute force in batches: a float32 matrix product picks ``2k + 8`` candidates per query and
    their distances are recomputed exactly in float64 to rank them.

    Parameters
    ----------
    estimator : fitted estimator with ``transform`` (an aekit estimator, a PCA, ...) or None
        to index the raw features (flattened). An unfitted estimator is cloned and fitted on the
        X given to ``fit``.
    metric : {"euclidean", "cosine"}, default="euclidean"
        "cosine" L2-normalises the codes and returns 1 - cosine similarity as the distance.
    batch_size : int, default=1024
        Queries per batch; memory is ``batch_size`` x n_indexed distances.

    Attributes
    ----------
    estimator_ : the fitted estimator (None for raw features).
    codes_ : torch.Tensor (n, k) float32, the indexed codes (normalised for cosine).
    n_indexed_ : int.

    Examples
    --------
    >>> from aekit.apps import LatentIndex
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> dist, idx = LatentIndex().fit(X).query(X[:2], k=3)
    >>> idx[:, 0].tolist(), dist.shape
    ([0, 1], (2, 3))
    """

    def __init__(self, estimator=None, *, metric: str = "euclidean", batch_size: int = 1024):
        self.estimator = estimator
        self.metric = metric
        self.batch_size = batch_size

    def _codes(self, X) -> torch.Tensor:
        Z = flat(X) if self.estimator_ is None else encode(self.estimator_, X)
        Z = torch.as_tensor(np.ascontiguousarray(Z, dtype=np.float32))
        if not torch.isfinite(Z).all():
            raise ValueError("codes contain NaN or infinity (check X)")
        if self.metric == "cosine":
            Z = torch.nn.functional.normalize(Z, dim=1)
        return Z

    def fit(self, X, y=None):
        """Encode X and index its codes."""
        if self.metric not in ("euclidean", "cosine"):
            raise ValueError(f"metric must be 'euclidean' or 'cosine', got {self.metric!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, (int, np.integer)) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        X = np.asarray(X, dtype=np.float32)
        if X.ndim < 2 or len(X) < 1:
            raise ValueError(f"X must be (n, ...) with n >= 1, got shape {X.shape}")
        self.estimator_ = None if self.estimator is None else fitted(self.estimator, X)
        self.codes_ = self._codes(X)  # (N, k)
        self._sq_norms = (self.codes_**2).sum(1)  # (N,)
        self.n_indexed_ = len(self.codes_)
        return self

    @torch.no_grad()
    def query(self, Q, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest indexed samples of each query, in scikit-learn's order
        (``NearestNeighbors.kneighbors``): distances first, then indices.

        Returns
        -------
        distances : (m, k) float32, Euclidean distances (or 1 - cosine similarity), ascending.
        indices : (m, k) int64, into the X given to ``fit``, nearest first (ties: smaller index first).
        """
        check_is_fitted(self)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= self.n_indexed_:
            raise ValueError(f"k must be an integer in [1, {self.n_indexed_}], got {k!r}")
        Zq = self._codes(np.asarray(Q, dtype=np.float32))  # (M, k)
        if Zq.shape[1] != self.codes_.shape[1]:
            raise ValueError(f"queries have {Zq.shape[1]} features, the index has {self.codes_.shape[1]}")
        idx, dist = [], []
        for q in Zq.split(int(self.batch_size)):
            if self.metric == "cosine":
                d = 1.0 - q @ self.codes_.T  # (b, N)
            else:  # squared distances via the expansion, clamped at 0 against round-off
                d = ((q**2).sum(1, keepdim=True) - 2.0 * q @ self.codes_.T + self._sq_norms).clamp_min_(0)
            # float32 expansion picks candidates; exact float64 distances rank them
            cand = torch.topk(d, min(self.n_indexed_, 2 * int(k) + 8), dim=1, largest=False).indices  # (b, c)
            cand = cand.sort(dim=1).values  # ties then go to the smaller index (stable sort below)
            diff = q[:, None, :].double() - self.codes_[cand].double()  # (b, c, k)
            exact = (diff**2).sum(-1)  # (b, c)
            if self.metric == "cosine":
                exact = exact / 2  # |a - b|^2 / 2 = 1 - cos for unit vectors
            else:
                exact = exact.sqrt()
            vals, order = torch.sort(exact, dim=1, stable=True)
            idx.append(cand.gather(1, order[:, : int(k)]))
            dist.append(vals[:, : int(k)].float())
        return torch.cat(dist).numpy(), torch.cat(idx).numpy().astype(np.int64)

    def kneighbors(self, X, n_neighbors: int = 10, return_distance: bool = True):
        """scikit-learn's name for :meth:`query`: ``(distances, indices)``, or the indices alone."""
        dist, idx = self.query(X, n_neighbors)
        return (dist, idx) if return_distance else idx


def precision_at_k(indices, y_indexed, y_query) -> float:
    """Mean fraction of each query's neighbours (``indices`` (m, k) from ``query``) whose label
    equals the query's label.

    Examples
    --------
    >>> import numpy as np
    >>> from aekit.apps import precision_at_k
    >>> precision_at_k(np.array([[0, 1], [2, 0]]), np.array([5, 5, 6]), np.array([5, 5]))
    0.75
    """
    indices = np.asarray(indices)
    hits = np.asarray(y_indexed)[indices] == np.asarray(y_query)[:, None]
    return float(hits.mean())
