"""Fused GPU loops for the ELM Network's coupled recurrence (`elm_network._NetworkScan`).

The same trade as `triton_scan` (one launch per window instead of a few kernels per step),
but unit i at step t reads the outputs o_{t-1} of other units, so the units of one batch row
cannot run in separate programs: without a grid-wide barrier, a program can only wait for
its own threads. So one program runs one batch row, all units, over all steps: per step it
goes over tiles of units (each tile's weights loaded anew; only a tile fits in registers,
and the whole layer's weights stay in L2), writes o, u and m of step t straight to the output
tensors, and passes a barrier before step t + 1 reads o[:, t] back. The per-unit matmuls are
broadcast products summed in registers, exact fp32 like `triton_scan`'s (no tl.dot, TF32).

What that costs: only `batch` programs are in flight (a training batch of 8 is 8 programs,
a few SMs of a GPU), each stepping through N / tile unit tiles per step, so a large layer at
a small batch leaves most of the GPU idle. The speed against the TorchScript loops is not yet
measured on a GPU (benchmarks/gpu_check.py, part elm_network, measures it); after that
measurement the "auto" rule may need a size threshold.

The backward is the reverse-time adjoint of `elm_network._backward_loop`, from the same
precomputed tanh_grad and act_grad; the recurrent adjoint into unit j gathers the adjoints of
the units reading j through a padded reverse-connectivity table (`readers`), deterministic,
no atomics; dL/dw_rec is one matmul over all steps outside the kernel. The dispatch is
`triton_scan.usable`'s (it hands out these launchers with the scan ones).
"""

from __future__ import annotations

from types import ModuleType

import torch

from surrogates.triton_scan import _f32, _pow2, _warps

TILE = 4096  # elements of a unit tile's widest product, as triton_scan's per-program tiles


def unit_tile(units: int, hp: int, dp: int, *widths: int) -> int:
    """Units per tile: the [units, HP, DP] products (and [units, width] gathers) within
    TILE elements, at least one unit, at most the layer (powers of two throughout)."""
    widest = max(hp * dp, *widths)
    return max(1, min(_pow2(units), TILE // widest))


def readers(rec_src: torch.Tensor, units: int) -> torch.Tensor:
    """The reverse connectivity [N, R] int32: row j holds the flat indices i K + k of every
    recurrent synapse reading unit j (rec_src[i, k] = j), ascending, padded with -1 to the
    most readers any unit has (R >= 1)."""
    flat = rec_src.reshape(-1)
    order = torch.argsort(flat, stable=True)  # synapses grouped by the unit they read
    read = flat[order]
    counts = torch.bincount(flat, minlength=units)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(flat.numel(), device=flat.device) - starts[read]
    table = torch.full((units, max(1, int(counts.max()))), -1, dtype=torch.int32,
                       device=flat.device)
    table[read, rank] = order.to(torch.int32)
    return table


def forward(kern: ModuleType, ext: torch.Tensor, kappa: torch.Tensor, gain: torch.Tensor,
            w_u: torch.Tensor, b_in: torch.Tensor, wq: torch.Tensor, wo: torch.Tensor,
            bo: torch.Tensor, out: torch.Tensor, rec_src: torch.Tensor, w_rec: torch.Tensor,
            silu: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`_forward_loop` fused: ext [T, N, B]; kappa, gain, bo, out [N, D]; w_u, b_in [N, H];
    wq [N, H, D]; wo [N, D, H] (tanh* slope folded in); rec_src [N, K] unit ids; w_rec
    [N, K]. Returns o [N, T, B], u [N, T, B], m [N, T, B, D] in ext's dtype (computed in
    float32)."""
    dtype = ext.dtype
    ext, kappa, gain, w_u, b_in, wq, wo, bo, out, w_rec = _f32(
        ext, kappa, gain, w_u, b_in, wq, wo, bo, out, w_rec)
    steps, units, batch = ext.shape
    mem, hidden, fan = kappa.shape[1], w_u.shape[1], rec_src.shape[1]
    o, u = (ext.new_empty(units, steps, batch) for _ in range(2))
    m = ext.new_empty(units, steps, batch, mem)
    if steps and units and batch:
        dp, hp, kp = _pow2(mem), _pow2(hidden), _pow2(fan)
        ut = unit_tile(units, hp, dp, kp)
        # With K = 0 the kernel never reads the synapse tensors (K is a constexpr).
        src = rec_src.to(torch.int32).contiguous() if fan else o
        kern.net_fwd[(batch,)](ext, kappa, gain, w_u, b_in, wq, wo, bo, out, src,
                               w_rec if fan else o, o, u, m, steps, units, batch,
                               D=mem, H=hidden, K=fan, DP=dp, HP=hp, KP=kp, UT=ut,
                               SILU=silu, num_warps=_warps(ut, hp, dp))
    return o.to(dtype), u.to(dtype), m.to(dtype)


def backward(kern: ModuleType, grad_o: torch.Tensor, tanh_grad: torch.Tensor,
             act_grad: torch.Tensor, o_prev: torch.Tensor, kappa: torch.Tensor,
             out: torch.Tensor, w_u: torch.Tensor, wq: torch.Tensor, wo: torch.Tensor,
             rec_src: torch.Tensor, w_rec: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """`_backward_loop` fused: grad_o, o_prev [N, T, B]; tanh_grad [N, T, B, D]; act_grad
    [N, T, B, H]; kappa, out [N, D]; w_u [N, H]; wq [N, H, D]; wo [N, D, H]; rec_src, w_rec
    [N, K]. Returns the adjoints of o [N, T, B], m [N, T, B, D], the pre-activations
    [N, T, B, H], the drive u time-major [T, N, B], and dL/dw_rec [N, K], in grad_o's
    dtype."""
    dtype = grad_o.dtype
    grad_o, tanh_grad, act_grad, o_prev, kappa, out, w_u, wq, wo, w_rec = _f32(
        grad_o, tanh_grad, act_grad, o_prev, kappa, out, w_u, wq, wo, w_rec)
    units, steps, batch = grad_o.shape
    mem, hidden, fan = kappa.shape[1], w_u.shape[1], rec_src.shape[1]
    go, gm, gpre = torch.empty_like(grad_o), torch.empty_like(tanh_grad), torch.empty_like(
        act_grad)
    gu = grad_o.new_empty(steps, units, batch)
    if steps and units and batch:
        table = readers(rec_src, units) if fan else go
        width = table.shape[1] if fan else 0
        dp, hp, rp = _pow2(mem), _pow2(hidden), _pow2(width)
        ut = unit_tile(units, hp, dp, rp)
        kern.net_bwd[(batch,)](grad_o, tanh_grad, act_grad, kappa, out, w_u, wq, wo, table,
                               w_rec if fan else go, go, gm, gpre, gu, steps, units, batch,
                               D=mem, H=hidden, K=fan, R=width, DP=dp, HP=hp, RP=rp, UT=ut,
                               num_warps=_warps(ut, hp, dp))
    return (go.to(dtype), gm.to(dtype), gpre.to(dtype), gu.to(dtype),
            rec_weight_grad(gu, o_prev, rec_src).to(dtype))


def rec_weight_grad(gu: torch.Tensor, o_prev: torch.Tensor,
                    rec_src: torch.Tensor) -> torch.Tensor:
    """dL/dw_rec[i, k] = sum over t, b of o_prev[rec_src[i, k]] gu_i, for all steps at once:
    one [N, TB] x [TB, N] matmul (every unit pair), then the pairs that are synapses. The
    gather o_prev[rec_src] would hold N K T B values; the pair matrix holds N^2."""
    units, fan = rec_src.shape
    if fan == 0 or gu.numel() == 0:
        return gu.new_zeros(units, fan)
    drive = gu.transpose(0, 1).reshape(units, -1)  # [N, T B], as o_prev's rows
    pairs = drive @ o_prev.reshape(units, -1).T
    return pairs.gather(1, rec_src)
