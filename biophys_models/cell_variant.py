"""The NeuronIO paper's cell variants, as data (applied by `membrane_variants`).

Beniaguev et al. (2021) fit networks to the L5PC and to altered copies of it: AMPA-only
excitatory synapses, passive dendrites (no active conductance on basal and apical
sections), the SK_E2 conductance of soma, axon and apical tree scaled by a factor, and a
shifted Ih activation (../shared/reference/neuronio.md, "Input spike protocol", last item).
`membrane_variants.apply_variant` alters a built cell's sections after its biophysics, so a
variant works the same for the built-in cell, a reconstruction and a user's hoc template.
Light on purpose (no NEURON): the simulate stage builds its `--help` from it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.protocol import DENDRITES, SYNAPSES


@dataclass(frozen=True)
class CellVariant:
    """Which NeuronIO variant of a cell to simulate; the default is the cell unchanged."""

    synapse: str = "ampa_nmda"
    dendrites: str = "active"
    sk_e2_factor: float = 1.0
    ih_vshift_mv: float = 0.0  # Ih activation moved by this many mV (+: to depolarised v)

    def __post_init__(self) -> None:
        if self.synapse not in SYNAPSES:
            raise ValueError(f"synapse must be one of {list(SYNAPSES)}, got {self.synapse!r}")
        if self.dendrites not in DENDRITES:
            raise ValueError(f"dendrites must be one of {list(DENDRITES)}, "
                             f"got {self.dendrites!r}")
        if not (math.isfinite(self.sk_e2_factor) and self.sk_e2_factor >= 0):
            raise ValueError(f"sk_e2_factor must be a number >= 0, got {self.sk_e2_factor}")
        if not math.isfinite(self.ih_vshift_mv):
            raise ValueError(f"ih_vshift_mv must be a finite number, got {self.ih_vshift_mv}")

    @property
    def nmda(self) -> bool:
        return self.synapse == "ampa_nmda"

    @property
    def is_default(self) -> bool:
        return self == CellVariant()

    def label(self) -> str:
        """A short name for tables: '' for the unchanged cell, else e.g. 'AMPA-only, passive'."""
        parts = (["AMPA-only"] if not self.nmda else []) + (
            ["passive dendrites"] if self.dendrites == "passive" else [])
        if self.sk_e2_factor != 1.0:
            parts.append(f"SK_E2 x{self.sk_e2_factor:g}")
        if self.ih_vshift_mv != 0.0:
            parts.append(f"Ih shift {self.ih_vshift_mv:+g} mV")
        return ", ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
