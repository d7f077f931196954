"""Checkpoint files: a model's name, its config and its weights together, so that
`load(path)` needs nothing else; and the file names a model folder holds them under.

`train` writes a folder with BEST_CHECKPOINT and LAST_CHECKPOINT, `import-elm` one with
IMPORTED_CHECKPOINT; `load` takes such a folder as well as a single checkpoint file.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from pipeline.runtime.files import atomic_path
from surrogates.base import Surrogate
from surrogates.errors import ModelError
from surrogates.registry import build

CHECKPOINT_FORMAT = "neurosurrogate-checkpoint"
CHECKPOINT_VERSION = 1
BEST_CHECKPOINT = "best.pt"  # train: best validation score
LAST_CHECKPOINT = "last.pt"  # train: latest step, to resume from
IMPORTED_CHECKPOINT = "model.pt"  # import-elm: the converted reference model
FOLDER_CHECKPOINTS = (BEST_CHECKPOINT, IMPORTED_CHECKPOINT)  # what load takes from a folder


def save(model: Surrogate, path: Path, extra: dict[str, Any] | None = None) -> None:
    """Write weights and config together, atomically (a crash leaves the old file)."""
    path = Path(path)
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
               "model": model.name, "config": asdict(model.config),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "extra": extra or {}}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def torch_load_safely(path: Path) -> Any:
    """torch.load restricted to tensors and plain containers (no arbitrary objects)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError("no such checkpoint", where=path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged or foreign file
        first = str(err).splitlines()[0] if str(err) else ""
        raise ModelError(f"not a readable checkpoint ({type(err).__name__}: {first})",
                         where=path) from None


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The raw checkpoint dict, checked for format."""
    path = Path(path)
    payload = torch_load_safely(path)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ModelError("not a neurosurrogate checkpoint", where=path)
    if payload.get("version") != CHECKPOINT_VERSION:
        raise ModelError(f"checkpoint version {payload.get('version')} is not supported "
                         f"(this version reads {CHECKPOINT_VERSION})", where=path)
    missing = {"model", "config", "state_dict"} - set(payload)
    if missing:
        raise ModelError(f"checkpoint lacks {', '.join(sorted(missing))}", where=path)
    if not isinstance(payload["model"], str):
        raise ModelError("model name is not a string", where=path)
    config, weights = payload["config"], payload["state_dict"]
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise ModelError("config is not a mapping of setting names", where=path)
    if not isinstance(weights, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()):
        raise ModelError("state_dict is not a mapping of names to tensors", where=path)
    return payload


def checkpoint_file(path: Path) -> Path:
    """`path` itself, or for a model folder the first of FOLDER_CHECKPOINTS in it (so that
    callers may pass the folder `train` or `import-elm` wrote)."""
    path = Path(path)
    if not path.is_dir():
        return path
    for name in FOLDER_CHECKPOINTS:
        if (path / name).is_file():
            return path / name
    raise ModelError(f"a folder without a checkpoint (looked for "
                     f"{' or '.join(FOLDER_CHECKPOINTS)} in it)", where=path)


def load(path: Path, device: str | torch.device = "cpu") -> Surrogate:
    """A ready model (eval mode) on `device`, from a checkpoint written by `save` or from a
    model folder (see `checkpoint_file`)."""
    path = checkpoint_file(path)
    return model_from(read_checkpoint(path), path, device)


def model_from(payload: dict[str, Any], path: Path, device: str | torch.device = "cpu"
               ) -> Surrogate:
    """The ready model of a checkpoint dict that `read_checkpoint(path)` returned, for callers
    that also need its `extra` record."""
    try:
        instance = build(payload["model"], **payload["config"])
        instance.load_state_dict(payload["state_dict"], strict=True)
    except ModelError as err:
        raise ModelError(str(err), where=path) from None
    except RuntimeError as err:  # wrong or missing tensor shapes
        detail = " ".join(str(err).split())
        raise ModelError(f"weights do not fit the config ({detail[:300]})", where=path) from None
    return instance.to(device).eval()
