"""ONNX export: encode throughput of the exported encoder under onnxruntime against PyTorch, on
MNIST, for an MLP and a conv VAE, 1 thread each, the same batch sizes.

Three ways to encode the same images: onnxruntime on ``encoder.onnx`` (``session.run``), the
PyTorch module (``model.encode`` under ``torch.inference_mode``, from and to numpy), and the
estimator (``transform``, which also validates its input). Each (network, batch size) is timed
in rounds, the three ways interleaved within a round so that a busy machine slows them alike;
the table gives the median over rounds. The codes are compared too (max |difference|).

    python benchmarks/bench_onnx.py [--quick]
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from _apps import header, load, setup, table

from aekit import VAE

NETWORKS = {
    "MLP 784-512-256-32": dict(hidden_dims=(512, 256), latent_dim=32),
    "conv 32-64 ch, 32": dict(architecture="conv", hidden_dims=(32, 64), latent_dim=32),
}


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _rate(fn, batch: np.ndarray, seconds: float) -> float:
    """Samples per second of ``fn(batch)``, called repeatedly for about ``seconds``."""
    fn(batch)  # warm-up
    calls, t0 = 0, time.perf_counter()
    while True:
        fn(batch)
        calls += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return calls * len(batch) / elapsed


def main() -> None:
    args = setup(__doc__).parse_args()
    header("ONNX export: encode throughput, onnxruntime vs PyTorch (bench_onnx.py)")
    n_fit, rounds, seconds, batches = (5_000, 5, 0.4, (1, 64, 1024)) if not args.quick else (500, 2, 0.1, (1, 64))
    X_fit, _ = load("mnist", "train", n_fit, flat=False)
    X_test, _ = load("mnist", "test", 2048, flat=False)
    print(f"### MNIST images (1, 28, 28) in [0, 1]; VAEs fitted 1 epoch on {n_fit} training images (throughput "
          f"does not depend on the weights); encode = the posterior mean z; onnxruntime {ort.__version__}, "
          f"opset 17; torch {torch.__version__}; 1 thread each; median of {rounds} interleaved rounds of "
          f"~{seconds} s per cell\n")
    rows, export_rows = [], []
    for name, net in NETWORKS.items():
        est = VAE(epochs=1, batch_size=128, random_state=0, device="cpu", **net).fit(X_fit)
        folder = Path(tempfile.mkdtemp())
        t0 = time.perf_counter()
        files = est.to_onnx(folder)
        export_s = time.perf_counter() - t0
        session = _session(files.encoder)
        model = est.model_

        def onnx_encode(x, session=session):
            return session.run(["z"], {"x": x})[0]

        def torch_encode(x, model=model):
            with torch.inference_mode():
                return model.encode(torch.from_numpy(x)).numpy()

        ways = {"onnxruntime": onnx_encode, "PyTorch module": torch_encode, "estimator.transform": est.transform}
        diff = float(np.abs(onnx_encode(X_test) - est.transform(X_test)).max())
        export_rows.append({"network": name, "parameters": f"{sum(p.numel() for p in model.parameters()):,}",
                            "export s": f"{export_s:.2f}",
                            "encoder.onnx MB": f"{files.encoder.stat().st_size / 1e6:.2f}",
                            "decoder.onnx MB": f"{files.decoder.stat().st_size / 1e6:.2f}",
                            "max abs diff of z (2048 test images)": f"{diff:.1e}"})
        for b in batches:
            xb = np.ascontiguousarray(X_test[:b])
            rates = {w: [] for w in ways}
            for _ in range(rounds):
                for w, fn in ways.items():
                    rates[w].append(_rate(fn, xb, seconds))
            med = {w: statistics.median(r) for w, r in rates.items()}
            rows.append({"network": name, "batch": b,
                         **{f"{w} samples/s": f"{v:,.0f}" for w, v in med.items()},
                         "onnxruntime / module": f"{med['onnxruntime'] / med['PyTorch module']:.2f}x"})
    print(table(rows, ["network", "batch", *[f"{w} samples/s" for w in ("onnxruntime", "PyTorch module",
                                                                           "estimator.transform")],
                       "onnxruntime / module"]))
    print(table(export_rows, ["network", "parameters", "export s", "encoder.onnx MB", "decoder.onnx MB",
                              "max abs diff of z (2048 test images)"]))


if __name__ == "__main__":
    main()
