"""Run part of a suite: keep the methods and sources whose labels match glob patterns.

``python -m pgbench run SUITE -m 'pg*' -d blobs -d 'gauss*'`` (and ``validate``)
narrow a :class:`~pgbench.suite.Suite` before it is expanded into cases, so an
unselected source is never loaded.  Patterns are ``fnmatch`` globs (``*``, ``?``,
``[...]``), case-sensitive, matched against:

* ``-m``: a method's label (``pg``, ``sweep:pg + pg``, ``pg + pg [max_passes=3]``; the
  older spellings ``pg/pg[max_passes=3]``, ``pg:pg``, ``pg+pg*`` match it too), the
  label of the ``[[methods]]`` entry it came from, and the methods of
  ``[[downstream]]`` entries (``fairseq``, ``pg-full``, ``pg:pg``);
* ``-d``: a source's label (``clustering``, ``blobs[d=8]``), the label of its
  ``[[sources]]`` entry (``blobs`` selects every grid point), and the task of
  ``[[downstream]]`` entries (``SST-2``).

A label equal to the pattern matches too, so labels holding ``[`` need no
escaping.  Several patterns of one option are alternatives; ``-m`` and ``-d``
together keep what both select.  A pattern that matches nothing is an error
(one line, before any work), as is a selection that leaves no case.
"""

from __future__ import annotations

import dataclasses
from fnmatch import fnmatchcase
from typing import Iterable, Sequence

from .naming import name_key
from .suite import Suite, SuiteError


def _matches(pattern: str, names: Iterable[str]) -> bool:
    """Exact, glob, or the same method name in another spelling (``pg/pg``, ``pg:pg``, ``pg+pg``: pgbench.naming)."""
    key = name_key(pattern)
    return any(name == pattern or fnmatchcase(name, pattern) or name_key(name) == key
               or fnmatchcase(name_key(name), key) for name in names)


def _unmatched(suite: Suite, option: str, patterns: Sequence[str], known: dict[str, tuple[str, ...]],
               what: str) -> None:
    for pattern in patterns:
        if not any(_matches(pattern, names) for names in known.values()):
            raise SuiteError(f"{suite.path}: {option} {pattern}: matches no {what} "
                             f"(known: {', '.join(known) or 'none'})")


def select(suite: Suite, methods: Sequence[str] = (), sources: Sequence[str] = ()) -> Suite:
    """The part of ``suite`` that the ``methods`` (-m) and ``sources`` (-d) patterns select.

    No patterns: the suite itself.  Raises SuiteError (a ValueError) for a pattern
    that matches nothing, or a selection without any case.
    """
    if not methods and not sources:
        return suite
    method_names = {m.label: (m.label, m.entry) for m in suite.methods}
    method_names.update({name: (name,) for e in suite.downstream for name in e.methods})
    source_names = {s.label: (s.label, s.entry) for s in suite.sources}
    source_names.update({e.task: (e.task,) for e in suite.downstream})
    _unmatched(suite, "-m", methods, method_names, "method")
    _unmatched(suite, "-d", sources, source_names, "source")

    def chosen(patterns: Sequence[str], names: Iterable[str]) -> bool:
        names = tuple(names)
        return not patterns or any(_matches(p, names) for p in patterns)

    kept_methods = tuple(m for m in suite.methods if chosen(methods, (m.label, m.entry)))
    kept_sources = tuple(s for s in suite.sources if chosen(sources, (s.label, s.entry)))
    pairs = suite.pairs
    if pairs is not None:
        m_labels, s_labels = {m.label for m in kept_methods}, {s.label for s in kept_sources}
        pairs = tuple(p for p in pairs if p[0] in m_labels and p[1] in s_labels)
    downstream = []
    for entry in suite.downstream:
        names = tuple(n for n in entry.methods if chosen(methods, (n,)))
        if names and chosen(sources, (entry.task,)):
            downstream.append(dataclasses.replace(entry, methods=names))
    has_kmeans = bool(kept_methods and kept_sources and (pairs is None or pairs))
    if not has_kmeans and not downstream:
        given = " ".join([f"-m {p}" for p in methods] + [f"-d {p}" for p in sources])
        raise SuiteError(f"{suite.path}: {given} leaves no case (no selected method runs on a selected source)")
    if not has_kmeans:   # a downstream-only selection
        kept_methods, kept_sources, pairs = (), (), None
    return dataclasses.replace(suite, methods=kept_methods, sources=kept_sources, pairs=pairs,
                               downstream=tuple(downstream))
