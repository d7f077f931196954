"""The published NeuronIO pickle format: safe reading, writing, and conversion.

The files were written by Python 2.7's cPickle (protocol 2) with numpy 1.x. A pickle can
run any code on load, so `load_neuronio` admits only the four globals that format needs
and refuses everything else before it is called.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.datasets.contract import DatasetInfo, Segments, SimBatch, sort_input_rows
from pipeline.errors import UserError
from pipeline.protocol import synapse_segment, synapses_of_segment
from pipeline.runtime.files import atomic_path

try:  # numpy >= 2 moved the pickle helpers; the files name the numpy 1.x location
    from numpy._core.multiarray import _reconstruct, scalar
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct, scalar

# The only globals a NeuronIO file may name, as (module, name) in the file -> object.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}

# float16 output spike times near 6000 ms round by up to 4 ms, possibly past the end; such
# spikes are kept at the last bin instead of failing the file.
FLOAT16_OVERSHOOT_MS = 4.0

# sim id = randomSeed * SIM_ID_STRIDE + row: unique across files with distinct seeds.
SIM_ID_STRIDE = 1 << 16


class _RefusedGlobal(pickle.UnpicklingError):
    pass


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _RefusedGlobal(
                f"refused global {module}.{name}: a NeuronIO file only needs numpy arrays"
            ) from None


def load_neuronio(path: Path) -> dict[str, Any]:
    """Unpickle a NeuronIO file, admitting only numpy array and scalar reconstruction."""
    path = Path(path)
    if not path.is_file():
        raise UserError(path, "no such file")
    try:
        with open(path, "rb") as fh:
            obj = _RestrictedUnpickler(fh, encoding="latin1").load()
    except _RefusedGlobal as err:
        raise UserError(path, f"unsafe pickle: {err}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, UnicodeDecodeError, MemoryError) as err:
        raise UserError(path, f"truncated or corrupt pickle ({type(err).__name__}: {err})"
                        ) from None
    if not isinstance(obj, dict):
        raise UserError(path, f"not a NeuronIO file: top level is {type(obj).__name__}, "
                              "expected a dict with Params and Results")
    return obj


# ------------------------------------------------------------------ writing (Python-2 form)

class _Global:
    """A global reference written by name, whatever this interpreter calls the object."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args: object) -> None:  # pickle insists that reducers are callable
        raise TypeError(f"{self.module}.{self.name} is only a name to write")


_RECONSTRUCT = _Global("numpy.core.multiarray", "_reconstruct")
_SCALAR = _Global("numpy.core.multiarray", "scalar")
_NDARRAY = _Global("numpy", "ndarray")
_DTYPE = _Global("numpy", "dtype")


class _Py2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2.7 cPickle with numpy 1.x wrote it: byte strings for `str`
    (BINSTRING), numpy objects through the numpy.core.multiarray names."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj: str | bytes) -> None:
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + len(data).to_bytes(4, "little") + data)
        self.memoize(obj)

    def save_global_ref(self, obj: _Global) -> None:
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("ascii"))

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str
    dispatch[_Global] = save_global_ref

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, np.dtype):
            _, args, state = obj.__reduce__()
            return (_DTYPE, tuple(int(a) if isinstance(a, bool) else a for a in args), state)
        if isinstance(obj, np.ndarray):
            arr = np.ascontiguousarray(obj)
            return (_RECONSTRUCT, (_NDARRAY, (0,), b"b"),
                    (1, arr.shape, arr.dtype, False, arr.tobytes()))
        if isinstance(obj, np.generic):
            return (_SCALAR, (obj.dtype, obj.tobytes()))
        return NotImplemented


def dump_neuronio(obj: dict[str, Any], path: Path) -> None:
    """Write `obj` in the published file form (atomically)."""
    buffer = io.BytesIO()
    _Py2Pickler(buffer, protocol=2).dump(obj)
    with atomic_path(Path(path)) as tmp:
        tmp.write_bytes(buffer.getvalue())


# ------------------------------------------------------------------------------ conversion

def _need(where: Path, mapping: Any, key: str, what: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise UserError(where, f"not a NeuronIO file: {what} has no {key!r}")
    return mapping[key]


def _spike_rows(where: Path, spikes: Any, what: str, num_segments: int, inhibitory: bool,
                duration_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """(synapse, time_ms) of a {segment: spike times} dict of the excitatory or the
    inhibitory inputs."""
    if not isinstance(spikes, dict):
        raise UserError(where, f"{what} is {type(spikes).__name__}, expected a dict")
    synapses, times = [], []
    for key, values in spikes.items():
        seg = int(key)
        if not 0 <= seg < num_segments:
            raise UserError(where, f"{what}: segment index {seg} outside 0..{num_segments - 1}")
        t = np.asarray(values, dtype=np.float64).ravel()
        if not np.all(np.isfinite(t)) or (t.size and (t.min() < 0 or t.max() >= duration_ms)):
            raise UserError(where, f"{what}: spike time outside [0, {duration_ms}) ms "
                                   f"on segment {seg}")
        times.append(np.floor(t).astype(np.int32))
        synapse = synapses_of_segment(seg, num_segments)[1 if inhibitory else 0]
        synapses.append(np.full(t.size, synapse, dtype=np.int32))
    if not times:
        return np.empty(0, np.int32), np.empty(0, np.int32)
    return np.concatenate(synapses), np.concatenate(times)


def _trace(where: Path, sim: dict, key: str, shape: tuple[int, ...], row: int) -> np.ndarray:
    values = np.asarray(_need(where, sim, key, f"simulation {row}"))
    if values.shape != shape:
        raise UserError(where, f"simulation {row}: {key} has shape {values.shape}, "
                               f"expected {shape}")
    if not np.all(np.isfinite(values)):
        raise UserError(where, f"simulation {row}: {key} holds NaN or infinite values")
    return values


def neuronio_segments(where: Path, params: dict) -> Segments:
    """Segment metadata from Params; a branch is one (tree, section) pair of the cell."""
    types = [str(t) for t in _need(where, params, "allSegmentsType", "Params")]
    length = np.asarray(_need(where, params, "allSegmentsLength", "Params"), dtype=np.float32)
    dist = np.asarray(_need(where, params, "allSegments_DistFromSoma", "Params"), np.float32)
    section = np.asarray(_need(where, params, "allSegments_SectionInd", "Params"), np.int32)
    if not len(types) == len(length) == len(dist) == len(section):
        raise UserError(where, "Params segment lists differ in length")
    if not set(types) <= {"basal", "apical"}:
        raise UserError(where, f"unknown segment types {sorted(set(types) - {'basal', 'apical'})}")
    branch_ids: dict[tuple[str, int], int] = {}
    branch = np.array([branch_ids.setdefault((t, int(s)), len(branch_ids))
                       for t, s in zip(types, section, strict=True)], dtype=np.int32)
    return Segments(type=np.asarray(types, dtype=object), length_um=length, distance_um=dist,
                    section=section, branch=branch)


def neuronio_to_batch(raw: dict[str, Any], where: Path) -> SimBatch:
    """Convert one loaded NeuronIO file into a contract batch, validating as it goes."""
    where = Path(where)
    params = _need(where, raw, "Params", "the top-level dict")
    results = _need(where, raw, "Results", "the top-level dict")
    sims = _need(where, results, "listOfSingleSimulationDicts", "Results")
    if not isinstance(sims, list) or not sims:
        raise UserError(where, "Results['listOfSingleSimulationDicts'] is not a non-empty list")
    segments = neuronio_segments(where, params)
    num_segments = len(segments)
    duration_ms = int(round(float(_need(where, params, "totalSimDurationInSec", "Params"))
                            * 1000))
    seed = int(_need(where, params, "randomSeed", "Params"))
    if len(sims) > SIM_ID_STRIDE or seed < 0:
        raise UserError(where, "cannot number its simulations (negative seed or too many runs)")
    exc_type = str(params.get("excitatorySynapseType", "unknown"))
    info = DatasetInfo(num_exc=num_segments, num_inh=num_segments, duration_ms=duration_ms,
                       source="neuronio", cell=f"hay2011-l5pc ({exc_type} synapses)")

    soma, nexus, dend, rows = [], [], [], []
    out_sim, out_time = [], []
    has_nexus = all(isinstance(s, dict) and "nexusVoltageLowRes" in s for s in sims)
    has_dend = all(isinstance(s, dict) and "dendriticVoltagesLowRes" in s for s in sims)
    for row, sim in enumerate(sims):
        if not isinstance(sim, dict):
            raise UserError(where, f"simulation {row} is {type(sim).__name__}, expected a dict")
        exc = _spike_rows(where, _need(where, sim, "exInputSpikeTimes", f"simulation {row}"),
                          f"simulation {row} exInputSpikeTimes", num_segments, False,
                          duration_ms)
        inh = _spike_rows(where, _need(where, sim, "inhInputSpikeTimes", f"simulation {row}"),
                          f"simulation {row} inhInputSpikeTimes", num_segments, True,
                          duration_ms)
        syn = np.concatenate([exc[0], inh[0]])
        rows.append((np.full(syn.size, row, np.int32), syn, np.concatenate([exc[1], inh[1]])))
        spikes = np.sort(np.asarray(_need(where, sim, "outputSpikeTimes", f"simulation {row}"),
                                    dtype=np.float32).ravel())
        if spikes.size and (not np.all(np.isfinite(spikes)) or spikes.min() < 0
                            or spikes.max() > duration_ms + FLOAT16_OVERSHOOT_MS):
            raise UserError(where, f"simulation {row}: output spike time outside "
                                   f"[0, {duration_ms}) ms")
        spikes = np.minimum(spikes, np.float32(duration_ms - 0.5))
        out_sim.append(np.full(spikes.size, row, np.int32))
        out_time.append(spikes)
        soma.append(_trace(where, sim, "somaVoltageLowRes", (duration_ms,), row))
        if has_nexus:
            nexus.append(_trace(where, sim, "nexusVoltageLowRes", (duration_ms,), row))
        if has_dend:
            dend.append(_trace(where, sim, "dendriticVoltagesLowRes",
                               (num_segments, duration_ms), row))
    in_sim, in_syn, in_time = sort_input_rows(*(np.concatenate(c) for c in zip(*rows, strict=True)))
    batch = SimBatch(
        info=info,
        sim_id=seed * SIM_ID_STRIDE + np.arange(len(sims), dtype=np.int64),
        soma_voltage_mv=np.stack(soma),
        input_sim=in_sim, input_synapse=in_syn, input_time_ms=in_time,
        output_sim=np.concatenate(out_sim), output_time_ms=np.concatenate(out_time),
        nexus_voltage_mv=np.stack(nexus) if has_nexus else None,
        dendritic_voltage_mv=np.stack(dend) if has_dend else None,
        segments=segments,
    )
    batch.validate(where)
    return batch


def batch_to_neuronio(batch: SimBatch, random_seed: int) -> dict[str, Any]:
    """The published layout of a batch (LowRes fields only; float16 as published)."""
    info, seg = batch.info, batch.segments
    if seg is None or info.num_exc != info.num_inh:
        raise ValueError("the NeuronIO layout needs segment metadata and num_exc == num_inh")
    t = np.arange(info.duration_ms, dtype=np.float32)

    def by_segment(synapse: np.ndarray, times: np.ndarray) -> dict:
        spikes: dict = {}
        for s, tm in zip(synapse.tolist(), times.tolist(), strict=True):
            spikes.setdefault(np.int64(synapse_segment(s, info.num_exc)), []).append(np.int64(tm))
        return spikes

    sims = []
    for row in range(batch.num_sims):
        synapse, times = batch.input_spikes_of(row)
        exc = synapse < info.num_exc
        sim = {"exInputSpikeTimes": by_segment(synapse[exc], times[exc]),
               "inhInputSpikeTimes": by_segment(synapse[~exc], times[~exc]),
               "outputSpikeTimes": batch.output_spikes_of(row).astype(np.float16),
               "somaVoltageLowRes": batch.soma_voltage_mv[row].astype(np.float16),
               "recordingTimeLowRes": t}
        if batch.nexus_voltage_mv is not None:
            sim["nexusVoltageLowRes"] = batch.nexus_voltage_mv[row].astype(np.float16)
        if batch.dendritic_voltage_mv is not None:
            sim["dendriticVoltagesLowRes"] = batch.dendritic_voltage_mv[row]
        sims.append(sim)
    params = {"randomSeed": random_seed, "numSimulations": batch.num_sims,
              "totalSimDurationInSec": info.duration_ms / 1000.0,
              "numSamplesPerMS_HighRes": 8, "excitatorySynapseType": "NMDA",
              "inhibitorySynapseType": "GABA_A", "allSegmentsType": [str(x) for x in seg.type],
              "allSegmentsLength": seg.length_um.astype(np.float64).tolist(),
              "allSegments_DistFromSoma": seg.distance_um.astype(np.float64).tolist(),
              "allSegments_SectionInd": seg.section.astype(np.int64).tolist()}
    return {"Params": params, "Results": {"listOfSingleSimulationDicts": sims}}
