"""Data-parallel training: ``aekit.train.train`` run unchanged under torchrun (2 CPU processes,
gloo) must give the weights and the metrics of one process training on the same global batches."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file

from aekit._registry import build_model
from aekit._utils import seeded
from aekit.distributed import Replicas, replicas_from_environment
from aekit.train import train

# Shared by the torchrun workers and the single-process reference: same model, data and settings.
SETUP = textwrap.dedent(
    """
    import torch
    from aekit._registry import build_model
    from aekit._utils import seeded

    def make(name, **extra):
        with seeded(0):
            return build_model(name, input_shape=(20,), latent_dim=4, hidden_dims=(32,), **extra)

    def data(n):
        g = torch.Generator().manual_seed(1)
        return torch.rand(n, 20, generator=g), torch.randint(0, 10, (n,), generator=g)

    CASES = {
        # 203 = 6 * 32 + 11: the last global batch splits 6 / 5
        "uneven": dict(name="ae", n=203, kw=dict(epochs=3, batch_size=32, lr=3e-3)),
        # 193 = 6 * 32 + 1: the last global batch leaves rank 1 nothing (it adds a zero-weighted row)
        "empty_slice": dict(name="ae", n=193, kw=dict(epochs=3, batch_size=32, lr=3e-3)),
        # clipping acts on the global (all-reduced) gradient
        "clipped": dict(name="ae", n=203, kw=dict(epochs=3, batch_size=32, lr=3e-3, grad_clip=0.05)),
    }
    """
)

WORKER = SETUP + textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from safetensors.torch import save_file
    from aekit.train import train

    out = Path(sys.argv[1])
    rank = int(os.environ["RANK"])
    for case, spec in CASES.items():
        model = make(spec["name"])
        X, _ = data(spec["n"])
        ckpt = out / case if case == "uneven" else None
        cb = lambda epoch, record: (out / f"callback_rank{rank}").write_text(str(epoch))
        history = train(model, X, progress=False, checkpoint_dir=ckpt, callbacks=(cb,), **spec["kw"])
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out / f"{case}_rank{rank}.safetensors")
        (out / f"{case}_rank{rank}.json").write_text(json.dumps(history))
    # noisy models: each rank draws its own noise, yet every rank ends with rank 0's weights
    # (aae, factorvae: a discriminator trains beside the model in its own parameter group)
    for name, extra in (("vae", {}), ("vqvae", dict(codebook_size=8, embedding_dim=2)), ("cvae", {}), ("aae", {}),
                        ("factorvae", {})):
        model = make(name, **extra)
        X, y = data(150)
        train(model, X, y if name == "cvae" else None, epochs=2, batch_size=40, progress=False)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out / f"{name}_rank{rank}.safetensors")
    """
)

namespace: dict = {}
exec(SETUP, namespace)  # noqa: S102 (our own constant code: the reference uses the very same setup)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """Run the worker script under torchrun with 2 CPU processes; return its output folder."""
    out = tmp_path_factory.mktemp("ddp")
    script = out / "worker.py"
    script.write_text(WORKER)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    for attempt in range(2):  # a second try with a new port, in case another process took the first
        cmd = [
            sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
            "--master_addr=127.0.0.1", f"--master_port={_free_port()}", str(script), str(out),
        ]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
        if proc.returncode == 0:
            break
    (out / "torchrun.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, f"torchrun failed (log: {out / 'torchrun.log'}):\n{proc.stderr[-6000:]}"
    return out


@pytest.mark.parametrize("case", ["uneven", "empty_slice", "clipped"])
def test_two_processes_match_one_process(ddp_run, case):
    spec = namespace["CASES"][case]
    model = namespace["make"](spec["name"])
    X, _ = namespace["data"](spec["n"])
    torch.set_num_threads(1)
    history = train(model, X, progress=False, **spec["kw"])
    for rank in (0, 1):
        weights = load_file(ddp_run / f"{case}_rank{rank}.safetensors")
        for k, v in model.state_dict().items():
            torch.testing.assert_close(weights[k], v, atol=1e-5, rtol=0, msg=f"{k} differs on rank {rank}")
        ddp_history = json.loads((ddp_run / f"{case}_rank{rank}.json").read_text())
        assert len(ddp_history) == len(history)
        for single, multi in zip(history, ddp_history):
            for key in ("loss", "recon"):  # sample-weighted means over both ranks
                assert multi[key] == pytest.approx(single[key], rel=1e-5)


def test_only_rank0_writes_checkpoints_and_calls_back(ddp_run):
    assert (ddp_run / "callback_rank0").read_text() == "2"
    assert not (ddp_run / "callback_rank1").exists()
    ckpt = load_file(ddp_run / "uneven" / "checkpoint.safetensors")
    assert "extra.noise_rng" in ckpt and "extra.noise_rng.1" in ckpt  # every rank's noise state, to resume
    assert not torch.equal(ckpt["extra.noise_rng"], ckpt["extra.noise_rng.1"])  # ranks draw different noise


@pytest.mark.parametrize("name", ["vae", "vqvae", "cvae", "aae", "factorvae"])
def test_noisy_models_end_identical_on_every_rank(ddp_run, name):
    w0 = load_file(ddp_run / f"{name}_rank0.safetensors")
    w1 = load_file(ddp_run / f"{name}_rank1.safetensors")
    start = namespace["make"](name, **({"codebook_size": 8, "embedding_dim": 2} if name == "vqvae" else {})).state_dict()
    assert w0.keys() == w1.keys()
    for k in w0:
        assert torch.equal(w0[k], w1[k]), f"{k} differs between ranks"
    assert any(not torch.equal(w0[k], start[k]) for k in w0 if w0[k].is_floating_point())  # it trained
    for k in w0:  # every player trained: each parameter moved
        if k.startswith("discriminator."):
            assert not torch.equal(w0[k], start[k]), k


# ----------------------------------------------------------------------------- sharding maths, no processes


@pytest.mark.parametrize("n, world", [(11, 2), (32, 2), (7, 3), (1, 2), (2, 4)])
def test_weighted_slices_average_to_the_global_mean(n, world):
    batch = torch.randperm(50)[:n]
    losses = torch.rand(50, dtype=torch.float64)
    taken, total = [], 0.0
    for rank in range(world):
        idx, real, weight = Replicas(rank, world).shard(batch)
        if real:
            taken.append(idx)
            assert real == len(idx)
        total += weight * float(losses[idx].mean())  # what DDP averages, times world
    assert torch.equal(torch.cat(taken), batch)  # contiguous slices covering the batch in order
    assert total / world == pytest.approx(float(losses[batch].mean()), rel=1e-12)


def test_single_process_is_the_identity():
    r = replicas_from_environment(torch.device("cpu"))
    model = torch.nn.Linear(2, 2)
    assert r.world_size == 1 and r.is_main and r.noise_seed_offset == 0
    assert r.wrap(model) is model
    batch = torch.arange(5)
    idx, real, weight = r.shard(batch)
    assert idx is batch and real == 5 and weight == 1.0
    assert r.mean({"loss": 10.0}, 5) == {"loss": 2.0}


def test_world_size_without_torchrun_variables_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    for k in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(RuntimeError, match="torchrun"):
        replicas_from_environment(torch.device("cpu"))


def test_one_process_is_a_plain_loop():
    """In one process, train must be exactly the plain loop: shuffle with Generator(seed), model
    noise from Generator(seed + 1), fused AdamW without decay, one step per batch (nothing added)."""
    with seeded(0):
        a, b = (build_model("vae", input_shape=(6,), latent_dim=2, hidden_dims=(8,)) for _ in range(2))
    b.load_state_dict(a.state_dict())
    X = torch.rand(40, 6, generator=torch.Generator().manual_seed(0))
    train(a, X, epochs=2, batch_size=16, lr=1e-2, progress=False, seed=3)
    opt = torch.optim.AdamW(b.parameters(), lr=1e-2, weight_decay=0.0, fused=True)
    shuffle, noise = torch.Generator().manual_seed(3), torch.Generator().manual_seed(4)
    b.train()
    for epoch in range(2):
        for step, idx in enumerate(torch.randperm(40, generator=shuffle).split(16)):
            b.on_train_progress(epoch + step / 3)
            out = b(X[idx], generator=noise)
            opt.zero_grad()
            out.loss.backward()
            opt.step()
    for k, v in a.state_dict().items():
        if k != "epochs_done":
            assert torch.equal(v, b.state_dict()[k]), k


class _NaNGradient(torch.autograd.Function):
    """Identity forward, NaN backward: a finite loss whose gradient is not."""

    @staticmethod
    def forward(ctx, x):
        return x

    @staticmethod
    def backward(ctx, grad):
        return grad * float("nan")


@pytest.mark.parametrize("bad_step, grad_clip, message", [
    (3, None, "previous step's gradient"),  # caught by the next step's loss check
    (4, None, "its last step"),  # the epoch's last step: caught by the end-of-epoch weight check
    (3, 1.0, "step 3"),  # with clipping the norm is read every step anyway
])
def test_a_nonfinite_gradient_is_still_caught(bad_step, grad_clip, message):
    """The loop reads gradients only when clipping (speed); a NaN gradient must still raise."""
    from aekit.train import NonFiniteLossError

    with seeded(0):
        model = build_model("ae", input_shape=(4,), latent_dim=2, hidden_dims=(8,))
    encode, calls = model.encoder.forward, {"n": 0}

    def poisoned(x, *args, **kwargs):
        calls["n"] += 1
        h = encode(x, *args, **kwargs)
        return _NaNGradient.apply(h) if calls["n"] == bad_step else h

    model.encoder.forward = poisoned
    with pytest.raises(NonFiniteLossError, match=message):
        train(model, torch.rand(64, 4), epochs=2, batch_size=16, progress=False, grad_clip=grad_clip)
