"""The API half of the bad-input table (issue 9): the rows, and a classifier that runs them on any checkout.

A row calls one public entry point with one bad input.  The contract: a ``ValueError``
whose message is ONE line and contains every string of ``expect`` (the offending
value, and for heuristic parameters the parameter's name), raised before any work.
``classify`` sorts what really happened into one of

    clear      ValueError, one line, naming the value
    unclear    ValueError, but multi-line or not naming the value
    traceback  any other exception (or a hang past ``ROW_TIMEOUT`` seconds)
    silent     no exception at all

Rows for heuristic parameters are generated from the registry's declarations:
every constraint gets a value just outside it (below ``low``, above ``high``, the
open bound itself, NaN and inf for floats, 1.5 / a bool / a string / None for
ints, an unknown option for choices, 2**64 for 64-bit ints).

Running the rows against another checkout (the original code, say): build them
here, where the declarations exist, then classify them there::

    python tests/bad_inputs.py dump /tmp/rows.pkl
    PYTHONPATH=/tmp/orig python tests/bad_inputs.py classify /tmp/rows.pkl

Each row names its target (a function of this module), so the pickle holds only
data; the targets call whatever ``pgbench`` the interpreter imports.
"""

from __future__ import annotations

import pickle
import signal
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

ROW_TIMEOUT = 60
OUTCOMES = ("clear", "unclear", "traceback", "silent")
NAN, INF = float("nan"), float("inf")


@dataclass
class Row:
    """One bad input: ``TARGETS[target](*args, **kwargs)`` must raise a one-line ValueError with ``expect``."""

    id: str
    target: str
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    expect: tuple[str, ...] = ()


# ------------------------------------------------------------------ targets

def _kmeans(*args, **kwargs):
    import pgbench

    return pgbench.kmeans(*args, **kwargs)


def _fit(estimator_params, X, sample_weight=None):
    import pgbench

    return pgbench.KMeans(**estimator_params).fit(X, sample_weight=sample_weight)


def _predict(X):
    import pgbench

    fitted = pgbench.KMeans(n_clusters=2, init="random", resolve="sklearn", n_iter=2, random_state=0)
    return fitted.fit(_blobs(20, 2)).predict(X)


def _bind(stage, name, params):
    from pgbench import registry

    return registry.get(stage, name).bind(params)


def _pq(function, *args, **kwargs):
    from pgbench import pq

    return getattr(pq, function)(*args, **kwargs)


def _load(name, **kwargs):
    from pgbench import sources

    return list(sources.load(name, **kwargs))


TARGETS = {"kmeans": _kmeans, "KMeans.fit": _fit, "KMeans.predict": _predict, "bind": _bind, "pq": _pq,
           "sources.load": _load}


# --------------------------------------------------------------------- rows

def _blobs(n: int = 40, d: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (torch.arange(n) % 4)[:, None].float() * 3 + torch.randn(n, d, generator=g) * 0.1


def _with(X: torch.Tensor, value: float) -> torch.Tensor:
    X = X.clone()
    X[3, 1] = value
    return X


def _kmeans_rows() -> list[Row]:
    X = _blobs()
    n = X.shape[0]
    ok = dict(n_iter=2)
    big = torch.zeros(8, 2)
    big[0, 0] = 1e19                                   # squared norm 1e38: 4 R^2 n overflows float32
    rows = [
        Row("X nan", "kmeans", (_with(X, NAN), 4), ok, ("nan", "row 3")),
        Row("X inf", "kmeans", (_with(X, INF), 4), ok, ("inf",)),
        Row("X -inf numpy", "kmeans", (_with(X, -INF).numpy(), 4), ok, ("-inf",)),
        Row("X 1-D", "kmeans", (X[:, 0], 4), ok, ("(40,)",)),
        Row("X 3-D", "kmeans", (X.reshape(2, 20, 2), 4), ok, ("(2, 20, 2)",)),
        Row("X no points", "kmeans", (X[:0], 1), ok, ("(0, 2)",)),
        Row("X no features", "kmeans", (X[:, :0], 1), ok, ("(40, 0)",)),
        Row("X strings", "kmeans", ([["a", "b"], ["c", "d"]], 1), ok, ("<U1",)),
        Row("X ragged", "kmeans", ([[1.0, 2.0], [3.0]], 1), ok, ("X",)),
        Row("X complex", "kmeans", (X.to(torch.complex64), 4), ok, ("complex",)),
        Row("X None", "kmeans", (None, 1), ok, ("object",)),
        Row("X squares overflow float32", "kmeans", (big, 2), ok, ("1e+38", "float32")),
        Row("X squares overflow float32 (faiss)", "kmeans", (big, 2), dict(ok, backend="faiss"), ("1e+38",)),
        Row("X beyond float32", "kmeans", (np.full((6, 2), 1e39), 2), ok, ("1e+39", "float32")),
        Row("X squares underflow float32", "kmeans", (torch.full((6, 2), 1e-25), 2), ok, ("float32", "e-50")),
        Row("k zero", "kmeans", (X, 0), ok, ("0",)),
        Row("k negative", "kmeans", (X, -2), ok, ("-2",)),
        Row("k float", "kmeans", (X, 1.5), ok, ("1.5",)),
        Row("k numpy float", "kmeans", (X, np.float64(2.0)), ok, ("2.0",)),
        Row("k bool", "kmeans", (X, True), ok, ("True",)),
        Row("k string", "kmeans", (X, "3"), ok, ("'3'",)),
        Row("k None", "kmeans", (X, None), ok, ("None",)),
        Row("k > n", "kmeans", (X, n + 1), ok, (str(n + 1),)),
        Row("seed negative", "kmeans", (X, 4), dict(ok, seed=-1), ("-1",)),
        Row("seed 2**64", "kmeans", (X, 4), dict(ok, seed=2**64), (str(2**64),)),
        Row("seed float", "kmeans", (X, 4), dict(ok, seed=1.5), ("1.5",)),
        Row("seed bool", "kmeans", (X, 4), dict(ok, seed=True), ("True",)),
        Row("n_iter zero", "kmeans", (X, 4), dict(n_iter=0), ("0",)),
        Row("n_iter float", "kmeans", (X, 4), dict(n_iter=2.5), ("2.5",)),
        Row("tol nan", "kmeans", (X, 4), dict(ok, tol=NAN), ("tol", "nan")),
        Row("tol inf", "kmeans", (X, 4), dict(ok, tol=INF), ("tol", "inf")),
        Row("tol negative", "kmeans", (X, 4), dict(ok, tol=-1e-3), ("tol", "-0.001")),
        Row("tol string", "kmeans", (X, 4), dict(ok, tol="small"), ("tol", "'small'")),
        Row("dtype float16", "kmeans", (X, 4), dict(ok, dtype="float16"), ("'float16'",)),
        Row("dtype torch.int32", "kmeans", (X, 4), dict(ok, dtype=torch.int32), ("torch.int32",)),
        Row("device tpu", "kmeans", (X, 4), dict(ok, device="tpu"), ("'tpu'",)),
        Row("device int", "kmeans", (X, 4), dict(ok, device=[0]), ("[0]",)),
        Row("backend unknown", "kmeans", (X, 4), dict(ok, backend="blas"), ("'blas'",)),
        Row("backend faiss float64", "kmeans", (X, 4), dict(ok, backend="faiss", dtype="float64"), ("float64",)),
        Row("init unknown", "kmeans", (X, 4), dict(ok, init="kmeans||"), ("'kmeans||'",)),
        Row("init number", "kmeans", (X, 4), dict(ok, init=3), ("3",)),
        Row("init wrong shape", "kmeans", (X, 4), dict(ok, init=torch.zeros(3, 5)), ("(3, 5)",)),
        Row("init nan", "kmeans", (X, 2), dict(ok, init=torch.tensor([[0.0, NAN], [1.0, 1.0]])), ("nan",)),
        Row("init far away", "kmeans", (X, 2), dict(ok, init=torch.tensor([[0.0, 3e18], [1.0, 1.0]])),
            ("float32", "9e+36")),
        Row("resolve unknown", "kmeans", (X, 4), dict(ok, resolve="nope"), ("'nope'",)),
        Row("resolve None", "kmeans", (X, 4), dict(ok, resolve=None), ("None",)),
        Row("consolidate unknown", "kmeans", (X, 4), dict(ok, consolidate="dbscan"), ("'dbscan'",)),
        Row("unknown parameter", "kmeans", (X, 4), dict(ok, colour=1), ("'colour'",)),
        Row("parameter of an unselected heuristic", "kmeans", (X, 4), dict(ok, resolve="sklearn", max_passes=3),
            ("'max_passes'",)),
        Row("weights nan", "kmeans", (X, 4), dict(ok, sample_weight=_with(torch.ones(n, 2), NAN)[:, 1]),
            ("nan", "index 3")),
        Row("weights inf", "kmeans", (X, 4), dict(ok, sample_weight=[INF] + [1.0] * (n - 1)), ("inf",)),
        Row("weights negative", "kmeans", (X, 4), dict(ok, sample_weight=[1.0] * (n - 1) + [-1.0]), ("-1.0",)),
        Row("weights all zero", "kmeans", (X, 4), dict(ok, sample_weight=np.zeros(n)), ("zero",)),
        Row("weights short", "kmeans", (X, 4), dict(ok, sample_weight=np.ones(n - 1)), (f"({n - 1},)",)),
        Row("weights 2-D", "kmeans", (X, 4), dict(ok, sample_weight=np.ones((n, 2))), (f"({n}, 2)",)),
        Row("weights strings", "kmeans", (X, 4), dict(ok, sample_weight=["a"] * n), ("'a'",)),
        Row("weights beyond float32", "kmeans", (X, 4), dict(ok, sample_weight=[1e39] * n), ("e+39", "float32")),
        Row("weights x squares overflow", "kmeans", (X * 1e16, 4), dict(ok, sample_weight=[1e3] * n),
            ("float32", "total weight")),
    ]
    return rows


def _estimator_rows() -> list[Row]:
    X = _blobs().numpy()
    fit = dict(n_clusters=4, init="random", resolve="sklearn", n_iter=2, random_state=0)
    return [
        Row("KMeans n_clusters 0", "KMeans.fit", (dict(fit, n_clusters=0), X), {}, ("0",)),
        Row("KMeans n_clusters float", "KMeans.fit", (dict(fit, n_clusters=1.5), X), {}, ("1.5",)),
        Row("KMeans n_clusters > n", "KMeans.fit", (dict(fit, n_clusters=41), X), {}, ("41",)),
        Row("KMeans X 1-D", "KMeans.fit", (fit, X[:, 0]), {}, ("1D",)),
        Row("KMeans X nan", "KMeans.fit", (fit, _with(torch.from_numpy(X), NAN).numpy()), {}, ("NaN",)),
        Row("KMeans X inf", "KMeans.fit", (fit, _with(torch.from_numpy(X), INF).numpy()), {}, ("infinity",)),
        Row("KMeans X strings", "KMeans.fit", (fit, [["a", "b"]] * 8), {}, ("'a'",)),
        Row("KMeans X squares overflow", "KMeans.fit", (fit, X * 1e19), {}, ("float32",)),
        Row("KMeans X float64 beyond float32", "KMeans.fit", (dict(fit, n_clusters=2), np.full((6, 2), 1e39)), {},
            ("1e+39", "float32")),
        Row("KMeans params not a dict", "KMeans.fit", (dict(fit, params="x"), X), {}, ("str",)),
        Row("KMeans params engine argument", "KMeans.fit", (dict(fit, params={"n_iter": 3}), X), {}, ("n_iter",)),
        Row("KMeans params out of range", "KMeans.fit", (dict(fit, resolve="pg", params={"max_passes": -1}), X), {},
            ("max_passes", "-1")),
        Row("KMeans random_state negative", "KMeans.fit", (dict(fit, random_state=-1), X), {}, ("-1",)),
        Row("KMeans random_state string", "KMeans.fit", (dict(fit, random_state="x"), X), {}, ("'x'",)),
        Row("KMeans tol nan", "KMeans.fit", (dict(fit, tol=NAN), X), {}, ("nan",)),
        Row("KMeans dtype", "KMeans.fit", (dict(fit, dtype="float16"), X), {}, ("'float16'",)),
        Row("KMeans device", "KMeans.fit", (dict(fit, device="tpu"), X), {}, ("'tpu'",)),
        Row("KMeans init unknown", "KMeans.fit", (dict(fit, init="nope"), X), {}, ("'nope'",)),
        Row("KMeans weights negative", "KMeans.fit", (fit, X), dict(sample_weight=[-1.0] + [1.0] * 39), ("-1.0",)),
        Row("KMeans weights nan", "KMeans.fit", (fit, X), dict(sample_weight=[NAN] + [1.0] * 39), ("NaN",)),
        Row("KMeans weights all zero", "KMeans.fit", (fit, X), dict(sample_weight=np.zeros(40)), ("zero",)),
        Row("KMeans predict features", "KMeans.predict", (np.zeros((3, 3)),), {}, ("3 features",)),
        Row("KMeans predict 1-D", "KMeans.predict", (np.zeros(3),), {}, ("1D",)),
    ]


def _pq_rows() -> list[Row]:
    W = torch.randn(6, 8)
    sub = torch.randn(12, 4)
    C, A = torch.randn(4, 4), torch.zeros(12, dtype=torch.long)
    return [
        Row("pq block_size 0", "pq", ("weight_to_subvectors", W, 0), {}, ("0",)),
        Row("pq block_size float", "pq", ("weight_to_subvectors", W, 2.0), {}, ("2.0",)),
        Row("pq block_size not dividing", "pq", ("weight_to_subvectors", W, 3), {}, ("3", "8")),
        Row("pq weight not a tensor", "pq", ("weight_to_subvectors", W.tolist(), 4), {}, ("list",)),
        Row("pq weight 3-D", "pq", ("weight_to_subvectors", W.reshape(2, 3, 8), 4), {}, ("(2, 3, 8)",)),
        Row("pq shape mismatch", "pq", ("subvectors_to_weight", sub, (6, 4)), {}, ("(6, 4)",)),
        Row("pq shape negative", "pq", ("subvectors_to_weight", sub, (-6, 8)), {}, ("-6",)),
        Row("pq subvectors 1-D", "pq", ("subvectors_to_weight", sub.flatten(), (6, 8)), {}, ("(48,)",)),
        Row("pq assignments out of range", "pq", ("reconstruct_weight", C, A + 4, (6, 8)), {}, ("[4, 4]",)),
        Row("pq assignments float", "pq", ("reconstruct_weight", C, A.float(), (6, 8)), {}, ("float32",)),
        Row("pq centroids 1-D", "pq", ("reconstruct_weight", C[0], A, (6, 8)), {}, ("(4,)",)),
        Row("pq relative_error nan", "pq", ("relative_error", W, _with(W, NAN)), {}, ("nan",)),
        Row("pq relative_error zero weight", "pq", ("relative_error", torch.zeros(2, 2), torch.ones(2, 2)), {},
            ("all-zero",)),
        Row("pq relative_error shapes", "pq", ("relative_error", W, W.T), {}, ("(8, 6)",)),
        Row("pq compression_ratio not layers", "pq", ("compression_ratio", [3]), {}, ("int",)),
        Row("pq size_mb other_params negative", "pq", ("size_mb", [], -1), {}, ("-1",)),
        Row("pq LayerSize block_size", "pq", ("LayerSize", 48, 5, 4), {}, ("5", "48")),
        Row("pq LayerSize k 0", "pq", ("LayerSize", 48, 4, 0), {}, ("0",)),
    ]


def _source_rows() -> list[Row]:
    return [
        Row("source unknown", "sources.load", ("nope",), {}, ("'nope'",)),
        Row("source unknown parameter", "sources.load", ("gaussian_mixture",), dict(colour=1), ("'colour'",)),
        Row("source n negative", "sources.load", ("gaussian_mixture",), dict(n=-1), ("-1",)),
        Row("source n float", "sources.load", ("gaussian_mixture",), dict(n=1.5), ("1.5",)),
        Row("source std nan", "sources.load", ("gaussian_mixture",), dict(n=50, std=NAN), ("nan",)),
        Row("source spread inf", "sources.load", ("gaussian_mixture",), dict(n=50, spread=INF), ("inf",)),
        Row("source k zero", "sources.load", ("gaussian_mixture",), dict(n=50, k=0), ("0",)),
        Row("source k float", "sources.load", ("gaussian_mixture",), dict(n=50, k=2.5), ("2.5",)),
        Row("source block_size not dividing", "sources.load", ("layer_weights",),
            dict(out_features=8, in_features=8, block_size=3), ("3",)),
        Row("source distribution", "sources.load", ("layer_weights",), dict(distribution="normal"), ("'normal'",)),
        Row("source df", "sources.load", ("layer_weights",), dict(out_features=8, in_features=8, df=2.0), ("2.0",)),
        Row("source fractions", "sources.load", ("duplicates",), dict(n=50, exact_fraction=0.9, near_fraction=0.5),
            ("0.9",)),
        Row("source imbalance", "sources.load", ("imbalanced",), dict(n=50, imbalance=0.5), ("0.5",)),
        Row("source overestimated k", "sources.load", ("overestimated_k",), dict(n=50, k=3), ("3",)),
        Row("source directory", "sources.load", ("clustering_file",), dict(directory="/nonexistent/x"),
            ("/nonexistent/x",)),
        Row("source seed negative", "sources.load", ("gaussian_mixture",), dict(n=50, seed=-1), ("-1",)),
        Row("source seed 2**64", "sources.load", ("gaussian_mixture",), dict(n=50, seed=2**64), (str(2**64),)),
    ]


def bad_values(p) -> list[tuple[str, Any]]:
    """(label, value) pairs just outside the declaration ``p`` (a :class:`pgbench.params.Param`)."""
    from pgbench import params as P

    out: list[tuple[str, Any]] = []
    if not p.none:
        out.append(("None", None))
    if isinstance(p, P.Choice):
        return out + [("unknown option", "bogus"), ("a number", 3)]
    if isinstance(p, P.Flag):
        return out + [("a number", 1), ("a string", "yes")]
    if isinstance(p, P.Typed):
        return out + [("a set", {1})]
    out += [("a string", "x"), ("a bool", True)]
    if isinstance(p, P.Int):
        out += [("1.5", 1.5), ("2**64", 2**64)]
        if p.low is not None:
            out.append(("below low", p.low - 1))
        if p.high is not None:
            out.append(("above high", p.high + 1))
        return out
    out += [("nan", NAN), ("inf", INF), ("-inf", -INF)]
    if p.low is not None:
        out.append(("below low", p.low - 1))
        if p.closed in ("right", "neither"):
            out.append(("open low", p.low))
    if p.high is not None:
        out.append(("above high", p.high + 1))
        if p.closed in ("left", "neither"):
            out.append(("open high", p.high))
    return out


def _declared_rows() -> list[Row]:
    from pgbench import registry

    rows = []
    for stage in registry.STAGES:
        for name in registry.names(stage):
            for p in registry.get(stage, name).params.values():
                for label, value in bad_values(p):
                    shown = repr(float(value)) if isinstance(value, float) else repr(value)
                    rows.append(Row(f"{stage} {name} {p.name} {label}", "bind", (stage, name, {p.name: value}), {},
                                    (f"'{p.name}'", shown, f"'{name}'")))
    return rows


def _declared_kmeans_rows() -> list[Row]:
    """The same declarations reached through ``pgbench.kmeans``: one out-of-range value per parameter."""
    from pgbench import registry

    X = _blobs()
    rows = []
    for stage in registry.STAGES:
        for name in registry.names(stage):
            for p in registry.get(stage, name).params.values():
                label, value = bad_values(p)[-1]
                picked = {"init": "random", "resolve": "none", "consolidate": None, stage: name}
                rows.append(Row(f"kmeans {stage} {name} {p.name} {label}", "kmeans", (X, 4),
                                dict(n_iter=2, **picked, **{p.name: value}), (p.name, repr(value))))
    return rows


def rows() -> list[Row]:
    """Every row of the API table."""
    return (_kmeans_rows() + _estimator_rows() + _pq_rows() + _source_rows() + _declared_rows()
            + _declared_kmeans_rows())


# --------------------------------------------------------------- classifier

def _alarm(signum, frame):
    raise TimeoutError(f"no answer within {ROW_TIMEOUT} s")


def classify(row: Row) -> tuple[str, str]:
    """(outcome, message) of running ``row`` here; outcome is one of ``OUTCOMES``."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(ROW_TIMEOUT)
    try:
        TARGETS[row.target](*row.args, **row.kwargs)
    except ValueError as exc:
        text = str(exc)
        if "\n" in text.strip() or not all(e in text for e in row.expect):
            return "unclear", text
        return "clear", text
    except Exception as exc:  # noqa: BLE001 - any other exception is what this counts
        return "traceback", f"{type(exc).__name__}: {exc}"
    else:
        return "silent", ""
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def count(table: list[Row], verbose: bool = False) -> dict[str, int]:
    """Outcome counts over ``table``; with ``verbose`` every non-clear row is printed."""
    import logging
    import warnings

    logging.disable(logging.CRITICAL)
    totals = dict.fromkeys(OUTCOMES, 0)
    for row in table:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outcome, message = classify(row)
        totals[outcome] += 1
        if verbose and outcome != "clear":
            print(f"{outcome:9s} {row.id}: {' | '.join(message.splitlines())[:200]}")
    return totals


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("dump", "classify"):
        print(__doc__.split("\n\n")[-2], file=sys.stderr)
        return 2
    if argv[0] == "dump":
        with open(argv[1], "wb") as f:
            pickle.dump(rows(), f)
        return 0
    with open(argv[1], "rb") as f:
        table = pickle.load(f)
    import pgbench

    totals = count(table, verbose=True)
    print(f"pgbench from {pgbench.__file__}: {len(table)} rows: "
          + ", ".join(f"{k} {v}" for k, v in totals.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
