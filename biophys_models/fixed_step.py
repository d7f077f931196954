"""The fixed-step form of a .mod file: what `kinetics: fast` compiles (issue 19).

A mechanism whose states obey `SOLVE states METHOD cnexp` pays one exp(-dt/tau) per state per
compartment (or synapse) per step: a third of a run of the L5PC in a profile, once the rate
functions are tabulated. With a fixed dt those factors are known ahead: this module rewrites
the file so that

  x' = (xInf - x) / xTau   becomes   x = x + x_step * (xInf - x)   (x_step = 1 - exp(-dt/xTau))
  x' = -x / tau                      x = x + x_step * (0 - x)

inside a `PROCEDURE states()` (the `SOLVE states` of NEURON's classic fixed-step channels).
x_step joins the TABLE of the procedure that computes xTau (with `DEPEND dt`), so it is
looked up with the rates; where tau is a PARAMETER (a synapse's time constants, SK_E2's zTau)
it is computed per instance in INITIAL, i.e. at every finitialize. That is the same update as
cnexp's, up to rounding: cnexp is exact for these linear equations at fixed v.

What it gives up: CVode (which needs the DERIVATIVE block) and a dt changed after
finitialize without a new finitialize (the INITIAL factors would be stale). `RunSettings`
refuses the first; `simulator.simulate` always initialises. A file whose DERIVATIVE block
holds anything other than procedure calls and equations of those two shapes (e.g.
CaDynamics_E2's calcium balance), or whose tau comes from an untabled procedure, is left as it
is: `fixed_step_form` returns None and the mechanism keeps cnexp.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Bump when the rewrite changes, so that cached libraries built by an older one are rebuilt.
FORM_VERSION = "1"

_RELAX = re.compile(r"(\w+)'\s*=\s*\(\s*(\w+)\s*-\s*\1\s*\)\s*/\s*(\w+)")
_DECAY = re.compile(r"(\w+)'\s*=\s*-\s*\1\s*/\s*(\w+)")
_CALL = re.compile(r"\w+\s*\(.*\)")
_SOLVE = re.compile(r"SOLVE\s+states\s+METHOD\s+cnexp")
_TABLE = re.compile(r"^(\s*TABLE\s+[\w\s,]*?\w)(\s+DEPEND\s+([\w\s,]*?\w))?(\s+FROM\b)", re.M)
_IGNORED = ("", "UNITSOFF", "UNITSON")


@dataclass(frozen=True)
class _Block:
    """A top-level NMODL block: text[start:open_end] is its header, text[open_end:close]
    its body (close indexes its final brace)."""

    start: int
    open_end: int
    close: int


def _block(text: str, header: str) -> _Block | None:
    """The first block whose header (from a line start up to its `{`) matches `header`."""
    found = re.search(r"^" + header + r"[^{\n]*\{", text, re.M)
    if found is None:
        return None
    depth = 0
    for i in range(found.end() - 1, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return _Block(found.start(), found.end(), i)
    raise ValueError(f"unbalanced braces after {header!r}")


def _body(text: str, block: _Block) -> str:
    return text[block.open_end:block.close]


def _statements(body: str) -> list[str]:
    return [line.split(":")[0].strip() for line in body.splitlines()
            if line.split(":")[0].strip() not in _IGNORED]


def _declared(text: str, header: str) -> set[str]:
    block = _block(text, header)
    return set() if block is None else {
        m.group(1) for m in re.finditer(r"^\s*(\w+)", _body(text, block), re.M)}


def _procedure_assigning(text: str, name: str) -> str | None:
    """The PROCEDURE whose body assigns `name`, if one does."""
    for proc in re.finditer(r"^PROCEDURE\s+(\w+)", text, re.M):
        block = _block(text, r"PROCEDURE\s+" + proc.group(1) + r"\b")
        if block and re.search(r"^\s*" + name + r"\s*=", _body(text, block), re.M):
            return proc.group(1)
    return None


def _insert_before_close(text: str, block: _Block, lines: list[str]) -> str:
    return text[:block.close] + "".join(f"    {ln}\n" for ln in lines) + text[block.close:]


def _tabulate(text: str, proc: str, steps: list[tuple[str, str]]) -> str | None:
    """Add each (x_step, tau) to `proc`'s TABLE (with DEPEND dt) and compute it at the end of
    the procedure, inside its UNITSOFF region if it has one; None if it has no TABLE."""
    block = _block(text, r"PROCEDURE\s+" + proc + r"\b")
    body = _body(text, block)
    table = _TABLE.search(body)
    if table is None:
        return None
    names = ", ".join(step for step, _ in steps)
    depend = "dt" + (f", {table.group(3)}" if table.group(3) else "")
    body = body[:table.start()] + f"{table.group(1)}, {names} DEPEND {depend}{table.group(4)}" \
        + body[table.end():]
    lines = "".join(f"{step} = 1 - exp(-dt / {tau})\n    " for step, tau in steps)
    at = body.rfind("UNITSON")
    at = at if at >= 0 else len(body)
    body = body[:at] + lines + body[at:]
    return text[:block.open_end] + body + text[block.close:]


def fixed_step_form(text: str) -> str | None:
    """The file rewritten as the module docstring says, or None where it does not apply."""
    derivative = _block(text, r"DERIVATIVE\s+states\b")
    if derivative is None or _SOLVE.search(text) is None:
        return None
    calls, updates, initial, tabled = [], [], [], {}
    parameters = _declared(text, "PARAMETER")
    for statement in _statements(_body(text, derivative)):
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
    out = _insert_before_close(out, _block(out, "ASSIGNED"),
                               [u.split(" = ")[0] + "_step" for u in updates])
    if initial:
        out = _insert_before_close(out, _block(out, r"INITIAL\b"), initial)
    derivative = _block(out, r"DERIVATIVE\s+states\b")
    procedure = "PROCEDURE states() {\n" + "".join(f"    {s}\n" for s in calls + updates)
    out = out[:derivative.start] + procedure + out[derivative.close:]
    return _SOLVE.sub("SOLVE states", out)
