"""The one spelling of a method's name: ``init + resolve[ + consolidate][ [k=v,...]]``.

What: :func:`method_name` names a heuristic combination wherever pgbench shows
or stores one (a suite method's default label, the report's method names, a
GLUE method given as ``init:resolve``, the pytest-benchmark ids); :func:`name_key`
and :func:`same_name` compare names as users type them.

Why: the same combination used to be spelt five ways (``a/b[/c][k=v]`` in suite
labels, ``a:b:c`` in GLUE specs, ``a/b`` in benchmark ids, ``a + b`` in the
report, ``fairseq+fairseq`` on the command line), so a name from one place did
not find its rows in another.  The spaces around ``+`` keep ``kmeans++ + sklearn``
readable.  The old spellings are still accepted as input: :func:`name_key` drops
spaces and reads ``/`` and ``:`` as ``+``, so ``fairseq+fairseq``,
``fairseq/fairseq``, ``fairseq:fairseq`` and ``fairseq + fairseq`` are one name.
"""

from __future__ import annotations

from typing import Any, Mapping

__all__ = ["SEP", "method_name", "name_key", "same_name", "split_name"]

SEP = " + "


def method_name(init: str | None, resolve: str | None, consolidate: str | None = None,
                params: Mapping[str, Any] | None = None) -> str:
    """``init + resolve[ + consolidate]``, then `` [k=v,...]`` (sorted) when ``params`` are given.

    No heuristic at all (an uncompressed model) is ``original``.

    >>> method_name("kmeans++", "sklearn")
    'kmeans++ + sklearn'
    >>> method_name("pg", "pg", "dwc", {"max_passes": 3})
    'pg + pg + dwc [max_passes=3]'
    """
    name = SEP.join(str(p) for p in (init, resolve, consolidate) if p) or "original"
    if params:
        name += " [" + ",".join(f"{k}={v}" for k, v in sorted(params.items())) + "]"
    return name


def split_name(text: str) -> list[str]:
    """The heuristic names of a spelt combination: ``a + b[ + c]``, or the old ``a:b[:c]`` / ``a/b[/c]``.

    >>> split_name("kmeans++ + sklearn"), split_name("pg:pg:dwc"), split_name("random/faiss")
    (['kmeans++', 'sklearn'], ['pg', 'pg', 'dwc'], ['random', 'faiss'])
    """
    for sep in (SEP, ":", "/"):
        if sep in text:
            return [part.strip() for part in text.split(sep)]
    return [text.strip()]


def name_key(name: str) -> str:
    """A name as compared: no spaces, ``/`` and ``:`` read as ``+`` (the old spellings)."""
    return "".join(name.split()).replace("/", "+").replace(":", "+")


def same_name(a: str, b: str) -> bool:
    """Whether two spellings name the same method (``fairseq+fairseq`` = ``fairseq + fairseq`` = ``fairseq/fairseq``)."""
    return name_key(a) == name_key(b)
