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

from biophys_models.cell_spec import NexusSpec, load_cell_spec
from biophys_models.errors import CellError
from tests.cell_helpers import run_python
from tests.hay_template import IMPORT3D_INIT

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
    forsec $o1.apical { insert pas  insert tinyleak  nseg = 5 }
}
"""

TEMPLATE_HOC = f"""\
// a cell template in the style of published models: Import3d creates the sections and
// fills the SectionLists somatic, axonal, basal, apical and all
begintemplate TinyCell
public soma, dend, apic, axon, somatic, axonal, basal, apical, all
external tiny_biophysics
objref somatic, axonal, basal, apical, all, this
create soma[1], dend[1], apic[1], axon[1]

proc init() {{ localobj reader, gui
{IMPORT3D_INIT}    tiny_biophysics(this)
}}
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
from biophys_models.cell_variant import CellVariant
from biophys_models.errors import CellError
from biophys_models.cell_spec import load_cell_spec
from biophys_models.segments import find_nexus
from biophys_models.simulator import RunSettings, simulate
out = {}
cell = build_cell(sys.argv[1])
named = {}
for path in sys.argv[2:4]:  # specs that name their nexus, resolved on the built sections
    spec = load_cell_spec(path)
    try:
        nexus = find_nexus(cell.sections, cell.segments, spec.nexus, spec.path)
        named[path] = [nexus.section, nexus.segment, nexus.x]
    except CellError as err:
        named[path] = str(err)
syn = np.array([0, cell.num_exc - 1, cell.num_exc])
t = np.array([5.0, 5.0, 6.0])
rec = simulate(cell, syn, t, RunSettings(duration_ms=40, record_dendrites=True))
out["good"] = {
    "name": cell.name, "num_exc": cell.num_exc, "num_inh": cell.num_inh,
    "types": cell.segments.type.tolist(), "sections": cell.segments.section.tolist(),
    "nseg": [s.nseg for s in cell.sections.dendrites],
    "leak": cell.soma(0.5).tinyleak.g, "shape": list(rec.dendritic_voltage_mv.shape),
    "depolarised": float(rec.dendritic_voltage_mv[0].max()),
    "nexus_section": cell.nexus.section, "nexus_segment": cell.nexus.segment,
    "named": named,
}
built = build_cell(sys.argv[2]).nexus  # the spec naming apic[1](0.5), built whole
out["good"]["built_named"] = [built.section, built.segment, built.x]
passive = build_cell(sys.argv[1], variant=CellVariant(synapse="ampa", dendrites="passive"))
out["good"]["passive"] = {
    "label": passive.label, "nmda": sorted({s.gmax_NMDA for s in passive.synapses.excitatory}),
    "dendrites": sorted({m for s in passive.sections.dendrites
                         for m in s.psection()["density_mechs"]}),
    "soma": sorted(passive.sections.soma[0].psection()["density_mechs"])}
for name, variant in (("sk", CellVariant(sk_e2_factor=0.5)), ("ih", CellVariant(ih_vshift_mv=3))):
    try:
        build_cell(sys.argv[1], variant=variant)
        out["good"][name] = None
    except CellError as err:
        out["good"][name] = str(err)
for path in sys.argv[4:]:
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
        # build_cell itself resolves a named nexus (the first of these builds)
        "nexus": _spec(model_folder, "built_bad_nexus", nexus={"section": "apic[7]", "x": 0.9}),
        "missing": _spec(model_folder, "missing", template_args=["morphologies/absent.swc"]),
        "template": _spec(model_folder, "wrong_template", template_name="NoSuchCell"),
        "seclist": _spec(model_folder, "wrong_list",
                         section_lists={"soma": "somatic", "basal": "basal",
                                        "apical": "apicals"}),
        "mod": _spec(model_folder, "bad_mod", mechanisms="mods_bad/"),
        "zero": _spec(model_folder, "zero", template_args=["morphologies/zero.swc"]),
    }
    good = _spec(model_folder, "good")
    named = [_spec(model_folder, "named", nexus={"section": "apic[1]", "x": 0.5}),
             _spec(model_folder, "bad_nexus", nexus={"section": "apic[7]", "x": 0.9})]
    argv = ["x", str(good), *map(str, named), *map(str, bad.values())]
    code = f"import sys; sys.argv = {argv!r}\n" + BUILD_ALL
    out = run_python(code)
    return {"good": out["good"], **{k: out[str(v)] for k, v in bad.items()},
            "named": [out["good"]["named"][str(p)] for p in named],
            "paths": {k: str(v) for k, v in bad.items()}, "named_paths": list(map(str, named)),
            "good_path": str(good)}


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
    assert good["nexus_segment"] == 6 + 4  # x = 0.9 of its 5 segments: the last


def test_template_spec_takes_the_neuronio_variants(results):
    good = results["good"]
    assert good["passive"] == {"label": "tiny (AMPA-only, passive dendrites)", "nmda": [0.0],
                               "dendrites": ["pas"], "soma": ["pas", "tinyleak"]}
    # the template has neither SK_E2 nor Ih: asking to change them is one error naming it
    spec = results["good_path"]
    assert good["sk"] == f"{spec}: sk_e2_factor needs the SK_E2 mechanism on soma, axon or " \
                         "apical sections, and the cell has none"
    assert good["ih"] == f"{spec}: ih_vshift_mv needs the Ih mechanism, and the cell has none"


def test_template_spec_names_its_nexus(results):
    named, bad = results["named"]
    # apic[1] is the template's second apical section (section 3): x = 0.5 is its middle
    assert named == [3, 6 + 5 + 2, 0.5]
    assert results["good"]["built_named"] == named  # build_cell records the named nexus
    assert "\n" not in bad
    assert bad.startswith(results["named_paths"][1] + ": nexus section 'apic[7]' is not an "
                          "apical section of the cell (apical sections: apic[0] .. apic[2])"), bad


@pytest.mark.parametrize("case, message", [
    ("nexus", r"nexus section 'apic\[7\]' is not an apical section"),
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


def test_spec_nexus_key_is_validated_without_neuron(tmp_path: Path):
    (tmp_path / "cell.asc").write_text("")
    path = tmp_path / "spec.yaml"
    # flow style needs the name quoted ([ ] are YAML flow indicators); block style does not
    path.write_text("name: x\nmorphology: cell.asc\nnexus: {section: 'apic[50]', x: 0.9}\n")
    assert load_cell_spec(path).nexus == NexusSpec("apic[50]", 0.9)
    path.write_text("name: x\nmorphology: cell.asc\nnexus:\n  section: apic[50]\n  x: 0.9\n")
    assert load_cell_spec(path).nexus == NexusSpec("apic[50]", 0.9)
    path.write_text("name: x\nmorphology: cell.asc\nnexus: {section: trunk, x: 1}\n")
    assert load_cell_spec(path).nexus == NexusSpec("trunk", 1.0)
    path.write_text("name: x\nmorphology: cell.asc\n")
    assert load_cell_spec(path).nexus is None
    bad = {
        "'apic[50]'": r"'nexus' must be a mapping with keys \['section', 'x'\]",
        "{section: 'apic[50]'}": r"'nexus' must be a mapping with keys",
        "{section: 'apic[50]', x: 0.9, colour: red}": r"'nexus' must be a mapping with keys",
        "{section: 'apic[50](0.9)', x: 0.9}": r"nexus section must be a section name",
        "{section: 50, x: 0.9}": r"nexus section must be a section name",
        "{1: 2, x: 0.9}": r"'nexus' must be a mapping with keys",
        "{section: 'apic[50]', x: 1.5}": r"nexus x must be a number in \[0, 1\], got 1.5",
        "{section: 'apic[50]', x: true}": r"nexus x must be a number in \[0, 1\]",
    }
    for value, message in bad.items():
        path.write_text(f"name: x\nmorphology: cell.asc\nnexus: {value}\n")
        with pytest.raises(CellError, match=message) as err:
            load_cell_spec(path)
        assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)
