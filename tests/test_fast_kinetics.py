"""`RunSettings(kinetics="fast")` against "exact" (issue 19), and exact against the code
before the rate tables.

The tolerance (biophys_models.agreement): >= 98 % of output spikes matched within 0.5 ms and a
soma voltage RMSE below 0.5 mV, on the same inputs. The short check uses inputs that make the
cell fire within a second (the small default configuration's ranges); the slow one several
6 s runs under the published NMDA ranges.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from neuron import h

from biophys_models.agreement import Agreement, agreement, matched_spikes
from biophys_models.cell import build_cell
from biophys_models.compile import builtin_mod_files
from biophys_models.protocol import ProtocolSettings, input_spikes
from biophys_models.simulator import TABLED_MECHANISMS, RunSettings, set_kinetics, simulate
from tests.cell_helpers import run_python

# the small default configuration's ranges (params.yaml): the cell fires within a second
FIRING = ProtocolSettings(basal_exc_range=(400.0, 800.0), apical_exc_range=(400.0, 800.0),
                          basal_inh_offsets=(800.0, 0.0), apical_inh_offsets=(800.0, 0.0))


@pytest.fixture(scope="module")
def cell():
    return build_cell("l5pc")


def _pair(cell, duration_ms: int, seed: int, protocol: ProtocolSettings) -> Agreement:
    seg = cell.segments
    syn, t = input_spikes(seg.type, seg.length_um, duration_ms, seed, 0, protocol)
    exact = simulate(cell, syn, t, RunSettings(duration_ms, kinetics="exact"))
    fast = simulate(cell, syn, t, RunSettings(duration_ms, kinetics="fast"))
    return agreement(exact, fast)


def test_spike_matching_is_one_to_one_within_the_window() -> None:
    assert matched_spikes([10.0, 20.0, 30.0], [10.4, 20.6, 30.0]) == 2
    assert matched_spikes([10.0, 10.3], [10.1]) == 1  # one partner each
    assert Agreement(0, 0, 0, 0.1).spike_match == 1.0
    assert Agreement(50, 51, 50, 0.1).spike_match == pytest.approx(50 / 51)  # one added
    assert not Agreement(100, 97, 97, 0.1).within_tolerance  # 3 % lost
    assert not Agreement(10, 10, 10, 0.6).within_tolerance


def test_kinetics_is_validated_and_switches_every_table(cell) -> None:
    with pytest.raises(ValueError, match="kinetics"):
        RunSettings(100, kinetics="tabled")
    with pytest.raises(ValueError, match="CoreNEURON"):
        RunSettings(100, kinetics="fast", coreneuron=True)
    for mode, flag in (("fast", 1.0), ("exact", 0.0)):
        set_kinetics(mode)
        assert [getattr(h, f"usetable_{name}") for name in TABLED_MECHANISMS] == \
            [flag] * len(TABLED_MECHANISMS)


def test_fast_matches_exact_within_tolerance_short(cell) -> None:
    result = _pair(cell, 1000, 0, FIRING)
    assert result.reference_spikes > 0  # the check is not vacuous
    assert result.within_tolerance, result


def test_exact_mode_is_bit_identical_to_the_code_without_tables(cell, tmp_path: Path) -> None:
    """The .mod files with their TABLE lines removed and the Mg block's exp() inlined again
    (the code before issue 19, up to comments) compiled in a fresh process."""
    old = tmp_path / "mods"
    old.mkdir()
    for f in builtin_mod_files():
        text = re.sub(r"^\s*TABLE .*\n", "", f.read_text(), flags=re.M)
        text = text.replace("mg_exp(vm)", "exp(-0.08 * vm)")
        (old / f.name).write_text(text)
    out = tmp_path / "old.npz"
    seg = cell.segments
    syn, t = input_spikes(seg.type, seg.length_um, 300, 5, 0, FIRING)
    np.savez(tmp_path / "inputs.npz", syn=syn, t=t)
    run_python(f"""
import json
from pathlib import Path
import numpy as np
import biophys_models.compile as c
files = sorted(Path({str(old)!r}).glob("*.mod"))
c.builtin_mod_files = lambda include_channels=True: [
    f for f in files if include_channels or f.stem in c.SYNAPSE_MECHANISMS]
from biophys_models.cell import build_cell
from biophys_models.simulator import RunSettings, simulate
cell = build_cell("l5pc")
inp = np.load({str(tmp_path / "inputs.npz")!r})
rec = simulate(cell, inp["syn"], inp["t"], RunSettings(300))
np.savez({str(out)!r}, soma=rec.soma_voltage_mv, nexus=rec.nexus_voltage_mv)
print(json.dumps({{"ok": True}}))
""")
    old_rec = np.load(out)
    new = simulate(cell, syn, t, RunSettings(300, kinetics="exact"))
    np.testing.assert_array_equal(new.soma_voltage_mv, old_rec["soma"])
    np.testing.assert_array_equal(new.nexus_voltage_mv, old_rec["nexus"])


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_fast_matches_exact_within_tolerance_published_ranges(cell, seed: int) -> None:
    """6 s under the published NMDA ranges (ProtocolSettings' defaults)."""
    result = _pair(cell, 6000, seed, ProtocolSettings())
    assert result.within_tolerance, result
