"""The NeuronIO paper's cell variants, built and run in NEURON: AMPA-only synapses, passive
dendrites, a scaled SK_E2 conductance and a shifted Ih (biophys_models.cell_variant)."""

from __future__ import annotations

import numpy as np
import pytest
from neuron import h

from biophys_models.biophysics import UNIFORM
from biophys_models.cell import build_cell
from biophys_models.cell_variant import CellVariant
from biophys_models.protocol import ProtocolSettings, input_spikes
from biophys_models.simulator import RunSettings, simulate
from pipeline.protocol import PROTOCOL_PRESETS
from tests.cell_helpers import NO_INPUT

AMPA_ONLY = CellVariant(synapse="ampa")
PASSIVE = CellVariant(dendrites="passive")


def _mechanisms(sec) -> set[str]:
    return set(sec.psection()["density_mechs"])


@pytest.fixture(scope="module")
def cells():
    return {"default": build_cell("l5pc"), "ampa": build_cell("l5pc", variant=AMPA_ONLY),
            "passive": build_cell("l5pc", variant=PASSIVE)}


def test_variants_are_checked_and_labelled():
    assert CellVariant().is_default and CellVariant().label() == ""
    assert CellVariant(synapse="ampa", sk_e2_factor=0.1, ih_vshift_mv=-5).label() == (
        "AMPA-only, SK_E2 x0.1, Ih shift -5 mV")
    for bad in ({"synapse": "nmda"}, {"dendrites": "frozen"}, {"sk_e2_factor": -1.0},
                {"ih_vshift_mv": float("nan")}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            CellVariant(**bad)


def _single_synapse_conductance(cell, segment: int) -> np.ndarray:
    """The total conductance (uS) of excitatory synapse `segment` after one event at 10 ms."""
    g = h.Vector().record(cell.synapses.excitatory[segment]._ref_g, 0.1)
    simulate(cell, np.array([segment]), np.array([10.0]), RunSettings(duration_ms=120))
    return g.as_numpy().copy()


def test_ampa_only_single_synapse_response_has_no_nmda_component(cells):
    segment = 100  # a basal segment
    both = _single_synapse_conductance(cells["default"], segment)
    ampa = _single_synapse_conductance(cells["ampa"], segment)
    at = {ms: round(ms / 0.1) for ms in (10, 40, 110)}
    assert ampa.max() == pytest.approx(0.0004, rel=0.02)  # the AMPA peak, 0.4 nS
    # 30 ms after the event: AMPA (decay 3 ms) is gone, the unblocked-at-rest NMDA part of
    # the default synapse (decay 70 ms) is not; 100 ms after, both have nearly decayed.
    assert ampa[at[40]] < 1e-4 * ampa.max()
    assert both[at[40]] > 20 * ampa[at[40]] + 1e-7
    assert {syn.gmax_NMDA for syn in cells["ampa"].synapses.excitatory} == {0.0}
    assert {syn.gmax_AMPA for syn in cells["ampa"].synapses.excitatory} == {0.0004}
    assert ampa[: at[10]].max() == 0.0


def test_ampa_only_cell_fires_under_the_ampa_ranges(cells):
    cell = cells["ampa"]
    settings = ProtocolSettings(**PROTOCOL_PRESETS["ampa"])
    seg = cell.segments
    sim = 2  # of seed 0, a simulation of small sigma (34 ms): its rates swing
    synapse, time_ms = input_spikes(seg.type, seg.length_um, 1500, 0, sim, settings)
    rec = simulate(cell, synapse, time_ms, RunSettings(duration_ms=1500))
    assert len(rec.output_spike_times_ms) > 0  # rare: see the slow test for its rate


def test_passive_cell_has_no_active_conductance_on_its_dendrites(cells):
    passive, default = cells["passive"], cells["default"]
    assert all(_mechanisms(sec) == {"pas"} for sec in passive.sections.dendrites)
    assert all("Ih" in _mechanisms(sec) for sec in default.sections.dendrites)
    for kind in ("soma", "axon"):  # untouched
        for a, b in zip(passive.sections.by_kind()[kind], default.sections.by_kind()[kind],
                        strict=True):
            assert _mechanisms(a) == _mechanisms(b) == {"pas", *UNIFORM[kind]}
    # it still fires: a strong synchronous volley on the basal tree reaches threshold
    n_basal = int((passive.segments.type == "basal").sum())
    synapse = np.repeat(np.arange(n_basal), 4)
    time_ms = np.tile(np.arange(4.0), n_basal) + 20.0
    rec = simulate(passive, synapse, time_ms, RunSettings(duration_ms=80))
    assert len(rec.output_spike_times_ms) > 0


def test_sk_factor_scales_soma_axon_and_apical_sk_only():
    cell = build_cell("l5pc", variant=CellVariant(sk_e2_factor=0.1))
    for kind in ("soma", "axon", "apical"):
        expected = 0.1 * UNIFORM[kind]["SK_E2"]["gSK_E2bar"]
        values = [seg.gSK_E2bar_SK_E2 for sec in cell.sections.by_kind()[kind] for seg in sec]
        assert values == pytest.approx([expected] * len(values))
    assert not any(h.ismembrane("SK_E2", sec=sec) for sec in cell.sections.basal)


def _rest_mv(cell) -> float:
    return float(simulate(cell, *NO_INPUT, RunSettings(duration_ms=400)).soma_voltage_mv[-1])


def test_ih_shift_moves_the_activation_and_the_rest(cells):
    shifted = build_cell("l5pc", variant=CellVariant(ih_vshift_mv=10.0))
    assert {seg.vshift_Ih for sec in shifted.sections.all() for seg in sec
            if h.ismembrane("Ih", sec=sec)} == {10.0}
    # more Ih open at rest (activation moved towards depolarised potentials): a higher rest
    assert _rest_mv(shifted) > _rest_mv(cells["default"]) + 0.5
