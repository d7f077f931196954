"""Window loader throughput: batches of 8 x 500 ms windows with 0, 1 and 2 loader workers.

    python benchmarks/bench_loader.py [--sims 32] [--batches 60]

Builds a synthetic data set with the NeuronIO shape (1278 inputs, 6 s, realistic input
rates) in a temporary folder, then prints windows per second for each worker count and
the ratio to the single-process loader measured in the same run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' synthetic data

from pipeline.datasets.dataset import write_dataset  # noqa: E402
from pipeline.training.windows import WindowDataset, window_loader  # noqa: E402
from tests.synthetic import synthetic_batch  # noqa: E402


def windows_per_second(folder: Path, workers: int, batches: int, batch_size: int = 8) -> float:
    data = WindowDataset(folder, window_ms=500, num_windows=(batches + 5) * batch_size, seed=1)
    loader = iter(window_loader(data, batch_size=batch_size, num_workers=workers))
    for _ in range(5):  # warm-up: worker start, file opening
        next(loader)
    start = time.perf_counter()
    for _ in range(batches):
        batch = next(loader)
        assert batch["inputs"].shape == (batch_size, 500, data.info.num_inputs)
    return batches * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=32)
    parser.add_argument("--batches", type=int, default=60)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "data"
        ids = np.arange(args.sims)
        write_dataset(folder, [synthetic_batch(part, seed=0, rate_hz=8.0)
                               for part in np.array_split(ids, max(1, args.sims // 16))],
                      {"benchmark": "loader"})
        size_mb = sum(p.stat().st_size for p in folder.glob("*.h5")) / 2**20
        print(f"data set: {args.sims} simulations x 6000 ms x 1278 inputs, {size_mb:.1f} MiB")
        baseline = None
        for workers in (0, 1, 2):
            rate = windows_per_second(folder, workers, args.batches)
            baseline = baseline or rate
            print(f"loader workers {workers}: {rate:8.1f} windows/s "
                  f"({rate / 8:6.1f} batches of 8 x 500 ms per s), "
                  f"ratio to 0 workers {rate / baseline:.2f}")


if __name__ == "__main__":
    main()
