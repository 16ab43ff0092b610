"""Optional dependencies ("extras"): which command needs which, and one clear error when missing.

The core install (numpy, torch, faiss-cpu, scikit-learn, safetensors, tqdm) runs
k-means suites.  Everything else is an extra of ``pyproject.toml``; this module
names the modules each extra provides (tests/test_packaging.py checks them against
``pyproject.toml``), and :func:`require` turns a missing one into a one-line
:class:`MissingExtra` naming what to install, raised before the command does any
work.  The CLI prints it and exits 2.
"""

from __future__ import annotations

import importlib.util

#: extra -> the importable modules it provides
EXTRAS: dict[str, tuple[str, ...]] = {
    "report": ("pandas", "matplotlib", "seaborn", "jinja2"),
    "parquet": ("pyarrow",),
    "slurm": ("submitit",),
    "glue": ("transformers", "tokenizers"),
}


class MissingExtra(ValueError):
    """A command needs an extra that is not installed (one line naming the extra)."""


def missing(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here (found without importing them)."""
    return [m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None]


def require(extra: str, what: str) -> None:
    """Raise :class:`MissingExtra` when ``extra`` is not fully installed; ``what`` names the command."""
    absent = missing(extra)
    if absent:
        raise MissingExtra(f"{what} needs the '{extra}' extra ({', '.join(absent)} not installed): "
                           f"pip install 'pgbench[{extra}]'")
