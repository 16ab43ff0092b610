"""GLUE tasks: reading the standard TSV files and scoring predictions with each task's metric.

What: :data:`TASKS` describes RTE, MRPC, SST-2, CoLA, STS-B, QNLI and MNLI (which
columns hold the texts and the label, the label names, the metric);
:func:`load_split` reads a task's ``train`` or ``dev`` file into :class:`Examples`;
:func:`score` turns predictions into the task's metrics, in percent.

Why: the downstream benchmark compares empty-cluster heuristics by the accuracy a
quantized model keeps, so the data and the metric must be the official ones
(GLUE's files as released, scored the way the GLUE leaderboard scores them).

File formats (tab-separated, no quoting: GLUE sentences contain bare ``"``):

* CoLA: no header; ``source, label, original mark, sentence``.
* SST-2: header ``sentence, label``.
* MRPC: header ``Quality, #1 ID, #2 ID, #1 String, #2 String`` (a UTF-8 BOM is allowed).
* RTE / QNLI: header ``index, sentence1|question, sentence2|sentence, label`` with
  string labels (``entailment`` / ``not_entailment``).
* STS-B: header ``index, genre, ..., sentence1, sentence2, score`` (float in [0, 5]).
* MNLI: header ``index, ..., sentence1, sentence2, [label1..label5,] gold_label``; the
  dev split is two files, ``dev_matched.tsv`` and ``dev_mismatched.tsv``.

Label columns that are the last header column are read from each row's last field,
as GLUE's own readers do (a few STS-B/MNLI rows carry extra tabs inside text).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

__all__ = ["TaskSpec", "Examples", "TASKS", "get_task", "load_split", "split_files", "read_tsv",
           "accuracy", "f1_binary", "matthews_corr", "pearson", "spearman", "score"]


@dataclass(frozen=True)
class TaskSpec:
    """One GLUE task.

    name : canonical name (``SST-2``); folder : its folder under the GLUE root
    text_columns : header names of the one or two text columns (CoLA: column indices)
    label_column : header name (CoLA: index) of the label
    labels : label names in class-index order, or None for a regression task (STS-B)
    metric : the main metric (``accuracy``, ``f1``, ``matthews``, ``pearson``)
    header : whether the files start with a header row
    dev_files : file names of the dev split (MNLI: matched then mismatched)
    """

    name: str
    folder: str
    text_columns: tuple
    label_column: str | int
    labels: tuple[str, ...] | None
    metric: str
    header: bool = True
    dev_files: tuple[str, ...] = ("dev.tsv",)

    @property
    def num_labels(self) -> int:
        """Classifier outputs: the number of classes, 1 for regression."""
        return 1 if self.labels is None else len(self.labels)

    @property
    def is_regression(self) -> bool:
        return self.labels is None


_NLI = ("entailment", "not_entailment")
TASKS: dict[str, TaskSpec] = {t.name: t for t in (
    TaskSpec("CoLA", "CoLA", (3,), 1, ("0", "1"), "matthews", header=False),
    TaskSpec("SST-2", "SST-2", ("sentence",), "label", ("0", "1"), "accuracy"),
    TaskSpec("MRPC", "MRPC", ("#1 String", "#2 String"), "Quality", ("0", "1"), "f1"),
    TaskSpec("STS-B", "STS-B", ("sentence1", "sentence2"), "score", None, "pearson"),
    TaskSpec("RTE", "RTE", ("sentence1", "sentence2"), "label", _NLI, "accuracy"),
    TaskSpec("QNLI", "QNLI", ("question", "sentence"), "label", _NLI, "accuracy"),
    TaskSpec("MNLI", "MNLI", ("sentence1", "sentence2"), "gold_label",
             ("contradiction", "entailment", "neutral"), "accuracy",
             dev_files=("dev_matched.tsv", "dev_mismatched.tsv")),
)}


def get_task(name: str) -> TaskSpec:
    """The task called ``name``, case- and dash-insensitive (``sst2`` = ``SST-2``)."""
    def norm(s: str) -> str:
        return s.lower().replace("-", "").replace("_", "")
    for spec in TASKS.values():
        if norm(spec.name) == norm(str(name)):
            return spec
    raise ValueError(f"unknown GLUE task {name!r} (known: {', '.join(TASKS)}).")


@dataclass
class Examples:
    """A task split: ``text_a`` (n,), ``text_b`` (n,) or None, ``labels`` (n,) class indices or floats."""

    text_a: list[str]
    text_b: list[str] | None
    labels: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.text_a)

    def subset(self, indices: Sequence[int]) -> "Examples":
        """The examples at ``indices``, in that order."""
        return Examples([self.text_a[i] for i in indices],
                        None if self.text_b is None else [self.text_b[i] for i in indices],
                        [self.labels[i] for i in indices])


def _task_dir(data_dir: str | Path, spec: TaskSpec) -> Path:
    """``data_dir`` may be the GLUE root (holding ``spec.folder``) or the task folder itself."""
    root = Path(data_dir)
    return root / spec.folder if (root / spec.folder).is_dir() else root


def split_files(data_dir: str | Path, spec: TaskSpec, split: str) -> list[Path]:
    """The TSV file(s) of ``split`` (``train`` or ``dev``); ValueError if one is missing."""
    if split not in ("train", "dev"):
        raise ValueError(f"split must be 'train' or 'dev', got {split!r}.")
    names = ("train.tsv",) if split == "train" else spec.dev_files
    folder = _task_dir(data_dir, spec)
    paths = [folder / n for n in names]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise ValueError(f"{spec.name}: {split} file {missing[0]} not found.")
    return paths


def read_tsv(path: str | Path, spec: TaskSpec) -> Examples:
    """Read one GLUE TSV of task ``spec``.

    Returns
    -------
    Examples
        Labels as class indices (``spec.labels.index(value)``) or floats (STS-B).

    Raises
    ------
    ValueError
        One line naming the file (and the line number): missing column, short row,
        unknown label, non-numeric score, or no example at all.
    """
    path = Path(path)
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    start = 0
    if spec.header:
        if not lines:
            raise ValueError(f"{path}: empty file, expected a header row.")
        header = lines[0].split("\t")
        try:
            cols = [header.index(c) for c in spec.text_columns]
            label_col = header.index(spec.label_column)
        except ValueError:
            raise ValueError(f"{path}: header {header} lacks a column of {spec.name} "
                             f"({list(spec.text_columns)} + {spec.label_column!r}).") from None
        label_last = label_col == len(header) - 1
        start = 1
    else:
        cols, label_col, label_last = list(spec.text_columns), int(spec.label_column), False
    need = max(cols + [label_col]) + 1
    texts: list[list[str]] = [[] for _ in cols]
    labels: list = []
    for lineno, line in enumerate(lines[start:], start + 1):
        if not line.strip():
            continue
        row = line.split("\t")
        if len(row) < need:
            raise ValueError(f"{path}:{lineno}: {len(row)} fields, {spec.name} needs at least {need}.")
        for bucket, c in zip(texts, cols):
            bucket.append(row[c])
        raw = (row[-1] if label_last else row[label_col]).strip()
        labels.append(_label(raw, spec, path, lineno))
    if not labels:
        raise ValueError(f"{path}: no examples.")
    return Examples(texts[0], texts[1] if len(texts) > 1 else None, labels)


def _label(raw: str, spec: TaskSpec, path: Path, lineno: int):
    if spec.labels is None:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{path}:{lineno}: score {raw!r} is not a number.") from None
        if not math.isfinite(value):
            raise ValueError(f"{path}:{lineno}: score {raw!r} is not finite.")
        return value
    if raw not in spec.labels:
        raise ValueError(f"{path}:{lineno}: label {raw!r} is not one of {list(spec.labels)}.")
    return spec.labels.index(raw)


def load_split(data_dir: str | Path, task: str | TaskSpec, split: str) -> list[Examples]:
    """Read ``split`` of ``task`` from ``data_dir`` (GLUE root or task folder).

    Returns one :class:`Examples` per file: one for ``train`` and for most dev
    splits, two for MNLI's dev split (matched, mismatched).
    """
    spec = task if isinstance(task, TaskSpec) else get_task(task)
    return [read_tsv(p, spec) for p in split_files(data_dir, spec, split)]


# ------------------------------------------------------------------------ metrics

def _check_pair(pred: Sequence, gold: Sequence) -> int:
    if len(pred) != len(gold):
        raise ValueError(f"predictions ({len(pred)}) and labels ({len(gold)}) differ in length.")
    if not len(gold):
        raise ValueError("no predictions to score.")
    return len(gold)


def accuracy(pred: Sequence[int], gold: Sequence[int]) -> float:
    """Fraction of equal entries, in [0, 1]."""
    n = _check_pair(pred, gold)
    return sum(int(p) == int(g) for p, g in zip(pred, gold)) / n


def _confusion(pred: Sequence[int], gold: Sequence[int]) -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn) with class 1 as the positive class."""
    tp = sum(1 for p, g in zip(pred, gold) if p == 1 and g == 1)
    fp = sum(1 for p, g in zip(pred, gold) if p == 1 and g != 1)
    fn = sum(1 for p, g in zip(pred, gold) if p != 1 and g == 1)
    return tp, fp, fn, len(gold) - tp - fp - fn


def f1_binary(pred: Sequence[int], gold: Sequence[int]) -> float:
    """F1 of the positive class 1 (MRPC's metric); 0 when there is no true or predicted positive."""
    _check_pair(pred, gold)
    tp, fp, fn, _ = _confusion([int(p) for p in pred], [int(g) for g in gold])
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def matthews_corr(pred: Sequence[int], gold: Sequence[int]) -> float:
    """Matthews correlation of binary predictions (CoLA's metric); 0 when undefined."""
    _check_pair(pred, gold)
    tp, fp, fn, tn = _confusion([int(p) for p in pred], [int(g) for g in gold])
    denom = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return 0.0 if denom == 0 else (tp * tn - fp * fn) / denom


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation; 0 when either side is constant."""
    n = _check_pair(x, y)
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return 0.0 if sxx == 0 or syy == 0 else sxy / math.sqrt(sxx * syy)


def _ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties given their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for t in range(i, j + 1):
            ranks[order[t]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (Pearson of average ranks)."""
    _check_pair(x, y)
    return pearson(_ranks(list(x)), _ranks(list(y)))


def score(spec: TaskSpec, pred: Sequence, gold: Sequence) -> dict[str, float]:
    """All metrics of ``spec`` in percent, the main one under ``spec.metric``.

    Classification: ``accuracy`` (plus ``f1`` for MRPC, ``matthews`` for CoLA);
    regression (STS-B): ``pearson`` and ``spearman``.
    """
    if spec.is_regression:
        return {"pearson": 100 * pearson(pred, gold), "spearman": 100 * spearman(pred, gold)}
    out = {"accuracy": 100 * accuracy(pred, gold)}
    if spec.metric == "f1":
        out["f1"] = 100 * f1_binary(pred, gold)
    elif spec.metric == "matthews":
        out["matthews"] = 100 * matthews_corr(pred, gold)
    return out
