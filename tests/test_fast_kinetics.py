"""Fast kinetics (issue 19) against exact, and exact against the code before the rate tables.

Fast is a build of its own (`biophys_models.fixed_step`: cnexp's per-step exp() factors in
the rate tables or per instance, the tables on), so each kinetics runs in a process of its
own (`isolated_runs`). The tolerance (biophys_models.agreement): >= 98 % of output spikes
matched within 0.5 ms and a soma voltage RMSE below 0.5 mV, on the same inputs. The short
check uses inputs that make the cell fire within a second (the small default
configuration's ranges); the slow one several 6 s runs under the published NMDA ranges.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from neuron import h

from biophys_models.agreement import Agreement, agreement, matched_spikes
from biophys_models.cell import build_cell
from biophys_models.compile import BUILTIN_MOD_DIR, builtin_mod_files, compile_mechanisms
from biophys_models.fixed_step import fixed_step_form
from biophys_models.isolated_runs import Job, run_isolated
from biophys_models.protocol import ProtocolSettings, input_spikes
from biophys_models.simulator import TABLED_MECHANISMS, RunSettings, set_kinetics, simulate
from tests.cell_helpers import REPO, run_python
from tests.hay_template import untabled

# the small default configuration's ranges (params.yaml): the cell fires within a second
FIRING = ProtocolSettings(basal_exc_range=(400.0, 800.0), apical_exc_range=(400.0, 800.0),
                          basal_inh_offsets=(800.0, 0.0), apical_inh_offsets=(800.0, 0.0))
# cnexp equations the rewrite cannot take: the calcium balance (a constant term), events only
KEPT_AS_THEY_ARE = {"CaDynamics_E2", "NSVecStim"}


@pytest.fixture(scope="module")
def cell():
    return build_cell("l5pc")


def _agreements(duration_ms: int, seeds: tuple[int, ...], protocol: ProtocolSettings,
                fast_on_coreneuron: bool = False) -> list[Agreement]:
    """exact and fast on the same inputs, each build in its own process, both at once."""
    jobs = [Job("l5pc", "exact", False, duration_ms, seeds, protocol),
            Job("l5pc", "fast", fast_on_coreneuron, duration_ms, seeds, protocol)]
    exact, fast = run_isolated(jobs, parallel=True)
    return [agreement(e.recording, f.recording) for e, f in zip(exact, fast, strict=True)]


def test_spike_matching_is_one_to_one_within_the_window() -> None:
    assert matched_spikes([10.0, 20.0, 30.0], [10.4, 20.6, 30.0]) == 2
    assert matched_spikes([10.0, 10.3], [10.1]) == 1  # one partner each
    assert Agreement(0, 0, 0, 0.1).spike_match == 1.0
    assert Agreement(50, 51, 50, 0.1).spike_match == pytest.approx(50 / 51)  # one added
    assert not Agreement(100, 97, 97, 0.1).within_tolerance  # 3 % lost
    assert not Agreement(10, 10, 10, 0.6).within_tolerance


def test_kinetics_is_validated_and_held_to_the_cell(cell) -> None:
    with pytest.raises(ValueError, match="kinetics"):
        RunSettings(100, kinetics="tabled")
    with pytest.raises(ValueError, match="fixed-step only"):
        RunSettings(100, kinetics="fast", cvode=True)
    with pytest.raises(ValueError, match=r"build_cell\(\.\.\., kinetics='fast'\)"):
        simulate(cell, np.array([], int), np.array([]), RunSettings(10, kinetics="fast"))
    for mode, flag in (("fast", 1.0), ("exact", 0.0)):
        set_kinetics(mode)
        assert [getattr(h, f"usetable_{name}") for name in TABLED_MECHANISMS] == \
            [flag] * len(TABLED_MECHANISMS)


def test_fixed_step_form_rewrites_the_cnexp_relaxations_and_decays() -> None:
    forms = {f.stem: fixed_step_form(f.read_text()) for f in builtin_mod_files()}
    assert {name for name, form in forms.items() if form is None} == KEPT_AS_THEY_ARE
    na = forms["NaTs2_t"]
    assert "DERIVATIVE" not in na and "METHOD cnexp" not in na
    assert re.search(r"SOLVE states\s*\n", na)
    assert re.search(r"TABLE mInf, mTau, hInf, hTau, m_step, h_step DEPEND dt FROM", na)
    assert "m = m + m_step * (mInf - m)" in na and "m_step = 1 - exp(-dt / mTau)" in na
    # a synapse's taus are RANGE parameters: the factors are per instance, set in INITIAL
    initial = forms["NSGabaA"].split("INITIAL")[1].split("BREAKPOINT")[0]
    assert "A_step = 1 - exp(-dt / tau_r)" in initial
    assert "A = A + A_step * (0 - A)" in forms["NSGabaA"]
    # SK_E2's zTau is a PARAMETER, its rates() untabled (zInf of cai)
    assert "z_step = 1 - exp(-dt / zTau)" in forms["SK_E2"].split("INITIAL")[1]
    # anything else in the DERIVATIVE block, or a tau from a procedure no table can hold
    # (here: it reads a RANGE parameter), is kept; an untabled procedure of v gets a table
    text = (BUILTIN_MOD_DIR / "Im.mod").read_text()
    assert fixed_step_form(text.replace("m' = (mInf - m) / mTau", "m' = (mInf - m) / mTau^2")) \
        is None
    untabled_im = re.sub(r"^\s*TABLE .*\n", "", text, flags=re.M)
    assert "TABLE mInf, mTau, m_step DEPEND dt FROM" in fixed_step_form(untabled_im)
    assert fixed_step_form(untabled_im.replace("mTau = 1 / (a + b) / qt",
                                               "mTau = 1 / (a + b) / qt / gImbar")) is None


def test_fast_build_is_a_library_of_its_own(tmp_path: Path) -> None:
    files = [BUILTIN_MOD_DIR / "CaDynamics_E2.mod", BUILTIN_MOD_DIR / "SKv3_1.mod"]
    exact = compile_mechanisms(files, cache_root=tmp_path)
    fast = compile_mechanisms(files, kinetics="fast", cache_root=tmp_path)
    assert exact != fast
    meta = json.loads((fast / "build.json").read_text())
    assert meta["kinetics"] == "fast" and meta["fixed_step_form"] == ["SKv3_1.mod"]
    assert "PROCEDURE states()" in (fast / "mod" / "SKv3_1.mod").read_text()
    assert (exact / "mod" / "SKv3_1.mod").read_text() == files[1].read_text()
    with pytest.raises(ValueError, match="kinetics"):
        compile_mechanisms(files, kinetics="tabled", cache_root=tmp_path)


def test_fast_matches_exact_within_tolerance_short() -> None:
    (result,) = _agreements(1000, (0,), FIRING)
    assert result.reference_spikes > 0  # the check is not vacuous
    assert result.within_tolerance, result


def test_exact_mode_is_bit_identical_to_the_code_without_tables(cell, tmp_path: Path) -> None:
    """The .mod files with their TABLE lines removed and the Mg block's exp() inlined again
    (the code before issue 19, up to comments) compiled in a fresh process."""
    old = tmp_path / "mods"
    old.mkdir()
    for f in builtin_mod_files():
        (old / f.name).write_text(untabled(f.read_text()))
    out = tmp_path / "old.npz"
    seg = cell.segments
    syn, t = input_spikes(seg.type, seg.length_um, 300, 5, 0, FIRING)
    np.savez(tmp_path / "inputs.npz", syn=syn, t=t)
    run_python(f"""
import json
from pathlib import Path
import numpy as np
import biophys_models.compile as c
files = sorted(Path({str(old)!r}).glob("*.mod"))
c.builtin_mod_files = lambda include_channels=True: [
    f for f in files if include_channels or f.stem in c.SYNAPSE_MECHANISMS]
from biophys_models.cell import build_cell
from biophys_models.simulator import RunSettings, simulate
cell = build_cell("l5pc")
inp = np.load({str(tmp_path / "inputs.npz")!r})
rec = simulate(cell, inp["syn"], inp["t"], RunSettings(300))
np.savez({str(out)!r}, soma=rec.soma_voltage_mv, nexus=rec.nexus_voltage_mv)
print(json.dumps({{"ok": True}}))
""")
    old_rec = np.load(out)
    new = simulate(cell, syn, t, RunSettings(300, kinetics="exact"))
    np.testing.assert_array_equal(new.soma_voltage_mv, old_rec["soma"])
    np.testing.assert_array_equal(new.nexus_voltage_mv, old_rec["nexus"])


def test_a_modeldb_style_template_spec_runs_fast_within_tolerance(tmp_path: Path) -> None:
    """The l5pc as ModelDB's Hay folder has it (tests/hay_template: a hoc template and .mod
    files without TABLEs), written by its documented command: the fast build tabulates the
    rates itself (rate_tables) and runs within the tolerance of the exact build, and the exact
    build is the same cell as the reconstruction spec of its SWC with the built-in biophysics
    (bit-identical soma voltage)."""
    subprocess.run([sys.executable, "-m", "tests.hay_template", str(tmp_path)], cwd=REPO,
                   check=True, capture_output=True)
    (tmp_path / "swc.yaml").write_text("name: swc_spec\nmorphology: cell.swc\n")
    jobs = [Job(str(tmp_path / spec), kinetics, False, 1000, (0,), FIRING)
            for spec, kinetics in (("spec.yaml", "exact"), ("spec.yaml", "fast"),
                                   ("swc.yaml", "exact"))]
    (exact,), (fast,), (builtin,) = run_isolated(jobs, parallel=True)
    result = agreement(exact.recording, fast.recording)
    assert result.reference_spikes > 0
    assert result.within_tolerance, result
    np.testing.assert_array_equal(exact.recording.soma_voltage_mv,
                                  builtin.recording.soma_voltage_mv)
    mods = sorted((tmp_path / "mods").glob("*.mod"))
    assert not any("TABLE" in f.read_text() for f in mods)
    library = compile_mechanisms([*mods, *builtin_mod_files(include_channels=False)],
                                 kinetics="fast")
    meta = json.loads((library / "build.json").read_text())
    assert set(meta["fixed_step_form"]) >= {f.name for f in mods} - {
        f"{name}.mod" for name in KEPT_AS_THEY_ARE}


@pytest.mark.slow
def test_fast_matches_exact_within_tolerance_published_ranges() -> None:
    """4 x 6 s under the published NMDA ranges (ProtocolSettings' defaults); fast on
    CoreNEURON, which runs the same fixed-step forms (the default run's NEURON gives the
    same trace: tests/test_simulator.py)."""
    results = _agreements(6000, (0, 1, 2, 3), ProtocolSettings(), fast_on_coreneuron=True)
    for result in results:
        assert result.within_tolerance, result
