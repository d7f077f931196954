"""rate_tables: a TABLE for a rate procedure written without one (ModelDB's channel files),
checked on the text; tests/test_fast_kinetics.py compiles and runs such files."""

from __future__ import annotations

import re

import numpy as np
import pytest

from biophys_models.compile import builtin_mod_files
from biophys_models.fixed_step import fixed_step_form
from biophys_models.rate_tables import VOLTAGE_TABLE, tabulated
from tests.cell_helpers import run_python
from tests.hay_template import modeldb_style

# a channel written as ModelDB's files are: no TABLE, rates() reading the mechanism's v, a
# guard that moves v off the rate's removable singularity, ASSIGNED intermediates, a GLOBAL
# parameter and celsius in the rates, a RANGE parameter outside them
MODELDB_NA = """\
NEURON {
    SUFFIX na_modeldb
    USEION na READ ena WRITE ina
    RANGE gbar, ina
    GLOBAL vhalf
}
PARAMETER {
    gbar = 0.00001 (S/cm2)
    vhalf = -32 (mV)
}
ASSIGNED {
    v (mV)
    ena (mV)
    ina (mA/cm2)
    celsius (degC)
    mInf
    mTau (ms)
    mAlpha
    mBeta
    hInf
    hTau (ms)
    hAlpha
    hBeta
}
STATE { m h }
BREAKPOINT {
    SOLVE states METHOD cnexp
    ina = gbar * m * m * m * h * (v - ena)
}
DERIVATIVE states {
    rates()
    m' = (mInf - m) / mTau
    h' = (hInf - h) / hTau
}
INITIAL {
    rates()
    m = mInf
    h = hInf
}
PROCEDURE rates() {
    LOCAL qt
    qt = 2.3^((celsius - 21) / 10)
    UNITSOFF
    if (v == vhalf) {
        v = v + 0.0001  : the rate's 0/0
    }
    mAlpha = (0.182 * (v - vhalf)) / (1 - (exp(-(v - vhalf) / 6)))
    mBeta = (0.124 * (vhalf - v)) / (1 - (exp(-(vhalf - v) / 6)))
    mInf = mAlpha / (mAlpha + mBeta)
    mTau = (1 / (mAlpha + mBeta)) / qt
    hAlpha = (-0.015 * (v + 60)) / (1 - (exp((v + 60) / 6)))
    hBeta = (-0.015 * (-v - 60)) / (1 - (exp((-v - 60) / 6)))
    hInf = hAlpha / (hAlpha + hBeta)
    hTau = (1 / (hAlpha + hBeta)) / qt
    UNITSON
}
"""


def test_a_modeldb_rates_procedure_gets_a_table_over_its_v() -> None:
    out = tabulated(MODELDB_NA, "rates")
    assert out is not None
    assert ("TABLE mAlpha, mBeta, mInf, mTau, hAlpha, hBeta, hInf, hTau DEPEND celsius, vhalf "
            f"{VOLTAGE_TABLE}") in out
    assert "PROCEDURE rates(v (mV)) {" in out
    assert re.findall(r"rates\((.*?)\)", out.split("PROCEDURE rates")[0]) == ["v", "v"]
    # the TABLE comes after the LOCAL line, before the first statement
    procedure = out.split("PROCEDURE rates")[1]
    assert procedure.index("LOCAL qt") < procedure.index("TABLE") < procedure.index("qt =")


def test_the_fixed_step_form_takes_the_new_table() -> None:
    form = fixed_step_form(MODELDB_NA)
    assert form is not None
    assert "hInf, hTau, m_step, h_step DEPEND dt, celsius, vhalf FROM" in form
    assert "m = m + m_step * (mInf - m)" in form and "METHOD cnexp" not in form


@pytest.mark.parametrize(("change", "why"), [
    (("mTau = (1 / (mAlpha + mBeta)) / qt", "mTau = (1 / (mAlpha + mBeta)) / qt / gbar"),
     "a RANGE parameter differs per instance"),
    (("qt = 2.3^((celsius - 21) / 10)", "qt = 2.3^((celsius - 21) / 10) * ena"),
     "an ion's potential is not v"),
    (("mInf = mAlpha / (mAlpha + mBeta)", "mInf = mAlpha / (mAlpha + mBeta) + m"),
     "a STATE"),
    (("    UNITSON\n", "    mInf = helper(v)\n    UNITSON\n"), "a procedure call"),
    (("    UNITSOFF\n", "    UNITSOFF\nVERBATIM\nENDVERBATIM\n"), "C code"),
])
def test_what_is_not_a_function_of_v_gets_no_table(change: tuple[str, str], why: str) -> None:
    assert tabulated(MODELDB_NA.replace(*change), "rates") is None, why
    assert fixed_step_form(MODELDB_NA.replace(*change)) is None, why


def test_a_rates_procedure_of_a_concentration_gets_no_table() -> None:
    sk = next(f for f in builtin_mod_files() if f.stem == "SK_E2").read_text()
    assert tabulated(sk, "rates") is None  # rates(cai): a table over mV is no table of it
    one_arg = MODELDB_NA.replace("PROCEDURE rates()", "PROCEDURE rates(x)").replace(
        "rates()", "rates(cai)")
    assert tabulated(one_arg, "rates") is None


def test_every_builtin_channel_in_modeldb_form_takes_the_fixed_step_form() -> None:
    """The tables the built-in files carry, removed, come back from rate_tables: the same
    outputs, over the same range, and a FUNCTION called by the rates (linoid) is pure."""
    for f in builtin_mod_files():
        original = fixed_step_form(f.read_text())
        rebuilt = fixed_step_form(modeldb_style(f.read_text()))
        assert (original is None) == (rebuilt is None), f.stem
        if rebuilt is not None and "TABLE" in f.read_text() and f.stem != "NSAmpaNmda":
            table = re.search(r"TABLE ([\w, ]+?) DEPEND dt FROM", rebuilt)
            assert table is not None, f.stem
            expected = re.search(r"TABLE ([\w, ]+?) DEPEND dt FROM", original).group(1)
            assert set(table.group(1).split(", ")) == set(expected.split(", ")), f.stem


def test_nocmodl_compiles_the_tabulated_form_and_it_runs_as_the_original(tmp_path) -> None:
    """The ModelDB-style channel in both builds, each in a fresh process: the fast build has
    the table (usetable_na_modeldb exists) and its trace under a current step is the exact
    build's within the fast-kinetics tolerance (three current pulses, three spikes)."""
    mod = tmp_path / "na_modeldb.mod"
    mod.write_text(MODELDB_NA)
    runs = {kinetics: run_python(f"""
import json
from pathlib import Path
import numpy as np
from neuron import h
from biophys_models.compile import load_mechanisms
load_mechanisms([Path({str(mod)!r})], kinetics={kinetics!r})
h.load_file("stdrun.hoc")
soma = h.Section(name="soma")
soma.L = soma.diam = 20
soma.insert("hh")
soma.insert("na_modeldb")
soma(0.5).hh.gnabar = 0
soma(0.5).na_modeldb.gbar = 0.5
stims = [h.IClamp(soma(0.5)) for _ in range(3)]
for i, stim in enumerate(stims):
    stim.delay, stim.dur, stim.amp = 20 + 30 * i, 2, 2
v = h.Vector().record(soma(0.5)._ref_v)
h.celsius, h.dt = 34, 0.025
h.finitialize(-65)
h.continuerun(120)
print(json.dumps({{"v": list(v), "table": hasattr(h, "usetable_na_modeldb")}}))
""") for kinetics in ("exact", "fast")}
    assert (runs["exact"]["table"], runs["fast"]["table"]) == (False, True)
    exact, fast = (np.array(runs[k]["v"]) for k in ("exact", "fast"))
    spikes = [int(np.sum((x[1:] >= 0) & (x[:-1] < 0))) for x in (exact, fast)]
    assert spikes == [3, 3]
    assert np.sqrt(np.mean((exact - fast) ** 2)) < 0.5
