"""benchmarks/gpu_check.py runs end to end (--smoke: tiny sizes, on the CPU) and writes every
part's figures, so that the one GPU run it is prepared for does not fail on a typo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the full script is the check")
def test_smoke_run_writes_every_part(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert {"info", "correctness", "train_branch_elm", "inference", "elm_network",
            "published", "total_seconds"} <= figures.keys()
    for key in ("correctness", "train_branch_elm", "inference", "elm_network", "published"):
        assert "error" not in figures[key], (key, figures[key])
    assert figures["train_branch_elm"]["baseline_ms"] > 0
    published = figures["published"]
    assert {"branch_elm", "elm", "tcn", "lstm"} <= published.keys()
    assert all(published[m]["steps_per_s"] > 0 for m in ("branch_elm", "elm", "tcn", "lstm"))
    assert published["projected_total_hours"] > 0
    if figures["info"]["fused_path"]:  # triton installed: the kernels ran in the interpreter
        assert figures["train_branch_elm"]["speedup"] > 0
        assert all(figures["correctness"][m]["pass"]
                   for m in ("branch_elm", "elm", "elm_network"))
        assert all(r["network_path"] == "triton" for r in figures["elm_network"])
