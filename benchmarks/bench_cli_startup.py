"""CLI start-up: wall time of `neurosurrogate --help` and of each `STAGE --help`, and what
each imports (`python -X importtime`: the total, and whether torch is among it).

    python benchmarks/bench_cli_startup.py [--repeats 5]

The baseline, measured in the same run, is `python -c "import torch"`: the cost that a
stage which neither trains nor predicts should not pay. Run it with PYTHONPATH pointing at
another checkout to measure that checkout's CLI.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

CLI = "import sys; from pipeline.cli import main; sys.exit(main(sys.argv[1:]))"


def wall_s(code: str, args: list[str], repeats: int) -> float:
    """Median wall time of a fresh interpreter running `code` with `args`."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code, *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def import_profile(args: list[str]) -> tuple[float, bool]:
    """Total import time (s, the sum of every module's own time) and whether torch loads."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", CLI, *args],
                          capture_output=True, text=True, check=True)
    total_us, torch_loaded = 0, False
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative, name = line.removeprefix("import time:").split("|")
        total_us += int(self_us)
        torch_loaded |= name.strip() == "torch"
    return total_us / 1e6, torch_loaded


def stage_names() -> list[str]:
    from pipeline.cli import STAGES

    return list(STAGES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    baseline = wall_s("import torch", [], args.repeats)
    print(f"baseline `import torch`: {baseline:.2f} s (median of {args.repeats})")
    print(f"{'command':<34} {'wall s':>7} {'/ torch':>8} {'imports s':>10} {'torch':>6}")
    for command in [["--help"]] + [[name, "--help"] for name in stage_names()]:
        wall = wall_s(CLI, command, args.repeats)
        imports, torch_loaded = import_profile(command)
        label = "neurosurrogate " + " ".join(command)
        print(f"{label:<34} {wall:7.2f} {wall / baseline:8.2f} {imports:10.2f} "
              f"{'yes' if torch_loaded else 'no':>6}")


if __name__ == "__main__":
    main()
