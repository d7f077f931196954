"""The command line: every stage is a subcommand and a `python -m` module."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.cli import STAGES


def test_top_level_help_lists_every_stage() -> None:
    out = subprocess.run(["neurosurrogate", "--help"], capture_output=True, text=True,
                         check=True).stdout
    for stage in STAGES:
        assert stage in out


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_each_stage_has_help_as_subcommand_and_module(stage: str) -> None:
    sub = subprocess.run(["neurosurrogate", stage, "--help"], capture_output=True, text=True,
                         check=True).stdout
    mod = subprocess.run([sys.executable, "-m", "pipeline", stage, "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "--out" in sub
    assert sub.split("usage:")[1].split()[2:] == mod.split("usage:")[1].split()[2:]


def test_module_entry_point_reports_user_errors_in_one_line(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pipeline", "ingest", "--src",
                           str(tmp_path / "missing.p"), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"neurosurrogate ingest: error: {tmp_path / 'missing.p'}: no such file or folder"]
