"""How closely two recordings of the same inputs agree: the fast-kinetics tolerance.

Issue 19's criterion for `RunSettings(kinetics="fast")` against "exact": at least 98 % of
output spikes matched one-to-one within 0.5 ms (so none added or lost beyond that), and a
soma voltage RMSE below 0.5 mV. Tests and benchmarks/bench_kinetics.py share this code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPIKE_WINDOW_MS = 0.5
MIN_SPIKE_MATCH = 0.98
MAX_SOMA_RMSE_MV = 0.5


def matched_spikes(a: np.ndarray, b: np.ndarray, window_ms: float = SPIKE_WINDOW_MS) -> int:
    """Spikes of a paired one-to-one with spikes of b within window_ms (greedy in time)."""
    a, b = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
    i = j = matched = 0
    while i < len(a) and j < len(b):
        if abs(a[i] - b[j]) <= window_ms:
            matched, i, j = matched + 1, i + 1, j + 1
        elif a[i] < b[j]:
            i += 1
        else:
            j += 1
    return matched


@dataclass(frozen=True)
class Agreement:
    """Spike counts, matched pairs and soma RMSE of a candidate against a reference."""

    reference_spikes: int
    candidate_spikes: int
    matched: int
    soma_rmse_mv: float
    samples: int = 1  # soma samples behind the RMSE (weights it when pooling)

    @property
    def spike_match(self) -> float:
        """matched / the larger count: an added or a lost spike both lower it (1 if none)."""
        most = max(self.reference_spikes, self.candidate_spikes)
        return 1.0 if most == 0 else self.matched / most

    @property
    def within_tolerance(self) -> bool:
        return self.spike_match >= MIN_SPIKE_MATCH and self.soma_rmse_mv < MAX_SOMA_RMSE_MV

    def combined(self, other: Agreement) -> Agreement:
        """Pool two comparisons (the RMSE over all their soma samples)."""
        samples = self.samples + other.samples
        mean_sq = (self.samples * self.soma_rmse_mv ** 2
                   + other.samples * other.soma_rmse_mv ** 2) / samples
        return Agreement(self.reference_spikes + other.reference_spikes,
                         self.candidate_spikes + other.candidate_spikes,
                         self.matched + other.matched, float(np.sqrt(mean_sq)), samples)


def agreement(reference: object, candidate: object) -> Agreement:
    """Compare two `Recording`s of the same inputs (soma at 1 ms, spikes at 0.1 ms)."""
    ref_v = np.asarray(reference.soma_voltage_mv, np.float64)
    cand_v = np.asarray(candidate.soma_voltage_mv, np.float64)
    rmse = float(np.sqrt(np.mean((ref_v - cand_v) ** 2)))
    ref_s, cand_s = reference.output_spike_times_ms, candidate.output_spike_times_ms
    return Agreement(len(ref_s), len(cand_s), matched_spikes(ref_s, cand_s), rmse, len(ref_v))
