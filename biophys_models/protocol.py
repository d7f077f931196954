"""The NeuronIO input protocol (Beniaguev et al. 2021), as pure numpy: the original
generator's rules (../shared/reference/neuronio.md, "Input spike protocol").

Per simulation:
1. ONE hold duration (a choice of `hold_ms` plus int(uniform(-jitter, +jitter))) and ONE
   integer smoothing sigma (likewise), shared by both trees and by excitation/inhibition;
2. n = ceil(duration / hold) coarse samples of four independent series, in spikes per tree
   per 100 ms: per tree, excitation uniform on the tree's range, inhibition sample by
   sample uniform on [max(0, exc - below), exc + above];
3. per segment and coarse sample, rate = tree rate / (100 sum(L + 10 um)) * (L + 10 um) *
   noise, noise uniform in [0.5, 1.5] (separate for excitation and inhibition), so that
   each segment keeps its own rate through the smoothing;
4. each coarse sample held for `hold` 1-ms bins (cropped to the duration), then convolved
   with a normalised Gaussian window of 1 + 7 sigma samples in "same" mode with zero
   padding (the rates sag towards both ends of every simulation);
5. per 1 ms bin, p drawn from an exponential distribution whose mean is that rate, and a
   spike when uniform(0, 1) < p (at most one per synapse and bin).

Every random number of simulation `sim_id` comes from `numpy.random.default_rng([seed,
sim_id])` (the spike draw from `[seed, sim_id, 1]`), so any simulation can be regenerated
on its own, on any worker.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.signal import fftconvolve
from scipy.signal.windows import gaussian

from pipeline.protocol import EXC_RANGE, INH_OFFSETS, synapses_of_segment

PROTOCOL_VERSION = 2  # 1: the generator before issue 15 (per-tree holds, per-ms noise)
TREES = ("basal", "apical")
LENGTH_OFFSET_UM = 10.0


@dataclass(frozen=True)
class ProtocolSettings:
    """The protocol's ranges (spikes per tree per 100 ms) and its hold and sigma choices."""

    basal_exc_range: tuple[float, float] = EXC_RANGE
    apical_exc_range: tuple[float, float] = EXC_RANGE
    basal_inh_offsets: tuple[float, float] = INH_OFFSETS  # inh on [exc - B, exc + A]
    apical_inh_offsets: tuple[float, float] = INH_OFFSETS
    hold_ms: tuple[int, ...] = (25, 30, 35, 40, 45, 55, 60, 65, 70, 75, 80, 85, 90, 100,
                                150, 200, 300, 450)
    hold_jitter_ms: int = 20
    sigma_ms: tuple[int, ...] = (25, 30, 35, 40, 50, 60, 80, 100, 150, 200, 300, 400, 500,
                                 600)
    sigma_jitter_ms: int = 20
    noise_range: tuple[float, float] = (0.5, 1.5)

    def __post_init__(self) -> None:
        for tree in TREES:
            lo, hi = self.exc_range(tree)
            if not 0 <= lo <= hi:
                raise ValueError(f"{tree} exc_range must satisfy 0 <= low <= high, "
                                 f"got {self.exc_range(tree)}")
        if min(self.hold_ms) - self.hold_jitter_ms < 1:
            raise ValueError("hold durations minus jitter must stay >= 1 ms")
        if min(self.sigma_ms) - self.sigma_jitter_ms < 1:
            raise ValueError("smoothing sigmas minus jitter must stay >= 1 ms")

    def exc_range(self, tree: str) -> tuple[float, float]:
        return getattr(self, f"{tree}_exc_range")

    def inh_offsets(self, tree: str) -> tuple[float, float]:
        return getattr(self, f"{tree}_inh_offsets")

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ProtocolSettings:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def _jittered(rng: np.random.Generator, choices: tuple[int, ...], jitter: int) -> int:
    """A choice plus int(uniform(-jitter, +jitter)) ms, as the original draws hold and sigma."""
    return int(rng.choice(choices)) + int(rng.uniform(-jitter, jitter))


def gaussian_kernel(sigma_ms: int) -> np.ndarray:
    """Normalised Gaussian window of 1 + 7 sigma samples, std sigma."""
    kernel = gaussian(1 + 7 * sigma_ms, std=sigma_ms)
    return kernel / kernel.sum()


def smooth(rate: np.ndarray, sigma_ms: int) -> np.ndarray:
    """Convolve along the last axis in "same" mode with zero padding (never below 0)."""
    kernel = gaussian_kernel(sigma_ms).reshape((1,) * (rate.ndim - 1) + (-1,))
    out = fftconvolve(rate, kernel, mode="same", axes=-1)
    return np.maximum(out, 0.0)  # the FFT leaves -1e-17 where the rate is 0


def _tree_rates(rng: np.random.Generator, weight: np.ndarray, n: int,
                exc_range: tuple[float, float], inh_offsets: tuple[float, float],
                noise_range: tuple[float, float]) -> np.ndarray:
    """[2 (exc, inh), segments, n] coarse per-segment rates of one tree, spikes per ms."""
    exc = rng.uniform(*exc_range, size=n)
    below, above = inh_offsets
    inh = rng.uniform(np.maximum(0.0, exc - below), exc + above)
    share = weight / weight.sum() / 100.0 if len(weight) else weight
    noise = rng.uniform(*noise_range, size=(2, len(weight), n))
    return np.stack([exc, inh])[:, None, :] * share[None, :, None] * noise


def segment_rates(segment_type: np.ndarray, length_um: np.ndarray, duration_ms: int,
                  seed: int, sim_id: int, settings: ProtocolSettings | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Expected spikes per 1 ms bin, [num_segments, duration_ms], (excitatory, inhibitory).

    Returned before the exponential draw, so the protocol's statistics can be checked."""
    settings = settings or ProtocolSettings()
    rng = np.random.default_rng([seed, sim_id])
    hold = _jittered(rng, settings.hold_ms, settings.hold_jitter_ms)
    sigma = _jittered(rng, settings.sigma_ms, settings.sigma_jitter_ms)
    n = -(-duration_ms // hold)
    types = np.asarray(segment_type)
    weight = np.asarray(length_um, dtype=np.float64) + LENGTH_OFFSET_UM
    coarse = np.zeros((2, len(types), n))
    for tree in TREES:
        idx = np.flatnonzero(types == tree)
        coarse[:, idx] = _tree_rates(rng, weight[idx], n, settings.exc_range(tree),
                                     settings.inh_offsets(tree), settings.noise_range)
    fine = np.repeat(coarse, hold, axis=-1)[..., :duration_ms]
    rates = smooth(fine, sigma)
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
    p = rng.exponential(1.0, size=rates.shape) * rates  # mean: the rate
    synapse, time_ms = np.nonzero(rng.random(rates.shape) < p)
    order = np.lexsort((synapse, time_ms))
    return synapse[order].astype(np.int32), time_ms[order].astype(np.int32)
