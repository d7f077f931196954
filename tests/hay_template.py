"""A cell spec folder in the form of ModelDB's Hay 2011 model: a hoc template and .mod files
without rate tables, for the built-in l5pc's geometry and biophysics.

ModelDB's channel files compute every rate with exp() at every step (no TABLE; `rates()`
reads the mechanism's v); the fast-kinetics build must tabulate them itself
(`biophys_models.rate_tables`). No such folder can be fetched here, so this one is written
from the project's own parts: the generated geometry as SWC, the built-in channels turned
back into that form (`modeldb_style`), and a template whose biophysics hoc applies the rules
of `biophys_models.biophysics` (Hay's values; Ih gradient, Ca hot zone and nseg rule as the
template would compute them). Used by tests/test_fast_kinetics.py and, for the figure, by

    python -m tests.hay_template DIR && python benchmarks/bench_kinetics.py --cell DIR/spec.yaml
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from biophys_models import biophysics as hay
from biophys_models.cell import AXON_STUB
from biophys_models.compile import SYNAPSE_MECHANISMS, builtin_mod_files
from biophys_models.mod_text import block, body
from biophys_models.morphology import generate_l5pc

TEMPLATE_NAME = "HayStyleL5PC"
#: The start of a published template's init(): Import3d makes the sections from the SWC file
#: of its first argument and fills the SectionLists somatic, axonal, basal, apical and all.
IMPORT3D_INIT = """\
    somatic = new SectionList()
    axonal = new SectionList()
    basal = new SectionList()
    apical = new SectionList()
    all = new SectionList()
    reader = new Import3d_SWC_read()
    reader.input($s1)
    gui = new Import3d_GUI(reader, 0)
    gui.instantiate(this)
"""
_LISTS = {"soma": "somatic", "axon": "axonal", "basal": "basal", "apical": "apical"}


def untabled(text: str) -> str:
    """A built-in .mod file without its TABLE lines and with the Mg block's exp() inline: the
    code before issue 19 (up to comments)."""
    text = re.sub(r"COMMENT\nIssue 19.*?ENDCOMMENT\n\n", "", text, flags=re.S)
    text = re.sub(r"^\s*TABLE .*\n", "", text, flags=re.M)
    return text.replace("mg_exp(vm)", "exp(-0.08 * vm)")


def modeldb_style(text: str) -> str:
    """`untabled`, and a `rates(vm)` that every call passes v becomes ModelDB's `rates()`
    reading the mechanism's v (Ih's `rates(v - vshift)` keeps its argument)."""
    text = untabled(text)
    found = block(text, r"PROCEDURE\s+rates\(vm \(mV\)\)")
    if found is None or set(re.findall(r"^\s*rates\(([^()]*)\)", text, re.M)) != {"v"}:
        return text
    inner = re.sub(r"\bvm\b", "v", body(text, found))
    text = text[:found.start] + "PROCEDURE rates() {" + inner + text[found.close:]
    return re.sub(r"^(\s*)rates\(v\)", r"\1rates()", text, flags=re.M)


def _biophysics() -> str:
    """hoc statements applying biophys_models.biophysics to the template's SectionLists."""
    lines = []
    for kind, name in _LISTS.items():
        cm, g_pas = hay.PASSIVE[kind]
        parts = [f"insert pas  Ra = {hay.RA_OHM_CM}  cm = {cm}  g_pas = {g_pas}  "
                 f"e_pas = {hay.E_PAS_MV}"]
        for mech, params in hay.UNIFORM[kind].items():
            parts.append(f"insert {mech}" + "".join(
                f"  {p}_{mech} = {v!r}" for p, v in params.items()))
        lines.append(f"    forsec {name} {{ " + "\n        ".join(parts) + " }")
    lo, hi = hay.CA_HOT_ZONE_UM
    lines.append(f"""\
    forsec all {{
        if (ismembrane("k_ion")) {{ ek = {hay.EK_MV} }}
        if (ismembrane("na_ion")) {{ ena = {hay.ENA_MV} }}
    }}
    soma[0] distance(0, 0.5)
    longest = 0
    forsec apical {{ if (distance(1) > longest) {{ longest = distance(1) }} }}
    forsec apical {{ for (x, 0) {{
        d = distance(x)
        rel = d / longest
        if (rel > 0.65) {{ rel = 0.65 }}
        gIhbar_Ih(x) = 1e-4 * (-0.8696 + 2.0870 * exp(3.6161 * rel))
        if (d >= {lo} && d <= {hi}) {{
            gCa_LVAstbar_Ca_LVAst(x) = {hay.CA_LVA_HOT_S_CM2!r}
        }} else {{
            gCa_LVAstbar_Ca_LVAst(x) = {hay.CA_LVA_HOT_S_CM2 * hay.CA_LVA_OUTSIDE_FRACTION!r}
        }}
    }} }}""")
    return "\n".join(lines)


def _template() -> str:
    count, length, diam = AXON_STUB
    return f"""\
// written by tests/hay_template.py: the built-in l5pc as a ModelDB-style template
begintemplate {TEMPLATE_NAME}
public soma, dend, apic, axon, somatic, axonal, basal, apical, all
objref somatic, axonal, basal, apical, all, this
create soma[1], dend[1], apic[1], axon[1]

proc init() {{ localobj reader, gui
{IMPORT3D_INIT}    axon_stub()
    forsec all {{ nseg = 1 + 2 * int(L / 40) }}
    biophys()
}}

proc axon_stub() {{ local i
    create axon[{count}]
    for i = 0, {count - 1} {{
        axon[i] {{ L = {length}  diam = {diam}  axonal.append()  all.append() }}
    }}
    connect axon[0](0), soma[0](0.5)
    for i = 1, {count - 1} {{ connect axon[i](0), axon[i - 1](1) }}
}}

proc biophys() {{ local d, rel, longest
{_biophysics()}
}}
endtemplate {TEMPLATE_NAME}
"""


def write_folder(folder: Path) -> Path:
    """Write the folder (spec.yaml, the template, cell.swc, mods/); returns the spec."""
    (folder / "mods").mkdir(parents=True, exist_ok=True)
    for f in builtin_mod_files():  # the channels: the synapses are the pipeline's own
        if f.stem in SYNAPSE_MECHANISMS:
            continue
        (folder / "mods" / f.name).write_text(modeldb_style(f.read_text()))
    generate_l5pc().write_swc(folder / "cell.swc")
    (folder / "template.hoc").write_text(_template())
    spec = {"name": "hay_style", "mechanisms": "mods/", "template": "template.hoc",
            "template_name": TEMPLATE_NAME, "template_args": ["cell.swc"],
            "section_lists": {"soma": "somatic", "basal": "basal", "apical": "apical"}}
    (folder / "spec.yaml").write_text(json.dumps(spec, indent=2))  # JSON is YAML
    return folder / "spec.yaml"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.hay_template DIR")
    print(write_folder(Path(sys.argv[1])))
