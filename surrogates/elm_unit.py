"""What every model built of ELM units shares: the unit's settings (activation, memory
update, time constants, synapse init) with their validation, and the module-side pieces that
follow from them (input signs, the memory time constants tau_m and their coefficients).

The ELM / Branch-ELM (`surrogates.elm`) is one unit; the ELM network (`surrogates.elm_network`)
a layer of them. Keeping these here once means a setting means the same in both and is checked
the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from surrogates.base import Surrogate, SurrogateConfig
from surrogates.elm_recurrence import ACTIVATIONS, memory_coefficients
from surrogates.errors import ModelError

UPDATES = ("v1", "v2")


@dataclass
class ElmUnitConfig(SurrogateConfig):
    """Settings of one ELM unit; defaults are the released NeuronIO ELM's."""

    mlp_activation: str = "relu"  # relu | silu
    memory_lambda: float = 5.0  # released models: 5 (the paper's table says 10)
    update: str = "v1"  # v1 | v2 (see surrogates.elm)
    tau_s_ms: float = 5.0
    tau_m_min_ms: float = 1.0
    tau_m_max_ms: float = 150.0
    learn_tau_m: bool = False
    w_s_init: float = 0.5
    dt_ms: float = 1.0

    def __post_init__(self) -> None:
        if self.mlp_activation not in ACTIVATIONS:
            raise ModelError(f"mlp_activation must be one of {', '.join(ACTIVATIONS)}")
        if self.update not in UPDATES:
            raise ModelError("update must be 'v1' or 'v2'")
        if not 0 < self.tau_m_min_ms < self.tau_m_max_ms or self.tau_s_ms <= 0:
            raise ModelError("need 0 < tau_m_min_ms < tau_m_max_ms and tau_s_ms > 0")
        if self.dt_ms <= 0 or self.memory_lambda <= 0:
            raise ModelError("dt_ms and memory_lambda must be > 0")


class ElmUnitSurrogate(Surrogate):
    """Base of the ELM-unit models: the tau_m parametrisation and the memory coefficients,
    so that both models map their raw tau_m to kappa_m and the gain the same way."""

    config: ElmUnitConfig
    tau_m_raw: torch.Tensor

    def _add_input_sign(self) -> None:
        """Buffer `input_sign` [E]: +1 for excitatory, -1 for inhibitory inputs (not saved:
        it follows from the config)."""
        cfg = self.config
        sign = torch.cat([torch.ones(cfg.num_exc), -torch.ones(cfg.num_inh)])
        self.register_buffer("input_sign", sign, persistent=False)

    def _add_tau_m(self, tau: torch.Tensor) -> None:
        """`tau_m_raw` for initial time constants `tau` (ms, float64, strictly inside
        [tau_m_min_ms, tau_m_max_ms]): the inverse of `tau_m`, as float32; a parameter with
        learn_tau_m, a (saved) buffer otherwise."""
        lo, hi = self.config.tau_m_min_ms, self.config.tau_m_max_ms
        raw = torch.logit((tau - lo) / (hi - lo)).float()
        if self.config.learn_tau_m:
            self.tau_m_raw = nn.Parameter(raw)
        else:
            self.register_buffer("tau_m_raw", raw)

    @property
    def tau_m(self) -> torch.Tensor:
        """tau_m in ms, kept inside [tau_m_min_ms, tau_m_max_ms] by a sigmoid."""
        lo, hi = self.config.tau_m_min_ms, self.config.tau_m_max_ms
        return lo + (hi - lo) * torch.sigmoid(self.tau_m_raw)

    def memory_coefficients(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(kappa_m, gain) of the memory update for the current tau_m."""
        cfg = self.config
        return memory_coefficients(self.tau_m, cfg.memory_lambda, cfg.dt_ms, cfg.update)

    def _check_window(self, x: torch.Tensor) -> None:
        """Inputs of the right width and at least one time step."""
        self.check_inputs(x)
        if x.shape[1] == 0:
            raise ModelError(f"{self.name}: empty time axis")
