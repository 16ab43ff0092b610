"""Shared pytest hooks: benchmark markers, the pytest-benchmark machine info, the test plugin fixture."""

from __future__ import annotations

import importlib.metadata
import os
import re
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def pytest_configure(config):
    config.addinivalue_line("markers", "big: large engine benchmarks, run only with PGBENCH_BIG=1")
    config.addinivalue_line("markers", "ci_bench: the small benchmark subset CI gates on (docs/benchmarking.md)")


def _version(*dists: str) -> str:
    for dist in dists:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "none"


def pytest_benchmark_update_machine_info(config, machine_info):
    """Add library versions, the CUDA device, BLAS and thread counts to every saved benchmark run."""
    import torch

    blas = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    try:
        import faiss

        faiss_threads = faiss.omp_get_max_threads()
    except ImportError:
        faiss_threads = None
    machine_info.update({
        "torch": torch.__version__,
        "faiss": _version("faiss-cpu", "faiss-gpu-cu12", "faiss-gpu", "faiss"),
        "sklearn": _version("scikit-learn"),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "blas": blas.group(1) if blas else "unknown",
        "torch_threads": torch.get_num_threads(),
        "faiss_threads": faiss_threads,
    })


@pytest.fixture
def plugin(monkeypatch):
    """Makes the test plugin importable here and in subprocesses; unregisters it afterwards."""
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    yield
    if "pgbench_testplugin" in sys.modules:
        sys.modules["pgbench_testplugin"].unregister()
