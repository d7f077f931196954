"""The Triton kernels behind `triton_scan` and `triton_network` (imported only when the
fused path runs).

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


@triton.jit
def net_tile(kappa, w_u, wq, wo, out, first, units,
             D: tl.constexpr, H: tl.constexpr, DP: tl.constexpr, HP: tl.constexpr,
             UT: tl.constexpr):
    """What both network kernels load for a tile of units [first, first + UT): the index and
    mask tiles, kappa, out [UT, DP], w_u [UT, HP], and W_q[n, h, d], W_o[n, d, h] both as
    [UT, HP, DP] tiles (padding zero). Loaded anew per tile and step: only a tile's weights
    fit in registers, and they stay in L2 between steps."""
    n = first + tl.arange(0, UT)
    d = tl.arange(0, DP)
    h = tl.arange(0, HP)
    n_ok = n < units
    nd = n_ok[:, None] & (d[None, :] < D)
    nh = n_ok[:, None] & (h[None, :] < H)
    n3, h3, d3 = n[:, None, None], h[None, :, None], d[None, None, :]
    nhd = n_ok[:, None, None] & (h3 < H) & (d3 < D)
    w_q = tl.load(wq + (n3 * H + h3) * D + d3, mask=nhd, other=0.0)
    w_o = tl.load(wo + (n3 * D + d3) * H + h3, mask=nhd, other=0.0)
    kap = tl.load(kappa + n[:, None] * D + d[None, :], mask=nd, other=0.0)
    a_out = tl.load(out + n[:, None] * D + d[None, :], mask=nd, other=0.0)
    wu = tl.load(w_u + n[:, None] * H + h[None, :], mask=nh, other=0.0)
    return n, d, h, n_ok, nd, nh, w_q, w_o, kap, a_out, wu

@triton.jit
def net_fwd(ext, kappa, gain, w_u, b_in, wq, wo, bo, out, rec_src, w_rec,
            o_out, u_out, m_out, steps, units, batch,
            D: tl.constexpr, H: tl.constexpr, K: tl.constexpr, DP: tl.constexpr,
            HP: tl.constexpr, KP: tl.constexpr, UT: tl.constexpr, SILU: tl.constexpr):
    # One program per batch row: unit i at step t reads o[:, t - 1] of other units, so all
    # units of a row advance together; the state lives in o_out / m_out, not in registers.
    b = tl.program_id(0)
    k = tl.arange(0, KP)
    for t in range(steps):
        for first in range(0, units, UT):
            n, d, h, n_ok, nd, nh, w_q, w_o, kap, a_out, wu = net_tile(
                kappa, w_u, wq, wo, out, first, units, D, H, DP, HP, UT)
            g = tl.load(gain + n[:, None] * D + d[None, :], mask=nd, other=0.0)
            b_o = tl.load(bo + n[:, None] * D + d[None, :], mask=nd, other=0.0)
            bi = tl.load(b_in + n[:, None] * H + h[None, :], mask=nh, other=0.0)
            row = (n.to(tl.int64) * steps + t) * batch + b  # [N, T, B] flattened
            u = tl.load(ext + (t * units + n).to(tl.int64) * batch + b, mask=n_ok, other=0.0)
            if K > 0:
                nk = n_ok[:, None] & (k[None, :] < K)
                src = tl.load(rec_src + n[:, None] * K + k[None, :], mask=nk, other=0)
                v = tl.load(w_rec + n[:, None] * K + k[None, :], mask=nk, other=0.0)
                prev = tl.load(o_out + (src.to(tl.int64) * steps + t - 1) * batch + b,
                               mask=nk & (t > 0), other=0.0)
                u += tl.sum(prev * v, axis=1)
            m_prev = tl.load(m_out + (row - batch)[:, None] * D + d[None, :],
                             mask=nd & (t > 0), other=0.0)
            q = kap * m_prev
            pre = bi + u[:, None] * wu + tl.sum(q[:, None, :] * w_q, axis=2)
            if SILU:
                act = pre * tl.sigmoid(pre)
            else:
                act = tl.maximum(pre, 0.0)
            th = tanh(tl.sum(act[:, :, None] * w_o, axis=1) + b_o)
            m = q + g * th
            tl.store(m_out + row[:, None] * D + d[None, :], m, mask=nd)
            tl.store(o_out + row, tl.sum(m * a_out, axis=1), mask=n_ok)
            tl.store(u_out + row, u, mask=n_ok)
        tl.debug_barrier()  # step t's outputs, written by every thread, before t + 1 reads

@triton.jit
def net_bwd(grad_o, tanh_grad, act_grad, kappa, out, w_u, wq, wo, readers, w_rec,
            go_out, gm_out, gpre_out, gu_out, steps, units, batch,
            D: tl.constexpr, H: tl.constexpr, K: tl.constexpr, R: tl.constexpr,
            DP: tl.constexpr, HP: tl.constexpr, RP: tl.constexpr, UT: tl.constexpr):
    # Reverse time, one program per batch row as the forward. The adjoint carried into step
    # t comes from step t + 1's stored adjoints: unit j's recurrent carry gathers, through
    # `readers` (the flat i K + k of every synapse reading j, -1 padded), w_rec[i, k] gu_i;
    # a gather, not atomics, so the sums are deterministic.
    b = tl.program_id(0)
    r = tl.arange(0, RP)
    for i in range(steps):
        t = steps - 1 - i
        later = i > 0  # t + 1 < steps, on i: the interpreter mishandles a tensor bool mask
        for first in range(0, units, UT):
            n, d, h, n_ok, nd, nh, w_q, w_o, kap, a_out, wu = net_tile(
                kappa, w_u, wq, wo, out, first, units, D, H, DP, HP, UT)
            row = (n.to(tl.int64) * steps + t) * batch + b
            go = tl.load(grad_o + row, mask=n_ok, other=0.0)
            if K > 0:
                nr = n_ok[:, None] & (r[None, :] < R)
                syn = tl.load(readers + n[:, None] * R + r[None, :], mask=nr, other=-1)
                ok = nr & (syn >= 0)
                v = tl.load(w_rec + syn, mask=ok, other=0.0)
                gu_next = tl.load(gu_out + ((t + 1) * units + syn // K).to(tl.int64) * batch + b,
                                  mask=ok & later, other=0.0)
                go += tl.sum(v * gu_next, axis=1)
            gm_next = tl.load(gm_out + (row + batch)[:, None] * D + d[None, :],
                              mask=nd & later, other=0.0)
            gp_next = tl.load(gpre_out + (row + batch)[:, None] * H + h[None, :],
                              mask=nh & later, other=0.0)
            gm = kap * (gm_next + tl.sum(gp_next[:, :, None] * w_q, axis=1)) \
                + go[:, None] * a_out
            gz = gm * tl.load(tanh_grad + row[:, None] * D + d[None, :], mask=nd, other=0.0)
            gpre = tl.sum(gz[:, None, :] * w_o, axis=2) \
                * tl.load(act_grad + row[:, None] * H + h[None, :], mask=nh, other=0.0)
            tl.store(go_out + row, go, mask=n_ok)
            tl.store(gm_out + row[:, None] * D + d[None, :], gm, mask=nd)
            tl.store(gpre_out + row[:, None] * H + h[None, :], gpre, mask=nh)
            tl.store(gu_out + (t * units + n).to(tl.int64) * batch + b,
                     tl.sum(gpre * wu, axis=1), mask=n_ok)
        tl.debug_barrier()  # step t's adjoints before t - 1 reads them
