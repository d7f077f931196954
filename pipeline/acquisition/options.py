"""What a simulation run is asked for, with its defaults: one field per flag of
`neurosurrogate simulate`. The stage takes its flags' defaults from here and `acquire`
fills the fields that params.yaml sets, so both run the same settings.

Light on purpose (no numpy, no NEURON): the stage imports it to build its `--help`.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

from biophys_models.cell_spec import BUILTIN_CELLS
from biophys_models.cell_variant import CellVariant


@dataclass(frozen=True)
class SimulateOptions:
    out: Path
    num_sims: int
    duration_ms: int = 6000
    seed: int = 0
    cell: str = BUILTIN_CELLS[0]  # a built-in cell or a YAML cell spec
    synapse: str = CellVariant.synapse  # the NeuronIO variant of the cell: CellVariant
    dendrites: str = CellVariant.dendrites
    sk_e2_factor: float = CellVariant.sk_e2_factor
    ih_vshift_mv: float = CellVariant.ih_vshift_mv
    workers: int | None = None  # local Dask worker processes (default: one per core)
    scheduler: str | None = None  # or the address of an existing Dask scheduler
    sims_per_shard: int = 8
    record_dendrites: bool = False
    dt: float = 0.025
    cvode: bool = False
    coreneuron: bool = False
    kinetics: str = "fast"  # or exact: RunSettings.kinetics (README, "Fast kinetics")
    protocol_preset: str = "nmda"  # per-tree ranges, pipeline.protocol.PROTOCOL_PRESETS
    exc_range: str | None = None  # LOW,HIGH for both trees (spikes per tree per 100 ms)
    inh_offsets: str | None = None  # BELOW,ABOVE for both trees: [exc - B, exc + A]
    recycle_after: int = 256  # simulations per worker process between restarts (0: never)
    export_neuronio: Path | None = None  # also write the NeuronIO pickle layout here

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SimulateOptions:
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})

    @classmethod
    def default(cls, name: str) -> Any:
        """The default of field `name` (what the flag of the same name defaults to)."""
        field = next(f for f in fields(cls) if f.name == name)
        if field.default is MISSING:
            raise KeyError(f"{name} has no default")
        return field.default
