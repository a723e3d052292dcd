"""Feature extraction: how much label information a code carries, read by a linear probe
(logistic regression on standardised codes) or by k-nearest-neighbour voting."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

__all__ = ["knn_accuracy", "linear_probe"]


def _codes(Z) -> np.ndarray:
    Z = np.asarray(Z, dtype=np.float64)
    return Z.reshape(len(Z), -1)


def linear_probe(codes_train, y_train, codes_test, y_test, *, C: float = 1.0, max_iter: int = 2000) -> float:
    """Test accuracy of a multinomial logistic regression trained on the training codes.

    Codes are standardised (statistics from the training codes) so ``C`` means the same for
    every code. Any 2-D (or flattenable) features work: raw pixels, PCA, AE codes.

    Examples
    --------
    >>> from aekit.apps import linear_probe
    >>> from aekit.datasets import load_dataset
    >>> tr, te = load_dataset("digits"), load_dataset("digits", split="test")
    >>> linear_probe(tr.X, tr.y, te.X, te.y) > 0.9
    True
    """
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    clf.fit(_codes(codes_train), np.asarray(y_train))
    return float(clf.score(_codes(codes_test), np.asarray(y_test)))


def knn_accuracy(codes_train, y_train, codes_test, y_test, *, n_neighbors: int = 5, metric: str = "euclidean") -> float:
    """Test accuracy of k-nearest-neighbour voting in code space (codes used as they are).

    Examples
    --------
    >>> from aekit.apps import knn_accuracy
    >>> from aekit.datasets import load_dataset
    >>> tr, te = load_dataset("digits"), load_dataset("digits", split="test")
    >>> knn_accuracy(tr.X, tr.y, te.X, te.y) > 0.9
    True
    """
    clf = KNeighborsClassifier(n_neighbors=n_neighbors, metric=metric)
    clf.fit(_codes(codes_train), np.asarray(y_train))
    return float(clf.score(_codes(codes_test), np.asarray(y_test)))
