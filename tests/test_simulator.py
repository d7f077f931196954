"""The one NEURON runner: outputs, input routing, re-initialisation, integrators."""

from __future__ import annotations

import numpy as np
import pytest
from neuron import h

from biophys_models.cell import build_cell
from biophys_models.protocol import input_spikes
from biophys_models.recording import detect_spikes
from biophys_models.simulator import RunSettings, simulate
from tests.cell_helpers import NO_INPUT, run_python


@pytest.fixture(scope="module")
def cell():
    return build_cell("l5pc")


def test_detect_spikes_finds_local_maxima_above_threshold():
    t = np.arange(0, 20, 0.125)
    trace = -70 + 100 * np.exp(-((t - 5.0) ** 2) / 0.1) + 100 * np.exp(-((t - 12.5) ** 2) / 0.1)
    trace[(t > 15) & (t < 17)] = -30  # plateau below threshold: no spike
    assert detect_spikes(trace).tolist() == [5.0, 12.5]
    assert detect_spikes(trace, threshold_mv=35).size == 0  # peaks are at +30 mV
    assert detect_spikes(np.full(50, -20.0)).size == 0  # flat is not a maximum


def test_detect_spikes_counts_strict_maxima_only():
    """NeuronIO's rule on the 8 samples/ms trace: the sample before and the sample after are
    both lower, and the sample is above -25 mV; times are sample index / 8 ms."""
    trace = np.full(80, -70.0)
    trace[8:13] = [-40.0, 0.0, 20.0, 20.0, -10.0]  # flat top: two equal samples, no maximum
    trace[24:29] = [-40.0, 10.0, 0.0, 15.0, -30.0]  # double peak: two strict maxima
    trace[40:43] = [-40.0, -26.0, -40.0]  # a strict maximum below -25 mV
    trace[56:59] = [-40.0, -24.5, -40.0]  # ... and one just above
    trace[0], trace[-1] = 30.0, 30.0  # the first and last samples have one neighbour
    assert detect_spikes(trace).tolist() == [25 / 8, 27 / 8, 57 / 8]
    assert detect_spikes(trace).dtype == np.float32
    # a flat top stays no spike however wide, and a single higher sample on it is one
    plateau = np.full(20, -70.0)
    plateau[5:15] = 5.0
    assert detect_spikes(plateau).size == 0
    plateau[9] = 6.0
    assert detect_spikes(plateau).tolist() == [9 / 8]
    assert detect_spikes(np.array([-70.0, 0.0])).size == 0


def test_recording_shapes_and_dtypes(cell):
    syn, t = input_spikes(cell.segments.type, cell.segments.length_um, 50, 3, 0)
    rec = simulate(cell, syn, t, RunSettings(duration_ms=50, record_dendrites=True))
    assert rec.soma_voltage_mv.dtype == np.float32 and rec.soma_voltage_mv.shape == (50,)
    assert rec.nexus_voltage_mv.dtype == np.float32 and rec.nexus_voltage_mv.shape == (50,)
    assert rec.dendritic_voltage_mv.dtype == np.float16
    assert rec.dendritic_voltage_mv.shape == (639, 50)
    assert rec.output_spike_times_ms.dtype == np.float32
    assert rec.soma_voltage_mv[0] == pytest.approx(-76.0)
    # the nexus trace is the nexus segment's row of the dendritic traces
    np.testing.assert_allclose(rec.dendritic_voltage_mv[cell.nexus.segment],
                               rec.nexus_voltage_mv, atol=0.05)
    rec2 = simulate(cell, syn, t, RunSettings(duration_ms=50))
    assert rec2.dendritic_voltage_mv is None


def test_input_k_and_num_exc_plus_k_act_on_segment_k(cell):
    k = 20  # a basal segment far from the apical tuft
    far = len(cell.segments) - 1
    base = simulate(cell, *NO_INPUT, RunSettings(duration_ms=40, record_dendrites=True))
    times = np.full(5, 20.0)
    exc = simulate(cell, np.full(5, k), times, RunSettings(40, record_dendrites=True))
    # GABA_A reverses at -80 mV, about rest: it shows as shunting of a coincident EPSP
    both = simulate(cell, np.r_[np.full(5, k), np.full(5, cell.num_exc + k)], np.r_[times, times],
                    RunSettings(40, record_dendrites=True))
    d_exc = exc.dendritic_voltage_mv.astype(float) - base.dendritic_voltage_mv
    d_both = both.dendritic_voltage_mv.astype(float) - base.dendritic_voltage_mv
    assert d_exc[k, :20].max() == 0 and d_exc[k, 21:25].max() > 5
    assert d_exc[k].max() > 5 * d_exc[far].max()
    assert d_both[k].max() < d_exc[k].max() - 2


def test_same_inputs_give_bit_identical_traces_in_one_process_and_in_a_fresh_one(cell):
    syn, t = input_spikes(cell.segments.type, cell.segments.length_um, 200, 11, 0)
    settings = RunSettings(duration_ms=200)
    first = simulate(cell, syn, t, settings)
    other_syn, other_t = input_spikes(cell.segments.type, cell.segments.length_um, 150, 12, 0)
    simulate(cell, other_syn, other_t, RunSettings(duration_ms=150, cvode=True))
    ic = h.IClamp(cell.soma(0.5))
    ic.delay, ic.dur, ic.amp = 0, 100, 2.0
    simulate(cell, *NO_INPUT, RunSettings(duration_ms=100))  # leaves spiking, Ca, SK behind
    del ic
    again = simulate(cell, syn, t, settings)
    assert np.array_equal(first.soma_voltage_mv, again.soma_voltage_mv)
    assert np.array_equal(first.nexus_voltage_mv, again.nexus_voltage_mv)
    assert np.array_equal(first.output_spike_times_ms, again.output_spike_times_ms)
    fresh = run_python(
        "import json\n"
        "from biophys_models.cell import build_cell\n"
        "from biophys_models.protocol import input_spikes\n"
        "from biophys_models.simulator import RunSettings, simulate\n"
        "c = build_cell('l5pc')\n"
        "s, t = input_spikes(c.segments.type, c.segments.length_um, 200, 11, 0)\n"
        "r = simulate(c, s, t, RunSettings(duration_ms=200))\n"
        "print(json.dumps({'soma': r.soma_voltage_mv.tobytes().hex(),"
        " 'nexus': r.nexus_voltage_mv.tobytes().hex()}))\n")
    assert fresh["soma"] == first.soma_voltage_mv.tobytes().hex()
    assert fresh["nexus"] == first.nexus_voltage_mv.tobytes().hex()


def test_variable_step_agrees_with_fixed_step(cell):
    ic = h.IClamp(cell.soma(0.5))
    ic.delay, ic.dur, ic.amp = 20, 60, 1.0
    fixed = simulate(cell, *NO_INPUT, RunSettings(duration_ms=100))
    cvode = simulate(cell, *NO_INPUT, RunSettings(duration_ms=100, cvode=True))
    del ic
    assert len(fixed.output_spike_times_ms) >= 2
    # CVode's error control (atol 1e-3) shifts later spikes by up to ~1 ms
    assert len(cvode.output_spike_times_ms) == len(fixed.output_spike_times_ms)
    np.testing.assert_allclose(cvode.output_spike_times_ms, fixed.output_spike_times_ms,
                               atol=1.5)
    assert abs(cvode.output_spike_times_ms[0] - fixed.output_spike_times_ms[0]) <= 0.25
    quiet = np.abs(fixed.soma_voltage_mv - cvode.soma_voltage_mv)[:20]
    assert quiet.max() < 0.5


def test_bad_inputs_are_refused(cell):
    s = RunSettings(duration_ms=10)
    with pytest.raises(ValueError, match="synapse indices"):
        simulate(cell, np.array([1278]), np.array([1.0]), s)
    with pytest.raises(ValueError, match="one length"):
        simulate(cell, np.array([1, 2]), np.array([1.0]), s)
    with pytest.raises(ValueError, match="finite"):
        simulate(cell, np.array([1]), np.array([np.nan]), s)
    with pytest.raises(ValueError, match="integers"):
        simulate(cell, np.array([1.5]), np.array([1.0]), s)
    with pytest.raises(ValueError, match="whole number"):
        RunSettings(duration_ms=10.5)
    with pytest.raises(ValueError, match="dt must divide"):
        RunSettings(duration_ms=10, dt=0.1)
    with pytest.raises(ValueError, match="needs a cell built"):
        simulate(cell, *NO_INPUT, RunSettings(duration_ms=10, coreneuron=True))


@pytest.mark.parametrize("kinetics", ["exact", "fast"])
def test_coreneuron_equals_fixed_step(kinetics: str):
    """CoreNEURON runs the same build, fast kinetics' fixed-step forms and tables included."""
    out = run_python(
        f"kinetics = {kinetics!r}\n"
        "import json\n"
        "import numpy as np\n"
        "from neuron import h\n"
        "from biophys_models.cell import build_cell\n"
        "from biophys_models.protocol import input_spikes\n"
        "from biophys_models.simulator import RunSettings, simulate\n"
        "c = build_cell('l5pc', coreneuron=True, kinetics=kinetics)\n"
        "s, t = input_spikes(c.segments.type, c.segments.length_um, 120, 5, 0)\n"
        "ic = h.IClamp(c.soma(0.5)); ic.delay = 20; ic.dur = 80; ic.amp = 1.0\n"
        "a = simulate(c, s, t, RunSettings(120, record_dendrites=True, kinetics=kinetics))\n"
        "b = simulate(c, s, t, RunSettings(120, coreneuron=True, record_dendrites=True,"
        " kinetics=kinetics))\n"
        "print(json.dumps({'spikes': a.output_spike_times_ms.tolist(),"
        " 'core_spikes': b.output_spike_times_ms.tolist(),"
        " 'soma': bool(np.array_equal(a.soma_voltage_mv, b.soma_voltage_mv)),"
        " 'nexus': bool(np.array_equal(a.nexus_voltage_mv, b.nexus_voltage_mv)),"
        " 'dend': bool(np.array_equal(a.dendritic_voltage_mv, b.dendritic_voltage_mv))}))\n")
    assert len(out["spikes"]) >= 2
    assert out["core_spikes"] == out["spikes"]
    assert out["soma"] and out["nexus"] and out["dend"]
