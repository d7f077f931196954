"""The one interface every surrogate shares: config dataclass, registry, checkpoints.

A model maps binary input spikes [batch, time, num_exc + num_inh] (excitatory first) to
[batch, time, 2]: channel 0 the spike logit, channel 1 the somatic voltage in the training
scale (V - soma_offset_mv) * soma_scale. A checkpoint holds the model's name, its config
and its weights, so `load(path)` needs nothing else.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from surrogates.errors import ModelError

CHECKPOINT_FORMAT = "neurosurrogate-checkpoint"
CHECKPOINT_VERSION = 1


@dataclass
class SurrogateConfig:
    """Fields every model config has; each model subclasses it with its own fields."""

    num_exc: int = 639
    num_inh: int = 639
    soma_offset_mv: float = -67.7  # training target: (V - offset) * scale
    soma_scale: float = 0.1

    @property
    def num_inputs(self) -> int:
        return self.num_exc + self.num_inh


class Surrogate(nn.Module):
    """Base class: subclasses set `name` and `config_class` and implement `forward`."""

    name: ClassVar[str]
    config_class: ClassVar[type[SurrogateConfig]]

    def __init__(self, config: SurrogateConfig):
        super().__init__()
        self.config = config

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def soma_mv(self, y: torch.Tensor) -> torch.Tensor:
        """Voltage channel of an output back in mV."""
        return y[..., 1] / self.config.soma_scale + self.config.soma_offset_mv

    def check_inputs(self, x: torch.Tensor) -> None:
        if x.ndim != 3 or x.shape[-1] != self.config.num_inputs:
            raise ModelError(f"{self.name} expects inputs [batch, time, "
                             f"{self.config.num_inputs}], got {list(x.shape)}")


REGISTRY: dict[str, type[Surrogate]] = {}
M = TypeVar("M", bound=type[Surrogate])


def register(cls: M) -> M:
    if cls.name in REGISTRY:
        raise ValueError(f"model name {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls


def _ensure_registered() -> None:
    # Import the model modules so that their @register lines have run.
    import surrogates.models  # noqa: F401


def model_names() -> list[str]:
    _ensure_registered()
    return sorted(REGISTRY)


def make_config(name: str, **settings: Any) -> SurrogateConfig:
    """The config of model `name` with `settings` overriding its defaults."""
    _ensure_registered()
    if name not in REGISTRY:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(sorted(REGISTRY))}")
    config_class = REGISTRY[name].config_class
    known = {f.name for f in fields(config_class)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ModelError(f"{name}: unknown setting(s) {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(known))}")
    try:
        return config_class(**settings)
    except (TypeError, ValueError) as err:
        raise ModelError(f"{name}: invalid config ({err})") from None


def build(name: str, **settings: Any) -> Surrogate:
    config = make_config(name, **settings)
    return REGISTRY[name](config)


def save(model: Surrogate, path: Path, extra: dict[str, Any] | None = None) -> None:
    """Write weights and config together, atomically."""
    path = Path(path)
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
               "model": model.name, "config": asdict(model.config),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "extra": extra or {}}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def torch_load_safely(path: Path) -> Any:
    """torch.load restricted to tensors and plain containers (no arbitrary objects)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged or foreign file
        first = str(err).splitlines()[0] if str(err) else ""
        raise ModelError(f"{path}: not a readable checkpoint ({type(err).__name__}: "
                         f"{first})") from None


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The raw checkpoint dict, checked for format."""
    path = Path(path)
    payload = torch_load_safely(path)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(f"{path}: not a neurosurrogate checkpoint")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise ModelError(f"{path}: checkpoint version {payload.get('version')} is not "
                         f"supported (this version reads {CHECKPOINT_VERSION})")
    missing = {"model", "config", "state_dict"} - set(payload)
    if missing:
        raise ModelError(f"{path}: checkpoint lacks {', '.join(sorted(missing))}")
    if not isinstance(payload["model"], str):
        raise ModelError(f"{path}: model name is not a string")
    config, weights = payload["config"], payload["state_dict"]
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise ModelError(f"{path}: config is not a mapping of setting names")
    if not isinstance(weights, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()):
        raise ModelError(f"{path}: state_dict is not a mapping of names to tensors")
    return payload


def load(path: Path, device: str | torch.device = "cpu") -> Surrogate:
    """A ready model (eval mode) on `device`, from a checkpoint written by `save`."""
    payload = read_checkpoint(path)
    try:
        instance = build(payload["model"], **payload["config"])
        instance.load_state_dict(payload["state_dict"], strict=True)
    except ModelError as err:
        raise ModelError(f"{path}: {err}") from None
    except RuntimeError as err:  # wrong or missing tensor shapes
        detail = " ".join(str(err).split())
        raise ModelError(f"{path}: weights do not fit the config ({detail[:300]})") from None
    return instance.to(device).eval()
