"""The data contract (docs/data-format.md): what a data set holds, in memory.

`DatasetInfo` (the attributes every shard shares), `Segments` (per-segment metadata, also
what a built cell reports), `SimBatch` (a group of simulations) with its validation, and the
binning conventions the models consume. Free of HDF5 and NEURON and of the rest of the
project but pipeline.errors, so that `biophys_models` (which fills `Segments`) and every
reader can use it; the files are written and read in `shards` (HDF5) and
`manifest`, a data set folder as a whole is `dataset.Dataset`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from pipeline.errors import UserError

SCHEMA_VERSION = 1  # of the shards and of manifest.json
SOURCES = ("simulated", "neuronio")


@dataclass(frozen=True)
class DatasetInfo:
    """Root attributes shared by every shard of a data set."""

    num_exc: int
    num_inh: int
    duration_ms: int
    source: str
    cell: str

    @property
    def num_inputs(self) -> int:
        return self.num_exc + self.num_inh

    def check(self, where: str | Path) -> None:
        if self.source not in SOURCES:
            raise UserError(where, f"source must be one of {SOURCES}, got {self.source!r}")
        if min(self.num_exc, self.num_inh) < 0 or self.num_inputs == 0 or self.duration_ms <= 0:
            raise UserError(where, f"impossible data set attributes {self}")


@dataclass(frozen=True)
class Segments:
    """Per-dendritic-segment metadata, in the NeuronIO segment order (basal, then apical).

    Segment k carries the inputs `pipeline.protocol.synapses_of_segment(k, len(segments))`.
    A shard stores the fields as str, float32, float32, int32, int32 (segments/*); a cell
    built by `biophys_models` fills them at float64, which the input protocol reads.
    """

    type: np.ndarray  # str, 'basal' or 'apical'
    length_um: np.ndarray  # float, segment length (L / nseg)
    distance_um: np.ndarray  # float, path distance from the soma to the segment centre
    section: np.ndarray  # int32, index of the section among the dendritic sections
    branch: np.ndarray  # int32, id of the unbranched section chain

    def __len__(self) -> int:
        return len(self.type)


@dataclass
class SimBatch:
    """The content of one shard (or any group of simulations) in memory.

    Input spikes are rows (sim, synapse, time_ms) sorted by sim, then time, then synapse;
    `sim` is the row index within this batch, not the sim id.
    """

    info: DatasetInfo
    sim_id: np.ndarray
    soma_voltage_mv: np.ndarray
    input_sim: np.ndarray
    input_synapse: np.ndarray
    input_time_ms: np.ndarray
    output_sim: np.ndarray
    output_time_ms: np.ndarray
    nexus_voltage_mv: np.ndarray | None = None
    dendritic_voltage_mv: np.ndarray | None = None
    segments: Segments | None = None

    def __post_init__(self) -> None:
        self.sim_id = np.asarray(self.sim_id, dtype=np.int64)
        self.soma_voltage_mv = np.asarray(self.soma_voltage_mv, dtype=np.float32)
        self.input_sim = np.asarray(self.input_sim, dtype=np.int32)
        self.input_synapse = np.asarray(self.input_synapse, dtype=np.int32)
        self.input_time_ms = np.asarray(self.input_time_ms, dtype=np.int32)
        self.output_sim = np.asarray(self.output_sim, dtype=np.int32)
        self.output_time_ms = np.asarray(self.output_time_ms, dtype=np.float32)
        if self.nexus_voltage_mv is not None:
            self.nexus_voltage_mv = np.asarray(self.nexus_voltage_mv, dtype=np.float32)
        if self.dendritic_voltage_mv is not None:
            self.dendritic_voltage_mv = np.asarray(self.dendritic_voltage_mv, dtype=np.float16)

    @property
    def num_sims(self) -> int:
        return len(self.sim_id)

    def validate(self, where: str | Path) -> None:
        """Raise UserError naming `where` for anything that breaks the contract."""
        info, n, t = self.info, self.num_sims, self.info.duration_ms
        info.check(where)
        if len(np.unique(self.sim_id)) != n:
            raise UserError(where, "duplicate sim_id within one shard")
        if self.soma_voltage_mv.shape != (n, t):
            raise UserError(where, f"soma_voltage_mv has shape {self.soma_voltage_mv.shape}, "
                                   f"expected ({n}, {t}) = (simulations, duration_ms)")
        _check_finite(where, "soma_voltage_mv", self.soma_voltage_mv)
        if self.nexus_voltage_mv is not None:
            if self.nexus_voltage_mv.shape != (n, t):
                raise UserError(where, f"nexus_voltage_mv has shape {self.nexus_voltage_mv.shape},"
                                       f" expected ({n}, {t})")
            _check_finite(where, "nexus_voltage_mv", self.nexus_voltage_mv)
        if self.segments is not None:
            for name in (f.name for f in fields(Segments)):
                if len(getattr(self.segments, name)) != info.num_exc:
                    raise UserError(where, f"segments/{name} must have num_exc = {info.num_exc} "
                                           f"entries, got {len(getattr(self.segments, name))}")
        if self.dendritic_voltage_mv is not None:
            want = (n, info.num_exc, t)
            if self.dendritic_voltage_mv.shape != want:
                raise UserError(where, f"dendritic_voltage_mv has shape "
                                       f"{self.dendritic_voltage_mv.shape}, expected {want}")
            _check_finite(where, "dendritic_voltage_mv", self.dendritic_voltage_mv)
        _check_rows(where, "input_spikes", self.input_sim, n, self.input_time_ms, 0, t)
        if len(self.input_synapse) != len(self.input_sim):
            raise UserError(where, "input_spikes columns differ in length")
        if len(self.input_synapse) and (self.input_synapse.min() < 0
                                        or self.input_synapse.max() >= info.num_inputs):
            raise UserError(where, f"input synapse index outside 0..{info.num_inputs - 1}")
        order = np.lexsort((self.input_synapse, self.input_time_ms, self.input_sim))
        if np.any(order != np.arange(len(order))):
            raise UserError(where, "input_spikes rows are not sorted by sim, then time")
        _check_rows(where, "output_spikes", self.output_sim, n, self.output_time_ms, 0, t)
        if np.any(np.diff(self.output_sim) < 0):
            raise UserError(where, "output_spikes rows are not sorted by sim")

    def select(self, rows: Sequence[int]) -> SimBatch:
        """The simulations at `rows` (in that order), with spike rows renumbered."""
        rows = np.asarray(rows, dtype=np.int64)
        new_index = np.full(self.num_sims, -1, dtype=np.int64)
        new_index[rows] = np.arange(len(rows))
        inp = _take_rows(new_index, self.input_sim, self.input_synapse, self.input_time_ms)
        out = _take_rows(new_index, self.output_sim, self.output_time_ms)
        return replace(
            self,
            sim_id=self.sim_id[rows],
            soma_voltage_mv=self.soma_voltage_mv[rows],
            input_sim=inp[0], input_synapse=inp[1], input_time_ms=inp[2],
            output_sim=out[0], output_time_ms=out[1],
            nexus_voltage_mv=None if self.nexus_voltage_mv is None else self.nexus_voltage_mv[rows],
            dendritic_voltage_mv=(None if self.dendritic_voltage_mv is None
                                  else self.dendritic_voltage_mv[rows]),
        )

    def input_spikes_of(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """(synapse, time_ms) of one simulation."""
        lo, hi = np.searchsorted(self.input_sim, [row, row + 1])
        return self.input_synapse[lo:hi], self.input_time_ms[lo:hi]

    def output_spikes_of(self, row: int) -> np.ndarray:
        lo, hi = np.searchsorted(self.output_sim, [row, row + 1])
        return self.output_time_ms[lo:hi]


def _check_finite(where: str | Path, name: str, values: np.ndarray) -> None:
    if not np.all(np.isfinite(values)):
        raise UserError(where, f"{name} holds NaN or infinite values")


def _check_rows(where: str | Path, name: str, sim: np.ndarray, n: int, time: np.ndarray,
                t_min: float, t_max: float) -> None:
    if len(sim) != len(time):
        raise UserError(where, f"{name} columns differ in length")
    if len(sim) == 0:
        return
    if sim.min() < 0 or sim.max() >= n:
        raise UserError(where, f"{name}/sim outside 0..{n - 1}")
    if not np.all(np.isfinite(time)) or time.min() < t_min or time.max() >= t_max:
        raise UserError(where, f"{name} time outside the simulation [{t_min}, {t_max}) ms")


def _take_rows(new_index: np.ndarray, sim: np.ndarray, *cols: np.ndarray) -> list[np.ndarray]:
    mapped = new_index[sim] if len(sim) else np.empty(0, dtype=np.int64)
    keep = mapped >= 0
    mapped, kept = mapped[keep], [c[keep] for c in cols]
    order = np.argsort(mapped, kind="stable")  # keeps time order within each simulation
    return [mapped[order].astype(np.int32), *(c[order] for c in kept)]


def sort_input_rows(sim: np.ndarray, synapse: np.ndarray, time_ms: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Put input spike rows into the contract's order: sim, then time, then synapse."""
    order = np.lexsort((synapse, time_ms, sim))
    return sim[order], synapse[order], time_ms[order]


def concat(batches: Sequence[SimBatch]) -> SimBatch:
    """Stack batches of one data set; spike rows are renumbered to the new row indices."""
    if not batches:
        raise ValueError("concat needs at least one batch")
    first = batches[0]
    offsets = np.cumsum([0] + [b.num_sims for b in batches[:-1]])
    pairs = list(zip(batches, offsets, strict=True))

    def cat(name: str) -> np.ndarray | None:
        parts = [getattr(b, name) for b in batches]
        return None if any(p is None for p in parts) else np.concatenate(parts)

    return replace(
        first,
        sim_id=cat("sim_id"),
        soma_voltage_mv=cat("soma_voltage_mv"),
        input_sim=np.concatenate([b.input_sim + o for b, o in pairs]),
        input_synapse=cat("input_synapse"), input_time_ms=cat("input_time_ms"),
        output_sim=np.concatenate([b.output_sim + o for b, o in pairs]),
        output_time_ms=cat("output_time_ms"),
        nexus_voltage_mv=cat("nexus_voltage_mv"),
        dendritic_voltage_mv=cat("dendritic_voltage_mv"),
    )


# ------------------------------------------------------------------- what the models consume

def input_bins(synapse: np.ndarray, time_ms: np.ndarray, start_ms: int, length_ms: int,
               num_inputs: int) -> np.ndarray:
    """Binary [length_ms, num_inputs] matrix: a spike at t ms lands in bin int(t)."""
    dense = np.zeros((length_ms, num_inputs), dtype=np.float32)
    dense[np.asarray(time_ms, dtype=np.int64) - start_ms, synapse] = 1.0
    return dense


def output_bins(times_ms: np.ndarray, start_ms: int, length_ms: int) -> np.ndarray:
    """Binary [length_ms] spike target: NeuronIO puts a spike at t ms into bin int(t - 0.5)."""
    target = np.zeros(length_ms, dtype=np.float32)
    bins = np.trunc(np.asarray(times_ms, dtype=np.float64) - 0.5).astype(np.int64) - start_ms
    target[bins[(bins >= 0) & (bins < length_ms)]] = 1.0
    return target
