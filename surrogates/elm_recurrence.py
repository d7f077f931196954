"""The ELM's time recurrences, fused, with hand-written backward passes; and its definition.

Only the memory path of an ELM is nonlinear in time. Everything linear in the input (the
synapse traces, branch sums, the input half of the MLP's first layer) is applied to all time
steps at once by the model; what stays sequential is:

- `exp_filter`: z_t = k * z_{t-1} + p_t per channel (the synapse trace, at whatever width the
  model applies it), a linear filter whose backward is the same filter run backwards in time;
- `memory_scan`: m_t = kappa * m_{t-1} + g * tanh(W_o act(d_t + W_q (kappa * m_{t-1})) + b_o),
  the ELM memory update with the tanh* constants and lambda folded into W_o, b_o and g.

Both loops run as plain C++ loops on the CPU (`cpp_scan`, built on first use; float32/
float64), as fused Triton kernels on a GPU (`triton_scan`: one kernel launch per window, the
state in registers across all steps; needs the optional triton package), and otherwise in
TorchScript (one interpreter call per sequence, no Python per step; on a GPU that is one
kernel per op per step, correct but slow). NEUROSURROGATE_FUSED_SCAN=off keeps a GPU on the
TorchScript loops (see `triton_scan`). All carry their state in and out, so long sequences
can be cut into windows. `memory_scan` works on a unit axis, [time, units, batch, ...] with
per-unit weights, so that a layer of many ELM neurons can reuse it; one ELM neuron is
units = 1.

`step_by_step` is the plain per-step definition of the whole ELM (the reference sheet's
equations, one time step at a time) that the fast path must reproduce.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Iterator
from typing import Any, NamedTuple

import torch
from torch.autograd.function import once_differentiable

from surrogates import cpp_scan, triton_scan

TANH_GAIN = 1.7159  # tanh*(z) = 1.7159 * tanh(2 z / 3)
TANH_SLOPE = 2.0 / 3.0
ACTIVATIONS = ("relu", "silu")


def _filter_loop(p: torch.Tensor, k: torch.Tensor, z0: torch.Tensor) -> torch.Tensor:
    """z_t = k * z_{t-1} + p_t over the leading (time) axis of p; z_{-1} = z0."""
    z = z0
    out: list[torch.Tensor] = []
    for t in range(p.shape[0]):
        z = torch.addcmul(p[t], k, z)
        out.append(z)
    return torch.stack(out)


def _scan_loop(drive: torch.Tensor, m0: torch.Tensor, kappa: torch.Tensor, gain: torch.Tensor,
               wq_t: torch.Tensor, wo_t: torch.Tensor, bo: torch.Tensor,
               silu: bool) -> torch.Tensor:
    """Forward memory recurrence. drive [T, U, B, H]; m0 [U, B, D]; kappa, gain, bo [U, 1, D];
    wq_t [U, D, H] and wo_t [U, H, D] are the transposed weights. Returns m [T, U, B, D]."""
    m = m0
    out: list[torch.Tensor] = []
    for t in range(drive.shape[0]):
        q = kappa * m
        pre = torch.baddbmm(drive[t], q, wq_t)
        h = torch.nn.functional.silu(pre) if silu else torch.relu(pre)
        m = torch.addcmul(q, gain, torch.tanh(torch.baddbmm(bo, h, wo_t)))
        out.append(m)
    return torch.stack(out)


def _scan_backward_loop(grad_m: torch.Tensor, tanh_grad: torch.Tensor, act_grad: torch.Tensor,
                        kappa: torch.Tensor, wq: torch.Tensor,
                        wo: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reverse-time adjoint of `_scan_loop`.

    grad_m [T, U, B, D]: dL/dm_t from the outputs; tanh_grad [T, U, B, D] = g * (1 - tanh^2);
    act_grad [T, U, B, H] = act'(pre); wq [U, H, D]; wo [U, D, H]. Returns the total adjoint of
    every m_t [T, U, B, D], the adjoint of every pre-activation [T, U, B, H] (= dL/d drive_t)
    and dL/dm0.
    """
    carry = torch.zeros_like(grad_m[0])
    adj_m: list[torch.Tensor] = []
    adj_pre: list[torch.Tensor] = []
    for i in range(grad_m.shape[0]):
        t = grad_m.shape[0] - 1 - i
        g = grad_m[t] + carry
        gpre = torch.bmm(g * tanh_grad[t], wo) * act_grad[t]
        carry = kappa * (g + torch.bmm(gpre, wq))
        adj_m.append(g)
        adj_pre.append(gpre)
    adj_m.reverse()
    adj_pre.reverse()
    return torch.stack(adj_m), torch.stack(adj_pre), carry


@functools.cache
def _scripted() -> dict[str, torch.jit.ScriptFunction]:
    """Compile the loops once, on first use (torch.jit.script warns that it is deprecated;
    it is still the CPU's cheapest way to run a loop of small ops without Python)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return {fn.__name__: torch.jit.script(fn)
                for fn in (_filter_loop, _scan_loop, _scan_backward_loop)}


@contextlib.contextmanager
def one_cpu_thread(device: torch.device, small: bool = True) -> Iterator[None]:
    """Run a loop of tiny ops on one thread (when `small`): they gain nothing from more, and
    on a busy machine an OpenMP team waiting for a descheduled peer can stall every step."""
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1 or not small:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _run(name: str, first: torch.Tensor, *rest: torch.Tensor | bool) -> Any:
    with one_cpu_thread(first.device):
        return _scripted()[name](first, *rest)


def _extension(use_cpp: bool, *tensors: torch.Tensor, hidden: int = 0,
               memory: int = 0) -> Any:
    """The compiled loops for these tensors: Triton's (CUDA, or forced by triton_scan.MODE),
    else the C++ extension (CPU), else None (TorchScript). use_cpp False: None."""
    if not use_cpp:
        return None
    fused = triton_scan.usable(*tensors, hidden=hidden, memory=memory)
    return fused if fused is not None else cpp_scan.usable(*tensors)


def _filter(p: torch.Tensor, k: torch.Tensor, z0: torch.Tensor, reverse: bool,
            use_cpp: bool) -> torch.Tensor:
    """z_t = k z_{t-1} + p_t (reverse: z_t = k z_{t+1} + p_t from the end), z0 the state
    before the first step taken; by a compiled loop where allowed, else TorchScript."""
    ext = _extension(use_cpp, p, k, z0)
    if ext is not None:
        k_full = k.expand(p.shape[1:]).contiguous()
        return ext.exp_filter(p, k_full, z0.expand(p.shape[1:]).contiguous(), reverse)
    if reverse:
        return _run("_filter_loop", p.flip(0).contiguous(), k, z0).flip(0)
    return _run("_filter_loop", p, k, z0)


class _ExpFilter(torch.autograd.Function):
    @staticmethod
    def forward(ctx, p: torch.Tensor, k: torch.Tensor, z0: torch.Tensor,
                use_cpp: bool) -> torch.Tensor:
        ctx.save_for_backward(k)
        ctx.use_cpp = use_cpp
        return _filter(p, k, z0, False, use_cpp)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_z: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (k,) = ctx.saved_tensors
        # The adjoint a_t = grad_z_t + k a_{t+1} is the same filter run backwards in time.
        adj = _filter(grad_z.contiguous(), k, torch.zeros_like(grad_z[0]), True, ctx.use_cpp)
        return adj, None, k * adj[0], None


def exp_filter(p: torch.Tensor, k: torch.Tensor, z0: torch.Tensor | None = None,
               use_cpp: bool = True) -> torch.Tensor:
    """z_t = k * z_{t-1} + p_t along axis 0 of p ([T, ...]); k broadcasts over p[t] and is a
    constant (no gradient: the trace time constants are fixed). Returns z [T, ...]. use_cpp:
    False forces the TorchScript loop (else the C++ one runs on CPU float32/float64 when
    built, the Triton one on CUDA when triton imports)."""
    if k.requires_grad:
        raise ValueError("exp_filter treats k as a constant; it must not require grad")
    if z0 is None:
        z0 = torch.zeros_like(p[0])
    return _ExpFilter.apply(p.contiguous(), k, z0, use_cpp)


class _MemoryScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, drive: torch.Tensor, m0: torch.Tensor, kappa: torch.Tensor,
                gain: torch.Tensor, wq: torch.Tensor, wo: torch.Tensor, bo: torch.Tensor,
                silu: bool, use_cpp: bool) -> torch.Tensor:
        ext = _extension(use_cpp, drive, m0, kappa, gain, wq, wo, bo, hidden=drive.shape[3],
                         memory=m0.shape[2])
        ctx.silu, ctx.ext = silu, ext
        if ext is not None:
            # The compiled loop keeps its pre-activations and tanh values for the backward.
            m, pre, th = ext.scan_forward(drive, m0.contiguous(), kappa.contiguous(),
                                          gain.contiguous(), wq.transpose(1, 2).contiguous(),
                                          wo.transpose(1, 2).contiguous(), bo.contiguous(),
                                          silu, any(ctx.needs_input_grad))
            ctx.save_for_backward(m0, kappa, gain, wq, wo, m, pre, th)
            return m
        k3, g3, b3 = kappa.unsqueeze(1), gain.unsqueeze(1), bo.unsqueeze(1)
        m = _run("_scan_loop", drive, m0, k3, g3, wq.transpose(1, 2).contiguous(),
                 wo.transpose(1, 2).contiguous(), b3, silu)
        ctx.save_for_backward(drive, m0, kappa, gain, wq, wo, bo, m)
        return m

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_m: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        if ctx.ext is not None:
            return _MemoryScan._ext_backward(ctx, grad_m)
        drive, m0, kappa, gain, wq, wo, bo, m = ctx.saved_tensors
        k3, g3 = kappa.unsqueeze(1), gain.unsqueeze(1)
        # Everything but the adjoint recursion is recomputed for all steps at once.
        q = k3 * torch.cat([m0.unsqueeze(0), m[:-1]])                 # [T, U, B, D]
        pre = drive + torch.einsum("tubd,uhd->tubh", q, wq)
        if ctx.silu:
            sig = torch.sigmoid(pre)
            h, act_grad = pre * sig, sig * (1 + pre * (1 - sig))
        else:
            h, act_grad = torch.relu(pre), (pre > 0).to(pre.dtype)
        th = torch.tanh(torch.einsum("tubh,udh->tubd", h, wo) + bo.unsqueeze(1))
        tanh_grad = g3 * (1 - th * th)
        adj_m, adj_pre, grad_m0 = _run("_scan_backward_loop", grad_m.contiguous(), tanh_grad,
                                       act_grad, k3, wq.contiguous(), wo.contiguous())
        adj_z = adj_m * tanh_grad
        adj_q = torch.einsum("tubh,uhd->tubd", adj_pre, wq)
        m_prev = torch.cat([m0.unsqueeze(0), m[:-1]])
        return (adj_pre, grad_m0,
                ((adj_m + adj_q) * m_prev).sum((0, 2)),
                (adj_m * th).sum((0, 2)),
                torch.einsum("tubh,tubd->uhd", adj_pre, q),
                torch.einsum("tubd,tubh->udh", adj_z, h),
                adj_z.sum((0, 2)),
                None, None)

    @staticmethod
    def _ext_backward(ctx: Any, grad_m: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        """Backward from the compiled adjoint loop (C++ or Triton); the weight gradients are
        batched reductions over all steps."""
        m0, kappa, gain, wq, wo, m, pre, th = ctx.saved_tensors
        ext = ctx.ext
        if pre.dtype != m0.dtype:  # Triton computes in float32 whatever autocast fed it
            m0, kappa, gain, wq, wo = (t.to(pre.dtype) for t in (m0, kappa, gain, wq, wo))
        adj_m, adj_z, adj_pre, adj_mq, grad_m0 = ext.scan_backward(
            grad_m.contiguous(), pre, th, kappa.contiguous(), gain.contiguous(),
            wq.contiguous(), wo.contiguous(), ctx.silu)
        need = ctx.needs_input_grad
        m_prev = torch.cat([m0.unsqueeze(0), m[:-1]]) if need[2] or need[4] else None
        grads: list[torch.Tensor | None] = [adj_pre, grad_m0, None, None, None, None, None,
                                            None, None]
        if need[2]:
            grads[2] = (adj_mq * m_prev).sum((0, 2))
        if need[3]:
            grads[3] = (adj_m * th).sum((0, 2))
        if need[4]:
            grads[4] = torch.einsum("tubh,tubd->uhd", adj_pre, kappa.unsqueeze(1) * m_prev)
        if need[5]:
            h = torch.nn.functional.silu(pre) if ctx.silu else torch.relu(pre)
            grads[5] = torch.einsum("tubd,tubh->udh", adj_z, h)
        if need[6]:
            grads[6] = adj_z.sum((0, 2))
        return tuple(grads)


def memory_scan(drive: torch.Tensor, m0: torch.Tensor, kappa: torch.Tensor, gain: torch.Tensor,
                wq: torch.Tensor, wo: torch.Tensor, bo: torch.Tensor,
                activation: str = "relu", use_cpp: bool = True) -> torch.Tensor:
    """The ELM memory recurrence for every step, fused, differentiable in every argument.

    drive [T, U, B, H] (input half of the MLP's first layer plus its bias), m0 [U, B, D],
    kappa, gain, bo [U, D], wq [U, H, D] (memory half of the first layer), wo [U, D, H].
    m_t = kappa m_{t-1} + gain tanh(wo act(drive_t + wq (kappa m_{t-1})) + bo); returns m
    [T, U, B, D]. use_cpp: False forces the TorchScript loop (else the C++ one runs on CPU
    float32/float64 when built, the Triton one on CUDA when triton imports).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if drive.shape[0] == 0:
        return drive.new_zeros((0, *m0.shape))
    return _MemoryScan.apply(drive.contiguous(), m0, kappa, gain, wq, wo, bo,
                             activation == "silu", use_cpp)


def memory_coefficients(tau_m: torch.Tensor, lam: float, dt: float,
                        update: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(kappa_m, g): the memory decay and the gain on delta_m = tanh*(...).

    v1: m_t = kappa m + lambda (1 - kappa) delta;  v2: m_t = kappa m + (1 - kappa_lambda) delta
    with kappa_lambda = exp(-dt lambda / tau_m).
    """
    kappa = torch.exp(-dt / tau_m)
    if update == "v1":
        gain = lam * (1 - kappa)
    elif update == "v2":
        gain = 1 - torch.exp(-dt * lam / tau_m)
    else:
        raise ValueError(f"update must be 'v1' or 'v2', got {update!r}")
    return kappa, gain


class ElmTensors(NamedTuple):
    """An ELM's effective tensors, as the step-by-step definition uses them.

    sign [N] (+1 exc, -1 inh); index [S] / mask [S] (input feeding each synapse slot; None:
    slot i is input i); w_s, kappa_s [S]; num_branches (slots are summed in consecutive groups
    of S / num_branches); w_in [H, num_branches + D], b_in [H]; w_hid [D, H], b_hid [D];
    kappa_m, gain [D] (see memory_coefficients); w_y [2, D], b_y [2].
    """

    sign: torch.Tensor
    index: torch.Tensor | None
    mask: torch.Tensor | None
    w_s: torch.Tensor
    kappa_s: torch.Tensor
    num_branches: int
    w_in: torch.Tensor
    b_in: torch.Tensor
    w_hid: torch.Tensor
    b_hid: torch.Tensor
    kappa_m: torch.Tensor
    gain: torch.Tensor
    w_y: torch.Tensor
    b_y: torch.Tensor
    activation: str


def step_by_step(p: ElmTensors, x: torch.Tensor) -> torch.Tensor:
    """The ELM as defined, one step at a time: x binary [B, T, N] -> y [B, T, 2]."""
    batch = x.shape[0]
    s = x.new_zeros(batch, p.w_s.shape[0])
    m = x.new_zeros(batch, p.kappa_m.shape[0])
    act = torch.nn.functional.silu if p.activation == "silu" else torch.relu
    ys = []
    for t in range(x.shape[1]):
        signed = x[:, t] * p.sign
        routed = signed if p.index is None else signed[:, p.index] * p.mask
        s = p.kappa_s * s + p.w_s * routed
        branch = s.view(batch, p.num_branches, -1).sum(-1)
        hidden = act(torch.cat([branch, p.kappa_m * m], -1) @ p.w_in.T + p.b_in)
        delta = TANH_GAIN * torch.tanh(TANH_SLOPE * (hidden @ p.w_hid.T + p.b_hid))
        m = p.kappa_m * m + p.gain * delta
        ys.append(m @ p.w_y.T + p.b_y)
    return torch.stack(ys, 1)
