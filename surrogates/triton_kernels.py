"""The Triton kernels behind `triton_scan` (imported only when the fused path runs).

Kept apart so that importing `surrogates` never imports triton: this module needs it at
import time (jit functions resolve the helpers they call among the module's globals).
"""

import triton
import triton.language as tl


@triton.jit
def tanh(z):
    # tanh from exp(-2|z|): no overflow, full relative precision (tl has no tanh of its
    # own in every backend, the interpreter's included).
    e = tl.exp(-2.0 * tl.abs(z))
    t = (1.0 - e) / (1.0 + e)
    return tl.where(z < 0, -t, t)

@triton.jit
def unit_tiles(wq, wo, kappa, gain, batch, wq_sh, wq_sd, wo_sd, wo_sh,
               D: tl.constexpr, H: tl.constexpr, DP: tl.constexpr, HP: tl.constexpr,
               BB: tl.constexpr):
    """What both scan kernels set up for their (unit, block of batch rows): the index and
    mask tiles, the unit's W_q[h, d] and W_o[d, h] (whatever the caller's strides), kappa,
    gain, and the rows' offsets into [U, B]."""
    u = tl.program_id(0)
    rows = tl.program_id(1) * BB + tl.arange(0, BB)
    d = tl.arange(0, DP)
    h = tl.arange(0, HP)
    row_ok = rows < batch
    md = row_ok[:, None] & (d[None, :] < D)
    mh = row_ok[:, None] & (h[None, :] < H)
    w_q = tl.load(wq + u * H * D + h[:, None] * wq_sh + d[None, :] * wq_sd,
                  mask=(h[:, None] < H) & (d[None, :] < D), other=0.0)
    w_o = tl.load(wo + u * H * D + d[:, None] * wo_sd + h[None, :] * wo_sh,
                  mask=(d[:, None] < D) & (h[None, :] < H), other=0.0)
    k = tl.load(kappa + u * D + d, mask=d < D, other=0.0)
    g = tl.load(gain + u * D + d, mask=d < D, other=0.0)
    state_row = (u * batch + rows).to(tl.int64)
    return u, d, h, md, mh, w_q, w_o, k, g, state_row

@triton.jit
def scan_fwd(drive, m0, kappa, gain, wq, wo, bo, m_out, pre_out, th_out,
             steps, units, batch,
             wq_sh, wq_sd, wo_sd, wo_sh,
             D: tl.constexpr, H: tl.constexpr, DP: tl.constexpr, HP: tl.constexpr,
             BB: tl.constexpr, SILU: tl.constexpr, SAVE: tl.constexpr):
    u, d, h, md, mh, w_q, w_o, k, g, state_row = unit_tiles(
        wq, wo, kappa, gain, batch, wq_sh, wq_sd, wo_sd, wo_sh, D, H, DP, HP, BB)
    b = tl.load(bo + u * D + d, mask=d < D, other=0.0)
    m = tl.load(m0 + state_row[:, None] * D + d[None, :], mask=md, other=0.0)
    for t in range(steps):
        row = t * units * batch + state_row  # int64: [T, U, B] flattened
        q = k[None, :] * m
        pre = tl.load(drive + row[:, None] * H + h[None, :], mask=mh, other=0.0)
        pre += tl.sum(q[:, None, :] * w_q[None, :, :], axis=2)
        if SILU:
            act = pre * tl.sigmoid(pre)
        else:
            act = tl.maximum(pre, 0.0)
        th = tanh(tl.sum(act[:, None, :] * w_o[None, :, :], axis=2) + b[None, :])
        m = q + g[None, :] * th
        tl.store(m_out + row[:, None] * D + d[None, :], m, mask=md)
        if SAVE:
            tl.store(pre_out + row[:, None] * H + h[None, :], pre, mask=mh)
            tl.store(th_out + row[:, None] * D + d[None, :], th, mask=md)

@triton.jit
def scan_bwd(grad_m, pre_in, th_in, kappa, gain, wq, wo,
             adj_m, adj_z, adj_pre, adj_mq, grad_m0,
             steps, units, batch,
             D: tl.constexpr, H: tl.constexpr, DP: tl.constexpr, HP: tl.constexpr,
             BB: tl.constexpr, SILU: tl.constexpr):
    # wq [U, H, D] and wo [U, D, H], contiguous.
    u, d, h, md, mh, w_q, w_o, k, g, state_row = unit_tiles(
        wq, wo, kappa, gain, batch, D, 1, H, 1, D, H, DP, HP, BB)
    carry = tl.zeros((BB, DP), dtype=tl.float32)
    for i in range(steps):
        row = (steps - 1 - i) * units * batch + state_row
        a_m = tl.load(grad_m + row[:, None] * D + d[None, :], mask=md, other=0.0) + carry
        th = tl.load(th_in + row[:, None] * D + d[None, :], mask=md, other=0.0)
        a_z = a_m * g[None, :] * (1.0 - th * th)
        pre = tl.load(pre_in + row[:, None] * H + h[None, :], mask=mh, other=0.0)
        if SILU:
            sig = tl.sigmoid(pre)
            act_grad = sig * (1.0 + pre * (1.0 - sig))
        else:
            act_grad = tl.where(pre > 0, 1.0, 0.0)
        a_pre = tl.sum(a_z[:, :, None] * w_o[None, :, :], axis=1) * act_grad
        a_mq = a_m + tl.sum(a_pre[:, :, None] * w_q[None, :, :], axis=1)
        carry = k[None, :] * a_mq
        tl.store(adj_m + row[:, None] * D + d[None, :], a_m, mask=md)
        tl.store(adj_z + row[:, None] * D + d[None, :], a_z, mask=md)
        tl.store(adj_mq + row[:, None] * D + d[None, :], a_mq, mask=md)
        tl.store(adj_pre + row[:, None] * H + h[None, :], a_pre, mask=mh)
    tl.store(grad_m0 + state_row[:, None] * D + d[None, :], carry, mask=md)

@triton.jit
def filt(p, k, z0, z_out, steps, channels, BLOCK: tl.constexpr, REVERSE: tl.constexpr):
    c = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    ok = c < channels
    kc = tl.load(k + c, mask=ok, other=0.0)
    z = tl.load(z0 + c, mask=ok, other=0.0)
    for i in range(steps):
        if REVERSE:
            t = steps - 1 - i
        else:
            t = i
        at = t.to(tl.int64) * channels + c
        z = kc * z + tl.load(p + at, mask=ok, other=0.0)
        tl.store(z_out + at, z, mask=ok)
