"""The one interface every surrogate shares: its config dataclass and its module class.

A model maps binary input spikes [batch, time, num_exc + num_inh] (excitatory first) to
[batch, time, 2]: channel 0 the spike logit, channel 1 the somatic voltage in the training
scale (V - soma_offset_mv) * soma_scale. Names -> classes live in `surrogates.registry`,
saving and loading in `surrogates.checkpoints`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from pipeline.protocol import SOMA_OFFSET_MV, SOMA_SCALE
from surrogates.errors import ModelError


@dataclass
class SurrogateConfig:
    """Fields every model config has; each model subclasses it with its own fields."""

    num_exc: int = 639
    num_inh: int = 639
    soma_offset_mv: float = SOMA_OFFSET_MV  # training target: (V - offset) * scale
    soma_scale: float = SOMA_SCALE

    @property
    def num_inputs(self) -> int:
        return self.num_exc + self.num_inh


class Surrogate(nn.Module):
    """Base class: subclasses set `name` and `config_class`, implement `forward`, and are
    decorated with `surrogates.registry.register` so that `build` and `load` find them."""

    name: ClassVar[str]
    config_class: ClassVar[type[SurrogateConfig]]

    def __init__(self, config: SurrogateConfig):
        super().__init__()
        self.config = config

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    @property
    def receptive_field_ms(self) -> float | None:
        """How far back one output sees, in ms; None for a recurrent model (unbounded).
        Beniaguev's evaluator sets its burn-in from it."""
        return None

    def soma_mv(self, y: torch.Tensor) -> torch.Tensor:
        """Voltage channel of an output back in mV."""
        return y[..., 1] / self.config.soma_scale + self.config.soma_offset_mv

    def check_inputs(self, x: torch.Tensor) -> None:
        if x.ndim != 3 or x.shape[-1] != self.config.num_inputs:
            raise ModelError(f"{self.name} expects inputs [batch, time, "
                             f"{self.config.num_inputs}], got {list(x.shape)}")
