"""The published scale on one GPU: every figure of issue 18, each against the baseline of the
same run (the TorchScript loops, NEUROSURROGATE_FUSED_SCAN=off), in one time-boxed script.

Usage: bash benchmarks/gpu_check.sh [--out gpu_check.json]   (installs '.[gpu]' first)
       python benchmarks/gpu_check.py [--out FILE] [--smoke]

Parts (each printed as it finishes, all written to --out as JSON):
- correctness: fused vs TorchScript, Branch-ELM / ELM / ELM Network outputs and gradients,
  max abs difference; PASS when every element agrees to 1e-5 absolute + 1e-5 relative (fp32,
  the criterion of tests/test_fused_scan.py);
- train_branch_elm: Branch-ELM d_m=20 training step, batch 8 x 500 ms, forward + backward +
  Adam (goal <= 10 ms and >= 15x the baseline);
- inference: Branch-ELM d_m=20, 32 x 6000 ms in 500 ms chunks carrying state (goal >= 10x);
- elm_network: the ELM Network's training step at about 1e3 .. 1e6 parameters, its fused
  coupled-loop kernels (`triton_network`) against the TorchScript loops; `network_path` says
  which loop the fused run's dispatch actually took at that size;
- published: every model's training step under its published recipe (steps/s, peak memory)
  and the projected wall time of configs/published.yaml, evaluation included (an estimate:
  see `ASSUMPTIONS`).
--smoke: tiny sizes and a few iterations, on the CPU too (the fused kernels then run in
Triton's interpreter, or are skipped without triton), so that a test can run the script.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

if "--smoke" in sys.argv and not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before anything imports triton

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.config.recipes import RECIPES  # noqa: E402
from pipeline.sweep.analysis import budget_grid  # noqa: E402
from surrogates import build, triton_network, triton_scan  # noqa: E402

NUM_INPUTS = 1278
TEST_SIMS = 1280  # one NeuronIO folder of 6 s simulations (the published split's Data_test)
ASSUMPTIONS = {
    "steps": "elm recipe 350,000 steps (branch_elm, elm, lstm); tcn_beniaguev recipe's steps",
    "validation": "every val_every=5000 steps, val_windows=512 windows of the model's window",
    "evaluation": f"{TEST_SIMS} test simulations x 6000 ms, elm protocol windows of 500 ms "
                  "with a 150 ms burn-in (stride 350 ms), batch 32, no grad",
    "not_counted": "data loading, checkpointing, bootstrap intervals (CPU), simulation",
}
PUBLISHED = (  # (name, model, settings, recipe)
    ("branch_elm", "branch_elm", {"num_memory": 20}, "elm"),
    ("elm", "elm", {"num_memory": 20}, "elm"),
    ("tcn", "tcn", {"preset": "tcn_7x128x153"}, "tcn_beniaguev"),
    ("lstm", "lstm", {"hidden_size": 50}, "elm"),
)
SMALL = {"num_exc": 6, "num_inh": 6}
SMOKE_SETTINGS = {
    "branch_elm": {**SMALL, "num_branches": 3, "branch_size": 5, "num_memory": 5},
    "elm": {**SMALL, "num_memory": 5},
    "tcn": {**SMALL, "channels": 8, "kernel_sizes": [5, 3]},
    "lstm": {**SMALL, "hidden_size": 8},
}


class Clock:
    """Medians of timed calls on one device, each part within its own time box."""

    def __init__(self, device: torch.device, smoke: bool):
        self.device, self.smoke = device, smoke
        self.cuda = device.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def median_ms(self, fn: Callable[[], object], repeats: int = 10, warm_up: int = 2,
                  box_s: float = 20.0) -> float:
        """Median ms of up to `repeats` calls after `warm_up` (compiles, TorchScript
        profiling runs, allocator); stops early, after at least one call, past box_s."""
        if self.smoke:
            repeats, warm_up = min(repeats, 2), min(warm_up, 1)
        for _ in range(warm_up):
            fn()
        self.sync()
        times: list[float] = []
        deadline = time.perf_counter() + box_s
        while len(times) < repeats and (not times or time.perf_counter() < deadline):
            if self.cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(
                    enable_timing=True)
                start.record()
                fn()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
            else:
                t0 = time.perf_counter()
                fn()
                times.append(1e3 * (time.perf_counter() - t0))
        return statistics.median(times)


def fused_mode(device: torch.device) -> str | None:
    """The MODE that runs the fused kernels here, or None when they cannot run."""
    if not triton_scan.available():
        return None
    return "auto" if device.type == "cuda" else "triton"


def spikes(batch: int, steps: int, inputs: int, device: torch.device,
           rate: float = 0.01) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return (torch.rand(batch, steps, inputs, generator=gen) < rate).float().to(device)


def train_step(model: torch.nn.Module, x: torch.Tensor, optimizer: str = "adam",
               lr: float = 5e-4) -> Callable[[], None]:
    """One training step of the recipes' form: BCE on the spike logit + MSE on the soma."""
    opt_class = torch.optim.NAdam if optimizer == "nadam" else torch.optim.Adam
    opt = opt_class(model.parameters(), lr=lr)
    with torch.no_grad():
        shape = model(x).shape
    gen = torch.Generator().manual_seed(1)
    spike = (torch.rand(shape[:-1], generator=gen) < 0.01).float().to(x.device)
    soma = torch.randn(shape[:-1], generator=gen).to(x.device)

    def step() -> None:
        y = model(x)
        loss = 0.5 * F.binary_cross_entropy_with_logits(y[..., 0], spike) \
            + 0.5 * F.mse_loss(y[..., 1], soma)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def with_mode(mode: str, fn: Callable[[], Any]) -> Any:
    """Run fn with triton_scan.MODE set to mode (the baseline is "off")."""
    saved = triton_scan.MODE
    triton_scan.MODE = mode
    try:
        return fn()
    finally:
        triton_scan.MODE = saved


def compare(clock: Clock, fused: str | None, fn_of_mode: Callable[[str], Callable[[], object]],
            goal: dict[str, float], box_s: float, repeats: int = 10) -> dict[str, Any]:
    """Baseline and fused ms of the same work, and their ratio."""
    out: dict[str, Any] = {"baseline_ms": with_mode(
        "off", lambda: clock.median_ms(fn_of_mode("off"), max(3, repeats // 3), 1, box_s))}
    if fused is not None:
        out["fused_ms"] = with_mode(fused, lambda: clock.median_ms(fn_of_mode(fused), repeats,
                                                                   2, box_s))
        out["speedup"] = out["baseline_ms"] / out["fused_ms"]
    out["goal"] = goal
    return out


def line(label: str, r: dict[str, Any]) -> None:
    fused = (f"fused {r['fused_ms']:9.2f} ms, {r['speedup']:6.1f}x" if "fused_ms" in r
             else "fused: not run (no triton)")
    print(f"{label:48s} baseline {r['baseline_ms']:9.2f} ms | {fused} | goal {r['goal']}",
          flush=True)


def max_diffs(model: torch.nn.Module, x: torch.Tensor, fused: str) -> dict[str, float]:
    """Max abs difference of outputs and of every gradient, fused vs TorchScript."""
    weight = torch.randn(model(x).shape, generator=torch.Generator().manual_seed(2)).to(x)

    def run() -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.zero_grad(set_to_none=True)
        y = model(x)
        (y * weight).sum().backward()
        return y.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    y_f, g_f = with_mode(fused, run)
    y_b, g_b = with_mode("off", run)
    grad = max(float((a - b).abs().max()) for a, b in zip(g_f, g_b, strict=True))
    scale = max(float(b.abs().max()) for b in g_b)
    # The tests' criterion (torch.testing.assert_close, rtol = atol = 1e-5), element-wise.
    close = all(bool(((a - b).abs() <= 1e-5 + 1e-5 * b.abs()).all())
                for a, b in zip([y_f, *g_f], [y_b, *g_b], strict=True))
    return {"output": float((y_f - y_b).abs().max()), "gradient": grad,
            "gradient_max_abs": scale, "pass": close}


def part_correctness(clock: Clock, fused: str | None, smoke: bool) -> dict[str, Any]:
    if fused is None:
        return {"skipped": "triton not installed"}
    dev, out = clock.device, {}
    steps, batch = (30, 2) if smoke else (500, 8)
    for name, settings in (("branch_elm", {"num_memory": 20}), ("elm", {"num_memory": 20}),
                           ("elm_network", {"num_units": 64, "complexity": 8})):
        if smoke:
            settings = {**SMALL, "num_memory": 5} if name != "elm_network" else \
                {**SMALL, "num_units": 4, "complexity": 2, "connectivity": 4}
        torch.manual_seed(0)
        model = build(name, **settings).to(dev)
        out[name] = max_diffs(model, spikes(batch, steps, model.config.num_inputs, dev), fused)
        print(f"correctness {name:12s} max|fused - torchscript|: output "
              f"{out[name]['output']:.2e}, gradients {out[name]['gradient']:.2e} (largest "
              f"gradient {out[name]['gradient_max_abs']:.2e}) -> "
              f"{'PASS' if out[name]['pass'] else 'FAIL'}", flush=True)
    return out


def part_train(clock: Clock, fused: str | None, smoke: bool) -> dict[str, Any]:
    dev = clock.device
    settings = SMOKE_SETTINGS["branch_elm"] if smoke else {"num_memory": 20}
    steps = 20 if smoke else 500

    def fn(_mode: str) -> Callable[[], None]:
        torch.manual_seed(0)
        model = build("branch_elm", **settings).to(dev)
        return train_step(model, spikes(8, steps, model.config.num_inputs, dev))

    r = compare(clock, fused, fn, {"fused_ms_max": 10, "speedup_min": 15}, box_s=25)
    line(f"train step branch_elm d_m=20, 8 x {steps} ms", r)
    return r


def part_inference(clock: Clock, fused: str | None, smoke: bool) -> dict[str, Any]:
    dev = clock.device
    settings = SMOKE_SETTINGS["branch_elm"] if smoke else {"num_memory": 20}
    sims, steps, chunk = (4, 60, 20) if smoke else (32, 6000, 500)
    torch.manual_seed(0)
    model = build("branch_elm", **settings).to(dev).eval()
    x = spikes(sims, steps, model.config.num_inputs, dev)

    def fn(_mode: str) -> Callable[[], None]:
        def run() -> None:
            with torch.no_grad():
                model.predict(x, chunk)
        return run

    r = compare(clock, fused, fn, {"speedup_min": 10}, box_s=40, repeats=5)
    r["samples_ms_per_s_fused"] = sims * steps / r["fused_ms"] * 1e3 if "fused_ms" in r else None
    line(f"inference branch_elm d_m=20, {sims} x {steps} ms", r)
    return r


def network_points(smoke: bool) -> list[dict[str, int]]:
    """One ELM Network per budget: the grid's point with the most units whose step is not
    dominated by one huge unit (the middle of the budget's grid)."""
    if smoke:
        return [{"budget": 100, "num_units": 3, "complexity": 2, "connectivity": 4}]
    chosen = []
    for budget in (1_000, 10_000, 100_000, 1_000_000):
        grid = budget_grid(budget, (1, 4, 16, 64, 256, 1024), (1, 2, 4, 8, 16), NUM_INPUTS,
                           0.25)
        if grid:
            p = grid[len(grid) // 2]
            chosen.append({"budget": budget, "num_units": p.num_units,
                           "complexity": p.complexity, "connectivity": p.connectivity})
    return chosen


def network_path(model: torch.nn.Module, x: torch.Tensor, mode: str | None) -> str:
    """Which loop one forward of the ELM Network runs under `mode`: "triton" when the fused
    network kernels launch, else "torchscript" (the dispatch may refuse a size)."""
    if mode is None:
        return "torchscript"
    original, calls = triton_network.forward, []

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    triton_network.forward = spy
    triton_scan._kernels.cache_clear()  # the launchers are bound when first handed out
    try:
        with torch.no_grad():
            with_mode(mode, lambda: model(x))
    finally:
        triton_network.forward = original
        triton_scan._kernels.cache_clear()
    return "triton" if calls else "torchscript"


def part_network(clock: Clock, fused: str | None, smoke: bool) -> list[dict[str, Any]]:
    dev, results = clock.device, []
    steps, batch = (20, 2) if smoke else (500, 8)  # smoke: the interpreter runs a program a row
    for point in network_points(smoke):
        settings = {k: v for k, v in point.items() if k != "budget"}
        if smoke:
            settings.update(SMALL)

        def fn(_mode: str, settings: dict = settings) -> Callable[[], None]:
            torch.manual_seed(0)
            model = build("elm_network", **settings).to(dev)
            return train_step(model, spikes(batch, steps, model.config.num_inputs, dev))

        r = compare(clock, fused, fn, {}, box_s=20, repeats=6)
        torch.manual_seed(0)
        model = build("elm_network", **settings).to(dev)
        r.update(point, params=model.num_params(), network_path=network_path(
            model, spikes(batch, steps, model.config.num_inputs, dev), fused))
        line(f"elm_network P={r['params']:,} (N {point['num_units']}, k_e "
             f"{point['complexity']}, k_c {point['connectivity']}; fused run: "
             f"{r['network_path']})", r)
        results.append(r)
    return results


def part_published(clock: Clock, fused: str | None, smoke: bool) -> dict[str, Any]:
    dev, out = clock.device, {}
    total_s = 0.0
    for name, model_name, settings, recipe_name in PUBLISHED:
        recipe = RECIPES[recipe_name]
        steps, window = recipe.settings["steps"], recipe.settings["window_ms"]
        batch = recipe.settings["batch_size"]
        if smoke:
            settings, window = SMOKE_SETTINGS[name], 20
        torch.manual_seed(0)
        model = build(model_name, **settings).to(dev)
        x = spikes(batch, window, model.config.num_inputs, dev)
        mode = fused or "off"
        if clock.cuda:
            torch.cuda.reset_peak_memory_stats()
        step_ms = with_mode(mode, lambda model=model, x=x, recipe=recipe: clock.median_ms(
            train_step(model, x, recipe.optimizer, recipe.settings["lr"]), 10, 3, 20))
        peak = torch.cuda.max_memory_allocated() if clock.cuda else None
        # Inference throughput (no grad) at the evaluator's batch of 500 ms windows.
        model.eval()
        x_eval = spikes(32, 20 if smoke else 500, model.config.num_inputs, dev)

        def infer(model: torch.nn.Module = model, x_eval: torch.Tensor = x_eval) -> None:
            with torch.no_grad():
                model(x_eval)

        infer_ms = with_mode(mode, lambda infer=infer: clock.median_ms(infer, 5, 2, 15))
        windows_eval = TEST_SIMS * ((6000 - 500) // 350 + 1)
        val_windows = (steps // 5000) * 512
        eval_s = (windows_eval + val_windows) / 32 * infer_ms / 1e3
        train_s = steps * step_ms / 1e3
        total_s += train_s + eval_s
        out[name] = {"settings": settings, "recipe": recipe_name, "steps": steps,
                     "batch": batch, "window_ms": window, "step_ms": step_ms,
                     "steps_per_s": 1e3 / step_ms, "peak_memory_bytes": peak,
                     "infer_ms_per_32_windows": infer_ms, "train_hours": train_s / 3600,
                     "eval_and_validation_hours": eval_s / 3600, "path": mode}
        mem = f"{peak / 2**20:8.1f} MiB" if peak is not None else "n/a (CPU)"
        print(f"published {name:10s} ({recipe_name}, {batch} x {window} ms): "
              f"{step_ms:8.2f} ms/step = {1e3 / step_ms:7.1f} steps/s, peak {mem}; "
              f"{steps:,} steps -> {train_s / 3600:6.2f} h + eval/validation "
              f"{eval_s / 3600:5.2f} h", flush=True)
    out["projected_total_hours"] = total_s / 3600
    out["assumptions"] = ASSUMPTIONS
    print(f"projected wall time of configs/published.yaml (4 models, one GPU, one after the "
          f"other): {total_s / 3600:.1f} h", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gpu_check.json", help="JSON of every figure")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes, a few iterations; runs on the CPU")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu" and not args.smoke:
        parser.error("no CUDA device: only --smoke runs on the CPU")
    clock = Clock(device, args.smoke)
    fused = fused_mode(device)
    started = time.perf_counter()
    info = {"device": torch.cuda.get_device_name() if clock.cuda else "cpu",
            "torch": torch.__version__, "smoke": args.smoke,
            "fused_path": "triton" if fused else None,
            "triton_interpreter": os.environ.get("TRITON_INTERPRET", "") == "1"}
    print(json.dumps(info), flush=True)
    results: dict[str, Any] = {"info": info}
    parts = (("correctness", part_correctness), ("train_branch_elm", part_train),
             ("inference", part_inference), ("elm_network", part_network),
             ("published", part_published))
    for key, part in parts:
        t0 = time.perf_counter()
        try:
            results[key] = part(clock, fused, args.smoke)
        except Exception as err:  # one failing part must not cost the others' figures
            results[key] = {"error": f"{type(err).__name__}: {err}"}
            print(f"{key}: FAILED {type(err).__name__}: {err}", flush=True)
        results.setdefault("part_seconds", {})[key] = time.perf_counter() - t0
        Path(args.out).write_text(json.dumps(results, indent=1, default=str))
    results["total_seconds"] = time.perf_counter() - started
    Path(args.out).write_text(json.dumps(results, indent=1, default=str))
    print(f"done in {results['total_seconds']:.0f} s; figures in {args.out}", flush=True)


if __name__ == "__main__":
    main()
