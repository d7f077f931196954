"""User cells from a YAML spec: a hoc template folder the test writes, and bad input.

NEURON loads one mechanism library per process, and a spec brings its own .mod files,
so every build here runs in one fresh Python process (see `_build_all`).
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from biophys_models.cell_spec import load_cell_spec
from biophys_models.errors import CellError
from tests.cell_helpers import run_python

TINY_MOD = """\
NEURON {
    SUFFIX tinyleak
    NONSPECIFIC_CURRENT i
    RANGE g, e
}
PARAMETER {
    g = 1e-5 (S/cm2)
    e = -70 (mV)
}
ASSIGNED {
    v (mV)
    i (mA/cm2)
}
BREAKPOINT {
    i = g * (v - e)
}
"""

BROKEN_MOD = TINY_MOD.replace("SUFFIX tinyleak", "SUFFIX brokenleak").replace(
    "i = g * (v - e)", "i = g * (v - e"
)

BIOPHYS_HOC = """\
// loaded before the template: the template calls this procedure
proc tiny_biophysics() {
    forsec $o1.somatic { insert pas  insert tinyleak  g_tinyleak = 2e-5 }
    forsec $o1.basal { insert pas  nseg = 3 }
    forsec $o1.apical { insert pas  nseg = 5 }
}
"""

TEMPLATE_HOC = """\
// a cell template in the style of published models: Import3d creates the sections and
// fills the SectionLists somatic, axonal, basal, apical and all
begintemplate TinyCell
public soma, dend, apic, axon, somatic, axonal, basal, apical, all
external tiny_biophysics
objref somatic, axonal, basal, apical, all, this
create soma[1], dend[1], apic[1], axon[1]

proc init() { localobj reader, gui
    somatic = new SectionList()
    axonal = new SectionList()
    basal = new SectionList()
    apical = new SectionList()
    all = new SectionList()
    reader = new Import3d_SWC_read()
    reader.input($s1)
    gui = new Import3d_GUI(reader, 0)
    gui.instantiate(this)
    tiny_biophysics(this)
}
endtemplate TinyCell
"""

SWC = """\
1 1 0 0 0 8 -1
2 1 0 -8 0 8 1
3 1 0 8 0 8 1
4 3 -8 0 0 1 1
5 3 -80 0 0 0.8 4
6 3 8 0 0 1 1
7 3 90 -20 0 0.8 6
8 4 0 8 0 1.5 1
9 4 0 300 0 1.2 8
10 4 40 420 0 0.8 9
11 4 -40 420 0 0.8 9
12 2 0 -8 0 0.5 1
13 2 0 -100 0 0.5 12
"""


def _spec(folder: Path, name: str, **overrides: object) -> Path:
    spec = {
        "name": "tiny",
        "mechanisms": "mods/",
        "load": ["biophys.hoc"],
        "template": "TinyCell.hoc",
        "template_name": "TinyCell",
        "template_args": ["morphologies/tiny.swc"],
        "section_lists": {"soma": "somatic", "basal": "basal", "apical": "apical"},
    }
    spec.update(overrides)
    path = folder / f"{name}.yaml"
    path.write_text(json.dumps(spec))  # JSON is YAML
    return path


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny_model")
    (folder / "mods").mkdir()
    (folder / "mods" / "tinyleak.mod").write_text(TINY_MOD)
    (folder / "mods_bad").mkdir()
    (folder / "mods_bad" / "brokenleak.mod").write_text(BROKEN_MOD)
    (folder / "morphologies").mkdir()
    (folder / "morphologies" / "tiny.swc").write_text(SWC)
    zero = SWC.replace("4 3 -8 0 0 1 1", "4 3 -8 0 0 0 1").replace(
        "5 3 -80 0 0 0.8 4", "5 3 -80 0 0 0 4")
    (folder / "morphologies" / "zero.swc").write_text(zero)
    (folder / "biophys.hoc").write_text(BIOPHYS_HOC)
    (folder / "TinyCell.hoc").write_text(TEMPLATE_HOC)
    return folder


BUILD_ALL = """\
import json, sys
import numpy as np
from biophys_models.cell import build_cell
from biophys_models.errors import CellError
from biophys_models.simulator import RunSettings, simulate
out = {}
cell = build_cell(sys.argv[1])
syn = np.array([0, cell.num_exc - 1, cell.num_exc])
t = np.array([5.0, 5.0, 6.0])
rec = simulate(cell, syn, t, RunSettings(duration_ms=40, record_dendrites=True))
out["good"] = {
    "name": cell.name, "num_exc": cell.num_exc, "num_inh": cell.num_inh,
    "types": cell.segments.type.tolist(), "sections": cell.segments.section.tolist(),
    "nseg": [s.nseg for s in cell.sections.dendrites],
    "leak": cell.soma(0.5).tinyleak.g, "shape": list(rec.dendritic_voltage_mv.shape),
    "depolarised": float(rec.dendritic_voltage_mv[0].max()),
    "nexus_section": cell.nexus.section,
}
for path in sys.argv[2:]:
    try:
        build_cell(path)
        out[path] = None
    except CellError as err:
        out[path] = str(err)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def results(model_folder: Path) -> dict:
    bad = {
        "missing": _spec(model_folder, "missing", template_args=["morphologies/absent.swc"]),
        "template": _spec(model_folder, "wrong_template", template_name="NoSuchCell"),
        "seclist": _spec(model_folder, "wrong_list",
                         section_lists={"soma": "somatic", "basal": "basal",
                                        "apical": "apicals"}),
        "mod": _spec(model_folder, "bad_mod", mechanisms="mods_bad/"),
        "zero": _spec(model_folder, "zero", template_args=["morphologies/zero.swc"]),
    }
    good = _spec(model_folder, "good")
    code = (f"import sys; sys.argv = {[ 'x', str(good), *map(str, bad.values())]!r}\n"
            + BUILD_ALL)
    out = run_python(code)
    return {"good": out["good"], **{k: out[str(v)] for k, v in bad.items()},
            "paths": {k: str(v) for k, v in bad.items()}}


def test_template_spec_builds_with_the_neuronio_synapse_layout(results):
    good = results["good"]
    # 2 basal sections x nseg 3, 3 apical sections x nseg 5, basal first
    assert good["nseg"] == [3, 3, 5, 5, 5]
    assert good["types"] == ["basal"] * 6 + ["apical"] * 15
    assert good["sections"] == [0] * 3 + [1] * 3 + [2] * 5 + [3] * 5 + [4] * 5
    assert good["num_exc"] == good["num_inh"] == 21
    assert good["leak"] == pytest.approx(2e-5)  # the spec's own mechanism and hoc ran
    assert good["shape"] == [21, 40]
    assert good["depolarised"] > -69.8  # input 0 reached segment 0 (rest: -70 mV)
    assert good["nexus_section"] == 2  # the apical root splits into two equal branches


@pytest.mark.parametrize("case, message", [
    ("missing", r"template_args file 'morphologies/absent.swc' not found"),
    ("template", r"TinyCell.hoc defines no template named 'NoSuchCell'"),
    ("seclist", r"has no SectionList 'apicals'"),
    ("mod", r"brokenleak.mod"),
    ("zero", r"section dend\[0\] has a zero diameter"),
])
def test_bad_spec_gives_one_line_naming_the_file(results, case: str, message: str):
    err = results[case]
    assert err is not None, f"{case}: no CellError"
    assert "\n" not in err
    assert re.search(message, err), err
    if case != "mod":
        assert err.startswith(results["paths"][case])


def test_spec_validation_without_neuron(tmp_path: Path):
    path = tmp_path / "spec.yaml"
    path.write_text("name: x\ntemplate: t.hoc\n")
    with pytest.raises(CellError, match=r"spec.yaml: 'template_name' is required"):
        load_cell_spec(path)
    path.write_text("name: x\nmorphology: cell.asc\ncolour: red\n")
    with pytest.raises(CellError, match=r"unknown key\(s\) \['colour'\]"):
        load_cell_spec(path)
    path.write_text("name: [unclosed\n")
    with pytest.raises(CellError, match="not valid YAML"):
        load_cell_spec(path)
    (tmp_path / "cell.asc").write_text("")
    path.write_text("name: x\nmorphology: cell.asc\n")
    assert load_cell_spec(path).morphology == (tmp_path / "cell.asc").resolve()
    path.write_text(textwrap.dedent("""\
        name: x
        template: t.hoc
        template_name: T
        section_lists: {soma: s, basal: b, apical: a}
        """))
    with pytest.raises(CellError, match="template file 't.hoc' not found"):
        load_cell_spec(path)
