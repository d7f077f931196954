"""A voltage TABLE for a rate procedure that has none, so a cell spec's own .mod files can
take the fixed-step form (`fixed_step`).

Published channel files (ModelDB's Hay 2011 set among them) compute their rates with exp()
at every step, in a procedure without a TABLE, often without an argument (`rates()` reading
the mechanism's v). Such a procedure can be tabulated over v when what it assigns depends on
v alone. `tabulated` checks that from the text: the body may read only its voltage (its one
argument, or v), its LOCALs, numbers, math functions, FUNCTIONs of the same file that are
pure in their arguments, values it assigned before, and GLOBAL parameters or celsius (which
go into `DEPEND`, so NEURON recomputes the table when one is changed). Anything else (a RANGE
parameter, an ion concentration, a STATE, a VERBATIM block, a call of a PROCEDURE) and the
procedure is left untabled: `tabulated` returns None. Every call must pass an expression of v
(`rates(v)`, `rates(v - vshift)`): a table over -150..100 mV is no table of a concentration.
A procedure without an argument gets v as one (`PROCEDURE rates(v (mV))`, every call in the
file `rates(v)`); hoc code that calls `rates_<suffix>()` itself would have to pass v.

The table is the built-in channels' (-150 to 100 mV in 0.02 mV steps, linear interpolation);
the tests hold a tabulated file to its untabled original within the fast-kinetics tolerance.
"""

from __future__ import annotations

import re

from biophys_models.mod_text import block, body, code, declared, neuron_block_names, reads_v

#: The built-in channels' tables: mV, 0.02 mV steps.
VOLTAGE_TABLE = "FROM -150 TO 100 WITH 12500"

MATH_FUNCTIONS = frozenset({
    "exp", "log", "log10", "fabs", "sqrt", "pow", "sin", "cos", "tan", "sinh", "cosh",
    "tanh", "asin", "acos", "atan", "atan2", "floor", "ceil", "fmod", "erf", "erfc"})
_KEYWORDS = frozenset({"if", "else", "while", "LOCAL", "UNITSOFF", "UNITSON"})
_NAME = re.compile(r"(?<![\w.])([A-Za-z_]\w*)")
_CALL_ARGS = r"\s*\(((?:[^()]|\([^()]*\))*)\)"  # one level of nested parentheses
_OPENS = re.compile(r"\s*\(")
_ASSIGNS = re.compile(r"\s*=(?!=)")


def _arguments(header: str) -> list[str] | None:
    """Argument names of a `PROCEDURE name(a (mV), b) {` or `FUNCTION name(x) (1) {` header."""
    found = re.match(r"\s*\w+\s+\w+" + _CALL_ARGS, header)
    if found is None:
        return None
    inner = re.sub(r"\([^()]*\)", "", found.group(1))  # units
    return [a.strip() for a in inner.split(",") if a.strip()]


def _dependencies(text: str, source: str, independents: set[str],
                  outputs: list[str] | None, seen: frozenset[str] = frozenset()
                  ) -> set[str] | None:
    """The globals `source` (a body without comments) reads, if it is pure in
    `independents`; None if not.

    `outputs` collects what it assigns (a procedure's results); None allows assigning only
    LOCALs and the independents (a FUNCTION's body, whose own name is its result)."""
    if "VERBATIM" in source or re.search(r"\bTABLE\b", source):
        return None
    locals_ = {n for decl in re.findall(r"\bLOCAL[ \t]+([\w \t,]+)", source)
               for n in re.split(r"[\s,]+", decl) if n}
    assigned_ok = declared(text, "ASSIGNED") - declared(text, "STATE")
    range_names = neuron_block_names(text, "RANGE")
    globals_ = (declared(text, "PARAMETER") - range_names) | {"celsius"}
    functions = set(re.findall(r"^FUNCTION\s+(\w+)", text, re.M))
    deps: set[str] = set()
    scan = re.sub(r"\bLOCAL[ \t]+[\w \t,]+", "", source)
    for found in _NAME.finditer(scan):
        name = found.group(1)
        if name in _KEYWORDS or name in locals_ or name in independents:
            continue
        if _OPENS.match(scan, found.end()):
            if name in MATH_FUNCTIONS:
                continue
            if name not in functions or name in seen:
                return None
            inner = _function_dependencies(text, name, seen | {name})
            if inner is None:
                return None
            deps |= inner
        elif _ASSIGNS.match(scan, found.end()):
            if outputs is None or name not in assigned_ok:
                return None
            if name not in outputs:
                outputs.append(name)
        elif outputs is not None and name in outputs:
            continue  # read after it was assigned
        elif name in globals_:
            deps.add(name)
        else:
            return None
    return deps


def _function_dependencies(text: str, name: str, seen: frozenset[str]) -> set[str] | None:
    found = block(text, r"FUNCTION\s+" + name + r"\b")
    args = _arguments(text[found.start:found.open_end])
    if args is None:
        return None
    return _dependencies(text, code(body(text, found)), {*args, name}, None, seen)


def tabulated(text: str, proc: str) -> str | None:
    """`text` with PROCEDURE `proc` given a TABLE over v of everything it assigns, or None
    where it cannot have one (module docstring)."""
    found = block(text, r"PROCEDURE\s+" + proc + r"\b")
    if found is None:
        return None
    header = text[found.start:found.open_end]
    args = _arguments(header)
    if args is None or len(args) > 1:
        return None
    voltage = args[0] if args else "v"
    outputs: list[str] = []
    deps = _dependencies(text, code(body(text, found)), {voltage}, outputs)
    if deps is None or not outputs:
        return None
    elsewhere = code(text[:found.start] + text[found.open_end:])
    passed = [c.group(1).strip() for c in re.finditer(r"\b" + proc + _CALL_ARGS, elsewhere)]
    if not passed or any(
            (p != "" if not args else not reads_v(p)) for p in passed):
        return None
    depend = f" DEPEND {', '.join(sorted(deps))}" if deps else ""
    table = f"TABLE {', '.join(outputs)}{depend} {VOLTAGE_TABLE}"
    lines = body(text, found).split("\n")
    at = 1  # after the opening line, any LOCAL and UNITSOFF lines and comments
    while at < len(lines) and re.fullmatch(r"\s*(LOCAL\b.*|UNITSOFF\s*|:.*)?", lines[at]):
        at += 1
    indent = re.match(r"\s*", lines[at] if at < len(lines) else "").group(0) or "    "
    inner = "\n".join([*lines[:at], indent + table, *lines[at:]])
    if not args:
        header = re.sub(r"\(\s*\)", "(v (mV))", header, count=1)
    out = text[:found.start] + header + inner + text[found.close:]
    if not args:
        out = re.sub(r"\b" + proc + r"\s*\(\s*\)", proc + "(v)", out)
    return out
