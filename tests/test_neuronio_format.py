"""The published pickle format: its exact form, the restricted unpickler, validation."""

from __future__ import annotations

import os
import pickle
import pickletools
from pathlib import Path

import numpy as np
import pytest

from pipeline.datasets.neuronio import (
    SIM_ID_STRIDE,
    batch_to_neuronio,
    dump_neuronio,
    load_neuronio,
    neuronio_to_batch,
)
from pipeline.errors import UserError
from tests.conftest import NUM_SEGMENTS, make_neuronio_file


def test_written_files_have_the_published_python2_form(tmp_path: Path) -> None:
    path = tmp_path / "x.p"
    make_neuronio_file(path, seed=5)
    ops = list(pickletools.genops(path.read_bytes()))
    assert ops[0][0].name == "PROTO" and ops[0][1] == 2
    globals_named = {arg for op, arg, _ in ops if op.name == "GLOBAL"}
    assert globals_named == {"numpy.core.multiarray _reconstruct", "numpy ndarray",
                             "numpy dtype", "numpy.core.multiarray scalar"}
    names = {op.name for op, _, _ in ops}
    assert "BINSTRING" in names or "SHORT_BINSTRING" in names  # Python 2 byte strings
    assert not names & {"BINUNICODE", "SHORT_BINUNICODE", "STACK_GLOBAL"}
    raw = load_neuronio(path)
    sim = raw["Results"]["listOfSingleSimulationDicts"][0]
    key, times = next(iter(sim["exInputSpikeTimes"].items()))
    assert isinstance(key, np.int64) and isinstance(times[0], np.int64)
    assert sim["somaVoltageLowRes"].dtype == np.float16
    assert set(raw["Params"]) >= {"allSegmentsType", "allSegmentsLength",
                                  "allSegments_DistFromSoma", "allSegments_SectionInd"}


def test_conversion_keeps_every_field(tmp_path: Path) -> None:
    path = tmp_path / "x.p"
    batch = make_neuronio_file(path, seed=6)
    got = neuronio_to_batch(load_neuronio(path), path)
    assert got.sim_id.tolist() == [6 * SIM_ID_STRIDE + i for i in range(3)]
    np.testing.assert_array_equal(got.input_sim, batch.input_sim)
    np.testing.assert_array_equal(got.input_synapse, batch.input_synapse)
    np.testing.assert_array_equal(got.input_time_ms, batch.input_time_ms)
    f16 = lambda a: a.astype(np.float16).astype(np.float32)  # noqa: E731 - published precision
    np.testing.assert_array_equal(got.soma_voltage_mv, f16(batch.soma_voltage_mv))
    np.testing.assert_array_equal(got.nexus_voltage_mv, f16(batch.nexus_voltage_mv))
    np.testing.assert_array_equal(got.dendritic_voltage_mv, batch.dendritic_voltage_mv)
    np.testing.assert_array_equal(got.output_sim, batch.output_sim)
    np.testing.assert_array_equal(got.output_time_ms, f16(batch.output_time_ms))
    assert list(got.segments.type) == list(batch.segments.type)
    np.testing.assert_array_equal(got.segments.length_um, batch.segments.length_um)
    np.testing.assert_array_equal(got.segments.section, batch.segments.section)
    assert got.info.num_exc == got.info.num_inh == NUM_SEGMENTS
    assert got.info.source == "neuronio"


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_its_payload_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "payload_ran"
    path = tmp_path / "evil.p"
    path.write_bytes(pickle.dumps({"Params": {}, "Results": _Payload(marker)}, protocol=2))
    with pytest.raises(UserError, match=r"refused global (posix|nt)\.system"):
        load_neuronio(path)
    assert not marker.exists()
    # The same file loaded without restriction would have run it: the test is not vacuous.
    pickle.loads(path.read_bytes())
    assert marker.exists()


@pytest.mark.parametrize("global_name", ["builtins eval", "numpy load", "__builtin__ open",
                                         "numpy.core.multiarray fromstring"])
def test_any_other_global_is_refused(tmp_path: Path, global_name: str) -> None:
    path = tmp_path / "g.p"
    module, name = global_name.split()
    path.write_bytes(b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"q\x00.")
    with pytest.raises(UserError, match=f"refused global {module}.{name}"):
        load_neuronio(path)


def test_truncated_and_wrong_structure(tmp_path: Path) -> None:
    good = tmp_path / "good.p"
    make_neuronio_file(good, seed=1)
    cut = tmp_path / "cut.p"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(UserError, match="cut.p: truncated or corrupt"):
        load_neuronio(cut)
    listed = tmp_path / "list.p"
    dump_neuronio([1, 2, 3], listed)
    with pytest.raises(UserError, match="list.p: not a NeuronIO file"):
        load_neuronio(listed)
    with pytest.raises(UserError, match="no 'Results'"):
        neuronio_to_batch({"Params": {}}, tmp_path / "x.p")


def _corrupt(tmp_path: Path, edit) -> dict:
    batch = make_neuronio_file(tmp_path / "base.p", seed=2, dendrites=False)
    raw = batch_to_neuronio(batch, random_seed=2)
    edit(raw["Results"]["listOfSingleSimulationDicts"][1], raw["Params"])
    return raw


@pytest.mark.parametrize("edit, message", [
    (lambda s, p: s["exInputSpikeTimes"].update({np.int64(NUM_SEGMENTS): [np.int64(3)]}),
     "segment index 12 outside"),
    (lambda s, p: s["inhInputSpikeTimes"].update({np.int64(0): [np.int64(300)]}),
     "spike time outside"),
    (lambda s, p: s.update(somaVoltageLowRes=s["somaVoltageLowRes"][:-1]),
     r"somaVoltageLowRes has shape \(299,\)"),
    (lambda s, p: s["somaVoltageLowRes"].__setitem__(5, np.nan), "NaN"),
    (lambda s, p: s.update(outputSpikeTimes=np.array([400.0], np.float16)),
     "output spike time outside"),
    (lambda s, p: p["allSegmentsType"].__setitem__(0, "axon"), "unknown segment types"),
])
def test_invalid_values_are_refused(tmp_path: Path, edit, message: str) -> None:
    raw = _corrupt(tmp_path, edit)
    with pytest.raises(UserError, match=message):
        neuronio_to_batch(raw, tmp_path / "bad.p")
