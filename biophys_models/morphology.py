"""Cell geometry as plain data, and the generator of the built-in `l5pc` morphology.

A `Morphology` is a tree of sections, each a polyline of (x, y, z, diam) points, with no
NEURON object in it: it can be checked, counted and written out (SWC) without a simulator,
and `cell.py` alone turns it into NEURON sections.

The generated cell has the proportions of a layer-5b pyramidal neuron (Hay et al. 2011,
cell1): a soma, eight basal trees, an apical trunk of ~850 um that gives off nine oblique
trees and ends in a nexus (main bifurcation) from which a four-level tuft reaches ~1.2 mm
from the soma. Section lengths are chosen so that nseg = 1 + 2*int(L/40) gives exactly
262 basal and 377 apical segments (the NeuronIO count); the axon is not part of the
geometry (every cell gets the same 2 x 30 um stub, see `cell.py`).
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
        """Write as SWC (a 3-point cylinder soma) so that Import3d can read it back."""
        soma = self.sections[0].points
        lines: list[str] = []
        centre = soma.mean(axis=0)
        radius = soma[:, 3].mean() / 2
        half = self.sections[0].length_um / 2
        lines.append(f"1 1 {centre[0]:.4f} {centre[1]:.4f} {centre[2]:.4f} {radius:.4f} -1")
        lines.append(f"2 1 {centre[0]:.4f} {centre[1] - half:.4f} {centre[2]:.4f} {radius:.4f} 1")
        lines.append(f"3 1 {centre[0]:.4f} {centre[1] + half:.4f} {centre[2]:.4f} {radius:.4f} 1")
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


# --------------------------------------------------------------------------------------------
# The generator. Each level of a tree is (segments per section, diameter at start, at end);
# a section with n = 2k+1 segments gets a length of 40k um plus a random extra drawn from
# EXTRA_LENGTH_UM (always within [1, 40) um, so the rule above yields exactly n). Diameters
# taper linearly along each section and never grow away from the soma.
#
# Soma (~23 um across) and apical trunk (~4 um tapering to ~2 um at the nexus) are in the
# range of reconstructed L5 pyramidal cells; the basal roots (0.84 um) are thinner than most
# reconstructions', a compromise for the resting potential. The numbers were tuned, the
# densities untouched, against tests/test_validation.py; what each choice moves:
#   * rest: the soma settles where the leak of soma and basal trees (to -90 mV) meets the Ih
#     of the trunk and tuft (reversal -45 mV) across the trunk's axial resistance. A thick
#     trunk, lean basal trees (thin, lengths at the short end of their bins) and a compact
#     tuft (apical Ih grows with distance / longest apical path, so a shorter longest path
#     puts more of it on the trunk) bring the soma to -79.3 mV; the same densities made
#     isopotential rest at -75.7 mV. A 3.2 um trunk with thicker, longer basal trees and a
#     1.28 mm tuft rested at -80.9 mV, outside Hay's band;
#   * bAP and BAC firing: the trunk diameter sets how much bAP reaches the hot zone. Long,
#     thick obliques load the trunk so that the bAP alone stays below the Ca-spike threshold
#     while bAP + distal EPSC crosses it;
#   * the somatic load (soma size, basal and proximal diameters) sets whether the 2 nA, 3 ms
#     pulse fires (it does from ~1.84 nA; bursts from ~2.95 nA) and the rate under NeuronIO
#     input; the basal terminal diameter sets the NMDA-spike threshold of a basal branch
#     (between 20 and 30 clustered synapses).

Level = tuple[int, float, float]

#: Random extra length (um) over 40k per section kind: basal sections are drawn at the short
#: end of their bins (less leaky basal membrane for the same segment count).
EXTRA_LENGTH_UM: dict[SectionKind, tuple[float, float]] = {
    "basal": (4.0, 16.0), "apical": (8.0, 32.0)}

#: Basal tree: a short root, two daughters, four terminals (terminal nseg listed per tree).
BASAL_ROOT: Level = (1, 0.84, 0.74)
BASAL_DAUGHTER: Level = (3, 0.74, 0.68)
BASAL_TERMINAL_DIAM = (0.68, 0.44)
BASAL_TERMINAL_NSEG: tuple[tuple[int, int, int, int], ...] = (
    (7, 7, 5, 7), (7, 5, 7, 7), (7, 7, 7, 5), (5, 7, 7, 7),
    (7, 7, 5, 7), (7, 5, 7, 7), (7, 7, 5, 7), (5, 7, 7, 5),
)  # 9 fives, 23 sevens: 8 * (1 + 2*3) + 206 = 262

#: Apical trunk from the soma to the nexus: (nseg, length um, diam start, diam end);
#: 3.9 um at the soma, 3.45 um at 400 um, 2.35 um at the nexus.
TRUNK: tuple[tuple[int, float, float, float], ...] = (
    (3, 60, 3.9, 3.83), (3, 60, 3.83, 3.77), (3, 60, 3.77, 3.7), (3, 70, 3.7, 3.62),
    (3, 70, 3.62, 3.54), (5, 80, 3.54, 3.45), (5, 85, 3.45, 3.24), (5, 90, 3.24, 3.02),
    (5, 110, 3.02, 2.75), (9, 165, 2.75, 2.35),
)  # 44 segments, 850 um
#: One oblique tree at each trunk junction: root nseg 3, two terminals of ~170-230 um.
OBLIQUE_ROOT: Level = (3, 2.2, 1.8)
OBLIQUE_TERMINAL_DIAM = (1.3, 0.8)
OBLIQUE_TERMINAL_NSEG: tuple[tuple[int, int], ...] = ((11, 9),) * 7 + ((11, 11),) * 2
# 9 * 3 + 7 * 20 + 2 * 22 = 211 segments; the shorter pairs sit low on the trunk. Each
# oblique holds < 0.16 of the dendrite beyond its junction (the nexus search needs < 0.2).
#: Tuft: binary tree of four levels below the nexus (2, 4, 8, 16 sections), ~300 um deep.
TUFT_LEVELS: tuple[Level, ...] = ((3, 2.35, 2.1), (3, 1.45, 1.25), (3, 1.15, 0.9))
TUFT_TERMINAL_DIAM = (0.9, 0.55)
TUFT_TERMINAL_NSEG: tuple[int, ...] = (5,) * 16
# 2*3 + 4*3 + 8*3 + 16*5 = 122 segments; 44 + 211 + 122 = 377 apical

SOMA_LENGTH_UM = 24.0
SOMA_DIAM_UM = 23.0


class _Builder:
    """Accumulates sections while walking the trees; directions are random but seeded."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.sections: list[SectionGeometry] = []

    def add(self, kind: SectionKind, parent: int | None, parent_x: float, start: np.ndarray,
            direction: np.ndarray, nseg: int, d0: float, d1: float,
            length: float | None = None) -> int:
        if length is None:
            k = (nseg - 1) // 2
            length = SEGMENT_LENGTH_UM * k + float(self.rng.uniform(*EXTRA_LENGTH_UM[kind]))
        unit = direction / np.linalg.norm(direction)
        end = start + unit * length
        pts = np.array([[*start, d0], [*((start + end) / 2), (d0 + d1) / 2], [*end, d1]])
        self.sections.append(SectionGeometry(kind, parent, parent_x, pts))
        return len(self.sections) - 1

    def turn(self, direction: np.ndarray, spread_deg: float) -> np.ndarray:
        """A daughter direction: the parent's, rotated by about spread_deg at a random azimuth."""
        unit = direction / np.linalg.norm(direction)
        helper = np.array([1.0, 0, 0]) if abs(unit[0]) < 0.9 else np.array([0, 0, 1.0])
        u = np.cross(unit, helper)
        u /= np.linalg.norm(u)
        w = np.cross(unit, u)
        phi = self.rng.uniform(0, 2 * np.pi)
        theta = np.radians(spread_deg * self.rng.uniform(0.7, 1.3))
        return np.cos(theta) * unit + np.sin(theta) * (np.cos(phi) * u + np.sin(phi) * w)

    def end_of(self, index: int) -> np.ndarray:
        return self.sections[index].points[-1, :3].copy()

    def direction_of(self, index: int) -> np.ndarray:
        pts = self.sections[index].points
        return pts[-1, :3] - pts[0, :3]


def generate_l5pc(seed: int = 20110707) -> Morphology:
    """The built-in L5PC geometry (deterministic for a given seed)."""
    b = _Builder(seed)
    half = SOMA_LENGTH_UM / 2
    b.sections.append(SectionGeometry(
        "soma", None, 0.0,
        np.array([[0, -half, 0, SOMA_DIAM_UM], [0, 0, 0, SOMA_DIAM_UM],
                  [0, half, 0, SOMA_DIAM_UM]], dtype=float)))

    # Basal trees leave the lower half of the soma, spread around the y axis.
    for t, terminals in enumerate(BASAL_TERMINAL_NSEG):
        az = 2 * np.pi * t / len(BASAL_TERMINAL_NSEG)
        out = np.array([np.cos(az), -0.6, np.sin(az)])
        start = np.array([0.0, -half, 0.0]) + 0.5 * SOMA_DIAM_UM * np.array(
            [np.cos(az), 0, np.sin(az)])
        root = b.add("basal", 0, 0.0, start, out, *BASAL_ROOT)
        for j in range(2):
            daughter = b.add("basal", root, 1.0, b.end_of(root), b.turn(b.direction_of(root), 35),
                             *BASAL_DAUGHTER)
            for n in terminals[2 * j: 2 * j + 2]:
                b.add("basal", daughter, 1.0, b.end_of(daughter),
                      b.turn(b.direction_of(daughter), 30), n, *BASAL_TERMINAL_DIAM)

    # Apical trunk straight up; obliques branch off at each junction below the nexus.
    # Sections are added depth first so that NEURON iterates each oblique right after the
    # trunk section it leaves from (neighbouring indices = neighbouring branches).
    parent, pos = 0, np.array([0.0, half, 0.0])
    trunk: list[int] = []
    for i, (nseg, length, d0, d1) in enumerate(TRUNK):
        parent = b.add("apical", parent, 1.0, pos, np.array([0, 1.0, 0]), nseg, d0, d1, length)
        trunk.append(parent)
        pos = b.end_of(parent)
        if i < len(OBLIQUE_TERMINAL_NSEG):
            az = 2.4 * i  # golden-angle-like spread of the obliques around the trunk
            out = np.array([np.cos(az), 0.5, np.sin(az)])
            root = b.add("apical", parent, 1.0, pos, out, *OBLIQUE_ROOT)
            for n in OBLIQUE_TERMINAL_NSEG[i]:
                b.add("apical", root, 1.0, b.end_of(root), b.turn(b.direction_of(root), 30),
                      n, *OBLIQUE_TERMINAL_DIAM)

    # Tuft: a binary tree of four levels from the nexus (end of the last trunk section).
    terminal_iter = iter(TUFT_TERMINAL_NSEG)

    def grow(parent_index: int, depth: int) -> None:
        for _ in range(2):
            direction = b.turn(b.direction_of(parent_index), 40 if depth == 0 else 30)
            if depth < len(TUFT_LEVELS):
                child = b.add("apical", parent_index, 1.0, b.end_of(parent_index), direction,
                              *TUFT_LEVELS[depth])
                grow(child, depth + 1)
            else:
                b.add("apical", parent_index, 1.0, b.end_of(parent_index), direction,
                      next(terminal_iter), *TUFT_TERMINAL_DIAM)

    grow(trunk[-1], 0)
    return Morphology("l5pc", tuple(b.sections))


def check_counts(morph: Morphology, expected: Sequence[tuple[SectionKind, int]]) -> None:
    """Raise CellError if the segment count of a kind differs from the expected one."""
    for kind, n in expected:
        got = morph.segment_count(kind)
        if got != n:
            raise CellError(None, f"{morph.name}: {got} {kind} segments, expected {n}")
