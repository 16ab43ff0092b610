"""``python -m pgbench glue``: fine-tune, quantize with each method x preset, evaluate, store.

Prints one line per row (the unquantized model first) to stdout; progress bars and
logs go to stderr. Rows go to the ``downstream`` table of ``RESULTS/results.sqlite``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from .. import console
from ..extras import require

__all__ = ["COMMANDS", "setup", "command", "format_rows"]

DEFAULT_METHODS = "fairseq,sklearn,faiss,pg,pg-full"


def _param(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _json_dict(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be integers separated by commas, got {text!r}") from None


def setup(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="local Hugging Face model folder (offline)")
    p.add_argument("--task", required=True, help="RTE, MRPC, SST-2, CoLA, STS-B, QNLI or MNLI")
    p.add_argument("--data", required=True, help="GLUE root (holding TASK/) or the task folder")
    p.add_argument("--methods", default=DEFAULT_METHODS,
                   help=f"comma-separated: fairseq, sklearn, faiss, pg, pg-full or init:resolve[:consolidate] "
                        f"(default {DEFAULT_METHODS})")
    p.add_argument("--param", action="append", type=_param, default=[], metavar="KEY=VALUE",
                   help="heuristic parameter for every method (JSON value), repeatable")
    p.add_argument("--presets", default="paper-11.81", help="comma-separated presets (see pgbench.checkpoints)")
    p.add_argument("--block-sizes", type=_json_dict, default={}, metavar="JSON",
                   help='per layer type / group overrides of the presets, e.g. \'{"fc": 8, "embedding": 8}\'')
    p.add_argument("--n-centroids", type=_json_dict, default={}, metavar="JSON",
                   help='overrides of the number of centroids, e.g. \'{"attn": 1024}\'')
    p.add_argument("--seed", type=_seeds, default=[0], help="k-means seed(s), comma-separated (default 0)")
    p.add_argument("--n-iter", type=int, default=15, help="Lloyd iterations per layer (default 15)")
    p.add_argument("--layers", default="", help="regex restricting the quantized layers (default: all typed)")
    p.add_argument("--ipq-stages", action="store_true",
                   help="iPQ stages (FFN, embedding, attention) with fine-tuning in between")
    p.add_argument("--stage-epochs", type=float, default=1.0, help="fine-tuning epochs after each stage")
    g = p.add_argument_group("fine-tuning")
    g.add_argument("--epochs", type=float, default=2.0)
    g.add_argument("--lr", type=float, default=5e-5)
    g.add_argument("--batch-size", type=int, default=32)
    g.add_argument("--max-length", type=int, default=128)
    g.add_argument("--train-subset", type=int, default=None, help="train on N random examples")
    g.add_argument("--finetune-seed", type=int, default=0)
    g.add_argument("--quant-noise", type=float, default=0.0, help="Quant-Noise rate p (0 = off)")
    g.add_argument("--quant-noise-block", type=int, default=8)
    g.add_argument("--freeze-embeddings", action="store_true", help="keep the token embedding fixed while training")
    p.add_argument("--results", default="results", help="results folder (default ./results)")
    p.add_argument("--cache", default=str(Path.home() / ".cache" / "pgbench" / "glue"),
                   help="fine-tuned checkpoint cache (default ~/.cache/pgbench/glue)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: on a loaded machine more threads are often slower)")
    console.add_progress(p)


def format_rows(rows: list[dict]) -> str:
    """A plain-text table of downstream rows."""
    head = f"{'method':10s} {'preset':12s} {'ratio':>6s} {'MB':>7s} {'metric':>14s} {'acc':>6s} " \
           f"{'empty':>7s} {'quant s':>8s} {'status':10s}"
    lines = [head]
    for r in rows:
        metric = "-" if r.get("metric") is None else f"{r['metric_name']} {r['metric']:.2f}"
        acc = "-" if r.get("accuracy") is None else f"{r['accuracy']:.2f}"
        empty = f"{r.get('n_layers_with_empty') or 0}/{r.get('n_layers') or 0}"
        secs = "-" if r.get("seconds_quantize") is None else f"{r['seconds_quantize']:.0f}"
        ratio = "-" if r.get("compression_ratio") is None else f"{r['compression_ratio']:.2f}"
        size = "-" if r.get("size_mb") is None else f"{r['size_mb']:.2f}"
        lines.append(f"{r['method']:10s} {r['preset']:12s} {ratio:>6s} {size:>7s} {metric:>14s} {acc:>6s} "
                     f"{empty:>7s} {secs:>8s} {r['status']:10s}" + (f" {r['error']}" if r.get("error") else ""))
    return "\n".join(lines)


def command(args: argparse.Namespace) -> int:
    require("glue", "pgbench glue")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from .finetune import FinetuneConfig
    from .run import run_grid

    if args.threads < 1:
        raise ValueError(f"--threads must be positive, got {args.threads}.")
    torch.set_num_threads(args.threads)
    if args.verbose < 2:
        try:
            import transformers
            transformers.logging.set_verbosity_error()
        except ImportError:
            pass
    cfg = FinetuneConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, max_length=args.max_length,
                         train_subset=args.train_subset, seed=args.finetune_seed, quant_noise=args.quant_noise,
                         quant_noise_block=args.quant_noise_block, freeze_embeddings=args.freeze_embeddings)
    started = time.perf_counter()
    rows = run_grid(args.model, args.task, args.data, args.methods.split(","), args.presets.split(","),
                    seeds=args.seed, finetune=cfg, results=args.results, cache=args.cache, device=args.device,
                    progress=console.progress_wanted(args), params=dict(args.param), n_iter=args.n_iter,
                    layers=args.layers, block_sizes=args.block_sizes, n_centroids=args.n_centroids,
                    ipq_stages=args.ipq_stages, stage_epochs=args.stage_epochs)
    print(format_rows(rows))
    print(f"{len(rows)} rows in {args.results}/results.sqlite (table downstream), "
          f"{time.perf_counter() - started:.0f} s")
    return 0


COMMANDS = {"glue": (setup, command, "fine-tune a HF encoder on a GLUE task, quantize with each method, evaluate")}
