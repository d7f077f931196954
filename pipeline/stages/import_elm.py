"""Convert a checkpoint of the reference ELM implementation into a neurosurrogate model.

Reads the reference's state dict (--state, e.g. neuronio_best_model_state.pt) and its JSON
config (--config, model_config.json) and writes DIR/model.pt (load it with surrogates.load)
and DIR/import.json (sources with their SHA-256, the reference config, our config, the
trainable parameter count). The imported model computes the reference's outputs from our
binary inputs (the reference takes +1/-1 signed ones).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state", type=Path, required=True, metavar="PT",
                        help="the reference model's state dict (torch.save file)")
    parser.add_argument("--config", type=Path, required=True, metavar="JSON",
                        help="the reference model's config (model_config.json)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="output folder for model.pt and import.json")


def import_elm(state_path: Path, config_path: Path, out: Path) -> Path:
    """Write DIR/model.pt and DIR/import.json; return the model's path."""
    import json
    from dataclasses import asdict

    from pipeline.filenames import IMPORT_RECORD
    from pipeline.runtime.files import sha256_file, write_text_atomic
    from surrogates import IMPORTED_CHECKPOINT, save
    from surrogates.reference_import import convert, read_config, read_state

    config = read_config(config_path)
    model = convert(read_state(state_path), config, where=str(state_path))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    source = {"state": {"path": str(state_path), "sha256": sha256_file(Path(state_path))},
              "config": {"path": str(config_path), "sha256": sha256_file(Path(config_path))}}
    save(model, out / IMPORTED_CHECKPOINT, extra={"imported_from": "reference ELM implementation"})
    summary = {"source": source, "reference_config": config, "model": model.name,
               "config": asdict(model.config), "num_params": model.num_params()}
    write_text_atomic(out / IMPORT_RECORD, json.dumps(summary, indent=2) + "\n")
    print(f"{out / IMPORTED_CHECKPOINT}: {model.name}, {model.num_params():,} trainable parameters")
    return out / IMPORTED_CHECKPOINT


def run(args: argparse.Namespace) -> None:
    import_elm(args.state, args.config, args.out)
