"""The built-in comparison: every heuristic combination on a few synthetic sets.

Used by ``python -m pgbench demo``: a table in seconds with no result store (the
suites are the real harness); returns plain rows so the CLI formats them.
"""

from __future__ import annotations

from typing import Any

from . import registry, synthetic
from .engine import kmeans

COMBINATIONS_EXTRA = [("pg", "pg", "dwc")]   # "PG full"


def demo_datasets(quick: bool = True, seed: int = 0) -> dict[str, tuple[Any, int]]:
    """Name -> (X, k).  Quick sets run every combination in well under a minute on 2 cores."""
    scale = 1 if quick else 8
    return {
        "layer-ffn": (synthetic.layer_subvectors(24_576 * scale, 4, seed=seed), 512 * scale),
        "duplicates": (synthetic.with_duplicates(8_000 * scale, 4, 0.6, 40, seed=seed), 256 * scale),
        "overestimated-k": (synthetic.gaussian_mixture(6_000 * scale, 2, 10, std=0.02, seed=seed), 200 * scale),
    }


def combinations() -> list[tuple[str, str, str | None]]:
    combos = [(i, r, None) for i in registry.names("init") for r in registry.names("resolve")]
    if "dwc" in registry.names("consolidate"):
        combos += COMBINATIONS_EXTRA
    return combos


def run_demo(n_iter: int = 15, seed: int = 0, device: str = "cpu", quick: bool = True) -> list[dict]:
    rows = []
    for data_name, (X, k) in demo_datasets(quick, seed).items():
        for init, resolve, consolidate in combinations():
            r = kmeans(X, k, init=init, resolve=resolve, consolidate=consolidate, n_iter=n_iter,
                       seed=seed, device=device)
            rows.append({"data": data_name, "n": X.shape[0], "k": k, **r.summary()})
    return rows


def format_table(rows: list[dict]) -> str:
    cols = ["data", "init", "resolve", "consolidate", "status", "n_empty_initial", "n_empty_final",
            "rounds_total", "seconds_total", "inertia"]
    heads = ["data", "init", "resolve", "consol.", "status", "empty@1", "empty@end", "rounds", "seconds", "inertia"]

    def fmt(c, v):
        if c == "seconds_total":
            return f"{v:.2f}"
        if c == "inertia":
            return f"{v:.5g}"
        return "-" if v is None else str(v)

    cells = [[fmt(c, r[c]) for c in cols] for r in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(heads)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths))  # noqa: E731
    return "\n".join([line(heads), line(["-" * w for w in widths])] + [line(r) for r in cells])
