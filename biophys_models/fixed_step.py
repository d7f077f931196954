"""The fixed-step form of a .mod file: what `kinetics: fast` compiles (issue 19).

A mechanism whose states obey `SOLVE states METHOD cnexp` pays one exp(-dt/tau) per state per
compartment (or synapse) per step: a third of a run of the L5PC in a profile, once the rate
functions are tabulated. With a fixed dt those factors are known ahead: this module rewrites
the file so that

  x' = (xInf - x) / xTau   becomes   x = x + x_step * (xInf - x)   (x_step = 1 - exp(-dt/xTau))
  x' = -x / tau                      x = x + x_step * (0 - x)

inside a `PROCEDURE states()` (the `SOLVE states` of NEURON's classic fixed-step channels).
x_step joins the TABLE of the procedure that computes xTau (with `DEPEND dt`), so it is
looked up with the rates (a procedure without a TABLE, as in ModelDB's channel files, first
gets one where `rate_tables` finds it a function of v alone); where tau is a PARAMETER (a
synapse's time constants, SK_E2's zTau) it is computed per instance in INITIAL, i.e. at
every finitialize. That is the same update as cnexp's, up to rounding: cnexp is exact for
these linear equations at fixed v.

The fast build also gives each channel whose current is linear in v a CONDUCTANCE hint
(`conductance_hint`: one evaluation of the current per step instead of two); `fast_form`
applies both rewrites.

What it gives up: CVode (which needs the DERIVATIVE block) and a dt changed after
finitialize without a new finitialize (the INITIAL factors would be stale). `RunSettings`
refuses the first; `simulator.simulate` always initialises. A file whose DERIVATIVE block
holds anything other than procedure calls and equations of those two shapes (e.g.
CaDynamics_E2's calcium balance), or whose tau comes from a procedure that cannot be
tabulated, is left as it is: `fixed_step_form` returns None and the mechanism keeps cnexp.
"""

from __future__ import annotations

import re

from biophys_models.conductance_hint import conductance_hinted
from biophys_models.mod_text import Block, block, body, code, declared
from biophys_models.rate_tables import tabulated

#: Bump when the rewrite changes, so that cached libraries built by an older one are rebuilt.
FORM_VERSION = "3"

_RELAX = re.compile(r"(\w+)'\s*=\s*\(\s*(\w+)\s*-\s*\1\s*\)\s*/\s*(\w+)")
_DECAY = re.compile(r"(\w+)'\s*=\s*-\s*\1\s*/\s*(\w+)")
_CALL = re.compile(r"\w+\s*\(.*\)")
_SOLVE = re.compile(r"SOLVE\s+states\s+METHOD\s+cnexp")
_TABLE = re.compile(r"^(\s*TABLE\s+[\w\s,]*?\w)(\s+DEPEND\s+([\w\s,]*?\w))?(\s+FROM\b)", re.M)
_IGNORED = ("", "UNITSOFF", "UNITSON")


def _statements(text: str) -> list[str]:
    return [line.strip() for line in code(text).splitlines() if line.strip() not in _IGNORED]


def _procedure_assigning(text: str, name: str) -> str | None:
    """The PROCEDURE whose body assigns `name`, if one does."""
    for proc in re.finditer(r"^PROCEDURE\s+(\w+)", text, re.M):
        found = block(text, r"PROCEDURE\s+" + proc.group(1) + r"\b")
        if found and re.search(r"^\s*" + name + r"\s*=", body(text, found), re.M):
            return proc.group(1)
    return None


def _insert_before_close(text: str, found: Block, lines: list[str]) -> str:
    return text[:found.close] + "".join(f"    {ln}\n" for ln in lines) + text[found.close:]


def _tabulate(text: str, proc: str, steps: list[tuple[str, str]]) -> str | None:
    """Add each (x_step, tau) to `proc`'s TABLE (with DEPEND dt) and compute it at the end of
    the procedure, inside its UNITSOFF region if it has one; None if it has no TABLE."""
    found = block(text, r"PROCEDURE\s+" + proc + r"\b")
    inner = body(text, found)
    table = _TABLE.search(inner)
    if table is None:
        return None
    names = ", ".join(step for step, _ in steps)
    depend = "dt" + (f", {table.group(3)}" if table.group(3) else "")
    inner = inner[:table.start()] + f"{table.group(1)}, {names} DEPEND {depend}{table.group(4)}" \
        + inner[table.end():]
    lines = "".join(f"{step} = 1 - exp(-dt / {tau})\n    " for step, tau in steps)
    at = inner.rfind("UNITSON")
    at = at if at >= 0 else len(inner)
    inner = inner[:at] + lines + inner[at:]
    return text[:found.open_end] + inner + text[found.close:]


def _with_rate_tables(text: str, equations: list[str], parameters: set[str]) -> str | None:
    """`text` with a TABLE (`rate_tables.tabulated`) on each untabled procedure that
    computes a relaxation's tau; None if one cannot have it."""
    for statement in equations:
        relax = _RELAX.fullmatch(statement)
        tau = relax.group(3) if relax else None
        if tau is None or tau in parameters:
            continue
        proc = _procedure_assigning(text, tau)
        if proc is None:
            return None
        if _TABLE.search(body(text, block(text, r"PROCEDURE\s+" + proc + r"\b"))) is None:
            text = tabulated(text, proc)
            if text is None:
                return None
    return text


def fixed_step_form(text: str) -> str | None:
    """The file rewritten as the module docstring says, or None where it does not apply."""
    derivative = block(text, r"DERIVATIVE\s+states\b")
    if derivative is None or _SOLVE.search(text) is None:
        return None
    parameters = declared(text, "PARAMETER")
    text = _with_rate_tables(text, _statements(body(text, derivative)), parameters)
    if text is None:
        return None
    derivative = block(text, r"DERIVATIVE\s+states\b")
    calls, updates, initial, tabled = [], [], [], {}
    for statement in _statements(body(text, derivative)):
        if relax := _RELAX.fullmatch(statement):
            state, target, tau = relax.groups()
        elif decay := _DECAY.fullmatch(statement):
            (state, tau), target = decay.groups(), "0"
        elif _CALL.fullmatch(statement):
            calls.append(statement)
            continue
        else:
            return None
        step = f"{state}_step"
        updates.append(f"{state} = {state} + {step} * ({target} - {state})")
        proc = None if tau in parameters else _procedure_assigning(text, tau)
        if proc is None:
            if tau not in parameters:
                return None  # tau computed where no table can hold its factor
            initial.append(f"{step} = 1 - exp(-dt / {tau})")
        else:
            tabled.setdefault(proc, []).append((step, tau))
    out = text
    for proc, steps in tabled.items():
        out = _tabulate(out, proc, steps)
        if out is None:
            return None
    out = _insert_before_close(out, block(out, "ASSIGNED"),
                               [u.split(" = ")[0] + "_step" for u in updates])
    if initial:
        out = _insert_before_close(out, block(out, r"INITIAL\b"), initial)
    derivative = block(out, r"DERIVATIVE\s+states\b")
    procedure = "PROCEDURE states() {\n" + "".join(f"    {s}\n" for s in calls + updates)
    out = out[:derivative.start] + procedure + out[derivative.close:]
    return _SOLVE.sub("SOLVE states", out)


#: The rewrites kinetics "fast" applies to each file, in order, by the names build.json uses.
FAST_REWRITES = (("fixed_step_form", fixed_step_form), ("conductance_hint", conductance_hinted))


def fast_form(text: str) -> tuple[str, list[str]]:
    """The file as kinetics "fast" compiles it, and the names of the rewrites that applied
    (none: the file unchanged)."""
    applied = []
    for name, rewrite in FAST_REWRITES:
        out = rewrite(text)
        if out is not None:
            text, applied = out, [*applied, name]
    return text, applied
