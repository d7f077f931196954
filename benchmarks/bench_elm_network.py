"""ELM network training cost by parameter budget, on the CPU and on a GPU, and GPU sharing.

Usage: python benchmarks/bench_elm_network.py [--budgets 1e3,1e4,1e5,1e6] [--share 1,8,16]

Per budget, up to three networks of the sweep's default grid (`pipeline.sweep.analysis`):
milliseconds per training step (forward + backward + Adam, batch 8 x 500 ms, 1278 inputs,
bf16 autocast on the GPU as in training). Baseline: the same network on the CPU (2 threads)
in the same run; the ratio is the GPU's speed-up. On a GPU the recurrence is one kernel per
operation per time step, so the cost hardly depends on the size; --share K then runs K
processes timing the same networks at once on the GPU and prints their summed steps per
second over one process's (the sweep's --workers on a GPU).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.sweep.analysis import (  # noqa: E402
    DEFAULT_COMPLEXITIES,
    DEFAULT_UNITS,
    GridPoint,
    budget_grid,
    parse_budgets,
)
from surrogates import build  # noqa: E402

NUM_INPUTS = 1278
BATCH, STEPS_MS = 8, 500


def points(budgets: list[int], per_budget: int) -> list[GridPoint]:
    chosen = []
    for budget in budgets:
        grid = budget_grid(budget, DEFAULT_UNITS, DEFAULT_COMPLEXITIES, NUM_INPUTS, 0.25)
        chosen += grid[:: max(1, len(grid) // per_budget)][:per_budget]
    return chosen


def ms_per_step(point: GridPoint, device: torch.device, repeats: int) -> float:
    torch.manual_seed(0)
    model = build("elm_network", num_units=point.num_units, complexity=point.complexity,
                  connectivity=point.connectivity).to(device)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    x = (torch.rand(BATCH, STEPS_MS, NUM_INPUTS, device=device) < 0.01).float()
    cuda = device.type == "cuda"

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            y = model(x)
        loss = y.float().square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(2):  # warm-up: TorchScript profiling runs, allocator
        step()
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    if cuda:
        torch.cuda.synchronize()
    return 1000 * (time.perf_counter() - start) / repeats


def worker(args: argparse.Namespace) -> None:
    """One sharing process: print the seconds its loop over the networks took."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.set_num_threads(1)
    start = time.perf_counter()
    for point in points(parse_budgets(args.budgets), args.per_budget):
        ms_per_step(point, device, args.repeats)
    print(f"{time.perf_counter() - start:.3f}")


def shared(args: argparse.Namespace, processes: int) -> float:
    """Summed network-loops per second of `processes` concurrent workers."""
    command = [sys.executable, __file__, "--worker", "--budgets", args.budgets,
               "--per-budget", str(args.per_budget), "--repeats", str(args.repeats)]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            for _ in range(processes)]
    seconds = [float(run.communicate()[0].split()[-1]) for run in runs]
    return sum(1 / s for s in seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="1e3,1e4,1e5,1e6")
    parser.add_argument("--per-budget", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--share", default="1,8,16",
                        help="numbers of processes sharing the GPU (1 is the baseline)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    torch.set_num_threads(2)
    gpu = torch.cuda.is_available()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, GPU: "
          f"{torch.cuda.get_device_name() if gpu else 'none'}", flush=True)
    for point in points(parse_budgets(args.budgets), args.per_budget):
        cpu = ms_per_step(point, torch.device("cpu"), args.repeats)
        line = (f"P {point.budget:>9,} N {point.num_units:>5} k_e {point.complexity:>3} "
                f"k_c {point.connectivity:>5} ({point.params:>9,} parameters): CPU "
                f"{cpu:8.1f} ms/step")
        if gpu:
            cuda = ms_per_step(point, torch.device("cuda"), args.repeats)
            line += f", GPU {cuda:7.1f} ms/step, speed-up {cpu / cuda:6.1f}x"
        print(line, flush=True)
    if not gpu:
        print("GPU sharing: no GPU, skipped")
        return
    counts = sorted({int(k) for k in args.share.split(",")} | {1})
    rates = {k: shared(args, k) for k in counts}
    for k in counts:
        print(f"GPU shared by {k:>2} process(es): {rates[k] / rates[1]:4.1f}x the throughput "
              f"of one", flush=True)


if __name__ == "__main__":
    main()
