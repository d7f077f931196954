"""conductance_hint: the CONDUCTANCE hint of the fast build, checked on the text; the
fast-kinetics tests run the hinted builds against exact."""

from __future__ import annotations

import re

import pytest

from biophys_models.compile import BUILTIN_MOD_DIR, builtin_mod_files
from biophys_models.conductance_hint import conductance_hinted
from biophys_models.fixed_step import fast_form


def _hint(text: str | None) -> list[str]:
    return [] if text is None else re.findall(r"^\s*(CONDUCTANCE .*)$", text, re.M)


def test_every_builtin_current_gets_its_hint() -> None:
    hints = {f.stem: _hint(conductance_hinted(f.read_text())) for f in builtin_mod_files()}
    assert hints["NaTs2_t"] == ["CONDUCTANCE gNaTs2_t USEION na"]
    assert hints["Ih"] == ["CONDUCTANCE gIh"]  # a nonspecific current
    assert hints["NSGabaA"] == ["CONDUCTANCE g"]
    assert hints["NSAmpaNmda"] == ["CONDUCTANCE didv"]  # the Mg block: di/dv stated
    assert hints["CaDynamics_E2"] == hints["NSVecStim"] == []  # no current
    assert all(len(h) == 1 for name, h in hints.items()
               if name not in ("CaDynamics_E2", "NSVecStim"))
    # right after SOLVE, and once: the fast form applies it after the fixed-step rewrite
    text, applied = fast_form((BUILTIN_MOD_DIR / "Ca_HVA.mod").read_text())
    assert applied == ["fixed_step_form", "conductance_hint"]
    assert re.search(r"SOLVE states\n    CONDUCTANCE gCa_HVA USEION ca\n", text)
    assert conductance_hinted(text) is None


@pytest.mark.parametrize(("change", "why"), [
    (("ina = gNaTs2_t * (v - ena)", "ina = gNaTs2_t * (v - ena) * (v - ena)"),
     "not linear in v"),
    (("gNaTs2_t = gNaTs2_tbar * m * m * m * h", "gNaTs2_t = gNaTs2_tbar * m * m * m * h * v"),
     "g depends on v"),
    (("gNaTs2_t = gNaTs2_tbar * m * m * m * h", "gNaTs2_t = gNaTs2_tbar * ghk(m)"),
     "a function call"),
    (("USEION na READ ena WRITE ina", "USEION na READ ena WRITE ina\n    NONSPECIFIC_CURRENT il"),
     "two currents"),
])
def test_what_the_hint_would_get_wrong_is_left_alone(change: tuple[str, str], why: str) -> None:
    text = (BUILTIN_MOD_DIR / "NaTs2_t.mod").read_text()
    assert change[0] in text
    assert conductance_hinted(text.replace(*change)) is None, why
