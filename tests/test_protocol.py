"""The NeuronIO input protocol on its own (no NEURON): the statistics of generated inputs
against the original generator's rules (../shared/reference/neuronio.md), and its seeding
and its place in the simulate settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from biophys_models.protocol import (
    PROTOCOL_VERSION,
    ProtocolSettings,
    gaussian_kernel,
    input_spikes,
    segment_rates,
    smooth,
)
from pipeline.acquisition.options import SimulateOptions
from pipeline.acquisition.simulate import simulation_settings
from pipeline.datasets.manifest import prepare_output, write_manifest
from pipeline.errors import UserError
from pipeline.protocol import PROTOCOL_PRESETS

# A synthetic table shaped like the built-in L5PC's: 262 basal and 377 apical segments.
TYPES = np.array(["basal"] * 262 + ["apical"] * 377)
LENGTHS = np.random.default_rng(0).uniform(2.0, 40.0, len(TYPES))
TREES = {"basal": TYPES == "basal", "apical": TYPES == "apical"}
# No noise: a tree's total is then exactly its smoothed coarse series.
NOISELESS = {"noise_range": (1.0, 1.0)}


def _total(rates: np.ndarray, tree: str) -> np.ndarray:
    """A tree's summed rate in spikes per tree per 100 ms, per 1 ms bin."""
    return rates[TREES[tree]].sum(0) * 100


def _changes(series: np.ndarray) -> np.ndarray:
    """The bins where a (piecewise-constant, lightly smoothed) series moves."""
    step = np.abs(np.diff(series))
    return np.flatnonzero(step > 1e-9 * series.max())


def _fitted_sigma(series: np.ndarray, at: int) -> float:
    """The std of the Gaussian that smoothed a step at bin `at`: the step's derivative is
    the window itself, so a parabola through its log gives -1 / (2 sigma^2)."""
    d = np.abs(np.diff(series))[at - 300:at + 300]
    keep = d > 0.2 * d.max()
    t = np.flatnonzero(keep)
    curvature = np.polyfit(t - t.mean(), np.log(d[keep]), 2)[0]
    return float(np.sqrt(-1 / (2 * curvature)))


def test_one_hold_shared_by_both_trees_and_by_excitation_and_inhibition() -> None:
    settings = ProtocolSettings(hold_ms=(30, 60, 100, 450), sigma_ms=(1,), sigma_jitter_ms=0,
                                **NOISELESS)
    holds = []
    for sim in range(12):
        exc, inh = segment_rates(TYPES, LENGTHS, 3000, seed=5, sim_id=sim, settings=settings)
        series = [_total(r, tree) for r in (exc, inh) for tree in TREES]
        moves = [_changes(s) for s in series]
        for other in moves[1:]:  # the same bins move in all four series
            assert np.array_equal(other, moves[0])
        starts = moves[0][np.r_[True, np.diff(moves[0]) > 1]]
        inner = np.diff(starts[(starts > 8) & (starts < 3000 - 16)])
        assert len(inner) >= 4 and np.all(inner == inner[0])  # one hold per simulation
        holds.append(inner[0])
    assert 10 <= min(holds) and max(holds) <= 470 and len(set(holds)) > 3


def test_one_integer_sigma_per_simulation() -> None:
    settings = ProtocolSettings(hold_ms=(1500,), hold_jitter_ms=0, sigma_ms=(30, 40),
                                sigma_jitter_ms=20, **NOISELESS)
    sigmas = []
    for sim in range(12):
        exc, inh = segment_rates(TYPES, LENGTHS, 3000, seed=5, sim_id=sim, settings=settings)
        fitted = [_fitted_sigma(_total(r, tree), 1500) for r in (exc, inh) for tree in TREES]
        assert np.ptp(fitted) < 1e-3  # shared by the trees and by exc/inh
        assert abs(fitted[0] - round(fitted[0])) < 1e-3  # a whole number of ms
        sigmas.append(round(fitted[0]))
    assert 10 <= min(sigmas) and max(sigmas) <= 60 and len(set(sigmas)) > 3


def test_smoothing_window_is_normalised_7_sigma_wide_and_zero_padded() -> None:
    for sigma in (1, 5, 25, 136):
        kernel = gaussian_kernel(sigma)
        assert len(kernel) == 1 + 7 * sigma and kernel.sum() == pytest.approx(1.0)
    out = smooth(np.ones(4000), 100)
    assert out[2000] == pytest.approx(1.0)
    assert out[0] == pytest.approx(0.5, abs=0.01)  # half the window falls off the edge
    assert np.all(out >= 0)


@pytest.fixture(scope="module")
def default_rates() -> dict[str, np.ndarray]:
    """Statistics of 8 default simulations of 6 s: per-segment spread over 100 ms blocks of
    the middle, per-segment mean rates, and the tree totals with noise removed."""
    spread, mean_rate = [], np.zeros(len(TYPES))
    for sim in range(8):
        exc, _ = segment_rates(TYPES, LENGTHS, 6000, seed=7, sim_id=sim)
        mean_rate += exc.mean(1) / 8
        for mask in TREES.values():
            share = (LENGTHS[mask] + 10) / (LENGTHS[mask] + 10).sum()
            blocks = exc[mask][:, 1000:5000].reshape(mask.sum(), 40, 100).mean(-1)
            spread.append((blocks / (blocks.sum(0) * share[:, None])).std(0).mean())
    return {"spread": np.array(spread), "mean_rate": mean_rate}


def test_each_segment_keeps_its_own_rate(default_rates) -> None:
    # noise per segment and coarse sample, before the smoothing: ~0.16 (0.03 when it was
    # drawn per ms after the smoothing)
    assert 0.10 < default_rates["spread"].mean() < 0.25


def test_rate_is_proportional_to_length_plus_10_um(default_rates) -> None:
    for mask in TREES.values():
        per_um = default_rates["mean_rate"][mask] / (LENGTHS[mask] + 10)
        assert per_um.std() / per_um.mean() < 0.05
        assert np.corrcoef(default_rates["mean_rate"][mask], LENGTHS[mask])[0, 1] > 0.99


def test_rates_sag_at_both_ends() -> None:
    few = slice(None, None, 20)  # the sag needs many simulations, not many segments
    profile = np.zeros(6000)
    for sim in range(150):
        exc, _ = segment_rates(TYPES[few], LENGTHS[few], 6000, seed=8, sim_id=sim)
        profile += exc.sum(0)
    middle = profile[2500:3500].mean()
    assert 0.55 < profile[:100].mean() / middle < 0.82  # ~2/3 in the original
    assert 0.55 < profile[-100:].mean() / middle < 0.82


@pytest.mark.parametrize("preset", list(PROTOCOL_PRESETS))
def test_inhibition_stays_in_its_band_sample_by_sample(preset: str) -> None:
    ranges = PROTOCOL_PRESETS[preset]  # a short window keeps each sample's own draw visible
    settings = ProtocolSettings(**ranges, sigma_ms=(1,), sigma_jitter_ms=0, **NOISELESS)
    for sim in range(8):
        exc, inh = segment_rates(TYPES, LENGTHS, 6000, seed=9, sim_id=sim, settings=settings)
        for tree in TREES:
            e, i = _total(exc, tree), _total(inh, tree)
            below, above = ranges[f"{tree}_inh_offsets"]
            assert np.all(i >= np.maximum(0, e - below) - 1e-6)
            assert np.all(i <= e + above + 1e-6)
            assert e.max() <= ranges[f"{tree}_exc_range"][1]
            assert np.std(i - e) > 0.1 * (below + above)  # drawn anew for every sample
            assert i.min() >= 0


def test_spike_draw_is_doubly_stochastic_with_the_right_mean() -> None:
    expected, counted = 0.0, 0
    for sim in range(6):
        exc, inh = segment_rates(TYPES, LENGTHS, 2000, seed=9, sim_id=sim)
        synapse, time = input_spikes(TYPES, LENGTHS, 2000, seed=9, sim_id=sim)
        expected += exc.sum() + inh.sum()
        counted += len(synapse)
        assert synapse.min() >= 0 and synapse.max() < 2 * len(TYPES)
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
    settings = ProtocolSettings(basal_exc_range=(0.0, 1100.0), apical_inh_offsets=(700.0, 0.0))
    assert ProtocolSettings.from_dict(settings.as_dict()) == settings
    with pytest.raises(ValueError, match="basal exc_range"):
        ProtocolSettings(basal_exc_range=(10.0, 5.0))


def _options(tmp_path: Path, **values) -> SimulateOptions:
    return SimulateOptions(out=tmp_path / "out", num_sims=2, **values)


def test_presets_and_both_tree_flags_set_the_ranges(tmp_path: Path) -> None:
    ampa = simulation_settings(_options(tmp_path, protocol_preset="ampa"))["protocol"]
    assert ampa["basal_exc_range"] == (0.0, 1900.0) and ampa["apical_exc_range"] == (0, 2000)
    assert ampa["basal_inh_offsets"] == ampa["apical_inh_offsets"] == (1650.0, 150.0)
    both = simulation_settings(_options(tmp_path, exc_range="400,800"))["protocol"]
    assert both["basal_exc_range"] == both["apical_exc_range"] == (400.0, 800.0)
    assert both["basal_inh_offsets"] == (600.0, 200.0)  # the nmda preset's
    with pytest.raises(UserError, match="--protocol-preset"):
        simulation_settings(_options(tmp_path, protocol_preset="gaba"))
    with pytest.raises(UserError, match="--inh-offsets"):
        simulation_settings(_options(tmp_path, inh_offsets="600"))
    per_tree = simulation_settings(_options(tmp_path, exc_range="apical=0,2000",
                                            inh_offsets="basal=800,0 apical=1650,150"))
    assert per_tree["protocol"]["apical_exc_range"] == (0.0, 2000.0)
    assert per_tree["protocol"]["basal_exc_range"] == (0.0, 800.0)  # the preset's
    assert per_tree["protocol"]["basal_inh_offsets"] == (800.0, 0.0)
    assert per_tree["protocol"]["apical_inh_offsets"] == (1650.0, 150.0)
    for bad in ("cortex=0,1", "basal=0,1 basal=0,2", "basal=0"):
        with pytest.raises(UserError, match="--exc-range"):
            simulation_settings(_options(tmp_path, exc_range=bad))


def test_data_of_the_old_generator_are_refused_on_resume(tmp_path: Path) -> None:
    settings = simulation_settings(_options(tmp_path))
    assert settings["protocol_version"] == PROTOCOL_VERSION == 2
    old = {k: v for k, v in settings.items() if k != "protocol_version"}  # before issue 15
    folder = tmp_path / "old"
    write_manifest(folder, prepare_output(folder, None, old))
    with pytest.raises(UserError, match="already holds a different data set.*protocol_version"):
        prepare_output(folder, None, settings)
    prepare_output(folder, None, old)  # the same settings still resume
