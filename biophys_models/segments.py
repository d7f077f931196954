"""Metadata of every dendritic segment, and where the nexus is.

The segment order is the NeuronIO one: basal sections first, then apical, each in NEURON's
iteration order of sections and of x along a section. Synapse k sits on segment k, so this
table is what later stages use to group inputs by tree, distance or branch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from neuron import h

from biophys_models.sections import CellSections

#: A branch point splits the nexus search when the second-largest daughter subtree holds at
#: least this share of the dendrite below it (an oblique holds a few %, a tuft half ~50 %).
NEXUS_SHARE = 0.2


@dataclass(frozen=True)
class SegmentTable:
    """One entry per dendritic segment; the data-set writer stores each field under segments/."""

    type: np.ndarray  # str ('basal' | 'apical')
    section: np.ndarray  # int32: index among the dendritic sections, basal then apical
    x: np.ndarray  # float64: position of the segment centre along its section (0..1)
    length_um: np.ndarray  # float64: L / nseg
    distance_um: np.ndarray  # float64: path distance from soma(0.5) to the segment centre
    branch: np.ndarray  # int32: id of the unbranched section chain the segment lies on

    def __len__(self) -> int:
        return len(self.type)

    def as_dict(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Nexus:
    """The apical trunk where the tuft starts: the last trunk segment before the split."""

    segment: int  # index into the SegmentTable (and into the synapse layout)
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


def build_segment_table(cell: CellSections) -> SegmentTable:
    """Read type, position, length, distance and branch of every dendritic segment."""
    origin = cell.soma[0](0.5)
    dendrites = cell.dendrites
    branch_of_section = branch_ids(dendrites)
    n_basal = len(cell.basal)
    rows: list[tuple[str, int, float, float, float, int]] = []
    for i, sec in enumerate(dendrites):
        kind = "basal" if i < n_basal else "apical"
        for seg in sec:
            rows.append((kind, i, seg.x, sec.L / sec.nseg, h.distance(origin, seg),
                         branch_of_section[i]))
    cols = list(zip(*rows, strict=True)) if rows else [[]] * 6
    return SegmentTable(
        type=np.array(cols[0], dtype="<U6"),
        section=np.array(cols[1], dtype=np.int32),
        x=np.array(cols[2], dtype=np.float64),
        length_um=np.array(cols[3], dtype=np.float64),
        distance_um=np.array(cols[4], dtype=np.float64),
        branch=np.array(cols[5], dtype=np.int32),
    )


def _subtree_length(sec: Any, memo: dict[Any, float]) -> float:
    if sec not in memo:
        memo[sec] = sec.L + sum(_subtree_length(c, memo) for c in sec.children())
    return memo[sec]


def find_nexus(cell: CellSections, table: SegmentTable) -> Nexus:
    """Follow the apical trunk (the largest subtree at each branch point) up to the first
    branch point whose second-largest daughter holds >= NEXUS_SHARE of the dendrite below."""
    if not cell.apical:
        raise ValueError("the cell has no apical dendrite, so no nexus")
    apical = set(cell.apical)
    memo: dict[Any, float] = {}
    roots = [s for s in cell.apical if _parent_section(s) not in apical]
    sec = max(roots, key=lambda s: _subtree_length(s, memo))
    while True:
        children = sorted((c for c in sec.children() if c in apical),
                          key=lambda c: _subtree_length(c, memo), reverse=True)
        if not children:
            break
        below = sum(_subtree_length(c, memo) for c in children)
        if len(children) >= 2 and _subtree_length(children[1], memo) >= NEXUS_SHARE * below:
            break
        sec = children[0]
    section = len(cell.basal) + cell.apical.index(sec)
    segment = int(np.flatnonzero(table.section == section)[-1])
    return Nexus(segment=segment, section=section, x=float(table.x[segment]),
                 distance_um=float(table.distance_um[segment]))
