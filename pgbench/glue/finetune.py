"""Fine-tuning and evaluating a Hugging Face encoder on a GLUE task, with a checkpoint cache.

What:

* :func:`load_pretrained` loads a local Hugging Face folder as
  ``AutoModelForSequenceClassification`` with a fresh head (``num_labels`` from the
  task, a regression head for STS-B) and its tokenizer, offline only.
* :func:`train` fine-tunes it: AdamW (betas 0.9/0.98, eps 1e-6, as the PG k-means
  paper's appendix A.1), linear warm-up then linear (polynomial power 1) decay,
  gradient clipping at 1, dynamic padding (each batch padded to its longest
  sequence), an optional training subset, optional Quant-Noise
  (:mod:`pgbench.glue.quant_noise`), a tqdm bar on stderr.
* :func:`predict` / :func:`evaluate` score the dev split with the task's metric.
* :func:`finetuned` runs all of that once per (model folder, task, train file,
  hyper-parameters): the result is saved under ``cache_dir/<task>-<key>/`` and
  loaded from there next time, so quantization experiments never re-train.

Randomness: the fresh head's initialisation, dropout and Quant-Noise masks come from
``FinetuneConfig.seed`` (the global torch RNG is forked, so callers' RNG state is
left alone); the subset and the batch order from a ``torch.Generator`` with that seed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ..validation import as_device
from . import quant_noise
from .data import Examples, TaskSpec, load_split, score, split_files

log = logging.getLogger(__name__)

__all__ = ["FinetuneConfig", "Finetuned", "load_pretrained", "encode", "batches", "train", "predict",
           "evaluate", "finetuned", "cache_key", "take_subset", "progress_bar"]

CACHE_FORMAT = 1


@dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tuning hyper-parameters (all of them enter the cache key).

    epochs, lr, batch_size, weight_decay, warmup_ratio : the usual
    max_length : truncation length in tokens (pairs truncated longest-first)
    train_subset : use this many training examples drawn at random (None: all)
    seed : head initialisation, dropout, subset, batch order, Quant-Noise masks
    quant_noise, quant_noise_block : Quant-Noise rate p (0: off) and block size
    freeze_embeddings : keep the token embedding fixed (much faster on CPU: its
        AdamW update is half of a MiniLM step; it is quantized later all the same)
    """

    epochs: float = 2.0
    lr: float = 5e-5
    batch_size: int = 32
    max_length: int = 128
    train_subset: int | None = None
    seed: int = 0
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    quant_noise: float = 0.0
    quant_noise_block: int = 8
    freeze_embeddings: bool = False

    def __post_init__(self) -> None:
        for name in ("epochs", "lr", "weight_decay", "warmup_ratio", "quant_noise"):   # 1 and 1.0 hash alike
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name} must be a number, got {value!r}.")
            object.__setattr__(self, name, float(value))
        for name in ("batch_size", "max_length", "quant_noise_block"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if self.train_subset is not None and (not isinstance(self.train_subset, int) or self.train_subset < 1):
            raise ValueError(f"train_subset must be a positive integer or None, got {self.train_subset!r}.")
        if not (self.epochs > 0 and self.lr > 0):
            raise ValueError(f"epochs and lr must be positive, got {self.epochs!r} and {self.lr!r}.")
        if not 0 <= self.warmup_ratio < 1 or self.weight_decay < 0:
            raise ValueError("warmup_ratio must be in [0, 1) and weight_decay non-negative.")
        if not 0 <= self.quant_noise < 1:
            raise ValueError(f"quant_noise must be in [0, 1), got {self.quant_noise!r}.")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _transformers():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")   # never reach a model hub
    try:
        import transformers
    except ImportError:
        raise ValueError("the glue benchmark needs transformers (pip install transformers tokenizers).") from None
    return transformers


def load_pretrained(model_dir: str | Path, spec: TaskSpec, seed: int = 0) -> tuple[nn.Module, Any]:
    """(model, tokenizer) from a local Hugging Face folder, with a fresh ``spec.num_labels`` head.

    The head is initialised from the torch RNG seeded with ``seed`` (in a forked RNG).
    Raises ValueError (one line) if the folder is missing or not loadable.
    """
    path = Path(model_dir)
    if not path.is_dir() or not (path / "config.json").is_file():
        raise ValueError(f"{path}: not a Hugging Face model folder (no config.json).")
    tf = _transformers()
    kwargs: dict[str, Any] = {"num_labels": spec.num_labels, "local_files_only": True}
    if spec.is_regression:
        kwargs["problem_type"] = "regression"
    else:
        kwargs["id2label"] = dict(enumerate(spec.labels))
        kwargs["label2id"] = {name: i for i, name in enumerate(spec.labels)}
    try:
        tokenizer = tf.AutoTokenizer.from_pretrained(path, local_files_only=True)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = tf.AutoModelForSequenceClassification.from_pretrained(path, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{path}: cannot load model or tokenizer ({str(exc).splitlines()[0]}).") from None
    return model, tokenizer


# ---------------------------------------------------------------------- batching

def encode(tokenizer: Any, examples: Examples, max_length: int) -> list[dict[str, list[int]]]:
    """Tokenize without padding: one dict (``input_ids``, ``attention_mask``, maybe
    ``token_type_ids``) per example, truncated to ``max_length`` tokens."""
    enc = tokenizer(examples.text_a, examples.text_b, truncation=True, max_length=max_length)
    keys = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc]
    return [{k: enc[k][i] for k in keys} for i in range(len(examples))]


def _collate(features: Sequence[dict[str, list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Dynamic padding: (B, L) tensors, L the longest sequence of this batch."""
    longest = max(len(f["input_ids"]) for f in features)
    out = {}
    for key in features[0]:
        fill = pad_id if key == "input_ids" else 0
        out[key] = torch.tensor([f[key] + [fill] * (longest - len(f[key])) for f in features])
    return out


def batches(encoded: list[dict], labels: Sequence | None, batch_size: int, pad_id: int,
            order: Sequence[int]) -> Any:
    """Yield ``(indices, batch)``: ``batch`` holds (B, L) tensors and, with ``labels``, ``labels`` (B,)."""
    for start in range(0, len(order), batch_size):
        idx = list(order[start:start + batch_size])
        batch = _collate([encoded[i] for i in idx], pad_id)
        if labels is not None:
            values = [labels[i] for i in idx]
            batch["labels"] = torch.tensor(values, dtype=torch.float32 if isinstance(values[0], float)
                                           else torch.long)
        yield idx, batch


def progress_bar(total: int, desc: str, enabled: bool):
    try:
        from tqdm.auto import tqdm
    except ImportError:   # the bar is optional
        return None
    return tqdm(total=total, desc=desc, disable=not enabled, leave=False, dynamic_ncols=True)


# ---------------------------------------------------------------------- training

def train(model: nn.Module, tokenizer: Any, examples: Examples, cfg: FinetuneConfig,
          device: torch.device, progress: bool = True, params: Sequence[nn.Parameter] | None = None
          ) -> dict[str, Any]:
    """Fine-tune ``model`` in place on ``examples`` (already subset) for ``cfg.epochs``.

    ``params`` restricts what is trained (default: every parameter that requires a
    gradient). Quant-Noise is *not* added here (see :func:`finetuned`).
    Returns ``{"steps", "seconds", "loss_last"}``.
    """
    started = time.perf_counter()
    model.to(device).train()
    encoded = encode(tokenizer, examples, cfg.max_length)
    pad_id = tokenizer.pad_token_id or 0
    n_batches = math.ceil(len(encoded) / cfg.batch_size)
    total = max(1, math.ceil(cfg.epochs * n_batches))
    trainable = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    decay = [p for p in trainable if p.ndim >= 2]
    no_decay = [p for p in trainable if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)
    warmup = int(cfg.warmup_ratio * total)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / (warmup + 1) if s < warmup else max(0.0, (total - s) / max(1, total - warmup)))
    gen = torch.Generator().manual_seed(cfg.seed)
    bar = progress_bar(total, "fine-tune", progress)
    step, loss_last = 0, float("nan")
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(cfg.seed)   # dropout
        while step < total:
            order = torch.randperm(len(encoded), generator=gen).tolist()
            for _, batch in batches(encoded, examples.labels, cfg.batch_size, pad_id, order):
                batch = {k: v.to(device) for k, v in batch.items()}
                loss = model(**batch).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
                step += 1
                loss_last = float(loss.detach())
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss_last:.3f}", refresh=False)
                if step >= total:
                    break
    if bar is not None:
        bar.close()
    model.eval()
    return {"steps": step, "seconds": time.perf_counter() - started, "loss_last": loss_last}


@torch.no_grad()
def predict(model: nn.Module, tokenizer: Any, examples: Examples, max_length: int, device: torch.device,
            batch_size: int = 64, progress: bool = False) -> list:
    """Predictions in example order: class indices (argmax), or floats for a regression head.

    Batches are formed over examples sorted by length (less padding); eval mode.
    """
    model.to(device).eval()
    encoded = encode(tokenizer, examples, max_length)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]["input_ids"]))
    out: list = [None] * len(encoded)
    bar = progress_bar(len(encoded), "evaluate", progress)
    for idx, batch in batches(encoded, None, batch_size, tokenizer.pad_token_id or 0, order):
        logits = model(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu()   # (B, C)
        values = logits[:, 0].tolist() if logits.shape[1] == 1 else logits.argmax(1).tolist()
        for i, v in zip(idx, values):
            out[i] = v
        if bar is not None:
            bar.update(len(idx))
    if bar is not None:
        bar.close()
    return out


def evaluate(model: nn.Module, tokenizer: Any, spec: TaskSpec, dev: Sequence[Examples], max_length: int,
             device: torch.device, progress: bool = False) -> dict[str, float]:
    """The task metrics (percent) on the dev split; for MNLI the mismatched file's metrics
    are added with a ``_mm`` suffix. The main metric is ``spec.metric`` of the first file."""
    metrics: dict[str, float] = {}
    for i, split in enumerate(dev):
        pred = predict(model, tokenizer, split, max_length, device, progress=progress)
        suffix = "" if i == 0 else "_mm"
        metrics.update({name + suffix: value for name, value in score(spec, pred, split.labels).items()})
    return metrics


# ------------------------------------------------------------------------- cache

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_key(model_dir: str | Path, spec: TaskSpec, train_file: Path, cfg: FinetuneConfig) -> str:
    """Hex key of (resolved model folder, task, training file content, hyper-parameters)."""
    blob = json.dumps({"format": CACHE_FORMAT, "model": str(Path(model_dir).resolve()), "task": spec.name,
                       "train_sha256": _sha256(train_file), "config": cfg.as_dict()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class Finetuned:
    """A fine-tuned model ready for quantization.

    model, tokenizer : eval-mode model on the device, its tokenizer
    key : the cache key; path : its cache folder (None when no cache was used)
    info : ``seconds_train``, ``steps``, ``n_train``, ``metrics`` (dev, float model), ``config``
    from_cache : whether it was loaded rather than trained
    """

    model: nn.Module
    tokenizer: Any
    key: str
    path: Path | None
    info: dict[str, Any]
    from_cache: bool


def take_subset(examples: Examples, n: int | None, seed: int) -> Examples:
    """``n`` examples drawn without replacement with a generator seeded by ``seed``, in file order
    (all of them when ``n`` is None or not smaller than the split)."""
    if n is None or n >= len(examples):
        return examples
    gen = torch.Generator().manual_seed(seed)
    return examples.subset(sorted(torch.randperm(len(examples), generator=gen)[:n].tolist()))


def finetuned(model_dir: str | Path, task: TaskSpec, data_dir: str | Path, cfg: FinetuneConfig,
              cache_dir: str | Path | None, device: str | torch.device = "cpu",
              progress: bool = True) -> Finetuned:
    """Fine-tune ``model_dir`` on ``task`` (or load the cached result) and score it on dev.

    With ``cache_dir`` the fine-tuned model, tokenizer and ``info.json`` are written to
    ``cache_dir/<task>-<key>/`` (to a temporary folder first, then renamed, so a killed
    run leaves no half-written entry) and reused by any later call with the same key.
    """
    dev_device = device if isinstance(device, torch.device) else as_device(device)
    train_file = split_files(data_dir, task, "train")[0]
    key = cache_key(model_dir, task, train_file, cfg)
    folder = Path(cache_dir) / f"{task.name}-{key}" if cache_dir is not None else None
    dev = load_split(data_dir, task, "dev")
    if folder is not None and (folder / "info.json").is_file():
        model, tokenizer = load_pretrained(folder, task, cfg.seed)
        info = json.loads((folder / "info.json").read_text())
        log.info("%s: fine-tuned model loaded from cache %s", task.name, folder)
        return Finetuned(model.to(dev_device).eval(), tokenizer, key, folder, info, True)

    model, tokenizer = load_pretrained(model_dir, task, cfg.seed)
    examples = take_subset(load_split(data_dir, task, "train")[0], cfg.train_subset, cfg.seed)
    if cfg.freeze_embeddings:
        for name, p in model.named_parameters():
            if "word_embeddings" in name or "embed_tokens" in name:
                p.requires_grad_(False)
    noisy = quant_noise.add_quant_noise(model, cfg.quant_noise, cfg.quant_noise_block, cfg.seed)
    stats = train(model, tokenizer, examples, cfg, dev_device, progress)
    quant_noise.remove_quant_noise(model)
    for p in model.parameters():
        p.requires_grad_(True)
    metrics = evaluate(model, tokenizer, task, dev, cfg.max_length, dev_device)
    info = {"model": str(Path(model_dir).resolve()), "task": task.name, "key": key, "config": cfg.as_dict(),
            "n_train": len(examples), "steps": stats["steps"], "seconds_train": stats["seconds"],
            "loss_last": stats["loss_last"], "quant_noise_layers": len(noisy), "metrics": metrics,
            "device": str(dev_device)}
    log.info("%s: fine-tuned in %.0f s, dev %s", task.name, stats["seconds"], metrics)
    if folder is not None:
        tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "info.json").write_text(json.dumps(info, indent=1))
        try:
            os.replace(tmp, folder)
        except OSError:   # another process cached the same key first
            shutil.rmtree(tmp, ignore_errors=True)
    return Finetuned(model.eval(), tokenizer, key, folder, info, False)
