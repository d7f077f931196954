"""What one simulation returns, and how output spikes are read from the soma trace.

Kept free of NEURON so the spike rule can be tested on plain arrays.

Output spikes follow NeuronIO: the soma voltage is sampled at 8 samples/ms (the published
"HighRes" trace) and every strict local maximum above -25 mV is one spike, timed at the
sample of the maximum. (A threshold crossing would time spikes ~0.3 ms earlier than the data
set.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FINE_DT_MS = 0.125  # 8 samples/ms
SPIKE_THRESHOLD_MV = -25.0


@dataclass(frozen=True)
class Recording:
    """Outputs of one run; every trace is a point sample at each integer ms (0..T-1)."""

    soma_voltage_mv: np.ndarray  # float32 [T]
    nexus_voltage_mv: np.ndarray  # float32 [T]
    output_spike_times_ms: np.ndarray  # float32 [k], sorted
    dendritic_voltage_mv: np.ndarray | None  # float16 [n_segments, T], when asked for

    @property
    def duration_ms(self) -> int:
        return len(self.soma_voltage_mv)


def detect_spikes(trace_mv: np.ndarray, dt_ms: float = FINE_DT_MS,
                  threshold_mv: float = SPIKE_THRESHOLD_MV) -> np.ndarray:
    """Times (ms) of the strict local maxima above threshold_mv of a uniformly sampled trace.

    NeuronIO's rule: sample i is a spike when it is above threshold_mv and both neighbours
    are lower. A flat top (two or more equal samples at the peak) is not a maximum, a
    double-peaked spike gives two, and the first and last samples never count. Times are
    sample index * dt_ms.
    """
    v = np.asarray(trace_mv, dtype=np.float64)
    mid = v[1:-1]
    peaks = np.flatnonzero((mid > threshold_mv) & (mid > v[:-2]) & (mid > v[2:])) + 1
    return (peaks * dt_ms).astype(np.float32)


def point_samples(trace: np.ndarray, step: int, count: int) -> np.ndarray:
    """Every `step`-th sample from 0, exactly `count` of them (the trace must be long enough)."""
    out = np.asarray(trace)[::step][:count]
    if len(out) != count:
        raise RuntimeError(f"recorded {len(out)} samples, expected {count}")
    return out
