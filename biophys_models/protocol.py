"""The NeuronIO input protocol (Beniaguev et al. 2021), as pure numpy.

Per simulation and per dendritic tree (basal, apical):
1. a coarse rate held piecewise constant, each hold lasting a duration drawn from
   `hold_ms` plus uniform jitter; excitation uniform on `exc_range` spikes per tree per
   100 ms, inhibition uniform on [max(0, exc - inh_below), exc + inh_above];
2. the coarse rates smoothed with a normalised Gaussian kernel, sigma drawn from
   `sigma_ms` plus uniform jitter, window 1 + 7 sigma samples;
3. split over the tree's segments in proportion to (length + 10 um), times uniform noise
   in [0.5, 1.5] per segment and 1 ms sample;
4. per 1 ms bin, a spike probability drawn from an exponential distribution whose mean is
   that rate, then a Bernoulli draw (doubly stochastic).

Choices where the published description leaves room (docs/architecture.md): each tree
draws its own hold sequence and sigma, shared by its excitation and inhibition (the
inhibition range depends on the excitation of the same hold); the smoothing acts on the
coarse tree rate (the per-sample noise is applied after it, which changes no expected rate);
edges are smoothed with the nearest value (no rate drop at the start and end).

Every random number of simulation `sim_id` comes from `numpy.random.default_rng([seed,
sim_id])`, so any simulation can be regenerated on its own, on any worker.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.ndimage import convolve1d

from pipeline.protocol import EXC_RANGE, INH_OFFSETS, synapses_of_segment

TREES = ("basal", "apical")
LENGTH_OFFSET_UM = 10.0


@dataclass(frozen=True)
class ProtocolSettings:
    """The protocol's ranges; the published data set mixes several (e.g. exc 0..1000)."""

    exc_range: tuple[float, float] = EXC_RANGE  # spikes per tree per 100 ms
    inh_below: float = INH_OFFSETS[0]
    inh_above: float = INH_OFFSETS[1]
    hold_ms: tuple[int, ...] = (25, 30, 35, 40, 45, 55, 60, 65, 70, 75, 80, 85, 90, 100,
                                150, 200, 300, 450)
    hold_jitter_ms: float = 20.0
    sigma_ms: tuple[int, ...] = (25, 30, 35, 40, 50, 60, 80, 100, 150, 200, 300, 400, 500,
                                 600)
    sigma_jitter_ms: float = 20.0
    noise_range: tuple[float, float] = (0.5, 1.5)

    def __post_init__(self) -> None:
        lo, hi = self.exc_range
        if not 0 <= lo <= hi:
            raise ValueError(f"exc_range must satisfy 0 <= low <= high, got {self.exc_range}")
        if min(self.hold_ms) - self.hold_jitter_ms < 1:
            raise ValueError("hold durations minus jitter must stay >= 1 ms")
        if min(self.sigma_ms) - self.sigma_jitter_ms <= 0:
            raise ValueError("smoothing sigmas minus jitter must stay > 0 ms")

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ProtocolSettings:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def coarse_rates(rng: np.random.Generator, duration_ms: int, settings: ProtocolSettings
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Piecewise-constant (excitatory, inhibitory) tree rates, spikes per ms, per 1 ms bin."""
    exc = np.empty(duration_ms)
    inh = np.empty(duration_ms)
    t = 0
    while t < duration_ms:
        hold = int(round(rng.choice(settings.hold_ms)
                         + rng.uniform(-settings.hold_jitter_ms, settings.hold_jitter_ms)))
        e = rng.uniform(*settings.exc_range)
        i = rng.uniform(max(0.0, e - settings.inh_below), e + settings.inh_above)
        exc[t:t + hold], inh[t:t + hold] = e / 100.0, i / 100.0
        t += hold
    return exc, inh


def gaussian_kernel(sigma_ms: float) -> np.ndarray:
    """Normalised Gaussian, 1 + 7 sigma samples wide (rounded to an odd length)."""
    half = int(round(7 * sigma_ms)) // 2
    x = np.arange(-half, half + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma_ms) ** 2)
    return kernel / kernel.sum()


def smooth(rate: np.ndarray, sigma_ms: float) -> np.ndarray:
    return convolve1d(rate, gaussian_kernel(sigma_ms), mode="nearest")


def segment_rates(segment_type: np.ndarray, length_um: np.ndarray, duration_ms: int,
                  seed: int, sim_id: int, settings: ProtocolSettings | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Expected spikes per 1 ms bin, [num_segments, duration_ms], (excitatory, inhibitory).

    Returned before the exponential draw, so the protocol's statistics can be checked."""
    settings = settings or ProtocolSettings()
    rng = np.random.default_rng([seed, sim_id])
    n = len(segment_type)
    rates = np.zeros((2, n, duration_ms))
    weight = np.asarray(length_um, dtype=np.float64) + LENGTH_OFFSET_UM
    for tree in TREES:
        idx = np.flatnonzero(np.asarray(segment_type) == tree)
        exc, inh = coarse_rates(rng, duration_ms, settings)
        sigma = rng.choice(settings.sigma_ms) + rng.uniform(-settings.sigma_jitter_ms,
                                                            settings.sigma_jitter_ms)
        share = weight[idx] / weight[idx].sum() if len(idx) else weight[idx]
        for k, tree_rate in enumerate((exc, inh)):
            noise = rng.uniform(*settings.noise_range, size=(len(idx), duration_ms))
            rates[k, idx] = share[:, None] * smooth(tree_rate, sigma)[None, :] * noise
    return rates[0], rates[1]


def input_spikes(segment_type: np.ndarray, length_um: np.ndarray, duration_ms: int,
                 seed: int, sim_id: int, settings: ProtocolSettings | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """One simulation's input spikes as (synapse, time_ms) int arrays, sorted by time.

    Segment k's rates drive its inputs `pipeline.protocol.synapses_of_segment(k, n)`; at
    most one spike per synapse and 1 ms bin, at the bin's start."""
    exc, inh = segment_rates(segment_type, length_um, duration_ms, seed, sim_id, settings)
    rng = np.random.default_rng([seed, sim_id, 1])  # the draw's own stream
    n = len(exc)
    rates = np.empty((2 * n, duration_ms))  # [input, T]
    exc_input, inh_input = synapses_of_segment(np.arange(n), n)
    rates[exc_input], rates[inh_input] = exc, inh
    p = np.minimum(rng.exponential(1.0, size=rates.shape) * rates, 1.0)
    synapse, time_ms = np.nonzero(rng.random(rates.shape) < p)
    order = np.lexsort((synapse, time_ms))
    return synapse[order].astype(np.int32), time_ms[order].astype(np.int32)
