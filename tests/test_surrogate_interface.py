"""The shared model interface, checked for every registered model name.

Each name runs with small settings from SMALL_SETTINGS; a name not listed there runs with its
defaults if those are small enough, and is skipped (saying why) otherwise.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import torch

from pipeline.stages import import_elm
from surrogates import (
    BEST_CHECKPOINT,
    IMPORTED_CHECKPOINT,
    LAST_CHECKPOINT,
    Surrogate,
    build,
    load,
    model_names,
    save,
)
from surrogates.checkpoints import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, read_checkpoint
from surrogates.errors import ModelError

SMALL_SETTINGS: dict[str, dict[str, Any]] = {
    "tcn": {"num_exc": 5, "num_inh": 4, "channels": 6, "kernel_sizes": (3, 2)},
    "lstm": {"num_exc": 5, "num_inh": 4, "hidden_size": 6},
}
MAX_DEFAULT_PARAMS = 400_000  # a name without small settings runs with defaults up to this

NAMES = model_names()


def small_model(name: str, seed: int = 0) -> Surrogate:
    torch.manual_seed(seed)
    model = build(name, **SMALL_SETTINGS.get(name, {}))
    if name not in SMALL_SETTINGS and model.num_params() > MAX_DEFAULT_PARAMS:
        pytest.skip(f"{name}: no small settings in SMALL_SETTINGS and its defaults have "
                    f"{model.num_params():,} parameters")
    return model


def spikes(model: Surrogate, batch: int, time: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, time, model.config.num_inputs, generator=gen) < 0.2).float()


def settle(model: Surrogate) -> Surrogate:
    """Run once in train mode (so running statistics differ from their start), then eval."""
    model.train()
    with torch.no_grad():
        model(spikes(model, 2, 12, seed=99))
    return model.eval()


def assert_one_line(err: pytest.ExceptionInfo[ModelError], *parts: str) -> None:
    message = str(err.value)
    assert "\n" not in message, message
    for part in parts:
        assert part in message, message


def test_every_model_family_is_registered() -> None:
    assert {"elm", "branch_elm", "tcn", "lstm"} <= set(NAMES)
    assert NAMES == sorted(NAMES)


# ---------------------------------------------------------------- behaviour


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("batch", "time"), [(1, 1), (3, 17)])
def test_output_shape(name: str, batch: int, time: int) -> None:
    model = small_model(name).eval()
    assert model.name == name
    with torch.no_grad():
        y = model(spikes(model, batch, time))
    assert y.shape == (batch, time, 2)
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", NAMES)
def test_causal(name: str) -> None:
    """Changing inputs from step t on leaves every output before t as it was."""
    model = settle(small_model(name))
    x = spikes(model, 2, 24)
    later = x.clone()
    t = 10
    later[:, t:] = spikes(model, 2, 24 - t, seed=1)
    with torch.no_grad():
        y, y_later = model(x), model(later)
    torch.testing.assert_close(y_later[:, :t], y[:, :t], rtol=0, atol=1e-6)
    assert not torch.allclose(y_later[:, t:], y[:, t:])  # the model does read its input


@pytest.mark.parametrize("name", NAMES)
def test_rejects_inputs_of_wrong_shape(name: str) -> None:
    model = small_model(name)
    width = model.config.num_inputs
    for bad in (torch.zeros(2, 5, width + 1), torch.zeros(5, width)):
        with pytest.raises(ModelError) as err:
            model(bad)
        assert_one_line(err, name, str(width))


@pytest.mark.parametrize("name", NAMES)
def test_num_params_counts_trainable_parameters(name: str) -> None:
    model = small_model(name)
    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert model.num_params() == total > 0
    frozen = next(p for p in model.parameters() if p.requires_grad)
    frozen.requires_grad_(False)
    assert model.num_params() == total - frozen.numel()


@pytest.mark.parametrize("name", NAMES)
def test_soma_mv_undoes_the_training_scale(name: str) -> None:
    model = small_model(name)
    y = torch.tensor([[[0.3, 0.0], [0.3, 1.5]]])
    offset, scale = model.config.soma_offset_mv, model.config.soma_scale
    mv = model.soma_mv(y)
    assert mv.shape == (1, 2)
    torch.testing.assert_close(mv, torch.tensor([[offset, offset + 1.5 / scale]]))


@pytest.mark.parametrize("name", NAMES)
def test_config_survives_json(name: str) -> None:
    """`load` rebuilds from asdict(config); a JSON trip (tuples become lists) must not matter."""
    config = small_model(name).config
    text = json.dumps(asdict(config))
    assert build(name, **json.loads(text)).config == config


# ---------------------------------------------------------------- build


@pytest.mark.parametrize("name", NAMES)
def test_build_rejects_unknown_setting(name: str) -> None:
    with pytest.raises(ModelError) as err:
        build(name, no_such_setting=3)
    assert_one_line(err, name, "no_such_setting")


def test_build_rejects_unknown_model() -> None:
    with pytest.raises(ModelError) as err:
        build("no_such_model")
    assert_one_line(err, "no_such_model", "tcn")


# ---------------------------------------------------------------- save / load


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip(name: str, tmp_path: Path) -> None:
    model = settle(small_model(name))
    path = tmp_path / f"{name}.pt"
    save(model, path, extra={"epoch": 3, "note": "best"})
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left

    loaded = load(path, device=torch.device("cpu"))
    assert type(loaded) is type(model)
    assert loaded.config == model.config
    assert not loaded.training
    assert all(t.device == torch.device("cpu") for t in loaded.state_dict().values())
    x = spikes(model, 2, 15, seed=5)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    assert read_checkpoint(path)["extra"] == {"epoch": 3, "note": "best"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", NAMES)
def test_load_onto_cuda(name: str, tmp_path: Path) -> None:
    model = settle(small_model(name))
    path = tmp_path / "model.pt"
    save(model, path)
    loaded = load(path, device="cuda")
    assert not loaded.training
    assert all(t.device.type == "cuda" for t in loaded.state_dict().values())
    x = spikes(model, 2, 15)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x.cuda()).cpu(), model(x), rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- bad checkpoints


@pytest.fixture
def payload(tmp_path: Path) -> dict[str, Any]:
    """The raw dict of a valid small checkpoint, to spoil in one way per test."""
    path = tmp_path / "good.pt"
    save(build("lstm", **SMALL_SETTINGS["lstm"]), path)
    return torch.load(path, weights_only=True)


def write(path: Path, obj: object) -> Path:
    torch.save(obj, path)
    return path


def expect_load_error(path: Path, *parts: str) -> None:
    """load(path) fails with one line `path: problem`, `where` being the path."""
    with pytest.raises(ModelError) as err:
        load(path)
    assert_one_line(err, *parts)
    assert err.value.where == str(path)
    assert str(err.value) == f"{path}: {err.value.problem}"


def test_load_missing_file(tmp_path: Path) -> None:
    expect_load_error(tmp_path / "absent.pt", "no such checkpoint")


def test_load_a_folder_without_a_checkpoint(tmp_path: Path) -> None:
    """A folder holding neither best.pt nor model.pt (last.pt alone is not taken)."""
    save(build("lstm", **SMALL_SETTINGS["lstm"]), tmp_path / LAST_CHECKPOINT)
    with pytest.raises(ModelError) as err:
        load(tmp_path)
    assert str(err.value) == (f"{tmp_path}: a folder without a checkpoint (looked for "
                              f"{BEST_CHECKPOINT} or {IMPORTED_CHECKPOINT} in it)")
    assert err.value.where == str(tmp_path)


def test_load_a_training_folder_takes_best(tmp_path: Path) -> None:
    """The folder `train` writes: load(folder) is load(folder / best.pt), not last.pt."""
    best, last = small_model("lstm", seed=1), small_model("lstm", seed=2)
    save(best, tmp_path / BEST_CHECKPOINT)
    save(last, tmp_path / LAST_CHECKPOINT)
    x = spikes(best, 2, 9)
    with torch.no_grad():
        torch.testing.assert_close(load(tmp_path)(x), best(x), rtol=0, atol=0)


def test_load_a_folder_reports_its_checkpoint(tmp_path: Path, payload: dict[str, Any]) -> None:
    """A broken checkpoint inside a folder is named by its own path."""
    payload["version"] = CHECKPOINT_VERSION + 1
    write(tmp_path / BEST_CHECKPOINT, payload)
    with pytest.raises(ModelError) as err:
        load(tmp_path)
    assert err.value.where == str(tmp_path / BEST_CHECKPOINT)


def reference_files(model: Surrogate, folder: Path) -> tuple[Path, Path]:
    """A reference-implementation checkpoint (state dict and JSON config) of the same function
    as our unbranched ELM `model`, in the reference's names."""
    cfg = model.config
    state = {"_proto_w_s": model.w_s_raw, "tau_s": model.tau_s, "_proto_tau_m": model.tau_m_raw,
             "mlp.network.0.weight": model.mlp_in.weight, "mlp.network.0.bias": model.mlp_in.bias,
             "mlp.network.2.weight": model.mlp_out.weight,
             "mlp.network.2.bias": model.mlp_out.bias,
             "w_y.weight": model.readout.weight, "w_y.bias": model.readout.bias}
    config = {"num_input": cfg.num_inputs, "num_output": 2, "num_memory": cfg.num_memory,
              "num_branch": None, "num_synapse_per_branch": 1, "input_to_synapse_routing": None,
              "memory_tau_min": cfg.tau_m_min_ms, "memory_tau_max": cfg.tau_m_max_ms,
              "learn_memory_tau": cfg.learn_tau_m}
    state_path, config_path = folder / "reference_state.pt", folder / "model_config.json"
    torch.save({k: v.detach().clone() for k, v in state.items()}, state_path)
    config_path.write_text(json.dumps(config))
    return state_path, config_path


def test_load_the_folder_import_elm_writes(tmp_path: Path) -> None:
    """`neurosurrogate import-elm ... --out DIR` (the stage's own arguments and run), then
    load(DIR), as the README shows."""
    torch.manual_seed(0)
    ours = build("elm", num_exc=6, num_inh=6, num_memory=3).eval()
    state_path, config_path = reference_files(ours, tmp_path)
    out = tmp_path / "imported"
    parser = argparse.ArgumentParser()
    import_elm.add_arguments(parser)
    import_elm.run(parser.parse_args(["--state", str(state_path), "--config", str(config_path),
                                      "--out", str(out)]))
    assert (out / IMPORTED_CHECKPOINT).is_file()
    loaded = load(out)
    assert loaded.name == "elm" and not loaded.training
    x = spikes(ours, 2, 20)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), ours(x), rtol=0, atol=0)


def test_load_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.pt"
    path.write_bytes(random.Random(0).randbytes(4096))
    expect_load_error(path, "not a readable checkpoint")


def test_load_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.pt"
    path.touch()
    expect_load_error(path, "not a readable checkpoint")


def test_load_plain_tensor(tmp_path: Path) -> None:
    expect_load_error(write(tmp_path / "tensor.pt", torch.zeros(3)),
                      "not a neurosurrogate checkpoint")


class Foreign:
    """An arbitrary Python object: a weights-only reader must refuse to unpickle it."""


def test_load_refuses_arbitrary_objects(tmp_path: Path, payload: dict[str, Any]) -> None:
    payload["extra"] = {"object": Foreign()}
    expect_load_error(write(tmp_path / "pickle.pt", payload), "not a readable checkpoint")


def test_load_wrong_format(tmp_path: Path, payload: dict[str, Any]) -> None:
    payload["format"] = "some-other-format"
    expect_load_error(write(tmp_path / "format.pt", payload), "not a neurosurrogate checkpoint")


def test_load_wrong_version(tmp_path: Path, payload: dict[str, Any]) -> None:
    assert payload["format"] == CHECKPOINT_FORMAT
    payload["version"] = CHECKPOINT_VERSION + 1
    expect_load_error(write(tmp_path / "version.pt", payload),
                      f"version {CHECKPOINT_VERSION + 1}")


def test_load_lacking_weights(tmp_path: Path, payload: dict[str, Any]) -> None:
    del payload["state_dict"]
    expect_load_error(write(tmp_path / "noweights.pt", payload), "state_dict")


def test_load_unknown_model_name(tmp_path: Path, payload: dict[str, Any]) -> None:
    payload["model"] = "no_such_model"
    expect_load_error(write(tmp_path / "name.pt", payload), "no_such_model")


def test_load_config_with_unknown_key(tmp_path: Path, payload: dict[str, Any]) -> None:
    payload["config"]["bogus_key"] = 1
    expect_load_error(write(tmp_path / "key.pt", payload), "bogus_key")


def test_load_config_with_invalid_value(tmp_path: Path, payload: dict[str, Any]) -> None:
    payload["config"]["hidden_size"] = 0
    expect_load_error(write(tmp_path / "value.pt", payload), "hidden_size")


@pytest.mark.parametrize("name", NAMES)
def test_load_config_with_another_input_size(name: str, tmp_path: Path) -> None:
    model = small_model(name)
    config = asdict(model.config)
    other = dict(config, num_exc=config["num_exc"] + 1)
    theirs = {k: v.shape for k, v in build(name, **other).state_dict().items()}
    same_shapes = theirs == {k: v.shape for k, v in model.state_dict().items()}
    path = tmp_path / "inputs.pt"
    save(model, path)
    spoiled = torch.load(path, weights_only=True)
    spoiled["config"] = other
    # Same-shaped weights (Branch-ELM) are caught by the routing the config would build.
    expect_load_error(write(path, spoiled), "differs from" if same_shapes else "weights do not fit")


@pytest.mark.parametrize("name", NAMES)
def test_load_weights_of_wrong_shape_or_missing(name: str, tmp_path: Path) -> None:
    model = small_model(name)
    path = tmp_path / "model.pt"
    save(model, path)
    good = torch.load(path, weights_only=True)
    key = next(iter(good["state_dict"]))

    wrong = copy.deepcopy(good)
    tensor = wrong["state_dict"][key]
    wrong["state_dict"][key] = torch.zeros([n + 1 for n in tensor.shape] or [2])
    expect_load_error(write(tmp_path / "shape.pt", wrong), "weights do not fit", key)

    missing = copy.deepcopy(good)
    del missing["state_dict"][key]
    expect_load_error(write(tmp_path / "missing.pt", missing), "weights do not fit", key)

    extra = copy.deepcopy(good)
    extra["state_dict"]["bogus.weight"] = torch.zeros(2)
    expect_load_error(write(tmp_path / "extra.pt", extra), "weights do not fit", "bogus.weight")


@pytest.mark.parametrize(("field", "value"), [
    ("model", ["lstm"]),
    ("config", ["not", "a", "mapping"]),
    ("config", None),
    ("state_dict", [1, 2]),
    ("state_dict", None),
])
def test_load_fields_of_wrong_type(field: str, value: object, tmp_path: Path,
                                   payload: dict[str, Any]) -> None:
    payload[field] = value
    expect_load_error(write(tmp_path / "types.pt", payload))


def test_load_config_with_non_string_key(tmp_path: Path, payload: dict[str, Any]) -> None:
    payload["config"][3] = 1
    expect_load_error(write(tmp_path / "intkey.pt", payload))
