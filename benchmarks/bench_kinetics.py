"""Exact vs fast kinetics (issue 19): cost per simulated second, agreement, core-hours.

Runs the built-in l5pc (or a cell spec) on the same protocol inputs per seed, interleaving
exact, fast, exact (the exact time is the mean of its two runs, so a load change on a busy
machine biases neither mode), and prints wall seconds per simulated second of each mode, their
ratio, the agreement of fast with exact (spikes matched within 0.5 ms, soma RMSE) and the
projected core-hours of the published 12,800 x 6 s data set in each mode.

Usage: python benchmarks/bench_kinetics.py [--duration-ms 2000] [--seeds 0,1] [--cell l5pc]
       [--ranges published|firing]
(published: the NMDA data's ranges, ProtocolSettings' defaults; firing: the small default
configuration's exc 400,800 / inh 800,0, where the cell fires within a second.)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

PUBLISHED_SIMS, PUBLISHED_SECONDS = 12800, 6.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-ms", type=int, default=2000)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--cell", default="l5pc", help="l5pc or a cell spec YAML")
    parser.add_argument("--ranges", choices=["published", "firing"], default="firing")
    args = parser.parse_args()

    from biophys_models.agreement import agreement
    from biophys_models.cell import build_cell
    from biophys_models.protocol import ProtocolSettings, input_spikes
    from biophys_models.simulator import RunSettings, simulate

    cell = build_cell(args.cell if args.cell == "l5pc" else Path(args.cell))
    protocol = ProtocolSettings() if args.ranges == "published" else ProtocolSettings(
        basal_exc_range=(400.0, 800.0), apical_exc_range=(400.0, 800.0),
        basal_inh_offsets=(800.0, 0.0), apical_inh_offsets=(800.0, 0.0))
    seconds = args.duration_ms / 1000.0
    cost = {"exact": 0.0, "fast": 0.0}
    total = None
    for seed in (int(s) for s in args.seeds.split(",")):
        seg = cell.segments
        syn, t = input_spikes(seg.type, seg.length_um, args.duration_ms, seed, 0, protocol)
        recs, wall = {}, {"exact": 0.0, "fast": 0.0}
        for mode, share in (("exact", 0.5), ("fast", 1.0), ("exact", 0.5)):
            start = time.perf_counter()
            recs[mode] = simulate(cell, syn, t, RunSettings(args.duration_ms, kinetics=mode))
            wall[mode] += share * (time.perf_counter() - start) / seconds
        result = agreement(recs["exact"], recs["fast"])
        total = result if total is None else total.combined(result)
        for mode in cost:
            cost[mode] += wall[mode]
        print(f"seed {seed}: exact {wall['exact']:.2f}  fast {wall['fast']:.2f} s per simulated s"
              f"  (x{wall['exact'] / wall['fast']:.2f})  spikes {result.reference_spikes} / "
              f"{result.candidate_spikes}, matched {result.matched}, soma RMSE "
              f"{result.soma_rmse_mv:.3f} mV", flush=True)
    n = len(args.seeds.split(","))
    print(f"\n{cell.label}, {args.duration_ms} ms x {n} seeds, {args.ranges} ranges")
    for mode in cost:
        per_s = cost[mode] / n
        hours = per_s * PUBLISHED_SECONDS * PUBLISHED_SIMS / 3600
        print(f"{mode:5s}: {per_s:6.2f} s per simulated s; published 12,800 x 6 s: "
              f"{hours:6.0f} core-hours")
    print(f"ratio exact / fast: {cost['exact'] / cost['fast']:.2f}")
    print(f"agreement: {100 * total.spike_match:.1f} % of spikes matched within 0.5 ms "
          f"({total.matched} of {total.reference_spikes} exact / {total.candidate_spikes} fast),"
          f" soma RMSE {total.soma_rmse_mv:.3f} mV; within tolerance: {total.within_tolerance}")


if __name__ == "__main__":
    main()
