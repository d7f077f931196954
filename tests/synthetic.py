"""Synthetic data sets with NeuronIO-like shape and statistics, made without NEURON.

For tests, benchmarks and demos: input spikes at realistic per-synapse rates, and a soma
that is a leaky integrator of them with a threshold, so that models have something
learnable. It is not a neuron model and makes no claim to be one.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from pipeline.datasets.contract import DatasetInfo, Segments, SimBatch, sort_input_rows


def synthetic_segments(num_segments: int, seed: int = 0) -> Segments:
    rng = np.random.default_rng([seed, 7])
    num_basal = num_segments * 262 // 639
    types = np.array(["basal"] * num_basal + ["apical"] * (num_segments - num_basal), object)
    index = np.arange(num_segments, dtype=np.int32)
    section = np.where(index < num_basal, index, index - num_basal) // 3  # per tree, 3 each
    branch = np.where(index < num_basal, section, section + (num_basal + 2) // 3)
    return Segments(type=types,
                    length_um=rng.uniform(5, 40, num_segments).astype(np.float32),
                    distance_um=np.sort(rng.uniform(10, 1200, num_segments)).astype(np.float32),
                    section=section, branch=branch.astype(np.int32))


def synthetic_batch(sim_ids: np.ndarray, num_segments: int = 639, duration_ms: int = 6000,
                    seed: int = 0, rate_hz: float = 4.0, dendrites: bool = False) -> SimBatch:
    """Simulations whose randomness depends only on (seed, sim id)."""
    sim_ids = np.asarray(sim_ids, dtype=np.int64)
    n_in = 2 * num_segments
    soma, nexus, dend, rows, out_sim, out_time = [], [], [], [], [], []
    kernel_decay = np.exp(-1.0 / 15.0)  # 15 ms membrane-like filter
    for row, sid in enumerate(sim_ids.tolist()):
        rng = np.random.default_rng([seed, sid])
        rate = rate_hz * rng.uniform(0.3, 1.7) / 1000.0  # spikes per ms per synapse
        spikes = rng.random((duration_ms, n_in)) < rate
        t, syn = np.nonzero(spikes)
        rows.append((np.full(t.size, row, np.int32), syn.astype(np.int32), t.astype(np.int32)))
        drive = spikes[:, :num_segments].sum(1) - 0.8 * spikes[:, num_segments:].sum(1)
        drive = (drive - 0.2 * rate * num_segments) / np.sqrt(1.64 * rate * num_segments)
        v = -70.0 + 2.2 * lfilter([1.0], [1.0, -kernel_decay], drive)
        fired = np.flatnonzero((v[1:] > -55.0) & (v[:-1] <= -55.0)) + 1
        fired = fired[fired < duration_ms - 1]
        v_out = np.clip(v, -90, -40)
        v_out[fired] = 20.0  # a spike peak in the 1 ms trace
        soma.append(v_out)
        nexus.append(0.5 * (v_out + 72.0) - 70.0)
        if dendrites:
            dend.append(np.repeat(v_out[None, :], num_segments, 0) + rng.normal(0, 1, (
                num_segments, duration_ms)))
        out_sim.append(np.full(fired.size, row, np.int32))
        out_time.append(fired + 0.6)
    in_sim, in_syn, in_time = sort_input_rows(*(np.concatenate(c) for c in zip(*rows,
                                                                               strict=True)))
    return SimBatch(
        info=DatasetInfo(num_exc=num_segments, num_inh=num_segments, duration_ms=duration_ms,
                         source="simulated", cell="synthetic"),
        sim_id=sim_ids, soma_voltage_mv=np.stack(soma),
        input_sim=in_sim, input_synapse=in_syn, input_time_ms=in_time,
        output_sim=np.concatenate(out_sim), output_time_ms=np.concatenate(out_time),
        nexus_voltage_mv=np.stack(nexus),
        dendritic_voltage_mv=np.stack(dend) if dendrites else None,
        segments=synthetic_segments(num_segments, seed),
    )


def synthetic_shard_root(root, parts: dict, num_segments: int, duration_ms: int):
    """A shard root as `shard` writes it (root/train, root/valid, ...), one synthetic batch
    per part: `parts` maps a part's name to its simulation ids."""
    from pipeline.datasets.dataset import write_dataset

    for part, ids in parts.items():
        batch = synthetic_batch(np.array(list(ids)), num_segments=num_segments,
                                duration_ms=duration_ms, rate_hz=12.0)
        write_dataset(root / part, [batch], {"stage": "test", "part": part})
    return root
