"""Where pgbench finds what it ships (heuristics, suites, the report template) and the data it reads.

What: one place that knows the two layouts pgbench runs from.

* **Installed** (a wheel, ``pip install .``): everything lives inside the package,
  ``pgbench/heuristics``, ``pgbench/suites`` and ``pgbench/templates`` (setuptools'
  ``package-dir`` mapping in ``pyproject.toml`` puts them there).
* **Checkout** (editable install, or no install at all): the repository keeps its
  top-level layout, ``heuristics/``, ``suites/`` and ``reports/templates/`` beside
  ``pgbench/``.

Why: the repository's layout is the project's design and the installed package
must not depend on it; code asks this module for a folder by its role and gets the
right one in either layout.

Data (the clustering benchmark sets, GLUE) is never shipped.  Its root is, in
order: the ``PGBENCH_DATA`` environment variable (the CLI's ``--data DIR`` sets it,
so worker processes and batch jobs inherit it), then, in a checkout only, the
checkout's ``../shared/data``.  Nothing else is guessed.

Outputs: :func:`writable_file` / :func:`writable_dir` say, before any work, why a
file or folder pgbench is asked to write cannot be written.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
#: environment variable naming the data root (set by ``--data``)
DATA_ENV = "PGBENCH_DATA"

#: role -> (folder inside the installed package, folder in a checkout relative to its root)
SHIPPED = {
    "heuristics": ("heuristics", "heuristics"),
    "suites": ("suites", "suites"),
    "templates": ("templates", "reports/templates"),
}


def checkout_root() -> Path | None:
    """The repository root when this package is imported from a source checkout, else None."""
    root = PACKAGE.parent
    if (root / "pyproject.toml").is_file() and (root / "heuristics" / "__init__.py").is_file():
        return root
    return None


def shipped(role: str) -> Path:
    """The folder holding ``role`` ("heuristics", "suites" or "templates") in this installation.

    Raises ``ValueError`` (one line) when neither layout has it, which only a broken
    installation can cause.
    """
    inside, in_checkout = SHIPPED[role]
    installed = PACKAGE / inside
    if installed.is_dir():
        return installed
    root = checkout_root()
    if root is not None and (root / in_checkout).is_dir():
        return root / in_checkout
    raise ValueError(f"pgbench's {role} folder is missing from {PACKAGE} (a broken installation: reinstall pgbench).")


def checkout_data() -> Path | None:
    """A checkout's ``../shared/data`` when this package runs from a checkout that has one beside it."""
    root = checkout_root()
    if root is not None and (root.parent / "shared" / "data").is_dir():
        return (root.parent / "shared" / "data").resolve()
    return None


def data_root() -> Path | None:
    """The data root (``$PGBENCH_DATA``, else a checkout's ``../shared/data``), or None when there is none."""
    given = os.environ.get(DATA_ENV)
    if given:
        return Path(given).expanduser().resolve()
    return checkout_data()


def data_dir(name: str) -> Path:
    """``<data root>/<name>``; raises ``ValueError`` naming how to give a data root when there is none."""
    root = data_root()
    if root is None:
        raise ValueError(f"no data folder for '{name}': pass --data DIR or set {DATA_ENV}=DIR "
                         f"(DIR holding {name}/)")
    return root / name


# ------------------------------------------------------------------ outputs

def writable_dir(folder: Path) -> str | None:
    """Why files cannot be created in ``folder`` (or in the folders that would be made for it), or None."""
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


def writable_file(path: str | Path, option: str) -> Path:
    """``path`` as an output file that can be written (its folders are made when missing); ValueError if not."""
    path = Path(path)
    why = f"{path} is a folder" if path.is_dir() else writable_dir(path.parent)
    if why is None and path.exists() and not os.access(path, os.W_OK):
        why = f"{path} is read-only"
    if why:
        raise ValueError(f"{option} {path}: cannot write there ({why}).")
    return path
