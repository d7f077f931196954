"""The simulate stage against a bare NEURON run, worker scaling, and determinism.

    python benchmarks/bench_simulate.py [--num-sims 4] [--duration-ms 6000]

1. bare: build `l5pc` in this process and simulate the same inputs in a loop (baseline),
   and the same loop split over 2 plain processes at once (this machine's own ceiling for
   two simulations in parallel, without Dask);
2. `neurosurrogate simulate --workers 1`: wall time per simulated second, and its ratio
   to the bare run (the pipeline's overhead: cluster, processes, cell build, HDF5, checks);
3. `--workers 2`: the speed-up over one worker;
4. determinism: the shards of 1 worker, 2 workers, and a resumed run are bit-identical.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path

import numpy as np

from pipeline.cli import main as cli
from pipeline.runtime.files import sha256_file


def bare_run(sim_ids: list[int], duration_ms: int, seed: int) -> float:
    from biophys_models.cell import build_cell
    from biophys_models.protocol import input_spikes
    from biophys_models.simulator import RunSettings, simulate

    start = time.perf_counter()
    cell = build_cell("l5pc")
    settings = RunSettings(duration_ms=duration_ms)
    for sim_id in sim_ids:
        synapse, time_ms = input_spikes(cell.segments.type, cell.segments.length_um,
                                        duration_ms, seed, sim_id)
        simulate(cell, synapse, time_ms, settings)
    return time.perf_counter() - start


def bare_parallel(num_sims: int, duration_ms: int, seed: int, processes: int = 2) -> float:
    parts = [[int(i) for i in part] for part in np.array_split(np.arange(num_sims), processes)]
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        pool.starmap(bare_run, [(part, duration_ms, seed) for part in parts])
    return time.perf_counter() - start


def pipeline_run(out: Path, num_sims: int, duration_ms: int, seed: int, workers: int) -> float:
    start = time.perf_counter()
    code = cli(["simulate", "--out", str(out), "--num-sims", str(num_sims), "--duration-ms",
                str(duration_ms), "--seed", str(seed), "--sims-per-shard", "1",
                "--workers", str(workers)])
    if code != 0:
        raise SystemExit(f"simulate failed with exit code {code}")
    return time.perf_counter() - start


def digests(folder: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in sorted(folder.glob("shard-*.h5"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-sims", type=int, default=4)
    parser.add_argument("--duration-ms", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n, t = args.num_sims, args.duration_ms
    simulated_s = n * t / 1000
    with tempfile.TemporaryDirectory() as tmp:
        bare = bare_run(list(range(n)), t, args.seed)
        bare2 = bare_parallel(n, t, args.seed)
        one = pipeline_run(Path(tmp) / "w1", n, t, args.seed, 1)
        two = pipeline_run(Path(tmp) / "w2", n, t, args.seed, 2)
        (Path(tmp) / "w2" / "shard-00001.h5").unlink()
        pipeline_run(Path(tmp) / "w2", n, t, args.seed, 2)
        same = digests(Path(tmp) / "w1") == digests(Path(tmp) / "w2")
    print(f"{n} simulations x {t} ms of l5pc (fixed step 0.025 ms)")
    print(f"bare NEURON loop, one process : {bare / simulated_s:7.2f} s wall per simulated s")
    print(f"bare NEURON, 2 processes      : {bare2 / simulated_s:7.2f} s wall per simulated s, "
          f"speed-up {bare / bare2:.2f}x (this machine's ceiling for 2 at once)")
    print(f"simulate --workers 1          : {one / simulated_s:7.2f} s wall per simulated s, "
          f"ratio to bare {one / bare:.3f} (target <= 1.05)")
    print(f"simulate --workers 2          : {two / simulated_s:7.2f} s wall per simulated s, "
          f"speed-up over 1 worker {one / two:.2f}x (target >= 1.8x; "
          f"{(one / two) / (bare / bare2):.0%} of the machine's ceiling)")
    print(f"bit-identical shards (1 worker, 2 workers, after resume): {same}")


if __name__ == "__main__":
    main()
