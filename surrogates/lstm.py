"""LSTM baseline surrogate, as in the ELM paper's comparison (Spieler et al.).

An `nn.LSTM` (batch first) reads the binary spikes as given, unsigned, excitatory first, and a
linear head maps its last layer's hidden state to the spike logit and the scaled soma voltage.
Unsigned or signed (+1 exc / -1 inh, as the ELM reads them) makes no difference here: the first
layer gives every input its own weights, so the sign is just a sign flip of the inhibitory
columns, and PyTorch's initialisation is symmetric about zero, so both start from the same
distribution of models.

The state (h, c) can be carried between calls, so a long simulation can be run in chunks with
the same result as in one pass: ``y, state = model(x, state, return_state=True)``.

Published parameter counts (1278 inputs, 2 outputs): h=50 ~266K and h=150 ~858K. One layer
has 4h(inputs + h) weights, 4h or 8h biases and a head of 2h + 2:

- h=50: 265,600 + 400 + 102 = 266,102 with PyTorch's two bias vectors (265,902 with one);
- h=150: 856,800 + 1,200 + 302 = 858,302 with two bias vectors (857,702 with one).

Both round to the published figures, so the rounding cannot tell which bias layout was used;
this module is PyTorch's (two bias vectors), which gives 266,102 and 858,302.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from surrogates.base import Surrogate, SurrogateConfig
from surrogates.errors import ModelError
from surrogates.registry import register

LSTMState = tuple[torch.Tensor, torch.Tensor]  # (h, c), each [layers, batch, hidden]


@dataclass
class LSTMConfig(SurrogateConfig):
    """Size of the LSTM baseline; the published ones are hidden_size 50 and 150, one layer."""

    hidden_size: int = 50
    num_layers: int = 1
    dropout: float = 0.0  # between stacked layers (nn.LSTM's); unused with one layer

    def __post_init__(self) -> None:
        for label, value in (("hidden_size", self.hidden_size),
                             ("num_layers", self.num_layers),
                             ("num_exc", self.num_exc), ("num_inh", self.num_inh)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ModelError(f"{label} must be an int, got {value!r}")
        if self.hidden_size < 1 or self.num_layers < 1:
            raise ModelError(f"hidden_size and num_layers must be >= 1, "
                             f"got {self.hidden_size} and {self.num_layers}")
        if self.num_inputs < 1:
            raise ModelError(f"num_exc + num_inh must be >= 1, got {self.num_inputs}")
        if not 0.0 <= self.dropout < 1.0:
            raise ModelError(f"dropout must be in [0, 1), got {self.dropout}")


@register
class LSTM(Surrogate):
    """Recurrent baseline: LSTM over the spikes, linear read-out of its hidden state."""

    name: ClassVar[str] = "lstm"
    config_class: ClassVar[type[SurrogateConfig]] = LSTMConfig
    config: LSTMConfig

    def __init__(self, config: LSTMConfig):
        super().__init__(config)
        self.lstm = nn.LSTM(config.num_inputs, config.hidden_size, config.num_layers,
                            batch_first=True,
                            dropout=config.dropout if config.num_layers > 1 else 0.0)
        self.head = nn.Linear(config.hidden_size, 2)

    def forward(self, x: torch.Tensor, state: LSTMState | None = None,
                return_state: bool = False) -> torch.Tensor | tuple[torch.Tensor, LSTMState]:
        """Spikes [batch, time, inputs] -> [batch, time, 2]; `state` continues a sequence.

        With `return_state`, also the (h, c) after the last step, to pass to the next chunk.
        `state` None starts from zeros.
        """
        self.check_inputs(x)
        hidden, new_state = self.lstm(x, state)
        y = self.head(hidden)
        return (y, new_state) if return_state else y
