"""NEURON sections of one cell, grouped by kind, in the order NEURON iterates them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class CellSections:
    """Whatever built the sections (generator, Import3d, a hoc template) fills one of these."""

    soma: list[Any]
    axon: list[Any]
    basal: list[Any]
    apical: list[Any]

    def by_kind(self) -> dict[str, list[Any]]:
        return {"soma": self.soma, "axon": self.axon, "basal": self.basal, "apical": self.apical}

    @property
    def dendrites(self) -> list[Any]:
        """Basal then apical: the NeuronIO order of dendritic sections."""
        return [*self.basal, *self.apical]

    def all(self) -> list[Any]:
        return [*self.soma, *self.axon, *self.basal, *self.apical]
