"""Temporal convolutional network surrogate after Beniaguev et al. (2021).

A stack of causal Conv1d layers (stride 1, no dilation), each followed by ReLU and then
BatchNorm, as published; two 1x1 heads read the last layer: the spike logit (bias
initialised to -2, as published; the sigmoid belongs to the loss and the evaluation) and the
scaled somatic voltage (linear). Every layer pads only on the left, so the output at step t
sees inputs t - receptive_field + 1 .. t and nothing later. One step is one 1 ms bin.

Causality holds in eval mode: in train mode BatchNorm normalises with statistics of the
whole batch, future steps included, as every BatchNorm network does while training.

Shapes come from presets (`TCN_PRESETS`) or from explicit `channels` and `kernel_sizes`:

- ``tcn_7x128x153``: Beniaguev's best NMDA model, kernels [45, 19, 19, 19, 19, 19, 19] x 128
  channels, receptive field 153 ms, 9,232,002 trainable parameters with 1278 inputs
  (conv 1278*45*128 + 128 = 7,361,408; six convs of 128*19*128 + 128 = 311,424 each;
  seven BatchNorms of 2*128; heads 2 * (128 + 1)).
- ``tcn_3x64x100``: the published default training script, [54, 24, 24] x 64,
  receptive field 100 ms, 4,614,082 parameters with 1278 inputs.
- ``tcn_1x128x43``: the published single-layer FCN, kernel 43 x 128, 7,034,754 parameters.
- ``tcn_small`` (the default): [24, 12, 12] x 16, receptive field 46 ms, 497,074 parameters.
  Chosen for a 2-core CPU: a forward pass over a 500 ms window costs about 0.25 G
  multiply-adds per sample, against 2.3 G for ``tcn_3x64x100`` and 4.6 G for
  ``tcn_7x128x153`` (the first layer, inputs x kernel x channels, dominates all of them).

A preset only supplies defaults: ``build("tcn", preset="tcn_7x128x153")`` gives the published
shape, and an explicit ``channels`` or ``kernel_sizes`` next to it overrides that part. The
config stored in a checkpoint holds the preset name together with the resolved shape, so
`load` rebuilds exactly the saved model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from surrogates.base import Surrogate, SurrogateConfig
from surrogates.errors import ModelError
from surrogates.registry import register

SPIKE_BIAS_INIT = -2.0  # published initial bias of the spike head

TCN_PRESETS: dict[str, dict[str, Any]] = {
    "tcn_small": {"channels": 16, "kernel_sizes": (24, 12, 12)},
    "tcn_1x128x43": {"channels": 128, "kernel_sizes": (43,)},
    "tcn_3x64x100": {"channels": 64, "kernel_sizes": (54, 24, 24)},
    "tcn_7x128x153": {"channels": 128, "kernel_sizes": (45, 19, 19, 19, 19, 19, 19)},
}
DEFAULT_PRESET = "tcn_small"


@dataclass
class TCNConfig(SurrogateConfig):
    """Shape of a TCN; `channels` and `kernel_sizes` left as None come from `preset`."""

    preset: str = DEFAULT_PRESET
    channels: int | None = None  # width of every hidden layer
    kernel_sizes: tuple[int, ...] | None = None  # one kernel per layer; depth = len
    dropout: float = 0.0  # after each layer's BatchNorm; 0 as published

    def __post_init__(self) -> None:
        if self.preset not in TCN_PRESETS:
            raise ModelError(f"unknown TCN preset {self.preset!r}; "
                             f"known: {', '.join(sorted(TCN_PRESETS))}")
        shape = TCN_PRESETS[self.preset]
        if self.channels is None:
            self.channels = shape["channels"]
        if self.kernel_sizes is None:
            self.kernel_sizes = shape["kernel_sizes"]
        if isinstance(self.kernel_sizes, int) or not all(
                _is_int(k) for k in self.kernel_sizes):
            raise ModelError(f"kernel_sizes must be a list of ints, got {self.kernel_sizes!r}")
        self.kernel_sizes = tuple(int(k) for k in self.kernel_sizes)  # lists from JSON
        if not self.kernel_sizes or min(self.kernel_sizes) < 1:
            raise ModelError(f"kernel_sizes must be one or more ints >= 1, "
                             f"got {list(self.kernel_sizes)}")
        if not _is_int(self.channels) or self.channels < 1:
            raise ModelError(f"channels must be an int >= 1, got {self.channels!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ModelError(f"dropout must be in [0, 1), got {self.dropout}")
        if not _is_int(self.num_exc) or not _is_int(self.num_inh) or self.num_inputs < 1:
            raise ModelError(f"num_exc and num_inh must be ints with a positive sum, "
                             f"got {self.num_exc!r} and {self.num_inh!r}")

    @property
    def receptive_field(self) -> int:
        """Input steps that one output step sees (itself included)."""
        assert self.kernel_sizes is not None  # filled in __post_init__
        return sum(k - 1 for k in self.kernel_sizes) + 1


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@register
class TCN(Surrogate):
    """Causal convolution stack with a spike-logit head and a soma-voltage head."""

    name: ClassVar[str] = "tcn"
    config_class: ClassVar[type[SurrogateConfig]] = TCNConfig
    config: TCNConfig

    def __init__(self, config: TCNConfig):
        super().__init__(config)
        assert config.kernel_sizes is not None and config.channels is not None
        self.kernel_sizes = config.kernel_sizes
        widths = [config.num_inputs] + [config.channels] * len(config.kernel_sizes)
        self.convs = nn.ModuleList(
            nn.Conv1d(c_in, c_out, k)
            for c_in, c_out, k in zip(widths[:-1], widths[1:], config.kernel_sizes, strict=True))
        self.norms = nn.ModuleList(nn.BatchNorm1d(config.channels) for _ in config.kernel_sizes)
        self.dropout = nn.Dropout(config.dropout)
        self.spike_head = nn.Conv1d(config.channels, 1, 1)
        self.soma_head = nn.Conv1d(config.channels, 1, 1)
        nn.init.constant_(self.spike_head.bias, SPIKE_BIAS_INIT)

    @property
    def receptive_field(self) -> int:
        """Input steps that one output step sees; a stream needs this much past input."""
        return self.config.receptive_field

    @property
    def receptive_field_ms(self) -> float | None:
        """The receptive field in ms (one step is one 1 ms bin)."""
        return float(self.receptive_field)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes [batch, time, inputs] -> [batch, time, 2] (spike logit, scaled soma)."""
        self.check_inputs(x)
        h = x.transpose(1, 2)  # Conv1d wants [batch, channels, time]
        for conv, norm, k in zip(self.convs, self.norms, self.kernel_sizes, strict=True):
            h = self.dropout(norm(F.relu(conv(F.pad(h, (k - 1, 0))))))
        y = torch.cat([self.spike_head(h), self.soma_head(h)], dim=1)
        return y.transpose(1, 2)
