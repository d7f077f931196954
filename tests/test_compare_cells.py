"""`neurosurrogate compare-cells`: the built-in cell against an SWC the test writes of its
own geometry, run as a user runs it (short runs: the figures, not the cell, are checked)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biophys_models.morphology import generate_l5pc
from tests.cell_helpers import neurosurrogate

SHORT = ("--fi-amps", "0.8,1.6", "--fi-step-ms", "100", "--runs", "1", "--duration-ms", "200")


@pytest.fixture(scope="module")
def compared(tmp_path_factory) -> tuple[Path, str, dict]:
    tmp = tmp_path_factory.mktemp("compare")
    swc = tmp / "twin.swc"
    generate_l5pc().write_swc(swc)
    proc = neurosurrogate("compare-cells", "l5pc", swc, "--out", tmp / "out", *SHORT)
    assert proc.returncode == 0, proc.stderr
    return tmp / "out", proc.stdout, json.loads((tmp / "out" / "compare.json").read_text())


def test_it_prints_and_writes_the_table_side_by_side(compared):
    out, stdout, record = compared
    table = (out / "compare.md").read_text()
    assert stdout == table
    assert table.splitlines()[0] == "| figure | l5pc | twin |"
    for label in ("soma rest (mV)", "input resistance at rest (MOhm)",
                  "median transfer impedance, apical (MOhm)", "apical segments 685-885 um",
                  "nexus distance (um)", "f-I: 1.6 nA for 100 ms (Hz)",
                  "NeuronIO inputs, 1 x 200 ms, seed 0: rate (Hz)"):
        assert any(line.startswith(f"| {label}") for line in table.splitlines()), label
    assert record["settings"] == {"fi_amps_na": [0.8, 1.6], "fi_step_ms": 100, "runs": 1,
                                  "duration_ms": 200, "seed": 0}


def test_the_same_geometry_read_back_measures_the_same(compared):
    _, _, record = compared
    ours, swc = record["cells"]
    assert ours["geometry"]["basal"]["sections"] == swc["geometry"]["basal"]["sections"] == 84
    assert ours["geometry"]["apical"]["tips"] == swc["geometry"]["apical"]["tips"] == 55
    assert ours["geometry"]["segments"]["apical"] == 377
    assert abs(ours["rest"]["soma_mv"] - swc["rest"]["soma_mv"]) < 0.5
    # Import3d starts soma children at the soma's centre: ~9 um more root each, and the
    # trunk's 7.2 um origin moves with it
    for key in ("input_mohm", "transfer_basal_median_mohm", "transfer_apical_median_mohm"):
        assert swc["impedance"][key] == pytest.approx(ours["impedance"][key], rel=0.10), key
    assert ours["f_i"]["rate_hz"][1] > ours["f_i"]["rate_hz"][0] > 0


def test_a_missing_cell_is_one_line_and_writes_nothing(tmp_path: Path):
    proc = neurosurrogate("compare-cells", "l5pc", tmp_path / "nope.swc", "--out",
                          tmp_path / "out", *SHORT)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "nope.swc" in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()
