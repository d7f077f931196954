"""A training run's log, TRAIN_LOG: one CSV row per validation (what `dvc plots` draws).

The whole file is rewritten atomically at every validation, and a resumed run keeps the rows
up to its checkpoint, so the log of a resumed run equals an uninterrupted run's."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from pipeline.runtime.files import write_text_atomic

LOG_COLUMNS = ("step", "loss", "spike_loss", "soma_loss", "lr", "val_loss", "val_soma_rmse_mv",
               "val_spike_auc", "seconds")


def read_log(path: Path, up_to_step: int) -> list[dict[str, str]]:
    """Rows of an earlier run up to its checkpoint; later rows would be written again."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return [row for row in csv.DictReader(f) if int(row["step"]) <= up_to_step]


def write_log(path: Path, rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())
