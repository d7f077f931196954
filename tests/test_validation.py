"""The l5pc cell against published L5PC behaviour (Hay et al. 2011; NeuronIO).

Each check prints its figures (pytest -s shows them). The stimuli:
  * bAP: a 2 nA, 3 ms somatic current pulse, which fires exactly one AP;
  * distal input: an EPSC-shaped current (rise 0.5 ms, decay 5 ms, peak 1 nA) on the
    apical trunk 750 um from the soma (in the Ca hot zone), 5 ms after the pulse onset.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from neuron import h

from biophys_models.cell import Cell, build_cell
from biophys_models.protocol import input_spikes
from biophys_models.simulator import RunSettings, simulate
from tests.cell_helpers import NO_INPUT

#: Hay's "near -75 mV" (issue 3: -75 +- 5 mV).
REST_BAND_MV = (-80.0, -70.0)
PULSE = (2.0, 3.0)  # nA, ms
EPSC_AT_UM, EPSC_PEAK_NA = 750.0, 1.0


@pytest.fixture(scope="module")
def cell() -> Cell:
    return build_cell("l5pc")


def _trunk_segments(cell: Cell) -> list[Any]:
    sec = cell.nexus_segment.sec
    trunk = []
    while sec in cell.sections.apical:
        trunk.append(sec)
        sec = sec.parentseg().sec
    return [seg for s in reversed(trunk) for seg in s]


def _distance(cell: Cell, seg: Any) -> float:
    return h.distance(cell.soma(0.5), seg)


def _epsc_waveform(onset_ms: float, peak_na: float) -> tuple[Any, Any]:
    t = np.arange(0.0, 300.0, 0.025)
    x = np.clip(t - onset_ms, 0.0, None)
    w = (1 - np.exp(-x / 0.5)) * np.exp(-x / 5.0)
    return h.Vector(peak_na * w / w.max()), h.Vector(t)


def test_the_cell_settles_silently_at_rest(cell):
    rec = simulate(cell, *NO_INPUT, RunSettings(duration_ms=1000))
    assert abs(rec.soma_voltage_mv[-1] - rec.soma_voltage_mv[-200]) < 0.5  # settled
    assert len(rec.output_spike_times_ms) == 0


@pytest.mark.xfail(strict=True, reason=(
    "known gap (issue 3 stays open): the soma rests at -80.9 mV. With the reference sheet's "
    "densities the soma + axon alone rest at -82 mV (somatic SK_E2 at resting Ca is 3x the "
    "leak) and no tested geometry moved the soma by more than 1.1 mV"))
def test_resting_potential(cell):
    rec = simulate(cell, *NO_INPUT, RunSettings(duration_ms=1000))
    rest = float(rec.soma_voltage_mv[-1])
    print(f"\nrest: soma {rest:.2f} mV, nexus {rec.nexus_voltage_mv[-1]:.2f} mV")
    assert REST_BAND_MV[0] < rest < REST_BAND_MV[1]


def test_f_i_curve_regular_firing_with_increasing_rate(cell):
    ic = h.IClamp(cell.soma(0.5))
    ic.delay, ic.dur = 20.0, 500.0
    counts = []
    for amp in (0.8, 1.2, 1.6):
        ic.amp = amp
        try:
            spikes = simulate(cell, *NO_INPUT, RunSettings(duration_ms=540)).output_spike_times_ms
        finally:
            ic.amp = 0.0
        assert len(spikes) >= 5
        late = np.diff(spikes[spikes > 220])  # after the initial adaptation
        cv = float(late.std() / late.mean())
        print(f"\nf-I: {amp} nA -> {len(spikes)} spikes in 500 ms "
              f"(steady {1000 / late.mean():.1f} Hz, ISI CV {cv:.2f})")
        assert spikes[-1] > 400  # keeps firing to the end of the step
        assert cv < 0.25  # regular
        counts.append((len(spikes), 1000 / late.mean()))
    del ic
    assert counts[0][1] < counts[1][1] < counts[2][1]
    assert counts[0][0] >= 3


def _bac_run(cell: Cell, pulse: bool, epsc: bool) -> np.ndarray:
    ic = h.IClamp(cell.soma(0.5))
    ic.delay, ic.dur, ic.amp = 50.0, PULSE[1], PULSE[0] if pulse else 0.0
    target = min(_trunk_segments(cell), key=lambda s: abs(_distance(cell, s) - EPSC_AT_UM))
    dc = h.IClamp(target)
    dc.delay, dc.dur = 0.0, 1e9
    amp, times = _epsc_waveform(55.0, EPSC_PEAK_NA if epsc else 0.0)
    amp.play(dc._ref_amp, times, 1)
    try:
        rec = simulate(cell, *NO_INPUT, RunSettings(duration_ms=150))
    finally:
        amp.play_remove()
        dc.amp = ic.amp = 0.0
    return rec.output_spike_times_ms


def test_bap_backpropagates_and_attenuates(cell):
    trunk = _trunk_segments(cell)
    probes = [min(trunk, key=lambda s, d=d: abs(_distance(cell, s) - d))
              for d in (50, 200, 400, 600, 800)]
    vecs = [h.Vector().record(seg._ref_v, 0.025) for seg in probes]
    spikes = _bac_run(cell, pulse=True, epsc=False)
    assert len(spikes) == 1
    amps = []
    for seg, vec in zip(probes, vecs, strict=True):
        v = vec.as_numpy()
        amps.append(v[int(50 / 0.025):int(80 / 0.025)].max() - v[int(49 / 0.025)])
        print(f"\nbAP at {_distance(cell, seg):.0f} um: {amps[-1]:.1f} mV")
    assert all(a > b for a, b in zip(amps, amps[1:], strict=False))
    assert amps[0] > 60 and amps[2] > 10  # it does reach the mid trunk
    assert amps[-1] < 0.5 * amps[0]


def test_bac_firing(cell):
    bap = _bac_run(cell, pulse=True, epsc=False)
    epsc = _bac_run(cell, pulse=False, epsc=True)
    both = _bac_run(cell, pulse=True, epsc=True)
    print(f"\nBAC: bAP alone {len(bap)} spike(s), EPSC alone {len(epsc)}, "
          f"paired {len(both)} {both.tolist()}")
    assert len(bap) <= 1 and len(epsc) <= 1
    assert len(both) >= 2
    assert both[-1] - both[0] < 40  # a burst, not a late second spike


def _branch_response(cell: Cell, per_synapse: int, nmda: bool) -> tuple[float, float]:
    """`per_synapse` synchronous events on each of the 7 excitatory synapses of one basal
    terminal; peak and area (mV ms) of the depolarisation in the branch's middle."""
    seg = cell.segments
    terminal = 2  # dend[2]: a terminal of the first basal tree (nseg 7)
    idx = np.flatnonzero(seg.section == terminal)
    assert len(idx) == 7
    probe = cell.dendritic_segments[idx[3]]
    vec = h.Vector().record(probe._ref_v, 0.1)
    cell.set_nmda(nmda)
    syn = np.repeat(idx, per_synapse)
    try:
        simulate(cell, syn, np.full(len(syn), 20.0), RunSettings(duration_ms=150))
    finally:
        cell.set_nmda(True)
    v = vec.as_numpy()
    base = v[int(19 / 0.1)]
    dv = v[int(20 / 0.1):] - base
    return float(dv.max()), float(dv.clip(0).sum() * 0.1)


def test_nmda_makes_basal_branch_supralinear(cell):
    counts = (1, 2, 4, 6)  # events per synapse: 7, 14, 28, 42 synchronous inputs
    ratios, peaks, areas = {}, {}, {}
    for nmda in (True, False):
        responses = [_branch_response(cell, n, nmda) for n in counts]
        areas[nmda] = [a for _, a in responses]
        ratios[nmda] = [area / (n * responses[0][1]) for n, (_, area) in zip(counts, responses,
                                                                            strict=True)]
        peaks[nmda] = [p / (n * responses[0][0]) for n, (p, _) in zip(counts, responses,
                                                                      strict=True)]
        label = "AMPA+NMDA" if nmda else "AMPA only"
        print(f"\n{label}: peaks {[round(p, 1) for p, _ in responses]} mV, "
              f"areas {[round(a) for _, a in responses]} mV ms, area / linear sum "
              f"{[round(r, 2) for r in ratios[nmda]]}, peak / linear sum "
              f"{[round(r, 2) for r in peaks[nmda]]}")
    # NMDA part of the local response (NMDA minus AMPA-only area) per unit of input
    nmda_part = [(a - b) / n for n, a, b in zip(counts, areas[True], areas[False], strict=True)]
    print(f"NMDA part of the area per event-per-synapse: {[round(x, 1) for x in nmda_part]}")
    assert nmda_part[-1] > 3 * nmda_part[0]  # the NMDA component grows supralinearly
    assert ratios[False][-1] < 0.8 and peaks[False][-1] < 0.6  # AMPA only: sublinear
    assert ratios[True][-1] > ratios[False][-1] + 0.1


@pytest.mark.slow
def test_neuronio_protocol_rate_16_x_6_s(cell):
    rates = []
    for seed in range(16):
        syn, t = input_spikes(cell.segments.type, cell.segments.length_um, 6000, seed, 0)
        rec = simulate(cell, syn, t, RunSettings(duration_ms=6000))
        assert np.isfinite(rec.soma_voltage_mv).all() and np.isfinite(rec.nexus_voltage_mv).all()
        rates.append(len(rec.output_spike_times_ms) / 6.0)
        print(f"\nseed {seed}: {len(t)} input spikes, {rates[-1]:.2f} Hz, "
              f"mean soma {rec.soma_voltage_mv.mean():.1f} mV", flush=True)
    print(f"\nmean rate over 16 x 6 s: {np.mean(rates):.2f} Hz "
          f"(min {min(rates):.2f}, max {max(rates):.2f})")
    assert 0.5 <= np.mean(rates) <= 5.0
