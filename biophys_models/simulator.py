"""`simulate`: the one NEURON runner, from (cell, input spikes, settings) to a Recording.

Each call re-initialises everything the result depends on (temperature, dt, integrator,
the event queue, every state via finitialize), so a cell built once per worker process
gives the same traces whatever ran before it in that process.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from neuron import h

from biophys_models.cell import Cell
from biophys_models.recording import FINE_DT_MS, Recording, detect_spikes, point_samples
from pipeline.protocol import checked_kinetics

CAI_ATOL_SCALE = 1e-3  # cai is ~1e-4 mM: scale CVode's absolute tolerance down for it
#: Mechanisms whose rate functions carry an NMODL TABLE (see their .mod files): 'fast'
#: switches their usetable_<name> GLOBAL on, 'exact' off (the unchanged expressions).
TABLED_MECHANISMS = ("Ca_HVA", "Ca_LVAst", "Ih", "Im", "K_Pst", "K_Tst", "NaTa_t", "NaTs2_t",
                     "Nap_Et2", "SKv3_1", "NSAmpaNmda")


@dataclass(frozen=True)
class RunSettings:
    """Integration settings of one run (defaults: NeuronIO's initial state, fixed step)."""

    duration_ms: int
    dt: float = 0.025
    cvode: bool = False
    coreneuron: bool = False
    record_dendrites: bool = False
    v_init_mv: float = -76.0
    celsius: float = 34.0
    cvode_atol: float = 1e-3
    kinetics: str = "exact"  # "fast": fixed-step forms and rate tables (issue 19; the cell's)

    def __post_init__(self) -> None:
        if int(self.duration_ms) != self.duration_ms or self.duration_ms < 1:
            raise ValueError(f"duration_ms must be a whole number of ms >= 1, "
                             f"got {self.duration_ms}")
        ratio = FINE_DT_MS / self.dt
        if not self.cvode and (self.dt <= 0 or abs(ratio - round(ratio)) > 1e-9):
            raise ValueError(f"dt must divide {FINE_DT_MS} ms (the spike-detection sampling "
                             f"interval), got {self.dt}")
        checked_kinetics(self.kinetics)
        if self.kinetics == "fast" and self.cvode:
            raise ValueError("kinetics 'fast' is fixed-step only (its mechanisms have no "
                             "DERIVATIVE block for CVode): use kinetics 'exact' with cvode")
        if self.cvode and self.coreneuron:
            raise ValueError("CoreNEURON runs fixed step only: set cvode=False")


def _checked_inputs(cell: Cell, synapse: np.ndarray,
                    time_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    syn = np.asarray(synapse)
    times = np.asarray(time_ms, dtype=np.float64)
    if syn.ndim != 1 or times.ndim != 1 or len(syn) != len(times):
        raise ValueError(f"synapse and time_ms must be 1-D arrays of one length, got shapes "
                         f"{syn.shape} and {times.shape}")
    if len(syn) and not np.issubdtype(syn.dtype, np.integer):
        raise ValueError(f"synapse must hold integers, got {syn.dtype}")
    n_inputs = cell.num_exc + cell.num_inh
    if len(syn) and (syn.min() < 0 or syn.max() >= n_inputs):
        raise ValueError(f"synapse indices must lie in 0..{n_inputs - 1} for cell {cell.name}")
    if not np.all(np.isfinite(times)) or (len(times) and times.min() < 0):
        raise ValueError("time_ms must be finite and >= 0")
    order = np.lexsort((times, syn))
    return syn[order].astype(np.int64), times[order]


def _configure(settings: RunSettings) -> None:
    h.load_file("stdrun.hoc")
    h.celsius = settings.celsius
    h.dt = settings.dt
    h.cvode.cache_efficient(1)
    h.cvode.active(1 if settings.cvode else 0)
    if settings.cvode:
        h.cvode.atol(settings.cvode_atol)
        h.cvode.atolscale("cai", CAI_ATOL_SCALE)
    set_kinetics(settings.kinetics)


def set_kinetics(kinetics: str) -> None:
    """Switch the rate tables of every loaded tabled mechanism on ('fast') or off ('exact').

    A GLOBAL of the process, set by every run from its settings, which `simulate` holds to
    the cell's library (fast: the fixed-step forms, whose tables also hold the per-dt
    factors; exact: the unchanged files). Mechanisms that are not loaded are skipped.
    """
    flag = 1.0 if checked_kinetics(kinetics) == "fast" else 0.0
    for name in TABLED_MECHANISMS:
        if h.name_declared(f"usetable_{name}"):
            setattr(h, f"usetable_{name}", flag)


class _Probe:
    """A voltage probe sampled every interval_ms. CoreNEURON records only every step (a
    Vector.record interval is ignored there), so it keeps every step and subsamples."""

    def __init__(self, ref: object, interval_ms: float, settings: RunSettings) -> None:
        self.vec = h.Vector()
        if settings.coreneuron:
            self.vec.record(ref)
            self.stride = round(interval_ms / settings.dt)
        else:
            self.vec.record(ref, interval_ms)
            self.stride = 1

    def samples(self) -> np.ndarray:
        return self.vec.as_numpy()[:: self.stride]


def simulate(cell: Cell, synapse: np.ndarray, time_ms: np.ndarray,
             settings: RunSettings) -> Recording:
    """Deliver input spike k at time_ms[k] to input synapse[k] and record the outputs.

    With coreneuron=True every probe keeps every step until the run ends: recording all
    dendrites then needs n_segments * duration/dt * 8 bytes (1.2 GB for 639 x 6 s).

    synapse: 0..num_exc-1 excitatory, num_exc..num_exc+num_inh-1 inhibitory, on the
    segments `pipeline.protocol.synapse_segment` gives. Spikes at or after duration_ms are
    not delivered.
    """
    syn, times = _checked_inputs(cell, synapse, time_ms)
    if settings.coreneuron and not cell.coreneuron:
        raise ValueError("RunSettings(coreneuron=True) needs a cell built with "
                         "build_cell(..., coreneuron=True)")
    if settings.kinetics != cell.kinetics:
        raise ValueError(f"kinetics {settings.kinetics!r} needs a cell built with "
                         f"build_cell(..., kinetics={settings.kinetics!r}); this one has "
                         f"{cell.kinetics!r} mechanisms")
    _configure(settings)
    duration = int(settings.duration_ms)
    soma_fine = _Probe(cell.soma(0.5)._ref_v, FINE_DT_MS, settings)
    nexus = _Probe(cell.nexus_segment._ref_v, 1.0, settings)
    dendrites = ([_Probe(seg._ref_v, 1.0, settings) for seg in cell.dendritic_segments]
                 if settings.record_dendrites else [])
    inputs = cell.synapses.inputs

    def queue_inputs() -> None:
        for k, t in zip(syn.tolist(), times.tolist(), strict=True):
            inputs[k].event(t)

    handler = h.FInitializeHandler(1, queue_inputs)
    pc = h.ParallelContext()
    pc.set_maxstep(10)
    try:
        if settings.coreneuron:
            from neuron import coreneuron

            coreneuron.enable = True
            coreneuron.verbose = 0
        h.finitialize(settings.v_init_mv)
        pc.psolve(duration)
    finally:
        if settings.coreneuron:
            coreneuron.enable = False
        del handler

    fine = soma_fine.samples()
    steps_per_ms = round(1.0 / FINE_DT_MS)
    spikes = detect_spikes(fine[: duration * steps_per_ms + 1])
    spikes = spikes[spikes < duration]
    dend = None
    if dendrites:
        dend = np.stack([point_samples(v.samples(), 1, duration) for v in dendrites])
        dend = dend.astype(np.float16)
    return Recording(
        soma_voltage_mv=point_samples(fine, steps_per_ms, duration).astype(np.float32),
        nexus_voltage_mv=point_samples(nexus.samples(), 1, duration).astype(np.float32),
        output_spike_times_ms=spikes,
        dendritic_voltage_mv=dend,
    )
