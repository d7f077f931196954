"""ELM Network: N ELM neurons in one recurrent layer with fixed, sparse, seeded connectivity.

Spieler, Martius & Levina (2026) tune the number of units N, the per-unit complexity k_e and
the per-unit connectivity k_c independently; only their abstract is public, so every detail
below is this project's choice (reasons in docs/elm-network.md). Per 1 ms step, unit i:

  e_t[i] = sum_j relu(w_ij) sign(s_ij) z_t[s_ij]   its external synapses; z the input traces
                                                   (z_t = kappa_s z_{t-1} + x_t, tau_s 5 ms)
  r_t[i] = sum_j v_ij o_{t-1}[s'_ij]               its recurrent synapses: other units' outputs
  u_t[i] = e_t[i] + r_t[i]                         one scalar drive per unit
  m_t[i] = kappa m_{t-1}[i] + g tanh*(MLP_i([u_t[i], kappa m_{t-1}[i]]))   (the ELM memory)
  o_t[i] = a_i . m_t[i]                            the unit's output, what the others read
  y_t = W_y o_t + b_y                              spike logit, soma voltage (training scale)

with k_e = the memory size d_m and an MLP 1 + k_e -> 2 k_e -> k_e per unit. Every unit reads
exactly k_c sources: k_rec of them other units (a fixed share of k_c, never itself) and k_ext
external synapses, chosen least-used-first with seeded random ties, so the inputs are covered
evenly; optionally a fraction of the external ones from one dendritic branch per unit.

Trainable parameters, exactly (`param_budget`):
  P(N, k_e, k_c) = N (k_c + 4 k_e^2 + 6 k_e + 2) + 2      (+ N k_e with learn_tau_m)
  = synapses N k_c + MLPs N (2 k_e (1 + k_e) + 2 k_e + 2 k_e k_e + k_e) + outputs N k_e
    + readout 2 N + 2.

Only the external drive is linear in the input, so it is computed for all steps at once (one
sparse projection, then the trace filter on the N-wide result, as the ELM's fast path). The
recurrence couples units through o_{t-1}, which `elm_recurrence.memory_scan` (per-unit weights,
no cross-unit term) cannot express, so the layer runs its own time loop, batched over units:
TorchScript, or on a GPU fused Triton kernels (`triton_network`, dispatched by
`triton_scan.usable` as the ELM's scan is); `step_by_step` is the per-unit, per-step
definition both must reproduce.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.autograd.function import once_differentiable

from pipeline.protocol import per_synapse
from surrogates import triton_scan
from surrogates.cpp_scan import project
from surrogates.elm_recurrence import (
    TANH_GAIN,
    TANH_SLOPE,
    exp_filter,
    one_cpu_thread,
)
from surrogates.elm_unit import ElmUnitConfig, ElmUnitSurrogate
from surrogates.errors import ModelError
from surrogates.registry import register

SMALL_STEP = 1 << 16  # units x batch x hidden below which one step is "small ops"


def unit_params(complexity: int, connectivity: int, learn_tau_m: bool = False) -> int:
    """Trainable parameters of one unit, its readout column included."""
    k_e = complexity
    return connectivity + 4 * k_e * k_e + 6 * k_e + 2 + (k_e if learn_tau_m else 0)


def param_budget(num_units: int, complexity: int, connectivity: int,
                 learn_tau_m: bool = False) -> int:
    """P(N, k_e, k_c) = N (k_c + 4 k_e^2 + 6 k_e + 2) + 2 (+ N k_e with learn_tau_m)."""
    return num_units * unit_params(complexity, connectivity, learn_tau_m) + 2


def connection_counts(num_inputs: int, num_units: int, connectivity: int,
                      recurrent_fraction: float) -> tuple[int, int]:
    """(k_ext, k_rec): external and recurrent sources per unit, k_ext + k_rec = k_c.

    k_rec = round(recurrent_fraction * k_c), at most N - 1 (no self-connection) and k_c - 1
    (every unit hears the input); where fewer external synapses exist than the rest asks for,
    the surplus goes to recurrent sources.
    """
    k_rec = min(math.floor(recurrent_fraction * connectivity + 0.5), num_units - 1,
                connectivity - 1)
    k_ext = connectivity - k_rec
    if k_ext > num_inputs:
        k_ext, k_rec = num_inputs, connectivity - num_inputs
    if k_rec > num_units - 1:
        raise ValueError(f"connectivity {connectivity} exceeds the {num_inputs} inputs plus "
                         f"{num_units - 1} other units a unit can read")
    return k_ext, k_rec


def _least_used(usage: np.ndarray, count: int, allowed: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
    """The `count` allowed indices (a mask over `usage`) used least so far, ties broken at
    random; ascending."""
    if count == 0:
        return np.empty(0, dtype=np.int64)
    key = np.where(allowed, usage + rng.random(len(usage)), np.inf)
    return np.sort(np.argpartition(key, count - 1)[:count])


def draw_connectivity(num_inputs: int, num_units: int, k_ext: int, k_rec: int, seed: int,
                      input_branch: np.ndarray | None = None,
                      branch_bias: float = 0.0) -> np.ndarray:
    """Sources of every unit, [N, k_ext + k_rec] indices into [inputs ++ unit outputs].

    Row i holds k_ext distinct inputs (ascending), then k_rec distinct other units
    (num_inputs + unit id, ascending). Least-used-first keeps every input's number of readers
    within one of any other's. With `input_branch` (the dendritic branch of every input) and
    branch_bias b > 0, unit i first takes round(b k_ext) inputs (as many as there are) of its
    home branch; home branches go round the branches in a seeded order.
    """
    rng = np.random.default_rng([seed, 2026])
    ext_use = np.zeros(num_inputs)
    rec_use = np.zeros(num_units)
    homes: list[np.ndarray] = []
    if input_branch is not None and branch_bias > 0:
        homes = [input_branch == b for b in rng.permutation(np.unique(input_branch))]
    rows = np.empty((num_units, k_ext + k_rec), dtype=np.int64)
    for i in range(num_units):
        free = np.ones(num_inputs, dtype=bool)
        picked = np.empty(0, dtype=np.int64)
        if homes:
            home = homes[i % len(homes)]
            n_home = min(math.floor(branch_bias * k_ext + 0.5), int(home.sum()))
            picked = _least_used(ext_use, n_home, home, rng)
            free[picked] = False
        ext = np.sort(np.concatenate([picked, _least_used(ext_use, k_ext - len(picked), free,
                                                          rng)]))
        others = np.arange(num_units) != i
        rec = _least_used(rec_use, k_rec, others, rng)
        ext_use[ext] += 1
        rec_use[rec] += 1
        rows[i] = np.concatenate([ext, num_inputs + rec])
    return rows


@dataclass
class ElmNetworkConfig(ElmUnitConfig):
    """A recurrent layer of N ELM units: num_units = N, complexity = k_e (memory size; MLP
    hidden 2 k_e), connectivity = k_c (sources per unit); every unit has the ELM unit's
    settings (ElmUnitConfig)."""

    num_units: int = 64
    complexity: int = 4
    connectivity: int = 32
    recurrent_fraction: float = 0.25  # share of k_c read from other units
    branch_bias: float = 0.0  # share of external sources taken from the unit's home branch
    segment_branch: tuple[int, ...] = ()  # branch id of every segment (for branch_bias > 0)
    connectivity_seed: int = 0

    def __post_init__(self) -> None:
        self.segment_branch = tuple(int(b) for b in self.segment_branch)
        if min(self.num_units, self.complexity, self.connectivity) < 1:
            raise ModelError("num_units, complexity and connectivity must be >= 1")
        if not 0 <= self.recurrent_fraction < 1:
            raise ModelError("recurrent_fraction must lie in [0, 1)")
        if not 0 <= self.branch_bias <= 1:
            raise ModelError("branch_bias must lie in [0, 1]")
        if self.branch_bias > 0 and (len(self.segment_branch) != self.num_exc
                                     or self.num_exc != self.num_inh):
            raise ModelError("branch_bias needs segment_branch, one branch id per segment, "
                             "and one excitatory and one inhibitory input per segment")
        super().__post_init__()
        try:
            self.counts()
        except ValueError as err:  # k_c cannot be met
            raise ModelError(str(err)) from None

    @property
    def hidden(self) -> int:
        return 2 * self.complexity

    def counts(self) -> tuple[int, int]:
        """(k_ext, k_rec)."""
        return connection_counts(self.num_inputs, self.num_units, self.connectivity,
                                 self.recurrent_fraction)

    def input_branch(self) -> np.ndarray | None:
        """Branch of every input (both synapses of a segment sit on its branch), if given."""
        if not self.segment_branch:
            return None
        return per_synapse(np.asarray(self.segment_branch, dtype=np.int64))

    def draw_sources(self) -> np.ndarray:
        k_ext, k_rec = self.counts()
        return draw_connectivity(self.num_inputs, self.num_units, k_ext, k_rec,
                                 self.connectivity_seed, self.input_branch(), self.branch_bias)


def tau_m_grid(config: ElmNetworkConfig) -> torch.Tensor:
    """tau_m [N, k_e]: unit i's memories at log-range positions (d + (i + 1/2) / N) / k_e, so
    the N k_e memories tile [tau_min, tau_max] evenly and even k_e = 1 units span it."""
    lo, hi = math.log(config.tau_m_min_ms + 1e-6), math.log(config.tau_m_max_ms - 1e-6)
    n, d = config.num_units, config.complexity
    pos = (torch.arange(d, dtype=torch.float64)[None, :]
           + (torch.arange(n, dtype=torch.float64)[:, None] + 0.5) / n) / d
    return torch.exp(lo + (hi - lo) * pos)


class NetworkTensors(NamedTuple):
    """The effective tensors of the definition, as `step_by_step` uses them.

    sign [E]; kappa_s (scalar); sources [N, k_c] into [inputs ++ units]; weights [N, k_c]
    (relu(w) for external sources, the sign coming from the input; v for recurrent ones);
    w_in [N, H, 1 + D] (columns: drive, then kappa m); b_in [N, H]; w_hid [N, D, H];
    b_hid [N, D]; kappa_m, gain, out [N, D]; w_y [2, N]; b_y [2].
    """

    sign: torch.Tensor
    kappa_s: float
    sources: torch.Tensor
    weights: torch.Tensor
    w_in: torch.Tensor
    b_in: torch.Tensor
    w_hid: torch.Tensor
    b_hid: torch.Tensor
    kappa_m: torch.Tensor
    gain: torch.Tensor
    out: torch.Tensor
    w_y: torch.Tensor
    b_y: torch.Tensor
    activation: str


def step_by_step(p: NetworkTensors, x: torch.Tensor) -> torch.Tensor:
    """The network as defined, one step and one unit at a time: x binary [B, T, E] -> y."""
    batch, steps, num_inputs = x.shape
    num_units, d_m = p.out.shape
    act = torch.nn.functional.silu if p.activation == "silu" else torch.relu
    z = x.new_zeros(batch, num_inputs)
    memory = [x.new_zeros(batch, d_m) for _ in range(num_units)]
    o_prev = x.new_zeros(batch, num_units)
    ys = []
    for t in range(steps):
        z = p.kappa_s * z + x[:, t] * p.sign
        sources = torch.cat([z, o_prev], 1)
        o_now = x.new_zeros(batch, num_units)
        for i in range(num_units):
            u = sources[:, p.sources[i]] @ p.weights[i]
            q = p.kappa_m[i] * memory[i]
            hidden = act(torch.cat([u[:, None], q], 1) @ p.w_in[i].T + p.b_in[i])
            delta = TANH_GAIN * torch.tanh(TANH_SLOPE * (hidden @ p.w_hid[i].T + p.b_hid[i]))
            memory[i] = q + p.gain[i] * delta
            o_now[:, i] = memory[i] @ p.out[i]
        o_prev = o_now
        ys.append(o_now @ p.w_y.T + p.b_y)
    return torch.stack(ys, 1)


def _forward_loop(ext: torch.Tensor, kappa: torch.Tensor, gain: torch.Tensor,
                  w_u: torch.Tensor, b_in: torch.Tensor, wq_t: torch.Tensor,
                  wo_t: torch.Tensor, bo: torch.Tensor, out: torch.Tensor,
                  rec_src: torch.Tensor, w_rec: torch.Tensor,
                  silu: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All units at once, step by step. ext [T, N, B] (external drive); kappa, gain, bo
    [N, 1, D]; w_u, b_in [N, 1, H]; wq_t [N, D, H]; wo_t [N, H, D] (tanh* slope folded in);
    out [N, D, 1]; rec_src [N, K] unit ids; w_rec [N, K, 1]. Returns, unit-major (so that
    the backward's weight gradients are plain bmm), the outputs o [N, T, B], the total drives
    u [N, T, B] and the memories m [N, T, B, D]."""
    num_units, batch = ext.shape[1], ext.shape[2]
    m = ext.new_zeros(num_units, batch, kappa.shape[2])
    o = ext.new_zeros(num_units, batch)
    os: list[torch.Tensor] = []
    us: list[torch.Tensor] = []
    ms: list[torch.Tensor] = []
    for t in range(ext.shape[0]):
        u = ext[t]
        if rec_src.shape[1] > 0:
            u = u + (o[rec_src] * w_rec).sum(1)
        q = kappa * m
        pre = torch.baddbmm(torch.addcmul(b_in, u.unsqueeze(-1), w_u), q, wq_t)
        h = torch.nn.functional.silu(pre) if silu else torch.relu(pre)
        m = torch.addcmul(q, gain, torch.tanh(torch.baddbmm(bo, h, wo_t)))
        o = torch.bmm(m, out).squeeze(-1)
        os.append(o)
        us.append(u)
        ms.append(m)
    return torch.stack(os, 1), torch.stack(us, 1), torch.stack(ms, 1)


def _backward_loop(grad_o: torch.Tensor, tanh_grad: torch.Tensor, act_grad: torch.Tensor,
                   o_prev: torch.Tensor, kappa: torch.Tensor, out: torch.Tensor,
                   w_u: torch.Tensor, wq: torch.Tensor, wo: torch.Tensor,
                   rec_src: torch.Tensor, w_rec: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                              torch.Tensor]:
    """Reverse-time adjoint of `_forward_loop`, unit-major: grad_o, o_prev [N, T, B];
    tanh_grad [N, T, B, D] = gain (1 - tanh^2); act_grad [N, T, B, H]; kappa, out [N, 1, D];
    w_u [N, 1, H]; wq [N, H, D]; wo [N, D, H]; rec_src [N, K]; w_rec [N, K].

    Returns the total adjoints of o [N, T, B], of m [N, T, B, D] and of the pre-activations
    [N, T, B, H], the adjoint of the drive u time-major [T, N, B] (= dL/d ext), and
    dL/dw_rec [N, K]."""
    batch, steps = grad_o.shape[2], grad_o.shape[1]
    carry_m = torch.zeros_like(tanh_grad[:, 0])
    carry_o = torch.zeros_like(grad_o[:, 0])
    grad_w_rec = torch.zeros_like(w_rec)
    flat_src = rec_src.reshape(-1)
    gos: list[torch.Tensor] = []
    gms: list[torch.Tensor] = []
    gpres: list[torch.Tensor] = []
    gus: list[torch.Tensor] = []
    for i in range(steps):
        t = steps - 1 - i
        go = grad_o[:, t] + carry_o
        gm = torch.addcmul(carry_m, go.unsqueeze(-1), out)
        gpre = torch.bmm(gm * tanh_grad[:, t], wo) * act_grad[:, t]
        gu = (gpre * w_u).sum(-1)
        carry_m = kappa * torch.baddbmm(gm, gpre, wq)
        if rec_src.shape[1] > 0:
            grad_w_rec += (o_prev[:, t][rec_src] * gu.unsqueeze(1)).sum(-1)
            spread = (w_rec.unsqueeze(-1) * gu.unsqueeze(1)).reshape(-1, batch)
            carry_o = torch.zeros_like(carry_o).index_add_(0, flat_src, spread)
        gos.append(go)
        gms.append(gm)
        gpres.append(gpre)
        gus.append(gu)
    for stack in (gos, gms, gpres, gus):
        stack.reverse()
    return (torch.stack(gos, 1), torch.stack(gms, 1), torch.stack(gpres, 1), torch.stack(gus),
            grad_w_rec)


@functools.cache
def _scripted() -> dict[str, torch.jit.ScriptFunction]:
    """Compiled once, on first use (torch.jit.script warns that it is deprecated; it still
    runs a loop of small ops without the Python interpreter per step)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return {fn.__name__: torch.jit.script(fn) for fn in (_forward_loop, _backward_loop)}


class _NetworkScan(torch.autograd.Function):
    """The layer's recurrence with a hand-written backward: the forward keeps only o, u and
    m; the backward recomputes the rest for all steps at once and runs one adjoint loop.
    Both loops are the fused Triton kernels where `triton_scan.usable` allows them (CUDA
    float tensors in MODE "auto", anywhere in "triton"), else `_forward_loop` and
    `_backward_loop`; the two give the same tensors in the same layouts."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, ext: torch.Tensor, kappa: torch.Tensor, gain: torch.Tensor,
                w_u: torch.Tensor, b_in: torch.Tensor, wq: torch.Tensor, wo: torch.Tensor,
                bo: torch.Tensor, out: torch.Tensor, rec_src: torch.Tensor,
                w_rec: torch.Tensor, silu: bool) -> torch.Tensor:
        fused = triton_scan.usable(ext, kappa, gain, w_u, b_in, wq, wo, bo, out, w_rec,
                                   hidden=w_u.shape[1], memory=kappa.shape[1])
        if fused is not None:
            o, u, m = fused.network_forward(ext, kappa, gain, w_u, b_in, wq, wo, bo, out,
                                            rec_src, w_rec, silu)
        else:
            with one_cpu_thread(ext.device,
                                ext.shape[1] * ext.shape[2] * w_u.shape[1] <= SMALL_STEP):
                o, u, m = _scripted()["_forward_loop"](
                    ext.contiguous(), kappa.unsqueeze(1), gain.unsqueeze(1), w_u.unsqueeze(1),
                    b_in.unsqueeze(1), wq.transpose(1, 2).contiguous(),
                    wo.transpose(1, 2).contiguous(), bo.unsqueeze(1), out.unsqueeze(-1),
                    rec_src, w_rec.unsqueeze(-1), silu)
        ctx.save_for_backward(kappa, gain, w_u, b_in, wq, wo, bo, out, rec_src, w_rec, o, u, m)
        ctx.silu, ctx.fused = silu, fused
        return o

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    @once_differentiable
    def backward(ctx, grad_o: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        kappa, gain, w_u, b_in, wq, wo, bo, out, rec_src, w_rec, o, u, m = ctx.saved_tensors
        n, steps, batch, d_m = m.shape
        rows = steps * batch  # every [N, T, B, ...] tensor is viewed as [N, T B, ...]
        m_prev = torch.cat([torch.zeros_like(m[:, :1]), m[:, :-1]], 1)
        o_prev = torch.cat([torch.zeros_like(o[:, :1]), o[:, :-1]], 1)
        q = (kappa.unsqueeze(1) * m_prev.view(n, rows, d_m))              # [N, TB, D]
        pre = torch.baddbmm(torch.addcmul(b_in.unsqueeze(1), u.view(n, rows, 1),
                                          w_u.unsqueeze(1)), q, wq.transpose(1, 2))
        if ctx.silu:
            sig = torch.sigmoid(pre)
            h, act_grad = pre * sig, sig * (1 + pre * (1 - sig))
        else:
            h, act_grad = torch.relu(pre), (pre > 0).to(pre.dtype)
        th = torch.tanh(torch.baddbmm(bo.unsqueeze(1), h, wo.transpose(1, 2)))   # [N, TB, D]
        tanh_grad = gain.unsqueeze(1) * (1 - th * th)
        tanh_grad_t = tanh_grad.view(n, steps, batch, d_m)
        act_grad_t = act_grad.view(n, steps, batch, -1)
        if ctx.fused is not None:
            go, gm, gpre, gu, grad_w_rec = ctx.fused.network_backward(
                grad_o, tanh_grad_t, act_grad_t, o_prev, kappa, out, w_u, wq, wo, rec_src,
                w_rec)
        else:
            with one_cpu_thread(o.device, n * batch * w_u.shape[1] <= SMALL_STEP):
                go, gm, gpre, gu, grad_w_rec = _scripted()["_backward_loop"](
                    grad_o.contiguous(), tanh_grad_t, act_grad_t, o_prev, kappa.unsqueeze(1),
                    out.unsqueeze(1), w_u.unsqueeze(1), wq.contiguous(), wo.contiguous(),
                    rec_src, w_rec)
        gm, gpre = gm.view(n, rows, d_m), gpre.view(n, rows, -1)
        gz = gm * tanh_grad
        return (gu,
                (torch.baddbmm(gm, gpre, wq) * m_prev.view(n, rows, d_m)).sum(1),
                (gm * th).sum(1),
                torch.bmm(u.view(n, 1, rows), gpre).squeeze(1),
                gpre.sum(1),
                torch.bmm(gpre.transpose(1, 2), q),
                torch.bmm(gz.transpose(1, 2), h),
                gz.sum(1),
                torch.bmm(go.view(n, 1, rows), m.view(n, rows, d_m)).squeeze(1),
                None, grad_w_rec, None)


def _uniform(shape: tuple[int, ...], bound: float) -> nn.Parameter:
    return nn.Parameter(torch.empty(shape).uniform_(-bound, bound))


@register
class ElmNetwork(ElmUnitSurrogate):
    """forward(x [B, T, E] binary) -> [B, T, 2]; every window starts from rest."""

    name = "elm_network"
    config_class = ElmNetworkConfig
    config: ElmNetworkConfig

    def __init__(self, config: ElmNetworkConfig):
        super().__init__(config)
        n, d, h = config.num_units, config.complexity, config.hidden
        self.k_ext, self.k_rec = config.counts()
        # Saved with the weights, so that a checkpoint shows what they were trained on.
        self.register_buffer("sources", torch.from_numpy(config.draw_sources()))
        self._add_input_sign()
        self.syn_ext_raw = nn.Parameter(torch.full((n, self.k_ext), float(config.w_s_init)))
        self.syn_rec = _uniform((n, self.k_rec), 1 / math.sqrt(max(self.k_rec, 1)))
        fan_in = 1 / math.sqrt(1 + d)  # nn.Linear's init for the 1 + k_e MLP inputs
        self.w_u, self.w_q, self.b_in = (_uniform((n, h), fan_in), _uniform((n, h, d), fan_in),
                                         _uniform((n, h), fan_in))
        self.w_o, self.b_o = _uniform((n, d, h), 1 / math.sqrt(h)), _uniform((n, d),
                                                                            1 / math.sqrt(h))
        self.out = _uniform((n, d), 1 / math.sqrt(d))
        self._add_tau_m(tau_m_grid(config))
        self.readout = nn.Linear(n, 2)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: object,
                              **kwargs: object) -> None:
        """Refuse sources other than those the config draws: weights of the same shapes
        under another config (e.g. other input counts) would read the wrong inputs."""
        given = state_dict.get(prefix + "sources")
        if isinstance(given, torch.Tensor) and given.shape == self.sources.shape and \
                not torch.equal(given.to(self.sources.device, self.sources.dtype), self.sources):
            cfg = self.config
            raise ModelError(f"{self.name}: checkpoint's connectivity (sources) differs from "
                             f"the one its config draws ({cfg.num_exc} exc + {cfg.num_inh} "
                             f"inh inputs, seed {cfg.connectivity_seed})")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def external_matrix(self) -> torch.Tensor:
        """[E, N]: input sign * relu(w) where unit n reads input e, else 0 (dense, so that
        one sparse projection of the spikes gives every unit's external drive)."""
        src = self.sources[:, :self.k_ext]
        units = torch.arange(self.config.num_units, device=src.device)[:, None].expand_as(src)
        values = self.input_sign[src] * torch.relu(self.syn_ext_raw)
        matrix = values.new_zeros(self.config.num_inputs, self.config.num_units)
        return matrix.index_put((src.reshape(-1), units.reshape(-1)), values.reshape(-1))

    def tensors(self) -> NetworkTensors:
        """The effective tensors of the definition (for `step_by_step`)."""
        cfg = self.config
        kappa_m, gain = self.memory_coefficients()
        return NetworkTensors(
            sign=self.input_sign, kappa_s=math.exp(-cfg.dt_ms / cfg.tau_s_ms),
            sources=self.sources,
            weights=torch.cat([torch.relu(self.syn_ext_raw), self.syn_rec], 1),
            w_in=torch.cat([self.w_u.unsqueeze(-1), self.w_q], 2), b_in=self.b_in,
            w_hid=self.w_o, b_hid=self.b_o, kappa_m=kappa_m, gain=gain, out=self.out,
            w_y=self.readout.weight, b_y=self.readout.bias, activation=cfg.mlp_activation)

    def external_drive(self, x: torch.Tensor) -> torch.Tensor:
        """Every unit's filtered external drive for every step, [T, N, B]: the trace filter
        commutes with the linear map, so it runs on the N-wide projection."""
        proj = project(x, self.external_matrix()).transpose(0, 1)  # [T, B, N]
        kappa_s = torch.full((1,), math.exp(-self.config.dt_ms / self.config.tau_s_ms),
                             dtype=proj.dtype, device=proj.device)
        return exp_filter(proj, kappa_s).transpose(1, 2).contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_window(x)
        cfg = self.config
        x = x.to(self.w_u.dtype)
        kappa_m, gain = self.memory_coefficients()
        outputs = _NetworkScan.apply(
            self.external_drive(x), kappa_m, TANH_GAIN * gain, self.w_u, self.b_in, self.w_q,
            TANH_SLOPE * self.w_o, TANH_SLOPE * self.b_o, self.out,
            self.sources[:, self.k_ext:] - cfg.num_inputs, self.syn_rec,
            cfg.mlp_activation == "silu")  # [N, T, B]
        return torch.einsum("ntb,cn->btc", outputs, self.readout.weight) + self.readout.bias
