"""The paper-claims ledger: the paper's published figures beside what this store measured at the same setting.

The figures ship as package data (:data:`CLAIMS_FILE`, ``paper_claims.toml``,
transcribed from the paper with table and row).  :func:`ledger` flattens them to
one row per published number and fills ``measured`` where the store has the
matching setting:

* Tables 1 and 5 (average empty clusters per layer type): the mean final empty
  clusters of the method's layer runs of that type at the preset
  ``paper-<ratio>`` (every seed counts);
* Table 4 (share of layers with empty clusters): the percentage of the method's
  layer runs at that preset with ``n_empty_final > 0``;
* Tables 2 and 3 (accuracy): the downstream table's mean score (in %) of the
  method, task and compression ratio;
* Section 5.4 (8x fewer iterations, 3.8x faster): PG's assignment passes and
  resolution time per event against fairseq's, geometric mean over paired runs
  (:func:`pgbench.report.paper_views.paper_claim`), over every setting.

Each row has a ``note`` saying what the measurement is (the checkpoint, "not a
RoBERTa checkpoint", the number of runs) or why there is none.  The paper's
numbers are per GLUE task (a fine-tuned RoBERTa per task); a store's layer runs
have one value per setting, shown beside each task's.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Sequence

from . import paper_views
from .stats import combination, decoded, has_metrics, same_name
from .tables import LAYER_TYPE_NAMES, downstream_table

Row = dict[str, Any]

CLAIMS_FILE = Path(__file__).with_name("paper_claims.toml")
METRIC_LABELS = {"mean_empty": "average empty clusters per layer (count)",
                 "share_layers_with_empty_pct": "layers with empty clusters (%)",
                 "accuracy_pct": "validation accuracy (%)",
                 "fewer_iterations": "fewer resolution iterations than fairseq (×)",
                 "speedup": "resolution speed-up over fairseq (×)"}
_PAPER_LAYER = {v: k for k, v in LAYER_TYPE_NAMES.items()}    # "q_proj" -> "attn_q"


def load_claims(path: str | Path = CLAIMS_FILE) -> list[Row]:
    """The published figures, one dict per number: source, row, setting, task, method, metric, paper, model."""
    with open(path, "rb") as f:
        blocks = tomllib.load(f)["tables"]
    out = []
    for b in blocks:
        for setting, row, *values in b["rows"]:
            for i, value in enumerate(values):
                metric, task, method = b["metric"], b.get("task"), b.get("method")
                if b.get("methods"):
                    method = b["methods"][i]
                elif metric != "resolution":
                    task = b["columns"][i]
                if metric == "resolution":
                    metric = row
                out.append({"source": b["source"], "row": row, "setting": _preset(setting), "task": task,
                            "method": method, "metric": metric, "paper": float(value), "model": b["model"],
                            "baseline": b.get("baseline")})
    return out


def _preset(setting: str) -> str:
    """The paper's compression ratio as a pgbench preset name ("15.9" -> "paper-15.90"); "any" stays."""
    try:
        return f"paper-{float(setting):.2f}"
    except ValueError:
        return setting


def _params(row: Row) -> dict:
    p = decoded(row.get("source_params")) or {}
    return p if isinstance(p, dict) else {}


def _model_note(paths: set[str], n: int, unit: str) -> str:
    names = sorted({os.path.basename(os.path.dirname(p.rstrip("/\\"))) + "/" + os.path.basename(p.rstrip("/\\"))
                    for p in paths}) or ["?"]
    note = f"{n} {unit} of {', '.join(names)}"
    if not any("roberta" in p.lower() for p in paths):
        note += "; not a RoBERTa checkpoint, and not fine-tuned per task"
    return note


def _layer_measure(rows: Sequence[Row], claim: Row) -> tuple[float | None, str]:
    here = [r for r in rows if has_metrics(r) and r.get("n_empty_final") is not None and r.get("layer_type")
            and _params(r).get("preset") == claim["setting"] and same_name(combination(r), claim["method"])]
    if not here:
        return None, f"no {claim['method']} layer run at preset {claim['setting']}"
    if claim["metric"] == "mean_empty":
        layer_type = _PAPER_LAYER.get(claim["row"], claim["row"])
        here = [r for r in here if r.get("layer_type") == layer_type]
        if not here:
            return None, f"no {claim['method']} run of layer type {claim['row']} at preset {claim['setting']}"
    empties = [float(r["n_empty_final"]) for r in here]
    value = (sum(empties) / len(empties) if claim["metric"] == "mean_empty"
             else 100.0 * sum(e > 0 for e in empties) / len(empties))
    return value, _model_note({str(_params(r).get("path") or r.get("source")) for r in here}, len(here),
                              "layer run(s)")


def _accuracy_measure(scores: Sequence[Row], drows: Sequence[Row], claim: Row) -> tuple[float | None, str]:
    ratio = 1.0 if claim["method"] == "original" else float(claim["setting"].removeprefix("paper-"))
    hit = next((s for s in scores if s["task"] == claim["task"] and same_name(s["method"], claim["method"])
                and s["compression_ratio"] is not None and abs(s["compression_ratio"] - ratio) < 0.01), None)
    if hit is None or hit["score"].mean is None:
        return None, f"no downstream {claim['task']} result of {claim['method']} at compression {ratio:g}"
    mean = hit["score"].mean
    value = 100.0 * mean if mean <= 1.0 else mean
    models = {str(r.get("model")) for r in drows if r.get("task") == claim["task"] and r.get("model")}
    return value, _model_note(models, hit["score"].n, "seed(s)") if models else f"{hit['score'].n} seed(s)"


def ledger(rows: Sequence[Row], downstream: Sequence[Row] | None = None,
           claims: Sequence[Row] | None = None) -> list[Row]:
    """Every published number with ``measured`` (None where the store has no matching setting) and a ``note``."""
    claims = load_claims() if claims is None else claims
    scores = downstream_table(downstream or [])
    work = paper_views.resolution_work_table(rows)
    claim_54 = paper_views.paper_claim(work) if work else None
    out = []
    for c in claims:
        if c["metric"] in ("mean_empty", "share_layers_with_empty_pct"):
            measured, note = _layer_measure(rows, c)
        elif c["metric"] == "accuracy_pct":
            measured, note = _accuracy_measure(scores, downstream or [], c)
        elif claim_54 is None:
            measured, note = None, "no PG run paired with a fairseq run that met empty clusters"
        else:
            measured = claim_54["fewer_passes" if c["metric"] == "fewer_iterations" else "speedup"]
            note = (f"{claim_54['method']} against {claim_54['baseline']}, per resolution event, geometric mean "
                    f"over {claim_54['n_pairs']} paired runs" + (", assignment passes" if c["metric"] ==
                                                                  "fewer_iterations" else ", resolution time"))
        out.append({**c, "measured": measured, "note": note})
    return out
