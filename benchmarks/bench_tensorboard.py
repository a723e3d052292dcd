"""TensorBoard logging: what it costs per epoch, and what the event files hold.

1. Cost. MNIST VAEs (MLP and conv) fitted with and without ``log_dir``, interleaved, the median
   fit time of each; and the logging callback alone, timed on the same model and fixed batch the
   estimator gives it (loss scalars, KL per dimension over 256 images, two image grids, flush).
2. Content. A VAE with an 8-D code fitted on MNIST with ``log_dir``; the event files are read
   back with TensorBoard's own reader (``EventAccumulator``) and drawn: training and validation
   loss, KL per code dimension, the last epoch's reconstruction grid.

    python benchmarks/bench_tensorboard.py [--quick]
"""

from __future__ import annotations

import io
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from _apps import figures_dir, header, load, setup, table

from aekit import VAE
from aekit.tensorboard import TensorBoardLogger

NETWORKS = {
    "MLP 784-512-256-32": dict(hidden_dims=(512, 256), latent_dim=32),
    "conv 32-64 ch, 32": dict(architecture="conv", hidden_dims=(32, 64), latent_dim=32),
}
COMMON = dict(batch_size=128, random_state=0, device="cpu", threads=1)


def _fit_seconds(net: dict, X, epochs: int, log_dir) -> float:
    t0 = time.perf_counter()
    VAE(epochs=epochs, **net, **COMMON).fit(X, log_dir=log_dir)
    return time.perf_counter() - t0


def cost(X, epochs: int, reps: int) -> None:
    rows = []
    _fit_seconds(NETWORKS["MLP 784-512-256-32"], X[:500], 1, tempfile.mkdtemp())  # warm-up: imports, allocator
    for name, net in NETWORKS.items():
        plain, logged = [], []
        for _ in range(reps):  # interleaved, so that load on the machine hits both alike
            plain.append(_fit_seconds(net, X, epochs, None))
            logged.append(_fit_seconds(net, X, epochs, tempfile.mkdtemp()))
        # the callback alone, on the fitted model and a fixed batch as fit gives it (256 images)
        est = VAE(epochs=1, **net, **COMMON).fit(X)
        logger = TensorBoardLogger(tempfile.mkdtemp(), est.model_, est.to_model_input(X[:256]))
        record = {"epoch": 1, **{k: v for k, v in est.history_[-1].items() if k != "epoch"}}
        logger(0, record)  # first call: writers are created
        calls = []
        for epoch in range(1, 11):
            t0 = time.perf_counter()
            logger(epoch, {**record, "epoch": epoch + 1})
            calls.append(time.perf_counter() - t0)
        logger.close()
        per_epoch = statistics.median(plain) / epochs
        callback_ms = 1000 * statistics.median(calls)
        rows.append({
            "network": name,
            "fit s, no logging": f"{statistics.median(plain):.1f} ({min(plain):.1f}-{max(plain):.1f})",
            "fit s, log_dir": f"{statistics.median(logged):.1f} ({min(logged):.1f}-{max(logged):.1f})",
            "callback ms per epoch": f"{callback_ms:.0f}",
            "callback / epoch time": f"{100 * callback_ms / 1000 / per_epoch:.1f}%",
        })
    print(table(rows, ["network", "fit s, no logging", "fit s, log_dir", "callback ms per epoch",
                       "callback / epoch time"]))


def content(X, epochs: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log_dir = Path(tempfile.mkdtemp())
    VAE(latent_dim=8, epochs=epochs, **COMMON).fit(X, log_dir=log_dir)
    runs = {}
    for run in ("train", "validation"):
        acc = EventAccumulator(str(log_dir / run), size_guidance={"scalars": 0, "images": 0})
        acc.Reload()
        runs[run] = acc
    tags = runs["train"].Tags()
    print(f"Tags read back: scalars (train) {', '.join(sorted(tags['scalars']))}; scalars (validation) "
          f"{', '.join(sorted(runs['validation'].Tags()['scalars']))}; images {', '.join(sorted(tags['images']))}.\n")

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), gridspec_kw={"width_ratios": [1, 1, 1.3]})
    for run, style in (("train", "-"), ("validation", "--")):
        ev = runs[run].Scalars("loss/total")
        axes[0].plot([e.step for e in ev], [e.value for e in ev], style, label=run)
    axes[0].set(title="loss/total (-ELBO, nats per image)", xlabel="epoch")
    axes[0].legend()
    for tag in sorted(t for t in tags["scalars"] if t.startswith("kl_per_dim/")):
        ev = runs["train"].Scalars(tag)
        axes[1].plot([e.step for e in ev], [e.value for e in ev], label=tag.split("/")[1])
    axes[1].set(title="kl_per_dim/* (nats, fixed batch of 256)", xlabel="epoch")
    axes[1].legend(ncol=2, fontsize=8)
    last = runs["train"].Images("reconstructions")[-1]
    axes[2].imshow(np.asarray(Image.open(io.BytesIO(last.encoded_image_string))), cmap="gray")
    axes[2].set(title=f"reconstructions, epoch {last.step} (originals above)")
    axes[2].axis("off")
    fig.suptitle("What `fit(X, log_dir=...)` wrote, read back with TensorBoard's EventAccumulator")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"Figure: `benchmarks/figures/{path.name}`\n")


def main() -> None:
    args = setup(__doc__).parse_args()
    header("TensorBoard logging: cost per epoch and content (bench_tensorboard.py)")
    n, epochs, reps, fig_epochs = (10_000, 3, 3, 20) if not args.quick else (1_000, 1, 1, 2)
    X, _ = load("mnist", "train", n, flat=False)
    print(f"### Cost: MNIST, {len(X)} training images (1, 28, 28), VAE, batch 128, {epochs} epochs, validation "
          f"fraction 0.1, 1 thread; fit times are the median (range) of {reps} interleaved runs; the callback "
          "is timed alone over 10 calls\n")
    cost(X, epochs, reps)
    print(f"### Content: MNIST, {len(X)} training images, VAE MLP 784-256-128-8, {fig_epochs} epochs\n")
    content(X, fig_epochs, figures_dir(args.quick) / "tensorboard_vae_mnist.png")


if __name__ == "__main__":
    main()
