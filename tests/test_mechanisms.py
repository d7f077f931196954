"""Mechanism compilation cache and the kinetics of every built-in mechanism.

Real NEURON, real nrnivmodl. NEURON can load one mechanism library per process, so the
built-in library is loaded once (session fixture); checks that need other libraries
(syntax errors, cache keys, concurrent builds) go through compile_mechanisms only, or
run in a subprocess.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from biophys_models import compile as nc
from biophys_models.compile import (
    BUILTIN_MOD_DIR,
    HAY_CHANNELS,
    SYNAPSE_MECHANISMS,
    builtin_mod_files,
    cache_key,
    compile_mechanisms,
    load_mechanisms,
    nrnmech_library,
)
from biophys_models.errors import CellError

QT = 2.3 ** ((34 - 21) / 10)  # Hay 2011 temperature factor

TINY_MOD = """\
NEURON {{
    SUFFIX {name}
    RANGE gbar
}}
PARAMETER {{ gbar = {value} }}
"""


def _write_mod(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.mod"
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- compilation


def test_builtin_files_and_names() -> None:
    files = builtin_mod_files()
    assert [f.stem for f in files] == list(HAY_CHANNELS + SYNAPSE_MECHANISMS)
    assert all(f.is_file() and f.parent == BUILTIN_MOD_DIR for f in files)
    assert [f.stem for f in builtin_mod_files(include_channels=False)] == list(SYNAPSE_MECHANISMS)
    assert len(HAY_CHANNELS) == 12
    for f in files:  # file stem = the NEURON name the cell code uses
        text = f.read_text()
        assert f"SUFFIX {f.stem}\n" in text or f" {f.stem}\n" in text.split("NEURON {")[1]


def test_cache_reuse_and_new_key(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    mod = _write_mod(tmp_path / "src", "NsTinyA", TINY_MOD.format(name="NsTinyA", value=1))
    n0 = len(nc._builds_done)
    first = compile_mechanisms([mod], cache_root=cache)
    assert len(nc._builds_done) == n0 + 1
    lib = nrnmech_library(first)
    assert lib.is_file() and first.name == cache_key([mod])
    assert json.loads((first / "build.json").read_text())["mod_files"] == ["NsTinyA.mod"]
    mtime = lib.stat().st_mtime_ns

    start = time.monotonic()
    again = compile_mechanisms([mod], cache_root=cache)
    assert again == first and time.monotonic() - start < 1.0
    assert len(nc._builds_done) == n0 + 1 and lib.stat().st_mtime_ns == mtime

    assert cache_key([mod], coreneuron=True) != cache_key([mod])
    mod.write_text(TINY_MOD.format(name="NsTinyA", value=2))
    changed = compile_mechanisms([mod], cache_root=cache)
    assert changed != first and changed.name == cache_key([mod])
    assert len(nc._builds_done) == n0 + 2
    assert not list(cache.glob(".build-*")), "temporary build folders left behind"


def _concurrent_worker(args: tuple[str, str]) -> tuple[str, int]:
    """Run in a spawned process: compile, report the folder and how many builds it ran."""
    mod, cache = args
    from biophys_models import compile as mod_compile

    out = mod_compile.compile_mechanisms([Path(mod)], cache_root=Path(cache))
    return str(out), len(mod_compile._builds_done)


def test_concurrent_compile_builds_once(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    mod = _write_mod(tmp_path / "src", "NsTinyB", TINY_MOD.format(name="NsTinyB", value=3))
    ctx = mp.get_context("spawn")
    with ctx.Pool(3) as pool:
        results = pool.map(_concurrent_worker, [(str(mod), str(cache))] * 3, chunksize=1)
    folders = {r[0] for r in results}
    assert len(folders) == 1
    assert sum(r[1] for r in results) == 1, f"expected exactly one build, got {results}"
    assert [p.name for p in cache.iterdir() if p.is_dir()] == [cache_key([mod])]


def test_syntax_error_names_the_file(tmp_path: Path) -> None:
    good = _write_mod(tmp_path, "NsGood", TINY_MOD.format(name="NsGood", value=1))
    broken = "NEURON { SUFFIX NsBroken }\nBREAKPOINT {\n x = 1 +\n}\n"
    bad = _write_mod(tmp_path, "NsBroken", broken)
    with pytest.raises(CellError) as err:
        compile_mechanisms([good, bad], cache_root=tmp_path / "cache")
    msg = str(err.value)
    assert "NsBroken.mod" in msg and "line" in msg and "\n" not in msg
    assert not [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]


def test_cxx_error_names_the_file(tmp_path: Path) -> None:
    bad = _write_mod(
        tmp_path,
        "NsBadCxx",
        "NEURON { SUFFIX NsBadCxx }\nBREAKPOINT {\n"
        "VERBATIM\n  int x = no_such_symbol;\nENDVERBATIM\n}\n",
    )
    with pytest.raises(CellError) as err:
        compile_mechanisms([bad], cache_root=tmp_path / "cache")
    msg = str(err.value)
    assert "NsBadCxx.mod" in msg and "error" in msg and "no_such_symbol" in msg and "\n" not in msg


def test_missing_compiler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mod = _write_mod(tmp_path, "NsTinyC", TINY_MOD.format(name="NsTinyC", value=1))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    with pytest.raises(CellError, match="no C\\+\\+ compiler"):
        compile_mechanisms([mod], cache_root=tmp_path / "cache")
    monkeypatch.delenv("CXX")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no c++/g++ reachable
    monkeypatch.setattr(nc.sysconfig, "get_config_var", lambda name: None)
    with pytest.raises(CellError, match="no C\\+\\+ compiler"):
        compile_mechanisms([mod], cache_root=tmp_path / "cache")


def test_missing_compiler_subprocess(tmp_path: Path) -> None:
    """The same through a fresh interpreter, as a user would see it (one line on stderr)."""
    mod = _write_mod(tmp_path, "NsTinyD", TINY_MOD.format(name="NsTinyD", value=1))
    code = (
        "from pathlib import Path\n"
        "from biophys_models.compile import compile_mechanisms\n"
        f"compile_mechanisms([Path({str(mod)!r})], cache_root=Path({str(tmp_path / 'c')!r}))\n"
    )
    env = {"PATH": "/nonexistent", "CXX": "/nonexistent/g++", "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "CellError: no C++ compiler found" in proc.stderr.strip().splitlines()[-1]


# --------------------------------------------------------------------------- NEURON setup


@pytest.fixture(scope="session")
def h():
    """NEURON with the built-in library loaded once for the whole test session."""
    folder = load_mechanisms()
    from neuron import h as hoc

    hoc.load_file("stdrun.hoc")
    hoc.celsius = 34
    hoc.dt = 0.025
    assert load_mechanisms() == folder  # idempotent: no second load
    return hoc


def test_loading_a_different_library_is_refused(h, tmp_path: Path) -> None:
    mod = _write_mod(tmp_path, "NsTinyE", TINY_MOD.format(name="NsTinyE", value=1))
    with pytest.raises(CellError, match="already loaded"):
        load_mechanisms([mod])
    assert not h.name_declared("NsTinyE")


def _soma(h, mechs: dict[str, float] | None = None, *, g_pas: float = 3e-5,
          e_pas: float = -90.0, area_um: float = 20.0):
    """One isopotential compartment with pas and the given channel densities (S/cm2)."""
    sec = h.Section(name="soma")
    sec.L = sec.diam = area_um
    sec.cm = 1.0
    sec.insert("pas")
    sec.g_pas = g_pas
    sec.e_pas = e_pas
    for mech, gbar in (mechs or {}).items():
        sec.insert(mech)
        if mech != "CaDynamics_E2":
            setattr(sec(0.5), f"g{mech}bar_{mech}", gbar)
    if sec.has_membrane("na_ion"):
        sec.ena = 50.0
    if sec.has_membrane("k_ion"):
        sec.ek = -85.0
    return sec


def _run(h, tstop: float, v0: float = -75.0) -> None:
    h.dt = 0.025
    h.finitialize(v0)
    h.continuerun(tstop)


def _crossings(v: np.ndarray, level: float = 0.0) -> int:
    return int(np.sum((v[1:] >= level) & (v[:-1] < level)))


# --------------------------------------------------------------------------- channels


def _ln(x: float, k: float) -> float:
    """x / (1 - exp(-x/k)), the linoid rate shape of the published equations."""
    return k if abs(x) < 1e-9 else x / (1 - math.exp(-x / k))


def _bisect(f, lo: float, hi: float) -> float:
    flo = f(lo) - 0.5
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if (f(mid) - 0.5) * flo > 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _ih_half() -> float:
    a = lambda v: 0.00643 * _ln(-(v + 154.9), 11.9)  # noqa: E731
    b = lambda v: 0.193 * math.exp(v / 33.1)  # noqa: E731
    return _bisect(lambda v: a(v) / (a(v) + b(v)), -160, -50)


def _hva_m_half() -> float:
    a = lambda v: 0.055 * _ln(v + 27, 3.8)  # noqa: E731
    b = lambda v: 0.94 * math.exp((-75 - v) / 17)  # noqa: E731
    return _bisect(lambda v: a(v) / (a(v) + b(v)), -80, 20)


# (mechanism, state, published half-(in)activation voltage in mV)
HALF_POINTS = [
    ("NaTs2_t", "m", -32 - 6 * math.log(0.182 / 0.124)),
    ("NaTs2_t", "h", -60.0),
    ("NaTa_t", "m", -38 - 6 * math.log(0.182 / 0.124)),
    ("NaTa_t", "h", -66.0),
    ("Nap_Et2", "m", -52.6),
    ("Nap_Et2", "h", -48.8),
    ("K_Tst", "m", -10.0),
    ("K_Tst", "h", -76.0),
    ("K_Pst", "m", -11.0),
    ("K_Pst", "h", -64.0),
    ("SKv3_1", "m", 18.7),
    ("Im", "m", -35.0),
    ("Ih", "m", _ih_half()),
    ("Ca_HVA", "m", _hva_m_half()),
    ("Ca_LVAst", "m", -40.0),
    ("Ca_LVAst", "h", -90.0),
]


@pytest.mark.parametrize(("mech", "state", "v_half"), HALF_POINTS)
def test_steady_state_half_points(h, mech: str, state: str, v_half: float) -> None:
    sec = _soma(h, {mech: 1e-5})
    point = getattr(sec(0.5), mech)

    def at(v: float) -> float:
        h.finitialize(v)
        return getattr(point, state)

    assert _bisect(at, -170.0, 60.0) == pytest.approx(v_half, abs=0.05)


# (mechanism, state, clamp from, clamp to, expected time constant at the target in ms)
def _tau_im(v: float) -> float:
    a = 3.3e-3 * math.exp(0.1 * (v + 35))
    b = 3.3e-3 * math.exp(-0.1 * (v + 35))
    return 1 / (a + b) / QT


def _tau_nats_h(v: float) -> float:
    return 1 / (0.015 * _ln(-(v + 60), 6) + 0.015 * _ln(v + 60, 6)) / QT


def _tau_ih(v: float) -> float:
    return 1 / (0.00643 * _ln(-(v + 154.9), 11.9) + 0.193 * math.exp(v / 33.1))


TAU_CASES = [
    ("Im", "m", -80.0, -20.0, _tau_im(-20.0)),
    ("NaTs2_t", "h", -90.0, -50.0, _tau_nats_h(-50.0)),
    ("K_Tst", "h", -110.0, -40.0, (8 + 49 * math.exp(-(((-40 + 10) + 73) / 23) ** 2)) / QT),
    ("K_Pst", "m", -90.0, -30.0, (1.25 + 13 * math.exp(-0.026 * (-30 + 10))) / QT),
    ("Ca_LVAst", "h", -110.0, -50.0, (20 + 50 / (1 + math.exp(((-50 + 10) + 40) / 7))) / QT),
    ("SKv3_1", "m", -80.0, 0.0, 4.0 / (1 + math.exp(-46.56 / 44.14))),
    ("Ih", "m", -60.0, -110.0, _tau_ih(-110.0)),
]


@pytest.mark.parametrize(("mech", "state", "v_from", "v_to", "tau"), TAU_CASES)
def test_time_constants_under_clamp(h, mech, state, v_from, v_to, tau) -> None:
    """Relaxation after a voltage step follows the published tau (qt applied where Hay does)."""
    sec = _soma(h, {mech: 1e-6}, g_pas=1e-6)
    clamp = h.SEClamp(sec(0.5))
    clamp.rs = 1e-4
    clamp.dur1, clamp.amp1 = 5.0, v_from
    clamp.dur2, clamp.amp2 = 1e9, v_to
    x = h.Vector().record(getattr(sec(0.5), mech)._ref_m if state == "m"
                          else getattr(sec(0.5), mech)._ref_h)
    t = h.Vector().record(h._ref_t)
    h.dt = 0.005 if tau < 5 else 0.025
    h.finitialize(v_from)
    h.continuerun(5.0 + 3 * tau)
    h.dt = 0.025
    x, t = np.array(x), np.array(t)
    after = t > 5.0 + 0.2 * tau
    x_inf = getattr(getattr(sec(0.5), mech), state)  # close to steady state after 3 tau ...
    # ... but fit the exact exponential: log-linear on successive differences (no x_inf needed)
    dx = np.diff(x[after])
    slope = np.polyfit(t[after][1:], np.log(np.abs(dx)), 1)[0]
    assert -1 / slope == pytest.approx(tau, rel=0.02)
    assert np.isfinite(x_inf)


def test_nats2_skv3_soma_fires(h) -> None:
    """NaTs2_t + SKv3_1 at the Hay soma densities: repetitive APs under current, none at rest."""
    sec = _soma(h, {"NaTs2_t": 0.998912, "SKv3_1": 0.338029})
    v = h.Vector().record(sec(0.5)._ref_v)
    _run(h, 100)
    assert _crossings(np.array(v)) == 0
    stim = h.IClamp(sec(0.5))
    stim.delay, stim.dur, stim.amp = 50, 300, 0.3
    _run(h, 400)
    vv = np.array(v)
    assert _crossings(vv) >= 3
    assert vv.max() > 25  # overshoot towards ena = 50 mV
    assert vv[int(360 / h.dt):].max() < -60  # repolarises after the step


def test_full_hay_soma_regular_firing(h) -> None:
    """All soma channels at Hay densities: rest near ek/e_pas, regular firing, Ca and SK active."""
    dens = {"NaTs2_t": 0.998912, "SKv3_1": 0.338029, "SK_E2": 0.09965, "Im": 8e-6,
            "Ca_HVA": 0.000644, "Ca_LVAst": 0.000557, "Ih": 7.5e-5, "CaDynamics_E2": 0}
    sec = _soma(h, dens)
    sec(0.5).CaDynamics_E2.decay = 294.68
    sec(0.5).CaDynamics_E2.gamma = 0.000509
    stim = h.IClamp(sec(0.5))
    stim.delay, stim.dur, stim.amp = 300, 600, 0.3
    v = h.Vector().record(sec(0.5)._ref_v)
    ca = h.Vector().record(sec(0.5)._ref_cai)
    t = h.Vector().record(h._ref_t)
    _run(h, 950)
    v, ca, t = np.array(v), np.array(ca), np.array(t)
    assert -90 < v[t < 300][-1] < -70
    up = t[1:][(v[1:] >= 0) & (v[:-1] < 0)]
    assert len(up) >= 5
    # an isolated soma rests near -84 mV, so T-type Ca gives an onset doublet; after that
    # the train is regular
    isi = np.diff(up[up > 500])
    assert len(isi) >= 3 and isi.std() / isi.mean() < 0.15
    assert ca.max() > 1.2e-4


def test_ih_sag(h) -> None:
    """A hyperpolarising step gives a sag back towards rest with Ih, none without."""

    def sag(gih: float) -> float:
        sec = _soma(h, {"Ih": gih}, g_pas=6e-5)
        stim = h.IClamp(sec(0.5))
        stim.delay, stim.dur, stim.amp = 100, 600, -0.15
        v = h.Vector().record(sec(0.5)._ref_v)
        _run(h, 700, v0=-70)
        vv = np.array(v)
        return vv[int(690 / h.dt)] - vv.min()

    assert sag(2e-3) > 3.0  # mV, at the distal apical Ih density of Hay 2011
    assert sag(0.0) < 0.05
    sec = _soma(h, {"Ih": 1e-4})
    assert sec(0.5).Ih.ehcn == -45.0


@pytest.mark.parametrize(("mech", "v_hold", "v_step"), [("Ca_HVA", -90.0, 0.0),
                                                         ("Ca_LVAst", -100.0, -30.0)])
def test_calcium_influx_and_decay(h, mech: str, v_hold: float, v_step: float) -> None:
    """Each Ca channel loads the CaDynamics_E2 pool; it relaxes to minCai with tau = decay."""
    sec = _soma(h, {mech: 1e-3, "CaDynamics_E2": 0})
    pool = sec(0.5).CaDynamics_E2
    pool.decay, pool.gamma = 40.0, 0.05
    h.cai0_ca_ion = pool.minCai
    clamp = h.SEClamp(sec(0.5))
    clamp.rs = 1e-3
    clamp.dur1, clamp.amp1 = 20, v_hold
    clamp.dur2, clamp.amp2 = 20, v_step
    clamp.dur3, clamp.amp3 = 1e9, v_hold
    ca = h.Vector().record(sec(0.5)._ref_cai)
    t = h.Vector().record(h._ref_t)
    _run(h, 250, v0=v_hold)
    h.cai0_ca_ion = 5e-5
    ca, t = np.array(ca), np.array(t)
    assert ca[t < 19].max() == pytest.approx(pool.minCai, rel=1e-3)
    assert ca.max() > 3 * pool.minCai
    late = (t > 80) & (t < 240)
    slope = np.polyfit(t[late], np.log(ca[late] - pool.minCai), 1)[0]
    assert -1 / slope == pytest.approx(40.0, rel=0.02)


def test_sk_e2_follows_cai(h) -> None:
    """zInf = 1 / (1 + (0.43 uM / cai)^4.8): half open at 0.43 uM; Ca entry opens it."""
    sec = _soma(h, {"SK_E2": 1e-3})
    for cai in (1e-4, 4.3e-4, 1e-3, 1e-2):
        sec(0.5).cai = cai  # nothing writes cai here, so it stays where we put it
        h.finitialize(-75)
        assert sec(0.5).SK_E2.z == pytest.approx(1 / (1 + (4.3e-4 / cai) ** 4.8), rel=1e-6)

    sec2 = _soma(h, {"SK_E2": 1e-3, "Ca_HVA": 1e-3, "CaDynamics_E2": 0})
    sec2(0.5).CaDynamics_E2.gamma = 0.05
    clamp = h.SEClamp(sec2(0.5))
    clamp.rs = 1e-3
    clamp.dur1, clamp.amp1 = 10, -80
    clamp.dur2, clamp.amp2 = 20, 0
    clamp.dur3, clamp.amp3 = 1e9, -80
    z = h.Vector().record(sec2(0.5).SK_E2._ref_z)
    _run(h, 60, v0=-80)
    z = np.array(z)
    assert z.max() > 0.5 and z[0] < 0.01


# --------------------------------------------------------------------------- synapses


def _dual_exp(t: np.ndarray, t0: float, tr: float, td: float) -> np.ndarray:
    """Unit-peak difference of exponentials starting at t0 (the published normalisation)."""
    tp = tr * td / (td - tr) * math.log(td / tr)
    peak = math.exp(-tp / td) - math.exp(-tp / tr)
    s = np.clip(t - t0, 0, None)
    return np.where(t >= t0, (np.exp(-s / td) - np.exp(-s / tr)) / peak, 0.0)


def _one_step_late(x: np.ndarray) -> np.ndarray:
    """NEURON's fixed step evaluates BREAKPOINT (where g is assigned) before the states
    advance, so a recorded g lags the state solution by one dt; shift the analytic curve."""
    return np.concatenate([[0.0], x[:-1]])


def _synapse_run(h, syn, times: list[float], tstop: float, rec: dict[str, str],
                 v_clamp: float = -70.0, sec=None, weight: float = 1.0) -> dict[str, np.ndarray]:
    """Deliver events at `times` (NetCon.event from an FInitializeHandler), record RANGE vars."""
    src = h.NetCon(None, syn)
    src.weight[0] = weight
    fih = h.FInitializeHandler(lambda: [src.event(tt) for tt in times])
    out = {k: h.Vector().record(getattr(syn, f"_ref_{v}")) for k, v in rec.items()}
    t = h.Vector().record(h._ref_t)
    _run(h, tstop, v0=v_clamp)
    del fih
    res = {k: np.array(v) for k, v in out.items()}
    res["t"] = np.array(t)
    return res


def _clamped_soma(h, v: float):
    sec = _soma(h, g_pas=1e-5, e_pas=v)
    clamp = h.SEClamp(sec(0.5))
    clamp.rs, clamp.dur1, clamp.amp1 = 1e-3, 1e9, v
    return sec, clamp


def test_ampa_only_kinetics(h) -> None:
    sec, clamp = _clamped_soma(h, -70)
    syn = h.NSAmpaNmda(sec(0.5))
    syn.gmax_NMDA = 0
    r = _synapse_run(h, syn, [1.0], 30, {"g": "g_AMPA", "gn": "g_NMDA", "gt": "g"})
    expected = _one_step_late(0.0004 * _dual_exp(r["t"], 1.0, 0.3, 3.0))
    assert r["g"].max() == pytest.approx(0.0004, rel=0.01)
    assert np.abs(r["g"] - expected).max() < 0.005 * 0.0004
    tp = 0.3 * 3 / (3 - 0.3) * math.log(10)
    assert r["t"][r["g"].argmax()] == pytest.approx(1.0 + tp, abs=2 * h.dt)
    assert np.all(r["gn"] == 0) and np.allclose(r["gt"], r["g"])


def test_nmda_kinetics_and_weight(h) -> None:
    sec, clamp = _clamped_soma(h, 20)
    syn = h.NSAmpaNmda(sec(0.5))
    syn.gmax_AMPA = 0
    r = _synapse_run(h, syn, [2.0], 300, {"g": "g_NMDA_open", "ga": "g_AMPA"}, v_clamp=20,
                     weight=2.0)
    expected = _one_step_late(2 * 0.0004 * _dual_exp(r["t"], 2.0, 2.0, 70.0))
    assert r["g"].max() == pytest.approx(2 * 0.0004, rel=0.01)
    assert np.abs(r["g"] - expected).max() < 0.005 * 0.0004
    assert np.all(r["ga"] == 0)


@pytest.mark.parametrize("v", [-80.0, -60.0, -40.0, -20.0, 0.0, 20.0])
def test_nmda_mg_block(h, v: float) -> None:
    sec, clamp = _clamped_soma(h, v)
    syn = h.NSAmpaNmda(sec(0.5))
    vrec = h.Vector().record(sec(0.5)._ref_v)
    r = _synapse_run(h, syn, [1.0], 40, {"g": "g_NMDA", "go": "g_NMDA_open", "b": "mgblock",
                                         "i": "i_NMDA"}, v_clamp=v)
    vv = np.array(vrec)
    assert abs(vv[-1] - v) < 0.1
    block = 1 / (1 + np.exp(-0.08 * vv) * (1.0 / 3.57))
    k = int(30 / h.dt)
    assert r["b"][k] == pytest.approx(block[k], rel=1e-6)
    assert r["g"][k] == pytest.approx(r["go"][k] * block[k], rel=1e-6)
    assert r["i"][k] == pytest.approx(r["g"][k] * (vv[k] - 0.0), rel=1e-6, abs=1e-12)


def test_mg_concentration_is_settable(h) -> None:
    sec, clamp = _clamped_soma(h, -40)
    syn = h.NSAmpaNmda(sec(0.5))
    syn.mg = 0.0
    r = _synapse_run(h, syn, [1.0], 5, {"b": "mgblock"}, v_clamp=-40)
    assert r["b"][-1] == pytest.approx(1.0)


def test_gaba_a_kinetics(h) -> None:
    sec, clamp = _clamped_soma(h, -60)
    syn = h.NSGabaA(sec(0.5))
    r = _synapse_run(h, syn, [1.0], 60, {"g": "g", "i": "i"}, v_clamp=-60)
    expected = _one_step_late(0.001 * _dual_exp(r["t"], 1.0, 0.2, 8.0))
    assert r["g"].max() == pytest.approx(0.001, rel=0.01)
    assert np.abs(r["g"] - expected).max() < 0.005 * 0.001
    k = r["g"].argmax()
    assert r["i"][k] == pytest.approx(r["g"][k] * (-60 + 80), rel=1e-3)  # reversal -80 mV


def test_event_at_t0_gives_no_nan(h) -> None:
    """The original synapse files turned an event at t = 0 into NaN; ours must not."""
    sec = _soma(h, g_pas=3e-5, e_pas=-70)
    exc = h.NSAmpaNmda(sec(0.5))
    inh = h.NSGabaA(sec(0.5))
    times = h.Vector([0.0, 0.0, 5.0])
    stim = h.NSVecStim()
    stim.play(times)
    conns = [h.NetCon(stim, syn, 0, 0, 1.0) for syn in (exc, inh)]
    g_e = h.Vector().record(exc._ref_g_AMPA)
    g_n = h.Vector().record(exc._ref_g_NMDA)
    g_i = h.Vector().record(inh._ref_g)
    v = h.Vector().record(sec(0.5)._ref_v)
    _run(h, 50, v0=-70)
    for rec in (g_e, g_n, g_i, v):
        assert np.all(np.isfinite(np.array(rec)))
    assert np.array(g_e)[: int(4 / h.dt)].max() == pytest.approx(2 * 0.0004, rel=0.01)
    assert np.array(g_i).max() > 0.001
    assert np.array(v).max() > -70
    del conns


def test_vecstim_delivers_exact_times(h) -> None:
    sec, clamp = _clamped_soma(h, -70)
    syn = h.NSAmpaNmda(sec(0.5))
    syn.gmax_NMDA = 0
    spikes = [0.0, 0.5, 3.25, 3.25, 10.0, 47.125]
    vec = h.Vector(spikes)
    stim = h.NSVecStim()
    stim.play(vec)
    delay = 1.5
    conn = h.NetCon(stim, syn, 0, delay, 1.0)
    got = h.Vector()
    conn.record(got)
    g = h.Vector().record(syn._ref_g_AMPA)
    t = h.Vector().record(h._ref_t)
    for _ in range(2):  # re-initialising replays the same events
        _run(h, 80, v0=-70)
        assert list(got) == spikes
    tt = np.array(t)
    expected = _one_step_late(sum(0.0004 * _dual_exp(tt, s + delay, 0.3, 3.0) for s in spikes))
    assert np.abs(np.array(g) - expected).max() < 0.01 * 0.0004

    empty = h.NSVecStim()
    empty.play()  # no vector: no events
    conn2 = h.NetCon(empty, None)
    got2 = h.Vector()
    conn2.record(got2)
    _run(h, 10, v0=-70)
    assert len(got2) == 0


@pytest.mark.parametrize("bad", [[3.0, 1.0], [-1.0, 2.0], [float("nan")]])
def test_vecstim_rejects_bad_vectors(h, bad: list[float]) -> None:
    stim = h.NSVecStim()
    with pytest.raises(RuntimeError):
        stim.play(h.Vector(bad))


def test_synapse_under_cvode(h) -> None:
    """The synapse peak is right under variable-step integration too (NeuronIO used CVode)."""
    sec, clamp = _clamped_soma(h, -70)
    syn = h.NSAmpaNmda(sec(0.5))
    syn.gmax_NMDA = 0
    cv = h.CVode()
    cv.active(1)
    cv.atol(1e-6)
    try:
        r = _synapse_run(h, syn, [1.0], 20, {"g": "g_AMPA"})
    finally:
        cv.active(0)
    t = r["t"]
    fine = np.linspace(1.0, 3.0, 2001)
    g = np.interp(fine, t, r["g"])
    assert g.max() == pytest.approx(0.0004, rel=0.01)


# --------------------------------------------------------------------------- CoreNEURON

CORENEURON_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    from biophys_models.compile import load_mechanisms
    load_mechanisms(coreneuron=True)
    from neuron import h, coreneuron
    h.load_file("stdrun.hoc")
    h.celsius = 34
    sec = h.Section(name="soma"); sec.L = sec.diam = 20; sec.insert("pas"); sec.e_pas = -70
    for m in ("NaTs2_t", "SKv3_1"):
        sec.insert(m)
    sec(0.5).NaTs2_t.gNaTs2_tbar = 0.998912; sec(0.5).SKv3_1.gSKv3_1bar = 0.338029
    sec.ena = 50; sec.ek = -85
    syn = h.NSAmpaNmda(sec(0.5)); syn.gmax_AMPA = 0.01; syn.gmax_NMDA = 0.004
    times = h.Vector([0.0, 1.0, 5.5, 5.5, 20.0, 37.3])
    vs = h.NSVecStim(); vs.play(times)
    nc = h.NetCon(vs, syn, 0, 0.5, 1.0)
    got = h.Vector(); nc.record(got)
    pc = h.ParallelContext(); pc.set_gid2node(0, pc.id()); pc.cell(0, nc)
    v = h.Vector().record(sec(0.5)._ref_v)
    h.dt = 0.025
    h.finitialize(-70); h.continuerun(60)
    v1, r1 = np.array(v), list(got)
    coreneuron.enable = True
    h.finitialize(-70); pc.psolve(60)
    v2, r2 = np.array(v), list(got)
    assert r1 == r2 == list(times), (r1, r2)
    assert np.abs(v1 - v2).max() < 1e-6, np.abs(v1 - v2).max()
    print("OK", v1.max())
    """
)


@pytest.mark.slow
def test_coreneuron_matches_neuron(tmp_path: Path) -> None:
    """NSVecStim's BBCOREPOINTER transfer: CoreNEURON replays the same events and trace."""
    proc = subprocess.run([sys.executable, "-c", CORENEURON_SCRIPT], capture_output=True,
                          text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "OK" in proc.stdout
