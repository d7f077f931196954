"""The NeuronIO input protocol on its own (no NEURON): ranges, smoothing, rates, seeding."""

from __future__ import annotations

import numpy as np
import pytest

from biophys_models.protocol import (
    ProtocolSettings,
    coarse_rates,
    gaussian_kernel,
    input_spikes,
    segment_rates,
    smooth,
)

TYPES = np.array(["basal"] * 40 + ["apical"] * 60)
LENGTHS = np.linspace(5.0, 45.0, 100)


def _holds(rate: np.ndarray) -> np.ndarray:
    edges = np.flatnonzero(np.diff(rate) != 0) + 1
    return np.diff(np.concatenate([[0], edges, [len(rate)]]))


def test_coarse_rates_follow_the_published_ranges_and_holds() -> None:
    settings = ProtocolSettings()
    rng = np.random.default_rng(0)
    holds, exc_all = [], []
    for _ in range(50):
        exc, inh = coarse_rates(rng, 6000, settings)
        e, i = exc * 100, inh * 100  # spikes per tree per 100 ms
        assert e.min() >= 0 and e.max() <= 800
        assert np.all(i >= np.maximum(0, e - 600) - 1e-9) and np.all(i <= e + 200 + 1e-9)
        holds.extend(_holds(exc)[:-1])  # the last hold is cut by the end of the run
        exc_all.append(e)
    holds = np.array(holds)
    assert holds.min() >= 25 - 20 and holds.max() <= 450 + 20
    assert np.mean(np.concatenate(exc_all)) == pytest.approx(400, rel=0.1)
    other = ProtocolSettings(exc_range=(0.0, 1000.0))
    e, _ = coarse_rates(np.random.default_rng(1), 60000, other)
    assert e.max() * 100 > 800  # ranges are parameters


def test_smoothing_kernel_is_normalised_and_7_sigma_wide() -> None:
    for sigma in (5.0, 25.0, 137.0):
        kernel = gaussian_kernel(sigma)
        assert kernel.sum() == pytest.approx(1.0)
        assert abs(len(kernel) - (1 + 7 * sigma)) <= 1
        assert np.argmax(kernel) == len(kernel) // 2
    step = np.r_[np.zeros(1000), np.ones(1000)]
    out = smooth(step, 50.0)
    assert out[0] == 0 and out[-1] == pytest.approx(1)  # nearest-value edges: no drop at ends
    assert out[1000] == pytest.approx(0.5, abs=0.02)
    assert np.max(np.diff(out)) < 0.01  # no jump left


def test_segment_rates_scale_with_length_and_sum_to_the_tree_rate() -> None:
    exc_sum, inh_sum = np.zeros(100), np.zeros(100)
    for sim in range(40):
        exc, inh = segment_rates(TYPES, LENGTHS, 3000, seed=3, sim_id=sim)
        exc_sum += exc.mean(1)
        inh_sum += inh.mean(1)
        assert np.all(exc >= 0)
        # tree totals: the smoothed coarse rate (noise averages to 1 over segments)
        basal_total = exc[:40].sum(0) * 100
        assert 0 <= basal_total.min() and basal_total.max() <= 800 * 1.5
    weight = LENGTHS + 10
    for tree in (slice(0, 40), slice(40, 100)):
        per_um = exc_sum[tree] / weight[tree]
        assert per_um.std() / per_um.mean() < 0.1  # rate proportional to length + 10 um


def test_spike_draw_is_doubly_stochastic_with_the_right_mean() -> None:
    settings = ProtocolSettings()
    expected, counted = 0.0, 0
    for sim in range(10):
        exc, inh = segment_rates(TYPES, LENGTHS, 2000, seed=9, sim_id=sim, settings=settings)
        synapse, time = input_spikes(TYPES, LENGTHS, 2000, seed=9, sim_id=sim,
                                     settings=settings)
        expected += exc.sum() + inh.sum()
        counted += len(synapse)
        assert synapse.min() >= 0 and synapse.max() < 200
        assert time.min() >= 0 and time.max() < 2000
        assert np.all(np.diff(time) >= 0)
        assert len(set(zip(synapse.tolist(), time.tolist(), strict=True))) == len(synapse)
    # E[min(Exp * r, 1)] = r (1 - exp(-1/r)) ~= r for the small per-ms rates here
    assert counted == pytest.approx(expected, rel=0.03)


def test_each_simulation_depends_only_on_seed_and_id() -> None:
    a = input_spikes(TYPES, LENGTHS, 500, seed=1, sim_id=7)
    b = input_spikes(TYPES, LENGTHS, 500, seed=1, sim_id=7)
    c = input_spikes(TYPES, LENGTHS, 500, seed=1, sim_id=8)
    d = input_spikes(TYPES, LENGTHS, 500, seed=2, sim_id=7)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[0], d[0])


def test_settings_round_trip_and_validation() -> None:
    settings = ProtocolSettings(exc_range=(0.0, 1100.0), inh_below=700.0)
    assert ProtocolSettings.from_dict(settings.as_dict()) == settings
    with pytest.raises(ValueError, match="exc_range"):
        ProtocolSettings(exc_range=(10.0, 5.0))
