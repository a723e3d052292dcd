"""Saving and loading models and training state: safetensors + JSON only, never pickle.

A model file is one ``.safetensors`` file whose metadata holds the JSON config, so it is
self-describing and loading it runs no code. Training state (optimizer moments, RNG states,
epoch, history, best weights) lives in a second safetensors file. Every file is written
atomically (temp file + rename).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ._version import __version__
from ._registry import get_model_class
from ._utils import atomic_write_bytes

FORMAT = "aekit-model/1"


def _state_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def model_metadata(model) -> dict[str, Any]:
    return {"format": FORMAT, "aekit_version": __version__, "model": model.name, "config": model.config.to_dict()}


def save_model(model, path: str | Path) -> Path:
    """Write ``model`` (weights, buffers and config) to one safetensors file."""
    path = Path(path)
    meta = {"aekit": json.dumps(model_metadata(model))}
    atomic_write_bytes(path, st_save(_state_tensors(model.state_dict()), metadata=meta))
    return path


def read_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file, with a clear error when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such model file: {path}")
    data = path.read_bytes()
    try:
        tensors = st_load(data)
        header_len = int.from_bytes(data[:8], "little")
        meta = json.loads(data[8 : 8 + header_len]).get("__metadata__", {}) or {}
    except (SafetensorError, ValueError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not a valid safetensors file ({e}); it may be corrupted or not an aekit model") from None
    return tensors, meta


def load_model(path: str | Path, map_location: str | torch.device = "cpu", *, encoder=None, decoder=None):
    """Rebuild a model from a file written by ``save_model`` (no code is executed). A model built
    with your own encoder/decoder modules needs fresh instances of them passed here again."""
    tensors, meta = read_safetensors(path)
    return model_from_file(tensors, meta, path, encoder=encoder, decoder=decoder).to(map_location)


def model_from_file(tensors: dict[str, torch.Tensor], meta: dict[str, str], path, *, encoder=None, decoder=None):
    """The model (in eval mode, on CPU) that a safetensors file's tensors and ``aekit`` metadata
    describe: checks the version, rebuilds the family from its JSON config, loads the weights."""
    try:
        info = json.loads(meta["aekit"])
        name, config = info["model"], info["config"]
    except (KeyError, json.JSONDecodeError, TypeError):
        raise ValueError(f"{path} has no aekit model metadata; was it written by aekit?") from None
    check_version(info.get("aekit_version"), path)
    modules = {k: v for k, v in (("encoder", encoder), ("decoder", decoder)) if v is not None}
    try:
        cls = get_model_class(name)
        model = cls(cls.Config.from_dict(config), **modules)
        model.load_state_dict(tensors)
    except (ValueError, TypeError, RuntimeError) as e:
        raise ValueError(
            f"{path}: the saved model does not match its config ({str(e).splitlines()[0]}); "
            "the file is corrupted or was edited"
        ) from None
    return model.eval()


def check_version(version: str | None, path) -> None:
    def major_minor(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in v.split(".")[:2])

    if version is None:
        return
    try:
        newer = major_minor(version) > major_minor(__version__)
    except ValueError:
        raise ValueError(f"{path}: unreadable aekit version {version!r} in the file") from None
    if newer:
        raise ValueError(f"{path} was written by aekit {version}, newer than this aekit {__version__}: upgrade aekit")


def save_train_state(path: str | Path, model, optimizer, extra: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    """Everything needed to resume training exactly, in one atomically written file.

    ``extra`` (JSON-able: epoch, history, ...) and ``tensors`` (RNG states, best weights, ...) are
    stored beside the model weights and the optimizer state.
    """
    opt = optimizer.state_dict()
    out = {f"model.{k}": v for k, v in _state_tensors(model.state_dict()).items()}
    for pid, st in opt["state"].items():
        for key, val in st.items():
            out[f"optim.{pid}.{key}"] = torch.as_tensor(val).detach().cpu().contiguous()
    out.update({f"extra.{k}": v.detach().cpu().contiguous() for k, v in tensors.items()})
    meta = {
        "aekit": json.dumps(model_metadata(model)),
        "param_groups": json.dumps(opt["param_groups"]),
        "extra": json.dumps(extra),
    }
    atomic_write_bytes(path, st_save(out, metadata=meta))


def load_train_state(path: str | Path, model, optimizer) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Restore model and optimizer from ``save_train_state``; return (extra, extra tensors)."""
    tensors, meta = read_safetensors(path)
    info = json.loads(meta.get("aekit", "{}"))
    if info.get("model") != model.name or info.get("config") != json.loads(json.dumps(model.config.to_dict())):
        raise ValueError(
            f"{path} holds a checkpoint of a different model ({info.get('model')!r} with other settings); "
            "resume with the same settings, or start a new run folder"
        )
    device = next(model.parameters()).device
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, pid, key = k.split(".", 2)
            state.setdefault(int(pid), {})[key] = v if key == "step" else v.to(device)
    optimizer.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
    extra_t = {k[6:]: v for k, v in tensors.items() if k.startswith("extra.")}
    return json.loads(meta["extra"]), extra_t
