"""`manifest.json`: what a data set folder holds (its shards, their checksums, the settings
that made it), and opening a folder for writing one so that a rerun resumes."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.datasets.contract import SCHEMA_VERSION, DatasetInfo
from pipeline.errors import UserError
from pipeline.filenames import MANIFEST
from pipeline.runtime.files import sha256_file, write_text_atomic


@dataclass
class ShardEntry:
    file: str
    sim_ids: list[int]
    sha256: str
    extra: dict[str, Any] = field(default_factory=dict)  # simulate: wall_s, wall_s_per_sim, pid


@dataclass
class Manifest:
    info: DatasetInfo | None  # None only until the first shard of a new data set is written
    settings: dict[str, Any]
    shards: list[ShardEntry] = field(default_factory=list)
    complete: bool = False
    schema_version: int = SCHEMA_VERSION

    @property
    def sim_ids(self) -> np.ndarray:
        return np.array([i for s in self.shards for i in s.sim_ids], dtype=np.int64)

    @property
    def neuron_wall_s_per_sim(self) -> float | None:
        """Mean NEURON wall time of one simulation: measured by simulate, carried by shard."""
        walls = [w for s in self.shards for w in s.extra.get("wall_s", [])]
        if walls:
            return float(np.mean(walls))
        return self.settings.get("neuron_wall_s_per_sim")

    def entry(self, file: str) -> ShardEntry | None:
        return next((s for s in self.shards if s.file == file), None)

    def adopt_info(self, info: DatasetInfo, where: str | Path) -> None:
        """Take the data set's attributes from its first shard; every later one must agree."""
        if self.info is None:
            self.info = info
        elif info != self.info:
            raise UserError(where, f"attributes {info} differ from the rest of the data set "
                                   f"{self.info}")

    def put(self, entry: ShardEntry) -> None:
        """Add or replace the entry for entry.file, keeping shards ordered by file name."""
        self.shards = sorted([s for s in self.shards if s.file != entry.file] + [entry],
                             key=lambda s: s.file)

    def to_json(self) -> str:
        return json.dumps({"schema_version": self.schema_version, "complete": self.complete,
                           "info": None if self.info is None else asdict(self.info),
                           "settings": self.settings,
                           "shards": [asdict(s) for s in self.shards]}, indent=1)


def read_manifest(folder: Path, require_complete: bool = True) -> Manifest:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise UserError(path, "no manifest: not a data set folder")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw["schema_version"] != SCHEMA_VERSION:
            raise UserError(path, f"schema_version {raw['schema_version']} is not supported "
                                  f"(this version reads {SCHEMA_VERSION})")
        info_keys = {f.name for f in fields(DatasetInfo)}
        info = raw["info"] and DatasetInfo(**{k: raw["info"][k] for k in info_keys})
        manifest = Manifest(info=info,
                            settings=raw["settings"],
                            shards=[ShardEntry(**s) for s in raw["shards"]],
                            complete=bool(raw["complete"]))
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise UserError(path, f"malformed manifest ({type(err).__name__}: {err})") from None
    if require_complete and (not manifest.complete or manifest.info is None):
        raise UserError(path, "data set is incomplete: run the command that made it again")
    return manifest


def write_manifest(folder: Path, manifest: Manifest) -> None:
    write_text_atomic(Path(folder) / MANIFEST, manifest.to_json())


def prepare_output(folder: Path, info: DatasetInfo | None, settings: dict[str, Any]) -> Manifest:
    """Open `folder` for writing a data set made with `settings`.

    Returns the existing manifest when it was made with the same settings (so a rerun
    resumes), a new empty one for an empty folder, and refuses anything else.
    """
    folder = Path(folder)
    settings = json.loads(json.dumps(settings))  # the JSON form is the one compared
    path = folder / MANIFEST
    if path.is_file():
        existing = read_manifest(folder, require_complete=False)
        if existing.settings != settings:
            changed = sorted(k for k in set(existing.settings) | set(settings)
                             if existing.settings.get(k) != settings.get(k))
            raise UserError(folder, f"already holds a different data set (settings differ in: "
                                    f"{', '.join(changed)}); choose another --out")
        if info is not None and existing.info not in (None, info):
            raise UserError(folder, "already holds a data set with other attributes")
        return existing
    if folder.exists() and any(p for p in folder.iterdir() if not p.name.startswith(".")):
        raise UserError(folder, "exists and is not empty but holds no data set; "
                                "choose another --out")
    folder.mkdir(parents=True, exist_ok=True)
    return Manifest(info=info, settings=settings)


def shard_is_intact(folder: Path, entry: ShardEntry | None) -> bool:
    """True when the shard file exists and matches the checksum in its manifest entry."""
    if entry is None:
        return False
    path = Path(folder) / entry.file
    return path.is_file() and sha256_file(path) == entry.sha256


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.h5"
