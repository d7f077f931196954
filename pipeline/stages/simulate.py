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
from pathlib import Path

from pipeline.acquisition.options import SimulateOptions
from pipeline.protocol import DENDRITES, KINETICS, PROTOCOL_PRESETS, SYNAPSES
from pipeline.runtime.cluster import add_cluster_arguments

_DEFAULT = SimulateOptions.default


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, metavar="DIR")
    parser.add_argument("--num-sims", type=int, required=True, metavar="N")
    parser.add_argument("--duration-ms", type=int, default=_DEFAULT("duration_ms"),
                        metavar="T",
                        help=f"length of each simulation (default {_DEFAULT('duration_ms')})")
    parser.add_argument("--seed", type=int, default=_DEFAULT("seed"), metavar="S")
    parser.add_argument("--cell", default=_DEFAULT("cell"), metavar=f"{_DEFAULT('cell')}|SPEC.yaml",
                        help="the built-in L5PC (default) or a YAML cell spec")
    variant = parser.add_argument_group("cell variant (the NeuronIO paper's)")
    variant.add_argument("--synapse", default=_DEFAULT("synapse"), choices=SYNAPSES,
                         help="excitatory synapse: AMPA + NMDA (default) or AMPA only")
    variant.add_argument("--dendrites", default=_DEFAULT("dendrites"), choices=DENDRITES,
                         help="passive: no active conductance on basal and apical sections")
    variant.add_argument("--sk-e2-factor", type=float, default=_DEFAULT("sk_e2_factor"),
                         metavar="F", help="SK_E2 conductance of soma, axon and apical "
                                           "sections times F (default 1)")
    variant.add_argument("--ih-vshift-mv", type=float, default=_DEFAULT("ih_vshift_mv"),
                         metavar="MV", help="shift Ih activation by MV (+: to depolarised "
                                            "potentials; default 0)")
    add_cluster_arguments(parser)
    parser.add_argument("--sims-per-shard", type=int, default=_DEFAULT("sims_per_shard"),
                        metavar="M", help=f"default {_DEFAULT('sims_per_shard')}")
    parser.add_argument("--record-dendrites", action="store_true",
                        help="also store the voltage of every dendritic segment (float16)")
    integ = parser.add_mutually_exclusive_group()
    integ.add_argument("--dt", type=float, default=_DEFAULT("dt"), metavar="MS",
                       help=f"fixed time step (default {_DEFAULT('dt')} ms)")
    integ.add_argument("--cvode", action="store_true", help="variable-step integration")
    integ.add_argument("--coreneuron", action="store_true",
                       help="fixed step on CoreNEURON (same result, faster for big cells)")
    parser.add_argument("--kinetics", default=_DEFAULT("kinetics"), choices=list(KINETICS),
                        help="fast (default): fixed-step forms with rate tables, within the "
                             "README's tolerance of exact (cnexp, the rate expressions "
                             "evaluated every step; needed by --cvode)")
    parser.add_argument("--protocol-preset", default=_DEFAULT("protocol_preset"),
                        choices=list(PROTOCOL_PRESETS),
                        help="per-tree input ranges: the NMDA data's (default) or the "
                             "AMPA-only ones of the NeuronIO script")
    parser.add_argument("--exc-range", default=_DEFAULT("exc_range"), metavar="LOW,HIGH",
                        help="excitation, spikes per tree per 100 ms, of both trees or per "
                             "tree ('basal=0,1900 apical=0,2000'; default: the preset's, "
                             "nmda 0,800)")
    parser.add_argument("--inh-offsets", default=_DEFAULT("inh_offsets"), metavar="BELOW,ABOVE",
                        help="inhibition drawn on [max(0, exc - BELOW), exc + ABOVE], both "
                             "trees or per tree as --exc-range (default: the preset's, "
                             "nmda 600,200)")
    parser.add_argument("--recycle-after", type=int, default=_DEFAULT("recycle_after"),
                        metavar="N", help=f"restart a worker process after N simulations "
                                          f"(default {_DEFAULT('recycle_after')}; 0: never)")
    parser.add_argument("--export-neuronio", type=Path, default=None, metavar="DIR",
                        help="also write the data set in the published NeuronIO pickle layout")


def run(args: argparse.Namespace) -> None:
    from pipeline.acquisition.simulate import simulate

    simulate(SimulateOptions.from_args(args))
