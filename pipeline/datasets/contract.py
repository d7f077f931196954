"""The data contract: the one module that reads and writes data sets (docs/data-format.md).

A data set is a folder of HDF5 shards plus `manifest.json`. Every stage goes through
`write_shard` / `read_shard` / `ShardReader` and `Manifest`, so the layout is defined here
and nowhere else.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pipeline.errors import UserError
from pipeline.runtime.files import atomic_path, sha256_file, write_text_atomic

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
SOURCES = ("simulated", "neuronio")
SEGMENT_FIELDS = ("type", "length_um", "distance_um", "section", "branch")

# Chunks sized for random 500 ms windows: one window touches at most two voltage chunks.
VOLTAGE_CHUNK_MS = 500
SPIKE_CHUNK_ROWS = 1 << 16
_COMPRESSION: dict[str, Any] = {"compression": "gzip", "compression_opts": 4, "shuffle": True}


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
    """Per-dendritic-segment metadata; segment k carries synapses k and num_exc + k."""

    type: np.ndarray  # str, 'basal' or 'apical'
    length_um: np.ndarray  # float32
    distance_um: np.ndarray  # float32, path distance from the soma
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
            for name in SEGMENT_FIELDS:
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


# ----------------------------------------------------------------------------- shards (HDF5)

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


def write_shard(path: Path, batch: SimBatch) -> str:
    """Validate, write atomically, and return the file's sha256."""
    path = Path(path)
    batch.validate(path)
    with atomic_path(path) as tmp:
        # No raw-chunk cache: chunks reach the file in creation order, so the same data
        # give the same bytes in any process (a cache flushes in an order that varies).
        with h5py.File(tmp, "w", libver=("earliest", "v110"), rdcc_nbytes=0) as h5:
            info = batch.info
            h5.attrs.update({"schema_version": SCHEMA_VERSION, "num_exc": info.num_exc,
                             "num_inh": info.num_inh, "duration_ms": info.duration_ms,
                             "source": info.source, "cell": info.cell})
            h5.create_dataset("sim_id", data=batch.sim_id)
            _traces(h5, "soma_voltage_mv", batch.soma_voltage_mv)
            inp = h5.create_group("input_spikes")
            _column(inp, "sim", batch.input_sim)
            _column(inp, "synapse", batch.input_synapse)
            _column(inp, "time_ms", batch.input_time_ms)
            inp.create_dataset("sim_offsets", data=_offsets(batch.input_sim, batch.num_sims))
            out = h5.create_group("output_spikes")
            _column(out, "sim", batch.output_sim)
            _column(out, "time_ms", batch.output_time_ms)
            out.create_dataset("sim_offsets", data=_offsets(batch.output_sim, batch.num_sims))
            if batch.nexus_voltage_mv is not None:
                _traces(h5, "nexus_voltage_mv", batch.nexus_voltage_mv)
            if batch.dendritic_voltage_mv is not None:
                _traces(h5, "dendritic_voltage_mv", batch.dendritic_voltage_mv)
            if batch.segments is not None:
                seg = h5.create_group("segments")
                seg.create_dataset("type", data=np.asarray(batch.segments.type, dtype=object),
                                   dtype=h5py.string_dtype("utf-8"))
                seg.create_dataset("length_um", data=np.asarray(batch.segments.length_um,
                                                                dtype=np.float32))
                seg.create_dataset("distance_um", data=np.asarray(batch.segments.distance_um,
                                                                  dtype=np.float32))
                seg.create_dataset("section", data=np.asarray(batch.segments.section, np.int32))
                seg.create_dataset("branch", data=np.asarray(batch.segments.branch, np.int32))
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


# ----------------------------------------------------------------------------- the manifest

@dataclass
class ShardEntry:
    file: str
    sim_ids: list[int]
    sha256: str
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. wall_s_per_sim for simulations


@dataclass
class Manifest:
    info: DatasetInfo | None  # None only until the first shard of a new data set is written
    settings: dict[str, Any]
    shards: list[ShardEntry] = field(default_factory=list)
    complete: bool = False
    schema_version: int = SCHEMA_VERSION

    @property
    def sim_ids(self) -> np.ndarray:
        return np.array([i for s in self.shards for i in s.sim_ids], dtype=np.int64)

    @property
    def neuron_wall_s_per_sim(self) -> float | None:
        """Mean NEURON wall time of one simulation: measured by simulate, carried by shard."""
        walls = [w for s in self.shards for w in s.extra.get("wall_s", [])]
        if walls:
            return float(np.mean(walls))
        return self.settings.get("neuron_wall_s_per_sim")

    def entry(self, file: str) -> ShardEntry | None:
        return next((s for s in self.shards if s.file == file), None)

    def adopt_info(self, info: DatasetInfo, where: str | Path) -> None:
        """Take the data set's attributes from its first shard; every later one must agree."""
        if self.info is None:
            self.info = info
        elif info != self.info:
            raise UserError(where, f"attributes {info} differ from the rest of the data set "
                                   f"{self.info}")

    def put(self, entry: ShardEntry) -> None:
        """Add or replace the entry for entry.file, keeping shards ordered by file name."""
        self.shards = sorted([s for s in self.shards if s.file != entry.file] + [entry],
                             key=lambda s: s.file)

    def to_json(self) -> str:
        return json.dumps({"schema_version": self.schema_version, "complete": self.complete,
                           "info": None if self.info is None else asdict(self.info),
                           "settings": self.settings,
                           "shards": [asdict(s) for s in self.shards]}, indent=1)


def read_manifest(folder: Path, require_complete: bool = True) -> Manifest:
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        raise UserError(path, "no manifest: not a data set folder")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw["schema_version"] != SCHEMA_VERSION:
            raise UserError(path, f"schema_version {raw['schema_version']} is not supported "
                                  f"(this version reads {SCHEMA_VERSION})")
        info_keys = {f.name for f in fields(DatasetInfo)}
        info = raw["info"] and DatasetInfo(**{k: raw["info"][k] for k in info_keys})
        manifest = Manifest(info=info,
                            settings=raw["settings"],
                            shards=[ShardEntry(**s) for s in raw["shards"]],
                            complete=bool(raw["complete"]))
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise UserError(path, f"malformed manifest ({type(err).__name__}: {err})") from None
    if require_complete and (not manifest.complete or manifest.info is None):
        raise UserError(path, "data set is incomplete: run the command that made it again")
    return manifest


def write_manifest(folder: Path, manifest: Manifest) -> None:
    write_text_atomic(Path(folder) / MANIFEST_NAME, manifest.to_json())


def prepare_output(folder: Path, info: DatasetInfo | None, settings: dict[str, Any]) -> Manifest:
    """Open `folder` for writing a data set made with `settings`.

    Returns the existing manifest when it was made with the same settings (so a rerun
    resumes), a new empty one for an empty folder, and refuses anything else.
    """
    folder = Path(folder)
    settings = json.loads(json.dumps(settings))  # the JSON form is the one compared
    path = folder / MANIFEST_NAME
    if path.is_file():
        existing = read_manifest(folder, require_complete=False)
        if existing.settings != settings:
            changed = sorted(k for k in set(existing.settings) | set(settings)
                             if existing.settings.get(k) != settings.get(k))
            raise UserError(folder, f"already holds a different data set (settings differ in: "
                                    f"{', '.join(changed)}); choose another --out")
        if info is not None and existing.info not in (None, info):
            raise UserError(folder, "already holds a data set with other attributes")
        return existing
    if folder.exists() and any(p for p in folder.iterdir() if not p.name.startswith(".")):
        raise UserError(folder, "exists and is not empty but holds no data set; "
                                "choose another --out")
    folder.mkdir(parents=True, exist_ok=True)
    return Manifest(info=info, settings=settings)


def shard_is_intact(folder: Path, entry: ShardEntry | None) -> bool:
    """True when the shard file exists and matches the checksum in its manifest entry."""
    if entry is None:
        return False
    path = Path(folder) / entry.file
    return path.is_file() and sha256_file(path) == entry.sha256


class Dataset:
    """A complete data set folder: its manifest and lazy access to its shards."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        self.info = self.manifest.info
        ids = self.manifest.sim_ids
        if len(np.unique(ids)) != len(ids):
            raise UserError(self.folder / MANIFEST_NAME, "sim ids collide between shards")

    @property
    def shard_paths(self) -> list[Path]:
        return [self.folder / s.file for s in self.manifest.shards]

    @property
    def num_sims(self) -> int:
        return sum(len(s.sim_ids) for s in self.manifest.shards)

    def locate(self) -> dict[int, tuple[int, int]]:
        """sim id -> (shard index, row within the shard)."""
        return {sid: (k, row) for k, s in enumerate(self.manifest.shards)
                for row, sid in enumerate(s.sim_ids)}

    def verify(self) -> None:
        """Check every shard's checksum and its sim ids against the manifest."""
        for entry in self.manifest.shards:
            path = self.folder / entry.file
            if not shard_is_intact(self.folder, entry):
                raise UserError(path, "missing or damaged (sha256 differs from the manifest)")
            with ShardReader(path) as reader:
                if reader.sim_id.tolist() != entry.sim_ids or reader.info != self.info:
                    raise UserError(path, "content does not match manifest.json")


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.h5"


def write_dataset(folder: Path, batches: Sequence[SimBatch], settings: dict[str, Any]
                  ) -> Manifest:
    """Write a small data set in this process (tests, benchmarks, exports)."""
    manifest = prepare_output(Path(folder), batches[0].info if batches else None, settings)
    for index, batch in enumerate(batches):
        name = shard_name(index)
        digest = write_shard(Path(folder) / name, batch)
        manifest.adopt_info(batch.info, Path(folder) / name)
        manifest.put(ShardEntry(name, batch.sim_id.tolist(), digest))
    manifest.complete = True
    write_manifest(Path(folder), manifest)
    return manifest
