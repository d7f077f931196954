"""Exact vs fast kinetics (issue 19): cost per simulated second, agreement, core-hours.

Runs the built-in l5pc (or a cell spec) on the same protocol inputs per seed in four builds,
each in a process of its own (`biophys_models.isolated_runs`; a process holds one mechanism
library): exact on NEURON (today's reference, run first and again last, its time the mean of
the two so that a load change on a busy machine biases no build), fast on NEURON (the
pipeline's default), fast on CoreNEURON and exact on CoreNEURON. It prints wall seconds per
simulated second of each, their ratio to exact on NEURON, the agreement of each with exact on
NEURON (spikes matched within 0.5 ms, soma RMSE) and the projected core-hours of the
published 12,800 x 6 s data set.

Usage: python benchmarks/bench_kinetics.py [--duration-ms 2000] [--seeds 0,1] [--cell l5pc]
       [--ranges published|firing]
(published: the NMDA data's ranges, ProtocolSettings' defaults; firing: the small default
configuration's exc 400,800 / inh 800,0, where the cell fires within a second.)
"""

from __future__ import annotations

import argparse

PUBLISHED_SIMS, PUBLISHED_SECONDS = 12800, 6.0
# (label, kinetics, CoreNEURON); the first is the reference and the baseline
BUILDS = (("exact, NEURON", "exact", False), ("fast, NEURON", "fast", False),
          ("fast, CoreNEURON", "fast", True), ("exact, CoreNEURON", "exact", True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-ms", type=int, default=2000)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--cell", default="l5pc", help="l5pc or a cell spec YAML")
    parser.add_argument("--ranges", choices=["published", "firing"], default="firing")
    args = parser.parse_args()

    from biophys_models.agreement import agreement
    from biophys_models.isolated_runs import Job, run_isolated
    from biophys_models.protocol import ProtocolSettings

    protocol = ProtocolSettings() if args.ranges == "published" else ProtocolSettings(
        basal_exc_range=(400.0, 800.0), apical_exc_range=(400.0, 800.0),
        basal_inh_offsets=(800.0, 0.0), apical_inh_offsets=(800.0, 0.0))
    seeds = tuple(int(s) for s in args.seeds.split(","))
    seconds = args.duration_ms / 1000.0 * len(seeds)
    jobs = [Job(args.cell, kinetics, core, args.duration_ms, seeds, protocol)
            for _, kinetics, core in (*BUILDS, BUILDS[0])]
    results = run_isolated(jobs)  # one after another: timings
    per_s = [sum(r.wall_s for r in runs) / seconds for runs in results]
    per_s[0] = (per_s[0] + per_s.pop()) / 2  # exact on NEURON, first and last
    reference = results[0]
    print(f"{args.cell}, {args.duration_ms} ms x {len(seeds)} seeds, {args.ranges} ranges\n")
    for (label, _, _), cost, runs in zip(BUILDS, per_s, results, strict=False):
        total = None
        for ref, run in zip(reference, runs, strict=True):
            one = agreement(ref.recording, run.recording)
            total = one if total is None else total.combined(one)
        hours = cost * PUBLISHED_SECONDS * PUBLISHED_SIMS / 3600
        print(f"{label:18s} {cost:6.2f} s per simulated s  x{per_s[0] / cost:4.2f}  "
              f"published 12,800 x 6 s: {hours:5.0f} core-hours  spikes {total.matched} of "
              f"{total.reference_spikes} matched ({total.candidate_spikes} here, "
              f"{100 * total.spike_match:.1f} %), soma RMSE {total.soma_rmse_mv:.4f} mV, "
              f"within tolerance: {total.within_tolerance}", flush=True)


if __name__ == "__main__":
    main()
