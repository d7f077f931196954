"""Import of reference-implementation ELM checkpoints (`neurosurrogate import-elm`).

The reference code is not used: each test writes a state dict in the reference layout (random
values, the right shapes) and a JSON config, imports it, and compares our model with the
reference equations evaluated here, step by step, on the raw state-dict tensors.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from pipeline.stages.import_elm import import_elm
from surrogates import load
from surrogates.errors import ModelError
from surrogates.reference_import import convert
from tests.conftest import error_lines


def reference_routing(num_input: int, branches: int, per_branch: int
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Interleave exc/inh (0, E, 1, E+1, ...), windows of per_branch with stride ceil(N/d)."""
    half = num_input // 2
    order = [i for k in range(half) for i in (k, half + k)]
    stride = math.ceil(num_input / branches)
    index, mask = [], []
    for b in range(branches):
        for i in range(per_branch):
            pos = b * stride + i
            index.append(order[pos] if pos < num_input else 0)
            mask.append(pos < num_input)
    return torch.tensor(index), torch.tensor(mask)


def reference_state(config: dict[str, Any], seed: int = 0, routing: str = "interleave",
                    tau_s: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    n, d_m = config["num_input"], config["num_memory"]
    branches, per = config["num_branch"] or n, config["num_synapse_per_branch"]
    slots, hidden = branches * per, 2 * d_m

    def rnd(*shape: int, scale: float = 0.1) -> torch.Tensor:
        return scale * torch.randn(*shape, generator=gen)

    state = {"_proto_w_s": 0.5 + rnd(slots), "tau_s": torch.full((slots,), 5.0)
             if tau_s is None else tau_s, "_proto_tau_m": rnd(d_m, scale=2.0),
             "mlp.network.0.weight": rnd(hidden, branches + d_m),
             "mlp.network.0.bias": rnd(hidden), "mlp.network.2.weight": rnd(d_m, hidden),
             "mlp.network.2.bias": rnd(d_m), "w_y.weight": rnd(2, d_m, scale=1.0),
             "w_y.bias": rnd(2)}
    if config["input_to_synapse_routing"] is not None:
        if routing == "interleave":
            index, mask = reference_routing(n, branches, per)
        else:
            index = torch.randint(0, n, (slots,), generator=gen)
            mask = torch.rand(slots, generator=gen) < 0.9
        state["input_to_synapse_indices"], state["valid_indices_mask"] = index, mask
    return state


def reference_outputs(state: dict[str, torch.Tensor], config: dict[str, Any],
                      signed: torch.Tensor) -> torch.Tensor:
    """The reference equations on its own tensors; `signed` is +1 exc / -1 inh / 0."""
    batch, steps, n = signed.shape
    d_m = config["num_memory"]
    w_s = torch.relu(state["_proto_w_s"])
    kappa_s = torch.exp(-1.0 / state["tau_s"])
    lo, hi = config["memory_tau_min"], config["memory_tau_max"]
    tau_m = lo + (hi - lo) * torch.sigmoid(state["_proto_tau_m"])
    kappa_m = torch.exp(-1.0 / tau_m)
    act = torch.nn.functional.silu if config.get("mlp_activation") == "silu" else torch.relu
    branches = config["num_branch"] or n
    s = torch.zeros(batch, w_s.numel())
    m = torch.zeros(batch, d_m)
    ys = []
    for t in range(steps):
        xt = signed[:, t]
        if "input_to_synapse_indices" in state:
            xt = xt[:, state["input_to_synapse_indices"]] * state["valid_indices_mask"]
        s = kappa_s * s + w_s * xt
        hidden = act(torch.cat([s.view(batch, branches, -1).sum(-1), kappa_m * m], -1)
                     @ state["mlp.network.0.weight"].T + state["mlp.network.0.bias"])
        delta = 1.7159 * torch.tanh(2.0 / 3.0 * (hidden @ state["mlp.network.2.weight"].T
                                                 + state["mlp.network.2.bias"]))
        m = kappa_m * m + 5.0 * (1 - kappa_m) * delta
        ys.append(m @ state["w_y.weight"].T + state["w_y.bias"])
    return torch.stack(ys, 1)


def neuronio_config(**changes: Any) -> dict[str, Any]:
    config = {"num_input": 1278, "num_output": 2, "num_memory": 20, "num_branch": 45,
              "num_synapse_per_branch": 100, "input_to_synapse_routing": "neuronio_routing",
              "memory_tau_min": 1.0, "memory_tau_max": 150.0, "learn_memory_tau": False}
    return config | changes


def write(folder: Path, state: dict[str, Any], config: dict[str, Any]) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / "state.pt")
    (folder / "config.json").write_text(json.dumps(config))
    return folder / "state.pt", folder / "config.json"


def binary_and_signed(batch: int, steps: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    x = (torch.rand(batch, steps, n, generator=gen) < 0.03).float()
    sign = torch.cat([torch.ones(n // 2), -torch.ones(n // 2)])
    return x, x * sign


def cli(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", "import-elm", *map(str, args)],
                          capture_output=True, text=True)


def test_import_released_layout_through_cli(tmp_path: Path) -> None:
    config = neuronio_config()
    state = reference_state(config)
    state_path, config_path = write(tmp_path / "ref", state, config)
    proc = cli("--state", state_path, "--config", config_path, "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    model = load(tmp_path / "out" / "model.pt")
    summary = json.loads((tmp_path / "out" / "import.json").read_text())
    assert model.name == summary["model"] == "branch_elm"
    assert model.config.routing == "neuronio"  # the reference's routing, recognised
    assert model.num_params() == summary["num_params"] == 8002
    assert summary["reference_config"] == config
    x, signed = binary_and_signed(2, 500, 1278)
    with torch.no_grad():
        ours = model(x)
    torch.testing.assert_close(ours, reference_outputs(state, config, signed), rtol=0, atol=1e-5)


@pytest.mark.parametrize("activation", ["relu", "silu"])
def test_import_other_routing_learned_tau_and_activation(activation: str) -> None:
    config = neuronio_config(num_input=40, num_branch=6, num_synapse_per_branch=9,
                             num_memory=5, input_to_synapse_routing="random_routing",
                             learn_memory_tau=True, mlp_activation=activation)
    state = reference_state(config, seed=1, routing="random",
                            tau_s=torch.linspace(2.0, 8.0, 54))  # also per-synapse tau_s
    model = convert(state, config)
    assert model.config.routing == "explicit"
    assert model.num_params() == 54 + (11 * 10 + 10) + (10 * 5 + 5) + 12 + 5
    x, signed = binary_and_signed(3, 300, 40)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference_outputs(state, config, signed), rtol=0,
                                   atol=1e-5)


def test_import_elm_without_branches(tmp_path: Path) -> None:
    config = neuronio_config(num_input=30, num_branch=None, num_synapse_per_branch=1,
                             num_memory=4, input_to_synapse_routing=None)
    state = reference_state(config, seed=2)
    model = convert(state, config)
    assert model.name == "elm" and model.num_params() == 30 + 34 * 8 + 8 + 8 * 4 + 4 + 10
    x, signed = binary_and_signed(2, 300, 30)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference_outputs(state, config, signed), rtol=0,
                                   atol=1e-5)


# ---------------------------------------------------------------- bad checkpoints and configs


def small() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    config = neuronio_config(num_input=20, num_branch=4, num_synapse_per_branch=6,
                             num_memory=3)
    return config, reference_state(config)


def expect_error(state: dict[str, Any], config: dict[str, Any], *parts: str) -> None:
    with pytest.raises(ModelError) as err:
        convert(state, config, where="ckpt.pt")
    message = str(err.value)
    assert "\n" not in message and message.startswith("ckpt.pt: ")
    for part in parts:
        assert part in message, message


def test_missing_state_key() -> None:
    config, state = small()
    del state["mlp.network.2.bias"]
    expect_error(state, config, "lacks mlp.network.2.bias")


def test_wrong_shape() -> None:
    config, state = small()
    state["mlp.network.0.weight"] = torch.zeros(6, 8)
    expect_error(state, config, "mlp.network.0.weight", "[6, 8]", "[6, 7]")


def test_unknown_routing_and_activation() -> None:
    config, state = small()
    expect_error(state, config | {"input_to_synapse_routing": "dendrite_routing"},
                 "unknown input_to_synapse_routing", "dendrite_routing")
    expect_error(state, config | {"mlp_activation": "gelu"}, "mlp_activation", "gelu")


def test_missing_config_key_and_bad_values() -> None:
    config, state = small()
    del config["memory_tau_max"]
    expect_error(state, config, "config lacks memory_tau_max")
    config, state = small()
    expect_error(state, config | {"num_output": 3}, "num_output 3")
    expect_error(state, config | {"mlp_num_layers": 2}, "mlp_num_layers")
    state["input_to_synapse_indices"] = state["input_to_synapse_indices"] + 100
    expect_error(state, config, "outside 0..19")


def test_cli_reports_bad_files_in_one_line(tmp_path: Path) -> None:
    config, state = small()
    del state["w_y.weight"]
    state_path, config_path = write(tmp_path, state, config)
    proc = cli("--state", state_path, "--config", config_path, "--out", tmp_path / "out")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == error_lines(proc.stderr) == [
        f"neurosurrogate import-elm: error: {state_path}: checkpoint lacks w_y.weight"]
    assert not (tmp_path / "out").exists()

    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "noise.pt").write_bytes(b"\x00" * 64)
    for args, blamed, part in (
            ((state_path, tmp_path / "bad.json"), 1, "not a readable JSON config"),
            ((tmp_path / "noise.pt", config_path), 0, "not a readable checkpoint"),
            ((tmp_path / "absent.pt", config_path), 0, "no such checkpoint")):
        with pytest.raises(ModelError, match=part) as err:
            import_elm(*args, tmp_path / "out")
        assert "\n" not in str(err.value) and str(err.value).startswith(f"{args[blamed]}: ")
