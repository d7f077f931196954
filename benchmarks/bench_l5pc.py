"""Time one NeuronIO-protocol simulation of a cell (default the built-in l5pc) with each
integrator, and of other cells beside it.

Prints each cell's build time and, for fixed step (dt 0.025 ms), variable step (CVode) and
CoreNEURON, the wall seconds per simulated second and the ratio to the first cell's
fixed-step figure of the same run. Usage:
    python benchmarks/bench_l5pc.py [--duration-ms 6000] [--seed 0] [--cell l5pc --cell old.swc]
(each --cell is a built-in name, a reconstruction or a cell spec with the built-in mechanisms;
inputs follow each cell's own segment lengths, same seed).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-ms", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip", nargs="*", default=[], choices=["cvode", "coreneuron"])
    parser.add_argument("--cell", action="append", default=None, metavar="CELL",
                        help="cell to time (repeatable; default l5pc)")
    args = parser.parse_args()

    from biophys_models.cell import build_cell
    from biophys_models.compile import load_mechanisms
    from biophys_models.protocol import input_spikes
    from biophys_models.simulator import RunSettings, simulate

    load_mechanisms(coreneuron=True)  # compile (cached) outside the timed build
    seconds = args.duration_ms / 1000.0
    baseline = None
    for source in args.cell or ["l5pc"]:
        t0 = time.perf_counter()
        cell = build_cell(source, coreneuron=True)
        print(f"{source}: build {time.perf_counter() - t0:.2f} s ({len(cell.segments)} "
              f"segments, {cell.num_exc + cell.num_inh} synapses)")
        syn, times = input_spikes(cell.segments.type, cell.segments.length_um,
                                  args.duration_ms, args.seed, 0)
        print(f"  input: {len(times)} spikes over {args.duration_ms} ms")
        modes = {"fixed step dt 0.025": RunSettings(args.duration_ms)}
        if "cvode" not in args.skip:
            modes["variable step (CVode)"] = RunSettings(args.duration_ms, cvode=True)
        if "coreneuron" not in args.skip:
            modes["CoreNEURON dt 0.025"] = RunSettings(args.duration_ms, coreneuron=True)
        reference = None
        for label, settings in modes.items():
            t0 = time.perf_counter()
            rec = simulate(cell, syn, times, settings)
            per_s = (time.perf_counter() - t0) / seconds
            baseline = baseline or per_s
            reference = reference if reference is not None else rec.soma_voltage_mv
            diff = float(np.abs(rec.soma_voltage_mv - reference).max())
            print(f"  {label:24s} {per_s:7.2f} wall s / simulated s   x{per_s / baseline:.2f} of "
                  f"the first fixed-step run   {len(rec.output_spike_times_ms)} spikes   "
                  f"max|dV soma| vs fixed {diff:.3g} mV", flush=True)
        del cell


if __name__ == "__main__":
    main()
