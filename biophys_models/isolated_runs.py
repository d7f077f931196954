"""Simulations in a process of their own, one per mechanism build.

A process holds one mechanism library (NEURON cannot load two with the same names), and
exact and fast kinetics are two builds (`fixed_step`), so comparing them, or timing them
against each other, takes one fresh process per build. Used by tests/test_fast_kinetics.py
and benchmarks/bench_kinetics.py.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from biophys_models.protocol import ProtocolSettings
from biophys_models.recording import Recording


@dataclass(frozen=True)
class Job:
    """One build's runs: the cell, its library, and the seeds to simulate (the inputs of
    seed s are `protocol.input_spikes(..., s, 0, protocol)`, the same in every build)."""

    cell: str
    kinetics: str
    coreneuron: bool
    duration_ms: int
    seeds: tuple[int, ...]
    protocol: ProtocolSettings = field(default_factory=ProtocolSettings)


@dataclass(frozen=True)
class Run:
    seed: int
    recording: Recording
    wall_s: float  # the simulate() call alone, not the cell's build


def _run(job: Job) -> list[Run]:
    from pathlib import Path

    from biophys_models.cell import build_cell
    from biophys_models.cell_spec import BUILTIN_CELLS
    from biophys_models.protocol import input_spikes
    from biophys_models.simulator import RunSettings, simulate

    cell = build_cell(job.cell if job.cell in BUILTIN_CELLS else Path(job.cell),
                      coreneuron=job.coreneuron, kinetics=job.kinetics)
    settings = RunSettings(job.duration_ms, coreneuron=job.coreneuron, kinetics=job.kinetics)
    runs = []
    for seed in job.seeds:
        seg = cell.segments
        syn, t = input_spikes(seg.type, seg.length_um, job.duration_ms, seed, 0, job.protocol)
        start = time.perf_counter()
        rec = simulate(cell, syn, t, settings)
        runs.append(Run(seed, rec, time.perf_counter() - start))
    return runs


def run_isolated(jobs: list[Job], parallel: bool = False) -> list[list[Run]]:
    """Each job in a fresh spawned process, in order (parallel: all at once, for tests;
    not for timings)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=len(jobs) if parallel else 1, mp_context=context,
                             max_tasks_per_child=1) as pool:
        return list(pool.map(_run, jobs))
