"""YAML cell specs: a user's cell (hoc template or reconstruction) described as data.

Two forms, paths relative to the spec file:

    name: hay2011                        # a hoc template, e.g. ModelDB 139653 unchanged
    mechanisms: mods/
    load: [L5PCbiophys5b.hoc]
    template: L5PCtemplate_2.hoc
    template_name: L5PCtemplate
    template_args: [morphologies/cell1.asc]
    section_lists: {soma: somatic, basal: basal, apical: apical}
    nexus: {section: "apic[50]", x: 0.9} # optional: where the nexus voltage is recorded

    name: mycell                         # a reconstruction with the built-in Hay biophysics
    morphology: cells/cell1.asc

Without `nexus` the cell's nexus is found by `segments.find_nexus` (where the tuft starts);
with it, the named apical section (its name without the cell prefix, as hoc prints it after
the last '.') at x, resolved when the cell is built. In YAML's flow style a name with [ ]
must be quoted; block style (`section: apic[50]` on its own line) needs no quotes.

Validation happens here, before NEURON is touched: every problem is one CellError line
naming the spec file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from biophys_models.errors import CellError

#: Cells build_cell makes without a file (the generated L5PC geometry + Hay biophysics).
BUILTIN_CELLS = ("l5pc",)
SPEC_SUFFIXES = (".yaml", ".yml")  # a cell source with one of these is a cell spec
TEMPLATE_KEYS = {"name", "mechanisms", "load", "template", "template_name", "template_args",
                 "section_lists", "nexus"}
MORPHOLOGY_KEYS = {"name", "morphology", "nexus"}
NEXUS_KEYS = ("section", "x")
_SECTION_NAME = re.compile(r"[A-Za-z_]\w*(\[\d+\])?")
REQUIRED_LISTS = ("soma", "basal", "apical")
#: A template argument with one of these suffixes is a file and must exist.
FILE_ARG_SUFFIXES = {".asc", ".swc", ".hoc", ".h5", ".xml", ".nml", ".json"}


@dataclass(frozen=True)
class NexusSpec:
    """A nexus named by a spec: an apical section's name (e.g. "apic[50]") and x in [0, 1]."""

    section: str
    x: float


@dataclass(frozen=True)
class CellSpec:
    """A validated spec; every path is absolute."""

    path: Path
    name: str
    morphology: Path | None = None
    mechanisms: Path | None = None
    load: tuple[Path, ...] = ()
    template: Path | None = None
    template_name: str | None = None
    template_args: tuple[Any, ...] = ()
    section_lists: dict[str, str] = field(default_factory=dict)
    nexus: NexusSpec | None = None

    @property
    def is_template(self) -> bool:
        return self.template is not None

    def mod_files(self) -> list[Path]:
        return sorted(self.mechanisms.glob("*.mod")) if self.mechanisms else []


def _existing(spec: Path, value: Any, key: str, folder: bool = False) -> Path:
    if not isinstance(value, str) or not value:
        raise CellError(spec, f"'{key}' must be a path relative to the spec file")
    path = (spec.parent / value).resolve()
    if folder and not path.is_dir():
        raise CellError(spec, f"{key} folder '{value}' not found ({path})")
    if not folder and not path.is_file():
        raise CellError(spec, f"{key} file '{value}' not found ({path})")
    return path


def _nexus(spec: Path, value: Any) -> NexusSpec | None:
    """The optional `nexus: {section: "apic[50]", x: 0.9}` (names are checked at build time)."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != set(NEXUS_KEYS):
        raise CellError(spec, f"'nexus' must be a mapping with keys {list(NEXUS_KEYS)}, e.g. "
                        f"{{section: 'apic[50]', x: 0.9}}, got {value!r}")
    section, x = value["section"], value["x"]
    if not isinstance(section, str) or not _SECTION_NAME.fullmatch(section):
        raise CellError(spec, f"nexus section must be a section name such as 'apic[50]', "
                        f"got {section!r}")
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0.0 <= x <= 1.0:
        raise CellError(spec, f"nexus x must be a number in [0, 1], got {x!r}")
    return NexusSpec(section=section, x=float(x))


def load_cell_spec(path: Path) -> CellSpec:
    """Read and check a spec file; raise CellError (one line) on the first problem."""
    path = Path(path).resolve()
    if not path.is_file():
        raise CellError(path, "cell spec not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        first = str(err).splitlines()[0] if str(err) else "syntax error"
        raise CellError(path, f"not valid YAML ({first})") from None
    if not isinstance(raw, dict):
        raise CellError(path, "a cell spec must be a mapping of keys to values")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise CellError(path, "'name' (a non-empty string) is required")

    if "morphology" in raw:
        unknown = sorted(set(raw) - MORPHOLOGY_KEYS)
        if unknown:
            raise CellError(path, f"unknown key(s) {unknown} for a morphology spec "
                            f"(allowed: {sorted(MORPHOLOGY_KEYS)})")
        return CellSpec(path=path, name=name,
                        morphology=_existing(path, raw["morphology"], "morphology"),
                        nexus=_nexus(path, raw.get("nexus")))

    unknown = sorted(set(raw) - TEMPLATE_KEYS)
    if unknown:
        raise CellError(path, f"unknown key(s) {unknown} (allowed: {sorted(TEMPLATE_KEYS)})")
    for key in ("template", "template_name", "section_lists"):
        if key not in raw:
            raise CellError(path, f"'{key}' is required (or give 'morphology' instead)")
    mechanisms = None
    if raw.get("mechanisms") is not None:
        mechanisms = _existing(path, raw["mechanisms"], "mechanisms", folder=True)
        if not any(mechanisms.glob("*.mod")):
            raise CellError(path, f"mechanisms folder '{raw['mechanisms']}' holds no .mod file")
    load = raw.get("load") or []
    if not isinstance(load, list):
        raise CellError(path, "'load' must be a list of hoc files")
    template_name = raw["template_name"]
    if not isinstance(template_name, str) or not template_name.isidentifier():
        raise CellError(path, f"'template_name' must be a hoc identifier, got {template_name!r}")
    args = raw.get("template_args") or []
    if not isinstance(args, list):
        raise CellError(path, "'template_args' must be a list")
    resolved_args: list[Any] = []
    for arg in args:
        if isinstance(arg, str) and Path(arg).suffix.lower() in FILE_ARG_SUFFIXES:
            resolved_args.append(str(_existing(path, arg, "template_args")))
        elif isinstance(arg, (str, int, float)) and not isinstance(arg, bool):
            resolved_args.append(arg)
        else:
            raise CellError(path, f"template argument {arg!r} is not a string or number")
    lists = raw["section_lists"]
    if not isinstance(lists, dict) or not all(isinstance(v, str) for v in lists.values()):
        raise CellError(path, "'section_lists' must map soma/basal/apical to SectionList names")
    missing = [k for k in REQUIRED_LISTS if k not in lists]
    extra = sorted(set(lists) - {*REQUIRED_LISTS, "axon"})
    if missing or extra:
        raise CellError(path, f"section_lists needs keys {list(REQUIRED_LISTS)} (+ optional "
                        f"axon); missing {missing}, unknown {extra}")
    return CellSpec(
        path=path, name=name, mechanisms=mechanisms,
        load=tuple(_existing(path, f, "load") for f in load),
        template=_existing(path, raw["template"], "template"),
        template_name=template_name, template_args=tuple(resolved_args),
        section_lists=dict(lists), nexus=_nexus(path, raw.get("nexus")),
    )
