"""Metadata of every dendritic segment, and where the nexus is.

The segment order is the NeuronIO one: basal sections first, then apical, each in NEURON's
iteration order of sections and of x along a section. Segment k carries the inputs
`pipeline.protocol.synapses_of_segment(k, n)`, so this table is what later stages use to
group inputs by tree, distance or branch. The table is the data contract's `Segments`
(NEURON-free, so that data sets are read without NEURON): what a cell reports is what its
simulations store under segments/.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from typing import Any

import numpy as np
from neuron import h

from biophys_models.cell_spec import NexusSpec
from biophys_models.errors import CellError
from biophys_models.sections import CellSections
from pipeline.datasets.contract import Segments

#: A branch point of the trunk is where the tuft starts when its second-largest daughter
#: subtree holds at least this share of the dendrite beyond the point. An oblique holds a few
#: % up to ~16 % (the highest oblique of the generated l5pc); each half of a tuft ~50 %.
NEXUS_SHARE = 0.2
#: Where along the last trunk section the nexus sits: NeuronIO records apic[50](0.9).
NEXUS_X = 0.9


@dataclass(frozen=True)
class Nexus:
    """The apical trunk where the tuft starts (or the point a cell spec names)."""

    segment: int  # index into the cell's Segments (and into the synapse layout)
    section: int  # dendritic section index
    x: float
    distance_um: float


def _parent_section(sec: Any) -> Any | None:
    seg = sec.parentseg()
    return None if seg is None else seg.sec


def branch_ids(dendrites: list[Any]) -> list[int]:
    """Per section: sections joined end to end with no other child share one id.

    Ids are numbered in order of first appearance along `dendrites`.
    """
    index = {sec: i for i, sec in enumerate(dendrites)}
    head: list[int] = []
    for sec in dendrites:
        current = sec
        while True:
            parent = _parent_section(current)
            if parent is None or parent not in index:
                break
            only_child = len(parent.children()) == 1
            at_end = current.parentseg().x == 1.0 and current.orientation() == 0.0
            if not (only_child and at_end):
                break
            current = parent
        head.append(index[current])
    ids: dict[int, int] = {}
    return [ids.setdefault(hd, len(ids)) for hd in head]


def read_segments(cell: CellSections) -> Segments:
    """Type, length, distance, section and branch of every dendritic segment."""
    origin = cell.soma[0](0.5)
    dendrites = cell.dendrites
    branch_of_section = branch_ids(dendrites)
    n_basal = len(cell.basal)
    rows: list[tuple[str, float, float, int, int]] = []
    for i, sec in enumerate(dendrites):
        kind = "basal" if i < n_basal else "apical"
        for seg in sec:
            rows.append((kind, sec.L / sec.nseg, h.distance(origin, seg), i,
                         branch_of_section[i]))
    cols = list(zip(*rows, strict=True)) if rows else [[]] * 5
    return Segments(
        type=np.array(cols[0], dtype="<U6"),
        length_um=np.array(cols[1], dtype=np.float64),
        distance_um=np.array(cols[2], dtype=np.float64),
        section=np.array(cols[3], dtype=np.int32),
        branch=np.array(cols[4], dtype=np.int32),
    )


def subtree_length(sec: Any, memo: dict[Any, float]) -> float:
    """Length (um) of sec and everything beyond it; memo caches it per section."""
    if sec not in memo:
        memo[sec] = sec.L + sum(subtree_length(c, memo) for c in sec.children())
    return memo[sec]


def trunk_root(cell: CellSections, memo: dict[Any, float]) -> Any:
    """The apical section leaving the soma that carries the most dendrite: the trunk."""
    apical = set(cell.apical)
    roots = [s for s in cell.apical if _parent_section(s) not in apical]
    return max(roots, key=lambda s: subtree_length(s, memo))


def _nexus_at(cell: CellSections, table: Segments, sec: Any, x: float) -> Nexus:
    """The segment of apical section `sec` that holds x (NEURON's rule: x = 1 is the last)."""
    section = len(cell.basal) + cell.apical.index(sec)
    rows = np.flatnonzero(table.section == section)
    segment = int(rows[min(int(x * sec.nseg), sec.nseg - 1)])
    centres = [seg.x for seg in sec]
    return Nexus(segment=segment, section=section, x=float(centres[segment - rows[0]]),
                 distance_um=float(table.distance_um[segment]))


def _named_nexus(cell: CellSections, table: Segments, named: NexusSpec,
                 where: str | PathLike[str] | None) -> Nexus:
    """The apical section whose name (after the cell's prefix) is named.section, at named.x."""
    for sec in cell.apical:
        if named.section in (sec.name(), sec.name().rsplit(".", 1)[-1]):
            return _nexus_at(cell, table, sec, named.x)
    names = [sec.name().rsplit(".", 1)[-1] for sec in cell.apical]
    listed = f"{names[0]} .. {names[-1]}" if names else "none"
    raise CellError(where, f"nexus section '{named.section}' is not an apical section of the "
                    f"cell (apical sections: {listed})")


def find_nexus(cell: CellSections, table: Segments, named: NexusSpec | None = None,
               where: str | PathLike[str] | None = None) -> Nexus:
    """Where the nexus voltage is recorded: the point a cell spec names, else where the tuft
    starts (NeuronIO records the apical trunk there: apic[50](0.9) of its cell).

    The rule: start at the apical root with the largest subtree and follow the trunk (the
    largest daughter subtree at each branch point, branch points being section ends); the
    first branch point whose second-largest daughter subtree holds >= NEXUS_SHARE of the
    dendrite beyond the point is where the tuft starts (an oblique stays below the share, a
    tuft half holds about half). The nexus is at NEXUS_X of the trunk section ending there.
    `where` (the spec file) names the problem when a named section does not exist.
    """
    if named is not None:
        return _named_nexus(cell, table, named, where)
    if not cell.apical:
        raise ValueError("the cell has no apical dendrite, so no nexus")
    apical = set(cell.apical)
    memo: dict[Any, float] = {}
    sec = trunk_root(cell, memo)
    while True:
        children = sorted((c for c in sec.children() if c in apical),
                          key=lambda c: subtree_length(c, memo), reverse=True)
        if not children:
            break
        beyond = sum(subtree_length(c, memo) for c in children)
        if len(children) >= 2 and subtree_length(children[1], memo) >= NEXUS_SHARE * beyond:
            break
        sec = children[0]
    return _nexus_at(cell, table, sec, NEXUS_X)
