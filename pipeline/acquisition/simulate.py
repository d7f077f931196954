"""Simulate a NEURON cell under the NeuronIO input protocol into a data set.

One Dask task per shard: each worker process builds the cell once and simulates its
shards; every shard is written atomically and listed in the manifest with its checksum
and the measured NEURON wall time of each simulation. Simulation k's inputs depend only on
(seed, k), so the data are bit-identical for any number of workers. Running the same
request again recomputes only missing or damaged shards; other settings pointed at an
existing folder are refused.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from biophys_models.cell_spec import BUILTIN_CELLS, SPEC_SUFFIXES, load_cell_spec
from biophys_models.cell_variant import CellVariant
from pipeline.acquisition.options import SimulateOptions
from pipeline.datasets.contract import DatasetInfo, SimBatch, sort_input_rows
from pipeline.datasets.dataset import Dataset
from pipeline.datasets.manifest import prepare_output, shard_name
from pipeline.datasets.shards import read_shard
from pipeline.datasets.summary import format_summary, summarize
from pipeline.datasets.writer import ShardTask, chunk, write_shards
from pipeline.errors import UserError
from pipeline.filenames import SUMMARY
from pipeline.runtime.cluster import dask_client
from pipeline.runtime.files import sha256_file, write_text_atomic

if TYPE_CHECKING:
    from biophys_models.protocol import ProtocolSettings

_CELLS: dict[tuple[str, bool, str, CellVariant], Any] = {}  # this worker's cell, built once


# ------------------------------------------------------------------------ on the workers

def _cell(source: str, coreneuron: bool, kinetics: str, variant: CellVariant) -> Any:
    key = (source, coreneuron, kinetics, variant)
    if key not in _CELLS:
        from biophys_models.cell import build_cell

        _CELLS[key] = build_cell(source if source in BUILTIN_CELLS else Path(source),
                                 variant=variant, coreneuron=coreneuron, kinetics=kinetics)
    return _CELLS[key]


def simulate_shard(cell_source: str, variant: dict[str, Any], sim_ids: list[int], seed: int,
                   run: dict[str, Any], protocol: dict[str, Any]
                   ) -> tuple[SimBatch, dict[str, Any]]:
    """Simulate the given simulations on this process's cell."""
    from biophys_models.protocol import ProtocolSettings, input_spikes
    from biophys_models.simulator import RunSettings, simulate

    settings = RunSettings(**run)
    cell = _cell(cell_source, settings.coreneuron, settings.kinetics, CellVariant(**variant))
    seg = cell.segments
    proto = ProtocolSettings.from_dict(protocol)
    duration = settings.duration_ms
    soma, nexus, dend, rows, outputs, wall = [], [], [], [], [], []
    for row, sim_id in enumerate(sim_ids):
        synapse, time_ms = input_spikes(seg.type, seg.length_um, duration, seed, sim_id, proto)
        start = time.perf_counter()
        rec = simulate(cell, synapse, time_ms, settings)
        wall.append(time.perf_counter() - start)
        rows.append((np.full(len(synapse), row, np.int32), synapse, time_ms))
        outputs.append(rec.output_spike_times_ms)
        soma.append(rec.soma_voltage_mv)
        nexus.append(rec.nexus_voltage_mv)
        dend.append(rec.dendritic_voltage_mv)
    in_sim, in_syn, in_time = sort_input_rows(*(np.concatenate(c)
                                                for c in zip(*rows, strict=True)))
    batch = SimBatch(
        info=DatasetInfo(num_exc=cell.num_exc, num_inh=cell.num_inh, duration_ms=duration,
                         source="simulated", cell=cell.label),
        sim_id=np.asarray(sim_ids), soma_voltage_mv=np.stack(soma),
        input_sim=in_sim, input_synapse=in_syn, input_time_ms=in_time,
        output_sim=np.concatenate([np.full(len(o), r, np.int32)
                                   for r, o in enumerate(outputs)]),
        output_time_ms=np.concatenate(outputs),
        nexus_voltage_mv=np.stack(nexus),
        dendritic_voltage_mv=np.stack(dend) if settings.record_dendrites else None,
        segments=seg,
    )
    return batch, {"wall_s_per_sim": float(np.mean(wall)),
                   "wall_s": [round(w, 4) for w in wall], "pid": os.getpid()}


# ------------------------------------------------------------------------- on the client

def _pair(text: str, flag: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise UserError(flag, f"expected two comma-separated numbers, got {text!r}") from None
    return low, high


def tree_pairs(text: str, flag: str) -> dict[str, tuple[float, float]]:
    """"A,B" for both trees, or per tree "basal=A,B apical=C,D" (either may be left out)."""
    from biophys_models.protocol import TREES

    if "=" not in text:
        return dict.fromkeys(TREES, _pair(text, flag))
    pairs = {}
    for item in text.split():
        tree, _, pair = item.partition("=")
        if tree not in TREES or tree in pairs:
            raise UserError(flag, f"expected A,B or {'=A,B '.join(TREES)}=A,B, got {text!r}")
        pairs[tree] = _pair(pair, flag)
    return pairs


def cell_identity(cell: str) -> dict[str, str]:
    """What names the cell in the settings: the built-in name, or the file and its hash.

    A YAML spec is read and checked here, so that a broken one stops the run before any
    worker starts (what only NEURON can find wrong, the workers report)."""
    if cell in BUILTIN_CELLS:
        return {"builtin": cell}
    path = Path(cell)
    if not path.is_file():
        raise UserError(path, f"no such cell spec (and not a built-in cell "
                              f"{list(BUILTIN_CELLS)})")
    if path.suffix.lower() in SPEC_SUFFIXES:
        load_cell_spec(path)
    return {"spec": str(path.resolve()), "sha256": sha256_file(path)}


def protocol_settings(options: SimulateOptions) -> ProtocolSettings:
    """The generator's ProtocolSettings: the preset's per-tree ranges, then those that
    --exc-range and --inh-offsets give."""
    from biophys_models.protocol import ProtocolSettings
    from pipeline.protocol import PROTOCOL_PRESETS

    if options.protocol_preset not in PROTOCOL_PRESETS:
        raise UserError("--protocol-preset", f"unknown preset {options.protocol_preset!r}; "
                                             f"choose one of {list(PROTOCOL_PRESETS)}")
    ranges = dict(PROTOCOL_PRESETS[options.protocol_preset])
    for flag, text, key in (("--exc-range", options.exc_range, "exc_range"),
                            ("--inh-offsets", options.inh_offsets, "inh_offsets")):
        if text is not None:
            ranges.update({f"{tree}_{key}": pair
                           for tree, pair in tree_pairs(text, flag).items()})
    try:
        return ProtocolSettings(**ranges)
    except ValueError as err:
        raise UserError("--exc-range", str(err)) from None


def cell_variant(options: SimulateOptions) -> CellVariant:
    """The variant the options ask for, checked (its messages start with the field's name)."""
    try:
        return CellVariant(**{f.name: getattr(options, f.name) for f in fields(CellVariant)})
    except ValueError as err:
        raise UserError("--" + str(err).split()[0].replace("_", "-"), str(err)) from None


def simulation_settings(options: SimulateOptions) -> dict[str, Any]:
    """The settings that identify the data set (stored in its manifest), checked."""
    from biophys_models.protocol import PROTOCOL_VERSION
    from biophys_models.simulator import RunSettings

    for flag, value in (("--num-sims", options.num_sims), ("--duration-ms", options.duration_ms),
                        ("--sims-per-shard", options.sims_per_shard)):
        if value < 1:
            raise UserError(flag, f"must be at least 1, got {value}")
    protocol = protocol_settings(options)
    run = {"duration_ms": options.duration_ms, "dt": options.dt, "cvode": options.cvode,
           "coreneuron": options.coreneuron, "record_dendrites": options.record_dendrites,
           "kinetics": options.kinetics}
    try:
        RunSettings(**run)
    except ValueError as err:  # duration is checked above: the step or the integrator
        flag = ("--kinetics" if err.args[0].startswith("kinetics") else
                "--coreneuron" if options.cvode and options.coreneuron else "--dt")
        raise UserError(flag, str(err)) from None
    return {"stage": "simulate", "cell": cell_identity(options.cell),
            "variant": cell_variant(options).as_dict(),
            "num_sims": options.num_sims, "seed": options.seed,
            "sims_per_shard": options.sims_per_shard, "run": run,
            "protocol_version": PROTOCOL_VERSION, "protocol": protocol.as_dict()}


def export_neuronio(dataset: Path, out: Path, seed: int) -> list[Path]:
    """Write each shard as a NeuronIO pickle (LowRes fields), randomSeed = seed*1000 + k."""
    from pipeline.datasets.neuronio import batch_to_neuronio, dump_neuronio

    data = Dataset(dataset)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for k, path in enumerate(data.shard_paths):
        batch = read_shard(path)
        random_seed = seed * 1000 + k
        name = (f"neurosurrogate_{batch.info.cell}_{batch.num_sims}_simulationRuns__"
                f"{batch.info.duration_ms / 1000:g}_secDuration__randomSeed_{random_seed}.p")
        dump_neuronio(batch_to_neuronio(batch, random_seed), out / name)
        written.append(out / name)
    return written


def write_summary(folder: Path) -> dict[str, float]:
    """FOLDER/summary.json: the data set's firing statistics and NEURON's wall time."""
    data = Dataset(folder)
    stats = summarize(read_shard(p, with_dendrites=False) for p in data.shard_paths)
    wall = data.manifest.neuron_wall_s_per_sim
    stats["neuron_wall_s_per_sim"] = float("nan") if wall is None else wall
    write_text_atomic(Path(folder) / SUMMARY, json.dumps(stats, indent=1))
    return stats


def simulate(options: SimulateOptions) -> None:
    """Make (or complete) the data set OUT that `options` ask for, then summarise it."""
    settings = simulation_settings(options)
    manifest = prepare_output(options.out, None, settings)
    cell_source = (options.cell if options.cell in BUILTIN_CELLS
                   else str(Path(options.cell).resolve()))
    tasks = [ShardTask(shard_name(k), simulate_shard,
                       (cell_source, settings["variant"], part.tolist(), options.seed,
                        settings["run"], settings["protocol"]), size=len(part))
             for k, part in enumerate(chunk(np.arange(options.num_sims),
                                            options.sims_per_shard))]
    with dask_client(options.workers, options.scheduler) as client:
        write_shards(client, options.out, manifest, tasks, unit="sim",
                     recycle_after=options.recycle_after or None)
    stats = write_summary(Path(options.out))
    print(format_summary(stats))
    print(f"NEURON: {stats['neuron_wall_s_per_sim']:.2f} s wall per simulation of "
          f"{options.duration_ms} ms")
    if options.export_neuronio is not None:
        files = export_neuronio(Path(options.out), Path(options.export_neuronio), options.seed)
        print(f"{options.export_neuronio}: {len(files)} NeuronIO file(s)")
