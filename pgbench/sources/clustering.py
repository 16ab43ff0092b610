"""The ``clustering_file`` data source: classic k-means benchmark sets with ground truth.

What: Fränti and Sieranoja's sets (``a1``-``a3``, ``s1``-``s4``, ``unbalance``,
``dim032``: whitespace-separated points in ``NAME.txt`` with ground-truth centroids
in ``NAME_gt.txt``) and Birch sets (``birch1``, ``birch2``: gzip text points in
``NAME.data.gz`` with labels in ``NAME.labels0.gz``; the true centroids are the
label means, label 0 meaning noise).  One Dataset per set, with k = the number of
true clusters and ``true_centroids`` for the centroid index
(:func:`pgbench.metrics.centroid_index`).

Why: these sets have known answers, so a heuristic's ability to find every true
cluster (CI = 0) can be checked, not only its SSE.  The files are third-party data
kept outside the repository and outside the package: by default they are read from
``clustering/`` under the data root (:func:`pgbench.paths.data_root`: ``--data DIR``
/ ``PGBENCH_DATA``, else a checkout's ``../shared/data``); a relative ``directory``
is taken from the working directory.  Every requested file is checked to exist
before the first set is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .. import paths
from . import Dataset, register_source

_SOURCE = "data source 'clustering_file'"


def _find_directory(directory: str) -> Path:
    """The data directory: the data root's ``clustering/`` when empty, else as given (relative: to the cwd)."""
    try:
        folder = Path(directory).expanduser().resolve() if directory else paths.data_dir("clustering")
    except ValueError as exc:
        raise ValueError(f"{_SOURCE}: {exc}") from None
    if not folder.is_dir():
        raise ValueError(f"{_SOURCE}: no data directory at {folder}.")
    return folder


def _files(directory: Path, name: str) -> tuple[Path, Path]:
    """(points file, truth file) of set ``name``; Birch-style if its ``.data.gz`` exists."""
    if (directory / f"{name}.data.gz").exists():
        return directory / f"{name}.data.gz", directory / f"{name}.labels0.gz"
    return directory / f"{name}.txt", directory / f"{name}_gt.txt"


def _available(directory: Path) -> list[str]:
    """Names of the sets whose points file is in ``directory``."""
    names = {p.name[: -len(".data.gz")] for p in directory.glob("*.data.gz")}
    names |= {p.stem for p in directory.glob("*.txt") if not p.stem.endswith("_gt")}
    return sorted(names)


def _read(path: Path, dtype: type) -> np.ndarray:
    try:
        return np.loadtxt(path, dtype=dtype, ndmin=2)
    except (ValueError, OSError, EOFError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: cannot read it as whitespace-separated numbers ({first}).") from None


def _label_means(X: np.ndarray, labels_path: Path) -> np.ndarray:
    """Mean of the points of each positive label (0 = noise), in label order: (k, d) float64."""
    labels = _read(labels_path, np.int64).ravel()
    if labels.shape[0] != X.shape[0]:
        raise ValueError(f"{labels_path}: {labels.shape[0]} labels for {X.shape[0]} points.")
    keep = labels > 0
    values, inverse = np.unique(labels[keep], return_inverse=True)
    if values.size == 0:
        raise ValueError(f"{labels_path}: no positive cluster label.")
    sums = np.zeros((values.size, X.shape[1]))
    np.add.at(sums, inverse, X[keep])
    return sums / np.bincount(inverse)[:, None]


@register_source("clustering_file", params={"directory": "", "names": "all"})
def clustering_file(seed: int, directory: str, names: str | list[str]) -> Iterator[Dataset]:
    """Fränti benchmark sets and Birch sets from ``directory``, with ground-truth centroids.

    Parameters
    ----------
    seed : int
        Unused (the data are fixed); part of the source contract.
    directory : str
        Folder of the files; a relative path is taken from the working directory;
        empty (the default): ``clustering/`` under the data root.
    names : "all", list of str, or str
        Set names (file stems, e.g. ``a1``, ``s3``, ``birch1``); ``"all"`` = every
        set in the folder; a string may list several names separated by commas.

    Returns
    -------
    iterator of Dataset
        Per set (in the order given): X (n, d) float32, k = the number of true
        clusters, true_centroids (k, d) float32 (``*_gt.txt``, or the label means for
        Birch), meta with the file names.

    Raises
    ------
    ValueError
        One line, before any set is read: no such directory, no set in it, or a
        missing points / ground-truth file (named).  Unparsable files raise (naming
        the file) when that set is reached.
    """
    folder = _find_directory(directory)
    if names == "all":
        wanted = _available(folder)
        if not wanted:
            raise ValueError(f"{_SOURCE}: no data set (*.txt or *.data.gz) in {folder}.")
    elif isinstance(names, str):
        wanted = [n.strip() for n in names.split(",") if n.strip()]
    elif isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names):
        wanted = list(names)
    else:
        raise ValueError(f"{_SOURCE}: names must be 'all' or a list of set names, got {names!r}.")
    if not wanted:
        raise ValueError(f"{_SOURCE}: names is empty.")
    pairs = []
    for name in wanted:
        points, truth = _files(folder, name)
        for path in (points, truth):
            if not path.is_file():
                raise ValueError(f"{path}: file not found (data set '{name}' of {_SOURCE}).")
        pairs.append((name, points, truth))
    return _datasets(pairs)


def _datasets(pairs: list[tuple[str, Path, Path]]) -> Iterator[Dataset]:
    for name, points, truth in pairs:
        X = _read(points, np.float64)                                            # (n, d)
        if truth.name.endswith(".labels0.gz"):
            centres = _label_means(X, truth)                                     # (k, d)
        else:
            centres = _read(truth, np.float64)
            if centres.shape[1] != X.shape[1]:
                raise ValueError(f"{truth}: centroids of dimension {centres.shape[1]} "
                                 f"for points of dimension {X.shape[1]}.")
        yield Dataset(
            name=name,
            X=torch.from_numpy(X).float(),
            k=int(centres.shape[0]),
            true_centroids=torch.from_numpy(centres).float(),
            meta={"file": str(points), "truth_file": str(truth)},
        )
