"""Instantiate a user's hoc cell template (e.g. the Hay 2011 model folder, unchanged).

The template does its own morphology, discretisation and biophysics; we only load its
hoc files (in the spec's folder, since templates open files relative to the working
directory) and read the SectionLists the spec names.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from neuron import h

from biophys_models.cell_spec import CellSpec
from biophys_models.errors import CellError
from biophys_models.sections import CellSections


@contextlib.contextmanager
def _working_directory(folder: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def _load_hoc(spec: CellSpec, hoc: Path) -> None:
    try:
        ok = h.load_file(str(hoc))
    except RuntimeError as err:
        raise CellError(spec.path, f"hoc error while loading {hoc.name} ({err})") from None
    if not ok:
        raise CellError(spec.path, f"hoc error while loading {hoc.name}")


def _section_list(spec: CellSpec, obj: Any, role: str) -> list[Any]:
    list_name = spec.section_lists[role]
    try:
        seclist = getattr(obj, list_name)
    except (AttributeError, LookupError, RuntimeError):
        seclist = None
    kind = seclist.hname().split("[")[0] if hasattr(seclist, "hname") else None
    if kind != "SectionList":
        raise CellError(spec.path, f"template {spec.template_name} has no SectionList "
                        f"'{list_name}' (section_lists.{role})")
    return list(seclist)


def instantiate_template(spec: CellSpec) -> tuple[CellSections, Any]:
    """Load the spec's hoc files, create one instance, return its sections and the instance."""
    assert spec.template is not None and spec.template_name is not None
    h.load_file("stdrun.hoc")
    h.load_file("import3d.hoc")
    with _working_directory(spec.path.parent):
        for hoc in spec.load:
            _load_hoc(spec, hoc)
        _load_hoc(spec, spec.template)
        template = getattr(h, spec.template_name, None)
        if template is None:
            raise CellError(spec.path, f"{spec.template.name} defines no template named "
                            f"'{spec.template_name}'")
        try:
            obj = template(*spec.template_args)
        except RuntimeError as err:
            raise CellError(spec.path, f"creating {spec.template_name}"
                            f"{tuple(spec.template_args)} failed ({err})") from None
    sections = CellSections(
        soma=_section_list(spec, obj, "soma"),
        axon=_section_list(spec, obj, "axon") if "axon" in spec.section_lists else [],
        basal=_section_list(spec, obj, "basal"),
        apical=_section_list(spec, obj, "apical"),
    )
    if not sections.soma:
        raise CellError(spec.path, f"SectionList '{spec.section_lists['soma']}' is empty")
    return sections, obj
