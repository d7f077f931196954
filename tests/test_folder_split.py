"""`neurosurrogate shard --split folders`: the published NeuronIO folder split of an
ingested data set, end to end through the real CLI, and what it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pipeline.cli import main
from pipeline.config.checks import check_params
from pipeline.datasets.dataset import Dataset, write_dataset
from pipeline.datasets.neuronio import SIM_ID_STRIDE
from pipeline.datasets.split import published_split_of
from pipeline.errors import UserError
from pipeline.runtime.files import sha256_file
from tests.conftest import error_lines, make_neuronio_file
from tests.synthetic import synthetic_batch

ROOT = Path(__file__).resolve().parents[1]

# folder -> (seeds of its files, split); batch_10 must not be taken for batch_1
TREE = {
    "full_ergodic_train_batch_1": ((1, 11), "valid"),
    "full_ergodic_train_batch_2": ((2,), "train"),
    "full_ergodic_train_batch_10": ((10,), "train"),
    "Data_test": ((20, 21), "test"),
}
SIMS_PER_FILE = 2


def _ids(seed: int) -> list[int]:
    return [seed * SIM_ID_STRIDE + row for row in range(SIMS_PER_FILE)]


def _write_tree(src: Path, tree: dict) -> None:
    for folder, (seeds, _) in tree.items():
        (src / folder).mkdir(parents=True)
        for seed in seeds:
            make_neuronio_file(
                src / folder / f"sim__{SIMS_PER_FILE}_simulationRuns__0_secDuration__"
                               f"randomSeed_{seed}.p", seed, num_sims=SIMS_PER_FILE,
                duration_ms=100)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("folders")
    _write_tree(base / "neuronio", TREE)
    out = base / "ingested"
    assert main(["ingest", "--src", str(base / "neuronio"), "--out", str(out),
                 "--workers", "2"]) == 0
    return out


def _one_error(capsys) -> str:
    (line,) = error_lines(capsys.readouterr().err)
    return line


def test_each_split_holds_exactly_the_simulations_of_its_folders(ingested: Path,
                                                                 tmp_path: Path) -> None:
    manifest = json.loads((ingested / "manifest.json").read_text())
    assert sorted(s["extra"]["source_folder"] for s in manifest["shards"]) == sorted(
        f"neuronio/{folder}" for folder, (seeds, _) in TREE.items() for _ in seeds)
    want = {name: sorted(i for seeds, split in TREE.values() if split == name
                         for seed in seeds for i in _ids(seed))
            for name in ("train", "valid", "test")}
    outs = {}
    for workers in ("1", "2"):
        out = outs[workers] = tmp_path / f"split-{workers}"
        assert main(["shard", "--src", str(ingested), "--out", str(out), "--split", "folders",
                     "--sims-per-shard", "3", "--workers", workers]) == 0
        for name, ids in want.items():
            data = Dataset(out / name)
            data.verify()
            assert data.manifest.sim_ids.tolist() == ids  # and ordered by id
            assert data.manifest.settings["split"] == "folders"
    for name in want:  # bit-identical whatever the number of workers
        shards = sorted(p.name for p in (outs["1"] / name).glob("shard-*.h5"))
        assert shards and shards == sorted(p.name for p in (outs["2"] / name).glob("*.h5"))
        assert all(sha256_file(outs["1"] / name / s) == sha256_file(outs["2"] / name / s)
                   for s in shards)


def test_a_batch_folder_ingested_on_its_own_keeps_its_name(tmp_path: Path) -> None:
    _write_tree(tmp_path / "src", {"full_ergodic_train_batch_1": ((5,), "valid")})
    out = tmp_path / "ingested"
    assert main(["ingest", "--src", str(tmp_path / "src" / "full_ergodic_train_batch_1"),
                 "--out", str(out), "--workers", "1"]) == 0
    (entry,) = json.loads((out / "manifest.json").read_text())["shards"]
    assert entry["extra"]["source_folder"] == "full_ergodic_train_batch_1"


@pytest.mark.parametrize("folder, split", [
    ("full_ergodic_train_batch_1", "valid"),
    ("data/full_ergodic_train_batch_10", "train"),
    ("neuronio/L5PC_NMDA_full_ergodic_train_batch_9", "train"),
    ("Data_test/full_ergodic_train_batch_2", "train"),  # the innermost decides
    ("full_ergodic_train_batch_1/Data_test", "test"),
    ("kaggle/Data_test", "test"),
    ("full_ergodic_train_batch_11", None),
    ("full_ergodic_train_batch_0", None),
    ("Data_testing", None),
    ("neuronio/batch_1", None),
    ("", None),
])
def test_published_split_of_a_folder(folder: str, split: str | None) -> None:
    assert published_split_of(folder) == split


def test_a_file_from_another_folder_is_refused_and_nothing_written(tmp_path: Path,
                                                                   capsys) -> None:
    src = tmp_path / "neuronio"
    _write_tree(src, {"full_ergodic_train_batch_2": ((2,), "train"),
                      "extra_runs": ((7,), None)})
    raw = tmp_path / "ingested"
    assert main(["ingest", "--src", str(src), "--out", str(raw), "--workers", "1"]) == 0
    capsys.readouterr()
    out = tmp_path / "out"
    assert main(["shard", "--src", str(raw), "--out", str(out), "--split", "folders",
                 "--workers", "1"]) == 2
    line = _one_error(capsys)
    assert str(raw) in line and "'neuronio/extra_runs'" in line
    assert "none of the published folders" in line
    assert not out.exists()


def test_a_simulated_data_set_is_refused_and_nothing_written(tmp_path: Path, capsys) -> None:
    src = tmp_path / "simulated"
    write_dataset(src, [synthetic_batch([1, 2, 3], num_segments=4, duration_ms=50)],
                  {"stage": "simulate"})
    out = tmp_path / "out"
    assert main(["shard", "--src", str(src), "--out", str(out), "--split", "folders"]) == 2
    line = _one_error(capsys)
    assert str(src) in line and "was simulated" in line and "--split folders" in line
    assert not out.exists()


def _params(tmp_path: Path, neuronio: str | None, split: str) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["neuronio"] = neuronio
    params["shard"]["split"] = split
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def test_check_params_refuses_folders_without_neuronio(tmp_path: Path) -> None:
    assert check_params(_params(tmp_path, "data/neuronio", " folders"))["shard"]["split"]
    path = _params(tmp_path, None, "folders")
    with pytest.raises(UserError) as err:
        check_params(path)
    assert str(err.value).startswith(f"{path}: shard.split: folders")
    assert "needs data.neuronio" in str(err.value)
    with pytest.raises(UserError, match="shard.split"):
        check_params(_params(tmp_path, "data/neuronio", "folder"))
