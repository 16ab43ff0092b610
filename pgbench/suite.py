"""Suite files: a benchmark campaign written as TOML data, parsed and validated once.

A suite names heuristic combinations ("methods"), data sources, seeds and run
settings; :mod:`pgbench.cases` turns it into cases.  Everything is checked here,
before any case runs: an unknown key anywhere, an unknown heuristic or source, a
wrong type or a parameter a heuristic or source does not declare raises
:class:`SuiteError`, one line ``SUITE_FILE: problem``.  ``suites/README.md`` has
the same schema with examples.

Schema (every key optional unless marked *required*)::

    [suite]
    name        = "quick"          # default: the file name without .toml
    description = "..."
    seeds       = [0, 1]           # k-means seeds, also the data seeds (default [0])
    n_iter      = 15               # Lloyd iterations (default 15)
    device      = "cpu"            # "cpu", "cuda", "cuda:N"  (CLI --device overrides)
    timeout     = 600              # seconds per case (CLI --timeout overrides)
    k           = 256              # override every data set's own k
    backend     = "faiss"          # "torch" | "faiss" (default: the engine's choice)
    dtype       = "float32"        # or "float64"
    tol         = 1e-6             # early stop on centroid shift (default: never)
    repeats     = 3                # timing repeats per case, 1 to 1000 (default 1): the stored
                                   # seconds_* are the minimum, seconds_spread = max - min
    primary_metric = "inertia_ratio"   # what the report's verdict leads with: "inertia_ratio" (default)
                                   # or "rel_error_ratio" (data with ground truth); stored with each case
    imports     = ["my.module"]    # modules to import first (extra heuristics/sources)

    [vars]                         # values for ${name} in any string of the suite
    path = { help = "checkpoint", default = "..." }   # no default: must be given
    tag  = "x"                     # short form: the default

    [[methods]]                    # one table per heuristic combination
    label   = "pg"                 # name in the results (default "init + resolve[ + consolidate][ [params]]")
    init    = "pg"                 # *required*; a name, a list of names, or "*" (all)
    resolve = "pg"                 # *required*; same
    consolidate = "dwc"            # same; "none" (the default) = no consolidation;
                                   # "*" = none plus every registered one
    init_params = {}  resolve_params = { max_passes = 15 }  consolidate_params = {}
    backend = "direct"             # this method's assignment backend (default: [suite] backend)
    max_points_per_centroid = 256  # train on faiss's subsample of k * 256 points (default: all)

    [[sources]]                    # one table per data source
    name     = "gaussian_mixture"  # *required*: a registered source
    label    = "blobs"             # default: name (labels must be unique)
    params   = { n = 2000 }        # checked against the source's declaration
    grid     = { d = [2, 8] }      # product over these values, merged into params
    k        = 64                  # override the data sets' k (wins over [suite] k)
    seeds    = [0]                 # override [suite] seeds for this source
    data_seed = 0                  # fixed data seed (default: the case's seed)
    timeout  = 60                  # per-case timeout for this source
    optional = true                # skip (logged) when the data is absent

    [[cases]]                      # optional explicit list instead of the product
    method = "pg"  source = "blobs"  seeds = [0]     # labels of entries above

    [slurm]                        # submitit / SLURM settings (CLI --slurm KEY=VALUE)
    partition = "gpu"  timeout_min = 60  cpus_per_task = 2  mem_gb = 16
    gpus_per_node = 1  array_parallelism = 32  cases_per_task = 8
    account = "..."  qos = "..."  constraint = "..."  additional = { ... }

Without ``[[cases]]`` every method runs on every source at every seed.  String
values may use ``${name}`` (a ``[vars]`` entry, set with ``--set name=value`` or
the environment variable ``PGBENCH_SET_<NAME>``) and ``${package:NAME}`` (the
folder of the installed Python package NAME, found without importing it).  An
``optional`` source whose data cannot be had (a ``${package:...}`` that is not
installed, or loading it fails: missing file or folder, missing library) is
skipped with a logged note that ``validate`` and ``run`` also print; its
parameters are still checked, so a misspelt parameter is an error either way.

Per-stage parameters are checked against the heuristic that declares them, then
merged into the flat ``**params`` the engine routes by name; a name declared by
two selected heuristics must be given the same value for both, and names the
engine itself takes (``seed``, ``n_iter``, ...) cannot be heuristic parameters.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import backends, paths, registry, schema, sources
from .suite_downstream import parse_downstream
from .suite_methods import Method, methods as _methods
from .suite_values import Parser, SuiteError, resolve_variables, resolved, substitute

STAGES = registry.STAGES
SLURM_KEYS = ("partition", "timeout_min", "cpus_per_task", "mem_gb", "gpus_per_node", "array_parallelism",
              "cases_per_task", "account", "qos", "constraint", "additional")
_SUITE_KEYS = ("name", "description", "seeds", "n_iter", "device", "timeout", "k", "backend", "dtype",
               "tol", "repeats", "primary_metric", "imports")
MAX_REPEATS = 1000
_SOURCE_KEYS = ("name", "label", "params", "grid", "k", "seeds", "data_seed", "timeout", "optional")
_DEVICE = re.compile(r"cpu|cuda(:\d+)?")
DEFAULT_TIMEOUT = 600.0


@dataclass(frozen=True)
class Source:
    """One data source with bound parameters (one grid point of a [[sources]] entry)."""

    label: str
    entry: str
    name: str
    params: dict[str, Any]
    k: int | None = None
    seeds: tuple[int, ...] | None = None
    data_seed: int | None = None
    timeout: float | None = None
    optional: bool = False
    unavailable: str | None = None      # why an optional source is skipped, found while parsing


@dataclass(frozen=True)
class Suite:
    path: Path
    name: str
    description: str
    seeds: tuple[int, ...]
    n_iter: int
    device: str
    timeout: float
    k: int | None
    backend: str | None
    dtype: str
    tol: float | None
    imports: tuple[str, ...]
    methods: tuple[Method, ...]
    sources: tuple[Source, ...]
    pairs: tuple[tuple[str, str, tuple[int, ...] | None], ...] | None   # [[cases]]: (method, source, seeds)
    slurm: dict[str, Any] = field(default_factory=dict)
    downstream: tuple = ()          # [[downstream]] entries (pgbench.suite_downstream)
    repeats: int = 1                # timing repeats per case (pgbench.worker); not part of a case's id
    primary_metric: str = schema.DEFAULT_PRIMARY_METRIC   # the report's lead metric; not part of a case's id


# ------------------------------------------------------------------------- sources

def _sources(p: Parser, raw: Any, values: dict[str, str | None]) -> list[Source]:
    if not isinstance(raw, list) or not raw:
        raise p.fail("the suite needs at least one [[sources]] table")
    result: list[Source] = []
    for i, entry in enumerate(raw, 1):
        where = f"[[sources]] #{i}"
        entry = p.table(entry, where, _SOURCE_KEYS)
        if "name" not in entry:
            raise p.fail(f"{where} needs 'name' (a registered data source)")
        name = p.string(entry["name"], f"{where} name")
        label = p.string(entry.get("label", name), f"{where} label")
        where = f"[[sources]] '{label}'"
        try:
            declared = sources.get_source(name)
        except ValueError as exc:
            raise p.fail(f"{where}: {exc}") from None
        optional = p.boolean(entry.get("optional", False), f"{where} optional")
        missing: set[str] = set()
        params = substitute(p, p.table(entry.get("params", {}), f"{where} params"), values, missing)
        grid = substitute(p, p.table(entry.get("grid", {}), f"{where} grid"), values, missing)
        for key, options in grid.items():
            if not isinstance(options, list) or not options:
                raise p.fail(f"{where} grid.{key} must be a non-empty list of values")
            if key in params:
                raise p.fail(f"{where}: '{key}' is in both params and grid")
        if missing and not optional:
            raise p.fail(f"{where}: {sorted(missing)[0]} (mark the source optional = true to skip it instead)")
        common = dict(
            k=p.integer(entry["k"], f"{where} k", 1) if "k" in entry else None,
            seeds=p.seeds(entry["seeds"], f"{where} seeds") if "seeds" in entry else None,
            data_seed=p.integer(entry["data_seed"], f"{where} data_seed", 0) if "data_seed" in entry else None,
            timeout=p.timeout(entry["timeout"], f"{where} timeout") if "timeout" in entry else None,
            optional=optional)
        keys = list(grid)
        for point in itertools.product(*(grid[k] for k in keys)):
            point_params = {**params, **dict(zip(keys, point))}
            point_label = label + ("[" + ",".join(f"{k}={v}" for k, v in zip(keys, point)) + "]" if keys else "")
            unavailable = sorted(missing)[0] if missing else None
            if unavailable is None:
                try:
                    point_params = declared.bind(point_params)
                    sources.check_params(name, point_params)
                except ValueError as exc:
                    raise p.fail(f"{where}: {str(exc).replace('source heuristic', 'data source')}") from None
            result.append(Source(point_label, label, name, point_params, unavailable=unavailable, **common))
    labels = [s.label for s in result]
    for s in result:
        if labels.count(s.label) > 1:
            raise p.fail(f"two sources are both labelled '{s.label}': give the [[sources]] entries distinct labels")
    return result


# --------------------------------------------------------------------------- suite

def _pairs(p: Parser, raw: Any, methods: list[Method], srcs: list[Source],
           values: dict[str, str | None]) -> tuple | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw:
        raise p.fail("[[cases]] must be a non-empty list of tables")
    pairs = []
    for i, entry in enumerate(raw, 1):
        where = f"[[cases]] #{i}"
        entry = resolved(p, p.table(entry, where, ("method", "source", "seeds")), values, where)
        if "method" not in entry or "source" not in entry:
            raise p.fail(f"{where} needs 'method' and 'source' (labels of [[methods]] / [[sources]] entries)")
        m_ref = p.string(entry["method"], f"{where} method")
        s_ref = p.string(entry["source"], f"{where} source")
        ms = [m for m in methods if m_ref in (m.label, m.entry)]
        ss = [s for s in srcs if s_ref in (s.label, s.entry)]
        if not ms:
            raise p.fail(f"{where}: no method labelled '{m_ref}' (known: {', '.join(m.label for m in methods)})")
        if not ss:
            raise p.fail(f"{where}: no source labelled '{s_ref}' (known: {', '.join(s.label for s in srcs)})")
        seeds = p.seeds(entry["seeds"], f"{where} seeds") if "seeds" in entry else None
        pairs += [(m.label, s.label, seeds) for m in ms for s in ss]
    return tuple(pairs)


def _slurm(p: Parser, raw: Any, cli: dict[str, str] | None, values: dict[str, str | None]) -> dict[str, Any]:
    table = dict(resolved(p, p.table(raw, "[slurm]", SLURM_KEYS), values, "[slurm]"))
    for key, text in (cli or {}).items():
        if key not in SLURM_KEYS:
            raise p.fail(f"--slurm {key}: unknown SLURM setting (known: {', '.join(SLURM_KEYS)})")
        table[key] = int(text) if re.fullmatch(r"\d+", text) else text
    for key in ("timeout_min", "cpus_per_task", "mem_gb", "gpus_per_node", "array_parallelism", "cases_per_task"):
        if key in table:
            p.integer(table[key], f"[slurm] {key}", 0 if key == "gpus_per_node" else 1)
    for key in ("partition", "account", "qos", "constraint"):
        if key in table:
            p.string(table[key], f"[slurm] {key}")
    if "additional" in table:
        p.table(table["additional"], "[slurm] additional")
    return table


def builtin_suites() -> dict[str, Path]:
    """The suites shipped with pgbench, by name (file stem)."""
    return {f.stem: f for f in sorted(paths.shipped("suites").glob("*.toml"))}


def locate_suite(ref: str | Path) -> Path:
    """The suite file ``ref`` names: an existing file, else a built-in suite of that name.

    ``quick`` and ``quick.toml`` both name the built-in suite when no such file is in
    the working directory.  Raises ``SuiteError`` listing the built-in names.
    """
    path = Path(ref)
    if path.is_file():
        return path
    builtin = builtin_suites()
    name = path.stem if path.suffix == ".toml" and path.parent == Path(".") else str(ref)
    if name in builtin:
        return builtin[name]
    raise SuiteError(f"{ref}: no such suite file, and no built-in suite of that name "
                     f"(built-in: {', '.join(builtin)})")


def load_suite(path: str | Path, variables: dict[str, str] | None = None, device: str | None = None,
               timeout: float | None = None, slurm: dict[str, str] | None = None) -> Suite:
    """Parse and validate a suite file; CLI overrides (``--set``, ``--device``, ``--timeout``, ``--slurm``) apply here.

    ``path`` is a file or the name of a built-in suite (:func:`locate_suite`).

    Raises
    ------
    SuiteError
        One line ``SUITE_FILE: problem`` for anything wrong, before any data is loaded.
    """
    path = locate_suite(path)
    p = Parser(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise p.fail("no such suite file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise p.fail(f"cannot read the file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise p.fail(f"not valid TOML ({exc})") from None
    p.table(raw, "the file", ("suite", "vars", "methods", "sources", "cases", "slurm", "downstream"))
    values = resolve_variables(p, raw.get("vars", {}), variables or {})
    head = resolved(p, p.table(raw.get("suite", {}), "[suite]", _SUITE_KEYS), values, "[suite]")

    imports = tuple(p.names(head["imports"], "[suite] imports")) if "imports" in head else ()
    for module in imports:
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - any import failure is a suite problem
            raise p.fail(f"[suite] imports: cannot import '{module}' ({type(exc).__name__}: {exc})") from None

    device = device if device is not None else head.get("device", "cpu")
    if not isinstance(device, str) or not _DEVICE.fullmatch(device):
        raise p.fail(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    backend = head.get("backend")
    if backend is not None and backend not in backends.BACKENDS:
        raise p.fail(f"[suite] backend must be one of {', '.join(backends.BACKENDS)}, got {backend!r}")
    dtype = head.get("dtype", "float32")
    if dtype not in ("float32", "float64"):
        raise p.fail(f"[suite] dtype must be 'float32' or 'float64', got {dtype!r}")
    repeats = p.integer(head.get("repeats", 1), "[suite] repeats", 1)
    if repeats > MAX_REPEATS:
        raise p.fail(f"[suite] repeats must be at most {MAX_REPEATS}, got {repeats}")
    primary_metric = head.get("primary_metric", schema.DEFAULT_PRIMARY_METRIC)
    if primary_metric not in schema.PRIMARY_METRICS:
        raise p.fail(f"[suite] primary_metric must be one of {', '.join(schema.PRIMARY_METRICS)}, "
                     f"got {primary_metric!r}")
    description = head.get("description", "")
    if not isinstance(description, str):
        raise p.fail("[suite] description must be a string")

    downstream = parse_downstream(p, raw.get("downstream"), values)
    only_downstream = bool(downstream) and "methods" not in raw and "sources" not in raw
    methods = [] if only_downstream else _methods(p, raw.get("methods"), values)
    srcs = [] if only_downstream else _sources(p, raw.get("sources"), values)
    if timeout is not None:  # the command line wins over every per-source timeout
        srcs = [dataclasses.replace(s, timeout=None) for s in srcs]
    return Suite(
        path=path,
        name=p.string(head.get("name", path.stem), "[suite] name"),
        description=description,
        seeds=p.seeds(head.get("seeds", [0]), "[suite] seeds"),
        n_iter=p.integer(head.get("n_iter", 15), "[suite] n_iter", 1),
        device=device,
        timeout=p.timeout(timeout if timeout is not None else head.get("timeout", DEFAULT_TIMEOUT),
                          "--timeout" if timeout is not None else "[suite] timeout"),
        k=p.integer(head["k"], "[suite] k", 1) if "k" in head else None,
        backend=backend,
        dtype=dtype,
        tol=p.number(head["tol"], "[suite] tol", False) if "tol" in head else None,
        imports=imports,
        methods=tuple(methods),
        sources=tuple(srcs),
        pairs=_pairs(p, raw.get("cases"), methods, srcs, values),
        slurm=_slurm(p, raw.get("slurm", {}), slurm, values),
        downstream=downstream,
        repeats=repeats,
        primary_metric=primary_metric,
    )
