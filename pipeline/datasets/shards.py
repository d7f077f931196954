"""HDF5 shards: writing one (`write_shard`), reading one whole (`read_shard`), and random
access to windows of one (`ShardReader`). The layout is docs/data-format.md's "A shard"."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pipeline.datasets.contract import SCHEMA_VERSION, DatasetInfo, Segments, SimBatch
from pipeline.errors import UserError
from pipeline.runtime.files import atomic_path, sha256_file

# Chunks sized for random 500 ms windows: one window touches at most two voltage chunks.
VOLTAGE_CHUNK_MS = 500
SPIKE_CHUNK_ROWS = 1 << 16
_COMPRESSION: dict[str, Any] = {"compression": "gzip", "compression_opts": 4, "shuffle": True}


def _offsets(sim: np.ndarray, n: int) -> np.ndarray:
    """CSR offsets: rows of simulation i are [offsets[i], offsets[i + 1])."""
    return np.searchsorted(sim, np.arange(n + 1)).astype(np.int64)


def _column(group: h5py.Group, name: str, values: np.ndarray) -> None:
    chunks = (min(max(len(values), 1), SPIKE_CHUNK_ROWS),)
    group.create_dataset(name, data=values, chunks=chunks, maxshape=(None,), **_COMPRESSION)


def _traces(h5: h5py.File, name: str, values: np.ndarray) -> None:
    chunks = (1,) * (values.ndim - 1) + (min(values.shape[-1], VOLTAGE_CHUNK_MS),)
    if values.shape[0] == 0:
        chunks = None
    h5.create_dataset(name, data=values, chunks=chunks, **(_COMPRESSION if chunks else {}))


def _spike_group(h5: h5py.File, name: str, num_sims: int, sim: np.ndarray,
                 **columns: np.ndarray) -> None:
    group = h5.create_group(name)
    _column(group, "sim", sim)
    for column, values in columns.items():
        _column(group, column, values)
    group.create_dataset("sim_offsets", data=_offsets(sim, num_sims))


def _segment_group(h5: h5py.File, segments: Segments) -> None:
    group = h5.create_group("segments")
    group.create_dataset("type", data=np.asarray(segments.type, dtype=object),
                         dtype=h5py.string_dtype("utf-8"))
    group.create_dataset("length_um", data=np.asarray(segments.length_um, dtype=np.float32))
    group.create_dataset("distance_um", data=np.asarray(segments.distance_um,
                                                        dtype=np.float32))
    group.create_dataset("section", data=np.asarray(segments.section, np.int32))
    group.create_dataset("branch", data=np.asarray(segments.branch, np.int32))


def write_shard(path: Path, batch: SimBatch) -> str:
    """Validate, write atomically, and return the file's sha256."""
    path = Path(path)
    batch.validate(path)
    with atomic_path(path) as tmp:
        # No raw-chunk cache: chunks reach the file in creation order, so the same data
        # give the same bytes in any process (a cache flushes in an order that varies).
        # The order of creation below is part of those bytes.
        with h5py.File(tmp, "w", libver=("earliest", "v110"), rdcc_nbytes=0) as h5:
            info = batch.info
            h5.attrs.update({"schema_version": SCHEMA_VERSION, "num_exc": info.num_exc,
                             "num_inh": info.num_inh, "duration_ms": info.duration_ms,
                             "source": info.source, "cell": info.cell})
            h5.create_dataset("sim_id", data=batch.sim_id)
            _traces(h5, "soma_voltage_mv", batch.soma_voltage_mv)
            _spike_group(h5, "input_spikes", batch.num_sims, batch.input_sim,
                         synapse=batch.input_synapse, time_ms=batch.input_time_ms)
            _spike_group(h5, "output_spikes", batch.num_sims, batch.output_sim,
                         time_ms=batch.output_time_ms)
            if batch.nexus_voltage_mv is not None:
                _traces(h5, "nexus_voltage_mv", batch.nexus_voltage_mv)
            if batch.dendritic_voltage_mv is not None:
                _traces(h5, "dendritic_voltage_mv", batch.dendritic_voltage_mv)
            if batch.segments is not None:
                _segment_group(h5, batch.segments)
        digest = sha256_file(tmp)
    return digest


def _open(path: Path) -> h5py.File:
    path = Path(path)
    if not path.is_file():
        raise UserError(path, "no such shard file")
    try:
        h5 = h5py.File(path, "r")
    except OSError as err:
        raise UserError(path, f"not a readable HDF5 file ({err})") from None
    version = h5.attrs.get("schema_version")
    if version is None or "sim_id" not in h5:
        h5.close()
        raise UserError(path, "not a neurosurrogate shard (no schema_version or sim_id)")
    if int(version) != SCHEMA_VERSION:
        h5.close()
        raise UserError(path, f"schema_version {int(version)} is not supported "
                              f"(this version reads {SCHEMA_VERSION})")
    return h5


def _info(h5: h5py.File) -> DatasetInfo:
    a = h5.attrs
    try:
        return DatasetInfo(num_exc=int(a["num_exc"]), num_inh=int(a["num_inh"]),
                           duration_ms=int(a["duration_ms"]), source=str(a["source"]),
                           cell=str(a["cell"]))
    except KeyError as err:
        raise UserError(h5.filename, f"shard lacks the root attribute {err}") from None


def _segments(h5: h5py.File) -> Segments | None:
    if "segments" not in h5:
        return None
    g = h5["segments"]
    return Segments(type=g["type"].asstr()[...], length_um=g["length_um"][...],
                    distance_um=g["distance_um"][...], section=g["section"][...],
                    branch=g["branch"][...])


def _rows_of(column: h5py.Dataset, offsets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    if len(rows) == len(offsets) - 1:
        return column[...]
    parts = [column[offsets[r]:offsets[r + 1]] for r in rows]
    return np.concatenate(parts) if parts else np.empty(0, column.dtype)


def read_shard(path: Path, rows: Sequence[int] | None = None,
               with_dendrites: bool = True) -> SimBatch:
    """Read a shard (or only the simulations at increasing `rows`) and check it."""
    with _open(path) as h5:
        try:
            n = len(h5["sim_id"])
            sel = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
            if np.any(np.diff(sel) <= 0) or (len(sel) and (sel[0] < 0 or sel[-1] >= n)):
                raise ValueError(f"rows must increase within 0..{n - 1}")
            in_off = h5["input_spikes/sim_offsets"][...]
            out_off = h5["output_spikes/sim_offsets"][...]
            renumber = np.repeat(np.arange(len(sel), dtype=np.int32), np.diff(in_off)[sel])
            out_renumber = np.repeat(np.arange(len(sel), dtype=np.int32), np.diff(out_off)[sel])

            def traces(name: str) -> np.ndarray | None:
                if name not in h5:
                    return None
                return h5[name][...] if rows is None else h5[name][sel]

            batch = SimBatch(
                info=_info(h5),
                sim_id=h5["sim_id"][...][sel],
                soma_voltage_mv=traces("soma_voltage_mv"),
                input_sim=renumber,
                input_synapse=_rows_of(h5["input_spikes/synapse"], in_off, sel),
                input_time_ms=_rows_of(h5["input_spikes/time_ms"], in_off, sel),
                output_sim=out_renumber,
                output_time_ms=_rows_of(h5["output_spikes/time_ms"], out_off, sel),
                nexus_voltage_mv=traces("nexus_voltage_mv"),
                dendritic_voltage_mv=traces("dendritic_voltage_mv") if with_dendrites else None,
                segments=_segments(h5),
            )
        except KeyError as err:
            raise UserError(path, f"shard lacks the dataset {err}") from None
    batch.validate(path)
    return batch


class ShardReader:
    """Random access to windows of one shard without reading the whole file."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._h5 = _open(self.path)
        self.info = _info(self._h5)
        self.sim_id = self._h5["sim_id"][...]
        self._in_offsets = self._h5["input_spikes/sim_offsets"][...]
        self._out_offsets = self._h5["output_spikes/sim_offsets"][...]
        self._in_time = self._h5["input_spikes/time_ms"]
        self._in_synapse = self._h5["input_spikes/synapse"]
        self._out_time = self._h5["output_spikes/time_ms"]
        self._soma = self._h5["soma_voltage_mv"]

    def close(self) -> None:
        self._h5.close()

    def __enter__(self) -> ShardReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def num_sims(self) -> int:
        return len(self.sim_id)

    def segments(self) -> Segments | None:
        return _segments(self._h5)

    def input_spikes(self, row: int, start_ms: int = 0, stop_ms: int | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """(synapse, time_ms) of simulation `row` with start_ms <= time < stop_ms."""
        stop_ms = self.info.duration_ms if stop_ms is None else stop_ms
        lo, hi = int(self._in_offsets[row]), int(self._in_offsets[row + 1])
        times = self._in_time[lo:hi]
        a, b = np.searchsorted(times, [start_ms, stop_ms])
        return self._in_synapse[lo + a:lo + b], times[a:b]

    def output_spikes(self, row: int) -> np.ndarray:
        lo, hi = int(self._out_offsets[row]), int(self._out_offsets[row + 1])
        return self._out_time[lo:hi]

    def soma_voltage(self, row: int, start_ms: int = 0, stop_ms: int | None = None) -> np.ndarray:
        return self._soma[row, start_ms:stop_ms]
