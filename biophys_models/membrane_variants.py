"""Apply a `cell_variant.CellVariant` to a built cell's membrane (its synapses are chosen
when they are attached, `synapses.attach_synapses`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from neuron import h

from biophys_models.cell_variant import CellVariant
from biophys_models.errors import CellError
from biophys_models.sections import CellSections

LEAK = "pas"  # the one mechanism a passive dendrite keeps
SK_KINDS = ("soma", "axon", "apical")  # where sk_e2_factor scales gSK_E2bar


def _density_mechanisms(sec: Any) -> list[str]:
    return list(sec.psection()["density_mechs"])


def _make_passive(sections: list[Any]) -> None:
    for sec in sections:
        for mech in _density_mechanisms(sec):
            if mech != LEAK:
                sec.uninsert(mech)


def _scale_sk(cell: CellSections, factor: float, where: Path | str) -> None:
    found = False
    for kind in SK_KINDS:
        for sec in cell.by_kind()[kind]:
            if h.ismembrane("SK_E2", sec=sec):
                found = True
                for seg in sec:
                    seg.gSK_E2bar_SK_E2 *= factor
    if not found:
        raise CellError(where, "sk_e2_factor needs the SK_E2 mechanism on soma, axon or "
                               "apical sections, and the cell has none")


def _shift_ih(cell: CellSections, shift_mv: float, where: Path | str) -> None:
    with_ih = [sec for sec in cell.all() if h.ismembrane("Ih", sec=sec)]
    if not with_ih:
        raise CellError(where, "ih_vshift_mv needs the Ih mechanism, and the cell has none")
    for sec in with_ih:
        for seg in sec:
            try:
                seg.vshift_Ih = shift_mv
            except (AttributeError, NameError):
                raise CellError(where, "ih_vshift_mv needs an Ih mechanism with a RANGE "
                                       "vshift (the built-in Ih.mod has one)") from None


def apply_variant(cell: CellSections, variant: CellVariant, where: Path | str) -> None:
    """Alter a cell's membrane as `variant` says (its synapses are set when attached).

    Passive dendrites first, so the SK and Ih changes touch soma and axon only there."""
    if variant.dendrites == "passive":
        _make_passive([*cell.basal, *cell.apical])
    if variant.sk_e2_factor != 1.0:
        _scale_sk(cell, variant.sk_e2_factor, where)
    if variant.ih_vshift_mv != 0.0:
        _shift_ih(cell, variant.ih_vshift_mv, where)
