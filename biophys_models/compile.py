"""Compile NMODL mechanisms once into a shared cache and load them into NEURON.

Why a cache: `nrnivmodl` takes seconds to a minute, and every simulation worker
process (Dask spawns them) needs the same library. The build folder is keyed by a
sha256 of the .mod file names and contents, the NEURON version and install
location, the CoreNEURON flag and the kinetics, so a changed source gives a new folder and
an unchanged one is reused. kinetics "fast" compiles `fixed_step.fast_form` of each file
(the fixed-step form and the CONDUCTANCE hint where they apply) at -O3 (measured 5 % faster
than nrnivmodl's -O2; not -march=native, which gained 5 % more but would tie a cache shared
by a cluster to one CPU model); "exact" compiles the files unchanged, as nrnivmodl does by
default.

Several processes may ask for the same key at once: a `filelock.FileLock` serialises the
build, which runs in a temporary folder that is renamed into place only when complete
(readers never see a half-built library).

Layout of one cache entry (``compile_mechanisms`` returns the entry folder)::

    <cache_root>/<key>/
        mod/*.mod                 the sources that were compiled (fast: rewritten)
        <arch>/libnrnmech.so      the NEURON library (arch: x86_64, aarch64, arm64)
        <arch>/libcorenrnmech.so  only when compiled with coreneuron=True
        build.json                key inputs and build metadata (fast: which files each
                                  rewrite changed); written last

Cache root: ``cache_root`` argument, else ``$NEUROSURROGATE_CACHE/nrnmech``, else
``~/.cache/neurosurrogate/nrnmech``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from filelock import FileLock, Timeout

from biophys_models.errors import CellError
from biophys_models.fixed_step import FAST_REWRITES, FORM_VERSION, fast_form
from pipeline.protocol import checked_kinetics

BUILTIN_MOD_DIR: Path = Path(__file__).resolve().parent / "mechanisms"

#: The Hay et al. 2011 L5PC channel and calcium mechanisms (file stems = NEURON names).
HAY_CHANNELS: tuple[str, ...] = (
    "CaDynamics_E2",
    "Ca_HVA",
    "Ca_LVAst",
    "Ih",
    "Im",
    "K_Pst",
    "K_Tst",
    "NaTa_t",
    "NaTs2_t",
    "Nap_Et2",
    "SK_E2",
    "SKv3_1",
)

#: NeuronIO synapses and the spike-time event source (file stems = NEURON names).
SYNAPSE_MECHANISMS: tuple[str, ...] = ("NSAmpaNmda", "NSGabaA", "NSVecStim")

#: Bump when the build recipe changes so that old cache entries are not reused.
_RECIPE_VERSION = "1"
_LOCK_TIMEOUT_S = 1800.0
_FAST_FLAGS = "-O3"  # passed through nrnivmodl -incflags for kinetics "fast"
_ARCH_DIRS = ("x86_64", "aarch64", "arm64", "i686", "powerpc64le")

# Per-process state: the build folder whose library this process loaded, and the
# folders this process built itself (tests use the latter to count real builds).
_loaded_dir: Path | None = None
_builds_done: list[Path] = []


def builtin_mod_files(include_channels: bool = True) -> list[Path]:
    """The project's own .mod files: Hay channels (optional) + synapses + event source."""
    stems = (HAY_CHANNELS if include_channels else ()) + SYNAPSE_MECHANISMS
    return [BUILTIN_MOD_DIR / f"{stem}.mod" for stem in stems]


def default_cache_root() -> Path:
    """``$NEUROSURROGATE_CACHE/nrnmech`` if that variable is set, else the user cache."""
    env = os.environ.get("NEUROSURROGATE_CACHE")
    base = Path(env).expanduser() if env else Path.home() / ".cache" / "neurosurrogate"
    return base / "nrnmech"


def _neuron_identity() -> tuple[str, str]:
    """NEURON version and install folder, found without importing (and starting) NEURON."""
    try:
        version = importlib.metadata.version("neuron")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    spec = importlib.util.find_spec("neuron")
    location = str(Path(spec.origin).resolve().parent) if spec and spec.origin else "unknown"
    return version, location


def _checked_mod_files(mod_files: Sequence[Path]) -> list[Path]:
    """Resolve, check existence and suffix, and refuse two files with one mechanism name."""
    files = [Path(f).expanduser().resolve() for f in mod_files]
    if not files:
        raise CellError(None, "compile_mechanisms: no .mod files given")
    seen: dict[str, Path] = {}
    for f in files:
        if f.suffix != ".mod":
            raise CellError(f, "not a .mod file")
        if not f.is_file():
            raise CellError(f, ".mod file not found")
        if f.name in seen and seen[f.name] != f:
            raise CellError(f, f"same file name as {seen[f.name]} (mechanism names would clash)")
        seen[f.name] = f
    return sorted(set(files), key=lambda p: p.name)


def cache_key(mod_files: Sequence[Path], *, coreneuron: bool = False,
              kinetics: str = "exact") -> str:
    """sha256 over .mod names + contents, NEURON version/location, CoreNEURON flag, recipe
    and, for fast kinetics, the fixed-step rewrite's version and flags (exact keys are those
    of the builds before kinetics existed, so their cache entries stay valid)."""
    files = _checked_mod_files(mod_files)
    version, location = _neuron_identity()
    digest = hashlib.sha256()
    fast = (f"kinetics=fast form={FORM_VERSION} flags={_FAST_FLAGS}",) \
        if checked_kinetics(kinetics) == "fast" else ()
    for part in (f"recipe={_RECIPE_VERSION}", f"neuron={version}", f"at={location}",
                 f"coreneuron={int(bool(coreneuron))}", *fast):
        digest.update(part.encode() + b"\0")
    for f in files:
        data = f.read_bytes()
        digest.update(f.name.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    return digest.hexdigest()


def nrnmech_library(build_dir: Path) -> Path:
    """The ``<arch>/libnrnmech.so`` inside a build folder returned by compile_mechanisms."""
    for arch in _ARCH_DIRS:
        lib = Path(build_dir) / arch / "libnrnmech.so"
        if lib.is_file():
            return lib
    found = sorted(Path(build_dir).glob("*/libnrnmech.so"))
    if found:
        return found[0]
    raise CellError(build_dir, "no <arch>/libnrnmech.so in this build folder")


def corenrn_library(build_dir: Path) -> Path | None:
    """The CoreNEURON ``<arch>/libcorenrnmech.so`` of a coreneuron=True build, else None."""
    lib = nrnmech_library(build_dir).parent / "libcorenrnmech.so"
    return lib if lib.is_file() else None


def _is_complete(build_dir: Path) -> bool:
    """A cache entry counts only once build.json (written last, before the rename) exists."""
    return (build_dir / "build.json").is_file()


def _find_nrnivmodl() -> str:
    """nrnivmodl on PATH, else next to the running Python (pip puts it there)."""
    exe = shutil.which("nrnivmodl")
    if exe is None:
        candidate = Path(sys.executable).parent / "nrnivmodl"
        if candidate.is_file():
            exe = str(candidate)
    if exe is None:
        raise CellError(None, "nrnivmodl not found: install NEURON (pip install neuron) in this "
                              "Python")
    return exe


def _find_cxx() -> str:
    """The C++ compiler nrnivmodl will use: $CXX, else Python's configured CXX, else g++."""
    cxx = os.environ.get("CXX") or sysconfig.get_config_var("CXX") or "g++"
    words = shlex.split(cxx)
    exe = shutil.which(words[0]) if words else None
    if exe is None:
        raise CellError(
            None, f"no C++ compiler found (CXX={cxx!r} is not an executable): install g++ >= 10 "
            "or set CXX to a C++17 compiler; nrnivmodl needs one to compile .mod files"
        )
    return exe


_MOD_REF = re.compile(r"([A-Za-z_][\w.+-]*)\.(?:mod|cpp|c|o)\b")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_NOISE = ("NOTE: If you are encountering", "CalledProcessError", "make: ***", "Traceback",
          "returned non-zero exit status")
# Most specific first: nocmodl's located error, a compiler diagnostic, any 'error' line.
_ERROR_PATTERNS = (
    re.compile(r"Error:.*\bline \d+ in file\b"),
    re.compile(r":\d+(?::\d+)?: (?:fatal )?error\b"),
    re.compile(r"\berror\b", re.IGNORECASE),
)


def _describe_failure(output: str, stems: set[str]) -> tuple[str | None, str]:
    """Pick the .mod file and the first meaningful error line out of nrnivmodl's output."""
    lines = [_ANSI.sub("", ln).strip() for ln in output.splitlines()]
    lines = [ln for ln in lines if ln and not any(n in ln for n in _NOISE)]
    first = None
    for pattern in _ERROR_PATTERNS:
        first = next((ln for ln in lines if pattern.search(ln)), None)
        if first is not None:
            break
    if first is None:
        first = lines[-1] if lines else "no output"
    mod = None
    for ln in [first, *lines]:
        names = [n for n in _MOD_REF.findall(ln) if n in stems]
        if names:
            mod = f"{names[0]}.mod"
            break
    # drop the absolute build path from compiler lines: it is a temporary folder
    first = re.sub(r"\S*/(?=[\w.+-]+\.(?:cpp|c|mod)\b)", "", first)
    return mod, first[:300]


def _build(files: list[Path], tmp: Path, coreneuron: bool, kinetics: str) -> dict[str, list[str]]:
    """Run nrnivmodl in tmp on copies of the files (fast: `fixed_step.fast_form` of each);
    raise CellError naming a failing file. Returns, per fast rewrite, the files it changed."""
    nrnivmodl = _find_nrnivmodl()
    mod_dir = tmp / "mod"
    mod_dir.mkdir()
    applied: dict[str, list[str]] = {name: [] for name, _ in FAST_REWRITES}
    for f in files:
        text, names = fast_form(f.read_text()) if kinetics == "fast" else ("", [])
        if names:
            (mod_dir / f.name).write_text(text)
        else:
            shutil.copy2(f, mod_dir / f.name)
        for name in names:
            applied[name].append(f.name)
    flags = ["-incflags", _FAST_FLAGS] if kinetics == "fast" else []
    cmd = [nrnivmodl] + (["-coreneuron"] if coreneuron else []) + flags + ["mod"]
    env = dict(os.environ)
    env.setdefault("CXX", _find_cxx())
    proc = subprocess.run(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors="replace")
    (tmp / "build.log").write_text(proc.stdout)
    if proc.returncode != 0:
        mod, line = _describe_failure(proc.stdout, {f.stem for f in files})
        where = mod if mod else ", ".join(f.name for f in files)
        raise CellError(where, f"nrnivmodl failed: {line}")
    try:
        nrnmech_library(tmp)
    except CellError as exc:
        raise CellError(None, f"nrnivmodl produced no libnrnmech.so for "
                              f"{files[0].name}...") from exc
    if coreneuron and corenrn_library(tmp) is None:
        raise CellError(None, "nrnivmodl -coreneuron produced no libcorenrnmech.so")
    return applied


def compile_mechanisms(mod_files: Sequence[Path], *, coreneuron: bool = False,
                       kinetics: str = "exact", cache_root: Path | None = None) -> Path:
    """Compile the .mod files together (once per key) and return the cache entry folder.

    The returned folder holds ``<arch>/libnrnmech.so`` (see nrnmech_library) and, for
    coreneuron=True, ``<arch>/libcorenrnmech.so``. Safe to call from many processes at
    once: one builds, the others wait on the lock and reuse the result.
    """
    files = _checked_mod_files(mod_files)
    key = cache_key(files, coreneuron=coreneuron, kinetics=kinetics)
    root = Path(cache_root).expanduser() if cache_root is not None else default_cache_root()
    target = root / key
    if _is_complete(target):
        return target
    _find_cxx()  # fail early, with one clear line, before taking the lock
    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(root / f"{key}.lock"), timeout=_LOCK_TIMEOUT_S)
    try:
        with lock:
            if _is_complete(target):
                return target
            # under this key's lock no one else builds it: older temp folders are debris
            # of a killed build
            for stale in root.glob(f".build-{key[:12]}-*"):
                shutil.rmtree(stale, ignore_errors=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".build-{key[:12]}-", dir=root))
            try:
                start = time.monotonic()
                applied = _build(files, tmp, coreneuron, kinetics)
                version, location = _neuron_identity()
                meta = {
                    "key": key,
                    "mod_files": [f.name for f in files],
                    "sources": [str(f) for f in files],
                    "neuron_version": version,
                    "neuron_location": location,
                    "coreneuron": bool(coreneuron),
                    "kinetics": kinetics,
                    **applied,
                    "build_id": uuid.uuid4().hex,
                    "builder_pid": os.getpid(),
                    "build_seconds": round(time.monotonic() - start, 2),
                }
                (tmp / "build.json").write_text(json.dumps(meta, indent=2))
                tmp.chmod(0o755)  # mkdtemp makes it private; the cache may be shared
                if target.exists():  # leftover of an interrupted, incomplete build
                    shutil.rmtree(target)
                # a whole folder, renamed under the lock (pipeline.runtime.files renames
                # single files)
                os.replace(tmp, target)
                _builds_done.append(target)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
    except Timeout as exc:
        raise CellError(
            root, f"timed out waiting for another process to build {key[:12]}"
        ) from exc
    return target


def _declared_names(names: Sequence[str]) -> list[str]:
    """Which of these mechanism names NEURON already knows (from any loaded library)."""
    from neuron import h

    return [n for n in names if h.name_declared(n)]


def load_mechanisms(mod_files: Sequence[Path] | None = None, *,
                    coreneuron: bool = False, kinetics: str = "exact") -> Path:
    """Compile if needed and load the library into this process, once; return its folder.

    Loading the same library again is a no-op (NEURON crashes on a double load). Asking
    for a different library after one is loaded raises CellError: mechanism names would
    clash. Default files: builtin_mod_files(). With coreneuron=True the library is built
    with ``nrnivmodl -coreneuron`` and ``CORENEURONLIB`` is pointed at its
    libcorenrnmech.so, so ``ParallelContext.psolve`` with coreneuron.enable finds it.
    """
    global _loaded_dir
    files = builtin_mod_files() if mod_files is None else list(mod_files)
    if _loaded_dir is not None:
        key = cache_key(files, coreneuron=coreneuron, kinetics=kinetics)
        if key == _loaded_dir.name:
            return _loaded_dir
        raise CellError(
            None, f"{key[:12]}: a different mechanism library ({_loaded_dir.name[:12]}) is already "
            "loaded in this process (other files, CoreNEURON flag or kinetics); NEURON cannot load "
            "two (names would clash): compile all .mod files together, or use a fresh process"
        )
    build_dir = compile_mechanisms(files, coreneuron=coreneuron, kinetics=kinetics)
    stems = [Path(f).stem for f in files]
    clash = _declared_names(stems)
    if clash:
        raise CellError(
            None, f"{clash[0]}.mod: mechanism already defined in this process (another library was "
            "loaded, e.g. an x86_64/ folder in the working directory); use a fresh process"
        )
    from neuron import h

    lib = nrnmech_library(build_dir)
    if not h.nrn_load_dll(str(lib)):
        raise CellError(lib, "NEURON could not load this mechanism library")
    _loaded_dir = build_dir
    if coreneuron:
        core = corenrn_library(build_dir)
        if core is not None:
            os.environ["CORENEURONLIB"] = str(core)
    return build_dir
