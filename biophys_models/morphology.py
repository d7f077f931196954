"""Cell geometry as plain data, and the generator of the built-in `l5pc` morphology.

A `Morphology` is a tree of sections, each a polyline of (x, y, z, diam) points, with no
NEURON object in it: it can be checked, counted and written out (SWC) without a simulator,
and `cell.py` alone turns it into NEURON sections.

The generated cell is the NeuronIO cell's twin: it has the statistics of the reconstruction
that made the NeuronIO data (Hay et al. 2011's cell1, measured in the reference sheet): a
small soma, eight basal trees, an apical trunk thick at the soma that tapers to the nexus at
~680 um with ten thin obliques below it, and a tuft from the nexus reaching 1.3 mm, so that
the Ca hot zone lies on the proximal tuft. Section lengths come out so that
nseg = 1 + 2*int(L/40) gives exactly 262 basal and 377 apical segments (the NeuronIO count);
the axon is not part of the geometry (every cell gets the same 2 x 30 um stub, see
`cell.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from biophys_models.errors import CellError

SectionKind = Literal["soma", "axon", "basal", "apical"]

#: NeuronIO discretisation rule: odd segment count, one segment per <= 40 um.
SEGMENT_LENGTH_UM = 40.0

#: SWC structure identifiers of each section kind.
SWC_TYPE: dict[SectionKind, int] = {"soma": 1, "axon": 2, "basal": 3, "apical": 4}

#: The NeuronIO cell's dendritic segment counts under the rule below (basal first).
BASAL_SEGMENTS, APICAL_SEGMENTS = 262, 377


def nseg_for_length(length_um: float) -> int:
    """The NeuronIO / Hay rule nseg = 1 + 2*int(L/40)."""
    return 1 + 2 * int(length_um / SEGMENT_LENGTH_UM)


@dataclass(frozen=True)
class SectionGeometry:
    """One unbranched cable: its kind, where it hangs, and its 3-D points (um)."""

    kind: SectionKind
    parent: int | None  # index of the parent section in Morphology.sections
    parent_x: float  # where on the parent it attaches (0..1)
    points: np.ndarray  # (n >= 2, 4): x, y, z, diam

    @property
    def length_um(self) -> float:
        steps = np.diff(self.points[:, :3], axis=0)
        return float(np.sqrt((steps**2).sum(axis=1)).sum())


@dataclass(frozen=True)
class Morphology:
    """A tree of sections; section 0 is the soma, parents come before their children."""

    name: str
    sections: tuple[SectionGeometry, ...]

    def __post_init__(self) -> None:
        if not self.sections or self.sections[0].kind != "soma":
            raise CellError(None, f"{self.name}: the first section must be the soma")
        for i, sec in enumerate(self.sections):
            if sec.points.ndim != 2 or sec.points.shape[1] != 4 or len(sec.points) < 2:
                raise CellError(None, f"{self.name}: section {i} needs >= 2 points of x, y, z, "
                                      f"diam")
            if not np.all(sec.points[:, 3] > 0):
                raise CellError(None, f"{self.name}: section {i} ({sec.kind}) has a zero diameter")
            if i and (sec.parent is None or not 0 <= sec.parent < i):
                raise CellError(None, f"{self.name}: section {i} has no earlier parent")

    def of_kind(self, kind: SectionKind) -> list[int]:
        return [i for i, s in enumerate(self.sections) if s.kind == kind]

    def segment_count(self, kind: SectionKind) -> int:
        return sum(nseg_for_length(self.sections[i].length_um) for i in self.of_kind(kind))

    def write_swc(self, path: Path) -> None:
        """Write as SWC so that Import3d can read it back. The soma is the three-point soma of
        the NeuroMorpho convention (a cylinder as long as it is wide), of the same membrane
        area as ours: what its electrical load depends on."""
        soma = self.sections[0].points
        lines: list[str] = []
        centre = soma.mean(axis=0)
        radius = float(np.sqrt(_lateral_area(soma) / (4 * np.pi)))
        for i, (dy, parent) in enumerate(((0.0, -1), (-radius, 1), (radius, 1)), start=1):
            lines.append(f"{i} 1 {centre[0]:.4f} {centre[1] + dy:.4f} {centre[2]:.4f} "
                         f"{radius:.4f} {parent}")
        last_id = {0: 1}
        next_id = 4
        for i, sec in enumerate(self.sections[1:], start=1):
            parent_id = last_id[sec.parent] if sec.parent else 1
            # the first point repeats the parent's end: SWC children start at their parent node
            for p in sec.points[1:] if sec.parent else sec.points:
                lines.append(f"{next_id} {SWC_TYPE[sec.kind]} {p[0]:.4f} {p[1]:.4f} {p[2]:.4f} "
                             f"{p[3] / 2:.4f} {parent_id}")
                parent_id = next_id
                next_id += 1
            last_id[i] = parent_id
        path.write_text("\n".join(lines) + "\n")


def _lateral_area(points: np.ndarray) -> float:
    """Membrane area of a polyline of (x, y, z, diam) points, as frusta (NEURON's rule)."""
    r = points[:, 3] / 2
    along = np.sqrt((np.diff(points[:, :3], axis=0) ** 2).sum(axis=1))
    slant = np.sqrt(along**2 + np.diff(r) ** 2)
    return float(np.sum(np.pi * (r[:-1] + r[1:]) * slant))


# --------------------------------------------------------------------------------------------
# The generator: the NeuronIO cell's statistics (Hay et al. 2011's cell1 as NeuronIO builds
# it, measured in the reference sheet hay-l5pc.md), rebuilt from rules with no random draw.
#
# Every dendritic tree is binary: given its tip count (split as evenly as it goes at each
# branch point), the lengths of its branch-to-branch sections by depth, and the path
# distances its tips reach (graded over the tips), each terminal section runs from its
# branch point out to its tip's reach. A section of length L gets 1 + 2*int(L/40) segments;
# the terminals of the basal trees, and of the apical tree, are then rounded together
# (largest remainder, each moved by less than 40 um) so that the rule gives exactly the
# NeuronIO counts, 262 basal and 377 apical segments.
#
# Densities are Hay's, untouched; what each geometric choice moves (tests/test_validation.py
# holds the result to the NeuronIO cell):
#   * rest and input resistance: the soma and basal leak (to -90 mV) against the trunk and
#     tuft Ih (to -45 mV). A small soma (~1600 um2) and thin dendrites (apical area 21k um2,
#     of which the tapering trunk is about half) give the NeuronIO cell's high input
#     resistance; the trunk's thickness at the soma couples the soma to the apical Ih;
#   * apical Ih grows with distance / the longest apical path, so the tuft's reach (1.3 mm)
#     sets how much Ih sits on the trunk and obliques;
#   * transfer impedance to the soma: the apical median falls with the median apical
#     segment distance (the obliques hold most apical segments below the nexus) and with
#     the trunk's taper;
#   * the Ca hot zone (685-885 um) lies on the proximal tuft: the trunk reaches the nexus at
#     ~678 um and the tuft's first two levels (100 um sections) fill the zone, so BAC firing
#     is a tuft event, as in the NeuronIO cell; a brief somatic pulse fires one AP only while
#     the obliques' Ca_HVA and the trunk's Na stay away from the soma (see TRUNK_UM);
#   * the somatic load (soma, basal stems of 0.88-1.84 um, the trunk's first 100 um) sets the
#     f-I curve and the rate under NeuronIO input.


@dataclass(frozen=True)
class TreeRule:
    """One binary dendritic tree, as rules."""

    tips: int
    stem_diam_um: float
    internal_um: tuple[float, ...]  # branch-to-branch section length by depth (last repeats)
    reach_um: tuple[float, float]  # path distance of its tips from where the tree starts
    tip_diam_um: float
    daughter_ratio: float = 0.8  # a daughter starts at this times its parent's end diameter
    taper: float = 0.9  # a branch-to-branch section ends at this times its start diameter
    reach_power: float = 2.0  # >1: most tips near the low reach, a few far out


SOMA_LENGTH_UM = 23.2
#: Soma diameter profile along its length: 1.35 x cell1's (area ~1600 um2 against its 1131):
#: the somatic SK/Kv3.1 must outweigh the obliques' Ca_HVA after a brief pulse (one AP, no
#: doublet).
SOMA_PROFILE_UM = (9.45, 20.66, 23.76, 20.66, 9.45)

#: Eight basal trees, stems of 0.88-1.84 um (the thickest carry the most tips); 46 tips and
#: 84 sections in all, tips 100-270 um out from the soma's end (max path 282 um).
BASAL_TREES: tuple[TreeRule, ...] = tuple(
    TreeRule(tips=tips, stem_diam_um=diam, internal_um=(12.0, 18.0, 24.0, 30.0),
             reach_um=(100.0, 270.0), tip_diam_um=0.45, daughter_ratio=0.78)
    for tips, diam in zip((6, 6, 6, 6, 6, 6, 5, 5),
                          (1.84, 1.7, 1.56, 1.42, 1.28, 1.14, 1.0, 0.88), strict=True))

#: The trunk from the soma to the nexus: section lengths (um); an oblique tree leaves the end
#: of each section but the last, whose end is the tuft's start (the nexus is at its x = 0.9,
#: ~678 um from the soma's centre). The first oblique leaves only ~217 um out (obliques near
#: the soma feed the brief pulse's doublet). Diameter (at section ends, linear in between):
#: 5.5 um at the soma tapering over the first 205 um to 2.6 um, then uniform to the tuft, so
#: the bAP attenuates along the trunk (~45 mV at 400 um) and the hot zone fires only with
#: a distal EPSC (BAC firing).
TRUNK_UM = (205.0, 30.0, 30.0, 35.0, 35.0, 42.0, 45.0, 55.0, 60.0, 42.0, 99.0)
TRUNK_DIAM_UM = ((0.0, 5.5), (205.0, 2.6), (678.0, 2.6))
#: One oblique per trunk junction, low to high: 25 tips, 40 sections; the high ones are short
#: enough to stay below the hot zone (685 um).
OBLIQUES: tuple[TreeRule, ...] = tuple(
    TreeRule(tips=tips, stem_diam_um=diam, internal_um=(20.0, 30.0), reach_um=reach,
             tip_diam_um=0.4, reach_power=1.0)
    for tips, diam, reach in zip((3, 3, 3, 3, 3, 2, 2, 2, 2, 2),
                                 (0.78, 0.78, 0.75, 0.72, 0.69, 0.66, 0.6, 0.57, 0.54, 0.51),
                                 ((120.0, 340.0), (120.0, 340.0), (120.0, 330.0), (120.0, 310.0),
                                  (120.0, 290.0), (120.0, 270.0), (120.0, 240.0), (120.0, 190.0),
                                  (80.0, 130.0), (40.0, 65.0)), strict=True))
#: The tuft: two 15-tip trees from the trunk's end, thick stems (2.6 um: a 1 nA EPSC alone
#: at 750 um stays below the Ca-spike threshold) with thinner daughters (0.75: keeps the
#: apical transfer impedance). Their first two levels are 100 um long
#: (the hot zone); deeper branch points are 20 um apart and the tips reach 950-1301 um.
TUFT: tuple[TreeRule, ...] = tuple(
    TreeRule(tips=15, stem_diam_um=2.6, internal_um=(100.0, 100.0, 20.0),
             reach_um=(200.0, 690.0), tip_diam_um=0.45, daughter_ratio=0.75, reach_power=3.0)
    for _ in range(2))

GOLDEN_ANGLE = np.pi * (3.0 - np.sqrt(5.0))


@dataclass
class _Planned:
    """A section before it has points: the tree walk fixes topology, length and diameters,
    and the terminals' lengths are settled only once a whole kind's count is known."""

    kind: SectionKind
    parent: int | None
    parent_x: float
    direction: np.ndarray
    length: float
    d0: float
    d1: float
    terminal: bool = False
    start: np.ndarray | None = None


def _split(tips: int) -> tuple[int, int]:
    return (tips + 1) // 2, tips // 2


def _turn(direction: np.ndarray, angle: float, azimuth: float) -> np.ndarray:
    """direction rotated by angle (rad) towards the perpendicular at azimuth."""
    unit = direction / np.linalg.norm(direction)
    helper = np.array([1.0, 0, 0]) if abs(unit[0]) < 0.9 else np.array([0, 0, 1.0])
    u = np.cross(unit, helper)
    u /= np.linalg.norm(u)
    w = np.cross(unit, u)
    side = np.cos(azimuth) * u + np.sin(azimuth) * w
    return np.cos(angle) * unit + np.sin(angle) * side


class _Plan:
    """The sections of the cell in NEURON order (parents first, each tree depth first)."""

    def __init__(self) -> None:
        self.sections: list[_Planned] = []
        self.reach: dict[int, float] = {}  # terminal index -> path distance its tip aims at
        self.distance: list[float] = []  # path distance of each section's start

    def add(self, sec: _Planned, start_distance: float) -> int:
        self.sections.append(sec)
        self.distance.append(start_distance)
        return len(self.sections) - 1

    def tree(self, kind: SectionKind, rule: TreeRule, parent: int, parent_x: float,
             direction: np.ndarray, start_distance: float, spread: float, phase: float) -> None:
        """Lay out one tree depth first; tip j of the tree reaches rule.reach_um graded by
        the golden-ratio sequence over j (neighbouring tips reach far and near)."""
        low, high = rule.reach_um
        tip_counter = iter(range(rule.tips))

        def grow(tips: int, parent_index: int, x: float, direction: np.ndarray,
                 distance: float, diam: float, depth: int) -> None:
            if tips == 1:
                j = next(tip_counter)
                reach = low + (high - low) * ((j * 0.6180339887) % 1.0) ** rule.reach_power
                index = self.add(_Planned(kind, parent_index, x, direction, 0.0, diam,
                                          rule.tip_diam_um, terminal=True), distance)
                self.reach[index] = start_distance + reach
                return
            length = rule.internal_um[min(depth, len(rule.internal_um) - 1)]
            end_diam = diam * rule.taper
            index = self.add(_Planned(kind, parent_index, x, direction, length, diam,
                                      end_diam), distance)
            azimuth = phase + GOLDEN_ANGLE * depth
            for side, sub in zip((1.0, -1.0), _split(tips), strict=True):
                grow(sub, index, 1.0, _turn(direction, side * spread, azimuth),
                     distance + length, end_diam * rule.daughter_ratio, depth + 1)

        grow(rule.tips, parent, parent_x, direction, start_distance, rule.stem_diam_um, 0)

    def settle_terminals(self, kind: SectionKind, total_segments: int) -> None:
        """Give the terminals of `kind` their lengths: each from its branch point to its
        reach, rounded together so that the kind has exactly total_segments."""
        ours = [i for i, s in enumerate(self.sections) if s.kind == kind]
        terminals = [i for i in ours if self.sections[i].terminal]
        fixed = sum(nseg_for_length(self.sections[i].length) for i in ours
                    if not self.sections[i].terminal)
        wanted = np.array([max(self.reach[i] - self.distance[i], 10.0) for i in terminals])
        steps = np.floor(wanted / SEGMENT_LENGTH_UM).astype(int)
        missing = (total_segments - fixed - len(terminals)) // 2 - int(steps.sum())
        if (total_segments - fixed - len(terminals)) % 2 or abs(missing) > len(terminals):
            raise CellError(None, f"l5pc: {kind} terminals cannot make {total_segments} "
                                  f"segments")
        remainder = wanted / SEGMENT_LENGTH_UM - steps
        if missing > 0:
            steps[np.argsort(-remainder, kind="stable")[:missing]] += 1
        elif missing < 0:
            order = [k for k in np.argsort(remainder, kind="stable") if steps[k] > 0]
            steps[order[:-missing]] -= 1
        for i, k, length in zip(terminals, steps, wanted, strict=True):
            low, high = SEGMENT_LENGTH_UM * k + 1.0, SEGMENT_LENGTH_UM * (k + 1) - 1.0
            self.sections[i].length = float(min(max(length, low), high))

    def morphology(self, name: str, soma: SectionGeometry) -> Morphology:
        """Place every section at its parent's point and sample its diameter taper."""
        out = [soma]
        for sec in self.sections[1:]:
            margin = min(sec.length % SEGMENT_LENGTH_UM, -sec.length % SEGMENT_LENGTH_UM)
            if margin < 0.5:  # NEURON's float32 length could land on either side
                raise CellError(None, f"{name}: a {sec.kind} section of {sec.length} um sits on "
                                      f"a segment-count boundary")
            parent = out[sec.parent]
            start = sec.start if sec.start is not None else _point_at(parent, sec.parent_x)
            unit = sec.direction / np.linalg.norm(sec.direction)
            f = np.linspace(0.0, 1.0, 3)[:, None]
            xyz = start + f * unit * sec.length
            diam = sec.d0 + (sec.d1 - sec.d0) * f
            out.append(SectionGeometry(sec.kind, sec.parent, sec.parent_x,
                                       np.hstack([xyz, diam])))
        return Morphology(name, tuple(out))


def _point_at(sec: SectionGeometry, x: float) -> np.ndarray:
    return sec.points[0, :3].copy() if x == 0.0 else sec.points[-1, :3].copy()


def _trunk_diam(distance_um: float) -> float:
    """The trunk's diameter this far from its start (TRUNK_DIAM_UM, linear in between)."""
    at, diam = zip(*TRUNK_DIAM_UM, strict=True)
    return float(np.interp(distance_um, at, diam))


def generate_l5pc() -> Morphology:
    """The built-in L5PC geometry (the same every time: no random draw)."""
    half = SOMA_LENGTH_UM / 2
    y = np.linspace(-half, half, len(SOMA_PROFILE_UM))
    soma = SectionGeometry("soma", None, 0.0, np.column_stack(
        [np.zeros_like(y), y, np.zeros_like(y), np.array(SOMA_PROFILE_UM)]))
    plan = _Plan()
    plan.add(_Planned("soma", None, 0.0, np.array([0, 1.0, 0]), SOMA_LENGTH_UM, 0, 0), -half)

    # Basal trees leave the soma's lower end, spread around the y axis.
    ring = SOMA_PROFILE_UM[0] / 2
    for t, rule in enumerate(BASAL_TREES):
        az = GOLDEN_ANGLE * t
        out = np.array([np.cos(az), -0.7, np.sin(az)])
        first = len(plan.sections)
        plan.tree("basal", rule, 0, 0.0, out, half, np.radians(35.0), az)
        plan.sections[first].start = np.array([ring * np.cos(az), -half, ring * np.sin(az)])
    plan.settle_terminals("basal", BASAL_SEGMENTS)

    # Trunk straight up; each oblique is laid out right after the trunk section it leaves
    # (neighbouring indices = neighbouring branches), the tuft after the last.
    parent, x, distance = 0, 1.0, half
    for i, length in enumerate(TRUNK_UM):
        parent = plan.add(_Planned("apical", parent, x, np.array([0, 1.0, 0]), length,
                                   _trunk_diam(distance - half),
                                   _trunk_diam(distance - half + length)), distance)
        x, distance = 1.0, distance + length
        if i < len(OBLIQUES):
            az = GOLDEN_ANGLE * i
            plan.tree("apical", OBLIQUES[i], parent, 1.0,
                      np.array([np.cos(az), 0.6, np.sin(az)]), distance, np.radians(30.0), az)
    for side, rule in zip((1.0, -1.0), TUFT, strict=True):
        plan.tree("apical", rule, parent, 1.0, np.array([side * 0.7, 1.0, 0.2 * side]),
                  distance, np.radians(28.0), 0.5 * side)
    plan.settle_terminals("apical", APICAL_SEGMENTS)
    return plan.morphology("l5pc", soma)


def check_counts(morph: Morphology, expected: Sequence[tuple[SectionKind, int]]) -> None:
    """Raise CellError if the segment count of a kind differs from the expected one."""
    for kind, n in expected:
        got = morph.segment_count(kind)
        if got != n:
            raise CellError(None, f"{morph.name}: {got} {kind} segments, expected {n}")
