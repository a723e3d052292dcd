"""ONNX export (``estimator.to_onnx``, ``aekit export``): onnxruntime computes what PyTorch
computes, for every registered family with an MLP and a conv network, from raw data."""

from __future__ import annotations

import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from sklearn.exceptions import NotFittedError

import aekit
from aekit import cli
from aekit.export import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET
from helpers import expect_cli_error

TOL = dict(rtol=1e-5, atol=1e-5)
# latent_dim 8: a VQ-VAE with its default embedding_dim=4 has 2 code positions
NETS = {"mlp": dict(hidden_dims=(16,)), "conv": dict(hidden_dims=(4, 8))}


@pytest.fixture(scope="module")
def digits():
    d = aekit.load_dataset("digits")
    return d.X[:240], d.y[:240]


def _session(path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _run(session, feeds) -> dict[str, np.ndarray]:
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))


def _fit(family, architecture, X, y):
    est = aekit.estimator_class(family)(latent_dim=8, epochs=2, batch_size=32, random_state=0, device="cpu",
                                        architecture=architecture, **NETS[architecture])
    return est.fit(X, y if est.capabilities()["conditional"] else None)


@pytest.mark.parametrize("architecture", ["mlp", "conv"])
@pytest.mark.parametrize("family", aekit.model_names())
def test_onnxruntime_matches_pytorch(family, architecture, digits, tmp_path):
    X_img, y = digits
    # the MLP gets a table in raw units (0..16), so the standardization is folded into the graphs;
    # the conv net gets images in [0, 1] (no standardization; sigmoid outputs for BCE / Bernoulli)
    X = X_img.reshape(len(X_img), -1) * 16.0 if architecture == "mlp" else X_img
    est = _fit(family, architecture, X, y)
    caps = est.capabilities()
    assert (est.mean_ is not None) == (architecture == "mlp")
    files = est.to_onnx(tmp_path)
    assert files.encoder == tmp_path / "encoder.onnx" and files.decoder == tmp_path / "decoder.onnx"
    encoder, decoder = _session(files.encoder), _session(files.decoder)

    for n in (37, 1):  # traced with 2 rows: the batch axis is dynamic
        Xq, yq = X[:n], y[:n]
        feeds = {"x": Xq}
        if caps["conditional"]:
            feeds["y"] = np.searchsorted(est.classes_, yq).astype(np.int64)
        labels = (yq,) if caps["conditional"] else ()
        got = _run(encoder, feeds)
        z = est.transform(Xq, *labels)
        np.testing.assert_allclose(got["z"], z, **TOL)
        model_x = est.to_model_input(Xq)
        if caps["variational"]:
            import torch

            label_codes = torch.as_tensor(feeds["y"]) if caps["conditional"] else None
            _, logvar = est.model_.posterior(model_x, label_codes)
            np.testing.assert_allclose(got["z_logvar"], logvar.detach().numpy(), **TOL)
        if caps["quantised"]:
            indices = est.model_.encode_indices(model_x).numpy()
            assert got["indices"].dtype == np.int64
            np.testing.assert_array_equal(got["indices"], indices)
            code = {"indices": got["indices"]}
        else:
            code = {"z": z}
        if caps["conditional"]:
            code["y"] = feeds["y"]
        x_hat = _run(decoder, code)["x"]
        assert x_hat.shape == Xq.shape
        np.testing.assert_allclose(x_hat, est.inverse_transform(z, *labels), **TOL)

    if caps["quantised"]:
        assert len(np.unique(got["indices"])) > 1 or len(np.unique(_run(encoder, {"x": X})["indices"])) > 1
    if caps["conditional"]:  # the label input is wired: another class decodes differently
        other = {**code, "y": (code["y"] + 1) % len(est.classes_)}
        assert not np.allclose(_run(decoder, other)["x"], x_hat)


def test_image_layout_without_channel_axis(digits, tmp_path):
    X, _ = digits
    X = X[:, 0]  # (n, 8, 8): the estimator adds the channel axis; the graphs take and give (n, 8, 8)
    est = aekit.VAE(latent_dim=4, hidden_dims=(4, 8), architecture="conv", epochs=2, random_state=0).fit(X)
    files = est.to_onnx(tmp_path / "vae.onnx")
    assert files.encoder.name == "vae.encoder.onnx" and files.decoder.name == "vae.decoder.onnx"
    z = _run(_session(files.encoder), {"x": X[:5]})["z"]
    np.testing.assert_allclose(z, est.transform(X[:5]), **TOL)
    x_hat = _run(_session(files.decoder), {"z": z})["x"]
    assert x_hat.shape == (5, 8, 8)
    np.testing.assert_allclose(x_hat, est.inverse_transform(z), **TOL)


@pytest.mark.parametrize("activation", ["gelu", "silu", "elu", "softplus", "tanh", "leaky_relu"])
def test_every_activation_exports(activation, digits, tmp_path):
    X, _ = digits
    est = aekit.AutoEncoder(latent_dim=4, hidden_dims=(16,), activation=activation, epochs=1, random_state=0).fit(X)
    z = _run(_session(est.to_onnx(tmp_path).encoder), {"x": X[:9]})["z"]
    np.testing.assert_allclose(z, est.transform(X[:9]), **TOL)


def test_names_shapes_metadata_and_opset(digits, tmp_path):
    X, y = digits
    cvae = aekit.ConditionalVAE(latent_dim=3, hidden_dims=(16,), epochs=1, random_state=0).fit(X, np.array(list("abcdefghij"))[y])
    files = cvae.to_onnx(tmp_path, opset=MIN_OPSET)
    assert files.opset == MIN_OPSET
    for path, role, inputs, outputs in ((files.encoder, "encoder", ["x", "y"], ["z", "z_logvar"]),
                                        (files.decoder, "decoder", ["z", "y"], ["x"])):
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
        assert [i.name for i in proto.graph.input] == inputs and [o.name for o in proto.graph.output] == outputs
        assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [MIN_OPSET]
        assert all(v.doc_string for v in [*proto.graph.input, *proto.graph.output])
        meta = {p.key: p.value for p in proto.metadata_props}
        assert meta["role"] == role and meta["family"] == "cvae" and meta["estimator"] == "ConditionalVAE"
        assert json.loads(meta["classes"]) == list("abcdefghij") and json.loads(meta["input_shape"]) == [1, 8, 8]
        assert meta["latent_dim"] == "3" and json.loads(meta["capabilities"])["conditional"] is True
    lines = files.describe()
    assert lines[0].endswith("x (batch, 1, 8, 8) float32, y (batch,) int64 -> z (batch, 3) float32, z_logvar (batch, 3) float32")
    assert lines[1].endswith("z (batch, 3) float32, y (batch,) int64 -> x (batch, 1, 8, 8) float32")
    assert lines[2] == 'y is the index of the label in the classes ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]'


def test_bad_arguments(digits, tmp_path):
    X, _ = digits
    with pytest.raises(NotFittedError):
        aekit.AutoEncoder().to_onnx(tmp_path)
    est = aekit.AutoEncoder(latent_dim=2, hidden_dims=(8,), epochs=1, random_state=0).fit(X)
    for opset in (MIN_OPSET - 1, MAX_OPSET + 1, 17.0, "17", True):
        with pytest.raises(ValueError, match=f"opset must be an integer from {MIN_OPSET} to {MAX_OPSET}"):
            est.to_onnx(tmp_path, opset=opset)
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ValueError, match="is a file: to_onnx writes two files"):
        est.to_onnx(tmp_path / "a_file")


def test_missing_extra_names_it(digits, tmp_path, monkeypatch, capsys):
    X, _ = digits
    est = aekit.AutoEncoder(latent_dim=2, hidden_dims=(8,), epochs=1, random_state=0).fit(X)
    est.save(tmp_path / "model.safetensors")
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if onnx were not installed
    with pytest.raises(ImportError, match=r"pip install aekit\[onnx\]"):
        est.to_onnx(tmp_path / "out")
    err = expect_cli_error(capsys, ["export", str(tmp_path), "-o", str(tmp_path / "out")])
    assert "pip install aekit[onnx]" in err
    assert not (tmp_path / "out").exists()


def test_cli_export(tmp_path, capsys):
    from aekit.run import fit_run

    run = fit_run(tmp_path / "run", "vqvae", params={"epochs": 1, "latent_dim": 8, "hidden_dims": (16,)}, limit=100,
                  report=False).run_dir
    assert cli.main(["export", str(run), "--format", "onnx", "-o", str(tmp_path / "onnx"), "--opset", "18"]) == 0
    out = capsys.readouterr().out
    assert "encoder.onnx: x (batch, 1, 8, 8) float32 -> z (batch, 8) float32, indices (batch, 2) int64" in out
    assert "decoder.onnx: indices (batch, 2) int64 -> x (batch, 1, 8, 8) float32" in out and "opset 18" in out
    est = aekit.load(run)
    X = aekit.load_dataset("digits", "test").X[:10]
    got = _run(_session(tmp_path / "onnx" / "encoder.onnx"), {"x": X})
    np.testing.assert_allclose(got["z"], est.transform(X), **TOL)
    x_hat = _run(_session(tmp_path / "onnx" / "decoder.onnx"), {"indices": got["indices"]})["x"]
    np.testing.assert_allclose(x_hat, est.reconstruct(X), **TOL)
    assert [o.version for o in onnx.load(str(tmp_path / "onnx" / "decoder.onnx")).opset_import] == [18]
    expect_cli_error(capsys, ["export", str(run), "--format", "tflite", "-o", str(tmp_path / "x")])


def test_cli_help_states_the_library_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["export", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"{MIN_OPSET} to {MAX_OPSET} (default: {DEFAULT_OPSET})" in text
    assert "pip install aekit[onnx]" in text
