"""The README's examples run: every ```python block of README.md, in order, each in a fresh namespace.

Part of ``make test``, so an example that stops working (an undefined name, a renamed
argument) fails CI.  Blocks run in a temporary folder; what they print is captured, and
heuristics an example registers are removed afterwards so other tests never see them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pgbench import registry

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, source) of every ```python fenced block."""
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in BLOCK.finditer(text)]


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.fixture
def restored_registry():
    registry.names("init")                              # the built-in heuristics are loaded first
    before = {stage: dict(table) for stage, table in registry._REGISTRY.items()}
    yield
    for stage, table in registry._REGISTRY.items():
        table.clear()
        table.update(before[stage])


@pytest.mark.parametrize("line, source", BLOCKS, ids=[f"README.md:{line}" for line, _ in BLOCKS])
def test_readme_example_runs(line, source, tmp_path, monkeypatch, restored_registry):
    monkeypatch.chdir(tmp_path)
    exec(compile(source, f"README.md:{line}", "exec"), {"__name__": "__readme__"})
