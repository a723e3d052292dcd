"""Data-parallel training over processes (torch.distributed), as used by :func:`aekit.train.train`.

Launch the same script under ``torchrun --nproc_per_node=N`` and ``train`` picks it up: when a
process group is initialised, or ``WORLD_SIZE`` > 1 is set (torchrun also sets ``RANK``,
``MASTER_ADDR``, ``MASTER_PORT``), every rank

- holds the whole (in-memory) training set and draws the same global batch order (the shuffle
  generator has the same seed everywhere), then takes its contiguous slice of each global batch:
  ``torch.tensor_split(batch, world_size)[rank]`` (DistributedSampler-equivalent sharding);
- runs the model wrapped in ``DistributedDataParallel``, which averages gradients over ranks. Each
  rank's loss is the mean over its slice, so it is scaled by ``local_n * world_size / global_n``
  before backward: the averaged gradient is then the gradient of the global-batch mean, also for a
  short last batch (a rank with an empty slice contributes a zero-weighted row);
- draws model noise from its own generator, seeded ``seed + 1 + 1_000_003 * rank`` (rank 0 keeps
  the single-process seed ``seed + 1``; the large stride keeps ranks of nearby seeds apart);
- reports sample-weighted means of the loss and its parts over all ranks (one all_reduce per epoch).

Only rank 0 shows the progress bar, runs the callbacks and writes checkpoints (which hold every
rank's noise-generator state, so resuming with the same number of processes continues exactly).
Parameters that learn without gradients (a VQ-VAE's EMA codebook) follow rank 0 after every step,
and the returned model is rank 0's on every rank.

Not equivalent to one process: terms computed from batch statistics (a sparse autoencoder's KL on
the batch's mean activation, a VAE's free bits, a VQ-VAE's EMA statistics) use each rank's slice.
"""

from __future__ import annotations

import atexit
import os
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["Replicas", "replicas_from_environment", "NOISE_SEED_STRIDE"]

NOISE_SEED_STRIDE = 1_000_003  # rank r draws model noise from seed + 1 + NOISE_SEED_STRIDE * r


class Replicas:
    """The processes training one model together, as the training loop sees them. With
    ``world_size == 1`` every method is the identity, so the loop has no distributed branches."""

    def __init__(self, rank: int = 0, world_size: int = 1, device: torch.device = torch.device("cpu")):
        self.rank, self.world_size, self.device = rank, world_size, device
        self._frozen: list[torch.nn.Parameter] = []

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def noise_seed_offset(self) -> int:
        return NOISE_SEED_STRIDE * self.rank

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module to call forward on: ``model`` itself, or it wrapped in DDP (which also
        broadcasts rank 0's weights and buffers so every rank starts identical)."""
        if self.world_size == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        self._frozen = [p for p in model.parameters() if not p.requires_grad]
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids, output_device=ids[0] if ids else None)

    def shard(self, batch: torch.Tensor) -> tuple[torch.Tensor, int, float]:
        """This rank's part of a global batch of indices: (indices, real rows, loss weight).

        The loss weight ``local_n * world_size / global_n`` makes DDP's gradient average equal the
        gradient of the global-batch mean. An empty slice gets one row with weight 0."""
        if self.world_size == 1:
            return batch, len(batch), 1.0
        local = torch.tensor_split(batch, self.world_size)[self.rank]
        if len(local) == 0:
            return batch[:1], 0, 0.0
        return local, len(local), len(local) * self.world_size / len(batch)

    @staticmethod
    def scale(loss: torch.Tensor, weight: float) -> torch.Tensor:
        return loss if weight == 1.0 else loss * weight

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any rank (so all ranks raise together)."""
        if self.world_size == 1:
            return flag
        t = torch.tensor([float(flag)], device=self._comm_device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def mean(self, sums: dict[str, float], count: int) -> dict[str, float]:
        """Sample-weighted means over all ranks of per-rank sums (same keys on every rank)."""
        if self.world_size > 1:
            t = torch.tensor([float(count), *sums.values()], dtype=torch.float64, device=self._comm_device())
            dist.all_reduce(t)
            count, sums = t[0].item(), dict(zip(sums, t[1:].tolist()))
        return {k: v / count for k, v in sums.items()}

    def from_main(self, obj: Any) -> Any:
        """Rank 0's value of ``obj`` on every rank (keeps decisions such as early stopping in step)."""
        if self.world_size == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0, device=self._comm_device())
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order (on every rank)."""
        if self.world_size == 1:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    @torch.no_grad()
    def sync_frozen(self) -> None:
        """Copy rank 0's gradient-free parameters (updated in place by forward) to every rank."""
        for p in self._frozen:
            dist.broadcast(p.data, src=0)

    @torch.no_grad()
    def sync_from_main(self, model: torch.nn.Module) -> None:
        """Make every rank's weights and buffers rank 0's."""
        if self.world_size == 1:
            return
        for t in [*model.parameters(), *model.buffers()]:
            dist.broadcast(t.data, src=0)

    def _comm_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")


def replicas_from_environment(device: torch.device) -> Replicas:
    """The :class:`Replicas` this process belongs to.

    Uses the initialised process group, or initialises one from torchrun's environment
    (``WORLD_SIZE`` > 1; backend nccl for CUDA, gloo for CPU); otherwise a single process. On
    CUDA each rank takes the GPU ``LOCAL_RANK`` when the device names no index."""
    if not dist.is_available():
        return Replicas(device=device)
    if not dist.is_initialized():
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return Replicas(device=device)
        missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
        if missing:
            raise RuntimeError(
                f"WORLD_SIZE={world} is set but {', '.join(missing)} is not: launch with "
                "torchrun (which sets them), or initialise torch.distributed yourself"
            )
        device = _local_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(_destroy)
    if dist.get_world_size() == 1:
        return Replicas(device=device)
    device = _local_device(device)
    if dist.get_backend() == "nccl" and device.type != "cuda":
        raise RuntimeError("the process group uses nccl, which needs CUDA tensors; train with device='cuda'")
    return Replicas(dist.get_rank(), dist.get_world_size(), device)


def _local_device(device: torch.device) -> torch.device:
    if device.type == "cuda" and device.index is None:
        fallback = dist.get_rank() % torch.cuda.device_count() if dist.is_initialized() else 0
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", fallback)))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def _destroy() -> None:
    """At exit: wait (at most a minute) for every rank, since rank 0 may still be writing files and
    a gloo rank leaving while its peers still talk to it can abort; then tear the group down while
    the interpreter is intact. A rank that failed elsewhere times the wait out instead of hanging."""
    if not dist.is_initialized():
        return
    try:
        if dist.get_backend() == "gloo":
            dist.monitored_barrier(timeout=timedelta(seconds=60))
    except RuntimeError:
        pass  # a peer failed or already left: nothing to wait for
    finally:
        dist.destroy_process_group()


def is_main_process() -> bool:
    """True unless this is a non-zero rank of an initialised process group (torchrun): the
    process that writes files and prints."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
