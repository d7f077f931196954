"""What a surrogate would notice of a cell, measured the way the reference sheet measures the
NeuronIO cell: rest and impedances after settling without input at the run temperature,
geometry from the built sections, the f-I curve, and the firing under NeuronIO inputs.

Works on any built `Cell` (built-in, reconstruction or cell spec), so that two cells can be
held side by side (`neurosurrogate compare-cells`). Each function re-initialises what it
depends on through `simulator.simulate`, except `impedance_at_rest`, which linearises the
cell in the state the last run left it: call it right after `settle`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from neuron import h

from biophys_models.biophysics import CA_HOT_ZONE_UM
from biophys_models.cell import Cell, build_cell
from biophys_models.protocol import ProtocolSettings, input_spikes
from biophys_models.segments import trunk_root
from biophys_models.simulator import RunSettings, simulate

#: Settling without input: Ih and cai (tau 295 ms) have settled well within this.
SETTLE_MS = 2000
NO_INPUT = (np.zeros(0, dtype=np.int64), np.zeros(0))


@dataclass(frozen=True)
class Rest:
    soma_mv: float
    nexus_mv: float


@dataclass(frozen=True)
class Impedance:
    """At 0 Hz around rest, with every channel's gating linearised (NEURON's Impedance with
    the d(state)/dv terms): what a small slow input sees."""

    input_mohm: float  # at the soma
    transfer_mohm: np.ndarray  # per dendritic segment, to the soma (symmetric at 0 Hz)


def settle(cell: Cell, duration_ms: int = SETTLE_MS, celsius: float = 34.0) -> Rest:
    """Run without input (variable step) and return where soma and nexus end."""
    rec = simulate(cell, *NO_INPUT, RunSettings(duration_ms=duration_ms, cvode=True,
                                                celsius=celsius))
    return Rest(float(rec.soma_voltage_mv[-1]), float(rec.nexus_voltage_mv[-1]))


def impedance_at_rest(cell: Cell) -> Impedance:
    """Input and transfer impedance at 0 Hz in the current state (call after `settle`)."""
    imp = h.Impedance()
    imp.loc(0.5, sec=cell.soma)
    imp.compute(0, 1)
    transfer = np.array([imp.transfer(seg.x, sec=seg.sec) for seg in cell.dendritic_segments])
    return Impedance(float(imp.input(0.5, sec=cell.soma)), transfer)


def _diam_at_start(sec: Any) -> float:
    return float(h.diam3d(0, sec=sec)) if h.n3d(sec=sec) else float(sec(0.5 / sec.nseg).diam)


def _tree(sections: list[Any], distances: np.ndarray, soma: Any) -> dict[str, float]:
    members = set(sections)
    stems = [s for s in sections if s.parentseg() is None or s.parentseg().sec not in members]
    tips = [s for s in sections if not any(c in members for c in s.children())]
    return {
        "stems": len(stems),
        "stem_diam_min_um": min((_diam_at_start(s) for s in stems), default=float("nan")),
        "stem_diam_max_um": max((_diam_at_start(s) for s in stems), default=float("nan")),
        "sections": len(sections),
        "tips": len(tips),
        "length_um": float(sum(s.L for s in sections)),
        "area_um2": float(sum(seg.area() for s in sections for seg in s)),
        "max_path_um": max((h.distance(soma(0.5), s(1)) for s in tips), default=0.0),
        "median_segment_distance_um": float(np.median(distances)) if len(distances) else 0.0,
    }


def geometry(cell: Cell) -> dict[str, Any]:
    """Soma, per-tree and apical landmarks: the figures of the reference sheet's table."""
    seg = cell.segments
    soma = cell.soma
    apical = seg.distance_um[seg.type == "apical"]
    lo, hi = CA_HOT_ZONE_UM
    trunk = trunk_root(cell.sections, {}) if cell.sections.apical else None
    return {
        "soma": {"length_um": float(soma.L), "diam_um": float(soma.diam),
                 "area_um2": float(sum(s.area() for s in soma))},
        "basal": _tree(list(cell.sections.basal), seg.distance_um[seg.type == "basal"], soma),
        "apical": {
            **_tree(list(cell.sections.apical), apical, soma),
            "trunk_diam_at_soma_um": _diam_at_start(trunk) if trunk else float("nan"),
            "hot_zone_segments": int(np.sum((apical >= lo) & (apical <= hi))),
            "beyond_hot_zone_segments": int(np.sum(apical > hi)),
        },
        "nexus": {"distance_um": float(cell.nexus.distance_um),
                  "diam_um": float(cell.nexus_segment.diam)},
        "segments": {"basal": int(np.sum(seg.type == "basal")), "apical": int(len(apical)),
                     "length_min_um": float(seg.length_um.min()),
                     "length_max_um": float(seg.length_um.max()),
                     "length_mean_um": float(seg.length_um.mean())},
    }


def f_i_curve(cell: Cell, amps_na: list[float], step_ms: int = 500,
              delay_ms: int = 20) -> list[float]:
    """Somatic step currents: the firing rate (Hz) over each step."""
    clamp = h.IClamp(cell.soma(0.5))
    clamp.delay, clamp.dur = float(delay_ms), float(step_ms)
    rates = []
    try:
        for amp in amps_na:
            clamp.amp = amp
            spikes = simulate(cell, *NO_INPUT,
                              RunSettings(duration_ms=delay_ms + step_ms)).output_spike_times_ms
            rates.append(float(np.sum(spikes >= delay_ms)) * 1000.0 / step_ms)
    finally:
        clamp.amp = 0.0
    return rates


def protocol_rates(cell: Cell, runs: int, duration_ms: int, seed: int,
                   protocol: ProtocolSettings | None = None) -> list[float]:
    """Output rate (Hz) of simulations 0..runs-1 of the NeuronIO generator (published NMDA
    ranges unless told otherwise) for this cell's segments."""
    rates = []
    for sim_id in range(runs):
        synapse, time_ms = input_spikes(cell.segments.type, cell.segments.length_um,
                                        duration_ms, seed, sim_id, protocol)
        rec = simulate(cell, synapse, time_ms, RunSettings(duration_ms=duration_ms))
        rates.append(len(rec.output_spike_times_ms) * 1000.0 / duration_ms)
    return rates


@dataclass(frozen=True)
class MeasureSettings:
    """What `measure` runs beyond rest and geometry (the costly parts)."""

    fi_amps_na: tuple[float, ...] = (0.4, 0.8, 1.2, 1.6)
    fi_step_ms: int = 500
    runs: int = 6
    duration_ms: int = 2000
    seed: int = 0


def measure(source: str, settings: MeasureSettings) -> dict[str, Any]:
    """Build the cell from `source` and measure everything a comparison shows (NEURON holds
    one mechanism library per process: call it in a process of its own per cell)."""
    cell = build_cell(source)
    rest = settle(cell)
    imp = impedance_at_rest(cell)
    kind = cell.segments.type
    rates = protocol_rates(cell, settings.runs, settings.duration_ms, settings.seed)
    return {
        "cell": cell.label,
        "source": str(source),
        "rest": {"soma_mv": rest.soma_mv, "nexus_mv": rest.nexus_mv},
        "impedance": {
            "input_mohm": imp.input_mohm,
            "transfer_basal_median_mohm": float(np.median(imp.transfer_mohm[kind == "basal"])),
            "transfer_apical_median_mohm": float(np.median(imp.transfer_mohm[kind == "apical"])),
        },
        "geometry": geometry(cell),
        "f_i": {"amps_na": list(settings.fi_amps_na), "step_ms": settings.fi_step_ms,
                "rate_hz": f_i_curve(cell, list(settings.fi_amps_na), settings.fi_step_ms)},
        "protocol": {"runs": settings.runs, "duration_ms": settings.duration_ms,
                     "seed": settings.seed, "rate_hz": rates,
                     "rate_hz_mean": float(np.mean(rates)) if rates else float("nan"),
                     "silent_fraction": float(np.mean(np.array(rates) == 0)) if rates
                     else float("nan")},
    }
