"""TCN and LSTM surrogates: published shapes and sizes, receptive field, chunked state."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
import torch

from surrogates import build
from surrogates.errors import ModelError
from surrogates.lstm import LSTM
from surrogates.tcn import SPIKE_BIAS_INIT, TCN, TCN_PRESETS


def spikes(batch: int, time: int, width: int, seed: int = 0, rate: float = 0.2) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, time, width, generator=gen) < rate).float()


# ---------------------------------------------------------------- TCN


@pytest.mark.parametrize(("preset", "params", "field"), [
    # 1278*45*128 + 128 + 6 * (128*19*128 + 128) + 7 * 2*128 + 2 * (128 + 1)
    ("tcn_7x128x153", 9_232_002, 153),
    ("tcn_3x64x100", 4_614_082, 100),
    ("tcn_1x128x43", 7_034_754, 43),
    ("tcn_small", 497_074, 46),
])
def test_tcn_presets_have_published_shape_size_and_receptive_field(
        preset: str, params: int, field: int) -> None:
    model = build("tcn", preset=preset)  # built only, never run on long inputs
    assert isinstance(model, TCN)
    assert model.config.kernel_sizes == TCN_PRESETS[preset]["kernel_sizes"]
    assert model.config.num_inputs == 1278
    assert model.num_params() == params
    assert model.receptive_field == field
    assert model.receptive_field_ms == float(field)


def test_tcn_7x128x153_layers_as_published() -> None:
    model = build("tcn", preset="tcn_7x128x153")
    assert [conv.kernel_size[0] for conv in model.convs] == [45] + [19] * 6
    assert [conv.out_channels for conv in model.convs] == [128] * 7
    assert all(conv.stride == (1,) and conv.dilation == (1,) for conv in model.convs)
    assert len(model.norms) == 7
    # most parameters sit in the first layer, 1278 inputs x 45 taps x 128 channels
    assert model.convs[0].weight.numel() == 1278 * 45 * 128


def test_tcn_default_is_the_small_preset() -> None:
    assert build("tcn").config == build("tcn", preset="tcn_small").config


def test_tcn_explicit_shape_overrides_preset() -> None:
    model = build("tcn", preset="tcn_7x128x153", channels=8, num_exc=3, num_inh=2)
    assert model.config.channels == 8
    assert model.config.kernel_sizes == (45, 19, 19, 19, 19, 19, 19)
    model = build("tcn", preset="tcn_7x128x153", kernel_sizes=[5, 3], num_exc=3, num_inh=2)
    assert model.config.kernel_sizes == (5, 3)  # lists (from JSON) become tuples
    assert model.config.channels == 128
    assert model.receptive_field == 7


def test_tcn_config_survives_json() -> None:
    config = build("tcn", kernel_sizes=(4, 3), channels=5, num_exc=3, num_inh=2).config
    again = build("tcn", **json.loads(json.dumps(asdict(config)))).config
    assert again == config
    assert isinstance(again.kernel_sizes, tuple)


@pytest.mark.parametrize("settings", [
    {"preset": "tcn_9x9x9"},
    {"kernel_sizes": ()},
    {"kernel_sizes": (3, 0)},
    {"kernel_sizes": 3},
    {"kernel_sizes": (3.5, 2)},
    {"channels": 0},
    {"channels": 2.0},
    {"dropout": 1.0},
    {"num_exc": 0, "num_inh": 0},
])
def test_tcn_rejects_bad_config(settings: dict) -> None:
    with pytest.raises(ModelError, match="^tcn: invalid config") as info:
        build("tcn", **settings)
    assert "\n" not in str(info.value)


def test_tcn_spike_head_starts_at_published_bias() -> None:
    model = build("tcn", channels=4, kernel_sizes=(3,), num_exc=3, num_inh=2)
    assert model.spike_head.bias.item() == SPIKE_BIAS_INIT == -2.0
    assert model.soma_head.bias.item() != SPIKE_BIAS_INIT


def test_tcn_output_sees_exactly_its_receptive_field() -> None:
    torch.manual_seed(0)
    model = build("tcn", channels=8, kernel_sizes=(4, 3, 2), num_exc=4, num_inh=3).eval()
    assert model.receptive_field == 7
    x = torch.randn(4, 20, 7, requires_grad=True)  # dense, so no tap is silent by chance
    t = 15
    model(x)[:, t].sum().backward()
    assert x.grad is not None
    seen = sorted(int(s) for s in torch.nonzero(x.grad.abs().sum(dim=(0, 2))).flatten())
    assert seen == list(range(t - 6, t + 1))


def test_tcn_stream_needs_only_receptive_field_of_past_input() -> None:
    torch.manual_seed(1)
    model = build("tcn", channels=6, kernel_sizes=(5, 3), num_exc=4, num_inh=3).eval()
    field = model.receptive_field
    x = spikes(2, 40, 7)
    with torch.no_grad():
        whole = model(x)
        for t in (field - 1, 20, 39):
            window = model(x[:, t - field + 1:t + 1])
            torch.testing.assert_close(window[:, -1], whole[:, t], rtol=0, atol=1e-6)


def test_tcn_trains_batchnorm_statistics() -> None:
    model = build("tcn", channels=4, kernel_sizes=(3, 2), num_exc=3, num_inh=2).train()
    before = model.norms[0].running_mean.clone()
    model(spikes(2, 10, 5)).sum().backward()
    assert not torch.equal(model.norms[0].running_mean, before)
    assert model.convs[0].weight.grad is not None


# ---------------------------------------------------------------- LSTM


@pytest.mark.parametrize(("hidden", "params"), [
    # 4h(1278 + h) weights + 8h biases (PyTorch's two bias vectors) + head 2h + 2
    (50, 266_102),   # published ~266K
    (150, 858_302),  # published ~858K
])
def test_lstm_reproduces_published_parameter_counts(hidden: int, params: int) -> None:
    model = build("lstm", hidden_size=hidden)
    assert isinstance(model, LSTM)
    assert model.num_params() == params
    assert round(params, -3) == {50: 266_000, 150: 858_000}[hidden]


@pytest.mark.parametrize("layers", [1, 2])
def test_lstm_in_chunks_equals_one_pass(layers: int) -> None:
    torch.manual_seed(2)
    model = build("lstm", hidden_size=6, num_layers=layers, num_exc=4, num_inh=3).eval()
    x = spikes(3, 30, 7)
    with torch.no_grad():
        whole, final = model(x, return_state=True)
        state = None
        parts = []
        for start, stop in ((0, 7), (7, 17), (17, 18), (18, 30)):
            y, state = model(x[:, start:stop], state, return_state=True)
            parts.append(y)
    torch.testing.assert_close(torch.cat(parts, dim=1), whole, rtol=0, atol=1e-6)
    assert state is not None
    for got, want in zip(state, final, strict=True):
        assert got.shape == (layers, 3, 6)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_lstm_state_none_is_a_zero_state_and_state_matters() -> None:
    torch.manual_seed(3)
    model = build("lstm", hidden_size=5, num_exc=2, num_inh=2).eval()
    x = spikes(2, 8, 4)
    zeros = (torch.zeros(1, 2, 5), torch.zeros(1, 2, 5))
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x, zeros), rtol=0, atol=0)
        other = (torch.ones(1, 2, 5), torch.ones(1, 2, 5))
        assert not torch.allclose(model(x), model(x, other))
    assert isinstance(model(x), torch.Tensor)  # no state unless asked for


@pytest.mark.parametrize("settings", [
    {"hidden_size": 0},
    {"hidden_size": True},
    {"num_layers": 0},
    {"hidden_size": 4.0},
    {"dropout": -0.1},
    {"num_exc": 0, "num_inh": 0},
])
def test_lstm_rejects_bad_config(settings: dict) -> None:
    with pytest.raises(ModelError, match="^lstm: invalid config"):
        build("lstm", **settings)
