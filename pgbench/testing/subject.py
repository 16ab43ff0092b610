"""Calling the heuristic under test: one data set in, one :class:`Call` record out.

The checks never call a heuristic themselves; they ask a :class:`Subject` for
calls, which

* looks the heuristic up through the registry and calls ``func`` with the bound
  parameters and a fresh CPU ``torch.Generator`` seeded with ``seed``;
* announces each call through ``progress(label)`` first, so the process running
  the check knows which data set a heuristic that never returns was working on;
* keeps copies of the inputs (and, for a resolver, of the state) from before
  the call, for the checks that compare before and after;
* turns an exception raised by the heuristic, or a return value of the wrong
  type, into a :class:`CheckFailure` naming the data set.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator

import torch

from .. import registry
from ..state import Consolidation, InitOutcome, KMeansState, ResolveOutcome
from ..validation import error_text
from . import data as datasets

RETURNS = {"init": InitOutcome, "resolve": ResolveOutcome, "consolidate": Consolidation}


class CheckFailure(AssertionError):
    """A check found a problem on one data set (``dataset``; "" when it is not about one)."""

    def __init__(self, dataset: str, detail: str):
        super().__init__(detail)
        self.dataset = dataset
        self.detail = detail


class CheckSkip(Exception):
    """A check that cannot run here (e.g. no CUDA device); the message says why."""


@dataclass
class Before:
    """What a call's inputs looked like before it: copies, never views."""

    X: torch.Tensor
    weights: torch.Tensor
    centroids: torch.Tensor | None = None     # resolve: (k, d)
    labels: torch.Tensor | None = None        # resolve: (n,)
    n_assignments: int = 0                    # resolve


@dataclass
class Call:
    """One call of the heuristic: its data set, label, outcome and (resolve) the state after it."""

    label: str
    data: datasets.DataCase
    outcome: Any
    before: Before
    state: KMeansState | None = None
    timing: str | None = None


def _quiet(label: str) -> None:
    return None


@dataclass
class Subject:
    """A registered heuristic with bound parameters, on one device.

    ``params`` are already bound (``registry.get(stage, name).bind(given)``).
    """

    stage: str
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    progress: Callable[[str], None] = _quiet

    @property
    def heuristic(self) -> registry.Heuristic:
        return registry.get(self.stage, self.name)

    def on(self, device: str) -> "Subject":
        return replace(self, device=device)

    def call(self, data: datasets.DataCase, seed: int = 0, timing: str | None = None,
             centroids: torch.Tensor | None = None) -> Call:
        """Run the heuristic once on ``data`` (moved to this subject's device).

        For a resolver, ``timing`` picks the hook point of the state it gets
        (default: its registered ``when``) and ``centroids`` the start centroids
        (default: :func:`~pgbench.testing.data.start_centroids`).
        """
        data = data.to(self.device)
        rng = torch.Generator(device="cpu").manual_seed(seed)
        func = self.heuristic.func
        if self.stage == "resolve":
            timing = timing or self.heuristic.when
            label = f"{data.name}/{timing}"
            state = datasets.resolver_state(data, timing, centroids)
            before = Before(data.X.clone(), data.weights.clone(), state.centroids.clone(),
                            state.labels.clone(), state.n_assignments)
            self.progress(label)
            outcome = self._guard(label, lambda: func(state, rng, **self.params))
            return Call(label, data, outcome, before, state, timing)
        label = data.name
        before = Before(data.X.clone(), data.weights.clone())
        self.progress(label)
        outcome = self._guard(label, lambda: func(data.X, data.weights, data.k, rng, **self.params))
        return Call(label, data, outcome, before)

    def calls(self, names: list[str] | None = None, seed: int = 0) -> Iterator[Call]:
        """One call per data set in ``names`` (default: all), twice for a resolver (both timings)."""
        for name in names or list(datasets.CASES):
            data = datasets.case(name)
            if self.stage == "resolve":
                for timing in datasets.RESOLVE_TIMINGS:
                    yield self.call(data, seed, timing)
            else:
                yield self.call(data, seed)

    def _guard(self, label: str, run: Callable[[], Any]) -> Any:
        try:
            outcome = run()
        except Exception as exc:
            raise CheckFailure(label, f"the heuristic raised {type(exc).__name__}: {error_text(exc)}") from exc
        expected = RETURNS[self.stage]
        if not isinstance(outcome, expected):
            raise CheckFailure(label, f"the heuristic returned {type(outcome).__name__}, "
                                      f"not {expected.__name__}")
        return outcome
