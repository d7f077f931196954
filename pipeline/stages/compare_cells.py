"""Hold two cells side by side: rest, impedances, geometry, f-I curve, NeuronIO firing.

    neurosurrogate compare-cells CELL_A CELL_B --out DIR

Each cell (a built-in name, an .swc/.asc reconstruction or a cell spec .yaml) is built and
measured in a process of its own (NEURON holds one mechanism library per process), the two
at once: settled without input at 34 degC, input and transfer impedance at 0 Hz at rest,
the geometry of its sections, somatic current steps, and its output rate under the
NeuronIO generator (published NMDA ranges; the same seed and simulation ids for both).
Prints the table and writes DIR/compare.md and DIR/compare.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _amps(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(a) for a in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated nA values, got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cell_a", metavar="CELL_A", help="l5pc, a .swc/.asc file or a spec")
    parser.add_argument("cell_b", metavar="CELL_B", help="the cell to hold it against")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="output folder for compare.md and compare.json")
    parser.add_argument("--fi-amps", type=_amps, default=(0.4, 0.8, 1.2, 1.6), metavar="NA,..",
                        help="somatic step amplitudes of the f-I curve (default 0.4,0.8,1.2,1.6)")
    parser.add_argument("--fi-step-ms", type=int, default=500, metavar="MS",
                        help="length of each step (default 500)")
    parser.add_argument("--runs", type=int, default=6, metavar="N",
                        help="NeuronIO simulations per cell (default 6; 0 skips them)")
    parser.add_argument("--duration-ms", type=int, default=2000, metavar="MS",
                        help="length of each NeuronIO simulation (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="NeuronIO input seed (default 0)")


def _figure_rows(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(figure, A, B) rows in the order of the reference sheet's table."""
    def pick(m: dict[str, Any], path: str) -> Any:
        for key in path.split("."):
            m = m[key]
        return m

    rows: list[tuple[str, str, str]] = []

    def row(label: str, path: str, fmt: str = "{:.1f}") -> None:
        rows.append((label, fmt.format(pick(a, path)), fmt.format(pick(b, path))))

    row("soma rest (mV)", "rest.soma_mv", "{:.2f}")
    row("nexus rest (mV)", "rest.nexus_mv", "{:.2f}")
    row("input resistance at rest (MOhm)", "impedance.input_mohm")
    row("median transfer impedance, basal (MOhm)", "impedance.transfer_basal_median_mohm")
    row("median transfer impedance, apical (MOhm)", "impedance.transfer_apical_median_mohm")
    row("soma length (um)", "geometry.soma.length_um")
    row("soma diameter (um)", "geometry.soma.diam_um")
    row("soma area (um2)", "geometry.soma.area_um2", "{:.0f}")
    for tree in ("basal", "apical"):
        row(f"{tree}: stems", f"geometry.{tree}.stems", "{}")
        row(f"{tree}: stem diameter min (um)", f"geometry.{tree}.stem_diam_min_um", "{:.2f}")
        row(f"{tree}: stem diameter max (um)", f"geometry.{tree}.stem_diam_max_um", "{:.2f}")
        row(f"{tree}: sections", f"geometry.{tree}.sections", "{}")
        row(f"{tree}: tips", f"geometry.{tree}.tips", "{}")
        row(f"{tree}: total length (um)", f"geometry.{tree}.length_um", "{:.0f}")
        row(f"{tree}: area (um2)", f"geometry.{tree}.area_um2", "{:.0f}")
        row(f"{tree}: max path (um)", f"geometry.{tree}.max_path_um", "{:.0f}")
        row(f"{tree}: median segment distance (um)",
            f"geometry.{tree}.median_segment_distance_um", "{:.0f}")
    row("apical trunk diameter at the soma (um)", "geometry.apical.trunk_diam_at_soma_um")
    row("apical segments 685-885 um (Ca hot zone)", "geometry.apical.hot_zone_segments", "{}")
    row("apical segments beyond 885 um", "geometry.apical.beyond_hot_zone_segments", "{}")
    row("nexus distance (um)", "geometry.nexus.distance_um", "{:.0f}")
    row("nexus diameter (um)", "geometry.nexus.diam_um", "{:.2f}")
    row("segments basal", "geometry.segments.basal", "{}")
    row("segments apical", "geometry.segments.apical", "{}")
    row("segment length min (um)", "geometry.segments.length_min_um")
    row("segment length max (um)", "geometry.segments.length_max_um")
    row("segment length mean (um)", "geometry.segments.length_mean_um")
    for k, amp in enumerate(a["f_i"]["amps_na"]):
        rows.append((f"f-I: {amp:g} nA for {a['f_i']['step_ms']} ms (Hz)",
                     f"{a['f_i']['rate_hz'][k]:.1f}", f"{b['f_i']['rate_hz'][k]:.1f}"))
    if a["protocol"]["runs"]:
        p = a["protocol"]
        rows.append((f"NeuronIO inputs, {p['runs']} x {p['duration_ms']} ms, seed {p['seed']}: "
                     f"rate (Hz)", f"{a['protocol']['rate_hz_mean']:.2f}",
                     f"{b['protocol']['rate_hz_mean']:.2f}"))
        row("NeuronIO inputs: silent runs", "protocol.silent_fraction", "{:.0%}")
    return rows


def markdown(a: dict[str, Any], b: dict[str, Any]) -> str:
    lines = [f"| figure | {a['cell']} | {b['cell']} |", "|---|---|---|"]
    lines += [f"| {label} | {x} | {y} |" for label, x, y in _figure_rows(a, b)]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from biophys_models.cell_measures import MeasureSettings, measure
    from pipeline.errors import UserError
    from pipeline.runtime.files import write_text_atomic

    for flag, value in (("--fi-step-ms", args.fi_step_ms), ("--duration-ms", args.duration_ms)):
        if value < 1:
            raise UserError(flag, f"must be >= 1, got {value}")
    if args.runs < 0:
        raise UserError("--runs", f"must be >= 0, got {args.runs}")
    settings = MeasureSettings(fi_amps_na=args.fi_amps, fi_step_ms=args.fi_step_ms,
                               runs=args.runs, duration_ms=args.duration_ms, seed=args.seed)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(measure, source, settings) for source in (args.cell_a,
                                                                         args.cell_b)]
        a, b = (f.result() for f in futures)
    table = markdown(a, b)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "compare.json", json.dumps(
        {"settings": {"fi_amps_na": list(settings.fi_amps_na), "fi_step_ms": settings.fi_step_ms,
                      "runs": settings.runs, "duration_ms": settings.duration_ms,
                      "seed": settings.seed}, "cells": [a, b]}, indent=2) + "\n")
    write_text_atomic(out / "compare.md", table)
    print(table, end="")
