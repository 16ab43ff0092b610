"""Provenance: library versions, git commit, threads, BLAS, CUDA and faiss GPU support.

:func:`versions` and :func:`git_commit` are stored with every result row;
:func:`system_info` is what ``python -m pgbench sysinfo`` shows.  Nothing here
imports scikit-learn or faiss just to read a version (package metadata first).
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CUDA_VISIBLE_DEVICES")


def _dist_version(*names: str) -> str | None:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str | None]:
    """``{"torch", "faiss", "sklearn", "numpy", "pgbench", "python"}`` version strings (None: absent)."""
    from . import __version__

    import numpy

    faiss = _dist_version("faiss-cpu", "faiss-gpu-cu12", "faiss-gpu-cu11", "faiss-gpu", "faiss")
    return {
        "torch": torch.__version__,
        "faiss": faiss,
        "sklearn": _dist_version("scikit-learn"),
        "numpy": numpy.__version__,
        "pgbench": __version__,
        "python": platform.python_version(),
    }


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """HEAD of the repository pgbench runs from, with ``+dirty`` for local changes; None outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = head.stdout.strip()
    return commit + ("+dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def _blas() -> dict[str, Any]:
    info: dict[str, Any] = {}
    config = torch.__config__.show()
    for key in ("BLAS_INFO", "LAPACK_INFO"):
        match = re.search(rf"{key}=([^,\s]+)", config)
        if match:
            info[f"torch_{key.lower()}"] = match.group(1)
    info["torch_mkl"] = torch.backends.mkl.is_available()
    info["torch_openmp"] = torch.backends.openmp.is_available()
    try:
        import numpy

        deps = numpy.show_config(mode="dicts").get("Build Dependencies", {})
        blas = deps.get("blas", {})
        info["numpy_blas"] = f"{blas.get('name')} {blas.get('version', '')}".strip()
    except Exception:  # noqa: BLE001 - older numpy: no dict mode
        pass
    try:
        from threadpoolctl import threadpool_info

        info["loaded"] = [f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads)"
                          for p in threadpool_info()]
    except ImportError:
        pass
    return info


def _cuda() -> dict[str, Any]:
    if not torch.cuda.is_available():
        return {"available": False, "devices": []}
    devices = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        devices.append(f"cuda:{i} {props.name} ({props.total_memory / 2**30:.1f} GiB)")
    return {"available": True, "version": torch.version.cuda, "devices": devices}


def _faiss() -> dict[str, Any]:
    try:
        import faiss
    except ImportError:
        return {"installed": False}
    gpu = hasattr(faiss, "StandardGpuResources")
    return {"installed": True, "version": getattr(faiss, "__version__", None), "gpu_support": gpu,
            "gpus": faiss.get_num_gpus() if gpu else 0}


def system_info() -> dict[str, Any]:
    """Everything ``pgbench sysinfo`` reports, as a JSON-able dict."""
    return {
        "versions": versions(),
        "git_commit": git_commit(),
        "platform": platform.platform(),
        "executable": sys.executable,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "env": {name: os.environ.get(name) for name in _THREAD_ENV},
        "blas": _blas(),
        "cuda": _cuda(),
        "faiss": _faiss(),
    }
