"""A lossy codec over any fitted encoder/decoder: uniform per-dimension quantisation of the code,
then entropy coding into a self-describing byte stream.

Pipeline: ``X -> estimator.transform -> quantise (bits per dimension, ranges learned at fit) ->
entropy coder -> bytes``, and back with ``inverse_transform``. The entropy coder is a static
multi-symbol range coder written here (32-bit, byte-wise output with carry propagation, after
Martin 1979 and the LZMA range coder): one frequency table per code dimension is counted on the
training codes at ``fit`` (every symbol gets at least one count, so unseen values stay
encodable). The tables are part of the codec, shared by encoder and decoder like the network
weights, and are not repeated in each stream. ``coder="zlib"`` (DEFLATE of the symbols, a
general-purpose baseline) and ``coder="raw"`` (fixed-length bit packing, no entropy coding) are
there to measure against.

Stream format (version 1, big-endian)::

    magic     4 bytes  b"AEKC"
    version   u8       1
    coder     u8       0 raw, 1 arithmetic, 2 zlib
    bits      u8       bits per code dimension
    ndim      u8       dimensions of one sample's shape
    fingerprint 8 bytes first bytes of SHA-256 over the codec's tables (bits, ranges, frequencies)
    n         u32      number of samples
    shape     ndim x u32  one sample's shape (as given to fit)
    k         u16      code dimensions
    length    u32      payload bytes
    payload
    crc32     u32      over everything above

Decoding checks every field, the exact length and the checksum, and bounds the work by the
payload size, so corrupted or truncated input raises ``ValueError`` (never a crash or a hang).
"""

from __future__ import annotations

import bisect
import hashlib
import struct
import zlib
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ._common import decode, encode, fitted

__all__ = ["FORMAT_VERSION", "MAGIC", "Codec"]

MAGIC = b"AEKC"
FORMAT_VERSION = 1
_CODERS = {"raw": 0, "arithmetic": 1, "zlib": 2}
_HEAD = struct.Struct(">4sBBBB8sI")  # magic, version, coder, bits, ndim, fingerprint, n
_TAIL = struct.Struct(">HI")  # k, payload length
_CRC = struct.Struct(">I")
_TOTAL = 1 << 16  # frequency table total (<= 2^16 keeps range // total >= 2^8)
_TOP, _MASK32 = 1 << 24, (1 << 32) - 1
_MAX_BITS = 12


# ----------------------------------------------------------------------------- range coder


def _freq_table(counts: np.ndarray) -> list[int]:
    """Counts (L,) -> integer frequencies, each >= 1, summing to at most 2^16."""
    L = len(counts)
    spare = _TOTAL - L
    return (1 + np.floor(counts * spare / max(counts.sum(), 1))).astype(np.int64).tolist()


def _cumulative(freqs: list[int]) -> list[int]:
    cum = [0]
    for f in freqs:
        cum.append(cum[-1] + f)
    return cum


def _range_encode(symbols: np.ndarray, cums: list[list[int]]) -> bytes:
    """Encode symbols (n, k) with column j's cumulative table ``cums[j]``."""
    low, rng, cache, pending = 0, _MASK32, 0, 1
    out = bytearray()

    def shift_low():
        nonlocal low, cache, pending
        if low < 0xFF000000 or low > _MASK32:
            carry = low >> 32
            out.append((cache + carry) & 0xFF)
            out.extend(((0xFF + carry) & 0xFF,) * (pending - 1))
            pending = 0
            cache = (low >> 24) & 0xFF
        pending += 1
        low = (low << 8) & _MASK32

    k = len(cums)
    for j, s in enumerate(symbols.ravel().tolist()):
        cum = cums[j % k]
        r = rng // cum[-1]
        low += r * cum[s]
        rng = r * (cum[s + 1] - cum[s])
        while rng < _TOP:
            rng <<= 8
            shift_low()
    for _ in range(5):
        shift_low()
    return bytes(out[1:])  # the first byte is always the initial cache (0)


def _range_decode(data: bytes, n_symbols: int, cums: list[list[int]]) -> np.ndarray:
    """Inverse of ``_range_encode``; raises ValueError when the stream runs out."""
    pos = 4
    if len(data) < 4:
        raise ValueError("corrupted stream: arithmetic payload shorter than 4 bytes")
    code, rng = int.from_bytes(data[:4], "big"), _MASK32
    k = len(cums)
    out = [0] * n_symbols
    size = len(data)
    for i in range(n_symbols):
        cum = cums[i % k]
        r = rng // cum[-1]
        v = min(code // r, cum[-1] - 1)
        s = bisect.bisect_right(cum, v) - 1
        code -= r * cum[s]
        rng = r * (cum[s + 1] - cum[s])
        while rng < _TOP:
            if pos < size:
                byte = data[pos]
            elif pos < size + 4:  # the encoder leaves its final zero byte(s) unwritten
                byte = 0
            else:
                raise ValueError("corrupted stream: arithmetic payload ends early")
            code = ((code << 8) | byte) & _MASK32
            pos += 1
            rng <<= 8
        out[i] = s
    return np.asarray(out, dtype=np.int64)


# ----------------------------------------------------------------------------- the codec


class Codec(BaseEstimator):
    """Lossy compression of samples through a fitted estimator's code.

    Parameters
    ----------
    estimator : fitted estimator with ``transform`` and ``inverse_transform`` (any aekit
        estimator except ConditionalVAE, or a PCA for the baseline). An unfitted one is cloned
        and fitted on the X given to ``fit``.
    bits : int in [1, 12], default=8
        Quantisation levels per code dimension: 2**bits, spread uniformly over the dimension's
        range on the training codes (values outside are clipped to it).
    coder : {"arithmetic", "zlib", "raw"}, default="arithmetic"
        Entropy coder: the static per-dimension range coder, DEFLATE of the symbols, or plain
        fixed-length packing (bits per dimension, no entropy coding).
    range_quantile : float in [0, 0.5), default=0.0
        Quantiles of each dimension's training codes used as its range (0: min and max).

    Attributes
    ----------
    estimator_ : the fitted estimator used.
    low_, high_ : (k,) per-dimension quantiser ranges.
    frequencies_ : (k, 2**bits) int64 symbol frequencies of the range coder.
    input_shape_ : one sample's shape, as given to fit.
    fingerprint_ : 8 bytes identifying the tables; written in each stream and checked on decode.

    Examples
    --------
    >>> from sklearn.decomposition import PCA
    >>> from aekit.apps import Codec
    >>> from aekit.datasets import load_dataset
    >>> X = load_dataset("digits").X.reshape(-1, 64)
    >>> codec = Codec(PCA(8), bits=6).fit(X)
    >>> blob = codec.encode(X[:10])
    >>> blob[:4], codec.decode(blob).shape
    (b'AEKC', (10, 64))
    """

    def __init__(self, estimator=None, *, bits: int = 8, coder: str = "arithmetic", range_quantile: float = 0.0):
        self.estimator = estimator
        self.bits = bits
        self.coder = coder
        self.range_quantile = range_quantile

    def _check_params(self) -> None:
        if self.estimator is None:
            raise ValueError("Codec needs an estimator (a fitted aekit estimator, or e.g. PCA(k))")
        if isinstance(self.bits, bool) or not isinstance(self.bits, (int, np.integer)) or not 1 <= self.bits <= _MAX_BITS:
            raise ValueError(f"bits must be an integer in [1, {_MAX_BITS}], got {self.bits!r}")
        if self.coder not in _CODERS:
            raise ValueError(f"coder must be one of {sorted(_CODERS)}, got {self.coder!r}")
        if not 0 <= self.range_quantile < 0.5:
            raise ValueError(f"range_quantile must lie in [0, 0.5), got {self.range_quantile!r}")

    def fit(self, X, y=None):
        """Fit the quantiser ranges and symbol frequencies on X's codes (and the estimator, if unfitted)."""
        self._check_params()
        X = np.asarray(X, dtype=np.float32)
        if X.ndim < 2 or len(X) < 2:
            raise ValueError(f"X must hold at least 2 samples (n, ...), got shape {X.shape}")
        self.estimator_ = fitted(self.estimator, X)
        self.input_shape_ = tuple(int(s) for s in X.shape[1:])
        Z = encode(self.estimator_, X)  # (n, k)
        q = self.range_quantile
        self.low_ = np.quantile(Z, q, axis=0).astype(np.float64)
        self.high_ = np.quantile(Z, 1 - q, axis=0).astype(np.float64)
        flat_dims = self.high_ <= self.low_
        self.high_[flat_dims] = self.low_[flat_dims] + 1.0
        S = self._symbols(Z)
        levels = 1 << int(self.bits)
        counts = np.stack([np.bincount(S[:, j], minlength=levels) for j in range(S.shape[1])])
        self.frequencies_ = np.asarray([_freq_table(c) for c in counts], dtype=np.int64)
        self._set_tables()
        return self

    def _set_tables(self) -> None:
        self._cums = [_cumulative(f) for f in self.frequencies_.tolist()]
        h = hashlib.sha256()
        for part in (np.int64(self.bits), self.low_, self.high_, self.frequencies_, np.asarray(self.input_shape_)):
            h.update(np.ascontiguousarray(part).tobytes())
        self.fingerprint_ = h.digest()[:8]
        # fewest bits any one symbol can cost: bounds how many symbols a payload can hold
        p_max = (self.frequencies_.max(axis=1) / self.frequencies_.sum(axis=1)).max()
        self._min_bits = float(-np.log2(p_max))

    # -- quantiser -----------------------------------------------------------------------------
    def _symbols(self, Z: np.ndarray) -> np.ndarray:
        levels = (1 << int(self.bits)) - 1
        u = (np.asarray(Z, dtype=np.float64) - self.low_) / (self.high_ - self.low_)
        return np.clip(np.rint(u * levels), 0, levels).astype(np.int64)

    def quantize(self, X) -> np.ndarray:
        """Integer symbols (n, k) in [0, 2**bits) of X's codes."""
        check_is_fitted(self)
        return self._symbols(encode(self.estimator_, X))

    def dequantize(self, symbols) -> np.ndarray:
        """Codes (n, k) at the centres of the quantiser cells of ``symbols``."""
        check_is_fitted(self)
        S = np.asarray(symbols, dtype=np.float64)
        return (self.low_ + S / ((1 << int(self.bits)) - 1) * (self.high_ - self.low_)).astype(np.float32)

    # -- bytes ---------------------------------------------------------------------------------
    def encode(self, X) -> bytes:
        """Compress samples X (n, ...) shaped like the fit data into one byte string."""
        check_is_fitted(self)
        X = np.asarray(X, dtype=np.float32)
        if X.shape[1:] != self.input_shape_:
            raise ValueError(f"X has per-sample shape {X.shape[1:]}, the codec was fitted on {self.input_shape_}")
        S = self.quantize(X)
        n, k = S.shape
        if self.coder == "arithmetic":
            payload = _range_encode(S, self._cums)
        elif self.coder == "zlib":
            payload = zlib.compress(self._pack_bytes(S).tobytes(), 9)
        else:
            payload = np.packbits(((S[..., None] >> np.arange(int(self.bits) - 1, -1, -1)) & 1).astype(np.uint8)).tobytes()
        head = _HEAD.pack(MAGIC, FORMAT_VERSION, _CODERS[self.coder], int(self.bits), len(self.input_shape_),
                          self.fingerprint_, n)
        body = head + struct.pack(f">{len(self.input_shape_)}I", *self.input_shape_) + _TAIL.pack(k, len(payload)) + payload
        return body + _CRC.pack(zlib.crc32(body))

    def _pack_bytes(self, S: np.ndarray) -> np.ndarray:
        """Symbols as uint8/uint16 in dimension-major order (similar values side by side)."""
        return np.ascontiguousarray(S.T.astype(">u2" if self.bits > 8 else np.uint8))

    def decode(self, data) -> np.ndarray:
        """Decompress a byte string from ``encode`` back to samples (n, *input_shape_).

        Raises ValueError for anything that is not an intact stream from this codec.
        """
        check_is_fitted(self)
        S = self._read(data)
        return np.asarray(decode(self.estimator_, self.dequantize(S)), dtype=np.float32).reshape(len(S), *self.input_shape_)

    def _read(self, data) -> np.ndarray:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"decode needs bytes, got {type(data).__name__}")
        data = bytes(data)
        fixed = _HEAD.size + _TAIL.size + _CRC.size
        if len(data) < fixed:
            raise ValueError(f"truncated stream: {len(data)} bytes, shorter than any header ({fixed})")
        magic, version, coder_id, bits, ndim, fingerprint, n = _HEAD.unpack_from(data)
        if magic != MAGIC:
            raise ValueError("not an aekit codec stream (bad magic bytes)")
        if version != FORMAT_VERSION:
            raise ValueError(f"unsupported codec stream version {version} (this reader handles {FORMAT_VERSION})")
        pos = _HEAD.size + 4 * ndim
        if len(data) < pos + _TAIL.size + _CRC.size:
            raise ValueError("truncated stream: header cut short")
        shape = struct.unpack_from(f">{ndim}I", data, _HEAD.size)
        k, length = _TAIL.unpack_from(data, pos)
        pos += _TAIL.size
        if len(data) != pos + length + _CRC.size:
            raise ValueError(f"truncated or padded stream: expected {pos + length + _CRC.size} bytes, got {len(data)}")
        if zlib.crc32(data[: pos + length]) != _CRC.unpack_from(data, pos + length)[0]:
            raise ValueError("corrupted stream: checksum mismatch")
        coder = {v: c for c, v in _CODERS.items()}.get(coder_id)
        if coder is None:
            raise ValueError(f"unknown coder id {coder_id} in stream")
        k_fit = len(self.low_)
        if bits != self.bits or fingerprint != self.fingerprint_ or k != k_fit or tuple(shape) != self.input_shape_:
            raise ValueError("stream was written by a different codec (bits, tables, code size or sample shape differ)")
        payload = data[pos : pos + length]
        total = n * k
        if coder == "arithmetic":
            if total * self._min_bits > 8 * length + 64:
                raise ValueError("corrupted stream: more symbols claimed than the payload can hold")
            return _range_decode(payload, total, self._cums).reshape(n, k)
        width = 2 if bits > 8 else 1
        if coder == "zlib":
            d = zlib.decompressobj()
            try:
                raw = d.decompress(payload, total * width + 1)
            except zlib.error as e:
                raise ValueError(f"corrupted stream: {e}") from None
            if len(raw) != total * width or not d.eof or d.unconsumed_tail or d.unused_data:
                raise ValueError("corrupted stream: zlib payload does not hold n x k symbols")
            S = np.frombuffer(raw, dtype=">u2" if width == 2 else np.uint8).reshape(k, n).T.astype(np.int64)
        else:
            if length != (total * bits + 7) // 8:
                raise ValueError("corrupted stream: raw payload length does not match n x k x bits")
            b = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))[: total * bits].reshape(total, bits)
            S = (b.astype(np.int64) << np.arange(bits - 1, -1, -1)).sum(axis=1).reshape(n, k)
        if S.size and S.max() >= (1 << bits):
            raise ValueError("corrupted stream: symbol out of range")
        return S

    def bits_per_sample(self, X) -> float:
        """Size of ``encode(X)`` in bits per sample, headers and checksum included."""
        return 8 * len(self.encode(X)) / len(X)

    # -- persistence of the tables ---------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the codec's tables (not the estimator; save that with its own ``save``) to an
        ``.npz`` file readable without pickle. Reload with ``Codec.load(path, estimator)``."""
        check_is_fitted(self)
        path = Path(path)
        with open(path, "wb") as f:
            np.savez(f, bits=self.bits, coder=np.asarray(self.coder), range_quantile=self.range_quantile,
                     low=self.low_, high=self.high_, frequencies=self.frequencies_,
                     input_shape=np.asarray(self.input_shape_, dtype=np.int64))
        return path

    @classmethod
    def load(cls, path, estimator) -> Codec:
        """A codec with the tables saved by ``save`` over the fitted ``estimator`` it was made with."""
        with np.load(path, allow_pickle=False) as d:
            codec = cls(estimator, bits=int(d["bits"]), coder=str(d["coder"]), range_quantile=float(d["range_quantile"]))
            codec._check_params()
            codec.estimator_ = estimator
            codec.low_, codec.high_ = d["low"].astype(np.float64), d["high"].astype(np.float64)
            codec.frequencies_ = d["frequencies"].astype(np.int64)
            codec.input_shape_ = tuple(int(s) for s in d["input_shape"])
        codec._set_tables()
        return codec
