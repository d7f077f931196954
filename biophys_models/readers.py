"""Morphology readers: turn a geometry (generated data, SWC, Neurolucida .asc) into sections.

Reconstructions go through NEURON's own Import3d so that SWC and .asc files are read exactly
as NEURON users expect; the generated geometry is built point by point from its data.
Every reader returns CellSections with the original axon removed (the cell builder adds the
NeuronIO axon stub) and rejects zero-diameter sections.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

from neuron import h

from biophys_models.errors import CellError
from biophys_models.morphology import Morphology
from biophys_models.sections import CellSections

RECONSTRUCTION_SUFFIXES = (".swc", ".asc")
_NAMES = {"soma": "soma", "axon": "axon", "basal": "dend", "apical": "apic"}


class SectionOwner:
    """Python object that owns a cell's sections (NEURON names them owner.dend[3], ...)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        return self.name


def sections_from_morphology(morph: Morphology, owner: SectionOwner) -> CellSections:
    """Create one NEURON section per SectionGeometry, in the morphology's order."""
    made: list[Any] = []
    counts = dict.fromkeys(_NAMES, 0)
    groups: dict[str, list[Any]] = {kind: [] for kind in _NAMES}
    for geom in morph.sections:
        sec = h.Section(name=f"{_NAMES[geom.kind]}[{counts[geom.kind]}]", cell=owner)
        counts[geom.kind] += 1
        for x, y, z, d in geom.points:
            sec.pt3dadd(float(x), float(y), float(z), float(d))
        if geom.parent is not None:
            sec.connect(made[geom.parent](geom.parent_x), 0.0)
        made.append(sec)
        groups[geom.kind].append(sec)
    return CellSections(groups["soma"], groups["axon"], groups["basal"], groups["apical"])


@contextlib.contextmanager
def _quiet_stdout():
    """Import3d prints progress on the C-level stdout; keep it off the user's terminal."""
    fd = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            with contextlib.redirect_stdout(io.StringIO()):
                yield
    finally:
        os.dup2(fd, 1)
        os.close(fd)


def sections_from_reconstruction(path: Path, owner: SectionOwner) -> CellSections:
    """Read an SWC or Neurolucida .asc file through Import3d."""
    if not path.is_file():
        raise CellError(path, "morphology file not found")
    suffix = path.suffix.lower()
    if suffix not in RECONSTRUCTION_SUFFIXES:
        raise CellError(path, "unknown morphology format (expected .swc or .asc)")
    h.load_file("stdlib.hoc")
    h.load_file("import3d.hoc")
    reader = h.Import3d_SWC_read() if suffix == ".swc" else h.Import3d_Neurolucida3()
    try:
        with _quiet_stdout():
            reader.quiet = 1
            reader.input(str(path))
            gui = h.Import3d_GUI(reader, False)
            gui.instantiate(owner)
    except RuntimeError as err:
        raise CellError(path, f"Import3d could not read the morphology ({err})") from None
    groups = {kind: list(getattr(owner, name, [])) for kind, name in _NAMES.items()}
    if not groups["soma"]:
        raise CellError(path, "the morphology has no soma")
    for sec in groups["axon"]:
        h.delete_section(sec=sec)
    if hasattr(owner, "axon"):
        owner.axon = []
    return CellSections(groups["soma"], [], groups["basal"], groups["apical"])


def check_diameters(cells: CellSections, where: str | Path) -> None:
    """Zero-diameter sections make a zero membrane area and NaN voltages: refuse them."""
    for sec in cells.all():
        if any(seg.diam <= 0.0 for seg in sec):
            name = sec.name().rsplit(".", 1)[-1]
            raise CellError(where, f"section {name} has a zero diameter")
