"""The l5pc cell against published L5PC behaviour (Hay et al. 2011; NeuronIO).

Each check prints its figures (pytest -s shows them). The stimuli:
  * bAP: a 2 nA, 3 ms somatic current pulse, which fires exactly one AP;
  * distal input: an EPSC-shaped current (rise 0.5 ms, decay 5 ms, peak 1 nA) 750 um from
    the soma on the main apical path (trunk, then the larger tuft branch: the proximal
    tuft, in the Ca hot zone), 5 ms after the pulse onset;
  * the NeuronIO cell's figures: rest, input and transfer impedance at rest, hot-zone
    segment counts and nexus distance, measured as the reference sheet measures them;
  * NMDA: 1 to 50 synchronous synapses on one segment of a basal terminal, 200 um out;
  * rate (slow): the NeuronIO protocol's published ranges, 16 x 6 s, for the cell and for
    its AMPA-only and passive-dendrite variants.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from neuron import h

from biophys_models.cell import Cell, build_cell
from biophys_models.cell_measures import geometry, impedance_at_rest, settle
from biophys_models.segments import subtree_length
from biophys_models.simulator import RunSettings, simulate
from tests.cell_helpers import NO_INPUT, neurosurrogate

#: The NeuronIO cell (Hay's template, L5PCbiophys5b, cell1.asc) as the reference sheet
#: hay-l5pc.md measures it, and how close the built-in cell must come: (value, tolerance,
#: absolute or relative). Measured as the sheet does: settled without input at 34 degC,
#: impedances at 0 Hz at rest (biophys_models.cell_measures).
NEURONIO_CELL = {
    "rest_mv": (-81.1, 1.5, "abs"),
    "input_resistance_mohm": (50.9, 0.15, "rel"),
    "transfer_basal_mohm": (49.5, 0.20, "rel"),
    "transfer_apical_mohm": (24.6, 0.20, "rel"),
    "hot_zone_segments": (28, 0.25, "rel"),
    "beyond_hot_zone_segments": (146, 0.25, "rel"),
    "nexus_distance_um": (678.0, 0.10, "rel"),
}
#: One compartment with Hay's densities (a check of the mechanisms, not of the geometry).
ISOPOTENTIAL_BAND_MV = (-80.0, -70.0)
PULSE = (2.0, 3.0)  # nA, ms
EPSC_AT_UM, EPSC_PEAK_NA = 750.0, 1.0
BAP_WINDOW_MS = (50.0, 80.0)  # from the pulse onset


@pytest.fixture(scope="module")
def cell() -> Cell:
    return build_cell("l5pc")


def _main_path_segments(cell: Cell) -> list[Any]:
    """The trunk from the soma to the nexus, then on along the larger tuft branch at each
    branch point: the path a bAP takes into the Ca hot zone of the proximal tuft."""
    apical = set(cell.sections.apical)
    memo: dict[Any, float] = {}
    sec, path = cell.nexus_segment.sec, []
    while sec in apical:
        path.append(sec)
        sec = sec.parentseg().sec
    path.reverse()
    while children := [c for c in path[-1].children() if c in apical]:
        path.append(max(children, key=lambda c: subtree_length(c, memo)))
    return [seg for s in path for seg in s]


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


@pytest.fixture(scope="module")
def twin_figures(cell) -> dict[str, float]:
    rest = settle(cell)
    imp = impedance_at_rest(cell)
    geom = geometry(cell)
    kind = cell.segments.type
    return {
        "rest_mv": rest.soma_mv,
        "input_resistance_mohm": imp.input_mohm,
        "transfer_basal_mohm": float(np.median(imp.transfer_mohm[kind == "basal"])),
        "transfer_apical_mohm": float(np.median(imp.transfer_mohm[kind == "apical"])),
        "hot_zone_segments": geom["apical"]["hot_zone_segments"],
        "beyond_hot_zone_segments": geom["apical"]["beyond_hot_zone_segments"],
        "nexus_distance_um": geom["nexus"]["distance_um"],
    }


@pytest.mark.parametrize("figure", list(NEURONIO_CELL))
def test_the_cell_is_the_neuronio_cells_twin(twin_figures, figure):
    target, tolerance, kind = NEURONIO_CELL[figure]
    got = twin_figures[figure]
    print(f"\n{figure}: {got:.2f} (NeuronIO cell {target})")
    error = abs(got - target) if kind == "abs" else abs(got / target - 1)
    assert error <= tolerance


def test_the_hay_densities_alone_rest_in_band(cell):
    """With axial resistance taken away the cell is one compartment, so its rest is set by
    the published densities alone (leak to -90 mV against Ih to -45 mV): this must be Hay's
    -75 +- 5 mV whatever the geometry does to the soma."""
    sections = cell.sections.all()
    ra = [sec.Ra for sec in sections]
    try:
        for sec in sections:
            sec.Ra = 1.0
        settled = settle(cell)  # Ih and cai (tau 295 ms) have long settled by 2 s
        rest, nexus = settled.soma_mv, settled.nexus_mv
    finally:
        for sec, value in zip(sections, ra, strict=True):
            sec.Ra = value
    print(f"\nisopotential rest: soma {rest:.2f} mV, nexus {nexus:.2f} mV")
    assert abs(rest - nexus) < 0.5
    assert ISOPOTENTIAL_BAND_MV[0] < rest < ISOPOTENTIAL_BAND_MV[1]


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
    target = min(_main_path_segments(cell), key=lambda s: abs(_distance(cell, s) - EPSC_AT_UM))
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
    """The pulse's AP measured along the trunk and into the tuft."""
    path = _main_path_segments(cell)
    probes = [min(path, key=lambda s, d=d: abs(_distance(cell, s) - d))
              for d in (50, 200, 400, 600, 800)]
    vecs = [h.Vector().record(seg._ref_v, 0.025) for seg in probes]
    spikes = _bac_run(cell, pulse=True, epsc=False)
    assert len(spikes) == 1
    amps = []
    lo, hi = (int(t / 0.025) for t in BAP_WINDOW_MS)
    for seg, vec in zip(probes, vecs, strict=True):
        v = vec.as_numpy()
        amps.append(v[lo:hi].max() - v[lo - int(1 / 0.025)])
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


#: NMDA test: n synchronous synapses clustered on one segment of a basal terminal. One
#: NSAmpaNmda given n events is n identical synapses (its conductance is linear in the
#: events; the Mg block acts on the summed conductance, as it would on n co-located ones).
NMDA_AT_UM = 200.0
NMDA_COUNTS = (10, 20, 30, 40, 50)
NMDA_ONSET_MS, NMDA_WINDOW_MS = 30.0, 150.0


def _basal_terminal_rows(cell: Cell) -> np.ndarray:
    """The segments of the basal terminal section with the most segments among those that
    reach NMDA_AT_UM."""
    seg = cell.segments
    best = max((i for i, sec in enumerate(cell.sections.basal) if not sec.children()
                and seg.distance_um[seg.section == i].max() >= NMDA_AT_UM),
               key=lambda i: int(np.sum(seg.section == i)))
    return np.flatnonzero(seg.section == best)


class _BasalBranch:
    """The segments of one basal terminal recorded every 0.1 ms; its local response is
    the branch-mean depolarisation above a no-input run (which also removes the settling
    from v_init), integrated over the window (mV ms) or taken at its peak (mV)."""

    def __init__(self, cell: Cell) -> None:
        self.cell = cell
        rows = _basal_terminal_rows(cell)
        self.target = int(rows[np.argmin(abs(cell.segments.distance_um[rows] - NMDA_AT_UM))])
        self.vecs = [h.Vector().record(cell.dendritic_segments[k]._ref_v, 0.1) for k in rows]
        self.baseline = self._mean_trace(0, nmda=True)

    def _mean_trace(self, n: int, nmda: bool) -> np.ndarray:
        self.cell.set_nmda(nmda)
        try:
            simulate(self.cell, np.full(n, self.target), np.full(n, NMDA_ONSET_MS),
                     RunSettings(duration_ms=int(NMDA_ONSET_MS + NMDA_WINDOW_MS)))
        finally:
            self.cell.set_nmda(True)
        lo = int(NMDA_ONSET_MS / 0.1)
        return np.mean([v.as_numpy() for v in self.vecs], axis=0)[lo:lo + int(NMDA_WINDOW_MS / 0.1)]

    def response(self, n: int, nmda: bool) -> np.ndarray:
        return self._mean_trace(n, nmda) - self.baseline


def test_nmda_makes_a_basal_branch_supralinear(cell):
    """Clustered input on a thin basal branch: without NMDA the local response grows less
    and less with every added synapse (driving force shrinks); with NMDA, depolarisation
    unblocks Mg and past a threshold each added synapse adds more than the ones before
    (an NMDA spike: a plateau that outlasts the AMPA current)."""
    branch = _BasalBranch(cell)
    area, peak, plateau, marginal = {}, {}, {}, {}
    for nmda in (True, False):
        single = branch.response(1, nmda)
        traces = [branch.response(n, nmda) for n in NMDA_COUNTS]
        area[nmda] = np.array([single.sum() * 0.1, *(r.sum() * 0.1 for r in traces)])
        peak[nmda] = np.array([single.max(), *(r.max() for r in traces)])
        plateau[nmda] = traces[-1][int(20 / 0.1):int(40 / 0.1)].mean()  # 20-40 ms after
        counts = np.array([1, *NMDA_COUNTS])
        marginal[nmda] = np.diff(np.r_[0.0, area[nmda][1:]]) / np.diff(np.r_[0, NMDA_COUNTS])
        label = "AMPA+NMDA" if nmda else "AMPA only"
        print(f"\n{label} at {cell.segments.distance_um[branch.target]:.0f} um, n = "
              f"{counts.tolist()}: area {area[nmda].round(0).tolist()} mV ms, area / "
              f"(n x single) {(area[nmda] / (counts * area[nmda][0])).round(2).tolist()}, peak "
              f"{peak[nmda].round(1).tolist()} mV, area added per synapse "
              f"{marginal[nmda].round(1).tolist()}, plateau {plateau[nmda]:.1f} mV")
    counts = np.array([1, *NMDA_COUNTS])
    # one synapse: NMDA is Mg-blocked at rest and adds little
    assert area[True][0] < 1.2 * area[False][0]
    # AMPA only: linear or sublinear, each added synapse adds less than the one before
    assert np.all(area[False] <= counts * area[False][0] * 1.001)
    assert np.all(peak[False] <= counts * peak[False][0] * 1.001)
    assert np.all(np.diff(marginal[False]) < 0)
    # AMPA+NMDA: the added response per synapse turns up past a threshold and ends far
    # above its minimum, while the AMPA-only one keeps falling
    low = int(np.argmin(marginal[True]))
    assert marginal[True][low:].max() > 2.5 * marginal[True][low]
    assert low < len(marginal[True]) - 1
    assert area[True][-1] > 4 * area[False][-1]
    assert plateau[True] > 30.0 > 10.0 > plateau[False]


# The built-in cell and two of the NeuronIO paper's variants under the published ranges:
# 16 simulations of 6 s each through `neurosurrogate simulate` on 2 workers (~8 min here).
RATE_CASES = {
    "nmda": ([], (0.2, 5.0)),
    "ampa_only": (["--synapse", "ampa", "--protocol-preset", "ampa"], (0.05, 5.0)),
    "passive": (["--dendrites", "passive"], (0.05, 10.0)),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(RATE_CASES))
def test_neuronio_protocol_rate_16_x_6_s(case: str, tmp_path: Path):
    flags, (low, high) = RATE_CASES[case]
    proc = neurosurrogate("simulate", "--out", tmp_path / case, "--num-sims", "16",
                          "--duration-ms", "6000", "--sims-per-shard", "2", "--workers", "2",
                          *flags, timeout_s=3600)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / case / "summary.json").read_text())
    print(f"\n{case}: {summary['output_rate_hz_mean']:.2f} +- "
          f"{summary['output_rate_hz_std']:.2f} Hz over 16 x 6 s, "
          f"{summary['silent_fraction']:.0%} silent, input exc "
          f"{summary['input_exc_rate_hz_per_synapse']:.2f} Hz/synapse")
    assert low <= summary["output_rate_hz_mean"] <= high
