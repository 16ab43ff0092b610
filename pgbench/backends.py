"""Nearest-centroid assignment backends: chunked torch and direct (CPU and CUDA), and faiss.

Each returns ``labels`` (n,) int64 and ``sq_dists`` (n,) squared L2 distances, and
none materialises the full (n, k) distance matrix: ``torch`` works in row chunks of
``||x||^2 - 2 x.c + ||c||^2`` sized to a byte budget, ``faiss`` runs an exact flat L2
search, and ``direct`` computes fairseq's E-step itself, ``||x - c||_2`` from the
coordinate differences (``pq/em.py::EM.compute_distances``:
``(W[None, :, :] - C[:, :, None]).norm(p=2, dim=1)`` then ``argmin`` over the
centroids), in row chunks (:func:`direct_assign`).  It is the only one that does
not lose the small differences the expanded formula cancels: fairseq's +-1e-6
splits of centroids far from the origin are decided as fairseq decides them.  On
a CPU with float32 data, :class:`DirectAssign` gives the same output bitwise
several times faster (a float64 k-d tree's two nearest centroids, d <= 4, or one
GEMM of lower bounds, d > 4, where the gap certifies the answer, :func:`direct_assign`
at near ties, and an update of the previous labels when only a few centroids moved,
as in fairseq's rounds).  Ties go to the lowest centroid index in all
three (argmin / faiss ordering).

Default per device (measured on a 589,824 x 4, k=3072 layer-shaped set on a
2-core CPU: faiss-cpu 0.12 s per assignment, torch 0.83 s): ``faiss`` on CPU when
faiss is importable and the data is float32, ``torch`` on CUDA.
"""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np
import torch

BACKENDS = ("torch", "faiss", "direct")

# Bytes of distance matrix per chunk: small on CPU to stay in cache, large on GPU.
_CHUNK_BYTES = {"cpu": 3 * 2**20, "cuda": 512 * 2**20}


@functools.lru_cache(maxsize=1)
def faiss_module():
    """The faiss module, or None when it is not installed."""
    try:
        import faiss  # noqa: PLC0415
    except ImportError:
        return None
    return faiss


def faiss_has_gpu() -> bool:
    faiss = faiss_module()
    return faiss is not None and hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def default_backend(device: torch.device, dtype: torch.dtype) -> str:
    """The faster backend for ``device``: faiss on CPU (float32), torch otherwise."""
    if device.type == "cpu" and dtype == torch.float32 and faiss_module() is not None:
        return "faiss"
    return "torch"


def check_backend(backend: str, device: torch.device, dtype: torch.dtype) -> None:
    """Raise ValueError when ``backend`` cannot run on ``device`` with ``dtype``."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend '{backend}' (known: {', '.join(BACKENDS)}).")
    if backend == "faiss":
        if faiss_module() is None:
            raise ValueError("backend 'faiss' needs the faiss package (pip install faiss-cpu).")
        if dtype != torch.float32:
            raise ValueError("backend 'faiss' works on float32 data only; use backend='torch' for float64.")
        if device.type == "cuda" and not faiss_has_gpu():
            raise ValueError("backend 'faiss' on cuda needs faiss-gpu (pip install 'pgbench[gpu]').")


def torch_assign(X: torch.Tensor, C: torch.Tensor, chunk_rows: int | None = None):
    """Chunked exact assignment in torch.

    X : (n, d), C : (k, d) on the same device.  Returns labels (n,) int64 and
    squared distances (n,), clamped at 0 against cancellation.
    """
    n, k = X.shape[0], C.shape[0]
    if chunk_rows is None:
        budget = _CHUNK_BYTES.get(X.device.type, _CHUNK_BYTES["cpu"])
        chunk_rows = max(64, budget // (max(k, 1) * X.element_size()))
    c2 = (C * C).sum(1)                      # (k,)
    ct = (-2.0 * C).t().contiguous()         # (d, k)
    labels = torch.empty(n, dtype=torch.int64, device=X.device)
    sq = torch.empty(n, dtype=X.dtype, device=X.device)
    for start in range(0, n, chunk_rows):
        x = X[start:start + chunk_rows]                    # (m, d)
        partial = torch.addmm(c2, x, ct)                   # (m, k) = ||c||^2 - 2 x.c
        best, idx = partial.min(1)                         # (m,)
        labels[start:start + chunk_rows] = idx
        sq[start:start + chunk_rows] = best + (x * x).sum(1)
    return labels, sq.clamp_(min=0)


def direct_assign(X: torch.Tensor, C: torch.Tensor, chunk_rows: int | None = None):
    """fairseq's exact assignment: argmin over centroids of ``||x - c||_2`` from the differences.

    X : (n, d), C : (k, d) on the same device.  ``torch.cdist`` with
    ``compute_mode="donot_use_mm_for_euclid_dist"`` forms every x - c and its
    2-norm, as fairseq's ``(W[None, :, :] - C[:, :, None]).norm(p=2, dim=1)`` does
    (without fairseq's (k, d, n) temporary), in chunks of rows whose (rows, k)
    distances fit the byte budget; ``argmin`` takes the first index on a tie, as
    fairseq's does.  Returns labels (n,) int64 and the squared distances (n,) to the
    chosen centroids, summed from the differences.
    """
    n, k = X.shape[0], C.shape[0]
    if chunk_rows is None:
        budget = _CHUNK_BYTES.get(X.device.type, _CHUNK_BYTES["cpu"])
        chunk_rows = max(64, budget // (max(k, 1) * X.element_size()))
    labels = torch.empty(n, dtype=torch.int64, device=X.device)
    for start in range(0, n, chunk_rows):
        dist = torch.cdist(X[start:start + chunk_rows], C, compute_mode="donot_use_mm_for_euclid_dist")  # (m, k)
        labels[start:start + chunk_rows] = torch.argmin(dist, dim=1)
    sq = ((X - C[labels]) ** 2).sum(1)
    return labels, sq


class DirectAssign:
    """:func:`direct_assign`'s labels and squared distances, bitwise, several times faster (CPU).

    The exact E-step compares ``||x - c||_2`` computed in float32 from the
    differences for all k centroids.  Here a k-d tree of the centroids in float64
    (``scipy.spatial.cKDTree``) gives every point its two nearest centroids, at
    distances d1 <= d2 exact to float64 rounding.  Where d2 (1 - m) > d1 (1 + m),
    with m = 4 (d + 4) float32 units (four times the relative error of a float32
    direct distance), the float32 direct distance to the nearest is below every
    other one, so it is the direct argmin, with no tie.  The few points closer to
    a tie than that (a fairseq split's +-eps pair, duplicate centroids) get
    :func:`direct_assign` over all k centroids, so its lowest-index rule decides.

    Above d = 4 (``TREE_MAX_DIM``) the tree loses, and a screen takes over
    (``SCREEN_MIN_DIM``, :meth:`_screened`): one GEMM gives a certified lower bound on
    every squared distance, and the two smallest settle a point.  The incremental
    update of fairseq's rounds (only a few centroids moved) works at every d.
    float64 data, non-finite centroids or a missing scipy go to :func:`direct_assign`
    itself.  ``last_counts`` says how many points the tree or the screen settled and
    how many went to the full computation.

    Measured, one thread, k-means-like centroids (4 Lloyd steps on a sample of
    ``synthetic.layer_subvectors``), min of 3, us per point, fast path against
    :func:`direct_assign` (or the previous screen at d = 16):
    1M x 8, k = 768: 0.63 against 5.1 (8.1x; with 5 % of the centroids fairseq
    +-1e-6 split pairs, 3 % of the points go to the full computation: 0.67 against
    6.3); 147,456 x 16, k = 3072: 2.6 against 15.2 with the previous screen (5.8x;
    with the splits 4.2 against 16.7); 589,824 x 4, k = 3072 (tree, unchanged): 1.6-1.8.
    A whole fairseq k-means of the 147,456 x 16 set (k = 3072, 15 iterations, one
    thread) took 6.5-8.3 s against 45-49 s, with the same labels, centroids and rounds.
    The machine is shared (2 cores): runs vary by up to 2x; these are the quieter ones.
    """

    #: at most this many moved centroids since the previous call: update the previous labels instead
    INCREMENTAL_MAX = 8
    #: above this dimension the k-d tree loses to the screen (d = 8, k = 3072, one thread: 69 us per
    #: point for the tree); at d = 4 the tree wins at k = 3072 (1.8 against 2.9 us per point for the
    #: screen) but not at k = 768 (2.1 against 0.8)
    TREE_MAX_DIM = 4
    #: from this dimension on, the screen (:meth:`_screened`) is used instead of the full computation
    #: (us per point against direct_assign, one thread: d = 5, k = 768: 0.94 against 4.6; d = 5,
    #: k = 3072: 4.4 against 20; d = 8, k = 3072: 3.0 against 15.4; d = 8, k = 768: 0.63 against 5.1)
    SCREEN_MIN_DIM = 5
    #: bytes of the (rows, k) lower-bound block of :meth:`_screened`: 4 MB (in L3; 128 KB to 8 MB
    #: measured, per-block overhead and GEMM efficiency favour the larger ones up to 2-4 MB)
    SCREEN_CHUNK_BYTES = 2**22

    def __init__(self, X: torch.Tensor):
        self.source = X
        self.last_counts: dict[str, int] = {}
        self._prev: tuple[torch.Tensor, torch.Tensor] | None = None   # (centroids, labels) of the last call
        self._own: torch.Tensor | None = None        # direct distance of each point to its label, when known

    @functools.cached_property
    def points(self) -> np.ndarray:
        """The data in float64 for the k-d tree (n, d): made on first use, since only d <= 4 queries it
        (at d = 8 on the embedding it would be 300 MB per worker for nothing)."""
        return self.source.detach().cpu().double().numpy()

    def __call__(self, X: torch.Tensor, C: torch.Tensor):
        exact = (_kdtree() is not None and X.dtype == torch.float32 and C.shape[0] >= 2
                 and bool(torch.isfinite(C).all()))
        if not exact:
            self._prev = self._own = None
            self.last_counts = {"tree": 0, "full": X.shape[0]}
            return direct_assign(X, C)
        if X is not self.source:
            return self._tree(X, C, lambda: X.detach().cpu().double().numpy())
        moved = None
        if self._prev is not None and self._prev[0].shape == C.shape:
            moved = torch.nonzero((C != self._prev[0]).any(1)).flatten()
        if moved is not None and moved.numel() <= self.INCREMENTAL_MAX:
            labels = self._incremental(X, C, moved)
        else:
            labels = self._tree(X, C, lambda: self.points)[0]
            self._own = None
        self._prev = (C.clone(), labels)
        return labels.clone(), ((X - C[labels]) ** 2).sum(1)

    def _tree(self, X: torch.Tensor, C: torch.Tensor, points: Callable[[], np.ndarray]):
        """Labels and squared distances of ``X``; ``points()`` gives ``X`` in float64, asked only where the
        k-d tree runs (d <= 4)."""
        if X.shape[1] >= self.SCREEN_MIN_DIM:
            return self._screened(X, C)
        if X.shape[1] > self.TREE_MAX_DIM:
            self.last_counts = {"tree": 0, "full": X.shape[0]}
            return direct_assign(X, C)
        tree = _kdtree()(C.detach().cpu().double().numpy())
        dist, idx = tree.query(points(), k=2, workers=torch.get_num_threads())       # (n, 2) each, ascending
        margin = 4.0 * (X.shape[1] + 4) * 2.0 ** -24
        near_tie = torch.from_numpy(dist[:, 1] * (1 - margin) <= dist[:, 0] * (1 + margin))
        labels = torch.from_numpy(idx[:, 0].astype(np.int64)).to(X.device)
        full = torch.nonzero(near_tie).flatten().to(X.device)
        if full.numel():
            labels[full] = direct_assign(X[full], C)[0]
        self.last_counts = {"tree": int(X.shape[0] - full.numel()), "full": int(full.numel())}
        return labels, ((X - C[labels]) ** 2).sum(1)

    def _screened(self, X: torch.Tensor, C: torch.Tensor):
        """d > 4: one GEMM gives a lower bound on every squared distance; the two smallest settle a point.

        Notation: u = 2^-24, s_j = ||c_j||^2 and D_j = ||x - c_j||^2 exactly, g = 4 (2d + 4) u.
        The GEMM computes l_j = fl(b_j - 2 x.c_j) with the bias b_j = fl(fl(s_j) (1 - g)):
        b_j is within (d + 2) u s_j of s_j (1 - g), and the dot product of d + 1 terms is
        within (d + 1) u (b_j + x^2 + s_j) of its exact value (2 |x_i c_ji| <= x_i^2 + c_ji^2,
        any summation order or FMA), so |l_j - (D_j - x^2 - g s_j)| <= (3d + 4) u s_j
        + (d + 1) u x^2 (to first order).  Since (3d + 4) u <= g, with x^2 in float64:
          L_j = l_j + x^2 (1 - g) <= D_j                         (a lower bound, one per centroid)
          U_a = l_a + 2 g s_a + x^2 (1 + g) >= D_a               (an upper bound for centroid a)
        A float32 direct distance is within a relative delta = (d + 4) u of sqrt(D_j), so
        where a is an argmin of l and every other l_j gives L_j > U_a (1 + 16 delta) (four
        times the (1 + delta)^2 / (1 - delta)^2 needed), a's direct distance is strictly
        below every other one: a is the direct argmin, with no tie.  The other l_j are all
        >= l_(2), the second smallest (the row with a masked), so one test per row,
        L_(2) > U_a (1 + 16 delta), certifies it; it is done in float64 on (rows,) vectors,
        whose rounding (1e-16 relative) the slack of g over (3d + 4) u absorbs.  Two equal
        smallest l never pass.  The rest go to :func:`direct_assign` over all k.  The bounds
        are relative: like the k-d tree's, they assume float32 values in the normal range
        (no underflow), and rows with x^2 or centroids with s_j above 2^100 are not screened.

        Why this shape: the previous screen made about six passes over each (rows, k) block
        (e + slack, min, subtract, compare, count, argmax); folding the slack into the GEMM's
        bias leaves three: the GEMM, numpy's argmin (vectorised; torch's ``min(1)`` with
        indices is not, 1.1 us per point at k = 768 against 0.09) and numpy's min with the
        argmin masked, in blocks of ``SCREEN_CHUNK_BYTES``.
        """
        n, d = X.shape
        k = C.shape[0]
        u = 2.0 ** -24
        gamma = 4.0 * (2 * d + 4) * u
        widen = 1.0 + 16.0 * (d + 4) * u
        c2 = (C * C).sum(1)
        if not bool(c2.max() < 2.0 ** 100):
            self.last_counts = {"screened": 0, "full": n}
            return direct_assign(X, C)
        bias = c2 * (1.0 - gamma)                                             # (k,) float32
        ct = (-2.0 * C).t().contiguous()                                      # (d, k)
        slack_up = (2.0 * gamma * c2.double()).numpy()                       # (k,) float64
        labels = np.empty(n, dtype=np.int64)
        sure = np.empty(n, dtype=bool)
        rows = max(16, self.SCREEN_CHUNK_BYTES // (max(k, 1) * X.element_size()))
        buf = torch.empty((min(rows, n), k), dtype=X.dtype)
        for start in range(0, n, rows):
            x = X[start:start + rows]
            r = x.shape[0]
            low = torch.addmm(bias, x, ct, out=buf[:r]).numpy()               # l_j, (r, k)
            a = low.argmin(1)                                                 # numpy's is vectorised, torch's not
            first = low[np.arange(r), a].astype(np.float64)
            low[np.arange(r), a] = np.inf
            second = low.min(1).astype(np.float64)
            x2 = (x.double() ** 2).sum(1).numpy()
            upper = (first + slack_up[a] + x2 * (1.0 + gamma)) * widen
            sure[start:start + r] = (second + x2 * (1.0 - gamma) > upper) & (x2 < 2.0 ** 100)
            labels[start:start + r] = a
        labels = torch.from_numpy(labels)
        full = torch.from_numpy(np.flatnonzero(~sure))
        if full.numel():
            labels[full] = direct_assign(X[full], C)[0]
        self.last_counts = {"screened": int(n - full.numel()), "full": int(full.numel())}
        return labels, ((X - C[labels]) ** 2).sum(1)

    def _incremental(self, X: torch.Tensor, C: torch.Tensor, moved: torch.Tensor) -> torch.Tensor:
        """The previous labels, updated for the ``moved`` centroids only (every other one is where it was).

        A point labelled with an unmoved centroid keeps it unless a moved one is now
        nearer (or as near with a lower index); a point labelled with a moved one is
        assigned afresh.  Every distance compared is a ``torch.cdist`` value, as in
        :func:`direct_assign`, so the labels are the ones a full call gives.
        """
        labels = self._prev[1].clone()
        if self._own is None:
            self._own = _own_distances(X, C, labels)       # labels' centroids are unmoved or recomputed below
        own = self._own.clone()
        if moved.numel():
            lost = torch.nonzero(torch.isin(labels, moved)).flatten()
            keep = torch.ones(labels.shape[0], dtype=torch.bool, device=X.device)
            keep[lost] = False
            near = torch.cdist(X, C[moved], compute_mode="donot_use_mm_for_euclid_dist")   # (n, m)
            for col, j in enumerate(moved.tolist()):
                d = near[:, col]
                better = keep & ((d < own) | ((d == own) & (labels > j)))
                labels[better], own[better] = j, d[better]
            if lost.numel():
                labels[lost] = self._tree(X[lost], C, lambda: self.points[lost.cpu().numpy()])[0]
                own[lost] = _own_distances(X[lost], C, labels[lost])
        self.last_counts = {"incremental": int(labels.shape[0]), "moved": int(moved.numel())}
        self._own = own
        return labels


def _own_distances(X: torch.Tensor, C: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``torch.cdist`` (difference form) of every point to its labelled centroid, shape (n,)."""
    out = torch.empty(X.shape[0], dtype=X.dtype, device=X.device)
    step = 1 << 16
    for s in range(0, X.shape[0], step):
        out[s:s + step] = torch.cdist(X[s:s + step, None, :], C[labels[s:s + step]][:, None, :],
                                      compute_mode="donot_use_mm_for_euclid_dist")[:, 0, 0]
    return out


@functools.lru_cache(maxsize=1)
def _kdtree():
    """scipy's cKDTree, or None without scipy."""
    try:
        from scipy.spatial import cKDTree  # noqa: PLC0415
    except ImportError:
        return None
    return cKDTree


class FaissAssign:
    """Exact flat-L2 assignment with faiss; the (n, d) float32 array is prepared once.

    faiss chooses its kernel by the number of queries (faiss 1.15: below about 32,000
    it sums squared differences point by point, 19 us a point at k = 3072, d = 4;
    above, the expanded formula, 0.43 us).  Forcing the fast kernel at every n was
    tried and reverted: on small sets with near-ties (fairseq's split pairs on
    duplicated points) the two kernels break ties differently, and fairseq's final
    empty clusters changed (6 and 8 -> 0 and 0 on two seeds).  So this backend keeps
    faiss's own choice, as ``faiss.Kmeans`` users get it."""

    def __init__(self, X: torch.Tensor):
        self.faiss = faiss_module()
        self.device = X.device
        self.source = X
        self.points = np.ascontiguousarray(X.detach().cpu().numpy(), dtype=np.float32)
        d = X.shape[1]
        if X.device.type == "cuda":
            self.resources = self.faiss.StandardGpuResources()
            self.index = self.faiss.GpuIndexFlatL2(self.resources, d)
        else:
            self.index = self.faiss.IndexFlatL2(d)

    def __call__(self, X: torch.Tensor, C: torch.Tensor):
        self.index.reset()
        self.index.add(np.ascontiguousarray(C.detach().cpu().numpy(), dtype=np.float32))
        points = self.points if X is self.source else np.ascontiguousarray(
            X.detach().cpu().numpy(), dtype=np.float32)
        dist, idx = self.index.search(points, 1)            # (n, 1) each
        labels = torch.from_numpy(idx[:, 0]).to(self.device)
        sq = torch.from_numpy(dist[:, 0]).to(self.device).clamp_(min=0)
        return labels, sq


def make_assign(backend: str, X: torch.Tensor) -> Callable:
    """An ``assign(X, C) -> (labels, sq_dists)`` callable for ``X``'s device."""
    if backend == "faiss":
        return FaissAssign(X)
    if backend == "direct":
        return DirectAssign(X) if X.device.type == "cpu" and X.dtype == torch.float32 else direct_assign
    return torch_assign


def segment_sums(labels: torch.Tensor, values: torch.Tensor, k: int, method: str | None = None) -> torch.Tensor:
    """Per-cluster sums of ``values`` (n, m) grouped by ``labels`` (n,): shape (k, m).

    CPU uses ``index_add_`` (deterministic there).  CUDA's ``index_add_`` uses float
    atomics whose order varies between runs, so on CUDA the sums are a chunked
    one-hot matrix product instead (deterministic, and cheap on a GPU), which keeps
    "same seed, same device -> identical output" true there.  ``method`` forces
    "index_add" or "onehot" (tests run the CUDA path on the CPU this way).
    """
    method = method or ("onehot" if values.device.type == "cuda" else "index_add")
    out = torch.zeros((k, values.shape[1]), dtype=values.dtype, device=values.device)
    if method == "index_add":
        return out.index_add_(0, labels, values)
    rows = max(1, (64 * 2**20) // (max(k, 1) * values.element_size()))
    ids = torch.arange(k, device=values.device)
    for start in range(0, labels.shape[0], rows):
        onehot = (labels[start:start + rows, None] == ids[None, :]).to(values.dtype)   # (r, k)
        out += onehot.t() @ values[start:start + rows]                               # (k, m)
    return out
