"""The built-in l5pc cell and reconstructions: geometry, segment metadata, Hay rules."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from neuron import h

from biophys_models.biophysics import CA_LVA_HOT_S_CM2, apical_ih
from biophys_models.cell import build_cell
from biophys_models.errors import CellError
from biophys_models.morphology import Morphology, SectionGeometry, generate_l5pc
from biophys_models.segments import SegmentTable, branch_ids


@pytest.fixture(scope="module")
def cell():
    return build_cell("l5pc")


def test_l5pc_has_the_neuronio_segment_layout(cell):
    seg = cell.segments
    assert len(seg) == 639 and cell.num_exc == 639 and cell.num_inh == 639
    assert (seg.type[:262] == "basal").all() and (seg.type[262:] == "apical").all()
    assert [f.name for f in fields(SegmentTable)] == [
        "type", "section", "x", "length_um", "distance_um", "branch"]
    # NEURON order: sections ascending, x ascending within a section
    assert np.all(np.diff(seg.section) >= 0)
    same = np.diff(seg.section) == 0
    assert np.all(np.diff(seg.x)[same] > 0)
    for i, sec in enumerate(cell.sections.dendrites):
        assert sec.nseg == 1 + 2 * int(sec.L / 40)
        rows = seg.section == i
        assert rows.sum() == sec.nseg
        assert seg.length_um[rows].sum() == pytest.approx(sec.L)
    # synapse k and num_exc + k sit on segment k
    k = 300
    exc, inh = cell.synapses.excitatory[k], cell.synapses.inhibitory[k]
    assert exc.get_segment() == cell.dendritic_segments[k] == inh.get_segment()


def test_l5pc_proportions_and_axon_stub(cell):
    seg = cell.segments
    basal = seg.distance_um[seg.type == "basal"]
    apical = seg.distance_um[seg.type == "apical"]
    assert 150 < basal.max() < 400
    assert 1000 < apical.max() < 1600
    assert 700 < cell.nexus.distance_um < 1000
    axon = cell.sections.axon
    assert [(s.L, s.diam, s.nseg) for s in axon] == [(30.0, 1.0, 1), (30.0, 1.0, 1)]
    assert axon[0].parentseg().sec == cell.soma and axon[0].parentseg().x == 0.5
    assert axon[1].parentseg().sec == axon[0]


def test_nexus_is_where_the_trunk_splits_into_the_tuft(cell):
    nexus_sec = cell.nexus_segment.sec
    assert cell.segments.type[cell.nexus.segment] == "apical"
    assert cell.segments.x[cell.nexus.segment] == max(seg.x for seg in nexus_sec)
    daughters = nexus_sec.children()
    assert len(daughters) == 2
    # both daughters carry a real share of the tuft
    lengths = [sum(s.L for s in d.subtree()) for d in daughters]
    assert min(lengths) > 0.3 * max(lengths)


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
    assert 700 < swc.nexus.distance_um < 1000


ASC = """\
("CellBody" (Color Red) (CellBody)
  ( 0 -8 0 0.5) ( 8 0 0 0.5) ( 0 8 0 0.5) ( -8 0 0 0.5) )
( (Color Blue) (Dendrite)
  ( -8 0 0 2) ( -60 0 0 1.6)
  ( ( -100 30 0 1) ( -150 60 0 0.8) | ( -100 -30 0 1) ( -150 -60 0 0.8) ) )
( (Color Green) (Apical)
  ( 0 8 0 3) ( 0 300 0 2.5)
  ( ( 40 400 0 1.5) ( 60 500 0 1.2) | ( -40 400 0 1.5) ( -60 500 0 1.2) ) )
( (Color Yellow) (Axon)
  ( 0 -8 0 1.5) ( 0 -200 0 1) )
"""


def test_neurolucida_asc_gets_hay_rules_and_axon_stub(tmp_path: Path):
    path = tmp_path / "tiny.asc"
    path.write_text(ASC)
    asc = build_cell(path)
    assert len(asc.sections.basal) == 3 and len(asc.sections.apical) == 3
    assert [s.L for s in asc.sections.axon] == [30.0, 30.0]
    assert (asc.segments.type[: sum(s.nseg for s in asc.sections.basal)] == "basal").all()
    assert h.ismembrane("NaTs2_t", sec=asc.sections.apical[0])
    # the apical root splits into two equal daughters: that is the nexus
    assert asc.segments.section[asc.nexus.segment] == 3
    assert asc.num_exc == asc.num_inh == len(asc.segments)


def test_unknown_source_and_missing_morphology(tmp_path: Path):
    with pytest.raises(CellError, match="not a built-in cell"):
        build_cell("l5pc_v2")
    with pytest.raises(CellError, match="morphology file not found"):
        build_cell(tmp_path / "absent.swc")
