"""ELM and Branch-ELM neurons (Spieler et al. 2023), on the shared surrogate interface.

Per 1 ms step, with x the signed input (+1 exc spike, -1 inh spike; inputs arrive binary and
the model applies the sign):
  s_t = kappa_s s_{t-1} + w_s x_t                    (one trace per synapse slot)
  u_t = s_t (ELM)  or  per-branch sums of s_t (Branch-ELM)
  delta_t = tanh*(MLP([u_t, kappa_m m_{t-1}])),  tanh*(z) = 1.7159 tanh(2 z / 3)
  m_t = kappa_m m_{t-1} + lambda (1 - kappa_m) delta_t          (v1)
  m_t = kappa_m m_{t-1} + (1 - exp(-dt lambda / tau_m)) delta_t  (v2)
  y_t = W_y m_t + b_y                    (spike logit, soma voltage in the training scale)

Fast path: everything linear in x is folded into one [N, H] input matrix (sign, routing,
mask, w_s, branch sums and the input half of the MLP's first layer), applied to all steps by
one matmul; when every synapse has the same tau_s (always, unless a checkpoint says
otherwise) the trace filter commutes with those linear maps and runs on the H-wide projection
instead of the 4500-wide traces. Otherwise the traces are filtered at slot width (exact,
slower). Only the memory path is sequential (`elm_recurrence.memory_scan`). With the C++
loops built (`cpp_scan`), the input projection visits only the active inputs, and inference
(no autograd, uniform tau_s, CPU) runs projection, trace, memory and readout in one loop; for
float32 models with hidden <= 64 and d_m <= 32 (all published Branch-ELM sizes but d_m = 50,
100) on a CPU with AVX2, that loop is a specialised kernel with the state in vector registers,
limited by reading x.

Parameter counts (trainable; tau_m fixed unless learn_tau_m adds d_m):
  Branch-ELM d_m=20, 45 x 100: w_s 4500 + MLP (65*40+40) + (40*20+20) + readout 42 = 8,002,
  the published figure.
  ELM d_m=20, 1278 inputs: w_s 1278 + MLP (1298*40+40) + (40*20+20) + readout 42 = 54,100
  (54,120 with learnable tau_m). The paper lists 52.9K: MLP + readout alone are 52,822 (52.8K);
  no combination of these terms on 1278 inputs rounds to 52.9K. 52,922 (and 296,602 for d_m=100,
  listed as 296.6K) is what an MLP on 1280 + d_m inputs, learnable tau_m and the readout give
  without w_s, so the paper appears to count two more MLP inputs and no synapse weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType
from typing import NamedTuple

import torch
from torch import nn

from surrogates import cpp_scan
from surrogates.elm_recurrence import (
    TANH_GAIN,
    TANH_SLOPE,
    ElmTensors,
    exp_filter,
    memory_scan,
)
from surrogates.elm_unit import ElmUnitConfig, ElmUnitSurrogate
from surrogates.errors import ModelError
from surrogates.registry import register
from surrogates.routing import (
    ROUTINGS,
    Routing,
    explicit_placeholder,
    morphology_routing,
    neuronio_routing,
    random_routing,
)


@dataclass
class ElmConfig(ElmUnitConfig):
    """ELM neuron: one synapse per input; the unit's settings (activation, update, time
    constants, ...) come from ElmUnitConfig; defaults are the released NeuronIO settings."""

    num_memory: int = 20  # d_m
    mlp_hidden: int = 0  # 0: 2 * num_memory, as the reference

    def __post_init__(self) -> None:
        if self.num_memory < 1 or self.mlp_hidden < 0:
            raise ModelError("num_memory must be >= 1 and mlp_hidden >= 0")
        super().__post_init__()

    @property
    def hidden(self) -> int:
        return self.mlp_hidden or 2 * self.num_memory


@dataclass
class BranchElmConfig(ElmConfig):
    """Branch-ELM: num_branches x branch_size synapse slots, summed per branch.

    routing: neuronio | random (seeded by routing_seed) | morphology (from segment_branch,
    the branch id of each dendritic segment; num_branches and branch_size are then derived) |
    explicit (slots given by a checkpoint's buffers, for imported reference models).
    """

    routing: str = "neuronio"
    num_branches: int = 45
    branch_size: int = 100
    routing_seed: int = 0
    segment_branch: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        self.segment_branch = tuple(int(b) for b in self.segment_branch)
        if self.routing not in ROUTINGS:
            raise ModelError(f"routing must be one of {', '.join(ROUTINGS)}, got "
                             f"{self.routing!r}")
        if self.routing == "morphology":
            if not self.segment_branch:
                raise ModelError("morphology routing needs segment_branch (the data set's "
                                 "segments/branch)")
            derived = self.make_routing()
            self.num_branches, self.branch_size = derived.num_branches, derived.branch_size
        if self.num_branches < 1 or self.branch_size < 1:
            raise ModelError("num_branches and branch_size must be >= 1")

    def make_routing(self) -> Routing:
        if self.routing == "neuronio":
            return neuronio_routing(self.num_exc, self.num_inh, self.num_branches,
                                    self.branch_size)
        if self.routing == "random":
            return random_routing(self.num_inputs, self.num_branches, self.branch_size,
                                  self.routing_seed)
        if self.routing == "morphology":
            return morphology_routing(self.segment_branch, self.num_exc, self.num_inh)
        return explicit_placeholder(self.num_branches, self.branch_size)


class ElmState(NamedTuple):
    """State after the last step: the trace ([B, H] projected on the fast path, [B, S] per
    slot otherwise) and the memory [B, d_m]."""

    trace: torch.Tensor
    memory: torch.Tensor


def initial_tau_m(config: ElmConfig) -> torch.Tensor:
    """Initial tau_m [d_m] (ms, float64): log-spaced on [tau_min + 1e-6, tau_max - 1e-6]."""
    lo, hi = config.tau_m_min_ms, config.tau_m_max_ms
    return torch.logspace(math.log10(lo + 1e-6), math.log10(hi - 1e-6), config.num_memory,
                          dtype=torch.float64)


@register
class Elm(ElmUnitSurrogate):
    """ELM neuron: forward(x [B, T, N] binary, state=None, return_state=False) -> [B, T, 2]."""

    name = "elm"
    config_class = ElmConfig
    config: ElmConfig

    def __init__(self, config: ElmConfig):
        super().__init__(config)
        routing = self._routing()
        slots = config.num_inputs if routing is None else routing.index.numel()
        self.num_branches = slots if routing is None else routing.num_branches
        if routing is not None:
            self.register_buffer("synapse_index", routing.index.clone())
            self.register_buffer("synapse_mask", routing.mask.clone())
        self._add_input_sign()
        self.w_s_raw = nn.Parameter(torch.full((slots,), float(config.w_s_init)))
        self.register_buffer("tau_s", torch.full((slots,), float(config.tau_s_ms)))
        self._add_tau_m(initial_tau_m(config))
        d_m, hidden = config.num_memory, config.hidden
        self.mlp_in = nn.Linear(self.num_branches + d_m, hidden)
        self.mlp_out = nn.Linear(hidden, d_m)
        self.readout = nn.Linear(d_m, 2)

    def _routing(self) -> Routing | None:
        return None

    def tensors(self) -> ElmTensors:
        """The effective tensors of the definition (for `elm_recurrence.step_by_step`)."""
        cfg = self.config
        kappa_m, gain = self.memory_coefficients()
        routed = hasattr(self, "synapse_index")
        return ElmTensors(
            sign=self.input_sign, index=self.synapse_index if routed else None,
            mask=self.synapse_mask.to(self.w_s_raw.dtype) if routed else None,
            w_s=torch.relu(self.w_s_raw), kappa_s=torch.exp(-cfg.dt_ms / self.tau_s),
            num_branches=self.num_branches, w_in=self.mlp_in.weight, b_in=self.mlp_in.bias,
            w_hid=self.mlp_out.weight, b_hid=self.mlp_out.bias, kappa_m=kappa_m, gain=gain,
            w_y=self.readout.weight, b_y=self.readout.bias, activation=cfg.mlp_activation)

    def _slot_coefficients(self) -> torch.Tensor:
        """Per slot: sign of its input * mask * w_s."""
        w_s = torch.relu(self.w_s_raw)
        if not hasattr(self, "synapse_index"):
            return self.input_sign * w_s
        return self.input_sign[self.synapse_index] * self.synapse_mask * w_s

    def _input_matrix(self) -> torch.Tensor:
        """[N, H]: x_t @ this = input half of the first MLP layer applied to w_s * x_t summed
        per branch (before the trace filter, which commutes with it when tau_s is uniform)."""
        w_u = self.mlp_in.weight[:, :self.num_branches]  # [H, num_branches]
        coef = self._slot_coefficients()
        if not hasattr(self, "synapse_index"):
            return coef[:, None] * w_u.T
        slot_branch = torch.arange(coef.numel(), device=coef.device) // self.branch_size
        per_slot = coef[:, None] * w_u.T[slot_branch]  # [S, H]
        out = per_slot.new_zeros(self.config.num_inputs, per_slot.shape[1])
        return out.index_add(0, self.synapse_index, per_slot)

    @property
    def branch_size(self) -> int:
        """Slots per branch (1 for the ELM)."""
        return self.w_s_raw.numel() // self.num_branches

    def _uniform_tau_s(self) -> bool:
        return bool(torch.all(self.tau_s == self.tau_s[0]))

    def _drive(self, x: torch.Tensor, trace0: torch.Tensor | None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """MLP first-layer input half plus bias for every step, time-major [T, B, H]; and the
        trace state after the last step."""
        kappa_s = torch.exp(-self.config.dt_ms / self.tau_s)
        if self._uniform_tau_s():
            proj = cpp_scan.project(x, self._input_matrix()).transpose(0, 1)  # [T, B, H]
            z = exp_filter(proj, kappa_s[:1], trace0)
            return z + self.mlp_in.bias, z[-1]
        routed = x if not hasattr(self, "synapse_index") else x[..., self.synapse_index]
        s = exp_filter((routed * self._slot_coefficients()).transpose(0, 1), kappa_s, trace0)
        branch = s.reshape(*s.shape[:2], self.num_branches, -1).sum(-1)
        return branch @ self.mlp_in.weight[:, :self.num_branches].T + self.mlp_in.bias, s[-1]

    def forward(self, x: torch.Tensor, state: ElmState | None = None,
                return_state: bool = False) -> torch.Tensor | tuple[torch.Tensor, ElmState]:
        self._check_window(x)
        x = x.to(self.w_s_raw.dtype)
        batch, d_m = x.shape[0], self.config.num_memory
        kappa_m, gain = self.memory_coefficients()
        if not torch.is_grad_enabled() and self._uniform_tau_s():
            ext = cpp_scan.usable(x, self.w_s_raw)
            if ext is not None:
                y, state_out = self._infer_cpp(ext, x, state, kappa_m, gain)
                return (y, state_out) if return_state else y
        drive, trace = self._drive(x, None if state is None else state.trace)
        m0 = x.new_zeros(1, batch, d_m) if state is None else state.memory.unsqueeze(0)
        memory = memory_scan(
            drive.unsqueeze(1), m0, kappa_m[None], (TANH_GAIN * gain)[None],
            self.mlp_in.weight[None, :, self.num_branches:],
            (TANH_SLOPE * self.mlp_out.weight)[None], (TANH_SLOPE * self.mlp_out.bias)[None],
            self.config.mlp_activation)[:, 0]  # [T, B, d_m]
        y = self.readout(memory).transpose(0, 1)
        if return_state:
            return y, ElmState(trace, memory[-1])
        return y

    def _infer_cpp(self, ext: ModuleType, x: torch.Tensor, state: ElmState | None,
                   kappa_m: torch.Tensor, gain: torch.Tensor) -> tuple[torch.Tensor, ElmState]:
        """Inference (no autograd, uniform tau_s) in one C++ loop: projection over the active
        inputs only, trace filter, memory and readout, step by step with the state in
        registers; the same state layout as the fused path. Small float32 models take the
        specialised kernel unless cpp_scan.FAST_INFER is off."""
        batch, hidden, d_m = x.shape[0], self.config.hidden, self.config.num_memory
        if x.stride(-1) != 1:
            x = x.contiguous()
        kappa_s = torch.exp(-self.config.dt_ms / self.tau_s[:1]).expand(hidden).contiguous()
        trace0 = x.new_zeros(batch, hidden) if state is None else state.trace
        m0 = x.new_zeros(batch, d_m) if state is None else state.memory
        y, trace, memory = ext.infer(
            x, self._input_matrix().contiguous(), self.mlp_in.bias.contiguous(), kappa_s,
            trace0.contiguous(), m0.contiguous(), kappa_m.contiguous(),
            (TANH_GAIN * gain).contiguous(),
            self.mlp_in.weight[:, self.num_branches:].T.contiguous(),
            (TANH_SLOPE * self.mlp_out.weight).T.contiguous(),
            (TANH_SLOPE * self.mlp_out.bias).contiguous(), self.readout.weight.contiguous(),
            self.readout.bias.contiguous(), self.config.mlp_activation == "silu",
            cpp_scan.FAST_INFER)
        return y, ElmState(trace, memory)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, chunk_ms: int = 500) -> torch.Tensor:
        """Outputs for long sequences in bounded memory: windows of chunk_ms carrying state
        (equal to one pass); x may be bool/uint8/float."""
        outs, state = [], None
        for start in range(0, x.shape[1], chunk_ms):
            y, state = self(x[:, start:start + chunk_ms], state, return_state=True)
            outs.append(y)
        return torch.cat(outs, 1)


@register
class BranchElm(Elm):
    """Branch-ELM: synapse slots routed from the inputs and summed per dendritic branch."""

    name = "branch_elm"
    config_class = BranchElmConfig
    config: BranchElmConfig

    def _routing(self) -> Routing:
        return self.config.make_routing()

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: object,
                              **kwargs: object) -> None:
        """Refuse routing buffers other than those the config builds (all routings but
        `explicit`, whose buffers come from the checkpoint): they would silently override
        the config, e.g. a 1278-input routing under a config with other input counts."""
        if self.config.routing != "explicit":
            for key in ("synapse_index", "synapse_mask"):
                given, built = state_dict.get(prefix + key), getattr(self, key)
                if isinstance(given, torch.Tensor) and given.shape == built.shape and \
                        not torch.equal(given.to(device=built.device, dtype=built.dtype), built):
                    cfg = self.config
                    raise ModelError(
                        f"{self.name}: checkpoint's {key} differs from the {cfg.routing!r} "
                        f"routing its config builds ({cfg.num_exc} exc + {cfg.num_inh} inh "
                        f"inputs, {cfg.num_branches} x {cfg.branch_size} slots)")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
