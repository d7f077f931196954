"""`build_cell`: the one place where a cell description becomes NEURON objects.

Sources:
  "l5pc"                  the generated L5PC geometry + Hay biophysics (built in)
  path/to/cell.swc|.asc   a reconstruction read by Import3d + Hay biophysics
  path/to/spec.yaml       a user's cell spec (hoc template, or a reconstruction)

Every cell gets the NeuronIO synapse layout, its segment metadata and, if asked, one of the
NeuronIO paper's variants (`cell_variant.CellVariant`). Build a cell once
per process and simulate it many times (`simulator.simulate` re-initialises each run).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neuron import h

from biophys_models.biophysics import apply_hay_biophysics, discretise
from biophys_models.cell_spec import (
    BUILTIN_CELLS,
    SPEC_SUFFIXES,
    CellSpec,
    NexusSpec,
    load_cell_spec,
)
from biophys_models.cell_variant import CellVariant
from biophys_models.errors import CellError
from biophys_models.membrane_variants import apply_variant
from biophys_models.morphology import check_counts, generate_l5pc
from biophys_models.readers import (
    RECONSTRUCTION_SUFFIXES,
    SectionOwner,
    check_diameters,
    sections_from_morphology,
    sections_from_reconstruction,
)
from biophys_models.sections import CellSections
from biophys_models.segments import Nexus, find_nexus, read_segments
from biophys_models.synapses import SynapseLayout, attach_synapses
from pipeline.datasets.contract import Segments

L5PC_SEGMENTS = (("basal", 262), ("apical", 377))
AXON_STUB = (2, 30.0, 1.0)  # sections, length um, diameter um (NeuronIO / Hay replace_axon)


@dataclass(frozen=True)
class Library:
    """Which build of the mechanisms a cell runs on: also compiled for CoreNEURON, and
    exact (cnexp, the rate expressions) or fast kinetics (`fixed_step`, rate tables)."""

    coreneuron: bool = False
    kinetics: str = "exact"


class Cell:
    """A built cell: its sections (altered as its variant says), segment metadata, nexus
    and synapses."""

    def __init__(self, name: str, sections: CellSections, owner: Any,
                 variant: CellVariant, library: Library = Library(),
                 nexus: NexusSpec | None = None, where: Path | None = None) -> None:
        apply_variant(sections, variant, where or name)
        self.name = name
        self.variant = variant
        self.library = library
        self.sections = sections
        self._owner = owner  # keeps the hoc template instance / section owner alive
        self.segments: Segments = read_segments(sections)
        self.nexus: Nexus = find_nexus(sections, self.segments, nexus, where)
        self.dendritic_segments: list[Any] = [seg for sec in sections.dendrites for seg in sec]
        self.soma = sections.soma[0]
        self.synapses: SynapseLayout = attach_synapses(self.dendritic_segments, variant.nmda)

    @property
    def coreneuron(self) -> bool:
        """Its mechanisms were also compiled for CoreNEURON."""
        return self.library.coreneuron

    @property
    def kinetics(self) -> str:
        """The kinetics its mechanisms were compiled for (RunSettings.kinetics must agree)."""
        return self.library.kinetics

    @property
    def num_exc(self) -> int:
        return self.synapses.num_exc

    @property
    def num_inh(self) -> int:
        return self.synapses.num_inh

    @property
    def label(self) -> str:
        """The name and, for a variant, what differs: what a data set calls its cell."""
        changes = self.variant.label()
        return f"{self.name} ({changes})" if changes else self.name

    @property
    def nexus_segment(self) -> Any:
        return self.dendritic_segments[self.nexus.segment]

    def set_nmda(self, enabled: bool) -> None:
        """Switch every excitatory synapse between AMPA+NMDA and AMPA-only."""
        self.synapses.set_nmda(enabled)

    def __repr__(self) -> str:
        return (f"Cell({self.name!r}, {len(self.segments)} dendritic segments, "
                f"num_exc={self.num_exc}, num_inh={self.num_inh})")


def _add_axon_stub(sections: CellSections, owner: SectionOwner) -> None:
    count, length, diam = AXON_STUB
    parent = sections.soma[0](0.5)
    for i in range(count):
        sec = h.Section(name=f"axon[{i}]", cell=owner)
        sec.L, sec.diam = length, diam
        sec.connect(parent, 0.0)
        parent = sec(1.0)
        sections.axon.append(sec)


def _with_hay_biophysics(sections: CellSections, owner: SectionOwner) -> CellSections:
    _add_axon_stub(sections, owner)
    discretise(sections.all())
    apply_hay_biophysics(sections)
    return sections


def _load(mod_files: list[Path] | None, library: Library) -> None:
    """Compile first (so a bad .mod is reported even if a library is loaded), then load."""
    from biophys_models.compile import builtin_mod_files, compile_mechanisms, load_mechanisms

    files = builtin_mod_files() if mod_files is None else mod_files
    compile_mechanisms(files, coreneuron=library.coreneuron, kinetics=library.kinetics)
    load_mechanisms(files, coreneuron=library.coreneuron, kinetics=library.kinetics)


def _build_reconstruction(path: Path, name: str, variant: CellVariant, library: Library,
                          spec: CellSpec | None = None) -> Cell:
    _load(None, library)
    owner = SectionOwner(name)
    sections = sections_from_reconstruction(path, owner)
    check_diameters(sections, path)
    if not sections.basal and not sections.apical:
        raise CellError(path, "the morphology has no basal or apical dendrite")
    return Cell(name, _with_hay_biophysics(sections, owner), owner, variant, library,
                spec.nexus if spec else None, spec.path if spec else None)


def _build_from_spec(spec: CellSpec, variant: CellVariant, library: Library) -> Cell:
    if spec.morphology is not None:
        return _build_reconstruction(spec.morphology, spec.name, variant, library, spec)
    from biophys_models.compile import builtin_mod_files
    from biophys_models.template import instantiate_template

    _load([*spec.mod_files(), *builtin_mod_files(include_channels=False)], library)
    sections, obj = instantiate_template(spec)
    check_diameters(sections, spec.path)
    if not sections.dendrites:
        raise CellError(spec.path, f"SectionLists '{spec.section_lists['basal']}' and "
                        f"'{spec.section_lists['apical']}' are both empty")
    return Cell(spec.name, sections, obj, variant, library, spec.nexus, spec.path)


def build_cell(source: str | Path, *, variant: CellVariant | None = None,
               coreneuron: bool = False, kinetics: str = "exact") -> Cell:
    """Build a cell (as `variant` says; default: unchanged) from a built-in name, a
    reconstruction file or a YAML spec.

    coreneuron=True compiles its mechanisms for CoreNEURON too (needed by
    RunSettings(coreneuron=True)); a process holds one mechanism library, so every cell
    of a process must agree on it. kinetics="fast" compiles their fixed-step forms
    (`fixed_step`; needed by RunSettings(kinetics="fast")), under the same rule.
    """
    variant = variant or CellVariant()
    library = Library(coreneuron, kinetics)
    if isinstance(source, str) and source in BUILTIN_CELLS:
        _load(None, library)
        morph = generate_l5pc()
        check_counts(morph, L5PC_SEGMENTS)
        owner = SectionOwner("l5pc")
        sections = _with_hay_biophysics(sections_from_morphology(morph, owner), owner)
        return Cell("l5pc", sections, owner, variant, library)
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix in SPEC_SUFFIXES:
        return _build_from_spec(load_cell_spec(path), variant, library)
    if suffix in RECONSTRUCTION_SUFFIXES:
        return _build_reconstruction(path.resolve(), path.stem, variant, library)
    raise CellError(source, f"not a built-in cell {list(BUILTIN_CELLS)}, a .yaml cell spec "
                    f"or a .swc/.asc morphology")
