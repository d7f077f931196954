"""The built-in l5pc cell and reconstructions: geometry, segment metadata, Hay rules."""

from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from neuron import h

from biophys_models.biophysics import CA_LVA_HOT_S_CM2, apical_ih
from biophys_models.cell import build_cell
from biophys_models.cell_spec import NexusSpec
from biophys_models.cell_variant import CellVariant
from biophys_models.errors import CellError
from biophys_models.morphology import Morphology, SectionGeometry, generate_l5pc
from biophys_models.segments import NEXUS_SHARE, branch_ids, find_nexus
from pipeline.datasets.contract import Segments
from pipeline.protocol import synapses_of_segment


@pytest.fixture(scope="module")
def cell():
    return build_cell("l5pc")


def _x(cell) -> np.ndarray:
    """Position along its section of every dendritic segment, in segment order."""
    return np.array([seg.x for seg in cell.dendritic_segments])


def test_l5pc_has_the_neuronio_segment_layout(cell):
    seg = cell.segments
    assert isinstance(seg, Segments)  # the data contract's table, stored as is
    assert len(seg) == 639 and cell.num_exc == 639 and cell.num_inh == 639
    assert (seg.type[:262] == "basal").all() and (seg.type[262:] == "apical").all()
    assert [f.name for f in fields(Segments)] == [
        "type", "length_um", "distance_um", "section", "branch"]
    # NEURON order: sections ascending, x ascending within a section
    assert np.all(np.diff(seg.section) >= 0)
    same = np.diff(seg.section) == 0
    assert np.all(np.diff(_x(cell))[same] > 0)
    for i, sec in enumerate(cell.sections.dendrites):
        assert sec.nseg == 1 + 2 * int(sec.L / 40)
        rows = seg.section == i
        assert rows.sum() == sec.nseg
        assert seg.length_um[rows].sum() == pytest.approx(sec.L)
    # synapse k and num_exc + k sit on segment k, and their input NetCons have those indices
    k = 300
    exc, inh = cell.synapses.excitatory[k], cell.synapses.inhibitory[k]
    assert exc.get_segment() == cell.dendritic_segments[k] == inh.get_segment()
    e, i = synapses_of_segment(k, len(seg))
    assert (e, i) == (k, 639 + k)
    assert cell.synapses.inputs[e].syn() == exc and cell.synapses.inputs[i].syn() == inh


def test_l5pc_proportions_and_axon_stub(cell):
    seg = cell.segments
    basal = seg.distance_um[seg.type == "basal"]
    apical = seg.distance_um[seg.type == "apical"]
    assert 150 < basal.max() < 400
    assert 1000 < apical.max() < 1600
    assert 650 < cell.nexus.distance_um < 720  # the NeuronIO cell's nexus: 678 um
    axon = cell.sections.axon
    assert [(s.L, s.diam, s.nseg) for s in axon] == [(30.0, 1.0, 1), (30.0, 1.0, 1)]
    assert axon[0].parentseg().sec == cell.soma and axon[0].parentseg().x == 0.5
    assert axon[1].parentseg().sec == axon[0]


def _subtree_um(sec) -> float:
    return sum(s.L for s in sec.subtree())


def test_nexus_is_where_the_trunk_splits_into_the_tuft(cell):
    nexus_sec = cell.nexus_segment.sec
    assert cell.segments.type[cell.nexus.segment] == "apical"
    # NeuronIO records apic[50](0.9): the segment holding x = 0.9 of the last trunk section
    assert cell.nexus.x == _x(cell)[cell.nexus.segment]
    assert cell.nexus_segment == nexus_sec(0.9)
    daughters = nexus_sec.children()
    assert len(daughters) == 2
    # both daughters carry a real share of the tuft
    lengths = [_subtree_um(d) for d in daughters]
    assert min(lengths) > 0.3 * max(lengths)
    # below it every trunk junction gives off an oblique: a small share of what lies beyond
    sec, junctions = nexus_sec, 0
    while (parent := sec.parentseg().sec) in cell.sections.apical:
        others = [_subtree_um(c) for c in parent.children() if c != sec]
        assert len(others) == 1 and others[0] < NEXUS_SHARE * (others[0] + _subtree_um(sec))
        sec, junctions = parent, junctions + 1
    assert junctions == 10  # the ten obliques of the generated trunk
    # the generated trunk is 678 um and starts at the soma's end (11.6 um): the tuft starts
    # at 689.6 um, and x = 0.9 of the last (99 um, 5-segment) section is its last segment
    assert h.distance(cell.soma(0.5), nexus_sec(1)) == pytest.approx(689.6, abs=1e-3)
    assert cell.nexus.distance_um == pytest.approx(689.6 - 99.0 / 10, abs=1e-3)


def test_named_nexus_resolves_a_section_name(cell):
    nexus_sec = cell.nexus_segment.sec
    name = nexus_sec.name().rsplit(".", 1)[-1]  # hoc's name after the cell prefix
    assert name == "apic[50]"  # where NeuronIO records its cell's nexus
    assert find_nexus(cell.sections, cell.segments, NexusSpec(name, 0.9)) == cell.nexus
    assert find_nexus(cell.sections, cell.segments, NexusSpec(nexus_sec.name(), 0.9)) \
        == cell.nexus
    first = find_nexus(cell.sections, cell.segments, NexusSpec("apic[0]", 0.0))
    assert first.segment == 262 and first.section == len(cell.sections.basal)
    last = find_nexus(cell.sections, cell.segments, NexusSpec("apic[0]", 1.0))
    assert last.segment == 262 + cell.sections.apical[0].nseg - 1
    assert last.x == max(seg.x for seg in cell.sections.apical[0])
    with pytest.raises(CellError, match=r"^cell.yaml: nexus section 'apic\[500\]' is not an "
                       r"apical section .*apic\[0\] \.\. apic\[108\]"):
        find_nexus(cell.sections, cell.segments, NexusSpec("apic[500]", 0.9), "cell.yaml")
    with pytest.raises(CellError, match="'dend\\[0\\]' is not an apical section"):
        find_nexus(cell.sections, cell.segments, NexusSpec("dend[0]", 0.5), "cell.yaml")


def test_hay_rules_by_kind_and_distance(cell):
    soma, basal = cell.soma, cell.sections.basal[0]
    assert soma(0.5).gNaTs2_tbar_NaTs2_t == pytest.approx(0.998912)
    assert soma.ek == -85 and soma.ena == 50
    assert not h.ismembrane("NaTs2_t", sec=basal) and basal(0.5).gIhbar_Ih == 5e-5
    assert cell.sections.axon[0](0.5).gNaTa_tbar_NaTa_t == pytest.approx(3.89618)
    assert basal.cm == 2 and soma.cm == 1
    seg = cell.segments
    apical = np.flatnonzero(seg.type == "apical")
    ih = np.array([cell.dendritic_segments[i].gIhbar_Ih for i in apical])
    dist = seg.distance_um[apical]
    near, far = dist < 100, dist > 900
    assert ih[near].max() < ih[far].min()
    assert ih.max() == pytest.approx(apical_ih(0.65))
    lva = np.array([cell.dendritic_segments[i].gCa_LVAstbar_Ca_LVAst for i in apical])
    hot = (dist >= 685) & (dist <= 885)
    assert hot.sum() > 5
    assert np.allclose(lva[hot], CA_LVA_HOT_S_CM2)
    assert np.allclose(lva[~hot], 0.01 * CA_LVA_HOT_S_CM2)


def test_branch_ids_join_only_unbranched_chains():
    a, b, c, d = (h.Section(name=f"chain_{n}") for n in "abcd")
    root = h.Section(name="chain_root")
    a.connect(root(1))
    b.connect(a(1))  # a has one child: a and b are one branch
    c.connect(b(1))
    d.connect(b(1))  # b splits: c and d are new branches
    e = h.Section(name="chain_e")
    e.connect(c(0.5))  # a child in the middle of c: e is its own branch
    assert branch_ids([a, b, c, d, e]) == [0, 0, 1, 2, 3]


def test_l5pc_branches_are_unbranched_sections(cell):
    # every section of the generated cell ends in a split or a tip: one id per section
    seg = cell.segments
    assert len(np.unique(seg.branch)) == len(cell.sections.dendrites)
    assert np.array_equal(np.unique(seg.branch[np.r_[0, np.flatnonzero(np.diff(seg.section))
                                                      + 1]]),
                          np.arange(len(cell.sections.dendrites)))


def test_zero_diameter_geometry_is_refused():
    good = generate_l5pc()
    bad_points = good.sections[5].points.copy()
    bad_points[:, 3] = 0.0
    sections = list(good.sections)
    sections[5] = SectionGeometry(sections[5].kind, sections[5].parent, 1.0, bad_points)
    with pytest.raises(CellError, match="section 5 .* zero diameter"):
        Morphology("broken", tuple(sections))


def test_generated_morphology_reads_back_as_swc(cell, tmp_path: Path):
    path = tmp_path / "l5pc.swc"
    generate_l5pc().write_swc(path)
    swc = build_cell(path)
    assert len(swc.sections.basal) == len(cell.sections.basal)
    assert len(swc.sections.apical) == len(cell.sections.apical)
    # Import3d starts soma children at the soma centre, which lengthens roots by <= 11 um
    assert abs(len(swc.segments) - len(cell.segments)) <= 16
    assert len(swc.sections.axon) == 2 and swc.num_exc == len(swc.segments)
    assert abs(swc.nexus.distance_um - cell.nexus.distance_um) < 20
    soma_area = sum(seg.area() for seg in swc.soma)  # the SWC soma keeps our membrane area
    assert soma_area == pytest.approx(sum(seg.area() for seg in cell.soma), rel=0.01)


# --------------------------------------------------------------------------------------------
# Reconstructions: one small tree, written by the test as SWC and as Neurolucida .asc, read
# through Import3d. Every expectation below is derived from this description (section order,
# lengths, path distances) or typed from the published Hay/NeuronIO rules, never read back
# from biophys_models, so a wrong rule or wrong metadata fails here.

Point = tuple[float, float, float, float]  # x, y, z, diameter (um)
Node = tuple[str, list[Point], list["Node"]]  # kind, points, children

SOMA_RADIUS_UM = 8.0
#: Two basal trees (one forked), an apical trunk of 942 um that gives off an oblique at 392 um
#: and forks into a two-branch tuft (tips at 1234 um), and an axon Import3d must drop.
TREE: list[Node] = [
    ("basal", [(-8, 0, 0, 1.2), (-60, -20, 0, 1.0)], [
        ("basal", [(-120, -10, 0, 0.7), (-170, 0, 0, 0.6)], []),
        ("basal", [(-100, -70, 0, 0.7), (-130, -110, 0, 0.6)], []),
    ]),
    ("basal", [(8, 0, 0, 1.2), (90, -30, 0, 0.8), (150, -40, 0, 0.6)], []),
    ("apical", [(0, 8, 0, 3.0), (0, 400, 0, 2.5)], [
        ("apical", [(0, 700, 0, 2.2), (0, 950, 0, 2.0)], [
            ("apical", [(150, 1200, 0, 1.0)], []),
            ("apical", [(-150, 1200, 0, 1.0)], []),
        ]),
        ("apical", [(80, 480, 0, 0.8), (120, 560, 0, 0.6)], []),
    ]),
    ("axon", [(0, -8, 0, 1.0), (0, -300, 0, 0.8)], []),
]


def _swc_text(tree: list[Node]) -> str:
    """Standard 3-point soma; every point's parent is the previous point or the fork."""
    r = SOMA_RADIUS_UM
    lines = [f"1 1 0 0 0 {r} -1", f"2 1 0 {-r} 0 {r} 1", f"3 1 0 {r} 0 {r} 1"]
    swc_type = {"basal": 3, "apical": 4, "axon": 2}

    def walk(node: Node, parent: int) -> None:
        kind, points, children = node
        for x, y, z, d in points:
            lines.append(f"{len(lines) + 1} {swc_type[kind]} {x} {y} {z} {d / 2} {parent}")
            parent = len(lines)
        for child in children:
            walk(child, parent)

    for root in tree:
        walk(root, 1)
    return "\n".join(lines) + "\n"


def _asc_text(tree: list[Node]) -> str:
    """A soma contour and one Neurolucida tree per root; forks are ( a | b )."""
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    contour = " ".join(f"({SOMA_RADIUS_UM * np.cos(a):.3f} {SOMA_RADIUS_UM * np.sin(a):.3f} 0 1)"
                       for a in angles)
    tag = {"basal": "Dendrite", "apical": "Apical", "axon": "Axon"}

    def body(node: Node) -> str:
        _, points, children = node
        text = " ".join(f"({x} {y} {z} {d})" for x, y, z, d in points)
        if children:
            text += " ( " + " | ".join(body(c) for c in children) + " )"
        return text

    trees = [f"( ({tag[root[0]]}) {body(root)} )" for root in tree]
    return "\n".join([f'("CellBody" (Color Red) (CellBody) {contour} )', *trees]) + "\n"


def _expected_sections(tree: list[Node]) -> dict[str, list[tuple[float, float]]]:
    """(length, path distance of the start) per dendritic section, in NEURON's order
    (depth first, children in file order): a root starts at its first point, a child at
    its parent's last point; both Import3d readers attach roots at soma(0.5)."""
    out: dict[str, list[tuple[float, float]]] = {"basal": [], "apical": []}

    def walk(node: Node, start: np.ndarray | None, start_dist: float) -> None:
        kind, points, children = node
        pts = np.array([p[:3] for p in points], dtype=float)
        if start is not None:
            pts = np.vstack([start, pts])
        length = float(np.linalg.norm(np.diff(pts, axis=0), axis=1).sum())
        out[kind].append((length, start_dist))
        for child in children:
            walk(child, pts[-1], start_dist + length)

    for root in tree:
        if root[0] != "axon":
            walk(root, None, 0.0)
    return out


def _published_apical_ih(relative_distance: float) -> float:
    """Hay 2011 (5b variant) apical Ih, S/cm2, typed from the reference sheet."""
    return 1e-4 * (-0.8696 + 2.0870 * math.exp(3.6161 * min(relative_distance, 0.65)))


@pytest.fixture(scope="module", params=["swc", "asc"])
def reconstruction(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("reconstruction") / f"tiny.{request.param}"
    path.write_text(_swc_text(TREE) if request.param == "swc" else _asc_text(TREE))
    return build_cell(path)


def test_reconstruction_sections_follow_the_file(reconstruction):
    cell = reconstruction
    expected = _expected_sections(TREE)
    for kind in ("basal", "apical"):
        secs = getattr(cell.sections, kind)
        assert [s.L for s in secs] == pytest.approx([length for length, _ in expected[kind]],
                                                    abs=1e-3)
        for sec, (_, start) in zip(secs, expected[kind], strict=True):
            assert h.distance(cell.soma(0.5), sec(0)) == pytest.approx(start, abs=1e-3)
            assert sec.nseg == 1 + 2 * int(sec.L / 40)
    # the file's axon is gone; the NeuronIO stub (2 x 30 um, diam 1) hangs at soma(0.5)
    assert [(s.L, s.diam, s.nseg) for s in cell.sections.axon] == [(30.0, 1.0, 1)] * 2
    assert cell.sections.axon[0].parentseg().sec == cell.soma
    assert cell.sections.axon[0].parentseg().x == 0.5
    names = [s.name() for s in cell.soma.wholetree()]
    assert sum("axon" in n for n in names) == 2


def test_reconstruction_gets_the_hay_rules(reconstruction):
    cell = reconstruction
    soma, axon = cell.soma(0.5), cell.sections.axon[0](0.5)
    assert (cell.soma.cm, soma.pas.g, soma.pas.e) == (1.0, 3e-5, -90.0)
    assert soma.gNaTs2_tbar_NaTs2_t == pytest.approx(0.998912)
    assert soma.gSK_E2bar_SK_E2 == pytest.approx(0.09965)
    assert soma.gIhbar_Ih == pytest.approx(0.000075)
    assert soma.CaDynamics_E2.decay == pytest.approx(294.68)
    assert soma.CaDynamics_E2.gamma == pytest.approx(0.000509)
    assert (cell.soma.ek, cell.soma.ena) == (-85.0, 50.0)
    assert axon.gNaTa_tbar_NaTa_t == pytest.approx(3.89618)
    assert axon.gK_Pstbar_K_Pst == pytest.approx(0.188851)
    assert axon.gIhbar_Ih == pytest.approx(0.00005) and axon.pas.g == 3e-5
    for sec in cell.sections.basal:
        assert sec.cm == 2.0 and not h.ismembrane("NaTs2_t", sec=sec)
        assert not h.ismembrane("Ca_LVAst", sec=sec)
        assert all(seg.gIhbar_Ih == 5e-5 and seg.pas.g == 6e-5 for seg in sec)

    seg = cell.segments
    apical = np.flatnonzero(seg.type == "apical")
    dist = seg.distance_um[apical]
    longest = max(length + start for length, start in _expected_sections(TREE)["apical"])
    ih = np.array([cell.dendritic_segments[i].gIhbar_Ih for i in apical])
    expected_ih = np.array([_published_apical_ih(d / longest) for d in dist])
    assert ih == pytest.approx(expected_ih, rel=1e-9)
    order = np.argsort(dist)
    assert np.all(np.diff(ih[order]) >= 0)  # increases with distance ...
    beyond = dist > 0.65 * longest
    assert 0 < beyond.sum() < len(dist)
    assert np.allclose(ih[beyond], _published_apical_ih(0.65))  # ... up to 0.65 of the path
    assert ih[~beyond].max() < _published_apical_ih(0.65)
    lva = np.array([cell.dendritic_segments[i].gCa_LVAstbar_Ca_LVAst for i in apical])
    hot = (dist >= 685) & (dist <= 885)
    assert hot.sum() >= 5 and (dist < 685).any() and (dist > 885).any()
    assert np.allclose(lva[hot], 0.141954 * 1.6)
    assert np.allclose(lva[~hot], 0.01 * 0.141954 * 1.6)
    for i in apical:
        s = cell.dendritic_segments[i]
        assert s.sec.cm == 2.0 and s.gNaTs2_tbar_NaTs2_t == pytest.approx(0.021489)


def test_reconstruction_segment_metadata(reconstruction):
    cell = reconstruction
    seg = cell.segments
    secs = cell.sections.dendrites
    n_basal = sum(s.nseg for s in cell.sections.basal)
    assert len(seg) == sum(s.nseg for s in secs) == 107
    assert (seg.type[:n_basal] == "basal").all() and (seg.type[n_basal:] == "apical").all()
    starts = [start for kind in ("basal", "apical") for _, start in _expected_sections(TREE)[kind]]
    x = _x(cell)
    for i, sec in enumerate(secs):
        rows = np.flatnonzero(seg.section == i)
        assert len(rows) == sec.nseg and np.all(np.diff(rows) == 1)
        assert x[rows] == pytest.approx((np.arange(sec.nseg) + 0.5) / sec.nseg)
        assert seg.length_um[rows] == pytest.approx(np.full(sec.nseg, sec.L / sec.nseg))
        # path distance of each segment centre from the file geometry alone
        assert seg.distance_um[rows] == pytest.approx(starts[i] + x[rows] * sec.L,
                                                      abs=1e-6)
        assert len(set(seg.branch[rows])) == 1  # a section lies on one branch
    # every section here ends in a fork or a tip: one branch id per section, in order
    assert np.array_equal(seg.branch[np.r_[0, np.flatnonzero(np.diff(seg.section)) + 1]],
                          np.arange(len(secs)))
    # the trunk (second apical section, 550 um, 27 segments) forks into two equal tuft
    # branches: the nexus is its segment holding x = 0.9 (segment 24), not the oblique's fork
    trunk = len(cell.sections.basal) + 1
    assert cell.nexus.section == trunk
    assert cell.nexus.segment == np.flatnonzero(seg.section == trunk)[24]
    assert cell.nexus.distance_um == pytest.approx(392.0 + 550.0 * 24.5 / 27, abs=1e-3)


def test_reconstruction_gets_the_neuronio_synapse_layout(reconstruction):
    cell = reconstruction
    n = len(cell.segments)
    assert cell.num_exc == cell.num_inh == n
    assert len(cell.synapses.inputs) == 2 * n
    for k, seg in enumerate(cell.dendritic_segments):
        # synapses k and num_exc + k sit on segment k, which is where the table says
        assert cell.synapses.excitatory[k].get_segment() == seg
        assert cell.synapses.inhibitory[k].get_segment() == seg
        assert seg.sec == cell.sections.dendrites[cell.segments.section[k]]
        e, i = synapses_of_segment(k, n)
        assert cell.synapses.inputs[e].syn().get_segment() == seg
        assert cell.synapses.inputs[i].syn().get_segment() == seg
    n_basal = sum(s.nseg for s in cell.sections.basal)
    assert all(cell.dendritic_segments[k].sec in cell.sections.basal for k in range(n_basal))
    assert all(cell.dendritic_segments[k].sec in cell.sections.apical
               for k in range(n_basal, n))
    assert {syn.gmax_AMPA for syn in cell.synapses.excitatory} == {0.0004}
    assert {syn.gmax_NMDA for syn in cell.synapses.excitatory} == {0.0004}
    assert {syn.gmax for syn in cell.synapses.inhibitory} == {0.001}


def test_ampa_only_build_removes_exactly_the_nmda_conductance(tmp_path: Path):
    path = tmp_path / "tiny.swc"
    path.write_text(_swc_text(TREE))
    cell = build_cell(path, variant=CellVariant(synapse="ampa"))
    assert {syn.gmax_NMDA for syn in cell.synapses.excitatory} == {0.0}
    assert {syn.gmax_AMPA for syn in cell.synapses.excitatory} == {0.0004}
    cell.set_nmda(True)
    assert {syn.gmax_NMDA for syn in cell.synapses.excitatory} == {0.0004}


def test_unknown_source_and_missing_morphology(tmp_path: Path):
    with pytest.raises(CellError, match="not a built-in cell"):
        build_cell("l5pc_v2")
    with pytest.raises(CellError, match="morphology file not found"):
        build_cell(tmp_path / "absent.swc")
