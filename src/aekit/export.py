"""Export a fitted estimator to ONNX: ``encoder.onnx`` and ``decoder.onnx``, for inference
without PyTorch (onnxruntime, or any ONNX runtime).

The graphs are traced from the model's public methods, chosen by its capabilities (never by
its family's name), and wrap the estimator's data handling: the encoder takes raw data in the
layout the estimator was fitted on (its standardization is folded in), the decoder gives data in
that layout and in those units. The graphs (batch axis dynamic, float32):

================  ===========================================  ==================================
graph / name      shape, type                                  when
================  ===========================================  ==================================
encoder ``x``     (batch, *input_shape) float32, raw data      always
encoder ``y``     (batch,) int64: index into ``classes_``      conditional families
encoder ``z``     (batch, latent_dim) float32: the code         always (``transform``'s output)
encoder           (batch, latent_dim) float32: log-variance    variational families
``z_logvar``      of q(z|x) (``z`` is its mean)
encoder           (batch, n_positions) int64: codebook         quantised families
``indices``       entries (``z`` is those entries, flattened)
decoder ``z``     (batch, latent_dim) float32: a code          not quantised
decoder           (batch, n_positions) int64: codebook         quantised families
``indices``       entries
decoder ``y``     (batch,) int64: index into ``classes_``      conditional families
decoder ``x``     (batch, *input_shape) float32, data units    always (``inverse_transform``)
================  ===========================================  ==================================

Each file also carries these facts as metadata (``onnx.load(path).metadata_props``: aekit's
version, the family, the role, input shape, latent size, whether standardization is folded in
and, for conditional families, the class labels as JSON) and a doc string on every input and
output. The exporter is PyTorch's TorchScript-based one (``torch.onnx.export(...,
dynamo=False)``), which needs nothing beyond the ``onnx`` package; the models hold no control
flow that depends on the data, so a trace is the whole computation.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from ._utils import atomic_write_bytes, optional_import
from ._version import __version__

__all__ = ["DEFAULT_OPSET", "MAX_OPSET", "MIN_OPSET", "OnnxFiles", "export_onnx", "graph_signature", "onnx_signature",
           "require_onnx"]

DEFAULT_OPSET = 17  # run by every onnxruntime since 1.14 (2023)
MIN_OPSET = 13
MAX_OPSET = 20  # the newest opset torch's TorchScript-based exporter writes
ENCODER_NAME, DECODER_NAME = "encoder.onnx", "decoder.onnx"


class OnnxFiles(NamedTuple):
    """What :func:`export_onnx` writes: the two graphs' paths and the opset."""

    encoder: Path
    decoder: Path
    opset: int

    def describe(self) -> list[str]:
        """One line per graph, ``path: x (batch, 64) float32 -> z (batch, 4) float32``, and for a
        conditional model a line naming the classes that the label input ``y`` indexes."""
        lines = [f"{path}: {graph_signature(path)}" for path in (self.encoder, self.decoder)]
        meta = {p.key: p.value for p in require_onnx().load(str(self.encoder), load_external_data=False).metadata_props}
        if "classes" in meta:
            lines.append(f"y is the index of the label in the classes {meta['classes']}")
        return lines


def graph_signature(path) -> str:
    """An ONNX file's inputs and outputs in words: ``x (batch, 64) float32 -> z (batch, 4) float32``."""
    onnx = require_onnx()
    graph = onnx.load(str(path), load_external_data=False).graph

    def words(values) -> str:
        out = []
        for v in values:
            t = v.type.tensor_type
            dims = ", ".join(d.dim_param or str(d.dim_value) for d in t.shape.dim)
            out.append(f"{v.name} ({dims}{',' if len(t.shape.dim) == 1 else ''}) "
                       f"{onnx.helper.tensor_dtype_to_np_dtype(t.elem_type)}")
        return ", ".join(out)

    return f"{words(graph.input)} -> {words(graph.output)}"


def require_onnx():
    """The ``onnx`` module, or an ImportError naming the extra that installs it."""
    return optional_import("onnx", "exporting to ONNX", "onnx", "onnx onnxruntime")


def onnx_signature(capabilities: dict[str, bool]) -> dict[str, tuple[list[str], list[str]]]:
    """Input and output names of both graphs for a family with these capability flags:
    ``{"encoder": (inputs, outputs), "decoder": (inputs, outputs)}``."""
    label = ["y"] if capabilities["conditional"] else []
    enc_out = ["z"] + (["z_logvar"] if capabilities["variational"] else [])
    enc_out += ["indices"] if capabilities["quantised"] else []
    dec_in = ["indices"] if capabilities["quantised"] else ["z"]
    return {"encoder": (["x", *label], enc_out), "decoder": ([*dec_in, *label], ["x"])}


_DOCS = {
    ("encoder", "x"): "raw data, float32 (batch, {shape}), in the layout and units the estimator was fitted on",
    ("encoder", "z"): "the code, float32 (batch, {latent}): what the estimator's transform returns",
    ("encoder", "z_logvar"): "log-variance of q(z|x), float32 (batch, {latent}); z is its mean",
    ("encoder", "indices"): "codebook entries, int64 (batch, {positions}); z is those entries, flattened",
    ("decoder", "z"): "a code, float32 (batch, {latent})",
    ("decoder", "indices"): "codebook entries, int64 (batch, {positions}), as the encoder gives them",
    ("decoder", "x"): "data, float32 (batch, {shape}), in the estimator's layout and units: what inverse_transform returns",
    "y": "class, int64 (batch,): the index of the label in the metadata's classes (the estimator's classes_)",
}


class _Standardized(nn.Module):
    """A model with the estimator's standardization (per-feature mean and scale, or none) as buffers."""

    def __init__(self, model, mean, scale):
        super().__init__()
        self.model = model
        self.standardize = mean is not None
        if self.standardize:
            self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))  # (*input_shape)
            self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))


class _Encoder(_Standardized):
    """Raw data [+ class index] -> code (and log-variance / indices, as the capabilities say)."""

    def forward(self, x, *label):
        y = label[0] if label else None  # (B,) int64
        if self.standardize:
            x = (x - self.mean) / self.scale  # (B, *input_shape)
        m = self.model
        x = x.reshape(-1, *m.config.input_shape)  # (B, *model_shape)
        if m.variational:
            mu, logvar = m.posterior(x, y)  # (B, K) each
            out = [mu, logvar]
        else:
            out = [m.encode(x, y)]  # (B, K)
        if m.quantised:
            out.append(m.encode_indices(x))  # (B, M); traced once with encode (common subexpressions merge)
        return tuple(out)


class _Decoder(_Standardized):
    """Code (or codebook indices) [+ class index] -> data in the estimator's layout and units."""

    def __init__(self, model, mean, scale, input_shape):
        super().__init__(model, mean, scale)
        self.input_shape = tuple(input_shape)

    def forward(self, code, *label):
        y = label[0] if label else None  # (B,) int64
        m = self.model
        x = m.decode_indices(code) if m.quantised else m.decode(code, y)  # (B, *model_shape)
        x = x.reshape(-1, *self.input_shape)  # (B, *input_shape)
        return x * self.scale + self.mean if self.standardize else x


def _output_path(path) -> tuple[Path, Path]:
    """A folder gets encoder.onnx and decoder.onnx; ``NAME.onnx`` gets NAME.encoder.onnx and
    NAME.decoder.onnx beside it."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        return path.with_suffix(".encoder.onnx"), path.with_suffix(".decoder.onnx")
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is a file: to_onnx writes two files, {ENCODER_NAME} and {DECODER_NAME}, into a "
                         "folder (or NAME.encoder.onnx and NAME.decoder.onnx for a path NAME.onnx)")
    return path / ENCODER_NAME, path / DECODER_NAME


def _check_opset(opset) -> int:
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"opset must be an integer from {MIN_OPSET} to {MAX_OPSET} (torch's TorchScript-based "
                         f"exporter), got {opset!r}; the default {DEFAULT_OPSET} runs on onnxruntime >= 1.14")
    return int(opset)


def export_onnx(estimator, path, *, opset: int = DEFAULT_OPSET) -> OnnxFiles:
    """Write a fitted estimator's encoder and decoder as ONNX graphs (see the module's table for
    their inputs and outputs). ``path``: a folder (created), or ``NAME.onnx`` for
    ``NAME.encoder.onnx`` and ``NAME.decoder.onnx``. Used by ``estimator.to_onnx``."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    onnx = require_onnx()
    opset = _check_opset(opset)
    enc_path, dec_path = _output_path(path)
    model = copy.deepcopy(estimator.model_).cpu().eval()  # traced on the CPU; the estimator's model is untouched
    for p in model.parameters():
        p.requires_grad_(False)
    caps = model.capabilities()
    names = onnx_signature(caps)
    input_shape = tuple(int(s) for s in estimator.input_shape_)
    mean, scale = estimator.mean_, estimator.scale_
    latent = int(model.config.latent_dim)

    n = 2  # a traced example batch; the batch axis is declared dynamic
    x = torch.zeros((n, *input_shape)) if mean is None else torch.as_tensor(np.broadcast_to(mean, (n, *input_shape)).copy())
    label = (torch.arange(n, dtype=torch.long) % model.config.n_classes,) if caps["conditional"] else ()
    encoder = _Encoder(model, mean, scale)
    with torch.no_grad():
        enc_out = encoder(x, *label)
    code = enc_out[-1] if caps["quantised"] else enc_out[0]
    facts = {"positions": code.shape[1] if caps["quantised"] else "", "latent": latent,
             "shape": ", ".join(map(str, input_shape))}
    meta = {
        "aekit_version": __version__,
        "family": type(model).name,
        "estimator": type(estimator).__name__,
        "input_shape": json.dumps(list(input_shape)),
        "latent_dim": str(latent),
        "standardized": json.dumps(mean is not None),
        "capabilities": json.dumps(caps),
    }
    if caps["conditional"]:
        meta["classes"] = json.dumps(np.asarray(estimator.classes_).tolist())
    decoder = _Decoder(model, mean, scale, input_shape)
    with torch.no_grad():
        dec_out = decoder(code, *label)
    graphs = (("encoder", encoder, (x, *label), enc_out, enc_path),
              ("decoder", decoder, (code, *label), (dec_out,), dec_path))
    for role, module, args, results, out in graphs:
        inputs, outputs = names[role]
        blob = _trace(module, args, inputs, outputs, opset)
        proto = onnx.load_from_string(blob)
        # the exporter leaves output sizes symbolic once an axis is dynamic: state them (all but the batch)
        for value, example in zip([*proto.graph.input, *proto.graph.output], [*args, *results]):
            dims = value.type.tensor_type.shape.dim
            for i, size in enumerate(example.shape):
                dims[i].Clear()
                if i == 0:
                    dims[i].dim_param = "batch"
                else:
                    dims[i].dim_value = int(size)
        proto.doc_string = (f"aekit {type(estimator).__name__} {role}: inputs {', '.join(inputs)}; outputs "
                            f"{', '.join(outputs)} (batch axis dynamic)")
        for value in [*proto.graph.input, *proto.graph.output]:
            value.doc_string = _DOCS.get((role, value.name), _DOCS.get(value.name, "")).format(**facts)
        for key, value in {**meta, "role": role}.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, str(value)
        onnx.checker.check_model(proto)
        atomic_write_bytes(out, proto.SerializeToString())
    return OnnxFiles(enc_path, dec_path, opset)


def _trace(module: nn.Module, args: tuple, inputs: list[str], outputs: list[str], opset: int) -> bytes:
    """One graph as ONNX bytes, every input and output with a dynamic batch axis."""
    import io

    buf = io.BytesIO()
    with warnings.catch_warnings():
        # the TorchScript-based exporter is deprecated in favour of torch.export's, which needs
        # onnxscript; and a label check in the model (one_hot) reads values that a trace fixes
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            module, args, buf, dynamo=False, opset_version=opset, input_names=inputs, output_names=outputs,
            dynamic_axes={name: {0: "batch"} for name in inputs + outputs}, do_constant_folding=True,
        )
    return buf.getvalue()
