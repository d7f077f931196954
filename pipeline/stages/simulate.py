"""Simulate a NEURON cell under the NeuronIO input protocol into a data set.

One Dask task per shard: each worker process builds the cell once and simulates its
shards; every shard is written atomically and listed in manifest.json with its checksum
and the measured NEURON wall time per simulation. Simulation k's inputs depend only on
(--seed, k), so the data are bit-identical for any number of workers. Running the same
command again recomputes only missing or damaged shards; other settings pointed at an
existing folder are refused.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.datasets.contract import (
    Dataset,
    DatasetInfo,
    Segments,
    SimBatch,
    prepare_output,
    read_shard,
    shard_name,
    sort_input_rows,
)
from pipeline.datasets.summary import format_summary, summarize
from pipeline.datasets.writer import ShardTask, chunk, write_shards
from pipeline.errors import UserError
from pipeline.runtime.cluster import add_cluster_arguments, dask_client
from pipeline.runtime.files import write_text_atomic

DEFAULT_SIMS_PER_SHARD = 8
DEFAULT_RECYCLE_AFTER = 256  # simulations per worker process between restarts
SUMMARY_NAME = "summary.json"
BUILTIN_CELL = "l5pc"

_CELLS: dict[tuple[str, bool], Any] = {}  # the cell of this worker process, built once


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, metavar="DIR")
    parser.add_argument("--num-sims", type=int, required=True, metavar="N")
    parser.add_argument("--duration-ms", type=int, default=6000, metavar="T",
                        help="length of each simulation (default 6000)")
    parser.add_argument("--seed", type=int, default=0, metavar="S")
    parser.add_argument("--cell", default=BUILTIN_CELL, metavar="l5pc|SPEC.yaml",
                        help="the built-in L5PC (default) or a YAML cell spec")
    add_cluster_arguments(parser)
    parser.add_argument("--sims-per-shard", type=int, default=DEFAULT_SIMS_PER_SHARD,
                        metavar="M", help=f"default {DEFAULT_SIMS_PER_SHARD}")
    parser.add_argument("--record-dendrites", action="store_true",
                        help="also store the voltage of every dendritic segment (float16)")
    integ = parser.add_mutually_exclusive_group()
    integ.add_argument("--dt", type=float, default=0.025, metavar="MS",
                       help="fixed time step (default 0.025 ms)")
    integ.add_argument("--cvode", action="store_true", help="variable-step integration")
    integ.add_argument("--coreneuron", action="store_true",
                       help="fixed step on CoreNEURON (same result, faster for big cells)")
    parser.add_argument("--exc-range", default="0,800", metavar="LOW,HIGH",
                        help="excitation, spikes per tree per 100 ms (default 0,800)")
    parser.add_argument("--inh-offsets", default="600,200", metavar="BELOW,ABOVE",
                        help="inhibition drawn on [exc - BELOW, exc + ABOVE] (default 600,200)")
    parser.add_argument("--recycle-after", type=int, default=DEFAULT_RECYCLE_AFTER,
                        metavar="N", help="restart a worker process after N simulations "
                                          f"(default {DEFAULT_RECYCLE_AFTER}; 0: never)")
    parser.add_argument("--export-neuronio", type=Path, default=None, metavar="DIR",
                        help="also write the data set in the published NeuronIO pickle layout")


# ------------------------------------------------------------------------ on the workers

def _cell(source: str, coreneuron: bool) -> Any:
    key = (source, coreneuron)
    if key not in _CELLS:
        from biophys_models.cell import build_cell

        _CELLS[key] = build_cell(source if source == BUILTIN_CELL else Path(source),
                                 coreneuron=coreneuron)
    return _CELLS[key]


def simulate_shard(cell_source: str, sim_ids: list[int], seed: int, run: dict[str, Any],
                   protocol: dict[str, Any]) -> tuple[SimBatch, dict[str, Any]]:
    """Simulate the given simulations on this process's cell."""
    from biophys_models.protocol import ProtocolSettings, input_spikes
    from biophys_models.simulator import RunSettings, simulate

    settings = RunSettings(**run)
    cell = _cell(cell_source, settings.coreneuron)
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
                         source="simulated", cell=cell.name),
        sim_id=np.asarray(sim_ids), soma_voltage_mv=np.stack(soma),
        input_sim=in_sim, input_synapse=in_syn, input_time_ms=in_time,
        output_sim=np.concatenate([np.full(len(o), r, np.int32)
                                   for r, o in enumerate(outputs)]),
        output_time_ms=np.concatenate(outputs),
        nexus_voltage_mv=np.stack(nexus),
        dendritic_voltage_mv=np.stack(dend) if settings.record_dendrites else None,
        segments=Segments(type=seg.type, length_um=seg.length_um, distance_um=seg.distance_um,
                          section=seg.section, branch=seg.branch),
    )
    return batch, {"wall_s_per_sim": float(np.mean(wall)),
                   "wall_s": [round(w, 4) for w in wall], "pid": os.getpid()}


# ------------------------------------------------------------------------- on the client

def _pair(text: str, name: str) -> list[float]:
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise UserError(name, f"expected two comma-separated numbers, got {text!r}") from None
    return [low, high]


def cell_identity(cell: str) -> dict[str, str]:
    """What names the cell in the settings: the built-in name, or the spec and its hash."""
    if cell == BUILTIN_CELL:
        return {"builtin": cell}
    path = Path(cell)
    if not path.is_file():
        raise UserError(path, f"no such cell spec (and not the built-in {BUILTIN_CELL!r})")
    return {"spec": str(path.resolve()),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def simulation_settings(args: argparse.Namespace) -> dict[str, Any]:
    from biophys_models.protocol import ProtocolSettings

    if args.num_sims < 1 or args.duration_ms < 1 or args.sims_per_shard < 1:
        raise UserError("simulate", "--num-sims, --duration-ms and --sims-per-shard must be >= 1")
    below, above = _pair(args.inh_offsets, "--inh-offsets")
    try:
        protocol = ProtocolSettings(exc_range=tuple(_pair(args.exc_range, "--exc-range")),
                                    inh_below=below, inh_above=above)
    except ValueError as err:
        raise UserError("--exc-range", str(err)) from None
    run = {"duration_ms": args.duration_ms, "dt": args.dt, "cvode": args.cvode,
           "coreneuron": args.coreneuron, "record_dendrites": args.record_dendrites}
    try:
        from biophys_models.simulator import RunSettings

        RunSettings(**run)
    except ValueError as err:
        raise UserError("simulate", str(err)) from None
    return {"stage": "simulate", "cell": cell_identity(args.cell), "num_sims": args.num_sims,
            "seed": args.seed, "sims_per_shard": args.sims_per_shard, "run": run,
            "protocol": protocol.as_dict()}


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


def run(args: argparse.Namespace) -> None:
    settings = simulation_settings(args)
    manifest = prepare_output(args.out, None, settings)
    cell_source = (BUILTIN_CELL if args.cell == BUILTIN_CELL
                   else str(Path(args.cell).resolve()))
    ids = np.arange(args.num_sims)
    tasks = [ShardTask(shard_name(k), simulate_shard,
                       (cell_source, part.tolist(), args.seed, settings["run"],
                        settings["protocol"]), size=len(part))
             for k, part in enumerate(chunk(ids, args.sims_per_shard))]
    with dask_client(args.workers, args.scheduler) as client:
        write_shards(client, args.out, manifest, tasks, unit="sim",
                     recycle_after=args.recycle_after or None)
    data = Dataset(args.out)
    stats = summarize(read_shard(p, with_dendrites=False) for p in data.shard_paths)
    wall = data.manifest.neuron_wall_s_per_sim
    stats["neuron_wall_s_per_sim"] = float("nan") if wall is None else wall
    write_text_atomic(Path(args.out) / SUMMARY_NAME, json.dumps(stats, indent=1))
    print(format_summary(stats))
    print(f"NEURON: {stats['neuron_wall_s_per_sim']:.2f} s wall per simulation of "
          f"{args.duration_ms} ms")
    if args.export_neuronio is not None:
        files = export_neuronio(Path(args.out), args.export_neuronio, args.seed)
        print(f"{args.export_neuronio}: {len(files)} NeuronIO file(s)")

