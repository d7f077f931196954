"""Fused GPU loops for the ELM recurrences (Triton kernels), used by `elm_recurrence` and, for
the ELM Network's coupled loop, by `elm_network` (launchers in `triton_network`).

On a GPU the TorchScript loops launch a handful of tiny kernels per time step, so a 500 ms
window costs thousands of launches whatever the model size. Each kernel here instead runs a
whole window for its share of the sequences, with the state in registers: one program per
(unit, block of batch rows), a loop over time inside it, and the per-step matmuls W_q (D -> H)
and W_o (H -> D) done as broadcast products summed in registers, on tiles padded to powers of
two (masked loads leave the padding zero, which the recurrence keeps zero). tl.dot would need
16-wide tiles and rounds fp32 through TF32; the broadcast sum is exact fp32 and these matrices
are tiny (D ~ 20, H = 2 D).

The interface mirrors the C++ extension's (`scan_forward`, `scan_backward`, `exp_filter`, same
arguments and results), so `elm_recurrence` treats either as its "extension": the forward
keeps the pre-activations and tanh values, the backward is the reverse-time adjoint and the
weight gradients are batched reductions over all steps outside the kernel.

Which path runs: NEUROSURROGATE_FUSED_SCAN (or `MODE`, read at call time) = "auto" (default:
Triton for float32/bfloat16/float16 CUDA tensors when triton imports; it computes in
float32), "off" (never Triton: TorchScript on a GPU, the C++ loops on the CPU, the baseline of
benchmarks/gpu_check.py) or "triton" (Triton wherever asked, CPU tensors included; these need
TRITON_INTERPRET=1 set before triton is first imported, which the CPU tests do). float64
always stays on the exact loops. triton is an optional dependency (`pip install -e '.[gpu]'`),
imported on first use only.
"""

from __future__ import annotations

import functools
import logging
import os
from types import ModuleType, SimpleNamespace
from typing import Any

import torch

log = logging.getLogger(__name__)
MODES = ("auto", "off", "triton")
MODE = os.environ.get("NEUROSURROGATE_FUSED_SCAN", "auto") or "auto"
MAX_TILE = 16384  # HP * DP above which one batch row's product tile would spill registers
DTYPES = (torch.float32, torch.bfloat16, torch.float16)


@functools.cache
def _triton() -> Any:
    """The triton module, or None when it is not installed or does not import."""
    try:
        import triton
        import triton.language  # noqa: F401
    except Exception as err:  # not installed, or no usable backend
        log.info("triton unavailable, ELM recurrences keep their TorchScript loops (%s)", err)
        return None
    return triton


def available() -> bool:
    """Whether triton imports (the fused path can run at all)."""
    return _triton() is not None


def mode() -> str:
    """The active MODE, checked."""
    if MODE not in MODES:
        raise ValueError(f"NEUROSURROGATE_FUSED_SCAN / triton_scan.MODE must be one of {MODES}, "
                         f"got {MODE!r}")
    return MODE


def _pow2(n: int) -> int:
    return 1 << max(0, (max(1, n) - 1).bit_length())


def usable(*tensors: torch.Tensor, hidden: int = 0, memory: int = 0) -> SimpleNamespace | None:
    """The fused loops (an object with scan_forward, scan_backward, exp_filter and the ELM
    Network's network_forward, network_backward) when MODE and the tensors allow them, else
    None: in "auto", every tensor on CUDA; always, a float dtype the kernels take and the MLP
    tile (hidden x memory, padded) small enough for registers."""
    how = mode()
    if how == "off":
        return None
    if how == "auto" and not all(t.device.type == "cuda" for t in tensors):
        return None
    if not all(t.dtype in DTYPES for t in tensors):
        return None
    if _pow2(hidden) * _pow2(memory) > MAX_TILE:
        return None
    return _kernels()


@functools.cache
def _kernels() -> SimpleNamespace | None:
    """Compile-on-demand kernels and their launchers, or None without triton."""
    triton = _triton()
    if triton is None:
        return None
    from surrogates import triton_kernels as kernels
    from surrogates import triton_network as network

    return SimpleNamespace(
        scan_forward=functools.partial(_scan_forward, kernels),
        scan_backward=functools.partial(_scan_backward, kernels),
        exp_filter=functools.partial(_exp_filter, kernels),
        network_forward=functools.partial(network.forward, kernels),
        network_backward=functools.partial(network.backward, kernels))


def _f32(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """float32 contiguous copies where needed: the kernels compute and store in float32
    (bf16 autocast feeds them bfloat16; a recurrence over 500 steps wants the precision)."""
    return [t.to(torch.float32).contiguous() for t in tensors]


def _block_rows(batch: int, hp: int, dp: int) -> int:
    """Batch rows per program: enough to fill about 4k product elements, at most the batch;
    fewer rows per program means more programs (parallel sequences) in flight."""
    return max(1, min(_pow2(batch), 4096 // (hp * dp)))


def _warps(bb: int, hp: int, dp: int) -> int:
    return 8 if bb * hp * dp > 4096 else 4


def _scan_forward(kern: ModuleType, drive: torch.Tensor, m0: torch.Tensor,
                  kappa: torch.Tensor, gain: torch.Tensor, wq_t: torch.Tensor,
                  wo_t: torch.Tensor, bo: torch.Tensor, silu: bool,
                  save: bool) -> list[torch.Tensor]:
    """drive [T, U, B, H], m0 [U, B, D], kappa/gain/bo [U, D], wq_t [U, D, H], wo_t [U, H, D]
    (the C++ extension's transposed layouts). Returns m [T, U, B, D] and, with save, the
    pre-activations [T, U, B, H] and tanh values [T, U, B, D] (else empty tensors)."""
    drive, m0, kappa, gain, wq_t, wo_t, bo = _f32(drive, m0, kappa, gain, wq_t, wo_t, bo)
    steps, units, batch, hidden = drive.shape
    mem = m0.shape[2]
    m = drive.new_empty(steps, units, batch, mem)
    pre = drive.new_empty(drive.shape) if save else drive.new_empty(0)
    th = drive.new_empty(m.shape) if save else drive.new_empty(0)
    if steps == 0 or batch == 0 or units == 0:
        return [m, pre, th]
    dp, hp = _pow2(mem), _pow2(hidden)
    bb = _block_rows(batch, hp, dp)
    grid = (units, -(-batch // bb))
    # wq_t[u, d, h]: strides (h: 1, d: H); wo_t[u, h, d]: strides (d: 1, h: D).
    kern.scan_fwd[grid](drive, m0, kappa, gain, wq_t, wo_t, bo, m, pre if save else m,
                        th if save else m, steps, units, batch, 1, hidden, 1, mem,
                        D=mem, H=hidden, DP=dp, HP=hp, BB=bb, SILU=silu, SAVE=save,
                        num_warps=_warps(bb, hp, dp))
    return [m, pre, th]


def _scan_backward(kern: ModuleType, grad_m: torch.Tensor, pre: torch.Tensor,
                   th: torch.Tensor, kappa: torch.Tensor, gain: torch.Tensor,
                   wq: torch.Tensor, wo: torch.Tensor, silu: bool) -> list[torch.Tensor]:
    """Reverse-time adjoint of `_scan_forward` (wq [U, H, D], wo [U, D, H]). Returns adj_m,
    adj_z, adj_pre, adj_mq (time-major) and dL/dm0 [U, B, D], as the C++ scan_backward."""
    grad_m, pre, th, kappa, gain, wq, wo = _f32(grad_m, pre, th, kappa, gain, wq, wo)
    steps, units, batch, mem = grad_m.shape
    hidden = pre.shape[3]
    adj_m, adj_z, adj_mq = (torch.empty_like(grad_m) for _ in range(3))
    adj_pre = torch.empty_like(pre)
    grad_m0 = grad_m.new_zeros(units, batch, mem)
    if steps == 0 or batch == 0 or units == 0:
        return [adj_m, adj_z, adj_pre, adj_mq, grad_m0]
    dp, hp = _pow2(mem), _pow2(hidden)
    bb = _block_rows(batch, hp, dp)
    grid = (units, -(-batch // bb))
    kern.scan_bwd[grid](grad_m, pre, th, kappa, gain, wq, wo, adj_m, adj_z, adj_pre, adj_mq,
                        grad_m0, steps, units, batch, D=mem, H=hidden, DP=dp, HP=hp, BB=bb,
                        SILU=silu, num_warps=_warps(bb, hp, dp))
    return [adj_m, adj_z, adj_pre, adj_mq, grad_m0]


def _exp_filter(kern: ModuleType, p: torch.Tensor, k: torch.Tensor, z0: torch.Tensor,
                reverse: bool) -> torch.Tensor:
    """z_t = k z_{t-1} + p_t over axis 0 of p [T, ...] (reverse: from the end); k and z0
    hold one value per channel (p[0].numel()). Float32 out."""
    dtype = p.dtype
    p, k, z0 = _f32(p, k, z0)
    steps = p.shape[0]
    channels = p[0].numel() if steps else 0
    z = torch.empty_like(p)
    if steps == 0 or channels == 0:
        return z
    block = min(1024, _pow2(channels))
    kern.filt[(-(-channels // block),)](p, k, z0, z, steps, channels, BLOCK=block,
                                        REVERSE=reverse, num_warps=4)
    return z if dtype == torch.float32 else z.to(dtype)
